/*
 * state.c - a table of the current state (parley_state_t): the entries
 * (negotiation, party, phase) of parleyd's state and the update holding
 * each, kept in the order negotiation, phase, party.
 *
 * The table knows only what the daemon says: it is filled from a
 * snapshot (its entries say which delivery holds which entry), and a
 * live update, the newest record there is, holds every entry it names.
 * A live correction or retraction may bring back older updates that the
 * table never held (docs/protocol.md section 5), so rather than keep the
 * daemon's history with less data, the table asks for a new snapshot
 * (one-shot, with its filters) and takes that.
 */
#include "codec.h"
#include "entries.h"
#include "options.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A delivery the table holds, shared by the rows of its entries. */
typedef struct s_held {
    parley_delivery_t *d;
    size_t rows;                 /* rows that point here */
} s_held_t;

/* One row: an entry and the delivery holding its state. */
typedef struct s_row {
    parley__state_key_t key;     /* seq: the delivery's */
    s_held_t *held;
} s_row_t;

/* The rows of a table (also a table being built by a fetch). */
typedef struct s_rows {
    s_row_t *v;                  /* by negotiation, phase, party */
    size_t n, cap;
} s_rows_t;

struct parley_state {
    char *server;                /* copied options: endpoint list, */
    parley__filterbuf_t *filters;/* ... filters (n_filters), */
    const parley_filter_t **filter_ptrs;
    size_t n_filters;
    parley_call_options_t opt;   /* ... the call options pointing at them
                                    (curve and keyring borrowed) */
    s_rows_t rows;               /* the table */
    uint64_t seq;                /* the log up to here is reflected */
    size_t rejected;             /* deliveries that failed verification */
    bool stale;                  /* a fetch is due (the last one failed) */
};

/* Drop a row's hold on its delivery. */
static void
s_unhold(s_held_t **hp)
{
    s_held_t *h = *hp;
    *hp = NULL;
    if (h != NULL && --h->rows == 0) {
        parley_delivery_destroy(&h->d);
        free(h);
    }
}

static void
s_rows_free(s_rows_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        s_unhold(&r->v[i].held);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Index of the row of key, or where it would go (*found says which). */
static size_t
s_find(const s_rows_t *r, const parley__state_key_t *key, bool *found)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = parley__state_key_cmp(&r->v[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/*
 * Let key (with its seq) be held by h: replace the row's delivery, or
 * insert a row. Returns 0 or -ENOMEM.
 */
static int
s_set(s_rows_t *r, const parley__state_key_t *key, s_held_t *h)
{
    bool found;
    size_t at = s_find(r, key, &found);
    h->rows++; /* first: the old holder may be h itself */
    if (found) {
        s_unhold(&r->v[at].held);
    } else {
        if (r->n == r->cap) {
            size_t cap = r->cap > 0 ? r->cap * 2 : 32;
            s_row_t *v = realloc(r->v, cap * sizeof(*v));
            if (v == NULL) {
                h->rows--;
                return -ENOMEM;
            }
            r->v = v;
            r->cap = cap;
        }
        memmove(&r->v[at + 1], &r->v[at], (r->n - at) * sizeof(*r->v));
        r->n++;
    }
    r->v[at].key = *key;
    r->v[at].held = h;
    return 0;
}

/* Remove the row at. */
static void
s_remove(s_rows_t *r, size_t at)
{
    s_unhold(&r->v[at].held);
    memmove(&r->v[at], &r->v[at + 1], (r->n - at - 1) * sizeof(*r->v));
    r->n--;
}

/* Does an entry match the table's filters (one of them; none: all)? */
static bool
s_wanted(const parley_state_t *st, const char *negotiation,
         const char *party, uint32_t phase)
{
    if (st->n_filters == 0)
        return true;
    for (size_t i = 0; i < st->n_filters; i++)
        if (parley__filter_match_entry(&st->filters[i].filter, negotiation,
                                       party, phase))
            return true;
    return false;
}

/* A held copy of d with no rows yet, or NULL (-ENOMEM). */
static s_held_t *
s_hold(const parley_delivery_t *d)
{
    s_held_t *h = calloc(1, sizeof(*h));
    if (h != NULL && (h->d = parley_delivery_dup(d)) == NULL) {
        free(h);
        h = NULL;
    }
    return h;
}

/*
 * Give the entries keys[0..n) (a snapshot delivery's) to d in rows,
 * those the filters want. Returns 0 or -ENOMEM.
 */
static int
s_set_entries(parley_state_t *st, s_rows_t *rows, const parley_delivery_t *d,
              const parley__state_key_t *keys, size_t n)
{
    s_held_t *h = s_hold(d);
    if (h == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (s_wanted(st, keys[i].negotiation, keys[i].party, keys[i].phase))
            rc = s_set(rows, &keys[i], h);
    if (h->rows == 0) {
        h->rows = 1;
        s_unhold(&h);
    }
    return rc;
}

parley_state_t *
parley_state_new(const parley_call_options_t *opt)
{
    parley_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = parley__options_read(opt, sizeof(st->opt), &st->opt);
    if (rc == 0 && ((st->opt.n_filters > 0
                     && (st->opt.filters == NULL
                         || st->opt.n_filters > PARLEY__ANY_OF_MAX))
                    || parley__options_timeout(st->opt.timeout_ms)
                           == PARLEY_EARG))
        rc = PARLEY_EARG;
    if (rc == 0 && st->opt.server != NULL
        && (st->server = strdup(st->opt.server)) == NULL)
        rc = -ENOMEM;
    size_t n = rc == 0 ? st->opt.n_filters : 0;
    if (n > 0) {
        st->filters = calloc(n, sizeof(*st->filters));
        st->filter_ptrs = calloc(n, sizeof(*st->filter_ptrs));
        if (st->filters == NULL || st->filter_ptrs == NULL)
            rc = -ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++, st->n_filters++) {
        if (st->opt.filters[i] == NULL
            || parley__filterbuf_set(&st->filters[i], st->opt.filters[i]) < 0)
            rc = PARLEY_EARG;
        else
            st->filter_ptrs[i] = &st->filters[i].filter;
    }
    if (rc < 0) {
        parley_state_destroy(&st);
        errno = -rc;
        return NULL;
    }
    /* The options of every fetch point at the copies. */
    st->opt.server = st->server;
    st->opt.filters = st->filter_ptrs;
    st->opt.n_filters = st->n_filters;
    return st;
}

void
parley_state_destroy(parley_state_t **stp)
{
    if (stp == NULL || *stp == NULL)
        return;
    parley_state_t *st = *stp;
    s_rows_free(&st->rows);
    free(st->server);
    free(st->filters);
    free(st->filter_ptrs);
    free(st);
    *stp = NULL;
}

int
parley_state_fetch(parley_state_t *st)
{
    if (st == NULL)
        return PARLEY_EARG;
    parley_query_t *q = NULL;
    s_rows_t rows = { 0 };
    size_t rejected = 0;
    int rc = parley_snapshot(&st->opt, &q);
    while (rc == 0) {
        const parley_event_t *ev;
        if ((rc = parley_query_next(q, &ev)) <= 0)
            break;
        rc = 0;
        if (parley_event_type(ev) == PARLEY_EVENT_REJECTED)
            rejected++;
        else if (parley_event_type(ev) == PARLEY_EVENT_DELIVERY)
            rc = s_set_entries(st, &rows, parley_event_delivery(ev),
                               ev->entries, ev->n_entries);
    }
    if (rc < 0) {
        s_rows_free(&rows);
        parley_query_destroy(&q);
        st->stale = true;
        return rc;
    }
    s_rows_free(&st->rows);
    st->rows = rows;
    st->seq = parley_query_seq(q);
    st->rejected += rejected;
    st->stale = false;
    parley_query_destroy(&q);
    return 0;
}

/*
 * A live update, the newest record: it holds every entry it names that
 * the filters want (if it has expired, those entries have none). Returns
 * 1 if the table changed, 0 if not, or -ENOMEM.
 */
static int
s_apply_update(parley_state_t *st, const parley_delivery_t *d)
{
    const parley_update_t *u = &d->update;
    bool expired = u->expires_at != 0 && u->expires_at <= parley_now_ms();
    s_held_t *h = expired ? NULL : s_hold(d);
    int changed = 0, rc = 0;
    if (!expired && h == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < u->n_parties && rc == 0; i++) {
        if (!s_wanted(st, u->negotiation, u->parties[i], u->phase))
            continue;
        parley__state_key_t key = { .phase = u->phase, .seq = d->seq };
        strcpy(key.negotiation, u->negotiation);
        strcpy(key.party, u->parties[i]);
        bool found;
        size_t at = s_find(&st->rows, &key, &found);
        if (expired) {
            if (found) {
                s_remove(&st->rows, at);
                changed = 1;
            }
        } else if ((rc = s_set(&st->rows, &key, h)) == 0) {
            changed = 1;
        }
    }
    if (h != NULL && h->rows == 0) {
        h->rows = 1;
        s_unhold(&h);
    }
    return rc < 0 ? rc : changed;
}

int
parley_state_apply(parley_state_t *st, const parley_event_t *ev)
{
    if (st == NULL || ev == NULL)
        return PARLEY_EARG;
    int rc;
    if (st->stale && (rc = parley_state_fetch(st)) < 0)
        return rc;
    switch (parley_event_type(ev)) {
    case PARLEY_EVENT_DELIVERY:
        break;
    case PARLEY_EVENT_REJECTED:
        st->rejected++;
        /* What it said is not shown; what it changed may be: ask. */
        return (rc = parley_state_fetch(st)) < 0 ? rc : 1;
    case PARLEY_EVENT_GAP:
        /* Updates were missed: ask for the state as it is now. */
        return (rc = parley_state_fetch(st)) < 0 ? rc : 1;
    case PARLEY_EVENT_CAUGHT_UP:
        /* Everything up to its seq was handed out, and so applied: the
         * table reflects it, also where the newest records held no entry
         * (a snapshot's deliveries do not say how far it reached). */
        if (parley_event_seq(ev) > st->seq)
            st->seq = parley_event_seq(ev);
        return 0;
    default:
        return 0;
    }
    const parley_delivery_t *d = parley_event_delivery(ev);
    if (ev->n_entries > 0) {
        /* A snapshot's delivery (a subscriber that starts with the
         * snapshot): it holds the entries the daemon says. */
        rc = s_set_entries(st, &st->rows, d, ev->entries, ev->n_entries);
        if (rc == 0 && d->seq > st->seq)
            st->seq = d->seq;
        return rc < 0 ? rc : 1;
    }
    if (d->seq <= st->seq)
        return 0; /* reflected already */
    if (d->update.kind != PARLEY_KIND_UPDATE)
        return (rc = parley_state_fetch(st)) < 0 ? rc : 1;
    rc = s_apply_update(st, d);
    if (rc >= 0)
        st->seq = d->seq;
    return rc;
}

size_t
parley_state_expire(parley_state_t *st, int64_t now_ms)
{
    size_t removed = 0;
    if (st == NULL)
        return 0;
    for (size_t i = 0; i < st->rows.n;) {
        int64_t exp = st->rows.v[i].held->d->update.expires_at;
        if (exp != 0 && exp <= now_ms) {
            s_remove(&st->rows, i);
            removed++;
        } else {
            i++;
        }
    }
    return removed;
}

size_t
parley_state_count(const parley_state_t *st)
{
    return st != NULL ? st->rows.n : 0;
}

const parley_delivery_t *
parley_state_entry(const parley_state_t *st, size_t i,
                   const char **negotiation, const char **party,
                   uint32_t *phase)
{
    if (st == NULL || i >= st->rows.n)
        return NULL;
    const s_row_t *row = &st->rows.v[i];
    parley__state_key_out(&row->key, negotiation, party, phase);
    return row->held->d;
}

uint64_t
parley_state_seq(const parley_state_t *st)
{
    return st != NULL ? st->seq : 0;
}

size_t
parley_state_rejected(const parley_state_t *st)
{
    return st != NULL ? st->rejected : 0;
}

int
parley_state_stale(const parley_state_t *st)
{
    return st != NULL && st->stale;
}
