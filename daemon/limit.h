/*
 * limit.h - parleyd's publish rate limits, applied before the signature
 * check so that verifying cannot be made to eat the loop:
 *
 *   - per signer: a token bucket (rate_limit updates per second, up to
 *     rate_burst at once) for every signer in the keyring;
 *   - per api peer (ROUTER identity, one per connection): a peer that
 *     sends PD_LIMIT_BAD_MAX bad signatures within a second is not
 *     verified at all for PD_LIMIT_COOLDOWN_MS, so that a flood of forged
 *     updates under a valid signer's key neither costs the verification
 *     nor drains that signer's bucket for its real publishers.
 *
 * Both tables have a fixed size, chosen at creation; when one is full the
 * entry used longest ago is reused. Keys are hashed with a random key
 * (SipHash) so that peers cannot aim at one slot.
 */
#ifndef PD_LIMIT_H
#define PD_LIMIT_H

#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bad signatures within one second that send a peer to cool down. */
#define PD_LIMIT_BAD_MAX 16
/* How long a peer's publishes are refused unverified. */
#define PD_LIMIT_COOLDOWN_MS 2000
/* Slots of each table. */
#define PD_LIMIT_SIGNERS 4096
#define PD_LIMIT_PEERS 4096

typedef struct pd_limit pd_limit_t;

typedef struct pd_limit_stats {
    uint64_t signer_limited;  /* publishes refused: signer's bucket empty */
    uint64_t peer_limited;    /* publishes refused: peer cooling down */
    uint64_t peers_penalized; /* cool-downs started */
} pd_limit_stats_t;

/*
 * Make the tables. rate 0 turns the per-signer limit off (the per-peer
 * penalty stays on); burst is the bucket size (at least 1).
 *
 * Returns:   the limiter, or NULL with errno set.
 */
pd_limit_t *pd_limit_new(uint32_t rate, uint32_t burst);

/* Free; *limit becomes NULL. Accepts NULL. */
void pd_limit_destroy(pd_limit_t **limit);

/*
 * Take one token from the signer's bucket at time now_us (monotonic
 * microseconds).
 *
 * Returns:   true if the publish may go on to the signature check.
 */
bool pd_limit_signer_take(pd_limit_t *limit, const uint8_t pk[32],
                          int64_t now_us);

/*
 * Is this api peer (id, len bytes) cooling down at now_ms (monotonic)?
 * A true answer is counted as a refused publish.
 */
bool pd_limit_peer_blocked(pd_limit_t *limit, const void *id, size_t len,
                           int64_t now_ms);

/*
 * Record a bad signature from this peer at now_ms.
 *
 * Returns:   true if this one started a cool-down (to be logged).
 */
bool pd_limit_peer_bad(pd_limit_t *limit, const void *id, size_t len,
                       int64_t now_ms);

/* Counters so far. */
void pd_limit_get_stats(const pd_limit_t *limit, pd_limit_stats_t *out);

/* Report the limits' counters (rate_limited_*, peers_penalized) in st. */
void pd_limit_stats_register(const pd_limit_t *limit, pd_stats_t *st);

#endif /* PD_LIMIT_H */
