/*
 * security.h - helpers shared by the transport-security and hostile-input
 * integration tests (test_curve, test_acl, test_hostile).
 *
 * harness.h starts a daemon and pings it without CURVE; a daemon with
 * curve on answers only CURVE clients, so these helpers start parleyd
 * from a config file and wait for a ping made with given keys. They also
 * make CURVE key files in the formats `parley keygen --curve` writes
 * (with the Z85 halves kept for raw sockets), open raw ZeroMQ sockets
 * with a chosen security mechanism, and look into the daemon's log.
 *
 * All functions are static inline: each test uses a part of them.
 */
#ifndef PARLEY_IT_SECURITY_H
#define PARLEY_IT_SECURITY_H

#include "clock.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* A CURVE key pair and its files. */
typedef struct sec_curve {
    char pub[41];                   /* Z85 public key */
    char sec[41];                   /* Z85 secret key */
    char path[PH_PATH_MAX];         /* secret key file (0600) */
    char pub_path[PH_PATH_MAX + 8]; /* PATH.pub */
} sec_curve_t;

/* Security mechanism of a raw socket. */
typedef enum {
    SEC_NULL,
    SEC_PLAIN,
    SEC_CURVE
} sec_mech_t;

static inline void
sec_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Make a key pair with libzmq and write dir/name (secret file, mode
 * 0600) and dir/name.pub in parley's formats. Returns 0 or -errno.
 */
static inline int
sec_curve_make(sec_curve_t *k, const char *dir, const char *name)
{
    char text[256];
    if (zmq_curve_keypair(k->pub, k->sec) != 0)
        return -zmq_errno();
    if (ph_path(k->path, sizeof(k->path), dir, name) != 0)
        return -ENAMETOOLONG;
    snprintf(k->pub_path, sizeof(k->pub_path), "%s.pub", k->path);
    int n = snprintf(text, sizeof(text),
                     "parley-curve-secret-key-v1\npublic-key %s\n"
                     "secret-key %s\n",
                     k->pub, k->sec);
    int rc = ph_file_write(k->path, text, (size_t)n, 0600);
    if (rc == 0) {
        n = snprintf(text, sizeof(text), "%s %s\n", k->pub, name);
        rc = ph_file_write(k->pub_path, text, (size_t)n, 0644);
    }
    return rc;
}

/* The library's view of a client's keys for server srv. NULL on error. */
static inline parley_curve_t *
sec_curve_load(const sec_curve_t *srv, const sec_curve_t *client)
{
    parley_curve_t *c = parley_curve_load(srv->pub_path, client->path);
    if (c == NULL)
        fprintf(stderr, "[security] parley_curve_load(%s, %s): %s\n",
                srv->pub_path, client->path, parley_error_name(-errno));
    return c;
}

/*
 * Write dir/parleyd.conf (conf_text, then api, feed, state_dir and
 * keyring lines), start parleyd -c on it with its output in
 * dir/parleyd.log, and wait until a ping with curve (NULL: none)
 * answers. A daemon that exits at once is retried on new ports; one
 * that exits every time is reported (its log is printed) as -ECHILD.
 * Returns 0 or a negative error.
 */
static inline int
sec_daemon_start(ph_daemon_t *d, const char *dir, const char *keyring,
                 const char *conf_text, const parley_curve_t *curve)
{
    char conf_path[PH_PATH_MAX];
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    if (ph_path(d->state_dir, sizeof(d->state_dir), dir, "state") != 0
        || ph_path(d->log_path, sizeof(d->log_path), dir, "parleyd.log") != 0
        || ph_path(conf_path, sizeof(conf_path), dir, "parleyd.conf") != 0)
        return -ENAMETOOLONG;
    if (mkdir(d->state_dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    for (int attempt = 0; attempt < 3; attempt++) {
        d->api_port = ph_free_port();
        d->feed_port = ph_free_port();
        while (d->feed_port == d->api_port && d->api_port > 0)
            d->feed_port = ph_free_port();
        if (d->api_port < 0 || d->feed_port < 0)
            return -EADDRNOTAVAIL;
        ph_endpoint(d->api, d->api_port);
        ph_endpoint(d->feed, d->feed_port);
        size_t cap = strlen(conf_text) + 4 * PH_PATH_MAX;
        char *conf = malloc(cap);
        if (conf == NULL)
            return -ENOMEM;
        int n = snprintf(conf, cap, "%s\napi %s\nfeed %s\nstate_dir %s\n",
                         conf_text, d->api, d->feed, d->state_dir);
        if (keyring != NULL)
            n += snprintf(conf + n, cap - (size_t)n, "keyring %s\n", keyring);
        int rc = ph_file_write(conf_path, conf, (size_t)n, 0600);
        free(conf);
        if (rc < 0)
            return rc;
        int logfd =
            open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (logfd < 0 || nullfd < 0)
            return -errno;
        const char *argv[] = { PARLEYD_BIN, "-c", conf_path, NULL };
        pid_t pid = fork();
        if (pid == 0) {
            if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
                _exit(126);
            execv(argv[0], (char *const *)argv);
            _exit(127);
        }
        close(logfd);
        close(nullfd);
        if (pid < 0)
            return -errno;
        d->pid = pid;
        int64_t deadline = parley__mono_ms() + 10000;
        while (parley__mono_ms() < deadline) {
            int ws;
            if (waitpid(pid, &ws, WNOHANG) == pid) {
                d->pid = 0;
                break;
            }
            if (ph_ping_info(d->api, curve, 250, NULL) == 0)
                return 0;
            sec_sleep_ms(30);
        }
        if (d->pid > 0) {
            ph_daemon_kill9(d);
            ph_daemon_dump_log(d);
            return -ETIMEDOUT;
        }
    }
    ph_daemon_dump_log(d);
    return -ECHILD;
}

/*
 * The feed endpoint a ping names to the client with curve (its access
 * class's socket) into out. Returns 0 or -1.
 */
static inline int
sec_feed_of(const ph_daemon_t *d, const parley_curve_t *curve, char *out,
            size_t cap)
{
    parley_info_t *info = NULL;
    if (ph_ping_info(d->api, curve, 5000, &info) != 0)
        return -1;
    int n = snprintf(out, cap, "%s", parley_info_feed(info));
    parley_info_destroy(&info);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* A counter of the daemon (asked with curve), or UINT64_MAX on error. */
static inline uint64_t
sec_stat(const ph_daemon_t *d, const parley_curve_t *curve, const char *name)
{
    parley_call_options_t o = ph_call_options(d->api, 5000);
    parley_stats_t *st = NULL;
    uint64_t v = UINT64_MAX;
    o.curve = curve;
    int rc = parley_stats(&o, &st);
    if (rc == 0)
        rc = parley_stats_get(st, name, &v);
    parley_stats_destroy(&st);
    if (rc < 0) {
        fprintf(stderr, "[security] stat %s: %s\n", name,
                parley_error_name(rc));
        return UINT64_MAX;
    }
    return v;
}

/*
 * Wait until the counter reaches at least want. Returns its last value
 * (below want on timeout).
 */
static inline uint64_t
sec_stat_wait(const ph_daemon_t *d, const parley_curve_t *curve,
              const char *name, uint64_t want, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    uint64_t v;
    for (;;) {
        v = sec_stat(d, curve, name);
        if ((v >= want && v != UINT64_MAX) || parley__mono_ms() >= deadline)
            return v;
        sec_sleep_ms(50);
    }
}

/*
 * A raw socket of type in ctx with a security mechanism: SEC_CURVE with
 * the client's keys and the server's public key, SEC_PLAIN with a made-up
 * user, SEC_NULL with none. Not connected yet. NULL on error.
 */
static inline void *
sec_socket(void *ctx, int type, sec_mech_t mech, const sec_curve_t *client,
           const char *server_pub)
{
    int zero = 0, hwm = 100000;
    void *s = zmq_socket(ctx, type);
    if (s == NULL)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    int rc = 0;
    if (mech == SEC_CURVE)
        rc = zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40)
             | zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, client->pub, 40)
             | zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, client->sec, 40);
    else if (mech == SEC_PLAIN)
        rc = zmq_setsockopt(s, ZMQ_PLAIN_USERNAME, "mallory", 7)
             | zmq_setsockopt(s, ZMQ_PLAIN_PASSWORD, "secret", 6);
    if (rc != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/*
 * Read what arrives on a SUB socket until nothing but heartbeats has come
 * for wait_ms (at most a minute in all). Heartbeats are counted apart;
 * for the others, topic and Delivery bytes are handed to cb (may be
 * NULL). Returns the number of non-heartbeat messages.
 */
static inline size_t
sec_sub_drain(void *sub, int wait_ms, size_t *heartbeats,
              void (*cb)(void *ctx, const char *topic, size_t tlen,
                         const void *body, size_t blen),
              void *ctx)
{
    size_t n = 0;
    int64_t cap = parley__mono_ms() + 60000;
    int64_t quiet_until = parley__mono_ms() + wait_ms;
    for (;;) {
        int64_t now = parley__mono_ms();
        int64_t until = quiet_until < cap ? quiet_until : cap;
        if (now >= until)
            return n;
        zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, (long)(until - now)) <= 0)
            return n;
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&topic, sub, 0) < 0) {
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            return n;
        }
        if (zmq_msg_more(&topic))
            zmq_msg_recv(&body, sub, 0);
        const char *t = zmq_msg_data(&topic);
        size_t tl = zmq_msg_size(&topic);
        if (tl >= 4 && memcmp(t, "sys/", 4) == 0) {
            if (heartbeats != NULL)
                (*heartbeats)++;
        } else {
            n++;
            quiet_until = parley__mono_ms() + wait_ms;
            if (cb != NULL)
                cb(ctx, t, tl, zmq_msg_data(&body), zmq_msg_size(&body));
        }
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
}

/* Wait for a heartbeat on a SUB socket (proof that the subscriptions it
 * sent before "sys/heartbeat/" have been handled). Returns 0 or -ETIMEDOUT.
 * Deliveries read meanwhile are counted into *other (may be NULL). */
static inline int
sec_sub_wait_heartbeat(void *sub, int timeout_ms, size_t *other)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    while (parley__mono_ms() < deadline) {
        size_t hb = 0;
        size_t n = sec_sub_drain(sub, 100, &hb, NULL, NULL);
        if (other != NULL)
            *other += n;
        if (hb > 0)
            return 0;
    }
    return -ETIMEDOUT;
}

/*
 * Watch sock's handshakes from now on: a PAIR connected to a socket
 * monitor of sock. Call before the connect whose handshake matters.
 * Returns the PAIR (close it with zmq_close()) or NULL.
 */
static inline void *
sec_watch(void *ctx, void *sock)
{
    static unsigned n;
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://sec-watch-%u", n++);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                 | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                 | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                 | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    int zero = 0;
    if (mon == NULL || zmq_socket_monitor(sock, ep, events) != 0
        || zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_connect(mon, ep) != 0) {
        if (mon != NULL)
            zmq_close(mon);
        return NULL;
    }
    return mon;
}

/* Handshakes that the peer (the daemon) refused. */
#define SEC_REFUSED                                                           \
    (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL   \
     | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)

/*
 * Wait until the watched socket reports one of events (a mask of
 * ZMQ_EVENT_*): a handshake that succeeded, or one the daemon refused.
 * Returns 0, or -ETIMEDOUT.
 */
static inline int
sec_watch_wait(void *mon, int events, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - parley__mono_ms();
        zmq_pollitem_t it = { mon, 0, ZMQ_POLLIN, 0 };
        if (left <= 0 || zmq_poll(&it, 1, (long)left) != 1)
            return -ETIMEDOUT;
        zmq_msg_t head, addr;
        zmq_msg_init(&head);
        zmq_msg_init(&addr);
        int got = 0;
        if (zmq_msg_recv(&head, mon, 0) >= 0 && zmq_msg_size(&head) >= 2) {
            uint16_t ev;
            memcpy(&ev, zmq_msg_data(&head), sizeof(ev));
            got = ev;
        }
        if (zmq_msg_more(&head))
            zmq_msg_recv(&addr, mon, 0);
        zmq_msg_close(&head);
        zmq_msg_close(&addr);
        if ((got & events) != 0)
            return 0;
    }
}

/* How many times needle occurs in the daemon's log. */
static inline size_t
sec_log_count(const ph_daemon_t *d, const char *needle)
{
    size_t len = 0, n = 0;
    char *text = ph_file_read(d->log_path, &len);
    if (text == NULL)
        return 0;
    for (const char *p = strstr(text, needle); p != NULL;
         p = strstr(p + 1, needle))
        n++;
    free(text);
    return n;
}

/* Wait until needle occurs more than `before` times in the log. */
static inline bool
sec_log_wait(const ph_daemon_t *d, const char *needle, size_t before,
             int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    while (parley__mono_ms() < deadline) {
        if (sec_log_count(d, needle) > before)
            return true;
        sec_sleep_ms(30);
    }
    return false;
}

#endif /* PARLEY_IT_SECURITY_H */
