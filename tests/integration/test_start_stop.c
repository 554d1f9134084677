/*
 * test_start_stop.c - a parleyd that cannot start says why and exits
 * non-zero; SIGTERM or SIGINT during start-up ends it at once. Real
 * processes: parleyd, a nats-server with JetStream (one node), sockets
 * of this test holding the ports parleyd is told to bind.
 *
 *   - bind: the api, then the feed endpoint taken by a listening socket,
 *     in embedded and in cluster mode: exit status 1, the message names
 *     the endpoint and the cause, and the last line says parleyd did not
 *     start;
 *   - SIGTERM while connecting to a nats-server that is SIGSTOPped, and
 *     SIGINT while connecting to a port where nothing listens: each goes
 *     on trying until its open timeout (10 s) otherwise; it must stop at
 *     the signal instead: exit status 0, a line saying it stopped during
 *     start-up, and no word of the timeout;
 *   - SIGTERM while a new node catches up a stream of a few thousand
 *     records: exit status 0 after "SIGTERM: stopping".
 *
 * No wall-clock threshold: every wait has a bound of 20 s or more where
 * what is wrong would take the open timeout or forever; what tells a
 * prompt stop from a late one is what parleyd says and its exit status.
 */
#include "harness.h"
#include "nats_harness.h"

#include "clock.h"

#include <errno.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define S_EXIT_MS 20000   /* bound on an exit that should be prompt */
#define S_CATCHUP 4000    /* records the new node catches up */

static ph_nats_cluster_t s_nats;
static char s_dir[PH_PATH_MAX];
static ph_key_t s_key;
static char s_ring[PH_PATH_MAX];

static int
s_group_up(void **state)
{
    (void)state;
    char text[1024] = "";
    if (ph_tmpdir_make(s_dir, sizeof(s_dir)) < 0
        || ph_key_make(&s_key, s_dir, "desk", 0x51) < 0
        || ph_keyring_add(text, sizeof(text), &s_key, "*", "*", "*") < 0
        || ph_path(s_ring, sizeof(s_ring), s_dir, "keyring") < 0
        || ph_file_write(s_ring, text, strlen(text), 0644) < 0)
        return -1;
    ph_nats_opts_t o = { .nodes = 1, .dir = s_dir };
    return ph_nats_start(&s_nats, &o);
}

static int
s_group_down(void **state)
{
    (void)state;
    ph_nats_stop(&s_nats, false);
    ph_key_free(&s_key);
    if (getenv("START_KEEP") == NULL)
        ph_tmpdir_remove(s_dir);
    else
        fprintf(stderr, "kept %s\n", s_dir);
    return 0;
}

/* A socket of this test listening on a free loopback port: *ep names it.
 * Returns the fd (close it when done). */
static int
s_hold_port(char ep[PH_EP_MAX])
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    ph_endpoint(ep, ntohs(a.sin_port));
    return fd;
}

/* A fresh directory DIR/name for one parleyd; its state dir in state. */
static void
s_node_dir(const char *name, char dir[PH_PATH_MAX], char state[PH_PATH_MAX])
{
    assert_int_equal(ph_path(dir, PH_PATH_MAX, s_dir, name), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(ph_path(state, PH_PATH_MAX, dir, "state"), 0);
}

/* ------------------------------------------------------------ bind */

/*
 * parleyd (cluster mode on stream if stream is not NULL) with its api or
 * (api false) its feed endpoint taken: exit status 1 within S_EXIT_MS,
 * and it says which endpoint and why.
 */
static void
s_bind_taken(const char *name, const char *stream, bool api)
{
    char dir[PH_PATH_MAX], state[PH_PATH_MAX], taken[PH_EP_MAX],
        other[PH_EP_MAX];
    s_node_dir(name, dir, state);
    int fd = s_hold_port(taken);
    ph_endpoint(other, ph_free_port());
    /* Without a stream the list ends before --backbone. */
    const char *argv[] = { PARLEYD_BIN, "--no-fsync", "--state-dir", state,
                           "--keyring", s_ring,
                           "--api", api ? taken : other,
                           "--feed", api ? other : taken,
                           stream != NULL ? "--backbone" : NULL,
                           s_nats.urls, "--backbone-stream", stream,
                           "--backbone-replicas", "1", NULL };
    ph_proc_t p = PH_PROC_INIT;
    assert_int_equal(ph_run(&p, argv, NULL, NULL, NULL, S_EXIT_MS), 0);
    close(fd);
    char want[PH_EP_MAX + 64];
    snprintf(want, sizeof(want), "cannot bind the %s to %s: Address already "
                                 "in use",
             api ? "api" : "feed", taken);
    if (p.timed_out || p.status != 1 || strstr(p.err, want) == NULL
        || strstr(p.err, "parleyd did not start (exit status 1)") == NULL) {
        ph_proc_report(&p, name);
        fail_msg("%s: expected exit status 1 and \"%s\"", name, want);
    }
    if (stream != NULL && strstr(p.err, "cluster: stream") == NULL) {
        ph_proc_report(&p, name);
        fail_msg("%s: parleyd failed before the backbone was open", name);
    }
    ph_proc_free(&p);
}

static void
test_bind_embedded(void **state)
{
    (void)state;
    s_bind_taken("bind-api", NULL, true);
    s_bind_taken("bind-feed", NULL, false);
}

static void
test_bind_cluster(void **state)
{
    (void)state;
    s_bind_taken("bind-cluster-api", "BINDAPI", true);
    s_bind_taken("bind-cluster-feed", "BINDFEED", false);
}

/* ------------------------------------------------- signals at start-up */

/* Does the file at path hold text? */
static bool
s_log_has(const char *path, const char *text)
{
    char *buf = ph_file_read(path, NULL);
    bool has = buf != NULL && strstr(buf, text) != NULL;
    free(buf);
    return has;
}

/*
 * Start parleyd in cluster mode on servers and stream, in DIR/name (its
 * log in log), and send it sig once its log holds text. Returns its exit
 * status, or -ETIMEDOUT (it is killed then) if it did not exit within
 * S_EXIT_MS, or -errno if the signal could not be sent.
 */
static int
s_signal_when(const char *name, const char *servers, const char *stream,
              const char *text, int sig, char log[PH_PATH_MAX])
{
    char dir[PH_PATH_MAX], state[PH_PATH_MAX], api[PH_EP_MAX],
        feed[PH_EP_MAX];
    s_node_dir(name, dir, state);
    assert_int_equal(ph_path(log, PH_PATH_MAX, dir, "parleyd.log"), 0);
    ph_endpoint(api, ph_free_port());
    ph_endpoint(feed, ph_free_port());
    const char *argv[] = { PARLEYD_BIN, "--no-fsync", "--state-dir", state,
                           "--keyring", s_ring, "--api", api, "--feed",
                           feed, "--backbone", servers, "--backbone-stream",
                           stream, "--backbone-replicas", "1", NULL };
    pid_t pid = 0;
    assert_int_equal(ph_spawn_logged(argv, log, true, &pid), 0);
    int64_t deadline = parley__mono_ms() + S_EXIT_MS;
    while (!s_log_has(log, text) && parley__mono_ms() < deadline)
        ph_sleep_ms(5);
    int rc = kill(pid, sig) == 0 ? ph_wait_exit(pid, S_EXIT_MS) : -errno;
    if (rc < 0) {
        kill(pid, SIGKILL);
        (void)ph_wait_exit(pid, S_EXIT_MS);
    }
    return rc;
}

/*
 * parleyd in cluster mode on servers (nobody answers there): once its log
 * says it is connecting, signal it with sig. It must exit 0 within
 * S_EXIT_MS saying it stopped during start-up, not that no server
 * answered (what its open timeout ends in). Returns whether it did (its
 * log printed if not), so that the caller can clean up first.
 */
static bool
s_signal_connecting(const char *name, const char *servers, int sig,
                    const char *signame)
{
    char log[PH_PATH_MAX], want[128];
    int status = s_signal_when(name, servers, "NEVER", "cluster: connecting",
                               sig, log);
    snprintf(want, sizeof(want), "%s: stopping during start-up", signame);
    if (status != 0 || !s_log_has(log, want)
        || s_log_has(log, "no NATS server answers")
        || s_log_has(log, "did not start")) {
        ph_file_dump(name, log);
        fprintf(stderr, "%s: exit status %d (want 0 and \"%s\")\n", name,
                status, want);
        return false;
    }
    return true;
}

/* SIGTERM while connecting to a server that is SIGSTOPped: it accepts
 * the connection and says nothing. */
static void
test_term_connecting_stopped(void **state)
{
    (void)state;
    assert_int_equal(ph_nats_sigstop(&s_nats, 0), 0);
    bool ok = s_signal_connecting("term-stopped", s_nats.urls, SIGTERM,
                                  "SIGTERM");
    assert_int_equal(ph_nats_sigcont(&s_nats, 0), 0);
    assert_true(ok);
}

/* SIGINT while connecting to a port where nothing listens. */
static void
test_int_connecting_absent(void **state)
{
    (void)state;
    char url[PH_NATS_URL_MAX];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", ph_free_port());
    assert_true(s_signal_connecting("int-absent", url, SIGINT, "SIGINT"));
}

/* ----------------------------------------------------------- catch-up */

/*
 * A stream of S_CATCHUP records (signed updates put in by hand, as a
 * node would), then a node with an empty state directory, which serves
 * before it has caught up: SIGTERM as soon as it says it catches up
 * stops it, exit status 0.
 */
static void
test_term_catching_up(void **state)
{
    (void)state;
    char dir[PH_PATH_MAX];
    assert_int_equal(ph_path(dir, sizeof(dir), s_dir, "catchup"), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *extra[] = { "--no-fsync", "--backbone", s_nats.urls,
                            "--backbone-stream", "CATCHUP",
                            "--backbone-replicas", "1", NULL };
    /* The first node makes the stream. */
    ph_daemon_t first;
    assert_int_equal(ph_daemon_start(&first, dir, s_ring, extra), 0);
    assert_int_equal(ph_daemon_stop(&first), 0);

    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, s_nats.urls), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    char subject[64], id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(s_key.pk, id);
    snprintf(subject, sizeof(subject), "CATCHUP.u.%s", id);
    for (int i = 0; i < S_CATCHUP; i++) {
        parley_update_t u;
        uint8_t env[1024];
        size_t len;
        ph_update_init(&u, "gaza-ceasefire", "hamas", 1, "catch me up");
        assert_int_equal(ph_sign(&s_key, &u, env, sizeof(env), &len), 0);
        assert_int_equal(js_PublishAsync(js, subject, env, (int)len, NULL),
                         NATS_OK);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    assert_int_equal(js_PublishAsyncComplete(js, &po), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    /* A new node, from an empty state directory: SIGTERM once it says
     * it catches up (it serves from before that). */
    char log[PH_PATH_MAX];
    int status = s_signal_when("catchup/new", s_nats.urls, "CATCHUP",
                               "catching up with the stream", SIGTERM, log);
    /* Whether it had caught up before the signal: said, not asserted (a
     * fast machine may get there first). */
    char *text = ph_file_read(log, NULL);
    const char *caught = text != NULL ? strstr(text, "caught up with") : NULL;
    const char *term = text != NULL ? strstr(text, "SIGTERM: stopping") : NULL;
    fprintf(stderr, "catch-up of %d records: SIGTERM %s it had caught up\n",
            S_CATCHUP,
            term != NULL && (caught == NULL || caught > term) ? "before"
                                                              : "after");
    free(text);
    if (status != 0 || term == NULL) {
        ph_file_dump("catch-up", log);
        fail_msg("catch-up: exit status %d after SIGTERM", status);
    }
}

int
main(void)
{
    if (getenv("START_TEST") != NULL)
        cmocka_set_test_filter(getenv("START_TEST"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_embedded),
        cmocka_unit_test(test_bind_cluster),
        cmocka_unit_test(test_term_connecting_stopped),
        cmocka_unit_test(test_int_connecting_absent),
        cmocka_unit_test(test_term_catching_up),
    };
    return cmocka_run_group_tests(tests, s_group_up, s_group_down);
}
