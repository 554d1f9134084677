/*
 * event-loop.c - libparley in a poll() loop, without a thread of its own.
 *
 * One loop drives a subscriber and a publisher: it publishes COUNT
 * updates (pipelined: it does not wait for one answer before sending the
 * next) and prints each one as it comes back on the feed, then exits.
 * The same pattern fits libuv, libev, glib or a ZeroMQ loop: watch the
 * descriptors parley_sub_fds() and parley_pub_fds() give for readability,
 * wake up after parley_sub_timeout()/parley_pub_timeout() at the latest,
 * and then let the library do everything that is ready.
 *
 *   cc -o event-loop event-loop.c $(pkg-config --cflags --libs parley)
 *   ./event-loop tcp://127.0.0.1:7710 hello.key 20
 *
 * The key must be in the daemon's keyring for the negotiation
 * "event-loop". Exit status: 0 when every update came back, 1 on a usage
 * error, 2 otherwise.
 */
#include <parley.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FDS_MAX 8             /* descriptors of both objects, with room */
#define TIMEOUT_MS 10000      /* give up when nothing happens this long */

typedef struct {
    parley_pub_t *pub;
    parley_sub_t *sub;
    const parley_key_t *key;
    long count;               /* updates to publish */
    long sent, acked, seen;   /* progress */
    uint64_t first_seq;       /* signer_seq of the first update */
} app_t;

/* Sign update number i and hand it to the publisher (which never blocks). */
static int
publish_one(app_t *a, long i)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    char headline[64];
    size_t len = 0;
    parley_update_t *u = parley_update_new();
    if (u == NULL)
        return -ENOMEM;
    snprintf(headline, sizeof(headline), "event loop update %ld", i + 1);
    /* With pipelining the signer_seq is ours to choose: one above the other. */
    int rc = parley_update_set_negotiation(u, "event-loop");
    if (rc == 0)
        rc = parley_update_add_party(u, "libparley");
    if (rc == 0)
        rc = parley_update_set_status(u, PARLEY_STATUS_TALKS_IN_PROGRESS);
    if (rc == 0)
        rc = parley_update_set_headline(u, headline);
    if (rc == 0)
        rc = parley_update_set_issued_at(u, parley_now_ms());
    if (rc == 0)
        rc = parley_update_set_signer_seq(u, a->first_seq + (uint64_t)i);
    if (rc == 0)
        rc = parley_sign(a->key, u, env, sizeof(env), &len);
    if (rc == 0)
        rc = parley_pub_send(a->pub, env, len, NULL);
    parley_update_destroy(&u);
    return rc;
}

/* Take every answer the publisher has, without waiting. 0 or an error. */
static int
drain_pub(app_t *a)
{
    for (;;) {
        uint64_t id, seq;
        int rc = parley_pub_recv(a->pub, 0, &id, &seq);
        if (rc == -EAGAIN)
            return 0; /* nothing more now: safe to poll again */
        if (rc < 0) {
            fprintf(stderr, "event-loop: publish: %s: %s\n",
                    parley_error_name(rc), parley_pub_detail(a->pub));
            return rc;
        }
        a->acked++;
    }
}

/* Handle every event the subscriber has, without waiting. 0 or an error. */
static int
drain_sub(app_t *a)
{
    for (;;) {
        const parley_event_t *ev;
        int rc = parley_sub_next(a->sub, 0, &ev);
        if (rc == 0)
            return 0; /* nothing more now: safe to poll again */
        if (rc < 0 && parley_error_retryable(rc))
            continue; /* an unanswered request: the next call asks again */
        if (rc < 0) {
            fprintf(stderr, "event-loop: subscriber: %s\n",
                    parley_strerror(rc));
            return rc;
        }
        if (parley_event_type(ev) != PARLEY_EVENT_DELIVERY)
            continue;
        const parley_update_t *u =
            parley_delivery_update(parley_event_delivery(ev));
        printf("#%llu %s\n", (unsigned long long)parley_event_seq(ev),
               parley_update_headline(u));
        a->seen++;
    }
}

/* The smaller of two poll() timeouts, where -1 means none. */
static int
min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int
run(app_t *a)
{
    struct pollfd pfd[FDS_MAX];
    int fds[FDS_MAX];
    int idle_ms = 0;
    while (a->seen < a->count) {
        /* Keep a few updates in flight, never all at once. */
        while (a->sent < a->count && a->sent - a->acked < 4) {
            int rc = publish_one(a, a->sent);
            if (rc == -EAGAIN)
                break; /* the publisher's window is full: answers first */
            if (rc < 0) {
                fprintf(stderr, "event-loop: send: %s\n", parley_strerror(rc));
                return 2;
            }
            a->sent++;
        }
        /* Drain both objects before sleeping: their descriptors are
         * edge-triggered and stay quiet until the library looked again. */
        if (drain_pub(a) < 0 || drain_sub(a) < 0)
            return 2;
        if (a->seen >= a->count)
            break;
        int n = parley_sub_fds(a->sub, fds, FDS_MAX);
        int m = parley_pub_fds(a->pub, fds + n, FDS_MAX - (size_t)n);
        if (n < 0 || m < 0 || n + m > FDS_MAX)
            return 2;
        for (int i = 0; i < n + m; i++)
            pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
        int timeout = min_timeout(parley_sub_timeout(a->sub),
                                  parley_pub_timeout(a->pub));
        timeout = min_timeout(timeout, 1000);
        int rc = poll(pfd, (nfds_t)(n + m), timeout);
        if (rc < 0 && errno != EINTR)
            return 2;
        idle_ms = rc == 0 ? idle_ms + timeout : 0;
        if (idle_ms >= TIMEOUT_MS) {
            fprintf(stderr, "event-loop: %ld of %ld updates came back\n",
                    a->seen, a->count);
            return 2;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 4 || atol(argv[3]) <= 0) {
        fprintf(stderr, "usage: %s API_ENDPOINT KEYFILE COUNT\n", argv[0]);
        return 1;
    }
    app_t a = { .count = atol(argv[3]) };
    parley_key_t *key = parley_key_load(argv[2]);
    if (key == NULL) {
        fprintf(stderr, "event-loop: %s: %s\n", argv[2],
                parley_strerror(-errno));
        return 2;
    }
    a.key = key;
    a.first_seq = (uint64_t)parley_now_ms() * 1000;

    /* The subscriber is live when parley_sub_new() returns, so none of
     * the updates published below can slip past it. */
    parley_filter_t *f = parley_filter_new();
    const parley_filter_t *filters[] = { f };
    parley_sub_options_t sopt = PARLEY_SUB_OPTIONS_INIT;
    sopt.server = argv[1];
    sopt.filters = filters;
    sopt.n_filters = 1;
    parley_pub_options_t popt = PARLEY_PUB_OPTIONS_INIT;
    popt.server = argv[1];
    int status = 2;
    if (f == NULL || parley_filter_add_negotiation(f, "event-loop") != 0)
        goto done;
    if ((a.sub = parley_sub_new(&sopt)) == NULL) {
        fprintf(stderr, "event-loop: subscribe: %s\n", parley_strerror(-errno));
        goto done;
    }
    if ((a.pub = parley_pub_new(key, &popt)) == NULL) {
        fprintf(stderr, "event-loop: publisher: %s\n", parley_strerror(-errno));
        goto done;
    }
    status = run(&a);
done:
    parley_pub_destroy(&a.pub);
    parley_sub_destroy(&a.sub);
    parley_filter_destroy(&f);
    parley_key_destroy(&key);
    return status;
}
