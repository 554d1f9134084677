/*
 * test_store.c - the append-only log: group commit, reads, reopen and
 * scan, torn-tail repair, corruption refusal, segments, retention, errors.
 * Each test runs in a fresh temporary directory that is removed after it.
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
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tmpdir.h"
#include "crc32c.h"
#include "fsize.h"
#include "log.h"
#include "store.h"
#include "wire.h"

#define HDR PD_STORE_HEADER_BYTES
#define SEG1 "seg-00000000000000000001.log"

typedef struct fixture {
    char dir[128]; /* the temporary state directory */
} fixture_t;

/* --- helpers -------------------------------------------------------------- */

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_tmpdir_make(f->dir, sizeof(f->dir), "parley-store-") != 0) {
        free(f);
        return -1;
    }
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

static void
s_path(char *out, size_t cap, const fixture_t *f, const char *name)
{
    snprintf(out, cap, "%s/%s", f->dir, name);
}

static void
s_seg_path(char *out, size_t cap, const fixture_t *f, uint64_t first)
{
    snprintf(out, cap, "%s/seg-%020" PRIu64 ".log", f->dir, first);
}

/* Deterministic payload for seq. */
static void
s_payload(uint64_t seq, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i * 7 + 1);
}

static pd_store_t *
s_open(const fixture_t *f, const pd_store_opts_t *opts, pd_store_scan_fn fn,
       void *ctx)
{
    char errbuf[512];
    int err = 1;
    pd_store_t *st = pd_store_open(f->dir, opts, fn, ctx, errbuf, sizeof(errbuf), &err);
    if (st == NULL)
        print_error("open failed (%d): %s\n", err, errbuf);
    assert_non_null(st);
    assert_int_equal(err, 0);
    return st;
}

/* Open expecting failure; returns err and leaves the message in errbuf. */
static int
s_open_fails(const fixture_t *f, const pd_store_opts_t *opts, char *errbuf,
             size_t errlen)
{
    int err = 0;
    pd_store_t *st = pd_store_open(f->dir, opts, NULL, NULL, errbuf, errlen, &err);
    assert_null(st);
    assert_int_not_equal(err, 0);
    return err;
}

/* Append seqs from..to (inclusive) with payloads of len bytes. */
static void
s_append(pd_store_t *st, uint64_t from, uint64_t to, size_t len, int64_t at)
{
    uint8_t buf[4096];
    assert_true(len <= sizeof(buf));
    for (uint64_t s = from; s <= to; s++) {
        s_payload(s, buf, len);
        assert_int_equal(pd_store_append(st, s, at + (int64_t)s, buf, len), 0);
    }
}

/* Read seq and check it carries the payload s_append() gave it. */
static void
s_check(pd_store_t *st, uint64_t seq, size_t len, int64_t at)
{
    uint8_t want[4096], got[4096];
    size_t n = 0;
    int64_t when = 0;
    int rc = pd_store_read(st, seq, &when, got, sizeof(got), &n);
    if (rc != 0)
        print_error("read seq %" PRIu64 ": %d\n", seq, rc);
    assert_int_equal(rc, 0);
    assert_int_equal(n, len);
    assert_int_equal(when, at + (int64_t)seq);
    s_payload(seq, want, len);
    assert_memory_equal(got, want, len);
}

static uint64_t
s_file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

static bool
s_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Whole file into a malloc'ed buffer. */
static uint8_t *
s_slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void
s_spit(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void
s_add_bytes(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    if (len > 0)
        assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Encode one record by hand, straight from the format in store.h. */
static size_t
s_encode(uint8_t *out, uint64_t seq, int64_t at, const uint8_t *payload,
         uint32_t len)
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(len >> (8 * i));
    for (int i = 0; i < 8; i++) {
        out[8 + i] = (uint8_t)(seq >> (8 * i));
        out[16 + i] = (uint8_t)((uint64_t)at >> (8 * i));
    }
    memcpy(out + HDR, payload, len);
    uint32_t crc = pd_crc32c(pd_crc32c(0, out + 8, 16), payload, len);
    for (int i = 0; i < 4; i++)
        out[4 + i] = (uint8_t)(crc >> (8 * i));
    return HDR + len;
}

/* Scan callback that checks order and payloads and counts records. */
typedef struct collect {
    uint64_t count;     /* records seen */
    uint64_t first;     /* seq of the first one */
    uint64_t last;      /* seq of the last one */
    size_t len;         /* payload length all records have, 0 = any */
    int64_t at;         /* received_at base */
    uint64_t stop_at;   /* return -42 at this seq, 0 = never */
} collect_t;

static int
s_collect(void *ctx, uint64_t seq, int64_t received_at, const uint8_t *payload,
          size_t len)
{
    collect_t *c = ctx;
    if (c->stop_at != 0 && seq == c->stop_at)
        return -42;
    if (c->count == 0)
        c->first = seq;
    else
        assert_int_equal(seq, c->last + 1);
    c->last = seq;
    c->count++;
    if (c->len != 0) {
        uint8_t want[4096];
        assert_int_equal(len, c->len);
        assert_int_equal(received_at, c->at + (int64_t)seq);
        s_payload(seq, want, len);
        assert_memory_equal(payload, want, len);
    }
    return 0;
}

static bool
s_contains_number(const char *text, const char *prefix, uint64_t n)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "%s%" PRIu64, prefix, n);
    const char *p = strstr(text, needle);
    /* The number must end there, so "offset 57" does not match "offset 576". */
    return p != NULL && !(p[strlen(needle)] >= '0' && p[strlen(needle)] <= '9');
}

/* --- tests ---------------------------------------------------------------- */

static void
test_round_trip(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    assert_int_equal(pd_store_next_seq(st), 1);
    assert_int_equal(pd_store_last_seq(st), 0);
    assert_int_equal(pd_store_first_seq(st), 0);

    s_append(st, 1, 50, 77, 1000);
    /* Queued is not durable. */
    assert_int_equal(pd_store_next_seq(st), 51);
    assert_int_equal(pd_store_last_seq(st), 0);
    uint8_t buf[256];
    size_t n;
    assert_int_equal(pd_store_read(st, 1, NULL, buf, sizeof(buf), &n), -ENOENT);

    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_store_last_seq(st), 50);
    assert_int_equal(pd_store_first_seq(st), 1);
    for (uint64_t s = 1; s <= 50; s++)
        s_check(st, s, 77, 1000);
    assert_int_equal(pd_store_read(st, 0, NULL, buf, sizeof(buf), &n), -ENOENT);
    assert_int_equal(pd_store_read(st, 51, NULL, buf, sizeof(buf), &n), -ENOENT);
    /* Too small a buffer says how much is needed. */
    n = 0;
    assert_int_equal(pd_store_read(st, 7, NULL, buf, 10, &n), -ENOBUFS);
    assert_int_equal(n, 77);
    assert_int_equal(pd_store_read(st, 7, NULL, NULL, 0, &n), -ENOBUFS);
    assert_int_equal(n, 77);

    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.syncs, 1); /* one fdatasync for 50 records */
    assert_int_equal(stats.records_synced, 50);
    assert_int_equal(stats.segments, 1);
    assert_int_equal(stats.bytes, 50 * (HDR + 77));
    assert_int_equal(stats.truncated_bytes, 0);

    s_append(st, 51, 60, 77, 1000);
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_store_sync(st), 0); /* nothing queued: no-op */
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.syncs, 2);
    assert_int_equal(stats.records_synced, 60);
    pd_store_close(&st);
    assert_null(st);
    pd_store_close(&st); /* accepts NULL */

    collect_t c = {.len = 77, .at = 1000};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 60);
    assert_int_equal(c.first, 1);
    assert_int_equal(c.last, 60);
    assert_int_equal(pd_store_next_seq(st), 61);
    assert_int_equal(pd_store_last_seq(st), 60);
    assert_int_equal(pd_store_first_seq(st), 1);
    for (uint64_t s = 1; s <= 60; s++)
        s_check(st, s, 77, 1000);
    s_append(st, 61, 61, 77, 1000);
    assert_int_equal(pd_store_sync(st), 0);
    s_check(st, 61, 77, 1000);
    pd_store_close(&st);
}

static void
test_on_disk_format(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    uint8_t p1[5] = {1, 2, 3, 4, 5}, p2[300];
    memset(p2, 0xAB, sizeof(p2));
    assert_int_equal(pd_store_append(st, 1, -5, p1, sizeof(p1)), 0);
    assert_int_equal(pd_store_append(st, 2, 1764363495000, p2, sizeof(p2)), 0);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);

    uint8_t want[2 * HDR + 305];
    size_t wl = s_encode(want, 1, -5, p1, sizeof(p1));
    wl += s_encode(want + wl, 2, 1764363495000, p2, sizeof(p2));
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    size_t gl;
    uint8_t *got = s_slurp(path, &gl);
    assert_int_equal(gl, wl);
    assert_memory_equal(got, want, wl);
    free(got);

    /* And a hand-made log opens. */
    uint8_t pay[10] = "0123456789";
    size_t hl = 0;
    uint8_t hand[3 * (HDR + 10)];
    for (uint64_t s = 3; s <= 5; s++)
        hl += s_encode(hand + hl, s, 42, pay, 10);
    s_seg_path(path, sizeof(path), f, 3);
    s_spit(path, hand, hl);
    int64_t at;
    uint8_t buf[16];
    size_t n;
    st = s_open(f, &o, NULL, NULL);
    assert_int_equal(pd_store_next_seq(st), 6);
    assert_int_equal(pd_store_read(st, 4, &at, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(at, 42);
    assert_memory_equal(buf, pay, 10);
    pd_store_close(&st);
}

static void
test_read_checks_crc(void **state)
{
    fixture_t *f = *state;
    pd_store_t *st = s_open(f, NULL, NULL, NULL);
    s_append(st, 1, 3, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    /* Damage record 2 on disk behind the open store's back. */
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t x = 0xEE;
    assert_int_equal(pwrite(fd, &x, 1, (HDR + 40) + HDR + 5), 1);
    close(fd);
    uint8_t buf[64];
    size_t n;
    assert_int_equal(pd_store_read(st, 2, NULL, buf, sizeof(buf), &n), -EBADMSG);
    s_check(st, 1, 40, 0);
    s_check(st, 3, 40, 0);
    pd_store_close(&st);
}

static void
test_close_writes_queue(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 9, 33, 0);
    pd_store_close(&st); /* no sync called */
    collect_t c = {.len = 33};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 9);
    assert_int_equal(pd_store_next_seq(st), 10);
    pd_store_close(&st);
}

/* Build a log of 20 records of 40 payload bytes in one segment. */
static uint8_t *
s_twenty(const fixture_t *f, size_t *len)
{
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 20, 40, 100);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    uint8_t *img = s_slurp(path, len);
    assert_int_equal(*len, 20 * (HDR + 40));
    return img;
}

static void
test_torn_tail_every_byte(void **state)
{
    fixture_t *f = *state;
    size_t len;
    uint8_t *img = s_twenty(f, &len);
    const size_t rec = HDR + 40, last = 19 * rec;
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    pd_store_opts_t o = {.sync = true};

    for (size_t cut = last; cut < last + rec; cut++) {
        s_spit(path, img, cut);
        collect_t c = {.len = 40, .at = 100};
        pd_store_t *st = s_open(f, &o, s_collect, &c);
        assert_int_equal(c.count, 19);
        assert_int_equal(pd_store_next_seq(st), 20);
        assert_int_equal(pd_store_last_seq(st), 19);
        pd_store_stats_t stats;
        pd_store_get_stats(st, &stats);
        assert_int_equal(stats.truncated_bytes, cut - last);
        assert_int_equal(stats.bytes, last);
        assert_int_equal(s_file_size(path), last); /* really cut */
        for (uint64_t s = 1; s <= 19; s++)
            s_check(st, s, 40, 100);
        uint8_t buf[64];
        size_t n;
        assert_int_equal(pd_store_read(st, 20, NULL, buf, sizeof(buf), &n), -ENOENT);
        if (cut == last + rec / 2) {
            /* The log goes on from the cut. */
            s_append(st, 20, 21, 40, 100);
            assert_int_equal(pd_store_sync(st), 0);
            pd_store_close(&st);
            collect_t c2 = {.len = 40, .at = 100};
            st = s_open(f, &o, s_collect, &c2);
            assert_int_equal(c2.count, 21);
            s_check(st, 21, 40, 100);
        }
        pd_store_close(&st);
    }
    free(img);
}

/* Rewrite the log as img + tail, open, expect n records and a cut of tail. */
static void
s_expect_cut(const fixture_t *f, const uint8_t *img, size_t len,
             const uint8_t *tail, size_t tlen, uint64_t records, uint64_t cut)
{
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    s_spit(path, img, len);
    s_add_bytes(path, tail, tlen);
    pd_store_opts_t o = {.sync = true};
    collect_t c = {.len = 40, .at = 100};
    pd_store_t *st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, records);
    assert_int_equal(pd_store_next_seq(st), records + 1);
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.truncated_bytes, cut);
    assert_int_equal(s_file_size(path), len + tlen - cut);
    pd_store_close(&st);
}

static void
test_torn_tail_garbage(void **state)
{
    fixture_t *f = *state;
    size_t len;
    uint8_t *img = s_twenty(f, &len);
    const size_t rec = HDR + 40;

    /* Bad checksum on the last record. */
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, img, len);
    bad[len - 3] ^= 0x04;
    s_expect_cut(f, bad, len, NULL, 0, 19, rec);

    /* Absurd length on the last record. */
    memcpy(bad, img, len);
    bad[len - rec + 3] = 0x7F;
    s_expect_cut(f, bad, len, NULL, 0, 19, rec);
    free(bad);

    /* Zeros after the last record (a file extended but never written). */
    uint8_t zeros[4096] = {0};
    s_expect_cut(f, img, len, zeros, sizeof(zeros), 20, sizeof(zeros));
    s_expect_cut(f, img, len, zeros, 5, 20, 5);

    /* Junk after the last record. */
    uint8_t junk[1000];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 17);
    s_expect_cut(f, img, len, junk, sizeof(junk), 20, sizeof(junk));

    /* A zero-length record at the end is torn too. */
    uint8_t zrec[HDR];
    uint8_t one = 0;
    s_encode(zrec, 21, 0, &one, 0);
    s_expect_cut(f, img, len, zrec, sizeof(zrec), 20, sizeof(zrec));

    /* A whole newest segment of garbage is cut to empty; seqs go on. */
    char path[256];
    s_seg_path(path, sizeof(path), f, 21);
    s_spit(path, junk, 100);
    pd_store_opts_t o = {.sync = true};
    char sp[256];
    s_path(sp, sizeof(sp), f, SEG1);
    s_spit(sp, img, len);
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    assert_int_equal(s_file_size(path), 0);
    assert_int_equal(pd_store_next_seq(st), 21);
    s_append(st, 21, 22, 40, 100);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    collect_t c = {.len = 40, .at = 100};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 22);
    pd_store_close(&st);
    free(img);
}

static void
test_corrupt_middle(void **state)
{
    fixture_t *f = *state;
    size_t len;
    uint8_t *img = s_twenty(f, &len);
    const size_t rec = HDR + 40, at = 9 * rec; /* record 10 */
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    /* A flipped bit in each field of the header and in the payload. */
    const size_t where[] = {0, 3, 4, 7, 8, 15, 16, 23, 24, 40, rec - 1};
    uint8_t *bad = malloc(len + HDR);
    assert_non_null(bad);
    for (size_t k = 0; k < sizeof(where) / sizeof(where[0]); k++) {
        memcpy(bad, img, len);
        bad[at + where[k]] ^= 0x10;
        s_spit(path, bad, len);
        char errbuf[512] = "";
        pd_store_opts_t o = {.sync = true};
        assert_int_equal(s_open_fails(f, &o, errbuf, sizeof(errbuf)), -EBADMSG);
        assert_non_null(strstr(errbuf, path));
        if (!s_contains_number(errbuf, "offset ", at))
            print_error("byte %zu: %s\n", where[k], errbuf);
        assert_true(s_contains_number(errbuf, "offset ", at));
        assert_non_null(strstr(errbuf, "docs/operations.md"));
        /* Refusing must not touch the data. */
        assert_int_equal(s_file_size(path), len);
    }
    /* A zero-length record in the middle is corruption as well. */
    uint8_t zrec[HDR], one = 0;
    s_encode(zrec, 10, 0, &one, 0);
    memcpy(bad, img, at);
    memcpy(bad + at, zrec, HDR);
    memcpy(bad + at + HDR, img + at, len - at);
    s_spit(path, bad, len + HDR);
    char errbuf[512] = "";
    assert_int_equal(s_open_fails(f, NULL, errbuf, sizeof(errbuf)), -EBADMSG);
    assert_true(s_contains_number(errbuf, "offset ", at));
    free(bad);
    free(img);
}

static void
test_seq_jump_in_segment(void **state)
{
    fixture_t *f = *state;
    /* Well-formed records whose seqs skip one. */
    uint8_t img[4 * (HDR + 8)], pay[8] = "abcdefgh";
    size_t n = 0;
    n += s_encode(img + n, 1, 0, pay, 8);
    n += s_encode(img + n, 2, 0, pay, 8);
    n += s_encode(img + n, 4, 0, pay, 8);
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    s_spit(path, img, n);
    char errbuf[512] = "";
    assert_int_equal(s_open_fails(f, NULL, errbuf, sizeof(errbuf)), -EBADMSG);
    assert_true(s_contains_number(errbuf, "offset ", 2 * (HDR + 8)));
    assert_non_null(strstr(errbuf, SEG1));
    assert_int_equal(s_file_size(path), n); /* not treated as a torn tail */
}

static void
test_segments(void **state)
{
    fixture_t *f = *state;
    /* 64-byte records; a segment takes records while under 200 bytes: 4. */
    pd_store_opts_t o = {.sync = true, .segment_bytes = 200};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    for (uint64_t s = 1; s <= 22; s += 5) {
        uint64_t to = s + 4 > 22 ? 22 : s + 4;
        s_append(st, s, to, 40, 0);
        assert_int_equal(pd_store_sync(st), 0);
    }
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.segments, 6);
    assert_int_equal(stats.bytes, 22 * 64);
    for (uint64_t s = 1; s <= 22; s++)
        s_check(st, s, 40, 0);
    pd_store_close(&st);

    char path[256];
    const uint64_t firsts[] = {1, 5, 9, 13, 17, 21};
    for (size_t i = 0; i < 6; i++) {
        s_seg_path(path, sizeof(path), f, firsts[i]);
        assert_true(s_exists(path));
        assert_int_equal(s_file_size(path), i < 5 ? 256 : 128);
    }

    collect_t c = {.len = 40};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 22);
    assert_int_equal(c.first, 1);
    assert_int_equal(pd_store_next_seq(st), 23);
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.segments, 6);
    for (uint64_t s = 22; s >= 1; s--)
        s_check(st, s, 40, 0);
    /* One group commit that spans a roll. */
    s_append(st, 23, 30, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    for (uint64_t s = 1; s <= 30; s++)
        s_check(st, s, 40, 0);
    pd_store_close(&st);
    s_seg_path(path, sizeof(path), f, 25);
    assert_int_equal(s_file_size(path), 256);
    s_seg_path(path, sizeof(path), f, 29);
    assert_int_equal(s_file_size(path), 128);

    /* An older segment cut short is corruption, not a torn tail. */
    s_seg_path(path, sizeof(path), f, 5);
    size_t len;
    uint8_t *img = s_slurp(path, &len);
    assert_int_equal(truncate(path, 100), 0);
    char errbuf[512] = "";
    assert_int_equal(s_open_fails(f, &o, errbuf, sizeof(errbuf)), -EBADMSG);
    assert_non_null(strstr(errbuf, path));
    assert_true(s_contains_number(errbuf, "offset ", 64));
    assert_int_equal(s_file_size(path), 100);
    s_spit(path, img, len);
    free(img);

    /* A missing segment in the middle: seqs do not follow. */
    char aside[256];
    s_seg_path(path, sizeof(path), f, 9);
    s_path(aside, sizeof(aside), f, "aside");
    assert_int_equal(rename(path, aside), 0);
    errbuf[0] = '\0';
    assert_int_equal(s_open_fails(f, &o, errbuf, sizeof(errbuf)), -EBADMSG);
    assert_non_null(strstr(errbuf, "seg-00000000000000000013.log"));
    assert_int_equal(rename(aside, path), 0);

    c = (collect_t){.len = 40};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 30);
    pd_store_close(&st);
}

static int
s_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static void
test_many_segments_reads(void **state)
{
    fixture_t *f = *state;
    /* One record per segment. */
    pd_store_opts_t o = {.sync = false, .segment_bytes = 1};
    int before = s_count_fds();
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    for (uint64_t s = 1; s <= 40; s++) {
        s_append(st, s, s, 40, 0);
        assert_int_equal(pd_store_sync(st), 0);
    }
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.segments, 40);
    for (int round = 0; round < 3; round++)
        for (uint64_t s = 1; s <= 40; s++)
            s_check(st, (s * 17 + (uint64_t)round) % 40 + 1, 40, 0);
    /* Directory, lock, path lock, current segment, and a bounded set for
     * reads. */
    if (before >= 0)
        assert_true(s_count_fds() - before <= 4 + 8);
    pd_store_close(&st);
    if (before >= 0)
        assert_int_equal(s_count_fds(), before);
    collect_t c = {.len = 40};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 40);
    pd_store_close(&st);
}

static void
test_retention_bytes(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = true, .segment_bytes = 200, .max_bytes = 600};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 22, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_store_first_seq(st), 1);
    /* 5 x 256 + 128 bytes: drop oldest until <= 600 -> 256 + 128 left. */
    assert_int_equal(pd_store_retain(st, 0), 4);
    assert_int_equal(pd_store_first_seq(st), 17);
    assert_int_equal(pd_store_last_seq(st), 22);
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.segments, 2);
    assert_int_equal(stats.bytes, 384);
    uint8_t buf[64];
    size_t n;
    assert_int_equal(pd_store_read(st, 16, NULL, buf, sizeof(buf), &n), -ENOENT);
    assert_int_equal(pd_store_read(st, 1, NULL, buf, sizeof(buf), &n), -ENOENT);
    s_check(st, 17, 40, 0);
    s_check(st, 22, 40, 0);
    char path[256];
    for (uint64_t s = 1; s <= 13; s += 4) {
        s_seg_path(path, sizeof(path), f, s);
        assert_false(s_exists(path));
    }
    assert_int_equal(pd_store_retain(st, 0), 0);
    pd_store_close(&st);

    /* Reopen: the log now starts at 17 and goes on. */
    collect_t c = {.len = 40};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.first, 17);
    assert_int_equal(c.count, 6);
    assert_int_equal(pd_store_first_seq(st), 17);
    assert_int_equal(pd_store_next_seq(st), 23);
    pd_store_close(&st);

    /* The newest segment stays even when it alone is over the limit. */
    o.max_bytes = 1;
    st = s_open(f, &o, NULL, NULL);
    assert_int_equal(pd_store_retain(st, 0), 1);
    assert_int_equal(pd_store_first_seq(st), 21);
    s_check(st, 22, 40, 0);
    assert_int_equal(pd_store_retain(st, 0), 0);
    pd_store_close(&st);
}

static void
test_retention_age(void **state)
{
    fixture_t *f = *state;
    const int64_t hour = 3600 * 1000;
    const int64_t now = parley_now_ms();
    pd_store_opts_t o = {.sync = true, .segment_bytes = 200, .max_age_ms = hour};
    /* An earlier run took 1-8 three hours ago: two segments of four. */
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 8, 40, now - 3 * hour);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    /* This run finds them three hours old, and takes 9-16 now. */
    st = s_open(f, &o, NULL, NULL);
    s_append(st, 9, 16, 40, now);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.segments, 4);
    const int64_t mono = parley__mono_ms();
    /* The wall clock steps two hours forward: 9-12 came in just now by
     * the monotonic clock and stay; 1-8 go. */
    assert_int_equal(pd_store_retain_at(st, now + 2 * hour, mono), 2);
    assert_int_equal(pd_store_first_seq(st), 9);
    uint8_t buf[64];
    size_t n;
    assert_int_equal(pd_store_read(st, 8, NULL, buf, sizeof(buf), &n), -ENOENT);
    s_check(st, 9, 40, now);
    assert_int_equal(pd_store_retain_at(st, now + 2 * hour, mono), 0);
    /* A step back keeps nothing longer: two monotonic hours on, 9-12 go
     * (the newest segment always stays). */
    assert_int_equal(pd_store_retain_at(st, now - 5 * hour, mono + 2 * hour), 1);
    assert_int_equal(pd_store_first_seq(st), 13);
    s_check(st, 16, 40, now);
    pd_store_close(&st);

    /* Records stamped ahead of the clock at open count as new then. */
    st = s_open(f, &o, NULL, NULL);
    s_append(st, 17, 20, 40, now + 10 * hour);
    assert_int_equal(pd_store_sync(st), 0);
    s_append(st, 21, 21, 40, now);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    st = s_open(f, &o, NULL, NULL);
    assert_int_equal(pd_store_retain_at(st, now, parley__mono_ms()), 0);
    assert_int_equal(pd_store_retain_at(st, now, parley__mono_ms() + 2 * hour),
                     2);
    assert_int_equal(pd_store_first_seq(st), 21);
    pd_store_close(&st);
}

static void
test_no_sync(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = false, .segment_bytes = 300};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 10, 40, 7);
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_store_last_seq(st), 10);
    for (uint64_t s = 1; s <= 10; s++)
        s_check(st, s, 40, 7);
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.syncs, 0);
    assert_int_equal(stats.records_synced, 10);
    assert_int_equal(stats.segments, 2);
    pd_store_close(&st);
    collect_t c = {.len = 40, .at = 7};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 10);
    pd_store_close(&st);
}

static void
test_argument_errors(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = true, .max_record = 100};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    uint8_t buf[200] = {0};
    assert_int_equal(pd_store_append(st, 1, 0, buf, 101), -EMSGSIZE);
    assert_int_equal(pd_store_append(st, 2, 0, buf, 10), -EINVAL);
    assert_int_equal(pd_store_append(st, 0, 0, buf, 10), -EINVAL);
    assert_int_equal(pd_store_append(st, 1, 0, buf, 0), -EINVAL);
    assert_int_equal(pd_store_next_seq(st), 1);
    assert_int_equal(pd_store_append(st, 1, 0, buf, 100), 0);
    assert_int_equal(pd_store_append(st, 1, 0, buf, 10), -EINVAL);
    assert_int_equal(pd_store_append(st, 3, 0, buf, 10), -EINVAL);
    assert_int_equal(pd_store_append(st, 2, 0, buf, 10), 0);
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_store_last_seq(st), 2);
    pd_store_close(&st);

    /* The default limit is 1 MiB. */
    st = s_open(f, NULL, NULL, NULL);
    uint8_t *big = calloc(1, (1u << 20) + 1);
    assert_non_null(big);
    assert_int_equal(pd_store_append(st, 3, 0, big, (1u << 20) + 1), -EMSGSIZE);
    assert_int_equal(pd_store_append(st, 3, 0, big, 1u << 20), 0);
    assert_int_equal(pd_store_sync(st), 0);
    free(big);
    pd_store_close(&st);

    /* Records kept under a larger limit survive a smaller one. */
    o.max_record = 100;
    collect_t c = {0};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 3);
    size_t n = 0;
    assert_int_equal(pd_store_read(st, 3, NULL, NULL, 0, &n), -ENOBUFS);
    assert_int_equal(n, 1u << 20);
    pd_store_close(&st);

    /* Even one larger than the scan's read buffer. */
    o.max_record = 8u << 20;
    st = s_open(f, &o, NULL, NULL);
    const size_t huge = 5u << 20;
    big = malloc(huge);
    assert_non_null(big);
    for (size_t i = 0; i < huge; i++)
        big[i] = (uint8_t)(i % 251);
    assert_int_equal(pd_store_append(st, 4, 9, big, huge), 0);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    c = (collect_t){0};
    st = s_open(f, NULL, s_collect, &c);
    assert_int_equal(c.count, 4);
    uint8_t *back = malloc(huge);
    assert_non_null(back);
    int64_t at = 0;
    assert_int_equal(pd_store_read(st, 4, &at, back, huge, &n), 0);
    assert_int_equal(n, huge);
    assert_int_equal(at, 9);
    assert_memory_equal(back, big, huge);
    free(back);
    free(big);
    pd_store_close(&st);
}

static void
test_scan_callback_stops(void **state)
{
    fixture_t *f = *state;
    pd_store_t *st = s_open(f, NULL, NULL, NULL);
    s_append(st, 1, 10, 20, 0);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    collect_t c = {.stop_at = 5};
    char errbuf[256] = "";
    int err = 0;
    st = pd_store_open(f->dir, NULL, s_collect, &c, errbuf, sizeof(errbuf), &err);
    assert_null(st);
    assert_int_equal(err, -42);
    assert_int_equal(c.count, 4);
}

static void
test_one_writer(void **state)
{
    fixture_t *f = *state;
    pd_store_t *st = s_open(f, NULL, NULL, NULL);
    char errbuf[256] = "";
    int err = 0;
    pd_store_t *second = pd_store_open(f->dir, NULL, NULL, NULL, errbuf,
                                       sizeof(errbuf), &err);
    assert_null(second);
    assert_int_equal(err, -EBUSY);
    assert_non_null(strstr(errbuf, f->dir));
    pd_store_close(&st);
    st = s_open(f, NULL, NULL, NULL);
    pd_store_close(&st);
}

static void
test_empty_newest_segment(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 5, 20, 0);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    /* A crash right after a roll leaves an empty newest segment. */
    char path[256];
    s_seg_path(path, sizeof(path), f, 6);
    s_spit(path, "", 0);
    st = s_open(f, &o, NULL, NULL);
    assert_int_equal(pd_store_next_seq(st), 6);
    assert_int_equal(pd_store_last_seq(st), 5);
    s_append(st, 6, 7, 20, 0);
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_close(&st);
    assert_int_equal(s_file_size(path), 2 * (HDR + 20));

    /* An empty segment that is not the newest breaks the chain. */
    s_seg_path(path, sizeof(path), f, 3);
    s_spit(path, "", 0);
    char errbuf[512] = "";
    assert_int_equal(s_open_fails(f, &o, errbuf, sizeof(errbuf)), -EBADMSG);
    assert_int_equal(unlink(path), 0);

    /* A segment name that cannot be a seq. */
    s_seg_path(path, sizeof(path), f, 0);
    s_spit(path, "", 0);
    assert_int_equal(s_open_fails(f, &o, errbuf, sizeof(errbuf)), -EBADMSG);
    assert_non_null(strstr(errbuf, path));
    assert_int_equal(unlink(path), 0);
    st = s_open(f, &o, NULL, NULL);
    assert_int_equal(pd_store_next_seq(st), 8);
    pd_store_close(&st);
}

/*
 * A store with records 1-5 of 100 bytes durable, files limited to 1000
 * bytes from then on, and 6-20 queued: its next sync fails with EFBIG.
 * Returns NULL (skip the test) if the limit cannot be set; *old gets the
 * limit to put back.
 */
static pd_store_t *
s_open_limited(const fixture_t *f, const pd_store_opts_t *o,
               struct rlimit *old)
{
    pd_store_t *st = s_open(f, o, NULL, NULL);
    s_append(st, 1, 5, 100, 0);
    assert_int_equal(pd_store_sync(st), 0);
    if (!fsize_limit(1000, old)) {
        pd_store_close(&st);
        return NULL;
    }
    s_append(st, 6, 20, 100, 0);
    return st;
}

static void
test_write_failure(void **state)
{
    fixture_t *f = *state;
    struct rlimit old;
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open_limited(f, &o, &old);
    if (st == NULL) {
        skip();
        return;
    }
    int rc = pd_store_sync(st);
    int rc2 = 0;
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    uint64_t size_after = s_file_size(path);
    /* Still full: a retry fails alike, and more may be queued meanwhile. */
    uint8_t buf[100];
    s_payload(21, buf, sizeof(buf));
    int rc_append = pd_store_append(st, 21, 21, buf, sizeof(buf));
    rc2 = pd_store_sync(st);
    fsize_unlimit(&old);
    assert_int_equal(rc, -EFBIG);
    assert_int_equal(rc2, -EFBIG);
    assert_int_equal(rc_append, 0);
    /* Nothing of the batch is durable, the file is back at the end of the
     * last durable record, and the records stay queued. */
    assert_int_equal(size_after, 5 * (HDR + 100));
    assert_int_equal(s_file_size(path), 5 * (HDR + 100));
    assert_int_equal(pd_store_last_seq(st), 5);
    assert_int_equal(pd_store_next_seq(st), 22);
    pd_store_health_t h;
    pd_store_health(st, &h);
    assert_int_equal(h.err, -EFBIG);
    assert_false(h.fatal);
    assert_int_equal(h.queued, 16);
    assert_non_null(strstr(h.reason, strerror(EFBIG)));
    assert_non_null(strstr(h.reason, SEG1));
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    assert_int_equal(stats.sync_failures, 2);
    s_check(st, 5, 100, 0);
    uint8_t back[128];
    size_t n;
    assert_int_equal(pd_store_read(st, 6, NULL, back, sizeof(back), &n),
                     -ENOENT);
    /* Room again: the retry makes them all durable. */
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_store_last_seq(st), 21);
    pd_store_health(st, &h);
    assert_int_equal(h.err, 0);
    assert_int_equal(h.queued, 0);
    assert_string_equal(h.reason, "");
    for (uint64_t q = 1; q <= 21; q++)
        s_check(st, q, 100, 0);
    pd_store_close(&st);
    collect_t c = {.len = 100};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 21);
    pd_store_close(&st);
}

static void
test_write_failure_drop(void **state)
{
    fixture_t *f = *state;
    struct rlimit old;
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open_limited(f, &o, &old);
    if (st == NULL) {
        skip();
        return;
    }
    int rc = pd_store_sync(st);
    fsize_unlimit(&old);
    assert_int_equal(rc, -EFBIG);
    /* A caller that answered them as not stored drops them: the seqs are
     * given out again. */
    assert_int_equal(pd_store_discard(st), 15);
    assert_int_equal(pd_store_next_seq(st), 6);
    s_append(st, 6, 7, 30, 50);
    assert_int_equal(pd_store_sync(st), 0);
    s_check(st, 7, 30, 50);
    /* Fail again, and close without a retry: what was never made durable
     * is not written at close either. */
    if (!fsize_limit(5 * (HDR + 100) + 2 * (HDR + 30) + 10, &old)) {
        pd_store_close(&st);
        skip();
        return;
    }
    s_append(st, 8, 9, 100, 0);
    rc = pd_store_sync(st);
    fsize_unlimit(&old);
    assert_int_equal(rc, -EFBIG);
    pd_store_close(&st);
    collect_t c = {0};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 7);
    assert_int_equal(pd_store_next_seq(st), 8);
    pd_store_close(&st);
}

/* Remove every file of the fixture's directory, and the directory. */
static void
s_remove_dir(const fixture_t *f)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
        assert_int_equal(unlink(path), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(f->dir), 0);
}

static void
test_segment_removed(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = true};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 3, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    /* The segment goes: the next sync writes into a file no restart will
     * find, so its records must not count as durable. */
    char path[256];
    s_path(path, sizeof(path), f, SEG1);
    assert_int_equal(unlink(path), 0);
    s_append(st, 4, 4, 40, 0);
    assert_int_equal(pd_store_sync(st), -ENOENT);
    assert_int_equal(pd_store_last_seq(st), 3);
    pd_store_health_t h;
    pd_store_health(st, &h);
    assert_true(h.fatal);
    assert_int_equal(h.err, -ENOENT);
    assert_non_null(strstr(h.reason, "removed"));
    assert_non_null(strstr(h.reason, SEG1));
    /* Done for good. */
    uint8_t buf[40] = {1};
    assert_int_equal(pd_store_append(st, 5, 0, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(pd_store_sync(st), -ENOENT);
    assert_int_equal(pd_store_check(st), -ENOENT);
    pd_store_close(&st);
}

static void
test_watch(void **state)
{
    fixture_t *f = *state;
    pd_store_t *st = s_open(f, NULL, NULL, NULL);
    s_append(st, 1, 3, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    /* All is well. */
    assert_int_equal(pd_store_check(st), 0);
    /* The lock file replaced by another. */
    char lock[256], aside[256];
    s_path(lock, sizeof(lock), f, "store.lock");
    s_path(aside, sizeof(aside), f, "store.lock.old");
    assert_int_equal(rename(lock, aside), 0);
    s_spit(lock, "", 0);
    assert_int_equal(pd_store_check(st), -ENOENT);
    pd_store_health_t h;
    pd_store_health(st, &h);
    assert_true(h.fatal);
    assert_non_null(strstr(h.reason, "store.lock"));
    uint8_t buf[40] = {1};
    assert_int_equal(pd_store_append(st, 4, 0, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(pd_store_sync(st), -ENOENT);
    pd_store_close(&st);
    assert_int_equal(unlink(aside), 0);

    /* The newest segment replaced by a copy. */
    st = s_open(f, NULL, NULL, NULL);
    char seg[256];
    s_path(seg, sizeof(seg), f, SEG1);
    size_t len;
    uint8_t *img = s_slurp(seg, &len);
    assert_int_equal(unlink(seg), 0);
    s_spit(seg, img, len);
    free(img);
    assert_int_equal(pd_store_check(st), -ENOENT);
    pd_store_health(st, &h);
    assert_non_null(strstr(h.reason, SEG1));
    pd_store_close(&st);

    /* The directory moved away. */
    st = s_open(f, NULL, NULL, NULL);
    char moved[256];
    snprintf(moved, sizeof(moved), "%s-moved", f->dir);
    assert_int_equal(rename(f->dir, moved), 0);
    int rc = pd_store_check(st);
    assert_int_equal(rename(moved, f->dir), 0);
    assert_int_equal(rc, -ENOENT);
    pd_store_health(st, &h);
    assert_non_null(strstr(h.reason, "no longer"));
    pd_store_close(&st);
}

static void
test_dir_removed(void **state)
{
    fixture_t *f = *state;
    pd_store_t *st = s_open(f, NULL, NULL, NULL);
    s_append(st, 1, 3, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    s_remove_dir(f);
    /* A new directory at the same path: a second store may not open it
     * while the first holds the path, although no file lock is left. */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    char errbuf[512] = "";
    assert_int_equal(s_open_fails(f, NULL, errbuf, sizeof(errbuf)), -EBUSY);
    assert_non_null(strstr(errbuf, "in use"));
    /* The first finds out at its next check, before any write. */
    assert_int_equal(pd_store_check(st), -ENOENT);
    pd_store_health_t h;
    pd_store_health(st, &h);
    assert_non_null(strstr(h.reason, "removed"));
    pd_store_close(&st);
    /* Once it is gone, the path is free. */
    st = s_open(f, NULL, NULL, NULL);
    assert_int_equal(pd_store_next_seq(st), 1);
    pd_store_close(&st);
}

/* Bytes the file at path has allocated on disk. */
static uint64_t
s_allocated(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* Can the file system of dir preallocate past the end of a file? */
static bool
s_can_preallocate(const fixture_t *f)
{
    char path[256];
    s_path(path, sizeof(path), f, "probe");
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    int rc = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096);
    close(fd);
    unlink(path);
    return rc == 0;
}

static void
test_reserve(void **state)
{
    fixture_t *f = *state;
    if (!s_can_preallocate(f)) {
        skip();
        return;
    }
    const uint64_t r = 256 * 1024;
    pd_store_opts_t o = {.sync = true, .segment_bytes = 200, .reserve = r};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 1, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    char seg1[256], seg5[256];
    s_path(seg1, sizeof(seg1), f, SEG1);
    s_seg_path(seg5, sizeof(seg5), f, 5);
    /* The newest segment has the reserve past its end; its size is its
     * records. */
    assert_int_equal(s_file_size(seg1), HDR + 40);
    assert_true(s_allocated(seg1) >= r);
    /* Rolled over: the old one gives it back, the new one takes it. */
    s_append(st, 2, 5, 40, 0);
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(s_file_size(seg1), 4 * (HDR + 40));
    assert_true(s_allocated(seg1) < r / 2);
    assert_true(s_allocated(seg5) >= r);
    pd_store_close(&st);
    /* Kept across a restart, and the records read back as ever. */
    collect_t c = {.len = 40};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, 5);
    assert_true(s_allocated(seg5) >= r);
    assert_int_equal(s_file_size(seg5), HDR + 40);
    pd_store_close(&st);
}

/* The fixture with a tmpfs of bytes mounted on dir/small, or false. */
static bool
s_mount_small(fixture_t *f, const char *size)
{
    if (geteuid() != 0)
        return false;
    char dir[sizeof(f->dir)], opt[64];
    int n = snprintf(dir, sizeof(dir), "%s/small", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(opt, sizeof(opt), "size=%s,mode=0700", size);
    if (mount("parley-test", dir, "tmpfs", 0, opt) != 0) {
        print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        rmdir(dir);
        return false;
    }
    snprintf(f->dir, sizeof(f->dir), "%s", dir);
    return true;
}

/* Undo s_mount_small(): unmount and go back to the fixture's directory. */
static void
s_unmount_small(fixture_t *f)
{
    assert_int_equal(umount2(f->dir, MNT_DETACH), 0);
    assert_int_equal(rmdir(f->dir), 0);
    f->dir[strlen(f->dir) - strlen("/small")] = '\0';
}

/* Fill the file system of f->dir with path; returns its size. */
static uint64_t
s_fill(const fixture_t *f, char *path, size_t cap)
{
    s_path(path, cap, f, "filler");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    static uint8_t block[4096];
    uint64_t total = 0;
    for (;;) {
        ssize_t n = write(fd, block, sizeof(block));
        if (n <= 0)
            break;
        total += (uint64_t)n;
    }
    assert_int_equal(errno, ENOSPC);
    close(fd);
    return total;
}

static void
test_disk_full(void **state)
{
    fixture_t *f = *state;
    if (!s_mount_small(f, "1m")) {
        skip();
        return;
    }
    /* More reserve than the file system holds: refused at open. */
    pd_store_opts_t o = {.sync = true, .segment_bytes = 64 * 1024,
                         .reserve = 2 * 1024 * 1024};
    char errbuf[512] = "";
    assert_int_equal(s_open_fails(f, &o, errbuf, sizeof(errbuf)), -ENOSPC);
    assert_non_null(strstr(errbuf, "2097152 bytes"));
    assert_non_null(strstr(errbuf, f->dir));
    /* A reserve that fits: take records until the disk is full. */
    o.reserve = 128 * 1024;
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    s_append(st, 1, 10, 1000, 0);
    assert_int_equal(pd_store_sync(st), 0);
    char filler[256];
    s_fill(f, filler, sizeof(filler));
    /* The reserve keeps writes going for a while after that. */
    uint64_t seq = 11;
    int rc = 0;
    for (; rc == 0 && seq < 2000; seq++) {
        s_append(st, seq, seq, 1000, 0);
        rc = pd_store_sync(st);
    }
    assert_int_equal(rc, -ENOSPC);
    const uint64_t last = pd_store_last_seq(st);
    assert_int_equal(last, seq - 2);
    assert_true(last >= 10 + 64); /* half the reserve at least */
    pd_store_health_t h;
    pd_store_health(st, &h);
    assert_int_equal(h.err, -ENOSPC);
    assert_false(h.fatal);
    assert_true(h.low_space);
    assert_int_equal(h.queued, 1);
    /* As durable as before: every file ends at its last durable record. */
    pd_store_stats_t stats;
    pd_store_get_stats(st, &stats);
    uint64_t on_disk = 0;
    for (uint64_t q = 1; q <= last; q += 0) {
        char path[256];
        s_seg_path(path, sizeof(path), f, q);
        on_disk += s_file_size(path);
        q += s_file_size(path) / (HDR + 1000);
    }
    assert_int_equal(on_disk, stats.bytes);
    assert_int_equal(stats.bytes, last * (HDR + 1000));
    /* Space comes back: the retry writes what was queued. */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(pd_store_sync(st), 0);
    assert_int_equal(pd_store_last_seq(st), last + 1);
    pd_store_health(st, &h);
    assert_int_equal(h.err, 0);
    assert_false(h.low_space);
    pd_store_close(&st);
    collect_t c = {.len = 1000};
    st = s_open(f, &o, s_collect, &c);
    assert_int_equal(c.count, last + 1);
    pd_store_close(&st);
    s_unmount_small(f);
}

static void
test_opts_and_paths(void **state)
{
    fixture_t *f = *state;
    /* The directory is created when missing. */
    char sub[256];
    s_path(sub, sizeof(sub), f, "state");
    char errbuf[256];
    int err = 1;
    pd_store_t *st = pd_store_open(sub, NULL, NULL, NULL, errbuf, sizeof(errbuf), &err);
    assert_non_null(st);
    assert_int_equal(err, 0);
    s_append(st, 1, 1, 10, 0);
    pd_store_close(&st);
    char seg[300];
    snprintf(seg, sizeof(seg), "%s/%s", sub, SEG1);
    assert_true(s_exists(seg));
    unlink(seg);
    snprintf(seg, sizeof(seg), "%s/store.lock", sub);
    unlink(seg);
    assert_int_equal(rmdir(sub), 0);

    /* A path that cannot be a directory. */
    char file[256];
    s_path(file, sizeof(file), f, "plain");
    s_spit(file, "x", 1);
    char below[300];
    snprintf(below, sizeof(below), "%s/x", file);
    err = 0;
    errbuf[0] = '\0';
    st = pd_store_open(below, NULL, NULL, NULL, errbuf, sizeof(errbuf), &err);
    assert_null(st);
    assert_int_equal(err, -ENOTDIR);
    assert_non_null(strstr(errbuf, below));
    err = 0;
    st = pd_store_open(file, NULL, NULL, NULL, errbuf, sizeof(errbuf), &err);
    assert_null(st);
    assert_int_equal(err, -ENOTDIR);

    /* NULL everywhere it is allowed. */
    pd_store_stats_t stats;
    pd_store_get_stats(NULL, &stats);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(pd_store_next_seq(NULL), 0);
    pd_store_close(NULL);
}

/* Length of record seq in test_scan_across_reads: mostly small and
 * irregular, and every 97th larger than one read of the scan. */
static size_t
s_varied_len(uint64_t seq)
{
    return seq % 97 == 0 ? 300000 + (size_t)seq : 1 + (size_t)(seq * 2654435761u % 3000);
}

static int
s_check_varied(void *ctx, uint64_t seq, int64_t received_at,
               const uint8_t *payload, size_t len)
{
    uint64_t *count = ctx;
    assert_int_equal(seq, *count + 1);
    assert_int_equal(received_at, (int64_t)seq * 3);
    assert_int_equal(len, s_varied_len(seq));
    for (size_t i = 0; i < len; i++)
        if (payload[i] != (uint8_t)(seq * 31 + i * 7 + 1))
            fail_msg("seq %" PRIu64 " byte %zu differs", seq, i);
    (*count)++;
    return 0;
}

/*
 * The scan reads a segment a piece at a time: records that straddle the
 * pieces, and records larger than a piece, reach the callback whole.
 */
static void
test_scan_across_reads(void **state)
{
    fixture_t *f = *state;
    pd_store_opts_t o = {.sync = false, .segment_bytes = 3u << 20};
    pd_store_t *st = s_open(f, &o, NULL, NULL);
    enum { N = 2000 };
    uint8_t *buf = malloc(400000);
    assert_non_null(buf);
    for (uint64_t seq = 1; seq <= N; seq++) {
        size_t len = s_varied_len(seq);
        s_payload(seq, buf, len);
        assert_int_equal(pd_store_append(st, seq, (int64_t)seq * 3, buf, len), 0);
        if (seq % 100 == 0)
            assert_int_equal(pd_store_sync(st), 0);
    }
    assert_int_equal(pd_store_sync(st), 0);
    pd_store_stats_t ss;
    pd_store_get_stats(st, &ss);
    assert_true(ss.segments > 2);
    pd_store_close(&st);
    free(buf);

    uint64_t count = 0;
    st = s_open(f, &o, s_check_varied, &count);
    assert_int_equal(count, N);
    assert_int_equal(pd_store_last_seq(st), N);
    pd_store_stats_t again;
    pd_store_get_stats(st, &again);
    assert_int_equal(again.bytes, ss.bytes);
    assert_int_equal(again.truncated_bytes, 0);
    pd_store_close(&st);
}

int
main(void)
{
    /* Torn-tail repairs log a warning each; keep the test output readable. */
    pd_log_set_level(PD_LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_on_disk_format),
        T(test_read_checks_crc),
        T(test_close_writes_queue),
        T(test_torn_tail_every_byte),
        T(test_torn_tail_garbage),
        T(test_corrupt_middle),
        T(test_seq_jump_in_segment),
        T(test_segments),
        T(test_many_segments_reads),
        T(test_retention_bytes),
        T(test_retention_age),
        T(test_no_sync),
        T(test_argument_errors),
        T(test_scan_callback_stops),
        T(test_one_writer),
        T(test_empty_newest_segment),
        T(test_write_failure),
        T(test_write_failure_drop),
        T(test_segment_removed),
        T(test_watch),
        T(test_dir_removed),
        T(test_reserve),
        T(test_disk_full),
        T(test_opts_and_paths),
        T(test_scan_across_reads),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
