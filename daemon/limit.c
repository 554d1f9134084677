/*
 * limit.c - token buckets per signer and a bad-signature penalty per peer.
 */
#include "limit.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Slots looked at for one key before the oldest of them is reused. */
#define S_PROBE 8
/* Tokens are counted in millionths, so a refill is one multiplication. */
#define S_UNIT 1000000LL
/* After this long idle a bucket is full whatever the rate. */
#define S_IDLE_FULL_US (1000LL * 1000 * 1000)

typedef struct {
    uint64_t h;      /* keyed hash of the signer key, 0 = empty */
    int64_t last_us; /* when tokens was last brought up to date */
    int64_t tokens;  /* millionths of a token */
} s_signer_t;

typedef struct {
    uint64_t h;            /* keyed hash of the peer identity, 0 = empty */
    int64_t last_ms;       /* last time this peer was seen */
    int64_t window_ms;     /* start of the current one-second window */
    uint32_t bad;          /* bad signatures in that window */
    int64_t blocked_until; /* cooling down until then (monotonic ms) */
} s_peer_t;

struct pd_limit {
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    int64_t rate; /* tokens per second, 0 = no signer limit */
    int64_t cap;  /* bucket size in millionths */
    s_signer_t signers[PD_LIMIT_SIGNERS];
    s_peer_t peers[PD_LIMIT_PEERS];
    pd_limit_stats_t stats;
};

pd_limit_t *
pd_limit_new(uint32_t rate, uint32_t burst)
{
    if (sodium_init() < 0) {
        errno = ENOSYS;
        return NULL;
    }
    pd_limit_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    randombytes_buf(self->hash_key, sizeof(self->hash_key));
    self->rate = rate;
    self->cap = (int64_t)(burst > 0 ? burst : 1) * S_UNIT;
    return self;
}

void
pd_limit_destroy(pd_limit_t **limit)
{
    if (limit == NULL || *limit == NULL)
        return;
    free(*limit);
    *limit = NULL;
}

void
pd_limit_get_stats(const pd_limit_t *self, pd_limit_stats_t *out)
{
    *out = self->stats;
}

void
pd_limit_stats_register(const pd_limit_t *self, pd_stats_t *st)
{
    pd_stats_counter(st, PD_STAT_RATE_LIMITED_SIGNER, &self->stats.signer_limited);
    pd_stats_counter(st, PD_STAT_RATE_LIMITED_PEER, &self->stats.peer_limited);
    pd_stats_counter(st, PD_STAT_PEERS_PENALIZED, &self->stats.peers_penalized);
}

static uint64_t
s_hash(const pd_limit_t *self, const void *data, size_t len)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, data, len, self->hash_key);
    memcpy(&h, out, sizeof(h));
    return h != 0 ? h : 1;
}

/*
 * Find the slot of h among S_PROBE slots from h % n (stride bytes apart,
 * the hash at offset 0 and the last-use time at when_off of each), or
 * claim an empty one, or the one used longest ago. *fresh says whether
 * the slot must be initialised.
 */
static void *
s_slot(void *table, size_t n, size_t stride, size_t when_off, uint64_t h,
       bool *fresh)
{
    uint8_t *base = table;
    size_t first = (size_t)(h % n);
    uint8_t *victim = NULL;
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < S_PROBE; i++) {
        uint8_t *slot = base + ((first + i) % n) * stride;
        uint64_t sh;
        int64_t when;
        memcpy(&sh, slot, sizeof(sh));
        if (sh == h) {
            *fresh = false;
            return slot;
        }
        if (sh == 0) {
            victim = slot;
            oldest = INT64_MIN;
            continue;
        }
        memcpy(&when, slot + when_off, sizeof(when));
        if (when < oldest) {
            oldest = when;
            victim = slot;
        }
    }
    *fresh = true;
    return victim;
}

bool
pd_limit_signer_take(pd_limit_t *self, const uint8_t pk[32], int64_t now_us)
{
    if (self->rate == 0)
        return true;
    bool fresh;
    uint64_t h = s_hash(self, pk, 32);
    s_signer_t *s = s_slot(self->signers, PD_LIMIT_SIGNERS, sizeof(*s),
                           offsetof(s_signer_t, last_us), h, &fresh);
    if (fresh) {
        *s = (s_signer_t){ .h = h, .last_us = now_us, .tokens = self->cap };
    } else {
        int64_t elapsed = now_us - s->last_us;
        if (elapsed >= S_IDLE_FULL_US)
            s->tokens = self->cap;
        else if (elapsed > 0)
            s->tokens += elapsed * self->rate; /* millionths per us */
        if (s->tokens > self->cap)
            s->tokens = self->cap;
        if (elapsed > 0)
            s->last_us = now_us;
    }
    if (s->tokens < S_UNIT) {
        self->stats.signer_limited++;
        return false;
    }
    s->tokens -= S_UNIT;
    return true;
}

/* The peer's slot, made if need be. */
static s_peer_t *
s_peer(pd_limit_t *self, const void *id, size_t len, int64_t now_ms)
{
    bool fresh;
    uint64_t h = s_hash(self, id, len);
    s_peer_t *p = s_slot(self->peers, PD_LIMIT_PEERS, sizeof(*p),
                         offsetof(s_peer_t, last_ms), h, &fresh);
    if (fresh)
        *p = (s_peer_t){ .h = h, .window_ms = now_ms };
    p->last_ms = now_ms;
    return p;
}

bool
pd_limit_peer_blocked(pd_limit_t *self, const void *id, size_t len,
                      int64_t now_ms)
{
    /* Look, do not claim: only peers that sent bad signatures need a
     * slot, so well-behaved publishers never push a penalized one out. */
    bool fresh;
    uint64_t h = s_hash(self, id, len);
    s_peer_t *p = s_slot(self->peers, PD_LIMIT_PEERS, sizeof(*p),
                         offsetof(s_peer_t, last_ms), h, &fresh);
    if (fresh)
        return false;
    p->last_ms = now_ms;
    if (now_ms < p->blocked_until) {
        self->stats.peer_limited++;
        return true;
    }
    return false;
}

bool
pd_limit_peer_bad(pd_limit_t *self, const void *id, size_t len, int64_t now_ms)
{
    s_peer_t *p = s_peer(self, id, len, now_ms);
    if (now_ms - p->window_ms >= 1000) {
        p->window_ms = now_ms;
        p->bad = 0;
    }
    if (++p->bad < PD_LIMIT_BAD_MAX || now_ms < p->blocked_until)
        return false;
    p->blocked_until = now_ms + PD_LIMIT_COOLDOWN_MS;
    p->bad = 0;
    self->stats.peers_penalized++;
    return true;
}
