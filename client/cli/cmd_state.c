/*
 * cmd_state.c - parley state: where the talks stand, once.
 */
#include "common.h"

#include "state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void
s_help(void)
{
    printf("usage: parley state [filters] [--json | --raw | -F FORMAT]\n"
           "                    [--keyring FILE]\n"
           "\n"
           "Print where things stand, then exit: the current update of every\n"
           "negotiation, party and phase that matches the filters, as the\n"
           "daemon's snapshot has it (corrections, retractions and expiry\n"
           "applied). One answer of the daemon: nothing published afterwards\n"
           "is waited for. A table grouped by negotiation and phase, one line\n"
           "per party:\n"
           "\n"
           "  gaza-ceasefire\n"
           "    phase 0 (the deal as a whole)\n"
           "      egypt   talks_in_progress  #12  2025-01-15 14:02  HEADLINE\n"
           "      hamas   proposed           #10  2025-01-15 14:02  HEADLINE\n"
           "    phase 1\n"
           "      hamas   proposed           #3   2025-01-15 14:02  HEADLINE\n"
           "\n"
           "(party, status, the seq of the update, the local time it was\n"
           "issued, its headline). --party, --phase and --negotiation choose\n"
           "entries (an update naming israel and hamas shows only the hamas\n"
           "line with --party hamas); --status and --kind ask what an entry\n"
           "stands at now.\n"
           "\n"
           "Options:\n"
           "      --json          the same as one JSON document: {\"seq\": N,\n"
           "                      \"negotiations\": [{\"negotiation\", \"phases\":\n"
           "                      [{\"phase\", \"parties\": [{\"party\", \"seq\",\n"
           "                      \"status\", \"kind\", \"references\", \"headline\",\n"
           "                      \"issued_at\", \"received_at\", \"signer_id\",\n"
           "                      \"signer_name\"}]}]}]}\n"
           "      --raw, -F FMT   print each current update once, in seq order,\n"
           "                      as parley sub does (see below)\n"
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

/* The deliveries of the snapshot, kept. */
typedef struct {
    parley_delivery_t **ds;
    size_t n, cap;
} s_list_t;

static int
s_keep(void *arg, const parley_delivery_t *d)
{
    s_list_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? l->cap * 2 : 64;
        parley_delivery_t **grown = realloc(l->ds, cap * sizeof(*grown));
        if (grown == NULL)
            goto oom;
        l->ds = grown;
        l->cap = cap;
    }
    if ((l->ds[l->n] = parley_delivery_dup(d)) == NULL)
        goto oom;
    l->n++;
    return 0;
oom:
    cli_error("out of memory");
    return CLI_EXIT_OTHER;
}

/* Print the updates that hold rows, each once, in seq order (-F, --raw). */
static int
s_print_updates(const cli_output_t *out, const cli_state_row_t *rows, size_t n,
                const s_list_t *l)
{
    /* l is in seq order (the snapshot's): find each row's delivery in it */
    char *used = calloc(l->n > 0 ? l->n : 1, 1);
    if (used == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_OTHER;
    }
    for (size_t k = 0; k < n; k++) {
        uint64_t seq = parley_delivery_seq(rows[k].d);
        size_t lo = 0, hi = l->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (parley_delivery_seq(l->ds[mid]) < seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < l->n)
            used[lo] = 1;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!used[i])
            continue;
        int rc = cli_print_delivery(stdout, out, l->ds[i]);
        if (rc < 0) {
            free(used);
            if (rc == -EPIPE)
                return CLI_EXIT_OK;
            cli_error("writing output: %s", strerror(-rc));
            return CLI_EXIT_OTHER;
        }
    }
    free(used);
    return CLI_EXIT_OK;
}

static int
s_run(cli_common_t *c, int argc, char **argv, cli_filter_t *filters)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        CLI_FILTER_LONG,
        CLI_OUTPUT_FORMAT_LONG,
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { NULL, 0, NULL, 0 },
    };
    cli_output_t out = { .mode = CLI_OUT_LINE };
    const char *keyring_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "F:", longopts,
                              NULL)) != -1) {
        int rc = cli_read_option(c, filters, &out, "state", opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            s_help();
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_KEYRING) {
            keyring_path = optarg;
            continue;
        }
        if (opt == '?' && strncmp(argv[optind - 1], "--since", 7) == 0)
            return cli_usage_error("state", "unknown option \"--since\" (the "
                                            "state has no range; see parley "
                                            "replay)");
        return cli_option_error("state", opt, argv);
    }
    if (optind < argc)
        return cli_usage_error("state", "unexpected argument \"%s\"",
                               argv[optind]);
    if (cli_filter_done(filters, "state") < 0)
        return CLI_EXIT_USAGE;
    int status = cli_common_ready(c);
    if (status != 0)
        return status;

    parley_keyring_t *ring = NULL;
    if ((status = cli_load_keyring(cli_keyring_path(c, keyring_path), &ring))
        != 0)
        return status;
    parley_call_options_t copt = PARLEY_CALL_OPTIONS_INIT;
    parley_query_t *q = NULL;
    s_list_t l = { 0 };
    cli_state_row_t *rows = NULL;
    size_t n_rows = 0;
    int rc = cli_call_options(c, &copt);
    copt.keyring = ring;
    cli_filter_call(filters, &copt);
    cli_signals_install();
    if (rc == 0)
        rc = parley_snapshot(&copt, &q);
    if (rc == PARLEY_EUNAVAILABLE) {
        /* the reason most often met: more than one answer carries */
        cli_error("rejected: unavailable: %s (a state of more than 4096 "
                  "current updates does not fit one answer: narrow it with "
                  "--negotiation, --party or --phase)",
                  parley_strerror(rc));
        status = CLI_EXIT_REJECTED;
        goto out;
    }
    if (rc < 0) {
        status = rc == -EINTR && cli_stop ? CLI_EXIT_OK : cli_fail(c, NULL, rc);
        goto out;
    }
    if ((status = cli_query_run(c, q, s_keep, &l)) != 0 || cli_stop)
        goto out;
    if (cli_state_rows((const parley_delivery_t *const *)l.ds, l.n, filters,
                       &rows, &n_rows)
        < 0) {
        cli_error("out of memory");
        status = CLI_EXIT_OTHER;
        goto out;
    }
    cli_info(c, "state as of seq %llu: %zu entries",
             (unsigned long long)parley_query_seq(q), n_rows);
    if (out.mode == CLI_OUT_FORMAT || out.mode == CLI_OUT_RAW) {
        status = s_print_updates(&out, rows, n_rows, &l);
    } else {
        if (n_rows == 0 && out.mode == CLI_OUT_LINE)
            cli_warn(c, "nothing is current%s", filters->n > 0
                                                    || filters->statuses != 0
                                                    || filters->kinds != 0
                                                    ? " for these filters"
                                                    : " yet");
        rc = out.mode == CLI_OUT_JSON
                 ? cli_state_print_json(stdout, rows, n_rows,
                                        parley_query_seq(q))
                 : cli_state_print_table(stdout, rows, n_rows);
        if (rc < 0 && rc != -EPIPE) {
            cli_error("writing output: %s", strerror(-rc));
            status = CLI_EXIT_OTHER;
        }
    }
out:
    free(rows);
    for (size_t i = 0; i < l.n; i++)
        parley_delivery_destroy(&l.ds[i]);
    free(l.ds);
    parley_query_destroy(&q);
    parley_keyring_destroy(&ring);
    return status;
}

int
cmd_state(cli_common_t *c, int argc, char **argv)
{
    return cli_with_filters(c, argc, argv, s_run);
}
