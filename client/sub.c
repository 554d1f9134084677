/*
 * sub.c - the reliable subscriber (the Clone pattern of the zguide).
 *
 * The subscriber reads the feed and asks the api for what the feed cannot
 * prove it carried:
 *
 *   1. learn the feed endpoint from a ping (unless given), subscribe to
 *      the narrowest topics of the filter and to sys/heartbeat/, connect;
 *   2. wait for the first heartbeat: it proves the subscriptions are in
 *      place, so nothing published after its seq can be missed;
 *   3. start: LIVE after that seq, SEQ with a replay from since_seq, LAST
 *      with a snapshot (live deliveries are held meanwhile);
 *   4. live: a delivery beyond confirmed + 1 or a heartbeat beyond what
 *      is accounted for means a gap (HWM drop, reconnect, or simply
 *      updates the filter does not want): replay from confirmed + 1.
 *
 * The bookkeeping (merge.c) is plain data so it can be unit tested;
 * parley_sub_next() drives it with the two sockets.
 */
#include "keys.h"
#include "merge.h"
#include "options.h"
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Deliveries asked for per replay page (the daemon may cap it lower). */
#define S_REPLAY_LIMIT 256
/* Live deliveries held at most while a replay is under way. */
#define S_HOLD_LIMIT 2048
/* Feed messages read per turn, so api answers are not starved. */
#define S_FEED_BURST 512
/* Shortest wait for the first heartbeat (they come every second). */
#define S_FIRST_HEARTBEAT_MS 2500
/* Pause before asking again after the daemon refused a request. */
#define S_RETRY_PAUSE_MS 1000
#define S_HEARTBEAT_TOPIC "sys/heartbeat/"

/* =========================================================== subscriber */

/* The api request a subscriber has outstanding. */
typedef enum {
    S_REQ_NONE = 0,   /* nothing asked */
    S_REQ_QUEUED,     /* prepared, waiting for a connected daemon */
    S_REQ_SENT,       /* sent, waiting for the answer */
} s_req_state_t;

struct parley_sub {
    parley__wire_t *wire;            /* DEALER to the api (owns the ctx) */
    void *feed;                      /* SUB on the feed */
    parley__endpoints_t eps;         /* api endpoints */
    parley__filterbuf_t filter;      /* owned copy of the filter */
    const parley_keyring_t *keyring; /* borrowed, may be NULL */
    int timeout_ms;                  /* per api request, -1 = none */
    parley__merge_t merge;           /* what is known about the log */
    uint8_t daemon_id[16];           /* of the latest heartbeat */
    bool have_daemon_id;
    bool feed_more;                  /* the feed was left with messages */
    s_req_state_t req_state;
    parley__op_t req_op;             /* REPLAY or SNAPSHOT */
    uint64_t req_id;
    uint64_t req_from;               /* REPLAY: from_seq asked */
    int64_t req_deadline;            /* monotonic ms, -1 = none */
    int64_t retry_at;                /* no request before (after a reject) */
    parley_event_t ev;               /* what parley_sub_next() hands out */
    parley__request_t req;           /* scratch request */
};

/* Decode a heartbeat payload. 0 or EMALFORMED. */
static int
s_heartbeat_decode(const void *data, size_t len, parley__heartbeat_t *hb)
{
    uint8_t buf[512];
    parley__arena_t arena;
    parley__arena_init(&arena, buf, sizeof(buf));
    int rc = parley__heartbeat_decode(data, len, hb, &arena);
    parley__arena_reset(&arena);
    return rc;
}

/* The seq of Delivery bytes, 0 if they do not decode. */
static uint64_t
s_delivery_seq(const void *data, size_t len)
{
    /* room for the copy protobuf-c makes of the envelope: no heap use */
    uint8_t buf[PARLEY_ENVELOPE_MAX + 1024];
    parley__arena_t arena;
    uint64_t seq = 0;
    int64_t received_at;
    parley__bytes_t update;
    parley__arena_init(&arena, buf, sizeof(buf));
    if (parley__delivery_decode_raw(data, len, &seq, &received_at, &update,
                                    &arena) < 0)
        seq = 0;
    parley__arena_reset(&arena);
    return seq;
}

/*
 * A heartbeat from the feed. A new daemon id means the daemon restarted:
 * whatever was asked of the old one is lost and is asked again; if its log
 * is behind what we confirmed, it is a different log, and we follow it
 * from its first held seq.
 */
static void
s_on_heartbeat(parley_sub_t *self, const parley__heartbeat_t *hb)
{
    if (self->have_daemon_id
        && memcmp(self->daemon_id, hb->daemon_id, sizeof(hb->daemon_id)) != 0) {
        self->req_state = S_REQ_NONE;
        if (hb->seq < self->merge.confirmed && !self->merge.hold)
            parley__merge_rebase(&self->merge,
                                 hb->first_seq > 0 ? hb->first_seq - 1 : hb->seq);
    }
    memcpy(self->daemon_id, hb->daemon_id, sizeof(self->daemon_id));
    self->have_daemon_id = true;
    parley__merge_heartbeat(&self->merge, hb->seq);
}

/*
 * Read one feed message. Returns 1 for a heartbeat (with *hb filled), 0
 * for anything else (a delivery is handed to the merge), -EAGAIN when
 * nothing is waiting, or another negative error.
 */
static int
s_read_feed(parley_sub_t *self, parley__heartbeat_t *hb)
{
    zmq_msg_t topic, body;
    int rc = 0;
    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&topic, self->feed, ZMQ_DONTWAIT) < 0) {
        rc = -errno;
        goto done;
    }
    if (!zmq_msg_more(&topic))
        goto done; /* not [topic][payload]: ignore */
    if (zmq_msg_recv(&body, self->feed, 0) < 0) {
        rc = -errno;
        goto done;
    }
    if (zmq_msg_more(&body)) {
        /* Extra frames: drain and ignore the whole message. */
        while (zmq_msg_more(&body))
            if (zmq_msg_recv(&body, self->feed, 0) < 0) {
                rc = -errno;
                goto done;
            }
        goto done;
    }
    size_t tlen = zmq_msg_size(&topic);
    if (tlen == strlen(S_HEARTBEAT_TOPIC)
        && memcmp(zmq_msg_data(&topic), S_HEARTBEAT_TOPIC, tlen) == 0) {
        if (s_heartbeat_decode(zmq_msg_data(&body), zmq_msg_size(&body), hb)
            == 0)
            rc = 1;
        goto done;
    }
    uint64_t seq = s_delivery_seq(zmq_msg_data(&body), zmq_msg_size(&body));
    if (seq > 0)
        rc = parley__merge_live(&self->merge, seq, zmq_msg_data(&body),
                                zmq_msg_size(&body));
done:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    return rc;
}

/*
 * Read what the feed has waiting, up to a burst (so that api answers are
 * not starved) or until the hold buffer is full; self->feed_more says
 * whether messages were left. 0 or a negative error.
 */
static int
s_drain_feed(parley_sub_t *self)
{
    self->feed_more = true;
    for (int i = 0; i < S_FEED_BURST; i++) {
        if (parley__merge_full(&self->merge))
            return 0;
        parley__heartbeat_t hb;
        int rc = s_read_feed(self, &hb);
        if (rc == -EAGAIN) {
            self->feed_more = false;
            return 0;
        }
        if (rc < 0)
            return rc;
        if (rc == 1)
            s_on_heartbeat(self, &hb);
    }
    return 0;
}

/* Try to send the prepared request; a daemon not yet connected is fine. */
static int
s_flush_request(parley_sub_t *self)
{
    int rc = parley__wire_send(self->wire, 0);
    if (rc == PARLEY_ETIMEOUT) {
        self->req_state = S_REQ_QUEUED;
        return 0;
    }
    if (rc < 0)
        return rc;
    self->req_state = S_REQ_SENT;
    return 0;
}

/* The deadline of a request made now (-1: none). */
static int64_t
s_req_deadline(const parley_sub_t *self)
{
    return self->timeout_ms < 0 ? -1 : parley__mono_ms() + self->timeout_ms;
}

/* Ask the api for the snapshot or the next replay page, if one is due. */
static int
s_maybe_request(parley_sub_t *self)
{
    uint64_t from = 0;
    if (self->req_state != S_REQ_NONE || parley__mono_ms() < self->retry_at)
        return 0;
    memset(&self->req, 0, sizeof(self->req));
    if (self->merge.hold) {
        self->req.op = PARLEY__OP_SNAPSHOT;
    } else if (parley__merge_want_replay(&self->merge, &from)) {
        self->req.op = PARLEY__OP_REPLAY;
        self->req.from_seq = from;
        self->req.to_seq = 0; /* up to the head */
        self->req.limit = S_REPLAY_LIMIT;
    } else {
        return 0;
    }
    self->req.filter = self->filter;
    int rc = parley__wire_prepare(self->wire, &self->req, &self->req_id);
    if (rc < 0)
        return rc;
    self->req_op = self->req.op;
    self->req_from = from;
    self->req_deadline = s_req_deadline(self);
    return s_flush_request(self);
}

/*
 * Copy the deliveries of a replay or snapshot reply into merge items
 * (pointing at the reply's memory). Items that do not decode are left
 * out. Returns the number of items, or -ENOMEM.
 */
static long
s_reply_items(const parley__reply_t *r, parley__merge_item_t **out)
{
    *out = NULL;
    if (r->n_deliveries == 0)
        return 0;
    parley__merge_item_t *v = calloc(r->n_deliveries, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->n_deliveries; i++) {
        uint64_t seq = s_delivery_seq(r->deliveries[i].data,
                                      r->deliveries[i].len);
        if (seq == 0)
            continue;
        v[k++] = (parley__merge_item_t){ seq,
                                         (uint8_t *)r->deliveries[i].data,
                                         r->deliveries[i].len };
    }
    *out = v;
    return (long)k;
}

/* Handle the answer to the outstanding request. 0 or a negative error. */
static int
s_on_reply(parley_sub_t *self, const parley__reply_t *r)
{
    parley__merge_item_t *items = NULL;
    long n;
    int rc;
    self->req_state = S_REQ_NONE;
    if (r->type == PARLEY__REPLY_REJECT) {
        if (r->code == PARLEY_ETRUNCATED && self->req_op == PARLEY__OP_REPLAY)
            return parley__merge_truncated(&self->merge, self->req_from,
                                           r->first_seq);
        /* Asked again after a pause, so that a caller that carries on
         * after UNAVAILABLE or RATE_LIMITED does not hammer the daemon. */
        self->retry_at = parley__mono_ms() + S_RETRY_PAUSE_MS;
        return r->code;
    }
    if (self->req_op == PARLEY__OP_REPLAY && r->type == PARLEY__REPLY_REPLAY) {
        if ((n = s_reply_items(r, &items)) < 0)
            return (int)n;
        rc = parley__merge_page(&self->merge, self->req_from, r->next_seq,
                                r->done, items, (size_t)n);
    } else if (self->req_op == PARLEY__OP_SNAPSHOT
               && r->type == PARLEY__REPLY_SNAPSHOT) {
        if ((n = s_reply_items(r, &items)) < 0)
            return (int)n;
        rc = parley__merge_snapshot(&self->merge, r->seq, items, (size_t)n);
    } else {
        rc = PARLEY_EPROTO;
    }
    free(items);
    return rc;
}

/* Read api answers that have arrived. 0 or a negative error. */
static int
s_drain_api(parley_sub_t *self)
{
    for (;;) {
        parley__reply_t reply;
        uint64_t want = self->req_state == S_REQ_SENT ? self->req_id : 0;
        int rc = parley__wire_recv(self->wire, want, 0, &reply);
        if (rc == PARLEY_ETIMEOUT)
            return 0;
        if (rc < 0)
            return rc;
        if (want == 0)
            continue; /* nothing outstanding: a stale answer */
        if ((rc = s_on_reply(self, &reply)) < 0)
            return rc;
    }
}

/*
 * Turn a merge item into the event: verify it (a failure is reported, not
 * fatal) and apply the whole filter (the feed topics cover only one of its
 * dimensions). Returns 1 for an event, 0 if the filter drops it.
 */
static int
s_item_event(parley_sub_t *self, const parley__merge_item_t *it)
{
    parley_event_t *ev = &self->ev;
    int rc = parley_delivery_decode(self->keyring, it->data, it->len,
                                    &ev->delivery);
    if (rc < 0) {
        parley__event_set(ev, PARLEY_EVENT_REJECTED, it->seq);
        ev->code = rc;
        return 1;
    }
    if (!parley_filter_match(&self->filter.filter, &ev->delivery.update))
        return 0;
    parley__event_set(ev, PARLEY_EVENT_DELIVERY, it->seq);
    return 1;
}

/*
 * The next event the merge can hand out now, in self->ev.
 * Returns 1 with an event, 0 if none is ready, or -ENOMEM.
 */
static int
s_next_event(parley_sub_t *self)
{
    for (;;) {
        parley__merge_out_t out;
        int rc = parley__merge_next(&self->merge, &out);
        if (rc == 1) {
            rc = s_item_event(self, &out.item);
            free(out.item.data);
            if (rc != 0)
                return rc;
            continue;
        }
        if (rc == 2) {
            parley__event_set(&self->ev, PARLEY_EVENT_GAP, out.gap_from);
            self->ev.seq_last = out.gap_to;
            return 1;
        }
        return 0;
    }
}

/*
 * Wait for the first heartbeat, holding whatever deliveries come first.
 * Heartbeats come every second, so the wait is never shorter than a few
 * of them, whatever the request timeout.
 */
static int
s_wait_live(parley_sub_t *self, parley__heartbeat_t *hb)
{
    int wait = self->timeout_ms < 0 || self->timeout_ms > S_FIRST_HEARTBEAT_MS
                   ? self->timeout_ms
                   : S_FIRST_HEARTBEAT_MS;
    int64_t deadline = wait < 0 ? -1 : parley__mono_ms() + wait;
    for (;;) {
        int rc = s_read_feed(self, hb);
        if (rc == 1)
            return 0;
        if (rc < 0 && rc != -EAGAIN)
            return rc;
        if (rc == 0)
            continue;
        int64_t left = deadline < 0 ? -1 : deadline - parley__mono_ms();
        if (deadline >= 0 && left <= 0)
            return PARLEY_ETIMEOUT;
        zmq_pollitem_t item = { .socket = self->feed, .events = ZMQ_POLLIN };
        if (zmq_poll(&item, 1, (long)left) < 0)
            return -errno;
    }
}

/* Make and connect the SUB socket with the filter's topics. */
static int
s_open_feed(parley_sub_t *self, const char *endpoint, int rcvhwm,
            const parley_curve_t *curve)
{
    char topics[PARLEY__FILTER_VALUES_MAX * 3 + 1][PARLEY_TOPIC_MAX];
    int zero = 0;
    int64_t maxmsg = PARLEY__FEED_MSG_MAX;
    int n = parley_filter_topics(&self->filter.filter, topics,
                                 sizeof(topics) / sizeof(topics[0]));
    if (n < 0)
        return n;
    /* A feed message over the cap drops the connection: nothing a valid
     * update makes comes near it, so only a hostile peer sends one. */
    if ((self->feed = zmq_socket(parley__wire_ctx(self->wire), ZMQ_SUB)) == NULL
        || zmq_setsockopt(self->feed, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_setsockopt(self->feed, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg))
               != 0)
        return -errno;
    int rc = parley__curve_apply(curve, self->feed);
    if (rc < 0)
        return rc;
    if (rcvhwm > 0
        && zmq_setsockopt(self->feed, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) != 0)
        return -errno;
    for (int i = 0; i < n; i++)
        if (zmq_setsockopt(self->feed, ZMQ_SUBSCRIBE, topics[i],
                           strlen(topics[i])) != 0)
            return -errno;
    /* Last, so that the first heartbeat proves the others are in place. */
    if (zmq_setsockopt(self->feed, ZMQ_SUBSCRIBE, S_HEARTBEAT_TOPIC,
                       strlen(S_HEARTBEAT_TOPIC)) != 0
        || zmq_connect(self->feed, endpoint) != 0)
        return -errno;
    return 0;
}

/* Read and check the options; copy the filter. 0 or an error. */
static int
s_options(parley_sub_t *self, const parley_sub_options_t *opt,
          parley_sub_options_t *o)
{
    int rc = parley__options_read(opt, sizeof(*o), o);
    if (rc < 0)
        return rc;
    if (o->start != PARLEY_START_LIVE && o->start != PARLEY_START_SEQ
        && o->start != PARLEY_START_LAST)
        return PARLEY_EARG;
    if ((self->timeout_ms = parley__options_timeout(o->timeout_ms))
        == PARLEY_EARG)
        return PARLEY_EARG;
    if (o->n_filters > 1 || (o->n_filters > 0 && o->filters == NULL)
        || o->rcvhwm < 0)
        return PARLEY_EARG;
    return parley__filterbuf_set(&self->filter,
                                 o->n_filters > 0 ? o->filters[0] : NULL);
}

parley_sub_t *
parley_sub_new(const parley_sub_options_t *opt)
{
    parley_sub_options_t o;
    char endpoint[PARLEY__ENDPOINT_CHARS + 1];
    parley__heartbeat_t hb;
    int err = 0;
    parley_sub_t *self;

    if ((self = calloc(1, sizeof(*self))) == NULL)
        return NULL;
    parley__merge_init(&self->merge, S_HOLD_LIMIT);
    if ((err = s_options(self, opt, &o)) < 0)
        goto fail;
    self->keyring = o.keyring;
    if ((err = parley__endpoints_parse(&self->eps, o.server)) < 0)
        goto fail;
    const char *server = parley__endpoints_current(&self->eps);
    if ((self->wire = parley__wire_new(server, o.curve, &err)) == NULL)
        goto fail;
    if (o.feed != NULL) {
        if (strlen(o.feed) >= sizeof(endpoint)) {
            err = PARLEY_EARG;
            goto fail;
        }
        strcpy(endpoint, o.feed);
    } else {
        /* Ask on our own api socket: the reply names the feed. */
        parley__reply_t reply;
        memset(&self->req, 0, sizeof(self->req));
        self->req.op = PARLEY__OP_PING;
        if ((err = parley__wire_call(self->wire, &self->req, self->timeout_ms,
                                     &reply)) < 0)
            goto fail;
        if (reply.type != PARLEY__REPLY_PING) {
            err = PARLEY_EPROTO;
            goto fail;
        }
        if ((err = parley__feed_endpoint(reply.feed, server, endpoint,
                                         sizeof(endpoint))) < 0)
            goto fail;
    }
    if ((err = s_open_feed(self, endpoint, o.rcvhwm, o.curve)) < 0)
        goto fail;
    if ((err = s_wait_live(self, &hb)) < 0)
        goto fail;
    memcpy(self->daemon_id, hb.daemon_id, sizeof(self->daemon_id));
    self->have_daemon_id = true;
    parley__merge_start(&self->merge, o.start, o.since_seq, hb.seq);
    if ((err = s_maybe_request(self)) < 0)
        goto fail;
    return self;
fail:
    parley_sub_destroy(&self);
    errno = err < 0 ? -err : EPROTO;
    return NULL;
}

void
parley_sub_destroy(parley_sub_t **sub)
{
    if (sub == NULL || *sub == NULL)
        return;
    parley_sub_t *self = *sub;
    if (self->feed != NULL)
        zmq_close(self->feed); /* before the wire terminates the context */
    parley__wire_destroy(&self->wire);
    parley__merge_clear(&self->merge);
    parley__endpoints_free(&self->eps);
    parley__delivery_release(&self->ev.delivery);
    free(self);
    *sub = NULL;
}

/*
 * Do what can be done without waiting: send a due request, take the
 * answers and feed messages that have arrived. 0 or a negative error.
 */
static int
s_pump(parley_sub_t *sub)
{
    int rc;
    if ((rc = s_maybe_request(sub)) < 0)
        return rc;
    if (sub->req_state == S_REQ_QUEUED && (rc = s_flush_request(sub)) < 0)
        return rc;
    /* Cut off by the daemon (its CURVE allow-list changed): nothing will
     * come any more, so say so rather than wait in silence. */
    if ((rc = parley__wire_handshake(sub->wire)) < 0)
        return rc;
    if ((rc = s_drain_api(sub)) < 0)
        return rc;
    return s_drain_feed(sub);
}

/*
 * The ms from now until the subscriber has something to do without a
 * socket waking it: 0 now, -1 nothing planned.
 */
static int64_t
s_wait_ms(const parley_sub_t *sub, int64_t now)
{
    if (sub->feed_more && !parley__merge_full(&sub->merge))
        return 0;
    int64_t until = -1;
    if (sub->req_state != S_REQ_NONE)
        until = sub->req_deadline;
    else if (sub->retry_at > now)
        until = sub->retry_at;
    if (until < 0)
        return -1;
    return until > now ? until - now : 0;
}

int
parley_sub_next(parley_sub_t *sub, int timeout_ms, const parley_event_t **ev)
{
    bool pumped = false;
    if (sub == NULL || ev == NULL || timeout_ms < -1)
        return PARLEY_EARG;
    int64_t deadline = timeout_ms < 0 ? -1 : parley__mono_ms() + timeout_ms;
    for (;;) {
        int rc = s_next_event(sub);
        if (rc != 0) {
            if (rc == 1)
                *ev = &sub->ev;
            return rc;
        }
        if ((rc = s_pump(sub)) < 0)
            return rc;
        if ((rc = s_next_event(sub)) != 0) {
            if (rc == 1)
                *ev = &sub->ev;
            return rc;
        }
        int64_t now = parley__mono_ms();
        if (sub->req_state != S_REQ_NONE && sub->req_deadline >= 0
            && now >= sub->req_deadline) {
            /* Given up on: a late answer is dropped by its id, and the
             * request goes out again at the next call. */
            sub->req_state = S_REQ_NONE;
            return PARLEY_ETIMEOUT;
        }
        if (pumped && deadline >= 0 && now >= deadline)
            return 0;
        pumped = true;
        /* Sleep until the caller's deadline or the subscriber's own,
         * whichever comes first. */
        int64_t wait = s_wait_ms(sub, now);
        if (deadline >= 0) {
            int64_t left = deadline > now ? deadline - now : 0;
            if (wait < 0 || left < wait)
                wait = left;
        }
        zmq_pollitem_t items[3] = {
            { .socket = parley__wire_socket(sub->wire), .events = ZMQ_POLLIN },
            { .socket = parley__wire_monitor(sub->wire), .events = ZMQ_POLLIN },
            { .socket = sub->feed, .events = ZMQ_POLLIN },
        };
        if (sub->req_state == S_REQ_QUEUED)
            items[0].events |= ZMQ_POLLOUT;
        /* A full hold buffer is not read: libzmq queues (or drops, and a
         * replay fetches it again) until the caller has taken some. */
        int nitems = parley__merge_full(&sub->merge) ? 2 : 3;
        if (zmq_poll(items, nitems, (long)wait) < 0)
            return -errno;
    }
}

uint64_t
parley_sub_last_seq(const parley_sub_t *sub)
{
    return sub != NULL ? parley__merge_last_seq(&sub->merge) : 0;
}

const char *
parley_sub_endpoint(const parley_sub_t *sub)
{
    return sub != NULL ? parley__wire_server(sub->wire) : NULL;
}

int
parley_sub_fds(const parley_sub_t *sub, int *fds, size_t cap)
{
    if (sub == NULL)
        return PARLEY_EARG;
    int n = parley__wire_fds(sub->wire, fds, cap);
    if ((size_t)n < cap)
        fds[n] = parley__zmq_fd(sub->feed);
    return n + 1;
}

int
parley_sub_timeout(const parley_sub_t *sub)
{
    if (sub == NULL)
        return -1;
    int64_t now = parley__mono_ms();
    int64_t wait = s_wait_ms(sub, now);
    /* An event the merge could hand out at once (the caller stopped
     * draining before it was taken). */
    if (sub->merge.n > 0 && !sub->merge.hold
        && sub->merge.items[0].seq <= sub->merge.confirmed + 1)
        return 0;
    if (sub->merge.gap_to > sub->merge.confirmed && !sub->merge.hold)
        return 0;
    if (wait > INT32_MAX)
        wait = INT32_MAX;
    return (int)wait;
}
