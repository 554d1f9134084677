/*
 * test_eio.c - issue 11, items 5 and 7: I/O errors on the log, with the
 * real daemon, injected by the fault library (tests/shim/fault.c) under
 * it.
 *
 * Ten updates are acked; then an fdatasync of a segment fails with EIO
 * (once, or every time from then on), or a pwrite writes half of its
 * bytes and the next ones fail with EIO until the fault is lifted.
 * The update sent then must not be acked, and parleyd must say which file
 * failed and how.
 *
 * Where the store could cut the file back to its last durable record,
 * the failure is not fatal: the update is answered unavailable at once,
 * with the reason, and so is the next one; parleyd keeps running, and
 * once the fault is gone its retry makes the update durable, and a resend
 * of it is a duplicate of its seq. Where even the cut cannot be synced,
 * parleyd exits 1. Either way, after a kill -9 (or the exit) and a
 * restart without the fault, parleyd holds exactly the updates that were
 * acked, byte for byte, and nothing else: the store cut the file back
 * itself, so the restart finds no torn tail to cut (store_truncated_bytes
 * 0).
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

/* A fault that parleyd survives, answering unavailable until it is
 * lifted or (once) until the retry; or one that stops it. */
typedef enum { S_UNTIL_LIFTED, S_ONCE, S_FATAL } s_kind_t;

/*
 * The common course: S_ACKED acked, then the fault in ctl_text, then one
 * update that must not be acked, log lines holding each of want
 * (NULL-terminated); then, as kind says, the unavailable course or exit
 * 1; and a restart holding what was acked alone.
 */
static void
s_run(s_fix_t *f, const char *ctl_text, const char *const *want,
      s_kind_t kind)
{
    assert_int_equal(fu_publish_acked(&f->fx.pub, "before", S_ACKED,
                                      S_TIMEOUT),
                     0);
    assert_int_equal(fu_ctl_write(f->ctl, ctl_text), 0);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    assert_int_equal(fu_sign(&f->fx.pub, "failing", 0, env, &len), 0);
    int rc = fu_send(&f->fx.pub, env, len, 3000);
    if (rc == 0)
        fail_msg("an update whose write failed was acked as seq %llu",
                 (unsigned long long)f->fx.pub.seqs[f->fx.pub.n_acked - 1]);
    if (kind == S_FATAL) {
        assert_int_equal(fu_wait_exit(&f->fx.d, S_TIMEOUT), 1);
    } else {
        /* Answered, not left to time out, and told why. */
        if (rc != PARLEY_EUNAVAILABLE)
            fail_msg("the failed update got %s, not unavailable",
                     parley_strerror(rc));
        assert_non_null(strstr(f->fx.pub.message, "Input/output error"));
        fprintf(stderr, "[eio] unavailable after %lld ms: %s\n",
                (long long)f->fx.pub.answer_ms, f->fx.pub.message);
    }
    for (size_t i = 0; want[i] != NULL; i++)
        if (!fu_log_has(&f->fx.d, want[i]))
            fail_msg("the daemon's log does not say \"%s\"", want[i]);
    if (kind == S_UNTIL_LIFTED) {
        /* Until the fault is gone: unavailable (a resend, a new one). */
        assert_int_equal(fu_send(&f->fx.pub, env, len, 3000),
                         PARLEY_EUNAVAILABLE);
        assert_int_equal(fu_publish(&f->fx.pub, "meanwhile", 0, 3000),
                         PARLEY_EUNAVAILABLE);
        assert_int_equal(fu_ctl_write(f->ctl, ""), 0);
    }
    if (kind != S_FATAL) {
        /* The retry writes it, and a resend is its duplicate. */
        assert_int_equal(ph_stat_wait(f->fx.d.api, "seq", S_ACKED + 1, true,
                                      S_TIMEOUT),
                         0);
        assert_int_equal(fu_send(&f->fx.pub, env, len, S_TIMEOUT), 0);
        assert_int_equal(f->fx.pub.seqs[f->fx.pub.n_acked - 1], S_ACKED + 1);
        ph_stats_t st;
        assert_int_equal(ph_stats_fetch(f->fx.d.api, &st), 0);
        assert_int_equal(du_stat(&st, "store_error"), 0);
        assert_true(du_stat(&st, "store_sync_failures") >= 1);
        assert_int_equal(du_stat(&st, "duplicates"), 1);
        ph_daemon_kill9(&f->fx.d);
    }

    /* Restarted without the fault: the acked ones, nothing else. */
    assert_int_equal(fu_ctl_write(f->ctl, ""), 0);
    assert_int_equal(ph_daemon_restart(&f->fx.d, f->fx.keyring, NULL), 0);
    assert_true(fu_recovered(&f->fx));
    f->fx.ok = true;
}

static void
test_fdatasync_eio(void **state)
{
    /* One failure: the file is cut back and that cut is synced; parleyd
     * answers unavailable until a retry writes the update again. */
    const char *want[] = { "store: fdatasync of ", "Input/output error",
                           "the records in it were not acked",
                           "updates not acked and kept queued", NULL };
    s_run(*state,
          "fail_op fdatasync\nfail_path seg-\nfail_errno 5\nfail_count 1\n",
          want, S_ONCE);
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
    s_run(*state, "fail_op fdatasync\nfail_path seg-\nfail_errno 5\n", want,
          S_FATAL);
}

static void
test_write_eio(void **state)
{
    const char *want[] = { "store: write of ", "Input/output error",
                           "the file is back at its last durable record",
                           "updates not acked and kept queued", NULL };
    s_run(*state,
          "fail_op pwrite\nfail_path seg-\nfail_errno 5\nfail_partial 1\n",
          want, S_UNTIL_LIFTED);
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
