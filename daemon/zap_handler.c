/*
 * zap_handler.c - who gets in: the ZAP handler, the secured sockets and
 * their monitors, connection accounting, and the retirement of the
 * handler socket. What an admitted connection may then do (its
 * subscriptions, the access classes, the reload of the allow-list) is
 * zap.c; zap_int.h holds what both read.
 *
 *
 * Connection numbers: the handler gives every connection it admits a
 * number (a counter) and keeps a record of it in a ring of slots indexed
 * by number modulo the ring size (twice max_connections). A record holds
 * the connection's user id, address and how many subscriptions it was
 * granted. libzmq does not tell us when a particular connection closes,
 * so a record lives until its slot is needed again; since at most
 * max_connections are open at once, only a connection older than
 * max_connections newer ones can lose its record, and then its further
 * subscriptions are refused (safe, and logged).
 *
 * Retiring the handler socket: libzmq gives each connection that asks ZAP
 * its own pipe to the handler (a pair of 16 KB message queues and their
 * bookkeeping) and keeps it until the connection closes, although it is
 * used only during the handshake: ~10 KB of resident memory per
 * subscriber (measured with bench/memory.c), a third of what a connection
 * costs. Closing the handler socket ends those pipes (each connection
 * asks ZAP once, at its handshake, and is answered at once). So
 * pd_zap_tick(), once the handler has served requests and for S_QUIET_MS
 * neither a request nor a new connection has come, binds a fresh socket
 * in its place, answers on the retired one for S_GRACE_MS more (a
 * request already on its way), then closes it and, a moment later,
 * returns the freed pages (pd_heap_give_back()). A freed pipe still
 * leaves a touched page in the heap that this cannot give back (it
 * shares it with live memory) and that only a later connection reuses;
 * so in
 * a crowd, which never pauses for S_QUIET_MS, the handler is retired
 * every S_CROWD_SERVED requests too, at a moment when every connection
 * in its handshake has already asked (s_crowd()), and the crowd's later
 * connections are made in its earlier ones' freed pipes. This needs ZAP
 * enforced
 * (ZMQ_ZAP_ENFORCE_DOMAIN), so that a handshake that finds no handler
 * bound fails rather than gets in unasked; without it the handler is
 * never retired.
 *
 * The moment of the renewal: libzmq cannot put a handler in the place of
 * another at once, so between the unbind and the bind no handler is
 * bound, and a handshake asking then fails (ZAP is enforced). With CURVE
 * libzmq drops the connection and the client reconnects at once; with
 * NULL (curve off) the handshake is stuck until handshake_timeout, as
 * nothing more comes from either side. So the handler is retired only
 * while no connection is in its handshake (the monitors count accepts
 * and handshake ends; a connection is accepted a round trip or more
 * before it asks, and its accept wakes the loop), and none was accepted
 * for S_QUIET_MS; or, in a crowd, while every connection in its
 * handshake has already asked (its pipe is to the old handler, which
 * answers through the grace). One accepted in the microseconds of the
 * renewal itself
 * can still ask while no handler is bound: those connections are noted
 * as they are accepted (their descriptors, from the monitor), and when
 * the monitor reports a handshake that found no handler they are shut
 * down, so that their clients reconnect at once (s_rescue()).
 */
#include "zap_int.h"

#include "clock.h"
#include "facts.h"
#include "heap.h"
#include "keys.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* ZMQ_ZAP_ENFORCE_DOMAIN is a draft option of libzmq 4.3; its number is
 * stable. Where the library lacks it, setting it fails and is skipped. */
#ifdef ZMQ_ZAP_ENFORCE_DOMAIN
#define S_ZAP_ENFORCE ZMQ_ZAP_ENFORCE_DOMAIN
#else
#define S_ZAP_ENFORCE 93
#endif
#define S_MONITOR_EVENTS                                                       \
    (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED                               \
     | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH         \
     | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL                                    \
     | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
#define S_FRAMES_MAX 8       /* ZAP request frames read (CURVE needs 7) */
#define S_MONITOR_HWM 100000 /* events held for the loop (tiny each) */
/* How long a retired handler socket still answers (see pd_zap_tick()),
 * and how long after closing it libzmq is given to free its pipes. */
#define S_GRACE_MS 200
/* Handshakes come in bursts (clients reconnecting, a deploy): the handler
 * is retired only once none has come for this long, so that the moment
 * it is unbound rarely meets a handshake. */
#define S_QUIET_MS 100
#define S_TRIM_DELAY_MS 100
/* Requests a handler serves in a crowd before it is retired without a
 * pause (s_crowd()). At most one retirement per S_GRACE_MS either way. */
#define S_CROWD_SERVED 32

static uint64_t s_live(const pd_zap_t *self);
static uint64_t s_shaking(const pd_zap_t *self);

/* ================================================================ setup */

/* Say what is wrong with the server's secret key file, and how to fix it. */
static void
s_log_secret_error(const char *path, int rc)
{
    struct stat st;
    if (rc == PARLEY_EKEYPERM && lstat(path, &st) == 0) {
        pd_log(PD_LOG_ERROR,
               "curve_secret_key %s: refusing a secret key file with mode "
               "%04o owned by uid %u: it must be a regular file of uid %u "
               "with no group or other permissions; fix it with: "
               "chmod 600 %s%s",
               path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
               (unsigned)geteuid(), path,
               st.st_uid != geteuid() ? " and chown it to parleyd's user" : "");
    } else if (rc == PARLEY_EKEYFILE) {
        pd_log(PD_LOG_ERROR,
               "curve_secret_key %s: not a CURVE secret key file (make one "
               "with: parley keygen --curve -o %s)",
               path, path);
    } else {
        pd_log(PD_LOG_ERROR, "curve_secret_key %s: %s", path,
               parley_strerror(rc));
    }
}

static int
s_load_curve(pd_zap_t *self, const pd_config_t *cfg)
{
    char errbuf[512];
    int rc;
    if ((self->secret = sodium_malloc(PARLEY__CURVE_BYTES)) == NULL)
        return -ENOMEM;
    rc = parley__curve_secret_load(cfg->curve_secret_key, self->public_z85,
                                   self->secret);
    if (rc < 0) {
        s_log_secret_error(cfg->curve_secret_key, rc);
        return rc;
    }
    self->clients =
        pd_clients_load(cfg->curve_clients, errbuf, sizeof(errbuf), &rc);
    if (self->clients == NULL) {
        pd_log(PD_LOG_ERROR, "curve_clients: %s", errbuf);
        return rc;
    }
    if (pd_clients_size(self->clients) == 0)
        pd_log(PD_LOG_WARN,
               "curve_clients %s lists no client: every "
               "connection will be refused",
               cfg->curve_clients);
    pd_log(
        PD_LOG_INFO, "CURVE on: server public key %s; %zu clients allowed (%s)",
        self->public_z85, pd_clients_size(self->clients), cfg->curve_clients);
    return 0;
}

/* A REP socket for the handler, not bound yet; NULL with zmq_errno set. */
static void *
s_rep_new(void *ctx)
{
    int zero = 0;
    void *rep = zmq_socket(ctx, ZMQ_REP);
    if (rep != NULL
        && zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof(zero)) != 0) {
        int e = zmq_errno();
        zmq_close(rep);
        errno = e;
        return NULL;
    }
    return rep;
}

pd_zap_t *
pd_zap_new(void *ctx, const pd_config_t *cfg, int *err)
{
    pd_zap_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->ctx = ctx;
    self->curve = cfg->curve;
    self->max_connections = cfg->max_connections;
    self->max_subscriptions = cfg->max_subscriptions;
    self->handshake_ms = (int)cfg->handshake_timeout;
    snprintf(self->clients_path, sizeof(self->clients_path), "%s",
             cfg->curve_clients);
    self->next_conn = 1;
    self->n_conns = 2 * (size_t)cfg->max_connections;
    if (self->n_conns < 64)
        self->n_conns = 64;
    if ((self->conns = calloc(self->n_conns, sizeof(*self->conns))) == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    if (self->curve && (*err = s_load_curve(self, cfg)) < 0)
        goto fail;
    self->enforced = true;
    if ((self->rep = s_rep_new(ctx)) == NULL
        || zmq_bind(self->rep, S_ZAP_ENDPOINT) != 0) {
        *err = -zmq_errno();
        pd_log(PD_LOG_ERROR, "cannot start the ZAP handler: %s",
               zmq_strerror(-*err));
        goto fail;
    }
    *err = 0;
    return self;
fail:
    pd_zap_destroy(&self);
    return NULL;
}

void
pd_zap_destroy(pd_zap_t **zapp)
{
    if (zapp == NULL || *zapp == NULL)
        return;
    pd_zap_t *self = *zapp;
    for (size_t i = 0; i < self->n_watch; i++)
        if (self->watch[i].monitor != NULL)
            zmq_close(self->watch[i].monitor);
    if (self->old != NULL)
        zmq_close(self->old);
    if (self->rep != NULL)
        zmq_close(self->rep);
    pd_zap_forget_secret(self);
    pd_clients_destroy(&self->clients);
    free(self->conns);
    free(self);
    *zapp = NULL;
}

/*
 * Give sock the server's CURVE secret key: ours until it is wiped, then
 * the one the first secured socket holds (a feed socket made on reload).
 */
static int
s_curve_key(pd_zap_t *self, void *sock)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0)
        return -zmq_errno();
    if (self->secret != NULL)
        return zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, self->secret,
                              PARLEY__CURVE_BYTES)
                       == 0
                   ? 0
                   : -zmq_errno();
    uint8_t *key = self->n_watch > 0 ? sodium_malloc(PARLEY__CURVE_BYTES)
                                     : NULL;
    size_t len = PARLEY__CURVE_BYTES;
    int rc = -EINVAL;
    if (key != NULL
        && zmq_getsockopt(self->watch[0].sock, ZMQ_CURVE_SECRETKEY, key,
                          &len)
               == 0
        && len == PARLEY__CURVE_BYTES)
        rc = zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, key, len) == 0
                 ? 0
                 : -zmq_errno();
    if (key != NULL)
        sodium_free(key); /* wipes */
    return rc;
}

int
pd_zap_secure(pd_zap_t *self, void *sock, const char *name, int klass)
{
    int one = 1, zero = 0;
    if (self->n_watch == PD_ZAP_SOCKETS)
        return -ENOSPC;
    pd_zap_watch_t *w = &self->watch[self->n_watch];
    memset(w, 0, sizeof(*w));
    w->klass = klass;
    unsigned serial = self->serial++;
    /* A domain per socket: the ZAP request names it, and so says which
     * socket (and for a feed, which class) a connection is for. */
    snprintf(w->domain, sizeof(w->domain), "%s-%u", PD_ZAP_DOMAIN, serial);
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, w->domain, strlen(w->domain))
            != 0
        || zmq_setsockopt(sock, ZMQ_HANDSHAKE_IVL, &self->handshake_ms,
                          sizeof(self->handshake_ms))
               != 0)
        return -zmq_errno();
    /* With the handler bound first it is always asked; enforcing the
     * domain also refuses connections should it ever be missing. */
    if (zmq_setsockopt(sock, S_ZAP_ENFORCE, &one, sizeof(one)) != 0) {
        /* Then a connection that finds no handler bound gets in unasked,
         * so the handler is never rebound (see pd_zap_tick()). */
        if (self->enforced)
            pd_log(PD_LOG_DEBUG, "libzmq lacks ZMQ_ZAP_ENFORCE_DOMAIN; "
                                 "relying on the ZAP handler being bound");
        self->enforced = false;
    }
    int rc;
    if (self->curve && (rc = s_curve_key(self, sock)) < 0)
        return rc;

    char ep[64];
    snprintf(w->name, sizeof(w->name), "%s", name);
    snprintf(ep, sizeof(ep), "inproc://parleyd.monitor.%u", serial);
    /* libzmq's I/O thread blocks when the monitor pipe is full, so the
     * pipe is deep: events wait there while a long turn (an fsync) keeps
     * the loop from reading them. */
    int hwm = S_MONITOR_HWM;
    if (zmq_socket_monitor(sock, ep, S_MONITOR_EVENTS) != 0
        || (w->monitor = zmq_socket(self->ctx, ZMQ_PAIR)) == NULL
        || zmq_setsockopt(w->monitor, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_setsockopt(w->monitor, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0
        || zmq_connect(w->monitor, ep) != 0) {
        rc = -zmq_errno();
        if (w->monitor != NULL)
            zmq_close(w->monitor);
        w->monitor = NULL;
        return rc;
    }
    w->sock = sock;
    self->n_watch++;
    return 0;
}

void
pd_zap_release(pd_zap_t *self, void *sock)
{
    for (size_t i = 0; i < self->n_watch; i++) {
        if (self->watch[i].sock != sock)
            continue;
        zmq_socket_monitor(sock, NULL, 0);
        zmq_close(self->watch[i].monitor);
        /* s_curve_key() copies the key from watch[0]: any socket still
         * secured holds it */
        memmove(&self->watch[i], &self->watch[i + 1],
                (self->n_watch - i - 1) * sizeof(self->watch[0]));
        self->n_watch--;
        self->counters.connections = s_live(self);
        return;
    }
}

void
pd_zap_forget_secret(pd_zap_t *self)
{
    if (self->secret != NULL) {
        sodium_free(self->secret); /* wipes before unmapping */
        self->secret = NULL;
    }
}

const char *
pd_zap_public_key(const pd_zap_t *self)
{
    return self->public_z85;
}

size_t
pd_zap_clients(const pd_zap_t *self)
{
    return pd_clients_size(self->clients);
}

const pd_zap_counters_t *
pd_zap_counters(const pd_zap_t *self)
{
    return &self->counters;
}

static uint64_t
s_curve_clients(const void *ctx)
{
    return pd_zap_clients(ctx);
}

void
pd_zap_stats_register(const pd_zap_t *self, pd_stats_t *st)
{
    const pd_zap_counters_t *c = &self->counters;
    pd_stats_counter(st, PD_STAT_CONNECTIONS, &c->connections);
    pd_stats_counter(st, PD_STAT_CONNECTIONS_REFUSED, &c->connections_refused);
    pd_stats_counter(st, PD_STAT_AUTH_DENIED, &c->auth_denied);
    pd_stats_counter(st, PD_STAT_HANDSHAKE_FAILED, &c->handshake_failed);
    pd_stats_counter(st, PD_STAT_SUBSCRIPTIONS_DENIED,
                     &c->subscriptions_denied);
    pd_stats_counter(st, PD_STAT_SUBSCRIPTIONS_PARTIAL,
                     &c->subscriptions_partial);
    pd_stats_getter(st, PD_STAT_CURVE_CLIENTS, s_curve_clients, self);
}

size_t
pd_zap_items(const pd_zap_t *self, zmq_pollitem_t *items)
{
    size_t n = 0;
    /* Monitors first: a connection's ACCEPTED event is queued before its
     * ZAP request, and the connection cap needs it counted. */
    for (size_t i = 0; i < self->n_watch; i++)
        items[n++] =
            (zmq_pollitem_t){ self->watch[i].monitor, 0, ZMQ_POLLIN, 0 };
    items[n++] = (zmq_pollitem_t){ self->rep, 0, ZMQ_POLLIN, 0 };
    if (self->old != NULL)
        items[n++] = (zmq_pollitem_t){ self->old, 0, ZMQ_POLLIN, 0 };
    return n;
}

/* ============================================================== monitors */

static const char *
s_protocol_error(uint32_t v)
{
    switch (v) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "security mechanism mismatch (a client without CURVE, or "
               "with PLAIN, or CURVE against curve off)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "cryptographic error (wrong server key?)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
        return "CURVE key exchange failed";
    default:
        return "protocol error";
    }
}

/* A handshake of w ended (admitted, refused, failed). It may have been
 * one that asked the handler or not (a failure can come before the
 * request): either way one fewer is counted as asking, which can only
 * make s_all_asked() say no when it could have said yes. */
static void
s_shaken(pd_zap_t *self, pd_zap_watch_t *w)
{
    if (w->shaking > 0)
        w->shaking--;
    if (self->asking > 0)
        self->asking--;
}

/* Whether fd still has the addresses it had when st was recorded: a
 * descriptor number libzmq closed and the kernel gave again would not. */
static bool
s_stray_same(const pd_zap_stray_t *st)
{
    struct sockaddr_storage a;
    socklen_t n = sizeof(a);
    if (getsockname(st->fd, (struct sockaddr *)&a, &n) != 0
        || n != st->local_len || memcmp(&a, &st->local, n) != 0)
        return false;
    n = sizeof(a);
    return getpeername(st->fd, (struct sockaddr *)&a, &n) == 0
           && n == st->peer_len && memcmp(&a, &st->peer, n) == 0;
}

/* Keep the connection on fd, accepted while no handler may be bound. */
static void
s_stray_add(pd_zap_t *self, int fd)
{
    if (self->n_stray == PD_ZAP__STRAY_MAX || fd < 0)
        return;
    pd_zap_stray_t *st = &self->stray[self->n_stray];
    memset(st, 0, sizeof(*st));
    st->fd = fd;
    st->local_len = sizeof(st->local);
    st->peer_len = sizeof(st->peer);
    if (getsockname(fd, (struct sockaddr *)&st->local, &st->local_len) == 0
        && getpeername(fd, (struct sockaddr *)&st->peer, &st->peer_len) == 0)
        self->n_stray++; /* else it is gone already */
}

/* The connection on fd closed: forget it. */
static void
s_stray_drop(pd_zap_t *self, int fd)
{
    for (size_t i = 0; i < self->n_stray; i++)
        if (self->stray[i].fd == fd) {
            self->stray[i] = self->stray[--self->n_stray];
            return;
        }
}

/*
 * A NULL handshake that found no handler bound is stuck: libzmq sends
 * nothing more and waits for handshake_timeout, and nothing the handler
 * does can reach that connection. The monitor says that it happened,
 * not to which connection; it was one of those accepted since the
 * renewal began (the strays: a connection accepted before it kept the
 * handler from being retired, see s_calm()). Shut them down: libzmq
 * closes each, and its client reconnects at once (ZMQ_RECONNECT_IVL,
 * 100 ms by default) to the handler now bound. A stray that did get in
 * is cut too, and reconnects as after any lost connection: they are the
 * few accepted in the microseconds of a renewal.
 */
static void
s_rescue(pd_zap_t *self)
{
    size_t cut = 0;
    for (size_t i = 0; i < self->n_stray; i++)
        if (s_stray_same(&self->stray[i])
            && shutdown(self->stray[i].fd, SHUT_RDWR) == 0)
            cut++;
    if (cut > 0)
        pd_log_limited(PD_LOG_KEY_ZAP_HANDSHAKE, PD_LOG_INFO,
                       "closed %zu connection(s) accepted while the ZAP "
                       "handler was renewed, so that their clients "
                       "reconnect at once",
                       cut);
    else
        pd_log_limited(PD_LOG_KEY_ZAP_HANDSHAKE, PD_LOG_WARN,
                       "a handshake that found no ZAP handler bound waits "
                       "for handshake_timeout: its connection is not known");
    self->n_stray = 0;
    self->met = false;
}

/* Read every event waiting on one monitor. */
static void
s_drain_monitor(pd_zap_t *self, pd_zap_watch_t *w)
{
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, w->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), sizeof(event));
            memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, sizeof(value));
        }
        while (zmq_msg_more(&ev) && zmq_msg_recv(&ev, w->monitor, 0) >= 0) {
        }
        zmq_msg_close(&ev);
        switch (event) {
        case ZMQ_EVENT_ACCEPTED:
            w->live++;
            w->shaking++;
            self->joined_at = parley__mono_ms();
            if (self->window)
                s_stray_add(self, (int)value);
            break;
        case ZMQ_EVENT_DISCONNECTED:
            if (w->live > 0)
                w->live--;
            s_stray_drop(self, (int)value);
            break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: /* refused here: counted */
            s_shaken(self, w);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            s_shaken(self, w);
            self->counters.handshake_failed++;
            pd_log_limited(PD_LOG_KEY_ZAP_HANDSHAKE, PD_LOG_WARN,
                           "%s: handshake failed: %s (0x%08" PRIx32 ")",
                           w->name, s_protocol_error(value), value);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            self->counters.handshake_failed++;
            if (value == EFAULT) {
                /* A handshake found no handler bound. With CURVE libzmq
                 * drops the connection (its client reconnects at once);
                 * a NULL handshake stays stuck, and is ended by
                 * s_rescue() once the drain is over. */
                if (self->curve)
                    s_shaken(self, w);
                else
                    self->met = true;
                pd_log_limited(PD_LOG_KEY_ZAP_HANDSHAKE, PD_LOG_INFO,
                               "%s: a handshake found no ZAP handler bound "
                               "(a renewal); its client reconnects",
                               w->name);
                break;
            }
            s_shaken(self, w);
            if (value == ECONNRESET || value == EPIPE) {
                /* The client went away before the handshake was done: it
                 * gave up (a timeout, Ctrl-C, a probe). Nothing an
                 * operator must act on. */
                pd_log_limited(PD_LOG_KEY_ZAP_HANDSHAKE, PD_LOG_INFO,
                               "%s: a client closed its connection during "
                               "the handshake (%s)",
                               w->name, zmq_strerror((int)value));
                break;
            }
            pd_log_limited(PD_LOG_KEY_ZAP_HANDSHAKE, PD_LOG_WARN,
                           "%s: handshake failed: %s", w->name,
                           zmq_strerror((int)value));
            break;
        default:
            break;
        }
    }
}

void
pd_zap_drain_monitors(pd_zap_t *self)
{
    uint64_t live = 0;
    for (size_t i = 0; i < self->n_watch; i++) {
        s_drain_monitor(self, &self->watch[i]);
        live += self->watch[i].live;
    }
    self->counters.connections = live;
    /* Never more asking than in a handshake (s_all_asked()). */
    uint64_t shaking = s_shaking(self);
    if (self->asking > shaking)
        self->asking = shaking;
    /* After every event is read: a connection closed meanwhile has left
     * the strays (its DISCONNECTED comes before libzmq closes it). */
    if (self->met)
        s_rescue(self);
}

void
pd_zap_connections_cut(pd_zap_t *self, void *sock)
{
    pd_zap_drain_monitors(self);
    /* Cut connections report nothing more: neither a handshake's end
     * nor a disconnection. */
    for (size_t i = 0; i < self->n_watch; i++)
        if (self->watch[i].sock == sock) {
            self->watch[i].live = 0;
            self->watch[i].shaking = 0;
        }
    self->n_stray = 0;
    memset(self->conns, 0, self->n_conns * sizeof(*self->conns));
    pd_zap_drain_monitors(self);
}

/* ================================================================== ZAP */

/* Copy a frame into a NUL-terminated string, cut to cap. */
static void
s_frame_str(zmq_msg_t *m, char *out, size_t cap)
{
    size_t n = zmq_msg_size(m);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, zmq_msg_data(m), n);
    out[n] = '\0';
    /* addresses and mechanism names only: keep logs to printable text */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < ' ' || (unsigned char)out[i] >= 0x7f)
            out[i] = '?';
}

static bool
s_frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/* ZMTP metadata: one property, name-length byte, name, 4-byte length,
 * value; appended at buf. Returns the bytes written. */
static size_t
s_metadata(uint8_t *buf, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), n = 0;
    buf[n++] = (uint8_t)nl;
    memcpy(buf + n, name, nl);
    n += nl;
    buf[n++] = (uint8_t)(vl >> 24);
    buf[n++] = (uint8_t)(vl >> 16);
    buf[n++] = (uint8_t)(vl >> 8);
    buf[n++] = (uint8_t)vl;
    memcpy(buf + n, value, vl);
    return n + vl;
}

/* Send the 6-frame ZAP reply. */
static void
s_reply(void *sock, zmq_msg_t *request_id, const char *status, const char *text,
        const char *user, const uint8_t *meta, size_t meta_len)
{
    int rc = 0;
    rc |= zmq_send(sock, "1.0", 3, ZMQ_SNDMORE) < 0;
    rc |=
        zmq_send(sock, request_id != NULL ? zmq_msg_data(request_id) : "",
                 request_id != NULL ? zmq_msg_size(request_id) : 0, ZMQ_SNDMORE)
        < 0;
    rc |= zmq_send(sock, status, strlen(status), ZMQ_SNDMORE) < 0;
    rc |= zmq_send(sock, text, strlen(text), ZMQ_SNDMORE) < 0;
    rc |= zmq_send(sock, user, strlen(user), ZMQ_SNDMORE) < 0;
    rc |= zmq_send(sock, meta, meta_len, 0) < 0;
    if (rc != 0)
        pd_log_limited(PD_LOG_KEY_ZAP, PD_LOG_ERROR, "ZAP reply not sent: %s",
                       zmq_strerror(zmq_errno()));
}

static uint64_t
s_live(const pd_zap_t *self)
{
    uint64_t live = 0;
    for (size_t i = 0; i < self->n_watch; i++)
        live += self->watch[i].live;
    return live;
}

/* The secured socket whose ZAP domain a request names, or NULL. */
static const pd_zap_watch_t *
s_watch_of(const pd_zap_t *self, zmq_msg_t *domain)
{
    for (size_t i = 0; i < self->n_watch; i++)
        if (s_frame_is(domain, self->watch[i].domain))
            return &self->watch[i];
    return NULL;
}

/*
 * With curve on, the listed client whose CURVE key a request (frames
 * f[0..n), from addr, by mechanism mech) carries, if it may use the
 * secured socket w: a feed socket carries one access class, and nobody
 * with other rights may share it (see feed.h). Otherwise answers the
 * refusal, counts and logs it, and returns NULL.
 */
static const pd_client_t *
s_curve_client(pd_zap_t *self, void *sock, zmq_msg_t *f, size_t n,
               const pd_zap_watch_t *w, const char *addr, const char *mech)
{
    if (!s_frame_is(&f[5], "CURVE") || n < 7
        || zmq_msg_size(&f[6]) != PD_CLIENTS_KEY_BYTES) {
        self->counters.auth_denied++;
        pd_log_limited(PD_LOG_KEY_ZAP_DENIED, PD_LOG_WARN,
                       "refused a %s client from %s: curve is on", mech, addr);
        s_reply(sock, &f[1], "400", "CURVE required", "", NULL, 0);
        return NULL;
    }
    const pd_client_t *client =
        pd_clients_by_key(self->clients, zmq_msg_data(&f[6]));
    if (client == NULL) {
        char z85[PARLEY_CURVE_KEY_CHARS + 1] = "?";
        zmq_z85_encode(z85, zmq_msg_data(&f[6]), PD_CLIENTS_KEY_BYTES);
        self->counters.auth_denied++;
        pd_log_limited(PD_LOG_KEY_ZAP_DENIED, PD_LOG_WARN,
                       "refused CURVE key %s from %s: not in "
                       "curve_clients",
                       z85, addr);
        s_reply(sock, &f[1], "400", "key not allowed", "", NULL, 0);
        return NULL;
    }
    if (w->klass >= 0 && client->klass != (unsigned)w->klass) {
        self->counters.auth_denied++;
        pd_log_limited(PD_LOG_KEY_ZAP_DENIED, PD_LOG_WARN,
                       "refused client %s from %s on the %s socket: its "
                       "access class is %u, the socket's %d; a ping "
                       "names the feed endpoint of its class",
                       client->name, addr, w->name, client->klass, w->klass);
        s_reply(sock, &f[1], "400", "not this client's feed", "", NULL, 0);
        return NULL;
    }
    return client;
}

/* Whether max_connections leaves room for one more connection (from
 * addr); if not, answers the refusal of request id rid, counts and logs
 * it. */
static bool
s_room(pd_zap_t *self, void *sock, zmq_msg_t *rid, const char *addr)
{
    uint64_t live = s_live(self);
    if (live <= self->max_connections)
        return true;
    self->counters.connections_refused++;
    pd_log_limited(PD_LOG_KEY_ZAP_REFUSED, PD_LOG_WARN,
                   "refused a connection from %s: %" PRIu64
                   " open, max_connections is %" PRIu32,
                   addr, live, self->max_connections);
    s_reply(sock, rid, "400", "too many connections", "", NULL, 0);
    return false;
}

/* Admit the connection of request id rid (from addr, as client, NULL
 * with curve off): give it a number and a record, and answer 200 with
 * its number and key as metadata. */
static void
s_admit(pd_zap_t *self, void *sock, zmq_msg_t *rid, const char *addr,
        const pd_client_t *client)
{
    uint64_t id = self->next_conn++;
    pd_zap_conn_t *c = &self->conns[id % self->n_conns];
    memset(c, 0, sizeof(*c));
    c->id = id;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    snprintf(c->user, sizeof(c->user), "%s",
             client != NULL ? client->name : "");
    char num[24];
    uint8_t meta[128];
    snprintf(num, sizeof(num), "%" PRIu64, id);
    size_t meta_len = s_metadata(meta, PD_ZAP__CONN_PROP, num);
    if (client != NULL) {
        char z85[PARLEY_CURVE_KEY_CHARS + 1];
        zmq_z85_encode(z85, client->key, PD_CLIENTS_KEY_BYTES);
        meta_len += s_metadata(meta + meta_len, PD_ZAP_KEY_PROP, z85);
    }
    pd_log(PD_LOG_DEBUG, "admitted connection %" PRIu64 " from %s%s%s", id,
           addr, client != NULL ? " as " : "", c->user);
    s_reply(sock, rid, "200", "OK", c->user, meta, meta_len);
}

/* Decide on one request (frames f[0..n)) read from sock: its form, the
 * socket it is for, who asks (s_curve_client(), or the NULL mechanism
 * with curve off), room under max_connections, then admission. */
static void
s_decide(pd_zap_t *self, void *sock, zmq_msg_t *f, size_t n)
{
    char addr[PD_ZAP__ADDR_MAX] = "?", mech[16] = "?";
    const pd_client_t *client = NULL;

    if (n < 6 || !s_frame_is(&f[0], "1.0")) {
        /* Only libzmq talks to this socket; still, answer and go on. */
        pd_log_limited(PD_LOG_KEY_ZAP, PD_LOG_ERROR, "ZAP: malformed request");
        s_reply(sock, n >= 2 ? &f[1] : NULL, "500", "malformed request", "",
                NULL, 0);
        return;
    }
    s_frame_str(&f[3], addr, sizeof(addr));
    s_frame_str(&f[5], mech, sizeof(mech));
    /* A socket closed since (a feed class of an older list) is unknown. */
    const pd_zap_watch_t *w = s_watch_of(self, &f[2]);
    if (w == NULL) {
        self->counters.auth_denied++;
        s_reply(sock, &f[1], "400", "unknown domain", "", NULL, 0);
        return;
    }
    if (self->curve) {
        if ((client = s_curve_client(self, sock, f, n, w, addr, mech)) == NULL)
            return;
    } else if (!s_frame_is(&f[5], "NULL")) {
        self->counters.auth_denied++;
        pd_log_limited(PD_LOG_KEY_ZAP_DENIED, PD_LOG_WARN,
                       "refused a %s client from %s: only NULL with curve off",
                       mech, addr);
        s_reply(sock, &f[1], "400", "mechanism not allowed", "", NULL, 0);
        return;
    }
    if (s_room(self, sock, &f[1], addr))
        s_admit(self, sock, &f[1], addr, client);
}

/* Serve every request waiting on sock (the current or the old REP). */
static void
s_serve(pd_zap_t *self, void *sock)
{
    for (;;) {
        zmq_msg_t f[S_FRAMES_MAX];
        size_t n = 0;
        zmq_msg_init(&f[0]);
        if (zmq_msg_recv(&f[0], sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[0]);
            return;
        }
        n = 1;
        bool more = zmq_msg_more(&f[0]);
        while (more) {
            zmq_msg_t extra, *m = n < S_FRAMES_MAX ? &f[n] : &extra;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, sock, 0) < 0) {
                zmq_msg_close(m);
                break;
            }
            more = zmq_msg_more(m);
            if (m == &extra)
                zmq_msg_close(m); /* beyond what a request holds: dropped */
            else
                n++;
        }
        s_decide(self, sock, f, n);
        self->asking++;
        if (sock == self->rep) {
            self->attached++;
            self->served_at = parley__mono_ms();
        }
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
}

void
pd_zap_handle(pd_zap_t *self)
{
    /* Cheap when idle, and the order matters (see pd_zap_items()). */
    pd_zap_drain_monitors(self);
    if (self->old != NULL)
        s_serve(self, self->old);
    s_serve(self, self->rep);
    pd_zap_drain_monitors(self);
    pd_zap_tick(self);
}

/* Connections accepted whose handshake has not ended. */
static uint64_t
s_shaking(const pd_zap_t *self)
{
    uint64_t shaking = 0;
    for (size_t i = 0; i < self->n_watch; i++)
        shaking += self->watch[i].shaking;
    return shaking;
}

/*
 * Whether every connection in its handshake has already sent its
 * request (and so has its pipe to a handler: none can ask while no
 * handler is bound). asking counts requests read less handshakes ended,
 * so it errs low, and this says no when unsure.
 */
static bool
s_all_asked(const pd_zap_t *self)
{
    return self->asking >= s_shaking(self);
}

/*
 * A crowd of connections (a restart of many subscribers, a deploy)
 * leaves no pause of S_QUIET_MS: the handler is then retired after
 * S_CROWD_SERVED requests, at a moment when every connection in its
 * handshake has asked. So the pipes of one part of the crowd are freed
 * while it arrives, and the next part's connections are made in their
 * memory instead of in fresh pages (each freed pipe leaves a touched
 * page behind that nothing else would reuse).
 */
static bool
s_crowd(const pd_zap_t *self)
{
    return self->attached >= S_CROWD_SERVED && s_all_asked(self);
}

/*
 * Whether the handler may be retired now: no connection accepted for
 * S_QUIET_MS, and none still in its handshake (it may not have asked the
 * handler yet, however long ago it came); or, in a crowd, every one in
 * its handshake has asked (s_crowd()). libzmq ends every handshake
 * within handshake_timeout, so a count left above 0 by then (an event
 * libzmq did not send) does not hold the handler forever.
 */
static bool
s_calm(const pd_zap_t *self, int64_t now)
{
    if (s_crowd(self))
        return true;
    if (now - self->joined_at < S_QUIET_MS)
        return false;
    return s_shaking(self) == 0
           || (self->handshake_ms > 0
               && now - self->joined_at >= self->handshake_ms + S_GRACE_MS);
}

/* The handler is bound again: a connection accepted from now on finds
 * it, and those accepted before are in the strays. */
static void
s_window_close(pd_zap_t *self)
{
    pd_zap_drain_monitors(self);
    self->window = false;
}

void
pd_zap_tick(pd_zap_t *self)
{
    if (!self->enforced
        || (self->old == NULL && self->trim_at == 0 && self->attached == 0
            && !self->unbound))
        return; /* the common case: nothing to do, no clock read */
    int64_t now = parley__mono_ms();
    if (self->trim_at != 0 && now >= self->trim_at) {
        /* libzmq has freed the retired handler's pipes by now: hand the
         * pages back rather than keep them as free heap. */
        pd_heap_give_back();
        self->trim_at = 0;
    }
    if (self->old != NULL) {
        if (now - self->old_since < S_GRACE_MS)
            return;
        /* Anything that reached it during the grace is answered first. */
        s_serve(self, self->old);
        zmq_close(self->old); /* ends every pipe it held */
        self->old = NULL;
        self->trim_at = now + S_TRIM_DELAY_MS;
    }
    if (self->unbound) {
        /* With no handler bound every handshake fails (nobody gets in
         * unasked): bind again before anything else. */
        if (zmq_bind(self->rep, S_ZAP_ENDPOINT) != 0)
            return;
        self->unbound = false;
        s_window_close(self);
        pd_log(PD_LOG_INFO, "ZAP handler bound again");
    }
    if (self->attached == 0
        || (now - self->served_at < S_QUIET_MS && !s_crowd(self)))
        return;
    /* A connection accepted since the loop last looked may be about to
     * ask: read the monitors again just before unbinding. */
    pd_zap_drain_monitors(self);
    if (!s_calm(self, now))
        return;
    /* Retire the handler that served those connections: unbind it (from
     * now on libzmq connects handshakes to a fresh one), keep answering
     * on it for S_GRACE_MS, then close it. libzmq cannot put a handler in
     * the place of another at once: between the unbind and the bind none
     * is bound, for microseconds (longer if the thread is preempted). A
     * handshake asking then fails (ZAP is enforced, so nobody gets in
     * unasked); only a connection accepted since the monitors were last
     * read can, and those are kept as strays from here on, for
     * s_rescue(). */
    void *fresh = s_rep_new(self->ctx);
    if (fresh == NULL)
        return; /* keep the current one; try again next tick */
    self->window = true;
    self->n_stray = 0;
    pd_zap_drain_monitors(self);
    if (!s_calm(self, now)) { /* one came meanwhile */
        self->window = false;
        zmq_close(fresh);
        return;
    }
    if (zmq_unbind(self->rep, S_ZAP_ENDPOINT) != 0) {
        self->window = false;
        zmq_close(fresh);
        return;
    }
    if (zmq_bind(fresh, S_ZAP_ENDPOINT) != 0) {
        int e = zmq_errno();
        zmq_close(fresh);
        if (zmq_bind(self->rep, S_ZAP_ENDPOINT) != 0) {
            /* Handshakes fail until a later tick binds it again; their
             * connections are rescued meanwhile (the window stays). */
            self->unbound = true;
            pd_log(PD_LOG_ERROR, "ZAP handler not bound again: %s",
                   zmq_strerror(zmq_errno()));
        } else {
            s_window_close(self);
            pd_log_limited(PD_LOG_KEY_ZAP, PD_LOG_WARN,
                           "ZAP handler not renewed: %s", zmq_strerror(e));
        }
        self->served_at = now; /* next try after another quiet spell */
        return;
    }
    pd_log(PD_LOG_DEBUG, "ZAP handler retired after %" PRIu64
                         " handshakes%s",
           self->attached, s_crowd(self) ? ", in a crowd" : "");
    self->old = self->rep;
    self->old_since = now;
    self->rep = fresh;
    self->attached = 0;
    s_window_close(self);
}
