/*
 * metrics.c - counting and the Prometheus text format.
 */
#include "metrics.h"

#include "parley.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

static const char *const s_routes[GW_ROUTE_COUNT] = {
    [GW_ROUTE_BOARD] = "board",     [GW_ROUTE_STATE] = "state",
    [GW_ROUTE_UPDATES] = "updates", [GW_ROUTE_EVENTS] = "events",
    [GW_ROUTE_KEYRING] = "keyring", [GW_ROUTE_PUBLISH] = "publish",
    [GW_ROUTE_METRICS] = "metrics", [GW_ROUTE_HEALTHZ] = "healthz",
    [GW_ROUTE_OTHER] = "other",
};

static const char *const s_pubrefs[GW_PUBREF_COUNT] = {
    [GW_PUBREF_DISABLED] = "disabled",
    [GW_PUBREF_TOO_LARGE] = "too_large",
    [GW_PUBREF_MALFORMED] = "malformed",
    [GW_PUBREF_MEDIA_TYPE] = "media_type",
    [GW_PUBREF_BUSY] = "busy",
};

void
gw_metrics_status(gw_metrics_t *m, unsigned code)
{
    for (size_t i = 0; i < GW_STATUS_CODES; i++) {
        if (m->status_code[i] == code || m->status_code[i] == 0) {
            m->status_code[i] = code;
            m->status_count[i]++;
            return;
        }
    }
}

/* The slot of a publish result: 0 accepted, 1 duplicate, 2.. the codes
 * PARLEY_ETOOLARGE..PARLEY_EARG, the last one anything else. */
static size_t
s_publish_slot(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == PARLEY_DUPLICATE)
        return 1;
    if (rc <= PARLEY_ETOOLARGE && rc >= PARLEY_EARG)
        return 2 + (size_t)(PARLEY_ETOOLARGE - rc);
    return 23;
}

void
gw_metrics_publish(gw_metrics_t *m, int rc)
{
    m->publish_answers[s_publish_slot(rc)]++;
}

/* A metric without labels: its name, its help, and where its value is. */
typedef struct {
    const char *name;
    const char *help;
    size_t offset; /* of a uint64_t in gw_metrics_t or gw_gauges_t */
} s_metric_t;

#define S_C(name, field, help) { "parley_gateway_" name, help, offsetof(gw_metrics_t, field) }
#define S_G(name, field, help) { "parley_gateway_" name, help, offsetof(gw_gauges_t, field) }

static const s_metric_t s_counters[] = {
    S_C("connections_accepted_total", connections_total, "HTTP connections accepted."),
    S_C("header_timeouts_total", header_timeouts,
        "Connections cut off for not sending a whole request within header_timeout."),
    S_C("sse_streams_total", sse_opened, "Event streams opened."),
    S_C("sse_refused_total", sse_refused, "Event streams refused by max_sse_clients."),
    S_C("sse_events_total", sse_events, "Update events sent on streams."),
    S_C("sse_gap_events_total", sse_gaps, "Gap events sent on streams."),
    S_C("sse_keepalives_total", sse_keepalives, "Keep-alive comments sent on streams."),
    S_C("sse_bytes_total", sse_bytes, "Bytes of events and comments handed to streams."),
    S_C("sse_replays_total", sse_replays,
        "Stream pieces fetched from parleyd because they were older than the window."),
    S_C("updates_total", updates, "Updates received from parleyd."),
    S_C("updates_rejected_total", rejected,
        "Deliveries that failed verification against the keyring (not passed on)."),
    S_C("gaps_total", gaps, "Ranges of updates parleyd no longer held when asked."),
    S_C("snapshots_total", snapshots, "State snapshots taken from parleyd."),
    S_C("snapshot_errors_total", snapshot_errors, "State snapshots that failed."),
    S_C("replays_total", replays, "Replays asked of parleyd (old pages and stream resumes)."),
    S_C("replay_errors_total", replay_errors, "Replays that failed."),
    S_C("jobs_refused_total", jobs_refused,
        "Requests answered 503 because max_jobs were waiting."),
    S_C("upstream_connects_total", upstream_connects, "Connections made to a parleyd."),
    S_C("upstream_disconnects_total", upstream_disconnects, "Connections to a parleyd lost."),
};

static const s_metric_t s_gauges[] = {
    S_G("connections", connections, "HTTP connections open now."),
    S_G("sse_clients", sse_clients, "Event streams open now."),
    S_G("jobs", jobs, "Snapshot and replay requests in progress."),
    S_G("jobs_waiting", jobs_waiting,
        "Requests waiting for a worker (max_jobs bounds them)."),
    S_G("upstream_connected", upstream_connected, "1 while a parleyd is connected."),
    S_G("upstream_caught_up", caught_up,
        "1 once everything parleyd held when connecting was received."),
    S_G("last_seq", last_seq, "The last seq received from parleyd."),
    S_G("state_seq", state_seq, "The seq the state is exact through."),
    S_G("state_cells", state_cells, "Cells (negotiation, phase, party) in the state."),
    S_G("state_loaded", state_loaded, "1 once a snapshot was loaded."),
    S_G("state_stale", state_stale,
        "1 while a correction or retraction waits for a new snapshot."),
    S_G("window_updates", window_items, "Items (updates and gaps) in the window."),
    S_G("window_bytes", window_bytes, "Bytes the window holds."),
    S_G("window_first_seq", window_first_seq, "The first seq the window answers for."),
};

/* Each metric of a table with its HELP and TYPE lines and its value. */
static void
s_table(gw_buf_t *out, const s_metric_t *t, size_t n, const char *type,
        const void *base)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)base + t[i].offset, sizeof(v));
        gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n",
                      t[i].name, t[i].help, t[i].name, type, t[i].name, v);
    }
}

/* The HELP and TYPE lines of a labelled metric. */
static void
s_head(gw_buf_t *out, const char *name, const char *help)
{
    gw_buf_printf(out, "# HELP parley_gateway_%s %s\n# TYPE parley_gateway_%s counter\n",
                  name, help, name);
}

int
gw_metrics_text(const gw_metrics_t *m, const gw_gauges_t *g, gw_buf_t *out)
{
    s_head(out, "http_requests_total", "HTTP requests by route.");
    for (size_t i = 0; i < GW_ROUTE_COUNT; i++)
        gw_buf_printf(out,
                      "parley_gateway_http_requests_total{route=\"%s\"} "
                      "%" PRIu64 "\n",
                      s_routes[i], m->requests[i]);
    s_head(out, "http_responses_total", "HTTP answers by status code.");
    for (size_t i = 0; i < GW_STATUS_CODES && m->status_code[i] != 0; i++)
        gw_buf_printf(out,
                      "parley_gateway_http_responses_total{code=\"%u\"} "
                      "%" PRIu64 "\n",
                      m->status_code[i], m->status_count[i]);
    s_head(out, "connections_refused_total",
           "HTTP connections closed at once, by the limit they hit.");
    gw_buf_printf(out,
                  "parley_gateway_connections_refused_total{limit=\"total\"} "
                  "%" PRIu64 "\n"
                  "parley_gateway_connections_refused_total{limit=\"per_ip\"} "
                  "%" PRIu64 "\n",
                  m->refused_total_limit, m->refused_ip_limit);
    s_table(out, s_counters, sizeof(s_counters) / sizeof(s_counters[0]), "counter", m);
    s_table(out, s_gauges, sizeof(s_gauges) / sizeof(s_gauges[0]), "gauge", g);
    s_head(out, "publish_total", "Forwarded publishes by parleyd's answer.");
    for (size_t i = 0; i < 24; i++) {
        const char *name = i == 0    ? "accepted"
                           : i == 1  ? "duplicate"
                           : i == 23 ? "other"
                                     : parley_error_name(PARLEY_ETOOLARGE
                                                         - (int)(i - 2));
        if (i == 0 || i == 1 || m->publish_answers[i] > 0
            || i == 2 + (size_t)(PARLEY_ETOOLARGE - PARLEY_EBADSIG))
            gw_buf_printf(out,
                          "parley_gateway_publish_total{result=\"%s\"} "
                          "%" PRIu64 "\n",
                          name, m->publish_answers[i]);
    }
    s_head(out, "publish_refused_total", "Publishes the gateway refused itself, by reason.");
    for (size_t i = 0; i < GW_PUBREF_COUNT; i++)
        gw_buf_printf(out,
                      "parley_gateway_publish_refused_total{reason=\"%s\"} "
                      "%" PRIu64 "\n",
                      s_pubrefs[i], m->publish_refused[i]);
    return out->err;
}
