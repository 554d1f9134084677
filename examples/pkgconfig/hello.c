/*
 * hello.c - the smallest libparley program: subscribe, publish one
 * update, receive it back through parleyd.
 *
 * Build it against an installed libparley:
 *
 *   cc -o hello hello.c $(pkg-config --cflags --libs parley)
 *
 * Run it with the api endpoint of a parleyd and a secret key that the
 * daemon's keyring trusts for the negotiation "hello-world":
 *
 *   parley keygen -o hello.key      # add the printed line to the keyring
 *   ./hello tcp://127.0.0.1:7710 hello.key
 *
 * It prints the seq the daemon assigned and the update as the subscriber
 * received it, and exits 0; 1 on a usage error, 2 if anything failed.
 */
#include <parley.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* How long to wait for the daemon, and for the update to come back. */
#define HELLO_TIMEOUT_MS 10000

/* Build the one update this program publishes. Returns 0 or a code. */
static int
s_update(parley_update_t *u)
{
    char headline[64];
    snprintf(headline, sizeof(headline), "hello from libparley %s",
             parley_version());
    int rc = parley_update_set_negotiation(u, "hello-world");
    if (rc == 0)
        rc = parley_update_add_party(u, "libparley");
    if (rc == 0)
        rc = parley_update_set_status(u, PARLEY_STATUS_TALKS_SCHEDULED);
    if (rc == 0)
        rc = parley_update_set_headline(u, headline);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s API_ENDPOINT KEYFILE\n", argv[0]);
        return 1;
    }
    const char *server = argv[1];
    int status = 2, rc;
    parley_sub_t *sub = NULL;
    parley_pub_t *pub = NULL;
    parley_filter_t *filter = NULL;
    parley_update_t *u = NULL;

    parley_key_t *key = parley_key_load(argv[2]);
    if (key == NULL) {
        fprintf(stderr, "hello: %s: %s\n", argv[2], parley_strerror(-errno));
        return 2;
    }

    /* Subscribe first: parley_sub_new() returns once the subscription is
     * live, so the update published below cannot slip past it. */
    filter = parley_filter_new();
    if (filter == NULL
        || parley_filter_add_negotiation(filter, "hello-world") != 0) {
        fprintf(stderr, "hello: out of memory\n");
        goto done;
    }
    const parley_filter_t *filters[] = { filter };
    parley_sub_options_t sopt = PARLEY_SUB_OPTIONS_INIT;
    sopt.server = server;
    sopt.filters = filters;
    sopt.n_filters = 1;
    sopt.start = PARLEY_START_LIVE;
    sopt.timeout_ms = HELLO_TIMEOUT_MS;
    sub = parley_sub_new(&sopt);
    if (sub == NULL) {
        fprintf(stderr, "hello: subscribe: %s\n", parley_strerror(-errno));
        goto done;
    }

    /* One update; the library fills in issued_at and signer_seq. */
    if ((u = parley_update_new()) == NULL || (rc = s_update(u)) != 0) {
        fprintf(stderr, "hello: cannot make the update\n");
        goto done;
    }
    parley_pub_options_t popt = PARLEY_PUB_OPTIONS_INIT;
    popt.server = server;
    popt.timeout_ms = HELLO_TIMEOUT_MS;
    pub = parley_pub_new(key, &popt);
    if (pub == NULL) {
        fprintf(stderr, "hello: connect: %s\n", parley_strerror(-errno));
        goto done;
    }
    uint64_t seq = 0;
    rc = parley_pub_publish(pub, u, &seq);
    if (rc < 0) {
        fprintf(stderr, "hello: publish: %s: %s\n", parley_error_name(rc),
                parley_pub_detail(pub)[0] != '\0' ? parley_pub_detail(pub)
                                                   : parley_strerror(rc));
        goto done;
    }
    printf("published #%llu\n", (unsigned long long)seq);

    /* Wait for it to come back on the feed. */
    const parley_delivery_t *d = NULL;
    while (d == NULL) {
        const parley_event_t *ev;
        rc = parley_sub_next(sub, HELLO_TIMEOUT_MS, &ev);
        if (rc == -EINTR)
            continue;
        if (rc <= 0) {
            fprintf(stderr, "hello: no delivery of #%llu: %s\n",
                    (unsigned long long)seq,
                    rc == 0 ? "timed out" : parley_strerror(rc));
            goto done;
        }
        if (parley_event_type(ev) == PARLEY_EVENT_DELIVERY
            && parley_event_seq(ev) == seq)
            d = parley_event_delivery(ev);
    }
    const parley_update_t *got = parley_delivery_update(d);
    printf("received #%llu %s [%s] %s: %s\n",
           (unsigned long long)parley_delivery_seq(d),
           parley_update_negotiation(got), parley_update_party(got, 0),
           parley_status_name(parley_update_status(got)),
           parley_update_headline(got));
    status = 0;
done:
    parley_pub_destroy(&pub);
    parley_sub_destroy(&sub);
    parley_update_destroy(&u);
    parley_filter_destroy(&filter);
    parley_key_destroy(&key);
    return status;
}
