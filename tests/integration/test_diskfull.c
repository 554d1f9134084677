/*
 * test_diskfull.c - issue 11, item 5: a full disk, with the real daemon
 * on a real, small file system: a 2 MiB tmpfs as the state directory (as
 * root; otherwise the fault library under parleyd fails writes and
 * preallocation with ENOSPC instead).
 *
 * parleyd runs with disk_reserve 256K, a raw subscriber on all/ and
 * sys/heartbeat/. After 20 acked updates the file system is filled to the
 * last byte by another file. The reserve lets updates be acked for a
 * while longer, and parleyd warns that the disk is nearly full; then a
 * write fails with ENOSPC. From then on:
 *
 *   - that update, and every publish after it, is answered unavailable
 *     with the reason, at once (not left to time out); a resend of it is
 *     unavailable too, not replay;
 *   - ping, replay and stats answer; the log holds exactly what was
 *     acked; the feed delivered every acked update and goes on sending
 *     heartbeats; stats say store_error 28 (ENOSPC), one update queued;
 *     systemd's STATUS= (a notify socket of the test's) says it; the
 *     retries, once a second, add no log lines;
 *   - once the other file is gone, publishing resumes without a restart:
 *     the queued update is durable and on the feed, its resend is its
 *     duplicate, and the next update is acked.
 *   - the Merkle tree's hash file (no reserve) fails to be written while
 *     the disk is full; the daemon goes on, the tree covers every acked
 *     update, and its file is written again once there is space.
 *
 * Then the disk is filled again until an update is refused, and parleyd
 * is killed (-9). Restarted on the still full file system it refuses to
 * start, saying how much it needs, without ever answering a ping; started
 * without a reserve it answers, and publishes get unavailable instead of
 * a dead daemon. Once the space is back it starts and holds exactly the
 * updates it acked (nothing cut at the restart: the store cut its file
 * back itself), and takes the next one.
 */
#include "fault_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#define S_TIMEOUT 5000
#define S_PUB_TIMEOUT 3000 /* what a publisher waits for its answer */
#define S_BEFORE 20
#define S_MAX 5000 /* updates tried after the fill, at most */
#define S_CONF "disk_reserve 256K\nsegment_bytes 64K\nrate_limit 0\n"

typedef struct {
    fu_fix_t fx;
    char top[PH_PATH_MAX];    /* the daemon's directory: log, config */
    char state[PH_PATH_MAX];  /* top/state: the tmpfs */
    char config[PH_PATH_MAX];
    char ctl[PH_PATH_MAX];
    char filler[2][PH_PATH_MAX];
    char notify[PH_PATH_MAX]; /* NOTIFY_SOCKET: what parleyd tells systemd */
    int notify_fd;
    int fills;                /* filler files made */
    bool mounted;             /* else: the fault library fakes ENOSPC */
    void *zctx, *feed;        /* the raw subscriber */
    uint64_t fed;             /* last seq it received */
    size_t heartbeats;        /* heartbeats it received */
} s_fix_t;

static int
s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof(*f));
    if (f == NULL || fu_fix_init(&f->fx, 13) != 0
        || ph_path(f->config, sizeof(f->config), f->fx.dir, "parleyd.conf") != 0
        || ph_path(f->ctl, sizeof(f->ctl), f->fx.dir, "fault.ctl") != 0
        || ph_path(f->top, sizeof(f->top), f->fx.dir, "d") != 0
        || ph_path(f->state, sizeof(f->state), f->top, "state") != 0
        || ph_path(f->filler[0], PH_PATH_MAX, f->state, "filler") != 0
        || ph_path(f->filler[1], PH_PATH_MAX, f->state, "filler2") != 0
        || ph_path(f->notify, sizeof(f->notify), f->fx.dir, "notify") != 0
        || du_config_write(f->config, S_CONF) != 0
        || mkdir(f->top, 0700) != 0 || mkdir(f->state, 0700) != 0) {
        free(f);
        return -1;
    }
    f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n = strlen(f->notify);
    if (n < sizeof(sa.sun_path))
        memcpy(sa.sun_path, f->notify, n + 1);
    if (f->notify_fd < 0 || n >= sizeof(sa.sun_path)
        || bind(f->notify_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "[diskfull] notify socket %s: %s\n", f->notify,
                strerror(errno));
        if (f->notify_fd >= 0)
            close(f->notify_fd);
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
    if (f->feed != NULL)
        zmq_close(f->feed);
    if (f->zctx != NULL)
        zmq_ctx_term(f->zctx);
    if (f->fx.d.pid > 0)
        ph_daemon_stop(&f->fx.d); /* before its file system goes */
    if (f->mounted)
        umount2(f->state, MNT_DETACH);
    close(f->notify_fd);
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
    setenv("NOTIFY_SOCKET", f->notify, 1);
    int rc = again ? ph_daemon_restart(&f->fx.d, f->fx.keyring, extra)
                   : ph_daemon_start(&f->fx.d, f->top, f->fx.keyring, extra);
    unsetenv("NOTIFY_SOCKET");
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
                                              "fail_partial 1\n"),
                         0);
        return;
    }
    assert_true(f->fills < 2);
    int fd = open(f->filler[f->fills++],
                  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static uint8_t block[4096];
    while (write(fd, block, sizeof(block)) > 0)
        ;
    assert_int_equal(errno, ENOSPC);
    close(fd);
}

/* Faked: before a restart, make the reserve (or, without one, the
 * writes) fail as on a full disk. */
static void
s_still_full(s_fix_t *f, bool reserve)
{
    if (!f->mounted)
        assert_int_equal(fu_ctl_write(f->ctl, reserve ? "fail_op fallocate\n"
                                                        "fail_errno 28\n"
                                                      : "fail_op pwrite\n"
                                                        "fail_path seg-\n"
                                                        "fail_errno 28\n"),
                         0);
}

/* Space again. */
static void
s_free(s_fix_t *f)
{
    if (!f->mounted) {
        assert_int_equal(fu_ctl_write(f->ctl, ""), 0);
        return;
    }
    for (int i = 0; i < f->fills; i++)
        assert_int_equal(unlink(f->filler[i]), 0);
    f->fills = 0;
}

/* --------------------------------------------------- the raw subscriber */

/* Subscribe to all/ and sys/heartbeat/ and wait until that is live. */
static void
s_feed_open(s_fix_t *f)
{
    int zero = 0;
    assert_non_null(f->zctx = zmq_ctx_new());
    assert_non_null(f->feed = zmq_socket(f->zctx, ZMQ_SUB));
    assert_int_equal(zmq_setsockopt(f->feed, ZMQ_LINGER, &zero, sizeof(zero)),
                     0);
    assert_int_equal(zmq_setsockopt(f->feed, ZMQ_SUBSCRIBE, "all/", 4), 0);
    assert_int_equal(zmq_setsockopt(f->feed, ZMQ_SUBSCRIBE, "sys/heartbeat/",
                                    14),
                     0);
    assert_int_equal(zmq_connect(f->feed, f->fx.d.feed), 0);
    assert_int_equal(ph_wait_feed_live(f->fx.d.api, f->fx.d.feed, 2,
                                       S_TIMEOUT),
                     0);
}

/*
 * Read the feed until the delivery of seq until has come and at least
 * heartbeats more heartbeats, or timeout_ms. Deliveries must come in seq
 * order without gaps. Returns true if both came.
 */
static bool
s_feed_until(s_fix_t *f, uint64_t until, size_t heartbeats, int timeout_ms)
{
    const size_t want = f->heartbeats + heartbeats;
    int64_t deadline = parley__mono_ms() + timeout_ms;
    while (f->fed < until || f->heartbeats < want) {
        int64_t left = deadline - parley__mono_ms();
        zmq_pollitem_t it = { f->feed, 0, ZMQ_POLLIN, 0 };
        if (left <= 0 || zmq_poll(&it, 1, (long)left) != 1)
            break;
        char topic[64];
        uint8_t body[PARLEY_ENVELOPE_MAX + 64];
        int tn = zmq_recv(f->feed, topic, sizeof(topic) - 1, 0);
        int bn = zmq_recv(f->feed, body, sizeof(body), 0);
        assert_true(tn > 0 && bn > 0);
        topic[tn] = '\0';
        if (strcmp(topic, "sys/heartbeat/") == 0) {
            f->heartbeats++;
            continue;
        }
        uint64_t seq;
        int64_t at;
        parley__bytes_t update;
        uint8_t scratch[PARLEY_ENVELOPE_MAX + 1024];
        parley__arena_t arena;
        parley__arena_init(&arena, scratch, sizeof(scratch));
        assert_int_equal(parley__delivery_decode_raw(body, (size_t)bn, &seq,
                                                     &at, &update, &arena),
                         0);
        parley__arena_reset(&arena);
        if (seq != f->fed + 1)
            fail_msg("the feed delivered seq %llu after %llu",
                     (unsigned long long)seq, (unsigned long long)f->fed);
        f->fed = seq;
    }
    if (f->fed < until || f->heartbeats < want)
        fprintf(stderr, "[diskfull] the feed: seq %llu of %llu, %zu of %zu "
                        "heartbeats\n",
                (unsigned long long)f->fed, (unsigned long long)until,
                f->heartbeats, want);
    return f->fed >= until && f->heartbeats >= want;
}

/* ------------------------------------------------------------ systemd */

/*
 * Read what parleyd told systemd until a message holding needle comes,
 * or timeout_ms. Messages before it are consumed. Returns true if it
 * came.
 */
static bool
s_notified(s_fix_t *f, const char *needle, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    char msg[2048];
    for (;;) {
        int64_t left = deadline - parley__mono_ms();
        struct pollfd p = { .fd = f->notify_fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            break;
        ssize_t n = recv(f->notify_fd, msg, sizeof(msg) - 1, 0);
        if (n <= 0)
            break;
        msg[n] = '\0';
        if (strstr(msg, needle) != NULL)
            return true;
    }
    fprintf(stderr, "[diskfull] parleyd did not tell systemd \"%s\" within "
                    "%d ms\n",
            needle, timeout_ms);
    return false;
}

/* ------------------------------------------------------------ the test */

/* Publish until an update is refused: it must be unavailable, at once and
 * with the reason; its envelope is left in env. */
static void
s_publish_until_refused(s_fix_t *f, const char *tag, uint8_t *env,
                        size_t *len)
{
    int rc = 0;
    size_t tried = 0;
    while (rc == 0 && tried < S_MAX) {
        assert_int_equal(fu_sign(&f->fx.pub, tag, tried++, env, len), 0);
        rc = fu_send(&f->fx.pub, env, *len, S_PUB_TIMEOUT);
    }
    if (rc != PARLEY_EUNAVAILABLE)
        fail_msg("after %zu updates: %s, not unavailable", tried,
                 parley_strerror(rc));
    fprintf(stderr, "[diskfull] %s: unavailable after %zu acked, answered "
                    "in %lld ms: %s\n",
            tag, tried - 1, (long long)f->fx.pub.answer_ms,
            f->fx.pub.message);
    assert_non_null(strstr(f->fx.pub.message, strerror(ENOSPC)));
    assert_non_null(strstr(f->fx.pub.message, "kept queued"));
    assert_true(f->fx.pub.answer_ms < S_PUB_TIMEOUT);
}

/* The daemon answers a ping, whose health is health. */
static void
s_expect_ping(const s_fix_t *f, const char *health)
{
    parley_info_t *info = NULL;
    assert_int_equal(ph_ping_info(f->fx.d.api, NULL, S_TIMEOUT, &info), 0);
    assert_string_equal(parley_info_storage(info), "embedded");
    assert_string_equal(parley_info_health(info), health);
    assert_false(parley_info_catching_up(info));
    parley_info_destroy(&info);
}

static void
test_disk_full(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(s_start(f, false), 0);
    /* parleyd talks to systemd when built with libsystemd: */
    const bool systemd = s_notified(f, "READY=1", S_TIMEOUT);
    s_feed_open(f);
    assert_int_equal(fu_pub_open(&f->fx.pub, f->fx.d.api, &f->fx.key), 0);
    assert_int_equal(fu_publish_acked(&f->fx.pub, "before", S_BEFORE,
                                      S_TIMEOUT),
                     0);

    /* Full: acked for a while on the reserve, then refused. */
    s_fill(f);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    s_publish_until_refused(f, "full", env, &len);
    const uint64_t acked = f->fx.pub.n_acked;
    assert_true(acked > S_BEFORE + 100);
    if (f->mounted)
        assert_true(fu_log_has(&f->fx.d, "disk nearly full"));
    assert_true(fu_log_has(&f->fx.d, "No space left on device"));
    assert_true(fu_log_has(&f->fx.d, "updates not acked and kept queued"));

    /* Meanwhile: refused at once, the resend too (not a replay). */
    assert_int_equal(fu_publish(&f->fx.pub, "meanwhile", 0, S_PUB_TIMEOUT),
                     PARLEY_EUNAVAILABLE);
    assert_true(f->fx.pub.answer_ms < S_PUB_TIMEOUT);
    assert_non_null(strstr(f->fx.pub.message, "not stored"));
    assert_int_equal(fu_send(&f->fx.pub, env, len, S_PUB_TIMEOUT),
                     PARLEY_EUNAVAILABLE);
    assert_non_null(strstr(f->fx.pub.message, "kept queued"));
    /* Reads, stats and the feed go on; ping says why publishes fail. */
    s_expect_ping(f, "store_error");
    assert_true(fu_log_is_acked(f->fx.d.api, &f->fx.pub));
    ph_stats_t st;
    assert_int_equal(ph_stats_fetch(f->fx.d.api, &st), 0);
    assert_int_equal(du_stat(&st, "seq"), acked);
    assert_int_equal(du_stat(&st, "store_error"), ENOSPC);
    assert_int_equal(du_stat(&st, "store_queued"), 1);
    assert_true(du_stat(&st, "store_sync_failures") >= 1);
    assert_true(du_stat(&st, "rejected_unavailable") >= 3);
    if (f->mounted)
        assert_int_equal(du_stat(&st, "store_low_space"), 1);
    /* The transparency log's hash file has no reserve: its write fails
     * (with fsync, at the next heartbeat), and its tree still covers
     * every acked update (issue 16). */
    assert_int_equal(du_stat(&st, "tree_size"), acked);
    if (f->mounted)
        assert_int_equal(ph_stat_wait(f->fx.d.api, "tree_write_errors", 1,
                                      true, S_TIMEOUT),
                         0);
    assert_true(s_feed_until(f, acked, 2, S_TIMEOUT));
    assert_int_equal(f->fed, acked);
    if (systemd)
        assert_true(s_notified(f, "STATUS=UNAVAILABLE, publishes refused: ",
                               S_TIMEOUT));
    /* Two retries later (once a second), still one line about it. */
    assert_int_equal(ph_stat_wait(f->fx.d.api, "store_sync_failures",
                                  du_stat(&st, "store_sync_failures") + 2,
                                  true, S_TIMEOUT),
                     0);
    assert_int_equal(fu_log_count(&f->fx.d, "the records in it were not "
                                            "acked"),
                     1);

    /* Space again: no restart; the update that waited is durable. */
    s_free(f);
    int64_t t0 = parley__mono_ms();
    assert_int_equal(ph_stat_wait(f->fx.d.api, "seq", acked + 1, true,
                                  S_TIMEOUT),
                     0);
    fprintf(stderr, "[diskfull] stored again %lld ms after the space came "
                    "back\n",
            (long long)(parley__mono_ms() - t0));
    if (systemd)
        assert_true(s_notified(f, "STATUS=seq ", S_TIMEOUT));
    assert_true(s_feed_until(f, acked + 1, 0, S_TIMEOUT));
    assert_int_equal(fu_send(&f->fx.pub, env, len, S_TIMEOUT), 0);
    assert_int_equal(f->fx.pub.seqs[f->fx.pub.n_acked - 1], acked + 1);
    assert_int_equal(fu_publish(&f->fx.pub, "again", 0, S_TIMEOUT), 0);
    assert_int_equal(f->fx.pub.seqs[f->fx.pub.n_acked - 1], acked + 2);
    assert_int_equal(ph_stats_fetch(f->fx.d.api, &st), 0);
    assert_int_equal(du_stat(&st, "store_error"), 0);
    assert_int_equal(du_stat(&st, "store_queued"), 0);
    assert_int_equal(du_stat(&st, "duplicates"), 1);
    s_expect_ping(f, "ok");
    assert_int_equal(du_stat(&st, "tree_size"), acked + 2);
    if (f->mounted)
        assert_true(fu_wait_log(&f->fx.d, "tree.hashes is written again",
                                S_TIMEOUT));
    assert_true(s_feed_until(f, acked + 2, 0, S_TIMEOUT));

    /* Full again, up to a refusal; then killed. */
    s_fill(f);
    s_publish_until_refused(f, "full again", env, &len);
    ph_daemon_kill9(&f->fx.d);

    /* Still full: refused, before it ever answers. */
    s_still_full(f, true);
    assert_int_equal(s_start(f, true), -ECHILD);
    assert_true(fu_log_has(&f->fx.d, "cannot keep 262144 bytes free for the "
                                     "log"));
    /* Without a reserve it starts, and answers unavailable. */
    s_still_full(f, false);
    assert_int_equal(du_config_write(f->config, "disk_reserve 0\n"
                                                "segment_bytes 64K\n"
                                                "rate_limit 0\n"),
                     0);
    assert_int_equal(s_start(f, true), 0);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 100; i++) /* what still fits is kept */
        rc = fu_publish(&f->fx.pub, "no reserve", i, S_PUB_TIMEOUT);
    assert_int_equal(rc, PARLEY_EUNAVAILABLE);
    assert_non_null(strstr(f->fx.pub.message, strerror(ENOSPC)));
    s_expect_ping(f, "store_error");
    ph_daemon_kill9(&f->fx.d);

    /* Space again: every acked update, nothing else, and on it goes. */
    s_free(f);
    assert_int_equal(du_config_write(f->config, S_CONF), 0);
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
