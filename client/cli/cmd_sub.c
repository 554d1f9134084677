/*
 * cmd_sub.c - parley sub: print updates, or hand each to a command or a
 * webhook, at least once, with a durable cursor, retries and a
 * dead-letter file (alert.h).
 */
#include "common.h"

#include "alert.h"
#include "cursor.h"
#include "exec.h"
#include "webhook.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    S_OPT_SINCE = CLI_OPT_FIRST_FREE,
    S_OPT_LAST,
    S_OPT_FEED,
    S_OPT_EXEC_TIMEOUT,
    S_OPT_EXEC_JOBS,
    S_OPT_HWM,
    S_OPT_VERIFY_THREADS,
    S_OPT_CURSOR,
    S_OPT_RETRY_FOR,
    S_OPT_RETRY_DELAY,
    S_OPT_RETRY_MAX_DELAY,
    S_OPT_DEAD_LETTER,
    S_OPT_WEBHOOK,
    S_OPT_HEADER,
    S_OPT_WEBHOOK_FORMAT,
    S_OPT_STATS_FILE,
    S_OPT_LOG_STATE,
    S_OPT_MAX_STALENESS,
    S_OPT_NO_LOG,
    S_OPT_EVIDENCE,
    S_OPT_LOG_WITNESSES,
};

/* How often the main loop looks at signals and -W when idle. */
#define S_TICK_MS 500
/* Most --exec-jobs, and most --header lines. */
#define S_JOBS_MAX 64
#define S_HEADERS_MAX 32
/* Defaults with --cursor: retry for an hour, waits from 1 s to 5 min. */
#define S_RETRY_FOR_CURSOR_MS (3600 * 1000)
#define S_RETRY_MIN_MS 1000
#define S_RETRY_MAX_MS (300 * 1000)
/* How often --stats-file is rewritten while something changes. */
#define S_STATS_EVERY_MS 1000

/* The transparency log's options (a string of its own: the help text is
 * longer than one literal may be). */
static const char s_log_help[] =
    "The transparency log (when the keyring has a log: line; see\n"
    "docs/transparency.md). Every checkpoint is verified, each new one\n"
    "must extend the last one trusted, and every update printed must be\n"
    "in the log's tree; -v says how far it is verified. A contradiction\n"
    "is printed on stderr with its evidence (even with -q), and sub\n"
    "exits 6 at the end:\n"
    "  parley: LOG INCONSISTENT at N: ...\n"
    "      --log-state FILE\n"
    "                      keep the last checkpoint trusted in FILE, so\n"
    "                      that a log rolled back or forked between runs\n"
    "                      is caught at the next start\n"
    "      --max-staleness SECONDS\n"
    "                      warn when no checkpoint newer than this is\n"
    "                      trusted (default: the keyring's, or 30; 0:\n"
    "                      never)\n"
    "      --log-witnesses K\n"
    "                      trust only checkpoints K of the keyring's\n"
    "                      witnesses cosigned (default: the keyring's)\n"
    "      --evidence FILE append the evidence of an alarm to FILE too\n"
    "      --no-log        do not verify the transparency log\n"
    "\n";

static void
s_help(void)
{
    printf("usage: parley sub [OPTIONS] [filters] [--since WHEN | --last]\n"
           "                  [-C COUNT] [-W SECONDS] [--json | --raw | -F FORMAT]\n"
           "                  [--keyring FILE] [--cursor FILE] [--retry-for DURATION]\n"
           "                  [--webhook URL [--header K:V]... [--webhook-format F]\n"
           "                   | -- COMMAND [ARGS...]]\n"
           "\n"
           "Subscribe to parleyd and print each matching update, once and in\n"
           "seq order, as it is published; or hand each to a command or a web\n"
           "hook. Updates missed on the feed (a reconnect, a slow reader) are\n"
           "fetched from the daemon's log; if the daemon no longer holds them, a\n"
           "line on stderr says so:\n"
           "  parley: gap: updates A-B are no longer held\n"
           "\n"
           "Filters:\n"
           "%s"
           "\n"
           "Where to start (default: updates published from now on):\n"
           "      --since WHEN    every held update from WHEN on, then live. WHEN\n"
           "                      is a seq (5), a duration before now (30m, 1h,\n"
           "                      2d) or a time (2024-08-20, 2024-08-20T14:00 local,\n"
           "                      2024-08-20T12:00Z); a time is the first update the\n"
           "                      daemon received at or after it\n"
           "      --last          the current state first (for each negotiation,\n"
           "                      party and phase the update holding its state,\n"
           "                      each update once, with the parties whose state\n"
           "                      it holds: \"(current for P,Q)\", or\n"
           "                      \"current_for\" with --json), then live\n"
           "\n"
           "When to stop (default: at SIGINT or SIGTERM, with exit status 0):\n"
           "  -C, --count COUNT   after COUNT updates (and once they are handled)\n"
           "  -W, --wait SECONDS  after SECONDS, whatever arrived (exit status 0)\n"
           "\n"
           "Output:\n"
           "%s"
           "\n"
           "Checking:\n"
           "      --keyring FILE  re-verify each update against this keyring;\n"
           "                      without it the signature is still checked\n"
           "                      against the key that made it. An update that\n"
           "                      fails is reported on stderr and skipped.\n"
           "      --feed EP       feed endpoint (default: as the daemon says)\n"
           "      --rcvhwm N      feed receive queue limit, in messages\n"
           "      --verify-threads N\n"
           "                      verify on N threads (1 to 64; default 1) when\n"
           "                      behind (catching up, a burst); updates are\n"
           "                      still handled in seq order, each once verified\n"
           "\n",
           cli_filter_help, cli_output_help);
    fputs("Running a command:\n"
           "  -- COMMAND [ARGS]   run COMMAND (no shell) once per update, with\n"
           "                      the update as JSON on its stdin and\n"
           "                      in the environment: PARLEY_SEQ,\n"
           "                      PARLEY_NEGOTIATION, PARLEY_PARTIES (comma list),\n"
           "                      PARLEY_PHASE, PARLEY_STATUS, PARLEY_KIND,\n"
           "                      PARLEY_HEADLINE, PARLEY_BODY, PARLEY_LOCATION,\n"
           "                      PARLEY_REFERENCES, PARLEY_SIGNER (key id),\n"
           "                      PARLEY_SIGNER_NAME, PARLEY_ISSUED_AT,\n"
           "                      PARLEY_RECEIVED_AT, PARLEY_ATTEMPT (1, 2, ...)\n"
           "                      and PARLEY_IDEMPOTENCY_KEY (DAEMONID/SEQ, the\n"
           "                      same for every attempt). Nothing is printed on\n"
           "                      stdout then, unless --json, --raw or -F is given.\n"
           "      --exec-jobs N   handle up to N updates at once (default 1: one at\n"
           "                      a time, in seq order, and a failing one holds the\n"
           "                      next back; 1 to 64). Also for --webhook.\n"
           "      --exec-timeout SECONDS\n"
           "                      kill COMMAND and what it started (SIGKILL to\n"
           "                      its process group), or give up a webhook\n"
           "                      request, after this long (default 30)\n"
           "\n"
           "Posting to a web hook (instead of a command):\n"
           "      --webhook URL   POST each update to URL (http or https; TLS\n"
           "                      certificates are verified; the proxy comes from\n"
           "                      http_proxy/https_proxy/no_proxy). Every request\n"
           "                      carries Idempotency-Key: DAEMONID/SEQ. A 2xx\n"
           "                      answer is success.\n"
           "      --header K:V    add this header to every request (repeatable,\n"
           "                      e.g. \"Authorization: Bearer TOKEN\")\n"
           "      --webhook-format F\n"
           "                      the body: json (default: the --json object),\n"
           "                      slack, mattermost, matrix (PUT URL/TXNID; give\n"
           "                      the room's .../send/m.room.message URL), ntfy,\n"
           "                      teams\n"
           "\n", stdout);
    printf("Delivery that loses nothing:\n"
           "      --cursor FILE   record in FILE the seq below which every update\n"
           "                      is handled (written atomically after each one),\n"
           "                      and resume after it at the next start, so a\n"
           "                      restarted or crashed subscriber misses nothing.\n"
           "                      Without FILE, the first start begins with what\n"
           "                      --since or --last say, else from now. FILE.lock\n"
           "                      keeps a second subscriber off the cursor. A\n"
           "                      cursor older than the daemon's history is\n"
           "                      reported as a gap.\n"
           "      --retry-for DURATION\n"
           "                      a failed attempt (non-zero exit, timeout, HTTP\n"
           "                      error, refused connection) is tried again, with\n"
           "                      exponential backoff and jitter, for this long\n"
           "                      (default: 1h with --cursor, else 0: no retries)\n"
           "      --retry-delay DURATION\n"
           "                      the first wait (default 1s; it doubles per\n"
           "                      attempt, each wait taken at random between half\n"
           "                      and all of it)\n"
           "      --retry-max-delay DURATION\n"
           "                      the longest wait (default 5m)\n"
           "      --dead-letter FILE\n"
           "                      append an update that still fails after the\n"
           "                      retry window to FILE, as one JSON line (seq, key,\n"
           "                      attempts, error, the update), and go on (default:\n"
           "                      CURSOR.dead with --cursor; without a file it is\n"
           "                      only reported)\n"
           "      --stats-file FILE\n"
           "                      keep counters in FILE, one JSON object rewritten\n"
           "                      atomically each second while they change:\n"
           "                      received, handled, retried, failed,\n"
           "                      dead_lettered, gaps, skipped, cursor, lag (in\n"
           "                      seqs), time. SIGUSR1 prints them on stderr.\n"
           "\n"
           "%s"
           "\n"
           "Common options:\n"
           "%s"
           "\n"
           "Exit status: 0 when stopped by -C, -W or a signal; 1 usage error;\n"
           "2 the daemon refused the request; 3 no answer from the daemon or no\n"
           "heartbeat on its feed at start; 4 keyring file problem; 5 other\n"
           "error (a cursor file that cannot be read or is in use); 6 the\n"
           "transparency log contradicted itself. If the\n"
           "daemon goes away later, sub says so on stderr (\"parley: EP:\n"
           "disconnected ...\"), moves to the next endpoint of the server list\n"
           "(the same one if it is alone) and keeps trying; \"parley: EP:\n"
           "connected\" when one is back.\n",
           s_log_help, cli_common_help);
}

/* ------------------------------------------------------ print handler */

/* Without a command or a web hook, printing the update is handling it:
 * the cursor and the stats still apply. */
static int
s_print_start(void *self, int slot, const cli_job_t *job, char *err,
              size_t cap)
{
    (void)self, (void)slot, (void)job, (void)err, (void)cap;
    return 0;
}

static int
s_print_poll(void *self, int slot, char *err, size_t cap, int64_t *hint)
{
    (void)self, (void)slot, (void)err, (void)cap;
    *hint = 0;
    return 1;
}

static void
s_print_stop(void *self, int slot)
{
    (void)self, (void)slot;
}

static int
s_print_timeout(void *self)
{
    (void)self;
    return 0;
}

static const char *
s_print_name(void *self)
{
    (void)self;
    return "output";
}

static const cli_handler_ops_t s_print_ops = {
    .start = s_print_start,
    .poll = s_print_poll,
    .stop = s_print_stop,
    .timeout = s_print_timeout,
    .name = s_print_name,
};

/* ------------------------------------------------------------ options */

/* Everything the command line says. */
typedef struct {
    cli_output_t out;
    parley_sub_options_t sopt;
    const char *keyring_path;
    const char *since_arg;        /* --since as given */
    uint64_t count;
    int wait_ms;
    int exec_timeout_ms;
    int jobs;
    char **command;               /* after "--", or NULL */
    const char *cursor_path;
    const char *dead_path;
    const char *stats_path;
    const char *evidence_path;    /* --evidence: the log's alarms, appended */
    const char *webhook;
    cli_hook_format_t hook_format;
    int hook_format_given;
    char *headers[S_HEADERS_MAX]; /* heap, normalised */
    size_t n_headers;
    int64_t retry_for_ms;         /* -1: not given */
    int64_t retry_min_ms;
    int64_t retry_max_ms;
    char dead_default[4096];      /* CURSOR.dead */
} s_args_t;

/* Parse the options into a. Returns -1 to go on, or an exit code. */
static int
s_parse(cli_common_t *c, int argc, char **argv, cli_filter_t *filters,
        s_args_t *a)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        CLI_FILTER_LONG,
        CLI_OUTPUT_FORMAT_LONG,
        { "since", required_argument, NULL, S_OPT_SINCE },
        { "last", no_argument, NULL, S_OPT_LAST },
        { "count", required_argument, NULL, 'C' },
        { "wait", required_argument, NULL, 'W' },
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { "feed", required_argument, NULL, S_OPT_FEED },
        { "rcvhwm", required_argument, NULL, S_OPT_HWM },
        { "verify-threads", required_argument, NULL, S_OPT_VERIFY_THREADS },
        { "exec-timeout", required_argument, NULL, S_OPT_EXEC_TIMEOUT },
        { "exec-jobs", required_argument, NULL, S_OPT_EXEC_JOBS },
        { "cursor", required_argument, NULL, S_OPT_CURSOR },
        { "retry-for", required_argument, NULL, S_OPT_RETRY_FOR },
        { "retry-delay", required_argument, NULL, S_OPT_RETRY_DELAY },
        { "retry-max-delay", required_argument, NULL, S_OPT_RETRY_MAX_DELAY },
        { "dead-letter", required_argument, NULL, S_OPT_DEAD_LETTER },
        { "webhook", required_argument, NULL, S_OPT_WEBHOOK },
        { "header", required_argument, NULL, S_OPT_HEADER },
        { "webhook-format", required_argument, NULL, S_OPT_WEBHOOK_FORMAT },
        { "stats-file", required_argument, NULL, S_OPT_STATS_FILE },
        { "log-state", required_argument, NULL, S_OPT_LOG_STATE },
        { "max-staleness", required_argument, NULL, S_OPT_MAX_STALENESS },
        { "log-witnesses", required_argument, NULL, S_OPT_LOG_WITNESSES },
        { "evidence", required_argument, NULL, S_OPT_EVIDENCE },
        { "no-log", no_argument, NULL, S_OPT_NO_LOG },
        { NULL, 0, NULL, 0 },
    };
    uint64_t v64;
    int opt;
    /* "+": the command after "--" (or the first non-option) is not ours */
    while ((opt = getopt_long(argc, argv, "+:" CLI_COMMON_SHORT "F:C:W:",
                              longopts, NULL)) != -1) {
        int rc = cli_read_option(c, filters, &a->out, "sub", opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        switch (opt) {
        case 'h':
            s_help();
            return CLI_EXIT_OK;
        case S_OPT_SINCE:
            a->since_arg = optarg;
            break;
        case S_OPT_LAST:
            a->sopt.start = PARLEY_START_LAST;
            break;
        case 'C':
            if (cli_parse_u64(optarg, &a->count) < 0 || a->count == 0)
                return cli_usage_error("sub", "-C: \"%s\" is not a count above 0",
                                       optarg);
            break;
        case 'W':
            if (cli_parse_seconds(optarg, 0, &a->wait_ms) < 0)
                return cli_usage_error("sub", "-W: \"%s\" is not a number of "
                                              "seconds above 0",
                                       optarg);
            break;
        case CLI_OPT_KEYRING:
            a->keyring_path = optarg;
            break;
        case S_OPT_FEED:
            a->sopt.feed = optarg;
            break;
        case S_OPT_HWM:
            if (cli_parse_u64(optarg, &v64) < 0 || v64 == 0 || v64 > 1000000000)
                return cli_usage_error("sub", "--rcvhwm: \"%s\" is not a count "
                                              "above 0",
                                       optarg);
            a->sopt.rcvhwm = (int)v64;
            break;
        case S_OPT_VERIFY_THREADS:
            if (cli_parse_u64(optarg, &v64) < 0 || v64 == 0 || v64 > 64)
                return cli_usage_error("sub", "--verify-threads: \"%s\" is not "
                                              "a count from 1 to 64",
                                       optarg);
            a->sopt.verify_threads = (int)v64;
            break;
        case S_OPT_EXEC_TIMEOUT:
            if (cli_parse_seconds(optarg, 0, &a->exec_timeout_ms) < 0)
                return cli_usage_error("sub", "--exec-timeout: \"%s\" is not a "
                                              "number of seconds above 0",
                                       optarg);
            break;
        case S_OPT_EXEC_JOBS:
            if (cli_parse_u64(optarg, &v64) < 0 || v64 == 0
                || v64 > S_JOBS_MAX)
                return cli_usage_error("sub", "--exec-jobs: \"%s\" is not a "
                                              "count from 1 to %d",
                                       optarg, S_JOBS_MAX);
            a->jobs = (int)v64;
            break;
        case S_OPT_CURSOR:
            a->cursor_path = optarg;
            break;
        case S_OPT_RETRY_FOR:
        case S_OPT_RETRY_DELAY:
        case S_OPT_RETRY_MAX_DELAY: {
            int64_t ms;
            const char *name = opt == S_OPT_RETRY_FOR     ? "--retry-for"
                               : opt == S_OPT_RETRY_DELAY ? "--retry-delay"
                                                          : "--retry-max-delay";
            if ((rc = cli_duration_option("sub", name, optarg, &ms)) != 0)
                return rc;
            if (opt != S_OPT_RETRY_FOR && ms == 0)
                return cli_usage_error("sub", "%s: must be above 0", name);
            *(opt == S_OPT_RETRY_FOR     ? &a->retry_for_ms
              : opt == S_OPT_RETRY_DELAY ? &a->retry_min_ms
                                         : &a->retry_max_ms) = ms;
            break;
        }
        case S_OPT_DEAD_LETTER:
            a->dead_path = optarg;
            break;
        case S_OPT_STATS_FILE:
            a->stats_path = optarg;
            break;
        case S_OPT_WEBHOOK:
            a->webhook = optarg;
            break;
        case S_OPT_HEADER:
            if (a->n_headers == S_HEADERS_MAX)
                return cli_usage_error("sub", "--header: at most %d",
                                       S_HEADERS_MAX);
            if (cli_hook_header_parse(optarg, &a->headers[a->n_headers]) < 0)
                return cli_usage_error("sub", "--header: \"%s\" is not "
                                              "\"Name: value\" (a token name, "
                                              "no line breaks)",
                                       optarg);
            a->n_headers++;
            break;
        case S_OPT_WEBHOOK_FORMAT:
            if (cli_hook_format_parse(optarg, &a->hook_format) < 0)
                return cli_usage_error("sub", "--webhook-format: unknown format "
                                              "\"%s\" (valid: %s)",
                                       optarg, cli_hook_formats);
            a->hook_format_given = 1;
            break;
        case S_OPT_LOG_STATE:
            a->sopt.log_state = optarg;
            break;
        case S_OPT_MAX_STALENESS: {
            int ms;
            if (cli_parse_seconds(optarg, 1, &ms) < 0)
                return cli_usage_error("sub", "--max-staleness: \"%s\" is not a "
                                              "number of seconds",
                                       optarg);
            a->sopt.max_staleness_ms = ms > 0 ? ms : -1;
            break;
        }
        case S_OPT_LOG_WITNESSES:
            if (cli_parse_u64(optarg, &v64) < 0 || v64 > 32)
                return cli_usage_error("sub", "--log-witnesses: \"%s\" is not a "
                                              "count from 0 to 32",
                                       optarg);
            a->sopt.log_witnesses = v64 > 0 ? (int)v64 : -1;
            break;
        case S_OPT_EVIDENCE:
            a->evidence_path = optarg;
            break;
        case S_OPT_NO_LOG:
            a->sopt.flags |= PARLEY_SUB_NO_LOG;
            break;
        default:
            return cli_option_error("sub", opt, argv);
        }
    }
    if (a->since_arg != NULL && a->sopt.start == PARLEY_START_LAST)
        return cli_usage_error("sub", "--since and --last exclude each other");
    if (cli_filter_done(filters, "sub") < 0)
        return CLI_EXIT_USAGE;
    if (optind < argc)
        a->command = argv + optind;
    if (a->command != NULL && a->webhook != NULL)
        return cli_usage_error("sub", "--webhook and a COMMAND exclude each "
                                      "other: give one handler");
    if (a->webhook == NULL && (a->n_headers > 0 || a->hook_format_given))
        return cli_usage_error("sub", "--header and --webhook-format go with "
                                      "--webhook URL");
    if (a->retry_min_ms > 0 && a->retry_max_ms > 0
        && a->retry_min_ms > a->retry_max_ms)
        return cli_usage_error("sub", "--retry-delay is above --retry-max-delay");
    if (a->dead_path == NULL && a->cursor_path != NULL) {
        if (snprintf(a->dead_default, sizeof(a->dead_default), "%s.dead",
                     a->cursor_path)
            >= (int)sizeof(a->dead_default))
            return cli_usage_error("sub", "--cursor: name too long");
        a->dead_path = a->dead_default;
    }
    if (a->retry_for_ms < 0)
        a->retry_for_ms = a->cursor_path != NULL ? S_RETRY_FOR_CURSOR_MS : 0;
    if ((a->command != NULL || a->webhook != NULL) && !a->out.given)
        a->out.mode = CLI_OUT_NONE;
    return -1;
}

/* ----------------------------------------------------------------- run */

/* The state of one run. */
typedef struct {
    cli_common_t *c;
    s_args_t *a;
    cli_filter_t *filters;
    parley_keyring_t *ring;
    cli_cursor_t cursor;
    int have_cursor;
    cli_exec_t exec;
    int have_exec;
    cli_webhook_t *hook;
    cli_alerts_t alerts;
    int have_alerts;
    parley_sub_t *sub;
    uint64_t head;           /* highest seq the daemon is known to have */
    uint64_t resume;         /* after a pause: start here; 0 = not paused */
    uint64_t delivered;      /* updates that matched */
    uint64_t rejected;       /* failed verification */
    int inconsistent;        /* the transparency log contradicted itself */
    int64_t stats_at;        /* monotonic ms of the last --stats-file write */
    int stats_dirty;
} s_run_t;

/* Ask the daemon at ep (NULL: the server option) for its id and head.
 * Returns 0 or the error of the ping. */
static int
s_learn_daemon(s_run_t *r, const char *ep)
{
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    parley_info_t *info = NULL;
    int rc = cli_call_options(r->c, &o);
    if (rc < 0)
        return rc;
    if (ep != NULL)
        o.server = ep;
    if ((rc = parley_ping(&o, &info)) < 0)
        return rc;
    const uint8_t *id = parley_info_daemon_id(info);
    for (size_t i = 0; i < 16; i++)
        snprintf(r->alerts.daemon_id + 2 * i, 3, "%02x", id[i]);
    if (parley_info_seq(info) > r->head)
        r->head = parley_info_seq(info);
    parley_info_destroy(&info);
    return 0;
}

/* Write --stats-file now. */
static void
s_write_stats(s_run_t *r)
{
    if (r->a->stats_path == NULL)
        return;
    uint64_t head = r->sub != NULL ? parley_sub_last_seq(r->sub) : 0;
    char *json = cli_alerts_stats_json(&r->alerts, head > r->head ? head
                                                                  : r->head);
    if (json == NULL)
        return;
    size_t len = strlen(json);
    char *text = realloc(json, len + 2);
    if (text != NULL) {
        text[len] = '\n';
        text[len + 1] = '\0';
        int rc = cli_write_atomic(r->a->stats_path, text, len + 1);
        if (rc < 0)
            cli_warn(r->c, "%s: %s", r->a->stats_path, strerror(-rc));
        free(text);
    } else {
        free(json);
    }
    r->stats_at = cli_mono_ms();
    r->stats_dirty = 0;
}

/* SIGUSR1 and --stats-file, when due. */
static void
s_stats_tick(s_run_t *r)
{
    if (cli_usr1) {
        char line[512];
        uint64_t head = r->sub != NULL ? parley_sub_last_seq(r->sub) : 0;
        cli_usr1 = 0;
        cli_alerts_stats_line(&r->alerts, head > r->head ? head : r->head,
                              line, sizeof(line));
        cli_error("%s", line);
    }
    if (r->stats_dirty && cli_mono_ms() - r->stats_at >= S_STATS_EVERY_MS)
        s_write_stats(r);
}

/* Report a failure to subscribe; returns the exit code. */
static int
s_sub_failed(s_run_t *r, int err)
{
    cli_common_t *c = r->c;
    if (err == -EINTR && cli_stop)
        return CLI_EXIT_OK;
    if (err == PARLEY_ETIMEOUT && strchr(c->server, ',') != NULL) {
        cli_error("no answer from %s, or no heartbeat on its feed, within "
                  "%d.%03d s (is parleyd running?)",
                  c->server, c->timeout_ms / 1000, c->timeout_ms % 1000);
        return CLI_EXIT_NOANSWER;
    }
    return cli_fail(c, NULL, err);
}

/*
 * Work out where to start: the cursor (after it), or at a first start
 * what --since/--last say, else the head now (so that a crash before the
 * first update still resumes from there). Returns 0 or an exit code.
 */
static int
s_start_point(s_run_t *r, int cursor_existed)
{
    s_args_t *a = r->a;
    parley_sub_options_t *o = &a->sopt;
    if (r->have_cursor && cursor_existed) {
        (void)s_learn_daemon(r, NULL);
        uint64_t at = r->cursor.seq;
        if (a->since_arg != NULL || o->start == PARLEY_START_LAST)
            cli_info(r->c, "the cursor %s is at %llu: --since/--last apply to "
                           "a first start only",
                     a->cursor_path, (unsigned long long)at);
        if (r->head > 0 && r->head < at) {
            cli_warn(r->c, "the cursor %s is at %llu but the daemon's log ends "
                           "at %llu: another log (a new state directory?); "
                           "starting from its oldest update",
                     a->cursor_path, (unsigned long long)at,
                     (unsigned long long)r->head);
            at = 0;
        }
        o->start = PARLEY_START_SEQ;
        o->since_seq = at + 1;
        return 0;
    }
    if (a->since_arg != NULL) {
        uint64_t seq;
        int rc = cli_since_seq(r->c, "sub", "--since", a->since_arg, &seq);
        if (rc != 0)
            return rc;
        o->start = PARLEY_START_SEQ;
        o->since_seq = seq > 0 ? seq : 1;
    }
    int rc = r->have_alerts ? s_learn_daemon(r, NULL) : 0;
    if (r->have_cursor && o->start == PARLEY_START_LIVE) {
        /* From now on: the head now is where a restart resumes, so it
         * must be known before anything is written. */
        char err[512];
        if (rc < 0)
            return s_sub_failed(r, rc);
        if (cli_cursor_write(&r->cursor, r->head, err, sizeof(err)) < 0) {
            cli_error("%s", err);
            return CLI_EXIT_OTHER;
        }
        r->alerts.low_water = r->alerts.max_seen = r->cursor.seq;
        r->alerts.start_seq = r->cursor.seq;
        o->start = PARLEY_START_SEQ;
        o->since_seq = r->head + 1;
    }
    return 0;
}

/* One event of the subscription. Returns 0, or an exit code to stop. */
static int
s_event(s_run_t *r, const parley_event_t *ev, int *disconnected)
{
    cli_common_t *c = r->c;
    s_args_t *a = r->a;
    switch (parley_event_type(ev)) {
    case PARLEY_EVENT_CONNECTED:
        if (*disconnected)
            cli_warn(c, "%s: connected", parley_event_endpoint(ev));
        else
            cli_info(c, "%s: connected", parley_event_endpoint(ev));
        if (*disconnected && r->have_alerts)
            (void)s_learn_daemon(r, parley_event_endpoint(ev));
        *disconnected = 0;
        return 0;
    case PARLEY_EVENT_DISCONNECTED:
        cli_warn(c, "%s: disconnected (%s); trying %s",
                 parley_event_endpoint(ev),
                 parley_event_code(ev) == PARLEY_ETIMEOUT ? "no heartbeat"
                                                          : "connection closed",
                 parley_sub_endpoint(r->sub));
        *disconnected = 1;
        return 0;
    case PARLEY_EVENT_CAUGHT_UP:
        cli_info(c, "caught up at seq %llu: live from here",
                 (unsigned long long)parley_event_seq(ev));
        if (parley_event_seq(ev) > r->head)
            r->head = parley_event_seq(ev);
        return 0;
    case PARLEY_EVENT_GAP:
        r->alerts.stats.gaps++;
        r->stats_dirty = 1;
        if (r->have_cursor && parley_event_seq(ev) == r->alerts.start_seq + 1
            && r->alerts.start_seq > 0)
            cli_warn(c, "gap: updates %llu-%llu are no longer held: the "
                        "cursor %s (at %llu) is older than the daemon's "
                        "history",
                     (unsigned long long)parley_event_seq(ev),
                     (unsigned long long)parley_event_seq_last(ev),
                     a->cursor_path, (unsigned long long)r->alerts.start_seq);
        else
            cli_warn(c, "gap: updates %llu-%llu are no longer held",
                     (unsigned long long)parley_event_seq(ev),
                     (unsigned long long)parley_event_seq_last(ev));
        cli_alerts_skip(&r->alerts, parley_event_seq_last(ev));
        return 0;
    case PARLEY_EVENT_LOG_VERIFIED:
    case PARLEY_EVENT_LOG_STALE:
    case PARLEY_EVENT_LOG_INCONSISTENT:
        if (cli_log_event(c, ev, a->evidence_path) == 2)
            r->inconsistent = 1;
        return 0;
    case PARLEY_EVENT_REJECTED:
        if (cli_log_event(c, ev, a->evidence_path) != 0)
            return 0; /* a checkpoint, not an update */
        r->rejected++;
        cli_warn(c, "#%llu failed verification: %s: %s",
                 (unsigned long long)parley_event_seq(ev),
                 parley_error_name(parley_event_code(ev)),
                 parley_strerror(parley_event_code(ev)));
        cli_alerts_skip(&r->alerts, parley_event_seq(ev));
        return 0;
    case PARLEY_EVENT_DELIVERY:
        break;
    default:
        return 0;
    }
    const parley_delivery_t *d = parley_event_delivery(ev);
    r->stats_dirty = 1;
    if (!cli_filter_local(r->filters, parley_delivery_update(d))) {
        r->alerts.stats.skipped++;
        cli_alerts_skip(&r->alerts, parley_delivery_seq(d));
        return 0;
    }
    r->delivered++;
    int rc = cli_print_event(stdout, &a->out, ev);
    if (rc == -EPIPE)
        return -1; /* the reader is gone: nothing left to do */
    if (rc < 0) {
        cli_error("writing output: %s", strerror(-rc));
        return CLI_EXIT_OTHER;
    }
    if ((rc = cli_alerts_push(&r->alerts, d)) < 0) {
        cli_error("#%llu: %s", (unsigned long long)parley_delivery_seq(d),
                  strerror(-rc));
        return CLI_EXIT_OTHER;
    }
    return 0;
}

/*
 * The queue for the handler is full: let go of the subscription, and
 * take it up again from where it was once the handler has caught up
 * (a long outage of a web hook must not fill memory).
 */
static void
s_pause(s_run_t *r)
{
    uint64_t last = parley_sub_last_seq(r->sub);
    r->resume = (last > r->alerts.max_seen ? last : r->alerts.max_seen) + 1;
    parley_sub_destroy(&r->sub);
    cli_info(r->c, "%d updates wait for the handler: pausing the "
                   "subscription at seq %llu",
             CLI_ALERT_QUEUE_MAX, (unsigned long long)r->resume);
}

static int
s_resume(s_run_t *r)
{
    parley_sub_options_t o = r->a->sopt;
    o.start = PARLEY_START_SEQ;
    o.since_seq = r->resume;
    o.flags |= PARLEY_SUB_NOWAIT;
    if ((r->sub = cli_sub_new(r->c, &o)) == NULL)
        return s_sub_failed(r, -errno);
    cli_info(r->c, "resuming the subscription at seq %llu",
             (unsigned long long)r->resume);
    r->resume = 0;
    return 0;
}

/* Sleep up to ms (interrupted by a signal). */
static void
s_nap(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* The main loop: until a stop, -C or -W. Returns an exit code. */
static int
s_loop(s_run_t *r)
{
    s_args_t *a = r->a;
    int64_t stop_at = a->wait_ms > 0 ? cli_mono_ms() + a->wait_ms : -1;
    int warned_silent = 0, disconnected = 0, status = CLI_EXIT_OK;
    while (!cli_stop) {
        const parley_event_t *ev;
        int tick = S_TICK_MS;
        int due = cli_alerts_step(&r->alerts);
        s_stats_tick(r);
        int counted = a->count > 0 && r->delivered >= a->count;
        if (counted && cli_alerts_idle(&r->alerts))
            break;
        if (due >= 0 && due < tick)
            tick = due;
        if (stop_at >= 0) {
            int64_t left = stop_at - cli_mono_ms();
            if (left <= 0)
                break;
            if (left < tick)
                tick = (int)left;
        }
        if (r->sub != NULL && cli_alerts_full(&r->alerts))
            s_pause(r);
        if (r->sub == NULL && !counted
            && r->alerts.q_len < CLI_ALERT_QUEUE_MAX / 2
            && (status = s_resume(r)) != 0)
            return status;
        if (r->sub == NULL || counted) {
            s_nap(tick);
            continue;
        }
        int rc = parley_sub_next(r->sub, tick, &ev);
        if (rc == 0 || rc == -EINTR)
            continue;
        if (rc == PARLEY_ETIMEOUT || rc == PARLEY_EUNAVAILABLE
            || rc == PARLEY_ERATELIMITED) {
            if (!warned_silent)
                cli_warn(r->c, "%s: %s; still trying",
                         parley_sub_endpoint(r->sub), parley_strerror(rc));
            warned_silent = 1;
            continue;
        }
        if (rc < 0)
            return cli_fail(r->c, NULL, rc);
        if (warned_silent) {
            cli_warn(r->c, "%s: answering again", parley_sub_endpoint(r->sub));
            warned_silent = 0;
        }
        if ((rc = s_event(r, ev, &disconnected)) != 0)
            return rc < 0 ? CLI_EXIT_OK : rc;
    }
    return status;
}

/* Stop: a signal stops the handler now, -C and -W let it finish what
 * runs; nothing new starts. */
static void
s_finish(s_run_t *r)
{
    if (cli_stop)
        cli_alerts_stop(&r->alerts);
    else
        cli_alerts_drain(&r->alerts);
    while (cli_alerts_running(&r->alerts)) {
        int due = cli_alerts_step(&r->alerts);
        if (!cli_alerts_running(&r->alerts))
            break;
        if (cli_stop)
            cli_alerts_stop(&r->alerts);
        s_nap(due >= 0 && due < 20 ? (due > 0 ? due : 1) : 20);
    }
    cli_alerts_commit(&r->alerts);
    if (r->a->stats_path != NULL)
        s_write_stats(r);
}

/* Set up the handler and the alert path. Returns -1 to go on, or an
 * exit code. */
static int
s_setup(s_run_t *r, int *cursor_existed)
{
    s_args_t *a = r->a;
    cli_common_t *c = r->c;
    const cli_handler_ops_t *ops = &s_print_ops;
    void *handler = NULL;
    char err[512];
    int jobs = a->jobs > 0 ? a->jobs : 1;
    int timeout_ms = a->exec_timeout_ms > 0 ? a->exec_timeout_ms : 30000;
    if (a->command != NULL) {
        int rc = cli_exec_init(&r->exec, a->command, timeout_ms, jobs);
        if (rc < 0) {
            cli_error("%s: %s", a->command[0],
                      rc == -ENOENT ? "command not found or not executable"
                                    : strerror(-rc));
            return rc == -ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_OTHER;
        }
        r->have_exec = 1;
        ops = &cli_exec_ops;
        handler = &r->exec;
    } else if (a->webhook != NULL) {
        r->hook = cli_webhook_new(a->webhook, a->hook_format, a->headers,
                                  a->n_headers, timeout_ms, jobs);
        if (r->hook == NULL && errno == EINVAL)
            return cli_usage_error("sub", "--webhook: \"%s\" is not an http:// "
                                          "or https:// URL",
                                   a->webhook);
        if (r->hook == NULL) {
            cli_error("--webhook: %s", strerror(errno));
            return CLI_EXIT_OTHER;
        }
        ops = &cli_webhook_ops;
        handler = r->hook;
    }
    if (a->cursor_path != NULL) {
        int rc = cli_cursor_open(&r->cursor, a->cursor_path, err, sizeof(err));
        r->have_cursor = 1;
        if (rc < 0) {
            cli_error("%s", err);
            return CLI_EXIT_OTHER;
        }
        *cursor_existed = r->cursor.present;
    }
    cli_retry_t retry = { .window_ms = a->retry_for_ms,
                          .min_ms = a->retry_min_ms > 0 ? a->retry_min_ms
                                                        : S_RETRY_MIN_MS,
                          .max_ms = a->retry_max_ms > 0 ? a->retry_max_ms
                                                        : S_RETRY_MAX_MS };
    if (retry.min_ms > retry.max_ms)
        retry.max_ms = retry.min_ms;
    if (cli_alerts_init(&r->alerts, c, ops, handler, jobs, &retry,
                        r->have_cursor ? &r->cursor : NULL, a->dead_path)
        < 0) {
        cli_error("out of memory");
        return CLI_EXIT_OTHER;
    }
    r->have_alerts = a->command != NULL || a->webhook != NULL
                     || a->cursor_path != NULL || a->stats_path != NULL;
    return -1;
}

/* The command, with the filters made on the way in *filters. */
static int
s_run(cli_common_t *c, int argc, char **argv, cli_filter_t *filters)
{
    s_args_t a = { .out = { .mode = CLI_OUT_LINE },
                   .sopt = PARLEY_SUB_OPTIONS_INIT,
                   .retry_for_ms = -1 };
    s_run_t r = { .c = c, .a = &a, .filters = filters,
                  .cursor = CLI_CURSOR_INIT };
    int cursor_existed = 0;
    int status = s_parse(c, argc, argv, filters, &a);
    if (status >= 0)
        goto done;
    if ((status = cli_common_ready(c)) != 0)
        goto done;
    if ((status = s_setup(&r, &cursor_existed)) >= 0)
        goto done;
    status = cli_load_keyring(cli_keyring_path(c, a.keyring_path), &r.ring);
    if (status != 0)
        goto done;
    cli_filter_sub(filters, &a.sopt);
    a.sopt.keyring = r.ring;
    cli_signals_install();
    cli_usr1_install();
    if ((status = s_start_point(&r, cursor_existed)) != 0)
        goto done;

    if ((r.sub = cli_sub_new(c, &a.sopt)) == NULL) {
        status = s_sub_failed(&r, -errno);
        goto done;
    }
    cli_info(c, "subscribed to %s", parley_sub_endpoint(r.sub));
    if (r.have_alerts && r.alerts.daemon_id[0] == '\0')
        (void)s_learn_daemon(&r, parley_sub_endpoint(r.sub));
    status = s_loop(&r);
    s_finish(&r);
    if (r.have_exec)
        cli_info(c, "%llu updates, %llu gaps, %llu failed verification; "
                    "%lu commands run, %llu failed",
                 (unsigned long long)r.delivered,
                 (unsigned long long)r.alerts.stats.gaps,
                 (unsigned long long)r.rejected, r.exec.runs,
                 (unsigned long long)r.alerts.stats.failed);
    else if (r.hook != NULL)
        cli_info(c, "%llu updates, %llu gaps, %llu failed verification; "
                    "%lu requests sent, %llu failed",
                 (unsigned long long)r.delivered,
                 (unsigned long long)r.alerts.stats.gaps,
                 (unsigned long long)r.rejected, cli_webhook_sent(r.hook),
                 (unsigned long long)r.alerts.stats.failed);
    else
        cli_info(c, "%llu updates, %llu gaps, %llu failed verification",
                 (unsigned long long)r.delivered,
                 (unsigned long long)r.alerts.stats.gaps,
                 (unsigned long long)r.rejected);
    if (r.have_alerts) {
        char line[512];
        cli_alerts_stats_line(&r.alerts, r.head, line, sizeof(line));
        cli_info(c, "%s", line);
    }
done:
    parley_sub_destroy(&r.sub);
    cli_alerts_free(&r.alerts);
    if (r.have_exec)
        cli_exec_free(&r.exec);
    cli_webhook_free(&r.hook);
    cli_cursor_close(&r.cursor);
    parley_keyring_destroy(&r.ring);
    for (size_t i = 0; i < a.n_headers; i++)
        free(a.headers[i]);
    return status == CLI_EXIT_OK && r.inconsistent ? CLI_EXIT_INCONSISTENT : status;
}

int
cmd_sub(cli_common_t *c, int argc, char **argv)
{
    return cli_with_filters(c, argc, argv, s_run);
}
