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
 *
 * A query runs in steps under a budget (records read, time), so that the
 * loop can share itself between readers and still run its timers and
 * publishes (the api's read scheduler, reads.h, drives the steps); a job
 * carries a replay or snapshot from one step to the next.
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
/* Deliveries in a snapshot reply at most, and their bytes at most (more:
 * unavailable). */
#define PD_QUERY_SNAPSHOT_MAX 4096
#define PD_QUERY_SNAPSHOT_BYTES (8 * 1024 * 1024)

/* A step that spent its budget: call it again, with the same job, later. */
#define PD_QUERY_MORE 1

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
 * What a step may still spend: records looked at, and time. The caller
 * sets it for a slice of the loop; each step takes from it what it uses.
 */
typedef struct pd_query_budget {
    uint64_t records;      /* records it may still read */
    int64_t deadline_us;   /* parley__mono_us() at which it stops; 0: none */
} pd_query_budget_t;

/* The snapshot collected so far (query.c's). */
typedef struct pd_query_snap pd_query_snap_t;

/*
 * A replay or snapshot between the steps that answer it. Zero it before
 * the first step; pd_query_job_end() when it is answered or dropped.
 */
typedef struct pd_query_job {
    uint64_t seq;          /* replay: the next seq to look at; 0 = not
                              started */
    uint32_t looked;       /* replay: records looked at for this page */
    pd_query_snap_t *snap; /* snapshot: where it stands; NULL = not started */
} pd_query_job_t;

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
 * One step of a replay: the deliveries from req->from_seq on (to
 * req->to_seq, or the head for 0) that match req's filter and that key
 * (the CURVE client's key, the X-Key property; NULL without CURVE) may
 * read, paged by req->limit (at most PD_QUERY_REPLAY_MAX),
 * PD_QUERY_REPLY_BUDGET bytes and PD_QUERY_SCAN_MAX records looked at,
 * over all the steps of the job. "The head" is the key's view of it at
 * this step (pd_query_view_head()), also in the reply's head_seq.
 *
 * The step reads at most b->records records and stops at b->deadline_us.
 * When the budget runs out, a page that holds deliveries is answered as
 * it is (next_seq says where the next one starts); a page that holds none
 * yet is not: the job remembers where it stands and the step returns
 * PD_QUERY_MORE, so that no client is sent empty pages for the daemon's
 * sake. req must be the same request at every step of a job.
 *
 * Returns:   0 (a->reply holds the reply), PD_QUERY_MORE,
 *            PARLEY_ETRUNCATED (from_seq, or where the job stood, is
 *            below what is held; a->first_seq) or PARLEY_EUNAVAILABLE (a
 *            record could not be read; logged).
 */
int pd_query_replay_step(pd_query_t *q, const parley__request_t *req,
                         const char *key, pd_query_job_t *job,
                         pd_query_budget_t *b, pd_query_answer_t *a);

/*
 * One step of a snapshot: the entries (negotiation, party, phase) of the
 * current state that match req's filters when the job started, each with
 * the update holding it, minus entries whose update had expired then
 * (docs/protocol.md section 5); the updates readable as for replay,
 * ascending seq, each once; the entries (when req->entries) by
 * negotiation, phase, party; seq = the key's view of the head when the
 * job started. The step reads at most b->records updates and stops at
 * b->deadline_us; then it returns PD_QUERY_MORE and the job holds what it
 * collected (at most PD_QUERY_SNAPSHOT_BYTES).
 *
 * Returns:   0 (a->reply holds the reply), PD_QUERY_MORE,
 *            PARLEY_EUNAVAILABLE (out of memory, a read error, or over
 *            PD_QUERY_SNAPSHOT_MAX updates or PD_QUERY_SNAPSHOT_BYTES:
 *            a->detail says which) or PARLEY_EBADREQUEST (a request
 *            without entries, whose updates would not say the state
 *            right: one of them holds only some of the entries it names).
 */
int pd_query_snapshot_step(pd_query_t *q, const parley__request_t *req,
                           const char *key, pd_query_job_t *job,
                           pd_query_budget_t *b, pd_query_answer_t *a);

/* Free what a job holds and zero it. Accepts a zeroed job. */
void pd_query_job_end(pd_query_job_t *job);

/* A replay answered in one step, without a budget (tests, tools). */
int pd_query_replay(pd_query_t *q, const parley__request_t *req,
                    const char *key, pd_query_answer_t *a);

/* A snapshot answered in one step, without a budget (tests, tools). */
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
