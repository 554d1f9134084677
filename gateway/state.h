/*
 * state.h - where each negotiation stands: one cell per entry
 * (negotiation, phase, party) holding the update that is current there,
 * as the state model of docs/protocol.md section 5 says.
 *
 * The model (corrections, retractions, falling back, expiry) is
 * parleyd's, and libparley's state table (parley_state_t) is the one
 * client of it: gw_state_fetch() fills a table from the daemon's
 * snapshot on a worker and turns its entries into cells, and a
 * correction, retraction or gap that arrives live asks for a new one
 * (gw_state_apply() returns 1) instead of being applied here. Only a
 * plain update is applied live, to the cells of its parties, as the
 * table applies one (parley_state_apply()): it is the newest record
 * there is, so it holds every entry it names, or none if it has expired
 * already. The table cannot do that part itself here: it fetches on the
 * calling thread (the main loop must not block) and takes events, not
 * the window's updates that arrived while a snapshot was being made.
 *
 * board.js has the one place in the browser that reads the cells
 * (cellsFromState()).
 *
 * Threads: the main thread only, except gw_state_fetch() and
 * gw_cells_free() of cells no other thread has seen.
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

/* A cell: an entry and the update holding its state (a reference). */
typedef struct gw_cell {
    char negotiation[PARLEY_SLUG_MAX + 1];
    uint32_t phase;
    char party[PARLEY_SLUG_MAX + 1];
    gw_item_t *it;
} gw_cell_t;

/* Drop the references of n cells and free them. Accepts NULL. */
void gw_cells_free(gw_cell_t *cells, size_t n);

/*
 * Fetch the daemon's state into a libparley state table
 * (parley_state_fetch(): the snapshot, its entries, the options'
 * filters and keyring) and make its cells: one per entry, sorted by
 * negotiation, phase, party, the entries of one delivery sharing one
 * item.
 *
 * Returns:   0 with *cells, *n, *seq (the log the state reflects) and
 *            *rejected (deliveries that failed verification, left out)
 *            set; or a code of parley_state_new() or parley_state_fetch(),
 *            PARLEY_EPROTO (a delivery that cannot be rendered), -ENOMEM.
 * Ownership: *cells is the caller's (gw_cells_free()); opt is borrowed.
 * Threads:   any (a worker: it blocks up to the options' timeout); the
 *            items are the caller's alone until it shares them.
 */
int gw_state_fetch(const parley_call_options_t *opt, gw_cell_t **cells,
                   size_t *n, uint64_t *seq, size_t *rejected);

/* Make an empty state (not loaded). NULL with errno ENOMEM. */
gw_state_t *gw_state_new(void);

/* Free a state and its references; *st becomes NULL. Accepts NULL. */
void gw_state_destroy(gw_state_t **st);

/*
 * Replace the cells with those of a snapshot (gw_state_fetch()), made as
 * of seq as_of. The window's updates after as_of are applied on top, as
 * gw_state_apply() would have applied them.
 *
 * Returns:   1 if a correction or retraction after as_of is among them
 *            (the state needs another snapshot), 0 if the state is
 *            exact, -ENOMEM (the state is left as it was).
 * Ownership: the state takes the cells (n of them) and their references
 *            whatever it returns; *cells becomes NULL.
 */
int gw_state_install(gw_state_t *st, gw_cell_t **cells, size_t n,
                     uint64_t as_of, const gw_window_t *w);

/*
 * A live item (update or gap), in seq order. One the snapshot already
 * covers is ignored; so is everything before the first snapshot.
 *
 * Returns:   1 when it is a correction, a retraction or a gap (ask for a
 *            snapshot), 0 when it was applied or ignored, -ENOMEM.
 */
int gw_state_apply(gw_state_t *st, gw_item_t *it);

/* Forget everything (a different log); the next snapshot loads it. */
void gw_state_clear(gw_state_t *st);

/* Has a snapshot been installed? */
bool gw_state_loaded(const gw_state_t *st);

/*
 * The seq the cells are exact through: every update up to it is in them,
 * and none after it is missing from them except corrections,
 * retractions and gaps waiting for a snapshot (gw_state_stale()).
 */
uint64_t gw_state_seq(const gw_state_t *st);

/* Is a correction, retraction or gap waiting for the next snapshot? */
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
