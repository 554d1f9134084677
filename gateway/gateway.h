/*
 * gateway.h - the parts of parley-gateway and how they meet.
 *
 * One thread (the main loop, gateway.c) owns everything here: the
 * libmicrohttpd daemon, run from the loop with its epoll descriptor
 * (no thread of its own); the window of recent updates; the state; the
 * event streams; and libparley's subscription and publisher. Worker
 * threads (upstream.c) only run one-shot calls to parleyd and hand the
 * answers back to the loop, so nothing here needs a lock.
 *
 *   upstream.c  parleyd: subscription, forwarding publisher, workers
 *   window.c    recent updates; state.c  the current state
 *   http.c      HTTP: connections, limits, routes, the answers
 *   sse.c       /v1/events streams
 *   gateway.c   the loop, and what happens when an update arrives
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include "config.h"
#include "metrics.h"
#include "state.h"
#include "upstream.h"
#include "window.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

struct gw_sse;
struct gw_req;
struct gw_conn;
struct gw_ipcount;

typedef struct gw {
    gw_config_t *cfg;
    parley_keyring_t *ring;       /* the keyring file's signers */
    char *keyring_json;           /* GET /v1/keyring, made once */
    size_t keyring_json_len;
    gw_window_t *window;
    gw_state_t *state;
    gw_upstream_t *up;
    gw_metrics_t metrics;
    struct MHD_Daemon *mhd;
    uint16_t port;                /* the port bound (listen may say 0) */

    /* Upstream. */
    bool connected;               /* a parleyd is connected */
    bool caught_up;               /* everything it held was received */
    bool started;                 /* the subscription exists */
    int64_t ping_at;              /* monotonic ms of the next start ping */
    gw_job_t *snapshot;           /* a state snapshot in progress */
    bool refresh_wanted;          /* another one is needed after it */
    int64_t refresh_at;           /* monotonic ms: a refresh for expiry */
    int64_t last_refresh;         /* monotonic ms of the last snapshot */

    /* HTTP. */
    unsigned connections;         /* open now */
    struct gw_conn *waiting_head; /* connections owing a whole request, */
    struct gw_conn *waiting_tail; /* oldest first (header_timeout) */
    struct gw_ipcount **ips;      /* connections per client address */
    size_t ips_buckets;
    struct gw_req *publishing;    /* requests waiting for parleyd's ack */

    /* Event streams. */
    struct gw_sse *sse_head;      /* every stream */
    unsigned sse_clients;
    int64_t keepalive_at;         /* monotonic ms of the next keep-alive */

    bool stopping;                /* SIGTERM: close streams and stop */
} gw_t;

/* Monotonic milliseconds. */
int64_t gw_now_ms(void);

/* ------------------------------------------------------------ http.c */

/*
 * Start libmicrohttpd on cfg->listen in external epoll mode with the
 * limits of the configuration; gw->port gets the port bound.
 * Returns 0 or -errno (the address is taken: -EADDRINUSE).
 */
int gw_http_start(gw_t *gw);

/* Resume what waits and stop libmicrohttpd (after gw_sse_close_all()). */
void gw_http_stop(gw_t *gw);

/* The earliest header deadline (monotonic ms), or -1; and cut off the
 * connections past theirs. */
int64_t gw_http_deadlines(gw_t *gw, int64_t now);

/* A job of a suspended /v1/updates request is done (job->owner). */
void gw_http_job_done(gw_t *gw, gw_job_t *job);

/* parleyd answered a forwarded publish. */
void gw_http_published(gw_t *gw, uint64_t request_id, int rc, uint64_t seq,
                       const char *detail);

/* Answer every request still waiting for parleyd with 503 (stopping). */
void gw_http_abandon(gw_t *gw);

/*
 * Make the /v1/keyring document from gw->ring. Returns 0 or -ENOMEM.
 */
int gw_http_keyring_json(gw_t *gw);

/* ------------------------------------------------------------- sse.c */

/*
 * Open an event stream on connection for the query q (taken over) and
 * the Last-Event-ID (has_last: the header was given). Returns the MHD
 * result of queueing the answer.
 */
enum MHD_Result gw_sse_open(gw_t *gw, struct MHD_Connection *connection,
                            gw_query_t *q, bool has_last, uint64_t last);

/* A new item is in the window: wake the streams it matters to. */
void gw_sse_notify(gw_t *gw, const gw_item_t *it);

/* The state was refreshed: each stream sends a state event. */
void gw_sse_state(gw_t *gw);

/* The window was emptied and restarted (a different log): streams
 * continue from where the new window starts. */
void gw_sse_restart(gw_t *gw);

/* Send keep-alives where due; returns when the next one is due. */
int64_t gw_sse_keepalive(gw_t *gw, int64_t now);

/* A replay job of a stream is done (job->owner is the stream). */
void gw_sse_job_done(gw_t *gw, gw_job_t *job);

/* End every stream (stopping). */
void gw_sse_close_all(gw_t *gw);

/* --------------------------------------------------------- gateway.c */

/*
 * Run the gateway until a signal on sigfd (a signalfd for SIGTERM,
 * SIGINT and SIGHUP) says stop: start the parleyd side, serve, then
 * close streams and answer what waits. gw->mhd must be started.
 * Returns 0, or a negative error that ended it.
 */
int gw_run(gw_t *gw, int sigfd);

/* Who a job is for, so that its answer finds its way back. */
typedef enum {
    GW_TAG_GATEWAY = 0, /* start ping, state snapshot */
    GW_TAG_HTTP = 1,    /* a /v1/updates request (owner: its gw_req) */
    GW_TAG_STREAM = 2,  /* an event stream (owner: its stream) */
} gw_tag_t;

/* Hand a job to the workers for tag. Returns gw_upstream_submit()'s
 * result (-EAGAIN: max_jobs waiting; the job stays the caller's). */
int gw_submit(gw_t *gw, gw_job_t *job, gw_tag_t tag);

/* Ask for a new snapshot of the state (now, or after the one under way). */
void gw_refresh_state(gw_t *gw);

/* Is the gateway ready to serve: connected, caught up, state loaded? */
bool gw_ready(const gw_t *gw);

#endif /* GW_GATEWAY_H */
