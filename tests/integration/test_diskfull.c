/*
 * test_diskfull.c - issue 11, item 5, the store's part, with the real
 * daemon on a real, small file system: a 2 MiB tmpfs as the state
 * directory (as root; otherwise the fault library under parleyd fails
 * writes and preallocation with ENOSPC instead).
 *
 * parleyd runs with disk_reserve 256K. After 20 acked updates the file
 * system is filled to the last byte by another file. The reserve lets
 * updates be acked for a while longer, and parleyd warns that the disk is
 * nearly full; then a write fails with ENOSPC: that update is not acked,
 * parleyd says so and exits 1. Restarted on the still full file system it
 * refuses to start, saying how much it needs, without ever answering a
 * ping. Once the other file is gone it starts, holds exactly the updates
 * it acked (nothing cut at the restart: the store cut its file back
 * itself), and takes the next one.
 */
#include "fault_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cmocka.h>

#define S_TIMEOUT 5000
#define S_BEFORE 20
#define S_MAX 5000 /* updates tried after the fill, at most */

typedef struct {
    fu_fix_t fx;
    char top[PH_PATH_MAX];    /* the daemon's directory: log, config */
    char state[PH_PATH_MAX];  /* top/state: the tmpfs */
    char config[PH_PATH_MAX];
    char ctl[PH_PATH_MAX];
    char filler[PH_PATH_MAX];
    bool mounted;             /* else: the fault library fakes ENOSPC */
} s_fix_t;

static int
s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof(*f));
    const char *conf = "disk_reserve 256K\nsegment_bytes 64K\nrate_limit 0\n";
    if (f == NULL || fu_fix_init(&f->fx, 13) != 0
        || ph_path(f->config, sizeof(f->config), f->fx.dir, "parleyd.conf") != 0
        || ph_path(f->ctl, sizeof(f->ctl), f->fx.dir, "fault.ctl") != 0
        || ph_path(f->top, sizeof(f->top), f->fx.dir, "d") != 0
        || ph_path(f->state, sizeof(f->state), f->top, "state") != 0
        || ph_path(f->filler, sizeof(f->filler), f->state, "filler") != 0
        || du_config_write(f->config, conf) != 0
        || mkdir(f->top, 0700) != 0 || mkdir(f->state, 0700) != 0) {
        free(f);
        return -1;
    }
    f->mounted = geteuid() == 0
                 && mount("parley-test", f->state, "tmpfs", 0,
                          "size=2m,mode=0700")
                        == 0;
    if (!f->mounted)
        fprintf(stderr, "[diskfull] no tmpfs (%s): ENOSPC comes from the "
                        "fault library\n",
                geteuid() == 0 ? strerror(errno) : "not root");
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fix_t *f = *state;
    if (f->fx.d.pid > 0)
        ph_daemon_stop(&f->fx.d); /* before its file system goes */
    if (f->mounted)
        umount2(f->state, MNT_DETACH);
    fu_fix_done(&f->fx);
    free(f);
    return 0;
}

/* Start (or restart) parleyd on f's state directory; as ph_daemon_*. */
static int
s_start(s_fix_t *f, bool again)
{
    const char *extra[] = { "-c", f->config, NULL };
    fu_env_t env;
    if (!f->mounted)
        fu_preload(&env, f->ctl);
    int rc = again ? ph_daemon_restart(&f->fx.d, f->fx.keyring, extra)
                   : ph_daemon_start(&f->fx.d, f->top, f->fx.keyring, extra);
    if (!f->mounted)
        fu_unpreload(&env);
    return rc;
}

/* Fill the file system of the state directory, or make it look full. */
static void
s_fill(s_fix_t *f)
{
    if (!f->mounted) {
        assert_int_equal(fu_ctl_write(f->ctl, "fail_op pwrite\n"
                                              "fail_path seg-\n"
                                              "fail_errno 28\n"
                                              "fail_after 200\n"
                                              "fail_partial 1\n"
                                              "fail_count 1\n"),
                         0);
        return;
    }
    int fd = open(f->filler, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static uint8_t block[4096];
    while (write(fd, block, sizeof(block)) > 0)
        ;
    assert_int_equal(errno, ENOSPC);
    close(fd);
}

/* Space again (and, faked, a restart that finds none first). */
static void
s_still_full(s_fix_t *f)
{
    if (!f->mounted)
        assert_int_equal(fu_ctl_write(f->ctl, "fail_op fallocate\n"
                                              "fail_errno 28\n"),
                         0);
}

static void
s_free(s_fix_t *f)
{
    if (f->mounted)
        assert_int_equal(unlink(f->filler), 0);
    else
        assert_int_equal(fu_ctl_write(f->ctl, ""), 0);
}

static void
test_disk_full(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(s_start(f, false), 0);
    assert_int_equal(fu_pub_open(&f->fx.pub, f->fx.d.api, &f->fx.key), 0);
    for (size_t i = 0; i < S_BEFORE; i++)
        assert_int_equal(fu_publish(&f->fx.pub, "before", i, S_TIMEOUT), 0);

    s_fill(f);
    /* Acked for a while on the reserve, then one fails: not acked. */
    int rc = 0;
    size_t tried = 0;
    while (rc == 0 && tried < S_MAX)
        rc = fu_publish(&f->fx.pub, "full", tried++, 3000);
    const size_t acked = f->fx.pub.n_acked;
    fprintf(stderr, "[diskfull] %zu updates acked after the disk filled\n",
            acked - S_BEFORE);
    assert_int_not_equal(rc, 0);
    assert_true(acked > S_BEFORE + 100);
    assert_int_equal(fu_wait_exit(&f->fx.d, S_TIMEOUT), 1);
    if (f->mounted)
        assert_true(fu_log_has(&f->fx.d, "disk nearly full"));
    assert_true(fu_log_has(&f->fx.d, "No space left on device"));
    assert_true(fu_log_has(&f->fx.d, "updates not acked, stopping"));

    /* Still full: refused, before it ever answers. */
    s_still_full(f);
    assert_int_equal(s_start(f, true), -ECHILD);
    assert_true(fu_log_has(&f->fx.d, "cannot keep 262144 bytes free for the log"));

    /* Space again: every acked update, nothing else, and on it goes. */
    s_free(f);
    assert_int_equal(s_start(f, true), 0);
    assert_true(fu_recovered(&f->fx));
    f->fx.ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
