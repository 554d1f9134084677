/*
 * cluster.h - the cluster storage: parleyd on a NATS JetStream stream
 * (storage.h; docs/cluster.md).
 *
 * The stream (backbone.h) holds every accepted update of the cluster and
 * its stream sequence is the parley seq. This storage
 *
 *   - submits an update that passed checks 1-7 after check 8 against what
 *     this node has applied, on the signer's subject, and completes it
 *     once JetStream has stored it (the PubAck) and this node's follower
 *     has applied that seq: the ack means "replicated to a quorum and in
 *     this node's local log";
 *   - follows the stream into a local replica (an embedded storage:
 *     embedded.h), verifying every record itself before it is applied:
 *     a record this node refuses keeps its seq as a void record, so that
 *     every node's log holds the same bytes at the same seqs;
 *   - answers reads from the local replica only, reports "catching up"
 *     while it is behind the stream, and refuses publishes unavailable
 *     while JetStream cannot store them.
 *
 * What a node checks in a stream record, in order (each failure voids the
 * record, with the code as its reason, logged and counted):
 *
 *   1. the subject names a signer: "<stream>.u.<key id>"
 *   2. the envelope decodes and its signer is in the keyring (MALFORMED,
 *      UNKNOWN_SIGNER); its key id is the subject's (MALFORMED)
 *   3. the signature (BAD_SIGNATURE), unless these are the very bytes this
 *      node checked when it submitted them
 *   4. the body decodes and validates, and the keyring allows it
 *      (INVALID, FORBIDDEN)
 *   5. issued_at within 2 * max_clock_skew of the stream's time for the
 *      record (STALE, FUTURE)
 *   6. signer_seq above the signer's last applied one (REPLAY): the same
 *      bytes again under a new seq, or an update that JetStream 2.9
 *      stored after a higher signer_seq of the same signer (two nodes
 *      racing, see backbone.h), are void
 *
 * Every input of these checks is in the stream or in configuration the
 * nodes share (keyring, max_clock_skew), so nodes with the same
 * configuration make the same decisions.
 */
#ifndef PD_CLUSTER_H
#define PD_CLUSTER_H

#include "config.h"
#include "stats.h"
#include "storage.h"

/*
 * Open the local replica in cfg->state_dir, connect to cfg->backbone and
 * make sure the stream exists with parleyd's settings (creating it if
 * missing), check that the state directory is a replica of this very
 * stream (or empty), and start following it from the local head + 1.
 * The replica's records found at open go to scan as well (may be NULL;
 * embedded.h). Blocks until JetStream answers, for up to 10 s; fails (logged, with
 * what to fix) when it does not. Registers the cluster_* stats and the
 * local log's in stats.
 *
 * Returns:   the storage, or NULL with *err set (-EINVAL options,
 *            -EEXIST a stream or a state directory that contradicts the
 *            configuration, -ETIMEDOUT, -EACCES, -EPROTO, -ENOMEM, or the
 *            local log's error).
 * Ownership: the caller's; close with pd_storage_destroy(). cfg and scan
 *            are read during the call only; stats must outlive the
 *            storage.
 * Threads:   the loop thread; the backbone runs its own threads.
 */
pd_storage_t *pd_cluster_open(const pd_config_t *cfg, pd_stats_t *stats,
                              const pd_storage_scan_t *scan, int *err);

/*
 * The log identity of a stream: the first 16 bytes of
 * BLAKE2b-256("parley/log/v1" || name || 0 || created as 8 bytes little
 * endian). The same on every node that follows the stream; another if
 * the stream is made again.
 */
void pd_cluster_log_id(const char *stream, int64_t created,
                       uint8_t out[16]);

#endif /* PD_CLUSTER_H */
