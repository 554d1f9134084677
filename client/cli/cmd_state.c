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

/* Order of deliveries by seq, for -F and --raw. */
static int
s_by_seq(const void *pa, const void *pb)
{
    uint64_t a = parley_delivery_seq(*(const parley_delivery_t *const *)pa);
    uint64_t b = parley_delivery_seq(*(const parley_delivery_t *const *)pb);
    return a < b ? -1 : a > b;
}

/* Print the updates that hold rows, each once, in seq order (-F, --raw). */
static int
s_print_updates(const cli_output_t *out, const cli_state_row_t *rows, size_t n)
{
    const parley_delivery_t **ds = calloc(n > 0 ? n : 1, sizeof(*ds));
    if (ds == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_OTHER;
    }
    for (size_t k = 0; k < n; k++)
        ds[k] = rows[k].d;
    qsort(ds, n, sizeof(*ds), s_by_seq);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && ds[i] == ds[i - 1])
            continue; /* one update holding several entries */
        int rc = cli_print_delivery(stdout, out, ds[i]);
        if (rc < 0) {
            free(ds);
            if (rc == -EPIPE)
                return CLI_EXIT_OK;
            cli_error("writing output: %s", strerror(-rc));
            return CLI_EXIT_OTHER;
        }
    }
    free(ds);
    return CLI_EXIT_OK;
}

/* The entries of the table, as rows (pointing into st). NULL: no memory. */
static cli_state_row_t *
s_entries(const parley_state_t *st, size_t *n)
{
    *n = parley_state_count(st);
    cli_state_row_t *e = calloc(*n > 0 ? *n : 1, sizeof(*e));
    if (e == NULL)
        return NULL;
    for (size_t i = 0; i < *n; i++)
        e[i].d = parley_state_entry(st, i, &e[i].negotiation, &e[i].party,
                                    &e[i].phase);
    return e;
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
    parley_state_t *st = NULL;
    cli_state_row_t *entries = NULL, *rows = NULL;
    size_t n_entries = 0, n_rows = 0;
    int rc = cli_call_options(c, &copt);
    copt.keyring = ring;
    cli_filter_call(filters, &copt);
    cli_signals_install();
    if (rc == 0) {
        if ((st = parley_state_new(&copt)) == NULL)
            rc = -errno;
        else
            rc = parley_state_fetch(st);
    }
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
    if (parley_state_rejected(st) > 0)
        cli_warn(c, "%zu updates of the state failed verification and are "
                    "not shown",
                 parley_state_rejected(st));
    if ((entries = s_entries(st, &n_entries)) == NULL
        || cli_state_rows(entries, n_entries, filters, &rows, &n_rows) < 0) {
        cli_error("out of memory");
        status = CLI_EXIT_OTHER;
        goto out;
    }
    cli_info(c, "state as of seq %llu: %zu entries",
             (unsigned long long)parley_state_seq(st), n_rows);
    if (out.mode == CLI_OUT_FORMAT || out.mode == CLI_OUT_RAW) {
        status = s_print_updates(&out, rows, n_rows);
    } else {
        if (n_rows == 0 && out.mode == CLI_OUT_LINE)
            cli_warn(c, "nothing is current%s", filters->n > 0
                                                    || filters->statuses != 0
                                                    || filters->kinds != 0
                                                    ? " for these filters"
                                                    : " yet");
        rc = out.mode == CLI_OUT_JSON
                 ? cli_state_print_json(stdout, rows, n_rows,
                                        parley_state_seq(st))
                 : cli_state_print_table(stdout, rows, n_rows);
        if (rc < 0 && rc != -EPIPE) {
            cli_error("writing output: %s", strerror(-rc));
            status = CLI_EXIT_OTHER;
        }
    }
out:
    free(rows);
    free(entries);
    parley_state_destroy(&st);
    parley_keyring_destroy(&ring);
    return status;
}

int
cmd_state(cli_common_t *c, int argc, char **argv)
{
    return cli_with_filters(c, argc, argv, s_run);
}
