/*
 * tlog.h - the Merkle tree of the transparency log (library-internal).
 *
 * The tree is the one of RFC 9162 §2.1 over a list of records:
 *
 *     leaf hash  = SHA-256(0x00 || record bytes)
 *     node hash  = SHA-256(0x01 || left hash || right hash)
 *     MTH({})    = SHA-256() (the empty string), for a tree of no leaves
 *
 * and the root of n > 1 leaves splits them at k, the largest power of two
 * below n: MTH(D[0:n]) = node(MTH(D[0:k]), MTH(D[k:n])).
 *
 * Stored hashes. Every complete subtree (2^level leaves starting at a
 * multiple of 2^level) has a hash that never changes once its last leaf
 * is appended. Those hashes are kept in one sequence, in the order they
 * become known: leaf m's hash, then the hashes of the subtrees leaf m
 * completes, lowest level first (Crosby and Wallach's ordering, the one
 * Go's sumdb/tlog uses too). Leaf m's hash sits at 2m - popcount(m); the
 * subtree at (level l, index k) right after the leaf (k+1)*2^l - 1 that
 * completes it, at l positions further. n leaves give 2n - popcount(n)
 * stored hashes. Any root or proof is a fold over O(log n) of them; a
 * hash source (parley__tlog_read_fn) hands them out, from memory or from
 * parleyd's hash file.
 *
 * Appending is O(log n): a compact range (parley__tlog_range_t) keeps the
 * hashes of the complete subtrees that make up [0, n) and gives the
 * stored hashes of each new leaf and the current root.
 *
 * Proofs are the inclusion proof (audit path, §2.1.3.1) and consistency
 * proof (§2.1.4.1) of RFC 9162, checked as §2.1.3.2 and §2.1.4.2 say.
 * Verification reads nothing but its arguments, never asserts on them,
 * and rejects every proof that is not exactly the one the sizes call for.
 *
 * The proof encoding (the bytes an api reply carries), big-endian:
 *
 *     u8  kind          1 = inclusion, 2 = consistency
 *     u64 m             leaf index (inclusion) or old tree size
 *     u64 n             tree size (inclusion) or new tree size
 *     u8  count         hashes that follow (0..PARLEY__TLOG_PROOF_MAX)
 *     count x 32 bytes  the proof's hashes, in RFC 9162 order
 *
 * docs/transparency.md describes all of it with examples.
 *
 * Threads: the functions keep no global state; a range or memory store
 * belongs to one thread at a time.
 */
#ifndef PARLEY_TLOG_H
#define PARLEY_TLOG_H

#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__TLOG_HASH_BYTES 32
/* Hashes in the longest proof for any tree of up to 2^64 - 1 leaves. */
#define PARLEY__TLOG_PROOF_MAX 65
/* Largest tree the stored-hash layout addresses (2n must fit in 64 bits
 * with room to spare); sources refuse larger sizes. */
#define PARLEY__TLOG_SIZE_MAX ((uint64_t)1 << 62)
/* Encoded proof: the fixed fields before the hashes. */
#define PARLEY__TLOG_PROOF_HEADER 18
#define PARLEY__TLOG_PROOF_ENCODED_MAX                                        \
    (PARLEY__TLOG_PROOF_HEADER + PARLEY__TLOG_PROOF_MAX * PARLEY__TLOG_HASH_BYTES)

/* One SHA-256 hash of the tree. */
typedef struct parley__tlog_hash {
    uint8_t b[PARLEY__TLOG_HASH_BYTES];
} parley__tlog_hash_t;

/* ------------------------------------------------------------ hashing */

/* SHA-256(0x00 || data): the leaf hash of one record. */
void parley__tlog_leaf_hash(const void *data, size_t len,
                            parley__tlog_hash_t *out);

/* SHA-256(0x01 || left || right). out may alias left or right. */
void parley__tlog_node_hash(const parley__tlog_hash_t *left,
                            const parley__tlog_hash_t *right,
                            parley__tlog_hash_t *out);

/*
 * The record an absent-record leaf stands for: this prefix (with its
 * NUL), then the seq as a big-endian u64. A log whose front was removed
 * before it kept a tree starts its tree with one such leaf per record it
 * no longer holds (docs/transparency.md, "Logs older than their tree"),
 * so that leaf index = seq - 1 holds everywhere. No SignedUpdate decodes
 * from these bytes, so no update can pass for one.
 */
#define PARLEY__TLOG_ABSENT_PREFIX "parley/tlog/absent-record/v1"

/* The leaf hash of the absent-record leaf of seq (see above). */
void parley__tlog_absent_leaf(uint64_t seq, parley__tlog_hash_t *out);

/* SHA-256 of the empty string: the root of a tree of no leaves. */
void parley__tlog_empty_root(parley__tlog_hash_t *out);

/* 1 when the two hashes are equal, else 0. */
int parley__tlog_hash_equal(const parley__tlog_hash_t *a,
                            const parley__tlog_hash_t *b);

/* ------------------------------------------------------ stored hashes */

/*
 * Position of the stored hash of the complete subtree of 2^level leaves
 * starting at leaf k * 2^level (level 0: the leaf hash of leaf k).
 * Defined while (k + 1) * 2^level <= PARLEY__TLOG_SIZE_MAX.
 */
uint64_t parley__tlog_stored_index(unsigned level, uint64_t k);

/* Stored hashes of a tree of n leaves: 2n - popcount(n). n <= SIZE_MAX. */
uint64_t parley__tlog_stored_count(uint64_t n);

/*
 * Leaves whose stored hashes all fit in the first count stored hashes:
 * the largest n with parley__tlog_stored_count(n) <= count.
 */
uint64_t parley__tlog_stored_leaves(uint64_t count);

/*
 * A hash source: put the stored hash at position index in *out.
 *
 * Returns:   0, or a negative code that the caller passes on.
 */
typedef int (*parley__tlog_read_fn)(void *ctx, uint64_t index,
                                    parley__tlog_hash_t *out);

/* ------------------------------------------------------ compact range */

/*
 * The right edge of a growing tree: for each set bit of size, from the
 * highest down, the hash of the complete subtree it stands for.
 */
typedef struct parley__tlog_range {
    uint64_t size;                      /* leaves appended */
    unsigned count;                     /* subtrees held: popcount(size) */
    parley__tlog_hash_t subtree[64];    /* largest (leftmost) first */
} parley__tlog_range_t;

/* An empty range (a tree of no leaves). */
void parley__tlog_range_init(parley__tlog_range_t *r);

/*
 * Append the leaf whose hash is leaf. stored (room for 64 hashes)
 * receives the stored hashes the leaf adds, in stored order: the leaf
 * hash, then the subtrees it completes, lowest level first; *nstored
 * their number (1 + the trailing one bits of the old size).
 *
 * Returns:   0, or PARLEY_EARG when the range is full
 *            (PARLEY__TLOG_SIZE_MAX leaves).
 */
int parley__tlog_range_append(parley__tlog_range_t *r,
                              const parley__tlog_hash_t *leaf,
                              parley__tlog_hash_t *stored, size_t *nstored);

/* The root of the range's tree (the empty root for size 0). */
void parley__tlog_range_root(const parley__tlog_range_t *r,
                             parley__tlog_hash_t *out);

/*
 * Rebuild the range of a tree of size leaves from a hash source (one read
 * per set bit of size).
 *
 * Returns:   0, PARLEY_EARG (size over PARLEY__TLOG_SIZE_MAX), or what
 *            read returned.
 */
int parley__tlog_range_load(parley__tlog_range_t *r, uint64_t size,
                            parley__tlog_read_fn read, void *ctx);

/* ----------------------------------------------- roots and proofs */

/*
 * The root of the tree of the first n leaves, from a source holding at
 * least their stored hashes.
 *
 * Returns:   0, PARLEY_EARG (n over PARLEY__TLOG_SIZE_MAX), or what read
 *            returned.
 */
int parley__tlog_root(parley__tlog_read_fn read, void *ctx, uint64_t n,
                      parley__tlog_hash_t *out);

/* Proof kinds (the first byte of an encoded proof). */
#define PARLEY__TLOG_INCLUSION 1
#define PARLEY__TLOG_CONSISTENCY 2

/*
 * A proof. Inclusion: leaf m is in the tree of n leaves (0 <= m < n).
 * Consistency: the tree of m leaves is a prefix of the tree of n
 * (0 <= m <= n; empty when m is 0 or m == n). Field names follow RFC
 * 9162's PATH(m, D[n]) and PROOF(m, D[n]).
 */
typedef struct parley__tlog_proof {
    uint8_t kind;                    /* PARLEY__TLOG_INCLUSION or _CONSISTENCY */
    uint64_t m;                      /* leaf index, or old tree size */
    uint64_t n;                      /* tree size, or new tree size */
    size_t count;                    /* hashes in path */
    parley__tlog_hash_t path[PARLEY__TLOG_PROOF_MAX]; /* RFC 9162 order */
} parley__tlog_proof_t;

/*
 * The number of hashes the proof of kind for (m, n) has, or -1 when
 * (m, n) is not a valid pair for that kind.
 */
int parley__tlog_proof_len(uint8_t kind, uint64_t m, uint64_t n);

/*
 * Make the proof of kind for (m, n) from a source holding the stored
 * hashes of the first n leaves.
 *
 * Returns:   0, PARLEY_EARG (unknown kind, (m, n) not valid for it, n over
 *            PARLEY__TLOG_SIZE_MAX), or what read returned.
 */
int parley__tlog_prove(parley__tlog_read_fn read, void *ctx, uint8_t kind,
                       uint64_t m, uint64_t n, parley__tlog_proof_t *out);

/*
 * RFC 9162 §2.1.3.2: check that leaf (a leaf hash) is leaf index of the
 * tree of size leaves whose root is root, by the path of count hashes.
 * why (may be NULL) receives a static reason on failure.
 *
 * Returns:   0, or PARLEY_EINVALID (the proof does not prove it).
 */
int parley__tlog_verify_inclusion(const parley__tlog_hash_t *leaf,
                                  uint64_t index, uint64_t size,
                                  const parley__tlog_hash_t *root,
                                  const parley__tlog_hash_t *path,
                                  size_t count, const char **why)
    PARLEY_WARN_UNUSED;

/*
 * RFC 9162 §2.1.4.2: check that the tree of old_size leaves with root
 * old_root is a prefix of the tree of new_size leaves with root new_root,
 * by the path of count hashes. Equal sizes need an empty path and equal
 * roots; old size 0 needs an empty path and the empty root as old_root.
 *
 * Returns:   0, or PARLEY_EINVALID (the proof does not prove it).
 */
int parley__tlog_verify_consistency(uint64_t old_size, uint64_t new_size,
                                    const parley__tlog_hash_t *old_root,
                                    const parley__tlog_hash_t *new_root,
                                    const parley__tlog_hash_t *path,
                                    size_t count, const char **why)
    PARLEY_WARN_UNUSED;

/*
 * Inclusion proofs of many leaves against one root, sharing the work: a
 * node that a proof of the batch already led to the root is trusted, so
 * the next proof that reaches it stops there (its hash must be the same).
 * For leaves close to each other most of the path is shared: a subscriber
 * checking the updates one checkpoint covers hashes each upper node once.
 * Nodes are named by (level, index at that level) for the batch's size.
 */
typedef struct parley__tlog_batch {
    uint64_t size;                     /* the tree size of every proof */
    parley__tlog_hash_t root;          /* and its root */
    size_t used, cap;                  /* slots in use, slots (a power of 2) */
    struct parley__tlog_node {
        uint64_t level_plus1;          /* 0: empty slot */
        uint64_t index;
        parley__tlog_hash_t hash;
    } *slots;
} parley__tlog_batch_t;

/*
 * Start a batch for the tree of size leaves with root.
 *
 * Returns:   0 or -ENOMEM.
 * Ownership: free with parley__tlog_batch_clear().
 */
int parley__tlog_batch_init(parley__tlog_batch_t *b, uint64_t size,
                            const parley__tlog_hash_t *root);

void parley__tlog_batch_clear(parley__tlog_batch_t *b);

/*
 * As parley__tlog_verify_inclusion() against the batch's size and root,
 * stopping early at a node an earlier proof of the batch authenticated.
 *
 * Returns:   0, or PARLEY_EINVALID.
 */
int parley__tlog_batch_verify(parley__tlog_batch_t *b,
                              const parley__tlog_hash_t *leaf, uint64_t index,
                              const parley__tlog_hash_t *path, size_t count,
                              const char **why) PARLEY_WARN_UNUSED;

/*
 * Check a decoded inclusion proof (p->m = leaf index, p->n = tree size)
 * for the leaf hash leaf against root.
 *
 * Returns:   0, PARLEY_EINVALID, or PARLEY_EARG (p is not an inclusion
 *            proof).
 */
int parley__tlog_proof_check_inclusion(const parley__tlog_proof_t *p,
                                       const parley__tlog_hash_t *leaf,
                                       const parley__tlog_hash_t *root,
                                       const char **why) PARLEY_WARN_UNUSED;

/*
 * Check a decoded consistency proof (p->m = old size, p->n = new size)
 * between old_root and new_root.
 *
 * Returns:   0, PARLEY_EINVALID, or PARLEY_EARG (not a consistency proof).
 */
int parley__tlog_proof_check_consistency(const parley__tlog_proof_t *p,
                                         const parley__tlog_hash_t *old_root,
                                         const parley__tlog_hash_t *new_root,
                                         const char **why) PARLEY_WARN_UNUSED;

/*
 * Encode a proof (format above) into buf.
 *
 * Returns:   0 with *len set, PARLEY_EARG (count over the maximum or
 *            unknown kind), or -ENOBUFS.
 */
int parley__tlog_proof_encode(const parley__tlog_proof_t *p, void *buf,
                              size_t cap, size_t *len);

/*
 * Decode a proof. Strict: a known kind, (m, n) valid for it, count equal
 * to the length the sizes call for, and exactly count hashes after the
 * header, nothing more. It does not check the hashes (that needs the
 * roots: parley__tlog_proof_check_*). why (may be NULL) receives a
 * static reason on failure.
 *
 * Returns:   0, or PARLEY_EMALFORMED.
 */
int parley__tlog_proof_decode(const void *buf, size_t len,
                              parley__tlog_proof_t *out, const char **why)
    PARLEY_WARN_UNUSED;

/* ------------------------------------------------- memory hash store */

/*
 * Stored hashes in memory: what tests, tools and an all/ subscriber that
 * keeps the tree use as a hash source. The range gives the root.
 */
typedef struct parley__tlog_mem {
    parley__tlog_hash_t *hashes; /* stored hashes, in stored order */
    uint64_t len;                /* stored hashes held */
    uint64_t cap;                /* allocated */
    parley__tlog_range_t range;  /* right edge of the tree */
} parley__tlog_mem_t;

/* An empty store. */
void parley__tlog_mem_init(parley__tlog_mem_t *m);

/* Free the hashes; the store is empty again. */
void parley__tlog_mem_clear(parley__tlog_mem_t *m);

/*
 * Append a record (its leaf hash is computed here) or a leaf hash.
 *
 * Returns:   0, -ENOMEM or PARLEY_EARG (the tree is full).
 */
int parley__tlog_mem_append(parley__tlog_mem_t *m, const void *data,
                            size_t len);
int parley__tlog_mem_append_hash(parley__tlog_mem_t *m,
                                 const parley__tlog_hash_t *leaf);

/* The hash source over a memory store (ctx is the parley__tlog_mem_t). */
int parley__tlog_mem_read(void *ctx, uint64_t index, parley__tlog_hash_t *out);

#endif /* PARLEY_TLOG_H */
