/*
 * test_publisher.c - what the library publisher does for its caller,
 * against a real parleyd:
 *
 *   - parley_pub_send() never waits: with the daemon down, sends return at
 *     once and wait in the publisher; when the daemon is back they go out
 *     and are acked, each once; with no daemon at all each is answered
 *     PARLEY_ETIMEOUT by parley_pub_recv() after its attempts.
 */
#include "harness.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 20000

typedef struct {
    char dir[PH_PATH_MAX];
    char ring[PH_PATH_MAX];
    ph_key_t key;
    ph_daemon_t daemon;
    bool test_ok;
} s_state_t;

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    char text[1024] = "";
    assert_non_null(st);
    assert_int_equal(ph_tmpdir_make(st->dir, sizeof(st->dir)), 0);
    assert_int_equal(ph_key_make(&st->key, st->dir, "desk", 0x51), 0);
    assert_int_equal(ph_keyring_add(text, sizeof(text), &st->key, "*", "*",
                                    "*"),
                     0);
    ph_path(st->ring, sizeof(st->ring), st->dir, "keyring");
    assert_int_equal(ph_file_write(st->ring, text, strlen(text), 0644), 0);
    assert_int_equal(ph_daemon_start(&st->daemon, st->dir, st->ring, NULL), 0);
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    ph_daemon_teardown(&st->daemon, st->test_ok);
    ph_key_free(&st->key);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

/* Sign a valid update with a fresh signer_seq into env. */
static size_t
s_envelope(s_state_t *st, const char *headline, uint8_t *env)
{
    parley_update_t u;
    size_t len = 0;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 1, headline);
    assert_int_equal(ph_sign(&st->key, &u, env, PARLEY_ENVELOPE_MAX, &len), 0);
    return len;
}

/*
 * With the daemon stopped, parley_pub_send() returns at once (0.1 waited
 * up to 5 s for a connection, then failed with -EAGAIN), keeps the
 * requests, and sends them when the daemon is back.
 */
static void
test_send_waits_for_nothing(void **state)
{
    s_state_t *st = *state;
    enum { N = 100 };
    static uint8_t env[N][PARLEY_ENVELOPE_MAX];
    size_t len[N];
    uint64_t ids[N], seq;
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL,
                                   S_TIMEOUT);
    assert_non_null(pub);
    len[0] = s_envelope(st, "before the stop", env[0]);
    assert_int_equal(parley_pub_send(pub, env[0], len[0], &ids[0]), 0);
    assert_int_equal(parley_pub_recv(pub, S_TIMEOUT, NULL, &seq), 0);

    assert_int_equal(ph_daemon_stop(&st->daemon), 0);
    for (int i = 0; i < N; i++)
        len[i] = s_envelope(st, "sent while the daemon is down", env[i]);
    int64_t t0 = parley__mono_ms();
    for (int i = 0; i < N; i++)
        assert_int_equal(parley_pub_send(pub, env[i], len[i], &ids[i]), 0);
    int64_t took = parley__mono_ms() - t0;
    /* All of them in less than one request timeout: none of them waited
     * for the daemon (each would have waited a whole timeout before). */
    printf("[publisher] %d sends with no daemon took %" PRId64 " ms\n", N,
           took);
    assert_true(took < S_TIMEOUT);
    assert_int_equal(parley_pub_pending(pub), N);
    assert_int_equal(parley_pub_recv(pub, 0, NULL, NULL), -EAGAIN);

    /* The daemon comes back: every queued update is accepted, once. */
    assert_int_equal(ph_daemon_restart(&st->daemon, st->ring, NULL), 0);
    bool got[N] = { false };
    for (int n = 0; n < N; n++) {
        uint64_t id = 0;
        int rc = parley_pub_recv(pub, S_TIMEOUT, &id, &seq);
        if (rc != 0)
            fail_msg("answer %d after the restart: %s (%s)", n,
                     parley_error_name(rc), parley_pub_detail(pub));
        bool known = false;
        for (int i = 0; i < N; i++)
            if (ids[i] == id) {
                assert_false(got[i]);
                got[i] = known = true;
            }
        assert_true(known);
    }
    assert_int_equal(parley_pub_pending(pub), 0);
    ph_stats_t stats;
    assert_int_equal(ph_stats_fetch(st->daemon.api, &stats), 0);
    assert_int_equal(ph_stats_get(&stats, "accepted", NULL), N);
    parley_pub_destroy(&pub);
    st->test_ok = true;
}

/* With no daemon at all, each request is given up on after its attempts,
 * and its answer names it. */
static void
test_send_gives_up(void **state)
{
    s_state_t *st = *state;
    char ep[PH_EP_MAX];
    uint8_t env[PARLEY_ENVELOPE_MAX];
    int port = ph_free_port();
    assert_true(port > 0);
    ph_endpoint(ep, port);
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = ep;
    o.timeout_ms = 200;
    o.attempts = 3;
    parley_pub_t *pub = parley_pub_new(st->key.key, &o);
    assert_non_null(pub);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        size_t len = s_envelope(st, "to nobody", env);
        assert_int_equal(parley_pub_send(pub, env, len, &ids[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        uint64_t id = 0;
        assert_int_equal(parley_pub_recv(pub, 10000, &id, NULL),
                         PARLEY_ETIMEOUT);
        assert_int_equal(id, ids[i]);
        assert_true(strlen(parley_pub_detail(pub)) > 0);
    }
    assert_int_equal(parley_pub_pending(pub), 0);
    parley_pub_destroy(&pub);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_waits_for_nothing),
        cmocka_unit_test(test_send_gives_up),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
