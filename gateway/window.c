/*
 * window.c - a ring of item pointers indexed by position.
 */
#include "window.h"

#include <errno.h>
#include <stdlib.h>

struct gw_window {
    gw_item_t **ring;       /* slot pos % cap holds position pos */
    size_t cap;             /* slots: max_items */
    size_t max_bytes;
    uint64_t first, end;    /* positions held: [first, end) */
    size_t bytes;           /* gw_item_bytes() of the items held */
    uint64_t covered_from;  /* first seq answered for */
    uint64_t last_seq;      /* last seq seen (covered_from - 1: none) */
};

gw_window_t *
gw_window_new(size_t max_items, size_t max_bytes)
{
    gw_window_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->cap = max_items > 0 ? max_items : 1;
    w->max_bytes = max_bytes;
    w->covered_from = 1;
    if ((w->ring = calloc(w->cap, sizeof(*w->ring))) == NULL) {
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    return w;
}

/* Drop the oldest item. */
static void
s_evict(gw_window_t *w)
{
    gw_item_t **slot = &w->ring[w->first % w->cap];
    w->bytes -= gw_item_bytes(*slot);
    /* Every seq up to the evicted one is now below what is answered for. */
    w->covered_from = (*slot)->seq_last + 1;
    gw_item_unref(*slot);
    *slot = NULL;
    w->first++;
}

void
gw_window_destroy(gw_window_t **w)
{
    if (w == NULL || *w == NULL)
        return;
    while ((*w)->first < (*w)->end)
        s_evict(*w);
    free((*w)->ring);
    free(*w);
    *w = NULL;
}

void
gw_window_restart(gw_window_t *w, uint64_t seq)
{
    while (w->first < w->end)
        s_evict(w);
    w->covered_from = seq > 0 ? seq : 1;
    w->last_seq = w->covered_from - 1;
}

void
gw_window_push(gw_window_t *w, gw_item_t *it)
{
    size_t bytes = gw_item_bytes(it);
    while (w->first < w->end
           && (w->end - w->first >= w->cap || w->bytes + bytes > w->max_bytes))
        s_evict(w);
    gw_item_ref(it);
    w->ring[w->end % w->cap] = it;
    w->end++;
    w->bytes += bytes;
    if (it->seq_last > w->last_seq)
        w->last_seq = it->seq_last;
}

void
gw_window_skip(gw_window_t *w, uint64_t seq)
{
    if (seq > w->last_seq)
        w->last_seq = seq;
}

uint64_t
gw_window_first_pos(const gw_window_t *w)
{
    return w->first;
}

uint64_t
gw_window_end_pos(const gw_window_t *w)
{
    return w->end;
}

gw_item_t *
gw_window_at(const gw_window_t *w, uint64_t pos)
{
    return pos >= w->first && pos < w->end ? w->ring[pos % w->cap] : NULL;
}

uint64_t
gw_window_pos_after(const gw_window_t *w, uint64_t seq)
{
    uint64_t lo = w->first, hi = w->end;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (w->ring[mid % w->cap]->seq_last <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t
gw_window_covered_from(const gw_window_t *w)
{
    return w->covered_from;
}

uint64_t
gw_window_last_seq(const gw_window_t *w)
{
    return w->last_seq;
}

size_t
gw_window_count(const gw_window_t *w)
{
    return (size_t)(w->end - w->first);
}

size_t
gw_window_bytes(const gw_window_t *w)
{
    return w->bytes;
}
