/*
 * store.c - parleyd's append-only log: segment files, group commit,
 * startup scan with torn-tail repair, an offset index for replay, and
 * retention.
 *
 * Memory: the index is one uint64 file offset per durable record, in one
 * array per segment (record seq - segment first seq = slot), so a million
 * records cost about 8 MiB. Descriptors: the current segment stays open;
 * older segments are opened on demand for reads, at most S_READ_FDS at a
 * time.
 *
 * A lock file ("store.lock", flock) in the state directory keeps a second
 * process from appending to the same log.
 */
#include "store.h"

#include "crc32c.h"
#include "fileio.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define S_DEFAULT_MAX_RECORD (1u << 20)
#define S_SCAN_CHUNK (4u << 20)  /* scan buffer, grown for larger records */
/*
 * Bytes per read() while scanning. Small enough that what a read copies
 * is still in the CPU's L2 cache when the checksum and the index reads
 * come to it; with 4 MiB reads the scan ran nearly twice as long.
 */
#define S_SCAN_READ (256u << 10)
#define S_PEND_KEEP (8u << 20)   /* queue buffer kept between syncs */
#define S_READ_FDS 8             /* older segments held open for reads */
#define S_NAME_LEN 28            /* "seg-" + 20 digits + ".log" */
#define S_LOCK_NAME "store.lock"

typedef struct segment {
    uint64_t first_seq; /* seq of its first record, from the file name */
    uint64_t count;     /* durable records in it */
    uint64_t bytes;     /* file size up to the end of the last durable record */
    int64_t newest_at;  /* largest received_at of its records (if count > 0) */
    uint64_t *offsets;  /* offsets[i]: file offset of record first_seq + i */
    uint64_t cap;       /* slots allocated in offsets */
    int fd;             /* open descriptor or -1; always open for the current one */
    uint64_t used;      /* store->tick when last read, to close the least recent */
} segment_t;

struct pd_store {
    char *dir;                /* state directory, for file names in messages */
    int dirfd;                /* the directory: openat, unlinkat, fsync */
    int lockfd;               /* store.lock, flocked while open */
    pd_store_opts_t opts;     /* as given, with defaults filled in */
    segment_t *segs;          /* oldest first; the last is written to */
    size_t nsegs;             /* segments in use */
    size_t segcap;            /* segments allocated */
    uint64_t next_seq;        /* seq for the next append */
    uint64_t last_seq;        /* last durable seq, 0 if none */
    uint8_t *pend;            /* queued records, encoded as on disk */
    size_t pend_len;          /* bytes queued */
    size_t pend_cap;          /* bytes allocated */
    uint64_t tick;            /* clock for the read-descriptor LRU */
    unsigned read_fds;        /* descriptors open on non-current segments */
    bool failed;              /* a write or sync failed: refuse appends */
    pd_store_stats_t stats;   /* bytes and segments kept current */
};

/* CRC of a record: the seq and received fields, then the payload. */
static uint32_t
s_record_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    return pd_crc32c(pd_crc32c(0, hdr + 8, 16), payload, len);
}

/* --- small helpers -------------------------------------------------------- */

static void
s_segment_name(char *out, size_t cap, uint64_t first_seq)
{
    snprintf(out, cap, "seg-%020" PRIu64 ".log", first_seq);
}

/*
 * Parse a segment file name. Returns 1 with *seq set, 0 if the name is not
 * a segment's at all, or -1 if it looks like one but the number is unusable.
 */
static int
s_parse_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != S_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
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

/* Make room for want offsets in seg's index. */
static int
s_reserve(segment_t *seg, uint64_t want)
{
    if (want <= seg->cap)
        return 0;
    uint64_t cap = seg->cap ? seg->cap : 1024;
    while (cap < want)
        cap *= 2;
    if (cap > SIZE_MAX / sizeof(uint64_t))
        return -ENOMEM;
    uint64_t *p = realloc(seg->offsets, (size_t)cap * sizeof(uint64_t));
    if (p == NULL)
        return -ENOMEM;
    seg->offsets = p;
    seg->cap = cap;
    return 0;
}

/* A segment that will not grow again gives its slack back. */
static void
s_shrink(segment_t *seg)
{
    if (seg->count == 0 || seg->count == seg->cap)
        return;
    uint64_t *p = realloc(seg->offsets, (size_t)seg->count * sizeof(uint64_t));
    if (p != NULL) {
        seg->offsets = p;
        seg->cap = seg->count;
    }
}

/* Append an empty segment entry; the caller fills it in. */
static segment_t *
s_push_segment(pd_store_t *self, uint64_t first_seq)
{
    if (self->nsegs == self->segcap) {
        size_t cap = self->segcap ? self->segcap * 2 : 16;
        segment_t *p = realloc(self->segs, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        self->segs = p;
        self->segcap = cap;
    }
    segment_t *seg = &self->segs[self->nsegs++];
    memset(seg, 0, sizeof(*seg));
    seg->first_seq = first_seq;
    seg->newest_at = INT64_MIN;
    seg->fd = -1;
    return seg;
}

static void
s_close_fd(pd_store_t *self, size_t i)
{
    segment_t *seg = &self->segs[i];
    if (seg->fd < 0)
        return;
    close(seg->fd);
    seg->fd = -1;
    if (i + 1 != self->nsegs)
        self->read_fds--;
}

/* Close least recently read descriptors of older segments until at most
 * limit stay open. */
static void
s_trim_fds(pd_store_t *self, unsigned limit)
{
    while (self->read_fds > limit) {
        size_t lru = SIZE_MAX;
        for (size_t k = 0; k + 1 < self->nsegs; k++)
            if (self->segs[k].fd >= 0 &&
                (lru == SIZE_MAX || self->segs[k].used < self->segs[lru].used))
                lru = k;
        if (lru == SIZE_MAX)
            return;
        s_close_fd(self, lru);
    }
}

/* A descriptor for reading segment i, opening it if needed. */
static int
s_segment_fd(pd_store_t *self, size_t i)
{
    segment_t *seg = &self->segs[i];
    seg->used = ++self->tick;
    if (seg->fd >= 0)
        return seg->fd;
    s_trim_fds(self, S_READ_FDS - 1);
    char name[S_NAME_LEN + 1];
    s_segment_name(name, sizeof(name), seg->first_seq);
    int fd = openat(self->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    seg->fd = fd;
    self->read_fds++;
    return fd;
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

/* --- scanning at open ----------------------------------------------------- */

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
            uint32_t len = pd_get32le(p);
            uint64_t seq = pd_get64le(p + 8);
            if (len == 0 || len > size - at - PD_STORE_HEADER_BYTES ||
                seq < expected || seq - expected > span)
                continue;
            uint32_t crc;
            if (k + PD_STORE_HEADER_BYTES + len <= n)
                crc = s_record_crc(p, p + PD_STORE_HEADER_BYTES, len);
            else if ((rc = s_crc_at(fd, p, at + PD_STORE_HEADER_BYTES, len,
                                    &crc)) < 0)
                return rc;
            if (crc == pd_get32le(p + 4))
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
    char name[S_NAME_LEN + 1];
    s_segment_name(name, sizeof(name), seg->first_seq);
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
        pd_errf(sc->errbuf, sc->errlen, "cannot truncate the torn tail of %s/%s: %s",
               self->dir, name, strerror(errno));
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

/*
 * Scan segment i: check each record, index it and hand it to the callback.
 * *expected is the seq the next record must carry, and is advanced. Reads
 * in large chunks so that startup runs near disk speed.
 */
static int
s_scan_segment(pd_store_t *self, size_t i, uint64_t *expected, scan_t *sc)
{
    segment_t *seg = &self->segs[i];
    const bool newest = i + 1 == self->nsegs;
    char name[S_NAME_LEN + 1];
    char why[160];
    s_segment_name(name, sizeof(name), seg->first_seq);

    if (seg->first_seq != *expected) {
        snprintf(why, sizeof(why),
                 "segment starts at seq %" PRIu64 " but seq %" PRIu64
                 " was expected (a segment file is missing or stray)",
                 seg->first_seq, *expected);
        return s_corrupt(self, name, 0, why, sc->errbuf, sc->errlen);
    }
    int fd = openat(self->dirfd, name, (newest ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int rc = -errno;
        pd_errf(sc->errbuf, sc->errlen, "cannot open %s/%s: %s", self->dir, name,
               strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    seg->fd = fd;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    reader_t r = {.fd = fd, .size = (uint64_t)st.st_size};
    uint64_t big_ok = UINT64_MAX; /* offset of an oversize record found whole */
    int rc = 0;
    for (;;) {
        const uint64_t off = r.base + r.pos;
        const size_t avail = r.have - r.pos;
        if (off >= r.size)
            break;
        if (avail < PD_STORE_HEADER_BYTES && r.got < r.size) {
            if ((rc = s_refill(&r, sc, PD_STORE_HEADER_BYTES)) < 0)
                goto read_error;
            continue;
        }
        const uint8_t *p = sc->buf + r.pos;
        uint32_t len = avail >= PD_STORE_HEADER_BYTES ? pd_get32le(p) : 0;
        size_t need = PD_STORE_HEADER_BYTES + (size_t)len;
        if (avail < PD_STORE_HEADER_BYTES) {
            snprintf(why, sizeof(why), "record header cut short (%zu of %d bytes)",
                     avail, PD_STORE_HEADER_BYTES);
            goto bad;
        }
        if (len == 0) {
            snprintf(why, sizeof(why), "record length 0");
            goto bad;
        }
        if (need > r.size - off) {
            snprintf(why, sizeof(why),
                     "record cut short (%" PRIu64 " of %zu bytes in the file)",
                     r.size - off, need);
            goto bad;
        }
        if (len > self->opts.max_record && off != big_ok) {
            /*
             * A length over the limit is either damage or a record taken
             * under an earlier, larger max_record. Checksum it from the
             * file before buffering it, so a damaged length cannot make
             * the scan allocate for it; a whole record is kept, since
             * cutting it would lose acknowledged data.
             */
            uint32_t crc;
            if ((rc = s_crc_at(fd, p, off + PD_STORE_HEADER_BYTES, len, &crc)) < 0)
                goto read_error;
            if (crc != pd_get32le(p + 4)) {
                snprintf(why, sizeof(why),
                         "record length %" PRIu32 " over the limit of %" PRIu32,
                         len, self->opts.max_record);
                goto bad;
            }
            big_ok = off;
        }
        if (avail < need) {
            if ((rc = s_refill(&r, sc, need)) < 0)
                goto read_error;
            continue;
        }
        /* The checksummed fields and the payload lie back to back here. */
        if (pd_crc32c(0, p + 8, PD_STORE_HEADER_BYTES - 8 + (size_t)len) !=
            pd_get32le(p + 4)) {
            snprintf(why, sizeof(why), "checksum mismatch");
            goto bad;
        }
        uint64_t seq = pd_get64le(p + 8);
        int64_t at = (int64_t)pd_get64le(p + 16);
        if (seq != *expected) {
            snprintf(why, sizeof(why),
                     "seq %" PRIu64 " where %" PRIu64 " was expected", seq,
                     *expected);
            return s_corrupt(self, name, off, why, sc->errbuf, sc->errlen);
        }
        if ((rc = s_reserve(seg, seg->count + 1)) < 0) {
            pd_errf(sc->errbuf, sc->errlen, "out of memory indexing %s/%s",
                   self->dir, name);
            return rc;
        }
        if (sc->fn != NULL &&
            (rc = sc->fn(sc->ctx, seq, at, p + PD_STORE_HEADER_BYTES, len)) != 0) {
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
        r.pos += need;
        continue;
    bad:
        /* Something wrong at off: a torn tail or corruption. */
        if ((rc = s_bad_record(self, i, off, r.size, *expected, why, sc)) < 0)
            return rc;
        r.size = off;
        break;
    }
    seg->bytes = r.size;
    self->stats.bytes += r.size;
    if (!newest) {
        s_shrink(seg);
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
        if (s_push_segment(self, seq) == NULL) {
            rc = -ENOMEM;
            pd_errf(errbuf, errlen, "out of memory");
            break;
        }
    }
    if (rc == 0 && errno != 0) {
        rc = -errno;
        pd_errf(errbuf, errlen, "cannot list %s: %s", self->dir, strerror(errno));
    }
    closedir(d); /* also closes the dup */
    if (rc == 0 && self->nsegs > 1)
        qsort(self->segs, self->nsegs, sizeof(*self->segs), s_cmp_segments);
    return rc;
}

/* --- public API ----------------------------------------------------------- */

pd_store_t *
pd_store_open(const char *dir, const pd_store_opts_t *opts,
              pd_store_scan_fn scan, void *ctx, char *errbuf, size_t errlen,
              int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (dir == NULL) {
        *err = -EINVAL;
        return NULL;
    }
    scan_t sc = {.fn = scan, .ctx = ctx, .errbuf = errbuf, .errlen = errlen};
    pd_store_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->dirfd = -1;
    self->lockfd = -1;
    if (opts != NULL)
        self->opts = *opts;
    if (self->opts.segment_bytes == 0)
        self->opts.segment_bytes = S_DEFAULT_SEGMENT_BYTES;
    if (self->opts.max_record == 0)
        self->opts.max_record = S_DEFAULT_MAX_RECORD;
    if ((self->dir = strdup(dir)) == NULL) {
        *err = -ENOMEM;
        goto fail;
    }

    if ((self->dirfd = pd_dir_open(dir, errbuf, errlen)) < 0) {
        *err = self->dirfd;
        goto fail;
    }
    /* Two writers on one log would interleave records: refuse the second. */
    self->lockfd = openat(self->dirfd, S_LOCK_NAME,
                          O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lockfd < 0) {
        *err = -errno;
        pd_errf(errbuf, errlen, "cannot open %s/%s: %s", dir, S_LOCK_NAME,
               strerror(errno));
        goto fail;
    }
    if (flock(self->lockfd, LOCK_EX | LOCK_NB) < 0) {
        *err = errno == EWOULDBLOCK ? -EBUSY : -errno;
        pd_errf(errbuf, errlen, "%s is in use by another process (lock on %s/%s)",
               dir, dir, S_LOCK_NAME);
        goto fail;
    }

    if ((*err = s_list_segments(self, errbuf, errlen)) < 0)
        goto fail;
    sc.cap = S_SCAN_CHUNK;
    if ((size_t)self->opts.max_record + PD_STORE_HEADER_BYTES > sc.cap)
        sc.cap = (size_t)self->opts.max_record + PD_STORE_HEADER_BYTES;
    if (self->nsegs > 0 && (sc.buf = malloc(sc.cap)) == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    uint64_t expected = self->nsegs > 0 ? self->segs[0].first_seq : 1;
    for (size_t i = 0; i < self->nsegs; i++) {
        if ((*err = s_scan_segment(self, i, &expected, &sc)) != 0)
            goto fail;
    }
    free(sc.buf);
    sc.buf = NULL;
    self->next_seq = expected;
    self->last_seq = expected - 1;
    self->stats.segments = self->nsegs;
    *err = 0;
    return self;
fail:
    free(sc.buf);
    pd_store_close(&self);
    return NULL;
}

void
pd_store_close(pd_store_t **store)
{
    if (store == NULL || *store == NULL)
        return;
    pd_store_t *self = *store;
    if (!self->failed && self->pend_len > 0) {
        int rc = pd_store_sync(self);
        if (rc < 0)
            pd_log(PD_LOG_ERROR, "store: writing queued records at close: %s",
                   strerror(-rc));
    }
    for (size_t i = 0; i < self->nsegs; i++) {
        if (self->segs[i].fd >= 0)
            close(self->segs[i].fd);
        free(self->segs[i].offsets);
    }
    free(self->segs);
    free(self->pend);
    if (self->lockfd >= 0)
        close(self->lockfd); /* releases the lock */
    if (self->dirfd >= 0)
        close(self->dirfd);
    free(self->dir);
    free(self);
    *store = NULL;
}

int
pd_store_append(pd_store_t *store, uint64_t seq, int64_t received_at,
                const void *payload, size_t len)
{
    if (store == NULL || (payload == NULL && len > 0))
        return -EINVAL;
    if (store->failed)
        return -EIO;
    if (seq != store->next_seq)
        return -EINVAL;
    if (len > store->opts.max_record)
        return -EMSGSIZE;
    /* A zero-length record reads back as corruption; no update is empty. */
    if (len == 0)
        return -EINVAL;
    size_t rec = PD_STORE_HEADER_BYTES + len;
    int rc = pd_buf_reserve(&store->pend, &store->pend_cap, store->pend_len, rec, 65536);
    if (rc < 0)
        return rc;
    uint8_t *h = store->pend + store->pend_len;
    pd_put32le(h, (uint32_t)len);
    pd_put64le(h + 8, seq);
    pd_put64le(h + 16, (uint64_t)received_at);
    memcpy(h + PD_STORE_HEADER_BYTES, payload, len);
    pd_put32le(h + 4, s_record_crc(h, h + PD_STORE_HEADER_BYTES, len));
    store->pend_len += rec;
    store->next_seq++;
    return 0;
}

/*
 * Start a new segment whose first record will be seq: create the file and
 * make its directory entry durable before any record is acked from it.
 */
static int
s_roll(pd_store_t *self, uint64_t seq)
{
    char name[S_NAME_LEN + 1];
    s_segment_name(name, sizeof(name), seq);
    if (self->nsegs == self->segcap) {
        size_t cap = self->segcap ? self->segcap * 2 : 16;
        segment_t *p = realloc(self->segs, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        self->segs = p;
        self->segcap = cap;
    }
    int fd = openat(self->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                    0640);
    if (fd < 0) {
        int rc = -errno;
        pd_log(PD_LOG_ERROR, "store: cannot create %s/%s: %s", self->dir, name,
               strerror(errno));
        return rc;
    }
    if (self->opts.sync && fsync(self->dirfd) < 0) {
        int rc = -errno;
        pd_log(PD_LOG_ERROR, "store: fsync of %s after creating %s: %s",
               self->dir, name, strerror(errno));
        close(fd);
        unlinkat(self->dirfd, name, 0);
        return rc;
    }
    if (self->nsegs > 0) {
        segment_t *old = &self->segs[self->nsegs - 1];
        s_shrink(old);
        if (old->fd >= 0)
            self->read_fds++; /* it becomes an older segment */
    }
    segment_t *seg = s_push_segment(self, seq); /* room reserved above */
    seg->fd = fd;
    self->stats.segments++;
    s_trim_fds(self, S_READ_FDS);
    return 0;
}

/*
 * Write the queue to the current segment (rolling where a segment is
 * full) and fdatasync. Normally that is one pwrite and one fdatasync for
 * every record queued since the last call; a roll adds one of each plus
 * the directory fsync.
 */
int
pd_store_sync(pd_store_t *store)
{
    if (store == NULL)
        return -EINVAL;
    if (store->failed)
        return -EIO;
    size_t pos = 0;
    uint64_t seq = store->last_seq + 1;
    int rc = 0;
    while (pos < store->pend_len) {
        segment_t *cur = store->nsegs ? &store->segs[store->nsegs - 1] : NULL;
        if (cur == NULL ||
            (cur->count > 0 && cur->bytes >= store->opts.segment_bytes)) {
            if ((rc = s_roll(store, seq)) < 0)
                goto fail;
            cur = &store->segs[store->nsegs - 1];
        }
        /* The records that go into this segment: while it is under size. */
        size_t end = pos;
        uint64_t n = 0, size = cur->bytes;
        while (end < store->pend_len &&
               (n == 0 || size < store->opts.segment_bytes)) {
            size_t rec = PD_STORE_HEADER_BYTES + pd_get32le(store->pend + end);
            size += rec;
            end += rec;
            n++;
        }
        if ((rc = s_reserve(cur, cur->count + n)) < 0)
            goto fail;
        char name[S_NAME_LEN + 1];
        s_segment_name(name, sizeof(name), cur->first_seq);
        if ((rc = pd_pwrite_all(cur->fd, store->pend + pos, end - pos,
                               cur->bytes)) < 0) {
            pd_log(PD_LOG_ERROR, "store: write to %s/%s: %s", store->dir, name,
                   strerror(-rc));
            goto fail;
        }
        if (store->opts.sync) {
            if (fdatasync(cur->fd) < 0) {
                rc = -errno;
                pd_log(PD_LOG_ERROR, "store: fdatasync of %s/%s: %s",
                       store->dir, name, strerror(errno));
                goto fail;
            }
            store->stats.syncs++;
        }
        /* Durable now: index the records. */
        for (size_t p = pos; p < end;) {
            const uint8_t *h = store->pend + p;
            int64_t at = (int64_t)pd_get64le(h + 16);
            cur->offsets[cur->count++] = cur->bytes + (p - pos);
            if (at > cur->newest_at)
                cur->newest_at = at;
            p += PD_STORE_HEADER_BYTES + pd_get32le(h);
        }
        cur->bytes = size;
        store->stats.bytes += end - pos;
        store->stats.records_synced += n;
        store->last_seq += n;
        seq += n;
        pos = end;
    }
    store->pend_len = 0;
    if (store->pend_cap > S_PEND_KEEP) {
        /* One burst should not pin its buffer forever. */
        free(store->pend);
        store->pend = NULL;
        store->pend_cap = 0;
    }
    return 0;
fail:
    store->failed = true;
    return rc;
}

uint64_t
pd_store_next_seq(const pd_store_t *store)
{
    return store ? store->next_seq : 0;
}

uint64_t
pd_store_last_seq(const pd_store_t *store)
{
    return store ? store->last_seq : 0;
}

uint64_t
pd_store_first_seq(const pd_store_t *store)
{
    if (store == NULL)
        return 0;
    for (size_t i = 0; i < store->nsegs; i++)
        if (store->segs[i].count > 0)
            return store->segs[i].first_seq;
    return 0;
}

int
pd_store_read(pd_store_t *store, uint64_t seq, int64_t *received_at,
              void *buf, size_t cap, size_t *len)
{
    if (store == NULL || (buf == NULL && cap > 0))
        return -EINVAL;
    if (seq == 0 || seq > store->last_seq || store->nsegs == 0)
        return -ENOENT;
    /* The last segment whose first seq is <= seq. */
    size_t lo = 0, hi = store->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (store->segs[mid].first_seq <= seq)
            lo = mid;
        else
            hi = mid;
    }
    segment_t *seg = &store->segs[lo];
    if (seq < seg->first_seq || seq - seg->first_seq >= seg->count)
        return -ENOENT;
    uint64_t idx = seq - seg->first_seq;
    uint64_t off = seg->offsets[idx];
    uint64_t end = idx + 1 < seg->count ? seg->offsets[idx + 1] : seg->bytes;
    size_t need = (size_t)(end - off - PD_STORE_HEADER_BYTES);
    if (len != NULL)
        *len = need;
    if (need > cap)
        return -ENOBUFS;
    int fd = s_segment_fd(store, lo);
    if (fd < 0)
        return fd;
    uint8_t hdr[PD_STORE_HEADER_BYTES];
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {buf, need}};
    size_t want = sizeof(hdr) + need;
    ssize_t n;
    do {
        n = preadv(fd, iov, 2, (off_t)off);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if ((size_t)n < want) {
        /* Short read from a regular file: finish piece by piece. */
        int rc;
        size_t done = (size_t)n;
        if (done < sizeof(hdr)) {
            rc = pd_pread_all(fd, hdr + done, sizeof(hdr) - done, off + done);
            if (rc < 0)
                return rc;
            done = sizeof(hdr);
        }
        rc = pd_pread_all(fd, (uint8_t *)buf + (done - sizeof(hdr)), want - done,
                         off + done);
        if (rc < 0)
            return rc;
    }
    if (pd_get32le(hdr) != need || pd_get64le(hdr + 8) != seq ||
        s_record_crc(hdr, buf, need) != pd_get32le(hdr + 4))
        return -EBADMSG;
    if (received_at != NULL)
        *received_at = (int64_t)pd_get64le(hdr + 16);
    return 0;
}

int
pd_store_retain(pd_store_t *store, int64_t now_ms)
{
    if (store == NULL)
        return -EINVAL;
    int64_t cutoff = INT64_MIN;
    if (store->opts.max_age_ms > 0 &&
        __builtin_sub_overflow(now_ms, store->opts.max_age_ms, &cutoff))
        cutoff = INT64_MIN;
    int removed = 0;
    while (store->nsegs > 1) {
        segment_t *seg = &store->segs[0];
        bool over = store->opts.max_bytes > 0 &&
                    store->stats.bytes > store->opts.max_bytes;
        bool old = store->opts.max_age_ms > 0 && seg->count > 0 &&
                   seg->newest_at < cutoff;
        if (!over && !old)
            break;
        char name[S_NAME_LEN + 1];
        s_segment_name(name, sizeof(name), seg->first_seq);
        if (unlinkat(store->dirfd, name, 0) < 0 && errno != ENOENT) {
            int rc = -errno;
            pd_log(PD_LOG_ERROR, "store: cannot remove %s/%s: %s", store->dir,
                   name, strerror(errno));
            return rc;
        }
        pd_log(PD_LOG_INFO,
               "store: retention removed %s/%s (seqs %" PRIu64 "-%" PRIu64
               ", %" PRIu64 " bytes)",
               store->dir, name, seg->first_seq,
               seg->first_seq + seg->count - 1, seg->bytes);
        s_close_fd(store, 0);
        free(seg->offsets);
        store->stats.bytes -= seg->bytes;
        store->stats.segments--;
        memmove(&store->segs[0], &store->segs[1],
                (store->nsegs - 1) * sizeof(*store->segs));
        store->nsegs--;
        removed++;
        /*
         * Make each removal durable before the next: after a crash the
         * segments left must still run on from each other, which they
         * would not if a later unlink survived and an earlier one did not.
         */
        if (store->opts.sync && fsync(store->dirfd) < 0)
            return -errno;
    }
    return removed;
}

void
pd_store_get_stats(const pd_store_t *store, pd_store_stats_t *out)
{
    if (out == NULL)
        return;
    if (store == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = store->stats;
}
