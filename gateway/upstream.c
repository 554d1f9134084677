/*
 * upstream.c - subscription, forwarding publisher and worker threads.
 */
#include "upstream.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct gw_upstream {
    const gw_config_t *cfg;
    const parley_keyring_t *ring;
    gw_upstream_cb_t cb;
    parley_curve_t *curve;     /* CURVE keys, or NULL */
    parley_sub_t *sub;         /* the subscription, or NULL */
    parley_pub_t *pub;         /* the forwarder, or NULL (publish off) */
    /* Workers. */
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* a job was queued, or stop */
    pthread_t *threads;
    size_t n_threads;
    bool stop;
    gw_job_t *queue, *queue_tail; /* waiting for a worker */
    size_t queued;
    gw_job_t *finished;        /* answered, for the main thread */
    size_t in_flight;          /* submitted and not yet handed back */
    int done_fd;               /* eventfd: finished is not empty */
};

gw_job_t *
gw_job_new(gw_job_type_t type)
{
    gw_job_t *job = calloc(1, sizeof(*job));
    if (job != NULL)
        job->type = type;
    return job;
}

void
gw_job_free(gw_job_t **job)
{
    if (job == NULL || *job == NULL)
        return;
    for (size_t i = 0; i < (*job)->n_items; i++)
        gw_item_unref((*job)->items[i]);
    free((*job)->items);
    gw_cells_free((*job)->cells, (*job)->n_cells);
    gw_filter_free(&(*job)->filter);
    free(*job);
    *job = NULL;
}

/* ----------------------------------------------------------- workers */

/* Append an item to a job's answer. Returns 0 or -ENOMEM. */
static int
s_keep(gw_job_t *job, gw_item_t *it, size_t *cap)
{
    if (it == NULL)
        return -ENOMEM;
    if (job->n_items == *cap) {
        size_t grown = *cap > 0 ? *cap * 2 : 32;
        gw_item_t **more = realloc(job->items, grown * sizeof(*more));
        if (more == NULL) {
            gw_item_unref(it);
            return -ENOMEM;
        }
        job->items = more;
        *cap = grown;
    }
    job->items[job->n_items++] = it;
    return 0;
}

/*
 * Take the events of a replay into the job, up to its
 * limits. Returns 0 (*stopped says whether a limit ended it early) or
 * an error.
 */
static int
s_drain(gw_job_t *job, parley_query_t *q, bool *stopped)
{
    const parley_event_t *ev;
    size_t cap = 0, bytes = 0;
    int rc;
    *stopped = false;
    while ((rc = parley_query_next(q, &ev)) == 1) {
        gw_item_t *it = NULL;
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_DELIVERY:
            it = gw_item_update(parley_event_delivery(ev));
            break;
        case PARLEY_EVENT_GAP:
            it = gw_item_gap(parley_event_seq(ev), parley_event_seq_last(ev));
            break;
        case PARLEY_EVENT_REJECTED:
            job->rejected++;
            job->next = parley_event_seq(ev) + 1;
            continue;
        default:
            continue;
        }
        if ((rc = s_keep(job, it, &cap)) < 0)
            return rc;
        job->next = it->seq_last + 1;
        bytes += it->frame_len;
        if ((job->max_items > 0 && job->n_items >= job->max_items)
            || (job->max_bytes > 0 && bytes >= job->max_bytes)) {
            *stopped = true;
            return 0;
        }
    }
    return rc;
}

static void
s_run(gw_upstream_t *up, gw_job_t *job)
{
    parley_call_options_t opt = PARLEY_CALL_OPTIONS_INIT;
    parley_filter_t *pf = NULL;
    parley_query_t *q = NULL;
    parley_info_t *info = NULL;
    bool stopped = false;
    opt.server = up->cfg->server;
    opt.curve = up->curve;
    opt.timeout_ms = up->cfg->timeout_ms;
    opt.keyring = up->ring;
    switch (job->type) {
    case GW_JOB_PING:
        if ((job->rc = parley_ping(&opt, &info)) == 0) {
            job->seq = parley_info_seq(info);
            job->first_seq = parley_info_first_seq(info);
        }
        parley_info_destroy(&info);
        return;
    case GW_JOB_SNAPSHOT:
        job->rc = gw_state_fetch(&opt, &job->cells, &job->n_cells, &job->seq,
                                 &job->rejected);
        return;
    case GW_JOB_REPLAY:
        if ((job->rc = gw_filter_to_parley(&job->filter, &pf)) < 0)
            break;
        if (pf != NULL) {
            opt.filters = (const parley_filter_t *const *)&pf;
            opt.n_filters = 1;
        }
        job->next = job->from;
        if ((job->rc = parley_replay(job->from, job->to, &opt, &q)) == 0) {
            job->rc = s_drain(job, q, &stopped);
            job->seq = parley_query_seq(q);
            if (job->rc == 0 && !stopped && job->next <= job->seq)
                job->next = job->seq + 1;
            job->done = job->rc == 0 && (!stopped || job->next > job->seq);
        }
        break;
    }
    parley_query_destroy(&q);
    parley_filter_destroy(&pf);
}

static void *
s_worker(void *arg)
{
    gw_upstream_t *up = arg;
    pthread_mutex_lock(&up->lock);
    for (;;) {
        while (!up->stop && up->queue == NULL)
            pthread_cond_wait(&up->wake, &up->lock);
        if (up->stop)
            break;
        gw_job_t *job = up->queue;
        up->queue = job->link;
        if (up->queue == NULL)
            up->queue_tail = NULL;
        up->queued--;
        pthread_mutex_unlock(&up->lock);

        s_run(up, job);

        pthread_mutex_lock(&up->lock);
        job->link = up->finished;
        up->finished = job;
        uint64_t one = 1;
        if (write(up->done_fd, &one, sizeof(one)) < 0) {
            /* The counter is full: the main loop is reading it anyway. */
        }
    }
    pthread_mutex_unlock(&up->lock);
    return NULL;
}

/* --------------------------------------------------------- lifecycle */

gw_upstream_t *
gw_upstream_new(const gw_config_t *cfg, const parley_keyring_t *ring,
                const gw_upstream_cb_t *cb, int *err)
{
    gw_upstream_t *up = calloc(1, sizeof(*up));
    if (up == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    up->cfg = cfg;
    up->ring = ring;
    up->cb = *cb;
    up->done_fd = -1;
    pthread_mutex_init(&up->lock, NULL);
    pthread_cond_init(&up->wake, NULL);
    if (cfg->curve_server_key != NULL
        && (up->curve = parley_curve_load(cfg->curve_server_key,
                                          cfg->curve_client_key))
               == NULL) {
        *err = -errno;
        goto fail;
    }
    if ((up->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        *err = -errno;
        goto fail;
    }
    if (cfg->publish) {
        parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
        po.server = cfg->server;
        po.curve = up->curve;
        po.timeout_ms = cfg->timeout_ms;
        if ((up->pub = parley_pub_new(NULL, &po)) == NULL) {
            *err = -errno;
            goto fail;
        }
    }
    if ((up->threads = calloc(cfg->workers, sizeof(*up->threads))) == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    for (; up->n_threads < cfg->workers; up->n_threads++) {
        int rc = pthread_create(&up->threads[up->n_threads], NULL, s_worker, up);
        if (rc != 0) {
            *err = -rc;
            goto fail;
        }
    }
    return up;
fail:
    gw_upstream_destroy(&up);
    return NULL;
}

void
gw_upstream_destroy(gw_upstream_t **upp)
{
    if (upp == NULL || *upp == NULL)
        return;
    gw_upstream_t *up = *upp;
    pthread_mutex_lock(&up->lock);
    up->stop = true;
    pthread_cond_broadcast(&up->wake);
    pthread_mutex_unlock(&up->lock);
    for (size_t i = 0; i < up->n_threads; i++)
        pthread_join(up->threads[i], NULL);
    free(up->threads);
    /* Every job goes back to its owner: answered, or cancelled. */
    while (up->queue != NULL) {
        gw_job_t *job = up->queue;
        up->queue = job->link;
        job->rc = -ECANCELED;
        job->link = up->finished;
        up->finished = job;
    }
    while (up->finished != NULL) {
        gw_job_t *job = up->finished;
        up->finished = job->link;
        job->link = NULL;
        up->cb.job_done(up->cb.ctx, job);
    }
    parley_sub_destroy(&up->sub);
    parley_pub_destroy(&up->pub);
    parley_curve_destroy(&up->curve);
    if (up->done_fd >= 0)
        close(up->done_fd);
    pthread_cond_destroy(&up->wake);
    pthread_mutex_destroy(&up->lock);
    free(up);
    *upp = NULL;
}

int
gw_upstream_subscribe(gw_upstream_t *up, uint64_t since_seq)
{
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.server = up->cfg->server;
    so.curve = up->curve;
    so.timeout_ms = up->cfg->timeout_ms;
    so.keyring = up->ring;
    so.start = PARLEY_START_SEQ;
    so.since_seq = since_seq > 0 ? since_seq : 1;
    so.flags = PARLEY_SUB_NOWAIT;
    parley_sub_destroy(&up->sub);
    if ((up->sub = parley_sub_new(&so)) == NULL)
        return -errno;
    return 0;
}

bool
gw_upstream_subscribed(const gw_upstream_t *up)
{
    return up->sub != NULL;
}

int
gw_upstream_submit(gw_upstream_t *up, gw_job_t *job)
{
    pthread_mutex_lock(&up->lock);
    if (up->queued >= up->cfg->max_jobs) {
        pthread_mutex_unlock(&up->lock);
        return -EAGAIN;
    }
    job->link = NULL;
    if (up->queue_tail != NULL)
        up->queue_tail->link = job;
    else
        up->queue = job;
    up->queue_tail = job;
    up->queued++;
    up->in_flight++;
    pthread_cond_signal(&up->wake);
    pthread_mutex_unlock(&up->lock);
    return 0;
}

size_t
gw_upstream_jobs(const gw_upstream_t *up)
{
    return up->in_flight;
}

int
gw_upstream_publish(gw_upstream_t *up, const void *env, size_t len,
                    uint64_t *request_id)
{
    if (up->pub == NULL)
        return -ENOTSUP;
    return parley_pub_send(up->pub, env, len, request_id);
}

size_t
gw_upstream_waiting(gw_upstream_t *up)
{
    pthread_mutex_lock(&up->lock);
    size_t n = up->queued;
    pthread_mutex_unlock(&up->lock);
    return n;
}

size_t
gw_upstream_fds(const gw_upstream_t *up, struct pollfd *fds, size_t cap)
{
    int raw[4];
    size_t n = 0;
    if (n < cap)
        fds[n++] = (struct pollfd){ .fd = up->done_fd, .events = POLLIN };
    for (int which = 0; which < 2; which++) {
        int k = 0;
        if (which == 0 && up->sub != NULL)
            k = parley_sub_fds(up->sub, raw, 4);
        else if (which == 1 && up->pub != NULL)
            k = parley_pub_fds(up->pub, raw, 4);
        for (int i = 0; i < k && i < 4 && n < cap; i++)
            fds[n++] = (struct pollfd){ .fd = raw[i], .events = POLLIN };
    }
    return n;
}

/* The shorter of two timeouts where -1 is none. */
static int
s_min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

int
gw_upstream_timeout(const gw_upstream_t *up)
{
    int t = -1;
    if (up->sub != NULL)
        t = s_min_timeout(t, parley_sub_timeout(up->sub));
    if (up->pub != NULL)
        t = s_min_timeout(t, parley_pub_timeout(up->pub));
    return t;
}

int
gw_upstream_run(gw_upstream_t *up)
{
    uint64_t count;
    if (read(up->done_fd, &count, sizeof(count)) > 0) {
        pthread_mutex_lock(&up->lock);
        gw_job_t *done = up->finished;
        up->finished = NULL;
        pthread_mutex_unlock(&up->lock);
        /* Oldest first: the list was built newest first. */
        gw_job_t *order = NULL;
        while (done != NULL) {
            gw_job_t *next = done->link;
            done->link = order;
            order = done;
            done = next;
        }
        while (order != NULL) {
            gw_job_t *job = order;
            order = job->link;
            job->link = NULL;
            up->in_flight--;
            up->cb.job_done(up->cb.ctx, job);
        }
    }
    if (up->sub != NULL) {
        const parley_event_t *ev;
        int rc;
        while ((rc = parley_sub_next(up->sub, 0, &ev)) == 1)
            up->cb.event(up->cb.ctx, ev);
        if (rc < 0)
            gw_log_limited(GW_LOGK_UPSTREAM, GW_LOG_WARN,
                           "subscription: %s (%s); it goes on",
                           parley_error_name(rc), parley_strerror(rc));
    }
    while (up->pub != NULL) {
        uint64_t id = 0, seq = 0;
        int rc = parley_pub_recv(up->pub, 0, &id, &seq);
        if (rc == -EAGAIN)
            break;
        if (id == 0) {
            gw_log_limited(GW_LOGK_UPSTREAM, GW_LOG_WARN, "publisher: %s",
                           parley_strerror(rc));
            break;
        }
        up->cb.published(up->cb.ctx, id, rc, seq, parley_pub_detail(up->pub));
    }
    return 0;
}
