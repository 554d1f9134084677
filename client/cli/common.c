/*
 * common.c - option parsing, error reporting and update output shared by
 * the parley subcommands.
 */
#include "common.h"

#include "profile.h"
#include "probe.h"
#include "timefmt.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cli_common_help[] =
    "  -s, --server EP     api endpoint of parleyd (default: $PARLEY_SERVER,\n"
    "                      else " PARLEY_DEFAULT_SERVER "), or a list\n"
    "                      EP,EP,...: the next is tried when one does not\n"
    "                      answer\n"
    "      --timeout SEC   seconds to wait for each answer (default 5)\n"
    "      --curve-server-key FILE\n"
    "                      the daemon's CURVE public key (its NAME.pub), for\n"
    "                      a daemon with curve on (default:\n"
    "                      $PARLEY_CURVE_SERVER_KEY)\n"
    "      --curve-key FILE\n"
    "                      this client's CURVE secret key file, mode 0600\n"
    "                      (parley keygen --curve; default:\n"
    "                      $PARLEY_CURVE_KEY)\n"
    "      --context NAME  take server, key, keyring, CURVE keys and timeout\n"
    "                      from this context of the config file\n"
    "                      ($PARLEY_CONFIG, else ~/.config/parley/config;\n"
    "                      default: $PARLEY_CONTEXT, else its\n"
    "                      default-context); flags still win\n"
    "  -q, --quiet         print errors only\n"
    "  -v, --verbose       say more on stderr\n"
    "  -h, --help          print this help\n";

const char cli_filter_help[] =
    "      --negotiation N only this negotiation (repeat for any of several)\n"
    "      --party P       only updates naming this party (repeatable)\n"
    "      --phase N       only this phase, 0-255 (repeatable)\n"
    "      --or            start another filter: an update that matches any\n"
    "                      of them is shown, once (e.g. --party hamas --or\n"
    "                      --phase 2; up to 16 filters)\n"
    "      --status S      only updates with this status (repeatable; checked\n"
    "                      by parley itself, for every filter)\n"
    "      --kind K        only this kind: update, correction or retraction\n"
    "                      (repeatable; checked by parley itself)\n"
    "  Values of one option are alternatives; different options must all\n"
    "  match.\n";

const char cli_output_help[] =
    "      --json          one JSON object per update and line, with the\n"
    "                      signed bytes (signed_body, signature, signer)\n"
    "      --raw           the exact signed bytes of each update (its\n"
    "                      SignedUpdate), one base64 line each, for\n"
    "                      parley verify\n"
    "  -F, --format FMT    print each update as FMT, then a newline:\n"
    "                        %s seq          %n negotiation  %p parties\n"
    "                        %P phase        %S status       %k kind\n"
    "                        %h headline     %b body         %l location\n"
    "                        %i signer id    %N signer name  %j JSON\n"
    "                        %I issued_at    %R received_at  (unix ms)\n"
    "                        %t issued_at    %w received_at  (local ISO 8601)\n"
    "                        %T issued_at    %W received_at  (UTC ISO 8601)\n"
    "                        %% a %\n"
    "                      and the escapes \\n \\t \\\\\n"
    "  Default output, one line per update, with the local time it was\n"
    "  issued:\n"
    "    #<seq> <YYYY-MM-DD HH:MM:SS> <negotiation> phase <n> [<party>,...]\n"
    "    <status>: <headline>\n"
    "  followed by \" (correction of #A)\" or \" (retraction of #A)\" for those\n"
    "  kinds. Text output shows control characters as escapes (\\n, \\xHH),\n"
    "  so each update stays on one line; --json carries the exact text.\n";

/* An environment variable that is set and not empty, or NULL. */
static const char *
s_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

void
cli_common_init(cli_common_t *c)
{
    memset(c, 0, sizeof(*c));
    c->server = s_env("PARLEY_SERVER");
    if (c->server != NULL)
        c->from_env |= CLI_SET_SERVER;
    else
        c->server = PARLEY_DEFAULT_SERVER;
    c->timeout_ms = 5000;
    if ((c->curve_server_key = s_env("PARLEY_CURVE_SERVER_KEY")) != NULL)
        c->from_env |= CLI_SET_CURVE_SERVER_KEY;
    if ((c->curve_key = s_env("PARLEY_CURVE_KEY")) != NULL)
        c->from_env |= CLI_SET_CURVE_KEY;
    c->context = s_env("PARLEY_CONTEXT");
}

/* The config file in force, freed at exit. */
static cli_config_t s_config;

static void
s_config_free(void)
{
    cli_config_free(&s_config);
}

/* Set a string setting from a context: always if the context was named,
 * else only where neither a flag nor the environment set it. */
static void
s_from_context(cli_common_t *c, unsigned bit, const char **field,
               const char *value, int named)
{
    if (value == NULL || (c->given & bit) != 0)
        return;
    if (!named && (c->from_env & bit) != 0)
        return;
    *field = value;
}

int
cli_common_ready(cli_common_t *c)
{
    char path[4096], err[512] = "";
    if (c->ready)
        return c->curve_err == PARLEY_EARG ? CLI_EXIT_USAGE : 0;
    c->ready = 1;
    if (cli_config_path(path, sizeof(path)) < 0) {
        if (c->context == NULL)
            return 0;
        cli_error("--context %s: no config file (set $PARLEY_CONFIG or "
                  "$HOME)",
                  c->context);
        c->curve_err = PARLEY_EARG;
        return CLI_EXIT_USAGE;
    }
    if (s_config.path == NULL)
        atexit(s_config_free);
    cli_config_free(&s_config);
    int rc = cli_config_load(path, &s_config, err, sizeof(err));
    if (rc == -ENOENT && c->context == NULL)
        return 0;
    if (rc == -ENOENT) {
        cli_error("--context %s: there is no config file %s (see parley "
                  "context --help for its format)",
                  c->context, path);
        c->curve_err = PARLEY_EARG;
        return CLI_EXIT_USAGE;
    }
    if (rc < 0) {
        cli_error("%s", err);
        c->curve_err = PARLEY_EARG;
        return CLI_EXIT_USAGE;
    }
    int named = c->context != NULL;
    const char *name = named ? c->context : s_config.default_context;
    if (name == NULL)
        return 0;
    const cli_context_t *x = cli_config_find(&s_config, name);
    if (x == NULL) {
        char names[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < s_config.n; i++) {
            int n = snprintf(names + used, sizeof(names) - used, "%s%s",
                             i > 0 ? ", " : "", s_config.contexts[i].name);
            if (n < 0 || (size_t)n >= sizeof(names) - used)
                break;
            used += (size_t)n;
        }
        cli_error("--context %s: no such context in %s (%s%s)", name, path,
                  s_config.n > 0 ? "it has: " : "it defines none",
                  names);
        c->curve_err = PARLEY_EARG;
        return CLI_EXIT_USAGE;
    }
    s_from_context(c, CLI_SET_SERVER, &c->server, x->server, named);
    s_from_context(c, CLI_SET_CURVE_SERVER_KEY, &c->curve_server_key,
                   x->curve_server_key, named);
    s_from_context(c, CLI_SET_CURVE_KEY, &c->curve_key, x->curve_key, named);
    if (x->timeout_ms > 0 && (c->given & CLI_SET_TIMEOUT) == 0)
        c->timeout_ms = x->timeout_ms;
    c->key_path = x->key;
    c->keyring_path = x->keyring;
    c->context_used = x->name;
    return 0;
}

const char *
cli_keyring_path(cli_common_t *c, const char *flag_path)
{
    if (flag_path != NULL)
        return flag_path;
    return cli_common_ready(c) == 0 ? c->keyring_path : NULL;
}

int
cli_common_option(cli_common_t *c, int opt, const char *arg)
{
    switch (opt) {
    case 's':
        if (*arg == '\0') {
            cli_error("--server needs an endpoint such as %s",
                      PARLEY_DEFAULT_SERVER);
            return -1;
        }
        c->server = arg;
        c->given |= CLI_SET_SERVER;
        return 1;
    case CLI_OPT_TIMEOUT:
        if (cli_parse_seconds(arg, 0, &c->timeout_ms) < 0) {
            cli_error("--timeout: \"%s\" is not a number of seconds above 0",
                      arg);
            return -1;
        }
        c->given |= CLI_SET_TIMEOUT;
        return 1;
    case CLI_OPT_CONTEXT:
        if (!parley_slug_valid(arg)) {
            cli_error("--context: \"%s\" is not a context name (" CLI_SLUG_RULE
                      ")",
                      arg);
            return -1;
        }
        c->context = arg;
        return 1;
    case CLI_OPT_CURVE_SERVER_KEY:
    case CLI_OPT_CURVE_KEY:
        if (*arg == '\0') {
            cli_error("--%s needs a file name", opt == CLI_OPT_CURVE_KEY
                                                    ? "curve-key"
                                                    : "curve-server-key");
            return -1;
        }
        if (opt == CLI_OPT_CURVE_KEY)
            c->curve_key = arg;
        else
            c->curve_server_key = arg;
        c->given |= opt == CLI_OPT_CURVE_KEY ? CLI_SET_CURVE_KEY
                                             : CLI_SET_CURVE_SERVER_KEY;
        return 1;
    case 'q':
        c->quiet = 1;
        c->verbose = 0;
        return 1;
    case 'v':
        c->verbose = 1;
        c->quiet = 0;
        return 1;
    default:
        return 0;
    }
}

static void
s_vprint(const char *fmt, va_list ap)
{
    fflush(stdout); /* keep stdout and stderr in order on a terminal */
    fputs("parley: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vprint(fmt, ap);
    va_end(ap);
}

void
cli_warn(const cli_common_t *c, const char *fmt, ...)
{
    if (c->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_vprint(fmt, ap);
    va_end(ap);
}

void
cli_info(const cli_common_t *c, const char *fmt, ...)
{
    if (!c->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_vprint(fmt, ap);
    va_end(ap);
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vprint(fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        fprintf(stderr, "Try 'parley %s --help'.\n", cmd);
    else
        fprintf(stderr, "Try 'parley --help'.\n");
    return CLI_EXIT_USAGE;
}

int
cli_option_error(const char *cmd, int opt, char **argv)
{
    char shortopt[3] = { '-', (char)optopt, '\0' };
    const char *what = optopt > 0 && optopt < 0x100 ? shortopt
                                                    : argv[optind - 1];
    if (opt == ':')
        return cli_usage_error(cmd, "option \"%s\" needs a value", what);
    return cli_usage_error(cmd, "unknown option \"%s\"", what);
}

int
cli_is_reject(int err)
{
    switch (err) {
    case PARLEY_ETOOLARGE:
    case PARLEY_EMALFORMED:
    case PARLEY_EUNKNOWNSIGNER:
    case PARLEY_EBADSIG:
    case PARLEY_EINVALID:
    case PARLEY_EFORBIDDEN:
    case PARLEY_ESTALE:
    case PARLEY_EFUTURE:
    case PARLEY_EREPLAY:
    case PARLEY_ETRUNCATED:
    case PARLEY_EUNAVAILABLE:
    case PARLEY_EBADREQUEST:
    case PARLEY_ERATELIMITED:
        return 1;
    default:
        return 0;
    }
}

/* 1 for the errors libzmq gives for an endpoint it cannot use. */
static int
s_is_bad_endpoint(int err)
{
    return err == -EINVAL || err == -EPROTONOSUPPORT || err == -ENODEV
           || err == PARLEY_EARG;
}

int
cli_exit_code(int err)
{
    if (err == 0)
        return CLI_EXIT_OK;
    if (cli_is_reject(err))
        return CLI_EXIT_REJECTED;
    switch (err) {
    case PARLEY_ETIMEOUT:
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
        return CLI_EXIT_NOANSWER;
    case PARLEY_EKEYPERM:
    case PARLEY_EKEYFILE:
    case PARLEY_EKEYRING:
    case -EACCES: /* the daemon refused our CURVE key */
        return CLI_EXIT_KEY;
    case PARLEY_EARG:
        return CLI_EXIT_USAGE;
    default:
        return CLI_EXIT_OTHER;
    }
}

/* The api endpoint a message names: the one of a list in use if known. */
static const char *
s_single_endpoint(const cli_common_t *c)
{
    return strchr(c->server, ',') == NULL ? c->server : NULL;
}

/*
 * After a timeout or a protocol error with the one endpoint given, look
 * at what answers there and say it. Returns the exit code after printing,
 * or -1 when the probe found nothing better to say than the caller.
 */
static int
s_diagnose(const cli_common_t *c, int err)
{
    char type[32];
    const char *ep = s_single_endpoint(c);
    if (ep == NULL)
        return -1;
    /* a ZeroMQ peer answers our greeting at once: a second is plenty */
    cli_probe_t p = cli_probe(ep, 1000, type, sizeof(type));
    switch (p) {
    case CLI_PROBE_NOTHING:
        cli_error("no answer from %s within %d.%03d s: nothing listens there "
                  "(is parleyd running, and is that its api endpoint?)",
                  ep, c->timeout_ms / 1000, c->timeout_ms % 1000);
        return CLI_EXIT_NOANSWER;
    case CLI_PROBE_SILENT:
    case CLI_PROBE_NOT_ZMTP:
        cli_error("no parley daemon answers at %s: something listens there "
                  "but %s (give parleyd's api endpoint, by default %s)",
                  ep,
                  p == CLI_PROBE_SILENT ? "it says nothing"
                                        : "it does not speak ZeroMQ",
                  PARLEY_DEFAULT_SERVER);
        return CLI_EXIT_NOANSWER;
    case CLI_PROBE_ZMTP:
        if (strcmp(type, "XPUB") == 0 || strcmp(type, "PUB") == 0) {
            char api[PARLEY_TOPIC_MAX + 300];
            if (cli_feed_to_api(c, ep, api, sizeof(api)) == 0)
                cli_error("%s is parleyd's feed endpoint; the api is %s "
                          "(parley -s %s ...)",
                          ep, api, api);
            else
                cli_error("%s is parleyd's feed endpoint, which only "
                          "subscribers read; give its api endpoint (by "
                          "default %s; parleyd logs \"api bound at ...\" "
                          "when it starts)",
                          ep, PARLEY_DEFAULT_SERVER);
            return CLI_EXIT_USAGE;
        }
        if (type[0] != '\0' && strcmp(type, "ROUTER") != 0) {
            cli_error("no parley daemon answers at %s: it is a ZeroMQ %s "
                      "socket, and parleyd's api is a ROUTER",
                      ep, type);
            return CLI_EXIT_NOANSWER;
        }
        if (err == PARLEY_ETIMEOUT) {
            cli_error("no answer from %s within %d.%03d s: a ZeroMQ socket "
                      "answers there, but not as parleyd does (a busy "
                      "daemon? try --timeout)",
                      ep, c->timeout_ms / 1000, c->timeout_ms % 1000);
            return CLI_EXIT_NOANSWER;
        }
        return -1;
    case CLI_PROBE_CURVE:
        if (c->curve == NULL) {
            cli_error("%s runs with curve on: give the daemon's CURVE "
                      "public key (--curve-server-key) and this client's "
                      "key (--curve-key)",
                      ep);
            return CLI_EXIT_OTHER;
        }
        return -1;
    case CLI_PROBE_UNREACHABLE:
    case CLI_PROBE_OTHER:
    default:
        return -1;
    }
}

int
cli_feed_to_api(const cli_common_t *c, const char *feed, char *api,
                size_t cap)
{
    char host[256];
    int port;
    if (cli_endpoint_split(feed, host, sizeof(host), &port) < 0 || port < 2)
        return -1;
    /* parleyd's defaults put the api one port below the feed */
    int n = snprintf(api, cap, strchr(host, ':') != NULL ? "tcp://[%s]:%d"
                                                         : "tcp://%s:%d",
                     host, port - 1);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    parley_info_t *info = NULL;
    char fhost[256];
    int fport = 0;
    o.server = api;
    o.curve = c->curve;
    o.timeout_ms = 1000;
    if (parley_ping(&o, &info) < 0)
        return -1;
    int same = cli_endpoint_split(parley_info_feed(info), fhost, sizeof(fhost),
                                  &fport)
                   == 0
               && fport == port;
    parley_info_destroy(&info);
    return same ? 0 : -1;
}

int
cli_fail(const cli_common_t *c, const char *what, int err)
{
    if (c->curve_err != 0 && err == c->curve_err)
        return cli_exit_code(err); /* printed when the keys were loaded */
    if (err == -EACCES && what == NULL) {
        cli_error("%s refused this client's CURVE key (the daemon's operator "
                  "must add the key of %s.pub to curve_clients)",
                  c->server, c->curve_key != NULL ? c->curve_key : "your key");
        return CLI_EXIT_KEY;
    }
    if ((err == PARLEY_EPROTO || err == PARLEY_ETIMEOUT) && what == NULL) {
        int rc = s_diagnose(c, err);
        if (rc >= 0)
            return rc;
    }
    if (err == PARLEY_EPROTO && what == NULL) {
        if (c->curve == NULL)
            cli_error("%s and this client disagree on security: the daemon "
                      "may run with curve on (give --curve-server-key and "
                      "--curve-key)",
                      c->server);
        else
            cli_error("%s and this client disagree on security: the daemon "
                      "does not use CURVE, or %s is not its key",
                      c->server, c->curve_server_key);
        return CLI_EXIT_OTHER;
    }
    if (cli_is_reject(err)) {
        cli_error("rejected: %s: %s", parley_error_name(err),
                  parley_strerror(err));
        return CLI_EXIT_REJECTED;
    }
    if (err == PARLEY_ETIMEOUT) {
        cli_error("no answer from %s within %d.%03d s (is parleyd running?)",
                  c->server, c->timeout_ms / 1000, c->timeout_ms % 1000);
        return CLI_EXIT_NOANSWER;
    }
    if (s_is_bad_endpoint(err) && what == NULL) {
        cli_error("%s: invalid endpoint (expected e.g. %s)", c->server,
                  PARLEY_DEFAULT_SERVER);
        return CLI_EXIT_USAGE;
    }
    cli_error("%s: %s", what != NULL ? what : c->server,
              parley_strerror(err));
    return cli_exit_code(err);
}

int
cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int
cli_parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

int
cli_parse_seconds(const char *s, int allow_zero, int *ms)
{
    /* Digits, optionally a point and more digits: "5", "0.25", ".5".
     * Parsed by hand to stay exact (and free of locale and libm); what is
     * below a millisecond rounds up, so "0.0001" still means some time. */
    long long whole = 0;
    int frac = 0, frac_digits = 0, digits = 0, below_ms = 0;
    const char *p = s;
    if (p == NULL)
        return -1;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        whole = whole * 10 + (*p - '0');
        if (whole > INT_MAX / 1000)
            return -1;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (frac_digits < 3) {
                frac = frac * 10 + (*p - '0');
                frac_digits++;
            } else if (*p != '0') {
                below_ms = 1;
            }
        }
    }
    if (*p != '\0' || digits == 0)
        return -1;
    for (; frac_digits < 3; frac_digits++)
        frac *= 10;
    long long r = whole * 1000 + frac + below_ms;
    if (r > INT_MAX || (r == 0 && !allow_zero))
        return -1;
    *ms = (int)r;
    return 0;
}

int
cli_parse_phase(const char *s, uint32_t *out)
{
    uint64_t v;
    if (cli_parse_u64(s, &v) < 0 || v > PARLEY_PHASE_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int
cli_duration_option(const char *cmd, const char *option, const char *arg,
                    int64_t *ms)
{
    if (cli_parse_duration(arg, 1, ms) == 0)
        return 0;
    return cli_usage_error(cmd, "%s: \"%s\" is not a duration (such as 90s, "
                                "30m, 1h, 2d, or seconds)",
                           option, arg);
}

void
cli_status_names(char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (int s = PARLEY_STATUS_PROPOSED; s <= PARLEY_STATUS_COLLAPSED; s++) {
        int n = snprintf(buf + used, cap - used, "%s%s",
                         s > PARLEY_STATUS_PROPOSED ? ", " : "",
                         parley_status_name((parley_status_t)s));
        if (n < 0 || (size_t)n >= cap - used)
            return;
        used += (size_t)n;
    }
}

void
cli_list_statuses(void)
{
    char names[256];
    cli_status_names(names, sizeof(names));
    fprintf(stderr, "  valid statuses: %s\n", names);
}

int
cli_load_key(const char *path, parley_key_t **out)
{
    struct stat st;
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    size_t len = strlen(path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cli_error("%s is a directory; -k takes a secret key file, such as "
                  "the NAME that parley keygen -o NAME wrote",
                  path);
        return CLI_EXIT_KEY;
    }
    if ((*out = parley_key_load(path)) != NULL)
        return 0;
    int err = -errno;
    /* A public key: by name, or by content (a single base64 key). */
    if ((len > 4 && strcmp(path + len - 4, ".pub") == 0)
        || ((err == PARLEY_EKEYFILE || err == PARLEY_EKEYPERM)
            && parley_pubkey_load(path, pk) == 0)) {
        if (len > 4 && strcmp(path + len - 4, ".pub") == 0)
            cli_error("%s is a public key; use the secret key file (without "
                      ".pub): %.*s",
                      path, (int)(len - 4), path);
        else
            cli_error("%s is a public key; use the secret key file (without "
                      ".pub)",
                      path);
        return CLI_EXIT_KEY;
    }
    if (err == PARLEY_EKEYPERM)
        cli_error("%s: refusing a secret key file that others can read or "
                  "that is not yours; fix it with: chmod 600 %s",
                  path, path);
    else if (err == PARLEY_EKEYFILE)
        cli_error("%s is not a parley secret key file (parley keygen -o NAME "
                  "writes one)",
                  path);
    else
        cli_error("%s: %s", path, parley_strerror(err));
    return CLI_EXIT_KEY;
}

/* ----------------------------------------------------------------- CURVE */

static parley_curve_t *s_curve_loaded; /* wiped at exit */

static void
s_curve_free(void)
{
    parley_curve_destroy(&s_curve_loaded);
}

/*
 * Load the CURVE keys named by the options, once. Returns 0 (c->curve set,
 * or NULL without options) or an error already printed (c->curve_err).
 */
static int
s_curve(cli_common_t *c)
{
    if (cli_common_ready(c) != 0)
        return c->curve_err;
    if (c->curve != NULL || c->curve_err != 0)
        return c->curve_err;
    if (c->curve_server_key == NULL && c->curve_key == NULL)
        return 0;
    if (c->curve_server_key == NULL || c->curve_key == NULL) {
        cli_error("%s is given but %s is not: CURVE needs the daemon's public "
                  "key and a key pair of this client",
                  c->curve_key != NULL ? "--curve-key" : "--curve-server-key",
                  c->curve_key != NULL ? "--curve-server-key"
                                       : "--curve-key");
        return c->curve_err = PARLEY_EARG;
    }
    c->curve = parley_curve_load(c->curve_server_key, c->curve_key);
    if (c->curve != NULL) {
        if (s_curve_loaded == NULL)
            atexit(s_curve_free);
        parley_curve_destroy(&s_curve_loaded);
        s_curve_loaded = c->curve;
        return 0;
    }
    int err = -errno;
    size_t kl = strlen(c->curve_key);
    if (err == PARLEY_EKEYPERM && kl > 4
        && strcmp(c->curve_key + kl - 4, ".pub") == 0)
        cli_error("%s is a public key file; --curve-key takes this client's "
                  "secret key file (the one without .pub)",
                  c->curve_key);
    else if (err == PARLEY_EKEYPERM)
        cli_error("%s: refusing a secret key file that others can read or "
                  "that is not yours; fix it with: chmod 600 %s",
                  c->curve_key, c->curve_key);
    else if (err == PARLEY_EKEYFILE)
        cli_error("%s must be the daemon's CURVE public key (NAME.pub) and "
                  "%s this client's CURVE secret key file (both as written "
                  "by parley keygen --curve)",
                  c->curve_server_key, c->curve_key);
    else if (access(c->curve_server_key, R_OK) != 0)
        cli_error("%s: %s", c->curve_server_key, strerror(errno));
    else
        cli_error("%s: %s", c->curve_key, parley_strerror(err));
    return c->curve_err = err == 0 ? PARLEY_EKEYFILE : err;
}

int
cli_call_options(cli_common_t *c, parley_call_options_t *o)
{
    int rc = s_curve(c);
    o->server = c->server;
    o->curve = c->curve;
    o->timeout_ms = c->timeout_ms;
    return rc;
}

int
cli_ping(cli_common_t *c, parley_info_t **out)
{
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    int rc = cli_call_options(c, &o);
    return rc < 0 ? rc : parley_ping(&o, out);
}

int
cli_stats(cli_common_t *c, parley_stats_t **out)
{
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    int rc = cli_call_options(c, &o);
    return rc < 0 ? rc : parley_stats(&o, out);
}

parley_pub_t *
cli_pub_new(cli_common_t *c, const parley_key_t *key,
            parley_pub_options_t *opt)
{
    int rc = s_curve(c);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    /* --timeout is the whole wait, as the messages say: the library sends
     * a request up to `attempts` times, each waiting timeout_ms. */
    size_t endpoints = 1;
    for (const char *p = c->server; *p != '\0'; p++)
        endpoints += *p == ',';
    int attempts = opt->attempts > 0 ? opt->attempts
                   : endpoints > 2   ? (int)endpoints
                                     : 2;
    opt->server = c->server;
    opt->curve = c->curve;
    opt->attempts = attempts;
    opt->timeout_ms = c->timeout_ms / attempts > 0 ? c->timeout_ms / attempts
                                                   : 1;
    return parley_pub_new(key, opt);
}

parley_sub_t *
cli_sub_new(cli_common_t *c, parley_sub_options_t *opt)
{
    int rc = s_curve(c);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    opt->server = c->server;
    opt->curve = c->curve;
    opt->timeout_ms = c->timeout_ms;
    return parley_sub_new(opt);
}

/* ---------------------------------------------------------------- filter */

/* The filter values go into: the last set, made on first use (and after
 * --or). */
static parley_filter_t *
s_filter_current(cli_filter_t *f)
{
    if (f->n == 0 || f->or_pending) {
        if ((f->sets[f->n] = parley_filter_new()) == NULL)
            return NULL;
        f->n++;
        f->or_pending = 0;
    }
    return f->sets[f->n - 1];
}

int
cli_filter_done(const cli_filter_t *f, const char *cmd)
{
    if (!f->or_pending)
        return 0;
    cli_usage_error(cmd, "--or must stand between two filters");
    return -1;
}

int
cli_filter_option(cli_filter_t *f, const char *cmd, int opt, const char *arg)
{
    const char *name;
    uint32_t phase = 0;
    switch (opt) {
    case CLI_OPT_NEGOTIATION:
        name = "--negotiation";
        break;
    case CLI_OPT_PARTY:
        name = "--party";
        break;
    case CLI_OPT_OR:
        if (f->n == 0 || f->or_pending) {
            cli_usage_error(cmd, "--or must stand between two filters");
            return -1;
        }
        if (f->n == CLI_FILTERS_MAX) {
            cli_usage_error(cmd, "--or: at most %d filters", CLI_FILTERS_MAX);
            return -1;
        }
        f->or_pending = 1;
        return 1;
    case CLI_OPT_PHASE:
        name = "--phase";
        if (cli_parse_phase(arg, &phase) < 0) {
            cli_usage_error(cmd, "--phase: \"%s\" is not a phase 0-255", arg);
            return -1;
        }
        break;
    case CLI_OPT_STATUS_FILTER: {
        parley_status_t st;
        if (parley_status_parse(arg, &st) != 0
            || st == PARLEY_STATUS_UNSPECIFIED) {
            cli_error("--status: unknown status \"%s\"", arg);
            cli_list_statuses();
            fprintf(stderr, "Try 'parley %s --help'.\n", cmd);
            return -1;
        }
        f->statuses |= 1u << st;
        return 1;
    }
    case CLI_OPT_KIND_FILTER: {
        parley_kind_t k;
        if (parley_kind_parse(arg, &k) != 0) {
            cli_usage_error(cmd, "--kind: unknown kind \"%s\" (valid: update, "
                                 "correction, retraction)",
                            arg);
            return -1;
        }
        f->kinds |= 1u << k;
        return 1;
    }
    default:
        return 0;
    }
    if (opt != CLI_OPT_PHASE && !parley_slug_valid(arg)) {
        cli_usage_error(cmd, "%s: \"%s\" is not a slug (" CLI_SLUG_RULE ")",
                        name, arg);
        return -1;
    }
    parley_filter_t *set = s_filter_current(f);
    if (set == NULL) {
        cli_error("out of memory");
        return -1;
    }
    int rc = opt == CLI_OPT_NEGOTIATION ? parley_filter_add_negotiation(set, arg)
             : opt == CLI_OPT_PARTY     ? parley_filter_add_party(set, arg)
                                        : parley_filter_add_phase(set, phase);
    if (rc == -ENOBUFS) {
        cli_usage_error(cmd, "%s: at most 64 values", name);
        return -1;
    }
    if (rc < 0) {
        cli_usage_error(cmd, "%s: \"%s\": %s", name, arg, parley_strerror(rc));
        return -1;
    }
    return 1;
}

void
cli_filter_sub(const cli_filter_t *f, parley_sub_options_t *o)
{
    o->filters = (const parley_filter_t *const *)f->sets;
    o->n_filters = f->n;
}

void
cli_filter_call(const cli_filter_t *f, parley_call_options_t *o)
{
    o->filters = (const parley_filter_t *const *)f->sets;
    o->n_filters = f->n;
}

int
cli_filter_local(const cli_filter_t *f, const parley_update_t *u)
{
    unsigned st = (unsigned)parley_update_status(u);
    unsigned k = (unsigned)parley_update_kind(u);
    if (f->statuses != 0 && (st >= 32 || (f->statuses & (1u << st)) == 0))
        return 0;
    if (f->kinds != 0 && (k >= 32 || (f->kinds & (1u << k)) == 0))
        return 0;
    return 1;
}

int
cli_filter_entry(const cli_filter_t *f, const char *negotiation,
                 const char *party, uint32_t phase)
{
    if (f->n == 0)
        return 1;
    /* An update that names just this entry matches a filter exactly when
     * the entry does. */
    parley_update_t *u = parley_update_new();
    int match = 0;
    if (u != NULL && parley_update_set_negotiation(u, negotiation) == 0
        && parley_update_add_party(u, party) == 0
        && parley_update_set_phase(u, phase) == 0)
        for (size_t i = 0; i < f->n && !match; i++)
            match = parley_filter_match(f->sets[i], u);
    parley_update_destroy(&u);
    return match;
}

void
cli_filter_free(cli_filter_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        parley_filter_destroy(&f->sets[i]);
    f->n = 0;
    f->statuses = 0;
    f->kinds = 0;
}

int
cli_with_filters(cli_common_t *c, int argc, char **argv,
                 int (*run)(cli_common_t *c, int argc, char **argv,
                            cli_filter_t *filters))
{
    cli_filter_t filters = { .n = 0 };
    int status = run(c, argc, argv, &filters);
    cli_filter_free(&filters);
    return status;
}

int
cli_load_keyring(const char *path, parley_keyring_t **out)
{
    char err[512] = "";
    *out = NULL;
    if (path == NULL)
        return 0;
    if ((*out = parley_keyring_load(path, err, sizeof(err))) != NULL)
        return 0;
    if (err[0] != '\0')
        cli_error("%s", err); /* names the file, and the line if any */
    else
        cli_error("%s: %s", path, parley_strerror(-errno));
    return CLI_EXIT_KEY;
}

/* ------------------------------------------------------- seq from time */

/*
 * received_at of the delivery with this seq: 1 with *ms set, 0 if the
 * daemon does not hold it (or it failed verification), or an error.
 */
static int
s_received_at(const parley_call_options_t *o, uint64_t seq, int64_t *ms)
{
    parley_query_t *q = NULL;
    const parley_event_t *ev;
    int rc = parley_replay(seq, seq, o, &q);
    while (rc == 0 && (rc = parley_query_next(q, &ev)) == 1) {
        if (parley_event_type(ev) == PARLEY_EVENT_DELIVERY) {
            *ms = parley_delivery_received_at(parley_event_delivery(ev));
            rc = 1;
            break;
        }
    }
    parley_query_destroy(&q);
    return rc == PARLEY_ETRUNCATED ? 0 : rc;
}

int
cli_since_seq(cli_common_t *c, const char *cmd, const char *option,
              const char *arg, uint64_t *seq)
{
    cli_point_t pt;
    int until = strcmp(option, "--until") == 0;
    if (cli_parse_point(arg, parley_now_ms(), &pt) < 0)
        return cli_usage_error(cmd, "%s: \"%s\" is not a seq, a duration "
                                    "(such as 30m, 1h, 2d) or a time (such "
                                    "as 2024-08-20, 2024-08-20T14:00 or "
                                    "2024-08-20T12:00Z)",
                               option, arg);
    if (pt.kind == CLI_POINT_SEQ) {
        if (pt.seq == 0 && until)
            return cli_usage_error(cmd, "%s: \"%s\" is not a seq", option,
                                   arg);
        *seq = pt.seq;
        return 0;
    }
    /* The first seq received after the moment (--until: the last one at
     * or before it): seqs and received_at rise together, so bisect. */
    int64_t target = until ? pt.ms + 1 : pt.ms;
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    parley_info_t *info = NULL;
    int rc = cli_call_options(c, &o);
    if (rc == 0)
        rc = parley_ping(&o, &info);
    if (rc < 0)
        return cli_fail(c, NULL, rc);
    uint64_t lo = parley_info_first_seq(info), hi = parley_info_seq(info) + 1;
    parley_info_destroy(&info);
    if (lo == 0)
        lo = hi;
    cli_info(c, "%s %s: looking for it between seq %llu and %llu", option, arg,
             (unsigned long long)lo, (unsigned long long)(hi - 1));
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t at = 0;
        rc = s_received_at(&o, mid, &at);
        if (rc < 0)
            return cli_fail(c, NULL, rc);
        if (rc == 1 && at >= target)
            hi = mid;
        else
            lo = mid + 1;
    }
    *seq = until ? lo - 1 : lo;
    cli_info(c, "%s %s is seq %llu", option, arg, (unsigned long long)*seq);
    return 0;
}

/* ---------------------------------------------------------------- output */

int
cli_read_option(cli_common_t *c, cli_filter_t *f, cli_output_t *o,
                const char *cmd, int opt, const char *arg)
{
    int rc = cli_common_option(c, opt, arg);
    if (rc == 0)
        rc = cli_filter_option(f, cmd, opt, arg);
    if (rc == 0)
        rc = cli_output_option(o, cmd, opt, arg);
    return rc;
}

int
cli_output_option(cli_output_t *o, const char *cmd, int opt, const char *arg)
{
    if (opt != CLI_OPT_JSON && opt != 'F' && opt != CLI_OPT_RAW)
        return 0;
    cli_out_mode_t mode = opt == 'F'            ? CLI_OUT_FORMAT
                          : opt == CLI_OPT_RAW ? CLI_OUT_RAW
                                               : CLI_OUT_JSON;
    if (o->given && o->mode != mode) {
        cli_usage_error(cmd, "--json, --raw and -F exclude each other");
        return -1;
    }
    if (opt == 'F' && cli_format_check(cmd, arg) < 0)
        return -1;
    o->mode = mode;
    o->format = opt == 'F' ? arg : NULL;
    o->given = 1;
    return 1;
}

int
cli_format_check(const char *cmd, const char *format)
{
    for (const char *p = format; *p != '\0'; p++) {
        if (*p == '%') {
            p++;
            if (*p == '\0' || strchr("snpPSkhbliNIRjtTwW%", *p) == NULL)
                return cli_usage_error(cmd, "-F: unknown conversion \"%%%.1s\" "
                                            "(see --help)",
                                       p),
                       -1;
        } else if (*p == '\\') {
            p++;
            if (*p == '\0' || strchr("nt\\", *p) == NULL)
                return cli_usage_error(cmd, "-F: unknown escape \"\\%.1s\" "
                                            "(use \\n, \\t or \\\\)",
                                       p),
                       -1;
        }
    }
    return 0;
}

/* C1 controls are U+0080-U+009F, which some terminals obey. */
void
cli_put_text(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p != '\0'; p++) {
        if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p == '\r')
            fputs("\\r", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fprintf(out, "\\u%04x", p[1]);
            p++;
        } else
            fputc(*p, out);
    }
}

void
cli_parties(const parley_update_t *u, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < parley_update_party_count(u); i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i > 0 ? "," : "",
                         parley_update_party(u, i));
        if (n < 0 || (size_t)n >= cap - used)
            return;
        used += (size_t)n;
    }
}

void
cli_references(const parley_update_t *u, const char *mark, char *buf,
               size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < parley_update_reference_count(u); i++) {
        int n = snprintf(buf + used, cap - used, "%s%s%llu", i > 0 ? "," : "",
                         mark, (unsigned long long)parley_update_reference(u, i));
        if (n < 0 || (size_t)n >= cap - used) {
            buf[used] = '\0';
            return;
        }
        used += (size_t)n;
    }
}

static const char *
s_name_or(const char *name, const char *fallback)
{
    return name != NULL ? name : fallback;
}

/* What the formatter prints: a delivery, or a bare signed update. */
typedef struct {
    const parley_delivery_t *d;    /* NULL for a bare SignedUpdate */
    const parley_update_t *u;
    const char *signer_id;
    const char *signer_name;
    const parley_event_t *ev;      /* a snapshot's: the entries it holds */
} s_item_t;

/* Print the parties of the entries ev holds, comma-separated. */
static void
s_put_current_for(FILE *out, const parley_event_t *ev, bool json)
{
    for (size_t i = 0; i < parley_event_entry_count(ev); i++) {
        const char *party = "";
        (void)parley_event_entry(ev, i, NULL, &party, NULL);
        fprintf(out, json ? "%s\"%s\"" : "%s%s", i > 0 ? "," : "", party);
    }
}

/* Print the JSON of d (with "current_for" when ev holds entries); 0 or
 * -errno. */
static int
s_put_json(FILE *out, const parley_delivery_t *d, const parley_event_t *ev)
{
    if (d == NULL)
        return 0;
    char *json = parley_delivery_to_json(d);
    if (json == NULL)
        return errno != 0 ? -errno : -ENOMEM;
    size_t len = strlen(json);
    if (parley_event_entry_count(ev) > 0 && len > 0 && json[len - 1] == '}') {
        fwrite(json, 1, len - 1, out);
        fputs(",\"current_for\":[", out);
        s_put_current_for(out, ev, true);
        fputs("]}", out);
    } else {
        fputs(json, out);
    }
    free(json);
    return 0;
}

/* Print one % conversion (already checked). */
static int
s_put_conversion(FILE *out, char conv, const s_item_t *it)
{
    const parley_update_t *u = it->u;
    char buf[PARLEY_PARTIES_MAX * (PARLEY_SLUG_MAX + 1) + 1];
    switch (conv) {
    case 's':
        fprintf(out, "%llu", (unsigned long long)parley_delivery_seq(it->d));
        break;
    case 'n':
        cli_put_text(out, parley_update_negotiation(u));
        break;
    case 'p':
        cli_parties(u, buf, sizeof(buf));
        cli_put_text(out, buf);
        break;
    case 'P':
        fprintf(out, "%u", (unsigned)parley_update_phase(u));
        break;
    case 'S':
        fputs(s_name_or(parley_status_name(parley_update_status(u)),
                        "unknown"),
              out);
        break;
    case 'k':
        fputs(s_name_or(parley_kind_name(parley_update_kind(u)), "unknown"),
              out);
        break;
    case 'h':
        cli_put_text(out, parley_update_headline(u));
        break;
    case 'b':
        cli_put_text(out, parley_update_body(u));
        break;
    case 'l':
        cli_put_text(out, parley_update_location(u));
        break;
    case 'i':
        fputs(it->signer_id, out);
        break;
    case 'N':
        cli_put_text(out, it->signer_name);
        break;
    case 'I':
        fprintf(out, "%lld", (long long)parley_update_issued_at(u));
        break;
    case 'R':
        fprintf(out, "%lld",
                (long long)parley_delivery_received_at(it->d));
        break;
    case 't':
    case 'T':
    case 'w':
    case 'W': {
        char t[CLI_TIME_CHARS];
        int64_t ms = conv == 't' || conv == 'T'
                         ? parley_update_issued_at(u)
                         : parley_delivery_received_at(it->d);
        cli_format_time(ms,
                        conv == 't' || conv == 'w' ? CLI_TIME_ISO_LOCAL
                                                   : CLI_TIME_ISO_UTC,
                        t, sizeof(t));
        fputs(t, out);
        break;
    }
    case 'j':
        return s_put_json(out, it->d, NULL);
    case '%':
        fputc('%', out);
        break;
    default:
        break;
    }
    return 0;
}

static int
s_put_format(FILE *out, const char *fmt, const s_item_t *it)
{
    for (const char *p = fmt; *p != '\0'; p++) {
        if (*p == '%' && p[1] != '\0') {
            int rc = s_put_conversion(out, *++p, it);
            if (rc < 0)
                return rc;
        } else if (*p == '\\' && p[1] != '\0') {
            p++;
            fputc(*p == 'n' ? '\n' : *p == 't' ? '\t' : *p, out);
        } else {
            fputc(*p, out);
        }
    }
    return 0;
}

/* The default line of an item, with the time or without. */
static void
s_put_line(FILE *out, const s_item_t *it, int with_time)
{
    const parley_update_t *u = it->u;
    char parties[PARLEY_PARTIES_MAX * (PARLEY_SLUG_MAX + 1) + 1];
    parley_kind_t kind = parley_update_kind(u);
    char when[CLI_TIME_CHARS];
    cli_parties(u, parties, sizeof(parties));
    cli_format_time(parley_update_issued_at(u), CLI_TIME_SHORT_LOCAL, when,
                    sizeof(when));
    if (it->d != NULL)
        fprintf(out, "#%llu ", (unsigned long long)parley_delivery_seq(it->d));
    if (with_time)
        fprintf(out, "%s ", when);
    cli_put_text(out, parley_update_negotiation(u));
    fprintf(out, " phase %u [", (unsigned)parley_update_phase(u));
    cli_put_text(out, parties);
    fprintf(out, "] %s: ",
            s_name_or(parley_status_name(parley_update_status(u)), "unknown"));
    cli_put_text(out, parley_update_headline(u));
    if (kind != PARLEY_KIND_UPDATE) {
        char refs[CLI_REFS_CHARS];
        cli_references(u, "#", refs, sizeof(refs));
        fprintf(out, " (%s of %s)", s_name_or(parley_kind_name(kind), "?"),
                refs);
    }
    if (parley_event_entry_count(it->ev) > 0) {
        fputs(" (current for ", out);
        s_put_current_for(out, it->ev, false);
        fputc(')', out);
    }
}

/* Print one item in the chosen mode, a newline, and flush. */
static int
s_print_item(FILE *out, const cli_output_t *o, const s_item_t *it)
{
    int rc = 0;
    switch (o->mode) {
    case CLI_OUT_NONE:
        return 0;
    case CLI_OUT_JSON:
        rc = s_put_json(out, it->d, it->ev);
        break;
    case CLI_OUT_RAW: {
        char *line = it->d != NULL ? cli_raw_line(it->d) : NULL;
        if (line == NULL)
            return it->d != NULL ? -ENOMEM : 0;
        fputs(line, out);
        free(line);
        break;
    }
    case CLI_OUT_FORMAT:
        rc = s_put_format(out, o->format, it);
        break;
    case CLI_OUT_LINE:
    default:
        s_put_line(out, it, 1);
        break;
    }
    if (rc < 0)
        return rc;
    fputc('\n', out);
    if (fflush(out) != 0 || ferror(out))
        return errno != 0 ? -errno : -EIO;
    return 0;
}

char *
cli_update_text(const parley_delivery_t *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return NULL;
    s_item_t it = { .d = d,
                    .u = parley_delivery_update(d),
                    .signer_id = parley_delivery_signer_id(d),
                    .signer_name = parley_delivery_signer_name(d) };
    s_put_line(f, &it, 0);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

char *
cli_raw_line(const parley_delivery_t *d)
{
    size_t len = 0;
    const void *env = parley_delivery_envelope(d, &len);
    if (env == NULL || len == 0) {
        errno = EINVAL;
        return NULL;
    }
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(cap);
    if (b64 == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    sodium_bin2base64(b64, cap, env, len, sodium_base64_VARIANT_ORIGINAL);
    return b64;
}

int
cli_print_delivery(FILE *out, const cli_output_t *o,
                   const parley_delivery_t *d)
{
    s_item_t it = { .d = d,
                    .u = parley_delivery_update(d),
                    .signer_id = parley_delivery_signer_id(d),
                    .signer_name = parley_delivery_signer_name(d) };
    return s_print_item(out, o, &it);
}

int
cli_print_event(FILE *out, const cli_output_t *o, const parley_event_t *ev)
{
    const parley_delivery_t *d = parley_event_delivery(ev);
    s_item_t it = { .d = d,
                    .u = parley_delivery_update(d),
                    .signer_id = parley_delivery_signer_id(d),
                    .signer_name = parley_delivery_signer_name(d),
                    .ev = ev };
    return s_print_item(out, o, &it);
}

int
cli_print_signed(FILE *out, const cli_output_t *o, const parley_update_t *u,
                 const uint8_t *signer, const char *signer_name)
{
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(signer, id);
    s_item_t it = { .d = NULL,
                    .u = u,
                    .signer_id = id,
                    .signer_name = signer_name != NULL ? signer_name : "" };
    return s_print_item(out, o, &it);
}

/* --------------------------------------------------------------- queries */

int
cli_query_run(const cli_common_t *c, parley_query_t *q,
              int (*on_delivery)(void *arg, const parley_delivery_t *d),
              void *arg)
{
    int inconsistent = 0; /* the transparency log contradicted itself */
    for (;;) {
        const parley_event_t *ev;
        if (cli_stop)
            return CLI_EXIT_OK;
        int rc = parley_query_next(q, &ev);
        if (rc == 0)
            return inconsistent ? CLI_EXIT_INCONSISTENT : CLI_EXIT_OK;
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
        case PARLEY_EVENT_LOG_VERIFIED:
        case PARLEY_EVENT_LOG_STALE:
        case PARLEY_EVENT_LOG_INCONSISTENT:
            if (cli_log_event(c, ev, NULL) == 2)
                inconsistent = 1;
            break;
        case PARLEY_EVENT_REJECTED:
            if (cli_log_event(c, ev, NULL) != 0)
                break; /* a checkpoint, not an update */
            cli_warn(c, "#%llu failed verification: %s: %s",
                     (unsigned long long)seq,
                     parley_error_name(parley_event_code(ev)),
                     parley_strerror(parley_event_code(ev)));
            break;
        case PARLEY_EVENT_DELIVERY:
            rc = on_delivery(arg, parley_event_delivery(ev));
            if (rc != 0)
                return rc == CLI_QUERY_STOP ? CLI_EXIT_OK : rc;
            break;
        default:
            break;
        }
    }
}

/* --------------------------------------------------------------- signals */

volatile sig_atomic_t cli_stop = 0;

static void
s_on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

volatile sig_atomic_t cli_usr1 = 0;

static void
s_on_usr1(int sig)
{
    (void)sig;
    cli_usr1 = 1;
}

void
cli_usr1_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
}

void
cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: let a blocking wait see EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* ------------------------------------------------------ transparency log */

/* Append an evidence text to path, with a line saying when. */
static void
s_save_evidence(const char *path, const char *text)
{
    if (path == NULL || text == NULL)
        return;
    FILE *f = fopen(path, "ae");
    if (f == NULL) {
        cli_error("--evidence %s: %s", path, strerror(errno));
        return;
    }
    fputs(text, f);
    fputs("\n", f);
    if (fclose(f) != 0)
        cli_error("--evidence %s: %s", path, strerror(errno));
}

int
cli_log_event(const cli_common_t *c, const parley_event_t *ev,
              const char *evidence_path)
{
    const parley_checkpoint_t *cp = parley_event_checkpoint(ev);
    const char *evidence = parley_event_evidence(ev);
    switch (parley_event_type(ev)) {
    case PARLEY_EVENT_LOG_VERIFIED:
        cli_info(c, "log %s: verified through seq %llu (%zu witness "
                    "cosignatures)",
                 cp != NULL ? parley_checkpoint_origin(cp) : "?",
                 (unsigned long long)parley_event_seq(ev),
                 cp != NULL ? parley_checkpoint_cosigners(cp) : 0);
        return 1;
    case PARLEY_EVENT_LOG_STALE:
        cli_warn(c, "log: no fresh checkpoint trusted; the newest is of %llu "
                    "leaves, stamped %lld",
                 (unsigned long long)parley_event_seq(ev),
                 cp != NULL ? (long long)parley_checkpoint_time(cp) : 0LL);
        s_save_evidence(evidence_path, evidence);
        return 1;
    case PARLEY_EVENT_LOG_INCONSISTENT:
        /* Never silenced: this is what the transparency log is for. */
        fprintf(stderr, "parley: LOG INCONSISTENT at %llu: the daemon's log "
                        "contradicts itself; evidence follows (publish it):\n%s",
                (unsigned long long)parley_event_seq(ev),
                evidence != NULL ? evidence : "(none)\n");
        s_save_evidence(evidence_path, evidence);
        return 2;
    case PARLEY_EVENT_REJECTED:
        if (parley_event_seq(ev) != 0)
            return 0;
        cli_warn(c, "log: a checkpoint failed verification: %s",
                 parley_strerror(parley_event_code(ev)));
        return 1;
    default:
        return 0;
    }
}
