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

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s API_ENDPOINT KEYFILE\n", argv[0]);
        return 1;
    }
    const char *server = argv[1];
    int status = 2;
    parley_sub_t *sub = NULL;
    parley_pub_t *pub = NULL;

    parley_key_t *key = parley_key_load(argv[2]);
    if (key == NULL) {
        fprintf(stderr, "hello: %s: %s\n", argv[2], parley_strerror(-errno));
        return 2;
    }

    /* Subscribe first: parley_sub_new() returns once the subscription is
     * live, so the update published below cannot slip past it. */
    const char *negotiations[] = { "hello-world" };
    parley_filter_t filter = { 0 };
    filter.negotiations = negotiations;
    filter.n_negotiations = 1;
    parley_sub_options_t opt = { 0 };
    opt.start = PARLEY_START_LIVE;
    opt.timeout_ms = HELLO_TIMEOUT_MS;
    sub = parley_sub_new(server, &filter, &opt);
    if (sub == NULL) {
        fprintf(stderr, "hello: subscribe: %s\n", parley_strerror(-errno));
        goto done;
    }

    /* One update; the library fills in issued_at and signer_seq. */
    parley_update_t u;
    memset(&u, 0, sizeof(u));
    snprintf(u.negotiation, sizeof(u.negotiation), "hello-world");
    snprintf(u.parties[0], sizeof(u.parties[0]), "libparley");
    u.n_parties = 1;
    u.phase = 0;
    u.status = PARLEY_STATUS_TALKS_SCHEDULED;
    u.kind = PARLEY_KIND_UPDATE;
    snprintf(u.headline, sizeof(u.headline), "hello from libparley %s",
             PARLEY_VERSION);

    pub = parley_pub_new(server, key);
    if (pub == NULL) {
        fprintf(stderr, "hello: connect: %s\n", parley_strerror(-errno));
        goto done;
    }
    uint64_t seq = 0;
    int rc = parley_pub_publish(pub, &u, HELLO_TIMEOUT_MS, &seq, NULL);
    if (rc != 0) {
        fprintf(stderr, "hello: publish: %s: %s\n", parley_strerror(rc),
                parley_strerror_long(rc));
        goto done;
    }
    printf("published #%llu\n", (unsigned long long)seq);

    /* Wait for it to come back on the feed. */
    static parley_event_t ev; /* large: keep it off the stack */
    for (;;) {
        rc = parley_sub_next(sub, HELLO_TIMEOUT_MS, &ev);
        if (rc == -EINTR)
            continue;
        if (rc <= 0) {
            fprintf(stderr, "hello: no delivery of #%llu: %s\n",
                    (unsigned long long)seq,
                    rc == 0 ? "timed out" : parley_strerror(rc));
            goto done;
        }
        if (ev.type == PARLEY_EVENT_DELIVERY && ev.delivery.seq == seq)
            break;
    }
    printf("received #%llu %s [%s] %s: %s\n",
           (unsigned long long)ev.delivery.seq, ev.delivery.update.negotiation,
           ev.delivery.update.parties[0],
           parley_status_name(ev.delivery.update.status),
           ev.delivery.update.headline);
    status = 0;
done:
    parley_pub_destroy(&pub);
    parley_sub_destroy(&sub);
    parley_key_destroy(&key);
    return status;
}
