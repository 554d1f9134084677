/*
 * wire.c - request/reply with parleyd's api endpoint.
 *
 * The daemon's api socket is a ROUTER: it sees [identity][ApiRequest] and
 * answers [identity][ApiReply], so a DEALER here sends and receives one
 * frame per message. Every request carries an id the reply echoes; a reply
 * with another id answers a request that was given up on (a timeout
 * followed by a resend, or a pipelined publish) and is dropped.
 */
#include "keys.h"
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* Bytes of a request: an envelope plus a full filter fits comfortably. */
#define S_OUT_CAP (PARLEY_ENVELOPE_MAX + 16384)
/* Arena for decoded replies; larger replay pages spill to the heap. */
#define S_ARENA_CAP (64 * 1024)
/* The wire owns its context, so one fixed monitor endpoint suffices. */
#define S_MONITOR_EP "inproc://parley.wire.monitor"
#define S_MONITOR_EVENTS                                                     \
    (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL   \
     | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED \
     | ZMQ_EVENT_DISCONNECTED)
/* Handshakes in a row that the daemon broke off without a reason before
 * we call it a mismatch: when both sides see a mechanism mismatch, the
 * one that closes first leaves the other without the detail. */
#define S_NO_DETAIL_MAX 3
/* An endpoint switch waits this long at most for the old connection to
 * be gone from the socket (it takes well under a millisecond). */
#define S_SWITCH_WAIT_MS 100

struct parley__wire {
    void *ctx;                 /* zmq context owned by this wire */
    void *sock;                /* DEALER connected to server */
    void *monitor;             /* PAIR receiving the DEALER's events */
    int handshake;             /* parley__wire_handshake() result, kept
                                  until a handshake succeeds */
    int no_detail;             /* handshakes failed in a row, no reason */
    int disconnected;          /* the connection to server closed */
    char *server;              /* api endpoint, for the feed fix-up */
    uint64_t next_id;          /* request id of the next prepare */
    uint64_t out_id;           /* id of the prepared request, 0 = none */
    size_t out_len;            /* bytes of the prepared request */
    uint8_t out[S_OUT_CAP];    /* the prepared request */
    parley__arena_t arena;     /* holds the last decoded reply */
    uint8_t arena_buf[S_ARENA_CAP];
};

/* Milliseconds left until deadline (-1 = none), never below 0. */
static int
s_left(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - parley__mono_ms();
    if (left <= 0)
        return 0;
    return left > 1000000000 ? 1000000000 : (int)left;
}

/* Absolute deadline for a timeout (-1 = none). */
static int64_t
s_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : parley__mono_ms() + timeout_ms;
}

parley__wire_t *
parley__wire_new(const char *server, const parley_curve_t *curve, int *err)
{
    int zero = 0, one = 1;
    int64_t maxmsg = PARLEY__REPLY_MAX;
    parley__wire_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    parley__arena_init(&self->arena, self->arena_buf, sizeof(self->arena_buf));
    /* The ROUTER names each connection afresh, so ids need only be
     * unique per wire; 0 is kept for "no request". */
    self->next_id = 1;
    if (server == NULL || *server == '\0') {
        *err = PARLEY_EARG;
        goto fail;
    }
    if ((self->server = strdup(server)) == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    if ((self->ctx = zmq_ctx_new()) == NULL) {
        *err = -errno;
        goto fail;
    }
    if ((self->sock = zmq_socket(self->ctx, ZMQ_DEALER)) == NULL
        || zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_setsockopt(self->sock, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0
        || zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg,
                          sizeof(maxmsg)) != 0) {
        *err = -errno;
        goto fail;
    }
    if ((*err = parley__curve_apply(curve, self->sock)) < 0)
        goto fail;
    /* The monitor before the connect, so that no event is missed. */
    if (zmq_socket_monitor(self->sock, S_MONITOR_EP, S_MONITOR_EVENTS) != 0
        || (self->monitor = zmq_socket(self->ctx, ZMQ_PAIR)) == NULL
        || zmq_setsockopt(self->monitor, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_connect(self->monitor, S_MONITOR_EP) != 0
        || zmq_connect(self->sock, server) != 0) {
        *err = -errno;
        goto fail;
    }
    return self;
fail:
    parley__wire_destroy(&self);
    return NULL;
}

void
parley__wire_destroy(parley__wire_t **w)
{
    if (w == NULL || *w == NULL)
        return;
    parley__wire_t *self = *w;
    if (self->sock != NULL) {
        if (self->monitor != NULL)
            zmq_socket_monitor(self->sock, NULL, 0);
        zmq_close(self->sock);
    }
    if (self->monitor != NULL)
        zmq_close(self->monitor);
    if (self->ctx != NULL)
        zmq_ctx_term(self->ctx);
    parley__arena_reset(&self->arena);
    free(self->server);
    free(self);
    *w = NULL;
}

int
parley__wire_handshake(parley__wire_t *w)
{
    /* Events are two frames: 16-bit event and 32-bit value, then the
     * endpoint. All are read, also after a failure is known: libzmq's I/O
     * thread blocks on a full monitor pipe. A later success (the daemon
     * let us in again) clears what failed before. */
    while (w->monitor != NULL) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, w->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= sizeof(event))
            memcpy(&event, zmq_msg_data(&ev), sizeof(event));
        while (zmq_msg_more(&ev) && zmq_msg_recv(&ev, w->monitor, 0) >= 0) {
        }
        zmq_msg_close(&ev);
        switch (event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            w->handshake = 0;
            w->no_detail = 0;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            w->handshake = -EACCES;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            w->handshake = PARLEY_EPROTO;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            if (++w->no_detail >= S_NO_DETAIL_MAX && w->handshake == 0)
                w->handshake = PARLEY_EPROTO;
            break;
        case ZMQ_EVENT_DISCONNECTED:
            w->disconnected = 1;
            break;
        default:
            break;
        }
    }
    return w->handshake;
}

void *
parley__wire_ctx(parley__wire_t *w)
{
    return w->ctx;
}

void *
parley__wire_socket(parley__wire_t *w)
{
    return w->sock;
}

void *
parley__wire_monitor(parley__wire_t *w)
{
    return w->monitor;
}

int
parley__zmq_fd(void *sock)
{
    int fd = -1;
    size_t n = sizeof(fd);
    if (sock == NULL || zmq_getsockopt(sock, ZMQ_FD, &fd, &n) != 0)
        return -1;
    return fd;
}

int
parley__wire_fds(const parley__wire_t *w, int *fds, size_t cap)
{
    int have[2] = { parley__zmq_fd(w->sock), parley__zmq_fd(w->monitor) };
    for (size_t i = 0; i < 2 && i < cap; i++)
        fds[i] = have[i];
    return 2;
}

const char *
parley__wire_server(const parley__wire_t *w)
{
    return w->server;
}

/*
 * Wait (at most S_SWITCH_WAIT_MS) until the socket has no connection it
 * could send on. After zmq_disconnect() libzmq ends the old connection in
 * its I/O thread; until the socket has processed that, a send may still be
 * queued on the old connection's pipe and be dropped with it. ZMQ_EVENTS
 * processes the socket's pending commands; with ZMQ_IMMEDIATE, POLLOUT is
 * off once no connection is left.
 */
static void
s_wait_unwritable(void *sock)
{
    int64_t deadline = parley__mono_ms() + S_SWITCH_WAIT_MS;
    for (;;) {
        int ev = 0;
        size_t n = sizeof(ev);
        if (zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &n) != 0
            || (ev & ZMQ_POLLOUT) == 0 || parley__mono_ms() >= deadline)
            return;
        struct timespec ts = { 0, 100 * 1000 };
        nanosleep(&ts, NULL);
    }
}

int
parley__zmq_move(void *sock, const char *from, const char *to)
{
    /* A message libzmq holds partly read: the caller's own (not here:
     * every reader of the library reads whole messages), or one whose
     * first frame zmq_poll() read ahead (a SUB socket does, to apply its
     * subscriptions). If its connection goes now, the next read of the
     * rest asserts in libzmq. So one message is read to its end first;
     * it is of the old connection (the only one), whose queue the
     * disconnect discards anyway. */
    if (from != NULL && from[0] != '\0') {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
            while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, sock, 0) >= 0) {
            }
        zmq_msg_close(&msg);
    }
    /* The new endpoint first, so that a failure leaves the old
     * connection in place; then the old one goes, with its queue. */
    if (zmq_connect(sock, to) != 0)
        return -errno;
    if (from != NULL && from[0] != '\0')
        zmq_disconnect(sock, from);
    return 0;
}

int
parley__wire_switch(parley__wire_t *w, const char *server)
{
    if (strcmp(w->server, server) == 0)
        return 0; /* libzmq keeps reconnecting to it by itself */
    char *copy = strdup(server);
    if (copy == NULL)
        return -ENOMEM;
    /* The old connection goes first, with its queue, and is gone before
     * the new one is made: a request sent now waits for the new one. (A
     * DEALER is always read whole, so parley__zmq_move()'s partly read
     * message cannot be here.) */
    zmq_disconnect(w->sock, w->server);
    s_wait_unwritable(w->sock);
    if (zmq_connect(w->sock, server) != 0) {
        int rc = -errno;
        zmq_connect(w->sock, w->server); /* stay where we were */
        free(copy);
        return rc;
    }
    free(w->server);
    w->server = copy;
    parley__wire_handshake(w); /* read what the old connection reported */
    w->handshake = 0;
    w->no_detail = 0;
    w->disconnected = 0;
    return 0;
}

int
parley__wire_prepare(parley__wire_t *w, parley__request_t *req, uint64_t *id)
{
    req->request_id = w->next_id++;
    if (w->next_id == 0)
        w->next_id = 1;
    int rc = parley__request_encode(req, w->out, sizeof(w->out), &w->out_len);
    if (rc < 0) {
        w->out_id = 0;
        return rc;
    }
    w->out_id = req->request_id;
    if (id != NULL)
        *id = req->request_id;
    return 0;
}

int
parley__wire_send(parley__wire_t *w, int timeout_ms)
{
    if (w->out_id == 0)
        return PARLEY_EARG;
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        if (zmq_send(w->sock, w->out, w->out_len, ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EAGAIN)
            return -errno;
        /* With ZMQ_IMMEDIATE the socket is writable only once a daemon is
         * connected (and under its HWM); wait for that, up to the deadline,
         * unless the daemon has said it will not have us. */
        int rc = parley__wire_handshake(w);
        if (rc < 0)
            return rc;
        int left = s_left(deadline);
        if (left == 0)
            return PARLEY_ETIMEOUT;
        zmq_pollitem_t items[2] = {
            { .socket = w->sock, .events = ZMQ_POLLOUT },
            { .socket = w->monitor, .events = ZMQ_POLLIN },
        };
        if (zmq_poll(items, 2, left) < 0)
            return -errno;
    }
}

int
parley__wire_disconnected(parley__wire_t *w)
{
    parley__wire_handshake(w);
    int was = w->disconnected;
    w->disconnected = 0;
    return was;
}

int
parley__wire_send_bytes(parley__wire_t *w, const void *buf, size_t len)
{
    if (zmq_send(w->sock, buf, len, ZMQ_DONTWAIT) >= 0)
        return 0;
    if (errno != EAGAIN)
        return -errno;
    int rc = parley__wire_handshake(w);
    return rc < 0 ? rc : -EAGAIN;
}

/*
 * Read one whole message (all frames) and decode its last frame: the api
 * carries one frame per reply, and a proxy that adds an empty delimiter
 * frame in front does no harm.
 */
static int
s_read_reply(parley__wire_t *w, parley__reply_t *out)
{
    zmq_msg_t msg;
    int rc = 0, more;
    zmq_msg_init(&msg);
    do {
        if (zmq_msg_recv(&msg, w->sock, ZMQ_DONTWAIT) < 0) {
            rc = -errno;
            break;
        }
        more = zmq_msg_more(&msg);
        if (!more) {
            parley__arena_reset(&w->arena);
            rc = parley__reply_decode(zmq_msg_data(&msg), zmq_msg_size(&msg),
                                      out, &w->arena);
            if (rc == PARLEY_EMALFORMED)
                rc = PARLEY_EPROTO;
        }
    } while (more);
    zmq_msg_close(&msg);
    return rc;
}

int
parley__wire_recv(parley__wire_t *w, uint64_t id, int timeout_ms,
                  parley__reply_t *out)
{
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        int rc = s_read_reply(w, out);
        if (rc == 0) {
            if (id == 0 ? out->request_id != 0 : out->request_id == id)
                return 0;
            continue; /* a stale answer: drop it */
        }
        if (rc != -EAGAIN)
            return rc;
        /* A daemon that cut us off (its allow-list changed) refuses the
         * reconnection: say so instead of waiting for the timeout. */
        if ((rc = parley__wire_handshake(w)) < 0)
            return rc;
        int left = s_left(deadline);
        if (left == 0)
            return PARLEY_ETIMEOUT;
        zmq_pollitem_t items[2] = {
            { .socket = w->sock, .events = ZMQ_POLLIN },
            { .socket = w->monitor, .events = ZMQ_POLLIN },
        };
        if (zmq_poll(items, 2, left) < 0)
            return -errno;
    }
}

int
parley__wire_call(parley__wire_t *w, parley__request_t *req, int timeout_ms,
                  parley__reply_t *out)
{
    uint64_t id;
    int rc;
    if (timeout_ms == 0)
        timeout_ms = PARLEY__TIMEOUT_DEFAULT_MS;
    int64_t deadline = s_deadline(timeout_ms);
    if ((rc = parley__wire_prepare(w, req, &id)) < 0)
        return rc;
    if ((rc = parley__wire_send(w, timeout_ms)) < 0)
        return rc;
    if ((rc = parley__wire_recv(w, id, s_left(deadline), out)) < 0)
        return rc;
    if (out->type == PARLEY__REPLY_REJECT)
        return out->code;
    return 0;
}

/* --------------------------------------------------------- feed endpoint */

/*
 * Find the host of a "transport://host:port" endpoint: *host and *hlen
 * span it (brackets of an IPv6 literal included). Returns 0, or -1 when
 * the endpoint has no "://" or no ":port" after the host.
 */
static int
s_split_host(const char *ep, const char **host, size_t *hlen)
{
    const char *p = strstr(ep, "://");
    if (p == NULL)
        return -1;
    p += 3;
    const char *end;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        end = close + 1;
    } else {
        end = strrchr(p, ':');
        if (end == NULL)
            return -1;
    }
    *host = p;
    *hlen = (size_t)(end - p);
    return 0;
}

/* 1 if host (hlen bytes) names every interface rather than one address. */
static int
s_is_wildcard(const char *host, size_t hlen)
{
    static const char *const wild[] = { "", "*", "0.0.0.0", "[::]", "::",
                                        "[::0]", "[0:0:0:0:0:0:0:0]" };
    for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++)
        if (strlen(wild[i]) == hlen && memcmp(wild[i], host, hlen) == 0)
            return 1;
    return 0;
}

int
parley__feed_endpoint(const char *advertised, const char *api, char *out,
                      size_t cap)
{
    const char *fhost, *ahost;
    size_t flen, alen;
    if (advertised == NULL || *advertised == '\0')
        return PARLEY_EPROTO;
    if (strncmp(advertised, "tcp://", 6) == 0
        && s_split_host(advertised, &fhost, &flen) == 0
        && s_is_wildcard(fhost, flen) && api != NULL
        && strncmp(api, "tcp://", 6) == 0
        && s_split_host(api, &ahost, &alen) == 0
        && !s_is_wildcard(ahost, alen)) {
        /* transport and "://" from the advertised endpoint, then the api
         * host, then the advertised ":port" and anything after it. */
        size_t pre = (size_t)(fhost - advertised);
        size_t post = strlen(fhost + flen);
        if (pre + alen + post + 1 > cap)
            return -ENAMETOOLONG;
        memcpy(out, advertised, pre);
        memcpy(out + pre, ahost, alen);
        memcpy(out + pre + alen, fhost + flen, post + 1);
        return 0;
    }
    if (strlen(advertised) + 1 > cap)
        return -ENAMETOOLONG;
    strcpy(out, advertised);
    return 0;
}
