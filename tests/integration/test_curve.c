/*
 * test_curve.c - CurveZMQ on both endpoints (issue 4, acceptance 2).
 *
 * One daemon with curve on and an allow-list of two clients (alice and
 * bob) serves the group. For each kind of stranger - a CURVE client with
 * an unknown key, a NULL client, a PLAIN client - the test checks what a
 * user would see: a subscriber gets nothing at all (not even heartbeats),
 * a publish gets no answer and changes nothing, the library says why
 * (-EACCES or a protocol error), and the refusal is counted. An allowed
 * client publishes and receives. Then bob is removed from the list and
 * parleyd reloaded: bob's open connections are cut and he gets nothing
 * more, while alice carries on. A broken list on reload changes nothing.
 */
#include "harness.h"
#include "security.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 5000
#define S_QUIET_MS 1500 /* how long "nothing arrives" is watched */

typedef struct {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    char clients[PH_PATH_MAX];
    ph_key_t signer;
    sec_curve_t server, alice, bob, eve;
    parley_curve_t *alice_c, *bob_c, *eve_c;
    ph_daemon_t daemon;
    parley_pub_t *pub; /* alice's publisher */
    void *ctx;         /* for raw sockets */
    void *bob_sub;     /* raw subscriber of the reload test */
} s_state_t;

static int
s_write_clients(s_state_t *st, bool with_bob)
{
    char text[512];
    int n = snprintf(text, sizeof(text),
                     "# parley test allow-list\nalice %s\n%s%s%s",
                     st->alice.pub, with_bob ? "bob " : "",
                     with_bob ? st->bob.pub : "", with_bob ? "\n" : "");
    return ph_file_write(st->clients, text, (size_t)n, 0644);
}

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    char ring[1024] = "", conf[4 * PH_PATH_MAX];
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    if (ph_key_make(&st->signer, st->dir, "mediator", 0x51) != 0
        || ph_keyring_add(ring, sizeof(ring), &st->signer, "*", "*", "*") != 0
        || ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_file_write(st->keyring, ring, strlen(ring), 0644) != 0)
        return -1;
    if (sec_curve_make(&st->alice, st->dir, "alice.curve") != 0
        || sec_curve_make(&st->bob, st->dir, "bob.curve") != 0
        || sec_curve_make(&st->eve, st->dir, "eve.curve") != 0)
        return -1;
    /* the server's pair as `parley keygen --curve` makes it */
    char path[PH_PATH_MAX];
    if (ph_path(path, sizeof(path), st->dir, "server.curve") != 0
        || parley_curve_keygen(path, "server", 0, st->server.pub) != 0)
        return -1;
    snprintf(st->server.path, sizeof(st->server.path), "%s", path);
    snprintf(st->server.pub_path, sizeof(st->server.pub_path), "%s.pub", path);
    if (ph_path(st->clients, sizeof(st->clients), st->dir, "clients.keys") != 0
        || s_write_clients(st, true) != 0)
        return -1;
    if ((st->alice_c = sec_curve_load(&st->server, &st->alice)) == NULL
        || (st->bob_c = sec_curve_load(&st->server, &st->bob)) == NULL
        || (st->eve_c = sec_curve_load(&st->server, &st->eve)) == NULL)
        return -1;
    snprintf(conf, sizeof(conf),
             "curve on\ncurve_secret_key %s\ncurve_clients %s\n"
             "fsync off\nlog_level info\n",
             st->server.path, st->clients);
    if (sec_daemon_start(&st->daemon, st->dir, st->keyring, conf, st->alice_c)
        != 0)
        return -1;
    st->pub = ph_pub_new(st->daemon.api, st->signer.key, st->alice_c, 0);
    st->ctx = zmq_ctx_new();
    if (st->pub == NULL || st->ctx == NULL)
        return -1;
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    parley_pub_destroy(&st->pub);
    if (st->bob_sub != NULL)
        zmq_close(st->bob_sub); /* left open by a failed test */
    if (st->ctx != NULL)
        zmq_ctx_term(st->ctx);
    int rc = ph_daemon_stop(&st->daemon);
    if (rc != 0) {
        fprintf(stderr, "parleyd exited with %d\n", rc);
        ph_daemon_dump_log(&st->daemon);
    }
    parley_curve_destroy(&st->alice_c);
    parley_curve_destroy(&st->bob_c);
    parley_curve_destroy(&st->eve_c);
    ph_key_free(&st->signer);
    ph_tmpdir_remove(st->dir);
    free(st);
    return rc == 0 ? 0 : -1;
}

/* Publish n updates as alice; returns the last seq. */
static uint64_t
s_publish(s_state_t *st, int n, const char *what)
{
    uint64_t seq = 0;
    for (int i = 0; i < n; i++) {
        parley_update_t u;
        char h[96];
        snprintf(h, sizeof(h), "%s %d", what, i);
        ph_update_init(&u, "gaza-ceasefire", "egypt", 1, h);
        int rc = ph_publish(st->pub, &u, &seq, NULL);
        if (rc != 0) {
            ph_daemon_dump_log(&st->daemon);
            fail_msg("alice could not publish (%s): %s", what,
                     parley_error_name(rc));
        }
    }
    return seq;
}

/* The head seq as alice sees it. */
static uint64_t
s_head(s_state_t *st)
{
    parley_info_t *info = NULL;
    int rc = ph_ping_info(st->daemon.api, st->alice_c, S_TIMEOUT, &info);
    if (rc != 0)
        fail_msg("alice's ping failed: %s", parley_error_name(rc));
    uint64_t seq = parley_info_seq(info);
    parley_info_destroy(&info);
    return seq;
}

/*
 * A stranger's raw publish: encode a valid, signed publish request and
 * send it on a DEALER with the given mechanism; no answer may come, and
 * the log must not grow.
 */
static void
s_stranger_cannot_publish(s_state_t *st, sec_mech_t mech,
                          const sec_curve_t *keys, const char *who)
{
    uint64_t head = s_head(st),
             accepted = sec_stat(&st->daemon, st->alice_c, "accepted");
    void *d = sec_socket(st->ctx, ZMQ_DEALER, mech, keys, st->server.pub);
    assert_non_null(d);
    assert_int_equal(zmq_connect(d, st->daemon.api), 0);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX], req[PARLEY_ENVELOPE_MAX + 256];
    size_t len = 0, rlen = 0;
    ph_update_init(&u, "gaza-ceasefire", "egypt", 1, "from a stranger");
    assert_int_equal(ph_sign(&st->signer, &u, env, sizeof(env), &len), 0);
    parley__request_t *rq = calloc(1, sizeof(*rq));
    assert_non_null(rq);
    rq->request_id = 9;
    rq->op = PARLEY__OP_PUBLISH;
    rq->update.data = env;
    rq->update.len = len;
    assert_int_equal(parley__request_encode(rq, req, sizeof(req), &rlen), 0);
    free(rq);
    /* Queued until the connection is up, which it never is. */
    zmq_send(d, req, rlen, ZMQ_DONTWAIT);
    zmq_pollitem_t it = { d, 0, ZMQ_POLLIN, 0 };
    int got = zmq_poll(&it, 1, S_QUIET_MS);
    zmq_close(d);
    if (got != 0)
        fail_msg("%s: got an answer to a publish", who);
    assert_int_equal(s_head(st), head);
    assert_int_equal(sec_stat(&st->daemon, st->alice_c, "accepted"), accepted);
}

/* Handshakes the daemon turned away so far (allow-list, mechanism). */
static uint64_t
s_refusals(s_state_t *st)
{
    uint64_t a = sec_stat(&st->daemon, st->alice_c, "auth_denied");
    uint64_t h = sec_stat(&st->daemon, st->alice_c, "handshake_failed");
    return a == UINT64_MAX || h == UINT64_MAX ? 0 : a + h;
}

/* A stranger's raw subscriber to "" gets nothing while alice publishes. */
static void
s_stranger_gets_nothing(s_state_t *st, sec_mech_t mech, const sec_curve_t *keys,
                        const char *who)
{
    uint64_t refusals = s_refusals(st);
    void *s = sec_socket(st->ctx, ZMQ_SUB, mech, keys, st->server.pub);
    assert_non_null(s);
    assert_int_equal(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0), 0);
    assert_int_equal(zmq_connect(s, st->daemon.feed), 0);
    /* The daemon has turned it away before anything is published. */
    int64_t deadline = parley__mono_ms() + S_TIMEOUT;
    while (s_refusals(st) <= refusals && parley__mono_ms() < deadline)
        sec_sleep_ms(20);
    if (s_refusals(st) <= refusals) {
        zmq_close(s);
        fail_msg("%s: the daemon counted no refused handshake", who);
    }
    s_publish(st, 10, who);
    size_t hb = 0;
    size_t n = sec_sub_drain(s, S_QUIET_MS, &hb, NULL, NULL);
    zmq_close(s);
    if (n != 0 || hb != 0)
        fail_msg("%s: received %zu updates and %zu heartbeats", who, n, hb);
}

static void
test_allowed_client_works(void **state)
{
    s_state_t *st = *state;
    parley_sub_options_t opt = { .curve = st->alice_c };
    parley_sub_t *sub = ph_sub_new(st->daemon.api, NULL, &opt);
    if (sub == NULL)
        fail_msg("alice cannot subscribe: %s", parley_error_name(-errno));
    uint64_t seq = s_publish(st, 3, "allowed");
    ph_events_t ev = { 0 };
    ph_sub_collect(sub, &ev, 3, seq, S_TIMEOUT);
    assert_int_equal(ev.n, 3);
    assert_int_equal(ev.d[2].seq, seq);
    ph_events_free(&ev);
    parley_sub_destroy(&sub);
    /* stats through CURVE too */
    assert_int_equal(sec_stat(&st->daemon, st->alice_c, "curve_clients"), 2);
}

static void
test_unknown_key_refused(void **state)
{
    s_state_t *st = *state;
    uint64_t denied = sec_stat(&st->daemon, st->alice_c, "auth_denied");
    assert_int_equal(
        ph_ping_info(st->daemon.api, st->eve_c, S_TIMEOUT, NULL), -EACCES);
    parley_sub_options_t opt = { .curve = st->eve_c };
    errno = 0;
    assert_null(ph_sub_new(st->daemon.api, NULL, &opt));
    assert_int_equal(errno, EACCES);
    parley_pub_t *p =
        ph_pub_new(st->daemon.api, st->signer.key, st->eve_c, 0);
    assert_non_null(p);
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "egypt", 1, "eve's");
    assert_int_equal(ph_publish(p, &u, NULL, NULL), -EACCES);
    parley_pub_destroy(&p);

    s_stranger_gets_nothing(st, SEC_CURVE, &st->eve, "unknown CURVE key");
    s_stranger_cannot_publish(st, SEC_CURVE, &st->eve, "unknown CURVE key");
    assert_true(sec_stat(&st->daemon, st->alice_c, "auth_denied")
                >= denied + 4);
    assert_true(sec_log_count(&st->daemon, "not in curve_clients") > 0);
}

static void
test_null_client_refused(void **state)
{
    s_state_t *st = *state;
    uint64_t failed = sec_stat(&st->daemon, st->alice_c, "handshake_failed");
    assert_int_equal(ph_ping(st->daemon.api, S_TIMEOUT),
                     PARLEY_EPROTO);
    s_stranger_gets_nothing(st, SEC_NULL, NULL, "NULL client");
    s_stranger_cannot_publish(st, SEC_NULL, NULL, "NULL client");
    assert_true(sec_stat_wait(&st->daemon, st->alice_c, "handshake_failed",
                              failed + 3, S_TIMEOUT)
                >= failed + 3);
}

static void
test_plain_client_refused(void **state)
{
    s_state_t *st = *state;
    uint64_t failed = sec_stat(&st->daemon, st->alice_c, "handshake_failed");
    s_stranger_gets_nothing(st, SEC_PLAIN, NULL, "PLAIN client");
    s_stranger_cannot_publish(st, SEC_PLAIN, NULL, "PLAIN client");
    assert_true(sec_stat_wait(&st->daemon, st->alice_c, "handshake_failed",
                              failed + 2, S_TIMEOUT)
                >= failed + 2);
}

/* A client with the right keys but the wrong server key gets nowhere. */
static void
test_wrong_server_key(void **state)
{
    s_state_t *st = *state;
    parley_curve_t *c = parley_curve_load(st->eve.pub_path, st->alice.path);
    assert_non_null(c);
    int rc = ph_ping_info(st->daemon.api, c, 1500, NULL);
    parley_curve_destroy(&c);
    assert_int_not_equal(rc, 0);
}

/*
 * Reload with bob removed: his open connections (a raw subscriber and a
 * library subscriber) are cut and refused from then on; alice's library
 * subscriber reconnects and misses nothing.
 */
static void
test_reload_cuts_removed_client(void **state)
{
    s_state_t *st = *state;
    void *bob_sub = st->bob_sub =
        sec_socket(st->ctx, ZMQ_SUB, SEC_CURVE, &st->bob, st->server.pub);
    assert_non_null(bob_sub);
    zmq_setsockopt(bob_sub, ZMQ_SUBSCRIBE, "all/", 4);
    zmq_setsockopt(bob_sub, ZMQ_SUBSCRIBE, "sys/heartbeat/", 14);
    assert_int_equal(zmq_connect(bob_sub, st->daemon.feed), 0);
    assert_int_equal(sec_sub_wait_heartbeat(bob_sub, S_TIMEOUT, NULL), 0);

    parley_sub_options_t aopt = { .curve = st->alice_c };
    parley_sub_t *alice_sub = ph_sub_new(st->daemon.api, NULL, &aopt);
    assert_non_null(alice_sub);
    parley_sub_options_t bopt = { .curve = st->bob_c };
    parley_sub_t *bob_lib = ph_sub_new(st->daemon.api, NULL, &bopt);
    assert_non_null(bob_lib);

    uint64_t before = s_publish(st, 5, "before reload");
    size_t got = sec_sub_drain(bob_sub, 1000, NULL, NULL, NULL);
    assert_int_equal(got, 5);
    ph_events_t ev = { 0 };
    ph_sub_collect(bob_lib, &ev, 5, before, S_TIMEOUT);
    assert_int_equal(ev.n, 5);
    ph_events_free(&ev);
    ph_sub_collect(alice_sub, &ev, 5, before, S_TIMEOUT);
    assert_int_equal(ev.n, 5);
    ph_events_free(&ev);

    /* bob is removed; SIGHUP */
    size_t cuts = sec_log_count(&st->daemon, "closed every connection");
    void *watch = sec_watch(st->ctx, bob_sub);
    assert_non_null(watch);
    assert_int_equal(s_write_clients(st, false), 0);
    assert_int_equal(kill(st->daemon.pid, SIGHUP), 0);
    if (!sec_log_wait(&st->daemon, "closed every connection", cuts,
                      S_TIMEOUT)) {
        ph_daemon_dump_log(&st->daemon);
        fail_msg("no cut after the reload");
    }
    /* bob's raw subscriber reconnects and is turned away. */
    int refused = sec_watch_wait(watch, SEC_REFUSED, S_TIMEOUT);
    zmq_close(watch);
    if (refused != 0)
        fail_msg("bob's reconnection was not refused after the reload");
    sec_sub_drain(bob_sub, 200, NULL, NULL, NULL);

    uint64_t after = s_publish(st, 5, "after reload");
    size_t hb = 0;
    got = sec_sub_drain(bob_sub, S_QUIET_MS, &hb, NULL, NULL);
    if (got != 0 || hb != 0)
        fail_msg("bob received %zu updates and %zu heartbeats after removal",
                 got, hb);
    /* bob's library subscriber learns it was refused, and gets nothing */
    ph_sub_collect(bob_lib, &ev, 5, after, 2000);
    assert_int_equal(ev.n, 0);
    assert_int_equal(ev.err, -EACCES);
    ph_events_free(&ev);
    /* bob cannot ask anything either */
    assert_int_equal(
        ph_ping_info(st->daemon.api, st->bob_c, S_TIMEOUT, NULL), -EACCES);
    s_stranger_cannot_publish(st, SEC_CURVE, &st->bob, "removed client");
    /* alice got every update, the ones after the cut included */
    ph_sub_collect(alice_sub, &ev, 5, after, S_TIMEOUT);
    assert_int_equal(ev.n, 5);
    assert_int_equal(ev.d[4].seq, after);
    assert_int_equal(ev.d[0].seq, before + 1);
    ph_events_free(&ev);

    zmq_close(bob_sub);
    st->bob_sub = NULL;
    parley_sub_destroy(&bob_lib);
    parley_sub_destroy(&alice_sub);
}

/* A broken allow-list on reload changes nothing, loudly. */
static void
test_bad_reload_keeps_list(void **state)
{
    s_state_t *st = *state;
    size_t failed = sec_log_count(&st->daemon, "reload FAILED");
    const char *bad = "alice not-a-key\n";
    assert_int_equal(ph_file_write(st->clients, bad, strlen(bad), 0644), 0);
    assert_int_equal(kill(st->daemon.pid, SIGHUP), 0);
    assert_true(sec_log_wait(&st->daemon, "reload FAILED", failed, S_TIMEOUT));
    assert_true(sec_log_count(&st->daemon, "clients.keys:1:") > 0);
    /* alice still gets in, bob still does not */
    s_publish(st, 1, "after a bad reload");
    assert_int_equal(
        ph_ping_info(st->daemon.api, st->bob_c, S_TIMEOUT, NULL), -EACCES);
    assert_int_equal(sec_stat(&st->daemon, st->alice_c, "curve_clients"), 1);
    assert_int_equal(s_write_clients(st, false), 0);
}

/*
 * The cut closes connections whose requests the daemon has read ahead:
 * zmq_poll() on the api ROUTER reads the first frame of a waiting
 * message, and a client may send several frames (a REQ socket adds an
 * empty one; anyone may send more). Unlike a zmq_disconnect() (see
 * parley__zmq_move()), the unbind ends each connection from its own end,
 * and libzmq still hands over what that connection had queued, the rest
 * of a message read ahead included: the daemon must not abort in
 * libzmq's "!_more" assertion, and must still answer afterwards. Each
 * round floods the api with multi-frame messages and cuts while the
 * daemon works through them.
 */
static void
test_cut_with_requests_read_ahead(void **state)
{
    s_state_t *st = *state;
    void *flood = sec_socket(st->ctx, ZMQ_DEALER, SEC_CURVE, &st->alice,
                             st->server.pub);
    assert_non_null(flood);
    int hwm = 0;
    zmq_setsockopt(flood, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    assert_int_equal(zmq_connect(flood, st->daemon.api), 0);
    for (int round = 0; round < 4; round++) {
        size_t reloads = sec_log_count(&st->daemon, "reloaded:");
        assert_int_equal(s_write_clients(st, true), 0);
        assert_int_equal(kill(st->daemon.pid, SIGHUP), 0);
        assert_true(
            sec_log_wait(&st->daemon, "reloaded:", reloads, S_TIMEOUT));
        /* alice's connection is up again (a request answered) */
        assert_int_equal(
            ph_ping_info(st->daemon.api, st->alice_c, S_TIMEOUT, NULL), 0);
        for (int i = 0; i < 3000; i++) {
            zmq_send(flood, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(flood, "not a request", 13, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(flood, "and more", 8, ZMQ_DONTWAIT);
        }
        size_t cuts = sec_log_count(&st->daemon, "closed every connection");
        assert_int_equal(s_write_clients(st, false), 0);
        assert_int_equal(kill(st->daemon.pid, SIGHUP), 0);
        if (!sec_log_wait(&st->daemon, "closed every connection", cuts,
                          S_TIMEOUT)) {
            ph_daemon_dump_log(&st->daemon);
            fail_msg("round %d: no cut after the reload", round);
        }
    }
    zmq_close(flood);
    /* still alive, still answering */
    assert_int_equal(
        ph_ping_info(st->daemon.api, st->alice_c, S_TIMEOUT, NULL), 0);
    s_publish(st, 1, "after the cuts");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_client_works),
        cmocka_unit_test(test_unknown_key_refused),
        cmocka_unit_test(test_null_client_refused),
        cmocka_unit_test(test_plain_client_refused),
        cmocka_unit_test(test_wrong_server_key),
        cmocka_unit_test(test_reload_cuts_removed_client),
        cmocka_unit_test(test_bad_reload_keeps_list),
        cmocka_unit_test(test_cut_with_requests_read_ahead),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
