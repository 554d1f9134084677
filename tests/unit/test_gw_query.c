/*
 * test_gw_query.c - parley-gateway's query parameters and filters
 * (gateway/query.c): what is accepted, what is refused and why, and that
 * a filter matches exactly what libparley's filter of the same values
 * matches.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "gw_util.h"
#include "query.h"

#include <errno.h>
#include <string.h>

#define S_ALL (GW_Q_FILTER | GW_Q_SINCE | GW_Q_UNTIL | GW_Q_LIMIT)

static void
test_lists_repeated_or_comma(void **state)
{
    (void)state;
    gw_query_t q;
    gw_query_init(&q, S_ALL);
    assert_int_equal(gw_query_arg(&q, "party", "us,egypt"), 0);
    assert_int_equal(gw_query_arg(&q, "party", "qatar"), 0);
    assert_int_equal(gw_query_arg(&q, "party", "us"), 0); /* counted once */
    assert_int_equal(gw_query_arg(&q, "phase", "0,3"), 0);
    assert_int_equal(gw_query_arg(&q, "negotiation", "gaza-ceasefire"), 0);
    assert_int_equal(gw_query_arg(&q, "since", "12"), 0);
    assert_int_equal(gw_query_arg(&q, "until", "9223372036854775807"), 0);
    assert_int_equal(gw_query_arg(&q, "limit", "1000"), 0);
    assert_int_equal(q.err, 0);
    assert_int_equal(q.filter.n_parties, 3);
    assert_string_equal(q.filter.parties[2], "qatar");
    assert_int_equal(q.filter.n_phases, 2);
    assert_int_equal(q.filter.phases[1], 3);
    assert_true(q.has_since && q.since == 12);
    assert_true(q.has_until && q.until == (uint64_t)INT64_MAX);
    assert_true(q.has_limit && q.limit == 1000);
    gw_query_free(&q);
}

static void
test_refusals_say_why(void **state)
{
    (void)state;
    static const struct {
        unsigned allowed;
        const char *key, *value, *detail;
    } cases[] = {
        { S_ALL, "party", "Hamas", "party: \"Hamas\" is not a slug" },
        { S_ALL, "party", "us,,egypt", "party: empty value" },
        { S_ALL, "party", "", "party: empty value" },
        { S_ALL, "party", NULL, "party: needs a value" },
        { S_ALL, "phase", "256", "phase: \"256\" is not a phase" },
        { S_ALL, "phase", "-1", "phase: \"-1\" is not a phase" },
        { S_ALL, "phase", "0x1", "phase: \"0x1\" is not a phase" },
        { S_ALL, "negotiation", "abcdefghijabcdefghijabcdefghijabcdefghij",
          "negotiation: value longer than 32" },
        { S_ALL, "since", "0", "since: expected a number" },
        { S_ALL, "since", "+5", "since: expected a number" },
        { S_ALL, "until", "9223372036854775808", "until: expected a number" },
        { S_ALL, "limit", "1001", "limit: expected a number 1-1000" },
        { S_ALL, "colour", "red", "unknown parameter \"colour\"" },
        { S_ALL, "", "x", "unknown parameter \"\"" },
        { GW_Q_FILTER, "since", "5", "unknown parameter \"since\"" },
        { GW_Q_FILTER | GW_Q_SINCE, "limit", "5", "unknown parameter \"limit\"" },
        { S_ALL, "bad\x01key", "x", "unknown parameter \"bad?key\"" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_query_t q;
        gw_query_init(&q, cases[i].allowed);
        int rc = gw_query_arg(&q, cases[i].key, cases[i].value);
        if (rc != -EINVAL || q.err != -EINVAL
            || strncmp(q.detail, cases[i].detail, strlen(cases[i].detail)) != 0)
            fail_msg("case %zu: %d \"%s\"", i, rc, q.detail);
        /* After the first error the rest are ignored. */
        size_t n = q.filter.n_parties;
        assert_int_equal(gw_query_arg(&q, "party", "us"), -EINVAL);
        assert_int_equal(q.filter.n_parties, n);
        gw_query_free(&q);
    }
    /* Twice is an error for single values; the 65th value of a list too. */
    gw_query_t q;
    gw_query_init(&q, S_ALL);
    assert_int_equal(gw_query_arg(&q, "since", "1"), 0);
    assert_int_equal(gw_query_arg(&q, "since", "2"), -EINVAL);
    assert_string_equal(q.detail, "since: given twice");
    gw_query_free(&q);
    gw_query_init(&q, S_ALL);
    for (int i = 0; i < GW_FILTER_VALUES_MAX; i++) {
        char v[16];
        snprintf(v, sizeof(v), "p%d", i);
        assert_int_equal(gw_query_arg(&q, "party", v), 0);
    }
    assert_int_equal(gw_query_arg(&q, "party", "one-more"), -EINVAL);
    assert_string_equal(q.detail, "party: more than 64 values");
    gw_query_free(&q);
}

static void
test_last_event_id(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_int_equal(gw_query_last_event_id("12", &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(gw_query_last_event_id("  0 \t", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(gw_query_last_event_id("9223372036854775807", &v), 0);
    static const char *const bad[] = { "", " ", "x", "1 2", "-1", "1e3",
                                       "9223372036854775808",
                                       "000000000000000000001" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gw_query_last_event_id(bad[i], &v) != -EINVAL)
            fail_msg("\"%s\" was taken as %llu", bad[i], (unsigned long long)v);
    assert_int_equal(gw_query_last_event_id(NULL, &v), -EINVAL);
}

/* Filters give the same answers as libparley's filter of the same values. */
static void
test_filter_matches_like_libparley(void **state)
{
    (void)state;
    static const char *const queries[][2] = {
        { "party", "hamas" },         { "party", "us,egypt" },
        { "phase", "2" },             { "phase", "0,1" },
        { "negotiation", "gaza-ceasefire" },
        { "negotiation", "other" },
    };
    static const struct {
        const char *neg, *parties;
        uint32_t phase;
    } updates[] = {
        { "gaza-ceasefire", "israel,hamas", 1 }, { "gaza-ceasefire", "us,egypt,qatar", 0 },
        { "other", "hamas", 2 },                 { "gaza-ceasefire", "qatar", 2 },
    };
    /* Every combination of two parameters. */
    for (size_t a = 0; a < 6; a++) {
        for (size_t b = 0; b < 6; b++) {
            gw_query_t q;
            gw_query_init(&q, GW_Q_FILTER);
            assert_int_equal(gw_query_arg(&q, queries[a][0], queries[a][1]), 0);
            assert_int_equal(gw_query_arg(&q, queries[b][0], queries[b][1]), 0);
            parley_filter_t *pf = NULL;
            assert_int_equal(gw_filter_to_parley(&q.filter, &pf), 0);
            assert_non_null(pf);
            gw_filter_t copy;
            assert_int_equal(gw_filter_copy(&copy, &q.filter), 0);
            for (size_t u = 0; u < sizeof(updates) / sizeof(updates[0]); u++) {
                parley_delivery_t *d = gwt_delivery(u + 1, updates[u].neg,
                                                    updates[u].parties,
                                                    updates[u].phase,
                                                    PARLEY_KIND_UPDATE, "h");
                gw_item_t *it = gw_item_update(d);
                assert_non_null(it);
                int want = parley_filter_match(pf, parley_delivery_update(d));
                if ((int)gw_filter_match(&q.filter, it) != want
                    || (int)gw_filter_match(&copy, it) != want)
                    fail_msg("%s=%s & %s=%s on update %zu: libparley says %d",
                             queries[a][0], queries[a][1], queries[b][0],
                             queries[b][1], u, want);
                gw_item_unref(it);
                parley_delivery_destroy(&d);
            }
            parley_filter_destroy(&pf);
            gw_filter_free(&copy);
            gw_query_free(&q);
        }
    }
    /* An empty filter matches all and has no libparley filter; gaps
     * match every filter. */
    gw_filter_t empty = { 0 };
    parley_filter_t *pf = (parley_filter_t *)&empty;
    assert_int_equal(gw_filter_to_parley(&empty, &pf), 0);
    assert_null(pf);
    gw_item_t *gap = gw_item_gap(1, 5);
    gw_query_t q;
    gw_query_init(&q, GW_Q_FILTER);
    assert_int_equal(gw_query_arg(&q, "party", "nobody"), 0);
    assert_true(gw_filter_match(&q.filter, gap));
    assert_true(gw_filter_match_cell(&q.filter, "x", "nobody", 7));
    assert_false(gw_filter_match_cell(&q.filter, "x", "somebody", 7));
    assert_true(gw_filter_match_cell(NULL, "x", "somebody", 7));
    gw_query_free(&q);
    gw_item_unref(gap);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_repeated_or_comma),
        cmocka_unit_test(test_refusals_say_why),
        cmocka_unit_test(test_last_event_id),
        cmocka_unit_test(test_filter_matches_like_libparley),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
