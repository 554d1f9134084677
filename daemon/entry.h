/*
 * entry.h - one entry of the current state, as the index hands it to the
 * storage seam and the seam to the query (docs/protocol.md section 5).
 *
 * Its own header so that storage.h (above the seam) and index.h (below
 * it) share the type without either including the other. It is the
 * library's own entry type (client/types.h), which the library's
 * snapshot code orders and checks the same way (client/entries.h).
 */
#ifndef PD_ENTRY_H
#define PD_ENTRY_H

#include "parley.h"
#include "types.h"

#include <stdbool.h>
#include <stdint.h>

/* An entry (negotiation, party, phase) and the seq of the update (or
 * correction) holding its state. */
typedef parley__state_key_t pd_entry_t;

/* Whether the caller wants an entry (a filter); ctx is the caller's. */
typedef bool (*pd_entry_want_fn)(const pd_entry_t *e, void *ctx);

#endif /* PD_ENTRY_H */
