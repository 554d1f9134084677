/*
 * store.c - parleyd's append-only log proper: segment files, append and
 * group commit, rolling over to a new segment, reads through an offset
 * index. The scan at open is in store_scan.c, the lock, the checks on the
 * state directory and the disk reserve in store_guard.c, retention in
 * store_retain.c (store_int.h).
 *
 * Memory: the index is one uint64 file offset per durable record, in one
 * array per segment (record seq - segment first seq = slot), so a million
 * records cost about 8 MiB. Descriptors: the current segment stays open;
 * older segments are opened on demand for reads, at most S_READ_FDS at a
 * time.
 */
#include "store_int.h"

#include "log.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define S_DEFAULT_MAX_RECORD (1u << 20)
#define S_PEND_KEEP (8u << 20)   /* queue buffer kept between syncs */
#define S_READ_FDS 8             /* older segments held open for reads */
#define S_SOFT_LOG_MS 60000      /* the same sync failure logged this often */

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

/* --- failures ------------------------------------------------------------ */

static void
s_vreason(pd_store_t *self, const char *fmt, va_list ap)
{
    vsnprintf(self->reason, sizeof(self->reason), fmt, ap);
}

/*
 * The store can no longer be written: remember rc and why, say so once,
 * and from now on refuse every write with rc.
 */
int
pd_store__fatal(pd_store_t *self, int rc, const char *fmt, ...)
{
    if (self->failed)
        return self->fatal_rc;
    va_list ap;
    va_start(ap, fmt);
    s_vreason(self, fmt, ap);
    va_end(ap);
    self->failed = true;
    self->fatal_rc = rc;
    pd_log(PD_LOG_ERROR, "store: %s; nothing more is written or acked",
           self->reason);
    return rc;
}

/*
 * A sync failed in a way a later one may not: remember and say why. The
 * first failure is logged at once; the same failure again (a retry, once
 * a second, while the disk stays full) once a minute, with a count.
 */
static int
s_soft(pd_store_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_soft(pd_store_t *self, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vreason(self, fmt, ap);
    va_end(ap);
    self->sync_err = rc;
    self->stats.sync_failures++;
    pd_log_repeated(&self->soft_log, PD_LOG_KEY_STORE_SYNC, PD_LOG_ERROR, rc,
                    S_SOFT_LOG_MS, "store: %s", self->reason);
    return rc;
}

/*
 * A write or sync of seg failed with rc: cut the file back to the end of
 * its last durable record and sync that, so that neither a retry nor a
 * restart finds records that were never acked. If even that fails, the
 * store is done.
 */
static int
s_undo(pd_store_t *self, segment_t *seg, const char *name, int rc,
       const char *what)
{
    int cut;
    do {
        cut = ftruncate(seg->fd, (off_t)seg->bytes);
    } while (cut != 0 && errno == EINTR);
    if (cut == 0 && self->opts.sync && fdatasync(seg->fd) != 0)
        cut = -1;
    if (cut != 0) {
        self->stats.sync_failures++;
        return pd_store__fatal(
            self, rc,
            "%s of %s/%s failed (%s), and cutting it back to its "
            "last durable record at %" PRIu64 " bytes failed too "
            "(%s)",
            what, self->dir, name, strerror(-rc), seg->bytes, strerror(errno));
    }
    if (self->reserved_to > seg->bytes)
        self->reserved_to = seg->bytes; /* the cut freed what lay beyond */
    return s_soft(self, rc,
                  "%s of %s/%s failed: %s; the records in it were not acked "
                  "and the file is back at its last durable record (%" PRIu64
                  " bytes)",
                  what, self->dir, name, strerror(-rc), seg->bytes);
}

/* --- files, the index, read descriptors --------------------------------- */

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

void
pd_store__close_fd(pd_store_t *self, size_t i)
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
        pd_store__close_fd(self, lru);
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
    self->pathfd = -1;
    self->wall0 = parley_now_ms();
    self->mono0 = parley__mono_ms();
    self->clock_off = self->wall0 - self->mono0;
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
    if ((*err = pd_store__lock_dir(self, dir, errbuf, errlen)) < 0
        || (*err = pd_store__scan(self, scan, ctx, errbuf, errlen)) != 0)
        goto fail;
    pd_store__age_segments(self);
    /* Room to go on: refuse to start rather than fail the first publish. */
    segment_t *newest = self->nsegs ? &self->segs[self->nsegs - 1] : NULL;
    if ((*err = pd_store__keep_reserve(self, newest, true)) < 0) {
        pd_errf(errbuf, errlen,
                "cannot keep %" PRIu64 " bytes free for the log in %s: "
                "%s; free space on that file system (or lower "
                "disk_reserve) and start again",
                self->opts.reserve, dir, strerror(-*err));
        goto fail;
    }
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
    if (!self->failed && self->sync_err == 0 && self->pend_len > 0) {
        int rc = pd_store_sync(self);
        if (rc < 0)
            pd_log(PD_LOG_ERROR, "store: writing queued records at close: %s",
                   strerror(-rc));
    }
    if (self->pend_len > 0)
        pd_log(PD_LOG_WARN,
               "store: %" PRIu64 " queued records (seq %" PRIu64 " on) were "
               "never made durable nor acked; dropped",
               self->next_seq - 1 - self->last_seq, self->last_seq + 1);
    for (size_t i = 0; i < self->nsegs; i++) {
        if (self->segs[i].fd >= 0)
            close(self->segs[i].fd);
        free(self->segs[i].offsets);
    }
    free(self->segs);
    free(self->pend);
    if (self->lockfd >= 0)
        close(self->lockfd); /* releases the lock */
    if (self->pathfd >= 0)
        close(self->pathfd); /* and the path's name */
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
        return store->fatal_rc;
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
    int fd = openat(self->dirfd, name,
                    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    PD_STORE__FILE_MODE);
    if (fd < 0) {
        int rc = -errno;
        if (rc == -ENOENT && pd_store__check_dir(self, NULL) < 0)
            return self->fatal_rc;
        return s_soft(self, rc, "cannot create %s/%s: %s", self->dir, name,
                      strerror(-rc));
    }
    if (self->opts.sync && fsync(self->dirfd) < 0) {
        int rc = -errno;
        close(fd);
        unlinkat(self->dirfd, name, 0);
        return s_soft(self, rc, "fsync of %s after creating %s: %s", self->dir,
                      name, strerror(-rc));
    }
    if (self->nsegs > 0) {
        segment_t *old = &self->segs[self->nsegs - 1];
        pd_store__release_reserve(self, old);
        pd_store__shrink(old);
        if (old->fd >= 0)
            self->read_fds++; /* it becomes an older segment */
    }
    segment_t *seg = pd_store__push_segment(self, seq); /* room reserved above */
    seg->fd = fd;
    self->stats.segments++;
    s_trim_fds(self, S_READ_FDS);
    pd_store__top_up(self, seg);
    return 0;
}

/*
 * Write len queued bytes at the end of seg and sync them; then check
 * that the segment and the directory are still linked. A failure of the
 * write or the sync is undone (s_undo()).
 */
static int
s_write_chunk(pd_store_t *self, segment_t *seg, const uint8_t *buf,
              size_t len)
{
    char name[PD_STORE__NAME_LEN + 1];
    pd_store__segment_name(name, sizeof(name), seg->first_seq);
    int rc = pd_pwrite_all(seg->fd, buf, len, seg->bytes);
    if (rc < 0)
        return s_undo(self, seg, name, rc, "write");
    if (self->opts.sync) {
        if (fdatasync(seg->fd) != 0)
            return s_undo(self, seg, name, -errno, "fdatasync");
        self->stats.syncs++;
    }
    return pd_store__check_linked(self, seg->fd, name);
}

/*
 * The queued records from pend offset pos that go into seg: at least
 * one, and more while seg stays under segment_bytes. Returns the pend
 * offset after the last of them; *n gets how many they are.
 */
static size_t
s_chunk_end(const pd_store_t *self, const segment_t *seg, size_t pos,
            uint64_t *n)
{
    size_t end = pos;
    uint64_t size = seg->bytes;
    *n = 0;
    while (end < self->pend_len
           && (*n == 0 || size < self->opts.segment_bytes)) {
        size_t rec = PD_STORE_HEADER_BYTES + s_get32(self->pend + end);
        size += rec;
        end += rec;
        (*n)++;
    }
    return end;
}

/*
 * The queued records from pend offset pos to end were written at the
 * end of seg and are durable now, as of monotonic time mono: index them.
 */
static void
s_index_chunk(pd_store_t *self, segment_t *seg, size_t pos, size_t end,
              int64_t mono)
{
    for (size_t p = pos; p < end;) {
        const uint8_t *h = self->pend + p;
        int64_t at = (int64_t)s_get64(h + 16);
        seg->offsets[seg->count++] = seg->bytes + (p - pos);
        if (at > seg->newest_at)
            seg->newest_at = at;
        p += PD_STORE_HEADER_BYTES + s_get32(h);
    }
    seg->newest_mono = mono;
    seg->bytes += end - pos;
    self->stats.bytes += end - pos;
}

/*
 * Write the queue to the current segment (rolling where a segment is
 * full) and fdatasync. Normally that is one pwrite and one fdatasync for
 * every record queued since the last call; a roll adds one of each plus
 * the directory fsync. What a failure leaves queued is written again by
 * the next call.
 */
int
pd_store_sync(pd_store_t *store)
{
    if (store == NULL)
        return -EINVAL;
    if (store->failed)
        return store->fatal_rc;
    const int64_t mono = parley__mono_ms();
    size_t pos = 0;
    int rc = 0;
    while (pos < store->pend_len) {
        segment_t *cur = store->nsegs ? &store->segs[store->nsegs - 1] : NULL;
        if (cur == NULL ||
            (cur->count > 0 && cur->bytes >= store->opts.segment_bytes)) {
            if ((rc = s_roll(store, store->last_seq + 1)) < 0)
                goto fail;
            cur = &store->segs[store->nsegs - 1];
        }
        uint64_t n;
        size_t end = s_chunk_end(store, cur, pos, &n);
        if ((rc = pd_store__reserve(cur, cur->count + n)) < 0) {
            s_soft(store, rc, "out of memory indexing %" PRIu64 " records", n);
            goto fail;
        }
        if ((rc = s_write_chunk(store, cur, store->pend + pos, end - pos)) < 0)
            goto fail;
        s_index_chunk(store, cur, pos, end, mono);
        store->stats.records_synced += n;
        store->last_seq += n;
        pos = end;
    }
    store->pend_len = 0;
    if (store->pend_cap > S_PEND_KEEP) {
        /* One burst should not pin its buffer forever. */
        free(store->pend);
        store->pend = NULL;
        store->pend_cap = 0;
    }
    if (store->sync_err != 0) {
        pd_log(PD_LOG_INFO, "store: writing to %s works again (last durable "
                            "seq %" PRIu64 ")",
               store->dir, store->last_seq);
        store->sync_err = 0;
        pd_log_repeat_clear(&store->soft_log);
        store->reason[0] = '\0';
    }
    if (store->nsegs > 0)
        pd_store__top_up(store, &store->segs[store->nsegs - 1]);
    return 0;
fail:
    /* Keep what is not durable queued, first record first. */
    if (pos > 0 && !store->failed) {
        memmove(store->pend, store->pend + pos, store->pend_len - pos);
        store->pend_len -= pos;
    }
    return rc;
}

uint64_t
pd_store_discard(pd_store_t *store)
{
    if (store == NULL)
        return 0;
    uint64_t n = store->next_seq - 1 - store->last_seq;
    store->pend_len = 0;
    store->next_seq = store->last_seq + 1;
    return n;
}

int
pd_store_check(pd_store_t *store)
{
    if (store == NULL)
        return -EINVAL;
    if (store->failed)
        return store->fatal_rc;
    return pd_store__check_paths(store);
}

void
pd_store_health(const pd_store_t *store, pd_store_health_t *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (store == NULL)
        return;
    out->err = store->failed ? store->fatal_rc : store->sync_err;
    out->fatal = store->failed;
    out->low_space = store->low_space;
    out->queued = store->next_seq - 1 - store->last_seq;
    snprintf(out->reason, sizeof(out->reason), "%s", store->reason);
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
        int rc = pd_pread_all(fd, hdr + done, PD_STORE_HEADER_BYTES - done,
                              off + done);
        if (rc < 0)
            return rc;
        done = PD_STORE_HEADER_BYTES;
    }
    return pd_pread_all(fd, (uint8_t *)buf + (done - PD_STORE_HEADER_BYTES),
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
    pd_stats_counter(st, PD_STAT_STORE_SYNC_FAILURES, &s->sync_failures);
}
