/*
 * tlog.c - the Merkle tree of the transparency log: hashing, stored-hash
 * positions, the compact range, roots, RFC 9162 proofs and their
 * verification, the proof encoding, and a memory hash store.
 *
 * Proof generation is planned first: a plan lists the tree nodes (leaf
 * ranges [lo, hi)) whose hashes make up the proof, in RFC 9162 order. The
 * same plan gives the length a proof must have, so the decoder and the
 * generator cannot disagree. A node's hash is then the fold of the stored
 * hashes of the complete subtrees it consists of.
 */
#include "tlog.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* --- hashing ------------------------------------------------------------- */

void
parley__tlog_leaf_hash(const void *data, size_t len, parley__tlog_hash_t *out)
{
    static const uint8_t prefix = 0x00;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    if (len > 0)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out->b);
}

void
parley__tlog_node_hash(const parley__tlog_hash_t *left,
                       const parley__tlog_hash_t *right, parley__tlog_hash_t *out)
{
    uint8_t buf[1 + 2 * PARLEY__TLOG_HASH_BYTES];
    buf[0] = 0x01;
    memcpy(buf + 1, left->b, PARLEY__TLOG_HASH_BYTES);
    memcpy(buf + 1 + PARLEY__TLOG_HASH_BYTES, right->b, PARLEY__TLOG_HASH_BYTES);
    crypto_hash_sha256(out->b, buf, sizeof(buf));
}

void
parley__tlog_absent_leaf(uint64_t seq, parley__tlog_hash_t *out)
{
    uint8_t rec[sizeof(PARLEY__TLOG_ABSENT_PREFIX) + 8];
    memcpy(rec, PARLEY__TLOG_ABSENT_PREFIX, sizeof(PARLEY__TLOG_ABSENT_PREFIX));
    for (int i = 0; i < 8; i++)
        rec[sizeof(PARLEY__TLOG_ABSENT_PREFIX) + (size_t)i] =
            (uint8_t)(seq >> (56 - 8 * i));
    parley__tlog_leaf_hash(rec, sizeof(rec), out);
}

void
parley__tlog_empty_root(parley__tlog_hash_t *out)
{
    crypto_hash_sha256(out->b, (const uint8_t *)"", 0);
}

int
parley__tlog_hash_equal(const parley__tlog_hash_t *a, const parley__tlog_hash_t *b)
{
    return memcmp(a->b, b->b, PARLEY__TLOG_HASH_BYTES) == 0;
}

/* --- stored hashes -------------------------------------------------------- */

uint64_t
parley__tlog_stored_index(unsigned level, uint64_t k)
{
    /* The leaf that completes the subtree, then level hashes after it. */
    uint64_t last = ((k + 1) << level) - 1;
    return 2 * last - (uint64_t)__builtin_popcountll(last) + level;
}

uint64_t
parley__tlog_stored_count(uint64_t n)
{
    return 2 * n - (uint64_t)__builtin_popcountll(n);
}

uint64_t
parley__tlog_stored_leaves(uint64_t count)
{
    /* stored_count grows with n and stored_count(n) >= n: search [0, count]. */
    uint64_t lo = 0, hi = count < PARLEY__TLOG_SIZE_MAX ? count
                                                        : PARLEY__TLOG_SIZE_MAX;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (parley__tlog_stored_count(mid) <= count)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* --- compact range -------------------------------------------------------- */

void
parley__tlog_range_init(parley__tlog_range_t *r)
{
    memset(r, 0, sizeof(*r));
}

int
parley__tlog_range_append(parley__tlog_range_t *r, const parley__tlog_hash_t *leaf,
                          parley__tlog_hash_t *stored, size_t *nstored)
{
    if (r->size >= PARLEY__TLOG_SIZE_MAX)
        return PARLEY_EARG;
    parley__tlog_hash_t h = *leaf;
    size_t n = 0;
    stored[n++] = h;
    /* Each trailing one bit of the old size is a subtree of the same
     * height as the one being carried: merge them, as in binary addition. */
    for (uint64_t s = r->size; s & 1; s >>= 1) {
        r->count--;
        parley__tlog_node_hash(&r->subtree[r->count], &h, &h);
        stored[n++] = h;
    }
    r->subtree[r->count++] = h;
    r->size++;
    *nstored = n;
    return 0;
}

void
parley__tlog_range_root(const parley__tlog_range_t *r, parley__tlog_hash_t *out)
{
    if (r->count == 0) {
        parley__tlog_empty_root(out);
        return;
    }
    parley__tlog_hash_t h = r->subtree[r->count - 1];
    for (unsigned i = r->count - 1; i-- > 0;)
        parley__tlog_node_hash(&r->subtree[i], &h, &h);
    *out = h;
}

int
parley__tlog_range_load(parley__tlog_range_t *r, uint64_t size,
                        parley__tlog_read_fn read, void *ctx)
{
    if (size > PARLEY__TLOG_SIZE_MAX)
        return PARLEY_EARG;
    parley__tlog_range_init(r);
    uint64_t lo = 0;
    for (int level = 63; level >= 0; level--) {
        if (!(size >> level & 1))
            continue;
        int rc = read(ctx, parley__tlog_stored_index((unsigned)level, lo >> level),
                      &r->subtree[r->count]);
        if (rc != 0)
            return rc;
        r->count++;
        lo += (uint64_t)1 << level;
    }
    r->size = size;
    return 0;
}

/* --- node hashes from a source ------------------------------------------ */

/* The largest power of two strictly below s (s >= 2). */
static uint64_t
s_split(uint64_t s)
{
    return (uint64_t)1 << (63 - __builtin_clzll(s - 1));
}

/*
 * MTH(D[lo:hi]) for a node of the tree: the complete subtrees that tile
 * [lo, hi), largest first, folded from the right. Every node of an RFC
 * 9162 tree starts at a multiple of the largest power of two not above
 * its size, which is what makes this tiling the node's own structure.
 */
static int
s_node_hash(parley__tlog_read_fn read, void *ctx, uint64_t lo, uint64_t hi,
            parley__tlog_hash_t *out)
{
    parley__tlog_hash_t parts[64];
    unsigned n = 0;
    while (lo < hi) {
        unsigned level = 63 - (unsigned)__builtin_clzll(hi - lo);
        while (lo & (((uint64_t)1 << level) - 1))
            level--;
        int rc = read(ctx, parley__tlog_stored_index(level, lo >> level), &parts[n]);
        if (rc != 0)
            return rc;
        n++;
        lo += (uint64_t)1 << level;
    }
    parley__tlog_hash_t h = parts[n - 1];
    for (unsigned i = n - 1; i-- > 0;)
        parley__tlog_node_hash(&parts[i], &h, &h);
    *out = h;
    return 0;
}

int
parley__tlog_root(parley__tlog_read_fn read, void *ctx, uint64_t n,
                  parley__tlog_hash_t *out)
{
    if (n > PARLEY__TLOG_SIZE_MAX)
        return PARLEY_EARG;
    if (n == 0) {
        parley__tlog_empty_root(out);
        return 0;
    }
    return s_node_hash(read, ctx, 0, n, out);
}

/* --- proof plans ----------------------------------------------------------- */

typedef struct node {
    uint64_t lo, hi; /* leaves [lo, hi) */
} node_t;

/* Reverse the first n nodes: plans are found root first, proofs list the
 * node nearest the leaf first. */
static void
s_reverse(node_t *v, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        node_t t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
    }
}

/* RFC 9162 §2.1.3.1, PATH(m, D[n]): the sibling of each node from the
 * root down to leaf m. Needs m < n. */
static size_t
s_plan_inclusion(uint64_t m, uint64_t n, node_t *out)
{
    uint64_t lo = 0, hi = n;
    size_t c = 0;
    while (hi - lo > 1) {
        uint64_t k = s_split(hi - lo);
        if (m < lo + k) {
            out[c++] = (node_t){lo + k, hi};
            hi = lo + k;
        } else {
            out[c++] = (node_t){lo, lo + k};
            lo += k;
        }
    }
    s_reverse(out, c);
    return c;
}

/* RFC 9162 §2.1.4.1, PROOF(m, D[n]) = SUBPROOF(m, D[n], true). Needs
 * 0 < m < n. */
static size_t
s_plan_consistency(uint64_t m, uint64_t n, node_t *out)
{
    uint64_t lo = 0, hi = n;
    bool whole = true; /* SUBPROOF's b: still on the old tree's own root */
    size_t c = 0;
    while (m != hi - lo) {
        uint64_t k = s_split(hi - lo);
        if (m <= k) {
            out[c++] = (node_t){lo + k, hi};
            hi = lo + k;
        } else {
            out[c++] = (node_t){lo, lo + k};
            lo += k;
            m -= k;
            whole = false;
        }
    }
    if (!whole)
        out[c++] = (node_t){lo, hi};
    s_reverse(out, c);
    return c;
}

/* The plan of a proof, or -1 for a kind or pair that has none. */
static int
s_plan(uint8_t kind, uint64_t m, uint64_t n, node_t *out)
{
    switch (kind) {
    case PARLEY__TLOG_INCLUSION:
        if (m >= n)
            return -1;
        return (int)s_plan_inclusion(m, n, out);
    case PARLEY__TLOG_CONSISTENCY:
        if (m > n)
            return -1;
        if (m == 0 || m == n)
            return 0;
        return (int)s_plan_consistency(m, n, out);
    default:
        return -1;
    }
}

int
parley__tlog_proof_len(uint8_t kind, uint64_t m, uint64_t n)
{
    node_t plan[PARLEY__TLOG_PROOF_MAX];
    return s_plan(kind, m, n, plan);
}

int
parley__tlog_prove(parley__tlog_read_fn read, void *ctx, uint8_t kind,
                   uint64_t m, uint64_t n, parley__tlog_proof_t *out)
{
    node_t plan[PARLEY__TLOG_PROOF_MAX];
    if (out == NULL || read == NULL || n > PARLEY__TLOG_SIZE_MAX)
        return PARLEY_EARG;
    int c = s_plan(kind, m, n, plan);
    if (c < 0)
        return PARLEY_EARG;
    out->kind = kind;
    out->m = m;
    out->n = n;
    out->count = (size_t)c;
    for (int i = 0; i < c; i++) {
        int rc = s_node_hash(read, ctx, plan[i].lo, plan[i].hi, &out->path[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* --- verification ----------------------------------------------------------- */

static int
s_fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return PARLEY_EINVALID;
}

int
parley__tlog_verify_inclusion(const parley__tlog_hash_t *leaf, uint64_t index,
                              uint64_t size, const parley__tlog_hash_t *root,
                              const parley__tlog_hash_t *path, size_t count,
                              const char **why)
{
    if (leaf == NULL || root == NULL || (path == NULL && count > 0))
        return s_fail(why, "missing argument");
    /* 1. The leaf must be in the tree. */
    if (index >= size)
        return s_fail(why, "leaf index not below the tree size");
    /* 2., 3. */
    uint64_t fn = index, sn = size - 1;
    parley__tlog_hash_t r = *leaf;
    /* 4. */
    for (size_t i = 0; i < count; i++) {
        if (sn == 0)
            return s_fail(why, "proof longer than the path to the root");
        if ((fn & 1) || fn == sn) {
            parley__tlog_node_hash(&path[i], &r, &r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            parley__tlog_node_hash(&r, &path[i], &r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* 5. */
    if (sn != 0)
        return s_fail(why, "proof shorter than the path to the root");
    if (!parley__tlog_hash_equal(&r, root))
        return s_fail(why, "proof leads to another root");
    return 0;
}

/* --- batches of inclusion proofs ------------------------------------------ */

#define S_BATCH_SLOTS 4096 /* start; doubles at half full */

int
parley__tlog_batch_init(parley__tlog_batch_t *b, uint64_t size,
                        const parley__tlog_hash_t *root)
{
    memset(b, 0, sizeof(*b));
    b->size = size;
    b->root = *root;
    b->cap = S_BATCH_SLOTS;
    b->slots = calloc(b->cap, sizeof(*b->slots));
    return b->slots != NULL ? 0 : -ENOMEM;
}

void
parley__tlog_batch_clear(parley__tlog_batch_t *b)
{
    free(b->slots);
    memset(b, 0, sizeof(*b));
}

static size_t
s_slot(const parley__tlog_batch_t *b, uint64_t level, uint64_t index)
{
    uint64_t h = (index * 0x9E3779B97F4A7C15ull) ^ (level * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 29;
    size_t i = (size_t)h & (b->cap - 1);
    while (b->slots[i].level_plus1 != 0
           && (b->slots[i].level_plus1 != level + 1 || b->slots[i].index != index))
        i = (i + 1) & (b->cap - 1);
    return i;
}

/* Remember an authenticated node (a full table is simply not added to). */
static void
s_batch_put(parley__tlog_batch_t *b, uint64_t level, uint64_t index,
            const parley__tlog_hash_t *h)
{
    if (b->used * 2 >= b->cap) {
        struct parley__tlog_node *old = b->slots;
        size_t ocap = b->cap;
        struct parley__tlog_node *n = calloc(ocap * 2, sizeof(*n));
        if (n == NULL)
            return;
        b->slots = n;
        b->cap = ocap * 2;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].level_plus1 != 0)
                b->slots[s_slot(b, old[i].level_plus1 - 1, old[i].index)] = old[i];
        free(old);
    }
    size_t i = s_slot(b, level, index);
    if (b->slots[i].level_plus1 == 0) {
        b->slots[i] = (struct parley__tlog_node){ level + 1, index, *h };
        b->used++;
    }
}

int
parley__tlog_batch_verify(parley__tlog_batch_t *b, const parley__tlog_hash_t *leaf,
                          uint64_t index, const parley__tlog_hash_t *path, size_t count,
                          const char **why)
{
    struct {
        uint64_t level, index;
        parley__tlog_hash_t hash;
    } seen[PARLEY__TLOG_PROOF_MAX + 1];
    size_t n = 0;
    if (b == NULL || leaf == NULL || (path == NULL && count > 0) || b->slots == NULL)
        return s_fail(why, "missing argument");
    if (index >= b->size)
        return s_fail(why, "leaf index not below the tree size");
    /* RFC 9162 §2.1.3.2, with fn and sn shifted in step: at the start of
     * each step r is the node over the leaves whose index >> level is fn. */
    uint64_t fn = index, sn = b->size - 1, level = 0;
    parley__tlog_hash_t r = *leaf;
    for (size_t i = 0; i <= count; i++) {
        size_t slot = s_slot(b, level, fn);
        if (b->slots[slot].level_plus1 != 0) {
            if (!parley__tlog_hash_equal(&r, &b->slots[slot].hash))
                return s_fail(why, "proof leads to another root");
            /* Reached an authenticated node: the way there is too. */
            for (size_t k = 0; k < n; k++)
                s_batch_put(b, seen[k].level, seen[k].index, &seen[k].hash);
            return 0;
        }
        if (i == count)
            break;
        if (n < sizeof(seen) / sizeof(seen[0])) {
            seen[n].level = level;
            seen[n].index = fn;
            seen[n].hash = r;
            n++;
        }
        if (sn == 0)
            return s_fail(why, "proof longer than the path to the root");
        if ((fn & 1) || fn == sn) {
            parley__tlog_node_hash(&path[i], &r, &r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                    level++;
                }
        } else {
            parley__tlog_node_hash(&r, &path[i], &r);
        }
        fn >>= 1;
        sn >>= 1;
        level++;
    }
    if (sn != 0)
        return s_fail(why, "proof shorter than the path to the root");
    if (!parley__tlog_hash_equal(&r, &b->root))
        return s_fail(why, "proof leads to another root");
    for (size_t k = 0; k < n; k++)
        s_batch_put(b, seen[k].level, seen[k].index, &seen[k].hash);
    s_batch_put(b, level, fn, &r);
    return 0;
}

int
parley__tlog_verify_consistency(uint64_t old_size, uint64_t new_size,
                                const parley__tlog_hash_t *old_root,
                                const parley__tlog_hash_t *new_root,
                                const parley__tlog_hash_t *path, size_t count,
                                const char **why)
{
    if (old_root == NULL || new_root == NULL || (path == NULL && count > 0))
        return s_fail(why, "missing argument");
    if (old_size > new_size)
        return s_fail(why, "old tree larger than the new one");
    if (old_size == 0 || old_size == new_size) {
        /* Nothing to prove; the roots alone decide. */
        if (count != 0)
            return s_fail(why, "proof given where none is needed");
        parley__tlog_hash_t want;
        if (old_size == 0)
            parley__tlog_empty_root(&want);
        else
            want = *new_root;
        if (!parley__tlog_hash_equal(old_root, &want))
            return s_fail(why, old_size == 0 ? "old root is not the empty root"
                                             : "same size, different roots");
        return 0;
    }
    /* 1. */
    if (count == 0)
        return s_fail(why, "empty proof");
    /* 2. An old tree that is a power of two is a node of the new one: its
     * root is the proof's implicit first element. */
    const bool pow2 = (old_size & (old_size - 1)) == 0;
    size_t i = 0;
    parley__tlog_hash_t fr, sr;
    /* 3. */
    uint64_t fn = old_size - 1, sn = new_size - 1;
    /* 4. */
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    /* 5. */
    fr = sr = pow2 ? *old_root : path[i++];
    /* 6. */
    for (; i < count; i++) {
        if (sn == 0)
            return s_fail(why, "proof longer than the path to the root");
        if ((fn & 1) || fn == sn) {
            parley__tlog_node_hash(&path[i], &fr, &fr);
            parley__tlog_node_hash(&path[i], &sr, &sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            parley__tlog_node_hash(&sr, &path[i], &sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* 7. */
    if (sn != 0)
        return s_fail(why, "proof shorter than the path to the root");
    if (!parley__tlog_hash_equal(&fr, old_root))
        return s_fail(why, "proof does not lead to the old root");
    if (!parley__tlog_hash_equal(&sr, new_root))
        return s_fail(why, "proof does not lead to the new root");
    return 0;
}

int
parley__tlog_proof_check_inclusion(const parley__tlog_proof_t *p,
                                   const parley__tlog_hash_t *leaf,
                                   const parley__tlog_hash_t *root,
                                   const char **why)
{
    if (p == NULL || p->kind != PARLEY__TLOG_INCLUSION ||
        p->count > PARLEY__TLOG_PROOF_MAX) {
        if (why != NULL)
            *why = "not an inclusion proof";
        return PARLEY_EARG;
    }
    return parley__tlog_verify_inclusion(leaf, p->m, p->n, root, p->path,
                                         p->count, why);
}

int
parley__tlog_proof_check_consistency(const parley__tlog_proof_t *p,
                                     const parley__tlog_hash_t *old_root,
                                     const parley__tlog_hash_t *new_root,
                                     const char **why)
{
    if (p == NULL || p->kind != PARLEY__TLOG_CONSISTENCY ||
        p->count > PARLEY__TLOG_PROOF_MAX) {
        if (why != NULL)
            *why = "not a consistency proof";
        return PARLEY_EARG;
    }
    return parley__tlog_verify_consistency(p->m, p->n, old_root, new_root,
                                           p->path, p->count, why);
}

/* --- encoding --------------------------------------------------------------- */

static void
s_put64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t
s_get64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int
parley__tlog_proof_encode(const parley__tlog_proof_t *p, void *buf, size_t cap,
                          size_t *len)
{
    if (p == NULL || (buf == NULL && cap > 0) || p->count > PARLEY__TLOG_PROOF_MAX ||
        (p->kind != PARLEY__TLOG_INCLUSION && p->kind != PARLEY__TLOG_CONSISTENCY))
        return PARLEY_EARG;
    size_t need = PARLEY__TLOG_PROOF_HEADER + p->count * PARLEY__TLOG_HASH_BYTES;
    if (len != NULL)
        *len = need;
    if (need > cap)
        return -ENOBUFS;
    uint8_t *o = buf;
    o[0] = p->kind;
    s_put64be(o + 1, p->m);
    s_put64be(o + 9, p->n);
    o[17] = (uint8_t)p->count;
    for (size_t i = 0; i < p->count; i++)
        memcpy(o + PARLEY__TLOG_PROOF_HEADER + i * PARLEY__TLOG_HASH_BYTES,
               p->path[i].b, PARLEY__TLOG_HASH_BYTES);
    return 0;
}

static int
s_malformed(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return PARLEY_EMALFORMED;
}

int
parley__tlog_proof_decode(const void *buf, size_t len, parley__tlog_proof_t *out,
                          const char **why)
{
    if (out == NULL || (buf == NULL && len > 0))
        return s_malformed(why, "missing argument");
    const uint8_t *p = buf;
    if (len < PARLEY__TLOG_PROOF_HEADER)
        return s_malformed(why, "shorter than the proof header");
    uint8_t kind = p[0];
    if (kind != PARLEY__TLOG_INCLUSION && kind != PARLEY__TLOG_CONSISTENCY)
        return s_malformed(why, "unknown proof kind");
    uint64_t m = s_get64be(p + 1), n = s_get64be(p + 9);
    size_t count = p[17];
    if (count > PARLEY__TLOG_PROOF_MAX)
        return s_malformed(why, "more hashes than any proof has");
    if (len - PARLEY__TLOG_PROOF_HEADER != count * PARLEY__TLOG_HASH_BYTES)
        return s_malformed(why, "length does not match the hash count");
    int want = parley__tlog_proof_len(kind, m, n);
    if (want < 0)
        return s_malformed(why, kind == PARLEY__TLOG_INCLUSION
                                    ? "leaf index not below the tree size"
                                    : "old size above the new size");
    if ((size_t)want != count)
        return s_malformed(why, "hash count is not the one the sizes call for");
    out->kind = kind;
    out->m = m;
    out->n = n;
    out->count = count;
    for (size_t i = 0; i < count; i++)
        memcpy(out->path[i].b,
               p + PARLEY__TLOG_PROOF_HEADER + i * PARLEY__TLOG_HASH_BYTES,
               PARLEY__TLOG_HASH_BYTES);
    return 0;
}

/* --- memory hash store ---------------------------------------------------- */

void
parley__tlog_mem_init(parley__tlog_mem_t *m)
{
    memset(m, 0, sizeof(*m));
    parley__tlog_range_init(&m->range);
}

void
parley__tlog_mem_clear(parley__tlog_mem_t *m)
{
    free(m->hashes);
    parley__tlog_mem_init(m);
}

int
parley__tlog_mem_append_hash(parley__tlog_mem_t *m, const parley__tlog_hash_t *leaf)
{
    if (m->cap - m->len < 64) {
        uint64_t cap = m->cap ? m->cap * 2 : 1024;
        if (cap > SIZE_MAX / sizeof(*m->hashes))
            return -ENOMEM;
        parley__tlog_hash_t *p = realloc(m->hashes, (size_t)cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        m->hashes = p;
        m->cap = cap;
    }
    size_t n;
    int rc = parley__tlog_range_append(&m->range, leaf, m->hashes + m->len, &n);
    if (rc != 0)
        return rc;
    m->len += n;
    return 0;
}

int
parley__tlog_mem_append(parley__tlog_mem_t *m, const void *data, size_t len)
{
    parley__tlog_hash_t h;
    parley__tlog_leaf_hash(data, len, &h);
    return parley__tlog_mem_append_hash(m, &h);
}

int
parley__tlog_mem_read(void *ctx, uint64_t index, parley__tlog_hash_t *out)
{
    const parley__tlog_mem_t *m = ctx;
    if (index >= m->len)
        return -ENOENT;
    *out = m->hashes[index];
    return 0;
}
