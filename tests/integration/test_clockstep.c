/*
 * test_clockstep.c - issue 11, item 4, with the real daemon: a forward
 * step of the wall clock must not make retention delete fresh segments.
 *
 * parleyd runs under the fault library (tests/shim/fault.c), whose
 * control file shifts its CLOCK_REALTIME; retention_age is 3600 and
 * segments are 64 KiB. A first run, its clock three hours behind, takes
 * 1000 updates (several segments); stopped and started with the clock
 * right, parleyd finds them three hours old and removes all but the
 * newest segment at once (old segments still go). It takes 1000 fresh
 * updates (more segments), and then its clock steps two hours forward.
 * At the next retention pass (every 10 s) parleyd must log the step and
 * keep every segment: the first seq held and the segment count do not
 * change, and every update from the first seq on replays.
 */
#include "fault_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 5000
#define S_HOUR_MS (3600 * 1000LL)
#define S_OLD 1000
#define S_FRESH 1000

static void
s_publish(fu_pub_t *p, const char *tag, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = fu_publish(p, tag, i, S_TIMEOUT);
        if (rc != 0)
            fail_msg("%s publish %zu: %s", tag, i, parley_strerror(rc));
    }
}

typedef struct {
    fu_fix_t fx;
} s_fix_t;

static int
s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof(*f));
    if (f == NULL || fu_fix_init(&f->fx, 14) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fix_t *f = *state;
    fu_fix_done(&f->fx);
    free(f);
    return 0;
}

static void
test_forward_step(void **state)
{
    s_fix_t *f = *state;
    const char *dir = f->fx.dir;
    ph_key_t *const k = &f->fx.key;
    ph_daemon_t *const dp = &f->fx.d;
    const char *keyring = f->fx.keyring;
    char config[PH_PATH_MAX], ctl[PH_PATH_MAX];
    fu_pub_t pub;
    fu_env_t env;
    ph_path(config, sizeof(config), dir, "parleyd.conf");
    ph_path(ctl, sizeof(ctl), dir, "fault.ctl");
    assert_int_equal(du_config_write(config, "retention_age 3600\n"
                                             "segment_bytes 64K\n"
                                             "fsync off\n"
                                             "rate_limit 0\n"),
                     0);
    const char *extra[] = { "-c", config, NULL };

    /* Three hours ago, as far as this run can tell. */
    assert_int_equal(fu_ctl_write(ctl, "clock_offset_ms -10800000\n"), 0);
    fu_preload(&env, ctl);
    int rc = ph_daemon_start(dp, dir, keyring, extra);
    fu_unpreload(&env);
    assert_int_equal(rc, 0);
    assert_int_equal(fu_pub_open(&pub, dp->api, k), 0);
    pub.issued_offset_ms = -3 * S_HOUR_MS;
    s_publish(&pub, "old", S_OLD);
    fu_pub_close(&pub);
    assert_int_equal(ph_daemon_stop(dp), 0);

    /* The clock right again: the old segments go, all but the newest. */
    assert_int_equal(fu_ctl_write(ctl, "clock_offset_ms 0\n"), 0);
    fu_preload(&env, ctl);
    rc = ph_daemon_restart(dp, keyring, extra);
    fu_unpreload(&env);
    assert_int_equal(rc, 0);
    assert_true(fu_wait_log(dp, "retention removed", S_TIMEOUT));
    ph_stats_t st;
    assert_int_equal(ph_stats_fetch(dp->api, &st), 0);
    const uint64_t first = du_stat(&st, "first_seq");
    assert_true(first > 1 && first <= S_OLD);

    /* Fresh updates, over several segments. */
    assert_int_equal(fu_pub_open(&pub, dp->api, k), 0);
    s_publish(&pub, "fresh", S_FRESH);
    fu_pub_close(&pub);
    assert_int_equal(ph_stats_fetch(dp->api, &st), 0);
    const uint64_t segments = du_stat(&st, "store_segments");
    assert_true(segments >= 4);
    assert_int_equal(du_stat(&st, "first_seq"), first);

    /* Two hours forward. Wait for a retention pass after the step (it
     * logs the step), or for one that removed something. */
    assert_int_equal(fu_ctl_write(ctl, "clock_offset_ms 7200000\n"), 0);
    int64_t deadline = parley__mono_ms() + 25000;
    bool stepped = false;
    uint64_t now_first = first;
    while (parley__mono_ms() < deadline && !stepped && now_first == first) {
        du_sleep_us(200000);
        stepped = fu_log_has(dp, "wall clock stepped forward by 7200 s");
        assert_int_equal(ph_stats_fetch(dp->api, &st), 0);
        now_first = du_stat(&st, "first_seq");
    }
    if (now_first != first)
        fail_msg("after the clock stepped forward, retention removed fresh "
                 "segments: first seq %llu, was %llu",
                 (unsigned long long)now_first, (unsigned long long)first);
    assert_true(stepped);
    assert_int_equal(ph_stats_fetch(dp->api, &st), 0);
    assert_int_equal(du_stat(&st, "store_segments"), segments);
    du_log_t log;
    assert_int_equal(du_replay_all(dp->api, first, &log), 0);
    assert_int_equal(log.n, S_OLD + S_FRESH - first + 1);
    assert_int_equal(log.r[0].seq, first);
    du_log_free(&log);

    assert_int_equal(ph_daemon_stop(dp), 0);
    f->fx.ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward_step, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
