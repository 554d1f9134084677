/*
 * entries.h - the state entries of a snapshot, as the library keeps them
 * (library-internal).
 *
 * A snapshot reply names, for each delivery, the entries (negotiation,
 * party, phase) of the current state it holds (docs/protocol.md section
 * 8). The one-shot snapshot (query.c) and a subscriber's snapshot start
 * (sub.c) keep them here, checked, and hand out with each delivery the
 * entries it holds (parley_event_entry()).
 */
#ifndef PARLEY_ENTRIES_H
#define PARLEY_ENTRIES_H

#include "codec.h"
#include "parley.h"
#include "types.h"

#include <stddef.h>
#include <stdint.h>

/* A snapshot's entries, owned. */
typedef struct parley__entries {
    parley__state_key_t *by_key;  /* by negotiation, phase, party */
    parley__state_key_t *by_seq;  /* the same, by seq, then as by_key */
    size_t n;
} parley__entries_t;

/*
 * The seq of a Delivery's bytes, without verifying it; 0 if it does not
 * decode.
 */
uint64_t parley__delivery_seq(const void *data, size_t len);

/*
 * Take and check the entries of a SNAPSHOT reply: slugs and phases
 * valid, no entry twice, each entry's seq one of the deliveries, each
 * delivery that decodes holding at least one. A reply with deliveries and
 * no entries comes from a daemon that does not name them. e is emptied
 * first.
 *
 * Returns:   0, PARLEY_EPROTO (a check failed, or no entries) or -ENOMEM.
 */
int parley__entries_take(parley__entries_t *e, const parley__reply_t *r);

/*
 * The entries seq holds: *out points at the first (in e->by_seq), and the
 * count is returned (0: none).
 */
size_t parley__entries_of(const parley__entries_t *e, uint64_t seq,
                          const parley__state_key_t **out);

/*
 * Does update u hold these entries: its negotiation and phase, a party
 * it names? Returns 1 or 0.
 */
int parley__entries_agree(const parley__state_key_t *keys, size_t n,
                          const parley_update_t *u);

/* Hand out k's negotiation, party and phase (outputs may be NULL). */
void parley__state_key_out(const parley__state_key_t *k,
                           const char **negotiation, const char **party,
                           uint32_t *phase);

/* Free the entries; e is empty again. */
void parley__entries_free(parley__entries_t *e);

/* Compare two keys by negotiation, phase, party (not seq). */
int parley__state_key_cmp(const parley__state_key_t *a,
                          const parley__state_key_t *b);

#endif /* PARLEY_ENTRIES_H */
