/*
 * pub.c - the publisher: sign, send, wait for the daemon's verdict.
 *
 * Every request the publisher sends is kept in a table until its answer
 * is taken, with the exact bytes that went out. That makes sending never
 * wait (a request waits in the table until a daemon is connected) and
 * makes a publish safe to retry: the same signed bytes sent twice get the
 * original ack (marked duplicate), so after a lost answer the publisher
 * resends exactly what it sent, never a re-signed update (that would
 * carry a new signer_seq and be a second update).
 *
 * A request that is not answered within timeout_ms counts one attempt
 * and goes out again; after `attempts` of them it is answered
 * PARLEY_ETIMEOUT.
 *
 * signer_seq: parley_pub_publish() draws the values it chooses from the
 * sequencer of the key (keys.c), one per public key and process, so
 * publishers of one key in several threads never choose the same one.
 * Arrival order at the daemon is still not the order they were drawn in
 * (each publisher has its own connection), so a value can arrive after a
 * higher one and be refused as a replay; such an update is signed again
 * with a value above the signer's last accepted one, which the daemon
 * names in its answer. That is safe: a replay reject means these bytes
 * were not stored, and since the signer's last accepted value only
 * rises, never will be.
 */
#include "keys.h"
#include "options.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* Requests in the table at most, by default. */
#define S_PENDING_DEFAULT 1024
/* Largest envelope parley_pub_send() takes (the daemon's frame limit). */
#define S_ENVELOPE_CAP (64 * 1024)
/* Room for the request around an envelope. */
#define S_FRAME_SLACK 64
/* Times one publish is signed again after replay rejects, at most. */
#define S_RESIGN_MAX 64

typedef enum {
    S_QUEUED = 0,  /* waiting for a connected daemon */
    S_SENT,        /* on its way; the answer is awaited */
    S_DONE,        /* answered (or given up on); not yet taken */
} s_state_t;

/* One request of the table. */
typedef struct {
    uint64_t id;               /* request id, also inside frame */
    uint8_t *frame;            /* the encoded ApiRequest (heap) */
    size_t len;                /* bytes of frame */
    s_state_t state;
    bool own;                  /* parley_pub_publish()'s, not recv()'s */
    int attempts;              /* timeouts so far */
    int64_t deadline;          /* monotonic ms; -1 = none */
    int result;                /* S_DONE: 0, PARLEY_DUPLICATE or a code */
    uint64_t seq;              /* S_DONE: the ack's seq */
    uint64_t signer_seq;       /* S_DONE, REPLAY: the signer's last one */
    char *detail;              /* S_DONE: the reject text, or NULL */
} s_req_t;

struct parley_pub {
    parley__wire_t *wire;      /* DEALER to the api endpoint */
    parley__endpoints_t eps;   /* the endpoint list */
    const parley_key_t *key;   /* borrowed signing key */
    parley__seq_t *seq;        /* the key's signer_seq sequencer */
    char *seq_file;            /* also recorded there, or NULL */
    int timeout_ms;            /* per attempt, -1 = none */
    int attempts;              /* attempts of one request */
    size_t max_pending;        /* requests in the table at most */
    s_req_t *reqs;             /* the table, in ascending id order */
    size_t n, alloc;           /* requests in it, room */
    uint64_t next_id;          /* id of the next request */
    parley_update_t u;         /* the update as published (scratch) */
    char detail[256];          /* parley_pub_detail() */
};

/* Keep text (may be NULL) as the detail of the last answer. */
static void
s_detail(parley_pub_t *pub, const char *text)
{
    snprintf(pub->detail, sizeof(pub->detail), "%s", text != NULL ? text : "");
}

parley_pub_t *
parley_pub_new(const parley_key_t *key, const parley_pub_options_t *opt)
{
    parley_pub_options_t o;
    int err = 0;
    parley_pub_t *self;
    /* Without a key the publisher only forwards envelopes signed
     * elsewhere (parley_pub_send()), so a seq file means nothing. */
    if ((err = parley__options_read(opt, sizeof(o), &o)) < 0
        || parley__options_timeout(o.timeout_ms) == PARLEY_EARG
        || o.attempts < 0 || (key == NULL && o.seq_file != NULL)) {
        errno = -PARLEY_EARG;
        return NULL;
    }
    if ((self = calloc(1, sizeof(*self))) == NULL)
        return NULL; /* errno = ENOMEM */
    self->key = key;
    self->next_id = 1;
    if ((key != NULL && (self->seq = parley__seq_of(key)) == NULL)
        || (o.seq_file != NULL
            && (self->seq_file = strdup(o.seq_file)) == NULL)) {
        err = -ENOMEM;
        goto fail;
    }
    self->timeout_ms = parley__options_timeout(o.timeout_ms);
    self->max_pending = o.max_pending > 0 ? o.max_pending : S_PENDING_DEFAULT;
    if ((err = parley__endpoints_parse(&self->eps, o.server)) < 0)
        goto fail;
    self->attempts = o.attempts > 0 ? o.attempts : 2;
    if (o.attempts == 0 && self->eps.n > 2)
        self->attempts = (int)self->eps.n;
    if ((self->wire = parley__wire_new(parley__endpoints_current(&self->eps),
                                       o.curve, &err)) == NULL)
        goto fail;
    return self;
fail:
    parley_pub_destroy(&self);
    errno = -err;
    return NULL;
}

/* Free what a request holds. */
static void
s_req_free(s_req_t *r)
{
    free(r->frame);
    free(r->detail);
    r->frame = NULL;
    r->detail = NULL;
}

void
parley_pub_destroy(parley_pub_t **pub)
{
    if (pub == NULL || *pub == NULL)
        return;
    parley_pub_t *self = *pub;
    for (size_t i = 0; i < self->n; i++)
        s_req_free(&self->reqs[i]);
    free(self->reqs);
    parley__wire_destroy(&self->wire);
    parley__endpoints_free(&self->eps);
    free(self->seq_file);
    free(self);
    *pub = NULL;
}

/* The deadline of an attempt that starts now (-1: none). */
static int64_t
s_deadline(const parley_pub_t *pub, int64_t now)
{
    return pub->timeout_ms < 0 ? -1 : now + pub->timeout_ms;
}

/* Index of the request with id, or -1. */
static long
s_find(const parley_pub_t *pub, uint64_t id)
{
    size_t lo = 0, hi = pub->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pub->reqs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < pub->n && pub->reqs[lo].id == id ? (long)lo : -1;
}

/* Remove request i from the table (its memory is freed). */
static void
s_remove(parley_pub_t *pub, size_t i)
{
    s_req_free(&pub->reqs[i]);
    memmove(&pub->reqs[i], &pub->reqs[i + 1],
            (pub->n - i - 1) * sizeof(pub->reqs[0]));
    pub->n--;
}

/*
 * Put a PublishRequest around env into the table, queued.
 * Returns 0 with *id set, -EAGAIN (the table is full), -ENOMEM or
 * -ENOBUFS.
 */
static int
s_enqueue(parley_pub_t *pub, const void *env, size_t len, bool own,
          uint64_t *id)
{
    parley__request_t req;
    if (pub->n >= pub->max_pending)
        return -EAGAIN;
    if (pub->n == pub->alloc) {
        size_t alloc = pub->alloc > 0 ? pub->alloc * 2 : 16;
        s_req_t *v = realloc(pub->reqs, alloc * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        pub->reqs = v;
        pub->alloc = alloc;
    }
    size_t cap = len + S_FRAME_SLACK;
    uint8_t *frame = malloc(cap);
    if (frame == NULL)
        return -ENOMEM;
    memset(&req, 0, sizeof(req));
    req.request_id = pub->next_id;
    req.op = PARLEY__OP_PUBLISH;
    req.update.data = env;
    req.update.len = len;
    size_t flen = 0;
    int rc = parley__request_encode(&req, frame, cap, &flen);
    if (rc < 0) {
        free(frame);
        return rc;
    }
    pub->reqs[pub->n++] = (s_req_t){
        .id = pub->next_id,
        .frame = frame,
        .len = flen,
        .state = S_QUEUED,
        .own = own,
        .deadline = s_deadline(pub, parley__mono_ms()),
    };
    *id = pub->next_id++;
    return 0;
}

/* Mark request r answered (or given up on) with result. */
static void
s_done(s_req_t *r, int result, uint64_t seq, const char *detail)
{
    r->state = S_DONE;
    r->result = result;
    r->seq = seq;
    free(r->detail);
    r->detail = detail != NULL && detail[0] != '\0' ? strdup(detail) : NULL;
}

/*
 * Move to the next endpoint of the list (or, with one endpoint, keep it)
 * and queue every unanswered request again: on a new connection the old
 * one's requests are lost.
 */
static int
s_failover(parley_pub_t *pub, int64_t now)
{
    if (pub->eps.n > 1) {
        int rc = parley__wire_switch(pub->wire,
                                     parley__endpoints_next(&pub->eps));
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < pub->n; i++) {
            s_req_t *r = &pub->reqs[i];
            if (r->state != S_DONE) {
                r->state = S_QUEUED;
                r->deadline = s_deadline(pub, now);
            }
        }
    }
    return 0;
}

/* Handle one reply from the daemon. 0 or a negative error. */
static int
s_on_reply(parley_pub_t *pub, const parley__reply_t *r, int64_t now)
{
    long i = s_find(pub, r->request_id);
    if (i < 0 || pub->reqs[i].state == S_DONE)
        return 0; /* an answer to a request given up on, or a second one */
    s_req_t *q = &pub->reqs[i];
    if (r->type == PARLEY__REPLY_REJECT) {
        /* Another node may well be able to store it: move on, with the
         * same bytes, while attempts remain. */
        if (r->code == PARLEY_EUNAVAILABLE && pub->eps.n > 1
            && ++q->attempts < pub->attempts) {
            q->state = S_QUEUED;
            return s_failover(pub, now);
        }
        s_done(q, r->code, 0, r->message);
        q->signer_seq = r->signer_seq;
    } else if (r->type == PARLEY__REPLY_ACK) {
        s_done(q, r->duplicate ? PARLEY_DUPLICATE : 0, r->seq, NULL);
    } else {
        s_done(q, PARLEY_EPROTO, 0,
               "the daemon answered a publish with something else");
    }
    return 0;
}

/*
 * Do what can be done now without waiting: take the answers that came,
 * give up or resend what timed out, send what is queued.
 * Returns 0, or an error that concerns the publisher as a whole (-EACCES,
 * PARLEY_EPROTO from the handshake, -ENOMEM, -errno).
 */
static int
s_pump(parley_pub_t *pub)
{
    int rc;
    int64_t now = parley__mono_ms();
    for (;;) {
        parley__reply_t reply;
        rc = parley__wire_recv(pub->wire, 0, 0, &reply);
        if (rc == PARLEY_ETIMEOUT)
            break;
        if (rc == PARLEY_EPROTO && parley__wire_handshake(pub->wire) == 0)
            continue; /* an answer that does not decode: its request
                       * times out and is sent again */
        /* else a failed handshake (the peer is no api endpoint, or speaks
         * another security): asking again would meet it again at once */
        if (rc < 0)
            return rc;
        if ((rc = s_on_reply(pub, &reply, now)) < 0)
            return rc;
    }
    for (size_t i = 0; i < pub->n; i++) {
        s_req_t *r = &pub->reqs[i];
        if (r->state == S_DONE || r->deadline < 0 || now < r->deadline)
            continue;
        if (++r->attempts >= pub->attempts) {
            s_done(r, PARLEY_ETIMEOUT, 0,
                   r->state == S_QUEUED ? "no daemon connected in time"
                                        : "no answer after every attempt");
            continue;
        }
        /* Sent again (to the next endpoint, if there is one); a late
         * answer to the first send is as good as one to the resend. */
        r->state = S_QUEUED;
        r->deadline = s_deadline(pub, now);
        if ((rc = s_failover(pub, now)) < 0)
            return rc;
    }
    for (size_t i = 0; i < pub->n; i++) {
        s_req_t *r = &pub->reqs[i];
        if (r->state != S_QUEUED)
            continue;
        rc = parley__wire_send_bytes(pub->wire, r->frame, r->len);
        if (rc == -EAGAIN)
            break; /* not connected yet, or the daemon's queue is full */
        if (rc < 0)
            return rc;
        r->state = S_SENT;
    }
    return parley__wire_handshake(pub->wire);
}

/* ms until the nearest request deadline from now: -1 none, 0 passed. */
static int64_t
s_next_deadline(const parley_pub_t *pub, int64_t now)
{
    int64_t next = -1;
    for (size_t i = 0; i < pub->n; i++) {
        const s_req_t *r = &pub->reqs[i];
        if (r->state == S_DONE || r->deadline < 0)
            continue;
        int64_t left = r->deadline > now ? r->deadline - now : 0;
        if (next < 0 || left < next)
            next = left;
    }
    return next;
}

/* Wait up to wait_ms (-1: no limit) for the sockets. 0 or -errno. */
static int
s_wait(parley_pub_t *pub, int64_t wait_ms)
{
    bool queued = false;
    for (size_t i = 0; i < pub->n && !queued; i++)
        queued = pub->reqs[i].state == S_QUEUED;
    zmq_pollitem_t items[2] = {
        { .socket = parley__wire_socket(pub->wire), .events = ZMQ_POLLIN },
        { .socket = parley__wire_monitor(pub->wire), .events = ZMQ_POLLIN },
    };
    if (queued)
        items[0].events |= ZMQ_POLLOUT;
    if (wait_ms > INT32_MAX)
        wait_ms = INT32_MAX;
    return zmq_poll(items, 2, (long)wait_ms) < 0 ? -errno : 0;
}

/*
 * Take request i out of the table: its result, with *id, *seq and
 * *signer_seq (each may be NULL) set and its detail kept for
 * parley_pub_detail().
 */
static int
s_take(parley_pub_t *pub, size_t i, uint64_t *id, uint64_t *seq,
       uint64_t *signer_seq)
{
    s_req_t *r = &pub->reqs[i];
    int result = r->result;
    if (id != NULL)
        *id = r->id;
    if (seq != NULL && result >= 0)
        *seq = r->seq;
    if (signer_seq != NULL)
        *signer_seq = r->signer_seq;
    s_detail(pub, r->detail);
    s_remove(pub, i);
    return result;
}

/*
 * Wait until request id is answered (or given up on) and take it, with
 * *signer_seq the signer's last value a REPLAY reject names.
 * Returns its result, or an error of the publisher as a whole.
 */
static int
s_await(parley_pub_t *pub, uint64_t id, uint64_t *seq, uint64_t *signer_seq)
{
    for (;;) {
        int rc = s_pump(pub);
        if (rc < 0) {
            long i = s_find(pub, id);
            if (i >= 0)
                s_remove(pub, (size_t)i);
            return rc;
        }
        long i = s_find(pub, id);
        if (i < 0)
            return PARLEY_EPROTO; /* cannot happen: only we take it */
        if (pub->reqs[i].state == S_DONE)
            return s_take(pub, (size_t)i, NULL, seq, signer_seq);
        if ((rc = s_wait(pub, s_next_deadline(pub, parley__mono_ms()))) < 0) {
            s_remove(pub, (size_t)i);
            return rc;
        }
    }
}

/* Sign pub->u and wait for the daemon's verdict on it. */
static int
s_publish_once(parley_pub_t *pub, uint64_t *seq, uint64_t *signer_seq)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    uint64_t id;
    int rc = parley_sign(pub->key, &pub->u, env, sizeof(env), &len);
    if (rc == 0)
        rc = s_enqueue(pub, env, len, true, &id);
    return rc < 0 ? rc : s_await(pub, id, seq, signer_seq);
}

int
parley_pub_publish(parley_pub_t *pub, const parley_update_t *u, uint64_t *seq)
{
    int rc;
    if (pub == NULL || u == NULL)
        return PARLEY_EARG;
    s_detail(pub, NULL);
    if (pub->key == NULL) {
        s_detail(pub, "this publisher has no key: it forwards envelopes "
                      "signed elsewhere (parley_pub_send())");
        return PARLEY_EARG;
    }
    pub->u = *u;
    bool chosen = pub->u.signer_seq == 0; /* ours to choose (and redo) */
    if (pub->u.issued_at == 0)
        pub->u.issued_at = parley_now_ms();
    /* Checked with a stand-in first, so that a bad update takes no
     * value from the sequencer (or the seq file). */
    if (chosen)
        pub->u.signer_seq = 1;
    if ((rc = parley_update_validate(&pub->u, pub->detail,
                                     sizeof(pub->detail))) < 0)
        return rc;
    if (!chosen)
        return s_publish_once(pub, seq, NULL);
    for (int round = 0;; round++) {
        parley__seq_ticket_t t;
        uint64_t last = 0;
        if ((rc = parley__seq_take(pub->seq, pub->seq_file, &t)) < 0) {
            snprintf(pub->detail, sizeof(pub->detail),
                     "signer_seq: %s%s%s", pub->seq_file ? pub->seq_file : "",
                     pub->seq_file ? ": " : "", parley_strerror(rc));
            return rc;
        }
        pub->u.signer_seq = t.value;
        rc = s_publish_once(pub, seq, &last);
        if (rc == PARLEY_EREPLAY && round < S_RESIGN_MAX) {
            /* Another publisher of this key got a later value to the
             * daemon first (or our clock is behind its last one). */
            parley__seq_floor(pub->seq, last);
            continue;
        }
        if (rc == PARLEY_EFUTURE)
            parley__seq_give_back(pub->seq, pub->seq_file, &t);
        return rc;
    }
}

int
parley_pub_send(parley_pub_t *pub, const void *env, size_t len,
                uint64_t *request_id)
{
    uint64_t id;
    if (pub == NULL || env == NULL || len == 0)
        return PARLEY_EARG;
    if (len > S_ENVELOPE_CAP)
        return PARLEY_ETOOLARGE;
    int rc = s_enqueue(pub, env, len, false, &id);
    if (rc < 0)
        return rc;
    /* Out now if a daemon is connected; a failure here is the
     * publisher's as a whole and comes back from parley_pub_recv(). */
    if ((rc = s_pump(pub)) == -EACCES || rc == PARLEY_EPROTO) {
        s_remove(pub, (size_t)s_find(pub, id));
        return rc;
    }
    if (request_id != NULL)
        *request_id = id;
    return 0;
}

int
parley_pub_recv(parley_pub_t *pub, int timeout_ms, uint64_t *request_id,
                uint64_t *seq)
{
    if (pub == NULL || timeout_ms < -1)
        return PARLEY_EARG;
    s_detail(pub, NULL);
    int64_t deadline = timeout_ms < 0 ? -1 : parley__mono_ms() + timeout_ms;
    for (bool pumped = false;; pumped = true) {
        int rc = s_pump(pub);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < pub->n; i++)
            if (pub->reqs[i].state == S_DONE && !pub->reqs[i].own)
                return s_take(pub, i, request_id, seq, NULL);
        int64_t now = parley__mono_ms();
        if (pumped && deadline >= 0 && now >= deadline)
            return -EAGAIN;
        int64_t wait = s_next_deadline(pub, now);
        if (deadline >= 0) {
            int64_t left = deadline > now ? deadline - now : 0;
            if (wait < 0 || left < wait)
                wait = left;
        }
        if ((rc = s_wait(pub, wait)) < 0)
            return rc;
    }
}

const char *
parley_pub_detail(const parley_pub_t *pub)
{
    return pub != NULL ? pub->detail : "";
}

const char *
parley_pub_endpoint(const parley_pub_t *pub)
{
    return pub != NULL ? parley__wire_server(pub->wire) : NULL;
}

size_t
parley_pub_pending(const parley_pub_t *pub)
{
    return pub != NULL ? pub->n : 0;
}

int
parley_pub_fds(const parley_pub_t *pub, int *fds, size_t cap)
{
    if (pub == NULL)
        return PARLEY_EARG;
    return parley__wire_fds(pub->wire, fds, cap);
}

int
parley_pub_timeout(const parley_pub_t *pub)
{
    if (pub == NULL)
        return -1;
    for (size_t i = 0; i < pub->n; i++)
        if (pub->reqs[i].state == S_DONE && !pub->reqs[i].own)
            return 0; /* an answer waits to be taken */
    int64_t wait = s_next_deadline(pub, parley__mono_ms());
    return wait > INT32_MAX ? INT32_MAX : (int)wait;
}
