/*
 * backbone.c - parleyd's NATS JetStream client (see backbone.h): helpers,
 * health and events, the connection's callbacks, open and close, status.
 * The other files of the module are listed in backbone_int.h.
 *
 * Threads and locking. One mutex (mu) guards every field below the
 * "shared" line of struct pd_backbone. Four kinds of threads take it:
 * the caller's loop, our submit, control and check threads, and nats.c's
 * threads (the PubAck handler, the follower's message handler, the
 * handler of the leader checks' answers in backbone_check.c, the
 * connection callbacks). No nats.c function is ever called with mu held,
 * so nats.c's own locks and ours never nest in two orders.
 *
 * A submit: the loop builds the natsMsg (subject, headers, a copy of the
 * bytes), enters it in the in-flight map (natsMsg pointer -> token) and
 * queues it for the submit thread, which hands it to
 * js_PublishMsgAsync(); the PubAck handler (or nats.c's timeout of
 * publish_timeout_ms) looks the token up and queues a completion. A
 * submit counts against max_inflight until the loop has taken its
 * completion, so the completion ring never overflows.
 *
 * The follower: a push consumer whose handler queues records. Each
 * subscription carries a generation; bumping the generation (pause,
 * stall) makes the handler drop what that subscription still delivers,
 * and the control thread then unsubscribes and, when the loop has room
 * again, subscribes from the next seq wanted. So the queue holds seqs in
 * order without gaps or repeats, whatever the subscriptions do.
 */
#include "backbone_int.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ============================================================ helpers */

void
pd_backbone__err(char *buf, size_t cap, const char *fmt, ...)
{
    if (buf == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* nats.c's last error text for this thread, or the status name. */
const char *
pd_backbone__nats_text(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return t != NULL && t[0] != '\0' ? t : natsStatus_GetText(s);
}

const char *
pd_backbone_health_name(pd_backbone_health_t h)
{
    switch (h) {
    case PD_BACKBONE_OK:
        return "ok";
    case PD_BACKBONE_DISCONNECTED:
        return "disconnected";
    case PD_BACKBONE_NO_QUORUM:
        return "no_quorum";
    case PD_BACKBONE_NO_STREAM:
        return "no_stream";
    case PD_BACKBONE_DIVERGED:
        return "diverged";
    }
    return "unknown";
}

const char *
pd_backbone_result_name(pd_backbone_result_t r)
{
    switch (r) {
    case PD_BACKBONE_STORED:
        return "stored";
    case PD_BACKBONE_CONFLICT:
        return "conflict";
    case PD_BACKBONE_UNAVAILABLE:
        return "unavailable";
    case PD_BACKBONE_REFUSED:
        return "refused";
    }
    return "unknown";
}

int
pd_backbone_subject(char *out, size_t cap, const char *stream,
                    const uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(signer, id);
    int n = snprintf(out, cap, "%s" S_SUBJECT_MID "%s", stream, id);
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : 0;
}

int
pd_backbone_msg_id(char *out, size_t cap,
                   const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                   uint64_t signer_seq)
{
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(signer, id);
    int n = snprintf(out, cap, "%s-%" PRIu64, id, signer_seq);
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : 0;
}

int
pd_backbone_parse_last_seq(const char *text, uint64_t *out)
{
    if (text == NULL)
        return -EINVAL;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n'))
        n--;
    size_t end = n;
    while (n > 0 && text[n - 1] >= '0' && text[n - 1] <= '9')
        n--;
    if (n == end || end - n > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = n; i < end; i++) {
        uint64_t d = (uint64_t)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* The key id in a subject "<prefix><16 hex>", or "" if not that form. */
void
pd_backbone__subject_key(const char *prefix, const char *subject,
                         char out[PARLEY_KEYID_CHARS + 1])
{
    out[0] = '\0';
    size_t pl = strlen(prefix);
    if (subject == NULL || strncmp(subject, prefix, pl) != 0)
        return;
    const char *k = subject + pl;
    if (strlen(k) != PARLEY_KEYID_CHARS)
        return;
    for (size_t i = 0; i < PARLEY_KEYID_CHARS; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
            return;
    memcpy(out, k, PARLEY_KEYID_CHARS + 1);
}

void
pd_backbone__name_thread(const char *name)
{
    static _Thread_local bool named;
    if (!named) {
        named = true;
        pthread_setname_np(pthread_self(), name);
    }
}

/* Free a list of records. */
void
pd_backbone__recs_free(s_rec_t *r)
{
    while (r != NULL) {
        s_rec_t *next = r->next;
        free(r);
        r = next;
    }
}

/* Append r to the list head..tail. */
void
pd_backbone__recs_append(s_rec_t **head, s_rec_t **tail, s_rec_t *r)
{
    r->next = NULL;
    if (*tail != NULL)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

/* Wait on cv (mu held) for at most ms, or until signalled. */
void
pd_backbone__wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ms > 0) {
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ============================================================ events */

/* Make the eventfd readable unless it already is. Call with mu held. */
void
pd_backbone__signal_locked(pd_backbone_t *self)
{
    if (self->signalled)
        return;
    self->signalled = true;
    uint64_t one = 1;
    ssize_t w = write(self->efd, &one, sizeof(one));
    (void)w; /* only fails when the counter is full: still readable */
}

pd_backbone_health_t
pd_backbone__health_locked(const pd_backbone_t *self)
{
    if (!self->conn_up)
        return PD_BACKBONE_DISCONNECTED;
    if (self->stream_missing)
        return PD_BACKBONE_NO_STREAM;
    if (self->diverged)
        return PD_BACKBONE_DIVERGED;
    if (self->submit_failed || !self->probe_quorum)
        return PD_BACKBONE_NO_QUORUM;
    return PD_BACKBONE_OK;
}

/* Leave catching-up once everything the stream held is handed over, or
 * once all that is left waits for a leader to confirm it while there is
 * none to ask: then no node can get further, and this one is not cut
 * off, only waiting with everyone else. */
void
pd_backbone__catch_check_locked(pd_backbone_t *self)
{
    bool waiting = self->check_unanswered && self->rec_head == NULL;
    if (self->catching && self->following && self->conn_up
        && self->stream_last_known
        && (waiting
            || (self->rec_n == 0 && self->handed >= self->stream_last)))
        self->catching = false;
}

/* Queue an EV_STATE if health or catching_up changed. mu held. */
void
pd_backbone__state_locked(pd_backbone_t *self)
{
    pd_backbone__catch_check_locked(self);
    pd_backbone_health_t h = pd_backbone__health_locked(self);
    bool c = self->following && self->catching;
    if (h == PD_BACKBONE_OK && h != self->told_health)
        pd_backbone__detail_locked(self, "stream %s%s%s via %.100s", self->stream,
                        self->leader[0] != '\0' ? " led by " : "",
                        self->leader, self->server);
    if (h != self->told_health || c != self->told_catching) {
        self->state_dirty = true;
        pd_backbone__signal_locked(self);
    }
}

void
pd_backbone__detail_locked(pd_backbone_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->detail, sizeof(self->detail), fmt, ap);
    va_end(ap);
}

static void
s_on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    pd_backbone_t *self = closure;
    pthread_mutex_lock(&self->mu);
    if (self->conn_up)
        pd_backbone__detail_locked(self, "disconnected from %s; reconnecting",
                        self->server);
    self->conn_up = false;
    self->stream_last_known = false;
    self->catching = true;
    pd_backbone__state_locked(self);
    pthread_mutex_unlock(&self->mu);
}

static void
s_on_reconnected(natsConnection *nc, void *closure)
{
    pd_backbone_t *self = closure;
    char url[128] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    pthread_mutex_lock(&self->mu);
    snprintf(self->server, sizeof(self->server), "%s", url);
    self->conn_up = true;
    self->n_reconnects++;
    self->catching = true;
    self->probe_now = true;
    /* A submit that timed out says nothing of the servers reached now:
     * the probe decides again. */
    self->submit_failed = false;
    pd_backbone__detail_locked(self, "reconnected to %s", url);
    pthread_cond_signal(&self->cv_ctl);
    pd_backbone__state_locked(self);
    pthread_mutex_unlock(&self->mu);
}

static void
s_on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    pd_backbone_t *self = closure;
    pthread_mutex_lock(&self->mu);
    self->conn_closed = true;
    self->conn_up = false;
    pthread_cond_broadcast(&self->cv_done);
    pthread_mutex_unlock(&self->mu);
}

static void
s_on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                 void *closure)
{
    (void)nc;
    (void)sub;
    (void)err;
    pd_backbone_t *self = closure;
    pthread_mutex_lock(&self->mu);
    self->n_async_errors++;
    pthread_mutex_unlock(&self->mu);
}

/* ============================================================ open/close */

/* TLS (asked for by a tls:// server or a TLS file) and credentials. */
static natsStatus
s_nats_secure(natsOptions *no, const pd_backbone_opts_t *o,
              const char *const *servers, int n)
{
    natsStatus s = NATS_OK;
    bool tls = o->tls_ca_file != NULL || o->tls_cert_file != NULL
               || o->tls_hostname != NULL;
    for (int i = 0; i < n; i++)
        tls = tls || strncmp(servers[i], "tls://", 6) == 0;
    if (tls)
        s = natsOptions_SetSecure(no, true);
    if (s == NATS_OK && o->tls_ca_file != NULL)
        s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca_file);
    if (s == NATS_OK && o->tls_cert_file != NULL)
        s = natsOptions_LoadCertificatesChain(no, o->tls_cert_file,
                                              o->tls_key_file);
    if (s == NATS_OK && o->tls_hostname != NULL)
        s = natsOptions_SetExpectedHostname(no, o->tls_hostname);
    if (s == NATS_OK && o->creds_file != NULL)
        s = natsOptions_SetUserCredentialsFromFiles(no, o->creds_file, NULL);
    return s;
}

/* The connection's options: servers, reconnects, pings, callbacks. */
static natsStatus
s_nats_options(pd_backbone_t *self, const pd_backbone_opts_t *o,
               const char *const *servers, int n)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    self->nopts = no;
    if (s == NATS_OK)
        s = natsOptions_SetServers(no, (const char **)servers, n);
    if (s == NATS_OK && o->name != NULL)
        s = natsOptions_SetName(no, o->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(no, 100, 500);
    /* A stopped server is noticed within about 2 s (2 pings unanswered). */
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(no, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(no, 2);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(no, s_on_disconnected, self);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(no, s_on_reconnected, self);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(no, s_on_closed, self);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(no, s_on_async_error, self);
    return s == NATS_OK ? s_nats_secure(no, o, servers, n) : s;
}

/* Connect, retrying unreachable servers until deadline. */
static int
s_connect(pd_backbone_t *self, int64_t deadline, char *errbuf, size_t errlen)
{
    for (;;) {
        natsStatus s = natsConnection_Connect(&self->nc, self->nopts);
        if (s == NATS_OK)
            return 0;
        const char *why = pd_backbone__nats_text(s);
        if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED
            || s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_WANTED
            || s == NATS_SECURE_CONNECTION_REQUIRED) {
            pd_backbone__err(errbuf, errlen, "backbone: the NATS servers refuse us: %s",
                  why);
            return -EACCES;
        }
        if (parley__mono_ms() + S_RETRY_MS >= deadline) {
            pd_backbone__err(errbuf, errlen, "backbone: no NATS server answers: %s", why);
            return -ETIMEDOUT;
        }
        nats_Sleep(S_RETRY_MS);
    }
}

/* A backbone with o's settings, its tables, queues and eventfd, not
 * connected. NULL with *err set (and errbuf) on failure. */
static pd_backbone_t *
s_new(const pd_backbone_opts_t *o, char *errbuf, size_t errlen, int *err)
{
    pd_backbone_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->efd = -1;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv_submit, NULL);
    pthread_cond_init(&self->cv_ctl, NULL);
    pthread_cond_init(&self->cv_check, NULL);
    pthread_cond_init(&self->cv_done, NULL);

    snprintf(self->stream, sizeof(self->stream), "%s",
             o->stream != NULL ? o->stream : S_DEFAULT_STREAM);
    snprintf(self->prefix, sizeof(self->prefix), "%s" S_SUBJECT_MID,
             self->stream);
    snprintf(self->filter, sizeof(self->filter), "%s" S_SUBJECT_MID "*",
             self->stream);
    self->replicas = o->replicas;
    uint64_t window = o->duplicate_window != 0
                          ? o->duplicate_window
                          : 2 * (uint64_t)o->max_clock_skew;
    self->dup_window_ns = (int64_t)window * S_NS_PER_S;
    self->max_age_ns = (int64_t)o->retention_age * S_NS_PER_S;
    self->max_bytes = o->retention_bytes != 0 ? (int64_t)o->retention_bytes
                                              : -1;
    self->max_message_bytes = o->max_message_bytes;
    self->publish_timeout_ms = o->publish_timeout_ms;
    self->max_inflight = o->max_inflight;
    self->follow_max_records = o->follow_max_records;
    self->follow_max_bytes = o->follow_max_bytes;

    self->outq = calloc(self->max_inflight, sizeof(*self->outq));
    self->done = calloc(self->max_inflight, sizeof(*self->done));
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pd_backbone__tab_init(&self->msgs, self->max_inflight) < 0
        || pd_backbone__tab_init(&self->subjects, self->max_inflight) < 0
        || self->outq == NULL || self->done == NULL || self->efd < 0) {
        *err = self->efd < 0 ? -errno : -ENOMEM;
        pd_backbone__err(errbuf, errlen, "backbone: %s", strerror(-*err));
        pd_backbone_close(&self);
    }
    return self;
}

/* Connect to the servers of o, make the JetStream context and make sure
 * of the stream, until deadline. Returns 0 or a negative error. */
static int
s_connect_stream(pd_backbone_t *self, const pd_backbone_opts_t *o,
                 int64_t deadline, char *errbuf, size_t errlen)
{
    char buf[PD_BACKBONE_SERVERS_MAX * 257];
    const char *servers[PD_BACKBONE_SERVERS_MAX];
    int n = pd_backbone__split_servers(o->servers, buf, sizeof(buf), servers,
                                       errbuf, errlen);
    natsStatus s = s_nats_options(self, o, servers, n);
    if (s != NATS_OK) {
        pd_backbone__err(errbuf, errlen, "backbone: NATS client options: %s",
                         pd_backbone__nats_text(s));
        return s == NATS_SSL_ERROR ? -EACCES : -EINVAL;
    }
    int rc = s_connect(self, deadline, errbuf, errlen);
    if (rc < 0)
        return rc;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = self->publish_timeout_ms < 500    ? 500
              : self->publish_timeout_ms > 5000 ? 5000
                                                : self->publish_timeout_ms;
    jo.PublishAsync.AckHandler = pd_backbone__on_puback;
    jo.PublishAsync.AckHandlerClosure = self;
    if ((s = natsConnection_JetStream(&self->js, self->nc, &jo)) != NATS_OK) {
        pd_backbone__err(errbuf, errlen, "backbone: JetStream context: %s",
                         pd_backbone__nats_text(s));
        return -ENOMEM;
    }
    return pd_backbone__stream_ensure(self, deadline, errbuf, errlen);
}

/* Start the submit, control and check threads. Returns 0 or -EAGAIN. */
static int
s_start_threads(pd_backbone_t *self)
{
    if (pthread_create(&self->submit_thr, NULL, pd_backbone__submit_main,
                       self)
        != 0)
        return -EAGAIN;
    bool ctl = pthread_create(&self->ctl_thr, NULL, pd_backbone__ctl_main,
                              self)
               == 0;
    if (!ctl
        || pthread_create(&self->check_thr, NULL, pd_backbone__check_main,
                          self)
               != 0) {
        pthread_mutex_lock(&self->mu);
        self->closing = true;
        pthread_cond_broadcast(&self->cv_submit);
        pthread_cond_broadcast(&self->cv_ctl);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->submit_thr, NULL);
        if (ctl)
            pthread_join(self->ctl_thr, NULL);
        return -EAGAIN;
    }
    /* Named for per-thread CPU figures (top -H, /proc/PID/task). */
    pthread_setname_np(self->submit_thr, "bb-submit");
    pthread_setname_np(self->ctl_thr, "bb-control");
    pthread_setname_np(self->check_thr, "bb-check");
    self->threads = true;
    return 0;
}

pd_backbone_t *
pd_backbone_open(const pd_backbone_opts_t *o, char *errbuf, size_t errlen,
                 int *err)
{
    int64_t deadline = parley__mono_ms() + (o->open_timeout_ms > 0
                                          ? o->open_timeout_ms
                                          : 10000);
    int rc = pd_backbone_opts_check(o, errbuf, errlen);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    pd_backbone_t *self = s_new(o, errbuf, errlen, err);
    if (self == NULL)
        return NULL;
    if ((rc = s_connect_stream(self, o, deadline, errbuf, errlen)) < 0)
        goto fail;
    natsConnection_GetConnectedUrl(self->nc, self->server,
                                   sizeof(self->server));
    self->conn_up = !natsConnection_IsReconnecting(self->nc);
    self->probe_quorum = true;
    self->stream_last_known = true;
    self->told_health = PD_BACKBONE_OK;
    snprintf(self->detail, sizeof(self->detail), "stream %s ready on %.100s",
             self->stream, self->server);
    if ((rc = pd_backbone__check_open(self, errbuf, errlen)) < 0
        || (rc = s_start_threads(self)) < 0)
        goto fail;
    /* Health as of now (a disconnect during open shows at once). */
    pthread_mutex_lock(&self->mu);
    self->probe_now = true;
    pthread_cond_signal(&self->cv_ctl);
    pd_backbone__state_locked(self);
    pthread_mutex_unlock(&self->mu);
    return self;
fail:
    *err = rc;
    pd_backbone_close(&self);
    return NULL;
}

/* Wait on cv_done until cond holds or ms pass; mu held. */
#define S_WAIT_DONE(self, cond, ms)                                            \
    do {                                                                       \
        struct timespec ts_;                                                   \
        clock_gettime(CLOCK_REALTIME, &ts_);                                   \
        ts_.tv_sec += (ms) / 1000;                                             \
        while (!(cond)                                                         \
               && pthread_cond_timedwait(&(self)->cv_done, &(self)->mu, &ts_)  \
                      == 0)                                                    \
            ;                                                                  \
    } while (0)

/*
 * Close: stop the threads, let every publish time out, close the
 * connection and wait for nats.c's last callbacks. Returns false if they
 * did not finish (nats.c may still call back with self).
 */
static bool
s_close_nats(pd_backbone_t *self)
{
    bool leak = false;
    pthread_mutex_lock(&self->mu);
    self->closing = true;
    pthread_cond_broadcast(&self->cv_submit);
    pthread_cond_broadcast(&self->cv_ctl);
    pthread_cond_broadcast(&self->cv_check);
    pthread_mutex_unlock(&self->mu);
    if (self->threads) {
        pthread_join(self->submit_thr, NULL);
        pthread_join(self->ctl_thr, NULL);
        pthread_join(self->check_thr, NULL);
    }
    if (self->js != NULL) {
        /* Every publish has a timeout: after this no PubAck handler runs. */
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = (int64_t)self->publish_timeout_ms + 1000;
        if (js_PublishAsyncComplete(self->js, &po) != NATS_OK)
            leak = true;
    }
    pd_backbone__follow_unsubscribe(self);
    pd_backbone__check_close(self);
    if (self->nc != NULL) {
        natsConnection_Close(self->nc);
        pthread_mutex_lock(&self->mu);
        S_WAIT_DONE(self, self->conn_closed && self->subs_alive == 0,
                    S_CLOSE_WAIT_MS);
        leak = leak || !self->conn_closed || self->subs_alive != 0;
        pthread_mutex_unlock(&self->mu);
    }
    jsCtx_Destroy(self->js);
    natsConnection_Destroy(self->nc);
    natsOptions_Destroy(self->nopts);
    return !leak;
}

/* Close: free the submits never handed to nats.c (queued, parked or
 * waiting their turn) and the records never taken. */
static void
s_free_queued(pd_backbone_t *self)
{
    while (self->outq != NULL && self->outq_n > 0) {
        natsMsg_Destroy(self->outq[self->outq_head]);
        self->outq_head = (self->outq_head + 1) % self->max_inflight;
        self->outq_n--;
    }
    for (size_t i = 0; self->subjects.e != NULL && i < self->subjects.cap;
         i++) {
        if (!self->subjects.e[i].used)
            continue;
        if (self->subjects.e[i].parked != NULL)
            natsMsg_Destroy(self->subjects.e[i].parked);
        for (s_wait_t *w = self->subjects.e[i].head; w != NULL;) {
            s_wait_t *next = w->next;
            natsMsg_Destroy(w->msg);
            free(w);
            w = next;
        }
    }
    pd_backbone__recs_free(self->raw_head);
    pd_backbone__recs_free(self->rec_head);
    free(self->last_ok);
    free(self->ck_buf);
}

void
pd_backbone_close(pd_backbone_t **bbp)
{
    if (bbp == NULL || *bbp == NULL)
        return;
    pd_backbone_t *self = *bbp;
    *bbp = NULL;
    if (!s_close_nats(self)) {
        /* nats.c may still call back with self: keep it (and say so in
         * the one place that can: stderr of a closing daemon). */
        fprintf(stderr, "backbone: nats.c did not finish its callbacks "
                        "within %d ms; leaving its state allocated\n",
                S_CLOSE_WAIT_MS);
        return;
    }
    s_free_queued(self);
    free(self->cur);
    free(self->msgs.e);
    free(self->subjects.e);
    free(self->outq);
    free(self->done);
    if (self->efd >= 0)
        close(self->efd);
    pthread_cond_destroy(&self->cv_submit);
    pthread_cond_destroy(&self->cv_ctl);
    pthread_cond_destroy(&self->cv_check);
    pthread_cond_destroy(&self->cv_done);
    pthread_mutex_destroy(&self->mu);
    free(self);
}

void
pd_backbone_library_close(void)
{
    nats_CloseAndWait(2000);
}

int
pd_backbone_fd(const pd_backbone_t *self)
{
    return self->efd;
}


void
pd_backbone_status(pd_backbone_t *self, pd_backbone_status_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&self->mu);
    out->health = pd_backbone__health_locked(self);
    out->following = self->following;
    out->catching_up = self->following && self->catching;
    out->followed = self->handed;
    out->read = self->follow_next > 0 ? self->follow_next - 1 : 0;
    out->stream_last = self->stream_last;
    out->inflight = self->inflight;
    snprintf(out->server, sizeof(out->server), "%s", self->server);
    snprintf(out->leader, sizeof(out->leader), "%s", self->leader);
    snprintf(out->detail, sizeof(out->detail), "%s", self->detail);
    out->submitted = self->n_submitted;
    out->stored = self->n_stored;
    out->duplicates = self->n_duplicates;
    out->conflicts = self->n_conflicts;
    out->unavailable = self->n_unavailable;
    out->timeouts = self->n_timeouts;
    out->refused = self->n_refused;
    out->records = self->n_records;
    out->subscribes = self->n_subscribes;
    out->pauses = self->n_pauses;
    out->reconnects = self->n_reconnects;
    out->async_errors = self->n_async_errors;
    out->probes = self->n_probes;
    out->probes_failed = self->n_probes_failed;
    out->gaps = self->n_gaps;
    out->checked = self->n_checked;
    out->rereads = self->n_rereads;
    out->check_unanswered = self->n_check_unanswered;
    out->check_absent = self->n_check_absent;
    out->late_answers = self->n_late;
    out->stream_first = self->stream_first;
    out->created = self->created;
    pthread_mutex_unlock(&self->mu);
}
