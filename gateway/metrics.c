/*
 * metrics.c - counting and the Prometheus text format.
 */
#include "metrics.h"

#include "parley.h"

#include <inttypes.h>
#include <stddef.h>

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

/* One metric with its HELP and TYPE lines and one unlabelled value. */
static void
s_one(gw_buf_t *out, const char *name, const char *type, const char *help,
      uint64_t v)
{
    gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name,
                  help, name, type, name, v);
}

int
gw_metrics_text(const gw_metrics_t *m, const gw_gauges_t *g, gw_buf_t *out)
{
    gw_buf_str(out, "# HELP parley_gateway_http_requests_total HTTP requests "
                    "by route.\n"
                    "# TYPE parley_gateway_http_requests_total counter\n");
    for (size_t i = 0; i < GW_ROUTE_COUNT; i++)
        gw_buf_printf(out,
                      "parley_gateway_http_requests_total{route=\"%s\"} "
                      "%" PRIu64 "\n",
                      s_routes[i], m->requests[i]);
    gw_buf_str(out, "# HELP parley_gateway_http_responses_total HTTP "
                    "answers by status code.\n"
                    "# TYPE parley_gateway_http_responses_total counter\n");
    for (size_t i = 0; i < GW_STATUS_CODES && m->status_code[i] != 0; i++)
        gw_buf_printf(out,
                      "parley_gateway_http_responses_total{code=\"%u\"} "
                      "%" PRIu64 "\n",
                      m->status_code[i], m->status_count[i]);
    s_one(out, "parley_gateway_connections", "gauge",
          "HTTP connections open now.", g->connections);
    s_one(out, "parley_gateway_connections_accepted_total", "counter",
          "HTTP connections accepted.", m->connections_total);
    gw_buf_str(out, "# HELP parley_gateway_connections_refused_total HTTP "
                    "connections closed at once, by the limit they hit.\n"
                    "# TYPE parley_gateway_connections_refused_total "
                    "counter\n");
    gw_buf_printf(out,
                  "parley_gateway_connections_refused_total{limit=\"total\"} "
                  "%" PRIu64 "\n"
                  "parley_gateway_connections_refused_total{limit=\"per_ip\"} "
                  "%" PRIu64 "\n",
                  m->refused_total_limit, m->refused_ip_limit);
    s_one(out, "parley_gateway_header_timeouts_total", "counter",
          "Connections cut off for not sending a whole request within "
          "header_timeout.",
          m->header_timeouts);
    s_one(out, "parley_gateway_sse_clients", "gauge",
          "Event streams open now.", g->sse_clients);
    s_one(out, "parley_gateway_sse_streams_total", "counter",
          "Event streams opened.", m->sse_opened);
    s_one(out, "parley_gateway_sse_refused_total", "counter",
          "Event streams refused by max_sse_clients.", m->sse_refused);
    s_one(out, "parley_gateway_sse_events_total", "counter",
          "Update events sent on streams.", m->sse_events);
    s_one(out, "parley_gateway_sse_gap_events_total", "counter",
          "Gap events sent on streams.", m->sse_gaps);
    s_one(out, "parley_gateway_sse_keepalives_total", "counter",
          "Keep-alive comments sent on streams.", m->sse_keepalives);
    s_one(out, "parley_gateway_sse_bytes_total", "counter",
          "Bytes of events and comments handed to streams.", m->sse_bytes);
    s_one(out, "parley_gateway_sse_replays_total", "counter",
          "Stream pieces fetched from parleyd because they were older "
          "than the window.",
          m->sse_replays);
    s_one(out, "parley_gateway_updates_total", "counter",
          "Updates received from parleyd.", m->updates);
    s_one(out, "parley_gateway_updates_rejected_total", "counter",
          "Deliveries that failed verification against the keyring (not "
          "passed on).",
          m->rejected);
    s_one(out, "parley_gateway_gaps_total", "counter",
          "Ranges of updates parleyd no longer held when asked.", m->gaps);
    s_one(out, "parley_gateway_snapshots_total", "counter",
          "State snapshots taken from parleyd.", m->snapshots);
    s_one(out, "parley_gateway_snapshot_errors_total", "counter",
          "State snapshots that failed.", m->snapshot_errors);
    s_one(out, "parley_gateway_replays_total", "counter",
          "Replays asked of parleyd (old pages and stream resumes).",
          m->replays);
    s_one(out, "parley_gateway_replay_errors_total", "counter",
          "Replays that failed.", m->replay_errors);
    s_one(out, "parley_gateway_jobs_refused_total", "counter",
          "Requests answered 503 because max_jobs were waiting.",
          m->jobs_refused);
    s_one(out, "parley_gateway_jobs", "gauge",
          "Snapshot and replay requests in progress.", g->jobs);
    s_one(out, "parley_gateway_upstream_connected", "gauge",
          "1 while a parleyd is connected.", (uint64_t)g->upstream_connected);
    s_one(out, "parley_gateway_upstream_caught_up", "gauge",
          "1 once everything parleyd held when connecting was received.",
          (uint64_t)g->caught_up);
    s_one(out, "parley_gateway_upstream_connects_total", "counter",
          "Connections made to a parleyd.", m->upstream_connects);
    s_one(out, "parley_gateway_upstream_disconnects_total", "counter",
          "Connections to a parleyd lost.", m->upstream_disconnects);
    s_one(out, "parley_gateway_last_seq", "gauge",
          "The last seq received from parleyd.", g->last_seq);
    s_one(out, "parley_gateway_state_seq", "gauge",
          "The seq the state is exact through.", g->state_seq);
    s_one(out, "parley_gateway_state_cells", "gauge",
          "Cells (negotiation, phase, party) in the state.", g->state_cells);
    s_one(out, "parley_gateway_state_loaded", "gauge",
          "1 once a snapshot was loaded.", (uint64_t)g->state_loaded);
    s_one(out, "parley_gateway_state_stale", "gauge",
          "1 while a correction or retraction waits for a new snapshot.",
          (uint64_t)g->state_stale);
    s_one(out, "parley_gateway_window_updates", "gauge",
          "Items (updates and gaps) in the window.", g->window_items);
    s_one(out, "parley_gateway_window_bytes", "gauge",
          "Bytes the window holds.", g->window_bytes);
    s_one(out, "parley_gateway_window_first_seq", "gauge",
          "The first seq the window answers for.", g->window_first_seq);
    gw_buf_str(out, "# HELP parley_gateway_publish_total Forwarded "
                    "publishes by parleyd's answer.\n"
                    "# TYPE parley_gateway_publish_total counter\n");
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
    gw_buf_str(out, "# HELP parley_gateway_publish_refused_total Publishes "
                    "the gateway refused itself, by reason.\n"
                    "# TYPE parley_gateway_publish_refused_total counter\n");
    for (size_t i = 0; i < GW_PUBREF_COUNT; i++)
        gw_buf_printf(out,
                      "parley_gateway_publish_refused_total{reason=\"%s\"} "
                      "%" PRIu64 "\n",
                      s_pubrefs[i], m->publish_refused[i]);
    return out->err;
}
