/*
 * pool.c - fixed thread pool for parallel batches.
 *
 * One run at a time (the loop thread is the only caller). A run publishes
 * (fn, ctx, n) and a generation number under the mutex; workers wake,
 * claim items with an atomic counter until none are left, and report
 * back. The caller claims items too when it waits, so a pool of one
 * worker uses both cores of a two-core machine, and between start and
 * wait the caller is free to do other work while the workers run.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct pd_pool {
    pthread_t *threads;
    unsigned n_threads;        /* threads started */
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* workers wait here for a run */
    pthread_cond_t done;       /* the caller waits here for workers */
    unsigned long generation;  /* bumped per run, under lock */
    bool stopping;             /* under lock */
    unsigned busy;             /* workers still inside a run, under lock */
    /* the current run; written under lock before generation is bumped */
    pd_pool_fn fn;
    void *ctx;
    size_t n;
    bool inline_run;           /* the caller runs it alone */
    atomic_size_t next;        /* next item to claim */
};

/* Claim and run items until none are left. */
static void
s_drain(pd_pool_t *self)
{
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&self->next, 1,
                                             memory_order_relaxed);
        if (i >= self->n)
            return;
        self->fn(self->ctx, i);
    }
}

static void *
s_worker(void *arg)
{
    pd_pool_t *self = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (!self->stopping && self->generation == seen)
            pthread_cond_wait(&self->wake, &self->lock);
        if (self->stopping)
            break;
        seen = self->generation;
        pthread_mutex_unlock(&self->lock);
        s_drain(self);
        pthread_mutex_lock(&self->lock);
        if (--self->busy == 0)
            pthread_cond_signal(&self->done);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

pd_pool_t *
pd_pool_new(unsigned workers, int *err)
{
    pd_pool_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    pthread_cond_init(&self->done, NULL);
    atomic_init(&self->next, 0);
    if (workers > 0) {
        self->threads = calloc(workers, sizeof(*self->threads));
        if (self->threads == NULL) {
            *err = -ENOMEM;
            goto fail;
        }
    }
    for (unsigned i = 0; i < workers; i++) {
        int rc = pthread_create(&self->threads[i], NULL, s_worker, self);
        if (rc != 0) {
            *err = -rc;
            goto fail;
        }
        self->n_threads++;
    }
    *err = 0;
    return self;
fail:
    pd_pool_destroy(&self);
    return NULL;
}

void
pd_pool_destroy(pd_pool_t **poolp)
{
    if (poolp == NULL || *poolp == NULL)
        return;
    pd_pool_t *self = *poolp;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->lock);
    for (unsigned i = 0; i < self->n_threads; i++)
        pthread_join(self->threads[i], NULL);
    free(self->threads);
    pthread_cond_destroy(&self->done);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *poolp = NULL;
}

void
pd_pool_start(pd_pool_t *self, size_t n, size_t min_parallel, pd_pool_fn fn,
              void *ctx)
{
    self->fn = fn;
    self->ctx = ctx;
    self->n = n;
    atomic_store_explicit(&self->next, 0, memory_order_relaxed);
    self->inline_run = self->n_threads == 0 || n < min_parallel || n < 2;
    if (self->inline_run)
        return; /* pd_pool_wait() runs it all on the caller */
    pthread_mutex_lock(&self->lock);
    self->busy = self->n_threads;
    self->generation++;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

void
pd_pool_wait(pd_pool_t *self)
{
    s_drain(self);
    if (self->inline_run)
        return;
    pthread_mutex_lock(&self->lock);
    while (self->busy > 0)
        pthread_cond_wait(&self->done, &self->lock);
    pthread_mutex_unlock(&self->lock);
}

void
pd_pool_run(pd_pool_t *self, size_t n, size_t min_parallel, pd_pool_fn fn,
            void *ctx)
{
    pd_pool_start(self, n, min_parallel, fn, ctx);
    pd_pool_wait(self);
}

unsigned
pd_pool_size(const pd_pool_t *self)
{
    return self->n_threads + 1;
}

unsigned
pd_pool_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}
