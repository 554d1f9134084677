/*
 * cmd_pub.c - parley pub: sign and publish updates.
 *
 * Each update gets its signer_seq from the locked state file beside the
 * key (the publisher's seq_file), so separate and concurrent invocations
 * with one key never choose one value twice; one that arrives after a
 * higher one is signed again above it by the library (docs/protocol.md
 * section 3).
 *
 * With --print-envelope the update is signed the same way but not sent:
 * the envelope goes to stdout, for another route to the daemon (an HTTP
 * gateway's POST /v1/updates, docs/http.md).
 */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    S_OPT_STATUS = CLI_OPT_FIRST_FREE,
    S_OPT_HEADLINE,
    S_OPT_BODY,
    S_OPT_LOCATION,
    S_OPT_KIND,
    S_OPT_REF,
    S_OPT_SCHEDULED,
    S_OPT_EXPIRES,
    S_OPT_PRINT_ENVELOPE,
};

/* What --print-envelope writes. */
typedef enum {
    S_PRINT_NONE = 0, /* publish */
    S_PRINT_BINARY,   /* the SignedUpdate bytes */
    S_PRINT_JSON,     /* one JSON object per update */
} s_print_t;

static void
s_help(void)
{
    printf("usage: parley pub [-k KEYFILE] --negotiation N --party P [--party P]...\n"
           "                  [--phase N] --status S --headline TEXT [--body TEXT]\n"
           "                  [--location TEXT] [--kind KIND [--ref SEQ]...]\n"
           "                  [--scheduled-at MS] [--expires-at MS]\n"
           "       parley pub [-k KEYFILE] --json < updates.jsonl\n"
           "       parley pub [-k KEYFILE] --print-envelope[=json] ...\n"
           "\n"
           "Sign an update with KEYFILE and publish it to parleyd; print the seq\n"
           "the daemon assigned. With --json, read one JSON object per line from\n"
           "stdin (the fields below, \"parties\" an array, times in unix ms),\n"
           "publish each and print one seq per accepted line; a failed line is\n"
           "reported on stderr (\"parley: line N: ...\") and the rest go on.\n"
           "\n"
           "issued_at is now and signer_seq comes from KEYFILE.seq (kept under a\n"
           "lock, so concurrent runs never choose one twice), unless a JSON line\n"
           "gives them. Concurrent runs with one key are safe: an update that\n"
           "arrives after a higher signer_seq is signed again above it and sent\n"
           "once more; one without an answer is resent with the same bytes.\n"
           "\n"
           "Options:\n"
           "  -k, --key KEYFILE      secret key (mode 0600) to sign with (required,\n"
           "                         unless the context names a key)\n"
           "      --negotiation N    negotiation slug, e.g. gaza-ceasefire\n"
           "      --party P          a party the update concerns (1-16 times)\n"
           "      --phase N          phase 0-255 (default 0: the deal as a whole)\n"
           "      --status S         proposed, talks_scheduled, talks_in_progress,\n"
           "                         awaiting_response, counter_proposal,\n"
           "                         agreed_in_principle, signed, in_effect,\n"
           "                         completed, stalled, suspended, collapsed\n"
           "      --headline TEXT    1-200 bytes\n"
           "      --body TEXT        up to 4096 bytes\n"
           "      --location TEXT    up to 200 bytes\n"
           "      --kind KIND        update (default), correction or retraction\n"
           "      --ref SEQ          seq a correction or retraction replaces\n"
           "                         (required with those kinds; repeatable)\n"
           "                         A retraction needs no --status or\n"
           "                         --headline: it takes the status of the\n"
           "                         update it retracts (asked of the daemon)\n"
           "                         and the headline \"Retraction of #SEQ\".\n"
           "      --scheduled-at MS  when the event is scheduled, unix ms\n"
           "      --expires-at MS    when the update stops being current, unix ms\n"
           "      --json             read updates as JSON lines from stdin\n"
           "      --print-envelope   sign, but do not publish: write the signed\n"
           "                         envelope (binary protobuf) to stdout, e.g.\n"
           "                         for curl --data-binary @- to an HTTP gateway\n"
           "      --print-envelope=json\n"
           "                         the same as one line of JSON per update:\n"
           "                         {\"signed_body\",\"signature\",\"signer\"}\n"
           "                         (base64); works with --json\n"
           "%s"
           "\n"
           "--timeout SEC is the whole wait for an answer: an update without\n"
           "an answer is sent again (the same bytes) within it, once per\n"
           "endpoint of the list and at least twice.\n"
           "\n"
           "Exit status: 0 accepted, 1 usage error or invalid update, 2 rejected\n"
           "by the daemon, 3 no answer, 4 key file problem, 5 other error. With\n"
           "--json, the status of the last failed line (0 if none failed).\n",
           cli_common_help);
}

/* The publishing side of one run. */
typedef struct {
    cli_common_t *c;
    const char *key_path;
    parley_key_t *key;
    parley_pub_t *pub;
    parley_update_t *u;      /* each update of --json */
    int diagnosed;           /* a failure to connect was explained */
    s_print_t print;         /* --print-envelope */
} s_ctx_t;

/*
 * A retraction without a status or headline gets them here: the status of
 * the first update it retracts (asked of the daemon), and the headline
 * "Retraction of #A,#B". Returns 0 or an exit code after printing.
 */
static int
s_retraction_defaults(s_ctx_t *x, parley_update_t *u, const char *prefix)
{
    if (parley_update_kind(u) != PARLEY_KIND_RETRACTION
        || parley_update_reference_count(u) == 0)
        return 0;
    if (parley_update_headline(u)[0] == '\0') {
        char h[PARLEY_HEADLINE_MAX + 1] = "Retraction of ";
        size_t used = strlen(h);
        cli_references(u, "#", h + used, sizeof(h) - used);
        if (parley_update_set_headline(u, h) != 0)
            return CLI_EXIT_OTHER;
    }
    if (parley_update_status(u) != PARLEY_STATUS_UNSPECIFIED)
        return 0;
    uint64_t ref = parley_update_reference(u, 0);
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    parley_query_t *q = NULL;
    const parley_event_t *ev = NULL;
    int rc = cli_call_options(x->c, &o);
    if (rc == 0)
        rc = parley_replay(ref, ref, &o, &q);
    while (rc == 0 && (rc = parley_query_next(q, &ev)) == 1
           && parley_event_type(ev) != PARLEY_EVENT_DELIVERY)
        ;
    if (rc == 1) {
        const parley_update_t *old =
            parley_delivery_update(parley_event_delivery(ev));
        rc = parley_update_set_status(u, parley_update_status(old));
        parley_query_destroy(&q);
        return rc == 0 ? 0 : CLI_EXIT_OTHER;
    }
    parley_query_destroy(&q);
    if (rc == 0 || rc == PARLEY_ETRUNCATED) {
        cli_error("%sthe daemon holds no update #%llu to retract; give "
                  "--status if you mean it",
                  prefix, (unsigned long long)ref);
        return CLI_EXIT_USAGE;
    }
    return cli_fail(x->c, NULL, rc);
}

/*
 * Publish one update (the library fills in issued_at and signer_seq where
 * they are 0, and checks it first). Returns 0 or an exit code; prefix
 * (may be "") starts each message.
 */
static int
s_print_envelope(s_ctx_t *x, parley_update_t *u, const char *prefix);

static int
s_publish(s_ctx_t *x, parley_update_t *u, const char *prefix)
{
    uint64_t seq = 0;
    /* --print-envelope signs without a daemon: a retraction there
     * needs its --status */
    if (x->print != S_PRINT_NONE)
        return s_print_envelope(x, u, prefix);
    int rc = s_retraction_defaults(x, u, prefix);
    if (rc != 0)
        return rc;
    rc = parley_pub_publish(x->pub, u, &seq);
    if (rc < 0) {
        const char *detail = parley_pub_detail(x->pub);
        /* The daemon's reject text starts with the code's sentence; the
         * library's own check names the field first. */
        size_t said = strlen(parley_strerror(PARLEY_EINVALID));
        int from_daemon = strncmp(detail, parley_strerror(PARLEY_EINVALID),
                                  said)
                              == 0
                          && detail[said] == ':';
        if (rc == PARLEY_EINVALID && !from_daemon) {
            cli_error("%sinvalid update: %s", prefix,
                      detail[0] != '\0' ? detail : parley_strerror(rc));
            return CLI_EXIT_USAGE;
        }
        if (rc == PARLEY_EUNKNOWNSIGNER) {
            /* which daemon, and which key file's line it needs */
            cli_error("%srejected: %s: %s (%s answered; its keyring needs "
                      "a line for %s.pub)",
                      prefix, parley_error_name(rc),
                      detail[0] != '\0' ? detail : parley_strerror(rc),
                      parley_pub_endpoint(x->pub), x->key_path);
            return CLI_EXIT_REJECTED;
        }
        if (cli_is_reject(rc)) {
            cli_error("%srejected: %s: %s", prefix, parley_error_name(rc),
                      detail[0] != '\0' ? detail : parley_strerror(rc));
            return CLI_EXIT_REJECTED;
        }
        if ((rc == PARLEY_ETIMEOUT || rc == PARLEY_EPROTO) && !x->diagnosed) {
            /* what answers there (nothing, a feed, not parley) says more
             * than a timeout; once is enough for a run */
            x->diagnosed = 1;
            if (prefix[0] != '\0')
                cli_error("%sno answer", prefix);
            return cli_fail(x->c, NULL, rc);
        }
        if (rc == PARLEY_ETIMEOUT) {
            cli_error("%sno answer from %s within %d.%03d s",
                      prefix, parley_pub_endpoint(x->pub),
                      x->c->timeout_ms / 1000, x->c->timeout_ms % 1000);
            return CLI_EXIT_NOANSWER;
        }
        if (detail[0] != '\0' && rc > -1000) {
            cli_error("%s%s", prefix, detail); /* the state file */
            return CLI_EXIT_KEY;
        }
        cli_error("%spublish: %s", prefix, parley_strerror(rc));
        return cli_exit_code(rc);
    }
    printf("%llu\n", (unsigned long long)seq);
    if (fflush(stdout) != 0)
        return CLI_EXIT_OTHER;
    cli_info(x->c, "%saccepted as seq %llu%s", prefix,
             (unsigned long long)seq,
             rc == PARLEY_DUPLICATE ? " (duplicate)" : "");
    return 0;
}

/*
 * --print-envelope: fill in issued_at (now) and signer_seq (the next one
 * of KEYFILE.seq, as a publish would take it) where they are 0, sign, and
 * write the envelope to stdout. Returns 0 or an exit code.
 */
static int
s_print_envelope(s_ctx_t *x, parley_update_t *u, const char *prefix)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    char detail[256] = "";
    size_t len = 0;
    uint64_t signer_seq;
    int rc;
    /* Checked first, with stand-ins, so that a bad update takes no
     * signer_seq from the seq file. */
    parley_update_t *check = parley_update_dup(u);
    if (check == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_OTHER;
    }
    if ((parley_update_issued_at(check) == 0
         && parley_update_set_issued_at(check, parley_now_ms()) != 0)
        || (parley_update_signer_seq(check) == 0
            && parley_update_set_signer_seq(check, 1) != 0))
        rc = PARLEY_EINVALID;
    else
        rc = parley_update_validate(check, detail, sizeof(detail));
    parley_update_destroy(&check);
    if (rc < 0) {
        cli_error("%sinvalid update: %s", prefix, detail);
        return CLI_EXIT_USAGE;
    }
    if (parley_update_issued_at(u) == 0
        && parley_update_set_issued_at(u, parley_now_ms()) != 0)
        return CLI_EXIT_OTHER;
    if (parley_update_signer_seq(u) == 0) {
        if ((rc = parley_seqfile_next(x->key_path, &signer_seq)) < 0) {
            cli_error("%s%s.seq: %s", prefix, x->key_path, parley_strerror(rc));
            return CLI_EXIT_KEY;
        }
        if (parley_update_set_signer_seq(u, signer_seq) != 0)
            return CLI_EXIT_OTHER;
    }
    if ((rc = parley_sign(x->key, u, env, sizeof(env), &len)) < 0) {
        cli_error("%ssign: %s", prefix, parley_strerror(rc));
        return CLI_EXIT_USAGE;
    }
    if (x->print == S_PRINT_JSON) {
        char *json = parley_envelope_to_json(env, len);
        if (json == NULL) {
            cli_error("%sout of memory", prefix);
            return CLI_EXIT_OTHER;
        }
        printf("%s\n", json);
        free(json);
    } else if (fwrite(env, 1, len, stdout) != len) {
        cli_error("writing stdout: %s", strerror(errno));
        return CLI_EXIT_OTHER;
    }
    if (fflush(stdout) != 0) {
        cli_error("writing stdout: %s", strerror(errno));
        return CLI_EXIT_OTHER;
    }
    cli_info(x->c, "%ssigned %zu bytes (signer_seq %llu), not published",
             prefix, len, (unsigned long long)parley_update_signer_seq(u));
    return 0;
}

/* 1 if line holds only white space. */
static int
s_blank(const char *line)
{
    for (; *line != '\0'; line++)
        if (*line != ' ' && *line != '\t' && *line != '\r' && *line != '\n')
            return 0;
    return 1;
}

/* --json: one update per stdin line. Returns the last failure's code. */
static int
s_publish_json(s_ctx_t *x)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long lineno = 0;
    int status = CLI_EXIT_OK;

    while (!cli_stop && (len = getline(&line, &cap, stdin)) >= 0) {
        char prefix[48], err[512];
        lineno++;
        if (s_blank(line))
            continue;
        snprintf(prefix, sizeof(prefix), "line %lu: ", lineno);
        if ((size_t)len != strlen(line)) {
            cli_error("%sholds a NUL byte", prefix);
            status = CLI_EXIT_USAGE;
            continue;
        }
        parley_update_reset(x->u);
        err[0] = '\0';
        if (parley_update_from_json(line, x->u, err, sizeof(err)) != 0) {
            cli_error("%s%s", prefix, err[0] != '\0' ? err : "invalid JSON");
            status = CLI_EXIT_USAGE;
            continue;
        }
        int rc = s_publish(x, x->u, prefix);
        if (rc != 0)
            status = rc;
    }
    if (ferror(stdin)) {
        cli_error("reading stdin: %s", strerror(errno));
        status = CLI_EXIT_OTHER;
    }
    free(line);
    return status;
}

/*
 * Set a text field from an option. Returns 0, or CLI_EXIT_USAGE after
 * printing what is wrong with the value.
 */
static int
s_text_opt(parley_update_t *u, int (*set)(parley_update_t *, const char *),
           const char *name, size_t max, const char *arg)
{
    if (strlen(arg) > max)
        return cli_usage_error("pub", "%s: longer than %zu bytes", name, max);
    if (set(u, arg) != 0)
        return cli_usage_error("pub", "%s: not valid UTF-8", name);
    return 0;
}

/* The fields an update from the command line must have (a retraction
 * gets a status and a headline of its own, see s_retraction_defaults()). */
static int
s_required(const parley_update_t *u)
{
    int retraction = parley_update_kind(u) == PARLEY_KIND_RETRACTION;
    if (parley_update_negotiation(u)[0] == '\0')
        return cli_usage_error("pub", "--negotiation is required");
    if (parley_update_party_count(u) == 0)
        return cli_usage_error("pub", "at least one --party is required");
    if (parley_update_kind(u) != PARLEY_KIND_UPDATE
        && parley_update_reference_count(u) == 0)
        return cli_usage_error("pub", "--kind %s needs --ref SEQ (the update "
                                      "it replaces)",
                               parley_kind_name(parley_update_kind(u)));
    if (parley_update_status(u) == PARLEY_STATUS_UNSPECIFIED && !retraction)
        return cli_usage_error("pub", "--status is required");
    if (parley_update_headline(u)[0] == '\0' && !retraction)
        return cli_usage_error("pub", "--headline is required");
    return 0;
}

/*
 * Apply one update field option to u. Returns 0, -1 if opt is not one, or
 * CLI_EXIT_USAGE after printing a usage error.
 */
static int
s_field_option(parley_update_t *u, int opt, const char *arg)
{
    uint64_t v64;
    int64_t i64;
    uint32_t phase;
    parley_status_t status;
    parley_kind_t kind;
    switch (opt) {
    case CLI_OPT_NEGOTIATION:
        if (parley_update_set_negotiation(u, arg) != 0)
            return cli_usage_error("pub", "--negotiation: \"%s\" is not a "
                                          "slug (" CLI_SLUG_RULE ")",
                                   arg);
        return 0;
    case CLI_OPT_PARTY:
        if (!parley_slug_valid(arg))
            return cli_usage_error("pub", "--party: \"%s\" is not a slug "
                                          "(" CLI_SLUG_RULE ")",
                                   arg);
        if (parley_update_party_count(u) >= PARLEY_PARTIES_MAX)
            return cli_usage_error("pub", "--party: at most %d parties",
                                   PARLEY_PARTIES_MAX);
        if (parley_update_add_party(u, arg) != 0)
            return cli_usage_error("pub", "--party: \"%s\" is named twice",
                                   arg);
        return 0;
    case CLI_OPT_PHASE:
        if (cli_parse_phase(arg, &phase) < 0
            || parley_update_set_phase(u, phase) != 0)
            return cli_usage_error("pub", "--phase: \"%s\" is not a phase "
                                          "0-255",
                                   arg);
        return 0;
    case S_OPT_STATUS:
        if (parley_status_parse(arg, &status) != 0
            || parley_update_set_status(u, status) != 0) {
            cli_error("--status: unknown status \"%s\"", arg);
            cli_list_statuses();
            fprintf(stderr, "Try 'parley pub --help'.\n");
            return CLI_EXIT_USAGE;
        }
        return 0;
    case S_OPT_HEADLINE:
        return s_text_opt(u, parley_update_set_headline, "--headline",
                          PARLEY_HEADLINE_MAX, arg);
    case S_OPT_BODY:
        return s_text_opt(u, parley_update_set_body, "--body", PARLEY_BODY_MAX,
                          arg);
    case S_OPT_LOCATION:
        return s_text_opt(u, parley_update_set_location, "--location",
                          PARLEY_LOCATION_MAX, arg);
    case S_OPT_KIND:
        if (parley_kind_parse(arg, &kind) != 0
            || parley_update_set_kind(u, kind) != 0)
            return cli_usage_error("pub", "--kind: expected update, "
                                          "correction or retraction, not "
                                          "\"%s\"",
                                   arg);
        return 0;
    case S_OPT_REF:
        if (cli_parse_u64(arg, &v64) < 0 || v64 == 0
            || v64 > (uint64_t)INT64_MAX)
            return cli_usage_error("pub", "--ref: \"%s\" is not a seq", arg);
        if (parley_update_add_reference(u, v64) != 0)
            return cli_usage_error("pub", "--ref: at most %d references",
                                   PARLEY_REFERENCES_MAX);
        return 0;
    case S_OPT_SCHEDULED:
    case S_OPT_EXPIRES:
        if (cli_parse_i64(arg, &i64) < 0 || i64 < 0)
            return cli_usage_error("pub", "%s: \"%s\" is not a time in unix "
                                          "milliseconds",
                                   opt == S_OPT_SCHEDULED ? "--scheduled-at"
                                                          : "--expires-at",
                                   arg);
        if (opt == S_OPT_SCHEDULED)
            return parley_update_set_scheduled_at(u, i64) == 0
                       ? 0
                       : CLI_EXIT_USAGE;
        return parley_update_set_expires_at(u, i64) == 0 ? 0 : CLI_EXIT_USAGE;
    default:
        return -1;
    }
}

int
cmd_pub(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { "key", required_argument, NULL, 'k' },
        { "negotiation", required_argument, NULL, CLI_OPT_NEGOTIATION },
        { "party", required_argument, NULL, CLI_OPT_PARTY },
        { "phase", required_argument, NULL, CLI_OPT_PHASE },
        { "status", required_argument, NULL, S_OPT_STATUS },
        { "headline", required_argument, NULL, S_OPT_HEADLINE },
        { "body", required_argument, NULL, S_OPT_BODY },
        { "location", required_argument, NULL, S_OPT_LOCATION },
        { "kind", required_argument, NULL, S_OPT_KIND },
        { "ref", required_argument, NULL, S_OPT_REF },
        { "scheduled-at", required_argument, NULL, S_OPT_SCHEDULED },
        { "expires-at", required_argument, NULL, S_OPT_EXPIRES },
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { "print-envelope", optional_argument, NULL, S_OPT_PRINT_ENVELOPE },
        { NULL, 0, NULL, 0 },
    };
    s_ctx_t x = { .c = c };
    int json = 0, fields = 0, opt, status;

    if ((x.u = parley_update_new()) == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_OTHER;
    }
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "k:", longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc > 0)
            continue;
        if (rc < 0) {
            status = CLI_EXIT_USAGE;
            goto done;
        }
        switch (opt) {
        case 'h':
            s_help();
            status = CLI_EXIT_OK;
            goto done;
        case 'k':
            x.key_path = optarg;
            continue;
        case CLI_OPT_JSON:
            json = 1;
            continue;
        case S_OPT_PRINT_ENVELOPE:
            if (optarg == NULL || strcmp(optarg, "binary") == 0) {
                x.print = S_PRINT_BINARY;
            } else if (strcmp(optarg, "json") == 0) {
                x.print = S_PRINT_JSON;
            } else {
                status = cli_usage_error("pub", "--print-envelope: expected "
                                                "binary or json, not \"%s\"",
                                         optarg);
                goto done;
            }
            continue;
        case '?':
        case ':':
            status = cli_option_error("pub", opt, argv);
            goto done;
        default:
            break;
        }
        fields = 1;
        if ((rc = s_field_option(x.u, opt, optarg)) != 0) {
            status = rc < 0 ? cli_option_error("pub", opt, argv) : rc;
            goto done;
        }
    }
    if (optind < argc) {
        status = cli_usage_error("pub", "unexpected argument \"%s\"",
                                 argv[optind]);
        goto done;
    }
    if ((status = cli_common_ready(c)) != 0)
        goto done;
    if (x.key_path == NULL)
        x.key_path = c->key_path;
    if (x.key_path == NULL)
        status = cli_usage_error("pub", "-k KEYFILE is required (or a context "
                                        "with a key: --context NAME)");
    else if (json && fields)
        status = cli_usage_error("pub", "--json reads the updates from stdin; "
                                        "give no update fields with it");
    else if (json && x.print == S_PRINT_BINARY)
        status = cli_usage_error("pub", "binary envelopes have no separator: "
                                        "use --print-envelope=json with --json");
    else if (x.print == S_PRINT_BINARY && isatty(STDOUT_FILENO))
        status = cli_usage_error("pub", "--print-envelope writes binary: "
                                        "redirect stdout, or use "
                                        "--print-envelope=json");
    else
        status = json ? 0 : s_required(x.u);
    if (status != 0)
        goto done;

    if ((status = cli_load_key(x.key_path, &x.key)) != 0)
        goto done;
    if (x.print != S_PRINT_NONE) {
        status = json ? s_publish_json(&x) : s_publish(&x, x.u, "");
        goto done;
    }
    char seq_file[4096];
    if (snprintf(seq_file, sizeof(seq_file), "%s.seq", x.key_path)
        >= (int)sizeof(seq_file)) {
        cli_error("%s: name too long", x.key_path);
        status = CLI_EXIT_KEY;
        goto done;
    }
    parley_pub_options_t popt = PARLEY_PUB_OPTIONS_INIT;
    popt.seq_file = seq_file;
    if ((x.pub = cli_pub_new(c, x.key, &popt)) == NULL) {
        status = cli_fail(c, NULL, -errno);
        goto done;
    }
    status = json ? s_publish_json(&x) : s_publish(&x, x.u, "");
done:
    parley_pub_destroy(&x.pub);
    parley_key_destroy(&x.key);
    parley_update_destroy(&x.u);
    return status;
}
