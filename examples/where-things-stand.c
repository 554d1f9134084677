/*
 * where-things-stand.c - the current state of a negotiation, once.
 *
 * Asks parleyd for its snapshot (the latest update per negotiation,
 * party and phase, after corrections, retractions and expiry), verified,
 * and prints one line per update, then exits: no subscription, no
 * waiting for the next update.
 *
 *   cc -o where-things-stand where-things-stand.c \
 *      $(pkg-config --cflags --libs parley)
 *   ./where-things-stand tcp://127.0.0.1:7710 gaza-ceasefire
 *
 * Exit status: 0 printed (even if nothing matched), 1 usage error, 2 the
 * daemon could not be asked or refused.
 */
#include <parley.h>

#include <errno.h>
#include <stdio.h>

/* Print one current update: phase, parties, status, headline. */
static void
print_update(uint64_t seq, const parley_update_t *u)
{
    printf("phase %u:", (unsigned)parley_update_phase(u));
    for (size_t i = 0; i < parley_update_party_count(u); i++)
        printf("%s%s", i > 0 ? "," : " ", parley_update_party(u, i));
    printf(" %s: %s (#%llu)\n", parley_status_name(parley_update_status(u)),
           parley_update_headline(u), (unsigned long long)seq);
}

int
main(int argc, char **argv)
{
    if (argc != 3 || !parley_slug_valid(argv[2])) {
        fprintf(stderr, "usage: %s API_ENDPOINT NEGOTIATION\n", argv[0]);
        return 1;
    }
    int status = 2, rc;
    parley_query_t *q = NULL;
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
    if ((rc = parley_snapshot(&opt, &q)) < 0) {
        fprintf(stderr, "where-things-stand: %s: %s\n", argv[1],
                parley_strerror(rc));
        goto done;
    }
    printf("%s, as of seq %llu:\n", argv[2],
           (unsigned long long)parley_query_seq(q));
    const parley_event_t *ev;
    while ((rc = parley_query_next(q, &ev)) == 1) {
        if (parley_event_type(ev) == PARLEY_EVENT_DELIVERY) {
            const parley_delivery_t *d = parley_event_delivery(ev);
            print_update(parley_delivery_seq(d), parley_delivery_update(d));
        } else if (parley_event_type(ev) == PARLEY_EVENT_REJECTED) {
            fprintf(stderr, "where-things-stand: #%llu does not verify: %s\n",
                    (unsigned long long)parley_event_seq(ev),
                    parley_strerror(parley_event_code(ev)));
        }
    }
    if (rc < 0) {
        fprintf(stderr, "where-things-stand: %s\n", parley_strerror(rc));
        goto done;
    }
    status = 0;
done:
    parley_query_destroy(&q);
    parley_filter_destroy(&f);
    return status;
}
