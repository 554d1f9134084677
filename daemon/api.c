/*
 * api.c - the ROUTER socket: reading messages, dispatch by op, the reply
 * queue, the read slices, cut and rebind (api.h).
 *
 * Memory: every buffer is allocated once in pd_api_new(). The queue holds
 * the encoded replies of one turn's publishes (at most PD_INGEST_TURN_MAX
 * acks and rejects of a few hundred bytes each). Reads wait in the read
 * scheduler (reads.h); a read's answer is built when it is served, in
 * query's buffers or the api's small reply buffer. Every reply goes out
 * in a buffer of its own that the scheduler counts until libzmq frees it
 * (s_send()), so that unread replies cannot grow without bound.
 */
#include "api.h"

#include "clock.h"
#include "codec.h"
#include "facts.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* Replies queued per connection in libzmq at most. The read scheduler
 * keeps a connection below it (PD_READS_CONN_MESSAGES read replies and
 * PD_READS_OTHER_BYTES of others), so libzmq never has to refuse one. */
#define S_SNDHWM 10000
/* Requests queued per connection before libzmq stops reading it (TCP
 * backpressure, nothing lost); with the frame cap it bounds memory. */
#define S_RCVHWM 1000
/* How long a cut waits for libzmq to release the port. */
#define S_REBIND_MS 5000
#define S_QUEUE_BYTES (1024 * 1024) /* encoded replies waiting for a commit */
#define S_QUEUE_MAX (PD_INGEST_TURN_MAX + 1) /* replies queued */
/* A reject, stats, or ping reply with its checkpoint (up to 16.5 KiB with
 * PD_COSIGN_MAX cosignatures). */
#define S_SMALL_REPLY (32 * 1024)
/* What one Merkle proof costs a read slice, in records: its O(log n)
 * reads of 32 bytes from the hash file (about 2 x 32 for 2^32 leaves). */
#define S_PROOF_COST 64
#define S_DECODE_SLACK (64 * 1024)  /* arena room beyond the message itself */

/* The api's own counters (reported through stats.h). */
typedef struct {
    uint64_t received;      /* api messages read (every op) */
    uint64_t rejected[PD_STATS_NCODES]; /* by -(code) - 1001 */
    uint64_t requests_replay;
    uint64_t requests_snapshot;
    uint64_t requests_stats;
    uint64_t requests_ping;
} s_counters_t;

/* The connection a reply goes to. */
typedef struct {
    const uint8_t *data;
    size_t len;
} s_peer_t;

/* An entry of the queue: an encoded reply, identity then reply bytes,
 * in the queue buffer. */
typedef struct {
    size_t off;        /* where the identity starts in the queue buffer */
    size_t id_len;
    size_t len;        /* reply bytes after the identity */
    uint64_t ack_seq;  /* an ack: its seq (checked at the flush), else 0 */
    uint64_t request_id; /* of an ack */
} s_queued_t;

struct pd_api {
    void *sock;                      /* ROUTER */
    char endpoint[256];              /* ZMQ_LAST_ENDPOINT */
    char bound[256];                 /* ZMQ_LAST_ENDPOINT: what to rebind */
    pd_api_deps_t d;                 /* borrowed dependencies */
    uint8_t daemon_id[16];
    s_counters_t counters;

    /* decoding the request being answered */
    uint8_t *arena_buf;              /* max_message_bytes + slack */
    size_t arena_cap;
    parley__arena_t arena;
    parley__request_t req;
    uint8_t *small;                  /* S_SMALL_REPLY: a reply sent at once */

    /* replies to publishes waiting for the commit, in request order */
    uint8_t *queue;                  /* S_QUEUE_BYTES */
    size_t queue_used;
    s_queued_t *queued;              /* S_QUEUE_MAX entries */
    size_t n_queued;
};

static void s_stats_register(pd_api_t *self, pd_stats_t *st);

/* ================================================================= setup */

/* Make, configure and bind the ROUTER. 0 or -errno. */
static int
s_bind(pd_api_t *self, void *ctx)
{
    const pd_config_t *cfg = self->d.cfg;
    self->sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (self->sock == NULL)
        return -zmq_errno();
    /* A frame over the cap drops the peer; one between max_message_bytes
     * and the cap is read and answered too_large. Twice the limit: enough
     * to tell a client its request is too big, and with S_RCVHWM a bound
     * on what one connection can make libzmq hold. */
    int64_t cap = 2 * (int64_t)cfg->max_message_bytes;
    int zero = 0, one = 1, sndhwm = S_SNDHWM, rcvhwm = S_RCVHWM;
    int ipv6 = strchr(cfg->api, '[') != NULL;
    size_t len = sizeof(self->endpoint);
    if (zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &cap, sizeof(cap)) < 0
        /* A reply to a connection that is gone fails (EHOSTUNREACH)
         * instead of vanishing, so that its queued reads are dropped. */
        || zmq_setsockopt(self->sock, ZMQ_ROUTER_MANDATORY, &one,
                          sizeof(one)) < 0
        || zmq_setsockopt(self->sock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) < 0
        || zmq_setsockopt(self->sock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) < 0
        || zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0
        || zmq_setsockopt(self->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0)
        return -zmq_errno();
    int rc = pd_zap_secure(self->d.zap, self->sock, "api", -1);
    if (rc < 0)
        return rc;
    if (zmq_bind(self->sock, cfg->api) < 0
        || zmq_getsockopt(self->sock, ZMQ_LAST_ENDPOINT, self->endpoint, &len)
               < 0)
        return -zmq_errno();
    memcpy(self->bound, self->endpoint, sizeof(self->bound));
    return 0;
}

pd_api_t *
pd_api_new(void *ctx, const pd_api_deps_t *deps, int *err)
{
    pd_api_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->d = *deps;
    memcpy(self->daemon_id, deps->daemon_id, sizeof(self->daemon_id));
    self->d.daemon_id = self->daemon_id;
    self->arena_cap = deps->cfg->max_message_bytes + S_DECODE_SLACK;
    self->arena_buf = malloc(self->arena_cap);
    self->small = malloc(S_SMALL_REPLY);
    self->queue = malloc(S_QUEUE_BYTES);
    self->queued = calloc(S_QUEUE_MAX, sizeof(s_queued_t));
    if (self->arena_buf == NULL || self->small == NULL || self->queue == NULL
        || self->queued == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    parley__arena_init(&self->arena, self->arena_buf, self->arena_cap);
    if ((*err = s_bind(self, ctx)) < 0)
        goto fail;
    s_stats_register(self, deps->stats);
    *err = 0;
    return self;
fail:
    pd_api_destroy(&self);
    return NULL;
}

void
pd_api_destroy(pd_api_t **apip)
{
    if (apip == NULL || *apip == NULL)
        return;
    pd_api_t *self = *apip;
    if (self->sock != NULL)
        zmq_close(self->sock); /* ZMQ_LINGER 0, unless the server set it */
    parley__arena_reset(&self->arena);
    free(self->arena_buf);
    free(self->small);
    free(self->queue);
    free(self->queued);
    free(self);
    *apip = NULL;
}

int
pd_api_cut(pd_api_t *self)
{
    /* zmq_poll() may have read the first frame of a client's message
     * ahead (a ROUTER does), and a client may send several frames. That
     * is safe here, unlike after a zmq_disconnect() (parley__zmq_move()
     * in the library): the unbind ends each connection from its own end,
     * and libzmq still hands over what it had queued, the rest of that
     * message included (test_zmq_move, test_curve). */
    if (zmq_unbind(self->sock, self->bound) < 0)
        return -zmq_errno();
    /* The unbind finishes in libzmq's I/O thread; until then the port is
     * still taken. */
    struct timespec pause = { 0, 5 * 1000 * 1000 };
    for (int waited = 0; waited < S_REBIND_MS; waited += 5) {
        if (zmq_bind(self->sock, self->bound) == 0) {
            pd_zap_connections_cut(self->d.zap, self->sock);
            /* Nobody is left to read the answers. */
            pd_reads_drop_all(self->d.reads);
            return 0;
        }
        if (zmq_errno() != EADDRINUSE)
            break;
        nanosleep(&pause, NULL);
    }
    return -zmq_errno();
}

void *
pd_api_socket(const pd_api_t *self)
{
    return self->sock;
}

const char *
pd_api_endpoint(const pd_api_t *self)
{
    return self->endpoint;
}

/* ================================================================ framing */

/*
 * Read one message (all its frames) without blocking into msg.
 * Returns 1 if one was read, 0 if none was waiting.
 */
static int
s_recv(void *ctx, pd_msg_t *msg)
{
    pd_api_t *self = ctx;
    zmq_msg_init(&msg->id);
    zmq_msg_init(&msg->body);
    msg->frames = 0;
    if (zmq_msg_recv(&msg->id, self->sock, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&msg->id);
        zmq_msg_close(&msg->body);
        if (e != EAGAIN && e != EINTR)
            pd_log_limited(PD_LOG_KEY_API, PD_LOG_WARN, "api: receive: %s",
                           zmq_strerror(e));
        return 0;
    }
    msg->frames = 1;
    bool more = zmq_msg_more(&msg->id);
    if (more) {
        /* The frame after the identity is the request. */
        more = false;
        if (zmq_msg_recv(&msg->body, self->sock, 0) >= 0) {
            msg->frames++;
            more = zmq_msg_more(&msg->body);
        }
    }
    while (more) {
        /* Any further frame is read and dropped so that the next message
         * starts clean; the request is then answered malformed. */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        more = false;
        if (zmq_msg_recv(&extra, self->sock, 0) >= 0) {
            msg->frames++;
            more = zmq_msg_more(&extra);
        }
        zmq_msg_close(&extra);
    }
    self->counters.received++;
    return 1;
}

/*
 * Send [identity][len bytes at buf] to peer, now, in a buffer of its own
 * that the read scheduler counts against c as kind until libzmq frees
 * it. A reply of kind OTHER to a connection that leaves too many unread
 * is dropped.
 *
 * Returns:   0, -EHOSTUNREACH (the peer is gone), or another negative
 *            error (not sent; logged, counted replies_dropped).
 */
static int
s_send(pd_api_t *self, s_peer_t peer, pd_reads_conn_t *c,
       pd_reads_kind_t kind, const void *buf, size_t len)
{
    pd_reads_t *reads = self->d.reads;
    int rc = -ENOMEM;
    void *hint, *data = NULL;
    zmq_msg_t m;
    if (c == NULL)
        goto dropped;
    if (kind == PD_READS_REPLY_OTHER && !pd_reads_may_send(c)) {
        rc = -ENOBUFS;
        goto dropped;
    }
    if ((data = pd_reads_reply_new(reads, c, kind, buf, len, peer.len, &hint))
        == NULL)
        goto dropped;
    if (zmq_msg_init_data(&m, data, len, pd_reads_reply_free, hint) < 0) {
        pd_reads_reply_free(data, hint);
        goto dropped;
    }
    if (zmq_send(self->sock, peer.data, peer.len, ZMQ_SNDMORE | ZMQ_DONTWAIT)
            < 0
        || zmq_msg_send(&m, self->sock, ZMQ_DONTWAIT) < 0) {
        rc = -zmq_errno();
        zmq_msg_close(&m); /* frees the buffer: pd_reads_reply_free() */
        goto dropped;
    }
    return 0;
dropped:
    pd_reads_reply_dropped(reads);
    if (rc == -EHOSTUNREACH) /* it closed its connection: nobody to tell */
        pd_log(PD_LOG_DEBUG, "api: reply not sent: the peer is gone");
    else
        pd_log_limited(PD_LOG_KEY_API, PD_LOG_WARN, "api: reply not sent: %s",
                       rc == -ENOBUFS ? "the peer does not read its replies"
                                      : zmq_strerror(-rc));
    return rc;
}

/* Encode a small reply into self->small and send it now (s_send()). */
static int
s_send_small(pd_api_t *self, s_peer_t peer, pd_reads_conn_t *c,
             pd_reads_kind_t kind, const parley__reply_t *r)
{
    size_t len;
    int rc = parley__reply_encode(r, self->small, S_SMALL_REPLY, &len);
    if (rc < 0) {
        pd_log(PD_LOG_ERROR, "api: reply does not encode: %s",
               parley_error_name(rc));
        return rc;
    }
    return s_send(self, peer, c, kind, self->small, len);
}

/* The scheduler's account of peer's connection, or NULL (logged by
 * s_send(), which then drops the reply). */
static pd_reads_conn_t *
s_conn(pd_api_t *self, s_peer_t peer)
{
    return pd_reads_conn(self->d.reads, peer.data, peer.len);
}

/* ================================================================ rejects */

/* Index of a reject code in counters.rejected, or -1. */
static int
s_code_index(int code)
{
    int i = -code - 1001;
    return i >= 0 && i < PD_STATS_NCODES ? i : -1;
}

/* Room for a reject's message: the code's sentence and the detail (a
 * forbidden publish names what the keyring allows). */
#define S_REJECT_TEXT 512

/*
 * Make r the Reject with code, count it and log it (rate-limited: peers
 * trigger this). A code that is not a reject (an internal error) goes out
 * as unavailable. The message is the code's sentence and the detail the
 * log has, written into text (S_REJECT_TEXT bytes), which r points to.
 * first_seq goes out with TRUNCATED (the oldest seq held), signer_seq
 * with REPLAY (the signer's last accepted signer_seq, so that a publisher
 * whose choice collided can choose above it).
 */
static void
s_reject_reply(pd_api_t *self, uint64_t request_id, int code,
               uint64_t first_seq, uint64_t signer_seq, const char *detail,
               char *text, parley__reply_t *r)
{
    int i = s_code_index(code);
    if (i < 0) {
        pd_log_limited(PD_LOG_KEY_API, PD_LOG_ERROR, "api: internal error: %s",
                       parley_error_name(code));
        code = PARLEY_EUNAVAILABLE;
        i = s_code_index(code);
    }
    self->counters.rejected[i]++;
    bool said = detail != NULL && detail[0] != '\0';
    pd_log_limited((pd_log_key_t)(PD_LOG_KEY_REJECT + i), PD_LOG_INFO,
                   "rejected request %llu: %s%s%s",
                   (unsigned long long)request_id, parley_error_name(code),
                   said ? " " : "", said ? detail : "");
    snprintf(text, S_REJECT_TEXT, "%s%s%s", parley_strerror(code),
             said ? ": " : "", said ? detail : "");
    *r = (parley__reply_t){
        .request_id = request_id,
        .type = PARLEY__REPLY_REJECT,
        .code = code,
        .message = text,
        .first_seq = first_seq,
        .signer_seq = code == PARLEY_EREPLAY ? signer_seq : 0
    };
}

/* Answer a reject now, to c as kind. Returns as s_send(). */
static int
s_reject_to(pd_api_t *self, s_peer_t peer, pd_reads_conn_t *c,
            pd_reads_kind_t kind, uint64_t request_id, int code,
            uint64_t first_seq, const char *detail)
{
    parley__reply_t r;
    char text[S_REJECT_TEXT];
    s_reject_reply(self, request_id, code, first_seq, 0, detail, text, &r);
    return s_send_small(self, peer, c, kind, &r);
}

/* Answer a request that is not a read with a reject, now. */
static void
s_reject_now(pd_api_t *self, s_peer_t peer, uint64_t request_id, int code,
             uint64_t first_seq, const char *detail)
{
    s_reject_to(self, peer, s_conn(self, peer), PD_READS_REPLY_OTHER,
                request_id, code, first_seq, detail);
}

/* ======================================================= answering a read */

/* A read being served: its connection, and the decoded request. */
typedef struct {
    s_peer_t peer;
    pd_reads_conn_t *conn;
    pd_read_t *rd;
} s_serving_t;

/* The CURVE key a queued read came with (X-Key), NULL without CURVE. */
static const char *
s_key(const pd_read_t *rd)
{
    return rd->has_key ? rd->key : NULL;
}

/*
 * One step of a replay or snapshot. Returns 0 (answered: sent or
 * refused), PD_QUERY_MORE, or -EHOSTUNREACH (its peer is gone).
 */
static int
s_step(pd_api_t *self, const s_serving_t *sv, pd_query_budget_t *b)
{
    pd_query_answer_t a;
    pd_read_t *rd = sv->rd;
    int rc = rd->op == PARLEY__OP_REPLAY
                 ? pd_query_replay_step(self->d.query, &self->req,
                                        s_key(rd), &rd->job, b, &a)
                 : pd_query_snapshot_step(self->d.query, &self->req,
                                          s_key(rd), &rd->job, b, &a);
    if (rc == PD_QUERY_MORE)
        return rc;
    if (rc == 0)
        rc = s_send(self, sv->peer, sv->conn, PD_READS_REPLY_READ, a.reply,
                    a.len);
    else
        rc = s_reject_to(self, sv->peer, sv->conn, PD_READS_REPLY_READ,
                         self->req.request_id, rc, a.first_seq, a.detail);
    return rc == -EHOSTUNREACH ? rc : 0;
}

static int
s_stats(pd_api_t *self, const s_serving_t *sv)
{
    parley__stat_t v[PD_STAT_COUNT];
    /* The counters tell how much everyone publishes: a permission. */
    if (!pd_zap_may_stats(self->d.zap, s_key(sv->rd)))
        return s_reject_to(self, sv->peer, sv->conn, PD_READS_REPLY_OTHER,
                           self->req.request_id, PARLEY_EFORBIDDEN, 0,
                           "(stats need stats=yes in curve_clients)");
    parley__reply_t r = { .request_id = self->req.request_id,
                          .type = PARLEY__REPLY_STATS,
                          .stats = v,
                          .n_stats = pd_stats_collect(self->d.stats, v) };
    return s_send_small(self, sv->peer, sv->conn, PD_READS_REPLY_OTHER, &r);
}

static int
s_ping(pd_api_t *self, const s_serving_t *sv)
{
    /* The checkpoint's tree size tells how much everyone publishes: only
     * for clients that may read the counters. */
    size_t cp_len = 0;
    const char *cp = pd_zap_may_stats(self->d.zap, s_key(sv->rd))
                         ? pd_translog_checkpoint(self->d.translog, &cp_len)
                         : NULL;
    /* The feed socket of the client's access class, and its view of the
     * head (feed.h, query.h). */
    int k = pd_zap_class_of(self->d.zap, s_key(sv->rd));
    parley__reply_t r = { .request_id = self->req.request_id,
                          .type = PARLEY__REPLY_PING,
                          .feed = pd_feed_endpoint_of(self->d.feed, k),
                          .seq = pd_query_view_head(self->d.query, k),
                          .first_seq = pd_storage_first(self->d.storage),
                          .version = PARLEY_VERSION,
                          .checkpoint = { (const uint8_t *)cp, cp_len } };
    pd_storage_state_t st;
    pd_storage_state(self->d.storage, &st);
    memcpy(r.daemon_id, self->daemon_id, sizeof(r.daemon_id));
    memcpy(r.log_id, st.log_id, sizeof(r.log_id));
    r.catching_up = st.catching_up;
    r.storage = self->d.storage->ops->name;
    r.health = st.health;
    return s_send_small(self, sv->peer, sv->conn, PD_READS_REPLY_OTHER, &r);
}

/*
 * A checkpoint, inclusion or consistency request: answered in one step,
 * which costs the slice S_PROOF_COST records per proof (an inclusion
 * request names at most PARLEY__INCLUSION_MAX seqs, so a step is
 * bounded). Returns as s_send().
 */
static int
s_transparency(pd_api_t *self, const s_serving_t *sv, pd_query_budget_t *b)
{
    const parley__request_t *q = &self->req;
    pd_translog_answer_t a;
    int rc;
    size_t proofs = q->op == PARLEY__OP_INCLUSION
                        ? (q->n_seqs < PARLEY__INCLUSION_MAX
                               ? q->n_seqs
                               : PARLEY__INCLUSION_MAX)
                        : q->op == PARLEY__OP_CONSISTENCY;
    size_t cost = 1 + proofs * S_PROOF_COST;
    b->records -= b->records < cost ? b->records : cost;
    if (!pd_zap_may_stats(self->d.zap, s_key(sv->rd))) {
        /* Tree sizes tell how much everyone publishes, as the counters. */
        rc = PARLEY_EFORBIDDEN;
        snprintf(a.detail, sizeof(a.detail),
                 "(the transparency log's checkpoints and proofs need "
                 "stats=yes in curve_clients)");
    } else if (self->d.translog == NULL) {
        rc = PARLEY_EUNAVAILABLE;
        snprintf(a.detail, sizeof(a.detail), "the transparency log is off");
    } else {
        rc = pd_translog_answer(self->d.translog, q, &a);
    }
    if (rc == 0)
        return s_send(self, sv->peer, sv->conn, PD_READS_REPLY_READ, a.reply,
                      a.len);
    return s_reject_to(self, sv->peer, sv->conn, PD_READS_REPLY_READ,
                       q->request_id, rc, 0, a.detail);
}

/*
 * Serve one step of rd, the oldest read of connection c, within b.
 * Returns 0 (answered), PD_QUERY_MORE (it goes on later), or
 * -EHOSTUNREACH (its peer is gone).
 */
static int
s_serve(pd_api_t *self, pd_reads_conn_t *c, pd_read_t *rd,
        pd_query_budget_t *b)
{
    s_serving_t sv = { .conn = c, .rd = rd };
    sv.peer.data = pd_reads_conn_id(c, &sv.peer.len);
    parley__arena_reset(&self->arena);
    int rc = parley__request_decode(rd->bytes, rd->len, &self->req,
                                    &self->arena);
    if (rc < 0) /* it decoded when it was queued */
        rc = s_reject_to(self, sv.peer, c, PD_READS_REPLY_READ, 0, -EPROTO,
                         0, "(decodes no more)");
    else if (rd->op == PARLEY__OP_STATS)
        rc = s_stats(self, &sv);
    else if (rd->op == PARLEY__OP_PING)
        rc = s_ping(self, &sv);
    else if (rd->op == PARLEY__OP_CHECKPOINT || rd->op == PARLEY__OP_INCLUSION
             || rd->op == PARLEY__OP_CONSISTENCY)
        rc = s_transparency(self, &sv, b);
    else
        rc = s_step(self, &sv, b);
    if (rd->op == PARLEY__OP_STATS || rd->op == PARLEY__OP_PING) {
        /* Cheap, but not free: a slice of nothing but pings ends too. */
        b->records -= b->records > 0;
    }
    parley__arena_reset(&self->arena);
    return rc == PD_QUERY_MORE || rc == -EHOSTUNREACH ? rc : 0;
}

void
pd_api_reads(pd_api_t *self)
{
    pd_reads_t *reads = self->d.reads;
    bool spent = false;
    pd_reads_slice_begin(reads);
    int64_t start = parley__mono_us();
    pd_query_budget_t b = { .records = PD_READS_SLICE_RECORDS,
                            .deadline_us = start + PD_READS_SLICE_US };
    while (pd_reads_queued(reads)) {
        if (b.records < PD_READS_STEP_MIN
            || parley__mono_us() >= b.deadline_us) {
            spent = true;
            break;
        }
        pd_reads_conn_t *c;
        pd_read_t *rd = pd_reads_next(reads, &c);
        if (rd == NULL)
            break; /* the rest wait for their replies to be read */
        int rc = s_serve(self, c, rd, &b);
        if (rc == PD_QUERY_MORE) {
            pd_reads_yield(reads, c);
        } else {
            pd_reads_finish(reads, c);
            if (rc == -EHOSTUNREACH)
                pd_reads_drop(reads, c);
        }
    }
    pd_reads_slice_end(reads, spent);
}

static bool
s_is_read(parley__op_t op)
{
    return op == PARLEY__OP_REPLAY || op == PARLEY__OP_SNAPSHOT
           || op == PARLEY__OP_STATS || op == PARLEY__OP_PING
           || op == PARLEY__OP_CHECKPOINT || op == PARLEY__OP_INCLUSION
           || op == PARLEY__OP_CONSISTENCY;
}

/* Queue the read just decoded into self->req for the read slices. */
static void
s_queue_read(pd_api_t *self, s_peer_t peer, const void *buf, size_t len,
             const char *key)
{
    parley__request_t *q = &self->req;
    s_counters_t *n = &self->counters;
    n->requests_replay += q->op == PARLEY__OP_REPLAY;
    n->requests_snapshot += q->op == PARLEY__OP_SNAPSHOT;
    n->requests_stats += q->op == PARLEY__OP_STATS;
    n->requests_ping += q->op == PARLEY__OP_PING;
    pd_reads_conn_t *c = s_conn(self, peer);
    int rc = c != NULL ? pd_reads_push(self->d.reads, c, (int)q->op, buf, len,
                                       key)
                       : -ENOMEM;
    char detail[64];
    if (rc == -ENOBUFS) {
        snprintf(detail, sizeof(detail), "(%d reads waiting on this "
                                         "connection)",
                 PD_READS_CONN_REQUESTS);
        s_reject_now(self, peer, q->request_id, PARLEY_ERATELIMITED, 0,
                     detail);
    } else if (rc < 0) {
        s_reject_now(self, peer, q->request_id, PARLEY_EUNAVAILABLE, 0,
                     rc == -ENOMEM ? "(out of memory)" : "(key too long)");
    }
}

static const char *
s_op_name(parley__op_t op)
{
    switch (op) {
    case PARLEY__OP_PUBLISH:
        return "publish";
    case PARLEY__OP_REPLAY:
        return "replay";
    case PARLEY__OP_SNAPSHOT:
        return "snapshot";
    case PARLEY__OP_STATS:
        return "stats";
    case PARLEY__OP_PING:
        return "ping";
    case PARLEY__OP_CHECKPOINT:
        return "checkpoint";
    case PARLEY__OP_INCLUSION:
        return "inclusion";
    case PARLEY__OP_CONSISTENCY:
        return "consistency";
    default:
        return "unknown";
    }
}

/*
 * A message that is not a publish: queue a read for the read slices,
 * answer anything else now (a reject).
 */
static void
s_answer(void *ctx, pd_msg_t *msg)
{
    pd_api_t *self = ctx;
    s_peer_t peer = { zmq_msg_data(&msg->id), zmq_msg_size(&msg->id) };
    if (peer.len == 0 || peer.len > PD_INGEST_ID_MAX)
        return; /* cannot be answered */
    if (msg->frames != 2) {
        s_reject_now(self, peer, 0, PARLEY_EMALFORMED, 0, "(frame count)");
        return;
    }
    const void *buf = zmq_msg_data(&msg->body);
    size_t len = zmq_msg_size(&msg->body);
    if (len > self->d.cfg->max_message_bytes) {
        /* Not decoded: a peer must not make us parse megabytes. */
        s_reject_now(self, peer, parley__facts_request_id(buf, len),
                     PARLEY_ETOOLARGE, 0, NULL);
        return;
    }
    parley__request_t *q = &self->req;
    parley__arena_reset(&self->arena);
    int rc = parley__request_decode(buf, len, q, &self->arena);
    pd_log(PD_LOG_DEBUG, "request %llu: %s, %zu bytes",
           (unsigned long long)q->request_id, s_op_name(q->op), len);
    if (rc == PARLEY_EMALFORMED)
        s_reject_now(self, peer, 0, PARLEY_EMALFORMED, 0, NULL);
    else if (rc < 0)
        s_reject_now(self, peer, q->request_id, PARLEY_EBADREQUEST, 0, NULL);
    else if (s_is_read(q->op))
        /* The CURVE key the ZAP handler gave the connection decides what
         * the read may do, under the allow-list in force when it is
         * served: not the name (User-Id), which a reload may give to
         * another key. Valid while body is; the queue keeps a copy. */
        s_queue_read(self, peer, buf, len,
                     zmq_msg_gets(&msg->body, PD_ZAP_KEY_PROP));
    else /* a publish is ingest's; one here was misread: do not drop it */
        s_reject_now(self, peer, q->request_id,
                     q->op == PARLEY__OP_PUBLISH ? -EPROTO
                                                 : PARLEY_EBADREQUEST,
                     0, NULL);
    parley__arena_reset(&self->arena);
}

/* ============================================================ reply queue */

/* Bytes left in the queue for an encoded reply after an identity of
 * id_len bytes; 0 if no further reply may be queued. */
static size_t
s_queue_room(const pd_api_t *self, size_t id_len)
{
    size_t room = S_QUEUE_BYTES - self->queue_used;
    return self->n_queued < S_QUEUE_MAX && room > id_len ? room - id_len : 0;
}

static bool
s_room(void *ctx, size_t id_len)
{
    return s_queue_room(ctx, id_len) >= PD_INGEST_ACK_MAX;
}

/* Queue a reply to a publish (ingest's). 0 or -ENOBUFS. */
static int
s_reply(void *ctx, const uint8_t *id, size_t id_len, const parley__reply_t *r,
        const char *detail)
{
    pd_api_t *self = ctx;
    parley__reply_t reject;
    char text[S_REJECT_TEXT];
    if (r->type == PARLEY__REPLY_REJECT) {
        s_reject_reply(self, r->request_id, r->code, r->first_seq,
                       r->signer_seq, detail, text, &reject);
        r = &reject;
    }
    size_t off = self->queue_used;
    size_t room = s_queue_room(self, id_len);
    size_t len;
    if (room == 0
        || parley__reply_encode(r, self->queue + off + id_len, room, &len)
               != 0)
        return -ENOBUFS;
    memcpy(self->queue + off, id, id_len);
    self->queued[self->n_queued++] =
        (s_queued_t){ .off = off, .id_len = id_len, .len = len,
                      .ack_seq = r->type == PARLEY__REPLY_ACK ? r->seq : 0,
                      .request_id = r->request_id };
    self->queue_used += id_len + len;
    return 0;
}

/*
 * After a commit: send the queue in order. An ack of a seq above durable
 * is not durable (the commit failed): its request is answered
 * unavailable, with why as the message.
 */
static void
s_flush(void *ctx, uint64_t durable, const char *why)
{
    pd_api_t *self = ctx;
    for (size_t i = 0; i < self->n_queued; i++) {
        const s_queued_t *q = &self->queued[i];
        s_peer_t peer = { self->queue + q->off, q->id_len };
        pd_reads_conn_t *c = s_conn(self, peer);
        if (q->ack_seq > durable) {
            parley__reply_t r;
            char text[S_REJECT_TEXT];
            s_reject_reply(self, q->request_id, PARLEY_EUNAVAILABLE, 0, 0,
                           why != NULL ? why
                                       : "not durable: the commit failed",
                           text, &r);
            s_send_small(self, peer, c, PD_READS_REPLY_OTHER, &r);
        } else {
            s_send(self, peer, c, PD_READS_REPLY_OTHER,
                   self->queue + q->off + q->id_len, q->len);
        }
    }
    self->n_queued = self->queue_used = 0;
}

void
pd_api_io(pd_api_t *self, pd_ingest_io_t *io)
{
    io->ctx = self;
    io->recv = s_recv;
    io->answer = s_answer;
    io->reply = s_reply;
    io->room = s_room;
    io->flush = s_flush;
}

/* ================================================================= stats */

static void
s_stats_register(pd_api_t *self, pd_stats_t *st)
{
    const s_counters_t *c = &self->counters;
    pd_stats_counter(st, PD_STAT_RECEIVED, &c->received);
    for (int i = 0; i < PD_STATS_NCODES; i++)
        pd_stats_counter(st, (pd_stat_t)(PD_STAT_REJECTED + i),
                         &c->rejected[i]);
    pd_stats_counter(st, PD_STAT_REQUESTS_REPLAY, &c->requests_replay);
    pd_stats_counter(st, PD_STAT_REQUESTS_SNAPSHOT, &c->requests_snapshot);
    pd_stats_counter(st, PD_STAT_REQUESTS_STATS, &c->requests_stats);
    pd_stats_counter(st, PD_STAT_REQUESTS_PING, &c->requests_ping);
}
