/*
 * store_guard.c - the guards of the log's state directory: what keeps a
 * second process off it, what notices it was taken away, and the disk
 * space kept for it. The log proper (store.c) calls these at open, on
 * every sync and roll, and from the timer's pd_store_check().
 *
 * The lock: a lock file ("store.lock", flock) in the state directory
 * keeps a second process from appending to the same log, and a name for
 * the directory's path in the abstract Unix socket namespace keeps one
 * off the path even after the directory was removed under the first
 * (s_lock_path()).
 *
 * The files at their paths: before records count as durable, the segment
 * written and the directory must still be linked; the timer checks too
 * that the directory, the lock file and the newest segment are still the
 * files at their paths. A store that finds otherwise is failed for good
 * (pd_store__fatal()).
 *
 * The disk reserve: with one, the newest segment has that many bytes
 * allocated past its end (fallocate with FALLOC_FL_KEEP_SIZE: the file's
 * size and contents do not change), topped up after a sync once half of
 * it is used and released when the segment is rolled over. Writes into
 * it cannot fail for lack of space, and a daemon that cannot reserve it
 * at start refuses to start rather than fail on its first publish.
 */
#include "store_int.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#define S_LOCK_NAME "store.lock"

/* --- the lock ------------------------------------------------------------- */

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
        pd_errf(errbuf, errlen, "cannot resolve %s: %s", self->dir,
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
        pd_errf(errbuf, errlen, "cannot lock %s: socket: %s", self->dir,
                strerror(errno));
        return rc;
    }
    socklen_t len =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (bind(fd, (const struct sockaddr *)&sa, len) != 0) {
        int rc = errno == EADDRINUSE ? -EBUSY : -errno;
        if (rc == -EBUSY)
            pd_errf(errbuf, errlen,
                    "%s is in use by another process (it holds the lock on "
                    "the path %s, which outlives the directory: stop that "
                    "daemon first)",
                    self->dir, real);
        else
            pd_errf(errbuf, errlen, "cannot lock the path %s: %s", real,
                    strerror(-rc));
        close(fd);
        return rc;
    }
    self->pathfd = fd;
    return 0;
}

/* Make the directory if needed, open it and take its lock. 0 or -errno. */
int
pd_store__lock_dir(pd_store_t *self, const char *dir, char *errbuf,
                   size_t errlen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        pd_errf(errbuf, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -errno;
    }
    self->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dirfd < 0) {
        int rc = -errno;
        pd_errf(errbuf, errlen, "cannot open %s: %s", dir, strerror(errno));
        return rc;
    }
    /* Two writers on one log would interleave records: refuse the second. */
    int rc = s_lock_path(self, errbuf, errlen);
    if (rc < 0)
        return rc;
    self->lockfd =
        openat(self->dirfd, S_LOCK_NAME,
               O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, PD_STORE__FILE_MODE);
    if (self->lockfd < 0) {
        rc = -errno;
        pd_errf(errbuf, errlen, "cannot open %s/%s: %s", dir, S_LOCK_NAME,
                strerror(errno));
        return rc;
    }
    if (flock(self->lockfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        pd_errf(errbuf, errlen,
                "%s is in use by another process (lock on %s/%s)", dir, dir,
                S_LOCK_NAME);
        return rc;
    }
    return 0;
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
int
pd_store__check_dir(pd_store_t *self, struct stat *held)
{
    struct stat st;
    if (fstat(self->dirfd, &st) != 0)
        return pd_store__fatal(self, -errno, "cannot stat %s: %s", self->dir,
                               strerror(errno));
    if (st.st_nlink == 0)
        return pd_store__fatal(
            self, -ENOENT, "state directory %s was removed while parleyd ran",
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
int
pd_store__check_linked(pd_store_t *self, int fd, const char *name)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return pd_store__fatal(self, -errno, "cannot stat %s/%s: %s", self->dir,
                               name, strerror(errno));
    if (st.st_nlink == 0)
        return pd_store__fatal(
            self, -ENOENT,
            "segment %s/%s was removed while parleyd wrote to it", self->dir,
            name);
    return pd_store__check_dir(self, NULL);
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
int
pd_store__check_paths(pd_store_t *self)
{
    struct stat held = { 0 }, now;
    int rc = pd_store__check_dir(self, &held);
    if (rc < 0)
        return rc;
    if (stat(self->dir, &now) != 0 || !s_same_file(&held, &now))
        return pd_store__fatal(
            self, -ENOENT,
            "%s is no longer the state directory parleyd opened "
            "(it was moved or replaced)",
            self->dir);
    if (!s_still_at(self, self->lockfd, S_LOCK_NAME))
        return pd_store__fatal(self, -ENOENT,
                               "lock file %s/%s was removed or replaced while "
                               "parleyd ran",
                               self->dir, S_LOCK_NAME);
    if (self->nsegs > 0 && self->segs[self->nsegs - 1].fd >= 0) {
        char name[PD_STORE__NAME_LEN + 1];
        pd_store__segment_name(name, sizeof(name),
                               self->segs[self->nsegs - 1].first_seq);
        if (!s_still_at(self, self->segs[self->nsegs - 1].fd, name))
            return pd_store__fatal(
                self, -ENOENT,
                "segment %s/%s was removed or replaced while "
                "parleyd ran",
                self->dir, name);
    }
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
int
pd_store__keep_reserve(pd_store_t *self, segment_t *seg, bool force)
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
void
pd_store__release_reserve(pd_store_t *self, segment_t *seg)
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
void
pd_store__top_up(pd_store_t *self, segment_t *seg)
{
    int rc = pd_store__keep_reserve(self, seg, false);
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
        pd_log(PD_LOG_INFO,
               "store: the reserve past the end of the log in "
               "%s is whole again",
               self->dir);
    }
}
