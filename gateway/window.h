/*
 * window.h - the recent history the gateway holds: a ring of items
 * (updates and gaps) in seq order, bounded by count and bytes.
 *
 * Items are numbered by position, from 0 at the start and never reused,
 * so a reader (an event stream, a page of /v1/updates) keeps a position
 * that stays meaningful while the ring turns: positions below
 * gw_window_first_pos() are gone.
 *
 * The window also knows which seqs it answers for: every seq from
 * gw_window_covered_from() to gw_window_last_seq() is in it, or was a
 * delivery the gateway refused to pass on, or lies in a gap item. A
 * reader that needs seqs below covered_from must ask parleyd (replay).
 *
 * Threads: the main thread only.
 */
#ifndef GW_WINDOW_H
#define GW_WINDOW_H

#include "item.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gw_window gw_window_t;

/*
 * Make an empty window of at most max_items items and max_bytes bytes
 * (gw_item_bytes()); the newest item is always kept.
 *
 * Returns:   the window, or NULL with errno ENOMEM.
 * Ownership: the caller's; free with gw_window_destroy().
 */
gw_window_t *gw_window_new(size_t max_items, size_t max_bytes);

/* Free the window and drop its references; *w becomes NULL. */
void gw_window_destroy(gw_window_t **w);

/*
 * Empty the window and say that it answers for seqs from seq on (what
 * a subscription starting there will bring). Positions go on from where
 * they were, so readers see everything before as gone.
 */
void gw_window_restart(gw_window_t *w, uint64_t seq);

/*
 * Append an item (its seq above everything in the window); the window
 * takes a reference. The oldest items go when a bound is passed.
 */
void gw_window_push(gw_window_t *w, gw_item_t *it);

/* Say that seq was handled without an item (a delivery refused). */
void gw_window_skip(gw_window_t *w, uint64_t seq);

/* Positions held: [first, end). */
uint64_t gw_window_first_pos(const gw_window_t *w);
uint64_t gw_window_end_pos(const gw_window_t *w);

/* The item at pos, or NULL outside [first, end). Borrowed. */
gw_item_t *gw_window_at(const gw_window_t *w, uint64_t pos);

/* The position of the first item with seq_last above seq (end if none). */
uint64_t gw_window_pos_after(const gw_window_t *w, uint64_t seq);

/* The first seq the window answers for, and the last one it has seen
 * (covered_from - 1 when none yet). */
uint64_t gw_window_covered_from(const gw_window_t *w);
uint64_t gw_window_last_seq(const gw_window_t *w);

/* Items and bytes held. */
size_t gw_window_count(const gw_window_t *w);
size_t gw_window_bytes(const gw_window_t *w);

#endif /* GW_WINDOW_H */
