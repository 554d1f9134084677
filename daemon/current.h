/*
 * current.h - the current state (docs/protocol.md section 5), the half of
 * parleyd's indexes that follows applied records: per entry
 * (negotiation, party, phase) the newest candidate no withdrawal in force
 * names, and what is needed to fall back when one does. current.c says
 * how and what it costs.
 *
 * Only index.c includes this header: callers go through pd_index_*
 * (index.h), which adds the per-signer index and the reservations.
 *
 * Threads: none of its own; the caller's thread, one at a time.
 */
#ifndef PD_CURRENT_H
#define PD_CURRENT_H

#include "entry.h"
#include "facts.h"
#include "index.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pd_current pd_current_t;

/*
 * Make an empty state.
 *
 * Returns:   the state, or NULL with errno set.
 */
pd_current_t *pd_current_new(void);

/* Free the state; *cur becomes NULL. Accepts NULL. */
void pd_current_destroy(pd_current_t **cur);

/*
 * Make room for recs more records holding keys entry links (one per party
 * of an update or correction, each maybe a new entry) and refs reference
 * links (one per seq a correction or retraction names), so that applying
 * them allocates nothing. The counts are totals of what is reserved and
 * not yet applied, not increments: the caller keeps them (index.c).
 *
 * Returns:   0 or -ENOMEM (also when a count would pass 32 bits).
 */
int pd_current_room(pd_current_t *cur, size_t recs, size_t keys,
                    size_t refs);

/*
 * Apply the record seq (f its facts; NULL: it did not decode and holds
 * nothing) as pd_index_apply() describes: in seq order, every seq once;
 * one applied again is logged and ignored, one that skips ahead is
 * logged and the state before it forgotten. Allocates nothing when room
 * was made for it.
 */
void pd_current_apply(pd_current_t *cur, uint64_t seq,
                      const parley__facts_t *f);

/* Take the records below first off the state (retention, or a gap). */
void pd_current_forget(pd_current_t *cur, uint64_t first);

/*
 * The entries with a state that want (NULL: all) accepts, as
 * pd_index_latest().
 *
 * Returns:   the count, or -ENOMEM.
 * Ownership: *out is the caller's; free() it (NULL when the count is 0).
 */
int pd_current_latest(const pd_current_t *cur, pd_entry_want_fn want,
                      void *ctx, pd_entry_t **out);

/*
 * Fill the state's fields of out: latest, entries, records, links, named,
 * withdrawn. The others are left as they are.
 */
void pd_current_get_stats(const pd_current_t *cur, pd_index_stats_t *out);

#endif /* PD_CURRENT_H */
