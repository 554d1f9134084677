/*
 * api.h - parleyd's request socket: the ROUTER, its framing, dispatch by
 * op, the reply queue and the read slices.
 *
 * Clients (DEALER) send [ApiRequest]; the ROUTER sees [identity][request]
 * and answers [identity][ApiReply]. The loop's turn belongs to ingest
 * (ingest.h): it reads the messages through this api (pd_api_io()),
 * handles the publishes itself and hands every other request back to
 * the api, in arrival order. The api queues the reads (replay, snapshot,
 * stats, ping, and the transparency log's checkpoint and proofs, through
 * translog.h) in the read scheduler (reads.h) and answers anything else
 * at once (the rejects of messages that are not well-formed requests).
 *
 * Replies to publishes wait in the queue for the turn's group commit
 * (nothing is acked before it is durable), and go out in request order.
 * Reads are answered by pd_api_reads(), which the loop calls after each
 * turn: a read sees every update acked before its answer, and never
 * forces a commit. A connection's reads are answered in the order they
 * came, but may be answered after the acks of publishes it sent later
 * (clients match replies by request_id).
 */
#ifndef PD_API_H
#define PD_API_H

#include "config.h"
#include "feed.h"
#include "ingest.h"
#include "parley.h"
#include "query.h"
#include "reads.h"
#include "stats.h"
#include "storage.h"
#include "translog.h"
#include "zap.h"

#include <stdint.h>

typedef struct pd_api pd_api_t;

/* What the api answers from, borrowed; everything must outlive it. */
typedef struct pd_api_deps {
    const pd_config_t *cfg;
    pd_storage_t *storage;   /* ping's seq and first_seq */
    pd_query_t *query;       /* replay, snapshot */
    pd_reads_t *reads;       /* queued reads; every reply is counted there */
    pd_feed_t *feed;         /* ping's feed endpoint */
    pd_zap_t *zap;           /* CURVE, and a request's rights by its key */
    pd_stats_t *stats;       /* the stats reply; the api reports into it */
    const uint8_t *daemon_id; /* 16 bytes, for ping */
    pd_translog_t *translog; /* checkpoint and proof requests, the ping's
                                checkpoint; NULL: transparency is off */
} pd_api_deps_t;

/*
 * Make the ROUTER socket in ctx, secure it with the ZAP handler and bind
 * it to cfg->api; register the api's counters in stats.
 *
 * Returns:   the api, or NULL with *err set (-errno).
 */
pd_api_t *pd_api_new(void *ctx, const pd_api_deps_t *deps, int *err);

/*
 * Close every client connection (unbind and bind the same endpoint
 * again), so that each must pass the ZAP handler anew: used when the
 * allow-list lost a client. Call between turns. Queued reads are
 * dropped: nobody is left to read their answers.
 *
 * Returns:   0 or -errno (the api is then not bound: fatal).
 */
int pd_api_cut(pd_api_t *api);

/*
 * Close the socket (linger 0 unless set otherwise) and free. *api
 * becomes NULL. Accepts NULL. (Reads still queued stay in the scheduler,
 * unanswered, until it is destroyed.)
 */
void pd_api_destroy(pd_api_t **api);

/* The socket, for zmq_poll(). */
void *pd_api_socket(const pd_api_t *api);

/* The endpoint actually bound (ZMQ_LAST_ENDPOINT). */
const char *pd_api_endpoint(const pd_api_t *api);

/*
 * Fill the request side of io (recv, answer, reply, room, flush and ctx)
 * for ingest; the caller sets publish and feed. The api must outlive the
 * ingest that uses it.
 */
void pd_api_io(pd_api_t *api, pd_ingest_io_t *io);

/*
 * One read slice: serve queued reads, connection by connection in turn,
 * until none can be served now or the slice's budget is spent
 * (PD_READS_SLICE_RECORDS records, PD_READS_SLICE_US). Call after each
 * turn, and again without waiting while pd_reads_ready().
 */
void pd_api_reads(pd_api_t *api);

#endif /* PD_API_H */
