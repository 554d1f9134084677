/*
 * test_eio.c - issue 11, item 7: I/O errors on the log, with the real
 * daemon, injected by the fault library (tests/shim/fault.c) under it.
 *
 * Ten updates are acked; then an fdatasync of a segment fails with EIO
 * (once, or every time from then on), or a pwrite writes half of its
 * bytes and the next fails with EIO.
 * The update sent then must not be acked; parleyd must say which file
 * failed and how, and exit 1. Restarted without the fault, parleyd must
 * hold exactly the ten acked updates, byte for byte, and nothing else:
 * the store cut the file back itself, so the restart finds no torn tail
 * to cut (store_truncated_bytes 0).
 */
#include "fault_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 5000
#define S_ACKED 10

typedef struct {
    fu_fix_t fx;
    char ctl[PH_PATH_MAX];
} s_fix_t;

static int
s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof(*f));
    if (f == NULL || fu_fix_init(&f->fx, 12) != 0
        || ph_path(f->ctl, sizeof(f->ctl), f->fx.dir, "fault.ctl") != 0) {
        free(f);
        return -1;
    }
    fu_env_t env;
    fu_preload(&env, f->ctl);
    int rc = ph_daemon_start(&f->fx.d, f->fx.dir, f->fx.keyring, NULL);
    fu_unpreload(&env);
    if (rc != 0 || fu_pub_open(&f->fx.pub, f->fx.d.api, &f->fx.key) != 0) {
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
 * The common course: S_ACKED acked, then the fault in ctl_text, then one
 * update that must not be acked, exit 1 with log lines holding each of
 * want (NULL-terminated), and a restart holding what was acked alone.
 */
static void
s_run(s_fix_t *f, const char *ctl_text, const char *const *want)
{
    for (size_t i = 0; i < S_ACKED; i++) {
        int rc = fu_publish(&f->fx.pub, "before", i, S_TIMEOUT);
        if (rc != 0)
            fail_msg("publish %zu: %s", i, parley_strerror(rc));
    }
    assert_int_equal(fu_ctl_write(f->ctl, ctl_text), 0);
    int rc = fu_publish(&f->fx.pub, "failing", 0, 3000);
    if (rc == 0)
        fail_msg("an update whose write failed was acked as seq %llu",
                 (unsigned long long)f->fx.pub.seqs[f->fx.pub.n_acked - 1]);
    assert_int_equal(fu_wait_exit(&f->fx.d, S_TIMEOUT), 1);
    for (size_t i = 0; want[i] != NULL; i++)
        if (!fu_log_has(&f->fx.d, want[i]))
            fail_msg("the daemon's log does not say \"%s\"", want[i]);

    /* Restarted without the fault: the acked ones, nothing else. */
    assert_int_equal(fu_ctl_write(f->ctl, ""), 0);
    assert_int_equal(ph_daemon_restart(&f->fx.d, f->fx.keyring, NULL), 0);
    assert_true(fu_recovered(&f->fx));
    f->fx.ok = true;
}

static void
test_fdatasync_eio(void **state)
{
    /* One failure: the file is cut back and that cut is synced. */
    const char *want[] = { "store: fdatasync of ", "Input/output error",
                           "the records in it were not acked",
                           "updates not acked, stopping", NULL };
    s_run(*state,
          "fail_op fdatasync\nfail_path seg-\nfail_errno 5\nfail_count 1\n",
          want);
}

static void
test_fdatasync_eio_again(void **state)
{
    /* Every sync fails, the one after the cut too: the store gives up,
     * and still nothing that was not acked is found at the restart. */
    const char *want[] = { "store: fdatasync of ", "Input/output error",
                           "and cutting it back to its last durable record",
                           "nothing more is written or acked",
                           "updates not acked, stopping", NULL };
    s_run(*state, "fail_op fdatasync\nfail_path seg-\nfail_errno 5\n", want);
}

static void
test_write_eio(void **state)
{
    const char *want[] = { "store: write of ", "Input/output error",
                           "the file is back at its last durable record",
                           "updates not acked, stopping", NULL };
    s_run(*state,
          "fail_op pwrite\nfail_path seg-\nfail_errno 5\nfail_partial 1\n",
          want);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_fdatasync_eio),
        T(test_fdatasync_eio_again),
        T(test_write_eio),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
