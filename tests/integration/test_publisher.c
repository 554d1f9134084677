/*
 * test_publisher.c - what the library publisher does for its caller,
 * against a real parleyd:
 *
 *   - parley_pub_send() never waits: with the daemon down, sends return at
 *     once and wait in the publisher; when the daemon is back they go out
 *     and are acked, each once; with no daemon at all each is answered
 *     PARLEY_ETIMEOUT by parley_pub_recv() after its attempts;
 *   - one key, one sequencer: 4 threads with a publisher each, sharing one
 *     key, publish 40,000 updates and every one is accepted (0.1 lost
 *     7-19% of them as replay);
 *   - a publisher whose clock is behind the signer's last accepted
 *     signer_seq (a clock stepped back, no state file) learns that value
 *     from the replay reject and publishes above it;
 *   - a publisher pointed at the feed endpoint (an XPUB, whose handshake
 *     refuses a DEALER) returns an error instead of spinning forever;
 *   - a publisher made without a key forwards envelopes signed elsewhere
 *     (what a relay such as parley-gateway needs) and refuses to sign.
 */
#include "harness.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 20000

typedef struct {
    ph_world_t w;       /* a daemon without rate limit, one key */
    bool test_ok;
} s_state_t;

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    /* No rate limit: the threads publish as fast as the daemon takes it. */
    assert_int_equal(ph_world_start(&st->w, 0x51, "rate_limit 0\n"), 0);
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    ph_world_end(&st->w, st->test_ok);
    free(st);
    return 0;
}

/* Sign a valid update with a fresh signer_seq into env. */
static size_t
s_envelope(s_state_t *st, const char *headline, uint8_t *env)
{
    parley_update_t u;
    size_t len = 0;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 1, headline);
    assert_int_equal(ph_sign(&st->w.key, &u, env, PARLEY_ENVELOPE_MAX, &len), 0);
    return len;
}

/*
 * With the daemon stopped, parley_pub_send() returns at once (0.1 waited
 * up to 5 s for a connection, then failed with -EAGAIN), keeps the
 * requests, and sends them when the daemon is back.
 */
static void
test_send_waits_for_nothing(void **state)
{
    s_state_t *st = *state;
    enum { N = 100 };
    static uint8_t env[N][PARLEY_ENVELOPE_MAX];
    size_t len[N];
    uint64_t ids[N], seq;
    parley_pub_t *pub = ph_pub_new(st->w.daemon.api, st->w.key.key, NULL,
                                   S_TIMEOUT);
    assert_non_null(pub);
    len[0] = s_envelope(st, "before the stop", env[0]);
    assert_int_equal(parley_pub_send(pub, env[0], len[0], &ids[0]), 0);
    assert_int_equal(parley_pub_recv(pub, S_TIMEOUT, NULL, &seq), 0);

    assert_int_equal(ph_daemon_stop(&st->w.daemon), 0);
    for (int i = 0; i < N; i++)
        len[i] = s_envelope(st, "sent while the daemon is down", env[i]);
    int64_t t0 = parley__mono_ms();
    for (int i = 0; i < N; i++)
        assert_int_equal(parley_pub_send(pub, env[i], len[i], &ids[i]), 0);
    int64_t took = parley__mono_ms() - t0;
    /* All of them in less than one request timeout: none of them waited
     * for the daemon (each would have waited a whole timeout before). */
    printf("[publisher] %d sends with no daemon took %" PRId64 " ms\n", N,
           took);
    assert_true(took < S_TIMEOUT);
    assert_int_equal(parley_pub_pending(pub), N);
    assert_int_equal(parley_pub_recv(pub, 0, NULL, NULL), -EAGAIN);

    /* The daemon comes back: every queued update is accepted, once. */
    assert_int_equal(ph_world_restart(&st->w), 0);
    bool got[N] = { false };
    for (int n = 0; n < N; n++) {
        uint64_t id = 0;
        int rc = parley_pub_recv(pub, S_TIMEOUT, &id, &seq);
        if (rc != 0)
            fail_msg("answer %d after the restart: %s (%s)", n,
                     parley_error_name(rc), parley_pub_detail(pub));
        bool known = false;
        for (int i = 0; i < N; i++)
            if (ids[i] == id) {
                assert_false(got[i]);
                got[i] = known = true;
            }
        assert_true(known);
    }
    assert_int_equal(parley_pub_pending(pub), 0);
    ph_stats_t stats;
    assert_int_equal(ph_stats_fetch(st->w.daemon.api, &stats), 0);
    assert_int_equal(ph_stats_get(&stats, "accepted", NULL), N);
    parley_pub_destroy(&pub);
    st->test_ok = true;
}

/* With no daemon at all, each request is given up on after its attempts,
 * and its answer names it. */
static void
test_send_gives_up(void **state)
{
    s_state_t *st = *state;
    char ep[PH_EP_MAX];
    uint8_t env[PARLEY_ENVELOPE_MAX];
    int port = ph_free_port();
    assert_true(port > 0);
    ph_endpoint(ep, port);
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = ep;
    o.timeout_ms = 200;
    o.attempts = 3;
    parley_pub_t *pub = parley_pub_new(st->w.key.key, &o);
    assert_non_null(pub);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        size_t len = s_envelope(st, "to nobody", env);
        assert_int_equal(parley_pub_send(pub, env, len, &ids[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        uint64_t id = 0;
        assert_int_equal(parley_pub_recv(pub, 10000, &id, NULL),
                         PARLEY_ETIMEOUT);
        assert_int_equal(id, ids[i]);
        assert_true(strlen(parley_pub_detail(pub)) > 0);
    }
    assert_int_equal(parley_pub_pending(pub), 0);
    parley_pub_destroy(&pub);
    st->test_ok = true;
}

/*
 * The feed endpoint instead of the api: every handshake fails. The
 * publisher used to take the failed handshake for an answer that did not
 * decode and ask again at once, forever. An alarm ends the test if it
 * still does.
 */
static void
test_publish_to_the_feed(void **state)
{
    s_state_t *st = *state;
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    parley_update_t u;
    o.server = st->w.daemon.feed;
    o.timeout_ms = 300;
    o.attempts = 2;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 1, "to the feed");
    alarm(60);
    for (int i = 0; i < 5; i++) {
        parley_pub_t *pub = parley_pub_new(st->w.key.key, &o);
        assert_non_null(pub);
        int64_t t0 = parley__mono_ms();
        int rc = parley_pub_publish(pub, &u, NULL);
        int64_t took = parley__mono_ms() - t0;
        if (rc != PARLEY_EPROTO && rc != PARLEY_ETIMEOUT)
            fail_msg("publish to the feed: %s", parley_error_name(rc));
        /* no more than the attempts' timeouts, with room for a busy host */
        assert_true(took < 5000);
        parley_pub_destroy(&pub);
    }
    alarm(0);
    st->test_ok = true;
}

/* One of the threads that share a key. */
typedef struct {
    const char *api;
    const parley_key_t *key;  /* shared, read only */
    int n;                    /* updates to publish */
    int accepted, failed;
    int first_error;
} s_thread_t;

static void *
s_thread_run(void *arg)
{
    s_thread_t *t = arg;
    parley_pub_t *pub = ph_pub_new(t->api, t->key, NULL, S_TIMEOUT);
    if (pub == NULL) {
        t->failed = t->n;
        t->first_error = -errno;
        return NULL;
    }
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "egypt", 2, "one key, four threads");
    u.signer_seq = 0; /* the library chooses */
    for (int i = 0; i < t->n; i++) {
        uint64_t seq = 0;
        int rc = parley_pub_publish(pub, &u, &seq);
        if (rc == 0) {
            t->accepted++;
        } else {
            if (t->failed++ == 0)
                t->first_error = rc;
        }
    }
    parley_pub_destroy(&pub);
    return NULL;
}

static void
test_one_key_four_threads(void **state)
{
    s_state_t *st = *state;
    enum { THREADS = 4, EACH = 10000 };
    s_thread_t t[THREADS];
    pthread_t th[THREADS];
    ph_stats_t before, after;
    assert_int_equal(ph_stats_fetch(st->w.daemon.api, &before), 0);
    for (int i = 0; i < THREADS; i++) {
        t[i] = (s_thread_t){ .api = st->w.daemon.api, .key = st->w.key.key,
                             .n = EACH };
        assert_int_equal(pthread_create(&th[i], NULL, s_thread_run, &t[i]),
                         0);
    }
    int accepted = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (t[i].failed > 0)
            fail_msg("thread %d: %d of %d failed, first %s", i, t[i].failed,
                     EACH, parley_error_name(t[i].first_error));
        accepted += t[i].accepted;
    }
    assert_int_equal(accepted, THREADS * EACH);
    assert_int_equal(ph_stats_fetch(st->w.daemon.api, &after), 0);
    uint64_t got = ph_stats_get(&after, "accepted", NULL)
                   - ph_stats_get(&before, "accepted", NULL);
    uint64_t again = ph_stats_get(&after, "rejected_replay", NULL)
                     - ph_stats_get(&before, "rejected_replay", NULL);
    printf("[publisher] %d threads x %d with one key: %" PRIu64
           " accepted; %" PRIu64 " signed again after arriving late\n",
           THREADS, EACH, got, again);
    assert_int_equal(got, THREADS * EACH);
    st->test_ok = true;
}

/*
 * The daemon already holds a signer_seq of this key far above the clock
 * (as after the clock stepped back by half an hour): a publish with a
 * value the library chooses is refused once as a replay, told the last
 * value, signed again above it and accepted; the caller sees success.
 */
static void
test_clock_behind_the_daemon(void **state)
{
    s_state_t *st = *state;
    ph_stats_t before, after;
    parley_pub_t *pub = ph_pub_new(st->w.daemon.api, st->w.key.key, NULL,
                                   S_TIMEOUT);
    assert_non_null(pub);
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "from half an hour on");
    uint64_t ahead = (uint64_t)(parley_now_ms() + 1800 * 1000) * 1000;
    u.signer_seq = ahead; /* the caller's: sent as it is */
    assert_int_equal(parley_pub_publish(pub, &u, NULL), 0);

    assert_int_equal(ph_stats_fetch(st->w.daemon.api, &before), 0);
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "the clock is behind");
    u.signer_seq = 0;
    uint64_t seq = 0;
    int rc = parley_pub_publish(pub, &u, &seq);
    if (rc != 0)
        fail_msg("publish with the clock behind: %s (%s)",
                 parley_error_name(rc), parley_pub_detail(pub));
    assert_int_equal(ph_stats_fetch(st->w.daemon.api, &after), 0);
    const char *const expect[] = { "accepted=1", "rejected_replay=1", NULL };
    assert_int_equal(ph_stats_expect(&before, &after, expect), 0);

    /* What was accepted carries a signer_seq above the one ahead. */
    parley_call_options_t o = ph_call_options(st->w.daemon.api, S_TIMEOUT);
    parley_info_t *info = NULL;
    assert_int_equal(parley_ping(&o, &info), 0);
    assert_int_equal(parley_info_seq(info), seq);
    parley_info_destroy(&info);
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.start = PARLEY_START_SEQ;
    so.since_seq = seq;
    parley_sub_t *sub = ph_sub_new(st->w.daemon.api, NULL, &so);
    assert_non_null(sub);
    ph_events_t ev = { 0 };
    assert_int_equal(ph_sub_collect(sub, &ev, 1, seq, S_TIMEOUT), 1);
    assert_true(ev.d[0].update.signer_seq > ahead);
    ph_events_free(&ev);
    parley_sub_destroy(&sub);

    /* And a value the caller chose is not redone: replay comes back. */
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "a chosen value");
    u.signer_seq = ahead - 1;
    assert_int_equal(parley_pub_publish(pub, &u, NULL), PARLEY_EREPLAY);
    parley_pub_destroy(&pub);
    st->test_ok = true;
}

/*
 * A publisher without a key relays envelopes signed elsewhere: they are
 * acked (or rejected with the daemon's code and text) as from any
 * publisher; it cannot sign, and a seq file makes no sense for it.
 */
static void
test_forwarder_without_key(void **state)
{
    s_state_t *st = *state;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    uint64_t id = 0, seq = 0, seq2 = 0;
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = st->w.daemon.api;
    o.timeout_ms = S_TIMEOUT;
    o.seq_file = "unused.seq";
    errno = 0;
    assert_null(parley_pub_new(NULL, &o));
    assert_int_equal(errno, -PARLEY_EARG);
    o.seq_file = NULL;
    parley_pub_t *pub = parley_pub_new(NULL, &o);
    assert_non_null(pub);

    size_t len = s_envelope(st, "relayed", env);
    assert_int_equal(parley_pub_send(pub, env, len, &id), 0);
    assert_int_equal(parley_pub_recv(pub, S_TIMEOUT, NULL, &seq), 0);
    assert_true(seq > 0);
    /* The same bytes again: the original seq. */
    assert_int_equal(parley_pub_send(pub, env, len, &id), 0);
    assert_int_equal(parley_pub_recv(pub, S_TIMEOUT, NULL, &seq2),
                     PARLEY_DUPLICATE);
    assert_int_equal(seq2, seq);
    /* A flipped signature bit: the daemon's reject, with its text. */
    env[len - 1] ^= 1;
    assert_int_equal(parley_pub_send(pub, env, len, &id), 0);
    assert_int_equal(parley_pub_recv(pub, S_TIMEOUT, NULL, NULL),
                     PARLEY_EBADSIG);
    assert_true(parley_pub_detail(pub)[0] != '\0');

    parley_update_t *u = parley_update_new();
    assert_non_null(u);
    ph_update_init(u, "gaza-ceasefire", "qatar", 1, "cannot sign");
    assert_int_equal(parley_pub_publish(pub, u, &seq), PARLEY_EARG);
    parley_update_destroy(&u);
    parley_pub_destroy(&pub);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        /* First, while this process's signer_seq values are the
         * signer's highest (the threads' sequencer goes above them). */
        cmocka_unit_test(test_forwarder_without_key),
        cmocka_unit_test(test_send_waits_for_nothing),
        cmocka_unit_test(test_send_gives_up),
        cmocka_unit_test(test_one_key_four_threads),
        cmocka_unit_test(test_clock_behind_the_daemon),
        cmocka_unit_test(test_publish_to_the_feed),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
