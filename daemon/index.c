/*
 * index.c - the indexes parleyd keeps over its log: signers with their
 * dedupe pairs here, and the current state (docs/protocol.md section 5)
 * in current.c. This file is the facade the storage calls (index.h): it
 * keeps the reservations, which cover both, and the scan at start.
 *
 * Start-up rebuilds everything from the log, a million records in about a
 * second or less, so the per-record path is kept lean: records in the
 * canonical form are read in place (no protobuf-c, no parley_update_t),
 * a run of records by one signer costs one 32-byte comparison instead of
 * a hash lookup, dedupe is an append to the signer's array, and the only
 * hashing left is of the state's entry keys, with SipHash-1-3. The fast
 * reader of logged records is parley__facts_read() (client/facts.c).
 */
#include "index.h"

#include "codec.h"
#include "current.h"
#include "facts.h"
#include "hash.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    pd_current_t *cur;     /* the current state (current.c) */
    size_t res_recs;       /* reserved and not yet applied: records, */
    size_t res_keys;       /* ... parties, */
    size_t res_refs;       /* ... references */
    uint8_t *scratch;      /* S_SCRATCH bytes for the slow decode's arena */
    parley_update_t scan_update; /* slow decode of a record during the scan */
    uint64_t scanned;      /* records added by the scan */
    uint64_t skipped;      /* records the scan could not decode */
};

/*
 * Make room in the state for recs records, keys parties and refs
 * references in all (totals over the reservations held).
 *
 * Returns:   0 or -ENOMEM.
 */
static int
s_state_room(pd_index_t *idx, size_t recs, size_t keys, size_t refs)
{
    return pd_current_room(idx->cur, recs, keys, refs);
}

pd_index_t *
pd_index_new(void)
{
    errno = 0;
    pd_index_t *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return NULL;
    idx->signer_ids = pd_hash_new(PARLEY_PUBLICKEY_BYTES);
    idx->cur = pd_current_new();
    idx->scratch = malloc(S_SCRATCH);
    if (idx->signer_ids == NULL || idx->cur == NULL || idx->scratch == NULL) {
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
    pd_current_destroy(&idx->cur);
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
pd_index_reserve(pd_index_t *idx, const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                 size_t n_parties, size_t n_references)
{
    size_t slot;
    int rc = s_signer_reserve(idx, signer, &slot);
    if (rc == 0)
        rc = s_state_room(idx, idx->res_recs + 1, idx->res_keys + n_parties,
                          idx->res_refs + n_references);
    if (rc == 0) {
        idx->res_recs++;
        idx->res_keys += n_parties;
        idx->res_refs += n_references;
    }
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

/* Release the reservation of one record (s_state_room() was reserved). */
static void
s_unreserve(pd_index_t *idx, size_t keys, size_t refs)
{
    idx->res_recs -= idx->res_recs > 0;
    idx->res_keys -= keys < idx->res_keys ? keys : idx->res_keys;
    idx->res_refs -= refs < idx->res_refs ? refs : idx->res_refs;
}

void
pd_index_unreserve(pd_index_t *idx, size_t n_parties, size_t n_references)
{
    s_unreserve(idx, n_parties, n_references);
}

int
pd_index_reserve_empty(pd_index_t *idx)
{
    int rc = s_state_room(idx, idx->res_recs + 1, idx->res_keys,
                          idx->res_refs);
    if (rc == 0)
        idx->res_recs++;
    return rc;
}

/* Add one update whose signer has a reserved slot. */
static void
s_add(pd_index_t *idx, uint64_t seq, size_t slot, const parley__facts_t *f)
{
    s_signer_add(idx, &idx->signers[slot], f->signer_seq, seq);
    pd_index_apply(idx, seq, f);
}

void
pd_index_add_signer(pd_index_t *idx, uint64_t seq,
                    const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                    uint64_t signer_seq)
{
    size_t slot;
    /* Finds the slot pd_index_reserve() made; allocates nothing then. */
    if (s_signer_reserve(idx, signer, &slot) == 0)
        s_signer_add(idx, &idx->signers[slot], signer_seq, seq);
}

void
pd_index_apply(pd_index_t *idx, uint64_t seq, const parley__facts_t *f)
{
    s_unreserve(idx, f != NULL ? f->n_parties : 0,
                f != NULL ? f->n_references : 0);
    pd_current_apply(idx->cur, seq, f);
}

void
pd_index_add(pd_index_t *idx, uint64_t seq,
             const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
             const parley_update_t *u)
{
    parley__facts_t f;
    parley__facts_of_update(&f, signer, u);
    pd_index_add_signer(idx, seq, signer, u->signer_seq);
    pd_index_apply(idx, seq, &f);
}

int
pd_index_scan(void *ctx, uint64_t seq, int64_t received_at,
              const uint8_t *payload, size_t len)
{
    pd_index_t *idx = ctx;
    parley__facts_t f;
    parley__envelope_t env;
    parley__arena_t arena;
    size_t slot;
    (void)received_at;
    /* Read in place; anything in another layout goes through the full
     * decoders, which judge it. */
    parley__arena_init(&arena, idx->scratch, S_SCRATCH);
    int rc = parley__facts_decode(payload, len, &f, &env, &idx->scan_update,
                                  &arena);
    parley__arena_reset(&arena);
    if (rc < 0) {
        /* Only verified updates are logged, so this is a record from an
         * incompatible version; serve the rest rather than refuse to start.
         * It still takes its place in the state, holding nothing. */
        idx->skipped++;
        pd_log_limited(PD_LOG_KEY_SCAN, PD_LOG_WARN,
                       "log record seq %llu does not decode (%s); not indexed",
                       (unsigned long long)seq, parley_error_name(rc));
        if ((rc = s_state_room(idx, idx->res_recs + 1, idx->res_keys,
                               idx->res_refs)) < 0)
            return rc;
        pd_index_apply(idx, seq, NULL);
        return 0;
    }
    if ((rc = s_signer_reserve(idx, f.signer, &slot)) < 0
        || (rc = s_state_room(idx, idx->res_recs + 1,
                              idx->res_keys + f.n_parties,
                              idx->res_refs + f.n_references)) < 0)
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

int
pd_index_latest(const pd_index_t *idx, pd_entry_want_fn want, void *ctx,
                pd_entry_t **out)
{
    return pd_current_latest(idx->cur, want, ctx, out);
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
    pd_current_forget(idx->cur, first_seq);
}

void
pd_index_get_stats(const pd_index_t *idx, pd_index_stats_t *out)
{
    out->signers = idx->accepted;
    out->dedupe = idx->pairs;
    pd_current_get_stats(idx->cur, out);
    out->scanned = idx->scanned;
    out->skipped = idx->skipped;
}
