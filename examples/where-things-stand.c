/*
 * where-things-stand.c - the current state of a negotiation, once.
 *
 * Fills a state table (parley_state_t) from parleyd's snapshot: for each
 * phase and party of the negotiation, the update holding its state after
 * corrections, retractions and expiry, verified. Prints it grouped by
 * phase, then exits: no subscription, no waiting for the next update.
 * (An update naming several parties may hold the state of only some of
 * them, so the table, not the updates' party lists, says who stands
 * where.)
 *
 *   cc -o where-things-stand where-things-stand.c \
 *      $(pkg-config --cflags --libs parley)
 *   ./where-things-stand tcp://127.0.0.1:7710 gaza-ceasefire
 *
 * Output:
 *   gaza-ceasefire, as of seq 14:
 *   phase 1:
 *     hamas: counter_proposal: Hamas made a counter-proposal (#13)
 *
 * Exit status: 0 printed (even if nothing matched), 1 usage error, 2 the
 * daemon could not be asked or refused.
 */
#include <parley.h>

#include <errno.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
    if (argc != 3 || !parley_slug_valid(argv[2])) {
        fprintf(stderr, "usage: %s API_ENDPOINT NEGOTIATION\n", argv[0]);
        return 1;
    }
    int status = 2, rc;
    parley_state_t *st = NULL;
    parley_filter_t *f = parley_filter_new();
    if (f == NULL || parley_filter_add_negotiation(f, argv[2]) != 0) {
        fprintf(stderr, "where-things-stand: out of memory\n");
        goto done;
    }
    const parley_filter_t *filters[] = { f };
    parley_call_options_t opt = PARLEY_CALL_OPTIONS_INIT;
    opt.server = argv[1];
    opt.filters = filters;
    opt.n_filters = 1;
    if ((st = parley_state_new(&opt)) == NULL) {
        fprintf(stderr, "where-things-stand: %s\n", parley_strerror(-errno));
        goto done;
    }
    if ((rc = parley_state_fetch(st)) < 0) {
        fprintf(stderr, "where-things-stand: %s: %s\n", argv[1],
                parley_strerror(rc));
        goto done;
    }
    if (parley_state_rejected(st) > 0)
        fprintf(stderr, "where-things-stand: %zu updates do not verify\n",
                parley_state_rejected(st));
    printf("%s, as of seq %llu:\n", argv[2],
           (unsigned long long)parley_state_seq(st));
    /* Entries come by negotiation, phase, party: a new phase starts a
     * group. */
    uint32_t shown = UINT32_MAX;
    for (size_t i = 0; i < parley_state_count(st); i++) {
        const char *party;
        uint32_t phase;
        const parley_delivery_t *d =
            parley_state_entry(st, i, NULL, &party, &phase);
        const parley_update_t *u = parley_delivery_update(d);
        if (phase != shown)
            printf("phase %u:\n", (unsigned)(shown = phase));
        printf("  %s: %s: %s (#%llu)\n", party,
               parley_status_name(parley_update_status(u)),
               parley_update_headline(u),
               (unsigned long long)parley_delivery_seq(d));
    }
    status = 0;
done:
    parley_state_destroy(&st);
    parley_filter_destroy(&f);
    return status;
}
