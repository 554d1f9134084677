/*
 * fileio.c - whole reads and writes at an offset, and error messages,
 * for the daemon's files (fileio.h).
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
pd_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int
pd_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

void
pd_errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

int
pd_dir_open(const char *dir, char *errbuf, size_t errlen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int rc = -errno;
        pd_errf(errbuf, errlen, "cannot create %s: %s", dir, strerror(errno));
        return rc;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        pd_errf(errbuf, errlen, "cannot open %s: %s", dir, strerror(errno));
        return rc;
    }
    return fd;
}

int
pd_buf_reserve(uint8_t **buf, size_t *cap, size_t len, size_t more, size_t initial)
{
    if (*cap - len >= more)
        return 0;
    size_t c = *cap ? *cap : initial;
    while (c - len < more) {
        if (c > SIZE_MAX / 2)
            return -ENOMEM;
        c *= 2;
    }
    uint8_t *p = realloc(*buf, c);
    if (p == NULL)
        return -ENOMEM;
    *buf = p;
    *cap = c;
    return 0;
}
