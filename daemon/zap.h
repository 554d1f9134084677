/*
 * zap.h - who may connect to parleyd, and what each connection may read.
 *
 * parleyd runs a ZAP handler (ZeroMQ RFC 27) on inproc://zeromq.zap.01 in
 * its own context and sets the ZAP domain on the api and feed sockets, so
 * that libzmq asks it about every connection, whatever the mechanism:
 *
 *   - curve on: the client's CURVE key must be on the allow-list
 *     (clients.h); its name becomes the connection's user id. Unknown
 *     keys are refused (status 400, counted auth_denied). NULL and PLAIN
 *     clients fail the handshake before ZAP is asked; a socket monitor
 *     counts them as handshake_failed.
 *   - curve off: every NULL client is let in, without a user id.
 *   - either way: beyond max_connections (api and feed together, counted
 *     from the monitors' accepted/disconnected events) a connection is
 *     refused (counted connections_refused), and each admitted connection
 *     gets a number, carried as the "X-Conn" metadata property on all it
 *     sends, so that the feed can count subscriptions per connection.
 *
 * The feed asks pd_zap_subscribe() about each subscription (the XPUB runs
 * in manual mode), the api asks pd_zap_may_read() about each update a
 * replay or snapshot would send.
 *
 * All of it runs in the server loop's thread: pd_zap_items() gives the
 * sockets to poll, pd_zap_handle() serves what is waiting, pd_zap_tick()
 * replaces the handler socket after handshakes so that libzmq frees each
 * connection's pipe to it (~10 KB a connection, otherwise kept for the
 * connection's life).
 */
#ifndef PD_ZAP_H
#define PD_ZAP_H

#include "clients.h"
#include "config.h"
#include "parley.h"
#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define PD_ZAP_DOMAIN "parley"
/* Sockets that can be secured and monitored (api, feed). */
#define PD_ZAP_SOCKETS 2
/* Poll items pd_zap_items() fills at most (monitors, handler, retired
 * handler). */
#define PD_ZAP_NITEMS (2 + PD_ZAP_SOCKETS)

typedef struct pd_zap pd_zap_t;

typedef struct pd_zap_counters {
    uint64_t auth_denied;          /* ZAP refusals: unknown or wrong keys */
    uint64_t handshake_failed;     /* mechanism mismatch, garbage, timeout */
    uint64_t connections_refused;  /* over max_connections */
    uint64_t subscriptions_denied; /* topic not allowed, over the cap, ... */
    uint64_t connections;          /* open now (api + feed) */
} pd_zap_counters_t;

/*
 * Bind the ZAP handler in ctx. With cfg->curve, read the server's secret
 * key (curve_secret_key, into guarded memory) and the allow-list
 * (curve_clients). Failures are logged with what to do about them.
 * Call before any socket of ctx binds.
 *
 * Returns:   the handler, or NULL with *err set.
 * Ownership: cfg is copied; close with pd_zap_destroy() before the
 *            context is terminated.
 */
pd_zap_t *pd_zap_new(void *ctx, const pd_config_t *cfg, int *err);

/* Close the sockets, wipe the secret, free; *zap becomes NULL. */
void pd_zap_destroy(pd_zap_t **zap);

/*
 * Prepare a socket before it binds: ZAP domain (enforced where libzmq
 * offers it), handshake timeout, CURVE server role and key, and a monitor
 * for connection accounting. name ("api", "feed") is used in logs.
 *
 * Returns:   0 or -errno from libzmq.
 */
int pd_zap_secure(pd_zap_t *zap, void *sock, const char *name);

/* Wipe the server secret once every socket is secured. */
void pd_zap_forget_secret(pd_zap_t *zap);

/* The server's public key as Z85, "" with curve off. */
const char *pd_zap_public_key(const pd_zap_t *zap);

/* Fill items with the sockets to poll for ZAP requests and events.
 * Returns how many (at most PD_ZAP_NITEMS). */
size_t pd_zap_items(const pd_zap_t *zap, zmq_pollitem_t *items);

/* Serve what is waiting on those sockets (monitors first). */
void pd_zap_handle(pd_zap_t *zap);

/*
 * Call now and then (pd_zap_handle() does, and the loop after every
 * wake-up, at least once a second): lets libzmq free the pipe
 * each connection keeps to the handler after its handshake, by retiring
 * the handler socket that served it (see zap.c). Reads no clock and does
 * nothing when no connection came since the last retirement.
 */
void pd_zap_tick(pd_zap_t *zap);

/* Read the monitors now (before a decision that needs the live count). */
void pd_zap_drain_monitors(pd_zap_t *zap);

/*
 * The connections of sock were all closed at once (pd_api_cut(),
 * pd_feed_cut()): start counting them from zero, and forget the
 * connection numbers handed out so far.
 */
void pd_zap_connections_cut(pd_zap_t *zap, void *sock);

/*
 * Decide on one feed subscription (topic, len bytes) carried by msg (for
 * its User-Id and X-Conn). unsure: the XPUB may apply a grant to another
 * connection right now (see feed.c), so nothing is granted. A refusal is
 * counted and logged (rate-limited).
 *
 * Returns:   true to grant it (call ZMQ_SUBSCRIBE), false to refuse.
 */
bool pd_zap_subscribe(pd_zap_t *zap, zmq_msg_t *msg, const char *topic,
                      size_t len, bool unsure);

/*
 * May the connection whose request carried user_id (zmq_msg_gets
 * "User-Id", NULL if none) read every topic?
 */
bool pd_zap_reads_all(const pd_zap_t *zap, const char *user_id);

/* May it read an update with these topics (parley_topics())? */
bool pd_zap_may_read(const pd_zap_t *zap, const char *user_id,
                     const char topics[][PARLEY_TOPIC_MAX], size_t n);

/*
 * SIGHUP, step 1: read the allow-list again (curve on; with curve off
 * *out is NULL and 0 is returned).
 *
 * Returns:   0, or a negative error with a message in errbuf.
 */
int pd_zap_reload_read(const pd_zap_t *zap, pd_clients_t **out, char *errbuf,
                       size_t errlen);

/*
 * SIGHUP, step 2: switch to the list read in step 1 (taken over).
 *
 * Returns:   true when a client lost a key or topics, so that the
 *            connections made under the old list must be cut.
 */
bool pd_zap_reload_commit(pd_zap_t *zap, pd_clients_t **fresh);

/* Clients on the allow-list (0 with curve off). */
size_t pd_zap_clients(const pd_zap_t *zap);

/* The counters (live). */
const pd_zap_counters_t *pd_zap_counters(const pd_zap_t *zap);

/* Report the counters and curve_clients in st. */
void pd_zap_stats_register(const pd_zap_t *zap, pd_stats_t *st);

#endif /* PD_ZAP_H */
