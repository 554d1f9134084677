/*
 * store_int.h - the log's internals shared by its files: store.c
 * (segments, append, group commit, reads), store_scan.c (the scan at
 * open: checks, torn-tail repair, the offset index), store_guard.c (the
 * state directory's lock, the checks that it and its files are still
 * there, the disk reserve) and store_retain.c (ages, retention).
 * Nothing else includes this header.
 *
 * Names: pd_store__<verb> for functions of one file the other calls;
 * the static inline helpers keep their s_ names.
 */
#ifndef PD_STORE_INT_H
#define PD_STORE_INT_H

#include "crc32c.h"
#include "fileio.h"
#include "log.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define PD_STORE__NAME_LEN 28    /* "seg-" + 20 digits + ".log" */
#define PD_STORE__FILE_MODE 0600 /* segments and the lock file */

typedef struct segment {
    uint64_t first_seq; /* seq of its first record, from the file name */
    uint64_t count;     /* durable records in it */
    uint64_t bytes;     /* file size up to the end of the last durable record */
    int64_t newest_at;  /* largest received_at of its records (if count > 0) */
    int64_t newest_mono;/* monotonic ms its newest record was synced at (or
                           is estimated at, for records found at open) */
    uint64_t *offsets;  /* offsets[i]: file offset of record first_seq + i */
    uint64_t cap;       /* slots allocated in offsets */
    int fd;             /* open descriptor or -1; always open for the current one */
    uint64_t used;      /* store->tick when last read, to close the least recent */
} segment_t;

struct pd_store {
    char *dir;                /* state directory, for file names in messages */
    int dirfd;                /* the directory: openat, unlinkat, fsync */
    int lockfd;               /* store.lock, flocked while open */
    int pathfd;               /* socket bound to the path's lock name */
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
    bool failed;              /* fatal: nothing is written any more */
    int fatal_rc;             /* the fatal error, with failed */
    int sync_err;             /* last sync failed (retryable), else 0 */
    char reason[256];         /* what failed, for pd_store_health() */
    pd_log_repeat_t soft_log; /* how often a sync failure is logged */
    int64_t wall0, mono0;     /* the clocks at open: ages of old records */
    int64_t clock_off;        /* wall - monotonic, as last logged */
    uint64_t reserved_to;     /* newest segment allocated up to here */
    bool no_prealloc;         /* the file system cannot fallocate */
    bool low_space;           /* the reserve could not be topped up */
    pd_store_stats_t stats;   /* bytes and segments kept current */
};

/* --- little-endian fields ------------------------------------------------ */

static inline uint32_t
s_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t
s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* CRC of a record: the seq and received fields, then the payload. */
static inline uint32_t
s_record_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    return pd_crc32c(pd_crc32c(0, hdr + 8, 16), payload, len);
}

/* --- store.c ------------------------------------------------------------- */

/* "seg-<first_seq, 20 digits>.log" into out (cap >= NAME_LEN + 1). */
void pd_store__segment_name(char *out, size_t cap, uint64_t first_seq);

/* Make room for want offsets in seg's index. 0 or -ENOMEM. */
int pd_store__reserve(segment_t *seg, uint64_t want);

/* A segment that will not grow again gives its slack back. */
void pd_store__shrink(segment_t *seg);

/* Append an empty segment entry (NULL: out of memory); the caller fills
 * it in. */
segment_t *pd_store__push_segment(pd_store_t *self, uint64_t first_seq);

/* Close segment i's descriptor if it is open; unless i is the newest,
 * it was one of the read descriptors (read_fds). */
void pd_store__close_fd(pd_store_t *self, size_t i);

/*
 * Fail the store for good: remember rc and why (printf-style), log it
 * once, and from then on refuse every write with rc.
 *
 * Returns:   rc, or the error of an earlier fatal failure.
 */
int pd_store__fatal(pd_store_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- store_scan.c -------------------------------------------------------- */

/*
 * Find the segment files of self->dir and scan them in order: check
 * every record, cut a torn tail, fill the offset index and hand each
 * record to fn (may be NULL). Sets next_seq, last_seq and the stats.
 *
 * Returns:   0, or a negative error with a message in errbuf (-EBADMSG
 *            for corruption, fn's value if it refused a record).
 */
int pd_store__scan(pd_store_t *self, pd_store_scan_fn fn, void *ctx,
                   char *errbuf, size_t errlen);

/* --- store_guard.c ------------------------------------------------------- */

/*
 * Make the state directory dir if needed, open it (self->dirfd) and lock
 * it: the path's name (self->pathfd), then an flock on its lock file
 * (self->lockfd).
 *
 * Returns:   0, -EBUSY if another process holds either lock, or -errno;
 *            with a message in errbuf.
 */
int pd_store__lock_dir(pd_store_t *self, const char *dir, char *errbuf,
                       size_t errlen);

/* Is the state directory still linked? 0 or the fatal error; *held (may
 * be NULL) gets what fstat said of it. */
int pd_store__check_dir(pd_store_t *self, struct stat *held);

/* After a sync, before its records count as durable: are the segment fd
 * (file name) and the directory still linked? 0 or the fatal error. */
int pd_store__check_linked(pd_store_t *self, int fd, const char *name);

/* The timer's check: are the directory, its lock file and the newest
 * segment still the files at their paths? 0 or the fatal error. */
int pd_store__check_paths(pd_store_t *self);

/*
 * Keep opts.reserve bytes allocated past the end of the newest segment
 * seg: allocate them when less than half is left, or always with force
 * (at open). With seg NULL (no segment yet), or where the file system
 * cannot preallocate, only force does anything: it checks that as much
 * is free.
 *
 * Returns:   0, or -errno (-ENOSPC: not enough space).
 */
int pd_store__keep_reserve(pd_store_t *self, segment_t *seg, bool force);

/* seg is no longer the newest: give back what is allocated past its end. */
void pd_store__release_reserve(pd_store_t *self, segment_t *seg);

/* After a good sync or a roll: top the reserve up, and log when that
 * fails or works again (pd_store_health()'s low_space). */
void pd_store__top_up(pd_store_t *self, segment_t *seg);

/* --- store_retain.c ------------------------------------------------------ */

/* At open: date the newest record of every segment found on the
 * monotonic clock (segment newest_mono), for retention by age. */
void pd_store__age_segments(pd_store_t *self);

#endif /* PD_STORE_INT_H */
