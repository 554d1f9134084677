/*
 * cursor.c - the durable cursor of parley sub (cursor.h).
 */
#include "cursor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write all of buf to fd. 0 or -errno. */
static int
s_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path, so that a rename in it is durable. */
static int
s_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return -ENAMETOOLONG;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int
cli_write_atomic(const char *path, const char *text, size_t len)
{
    char tmp[4096 + 8];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = s_write_all(fd, text, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return s_sync_dir(path);
}

/* Parse the cursor file's text: digits, then an optional newline. */
static int
s_parse(const char *text, size_t len, uint64_t *seq)
{
    uint64_t v = 0;
    size_t i = 0;
    if (len > 0 && text[len - 1] == '\n')
        len--;
    if (len == 0 || len > 19)
        return -1;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    *seq = v;
    return 0;
}

int
cli_cursor_open(cli_cursor_t *cur, const char *path, char *err, size_t cap)
{
    char lock[4096 + 8], text[64];
    memset(cur, 0, sizeof(*cur));
    cur->lock_fd = -1;
    if ((cur->path = strdup(path)) == NULL) {
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock)) {
        snprintf(err, cap, "%s: name too long", path);
        return -ENAMETOOLONG;
    }
    cur->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (cur->lock_fd < 0) {
        int e = errno;
        snprintf(err, cap, "%s: %s", lock, strerror(e));
        return -e;
    }
    if (flock(cur->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        snprintf(err, cap,
                 e == EWOULDBLOCK
                     ? "%s is in use by another parley sub (it holds %s)"
                     : "%s: cannot lock %s",
                 path, lock);
        return -e;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0; /* a first start: nothing handled yet */
    if (fd < 0) {
        int e = errno;
        snprintf(err, cap, "%s: %s", path, strerror(e));
        return -e;
    }
    ssize_t n;
    do
        n = read(fd, text, sizeof(text));
    while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, cap, "%s: %s", path, strerror(e));
        return -e;
    }
    if ((size_t)n >= sizeof(text) || s_parse(text, (size_t)n, &cur->seq) < 0) {
        snprintf(err, cap,
                 "%s does not hold a cursor (one line: the seq of the last "
                 "update handled); remove it to start from the oldest update "
                 "the daemon holds",
                 path);
        return -EINVAL;
    }
    cur->present = 1;
    return 0;
}

int
cli_cursor_write(cli_cursor_t *cur, uint64_t seq, char *err, size_t cap)
{
    char text[32];
    if (seq <= cur->seq && cur->present)
        return 0;
    if (seq < cur->seq)
        seq = cur->seq;
    int len = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)seq);
    int rc = cli_write_atomic(cur->path, text, (size_t)len);
    if (rc < 0) {
        snprintf(err, cap, "%s: %s", cur->path, strerror(-rc));
        return rc;
    }
    if (seq > cur->seq)
        cur->seq = seq;
    cur->present = 1;
    cur->writes++;
    return 0;
}

void
cli_cursor_close(cli_cursor_t *cur)
{
    if (cur->lock_fd >= 0)
        close(cur->lock_fd); /* releases the lock */
    cur->lock_fd = -1;
    free(cur->path);
    cur->path = NULL;
}
