/*
 * feed.h - parleyd's feed: an XPUB socket that carries [topic][Delivery]
 * for every accepted update and [sys/heartbeat/][Heartbeat] on a timer.
 *
 * The XPUB socket runs in manual mode: libzmq passes every subscription
 * up and subscribes nobody by itself; the feed asks the ZAP handler
 * (zap.h) whether the connection may have it (topic ACL, cap per
 * connection) and only then subscribes it, so that a client limited to
 * "party/egypt/" that subscribes to "" or "party/" gets nothing.
 */
#ifndef PD_FEED_H
#define PD_FEED_H

#include "codec.h"
#include "parley.h"
#include "stats.h"
#include "zap.h"

#include <stddef.h>
#include <stdint.h>

#define PD_FEED_HEARTBEAT_TOPIC "sys/heartbeat/"
#define PD_FEED_STATS_TOPIC "sys/stats/"

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

/* The socket, for zmq_poll(). */
void *pd_feed_socket(const pd_feed_t *feed);

/*
 * The endpoint clients should connect to: the one actually bound
 * (ZMQ_LAST_ENDPOINT, with the real port for ":0"), or the address set by
 * pd_feed_advertise() when the feed is bound to a wildcard.
 */
const char *pd_feed_endpoint(const pd_feed_t *feed);

/*
 * If the feed is bound to a wildcard tcp address (0.0.0.0, [::], *),
 * advertise a reachable one instead: the host of api_endpoint when that
 * is not a wildcard, else this machine's hostname.
 */
void pd_feed_advertise(pd_feed_t *feed, const char *api_endpoint);

/*
 * Read pending subscription messages without blocking and grant or
 * refuse each (a bounded number per call, so the api is not starved).
 */
void pd_feed_drain(pd_feed_t *feed);

/*
 * Topics currently granted to at least one subscriber. libzmq does not
 * say which connection a closing connection's unsubscriptions belong to,
 * so a refused topic that another connection holds can make this count
 * low until that topic is granted again.
 */
uint64_t pd_feed_subscriptions(const pd_feed_t *feed);

/* Report subscriptions in st. */
void pd_feed_stats_register(const pd_feed_t *feed, pd_stats_t *st);

/*
 * Publish one delivery: encode it once, then send [topic][delivery] for
 * each of the n topics, consecutively, sharing the encoded bytes.
 *
 * Returns:   0 or a negative error (the delivery is then not sent).
 */
int pd_feed_publish(pd_feed_t *feed, uint64_t seq, int64_t received_at,
                    const void *env, size_t len,
                    const char topics[][PARLEY_TOPIC_MAX], size_t n);

/*
 * Send the daemon's counters on sys/stats/, as the same ApiReply (stats,
 * request_id 0) that answers a stats request, so one decoder serves both.
 *
 * Returns:   0 or a negative error.
 */
int pd_feed_stats(pd_feed_t *feed, const parley__stat_t *stats, size_t n);

/*
 * Send the heartbeat hb on sys/heartbeat/.
 *
 * Returns:   0 or a negative error.
 */
int pd_feed_heartbeat(pd_feed_t *feed, const parley__heartbeat_t *hb);

#endif /* PD_FEED_H */
