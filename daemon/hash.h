/*
 * hash.h - parleyd's hash table: fixed-length byte keys -> uint64_t
 * values, open addressing with linear probing and backward-shift
 * deletion (no tombstones), SipHash-1-3 under a random key per table so
 * that keys chosen by publishers cannot be made to collide.
 *
 * The struct and a streaming SipHash are in this header for one reason:
 * the latest-state table of current.c hashes its keys in place, from the
 * slugs where they lie, and walks the slots itself (see the comment on
 * the entry table there). Every other user treats pd_hash_t as opaque and
 * goes through the functions.
 */
#ifndef PD_HASH_H
#define PD_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pd_hash {
    size_t keylen;      /* bytes per key */
    size_t cap;         /* slots, a power of two (0 before the first insert) */
    size_t count;       /* slots in use */
    uint8_t *used;      /* cap flags: 1 if the slot holds an entry */
    uint64_t *hashes;   /* cap hashes of the keys, so moves need no rehash */
    uint8_t *keys;      /* cap * keylen bytes */
    uint64_t *vals;     /* cap values */
    uint8_t sipkey[16]; /* random per table */
} pd_hash_t;

/*
 * Make an empty table for keys of keylen bytes (1..255).
 *
 * Returns:   the table, or NULL with errno set.
 * Ownership: the caller's; free with pd_hash_destroy().
 */
pd_hash_t *pd_hash_new(size_t keylen);

/* Free a table; *h becomes NULL. Accepts NULL. */
void pd_hash_destroy(pd_hash_t **h);

/* Returns true and sets *val (may be NULL) if key is present. */
bool pd_hash_get(const pd_hash_t *h, const void *key, uint64_t *val);

/*
 * Make room so that the next n inserts of new keys cannot fail.
 *
 * Returns:   0 or -ENOMEM.
 */
int pd_hash_reserve(pd_hash_t *h, size_t n);

/*
 * Insert or overwrite key -> val.
 *
 * Returns:   0 or -ENOMEM (only if no room was reserved).
 */
int pd_hash_put(pd_hash_t *h, const void *key, uint64_t val);

/* Remove key. Returns true if it was present. */
bool pd_hash_del(pd_hash_t *h, const void *key);

/* Number of keys held. */
size_t pd_hash_count(const pd_hash_t *h);

/* Predicate over a value for pd_hash_remove_if(). */
typedef bool (*pd_hash_pred_fn)(uint64_t val, void *ctx);

/* Remove every entry whose value satisfies pred. Returns how many. */
size_t pd_hash_remove_if(pd_hash_t *h, pd_hash_pred_fn pred, void *ctx);

/* Predicate over an entry (its key and value) for pd_hash_remove_where(). */
typedef bool (*pd_hash_entry_pred_fn)(const void *key, uint64_t val,
                                      void *ctx);

/*
 * Remove every entry that satisfies pred. pred may be called more than
 * once for an entry it keeps, and exactly once with true for each entry
 * it removes. Returns how many were removed.
 */
size_t pd_hash_remove_where(pd_hash_t *h, pd_hash_entry_pred_fn pred,
                            void *ctx);

/* Call fn for every entry, in no particular order; fn must not modify h. */
void pd_hash_foreach(const pd_hash_t *h,
                     void (*fn)(const void *key, uint64_t val, void *ctx),
                     void *ctx);

/*
 * SipHash with crounds compression and drounds finalization rounds of
 * len bytes at p under the 16-byte key (2, 4 is the SipHash-2-4 of
 * libsodium's crypto_shorthash; the tables use 1, 3). Exposed for tests.
 */
uint64_t pd_hash_siphash(const uint8_t key[16], const void *p, size_t len,
                         int crounds, int drounds);

/* ------------------------------------------------------ streaming SipHash */

/*
 * SipHash (Aumasson and Bernstein) fed a word at a time, so that a key
 * can be hashed straight from the pieces where they lie without first
 * being copied into one buffer (reading freshly written bytes back as
 * words stalls the CPU for longer than the hashing takes). Inlined with
 * constant rounds.
 */
typedef struct pd_sip {
    uint64_t v0, v1, v2, v3;
    size_t total; /* bytes fed as whole words */
    int crounds;  /* compression rounds per word */
} pd_sip_t;

static inline uint64_t
pd_sip_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint64_t
pd_sip_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define PD_SIPROUND(v0, v1, v2, v3)                                          \
    do {                                                                     \
        v0 += v1;                                                            \
        v1 = pd_sip_rotl(v1, 13);                                            \
        v1 ^= v0;                                                            \
        v0 = pd_sip_rotl(v0, 32);                                            \
        v2 += v3;                                                            \
        v3 = pd_sip_rotl(v3, 16);                                            \
        v3 ^= v2;                                                            \
        v0 += v3;                                                            \
        v3 = pd_sip_rotl(v3, 21);                                            \
        v3 ^= v0;                                                            \
        v2 += v1;                                                            \
        v1 = pd_sip_rotl(v1, 17);                                            \
        v1 ^= v2;                                                            \
        v2 = pd_sip_rotl(v2, 32);                                            \
    } while (0)

/* Start hashing under key with crounds compression rounds per word. */
static inline void
pd_sip_init(pd_sip_t *s, const uint8_t key[16], int crounds)
{
    const uint64_t k0 = pd_sip_le64(key), k1 = pd_sip_le64(key + 8);
    s->v0 = k0 ^ 0x736f6d6570736575ull;
    s->v1 = k1 ^ 0x646f72616e646f6dull;
    s->v2 = k0 ^ 0x6c7967656e657261ull;
    s->v3 = k1 ^ 0x7465646279746573ull;
    s->total = 0;
    s->crounds = crounds;
}

/* One compression of the word m (little endian). */
static inline void
pd_sip_mix(pd_sip_t *s, uint64_t m)
{
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2, v3 = s->v3;
    v3 ^= m;
    for (int r = 0; r < s->crounds; r++)
        PD_SIPROUND(v0, v1, v2, v3);
    v0 ^= m;
    s->v0 = v0;
    s->v1 = v1;
    s->v2 = v2;
    s->v3 = v3;
}

/* Feed one whole word. */
static inline void
pd_sip_word(pd_sip_t *s, uint64_t m)
{
    pd_sip_mix(s, m);
    s->total += 8;
}

static inline uint32_t
pd_sip_le32(const uint8_t *p)
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
pd_sip_tail(const uint8_t *p, size_t n)
{
    if (n >= 4)
        return pd_sip_le32(p)
               | (uint64_t)pd_sip_le32(p + n - 4) << (8 * (n - 4));
    return p[0] | (uint64_t)p[n / 2] << (8 * (n / 2))
           | (uint64_t)p[n - 1] << (8 * (n - 1));
}

/*
 * Feed n bytes at p as whole words, the last one zero-filled (not
 * SipHash's byte stream: a key made of several such pieces must also
 * feed their lengths, as current.c does).
 */
static inline void
pd_sip_padded(pd_sip_t *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (; n >= 8; b += 8, n -= 8)
        pd_sip_word(s, pd_sip_le64(b));
    if (n > 0)
        pd_sip_word(s, pd_sip_tail(b, n));
}

/* The hash of the words fed and then tail_len (0..7) bytes in tail. */
static inline uint64_t
pd_sip_final(pd_sip_t *s, uint64_t tail, size_t tail_len, int drounds)
{
    pd_sip_mix(s, (uint64_t)(s->total + tail_len) << 56 | tail);
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2 ^ 0xff, v3 = s->v3;
    for (int r = 0; r < drounds; r++)
        PD_SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

#endif /* PD_HASH_H */
