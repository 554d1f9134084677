/*
 * common.h - what the parley subcommands share: common options, exit
 * codes, error reporting, filter options and the output of updates.
 *
 * The tool uses only the public API of libparley (parley.h) and jansson.
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
    CLI_OPT_FIRST_FREE, /* subcommands number their own options from here */
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
    int curve_err;                /* why loading failed (already printed) */
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
    { "help", no_argument, NULL, 'h' }

/* Help text for the common options (one block, indented like the rest). */
extern const char cli_common_help[];

/*
 * Defaults: server from PARLEY_SERVER or PARLEY_DEFAULT_SERVER, 5 s; CURVE
 * key files from PARLEY_CURVE_SERVER_KEY and PARLEY_CURVE_KEY.
 */
void cli_common_init(cli_common_t *c);

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

/* Parse a decimal u64 (no sign, no junk). 0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Parse a decimal int64 that may be negative. 0 or -1. */
int cli_parse_i64(const char *s, int64_t *out);

/* Parse seconds ("5", "0.25") into milliseconds (> 0 unless allow_zero). */
int cli_parse_seconds(const char *s, int allow_zero, int *ms);

/* Parse a phase 0..255. 0 or -1. */
int cli_parse_phase(const char *s, uint32_t *out);

/* ------------------------------------------------------------ filters */

/* Filters of one command line: "--or" starts another one. */
#define CLI_FILTERS_MAX 16

typedef struct cli_filter {
    parley_filter_t *sets[CLI_FILTERS_MAX]; /* made on first use */
    size_t n;                               /* sets in use */
    int or_pending;                         /* --or given, no value since */
} cli_filter_t;

#define CLI_FILTER_LONG                                                      \
    { "negotiation", required_argument, NULL, CLI_OPT_NEGOTIATION },         \
    { "party", required_argument, NULL, CLI_OPT_PARTY },                     \
    { "phase", required_argument, NULL, CLI_OPT_PHASE },                     \
    { "or", no_argument, NULL, CLI_OPT_OR }

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

/* ------------------------------------------------------------- output */

typedef enum {
    CLI_OUT_LINE = 0,   /* "#<seq> <negotiation> phase <n> [...] ..." */
    CLI_OUT_JSON,       /* one JSON object per line */
    CLI_OUT_FORMAT,     /* -F FORMAT */
    CLI_OUT_NONE,       /* nothing on stdout */
} cli_out_mode_t;

typedef struct cli_output {
    cli_out_mode_t mode;
    const char *format; /* with CLI_OUT_FORMAT */
    int given;          /* --json or -F was given */
} cli_output_t;

#define CLI_OUTPUT_LONG { "json", no_argument, NULL, CLI_OPT_JSON }
/* The same with -F/--format, for the commands that print updates. */
#define CLI_OUTPUT_FORMAT_LONG                                               \
    CLI_OUTPUT_LONG, { "format", required_argument, NULL, 'F' }

/*
 * Apply --json or -F FORMAT (they exclude each other). Returns 1 if opt
 * was one, 0 if not, -1 after printing a usage error.
 */
int cli_output_option(cli_output_t *o, const char *cmd, int opt,
                      const char *arg);

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
 * Print one entry of the current state (`parley state`): the line
 * "NEGOTIATION phase N PARTY: STATUS: HEADLINE (#SEQ)", the JSON object
 * {"negotiation", "phase", "party", "seq", "delivery": {...}}, or the -F
 * format applied to its delivery. Returns 0 or -errno.
 */
int cli_print_entry(FILE *out, const cli_output_t *o, const char *negotiation,
                    const char *party, uint32_t phase,
                    const parley_delivery_t *d);

/*
 * Print a SignedUpdate that is not in a Delivery (no seq, no
 * received_at) in the chosen mode, as cli_print_delivery() does; %j and
 * --json are not available for it.
 */
int cli_print_signed(FILE *out, const cli_output_t *o,
                     const parley_update_t *u, const uint8_t *signer,
                     const char *signer_name);

/* The parties of an update, comma-separated, into buf. */
void cli_parties(const parley_update_t *u, char *buf, size_t cap);

/* ------------------------------------------------------------ signals */

/* Set by SIGINT/SIGTERM once cli_signals_install() has run. */
extern volatile sig_atomic_t cli_stop;

/*
 * Make SIGINT and SIGTERM set cli_stop (and interrupt blocking calls),
 * and ignore SIGPIPE so that a closed pipe is an EPIPE error instead.
 */
void cli_signals_install(void);

/* ---------------------------------------------------------- commands */

int cmd_keygen(cli_common_t *c, int argc, char **argv);
int cmd_pub(cli_common_t *c, int argc, char **argv);
int cmd_sub(cli_common_t *c, int argc, char **argv);
int cmd_replay(cli_common_t *c, int argc, char **argv);
int cmd_state(cli_common_t *c, int argc, char **argv);
int cmd_stats(cli_common_t *c, int argc, char **argv);
int cmd_ping(cli_common_t *c, int argc, char **argv);
int cmd_verify(cli_common_t *c, int argc, char **argv);

#endif /* PARLEY_CLI_COMMON_H */
