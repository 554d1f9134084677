/*
 * api.c - the ROUTER side: publish checks, group commit, replay, snapshot,
 * stats and ping.
 *
 * Memory: every buffer is sized from max_message_bytes and allocated once
 * in pd_api_new(), so the publish path does no malloc of its own. Replies
 * to publish, stats and ping are encoded into a queue and sent after the
 * turn's sync; replay and snapshot read the log, so they first commit the
 * pending batch and then answer at once.
 */
#include "api.h"

#include "clock.h"
#include "codec.h"
#include "facts.h"
#include "limit.h"
#include "log.h"
#include "pool.h"
#include "sign.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_SNDHWM 10000
/* Requests queued per connection before libzmq stops reading it (TCP
 * backpressure, nothing lost); with the frame cap it bounds memory. */
#define S_RCVHWM 1000
/* How long a cut waits for libzmq to release the port. */
#define S_REBIND_MS 5000
#define S_ID_MAX 255                /* ROUTER identities are 1..255 bytes */
#define S_QUEUE_BYTES (1024 * 1024) /* encoded replies waiting for the sync */
#define S_DECODE_SLACK (64 * 1024)  /* arena room beyond the message itself */
#define S_DELIVERY_OVERHEAD 64      /* Delivery fields around an envelope */
#define S_ACK_MAX 64                /* an encoded ack reply at most */
#define S_REPLAY_SCAN_MAX 20000     /* records one replay reply looks at */
#define S_SNAPSHOT_MAX 4096         /* deliveries the codec puts in a reply */

/*
 * Requests read per step of a turn. Their signature checks run on the
 * pool together; more than this would only hold more memory (one
 * parley__verify_t each) for no gain in parallelism.
 */
#define S_SLOTS 256
/* Below this many signatures a step checks them on the loop thread. */
#define S_PARALLEL_MIN 4
/*
 * Signatures of one connection checked in parallel per step, at most. The
 * rest are checked one by one in order, where a connection that has just
 * sent PD_LIMIT_BAD_MAX forgeries is cut off unverified. The next step's
 * checks start before this one's are counted (pd_api_turn()), so a
 * flooding peer gets at most twice this plus PD_LIMIT_BAD_MAX checks
 * before its cool-down stops them.
 */
#define S_PEER_PARALLEL_MAX (4 * PD_LIMIT_BAD_MAX)

/* The api's own counters (reported through stats.h). */
typedef struct {
    uint64_t received;      /* api messages read (every op) */
    uint64_t accepted;      /* updates appended to the log */
    uint64_t duplicates;    /* resends answered with the original seq */
    uint64_t rejected[PD_STATS_NCODES]; /* by -(code) - 1001 */
    uint64_t requests_publish;
    uint64_t requests_replay;
    uint64_t requests_snapshot;
    uint64_t requests_stats;
    uint64_t requests_ping;
    uint64_t turns_read_ahead; /* turns that synced with a step read ahead */
    uint64_t turn_requests_max; /* most requests one turn handled */
} s_counters_t;

/* Where a publish stands after the sequential pre-checks of its step. */
typedef enum {
    S_PRE_NONE = 0,   /* not a publish, or not decodable: handled later */
    S_PRE_BLOCKED,    /* its peer is cooling down after bad signatures */
    S_PRE_PREPARED,   /* envelope decoded; see prepare_rc */
    S_PRE_LIMITED,    /* prepared, but the signer's bucket was empty */
} s_pre_t;

/* One request read in this step, with what was decided about it so far. */
typedef struct {
    zmq_msg_t id, body;   /* the frames, kept until it is handled */
    int frames;           /* frames the message had */
    s_pre_t pre;
    int prepare_rc;       /* parley__verify_prepare(), with S_PRE_PREPARED */
    int sig_rc;           /* parley__verify_signature(), when it ran */
    bool sig_checked;
    bool on_pool;         /* its signature is checked on the pool */
    parley__verify_t v;   /* the decoded envelope between the steps */
} s_slot_t;

/* A reply waiting in the queue: identity then reply bytes, in q->buf. */
typedef struct {
    size_t off;        /* where the identity starts in the queue buffer */
    size_t id_len;
    size_t len;        /* reply bytes after the identity */
} s_queued_t;

struct pd_api {
    void *sock;                      /* ROUTER */
    char endpoint[256];              /* ZMQ_LAST_ENDPOINT */
    const pd_config_t *cfg;          /* borrowed */
    pd_storage_t *storage;           /* borrowed: where updates are kept */
    pd_feed_t *feed;                 /* borrowed */
    pd_zap_t *zap;                   /* borrowed: ACL, security counters */
    pd_limit_t *limit;               /* rate limits (owned) */
    char bound[256];                 /* ZMQ_LAST_ENDPOINT: what to rebind */
    const char *req_user;            /* User-Id of the request being
                                        handled, NULL if none */
    const parley_keyring_t *ring;    /* borrowed, swapped on reload */
    pd_stats_t *stats;               /* borrowed: the registry */
    uint8_t daemon_id[16];
    s_counters_t counters;

    /* decoding the current request */
    uint8_t *arena_buf;              /* max_message_bytes + slack */
    size_t arena_cap;
    parley__arena_t arena;
    parley__request_t req;
    parley_update_t update;          /* the update being published */

    /* requests read in this step of the turn */
    s_slot_t *slots;                 /* 2 x S_SLOTS: see pd_api_turn() */
    s_slot_t *ahead;                 /* a step being checked between turns */
    size_t n_ahead;                  /* its requests, 0 if none */
    s_slot_t *cur;                   /* the one being handled */
    pd_pool_t *pool;                 /* threads for the signature checks */

    /* the batch of this turn */
    uint8_t *queue;                  /* S_QUEUE_BYTES of queued replies */
    size_t queue_used;
    s_queued_t *queued;              /* PD_API_TURN_MAX + 1 entries */
    size_t n_queued;
    parley_update_t feed_update;     /* a record decoded the slow way for
                                        its feed topics */

    /* reading the log for replay and snapshot */
    uint8_t *record;                 /* one payload, max_message_bytes */
    size_t record_cap;
    uint8_t *scratch;                /* arena for decoding a record */
    size_t scratch_cap;
    parley_update_t rec_update;      /* a record's decoded update */
    uint8_t *items;                  /* Delivery bytes of a replay reply */
    size_t items_cap;
    parley__bytes_t *item_list;      /* PD_API_REPLAY_MAX entries */
    uint8_t *out;                    /* an encoded replay reply */
    size_t out_cap;
};

static int s_finish(pd_api_t *self, s_slot_t *slots, size_t n, int rc);

/* ================================================================= stats */

static uint64_t
s_keyring_signers(const void *ctx)
{
    const pd_api_t *self = ctx;
    return self->ring != NULL ? parley_keyring_size(self->ring) : 0;
}

static uint64_t
s_verify_threads(const void *ctx)
{
    return pd_pool_size(((const pd_api_t *)ctx)->pool);
}

/* Report the api's counters, and those of the pool and limits it owns. */
static void
s_stats_register(pd_api_t *self, pd_stats_t *st)
{
    const s_counters_t *c = &self->counters;
    pd_stats_counter(st, PD_STAT_RECEIVED, &c->received);
    pd_stats_counter(st, PD_STAT_ACCEPTED, &c->accepted);
    pd_stats_counter(st, PD_STAT_DUPLICATES, &c->duplicates);
    for (int i = 0; i < PD_STATS_NCODES; i++)
        pd_stats_counter(st, (pd_stat_t)(PD_STAT_REJECTED + i),
                         &c->rejected[i]);
    pd_stats_counter(st, PD_STAT_REQUESTS_PUBLISH, &c->requests_publish);
    pd_stats_counter(st, PD_STAT_REQUESTS_REPLAY, &c->requests_replay);
    pd_stats_counter(st, PD_STAT_REQUESTS_SNAPSHOT, &c->requests_snapshot);
    pd_stats_counter(st, PD_STAT_REQUESTS_STATS, &c->requests_stats);
    pd_stats_counter(st, PD_STAT_REQUESTS_PING, &c->requests_ping);
    pd_stats_getter(st, PD_STAT_KEYRING_SIGNERS, s_keyring_signers, self);
    pd_stats_getter(st, PD_STAT_VERIFY_THREADS, s_verify_threads, self);
    pd_stats_counter(st, PD_STAT_TURNS_READ_AHEAD, &c->turns_read_ahead);
    pd_stats_counter(st, PD_STAT_TURN_REQUESTS_MAX, &c->turn_requests_max);
    pd_limit_stats_register(self->limit, st);
}

/* ================================================================= setup */

pd_api_t *
pd_api_new(void *ctx, const pd_config_t *cfg, pd_storage_t *storage,
           pd_feed_t *feed, pd_zap_t *zap, pd_stats_t *stats,
           const uint8_t daemon_id[16], int *err)
{
    pd_api_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    size_t max = cfg->max_message_bytes;
    self->cfg = cfg;
    self->storage = storage;
    self->feed = feed;
    self->zap = zap;
    self->stats = stats;
    memcpy(self->daemon_id, daemon_id, sizeof(self->daemon_id));

    self->arena_cap = max + S_DECODE_SLACK;
    self->record_cap = max;
    self->scratch_cap = max + S_DECODE_SLACK;
    self->items_cap = PD_API_REPLY_BUDGET + max + S_DELIVERY_OVERHEAD;
    self->out_cap = self->items_cap
                    + PD_API_REPLAY_MAX * parley__reply_item_overhead(max)
                    + 256;
    self->arena_buf = malloc(self->arena_cap);
    self->queue = malloc(S_QUEUE_BYTES);
    self->queued = calloc(PD_API_TURN_MAX + 1, sizeof(s_queued_t));
    self->record = malloc(self->record_cap);
    self->scratch = malloc(self->scratch_cap);
    self->items = malloc(self->items_cap);
    self->item_list = calloc(PD_API_REPLAY_MAX, sizeof(parley__bytes_t));
    self->out = malloc(self->out_cap);
    self->limit = pd_limit_new(cfg->rate_limit, cfg->rate_burst);
    self->slots = calloc(2 * S_SLOTS, sizeof(s_slot_t));
    if (self->arena_buf == NULL || self->queue == NULL || self->queued == NULL
        || self->record == NULL
        || self->scratch == NULL || self->items == NULL
        || self->item_list == NULL || self->out == NULL
        || self->limit == NULL || self->slots == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    parley__arena_init(&self->arena, self->arena_buf, self->arena_cap);
    /* One checker per core: the loop thread is one of them. */
    unsigned cpus = pd_pool_cpus();
    if ((self->pool = pd_pool_new(cpus > 8 ? 7 : cpus - 1, err)) == NULL)
        goto fail;

    self->sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (self->sock == NULL) {
        *err = -zmq_errno();
        goto fail;
    }
    /* A frame over the cap drops the peer; one between max_message_bytes
     * and the cap is read and answered too_large. Twice the limit: enough
     * to tell a client its request is too big, and with S_RCVHWM a bound
     * on what one connection can make libzmq hold. */
    int64_t cap = 2 * (int64_t)max;
    int zero = 0, sndhwm = S_SNDHWM, rcvhwm = S_RCVHWM;
    int ipv6 = strchr(cfg->api, '[') != NULL;
    size_t len = sizeof(self->endpoint);
    if (zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &cap, sizeof(cap)) < 0
        || zmq_setsockopt(self->sock, ZMQ_ROUTER_MANDATORY, &zero,
                          sizeof(zero)) < 0
        || zmq_setsockopt(self->sock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) < 0
        || zmq_setsockopt(self->sock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) < 0
        || zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0
        || zmq_setsockopt(self->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0) {
        *err = -zmq_errno();
        goto fail;
    }
    if ((*err = pd_zap_secure(zap, self->sock, "api")) < 0)
        goto fail;
    if (zmq_bind(self->sock, cfg->api) < 0
        || zmq_getsockopt(self->sock, ZMQ_LAST_ENDPOINT, self->endpoint, &len)
               < 0) {
        *err = -zmq_errno();
        goto fail;
    }
    memcpy(self->bound, self->endpoint, sizeof(self->bound));
    s_stats_register(self, stats);
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
    if (self->n_ahead > 0) {
        /* Read but never handled (the daemon is stopping on an error):
         * no answer; the clients resend elsewhen. */
        pd_pool_wait(self->pool);
        s_finish(self, self->ahead, self->n_ahead, -ECANCELED);
        self->n_ahead = 0;
    }
    if (self->sock != NULL)
        zmq_close(self->sock); /* ZMQ_LINGER 0, unless the server set it */
    parley__arena_reset(&self->arena);
    free(self->arena_buf);
    free(self->queue);
    free(self->queued);
    free(self->record);
    free(self->scratch);
    free(self->items);
    free(self->item_list);
    free(self->out);
    pd_limit_destroy(&self->limit);
    pd_pool_destroy(&self->pool);
    free(self->slots);
    free(self);
    *apip = NULL;
}

int
pd_api_cut(pd_api_t *self)
{
    if (zmq_unbind(self->sock, self->bound) < 0)
        return -zmq_errno();
    /* The unbind finishes in libzmq's I/O thread; until then the port is
     * still taken. */
    struct timespec pause = { 0, 5 * 1000 * 1000 };
    for (int waited = 0; waited < S_REBIND_MS; waited += 5) {
        if (zmq_bind(self->sock, self->bound) == 0) {
            pd_zap_connections_cut(self->zap, self->sock);
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

void
pd_api_set_keyring(pd_api_t *self, const parley_keyring_t *ring)
{
    self->ring = ring;
}


/* ========================================================= reply plumbing */

/* The identity of the request being handled. */
typedef struct {
    const uint8_t *data;
    size_t len;
} s_peer_t;

/* Send [identity][bytes] now; a peer that is gone or full is skipped. */
static void
s_send(pd_api_t *self, const uint8_t *id, size_t id_len, const void *buf,
       size_t len)
{
    if (zmq_send(self->sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send(self->sock, buf, len, ZMQ_DONTWAIT) < 0)
        pd_log_limited(PD_LOG_KEY_API, PD_LOG_WARN, "api: reply not sent: %s",
                       zmq_strerror(zmq_errno()));
}

static int s_commit(pd_api_t *self);

/* Bytes left in the reply queue for the encoded reply after an identity
 * of id_len bytes; 0 if no further reply may be queued. */
static size_t
s_queue_room(const pd_api_t *self, size_t id_len)
{
    size_t room = S_QUEUE_BYTES - self->queue_used;
    return self->n_queued < PD_API_TURN_MAX + 1 && room > id_len
               ? room - id_len
               : 0;
}

/*
 * Encode a small reply into the queue, to be sent after the turn's sync.
 * If the queue is full the batch is committed first (s_publish() makes
 * room before it appends, so that this never publishes an update whose
 * ack is not sent yet).
 *
 * Returns:   0, or a fatal store error from that commit.
 */
static int
s_queue(pd_api_t *self, s_peer_t peer, const parley__reply_t *r)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t off = self->queue_used;
        size_t room = s_queue_room(self, peer.len);
        size_t len;
        if (room > 0
            && parley__reply_encode(r, self->queue + off + peer.len, room,
                                    &len) == 0) {
            memcpy(self->queue + off, peer.data, peer.len);
            self->queued[self->n_queued++] =
                (s_queued_t){ .off = off, .id_len = peer.len, .len = len };
            self->queue_used += peer.len + len;
            return 0;
        }
        int rc = s_commit(self);
        if (rc < 0)
            return rc;
    }
    /* A small reply always fits an empty queue. */
    pd_log(PD_LOG_ERROR, "api: reply does not fit the queue; dropped");
    return 0;
}

/* Index of a reject code in counters.rejected, or -1. */
static int
s_code_index(int code)
{
    int i = -code - 1001;
    return i >= 0 && i < PD_STATS_NCODES ? i : -1;
}

/*
 * Queue a Reject, count it and log it (rate-limited: peers trigger this).
 * A code that is not a reject (an internal error) goes out as unavailable.
 */
static int
s_reject(pd_api_t *self, s_peer_t peer, uint64_t request_id, int code,
         uint64_t first_seq, const char *detail)
{
    int i = s_code_index(code);
    if (i < 0) {
        pd_log_limited(PD_LOG_KEY_API, PD_LOG_ERROR, "api: internal error: %s",
                       parley_strerror(code));
        code = PARLEY_EUNAVAILABLE;
        i = s_code_index(code);
    }
    self->counters.rejected[i]++;
    pd_log_limited((pd_log_key_t)(PD_LOG_KEY_REJECT + i), PD_LOG_INFO,
                   "rejected request %llu: %s%s%s", (unsigned long long)request_id,
                   parley_strerror(code),
                   detail != NULL && detail[0] != '\0' ? " " : "",
                   detail != NULL ? detail : "");
    parley__reply_t r = { .request_id = request_id,
                          .type = PARLEY__REPLY_REJECT,
                          .code = code,
                          .message = parley_strerror_long(code),
                          .first_seq = first_seq };
    return s_queue(self, peer, &r);
}

static int
s_ack(pd_api_t *self, s_peer_t peer, uint64_t request_id, uint64_t seq,
      bool duplicate)
{
    parley__reply_t r = { .request_id = request_id,
                          .type = PARLEY__REPLY_ACK,
                          .seq = seq,
                          .duplicate = duplicate };
    return s_queue(self, peer, &r);
}

/*
 * Publish a durable record on the feed, on the topics of its update (read
 * from its bytes: the same for every storage, whoever submitted it).
 */
static void
s_feed(pd_api_t *self, const pd_storage_record_t *rec)
{
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    parley__facts_t f;
    parley__envelope_t e;
    parley__arena_t arena;
    parley__arena_init(&arena, self->scratch, self->scratch_cap);
    int rc = parley__facts_decode(rec->env, rec->len, &f, &e,
                                  &self->feed_update, &arena);
    if (rc == 0)
        rc = pd_feed_publish(self->feed, rec->seq, rec->received_at,
                             rec->env, rec->len,
                             (const char(*)[PARLEY_TOPIC_MAX])topics,
                             parley__facts_topics(&f, topics));
    parley__arena_reset(&arena);
    if (rc < 0)
        pd_log_limited(PD_LOG_KEY_API, PD_LOG_WARN,
                       "feed: seq %llu not published: %s",
                       (unsigned long long)rec->seq, parley_strerror(rc));
}

/*
 * Make the batch durable, then send the queued replies, then publish the
 * new deliveries. If the commit fails nothing is sent: the caller must
 * stop.
 *
 * Returns:   0 or the storage's error.
 */
static int
s_commit(pd_api_t *self)
{
    int rc = pd_storage_commit(self->storage);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < self->n_queued; i++) {
        const s_queued_t *q = &self->queued[i];
        s_send(self, self->queue + q->off, q->id_len,
               self->queue + q->off + q->id_len, q->len);
    }
    self->n_queued = self->queue_used = 0;
    pd_storage_record_t rec;
    while (pd_storage_applied(self->storage, &rec))
        s_feed(self, &rec);
    return 0;
}

/* ================================================================ publish */

/*
 * "signer <key id><why>" for the log line of a reject (only "<why>" if the
 * envelope did not decode), made in buf. Only rejects need it: the key id
 * is a hash, not worth computing for every accepted update.
 */
static const char *
s_signer_label(const s_slot_t *slot, const char *why,
               char buf[PARLEY_KEYID_CHARS + 64])
{
    char id[PARLEY_KEYID_CHARS + 1] = "";
    if (slot->v.decoded)
        parley_key_id(id, slot->v.env.signer);
    snprintf(buf, PARLEY_KEYID_CHARS + 64, "%s%s%s", *id ? "signer " : "", id,
             why);
    return buf;
}

/*
 * Checks 2-9 of DESIGN.md for one PublishRequest; on success the update is
 * appended and indexed and its ack queued. A reject changes no state.
 *
 * The rate limits come before the signature check (the one costly step):
 * a peer that has sent too many bad signatures is refused, undecoded, for
 * a while; then, after the signer lookup, the signer's bucket must hold a
 * token. The peer check comes first so that forgeries under a real
 * signer's key do not drain that signer's bucket.
 *
 * Returns:   0, or a fatal store error.
 */
static int
s_publish(pd_api_t *self, s_peer_t peer)
{
    uint64_t rid = self->req.request_id;
    const uint8_t *env = self->req.update.data;
    size_t len = self->req.update.len;
    parley_update_t *u = &self->update;
    s_slot_t *slot = self->cur;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES] = { 0 };
    char keyid[PARLEY_KEYID_CHARS + 64] = "";
    const char *why = ""; /* said after the signer in a reject's log line */

    /* Checks 2-4 ran before this, in s_precheck() and on the pool; here
     * their outcome is counted and answered in request order. */
    self->counters.requests_publish++;
    if (self->ring == NULL)
        return s_reject(self, peer, rid, PARLEY_EUNAVAILABLE, 0, NULL);
    if (slot->pre == S_PRE_BLOCKED)
        return s_reject(self, peer, rid, PARLEY_ERATELIMITED, 0,
                        "(peer cooling down after bad signatures)");
    int rc = slot->pre == S_PRE_NONE ? PARLEY_EUNAVAILABLE : slot->prepare_rc;
    if (rc == 0 && slot->pre == S_PRE_LIMITED) {
        why = " (over rate_limit)";
        rc = PARLEY_ERATELIMITED;
    } else if (rc == 0 && !slot->sig_checked
               && pd_limit_peer_blocked(self->limit, peer.data, peer.len,
                                        parley__mono_us() / 1000)) {
        /* Not checked on the pool, and meanwhile its peer was cut off. */
        why = " (peer cooling down after bad signatures)";
        rc = PARLEY_ERATELIMITED;
    } else if (rc == 0) {
        rc = slot->sig_checked ? slot->sig_rc
                               : parley__verify_signature(&slot->v);
        if (rc == 0)
            rc = parley__verify_body(&slot->v, self->ring, u, signer);
        else if (rc == PARLEY_EBADSIG
                 && pd_limit_peer_bad(self->limit, peer.data, peer.len,
                                      parley__mono_us() / 1000))
            pd_log_limited(PD_LOG_KEY_BAD_SIGNATURES, PD_LOG_WARN,
                           "api: a peer sent %d bad signatures within a "
                           "second (last under %s); its publishes are "
                           "refused unverified for %d ms",
                           PD_LIMIT_BAD_MAX, s_signer_label(slot, "", keyid),
                           PD_LIMIT_COOLDOWN_MS);
    }
    if (rc != 0)
        return s_reject(self, peer, rid, rc, 0,
                        s_signer_label(slot, why, keyid));

    int64_t now = parley_now_ms();
    int64_t skew = (int64_t)self->cfg->max_clock_skew * 1000;
    if (u->issued_at < now - skew)
        return s_reject(self, peer, rid, PARLEY_ESTALE, 0, NULL);
    if (u->issued_at > now + skew)
        return s_reject(self, peer, rid, PARLEY_EFUTURE, 0, NULL);

    /* Room for the ack first: it must go out before the delivery. */
    if (s_queue_room(self, peer.len) < S_ACK_MAX && (rc = s_commit(self)) < 0)
        return rc;
    pd_storage_update_t su = { .env = env, .len = len, .signer = signer,
                               .update = u, .received_at = now };
    pd_storage_done_t done;
    rc = pd_storage_submit(self->storage, &su, &done);
    if (rc == PD_STORAGE_FULL) {
        if ((rc = s_commit(self)) < 0)
            return rc;
        rc = pd_storage_submit(self->storage, &su, &done);
    }
    if (rc == PD_STORAGE_DONE && done.duplicate) {
        self->counters.duplicates++;
        return s_ack(self, peer, rid, done.seq, true);
    }
    if (rc == PD_STORAGE_DONE) {
        self->counters.accepted++;
        pd_log(PD_LOG_DEBUG, "accepted seq %llu: %s phase %u",
               (unsigned long long)done.seq, u->negotiation,
               (unsigned)u->phase);
        return s_ack(self, peer, rid, done.seq, false);
    }
    if (rc > 0 || s_code_index(rc) >= 0)
        return s_reject(self, peer, rid, rc > 0 ? PARLEY_EUNAVAILABLE : rc,
                        0, NULL);
    return rc; /* the storage failed: stop */
}

/* ======================================================= replay, snapshot */

/*
 * Read seq from the log and decode its update into self->rec_update.
 * Returns 0, -ENOENT (not held), PARLEY_EMALFORMED/EINVAL (does not
 * decode) or another negative error. *len receives the payload size.
 */
static int
s_read_record(pd_api_t *self, uint64_t seq, int64_t *received_at, size_t *len)
{
    int rc = pd_storage_read(self->storage, seq, received_at, self->record,
                           self->record_cap, len);
    if (rc < 0)
        return rc;
    parley__arena_t arena;
    parley__envelope_t env;
    parley__arena_init(&arena, self->scratch, self->scratch_cap);
    rc = parley__envelope_decode(self->record, *len, &env, &arena);
    if (rc == 0)
        rc = parley__update_decode(env.body.data, env.body.len,
                                   &self->rec_update, &arena);
    parley__arena_reset(&arena);
    return rc;
}

static void
s_send_reply(pd_api_t *self, s_peer_t peer, const parley__reply_t *r,
             uint8_t *buf, size_t cap)
{
    size_t len;
    int rc = parley__reply_encode(r, buf, cap, &len);
    if (rc < 0) {
        pd_log(PD_LOG_ERROR, "api: reply does not encode: %s",
               parley_strerror(rc));
        return;
    }
    s_send(self, peer.data, peer.len, buf, len);
}

/* Answer a reject at once (outside the queue: the batch is committed). */
static int
s_reject_now(pd_api_t *self, s_peer_t peer, int code, uint64_t first_seq,
             const char *detail)
{
    int rc = s_reject(self, peer, self->req.request_id, code, first_seq,
                      detail);
    return rc < 0 ? rc : s_commit(self);
}

/*
 * May the connection that sent the request read this update? With CURVE
 * on, a client limited to some topics gets only updates carried on one of
 * them, as on the feed.
 */
static bool
s_readable(pd_api_t *self, bool reads_all, const parley_update_t *u)
{
    if (reads_all)
        return true;
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    size_t n = parley_topics(u, topics);
    return pd_zap_may_read(self->zap, self->req_user,
                           (const char(*)[PARLEY_TOPIC_MAX])topics, n);
}

/* REPLAY: deliveries from from_seq on, filtered, paged by count and size. */
static int
s_replay(pd_api_t *self, s_peer_t peer)
{
    const parley__request_t *q = &self->req;
    self->counters.requests_replay++;
    int rc = s_commit(self);
    if (rc < 0)
        return rc;
    uint64_t first = pd_storage_first(self->storage);
    uint64_t head = pd_storage_head(self->storage);
    uint64_t from = q->from_seq > 0 ? q->from_seq : 1;
    if ((first > 0 && from < first) || (first == 0 && head > 0 && from <= head))
        return s_reject_now(self, peer, PARLEY_ETRUNCATED,
                            first > 0 ? first : head + 1, NULL);
    uint64_t to = q->to_seq == 0 || q->to_seq > head ? head : q->to_seq;
    uint32_t limit = q->limit == 0 || q->limit > PD_API_REPLAY_MAX
                         ? PD_API_REPLAY_MAX
                         : q->limit;
    bool reads_all = pd_zap_reads_all(self->zap, self->req_user);
    size_t n = 0, used = 0, looked = 0;
    uint64_t seq = from;
    for (; seq <= to && n < limit && looked < S_REPLAY_SCAN_MAX; seq++) {
        int64_t received_at;
        size_t len, dlen;
        looked++;
        rc = s_read_record(self, seq, &received_at, &len);
        if (rc == PARLEY_EMALFORMED || rc == PARLEY_EINVALID)
            continue; /* pd_index_scan() logged it at start */
        if (rc < 0) {
            pd_log_limited(PD_LOG_KEY_QUERY, PD_LOG_ERROR,
                           "replay: reading seq %llu: %s",
                           (unsigned long long)seq, parley_strerror(rc));
            return s_reject_now(self, peer, PARLEY_EUNAVAILABLE, 0, NULL);
        }
        if (!parley_filter_match(&q->filter.filter, &self->rec_update)
            || !s_readable(self, reads_all, &self->rec_update))
            continue;
        size_t need = len + S_DELIVERY_OVERHEAD;
        if (n > 0 && used + need > PD_API_REPLY_BUDGET)
            break; /* this seq starts the next page */
        if (parley__delivery_encode(seq, received_at, self->record, len,
                                    self->items + used,
                                    self->items_cap - used, &dlen) < 0)
            break;
        self->item_list[n++] = (parley__bytes_t){ self->items + used, dlen };
        used += dlen;
    }
    parley__reply_t r = { .request_id = q->request_id,
                          .type = PARLEY__REPLY_REPLAY,
                          .deliveries = self->item_list,
                          .n_deliveries = n,
                          .next_seq = seq,
                          .head_seq = head,
                          .done = seq > to };
    s_send_reply(self, peer, &r, self->out, self->out_cap);
    return 0;
}

/* A growing buffer of Delivery bytes for a snapshot (not the hot path). */
typedef struct {
    uint8_t *buf;
    size_t used, cap;
    size_t *offs;      /* start of each delivery */
    size_t n;
} s_snap_t;

static int
s_snap_add(s_snap_t *s, uint64_t seq, int64_t received_at, const void *env,
           size_t len)
{
    size_t need = len + S_DELIVERY_OVERHEAD, dlen;
    if (s->cap - s->used < need) {
        size_t cap = s->cap * 2 > s->used + need ? s->cap * 2 : s->used + need;
        uint8_t *b = realloc(s->buf, cap);
        if (b == NULL)
            return -ENOMEM;
        s->buf = b;
        s->cap = cap;
    }
    int rc = parley__delivery_encode(seq, received_at, env, len,
                                     s->buf + s->used, s->cap - s->used,
                                     &dlen);
    if (rc < 0)
        return rc;
    s->offs[s->n++] = s->used;
    s->used += dlen;
    return 0;
}

/*
 * SNAPSHOT: the update holding each (negotiation, party, phase) now, minus
 * expired ones, filtered; ascending seq, each seq once; seq = head.
 */
static int
s_snapshot(pd_api_t *self, s_peer_t peer)
{
    const parley__request_t *q = &self->req;
    self->counters.requests_snapshot++;
    int rc = s_commit(self);
    if (rc < 0)
        return rc;
    uint64_t *seqs = NULL;
    s_snap_t s = { 0 };
    parley__bytes_t *list = NULL;
    uint8_t *out = NULL;
    int n = pd_storage_latest(self->storage, &seqs);
    if (n < 0)
        goto unavailable;
    if (n > 0 && (s.offs = malloc((size_t)n * sizeof(size_t))) == NULL)
        goto unavailable;
    int64_t now = parley_now_ms();
    bool reads_all = pd_zap_reads_all(self->zap, self->req_user);
    for (int i = 0; i < n; i++) {
        int64_t received_at;
        size_t len;
        rc = s_read_record(self, seqs[i], &received_at, &len);
        if (rc == -ENOENT || rc == PARLEY_EMALFORMED || rc == PARLEY_EINVALID)
            continue; /* removed by retention, or logged at start */
        if (rc < 0)
            goto unavailable;
        const parley_update_t *u = &self->rec_update;
        if (u->expires_at != 0 && u->expires_at <= now)
            continue;
        if (!parley_filter_match(&q->filter.filter, u)
            || !s_readable(self, reads_all, u))
            continue;
        if (s_snap_add(&s, seqs[i], received_at, self->record, len) < 0)
            goto unavailable;
    }
    if (s.n > S_SNAPSHOT_MAX) {
        char why[96];
        snprintf(why, sizeof(why), "(snapshot holds %zu updates, over %d)",
                 s.n, S_SNAPSHOT_MAX);
        free(seqs);
        free(s.offs);
        free(s.buf);
        return s_reject_now(self, peer, PARLEY_EUNAVAILABLE, 0, why);
    }
    list = calloc(s.n > 0 ? s.n : 1, sizeof(*list));
    size_t out_cap = s.used + s.n * parley__reply_item_overhead(0) + 64;
    out = malloc(out_cap);
    if (list == NULL || out == NULL)
        goto unavailable;
    for (size_t i = 0; i < s.n; i++) {
        size_t end = i + 1 < s.n ? s.offs[i + 1] : s.used;
        list[i] = (parley__bytes_t){ s.buf + s.offs[i], end - s.offs[i] };
    }
    parley__reply_t r = { .request_id = q->request_id,
                          .type = PARLEY__REPLY_SNAPSHOT,
                          .deliveries = list,
                          .n_deliveries = s.n,
                          .seq = pd_storage_head(self->storage) };
    s_send_reply(self, peer, &r, out, out_cap);
    rc = 0;
    goto out;
unavailable:
    pd_log_limited(PD_LOG_KEY_QUERY, PD_LOG_ERROR, "snapshot failed: %s",
                   parley_strerror(rc < 0 ? rc : -ENOMEM));
    rc = s_reject_now(self, peer, PARLEY_EUNAVAILABLE, 0, NULL);
out:
    free(seqs);
    free(s.offs);
    free(s.buf);
    free(list);
    free(out);
    return rc;
}

/* ============================================================ stats, ping */

static int
s_stats(pd_api_t *self, s_peer_t peer)
{
    parley__stat_t v[PD_STAT_COUNT];
    self->counters.requests_stats++;
    size_t n = pd_stats_collect(self->stats, v);
    parley__reply_t r = { .request_id = self->req.request_id,
                          .type = PARLEY__REPLY_STATS,
                          .stats = v,
                          .n_stats = n };
    return s_queue(self, peer, &r);
}

static int
s_ping(pd_api_t *self, s_peer_t peer)
{
    self->counters.requests_ping++;
    parley__reply_t r = { .request_id = self->req.request_id,
                          .type = PARLEY__REPLY_PING,
                          .feed = pd_feed_endpoint(self->feed),
                          .seq = pd_storage_head(self->storage),
                          .first_seq = pd_storage_first(self->storage),
                          .version = PARLEY_VERSION };
    memcpy(r.daemon_id, self->daemon_id, sizeof(r.daemon_id));
    return s_queue(self, peer, &r);
}

/* ================================================================== turn */

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
    default:
        return "unknown";
    }
}

/* Decode and dispatch one request body. 0 or a fatal store error. */
static int
s_handle(pd_api_t *self, s_peer_t peer, const void *buf, size_t len)
{
    parley__request_t *q = &self->req;
    if (len > self->cfg->max_message_bytes) {
        /* Not decoded: a peer must not make us parse megabytes. */
        return s_reject(self, peer, parley__facts_request_id(buf, len),
                        PARLEY_ETOOLARGE, 0, NULL);
    }
    parley__arena_reset(&self->arena);
    int rc = parley__request_decode(buf, len, q, &self->arena);
    pd_log(PD_LOG_DEBUG, "request %llu: %s, %zu bytes",
           (unsigned long long)q->request_id, s_op_name(q->op), len);
    if (rc == PARLEY_EMALFORMED)
        return s_reject(self, peer, 0, PARLEY_EMALFORMED, 0, NULL);
    if (rc < 0)
        return s_reject(self, peer, q->request_id, PARLEY_EBADREQUEST, 0,
                        NULL);
    switch (q->op) {
    case PARLEY__OP_PUBLISH:
        return s_publish(self, peer);
    case PARLEY__OP_REPLAY:
        return s_replay(self, peer);
    case PARLEY__OP_SNAPSHOT:
        return s_snapshot(self, peer);
    case PARLEY__OP_STATS:
        return s_stats(self, peer);
    case PARLEY__OP_PING:
        return s_ping(self, peer);
    default:
        return s_reject(self, peer, q->request_id, PARLEY_EBADREQUEST, 0,
                        NULL);
    }
}

/*
 * Read one message (all its frames) without blocking into slot.
 * Returns 1 if one was read, 0 if none was waiting.
 */
static int
s_recv(pd_api_t *self, s_slot_t *slot)
{
    zmq_msg_init(&slot->id);
    zmq_msg_init(&slot->body);
    slot->frames = 0;
    slot->pre = S_PRE_NONE;
    slot->sig_checked = false;
    slot->on_pool = false;
    slot->v.decoded = 0;
    if (zmq_msg_recv(&slot->id, self->sock, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&slot->id);
        zmq_msg_close(&slot->body);
        if (e != EAGAIN && e != EINTR)
            pd_log_limited(PD_LOG_KEY_API, PD_LOG_WARN, "api: receive: %s",
                           zmq_strerror(e));
        return 0;
    }
    slot->frames = 1;
    bool more = zmq_msg_more(&slot->id);
    if (more) {
        /* The frame after the identity is the request. */
        more = false;
        if (zmq_msg_recv(&slot->body, self->sock, 0) >= 0) {
            slot->frames++;
            more = zmq_msg_more(&slot->body);
        }
    }
    while (more) {
        /* Any further frame is read and dropped so that the next message
         * starts clean; the request is then answered malformed. */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        more = false;
        if (zmq_msg_recv(&extra, self->sock, 0) >= 0) {
            slot->frames++;
            more = zmq_msg_more(&extra);
        }
        zmq_msg_close(&extra);
    }
    self->counters.received++;
    return 1;
}

/*
 * The sequential part of checks 2-4 for a publish, in arrival order: the
 * peer's cool-down, the envelope decode and signer lookup, the signer's
 * token bucket. What is left for the signature check is marked
 * S_PRE_PREPARED with prepare_rc 0. Anything that is not a well-formed
 * publish is left S_PRE_NONE for s_handle() to answer.
 */
static void
s_precheck(pd_api_t *self, s_slot_t *slot, int64_t now_us)
{
    size_t len = zmq_msg_size(&slot->body);
    size_t id_len = zmq_msg_size(&slot->id);
    if (slot->frames != 2 || len > self->cfg->max_message_bytes
        || self->ring == NULL || id_len == 0 || id_len > S_ID_MAX)
        return;
    parley__arena_reset(&self->arena);
    if (parley__request_decode(zmq_msg_data(&slot->body), len, &self->req,
                               &self->arena)
            != 0
        || self->req.op != PARLEY__OP_PUBLISH)
        return;
    if (pd_limit_peer_blocked(self->limit, zmq_msg_data(&slot->id), id_len,
                              now_us / 1000)) {
        slot->pre = S_PRE_BLOCKED;
        return;
    }
    slot->prepare_rc = parley__verify_prepare(&slot->v, self->ring,
                                              self->req.update.data,
                                              self->req.update.len);
    slot->pre = S_PRE_PREPARED;
    if (slot->prepare_rc == 0
        && !pd_limit_signer_take(self->limit, slot->v.env.signer, now_us))
        slot->pre = S_PRE_LIMITED;
}

/* Publishes of one connection in a step. */
typedef struct {
    const void *id;   /* ROUTER identity */
    size_t len;
    unsigned count;   /* its signatures planned for the pool */
} s_peer_count_t;

/*
 * Mark the prepared publishes whose signatures go to the pool: all of
 * them, but at most S_PEER_PARALLEL_MAX from any one connection.
 */
static void
s_plan_pool(s_slot_t *slots, size_t n)
{
    s_peer_count_t peers[S_SLOTS];
    size_t n_peers = 0;
    for (size_t i = 0; i < n; i++) {
        s_slot_t *slot = &slots[i];
        if (slot->pre != S_PRE_PREPARED || slot->prepare_rc != 0)
            continue;
        const void *id = zmq_msg_data(&slot->id);
        size_t len = zmq_msg_size(&slot->id);
        size_t p = 0;
        while (p < n_peers
               && (peers[p].len != len || memcmp(peers[p].id, id, len) != 0))
            p++;
        if (p == n_peers)
            peers[n_peers++] = (s_peer_count_t){ id, len, 0 };
        if (peers[p].count < S_PEER_PARALLEL_MAX) {
            peers[p].count++;
            slot->on_pool = true;
        }
    }
}

/* Pool work item: the signature check of one prepared publish. */
static void
s_check_signature(void *ctx, size_t i)
{
    s_slot_t *slot = &((s_slot_t *)ctx)[i];
    if (slot->on_pool) {
        slot->sig_rc = parley__verify_signature(&slot->v);
        slot->sig_checked = true;
    }
}

/* Answer one read request. Returns 0 or a fatal store error. */
static int
s_process(pd_api_t *self, s_slot_t *slot)
{
    int rc = 0;
    s_peer_t peer = { zmq_msg_data(&slot->id), zmq_msg_size(&slot->id) };
    if (peer.len == 0 || peer.len > S_ID_MAX)
        return 0; /* cannot be answered */
    if (slot->frames != 2) {
        rc = s_reject(self, peer, 0, PARLEY_EMALFORMED, 0, "(frame count)");
    } else {
        /* The ZAP user id (the CURVE client's name) decides what replay
         * and snapshot may send; valid while body is. */
        self->cur = slot;
        self->req_user = zmq_msg_gets(&slot->body, "User-Id");
        rc = s_handle(self, peer, zmq_msg_data(&slot->body),
                      zmq_msg_size(&slot->body));
        self->req_user = NULL;
        self->cur = NULL;
    }
    return rc;
}

/*
 * Gather one step into slots: read up to max (at most S_SLOTS) requests
 * and run the cheap checks in order. Returns the number read; the caller
 * starts their signature checks with s_start().
 */
static size_t
s_gather(pd_api_t *self, s_slot_t *slots, size_t max)
{
    size_t n = 0;
    while (n < max && n < S_SLOTS && s_recv(self, &slots[n]) == 1)
        n++;
    if (n == 0)
        return 0;
    int64_t now_us = parley__mono_us();
    for (size_t i = 0; i < n; i++)
        s_precheck(self, &slots[i], now_us);
    s_plan_pool(slots, n);
    return n;
}

/* Start the signature checks of n gathered slots on the pool; every start
 * is followed by one pd_pool_wait() before the slots are handled. A step
 * with few signatures to check (pings, replays, rejects) wakes no worker:
 * pd_pool_wait() checks them on the loop thread. */
static void
s_start(pd_api_t *self, s_slot_t *slots, size_t n)
{
    size_t checks = 0;
    for (size_t i = 0; i < n; i++)
        checks += slots[i].on_pool;
    if (n > 0)
        pd_pool_start(self->pool, n,
                      checks >= S_PARALLEL_MIN ? S_PARALLEL_MIN : SIZE_MAX,
                      s_check_signature, slots);
}

/*
 * Handle the n gathered and checked requests of a step in order (after a
 * fatal error, only release them). Returns 0 or a fatal store error.
 */
static int
s_finish(pd_api_t *self, s_slot_t *slots, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++) {
        s_slot_t *slot = &slots[i];
        if (rc == 0)
            rc = s_process(self, slot);
        parley__verify_end(&slot->v);
        zmq_msg_close(&slot->id);
        zmq_msg_close(&slot->body);
    }
    return rc;
}

/*
 * Turns are a pipeline of steps over two sets of slots, so that the pool
 * always has signatures to check: while it checks one step, the loop
 * thread reads and pre-checks the next one, then handles the checked step
 * in order (bodies, ordering checks, the log) while the pool goes on with
 * the next. A turn that stops at PD_API_TURN_MAX leaves its last step
 * being checked "ahead" while it syncs and answers its batch; the next
 * turn (or pd_api_flush()) handles it.
 */
int
pd_api_turn(pd_api_t *self)
{
    s_slot_t *cur = self->ahead;
    size_t n = self->n_ahead;
    self->n_ahead = 0;
    if (n == 0) {
        cur = self->slots;
        n = s_gather(self, cur, S_SLOTS);
        s_start(self, cur, n);
    }
    s_slot_t *next = cur == self->slots ? self->slots + S_SLOTS : self->slots;
    size_t handled = 0;
    int rc = 0;
    while (n > 0 && handled < PD_API_TURN_MAX) {
        /* handled + n <= PD_API_TURN_MAX: read no more than the turn may
         * still handle, and once it is full a whole step for the next. */
        size_t room = PD_API_TURN_MAX - handled - n;
        size_t n_next = 0;
        if (rc == 0)
            n_next = s_gather(self, next, room > 0 ? room : S_SLOTS);
        pd_pool_wait(self->pool);
        s_start(self, next, n_next);
        rc = s_finish(self, cur, n, rc);
        handled += n;
        s_slot_t *t = cur;
        cur = next;
        next = t;
        n = n_next;
    }
    if (rc < 0) {
        if (n > 0) {
            pd_pool_wait(self->pool);
            s_finish(self, cur, n, rc);
        }
        return rc;
    }
    self->ahead = cur;
    self->n_ahead = n;
    if (n > 0)
        self->counters.turns_read_ahead++;
    if (handled > self->counters.turn_requests_max)
        self->counters.turn_requests_max = handled;
    parley__arena_reset(&self->arena);
    return s_commit(self);
}

bool
pd_api_pending(const pd_api_t *self)
{
    return self->n_ahead > 0;
}

int
pd_api_flush(pd_api_t *self)
{
    int rc = 0;
    if (self->n_ahead > 0) {
        pd_pool_wait(self->pool);
        rc = s_finish(self, self->ahead, self->n_ahead, 0);
        self->n_ahead = 0;
    }
    parley__arena_reset(&self->arena);
    return rc < 0 ? rc : s_commit(self);
}
