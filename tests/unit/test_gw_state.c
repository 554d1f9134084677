/*
 * test_gw_state.c - parley-gateway's current state (gateway/state.c):
 * cells from a snapshot's entries, plain updates applied live (an
 * expired one leaving its entries without a state), corrections,
 * retractions and gaps asking for a new snapshot instead, the window's
 * updates re-applied over a snapshot, and the JSON grouping.
 * (gw_state_fetch() against a real parleyd: test_gateway_http.)
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
#include "state.h"

#include <jansson.h>

/* seq of the cell (negotiation, phase, party) in the state's JSON, or 0. */
static uint64_t
s_cell(const gw_state_t *st, const char *neg, uint32_t phase, const char *party)
{
    gw_buf_t b = GW_BUF_INIT;
    assert_int_equal(gw_buf_str(&b, "{"), 0);
    assert_int_equal(gw_state_json(st, NULL, &b), 0);
    assert_int_equal(gw_buf_str(&b, "}"), 0);
    json_error_t err;
    json_t *doc = json_loads(b.data, 0, &err);
    if (doc == NULL)
        fail_msg("state JSON: %s: %s", err.text, b.data);
    uint64_t seq = 0;
    size_t i, k;
    json_t *n, *p;
    json_array_foreach(json_object_get(doc, "negotiations"), i, n) {
        if (strcmp(json_string_value(json_object_get(n, "negotiation")), neg) != 0)
            continue;
        json_array_foreach(json_object_get(n, "phases"), k, p) {
            if (json_integer_value(json_object_get(p, "phase")) != phase)
                continue;
            json_t *u = json_object_get(json_object_get(p, "parties"), party);
            if (u != NULL)
                seq = (uint64_t)json_integer_value(json_object_get(u, "seq"));
        }
    }
    json_decref(doc);
    gw_buf_free(&b);
    return seq;
}

/* The cells of a snapshot: cell i is the entry of items[i] for party
 * parties[i] (given in the cells' order), holding items[i]. */
static gw_cell_t *
s_cells(gw_item_t *const *items, const char *const *parties, size_t n)
{
    gw_cell_t *cells = calloc(n, sizeof(*cells));
    assert_non_null(cells);
    for (size_t i = 0; i < n; i++) {
        strcpy(cells[i].negotiation, items[i]->negotiation);
        cells[i].phase = items[i]->phase;
        strcpy(cells[i].party, parties[i]);
        gw_item_ref(items[i]);
        cells[i].it = items[i];
    }
    return cells;
}

/* Install the snapshot cells (items[i], parties[i]) as of as_of. */
static int
s_install(gw_state_t *st, gw_item_t *const *items,
          const char *const *parties, size_t n, uint64_t as_of,
          const gw_window_t *w)
{
    gw_cell_t *cells = s_cells(items, parties, n);
    int rc = gw_state_install(st, &cells, n, as_of, w);
    assert_null(cells);
    return rc;
}

static void
test_snapshot_then_live(void **state)
{
    (void)state;
    gw_window_t *w = gw_window_new(100, 1 << 20);
    gw_state_t *st = gw_state_new();
    gw_window_restart(w, 1);
    gw_item_t *snap[] = { gwt_item(5, "other", "c", 0, PARLEY_KIND_UPDATE),
                          gwt_item(2, "talks", "a,b", 1, PARLEY_KIND_UPDATE),
                          gwt_item(4, "talks", "b", 1, PARLEY_KIND_UPDATE) };
    /* The snapshot's entries say 2 holds a only (4 holds b). */
    const char *entries[] = { "c", "a", "b" };
    /* Nothing is applied before the first snapshot. */
    gw_item_t *early = gwt_item(1, "talks", "a", 1, PARLEY_KIND_UPDATE);
    assert_int_equal(gw_state_apply(st, early), 0);
    assert_false(gw_state_loaded(st));
    assert_int_equal(s_install(st, snap, entries, 3, 5, w), 0);
    assert_true(gw_state_loaded(st));
    assert_int_equal(gw_state_seq(st), 5);
    assert_int_equal(gw_state_cells(st), 3);
    assert_int_equal(s_cell(st, "talks", 1, "a"), 2);
    assert_int_equal(s_cell(st, "talks", 1, "b"), 4);
    assert_int_equal(s_cell(st, "other", 0, "c"), 5);
    /* Live: an update the snapshot covers is ignored; a newer one lands. */
    assert_int_equal(gw_state_apply(st, early), 0);
    assert_int_equal(s_cell(st, "talks", 1, "a"), 2);
    gw_item_t *six = gwt_item(6, "talks", "a,d", 1, PARLEY_KIND_UPDATE);
    assert_int_equal(gw_state_apply(st, six), 0);
    assert_int_equal(s_cell(st, "talks", 1, "a"), 6);
    assert_int_equal(s_cell(st, "talks", 1, "d"), 6);
    assert_int_equal(gw_state_seq(st), 6);
    /* A correction is not applied here: a new snapshot is asked for, and
     * the state is exact only up to the seq before it. */
    gw_item_t *fix = gwt_item(7, "talks", "a", 1, PARLEY_KIND_CORRECTION);
    assert_int_equal(gw_state_apply(st, fix), 1);
    assert_true(gw_state_stale(st));
    assert_int_equal(gw_state_seq(st), 6);
    assert_int_equal(s_cell(st, "talks", 1, "a"), 6);
    gw_item_t *eight = gwt_item(8, "other", "c", 0, PARLEY_KIND_UPDATE);
    assert_int_equal(gw_state_apply(st, eight), 0);
    assert_int_equal(gw_state_seq(st), 6);
    gw_item_unref(early);
    gw_item_unref(six);
    gw_item_unref(fix);
    gw_item_unref(eight);
    for (size_t i = 0; i < 3; i++)
        gw_item_unref(snap[i]);
    gw_state_destroy(&st);
    gw_window_destroy(&w);
}

/* A snapshot made before updates the window already holds: those are
 * applied on top; a correction among them asks for another snapshot. */
static void
test_install_reapplies_the_window(void **state)
{
    (void)state;
    gw_window_t *w = gw_window_new(100, 1 << 20);
    gw_state_t *st = gw_state_new();
    gw_window_restart(w, 1);
    gw_item_t *items[] = { gwt_item(1, "talks", "a", 0, PARLEY_KIND_UPDATE),
                           gwt_item(2, "talks", "a", 0, PARLEY_KIND_UPDATE),
                           gwt_item(3, "talks", "b", 0, PARLEY_KIND_UPDATE),
                           gwt_item(4, "talks", "b", 0, PARLEY_KIND_RETRACTION),
                           gwt_item(5, "talks", "c", 0, PARLEY_KIND_UPDATE) };
    for (size_t i = 0; i < 5; i++)
        gw_window_push(w, items[i]);
    /* The snapshot as of 1 says "a: 1". */
    const char *a[] = { "a" }, *ac[] = { "a", "c" };
    assert_int_equal(s_install(st, items, a, 1, 1, w), 1);
    assert_int_equal(s_cell(st, "talks", 0, "a"), 2);
    assert_int_equal(s_cell(st, "talks", 0, "b"), 3);
    assert_int_equal(s_cell(st, "talks", 0, "c"), 5);
    assert_true(gw_state_stale(st));
    assert_int_equal(gw_state_seq(st), 3);
    /* The snapshot as of 5 (b retracted) makes it exact. */
    gw_item_t *snap[] = { items[1], items[4] };
    assert_int_equal(s_install(st, snap, ac, 2, 5, w), 0);
    assert_false(gw_state_stale(st));
    assert_int_equal(gw_state_seq(st), 5);
    assert_int_equal(s_cell(st, "talks", 0, "b"), 0);
    assert_int_equal(gw_state_cells(st), 2);
    /* Filtered JSON. */
    gw_query_t q;
    gw_query_init(&q, GW_Q_FILTER);
    assert_int_equal(gw_query_arg(&q, "party", "c"), 0);
    gw_buf_t b = GW_BUF_INIT;
    assert_int_equal(gw_state_json(st, &q.filter, &b), 0);
    assert_non_null(strstr(b.data, "\"negotiations\":[{\"negotiation\":\"talks\","
                                   "\"phases\":[{\"phase\":0,\"parties\":{\"c\":{"));
    assert_null(strstr(b.data, "\"a\":"));
    gw_buf_free(&b);
    gw_query_free(&q);
    gw_query_init(&q, GW_Q_FILTER);
    assert_int_equal(gw_query_arg(&q, "party", "nobody"), 0);
    assert_int_equal(gw_state_json(st, &q.filter, &b), 0);
    assert_string_equal(b.data, "\"negotiations\":[]");
    gw_buf_free(&b);
    gw_query_free(&q);
    gw_state_clear(st);
    assert_false(gw_state_loaded(st));
    for (size_t i = 0; i < 5; i++)
        gw_item_unref(items[i]);
    gw_state_destroy(&st);
    gw_window_destroy(&w);
}

static void
test_next_expiry(void **state)
{
    (void)state;
    gw_window_t *w = gw_window_new(10, 1 << 20);
    gw_state_t *st = gw_state_new();
    gw_item_t *a = gwt_item(1, "t", "a", 0, PARLEY_KIND_UPDATE);
    gw_item_t *b = gwt_item(2, "t", "b", 0, PARLEY_KIND_UPDATE);
    gw_item_t *c = gwt_item(3, "t", "c", 0, PARLEY_KIND_UPDATE);
    a->expires_at = 5000;
    b->expires_at = 3000;
    c->expires_at = 1000;
    gw_item_t *snap[] = { a, b, c };
    const char *abc[] = { "a", "b", "c" };
    gw_window_restart(w, 4);
    assert_int_equal(s_install(st, snap, abc, 3, 3, w), 0);
    assert_int_equal(gw_state_next_expiry(st, 0), 1000);
    assert_int_equal(gw_state_next_expiry(st, 1000), 3000);
    assert_int_equal(gw_state_next_expiry(st, 5000), 0);
    gw_item_unref(a);
    gw_item_unref(b);
    gw_item_unref(c);
    gw_state_destroy(&st);
    gw_window_destroy(&w);
}

/* A live update that has expired when it arrives holds nothing: its
 * entries have no state, and nothing older comes back (the model of
 * docs/protocol.md section 5, as libparley's state table applies it). A
 * gap asks for a snapshot, as a correction does. */
static void
test_live_expired_and_gap(void **state)
{
    (void)state;
    gw_window_t *w = gw_window_new(10, 1 << 20);
    gw_state_t *st = gw_state_new();
    gw_item_t *one = gwt_item(1, "t", "a,b", 1, PARLEY_KIND_UPDATE);
    gw_item_t *snap[] = { one, one };
    const char *ab[] = { "a", "b" };
    gw_window_restart(w, 2);
    assert_int_equal(s_install(st, snap, ab, 2, 1, w), 0);
    gw_item_t *gone = gwt_item(2, "t", "b,c", 1, PARLEY_KIND_UPDATE);
    gone->expires_at = parley_now_ms() - 1000;
    assert_int_equal(gw_state_apply(st, gone), 0);
    assert_int_equal(gw_state_cells(st), 1);
    assert_int_equal(s_cell(st, "t", 1, "a"), 1);
    assert_int_equal(s_cell(st, "t", 1, "b"), 0);
    assert_int_equal(gw_state_seq(st), 2);
    /* One that expires later holds its entries until then. */
    gw_item_t *later = gwt_item(3, "t", "b", 1, PARLEY_KIND_UPDATE);
    later->expires_at = parley_now_ms() + 3600000;
    assert_int_equal(gw_state_apply(st, later), 0);
    assert_int_equal(s_cell(st, "t", 1, "b"), 3);
    gw_item_t *gap = gw_item_gap(4, 6);
    assert_non_null(gap);
    assert_int_equal(gw_state_apply(st, gap), 1);
    assert_true(gw_state_stale(st));
    assert_int_equal(gw_state_seq(st), 3);
    /* A gap the snapshot covers is ignored. */
    assert_int_equal(s_install(st, snap, ab, 2, 6, w), 0);
    assert_int_equal(gw_state_apply(st, gap), 0);
    assert_false(gw_state_stale(st));
    gw_item_unref(one);
    gw_item_unref(gone);
    gw_item_unref(later);
    gw_item_unref(gap);
    gw_state_destroy(&st);
    gw_window_destroy(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_then_live),
        cmocka_unit_test(test_install_reapplies_the_window),
        cmocka_unit_test(test_next_expiry),
        cmocka_unit_test(test_live_expired_and_gap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
