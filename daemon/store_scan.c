/*
 * store_scan.c - the log's scan at open: every record is checked
 * (length, checksum, seq), a torn tail in the newest segment is cut and
 * logged, damage anywhere else refuses the open with the file and offset,
 * and the offset index of every segment is filled (store_int.h).
 */
#include "store_int.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_SCAN_CHUNK (4u << 20)  /* scan buffer, grown for larger records */
/*
 * Bytes per read() while scanning. Small enough that what a read copies
 * is still in the CPU's L2 cache when the checksum and the index reads
 * come to it; with 4 MiB reads the scan ran nearly twice as long.
 */
#define S_SCAN_READ (256u << 10)

/*
 * Parse a segment file name. Returns 1 with *seq set, 0 if the name is not
 * a segment's at all, or -1 if it looks like one but the number is unusable.
 */
static int
s_parse_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != PD_STORE__NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
        strcmp(name + 24, ".log") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v == 0)
        return -1;
    *seq = v;
    return 1;
}

/* The operator-facing message for a log that cannot be opened as it is. */
static int
s_corrupt(const pd_store_t *self, const char *name, uint64_t off,
          const char *reason, char *errbuf, size_t errlen)
{
    pd_errf(errbuf, errlen,
            "corrupt record in %s/%s at offset %" PRIu64 ": %s; move the files "
            "from this one on aside to recover the records before it (see "
            "docs/operations.md)",
            self->dir, name, off, reason);
    return -EBADMSG;
}

/*
 * Checksum a record whose header is at hdr and whose len payload bytes
 * start at off in fd, reading the payload in pieces: for records that are
 * not (or not yet) in a buffer.
 */
static int
s_crc_at(int fd, const uint8_t *hdr, uint64_t off, uint32_t len, uint32_t *crc)
{
    uint8_t piece[16384];
    uint32_t c = pd_crc32c(0, hdr + 8, 16);
    for (uint32_t left = len; left > 0;) {
        size_t m = left < sizeof(piece) ? left : sizeof(piece);
        int rc = pd_pread_all(fd, piece, m, off);
        if (rc < 0)
            return rc;
        c = pd_crc32c(c, piece, m);
        off += m;
        left -= (uint32_t)m;
    }
    *crc = c;
    return 0;
}

/*
 * Whether a well-formed record (plausible length that fits, plausible seq,
 * good checksum) starts anywhere in (from, size) of fd. This is what tells
 * a torn tail (garbage to the end) from damage in the middle of a log.
 * The seq must lie between expected and the most records the remaining
 * bytes could hold, which rules out nearly every offset before the
 * checksum is computed. buf is scratch of cap >= PD_STORE_HEADER_BYTES.
 *
 * Returns 1 (found), 0 (none) or -errno.
 */
static int
s_valid_follows(int fd, uint64_t from, uint64_t size, uint64_t expected,
                uint8_t *buf, size_t cap)
{
    const uint64_t span = (size - from) / (PD_STORE_HEADER_BYTES + 1) + 1;
    uint64_t base = from + 1;
    while (base + PD_STORE_HEADER_BYTES <= size) {
        size_t n = (size_t)((size - base) < cap ? (size - base) : cap);
        int rc = pd_pread_all(fd, buf, n, base);
        if (rc < 0)
            return rc;
        for (size_t k = 0; k + PD_STORE_HEADER_BYTES <= n; k++) {
            const uint8_t *p = buf + k;
            uint64_t at = base + k;
            uint32_t len = s_get32(p);
            uint64_t seq = s_get64(p + 8);
            if (len == 0 || len > size - at - PD_STORE_HEADER_BYTES ||
                seq < expected || seq - expected > span)
                continue;
            uint32_t crc;
            if (k + PD_STORE_HEADER_BYTES + len <= n)
                crc = s_record_crc(p, p + PD_STORE_HEADER_BYTES, len);
            else if ((rc = s_crc_at(fd, p, at + PD_STORE_HEADER_BYTES, len,
                                    &crc)) < 0)
                return rc;
            if (crc == s_get32(p + 4))
                return 1;
        }
        if (n < PD_STORE_HEADER_BYTES)
            break;
        /* Overlap so that every start offset gets a full header. */
        base += n - (PD_STORE_HEADER_BYTES - 1);
    }
    return 0;
}

/* Scratch state shared by the segment scans of one open. */
typedef struct scan {
    uint8_t *buf;          /* read buffer */
    size_t cap;            /* its size */
    pd_store_scan_fn fn;   /* the caller's callback, or NULL */
    void *ctx;             /* its argument */
    char *errbuf;          /* where failures are described */
    size_t errlen;
} scan_t;

/* Grow the scan buffer to hold at least want bytes, keeping its contents. */
static int
s_scan_grow(scan_t *sc, size_t want)
{
    if (want <= sc->cap)
        return 0;
    uint8_t *p = realloc(sc->buf, want);
    if (p == NULL)
        return -ENOMEM;
    sc->buf = p;
    sc->cap = want;
    return 0;
}

/*
 * Handle a bad record at off in segment i (reason says why). In the newest
 * segment with nothing valid after it, it is a torn tail from a crash
 * during a write that was never acknowledged: cut it off. Anywhere else it
 * is damage to acknowledged data: refuse to open.
 */
static int
s_bad_record(pd_store_t *self, size_t i, uint64_t off, uint64_t size,
             uint64_t expected, const char *reason, scan_t *sc)
{
    segment_t *seg = &self->segs[i];
    char name[PD_STORE__NAME_LEN + 1];
    pd_store__segment_name(name, sizeof(name), seg->first_seq);
    if (i + 1 != self->nsegs)
        return s_corrupt(self, name, off, reason, sc->errbuf, sc->errlen);
    int rc = s_valid_follows(seg->fd, off, size, expected, sc->buf, sc->cap);
    if (rc < 0) {
        pd_errf(sc->errbuf, sc->errlen, "cannot read %s/%s: %s", self->dir,
                name, strerror(-rc));
        return rc;
    }
    if (rc > 0)
        return s_corrupt(self, name, off, reason, sc->errbuf, sc->errlen);
    if (ftruncate(seg->fd, (off_t)off) < 0 ||
        (self->opts.sync && fsync(seg->fd) < 0)) {
        rc = -errno;
        pd_errf(sc->errbuf, sc->errlen,
                "cannot truncate the torn tail of %s/%s: %s", self->dir, name,
                strerror(errno));
        return rc;
    }
    pd_log(PD_LOG_WARN,
           "store: torn tail in %s/%s at offset %" PRIu64 " (%s): cut %" PRIu64
           " bytes",
           self->dir, name, off, reason, size - off);
    self->stats.truncated_bytes += size - off;
    return 0;
}

/* Where a segment scan stands in the file and in sc->buf. */
typedef struct reader {
    int fd;
    uint64_t size; /* file size (bytes to scan) */
    uint64_t base; /* file offset of sc->buf[0] */
    size_t have;   /* bytes in sc->buf */
    size_t pos;    /* parse position in sc->buf */
    uint64_t got;  /* bytes read from the file so far */
} reader_t;

/*
 * Keep the unparsed bytes, move them to the front of the buffer, grow it
 * to hold need bytes, and read the next chunk (up to S_SCAN_READ bytes)
 * after them; the scan loop calls again while a record is incomplete.
 */
static int
s_refill(reader_t *r, scan_t *sc, size_t need)
{
    size_t avail = r->have - r->pos;
    memmove(sc->buf, sc->buf + r->pos, avail);
    r->base += r->pos;
    r->have = avail;
    r->pos = 0;
    int rc = s_scan_grow(sc, need);
    if (rc < 0)
        return rc;
    ssize_t n;
    do {
        n = read(r->fd, sc->buf + r->have,
                 sc->cap - r->have < S_SCAN_READ ? sc->cap - r->have
                                                 : S_SCAN_READ);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        r->size = r->got; /* the file shrank under us: it ends here */
    r->got += (uint64_t)n;
    r->have += (size_t)n;
    return 0;
}

/* What s_check_record() found at the parse position. */
enum {
    S_REC_GOOD = 0,  /* a whole record with a good checksum */
    S_REC_SHORT,     /* not all in the buffer: refill to *need bytes */
    S_REC_BAD,       /* a torn tail or damage: why says what */
};

/*
 * Check the record at the reader's position: header, length, and the
 * checksum once it is all in the buffer. *need is the bytes it takes.
 * *big_ok is the offset of an oversize record already checksummed from
 * the file.
 *
 * Returns:   S_REC_GOOD, S_REC_SHORT, S_REC_BAD, or -errno (a read).
 */
static int
s_check_record(const pd_store_t *self, const reader_t *r, const scan_t *sc,
               uint64_t *big_ok, size_t *need, char why[160])
{
    const uint64_t off = r->base + r->pos;
    const size_t avail = r->have - r->pos;
    *need = PD_STORE_HEADER_BYTES;
    if (avail < PD_STORE_HEADER_BYTES && r->got < r->size)
        return S_REC_SHORT;
    if (avail < PD_STORE_HEADER_BYTES) {
        snprintf(why, 160, "record header cut short (%zu of %d bytes)", avail,
                 PD_STORE_HEADER_BYTES);
        return S_REC_BAD;
    }
    const uint8_t *p = sc->buf + r->pos;
    uint32_t len = s_get32(p);
    *need = PD_STORE_HEADER_BYTES + (size_t)len;
    if (len == 0) {
        snprintf(why, 160, "record length 0");
        return S_REC_BAD;
    }
    if (*need > r->size - off) {
        snprintf(why, 160,
                 "record cut short (%" PRIu64 " of %zu bytes in the file)",
                 r->size - off, *need);
        return S_REC_BAD;
    }
    if (len > self->opts.max_record && off != *big_ok) {
        /*
         * A length over the limit is either damage or a record taken
         * under an earlier, larger max_record. Checksum it from the
         * file before buffering it, so a damaged length cannot make the
         * scan allocate for it; a whole record is kept, since cutting it
         * would lose acknowledged data.
         */
        uint32_t crc;
        int rc = s_crc_at(r->fd, p, off + PD_STORE_HEADER_BYTES, len, &crc);
        if (rc < 0)
            return rc;
        if (crc != s_get32(p + 4)) {
            snprintf(why, 160,
                     "record length %" PRIu32 " over the limit of %" PRIu32,
                     len, self->opts.max_record);
            return S_REC_BAD;
        }
        *big_ok = off;
    }
    if (avail < *need)
        return S_REC_SHORT;
    /* The checksummed fields and the payload lie back to back here. */
    if (pd_crc32c(0, p + 8, PD_STORE_HEADER_BYTES - 8 + (size_t)len)
        != s_get32(p + 4)) {
        snprintf(why, 160, "checksum mismatch");
        return S_REC_BAD;
    }
    return S_REC_GOOD;
}

/*
 * Take the good record p at off of segment i (named name): its seq must
 * be *expected; index it and hand it to the callback.
 * Returns 0 or a negative error (described in sc->errbuf).
 */
static int
s_take_record(pd_store_t *self, size_t i, const char *name, const uint8_t *p,
              uint64_t off, uint64_t *expected, scan_t *sc)
{
    segment_t *seg = &self->segs[i];
    uint32_t len = s_get32(p);
    uint64_t seq = s_get64(p + 8);
    int64_t at = (int64_t)s_get64(p + 16);
    int rc;
    if (seq != *expected) {
        char why[160];
        snprintf(why, sizeof(why),
                 "seq %" PRIu64 " where %" PRIu64 " was expected", seq,
                 *expected);
        return s_corrupt(self, name, off, why, sc->errbuf, sc->errlen);
    }
    if ((rc = pd_store__reserve(seg, seg->count + 1)) < 0) {
        pd_errf(sc->errbuf, sc->errlen, "out of memory indexing %s/%s",
                self->dir, name);
        return rc;
    }
    if (sc->fn != NULL
        && (rc = sc->fn(sc->ctx, seq, at, p + PD_STORE_HEADER_BYTES, len))
               != 0) {
        pd_errf(sc->errbuf, sc->errlen,
                "record seq %" PRIu64 " in %s/%s at offset %" PRIu64
                " was refused while rebuilding the indexes (%d)",
                seq, self->dir, name, off, rc);
        return rc;
    }
    seg->offsets[seg->count++] = off;
    if (at > seg->newest_at)
        seg->newest_at = at;
    (*expected)++;
    return 0;
}

/*
 * Open segment i (named name) for the scan, read-write if it is the
 * newest. 0 with *size set, or -errno (described in sc->errbuf).
 */
static int
s_open_segment(pd_store_t *self, size_t i, const char *name,
               uint64_t *expected, scan_t *sc, uint64_t *size)
{
    segment_t *seg = &self->segs[i];
    if (seg->first_seq != *expected) {
        char why[160];
        snprintf(why, sizeof(why),
                 "segment starts at seq %" PRIu64 " but seq %" PRIu64
                 " was expected (a segment file is missing or stray)",
                 seg->first_seq, *expected);
        return s_corrupt(self, name, 0, why, sc->errbuf, sc->errlen);
    }
    bool newest = i + 1 == self->nsegs;
    int fd = openat(self->dirfd, name,
                    (newest ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int rc = -errno;
        pd_errf(sc->errbuf, sc->errlen, "cannot open %s/%s: %s", self->dir,
                name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    seg->fd = fd;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    *size = (uint64_t)st.st_size;
    return 0;
}

/*
 * Scan segment i: check each record, index it and hand it to the callback.
 * *expected is the seq the next record must carry, and is advanced. Reads
 * in large chunks so that startup runs near disk speed.
 */
static int
s_scan_segment(pd_store_t *self, size_t i, uint64_t *expected, scan_t *sc)
{
    segment_t *seg = &self->segs[i];
    char name[PD_STORE__NAME_LEN + 1];
    char why[160];
    pd_store__segment_name(name, sizeof(name), seg->first_seq);
    reader_t r = { 0 };
    int rc = s_open_segment(self, i, name, expected, sc, &r.size);
    if (rc < 0)
        return rc;
    r.fd = seg->fd;
    uint64_t big_ok = UINT64_MAX; /* offset of an oversize record found whole */
    while (r.base + r.pos < r.size) {
        const uint64_t off = r.base + r.pos;
        size_t need;
        rc = s_check_record(self, &r, sc, &big_ok, &need, why);
        if (rc == S_REC_SHORT && (rc = s_refill(&r, sc, need)) == 0)
            continue;
        if (rc < 0)
            goto read_error;
        if (rc == S_REC_BAD) {
            /* Something wrong at off: a torn tail or corruption. */
            if ((rc = s_bad_record(self, i, off, r.size, *expected, why, sc))
                < 0)
                return rc;
            r.size = off;
        } else {
            rc = s_take_record(self, i, name, sc->buf + r.pos, off, expected,
                               sc);
            if (rc != 0)
                return rc;
            r.pos += need;
        }
    }
    seg->bytes = r.size;
    self->stats.bytes += r.size;
    if (i + 1 != self->nsegs) {
        pd_store__shrink(seg);
        close(seg->fd);
        seg->fd = -1;
    }
    return 0;
read_error:
    pd_errf(sc->errbuf, sc->errlen, "cannot read %s/%s: %s", self->dir, name,
            strerror(-rc));
    return rc;
}

static int
s_cmp_segments(const void *a, const void *b)
{
    uint64_t x = ((const segment_t *)a)->first_seq;
    uint64_t y = ((const segment_t *)b)->first_seq;
    return (x > y) - (x < y);
}

/* Find the segment files in the directory, oldest first. */
static int
s_list_segments(pd_store_t *self, char *errbuf, size_t errlen)
{
    int fd = dup(self->dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        pd_errf(errbuf, errlen, "cannot list %s: %s", self->dir, strerror(-rc));
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while ((errno = 0, e = readdir(d)) != NULL) {
        uint64_t seq;
        int r = s_parse_name(e->d_name, &seq);
        if (r == 0)
            continue;
        if (r < 0) {
            pd_errf(errbuf, errlen,
                    "segment file %s/%s has an impossible name; move it aside "
                    "(see docs/operations.md)",
                    self->dir, e->d_name);
            rc = -EBADMSG;
            break;
        }
        if (pd_store__push_segment(self, seq) == NULL) {
            rc = -ENOMEM;
            pd_errf(errbuf, errlen, "out of memory");
            break;
        }
    }
    if (rc == 0 && errno != 0) {
        rc = -errno;
        pd_errf(errbuf, errlen, "cannot list %s: %s", self->dir,
                strerror(errno));
    }
    closedir(d); /* also closes the dup */
    if (rc == 0 && self->nsegs > 1)
        qsort(self->segs, self->nsegs, sizeof(*self->segs), s_cmp_segments);
    return rc;
}

int
pd_store__scan(pd_store_t *self, pd_store_scan_fn fn, void *ctx,
               char *errbuf, size_t errlen)
{
    scan_t sc = { .fn = fn, .ctx = ctx, .errbuf = errbuf, .errlen = errlen };
    int rc = s_list_segments(self, errbuf, errlen);
    if (rc < 0)
        return rc;
    sc.cap = S_SCAN_CHUNK;
    if ((size_t)self->opts.max_record + PD_STORE_HEADER_BYTES > sc.cap)
        sc.cap = (size_t)self->opts.max_record + PD_STORE_HEADER_BYTES;
    if (self->nsegs > 0 && (sc.buf = malloc(sc.cap)) == NULL)
        return -ENOMEM;
    uint64_t expected = self->nsegs > 0 ? self->segs[0].first_seq : 1;
    for (size_t i = 0; i < self->nsegs && rc == 0; i++)
        rc = s_scan_segment(self, i, &expected, &sc);
    free(sc.buf);
    if (rc != 0)
        return rc;
    self->next_seq = expected;
    self->last_seq = expected - 1;
    self->stats.segments = self->nsegs;
    return 0;
}
