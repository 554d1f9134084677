/*
 * preverify.c - a subscriber's deliveries decoded and verified ahead, on
 * worker threads and on the caller's own (preverify.h).
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
 * seq and len are written only by the owner, so it reads them without
 * the mutex. They and the state live in a compact array of tags apart
 * from the bulky results (a parley_delivery_t is kilobytes), so that
 * looking for work touches a few cache lines.
 *
 * Every thread verifies: a worker takes the next PENDING slot, in the
 * order the slots were offered (ascending seqs); the owner, wanting a
 * delivery a worker is still on, verifies the next PENDING one itself
 * rather than wait, and waits only when nothing is left to start. (With
 * one worker, an owner that waited would leave one core idle: the worker
 * always takes the lowest seq, the very one the owner wants next.)
 */
#include "preverify.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Deliveries verified ahead per thread, at most. */
#define S_AHEAD_PER_THREAD 32
/* What a worker thread is called (top -H, /proc/PID/task/TID/comm). */
#define S_THREAD_NAME "parley-verify"

typedef enum {
    S_EMPTY = 0,
    S_PENDING,
    S_RUNNING,
    S_DONE,
} s_state_t;

/* What the scans look at, apart from the result. */
typedef struct {
    uint64_t seq;           /* of the bytes, 0 when EMPTY (owner's) */
    size_t len;             /* of the bytes (owner's) */
    s_state_t state;        /* under the mutex */
} s_tag_t;

typedef struct {
    uint8_t *data;          /* Delivery bytes (copy), data_cap allocated */
    size_t data_cap;
    int rc;                 /* DONE: what parley_delivery_decode() said */
    parley_delivery_t d;    /* DONE: the decoded delivery */
} s_slot_t;

struct parley__preverify {
    const parley_keyring_t *ring;
    pthread_mutex_t mu;
    pthread_cond_t work;    /* a slot became PENDING, or stop */
    pthread_cond_t done;    /* the slot the owner waits for became DONE */
    bool stop;              /* under mu */
    size_t n_pending;       /* under mu: slots PENDING */
    size_t idle;            /* under mu: workers waiting on work */
    size_t wait_for;        /* under mu: the slot the owner waits for,
                               cap if none */
    size_t next;            /* under mu: where the look for a PENDING
                               slot starts (after the last one taken) */
    s_tag_t *tags;
    s_slot_t *slots;
    size_t cap;             /* slots, a power of two */
    size_t window;          /* deliveries worth offering ahead */
    pthread_t *tids;
    size_t n_tids;          /* workers started */
    bool sync_ok;           /* mu and the conds were initialised */
    parley__preverify_counts_t counts; /* the owner's */
};

/*
 * Index of the next PENDING slot, from where the last one was taken on
 * (the slots are offered in ascending seqs), or cap. Under mu.
 */
static size_t
s_next_pending(parley__preverify_t *pv)
{
    if (pv->n_pending == 0)
        return pv->cap;
    for (size_t k = 0; k < pv->cap; k++) {
        size_t i = (pv->next + k) & (pv->cap - 1);
        if (pv->tags[i].state == S_PENDING) {
            pv->next = (i + 1) & (pv->cap - 1);
            return i;
        }
    }
    return pv->cap;
}

/*
 * Decode slot i (PENDING) on the calling thread, which holds mu: the slot
 * is RUNNING meanwhile, and mu is let go for the decoding. The owner, if
 * it waits for this one, is woken.
 */
static void
s_run(parley__preverify_t *pv, size_t i)
{
    s_tag_t *t = &pv->tags[i];
    s_slot_t *s = &pv->slots[i];
    size_t len = t->len;
    t->state = S_RUNNING;
    pv->n_pending--;
    pthread_mutex_unlock(&pv->mu);
    s->rc = parley_delivery_decode(pv->ring, s->data, len, &s->d);
    pthread_mutex_lock(&pv->mu);
    t->state = S_DONE;
    if (pv->wait_for == i)
        pthread_cond_signal(&pv->done);
}

static void *
s_worker(void *arg)
{
    parley__preverify_t *pv = arg;
    pthread_mutex_lock(&pv->mu);
    while (!pv->stop) {
        size_t i = s_next_pending(pv);
        if (i == pv->cap) {
            pv->idle++;
            pthread_cond_wait(&pv->work, &pv->mu);
            pv->idle--;
            continue;
        }
        s_run(pv, i);
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
    pv->wait_for = pv->cap;
    pv->tags = calloc(pv->cap, sizeof(*pv->tags));
    pv->slots = calloc(pv->cap, sizeof(*pv->slots));
    pv->tids = calloc(threads - 1, sizeof(*pv->tids));
    if (pv->tags == NULL || pv->slots == NULL || pv->tids == NULL) {
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
    for (; pv->n_tids < threads - 1; pv->n_tids++) {
        if ((*err = -pthread_create(&pv->tids[pv->n_tids], NULL, s_worker, pv))
            < 0)
            goto fail;
        /* Only a name for tools: a failure changes nothing. */
        (void)pthread_setname_np(pv->tids[pv->n_tids], S_THREAD_NAME);
    }
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
    free(pv->tags);
    free(pv->tids);
    free(pv);
    *pvp = NULL;
}

/* Was it offered already (these seq and length)? Owner only. */
static bool
s_offered(const parley__preverify_t *pv, const parley__merge_item_t *it)
{
    const s_tag_t *t = &pv->tags[it->seq & (pv->cap - 1)];
    return t->seq == it->seq && t->len == it->len;
}

/*
 * Offer one delivery (see parley__preverify_offer()). Under mu.
 * Returns 1 (offered), 0 (not) or -ENOMEM.
 */
static int
s_put(parley__preverify_t *pv, const parley__merge_item_t *it, uint64_t done)
{
    size_t i = it->seq & (pv->cap - 1);
    s_tag_t *t = &pv->tags[i];
    s_slot_t *s = &pv->slots[i];
    if (it->seq == 0 || s_offered(pv, it))
        return 0; /* nothing to verify, or offered already */
    if (t->seq > done)
        return 0; /* busy with one still to be handed out */
    if (t->state == S_RUNNING)
        return 0; /* a stale one a worker is still on: left until done */
    if (s->data_cap < it->len) {
        size_t cap = it->len > 512 ? it->len : 512;
        uint8_t *p = realloc(s->data, cap);
        if (p == NULL)
            return -ENOMEM;
        s->data = p;
        s->data_cap = cap;
    }
    if (t->state == S_PENDING)
        pv->n_pending--;
    memcpy(s->data, it->data, it->len);
    t->len = it->len;
    t->seq = it->seq;
    t->state = S_PENDING;
    pv->n_pending++;
    return 1;
}

int
parley__preverify_offer(parley__preverify_t *pv,
                        const parley__merge_item_t *items, size_t n,
                        uint64_t done)
{
    /* items[0] is handed out next: the caller's thread verifies it (a
     * worker woken for it would only make the caller wait for it). */
    if (n > pv->window + 1)
        n = pv->window + 1;
    size_t i = 1;
    while (i < n && s_offered(pv, &items[i]))
        i++; /* the ones offered before */
    if (i >= n)
        return 0;
    int rc = 0, got = 0;
    pthread_mutex_lock(&pv->mu);
    for (; i < n; i++) {
        int r = s_put(pv, &items[i], done);
        if (r < 0)
            rc = r; /* nothing is lost: it is decoded when taken */
        got += r > 0;
    }
    /* One wake per idle worker with something to do, none when all are
     * busy (they look for more before they sleep). */
    if (got > 0 && pv->idle > 0) {
        if (pv->n_pending >= pv->idle)
            pthread_cond_broadcast(&pv->work);
        else
            for (size_t k = 0; k < pv->n_pending; k++)
                pthread_cond_signal(&pv->work);
    }
    pthread_mutex_unlock(&pv->mu);
    return rc < 0 ? rc : got;
}

/* Empty slot i (not RUNNING). Under mu. */
static void
s_clear(parley__preverify_t *pv, size_t i)
{
    s_tag_t *t = &pv->tags[i];
    if (t->state == S_PENDING)
        pv->n_pending--;
    t->state = S_EMPTY;
    t->seq = 0;
    t->len = 0;
}

int
parley__preverify_take(parley__preverify_t *pv, uint64_t seq,
                       const void *data, size_t len, parley_delivery_t *d,
                       int *rc)
{
    size_t i = seq & (pv->cap - 1);
    s_tag_t *t = &pv->tags[i];
    s_slot_t *s = &pv->slots[i];
    if (seq == 0 || t->seq != seq) {
        pv->counts.unoffered += seq != 0;
        return 0;
    }
    bool same = t->len == len && memcmp(s->data, data, len) == 0;
    pthread_mutex_lock(&pv->mu);
    if (!same) {
        /* Other bytes under the same seq (the item was dropped and came
         * again from elsewhere): this result is of no use. */
        if (t->state != S_RUNNING)
            s_clear(pv, i);
        pthread_mutex_unlock(&pv->mu);
        return 0;
    }
    pv->counts.taken++;
    pv->counts.pending_sum += pv->n_pending;
    if (t->state == S_DONE)
        pv->counts.ready++;
    for (;;) {
        if (t->state == S_PENDING) {
            s_run(pv, i); /* no worker got to it: the caller's thread does */
            pv->counts.own++;
        }
        if (t->state == S_DONE)
            break;
        /* A worker is on it: verify the next one meanwhile, or wait if
         * every other one is started. */
        size_t j = s_next_pending(pv);
        if (j != pv->cap) {
            s_run(pv, j);
            pv->counts.helped++;
            continue;
        }
        pv->counts.waits++;
        pv->wait_for = i;
        pthread_cond_wait(&pv->done, &pv->mu);
        pv->wait_for = pv->cap;
    }
    parley__delivery_move(d, &s->d);
    *rc = s->rc;
    s_clear(pv, i);
    pthread_mutex_unlock(&pv->mu);
    return 1;
}

parley__preverify_counts_t
parley__preverify_counts(const parley__preverify_t *pv)
{
    if (pv == NULL)
        return (parley__preverify_counts_t){ 0 };
    return pv->counts;
}
