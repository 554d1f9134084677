/*
 * zap.h - who may connect to parleyd, and what each connection may read.
 *
 * parleyd runs a ZAP handler (ZeroMQ RFC 27) on inproc://zeromq.zap.01 in
 * its own context and sets the ZAP domain on the api and feed sockets, so
 * that libzmq asks it about every connection, whatever the mechanism:
 *
 *   - curve on: the client's CURVE key must be on the allow-list
 *     (clients.h); its name becomes the connection's user id (for logs)
 *     and its key the "X-Key" metadata property, by which its rights are
 *     looked up for as long as the connection lives, so that they follow
 *     the key whatever names a reload gives. Unknown keys are refused
 *     (status 400, counted auth_denied), and so is a client on a feed
 *     socket of another access class than its own. NULL and PLAIN
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

/* ZAP domains are this, a dash and a number, one per secured socket. */
#define PD_ZAP_DOMAIN "parley"
/* Sockets that can be secured and monitored: the api and a feed socket
 * per access class. */
#define PD_ZAP_SOCKETS (1 + PD_CLIENTS_CLASSES_MAX)
/* Poll items pd_zap_items() fills at most (monitors, handler, retired
 * handler). */
#define PD_ZAP_NITEMS (2 + PD_ZAP_SOCKETS)

typedef struct pd_zap pd_zap_t;

typedef struct pd_zap_counters {
    uint64_t auth_denied;          /* ZAP refusals: unknown or wrong keys */
    uint64_t handshake_failed;     /* mechanism mismatch, garbage, timeout */
    uint64_t connections_refused;  /* over max_connections */
    uint64_t subscriptions_denied; /* topic not allowed, over the cap, ... */
    uint64_t subscriptions_partial; /* of which: not a whole topic */
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
 * Prepare a socket before it binds: a ZAP domain of its own (enforced
 * where libzmq offers it), handshake timeout, CURVE server role and key,
 * and a monitor for connection accounting. klass -1 admits any client
 * (the api); a feed socket admits only clients of access class klass.
 * name ("api", "feed") is used in logs. A socket secured after the
 * secret was wiped takes the key from one secured before and still open
 * (the api always is).
 *
 * Returns:   0 or -errno from libzmq (-ENOSPC: PD_ZAP_SOCKETS secured).
 */
int pd_zap_secure(pd_zap_t *zap, void *sock, const char *name, int klass);

/*
 * Stop watching sock (its monitor is closed): before a feed socket of
 * an access class that is gone is closed. Its connections stop counting.
 */
void pd_zap_release(pd_zap_t *zap, void *sock);

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
 * the handler socket that served it (see zap_handler.c): after a pause
 * in handshakes, or in a crowd of them every few dozen. Reads no
 * clock and does nothing when no connection came since the last
 * retirement.
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
 * its X-Key, X-Conn and, in logs, User-Id): only a whole topic
 * (protocol.md section 6) that the client's key may read, within
 * max_subscriptions. unsure: the XPUB may apply a grant to another
 * connection right now (see feed.c), so nothing is granted. A refusal is
 * counted and logged (rate-limited).
 *
 * Returns:   true to grant it (call ZMQ_SUBSCRIBE), false to refuse.
 */
bool pd_zap_subscribe(pd_zap_t *zap, zmq_msg_t *msg, const char *topic,
                      size_t len, bool unsure);

/*
 * The rights of a connection, by the key its request carried (the X-Key
 * metadata property, zmq_msg_gets(msg, PD_ZAP_KEY_PROP); NULL if none),
 * under the allow-list in force. With curve off everyone may do
 * everything; with curve on a key not on the list may do nothing.
 */
#define PD_ZAP_KEY_PROP "X-Key"

/* May it read every topic? */
bool pd_zap_reads_all(const pd_zap_t *zap, const char *key);

/* May it read an update with these topics (parley_topics())? */
bool pd_zap_may_read(const pd_zap_t *zap, const char *key,
                     const char topics[][PARLEY_TOPIC_MAX], size_t n);

/* May it read the daemon's counters (stats request, sys/stats/)? */
bool pd_zap_may_stats(const pd_zap_t *zap, const char *key);

/* Its access class (clients.h): 0 with curve off, -1 for no client. */
int pd_zap_class_of(const pd_zap_t *zap, const char *key);

/*
 * Access classes of the list in force (1 with curve off), and a number
 * that changes whenever a reload changes them (the feed then makes its
 * class sockets again, and views of the log start over).
 */
size_t pd_zap_classes(const pd_zap_t *zap);
uint64_t pd_zap_generation(const pd_zap_t *zap);

/* May class k read every topic; this whole topic (NUL-terminated); the
 * counters? false for a class the list does not have. */
bool pd_zap_class_reads_all(const pd_zap_t *zap, int k);
bool pd_zap_class_reads(const pd_zap_t *zap, int k, const char *topic);
bool pd_zap_class_stats(const pd_zap_t *zap, int k);

/*
 * SIGHUP, step 1: read the allow-list again (curve on; with curve off
 * *out is NULL and 0 is returned).
 *
 * Returns:   0, or a negative error with a message in errbuf.
 */
int pd_zap_reload_read(const pd_zap_t *zap, pd_clients_t **out, char *errbuf,
                       size_t errlen);

/*
 * SIGHUP, step 2: switch to the list read in step 1 (taken over); when
 * its access classes differ, pd_zap_generation() changes.
 *
 * Returns:   true when a client lost a key, topics or its stats
 *            permission, or was renamed, so that the connections made
 *            under the old list must be cut.
 */
bool pd_zap_reload_commit(pd_zap_t *zap, pd_clients_t **fresh);

/* Clients on the allow-list (0 with curve off). */
size_t pd_zap_clients(const pd_zap_t *zap);

/* The counters (live). */
const pd_zap_counters_t *pd_zap_counters(const pd_zap_t *zap);

/* Report the counters and curve_clients in st. */
void pd_zap_stats_register(const pd_zap_t *zap, pd_stats_t *st);

#endif /* PD_ZAP_H */
