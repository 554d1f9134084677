/*
 * embedded.h - the embedded storage: parleyd's own segment log (store.h)
 * and its indexes (index.h) behind the storage seam (storage.h).
 *
 * submit checks the order against the local signer index (check 8:
 * replay, or a duplicate of a signed update still in the log or in the
 * batch),
 * appends with seq = the next local seq and indexes the update; commit
 * writes and fdatasyncs the batch (one sync per turn); applied then hands
 * out the batch's records from memory. Every submit completes at once.
 */
#ifndef PD_EMBEDDED_H
#define PD_EMBEDDED_H

#include "config.h"
#include "stats.h"
#include "storage.h"

/*
 * Open (creating if needed) the log in cfg->state_dir with cfg's segment
 * size, retention, fsync and record limit, and rebuild the indexes from
 * it, handing every record to scan as well (may be NULL); log what was
 * recovered, or what to fix. Reports seq, first_seq and the store's
 * counters in stats (may be NULL).
 *
 * Returns:   the storage, or NULL with *err set (-errno, -EBADMSG for a
 *            corrupt log or a record scan refused, -ENOMEM).
 * Ownership: the caller's; close with pd_storage_destroy(). cfg and scan
 *            are read during the call only; stats must outlive the
 *            storage.
 */
pd_storage_t *pd_embedded_open(const pd_config_t *cfg, pd_stats_t *stats,
                               const pd_storage_scan_t *scan, int *err);

/*
 * The local log as a replica of a cluster's stream (cluster.c): the
 * cluster storage decides what goes in and at which seq, and uses this
 * storage's commit, applied and read side unchanged. Loop thread only.
 *
 * A stream record that a node refuses (docs/cluster.md "What a node
 * checks") still takes its seq: it is logged as a void record, a short
 * payload that begins with protobuf field number 0, so it never decodes
 * as a SignedUpdate: replay and snapshot skip it, the feed never carries
 * it, and every node that refuses the record for the same reason logs
 * the same bytes.
 */
#define PD_EMBEDDED_VOID_BYTES (3 + PARLEY_KEYID_CHARS)

/* Make a void record's payload: why (a PARLEY_E* code) and the key id
 * the stream subject named (NULL or not 16 chars: none). */
void pd_embedded_void_make(uint8_t out[PD_EMBEDDED_VOID_BYTES], int reason,
                           const char *key_id);

/* Whether payload is a void record; then *reason (0 if unknown) and
 * key_id (16 chars, '-' for none), each if not NULL. */
bool pd_embedded_void_parse(const void *payload, size_t len, int *reason,
                            char key_id[PARLEY_KEYID_CHARS + 1]);

/*
 * Check 8 against what the log holds: signer_seq above the signer's
 * last, or the very bytes kept before.
 *
 * Returns:   1 (new), 0 (a duplicate of the record *orig), or
 *            PARLEY_EREPLAY (*last is the signer's last signer_seq).
 */
int pd_embedded_check(pd_storage_t *s, const uint8_t *signer,
                      uint64_t signer_seq, const void *env, size_t len,
                      uint64_t *orig, uint64_t *last);

/* The signer's last signer_seq and the seq that holds it (0 if retention
 * dropped it); false if the log knows no update of the signer. */
bool pd_embedded_signer_last(const pd_storage_t *s, const uint8_t *signer,
                             uint64_t *signer_seq, uint64_t *seq);

/*
 * Append a verified update (u: its body, decoded) at seq, which must be
 * pd_embedded_next_seq(), with received_at as given. Durable, applied
 * and handed out by applied() after the next commit.
 *
 * Returns:   0, PD_STORAGE_FULL (commit first), PARLEY_EUNAVAILABLE (no
 *            memory for the indexes), PARLEY_ETOOLARGE, -EINVAL (another
 *            seq), or a fatal error.
 */
int pd_embedded_put(pd_storage_t *s, uint64_t seq, int64_t received_at,
                    const void *env, size_t len, const uint8_t *signer,
                    const parley_update_t *u);

/* Append a void record at seq (see above). Returns as pd_embedded_put(). */
int pd_embedded_put_void(pd_storage_t *s, uint64_t seq, int64_t received_at,
                         int reason, const char *key_id);

/* The seq the next append must use. */
uint64_t pd_embedded_next_seq(const pd_storage_t *s);

/* Make an empty log start at seq (see pd_store_start_at()). */
int pd_embedded_start_at(pd_storage_t *s, uint64_t seq);

/* Payload bytes the next put may have before it answers
 * PD_STORAGE_FULL (0: no room for another record until a commit). */
size_t pd_embedded_room(const pd_storage_t *s);

/* Void records in the log (counted at open and since). */
uint64_t pd_embedded_voids(const pd_storage_t *s);

#endif /* PD_EMBEDDED_H */
