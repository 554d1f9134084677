/*
 * metrics.h - the gateway's counters and gauges, and their Prometheus
 * text form for GET /metrics (names in docs/http.md).
 *
 * Threads: the main thread only.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include "buf.h"

#include <stdint.h>

/* Routes, for per-route request counts. */
typedef enum {
    GW_ROUTE_BOARD = 0, /* / and its files */
    GW_ROUTE_STATE,
    GW_ROUTE_UPDATES,
    GW_ROUTE_EVENTS,
    GW_ROUTE_KEYRING,
    GW_ROUTE_PUBLISH,
    GW_ROUTE_METRICS,
    GW_ROUTE_HEALTHZ,
    GW_ROUTE_OTHER,
    GW_ROUTE_COUNT
} gw_route_t;

/* Status classes counted per code. */
#define GW_STATUS_CODES 16

/* Why a publish was refused by the gateway itself, before parleyd. */
typedef enum {
    GW_PUBREF_DISABLED = 0, /* publish is off: 403 */
    GW_PUBREF_TOO_LARGE,    /* over max_request_bytes: 413 */
    GW_PUBREF_MALFORMED,    /* not an envelope, bad JSON: 400 */
    GW_PUBREF_MEDIA_TYPE,   /* neither protobuf nor JSON: 415 */
    GW_PUBREF_BUSY,         /* too many in flight: 503 */
    GW_PUBREF_COUNT
} gw_pubref_t;

typedef struct gw_metrics {
    uint64_t requests[GW_ROUTE_COUNT];
    unsigned status_code[GW_STATUS_CODES];     /* codes seen ... */
    uint64_t status_count[GW_STATUS_CODES];    /* ... and how often */
    uint64_t connections_total;                /* accepted */
    uint64_t refused_total_limit;              /* max_connections */
    uint64_t refused_ip_limit;                 /* max_connections_per_ip */
    uint64_t header_timeouts;                  /* cut off by header_timeout */
    uint64_t sse_refused;                      /* over max_sse_clients */
    uint64_t sse_opened, sse_events, sse_gaps, sse_keepalives;
    uint64_t sse_bytes;
    uint64_t sse_replays;                      /* streams resumed below the window */
    uint64_t updates;                          /* deliveries received */
    uint64_t rejected;                         /* failed verification */
    uint64_t gaps;                             /* gap events received */
    uint64_t snapshots, snapshot_errors;       /* state refreshes */
    uint64_t replays, replay_errors;           /* replay jobs */
    uint64_t jobs_refused;                     /* max_jobs reached */
    uint64_t upstream_connects, upstream_disconnects;
    uint64_t publish_answers[24];              /* by result, see gw_metrics_publish */
    uint64_t publish_refused[GW_PUBREF_COUNT];
} gw_metrics_t;

/* Count an answer of status code. */
void gw_metrics_status(gw_metrics_t *m, unsigned code);

/* Count the answer parleyd gave a forwarded publish (0, PARLEY_DUPLICATE,
 * a reject code, PARLEY_ETIMEOUT, or another error). */
void gw_metrics_publish(gw_metrics_t *m, int rc);

/* Gauges the metrics page shows, read when it is made. */
typedef struct gw_gauges {
    uint64_t connections, sse_clients;
    uint64_t upstream_connected, caught_up, state_loaded, state_stale;
    uint64_t last_seq, state_seq, window_first_seq;
    uint64_t window_items, window_bytes, state_cells, jobs;
    uint64_t jobs_waiting;
} gw_gauges_t;

/* Append the Prometheus text exposition of m and g. Returns 0 or -ENOMEM. */
int gw_metrics_text(const gw_metrics_t *m, const gw_gauges_t *g, gw_buf_t *out);

#endif /* GW_METRICS_H */
