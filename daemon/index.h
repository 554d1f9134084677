/*
 * index.h - parleyd's in-memory indexes over the log.
 *
 * Both are rebuilt from the log at start (pd_index_scan() is the
 * pd_store_open() callback), so replay protection and the snapshot survive
 * restarts and kill -9:
 *
 *   signers  32-byte public key -> last accepted signer_seq, and for each
 *            signer the (signer_seq, seq) of its updates still in the log,
 *            ascending (signer_seq only grows per signer), so that a
 *            resend of accepted bytes can be answered with its seq after
 *            a binary search and one byte comparison with the log
 *   state    the current state of docs/protocol.md section 5: for each
 *            entry (negotiation, party, phase) the newest update or
 *            correction naming it that no withdrawal in force names, and
 *            what is needed to fall back when one does: the entry's
 *            earlier candidates (a link per record and party), and for
 *            every correction and retraction the seqs it names, with, for
 *            each record named, how many withdrawals in force name it
 *
 * The state follows applied records (pd_index_apply(), in seq order,
 * each once), the same calls whoever applies them: the embedded storage
 * after its commit, the scan at start, a cluster follower. Memory per
 * held record: 8 bytes, 8 more per party of an update or correction and
 * per seq a correction or retraction names, and a hash entry for each
 * record that something names (docs/operations.md, "Memory").
 *
 * The signers and the reservations are index.c's, the state current.c's
 * (behind current.h, which only index.c includes). The signer and entry
 * tables are open-addressing hash tables, pd_hash_t (hash.h).
 */
#ifndef PD_INDEX_H
#define PD_INDEX_H

#include "entry.h"
#include "facts.h"
#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pd_index pd_index_t;

/*
 * Make empty indexes.
 *
 * Returns:   the indexes, or NULL with errno set.
 */
pd_index_t *pd_index_new(void);

/* Free the indexes; *idx becomes NULL. Accepts NULL. */
void pd_index_destroy(pd_index_t **idx);

/*
 * Make room for one more update by signer naming n_parties parties and
 * n_references seqs, so that adding it cannot fail (the daemon reserves
 * before it appends to the log). Reservations add up until the updates
 * are applied, so an update's state may be applied later
 * (pd_index_apply()).
 *
 * Returns:   0 or -ENOMEM.
 */
int pd_index_reserve(pd_index_t *idx,
                     const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                     size_t n_parties, size_t n_references);

/*
 * Make room for one more seq that holds no update (a cluster node's void
 * record, docs/cluster.md), applied with pd_index_apply(idx, seq, NULL).
 *
 * Returns:   0 or -ENOMEM.
 */
int pd_index_reserve_empty(pd_index_t *idx);

/*
 * Give back the reservation of an update that will not be applied after
 * all (its append was refused): the counts given to pd_index_reserve().
 */
void pd_index_unreserve(pd_index_t *idx, size_t n_parties,
                        size_t n_references);

/*
 * Record an accepted update at once: pd_index_add_signer() and
 * pd_index_apply(). Reserve for it first.
 */
void pd_index_add(pd_index_t *idx, uint64_t seq,
                  const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                  const parley_update_t *u);

/*
 * The order half of adding an update, when it is accepted: raise the
 * signer's last seq and remember (signer_seq, seq) for dedupe. Reserve
 * for the update first.
 */
void pd_index_add_signer(pd_index_t *idx, uint64_t seq,
                         const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                         uint64_t signer_seq);

/*
 * The state half, when the update is durable: apply it (f, see facts.h)
 * to the current state and release its reservation. Records are applied
 * in seq order, every seq once; f NULL stands for a record that does not
 * decode (it holds no state and withdraws nothing). A seq that skips
 * ahead of the last one applied is logged, and the state forgets
 * everything before it (as retention would).
 */
void pd_index_apply(pd_index_t *idx, uint64_t seq, const parley__facts_t *f);

/*
 * pd_store_scan_fn for pd_store_open(); ctx is the pd_index_t. Reads the
 * fields the indexes use from a logged record (no signature check: the
 * log holds only what was verified before) and adds it. Records in the
 * canonical encoding the daemon accepts are read in place by
 * parley__facts_read() (facts.h); anything else goes through the full decoder,
 * which decides as before. A record that does not decode is logged and
 * skipped.
 *
 * Returns:   0, or -ENOMEM (which stops the scan).
 */
int pd_index_scan(void *ctx, uint64_t seq, int64_t received_at,
                  const uint8_t *payload, size_t len);

/* Returns true and sets *last if the signer has an accepted update. */
bool pd_index_signer_last(const pd_index_t *idx,
                          const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                          uint64_t *last);

/*
 * Seq of the logged update by signer with this signer_seq, or 0 if none is
 * held. The caller confirms that the bytes resent are the logged bytes.
 */
uint64_t pd_index_dedupe_lookup(const pd_index_t *idx,
                                const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                                uint64_t signer_seq);

/*
 * The entries that have a state now and that want (NULL: all) accepts,
 * in no particular order. Expiry is not looked at: the index does not
 * read the records (the caller does, and leaves out an entry whose
 * update has expired; it does not fall back, section 5).
 *
 * Returns:   the count, or -ENOMEM.
 * Ownership: *out is the caller's; free() it (NULL when the count is 0).
 */
int pd_index_latest(const pd_index_t *idx, pd_entry_want_fn want, void *ctx,
                    pd_entry_t **out);

/*
 * Forget what points below first_seq (retention removed it): dedupe
 * pairs, and the records below it in the state. An entry whose state was
 * below it has no state now (what was before is gone too); one that
 * falls back later never reaches below it. Signer seqs are kept.
 */
void pd_index_forget_before(pd_index_t *idx, uint64_t first_seq);

/* Sizes, for stats and tests. */
typedef struct pd_index_stats {
    size_t signers;      /* signers with an accepted update */
    size_t dedupe;       /* (signer_seq, seq) pairs remembered */
    size_t latest;       /* entries (negotiation, party, phase) with state */
    size_t entries;      /* entries known, with a state or not */
    size_t records;      /* records held by the state */
    size_t links;        /* their candidate and reference links */
    size_t named;        /* records some correction or retraction names */
    size_t withdrawn;    /* records a withdrawal in force names */
    uint64_t scanned;    /* records added by pd_index_scan() */
    uint64_t skipped;    /* logged records that did not decode */
} pd_index_stats_t;

void pd_index_get_stats(const pd_index_t *idx, pd_index_stats_t *out);

#endif /* PD_INDEX_H */
