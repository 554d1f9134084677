/*
 * gateway.c - the main loop, and what happens when parleyd speaks.
 *
 * Start: a ping tells the head seq; the subscription starts `window`
 * updates before it (so the window is full at once and a stream that
 * resumes after a gateway restart finds its place) and a snapshot loads
 * the state. Then each delivery goes into the window, wakes the streams
 * it matches and, when it is a plain update, into the state; a
 * correction, retraction or gap asks for a new snapshot instead
 * (state.h).
 */
#include "gateway.h"

#include "http.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#ifdef PARLEY_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* Retry a failed ping or snapshot after this long. */
#define S_RETRY_MS 1000

int64_t
gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
gw_ready(const gw_t *gw)
{
    return gw->connected && gw->caught_up && gw_state_loaded(gw->state);
}

void
gw_refresh_state(gw_t *gw)
{
    if (gw->stopping || !gw->started)
        return;
    if (gw->snapshot != NULL) {
        gw->refresh_wanted = true; /* after the one under way */
        return;
    }
    gw_job_t *job = gw_job_new(GW_JOB_SNAPSHOT);
    if (job == NULL || gw_submit(gw, job, GW_TAG_GATEWAY) < 0) {
        gw_job_free(&job);
        gw->refresh_at = gw_now_ms() + S_RETRY_MS;
        return;
    }
    gw->snapshot = job;
    gw->refresh_wanted = false;
    gw->refresh_at = 0;
}

/* ------------------------------------------------------------- upstream */

/* The log went backwards: parleyd now serves a different log (a wiped
 * or restored state directory). Start over from what it has. */
static void
s_new_log(gw_t *gw, uint64_t seq)
{
    gw_log(GW_LOG_WARN,
           "parleyd's log went back from seq %" PRIu64 " to %" PRIu64
           ": a different log; the window and the state start again",
           gw_window_last_seq(gw->window), seq);
    gw_window_restart(gw->window, seq);
    gw_state_clear(gw->state);
    gw_sse_restart(gw);
    gw_refresh_state(gw);
}

/* Look at the state again when an update expires (unix ms). */
static void
s_expiry(gw_t *gw, int64_t expires_at)
{
    int64_t now = parley_now_ms();
    if (expires_at <= now)
        return;
    int64_t at = gw_now_ms() + (expires_at - now) + 50;
    if (gw->refresh_at <= 0 || at < gw->refresh_at)
        gw->refresh_at = at;
}

/* Put an item into the window and tell whoever it concerns. */
static void
s_arrived(gw_t *gw, gw_item_t *it)
{
    if (it->seq <= gw_window_last_seq(gw->window))
        s_new_log(gw, it->seq);
    gw_window_push(gw->window, it);
    gw_sse_notify(gw, it);
    int rc = gw_state_apply(gw->state, it);
    if (rc == 1)
        gw_refresh_state(gw);
    else if (rc == 0 && it->type == GW_ITEM_UPDATE && it->expires_at > 0)
        s_expiry(gw, it->expires_at);
    else if (rc < 0)
        gw_log(GW_LOG_ERROR, "state: out of memory at seq %" PRIu64, it->seq);
}

static void
s_event(void *ctx, const parley_event_t *ev)
{
    gw_t *gw = ctx;
    gw_item_t *it;
    switch (parley_event_type(ev)) {
    case PARLEY_EVENT_DELIVERY:
        gw->metrics.updates++;
        it = gw_item_update(parley_event_delivery(ev));
        if (it == NULL) {
            gw_log(GW_LOG_ERROR, "update %" PRIu64 " dropped: %s",
                   parley_event_seq(ev), strerror(errno));
            gw_window_skip(gw->window, parley_event_seq(ev));
            return;
        }
        s_arrived(gw, it);
        gw_item_unref(it);
        return;
    case PARLEY_EVENT_GAP:
        gw->metrics.gaps++;
        gw_log(GW_LOG_WARN, "updates %" PRIu64 "-%" PRIu64
                            " are no longer held by parleyd",
               parley_event_seq(ev), parley_event_seq_last(ev));
        if ((it = gw_item_gap(parley_event_seq(ev), parley_event_seq_last(ev)))
            == NULL)
            return;
        s_arrived(gw, it);
        gw_item_unref(it);
        return;
    case PARLEY_EVENT_REJECTED:
        if (parley_event_seq(ev) == 0) {
            /* A checkpoint of the transparency log that did not verify:
             * no update is concerned. */
            gw_log_limited(GW_LOGK_UPSTREAM, GW_LOG_WARN,
                           "a checkpoint of the transparency log was rejected: "
                           "%s", parley_error_name(parley_event_code(ev)));
            return;
        }
        gw->metrics.rejected++;
        gw_log_limited(GW_LOGK_UPSTREAM, GW_LOG_WARN,
                       "update %" PRIu64 " not passed on: %s (check the "
                       "keyring against parleyd's)",
                       parley_event_seq(ev),
                       parley_error_name(parley_event_code(ev)));
        gw_window_skip(gw->window, parley_event_seq(ev));
        return;
    case PARLEY_EVENT_CONNECTED:
        gw->metrics.upstream_connects++;
        gw_log(GW_LOG_INFO, "connected to parleyd at %s",
               parley_event_endpoint(ev));
        /* After a disconnection the state may have moved (expiry). */
        if (gw->metrics.upstream_connects > 1)
            gw_refresh_state(gw);
        gw->connected = true;
        return;
    case PARLEY_EVENT_DISCONNECTED:
        gw->metrics.upstream_disconnects++;
        gw_log(GW_LOG_WARN, "lost parleyd at %s (%s); reconnecting",
               parley_event_endpoint(ev),
               parley_error_name(parley_event_code(ev)));
        gw->connected = false;
        gw->caught_up = false;
        return;
    case PARLEY_EVENT_CAUGHT_UP:
        gw_log(GW_LOG_INFO, "caught up with parleyd at seq %" PRIu64,
               parley_event_seq(ev));
        gw->caught_up = true;
        return;
    case PARLEY_EVENT_LOG_VERIFIED:
        return; /* the keyring names the log, and it checks out */
    case PARLEY_EVENT_LOG_INCONSISTENT:
    case PARLEY_EVENT_LOG_STALE:
        /* The transparency log (docs/transparency.md section 14): the
         * evidence is worth keeping, so it goes into the log whole. */
        gw_log(GW_LOG_ERROR, "transparency log %s at seq %" PRIu64 ":\n%s",
               parley_event_type(ev) == PARLEY_EVENT_LOG_STALE ? "stale"
                                                               : "INCONSISTENT",
               parley_event_seq(ev),
               parley_event_evidence(ev) != NULL ? parley_event_evidence(ev)
                                                 : "(no evidence)");
        return;
    }
}

/* The answer to the start ping: subscribe from a window before the head. */
static void
s_started(gw_t *gw, const gw_job_t *job)
{
    if (job->rc < 0) {
        gw_log_limited(GW_LOGK_UPSTREAM, GW_LOG_WARN,
                       "parleyd does not answer (%s); trying again",
                       parley_strerror(job->rc));
        gw->ping_at = gw_now_ms() + S_RETRY_MS;
        return;
    }
    uint64_t since = job->seq >= gw->cfg->window ? job->seq - gw->cfg->window + 1 : 1;
    if (since < job->first_seq)
        since = job->first_seq;
    int rc = gw_upstream_subscribe(gw->up, since);
    if (rc < 0) {
        gw_log(GW_LOG_ERROR, "cannot subscribe: %s; trying again",
               parley_strerror(rc));
        gw->ping_at = gw_now_ms() + S_RETRY_MS;
        return;
    }
    gw_window_restart(gw->window, since);
    gw->started = true;
    gw_log(GW_LOG_INFO, "parleyd holds seqs %" PRIu64 "-%" PRIu64
                        "; the window starts at %" PRIu64,
           job->first_seq, job->seq, since);
    gw_refresh_state(gw);
}

/* A snapshot came back. */
static void
s_snapshot(gw_t *gw, gw_job_t *job)
{
    gw->snapshot = NULL;
    gw->last_refresh = gw_now_ms();
    if (job->rc < 0) {
        gw->metrics.snapshot_errors++;
        gw_log_limited(GW_LOGK_UPSTREAM, GW_LOG_WARN,
                       "state snapshot failed: %s; trying again",
                       parley_strerror(job->rc));
        gw->refresh_at = gw_now_ms() + S_RETRY_MS;
        return;
    }
    gw->metrics.snapshots++;
    size_t n = job->n_cells;
    job->n_cells = 0;
    int rc = gw_state_install(gw->state, &job->cells, n, job->seq, gw->window);
    if (rc < 0) {
        gw_log(GW_LOG_ERROR, "state: out of memory loading a snapshot");
        gw->refresh_at = gw_now_ms() + S_RETRY_MS;
        return;
    }
    gw_log(GW_LOG_DEBUG, "state loaded as of seq %" PRIu64 ": %zu cells",
           job->seq, gw_state_cells(gw->state));
    gw_sse_state(gw);
    if (rc == 1 || gw->refresh_wanted) {
        gw_refresh_state(gw);
        return;
    }
    /* The next update to expire leaves the state then: look again. */
    int64_t next = gw_state_next_expiry(gw->state, parley_now_ms());
    if (next > 0)
        s_expiry(gw, next);
}

static void
s_job_done(void *ctx, gw_job_t *job)
{
    gw_t *gw = ctx;
    if (job->tag == GW_TAG_HTTP) {
        gw_http_job_done(gw, job);
        return;
    }
    if (job->tag == GW_TAG_STREAM) {
        gw_sse_job_done(gw, job);
        return;
    }
    if (!gw->stopping) {
        if (job->type == GW_JOB_PING)
            s_started(gw, job);
        else if (job->type == GW_JOB_SNAPSHOT)
            s_snapshot(gw, job);
    } else if (job == gw->snapshot) {
        gw->snapshot = NULL;
    }
    gw_job_free(&job);
}

static void
s_published(void *ctx, uint64_t request_id, int rc, uint64_t seq,
            const char *detail)
{
    gw_http_published(ctx, request_id, rc, seq, detail);
}

int
gw_submit(gw_t *gw, gw_job_t *job, gw_tag_t tag)
{
    job->tag = tag;
    return gw_upstream_submit(gw->up, job);
}

/* --------------------------------------------------------------- loop */

/* The earlier of a deadline and t (-1: none). */
static int64_t
s_earlier(int64_t t, int64_t deadline)
{
    if (deadline <= 0)
        return t;
    return t < 0 || deadline < t ? deadline : t;
}

#ifdef PARLEY_HAVE_SYSTEMD
static int64_t s_watchdog_every; /* ms, 0: no watchdog */
static int64_t s_watchdog_at;
#endif

/* Timers of the loop: returns the next deadline (monotonic ms), or -1. */
static int64_t
s_timers(gw_t *gw, int64_t now)
{
    int64_t next = -1;
    if (!gw->started && !gw->stopping) {
        if (gw->ping_at <= now && gw->ping_at >= 0) {
            gw_job_t *job = gw_job_new(GW_JOB_PING);
            if (job != NULL && gw_submit(gw, job, GW_TAG_GATEWAY) == 0)
                gw->ping_at = -1; /* until it answers */
            else
                gw_job_free(&job);
        }
        next = s_earlier(next, gw->ping_at);
    }
    if (gw->refresh_at > 0 && gw->refresh_at <= now)
        gw_refresh_state(gw);
    next = s_earlier(next, gw->refresh_at);
    next = s_earlier(next, gw_http_deadlines(gw, now));
    if (!gw->stopping)
        next = s_earlier(next, gw_sse_keepalive(gw, now));
#ifdef PARLEY_HAVE_SYSTEMD
    if (s_watchdog_every > 0) {
        if (now >= s_watchdog_at) {
            sd_notify(0, "WATCHDOG=1");
            s_watchdog_at = now + s_watchdog_every;
        }
        next = s_earlier(next, s_watchdog_at);
    }
#endif
    return next;
}

/* One turn: everything ready, then sleep until something is. */
static int
s_turn(gw_t *gw, int sigfd, int max_wait_ms)
{
    struct pollfd fds[16];
    gw_upstream_run(gw->up);
    int64_t now = gw_now_ms();
    int64_t next = s_timers(gw, now);
    MHD_run(gw->mhd);

    size_t n = 0;
    const union MHD_DaemonInfo *ep =
        MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    fds[n++] = (struct pollfd){ .fd = ep->epoll_fd, .events = POLLIN };
    if (sigfd >= 0)
        fds[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
    n += gw_upstream_fds(gw->up, fds + n, 16 - n);

    MHD_UNSIGNED_LONG_LONG mt;
    int timeout = -1;
    if (MHD_get_timeout(gw->mhd, &mt) == MHD_YES)
        timeout = mt > INT32_MAX ? INT32_MAX : (int)mt;
    int up = gw_upstream_timeout(gw->up);
    if (up >= 0 && (timeout < 0 || up < timeout))
        timeout = up;
    if (next >= 0) {
        int64_t until = next - now;
        if (until < 0)
            until = 0;
        if (timeout < 0 || until < timeout)
            timeout = (int)until;
    }
    if (max_wait_ms >= 0 && (timeout < 0 || timeout > max_wait_ms))
        timeout = max_wait_ms;
    if (poll(fds, n, timeout) < 0 && errno != EINTR)
        return -errno;
    if (sigfd >= 0 && (fds[1].revents & POLLIN)) {
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            if (si.ssi_signo == SIGHUP) {
                gw_log(GW_LOG_INFO, "SIGHUP: nothing to reload (restart the "
                                    "gateway to read a new keyring; event "
                                    "streams resume without a gap)");
                continue;
            }
            gw_log(GW_LOG_INFO, "signal %u: stopping", si.ssi_signo);
            return 1;
        }
    }
    return 0;
}

/* Close what is open, letting streams and waiting requests finish. */
static void
s_stop(gw_t *gw)
{
    gw->stopping = true;
#ifdef PARLEY_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    gw_sse_close_all(gw);
    gw_http_abandon(gw);
    /* Every job back to its owner (answered or cancelled). */
    gw_upstream_destroy(&gw->up);
    /* Let libmicrohttpd write the last answers and stream ends. */
    int64_t until = gw_now_ms() + 1000;
    while (gw_now_ms() < until && gw->sse_clients > 0) {
        MHD_run(gw->mhd);
        const union MHD_DaemonInfo *ep =
            MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        struct pollfd pfd = { .fd = ep->epoll_fd, .events = POLLIN };
        poll(&pfd, 1, 50);
    }
    MHD_run(gw->mhd);
}

int
gw_run(gw_t *gw, int sigfd)
{
    gw_upstream_cb_t cb = { .ctx = gw, .event = s_event, .job_done = s_job_done,
                            .published = s_published };
    int rc;
    gw->up = gw_upstream_new(gw->cfg, gw->ring, &cb, &rc);
    if (gw->up == NULL) {
        gw_log(GW_LOG_ERROR, "cannot start the parleyd side: %s",
               parley_strerror(rc));
        return rc;
    }
#ifdef PARLEY_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        s_watchdog_every = (int64_t)(usec / 2000);
    sd_notifyf(0, "READY=1\nSTATUS=serving http on port %u", gw->port);
#endif
    gw->ping_at = 0;
    while ((rc = s_turn(gw, sigfd, -1)) == 0) {
    }
    s_stop(gw);
    return rc < 0 ? rc : 0;
}
