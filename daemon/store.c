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
#include "store_int.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define S_DEFAULT_MAX_RECORD (1u << 20)
#define S_PEND_KEEP (8u << 20)   /* queue buffer kept between syncs */
#define S_READ_FDS 8             /* older segments held open for reads */
#define S_LOCK_NAME "store.lock"

/* --- little-endian fields ------------------------------------------------ */

static void
s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* --- small helpers -------------------------------------------------------- */

void
pd_store__segment_name(char *out, size_t cap, uint64_t first_seq)
{
    snprintf(out, cap, "seg-%020" PRIu64 ".log", first_seq);
}

void
pd_store__errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* Write all of buf at off, retrying short writes and EINTR. */
static int
s_pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int
pd_store__pread_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int
pd_store__reserve(segment_t *seg, uint64_t want)
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

void
pd_store__shrink(segment_t *seg)
{
    if (seg->count == 0 || seg->count == seg->cap)
        return;
    uint64_t *p = realloc(seg->offsets, (size_t)seg->count * sizeof(uint64_t));
    if (p != NULL) {
        seg->offsets = p;
        seg->cap = seg->count;
    }
}

segment_t *
pd_store__push_segment(pd_store_t *self, uint64_t first_seq)
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
    char name[PD_STORE__NAME_LEN + 1];
    pd_store__segment_name(name, sizeof(name), seg->first_seq);
    int fd = openat(self->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    seg->fd = fd;
    self->read_fds++;
    return fd;
}

/* --- public API ----------------------------------------------------------- */

/* Make the directory if needed, open it and take its lock. 0 or -errno. */
static int
s_lock_dir(pd_store_t *self, const char *dir, char *errbuf, size_t errlen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        pd_store__errf(errbuf, errlen, "cannot create %s: %s", dir,
                       strerror(errno));
        return -errno;
    }
    self->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dirfd < 0) {
        int rc = -errno;
        pd_store__errf(errbuf, errlen, "cannot open %s: %s", dir,
                       strerror(errno));
        return rc;
    }
    /* Two writers on one log would interleave records: refuse the second. */
    self->lockfd = openat(self->dirfd, S_LOCK_NAME,
                          O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lockfd < 0) {
        int rc = -errno;
        pd_store__errf(errbuf, errlen, "cannot open %s/%s: %s", dir,
                       S_LOCK_NAME, strerror(errno));
        return rc;
    }
    if (flock(self->lockfd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        pd_store__errf(errbuf, errlen,
                       "%s is in use by another process (lock on %s/%s)", dir,
                       dir, S_LOCK_NAME);
        return rc;
    }
    return 0;
}

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
    if ((*err = s_lock_dir(self, dir, errbuf, errlen)) < 0
        || (*err = pd_store__scan(self, scan, ctx, errbuf, errlen)) != 0)
        goto fail;
    *err = 0;
    return self;
fail:
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
    if (store->pend_cap - store->pend_len < rec) {
        size_t cap = store->pend_cap ? store->pend_cap : 65536;
        while (cap - store->pend_len < rec) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        uint8_t *p = realloc(store->pend, cap);
        if (p == NULL)
            return -ENOMEM;
        store->pend = p;
        store->pend_cap = cap;
    }
    uint8_t *h = store->pend + store->pend_len;
    s_put32(h, (uint32_t)len);
    s_put64(h + 8, seq);
    s_put64(h + 16, (uint64_t)received_at);
    memcpy(h + PD_STORE_HEADER_BYTES, payload, len);
    s_put32(h + 4, s_record_crc(h, h + PD_STORE_HEADER_BYTES, len));
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
    char name[PD_STORE__NAME_LEN + 1];
    pd_store__segment_name(name, sizeof(name), seq);
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
        pd_store__shrink(old);
        if (old->fd >= 0)
            self->read_fds++; /* it becomes an older segment */
    }
    segment_t *seg = pd_store__push_segment(self, seq); /* room reserved above */
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
            size_t rec = PD_STORE_HEADER_BYTES + s_get32(store->pend + end);
            size += rec;
            end += rec;
            n++;
        }
        if ((rc = pd_store__reserve(cur, cur->count + n)) < 0)
            goto fail;
        char name[PD_STORE__NAME_LEN + 1];
        pd_store__segment_name(name, sizeof(name), cur->first_seq);
        if ((rc = s_pwrite_all(cur->fd, store->pend + pos, end - pos,
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
            int64_t at = (int64_t)s_get64(h + 16);
            cur->offsets[cur->count++] = cur->bytes + (p - pos);
            if (at > cur->newest_at)
                cur->newest_at = at;
            p += PD_STORE_HEADER_BYTES + s_get32(h);
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

int
pd_store_start_at(pd_store_t *store, uint64_t seq)
{
    if (store == NULL || seq == 0)
        return -EINVAL;
    if (store->failed)
        return -EIO;
    if (store->last_seq != 0 || store->pend_len != 0 || store->nsegs > 1)
        return -EEXIST;
    /* An empty segment left by a start that was cut short before its
     * first record: it would name the wrong first seq. */
    if (store->nsegs == 1) {
        segment_t *seg = &store->segs[0];
        char name[PD_STORE__NAME_LEN + 1];
        pd_store__segment_name(name, sizeof(name), seg->first_seq);
        if (unlinkat(store->dirfd, name, 0) < 0 && errno != ENOENT)
            return -errno;
        if (seg->fd >= 0)
            close(seg->fd);
        free(seg->offsets);
        store->nsegs--;
        store->stats.segments--;
    }
    store->next_seq = seq;
    store->last_seq = seq - 1;
    return 0;
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

/*
 * Where durable record seq lies: its segment *i, file offset *off and
 * payload size *need. Returns 0 or -ENOENT.
 */
static int
s_locate(const pd_store_t *store, uint64_t seq, size_t *i, uint64_t *off,
         size_t *need)
{
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
    const segment_t *seg = &store->segs[lo];
    if (seq < seg->first_seq || seq - seg->first_seq >= seg->count)
        return -ENOENT;
    uint64_t k = seq - seg->first_seq;
    uint64_t end = k + 1 < seg->count ? seg->offsets[k + 1] : seg->bytes;
    *i = lo;
    *off = seg->offsets[k];
    *need = (size_t)(end - *off - PD_STORE_HEADER_BYTES);
    return 0;
}

/* Read the header and need payload bytes of the record at off. 0 or -errno. */
static int
s_read_at(int fd, uint64_t off, uint8_t hdr[PD_STORE_HEADER_BYTES], void *buf,
          size_t need)
{
    struct iovec iov[2] = {{hdr, PD_STORE_HEADER_BYTES}, {buf, need}};
    size_t want = PD_STORE_HEADER_BYTES + need;
    ssize_t n;
    do {
        n = preadv(fd, iov, 2, (off_t)off);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if ((size_t)n == want)
        return 0;
    /* Short read from a regular file: finish piece by piece. */
    size_t done = (size_t)n;
    if (done < PD_STORE_HEADER_BYTES) {
        int rc = pd_store__pread_all(fd, hdr + done,
                                     PD_STORE_HEADER_BYTES - done, off + done);
        if (rc < 0)
            return rc;
        done = PD_STORE_HEADER_BYTES;
    }
    return pd_store__pread_all(fd, (uint8_t *)buf
                                       + (done - PD_STORE_HEADER_BYTES),
                               want - done, off + done);
}

int
pd_store_read(pd_store_t *store, uint64_t seq, int64_t *received_at,
              void *buf, size_t cap, size_t *len)
{
    if (store == NULL || (buf == NULL && cap > 0))
        return -EINVAL;
    size_t i, need;
    uint64_t off;
    int rc = s_locate(store, seq, &i, &off, &need);
    if (rc < 0)
        return rc;
    if (len != NULL)
        *len = need;
    if (need > cap)
        return -ENOBUFS;
    int fd = s_segment_fd(store, i);
    if (fd < 0)
        return fd;
    uint8_t hdr[PD_STORE_HEADER_BYTES];
    if ((rc = s_read_at(fd, off, hdr, buf, need)) < 0)
        return rc;
    if (s_get32(hdr) != need || s_get64(hdr + 8) != seq ||
        s_record_crc(hdr, buf, need) != s_get32(hdr + 4))
        return -EBADMSG;
    if (received_at != NULL)
        *received_at = (int64_t)s_get64(hdr + 16);
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
        char name[PD_STORE__NAME_LEN + 1];
        pd_store__segment_name(name, sizeof(name), seg->first_seq);
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

void
pd_store_stats_register(const pd_store_t *store, pd_stats_t *st)
{
    const pd_store_stats_t *s = &store->stats;
    pd_stats_counter(st, PD_STAT_STORE_SYNCS, &s->syncs);
    pd_stats_counter(st, PD_STAT_STORE_RECORDS_SYNCED, &s->records_synced);
    pd_stats_counter(st, PD_STAT_STORE_BYTES, &s->bytes);
    pd_stats_counter(st, PD_STAT_STORE_SEGMENTS, &s->segments);
    pd_stats_counter(st, PD_STAT_STORE_TRUNCATED_BYTES, &s->truncated_bytes);
}
