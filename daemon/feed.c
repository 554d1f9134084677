/*
 * feed.c - the XPUB side: deliveries per topic, heartbeats, subscriptions.
 *
 * Manual mode and its catch: libzmq applies ZMQ_SUBSCRIBE to the
 * connection of the last subscription message read, which it tracks in a
 * queue that only subscription messages fill but every read empties. A
 * peer that sends anything else upstream (possible with a raw ZMTP
 * client) shifts that queue, and a grant could land on another
 * connection. So after any non-subscription message nothing is granted
 * (or removed) until the queue has been read empty, which puts both
 * queues back in step; the subscriptions refused meanwhile are counted,
 * and a reliable subscriber still gets every update through the api's
 * replay.
 */
#include "feed.h"

#include "codec.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/*
 * Messages queued per subscriber before libzmq drops (the subscriber then
 * sees a seq jump and replays the gap through the api).
 */
#define S_SNDHWM 10000

/* Room for the Delivery fields around the SignedUpdate bytes. */
#define S_DELIVERY_OVERHEAD 64
/* Subscription messages handled per pd_feed_drain() call. */
#define S_DRAIN_MAX 4096
/* Distinct granted topics tracked for the subscriptions count. */
#define S_TOPICS_MAX 4096
/* How long a cut waits for libzmq to release the port. */
#define S_REBIND_MS 5000

/* A granted topic and how many grants it holds. */
typedef struct {
    uint32_t count;
    uint8_t len;
    char topic[PD_CLIENTS_PREFIX_MAX];
} s_topic_t;

struct pd_feed {
    void *sock;                 /* XPUB */
    pd_zap_t *zap;              /* borrowed: decides on subscriptions */
    char bound[256];            /* ZMQ_LAST_ENDPOINT: what to rebind */
    char endpoint[256];         /* ZMQ_LAST_ENDPOINT, or advertised */
    uint64_t subscriptions;     /* topics with at least one subscriber */
    bool unsure;                /* a non-subscription message was read */
    uint8_t *buf;               /* encoding buffer for one Delivery */
    size_t cap;                 /* bytes in buf */
    s_topic_t *topics;          /* S_TOPICS_MAX granted topics */
    size_t n_topics;
};

pd_feed_t *
pd_feed_new(void *ctx, const char *endpoint, size_t max_delivery,
            pd_zap_t *zap, int *err)
{
    pd_feed_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->zap = zap;
    self->cap = max_delivery + S_DELIVERY_OVERHEAD;
    self->buf = malloc(self->cap);
    self->topics = calloc(S_TOPICS_MAX, sizeof(*self->topics));
    self->sock = zmq_socket(ctx, ZMQ_XPUB);
    if (self->buf == NULL || self->topics == NULL || self->sock == NULL) {
        *err = self->sock == NULL ? -zmq_errno() : -ENOMEM;
        goto fail;
    }
    int zero = 0, one = 1, hwm = S_SNDHWM;
    int64_t maxmsg = PD_FEED_SUBSCRIBE_MAX;
    int ipv6 = strchr(endpoint, '[') != NULL;
    size_t len = sizeof(self->endpoint);
    /* Manual: nothing is subscribed until pd_feed_drain() says so. */
    if (zmq_setsockopt(self->sock, ZMQ_XPUB_MANUAL, &one, sizeof(one)) < 0
        || zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0
        || zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg))
               < 0
        || zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0
        || zmq_setsockopt(self->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0) {
        *err = -zmq_errno();
        goto fail;
    }
    if ((*err = pd_zap_secure(zap, self->sock, "feed")) < 0)
        goto fail;
    if (zmq_bind(self->sock, endpoint) < 0
        || zmq_getsockopt(self->sock, ZMQ_LAST_ENDPOINT, self->endpoint, &len)
               < 0) {
        *err = -zmq_errno();
        goto fail;
    }
    memcpy(self->bound, self->endpoint, sizeof(self->bound));
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
    if (self->sock != NULL)
        zmq_close(self->sock); /* ZMQ_LINGER 0, unless the server set it */
    free(self->buf);
    free(self->topics);
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

static uint64_t
s_subscriptions(const void *ctx)
{
    return pd_feed_subscriptions(ctx);
}

void
pd_feed_stats_register(const pd_feed_t *self, pd_stats_t *st)
{
    pd_stats_getter(st, PD_STAT_SUBSCRIPTIONS, s_subscriptions, self);
}

/* The tracked entry of a granted topic, or NULL. */
static s_topic_t *
s_topic_find(pd_feed_t *self, const char *topic, size_t len)
{
    for (size_t i = 0; i < self->n_topics; i++)
        if (self->topics[i].len == len
            && memcmp(self->topics[i].topic, topic, len) == 0)
            return &self->topics[i];
    return NULL;
}

static void
s_topic_granted(pd_feed_t *self, const char *topic, size_t len)
{
    s_topic_t *t = s_topic_find(self, topic, len);
    if (t == NULL) {
        if (self->n_topics == S_TOPICS_MAX || len > PD_CLIENTS_PREFIX_MAX)
            return; /* not tracked: the count stays low */
        t = &self->topics[self->n_topics++];
        t->count = 0;
        t->len = (uint8_t)len;
        memcpy(t->topic, topic, len);
    }
    if (t->count++ == 0)
        self->subscriptions++;
}

static void
s_topic_dropped(pd_feed_t *self, const char *topic, size_t len)
{
    s_topic_t *t = s_topic_find(self, topic, len);
    if (t == NULL || t->count == 0)
        return;
    if (--t->count == 0) {
        self->subscriptions--;
        *t = self->topics[--self->n_topics]; /* keep the array dense */
    }
}

void
pd_feed_drain(pd_feed_t *self)
{
    for (int i = 0; i < S_DRAIN_MAX; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            /* Both of libzmq's queues are empty now: back in step. */
            self->unsure = false;
            return;
        }
        const char *data = zmq_msg_data(&msg);
        size_t n = zmq_msg_size(&msg);
        if (n == 0 || (data[0] != 0 && data[0] != 1) || zmq_msg_more(&msg)) {
            if (!self->unsure)
                pd_log_limited(PD_LOG_KEY_FEED_PEER, PD_LOG_WARN,
                               "feed: a peer (connection %s) sent a message "
                               "that is not a subscription; granting nothing "
                               "until the queue is read",
                               zmq_msg_gets(&msg, "X-Conn") != NULL
                                   ? zmq_msg_gets(&msg, "X-Conn")
                                   : "?");
            self->unsure = true;
        } else if (data[0] == 1) {
            if (pd_zap_subscribe(self->zap, &msg, data + 1, n - 1,
                                 self->unsure)
                && zmq_setsockopt(self->sock, ZMQ_SUBSCRIBE, data + 1, n - 1)
                       == 0) {
                s_topic_granted(self, data + 1, n - 1);
                pd_log(PD_LOG_DEBUG, "feed: subscribe '%.*s'",
                       n - 1 < PARLEY_TOPIC_MAX ? (int)n - 1
                                                : PARLEY_TOPIC_MAX,
                       data + 1);
            }
        } else if (!self->unsure) {
            /* From a closing connection these come without a connection
             * (libzmq then applies the unsubscribe to nobody); either way
             * only a granted topic is really removed. */
            zmq_setsockopt(self->sock, ZMQ_UNSUBSCRIBE, data + 1, n - 1);
            s_topic_dropped(self, data + 1, n - 1);
        }
        zmq_msg_close(&msg);
    }
}

int
pd_feed_cut(pd_feed_t *self)
{
    int rc = zmq_unbind(self->sock, self->bound);
    if (rc < 0)
        return -zmq_errno();
    /* The unbind finishes in libzmq's I/O thread; until then the port is
     * still taken. */
    struct timespec pause = { 0, 5 * 1000 * 1000 };
    for (int waited = 0; waited < S_REBIND_MS; waited += 5) {
        if (zmq_bind(self->sock, self->bound) == 0) {
            pd_zap_connections_cut(self->zap, self->sock);
            self->subscriptions = 0;
            self->n_topics = 0;
            return 0;
        }
        if (zmq_errno() != EADDRINUSE)
            break;
        nanosleep(&pause, NULL);
    }
    return -zmq_errno();
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
pd_feed_stats(pd_feed_t *self, const parley__stat_t *stats, size_t n)
{
    static const char topic[1][PARLEY_TOPIC_MAX] = { PD_FEED_STATS_TOPIC };
    parley__reply_t r = { .type = PARLEY__REPLY_STATS, .stats = stats,
                          .n_stats = n };
    size_t out;
    int rc = parley__reply_encode(&r, self->buf, self->cap, &out);
    if (rc < 0)
        return rc;
    return s_publish(self, out, topic, 1);
}

int
pd_feed_heartbeat(pd_feed_t *self, const parley__heartbeat_t *hb)
{
    static const char topic[1][PARLEY_TOPIC_MAX] = { PD_FEED_HEARTBEAT_TOPIC };
    size_t out;
    int rc = parley__heartbeat_encode(hb, self->buf, self->cap, &out);
    if (rc < 0)
        return rc;
    return s_publish(self, out, topic, 1);
}
