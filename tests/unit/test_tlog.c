/*
 * test_tlog.c - the Merkle tree: hashing, stored-hash positions, the
 * compact range against a direct recursive MTH, proofs for every pair of
 * small trees, every rejection path of verification and decoding, and
 * proofs that are damaged in every way (a hash changed, dropped, added).
 * The byte-for-byte check against Go's sumdb/tlog and an RFC 9162 Python
 * reference is tests/vectors/tlog (ctest vectors/tlog).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlog.h"

typedef parley__tlog_hash_t hash_t;

/* --- helpers -------------------------------------------------------------- */

static void
s_hex(hash_t *out, const char *hex)
{
    size_t len = 0;
    assert_int_equal(sodium_hex2bin(out->b, sizeof(out->b), hex, strlen(hex),
                                    NULL, &len, NULL),
                     0);
    assert_int_equal(len, 32);
}

/* Record i of the test trees. */
static size_t
s_record(uint64_t i, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "record %llu", (unsigned long long)i);
}

/* MTH(D[lo:hi]) straight from RFC 9162's recursive definition. */
static void
s_mth(const hash_t *leaves, uint64_t lo, uint64_t hi, hash_t *out)
{
    if (hi - lo == 1) {
        *out = leaves[lo];
        return;
    }
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    hash_t l, r;
    s_mth(leaves, lo, lo + k, &l);
    s_mth(leaves, lo + k, hi, &r);
    parley__tlog_node_hash(&l, &r, out);
}

/* A memory store of n records, with their leaf hashes in leaves. */
static void
s_build(parley__tlog_mem_t *m, hash_t *leaves, uint64_t n)
{
    parley__tlog_mem_init(m);
    for (uint64_t i = 0; i < n; i++) {
        char rec[64];
        size_t len = s_record(i, rec, sizeof(rec));
        parley__tlog_leaf_hash(rec, len, &leaves[i]);
        assert_int_equal(parley__tlog_mem_append(m, rec, len), 0);
    }
}

/* A source that fails every read, to see errors passed through. */
static int
s_read_fails(void *ctx, uint64_t index, hash_t *out)
{
    (void)ctx;
    (void)index;
    (void)out;
    return -EIO;
}

/* A source with a made-up hash at every position, for huge trees. */
static int
s_read_any(void *ctx, uint64_t index, hash_t *out)
{
    (void)ctx;
    memset(out->b, 0, sizeof(out->b));
    memcpy(out->b, &index, sizeof(index));
    return 0;
}

/* --- tests ---------------------------------------------------------------- */

/* Known answers: SHA-256 of "", leaf hash of "" (RFC 6962's test data),
 * and a node hash worked out by hand from the definition. */
static void
test_hashes(void **state)
{
    (void)state;
    hash_t h, want;
    parley__tlog_empty_root(&h);
    s_hex(&want, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_true(parley__tlog_hash_equal(&h, &want));

    parley__tlog_leaf_hash("", 0, &h);
    s_hex(&want, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    assert_true(parley__tlog_hash_equal(&h, &want));

    /* node(a, b) = SHA-256(0x01 || a || b) */
    hash_t a, b;
    memset(a.b, 0xaa, 32);
    memset(b.b, 0xbb, 32);
    uint8_t buf[65];
    buf[0] = 1;
    memcpy(buf + 1, a.b, 32);
    memcpy(buf + 33, b.b, 32);
    crypto_hash_sha256(want.b, buf, sizeof(buf));
    parley__tlog_node_hash(&a, &b, &h);
    assert_true(parley__tlog_hash_equal(&h, &want));
    /* Aliasing the output with an input is allowed. */
    parley__tlog_node_hash(&a, &b, &a);
    assert_true(parley__tlog_hash_equal(&a, &want));
    assert_false(parley__tlog_hash_equal(&a, &b));
}

/* Positions of stored hashes: dense, each written once, in append order. */
static void
test_stored_positions(void **state)
{
    (void)state;
    assert_int_equal(parley__tlog_stored_count(0), 0);
    assert_int_equal(parley__tlog_stored_count(1), 1);
    assert_int_equal(parley__tlog_stored_count(2), 3);
    assert_int_equal(parley__tlog_stored_count(3), 4);
    assert_int_equal(parley__tlog_stored_count(4), 7);
    assert_int_equal(parley__tlog_stored_index(0, 0), 0);
    assert_int_equal(parley__tlog_stored_index(0, 1), 1);
    assert_int_equal(parley__tlog_stored_index(1, 0), 2);
    assert_int_equal(parley__tlog_stored_index(0, 2), 3);
    assert_int_equal(parley__tlog_stored_index(0, 3), 4);
    assert_int_equal(parley__tlog_stored_index(1, 1), 5);
    assert_int_equal(parley__tlog_stored_index(2, 0), 6);

    /* Walk 5000 leaves: the range emits exactly the positions the index
     * function names, in order. */
    parley__tlog_range_t r;
    parley__tlog_range_init(&r);
    uint64_t pos = 0;
    for (uint64_t m = 0; m < 5000; m++) {
        hash_t leaf, stored[64];
        size_t n;
        memset(leaf.b, 0, 32);
        assert_int_equal(parley__tlog_range_append(&r, &leaf, stored, &n), 0);
        assert_int_equal(parley__tlog_stored_index(0, m), pos);
        for (size_t l = 1; l < n; l++)
            assert_int_equal(parley__tlog_stored_index((unsigned)l, (m + 1) / (1u << l) - 1),
                             pos + l);
        pos += n;
        assert_int_equal(parley__tlog_stored_count(m + 1), pos);
        assert_int_equal(parley__tlog_stored_leaves(pos), m + 1);
        /* One short of a whole group is the leaves before it. */
        assert_int_equal(parley__tlog_stored_leaves(pos - 1), m);
    }
    uint64_t big = PARLEY__TLOG_SIZE_MAX;
    assert_int_equal(parley__tlog_stored_leaves(parley__tlog_stored_count(big)), big);
    assert_int_equal(parley__tlog_stored_leaves(UINT64_MAX), big);
}

/* The compact range, the root from stored hashes and the recursive MTH
 * agree for every size up to 600. */
static void
test_roots(void **state)
{
    (void)state;
    enum { N = 600 };
    hash_t *leaves = calloc(N, sizeof(*leaves));
    assert_non_null(leaves);
    parley__tlog_mem_t m;
    s_build(&m, leaves, N);

    parley__tlog_range_t r;
    parley__tlog_range_init(&r);
    hash_t got, want;
    parley__tlog_range_root(&r, &got);
    parley__tlog_empty_root(&want);
    assert_true(parley__tlog_hash_equal(&got, &want));
    assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, 0, &got), 0);
    assert_true(parley__tlog_hash_equal(&got, &want));

    for (uint64_t n = 1; n <= N; n++) {
        hash_t stored[64];
        size_t ns;
        assert_int_equal(parley__tlog_range_append(&r, &leaves[n - 1], stored, &ns), 0);
        s_mth(leaves, 0, n, &want);
        parley__tlog_range_root(&r, &got);
        assert_true(parley__tlog_hash_equal(&got, &want));
        assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, n, &got), 0);
        assert_true(parley__tlog_hash_equal(&got, &want));
        /* A range rebuilt from the stored hashes is the same range. */
        parley__tlog_range_t again;
        assert_int_equal(parley__tlog_range_load(&again, n, parley__tlog_mem_read, &m), 0);
        assert_int_equal(again.size, n);
        assert_int_equal(again.count, r.count);
        assert_memory_equal(again.subtree, r.subtree, r.count * sizeof(hash_t));
    }
    assert_int_equal(m.range.size, N);
    parley__tlog_mem_clear(&m);
    free(leaves);
}

/* Check a proof of either kind (old_root only for consistency). */
static int
s_check(const parley__tlog_proof_t *p, const hash_t *leaf, const hash_t *old_root,
        const hash_t *root, const char **why)
{
    if (p->kind == PARLEY__TLOG_INCLUSION)
        return parley__tlog_proof_check_inclusion(p, leaf, root, why);
    return parley__tlog_proof_check_consistency(p, old_root, root, why);
}

/* Damage a valid proof every way there is and expect each to fail. */
static void
s_damaged_fail(const parley__tlog_proof_t *good, const hash_t *leaf,
               const hash_t *old_root, const hash_t *root)
{
    parley__tlog_proof_t p;
    const char *why;
    for (size_t i = 0; i < good->count; i++) {
        /* One bit of one hash. */
        p = *good;
        p.path[i].b[i % 32] ^= (uint8_t)(1u << (i % 8));
        why = NULL;
        assert_int_equal(s_check(&p, leaf, old_root, root, &why), PARLEY_EINVALID);
        assert_non_null(why);
        /* Hash i dropped. */
        p = *good;
        memmove(&p.path[i], &p.path[i + 1], (p.count - i - 1) * sizeof(hash_t));
        p.count--;
        assert_int_equal(s_check(&p, leaf, old_root, root, NULL), PARLEY_EINVALID);
    }
    for (size_t i = 0; i <= good->count && good->count < PARLEY__TLOG_PROOF_MAX; i++) {
        /* An extra hash at i (a copy of a neighbour, or zeros). */
        p = *good;
        memmove(&p.path[i + 1], &p.path[i], (p.count - i) * sizeof(hash_t));
        if (i > 0)
            p.path[i] = p.path[i - 1];
        else
            memset(p.path[i].b, 0, 32);
        p.count++;
        assert_int_equal(s_check(&p, leaf, old_root, root, NULL), PARLEY_EINVALID);
    }
    /* The wrong root, and for inclusion the wrong leaf. */
    hash_t other = *root;
    other.b[31] ^= 0x80;
    if (good->kind == PARLEY__TLOG_INCLUSION) {
        assert_int_equal(parley__tlog_proof_check_inclusion(good, leaf, &other, NULL),
                         PARLEY_EINVALID);
        assert_int_equal(parley__tlog_proof_check_inclusion(good, &other, root, NULL),
                         PARLEY_EINVALID);
    } else {
        /* (The empty tree is a prefix of every tree, whatever its root.) */
        if (good->m > 0)
            assert_int_equal(parley__tlog_proof_check_consistency(good, old_root, &other,
                                                                  NULL),
                             PARLEY_EINVALID);
        hash_t old_other = *old_root;
        old_other.b[0] ^= 0x01;
        assert_int_equal(parley__tlog_proof_check_consistency(good, &old_other, root, NULL),
                         PARLEY_EINVALID);
    }
}

/* Encode, decode, compare. */
static void
s_round_trip(const parley__tlog_proof_t *p)
{
    uint8_t buf[PARLEY__TLOG_PROOF_ENCODED_MAX];
    size_t len = 0;
    assert_int_equal(parley__tlog_proof_encode(p, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, PARLEY__TLOG_PROOF_HEADER + 32 * p->count);
    parley__tlog_proof_t q;
    assert_int_equal(parley__tlog_proof_decode(buf, len, &q, NULL), 0);
    assert_int_equal(q.kind, p->kind);
    assert_int_equal(q.m, p->m);
    assert_int_equal(q.n, p->n);
    assert_int_equal(q.count, p->count);
    assert_memory_equal(q.path, p->path, p->count * sizeof(hash_t));
}

/* Prove (kind, m, n) from the store; the proof has the planned length. */
static void
s_prove(parley__tlog_mem_t *m, uint8_t kind, uint64_t a, uint64_t n,
        parley__tlog_proof_t *p)
{
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, m, kind, a, n, p), 0);
    assert_int_equal(p->count, parley__tlog_proof_len(kind, a, n));
    s_round_trip(p);
}

/* Every inclusion and consistency proof of every tree up to 40 leaves:
 * valid, of the planned length, surviving the encoding, and refused in
 * every damaged form. */
static void
test_proofs_small(void **state)
{
    (void)state;
    enum { N = 40 };
    hash_t leaves[N], roots[N + 1];
    parley__tlog_mem_t m;
    s_build(&m, leaves, N);
    for (uint64_t n = 0; n <= N; n++)
        assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, n, &roots[n]), 0);

    for (uint64_t n = 1; n <= N; n++) {
        for (uint64_t i = 0; i < n; i++) {
            parley__tlog_proof_t p;
            s_prove(&m, PARLEY__TLOG_INCLUSION, i, n, &p);
            assert_int_equal(parley__tlog_proof_check_inclusion(&p, &leaves[i],
                                                                &roots[n], NULL),
                             0);
            /* Another leaf of the same tree is not proven by it. */
            if (n > 1)
                assert_int_equal(parley__tlog_proof_check_inclusion(
                                     &p, &leaves[(i + 1) % n], &roots[n], NULL),
                                 PARLEY_EINVALID);
            s_damaged_fail(&p, &leaves[i], NULL, &roots[n]);
        }
        for (uint64_t old = 0; old <= n; old++) {
            parley__tlog_proof_t p;
            s_prove(&m, PARLEY__TLOG_CONSISTENCY, old, n, &p);
            assert_int_equal(parley__tlog_proof_check_consistency(&p, &roots[old],
                                                                  &roots[n], NULL),
                             0);
            s_damaged_fail(&p, NULL, &roots[old], &roots[n]);
            /* The proof does not hold for another old tree. */
            if (old > 0 && old < n)
                assert_int_equal(parley__tlog_proof_check_consistency(
                                     &p, &roots[old - 1], &roots[n], NULL),
                                 PARLEY_EINVALID);
        }
    }
    parley__tlog_mem_clear(&m);
}

/* Each reason inclusion verification gives, provoked once. */
static void
test_inclusion_rejects(void **state)
{
    (void)state;
    hash_t leaves[8];
    parley__tlog_mem_t m;
    s_build(&m, leaves, 8);
    hash_t root;
    assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, 6, &root), 0);
    parley__tlog_proof_t p;
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m, PARLEY__TLOG_INCLUSION,
                                        2, 6, &p),
                     0);
    assert_int_equal(p.count, 3);
    const char *why = NULL;

    assert_int_equal(parley__tlog_verify_inclusion(&leaves[2], 6, 6, &root, p.path,
                                                   p.count, &why),
                     PARLEY_EINVALID);
    assert_string_equal(why, "leaf index not below the tree size");
    assert_int_equal(parley__tlog_verify_inclusion(&leaves[0], 0, 0, &root, NULL, 0,
                                                   &why),
                     PARLEY_EINVALID);
    assert_string_equal(why, "leaf index not below the tree size");
    assert_int_equal(parley__tlog_verify_inclusion(&leaves[2], 2, 6, &root, p.path, 4,
                                                   &why),
                     PARLEY_EINVALID);
    assert_string_equal(why, "proof longer than the path to the root");
    assert_int_equal(parley__tlog_verify_inclusion(&leaves[2], 2, 6, &root, p.path, 2,
                                                   &why),
                     PARLEY_EINVALID);
    assert_string_equal(why, "proof shorter than the path to the root");
    assert_int_equal(parley__tlog_verify_inclusion(&leaves[3], 2, 6, &root, p.path,
                                                   p.count, &why),
                     PARLEY_EINVALID);
    assert_string_equal(why, "proof leads to another root");
    assert_int_equal(parley__tlog_verify_inclusion(NULL, 2, 6, &root, p.path, p.count,
                                                   &why),
                     PARLEY_EINVALID);
    assert_string_equal(why, "missing argument");
    assert_int_equal(parley__tlog_verify_inclusion(&leaves[2], 2, 6, &root, NULL, 3,
                                                   &why),
                     PARLEY_EINVALID);
    assert_int_equal(parley__tlog_verify_inclusion(&leaves[2], 2, 6, &root, p.path,
                                                   p.count, NULL),
                     0);
    /* A tree of one leaf: the root is the leaf, the proof is empty. */
    assert_int_equal(parley__tlog_verify_inclusion(&leaves[0], 0, 1, &leaves[0], NULL, 0,
                                                   NULL),
                     0);
    /* The wrong kind of proof for the checker. */
    p.kind = PARLEY__TLOG_CONSISTENCY;
    assert_int_equal(parley__tlog_proof_check_inclusion(&p, &leaves[2], &root, &why),
                     PARLEY_EARG);
    assert_string_equal(why, "not an inclusion proof");
    assert_int_equal(parley__tlog_proof_check_inclusion(NULL, &leaves[2], &root, NULL),
                     PARLEY_EARG);
    parley__tlog_mem_clear(&m);
}

/* Each reason consistency verification gives, provoked once. */
static void
test_consistency_rejects(void **state)
{
    (void)state;
    hash_t leaves[8], roots[9];
    parley__tlog_mem_t m;
    s_build(&m, leaves, 8);
    for (uint64_t n = 0; n <= 8; n++)
        assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, n, &roots[n]), 0);
    parley__tlog_proof_t p3, p4;
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m,
                                        PARLEY__TLOG_CONSISTENCY, 3, 7, &p3),
                     0);
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m,
                                        PARLEY__TLOG_CONSISTENCY, 4, 7, &p4),
                     0);
    const char *why = NULL;
#define CONS(o, n, ro, rn, path, count)                                       \
    parley__tlog_verify_consistency(o, n, ro, rn, path, count, &why)

    assert_int_equal(CONS(7, 3, &roots[7], &roots[3], NULL, 0), PARLEY_EINVALID);
    assert_string_equal(why, "old tree larger than the new one");
    assert_int_equal(CONS(7, 7, &roots[7], &roots[7], p3.path, 1), PARLEY_EINVALID);
    assert_string_equal(why, "proof given where none is needed");
    assert_int_equal(CONS(0, 7, &roots[0], &roots[7], p3.path, 1), PARLEY_EINVALID);
    assert_string_equal(why, "proof given where none is needed");
    assert_int_equal(CONS(0, 7, &roots[1], &roots[7], NULL, 0), PARLEY_EINVALID);
    assert_string_equal(why, "old root is not the empty root");
    assert_int_equal(CONS(7, 7, &roots[6], &roots[7], NULL, 0), PARLEY_EINVALID);
    assert_string_equal(why, "same size, different roots");
    assert_int_equal(CONS(3, 7, &roots[3], &roots[7], NULL, 0), PARLEY_EINVALID);
    assert_string_equal(why, "empty proof");
    assert_int_equal(CONS(3, 7, &roots[3], &roots[7], p3.path, p3.count + 1),
                     PARLEY_EINVALID);
    assert_string_equal(why, "proof longer than the path to the root");
    assert_int_equal(CONS(3, 7, &roots[3], &roots[7], p3.path, p3.count - 1),
                     PARLEY_EINVALID);
    assert_string_equal(why, "proof shorter than the path to the root");
    assert_int_equal(CONS(3, 7, &roots[2], &roots[7], p3.path, p3.count),
                     PARLEY_EINVALID);
    assert_string_equal(why, "proof does not lead to the old root");
    assert_int_equal(CONS(3, 7, &roots[3], &roots[6], p3.path, p3.count),
                     PARLEY_EINVALID);
    assert_string_equal(why, "proof does not lead to the new root");
    /* Power-of-two old size: the old root is the implicit first hash. */
    assert_int_equal(CONS(4, 7, &roots[4], &roots[7], p4.path, p4.count), 0);
    assert_int_equal(CONS(4, 7, &roots[3], &roots[7], p4.path, p4.count),
                     PARLEY_EINVALID);
    /* (fr starts as that old root, so the new root is what disagrees.) */
    assert_string_equal(why, "proof does not lead to the new root");
    assert_int_equal(CONS(3, 7, NULL, &roots[7], p3.path, p3.count), PARLEY_EINVALID);
    assert_string_equal(why, "missing argument");
    assert_int_equal(CONS(3, 7, &roots[3], &roots[7], NULL, p3.count), PARLEY_EINVALID);
    assert_string_equal(why, "missing argument");
    /* Trivial truths. */
    assert_int_equal(CONS(0, 0, &roots[0], &roots[0], NULL, 0), 0);
    assert_int_equal(CONS(0, 5, &roots[0], &roots[5], NULL, 0), 0);
    assert_int_equal(CONS(5, 5, &roots[5], &roots[5], NULL, 0), 0);
#undef CONS
    p3.kind = PARLEY__TLOG_INCLUSION;
    assert_int_equal(parley__tlog_proof_check_consistency(&p3, &roots[3], &roots[7], &why),
                     PARLEY_EARG);
    assert_string_equal(why, "not a consistency proof");
    parley__tlog_mem_clear(&m);
}

/* Each reason the decoder gives, provoked once; and the encoder's limits. */
static void
test_decode_rejects(void **state)
{
    (void)state;
    hash_t leaves[8];
    parley__tlog_mem_t m;
    s_build(&m, leaves, 8);
    parley__tlog_proof_t p, q;
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m, PARLEY__TLOG_INCLUSION,
                                        5, 7, &p),
                     0);
    uint8_t buf[PARLEY__TLOG_PROOF_ENCODED_MAX + 64];
    size_t len;
    assert_int_equal(parley__tlog_proof_encode(&p, buf, sizeof(buf), &len), 0);
    /* The layout: kind, m and n big-endian, count, hashes. */
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[8], 5);
    assert_int_equal(buf[16], 7);
    assert_int_equal(buf[17], p.count);
    assert_memory_equal(buf + 18, p.path[0].b, 32);

    const char *why = NULL;
    assert_int_equal(parley__tlog_proof_decode(buf, 17, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "shorter than the proof header");
    assert_int_equal(parley__tlog_proof_decode(NULL, 0, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "shorter than the proof header");
    assert_int_equal(parley__tlog_proof_decode(buf, len, NULL, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "missing argument");

    uint8_t bad[sizeof(buf)];
#define MUTATE(off, val)                                                      \
    do {                                                                      \
        memcpy(bad, buf, len);                                                \
        bad[off] = (uint8_t)(val);                                            \
    } while (0)
    MUTATE(0, 0);
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "unknown proof kind");
    MUTATE(0, 3);
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "unknown proof kind");
    MUTATE(17, PARLEY__TLOG_PROOF_MAX + 1);
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "more hashes than any proof has");
    MUTATE(17, p.count + 1);
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "length does not match the hash count");
    assert_int_equal(parley__tlog_proof_decode(buf, len - 1, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "length does not match the hash count");
    assert_int_equal(parley__tlog_proof_decode(buf, len + 32, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "length does not match the hash count");
    MUTATE(8, 7); /* index 7 in a tree of 7 */
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "leaf index not below the tree size");
    MUTATE(16, 4); /* leaf 5 of a tree of 4 */
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "leaf index not below the tree size");
    MUTATE(16, 6); /* leaf 5 of 6: two hashes, not three */
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "hash count is not the one the sizes call for");
    /* Consistency: old above new, and an empty proof that must have hashes. */
    MUTATE(0, 2);
    bad[8] = 9;
    assert_int_equal(parley__tlog_proof_decode(bad, len, &q, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "old size above the new size");
    uint8_t empty[PARLEY__TLOG_PROOF_HEADER] = { 2, 0, 0, 0, 0, 0, 0, 0, 3,
                                                 0, 0, 0, 0, 0, 0, 0, 7, 0 };
    assert_int_equal(parley__tlog_proof_decode(empty, sizeof(empty), &q, &why),
                     PARLEY_EMALFORMED);
    assert_string_equal(why, "hash count is not the one the sizes call for");
    empty[8] = 7; /* 7 to 7: nothing to prove, no hashes */
    assert_int_equal(parley__tlog_proof_decode(empty, sizeof(empty), &q, &why), 0);
    assert_int_equal(q.count, 0);
    /* Huge sizes decode (the plan handles any 64-bit size). */
    memset(empty + 1, 0xff, 16);
    assert_int_equal(parley__tlog_proof_decode(empty, sizeof(empty), &q, &why), 0);
#undef MUTATE

    /* Encoder limits. */
    assert_int_equal(parley__tlog_proof_encode(&p, buf, len - 1, &len), -ENOBUFS);
    assert_int_equal(len, PARLEY__TLOG_PROOF_HEADER + 32 * p.count);
    q = p;
    q.kind = 9;
    assert_int_equal(parley__tlog_proof_encode(&q, buf, sizeof(buf), &len), PARLEY_EARG);
    q = p;
    q.count = PARLEY__TLOG_PROOF_MAX + 1;
    assert_int_equal(parley__tlog_proof_encode(&q, buf, sizeof(buf), &len), PARLEY_EARG);
    assert_int_equal(parley__tlog_proof_encode(NULL, buf, sizeof(buf), &len), PARLEY_EARG);
    parley__tlog_mem_clear(&m);
}

/* Generation: bad pairs, huge trees, and a source's errors passed on. */
static void
test_prove_errors(void **state)
{
    (void)state;
    hash_t leaves[4], h;
    parley__tlog_mem_t m;
    s_build(&m, leaves, 4);
    parley__tlog_proof_t p;
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m, PARLEY__TLOG_INCLUSION,
                                        4, 4, &p),
                     PARLEY_EARG);
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m,
                                        PARLEY__TLOG_CONSISTENCY, 5, 4, &p),
                     PARLEY_EARG);
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m, 7, 1, 4, &p),
                     PARLEY_EARG);
    assert_int_equal(parley__tlog_prove(NULL, &m, PARLEY__TLOG_INCLUSION, 1, 4, &p),
                     PARLEY_EARG);
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m, PARLEY__TLOG_INCLUSION,
                                        1, 4, NULL),
                     PARLEY_EARG);
    /* Beyond what the store holds: its -ENOENT comes back. */
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m, PARLEY__TLOG_INCLUSION,
                                        1, 5, &p),
                     -ENOENT);
    assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, 5, &h), -ENOENT);
    assert_int_equal(parley__tlog_prove(s_read_fails, NULL, PARLEY__TLOG_CONSISTENCY, 1,
                                        4, &p),
                     -EIO);
    assert_int_equal(parley__tlog_root(s_read_fails, NULL, 3, &h), -EIO);
    parley__tlog_range_t r;
    assert_int_equal(parley__tlog_range_load(&r, 3, s_read_fails, NULL), -EIO);
    /* Sizes beyond the stored-hash layout. */
    uint64_t big = PARLEY__TLOG_SIZE_MAX + 1;
    assert_int_equal(parley__tlog_root(s_read_any, NULL, big, &h), PARLEY_EARG);
    assert_int_equal(parley__tlog_range_load(&r, big, s_read_any, NULL), PARLEY_EARG);
    assert_int_equal(parley__tlog_prove(s_read_any, NULL, PARLEY__TLOG_INCLUSION, 0, big,
                                        &p),
                     PARLEY_EARG);
    /* The largest addressable tree works. */
    assert_int_equal(parley__tlog_prove(s_read_any, NULL, PARLEY__TLOG_INCLUSION,
                                        PARLEY__TLOG_SIZE_MAX - 1, PARLEY__TLOG_SIZE_MAX,
                                        &p),
                     0);
    assert_int_equal(p.count, 62);
    assert_int_equal(parley__tlog_range_load(&r, PARLEY__TLOG_SIZE_MAX, s_read_any, NULL),
                     0);
    /* A full range refuses another leaf. */
    hash_t stored[64];
    size_t ns;
    assert_int_equal(parley__tlog_range_append(&r, &h, stored, &ns), PARLEY_EARG);
    parley__tlog_mem_clear(&m);
}

/* Proof lengths over the whole 64-bit range stay within the maximum, and
 * the maximum is reached. */
static void
test_proof_len_bounds(void **state)
{
    (void)state;
    int most = 0;
    const uint64_t edges[] = { 1, 2, 3, (1ull << 62) - 1, 1ull << 62, (1ull << 62) + 1,
                               (1ull << 63) - 1, 1ull << 63, (1ull << 63) + 1,
                               (1ull << 63) + 2, UINT64_MAX - 1, UINT64_MAX };
    const size_t ne = sizeof(edges) / sizeof(edges[0]);
    for (size_t a = 0; a < ne; a++)
        for (size_t b = 0; b < ne; b++) {
            int li = parley__tlog_proof_len(PARLEY__TLOG_INCLUSION, edges[a], edges[b]);
            int lc = parley__tlog_proof_len(PARLEY__TLOG_CONSISTENCY, edges[a], edges[b]);
            assert_true(li <= PARLEY__TLOG_PROOF_MAX);
            assert_true(lc <= PARLEY__TLOG_PROOF_MAX);
            assert_int_equal(li < 0, edges[a] >= edges[b]);
            assert_int_equal(lc < 0, edges[a] > edges[b]);
            most = li > most ? li : most;
            most = lc > most ? lc : most;
        }
    assert_int_equal(most, PARLEY__TLOG_PROOF_MAX);
    assert_int_equal(parley__tlog_proof_len(0, 1, 2), -1);
}

/*
 * A batch of inclusion proofs agrees with checking each alone, for every
 * leaf of every tree up to 130 leaves, in a shuffled order: each proof of
 * the tree passes whatever the batch has seen before, and every wrong
 * pairing (a leaf under another index, a proof of another leaf, a
 * damaged hash) fails, also once the batch knows every node.
 */
static void
test_batch_inclusion(void **state)
{
    (void)state;
    parley__tlog_mem_t m;
    parley__tlog_mem_init(&m);
    for (uint64_t i = 0; i < 130; i++) {
        uint8_t rec[16];
        size_t len = (size_t)snprintf((char *)rec, sizeof(rec), "leaf %llu",
                                      (unsigned long long)i);
        assert_int_equal(parley__tlog_mem_append(&m, rec, len), 0);
    }
    static parley__tlog_proof_t proofs[130];
    uint64_t order[130];
    uint32_t rnd = 12345;
    for (uint64_t n = 1; n <= 130; n++) {
        parley__tlog_hash_t root, leaf[130];
        assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &m, n, &root), 0);
        for (uint64_t i = 0; i < n; i++) {
            assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &m,
                                                PARLEY__TLOG_INCLUSION, i, n, &proofs[i]),
                             0);
            assert_int_equal(parley__tlog_mem_read(&m, parley__tlog_stored_index(0, i),
                                                   &leaf[i]),
                             0);
            order[i] = i;
        }
        for (uint64_t i = n; i > 1; i--) {
            rnd = rnd * 1103515245u + 12345u;
            uint64_t j = (rnd >> 8) % i, t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        parley__tlog_batch_t b;
        assert_int_equal(parley__tlog_batch_init(&b, n, &root), 0);
        for (uint64_t k = 0; k < n; k++) {
            uint64_t i = order[k];
            assert_int_equal(parley__tlog_batch_verify(&b, &leaf[i], i, proofs[i].path,
                                                       proofs[i].count, NULL),
                             0);
            /* Wrong pairings, with the batch part-way full. */
            uint64_t j = (i + 1 + k) % n;
            if (j != i) {
                assert_int_not_equal(parley__tlog_batch_verify(&b, &leaf[i], j,
                                                               proofs[j].path,
                                                               proofs[j].count, NULL),
                                     0);
                /* Leaf i at index i is known now: the proof given with it
                 * no longer matters (the claim is true either way). */
                assert_int_equal(parley__tlog_batch_verify(&b, &leaf[i], i,
                                                           proofs[j].path,
                                                           proofs[j].count, NULL),
                                 0);
            }
        }
        for (uint64_t i = 0; i < n; i++) {
            for (uint64_t j = 0; j < n; j++) {
                int alone = parley__tlog_verify_inclusion(&leaf[i], j, n, &root,
                                                          proofs[j].path,
                                                          proofs[j].count, NULL);
                int batch = parley__tlog_batch_verify(&b, &leaf[i], j, proofs[j].path,
                                                      proofs[j].count, NULL);
                assert_int_equal(alone == 0, batch == 0);
                assert_int_equal(batch == 0, i == j);
            }
            if (proofs[i].count > 0) {
                /* A damaged proof, in a batch that does not know the leaf. */
                parley__tlog_batch_t fresh;
                parley__tlog_hash_t bad[PARLEY__TLOG_PROOF_MAX];
                memcpy(bad, proofs[i].path, proofs[i].count * sizeof(bad[0]));
                bad[proofs[i].count - 1].b[7] ^= 4;
                assert_int_equal(parley__tlog_batch_init(&fresh, n, &root), 0);
                assert_int_not_equal(parley__tlog_batch_verify(&fresh, &leaf[i], i, bad,
                                                               proofs[i].count, NULL),
                                     0);
                parley__tlog_batch_clear(&fresh);
            }
        }
        parley__tlog_batch_clear(&b);
    }
    parley__tlog_mem_clear(&m);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_stored_positions),
        cmocka_unit_test(test_roots),
        cmocka_unit_test(test_proofs_small),
        cmocka_unit_test(test_inclusion_rejects),
        cmocka_unit_test(test_consistency_rejects),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_prove_errors),
        cmocka_unit_test(test_proof_len_bounds),
        cmocka_unit_test(test_batch_inclusion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
