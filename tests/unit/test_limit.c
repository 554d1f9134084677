/*
 * test_limit.c - the per-signer token bucket and the per-peer penalty for
 * bad signatures, driven with a fake clock.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "config.h"
#include "limit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void
s_key(uint8_t pk[32], unsigned n)
{
    memset(pk, 0, 32);
    memcpy(pk, &n, sizeof(n));
}

/* Count how many of tries publishes at time t pass. */
static int
s_takes(pd_limit_t *l, const uint8_t pk[32], int64_t t_us, int tries)
{
    int ok = 0;
    for (int i = 0; i < tries; i++)
        ok += pd_limit_signer_take(l, pk, t_us);
    return ok;
}

static void
test_bucket_burst_and_rate(void **state)
{
    (void)state;
    pd_limit_t *l = pd_limit_new(100, 20); /* 100/s, burst 20 */
    assert_non_null(l);
    uint8_t a[32], b[32];
    s_key(a, 1);
    s_key(b, 2);
    int64_t t = 1000000000;
    /* a fresh signer has a full bucket: the burst, then nothing */
    assert_int_equal(s_takes(l, a, t, 25), 20);
    /* another signer is not affected */
    assert_int_equal(s_takes(l, b, t, 20), 20);
    /* 100 ms later: 10 more tokens for a */
    assert_int_equal(s_takes(l, a, t + 100000, 15), 10);
    /* 1 s later the bucket is full again, never above the burst */
    assert_int_equal(s_takes(l, a, t + 1100000, 50), 20);
    /* a steady 100/s over 2 s passes exactly, 200/s passes half */
    int ok = 0;
    int64_t t0 = t + 5000000;
    s_takes(l, a, t0, 20); /* empty the bucket */
    for (int i = 1; i <= 400; i++)
        ok += pd_limit_signer_take(l, a, t0 + i * 5000);
    assert_in_range(ok, 198, 202);
    /* time going backwards (cannot, but) does not mint tokens */
    assert_int_equal(s_takes(l, a, t0, 5), 0);

    pd_limit_stats_t st;
    pd_limit_get_stats(l, &st);
    assert_true(st.signer_limited > 0);
    pd_limit_destroy(&l);
    assert_null(l);
}

static void
test_rate_zero_is_off(void **state)
{
    (void)state;
    pd_limit_t *l = pd_limit_new(0, 1);
    uint8_t a[32];
    s_key(a, 7);
    assert_int_equal(s_takes(l, a, 0, 100000), 100000);
    pd_limit_destroy(&l);
}

/*
 * Ten times more signers than slots: the table is fixed, newcomers reuse
 * the slots used longest ago, and a busy signer keeps its (empty) bucket.
 */
static void
test_many_signers_bounded(void **state)
{
    (void)state;
    pd_limit_t *l = pd_limit_new(1, 5);
    uint8_t hot[32], k[32];
    s_key(hot, 0xffffffffu);
    int64_t t = 1000;
    assert_int_equal(s_takes(l, hot, t, 5), 5);
    for (unsigned i = 0; i < 10 * PD_LIMIT_SIGNERS; i++) {
        s_key(k, i);
        /* newcomers get a full bucket, also after the table filled up */
        assert_true(pd_limit_signer_take(l, k, t + 2 * (int64_t)i));
        /* the busy signer is never the one pushed out: still empty */
        assert_false(pd_limit_signer_take(l, hot, t + 2 * (int64_t)i + 1));
    }
    pd_limit_destroy(&l);
}

static void
test_peer_penalty(void **state)
{
    (void)state;
    pd_limit_t *l = pd_limit_new(1000, 2000);
    const char *peer = "\x00\x6b\x8b\x45\x67", *other = "\x00\x6b\x8b\x45\x68";
    int64_t t = 50000;
    assert_false(pd_limit_peer_blocked(l, peer, 5, t));
    /* bad signatures below the threshold within a second: no penalty */
    for (int i = 0; i < PD_LIMIT_BAD_MAX - 1; i++)
        assert_false(pd_limit_peer_bad(l, peer, 5, t + i));
    assert_false(pd_limit_peer_blocked(l, peer, 5, t + 100));
    /* a second later the count starts again */
    for (int i = 0; i < PD_LIMIT_BAD_MAX - 1; i++)
        assert_false(pd_limit_peer_bad(l, peer, 5, t + 1000 + i));
    /* the threshold within one second starts a cool-down, once */
    assert_true(pd_limit_peer_bad(l, peer, 5, t + 1000 + PD_LIMIT_BAD_MAX));
    int64_t start = t + 1000 + PD_LIMIT_BAD_MAX;
    assert_true(pd_limit_peer_blocked(l, peer, 5, start));
    assert_true(
        pd_limit_peer_blocked(l, peer, 5, start + PD_LIMIT_COOLDOWN_MS - 1));
    assert_false(pd_limit_peer_bad(l, peer, 5, start + 1));
    /* other peers are not affected */
    assert_false(pd_limit_peer_blocked(l, other, 5, start));
    /* over after the cool-down */
    assert_false(
        pd_limit_peer_blocked(l, peer, 5, start + PD_LIMIT_COOLDOWN_MS));
    pd_limit_stats_t st;
    pd_limit_get_stats(l, &st);
    assert_int_equal(st.peers_penalized, 1);
    assert_int_equal(st.peer_limited, 2);
    pd_limit_destroy(&l);
}

/* A flooding peer stays penalized while many quiet peers come and go. */
static void
test_peer_table_bounded(void **state)
{
    (void)state;
    pd_limit_t *l = pd_limit_new(1000, 2000);
    const char bad[] = "bad-peer";
    int64_t t = 1;
    for (int i = 0; i < PD_LIMIT_BAD_MAX; i++)
        pd_limit_peer_bad(l, bad, sizeof(bad), t);
    assert_true(pd_limit_peer_blocked(l, bad, sizeof(bad), t));
    for (unsigned i = 0; i < 4 * PD_LIMIT_PEERS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "p%u", i);
        assert_false(pd_limit_peer_blocked(l, id, strlen(id), t));
        if (i % 16 == 0)
            assert_true(pd_limit_peer_blocked(l, bad, sizeof(bad), t));
    }
    pd_limit_destroy(&l);
}

/* The config keys that feed the limits, and their ranges. */
static void
test_config_keys(void **state)
{
    (void)state;
    pd_config_t cfg;
    char err[256];
    pd_config_defaults(&cfg);
    assert_int_equal(cfg.rate_limit, 1000);
    assert_int_equal(cfg.rate_burst, 2000);
    assert_int_equal(cfg.max_connections, 1024);
    assert_int_equal(cfg.max_subscriptions, 256);
    assert_int_equal(cfg.handshake_timeout, 5000);
    assert_false(cfg.curve);
    const char text[] = "rate_limit 0\nrate_burst 10\nmax_connections 3\n"
                        "max_subscriptions 4\nhandshake_timeout 250\n"
                        "curve on\ncurve_secret_key /k\ncurve_clients /c\n";
    assert_int_equal(
        pd_config_parse(&cfg, text, sizeof(text) - 1, "f", err, sizeof(err)),
        0);
    assert_int_equal(cfg.rate_limit, 0);
    assert_int_equal(cfg.rate_burst, 10);
    assert_int_equal(cfg.max_connections, 3);
    assert_int_equal(cfg.max_subscriptions, 4);
    assert_int_equal(cfg.handshake_timeout, 250);
    assert_true(cfg.curve);
    assert_string_equal(cfg.curve_secret_key, "/k");
    assert_string_equal(cfg.curve_clients, "/c");
    assert_int_equal(pd_config_check(&cfg, err, sizeof(err)), 0);

    assert_int_equal(
        pd_config_set(&cfg, "handshake_timeout", "0", err, sizeof(err)),
        -EINVAL);
    assert_int_equal(
        pd_config_set(&cfg, "max_connections", "0", err, sizeof(err)), -EINVAL);
    assert_int_equal(pd_config_set(&cfg, "rate_burst", "0", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(pd_config_set(&cfg, "curve", "yes", err, sizeof(err)),
                     -EINVAL);

    /* curve on without its files is an error at start, with advice */
    pd_config_defaults(&cfg);
    cfg.curve = true;
    assert_int_equal(pd_config_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "curve_secret_key"));
    strcpy(cfg.curve_secret_key, "/k");
    assert_int_equal(pd_config_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "curve_clients"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_burst_and_rate),
        cmocka_unit_test(test_rate_zero_is_off),
        cmocka_unit_test(test_many_signers_bounded),
        cmocka_unit_test(test_peer_penalty),
        cmocka_unit_test(test_peer_table_bounded),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
