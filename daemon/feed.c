/*
 * feed.c - the XPUB side: deliveries per topic, heartbeats, subscriptions,
 * one socket per access class.
 *
 * Manual mode and its catches. libzmq (xpub.cpp) queues each
 * subscription message it reads from a connection's pipe together with a
 * raw pointer to that pipe (_pending_pipes); zmq_msg_recv() of the
 * message sets _last_pipe to that pointer, and ZMQ_SUBSCRIBE adds the
 * topic for whatever pipe _last_pipe points to at that moment.
 *
 *   1. A peer that sends anything else upstream (a raw ZMTP client)
 *      shifts the data queue against the pipe queue, and a grant could
 *      land on another connection. So after any non-subscription message
 *      nothing is granted (or removed) until the queue has been read
 *      empty, which puts both queues back in step.
 *   2. A pipe that closed after its subscription was queued and before
 *      it is read leaves a pointer to freed memory: libzmq 4.3.4 adds the
 *      grant for it as it is (later versions check that the pipe is
 *      still known, which a new pipe made in the same memory passes). A
 *      connection made in that memory, at once or much later, then
 *      receives the topic. Nothing libzmq offers says, at the moment of
 *      the grant, whether the pipe is still the one that asked. So the
 *      feed is built so that it does not matter: connections with other
 *      rights than the one checked never share its socket. Each access
 *      class has its own socket (feed.h), the ZAP handler admits only
 *      the class's clients to it, and it carries only the topics the
 *      class may read; a misplaced grant reaches, at worst, a client
 *      allowed the same topics (beyond its max_subscriptions). A cut
 *      (reload) replaces a socket rather than unbinding it, so that the
 *      queued subscriptions and stale pointers go with it. The stale
 *      pointer is also read through, at each delivery on its topic: that
 *      read killed parleyd once glibc had given the freed pipe's memory
 *      back by lowering the program break, so parleyd's heap is never
 *      shrunk (heap.h).
 *
 * The subscriptions refused meanwhile are counted, and a reliable
 * subscriber still gets every update through the api's replay.
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

/* One XPUB: the main one (class 0) or the one of an access class. */
typedef struct {
    void *sock;                 /* XPUB, NULL when not open */
    int klass;                  /* the access class it serves */
    char bound[256];            /* ZMQ_LAST_ENDPOINT: what to rebind */
    char endpoint[256];         /* ZMQ_LAST_ENDPOINT, or advertised */
    uint64_t subscriptions;     /* topics with at least one subscriber */
    bool unsure;                /* a non-subscription message was read */
    s_topic_t *topics;          /* S_TOPICS_MAX granted topics */
    size_t n_topics;
} s_out_t;

struct pd_feed {
    void *ctx;                  /* borrowed: makes class sockets */
    pd_zap_t *zap;              /* borrowed: decides on subscriptions */
    char api[256];              /* api endpoint advertised hosts follow */
    uint64_t generation;        /* pd_zap_generation() of the classes */
    uint8_t *buf;               /* encoding buffer for one Delivery */
    size_t cap;                 /* bytes in buf */
    s_out_t outs[PD_CLIENTS_CLASSES_MAX]; /* [k]: class k; [0] the main */
    size_t n_outs;
};

/* ============================================================== sockets */

static void s_advertise(s_out_t *out, const char *api_endpoint);

/*
 * Make out's XPUB for class klass, secured for that class, bound to
 * endpoint. 0 or -errno (out is then closed).
 */
static int
s_out_open(pd_feed_t *self, s_out_t *out, const char *endpoint, int klass)
{
    memset(out, 0, sizeof(*out));
    out->klass = klass;
    out->topics = calloc(S_TOPICS_MAX, sizeof(*out->topics));
    out->sock = zmq_socket(self->ctx, ZMQ_XPUB);
    if (out->topics == NULL || out->sock == NULL) {
        int rc = out->sock == NULL ? -zmq_errno() : -ENOMEM;
        if (out->sock != NULL)
            zmq_close(out->sock);
        free(out->topics);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    int zero = 0, one = 1, hwm = S_SNDHWM;
    int64_t maxmsg = PD_FEED_SUBSCRIBE_MAX;
    int ipv6 = strchr(endpoint, '[') != NULL;
    size_t len = sizeof(out->endpoint);
    char name[16];
    snprintf(name, sizeof(name), klass == 0 ? "feed" : "feed-%d", klass);
    int rc = 0;
    /* Manual: nothing is subscribed until pd_feed_drain() says so. */
    if (zmq_setsockopt(out->sock, ZMQ_XPUB_MANUAL, &one, sizeof(one)) < 0
        || zmq_setsockopt(out->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0
        || zmq_setsockopt(out->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg))
               < 0
        || zmq_setsockopt(out->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0
        || zmq_setsockopt(out->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0)
        rc = -zmq_errno();
    else
        rc = pd_zap_secure(self->zap, out->sock, name, klass);
    if (rc == 0 && zmq_bind(out->sock, endpoint) < 0)
        rc = -zmq_errno();
    if (rc == 0
        && zmq_getsockopt(out->sock, ZMQ_LAST_ENDPOINT, out->endpoint, &len)
               < 0)
        rc = -zmq_errno();
    if (rc < 0) {
        pd_zap_release(self->zap, out->sock);
        zmq_close(out->sock);
        free(out->topics);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    memcpy(out->bound, out->endpoint, sizeof(out->bound));
    if (self->api[0] != '\0')
        s_advertise(out, self->api);
    return 0;
}

/* Stop watching and close out's XPUB (linger as set). */
static void
s_out_close(pd_feed_t *self, s_out_t *out)
{
    if (out->sock != NULL) {
        pd_zap_release(self->zap, out->sock);
        zmq_close(out->sock);
    }
    free(out->topics);
    memset(out, 0, sizeof(*out));
}

/*
 * Where class k's socket binds: the main socket's transport and host
 * with a port the system chooses (tcp), or its path with ".class-K"
 * (ipc). The ping reply tells each client its class's endpoint.
 * 0, or -EPROTONOSUPPORT for another transport.
 */
static int
s_class_endpoint(const pd_feed_t *self, int k, char *out, size_t cap)
{
    const char *main_ep = self->outs[0].bound;
    const char *colon = strrchr(main_ep, ':');
    if (strncmp(main_ep, "tcp://", 6) == 0 && colon != NULL
        && colon > main_ep + 6) {
        int n = snprintf(out, cap, "%.*s:0", (int)(colon - main_ep), main_ep);
        return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
    }
    if (strncmp(main_ep, "ipc://", 6) == 0) {
        int n = snprintf(out, cap, "%s.class-%d", main_ep, k);
        return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
    }
    return -EPROTONOSUPPORT;
}

/*
 * Give every access class but 0 a socket of its own, made again when
 * the classes changed (a reload): a grant that libzmq applies to another
 * connection than the one that asked (see the top of this file) then
 * stays among clients with the same rights. 0, or the first error
 * (logged); the classes whose socket failed have no feed.
 */
static int
s_sync_classes(pd_feed_t *self, bool force)
{
    size_t want = pd_zap_classes(self->zap);
    uint64_t gen = pd_zap_generation(self->zap);
    if (!force && gen == self->generation && want == self->n_outs)
        return 0;
    for (size_t k = self->n_outs; k-- > 1;)
        s_out_close(self, &self->outs[k]);
    self->n_outs = 1;
    self->generation = gen;
    int first = 0;
    for (size_t k = 1; k < want && k < PD_CLIENTS_CLASSES_MAX; k++) {
        char ep[PD_CONFIG_ENDPOINT_MAX];
        int rc = s_class_endpoint(self, (int)k, ep, sizeof(ep));
        if (rc == 0)
            rc = s_out_open(self, &self->outs[k], ep, (int)k);
        if (rc < 0) {
            pd_log(PD_LOG_ERROR,
                   "feed: no socket for access class %zu (%s): %s; its "
                   "clients get no feed (classes need a tcp:// or ipc:// "
                   "feed endpoint)",
                   k, self->outs[0].bound, zmq_strerror(-rc));
            if (first == 0)
                first = rc;
        } else {
            pd_log(PD_LOG_INFO, "feed: access class %zu at %s", k,
                   self->outs[k].endpoint);
        }
        self->n_outs = k + 1;
    }
    return first;
}

pd_feed_t *
pd_feed_new(void *ctx, const char *endpoint, size_t max_delivery,
            pd_zap_t *zap, int *err)
{
    pd_feed_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->ctx = ctx;
    self->zap = zap;
    self->cap = max_delivery + S_DELIVERY_OVERHEAD;
    self->buf = malloc(self->cap);
    if (self->buf == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    if ((*err = s_out_open(self, &self->outs[0], endpoint, 0)) < 0)
        goto fail;
    self->n_outs = 1;
    self->generation = pd_zap_generation(zap);
    s_sync_classes(self, true); /* logged; the main feed serves on */
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
    for (size_t k = self->n_outs; k-- > 0;)
        s_out_close(self, &self->outs[k]); /* ZMQ_LINGER 0, or the server's */
    free(self->buf);
    free(self);
    *feedp = NULL;
}

int
pd_feed_sync(pd_feed_t *self)
{
    return s_sync_classes(self, false);
}

size_t
pd_feed_items(const pd_feed_t *self, zmq_pollitem_t *items)
{
    size_t n = 0;
    for (size_t k = 0; k < self->n_outs; k++)
        if (self->outs[k].sock != NULL)
            items[n++] =
                (zmq_pollitem_t){ self->outs[k].sock, 0, ZMQ_POLLIN, 0 };
    return n;
}

void
pd_feed_set_linger(pd_feed_t *self, int ms)
{
    for (size_t k = 0; k < self->n_outs; k++)
        if (self->outs[k].sock != NULL)
            zmq_setsockopt(self->outs[k].sock, ZMQ_LINGER, &ms, sizeof(ms));
}

const char *
pd_feed_endpoint(const pd_feed_t *self)
{
    return self->outs[0].endpoint;
}

const char *
pd_feed_endpoint_of(const pd_feed_t *self, int klass)
{
    if (klass > 0 && (size_t)klass < self->n_outs
        && self->outs[klass].sock != NULL)
        return self->outs[klass].endpoint;
    return self->outs[0].endpoint;
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

/* If out is bound to a wildcard tcp address, advertise a reachable one. */
static void
s_advertise(s_out_t *out, const char *api_endpoint)
{
    const char *host, *port, *api_host, *api_port;
    size_t len, api_len;
    if (!s_tcp_split(out->endpoint, &host, &len, &port)
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
    char ep[sizeof(out->endpoint)];
    int n = snprintf(ep, sizeof(ep), "tcp://%s:%s", name, port);
    if (n > 0 && (size_t)n < sizeof(ep)) {
        pd_log(PD_LOG_INFO, "feed bound to a wildcard; advertising %s", ep);
        memcpy(out->endpoint, ep, (size_t)n + 1);
    }
}

void
pd_feed_advertise(pd_feed_t *self, const char *api_endpoint)
{
    snprintf(self->api, sizeof(self->api), "%s", api_endpoint);
    for (size_t k = 0; k < self->n_outs; k++)
        if (self->outs[k].sock != NULL)
            s_advertise(&self->outs[k], api_endpoint);
}

uint64_t
pd_feed_subscriptions(const pd_feed_t *self)
{
    uint64_t n = 0;
    for (size_t k = 0; k < self->n_outs; k++)
        n += self->outs[k].subscriptions;
    return n;
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

/* ======================================================= subscriptions */

/* The tracked entry of a granted topic, or NULL. */
static s_topic_t *
s_topic_find(s_out_t *out, const char *topic, size_t len)
{
    for (size_t i = 0; i < out->n_topics; i++)
        if (out->topics[i].len == len
            && memcmp(out->topics[i].topic, topic, len) == 0)
            return &out->topics[i];
    return NULL;
}

static void
s_topic_granted(s_out_t *out, const char *topic, size_t len)
{
    s_topic_t *t = s_topic_find(out, topic, len);
    if (t == NULL) {
        if (out->n_topics == S_TOPICS_MAX || len > PD_CLIENTS_PREFIX_MAX)
            return; /* not tracked: the count stays low */
        t = &out->topics[out->n_topics++];
        t->count = 0;
        t->len = (uint8_t)len;
        memcpy(t->topic, topic, len);
    }
    if (t->count++ == 0)
        out->subscriptions++;
}

static void
s_topic_dropped(s_out_t *out, const char *topic, size_t len)
{
    s_topic_t *t = s_topic_find(out, topic, len);
    if (t == NULL || t->count == 0)
        return;
    if (--t->count == 0) {
        out->subscriptions--;
        *t = out->topics[--out->n_topics]; /* keep the array dense */
    }
}

/* Read one socket's subscription messages, at most max. */
static void
s_drain_out(pd_feed_t *self, s_out_t *out, int max)
{
    for (int i = 0; i < max; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, out->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            /* Both of libzmq's queues are empty now: back in step. */
            out->unsure = false;
            return;
        }
        const char *data = zmq_msg_data(&msg);
        size_t n = zmq_msg_size(&msg);
        if (n == 0 || (data[0] != 0 && data[0] != 1) || zmq_msg_more(&msg)) {
            if (!out->unsure)
                pd_log_limited(PD_LOG_KEY_FEED_PEER, PD_LOG_WARN,
                               "feed: a peer (connection %s) sent a message "
                               "that is not a subscription; granting nothing "
                               "until the queue is read",
                               zmq_msg_gets(&msg, "X-Conn") != NULL
                                   ? zmq_msg_gets(&msg, "X-Conn")
                                   : "?");
            out->unsure = true;
        } else if (data[0] == 1) {
            if (pd_zap_subscribe(self->zap, &msg, data + 1, n - 1,
                                 out->unsure)
                && zmq_setsockopt(out->sock, ZMQ_SUBSCRIBE, data + 1, n - 1)
                       == 0) {
                s_topic_granted(out, data + 1, n - 1);
                pd_log(PD_LOG_DEBUG, "feed: subscribe '%.*s'",
                       n - 1 < PARLEY_TOPIC_MAX ? (int)n - 1
                                                : PARLEY_TOPIC_MAX,
                       data + 1);
            }
        } else if (!out->unsure) {
            /* From a closing connection these come without a connection
             * (libzmq then applies the unsubscribe to nobody); either way
             * only a granted topic is really removed. */
            zmq_setsockopt(out->sock, ZMQ_UNSUBSCRIBE, data + 1, n - 1);
            s_topic_dropped(out, data + 1, n - 1);
        }
        zmq_msg_close(&msg);
    }
}

void
pd_feed_drain(pd_feed_t *self)
{
    for (size_t k = 0; k < self->n_outs; k++)
        if (self->outs[k].sock != NULL)
            s_drain_out(self, &self->outs[k], S_DRAIN_MAX);
}

int
pd_feed_cut(pd_feed_t *self)
{
    /*
     * A new socket, not the old one unbound: libzmq keeps the
     * subscriptions the old one queued and the connections it granted
     * them to (freed ones too), which must not meet a client of the new
     * allow-list.
     */
    s_out_t *main_out = &self->outs[0];
    char ep[sizeof(main_out->bound)];
    memcpy(ep, main_out->bound, sizeof(ep));
    s_out_close(self, main_out);
    /* The close finishes in libzmq's I/O thread; until then the port is
     * still taken. */
    struct timespec pause = { 0, 5 * 1000 * 1000 };
    int rc = -EADDRINUSE;
    for (int waited = 0; waited < S_REBIND_MS && rc == -EADDRINUSE;
         waited += 5) {
        rc = s_out_open(self, main_out, ep, 0);
        if (rc == -EADDRINUSE)
            nanosleep(&pause, NULL);
    }
    if (rc < 0)
        return rc;
    pd_zap_connections_cut(self->zap, main_out->sock);
    s_sync_classes(self, true);
    return 0;
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

/* Send self->buf (len bytes) on each topic of the list that out's class
 * may read: the class's socket never carries anything else. */
static int
s_publish(pd_feed_t *self, size_t len, const char topics[][PARLEY_TOPIC_MAX],
          size_t n)
{
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, len) < 0)
        return -zmq_errno();
    memcpy(zmq_msg_data(&body), self->buf, len);
    int rc = 0;
    for (size_t k = 0; k < self->n_outs; k++) {
        s_out_t *out = &self->outs[k];
        if (out->sock == NULL)
            continue;
        bool all = pd_zap_class_reads_all(self->zap, out->klass);
        for (size_t i = 0; i < n && rc == 0; i++)
            if (all || pd_zap_class_reads(self->zap, out->klass, topics[i]))
                rc = s_send_pair(out->sock, topics[i], &body);
    }
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
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, out) < 0)
        return -zmq_errno();
    memcpy(zmq_msg_data(&body), self->buf, out);
    for (size_t k = 0; k < self->n_outs && rc == 0; k++)
        if (self->outs[k].sock != NULL
            && pd_zap_class_stats(self->zap, self->outs[k].klass))
            rc = s_send_pair(self->outs[k].sock, topic[0], &body);
    zmq_msg_close(&body);
    return rc;
}

int
pd_feed_checkpoint(pd_feed_t *self, const char *note, size_t len)
{
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, len) < 0)
        return -zmq_errno();
    memcpy(zmq_msg_data(&body), note, len);
    int rc = 0;
    for (size_t k = 0; k < self->n_outs && rc == 0; k++)
        if (self->outs[k].sock != NULL
            && pd_zap_class_stats(self->zap, self->outs[k].klass))
            rc = s_send_pair(self->outs[k].sock, PD_FEED_CHECKPOINT_TOPIC, &body);
    zmq_msg_close(&body);
    return rc;
}

int
pd_feed_heartbeat(pd_feed_t *self, const parley__heartbeat_t *tmpl,
                  pd_feed_view_fn view, void *view_ctx)
{
    parley__heartbeat_t hb = *tmpl;
    int first = 0;
    for (size_t k = 0; k < self->n_outs; k++) {
        s_out_t *out = &self->outs[k];
        if (out->sock == NULL)
            continue;
        /* What this class may know of the log's head (query.h). */
        hb.seq = view(view_ctx, out->klass);
        size_t len;
        int rc = parley__heartbeat_encode(&hb, self->buf, self->cap, &len);
        zmq_msg_t body;
        if (rc == 0 && zmq_msg_init_size(&body, len) < 0)
            rc = -zmq_errno();
        if (rc == 0) {
            memcpy(zmq_msg_data(&body), self->buf, len);
            rc = s_send_pair(out->sock, PD_FEED_HEARTBEAT_TOPIC, &body);
            zmq_msg_close(&body);
        }
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}
