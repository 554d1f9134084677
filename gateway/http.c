/*
 * http.c - libmicrohttpd in the gateway's loop: connections and their
 * limits, routing, and the answers of every route but /v1/events.
 *
 * Threading mode. libmicrohttpd runs without a thread of its own, in
 * "external epoll" mode: the main loop polls its epoll descriptor and
 * calls MHD_run(). One thread serves every connection; a stream with
 * nothing to send is suspended (MHD_suspend_connection()), costing no
 * CPU and no timer, and resumed when an update for it arrives. This is
 * what lets one gateway hold 10,000 event streams: epoll scales with the
 * number of descriptors that are ready, not with those open; a thread
 * per connection would cost a stack each (8 MiB of address space, tens
 * of KiB resident); and the window and state need no lock because only
 * this thread touches them. A connection's memory is libmicrohttpd's
 * pool (connection_memory, 8 KiB by default: the request head, then the
 * chunk being written) and the stream's own struct (sse.c), so the
 * resident size per stream stays within 16 KiB (bench/gateway.c
 * measures it).
 *
 * Limits. Connections are counted here, in total and per client
 * address, and refused at once over max_connections or
 * max_connections_per_ip (libmicrohttpd's own limits are set just above
 * ours, so ours are the ones that act and are counted). A connection
 * must send its whole request within header_timeout of its start or of
 * the end of its previous request, or it is cut off (slowloris): the
 * deadline list below is kept in order, and shutdown(2) on the socket
 * makes libmicrohttpd close it. Idle connections in the middle of a
 * response are closed after idle_timeout by libmicrohttpd.
 */
#include "http.h"

#include "assets.h"
#include "buf.h"
#include "log.h"
#include "post.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* A client address and its open connections. */
typedef struct gw_ipcount {
    uint8_t addr[16];
    int family;
    unsigned count;
    struct gw_ipcount *next;
} gw_ipcount_t;

/* A TCP connection (libmicrohttpd's socket context). */
typedef struct gw_conn {
    int fd;
    gw_ipcount_t *ip;
    int64_t deadline;            /* whole request due by; -1: not waiting */
    struct gw_conn *prev, *next; /* in gw->waiting_* while waiting */
} gw_conn_t;

#define S_IP_BUCKETS 1024

/* ----------------------------------------------------- client addresses */

/* The address bytes of sa (4 or 16) into out; returns the length, 0 if
 * not IP. An IPv4-mapped IPv6 address counts as its IPv4 address. */
static size_t
s_addr(const struct sockaddr *sa, uint8_t out[16], int *family)
{
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        *family = AF_INET;
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a =
            ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(out, a + 12, 4);
            *family = AF_INET;
            return 4;
        }
        memcpy(out, a, 16);
        *family = AF_INET6;
        return 16;
    }
    return 0;
}

static size_t
s_bucket(const uint8_t *addr, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ addr[i]) * 16777619u;
    return h % S_IP_BUCKETS;
}

/* The entry of an address; with create, made when missing (NULL on
 * ENOMEM or a non-IP address). */
static gw_ipcount_t *
s_ip(gw_t *gw, const struct sockaddr *sa, bool create)
{
    uint8_t addr[16];
    int family;
    size_t n = s_addr(sa, addr, &family);
    if (n == 0 || gw->ips == NULL)
        return NULL;
    gw_ipcount_t **b = &gw->ips[s_bucket(addr, n)];
    for (gw_ipcount_t *e = *b; e != NULL; e = e->next)
        if (e->family == family && memcmp(e->addr, addr, n) == 0)
            return e;
    if (!create)
        return NULL;
    gw_ipcount_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    memcpy(e->addr, addr, n);
    e->family = family;
    e->next = *b;
    *b = e;
    return e;
}

/* Drop an entry whose count reached 0. */
static void
s_ip_release(gw_t *gw, gw_ipcount_t *e)
{
    if (e == NULL || --e->count > 0)
        return;
    size_t n = e->family == AF_INET ? 4 : 16;
    for (gw_ipcount_t **p = &gw->ips[s_bucket(e->addr, n)]; *p != NULL;
         p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            free(e);
            return;
        }
}

/* libmicrohttpd asks before it accepts a connection. */
static enum MHD_Result
s_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    gw_t *gw = cls;
    (void)addrlen;
    if (gw->stopping)
        return MHD_NO;
    if (gw->connections >= gw->cfg->max_connections) {
        gw->metrics.refused_total_limit++;
        gw_log_limited(GW_LOGK_REFUSED, GW_LOG_WARN,
                       "connection refused: max_connections (%u) reached",
                       gw->cfg->max_connections);
        return MHD_NO;
    }
    gw_ipcount_t *e = s_ip(gw, addr, false);
    if (e != NULL && e->count >= gw->cfg->max_connections_per_ip) {
        char text[INET6_ADDRSTRLEN] = "?";
        inet_ntop(e->family, e->addr, text, sizeof(text));
        gw->metrics.refused_ip_limit++;
        gw_log_limited(GW_LOGK_REFUSED, GW_LOG_WARN,
                       "connection refused: %s has max_connections_per_ip "
                       "(%u) open",
                       text, gw->cfg->max_connections_per_ip);
        return MHD_NO;
    }
    return MHD_YES;
}

/* ------------------------------------------------------ header deadline */

static void
s_unwait(gw_t *gw, gw_conn_t *k)
{
    if (k->deadline < 0)
        return;
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        gw->waiting_head = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    else
        gw->waiting_tail = k->prev;
    k->prev = k->next = NULL;
    k->deadline = -1;
}

/* The connection owes a whole request from now on. */
static void
s_wait(gw_t *gw, gw_conn_t *k)
{
    s_unwait(gw, k);
    /* One timeout for all: appending keeps the list in deadline order. */
    k->deadline = gw_now_ms() + (int64_t)gw->cfg->header_timeout * 1000;
    k->prev = gw->waiting_tail;
    if (gw->waiting_tail != NULL)
        gw->waiting_tail->next = k;
    else
        gw->waiting_head = k;
    gw->waiting_tail = k;
}

static gw_conn_t *
s_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

void
gw_http_request_complete(gw_t *gw, struct MHD_Connection *c)
{
    gw_conn_t *k = s_conn_of(c);
    if (k != NULL)
        s_unwait(gw, k);
}

int64_t
gw_http_deadlines(gw_t *gw, int64_t now)
{
    while (gw->waiting_head != NULL && gw->waiting_head->deadline <= now) {
        gw_conn_t *k = gw->waiting_head;
        s_unwait(gw, k);
        gw->metrics.header_timeouts++;
        gw_log_limited(GW_LOGK_TIMEOUT, GW_LOG_INFO,
                       "connection cut off: no whole request within "
                       "header_timeout (%u s)",
                       gw->cfg->header_timeout);
        /* libmicrohttpd sees the end of the stream and closes it; the
         * descriptor stays its own until then. */
        shutdown(k->fd, SHUT_RDWR);
    }
    return gw->waiting_head != NULL ? gw->waiting_head->deadline : -1;
}

static void
s_notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe)
{
    gw_t *gw = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        gw_conn_t *k = calloc(1, sizeof(*k));
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        *socket_context = k;
        gw->connections++;
        gw->metrics.connections_total++;
        if (k == NULL)
            return; /* served without limits; nothing to free */
        k->fd = fd != NULL ? fd->connect_fd : -1;
        k->deadline = -1;
        if (addr != NULL && (k->ip = s_ip(gw, addr->client_addr, true)) != NULL)
            k->ip->count++;
        if (k->fd >= 0)
            s_wait(gw, k);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        gw_conn_t *k = *socket_context;
        gw->connections--;
        if (k != NULL) {
            s_unwait(gw, k);
            s_ip_release(gw, k->ip);
            free(k);
        }
        *socket_context = NULL;
    }
}

/* ------------------------------------------------------------- answers */

int
gw_http_headers(const gw_t *gw, struct MHD_Response *r, bool api)
{
    int bad = 0;
    bad |= MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES;
    bad |= MHD_add_response_header(r, "Referrer-Policy", "no-referrer") != MHD_YES;
    if (api) {
        bad |= MHD_add_response_header(r, "Cache-Control", "no-store") != MHD_YES;
    } else {
        bad |= MHD_add_response_header(r, "Cache-Control", "no-cache") != MHD_YES;
        /* The board runs its own files only, talks to this gateway only,
         * and may not be framed. */
        bad |= MHD_add_response_header(
                   r, "Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'self'; "
                   "img-src 'self' data:; connect-src 'self'; base-uri "
                   "'none'; form-action 'none'; frame-ancestors 'none'")
               != MHD_YES;
        bad |= MHD_add_response_header(r, "X-Frame-Options", "DENY") != MHD_YES;
    }
    if (api && gw->cfg->cors_origin != NULL) {
        bad |= MHD_add_response_header(r, "Access-Control-Allow-Origin",
                                       gw->cfg->cors_origin)
               != MHD_YES;
        if (strcmp(gw->cfg->cors_origin, "*") != 0)
            bad |= MHD_add_response_header(r, "Vary", "Origin") != MHD_YES;
    }
    return bad ? -ENOMEM : 0;
}

enum MHD_Result
gw_http_queue(gw_t *gw, struct MHD_Connection *c, unsigned status,
              struct MHD_Response *r)
{
    if (r == NULL)
        return MHD_NO;
    gw_metrics_status(&gw->metrics, status);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

struct MHD_Response *
gw_http_owned(gw_t *gw, char *data, size_t len, const char *type, bool api)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(data);
        return NULL;
    }
    if (MHD_add_response_header(r, "Content-Type", type) != MHD_YES
        || gw_http_headers(gw, r, api) < 0) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

/* A JSON string of text (for messages; jansson would do, but this stays
 * in the hot path's file without it). */
static void
s_json_string(gw_buf_t *b, const char *text)
{
    gw_buf_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            gw_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            gw_buf_printf(b, "\\u%04x", *p);
        else
            gw_buf_add(b, p, 1);
    }
    gw_buf_str(b, "\"");
}

/* Make an error answer {"error":code,"message":text}. */
static struct MHD_Response *
s_error_response(gw_t *gw, const char *code, const char *message)
{
    gw_buf_t b = GW_BUF_INIT;
    gw_buf_printf(&b, "{\"error\":\"%s\",\"message\":", code);
    s_json_string(&b, message);
    gw_buf_str(&b, "}\n");
    if (b.err != 0) {
        gw_buf_free(&b);
        return NULL;
    }
    size_t len;
    char *data = gw_buf_take(&b, &len);
    return gw_http_owned(gw, data, len, "application/json", true);
}

enum MHD_Result
gw_http_error(gw_t *gw, struct MHD_Connection *c, unsigned status,
              const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    return gw_http_queue(gw, c, status, s_error_response(gw, code, message));
}

/* Queue a JSON document built in b (taken). */
static enum MHD_Result
s_json(gw_t *gw, struct MHD_Connection *c, unsigned status, gw_buf_t *b)
{
    if (b->err != 0) {
        gw_buf_free(b);
        return gw_http_error(gw, c, 500, "no_memory", "out of memory");
    }
    gw_buf_str(b, "\n");
    size_t len;
    char *data = gw_buf_take(b, &len);
    return gw_http_queue(gw, c, status,
                         gw_http_owned(gw, data, len, "application/json", true));
}

/* -------------------------------------------------------------- routes */

/* Fill the query of a request from its query string. */
static enum MHD_Result
s_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
    (void)kind;
    gw_query_arg(cls, key, value);
    return MHD_YES;
}

/* Read the query; on a bad one, answer 400 and return false. */
static bool
s_query(gw_t *gw, struct MHD_Connection *c, gw_query_t *q, unsigned allowed,
        enum MHD_Result *ret)
{
    gw_query_init(q, allowed);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, s_query_arg, q);
    if (q->err == 0)
        return true;
    gw_log_limited(GW_LOGK_BAD_REQUEST, GW_LOG_DEBUG, "bad query: %s",
                   q->detail);
    *ret = q->err == -ENOMEM
               ? gw_http_error(gw, c, 500, "no_memory", "out of memory")
               : gw_http_error(gw, c, 400, "bad_request", "%s", q->detail);
    gw_query_free(q);
    return false;
}

static enum MHD_Result
s_board(gw_t *gw, struct MHD_Connection *c, const char *url)
{
    const gw_asset_t *a = gw_asset_find(strcmp(url, "/") == 0 ? "/index.html" : url);
    if (a == NULL)
        return gw_http_error(gw, c, 404, "not_found", "no such page");
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "If-None-Match");
    bool fresh = inm != NULL && strcmp(inm, a->etag) == 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        fresh ? 0 : a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (r == NULL || MHD_add_response_header(r, "Content-Type", a->type) != MHD_YES
        || MHD_add_response_header(r, "ETag", a->etag) != MHD_YES
        || gw_http_headers(gw, r, false) < 0) {
        if (r != NULL)
            MHD_destroy_response(r);
        return MHD_NO;
    }
    return gw_http_queue(gw, c, fresh ? 304 : 200, r);
}

static enum MHD_Result
s_state(gw_t *gw, struct MHD_Connection *c)
{
    gw_query_t q;
    enum MHD_Result ret;
    if (!s_query(gw, c, &q, GW_Q_FILTER, &ret))
        return ret;
    if (!gw_state_loaded(gw->state)) {
        gw_query_free(&q);
        return gw_http_error(gw, c, 503, "unavailable",
                             "no state yet: the gateway is waiting for "
                             "parleyd");
    }
    gw_buf_t b = GW_BUF_INIT;
    gw_buf_printf(&b, "{\"seq\":%" PRIu64 ",\"live\":%s,\"stale\":%s,",
                  gw_state_seq(gw->state), gw_ready(gw) ? "true" : "false",
                  gw_state_stale(gw->state) ? "true" : "false");
    gw_state_json(gw->state, &q.filter, &b);
    gw_buf_str(&b, "}");
    gw_query_free(&q);
    return s_json(gw, c, 200, &b);
}

/* Append the JSON of the items of one type, separated by commas. */
static void
s_items_of(gw_buf_t *b, gw_item_t *const *items, size_t n, gw_item_type_t type)
{
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (items[i]->type != type)
            continue;
        gw_buf_str(b, first ? "" : ",");
        gw_buf_add(b, gw_item_json(items[i]), items[i]->json_len);
        first = false;
    }
}

/* Append the JSON of a page of items: "updates":[...],"gaps":[...]. */
static void
s_page_items(gw_buf_t *b, gw_item_t *const *items, size_t n)
{
    gw_buf_str(b, "\"updates\":[");
    s_items_of(b, items, n, GW_ITEM_UPDATE);
    gw_buf_str(b, "],\"gaps\":[");
    s_items_of(b, items, n, GW_ITEM_GAP);
    gw_buf_str(b, "]");
}

/* The fields every /v1/updates answer ends with. */
static void
s_page_tail(gw_t *gw, gw_buf_t *b, uint64_t next, bool more, bool window)
{
    gw_buf_printf(b,
                  ",\"next\":%" PRIu64 ",\"more\":%s,\"from\":\"%s\","
                  "\"last_seq\":%" PRIu64 ",\"window_from\":%" PRIu64 "}",
                  next, more ? "true" : "false", window ? "window" : "parleyd",
                  gw_window_last_seq(gw->window),
                  gw_window_covered_from(gw->window));
}

/* /v1/updates answered from the window. */
static enum MHD_Result
s_updates_window(gw_t *gw, struct MHD_Connection *c, gw_query_t *q,
                 unsigned limit)
{
    gw_window_t *w = gw->window;
    gw_item_t **page = calloc(limit, sizeof(*page));
    size_t n = 0;
    uint64_t next;
    bool more = false;
    if (page == NULL)
        return gw_http_error(gw, c, 500, "no_memory", "out of memory");
    uint64_t until = q->has_until ? q->until : UINT64_MAX;
    if (q->has_since) {
        /* Oldest first from since. */
        uint64_t pos = gw_window_pos_after(w, q->since - 1);
        next = q->since;
        for (; pos < gw_window_end_pos(w); pos++) {
            gw_item_t *it = gw_window_at(w, pos);
            if (it->seq > until)
                break;
            if (n == limit) {
                more = true;
                break;
            }
            if (gw_filter_match(&q->filter, it))
                page[n++] = it;
            next = it->seq_last + 1;
        }
        if (!more && pos == gw_window_end_pos(w)
            && gw_window_last_seq(w) + 1 > next && gw_window_last_seq(w) < until)
            next = gw_window_last_seq(w) + 1;
    } else {
        /* The newest limit matching up to until, in seq order. */
        uint64_t pos = gw_window_end_pos(w);
        while (pos > gw_window_first_pos(w) && n < limit) {
            gw_item_t *it = gw_window_at(w, --pos);
            if (it->seq <= until && gw_filter_match(&q->filter, it))
                page[n++] = it;
        }
        for (size_t i = 0; i < n / 2; i++) {
            gw_item_t *t = page[i];
            page[i] = page[n - 1 - i];
            page[n - 1 - i] = t;
        }
        next = (until < gw_window_last_seq(w) ? until : gw_window_last_seq(w)) + 1;
    }
    gw_buf_t b = GW_BUF_INIT;
    gw_buf_str(&b, "{");
    s_page_items(&b, page, n);
    s_page_tail(gw, &b, next, more, true);
    free(page);
    return s_json(gw, c, 200, &b);
}

static enum MHD_Result
s_updates(gw_t *gw, struct MHD_Connection *c, gw_req_t *r)
{
    enum MHD_Result ret;
    gw_query_t *q = &r->query;
    if (!s_query(gw, c, q, GW_Q_FILTER | GW_Q_SINCE | GW_Q_UNTIL | GW_Q_LIMIT,
                 &ret))
        return ret;
    unsigned limit = q->has_limit ? q->limit : 100;
    if (limit > gw->cfg->page_max)
        limit = gw->cfg->page_max;
    if (q->has_since && q->has_until && q->until < q->since) {
        gw_query_free(q);
        return gw_http_error(gw, c, 400, "bad_request",
                             "until is below since");
    }
    if (!q->has_since || q->since >= gw_window_covered_from(gw->window)) {
        ret = s_updates_window(gw, c, q, limit);
        gw_query_free(q);
        return ret;
    }
    /* Older than the window: ask parleyd, and answer when it has. */
    gw_job_t *job = gw_job_new(GW_JOB_REPLAY);
    if (job == NULL || gw_filter_copy(&job->filter, &q->filter) < 0) {
        gw_job_free(&job);
        gw_query_free(q);
        return gw_http_error(gw, c, 500, "no_memory", "out of memory");
    }
    job->from = q->since;
    job->to = q->has_until ? q->until : 0;
    job->max_items = limit;
    job->owner = r;
    if (gw_submit(gw, job, GW_TAG_HTTP) < 0) {
        gw_job_free(&job);
        gw_query_free(q);
        gw->metrics.jobs_refused++;
        return gw_http_error(gw, c, 503, "busy",
                             "too many requests for parleyd's log are "
                             "waiting; try again");
    }
    gw->metrics.replays++;
    r->waiting = true;
    MHD_suspend_connection(c);
    return MHD_YES;
}

void
gw_http_job_done(gw_t *gw, gw_job_t *job)
{
    gw_req_t *r = job->owner;
    gw_buf_t b = GW_BUF_INIT;
    if (job->rc < 0) {
        gw->metrics.replay_errors++;
        int status = job->rc == PARLEY_ETIMEOUT ? 504 : 502;
        r->answer = s_error_response(gw, parley_error_name(job->rc),
                                     parley_strerror(job->rc));
        r->answer_status = (unsigned)status;
    } else {
        gw_buf_str(&b, "{");
        s_page_items(&b, job->items, job->n_items);
        s_page_tail(gw, &b, job->next, !job->done, false);
        gw_buf_str(&b, "\n");
        if (b.err == 0) {
            size_t len;
            char *data = gw_buf_take(&b, &len);
            r->answer = gw_http_owned(gw, data, len, "application/json", true);
            r->answer_status = 200;
        }
        gw_buf_free(&b);
    }
    gw_query_free(&r->query);
    gw_job_free(&job);
    MHD_resume_connection(r->conn);
}

int
gw_http_keyring_json(gw_t *gw)
{
    gw_buf_t b = GW_BUF_INIT;
    static const char *const lists[3] = { "negotiations", "parties", "phases" };
    gw_buf_str(&b, "{\"context\":\"" PARLEY_SIGN_CONTEXT "\",\"signers\":[");
    for (size_t i = 0; i < parley_keyring_size(gw->ring); i++) {
        const uint8_t *pk = parley_keyring_signer_key(gw->ring, i);
        char b64[45], id[PARLEY_KEYID_CHARS + 1];
        parley_pubkey_format(pk, b64);
        parley_key_id(pk, id);
        /* Names are slugs and keys base64: no escaping needed. */
        gw_buf_printf(&b,
                      "%s{\"name\":\"%s\",\"key_id\":\"%s\","
                      "\"public_key\":\"%s\"",
                      i > 0 ? "," : "", parley_keyring_signer_name(gw->ring, i),
                      id, b64);
        for (int k = 0; k < 3; k++) {
            char *list = parley_keyring_signer_list(gw->ring, i,
                                                    (parley_keyring_list_t)k);
            if (list == NULL) {
                gw_buf_free(&b);
                return -ENOMEM;
            }
            gw_buf_printf(&b, ",\"%s\":\"%s\"", lists[k], list);
            free(list);
        }
        gw_buf_str(&b, "}");
    }
    gw_buf_str(&b, "]}\n");
    if (b.err != 0) {
        gw_buf_free(&b);
        return -ENOMEM;
    }
    free(gw->keyring_json);
    gw->keyring_json = gw_buf_take(&b, &gw->keyring_json_len);
    return 0;
}

static enum MHD_Result
s_keyring(gw_t *gw, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        gw->keyring_json_len, gw->keyring_json, MHD_RESPMEM_MUST_COPY);
    if (r == NULL || MHD_add_response_header(r, "Content-Type",
                                             "application/json")
                         != MHD_YES
        || gw_http_headers(gw, r, true) < 0) {
        if (r != NULL)
            MHD_destroy_response(r);
        return MHD_NO;
    }
    return gw_http_queue(gw, c, 200, r);
}

static enum MHD_Result
s_metrics(gw_t *gw, struct MHD_Connection *c)
{
    gw_gauges_t g = {
        .connections = gw->connections,
        .sse_clients = gw->sse_clients,
        .upstream_connected = gw->connected,
        .caught_up = gw->caught_up,
        .state_loaded = gw_state_loaded(gw->state),
        .state_stale = gw_state_stale(gw->state),
        .last_seq = gw_window_last_seq(gw->window),
        .state_seq = gw_state_seq(gw->state),
        .window_first_seq = gw_window_covered_from(gw->window),
        .window_items = gw_window_count(gw->window),
        .window_bytes = gw_window_bytes(gw->window),
        .state_cells = gw_state_cells(gw->state),
        .jobs = gw_upstream_jobs(gw->up),
        .jobs_waiting = gw_upstream_waiting(gw->up),
    };
    gw_buf_t b = GW_BUF_INIT;
    /* Count this answer before it is written, so it shows itself. */
    gw_metrics_status(&gw->metrics, 200);
    if (gw_metrics_text(&gw->metrics, &g, &b) < 0) {
        gw_buf_free(&b);
        return gw_http_error(gw, c, 500, "no_memory", "out of memory");
    }
    size_t len;
    char *data = gw_buf_take(&b, &len);
    struct MHD_Response *r = gw_http_owned(gw, data, len,
                                           "text/plain; version=0.0.4", true);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
s_healthz(gw_t *gw, struct MHD_Connection *c)
{
    gw_buf_t b = GW_BUF_INIT;
    bool ok = gw_ready(gw);
    const char *status = ok                     ? "ok"
                         : !gw->connected       ? "disconnected"
                         : !gw->caught_up       ? "catching_up"
                                                : "loading_state";
    gw_buf_printf(&b,
                  "{\"status\":\"%s\",\"connected\":%s,\"caught_up\":%s,"
                  "\"state_loaded\":%s,\"last_seq\":%" PRIu64 ","
                  "\"state_seq\":%" PRIu64 ",\"version\":\"%s\"}",
                  status, gw->connected ? "true" : "false",
                  gw->caught_up ? "true" : "false",
                  gw_state_loaded(gw->state) ? "true" : "false",
                  gw_window_last_seq(gw->window), gw_state_seq(gw->state),
                  parley_version());
    return s_json(gw, c, ok ? 200 : 503, &b);
}

/* --------------------------------------------------------------- publish */

/* HTTP status of a reject code of parleyd. */
static unsigned
s_reject_status(int rc)
{
    switch (rc) {
    case PARLEY_ETOOLARGE: return 413;
    case PARLEY_EMALFORMED: return 400;
    case PARLEY_EUNKNOWNSIGNER:
    case PARLEY_EBADSIG:
    case PARLEY_EFORBIDDEN: return 403;
    case PARLEY_EINVALID:
    case PARLEY_ESTALE:
    case PARLEY_EFUTURE: return 422;
    case PARLEY_EREPLAY: return 409;
    case PARLEY_ERATELIMITED: return 429;
    case PARLEY_EUNAVAILABLE: return 503;
    case PARLEY_ETIMEOUT: return 504;
    default: return 502;
    }
}

/* The whole body of a POST /v1/updates is in: forward it. */
static enum MHD_Result
s_publish(gw_t *gw, struct MHD_Connection *c, gw_req_t *r)
{
    uint8_t env[PARLEY_ENVELOPE_MAX + 128];
    size_t len = 0;
    char detail[256];
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Content-Type");
    int rc = gw_post_envelope(type, r->body != NULL ? r->body : "", r->body_len,
                              env, sizeof(env), &len, detail, sizeof(detail));
    if (rc == -EPROTONOSUPPORT) {
        gw->metrics.publish_refused[GW_PUBREF_MEDIA_TYPE]++;
        return gw_http_error(gw, c, 415, "unsupported_media_type",
                             "send application/json or "
                             "application/x-protobuf");
    }
    if (rc < 0) {
        gw->metrics.publish_refused[GW_PUBREF_MALFORMED]++;
        return gw_http_error(gw, c, 400, "malformed", "%s",
                             detail[0] != '\0' ? detail : "not an envelope");
    }
    rc = gw_upstream_publish(gw->up, env, len, &r->request_id);
    if (rc < 0) {
        gw->metrics.publish_refused[GW_PUBREF_BUSY]++;
        return gw_http_error(gw, c, 503, "unavailable",
                             "cannot forward to parleyd now: %s",
                             parley_strerror(rc));
    }
    r->waiting = true;
    r->next_publishing = gw->publishing;
    gw->publishing = r;
    MHD_suspend_connection(c);
    return MHD_YES;
}

void
gw_http_published(gw_t *gw, uint64_t request_id, int rc, uint64_t seq,
                  const char *detail)
{
    gw_req_t **p = &gw->publishing;
    while (*p != NULL && (*p)->request_id != request_id)
        p = &(*p)->next_publishing;
    gw_metrics_publish(&gw->metrics, rc);
    if (*p == NULL)
        return; /* its client went away while stopping */
    gw_req_t *r = *p;
    *p = r->next_publishing;
    if (rc == 0 || rc == PARLEY_DUPLICATE) {
        gw_buf_t b = GW_BUF_INIT;
        gw_buf_printf(&b, "{\"seq\":%" PRIu64 ",\"duplicate\":%s}\n", seq,
                      rc == PARLEY_DUPLICATE ? "true" : "false");
        if (b.err == 0) {
            size_t len;
            char *data = gw_buf_take(&b, &len);
            r->answer = gw_http_owned(gw, data, len, "application/json", true);
        }
        gw_buf_free(&b);
        r->answer_status = 200;
    } else {
        gw_log_limited(GW_LOGK_PUBLISH, GW_LOG_INFO, "publish rejected: %s: %s",
                       parley_error_name(rc), detail);
        r->answer = s_error_response(gw, parley_error_name(rc),
                                     detail != NULL && detail[0] != '\0'
                                         ? detail
                                         : parley_strerror(rc));
        r->answer_status = s_reject_status(rc);
    }
    MHD_resume_connection(r->conn);
}

void
gw_http_abandon(gw_t *gw)
{
    while (gw->publishing != NULL) {
        gw_req_t *r = gw->publishing;
        gw->publishing = r->next_publishing;
        r->answer = s_error_response(gw, "unavailable", "the gateway is "
                                                        "stopping");
        r->answer_status = 503;
        MHD_resume_connection(r->conn);
    }
}

/* ------------------------------------------------------------- handler */

static gw_route_t
s_route(const char *url)
{
    static const struct {
        const char *path;
        gw_route_t route;
    } table[] = {
        { "/v1/state", GW_ROUTE_STATE },     { "/v1/updates", GW_ROUTE_UPDATES },
        { "/v1/events", GW_ROUTE_EVENTS },   { "/v1/keyring", GW_ROUTE_KEYRING },
        { "/metrics", GW_ROUTE_METRICS },    { "/healthz", GW_ROUTE_HEALTHZ },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(url, table[i].path) == 0)
            return table[i].route;
    if (strncmp(url, "/v1/", 4) == 0)
        return GW_ROUTE_OTHER;
    return GW_ROUTE_BOARD;
}

/* An OPTIONS request (a CORS preflight, or a client asking). */
static enum MHD_Result
s_options(gw_t *gw, struct MHD_Connection *c, gw_route_t route)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    const char *allow = route == GW_ROUTE_UPDATES ? "GET, HEAD, POST, OPTIONS"
                                                  : "GET, HEAD, OPTIONS";
    int bad = MHD_add_response_header(r, "Allow", allow) != MHD_YES;
    bad |= gw_http_headers(gw, r, true) < 0;
    if (gw->cfg->cors_origin != NULL) {
        bad |= MHD_add_response_header(r, "Access-Control-Allow-Methods", allow)
               != MHD_YES;
        bad |= MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                       "Content-Type, Last-Event-ID")
               != MHD_YES;
        bad |= MHD_add_response_header(r, "Access-Control-Max-Age", "600")
               != MHD_YES;
    }
    if (bad) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return gw_http_queue(gw, c, 204, r);
}

/* The first call: the request head is in. */
static enum MHD_Result
s_start(gw_t *gw, struct MHD_Connection *c, gw_req_t *r, const char *url,
        const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    r->route = s_route(url);
    gw->metrics.requests[r->route]++;
    if (strcmp(method, "OPTIONS") == 0 && r->route != GW_ROUTE_BOARD) {
        gw_http_request_complete(gw, c);
        return s_options(gw, c, r->route);
    }
    if (r->route == GW_ROUTE_UPDATES && strcmp(method, "POST") == 0) {
        r->route = GW_ROUTE_PUBLISH;
        gw->metrics.requests[GW_ROUTE_UPDATES]--;
        gw->metrics.requests[GW_ROUTE_PUBLISH]++;
        if (!gw->cfg->publish) {
            gw->metrics.publish_refused[GW_PUBREF_DISABLED]++;
            return gw_http_error(gw, c, 403, "forbidden",
                                 "publishing through this gateway is off "
                                 "(publish on in its configuration)");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "Content-Length");
        uint64_t n;
        if (cl != NULL && gw_parse_seq(cl, true, &n) == 0
            && n > gw->cfg->max_request_bytes) {
            gw->metrics.publish_refused[GW_PUBREF_TOO_LARGE]++;
            return gw_http_error(gw, c, 413, "too_large",
                                 "body of %" PRIu64 " bytes, over "
                                 "max_request_bytes (%zu)",
                                 n, gw->cfg->max_request_bytes);
        }
        r->post = true;
        return MHD_YES; /* the body comes in the next calls */
    }
    if (!get) {
        gw_http_request_complete(gw, c);
        return gw_http_error(gw, c, 405, "method_not_allowed",
                             "%s is not allowed here", method);
    }
    gw_http_request_complete(gw, c);
    switch (r->route) {
    case GW_ROUTE_BOARD: return s_board(gw, c, url);
    case GW_ROUTE_STATE: return s_state(gw, c);
    case GW_ROUTE_UPDATES: return s_updates(gw, c, r);
    case GW_ROUTE_KEYRING: return s_keyring(gw, c);
    case GW_ROUTE_METRICS: return s_metrics(gw, c);
    case GW_ROUTE_HEALTHZ: return s_healthz(gw, c);
    case GW_ROUTE_EVENTS: {
        gw_query_t q;
        enum MHD_Result ret;
        uint64_t last = 0;
        const char *lei = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      "Last-Event-ID");
        if (!s_query(gw, c, &q, GW_Q_FILTER | GW_Q_SINCE, &ret))
            return ret;
        if (lei != NULL && gw_query_last_event_id(lei, &last) < 0) {
            gw_query_free(&q);
            return gw_http_error(gw, c, 400, "bad_request",
                                 "Last-Event-ID: expected the seq of an "
                                 "event");
        }
        if (strcmp(method, "HEAD") == 0) {
            gw_query_free(&q);
            return gw_http_error(gw, c, 405, "method_not_allowed",
                                 "HEAD is not allowed here");
        }
        return gw_sse_open(gw, c, &q, lei != NULL, last);
    }
    default:
        return gw_http_error(gw, c, 404, "not_found", "no such resource");
    }
}

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *c, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    gw_t *gw = cls;
    gw_req_t *r = *con_cls;
    (void)version;
    if (r == NULL) {
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return MHD_NO;
        r->gw = gw;
        r->conn = c;
        *con_cls = r;
        return s_start(gw, c, r, url, method);
    }
    if (r->waiting) {
        /* Resumed: the answer is ready (or could not be made). */
        r->waiting = false;
        struct MHD_Response *a = r->answer;
        r->answer = NULL;
        if (a == NULL)
            return MHD_NO;
        return gw_http_queue(gw, c, r->answer_status, a);
    }
    if (!r->post)
        return MHD_NO; /* nothing else comes in more than one call */
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->body_len + n > gw->cfg->max_request_bytes) {
            /* A body without Content-Length that grows too big: the
             * connection is closed, there is no one to answer. */
            if (!r->too_large)
                gw->metrics.publish_refused[GW_PUBREF_TOO_LARGE]++;
            r->too_large = true;
            return MHD_NO;
        }
        char *grown = realloc(r->body, r->body_len + n + 1);
        if (grown == NULL)
            return MHD_NO;
        r->body = grown;
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        return MHD_YES;
    }
    gw_http_request_complete(gw, c);
    r->post = false;
    return s_publish(gw, c, r);
}

/* A request is over (answered, or its connection gone). */
static void
s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    gw_t *gw = cls;
    gw_req_t *r = *con_cls;
    (void)toe;
    if (r != NULL) {
        if (r->answer != NULL)
            MHD_destroy_response(r->answer);
        gw_query_free(&r->query);
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
    /* A kept-alive connection owes its next request from now on. */
    gw_conn_t *k = s_conn_of(c);
    if (k != NULL && !gw->stopping && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        s_wait(gw, k);
}

/* libmicrohttpd's own messages, at debug level (a peer can cause them). */
static void
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    gw_log(GW_LOG_DEBUG, "libmicrohttpd: %s", line);
}

int
gw_http_start(gw_t *gw)
{
    const gw_config_t *cfg = gw->cfg;
    if ((gw->ips = calloc(S_IP_BUCKETS, sizeof(*gw->ips))) == NULL)
        return -ENOMEM;
    gw->ips_buckets = S_IP_BUCKETS;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (cfg->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    gw->mhd = MHD_start_daemon(
        flags, 0, s_accept, gw, s_handler, gw,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&cfg->addr,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections + 1,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->connection_memory,
        MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify_connection, gw,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, gw,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, gw,
        MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_END);
    if (gw->mhd == NULL)
        return -EADDRINUSE;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = info != NULL ? info->port : 0;
    return 0;
}

void
gw_http_stop(gw_t *gw)
{
    if (gw->mhd != NULL) {
        MHD_stop_daemon(gw->mhd);
        gw->mhd = NULL;
    }
    for (size_t i = 0; gw->ips != NULL && i < gw->ips_buckets; i++)
        while (gw->ips[i] != NULL) {
            gw_ipcount_t *e = gw->ips[i];
            gw->ips[i] = e->next;
            free(e);
        }
    free(gw->ips);
    gw->ips = NULL;
}
