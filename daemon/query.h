/*
 * query.h - parleyd's read path: replay and snapshot (and, later, proofs).
 *
 * A query reads only through the storage seam's read side (storage.h):
 * what is durable and applied, up to pd_storage_head(). It never commits
 * and never waits for the write path; updates submitted in the current
 * turn but not yet committed are invisible to it. (The api answers a
 * read that arrives behind replies still waiting for their commit right
 * after that commit, so the answer order on a connection is the request
 * order: see api.h.)
 *
 * With CURVE on, a client limited to some topics is sent only updates
 * carried on one of them, as on the feed (zap.h decides), and learns of
 * the log's head only its class's view of it (pd_query_view_head()):
 * the seq of the last update it may read, not how many others there are.
 */
#ifndef PD_QUERY_H
#define PD_QUERY_H

#include "codec.h"
#include "storage.h"
#include "zap.h"

#include <stddef.h>
#include <stdint.h>

/* Deliveries per replay reply at most, and the byte budget of one. */
#define PD_QUERY_REPLAY_MAX 1000
#define PD_QUERY_REPLY_BUDGET (1024 * 1024)
/* Records one replay reply looks at, at most. */
#define PD_QUERY_SCAN_MAX 20000
/* Deliveries in a snapshot reply at most (more: unavailable). */
#define PD_QUERY_SNAPSHOT_MAX 4096

typedef struct pd_query pd_query_t;

/* The outcome of a query. */
typedef struct pd_query_answer {
    const uint8_t *reply;  /* the encoded ApiReply, when the query gave 0;
                              valid until the next query */
    size_t len;
    uint64_t first_seq;    /* PARLEY_ETRUNCATED: the oldest seq held */
    char detail[192];      /* why, for the reject's message and the log */
} pd_query_answer_t;

/*
 * Make the read path: buffers for the largest record
 * (max_message_bytes) and the largest replay reply. storage and zap are
 * borrowed and must outlive it; zap may be NULL (no access control).
 *
 * Returns:   the query, or NULL with *err set (-ENOMEM).
 */
pd_query_t *pd_query_new(pd_storage_t *storage, const pd_zap_t *zap,
                         size_t max_message_bytes, int *err);

/* Free it; *q becomes NULL. Accepts NULL. */
void pd_query_destroy(pd_query_t **q);

/*
 * Replay: the deliveries from req->from_seq on (to req->to_seq, or the
 * head for 0) that match req's filter and that key (the CURVE client's
 * key, the X-Key property; NULL without CURVE) may read, paged by
 * req->limit (at most PD_QUERY_REPLAY_MAX), PD_QUERY_REPLY_BUDGET bytes
 * and PD_QUERY_SCAN_MAX records looked at. "The head" is the key's view
 * of it, also in the reply's head_seq.
 *
 * Returns:   0 (a->reply holds the reply), PARLEY_ETRUNCATED (from_seq is
 *            below what is held; a->first_seq) or PARLEY_EUNAVAILABLE (a
 *            record could not be read; logged).
 */
int pd_query_replay(pd_query_t *q, const parley__request_t *req,
                    const char *key, pd_query_answer_t *a);

/*
 * Snapshot: the entries (negotiation, party, phase) of the current state
 * that match req's filters, each with the update holding it, minus
 * entries whose update has expired (docs/protocol.md section 5); the
 * updates readable as for replay, ascending seq, each once; the entries
 * (when req->entries) by negotiation, phase, party; seq = the key's
 * view of the head.
 *
 * Returns:   0 (a->reply holds the reply), PARLEY_EUNAVAILABLE (out of
 *            memory, a read error, or over PD_QUERY_SNAPSHOT_MAX updates:
 *            a->detail says which) or PARLEY_EBADREQUEST (a request
 *            without entries, whose updates would not say the state
 *            right: one of them holds only some of the entries it names).
 */
int pd_query_snapshot(pd_query_t *q, const parley__request_t *req,
                      const char *key, pd_query_answer_t *a);

/*
 * The head seq access class klass (pd_zap_class_of()) may know of: the
 * log's head for a class that reads every topic (and without CURVE);
 * for a limited class the seq of the last update it may read, or, if it
 * has read none since the daemon started (or since a reload changed the
 * classes), the head at that moment. It only rises, every seq the class
 * may read is at or below it, and it moves only when such an update is
 * made durable: a limited subscriber's gap detection (protocol.md
 * section 10) needs no more, and learns nothing of others' traffic from
 * it. Records since the last call are looked at once each (newest first,
 * up to the first the class may read); 0 for -1 (no client).
 *
 * Threads:   the loop thread.
 */
uint64_t pd_query_view_head(pd_query_t *q, int klass);

#endif /* PD_QUERY_H */
