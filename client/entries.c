/*
 * entries.c - a snapshot's state entries, checked and kept (entries.h).
 */
#include "entries.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
parley__state_key_cmp(const parley__state_key_t *a,
                      const parley__state_key_t *b)
{
    int c = strcmp(a->negotiation, b->negotiation);
    if (c == 0)
        c = (a->phase > b->phase) - (a->phase < b->phase);
    return c != 0 ? c : strcmp(a->party, b->party);
}

static int
s_by_key(const void *a, const void *b)
{
    return parley__state_key_cmp(a, b);
}

static int
s_by_seq(const void *a, const void *b)
{
    const parley__state_key_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return parley__state_key_cmp(x, y);
}

static int
s_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void
parley__state_key_out(const parley__state_key_t *k, const char **negotiation,
                      const char **party, uint32_t *phase)
{
    if (negotiation != NULL)
        *negotiation = k->negotiation;
    if (party != NULL)
        *party = k->party;
    if (phase != NULL)
        *phase = k->phase;
}

void
parley__entries_free(parley__entries_t *e)
{
    free(e->by_key);
    free(e->by_seq);
    e->by_key = e->by_seq = NULL;
    e->n = 0;
}

uint64_t
parley__delivery_seq(const void *data, size_t len)
{
    /* room for the copy protobuf-c makes of the envelope: no heap use */
    uint8_t buf[PARLEY_ENVELOPE_MAX + 1024];
    parley__arena_t arena;
    uint64_t seq = 0;
    int64_t received_at;
    parley__bytes_t update;
    parley__arena_init(&arena, buf, sizeof(buf));
    if (parley__delivery_decode_raw(data, len, &seq, &received_at, &update,
                                    &arena) < 0)
        seq = 0;
    parley__arena_reset(&arena);
    return seq;
}

int
parley__entries_take(parley__entries_t *e, const parley__reply_t *r)
{
    parley__entries_free(e);
    size_t n = r->n_entries, n_seqs = r->n_deliveries;
    if (n == 0)
        return n_seqs > 0 ? PARLEY_EPROTO : 0;
    uint64_t *have = n_seqs < SIZE_MAX / sizeof(*have)
                         ? malloc(n_seqs * sizeof(*have) + 1)
                         : NULL;
    e->by_key = calloc(n, sizeof(*e->by_key));
    e->by_seq = calloc(n, sizeof(*e->by_seq));
    if (have == NULL || e->by_key == NULL || e->by_seq == NULL) {
        free(have);
        parley__entries_free(e);
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const parley__entry_t *w = &r->entries[i];
        parley__state_key_t *k = &e->by_key[i];
        if (w->negotiation == NULL || w->party == NULL
            || !parley_slug_valid(w->negotiation)
            || !parley_slug_valid(w->party) || w->phase > PARLEY_PHASE_MAX
            || w->seq == 0) {
            rc = PARLEY_EPROTO;
            break;
        }
        strcpy(k->negotiation, w->negotiation);
        strcpy(k->party, w->party);
        k->phase = w->phase;
        k->seq = w->seq;
    }
    if (rc == 0) {
        e->n = n;
        qsort(e->by_key, n, sizeof(*e->by_key), s_by_key);
        for (size_t i = 1; i < n && rc == 0; i++)
            if (parley__state_key_cmp(&e->by_key[i - 1], &e->by_key[i]) == 0)
                rc = PARLEY_EPROTO; /* an entry twice */
        memcpy(e->by_seq, e->by_key, n * sizeof(*e->by_seq));
        qsort(e->by_seq, n, sizeof(*e->by_seq), s_by_seq);
        /* Every entry names a delivery, every delivery holds an entry. */
        size_t m = 0;
        for (size_t i = 0; i < n_seqs; i++) {
            uint64_t seq = parley__delivery_seq(r->deliveries[i].data,
                                                r->deliveries[i].len);
            if (seq != 0)
                have[m++] = seq;
        }
        qsort(have, m, sizeof(*have), s_u64_cmp);
        for (size_t i = 0, j = 0; i < m && rc == 0; i++) {
            if (i > 0 && have[i] == have[i - 1])
                continue;
            while (j < n && e->by_seq[j].seq < have[i])
                j++;
            if (j == n || e->by_seq[j].seq != have[i])
                rc = PARLEY_EPROTO; /* a delivery holding nothing */
        }
        for (size_t j = 0; j < n && rc == 0; j++)
            if (bsearch(&e->by_seq[j].seq, have, m, sizeof(*have),
                        s_u64_cmp) == NULL)
                rc = PARLEY_EPROTO; /* an entry of no delivery */
    }
    free(have);
    if (rc < 0)
        parley__entries_free(e);
    return rc;
}

size_t
parley__entries_of(const parley__entries_t *e, uint64_t seq,
                   const parley__state_key_t **out)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->by_seq[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < e->n && e->by_seq[end].seq == seq)
        end++;
    *out = end > lo ? &e->by_seq[lo] : NULL;
    return end - lo;
}

int
parley__entries_agree(const parley__state_key_t *keys, size_t n,
                      const parley_update_t *u)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].negotiation, u->negotiation) != 0
            || keys[i].phase != u->phase)
            return 0;
        int named = 0;
        for (size_t j = 0; j < u->n_parties && !named; j++)
            named = strcmp(keys[i].party, u->parties[j]) == 0;
        if (!named)
            return 0;
    }
    return 1;
}
