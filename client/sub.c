/*
 * sub.c - the reliable subscriber (the Clone pattern of the zguide).
 *
 * The subscriber reads the feed and asks the api for what the feed cannot
 * prove it carried:
 *
 *   1. connect to an api endpoint of the list and learn the feed endpoint
 *      from a ping (unless given); the SUB socket is subscribed to the
 *      narrowest topics of the filters and to sys/heartbeat/, last;
 *   2. wait for the first heartbeat of that daemon: it proves the
 *      subscriptions are in place, so nothing published after its seq can
 *      be missed; the connection is live (PARLEY_EVENT_CONNECTED);
 *   3. start (the first time): LIVE after that seq, SEQ with a replay from
 *      since_seq, LAST with a snapshot (live deliveries are held
 *      meanwhile); after a reconnection: a replay from where it was;
 *   4. live: a delivery beyond confirmed + 1 or a heartbeat beyond what
 *      is accounted for means a gap (HWM drop, reconnect, or simply
 *      updates the filter does not want): replay from confirmed + 1;
 *      once what step 3 asked for is handed out, PARLEY_EVENT_CAUGHT_UP;
 *   5. lost: the api connection closed or no heartbeat for
 *      heartbeat_misses intervals (PARLEY_EVENT_DISCONNECTED): back to
 *      step 1 with the next endpoint of the list (the same one if it is
 *      alone), on the same sockets (so the descriptors of
 *      parley_sub_fds() stay; parley__zmq_move() drops the old
 *      connection without tearing a message libzmq holds partly read).
 *      With a list, a daemon that stays behind as long (its heartbeats
 *      say it is catching up with its cluster, or name a head below what
 *      was already handed out) is left the same way.
 *
 * The daemons of one cluster serve one log: their heartbeats carry the
 * same log id (a single daemon's carry none). Moving between them, the
 * subscription continues from its last seq, whatever their daemon ids;
 * moving to a daemon of another log (or none named), it starts over
 * after what that daemon still holds if its head is below what was
 * handed out.
 *
 * The bookkeeping (merge.c) is plain data so it can be unit tested;
 * parley_sub_next() drives it with the sockets.
 */
#include "entries.h"
#include "keys.h"
#include "logcheck.h"
#include "merge.h"
#include "options.h"
#include "preverify.h"
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
/* During a replay, deliveries handed out between two looks for the api's
 * answer (the next page, asked for some S_REPLAY_LIMIT ahead): a look
 * that finds nothing costs libzmq two system calls (the socket's and
 * its monitor's mailboxes), a tenth of a verification on a VM. */
#define S_ANSWER_EVERY 16
/* Shortest wait for the first heartbeat (they come every second). */
#define S_FIRST_HEARTBEAT_MS 2500
/* Pause before asking again after the daemon refused a request. */
#define S_RETRY_PAUSE_MS 1000
/* Pause before asking a daemon behind this subscriber for a replay again
 * (a node of a cluster that is catching up). */
#define S_BEHIND_PAUSE_MS 100
#define S_HEARTBEAT_TOPIC "sys/heartbeat/"
#define S_CHECKPOINT_TOPIC "sys/checkpoint/"
/* Request ids of the log's requests: apart from the wire's own. */
#define S_LOG_ID_BASE ((uint64_t)1 << 62)
/* Connection events waiting to be handed out, at most. */
#define S_NOTES_MAX 8
/* The heartbeat interval assumed until two heartbeats were seen, and the
 * bounds of what is believed of a measured one. */
#define S_HB_GUESS_MS 1000
#define S_HB_MIN_MS 20
#define S_HB_MAX_MS 60000
#define S_MISSES_DEFAULT 3

/* =========================================================== subscriber */

/* The api request a subscriber has outstanding. */
typedef enum {
    S_REQ_NONE = 0,   /* nothing asked */
    S_REQ_QUEUED,     /* prepared, waiting for a connected daemon */
    S_REQ_SENT,       /* sent, waiting for the answer */
} s_req_state_t;

/* Where the connection to a daemon stands. */
typedef enum {
    S_CONN_PING = 0,  /* asked the api endpoint for its feed */
    S_CONN_HEARTBEAT, /* feed connected, its first heartbeat awaited */
    S_CONN_LIVE,      /* heartbeats come: the subscription is in place */
} s_conn_t;

/* A connection event not yet handed out. */
typedef struct {
    parley_event_type_t type;                 /* CONNECTED, DISCONNECTED */
    int code;                                 /* DISCONNECTED: why */
    char endpoint[PARLEY__ENDPOINT_CHARS + 1];
} s_note_t;

struct parley_sub {
    parley__wire_t *wire;            /* DEALER to the api (owns the ctx) */
    void *feed;                      /* SUB on the feed */
    parley__endpoints_t eps;         /* api endpoints */
    char *feed_given;                /* the options' feed, or NULL */
    char feed_ep[PARLEY__ENDPOINT_CHARS + 1]; /* connected now, "" none */
    parley__filterbuf_t *filters;    /* owned copies (n_filters) */
    size_t n_filters;
    const parley_keyring_t *keyring; /* borrowed, may be NULL */
    int timeout_ms;                  /* per api request, -1 = none */
    int misses;                      /* heartbeats missed before "gone" */
    parley__merge_t merge;           /* what is known about the log */
    parley_start_t start;            /* where the subscription starts */
    uint64_t since;                  /* with PARLEY_START_SEQ */
    parley__entries_t snap_entries;  /* LAST: the snapshot's entries, until
                                        its deliveries are handed out */
    uint64_t snap_seq;               /* ... and the seq it reflects */

    s_conn_t conn;                   /* the connection */
    int64_t conn_deadline;           /* PING, HEARTBEAT: give up then */
    size_t tries;                    /* endpoints tried since live */
    int last_err;                    /* why the last one failed */
    bool started;                    /* the merge was started */
    uint8_t expect_id[16];           /* daemon id of the ping's answer */
    bool have_expect;
    uint8_t daemon_id[16];           /* of the live daemon */
    bool have_daemon_id;
    uint8_t log_id[16];              /* its log's, all zero: none */
    int64_t behind_since;            /* mono ms since its heartbeats say
                                        it is behind, 0 = it is not */
    int64_t last_hb;                 /* monotonic ms of its last heartbeat */
    int64_t hb_interval;             /* between its heartbeats, measured */
    bool catching_up;                /* CAUGHT_UP is due once current */
    uint64_t catchup_seq;            /* ... up to this seq */
    bool feed_more;                  /* the feed was left with messages */

    s_req_state_t req_state;
    parley__op_t req_op;             /* PING, REPLAY or SNAPSHOT */
    uint64_t req_id;
    uint64_t req_from;               /* REPLAY: from_seq asked */
    int64_t req_deadline;            /* monotonic ms, -1 = none */
    unsigned answer_skip;            /* replay: events before the next look
                                        for the answer (s_read_ahead()) */
    int64_t retry_at;                /* no request before (after a reject) */

    parley__preverify_t *pv;         /* verify_threads > 1: deliveries
                                        verified ahead, else NULL */
    uint64_t starved;                /* waits with a replay under way and
                                        nothing to hand out (benchmarks) */

    parley__logcheck_t *lc;          /* the transparency log, or NULL */
    bool lreq_out;                   /* a request of lc is out */
    uint64_t lreq_id;                /* ... under this id */
    int64_t lreq_deadline;           /* monotonic ms */
    uint8_t *lbuf;                   /* its encoded bytes */

    s_note_t notes[S_NOTES_MAX];     /* connection events to hand out */
    size_t n_notes;
    char ev_endpoint[PARLEY__ENDPOINT_CHARS + 1]; /* of the event out */
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


/* Queue a connection event for the current endpoint. */
static void
s_note(parley_sub_t *self, parley_event_type_t type, int code)
{
    if (self->n_notes == S_NOTES_MAX) {
        /* Nobody took them: the oldest are history by now. */
        memmove(&self->notes[0], &self->notes[1],
                (S_NOTES_MAX - 1) * sizeof(self->notes[0]));
        self->n_notes--;
    }
    s_note_t *n = &self->notes[self->n_notes++];
    n->type = type;
    n->code = code;
    strcpy(n->endpoint, parley__wire_server(self->wire));
}

/* The deadline of something that may take ms from now (-1: none). */
static int64_t
s_after(int ms)
{
    return ms < 0 ? -1 : parley__mono_ms() + ms;
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

/* Prepare self->req (op set) under a new id and send it if possible. */
static int
s_request(parley_sub_t *self, uint64_t from)
{
    int rc = parley__wire_prepare(self->wire, &self->req, &self->req_id);
    if (rc < 0)
        return rc;
    self->req_op = self->req.op;
    self->req_from = from;
    self->req_deadline = s_after(self->timeout_ms);
    return s_flush_request(self);
}

/* Connect the feed socket to ep (the one it is on already is kept). */
static int
s_feed_connect(parley_sub_t *self, const char *ep)
{
    if (strcmp(self->feed_ep, ep) == 0)
        return 0; /* libzmq reconnects to it by itself */
    /* The old daemon may still be streaming, a message of it read ahead
     * by zmq_poll(): the move reads that one whole before the old
     * connection goes. What it drops is a gap the replay fills. */
    int rc = parley__zmq_move(self->feed, self->feed_ep, ep);
    if (rc < 0)
        return rc;
    snprintf(self->feed_ep, sizeof(self->feed_ep), "%s", ep);
    return 0;
}

/* Wait for the first heartbeat of the daemon on the feed. */
static void
s_await_heartbeat(parley_sub_t *self)
{
    int wait = self->timeout_ms < 0 || self->timeout_ms > S_FIRST_HEARTBEAT_MS
                   ? self->timeout_ms
                   : S_FIRST_HEARTBEAT_MS;
    self->conn = S_CONN_HEARTBEAT;
    self->conn_deadline = s_after(wait);
}

/*
 * Start a connection to the current api endpoint (next: to the next one
 * of the list first): whatever was asked of the last one is lost, so the
 * request slot is cleared, and a ping asks for the feed.
 * Returns 0 or an error of libzmq.
 */
static int
s_connect(parley_sub_t *self, bool next)
{
    int rc;
    const char *ep = next ? parley__endpoints_next(&self->eps)
                          : parley__endpoints_current(&self->eps);
    /* The same endpoint again: libzmq reconnects to it by itself. */
    if (strcmp(ep, parley__wire_server(self->wire)) != 0
        && (rc = parley__wire_switch(self->wire, ep)) < 0)
        return rc;
    self->tries++;
    self->req_state = S_REQ_NONE;
    self->lreq_out = false;
    parley__logcheck_abandon(self->lc);
    parley__logcheck_source(self->lc, (unsigned)self->eps.cur + 1);
    self->retry_at = 0;
    self->have_expect = false;
    if (self->feed_given != NULL) {
        if ((rc = s_feed_connect(self, self->feed_given)) < 0)
            return rc;
        s_await_heartbeat(self);
        return 0;
    }
    memset(&self->req, 0, sizeof(self->req));
    self->req.op = PARLEY__OP_PING;
    self->conn = S_CONN_PING;
    self->conn_deadline = s_after(self->timeout_ms);
    return s_request(self, 0);
}

/*
 * The daemon is gone (code says how it was noticed) or never came: say so
 * if it was live, and try the next endpoint.
 */
static int
s_lost(parley_sub_t *self, int code)
{
    if (self->conn == S_CONN_LIVE)
        s_note(self, PARLEY_EVENT_DISCONNECTED, code);
    else
        self->last_err = code;
    self->conn = S_CONN_PING;
    return s_connect(self, true);
}

/* The answer to the ping: connect the feed it names. */
static int
s_on_ping(parley_sub_t *self, const parley__reply_t *r)
{
    char ep[PARLEY__ENDPOINT_CHARS + 1];
    if (r->type != PARLEY__REPLY_PING)
        return s_lost(self, PARLEY_EPROTO);
    int rc = parley__feed_endpoint(r->feed, parley__wire_server(self->wire),
                                   ep, sizeof(ep));
    if (rc < 0)
        return s_lost(self, PARLEY_EPROTO);
    if ((rc = s_feed_connect(self, ep)) < 0)
        return rc;
    memcpy(self->expect_id, r->daemon_id, sizeof(self->expect_id));
    self->have_expect = true;
    if (self->lc != NULL && r->checkpoint.len > 0)
        parley__logcheck_checkpoint(self->lc, r->checkpoint.data, r->checkpoint.len,
                                    parley_now_ms());
    s_await_heartbeat(self);
    return 0;
}

/* Note whether the live daemon is behind (catching up with its cluster,
 * or below what was handed out), and since when. */
static void
s_check_behind(parley_sub_t *self, const parley__heartbeat_t *hb)
{
    bool behind = hb->catching_up
                  || (parley__log_id_set(hb->log_id)
                      && hb->seq < parley__merge_last_seq(&self->merge));
    if (!behind)
        self->behind_since = 0;
    else if (self->behind_since == 0)
        self->behind_since = parley__mono_ms();
}

/*
 * The first heartbeat of a daemon: the connection is live. The first time
 * the subscription starts where the options say; after a reconnection to
 * another daemon, what the feed brought from the old one is dropped, and
 * a log behind what was confirmed is another log, followed from its first
 * held seq. Either way, what is missing since is replayed.
 */
static void
s_go_live(parley_sub_t *self, const parley__heartbeat_t *hb)
{
    parley__merge_t *m = &self->merge;
    bool other = !self->have_daemon_id
                 || memcmp(self->daemon_id, hb->daemon_id, 16) != 0;
    /* Another node of the same cluster: the same seqs, perhaps not yet
     * as far as this subscriber got (a replay then waits for them). */
    bool same_log = self->have_daemon_id && parley__log_id_set(hb->log_id)
                    && memcmp(self->log_id, hb->log_id, 16) == 0;
    self->conn = S_CONN_LIVE;
    self->tries = 0;
    self->last_err = 0;
    self->req_state = S_REQ_NONE; /* a request of the old daemon is lost */
    s_note(self, PARLEY_EVENT_CONNECTED, 0);
    if (!self->started) {
        parley__merge_start(m, self->start, self->since, hb->seq);
        self->started = true;
    } else if (other) {
        parley__merge_forget(m);
        if (hb->seq < m->confirmed && !m->hold && !same_log)
            parley__merge_rebase(m, hb->first_seq > 0 ? hb->first_seq - 1
                                                      : hb->seq);
    }
    parley__merge_heartbeat(m, hb->seq);
    memcpy(self->daemon_id, hb->daemon_id, sizeof(self->daemon_id));
    memcpy(self->log_id, hb->log_id, sizeof(self->log_id));
    self->have_daemon_id = true;
    self->behind_since = 0;
    s_check_behind(self, hb);
    self->last_hb = parley__mono_ms();
    self->hb_interval = S_HB_GUESS_MS;
    self->catching_up = true;
    self->catchup_seq = hb->seq;
}

/* A heartbeat from the feed. */
static void
s_on_heartbeat(parley_sub_t *self, const parley__heartbeat_t *hb)
{
    switch (self->conn) {
    case S_CONN_PING:
        return; /* of a connection being replaced */
    case S_CONN_HEARTBEAT:
        if (self->have_expect
            && memcmp(self->expect_id, hb->daemon_id, 16) != 0)
            return; /* the daemon before, still in the queue */
        s_go_live(self, hb);
        return;
    case S_CONN_LIVE:
        break;
    }
    if (memcmp(self->daemon_id, hb->daemon_id, 16) != 0) {
        /* Restarted behind the same endpoints before we noticed: libzmq
         * reconnected both sockets already. */
        s_note(self, PARLEY_EVENT_DISCONNECTED, -ECONNRESET);
        s_go_live(self, hb);
        return;
    }
    int64_t now = parley__mono_ms();
    int64_t gap = now - self->last_hb;
    if (gap >= S_HB_MIN_MS)
        self->hb_interval = gap < S_HB_MAX_MS ? gap : S_HB_MAX_MS;
    self->last_hb = now;
    parley__merge_heartbeat(&self->merge, hb->seq);
    s_check_behind(self, hb);
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
    if (tlen == strlen(S_CHECKPOINT_TOPIC)
        && memcmp(zmq_msg_data(&topic), S_CHECKPOINT_TOPIC, tlen) == 0) {
        if (self->lc != NULL && self->conn == S_CONN_LIVE)
            parley__logcheck_checkpoint(self->lc, zmq_msg_data(&body),
                                        zmq_msg_size(&body), parley_now_ms());
        goto done;
    }
    uint64_t seq = parley__delivery_seq(zmq_msg_data(&body), zmq_msg_size(&body));
    if (seq > 0 && self->started)
        rc = parley__merge_live(&self->merge, seq, zmq_msg_data(&body),
                                zmq_msg_size(&body));
done:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    return rc;
}

/* How long without a heartbeat means the daemon is gone. */
static int64_t
s_dead_ms(const parley_sub_t *self)
{
    return self->misses * self->hb_interval + self->hb_interval / 2;
}

/* Has a live daemon been silent for that long (as far as the feed was
 * read)? */
static bool
s_heartbeat_overdue(const parley_sub_t *self)
{
    return parley__mono_ms() - self->last_hb > s_dead_ms(self);
}

/*
 * Is reading the feed put off until the caller has taken some of what is
 * held? Only while live: there a full hold buffer drains, by handing out
 * or by the replay it asks for. Before the first heartbeat of a daemon
 * nothing held beyond a hole can be handed out (the replay that fills it
 * waits for that heartbeat), so the feed must be read on, or a heartbeat
 * queued behind deliveries that fill the buffer is never seen and the
 * subscriber pings the daemon again and again without ever going live.
 * What does not fit then is dropped (the lowest seqs are kept) and
 * fetched again by the replay. And not once heartbeats are overdue: a
 * daemon that hangs never answers that replay, and only a feed read to
 * its end tells it from one whose heartbeats wait behind deliveries
 * (s_deadline_passed()).
 */
static bool
s_feed_paused(const parley_sub_t *self)
{
    return self->conn == S_CONN_LIVE && parley__merge_full(&self->merge)
           && !s_heartbeat_overdue(self);
}

/*
 * Read what the feed has waiting, up to a burst (so that api answers are
 * not starved) or until reading is put off (s_feed_paused());
 * self->feed_more says whether messages were left. 0 or a negative error.
 */
static int
s_drain_feed(parley_sub_t *self)
{
    self->feed_more = true;
    for (int i = 0; i < S_FEED_BURST; i++) {
        if (s_feed_paused(self))
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

/* Ask the api for the snapshot or the next replay page, if one is due. */
static int
s_maybe_request(parley_sub_t *self)
{
    uint64_t from = 0;
    if (self->conn != S_CONN_LIVE || self->req_state != S_REQ_NONE
        || parley__mono_ms() < self->retry_at)
        return 0;
    memset(&self->req, 0, sizeof(self->req));
    if (self->merge.hold) {
        self->req.op = PARLEY__OP_SNAPSHOT;
        self->req.entries = true;
    } else if (parley__merge_want_replay(&self->merge, &from)) {
        self->req.op = PARLEY__OP_REPLAY;
        self->req.from_seq = from;
        self->req.to_seq = 0; /* up to the head */
        self->req.limit = S_REPLAY_LIMIT;
    } else {
        return 0;
    }
    parley__request_set_filters(&self->req, self->filters, self->n_filters);
    return s_request(self, from);
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
        uint64_t seq = parley__delivery_seq(r->deliveries[i].data,
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
    if (self->req_op == PARLEY__OP_PING)
        return s_on_ping(self, r);
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
        if (r->done && r->next_seq == self->req_from
            && r->head_seq < self->req_from)
            self->retry_at = parley__mono_ms() + S_BEHIND_PAUSE_MS;
        if ((n = s_reply_items(r, &items)) < 0)
            return (int)n;
        rc = parley__merge_page(&self->merge, self->req_from, r->next_seq,
                                r->done, items, (size_t)n);
    } else if (self->req_op == PARLEY__OP_SNAPSHOT
               && r->type == PARLEY__REPLY_SNAPSHOT) {
        /* Which entries each delivery holds; a daemon that does not say
         * is answered as a protocol error, asked again after a pause. */
        if ((rc = parley__entries_take(&self->snap_entries, r)) < 0) {
            self->retry_at = parley__mono_ms() + S_RETRY_PAUSE_MS;
            return rc;
        }
        self->snap_seq = r->seq;
        /* CAUGHT_UP names a seq at or above the snapshot's: until all
         * its deliveries are out, the last seq handed out is below it,
         * and the newest records up to it may hold no entry, so no
         * delivery would ever tell a state table it reached that far. */
        if (self->catching_up && r->seq > self->catchup_seq)
            self->catchup_seq = r->seq;
        if ((n = s_reply_items(r, &items)) < 0)
            return (int)n;
        rc = parley__merge_snapshot(&self->merge, r->seq, items, (size_t)n);
    } else {
        rc = PARLEY_EPROTO;
    }
    free(items);
    return rc;
}

/* The answer to the log's request. */
static void
s_on_log_reply(parley_sub_t *self, const parley__reply_t *r)
{
    self->lreq_out = false;
    int code = r->type == PARLEY__REPLY_REJECT ? r->code : 0;
    parley__logcheck_reply(self->lc, code == 0 ? r : NULL, code, parley_now_ms());
}

/* Read api answers that have arrived, each to the request of its id.
 * 0 or a negative error. */
static int
s_drain_api(parley_sub_t *self)
{
    for (;;) {
        parley__reply_t reply;
        int rc = parley__wire_recv(self->wire, 0, 0, &reply);
        if (rc == PARLEY_ETIMEOUT)
            return 0;
        if (rc == PARLEY_EPROTO && self->conn != S_CONN_LIVE)
            return s_lost(self, rc);
        if (rc < 0)
            return rc;
        if (self->lreq_out && reply.request_id == self->lreq_id) {
            s_on_log_reply(self, &reply);
            continue;
        }
        if (self->req_state != S_REQ_SENT || reply.request_id != self->req_id)
            continue; /* nothing outstanding: a stale answer */
        if ((rc = s_on_reply(self, &reply)) < 0)
            return rc;
    }
}

/* Send what the log's verifier wants asked, if anything. */
static void
s_log_request(parley_sub_t *self)
{
    parley__request_t req;
    int64_t now = parley__mono_ms();
    if (self->lc == NULL)
        return;
    if (self->lreq_out && self->lreq_deadline >= 0 && now >= self->lreq_deadline) {
        self->lreq_out = false; /* given up on: a late answer is dropped */
        parley__logcheck_reply(self->lc, NULL, PARLEY_ETIMEOUT, parley_now_ms());
    }
    if (self->lreq_out || self->conn != S_CONN_LIVE
        || parley__logcheck_want(self->lc, &req, parley_now_ms()) != 1)
        return;
    size_t len;
    req.request_id = S_LOG_ID_BASE + ++self->lreq_id % S_LOG_ID_BASE;
    if (parley__request_encode(&req, self->lbuf, PARLEY_ENVELOPE_MAX, &len) < 0
        || parley__wire_send_bytes(self->wire, self->lbuf, len) < 0) {
        parley__logcheck_reply(self->lc, NULL, PARLEY_ETIMEOUT, parley_now_ms());
        return;
    }
    self->lreq_id = req.request_id;
    self->lreq_out = true;
    self->lreq_deadline = s_after(self->timeout_ms);
}

/*
 * Turn a merge item into the event: verify it (a failure is reported, not
 * fatal) and apply the whole filter (the feed topics cover only one of its
 * dimensions). Returns 1 for an event, 0 if the filters drop it.
 */
static int
s_item_event(parley_sub_t *self, const parley__merge_item_t *it)
{
    parley_event_t *ev = &self->ev;
    const parley__state_key_t *keys = NULL;
    size_t n_keys = 0;
    if (self->snap_entries.n > 0) {
        /* A snapshot's delivery holds the entries it names there; past
         * the snapshot they are no longer needed. */
        if (it->seq > self->snap_seq)
            parley__entries_free(&self->snap_entries);
        else
            n_keys = parley__entries_of(&self->snap_entries, it->seq, &keys);
    }
    int rc;
    /* Verified ahead on another thread, or here: the same function on
     * the same bytes either way. */
    if (self->pv == NULL
        || !parley__preverify_take(self->pv, it->seq, it->data, it->len,
                                   &ev->delivery, &rc))
        rc = parley_delivery_decode(self->keyring, it->data, it->len,
                                    &ev->delivery);
    if (rc == 0 && !parley__entries_agree(keys, n_keys, &ev->delivery.update))
        rc = PARLEY_EPROTO; /* entries its update does not name */
    if (rc < 0) {
        parley__event_set(ev, PARLEY_EVENT_REJECTED, it->seq);
        ev->code = rc;
        return 1;
    }
    bool match = self->n_filters == 0;
    for (size_t i = 0; i < self->n_filters && !match; i++)
        match = parley_filter_match(&self->filters[i].filter,
                                    &ev->delivery.update);
    if (!match)
        return 0;
    parley__event_set(ev, PARLEY_EVENT_DELIVERY, it->seq);
    ev->entries = keys;
    ev->n_entries = n_keys;
    return 1;
}

/*
 * Hand an item to the log's verifier: every one in all mode (the log
 * holds each record, delivered, rejected or not), only those handed out
 * as a delivery otherwise. rc is s_item_event()'s; returned unless the
 * verifier fails (-ENOMEM).
 */
static int
s_log_item(parley_sub_t *self, const parley__merge_item_t *it, int rc)
{
    if (self->lc == NULL)
        return rc;
    if (self->n_filters > 0 && (rc != 1 || self->ev.type != PARLEY_EVENT_DELIVERY))
        return rc;
    uint8_t space[PARLEY_ENVELOPE_MAX + 1024];
    parley__arena_t arena;
    parley__bytes_t env;
    uint64_t seq;
    int64_t at;
    parley__arena_init(&arena, space, sizeof(space));
    int lrc = 0;
    if (parley__delivery_decode_raw(it->data, it->len, &seq, &at, &env, &arena) == 0)
        lrc = parley__logcheck_update(self->lc, seq, env.data, env.len);
    parley__arena_reset(&arena);
    return lrc < 0 ? lrc : rc;
}

/* Is CAUGHT_UP due now? */
static bool
s_caught_up(const parley_sub_t *self)
{
    return self->catching_up && self->conn == S_CONN_LIVE
           && parley__merge_current(&self->merge, self->catchup_seq);
}

/*
 * Offer the deliveries to be handed out next (the lowest seqs held) to
 * the threads that verify ahead, if there are any. While a snapshot is
 * awaited what is held may yet be replaced, so nothing is offered. One
 * that cannot be offered (no memory for its copy) is verified when it
 * is handed out, as without threads.
 */
static void
s_verify_ahead(parley_sub_t *self)
{
    const parley__merge_t *m = &self->merge;
    if (self->pv == NULL || m->hold || m->n < 2)
        return;
    (void)parley__preverify_offer(self->pv, m->items, m->n, m->emitted);
}

/*
 * The next event that can be handed out now, in self->ev: connection
 * events first, then CAUGHT_UP when due, then what the merge holds.
 * Returns 1 with an event, 0 if none is ready.
 */
static int
s_next_event(parley_sub_t *self)
{
    parley_event_t *ev = &self->ev;
    if (self->n_notes > 0) {
        const s_note_t *n = &self->notes[0];
        parley__event_set(ev, n->type, 0);
        ev->code = n->code;
        strcpy(self->ev_endpoint, n->endpoint);
        ev->endpoint = self->ev_endpoint;
        memmove(&self->notes[0], &self->notes[1],
                (--self->n_notes) * sizeof(self->notes[0]));
        return 1;
    }
    parley__logcheck_event_t le;
    if (parley__logcheck_next(self->lc, &le)) {
        parley__event_set(ev, le.type, le.seq);
        ev->code = le.code;
        ev->evidence = le.evidence;
        ev->checkpoint = le.checkpoint;
        return 1;
    }
    s_verify_ahead(self);
    for (;;) {
        if (s_caught_up(self)) {
            self->catching_up = false;
            parley__event_set(ev, PARLEY_EVENT_CAUGHT_UP,
                              parley__merge_last_seq(&self->merge));
            return 1;
        }
        parley__merge_out_t out;
        int rc = parley__merge_next(&self->merge, &out);
        if (rc == 1) {
            rc = s_item_event(self, &out.item);
            if ((rc = s_log_item(self, &out.item, rc)) < 0) {
                free(out.item.data);
                return rc;
            }
            free(out.item.data);
            if (rc != 0)
                return rc;
            continue;
        }
        if (rc == 2) {
            parley__event_set(ev, PARLEY_EVENT_GAP, out.gap_from);
            ev->seq_last = out.gap_to;
            return 1;
        }
        return 0;
    }
}

/*
 * Has a deadline of the connection passed? No answer while connecting,
 * no heartbeat while live (only a drained feed proves that none came),
 * or behind for as long with another endpoint of the list to go to
 * (it may be current). Then *why is the code for s_lost().
 */
static bool
s_deadline_passed(const parley_sub_t *sub, int *why)
{
    int64_t now = parley__mono_ms();
    *why = PARLEY_ETIMEOUT;
    if (sub->conn != S_CONN_LIVE)
        return sub->conn_deadline >= 0 && now >= sub->conn_deadline;
    if (!sub->feed_more && now - sub->last_hb > s_dead_ms(sub))
        return true;
    *why = PARLEY_EUNAVAILABLE;
    return sub->eps.n > 1 && sub->behind_since > 0
           && now - sub->behind_since > s_dead_ms(sub);
}

/*
 * Do what can be done without waiting: notice a lost connection, send a
 * due request, take the answers and feed messages that have arrived, and
 * move on from an endpoint that did not answer in time.
 * Returns 0 or a negative error for the caller.
 */
static int
s_pump(parley_sub_t *sub)
{
    int rc = parley__wire_handshake(sub->wire);
    if (rc < 0) {
        /* Cut off by the daemon (its CURVE allow-list changed): nothing
         * will come any more, so say so rather than wait in silence. A
         * daemon of the list not yet live that refuses us is passed by. */
        if (sub->conn == S_CONN_LIVE)
            return rc;
        if ((rc = s_lost(sub, rc)) < 0)
            return rc;
    }
    if (parley__wire_disconnected(sub->wire) && sub->conn == S_CONN_LIVE
        && (rc = s_lost(sub, -ECONNRESET)) < 0)
        return rc;
    if ((rc = s_maybe_request(sub)) < 0)
        return rc;
    if (sub->req_state == S_REQ_QUEUED && (rc = s_flush_request(sub)) < 0)
        return rc;
    if ((rc = s_drain_api(sub)) < 0)
        return rc;
    if ((rc = s_drain_feed(sub)) < 0)
        return rc;
    parley__logcheck_tick(sub->lc, parley_now_ms());
    s_log_request(sub);
    int why;
    if (s_deadline_passed(sub, &why))
        return s_lost(sub, why);
    return s_maybe_request(sub);
}

/* The sooner of two mono ms deadlines; -1 is none. */
static int64_t
s_sooner(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    return b >= 0 && b < a ? b : a;
}

/* When a live connection counts as lost: no heartbeat, or behind for as
 * long with another endpoint to go to (see s_deadline_passed()). */
static int64_t
s_live_deadline(const parley_sub_t *sub)
{
    int64_t dead = sub->last_hb + s_dead_ms(sub) + 1;
    if (sub->eps.n > 1 && sub->behind_since > 0)
        dead = s_sooner(dead, sub->behind_since + s_dead_ms(sub) + 1);
    return dead;
}

/*
 * During a replay, ask for the next page and take its answer while the
 * caller is still being handed the last one (parley__merge_want_replay()
 * says when it is due), so that catching up does not stop at every page
 * for the daemon's round trip. The answer is looked for once every
 * S_ANSWER_EVERY calls (s_pump() takes it too when nothing else is
 * ready). 0 or a negative error, as s_pump().
 */
static int
s_read_ahead(parley_sub_t *self)
{
    int rc;
    if (!self->merge.replaying || self->conn != S_CONN_LIVE)
        return 0;
    if (self->req_state == S_REQ_NONE && (rc = s_maybe_request(self)) < 0)
        return rc;
    if (self->req_state != S_REQ_SENT)
        return 0;
    if (self->answer_skip > 0) {
        self->answer_skip--; /* looked a moment ago */
        return 0;
    }
    self->answer_skip = S_ANSWER_EVERY - 1;
    return s_drain_api(self);
}

/*
 * The ms from now until the subscriber has something to do without a
 * socket waking it: 0 now, -1 nothing planned.
 */
static int64_t
s_wait_ms(const parley_sub_t *sub, int64_t now)
{
    if (sub->n_notes > 0 || s_caught_up(sub)
        || (sub->feed_more && !s_feed_paused(sub)))
        return 0;
    int64_t until = -1;
    if (sub->conn != S_CONN_LIVE)
        until = sub->conn_deadline;
    else if (sub->req_state != S_REQ_NONE)
        until = sub->req_deadline;
    else if (sub->retry_at > now)
        until = sub->retry_at;
    if (sub->conn == S_CONN_LIVE)
        until = s_sooner(until, s_live_deadline(sub));
    if (sub->lreq_out)
        until = s_sooner(until, sub->lreq_deadline);
    int64_t lw = parley__logcheck_wait(sub->lc, parley_now_ms());
    if (lw >= 0)
        until = s_sooner(until, now + lw);
    if (until < 0)
        return -1;
    return until > now ? until - now : 0;
}

/* Wait up to wait_ms (-1: no limit) for the sockets. 0 or -errno. */
static int
s_poll(parley_sub_t *sub, int64_t wait_ms)
{
    zmq_pollitem_t items[3] = {
        { .socket = parley__wire_socket(sub->wire), .events = ZMQ_POLLIN },
        { .socket = parley__wire_monitor(sub->wire), .events = ZMQ_POLLIN },
        { .socket = sub->feed, .events = ZMQ_POLLIN },
    };
    if (sub->req_state == S_REQ_QUEUED)
        items[0].events |= ZMQ_POLLOUT;
    /* A full hold buffer of a live subscriber is not read: libzmq queues
     * (or drops, and a replay fetches it again) until the caller has
     * taken some. */
    int nitems = s_feed_paused(sub) ? 2 : 3;
    if (wait_ms > INT32_MAX)
        wait_ms = INT32_MAX;
    return zmq_poll(items, nitems, (long)wait_ms) < 0 ? -errno : 0;
}

/*
 * Run the connection until a daemon is live, each endpoint of the list
 * tried once. Returns 0, or why the last one failed.
 */
static int
s_connect_wait(parley_sub_t *self)
{
    for (;;) {
        int rc = s_pump(self);
        if (rc < 0)
            return rc;
        if (self->conn == S_CONN_LIVE)
            return 0;
        if (self->tries > self->eps.n)
            return self->last_err < 0 ? self->last_err : PARLEY_ETIMEOUT;
        if ((rc = s_poll(self, s_wait_ms(self, parley__mono_ms()))) < 0)
            return rc;
    }
}

/* Make the SUB socket, subscribed to the filters' topics. */
static int
s_open_feed(parley_sub_t *self, int rcvhwm, const parley_curve_t *curve)
{
    char topics[PARLEY__FILTER_VALUES_MAX * 3 + 1][PARLEY_TOPIC_MAX];
    int zero = 0;
    int64_t maxmsg = PARLEY__FEED_MSG_MAX;
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
    /* The topics of every filter (a topic given twice counts once in
     * libzmq's subscription trie, and a delivery is merged once by seq). */
    for (size_t f = 0; f < (self->n_filters > 0 ? self->n_filters : 1); f++) {
        int n = parley_filter_topics(self->n_filters > 0
                                         ? &self->filters[f].filter
                                         : NULL,
                                     topics, sizeof(topics) / sizeof(topics[0]));
        if (n < 0)
            return n;
        for (int i = 0; i < n; i++)
            if (zmq_setsockopt(self->feed, ZMQ_SUBSCRIBE, topics[i],
                               strlen(topics[i])) != 0)
                return -errno;
    }
    if (self->lc != NULL
        && zmq_setsockopt(self->feed, ZMQ_SUBSCRIBE, S_CHECKPOINT_TOPIC,
                          strlen(S_CHECKPOINT_TOPIC)) != 0)
        return -errno;
    /* Last, so that the first heartbeat proves the others are in place. */
    if (zmq_setsockopt(self->feed, ZMQ_SUBSCRIBE, S_HEARTBEAT_TOPIC,
                       strlen(S_HEARTBEAT_TOPIC)) != 0)
        return -errno;
    return 0;
}

/*
 * The transparency log to verify, if one is known and verification is
 * not turned off: the policy from the options or the keyring, and the
 * verifier (reading the state file). 0 or an error.
 */
static int
s_log_options(parley_sub_t *self, const parley_sub_options_t *o)
{
    parley__logpolicy_t pol;
    if ((o->flags & PARLEY_SUB_NO_LOG) != 0)
        return 0;
    if (o->max_staleness_ms < -1 || o->log_witnesses < -1
        || (o->log_pubkey != NULL && o->log_origin == NULL))
        return PARLEY_EARG;
    if (o->log_pubkey != NULL) {
        size_t n = strlen(o->log_origin);
        if (n > PARLEY__NOTE_NAME_MAX || !parley__note_name_valid(o->log_origin, n))
            return PARLEY_EARG;
        if (parley__keyring_logpolicy(o->keyring, o->log_origin, &pol) < 0) {
            /* Not in the keyring: its witnesses, if any, still count. */
            memset(&pol, 0, sizeof(pol));
            pol.max_staleness_ms = PARLEY__LOG_STALENESS_DEFAULT_MS;
            parley__logpolicy_t any;
            if (parley__keyring_logpolicy(o->keyring, NULL, &any) == 0) {
                pol.n_witnesses = any.n_witnesses;
                memcpy(pol.witness, any.witness, sizeof(pol.witness));
            }
        }
        strcpy(pol.origin, o->log_origin);
        memcpy(pol.pk, o->log_pubkey, PARLEY_PUBLICKEY_BYTES);
    } else {
        int rc = parley__keyring_logpolicy(o->keyring, o->log_origin, &pol);
        if (rc == -ENOENT && o->log_origin == NULL)
            return 0; /* no log known: nothing to verify */
        if (rc < 0)
            return PARLEY_EARG;
    }
    if (o->max_staleness_ms > 0)
        pol.max_staleness_ms = o->max_staleness_ms;
    else if (o->max_staleness_ms == -1)
        pol.max_staleness_ms = 0;
    if (o->log_witnesses > 0) {
        if ((size_t)o->log_witnesses > pol.n_witnesses)
            return PARLEY_EARG;
        pol.need = (unsigned)o->log_witnesses;
    } else if (o->log_witnesses == -1) {
        pol.need = 0;
    }
    if ((self->lbuf = malloc(PARLEY_ENVELOPE_MAX)) == NULL)
        return -ENOMEM;
    const char *why = NULL;
    return parley__logcheck_new(&pol, self->n_filters == 0, o->log_state,
                                parley_now_ms(), &self->lc, &why);
}

/* Read and check the options; copy the filters. 0 or an error. */
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
    if (o->n_filters > PARLEY__ANY_OF_MAX
        || (o->n_filters > 0 && o->filters == NULL)
        || o->rcvhwm < 0 || o->heartbeat_misses < 0
        || o->verify_threads < 0
        || o->verify_threads > PARLEY__VERIFY_THREADS_MAX
        || (o->flags & ~(PARLEY_SUB_NOWAIT | PARLEY_SUB_NO_LOG)) != 0)
        return PARLEY_EARG;
    self->misses = o->heartbeat_misses > 0 ? o->heartbeat_misses
                                           : S_MISSES_DEFAULT;
    self->start = o->start;
    self->since = o->since_seq;
    self->keyring = o->keyring;
    if (o->n_filters > 0) {
        self->filters = calloc(o->n_filters, sizeof(*self->filters));
        if (self->filters == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < o->n_filters; i++, self->n_filters++)
            if (o->filters[i] == NULL
                || (rc = parley__filterbuf_set(&self->filters[i],
                                               o->filters[i])) < 0)
                return PARLEY_EARG;
    }
    if (o->feed != NULL && (strlen(o->feed) > PARLEY__ENDPOINT_CHARS
                            || (self->feed_given = strdup(o->feed)) == NULL))
        return strlen(o->feed) > PARLEY__ENDPOINT_CHARS ? PARLEY_EARG
                                                        : -ENOMEM;
    return s_log_options(self, o);
}

parley_sub_t *
parley_sub_new(const parley_sub_options_t *opt)
{
    parley_sub_options_t o;
    int err = 0;
    parley_sub_t *self;

    if ((self = calloc(1, sizeof(*self))) == NULL)
        return NULL;
    parley__merge_init(&self->merge, S_HOLD_LIMIT);
    self->merge.ahead = S_REPLAY_LIMIT;
    self->hb_interval = S_HB_GUESS_MS;
    if ((err = s_options(self, opt, &o)) < 0)
        goto fail;
    if ((err = parley__endpoints_parse(&self->eps, o.server)) < 0)
        goto fail;
    /* A feed endpoint given belongs to one daemon. */
    if (self->feed_given != NULL && self->eps.n > 1) {
        err = PARLEY_EARG;
        goto fail;
    }
    if ((self->wire = parley__wire_new(parley__endpoints_current(&self->eps),
                                       o.curve, &err)) == NULL)
        goto fail;
    if ((err = s_open_feed(self, o.rcvhwm, o.curve)) < 0)
        goto fail;
    if (o.verify_threads > 1
        && (self->pv = parley__preverify_new(o.keyring,
                                             (unsigned)o.verify_threads,
                                             &err)) == NULL)
        goto fail;
    if ((err = s_connect(self, false)) < 0)
        goto fail;
    if ((o.flags & PARLEY_SUB_NOWAIT) == 0
        && (err = s_connect_wait(self)) < 0)
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
    parley__preverify_destroy(&self->pv); /* its threads first */
    if (self->feed != NULL)
        zmq_close(self->feed); /* before the wire terminates the context */
    parley__wire_destroy(&self->wire);
    parley__merge_clear(&self->merge);
    parley__logcheck_destroy(&self->lc);
    free(self->lbuf);
    parley__entries_free(&self->snap_entries);
    parley__endpoints_free(&self->eps);
    parley__event_release(&self->ev);
    free(self->filters);
    free(self->feed_given);
    free(self);
    *sub = NULL;
}

int
parley_sub_next(parley_sub_t *sub, int timeout_ms, const parley_event_t **ev)
{
    bool pumped = false;
    if (sub == NULL || ev == NULL || timeout_ms < -1)
        return PARLEY_EARG;
    int64_t deadline = timeout_ms < 0 ? -1 : parley__mono_ms() + timeout_ms;
    for (;;) {
        int rc = s_read_ahead(sub);
        if (rc == 0)
            rc = s_next_event(sub);
        if (rc == 0 && (rc = s_pump(sub)) == 0)
            rc = s_next_event(sub);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *ev = &sub->ev;
            return 1;
        }
        int64_t now = parley__mono_ms();
        if (sub->conn == S_CONN_LIVE && sub->req_state != S_REQ_NONE
            && sub->req_deadline >= 0 && now >= sub->req_deadline) {
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
        sub->starved += sub->merge.replaying && wait != 0;
        if ((rc = s_poll(sub, wait)) < 0)
            return rc;
    }
}

parley__logcheck_counts_t
parley__sub_log_counts(const parley_sub_t *sub)
{
    return parley__logcheck_counts(sub != NULL ? sub->lc : NULL);
}

parley__preverify_counts_t
parley__sub_verify_counts(const parley_sub_t *sub)
{
    parley__preverify_counts_t c =
        parley__preverify_counts(sub != NULL ? sub->pv : NULL);
    c.starved = sub != NULL ? sub->starved : 0;
    return c;
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
    /* Something the merge could hand out at once (the caller stopped
     * draining before it was taken). */
    const parley__merge_t *m = &sub->merge;
    if (!m->hold
        && ((m->n > 0 && m->items[0].seq <= m->confirmed + 1)
            || m->gap_to > m->confirmed))
        return 0;
    int64_t wait = s_wait_ms(sub, parley__mono_ms());
    return wait > INT32_MAX ? INT32_MAX : (int)wait;
}
