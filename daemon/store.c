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
 * process from appending to the same log, and a name for the directory's
 * path in the abstract Unix socket namespace keeps one off the path even
 * after the directory was removed under the first (s_lock_path()).
 *
 * Disk: with a reserve, the newest segment has that many bytes allocated
 * past its end (fallocate with FALLOC_FL_KEEP_SIZE: the file's size and
 * contents do not change), topped up after a sync once half of it is
 * used and released when the segment is rolled over. Writes into it
 * cannot fail for lack of space, and a daemon that cannot reserve it at
 * start refuses to start rather than fail on its first publish.
 */
#include "store_int.h"

#include "log.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define S_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define S_DEFAULT_MAX_RECORD (1u << 20)
#define S_PEND_KEEP (8u << 20)   /* queue buffer kept between syncs */
#define S_READ_FDS 8             /* older segments held open for reads */
#define S_LOCK_NAME "store.lock"
#define S_FILE_MODE 0600         /* segments and the lock file */
#define S_STEP_LOG_MS 60000      /* a wall-clock step worth a log line */
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
static int
s_fatal(pd_store_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_fatal(pd_store_t *self, int rc, const char *fmt, ...)
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
    bool again = self->sync_err == rc;
    self->sync_err = rc;
    self->stats.sync_failures++;
    int64_t now = parley__mono_ms();
    if (again && now - self->soft_logged_ms < S_SOFT_LOG_MS) {
        self->soft_held++;
        return rc;
    }
    if (self->soft_held > 0)
        pd_log_limited(PD_LOG_KEY_STORE_SYNC, PD_LOG_ERROR,
                       "store: %s (%" PRIu64 " more failures alike since "
                       "the last line)",
                       self->reason, self->soft_held);
    else
        pd_log_limited(PD_LOG_KEY_STORE_SYNC, PD_LOG_ERROR, "store: %s",
                       self->reason);
    self->soft_logged_ms = now;
    self->soft_held = 0;
    return rc;
}

/* --- the files at their paths --------------------------------------------- */

static bool
s_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Is the state directory still linked? Returns 0 or the fatal error;
 * *held (may be NULL) gets what fstat said of it.
 */
static int
s_check_dir(pd_store_t *self, struct stat *held)
{
    struct stat st;
    if (fstat(self->dirfd, &st) != 0)
        return s_fatal(self, -errno, "cannot stat %s: %s", self->dir,
                       strerror(errno));
    if (st.st_nlink == 0)
        return s_fatal(self, -ENOENT,
                       "state directory %s was removed while parleyd ran",
                       self->dir);
    if (held != NULL)
        *held = st;
    return 0;
}

/*
 * The check before records count as durable (once per sync, two fstat
 * calls): the segment just synced and the directory must still be
 * linked, or what was written is in files that no restart will find.
 */
static int
s_check_linked(pd_store_t *self, int fd, const char *name)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return s_fatal(self, -errno, "cannot stat %s/%s: %s", self->dir, name,
                       strerror(errno));
    if (st.st_nlink == 0)
        return s_fatal(self, -ENOENT,
                       "segment %s/%s was removed while parleyd wrote to it",
                       self->dir, name);
    return s_check_dir(self, NULL);
}

/*
 * Is the file name in the directory still the one open as fd? A file
 * removed, or replaced by another, is not.
 */
static bool
s_still_at(const pd_store_t *self, int fd, const char *name)
{
    struct stat held, now;
    return fstat(fd, &held) == 0 && held.st_nlink > 0
           && fstatat(self->dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0
           && s_same_file(&held, &now);
}

/*
 * The timer's check: the directory, its lock file and the newest segment
 * must still be the files at their paths. Returns 0 or the fatal error.
 */
static int
s_check_paths(pd_store_t *self)
{
    struct stat held, now;
    int rc = s_check_dir(self, &held);
    if (rc < 0)
        return rc;
    if (stat(self->dir, &now) != 0 || !s_same_file(&held, &now))
        return s_fatal(self, -ENOENT,
                       "%s is no longer the state directory parleyd opened "
                       "(it was moved or replaced)",
                       self->dir);
    if (!s_still_at(self, self->lockfd, S_LOCK_NAME))
        return s_fatal(self, -ENOENT,
                       "lock file %s/%s was removed or replaced while "
                       "parleyd ran",
                       self->dir, S_LOCK_NAME);
    if (self->nsegs > 0 && self->segs[self->nsegs - 1].fd >= 0) {
        char name[PD_STORE__NAME_LEN + 1];
        pd_store__segment_name(name, sizeof(name),
                       self->segs[self->nsegs - 1].first_seq);
        if (!s_still_at(self, self->segs[self->nsegs - 1].fd, name))
            return s_fatal(self, -ENOENT,
                           "segment %s/%s was removed or replaced while "
                           "parleyd ran",
                           self->dir, name);
    }
    return 0;
}

/*
 * Bind a name for the directory's real path in the abstract Unix socket
 * namespace: "@parleyd:<path>", or "@parleyd#<hash>" for a path too long
 * for a socket name. The kernel frees it when the process ends, however
 * it ends, and nothing in the file system can remove it; so unlike the
 * flock on store.lock it keeps a second daemon off the path even after
 * the directory was removed and made again under the first. (Names are
 * per network namespace.)
 */
static int
s_lock_path(pd_store_t *self, char *errbuf, size_t errlen)
{
    char real[PATH_MAX];
    if (realpath(self->dir, real) == NULL) {
        int rc = -errno;
        pd_store__errf(errbuf, errlen, "cannot resolve %s: %s", self->dir,
               strerror(errno));
        return rc;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t room = sizeof(sa.sun_path) - 1; /* after the leading NUL */
    int n = snprintf(sa.sun_path + 1, room, "parleyd:%s", real);
    if (n < 0 || (size_t)n >= room) {
        uint8_t h[16];
        char hex[2 * sizeof(h) + 1];
        crypto_generichash(h, sizeof(h), (const uint8_t *)real, strlen(real),
                           NULL, 0);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        n = snprintf(sa.sun_path + 1, room, "parleyd#%s", hex);
    }
    /* A stream socket that never listens: nobody can send it anything. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int rc = -errno;
        pd_store__errf(errbuf, errlen, "cannot lock %s: socket: %s", self->dir,
               strerror(errno));
        return rc;
    }
    socklen_t len =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (bind(fd, (const struct sockaddr *)&sa, len) != 0) {
        int rc = errno == EADDRINUSE ? -EBUSY : -errno;
        if (rc == -EBUSY)
            pd_store__errf(errbuf, errlen,
                   "%s is in use by another process (it holds the lock on "
                   "the path %s, which outlives the directory: stop that "
                   "daemon first)",
                   self->dir, real);
        else
            pd_store__errf(errbuf, errlen, "cannot lock the path %s: %s", real,
                   strerror(-rc));
        close(fd);
        return rc;
    }
    self->pathfd = fd;
    return 0;
}

/* --- the disk reserve ----------------------------------------------------- */

/* fallocate(KEEP_SIZE) len bytes from off; 0 or -errno. */
static int
s_allocate(int fd, uint64_t off, uint64_t len)
{
    int rc;
    do {
        rc = fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : -errno;
}

/*
 * Keep opts.reserve bytes allocated past the end of the newest segment
 * seg: allocate them when less than half is left (or always, with
 * force). Without force, when the whole reserve does not fit, as much of
 * it as does (halving down to a page) is taken, and -ENOSPC returned.
 * Where the file system cannot preallocate, check instead (with force
 * only) that as much is free. seg NULL (no segment yet): that check.
 *
 * Returns:   0, or -errno (-ENOSPC: not enough space).
 */
static int
s_keep_reserve(pd_store_t *self, segment_t *seg, bool force)
{
    const uint64_t want = self->opts.reserve;
    if (want == 0)
        return 0;
    if (!force
        && (seg == NULL || self->no_prealloc
            || self->reserved_to >= seg->bytes + want / 2))
        return 0;
    if (seg != NULL && !self->no_prealloc) {
        int rc = s_allocate(seg->fd, seg->bytes, want);
        if (rc == 0) {
            self->reserved_to = seg->bytes + want;
            return 0;
        }
        if (rc == -ENOSPC && !force) {
            for (uint64_t len = want / 2; len >= 4096; len /= 2)
                if (seg->bytes + len > self->reserved_to
                    && s_allocate(seg->fd, seg->bytes, len) == 0) {
                    self->reserved_to = seg->bytes + len;
                    break;
                }
            return rc;
        }
        if (rc != -EOPNOTSUPP && rc != -ENOSYS)
            return rc;
        self->no_prealloc = true;
        pd_log(PD_LOG_INFO,
               "store: the file system of %s cannot preallocate; its free "
               "space is checked at start only",
               self->dir);
    }
    struct statvfs sv;
    if (fstatvfs(self->dirfd, &sv) != 0)
        return -errno;
    return (uint64_t)sv.f_bavail * sv.f_frsize >= want ? 0 : -ENOSPC;
}

/*
 * Give back what is allocated past the end of seg, which is no longer
 * the newest: truncating to the same size frees it on ext4 and tmpfs,
 * punching a hole on XFS. Nothing here changes the file's contents.
 */
static void
s_release_reserve(pd_store_t *self, segment_t *seg)
{
    if (self->reserved_to > seg->bytes && seg->fd >= 0) {
        (void)!ftruncate(seg->fd, (off_t)seg->bytes);
        (void)fallocate(seg->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)seg->bytes,
                        (off_t)(self->reserved_to - seg->bytes));
    }
    self->reserved_to = 0;
}

/* After a good sync: top the reserve up, and say when that fails. */
static void
s_top_up(pd_store_t *self, segment_t *seg)
{
    int rc = s_keep_reserve(self, seg, false);
    if (rc < 0 && !self->low_space) {
        self->low_space = true;
        pd_log_limited(PD_LOG_KEY_STORE_RESERVE, PD_LOG_WARN,
                       "store: disk nearly full: cannot keep %" PRIu64
                       " bytes reserved past the end of the log in %s (%s); "
                       "%" PRIu64 " bytes of it are left",
                       self->opts.reserve, self->dir, strerror(-rc),
                       self->reserved_to > seg->bytes
                           ? self->reserved_to - seg->bytes
                           : 0);
    } else if (rc == 0 && self->low_space
               && self->reserved_to >= seg->bytes + self->opts.reserve / 2) {
        self->low_space = false;
        pd_log(PD_LOG_INFO, "store: the reserve past the end of the log in "
                            "%s is whole again", self->dir);
    }
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
        return s_fatal(self, rc,
                       "%s of %s/%s failed (%s), and cutting it back to its "
                       "last durable record at %" PRIu64 " bytes failed too "
                       "(%s)",
                       what, self->dir, name, strerror(-rc), seg->bytes,
                       strerror(errno));
    }
    if (self->reserved_to > seg->bytes)
        self->reserved_to = seg->bytes; /* the cut freed what lay beyond */
    return s_soft(self, rc,
                  "%s of %s/%s failed: %s; the records in it were not acked "
                  "and the file is back at its last durable record (%" PRIu64
                  " bytes)",
                  what, self->dir, name, strerror(-rc), seg->bytes);
}

/* --- ages ------------------------------------------------------------------ */

/*
 * Monotonic time of a record found at open with received_at at: as long
 * before the open as the wall clock then said (never after it).
 */
static int64_t
s_mono_of(const pd_store_t *self, int64_t at)
{
    int64_t age, mono;
    if (__builtin_sub_overflow(self->wall0, at, &age))
        age = at < 0 ? INT64_MAX : 0;
    if (age < 0)
        age = 0;
    if (__builtin_sub_overflow(self->mono0, age, &mono))
        mono = INT64_MIN;
    return mono;
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
    int rc = s_lock_path(self, errbuf, errlen);
    if (rc < 0)
        return rc;
    self->lockfd = openat(self->dirfd, S_LOCK_NAME,
                          O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                          S_FILE_MODE);
    if (self->lockfd < 0) {
        rc = -errno;
        pd_store__errf(errbuf, errlen, "cannot open %s/%s: %s", dir,
                       S_LOCK_NAME, strerror(errno));
        return rc;
    }
    if (flock(self->lockfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
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
    if ((*err = s_lock_dir(self, dir, errbuf, errlen)) < 0
        || (*err = pd_store__scan(self, scan, ctx, errbuf, errlen)) != 0)
        goto fail;
    for (size_t i = 0; i < self->nsegs; i++)
        if (self->segs[i].count > 0)
            self->segs[i].newest_mono =
                s_mono_of(self, self->segs[i].newest_at);
    /* Room to go on: refuse to start rather than fail the first publish. */
    segment_t *newest = self->nsegs ? &self->segs[self->nsegs - 1] : NULL;
    if ((*err = s_keep_reserve(self, newest, true)) < 0) {
        pd_store__errf(errbuf, errlen,
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
                    S_FILE_MODE);
    if (fd < 0) {
        int rc = -errno;
        if (rc == -ENOENT && s_check_dir(self, NULL) < 0)
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
        s_release_reserve(self, old);
        pd_store__shrink(old);
        if (old->fd >= 0)
            self->read_fds++; /* it becomes an older segment */
    }
    segment_t *seg = pd_store__push_segment(self, seq); /* room reserved above */
    seg->fd = fd;
    self->stats.segments++;
    s_trim_fds(self, S_READ_FDS);
    s_top_up(self, seg);
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
    int rc = s_pwrite_all(seg->fd, buf, len, seg->bytes);
    if (rc < 0)
        return s_undo(self, seg, name, rc, "write");
    if (self->opts.sync) {
        if (fdatasync(seg->fd) != 0)
            return s_undo(self, seg, name, -errno, "fdatasync");
        self->stats.syncs++;
    }
    return s_check_linked(self, seg->fd, name);
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
        if ((rc = pd_store__reserve(cur, cur->count + n)) < 0) {
            s_soft(store, rc, "out of memory indexing %" PRIu64 " records", n);
            goto fail;
        }
        if ((rc = s_write_chunk(store, cur, store->pend + pos, end - pos)) < 0)
            goto fail;
        /* Durable now: index the records. */
        for (size_t p = pos; p < end;) {
            const uint8_t *h = store->pend + p;
            int64_t at = (int64_t)s_get64(h + 16);
            cur->offsets[cur->count++] = cur->bytes + (p - pos);
            if (at > cur->newest_at)
                cur->newest_at = at;
            p += PD_STORE_HEADER_BYTES + s_get32(h);
        }
        cur->newest_mono = mono;
        cur->bytes = size;
        store->stats.bytes += end - pos;
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
        store->soft_held = 0;
        store->reason[0] = '\0';
    }
    if (store->nsegs > 0)
        s_top_up(store, &store->segs[store->nsegs - 1]);
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
    return s_check_paths(store);
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

/* Say once when the wall clock stepped against the monotonic one. */
static void
s_note_step(pd_store_t *self, int64_t now_ms, int64_t mono_ms)
{
    int64_t off, step;
    if (__builtin_sub_overflow(now_ms, mono_ms, &off)
        || __builtin_sub_overflow(off, self->clock_off, &step))
        return;
    if (step <= S_STEP_LOG_MS && step >= -S_STEP_LOG_MS)
        return;
    pd_log(PD_LOG_WARN,
           "store: the wall clock stepped %s by %" PRId64 " s; retention "
           "measures ages on the monotonic clock, so the step neither "
           "removes recent segments nor keeps old ones",
           step > 0 ? "forward" : "back",
           ((step > 0 ? step : -step) + 500) / 1000);
    self->clock_off = off;
}

int
pd_store_retain(pd_store_t *store, int64_t now_ms)
{
    return pd_store_retain_at(store, now_ms, parley__mono_ms());
}

int
pd_store_retain_at(pd_store_t *store, int64_t now_ms, int64_t mono_ms)
{
    if (store == NULL)
        return -EINVAL;
    s_note_step(store, now_ms, mono_ms);
    int removed = 0;
    while (store->nsegs > 1) {
        segment_t *seg = &store->segs[0];
        bool over = store->opts.max_bytes > 0 &&
                    store->stats.bytes > store->opts.max_bytes;
        int64_t age;
        bool old = store->opts.max_age_ms > 0 && seg->count > 0 &&
                   (__builtin_sub_overflow(mono_ms, seg->newest_mono, &age) ||
                    age > store->opts.max_age_ms);
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
    pd_stats_counter(st, PD_STAT_STORE_SYNC_FAILURES, &s->sync_failures);
}
