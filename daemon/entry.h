/*
 * entry.h - one entry of the current state, as the index hands it to the
 * storage seam and the seam to the query (docs/protocol.md section 5).
 *
 * Its own header so that storage.h (above the seam) and index.h (below
 * it) share the type without either including the other.
 */
#ifndef PD_ENTRY_H
#define PD_ENTRY_H

#include "parley.h"

#include <stdbool.h>
#include <stdint.h>

/* An entry (negotiation, party, phase) and the update holding its state. */
typedef struct pd_entry {
    char negotiation[PARLEY_SLUG_MAX + 1];
    char party[PARLEY_SLUG_MAX + 1];
    uint32_t phase;
    uint64_t seq;        /* the update (or correction) holding its state */
} pd_entry_t;

/* Whether the caller wants an entry (a filter); ctx is the caller's. */
typedef bool (*pd_entry_want_fn)(const pd_entry_t *e, void *ctx);

#endif /* PD_ENTRY_H */
