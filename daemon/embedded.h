/*
 * embedded.h - the embedded storage: parleyd's own segment log (store.h)
 * and its indexes (index.h) behind the storage seam (storage.h).
 *
 * submit checks the order against the local signer index (check 8:
 * replay, or a duplicate of bytes still in the log or in the batch),
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
 * it; log what was recovered, or what to fix. Reports seq, first_seq and
 * the store's counters in stats (may be NULL).
 *
 * Returns:   the storage, or NULL with *err set (-errno, -EBADMSG for a
 *            corrupt log, -ENOMEM).
 * Ownership: the caller's; close with pd_storage_destroy(). cfg is read
 *            during the call only; stats must outlive the storage.
 */
pd_storage_t *pd_embedded_open(const pd_config_t *cfg, pd_stats_t *stats,
                               int *err);

#endif /* PD_EMBEDDED_H */
