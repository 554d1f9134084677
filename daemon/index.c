/*
 * index.c - one open-addressing hash table, and the three indexes parleyd
 * keeps with it (signers, dedupe, latest state).
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
    uint8_t sipkey[crypto_shorthash_KEYBYTES]; /* random per table */
};

/* Grow past 70% full: linear probing stays short below that. */
#define S_LOAD_NUM 7
#define S_LOAD_DEN 10
#define S_MIN_CAP 16

static uint64_t
s_hash(const pd_hash_t *h, const void *key)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(out, key, h->keylen, h->sipkey);
    memcpy(&v, out, sizeof(v));
    return v;
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

/* Arena for decoding one logged record during the scan. */
#define S_SCRATCH (64 * 1024)

struct pd_index {
    pd_hash_t *signers;   /* public key -> last signer_seq */
    pd_hash_t *dedupe;    /* shorthash of envelope bytes -> seq */
    pd_hash_t *latest;    /* S_LATEST_KEY -> seq */
    uint8_t dedupe_key[crypto_shorthash_KEYBYTES]; /* random per start */
    uint8_t *scratch;     /* S_SCRATCH bytes for the scan's arena */
    parley_update_t scan_update; /* decoded record during the scan */
    uint64_t scanned;     /* records added by the scan */
    uint64_t skipped;     /* records the scan could not decode */
};

pd_index_t *
pd_index_new(void)
{
    errno = 0;
    pd_index_t *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return NULL;
    idx->signers = pd_hash_new(PARLEY_PUBLICKEY_BYTES);
    idx->dedupe = pd_hash_new(crypto_shorthash_BYTES);
    idx->latest = pd_hash_new(S_LATEST_KEY);
    idx->scratch = malloc(S_SCRATCH);
    if (idx->signers == NULL || idx->dedupe == NULL || idx->latest == NULL
        || idx->scratch == NULL) {
        int saved = errno != 0 ? errno : ENOMEM;
        pd_index_destroy(&idx);
        errno = saved;
        return NULL;
    }
    /* pd_hash_new() has run sodium_init(). */
    randombytes_buf(idx->dedupe_key, sizeof(idx->dedupe_key));
    return idx;
}

void
pd_index_destroy(pd_index_t **idxp)
{
    if (idxp == NULL || *idxp == NULL)
        return;
    pd_index_t *idx = *idxp;
    pd_hash_destroy(&idx->signers);
    pd_hash_destroy(&idx->dedupe);
    pd_hash_destroy(&idx->latest);
    free(idx->scratch);
    free(idx);
    *idxp = NULL;
}

int
pd_index_reserve(pd_index_t *idx)
{
    int rc = pd_hash_reserve(idx->signers, 1);
    if (rc == 0)
        rc = pd_hash_reserve(idx->dedupe, 1);
    if (rc == 0)
        rc = pd_hash_reserve(idx->latest, PARLEY_PARTIES_MAX);
    return rc;
}

static void
s_dedupe_hash(const pd_index_t *idx, const void *env, size_t len,
              uint8_t out[crypto_shorthash_BYTES])
{
    crypto_shorthash(out, env, len, idx->dedupe_key);
}

/* Build the latest-state key of one (negotiation, party, phase). */
static void
s_latest_key(uint8_t key[S_LATEST_KEY], const char *negotiation,
             const char *party, uint32_t phase)
{
    memset(key, 0, S_LATEST_KEY);
    memcpy(key, negotiation, strnlen(negotiation, PARLEY_SLUG_MAX));
    memcpy(key + S_SLOT, party, strnlen(party, PARLEY_SLUG_MAX));
    key[2 * S_SLOT] = (uint8_t)phase;
    key[2 * S_SLOT + 1] = (uint8_t)(phase >> 8);
    key[2 * S_SLOT + 2] = (uint8_t)(phase >> 16);
    key[2 * S_SLOT + 3] = (uint8_t)(phase >> 24);
}

static bool
s_is_referenced(uint64_t val, void *ctx)
{
    const parley_update_t *u = ctx;
    for (size_t i = 0; i < u->n_references && i < PARLEY_REFERENCES_MAX; i++)
        if (u->references[i] == val)
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
s_apply_latest(pd_index_t *idx, uint64_t seq, const parley_update_t *u)
{
    if (u->kind == PARLEY_KIND_CORRECTION || u->kind == PARLEY_KIND_RETRACTION)
        pd_hash_remove_if(idx->latest, s_is_referenced, (void *)u);
    if (u->kind == PARLEY_KIND_RETRACTION)
        return;
    uint8_t key[S_LATEST_KEY];
    for (size_t i = 0; i < u->n_parties && i < PARLEY_PARTIES_MAX; i++) {
        s_latest_key(key, u->negotiation, u->parties[i], u->phase);
        /* Cannot fail: pd_index_reserve() made room for every party. */
        (void)pd_hash_put(idx->latest, key, seq);
    }
}

void
pd_index_add(pd_index_t *idx, uint64_t seq,
             const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
             const parley_update_t *u, const void *env, size_t len)
{
    uint64_t last;
    if (!pd_hash_get(idx->signers, signer, &last) || u->signer_seq > last)
        (void)pd_hash_put(idx->signers, signer, u->signer_seq);
    uint8_t h[crypto_shorthash_BYTES];
    s_dedupe_hash(idx, env, len, h);
    (void)pd_hash_put(idx->dedupe, h, seq);
    s_apply_latest(idx, seq, u);
}

int
pd_index_scan(void *ctx, uint64_t seq, int64_t received_at,
              const uint8_t *payload, size_t len)
{
    pd_index_t *idx = ctx;
    parley__arena_t arena;
    parley__envelope_t env;
    (void)received_at;
    parley__arena_init(&arena, idx->scratch, S_SCRATCH);
    int rc = parley__envelope_decode(payload, len, &env, &arena);
    if (rc == 0)
        rc = parley__update_decode(env.body.data, env.body.len,
                                   &idx->scan_update, &arena);
    if (rc == 0)
        rc = pd_index_reserve(idx);
    if (rc == 0)
        pd_index_add(idx, seq, env.signer, &idx->scan_update, payload, len);
    parley__arena_reset(&arena);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        /* Only verified updates are logged, so this is a record from an
         * incompatible version; serve the rest rather than refuse to start. */
        idx->skipped++;
        pd_log_limited(1, PD_LOG_WARN,
                       "log record seq %llu does not decode (%s); not indexed",
                       (unsigned long long)seq, parley_strerror(rc));
        return 0;
    }
    idx->scanned++;
    return 0;
}

bool
pd_index_signer_last(const pd_index_t *idx,
                     const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                     uint64_t *last)
{
    return pd_hash_get(idx->signers, signer, last);
}

uint64_t
pd_index_dedupe_lookup(const pd_index_t *idx, const void *env, size_t len)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t seq;
    s_dedupe_hash(idx, env, len, h);
    return pd_hash_get(idx->dedupe, h, &seq) ? seq : 0;
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
    pd_hash_remove_if(idx->dedupe, s_below, &first_seq);
    pd_hash_remove_if(idx->latest, s_below, &first_seq);
}

void
pd_index_get_stats(const pd_index_t *idx, pd_index_stats_t *out)
{
    out->signers = pd_hash_count(idx->signers);
    out->dedupe = pd_hash_count(idx->dedupe);
    out->latest = pd_hash_count(idx->latest);
    out->scanned = idx->scanned;
    out->skipped = idx->skipped;
}
