/*
 * cmd_misc.c - parley stats, replay, state, verify and ping.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    S_OPT_SINCE = CLI_OPT_FIRST_FREE,
    S_OPT_UNTIL,
    S_OPT_PROMETHEUS,
};

/* Room for "parley_" + a stat name (63 bytes at most) + "_total". */
#define S_PROM_NAME_MAX 96
/* Largest file verify reads: a Delivery is well under this. */
#define S_VERIFY_MAX (1024 * 1024)

/*
 * Parse only the common options (and -h, --json when json is non-NULL).
 * Returns -1 to go on, or an exit code.
 */
static int
s_simple_options(cli_common_t *c, const char *cmd, int argc, char **argv,
                 int *json, void (*help)(void))
{
    static const struct option with_json[] = {
        CLI_COMMON_LONG,
        CLI_OUTPUT_LONG,
        { NULL, 0, NULL, 0 },
    };
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT, with_json,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            help();
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_JSON && json != NULL) {
            *json = 1;
            continue;
        }
        if (opt == CLI_OPT_JSON)
            return cli_usage_error(cmd, "unknown option \"--json\"");
        return cli_option_error(cmd, opt, argv);
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    return -1;
}

/* Print a JSON value and a newline; exit code. */
static int
s_print_json(json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)
                        : NULL;
    json_decref(o);
    if (s == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_OTHER;
    }
    puts(s);
    free(s);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_OTHER;
}

/* ----------------------------------------------------------------- stats */

static void
s_stats_help(void)
{
    printf("usage: parley stats [--json | --prometheus] [OPTIONS]\n"
           "\n"
           "Print the daemon's counters, one \"name value\" line each (or one\n"
           "JSON object with --json, or the Prometheus text exposition format\n"
           "with --prometheus).\n"
           "\n"
           "Options:\n"
           "      --json          print a JSON object\n"
           "      --prometheus    print metrics for Prometheus: counters as\n"
           "                      parley_<name>_total (type counter), the rest\n"
           "                      as parley_<name> (type gauge)\n"
           "%s"
           "\n"
           "Exit status: 0 printed, 1 usage error, 3 no answer, 5 other error.\n",
           cli_common_help);
}

/* How `parley stats --prometheus` exposes one of the daemon's stats. */
typedef struct {
    const char *name;   /* stat name, or a prefix when it ends in '_' */
    int counter;        /* 1: only ever rises while the daemon runs */
    const char *help;   /* HELP text; for a prefix, the rest of the name
                         * and a full stop follow it */
} s_prom_kind_t;

/*
 * Which stats are counters. A counter may only rise for the life of the
 * daemon process (Prometheus takes a fall as a restart); everything that
 * can go down is a gauge. The first match wins, so exact names come before
 * the prefixes they share. A name not listed (a stat added to a newer
 * daemon) is exposed as a gauge: wrong at worst for rate(), never a broken
 * scrape.
 */
static const s_prom_kind_t s_prom_kinds[] = {
    { "received", 1, "API messages read by the daemon." },
    { "accepted", 1, "Updates accepted and given a new seq." },
    { "duplicates", 1, "Resent updates answered with their original seq." },
    { "rejected_", 1, "Requests rejected with reject code" },
    { "requests_", 1, "API requests of type" },
    { "store_syncs", 1, "fdatasync calls on the log." },
    { "store_records_synced", 1, "Log records made durable by those syncs." },
    { "store_truncated_bytes", 1,
      "Bytes cut from a torn log tail when the daemon started." },
    { "store_sync_failures", 1,
      "Writes or syncs of the log that failed (disk full, I/O error)." },
    { "rate_limited_", 1, "Publishes refused by the rate limit of the" },
    { "peers_penalized", 1, "Cool-downs imposed on peers over the limit." },
    { "connections_refused", 1, "Connections refused over max_connections." },
    { "auth_denied", 1, "Connections refused by the CURVE allow-list." },
    { "handshake_failed", 1, "Connections whose handshake failed." },
    { "subscriptions_denied", 1, "Feed subscriptions refused." },
    { "subscriptions_partial", 1,
      "Feed subscriptions refused as not a whole topic." },
    { "turns_read_ahead", 1,
      "Group commits run while the next requests were being checked." },
    { "connections", 0, "Connections open on api and feed." },
    { "curve_clients", 0, "Client keys on the CURVE allow-list." },
    { "subscriptions", 0, "Feed topics with at least one subscriber." },
    { "seq", 0, "Last seq assigned." },
    { "first_seq", 0, "Oldest seq still held (0: none)." },
    { "store_bytes", 0, "Size of the log in bytes." },
    { "store_segments", 0, "Number of log segment files." },
    { "store_error", 0,
      "0, or the errno that keeps updates from being stored (28: disk "
      "full)." },
    { "store_queued", 0, "Updates given a seq and not yet durable." },
    { "store_low_space", 0, "1 while the disk reserve cannot be kept." },
    { "uptime_seconds", 0, "Seconds since the daemon started." },
    { "keyring_signers", 0, "Signers in the keyring in force." },
    { "verify_threads", 0, "Threads that check signatures." },
    { "turn_requests_max", 0,
      "Most requests one group-commit turn has handled (1024 at most)." },
};
#define S_PROM_NKINDS (sizeof(s_prom_kinds) / sizeof(s_prom_kinds[0]))

/* The table entry for a stat name, or NULL (unknown: a gauge). */
static const s_prom_kind_t *
s_prom_kind(const char *name)
{
    for (size_t i = 0; i < S_PROM_NKINDS; i++) {
        const char *k = s_prom_kinds[i].name;
        size_t n = strlen(k);
        if (k[n - 1] == '_' ? strncmp(name, k, n) == 0 && name[n] != '\0'
                            : strcmp(name, k) == 0)
            return &s_prom_kinds[i];
    }
    return NULL;
}

/*
 * The metric name for a stat: "parley_" + the name with every character
 * outside [a-zA-Z0-9_] turned into '_' (so whatever a daemon sends, the
 * result matches [a-zA-Z_:][a-zA-Z0-9_:]*), + "_total" for a counter.
 * Returns 0, or -1 if it does not fit.
 */
static int
s_prom_name(char *out, size_t cap, const char *stat, int counter)
{
    int n = snprintf(out, cap, "parley_%s%s", stat, counter ? "_total" : "");
    if (n < 0 || (size_t)n >= cap)
        return -1;
    for (char *p = out + strlen("parley_"); *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    return 0;
}

/* Print HELP text, escaping '\\' and newlines as the format asks. */
static void
s_prom_help_text(FILE *out, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
}

/*
 * Print the stats in the Prometheus text exposition format (version
 * 0.0.4): each metric as its own family, with # HELP and # TYPE before its
 * one sample. Two stats that map to the same metric name would break the
 * scrape, so the later one is left out (and named with -v).
 */
static int
s_print_prometheus(const cli_common_t *c, const parley_stats_t *stats)
{
    size_t n = parley_stats_count(stats);
    char (*names)[S_PROM_NAME_MAX] = calloc(n + 1, sizeof(*names));
    if (names == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_OTHER;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = parley_stats_name(stats, i);
        const s_prom_kind_t *k = s_prom_kind(name);
        int counter = k != NULL && k->counter;
        int dup = 0;
        if (name[0] == '\0'
            || s_prom_name(names[i], sizeof(names[i]), name, counter) < 0)
            continue;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(names[i], names[j]) == 0;
        if (dup) {
            cli_info(c, "stat \"%s\" left out: its metric name %s is taken",
                     name, names[i]);
            names[i][0] = '\0';
            continue;
        }
        printf("# HELP %s ", names[i]);
        if (k != NULL && k->name[strlen(k->name) - 1] == '_') {
            s_prom_help_text(stdout, k->help);
            fputc(' ', stdout);
            s_prom_help_text(stdout, name + strlen(k->name));
            fputc('.', stdout);
        } else if (k != NULL) {
            s_prom_help_text(stdout, k->help);
        } else {
            printf("parleyd stat %s.", names[i] + strlen("parley_"));
        }
        printf("\n# TYPE %s %s\n%s %llu\n", names[i],
               counter ? "counter" : "gauge", names[i],
               (unsigned long long)parley_stats_value(stats, i));
    }
    free(names);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_OTHER;
}

int
cmd_stats(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        CLI_OUTPUT_LONG,
        { "prometheus", no_argument, NULL, S_OPT_PROMETHEUS },
        { NULL, 0, NULL, 0 },
    };
    int json = 0, prometheus = 0, opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT, longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            s_stats_help();
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_JSON)
            json = 1;
        else if (opt == S_OPT_PROMETHEUS)
            prometheus = 1;
        else
            return cli_option_error("stats", opt, argv);
    }
    if (optind < argc)
        return cli_usage_error("stats", "unexpected argument \"%s\"",
                               argv[optind]);
    if (json && prometheus)
        return cli_usage_error("stats", "--json and --prometheus exclude each "
                                        "other");

    parley_stats_t *stats = NULL;
    int rc = cli_stats(c, &stats);
    if (rc < 0)
        return cli_fail(c, NULL, rc);
    size_t n = parley_stats_count(stats);
    if (prometheus) {
        rc = s_print_prometheus(c, stats);
        parley_stats_destroy(&stats);
        return rc;
    }
    if (json) {
        json_t *o = json_object();
        for (size_t i = 0; o != NULL && i < n; i++)
            if (json_object_set_new(o, parley_stats_name(stats, i),
                                    json_integer((json_int_t)
                                                     parley_stats_value(stats,
                                                                        i)))
                != 0) {
                json_decref(o);
                o = NULL;
            }
        parley_stats_destroy(&stats);
        return s_print_json(o);
    }
    for (size_t i = 0; i < n; i++)
        printf("%s %llu\n", parley_stats_name(stats, i),
               (unsigned long long)parley_stats_value(stats, i));
    parley_stats_destroy(&stats);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_OTHER;
}

/* ------------------------------------------------------------------ ping */

static void
s_ping_help(void)
{
    printf("usage: parley ping [--json] [OPTIONS]\n"
           "\n"
           "Ask the daemon how it is: prints\n"
           "  feed ENDPOINT      where subscribers connect\n"
           "  seq N              the last seq assigned\n"
           "  first_seq N        the oldest seq still held (0: none)\n"
           "  version V          the daemon's version\n"
           "  daemon_id HEX      changes at every daemon start\n"
           "  storage S          embedded, or cluster (docs/cluster.md)\n"
           "  health H           ok, or why publishes fail now\n"
           "  catching_up yes|no a cluster node behind its cluster\n"
           "  log_id HEX         a cluster's log, the same on every node\n"
           "\n"
           "Options:\n"
           "      --json          print a JSON object\n"
           "%s"
           "\n"
           "Exit status: 0 the daemon answered, 1 usage error, 3 no answer,\n"
           "5 other error.\n",
           cli_common_help);
}

int
cmd_ping(cli_common_t *c, int argc, char **argv)
{
    parley_info_t *info = NULL;
    char id[33];
    int json = 0;
    int rc = s_simple_options(c, "ping", argc, argv, &json, s_ping_help);
    if (rc >= 0)
        return rc;
    if ((rc = cli_ping(c, &info)) < 0)
        return cli_fail(c, NULL, rc);
    char log_id[33] = "";
    const uint8_t *daemon_id = parley_info_daemon_id(info);
    const uint8_t *lid = parley_info_log_id(info);
    for (size_t i = 0; i < 16; i++) {
        snprintf(id + 2 * i, 3, "%02x", daemon_id[i]);
        if (lid != NULL)
            snprintf(log_id + 2 * i, 3, "%02x", lid[i]);
    }
    if (json) {
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:b, s:s?}", "feed",
            parley_info_feed(info), "seq", (json_int_t)parley_info_seq(info),
            "first_seq", (json_int_t)parley_info_first_seq(info), "version",
            parley_info_version(info), "daemon_id", id, "storage",
            parley_info_storage(info), "health", parley_info_health(info),
            "catching_up", parley_info_catching_up(info), "log_id",
            lid != NULL ? log_id : NULL);
        parley_info_destroy(&info);
        return s_print_json(o);
    }
    printf("feed %s\nseq %llu\nfirst_seq %llu\nversion %s\ndaemon_id %s\n",
           parley_info_feed(info),
           (unsigned long long)parley_info_seq(info),
           (unsigned long long)parley_info_first_seq(info),
           parley_info_version(info), id);
    if (parley_info_storage(info)[0] != '\0')
        printf("storage %s\nhealth %s\ncatching_up %s\n",
               parley_info_storage(info), parley_info_health(info),
               parley_info_catching_up(info) ? "yes" : "no");
    if (lid != NULL)
        printf("log_id %s\n", log_id);
    parley_info_destroy(&info);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_OTHER;
}

/* ------------------------------------------------------- replay, state */

/*
 * Print every event of a snapshot or replay: deliveries on stdout, gaps
 * and deliveries that fail verification on stderr. Returns an exit code.
 */
static int
s_print_query(const cli_common_t *c, parley_query_t *q, const cli_output_t *out)
{
    for (;;) {
        const parley_event_t *ev;
        if (cli_stop)
            return CLI_EXIT_OK;
        int rc = parley_query_next(q, &ev);
        if (rc == 0)
            return CLI_EXIT_OK;
        if (rc == -EINTR)
            continue;
        if (rc < 0)
            return cli_fail(c, NULL, rc);
        uint64_t seq = parley_event_seq(ev);
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_GAP:
            cli_warn(c, "gap: updates %llu-%llu are no longer held",
                     (unsigned long long)seq,
                     (unsigned long long)parley_event_seq_last(ev));
            break;
        case PARLEY_EVENT_REJECTED:
            cli_warn(c, "#%llu failed verification: %s: %s",
                     (unsigned long long)seq,
                     parley_error_name(parley_event_code(ev)),
                     parley_strerror(parley_event_code(ev)));
            break;
        case PARLEY_EVENT_DELIVERY:
            rc = cli_print_delivery(stdout, out, parley_event_delivery(ev));
            if (rc == -EPIPE)
                return CLI_EXIT_OK;
            if (rc < 0) {
                cli_error("writing output: %s", strerror(-rc));
                return CLI_EXIT_OTHER;
            }
            break;
        default:
            break;
        }
    }
}

/* ---------------------------------------------------------------- replay */

static void
s_replay_help(void)
{
    printf("usage: parley replay [--since SEQ] [--until SEQ] [filters]\n"
           "                     [--json | -F FORMAT] [--keyring FILE]\n"
           "\n"
           "Print the updates the daemon holds from --since (default 1) up to\n"
           "--until (default: the latest), in seq order, then exit. Updates the\n"
           "daemon no longer holds are reported on stderr:\n"
           "  parley: gap: updates A-B are no longer held\n"
           "\n"
           "Options:\n"
           "      --since SEQ     first seq (default 1)\n"
           "      --until SEQ     last seq (default: the latest when starting)\n"
           "      --keyring FILE  re-verify each update against this keyring\n"
           "%s"
           "%s"
           "%s"
           "\n"
           "Exit status: 0 printed (even if nothing matched), 1 usage error,\n"
           "2 the daemon refused, 3 no answer, 4 keyring file problem, 5 other.\n",
           cli_filter_help, cli_output_help, cli_common_help);
}

/*
 * Print the state table: one entry per line, in the table's order
 * (negotiation, phase, party). Returns an exit code.
 */
static int
s_print_state(const cli_common_t *c, const parley_state_t *st,
              const cli_output_t *out)
{
    if (parley_state_rejected(st) > 0)
        cli_warn(c, "%zu updates of the state failed verification and are "
                    "not shown",
                 parley_state_rejected(st));
    for (size_t i = 0; i < parley_state_count(st); i++) {
        const char *neg, *party;
        uint32_t phase;
        const parley_delivery_t *d =
            parley_state_entry(st, i, &neg, &party, &phase);
        int rc = cli_print_entry(stdout, out, neg, party, phase, d);
        if (rc == -EPIPE)
            return CLI_EXIT_OK;
        if (rc < 0) {
            cli_error("writing output: %s", strerror(-rc));
            return CLI_EXIT_OTHER;
        }
    }
    return CLI_EXIT_OK;
}

/*
 * Ask for the state (replay false) or the replay since..until (0: the
 * head), verified against the keyring at keyring_path (may be NULL) and
 * with the filters, and print it. Returns an exit code.
 */
static int
s_query(cli_common_t *c, const cli_filter_t *filters, const char *keyring_path,
        const cli_output_t *out, bool replay, uint64_t since, uint64_t until)
{
    parley_keyring_t *ring = NULL;
    int status = cli_load_keyring(keyring_path, &ring);
    if (status != 0)
        return status;
    parley_call_options_t copt = PARLEY_CALL_OPTIONS_INIT;
    parley_query_t *q = NULL;
    parley_state_t *st = NULL;
    int rc = cli_call_options(c, &copt);
    copt.keyring = ring;
    cli_filter_call(filters, &copt);
    cli_signals_install();
    /* A replay ends at the head as its first page sees it (or --until if
     * lower): what is published while we read is not part of it. */
    if (rc == 0 && replay) {
        rc = parley_replay(since, until, &copt, &q);
    } else if (rc == 0) {
        if ((st = parley_state_new(&copt)) == NULL)
            rc = -errno;
        else
            rc = parley_state_fetch(st);
    }
    if (rc < 0) {
        status = rc == -EINTR && cli_stop ? CLI_EXIT_OK : cli_fail(c, NULL, rc);
    } else if (replay) {
        status = s_print_query(c, q, out);
        cli_info(c, "replayed up to seq %llu",
                 (unsigned long long)parley_query_seq(q));
    } else {
        status = s_print_state(c, st, out);
        cli_info(c, "state as of seq %llu",
                 (unsigned long long)parley_state_seq(st));
    }
    parley_query_destroy(&q);
    parley_state_destroy(&st);
    parley_keyring_destroy(&ring);
    return status;
}

/* Parse the options of replay or state (cmd) into the arguments of
 * s_query() and run it. */
static int
s_query_command(cli_common_t *c, const char *cmd, int argc, char **argv,
                cli_filter_t *filters, void (*help)(void))
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        CLI_FILTER_LONG,
        CLI_OUTPUT_FORMAT_LONG,
        { "since", required_argument, NULL, S_OPT_SINCE },
        { "until", required_argument, NULL, S_OPT_UNTIL },
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { NULL, 0, NULL, 0 },
    };
    bool replay = strcmp(cmd, "replay") == 0;
    cli_output_t out = { .mode = CLI_OUT_LINE };
    const char *keyring_path = NULL;
    uint64_t since = 1, until = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "F:", longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc == 0)
            rc = cli_filter_option(filters, cmd, opt, optarg);
        if (rc == 0)
            rc = cli_output_option(&out, cmd, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            help();
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_KEYRING) {
            keyring_path = optarg;
            continue;
        }
        if ((opt == S_OPT_SINCE || opt == S_OPT_UNTIL) && !replay)
            return cli_usage_error(cmd, "unknown option \"%s\" (the state "
                                        "has no range)",
                                   opt == S_OPT_SINCE ? "--since"
                                                      : "--until");
        if (opt == S_OPT_SINCE || opt == S_OPT_UNTIL) {
            uint64_t v;
            if (cli_parse_u64(optarg, &v) < 0 || v == 0)
                return cli_usage_error(cmd, "%s: \"%s\" is not a seq",
                                       opt == S_OPT_SINCE ? "--since"
                                                          : "--until",
                                       optarg);
            *(opt == S_OPT_SINCE ? &since : &until) = v;
            continue;
        }
        return cli_option_error(cmd, opt, argv);
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\"",
                               argv[optind]);
    if (until != 0 && until < since)
        return cli_usage_error(cmd, "--until is below --since");
    if (cli_filter_done(filters, cmd) < 0)
        return CLI_EXIT_USAGE;
    return s_query(c, filters, keyring_path, &out, replay, since, until);
}

static int
s_replay_run(cli_common_t *c, int argc, char **argv, cli_filter_t *filters)
{
    return s_query_command(c, "replay", argc, argv, filters, s_replay_help);
}

int
cmd_replay(cli_common_t *c, int argc, char **argv)
{
    return cli_with_filters(c, argc, argv, s_replay_run);
}

static void
s_state_help(void)
{
    printf("usage: parley state [filters] [--json | -F FORMAT] [--keyring FILE]\n"
           "\n"
           "Print where things stand: for each negotiation, phase and party that\n"
           "matches the filters, the update holding its state after corrections,\n"
           "retractions (the state goes back to what was true before the update\n"
           "withdrawn) and expiry, one entry per line, by negotiation, phase and\n"
           "party, then exit:\n"
           "  NEGOTIATION phase N PARTY: STATUS: HEADLINE (#SEQ)\n"
           "With --json, one object per entry: negotiation, phase, party, seq and\n"
           "delivery (the update, as parley sub --json prints it); -F formats\n"
           "the entry's update. One snapshot of the daemon: nothing published\n"
           "afterwards is waited for.\n"
           "\n"
           "Options:\n"
           "      --keyring FILE  re-verify each update against this keyring\n"
           "%s"
           "%s"
           "%s"
           "\n"
           "Exit status: 0 printed (even if nothing matched), 1 usage error,\n"
           "2 the daemon refused (unavailable: the state is too large for one\n"
           "answer; use filters), 3 no answer, 4 keyring file problem, 5 other.\n",
           cli_filter_help, cli_output_help, cli_common_help);
}

static int
s_state_run(cli_common_t *c, int argc, char **argv, cli_filter_t *filters)
{
    return s_query_command(c, "state", argc, argv, filters, s_state_help);
}

int
cmd_state(cli_common_t *c, int argc, char **argv)
{
    return cli_with_filters(c, argc, argv, s_state_run);
}

/* ---------------------------------------------------------------- verify */

static void
s_verify_help(void)
{
    printf("usage: parley verify [--keyring FILE] FILE...\n"
           "\n"
           "Check saved updates offline: each FILE holds the bytes of a\n"
           "Delivery (as the feed and replay carry it) or of a SignedUpdate\n"
           "(as a publisher sends it). For each FILE prints one line:\n"
           "  FILE: OK #SEQ signer KEYID (NAME): HEADLINE\n"
           "  FILE: CODE: why\n"
           "(#SEQ for a Delivery only; NAME when the keyring knows the key).\n"
           "Without --keyring the signature is checked against the key named\n"
           "in the update; with it, the signer must also be listed and allowed\n"
           "to publish that update.\n"
           "\n"
           "Options:\n"
           "      --keyring FILE  trusted signers, as parleyd's keyring\n"
           "  -q, --quiet         print only failures\n"
           "  -h, --help          print this help\n"
           "\n"
           "Exit status: 0 all good, 1 usage error, 2 a file failed the check,\n"
           "4 keyring file problem, 5 a file could not be read.\n");
}

/* Read a whole (small) file. 0 or -errno / -EFBIG. */
static int
s_read_file(const char *path, uint8_t **buf, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > S_VERIFY_MAX) {
        close(fd);
        return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
    }
    *buf = malloc((size_t)st.st_size + 1);
    if (*buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    *len = 0;
    while (*len < (size_t)st.st_size) {
        ssize_t r = read(fd, *buf + *len, (size_t)st.st_size - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            close(fd);
            free(*buf);
            return e;
        }
        if (r == 0)
            break;
        *len += (size_t)r;
    }
    close(fd);
    return 0;
}

/* Check one file; returns 0 (good), CLI_EXIT_REJECTED or CLI_EXIT_OTHER. */
static int
s_verify_one(const cli_common_t *c, const parley_keyring_t *ring,
             const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    int rc = s_read_file(path, &buf, &len);
    if (rc < 0) {
        cli_error("%s: %s", path, strerror(-rc));
        return CLI_EXIT_OTHER;
    }
    parley_delivery_t *d = parley_delivery_new();
    parley_update_t *u = parley_update_new();
    if (d == NULL || u == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_OTHER;
        goto out;
    }
    /* A Delivery first: its field types differ from a SignedUpdate's, so
     * one is never mistaken for the other. */
    int is_delivery = 1;
    rc = parley_delivery_decode(ring, buf, len, d);
    if (rc == PARLEY_EMALFORMED) {
        int rc2 = parley_verify(ring, buf, len, u, signer);
        if (rc2 != PARLEY_EMALFORMED) {
            is_delivery = 0;
            rc = rc2;
        }
    }
    if (rc < 0) {
        printf("%s: %s: %s\n", path, parley_error_name(rc),
               parley_strerror(rc));
        rc = CLI_EXIT_REJECTED;
        goto out;
    }
    if (!c->quiet) {
        /* the common formatter prints the text fields safely */
        const char *name = is_delivery ? parley_delivery_signer_name(d)
                           : ring != NULL ? parley_keyring_name(ring, signer)
                                          : NULL;
        int named = name != NULL && name[0] != '\0';
        cli_output_t o = { .mode = CLI_OUT_FORMAT };
        printf("%s: OK ", path);
        o.format = is_delivery ? (named ? "#%s signer %i (%N): %h"
                                        : "#%s signer %i: %h")
                               : (named ? "signer %i (%N): %h"
                                        : "signer %i: %h");
        rc = is_delivery ? cli_print_delivery(stdout, &o, d)
                         : cli_print_signed(stdout, &o, u, signer, name);
        if (rc < 0) {
            rc = CLI_EXIT_OTHER;
            goto out;
        }
    }
    rc = 0;
out:
    free(buf);
    parley_delivery_destroy(&d);
    parley_update_destroy(&u);
    return rc;
}

int
cmd_verify(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { NULL, 0, NULL, 0 },
    };
    const char *keyring_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT, longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            s_verify_help();
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_KEYRING) {
            keyring_path = optarg;
            continue;
        }
        return cli_option_error("verify", opt, argv);
    }
    if (optind >= argc)
        return cli_usage_error("verify", "name at least one FILE");

    parley_keyring_t *ring = NULL;
    int status = cli_load_keyring(keyring_path, &ring);
    if (status != 0)
        return status;
    for (int i = optind; i < argc; i++) {
        int rc = s_verify_one(c, ring, argv[i]);
        /* a read error outranks a failed check: it says less */
        if (rc == CLI_EXIT_OTHER || (rc != 0 && status == 0))
            status = rc;
    }
    parley_keyring_destroy(&ring);
    if (fflush(stdout) != 0 && status == 0)
        status = CLI_EXIT_OTHER;
    return status;
}
