/*
 * preverify.h - verifying a subscriber's held deliveries ahead, on
 * several threads (library-internal).
 *
 * A subscriber that is behind (a replay page, a burst on the feed) holds
 * deliveries it will hand out in seq order. Decoding and verifying one
 * (parley_delivery_decode()) depends on nothing but its bytes and the
 * keyring, so worker threads can do it while the caller's thread hands
 * out the ones before. The subscriber offers the deliveries it will hand
 * out next; when it hands one out it takes the result, which it then
 * treats exactly as if it had decoded the bytes itself (the result is
 * used only for the very bytes it was computed from; anything else is
 * decoded on the spot).
 *
 * Results live in a small table indexed by seq (modulo its size): a seq
 * whose slot is busy with another is simply not verified ahead.
 */
#ifndef PARLEY_PREVERIFY_H
#define PARLEY_PREVERIFY_H

#include "types.h"

#include <stddef.h>
#include <stdint.h>

/* Threads that verify (the caller's included) at most. */
#define PARLEY__VERIFY_THREADS_MAX 64

typedef struct parley__preverify parley__preverify_t;

/*
 * Start threads - 1 worker threads (threads 2..PARLEY__VERIFY_THREADS_MAX)
 * that verify against ring (borrowed: it must outlive the object).
 *
 * Returns:   the object, or NULL with *err set (PARLEY_EARG, -ENOMEM or
 *            the -errno of pthread_create()).
 * Ownership: the caller's; free with parley__preverify_destroy().
 * Threads:   the object is used by one thread at a time (its workers are
 *            its own business).
 */
parley__preverify_t *parley__preverify_new(const parley_keyring_t *ring,
                                           unsigned threads, int *err);

/* Stop and join the workers, free every result; *pv becomes NULL.
 * Accepts NULL. */
void parley__preverify_destroy(parley__preverify_t **pv);

/* How many deliveries ahead are worth offering: those the caller will
 * hand out next, up to this many. */
size_t parley__preverify_window(const parley__preverify_t *pv);

/*
 * Offer the delivery of seq (bytes copied) to be verified ahead. A slot
 * holding a seq at or below done (handed out already) is reclaimed; a
 * seq already offered with the same length, or whose slot is busy, is
 * left as it is. Call parley__preverify_kick() after a batch of offers
 * that returned 1.
 *
 * Returns:   1 (offered), 0 (not: see above) or -ENOMEM (nothing is
 *            lost: it is decoded when taken).
 */
int parley__preverify_offer(parley__preverify_t *pv, uint64_t seq,
                            const void *data, size_t len, uint64_t done);

/* Hand what was offered since the last call to the workers. */
void parley__preverify_kick(parley__preverify_t *pv);

/*
 * The decoded delivery of seq, if it was offered with exactly these
 * bytes: taken over into *d (whose old contents the object keeps for
 * reuse) with *rc set to what parley_delivery_decode() returned. Waits
 * for a worker that is on it; one no worker has started is verified here.
 *
 * Returns:   1 with *d and *rc set, or 0 (not offered with these bytes:
 *            the caller decodes it itself).
 */
int parley__preverify_take(parley__preverify_t *pv, uint64_t seq,
                           const void *data, size_t len, parley_delivery_t *d,
                           int *rc);

#endif /* PARLEY_PREVERIFY_H */
