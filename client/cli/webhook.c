/*
 * webhook.c - the webhook handler of parley sub (webhook.h).
 */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char cli_hook_formats[] = "json, slack, mattermost, matrix, ntfy, teams";

static const char *const s_format_names[] = {
    [CLI_HOOK_JSON] = "json",       [CLI_HOOK_SLACK] = "slack",
    [CLI_HOOK_MATTERMOST] = "mattermost", [CLI_HOOK_MATRIX] = "matrix",
    [CLI_HOOK_NTFY] = "ntfy",       [CLI_HOOK_TEAMS] = "teams",
};

int
cli_hook_format_parse(const char *name, cli_hook_format_t *out)
{
    for (size_t i = 0; i < sizeof(s_format_names) / sizeof(s_format_names[0]);
         i++)
        if (strcmp(name, s_format_names[i]) == 0) {
            *out = (cli_hook_format_t)i;
            return 0;
        }
    return -1;
}

/* ----------------------------------------------------------- requests */

void
cli_hook_request_free(cli_hook_request_t *r)
{
    free(r->url);
    free(r->body);
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    memset(r, 0, sizeof(*r));
}

/* 1 if header "Name: ..." has the name of "Other: ..." (any case). */
static int
s_same_name(const char *header, const char *other)
{
    const char *c1 = strchr(header, ':'), *c2 = strchr(other, ':');
    return c1 != NULL && c2 != NULL && c1 - header == c2 - other
           && strncasecmp(header, other, (size_t)(c1 - header)) == 0;
}

/* Add "name: value" unless an extra header has that name. 0 or -1. */
static int
s_header(cli_hook_request_t *r, char *const *extra, size_t n_extra,
         const char *name, const char *value)
{
    char *h = NULL;
    if (asprintf(&h, "%s: %s", name, value) < 0)
        return -1;
    for (size_t i = 0; i < n_extra; i++)
        if (s_same_name(h, extra[i])) {
            free(h);
            return 0; /* theirs replaces ours */
        }
    if (r->n_headers == CLI_HOOK_HEADERS_MAX) {
        free(h);
        return -1;
    }
    r->headers[r->n_headers++] = h;
    return 0;
}

/* Dump a JSON value as the body; 0 or -1. Takes the reference. */
static int
s_json_body(cli_hook_request_t *r, json_t *o)
{
    r->body = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)
                        : NULL;
    json_decref(o);
    if (r->body == NULL)
        return -1;
    r->body_len = strlen(r->body);
    return 0;
}

/* Slack's mrkdwn wants &, < and > escaped in text. Heap string or NULL. */
static char *
s_slack_escape(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++)
        n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : 1;
    char *out = malloc(n + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (const char *p = text; *p != '\0'; p++) {
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;"
                          : *p == '>' ? "&gt;" : NULL;
        if (rep != NULL) {
            memcpy(o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* "<negotiation> phase <n> [<parties>]: <status>", for titles. */
static char *
s_title(const parley_update_t *u)
{
    char parties[PARLEY_PARTIES_MAX * (PARLEY_SLUG_MAX + 1) + 1];
    char *t = NULL;
    const char *status = parley_status_name(parley_update_status(u));
    cli_parties(u, parties, sizeof(parties));
    if (asprintf(&t, "%s phase %u [%s]: %s", parley_update_negotiation(u),
                 (unsigned)parley_update_phase(u), parties,
                 status != NULL ? status : "unknown")
        < 0)
        return NULL;
    return t;
}

/* Statuses that decide something: a higher ntfy priority. */
static int
s_decisive(parley_status_t s)
{
    return s == PARLEY_STATUS_AGREED_IN_PRINCIPLE || s == PARLEY_STATUS_SIGNED
           || s == PARLEY_STATUS_IN_EFFECT || s == PARLEY_STATUS_COLLAPSED;
}

/* The Teams Adaptive Card message. */
static json_t *
s_teams(const parley_delivery_t *d, const char *title)
{
    const parley_update_t *u = parley_delivery_update(d);
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu",
             (unsigned long long)parley_delivery_seq(d));
    const char *name = parley_delivery_signer_name(d);
    return json_pack(
        "{s:s, s:[{s:s, s:{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:b}, "
        "{s:s, s:s, s:b}, {s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}}]}",
        "type", "message", "attachments", "contentType",
        "application/vnd.microsoft.card.adaptive", "content", "$schema",
        "http://adaptivecards.io/schemas/adaptive-card.json", "type",
        "AdaptiveCard", "version", "1.4", "body", "type", "TextBlock", "text",
        title, "weight", "Bolder", "wrap", 1, "type", "TextBlock", "text",
        parley_update_headline(u), "wrap", 1, "type", "FactSet", "facts",
        "title", "seq", "value", seq, "title", "signer", "value",
        name[0] != '\0' ? name : parley_delivery_signer_id(d));
}

int
cli_hook_request(cli_hook_format_t fmt, const char *url,
                 const parley_delivery_t *d, const char *key,
                 char *const *extra, size_t n_extra, cli_hook_request_t *out)
{
    const parley_update_t *u = parley_delivery_update(d);
    char *line = NULL, *title = NULL, *esc = NULL;
    const char *type = "application/json";
    int rc = -1;
    memset(out, 0, sizeof(*out));
    out->method = "POST";
    if (n_extra > CLI_HOOK_HEADERS_MAX - 8)
        return -EINVAL;
    if ((line = cli_update_text(d)) == NULL
        || (title = s_title(u)) == NULL)
        goto out;
    switch (fmt) {
    case CLI_HOOK_JSON: {
        out->body = parley_delivery_to_json(d);
        if (out->body == NULL)
            goto out;
        out->body_len = strlen(out->body);
        break;
    }
    case CLI_HOOK_SLACK:
        if ((esc = s_slack_escape(line)) == NULL
            || s_json_body(out, json_pack("{s:s}", "text", esc)) < 0)
            goto out;
        break;
    case CLI_HOOK_MATTERMOST:
        if (s_json_body(out, json_pack("{s:s}", "text", line)) < 0)
            goto out;
        break;
    case CLI_HOOK_MATRIX:
        out->method = "PUT";
        if (s_json_body(out, json_pack("{s:s, s:s}", "msgtype", "m.notice",
                                       "body", line))
            < 0)
            goto out;
        break;
    case CLI_HOOK_NTFY: {
        const char *body = parley_update_body(u);
        type = "text/plain; charset=utf-8";
        if (asprintf(&out->body, "%s%s%s", parley_update_headline(u),
                     body[0] != '\0' ? "\n\n" : "", body)
            < 0) {
            out->body = NULL;
            goto out;
        }
        out->body_len = strlen(out->body);
        break;
    }
    case CLI_HOOK_TEAMS:
        if (s_json_body(out, s_teams(d, title)) < 0)
            goto out;
        break;
    default:
        goto out;
    }
    if (fmt == CLI_HOOK_MATRIX) {
        /* PUT .../send/m.room.message/{txnId}: the key made safe for a
         * path segment ([0-9a-f], '-' and digits) */
        char txn[CLI_ALERT_KEY_CHARS + 8];
        snprintf(txn, sizeof(txn), "parley-%s", key);
        for (char *p = txn; *p != '\0'; p++)
            if (*p == '/')
                *p = '-';
        size_t ulen = strlen(url);
        if (asprintf(&out->url, "%s%s%s", url,
                     ulen > 0 && url[ulen - 1] == '/' ? "" : "/", txn)
            < 0) {
            out->url = NULL;
            goto out;
        }
    } else if ((out->url = strdup(url)) == NULL) {
        goto out;
    }
    if (s_header(out, extra, n_extra, "Content-Type", type) < 0
        || s_header(out, extra, n_extra, "Idempotency-Key", key) < 0
        || s_header(out, extra, n_extra, "User-Agent",
                    "parley/" PARLEY_VERSION)
               < 0)
        goto out;
    if (fmt == CLI_HOOK_NTFY) {
        char tags[64];
        const char *st = parley_status_name(parley_update_status(u));
        snprintf(tags, sizeof(tags), "parley,%s", st != NULL ? st : "unknown");
        if (s_header(out, extra, n_extra, "Title", title) < 0
            || s_header(out, extra, n_extra, "Tags", tags) < 0
            || (s_decisive(parley_update_status(u))
                && s_header(out, extra, n_extra, "Priority", "high") < 0))
            goto out;
    }
    for (size_t i = 0; i < n_extra; i++) {
        if ((out->headers[out->n_headers] = strdup(extra[i])) == NULL)
            goto out;
        out->n_headers++;
    }
    rc = 0;
out:
    free(line);
    free(title);
    free(esc);
    return rc == 0 ? 0 : -ENOMEM;
}

int
cli_hook_header_parse(const char *arg, char **out)
{
    const char *colon = strchr(arg, ':');
    if (colon == NULL || colon == arg || strpbrk(arg, "\r\n") != NULL)
        return -1;
    for (const char *p = arg; p < colon; p++)
        if (strchr("!#$%&'*+-.^_`|~", *p) == NULL
            && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                 || (*p >= '0' && *p <= '9')))
            return -1;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (asprintf(out, "%.*s: %s", (int)(colon - arg), arg, v) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ handler */

/* Bytes of an answer kept for the message of a failed attempt. */
#define S_ANSWER_KEEP 160

/* One request under way. */
typedef struct {
    CURL *easy;                 /* NULL: the slot is free */
    struct curl_slist *headers;
    cli_hook_request_t req;
    int done;                   /* curl finished it */
    CURLcode result;
    char answer[S_ANSWER_KEEP + 1];
    size_t answer_len;
    char errbuf[CURL_ERROR_SIZE];
} s_slot_t;

struct cli_webhook {
    char *url;
    cli_hook_format_t fmt;
    char *const *extra;
    size_t n_extra;
    int timeout_ms;
    int max_jobs;
    CURLM *multi;
    s_slot_t *slots;
    unsigned long sent;
    char name[300];
};

/* Keep the start of the answer, for messages; read the rest away. */
static size_t
s_on_answer(char *data, size_t size, size_t n, void *arg)
{
    s_slot_t *s = arg;
    size_t len = size * n;
    size_t room = S_ANSWER_KEEP - s->answer_len;
    size_t take = len < room ? len : room;
    memcpy(s->answer + s->answer_len, data, take);
    s->answer_len += take;
    s->answer[s->answer_len] = '\0';
    return len;
}

static void
s_slot_clear(cli_webhook_t *w, s_slot_t *s)
{
    if (s->easy != NULL) {
        curl_multi_remove_handle(w->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->headers);
    cli_hook_request_free(&s->req);
    memset(s, 0, sizeof(*s));
}

cli_webhook_t *
cli_webhook_new(const char *url, cli_hook_format_t fmt, char *const *extra,
                size_t n_extra, int timeout_ms, int max_jobs)
{
    if (strncasecmp(url, "http://", 7) != 0
        && strncasecmp(url, "https://", 8) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errno = EIO;
        return NULL;
    }
    cli_webhook_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->url = strdup(url)) == NULL
        || (w->slots = calloc((size_t)max_jobs, sizeof(*w->slots))) == NULL
        || (w->multi = curl_multi_init()) == NULL) {
        cli_webhook_free(&w);
        curl_global_cleanup();
        errno = ENOMEM;
        return NULL;
    }
    w->fmt = fmt;
    w->extra = extra;
    w->n_extra = n_extra;
    w->timeout_ms = timeout_ms;
    w->max_jobs = max_jobs;
    snprintf(w->name, sizeof(w->name), "webhook %s", url);
    return w;
}

void
cli_webhook_free(cli_webhook_t **wp)
{
    cli_webhook_t *w = *wp;
    if (w == NULL)
        return;
    for (int i = 0; w->slots != NULL && i < w->max_jobs; i++)
        s_slot_clear(w, &w->slots[i]);
    if (w->multi != NULL) {
        curl_multi_cleanup(w->multi);
        curl_global_cleanup();
    }
    free(w->slots);
    free(w->url);
    free(w);
    *wp = NULL;
}

unsigned long
cli_webhook_sent(const cli_webhook_t *w)
{
    return w->sent;
}

static int
s_start(void *self, int i, const cli_job_t *job, char *err, size_t cap)
{
    cli_webhook_t *w = self;
    s_slot_t *s = &w->slots[i];
    s_slot_clear(w, s);
    w->sent++;
    if (cli_hook_request(w->fmt, w->url, job->d, job->key, w->extra,
                         w->n_extra, &s->req)
        < 0) {
        snprintf(err, cap, "cannot build the request: out of memory");
        return -1;
    }
    for (size_t h = 0; h < s->req.n_headers; h++) {
        struct curl_slist *l = curl_slist_append(s->headers, s->req.headers[h]);
        if (l == NULL) {
            snprintf(err, cap, "out of memory");
            s_slot_clear(w, s);
            return -1;
        }
        s->headers = l;
    }
    /* curl adds "Expect: 100-continue" to larger bodies: one round trip
     * more for nothing */
    struct curl_slist *l = curl_slist_append(s->headers, "Expect:");
    if (l != NULL)
        s->headers = l;
    if ((s->easy = curl_easy_init()) == NULL) {
        snprintf(err, cap, "libcurl: cannot make a request");
        s_slot_clear(w, s);
        return -1;
    }
    long connect_ms = w->timeout_ms < 10000 ? w->timeout_ms : 10000;
    CURL *e = s->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, s->req.url) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
               != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->req.method)
               != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t)s->req.body_len)
               != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->req.body) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms)
               != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms)
               != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_on_answer) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_WRITEDATA, s) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_PRIVATE, s) != CURLE_OK
        || curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        snprintf(err, cap, "libcurl refused the request to %s", s->req.url);
        s_slot_clear(w, s);
        return -1;
    }
    return 0;
}

/* Let curl move every request on, and note those that finished. */
static void
s_perform(cli_webhook_t *w)
{
    int running = 0, left = 0;
    curl_multi_perform(w->multi, &running);
    CURLMsg *m;
    while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        s_slot_t *s = NULL;
        if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s)
                == CURLE_OK
            && s != NULL) {
            s->done = 1;
            s->result = m->data.result;
        }
    }
}

/* The answer's text, made one printable line, for a message. */
static void
s_answer_line(s_slot_t *s)
{
    for (size_t i = 0; i < s->answer_len; i++)
        if ((unsigned char)s->answer[i] < 0x20 || s->answer[i] == 0x7f)
            s->answer[i] = ' ';
}

static int
s_poll(void *self, int i, char *err, size_t cap, int64_t *hint_ms)
{
    cli_webhook_t *w = self;
    s_slot_t *s = &w->slots[i];
    *hint_ms = 0;
    if (!s->done)
        s_perform(w);
    if (!s->done)
        return 0;
    int rc = -1;
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    if (s->result != CURLE_OK) {
        snprintf(err, cap, "%s: %s", s->req.url,
                 s->errbuf[0] != '\0' ? s->errbuf
                                      : curl_easy_strerror(s->result));
    } else if (code >= 200 && code < 300) {
        rc = 1;
    } else {
        curl_off_t after = 0;
        if (curl_easy_getinfo(s->easy, CURLINFO_RETRY_AFTER, &after)
                == CURLE_OK
            && after > 0)
            *hint_ms = (int64_t)after * 1000;
        s_answer_line(s);
        snprintf(err, cap, "%s answered HTTP %ld%s%s", s->req.url, code,
                 s->answer_len > 0 ? ": " : "", s->answer);
    }
    s_slot_clear(w, s);
    return rc;
}

static void
s_stop(void *self, int i)
{
    /* A request in flight is short (timeout_ms at most): let it end. */
    (void)self;
    (void)i;
}

static int
s_timeout(void *self)
{
    cli_webhook_t *w = self;
    long ms = -1;
    curl_multi_timeout(w->multi, &ms);
    /* curl's own timers, or a look every 20 ms while requests run */
    return ms >= 0 && ms < 20 ? (int)ms : 20;
}

static const char *
s_name(void *self)
{
    cli_webhook_t *w = self;
    return w->name;
}

const cli_handler_ops_t cli_webhook_ops = {
    .start = s_start,
    .poll = s_poll,
    .stop = s_stop,
    .timeout = s_timeout,
    .name = s_name,
};
