/*
 * tree.h - parleyd's Merkle tree hash store: the stored hashes of the
 * transparency log's tree (client/tlog.h) in one file beside the segments.
 *
 * The tree has one leaf per record ever appended: leaf index = seq - 1,
 * leaf hash = SHA-256(0x00 || the record's SignedUpdate bytes). Retention
 * removes segments, never hashes, so the tree keeps covering every record
 * and proofs about removed records still work. A log that had lost its
 * front to retention before it had a tree gets one absent-record leaf
 * (tlog.h, PARLEY__TLOG_ABSENT_PREFIX) per record it no longer held then;
 * the header keeps where they end.
 *
 * File "tree.hashes" in the state directory, little-endian:
 *
 *     offset  bytes  field
 *     0       8      magic "PARLEYMT"
 *     8       4      format version, 1
 *     12      4      header bytes, 64
 *     16      4      hash bytes, 32
 *     20      4      hash function, 1 = SHA-256 with the RFC 9162 prefixes
 *     24      8      absent_before: seqs 1 .. absent_before - 1 have
 *                    absent-record leaves (0 or 1: none)
 *     32      28     reserved, 0
 *     60      4      CRC32C of bytes 0..59
 *     64      ...    the stored hashes, 32 bytes each, in stored order
 *
 * Stored order (tlog.h): leaf m's hash at position 2m - popcount(m), then
 * the hashes of the complete subtrees leaf m completes, lowest level first.
 * Position p is at byte 64 + 32 p; n leaves take 2n - popcount(n) hashes.
 * A file that ends inside a leaf's group of hashes ends in a torn tail.
 *
 * Durability. The tree is fed by records that are durable already, and
 * every hash of a record the log still holds can be recomputed from it;
 * so the hashes need not be synced before an ack, nor even written: a
 * crash, kill -9 included, loses at most hashes the start-up check
 * recomputes. The daemon queues a record's leaf (pd_tree_append(): roots
 * and proofs cover it from then on) when the record is applied, calls
 * pd_tree_write() after each commit, which with opts.sync writes only
 * once the queue holds 256 KiB not yet written (without, it writes it
 * all), and writes and syncs (pd_tree_sync()) with the heartbeat and
 * always before retention removes a segment: the hashes of records about
 * to go must be durable first, as nothing could recompute them. So with
 * fsync a commit costs the loop thread no call into the file system
 * beyond the log's own write and fdatasync. After a crash the file may
 * lack a tail or hold never-written (zero) blocks there; the start-up
 * check recomputes it.
 *
 * A write or sync that fails (a full disk, EIO) is not fatal: the hashes
 * not yet synced stay queued in memory (64 bytes per record at most)
 * and every later write or sync tries again, all of them since the last
 * good fdatasync after a failed one. Only retention must wait for a sync
 * that works. The start-up check too keeps what it cannot write.
 *
 * Start-up check. pd_tree_open() reads the header; then the daemon hands
 * every record the log's scan finds to pd_tree_check(), in seq order, and
 * calls pd_tree_recover() with the number of records ever appended:
 *
 *   - a record whose leaf is in the file: its leaf hash is recomputed and
 *     compared, and so is every subtree hash it completes; a mismatch
 *     refuses the start with the file's byte offset;
 *   - absent-record leaves: recomputed and compared likewise;
 *   - records whose segments retention removed: their leaf hashes cannot
 *     be recomputed; each subtree hash over them is still checked against
 *     its two children, so damage to that part shows wherever a hash has
 *     a parent in the file (the newest leaves of that part are covered
 *     once the first record still held completes their subtree);
 *   - records the file lacks (a crash before the hashes were written, or
 *     a new file): their hashes are recomputed and written;
 *   - hashes beyond the last record (a torn tail, or leaves for records
 *     the log no longer has) are cut, and logged;
 *   - leaves missing from the file for records no longer held cannot be
 *     rebuilt: the start is refused. The exception, with opts.absent_front
 *     only, is a file with no leaf at all next to a log whose front is
 *     gone (a log older than its tree): the tree starts with
 *     absent-record leaves for that front. It is a choice the operator
 *     makes once, as a lost hash file looks the same.
 *
 * Threads: one thread at a time per tree (the daemon's loop thread).
 * With opts.sync the tree has a thread of its own for the background
 * sync (pd_tree_sync_begin()), which touches only a copy of the queue
 * and the file; it is started by the first such sync and ended by
 * pd_tree_close().
 */
#ifndef PD_TREE_H
#define PD_TREE_H

#include "tlog.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_TREE_FILE "tree.hashes"
#define PD_TREE_HEADER_BYTES 64
#define PD_TREE_MAGIC "PARLEYMT"
#define PD_TREE_VERSION 1

typedef struct pd_tree pd_tree_t;

typedef struct pd_tree_opts {
    bool sync;         /* false: never fdatasync (tests, benchmarks) */
    bool absent_front; /* a file with no leaf next to a log whose front is
                          gone starts with absent-record leaves (the
                          upgrade of a log older than its tree); else
                          that start is refused */
} pd_tree_opts_t;

/*
 * Open the hash file in dir (created, empty, if missing) and check its
 * header. Nothing else is read or changed until the check.
 *
 * Returns:   the tree, or NULL with *err set (-errno, -EBADMSG for a
 *            damaged or foreign header, -EBUSY when another process has
 *            it open) and a message in errbuf.
 * Ownership: the caller's; close with pd_tree_close().
 */
pd_tree_t *pd_tree_open(const char *dir, const pd_tree_opts_t *opts,
                        char *errbuf, size_t errlen, int *err);

/*
 * Check the record with this seq against the file (see above), or
 * recompute its hashes when the file lacks them. Call for every record
 * the log's scan hands out, in seq order, before pd_tree_recover(); the
 * first call may have any seq (retention may have removed those before).
 *
 * Returns:   0; -EBADMSG with a message naming the byte offset (a stored
 *            hash that does not match, or a hash file that lacks leaves of
 *            records no longer held); -EINVAL for a seq out of order or
 *            a call after pd_tree_recover(); or -errno.
 */
int pd_tree_check(pd_tree_t *tree, uint64_t seq, const void *record,
                  size_t len, char *errbuf, size_t errlen);

/*
 * pd_tree_check() for a seq that holds no update (a cluster replica's
 * void record, docs/transparency.md section 16): its leaf is the
 * absent-record leaf of seq, checked or recomputed like a record's.
 *
 * Returns:   as pd_tree_check().
 */
int pd_tree_check_absent(pd_tree_t *tree, uint64_t seq, char *errbuf,
                         size_t errlen);

/*
 * Finish the start-up check: records is the number of records ever
 * appended to the log (its next seq - 1). Cuts what lies beyond them,
 * writes and syncs the recomputed hashes (or, if the disk refuses them,
 * keeps them queued). Afterwards the tree has records leaves and takes
 * appends.
 *
 * Returns:   0; -EBADMSG with a message (leaves missing that cannot be
 *            recomputed, or a damaged hash); -EINVAL (the checked records
 *            do not end at records); or -errno.
 */
int pd_tree_recover(pd_tree_t *tree, uint64_t records, char *errbuf,
                    size_t errlen);

/* Write what is queued, sync and close; *tree becomes NULL. Accepts NULL. */
void pd_tree_close(pd_tree_t **tree);

/*
 * Queue the leaf of the record with this seq (the next one: leaves + 1).
 * Roots and proofs cover it from now on.
 *
 * Returns:   0, -EINVAL (wrong seq, or before pd_tree_recover()),
 *            -ENOMEM, or PARLEY_EARG (the tree is full).
 */
int pd_tree_append(pd_tree_t *tree, uint64_t seq, const void *record,
                   size_t len);

/*
 * pd_tree_append() for a seq that holds no update: queue the
 * absent-record leaf of seq (docs/transparency.md sections 15 and 16).
 *
 * Returns:   as pd_tree_append().
 */
int pd_tree_append_absent(pd_tree_t *tree, uint64_t seq);

/*
 * After a commit: write the queued hashes not written yet (no
 * fdatasync); with opts.sync only once they come to 256 KiB, as the next
 * sync writes them anyway. On failure they stay queued, and the next
 * write or sync tries again.
 *
 * Returns:   0 or -errno (-EINVAL before pd_tree_recover()).
 */
int pd_tree_write(pd_tree_t *tree);

/*
 * pd_tree_write(), then fdatasync (with opts.sync) if anything was
 * written since the last sync, here and now (after waiting for a
 * background sync begun before): before retention removes records, at
 * close. On failure the hashes since the last good sync stay queued and
 * are written again by the next try.
 *
 * Returns:   0 (every leaf's hashes durable) or -errno.
 */
int pd_tree_sync(pd_tree_t *tree);

/*
 * The heartbeat's sync, off the calling thread: with opts.sync, hand a
 * copy of the queued hashes not written yet to the tree's sync thread,
 * which writes them and fdatasyncs while the caller goes on (so no
 * update waits behind the tree's sync); pd_tree_sync_reap() takes the
 * result. Roots and proofs keep reading the queue meanwhile, and
 * pd_tree_write() leaves the file to the thread. One at a time: while
 * one runs this does nothing. Without opts.sync it is pd_tree_write().
 * Where no thread can be started it syncs here, as pd_tree_sync().
 *
 * Returns:   0 (begun, nothing to do, or one runs) or -errno.
 */
int pd_tree_sync_begin(pd_tree_t *tree);

/*
 * Take the result of the background sync, if one was begun: with wait,
 * wait for it; without, only if it has finished. When it worked, the
 * hashes it covered leave the queue and pd_tree_synced() moves to the
 * size the tree had at its begin; when it failed, every hash since the
 * last good sync is written again by the next try (counted in
 * write_errors).
 *
 * Returns:   0 (it worked, or none was begun), -EINPROGRESS (it runs;
 *            only without wait), or the -errno it failed with.
 */
int pd_tree_sync_reap(pd_tree_t *tree, bool wait);

/* Leaves appended: the size of the largest tree roots and proofs cover. */
uint64_t pd_tree_size(const pd_tree_t *tree);

/* Leaves whose hashes are synced (at most pd_tree_size()). */
uint64_t pd_tree_synced(const pd_tree_t *tree);

/* The absent-record boundary (header field), 0 if none. */
uint64_t pd_tree_absent_before(const pd_tree_t *tree);

/*
 * The root of the tree of the first size leaves (size <= pd_tree_size();
 * the current one comes from memory, older ones from O(log n) reads).
 *
 * Returns:   0, -EINVAL (size too large), or -errno from a read.
 */
int pd_tree_root(pd_tree_t *tree, uint64_t size, parley__tlog_hash_t *out);

/*
 * An inclusion proof (m = leaf index = seq - 1, n = tree size) or a
 * consistency proof (m = old size, n = new size) with n <= pd_tree_size().
 *
 * Returns:   0, -EINVAL (n too large, or (m, n) not valid for kind), or
 *            -errno from a read.
 */
int pd_tree_prove(pd_tree_t *tree, uint8_t kind, uint64_t m, uint64_t n,
                  parley__tlog_proof_t *out);

/*
 * The compact range of the tree of the first size leaves (what a
 * subscriber that folds every update into its own tree starts from).
 *
 * Returns:   0, -EINVAL (size too large), or -errno from a read.
 */
int pd_tree_range(pd_tree_t *tree, uint64_t size, parley__tlog_range_t *out);

/* Counters for stats and the start-up log line. */
typedef struct pd_tree_stats {
    uint64_t leaves;          /* leaves (appended or checked) */
    uint64_t writes;          /* writes of queued hashes */
    uint64_t write_errors;    /* writes or syncs that failed (retried) */
    uint64_t syncs;           /* fdatasync calls made */
    uint64_t absent;          /* absent-record leaves checked or made at open */
    uint64_t checked;         /* leaves recomputed and compared at open */
    uint64_t unbacked;        /* leaves whose records are gone, checked by their parents */
    uint64_t recomputed;      /* leaves the file lacked, appended at open */
    uint64_t truncated_bytes; /* cut at open (torn tail, leaves beyond the log) */
} pd_tree_stats_t;

void pd_tree_get_stats(const pd_tree_t *tree, pd_tree_stats_t *out);

#endif /* PD_TREE_H */
