/*
 * feed.c - the XPUB side: deliveries per topic, heartbeats, subscriptions.
 */
#include "feed.h"

#include "codec.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

/*
 * Messages queued per subscriber before libzmq drops (the subscriber then
 * sees a seq jump and replays the gap through the api).
 */
#define S_SNDHWM 10000

/* Room for the Delivery fields around the SignedUpdate bytes. */
#define S_DELIVERY_OVERHEAD 64

struct pd_feed {
    void *sock;                 /* XPUB */
    char endpoint[256];         /* ZMQ_LAST_ENDPOINT, or advertised */
    uint64_t subscriptions;     /* topics with at least one subscriber */
    uint8_t *buf;               /* encoding buffer for one Delivery */
    size_t cap;                 /* bytes in buf */
};

pd_feed_t *
pd_feed_new(void *ctx, const char *endpoint, size_t max_delivery, int *err)
{
    pd_feed_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->cap = max_delivery + S_DELIVERY_OVERHEAD;
    self->buf = malloc(self->cap);
    self->sock = zmq_socket(ctx, ZMQ_XPUB);
    if (self->buf == NULL || self->sock == NULL) {
        *err = self->buf == NULL ? -ENOMEM : -zmq_errno();
        goto fail;
    }
    int zero = 0, hwm = S_SNDHWM;
    int ipv6 = strchr(endpoint, '[') != NULL;
    size_t len = sizeof(self->endpoint);
    /* Verbose off: only the first subscription to a topic and the last
     * unsubscription from it come up, which is what we count. */
    if (zmq_setsockopt(self->sock, ZMQ_XPUB_VERBOSE, &zero, sizeof(zero)) < 0
        || zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0
        || zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0
        || zmq_setsockopt(self->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0
        || zmq_bind(self->sock, endpoint) < 0
        || zmq_getsockopt(self->sock, ZMQ_LAST_ENDPOINT, self->endpoint, &len)
               < 0) {
        *err = -zmq_errno();
        goto fail;
    }
    *err = 0;
    return self;
fail:
    pd_feed_destroy(&self);
    return NULL;
}

void
pd_feed_destroy(pd_feed_t **feedp)
{
    if (feedp == NULL || *feedp == NULL)
        return;
    pd_feed_t *self = *feedp;
    if (self->sock != NULL) {
        int zero = 0;
        zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_close(self->sock);
    }
    free(self->buf);
    free(self);
    *feedp = NULL;
}

void *
pd_feed_socket(const pd_feed_t *self)
{
    return self->sock;
}

const char *
pd_feed_endpoint(const pd_feed_t *self)
{
    return self->endpoint;
}

/*
 * Split "tcp://HOST:PORT" into its host and port parts (pointers into ep,
 * lengths set). Returns false for other transports or shapes.
 */
static bool
s_tcp_split(const char *ep, const char **host, size_t *host_len,
            const char **port)
{
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *colon = strrchr(ep + 6, ':');
    if (colon == NULL || colon == ep + 6)
        return false;
    *host = ep + 6;
    *host_len = (size_t)(colon - *host);
    *port = colon + 1;
    return true;
}

static bool
s_wildcard(const char *host, size_t len)
{
    return (len == 7 && memcmp(host, "0.0.0.0", 7) == 0)
           || (len == 4 && memcmp(host, "[::]", 4) == 0)
           || (len == 1 && host[0] == '*');
}

void
pd_feed_advertise(pd_feed_t *self, const char *api_endpoint)
{
    const char *host, *port, *api_host, *api_port;
    size_t len, api_len;
    if (!s_tcp_split(self->endpoint, &host, &len, &port)
        || !s_wildcard(host, len))
        return;
    char name[256] = "";
    if (s_tcp_split(api_endpoint, &api_host, &api_len, &api_port)
        && !s_wildcard(api_host, api_len) && api_len < sizeof(name)) {
        memcpy(name, api_host, api_len);
        name[api_len] = '\0';
    } else if (gethostname(name, sizeof(name) - 1) < 0 || name[0] == '\0') {
        return;
    }
    char ep[sizeof(self->endpoint)];
    int n = snprintf(ep, sizeof(ep), "tcp://%s:%s", name, port);
    if (n > 0 && (size_t)n < sizeof(ep)) {
        pd_log(PD_LOG_INFO, "feed bound to a wildcard; advertising %s", ep);
        memcpy(self->endpoint, ep, (size_t)n + 1);
    }
}

uint64_t
pd_feed_subscriptions(const pd_feed_t *self)
{
    return self->subscriptions;
}

void
pd_feed_drain(pd_feed_t *self)
{
    uint8_t msg[PARLEY_TOPIC_MAX + 1];
    for (;;) {
        /* The topic is cut to the buffer; only the first byte matters. */
        int n = zmq_recv(self->sock, msg, sizeof(msg), ZMQ_DONTWAIT);
        if (n < 0)
            break;
        if (n == 0)
            continue;
        if (msg[0] == 1) {
            self->subscriptions++;
            pd_log(PD_LOG_DEBUG, "feed: subscribe '%.*s'",
                   n - 1 < PARLEY_TOPIC_MAX ? n - 1 : PARLEY_TOPIC_MAX,
                   (const char *)msg + 1);
        } else if (msg[0] == 0 && self->subscriptions > 0) {
            self->subscriptions--;
        }
    }
}

/* Send one [topic][body] pair; body is shared, not copied. */
static int
s_send_pair(void *sock, const char *topic, zmq_msg_t *body)
{
    zmq_msg_t part;
    if (zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE) < 0)
        return -zmq_errno();
    /* zmq_msg_copy shares the buffer of a large message (refcount). */
    zmq_msg_init(&part);
    if (zmq_msg_copy(&part, body) < 0 || zmq_msg_send(&part, sock, 0) < 0) {
        int rc = -zmq_errno();
        zmq_msg_close(&part);
        return rc;
    }
    return 0;
}

/* Encode into self->buf, then send it on each topic. */
static int
s_publish(pd_feed_t *self, size_t len, const char topics[][PARLEY_TOPIC_MAX],
          size_t n)
{
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, len) < 0)
        return -zmq_errno();
    memcpy(zmq_msg_data(&body), self->buf, len);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s_send_pair(self->sock, topics[i], &body);
    zmq_msg_close(&body);
    return rc;
}

int
pd_feed_publish(pd_feed_t *self, uint64_t seq, int64_t received_at,
                const void *env, size_t len,
                const char topics[][PARLEY_TOPIC_MAX], size_t n)
{
    size_t out;
    int rc = parley__delivery_encode(seq, received_at, env, len, self->buf,
                                     self->cap, &out);
    if (rc < 0)
        return rc;
    return s_publish(self, out, topics, n);
}

int
pd_feed_heartbeat(pd_feed_t *self, const uint8_t daemon_id[16], uint64_t seq,
                  uint64_t first_seq, int64_t now_ms)
{
    static const char topic[1][PARLEY_TOPIC_MAX] = { PD_FEED_HEARTBEAT_TOPIC };
    parley__heartbeat_t hb = { .seq = seq, .time_ms = now_ms,
                               .first_seq = first_seq };
    memcpy(hb.daemon_id, daemon_id, sizeof(hb.daemon_id));
    size_t out;
    int rc = parley__heartbeat_encode(&hb, self->buf, self->cap, &out);
    if (rc < 0)
        return rc;
    return s_publish(self, out, topic, 1);
}
