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
 * made durable with an fsync of the directory.
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
} pd_store_opts_t;

/*
 * Called once per record, in seq order, while pd_store_open() scans the
 * log, so the daemon can rebuild its indexes. A non-zero return stops the
 * scan and makes pd_store_open() fail with that value.
 */
typedef int (*pd_store_scan_fn)(void *ctx, uint64_t seq, int64_t received_at,
                                const uint8_t *payload, size_t len);

/*
 * Open (creating if needed) the log in dir and scan it. A torn tail (a
 * record cut short or with a bad checksum at the very end of the newest
 * segment) is truncated and logged with the number of bytes cut. A bad
 * record anywhere else, or seqs that do not follow each other, makes the
 * open fail with a message in errbuf naming the file and byte offset.
 *
 * Returns:   the store, or NULL with *err set (-errno, or -EBADMSG for
 *            corruption, or the scan callback's value).
 * Ownership: the caller's; close with pd_store_close().
 */
pd_store_t *pd_store_open(const char *dir, const pd_store_opts_t *opts,
                          pd_store_scan_fn scan, void *ctx, char *errbuf,
                          size_t errlen, int *err);

/* Flush, sync and close; *store becomes NULL. Accepts NULL. */
void pd_store_close(pd_store_t **store);

/*
 * Queue a record. seq must be pd_store_next_seq(). Nothing is durable
 * until pd_store_sync() returns 0.
 *
 * Returns:   0, -EMSGSIZE (payload over max_record), -EINVAL (wrong seq),
 *            or -errno from a write.
 */
int pd_store_append(pd_store_t *store, uint64_t seq, int64_t received_at,
                    const void *payload, size_t len);

/*
 * Write every queued record and fdatasync (one sync for all of them). On
 * failure the store is unusable: the daemon must stop acking and exit.
 *
 * Returns:   0 or -errno.
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
 * max_age_ms before now_ms.
 *
 * Returns:   the number of segments removed, or -errno.
 */
int pd_store_retain(pd_store_t *store, int64_t now_ms);

/* Counters for stats. */
typedef struct pd_store_stats {
    uint64_t syncs;          /* fdatasync calls made */
    uint64_t records_synced; /* records made durable by them */
    uint64_t bytes;          /* bytes in all segments */
    uint64_t segments;       /* segment files */
    uint64_t truncated_bytes;/* torn tail cut at open */
} pd_store_stats_t;

void pd_store_get_stats(const pd_store_t *store, pd_store_stats_t *out);

/*
 * Report the store's counters (store_*) in st; the store must outlive
 * every read of st.
 */
void pd_store_stats_register(const pd_store_t *store, pd_stats_t *st);

#endif /* PD_STORE_H */
