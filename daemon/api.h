/*
 * api.h - parleyd's request socket: the ROUTER, its framing, dispatch by
 * op, and the reply queue.
 *
 * Clients (DEALER) send [ApiRequest]; the ROUTER sees [identity][request]
 * and answers [identity][ApiReply]. The loop's turn belongs to ingest
 * (ingest.h): it reads the messages through this api (pd_api_io()),
 * handles the publishes itself and hands every other request back to
 * the api, in arrival order. The api answers those: replay and snapshot
 * through query (query.h), stats from the registry (stats.h), ping, and
 * the rejects of messages that are not well-formed requests.
 *
 * Answer order is request order. Replies to publishes wait in the queue
 * for the turn's group commit (nothing is acked before it is durable);
 * a read that arrives while replies wait in the queue is kept, unread,
 * behind them and answered right after that commit (pd_api_io()'s flush),
 * so it never overtakes an earlier ack, never forces a commit, and sees
 * what the commit made durable. A read that arrives with the queue empty
 * is answered at once.
 */
#ifndef PD_API_H
#define PD_API_H

#include "config.h"
#include "feed.h"
#include "ingest.h"
#include "parley.h"
#include "query.h"
#include "stats.h"
#include "storage.h"
#include "zap.h"

#include <stdint.h>

typedef struct pd_api pd_api_t;

/* What the api answers from, borrowed; everything must outlive it. */
typedef struct pd_api_deps {
    const pd_config_t *cfg;
    pd_storage_t *storage;   /* ping's seq and first_seq */
    pd_query_t *query;       /* replay, snapshot */
    pd_feed_t *feed;         /* ping's feed endpoint */
    pd_zap_t *zap;           /* CURVE and the User-Id of a request */
    pd_stats_t *stats;       /* the stats reply; the api reports into it */
    const uint8_t *daemon_id; /* 16 bytes, for ping */
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
 * allow-list lost a client. Call between turns.
 *
 * Returns:   0 or -errno (the api is then not bound: fatal).
 */
int pd_api_cut(pd_api_t *api);

/*
 * Close the socket (linger 0 unless set otherwise) and free; reads still
 * waiting in the queue are dropped unanswered. *api becomes NULL.
 * Accepts NULL.
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

#endif /* PD_API_H */
