/*
 * query.c - the one-shot calls: ping, stats, snapshot and replay (and
 * their answers as objects).
 *
 * Each request goes to the first endpoint of the list and moves on to the
 * next when one does not answer within the timeout or answers
 * UNAVAILABLE; the first real answer (or refusal) is the result. A replay
 * asks page after page until its range is covered.
 */
#include "logcheck.h"
#include "entries.h"
#include "options.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A call in progress: options, endpoints and the wire of the moment. */
typedef struct {
    parley_call_options_t opt;   /* the caller's options, read */
    int timeout_ms;              /* per request and endpoint */
    parley__endpoints_t eps;     /* where to ask */
    parley__wire_t *wire;        /* connected to eps' current endpoint */
    parley__request_t *req;      /* the request (large: on the heap) */
} s_call_t;

/* Read the options and parse the endpoints. 0 or an error. */
static int
s_call_open(s_call_t *c, const parley_call_options_t *opt)
{
    int rc;
    memset(c, 0, sizeof(*c));
    if ((rc = parley__options_read(opt, sizeof(c->opt), &c->opt)) < 0)
        return rc;
    if (c->opt.n_filters > 0 && c->opt.filters == NULL)
        return PARLEY_EARG;
    if ((c->timeout_ms = parley__options_timeout(c->opt.timeout_ms)) == PARLEY_EARG)
        return PARLEY_EARG;
    if ((rc = parley__endpoints_parse(&c->eps, c->opt.server)) < 0)
        return rc;
    if ((c->req = calloc(1, sizeof(*c->req))) == NULL)
        return -ENOMEM;
    return 0;
}

static void
s_call_close(s_call_t *c)
{
    parley__wire_destroy(&c->wire);
    parley__endpoints_free(&c->eps);
    free(c->req);
    c->req = NULL;
}

/* The keyring's only log policy, as a one-shot call uses it. */
static int
s_call_policy(const s_call_t *c, parley__logpolicy_t *pol)
{
    int rc = parley__keyring_logpolicy(c->opt.keyring, NULL, pol);
    if (rc < 0)
        return PARLEY_EARG;
    pol->max_staleness_ms = 0;
    return 0;
}

/* Is err a reason to ask the next endpoint? */
static int
s_try_next(int err)
{
    return err == PARLEY_ETIMEOUT || err == PARLEY_EUNAVAILABLE;
}

/*
 * Ask c->req of the endpoints in turn, starting with the current one,
 * each at most once. The reply lives in the wire's memory until the next
 * request.
 *
 * Returns:   0, the daemon's reject code, or the last error.
 */
static int
s_call_ask(s_call_t *c, parley__reply_t *reply)
{
    int rc = PARLEY_ETIMEOUT;
    for (size_t tried = 0; tried < c->eps.n; tried++) {
        const char *ep = tried == 0 ? parley__endpoints_current(&c->eps)
                                    : parley__endpoints_next(&c->eps);
        if (c->wire == NULL) {
            if ((c->wire = parley__wire_new(ep, c->opt.curve, &rc)) == NULL)
                return rc;
        } else if (strcmp(parley__wire_server(c->wire), ep) != 0
                   && (rc = parley__wire_switch(c->wire, ep)) < 0) {
            return rc;
        }
        rc = parley__wire_call(c->wire, c->req, c->timeout_ms, reply);
        if (!s_try_next(rc))
            return rc;
    }
    return rc;
}

/*
 * Ask one request of op (no arguments) and turn the reply into the
 * caller's object with make (reply, endpoint that answered, out).
 * Returns 0 with *out set, or an error (*out NULL).
 */
static int
s_call_once(const parley_call_options_t *opt, parley__op_t op,
            int (*make)(const parley__reply_t *, const char *, void *),
            void *out)
{
    s_call_t c;
    parley__reply_t reply;
    int rc = s_call_open(&c, opt);
    if (rc == 0) {
        c.req->op = op;
        rc = s_call_ask(&c, &reply);
    }
    if (rc == 0)
        rc = make(&reply, parley__wire_server(c.wire), out);
    s_call_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ ping */

struct parley_info {
    char *endpoint;           /* the api endpoint that answered */
    char *feed;               /* feed endpoint, wildcard host fixed up */
    uint8_t daemon_id[16];
    uint64_t seq;             /* last assigned seq */
    uint64_t first_seq;       /* oldest seq held, 0 if none */
    char *version;
    uint8_t log_id[16];       /* all zero: none */
    bool catching_up;
    char *storage;            /* "" from a daemon that does not say */
    char *health;
};

void
parley_info_destroy(parley_info_t **info)
{
    if (info == NULL || *info == NULL)
        return;
    free((*info)->endpoint);
    free((*info)->feed);
    free((*info)->version);
    free((*info)->storage);
    free((*info)->health);
    free(*info);
    *info = NULL;
}

/* Make the info object of a PING reply from endpoint. 0 or an error. */
static int
s_info_make(const parley__reply_t *r, const char *endpoint, void *outp)
{
    parley_info_t **out = outp;
    char feed[PARLEY__ENDPOINT_CHARS + 1];
    int rc;
    if (r->type != PARLEY__REPLY_PING || r->feed == NULL)
        return PARLEY_EPROTO;
    if ((rc = parley__feed_endpoint(r->feed, endpoint, feed, sizeof(feed)))
        < 0)
        return rc == -ENAMETOOLONG ? PARLEY_EPROTO : rc;
    parley_info_t *info = calloc(1, sizeof(*info));
    if (info == NULL)
        return -ENOMEM;
    info->endpoint = strdup(endpoint);
    info->feed = strdup(feed);
    info->version = strdup(r->version != NULL ? r->version : "");
    info->storage = strdup(r->storage != NULL ? r->storage : "");
    info->health = strdup(r->health != NULL ? r->health : "");
    if (info->endpoint == NULL || info->feed == NULL || info->version == NULL
        || info->storage == NULL || info->health == NULL) {
        parley_info_destroy(&info);
        return -ENOMEM;
    }
    memcpy(info->daemon_id, r->daemon_id, sizeof(info->daemon_id));
    info->seq = r->seq;
    info->first_seq = r->first_seq;
    memcpy(info->log_id, r->log_id, sizeof(info->log_id));
    info->catching_up = r->catching_up;
    *out = info;
    return 0;
}

int
parley_ping(const parley_call_options_t *opt, parley_info_t **out)
{
    if (out == NULL)
        return PARLEY_EARG;
    *out = NULL;
    return s_call_once(opt, PARLEY__OP_PING, s_info_make, out);
}

const char *
parley_info_endpoint(const parley_info_t *info)
{
    return info != NULL ? info->endpoint : NULL;
}

const char *
parley_info_feed(const parley_info_t *info)
{
    return info != NULL ? info->feed : NULL;
}

const uint8_t *
parley_info_daemon_id(const parley_info_t *info)
{
    return info != NULL ? info->daemon_id : NULL;
}

const uint8_t *
parley_info_log_id(const parley_info_t *info)
{
    return info != NULL && parley__log_id_set(info->log_id) ? info->log_id
                                                            : NULL;
}

int
parley_info_catching_up(const parley_info_t *info)
{
    return info != NULL && info->catching_up;
}

const char *
parley_info_storage(const parley_info_t *info)
{
    return info != NULL ? info->storage : NULL;
}

const char *
parley_info_health(const parley_info_t *info)
{
    return info != NULL ? info->health : NULL;
}

uint64_t
parley_info_seq(const parley_info_t *info)
{
    return info != NULL ? info->seq : 0;
}

uint64_t
parley_info_first_seq(const parley_info_t *info)
{
    return info != NULL ? info->first_seq : 0;
}

const char *
parley_info_version(const parley_info_t *info)
{
    return info != NULL ? info->version : NULL;
}

/* ----------------------------------------------------------------- stats */

struct parley_stats {
    char *endpoint;           /* the api endpoint that answered */
    size_t n;                 /* counters */
    char **names;             /* n heap strings */
    uint64_t *values;         /* n values */
};

void
parley_stats_destroy(parley_stats_t **s)
{
    if (s == NULL || *s == NULL)
        return;
    for (size_t i = 0; i < (*s)->n; i++)
        free((*s)->names[i]);
    free((*s)->names);
    free((*s)->values);
    free((*s)->endpoint);
    free(*s);
    *s = NULL;
}

/* Make the stats object of a STATS reply. 0 or an error. */
static int
s_stats_make(const parley__reply_t *r, const char *endpoint, void *outp)
{
    parley_stats_t **out = outp;
    if (r->type != PARLEY__REPLY_STATS)
        return PARLEY_EPROTO;
    parley_stats_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    size_t n = r->n_stats;
    s->endpoint = strdup(endpoint);
    s->names = calloc(n > 0 ? n : 1, sizeof(*s->names));
    s->values = calloc(n > 0 ? n : 1, sizeof(*s->values));
    if (s->endpoint == NULL || s->names == NULL || s->values == NULL) {
        parley_stats_destroy(&s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++, s->n++) {
        s->names[i] = strdup(r->stats[i].name != NULL ? r->stats[i].name : "");
        if (s->names[i] == NULL) {
            parley_stats_destroy(&s);
            return -ENOMEM;
        }
        s->values[i] = r->stats[i].value;
    }
    *out = s;
    return 0;
}

int
parley_stats(const parley_call_options_t *opt, parley_stats_t **out)
{
    if (out == NULL)
        return PARLEY_EARG;
    *out = NULL;
    return s_call_once(opt, PARLEY__OP_STATS, s_stats_make, out);
}

const char *
parley_stats_endpoint(const parley_stats_t *s)
{
    return s != NULL ? s->endpoint : NULL;
}

size_t
parley_stats_count(const parley_stats_t *s)
{
    return s != NULL ? s->n : 0;
}

const char *
parley_stats_name(const parley_stats_t *s, size_t i)
{
    return s != NULL && i < s->n ? s->names[i] : NULL;
}

uint64_t
parley_stats_value(const parley_stats_t *s, size_t i)
{
    return s != NULL && i < s->n ? s->values[i] : 0;
}

int
parley_stats_get(const parley_stats_t *s, const char *name, uint64_t *value)
{
    if (s == NULL || name == NULL)
        return PARLEY_EARG;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) {
            if (value != NULL)
                *value = s->values[i];
            return 0;
        }
    return -ENOENT;
}

/* ------------------------------------------------------ snapshot, replay */

/* Deliveries asked for per replay page (the daemon caps it at 1000). */
#define S_PAGE_LIMIT 1000

struct parley_query {
    s_call_t call;               /* options, endpoints, wire, request */
    parley__filterbuf_t *filters;/* owned copies (n_filters) */
    size_t n_filters;
    bool replay;                 /* a replay (else a snapshot) */
    uint64_t from;               /* replay: the next page starts here */
    uint64_t to;                 /* replay: the last seq (0: not known yet) */
    bool first;                  /* replay: the first page is yet to come */
    bool done;                   /* no page left to ask for */
    uint64_t seq;                /* parley_query_seq() */
    uint8_t *page;               /* the current page's Delivery bytes */
    parley__bytes_t *items;      /* ... one range per delivery */
    size_t n_items, next;        /* items in the page, the next to go */
    uint64_t gap_from, gap_to;   /* a GAP to hand out first (from > 0) */
    parley__entries_t entries;   /* snapshot: the state's entries */
    parley_event_t ev;           /* what parley_query_next() hands out */
    parley__logcheck_t *lc;      /* the log's proofs of each page, or NULL */
    parley__logcheck_event_t alarms[8]; /* its alarms, handed out first */
    size_t n_alarms;
    parley__logcheck_event_t verified; /* its last LOG_VERIFIED, handed
                                    out at the end (type 0: none) */
};

void
parley_query_destroy(parley_query_t **q)
{
    if (q == NULL || *q == NULL)
        return;
    parley_query_t *self = *q;
    s_call_close(&self->call);
    parley__logcheck_destroy(&self->lc);
    for (size_t i = 0; i < self->n_alarms; i++)
        parley__logcheck_event_clear(&self->alarms[i]);
    parley__logcheck_event_clear(&self->verified);
    parley__event_release(&self->ev);
    parley__entries_free(&self->entries);
    free(self->filters);
    free(self->page);
    free(self->items);
    free(self);
    *q = NULL;
}

/* Keep a copy of a reply's deliveries as the current page. 0 or -ENOMEM. */
static int
s_page_keep(parley_query_t *q, const parley__reply_t *r)
{
    size_t bytes = 0;
    for (size_t i = 0; i < r->n_deliveries; i++)
        bytes += r->deliveries[i].len;
    free(q->page);
    free(q->items);
    q->page = malloc(bytes > 0 ? bytes : 1);
    q->items = calloc(r->n_deliveries > 0 ? r->n_deliveries : 1,
                      sizeof(*q->items));
    q->n_items = q->next = 0;
    if (q->page == NULL || q->items == NULL)
        return -ENOMEM;
    for (size_t i = 0, off = 0; i < r->n_deliveries; i++) {
        memcpy(q->page + off, r->deliveries[i].data, r->deliveries[i].len);
        q->items[i] = (parley__bytes_t){ q->page + off, r->deliveries[i].len };
        off += r->deliveries[i].len;
    }
    q->n_items = r->n_deliveries;
    return 0;
}

/* How long a page waits for a checkpoint that covers it. */
#define S_CHECKPOINT_POLL_MS 100

/* Take the verifier's events: alarms to hand out first, the last
 * LOG_VERIFIED for the end. */
static void
s_log_events(parley_query_t *q)
{
    parley__logcheck_event_t e;
    while (parley__logcheck_next(q->lc, &e)) {
        if (e.type == PARLEY_EVENT_LOG_VERIFIED) {
            parley__logcheck_event_clear(&q->verified);
            q->verified = e;
        } else if (q->n_alarms < sizeof(q->alarms) / sizeof(q->alarms[0])) {
            q->alarms[q->n_alarms++] = e;
        } else {
            parley__logcheck_event_clear(&e);
        }
    }
}

/*
 * Prove the page's updates included in the log's checkpoint: a checkpoint
 * that covers them (the head may be ahead of the last one signed for up
 * to a heartbeat), then inclusion proofs. Failures are alarms the query
 * hands out before the page. 0 or a call error.
 */
static int
s_verify_page(parley_query_t *q)
{
    if (q->lc == NULL || q->n_items == 0)
        return 0;
    uint64_t top = 0;
    uint8_t space[PARLEY_ENVELOPE_MAX + 1024];
    parley__arena_t arena;
    for (size_t i = 0; i < q->n_items; i++) {
        uint64_t seq = 0;
        int64_t at;
        parley__bytes_t env;
        parley__arena_init(&arena, space, sizeof(space));
        if (parley__delivery_decode_raw(q->items[i].data, q->items[i].len, &seq, &at,
                                        &env, &arena) == 0) {
            int rc = parley__logcheck_update(q->lc, seq, env.data, env.len);
            if (rc < 0) {
                parley__arena_reset(&arena);
                return rc;
            }
            if (seq > top)
                top = seq;
        }
        parley__arena_reset(&arena);
    }
    int64_t until = parley__mono_ms() + (q->call.timeout_ms < 0 ? 60000
                                                                 : q->call.timeout_ms);
    for (;;) {
        const parley_checkpoint_t *t = parley__logcheck_trusted(q->lc);
        if (t != NULL && t->size >= top)
            break;
        parley__reply_t r;
        memset(q->call.req, 0, sizeof(*q->call.req));
        q->call.req->op = PARLEY__OP_CHECKPOINT;
        int rc = s_call_ask(&q->call, &r);
        if (rc < 0)
            return rc;
        if (r.type == PARLEY__REPLY_PROOF && r.checkpoint.len > 0)
            parley__logcheck_checkpoint(q->lc, r.checkpoint.data, r.checkpoint.len,
                                        parley_now_ms());
        t = parley__logcheck_trusted(q->lc);
        if ((t != NULL && t->size >= top) || parley__mono_ms() >= until)
            break;
        struct timespec pause = { 0, S_CHECKPOINT_POLL_MS * 1000000L };
        nanosleep(&pause, NULL);
    }
    parley__request_t want;
    while (parley__logcheck_want(q->lc, &want, parley_now_ms()) == 1) {
        parley__reply_t r;
        want.request_id = 0;
        *q->call.req = want;
        int rc = s_call_ask(&q->call, &r);
        parley__logcheck_reply(q->lc, rc == 0 ? &r : NULL, rc, parley_now_ms());
        if (rc < 0 && rc != PARLEY_EBADREQUEST && rc != PARLEY_EUNAVAILABLE)
            return rc;
        if (rc < 0)
            break;
    }
    s_log_events(q);
    return 0;
}

/* Put the query's filters into its request. */
static void
s_query_filter(parley_query_t *q)
{
    parley__request_set_filters(q->call.req, q->filters, q->n_filters);
}

/* Ask for the next replay page and keep it. 0 or an error. */
static int
s_replay_page(parley_query_t *q)
{
    parley__reply_t r;
    memset(q->call.req, 0, sizeof(*q->call.req));
    q->call.req->op = PARLEY__OP_REPLAY;
    q->call.req->from_seq = q->from;
    q->call.req->to_seq = q->to;
    q->call.req->limit = S_PAGE_LIMIT;
    s_query_filter(q);
    int rc = s_call_ask(&q->call, &r);
    if (rc == PARLEY_ETRUNCATED) {
        /* The seqs below first_seq are gone: one gap, then on from it. */
        uint64_t first = r.first_seq;
        if (first <= q->from)
            return PARLEY_EPROTO;
        q->gap_from = q->from;
        q->gap_to = first - 1;
        if (q->to != 0 && q->gap_to >= q->to) {
            q->gap_to = q->to;
            q->done = true;
        }
        q->from = first;
        q->n_items = q->next = 0;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (r.type != PARLEY__REPLY_REPLAY || r.next_seq < q->from
        || (!r.done && r.next_seq == q->from))
        return PARLEY_EPROTO;
    if (q->first && (q->to == 0 || r.head_seq < q->to)) {
        /* The range ends at the head as the first page saw it: what is
         * published while the query runs is not part of it. */
        q->to = r.head_seq;
    }
    q->first = false;
    q->seq = q->to;
    q->from = r.next_seq;
    q->done = r.done || q->from > q->to;
    int rc2 = s_page_keep(q, &r);
    return rc2 < 0 ? rc2 : s_verify_page(q);
}

/* Make a query object from the options. 0 or an error. */
static int
s_query_open(const parley_call_options_t *opt, parley_query_t **out)
{
    parley_query_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    *out = q;
    int rc = s_call_open(&q->call, opt);
    if (rc < 0)
        return rc;
    if (q->call.opt.n_filters > PARLEY__ANY_OF_MAX)
        return PARLEY_EARG;
    if (q->call.opt.n_filters > 0) {
        q->filters = calloc(q->call.opt.n_filters, sizeof(*q->filters));
        if (q->filters == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < q->call.opt.n_filters; i++, q->n_filters++)
            if (q->call.opt.filters[i] == NULL
                || parley__filterbuf_set(&q->filters[i],
                                         q->call.opt.filters[i]) < 0)
                return PARLEY_EARG;
    }
    parley__logpolicy_t pol;
    if ((q->call.opt.flags & ~PARLEY_CALL_NO_LOG) != 0)
        return PARLEY_EARG;
    if ((q->call.opt.flags & PARLEY_CALL_NO_LOG) == 0
        && s_call_policy(&q->call, &pol) == 0) {
        const char *why;
        rc = parley__logcheck_new(&pol, false, NULL, parley_now_ms(), &q->lc, &why);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
parley_snapshot(const parley_call_options_t *opt, parley_query_t **out)
{
    parley__reply_t r;
    parley_query_t *q = NULL;
    if (out == NULL)
        return PARLEY_EARG;
    *out = NULL;
    int rc = s_query_open(opt, &q);
    if (rc == 0) {
        q->call.req->op = PARLEY__OP_SNAPSHOT;
        q->call.req->entries = true;
        s_query_filter(q);
        rc = s_call_ask(&q->call, &r);
    }
    if (rc == 0 && r.type != PARLEY__REPLY_SNAPSHOT)
        rc = PARLEY_EPROTO;
    if (rc == 0)
        rc = parley__entries_take(&q->entries, &r);
    if (rc == 0)
        rc = s_page_keep(q, &r);
    if (rc == 0)
        rc = s_verify_page(q);
    if (rc < 0) {
        parley_query_destroy(&q);
        return rc;
    }
    q->seq = r.seq;
    q->done = true;
    *out = q;
    return 0;
}

int
parley_replay(uint64_t from_seq, uint64_t to_seq,
              const parley_call_options_t *opt, parley_query_t **out)
{
    parley_query_t *q = NULL;
    if (out == NULL)
        return PARLEY_EARG;
    *out = NULL;
    if (from_seq == 0)
        from_seq = 1;
    if (to_seq != 0 && to_seq < from_seq)
        return PARLEY_EARG;
    int rc = s_query_open(opt, &q);
    if (rc == 0) {
        q->replay = true;
        q->first = true;
        q->from = from_seq;
        q->to = to_seq;
        q->seq = to_seq;
        rc = s_replay_page(q);
    }
    if (rc < 0) {
        parley_query_destroy(&q);
        return rc;
    }
    *out = q;
    return 0;
}

/* Does the update match one of the query's filters (none: all)? */
static bool
s_query_match(const parley_query_t *q, const parley_update_t *u)
{
    if (q->n_filters == 0)
        return true;
    for (size_t i = 0; i < q->n_filters; i++)
        if (parley_filter_match(&q->filters[i].filter, u))
            return true;
    return false;
}

int
parley_query_next(parley_query_t *q, const parley_event_t **ev)
{
    if (q == NULL || ev == NULL)
        return PARLEY_EARG;
    for (;;) {
        if (q->n_alarms > 0) {
            parley__logcheck_event_t *a = &q->alarms[0];
            parley__event_set(&q->ev, a->type, a->seq);
            q->ev.code = a->code;
            q->ev.evidence = a->evidence;
            q->ev.checkpoint = a->checkpoint;
            memmove(&q->alarms[0], &q->alarms[1],
                    (--q->n_alarms) * sizeof(q->alarms[0]));
            *ev = &q->ev;
            return 1;
        }
        if (q->gap_from > 0) {
            parley__event_set(&q->ev, PARLEY_EVENT_GAP, q->gap_from);
            q->ev.seq_last = q->gap_to;
            q->gap_from = q->gap_to = 0;
            *ev = &q->ev;
            return 1;
        }
        if (q->next < q->n_items) {
            const parley__bytes_t *it = &q->items[q->next++];
            parley_delivery_t *d = &q->ev.delivery;
            const parley__state_key_t *keys = NULL;
            size_t n_keys = 0;
            int rc = parley_delivery_decode(q->call.opt.keyring, it->data,
                                            it->len, d);
            if (rc == 0 && q->entries.n > 0) {
                n_keys = parley__entries_of(&q->entries, d->seq, &keys);
                if (!parley__entries_agree(keys, n_keys, &d->update))
                    rc = PARLEY_EPROTO; /* entries it does not name */
            }
            if (rc == -ENOMEM)
                return rc;
            if (rc < 0) {
                /* Its seq, if the Delivery around it decodes. */
                parley__arena_t arena;
                uint8_t space[PARLEY_ENVELOPE_MAX + 1024];
                parley__bytes_t env;
                uint64_t seq = 0;
                int64_t at;
                parley__arena_init(&arena, space, sizeof(space));
                if (parley__delivery_decode_raw(it->data, it->len, &seq, &at,
                                                &env, &arena) < 0)
                    seq = 0;
                parley__arena_reset(&arena);
                parley__event_set(&q->ev, PARLEY_EVENT_REJECTED, seq);
                q->ev.code = rc;
                *ev = &q->ev;
                return 1;
            }
            if (!s_query_match(q, &d->update))
                continue;
            parley__event_set(&q->ev, PARLEY_EVENT_DELIVERY, d->seq);
            q->ev.entries = keys;
            q->ev.n_entries = n_keys;
            *ev = &q->ev;
            return 1;
        }
        if ((q->done || !q->replay) && q->verified.type != 0) {
            parley__event_set(&q->ev, q->verified.type, q->verified.seq);
            q->ev.checkpoint = q->verified.checkpoint;
            q->verified = (parley__logcheck_event_t){ 0 };
            *ev = &q->ev;
            return 1;
        }
        if (q->done || !q->replay)
            return 0;
        int rc = s_replay_page(q);
        if (rc < 0)
            return rc;
    }
}

uint64_t
parley_query_seq(const parley_query_t *q)
{
    return q != NULL ? q->seq : 0;
}

/* ------------------------------------------------------ transparency log */

/* Ask for the latest checkpoint and verify it under pol. */
static int
s_fetch_checkpoint(s_call_t *c, const parley__logpolicy_t *pol,
                   parley_checkpoint_t **out, const char **why)
{
    parley__reply_t r;
    memset(c->req, 0, sizeof(*c->req));
    c->req->op = PARLEY__OP_CHECKPOINT;
    int rc = s_call_ask(c, &r);
    if (rc < 0)
        return rc;
    if (r.type != PARLEY__REPLY_PROOF || r.checkpoint.len == 0)
        return PARLEY_EPROTO;
    return parley__checkpoint_check(pol, r.checkpoint.data, r.checkpoint.len, out, why);
}

int
parley_log_checkpoint(const parley_call_options_t *opt, parley_checkpoint_t **out)
{
    s_call_t c;
    parley__logpolicy_t pol;
    if (out == NULL)
        return PARLEY_EARG;
    *out = NULL;
    int rc = s_call_open(&c, opt);
    if (rc == 0)
        rc = s_call_policy(&c, &pol);
    if (rc == 0)
        rc = s_fetch_checkpoint(&c, &pol, out, NULL);
    s_call_close(&c);
    return rc;
}

/*
 * Ask for the consistency proof from a to b (sizes a <= b) and check it
 * between the roots. Returns 0 (consistent), PARLEY_EINCONSISTENT with
 * the proof's bytes copied to *proof, or a call error.
 */
static int
s_consistent(s_call_t *c, uint64_t a, const parley__tlog_hash_t *ra, uint64_t b,
             const parley__tlog_hash_t *rb, uint8_t **proof, size_t *proof_len)
{
    parley__reply_t r;
    memset(c->req, 0, sizeof(*c->req));
    c->req->op = PARLEY__OP_CONSISTENCY;
    c->req->old_size = a;
    c->req->new_size = b;
    int rc = s_call_ask(c, &r);
    if (rc < 0)
        return rc;
    if (r.type != PARLEY__REPLY_PROOF)
        return PARLEY_EPROTO;
    parley__tlog_proof_t p;
    if (r.n_proofs == 1
        && parley__tlog_proof_decode(r.proofs[0].data, r.proofs[0].len, &p, NULL) == 0
        && p.kind == PARLEY__TLOG_CONSISTENCY && p.m == a && p.n == b
        && parley__tlog_proof_check_consistency(&p, ra, rb, NULL) == 0)
        return 0;
    if (r.n_proofs > 0 && (*proof = malloc(r.proofs[0].len + 1)) != NULL) {
        memcpy(*proof, r.proofs[0].data, r.proofs[0].len);
        *proof_len = r.proofs[0].len;
    }
    return PARLEY_EINCONSISTENT;
}

/* a and b of one log can both be honest? As parley_log_audit(). */
static int
s_audit(s_call_t *c, const parley_checkpoint_t *a, const parley_checkpoint_t *b,
        char **evidence)
{
    if (strcmp(a->origin, b->origin) != 0)
        return PARLEY_EARG;
    if (a->size > b->size) {
        const parley_checkpoint_t *t = a;
        a = b;
        b = t;
    }
    parley__evidence_t e = { .a = a, .b = b };
    uint8_t *proof = NULL;
    size_t proof_len = 0;
    int rc;
    if (a->size == b->size) {
        if (parley__tlog_hash_equal(&a->root, &b->root))
            return 0;
        e.kind = "fork";
        e.reason = "two checkpoints of one tree size with two roots";
        rc = PARLEY_EINCONSISTENT;
    } else {
        rc = s_consistent(c, a->size, &a->root, b->size, &b->root, &proof, &proof_len);
        e.kind = "consistency";
        e.reason = "the log cannot prove that the larger checkpoint extends the "
                   "smaller";
        e.proof = proof;
        e.proof_len = proof_len;
        if (rc == PARLEY_EBADREQUEST && a->time > b->time && b->time > 0) {
            /* The daemon no longer has the larger tree it signed, and it
             * signed the smaller one later: it went back. */
            e.kind = "rollback";
            e.reason = "the log signed a smaller tree after a larger one, and "
                       "cannot prove the larger any more";
            e.a = b;
            e.b = a;
            e.proof = NULL;
            rc = PARLEY_EINCONSISTENT;
        }
    }
    if (rc == PARLEY_EINCONSISTENT && evidence != NULL)
        *evidence = parley__evidence_format(&e);
    free(proof);
    return rc;
}

int
parley_log_audit(const parley_call_options_t *opt, const parley_checkpoint_t *older,
                 const parley_checkpoint_t *newer, char **evidence)
{
    s_call_t c;
    if (evidence != NULL)
        *evidence = NULL;
    if (older == NULL || newer == NULL)
        return PARLEY_EARG;
    int rc = s_call_open(&c, opt);
    if (rc == 0)
        rc = s_audit(&c, older, newer, evidence);
    s_call_close(&c);
    return rc;
}

/* Verify the notes of an evidence document under the keyring (the log's
 * signature; witnesses are not asked of evidence). */
static int
s_evidence_notes(const parley_keyring_t *ring, const parley__evidence_doc_t *d,
                 parley_checkpoint_t *cp[2], const char **why)
{
    for (int i = 0; i < 2; i++) {
        cp[i] = NULL;
        if (d->notes[i] == NULL)
            continue;
        parley__logpolicy_t pol;
        int rc = parley__checkpoint_policy(ring, d->notes[i], d->note_len[i], &pol, why);
        if (rc == 0) {
            pol.need = 0;
            rc = parley__checkpoint_check(&pol, d->notes[i], d->note_len[i], &cp[i], why);
        }
        if (rc != 0) {
            parley_checkpoint_destroy(&cp[0]);
            return rc;
        }
    }
    return 0;
}

/* Is the update d->update the log's leaf at d->seq in cp's tree? */
static int
s_evidence_inclusion(s_call_t *c, const parley__evidence_doc_t *d,
                     const parley_checkpoint_t *cp)
{
    parley__reply_t r;
    if (d->seq == 0 || d->seq > cp->size || d->update == NULL)
        return PARLEY_EMALFORMED;
    memset(c->req, 0, sizeof(*c->req));
    c->req->op = PARLEY__OP_INCLUSION;
    c->req->seqs = &d->seq;
    c->req->n_seqs = 1;
    c->req->tree_size = cp->size;
    int rc = s_call_ask(c, &r);
    if (rc < 0)
        return rc;
    parley__tlog_hash_t leaf;
    parley__tlog_leaf_hash(d->update, d->update_len, &leaf);
    parley__tlog_proof_t p;
    if (r.type == PARLEY__REPLY_PROOF && r.n_proofs == 1
        && parley__tlog_proof_decode(r.proofs[0].data, r.proofs[0].len, &p, NULL) == 0
        && p.kind == PARLEY__TLOG_INCLUSION && p.m == d->seq - 1 && p.n == cp->size
        && parley__tlog_proof_check_inclusion(&p, &leaf, &cp->root, NULL) == 0)
        return 0;
    return PARLEY_EINCONSISTENT;
}

int
parley_evidence_check(const parley_keyring_t *ring, const char *text, size_t len,
                      const parley_call_options_t *opt, char *verdict, size_t cap)
{
    parley__evidence_doc_t d;
    parley_checkpoint_t *cp[2] = { NULL, NULL };
    const char *why = NULL;
    char msg[1024] = "";
    s_call_t c;
    bool online = false;
    int rc = parley__evidence_parse(text, len, &d, &why);
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "not evidence: %s", why);
        goto out_doc;
    }
    if ((rc = s_evidence_notes(ring, &d, cp, &why)) != 0) {
        snprintf(msg, sizeof(msg), "a checkpoint of the evidence does not verify: %s",
                 why != NULL ? why : parley_strerror(rc));
        goto out;
    }
    const parley_checkpoint_t *a = cp[0], *b = cp[1];
    if (strcmp(d.kind, "fork") == 0 || strcmp(d.kind, "rollback") == 0) {
        if (b == NULL || strcmp(a->origin, b->origin) != 0) {
            rc = PARLEY_EMALFORMED;
            snprintf(msg, sizeof(msg), "%s evidence needs two checkpoints of one log",
                     d.kind);
        } else if (a->size == b->size && !parley__tlog_hash_equal(&a->root, &b->root)) {
            rc = PARLEY_EINCONSISTENT;
            snprintf(msg, sizeof(msg),
                     "INCONSISTENT: the log %s signed two trees of %" PRIu64
                     " leaves with two roots", a->origin, a->size);
        } else if ((a->size > b->size && b->time > a->time && a->time > 0)
                   || (b->size > a->size && a->time > b->time && b->time > 0)) {
            const parley_checkpoint_t *big = a->size > b->size ? a : b;
            const parley_checkpoint_t *small = big == a ? b : a;
            rc = PARLEY_EINCONSISTENT;
            snprintf(msg, sizeof(msg),
                     "INCONSISTENT: the log %s signed %" PRIu64 " leaves at %" PRId64
                     " and then %" PRIu64 " leaves at %" PRId64 " (a rollback; a "
                     "cluster node that lags proves the larger tree once it "
                     "caught up: ask it with parley audit OLD NEW)",
                     a->origin, big->size, big->time, small->size, small->time);
        } else {
            rc = 0;
            snprintf(msg, sizeof(msg), "the two checkpoints do not contradict each "
                                       "other by themselves");
        }
        goto out;
    }
    if (strcmp(d.kind, "stale") == 0) {
        rc = 0;
        snprintf(msg, sizeof(msg),
                 "staleness, not proof of dishonesty: %s (newest trusted: %" PRIu64
                 " leaves at %" PRId64 ")", d.reason, a->size, a->time);
        goto out;
    }
    if (opt == NULL) {
        rc = PARLEY_EUNAVAILABLE;
        snprintf(msg, sizeof(msg),
                 "%s evidence rests on a proof only the daemon can give again: "
                 "check it with a server", d.kind);
        goto out;
    }
    if ((rc = s_call_open(&c, opt)) != 0)
        goto out;
    online = true;
    if (strcmp(d.kind, "inclusion") == 0) {
        rc = s_evidence_inclusion(&c, &d, a);
        snprintf(msg, sizeof(msg),
                 rc == PARLEY_EINCONSISTENT
                     ? "INCONSISTENT: the log's record at seq %" PRIu64 " of its tree of "
                       "%" PRIu64 " leaves is not the update delivered under that seq"
                     : "the log proves the update at seq %" PRIu64 " in its tree of %"
                       PRIu64 " leaves now",
                 d.seq, a->size);
    } else if (strcmp(d.kind, "consistency") == 0 && b != NULL) {
        uint8_t *proof = NULL;
        size_t pl = 0;
        const parley_checkpoint_t *lo = a->size <= b->size ? a : b;
        const parley_checkpoint_t *hi = lo == a ? b : a;
        rc = s_consistent(&c, lo->size, &lo->root, hi->size, &hi->root, &proof, &pl);
        free(proof);
        snprintf(msg, sizeof(msg),
                 rc == PARLEY_EINCONSISTENT
                     ? "INCONSISTENT: the log cannot prove that its tree of %" PRIu64
                       " leaves extends its tree of %" PRIu64 " leaves"
                     : "the log proves its tree of %" PRIu64 " leaves extends its "
                       "tree of %" PRIu64 " leaves now",
                 hi->size, lo->size);
    } else if (strcmp(d.kind, "consistency") == 0 && d.have_own_root) {
        uint8_t *proof = NULL;
        size_t pl = 0;
        bool own_low = d.own_size <= a->size;
        rc = s_consistent(&c, own_low ? d.own_size : a->size,
                          own_low ? &d.own_root : &a->root,
                          own_low ? a->size : d.own_size,
                          own_low ? &a->root : &d.own_root, &proof, &pl);
        free(proof);
        snprintf(msg, sizeof(msg),
                 rc == PARLEY_EINCONSISTENT
                     ? "INCONSISTENT: the tree of the %" PRIu64 " updates the reporter "
                       "was delivered is not consistent with the log's tree of %"
                       PRIu64 " leaves"
                     : "the log proves the reporter's tree of %" PRIu64 " updates "
                       "consistent with its tree of %" PRIu64 " leaves now",
                 d.own_size, a->size);
    } else {
        rc = PARLEY_EMALFORMED;
        snprintf(msg, sizeof(msg), "unknown kind of evidence \"%s\"", d.kind);
    }
    if (rc < 0 && rc != PARLEY_EINCONSISTENT && rc != PARLEY_EMALFORMED
        && msg[0] == '\0')
        snprintf(msg, sizeof(msg), "the daemon did not answer: %s",
                 parley_strerror(rc));
out:
    if (online)
        s_call_close(&c);
    parley_checkpoint_destroy(&cp[0]);
    parley_checkpoint_destroy(&cp[1]);
    parley__evidence_doc_clear(&d);
out_doc:
    if (verdict != NULL && cap > 0)
        snprintf(verdict, cap, "%s", msg);
    return rc;
}

size_t
parley_query_entry_count(const parley_query_t *q)
{
    return q != NULL ? q->entries.n : 0;
}

int
parley_query_entry(const parley_query_t *q, size_t i,
                   const char **negotiation, const char **party,
                   uint32_t *phase, uint64_t *seq)
{
    if (q == NULL || i >= q->entries.n)
        return PARLEY_EARG;
    const parley__state_key_t *k = &q->entries.by_key[i];
    parley__state_key_out(k, negotiation, party, phase);
    if (seq != NULL)
        *seq = k->seq;
    return 0;
}
