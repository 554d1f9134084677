/*
 * test_torn.c - issue 3, acceptance 2, with the real daemon: a torn tail
 * is cut and the daemon starts; damage in the middle stops it.
 *
 * Torn tail. parleyd takes N = 6 updates and stops cleanly. For every
 * byte offset k of the last record (0 <= k < its size), the test puts
 * back the segment cut to (start of the last record + k) bytes, as a
 * crash in the middle of its write would leave it, and starts parleyd on
 * it. Each time parleyd must start; log "torn tail in <segment> at offset
 * <start of the last record>" with "cut k bytes" (k > 0; at k = 0 the file
 * simply ends after record N-1 and nothing is cut); report k in the stats
 * counter store_truncated_bytes; replay records 1..N-1 byte for byte as
 * they were published; take a new update as seq N; and stop with status
 * 0. The daemon runs with fsync on, as in production; it is restarted on
 * the same ports each time, which keeps the ~250 starts to a few seconds.
 *
 * Damage in the middle. With 64 KiB segments and ~700 updates the log
 * has several segment files. One bit is flipped at a time, each time on
 * a fresh copy of the log, in: the payload of a record in the middle of
 * the first segment; the length, checksum and seq fields and the payload
 * of records in the middle of the newest segment; the last record of an
 * older segment. Each time parleyd must refuse to start (exit status 1,
 * not a crash) with a message on stderr naming the segment file and the
 * byte offset of the damaged record, and must leave the files as they
 * were. Finally the recovery of docs/operations.md (keep the first
 * OFFSET bytes of the named segment) is followed and the daemon starts
 * with every record before the damaged one.
 */
#include "dur_util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define S_TIMEOUT 5000
#define S_TAIL_N 6          /* updates in the torn-tail log */
#define S_MID_N 700         /* updates in the multi-segment log */
#define S_SEGS_MAX 64
/* Record header on disk (docs/operations.md, "The log on disk"): u32
 * length, u32 crc32c, u64 seq, i64 received_at. */
#define S_HEADER 24

typedef struct s_seg {
    char name[64];          /* seg-<20 digits>.log */
    uint8_t *data;          /* pristine contents */
    size_t len;
    size_t n_recs;
    size_t rec_off[1024];   /* start of each record */
} s_seg_t;

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    char config[PH_PATH_MAX];
    ph_key_t key;
    ph_daemon_t daemon;
    uint8_t **envs;          /* what was published, by seq - 1 */
    size_t *lens;
    size_t n_envs;
    s_seg_t segs[S_SEGS_MAX];
    size_t n_segs;
    bool test_ok;
} s_state_t;

/* ------------------------------------------------------------- helpers */

/* Publish n updates through the library, acked as seqs 1..n. */
static void
s_publish(s_state_t *st, size_t n)
{
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL, 0);
    assert_non_null(pub);
    st->envs = calloc(n, sizeof(*st->envs));
    st->lens = calloc(n, sizeof(*st->lens));
    assert_non_null(st->envs);
    assert_non_null(st->lens);
    for (size_t i = 0; i < n; i++) {
        uint8_t env[PARLEY_ENVELOPE_MAX];
        char headline[128];
        snprintf(headline, sizeof(headline),
                 "Mediators report progress on the exchange, update %zu", i);
        assert_int_equal(du_sign(&st->key, i % 2 ? "hamas" : "israel",
                                 headline, ph_next_signer_seq(), env,
                                 sizeof(env), &st->lens[i]),
                         0);
        st->envs[i] = malloc(st->lens[i]);
        assert_non_null(st->envs[i]);
        memcpy(st->envs[i], env, st->lens[i]);
        uint64_t rid, seq = 0;
        int dup = 0;
        int rc = parley_pub_send(pub, env, st->lens[i], &rid);
        if (rc == 0)
            rc = ph_recv(pub, S_TIMEOUT, &rid, &seq, &dup);
        if (rc != 0 || seq != i + 1)
            fail_msg("publish %zu: %s (seq %" PRIu64 ")", i,
                     parley_error_name(rc), seq);
        st->n_envs = i + 1;
    }
    parley_pub_destroy(&pub);
}

static uint32_t
s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
           | (uint32_t)p[3] << 24;
}

static int
s_cmp_seg(const void *a, const void *b)
{
    return strcmp(((const s_seg_t *)a)->name, ((const s_seg_t *)b)->name);
}

/* Read every segment of the stopped daemon's log and find its records. */
static void
s_snapshot_segments(s_state_t *st)
{
    DIR *d = opendir(st->daemon.state_dir);
    assert_non_null(d);
    struct dirent *e;
    st->n_segs = 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seg-", 4) != 0)
            continue;
        assert_true(st->n_segs < S_SEGS_MAX);
        s_seg_t *s = &st->segs[st->n_segs++];
        if (strlen(e->d_name) >= sizeof(s->name))
            fail_msg("unexpected file %s", e->d_name);
        memcpy(s->name, e->d_name, strlen(e->d_name) + 1);
    }
    closedir(d);
    qsort(st->segs, st->n_segs, sizeof(s_seg_t), s_cmp_seg);
    size_t total = 0;
    for (size_t i = 0; i < st->n_segs; i++) {
        s_seg_t *s = &st->segs[i];
        char path[PH_PATH_MAX];
        assert_int_equal(ph_path(path, sizeof(path), st->daemon.state_dir,
                                 s->name), 0);
        s->data = (uint8_t *)ph_file_read(path, &s->len);
        assert_non_null(s->data);
        size_t off = 0;
        while (off + S_HEADER < s->len) {
            assert_true(s->n_recs < 1024);
            s->rec_off[s->n_recs++] = off;
            off += S_HEADER + s_le32(s->data + off);
        }
        if (off != s->len)
            fail_msg("%s: records end at %zu but the file has %zu bytes",
                     s->name, off, s->len);
        total += s->n_recs;
    }
    if (total != st->n_envs)
        fail_msg("the segments hold %zu records, %zu were published", total,
                 st->n_envs);
}

/* Replace the log in the state directory by the pristine segments. */
static void
s_restore_segments(s_state_t *st)
{
    for (size_t i = 0; i < st->n_segs; i++) {
        char path[PH_PATH_MAX];
        assert_int_equal(ph_path(path, sizeof(path), st->daemon.state_dir,
                                 st->segs[i].name), 0);
        assert_int_equal(ph_file_write(path, st->segs[i].data, st->segs[i].len,
                                       0600), 0);
    }
}

/* Replay the log: records 1..n must be the published bytes. */
static void
s_expect_log(s_state_t *st, size_t n, const char *when)
{
    du_log_t log = { 0 };
    int rc = du_replay_all(st->daemon.api, 1, &log);
    if (rc != 0)
        fail_msg("%s: replay failed: %s", when, parley_error_name(rc));
    if (!du_log_gapless(&log) || log.n != n) {
        size_t got = log.n;
        du_log_free(&log);
        fail_msg("%s: replay returned %zu records, expected 1..%zu", when,
                 got, n);
    }
    for (size_t i = 0; i < n; i++)
        if (log.r[i].len != st->lens[i]
            || memcmp(log.r[i].env, st->envs[i], st->lens[i]) != 0) {
            du_log_free(&log);
            fail_msg("%s: seq %zu differs from the update published", when,
                     i + 1);
        }
    du_log_free(&log);
}

/* A new update must be acked with exactly this seq. */
static void
s_expect_next(s_state_t *st, uint64_t want, const char *when)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;
    ph_api_t a;
    parley__reply_t r;
    char d[256];
    assert_int_equal(du_sign(&st->key, "egypt", "after recovery",
                             ph_next_signer_seq(), env, sizeof(env), &len),
                     0);
    assert_int_equal(ph_api_open(&a, st->daemon.api), 0);
    int rc = ph_api_publish(&a, env, len, S_TIMEOUT, &r, NULL);
    if (rc != 0 || r.type != PARLEY__REPLY_ACK || r.seq != want
        || r.duplicate) {
        if (rc == 0)
            ph_reply_describe(&r, d, sizeof(d));
        else
            snprintf(d, sizeof(d), "%s", parley_error_name(rc));
        ph_api_close(&a);
        fail_msg("%s: a new update got %s, expected ack seq=%" PRIu64, when,
                 d, want);
    }
    ph_api_close(&a);
}

/* ------------------------------------------------------------ fixtures */

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    *state = st;
    char ring[1024] = "";
    if (ph_key_make(&st->key, st->dir, "mediator", 0x54) != 0
        || ph_keyring_add(ring, sizeof(ring), &st->key, "*", "*", "*") != 0
        || ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_file_write(st->keyring, ring, strlen(ring), 0644) != 0
        || ph_path(st->config, sizeof(st->config), st->dir, "parleyd.conf")
               != 0
        || du_config_write(st->config, "fsync on\nsegment_bytes 64K\n") != 0)
        return -1;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    if (st == NULL)
        return 0;
    ph_daemon_teardown(&st->daemon, st->test_ok);
    for (size_t i = 0; i < st->n_envs; i++)
        free(st->envs[i]);
    free(st->envs);
    free(st->lens);
    for (size_t i = 0; i < st->n_segs; i++)
        free(st->segs[i].data);
    ph_key_free(&st->key);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

/*
 * Start parleyd on the test's directory with its config: on new ports the
 * first time, on the same ones after that (quicker to wait for).
 */
static void
s_start(s_state_t *st, const char *when)
{
    const char *extra[] = { "-c", st->config, NULL };
    /* A fresh daemon log each time, so the checks see only this start. */
    char log[PH_PATH_MAX];
    assert_int_equal(ph_path(log, sizeof(log), st->dir, "parleyd.log"), 0);
    (void)unlink(log);
    int rc = st->daemon.api_port == 0
                 ? ph_daemon_start(&st->daemon, st->dir, st->keyring, extra)
                 : ph_daemon_restart(&st->daemon, st->keyring, extra);
    if (rc != 0)
        fail_msg("%s: parleyd did not start (log above)", when);
}

static void
s_stop(s_state_t *st, const char *when)
{
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0) {
        ph_daemon_dump_log(&st->daemon);
        fail_msg("%s: parleyd exit status after SIGTERM: %d (expected 0)",
                 when, status);
    }
}

/* --------------------------------------------------------------- tests */

static void
test_torn_tail_every_offset(void **state)
{
    s_state_t *st = *state;
    s_start(st, "first start");
    s_publish(st, S_TAIL_N);
    s_stop(st, "after publishing");
    s_snapshot_segments(st);
    assert_int_equal(st->n_segs, 1);
    const s_seg_t *seg = &st->segs[0];
    size_t last = seg->rec_off[seg->n_recs - 1];
    size_t rec_len = seg->len - last;
    char path[PH_PATH_MAX];
    assert_int_equal(ph_path(path, sizeof(path), st->daemon.state_dir,
                             seg->name), 0);
    char want_torn[PH_PATH_MAX + 64];
    snprintf(want_torn, sizeof(want_torn), "torn tail in %s at offset %zu",
             path, last);

    int64_t t0 = parley__mono_ms();
    for (size_t k = 0; k < rec_len; k++) {
        char when[96];
        snprintf(when, sizeof(when), "last record (%zu bytes) cut to %zu",
                 rec_len, k);
        assert_int_equal(ph_file_write(path, seg->data, last + k, 0600), 0);
        s_start(st, when);

        char *log = ph_file_read(st->daemon.log_path, NULL);
        assert_non_null(log);
        const char *torn = strstr(log, want_torn);
        char cut[64];
        snprintf(cut, sizeof(cut), "cut %zu bytes", k);
        bool ok = k == 0 ? strstr(log, "torn tail") == NULL
                         : torn != NULL && strstr(torn, cut) != NULL;
        free(log);
        if (!ok) {
            ph_daemon_dump_log(&st->daemon);
            if (k == 0)
                fail_msg("%s: a log ending on a record boundary was reported "
                         "as torn", when);
            fail_msg("%s: the daemon log lacks \"%s ... %s\"", when,
                     want_torn, cut);
        }
        ph_stats_t stats;
        assert_int_equal(ph_stats_fetch(st->daemon.api, &stats), 0);
        if (du_stat(&stats, "store_truncated_bytes") != k
            || du_stat(&stats, "seq") != S_TAIL_N - 1)
            fail_msg("%s: stats store_truncated_bytes %" PRIu64 " (expected "
                     "%zu), seq %" PRIu64 " (expected %d)", when,
                     du_stat(&stats, "store_truncated_bytes"), k,
                     du_stat(&stats, "seq"), S_TAIL_N - 1);
        s_expect_log(st, S_TAIL_N - 1, when);
        s_expect_next(st, S_TAIL_N, when);
        s_stop(st, when);
    }
    printf("[torn] last record of %zu bytes cut at each of its %zu offsets: "
           "parleyd started, cut it, kept seqs 1..%d and gave the next update "
           "seq %d each time (%.1f s)\n",
           rec_len, rec_len, S_TAIL_N - 1, S_TAIL_N,
           (double)(parley__mono_ms() - t0) / 1000.0);
    st->test_ok = true;
}

/*
 * Flip one bit of segment si at byte off (pristine copy), start parleyd,
 * and expect a refusal naming the segment and rec_off.
 */
static void
s_flip_refused(s_state_t *st, size_t si, size_t off, int bit, size_t rec_off,
               const char *what)
{
    s_restore_segments(st);
    const s_seg_t *seg = &st->segs[si];
    char path[PH_PATH_MAX];
    assert_int_equal(ph_path(path, sizeof(path), st->daemon.state_dir,
                             seg->name), 0);
    uint8_t *bad = malloc(seg->len);
    assert_non_null(bad);
    memcpy(bad, seg->data, seg->len);
    bad[off] ^= (uint8_t)(1u << bit);
    assert_int_equal(ph_file_write(path, bad, seg->len, 0600), 0);

    char api[PH_EP_MAX], feed[PH_EP_MAX];
    ph_endpoint(api, ph_free_port());
    ph_endpoint(feed, ph_free_port());
    const char *argv[] = { PARLEYD_BIN, "--api", api, "--feed", feed,
                           "--state-dir", st->daemon.state_dir, "--keyring",
                           st->keyring, "-c", st->config, NULL };
    ph_proc_t p = PH_PROC_INIT;
    int rc = ph_run(&p, argv, NULL, NULL, NULL, 10000);
    char want[PH_PATH_MAX + 64];
    snprintf(want, sizeof(want), "corrupt record in %s at offset %zu", path,
             rec_off);
    bool ok = rc == 0 && !p.timed_out && p.status == 1
              && strstr(p.err, want) != NULL;
    if (!ok) {
        ph_proc_report(&p, what);
        ph_proc_free(&p);
        free(bad);
        fail_msg("%s: expected parleyd to exit 1 with \"%s\" on stderr", what,
                 want);
    }
    /* The message must also say what to do. */
    if (strstr(p.err, "docs/operations.md") == NULL) {
        ph_proc_report(&p, what);
        ph_proc_free(&p);
        free(bad);
        fail_msg("%s: the refusal does not point to the recovery procedure",
                 what);
    }
    char *line = strstr(p.err, "corrupt record");
    char *nl = line != NULL ? strchr(line, '\n') : NULL;
    printf("[torn] %s: refused: %.*s\n", what,
           nl != NULL ? (int)(nl - line) : 200, line);
    ph_proc_free(&p);
    /* Nothing repaired behind the operator's back. */
    size_t len = 0;
    char *now = ph_file_read(path, &len);
    bool same = now != NULL && len == seg->len && memcmp(now, bad, len) == 0;
    free(now);
    free(bad);
    if (!same)
        fail_msg("%s: parleyd changed %s while refusing to start", what, path);
}

static void
test_damage_in_the_middle(void **state)
{
    s_state_t *st = *state;
    s_start(st, "first start");
    s_publish(st, S_MID_N);
    s_stop(st, "after publishing");
    s_snapshot_segments(st);
    if (st->n_segs < 3)
        fail_msg("%zu updates made only %zu segments; the test needs 3",
                 (size_t)S_MID_N, st->n_segs);
    size_t first = 0, newest = st->n_segs - 1;
    const s_seg_t *a = &st->segs[first], *z = &st->segs[newest];
    size_t am = a->rec_off[a->n_recs / 2];
    size_t zm = z->rec_off[z->n_recs / 2];
    size_t a_last = a->rec_off[a->n_recs - 1];

    s_flip_refused(st, first, am + S_HEADER + 40, 3, am,
                   "payload bit in the middle of the first segment");
    s_flip_refused(st, newest, zm + 1, 0, zm,
                   "length bit in the middle of the newest segment");
    s_flip_refused(st, newest, zm + 6, 5, zm,
                   "checksum bit in the middle of the newest segment");
    s_flip_refused(st, newest, zm + 8, 0, zm,
                   "seq bit in the middle of the newest segment");
    s_flip_refused(st, newest, zm + S_HEADER + 7, 7, zm,
                   "payload bit in the middle of the newest segment");
    s_flip_refused(st, newest, z->rec_off[0] + S_HEADER + 20, 1,
                   z->rec_off[0], "payload bit in the first record of the "
                   "newest segment");
    s_flip_refused(st, first, a_last + S_HEADER + 30, 2, a_last,
                   "payload bit in the last record of an older segment");

    /* The documented recovery: keep the first OFFSET bytes of the named
     * segment (here the newest, damaged at zm), start again. */
    s_restore_segments(st);
    char path[PH_PATH_MAX];
    assert_int_equal(ph_path(path, sizeof(path), st->daemon.state_dir,
                             z->name), 0);
    assert_int_equal(ph_file_write(path, z->data, zm, 0600), 0);
    s_start(st, "after the documented recovery");
    size_t kept = 0;
    for (size_t i = 0; i < newest; i++)
        kept += st->segs[i].n_recs;
    kept += z->n_recs / 2;
    s_expect_log(st, kept, "after the documented recovery");
    s_expect_next(st, kept + 1, "after the documented recovery");
    s_stop(st, "after the documented recovery");
    printf("[torn] %zu segments; after keeping the first %zu bytes of %s the "
           "daemon serves seqs 1..%zu\n", st->n_segs, zm, z->name, kept);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_damage_in_the_middle, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
