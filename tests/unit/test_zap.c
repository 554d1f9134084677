/*
 * test_zap.c - the ZAP handler retires its socket (pd_zap_tick) without
 * losing what it enforces: connections admitted before and after still
 * get deliveries, their subscription cap still holds, max_connections
 * still refuses, and the retired socket is closed after its grace; and
 * it is not retired under a connection that has just arrived. With
 * CURVE, rights follow the key: a subscription queued before a reload
 * that swaps two clients' names is judged by its key, not by the name
 * its connection carries. The feed's part (feed.c: a manual XPUB asking
 * pd_zap_subscribe()) is played by s_drain().
 *
 * The moment of a renewal when no handler is bound lasts microseconds;
 * this program holds it open when a test asks (s_hold_unbound: its
 * zmq_bind() refuses the ZAP endpoint), so that a handshake surely asks
 * in it.
 */
#include "../tmpdir.h"
#include "clients.h"
#include "clock.h"
#include "log.h"
#include "zap.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

/* The linker hands every zmq_bind() of this program to __wrap_zmq_bind()
 * (-Wl,--wrap=zmq_bind), libzmq's being __real_zmq_bind(). While
 * s_hold_unbound is set, binding the ZAP endpoint fails: a renewal
 * (pd_zap_tick()) unbinds the handler and cannot bind one again until it
 * is cleared. s_held counts the binds refused. */
int __real_zmq_bind(void *sock, const char *endpoint);
int __wrap_zmq_bind(void *sock, const char *endpoint);
static bool s_hold_unbound;
static int s_held;

int
__wrap_zmq_bind(void *sock, const char *endpoint)
{
    if (s_hold_unbound && strcmp(endpoint, "inproc://zeromq.zap.01") == 0) {
        s_held++;
        errno = EADDRINUSE;
        return -1;
    }
    return __real_zmq_bind(sock, endpoint);
}

typedef struct {
    void *ctx;
    pd_zap_t *zap;
    void *xpub; /* manual XPUB secured by zap, like the feed */
    char endpoint[64];
    uint64_t granted; /* subscriptions granted */
    void *subs[64];   /* SUB sockets, closed by s_teardown() */
    size_t n_subs;
    size_t max_items; /* most ZAP poll items seen by s_pump() */
    /* with curve: a scratch directory with the keys and the list */
    char dir[256];
    char srv_pub[41], srv_sec[41];
    char pub[2][41], sec[2][41]; /* the clients: 0 reads all, 1 egypt */
} s_env_t;

#define S_HEARTBEAT "sys/heartbeat/"

/* Grant or refuse the waiting subscriptions, as feed.c does. */
static void
s_drain(s_env_t *e)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, e->xpub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        const char *data = zmq_msg_data(&msg);
        size_t n = zmq_msg_size(&msg);
        if (n > 0 && data[0] == 1
            && pd_zap_subscribe(e->zap, &msg, data + 1, n - 1, false)
            && zmq_setsockopt(e->xpub, ZMQ_SUBSCRIBE, data + 1, n - 1) == 0)
            e->granted++;
        zmq_msg_close(&msg);
    }
}

/* One pass of the server loop: wait up to timeout_ms for something to
 * happen, then ZAP requests, monitors, subscriptions and the tick.
 * Returns how many ZAP poll items there are after it. */
static size_t
s_pass(s_env_t *e, int timeout_ms)
{
    zmq_pollitem_t items[1 + PD_ZAP_NITEMS] = {
        { e->xpub, 0, ZMQ_POLLIN, 0 },
    };
    size_t n = pd_zap_items(e->zap, items + 1);
    zmq_poll(items, 1 + (int)n, timeout_ms);
    pd_zap_handle(e->zap);
    if (items[0].revents & ZMQ_POLLIN)
        s_drain(e);
    pd_zap_tick(e->zap);
    return pd_zap_items(e->zap, items + 1);
}

/* Run the daemon's side for ms, in short passes. */
static void
s_pump(s_env_t *e, int ms)
{
    int64_t end = parley__mono_ms() + ms;
    do {
        size_t n = s_pass(e, 10);
        if (n > e->max_items)
            e->max_items = n;
    } while (parley__mono_ms() < end);
}

static s_env_t s_env;

/* Bind the handler with cfg, and a manual XPUB secured by it for the
 * clients of access class klass. */
static int
s_setup_with(void **state, const pd_config_t *base, int klass)
{
    s_env_t env = s_env;
    pd_config_t cfg = *base;
    int err = 1;
    env.ctx = zmq_ctx_new();
    assert_non_null(env.ctx);
    env.zap = pd_zap_new(env.ctx, &cfg, &err);
    assert_non_null(env.zap);
    assert_int_equal(err, 0);
    int one = 1, zero = 0;
    size_t len = sizeof(env.endpoint);
    env.xpub = zmq_socket(env.ctx, ZMQ_XPUB);
    assert_non_null(env.xpub);
    assert_int_equal(
        zmq_setsockopt(env.xpub, ZMQ_XPUB_MANUAL, &one, sizeof(one)), 0);
    assert_int_equal(zmq_setsockopt(env.xpub, ZMQ_LINGER, &zero, sizeof(zero)),
                     0);
    assert_int_equal(pd_zap_secure(env.zap, env.xpub, "feed", klass), 0);
    assert_int_equal(zmq_bind(env.xpub, "tcp://127.0.0.1:0"), 0);
    assert_int_equal(
        zmq_getsockopt(env.xpub, ZMQ_LAST_ENDPOINT, env.endpoint, &len), 0);
    s_env = env;
    *state = &s_env;
    return 0;
}

static int
s_setup(void **state, uint32_t max_connections, uint32_t max_subscriptions)
{
    memset(&s_env, 0, sizeof(s_env));
    pd_log_set_level(PD_LOG_ERROR);
    pd_config_t cfg;
    pd_config_defaults(&cfg);
    cfg.max_connections = max_connections;
    cfg.max_subscriptions = max_subscriptions;
    return s_setup_with(state, &cfg, 0);
}

/* path = dir/name, written with text and mode 0600. */
static void
s_write(char *path, size_t cap, const char *dir, const char *name,
        const char *text)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

/* The allow-list text: client i named names[i]. */
static const char *
s_clients_text(const s_env_t *e, const char *name0, const char *name1)
{
    static char text[512];
    snprintf(text, sizeof(text), "%s %s topics=*\n%s %s topics=party/egypt/\n",
             name0, e->pub[0], name1, e->pub[1]);
    return text;
}

/* curve on, two clients: alice reads everything, bob only egypt; the
 * feed socket is bob's class's. */
static int
s_setup_curve(void **state)
{
    memset(&s_env, 0, sizeof(s_env));
    pd_log_set_level(PD_LOG_ERROR);
    s_env_t *e = &s_env;
    assert_int_equal(test_tmpdir_make(e->dir, sizeof(e->dir), "parley-zap-"),
                     0);
    assert_int_equal(zmq_curve_keypair(e->srv_pub, e->srv_sec), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(zmq_curve_keypair(e->pub[i], e->sec[i]), 0);
    pd_config_t cfg;
    pd_config_defaults(&cfg);
    char text[512];
    snprintf(text, sizeof(text),
             "parley-curve-secret-key-v1\npublic-key %s\nsecret-key %s\n",
             e->srv_pub, e->srv_sec);
    s_write(cfg.curve_secret_key, sizeof(cfg.curve_secret_key), e->dir,
            "server.curve", text);
    s_write(cfg.curve_clients, sizeof(cfg.curve_clients), e->dir,
            "clients.keys", s_clients_text(e, "alice", "bob"));
    cfg.curve = true;
    cfg.max_connections = 16;
    cfg.max_subscriptions = 8;
    return s_setup_with(state, &cfg, 1); /* bob's class: egypt only */
}

/* Connections whose handshake is stuck would wait a minute (not the
 * default 5 s): a test that sees them in within seconds knows they did
 * not wait for it. */
static int
s_setup_patient(void **state)
{
    memset(&s_env, 0, sizeof(s_env));
    s_hold_unbound = false;
    pd_log_set_level(PD_LOG_ERROR);
    pd_config_t cfg;
    pd_config_defaults(&cfg);
    cfg.max_connections = 64;
    cfg.max_subscriptions = 4;
    cfg.handshake_timeout = 60000;
    return s_setup_with(state, &cfg, 0);
}

static int
s_setup_default(void **state)
{
    return s_setup(state, 16, 2);
}

static int
s_setup_one_conn(void **state)
{
    return s_setup(state, 1, 4);
}

static int
s_setup_many(void **state)
{
    return s_setup(state, 64, 4);
}

static int
s_teardown(void **state)
{
    s_env_t *e = *state;
    /* Closed here, so that a failed assertion does not leave the context
     * waiting for them. */
    for (size_t i = 0; i < e->n_subs; i++)
        zmq_close(e->subs[i]);
    zmq_close(e->xpub);
    pd_zap_destroy(&e->zap);
    zmq_ctx_term(e->ctx);
    if (e->dir[0] != '\0') {
        char path[512];
        snprintf(path, sizeof(path), "%s/server.curve", e->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/clients.keys", e->dir);
        unlink(path);
        rmdir(e->dir);
    }
    return 0;
}

/* A SUB connected to the feed, subscribed to topic; with client i's
 * CURVE keys, or without CURVE for i < 0. */
static void *
s_sub_as(s_env_t *e, int i, const char *topic)
{
    void *s = zmq_socket(e->ctx, ZMQ_SUB);
    int zero = 0;
    assert_non_null(s);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if (i >= 0) {
        assert_int_equal(
            zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, e->srv_pub, 40), 0);
        assert_int_equal(
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, e->pub[i], 40), 0);
        assert_int_equal(
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, e->sec[i], 40), 0);
    }
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, topic, strlen(topic));
    assert_true(e->n_subs < sizeof(e->subs) / sizeof(e->subs[0]));
    e->subs[e->n_subs++] = s;
    assert_int_equal(zmq_connect(s, e->endpoint), 0);
    return s;
}

static void *
s_sub(s_env_t *e, const char *topic)
{
    return s_sub_as(e, -1, topic);
}

/* Publish one heartbeat on the feed. */
static void
s_beat(s_env_t *e)
{
    assert_true(zmq_send(e->xpub, S_HEARTBEAT, strlen(S_HEARTBEAT),
                         ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(e->xpub, "hb", 2, 0) >= 0);
}

/* Send heartbeats until sub hears one (up to 3 s). Returns whether it did. */
static bool
s_hears(s_env_t *e, void *sub)
{
    int64_t end = parley__mono_ms() + 3000;
    while (parley__mono_ms() < end) {
        s_beat(e);
        s_pump(e, 20);
        char topic[64];
        int n = zmq_recv(sub, topic, sizeof(topic), ZMQ_DONTWAIT);
        if (n >= 0) {
            while (zmq_recv(sub, topic, sizeof(topic), ZMQ_DONTWAIT) >= 0) {
            }
            return true;
        }
    }
    return false;
}

/* How many sockets the handler polls: monitors + handler (+ a retired
 * one during its grace). */
static size_t
s_zap_items(s_env_t *e)
{
    zmq_pollitem_t items[PD_ZAP_NITEMS];
    return pd_zap_items(e->zap, items);
}

static void
test_retire_keeps_connections(void **state)
{
    s_env_t *e = *state;
    size_t idle = s_zap_items(e);
    e->max_items = idle;
    void *a = s_sub(e, S_HEARTBEAT);
    assert_true(s_hears(e, a));
    /* a's handshake made the handler retire: a second socket was polled
     * during the grace, and is closed after it. */
    s_pump(e, 600);
    assert_int_equal(e->max_items, idle + 1);
    assert_int_equal(s_zap_items(e), idle);
    /* a still hears the feed once its handshake pipe is gone ... */
    assert_true(s_hears(e, a));
    /* ... and a newcomer is admitted through the fresh handler. */
    void *b = s_sub(e, S_HEARTBEAT);
    assert_true(s_hears(e, b));
    assert_true(s_hears(e, a));
    const pd_zap_counters_t *c = pd_zap_counters(e->zap);
    assert_int_equal(c->auth_denied, 0);
    assert_int_equal(c->handshake_failed, 0);
    assert_int_equal(c->connections, 2);
}

static void
test_cap_survives_retire(void **state)
{
    s_env_t *e = *state;
    void *a = s_sub(e, S_HEARTBEAT);
    assert_true(s_hears(e, a));
    s_pump(e, 700); /* retired and closed the handler that admitted a */
    uint64_t denied = pd_zap_counters(e->zap)->subscriptions_denied;
    /* max_subscriptions is 2: one more is granted, the third refused. */
    zmq_setsockopt(a, ZMQ_SUBSCRIBE, "all/", 4);
    zmq_setsockopt(a, ZMQ_SUBSCRIBE, "neg/x/", 6);
    int64_t end = parley__mono_ms() + 3000;
    while (pd_zap_counters(e->zap)->subscriptions_denied == denied
           && parley__mono_ms() < end)
        s_pump(e, 20);
    assert_int_equal(pd_zap_counters(e->zap)->subscriptions_denied,
                     denied + 1);
    assert_int_equal(e->granted, 2);
}

static void
test_max_connections_survives_retire(void **state)
{
    s_env_t *e = *state;
    void *a = s_sub(e, S_HEARTBEAT);
    assert_true(s_hears(e, a));
    s_pump(e, 700);
    /* max_connections is 1: a second connection is refused by the fresh
     * handler, and a keeps hearing the feed. */
    (void)s_sub(e, S_HEARTBEAT);
    int64_t end = parley__mono_ms() + 3000;
    while (pd_zap_counters(e->zap)->connections_refused == 0
           && parley__mono_ms() < end)
        s_pump(e, 20);
    assert_true(pd_zap_counters(e->zap)->connections_refused >= 1);
    assert_true(s_hears(e, a));
}

/*
 * The server loop's pattern: sleep in poll until something happens, then
 * handle what came and tick. Run it until sub hears a
 * heartbeat (one is sent at every wake-up) or ms pass; returns whether it
 * did. *retired_at is set to when the handler was first seen retired
 * (more than idle poll items), 0 if it was not.
 */
static bool
s_loop_until_heard(s_env_t *e, void *sub, int ms, size_t idle,
                   int64_t *retired_at)
{
    int64_t end = parley__mono_ms() + ms;
    *retired_at = 0;
    while (parley__mono_ms() < end) {
        if (s_pass(e, 250) > idle && *retired_at == 0)
            *retired_at = parley__mono_ms();
        s_beat(e);
        /* Wait a little for it, so that a round normally ends well
         * within the handler's quiet time. */
        zmq_pollitem_t heard = { sub, 0, ZMQ_POLLIN, 0 };
        char topic[64];
        if (zmq_poll(&heard, 1, 20) == 1
            && zmq_recv(sub, topic, sizeof(topic), ZMQ_DONTWAIT) >= 0)
            return true;
    }
    return false;
}

/*
 * A connection arriving after a quiet spell wakes the loop (its monitor
 * event), and the tick that follows must not retire the handler: that
 * connection is about to ask it, and a NULL handshake that finds no
 * handler bound waits for handshake_timeout (5 s) before its client tries
 * again. Each round: a quiet spell with the loop asleep, then a newcomer.
 * A round that starts with the last newcomer's handler still in place
 * (the usual case) would retire it at the first tick, but for the
 * newcomer: no retirement may be seen within the handler's quiet time
 * (S_QUIET_MS, 100 ms) of the connect. A slow machine only makes the
 * retirement be seen later.
 */
static void
test_newcomer_defers_retirement(void **state)
{
    s_env_t *e = *state;
    void *first = s_sub(e, S_HEARTBEAT);
    assert_true(s_hears(e, first));
    s_pump(e, 600); /* the handler that admitted first is retired */
    size_t idle = s_zap_items(e);
    int tested = 0;
    for (int round = 0; round < 12; round++) {
        struct timespec quiet = { 0, 150 * 1000000L };
        nanosleep(&quiet, NULL);
        bool armed = s_zap_items(e) == idle && round > 0;
        int64_t t0 = parley__mono_ms(), retired_at;
        void *s = s_sub(e, S_HEARTBEAT);
        if (!s_loop_until_heard(e, s, 3000, idle, &retired_at))
            fail_msg("round %d: the newcomer was not admitted within 3 s "
                     "(%" PRIu64 " handshakes failed)",
                     round, pd_zap_counters(e->zap)->handshake_failed);
        if (!armed)
            continue;
        tested++;
        if (retired_at != 0 && retired_at - t0 < 100)
            fail_msg("round %d: the handler was retired %" PRId64 " ms "
                     "after the newcomer connected, under its handshake",
                     round, retired_at - t0);
    }
    assert_true(tested > 0);
    assert_int_equal(pd_zap_counters(e->zap)->handshake_failed, 0);
}

/* Pump the loop until pd_zap_tick() has found no handler to bind (a
 * renewal began while s_hold_unbound is set), up to 5 s. */
static void
s_pump_until_held(s_env_t *e)
{
    int64_t end = parley__mono_ms() + 5000;
    while (s_held == 0 && parley__mono_ms() < end)
        s_pump(e, 20);
    assert_true(s_held > 0);
}

/*
 * A connection made while a renewal has no handler bound asks none: its
 * NULL handshake is stuck (libzmq sends nothing more, nor does the
 * client) until handshake_timeout, a minute here. The daemon must get it
 * in once a handler is bound again, within seconds: it closes that
 * connection and the client's libzmq reconnects at once. The connection
 * admitted before the renewal is not touched.
 */
static void
test_renewal_newcomer_gets_in(void **state)
{
    s_env_t *e = *state;
    /* held from the start: a slow machine may renew while first waits
     * for its heartbeat */
    s_held = 0;
    s_hold_unbound = true;
    void *first = s_sub(e, S_HEARTBEAT);
    assert_true(s_hears(e, first));
    s_pump_until_held(e);

    uint64_t failed = pd_zap_counters(e->zap)->handshake_failed;
    void *late = s_sub(e, S_HEARTBEAT);
    int64_t end = parley__mono_ms() + 5000;
    while (pd_zap_counters(e->zap)->handshake_failed == failed
           && parley__mono_ms() < end)
        s_pump(e, 20);
    /* it asked, and found no handler */
    assert_true(pd_zap_counters(e->zap)->handshake_failed > failed);
    s_hold_unbound = false;
    assert_true(s_hears(e, late));
    assert_true(s_hears(e, first));
    assert_int_equal(pd_zap_counters(e->zap)->connections, 2);
}

/* A raw ZMTP 3.0 client on the feed: connect only. Returns its socket. */
static int
s_raw_connect(const s_env_t *e)
{
    const char *port = strrchr(e->endpoint, ':');
    assert_non_null(port);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)atoi(port + 1)) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* The client's whole side of a NULL handshake: the greeting (signature,
 * version 3.0, mechanism NULL, not as server) and READY as a SUB. */
static void
s_raw_greet(int fd)
{
    uint8_t out[64 + 27] = { 0xff, [9] = 0x7f, [10] = 3, [11] = 0 };
    memcpy(out + 12, "NULL", 4);
    static const uint8_t ready[27] = {
        0x04, 25,  5,   'R', 'E', 'A', 'D', 'Y', 11,  'S', 'o', 'c', 'k', 'e',
        't',  '-', 'T', 'y', 'p', 'e', 0,   0,   0,   3,   'S', 'U', 'B',
    };
    memcpy(out + 64, ready, sizeof(ready));
    assert_int_equal(send(fd, out, sizeof(out), 0), (ssize_t)sizeof(out));
}

/* Run the loop until the daemon's READY reaches the raw client fd (after
 * its 64-byte greeting), up to ms. Returns whether it did. */
static bool
s_raw_ready(s_env_t *e, int fd, int ms)
{
    uint8_t in[128];
    size_t have = 0;
    int64_t end = parley__mono_ms() + ms;
    while (have < 64 + 8 && parley__mono_ms() < end) {
        s_pump(e, 10);
        ssize_t n = recv(fd, in + have, sizeof(in) - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        else if (n == 0)
            return false; /* closed */
    }
    return have >= 64 + 8 && in[64] == 0x04 && in[66] == 5
           && memcmp(in + 67, "READY", 5) == 0;
}

/*
 * A connection accepted long before it asks (a slow client, a loaded
 * machine) is in its handshake all along: the handler must not be
 * retired under it, however quiet the rest. Here the client connects,
 * the loop runs well past the quiet time with renewals held unbound,
 * and only then does the client greet: the daemon must answer READY
 * (had the handler been retired meanwhile, none would be bound to ask).
 */
static void
test_handshake_holds_handler(void **state)
{
    s_env_t *e = *state;
    void *first = s_sub(e, S_HEARTBEAT);
    assert_true(s_hears(e, first));
    /* The handler has just served a request (a second subscriber's),
     * so that it is due to be retired once quiet, whatever happened
     * while first waited for its heartbeat. */
    s_held = 0;
    s_hold_unbound = true;
    void *second = s_sub(e, S_HEARTBEAT);
    int fd = s_raw_connect(e);
    assert_true(s_hears(e, second));
    s_pump(e, 400);
    s_raw_greet(fd);
    bool ready = s_raw_ready(e, fd, 3000);
    int held = s_held;
    s_hold_unbound = false;
    close(fd);
    assert_true(ready);
    assert_int_equal(held, 0);
    assert_int_equal(pd_zap_counters(e->zap)->handshake_failed, 0);
    assert_true(s_hears(e, first));
}

/* Connect n subscribers to the heartbeat, one every 10 ms with the loop
 * running in between (never the handler's quiet time, 100 ms); into
 * subs. */
static void
s_crowd(s_env_t *e, void **subs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        subs[i] = s_sub(e, S_HEARTBEAT);
        s_pump(e, 10);
    }
}

/*
 * A crowd of subscribers arriving without a pause (a restart of their
 * hosts) retires the handler as it goes, once a handler has served 32
 * handshakes and every connection in its handshake has asked: the pipes
 * of the first part are freed while the rest arrive, whose connections
 * reuse their memory. Before, the handler was retired only after 100 ms
 * without a connection, so never during such a crowd. Nobody may wait for
 * handshake_timeout (a minute here) on the way.
 */
static void
test_crowd_retires_handler(void **state)
{
    s_env_t *e = *state;
    size_t idle = s_zap_items(e);
    e->max_items = idle;
    void *subs[48];
    s_crowd(e, subs, 48);
    /* a retired handler was polled during its grace, while the crowd
     * was still arriving */
    assert_int_equal(e->max_items, idle + 1);
    for (size_t i = 0; i < 48; i++)
        if (!s_hears(e, subs[i]))
            fail_msg("subscriber %zu not admitted within 3 s", i);
    const pd_zap_counters_t *c = pd_zap_counters(e->zap);
    assert_int_equal(c->handshake_failed, 0);
    assert_int_equal(c->connections, 48);
}

/*
 * Not in a crowd either is the handler retired under a connection that
 * has not asked yet: a raw client connects and stays silent while a
 * crowd comes and goes through the handler, renewals held unbound (a
 * renewal would show as a refused bind); then it greets and must be
 * answered.
 */
static void
test_crowd_waits_for_silent(void **state)
{
    s_env_t *e = *state;
    int fd = s_raw_connect(e);
    s_pump(e, 50);
    s_held = 0;
    s_hold_unbound = true;
    void *subs[40];
    s_crowd(e, subs, 40);
    s_pump(e, 300);
    int held = s_held;
    s_raw_greet(fd);
    bool ready = s_raw_ready(e, fd, 3000);
    s_hold_unbound = false;
    close(fd);
    assert_int_equal(held, 0);
    assert_true(ready);
    for (size_t i = 0; i < 40; i++)
        if (!s_hears(e, subs[i]))
            fail_msg("subscriber %zu not admitted within 3 s", i);
    assert_int_equal(pd_zap_counters(e->zap)->handshake_failed, 0);
}

/*
 * Rights follow the key. bob (egypt only) subscribes to all/; before
 * the feed reads it, a reload swaps the names: "bob" is now the key
 * that reads everything. The subscription still carries the name bob,
 * and must be judged by bob's key: refused, and all/ never reaches him.
 * The api's checks (what a replay may send, stats) are by key as well.
 */
static void
test_rights_follow_the_key(void **state)
{
    s_env_t *e = *state;
    void *bob = s_sub_as(e, 1, S_HEARTBEAT);
    assert_true(s_hears(e, bob));
    uint64_t granted = e->granted;
    uint64_t denied = pd_zap_counters(e->zap)->subscriptions_denied;

    /* queued in the XPUB, not read yet */
    zmq_setsockopt(bob, ZMQ_SUBSCRIBE, "all/", 4);
    zmq_pollitem_t it = { e->xpub, 0, ZMQ_POLLIN, 0 };
    assert_int_equal(zmq_poll(&it, 1, 3000), 1);

    char err[256] = "";
    const char *text = s_clients_text(e, "bob", "alice");
    pd_clients_t *fresh = NULL;
    assert_int_equal(
        pd_clients_parse(&fresh, text, strlen(text), "swap", err, sizeof(err)),
        0);
    /* names changed hands: a server would cut every connection now */
    assert_true(pd_zap_reload_commit(e->zap, &fresh));

    s_drain(e);
    assert_int_equal(e->granted, granted);
    assert_int_equal(pd_zap_counters(e->zap)->subscriptions_denied,
                     denied + 1);
    /* an all/ delivery does not reach bob; a heartbeat still does */
    for (int i = 0; i < 5; i++) {
        assert_true(zmq_send(e->xpub, "all/", 4, ZMQ_SNDMORE) >= 0);
        assert_true(zmq_send(e->xpub, "update", 6, 0) >= 0);
    }
    s_beat(e);
    char topic[64];
    zmq_pollitem_t heard = { bob, 0, ZMQ_POLLIN, 0 };
    assert_int_equal(zmq_poll(&heard, 1, 3000), 1);
    int n = zmq_recv(bob, topic, sizeof(topic), 0);
    assert_int_equal(n, (int)strlen(S_HEARTBEAT));

    /* The api's side: by key, under the list in force. */
    char z85[2][41];
    memcpy(z85, e->pub, sizeof(z85));
    const char israel[][PARLEY_TOPIC_MAX] = { "all/", "party/israel/" };
    assert_false(pd_zap_reads_all(e->zap, z85[1]));
    assert_false(pd_zap_may_read(e->zap, z85[1], israel, 2));
    assert_false(pd_zap_may_stats(e->zap, z85[1]));
    assert_true(pd_zap_reads_all(e->zap, z85[0]));
    assert_true(pd_zap_may_stats(e->zap, z85[0]));
    assert_int_equal(pd_zap_class_of(e->zap, z85[0]), 0);
    assert_int_equal(pd_zap_class_of(e->zap, z85[1]), 1);
    assert_int_equal(pd_zap_class_of(e->zap, "not a key"), -1);
    assert_int_equal(pd_zap_class_of(e->zap, NULL), -1);
    assert_false(pd_zap_reads_all(e->zap, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retire_keeps_connections,
                                        s_setup_default, s_teardown),
        cmocka_unit_test_setup_teardown(test_cap_survives_retire,
                                        s_setup_default, s_teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_survives_retire,
                                        s_setup_one_conn, s_teardown),
        cmocka_unit_test_setup_teardown(test_rights_follow_the_key,
                                        s_setup_curve, s_teardown),
        cmocka_unit_test_setup_teardown(test_newcomer_defers_retirement,
                                        s_setup_many, s_teardown),
        cmocka_unit_test_setup_teardown(test_renewal_newcomer_gets_in,
                                        s_setup_patient, s_teardown),
        cmocka_unit_test_setup_teardown(test_handshake_holds_handler,
                                        s_setup_patient, s_teardown),
        cmocka_unit_test_setup_teardown(test_crowd_retires_handler,
                                        s_setup_patient, s_teardown),
        cmocka_unit_test_setup_teardown(test_crowd_waits_for_silent,
                                        s_setup_patient, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
