/*
 * common.h - what the parley subcommands share: common options, exit
 * codes, error reporting, filter options and the output of updates.
 *
 * The tool uses the public API of libparley (parley.h), jansson, and
 * libsodium for base64 (--raw, verify); the alert path adds libcurl.
 */
#ifndef PARLEY_CLI_COMMON_H
#define PARLEY_CLI_COMMON_H

#include "parley.h"

#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, as documented in `parley --help`. */
enum {
    CLI_EXIT_OK = 0,        /* done */
    CLI_EXIT_USAGE = 1,     /* bad command line or input */
    CLI_EXIT_REJECTED = 2,  /* the daemon (or a check) rejected it */
    CLI_EXIT_NOANSWER = 3,  /* no answer from the daemon */
    CLI_EXIT_KEY = 4,       /* key or keyring file problem */
    CLI_EXIT_OTHER = 5,     /* anything else */
    CLI_EXIT_INCONSISTENT = 6, /* the transparency log contradicts itself */
};

/* Long-only option values, above any short option character. */
enum {
    CLI_OPT_TIMEOUT = 0x100,
    CLI_OPT_NEGOTIATION,
    CLI_OPT_PARTY,
    CLI_OPT_PHASE,
    CLI_OPT_JSON,
    CLI_OPT_KEYRING,
    CLI_OPT_CURVE_SERVER_KEY,
    CLI_OPT_CURVE_KEY,
    CLI_OPT_OR,
    CLI_OPT_CONTEXT,
    CLI_OPT_STATUS_FILTER,
    CLI_OPT_KIND_FILTER,
    CLI_OPT_RAW,
    CLI_OPT_FIRST_FREE, /* subcommands number their own options from here */
};

/* What a slug is, for messages. */
#define CLI_SLUG_RULE                                                        \
    "[a-z0-9][a-z0-9-]{0,31}: lowercase letters, digits and '-', at most "   \
    "32, not starting with '-'"

/* Settings of cli_common_t, as bits of its given and from_env fields. */
enum {
    CLI_SET_SERVER = 1u << 0,
    CLI_SET_TIMEOUT = 1u << 1,
    CLI_SET_CURVE_SERVER_KEY = 1u << 2,
    CLI_SET_CURVE_KEY = 1u << 3,
};

/* Options every subcommand takes. */
typedef struct cli_common {
    const char *server;   /* api endpoint */
    int timeout_ms;       /* per request */
    int quiet;            /* -q: errors only */
    int verbose;          /* -v: say more on stderr */
    const char *curve_server_key; /* daemon's CURVE NAME.pub, or NULL */
    const char *curve_key;        /* our CURVE secret key file, or NULL */
    parley_curve_t *curve;        /* loaded on first use (cli_ping...) */
    int curve_err;                /* why the keys or the context could not
                                     be used (already printed) */
    const char *context;          /* --context or $PARLEY_CONTEXT */
    const char *key_path;         /* signing key of the context, or NULL */
    const char *keyring_path;     /* keyring of the context, or NULL */
    const char *context_used;     /* the context applied, or NULL */
    unsigned given;               /* CLI_SET_*: set by a flag */
    unsigned from_env;            /* CLI_SET_*: set from the environment */
    int ready;                    /* cli_common_ready() has run */
} cli_common_t;

/* getopt_long entries and short letters of the common options. */
#define CLI_COMMON_SHORT "s:qvh"
#define CLI_COMMON_LONG                                                      \
    { "server", required_argument, NULL, 's' },                              \
    { "timeout", required_argument, NULL, CLI_OPT_TIMEOUT },                 \
    { "quiet", no_argument, NULL, 'q' },                                     \
    { "verbose", no_argument, NULL, 'v' },                                   \
    { "curve-server-key", required_argument, NULL, CLI_OPT_CURVE_SERVER_KEY },\
    { "curve-key", required_argument, NULL, CLI_OPT_CURVE_KEY },             \
    { "context", required_argument, NULL, CLI_OPT_CONTEXT },                 \
    { "help", no_argument, NULL, 'h' }

/* Help text for the common options (one block, indented like the rest). */
extern const char cli_common_help[];

/*
 * Defaults: server from PARLEY_SERVER or PARLEY_DEFAULT_SERVER, 5 s; CURVE
 * key files from PARLEY_CURVE_SERVER_KEY and PARLEY_CURVE_KEY; the context
 * from PARLEY_CONTEXT.
 */
void cli_common_init(cli_common_t *c);

/*
 * Apply the client profile (config.h) once the options are read: the
 * context named by --context or $PARLEY_CONTEXT, else the file's
 * default-context. What a flag set stays; a context named explicitly
 * overrides the environment (PARLEY_SERVER...), the default context does
 * not. Called by every function below that talks to the daemon, and by
 * commands that need the context's key or keyring first. Safe to call
 * again.
 *
 * Returns:   0, or CLI_EXIT_USAGE after printing what is wrong (no such
 *            context, a bad config file); later calls return the same.
 */
int cli_common_ready(cli_common_t *c);

/* The keyring file to use: the flag's, else the context's (may be NULL). */
const char *cli_keyring_path(cli_common_t *c, const char *flag_path);

/*
 * Talk to the daemon with the common options, through CurveZMQ when
 * --curve-server-key and --curve-key (or their environment variables) are
 * given. The keys are loaded on first use; a problem with them is printed
 * then, and returned as the error (cli_fail() does not print it again).
 *
 * cli_call_options() fills server, curve and timeout of one-shot call
 * options and returns 0 or that error; cli_ping() and cli_stats() return
 * what parley_ping() and parley_stats() return; cli_pub_new() and
 * cli_sub_new() what parley_pub_new() and parley_sub_new() return (they
 * set server, curve and timeout in opt).
 */
int cli_call_options(cli_common_t *c, parley_call_options_t *o);
int cli_ping(cli_common_t *c, parley_info_t **out);
int cli_stats(cli_common_t *c, parley_stats_t **out);
parley_pub_t *cli_pub_new(cli_common_t *c, const parley_key_t *key,
                          parley_pub_options_t *opt);
parley_sub_t *cli_sub_new(cli_common_t *c, parley_sub_options_t *opt);

/*
 * Apply one common option (not -h, which each command handles).
 * Returns 1 if opt was one, 0 if not, -1 after printing a usage error.
 */
int cli_common_option(cli_common_t *c, int opt, const char *arg);

/* Print "parley: <message>" and a newline on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like cli_error(), unless -q was given. */
void cli_warn(const cli_common_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like cli_error(), only with -v. */
void cli_info(const cli_common_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print a usage error that points at --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Report what getopt_long() returned for a bad option (with an optstring
 * starting "+:" or ":"): '?' unknown, ':' missing value. Returns
 * CLI_EXIT_USAGE.
 */
int cli_option_error(const char *cmd, int opt, char **argv);

/* 1 if err is a reason the daemon gives for refusing a request. */
int cli_is_reject(int err);

/* The exit code for a library error. */
int cli_exit_code(int err);

/*
 * Report a failed talk with the daemon and return its exit code:
 *   rejected      "parley: rejected: <code>: <long text>"
 *   timeout       "parley: no answer from <server> ..."
 *   bad endpoint  "parley: <server>: invalid endpoint"
 *   key refused   "parley: <server> refused this client's CURVE key ..."
 *   no CURVE      "parley: <server> and this client disagree on CURVE ..."
 *   otherwise     "parley: <what>: <long text>"
 * A CURVE key file problem was printed when it was found: only the exit
 * code is returned for it.
 */
int cli_fail(const cli_common_t *c, const char *what, int err);

/*
 * Guess the api endpoint that belongs to a feed endpoint: parleyd's
 * defaults put it one port below. The guess is asked (ping) and kept only
 * if the daemon there names feed as its feed.
 *
 * Returns:   0 with the api endpoint in api, or -1.
 */
int cli_feed_to_api(const cli_common_t *c, const char *feed, char *api,
                    size_t cap);

/* Parse a decimal u64 (no sign, no junk). 0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Parse a decimal int64 that may be negative. 0 or -1. */
int cli_parse_i64(const char *s, int64_t *out);

/* Parse seconds ("5", "0.25") into milliseconds (> 0 unless allow_zero). */
int cli_parse_seconds(const char *s, int allow_zero, int *ms);

/* Parse a phase 0..255. 0 or -1. */
int cli_parse_phase(const char *s, uint32_t *out);

/*
 * Parse a duration for an option ("90s", "30m", "1h", or plain seconds).
 * Returns 0 with *ms, or CLI_EXIT_USAGE after printing "OPTION: ...".
 */
int cli_duration_option(const char *cmd, const char *option, const char *arg,
                        int64_t *ms);

/*
 * Load a secret signing key for -k. A public key file ("this is a public
 * key; use the secret key file (without .pub)"), a directory, a missing
 * or unreadable file and a mode others can read each get a message that
 * says what to do.
 *
 * Returns:   0 with *out set, or CLI_EXIT_KEY after printing the message.
 */
int cli_load_key(const char *path, parley_key_t **out);

/*
 * Print the valid status names on stderr as one line,
 *   "  valid statuses: proposed, talks_scheduled, ..."
 * as the flags and JSON lines that take a status do.
 */
void cli_list_statuses(void);

/* Write the status names, comma-separated, into buf. */
void cli_status_names(char *buf, size_t cap);

/* ------------------------------------------------------------ filters */

/* Filters of one command line: "--or" starts another one. */
#define CLI_FILTERS_MAX 16

typedef struct cli_filter {
    parley_filter_t *sets[CLI_FILTERS_MAX]; /* made on first use */
    size_t n;                               /* sets in use */
    int or_pending;                         /* --or given, no value since */
    unsigned statuses;  /* --status: bit s for status s; 0 = any */
    unsigned kinds;     /* --kind: bit k for kind k; 0 = any */
} cli_filter_t;

#define CLI_FILTER_LONG                                                      \
    { "negotiation", required_argument, NULL, CLI_OPT_NEGOTIATION },         \
    { "party", required_argument, NULL, CLI_OPT_PARTY },                     \
    { "phase", required_argument, NULL, CLI_OPT_PHASE },                     \
    { "or", no_argument, NULL, CLI_OPT_OR },                                 \
    { "status", required_argument, NULL, CLI_OPT_STATUS_FILTER },            \
    { "kind", required_argument, NULL, CLI_OPT_KIND_FILTER }

extern const char cli_filter_help[];

/*
 * Apply one filter option. Returns 1 if opt was one, 0 if not, -1 after
 * printing a usage error (not a slug, phase out of range, too many).
 */
int cli_filter_option(cli_filter_t *f, const char *cmd, int opt,
                      const char *arg);

/*
 * After the options: a trailing --or is a usage error. Returns 0, or -1
 * after printing it.
 */
int cli_filter_done(const cli_filter_t *f, const char *cmd);

/* Put the filters into subscriber or call options (pointing into f). */
void cli_filter_sub(const cli_filter_t *f, parley_sub_options_t *o);
void cli_filter_call(const cli_filter_t *f, parley_call_options_t *o);

/*
 * The part of the filters the tool applies itself: --status and --kind
 * (the daemon knows only negotiation, party and phase). Returns 1 if u
 * passes them (always, without them), else 0.
 */
int cli_filter_local(const cli_filter_t *f, const parley_update_t *u);

/*
 * Does the (negotiation, party, phase) entry match one of the filters'
 * negotiation/party/phase lists (any with no filter)? For tables of the
 * current state, whose rows are entries, not updates.
 */
int cli_filter_entry(const cli_filter_t *f, const char *negotiation,
                     const char *party, uint32_t phase);

/* Free the filters; f can be used again. */
void cli_filter_free(cli_filter_t *f);

/*
 * Run a command that takes filters: run gets an empty cli_filter_t to
 * fill, which is freed after it returns. Returns what run returns.
 */
int cli_with_filters(cli_common_t *c, int argc, char **argv,
                     int (*run)(cli_common_t *c, int argc, char **argv,
                                cli_filter_t *filters));

/*
 * Load the keyring file at path into *out (NULL path: *out = NULL).
 * Returns 0, or CLI_EXIT_KEY after printing what is wrong with it.
 */
int cli_load_keyring(const char *path, parley_keyring_t **out);

/* ------------------------------------------------------ transparency log */

/*
 * Report an event of the transparency log on stderr (LOG_VERIFIED with
 * -v; LOG_STALE and a rejected checkpoint as warnings; LOG_INCONSISTENT
 * always, even with -q, with its evidence), and append the evidence to
 * evidence_path (may be NULL) too.
 *
 * Returns:   0 (not a log event), 1 (reported), 2 (an inconsistency).
 */
int cli_log_event(const cli_common_t *c, const parley_event_t *ev,
                  const char *evidence_path);
/*
 * Resolve a --since/--until argument (a seq, a duration such as 1h, or a
 * timestamp) to a seq: a time is the first seq the daemon received at or
 * after it (found by bisecting the log on received_at; one small replay
 * per step), or the head + 1 when nothing is that recent.
 *
 * Returns:   0 with *seq set, CLI_EXIT_USAGE after printing that arg is
 *            none of the three, or another exit code after printing the
 *            failure to ask the daemon.
 */
int cli_since_seq(cli_common_t *c, const char *cmd, const char *option,
                  const char *arg, uint64_t *seq);

/* ------------------------------------------------------------- output */

typedef enum {
    CLI_OUT_LINE = 0,   /* "#<seq> <time> <negotiation> phase <n> ..." */
    CLI_OUT_JSON,       /* one JSON object per line */
    CLI_OUT_FORMAT,     /* -F FORMAT */
    CLI_OUT_NONE,       /* nothing on stdout */
    CLI_OUT_RAW,        /* --raw: base64 of the signed bytes per line */
} cli_out_mode_t;

typedef struct cli_output {
    cli_out_mode_t mode;
    const char *format; /* with CLI_OUT_FORMAT */
    int given;          /* --json or -F was given */
} cli_output_t;

#define CLI_OUTPUT_LONG { "json", no_argument, NULL, CLI_OPT_JSON }
/* The same with -F/--format and --raw, for the commands that print
 * updates. */
#define CLI_OUTPUT_FORMAT_LONG                                               \
    CLI_OUTPUT_LONG, { "format", required_argument, NULL, 'F' },             \
    { "raw", no_argument, NULL, CLI_OPT_RAW }

/*
 * Apply --json, -F FORMAT or --raw (they exclude each other). Returns 1
 * if opt was one, 0 if not, -1 after printing a usage error.
 */
int cli_output_option(cli_output_t *o, const char *cmd, int opt,
                      const char *arg);

/*
 * For the commands that read updates (sub, replay, state): apply opt if
 * it is a common option (cli_common_option()), a filter or an output
 * option. Returns 1 if it was one, 0 if not, -1 after printing a usage
 * error.
 */
int cli_read_option(cli_common_t *c, cli_filter_t *f, cli_output_t *o,
                    const char *cmd, int opt, const char *arg);

extern const char cli_output_help[];

/*
 * Check a -F format: every % conversion and \ escape must be known.
 * Returns 0, or -1 after printing a usage error.
 */
int cli_format_check(const char *cmd, const char *format);

/*
 * Print one delivery to out in the chosen mode and flush, so that a
 * reader at the other end of a pipe sees each update as it comes.
 * Text modes print control characters as escapes (\n, \t, \xHH) so that
 * an update is always one line and cannot drive the terminal.
 * Returns 0 or -errno (-EPIPE when the reader went away).
 */
int cli_print_delivery(FILE *out, const cli_output_t *o,
                       const parley_delivery_t *d);

/*
 * Print the delivery of an event as cli_print_delivery() does, and, for
 * a delivery of a snapshot (`sub --last`), the parties whose state it
 * holds: " (current for P,Q)" after the line, "current_for": ["P","Q"]
 * in the JSON. Returns 0 or -errno.
 */
int cli_print_event(FILE *out, const cli_output_t *o,
                    const parley_event_t *ev);

/*
 * Print a SignedUpdate that is not in a Delivery (no seq, no
 * received_at) in the chosen mode, as cli_print_delivery() does; %j and
 * --json are not available for it.
 */
int cli_print_signed(FILE *out, const cli_output_t *o,
                     const parley_update_t *u, const uint8_t *signer,
                     const char *signer_name);

/*
 * Write the signed bytes of d (its SignedUpdate) as one line of standard
 * base64 into a heap string, as --raw prints them and `parley verify`
 * reads them. Returns the string (free() it) or NULL with errno set.
 */
char *cli_raw_line(const parley_delivery_t *d);

/*
 * The update as the default line prints it, without the time:
 *   #<seq> <negotiation> phase <n> [<parties>] <status>: <headline>
 * (and " (correction of #A)"...), control characters escaped; for chat
 * messages. Returns a heap string or NULL.
 */
char *cli_update_text(const parley_delivery_t *d);

/*
 * Print UTF-8 text for people: C0 controls, DEL and the C1 controls
 * become escapes (\n, \t, \xHH, \u0085), so that text from an update
 * stays on its line and cannot drive the terminal.
 */
void cli_put_text(FILE *out, const char *s);

/* The parties of an update, comma-separated, into buf. */
void cli_parties(const parley_update_t *u, char *buf, size_t cap);

/* Room for every reference of an update as cli_references() writes it
 * with a one-character mark. */
#define CLI_REFS_CHARS (PARLEY_REFERENCES_MAX * 22 + 1)

/*
 * The references of an update, comma-separated, each after mark ("#":
 * "#4,#7"; "": "4,7"), into buf (cut at a whole reference if cap is too
 * small). Threads: safe.
 */
void cli_references(const parley_update_t *u, const char *mark, char *buf,
                    size_t cap);

/* ------------------------------------------------------------ queries */

/* What an on_delivery callback returns to end a query early, quietly. */
#define CLI_QUERY_STOP (-1)

/*
 * Read a snapshot or replay to its end: each delivery goes to
 * on_delivery; a gap and a delivery that fails verification are reported
 * on stderr (as sub does). A stop signal ends it (status 0).
 *
 * Returns:   an exit code: 0, what on_delivery returned other than 0
 *            (CLI_QUERY_STOP: 0), or the failure of the query.
 */
int cli_query_run(const cli_common_t *c, parley_query_t *q,
                  int (*on_delivery)(void *arg, const parley_delivery_t *d),
                  void *arg);

/* ------------------------------------------------------------ signals */

/* Set by SIGINT/SIGTERM once cli_signals_install() has run. */
extern volatile sig_atomic_t cli_stop;

/*
 * Make SIGINT and SIGTERM set cli_stop (and interrupt blocking calls),
 * and ignore SIGPIPE so that a closed pipe is an EPIPE error instead.
 */
void cli_signals_install(void);

/* Set by SIGUSR1 once cli_usr1_install() has run (parley sub prints its
 * stats then); the handler restarts interrupted calls. */
extern volatile sig_atomic_t cli_usr1;
void cli_usr1_install(void);

/* ---------------------------------------------------------- commands */

int cmd_keygen(cli_common_t *c, int argc, char **argv);
int cmd_pub(cli_common_t *c, int argc, char **argv);
int cmd_sub(cli_common_t *c, int argc, char **argv);
int cmd_replay(cli_common_t *c, int argc, char **argv);
int cmd_state(cli_common_t *c, int argc, char **argv);
int cmd_stats(cli_common_t *c, int argc, char **argv);
int cmd_ping(cli_common_t *c, int argc, char **argv);
int cmd_verify(cli_common_t *c, int argc, char **argv);
int cmd_audit(cli_common_t *c, int argc, char **argv);
int cmd_witness(cli_common_t *c, int argc, char **argv);
int cmd_context(cli_common_t *c, int argc, char **argv);

#endif /* PARLEY_CLI_COMMON_H */
