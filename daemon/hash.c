/*
 * hash.c - the open-addressing hash table (hash.h).
 */
#include "hash.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Grow past 70% full: linear probing stays short below that. */
#define S_LOAD_NUM 7
#define S_LOAD_DEN 10
#define S_MIN_CAP 16

static inline uint64_t
s_siphash(const uint8_t key[16], const uint8_t *p, size_t len, int crounds,
          int drounds)
{
    pd_sip_t s;
    pd_sip_init(&s, key, crounds);
    const uint8_t *end = p + (len & ~(size_t)7);
    for (; p != end; p += 8)
        pd_sip_word(&s, pd_sip_le64(p));
    uint64_t tail = 0;
    for (size_t i = 0; i < (len & 7); i++)
        tail |= (uint64_t)p[i] << (8 * i);
    return pd_sip_final(&s, tail, len & 7, drounds);
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
pd_hash_remove_where(pd_hash_t *h, pd_hash_entry_pred_fn pred, void *ctx)
{
    size_t removed = 0;
    /*
     * Removing at i may shift a later entry (not yet looked at) into i, so
     * i is looked at again before moving on. Entries shifted across the
     * wrap-around come from slots already looked at, and looking at them
     * twice is harmless.
     */
    for (size_t i = 0; i < h->cap;) {
        if (h->used[i] && pred(h->keys + i * h->keylen, h->vals[i], ctx)) {
            s_remove_at(h, i);
            removed++;
        } else {
            i++;
        }
    }
    return removed;
}

/* pd_hash_remove_if()'s predicate and context, for pd_hash_remove_where(). */
typedef struct {
    pd_hash_pred_fn pred;
    void *ctx;
} s_by_value_t;

static bool
s_by_value(const void *key, uint64_t val, void *ctx)
{
    const s_by_value_t *bv = ctx;
    (void)key;
    return bv->pred(val, bv->ctx);
}

size_t
pd_hash_remove_if(pd_hash_t *h, pd_hash_pred_fn pred, void *ctx)
{
    s_by_value_t bv = { pred, ctx };
    return pd_hash_remove_where(h, s_by_value, &bv);
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
