/*
 * translog.h - parleyd's transparency log (docs/transparency.md): the
 * Merkle tree over the records (tree.h), fed by applied records, the log
 * key, the signed checkpoint of every heartbeat, the witnesses'
 * cosignatures (cosign.h), and the proof requests of the api.
 *
 * The tree is a function of the applied records alone: the records the
 * storage hands over at open (pd_translog_scan(), the storage's scan
 * observer) and those it hands out after each commit (pd_storage_applied(),
 * which ingest passes to pd_translog_append()), with a seq that holds no
 * update (a cluster replica's void record) as its absent-record leaf.
 * Every node of a cluster that applies the same records under the same
 * seqs computes the same tree, so checkpoints of one size have one root
 * whichever node signed them.
 *
 * In the daemon's rhythm:
 *
 *   open       the hash file and the log key, before the storage opens
 *   scan       each record the storage finds at open (start-up check)
 *   recover    after the storage opened: the tree then has every record
 *   append     each applied record, in seq order, after its commit
 *   commit     after the applied records of a commit: their hashes are
 *              written (no fdatasync), roots and proofs cover them
 *   heartbeat  sync the hashes, sign a checkpoint of the tree if it grew,
 *              stamp it with the time, attach the witnesses' cosignatures
 *   sync       before retention removes records (their hashes must be
 *              durable first)
 *
 * The checkpoint parley publishes is a C2SP signed note:
 *
 *     <origin>\n<size>\n<root, base64>\n
 *     \n
 *     — <origin> <the log key's Ed25519 note signature>
 *     — <origin> <the log key's cosignature/v1: a timestamp and a
 *                 signature over it and the text>
 *     — <witness> <its cosignature/v1>      (one per witness that cosigned)
 *
 * The second line is what makes a checkpoint fresh: the log signs the
 * time it published the checkpoint, every heartbeat, so a subscriber can
 * tell an old checkpoint replayed from a current one (max_staleness).
 *
 * Threads: the loop thread only.
 */
#ifndef PD_TRANSLOG_H
#define PD_TRANSLOG_H

#include "codec.h"
#include "config.h"
#include "stats.h"
#include "storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pd_translog pd_translog_t;

/*
 * Open the hash file in cfg->state_dir and load the log key (cfg->log_key;
 * the default path may be missing: checkpoints are then not signed, and
 * that is logged), the witness list, and register the counters in stats
 * (may be NULL).
 *
 * Returns:   the log, or NULL with *err set (-errno, -EBADMSG, -EINVAL for
 *            a bad witness list or witnesses without a log key); the
 *            reason is logged.
 * Ownership: the caller's; close with pd_translog_close(). cfg is read
 *            during the call; stats must outlive the log.
 */
pd_translog_t *pd_translog_open(const pd_config_t *cfg, pd_stats_t *stats,
                                int *err);

/* Write and sync what is queued, close; *t becomes NULL. Accepts NULL. */
void pd_translog_close(pd_translog_t **t);

/*
 * The storage's scan observer (storage.h, pd_storage_scan_t.fn; ctx is the
 * log): check one record found at open against the tree (an absent one,
 * storage.h: its absent-record leaf).
 *
 * Returns:   0, or a negative error (logged with the hash file's offset).
 */
int pd_translog_scan(void *ctx, const pd_storage_record_t *rec);

/*
 * Finish the start-up check once the storage is open: records is the
 * number of records ever appended (the storage's head seq).
 *
 * Returns:   0 or a negative error (logged).
 */
int pd_translog_recover(pd_translog_t *t, uint64_t records);

/*
 * An applied record, in seq order (ingest, after each commit); an absent
 * one (storage.h) adds the absent-record leaf of its seq.
 *
 * Returns:   0, or a negative error: the tree can take no more records,
 *            the daemon must stop (the next start recomputes the hashes).
 */
int pd_translog_append(pd_translog_t *t, const pd_storage_record_t *rec);

/*
 * After the applied records of a commit: write their hashes (with fsync,
 * only once many are queued: pd_tree_write()). A failure (a full disk)
 * is logged and counted; the hashes stay queued and the next write or
 * sync tries again.
 *
 * Returns:   0.
 */
int pd_translog_commit(pd_translog_t *t);

/*
 * Make the hashes durable here and now (before retention; the heartbeat
 * syncs in the background instead).
 *
 * Returns:   0, or a negative error (logged): retention must not run.
 */
int pd_translog_sync(pd_translog_t *t);

/*
 * The heartbeat: take the result of the last heartbeat's sync and begin
 * the next, on the tree's own thread (pd_tree_sync_begin(); a failure is
 * logged and retried), sign a checkpoint if the tree grew, stamp it with
 * now_ms and attach the cosignatures the witnesses gave for it; hand a
 * new checkpoint to the witnesses.
 *
 * Returns:   0, or a negative error (fatal: the tree failed).
 */
int pd_translog_heartbeat(pd_translog_t *t, int64_t now_ms);

/*
 * The checkpoint made by the last heartbeat (NULL when there is none: no
 * log key, or no heartbeat yet), with its length.
 */
const char *pd_translog_checkpoint(const pd_translog_t *t, size_t *len);

/* The tree's size (leaves appended). */
uint64_t pd_translog_size(const pd_translog_t *t);

/*
 * Drive the witness requests (libcurl). When a witness's cosignature of
 * the current checkpoint has come, the checkpoint is made again with it
 * (and a fresh time stamp) and *republish is set: the caller sends it on
 * the feed now. Waiting for the next heartbeat would lose it whenever the
 * tree grows between two heartbeats (a steady feed): that heartbeat signs
 * a new size, which no witness has cosigned yet.
 *
 * Returns:   ms until it wants to be called again, -1 for no need.
 */
long pd_translog_poll(pd_translog_t *t, int64_t now_ms, bool *republish);

/* An encoded answer to a checkpoint, inclusion or consistency request. */
typedef struct pd_translog_answer {
    const uint8_t *reply;   /* on success: the encoded ApiReply */
    size_t len;
    char detail[160];       /* on a reject: what was wrong */
} pd_translog_answer_t;

/*
 * Answer a CHECKPOINT, INCLUSION or CONSISTENCY request (docs/protocol.md
 * sections 12-14): limits first, then the proofs from the tree.
 *
 * Returns:   0 with a->reply set (valid until the next call), or a reject
 *            code with a->detail: PARLEY_EBADREQUEST (sizes or seqs out of
 *            range, no seqs or too many), PARLEY_EUNAVAILABLE (no signed
 *            checkpoint yet, no log key, or the tree cannot be read).
 */
int pd_translog_answer(pd_translog_t *t, const parley__request_t *req,
                       pd_translog_answer_t *a);

#endif /* PD_TRANSLOG_H */
