/*
 * fileio.h - what the daemon's on-disk formats share (the log's segment
 * files, the tree's hash file): whole reads and writes at an offset,
 * little-endian fields, and the messages that explain a refused start.
 */
#ifndef PD_FILEIO_H
#define PD_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Write all of buf at off, retrying short writes and EINTR.
 *
 * Returns:   0 or -errno (-EIO when the file takes no more bytes).
 */
int pd_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/*
 * Read exactly len bytes at off, retrying short reads and EINTR.
 *
 * Returns:   0 or -errno (-EIO when the file ends early).
 */
int pd_pread_all(int fd, void *buf, size_t len, uint64_t off);

/*
 * Make the state directory dir (mode 0700) if it is missing, and open it
 * for openat(), fsync() and unlinkat().
 *
 * Returns:   the descriptor, or -errno with a message in errbuf.
 */
int pd_dir_open(const char *dir, char *errbuf, size_t errlen);

/*
 * Make room for more bytes after the len in use of the heap buffer *buf
 * (capacity *cap; the first allocation is initial bytes or more, and the
 * capacity doubles from there). For queues of records before a write.
 *
 * Returns:   0, or -ENOMEM with the buffer unchanged.
 */
int pd_buf_reserve(uint8_t **buf, size_t *cap, size_t len, size_t more,
                   size_t initial);

/* printf into errbuf (errlen bytes, always terminated); NULL is fine. */
void pd_errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Little-endian fields. */
static inline void
pd_put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
pd_put64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t
pd_get32le(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t
pd_get64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#endif /* PD_FILEIO_H */
