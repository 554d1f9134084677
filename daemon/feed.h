/*
 * feed.h - parleyd's feed: XPUB sockets that carry [topic][Delivery] for
 * every accepted update and, on a timer, [sys/heartbeat/][Heartbeat],
 * [sys/checkpoint/][signed checkpoint] and [sys/stats/][stats].
 *
 * The XPUB sockets run in manual mode: libzmq passes every subscription
 * up and subscribes nobody by itself; the feed asks the ZAP handler
 * (zap.h) whether the connection may have it (a whole topic, the topic
 * ACL, the cap per connection) and only then subscribes it, so that a
 * client limited to "party/egypt/" that subscribes to "all/" gets
 * nothing.
 *
 * One socket per access class (clients.h). libzmq applies a grant to the
 * connection whose subscription it read last, which it remembers by a
 * pointer that can name a connection that has closed since, or a new one
 * made in its memory (see feed.c): a grant can land on another
 * connection than the one it was checked for. So connections with
 * different rights never share a socket: the main socket (the configured
 * endpoint) serves class 0, everyone with curve off and every client
 * that may read every topic and the counters; each other class gets a
 * socket of its own, on a port the system picks (ping names it to the
 * class's clients), and carries only the topics the class may read.
 */
#ifndef PD_FEED_H
#define PD_FEED_H

#include "codec.h"
#include "parley.h"
#include "stats.h"
#include "zap.h"

#include <stddef.h>
#include <stdint.h>

#define PD_FEED_HEARTBEAT_TOPIC PD_CLIENTS_HEARTBEAT_TOPIC
#define PD_FEED_STATS_TOPIC PD_CLIENTS_STATS_TOPIC
#define PD_FEED_CHECKPOINT_TOPIC PD_CLIENTS_CHECKPOINT_TOPIC

typedef struct pd_feed pd_feed_t;

/* Largest subscription message read; a longer one drops the peer. */
#define PD_FEED_SUBSCRIBE_MAX 512

/*
 * Make the XPUB socket in ctx, secure it with zap and bind it to
 * endpoint. max_delivery is the largest Delivery that will be published
 * (sizes a buffer).
 *
 * Returns:   the feed, or NULL with *err set (-errno from libzmq).
 * Ownership: the caller's; close with pd_feed_destroy() before the
 *            context is terminated. zap is borrowed and must outlive it.
 */
pd_feed_t *pd_feed_new(void *ctx, const char *endpoint, size_t max_delivery,
                       pd_zap_t *zap, int *err);

/*
 * Close every subscriber connection (unbind and bind the same endpoint
 * again), so that each must pass the ZAP handler anew: used when the
 * allow-list lost a client. Subscribers reconnect by themselves.
 *
 * Returns:   0 or -errno (the feed is then not bound: fatal).
 */
int pd_feed_cut(pd_feed_t *feed);

/* Close the socket (linger 0) and free the feed; *feed becomes NULL. */
void pd_feed_destroy(pd_feed_t **feed);

/*
 * After a reload: when the access classes changed (pd_zap_generation()),
 * close the class sockets and make them again for the new classes (their
 * clients reconnect through a ping).
 *
 * Returns:   0, or the error of a class socket that could not be made
 *            (logged; its clients get no feed until the next reload).
 */
int pd_feed_sync(pd_feed_t *feed);

/* Fill items with the feed's sockets to poll for subscriptions; returns
 * how many (at most PD_CLIENTS_CLASSES_MAX). */
size_t pd_feed_items(const pd_feed_t *feed, zmq_pollitem_t *items);

/* Set ZMQ_LINGER on every feed socket (a clean stop). */
void pd_feed_set_linger(pd_feed_t *feed, int ms);

/*
 * The endpoint clients should connect to: the one actually bound
 * (ZMQ_LAST_ENDPOINT, with the real port for ":0"), or the address set by
 * pd_feed_advertise() when the feed is bound to a wildcard.
 */
const char *pd_feed_endpoint(const pd_feed_t *feed);

/* The endpoint of access class klass's socket (pd_zap_class_of()); the
 * main one for class 0, or for a class without a socket. */
const char *pd_feed_endpoint_of(const pd_feed_t *feed, int klass);

/*
 * If a feed socket is bound to a wildcard tcp address (0.0.0.0, [::],
 * *), advertise a reachable one instead: the host of api_endpoint when
 * that is not a wildcard, else this machine's hostname. Class sockets
 * made later follow it too.
 */
void pd_feed_advertise(pd_feed_t *feed, const char *api_endpoint);

/*
 * Read pending subscription messages of every socket without blocking and
 * grant or refuse each (a bounded number per call, so the api is not
 * starved).
 */
void pd_feed_drain(pd_feed_t *feed);

/*
 * Topics currently granted to at least one subscriber, summed over the
 * sockets. libzmq does not say which connection a closing connection's
 * unsubscriptions belong to, so a refused topic that another connection
 * holds can make this count low until that topic is granted again.
 */
uint64_t pd_feed_subscriptions(const pd_feed_t *feed);

/* Report subscriptions in st. */
void pd_feed_stats_register(const pd_feed_t *feed, pd_stats_t *st);

/*
 * Publish one delivery: encode it once, then send [topic][delivery] on
 * each socket for each of the n topics its class may read, consecutively,
 * sharing the encoded bytes.
 *
 * Returns:   0 or a negative error (the delivery is then not sent).
 */
int pd_feed_publish(pd_feed_t *feed, uint64_t seq, int64_t received_at,
                    const void *env, size_t len,
                    const char topics[][PARLEY_TOPIC_MAX], size_t n);

/*
 * Send the daemon's counters on sys/stats/, as the same ApiReply (stats,
 * request_id 0) that answers a stats request, so one decoder serves both;
 * on the sockets of the classes with the stats permission only.
 *
 * Returns:   0 or a negative error.
 */
int pd_feed_stats(pd_feed_t *feed, const parley__stat_t *stats, size_t n);

/*
 * Send a signed checkpoint (the note's text, len bytes, as it is) on
 * sys/checkpoint/ of every socket whose class
 * may read the counters (the tree size tells how much everyone publishes).
 *
 * Returns:   0 or a negative error.
 */
int pd_feed_checkpoint(pd_feed_t *feed, const char *note, size_t len);

/* The head seq access class klass may know of (pd_query_view_head()). */
typedef uint64_t (*pd_feed_view_fn)(void *ctx, int klass);

/*
 * Send the heartbeat tmpl (daemon id, first seq, time, log id, catching
 * up) on sys/heartbeat/ of every socket, each with the seq view(view_ctx,
 * its class) gives: the log's head for class 0, for a limited class the
 * last seq it may read (what its gap detection needs, and not how much
 * others publish).
 *
 * Returns:   0 or the first negative error.
 */
int pd_feed_heartbeat(pd_feed_t *feed, const parley__heartbeat_t *tmpl,
                      pd_feed_view_fn view, void *view_ctx);

#endif /* PD_FEED_H */
