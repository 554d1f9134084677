/*
 * state.h - where each negotiation stands: one cell per (negotiation,
 * phase, party) holding the update that is current there.
 *
 * The rules of what is current (corrections, retractions, expiry) belong
 * to parleyd: the cells are made from its snapshot (parley_snapshot()),
 * and a correction or retraction that arrives live asks for a new one
 * (gw_state_apply() returns 1) instead of being applied here. Only a
 * plain update is applied live, to the cells of its parties, the one
 * rule every model of the state shares: a newer update for a cell
 * replaces the one there.
 *
 * This file is the one place in C that turns a snapshot into cells
 * (board.js has the one place in the browser). See s_cells_of() for how
 * the cells of a snapshot delivery are found today, and issue 19 for
 * what replaces it.
 *
 * Threads: the main thread only.
 */
#ifndef GW_STATE_H
#define GW_STATE_H

#include "buf.h"
#include "item.h"
#include "query.h"
#include "window.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_state gw_state_t;

/* Make an empty state (not loaded). NULL with errno ENOMEM. */
gw_state_t *gw_state_new(void);

/* Free a state and its references; *st becomes NULL. Accepts NULL. */
void gw_state_destroy(gw_state_t **st);

/*
 * Replace the cells with a snapshot: its update items (in seq order),
 * made as of seq as_of. The window's updates after as_of are applied on
 * top, as gw_state_apply() would have applied them.
 *
 * Returns:   1 if a correction or retraction after as_of is among them
 *            (the state needs another snapshot), 0 if the state is
 *            exact, -ENOMEM (the state is left as it was).
 * Ownership: the state takes its own references to the items.
 */
int gw_state_install(gw_state_t *st, gw_item_t *const *items, size_t n,
                     uint64_t as_of, const gw_window_t *w);

/*
 * A live update, in seq order. One the snapshot already covers is
 * ignored; so is everything before the first snapshot.
 *
 * Returns:   1 when it is a correction or retraction (ask for a snapshot),
 *            0 when it was applied or ignored, -ENOMEM.
 */
int gw_state_apply(gw_state_t *st, gw_item_t *it);

/* Forget everything (a different log); the next snapshot loads it. */
void gw_state_clear(gw_state_t *st);

/* Has a snapshot been installed? */
bool gw_state_loaded(const gw_state_t *st);

/*
 * The seq the cells are exact through: every update up to it is in them,
 * and none after it is missing from them except corrections and
 * retractions waiting for a snapshot (gw_state_stale()).
 */
uint64_t gw_state_seq(const gw_state_t *st);

/* Is a correction or retraction waiting for the next snapshot? */
bool gw_state_stale(const gw_state_t *st);

/* The earliest expires_at after now_ms among the cells, or 0. */
int64_t gw_state_next_expiry(const gw_state_t *st, int64_t now_ms);

/* Number of cells. */
size_t gw_state_cells(const gw_state_t *st);

/*
 * Append the cells that match f to out as JSON, grouped negotiation ->
 * phase -> party, each holding its update's JSON (docs/http.md):
 *   "negotiations":[{"negotiation":N,"phases":[{"phase":P,
 *                    "parties":{PARTY:UPDATE,...}},...]},...]
 * Returns 0 or -ENOMEM.
 */
int gw_state_json(const gw_state_t *st, const gw_filter_t *f, gw_buf_t *out);

#endif /* GW_STATE_H */
