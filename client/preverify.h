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
 * decoded on the spot). While a worker is still on the one it wants, the
 * caller's thread verifies another offered one, so that every thread
 * (the caller's included) keeps a core busy.
 *
 * Results live in a small table indexed by seq (modulo its size): a seq
 * whose slot is busy with another is simply not verified ahead.
 */
#ifndef PARLEY_PREVERIFY_H
#define PARLEY_PREVERIFY_H

#include "merge.h"
#include "types.h"

#include <stddef.h>
#include <stdint.h>

/* Threads that verify (the caller's included) at most. */
#define PARLEY__VERIFY_THREADS_MAX 64

typedef struct parley__preverify parley__preverify_t;

/* What the caller's thread met when it took results (for benchmarks). */
typedef struct parley__preverify_counts {
    uint64_t taken;         /* results taken (parley__preverify_take() 1) */
    uint64_t ready;         /* ... already DONE when asked for */
    uint64_t own;           /* ... not started: verified by the caller */
    uint64_t helped;        /* others verified by the caller meanwhile */
    uint64_t waits;         /* waits for a worker (nothing to help with) */
    uint64_t pending_sum;   /* PENDING slots at each take, summed */
    uint64_t unoffered;     /* takes of deliveries never offered */
    uint64_t starved;       /* sub.c: waits on the sockets while a replay
                               was under way and nothing could be handed
                               out (the next page was late) */
} parley__preverify_counts_t;

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

/*
 * Offer the deliveries the caller will hand out next: items[0..n), the
 * lowest seqs held, ascending (bytes copied). items[0] is handed out
 * next and left to the caller's thread; of the others, up to the window
 * (32 per thread) are offered, those not offered already. A slot
 * holding a seq at or below done (handed out already) is reclaimed; a
 * seq already offered with the same length, or whose slot is busy, is
 * left as it is. Idle workers are woken for what was offered.
 *
 * Returns:   how many were offered (0 or more), or -ENOMEM if one could
 *            not be (nothing is lost: it is decoded when taken).
 * Threads:   the owner's thread.
 */
int parley__preverify_offer(parley__preverify_t *pv,
                            const parley__merge_item_t *items, size_t n,
                            uint64_t done);

/*
 * The decoded delivery of seq, if it was offered with exactly these
 * bytes: moved into *d (parley__delivery_move(): the object keeps d's
 * envelope buffer for reuse) with *rc set to what
 * parley_delivery_decode() returned. One no
 * worker has started is verified here; while a worker is on it, the
 * next offered one no worker has started is verified here meanwhile,
 * and only when there is none does the caller's thread wait.
 *
 * Returns:   1 with *d and *rc set, or 0 (not offered with these bytes:
 *            the caller decodes it itself).
 */
int parley__preverify_take(parley__preverify_t *pv, uint64_t seq,
                           const void *data, size_t len, parley_delivery_t *d,
                           int *rc);

/* The counts since parley__preverify_new() (all zero for NULL).
 * Threads: the owner's thread. */
parley__preverify_counts_t
parley__preverify_counts(const parley__preverify_t *pv);

/* The counts of a subscriber's threads that verify ahead (sub.c; all 0
 * with verify_threads 1 but starved, which is counted with any number),
 * for benchmarks. Threads: the subscriber's. */
parley__preverify_counts_t parley__sub_verify_counts(const parley_sub_t *sub);

#endif /* PARLEY_PREVERIFY_H */
