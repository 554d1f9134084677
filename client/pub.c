/*
 * pub.c - the publisher: sign, send, wait for the daemon's verdict.
 *
 * A publish is made safe to retry by the daemon: the same signed bytes
 * sent twice get the original ack (marked duplicate), so after a lost
 * answer the publisher resends exactly what it sent, never a re-signed
 * update (that would carry a new signer_seq and be a second update).
 */
#include "options.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* How long parley_pub_send() waits for a connected daemon. */
#define S_SEND_WAIT_MS PARLEY__TIMEOUT_DEFAULT_MS

struct parley_pub {
    parley__wire_t *wire;      /* DEALER to the api endpoint */
    parley__endpoints_t eps;   /* the endpoint list */
    const parley_key_t *key;   /* borrowed signing key */
    int timeout_ms;            /* per attempt, -1 = none */
    int attempts;              /* sends of one request */
    uint64_t last_signer_seq;  /* highest signer_seq this publisher used */
    parley_update_t u;         /* the update as published (scratch) */
    parley__request_t req;     /* scratch request (large: keep off stack) */
    char detail[256];          /* parley_pub_detail() */
};

parley_pub_t *
parley_pub_new(const parley_key_t *key, const parley_pub_options_t *opt)
{
    parley_pub_options_t o;
    int err = 0;
    parley_pub_t *self;
    if (key == NULL || (err = parley__options_read(opt, sizeof(o), &o)) < 0
        || parley__options_timeout(o.timeout_ms) == PARLEY_EARG
        || o.attempts < 0) {
        errno = -PARLEY_EARG;
        return NULL;
    }
    if ((self = calloc(1, sizeof(*self))) == NULL)
        return NULL; /* errno = ENOMEM */
    self->key = key;
    self->timeout_ms = parley__options_timeout(o.timeout_ms);
    if ((err = parley__endpoints_parse(&self->eps, o.server)) < 0)
        goto fail;
    self->attempts = o.attempts > 0 ? o.attempts : 2;
    if ((self->wire = parley__wire_new(parley__endpoints_current(&self->eps),
                                       o.curve, &err)) == NULL)
        goto fail;
    return self;
fail:
    parley_pub_destroy(&self);
    errno = -err;
    return NULL;
}

void
parley_pub_destroy(parley_pub_t **pub)
{
    if (pub == NULL || *pub == NULL)
        return;
    parley__wire_destroy(&(*pub)->wire);
    parley__endpoints_free(&(*pub)->eps);
    free(*pub);
    *pub = NULL;
}

/* Microseconds since the epoch (CLOCK_REALTIME). */
static uint64_t
s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Keep text (may be NULL) as the detail of the last answer. */
static void
s_detail(parley_pub_t *pub, const char *text)
{
    snprintf(pub->detail, sizeof(pub->detail), "%s", text != NULL ? text : "");
}

/* Turn an ACK/REJECT reply into the return value and outputs. */
static int
s_verdict(parley_pub_t *pub, const parley__reply_t *r, uint64_t *seq)
{
    if (r->type == PARLEY__REPLY_REJECT) {
        s_detail(pub, r->message);
        return r->code;
    }
    if (r->type != PARLEY__REPLY_ACK) {
        s_detail(pub, "the daemon answered a publish with something else");
        return PARLEY_EPROTO;
    }
    if (seq != NULL)
        *seq = r->seq;
    return r->duplicate ? PARLEY_DUPLICATE : 0;
}

int
parley_pub_publish(parley_pub_t *pub, const parley_update_t *u, uint64_t *seq)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    uint64_t id;
    parley__reply_t reply;
    int rc;

    if (pub == NULL || u == NULL)
        return PARLEY_EARG;
    s_detail(pub, NULL);
    pub->u = *u;
    if (pub->u.issued_at == 0)
        pub->u.issued_at = parley_now_ms();
    if (pub->u.signer_seq == 0) {
        uint64_t now = s_now_us();
        pub->u.signer_seq = now > pub->last_signer_seq
                                ? now
                                : pub->last_signer_seq + 1;
    }
    if ((rc = parley_update_validate(&pub->u, pub->detail,
                                     sizeof(pub->detail))) < 0)
        return rc;
    if ((rc = parley_sign(pub->key, &pub->u, env, sizeof(env), &len)) < 0)
        return rc;
    if (pub->u.signer_seq > pub->last_signer_seq)
        pub->last_signer_seq = pub->u.signer_seq;

    memset(&pub->req, 0, sizeof(pub->req));
    pub->req.op = PARLEY__OP_PUBLISH;
    pub->req.update.data = env;
    pub->req.update.len = len;
    if ((rc = parley__wire_prepare(pub->wire, &pub->req, &id)) < 0)
        return rc;
    /* Several attempts with the same bytes and id: a late answer to the
     * first is as good as the answer to the resend. */
    for (int attempt = 0; attempt < pub->attempts; attempt++) {
        int64_t deadline = parley__mono_ms() + pub->timeout_ms;
        rc = parley__wire_send(pub->wire, pub->timeout_ms);
        if (rc == 0) {
            int64_t left = deadline - parley__mono_ms();
            rc = parley__wire_recv(pub->wire, id,
                                   pub->timeout_ms < 0 ? -1
                                   : left > 0          ? (int)left
                                                       : 0,
                                   &reply);
            if (rc == 0)
                return s_verdict(pub, &reply, seq);
        }
        if (rc != PARLEY_ETIMEOUT)
            return rc;
    }
    s_detail(pub, "no answer after every attempt");
    return PARLEY_ETIMEOUT;
}

int
parley_pub_send(parley_pub_t *pub, const void *env, size_t len,
                uint64_t *request_id)
{
    int rc;
    uint64_t id;
    if (pub == NULL || env == NULL || len == 0)
        return PARLEY_EARG;
    memset(&pub->req, 0, sizeof(pub->req));
    pub->req.op = PARLEY__OP_PUBLISH;
    pub->req.update.data = env;
    pub->req.update.len = len;
    if ((rc = parley__wire_prepare(pub->wire, &pub->req, &id)) < 0)
        return rc;
    rc = parley__wire_send(pub->wire, S_SEND_WAIT_MS);
    if (rc == PARLEY_ETIMEOUT)
        return -EAGAIN; /* no daemon connected, or its queue is full */
    if (rc < 0)
        return rc;
    if (request_id != NULL)
        *request_id = id;
    return 0;
}

int
parley_pub_recv(parley_pub_t *pub, int timeout_ms, uint64_t *request_id,
                uint64_t *seq)
{
    parley__reply_t reply;
    if (pub == NULL)
        return PARLEY_EARG;
    s_detail(pub, NULL);
    int rc = parley__wire_recv(pub->wire, 0, timeout_ms, &reply);
    if (rc == PARLEY_ETIMEOUT)
        return -EAGAIN;
    if (rc < 0)
        return rc;
    if (request_id != NULL)
        *request_id = reply.request_id;
    return s_verdict(pub, &reply, seq);
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
    (void)pub;
    return -1;
}
