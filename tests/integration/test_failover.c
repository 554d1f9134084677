/*
 * test_failover.c - endpoint lists, with two real parleyd (each with its
 * own log: recognising one seq space across nodes comes with the cluster).
 *
 *   - the first endpoint of the list is dead: ping, stats, a publisher and
 *     a subscriber all end up on the second, and say so;
 *   - a subscriber's daemon stops: it says DISCONNECTED, moves to the next
 *     endpoint, says CONNECTED there and CAUGHT_UP, and delivers what is
 *     published there;
 *   - the first endpoint answers unavailable (a stand-in ROUTER): the
 *     publisher resends to the second at once and is acked there, not
 *     after its timeout (a request sent right after a switch once went
 *     into the old connection as it closed, and was lost);
 *   - both daemons hang (SIGSTOP) under publish load and resume: a
 *     filtered subscriber that went round the list meanwhile gets live
 *     again and delivers.
 */
#include "harness.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <zmq.h>

#include <cmocka.h>

#define S_TIMEOUT 10000
/* Per request and endpoint: short, so that a dead endpoint is left soon. */
#define S_REQUEST_MS 500

typedef struct {
    ph_world_t w;               /* its daemon is b */
    ph_daemon_t c;              /* a second one, with another log */
    char dead[PH_EP_MAX];       /* an endpoint nobody listens on */
    char list[3 * PH_EP_MAX];   /* "dead,b" */
    bool test_ok;
} s_state_t;

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    char sub[PH_PATH_MAX];
    assert_non_null(st);
    assert_int_equal(ph_world_start(&st->w, 0x61, NULL), 0);
    ph_path(sub, sizeof(sub), st->w.dir, "c");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(ph_daemon_start(&st->c, sub, st->w.ring, NULL), 0);
    int port = ph_free_port();
    assert_true(port > 0);
    ph_endpoint(st->dead, port);
    snprintf(st->list, sizeof(st->list), "%s,%s", st->dead, st->w.daemon.api);
    *state = st;
    return 0;
}

static void s_loaders_stop(void);

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    s_loaders_stop();
    ph_daemon_teardown(&st->c, st->test_ok);
    ph_world_end(&st->w, st->test_ok);
    free(st);
    return 0;
}

/* The next event of type, passing over the others. */
static const parley_event_t *
s_expect(parley_sub_t *sub, parley_event_type_t type)
{
    return ph_sub_expect(sub, type, true, S_TIMEOUT, "failover");
}

static void
test_dead_first_endpoint(void **state)
{
    s_state_t *st = *state;

    /* One-shot calls. */
    parley_call_options_t co = PARLEY_CALL_OPTIONS_INIT;
    co.server = st->list;
    co.timeout_ms = S_REQUEST_MS;
    parley_info_t *info = NULL;
    assert_int_equal(parley_ping(&co, &info), 0);
    assert_string_equal(parley_info_endpoint(info), st->w.daemon.api);
    assert_string_equal(parley_info_feed(info), st->w.daemon.feed);
    parley_info_destroy(&info);
    parley_stats_t *stats = NULL;
    assert_int_equal(parley_stats(&co, &stats), 0);
    assert_string_equal(parley_stats_endpoint(stats), st->w.daemon.api);
    parley_stats_destroy(&stats);
    /* A list of dead endpoints only: a timeout, after trying each. */
    char dead2[2 * PH_EP_MAX + 2];
    snprintf(dead2, sizeof(dead2), "%s,%s", st->dead, st->dead);
    co.server = dead2;
    assert_int_equal(parley_ping(&co, &info), PARLEY_ETIMEOUT);
    assert_null(info);

    /* A subscriber. */
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.server = st->list;
    so.timeout_ms = S_REQUEST_MS;
    parley_sub_t *sub = parley_sub_new(&so);
    if (sub == NULL)
        fail_msg("parley_sub_new(%s): %s", st->list, parley_strerror(-errno));
    assert_string_equal(parley_sub_endpoint(sub), st->w.daemon.api);
    const parley_event_t *ev = ph_sub_expect(sub, PARLEY_EVENT_CONNECTED,
                                             false, S_TIMEOUT, "start");
    assert_string_equal(parley_event_endpoint(ev), st->w.daemon.api);

    /* A publisher: the first attempt waits on the dead endpoint, the
     * second goes to the live one. */
    parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
    po.server = st->list;
    po.timeout_ms = S_REQUEST_MS;
    parley_pub_t *pub = parley_pub_new(st->w.key.key, &po);
    assert_non_null(pub);
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "through the list");
    uint64_t seq = 0;
    int rc = parley_pub_publish(pub, &u, &seq);
    if (rc != 0)
        fail_msg("publish through %s: %s (%s)", st->list, parley_error_name(rc),
                 parley_pub_detail(pub));
    assert_string_equal(parley_pub_endpoint(pub), st->w.daemon.api);
    ev = s_expect(sub, PARLEY_EVENT_DELIVERY);
    assert_int_equal(parley_event_seq(ev), seq);
    assert_string_equal(parley_update_headline(parley_delivery_update(
                            parley_event_delivery(ev))),
                        "through the list");
    parley_pub_destroy(&pub);
    parley_sub_destroy(&sub);
    st->test_ok = true;
}

static void
test_subscriber_moves_on(void **state)
{
    s_state_t *st = *state;
    char list[2 * PH_EP_MAX + 2];
    snprintf(list, sizeof(list), "%s,%s", st->w.daemon.api, st->c.api);
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.server = list;
    so.timeout_ms = S_REQUEST_MS;
    parley_sub_t *sub = parley_sub_new(&so);
    assert_non_null(sub);
    const parley_event_t *ev = s_expect(sub, PARLEY_EVENT_CONNECTED);
    assert_string_equal(parley_event_endpoint(ev), st->w.daemon.api);
    s_expect(sub, PARLEY_EVENT_CAUGHT_UP);

    /* b stops: the subscriber notices, and goes to c. */
    assert_int_equal(ph_daemon_stop(&st->w.daemon), 0);
    ev = s_expect(sub, PARLEY_EVENT_DISCONNECTED);
    assert_string_equal(parley_event_endpoint(ev), st->w.daemon.api);
    ev = s_expect(sub, PARLEY_EVENT_CONNECTED);
    assert_string_equal(parley_event_endpoint(ev), st->c.api);
    assert_string_equal(parley_sub_endpoint(sub), st->c.api);
    s_expect(sub, PARLEY_EVENT_CAUGHT_UP);

    /* What c accepts now reaches the subscriber. */
    parley_pub_t *pub = ph_pub_new(st->c.api, st->w.key.key, NULL, S_TIMEOUT);
    assert_non_null(pub);
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "from the second node");
    uint64_t seq = 0;
    assert_int_equal(ph_publish(pub, &u, &seq, NULL), 0);
    ev = s_expect(sub, PARLEY_EVENT_DELIVERY);
    assert_int_equal(parley_event_seq(ev), seq);
    assert_string_equal(parley_update_headline(parley_delivery_update(
                            parley_event_delivery(ev))),
                        "from the second node");
    parley_pub_destroy(&pub);
    parley_sub_destroy(&sub);
    st->test_ok = true;
}

/* A publisher thread: publishes to api as fast as it is acked until
 * stop, counting the acks. */
typedef struct {
    const char *api;
    const parley_key_t *key;
    pthread_t thr;
    bool running;
    atomic_bool stop;
    atomic_int acked;
} s_loader_t;

/* The loaders of test_both_paused(), stopped by s_loaders_stop() (also
 * after a failed assertion, from s_teardown()). */
static s_loader_t s_load[2];

static void
s_loaders_stop(void)
{
    for (int i = 0; i < 2; i++)
        if (s_load[i].running) {
            atomic_store(&s_load[i].stop, true);
            pthread_join(s_load[i].thr, NULL);
            s_load[i].running = false;
        }
}

static void *
s_loader_main(void *arg)
{
    s_loader_t *l = arg;
    parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
    po.server = l->api;
    po.timeout_ms = S_REQUEST_MS;
    parley_pub_t *pub = parley_pub_new(l->key, &po);
    while (pub != NULL && !atomic_load(&l->stop)) {
        parley_update_t u;
        ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "load");
        uint64_t seq;
        if (parley_pub_publish(pub, &u, &seq) == 0)
            atomic_fetch_add(&l->acked, 1);
    }
    parley_pub_destroy(&pub);
    return NULL;
}

/*
 * Both daemons of the list hang (SIGSTOP) under publish load, then
 * resume (SIGCONT): the subscriber, whose filter wants none of the load
 * and which went round the list pinging them meanwhile, must get live
 * again on one of them and deliver what it wants published there.
 */
static void
test_both_paused(void **state)
{
    s_state_t *st = *state;
    char list[2 * PH_EP_MAX + 2];
    snprintf(list, sizeof(list), "%s,%s", st->w.daemon.api, st->c.api);
    const char *apis[2] = { st->w.daemon.api, st->c.api };
    for (int i = 0; i < 2; i++) {
        memset(&s_load[i], 0, sizeof(s_load[i]));
        s_load[i].api = apis[i];
        s_load[i].key = st->w.key.key;
        assert_int_equal(
            pthread_create(&s_load[i].thr, NULL, s_loader_main, &s_load[i]),
            0);
        s_load[i].running = true;
    }
    parley_filter_t *f = parley_filter_new();
    assert_non_null(f);
    assert_int_equal(parley_filter_add_party(f, "egypt"), 0);
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.server = list;
    so.timeout_ms = 1000;
    parley_sub_t *sub = ph_sub_new(list, f, &so);
    assert_non_null(sub);
    s_expect(sub, PARLEY_EVENT_CONNECTED);
    s_expect(sub, PARLEY_EVENT_CAUGHT_UP);

    for (int round = 0; round < 2; round++) {
        assert_int_equal(kill(st->w.daemon.pid, SIGSTOP), 0);
        assert_int_equal(kill(st->c.pid, SIGSTOP), 0);
        s_expect(sub, PARLEY_EVENT_DISCONNECTED);
        /* round the list a few times while both hang */
        const parley_event_t *ev;
        int64_t end = parley__mono_ms() + 4000;
        while (parley__mono_ms() < end) {
            int rc = parley_sub_next(sub, 500, &ev);
            assert_true(rc == 0 || rc == PARLEY_ETIMEOUT);
        }
        assert_int_equal(kill(st->w.daemon.pid, SIGCONT), 0);
        assert_int_equal(kill(st->c.pid, SIGCONT), 0);

        ev = s_expect(sub, PARLEY_EVENT_CONNECTED);
        const char *api = parley_event_endpoint(ev);
        ph_daemon_t *d = strcmp(api, st->c.api) == 0 ? &st->c : &st->w.daemon;
        parley_pub_t *pub = ph_pub_new(d->api, st->w.key.key, NULL, S_TIMEOUT);
        assert_non_null(pub);
        parley_update_t u;
        uint64_t seq = 0;
        int rc;
        do { /* the loaders sign with the same key: a race on signer_seq,
              * and on an idle machine they can empty its rate bucket */
            ph_update_init(&u, "gaza-ceasefire", "egypt", 0,
                           "after the pause");
            rc = ph_publish(pub, &u, &seq, NULL);
        } while (rc == PARLEY_EREPLAY || rc == PARLEY_ERATELIMITED);
        assert_int_equal(rc, 0);
        for (;;) {
            ev = s_expect(sub, PARLEY_EVENT_DELIVERY);
            if (parley_event_seq(ev) == seq)
                break;
        }
        assert_string_equal(parley_update_headline(parley_delivery_update(
                                parley_event_delivery(ev))),
                            "after the pause");
        parley_pub_destroy(&pub);
    }
    s_loaders_stop();
    assert_true(atomic_load(&s_load[0].acked) > 0);
    assert_true(atomic_load(&s_load[1].acked) > 0);
    parley_sub_destroy(&sub);
    parley_filter_destroy(&f);
    st->test_ok = true;
}

/* A stand-in api that answers every request unavailable. */
typedef struct {
    void *ctx, *sock;
    char ep[PH_EP_MAX];
    pthread_t thr;
    atomic_bool stop;
    atomic_int answered;
} s_refuser_t;

static void *
s_refuser_main(void *arg)
{
    s_refuser_t *r = arg;
    uint8_t buf[PH_FRAME_MAX], arena_buf[64 * 1024], out[1024];
    while (!atomic_load(&r->stop)) {
        zmq_pollitem_t it = { r->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        uint8_t id[256];
        int idn = zmq_recv(r->sock, id, sizeof(id), 0);
        int n = zmq_recv(r->sock, buf, sizeof(buf), 0);
        if (idn <= 0 || n <= 0)
            continue;
        parley__arena_t arena;
        parley__request_t req;
        parley__arena_init(&arena, arena_buf, sizeof(arena_buf));
        if (parley__request_decode(buf, (size_t)n, &req, &arena) == 0) {
            parley__reply_t rep = { .request_id = req.request_id,
                                    .type = PARLEY__REPLY_REJECT,
                                    .code = PARLEY_EUNAVAILABLE,
                                    .message = "stand-in: unavailable" };
            size_t len = 0;
            if (parley__reply_encode(&rep, out, sizeof(out), &len) == 0) {
                zmq_send(r->sock, id, (size_t)idn, ZMQ_SNDMORE);
                zmq_send(r->sock, out, len, 0);
                atomic_fetch_add(&r->answered, 1);
            }
        }
        parley__arena_reset(&arena);
    }
    return NULL;
}

static void
test_unavailable_moves_at_once(void **state)
{
    s_state_t *st = *state;
    s_refuser_t r = { 0 };
    int zero = 0;
    r.ctx = zmq_ctx_new();
    r.sock = zmq_socket(r.ctx, ZMQ_ROUTER);
    assert_non_null(r.sock);
    zmq_setsockopt(r.sock, ZMQ_LINGER, &zero, sizeof(zero));
    int port = ph_free_port();
    ph_endpoint(r.ep, port);
    assert_int_equal(zmq_bind(r.sock, r.ep), 0);
    assert_int_equal(pthread_create(&r.thr, NULL, s_refuser_main, &r), 0);

    char list[2 * PH_EP_MAX + 2];
    snprintf(list, sizeof(list), "%s,%s", r.ep, st->c.api);
    parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
    po.server = list;
    po.timeout_ms = 10000; /* a lost request would wait this long */
    po.attempts = 2;
    parley_pub_t *pub = parley_pub_new(st->w.key.key, &po);
    assert_non_null(pub);
    for (int i = 0; i < 20; i++) {
        parley_update_t u;
        char headline[64];
        snprintf(headline, sizeof(headline), "round %d", i);
        ph_update_init(&u, "gaza-ceasefire", "egypt", 0, headline);
        uint64_t seq = 0;
        int64_t t0 = parley__mono_ms();
        int rc = parley_pub_publish(pub, &u, &seq);
        if (rc != 0)
            fail_msg("round %d: %s (%s) after %lld ms", i,
                     parley_error_name(rc), parley_pub_detail(pub),
                     (long long)(parley__mono_ms() - t0));
        /* Back to the refuser for the next round. */
        if (i % 2 == 0) {
            parley_pub_destroy(&pub);
            pub = parley_pub_new(st->w.key.key, &po);
            assert_non_null(pub);
        }
    }
    assert_true(atomic_load(&r.answered) >= 10);
    parley_pub_destroy(&pub);
    atomic_store(&r.stop, true);
    pthread_join(r.thr, NULL);
    zmq_close(r.sock);
    zmq_ctx_term(r.ctx);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_first_endpoint),
        cmocka_unit_test(test_unavailable_moves_at_once),
        cmocka_unit_test(test_both_paused),
        cmocka_unit_test(test_subscriber_moves_on),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
