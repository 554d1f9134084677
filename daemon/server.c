/*
 * server.c - parleyd's lifecycle and its one event loop.
 *
 * One thread: zmq_poll over the api ROUTER, the feed XPUB and a signalfd,
 * with a timeout that wakes the loop for heartbeats, retention and the
 * systemd watchdog. Everything the loop touches is owned here.
 */
#include "server.h"

#include "api.h"
#include "feed.h"
#include "index.h"
#include "log.h"
#include "sign.h"
#include "store.h"
#include "trust.h"
#include "wire.h"
#include "zap.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#ifdef PARLEY_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define S_RETAIN_MS 10000   /* how often retention runs, when configured */
#define S_STATUS_MS 10000   /* how often systemd STATUS= is refreshed */
#define S_STOP_LINGER_MS 500 /* a clean stop waits this long for peers */

struct pd_server {
    pd_config_t cfg;
    char config_path[PD_CONFIG_PATH_MAX]; /* "" = started without -c */
    bool log_level_fixed;        /* --log-level wins over the file */
    void *zctx;
    pd_zap_t *zap;               /* ZAP handler, monitors, ACL */
    pd_index_t *idx;
    pd_store_t *store;
    pd_feed_t *feed;
    pd_api_t *api;
    parley_keyring_t *ring;      /* the keyring the api checks against */
    uint8_t daemon_id[16];       /* random per start */
    int64_t next_heartbeat;      /* CLOCK_MONOTONIC ms of the next timer */
    int64_t next_stats;          /* ... of the next sys/stats/, 0 = off */
    int64_t next_retain;
    int64_t next_status;
    int64_t next_watchdog;
    int64_t watchdog_ms;         /* 0 = no systemd watchdog */
};

static void
s_notify(const char *state)
{
#ifdef PARLEY_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

/* STATUS= line for systemctl status. */
static void
s_notify_status(pd_server_t *self)
{
    const pd_api_counters_t *c = pd_api_counters(self->api);
    uint64_t rejected = 0;
    for (int i = 0; i < PD_API_NCODES; i++)
        rejected += c->rejected[i];
    char line[256];
    snprintf(line, sizeof(line),
             "STATUS=seq %llu, accepted %llu, rejected %llu, "
             "%llu subscriptions",
             (unsigned long long)pd_store_last_seq(self->store),
             (unsigned long long)c->accepted, (unsigned long long)rejected,
             (unsigned long long)pd_feed_subscriptions(self->feed));
    s_notify(line);
}

/* ================================================================ setup */

static pd_store_t *
s_open_store(pd_server_t *self, int *err)
{
    const pd_config_t *cfg = &self->cfg;
    pd_store_opts_t opts = {
        .segment_bytes = cfg->segment_bytes,
        .max_bytes = cfg->retention_bytes,
        .max_age_ms = (int64_t)cfg->retention_age * 1000,
        .sync = cfg->fsync,
        .max_record = cfg->max_message_bytes,
        .reserve = cfg->disk_reserve,
    };
    char errbuf[512] = "";
    pd_store_t *store = pd_store_open(cfg->state_dir, &opts, pd_index_scan,
                                      self->idx, errbuf, sizeof(errbuf), err);
    if (store == NULL) {
        pd_log(PD_LOG_ERROR, "cannot open the log in %s: %s", cfg->state_dir,
               errbuf[0] != '\0' ? errbuf : parley_strerror(*err));
        return NULL;
    }
    pd_index_stats_t is;
    pd_store_stats_t ss;
    pd_index_get_stats(self->idx, &is);
    pd_store_get_stats(store, &ss);
    pd_log(PD_LOG_INFO,
           "recovered %llu records (seq %llu..%llu) in %llu segments: "
           "%zu signers, %zu current states",
           (unsigned long long)is.scanned,
           (unsigned long long)pd_store_first_seq(store),
           (unsigned long long)pd_store_last_seq(store),
           (unsigned long long)ss.segments, is.signers, is.latest);
    if (is.skipped > 0)
        pd_log(PD_LOG_WARN, "%llu logged records did not decode",
               (unsigned long long)is.skipped);
    return store;
}

pd_server_t *
pd_server_new(pd_server_opts_t *opts, int *err)
{
    pd_server_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        parley_keyring_destroy(&opts->ring);
        *err = -ENOMEM;
        return NULL;
    }
    self->cfg = *opts->cfg;
    if (opts->config_path != NULL)
        snprintf(self->config_path, sizeof(self->config_path), "%s",
                 opts->config_path);
    self->log_level_fixed = opts->log_level_fixed;
    self->ring = opts->ring;
    opts->ring = NULL;
    randombytes_buf(self->daemon_id, sizeof(self->daemon_id));

    /* A libsodium that accepts small-order keys or unreduced signatures
     * would let one forgery pass for many updates: refuse to run on it. */
    if ((*err = parley__sign_selftest()) < 0) {
        pd_log(PD_LOG_ERROR,
               "self-test FAILED: libsodium %s accepts a signature it must "
               "refuse (small-order key or non-canonical S); refusing to "
               "start",
               sodium_version_string());
        goto fail;
    }
    char errbuf[512];
    if (pd_config_check(&self->cfg, errbuf, sizeof(errbuf)) < 0) {
        pd_log(PD_LOG_ERROR, "%s", errbuf);
        *err = -EINVAL;
        goto fail;
    }

    /* Recover before binding: nobody can talk to a half-built daemon. */
    if ((self->idx = pd_index_new()) == NULL) {
        *err = -errno;
        goto fail;
    }
    if ((self->store = s_open_store(self, err)) == NULL)
        goto fail;
    if ((self->zctx = zmq_ctx_new()) == NULL) {
        *err = -errno;
        goto fail;
    }
    /* The ZAP handler first: a socket must never be bound without it. */
    if ((self->zap = pd_zap_new(self->zctx, &self->cfg, err)) == NULL)
        goto fail;
    self->feed = pd_feed_new(self->zctx, self->cfg.feed,
                             self->cfg.max_message_bytes, self->zap, err);
    if (self->feed == NULL) {
        pd_log(PD_LOG_ERROR, "cannot bind the feed to %s: %s", self->cfg.feed,
               zmq_strerror(-*err));
        goto fail;
    }
    self->api = pd_api_new(self->zctx, &self->cfg, self->store, self->idx,
                           self->feed, self->zap, self->daemon_id, err);
    if (self->api == NULL) {
        pd_log(PD_LOG_ERROR, "cannot bind the api to %s: %s", self->cfg.api,
               zmq_strerror(-*err));
        goto fail;
    }
    /* Both sockets hold the key now; ours is not needed any more. */
    pd_zap_forget_secret(self->zap);
    pd_api_set_keyring(self->api, self->ring);
    pd_log(PD_LOG_INFO, "api bound at %s", pd_api_endpoint(self->api));
    pd_log(PD_LOG_INFO, "feed bound at %s", pd_feed_endpoint(self->feed));
    pd_feed_advertise(self->feed, pd_api_endpoint(self->api));
    *err = 0;
    return self;
fail:
    pd_server_destroy(&self);
    return NULL;
}

void
pd_server_destroy(pd_server_t **srvp)
{
    if (srvp == NULL || *srvp == NULL)
        return;
    pd_server_t *self = *srvp;
    pd_api_destroy(&self->api);
    pd_feed_destroy(&self->feed);
    pd_zap_destroy(&self->zap);
    if (self->zctx != NULL)
        zmq_ctx_term(self->zctx);
    pd_store_close(&self->store);
    pd_index_destroy(&self->idx);
    parley_keyring_destroy(&self->ring);
    free(self);
    *srvp = NULL;
}

/* =============================================================== reload */

/*
 * Close every connection so that each passes the ZAP handler again with
 * the new allow-list. Clients reconnect by themselves; a subscriber that
 * missed something on the way replays it.
 *
 * Returns:   0, or the error that left a socket unbound (fatal).
 */
static int
s_cut(pd_server_t *self)
{
    int rc = pd_api_cut(self->api);
    if (rc == 0)
        rc = pd_feed_cut(self->feed);
    if (rc < 0)
        pd_log(PD_LOG_ERROR, "cannot bind again after closing connections: "
                             "%s; stopping",
               zmq_strerror(-rc));
    else
        pd_log(PD_LOG_WARN, "curve_clients lost a client or topics: closed "
                            "every connection; allowed clients reconnect");
    return rc;
}

/*
 * SIGHUP: read the keyring and the CURVE allow-list (and the log level
 * from the config file, if there is one) and switch to them only if
 * everything parsed; otherwise keep what is running and say so loudly.
 *
 * Returns:   0, or a fatal error (a socket could not be bound again).
 */
static int
s_reload(pd_server_t *self)
{
    char errbuf[512] = "";
    pd_log_level_t level = self->cfg.log_level;
    if (self->config_path[0] != '\0' && !self->log_level_fixed) {
        pd_config_t fresh;
        pd_config_defaults(&fresh);
        if (pd_config_load(&fresh, self->config_path, errbuf, sizeof(errbuf))
            < 0) {
            pd_log(PD_LOG_ERROR, "reload FAILED, nothing changed: %s", errbuf);
            return 0;
        }
        level = fresh.log_level;
    }
    parley_keyring_t *ring =
        pd_trust_keyring_load(self->cfg.keyring, errbuf, sizeof(errbuf));
    if (ring == NULL) {
        pd_log(PD_LOG_ERROR,
               "reload FAILED, keeping the old keyring (%zu signers) and "
               "client list: %s",
               parley_keyring_size(self->ring),
               errbuf[0] != '\0' ? errbuf : parley_strerror(-errno));
        return 0;
    }
    pd_clients_t *clients = NULL;
    if (pd_zap_reload_read(self->zap, &clients, errbuf, sizeof(errbuf)) < 0) {
        pd_log(PD_LOG_ERROR,
               "reload FAILED, keeping the old keyring and client list (%zu "
               "clients): %s",
               pd_zap_clients(self->zap), errbuf);
        parley_keyring_destroy(&ring);
        return 0;
    }
    /* Requests read ahead were pre-checked under the old keyring: handle
     * them under it too before the new one takes over. */
    int rc = pd_api_flush(self->api);
    if (rc < 0) {
        parley_keyring_destroy(&ring);
        pd_clients_destroy(&clients);
        return rc;
    }
    pd_api_set_keyring(self->api, ring);
    parley_keyring_destroy(&self->ring);
    self->ring = ring;
    bool cut = pd_zap_reload_commit(self->zap, &clients);
    self->cfg.log_level = level;
    pd_log_set_level(level);
    pd_log(PD_LOG_INFO, "reloaded: keyring %s (%zu signers)%s%s%s%s",
           self->cfg.keyring, parley_keyring_size(ring),
           self->cfg.curve ? ", curve_clients " : "",
           self->cfg.curve ? self->cfg.curve_clients : "",
           self->config_path[0] != '\0' ? ", config " : "",
           self->config_path);
    return cut ? s_cut(self) : 0;
}

/* ================================================================= loop */

/* Run the timers that are due and return ms until the next one. */
static long
s_timers(pd_server_t *self)
{
    int64_t now = parley__mono_ms();
    if (now >= self->next_heartbeat) {
        int rc = pd_feed_heartbeat(self->feed, self->daemon_id,
                                   pd_store_last_seq(self->store),
                                   pd_store_first_seq(self->store),
                                   parley_now_ms());
        if (rc < 0)
            pd_log_limited(40, PD_LOG_WARN, "heartbeat not sent: %s",
                           parley_strerror(rc));
        self->next_heartbeat = now + self->cfg.heartbeat_interval;
    }
    if (self->next_stats != 0 && now >= self->next_stats) {
        parley__stat_t v[PD_API_STATS_MAX];
        int rc = pd_feed_stats(self->feed, v, pd_api_stats(self->api, v));
        if (rc < 0)
            pd_log_limited(40, PD_LOG_WARN, "stats not sent: %s",
                           parley_strerror(rc));
        self->next_stats = now + self->cfg.stats_interval;
    }
    if (self->next_retain != 0 && now >= self->next_retain) {
        int n = pd_store_retain(self->store, parley_now_ms());
        if (n < 0) {
            pd_log_limited(41, PD_LOG_ERROR, "retention failed: %s",
                           parley_strerror(n));
        } else if (n > 0) {
            uint64_t first = pd_store_first_seq(self->store);
            pd_index_forget_before(self->idx, first);
            pd_log(PD_LOG_INFO, "retention removed %d segments; first seq %llu",
                   n, (unsigned long long)first);
        }
        self->next_retain = now + S_RETAIN_MS;
    }
    if (now >= self->next_status) {
        s_notify_status(self);
        self->next_status = now + S_STATUS_MS;
    }
    if (self->watchdog_ms > 0 && now >= self->next_watchdog) {
        s_notify("WATCHDOG=1");
        self->next_watchdog = now + self->watchdog_ms;
    }
    int64_t next = self->next_heartbeat;
    if (self->next_retain != 0 && self->next_retain < next)
        next = self->next_retain;
    if (self->next_status < next)
        next = self->next_status;
    if (self->next_stats != 0 && self->next_stats < next)
        next = self->next_stats;
    if (self->watchdog_ms > 0 && self->next_watchdog < next)
        next = self->next_watchdog;
    return next > now ? (long)(next - now) : 0;
}

/*
 * Read the signalfd. Returns true when the daemon should stop (*rc is
 * then set if a reload failed fatally).
 */
static bool
s_signals(pd_server_t *self, int sigfd, int *rc)
{
    struct signalfd_siginfo si;
    bool stop = false;
    while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            char state[64];
            snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
                     (unsigned long long)parley__mono_us());
            s_notify(state);
            pd_log(PD_LOG_INFO, "SIGHUP: reloading");
            if ((*rc = s_reload(self)) < 0)
                return true;
            s_notify("READY=1");
        } else if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
            pd_log(PD_LOG_INFO, "%s: stopping",
                   si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
            stop = true;
        }
    }
    return stop;
}

static void
s_start_timers(pd_server_t *self)
{
    int64_t now = parley__mono_ms();
    self->next_heartbeat = now;
    self->next_stats = self->cfg.stats_interval != 0 ? now : 0;
    self->next_status = now + S_STATUS_MS;
    if (self->cfg.retention_bytes > 0 || self->cfg.retention_age > 0)
        self->next_retain = now + 1;
#ifdef PARLEY_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        self->watchdog_ms = (int64_t)(usec / 2000);
        if (self->watchdog_ms == 0)
            self->watchdog_ms = 1;
        self->next_watchdog = now;
    }
#endif
}

int
pd_server_run(pd_server_t *self, int sigfd)
{
    int rc = 0;
    s_start_timers(self);
    s_notify("READY=1");
    s_notify_status(self);
    for (;;) {
        long timeout = s_timers(self);
        /* The state directory still ours? (store.c; stops the daemon.) */
        long watch = pd_store_watch(self->store, parley__mono_ms());
        if (watch < 0) {
            rc = (int)watch;
            break;
        }
        if (watch < timeout)
            timeout = watch;
        if (pd_api_pending(self->api))
            timeout = 0; /* requests read ahead wait to be handled */
        zmq_pollitem_t items[3 + PD_ZAP_NITEMS] = {
            { pd_api_socket(self->api), 0, ZMQ_POLLIN, 0 },
            { pd_feed_socket(self->feed), 0, ZMQ_POLLIN, 0 },
            { NULL, sigfd, ZMQ_POLLIN, 0 },
        };
        size_t n_zap = pd_zap_items(self->zap, items + 3);
        if (zmq_poll(items, 3 + (int)n_zap, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            rc = -zmq_errno();
            pd_log(PD_LOG_ERROR, "poll failed: %s", zmq_strerror(-rc));
            break;
        }
        bool zap_ready = false;
        for (size_t i = 0; i < n_zap; i++)
            zap_ready |= (items[3 + i].revents & ZMQ_POLLIN) != 0;
        /* Connections first: a handshake waits for the handler. */
        if (zap_ready)
            pd_zap_handle(self->zap);
        if (items[1].revents & ZMQ_POLLIN)
            pd_feed_drain(self->feed);
        /* A turn always ends with its batch synced and acked, so a stop
         * signal seen below never leaves an accepted update unacked. */
        if (((items[0].revents & ZMQ_POLLIN) || pd_api_pending(self->api))
            && (rc = pd_api_turn(self->api)) < 0)
            break;
        if ((items[2].revents & ZMQ_POLLIN) && s_signals(self, sigfd, &rc))
            break;
        /* Retire a ZAP handler that has served handshakes (cheap when
         * there is nothing to do; the heartbeat timer wakes the loop). */
        pd_zap_tick(self->zap);
    }
    /* Stopping: answer what was read ahead, like any other turn. */
    if (rc == 0)
        rc = pd_api_flush(self->api);
    if (rc == 0) {
        /* Let libzmq write out the last acks and deliveries when the
         * sockets close; a stalled peer holds the stop no longer than
         * S_STOP_LINGER_MS. (After an error they close at once.) */
        int linger = S_STOP_LINGER_MS;
        zmq_setsockopt(pd_api_socket(self->api), ZMQ_LINGER, &linger,
                       sizeof(linger));
        zmq_setsockopt(pd_feed_socket(self->feed), ZMQ_LINGER, &linger,
                       sizeof(linger));
    }
    s_notify("STOPPING=1");
    return rc;
}
