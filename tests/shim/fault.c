/*
 * fault.c - an LD_PRELOAD library the integration tests put under parleyd:
 * a wall clock they can step, and failing writes and syncs on demand.
 *
 * Controlled by the file named in PARLEY_FAULT (read again whenever it
 * changes; nothing happens without it), one "key value" per line:
 *
 *   clock_offset_ms N    add N ms to CLOCK_REALTIME (clock_gettime)
 *   fail_op OP           pwrite, fdatasync or fallocate: the call to fail
 *   fail_path PREFIX     only on files whose name starts with PREFIX
 *   fail_errno N         the errno of a failed call (default EIO)
 *   fail_after N         let N matching calls through first (default 0)
 *   fail_count N         fail this many, then let calls through again
 *                        (default 0 = all from then on)
 *   fail_partial 1       a failing pwrite first writes half its bytes and
 *                        returns that; the next pwrite on the file fails
 *
 * Counting starts again each time the file changes. The library keeps to
 * pwrite/pwrite64, fdatasync and fallocate/fallocate64, so parleyd's log
 * lines (write on stderr) are never touched.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    bool loaded;
    struct timespec mtime; /* of the control file when it was read */
    off_t size;
    long long clock_offset_ms;
    char op[64];
    char path[64];
    int err;
    long long after, count;
    bool partial;
    long long seen;   /* matching calls so far */
    long long failed; /* of them failed */
    int partial_fd;   /* a pwrite cut short on it: the next one fails */
} s_ctl_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_ctl_t s_ctl = { .partial_fd = -1 };

/* Read the control file again if it changed. Call with s_lock held. */
static void
s_refresh(void)
{
    const char *file = getenv("PARLEY_FAULT");
    struct stat st;
    if (file == NULL || stat(file, &st) != 0) {
        s_ctl.loaded = false;
        return;
    }
    if (s_ctl.loaded && st.st_mtim.tv_sec == s_ctl.mtime.tv_sec
        && st.st_mtim.tv_nsec == s_ctl.mtime.tv_nsec
        && st.st_size == s_ctl.size)
        return;
    s_ctl_t c = { .loaded = true, .mtime = st.st_mtim, .size = st.st_size,
                  .err = EIO, .partial_fd = -1 };
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    char text[1024];
    ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
    if (fd >= 0)
        close(fd);
    text[n > 0 ? n : 0] = '\0';
    for (char *line = strtok(text, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        char key[32], value[64];
        if (sscanf(line, "%31s %63s", key, value) != 2)
            continue;
        if (strcmp(key, "clock_offset_ms") == 0)
            c.clock_offset_ms = strtoll(value, NULL, 10);
        else if (strcmp(key, "fail_op") == 0)
            snprintf(c.op, sizeof(c.op), "%s", value);
        else if (strcmp(key, "fail_path") == 0)
            snprintf(c.path, sizeof(c.path), "%s", value);
        else if (strcmp(key, "fail_errno") == 0)
            c.err = atoi(value);
        else if (strcmp(key, "fail_after") == 0)
            c.after = strtoll(value, NULL, 10);
        else if (strcmp(key, "fail_count") == 0)
            c.count = strtoll(value, NULL, 10);
        else if (strcmp(key, "fail_partial") == 0)
            c.partial = atoi(value) != 0;
    }
    s_ctl = c;
}

/* Does fd name a file whose name starts with the fail_path prefix? */
static bool
s_path_matches(int fd)
{
    if (s_ctl.path[0] == '\0')
        return true;
    char link[64], target[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    base = base != NULL ? base + 1 : target;
    return strncmp(base, s_ctl.path, strlen(s_ctl.path)) == 0;
}

/*
 * Should this call of op on fd fail? 1: fail it; 2: cut it short (a
 * partial pwrite); 0: let it through. *err gets the errno.
 */
static int
s_decide(const char *op, int fd, int *err)
{
    int verdict = 0;
    pthread_mutex_lock(&s_lock);
    s_refresh();
    if (s_ctl.loaded && strcmp(s_ctl.op, op) == 0 && s_path_matches(fd)) {
        *err = s_ctl.err;
        if (s_ctl.partial_fd == fd) {
            s_ctl.partial_fd = -1;
            verdict = 1;
        } else if (s_ctl.seen++ >= s_ctl.after
                   && (s_ctl.count == 0 || s_ctl.failed < s_ctl.count)) {
            s_ctl.failed++;
            if (s_ctl.partial && strcmp(op, "pwrite") == 0) {
                s_ctl.partial_fd = fd;
                verdict = 2;
            } else {
                verdict = 1;
            }
        }
    }
    pthread_mutex_unlock(&s_lock);
    return verdict;
}

/* The next definition of name (libc's) into the function pointer at fn;
 * copied, as ISO C has no cast from an object to a function pointer. */
static void
s_next(void *fn, const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    memcpy(fn, &p, sizeof(p));
}

typedef ssize_t (*s_pwrite_fn)(int, const void *, size_t, off_t);

static ssize_t
s_pwrite(const char *name, int fd, const void *buf, size_t len, off_t off)
{
    s_pwrite_fn real;
    s_next(&real, name);
    int err = 0;
    int v = s_decide("pwrite", fd, &err);
    if (v == 1) {
        errno = err;
        return -1;
    }
    if (v == 2 && len > 1)
        len /= 2;
    return real(fd, buf, len, off);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
    return s_pwrite("pwrite", fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    return s_pwrite("pwrite64", fd, buf, len, off);
}

int
fdatasync(int fd)
{
    int (*real)(int);
    s_next(&real, "fdatasync");
    int err = 0;
    if (s_decide("fdatasync", fd, &err) != 0) {
        errno = err;
        return -1;
    }
    return real(fd);
}

typedef int (*s_fallocate_fn)(int, int, off_t, off_t);

static int
s_fallocate(const char *name, int fd, int mode, off_t off, off_t len)
{
    s_fallocate_fn real;
    s_next(&real, name);
    int err = 0;
    if (s_decide("fallocate", fd, &err) != 0) {
        errno = err;
        return -1;
    }
    return real(fd, mode, off, len);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
    return s_fallocate("fallocate", fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
    return s_fallocate("fallocate64", fd, mode, off, len);
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
    typedef int (*fn_t)(clockid_t, struct timespec *);
    static fn_t real;
    if (real == NULL)
        s_next(&real, "clock_gettime");
    int rc = real(id, ts);
    if (rc != 0 || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE))
        return rc;
    pthread_mutex_lock(&s_lock);
    s_refresh();
    long long off = s_ctl.loaded ? s_ctl.clock_offset_ms : 0;
    pthread_mutex_unlock(&s_lock);
    if (off != 0) {
        long long ns = (long long)ts->tv_nsec + (off % 1000) * 1000000LL;
        ts->tv_sec += (time_t)(off / 1000 + (ns < 0 ? -1 : ns / 1000000000LL));
        ts->tv_nsec = (long)((ns % 1000000000LL + 1000000000LL) % 1000000000LL);
    }
    return 0;
}
