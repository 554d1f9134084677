/*
 * current.c - the current state of docs/protocol.md section 5: for each
 * entry (negotiation, party, phase), the newest update or correction
 * naming it that no withdrawal in force names, falling back to the one
 * before when one does. Only index.c calls it (current.h); the per-signer
 * index and the reservations are there.
 *
 * Every held record has an s_rec_t, found by its seq in a deque
 * (retention takes records off the front), and its links follow in
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
 *
 * Memory: 8 bytes per held record (s_rec_t), 8 more per link (s_link_t:
 * one per party of an update or correction, one per seq a correction or
 * retraction names), a slot of the `named` table for each record that
 * something names, and per entry a slot of the entry table (its key,
 * 2 * 65 + 4 bytes) and 16 bytes of s_entry_t, however many records name
 * it. The figures measured are in docs/operations.md, "Memory".
 */
#include "current.h"

#include "hash.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Entry key: negotiation, NUL-padded; party, NUL-padded; phase. */
#define S_SLOT (PARLEY_SLUG_MAX + 1)
#define S_LATEST_KEY (2 * S_SLOT + 4)

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

struct pd_current {
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
};

pd_current_t *
pd_current_new(void)
{
    errno = 0;
    pd_current_t *cur = calloc(1, sizeof(*cur));
    if (cur == NULL)
        return NULL;
    cur->latest = pd_hash_new(S_LATEST_KEY);
    cur->named = pd_hash_new(8);
    if (cur->latest == NULL || cur->named == NULL) {
        int saved = errno != 0 ? errno : ENOMEM;
        pd_current_destroy(&cur);
        errno = saved;
        return NULL;
    }
    return cur;
}

void
pd_current_destroy(pd_current_t **curp)
{
    if (curp == NULL || *curp == NULL)
        return;
    pd_current_t *cur = *curp;
    pd_hash_destroy(&cur->latest);
    pd_hash_destroy(&cur->named);
    free(cur->entries);
    free(cur->recs);
    free(cur->links);
    free(cur->heap);
    free(cur);
    *curp = NULL;
}

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

/* A free entry id for a new entry (room was made: pd_current_room()). */
static uint32_t
s_entry_new(pd_current_t *cur)
{
    uint32_t id;
    if (cur->entries_free != 0) {
        id = (uint32_t)(cur->entries_free - 1);
        cur->entries_free = (size_t)cur->entries[id].current;
    } else {
        id = (uint32_t)cur->entries_n++;
    }
    cur->entries[id] = (s_entry_t){ 0, 0 };
    cur->entries_live++;
    return id;
}

/*
 * The id of the entry (f's negotiation, party i, f's phase), made if it
 * is new. neg is the hash state after the negotiation's words. There must
 * be room for a new entry (pd_current_room()).
 */
static uint32_t
s_entry_get(pd_current_t *cur, const pd_sip_t *neg, const parley__facts_t *f,
            size_t i, const uint8_t phase[4])
{
    pd_hash_t *h = cur->latest;
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
    uint32_t id = s_entry_new(cur);
    h->used[at] = 1;
    h->hashes[at] = hash;
    h->vals[at] = id;
    h->count++;
    return id;
}

/* Set an entry's current candidate, counting the entries with a state. */
static void
s_entry_set(pd_current_t *cur, s_entry_t *e, uint64_t seq)
{
    cur->latest_n += (seq != 0) - (e->current != 0);
    e->current = seq;
}

/* The held record seq (recs_base <= seq < recs_base + recs_n). */
static inline s_rec_t *
s_rec(const pd_current_t *cur, uint64_t seq)
{
    return &cur->recs[cur->recs_off + (size_t)(seq - cur->recs_base)];
}

/* Is seq a held record? */
static inline bool
s_held(const pd_current_t *cur, uint64_t seq)
{
    return cur->recs_n > 0 && seq >= cur->recs_base
           && seq - cur->recs_base < cur->recs_n;
}

/* Link number n (of a held record). */
static inline s_link_t *
s_link(const pd_current_t *cur, uint32_t n)
{
    return &cur->links[cur->links_off + (uint32_t)(n - cur->links_first)];
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
int
pd_current_room(pd_current_t *cur, size_t recs, size_t keys, size_t refs)
{
    if (recs > UINT32_MAX - 1 - cur->recs_n
        || keys + refs > UINT32_MAX - 1 - cur->links_n
        || keys > UINT32_MAX - 1 - cur->entries_n)
        return -ENOMEM;
    if (s_deque_room((void **)&cur->recs, sizeof(s_rec_t), &cur->recs_off,
                     cur->recs_n, &cur->recs_cap, recs) < 0
        || s_deque_room((void **)&cur->links, sizeof(s_link_t),
                        &cur->links_off, cur->links_n, &cur->links_cap,
                        keys + refs) < 0)
        return -ENOMEM;
    if (cur->entries_n + keys > cur->entries_cap) {
        size_t cap = cur->entries_cap > 0 ? cur->entries_cap * 2 : 64;
        while (cap < cur->entries_n + keys)
            cap *= 2;
        s_entry_t *p = realloc(cur->entries, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        cur->entries = p;
        cur->entries_cap = cap;
    }
    if (pd_hash_reserve(cur->latest, keys) < 0
        || pd_hash_reserve(cur->named, refs) < 0)
        return -ENOMEM;
    size_t heap = pd_hash_count(cur->named) + refs;
    if (heap > cur->heap_cap) {
        size_t cap = cur->heap_cap > 0 ? cur->heap_cap * 2 : 64;
        while (cap < heap)
            cap *= 2;
        uint64_t *p = realloc(cur->heap, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        cur->heap = p;
        cur->heap_cap = cap;
    }
    return 0;
}

/* Queue a named record to be settled (s_settle()), once. */
static void
s_queue(pd_current_t *cur, uint64_t seq)
{
    s_rec_t *r = s_rec(cur, seq);
    if (r->flags & S_QUEUED)
        return;
    r->flags |= S_QUEUED;
    /* A max-heap; room: every queued record is a named one. */
    size_t i = cur->heap_n++;
    while (i > 0 && cur->heap[(i - 1) / 2] < seq) {
        cur->heap[i] = cur->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    cur->heap[i] = seq;
}

/* Take the highest queued seq. */
static uint64_t
s_unqueue(pd_current_t *cur)
{
    uint64_t top = cur->heap[0], last = cur->heap[--cur->heap_n];
    size_t i = 0, n = cur->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cur->heap[c + 1] > cur->heap[c])
            c++;
        if (cur->heap[c] <= last)
            break;
        cur->heap[i] = cur->heap[c];
        i = c;
    }
    if (n > 0)
        cur->heap[i] = last;
    s_rec(cur, top)->flags &= (uint8_t)~S_QUEUED;
    return top;
}

/*
 * Count one more (d = 1) or one fewer (d = -1) withdrawal in force naming
 * the held record seq, a correction's if corr. The record gets its entry
 * in the named table when the first reference to it is applied (room was
 * made) and keeps it until retention takes the record.
 */
static void
s_named_add(pd_current_t *cur, uint64_t seq, int d, bool corr)
{
    uint8_t key[8];
    uint64_t v = 0;
    s_seq_key(seq, key);
    (void)pd_hash_get(cur->named, key, &v);
    uint32_t force = (uint32_t)v, force_corr = (uint32_t)(v >> 32);
    force = (uint32_t)((int64_t)force + d);
    if (corr)
        force_corr = (uint32_t)((int64_t)force_corr + d);
    (void)pd_hash_put(cur->named, key, (uint64_t)force_corr << 32 | force);
}

/* The entry link of the held record seq for entry id, or NULL. */
static const s_link_t *
s_entry_link(const pd_current_t *cur, uint64_t seq, uint32_t id)
{
    const s_rec_t *r = s_rec(cur, seq);
    for (uint32_t i = 0; i < r->n_keys; i++) {
        const s_link_t *l = s_link(cur, r->link + i);
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
s_fall_back(const pd_current_t *cur, uint32_t id, uint64_t seq)
{
    for (;;) {
        const s_link_t *l = s_entry_link(cur, seq, id);
        if (l == NULL || l->b == 0 || l->b > seq - cur->recs_base)
            return 0; /* no earlier candidate, or it is gone */
        seq -= l->b;
        if (!(s_rec(cur, seq)->flags & S_WITHDRAWN))
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
s_settle(pd_current_t *cur)
{
    while (cur->heap_n > 0) {
        uint64_t seq = s_unqueue(cur);
        s_rec_t *r = s_rec(cur, seq);
        uint8_t key[8];
        uint64_t v = 0;
        s_seq_key(seq, key);
        (void)pd_hash_get(cur->named, key, &v);
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
                uint64_t t = seq - s_link(cur, r->link + r->n_keys + i)->a;
                if (!s_held(cur, t))
                    continue;
                s_named_add(cur, t, lapsed ? -1 : 1, corr);
                s_queue(cur, t);
            }
        }
        if (withdrawn == was_withdrawn)
            continue;
        cur->withdrawn += withdrawn ? 1 : (size_t)-1;
        for (uint32_t i = 0; i < r->n_keys; i++) {
            uint32_t id = s_link(cur, r->link + i)->a;
            s_entry_t *e = &cur->entries[id];
            if (withdrawn && e->current == seq)
                s_entry_set(cur, e, s_fall_back(cur, id, seq));
            else if (!withdrawn && seq > e->current)
                s_entry_set(cur, e, seq);
        }
    }
}

/* Entries whose every candidate is below the first held seq go. */
static bool
s_entry_gone(uint64_t val, void *ctx)
{
    pd_current_t *cur = ctx;
    s_entry_t *e = &cur->entries[val];
    if (e->last >= cur->recs_base)
        return false;
    s_entry_set(cur, e, 0);
    e->last = 0;
    e->current = cur->entries_free; /* the free list */
    cur->entries_free = (size_t)val + 1;
    cur->entries_live--;
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
void
pd_current_forget(pd_current_t *cur, uint64_t first)
{
    if (cur->recs_n == 0 || first <= cur->recs_base)
        return;
    uint64_t end = cur->recs_base + cur->recs_n;
    uint64_t stop = first < end ? first : end;
    for (uint64_t seq = cur->recs_base; seq < stop; seq++) {
        const s_rec_t *r = s_rec(cur, seq);
        if (r->flags & S_WITHDRAWN)
            cur->withdrawn--;
        for (uint32_t i = 0; i < r->n_keys; i++) {
            s_entry_t *e = &cur->entries[s_link(cur, r->link + i)->a];
            /* Its state is gone, and so is all it could fall back to. */
            if (e->current != 0 && e->current < first)
                s_entry_set(cur, e, 0);
        }
    }
    size_t dropped = stop < end ? (uint32_t)(s_rec(cur, stop)->link
                                             - cur->links_first)
                                : cur->links_n;
    cur->links_off += dropped;
    cur->links_n -= dropped;
    cur->links_first += (uint32_t)dropped;
    cur->recs_off += (size_t)(stop - cur->recs_base);
    cur->recs_n -= (size_t)(stop - cur->recs_base);
    cur->recs_base = stop;
    if (cur->recs_n == 0)
        cur->recs_base = first;
    pd_hash_remove_if(cur->latest, s_entry_gone, cur);
    pd_hash_remove_where(cur->named, s_named_gone, &first);
    s_deque_trim((void **)&cur->recs, sizeof(s_rec_t), &cur->recs_off,
                 cur->recs_n, &cur->recs_cap);
    s_deque_trim((void **)&cur->links, sizeof(s_link_t), &cur->links_off,
                 cur->links_n, &cur->links_cap);
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
void
pd_current_apply(pd_current_t *cur, uint64_t seq, const parley__facts_t *f)
{
    size_t nk = 0, nr = 0;
    uint8_t kind = S_KIND_NONE;
    if (f != NULL) {
        kind = (uint8_t)f->kind;
        nk = f->kind != PARLEY_KIND_RETRACTION ? f->n_parties : 0;
        nr = f->kind != PARLEY_KIND_UPDATE ? f->n_references : 0;
    }
    if (cur->recs_n > 0) {
        uint64_t next = cur->recs_base + cur->recs_n;
        if (seq < next) {
            pd_log(PD_LOG_ERROR, "index: seq %llu applied again; ignored",
                   (unsigned long long)seq);
            return;
        }
        if (seq > next) {
            pd_log(PD_LOG_ERROR, "index: seq %llu applied after %llu; the "
                                 "state before it is forgotten",
                   (unsigned long long)seq, (unsigned long long)next - 1);
            pd_current_forget(cur, seq);
        }
    }
    /* Reserved before, so this allocates nothing; a record applied
     * without a reservation may allocate here. */
    if (pd_current_room(cur, 1, nk, nr) < 0) {
        pd_log(PD_LOG_ERROR, "index: out of memory for seq %llu; the state "
                             "before it will be forgotten",
               (unsigned long long)seq);
        return;
    }
    if (cur->recs_n == 0)
        cur->recs_base = seq;
    s_rec_t *r = &cur->recs[cur->recs_off + cur->recs_n++];
    *r = (s_rec_t){ .link = cur->links_first + (uint32_t)cur->links_n,
                    .kind = kind };
    if (nk > 0) {
        const uint8_t phase[4] = { (uint8_t)f->phase,
                                   (uint8_t)(f->phase >> 8),
                                   (uint8_t)(f->phase >> 16),
                                   (uint8_t)(f->phase >> 24) };
        pd_sip_t neg;
        pd_sip_init(&neg, cur->latest->sipkey, 1);
        pd_sip_padded(&neg, f->negotiation, f->negotiation_len);
        for (size_t i = 0; i < nk; i++) {
            uint32_t id = s_entry_get(cur, &neg, f, i, phase);
            s_entry_t *e = &cur->entries[id];
            if (e->last == seq)
                continue; /* a party named twice (never accepted) */
            cur->links[cur->links_off + cur->links_n++] = (s_link_t){
                id, e->last != 0 ? (uint32_t)(seq - e->last) : 0
            };
            r->n_keys++;
            e->last = seq;
            s_entry_set(cur, e, seq);
        }
    }
    bool corr = kind == PARLEY_KIND_CORRECTION;
    for (size_t i = 0; i < nr; i++) {
        uint64_t t = f->references[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = f->references[j] == t;
        if (seen || t >= seq || !s_held(cur, t))
            continue; /* named twice, not earlier, or gone */
        cur->links[cur->links_off + cur->links_n++] =
            (s_link_t){ (uint32_t)(seq - t), 0 };
        r->n_refs++;
        s_named_add(cur, t, 1, corr);
        s_queue(cur, t);
    }
    s_settle(cur);
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

typedef struct {
    const pd_current_t *cur;
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
    uint64_t seq = c->cur->entries[val].current;
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
pd_current_latest(const pd_current_t *cur, pd_entry_want_fn want, void *ctx,
                  pd_entry_t **out)
{
    s_collect_t c = { .cur = cur, .want = want, .ctx = ctx };
    *out = NULL;
    if (cur->latest_n > (size_t)INT32_MAX)
        return -ENOMEM;
    pd_hash_foreach(cur->latest, s_collect, &c);
    if (c.failed || c.n == 0) {
        free(c.v);
        return c.failed ? -ENOMEM : 0;
    }
    *out = c.v;
    return (int)c.n;
}

void
pd_current_get_stats(const pd_current_t *cur, pd_index_stats_t *out)
{
    out->latest = cur->latest_n;
    out->entries = cur->entries_live;
    out->records = cur->recs_n;
    out->links = cur->links_n;
    out->named = pd_hash_count(cur->named);
    out->withdrawn = cur->withdrawn;
}
