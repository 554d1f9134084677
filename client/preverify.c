/*
 * preverify.c - a subscriber's deliveries decoded and verified ahead, on
 * worker threads (preverify.h).
 *
 * One mutex guards every slot's state; a slot's other fields belong to
 * whoever the state gives them to:
 *
 *   EMPTY    nothing; the owner's (the caller's thread) to fill;
 *   PENDING  bytes offered, not started: the owner may still reclaim or
 *            overwrite it, under the mutex;
 *   RUNNING  a thread (a worker, or the owner in take) decodes it and is
 *            the only one to touch the delivery; the bytes are only read;
 *   DONE     the result is ready: the owner's alone again.
 *
 * seq, len and data are written only by the owner, so it reads them
 * without the mutex. Workers take the PENDING slot of the lowest seq, so
 * the next delivery to hand out is the first to be ready.
 */
#include "preverify.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Deliveries verified ahead per thread, at most. */
#define S_AHEAD_PER_THREAD 32

typedef enum {
    S_EMPTY = 0,
    S_PENDING,
    S_RUNNING,
    S_DONE,
} s_state_t;

typedef struct {
    s_state_t state;        /* under the mutex */
    uint64_t seq;           /* of the bytes, 0 when EMPTY */
    uint8_t *data;          /* Delivery bytes (copy), data_cap allocated */
    size_t len, data_cap;
    int rc;                 /* DONE: what parley_delivery_decode() said */
    parley_delivery_t d;    /* DONE: the decoded delivery */
} s_slot_t;

struct parley__preverify {
    const parley_keyring_t *ring;
    pthread_mutex_t mu;
    pthread_cond_t work;    /* a slot became PENDING, or stop */
    pthread_cond_t done;    /* a slot became DONE */
    bool stop;              /* under mu */
    size_t n_pending;       /* under mu: slots PENDING */
    size_t waiting;         /* under mu: owner waits on done */
    s_slot_t *slots;
    size_t cap;             /* slots, a power of two */
    size_t window;          /* deliveries worth offering ahead */
    pthread_t *tids;
    size_t n_tids;          /* workers started */
    bool sync_ok;           /* mu and the conds were initialised */
};

/* Index of the PENDING slot of the lowest seq, or cap. Under mu. */
static size_t
s_lowest_pending(const parley__preverify_t *pv)
{
    size_t best = pv->cap;
    if (pv->n_pending == 0)
        return best;
    for (size_t i = 0; i < pv->cap; i++)
        if (pv->slots[i].state == S_PENDING
            && (best == pv->cap || pv->slots[i].seq < pv->slots[best].seq))
            best = i;
    return best;
}

/*
 * Decode slot s (PENDING) on the calling thread, which holds mu: the slot
 * is RUNNING meanwhile, and mu is let go for the decoding. A thread that
 * waits for the result is woken.
 */
static void
s_run(parley__preverify_t *pv, s_slot_t *s)
{
    s->state = S_RUNNING;
    pv->n_pending--;
    pthread_mutex_unlock(&pv->mu);
    s->rc = parley_delivery_decode(pv->ring, s->data, s->len, &s->d);
    pthread_mutex_lock(&pv->mu);
    s->state = S_DONE;
    if (pv->waiting > 0)
        pthread_cond_broadcast(&pv->done);
}

static void *
s_worker(void *arg)
{
    parley__preverify_t *pv = arg;
    pthread_mutex_lock(&pv->mu);
    for (;;) {
        size_t i = 0;
        while (!pv->stop && (i = s_lowest_pending(pv)) == pv->cap)
            pthread_cond_wait(&pv->work, &pv->mu);
        if (pv->stop)
            break;
        s_run(pv, &pv->slots[i]);
    }
    pthread_mutex_unlock(&pv->mu);
    return NULL;
}

parley__preverify_t *
parley__preverify_new(const parley_keyring_t *ring, unsigned threads, int *err)
{
    if (threads < 2 || threads > PARLEY__VERIFY_THREADS_MAX) {
        *err = PARLEY_EARG;
        return NULL;
    }
    parley__preverify_t *pv = calloc(1, sizeof(*pv));
    if (pv == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    pv->ring = ring;
    pv->window = (size_t)threads * S_AHEAD_PER_THREAD;
    for (pv->cap = 1; pv->cap < 2 * pv->window; pv->cap <<= 1)
        ;
    pv->slots = calloc(pv->cap, sizeof(*pv->slots));
    pv->tids = calloc(threads - 1, sizeof(*pv->tids));
    if (pv->slots == NULL || pv->tids == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    if ((*err = -pthread_mutex_init(&pv->mu, NULL)) < 0)
        goto fail;
    if ((*err = -pthread_cond_init(&pv->work, NULL)) < 0) {
        pthread_mutex_destroy(&pv->mu);
        goto fail;
    }
    if ((*err = -pthread_cond_init(&pv->done, NULL)) < 0) {
        pthread_cond_destroy(&pv->work);
        pthread_mutex_destroy(&pv->mu);
        goto fail;
    }
    pv->sync_ok = true;
    for (; pv->n_tids < threads - 1; pv->n_tids++)
        if ((*err = -pthread_create(&pv->tids[pv->n_tids], NULL, s_worker, pv))
            < 0)
            goto fail;
    return pv;
fail:
    parley__preverify_destroy(&pv);
    return NULL;
}

void
parley__preverify_destroy(parley__preverify_t **pvp)
{
    if (pvp == NULL || *pvp == NULL)
        return;
    parley__preverify_t *pv = *pvp;
    if (pv->sync_ok) {
        pthread_mutex_lock(&pv->mu);
        pv->stop = true;
        pthread_cond_broadcast(&pv->work);
        pthread_mutex_unlock(&pv->mu);
        for (size_t i = 0; i < pv->n_tids; i++)
            pthread_join(pv->tids[i], NULL);
        pthread_cond_destroy(&pv->done);
        pthread_cond_destroy(&pv->work);
        pthread_mutex_destroy(&pv->mu);
    }
    for (size_t i = 0; pv->slots != NULL && i < pv->cap; i++) {
        parley__delivery_release(&pv->slots[i].d);
        free(pv->slots[i].data);
    }
    free(pv->slots);
    free(pv->tids);
    free(pv);
    *pvp = NULL;
}

size_t
parley__preverify_window(const parley__preverify_t *pv)
{
    return pv->window;
}

int
parley__preverify_offer(parley__preverify_t *pv, uint64_t seq,
                        const void *data, size_t len, uint64_t done)
{
    s_slot_t *s = &pv->slots[seq & (pv->cap - 1)];
    if (seq == 0 || (s->seq == seq && s->len == len))
        return 0; /* nothing to verify, or offered already */
    if (s->seq > done)
        return 0; /* busy with one still to be handed out */
    pthread_mutex_lock(&pv->mu);
    if (s->state == S_RUNNING) {
        /* A stale one a worker is still on: left until it is done. */
        pthread_mutex_unlock(&pv->mu);
        return 0;
    }
    if (s->data_cap < len) {
        size_t cap = len > 512 ? len : 512;
        uint8_t *p = realloc(s->data, cap);
        if (p == NULL) {
            pthread_mutex_unlock(&pv->mu);
            return -ENOMEM;
        }
        s->data = p;
        s->data_cap = cap;
    }
    if (s->state == S_PENDING)
        pv->n_pending--;
    memcpy(s->data, data, len);
    s->len = len;
    s->seq = seq;
    s->state = S_PENDING;
    pv->n_pending++;
    pthread_mutex_unlock(&pv->mu);
    return 1;
}

void
parley__preverify_kick(parley__preverify_t *pv)
{
    pthread_mutex_lock(&pv->mu);
    if (pv->n_pending > 0)
        pthread_cond_broadcast(&pv->work);
    pthread_mutex_unlock(&pv->mu);
}

/* Empty slot s (not RUNNING). Under mu. */
static void
s_clear(parley__preverify_t *pv, s_slot_t *s)
{
    if (s->state == S_PENDING)
        pv->n_pending--;
    s->state = S_EMPTY;
    s->seq = 0;
    s->len = 0;
}

int
parley__preverify_take(parley__preverify_t *pv, uint64_t seq,
                       const void *data, size_t len, parley_delivery_t *d,
                       int *rc)
{
    s_slot_t *s = &pv->slots[seq & (pv->cap - 1)];
    if (seq == 0 || s->seq != seq)
        return 0;
    bool same = s->len == len && memcmp(s->data, data, len) == 0;
    pthread_mutex_lock(&pv->mu);
    if (!same) {
        /* Other bytes under the same seq (the item was dropped and came
         * again from elsewhere): this result is of no use. */
        if (s->state != S_RUNNING)
            s_clear(pv, s);
        pthread_mutex_unlock(&pv->mu);
        return 0;
    }
    if (s->state == S_PENDING)
        s_run(pv, s); /* no worker got to it: the caller's thread does */
    pv->waiting++;
    while (s->state == S_RUNNING)
        pthread_cond_wait(&pv->done, &pv->mu);
    pv->waiting--;
    parley_delivery_t old = *d;
    *d = s->d;
    s->d = old;
    *rc = s->rc;
    s_clear(pv, s);
    pthread_mutex_unlock(&pv->mu);
    return 1;
}
