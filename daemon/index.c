/*
 * index.c - one open-addressing hash table, and the indexes parleyd keeps
 * with it (signers with their dedupe pairs, latest state), and the reader
 * that pulls what they need out of a logged record at start.
 *
 * Start-up rebuilds everything from the log, a million records in about a
 * second or less, so the per-record path is kept lean: records in the
 * canonical form are read in place (no protobuf-c, no parley_update_t),
 * a run of records by one signer costs one 32-byte comparison instead of
 * a hash lookup, dedupe is an append to the signer's array, and the only
 * hashing left is of the latest-state keys, with SipHash-1-3.
 */
#include "index.h"

#include "codec.h"
#include "log.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================ hash table */

struct pd_hash {
    size_t keylen;      /* bytes per key */
    size_t cap;         /* slots, a power of two (0 before the first insert) */
    size_t count;       /* slots in use */
    uint8_t *used;      /* cap flags: 1 if the slot holds an entry */
    uint64_t *hashes;   /* cap hashes of the keys, so moves need no rehash */
    uint8_t *keys;      /* cap * keylen bytes */
    uint64_t *vals;     /* cap values */
    uint8_t sipkey[16]; /* random per table */
};

/* Grow past 70% full: linear probing stays short below that. */
#define S_LOAD_NUM 7
#define S_LOAD_DEN 10
#define S_MIN_CAP 16

static inline uint64_t
s_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint64_t
s_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define S_SIPROUND                                                           \
    do {                                                                     \
        v0 += v1;                                                            \
        v1 = s_rotl(v1, 13);                                                 \
        v1 ^= v0;                                                            \
        v0 = s_rotl(v0, 32);                                                 \
        v2 += v3;                                                            \
        v3 = s_rotl(v3, 16);                                                 \
        v3 ^= v2;                                                            \
        v0 += v3;                                                            \
        v3 = s_rotl(v3, 21);                                                 \
        v3 ^= v0;                                                            \
        v2 += v1;                                                            \
        v1 = s_rotl(v1, 17);                                                 \
        v1 ^= v2;                                                            \
        v2 = s_rotl(v2, 32);                                                 \
    } while (0)

/*
 * SipHash (Aumasson and Bernstein) as specified: a keyed hash whose
 * outputs an attacker cannot predict without the key, so keys chosen by
 * publishers cannot be made to collide. Fed a word at a time, so that a
 * latest-state key can be hashed straight from the slugs where they lie
 * without first being copied into one buffer (reading freshly written
 * bytes back as words stalls the CPU for longer than the hashing takes).
 * Inlined with constant rounds.
 */
typedef struct s_sip {
    uint64_t v0, v1, v2, v3;
    size_t total; /* bytes fed as whole words */
    int crounds;  /* compression rounds per word */
} s_sip_t;

static inline void
s_sip_init(s_sip_t *s, const uint8_t key[16], int crounds)
{
    const uint64_t k0 = s_le64(key), k1 = s_le64(key + 8);
    s->v0 = k0 ^ 0x736f6d6570736575ull;
    s->v1 = k1 ^ 0x646f72616e646f6dull;
    s->v2 = k0 ^ 0x6c7967656e657261ull;
    s->v3 = k1 ^ 0x7465646279746573ull;
    s->total = 0;
    s->crounds = crounds;
}

/* One compression of the word m (little endian). */
static inline void
s_sip_mix(s_sip_t *s, uint64_t m)
{
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2, v3 = s->v3;
    v3 ^= m;
    for (int r = 0; r < s->crounds; r++)
        S_SIPROUND;
    v0 ^= m;
    s->v0 = v0;
    s->v1 = v1;
    s->v2 = v2;
    s->v3 = v3;
}

static inline void
s_sip_word(s_sip_t *s, uint64_t m)
{
    s_sip_mix(s, m);
    s->total += 8;
}

/* The hash of the words fed and then tail_len (0..7) bytes in tail. */
static inline uint64_t
s_sip_final(s_sip_t *s, uint64_t tail, size_t tail_len, int drounds)
{
    s_sip_mix(s, (uint64_t)(s->total + tail_len) << 56 | tail);
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2 ^ 0xff, v3 = s->v3;
    for (int r = 0; r < drounds; r++)
        S_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint64_t
s_siphash(const uint8_t key[16], const uint8_t *p, size_t len, int crounds,
          int drounds)
{
    s_sip_t s;
    s_sip_init(&s, key, crounds);
    const uint8_t *end = p + (len & ~(size_t)7);
    for (; p != end; p += 8)
        s_sip_word(&s, s_le64(p));
    uint64_t tail = 0;
    for (size_t i = 0; i < (len & 7); i++)
        tail |= (uint64_t)p[i] << (8 * i);
    return s_sip_final(&s, tail, len & 7, drounds);
}

uint64_t
pd_hash_siphash(const uint8_t key[16], const void *p, size_t len, int crounds,
                int drounds)
{
    return s_siphash(key, p, len, crounds, drounds);
}

/*
 * SipHash-1-3: the variant hash tables use (Rust's, Python's) where the
 * output never leaves the process; half the rounds of SipHash-2-4.
 */
static inline uint64_t
s_hash(const pd_hash_t *h, const void *key)
{
    return s_siphash(h->sipkey, key, h->keylen, 1, 3);
}

pd_hash_t *
pd_hash_new(size_t keylen)
{
    if (keylen == 0 || keylen > 255) {
        errno = EINVAL;
        return NULL;
    }
    if (sodium_init() < 0) {
        errno = EIO;
        return NULL;
    }
    pd_hash_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->keylen = keylen;
    randombytes_buf(h->sipkey, sizeof(h->sipkey));
    return h;
}

void
pd_hash_destroy(pd_hash_t **hp)
{
    if (hp == NULL || *hp == NULL)
        return;
    pd_hash_t *h = *hp;
    free(h->used);
    free(h->hashes);
    free(h->keys);
    free(h->vals);
    free(h);
    *hp = NULL;
}

/* Slot holding key, or the empty slot where it would go. */
static size_t
s_probe(const pd_hash_t *h, const void *key, uint64_t hash)
{
    size_t mask = h->cap - 1;
    size_t i = (size_t)hash & mask;
    while (h->used[i]
           && (h->hashes[i] != hash
               || memcmp(h->keys + i * h->keylen, key, h->keylen) != 0))
        i = (i + 1) & mask;
    return i;
}

/* Rehash every entry into a table of newcap slots. 0 or -ENOMEM. */
static int
s_resize(pd_hash_t *h, size_t newcap)
{
    pd_hash_t n = *h;
    n.cap = newcap;
    n.used = calloc(newcap, 1);
    n.hashes = malloc(newcap * sizeof(uint64_t));
    n.keys = malloc(newcap * h->keylen);
    n.vals = malloc(newcap * sizeof(uint64_t));
    if (n.used == NULL || n.hashes == NULL || n.keys == NULL
        || n.vals == NULL) {
        free(n.used);
        free(n.hashes);
        free(n.keys);
        free(n.vals);
        return -ENOMEM;
    }
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->used[i])
            continue;
        size_t j = s_probe(&n, h->keys + i * h->keylen, h->hashes[i]);
        n.used[j] = 1;
        n.hashes[j] = h->hashes[i];
        memcpy(n.keys + j * h->keylen, h->keys + i * h->keylen, h->keylen);
        n.vals[j] = h->vals[i];
    }
    free(h->used);
    free(h->hashes);
    free(h->keys);
    free(h->vals);
    *h = n;
    return 0;
}

int
pd_hash_reserve(pd_hash_t *h, size_t n)
{
    if (n > SIZE_MAX / S_LOAD_DEN - h->count)
        return -ENOMEM;
    size_t need = h->count + n;
    size_t cap = h->cap > 0 ? h->cap : S_MIN_CAP;
    while (need * S_LOAD_DEN > cap * S_LOAD_NUM) {
        if (cap > SIZE_MAX / 2 / h->keylen)
            return -ENOMEM;
        cap *= 2;
    }
    return cap != h->cap ? s_resize(h, cap) : 0;
}

bool
pd_hash_get(const pd_hash_t *h, const void *key, uint64_t *val)
{
    if (h->count == 0)
        return false;
    size_t i = s_probe(h, key, s_hash(h, key));
    if (!h->used[i])
        return false;
    if (val != NULL)
        *val = h->vals[i];
    return true;
}

int
pd_hash_put(pd_hash_t *h, const void *key, uint64_t val)
{
    uint64_t hash = s_hash(h, key);
    if (h->cap > 0) {
        size_t i = s_probe(h, key, hash);
        if (h->used[i]) {
            h->vals[i] = val;
            return 0;
        }
    }
    int rc = pd_hash_reserve(h, 1);
    if (rc < 0)
        return rc;
    size_t i = s_probe(h, key, hash);
    h->used[i] = 1;
    h->hashes[i] = hash;
    memcpy(h->keys + i * h->keylen, key, h->keylen);
    h->vals[i] = val;
    h->count++;
    return 0;
}

/*
 * Empty slot i and pull later entries of its probe run back into the hole,
 * so that every entry stays reachable from its home slot without
 * tombstones. An entry at j may fill the hole at i unless its home slot
 * lies cyclically in (i, j].
 */
static void
s_remove_at(pd_hash_t *h, size_t i)
{
    size_t mask = h->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!h->used[j])
            break;
        size_t home = (size_t)h->hashes[j] & mask;
        if (((j - home) & mask) < ((j - i) & mask))
            continue;
        h->hashes[i] = h->hashes[j];
        memcpy(h->keys + i * h->keylen, h->keys + j * h->keylen, h->keylen);
        h->vals[i] = h->vals[j];
        i = j;
    }
    h->used[i] = 0;
    h->count--;
}

bool
pd_hash_del(pd_hash_t *h, const void *key)
{
    if (h->count == 0)
        return false;
    size_t i = s_probe(h, key, s_hash(h, key));
    if (!h->used[i])
        return false;
    s_remove_at(h, i);
    return true;
}

size_t
pd_hash_count(const pd_hash_t *h)
{
    return h->count;
}

size_t
pd_hash_remove_if(pd_hash_t *h, pd_hash_pred_fn pred, void *ctx)
{
    size_t removed = 0;
    /*
     * Removing at i may shift a later entry (not yet looked at) into i, so
     * i is looked at again before moving on. Entries shifted across the
     * wrap-around come from slots already looked at, and looking at them
     * twice is harmless.
     */
    for (size_t i = 0; i < h->cap;) {
        if (h->used[i] && pred(h->vals[i], ctx)) {
            s_remove_at(h, i);
            removed++;
        } else {
            i++;
        }
    }
    return removed;
}

void
pd_hash_foreach(const pd_hash_t *h,
                void (*fn)(const void *key, uint64_t val, void *ctx),
                void *ctx)
{
    for (size_t i = 0; i < h->cap; i++)
        if (h->used[i])
            fn(h->keys + i * h->keylen, h->vals[i], ctx);
}

/* =============================================================== indexes */

/* latest-state key: negotiation, NUL-padded; party, NUL-padded; phase. */
#define S_SLOT (PARLEY_SLUG_MAX + 1)
#define S_LATEST_KEY (2 * S_SLOT + 4)

/* Arena for decoding one logged record the slow way during the scan. */
#define S_SCRATCH (64 * 1024)

/* Pairs a signer's array starts with. */
#define S_PAIRS_MIN 16

/* One logged update of a signer, for dedupe. */
typedef struct s_pair {
    uint64_t signer_seq;
    uint64_t seq;
} s_pair_t;

typedef struct s_signer {
    uint8_t key[PARLEY_PUBLICKEY_BYTES]; /* its public key */
    bool accepted;    /* an update was added (else only reserved) */
    uint64_t last;    /* highest signer_seq added */
    s_pair_t *pairs;  /* its updates still in the log, ascending signer_seq */
    size_t n;         /* pairs in use */
    size_t cap;       /* pairs allocated */
} s_signer_t;

struct pd_index {
    pd_hash_t *signer_ids; /* public key -> slot in signers[] */
    s_signer_t *signers;   /* every signer seen or reserved */
    size_t n_signers;      /* slots in use */
    size_t signers_cap;    /* slots allocated */
    size_t accepted;       /* signers with an update */
    size_t pairs;          /* pairs held over all signers */
    size_t recent;         /* slot of the signer last reserved, + 1; 0 none */
    pd_hash_t *latest;     /* S_LATEST_KEY -> seq; see s_latest_put() */
    uint8_t *scratch;      /* S_SCRATCH bytes for the slow decode's arena */
    parley_update_t scan_update; /* slow decode of a record during the scan */
    uint64_t scanned;      /* records added by the scan */
    uint64_t skipped;      /* records the scan could not decode */
};

pd_index_t *
pd_index_new(void)
{
    errno = 0;
    pd_index_t *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return NULL;
    idx->signer_ids = pd_hash_new(PARLEY_PUBLICKEY_BYTES);
    idx->latest = pd_hash_new(S_LATEST_KEY);
    idx->scratch = malloc(S_SCRATCH);
    if (idx->signer_ids == NULL || idx->latest == NULL
        || idx->scratch == NULL) {
        int saved = errno != 0 ? errno : ENOMEM;
        pd_index_destroy(&idx);
        errno = saved;
        return NULL;
    }
    return idx;
}

void
pd_index_destroy(pd_index_t **idxp)
{
    if (idxp == NULL || *idxp == NULL)
        return;
    pd_index_t *idx = *idxp;
    pd_hash_destroy(&idx->signer_ids);
    for (size_t i = 0; i < idx->n_signers; i++)
        free(idx->signers[i].pairs);
    free(idx->signers);
    pd_hash_destroy(&idx->latest);
    free(idx->scratch);
    free(idx);
    *idxp = NULL;
}

/*
 * Slot of signer, or SIZE_MAX. Updates from one signer tend to come in
 * runs (in the log and on the wire), so the last signer reserved is
 * checked first and a hash lookup is only needed when the signer changes.
 */
static size_t
s_signer_find(const pd_index_t *idx,
              const uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    if (idx->recent != 0
        && memcmp(idx->signers[idx->recent - 1].key, signer,
                  PARLEY_PUBLICKEY_BYTES) == 0)
        return idx->recent - 1;
    uint64_t slot;
    return pd_hash_get(idx->signer_ids, signer, &slot) ? (size_t)slot
                                                       : SIZE_MAX;
}

/*
 * Find or make signer's slot, with room for one more pair, so that adding
 * an update for it cannot fail. *slot is set on success.
 *
 * Returns:   0 or -ENOMEM.
 */
static int
s_signer_reserve(pd_index_t *idx, const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                 size_t *slot)
{
    size_t i = s_signer_find(idx, signer);
    if (i == SIZE_MAX) {
        if (idx->n_signers == idx->signers_cap) {
            size_t cap = idx->signers_cap ? idx->signers_cap * 2 : 8;
            s_signer_t *p = realloc(idx->signers, cap * sizeof(*p));
            if (p == NULL)
                return -ENOMEM;
            idx->signers = p;
            idx->signers_cap = cap;
        }
        if (pd_hash_reserve(idx->signer_ids, 1) < 0)
            return -ENOMEM;
        i = idx->n_signers++;
        s_signer_t *s = &idx->signers[i];
        memset(s, 0, sizeof(*s));
        memcpy(s->key, signer, PARLEY_PUBLICKEY_BYTES);
        (void)pd_hash_put(idx->signer_ids, signer, i); /* room reserved */
    }
    s_signer_t *s = &idx->signers[i];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : S_PAIRS_MIN;
        if (cap > SIZE_MAX / sizeof(s_pair_t))
            return -ENOMEM;
        s_pair_t *p = realloc(s->pairs, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        s->pairs = p;
        s->cap = cap;
    }
    idx->recent = i + 1;
    *slot = i;
    return 0;
}

int
pd_index_reserve(pd_index_t *idx, const uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    size_t slot;
    int rc = s_signer_reserve(idx, signer, &slot);
    if (rc == 0)
        rc = pd_hash_reserve(idx->latest, PARLEY_PARTIES_MAX);
    return rc;
}

/* Index of the first pair whose signer_seq is >= signer_seq. */
static size_t
s_pair_search(const s_signer_t *s, uint64_t signer_seq)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->pairs[mid].signer_seq < signer_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Remember (signer_seq, seq) for dedupe and raise the signer's last seq.
 * The daemon accepts only rising signer_seqs, so this is an append; a log
 * holding a lower one (written by an older run) is handled by an insert.
 * There is room for one pair (s_signer_reserve()).
 */
static void
s_signer_add(pd_index_t *idx, s_signer_t *s, uint64_t signer_seq,
             uint64_t seq)
{
    if (!s->accepted) {
        s->accepted = true;
        idx->accepted++;
    } else if (signer_seq <= s->last) {
        size_t at = s_pair_search(s, signer_seq);
        if (at < s->n && s->pairs[at].signer_seq == signer_seq) {
            s->pairs[at].seq = seq;
            return;
        }
        memmove(&s->pairs[at + 1], &s->pairs[at],
                (s->n - at) * sizeof(s_pair_t));
        s->pairs[at] = (s_pair_t){ signer_seq, seq };
        s->n++;
        idx->pairs++;
        return;
    }
    s->last = signer_seq;
    s->pairs[s->n++] = (s_pair_t){ signer_seq, seq };
    idx->pairs++;
}

static inline uint32_t
s_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

/* The n (1..7) bytes at p as a little-endian word, zero above them,
 * reading no byte outside p[0..n). */
static inline uint64_t
s_tail_word(const uint8_t *p, size_t n)
{
    if (n >= 4)
        return s_le32(p) | (uint64_t)s_le32(p + n - 4) << (8 * (n - 4));
    return p[0] | (uint64_t)p[n / 2] << (8 * (n / 2))
           | (uint64_t)p[n - 1] << (8 * (n - 1));
}

/* Feed a slug as whole words, the last one zero-filled. */
static inline void
s_sip_slug(s_sip_t *s, const char *slug, size_t n)
{
    const uint8_t *p = (const uint8_t *)slug;
    for (; n >= 8; p += 8, n -= 8)
        s_sip_word(s, s_le64(p));
    if (n > 0)
        s_sip_word(s, s_tail_word(p, n));
}

/*
 * The latest-state table holds keys of S_LATEST_KEY bytes: negotiation,
 * party (each NUL-padded to S_SLOT) and phase (4 bytes, little endian).
 * Its hash is SipHash-1-3 of the negotiation's words, the party's words
 * (each zero-filled to a whole word) and one word holding both lengths
 * and the phase, which names the key as uniquely. It is fed from the
 * slugs in place; lookups compare the stored key with the slugs in place
 * too, and a key is only written out when it is new.
 *
 * So this table is keyed differently from the generic pd_hash_get(),
 * pd_hash_put() and pd_hash_del(), which must never be used on it: they
 * would hash the stored key bytes and miss. Only the slot-level walks
 * (pd_hash_reserve, pd_hash_remove_if, pd_hash_foreach, pd_hash_count)
 * and s_latest_put() touch it.
 */

/* Whether the stored key k is (negotiation, party, phase). */
static inline bool
s_latest_eq(const uint8_t *k, const char *neg, size_t neg_len,
            const char *party, size_t party_len, const uint8_t phase[4])
{
    return memcmp(k, neg, neg_len) == 0 && k[neg_len] == 0
           && memcmp(k + S_SLOT, party, party_len) == 0
           && k[S_SLOT + party_len] == 0
           && memcmp(k + 2 * S_SLOT, phase, 4) == 0;
}

/*
 * Set the state of (f's negotiation, party i, f's phase) to seq. neg is
 * the hash state after the negotiation's words. There must be room for a
 * new key (pd_hash_reserve()).
 */
static void
s_latest_put(pd_hash_t *h, const s_sip_t *neg, const pd_index_facts_t *f,
             size_t i, const uint8_t phase[4], uint64_t seq)
{
    const char *party = f->parties[i];
    size_t party_len = f->party_lens[i];
    s_sip_t st = *neg;
    s_sip_slug(&st, party, party_len);
    s_sip_word(&st, (uint64_t)f->negotiation_len | (uint64_t)party_len << 8
                        | (uint64_t)f->phase << 16);
    uint64_t hash = s_sip_final(&st, 0, 0, 3);
    size_t mask = h->cap - 1;
    size_t at = (size_t)hash & mask;
    for (; h->used[at]; at = (at + 1) & mask) {
        if (h->hashes[at] == hash
            && s_latest_eq(h->keys + at * S_LATEST_KEY, f->negotiation,
                           f->negotiation_len, party, party_len, phase)) {
            h->vals[at] = seq;
            return;
        }
    }
    uint8_t *k = h->keys + at * S_LATEST_KEY;
    memset(k, 0, S_LATEST_KEY);
    memcpy(k, f->negotiation, f->negotiation_len);
    memcpy(k + S_SLOT, party, party_len);
    memcpy(k + 2 * S_SLOT, phase, 4);
    h->used[at] = 1;
    h->hashes[at] = hash;
    h->vals[at] = seq;
    h->count++;
}

static bool
s_is_referenced(uint64_t val, void *ctx)
{
    const pd_index_facts_t *f = ctx;
    for (size_t i = 0; i < f->n_references; i++)
        if (f->references[i] == val)
            return true;
    return false;
}

/*
 * Apply one update to the latest state.
 *
 * update      sets each of its keys to seq.
 * correction  removes the keys whose state is one of the referenced seqs,
 *             then sets its own keys (which may differ from theirs).
 * retraction  removes the keys whose state is one of the referenced seqs.
 *             What the retracted update had replaced is NOT restored: the
 *             index keeps no history, so such a key has no state until the
 *             next update for it.
 *
 * Removing by value scans the table; corrections are rare and the table
 * holds one entry per (negotiation, party, phase), so that stays cheap.
 */
static void
s_apply_latest(pd_index_t *idx, uint64_t seq, const pd_index_facts_t *f)
{
    if (f->kind == PARLEY_KIND_CORRECTION || f->kind == PARLEY_KIND_RETRACTION)
        pd_hash_remove_if(idx->latest, s_is_referenced, (void *)f);
    if (f->kind == PARLEY_KIND_RETRACTION)
        return;
    if (f->n_parties == 0)
        return;
    const uint8_t phase[4] = { (uint8_t)f->phase, (uint8_t)(f->phase >> 8),
                               (uint8_t)(f->phase >> 16),
                               (uint8_t)(f->phase >> 24) };
    s_sip_t neg;
    s_sip_init(&neg, idx->latest->sipkey, 1);
    s_sip_slug(&neg, f->negotiation, f->negotiation_len);
    /* Room for every party was reserved before. */
    for (size_t i = 0; i < f->n_parties; i++)
        s_latest_put(idx->latest, &neg, f, i, phase, seq);
}

/* Add one update whose signer has a reserved slot. */
static void
s_add(pd_index_t *idx, uint64_t seq, size_t slot, const pd_index_facts_t *f)
{
    s_signer_add(idx, &idx->signers[slot], f->signer_seq, seq);
    s_apply_latest(idx, seq, f);
}

/* The facts of a decoded update (pointers into u). */
static void
s_facts_of(pd_index_facts_t *f, const uint8_t *signer,
           const parley_update_t *u)
{
    f->signer = signer;
    f->signer_seq = u->signer_seq;
    f->negotiation = u->negotiation;
    f->negotiation_len = strnlen(u->negotiation, PARLEY_SLUG_MAX);
    f->n_parties = u->n_parties < PARLEY_PARTIES_MAX ? u->n_parties
                                                     : PARLEY_PARTIES_MAX;
    for (size_t i = 0; i < f->n_parties; i++) {
        f->parties[i] = u->parties[i];
        f->party_lens[i] = strnlen(u->parties[i], PARLEY_SLUG_MAX);
    }
    f->phase = u->phase;
    f->kind = u->kind;
    f->n_references = u->n_references < PARLEY_REFERENCES_MAX
                          ? u->n_references
                          : PARLEY_REFERENCES_MAX;
    memcpy(f->references, u->references,
           f->n_references * sizeof(f->references[0]));
}

void
pd_index_add(pd_index_t *idx, uint64_t seq,
             const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
             const parley_update_t *u)
{
    pd_index_facts_t f;
    size_t slot;
    /* Finds the slot pd_index_reserve() made; allocates nothing then. */
    if (s_signer_reserve(idx, signer, &slot) < 0)
        return;
    s_facts_of(&f, signer, u);
    s_add(idx, seq, slot, &f);
}

/* ---------------------------------------------- reading records in place */

/*
 * A varint as protobuf-c writes it: at most 10 bytes, no bits beyond 64,
 * no padding (a multi-byte varint never ends in a zero byte). false for
 * anything else, or if it runs past end.
 */
static inline bool
s_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p == end)
            return false;
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            if (b == 0 && shift > 0)
                return false;
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

/* A length-delimited field's bytes; false unless they fit before end. */
static inline bool
s_delimited(const uint8_t **pp, const uint8_t *end, const uint8_t **data,
            size_t *len)
{
    uint64_t n;
    if (!s_varint(pp, end, &n) || n > (uint64_t)(end - *pp))
        return false;
    *data = *pp;
    *len = (size_t)n;
    *pp += n;
    return true;
}

/* A slug as parley__update_decode() takes it: min to PARLEY_SLUG_MAX
 * bytes, no NUL. */
static inline bool
s_slug_ok(const uint8_t *p, size_t len, size_t min)
{
    return len >= min && len <= PARLEY_SLUG_MAX && memchr(p, 0, len) == NULL;
}

/*
 * The StatusUpdate body, in exactly the bytes protobuf-c packs for it
 * (which is what parley__update_decode() checks by re-packing): fields in
 * ascending number, each once except the repeated parties; no field with
 * the zero value (proto3 leaves those out), varints unpadded, references
 * packed. The limits are parley__update_decode()'s. Enum values outside
 * the known ones are left to the full decoder.
 */
static int
s_read_body(const uint8_t *p, size_t len, pd_index_facts_t *f)
{
    const uint8_t *end = p + len;
    const uint8_t *text = NULL, *text_end = NULL; /* span of fields 7-9 */
    unsigned last = 0;
    f->negotiation = "";
    f->negotiation_len = 0;
    f->n_parties = 0;
    f->phase = 0;
    f->kind = PARLEY_KIND_UPDATE;
    f->n_references = 0;
    f->signer_seq = 0;
    if (len > PARLEY_ENVELOPE_MAX)
        return 1;
    while (p < end) {
        uint8_t tag = *p++;
        unsigned field = tag >> 3;
        if (tag >= 0x80 || field < last || (field == last && field != 2))
            return 1;
        last = field;
        const uint8_t *d;
        size_t n;
        uint64_t v;
        switch (tag) {
        case (1 << 3) | 2: /* negotiation */
            if (!s_delimited(&p, end, &d, &n)
                || !s_slug_ok(d, n, 1))
                return 1;
            f->negotiation = (const char *)d;
            f->negotiation_len = n;
            break;
        case (2 << 3) | 2: /* parties: an empty one is written too */
            if (!s_delimited(&p, end, &d, &n)
                || !s_slug_ok(d, n, 0)
                || f->n_parties == PARLEY_PARTIES_MAX)
                return 1;
            f->parties[f->n_parties] = (const char *)d;
            f->party_lens[f->n_parties++] = n;
            break;
        case (3 << 3) | 0: /* phase, uint32 */
            if (!s_varint(&p, end, &v) || v == 0 || v > UINT32_MAX)
                return 1;
            f->phase = (uint32_t)v;
            break;
        case (4 << 3) | 0: /* status */
            if (!s_varint(&p, end, &v) || v == 0
                || v > PARLEY_STATUS_COLLAPSED)
                return 1;
            break;
        case (5 << 3) | 0: /* kind */
            if (!s_varint(&p, end, &v) || v == 0
                || v > PARLEY_KIND_RETRACTION)
                return 1;
            f->kind = (parley_kind_t)v;
            break;
        case (6 << 3) | 2: { /* references, packed */
            if (!s_delimited(&p, end, &d, &n) || n == 0)
                return 1;
            const uint8_t *q = d, *qend = d + n;
            while (q < qend) {
                if (f->n_references == PARLEY_REFERENCES_MAX
                    || !s_varint(&q, qend, &v))
                    return 1;
                f->references[f->n_references++] = v;
            }
            break;
        }
        case (7 << 3) | 2: /* headline */
        case (8 << 3) | 2: /* body */
        case (9 << 3) | 2: /* location */
            if (!s_delimited(&p, end, &d, &n) || n == 0
                || n > (tag == ((8 << 3) | 2) ? PARLEY_BODY_MAX
                        : tag == ((7 << 3) | 2) ? PARLEY_HEADLINE_MAX
                                                : PARLEY_LOCATION_MAX))
                return 1;
            /* Checked for NUL together below. */
            if (text == NULL)
                text = d;
            text_end = d + n;
            break;
        case (10 << 3) | 0: /* scheduled_at */
        case (11 << 3) | 0: /* issued_at */
        case (13 << 3) | 0: /* expires_at */
            if (!s_varint(&p, end, &v) || v == 0)
                return 1;
            break;
        case (12 << 3) | 0: /* signer_seq */
            if (!s_varint(&p, end, &v) || v == 0)
                return 1;
            f->signer_seq = v;
            break;
        default: /* unknown field, or a known one with the wrong type */
            return 1;
        }
    }
    /*
     * Fields 7 to 9 follow each other, so from the first of them to the
     * end of the last there are only their texts, tags and lengths; tags
     * are not zero, and neither is any byte of an unpadded varint over 0.
     * A zero byte there is a NUL in a text.
     */
    if (text != NULL && memchr(text, 0, (size_t)(text_end - text)) != NULL)
        return 1;
    return 0;
}

int
pd_index_facts_read(const uint8_t *env, size_t len, pd_index_facts_t *out)
{
    /* SignedUpdate as parley_sign() writes it: body, signer, signature. */
    const uint8_t *p = env, *end = env + len;
    const uint8_t *body;
    size_t body_len;
    if (len == 0 || *p++ != ((1 << 3) | 2)
        || !s_delimited(&p, end, &body, &body_len) || body_len == 0)
        return 1;
    if ((size_t)(end - p) != 2 + PARLEY_PUBLICKEY_BYTES + 2
                                 + PARLEY_SIGNATURE_BYTES
        || p[0] != ((2 << 3) | 2) || p[1] != PARLEY_PUBLICKEY_BYTES
        || p[2 + PARLEY_PUBLICKEY_BYTES] != ((3 << 3) | 2)
        || p[3 + PARLEY_PUBLICKEY_BYTES] != PARLEY_SIGNATURE_BYTES)
        return 1;
    out->signer = p + 2;
    return s_read_body(body, body_len, out);
}

int
pd_index_scan(void *ctx, uint64_t seq, int64_t received_at,
              const uint8_t *payload, size_t len)
{
    pd_index_t *idx = ctx;
    pd_index_facts_t f;
    parley__envelope_t env;
    size_t slot;
    int rc = 0;
    (void)received_at;
    if (pd_index_facts_read(payload, len, &f) != 0) {
        /* Not the usual layout: let the full decoders judge it. */
        parley__arena_t arena;
        parley__arena_init(&arena, idx->scratch, S_SCRATCH);
        rc = parley__envelope_decode(payload, len, &env, &arena);
        if (rc == 0)
            rc = parley__update_decode(env.body.data, env.body.len,
                                       &idx->scan_update, &arena);
        parley__arena_reset(&arena);
        if (rc == 0)
            s_facts_of(&f, env.signer, &idx->scan_update);
    }
    if (rc < 0) {
        /* Only verified updates are logged, so this is a record from an
         * incompatible version; serve the rest rather than refuse to start. */
        idx->skipped++;
        pd_log_limited(1, PD_LOG_WARN,
                       "log record seq %llu does not decode (%s); not indexed",
                       (unsigned long long)seq, parley_error_name(rc));
        return 0;
    }
    if ((rc = s_signer_reserve(idx, f.signer, &slot)) < 0
        || (rc = pd_hash_reserve(idx->latest, f.n_parties)) < 0)
        return rc;
    s_add(idx, seq, slot, &f);
    idx->scanned++;
    return 0;
}

bool
pd_index_signer_last(const pd_index_t *idx,
                     const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                     uint64_t *last)
{
    size_t i = s_signer_find(idx, signer);
    if (i == SIZE_MAX || !idx->signers[i].accepted)
        return false;
    if (last != NULL)
        *last = idx->signers[i].last;
    return true;
}

uint64_t
pd_index_dedupe_lookup(const pd_index_t *idx,
                       const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                       uint64_t signer_seq)
{
    size_t i = s_signer_find(idx, signer);
    if (i == SIZE_MAX)
        return 0;
    const s_signer_t *s = &idx->signers[i];
    size_t at = s_pair_search(s, signer_seq);
    return at < s->n && s->pairs[at].signer_seq == signer_seq
               ? s->pairs[at].seq
               : 0;
}

typedef struct {
    uint64_t *v;
    size_t n;
} s_collect_t;

static void
s_collect(const void *key, uint64_t val, void *ctx)
{
    s_collect_t *c = ctx;
    (void)key;
    c->v[c->n++] = val;
}

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int
pd_index_latest_seqs(const pd_index_t *idx, uint64_t **out)
{
    size_t n = pd_hash_count(idx->latest);
    *out = NULL;
    if (n == 0)
        return 0;
    if (n > (size_t)INT32_MAX)
        return -ENOMEM;
    s_collect_t c = { .v = malloc(n * sizeof(uint64_t)), .n = 0 };
    if (c.v == NULL)
        return -ENOMEM;
    pd_hash_foreach(idx->latest, s_collect, &c);
    qsort(c.v, c.n, sizeof(uint64_t), s_cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < c.n; i++)
        if (m == 0 || c.v[m - 1] != c.v[i])
            c.v[m++] = c.v[i];
    *out = c.v;
    return (int)m;
}

static bool
s_below(uint64_t val, void *ctx)
{
    return val < *(const uint64_t *)ctx;
}

void
pd_index_forget_before(pd_index_t *idx, uint64_t first_seq)
{
    for (size_t i = 0; i < idx->n_signers; i++) {
        s_signer_t *s = &idx->signers[i];
        size_t m = 0;
        for (size_t k = 0; k < s->n; k++)
            if (s->pairs[k].seq >= first_seq)
                s->pairs[m++] = s->pairs[k];
        idx->pairs -= s->n - m;
        s->n = m;
        /* Give most of the slack back; keep room to grow. */
        if (s->cap > S_PAIRS_MIN && s->cap / 4 > m) {
            size_t cap = m * 2 > S_PAIRS_MIN ? m * 2 : S_PAIRS_MIN;
            s_pair_t *p = realloc(s->pairs, cap * sizeof(*p));
            if (p != NULL) {
                s->pairs = p;
                s->cap = cap;
            }
        }
    }
    pd_hash_remove_if(idx->latest, s_below, &first_seq);
}

void
pd_index_get_stats(const pd_index_t *idx, pd_index_stats_t *out)
{
    out->signers = idx->accepted;
    out->dedupe = idx->pairs;
    out->latest = pd_hash_count(idx->latest);
    out->scanned = idx->scanned;
    out->skipped = idx->skipped;
}
