/*
 * server.c - parleyd's lifecycle and its one event loop.
 *
 * One thread: zmq_poll over the api ROUTER, the feed XPUB and a signalfd,
 * with a timeout that wakes the loop for heartbeats, retention, the
 * storage's check and retry, and the systemd watchdog. Each pass runs the
 * timers that are due, a turn of ingest when requests wait, and a slice
 * of reads (reads.h), so that no reader holds the loop for longer than a
 * slice. Everything the loop touches is owned here.
 */
#include "server.h"

#include "api.h"
#include "ingest.h"
#include "query.h"
#include "reads.h"
#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "embedded.h"
#include "feed.h"
#include "log.h"
#include "sign.h"
#include "stats.h"
#include "storage.h"
#include "translog.h"
#include "trust.h"
#include "zap.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#ifdef PARLEY_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define S_RETAIN_MS 10000   /* how often retention runs, when configured */
#define S_STATUS_MS 10000   /* how often systemd STATUS= is refreshed */
#define S_STOP_LINGER_MS 500 /* a clean stop waits this long for peers */
/* While reads wait for their connections to read replies, the loop
 * looks again this often (libzmq frees replies in its own thread). */
#define S_READS_RECHECK_MS 10

/* The loop's timers; each runs every period_ms while its period is set. */
typedef enum {
    S_TIMER_HEARTBEAT,   /* sys/heartbeat/ */
    S_TIMER_STATS,       /* sys/stats/ (stats_interval, 0 = off) */
    S_TIMER_RETAIN,      /* retention (when configured) */
    S_TIMER_STORAGE,     /* storage: still ours? (fatal if not); retry */
    S_TIMER_STATUS,      /* systemd STATUS= */
    S_TIMER_WATCHDOG,    /* systemd WATCHDOG=1 (when asked for) */
    S_TIMER_BACKGROUND,  /* a background storage's commit (cluster) */
    S_TIMERS
} s_timer_id_t;

/* One timer of the loop. */
typedef struct {
    int64_t period_ms;           /* 0 = off */
    int64_t next;                /* CLOCK_MONOTONIC ms when it is due */
} s_timer_t;

struct pd_server {
    pd_config_t cfg;
    char config_path[PD_CONFIG_PATH_MAX]; /* "" = started without -c */
    bool log_level_fixed;        /* --log-level wins over the file */
    void *zctx;
    pd_zap_t *zap;               /* ZAP handler, monitors, ACL */
    pd_storage_t *storage;       /* where updates are kept */
    pd_translog_t *translog;     /* the Merkle tree and checkpoints, or
                                    NULL (transparency off) */
    pd_feed_t *feed;
    pd_query_t *query;           /* replay, snapshot */
    pd_reads_t *reads;           /* queued reads, unread replies; outlives
                                    the zmq context */
    pd_api_t *api;               /* the ROUTER */
    pd_ingest_t *ingest;         /* the write path; drives each turn */
    pd_stats_t *stats;           /* the counters every module reports */
    parley_keyring_t *ring;      /* the keyring ingest checks against */
    uint8_t daemon_id[16];       /* random per start */
    s_timer_t timers[S_TIMERS];  /* by s_timer_id_t (see s_timers()) */
    int status_err;              /* the storage's error STATUS= last said */
    bool status_low_space;       /* and whether it said space is short */
    uint64_t reloads;            /* SIGHUP reloads that took effect */
    uint64_t reload_failures;    /* ... and those refused */
    uint64_t reload_failed;      /* 1 while the last one was refused */
    char reload_status[PD_CONFIG_PATH_MAX + 16]; /* STATE_DIR/reload.status */
};

/*
 * Say how the last reload went in STATE_DIR/reload.status, for
 * `parleyd --reload` (and people): "PID N ok", "PID N failed: WHY", or
 * "PID 0 started" before the first; N counts the reloads of this process.
 * Written atomically, so a reader sees one whole line.
 */
static void
s_reload_status(pd_server_t *self, const char *failure)
{
    char line[1024];
    snprintf(line, sizeof(line), "%ld %llu %s%s\n", (long)getpid(),
             (unsigned long long)(self->reloads + self->reload_failures),
             failure == NULL ? (self->reloads + self->reload_failures == 0
                                    ? "started"
                                    : "ok")
                             : "failed: ",
             failure != NULL ? failure : "");
    int rc = pd_trust_write_atomic(self->reload_status, line);
    if (rc < 0)
        pd_log(PD_LOG_WARN, "cannot write %s: %s", self->reload_status,
               strerror(-rc));
}

/*
 * Read STATE_DIR/reload.status: 1 with *pid, *n and the rest of the line
 * in rest (cap bytes), 0 if there is none, -errno.
 */
static int
s_read_reload_status(const char *path, long *pid, unsigned long long *n,
                     char *rest, size_t cap)
{
    char line[1100];
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? 0 : -errno;
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    int used = 0;
    if (got == NULL || sscanf(line, "%ld %llu %n", pid, n, &used) < 2)
        return 0;
    line[strcspn(line, "\n")] = '\0';
    snprintf(rest, cap, "%s", line + used);
    return 1;
}

/* The pid in cfg's pid_file: 0 with *pid set, or -errno with msg. */
static int
s_pid_from_file(const pd_config_t *cfg, long *pid, char *msg, size_t cap)
{
    FILE *f = fopen(cfg->pid_file, "re");
    if (f == NULL || fscanf(f, "%ld", pid) != 1 || *pid <= 0) {
        int e = f == NULL ? errno : EINVAL;
        snprintf(msg, cap, "%s: %s%s", cfg->pid_file,
                 f == NULL ? strerror(e) : "holds no pid",
                 e == ENOENT ? " (no parleyd runs with this state "
                               "directory or pid_file; which one? give "
                               "-c FILE, --state-dir DIR or --pid PID)"
                             : "");
        if (f != NULL)
            fclose(f);
        return e == ENOENT ? -ENOENT : -e;
    }
    fclose(f);
    return 0;
}

int
pd_server_reload_request(const pd_config_t *cfg, long pid, int timeout_ms,
                         char *msg, size_t cap)
{
    char path[PD_CONFIG_PATH_MAX + 16], rest[1100];
    long spid = 0;
    unsigned long long base = 0, n = 0;
    int rc;
    if (pid <= 0 && (rc = s_pid_from_file(cfg, &pid, msg, cap)) < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/reload.status", cfg->state_dir);
    rc = s_read_reload_status(path, &spid, &base, rest, sizeof(rest));
    if (rc < 0) {
        snprintf(msg, cap, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (rc == 0 || spid != pid)
        base = 0; /* nothing said yet by this process */
    if (kill((pid_t)pid, SIGHUP) < 0) {
        int e = errno;
        snprintf(msg, cap, "no parleyd with pid %ld: %s", pid, strerror(e));
        return -e;
    }
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        rc = s_read_reload_status(path, &spid, &n, rest, sizeof(rest));
        if (rc == 1 && spid == pid && n > base) {
            if (strncmp(rest, "ok", 2) == 0) {
                snprintf(msg, cap, "reloaded (reload %llu of pid %ld)", n, pid);
                return 0;
            }
            snprintf(msg, cap, "reload FAILED, the old keyring and settings "
                               "stay: %s",
                     strncmp(rest, "failed: ", 8) == 0 ? rest + 8 : rest);
            return 1;
        }
        if (parley__mono_ms() >= deadline) {
            snprintf(msg, cap, "pid %ld said nothing in %s within %d ms (is it "
                               "parleyd with state_dir %s?)",
                     pid, path, timeout_ms, cfg->state_dir);
            return -ETIMEDOUT;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* Count a reload (failure NULL: it took effect) and say so. */
static void
s_reload_done(pd_server_t *self, const char *failure)
{
    if (failure == NULL) {
        self->reloads++;
        self->reload_failed = 0;
    } else {
        self->reload_failures++;
        self->reload_failed = 1;
    }
    s_reload_status(self, failure);
}

static void
s_notify(const char *state)
{
#ifdef PARLEY_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

/*
 * STATUS= line for systemctl status: the counters, and first what keeps
 * the storage from taking publishes, or that its room runs short.
 */
static int
s_notify_status(pd_server_t *self)
{
    const pd_stats_t *st = self->stats;
    pd_storage_health_t h;
    pd_storage_health(self->storage, &h);
    char line[768], state[384] = "";
    if (h.err != 0)
        snprintf(state, sizeof(state),
                 "UNAVAILABLE, publishes refused: %s; %llu updates wait; ",
                 h.reason[0] != '\0' ? h.reason : strerror(-h.err),
                 (unsigned long long)h.queued);
    else if (h.low_space)
        snprintf(state, sizeof(state), "disk nearly full; ");
    snprintf(line, sizeof(line),
             "STATUS=%sseq %llu, accepted %llu, rejected %llu, "
             "%llu subscriptions",
             state, (unsigned long long)pd_stats_get(st, PD_STAT_SEQ),
             (unsigned long long)pd_stats_get(st, PD_STAT_ACCEPTED),
             (unsigned long long)pd_stats_rejected(st),
             (unsigned long long)pd_stats_get(st, PD_STAT_SUBSCRIPTIONS));
    s_notify(line);
    self->status_err = h.err;
    self->status_low_space = h.low_space;
    return 0;
}

/* ================================================================ setup */

/* ingest's transparency hooks over a void * log. */
static int
s_applied(void *log, const pd_storage_record_t *rec)
{
    return pd_translog_append(log, rec);
}

static int
s_committed(void *log)
{
    return pd_translog_commit(log);
}

/* ingest's feed hook: pd_feed_publish() for a void * feed. */
static int
s_publish(void *feed, uint64_t seq, int64_t received_at, const void *env,
          size_t len, const char topics[][PARLEY_TOPIC_MAX], size_t n)
{
    return pd_feed_publish(feed, seq, received_at, env, len, topics, n);
}

/*
 * Make the zmq context, the ZAP handler, the feed and the api, and the
 * read and write paths between them. 0 or a negative error (logged).
 */
static int
s_bind(pd_server_t *self)
{
    int err;
    if ((self->zctx = zmq_ctx_new()) == NULL)
        return -errno;
    /* The ZAP handler first: a socket must never be bound without it. */
    if ((self->zap = pd_zap_new(self->zctx, &self->cfg, &err)) == NULL)
        return err;
    self->feed = pd_feed_new(self->zctx, self->cfg.feed,
                             self->cfg.max_message_bytes, self->zap, &err);
    if (self->feed == NULL) {
        pd_log(PD_LOG_ERROR, "cannot bind the feed to %s: %s", self->cfg.feed,
               zmq_strerror(-err));
        return err;
    }
    self->query = pd_query_new(self->storage, self->zap,
                               self->cfg.max_message_bytes, &err);
    if (self->query == NULL)
        return err;
    pd_reads_limits_t lim = { .conn_reply_bytes = self->cfg.reply_queue_bytes,
                              .total_reply_bytes =
                                  self->cfg.reply_queue_total };
    if ((self->reads = pd_reads_new(&lim, self->stats, &err)) == NULL)
        return err;
    pd_api_deps_t deps = { .cfg = &self->cfg,
                           .storage = self->storage,
                           .query = self->query,
                           .reads = self->reads,
                           .feed = self->feed,
                           .zap = self->zap,
                           .stats = self->stats,
                           .daemon_id = self->daemon_id,
                           .translog = self->translog };
    if ((self->api = pd_api_new(self->zctx, &deps, &err)) == NULL) {
        pd_log(PD_LOG_ERROR, "cannot bind the api to %s: %s", self->cfg.api,
               zmq_strerror(-err));
        return err;
    }
    pd_ingest_io_t io = { .publish = s_publish, .feed = self->feed };
    if (self->translog != NULL) {
        io.applied = s_applied;
        io.committed = s_committed;
        io.log = self->translog;
    }
    pd_api_io(self->api, &io);
    self->ingest = pd_ingest_new(&self->cfg, self->storage, &io, self->stats,
                                 &err);
    return self->ingest == NULL ? err : 0;
}

/*
 * What must hold before anything starts: libsodium refuses what it must
 * (a library that accepts small-order keys or unreduced signatures would
 * let one forgery pass for many updates), and the settings agree.
 * Returns 0 or a negative error (logged).
 */
static int
s_check_start(pd_server_t *self)
{
    int rc = parley__sign_selftest();
    if (rc < 0) {
        pd_log(PD_LOG_ERROR,
               "self-test FAILED: libsodium %s accepts a signature it must "
               "refuse (small-order key or non-canonical S); refusing to "
               "start",
               sodium_version_string());
        return rc;
    }
    char errbuf[512];
    if (pd_config_check(&self->cfg, errbuf, sizeof(errbuf)) < 0) {
        pd_log(PD_LOG_ERROR, "%s", errbuf);
        return -EINVAL;
    }
    return 0;
}

/*
 * Open the storage (and the transparency log, which checks every record
 * the storage finds: docs/transparency.md). Done before binding, so that
 * nobody can talk to a half-built daemon. Returns 0 or a negative error.
 */
static int
s_recover(pd_server_t *self)
{
    int err = 0;
    if (self->cfg.transparency
        && (self->translog = pd_translog_open(&self->cfg, self->stats, &err))
               == NULL)
        return err;
    pd_storage_scan_t scan = { .fn = pd_translog_scan, .ctx = self->translog };
    const pd_storage_scan_t *sc = self->translog != NULL ? &scan : NULL;
    /* The cluster's local replica is checked like the embedded log. */
    self->storage = self->cfg.backbone[0] != '\0'
                        ? pd_cluster_open(&self->cfg, self->stats, sc, &err)
                        : pd_embedded_open(&self->cfg, self->stats, sc, &err);
    if (self->storage == NULL)
        return err;
    if (self->translog != NULL)
        return pd_translog_recover(self->translog,
                                   pd_storage_head(self->storage));
    return 0;
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

    if ((*err = s_check_start(self)) < 0)
        goto fail;
    if ((self->stats = pd_stats_new()) == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    if ((*err = s_recover(self)) < 0)
        goto fail;
    pd_storage_set_keyring(self->storage, self->ring);
    if ((*err = s_bind(self)) < 0)
        goto fail;
    pd_feed_stats_register(self->feed, self->stats);
    pd_zap_stats_register(self->zap, self->stats);
    pd_stats_counter(self->stats, PD_STAT_RELOADS, &self->reloads);
    pd_stats_counter(self->stats, PD_STAT_RELOAD_FAILURES,
                     &self->reload_failures);
    pd_stats_counter(self->stats, PD_STAT_RELOAD_FAILED, &self->reload_failed);
    snprintf(self->reload_status, sizeof(self->reload_status),
             "%s/reload.status", self->cfg.state_dir);
    s_reload_status(self, NULL);
    /* Both sockets hold the key now; ours is not needed any more. */
    pd_zap_forget_secret(self->zap);
    pd_ingest_set_keyring(self->ingest, self->ring);
    pd_log(PD_LOG_INFO, "api bound at %s", pd_api_endpoint(self->api));
    pd_log(PD_LOG_INFO, "feed bound at %s", pd_feed_endpoint(self->feed));
    pd_feed_advertise(self->feed, pd_api_endpoint(self->api));
    *err = 0;
    return self;
fail:
    pd_server_destroy(&self);
    return NULL;
}

const char *
pd_server_api_endpoint(const pd_server_t *srv)
{
    return pd_api_endpoint(srv->api);
}

void
pd_server_destroy(pd_server_t **srvp)
{
    if (srvp == NULL || *srvp == NULL)
        return;
    pd_server_t *self = *srvp;
    pd_ingest_destroy(&self->ingest);
    pd_api_destroy(&self->api);
    pd_query_destroy(&self->query);
    pd_feed_destroy(&self->feed);
    pd_zap_destroy(&self->zap);
    if (self->zctx != NULL)
        zmq_ctx_term(self->zctx);
    /* After the context: libzmq frees the last replies in its threads. */
    pd_reads_destroy(&self->reads);
    pd_storage_destroy(&self->storage);
    pd_translog_close(&self->translog);
    pd_stats_destroy(&self->stats);
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
            s_reload_done(self, errbuf);
            return 0;
        }
        level = fresh.log_level;
    }
    parley_keyring_t *ring =
        pd_trust_keyring_load(self->cfg.keyring, errbuf, sizeof(errbuf));
    if (ring == NULL) {
        if (errbuf[0] == '\0')
            snprintf(errbuf, sizeof(errbuf), "%.400s: %s", self->cfg.keyring,
                     parley_error_name(-errno));
        pd_log(PD_LOG_ERROR,
               "reload FAILED, keeping the old keyring (%zu signers) and "
               "client list: %s",
               parley_keyring_size(self->ring), errbuf);
        s_reload_done(self, errbuf);
        return 0;
    }
    pd_clients_t *clients = NULL;
    if (pd_zap_reload_read(self->zap, &clients, errbuf, sizeof(errbuf)) < 0) {
        pd_log(PD_LOG_ERROR,
               "reload FAILED, keeping the old keyring and client list (%zu "
               "clients): %s",
               pd_zap_clients(self->zap), errbuf);
        parley_keyring_destroy(&ring);
        s_reload_done(self, errbuf);
        return 0;
    }
    /* Requests read ahead were pre-checked under the old keyring: handle
     * them under it too before the new one takes over. */
    int rc = pd_ingest_flush(self->ingest);
    if (rc < 0) {
        parley_keyring_destroy(&ring);
        pd_clients_destroy(&clients);
        return rc;
    }
    pd_ingest_set_keyring(self->ingest, ring);
    pd_storage_set_keyring(self->storage, ring);
    parley_keyring_destroy(&self->ring);
    self->ring = ring;
    bool cut = pd_zap_reload_commit(self->zap, &clients);
    /* New access classes get their feed sockets (a cut makes them all
     * again below); a class socket that fails is logged, and its clients
     * get no feed until the next reload. */
    if (!cut)
        pd_feed_sync(self->feed);
    self->cfg.log_level = level;
    pd_log_set_level(level);
    pd_log(PD_LOG_INFO, "reloaded: keyring %s (%zu signers)%s%s%s%s",
           self->cfg.keyring, parley_keyring_size(ring),
           self->cfg.curve ? ", curve_clients " : "",
           self->cfg.curve ? self->cfg.curve_clients : "",
           self->config_path[0] != '\0' ? ", config " : "",
           self->config_path);
    s_reload_done(self, NULL);
    return cut ? s_cut(self) : 0;
}

/* ================================================================= loop */

/* The feed's view of the head per access class: query's. */
static uint64_t
s_view_head(void *query, int klass)
{
    return pd_query_view_head(query, klass);
}

/*
 * The timers' work, each returning 0 or a fatal error (the daemon stops):
 * the storage's check and the transparency log's (its hashes could not
 * be written or synced) have one.
 */

/* The transparency log's current checkpoint on sys/checkpoint/, if any. */
static void
s_checkpoint_send(pd_server_t *self)
{
    size_t len;
    const char *cp = pd_translog_checkpoint(self->translog, &len);
    int rc;
    if (cp != NULL && (rc = pd_feed_checkpoint(self->feed, cp, len)) < 0)
        pd_log_limited(PD_LOG_KEY_FEED_SEND, PD_LOG_WARN,
                       "checkpoint not sent: %s", parley_error_name(rc));
}

/*
 * The heartbeat, and with it a fresh checkpoint (its hashes synced first)
 * on sys/checkpoint/ when there is a log key.
 */
static int
s_heartbeat(pd_server_t *self)
{
    int64_t now = parley_now_ms();
    pd_storage_state_t st;
    pd_storage_state(self->storage, &st);
    parley__heartbeat_t hb = { .first_seq = pd_storage_first(self->storage),
                               .time_ms = now,
                               .catching_up = st.catching_up };
    memcpy(hb.daemon_id, self->daemon_id, sizeof(hb.daemon_id));
    memcpy(hb.log_id, st.log_id, sizeof(hb.log_id));
    int rc = pd_feed_heartbeat(self->feed, &hb, s_view_head, self->query);
    if (rc < 0)
        pd_log_limited(PD_LOG_KEY_FEED_SEND, PD_LOG_WARN,
                       "heartbeat not sent: %s", parley_error_name(rc));
    if (self->translog == NULL)
        return 0;
    if ((rc = pd_translog_heartbeat(self->translog, now)) < 0)
        return rc;
    s_checkpoint_send(self);
    return 0;
}

static int
s_stats_topic(pd_server_t *self)
{
    parley__stat_t v[PD_STAT_COUNT];
    int rc = pd_feed_stats(self->feed, v, pd_stats_collect(self->stats, v));
    if (rc < 0)
        pd_log_limited(PD_LOG_KEY_FEED_SEND, PD_LOG_WARN,
                       "stats not sent: %s", parley_error_name(rc));
    return 0;
}

static int
s_retain(pd_server_t *self)
{
    /* The hashes of the records about to go cannot be recomputed after:
     * they must be durable first (a failure is logged; retention waits). */
    if (self->translog != NULL && pd_translog_sync(self->translog) < 0)
        return 0;
    int n = pd_storage_retain(self->storage, parley_now_ms());
    if (n < 0)
        pd_log_limited(PD_LOG_KEY_RETENTION, PD_LOG_ERROR,
                       "retention failed: %s", parley_error_name(n));
    else if (n > 0)
        pd_log(PD_LOG_INFO, "retention removed %d segments; first seq %llu",
               n, (unsigned long long)pd_storage_first(self->storage));
    return 0;
}

/*
 * The storage's timer: is it still the one we opened (if not, it has
 * said why, and the daemon stops)? While it is unavailable, commit again
 * (the retry). STATUS= follows a change of its state within a period.
 */
static int
s_storage(pd_server_t *self)
{
    int rc = pd_storage_check(self->storage);
    if (rc == 0)
        rc = pd_ingest_retry(self->ingest);
    if (rc < 0)
        return rc;
    pd_storage_health_t h;
    pd_storage_health(self->storage, &h);
    if (h.err != self->status_err || h.low_space != self->status_low_space)
        s_notify_status(self);
    return 0;
}

static int
s_watchdog(pd_server_t *self)
{
    (void)self;
    s_notify("WATCHDOG=1");
    return 0;
}

/* A storage that works in the background: commit what it has (the loop
 * also does when its fd is readable); a failure stops the daemon. */
static int
s_storage_tick(pd_server_t *self)
{
    return pd_ingest_flush(self->ingest);
}

/* What each timer runs, by s_timer_id_t. */
static int (*const s_timer_fns[S_TIMERS])(pd_server_t *) = {
    [S_TIMER_HEARTBEAT] = s_heartbeat,
    [S_TIMER_STATS] = s_stats_topic,
    [S_TIMER_RETAIN] = s_retain,
    [S_TIMER_STORAGE] = s_storage,
    [S_TIMER_STATUS] = s_notify_status,
    [S_TIMER_WATCHDOG] = s_watchdog,
    [S_TIMER_BACKGROUND] = s_storage_tick,
};

/*
 * Run the timers that are due and return ms until the next one, or a
 * timer's fatal error (*rc set, negative).
 */
static long
s_timers(pd_server_t *self, int *rc)
{
    int64_t now = parley__mono_ms();
    int64_t next = INT64_MAX;
    for (int i = 0; i < S_TIMERS; i++) {
        s_timer_t *t = &self->timers[i];
        if (t->period_ms == 0)
            continue;
        if (now >= t->next) {
            if ((*rc = s_timer_fns[i](self)) < 0)
                return *rc;
            t->next = now + t->period_ms;
        }
        if (t->next < next)
            next = t->next;
    }
    /* The witness requests, while there are any; a cosignature that came
     * goes out with its checkpoint at once. */
    bool republish = false;
    long w = pd_translog_poll(self->translog, now, &republish);
    if (republish)
        s_checkpoint_send(self);
    if (w >= 0 && now + w < next)
        next = now + w;
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

/* Set the timers' periods and first runs. */
static void
s_start_timers(pd_server_t *self)
{
    int64_t now = parley__mono_ms();
    s_timer_t *t = self->timers;
    t[S_TIMER_HEARTBEAT] = (s_timer_t){ self->cfg.heartbeat_interval, now };
    t[S_TIMER_STATS] = (s_timer_t){ self->cfg.stats_interval, now };
    t[S_TIMER_STATUS] = (s_timer_t){ S_STATUS_MS, now + S_STATUS_MS };
    t[S_TIMER_STORAGE] = (s_timer_t){ PD_STORAGE_CHECK_MS,
                                      now + PD_STORAGE_CHECK_MS };
    if (self->cfg.retention_bytes > 0 || self->cfg.retention_age > 0)
        t[S_TIMER_RETAIN] = (s_timer_t){ S_RETAIN_MS, now + 1 };
    if (pd_storage_fd(self->storage) >= 0)
        t[S_TIMER_BACKGROUND] = (s_timer_t){ PD_STORAGE_TICK_MS, now };
#ifdef PARLEY_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        int64_t ms = (int64_t)(usec / 2000);
        t[S_TIMER_WATCHDOG] = (s_timer_t){ ms > 0 ? ms : 1, now };
    }
#endif
}

/* The loop's poll set: the api, signals, the feed's sockets, the ZAP
 * handler's, then the storage's fd (only a cluster has one). */
typedef struct {
    zmq_pollitem_t items[2 + PD_CLIENTS_CLASSES_MAX + PD_ZAP_NITEMS + 1];
    size_t n_feed, n_zap, n;
    zmq_pollitem_t *storage; /* NULL: the storage has no fd */
} s_poll_t;

static void
s_poll_set(pd_server_t *self, int sigfd, int storage_fd, s_poll_t *p)
{
    p->items[0] = (zmq_pollitem_t){ pd_api_socket(self->api), 0, ZMQ_POLLIN,
                                    0 };
    p->items[1] = (zmq_pollitem_t){ NULL, sigfd, ZMQ_POLLIN, 0 };
    p->n_feed = pd_feed_items(self->feed, p->items + 2);
    p->n_zap = pd_zap_items(self->zap, p->items + 2 + p->n_feed);
    p->n = 2 + p->n_feed + p->n_zap;
    p->storage = NULL;
    if (storage_fd >= 0) {
        p->storage = &p->items[p->n++];
        *p->storage = (zmq_pollitem_t){ NULL, storage_fd, ZMQ_POLLIN, 0 };
    }
}

/* Is one of the n items readable? */
static bool
s_any_ready(const zmq_pollitem_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].revents & ZMQ_POLLIN)
            return true;
    return false;
}

/*
 * Serve what the poll found ready, in the loop's order. Returns true when
 * the loop must stop: a stop signal (*rc 0) or a fatal error (*rc < 0).
 */
static bool
s_serve_ready(pd_server_t *self, const s_poll_t *p, int sigfd, int *rc)
{
    /* Connections first: a handshake waits for the handler. */
    if (s_any_ready(p->items + 2 + p->n_feed, p->n_zap))
        pd_zap_handle(self->zap);
    if (s_any_ready(p->items + 2, p->n_feed))
        pd_feed_drain(self->feed);
    /* A turn always ends with its batch synced and acked, so a stop
     * signal seen below never leaves an accepted update unacked. */
    if (((p->items[0].revents & ZMQ_POLLIN) || pd_ingest_pending(self->ingest))
        && (*rc = pd_ingest_turn(self->ingest)) < 0)
        return true;
    /* The storage's background work: records to apply, PubAcks. */
    if (p->storage != NULL && (p->storage->revents & ZMQ_POLLIN)
        && (*rc = pd_ingest_flush(self->ingest)) < 0)
        return true;
    /* A slice of reads, after the turn's commit: then the timers. */
    pd_api_reads(self->api);
    if ((p->items[1].revents & ZMQ_POLLIN) && s_signals(self, sigfd, rc))
        return true;
    /* Retire a ZAP handler that has served handshakes (cheap when
     * there is nothing to do; the heartbeat timer wakes the loop). */
    pd_zap_tick(self->zap);
    return false;
}

/* Stopping after the loop ended with rc: answer what was read ahead, like
 * any other turn, and let the sockets write out the rest. Returns rc or
 * the last turn's error. */
static int
s_stop(pd_server_t *self, int rc)
{
    if (rc == 0)
        rc = pd_ingest_flush(self->ingest);
    if (rc == 0) {
        /* Let libzmq write out the last acks and deliveries when the
         * sockets close; a stalled peer holds the stop no longer than
         * S_STOP_LINGER_MS. (After an error they close at once.) */
        int linger = S_STOP_LINGER_MS;
        zmq_setsockopt(pd_api_socket(self->api), ZMQ_LINGER, &linger,
                       sizeof(linger));
        pd_feed_set_linger(self->feed, linger);
    }
    s_notify("STOPPING=1");
    return rc;
}

int
pd_server_run(pd_server_t *self, int sigfd)
{
    int rc = 0;
    s_start_timers(self);
    s_notify("READY=1");
    s_notify_status(self);
    int storage_fd = pd_storage_fd(self->storage);
    for (;;) {
        long timeout = s_timers(self, &rc);
        if (rc < 0)
            break;
        if (pd_ingest_pending(self->ingest) || pd_reads_ready(self->reads))
            timeout = 0; /* requests read ahead, or reads, wait */
        else if (pd_reads_queued(self->reads) && timeout > S_READS_RECHECK_MS)
            timeout = S_READS_RECHECK_MS;
        s_poll_t p;
        s_poll_set(self, sigfd, storage_fd, &p);
        if (zmq_poll(p.items, (int)p.n, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            rc = -zmq_errno();
            pd_log(PD_LOG_ERROR, "poll failed: %s", zmq_strerror(-rc));
            break;
        }
        if (s_serve_ready(self, &p, sigfd, &rc))
            break;
    }
    return s_stop(self, rc);
}
