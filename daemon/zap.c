/*
 * zap.c - what an admitted connection may do: the checks on each
 * subscription to the feed (whole topics, the client's rights, the
 * per-connection cap), the rights the reads and the stats ask about, the
 * access classes the feed sockets are made for, and the reload of the
 * allow-list. Who gets in at all (the ZAP handler, connection numbers)
 * is zap_handler.c.
 */
#include "zap_int.h"

#include "facts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================= subscriptions */

/*
 * The client whose CURVE key is key (the X-Key property, Z85), in the
 * list in force, or NULL. Rights are looked up by key, never by the name
 * (User-Id): a reload may give that name to another key, and a request
 * read after it still carries the name its connection was admitted with.
 */
static const pd_client_t *
s_client(const pd_zap_t *self, const char *key)
{
    uint8_t raw[PD_CLIENTS_KEY_BYTES];
    if (key == NULL || strlen(key) != PARLEY_CURVE_KEY_CHARS
        || zmq_z85_decode(raw, key) == NULL)
        return NULL;
    return pd_clients_by_key(self->clients, raw);
}

/* Printable copy of a topic for a log line. */
static void
s_topic_str(const char *topic, size_t len, char *out, size_t cap)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] =
            (unsigned char)topic[i] >= ' ' && (unsigned char)topic[i] < 0x7f
                ? topic[i]
                : '?';
    out[n] = '\0';
}

/*
 * A whole topic of the feed: one an update goes out on (parley's names,
 * facts.h) or one of the daemon's own. A subscription to anything else
 * ("", "p", "party/") would match several topics of one update, and so
 * receive it once per topic.
 */
static bool
s_whole_topic(const char *topic, size_t len)
{
    static const char hb[] = PD_CLIENTS_HEARTBEAT_TOPIC;
    static const char stats[] = PD_CLIENTS_STATS_TOPIC;
    static const char cp[] = PD_CLIENTS_CHECKPOINT_TOPIC;
    return parley__topic_whole(topic, len)
           || (len == sizeof(hb) - 1 && memcmp(topic, hb, len) == 0)
           || (len == sizeof(stats) - 1 && memcmp(topic, stats, len) == 0)
           || (len == sizeof(cp) - 1 && memcmp(topic, cp, len) == 0);
}

/*
 * Why a subscription to topic (len bytes) is refused, or NULL to grant
 * it. c is the record of the connection it came from (NULL: not
 * tracked), key that connection's X-Key property, unsure whether it came
 * among other messages. A topic that is not whole is counted
 * subscriptions_partial and sets *partial.
 */
static const char *
s_refusal(pd_zap_t *self, const pd_zap_conn_t *c, const char *key,
          const char *topic, size_t len, bool unsure, bool *partial)
{
    if (len > PD_CLIENTS_PREFIX_MAX)
        return "longer than any topic";
    if (!s_whole_topic(topic, len)) {
        *partial = true;
        self->counters.subscriptions_partial++;
        return "not a whole topic (subscribe to all/ or to whole topics "
               "such as party/NAME/, so that an update comes once)";
    }
    if (unsure)
        return "arrived among non-subscription messages, so the connection "
               "it came from is not certain";
    if (c == NULL)
        return "connection not tracked (too old, or admitted before a cut)";
    if (self->curve
        && !pd_client_may_subscribe(s_client(self, key), topic, len))
        return "topic not allowed for this client";
    if (c->subscriptions >= self->max_subscriptions)
        return "over max_subscriptions";
    return NULL;
}

/* Log the refusal (why) of a subscription to topic that msg carried; c
 * is its connection's record, NULL if not tracked. */
static void
s_log_refusal(zmq_msg_t *msg, const pd_zap_conn_t *c, const char *topic,
              size_t len, const char *why, bool partial)
{
    const char *conn = zmq_msg_gets(msg, PD_ZAP__CONN_PROP);
    const char *user = zmq_msg_gets(msg, "User-Id");
    char shown[PARLEY_TOPIC_MAX];
    s_topic_str(topic, len, shown, sizeof(shown));
    /* Partial ones come from careless clients, the rest from clients
     * probing their limits: each kind gets its own line. */
    pd_log_limited(partial ? PD_LOG_KEY_ZAP_PARTIAL
                           : PD_LOG_KEY_ZAP_SUBSCRIBE,
                   PD_LOG_WARN,
                   "feed: refused subscription \"%s\"%s from connection %s "
                   "(%s%s%s): %s",
                   shown, len >= sizeof(shown) ? "..." : "",
                   conn != NULL ? conn : "?",
                   user != NULL && user[0] != '\0' ? user : "no user id",
                   c != NULL ? ", " : "", c != NULL ? c->addr : "", why);
}

bool
pd_zap_subscribe(pd_zap_t *self, zmq_msg_t *msg, const char *topic, size_t len,
                 bool unsure)
{
    const char *conn = zmq_msg_gets(msg, PD_ZAP__CONN_PROP);
    uint64_t id = conn != NULL ? strtoull(conn, NULL, 10) : 0;
    pd_zap_conn_t *c = id != 0 ? &self->conns[id % self->n_conns] : NULL;
    if (c != NULL && c->id != id)
        c = NULL; /* its slot went to a newer connection */
    bool partial = false;
    const char *why = s_refusal(self, c, zmq_msg_gets(msg, PD_ZAP_KEY_PROP),
                                topic, len, unsure, &partial);
    if (why == NULL) {
        c->subscriptions++;
        return true;
    }
    self->counters.subscriptions_denied++;
    s_log_refusal(msg, c, topic, len, why, partial);
    return false;
}

bool
pd_zap_reads_all(const pd_zap_t *self, const char *key)
{
    if (!self->curve)
        return true;
    const pd_client_t *c = s_client(self, key);
    return c != NULL && c->all_topics;
}

bool
pd_zap_may_read(const pd_zap_t *self, const char *key,
                const char topics[][PARLEY_TOPIC_MAX], size_t n)
{
    if (!self->curve)
        return true;
    return pd_client_may_read(s_client(self, key), topics, n);
}

bool
pd_zap_may_stats(const pd_zap_t *self, const char *key)
{
    if (!self->curve)
        return true;
    const pd_client_t *c = s_client(self, key);
    return c != NULL && c->stats;
}

int
pd_zap_class_of(const pd_zap_t *self, const char *key)
{
    if (!self->curve)
        return 0;
    const pd_client_t *c = s_client(self, key);
    return c != NULL ? (int)c->klass : -1;
}

size_t
pd_zap_classes(const pd_zap_t *self)
{
    return self->curve ? pd_clients_classes(self->clients) : 1;
}

uint64_t
pd_zap_generation(const pd_zap_t *self)
{
    return self->generation;
}

/* A client with the rights of class k, or NULL for class 0 (every topic,
 * stats) when nobody has it. */
static const pd_client_t *
s_member(const pd_zap_t *self, int k)
{
    return self->curve ? pd_clients_class_member(self->clients, (size_t)k)
                       : NULL;
}

bool
pd_zap_class_reads_all(const pd_zap_t *self, int k)
{
    if (k < 0 || (size_t)k >= pd_zap_classes(self))
        return false;
    const pd_client_t *c = s_member(self, k);
    return c == NULL ? k == 0 : c->all_topics;
}

bool
pd_zap_class_reads(const pd_zap_t *self, int k, const char *topic)
{
    if (pd_zap_class_reads_all(self, k))
        return true;
    const pd_client_t *c = k > 0 ? s_member(self, k) : NULL;
    return c != NULL && pd_client_may_subscribe(c, topic, strlen(topic));
}

bool
pd_zap_class_stats(const pd_zap_t *self, int k)
{
    if (k < 0 || (size_t)k >= pd_zap_classes(self))
        return false;
    const pd_client_t *c = s_member(self, k);
    return c == NULL ? k == 0 : c->stats;
}

/* ================================================================ reload */

int
pd_zap_reload_read(const pd_zap_t *self, pd_clients_t **out, char *errbuf,
                   size_t errlen)
{
    int rc = 0;
    *out = NULL;
    if (!self->curve)
        return 0;
    *out = pd_clients_load(self->clients_path, errbuf, errlen, &rc);
    return *out != NULL ? 0 : rc;
}

bool
pd_zap_reload_commit(pd_zap_t *self, pd_clients_t **fresh)
{
    if (!self->curve || *fresh == NULL)
        return false;
    bool cut = pd_clients_narrowed(self->clients, *fresh);
    if (!pd_clients_same_classes(self->clients, *fresh))
        self->generation++;
    pd_clients_destroy(&self->clients);
    self->clients = *fresh;
    *fresh = NULL;
    return cut;
}
