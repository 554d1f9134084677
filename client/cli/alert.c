/*
 * alert.c - retries, dead letters and the cursor of parley sub (alert.h).
 */
#include "alert.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t
cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
cli_alerts_init(cli_alerts_t *a, const cli_common_t *c,
                const cli_handler_ops_t *ops, void *handler, int max_jobs,
                const cli_retry_t *retry, cli_cursor_t *cursor,
                const char *dead_path)
{
    memset(a, 0, sizeof(*a));
    a->c = c;
    a->ops = ops;
    a->handler = handler;
    a->max_jobs = max_jobs;
    a->retry = *retry;
    a->cursor = cursor;
    a->dead_path = dead_path;
    a->q_cap = CLI_ALERT_QUEUE_MAX;
    a->slots = calloc((size_t)max_jobs, sizeof(*a->slots));
    a->queue = calloc(a->q_cap, sizeof(*a->queue));
    if (a->slots == NULL || a->queue == NULL) {
        cli_alerts_free(a);
        return -ENOMEM;
    }
    a->start_seq = cursor != NULL ? cursor->seq : 0;
    a->low_water = a->start_seq;
    a->max_seen = a->start_seq;
    return 0;
}

void
cli_alerts_free(cli_alerts_t *a)
{
    for (int i = 0; a->slots != NULL && i < a->max_jobs; i++)
        parley_delivery_destroy(&a->slots[i].d);
    for (size_t i = 0; a->queue != NULL && i < a->q_len; i++)
        parley_delivery_destroy(&a->queue[(a->q_head + i) % a->q_cap]);
    free(a->slots);
    free(a->queue);
    a->slots = NULL;
    a->queue = NULL;
    a->q_len = 0;
}

int
cli_alerts_push(cli_alerts_t *a, const parley_delivery_t *d)
{
    if (a->q_len == a->q_cap)
        return -ENOBUFS;
    parley_delivery_t *copy = parley_delivery_dup(d);
    if (copy == NULL)
        return -ENOMEM;
    a->queue[(a->q_head + a->q_len) % a->q_cap] = copy;
    a->q_len++;
    a->stats.received++;
    if (parley_delivery_seq(d) > a->max_seen)
        a->max_seen = parley_delivery_seq(d);
    return 0;
}

void
cli_alerts_skip(cli_alerts_t *a, uint64_t seq)
{
    if (seq > a->max_seen)
        a->max_seen = seq;
}

int
cli_alerts_full(const cli_alerts_t *a)
{
    return a->q_len == a->q_cap;
}

int
cli_alerts_idle(const cli_alerts_t *a)
{
    if (a->q_len > 0)
        return 0;
    for (int i = 0; i < a->max_jobs; i++)
        if (a->slots[i].d != NULL)
            return 0;
    return 1;
}

int
cli_alerts_running(const cli_alerts_t *a)
{
    for (int i = 0; i < a->max_jobs; i++)
        if (a->slots[i].running)
            return 1;
    return 0;
}

/* Everything at or below this seq is done. */
static uint64_t
s_low_water(const cli_alerts_t *a)
{
    uint64_t lowest = UINT64_MAX;
    for (int i = 0; i < a->max_jobs; i++)
        if (a->slots[i].d != NULL && a->slots[i].seq < lowest)
            lowest = a->slots[i].seq;
    if (a->q_len > 0) {
        uint64_t s = parley_delivery_seq(a->queue[a->q_head]);
        if (s < lowest)
            lowest = s;
    }
    return lowest != UINT64_MAX ? lowest - 1 : a->max_seen;
}

/* Move the cursor up to what is done. */
static void
s_commit(cli_alerts_t *a)
{
    uint64_t lw = s_low_water(a);
    char err[512];
    if (lw <= a->low_water)
        return;
    a->low_water = lw;
    if (a->cursor == NULL)
        return;
    if (cli_cursor_write(a->cursor, lw, err, sizeof(err)) < 0) {
        /* the old value stays: a restart repeats a few updates */
        if (!a->failed_write)
            cli_error("cursor not written: %s", err);
        a->failed_write = 1;
    }
}

uint64_t
cli_alerts_lag(const cli_alerts_t *a, uint64_t head)
{
    uint64_t top = head > a->max_seen ? head : a->max_seen;
    uint64_t lw = s_low_water(a);
    return top > lw ? top - lw : 0;
}

/*
 * Append the dead letter of a job to the dead-letter file, fsync'd.
 * Returns 0 or -errno.
 */
static int
s_dead_letter(cli_alerts_t *a, const cli_job_t *j)
{
    char *update = parley_delivery_to_json(j->d);
    json_error_t jerr;
    json_t *u = update != NULL ? json_loads(update, 0, &jerr) : NULL;
    free(update);
    json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:s, s:s, s:o?}", "seq",
                          (json_int_t)j->seq, "key", j->key, "attempts",
                          (json_int_t)j->attempts, "first_attempt_at",
                          (json_int_t)j->first_wall_ms, "dead_lettered_at",
                          (json_int_t)parley_now_ms(), "error", j->error,
                          "handler", a->ops->name(a->handler), "update", u);
    char *line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)
                           : NULL;
    json_decref(o);
    if (line == NULL)
        return -ENOMEM;
    size_t len = strlen(line);
    line[len] = '\n'; /* the NUL is not written */
    int rc = 0;
    int fd = open(a->dead_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0600);
    if (fd < 0)
        rc = -errno;
    for (size_t off = 0; rc == 0 && off < len + 1;) {
        ssize_t w = write(fd, line + off, len + 1 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -errno;
        else
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    free(line);
    return rc;
}

/* A job is done (handled or dead-lettered): free its slot. */
static void
s_job_free(cli_job_t *j)
{
    parley_delivery_destroy(&j->d);
    memset(j, 0, sizeof(*j));
}

/* Seconds with one decimal, for messages. */
static double
s_secs(int64_t ms)
{
    return (double)ms / 1000.0;
}

/*
 * An attempt failed (why in j->error): retry later, or dead-letter the
 * update when the window is over. Returns 1 if the job is done.
 */
static int
s_failed(cli_alerts_t *a, cli_job_t *j, int64_t now, int64_t hint)
{
    a->stats.failed++;
    if (a->stopping) {
        /* not done: the cursor stays below it, a restart tries again */
        cli_warn(a->c, "#%llu: %s", (unsigned long long)j->seq, j->error);
        return 0;
    }
    int64_t next = cli_retry_next(&a->retry, j->attempts, j->first_ms, now,
                                  hint, randombytes_random());
    if (next >= 0) {
        j->next_ms = next;
        cli_warn(a->c, "#%llu: %s; trying again in %.1f s (attempt %u)",
                 (unsigned long long)j->seq, j->error, s_secs(next - now),
                 j->attempts + 1);
        return 0;
    }
    if (a->dead_path == NULL) {
        if (a->retry.window_ms > 0)
            cli_warn(a->c, "#%llu: %s; given up after %u attempts in %.1f s",
                     (unsigned long long)j->seq, j->error, j->attempts,
                     s_secs(now - j->first_ms));
        else
            cli_warn(a->c, "#%llu: %s", (unsigned long long)j->seq, j->error);
        a->stats.dead_lettered++;
        return 1;
    }
    int rc = s_dead_letter(a, j);
    if (rc < 0) {
        /* not written: keep it, and try the handler again a little later */
        cli_error("#%llu: %s; the dead-letter file %s cannot be written "
                  "(%s): keeping the update",
                  (unsigned long long)j->seq, j->error, a->dead_path,
                  strerror(-rc));
        j->next_ms = now + 5000;
        return 0;
    }
    a->stats.dead_lettered++;
    cli_warn(a->c, "#%llu: %s; given up after %u attempt%s: written to %s",
             (unsigned long long)j->seq, j->error, j->attempts,
             j->attempts == 1 ? "" : "s", a->dead_path);
    return 1;
}

/* Start the next attempt of the job in slot i. Returns 1 if the job is
 * done (it could not start, and went to the dead letters). */
static int
s_start(cli_alerts_t *a, int i, int64_t now)
{
    cli_job_t *j = &a->slots[i];
    char err[256] = "";
    if (j->attempts == 0) {
        j->first_ms = now;
        j->first_wall_ms = parley_now_ms();
    } else {
        a->stats.retried++;
    }
    j->attempts++;
    j->next_ms = 0;
    if (a->ops->start(a->handler, i, j, err, sizeof(err)) < 0) {
        snprintf(j->error, sizeof(j->error), "%s",
                 err[0] != '\0' ? err : "could not start");
        return s_failed(a, j, now, 0);
    }
    j->running = 1;
    return 0;
}

int
cli_alerts_step(cli_alerts_t *a)
{
    int64_t now = cli_mono_ms(), next = -1;
    int done = 0, poll_ms = -1;
    for (int i = 0; i < a->max_jobs; i++) {
        cli_job_t *j = &a->slots[i];
        if (j->d == NULL || !j->running)
            continue;
        char err[256] = "";
        int64_t hint = 0;
        int rc = a->ops->poll(a->handler, i, err, sizeof(err), &hint);
        if (rc == 0)
            continue;
        j->running = 0;
        if (rc > 0) {
            a->stats.handled++;
            s_job_free(j);
            done = 1;
            continue;
        }
        snprintf(j->error, sizeof(j->error), "%s",
                 err[0] != '\0' ? err : "failed");
        if (s_failed(a, j, now, hint)) {
            s_job_free(j);
            done = 1;
        }
    }
    for (int i = 0; i < a->max_jobs && !a->stopping; i++) {
        cli_job_t *j = &a->slots[i];
        if (j->d == NULL && a->q_len > 0) {
            j->d = a->queue[a->q_head];
            a->queue[a->q_head] = NULL;
            a->q_head = (a->q_head + 1) % a->q_cap;
            a->q_len--;
            j->seq = parley_delivery_seq(j->d);
            snprintf(j->key, sizeof(j->key), "%s/%llu",
                     a->daemon_id[0] != '\0' ? a->daemon_id : "unknown",
                     (unsigned long long)j->seq);
        } else if (j->d == NULL || j->running || j->next_ms > now) {
            continue;
        }
        if (s_start(a, i, now)) {
            s_job_free(j);
            done = 1;
        }
    }
    if (done)
        s_commit(a);
    for (int i = 0; i < a->max_jobs; i++) {
        const cli_job_t *j = &a->slots[i];
        if (j->d == NULL)
            continue;
        if (j->running) {
            int t = a->ops->timeout(a->handler);
            if (t >= 0 && (poll_ms < 0 || t < poll_ms))
                poll_ms = t;
        } else if (!a->stopping) {
            int64_t left = j->next_ms > now ? j->next_ms - now : 0;
            if (next < 0 || left < next)
                next = left;
        }
    }
    if (poll_ms >= 0 && (next < 0 || poll_ms < next))
        next = poll_ms;
    return next > INT32_MAX ? INT32_MAX : (int)next;
}

void
cli_alerts_stop(cli_alerts_t *a)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    for (int i = 0; i < a->max_jobs; i++)
        if (a->slots[i].running)
            a->ops->stop(a->handler, i);
}

void
cli_alerts_drain(cli_alerts_t *a)
{
    a->stopping = 1;
}

void
cli_alerts_commit(cli_alerts_t *a)
{
    s_commit(a);
}

char *
cli_alerts_stats_json(const cli_alerts_t *a, uint64_t head)
{
    const cli_alert_stats_t *s = &a->stats;
    json_t *o = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "received",
        (json_int_t)s->received, "handled", (json_int_t)s->handled, "retried",
        (json_int_t)s->retried, "failed", (json_int_t)s->failed,
        "dead_lettered", (json_int_t)s->dead_lettered, "gaps",
        (json_int_t)s->gaps, "skipped", (json_int_t)s->skipped, "cursor",
        (json_int_t)a->low_water, "lag", (json_int_t)cli_alerts_lag(a, head),
        "time", (json_int_t)parley_now_ms());
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)
                           : NULL;
    json_decref(o);
    return text;
}

void
cli_alerts_stats_line(const cli_alerts_t *a, uint64_t head, char *buf,
                      size_t cap)
{
    const cli_alert_stats_t *s = &a->stats;
    snprintf(buf, cap,
             "stats: received %llu, handled %llu, retried %llu, failed %llu, "
             "dead-lettered %llu, gaps %llu, skipped %llu, cursor %llu, "
             "lag %llu",
             (unsigned long long)s->received, (unsigned long long)s->handled,
             (unsigned long long)s->retried, (unsigned long long)s->failed,
             (unsigned long long)s->dead_lettered,
             (unsigned long long)s->gaps, (unsigned long long)s->skipped,
             (unsigned long long)a->low_water,
             (unsigned long long)cli_alerts_lag(a, head));
}
