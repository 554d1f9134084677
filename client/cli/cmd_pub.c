/*
 * cmd_pub.c - parley pub: sign and publish updates.
 *
 * Each update gets its signer_seq from the locked state file beside the
 * key (parley_seqfile_next), so separate and concurrent invocations with
 * one key never reuse a value.
 */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_OPT_STATUS = CLI_OPT_FIRST_FREE,
    S_OPT_HEADLINE,
    S_OPT_BODY,
    S_OPT_LOCATION,
    S_OPT_KIND,
    S_OPT_REF,
    S_OPT_SCHEDULED,
    S_OPT_EXPIRES,
};

static void
s_help(void)
{
    printf("usage: parley pub -k KEYFILE --negotiation N --party P [--party P]...\n"
           "                  [--phase N] --status S --headline TEXT [--body TEXT]\n"
           "                  [--location TEXT] [--kind KIND [--ref SEQ]...]\n"
           "                  [--scheduled-at MS] [--expires-at MS]\n"
           "       parley pub -k KEYFILE --json < updates.jsonl\n"
           "\n"
           "Sign an update with KEYFILE and publish it to parleyd; print the seq\n"
           "the daemon assigned. With --json, read one JSON object per line from\n"
           "stdin (the fields below, \"parties\" an array, times in unix ms),\n"
           "publish each and print one seq per accepted line; a failed line is\n"
           "reported on stderr (\"parley: line N: ...\") and the rest go on.\n"
           "\n"
           "issued_at is now and signer_seq comes from KEYFILE.seq (kept under a\n"
           "lock, so concurrent runs never reuse one), unless a JSON line gives\n"
           "them.\n"
           "\n"
           "Options:\n"
           "  -k, --key KEYFILE      secret key (mode 0600) to sign with (required)\n"
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
           "      --scheduled-at MS  when the event is scheduled, unix ms\n"
           "      --expires-at MS    when the update stops being current, unix ms\n"
           "      --json             read updates as JSON lines from stdin\n"
           "%s"
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
} s_ctx_t;

/* Print the valid status names, for an error message. */
static void
s_list_statuses(void)
{
    fputs("  valid statuses:", stderr);
    for (int s = PARLEY_STATUS_PROPOSED; s <= PARLEY_STATUS_COLLAPSED; s++)
        fprintf(stderr, " %s", parley_status_name((parley_status_t)s));
    fputc('\n', stderr);
}

/*
 * Explain why an update is invalid, in the words of the options. Returns
 * a message, or NULL if none of these checks finds the problem.
 */
static const char *
s_explain_invalid(const parley_update_t *u, char *buf, size_t cap)
{
    if (!parley_slug_valid(u->negotiation))
        return u->negotiation[0] == '\0' ? "a negotiation is required"
                                         : "negotiation is not a slug";
    if (u->n_parties == 0)
        return "at least one party is required";
    for (size_t i = 0; i < u->n_parties; i++) {
        if (!parley_slug_valid(u->parties[i])) {
            snprintf(buf, cap, "party \"%s\" is not a slug", u->parties[i]);
            return buf;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(u->parties[i], u->parties[j]) == 0) {
                snprintf(buf, cap, "party \"%s\" is named twice",
                         u->parties[i]);
                return buf;
            }
    }
    if (u->phase > PARLEY_PHASE_MAX)
        return "phase is over 255";
    if (parley_status_name(u->status) == NULL
        || u->status == PARLEY_STATUS_UNSPECIFIED)
        return "a status is required";
    if (u->headline[0] == '\0')
        return "a headline is required";
    if (u->kind != PARLEY_KIND_UPDATE && u->n_references == 0)
        return "a correction or retraction needs the seq it replaces (--ref)";
    if (u->kind == PARLEY_KIND_UPDATE && u->n_references > 0)
        return "references are only for corrections and retractions";
    if (u->expires_at != 0 && u->expires_at <= u->issued_at)
        return "expires_at is not after issued_at";
    return NULL;
}

/*
 * Fill in issued_at and signer_seq where missing, check the update and
 * publish it. Returns 0 or an exit code; prefix (may be "") starts each
 * message.
 */
static int
s_publish(s_ctx_t *x, parley_update_t *u, const char *prefix)
{
    char why[128];
    uint64_t seq = 0;
    int dup = 0, rc;

    if (u->issued_at == 0)
        u->issued_at = parley_now_ms();
    /* Check with a stand-in signer_seq first: a bad update should not use
     * up a value from the state file. */
    uint64_t given_seq = u->signer_seq;
    if (u->signer_seq == 0)
        u->signer_seq = 1;
    if (parley_update_validate(u) != 0) {
        const char *msg = s_explain_invalid(u, why, sizeof(why));
        cli_error("%sinvalid update: %s", prefix,
                  msg != NULL ? msg
                              : "a text field is too long or not valid UTF-8");
        return CLI_EXIT_USAGE;
    }
    u->signer_seq = given_seq;
    if (u->signer_seq == 0
        && (rc = parley_seqfile_next(x->key_path, &u->signer_seq)) < 0) {
        cli_error("%s%s.seq: %s", prefix, x->key_path,
                  parley_strerror_long(rc));
        return CLI_EXIT_KEY;
    }
    rc = parley_pub_publish(x->pub, u, x->c->timeout_ms, &seq, &dup);
    if (rc < 0) {
        if (cli_is_reject(rc)) {
            cli_error("%srejected: %s: %s", prefix, parley_strerror(rc),
                      parley_strerror_long(rc));
            return CLI_EXIT_REJECTED;
        }
        if (rc == PARLEY_ETIMEOUT) {
            cli_error("%sno answer from %s within %d.%03d s (is parleyd "
                      "running?)",
                      prefix, x->c->server, x->c->timeout_ms / 1000,
                      x->c->timeout_ms % 1000);
            return CLI_EXIT_NOANSWER;
        }
        cli_error("%spublish: %s", prefix, parley_strerror_long(rc));
        return cli_exit_code(rc);
    }
    printf("%llu\n", (unsigned long long)seq);
    if (fflush(stdout) != 0)
        return CLI_EXIT_OTHER;
    cli_info(x->c, "%saccepted as seq %llu%s", prefix,
             (unsigned long long)seq, dup ? " (duplicate)" : "");
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
        char prefix[48], err[256];
        parley_update_t u;
        lineno++;
        if (s_blank(line))
            continue;
        snprintf(prefix, sizeof(prefix), "line %lu: ", lineno);
        if ((size_t)len != strlen(line)) {
            cli_error("%sholds a NUL byte", prefix);
            status = CLI_EXIT_USAGE;
            continue;
        }
        memset(&u, 0, sizeof(u));
        err[0] = '\0';
        if (parley_update_from_json(line, &u, err, sizeof(err)) != 0) {
            cli_error("%s%s", prefix, err[0] != '\0' ? err : "invalid JSON");
            status = CLI_EXIT_USAGE;
            continue;
        }
        int rc = s_publish(x, &u, prefix);
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

/* Copy an option value into a fixed text field. 0 or -1 (message printed). */
static int
s_text_opt(char *dst, size_t cap, const char *name, const char *arg)
{
    size_t n = strlen(arg);
    if (n >= cap) {
        cli_usage_error("pub", "%s: longer than %zu bytes", name, cap - 1);
        return -1;
    }
    memcpy(dst, arg, n + 1);
    return 0;
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
        { NULL, 0, NULL, 0 },
    };
    parley_update_t u;
    s_ctx_t x = { .c = c };
    int json = 0, fields = 0, opt, status;
    uint64_t v64;
    int64_t i64;

    memset(&u, 0, sizeof(u));
    u.kind = PARLEY_KIND_UPDATE;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "k:", longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt != 'h' && opt != 'k' && opt != CLI_OPT_JSON && opt != '?'
            && opt != ':')
            fields = 1;
        switch (opt) {
        case 'h':
            s_help();
            return CLI_EXIT_OK;
        case 'k':
            x.key_path = optarg;
            break;
        case CLI_OPT_JSON:
            json = 1;
            break;
        case CLI_OPT_NEGOTIATION:
            if (!parley_slug_valid(optarg))
                return cli_usage_error("pub", "--negotiation: \"%s\" is not a "
                                              "slug ([a-z0-9][a-z0-9-], at most "
                                              "32 chars)",
                                       optarg);
            strcpy(u.negotiation, optarg);
            break;
        case CLI_OPT_PARTY:
            if (!parley_slug_valid(optarg))
                return cli_usage_error("pub", "--party: \"%s\" is not a slug "
                                              "([a-z0-9][a-z0-9-], at most 32 "
                                              "chars)",
                                       optarg);
            if (u.n_parties >= PARLEY_PARTIES_MAX)
                return cli_usage_error("pub", "--party: at most %d parties",
                                       PARLEY_PARTIES_MAX);
            strcpy(u.parties[u.n_parties++], optarg);
            break;
        case CLI_OPT_PHASE:
            if (cli_parse_phase(optarg, &u.phase) < 0)
                return cli_usage_error("pub", "--phase: \"%s\" is not a phase "
                                              "0-255",
                                       optarg);
            break;
        case S_OPT_STATUS:
            if (parley_status_parse(optarg, &u.status) != 0) {
                cli_error("--status: unknown status \"%s\"", optarg);
                s_list_statuses();
                fprintf(stderr, "Try 'parley pub --help'.\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case S_OPT_HEADLINE:
            if (s_text_opt(u.headline, sizeof(u.headline), "--headline",
                           optarg) < 0)
                return CLI_EXIT_USAGE;
            break;
        case S_OPT_BODY:
            if (s_text_opt(u.body, sizeof(u.body), "--body", optarg) < 0)
                return CLI_EXIT_USAGE;
            break;
        case S_OPT_LOCATION:
            if (s_text_opt(u.location, sizeof(u.location), "--location",
                           optarg) < 0)
                return CLI_EXIT_USAGE;
            break;
        case S_OPT_KIND:
            if (parley_kind_parse(optarg, &u.kind) != 0)
                return cli_usage_error("pub", "--kind: expected update, "
                                              "correction or retraction, not "
                                              "\"%s\"",
                                       optarg);
            break;
        case S_OPT_REF:
            if (cli_parse_u64(optarg, &v64) < 0 || v64 == 0)
                return cli_usage_error("pub", "--ref: \"%s\" is not a seq",
                                       optarg);
            if (u.n_references >= PARLEY_REFERENCES_MAX)
                return cli_usage_error("pub", "--ref: at most %d references",
                                       PARLEY_REFERENCES_MAX);
            u.references[u.n_references++] = v64;
            break;
        case S_OPT_SCHEDULED:
        case S_OPT_EXPIRES:
            if (cli_parse_i64(optarg, &i64) < 0 || i64 < 0)
                return cli_usage_error("pub", "%s: \"%s\" is not a time in unix "
                                              "milliseconds",
                                       opt == S_OPT_SCHEDULED ? "--scheduled-at"
                                                              : "--expires-at",
                                       optarg);
            if (opt == S_OPT_SCHEDULED)
                u.scheduled_at = i64;
            else
                u.expires_at = i64;
            break;
        default:
            return cli_option_error("pub", opt, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("pub", "unexpected argument \"%s\"",
                               argv[optind]);
    if (x.key_path == NULL)
        return cli_usage_error("pub", "-k KEYFILE is required");
    if (json && fields)
        return cli_usage_error("pub", "--json reads the updates from stdin; "
                                      "give no update fields with it");
    if (!json) {
        if (u.negotiation[0] == '\0')
            return cli_usage_error("pub", "--negotiation is required");
        if (u.n_parties == 0)
            return cli_usage_error("pub", "at least one --party is required");
        if (u.status == PARLEY_STATUS_UNSPECIFIED)
            return cli_usage_error("pub", "--status is required");
        if (u.headline[0] == '\0')
            return cli_usage_error("pub", "--headline is required");
    }

    if ((x.key = parley_key_load(x.key_path)) == NULL) {
        cli_error("%s: %s", x.key_path, parley_strerror_long(-errno));
        return CLI_EXIT_KEY;
    }
    if ((x.pub = cli_pub_new(c, x.key)) == NULL) {
        status = cli_fail(c, NULL, -errno);
        parley_key_destroy(&x.key);
        return status;
    }
    status = json ? s_publish_json(&x) : s_publish(&x, &u, "");
    parley_pub_destroy(&x.pub);
    parley_key_destroy(&x.key);
    return status;
}
