/*
 * state.c - cells from snapshots, plain updates applied live.
 */
#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char negotiation[PARLEY_SLUG_MAX + 1];
    uint32_t phase;
    char party[PARLEY_SLUG_MAX + 1];
    gw_item_t *it; /* the update current here (a reference) */
} s_cell_t;

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

/* Drop every cell. */
static void
s_cells_free(s_cell_t *cells, size_t n)
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
    s_cells_free((*st)->cells, (*st)->n);
    free(*st);
    *st = NULL;
}

void
gw_state_clear(gw_state_t *st)
{
    s_cells_free(st->cells, st->n);
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

/*
 * Make the update it current in the cell (negotiation, phase, party) of
 * cells unless a newer one is there. Returns 0 or -ENOMEM.
 */
static int
s_set(s_cell_t **cells, size_t *n, size_t *cap, gw_item_t *it,
      const char *party)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s_cmp(it->negotiation, it->phase, party, &(*cells)[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < *n && s_cmp(it->negotiation, it->phase, party, &(*cells)[lo]) == 0) {
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

/* A plain update seen after the snapshot: it is current for each of its
 * parties (unless a newer one is there already). */
static int
s_live(s_cell_t **cells, size_t *n, size_t *cap, gw_item_t *it)
{
    for (size_t i = 0; i < it->n_parties; i++) {
        int rc = s_set(cells, n, cap, it, it->parties[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * The cells a snapshot delivery stands for.
 *
 * Issue 19: the snapshot will carry, for each delivery, the entry keys
 * (negotiation, party, phase) it stands for, and libparley will expose
 * them; this function then sets exactly those cells. Until then a
 * snapshot delivery is taken to stand for each of its parties, as a
 * live update does. That is wrong for a delivery the daemon kept for one
 * party and that is no longer current for another: there the newer
 * update wins the cell anyway (s_set() keeps the newer), unless the
 * newer one was retracted.
 */
static int
s_cells_of(s_cell_t **cells, size_t *n, size_t *cap, gw_item_t *it)
{
    return s_live(cells, n, cap, it);
}

int
gw_state_install(gw_state_t *st, gw_item_t *const *items, size_t n,
                 uint64_t as_of, const gw_window_t *w)
{
    s_cell_t *cells = NULL;
    size_t nc = 0, cap = 0;
    uint64_t pending = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i]->type == GW_ITEM_UPDATE
            && s_cells_of(&cells, &nc, &cap, items[i]) < 0)
            goto nomem;
    /* What came live after the snapshot was made. */
    for (uint64_t pos = gw_window_pos_after(w, as_of);
         pos < gw_window_end_pos(w); pos++) {
        gw_item_t *it = gw_window_at(w, pos);
        if (it->type != GW_ITEM_UPDATE)
            continue;
        if (it->kind != PARLEY_KIND_UPDATE) {
            if (pending == 0)
                pending = it->seq;
        } else if (s_live(&cells, &nc, &cap, it) < 0) {
            goto nomem;
        }
    }
    s_cells_free(st->cells, st->n);
    st->cells = cells;
    st->n = nc;
    st->cap = cap;
    st->loaded = true;
    st->as_of = as_of;
    st->applied = gw_window_last_seq(w) > as_of ? gw_window_last_seq(w) : as_of;
    st->pending = pending;
    return pending != 0 ? 1 : 0;
nomem:
    s_cells_free(cells, nc);
    return -ENOMEM;
}

int
gw_state_apply(gw_state_t *st, gw_item_t *it)
{
    if (!st->loaded || it->type != GW_ITEM_UPDATE || it->seq <= st->as_of
        || it->seq <= st->applied)
        return 0;
    st->applied = it->seq;
    if (it->kind != PARLEY_KIND_UPDATE) {
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
