/*
 * state.h - `parley state` for people: the daemon's snapshot as a table
 * grouped negotiation -> phase, one line per party, or the same as one
 * JSON document.
 *
 * The entries, and the delivery that holds each, come from the library's
 * state table (parley_state_t: the daemon's snapshot with its entries,
 * corrections, retractions and expiry applied); the tool adds no rules of
 * its own. cli_state_rows() is the one place that chooses and orders the
 * entries shown.
 */
#ifndef PARLEY_CLI_STATE_H
#define PARLEY_CLI_STATE_H

#include "common.h"

/* One entry of the state: what one party stands at in one phase. */
typedef struct cli_state_row {
    const char *negotiation;    /* points into d */
    uint32_t phase;
    const char *party;          /* points into d */
    const parley_delivery_t *d; /* the update that holds the entry */
} cli_state_row_t;

/*
 * The entries (n of them, any order; one per negotiation, party and
 * phase, each with the delivery holding it) that match the filters
 * (negotiation/party/phase for the entry, then --status and --kind for
 * its update), sorted by negotiation, phase and party.
 *
 * Returns:   0 with *rows (n_rows entries) set, or -ENOMEM.
 * Ownership: *rows is the caller's (free()); it points where entries
 *            point, which must outlive it.
 */
int cli_state_rows(const cli_state_row_t *entries, size_t n,
                   const cli_filter_t *filters, cli_state_row_t **rows,
                   size_t *n_rows);

/*
 * Print rows as the table:
 *   gaza-ceasefire
 *     phase 0 (the deal as a whole)
 *       egypt   talks_in_progress  #12  2025-01-15 14:02  HEADLINE
 * (time: when the update was issued, local; text escaped as the default
 * output does). Returns 0 or -errno.
 */
int cli_state_print_table(FILE *out, const cli_state_row_t *rows,
                          size_t n);

/*
 * Print rows as one JSON document and a newline:
 *   {"seq": SNAPSHOT_SEQ, "negotiations": [{"negotiation": N, "phases":
 *    [{"phase": P, "parties": [{"party", "seq", "status", "kind",
 *    "references", "headline", "issued_at", "received_at", "signer_id",
 *    "signer_name"}]}]}]}
 * Returns 0 or -errno.
 */
int cli_state_print_json(FILE *out, const cli_state_row_t *rows, size_t n,
                         uint64_t seq);

#endif /* PARLEY_CLI_STATE_H */
