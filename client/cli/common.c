/*
 * common.c - option parsing, error reporting and update output shared by
 * the parley subcommands.
 */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
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
    "  Values of one option are alternatives; different options must all\n"
    "  match.\n";

const char cli_output_help[] =
    "      --json          one JSON object per update and line\n"
    "  -F, --format FMT    print each update as FMT, then a newline:\n"
    "                        %s seq          %n negotiation  %p parties\n"
    "                        %P phase        %S status       %k kind\n"
    "                        %h headline     %b body         %l location\n"
    "                        %i signer id    %N signer name  %I issued_at\n"
    "                        %R received_at  %j JSON         %% a %\n"
    "                      and the escapes \\n \\t \\\\\n"
    "  Default output, one line per update:\n"
    "    #<seq> <negotiation> phase <n> [<party>,...] <status>: <headline>\n"
    "  followed by \" (correction of #A)\" or \" (retraction of #A)\" for those\n"
    "  kinds. Text output shows control characters as escapes (\\n, \\xHH),\n"
    "  so each update stays on one line; --json carries the exact text.\n";

void
cli_common_init(cli_common_t *c)
{
    const char *env = getenv("PARLEY_SERVER");
    c->server = env != NULL && *env != '\0' ? env : PARLEY_DEFAULT_SERVER;
    c->timeout_ms = 5000;
    c->quiet = 0;
    c->verbose = 0;
    env = getenv("PARLEY_CURVE_SERVER_KEY");
    c->curve_server_key = env != NULL && *env != '\0' ? env : NULL;
    env = getenv("PARLEY_CURVE_KEY");
    c->curve_key = env != NULL && *env != '\0' ? env : NULL;
    c->curve = NULL;
    c->curve_err = 0;
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
        return 1;
    case CLI_OPT_TIMEOUT:
        if (cli_parse_seconds(arg, 0, &c->timeout_ms) < 0) {
            cli_error("--timeout: \"%s\" is not a number of seconds above 0",
                      arg);
            return -1;
        }
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
    opt->server = c->server;
    opt->curve = c->curve;
    opt->timeout_ms = c->timeout_ms;
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
    default:
        return 0;
    }
    if (opt != CLI_OPT_PHASE && !parley_slug_valid(arg)) {
        cli_usage_error(cmd, "%s: \"%s\" is not a slug "
                             "([a-z0-9][a-z0-9-], at most 32 chars)",
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

void
cli_filter_free(cli_filter_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        parley_filter_destroy(&f->sets[i]);
    f->n = 0;
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

/* ---------------------------------------------------------------- output */

int
cli_output_option(cli_output_t *o, const char *cmd, int opt, const char *arg)
{
    if (opt != CLI_OPT_JSON && opt != 'F')
        return 0;
    cli_out_mode_t mode = opt == 'F' ? CLI_OUT_FORMAT : CLI_OUT_JSON;
    if (o->given && o->mode != mode) {
        cli_usage_error(cmd, "--json and -F exclude each other");
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
            if (*p == '\0' || strchr("snpPSkhbliNIRj%", *p) == NULL)
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

/*
 * Print UTF-8 text for people: C0 controls, DEL and the C1 controls
 * (U+0080-U+009F, which some terminals obey) become escapes.
 */
static void
s_put_text(FILE *out, const char *s)
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

/* Print ", "-less list of references as "#A,#B". */
static void
s_put_refs(FILE *out, const parley_update_t *u)
{
    for (size_t i = 0; i < parley_update_reference_count(u); i++)
        fprintf(out, "%s#%llu", i > 0 ? "," : "",
                (unsigned long long)parley_update_reference(u, i));
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
    const char *entry_neg;         /* an entry of the state it holds ... */
    const char *entry_party;       /* ... (NULL: none) */
    uint32_t entry_phase;
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
        s_put_text(out, parley_update_negotiation(u));
        break;
    case 'p':
        cli_parties(u, buf, sizeof(buf));
        s_put_text(out, buf);
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
        s_put_text(out, parley_update_headline(u));
        break;
    case 'b':
        s_put_text(out, parley_update_body(u));
        break;
    case 'l':
        s_put_text(out, parley_update_location(u));
        break;
    case 'i':
        fputs(it->signer_id, out);
        break;
    case 'N':
        s_put_text(out, it->signer_name);
        break;
    case 'I':
        fprintf(out, "%lld", (long long)parley_update_issued_at(u));
        break;
    case 'R':
        fprintf(out, "%lld",
                (long long)parley_delivery_received_at(it->d));
        break;
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

static void
s_put_line(FILE *out, const s_item_t *it)
{
    const parley_update_t *u = it->u;
    char parties[PARLEY_PARTIES_MAX * (PARLEY_SLUG_MAX + 1) + 1];
    parley_kind_t kind = parley_update_kind(u);
    cli_parties(u, parties, sizeof(parties));
    fprintf(out, "#%llu ", (unsigned long long)parley_delivery_seq(it->d));
    s_put_text(out, parley_update_negotiation(u));
    fprintf(out, " phase %u [", (unsigned)parley_update_phase(u));
    s_put_text(out, parties);
    fprintf(out, "] %s: ",
            s_name_or(parley_status_name(parley_update_status(u)), "unknown"));
    s_put_text(out, parley_update_headline(u));
    if (kind != PARLEY_KIND_UPDATE) {
        fprintf(out, " (%s of ", s_name_or(parley_kind_name(kind), "?"));
        s_put_refs(out, u);
        fputc(')', out);
    }
    if (parley_event_entry_count(it->ev) > 0) {
        fputs(" (current for ", out);
        s_put_current_for(out, it->ev, false);
        fputc(')', out);
    }
}

/* The entry form of the JSON: the entry's key and its delivery. */
static int
s_put_entry_json(FILE *out, const s_item_t *it)
{
    /* Slugs need no escaping. */
    fprintf(out, "{\"negotiation\":\"%s\",\"phase\":%u,\"party\":\"%s\","
                 "\"seq\":%llu,\"delivery\":",
            it->entry_neg, (unsigned)it->entry_phase, it->entry_party,
            (unsigned long long)parley_delivery_seq(it->d));
    int rc = s_put_json(out, it->d, NULL);
    fputc('}', out);
    return rc;
}

/* The entry form of the line: "NEG phase N PARTY: STATUS: HEADLINE (#SEQ)". */
static void
s_put_entry_line(FILE *out, const s_item_t *it)
{
    fprintf(out, "%s phase %u %s: %s: ", it->entry_neg,
            (unsigned)it->entry_phase, it->entry_party,
            s_name_or(parley_status_name(parley_update_status(it->u)),
                      "unknown"));
    s_put_text(out, parley_update_headline(it->u));
    fprintf(out, " (#%llu)", (unsigned long long)parley_delivery_seq(it->d));
}

/* Print one item in the chosen mode, a newline, and flush. */
static int
s_print_item(FILE *out, const cli_output_t *o, const s_item_t *it)
{
    int rc = 0;
    bool entry = it->entry_party != NULL;
    switch (o->mode) {
    case CLI_OUT_NONE:
        return 0;
    case CLI_OUT_JSON:
        rc = entry ? s_put_entry_json(out, it) : s_put_json(out, it->d, it->ev);
        break;
    case CLI_OUT_FORMAT:
        rc = s_put_format(out, o->format, it);
        break;
    case CLI_OUT_LINE:
    default:
        if (entry)
            s_put_entry_line(out, it);
        else
            s_put_line(out, it);
        break;
    }
    if (rc < 0)
        return rc;
    fputc('\n', out);
    if (fflush(out) != 0 || ferror(out))
        return errno != 0 ? -errno : -EIO;
    return 0;
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
cli_print_entry(FILE *out, const cli_output_t *o, const char *negotiation,
                const char *party, uint32_t phase, const parley_delivery_t *d)
{
    s_item_t it = { .d = d,
                    .u = parley_delivery_update(d),
                    .signer_id = parley_delivery_signer_id(d),
                    .signer_name = parley_delivery_signer_name(d),
                    .entry_neg = negotiation,
                    .entry_party = party,
                    .entry_phase = phase };
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

/* --------------------------------------------------------------- signals */

volatile sig_atomic_t cli_stop = 0;

static void
s_on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
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
