/*
 * test_sub_events.c - a subscriber says what happens to its connection,
 * against a real parleyd that is stopped, restarted and paused under it:
 *
 *   - CONNECTED (with the endpoint) first, then the snapshot a LAST start
 *     asked for, then CAUGHT_UP: the view is complete;
 *   - the daemon stops: DISCONNECTED; it starts again: CONNECTED, then
 *     CAUGHT_UP once the updates published meanwhile are in; live again;
 *   - the daemon hangs (SIGSTOP, the connection stays up): DISCONNECTED
 *     after heartbeat_misses silent intervals, CONNECTED after SIGCONT;
 *   - with PARLEY_SUB_NOWAIT and no daemon, parley_sub_new() returns at
 *     once and the connection comes later.
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

#define S_TIMEOUT 15000

typedef struct {
    ph_world_t w;
    parley_pub_t *pub;
    bool test_ok;
} s_state_t;

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    assert_int_equal(ph_world_start(&st->w, 0x71, NULL), 0);
    st->pub = ph_pub_new(st->w.daemon.api, st->w.key.key, NULL, S_TIMEOUT);
    assert_non_null(st->pub);
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    parley_pub_destroy(&st->pub);
    ph_world_end(&st->w, st->test_ok);
    free(st);
    return 0;
}

/* Publish one update for party; returns its seq. */
static uint64_t
s_publish(s_state_t *st, const char *party, const char *headline)
{
    parley_update_t u;
    uint64_t seq = 0;
    ph_update_init(&u, "gaza-ceasefire", party, 1, headline);
    int rc = ph_publish(st->pub, &u, &seq, NULL);
    if (rc != 0)
        fail_msg("publish %s: %s", headline, parley_error_name(rc));
    return seq;
}

/* The next event, which must be of type. */
static const parley_event_t *
s_expect(parley_sub_t *sub, parley_event_type_t type, const char *when)
{
    return ph_sub_expect(sub, type, false, S_TIMEOUT, when);
}

static void
test_stop_and_restart(void **state)
{
    s_state_t *st = *state;
    uint64_t a = s_publish(st, "egypt", "talks in Cairo");
    uint64_t b = s_publish(st, "qatar", "talks in Doha");

    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.start = PARLEY_START_LAST;
    parley_sub_t *sub = ph_sub_new(st->w.daemon.api, NULL, &so);
    assert_non_null(sub);

    /* Connected, the snapshot, caught up. */
    const parley_event_t *ev = s_expect(sub, PARLEY_EVENT_CONNECTED, "start");
    assert_string_equal(parley_event_endpoint(ev), st->w.daemon.api);
    assert_int_equal(parley_event_seq(s_expect(sub, PARLEY_EVENT_DELIVERY,
                                               "snapshot")),
                     a);
    assert_int_equal(parley_event_seq(s_expect(sub, PARLEY_EVENT_DELIVERY,
                                               "snapshot")),
                     b);
    ev = s_expect(sub, PARLEY_EVENT_CAUGHT_UP, "after the snapshot");
    assert_int_equal(parley_event_seq(ev), b);

    /* The daemon stops: the subscriber says so. */
    assert_int_equal(ph_daemon_stop(&st->w.daemon), 0);
    ev = s_expect(sub, PARLEY_EVENT_DISCONNECTED, "after the stop");
    assert_string_equal(parley_event_endpoint(ev), st->w.daemon.api);
    assert_true(parley_event_code(ev) < 0);
    /* Nothing else while it is down. */
    assert_int_equal(parley_sub_next(sub, 1500, &ev), 0);

    /* It comes back; what it accepts is delivered, after CAUGHT_UP. */
    assert_int_equal(ph_world_restart(&st->w), 0);
    ev = s_expect(sub, PARLEY_EVENT_CONNECTED, "after the restart");
    assert_string_equal(parley_event_endpoint(ev), st->w.daemon.api);
    s_expect(sub, PARLEY_EVENT_CAUGHT_UP, "after the restart");
    uint64_t c = s_publish(st, "egypt", "talks resume");
    ev = s_expect(sub, PARLEY_EVENT_DELIVERY, "live after the restart");
    assert_int_equal(parley_event_seq(ev), c);
    assert_true(c > b);
    parley_sub_destroy(&sub);
    st->test_ok = true;
}

/* A hung daemon keeps the connection up: only its silence tells. */
static void
test_hung_daemon(void **state)
{
    s_state_t *st = *state;
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.heartbeat_misses = 2;
    so.timeout_ms = 1000;
    parley_sub_t *sub = ph_sub_new(st->w.daemon.api, NULL, &so);
    assert_non_null(sub);
    s_expect(sub, PARLEY_EVENT_CONNECTED, "start");
    s_expect(sub, PARLEY_EVENT_CAUGHT_UP, "start");

    assert_int_equal(kill(st->w.daemon.pid, SIGSTOP), 0);
    const parley_event_t *ev = s_expect(sub, PARLEY_EVENT_DISCONNECTED,
                                        "with the daemon stopped");
    assert_int_equal(parley_event_code(ev), PARLEY_ETIMEOUT);
    assert_int_equal(kill(st->w.daemon.pid, SIGCONT), 0);
    s_expect(sub, PARLEY_EVENT_CONNECTED, "after SIGCONT");
    s_expect(sub, PARLEY_EVENT_CAUGHT_UP, "after SIGCONT");
    uint64_t seq = s_publish(st, "qatar", "after the pause");
    ev = s_expect(sub, PARLEY_EVENT_DELIVERY, "live after SIGCONT");
    assert_int_equal(parley_event_seq(ev), seq);
    parley_sub_destroy(&sub);
    st->test_ok = true;
}

/* No waiting in parley_sub_new(): the connection is made later. */
static void
test_nowait(void **state)
{
    s_state_t *st = *state;
    assert_int_equal(ph_daemon_stop(&st->w.daemon), 0);
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.flags = PARLEY_SUB_NOWAIT;
    so.timeout_ms = 500;
    parley_sub_t *sub = ph_sub_new(st->w.daemon.api, NULL, &so);
    assert_non_null(sub); /* without a daemon, the old call failed here */
    const parley_event_t *ev;
    assert_int_equal(parley_sub_next(sub, 1200, &ev), 0);
    assert_int_equal(ph_world_restart(&st->w), 0);
    ev = s_expect(sub, PARLEY_EVENT_CONNECTED, "after the start");
    assert_string_equal(parley_event_endpoint(ev), st->w.daemon.api);
    s_expect(sub, PARLEY_EVENT_CAUGHT_UP, "after the start");
    uint64_t seq = s_publish(st, "egypt", "now connected");
    ev = s_expect(sub, PARLEY_EVENT_DELIVERY, "live");
    assert_int_equal(parley_event_seq(ev), seq);
    parley_sub_destroy(&sub);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_and_restart),
        cmocka_unit_test(test_hung_daemon),
        cmocka_unit_test(test_nowait),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
