/*
 * api.h - parleyd's request side: the ROUTER socket and what it answers.
 *
 * Clients (DEALER) send [ApiRequest]; the ROUTER sees [identity][request]
 * and answers [identity][ApiReply]. Publishes pass the rate limits
 * (limit.h) between the signer lookup and the signature check; replay
 * and snapshot send only what the connection's CURVE client may read. One call of pd_api_turn() reads up to
 * PD_API_TURN_MAX requests without blocking and handles them in order:
 * publishes are checked (DESIGN.md "What parleyd checks"), appended to the
 * log and indexed; then one pd_store_sync() makes the whole batch durable,
 * then every reply queued in the turn is sent, then each new delivery is
 * published on the feed. Nothing is acked before it is durable. Under
 * load a turn may leave the next requests read and their signatures being
 * checked on the pool while it syncs (pd_api_pending()); the next turn
 * handles them, or pd_api_flush() does.
 */
#ifndef PD_API_H
#define PD_API_H

#include "codec.h"
#include "config.h"
#include "feed.h"
#include "parley.h"
#include "stats.h"
#include "storage.h"
#include "zap.h"

#include <stdbool.h>
#include <stdint.h>

/* Requests handled per turn (group commit batch). */
#define PD_API_TURN_MAX 1024

/* Deliveries per replay reply at most, and the byte budget of one. */
#define PD_API_REPLAY_MAX 1000
#define PD_API_REPLY_BUDGET (1024 * 1024)

typedef struct pd_api pd_api_t;

/*
 * Make the ROUTER socket in ctx, secure it with zap and bind it to
 * cfg->api, and register the api's counters in stats. cfg, storage,
 * feed, zap and stats are borrowed and must outlive the api.
 *
 * Returns:   the api, or NULL with *err set (-errno).
 */
pd_api_t *pd_api_new(void *ctx, const pd_config_t *cfg, pd_storage_t *storage,
                     pd_feed_t *feed, pd_zap_t *zap, pd_stats_t *stats,
                     const uint8_t daemon_id[16], int *err);

/*
 * Close every client connection (unbind and bind the same endpoint
 * again), so that each must pass the ZAP handler anew: used when the
 * allow-list lost a client. Call between turns.
 *
 * Returns:   0 or -errno (the api is then not bound: fatal).
 */
int pd_api_cut(pd_api_t *api);

/* Close the socket (linger 0) and free; *api becomes NULL. Accepts NULL. */
void pd_api_destroy(pd_api_t **api);

/* The socket, for zmq_poll(). */
void *pd_api_socket(const pd_api_t *api);

/* The endpoint actually bound (ZMQ_LAST_ENDPOINT). */
const char *pd_api_endpoint(const pd_api_t *api);

/*
 * Use ring (borrowed) for the checks from now on. Call between turns with
 * nothing pending (pd_api_flush() first); the previous keyring may be
 * destroyed as soon as this returns.
 */
void pd_api_set_keyring(pd_api_t *api, const parley_keyring_t *ring);

/*
 * Handle what is readable on the socket (one group-commit turn).
 *
 * Returns:   0, or a negative error when the log can no longer be written
 *            (nothing of the failed batch was acked; the daemon must exit
 *            non-zero).
 */
int pd_api_turn(pd_api_t *api);

/*
 * Whether a turn left requests read but not yet handled (their signatures
 * being checked on the pool): then the loop must turn again without
 * waiting for the socket.
 */
bool pd_api_pending(const pd_api_t *api);

/*
 * Handle whatever a turn left pending, and sync and answer it: before the
 * keyring changes and before the daemon stops.
 *
 * Returns:   0, or a negative error as for pd_api_turn().
 */
int pd_api_flush(pd_api_t *api);

#endif /* PD_API_H */
