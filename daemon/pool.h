/*
 * pool.h - a small fixed pool of threads that share one loop's work.
 *
 * parleyd's loop is single-threaded except for this: the signature checks
 * of one turn's batch of publishes are independent of each other and of
 * all daemon state, so pd_pool_run() spreads them over the pool while the
 * calling thread takes its share. Everything before and after (decoding,
 * rate limits, ordering checks, the log) stays on the loop thread.
 */
#ifndef PD_POOL_H
#define PD_POOL_H

#include <stddef.h>

typedef struct pd_pool pd_pool_t;

/* Work item i of a run; called from any pool thread or the caller. */
typedef void (*pd_pool_fn)(void *ctx, size_t i);

/*
 * Start workers extra threads (0 = run everything on the caller).
 *
 * Returns:   the pool, or NULL with *err set (-errno).
 */
pd_pool_t *pd_pool_new(unsigned workers, int *err);

/* Stop the threads and free the pool; *pool becomes NULL. Accepts NULL. */
void pd_pool_destroy(pd_pool_t **pool);

/*
 * Call fn(ctx, i) for every i in [0, n) and return when all are done.
 * Items are handed out one at a time, so uneven items balance; batches
 * below min_parallel run on the caller alone (waking threads costs more
 * than a couple of items).
 */
void pd_pool_run(pd_pool_t *pool, size_t n, size_t min_parallel, pd_pool_fn fn,
                 void *ctx);

/*
 * The two halves of pd_pool_run(), for a caller with other work to do
 * meanwhile: pd_pool_start() hands the run to the workers and returns at
 * once; pd_pool_wait() takes the caller's share of what is left and
 * returns when every item is done. Every start must be followed by one
 * wait before the next start, and fn(ctx, ...) must not touch what the
 * caller works on in between. A run below min_parallel happens entirely
 * in pd_pool_wait(), on the caller.
 */
void pd_pool_start(pd_pool_t *pool, size_t n, size_t min_parallel,
                   pd_pool_fn fn, void *ctx);
void pd_pool_wait(pd_pool_t *pool);

/* Number of threads that take part in a run (workers + the caller). */
unsigned pd_pool_size(const pd_pool_t *pool);

/* Number of online CPUs, at least 1. */
unsigned pd_pool_cpus(void);

#endif /* PD_POOL_H */
