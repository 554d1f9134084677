/*
 * index.c - the indexes parleyd keeps over its log: signers with their
 * dedupe pairs, and the current state (docs/protocol.md section 5).
 *
 * Start-up rebuilds everything from the log, a million records in about a
 * second or less, so the per-record path is kept lean: records in the
 * canonical form are read in place (no protobuf-c, no parley_update_t),
 * a run of records by one signer costs one 32-byte comparison instead of
 * a hash lookup, dedupe is an append to the signer's array, and the only
 * hashing left is of the state's entry keys, with SipHash-1-3. The fast
 * reader of logged records is parley__facts_read() (client/facts.c).
 *
 * The state. Every held record has an s_rec_t, found by its seq in a
 * deque (retention takes records off the front), and its links follow in
 * another deque: first one per entry it is a candidate for (an update or
 * correction: one per party), naming the entry and the distance back to
 * that entry's previous candidate; then one per seq it names (a
 * correction or retraction), the distance back to that record. An
 * entry's candidates thus form a chain from its newest one down, and
 * falling back is a walk down that chain to the first candidate that is
 * not withdrawn.
 *
 * Withdrawals: a record is withdrawn when a withdrawal in force names it.
 * A correction's or retraction's withdrawals are in force while it is not
 * withdrawn itself, or while an in-force correction names it (a
 * correction carries on the withdrawals of what it replaces). For every
 * record something names, the table `named` counts the withdrawals in
 * force that name it (force) and how many of those are corrections'
 * (force_corr):
 *
 *     withdrawn = force > 0        in force = force == 0 || force_corr > 0
 *
 * A record applied is the newest: nothing names it yet, so it is in force
 * and not withdrawn. The records it names may change, and with them the
 * records those name, always towards lower seqs: the changes are settled
 * highest seq first (a heap), so each record is settled once, after
 * every record that names it.
 */
#include "index.h"

#include "codec.h"
#include "facts.h"
#include "hash.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Entry key: negotiation, NUL-padded; party, NUL-padded; phase. */
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

/* A held record's kind: parley_kind_t, or this (it did not decode). */
#define S_KIND_NONE 3

/* s_rec_t.flags */
#define S_WITHDRAWN 0x1u /* a withdrawal in force names it */
#define S_LAPSED 0x2u    /* its own withdrawals are not in force */
#define S_QUEUED 0x4u    /* waiting in the heap to be settled */

/* One held record of the state: 8 bytes. */
typedef struct s_rec {
    uint32_t link;   /* number of its first link (links are numbered
                        mod 2^32 in the order they were made) */
    uint8_t n_keys;  /* entry links: the entries it is a candidate for */
    uint8_t n_refs;  /* reference links, after the entry links */
    uint8_t kind;    /* parley_kind_t, or S_KIND_NONE */
    uint8_t flags;   /* S_WITHDRAWN, S_LAPSED, S_QUEUED */
} s_rec_t;

/*
 * A link. Of an entry: a = the entry's id, b = the distance back to the
 * entry's previous candidate (0: none). Of a reference: a = the distance
 * back to the record named, b unused. Distances fit in 32 bits because
 * the state holds fewer than 2^32 records.
 */
typedef struct s_link {
    uint32_t a;
    uint32_t b;
} s_link_t;

/* An entry (negotiation, party, phase), by id. */
typedef struct s_entry {
    uint64_t last;     /* its newest held candidate; 0: the id is free */
    uint64_t current;  /* its newest candidate not withdrawn, 0 none (its
                          state); of a free id, the next free id + 1 */
} s_entry_t;

struct pd_index {
    pd_hash_t *signer_ids; /* public key -> slot in signers[] */
    s_signer_t *signers;   /* every signer seen or reserved */
    size_t n_signers;      /* slots in use */
    size_t signers_cap;    /* slots allocated */
    size_t accepted;       /* signers with an update */
    size_t pairs;          /* pairs held over all signers */
    size_t recent;         /* slot of the signer last reserved, + 1; 0 none */
    pd_hash_t *latest;     /* entry key -> entry id; see s_entry_get() */
    s_entry_t *entries;    /* by id */
    size_t entries_n;      /* ids handed out, free or not */
    size_t entries_cap;    /* ids allocated */
    size_t entries_free;   /* first free id + 1; 0 none */
    size_t entries_live;   /* ids in use */
    size_t latest_n;       /* entries with a state */
    s_rec_t *recs;         /* held records: deque, recs[recs_off] is ... */
    size_t recs_off, recs_n, recs_cap;
    uint64_t recs_base;    /* ... the record of this seq */
    s_link_t *links;       /* their links: deque, links[links_off] is ... */
    size_t links_off, links_n, links_cap;
    uint32_t links_first;  /* ... link number links_first */
    pd_hash_t *named;      /* seq (8 bytes, little endian) of a record
                              something names -> force | force_corr << 32 */
    size_t withdrawn;      /* held records with S_WITHDRAWN */
    uint64_t *heap;        /* seqs queued to be settled (a max-heap) */
    size_t heap_n, heap_cap;
    size_t res_recs;       /* reserved and not yet applied: records, */
    size_t res_keys;       /* ... parties, */
    size_t res_refs;       /* ... references */
    uint8_t *scratch;      /* S_SCRATCH bytes for the slow decode's arena */
    parley_update_t scan_update; /* slow decode of a record during the scan */
    uint64_t scanned;      /* records added by the scan */
    uint64_t skipped;      /* records the scan could not decode */
};

static int s_state_room(pd_index_t *idx, size_t recs, size_t keys,
                        size_t refs);

pd_index_t *
pd_index_new(void)
{
    errno = 0;
    pd_index_t *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return NULL;
    idx->signer_ids = pd_hash_new(PARLEY_PUBLICKEY_BYTES);
    idx->latest = pd_hash_new(S_LATEST_KEY);
    idx->named = pd_hash_new(8);
    idx->scratch = malloc(S_SCRATCH);
    if (idx->signer_ids == NULL || idx->latest == NULL || idx->named == NULL
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
    pd_hash_destroy(&idx->named);
    free(idx->entries);
    free(idx->recs);
    free(idx->links);
    free(idx->heap);
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

/* ================================================================ state */

/*
 * The entry table holds keys of S_LATEST_KEY bytes: negotiation, party
 * (each NUL-padded to S_SLOT) and phase (4 bytes, little endian), and as
 * value the entry's id in entries[]. Its hash is SipHash-1-3 of the
 * negotiation's words, the party's words (each zero-filled to a whole
 * word) and one word holding both lengths and the phase, which names the
 * key as uniquely. It is fed from the slugs in place; lookups compare the
 * stored key with the slugs in place too, and a key is only written out
 * when it is new.
 *
 * So this table is keyed differently from the generic pd_hash_get(),
 * pd_hash_put() and pd_hash_del(), which must never be used on it: they
 * would hash the stored key bytes and miss. Only the slot-level walks
 * (pd_hash_reserve, pd_hash_remove_if, pd_hash_foreach, pd_hash_count)
 * and s_entry_get() touch it.
 */

/* Whether the stored key k is (negotiation, party, phase). */
static inline bool
s_key_eq(const uint8_t *k, const char *neg, size_t neg_len, const char *party,
         size_t party_len, const uint8_t phase[4])
{
    return memcmp(k, neg, neg_len) == 0 && k[neg_len] == 0
           && memcmp(k + S_SLOT, party, party_len) == 0
           && k[S_SLOT + party_len] == 0
           && memcmp(k + 2 * S_SLOT, phase, 4) == 0;
}

/* A free entry id for a new entry (room was made: s_state_room()). */
static uint32_t
s_entry_new(pd_index_t *idx)
{
    uint32_t id;
    if (idx->entries_free != 0) {
        id = (uint32_t)(idx->entries_free - 1);
        idx->entries_free = (size_t)idx->entries[id].current;
    } else {
        id = (uint32_t)idx->entries_n++;
    }
    idx->entries[id] = (s_entry_t){ 0, 0 };
    idx->entries_live++;
    return id;
}

/*
 * The id of the entry (f's negotiation, party i, f's phase), made if it
 * is new. neg is the hash state after the negotiation's words. There must
 * be room for a new entry (s_state_room()).
 */
static uint32_t
s_entry_get(pd_index_t *idx, const pd_sip_t *neg, const parley__facts_t *f,
            size_t i, const uint8_t phase[4])
{
    pd_hash_t *h = idx->latest;
    const char *party = f->parties[i];
    size_t party_len = f->party_lens[i];
    pd_sip_t st = *neg;
    pd_sip_padded(&st, party, party_len);
    pd_sip_word(&st, (uint64_t)f->negotiation_len | (uint64_t)party_len << 8
                         | (uint64_t)f->phase << 16);
    uint64_t hash = pd_sip_final(&st, 0, 0, 3);
    size_t mask = h->cap - 1;
    size_t at = (size_t)hash & mask;
    for (; h->used[at]; at = (at + 1) & mask) {
        if (h->hashes[at] == hash
            && s_key_eq(h->keys + at * S_LATEST_KEY, f->negotiation,
                        f->negotiation_len, party, party_len, phase))
            return (uint32_t)h->vals[at];
    }
    uint8_t *k = h->keys + at * S_LATEST_KEY;
    memset(k, 0, S_LATEST_KEY);
    memcpy(k, f->negotiation, f->negotiation_len);
    memcpy(k + S_SLOT, party, party_len);
    memcpy(k + 2 * S_SLOT, phase, 4);
    uint32_t id = s_entry_new(idx);
    h->used[at] = 1;
    h->hashes[at] = hash;
    h->vals[at] = id;
    h->count++;
    return id;
}

/* Set an entry's current candidate, counting the entries with a state. */
static void
s_entry_set(pd_index_t *idx, s_entry_t *e, uint64_t seq)
{
    idx->latest_n += (seq != 0) - (e->current != 0);
    e->current = seq;
}

/* The held record seq (recs_base <= seq < recs_base + recs_n). */
static inline s_rec_t *
s_rec(const pd_index_t *idx, uint64_t seq)
{
    return &idx->recs[idx->recs_off + (size_t)(seq - idx->recs_base)];
}

/* Is seq a held record? */
static inline bool
s_held(const pd_index_t *idx, uint64_t seq)
{
    return idx->recs_n > 0 && seq >= idx->recs_base
           && seq - idx->recs_base < idx->recs_n;
}

/* Link number n (of a held record). */
static inline s_link_t *
s_link(const pd_index_t *idx, uint32_t n)
{
    return &idx->links[idx->links_off + (uint32_t)(n - idx->links_first)];
}

/* The named-record table's key of seq: 8 bytes, little endian. */
static inline void
s_seq_key(uint64_t seq, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(seq >> (8 * i));
}

/*
 * Make room at the end of a deque of size-byte items (off..off+used of
 * cap) for n more: compact it to the front if that is enough, else grow.
 * Returns 0 or -ENOMEM.
 */
static int
s_deque_room(void **v, size_t size, size_t *off, size_t used, size_t *cap,
             size_t n)
{
    if (n > SIZE_MAX / 2 / size - used)
        return -ENOMEM;
    if (*off + used + n <= *cap)
        return 0;
    if (*off > 0) {
        memmove(*v, (uint8_t *)*v + *off * size, used * size);
        *off = 0;
        if (used + n <= *cap)
            return 0;
    }
    size_t newcap = *cap > 0 ? *cap * 2 : 64;
    while (newcap < used + n)
        newcap *= 2;
    void *p = realloc(*v, newcap * size);
    if (p == NULL)
        return -ENOMEM;
    *v = p;
    *cap = newcap;
    return 0;
}

/* Give most of a deque's slack back after retention took from it. */
static void
s_deque_trim(void **v, size_t size, size_t *off, size_t used, size_t *cap)
{
    if (*cap <= 1024 || *cap / 4 <= used)
        return;
    memmove(*v, (uint8_t *)*v + *off * size, used * size);
    *off = 0;
    size_t newcap = used * 2 > 1024 ? used * 2 : 1024;
    void *p = realloc(*v, newcap * size);
    if (p != NULL) {
        *v = p;
        *cap = newcap;
    }
}

/*
 * Make room for recs more records holding keys entry links (each maybe a
 * new entry) and refs reference links (each maybe a newly named record),
 * so that applying them allocates nothing. Counts are kept within 32 bits
 * (the links' distances and numbers).
 *
 * Returns:   0 or -ENOMEM.
 */
static int
s_state_room(pd_index_t *idx, size_t recs, size_t keys, size_t refs)
{
    if (recs > UINT32_MAX - 1 - idx->recs_n
        || keys + refs > UINT32_MAX - 1 - idx->links_n
        || keys > UINT32_MAX - 1 - idx->entries_n)
        return -ENOMEM;
    if (s_deque_room((void **)&idx->recs, sizeof(s_rec_t), &idx->recs_off,
                     idx->recs_n, &idx->recs_cap, recs) < 0
        || s_deque_room((void **)&idx->links, sizeof(s_link_t),
                        &idx->links_off, idx->links_n, &idx->links_cap,
                        keys + refs) < 0)
        return -ENOMEM;
    if (idx->entries_n + keys > idx->entries_cap) {
        size_t cap = idx->entries_cap > 0 ? idx->entries_cap * 2 : 64;
        while (cap < idx->entries_n + keys)
            cap *= 2;
        s_entry_t *p = realloc(idx->entries, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        idx->entries = p;
        idx->entries_cap = cap;
    }
    if (pd_hash_reserve(idx->latest, keys) < 0
        || pd_hash_reserve(idx->named, refs) < 0)
        return -ENOMEM;
    size_t heap = pd_hash_count(idx->named) + refs;
    if (heap > idx->heap_cap) {
        size_t cap = idx->heap_cap > 0 ? idx->heap_cap * 2 : 64;
        while (cap < heap)
            cap *= 2;
        uint64_t *p = realloc(idx->heap, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        idx->heap = p;
        idx->heap_cap = cap;
    }
    return 0;
}

/* Queue a named record to be settled (s_settle()), once. */
static void
s_queue(pd_index_t *idx, uint64_t seq)
{
    s_rec_t *r = s_rec(idx, seq);
    if (r->flags & S_QUEUED)
        return;
    r->flags |= S_QUEUED;
    /* A max-heap; room: every queued record is a named one. */
    size_t i = idx->heap_n++;
    while (i > 0 && idx->heap[(i - 1) / 2] < seq) {
        idx->heap[i] = idx->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    idx->heap[i] = seq;
}

/* Take the highest queued seq. */
static uint64_t
s_unqueue(pd_index_t *idx)
{
    uint64_t top = idx->heap[0], last = idx->heap[--idx->heap_n];
    size_t i = 0, n = idx->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && idx->heap[c + 1] > idx->heap[c])
            c++;
        if (idx->heap[c] <= last)
            break;
        idx->heap[i] = idx->heap[c];
        i = c;
    }
    if (n > 0)
        idx->heap[i] = last;
    s_rec(idx, top)->flags &= (uint8_t)~S_QUEUED;
    return top;
}

/*
 * Count one more (d = 1) or one fewer (d = -1) withdrawal in force naming
 * the held record seq, a correction's if corr. The record gets its entry
 * in the named table when the first reference to it is applied (room was
 * made) and keeps it until retention takes the record.
 */
static void
s_named_add(pd_index_t *idx, uint64_t seq, int d, bool corr)
{
    uint8_t key[8];
    uint64_t v = 0;
    s_seq_key(seq, key);
    (void)pd_hash_get(idx->named, key, &v);
    uint32_t force = (uint32_t)v, force_corr = (uint32_t)(v >> 32);
    force = (uint32_t)((int64_t)force + d);
    if (corr)
        force_corr = (uint32_t)((int64_t)force_corr + d);
    (void)pd_hash_put(idx->named, key, (uint64_t)force_corr << 32 | force);
}

/* The entry link of the held record seq for entry id, or NULL. */
static const s_link_t *
s_entry_link(const pd_index_t *idx, uint64_t seq, uint32_t id)
{
    const s_rec_t *r = s_rec(idx, seq);
    for (uint32_t i = 0; i < r->n_keys; i++) {
        const s_link_t *l = s_link(idx, r->link + i);
        if (l->a == id)
            return l;
    }
    return NULL;
}

/*
 * Fall back: the newest candidate of entry id below seq (a candidate of
 * it) that is not withdrawn, among the held records; 0 if there is none.
 */
static uint64_t
s_fall_back(const pd_index_t *idx, uint32_t id, uint64_t seq)
{
    for (;;) {
        const s_link_t *l = s_entry_link(idx, seq, id);
        if (l == NULL || l->b == 0 || l->b > seq - idx->recs_base)
            return 0; /* no earlier candidate, or it is gone */
        seq -= l->b;
        if (!(s_rec(idx, seq)->flags & S_WITHDRAWN))
            return seq;
    }
}

/*
 * Settle the queued records, highest seq first: set each one's flags from
 * its counts, pass a change of its withdrawals being in force on to the
 * records it names (queueing them), and a change of its being withdrawn
 * on to its entries.
 */
static void
s_settle(pd_index_t *idx)
{
    while (idx->heap_n > 0) {
        uint64_t seq = s_unqueue(idx);
        s_rec_t *r = s_rec(idx, seq);
        uint8_t key[8];
        uint64_t v = 0;
        s_seq_key(seq, key);
        (void)pd_hash_get(idx->named, key, &v);
        bool withdrawn = (uint32_t)v > 0;
        bool lapsed = withdrawn && (uint32_t)(v >> 32) == 0;
        bool was_withdrawn = (r->flags & S_WITHDRAWN) != 0;
        bool was_lapsed = (r->flags & S_LAPSED) != 0;
        r->flags = (uint8_t)((r->flags & ~(S_WITHDRAWN | S_LAPSED))
                             | (withdrawn ? S_WITHDRAWN : 0)
                             | (lapsed ? S_LAPSED : 0));
        if (lapsed != was_lapsed && r->n_refs > 0) {
            bool corr = r->kind == PARLEY_KIND_CORRECTION;
            for (uint32_t i = 0; i < r->n_refs; i++) {
                uint64_t t = seq - s_link(idx, r->link + r->n_keys + i)->a;
                if (!s_held(idx, t))
                    continue;
                s_named_add(idx, t, lapsed ? -1 : 1, corr);
                s_queue(idx, t);
            }
        }
        if (withdrawn == was_withdrawn)
            continue;
        idx->withdrawn += withdrawn ? 1 : (size_t)-1;
        for (uint32_t i = 0; i < r->n_keys; i++) {
            uint32_t id = s_link(idx, r->link + i)->a;
            s_entry_t *e = &idx->entries[id];
            if (withdrawn && e->current == seq)
                s_entry_set(idx, e, s_fall_back(idx, id, seq));
            else if (!withdrawn && seq > e->current)
                s_entry_set(idx, e, seq);
        }
    }
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

/* Entries whose every candidate is below the first held seq go. */
static bool
s_entry_gone(uint64_t val, void *ctx)
{
    pd_index_t *idx = ctx;
    s_entry_t *e = &idx->entries[val];
    if (e->last >= idx->recs_base)
        return false;
    s_entry_set(idx, e, 0);
    e->last = 0;
    e->current = idx->entries_free; /* the free list */
    idx->entries_free = (size_t)val + 1;
    idx->entries_live--;
    return true;
}

static bool
s_named_gone(const void *key, uint64_t val, void *ctx)
{
    const uint8_t *k = key;
    uint64_t seq = 0;
    (void)val;
    for (int i = 7; i >= 0; i--)
        seq = seq << 8 | k[i];
    return seq < *(const uint64_t *)ctx;
}

/* Take the records below first off the state (retention, or a gap). */
static void
s_state_forget(pd_index_t *idx, uint64_t first)
{
    if (idx->recs_n == 0 || first <= idx->recs_base)
        return;
    uint64_t end = idx->recs_base + idx->recs_n;
    uint64_t stop = first < end ? first : end;
    for (uint64_t seq = idx->recs_base; seq < stop; seq++) {
        const s_rec_t *r = s_rec(idx, seq);
        if (r->flags & S_WITHDRAWN)
            idx->withdrawn--;
        for (uint32_t i = 0; i < r->n_keys; i++) {
            s_entry_t *e = &idx->entries[s_link(idx, r->link + i)->a];
            /* Its state is gone, and so is all it could fall back to. */
            if (e->current != 0 && e->current < first)
                s_entry_set(idx, e, 0);
        }
    }
    size_t dropped = stop < end ? (uint32_t)(s_rec(idx, stop)->link
                                             - idx->links_first)
                                : idx->links_n;
    idx->links_off += dropped;
    idx->links_n -= dropped;
    idx->links_first += (uint32_t)dropped;
    idx->recs_off += (size_t)(stop - idx->recs_base);
    idx->recs_n -= (size_t)(stop - idx->recs_base);
    idx->recs_base = stop;
    if (idx->recs_n == 0)
        idx->recs_base = first;
    pd_hash_remove_if(idx->latest, s_entry_gone, idx);
    pd_hash_remove_where(idx->named, s_named_gone, &first);
    s_deque_trim((void **)&idx->recs, sizeof(s_rec_t), &idx->recs_off,
                 idx->recs_n, &idx->recs_cap);
    s_deque_trim((void **)&idx->links, sizeof(s_link_t), &idx->links_off,
                 idx->links_n, &idx->links_cap);
}

/*
 * Apply one record to the state (section 5).
 *
 * update      a candidate of each of its entries, and the newest: their
 *             state.
 * correction  the same, and a withdrawal of each held record it names
 *             below its own seq, carrying on their own withdrawals.
 * retraction  a withdrawal of each held record it names below its seq.
 * none        (f NULL: did not decode) holds and names nothing.
 *
 * A withdrawn record stops being a candidate: each entry it held falls
 * back to its newest candidate that is not withdrawn. A withdrawn
 * correction or retraction's own withdrawals stop (unless an in-force
 * correction names it), so what it withdrew comes back.
 */
static void
s_apply_state(pd_index_t *idx, uint64_t seq, const parley__facts_t *f)
{
    size_t nk = 0, nr = 0;
    uint8_t kind = S_KIND_NONE;
    if (f != NULL) {
        kind = (uint8_t)f->kind;
        nk = f->kind != PARLEY_KIND_RETRACTION ? f->n_parties : 0;
        nr = f->kind != PARLEY_KIND_UPDATE ? f->n_references : 0;
        s_unreserve(idx, f->n_parties, f->n_references);
    } else {
        s_unreserve(idx, 0, 0);
    }
    if (idx->recs_n > 0) {
        uint64_t next = idx->recs_base + idx->recs_n;
        if (seq < next) {
            pd_log(PD_LOG_ERROR, "index: seq %llu applied again; ignored",
                   (unsigned long long)seq);
            return;
        }
        if (seq > next) {
            pd_log(PD_LOG_ERROR, "index: seq %llu applied after %llu; the "
                                 "state before it is forgotten",
                   (unsigned long long)seq, (unsigned long long)next - 1);
            s_state_forget(idx, seq);
        }
    }
    /* Reserved before, so this allocates nothing; a record applied
     * without a reservation may allocate here. */
    if (s_state_room(idx, 1, nk, nr) < 0) {
        pd_log(PD_LOG_ERROR, "index: out of memory for seq %llu; the state "
                             "before it will be forgotten",
               (unsigned long long)seq);
        return;
    }
    if (idx->recs_n == 0)
        idx->recs_base = seq;
    s_rec_t *r = &idx->recs[idx->recs_off + idx->recs_n++];
    *r = (s_rec_t){ .link = idx->links_first + (uint32_t)idx->links_n,
                    .kind = kind };
    if (nk > 0) {
        const uint8_t phase[4] = { (uint8_t)f->phase,
                                   (uint8_t)(f->phase >> 8),
                                   (uint8_t)(f->phase >> 16),
                                   (uint8_t)(f->phase >> 24) };
        pd_sip_t neg;
        pd_sip_init(&neg, idx->latest->sipkey, 1);
        pd_sip_padded(&neg, f->negotiation, f->negotiation_len);
        for (size_t i = 0; i < nk; i++) {
            uint32_t id = s_entry_get(idx, &neg, f, i, phase);
            s_entry_t *e = &idx->entries[id];
            if (e->last == seq)
                continue; /* a party named twice (never accepted) */
            idx->links[idx->links_off + idx->links_n++] = (s_link_t){
                id, e->last != 0 ? (uint32_t)(seq - e->last) : 0
            };
            r->n_keys++;
            e->last = seq;
            s_entry_set(idx, e, seq);
        }
    }
    bool corr = kind == PARLEY_KIND_CORRECTION;
    for (size_t i = 0; i < nr; i++) {
        uint64_t t = f->references[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = f->references[j] == t;
        if (seen || t >= seq || !s_held(idx, t))
            continue; /* named twice, not earlier, or gone */
        idx->links[idx->links_off + idx->links_n++] =
            (s_link_t){ (uint32_t)(seq - t), 0 };
        r->n_refs++;
        s_named_add(idx, t, 1, corr);
        s_queue(idx, t);
    }
    s_settle(idx);
}

/* One state entry as handed out, from its stored key. */
static void
s_entry_out(const uint8_t *k, uint64_t seq, pd_entry_t *out)
{
    memcpy(out->negotiation, k, S_SLOT);
    memcpy(out->party, k + S_SLOT, S_SLOT);
    out->negotiation[PARLEY_SLUG_MAX] = '\0';
    out->party[PARLEY_SLUG_MAX] = '\0';
    const uint8_t *p = k + 2 * S_SLOT;
    out->phase = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                 | (uint32_t)p[3] << 24;
    out->seq = seq;
}

/* Add one update whose signer has a reserved slot. */
static void
s_add(pd_index_t *idx, uint64_t seq, size_t slot, const parley__facts_t *f)
{
    s_signer_add(idx, &idx->signers[slot], f->signer_seq, seq);
    s_apply_state(idx, seq, f);
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
    s_apply_state(idx, seq, f);
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
        s_apply_state(idx, seq, NULL);
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

typedef struct {
    const pd_index_t *idx;
    pd_entry_want_fn want;
    void *ctx;
    pd_entry_t *v;   /* the entries kept */
    size_t n, cap;
    bool failed;           /* out of memory */
} s_collect_t;

static void
s_collect(const void *key, uint64_t val, void *ctx)
{
    s_collect_t *c = ctx;
    uint64_t seq = c->idx->entries[val].current;
    if (seq == 0 || c->failed)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap > 0 ? c->cap * 2 : 64;
        pd_entry_t *p = realloc(c->v, cap * sizeof(*p));
        if (p == NULL) {
            c->failed = true;
            return;
        }
        c->v = p;
        c->cap = cap;
    }
    s_entry_out(key, seq, &c->v[c->n]);
    if (c->want == NULL || c->want(&c->v[c->n], c->ctx))
        c->n++;
}

int
pd_index_latest(const pd_index_t *idx, pd_entry_want_fn want, void *ctx,
                pd_entry_t **out)
{
    s_collect_t c = { .idx = idx, .want = want, .ctx = ctx };
    *out = NULL;
    if (idx->latest_n > (size_t)INT32_MAX)
        return -ENOMEM;
    pd_hash_foreach(idx->latest, s_collect, &c);
    if (c.failed || c.n == 0) {
        free(c.v);
        return c.failed ? -ENOMEM : 0;
    }
    *out = c.v;
    return (int)c.n;
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
    s_state_forget(idx, first_seq);
}

void
pd_index_get_stats(const pd_index_t *idx, pd_index_stats_t *out)
{
    out->signers = idx->accepted;
    out->dedupe = idx->pairs;
    out->latest = idx->latest_n;
    out->entries = idx->entries_live;
    out->records = idx->recs_n;
    out->links = idx->links_n;
    out->named = pd_hash_count(idx->named);
    out->withdrawn = idx->withdrawn;
    out->scanned = idx->scanned;
    out->skipped = idx->skipped;
}
