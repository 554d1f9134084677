/*
 * test_sub_threads.c - a subscriber that verifies on several threads
 * hands out exactly what one that verifies on the caller's thread alone
 * hands out, in the same order, forgeries rejected the same way.
 *
 * A real parleyd starts on a log written beforehand with the daemon's own
 * store code (as parleyd writes it, so it serves it as it is): S_LOG
 * updates of the trusted key, among them one whose signature was
 * tampered with (seq S_FORGED_OLD) and one signed by a key the
 * subscribers' keyring does not know (seq S_STRANGER). The subscribers
 * read the feed through a relay in this process that forges one live
 * delivery (seq S_FORGED_LIVE: one bit of its signature flipped), as a
 * hostile network between daemon and subscriber would.
 *
 * Two subscribers with the same keyring, one with verify_threads 1 (the
 * default path) and one with 4, start at seq 1: a replay catch-up over
 * the whole log. Once both are live a burst of S_BURST updates is
 * published while neither reads; then both drain. Asserted: both hand
 * out the same events (type, seq, code, the update's signer_seq) in the
 * same order, seqs strictly ascending, every seq 1..head once, the three
 * bad ones PARLEY_EVENT_REJECTED with PARLEY_EBADSIG, PARLEY_EUNKNOWNSIGNER
 * and PARLEY_EBADSIG, every other one a delivery; then both are destroyed
 * while the threaded one still holds deliveries it verifies ahead.
 */
#include "codec.h"
#include "harness.h"
#include "store.h"
#include "entries.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include <cmocka.h>

#define S_LOG 3000          /* updates in the log before the daemon starts */
#define S_FORGED_OLD 777    /* tampered signature, in the log */
#define S_STRANGER 1300     /* signed by a key the subscribers do not know */
#define S_BURST 2000        /* published live while nobody reads */
#define S_FORGED_LIVE (S_LOG + 1234) /* forged by the relay */
#define S_HEAD (S_LOG + S_BURST)
#define S_TIMEOUT 15000
#define S_HWM 100000

/* One event as the test keeps it. */
typedef struct {
    parley_event_type_t type;
    uint64_t seq;
    int code;
    uint64_t signer_seq; /* DELIVERY */
} s_ev_t;

typedef struct {
    s_ev_t *v;
    size_t n, cap;
    uint64_t last_seq; /* of the last delivery or reject */
} s_evlist_t;

/* The feed relay: daemon feed -> SUB -> PUB, one delivery forged. */
typedef struct {
    void *ctx, *in, *out;
    char out_ep[PH_EP_MAX];
    atomic_bool stop;
    atomic_int forged;
    pthread_t thread;
    bool running;
} s_relay_t;

typedef struct {
    char dir[PH_PATH_MAX];
    char ring[PH_PATH_MAX];
    ph_key_t key, stranger;
    ph_daemon_t daemon;
    s_relay_t relay;
    bool test_ok;
} s_state_t;

/* ---------------------------------------------------------------- log */

/* Flip one bit of the signature of the envelope env (len bytes). */
static void
s_forge_envelope(uint8_t *env, size_t *len)
{
    uint8_t body[PARLEY_ENVELOPE_MAX], pk[PARLEY_PUBLICKEY_BYTES],
        sig[PARLEY_SIGNATURE_BYTES];
    size_t body_len;
    assert_int_equal(parley_envelope_unpack(env, *len, body, sizeof(body),
                                            &body_len, pk, sig),
                     0);
    sig[17] ^= 0x04;
    assert_int_equal(parley_envelope_pack(body, body_len, pk, sig, env,
                                          PARLEY_ENVELOPE_MAX, len),
                     0);
}

/* Write the S_LOG updates into the daemon's state directory. */
static void
s_build_log(s_state_t *st, const char *state_dir)
{
    char errbuf[256] = "";
    int err = 0;
    pd_store_opts_t so = { .sync = false };
    assert_int_equal(mkdir(state_dir, 0700), 0);
    pd_store_t *store = pd_store_open(state_dir, &so, NULL, NULL, errbuf,
                                      sizeof(errbuf), &err);
    if (store == NULL)
        fail_msg("pd_store_open: %s %s", strerror(-err), errbuf);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    for (uint64_t seq = 1; seq <= S_LOG; seq++) {
        char headline[64];
        parley_update_t u;
        size_t len;
        snprintf(headline, sizeof(headline), "logged update %" PRIu64, seq);
        ph_update_init(&u, "gaza-ceasefire", seq % 2 ? "israel" : "hamas",
                       1, headline);
        const ph_key_t *k = seq == S_STRANGER ? &st->stranger : &st->key;
        assert_int_equal(ph_sign(k, &u, env, sizeof(env), &len), 0);
        if (seq == S_FORGED_OLD)
            s_forge_envelope(env, &len);
        assert_int_equal(pd_store_append(store, seq, parley_now_ms(), env,
                                         len),
                         0);
    }
    assert_int_equal(pd_store_sync(store), 0);
    pd_store_close(&store);
}

/* -------------------------------------------------------------- relay */

/* Forward one [topic][delivery] message, forging S_FORGED_LIVE. */
static void
s_relay_forward(s_relay_t *r, zmq_msg_t *topic, zmq_msg_t *body)
{
    uint8_t out[PARLEY_ENVELOPE_MAX + 256];
    const void *data = zmq_msg_data(body);
    size_t len = zmq_msg_size(body);
    if (parley__delivery_seq(data, len) == S_FORGED_LIVE) {
        uint8_t space[PARLEY_ENVELOPE_MAX + 1024], env[PARLEY_ENVELOPE_MAX];
        parley__arena_t arena;
        parley__bytes_t e;
        uint64_t seq;
        int64_t at;
        size_t env_len;
        parley__arena_init(&arena, space, sizeof(space));
        if (parley__delivery_decode_raw(data, len, &seq, &at, &e, &arena) == 0
            && e.len <= sizeof(env)) {
            memcpy(env, e.data, e.len);
            env_len = e.len;
            s_forge_envelope(env, &env_len);
            if (parley__delivery_encode(seq, at, env, env_len, out,
                                        sizeof(out), &len) == 0) {
                data = out;
                atomic_fetch_add(&r->forged, 1);
            }
        }
        parley__arena_reset(&arena);
    }
    zmq_send(r->out, zmq_msg_data(topic), zmq_msg_size(topic), ZMQ_SNDMORE);
    zmq_send(r->out, data, len, 0);
}

static void *
s_relay_run(void *arg)
{
    s_relay_t *r = arg;
    while (!atomic_load(&r->stop)) {
        zmq_pollitem_t it = { .socket = r->in, .events = ZMQ_POLLIN };
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&topic, r->in, 0) >= 0 && zmq_msg_more(&topic)
            && zmq_msg_recv(&body, r->in, 0) >= 0 && !zmq_msg_more(&body))
            s_relay_forward(r, &topic, &body);
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
    return NULL;
}

static void
s_relay_start(s_relay_t *r, const char *feed)
{
    int hwm = S_HWM, zero = 0;
    r->ctx = zmq_ctx_new();
    r->in = zmq_socket(r->ctx, ZMQ_SUB);
    r->out = zmq_socket(r->ctx, ZMQ_PUB);
    assert_non_null(r->in);
    assert_non_null(r->out);
    zmq_setsockopt(r->in, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(r->in, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(r->out, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(r->out, ZMQ_LINGER, &zero, sizeof(zero));
    /* What the subscribers ask of the feed: everything, and heartbeats. */
    assert_int_equal(zmq_setsockopt(r->in, ZMQ_SUBSCRIBE, "all/", 4), 0);
    assert_int_equal(zmq_setsockopt(r->in, ZMQ_SUBSCRIBE, "sys/heartbeat/",
                                    14),
                     0);
    assert_int_equal(zmq_connect(r->in, feed), 0);
    for (int tries = 0;; tries++) {
        ph_endpoint(r->out_ep, ph_free_port());
        if (zmq_bind(r->out, r->out_ep) == 0)
            break;
        assert_true(tries < 10);
    }
    assert_int_equal(pthread_create(&r->thread, NULL, s_relay_run, r), 0);
    r->running = true;
}

static void
s_relay_stop(s_relay_t *r)
{
    if (r->running) {
        atomic_store(&r->stop, true);
        pthread_join(r->thread, NULL);
        r->running = false;
    }
    if (r->in != NULL)
        zmq_close(r->in);
    if (r->out != NULL)
        zmq_close(r->out);
    if (r->ctx != NULL)
        zmq_ctx_term(r->ctx);
    r->in = r->out = r->ctx = NULL;
}

/* ------------------------------------------------------------- events */

/*
 * Take what sub hands out within wait_ms into l (connection events are
 * passed over; CAUGHT_UP counts in *caught_up). Returns when wait_ms
 * passes without an event, or once the delivery or reject of S_HEAD is in.
 */
static void
s_drain(parley_sub_t *sub, s_evlist_t *l, int wait_ms, int *caught_up,
        const char *who)
{
    while (l->last_seq < S_HEAD) {
        const parley_event_t *ev;
        int rc = parley_sub_next(sub, wait_ms, &ev);
        if (rc == 0)
            return;
        if (rc == PARLEY_ETIMEOUT)
            continue; /* an api answer late on a busy machine: asked again */
        if (rc < 0)
            fail_msg("%s: parley_sub_next: %s", who, parley_error_name(rc));
        parley_event_type_t type = parley_event_type(ev);
        if (type == PARLEY_EVENT_CAUGHT_UP) {
            if (caught_up != NULL)
                (*caught_up)++;
            continue;
        }
        if (type == PARLEY_EVENT_CONNECTED)
            continue;
        if (type != PARLEY_EVENT_DELIVERY && type != PARLEY_EVENT_REJECTED)
            fail_msg("%s: unexpected event %d at seq %" PRIu64, who, (int)type,
                     parley_event_seq(ev));
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 1024;
            l->v = realloc(l->v, l->cap * sizeof(*l->v));
            assert_non_null(l->v);
        }
        const parley_delivery_t *d = parley_event_delivery(ev);
        s_ev_t *e = &l->v[l->n++];
        e->type = type;
        e->seq = parley_event_seq(ev);
        e->code = parley_event_code(ev);
        e->signer_seq = d != NULL ? parley_delivery_update(d)->signer_seq : 0;
        if (e->seq <= l->last_seq)
            fail_msg("%s: seq %" PRIu64 " after %" PRIu64, who, e->seq,
                     l->last_seq);
        l->last_seq = e->seq;
    }
}

/* What a subscriber must have handed out for seq. */
static void
s_check_one(const s_ev_t *e, uint64_t seq, const char *who)
{
    if (e->seq != seq)
        fail_msg("%s: seq %" PRIu64 " where %" PRIu64 " was due", who, e->seq,
                 seq);
    int want = seq == S_FORGED_OLD || seq == S_FORGED_LIVE ? PARLEY_EBADSIG
               : seq == S_STRANGER                         ? PARLEY_EUNKNOWNSIGNER
                                                           : 0;
    if (want != 0 && (e->type != PARLEY_EVENT_REJECTED || e->code != want))
        fail_msg("%s: seq %" PRIu64 " was not rejected with %s (type %d, %s)",
                 who, seq, parley_error_name(want), (int)e->type,
                 parley_error_name(e->code));
    if (want == 0 && e->type != PARLEY_EVENT_DELIVERY)
        fail_msg("%s: seq %" PRIu64 " rejected: %s", who, seq,
                 parley_error_name(e->code));
}

/* -------------------------------------------------------------- tests */

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    char path[PH_PATH_MAX + 32], buf[1024] = "";
    assert_non_null(st);
    assert_int_equal(ph_tmpdir_make(st->dir, sizeof(st->dir)), 0);
    assert_int_equal(ph_key_make(&st->key, st->dir, "desk", 0x51), 0);
    assert_int_equal(ph_key_make(&st->stranger, st->dir, "stranger", 0x52), 0);
    /* The daemon trusts both; the subscribers only the first. */
    assert_int_equal(ph_keyring_add(buf, sizeof(buf), &st->key, "*", "*",
                                    "*"),
                     0);
    assert_int_equal(ph_path(st->ring, sizeof(st->ring), st->dir,
                             "subscriber.keyring"),
                     0);
    assert_int_equal(ph_file_write(st->ring, buf, strlen(buf), 0600), 0);
    assert_int_equal(ph_keyring_add(buf, sizeof(buf), &st->stranger, "*",
                                    "*", "*"),
                     0);
    assert_int_equal(ph_path(path, sizeof(path), st->dir, "daemon.keyring"), 0);
    assert_int_equal(ph_file_write(path, buf, strlen(buf), 0600), 0);
    char state_dir[PH_PATH_MAX + 16];
    snprintf(state_dir, sizeof(state_dir), "%s/state", st->dir);
    s_build_log(st, state_dir);
    assert_int_equal(ph_daemon_start(&st->daemon, st->dir, path, NULL), 0);
    s_relay_start(&st->relay, st->daemon.feed);
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    s_relay_stop(&st->relay);
    ph_daemon_teardown(&st->daemon, st->test_ok);
    ph_key_free(&st->key);
    ph_key_free(&st->stranger);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

static parley_sub_t *
s_sub(s_state_t *st, const parley_keyring_t *ring, int threads)
{
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.keyring = ring;
    o.start = PARLEY_START_SEQ;
    o.since_seq = 1;
    o.feed = st->relay.out_ep;
    o.rcvhwm = S_HWM;
    o.timeout_ms = S_TIMEOUT;
    o.verify_threads = threads;
    parley_sub_t *sub = ph_sub_new(st->daemon.api, NULL, &o);
    if (sub == NULL)
        fail_msg("subscriber with %d threads: %s", threads, strerror(errno));
    return sub;
}

static void
test_same_events(void **state)
{
    s_state_t *st = *state;
    parley_keyring_t *ring = parley_keyring_load(st->ring, NULL, 0);
    assert_non_null(ring);
    parley_sub_t *one = s_sub(st, ring, 1), *four = s_sub(st, ring, 4);
    s_evlist_t l1 = { 0 }, l4 = { 0 };
    int cu1 = 0, cu4 = 0;

    /* The catch-up: until both said CAUGHT_UP at or beyond the log. */
    for (int i = 0; i < 200 && (cu1 == 0 || cu4 == 0); i++) {
        s_drain(one, &l1, 50, &cu1, "1 thread");
        s_drain(four, &l4, 50, &cu4, "4 threads");
    }
    if (l1.last_seq < S_LOG || l4.last_seq < S_LOG)
        fail_msg("catch-up incomplete: %" PRIu64 " and %" PRIu64 " of %d",
                 l1.last_seq, l4.last_seq, S_LOG);

    /* The burst, published while neither reads. */
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL, S_TIMEOUT);
    assert_non_null(pub);
    for (int i = 0; i < S_BURST; i++) {
        parley_update_t u;
        char headline[64];
        uint64_t seq = 0;
        snprintf(headline, sizeof(headline), "burst %d", i);
        ph_update_init(&u, "gaza-ceasefire", i % 2 ? "israel" : "hamas", 2,
                       headline);
        int rc = ph_publish(pub, &u, &seq, NULL);
        if (rc != 0)
            fail_msg("publish %d: %s", i, parley_error_name(rc));
        assert_int_equal(seq, S_LOG + 1 + (uint64_t)i);
    }
    parley_pub_destroy(&pub);

    for (int i = 0; i < 400 && (l1.last_seq < S_HEAD || l4.last_seq < S_HEAD);
         i++) {
        s_drain(one, &l1, 50, NULL, "1 thread");
        s_drain(four, &l4, 50, NULL, "4 threads");
    }
    assert_true(atomic_load(&st->relay.forged) >= 1);

    /* Every seq once, the bad ones rejected as they must be, and the
     * threaded subscriber exactly like the other. */
    assert_int_equal(l1.n, S_HEAD);
    assert_int_equal(l4.n, S_HEAD);
    for (size_t i = 0; i < S_HEAD; i++) {
        s_check_one(&l1.v[i], i + 1, "1 thread");
        s_check_one(&l4.v[i], i + 1, "4 threads");
        if (memcmp(&l1.v[i], &l4.v[i], sizeof(l1.v[i])) != 0)
            fail_msg("seq %zu: 1 thread: type %d code %d signer_seq %" PRIu64
                     "; 4 threads: type %d code %d signer_seq %" PRIu64,
                     i + 1, (int)l1.v[i].type, l1.v[i].code,
                     l1.v[i].signer_seq, (int)l4.v[i].type, l4.v[i].code,
                     l4.v[i].signer_seq);
    }
    free(l1.v);
    free(l4.v);
    parley_sub_destroy(&one);
    parley_sub_destroy(&four);
    parley_keyring_destroy(&ring);
    st->test_ok = true;
}

/*
 * Destroyed while its threads have work: a subscriber with 4 threads
 * that caught up halfway (deliveries held, verified ahead or being
 * verified) goes away cleanly (ASan and the thread sanitizer watch).
 */
static void
test_destroy_while_busy(void **state)
{
    s_state_t *st = *state;
    parley_keyring_t *ring = parley_keyring_load(st->ring, NULL, 0);
    assert_non_null(ring);
    for (int round = 0; round < 5; round++) {
        parley_sub_t *sub = s_sub(st, ring, 4);
        s_evlist_t l = { 0 };
        for (int i = 0; i < 100 && l.n < (size_t)(100 * (round + 1)); i++) {
            const parley_event_t *ev;
            int rc = parley_sub_next(sub, 100, &ev);
            if (rc < 0 && rc != PARLEY_ETIMEOUT)
                fail_msg("parley_sub_next: %s", parley_error_name(rc));
            if (rc == 1 && parley_event_type(ev) == PARLEY_EVENT_DELIVERY)
                l.n++;
        }
        assert_true(l.n > 0);
        parley_sub_destroy(&sub);
        assert_null(sub);
    }
    parley_keyring_destroy(&ring);
    st->test_ok = true;
}

/* Out-of-range thread counts are refused. */
static void
test_bad_counts(void **state)
{
    s_state_t *st = *state;
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.flags = PARLEY_SUB_NOWAIT;
    o.verify_threads = -1;
    assert_null(ph_sub_new(st->daemon.api, NULL, &o));
    assert_int_equal(errno, -PARLEY_EARG);
    o.verify_threads = 65;
    assert_null(ph_sub_new(st->daemon.api, NULL, &o));
    assert_int_equal(errno, -PARLEY_EARG);
    o.verify_threads = 64;
    parley_sub_t *sub = ph_sub_new(st->daemon.api, NULL, &o);
    assert_non_null(sub);
    parley_sub_destroy(&sub);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_while_busy, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_counts, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
