/*
 * query.c - the one-shot calls: ping, stats (and their answers as
 * objects).
 *
 * Each call sends one request to the first endpoint of the list and
 * moves on to the next when one does not answer within the timeout or
 * answers UNAVAILABLE; the first real answer (or refusal) is the result.
 */
#include "options.h"
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------ ping */

struct parley_info {
    char *endpoint;           /* the api endpoint that answered */
    char *feed;               /* feed endpoint, wildcard host fixed up */
    uint8_t daemon_id[16];
    uint64_t seq;             /* last assigned seq */
    uint64_t first_seq;       /* oldest seq held, 0 if none */
    char *version;
};

void
parley_info_destroy(parley_info_t **info)
{
    if (info == NULL || *info == NULL)
        return;
    free((*info)->endpoint);
    free((*info)->feed);
    free((*info)->version);
    free(*info);
    *info = NULL;
}

/* Make the info object of a PING reply from endpoint. 0 or an error. */
static int
s_info_make(const parley__reply_t *r, const char *endpoint, parley_info_t **out)
{
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
    if (info->endpoint == NULL || info->feed == NULL || info->version == NULL) {
        parley_info_destroy(&info);
        return -ENOMEM;
    }
    memcpy(info->daemon_id, r->daemon_id, sizeof(info->daemon_id));
    info->seq = r->seq;
    info->first_seq = r->first_seq;
    *out = info;
    return 0;
}

int
parley_ping(const parley_call_options_t *opt, parley_info_t **out)
{
    s_call_t c;
    parley__reply_t reply;
    if (out == NULL)
        return PARLEY_EARG;
    *out = NULL;
    int rc = s_call_open(&c, opt);
    if (rc == 0) {
        c.req->op = PARLEY__OP_PING;
        rc = s_call_ask(&c, &reply);
    }
    if (rc == 0)
        rc = s_info_make(&reply, parley__wire_server(c.wire), out);
    s_call_close(&c);
    return rc;
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
s_stats_make(const parley__reply_t *r, const char *endpoint,
             parley_stats_t **out)
{
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
    s_call_t c;
    parley__reply_t reply;
    if (out == NULL)
        return PARLEY_EARG;
    *out = NULL;
    int rc = s_call_open(&c, opt);
    if (rc == 0) {
        c.req->op = PARLEY__OP_STATS;
        rc = s_call_ask(&c, &reply);
    }
    if (rc == 0)
        rc = s_stats_make(&reply, parley__wire_server(c.wire), out);
    s_call_close(&c);
    return rc;
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
