/*
 * upstream.h - the gateway's side of parleyd, through libparley alone:
 *
 *   - the reliable subscription (everything, verified against the
 *     keyring), driven by the main loop's poll();
 *   - a forwarding publisher (no key of its own) for POST /v1/updates;
 *   - worker threads for the one-shot calls that block (ping, snapshot,
 *     replay), so that HTTP is never held up by parleyd: a job is
 *     submitted, runs on a worker, and comes back through the main loop.
 *
 * Everything the main loop is told goes through the callbacks, from
 * gw_upstream_run(), on the main thread.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include "config.h"
#include "item.h"
#include "query.h"
#include "state.h"
#include "parley.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GW_JOB_PING = 1,  /* the daemon's head and oldest seq */
    GW_JOB_SNAPSHOT,  /* the current state, all of it */
    GW_JOB_REPLAY,    /* a range of the log, filtered, in pieces */
} gw_job_type_t;

/* A one-shot call and its answer. */
typedef struct gw_job {
    gw_job_type_t type;
    /* What to ask (REPLAY). */
    uint64_t from, to;     /* seqs from..to; to 0: up to the head */
    size_t max_items;      /* stop after this many items (0: no limit) */
    size_t max_bytes;      /* or once their frames pass this many bytes */
    gw_filter_t filter;    /* owned */
    void *owner;           /* who waits for the answer */
    int tag;               /* what the owner is, for the submitter */
    /* The answer. */
    int rc;                /* 0 or the call's error */
    uint64_t seq;          /* PING: head; SNAPSHOT: as-of; REPLAY: the
                              last seq of the range */
    uint64_t first_seq;    /* PING: the oldest seq held */
    uint64_t next;         /* REPLAY: the first seq not looked at yet */
    bool done;             /* REPLAY: nothing left in the range */
    gw_item_t **items;     /* REPLAY: updates and gaps, in seq order
                              (one reference each) */
    size_t n_items;
    gw_cell_t *cells;      /* SNAPSHOT: the state (gw_state_fetch()) */
    size_t n_cells;
    size_t rejected;       /* deliveries that failed verification */
    struct gw_job *link;   /* queue */
} gw_job_t;

/* Make a job. NULL with errno ENOMEM. Free with gw_job_free(). */
gw_job_t *gw_job_new(gw_job_type_t type);

/* Free a job, its filter, its items and cells; *job becomes NULL. Main
 * thread only once its items were made. */
void gw_job_free(gw_job_t **job);

typedef struct gw_upstream gw_upstream_t;

/* What the main loop is told (all may be called from gw_upstream_run()). */
typedef struct gw_upstream_cb {
    void *ctx;
    /* An event of the subscription (valid during the call only). */
    void (*event)(void *ctx, const parley_event_t *ev);
    /* A submitted job has its answer; the callee owns the job. */
    void (*job_done)(void *ctx, gw_job_t *job);
    /* The answer to gw_upstream_publish(): rc 0 or PARLEY_DUPLICATE with
     * seq, or a code of parley_pub_recv(), with the daemon's text. */
    void (*published)(void *ctx, uint64_t request_id, int rc, uint64_t seq,
                      const char *detail);
} gw_upstream_cb_t;

/*
 * Start the workers and, with cfg->publish, the publisher. No
 * subscription yet (gw_upstream_subscribe()).
 *
 * Returns:   the upstream, or NULL with *err set (a CURVE key that does
 *            not load, bad endpoints: PARLEY_EARG, -ENOMEM, ...).
 * Ownership: ring and cfg are borrowed and must outlive it; the callbacks
 *            are copied.
 */
gw_upstream_t *gw_upstream_new(const gw_config_t *cfg,
                               const parley_keyring_t *ring,
                               const gw_upstream_cb_t *cb, int *err);

/* Stop the workers (each finishes its job in hand), hand every job back
 * through job_done (those not run with rc -ECANCELED), and close
 * everything; *up becomes NULL. */
void gw_upstream_destroy(gw_upstream_t **up);

/*
 * (Re)subscribe to everything from since_seq on (then live). It connects
 * in the background; events come through the callback.
 * Returns 0 or the code of parley_sub_new().
 */
int gw_upstream_subscribe(gw_upstream_t *up, uint64_t since_seq);

/* Is there a subscription? */
bool gw_upstream_subscribed(const gw_upstream_t *up);

/*
 * Hand a job to the workers. Returns 0 (the answer comes through
 * job_done), or -EAGAIN when max_jobs are waiting (the job stays the
 * caller's).
 */
int gw_upstream_submit(gw_upstream_t *up, gw_job_t *job);

/* Jobs submitted and not yet handed back. */
size_t gw_upstream_jobs(const gw_upstream_t *up);

/*
 * Jobs waiting for a worker (submitted, not yet taken): what max_jobs
 * bounds. Threads: takes the queue's lock; any thread.
 */
size_t gw_upstream_waiting(gw_upstream_t *up);

/*
 * Forward a signed envelope to parleyd. Returns 0 with *request_id set
 * (the answer comes through published), -ENOTSUP without publishing,
 * or a code of parley_pub_send() (-EAGAIN: too many in flight).
 */
int gw_upstream_publish(gw_upstream_t *up, const void *env, size_t len,
                        uint64_t *request_id);

/*
 * The descriptors to poll for readability (at most 9), and how long the
 * loop may sleep (ms, -1 for no limit) before gw_upstream_run().
 */
size_t gw_upstream_fds(const gw_upstream_t *up, struct pollfd *fds,
                       size_t cap);
int gw_upstream_timeout(const gw_upstream_t *up);

/* Do everything that is ready, calling back. Returns 0. */
int gw_upstream_run(gw_upstream_t *up);

#endif /* GW_UPSTREAM_H */
