/*
 * sse.c - GET /v1/events: Server-Sent Events, one stream per client.
 *
 * A stream is a reader over the window: it remembers the seq it has
 * accounted for (after: every matching update up to it was sent) and
 * the window position it looks at next. Each update event carries
 * "id: SEQ", so a browser that reconnects sends Last-Event-ID and the
 * new stream starts right after it: no gap and no repeat, also on
 * another gateway or after a restart. Where the window does not reach
 * back that far (a long absence, a gateway that just started), the
 * stream first replays the missing range from parleyd in pages, on a
 * worker, then continues from the window; what parleyd no longer holds
 * becomes a "gap" event whose id is the last seq of the gap.
 *
 * A stream with nothing to send is suspended; a new update wakes only
 * the streams it matches. Keep-alive comments go out on idle streams
 * every sse_keepalive seconds, with an "id:" field that moves the
 * browser's Last-Event-ID past the updates it did not want, so that a
 * narrow filter resumes without replaying them.
 */
#include "http.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replay pages for a stream behind the window. */
#define S_REPLAY_ITEMS 256
#define S_REPLAY_BYTES (256 * 1024)
/* The block libmicrohttpd allocates with each stream's response; used
 * only for HTTP/1.0 clients (HTTP/1.1 streams are chunked from the
 * connection's own pool). */
#define S_BLOCK 1024

typedef struct gw_sse {
    gw_t *gw;
    struct MHD_Connection *conn;
    gw_filter_t filter;
    uint64_t after;         /* every matching update up to it is sent */
    uint64_t pos;           /* the window position to look at next */
    gw_item_t *cur;         /* the frame being written (a reference) */
    size_t off;             /* bytes of cur written */
    char note[96];          /* a short frame being written */
    size_t note_len, note_off;
    bool suspended;
    bool keepalive_due;
    bool state_due;
    bool closing;           /* end the stream after what is in hand */
    bool replaying;         /* catching up from parleyd up to replay_to */
    uint64_t replay_to;
    bool job_out;           /* a replay page is being fetched */
    bool page;              /* a fetched page is in hand: */
    gw_item_t **backlog;    /* its items being sent */
    size_t n_backlog, i_backlog;
    uint64_t backlog_next;  /* the first seq the page did not cover */
    struct gw_sse *prev, *next;
} gw_sse_t;

static void
s_resume(gw_sse_t *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static void
s_note(gw_sse_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Put a short frame in hand. */
static void
s_note(gw_sse_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->note, sizeof(s->note), fmt, ap);
    va_end(ap);
    s->note_len = n < 0 ? 0 : (size_t)n < sizeof(s->note) ? (size_t)n
                                                          : sizeof(s->note) - 1;
    s->note_off = 0;
}

static void
s_backlog_free(gw_sse_t *s)
{
    for (size_t i = s->i_backlog; i < s->n_backlog; i++)
        gw_item_unref(s->backlog[i]);
    free(s->backlog);
    s->backlog = NULL;
    s->n_backlog = s->i_backlog = 0;
}

/* Ask parleyd for the next page of the range being replayed. */
static bool
s_fetch(gw_sse_t *s)
{
    gw_t *gw = s->gw;
    gw_job_t *job = gw_job_new(GW_JOB_REPLAY);
    if (job == NULL || gw_filter_copy(&job->filter, &s->filter) < 0) {
        gw_job_free(&job);
        return false;
    }
    job->from = s->after + 1;
    job->to = s->replay_to;
    job->max_items = S_REPLAY_ITEMS;
    job->max_bytes = S_REPLAY_BYTES;
    job->owner = s;
    if (gw_submit(gw, job, GW_TAG_STREAM) < 0) {
        gw->metrics.jobs_refused++;
        gw_job_free(&job);
        return false;
    }
    gw->metrics.replays++;
    gw->metrics.sse_replays++;
    s->job_out = true;
    return true;
}

/*
 * The next item to send (a reference), or NULL: with *wait when a page
 * from parleyd is on its way, else because the stream is caught up.
 */
static gw_item_t *
s_next(gw_sse_t *s, bool *wait)
{
    gw_window_t *w = s->gw->window;
    *wait = false;
    if (s->replaying) {
        while (s->i_backlog < s->n_backlog) {
            gw_item_t *it = s->backlog[s->i_backlog];
            s->backlog[s->i_backlog++] = NULL;
            if (it->seq_last <= s->after) {
                gw_item_unref(it);
                continue;
            }
            s->after = it->seq_last;
            return it; /* parleyd filtered it; gaps go to everyone */
        }
        if (s->page) {
            /* The page covered its range, also seqs that did not match. */
            s->page = false;
            s_backlog_free(s);
            if (s->backlog_next > s->after + 1)
                s->after = s->backlog_next - 1;
        }
        if (s->after < s->replay_to) {
            if (s->job_out || s_fetch(s)) {
                *wait = true;
                return NULL;
            }
            /* No worker free for it: the client will come back. */
            s_note(s, ": too busy to replay, reconnect later\n\n");
            s->closing = true;
            return NULL;
        }
        s->replaying = false;
        s->pos = gw_window_pos_after(w, s->after);
    }
    if (s->after + 1 < gw_window_covered_from(w)) {
        s->replaying = true;
        s->replay_to = gw_window_covered_from(w) - 1;
        return s_next(s, wait);
    }
    if (s->pos < gw_window_first_pos(w))
        s->pos = gw_window_pos_after(w, s->after);
    while (s->pos < gw_window_end_pos(w)) {
        gw_item_t *it = gw_window_at(w, s->pos++);
        if (it->seq_last <= s->after)
            continue;
        s->after = it->seq_last;
        if (gw_filter_match(&s->filter, it)) {
            gw_item_ref(it);
            return it;
        }
    }
    if (gw_window_last_seq(w) > s->after)
        s->after = gw_window_last_seq(w);
    return NULL;
}

/* Copy what is left of src (len bytes, off done) into buf. */
static size_t
s_copy(char *buf, size_t room, const char *src, size_t len, size_t *off)
{
    size_t n = len - *off < room ? len - *off : room;
    memcpy(buf, src + *off, n);
    *off += n;
    return n;
}

static ssize_t
s_read(void *cls, uint64_t at, char *buf, size_t max)
{
    gw_sse_t *s = cls;
    gw_metrics_t *m = &s->gw->metrics;
    size_t n = 0;
    (void)at;
    while (n < max) {
        if (s->note_off < s->note_len) {
            n += s_copy(buf + n, max - n, s->note, s->note_len, &s->note_off);
            continue;
        }
        if (s->cur != NULL) {
            n += s_copy(buf + n, max - n, s->cur->frame, s->cur->frame_len,
                        &s->off);
            if (s->off == s->cur->frame_len) {
                gw_item_unref(s->cur);
                s->cur = NULL;
                s->off = 0;
            }
            continue;
        }
        if (s->closing)
            break;
        bool wait;
        gw_item_t *it = s_next(s, &wait);
        if (it != NULL) {
            s->cur = it;
            s->off = 0;
            if (it->type == GW_ITEM_UPDATE)
                m->sse_events++;
            else
                m->sse_gaps++;
            continue;
        }
        if (wait)
            break; /* a page from parleyd first */
        if (s->closing)
            continue; /* the note in hand, then the end */
        if (s->state_due) {
            s->state_due = false;
            s_note(s, "event: state\ndata: {\"seq\":%" PRIu64 "}\n\n",
                   gw_state_seq(s->gw->state));
            continue;
        }
        if (s->keepalive_due) {
            s->keepalive_due = false;
            m->sse_keepalives++;
            if (s->after > 0)
                s_note(s, ": keep-alive\nid: %" PRIu64 "\n\n", s->after);
            else
                s_note(s, ": keep-alive\n\n");
            continue;
        }
        break;
    }
    m->sse_bytes += n;
    if (n > 0)
        return (ssize_t)n;
    if (s->closing && s->note_off >= s->note_len && s->cur == NULL)
        return MHD_CONTENT_READER_END_OF_STREAM;
    s->suspended = true;
    MHD_suspend_connection(s->conn);
    return 0;
}

/* The response is gone with its connection. */
static void
s_free(void *cls)
{
    gw_sse_t *s = cls;
    gw_t *gw = s->gw;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        gw->sse_head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    gw->sse_clients--;
    gw_item_unref(s->cur);
    s_backlog_free(s);
    gw_filter_free(&s->filter);
    free(s);
}

enum MHD_Result
gw_sse_open(gw_t *gw, struct MHD_Connection *c, gw_query_t *q, bool has_last,
            uint64_t last)
{
    if (gw->sse_clients >= gw->cfg->max_sse_clients || gw->stopping) {
        gw->metrics.sse_refused++;
        gw_query_free(q);
        gw_log_limited(GW_LOGK_SSE, GW_LOG_WARN,
                       "event stream refused: max_sse_clients (%u) open",
                       gw->cfg->max_sse_clients);
        return gw_http_error(gw, c, 503, "busy",
                             "too many event streams; retry later");
    }
    gw_sse_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        gw_query_free(q);
        return gw_http_error(gw, c, 500, "no_memory", "out of memory");
    }
    s->gw = gw;
    s->conn = c;
    s->filter = q->filter; /* taken over */
    memset(&q->filter, 0, sizeof(q->filter));
    if (has_last)
        s->after = last;
    else if (q->has_since)
        s->after = q->since - 1;
    else
        s->after = gw_window_last_seq(gw->window); /* live from now */
    s->pos = gw_window_pos_after(gw->window, s->after);
    gw_query_free(q);
    s_note(s, "retry: %u\n\n", gw->cfg->sse_retry_ms);

    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, S_BLOCK, s_read, s, s_free);
    if (r == NULL) {
        gw_filter_free(&s->filter);
        free(s);
        return MHD_NO;
    }
    /* From here s belongs to the response. */
    s->next = gw->sse_head;
    if (gw->sse_head != NULL)
        gw->sse_head->prev = s;
    gw->sse_head = s;
    gw->sse_clients++;
    gw->metrics.sse_opened++;
    if (MHD_add_response_header(r, "Content-Type", "text/event-stream")
            != MHD_YES
        || MHD_add_response_header(r, "X-Accel-Buffering", "no") != MHD_YES
        || gw_http_headers(gw, r, true) < 0) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return gw_http_queue(gw, c, 200, r);
}

void
gw_sse_notify(gw_t *gw, const gw_item_t *it)
{
    uint64_t end = gw_window_end_pos(gw->window);
    for (gw_sse_t *s = gw->sse_head; s != NULL; s = s->next) {
        if (!s->suspended || s->replaying)
            continue;
        if (gw_filter_match(&s->filter, it)) {
            s_resume(s);
        } else if (s->pos + 1 == end) {
            /* Caught up before it, and it is not wanted: step over it
             * here, so that an idle narrow stream never falls behind. */
            s->pos = end;
            if (it->seq_last > s->after)
                s->after = it->seq_last;
        }
    }
}

void
gw_sse_state(gw_t *gw)
{
    for (gw_sse_t *s = gw->sse_head; s != NULL; s = s->next) {
        s->state_due = true;
        if (!s->job_out)
            s_resume(s);
    }
}

void
gw_sse_restart(gw_t *gw)
{
    uint64_t from = gw_window_covered_from(gw->window);
    for (gw_sse_t *s = gw->sse_head; s != NULL; s = s->next) {
        if (s->job_out)
            continue; /* its page is about the old log: sent, then this */
        s_backlog_free(s);
        s->page = false;
        s->replaying = false;
        s->after = from - 1;
        s->pos = gw_window_first_pos(gw->window);
        s_resume(s);
    }
}

int64_t
gw_sse_keepalive(gw_t *gw, int64_t now)
{
    if (gw->keepalive_at == 0)
        gw->keepalive_at = now + (int64_t)gw->cfg->sse_keepalive * 1000;
    if (now < gw->keepalive_at)
        return gw->keepalive_at;
    for (gw_sse_t *s = gw->sse_head; s != NULL; s = s->next)
        if (s->suspended && !s->job_out) {
            s->keepalive_due = true;
            s_resume(s);
        }
    gw->keepalive_at = now + (int64_t)gw->cfg->sse_keepalive * 1000;
    return gw->keepalive_at;
}

void
gw_sse_job_done(gw_t *gw, gw_job_t *job)
{
    gw_sse_t *s = job->owner;
    s->job_out = false;
    if (job->rc < 0) {
        gw->metrics.replay_errors++;
        gw_log_limited(GW_LOGK_SSE, GW_LOG_WARN,
                       "event stream: replay from parleyd failed: %s; the "
                       "client will reconnect",
                       parley_strerror(job->rc));
        s_note(s, ": parleyd did not answer, reconnect\n\n");
        s->closing = true;
    } else {
        s_backlog_free(s);
        s->page = true;
        s->backlog = job->items;
        s->n_backlog = job->n_items;
        s->i_backlog = 0;
        /* A finished range covers everything asked for, also seqs
         * above the daemon's head when it was asked. */
        s->backlog_next = job->done ? s->replay_to + 1 : job->next;
        job->items = NULL;
        job->n_items = 0;
    }
    gw_job_free(&job);
    s_resume(s);
}

void
gw_sse_close_all(gw_t *gw)
{
    for (gw_sse_t *s = gw->sse_head; s != NULL; s = s->next) {
        s->closing = true;
        if (!s->job_out)
            s_resume(s);
    }
}
