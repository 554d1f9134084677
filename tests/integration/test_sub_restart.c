/*
 * test_sub_restart.c - reliable subscribers across kill -9, restart and
 * SIGSTOP of a real parleyd, on the same ports: every update is handed
 * to each of them exactly once, and none of them stops for good.
 *
 * Four subscribers from seq 1: two that take everything and two whose
 * filter wants one negotiation only (on a narrow topic a hole is normal,
 * and only a replay fills it).
 *
 *   - kill -9 under a backlog: the subscribers stay away while a hole and
 *     then more matching updates than a subscriber holds (2048) reach
 *     their feed queues; parleyd is killed and started again. Back, a
 *     narrow subscriber holds a full buffer behind a hole before the new
 *     daemon's first heartbeat, which is queued behind the rest. It must
 *     read on to that heartbeat, go live and replay (it used to stop
 *     reading when full, never saw the heartbeat, and pinged the daemon
 *     again and again, silently, forever);
 *   - SIGSTOP: each subscriber says DISCONNECTED, and after SIGCONT
 *     CONNECTED; what is published then arrives;
 *   - kill -9 and restart while they read: the same.
 */
#include "harness.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Waits for a condition fail the test after this long. */
#define S_TIMEOUT 60000
/* Per api request of the subscribers: a lost one is asked again soon. */
#define S_REQUEST_MS 1000
#define S_SUBS 4
#define S_NARROW 2          /* subscribers 0..S_NARROW-1 filter */
#define S_SEQ_CAP 8192
/* More matching updates than a subscriber holds (S_HOLD_LIMIT, sub.c). */
#define S_BACKLOG 3000
#define S_WINDOW 256        /* publishes in flight */
#define S_WATCHED "watched-talks"

typedef struct {
    parley_sub_t *sub;
    bool narrow;
    uint8_t got[S_SEQ_CAP];  /* times each seq was handed out */
    size_t received;         /* deliveries */
    size_t connected, disconnected;
    bool disconnected_now;   /* DISCONNECTED since the flag was cleared */
} s_sub_t;

typedef struct {
    ph_world_t w;
    parley_pub_t *pub;
    parley_filter_t *filter;
    bool watched[S_SEQ_CAP]; /* the seq is of S_WATCHED */
    uint64_t head;           /* last seq acked */
    s_sub_t subs[S_SUBS];
    bool test_ok;
} s_state_t;

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    assert_int_equal(ph_world_start(&st->w, 0x5b, "rate_limit 0\n"), 0);
    st->pub = ph_pub_new(st->w.daemon.api, st->w.key.key, NULL, S_TIMEOUT);
    assert_non_null(st->pub);
    st->filter = parley_filter_new();
    assert_non_null(st->filter);
    assert_int_equal(parley_filter_add_negotiation(st->filter, S_WATCHED), 0);
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    for (size_t i = 0; i < S_SUBS; i++)
        parley_sub_destroy(&st->subs[i].sub);
    parley_filter_destroy(&st->filter);
    parley_pub_destroy(&st->pub);
    ph_world_end(&st->w, st->test_ok);
    free(st);
    return 0;
}

/*
 * Publish n updates, pipelined: the first `other` of them for another
 * negotiation, the rest for S_WATCHED. Every one must be acked.
 */
static void
s_publish(s_state_t *st, size_t other, size_t n)
{
    uint64_t *ids = calloc(n, sizeof(*ids));
    size_t sent = 0, answered = 0;
    assert_non_null(ids);
    while (answered < n) {
        while (sent < n && sent - answered < S_WINDOW) {
            parley_update_t u;
            uint8_t env[PARLEY_ENVELOPE_MAX];
            size_t len = 0;
            ph_update_init(&u, sent < other ? "other-talks" : S_WATCHED,
                           "egypt", 1, "talks go on");
            assert_int_equal(ph_sign(&st->w.key, &u, env, sizeof(env), &len),
                             0);
            assert_int_equal(parley_pub_send(st->pub, env, len, &ids[sent]),
                             0);
            sent++;
        }
        uint64_t id = 0, seq = 0;
        int rc = ph_recv(st->pub, S_TIMEOUT, &id, &seq, NULL);
        if (rc != 0)
            fail_msg("publish %zu of %zu: %s", answered + 1, n,
                     parley_error_name(rc));
        assert_true(seq > 0 && seq < S_SEQ_CAP);
        size_t k = 0;
        while (k < sent && ids[k] != id)
            k++;
        assert_true(k < sent);
        st->watched[seq] = k >= other;
        if (seq > st->head)
            st->head = seq;
        answered++;
    }
    free(ids);
}

/* Does sub i want seq? */
static bool
s_wants(const s_state_t *st, size_t i, uint64_t seq)
{
    return !st->subs[i].narrow || st->watched[seq];
}

/* Deliveries sub i should have had by now. */
static size_t
s_due(const s_state_t *st, size_t i)
{
    size_t n = 0;
    for (uint64_t s = 1; s <= st->head; s++)
        n += s_wants(st, i, s);
    return n;
}

/* Take what sub i has ready (waiting up to wait_ms); fail on a repeat,
 * an unwanted seq, a gap or a reject. */
static void
s_take(s_state_t *st, size_t i, int wait_ms)
{
    s_sub_t *s = &st->subs[i];
    for (;;) {
        const parley_event_t *ev;
        int rc = parley_sub_next(s->sub, wait_ms, &ev);
        if (rc == 0 || rc == PARLEY_ETIMEOUT)
            return; /* a request given up on is asked again */
        if (rc < 0)
            fail_msg("subscriber %zu: %s", i, parley_error_name(rc));
        uint64_t seq = parley_event_seq(ev);
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_DELIVERY:
            if (seq == 0 || seq >= S_SEQ_CAP || !s_wants(st, i, seq))
                fail_msg("subscriber %zu: seq %" PRIu64 " not wanted", i,
                         seq);
            if (s->got[seq]++ > 0)
                fail_msg("subscriber %zu: seq %" PRIu64 " twice", i, seq);
            s->received++;
            break;
        case PARLEY_EVENT_GAP:
            fail_msg("subscriber %zu: gap %" PRIu64 "-%" PRIu64, i, seq,
                     parley_event_seq_last(ev));
            break;
        case PARLEY_EVENT_REJECTED:
            fail_msg("subscriber %zu: seq %" PRIu64 " rejected", i, seq);
            break;
        case PARLEY_EVENT_CONNECTED:
            s->connected++;
            break;
        case PARLEY_EVENT_DISCONNECTED:
            s->disconnected++;
            s->disconnected_now = true;
            break;
        default:
            break;
        }
        wait_ms = 0;
    }
}

/* Run every subscriber until each has had all it wants up to the head. */
static void
s_catch_up(s_state_t *st, const char *when)
{
    int64_t deadline = parley__mono_ms() + S_TIMEOUT;
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < S_SUBS; i++) {
            s_take(st, i, 20);
            all = all && st->subs[i].received == s_due(st, i);
        }
        if (all)
            return;
        if (parley__mono_ms() > deadline) {
            for (size_t i = 0; i < S_SUBS; i++)
                fprintf(stderr,
                        "subscriber %zu: %zu of %zu, last seq %" PRIu64
                        ", connected %zu, disconnected %zu\n",
                        i, st->subs[i].received, s_due(st, i),
                        parley_sub_last_seq(st->subs[i].sub),
                        st->subs[i].connected, st->subs[i].disconnected);
            fail_msg("%s: subscribers did not catch up with seq %" PRIu64,
                     when, st->head);
        }
    }
}

/* Run every subscriber until each has said DISCONNECTED. */
static void
s_all_disconnected(s_state_t *st, const char *when)
{
    for (size_t i = 0; i < S_SUBS; i++)
        st->subs[i].disconnected_now = false;
    int64_t deadline = parley__mono_ms() + S_TIMEOUT;
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < S_SUBS; i++) {
            if (!st->subs[i].disconnected_now)
                s_take(st, i, 20);
            all = all && st->subs[i].disconnected_now;
        }
        if (all)
            return;
        if (parley__mono_ms() > deadline)
            fail_msg("%s: not every subscriber said DISCONNECTED", when);
    }
}

static void
test_restarts(void **state)
{
    s_state_t *st = *state;
    for (size_t i = 0; i < S_SUBS; i++) {
        s_sub_t *s = &st->subs[i];
        parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
        so.start = PARLEY_START_SEQ;
        so.since_seq = 1;
        so.timeout_ms = S_REQUEST_MS;
        /* The whole backlog fits in the feed queue. */
        so.rcvhwm = 4 * S_BACKLOG;
        s->narrow = i < S_NARROW;
        s->sub = ph_sub_new(st->w.daemon.api, s->narrow ? st->filter : NULL,
                            &so);
        if (s->sub == NULL)
            fail_msg("subscriber %zu: %s", i, parley_strerror(-errno));
    }
    s_publish(st, 5, 10);
    s_catch_up(st, "at the start");

    /* kill -9 under a backlog. The subscribers are not read meanwhile:
     * a hole for the narrow ones (an update of another negotiation),
     * then more than they hold. A heartbeat seen on a feed connection
     * made after the last ack went out behind every delivery. */
    s_publish(st, 1, 1 + S_BACKLOG);
    assert_int_equal(ph_wait_feed_live(st->w.daemon.api, st->w.daemon.feed,
                                       0, S_TIMEOUT),
                     0);
    ph_daemon_kill9(&st->w.daemon);
    assert_int_equal(ph_world_restart(&st->w), 0);
    s_catch_up(st, "after kill -9 under a backlog");
    for (size_t i = 0; i < S_SUBS; i++)
        assert_true(st->subs[i].disconnected >= 1);

    /* SIGSTOP: silence, then back. */
    assert_int_equal(kill(st->w.daemon.pid, SIGSTOP), 0);
    s_all_disconnected(st, "with parleyd stopped");
    assert_int_equal(kill(st->w.daemon.pid, SIGCONT), 0);
    s_publish(st, 50, 300);
    s_catch_up(st, "after SIGCONT");

    /* kill -9 while they read, and a restart on the same ports. */
    s_publish(st, 20, 200);
    ph_daemon_kill9(&st->w.daemon);
    s_all_disconnected(st, "after kill -9");
    assert_int_equal(ph_world_restart(&st->w), 0);
    s_publish(st, 20, 200);
    s_catch_up(st, "after the second kill -9");
    for (size_t i = 0; i < S_SUBS; i++)
        assert_true(st->subs[i].connected >= 4);
}

/*
 * A hang with a full buffer. The subscribers stay away while a hole and
 * more matching updates than a subscriber holds reach their feed queues,
 * then parleyd hangs (SIGSTOP; its connections stay up). Read again, a
 * narrow subscriber fills its buffer behind the hole, stops reading the
 * feed (the replay that drains the buffer will come), and asks the hung
 * daemon for that replay: no answer. It must still notice that no
 * heartbeat comes and say DISCONNECTED (it used to skip that check while
 * its buffer was full, and only ever return request timeouts, never
 * moving on), then catch up after SIGCONT.
 */
static void
test_hang_with_full_buffer(void **state)
{
    s_state_t *st = *state;
    s_catch_up(st, "before the backlog");
    s_publish(st, 1, 1 + S_BACKLOG);
    assert_int_equal(ph_wait_feed_live(st->w.daemon.api, st->w.daemon.feed,
                                       0, S_TIMEOUT),
                     0);
    assert_int_equal(kill(st->w.daemon.pid, SIGSTOP), 0);
    s_all_disconnected(st, "hung, with a full buffer");
    assert_int_equal(kill(st->w.daemon.pid, SIGCONT), 0);
    s_catch_up(st, "after SIGCONT");
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restarts),
        cmocka_unit_test(test_hang_with_full_buffer),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
