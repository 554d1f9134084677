/*
 * test_harness.c - what the integration harness promises about the
 * daemons it starts.
 *
 * A restart is on the ports the daemon had: between its stop and its
 * restart another test running at the same time may take one of them
 * (ports are chosen free, then freed). That test's parleyd answers ping
 * on it too. The restart must not take it for the daemon it started
 * (whose bind then fails): a test once read another daemon's log through
 * it (test_oneshot's test_replay_gap saw its first seq at 1 after
 * retention had removed the start of its own log).
 */
#include "harness.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void
test_restart_port_taken(void **state)
{
    (void)state;
    ph_world_t w;
    assert_int_equal(ph_world_start(&w, 0x4c, NULL), 0);
    assert_int_equal(ph_daemon_stop(&w.daemon), 0);

    /* Another daemon (another test's) takes the stopped one's api port. */
    char dir[PH_PATH_MAX], state_dir[PH_PATH_MAX], log[PH_PATH_MAX],
        feed[PH_EP_MAX];
    ph_path(dir, sizeof(dir), w.dir, "other");
    assert_int_equal(mkdir(dir, 0700), 0);
    ph_path(state_dir, sizeof(state_dir), dir, "state");
    ph_path(log, sizeof(log), dir, "parleyd.log");
    ph_endpoint(feed, ph_free_port());
    const char *argv[] = { PARLEYD_BIN,    "--api",   w.daemon.api,
                           "--feed",       feed,      "--state-dir",
                           state_dir,      "--keyring", w.ring,
                           NULL };
    pid_t other = 0;
    assert_int_equal(ph_spawn_logged(argv, log, true, &other), 0);
    int rc = -1;
    for (int i = 0; i < 200 && rc != 0; i++)
        rc = ph_ping(w.daemon.api, 50);
    if (rc != 0) {
        kill(other, SIGKILL);
        waitpid(other, NULL, 0);
        fail_msg("the other daemon does not answer on %s", w.daemon.api);
    }

    /* The restart cannot have its port: that is a failure, not the
     * other daemon taken for it. */
    rc = ph_world_restart(&w);
    kill(other, SIGTERM);
    waitpid(other, NULL, 0);
    assert_int_not_equal(rc, 0);
    ph_world_end(&w, true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_port_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
