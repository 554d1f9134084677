/*
 * test_statedir.c - issue 11, item 1, with the real daemon: a state
 * directory removed (or its lock file) under a running parleyd.
 *
 * - rm -rf of the state directory while publishing: the next publish is
 *   not acked, parleyd exits 1 saying the directory was removed, and a
 *   daemon started afterwards on the path holds nothing acked after the
 *   removal (acked = recoverable).
 * - The same with no publish at all: the check on the loop's timer finds
 *   it and parleyd exits 1 within a few seconds.
 * - A second parleyd on the same path while the first still runs
 *   (stopped with SIGSTOP, so it cannot notice and exit first) refuses to
 *   start, although the directory, and so the flock on store.lock, is a
 *   new one; once the first has exited, it starts.
 * - rm of store.lock alone: a second daemon still refuses, and the first
 *   exits 1 naming the lock file.
 */
#include "fault_util.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define S_TIMEOUT 5000

typedef struct {
    fu_fix_t fx;
} s_fix_t;

static int
s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof(*f));
    if (f == NULL || fu_fix_init(&f->fx, 11) != 0
        || ph_daemon_start(&f->fx.d, f->fx.dir, f->fx.keyring, NULL) != 0
        || fu_pub_open(&f->fx.pub, f->fx.d.api, &f->fx.key) != 0) {
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

/*
 * Run a second parleyd on f's state directory (its own ports) and expect
 * it to refuse: exit 1, saying the directory is in use.
 */
static void
s_second_refused(s_fix_t *f)
{
    char api[PH_EP_MAX], feed[PH_EP_MAX];
    ph_endpoint(api, ph_free_port());
    ph_endpoint(feed, ph_free_port());
    const char *argv[] = { PARLEYD_BIN, "--api", api, "--feed", feed,
                           "--state-dir", f->fx.d.state_dir, "--keyring",
                           f->fx.keyring, NULL };
    ph_proc_t p = PH_PROC_INIT;
    assert_int_equal(ph_run(&p, argv, NULL, NULL, NULL, S_TIMEOUT), 0);
    if (p.timed_out || p.status != 1 || strstr(p.err, "in use") == NULL) {
        ph_proc_report(&p, "second parleyd on the same path");
        ph_proc_free(&p);
        fail_msg("a second parleyd on %s did not refuse to start",
                 f->fx.d.state_dir);
    }
    ph_proc_free(&p);
}

static void
test_removed_while_publishing(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(fu_publish_acked(&f->fx.pub, "before", 5, S_TIMEOUT),
                     0);
    assert_int_equal(ph_tmpdir_remove(f->fx.d.state_dir), 0);
    /* Sent after the removal: never acked, since it cannot be recovered. */
    int rc = fu_publish(&f->fx.pub, "after", 0, 3000);
    if (rc == 0)
        fail_msg("an update sent after rm -rf of the state directory was "
                 "acked as seq %llu",
                 (unsigned long long)f->fx.pub.seqs[f->fx.pub.n_acked - 1]);
    assert_int_equal(fu_wait_exit(&f->fx.d, S_TIMEOUT), 1);
    assert_true(fu_log_has(&f->fx.d, "was removed"));
    assert_true(fu_log_has(&f->fx.d, "nothing more is written or acked"));
    assert_true(fu_log_has(&f->fx.d, "parleyd stopped after an error"));
    /* A daemon on the path now: what was acked after the removal (none)
     * is all it may hold. */
    assert_int_equal(ph_daemon_restart(&f->fx.d, f->fx.keyring, NULL), 0);
    fu_pub_t none;
    memset(&none, 0, sizeof(none));
    assert_true(fu_log_is_acked(f->fx.d.api, &none));
    f->fx.ok = true;
}

static void
test_removed_idle(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(fu_publish_acked(&f->fx.pub, "before", 2, S_TIMEOUT),
                     0);
    assert_int_equal(ph_tmpdir_remove(f->fx.d.state_dir), 0);
    /* Nothing is published: the loop's timer finds it. */
    assert_int_equal(fu_wait_exit(&f->fx.d, S_TIMEOUT), 1);
    char want[PH_PATH_MAX + 64];
    snprintf(want, sizeof(want), "state directory %s was removed",
             f->fx.d.state_dir);
    assert_true(fu_log_has(&f->fx.d, want));
    f->fx.ok = true;
}

static void
test_second_daemon(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(fu_publish_acked(&f->fx.pub, "before", 3, S_TIMEOUT),
                     0);
    /* The first cannot run its checks while stopped. */
    assert_int_equal(kill(f->fx.d.pid, SIGSTOP), 0);
    assert_int_equal(ph_tmpdir_remove(f->fx.d.state_dir), 0);
    s_second_refused(f);
    assert_int_equal(kill(f->fx.d.pid, SIGCONT), 0);
    assert_int_equal(fu_wait_exit(&f->fx.d, S_TIMEOUT), 1);
    /* The first is gone: the path is free. */
    assert_int_equal(ph_daemon_restart(&f->fx.d, f->fx.keyring, NULL), 0);
    fu_pub_close(&f->fx.pub);
    assert_int_equal(fu_pub_open(&f->fx.pub, f->fx.d.api, &f->fx.key), 0);
    assert_int_equal(fu_publish(&f->fx.pub, "fresh", 0, S_TIMEOUT), 0);
    assert_int_equal(f->fx.pub.seqs[0], 1);
    f->fx.ok = true;
}

static void
test_lock_removed(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(fu_publish_acked(&f->fx.pub, "before", 2, S_TIMEOUT),
                     0);
    char lock[PH_PATH_MAX];
    assert_int_equal(ph_path(lock, sizeof(lock), f->fx.d.state_dir, "store.lock"),
                     0);
    assert_int_equal(unlink(lock), 0);
    s_second_refused(f);
    assert_int_equal(fu_wait_exit(&f->fx.d, S_TIMEOUT), 1);
    assert_true(fu_log_has(&f->fx.d, "store.lock was removed or replaced"));
    f->fx.ok = true;
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_removed_while_publishing),
        T(test_removed_idle),
        T(test_second_daemon),
        T(test_lock_removed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
