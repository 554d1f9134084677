/*
 * cmd_misc.c - parley stats, replay and ping.
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
    { "verify_serial", 1,
      "Signatures checked one by one in order, not in parallel." },
    { "reloads", 1, "SIGHUP reloads that took effect." },
    { "reload_failures", 1,
      "SIGHUP reloads refused (the old keyring and settings stayed)." },
    { "reload_failed", 0, "1 while the last reload was refused." },
    { "reads_queued", 0, "Read requests waiting to be answered." },
    { "reads_deferred", 1,
      "Read requests answered after waiting a whole read slice or more." },
    { "read_slices_full", 1,
      "Read slices that spent their budget with reads still waiting." },
    { "reads_held", 1,
      "Read requests held while their replies were unread." },
    { "reads_refused", 1,
      "Read requests refused: too many queued on the connection." },
    { "reads_dropped", 1,
      "Queued read requests dropped: their connection had gone." },
    { "reply_bytes", 0, "Bytes of replies not yet read by their clients." },
    { "replies_dropped", 1,
      "Replies not sent: connection gone, or too many left unread." },
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

/* ---------------------------------------------------------------- replay */

static void
s_replay_help(void)
{
    printf("usage: parley replay [--since WHEN] [--until WHEN] [filters]\n"
           "                     [--json | --raw | -F FORMAT] [--keyring FILE]\n"
           "\n"
           "Print the updates the daemon holds from --since (default 1) up to\n"
           "--until (default: the latest), in seq order, then exit. Updates the\n"
           "daemon no longer holds are reported on stderr:\n"
           "  parley: gap: updates A-B are no longer held\n"
           "\n"
           "Options:\n"
           "      --since WHEN    first update: a seq (default 1), a duration\n"
           "                      before now (30m, 1h, 2d) or a time (2024-08-20,\n"
           "                      2024-08-20T14:00 local, 2024-08-20T12:00Z): the\n"
           "                      first update the daemon received at or after it\n"
           "      --until WHEN    last update, in the same forms (default: the\n"
           "                      latest when starting)\n"
           "      --keyring FILE  re-verify each update against this keyring;\n"
           "                      with a log: line, every update printed is\n"
           "                      also proven in the log's checkpoint (-v says\n"
           "                      so at the end; a contradiction is printed with\n"
           "                      its evidence, see docs/transparency.md)\n"
           "%s"
           "%s"
           "%s"
           "\n"
           "Exit status: 0 printed (even if nothing matched), 1 usage error,\n"
           "2 the daemon refused, 3 no answer, 4 keyring file problem, 5 other.\n",
           cli_filter_help, cli_output_help, cli_common_help);
}

/* What replay prints with. */
typedef struct {
    const cli_output_t *out;
    const cli_filter_t *filters;
} s_replay_t;

/* Print one delivery of the replay (0, or an exit code to stop). */
static int
s_replay_one(void *arg, const parley_delivery_t *d)
{
    const s_replay_t *x = arg;
    if (!cli_filter_local(x->filters, parley_delivery_update(d)))
        return 0;
    int rc = cli_print_delivery(stdout, x->out, d);
    if (rc == -EPIPE)
        return CLI_QUERY_STOP;
    if (rc < 0) {
        cli_error("writing output: %s", strerror(-rc));
        return CLI_EXIT_OTHER;
    }
    return 0;
}

/* 1 if arg is a plain seq. */
static int
s_is_seq(const char *arg)
{
    uint64_t v;
    return arg != NULL && cli_parse_u64(arg, &v) == 0;
}

static int
s_replay_run(cli_common_t *c, int argc, char **argv, cli_filter_t *filters)
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
    cli_output_t out = { .mode = CLI_OUT_LINE };
    const char *keyring_path = NULL, *since_arg = NULL, *until_arg = NULL;
    uint64_t since = 1, until = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "F:", longopts,
                              NULL)) != -1) {
        int rc = cli_read_option(c, filters, &out, "replay", opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            s_replay_help();
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_KEYRING)
            keyring_path = optarg;
        else if (opt == S_OPT_SINCE)
            since_arg = optarg;
        else if (opt == S_OPT_UNTIL)
            until_arg = optarg;
        else
            return cli_option_error("replay", opt, argv);
    }
    if (optind < argc)
        return cli_usage_error("replay", "unexpected argument \"%s\"",
                               argv[optind]);
    if (cli_filter_done(filters, "replay") < 0)
        return CLI_EXIT_USAGE;
    int rc = cli_common_ready(c);
    if (rc == 0 && since_arg != NULL)
        rc = cli_since_seq(c, "replay", "--since", since_arg, &since);
    if (rc == 0 && until_arg != NULL)
        rc = cli_since_seq(c, "replay", "--until", until_arg, &until);
    if (rc != 0)
        return rc;
    if (since == 0)
        since = 1;
    if (until_arg != NULL && until < since) {
        if (s_is_seq(until_arg) && (since_arg == NULL || s_is_seq(since_arg)))
            return cli_usage_error("replay", "--until is below --since");
        /* times with nothing between them */
        cli_info(c, "nothing between --since %s and --until %s",
                 since_arg != NULL ? since_arg : "1", until_arg);
        return CLI_EXIT_OK;
    }

    parley_keyring_t *ring = NULL;
    int status = cli_load_keyring(cli_keyring_path(c, keyring_path), &ring);
    if (status != 0)
        return status;
    parley_call_options_t copt = PARLEY_CALL_OPTIONS_INIT;
    parley_query_t *q = NULL;
    rc = cli_call_options(c, &copt);
    copt.keyring = ring;
    cli_filter_call(filters, &copt);
    cli_signals_install();
    /* A replay ends at the head as its first page sees it (or --until if
     * lower): what is published while we read is not part of it. */
    if (rc == 0)
        rc = parley_replay(since, until, &copt, &q);
    if (rc < 0) {
        status = rc == -EINTR && cli_stop ? CLI_EXIT_OK : cli_fail(c, NULL, rc);
    } else {
        s_replay_t x = { .out = &out, .filters = filters };
        status = cli_query_run(c, q, s_replay_one, &x);
        cli_info(c, "replayed up to seq %llu",
                 (unsigned long long)parley_query_seq(q));
    }
    parley_query_destroy(&q);
    parley_keyring_destroy(&ring);
    return status;
}

int
cmd_replay(cli_common_t *c, int argc, char **argv)
{
    return cli_with_filters(c, argc, argv, s_replay_run);
}
