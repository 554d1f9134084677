/*
 * store.h - parleyd's append-only log.
 *
 * The log is a directory of segment files named "seg-<first seq, 20
 * digits>.log". Each record is
 *
 *     u32 length    (bytes of payload, little endian)
 *     u32 crc32c    (of the 16 header bytes below and the payload)
 *     u64 seq       (little endian)
 *     i64 received  (unix ms, little endian)
 *     payload       (the SignedUpdate bytes as received)
 *
 * Appends are buffered; pd_store_sync() writes and fdatasyncs them (group
 * commit), and only then are they "durable": readable through
 * pd_store_read() and counted by pd_store_last_seq(). A new segment file is
 * made durable with an fsync of the directory. Files are created 0600.
 *
 * Failures come in two kinds. A write or sync that fails for lack of
 * space or an I/O error (ENOSPC, EDQUOT, EFBIG, EIO) leaves the log as
 * durable as it was: the file is cut back to the end of the last durable
 * record, and the records not made durable stay queued, so
 * pd_store_sync() can be called again once the cause is gone. A failure
 * that the store cannot undo, or a state directory, lock file or newest
 * segment that is no longer the one at its path (removed or replaced
 * under the daemon), is fatal: nothing is written any more and every call
 * that writes returns the error (pd_store_health() says which).
 *
 * While a store is open its directory is locked twice: an flock on
 * "store.lock" in it, and a name bound for the directory's path in the
 * abstract Unix socket namespace, which outlives the directory if it is
 * removed, so a second daemon cannot start on a new directory at the same
 * path while the first still runs.
 */
#ifndef PD_STORE_H
#define PD_STORE_H

#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_STORE_HEADER_BYTES 24

typedef struct pd_store pd_store_t;

typedef struct pd_store_opts {
    uint64_t segment_bytes;  /* roll to a new segment past this size (0 = 64 MiB) */
    uint64_t max_bytes;      /* retention: total bytes kept, 0 = unlimited */
    int64_t max_age_ms;      /* retention: drop segments whose newest record is older, 0 = forever */
    bool sync;               /* false: never fdatasync (tests, benchmarks) */
    uint32_t max_record;     /* largest payload accepted, 0 = 1 MiB */
    uint64_t reserve;        /* disk bytes kept allocated past the end of
                                the newest segment (fallocate), 0 = none */
} pd_store_opts_t;

/*
 * Called once per record, in seq order, while pd_store_open() scans the
 * log, so the daemon can rebuild its indexes. A non-zero return stops the
 * scan and makes pd_store_open() fail with that value.
 */
typedef int (*pd_store_scan_fn)(void *ctx, uint64_t seq, int64_t received_at,
                                const uint8_t *payload, size_t len);

/*
 * Open (creating if needed, mode 0700) the log in dir, lock it and scan
 * it. A torn tail (a record cut short or with a bad checksum at the very
 * end of the newest segment) is truncated and logged with the number of
 * bytes cut. A bad record anywhere else, or seqs that do not follow each
 * other, makes the open fail with a message in errbuf naming the file and
 * byte offset. With opts->reserve, that many bytes must be allocated (or,
 * where the file system cannot preallocate, free) past the end of the
 * log, or the open fails with -ENOSPC and a message saying so.
 *
 * Returns:   the store, or NULL with *err set (-errno, -EBUSY when
 *            another process holds the log, -EBADMSG for corruption,
 *            -ENOSPC for the reserve, or the scan callback's value).
 * Ownership: the caller's; close with pd_store_close().
 */
pd_store_t *pd_store_open(const char *dir, const pd_store_opts_t *opts,
                          pd_store_scan_fn scan, void *ctx, char *errbuf,
                          size_t errlen, int *err);

/*
 * Sync what is queued (unless a sync has failed since the last good one:
 * what it left queued was never acked and is dropped, with a log line)
 * and close; *store becomes NULL. Accepts NULL.
 */
void pd_store_close(pd_store_t **store);

/*
 * Queue a record. seq must be pd_store_next_seq(). Nothing is durable
 * until pd_store_sync() returns 0. Records may be queued after a failed
 * sync; they join the ones it left queued.
 *
 * Returns:   0, -EMSGSIZE (payload over max_record), -EINVAL (wrong seq),
 *            -ENOMEM, or the fatal error once the store has one.
 */
int pd_store_append(pd_store_t *store, uint64_t seq, int64_t received_at,
                    const void *payload, size_t len);

/*
 * Write every queued record and fdatasync (one sync for all of them),
 * then check that the segment and the directory are still linked (two
 * fstat calls) before counting the records durable.
 *
 * On failure the records pd_store_last_seq() + 1 .. pd_store_next_seq() - 1
 * are not durable (those before may have become durable, if the queue
 * spanned a segment roll): nothing of them may be acked. If
 * pd_store_health() says the failure is not fatal, the log is exactly as
 * durable as before, the records stay queued, and a later call writes
 * them again (or pd_store_discard() drops them).
 *
 * Returns:   0 or -errno (-ENOSPC, -EDQUOT, -EFBIG, -EIO: retry later;
 *            -ENOENT: the directory or segment was removed, fatal).
 */
int pd_store_sync(pd_store_t *store);

/*
 * Make an empty log start at seq instead of 1 (a cluster node that joins
 * after the stream's retention has dropped seqs 1..seq-1): the next
 * append must use seq, and head and first report nothing until then.
 *
 * Returns:   0, -EEXIST (the log holds or queues a record), -EINVAL, or
 *            -errno (removing an empty segment file).
 */
int pd_store_start_at(pd_store_t *store, uint64_t seq);

/*
 * Drop the queued records that are not durable (after a failed sync, for
 * a caller that answers them as not stored): pd_store_next_seq() goes
 * back to pd_store_last_seq() + 1.
 *
 * Returns:   the number of records dropped.
 */
uint64_t pd_store_discard(pd_store_t *store);

/*
 * Check that the state directory, store.lock and the newest segment are
 * still the files at their paths (device, inode and link count): for a
 * timer, about once a second. If one was removed, replaced or moved, the
 * store turns fatal and says which in the log: the daemon must stop.
 *
 * Returns:   0, or the fatal error (-ENOENT), also when an earlier check
 *            or sync found it.
 */
int pd_store_check(pd_store_t *store);

/* What the store's writing side is doing, for logs, stats and STATUS=. */
typedef struct pd_store_health {
    int err;            /* 0 while syncs succeed; else the error of the
                           last failed sync, or the fatal error */
    bool fatal;         /* nothing can be written any more: stop */
    bool low_space;     /* the disk reserve could not be kept up */
    uint64_t queued;    /* records queued and not durable */
    char reason[256];   /* what failed, in words ("" if nothing) */
} pd_store_health_t;

/*
 * Fill out with what the writing side is doing: the error of the last
 * failed sync (0 once one succeeded again) or the fatal error, whether
 * the reserve is short, how many records wait unsynced, and why, in
 * words. For the stats reply, the heartbeat and STATUS=.
 */
void pd_store_health(const pd_store_t *store, pd_store_health_t *out);

/* Seq the next append must use (last appended + 1, from 1). */
uint64_t pd_store_next_seq(const pd_store_t *store);

/* Last durable seq, 0 if none. */
uint64_t pd_store_last_seq(const pd_store_t *store);

/* Oldest seq still held, 0 if the log is empty. */
uint64_t pd_store_first_seq(const pd_store_t *store);

/*
 * Read a durable record.
 *
 * Returns:   0 with *len set, -ENOENT if seq is not held, -ENOBUFS if cap
 *            is too small (*len then holds the size needed), -EBADMSG if
 *            the record fails its checksum, or -errno.
 */
int pd_store_read(pd_store_t *store, uint64_t seq, int64_t *received_at,
                  void *buf, size_t cap, size_t *len);

/*
 * Apply retention: remove whole segments (never the newest) while the log
 * is over max_bytes or the segment's newest record is older than
 * max_age_ms. Age is measured on the monotonic clock, so a step of the
 * wall clock neither deletes fresh segments nor keeps old ones: a record
 * synced by this process is as old as the monotonic time since its sync;
 * a record found at open is as old as the wall clock said at open
 * (now - received_at), plus the monotonic time since. now_ms (the wall
 * clock) only serves to log a step of it (over a minute) once.
 *
 * Returns:   the number of segments removed, or -errno.
 */
int pd_store_retain(pd_store_t *store, int64_t now_ms);

/* pd_store_retain() with the monotonic time given (tests). */
int pd_store_retain_at(pd_store_t *store, int64_t now_ms, int64_t mono_ms);

/* Counters for stats. */
typedef struct pd_store_stats {
    uint64_t syncs;          /* fdatasync calls made */
    uint64_t records_synced; /* records made durable by them */
    uint64_t bytes;          /* bytes in all segments */
    uint64_t segments;       /* segment files */
    uint64_t truncated_bytes;/* torn tail cut at open */
    uint64_t sync_failures;  /* syncs that failed (disk full, I/O error) */
} pd_store_stats_t;

void pd_store_get_stats(const pd_store_t *store, pd_store_stats_t *out);

/*
 * Report the store's counters (store_*) in st; the store must outlive
 * every read of st.
 */
void pd_store_stats_register(const pd_store_t *store, pd_stats_t *st);

#endif /* PD_STORE_H */
