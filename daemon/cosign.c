/*
 * cosign.c - parleyd's witness client over libcurl's multi interface
 * (cosign.h).
 *
 * Memory: per witness, one easy handle, the request body of the
 * checkpoint it is asked to cosign, a 4 KiB answer buffer and the last
 * cosignature line it gave. The checkpoint is kept once.
 */
#include "cosign.h"

#include "keys.h"
#include "log.h"
#include "witness.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ANSWER_MAX 4096       /* bytes of an answer kept */
#define S_BACKOFF_MAX_MS 60000  /* longest wait before asking again */
#define S_BUSY_POLL_MS 10       /* poll period while transfers run */

typedef struct s_witness {
    pd_cosign_witness_t w;      /* name, key, submission prefix */
    char endpoint[1024 + 32];   /* URL/add-checkpoint */
    CURL *easy;                 /* the transfer (reused) */
    bool busy;                  /* a request is out */
    bool retried;               /* the 409 retry was used for this size */
    uint64_t known;             /* the size it last cosigned, as we know */
    uint64_t asked;             /* the size the request out is for */
    char *body;                 /* the request out */
    size_t body_len;
    char answer[S_ANSWER_MAX + 1];
    size_t answer_len;
    bool truncated;             /* the answer did not fit */
    char line[PARLEY__COSIG_LINE_MAX]; /* its cosignature of line_text */
    size_t line_len;            /* 0: none */
    uint64_t line_size;         /* the size that line cosigns */
    unsigned failures;          /* in a row */
    int64_t retry_at;           /* monotonic ms: not before */
} s_witness_t;

struct pd_cosign {
    CURLM *multi;
    s_witness_t *ws;
    size_t n;
    uint32_t timeout_ms;
    pd_cosign_prove_fn prove;
    void *prove_ctx;
    char *note;                 /* the checkpoint to have cosigned */
    size_t note_len, text_len;
    uint64_t size;
    bool have;                  /* a checkpoint was submitted */
    uint64_t cosignatures;      /* valid cosignatures received */
    uint64_t failures;          /* requests that failed */
};

/* ============================================================ the list */

static int
s_list_error(char *errbuf, size_t errlen, size_t line, const char *what)
{
    snprintf(errbuf, errlen, "%zu: %s", line, what);
    return -EINVAL;
}

int
pd_cosign_parse(const char *text, size_t len, pd_cosign_witness_t *out,
                size_t max, char *errbuf, size_t errlen)
{
    size_t n = 0, lineno = 0, p = 0;
    while (p < len) {
        const char *line = text + p;
        const char *nl = memchr(line, '\n', len - p);
        size_t ll = nl != NULL ? (size_t)(nl - line) : len - p;
        p += ll + (nl != NULL);
        lineno++;
        char buf[2048];
        if (ll >= sizeof(buf))
            return s_list_error(errbuf, errlen, lineno, "line too long");
        memcpy(buf, line, ll);
        buf[ll] = '\0';
        if (memchr(line, '\0', ll) != NULL)
            return s_list_error(errbuf, errlen, lineno, "NUL byte in line");
        char *hash = strchr(buf, '#');
        if (hash != NULL && (hash == buf || hash[-1] == ' ' || hash[-1] == '\t'))
            *hash = '\0';
        char *save = NULL;
        char *name = strtok_r(buf, " \t\r", &save);
        if (name == NULL)
            continue;
        char *key = strtok_r(NULL, " \t\r", &save);
        char *url = strtok_r(NULL, " \t\r", &save);
        if (key == NULL || url == NULL || strtok_r(NULL, " \t\r", &save) != NULL)
            return s_list_error(errbuf, errlen, lineno,
                                "expected NAME PUBKEY_BASE64 URL");
        if (n == max)
            return s_list_error(errbuf, errlen, lineno, "too many witnesses");
        pd_cosign_witness_t *w = &out[n];
        if (strlen(name) > PARLEY__NOTE_NAME_MAX ||
            !parley__note_name_valid(name, strlen(name)))
            return s_list_error(errbuf, errlen, lineno,
                                "the name is not a key name (no spaces, no '+')");
        if (parley_pubkey_parse(key, w->pk) != 0)
            return s_list_error(errbuf, errlen, lineno,
                                "the public key is not base64 of 32 bytes");
        if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
            strlen(url) >= sizeof(w->url))
            return s_list_error(errbuf, errlen, lineno,
                                "the URL does not start with http:// or https://");
        for (size_t i = 0; i < n; i++)
            if (strcmp(out[i].name, name) == 0)
                return s_list_error(errbuf, errlen, lineno, "a witness named twice");
        strcpy(w->name, name);
        strcpy(w->url, url);
        n++;
    }
    return (int)n;
}

/* ============================================================== setup */

static size_t
s_on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    s_witness_t *w = ctx;
    size_t n = size * nmemb;
    size_t room = S_ANSWER_MAX - w->answer_len;
    if (n > room) {
        w->truncated = true;
        n = room;
    }
    memcpy(w->answer + w->answer_len, data, n);
    w->answer_len += n;
    return size * nmemb; /* the rest is dropped, not an error */
}

pd_cosign_t *
pd_cosign_new(const char *path, uint32_t timeout_ms, pd_cosign_prove_fn prove,
              void *ctx, pd_stats_t *stats, char *errbuf, size_t errlen, int *err)
{
    (void)stats;
    pd_cosign_t *self = calloc(1, sizeof(*self));
    pd_cosign_witness_t *list = calloc(PD_COSIGN_MAX, sizeof(*list));
    char *text = NULL;
    if (self == NULL || list == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    self->timeout_ms = timeout_ms;
    self->prove = prove;
    self->prove_ctx = ctx;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        *err = -errno;
        snprintf(errbuf, errlen, "witnesses %s: %s", path, strerror(errno));
        goto fail;
    }
    size_t cap = 256 * 1024;
    text = malloc(cap);
    size_t len = text != NULL ? fread(text, 1, cap, f) : 0;
    bool big = text != NULL && len == cap;
    fclose(f);
    if (text == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    char msg[256];
    int n = big ? s_list_error(msg, sizeof(msg), 0, "file too large")
                : pd_cosign_parse(text, len, list, PD_COSIGN_MAX, msg, sizeof(msg));
    if (n < 0) {
        *err = n;
        snprintf(errbuf, errlen, "witnesses %s:%s", path, msg);
        goto fail;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
        (self->multi = curl_multi_init()) == NULL) {
        *err = -ENOMEM;
        snprintf(errbuf, errlen, "cannot start libcurl");
        goto fail;
    }
    self->ws = calloc(n > 0 ? (size_t)n : 1, sizeof(*self->ws));
    if (self->ws == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < n; i++, self->n++) {
        s_witness_t *w = &self->ws[i];
        w->w = list[i];
        size_t ul = strlen(w->w.url);
        snprintf(w->endpoint, sizeof(w->endpoint), "%s%sadd-checkpoint", w->w.url,
                 ul > 0 && w->w.url[ul - 1] == '/' ? "" : "/");
        if ((w->easy = curl_easy_init()) == NULL) {
            *err = -ENOMEM;
            goto fail;
        }
    }
    free(list);
    free(text);
    *err = 0;
    return self;
fail:
    free(list);
    free(text);
    pd_cosign_destroy(&self);
    return NULL;
}

void
pd_cosign_destroy(pd_cosign_t **c)
{
    if (c == NULL || *c == NULL)
        return;
    pd_cosign_t *self = *c;
    for (size_t i = 0; i < self->n; i++) {
        s_witness_t *w = &self->ws[i];
        if (w->busy)
            curl_multi_remove_handle(self->multi, w->easy);
        if (w->easy != NULL)
            curl_easy_cleanup(w->easy);
        free(w->body);
    }
    if (self->multi != NULL)
        curl_multi_cleanup(self->multi);
    free(self->ws);
    free(self->note);
    free(self);
    *c = NULL;
}

size_t
pd_cosign_count(const pd_cosign_t *c)
{
    return c != NULL ? c->n : 0;
}

int
pd_cosign_submit(pd_cosign_t *c, const char *note, size_t len, size_t text_len,
                 uint64_t size)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, note, len);
    copy[len] = '\0';
    free(c->note);
    c->note = copy;
    c->note_len = len;
    c->text_len = text_len;
    c->size = size;
    c->have = true;
    for (size_t i = 0; i < c->n; i++) {
        c->ws[i].retried = false;
        c->ws[i].retry_at = 0; /* a new checkpoint is worth asking now */
    }
    return 0;
}

/* ======================================================== the requests */

/* A failed request: counted, logged (rate-limited), asked again later. */
static void
s_failed(pd_cosign_t *self, s_witness_t *w, int64_t now, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
s_failed(pd_cosign_t *self, s_witness_t *w, int64_t now, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    self->failures++;
    w->failures++;
    int64_t wait = w->failures >= 16 ? S_BACKOFF_MAX_MS
                                     : (int64_t)1000 << (w->failures - 1);
    w->retry_at = now + (wait < S_BACKOFF_MAX_MS ? wait : S_BACKOFF_MAX_MS);
    pd_log_limited(PD_LOG_KEY_WITNESS, PD_LOG_WARN,
                   "witness %s (%s): %s; asking again in %lld ms", w->w.name,
                   w->endpoint, msg, (long long)(w->retry_at - now));
}

/* Send the current checkpoint to w with a proof from w->known. */
static void
s_start(pd_cosign_t *self, s_witness_t *w, int64_t now)
{
    parley__tlog_proof_t proof = { .count = 0 };
    if (w->known > self->size) {
        s_failed(self, w, now,
                 "it has cosigned a tree of %" PRIu64 " leaves, larger than ours "
                 "(%" PRIu64 "): this cluster node is behind another, or this "
                 "log was rolled back, or another log uses its key and origin",
                 w->known, self->size);
        return;
    }
    if (w->known > 0 && w->known < self->size) {
        int rc = self->prove(self->prove_ctx, w->known, self->size, &proof);
        if (rc < 0) {
            s_failed(self, w, now, "no consistency proof from %" PRIu64 ": %s",
                     w->known, parley_error_name(rc));
            return;
        }
    }
    free(w->body);
    w->body = NULL;
    if (parley__witness_req_build(w->known, proof.path, proof.count, self->note,
                                  self->note_len, &w->body, &w->body_len) != 0) {
        s_failed(self, w, now, "cannot build the request");
        return;
    }
    CURL *e = w->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, w->endpoint);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, w->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->body_len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)self->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "parleyd/" PARLEY_VERSION);
    w->answer_len = 0;
    w->truncated = false;
    w->asked = self->size;
    if (curl_multi_add_handle(self->multi, e) != CURLM_OK) {
        s_failed(self, w, now, "libcurl refused the transfer");
        return;
    }
    w->busy = true;
}

/* A 200 answer: find and check the witness's own cosignature. */
static void
s_on_cosigned(pd_cosign_t *self, s_witness_t *w, int64_t now)
{
    size_t p = 0;
    while (p < w->answer_len) {
        const char *line = w->answer + p;
        const char *nl = memchr(line, '\n', w->answer_len - p);
        if (nl == NULL)
            break;
        size_t ll = (size_t)(nl - line) + 1;
        p += ll;
        parley__cosig_t c;
        if (parley__cosig_parse(line, ll, &c, NULL) != 0 || strcmp(c.name, w->w.name) != 0)
            continue; /* another witness key, or not ours to judge */
        const char *why = NULL;
        if (parley__cosig_check(&c, w->w.name, w->w.pk, self->note, self->text_len,
                                &why) != 0)
            continue;
        if (ll < sizeof(w->line)) {
            memcpy(w->line, line, ll);
            w->line[ll] = '\0';
            w->line_len = ll;
            w->line_size = w->asked;
            w->known = w->asked;
            w->failures = 0;
            self->cosignatures++;
            return;
        }
    }
    s_failed(self, w, now, "its answer holds no valid cosignature of ours");
}

/* A 409 answer: the witness knows another size; ask again from it. */
static void
s_on_conflict(pd_cosign_t *self, s_witness_t *w, int64_t now)
{
    uint64_t size;
    const char *nl = memchr(w->answer, '\n', w->answer_len);
    if (nl == NULL ||
        parley__note_decimal(w->answer, (size_t)(nl - w->answer), (uint64_t)INT64_MAX,
                             &size) != 0) {
        /* Not the size of another history: the witness's reason. */
        size_t n = nl != NULL ? (size_t)(nl - w->answer) : w->answer_len;
        s_failed(self, w, now, "409: %.*s", (int)(n > 160 ? 160 : n), w->answer);
        return;
    }
    if (w->retried || size == w->known) {
        s_failed(self, w, now,
                 "409: it has cosigned size %" PRIu64 ", which does not match "
                 "this checkpoint's history (or another cluster node moved it "
                 "on meanwhile)", size);
        w->known = size;
        return;
    }
    w->known = size;
    w->retried = true;
    s_start(self, w, now);
}

/* One finished transfer. */
static void
s_done(pd_cosign_t *self, s_witness_t *w, CURLcode res, int64_t now)
{
    long status = 0;
    curl_multi_remove_handle(self->multi, w->easy);
    w->busy = false;
    if (res != CURLE_OK) {
        s_failed(self, w, now, "%s", curl_easy_strerror(res));
        return;
    }
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    w->answer[w->answer_len] = '\0';
    if (w->asked != self->size) {
        /* A newer checkpoint came meanwhile: ask again for it, from the
         * size this answer says the witness holds now (a wrong guess is
         * corrected by its 409). */
        if (status == 200)
            w->known = w->asked;
        return;
    }
    if (status == 200 && !w->truncated)
        s_on_cosigned(self, w, now);
    else if (status == 409)
        s_on_conflict(self, w, now);
    else
        s_failed(self, w, now, "HTTP %ld%s%.*s", status,
                 w->answer_len > 0 ? ": " : "",
                 (int)(w->answer_len > 120 ? 120 : w->answer_len), w->answer);
}

long
pd_cosign_poll(pd_cosign_t *c, int64_t now_ms)
{
    if (c == NULL || c->n == 0)
        return -1;
    int running = 0;
    curl_multi_perform(c->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        for (size_t i = 0; i < c->n; i++)
            if (c->ws[i].easy == m->easy_handle && c->ws[i].busy) {
                s_done(c, &c->ws[i], m->data.result, now_ms);
                break;
            }
    }
    long next = -1;
    bool started = false;
    for (size_t i = 0; i < c->n; i++) {
        s_witness_t *w = &c->ws[i];
        bool want = c->have && !w->busy
                    && (w->line_len == 0 || w->line_size != c->size);
        if (want && now_ms >= w->retry_at) {
            s_start(c, w, now_ms);
            started |= w->busy;
        }
        if (w->busy) {
            next = S_BUSY_POLL_MS;
        } else if (want) {
            long wait = (long)(w->retry_at - now_ms);
            if (wait < 0)
                wait = 0;
            if (next < 0 || wait < next)
                next = wait;
        }
    }
    if (started)
        curl_multi_perform(c->multi, &running);
    return next;
}

long
pd_cosign_lines(const pd_cosign_t *c, const char *text, size_t text_len, char *out,
                size_t cap)
{
    if (c == NULL || c->note == NULL || text_len != c->text_len ||
        memcmp(text, c->note, text_len) != 0)
        return 0;
    size_t used = strlen(out), added = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->ws[i].line_len > 0 && c->ws[i].line_size == c->size)
            added += c->ws[i].line_len;
    if (used + added >= cap)
        return -ENOBUFS;
    for (size_t i = 0; i < c->n; i++) {
        const s_witness_t *w = &c->ws[i];
        if (w->line_len > 0 && w->line_size == c->size) {
            memcpy(out + used, w->line, w->line_len + 1);
            used += w->line_len;
        }
    }
    return (long)added;
}

uint64_t
pd_cosign_received(const pd_cosign_t *c)
{
    return c != NULL ? c->cosignatures : 0;
}

uint64_t
pd_cosign_failed(const pd_cosign_t *c)
{
    return c != NULL ? c->failures : 0;
}
