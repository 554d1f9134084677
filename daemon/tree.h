/*
 * tree.h - parleyd's Merkle tree hash store: the stored hashes of the
 * transparency log's tree (client/tlog.h) in one file beside the segments.
 *
 * The tree has one leaf per record ever appended: leaf index = seq - 1,
 * leaf hash = SHA-256(0x00 || the record's SignedUpdate bytes). Retention
 * removes segments, never hashes, so the tree keeps covering every record
 * and proofs about removed records still work.
 *
 * File "tree.hashes" in the state directory, little-endian:
 *
 *     offset  bytes  field
 *     0       8      magic "PARLEYMT"
 *     8       4      format version, 1
 *     12      4      header bytes, 32
 *     16      4      hash bytes, 32
 *     20      4      hash function, 1 = SHA-256 with the RFC 9162 prefixes
 *     24      4      reserved, 0
 *     28      4      CRC32C of bytes 0..27
 *     32      ...    the stored hashes, 32 bytes each, in stored order
 *
 * Stored order (tlog.h): leaf m's hash at position 2m - popcount(m), then
 * the hashes of the complete subtrees leaf m completes, lowest level first.
 * Position p is at byte 32 + 32 p; n leaves take 2n - popcount(n) hashes.
 * A file that ends inside a leaf's group of hashes ends in a torn tail.
 *
 * Durability, like the log: appends are queued; pd_tree_sync() writes and
 * fdatasyncs them. The daemon syncs the tree right after the log's group
 * commit and acks only after both, so after a crash the file holds at most
 * the leaves of the durable records (a missing tail is recomputed).
 *
 * Start-up check. pd_tree_open() reads the header; then the daemon hands
 * every record the log's scan finds to pd_tree_check(), in seq order, and
 * calls pd_tree_recover() with the number of records ever appended:
 *
 *   - a record whose leaf is in the file: its leaf hash is recomputed and
 *     compared, and so is every subtree hash it completes; a mismatch
 *     refuses the start with the file's byte offset;
 *   - records whose segments retention removed: their leaf hashes cannot
 *     be recomputed; each subtree hash over them is still checked against
 *     its two children, so damage to that part shows wherever a hash has
 *     a parent in the file (the newest leaves of that part are covered
 *     once the first record still held completes their subtree);
 *   - records the file lacks (a crash between the two syncs, or a new
 *     file): their hashes are recomputed and appended;
 *   - hashes beyond the last record (a torn tail, or leaves for records
 *     the log no longer has) are cut, and logged;
 *   - leaves missing from the file for records no longer held cannot be
 *     rebuilt: the start is refused.
 *
 * Threads: one thread at a time per tree (the daemon's loop thread).
 */
#ifndef PD_TREE_H
#define PD_TREE_H

#include "tlog.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_TREE_FILE "tree.hashes"
#define PD_TREE_HEADER_BYTES 32
#define PD_TREE_MAGIC "PARLEYMT"
#define PD_TREE_VERSION 1

typedef struct pd_tree pd_tree_t;

typedef struct pd_tree_opts {
    bool sync; /* false: never fdatasync (tests, benchmarks) */
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
 * Finish the start-up check: records is the number of records ever
 * appended to the log (its next seq - 1). Cuts what lies beyond them,
 * writes and syncs the recomputed hashes. Afterwards the tree has
 * records leaves and takes appends.
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
 * Nothing is durable until pd_tree_sync() returns 0.
 *
 * Returns:   0, -EINVAL (wrong seq, or before pd_tree_recover()), -EIO
 *            (an earlier sync failed), -ENOMEM, or PARLEY_EARG (the tree
 *            is full).
 */
int pd_tree_append(pd_tree_t *tree, uint64_t seq, const void *record,
                   size_t len);

/*
 * Write every queued hash and fdatasync. On failure the tree is unusable:
 * the daemon must stop acking and exit, as for the log.
 *
 * Returns:   0 or -errno.
 */
int pd_tree_sync(pd_tree_t *tree);

/* Durable leaves: the size of the largest tree roots and proofs cover. */
uint64_t pd_tree_size(const pd_tree_t *tree);

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

/* Counters for stats and the start-up log line. */
typedef struct pd_tree_stats {
    uint64_t leaves;          /* durable leaves */
    uint64_t syncs;           /* fdatasync calls made */
    uint64_t checked;         /* leaves recomputed and compared at open */
    uint64_t unbacked;        /* leaves whose records are gone, checked by their parents */
    uint64_t recomputed;      /* leaves the file lacked, appended at open */
    uint64_t truncated_bytes; /* cut at open (torn tail, leaves beyond the log) */
} pd_tree_stats_t;

void pd_tree_get_stats(const pd_tree_t *tree, pd_tree_stats_t *out);

#endif /* PD_TREE_H */
