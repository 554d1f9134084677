/*
 * test_stats.c - the counter registry: live counters and getters are read
 * at every collect, in the documented order, under their names; what
 * nothing reports is left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stats.h"

static uint64_t
s_twice(const void *ctx)
{
    return 2 * *(const uint64_t *)ctx;
}

static void
test_registry(void **state)
{
    (void)state;
    pd_stats_t *st = pd_stats_new();
    assert_non_null(st);
    parley__stat_t v[PD_STAT_COUNT];
    /* Only uptime is there before anyone reports. */
    assert_int_equal(pd_stats_collect(st, v), 1);
    assert_string_equal(v[0].name, "uptime_seconds");

    uint64_t received = 0, bad_sig = 0, stale = 0, seq = 21;
    pd_stats_getter(st, PD_STAT_SEQ, s_twice, &seq);
    pd_stats_counter(st, PD_STAT_RECEIVED, &received);
    pd_stats_counter(st, (pd_stat_t)(PD_STAT_REJECTED - 1001 - PARLEY_EBADSIG),
                     &bad_sig);
    pd_stats_counter(st, (pd_stat_t)(PD_STAT_REJECTED - 1001 - PARLEY_ESTALE),
                     &stale);
    received = 5;
    bad_sig = 3;
    stale = 4;
    /* Live: the values now, in id order whatever the order of reports. */
    size_t n = pd_stats_collect(st, v);
    assert_int_equal(n, 5);
    assert_string_equal(v[0].name, "received");
    assert_int_equal(v[0].value, 5);
    assert_string_equal(v[1].name, "rejected_bad_signature");
    assert_int_equal(v[1].value, 3);
    assert_string_equal(v[2].name, "rejected_stale");
    assert_string_equal(v[3].name, "seq");
    assert_int_equal(v[3].value, 42);
    assert_string_equal(v[4].name, "uptime_seconds");
    assert_int_equal(pd_stats_rejected(st), 7);
    assert_int_equal(pd_stats_get(st, PD_STAT_SEQ), 42);
    assert_int_equal(pd_stats_get(st, PD_STAT_ACCEPTED), 0);
    /* A second report of an id replaces the first. */
    pd_stats_counter(st, PD_STAT_SEQ, &received);
    assert_int_equal(pd_stats_get(st, PD_STAT_SEQ), 5);
    /* Every id has a name, and the last ones are the documented last. */
    for (int i = 0; i < PD_STAT_COUNT; i++)
        assert_true(pd_stats_name(st, (pd_stat_t)i)[0] != '\0');
    assert_string_equal(pd_stats_name(st, PD_STAT_TURN_REQUESTS_MAX),
                        "turn_requests_max");
    assert_string_equal(pd_stats_name(st, PD_STAT_CLUSTER_RECONNECTS),
                        "cluster_reconnects");
    assert_string_equal(pd_stats_name(st, PD_STAT_SUBSCRIPTIONS),
                        "subscriptions");
    assert_string_equal(pd_stats_name(st, PD_STAT_REJECTED),
                        "rejected_too_large");
    pd_stats_destroy(&st);
    assert_null(st);
    pd_stats_destroy(&st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
