/*
 * test_tree.c - the Merkle tree hash store with real files and fsync: the
 * on-disk format, roots and proofs against a memory tree, the start-up
 * check driven by a real pd_store scan (as the daemon will), recovery
 * after a kill -9 between the log's sync and the tree's, torn tails cut at
 * every byte, hashes beyond the log, a refused start on a mismatched hash
 * (with its byte offset), retention, header damage, and errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tmpdir.h"
#include "crc32c.h"
#include "log.h"
#include "store.h"
#include "tree.h"

#define HDR PD_TREE_HEADER_BYTES

typedef struct fixture {
    char dir[128];  /* the temporary state directory */
    char path[192]; /* its tree.hashes */
} fixture_t;

/* --- helpers -------------------------------------------------------------- */

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_tmpdir_make(f->dir, sizeof(f->dir), "parley-tree-") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, PD_TREE_FILE);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Record payload for seq: 20..120 bytes, different for every seq. */
static size_t
s_record(uint64_t seq, uint8_t *buf)
{
    size_t len = 20 + (size_t)(seq * 37 % 101);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 131 + i * 7 + 3);
    return len;
}

static uint64_t
s_file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Change one byte of a file. */
static void
s_poke(const char *path, uint64_t off, uint8_t xor)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= xor;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* A memory tree of records 1..n, the reference for roots and proofs. */
static void
s_reference(parley__tlog_mem_t *m, uint64_t n)
{
    parley__tlog_mem_init(m);
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(parley__tlog_mem_append(m, rec, len), 0);
    }
}

/* Every root and a spread of proofs of the tree equal the reference's. */
static void
s_matches_reference(pd_tree_t *t, uint64_t n)
{
    parley__tlog_mem_t m;
    s_reference(&m, n);
    assert_int_equal(pd_tree_size(t), n);
    for (uint64_t size = 0; size <= n; size++) {
        parley__tlog_hash_t a, b;
        assert_int_equal(pd_tree_root(t, size, &a), 0);
        assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, size, &b), 0);
        assert_memory_equal(a.b, b.b, 32);
    }
    for (uint64_t size = 1; size <= n; size += 1 + size / 3) {
        for (uint64_t i = 0; i < size; i += 1 + size / 5) {
            parley__tlog_proof_t p, q;
            assert_int_equal(pd_tree_prove(t, PARLEY__TLOG_INCLUSION, i, size, &p), 0);
            assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m,
                                                PARLEY__TLOG_INCLUSION, i, size, &q),
                             0);
            assert_int_equal(p.count, q.count);
            assert_memory_equal(p.path, q.path, p.count * 32);
            assert_int_equal(pd_tree_prove(t, PARLEY__TLOG_CONSISTENCY, i + 1, size, &p),
                             0);
            assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m,
                                                PARLEY__TLOG_CONSISTENCY, i + 1, size,
                                                &q),
                             0);
            assert_int_equal(p.count, q.count);
            assert_memory_equal(p.path, q.path, p.count * 32);
        }
    }
    parley__tlog_mem_clear(&m);
}

/* What the daemon's scan callback will do: hand each record to the tree,
 * keeping the tree's message (the store writes its own over errbuf). */
typedef struct scan_ctx {
    pd_tree_t *tree;
    char msg[512];
    uint64_t records; /* records seen */
} scan_ctx_t;

static int
s_scan(void *ctx, uint64_t seq, int64_t received_at, const uint8_t *payload,
       size_t len)
{
    (void)received_at;
    scan_ctx_t *c = ctx;
    c->records++;
    return pd_tree_check(c->tree, seq, payload, len, c->msg, sizeof(c->msg));
}

/*
 * The start-up sequence: the tree, then the log with the tree checking
 * each record, then recovery. On success *store and *tree are open;
 * otherwise both are NULL, the error is returned and msg says why.
 */
static int
s_start(const fixture_t *f, const pd_store_opts_t *so, pd_store_t **store,
        pd_tree_t **tree, char *msg, size_t cap)
{
    int err = 0;
    pd_tree_opts_t to = {.sync = so != NULL ? so->sync : false};
    msg[0] = '\0';
    *store = NULL;
    *tree = pd_tree_open(f->dir, &to, msg, cap, &err);
    if (*tree == NULL)
        return err;
    scan_ctx_t c = {.tree = *tree};
    char storemsg[512];
    *store = pd_store_open(f->dir, so, s_scan, &c, storemsg, sizeof(storemsg), &err);
    if (*store == NULL) {
        snprintf(msg, cap, "%s", c.msg[0] ? c.msg : storemsg);
        pd_tree_close(tree);
        return err;
    }
    err = pd_tree_recover(*tree, pd_store_next_seq(*store) - 1, msg, cap);
    if (err != 0) {
        pd_store_close(store);
        pd_tree_close(tree);
    }
    return err;
}

/* Append records from..to to both and sync both, log first. */
static void
s_append_both(pd_store_t *st, pd_tree_t *t, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_store_append(st, seq, (int64_t)seq, rec, len), 0);
        assert_int_equal(pd_tree_append(t, seq, rec, len), 0);
    }
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_tree_sync(t), 0);
}

/* A log and tree with records 1..n, both closed again. */
static void
s_fill(const fixture_t *f, const pd_store_opts_t *so, uint64_t n)
{
    pd_store_t *st;
    pd_tree_t *t;
    char msg[512];
    assert_int_equal(s_start(f, so, &st, &t, msg, sizeof(msg)), 0);
    s_append_both(st, t, 1, n);
    pd_tree_close(&t);
    pd_store_close(&st);
}

/* A tree alone (no log), recovered empty and filled with records 1..n. */
static pd_tree_t *
s_tree_with(const fixture_t *f, uint64_t n)
{
    char msg[512];
    int err = 1;
    pd_tree_opts_t o = {.sync = true};
    pd_tree_t *t = pd_tree_open(f->dir, &o, msg, sizeof(msg), &err);
    assert_non_null(t);
    assert_int_equal(pd_tree_recover(t, 0, msg, sizeof(msg)), 0);
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_tree_append(t, seq, rec, len), 0);
    }
    assert_int_equal(pd_tree_sync(t), 0);
    return t;
}

/* Reopen a tree and check records from..to against it, then recover with
 * records = to. Returns the first error, message in msg. */
static int
s_reopen_check(const fixture_t *f, uint64_t from, uint64_t to, pd_tree_t **out,
               char *msg, size_t cap)
{
    int err = 0;
    pd_tree_opts_t o = {.sync = true};
    pd_tree_t *t = pd_tree_open(f->dir, &o, msg, cap, &err);
    if (t == NULL)
        return err;
    for (uint64_t seq = from; seq <= to && from > 0; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        if ((err = pd_tree_check(t, seq, rec, len, msg, cap)) != 0)
            goto done;
    }
    err = pd_tree_recover(t, to, msg, cap);
done:
    if (err != 0)
        pd_tree_close(&t);
    *out = t;
    return err;
}

/* --- tests ---------------------------------------------------------------- */

/* The file: header bytes as documented, then the stored hashes of the
 * memory tree in stored order; roots and proofs agree with the reference. */
static void
test_format_and_reads(void **state)
{
    fixture_t *f = *state;
    enum { N = 100 };
    pd_tree_t *t = s_tree_with(f, N);
    s_matches_reference(t, N);
    pd_tree_stats_t st;
    pd_tree_get_stats(t, &st);
    assert_int_equal(st.leaves, N);
    assert_int_equal(st.syncs, 1);
    pd_tree_close(&t);
    assert_null(t);

    uint64_t nh = parley__tlog_stored_count(N);
    assert_int_equal(s_file_size(f->path), HDR + 32 * nh);
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    uint8_t h[HDR];
    assert_int_equal(fread(h, 1, HDR, fp), HDR);
    assert_memory_equal(h, "PARLEYMT", 8);
    const uint8_t fields[] = { 1, 0, 0, 0, 64, 0, 0, 0, 32, 0, 0, 0, 1, 0, 0, 0 };
    assert_memory_equal(h + 8, fields, sizeof(fields));
    for (int i = 24; i < 60; i++)
        assert_int_equal(h[i], 0); /* no absent records, reserved */
    assert_int_equal(pd_crc32c(0, h, 60),
                     h[60] | h[61] << 8 | h[62] << 16 | (uint32_t)h[63] << 24);
    parley__tlog_mem_t m;
    s_reference(&m, N);
    assert_int_equal(m.len, nh);
    for (uint64_t i = 0; i < nh; i++) {
        uint8_t hash[32];
        assert_int_equal(fread(hash, 1, 32, fp), 32);
        assert_memory_equal(hash, m.hashes[i].b, 32);
    }
    fclose(fp);
    parley__tlog_mem_clear(&m);

    /* A reopen that checks every record finds it all in place. */
    char msg[512];
    assert_int_equal(s_reopen_check(f, 1, N, &t, msg, sizeof(msg)), 0);
    pd_tree_get_stats(t, &st);
    assert_int_equal(st.checked, N);
    assert_int_equal(st.recomputed, 0);
    assert_int_equal(st.truncated_bytes, 0);
    s_matches_reference(t, N);
    pd_tree_close(&t);
}

/* The start-up sequence with a real log: appends through both, reopen,
 * every record re-checked, more appends, the same tree as the reference. */
static void
test_with_store(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t so = {.sync = true, .segment_bytes = 4096};
    pd_store_t *st;
    pd_tree_t *t;
    char msg[512];
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    assert_int_equal(pd_tree_size(t), 0);
    s_append_both(st, t, 1, 150);
    s_append_both(st, t, 151, 151);
    pd_tree_close(&t);
    pd_store_close(&st);

    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.checked, 151);
    assert_int_equal(ts.recomputed, 0);
    s_append_both(st, t, 152, 200);
    s_matches_reference(t, 200);
    pd_tree_close(&t);
    pd_store_close(&st);
}

/*
 * A crash (SIGKILL) after the log's sync and before the tree's: the
 * records are durable, their hashes are not. The next start recomputes
 * them from the log.
 */
static void
test_kill_between_syncs(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t so = {.sync = true};
    pd_store_t *st;
    pd_tree_t *t;
    char msg[512];
    s_fill(f, &so, 40);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (s_start(f, &so, &st, &t, msg, sizeof(msg)) != 0)
            _exit(1);
        for (uint64_t seq = 41; seq <= 70; seq++) {
            uint8_t rec[128];
            size_t len = s_record(seq, rec);
            if (pd_store_append(st, seq, 0, rec, len) != 0 ||
                pd_tree_append(t, seq, rec, len) != 0)
                _exit(1);
        }
        if (pd_store_sync(st) != 0)
            _exit(1);
        raise(SIGKILL); /* before pd_tree_sync() */
        _exit(1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(s_file_size(f->path), HDR + 32 * parley__tlog_stored_count(40));

    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.checked, 40);
    assert_int_equal(ts.recomputed, 30);
    assert_int_equal(ts.syncs, 1);
    assert_int_equal(s_file_size(f->path), HDR + 32 * parley__tlog_stored_count(70));
    s_matches_reference(t, 70);
    pd_tree_close(&t);
    pd_store_close(&st);
}

/* A torn tail cut at every byte of the last groups: the start cuts the
 * partial group, recomputes the rest, and ends with the right tree. */
static void
test_torn_tail_every_byte(void **state)
{
    fixture_t *f = *state;
    enum { N = 24 };
    pd_tree_t *t = s_tree_with(f, N);
    pd_tree_close(&t);
    const uint64_t full = s_file_size(f->path);
    uint8_t *copy = malloc(full);
    assert_non_null(copy);
    FILE *fp = fopen(f->path, "rb");
    assert_int_equal(fread(copy, 1, full, fp), full);
    fclose(fp);

    const uint64_t from = HDR + 32 * parley__tlog_stored_count(N - 9);
    for (uint64_t cut = from; cut <= full; cut++) {
        fp = fopen(f->path, "wb");
        assert_int_equal(fwrite(copy, 1, cut, fp), cut);
        fclose(fp);
        uint64_t whole = parley__tlog_stored_leaves((cut - HDR) / 32);
        char msg[512];
        assert_int_equal(s_reopen_check(f, 1, N, &t, msg, sizeof(msg)), 0);
        pd_tree_stats_t ts;
        pd_tree_get_stats(t, &ts);
        assert_int_equal(ts.checked, whole);
        assert_int_equal(ts.recomputed, N - whole);
        assert_int_equal(ts.truncated_bytes, cut - (HDR + 32 * parley__tlog_stored_count(whole)));
        assert_int_equal(s_file_size(f->path), full);
        parley__tlog_hash_t root;
        assert_int_equal(pd_tree_root(t, N, &root), 0);
        pd_tree_close(&t);
    }
    /* Back to whole, the bytes are the original ones. */
    fp = fopen(f->path, "rb");
    uint8_t *now = malloc(full);
    assert_non_null(now);
    assert_int_equal(fread(now, 1, full, fp), full);
    fclose(fp);
    assert_memory_equal(now, copy, full);
    free(now);
    free(copy);
}

/*
 * A crash during the tree's write after the file grew: the blocks the
 * file system allocated but never wrote read as zeros. That is a torn
 * tail, not damage: the start cuts it and recomputes, even when later
 * blocks of the same write did land.
 */
static void
test_zero_filled_tail(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t so = {.sync = true};
    pd_store_t *st;
    pd_tree_t *t;
    char msg[512];
    s_fill(f, &so, 30);
    const uint64_t full = s_file_size(f->path);
    /* Leaves 21..30: the group of 21 written, then zeros, then the last
     * group of the write (leaf 30's) on disk again. */
    const uint64_t from = HDR + 32 * parley__tlog_stored_count(21);
    const uint64_t last = HDR + 32 * parley__tlog_stored_count(29);
    uint8_t *tail = malloc(full - last);
    assert_non_null(tail);
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, tail, full - last, (off_t)last), (ssize_t)(full - last));
    assert_int_equal(ftruncate(fd, (off_t)from), 0);
    assert_int_equal(ftruncate(fd, (off_t)full), 0); /* zeros */
    assert_int_equal(pwrite(fd, tail, full - last, (off_t)last), (ssize_t)(full - last));
    close(fd);
    free(tail);

    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.checked, 21);
    assert_int_equal(ts.recomputed, 9);
    assert_int_equal(ts.truncated_bytes, full - from);
    assert_int_equal(s_file_size(f->path), full);
    s_matches_reference(t, 30);
    pd_tree_close(&t);
    pd_store_close(&st);

    /* An interior hash of a group zeroed (leaf 24 completes a subtree of
     * 8): the same, from that group on. */
    const uint64_t g = HDR + 32 * parley__tlog_stored_count(23);
    fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t zeros[32] = {0};
    assert_int_equal(pwrite(fd, zeros, 32, (off_t)(g + 32 * 2)), 32);
    close(fd);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.checked, 23);
    assert_int_equal(ts.recomputed, 7);
    s_matches_reference(t, 30);
    pd_tree_close(&t);
    pd_store_close(&st);
}

/* Hashes for records the log does not have (the log restored from an
 * older copy, or run without sync) are cut, with the bytes counted. */
static void
test_hashes_beyond_log(void **state)
{
    fixture_t *f = *state;
    pd_tree_t *t = s_tree_with(f, 50);
    pd_tree_close(&t);
    /* Garbage after a whole group too: cut with the rest. */
    int fd = open(f->path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "torn", 4), 4);
    close(fd);

    char msg[512];
    assert_int_equal(s_reopen_check(f, 1, 30, &t, msg, sizeof(msg)), 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.checked, 30);
    uint64_t want = HDR + 32 * parley__tlog_stored_count(30);
    assert_int_equal(ts.truncated_bytes,
                     HDR + 32 * parley__tlog_stored_count(50) + 4 - want);
    assert_int_equal(s_file_size(f->path), want);
    /* New records follow on from 30. */
    for (uint64_t seq = 31; seq <= 60; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_tree_append(t, seq, rec, len), 0);
    }
    assert_int_equal(pd_tree_sync(t), 0);
    s_matches_reference(t, 60);
    pd_tree_close(&t);

    /* A log with no records at all: the whole tree goes. */
    assert_int_equal(s_reopen_check(f, 0, 0, &t, msg, sizeof(msg)), 0);
    assert_int_equal(pd_tree_size(t), 0);
    assert_int_equal(s_file_size(f->path), HDR);
    pd_tree_close(&t);
}

/* A stored leaf hash that does not match its record refuses the start,
 * and the message names the seq and the byte offset. */
static void
test_mismatch_refuses_start(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t so = {.sync = true};
    pd_store_t *st;
    pd_tree_t *t;
    char msg[512];
    s_fill(f, &so, 20);
    const uint64_t size = s_file_size(f->path);

    /* Leaf of seq 7 (leaf index 6). */
    uint64_t off = HDR + 32 * parley__tlog_stored_index(0, 6);
    s_poke(f->path, off + 5, 0x40);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), -EBADMSG);
    assert_null(st);
    assert_null(t);
    char want[64];
    snprintf(want, sizeof(want), "byte offset %" PRIu64 " ", off);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, "seq 7 "));
    assert_non_null(strstr(msg, "does not match the record"));
    /* Nothing was changed by the refused start. */
    assert_int_equal(s_file_size(f->path), size);
    s_poke(f->path, off + 5, 0x40);

    /* An interior hash: the subtree over seqs 5-8 (level 2, index 1). */
    off = HDR + 32 * parley__tlog_stored_index(2, 1);
    s_poke(f->path, off, 0x01);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), -EBADMSG);
    snprintf(want, sizeof(want), "byte offset %" PRIu64 " ", off);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, "seqs 5-8"));
    assert_non_null(strstr(msg, "two children"));
    s_poke(f->path, off, 0x01);

    /* A record changed in the log (with its checksum redone by a new
     * append of other bytes at the same seq): here, a fresh log with
     * different records under the old hash file. */
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_close(&t);
    pd_store_close(&st);
    char seg[256];
    snprintf(seg, sizeof(seg), "%s/seg-%020d.log", f->dir, 1);
    assert_int_equal(unlink(seg), 0);
    st = pd_store_open(f->dir, &so, NULL, NULL, msg, sizeof(msg), NULL);
    assert_non_null(st);
    uint8_t other[40];
    memset(other, 'x', sizeof(other));
    assert_int_equal(pd_store_append(st, 1, 0, other, sizeof(other)), 0);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), -EBADMSG);
    snprintf(want, sizeof(want), "byte offset %d ", HDR);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, "seq 1 "));
}

/*
 * Retention removed the front segments: the hashes stay, proofs about the
 * removed records still work, the start checks their part by the parents,
 * and damage there is still found where a parent covers it.
 */
static void
test_retention(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t so = {.sync = true, .segment_bytes = 2048, .max_bytes = 6000};
    pd_store_t *st;
    pd_tree_t *t;
    char msg[512];
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    for (uint64_t seq = 1; seq <= 200; seq += 10)
        s_append_both(st, t, seq, seq + 9);
    assert_true(pd_store_retain(st, 0) > 0);
    const uint64_t first = pd_store_first_seq(st);
    assert_true(first > 33);
    pd_tree_close(&t);
    pd_store_close(&st);

    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.unbacked, first - 1);
    assert_int_equal(ts.checked, 200 - (first - 1));
    s_matches_reference(t, 200); /* including proofs for removed records */
    pd_tree_close(&t);
    pd_store_close(&st);

    /* Damage to a removed record's leaf hash shows in its parent. */
    uint64_t off = HDR + 32 * parley__tlog_stored_index(0, 2);
    s_poke(f->path, off, 0x80);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), -EBADMSG);
    assert_non_null(strstr(msg, "seqs 3-4"));
    assert_non_null(strstr(msg, "two children"));
    s_poke(f->path, off, 0x80);

    /* Zeros where the hashes of removed records were: they cannot be
     * recomputed, so the start is refused. */
    int zfd = open(f->path, O_RDWR);
    assert_true(zfd >= 0);
    uint8_t zeros[32] = {0};
    uint8_t keep[32];
    off = HDR + 32 * parley__tlog_stored_index(0, 20);
    assert_int_equal(pread(zfd, keep, 32, (off_t)off), 32);
    assert_int_equal(pwrite(zfd, zeros, 32, (off_t)off), 32);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), -EBADMSG);
    assert_non_null(strstr(msg, "holds the hashes of 20 records"));
    assert_non_null(strstr(msg, "cannot be recomputed"));
    assert_int_equal(pwrite(zfd, keep, 32, (off_t)off), 32);
    close(zfd);

    /* A hash file that lacks the leaves of removed records cannot be
     * rebuilt: cut it to 10 leaves and the start is refused. */
    assert_int_equal(truncate(f->path, (off_t)(HDR + 32 * parley__tlog_stored_count(10))),
                     0);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), -EBADMSG);
    assert_non_null(strstr(msg, "cannot be recomputed"));
    char want[64];
    snprintf(want, sizeof(want), "seqs 11-%" PRIu64, first - 1);
    assert_non_null(strstr(msg, want));
    /* Nor can a missing one: the operator is told what to do. */
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), -EBADMSG);
    assert_non_null(strstr(msg, "cannot be recomputed"));
    assert_non_null(strstr(msg, "tree_absent_front on"));
}

/* The records of seqs 1..n in a log only, with retention having removed
 * the front: first is the first seq still held. */
static uint64_t
s_log_without_front(const fixture_t *f, const pd_store_opts_t *so, uint64_t n)
{
    pd_store_t *st = pd_store_open(f->dir, so, NULL, NULL, NULL, 0, NULL);
    assert_non_null(st);
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_store_append(st, seq, 0, rec, len), 0);
        if (seq % 10 == 0)
            assert_int_equal(pd_store_sync(st), 0);
    }
    assert_int_equal(pd_store_sync(st), 0);
    assert_true(pd_store_retain(st, 0) > 0);
    uint64_t first = pd_store_first_seq(st);
    pd_store_close(&st);
    return first;
}

/* The start-up sequence with the operator's upgrade choice. */
static int
s_start_absent(const fixture_t *f, const pd_store_opts_t *so, bool absent_front,
               pd_store_t **store, pd_tree_t **tree, char *msg, size_t cap)
{
    int err = 0;
    pd_tree_opts_t to = {.sync = true, .absent_front = absent_front};
    *tree = pd_tree_open(f->dir, &to, msg, cap, &err);
    assert_non_null(*tree);
    scan_ctx_t c = {.tree = *tree};
    char storemsg[512];
    *store = pd_store_open(f->dir, so, s_scan, &c, storemsg, sizeof(storemsg), &err);
    if (*store == NULL) {
        snprintf(msg, cap, "%s", c.msg[0] ? c.msg : storemsg);
        pd_tree_close(tree);
        return err;
    }
    err = pd_tree_recover(*tree, pd_store_next_seq(*store) - 1, msg, cap);
    if (err != 0) {
        pd_store_close(store);
        pd_tree_close(tree);
    }
    return err;
}

/*
 * A log older than its tree (retention removed its front before parley
 * kept a tree): refused unless the operator says so; then the tree starts
 * with absent-record leaves for the seqs gone, leaf index = seq - 1 still,
 * and the next start checks those leaves like the others. A log restored
 * with records the tree has as absent is refused.
 */
static void
test_absent_front(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t so = {.sync = true, .segment_bytes = 2048, .max_bytes = 6000};
    const uint64_t first = s_log_without_front(f, &so, 120);
    assert_true(first > 20);
    pd_store_t *st;
    pd_tree_t *t;
    char msg[512];
    assert_int_equal(s_start_absent(f, &so, false, &st, &t, msg, sizeof(msg)),
                     -EBADMSG);
    assert_non_null(strstr(msg, "tree_absent_front on"));

    assert_int_equal(s_start_absent(f, &so, true, &st, &t, msg, sizeof(msg)), 0);
    assert_int_equal(pd_tree_absent_before(t), first);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.absent, first - 1);
    assert_int_equal(ts.recomputed, 120 - (first - 1));
    /* The reference: absent-record leaves, then the records held. */
    parley__tlog_mem_t m;
    parley__tlog_mem_init(&m);
    for (uint64_t seq = 1; seq <= 120; seq++) {
        parley__tlog_hash_t leaf;
        uint8_t rec[128];
        if (seq < first)
            parley__tlog_absent_leaf(seq, &leaf);
        else
            parley__tlog_leaf_hash(rec, s_record(seq, rec), &leaf);
        assert_int_equal(parley__tlog_mem_append_hash(&m, &leaf), 0);
    }
    parley__tlog_hash_t a, b;
    assert_int_equal(pd_tree_root(t, 120, &a), 0);
    parley__tlog_range_root(&m.range, &b);
    assert_memory_equal(a.b, b.b, 32);
    /* The absent leaf's bytes as documented. */
    uint8_t rec[64];
    size_t n = sizeof(PARLEY__TLOG_ABSENT_PREFIX);
    memcpy(rec, "parley/tlog/absent-record/v1", n);
    memset(rec + n, 0, 7);
    rec[n + 7] = 3;
    parley__tlog_leaf_hash(rec, n + 8, &a);
    assert_memory_equal(a.b, m.hashes[parley__tlog_stored_index(0, 2)].b, 32);
    parley__tlog_mem_clear(&m);
    pd_tree_close(&t);
    pd_store_close(&st);

    /* Checked at the next start, with or without the option. */
    assert_int_equal(s_start_absent(f, &so, false, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.absent, first - 1);
    assert_int_equal(ts.checked, 120 - (first - 1));
    assert_int_equal(ts.recomputed, 0);
    pd_tree_close(&t);
    pd_store_close(&st);
    /* An absent leaf altered is found like any other. */
    uint64_t off = HDR + 32 * parley__tlog_stored_index(0, 4);
    s_poke(f->path, off, 0x02);
    assert_int_equal(s_start_absent(f, &so, false, &st, &t, msg, sizeof(msg)),
                     -EBADMSG);
    assert_non_null(strstr(msg, "seq 5 "));
    assert_non_null(strstr(msg, "absent-record leaf"));
    s_poke(f->path, off, 0x02);
}

/* A log whose records are all gone (recover without a single check). */
static void
test_no_records_held(void **state)
{
    fixture_t *f = *state;
    pd_tree_t *t = s_tree_with(f, 9);
    pd_tree_close(&t);
    char msg[512];
    assert_int_equal(s_reopen_check(f, 0, 9, &t, msg, sizeof(msg)), 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.unbacked, 9);
    s_matches_reference(t, 9);
    pd_tree_close(&t);
    assert_int_equal(s_reopen_check(f, 0, 12, &t, msg, sizeof(msg)), -EBADMSG);
    assert_non_null(strstr(msg, "seqs 10-12"));
}

/* A missing hash file next to a whole log (seq 1 onwards) is rebuilt. */
static void
test_rebuild_from_log(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t so = {.sync = true};
    pd_store_t *st = pd_store_open(f->dir, &so, NULL, NULL, NULL, 0, NULL);
    assert_non_null(st);
    for (uint64_t seq = 1; seq <= 33; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_store_append(st, seq, 0, rec, len), 0);
    }
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    pd_tree_t *t;
    char msg[512];
    assert_int_equal(s_start(f, &so, &st, &t, msg, sizeof(msg)), 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.recomputed, 33);
    s_matches_reference(t, 33);
    pd_tree_close(&t);
    pd_store_close(&st);
}

/* Each header problem refuses the start with a message at offset 0. */
static void
test_header_damage(void **state)
{
    fixture_t *f = *state;
    pd_tree_t *t = s_tree_with(f, 3);
    pd_tree_close(&t);
    static const struct {
        uint64_t off;
        const char *why;
    } cases[] = {
        { 0, "bad magic" },
        { 8, "header checksum mismatch" },
        { 12, "header checksum mismatch" },
        { 29, "header checksum mismatch" },
        { 61, "header checksum mismatch" },
    };
    char msg[512];
    int err;
    pd_tree_opts_t o = {.sync = false};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_poke(f->path, cases[i].off, 0x10);
        err = 0;
        assert_null(pd_tree_open(f->dir, &o, msg, sizeof(msg), &err));
        assert_int_equal(err, -EBADMSG);
        assert_non_null(strstr(msg, cases[i].why));
        assert_non_null(strstr(msg, "at byte offset 0"));
        s_poke(f->path, cases[i].off, 0x10);
    }
    /* A well-formed header of another version or layout. */
    uint8_t h[HDR];
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, h, HDR, 0), HDR);
    const struct {
        uint64_t off;
        uint8_t val;
        const char *why;
    } fields[] = {
        { 8, 2, "unsupported format version" },
        { 12, 32, "unsupported header fields" },
        { 16, 20, "unsupported header fields" },
        { 20, 2, "unsupported header fields" },
        { 40, 1, "unsupported header fields" },
        { 31, 0x80, "absent-record boundary out of range" },
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        uint8_t g[HDR];
        memcpy(g, h, HDR);
        g[fields[i].off] = fields[i].val;
        uint32_t crc = pd_crc32c(0, g, 60);
        for (int k = 0; k < 4; k++)
            g[60 + k] = (uint8_t)(crc >> (8 * k));
        assert_int_equal(pwrite(fd, g, HDR, 0), HDR);
        err = 0;
        assert_null(pd_tree_open(f->dir, &o, msg, sizeof(msg), &err));
        assert_int_equal(err, -EBADMSG);
        assert_non_null(strstr(msg, fields[i].why));
    }
    assert_int_equal(pwrite(fd, h, HDR, 0), HDR);
    /* Shorter than a header. */
    assert_int_equal(ftruncate(fd, 31), 0);
    close(fd);
    err = 0;
    assert_null(pd_tree_open(f->dir, &o, msg, sizeof(msg), &err));
    assert_int_equal(err, -EBADMSG);
    assert_non_null(strstr(msg, "shorter than its header"));
}

/* Misuse and limits: a second opener, calls out of order, sizes beyond
 * the tree, and a failed write that the tree survives: it keeps the
 * hashes in memory and writes them with the next sync that works. */
static void
test_errors(void **state)
{
    fixture_t *f = *state;
    char msg[512];
    int err = 0;
    pd_tree_opts_t o = {.sync = true};
    pd_tree_t *t = pd_tree_open(f->dir, &o, msg, sizeof(msg), &err);
    assert_non_null(t);
    /* One process at a time. */
    pd_tree_t *t2 = pd_tree_open(f->dir, &o, msg, sizeof(msg), &err);
    assert_null(t2);
    assert_int_equal(err, -EBUSY);
    assert_non_null(strstr(msg, "in use"));
    uint8_t rec[128];
    size_t len = s_record(1, rec);
    /* Appends wait for the check to finish. */
    assert_int_equal(pd_tree_append(t, 1, rec, len), -EINVAL);
    assert_int_equal(pd_tree_sync(t), -EINVAL);
    assert_int_equal(pd_tree_check(t, 0, rec, len, msg, sizeof(msg)), -EINVAL);
    assert_int_equal(pd_tree_check(t, 1, rec, len, msg, sizeof(msg)), 0);
    assert_int_equal(pd_tree_check(t, 3, rec, len, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "seq 3 where 2 was expected"));
    assert_int_equal(pd_tree_recover(t, 5, msg, sizeof(msg)), -EINVAL);
    assert_int_equal(pd_tree_recover(t, 1, msg, sizeof(msg)), 0);
    assert_int_equal(pd_tree_recover(t, 1, msg, sizeof(msg)), -EINVAL);
    assert_int_equal(pd_tree_check(t, 2, rec, len, msg, sizeof(msg)), -EINVAL);
    assert_int_equal(pd_tree_append(t, 3, rec, len), -EINVAL);
    assert_int_equal(pd_tree_append(t, 2, NULL, 5), -EINVAL);
    parley__tlog_hash_t h;
    parley__tlog_proof_t p;
    assert_int_equal(pd_tree_root(t, 2, &h), -EINVAL);
    assert_int_equal(pd_tree_prove(t, PARLEY__TLOG_INCLUSION, 0, 2, &p), -EINVAL);
    assert_int_equal(pd_tree_prove(t, PARLEY__TLOG_INCLUSION, 1, 1, &p), -EINVAL);
    assert_int_equal(pd_tree_prove(t, 9, 0, 1, &p), -EINVAL);
    /* Queued, not synced: part of the tree from the append on. */
    len = s_record(2, rec);
    assert_int_equal(pd_tree_append(t, 2, rec, len), 0);
    assert_int_equal(pd_tree_size(t), 2);
    assert_int_equal(pd_tree_synced(t), 1);
    assert_int_equal(pd_tree_root(t, 2, &h), 0);
    assert_int_equal(pd_tree_root(t, 3, &h), -EINVAL);
    assert_int_equal(pd_tree_sync(t), 0);
    assert_int_equal(pd_tree_synced(t), 2);
    assert_int_equal(pd_tree_sync(t), 0); /* nothing queued: no work */
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.syncs, 2); /* recovery (seq 1 recomputed), then seq 2 */

    /* A write that fails (file size limit): the tree goes on from memory,
     * and the next sync that works writes it all. */
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    if (old.rlim_max == RLIM_INFINITY || old.rlim_max >= 4096) {
        void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
        for (uint64_t seq = 3; seq <= 200; seq++) {
            len = s_record(seq, rec);
            assert_int_equal(pd_tree_append(t, seq, rec, len), 0);
        }
        small = old;
        small.rlim_cur = 1000;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        int rc = pd_tree_sync(t);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, prev);
        assert_int_equal(rc, -EFBIG);
        assert_int_equal(pd_tree_synced(t), 2);
        len = s_record(201, rec);
        assert_int_equal(pd_tree_append(t, 201, rec, len), 0);
        s_matches_reference(t, 201); /* read from the file and the queue */
        pd_tree_get_stats(t, &ts);
        assert_true(ts.write_errors >= 1);
        assert_int_equal(pd_tree_sync(t), 0);
        assert_int_equal(pd_tree_synced(t), 201);
        assert_int_equal(s_file_size(f->path),
                         HDR + 32 * parley__tlog_stored_count(201));
    }
    pd_tree_close(&t);
    pd_tree_close(&t); /* NULL is fine */
    pd_tree_close(NULL);
    pd_tree_get_stats(NULL, &ts);
    assert_int_equal(ts.leaves, 0);
    assert_int_equal(pd_tree_size(NULL), 0);
    assert_null(pd_tree_open(NULL, &o, msg, sizeof(msg), &err));
    assert_int_equal(err, -EINVAL);

    /* The file the retry wrote checks against the records at the next
     * start; a log of only 2 records has the rest cut. */
    assert_int_equal(s_reopen_check(f, 1, 2, &t, msg, sizeof(msg)), 0);
    assert_int_equal(s_file_size(f->path), HDR + 32 * parley__tlog_stored_count(2));
    pd_tree_close(&t);
}

/* Commits of records from..to, one each: append, then pd_tree_write(). */
static void
s_commits(pd_tree_t *t, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_tree_append(t, seq, rec, len), 0);
        assert_int_equal(pd_tree_size(t), seq);
        assert_int_equal(pd_tree_write(t), 0);
    }
}

/* The daemon's rhythm with fsync: a commit's pd_tree_write() leaves the
 * file alone (roots and proofs cover the leaves from the queue); a sync
 * (heartbeat, retention) writes them all in one write and makes them
 * durable, once however many commits came before. */
static void
test_write_then_sync(void **state)
{
    fixture_t *f = *state;
    pd_tree_t *t = s_tree_with(f, 4);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    const uint64_t syncs = ts.syncs, writes = ts.writes;
    const uint64_t bytes = s_file_size(f->path);
    assert_int_equal(bytes, HDR + 32 * parley__tlog_stored_count(4));
    s_commits(t, 5, 40);
    assert_int_equal(pd_tree_synced(t), 4);
    s_matches_reference(t, 40);
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.syncs, syncs);
    assert_int_equal(ts.writes, writes);
    assert_int_equal(s_file_size(f->path), bytes);
    assert_int_equal(pd_tree_sync(t), 0);
    assert_int_equal(pd_tree_synced(t), 40);
    assert_int_equal(s_file_size(f->path),
                     HDR + 32 * parley__tlog_stored_count(40));
    assert_int_equal(pd_tree_sync(t), 0);
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.syncs, syncs + 1);
    assert_int_equal(ts.writes, writes + 1);
    s_matches_reference(t, 40);
    pd_tree_close(&t);
}

/* With fsync a long spell of commits between two syncs does not pile up
 * unwritten: once 256 KiB of hashes are queued a commit writes them (no
 * sync). */
static void
test_write_batch(void **state)
{
    fixture_t *f = *state;
    pd_tree_t *t = s_tree_with(f, 0);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    const uint64_t writes = ts.writes;
    uint64_t seq = 1;
    for (; seq <= 10000 && ts.writes == writes; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_tree_append(t, seq, rec, len), 0);
        assert_int_equal(pd_tree_write(t), 0);
        pd_tree_get_stats(t, &ts);
    }
    uint64_t n = seq - 1;
    assert_int_equal(ts.writes, writes + 1);
    assert_true(32 * parley__tlog_stored_count(n) >= (256u << 10));
    assert_true(32 * parley__tlog_stored_count(n - 1) < (256u << 10));
    assert_int_equal(s_file_size(f->path),
                     HDR + 32 * parley__tlog_stored_count(n));
    assert_int_equal(pd_tree_synced(t), 0);
    assert_int_equal(pd_tree_sync(t), 0);
    assert_int_equal(pd_tree_synced(t), n);
    s_matches_reference(t, n);
    pd_tree_close(&t);
}

/* Without fsync every commit writes what it queued, and the queue goes. */
static void
test_write_no_sync(void **state)
{
    fixture_t *f = *state;
    char msg[512];
    int err = 1;
    pd_tree_opts_t o = {.sync = false};
    pd_tree_t *t = pd_tree_open(f->dir, &o, msg, sizeof(msg), &err);
    assert_non_null(t);
    assert_int_equal(pd_tree_recover(t, 0, msg, sizeof(msg)), 0);
    for (uint64_t seq = 1; seq <= 20; seq++) {
        uint8_t rec[128];
        size_t len = s_record(seq, rec);
        assert_int_equal(pd_tree_append(t, seq, rec, len), 0);
        assert_int_equal(pd_tree_write(t), 0);
        assert_int_equal(s_file_size(f->path),
                         HDR + 32 * parley__tlog_stored_count(seq));
    }
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.writes, 20);
    assert_int_equal(ts.syncs, 0);
    s_matches_reference(t, 20);
    pd_tree_close(&t);
}

/* The heartbeat's sync on the tree's own thread: begun, the loop goes on
 * appending and reading roots from the queue; reaped, the leaves it
 * covered are synced and those appended since are still queued, and a
 * sync here and now takes them too. */
static void
test_sync_background(void **state)
{
    fixture_t *f = *state;
    pd_tree_t *t = s_tree_with(f, 4);
    pd_tree_stats_t ts;
    pd_tree_get_stats(t, &ts);
    const uint64_t syncs = ts.syncs, writes = ts.writes;
    /* Nothing queued: nothing to do. */
    assert_int_equal(pd_tree_sync_begin(t), 0);
    assert_int_equal(pd_tree_sync_reap(t, true), 0);
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.syncs, syncs);
    s_commits(t, 5, 40);
    assert_int_equal(pd_tree_sync_begin(t), 0);
    assert_int_equal(pd_tree_sync_begin(t), 0); /* one at a time */
    s_commits(t, 41, 50);
    s_matches_reference(t, 50);
    assert_int_equal(pd_tree_sync_reap(t, true), 0);
    assert_int_equal(pd_tree_sync_reap(t, false), 0); /* none left */
    assert_int_equal(pd_tree_synced(t), 40);
    assert_int_equal(s_file_size(f->path),
                     HDR + 32 * parley__tlog_stored_count(40));
    pd_tree_get_stats(t, &ts);
    assert_int_equal(ts.syncs, syncs + 1);
    assert_int_equal(ts.writes, writes + 1);
    s_matches_reference(t, 50);
    /* The next begin takes what came since; close waits for it. */
    assert_int_equal(pd_tree_sync_begin(t), 0);
    int rc;
    while ((rc = pd_tree_sync_reap(t, false)) == -EINPROGRESS)
        usleep(1000);
    assert_int_equal(rc, 0);
    assert_int_equal(pd_tree_synced(t), 50);
    assert_int_equal(s_file_size(f->path),
                     HDR + 32 * parley__tlog_stored_count(50));
    s_matches_reference(t, 50);
    s_commits(t, 51, 51);
    assert_int_equal(pd_tree_sync_begin(t), 0);
    pd_tree_close(&t);
    /* What the begin before close wrote checks at the next start. */
    assert_int_equal(s_file_size(f->path),
                     HDR + 32 * parley__tlog_stored_count(51));
    char msg[512];
    assert_int_equal(s_reopen_check(f, 1, 51, &t, msg, sizeof(msg)), 0);
    s_matches_reference(t, 51);
    pd_tree_close(&t);
}

/* Close writes what is queued (as the log's close does). */
static void
test_close_writes_queue(void **state)
{
    fixture_t *f = *state;
    pd_tree_t *t = s_tree_with(f, 5);
    uint8_t rec[128];
    size_t len = s_record(6, rec);
    assert_int_equal(pd_tree_append(t, 6, rec, len), 0);
    pd_tree_close(&t);
    assert_int_equal(s_file_size(f->path), HDR + 32 * parley__tlog_stored_count(6));
}

int
main(void)
{
    /* Repairs log a line each; keep the test output readable. */
    pd_log_set_level(PD_LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_format_and_reads),
        T(test_with_store),
        T(test_kill_between_syncs),
        T(test_torn_tail_every_byte),
        T(test_zero_filled_tail),
        T(test_hashes_beyond_log),
        T(test_mismatch_refuses_start),
        T(test_retention),
        T(test_absent_front),
        T(test_no_records_held),
        T(test_rebuild_from_log),
        T(test_header_damage),
        T(test_errors),
        T(test_write_then_sync),
        T(test_write_batch),
        T(test_write_no_sync),
        T(test_sync_background),
        T(test_close_writes_queue),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
