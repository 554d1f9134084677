/*
 * state.c - cells from snapshots, plain updates applied live.
 */
#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef gw_cell_t s_cell_t;

struct gw_state {
    s_cell_t *cells;  /* sorted by negotiation, phase, party */
    size_t n, cap;
    bool loaded;      /* a snapshot was installed */
    uint64_t as_of;   /* the snapshot's seq */
    uint64_t applied; /* the last live seq looked at */
    uint64_t pending; /* first correction/retraction after as_of; 0 none */
};

gw_state_t *
gw_state_new(void)
{
    return calloc(1, sizeof(gw_state_t));
}

void
gw_cells_free(gw_cell_t *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gw_item_unref(cells[i].it);
    free(cells);
}

void
gw_state_destroy(gw_state_t **st)
{
    if (st == NULL || *st == NULL)
        return;
    gw_cells_free((*st)->cells, (*st)->n);
    free(*st);
    *st = NULL;
}

void
gw_state_clear(gw_state_t *st)
{
    gw_cells_free(st->cells, st->n);
    memset(st, 0, sizeof(*st));
}

static int
s_cmp(const char *neg, uint32_t phase, const char *party, const s_cell_t *c)
{
    int r = strcmp(neg, c->negotiation);
    if (r != 0)
        return r;
    if (phase != c->phase)
        return phase < c->phase ? -1 : 1;
    return strcmp(party, c->party);
}

/* Index of the cell (negotiation of it, phase of it, party), or where it
 * would go (*found says which). */
static size_t
s_find(const s_cell_t *cells, size_t n, const gw_item_t *it,
       const char *party, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s_cmp(it->negotiation, it->phase, party, &cells[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < n && s_cmp(it->negotiation, it->phase, party, &cells[lo]) == 0;
    return lo;
}

/*
 * Make the update it current in the cell (negotiation, phase, party) of
 * cells unless a newer one is there. Returns 0 or -ENOMEM.
 */
static int
s_set(s_cell_t **cells, size_t *n, size_t *cap, gw_item_t *it,
      const char *party)
{
    bool found;
    size_t lo = s_find(*cells, *n, it, party, &found);
    if (found) {
        s_cell_t *c = &(*cells)[lo];
        if (c->it->seq < it->seq) {
            gw_item_ref(it);
            gw_item_unref(c->it);
            c->it = it;
        }
        return 0;
    }
    if (*n == *cap) {
        size_t grown = *cap > 0 ? *cap * 2 : 64;
        s_cell_t *more = realloc(*cells, grown * sizeof(*more));
        if (more == NULL)
            return -ENOMEM;
        *cells = more;
        *cap = grown;
    }
    memmove(&(*cells)[lo + 1], &(*cells)[lo], (*n - lo) * sizeof(**cells));
    s_cell_t *c = &(*cells)[lo];
    memcpy(c->negotiation, it->negotiation, sizeof(c->negotiation));
    c->phase = it->phase;
    memcpy(c->party, party, sizeof(c->party));
    gw_item_ref(it);
    c->it = it;
    (*n)++;
    return 0;
}

/* Remove the cell (negotiation, phase, party) of it, if there is one. */
static void
s_drop(s_cell_t *cells, size_t *n, const gw_item_t *it, const char *party)
{
    bool found;
    size_t at = s_find(cells, *n, it, party, &found);
    if (!found)
        return;
    gw_item_unref(cells[at].it);
    memmove(&cells[at], &cells[at + 1], (*n - at - 1) * sizeof(*cells));
    (*n)--;
}

/*
 * A plain update seen after the snapshot, the newest record there is:
 * it holds every entry it names, and if it has expired already those
 * entries have no state (nothing older comes back in its place), as in
 * libparley's state table (parley_state_apply()).
 */
static int
s_live(s_cell_t **cells, size_t *n, size_t *cap, gw_item_t *it)
{
    bool expired = it->expires_at != 0 && it->expires_at <= parley_now_ms();
    for (size_t i = 0; i < it->n_parties; i++) {
        if (expired) {
            s_drop(*cells, n, it, it->parties[i]);
            continue;
        }
        int rc = s_set(cells, n, cap, it, it->parties[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* An item per distinct delivery of a fetched table, for gw_state_fetch(). */
typedef struct {
    uint64_t seq;
    size_t row;
} s_by_seq_t;

static int
s_seq_cmp(const void *a, const void *b)
{
    const s_by_seq_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

int
gw_state_fetch(const parley_call_options_t *opt, gw_cell_t **out, size_t *n,
               uint64_t *seq, size_t *rejected)
{
    *out = NULL;
    *n = 0;
    parley_state_t *t = parley_state_new(opt);
    if (t == NULL)
        return -errno;
    int rc = parley_state_fetch(t);
    size_t count = rc == 0 ? parley_state_count(t) : 0;
    gw_cell_t *cells = count > 0 ? calloc(count, sizeof(*cells)) : NULL;
    s_by_seq_t *order = count > 0 ? calloc(count, sizeof(*order)) : NULL;
    if (count > 0 && (cells == NULL || order == NULL))
        rc = -ENOMEM;
    /* The table's rows come in the cells' order (negotiation, phase,
     * party); the rows of one delivery share one item. */
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *neg, *party;
        const parley_delivery_t *d =
            parley_state_entry(t, i, &neg, &party, &cells[i].phase);
        snprintf(cells[i].negotiation, sizeof(cells[i].negotiation), "%s", neg);
        snprintf(cells[i].party, sizeof(cells[i].party), "%s", party);
        order[i] = (s_by_seq_t){ .seq = parley_delivery_seq(d), .row = i };
    }
    if (rc == 0 && count > 0)
        qsort(order, count, sizeof(*order), s_seq_cmp);
    gw_item_t *it = NULL;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (i == 0 || order[i].seq != order[i - 1].seq) {
            it = gw_item_update(parley_state_entry(t, order[i].row, NULL,
                                                   NULL, NULL));
            if (it == NULL) {
                rc = errno == ENOMEM ? -ENOMEM : PARLEY_EPROTO;
                break;
            }
        } else {
            gw_item_ref(it);
        }
        cells[order[i].row].it = it;
    }
    if (rc == 0) {
        *out = cells;
        *n = count;
        *seq = parley_state_seq(t);
        *rejected = parley_state_rejected(t);
    } else {
        gw_cells_free(cells, count); /* unref of NULL items is a no-op */
    }
    free(order);
    parley_state_destroy(&t);
    return rc;
}

/*
 * Does a live item need a new snapshot? A correction or retraction may
 * bring back older updates (the model falls back), and a gap hides
 * updates that may hold entries: the state table fetches again on
 * those (parley_state_apply()), and so does the gateway.
 */
static bool
s_needs_snapshot(const gw_item_t *it)
{
    return it->type == GW_ITEM_GAP || it->kind != PARLEY_KIND_UPDATE;
}

int
gw_state_install(gw_state_t *st, gw_cell_t **taken, size_t n, uint64_t as_of,
                 const gw_window_t *w)
{
    s_cell_t *cells = *taken;
    size_t nc = n, cap = n;
    uint64_t pending = 0;
    *taken = NULL;
    /* What came live after the snapshot was made. */
    for (uint64_t pos = gw_window_pos_after(w, as_of);
         pos < gw_window_end_pos(w); pos++) {
        gw_item_t *it = gw_window_at(w, pos);
        if (s_needs_snapshot(it)) {
            if (pending == 0)
                pending = it->seq;
        } else if (s_live(&cells, &nc, &cap, it) < 0) {
            goto nomem;
        }
    }
    gw_cells_free(st->cells, st->n);
    st->cells = cells;
    st->n = nc;
    st->cap = cap;
    st->loaded = true;
    st->as_of = as_of;
    st->applied = gw_window_last_seq(w) > as_of ? gw_window_last_seq(w) : as_of;
    st->pending = pending;
    return pending != 0 ? 1 : 0;
nomem:
    gw_cells_free(cells, nc);
    return -ENOMEM;
}

int
gw_state_apply(gw_state_t *st, gw_item_t *it)
{
    if (!st->loaded || it->seq_last <= st->as_of || it->seq_last <= st->applied)
        return 0;
    st->applied = it->seq_last;
    if (s_needs_snapshot(it)) {
        if (st->pending == 0)
            st->pending = it->seq;
        return 1;
    }
    return s_live(&st->cells, &st->n, &st->cap, it);
}

bool
gw_state_loaded(const gw_state_t *st)
{
    return st->loaded;
}

uint64_t
gw_state_seq(const gw_state_t *st)
{
    if (st->pending != 0)
        return st->pending - 1;
    return st->applied > st->as_of ? st->applied : st->as_of;
}

bool
gw_state_stale(const gw_state_t *st)
{
    return st->pending != 0;
}

int64_t
gw_state_next_expiry(const gw_state_t *st, int64_t now_ms)
{
    int64_t next = 0;
    for (size_t i = 0; i < st->n; i++) {
        int64_t e = st->cells[i].it->expires_at;
        if (e > now_ms && (next == 0 || e < next))
            next = e;
    }
    return next;
}

size_t
gw_state_cells(const gw_state_t *st)
{
    return st->n;
}

int
gw_state_json(const gw_state_t *st, const gw_filter_t *f, gw_buf_t *out)
{
    const s_cell_t *neg = NULL, *row = NULL;
    gw_buf_str(out, "\"negotiations\":[");
    for (size_t i = 0; i < st->n; i++) {
        const s_cell_t *c = &st->cells[i];
        if (!gw_filter_match_cell(f, c->negotiation, c->party, c->phase))
            continue;
        /* Slugs and numbers need no escaping. */
        if (neg == NULL || strcmp(neg->negotiation, c->negotiation) != 0) {
            gw_buf_printf(out, "%s{\"negotiation\":\"%s\",\"phases\":[",
                          neg == NULL ? "" : "}}]},", c->negotiation);
            neg = c;
            row = NULL;
        }
        if (row == NULL || row->phase != c->phase) {
            gw_buf_printf(out, "%s{\"phase\":%" PRIu32 ",\"parties\":{",
                          row == NULL ? "" : "}},", c->phase);
            row = c;
        } else {
            gw_buf_str(out, ",");
        }
        gw_buf_printf(out, "\"%s\":", c->party);
        gw_buf_add(out, gw_item_json(c->it), c->it->json_len);
    }
    gw_buf_str(out, neg == NULL ? "]" : "}}]}]");
    return out->err;
}
