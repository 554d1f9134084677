/*
 * test_gw_window.c - parley-gateway's window of recent updates
 * (gateway/window.c): positions that outlive eviction, the bounds by
 * count and bytes, what seqs it answers for, and the search by seq.
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
#include "window.h"

static void
test_positions_and_eviction_by_count(void **state)
{
    (void)state;
    gw_window_t *w = gw_window_new(3, 1 << 20);
    assert_non_null(w);
    gw_window_restart(w, 1);
    assert_int_equal(gw_window_covered_from(w), 1);
    assert_int_equal(gw_window_last_seq(w), 0);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        gw_item_t *it = gwt_item(seq, "n", "a", 0, PARLEY_KIND_UPDATE);
        gw_window_push(w, it);
        gw_item_unref(it); /* the window keeps its own reference */
    }
    assert_int_equal(gw_window_first_pos(w), 2);
    assert_int_equal(gw_window_end_pos(w), 5);
    assert_int_equal(gw_window_count(w), 3);
    assert_null(gw_window_at(w, 1));
    assert_int_equal(gw_window_at(w, 2)->seq, 3);
    assert_int_equal(gw_window_at(w, 4)->seq, 5);
    assert_null(gw_window_at(w, 5));
    /* Seqs 1 and 2 went with their items. */
    assert_int_equal(gw_window_covered_from(w), 3);
    assert_int_equal(gw_window_last_seq(w), 5);
    /* A refused delivery moves the last seq, not the items. */
    gw_window_skip(w, 6);
    assert_int_equal(gw_window_last_seq(w), 6);
    assert_int_equal(gw_window_count(w), 3);
    gw_window_destroy(&w);
    assert_null(w);
}

static void
test_eviction_by_bytes_keeps_the_newest(void **state)
{
    (void)state;
    gw_item_t *it = gwt_item(1, "n", "a", 0, PARLEY_KIND_UPDATE);
    size_t one = gw_item_bytes(it);
    gw_item_unref(it);
    gw_window_t *w = gw_window_new(100, 2 * one + one / 2);
    gw_window_restart(w, 1);
    for (uint64_t seq = 1; seq <= 4; seq++) {
        it = gwt_item(seq, "n", "a", 0, PARLEY_KIND_UPDATE);
        gw_window_push(w, it);
        gw_item_unref(it);
        assert_true(gw_window_bytes(w) <= 2 * one + one / 2);
    }
    assert_int_equal(gw_window_count(w), 2);
    assert_int_equal(gw_window_covered_from(w), 3);
    gw_window_destroy(&w);
    /* An item larger than the whole budget is still kept, alone. */
    w = gw_window_new(100, 1);
    gw_window_restart(w, 1);
    it = gwt_item(1, "n", "a", 0, PARLEY_KIND_UPDATE);
    gw_window_push(w, it);
    gw_item_unref(it);
    assert_int_equal(gw_window_count(w), 1);
    gw_window_destroy(&w);
}

static void
test_pos_after_with_gaps_and_holes(void **state)
{
    (void)state;
    gw_window_t *w = gw_window_new(10, 1 << 20);
    gw_window_restart(w, 10);
    /* 10, a gap 11-20, 21, (22 refused), 23 */
    gw_item_t *its[] = { gwt_item(10, "n", "a", 0, PARLEY_KIND_UPDATE),
                         gw_item_gap(11, 20),
                         gwt_item(21, "n", "a", 0, PARLEY_KIND_UPDATE),
                         gwt_item(23, "n", "a", 0, PARLEY_KIND_UPDATE) };
    for (size_t i = 0; i < 4; i++) {
        gw_window_push(w, its[i]);
        if (i == 2)
            gw_window_skip(w, 22);
        gw_item_unref(its[i]);
    }
    static const struct {
        uint64_t after, pos;
    } want[] = { { 0, 0 },  { 9, 0 },  { 10, 1 }, { 11, 1 }, { 19, 1 },
                 { 20, 2 }, { 21, 3 }, { 22, 3 }, { 23, 4 }, { 99, 4 } };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (gw_window_pos_after(w, want[i].after) != want[i].pos)
            fail_msg("after %llu: pos %llu, expected %llu",
                     (unsigned long long)want[i].after,
                     (unsigned long long)gw_window_pos_after(w, want[i].after),
                     (unsigned long long)want[i].pos);
    /* Restarting for another log: empty, answering from the new start,
     * positions going on. */
    gw_window_restart(w, 1);
    assert_int_equal(gw_window_count(w), 0);
    assert_int_equal(gw_window_first_pos(w), 4);
    assert_int_equal(gw_window_end_pos(w), 4);
    assert_int_equal(gw_window_covered_from(w), 1);
    assert_int_equal(gw_window_last_seq(w), 0);
    gw_window_destroy(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions_and_eviction_by_count),
        cmocka_unit_test(test_eviction_by_bytes_keeps_the_newest),
        cmocka_unit_test(test_pos_after_with_gaps_and_holes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
