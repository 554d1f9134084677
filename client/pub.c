/*
 * pub.c - the publisher: sign, send, wait for the daemon's verdict.
 *
 * A publish is made safe to retry by the daemon: the same signed bytes
 * sent twice get the original ack (marked duplicate), so after a lost
 * answer the publisher resends exactly what it sent, never a re-signed
 * update (that would carry a new signer_seq and be a second update).
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long parley_pub_send() waits for a connected daemon. */
#define S_SEND_WAIT_MS PARLEY__TIMEOUT_DEFAULT_MS

struct parley_pub {
    parley__wire_t *wire;      /* DEALER to the api endpoint */
    const parley_key_t *key;   /* borrowed signing key */
    uint64_t last_signer_seq;  /* highest signer_seq this publisher used */
    parley__request_t req;     /* scratch request (large: keep off stack) */
};

parley_pub_t *
parley_pub_new(const char *server, const parley_key_t *key)
{
    return parley_pub_new_curve(server, key, NULL);
}

parley_pub_t *
parley_pub_new_curve(const char *server, const parley_key_t *key,
                     const parley_curve_t *curve)
{
    int err = 0;
    parley_pub_t *self;
    if (key == NULL) {
        errno = -PARLEY_EARG;
        return NULL;
    }
    if ((self = calloc(1, sizeof(*self))) == NULL)
        return NULL; /* errno = ENOMEM */
    self->key = key;
    if ((self->wire = parley__wire_new(server != NULL ? server
                                                      : PARLEY_DEFAULT_SERVER,
                                       curve, &err)) == NULL) {
        parley_pub_destroy(&self);
        errno = -err;
        return NULL;
    }
    return self;
}

void
parley_pub_destroy(parley_pub_t **pub)
{
    if (pub == NULL || *pub == NULL)
        return;
    parley__wire_destroy(&(*pub)->wire);
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

/* Turn an ACK/REJECT reply into the return value and outputs. */
static int
s_verdict(const parley__reply_t *r, uint64_t *seq, int *duplicate)
{
    if (r->type == PARLEY__REPLY_REJECT)
        return r->code;
    if (r->type != PARLEY__REPLY_ACK)
        return PARLEY_EPROTO;
    if (seq != NULL)
        *seq = r->seq;
    if (duplicate != NULL)
        *duplicate = r->duplicate ? 1 : 0;
    return 0;
}

int
parley_pub_publish(parley_pub_t *pub, parley_update_t *u, int timeout_ms,
                   uint64_t *seq, int *duplicate)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    uint64_t id;
    parley__reply_t reply;
    int rc;

    if (pub == NULL || u == NULL)
        return PARLEY_EARG;
    if (timeout_ms == 0)
        timeout_ms = PARLEY__TIMEOUT_DEFAULT_MS;
    if (u->issued_at == 0)
        u->issued_at = parley_now_ms();
    if (u->signer_seq == 0) {
        uint64_t now = s_now_us();
        u->signer_seq = now > pub->last_signer_seq ? now
                                                   : pub->last_signer_seq + 1;
    }
    if ((rc = parley_sign(pub->key, u, env, sizeof(env), &len)) < 0)
        return rc;
    if (u->signer_seq > pub->last_signer_seq)
        pub->last_signer_seq = u->signer_seq;

    memset(&pub->req, 0, sizeof(pub->req));
    pub->req.op = PARLEY__OP_PUBLISH;
    pub->req.update.data = env;
    pub->req.update.len = len;
    if ((rc = parley__wire_prepare(pub->wire, &pub->req, &id)) < 0)
        return rc;
    /* Two attempts with the same bytes and id: a late answer to the first
     * is as good as the answer to the resend. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t deadline = parley__mono_ms() + timeout_ms;
        rc = parley__wire_send(pub->wire, timeout_ms);
        if (rc == 0) {
            int64_t left = deadline - parley__mono_ms();
            rc = parley__wire_recv(pub->wire, id, left > 0 ? (int)left : 0,
                                   &reply);
            if (rc == 0)
                return s_verdict(&reply, seq, duplicate);
        }
        if (rc != PARLEY_ETIMEOUT)
            return rc;
    }
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
                uint64_t *seq, int *duplicate)
{
    parley__reply_t reply;
    if (pub == NULL)
        return PARLEY_EARG;
    int rc = parley__wire_recv(pub->wire, 0, timeout_ms, &reply);
    if (rc < 0)
        return rc;
    if (request_id != NULL)
        *request_id = reply.request_id;
    return s_verdict(&reply, seq, duplicate);
}
