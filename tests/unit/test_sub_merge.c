/*
 * test_sub_merge.c - the reliable subscription's bookkeeping, message by
 * message: what is handed out, in which order, and when a replay is asked
 * for. The merge never looks inside the bytes, so items carry short tags.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "wire.h"

/* Feed a live delivery whose bytes are "d<seq>". */
static void
s_live(parley__merge_t *m, uint64_t seq)
{
    char tag[32];
    int n = snprintf(tag, sizeof(tag), "d%llu", (unsigned long long)seq);
    assert_int_equal(parley__merge_live(m, seq, tag, (size_t)n), 0);
}

/* Build page/snapshot items from a list of seqs (bytes "r<seq>"). */
typedef struct {
    parley__merge_item_t items[16];
    char tags[16][32];
    size_t n;
} s_items_t;

static void
s_items(s_items_t *it, size_t n, const uint64_t *seqs)
{
    it->n = n;
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(it->tags[i], sizeof(it->tags[i]), "r%llu",
                           (unsigned long long)seqs[i]);
        it->items[i] = (parley__merge_item_t){ seqs[i],
                                               (uint8_t *)it->tags[i],
                                               (size_t)len };
    }
}

/* Expect the next output to be the item seq with bytes tag. */
static void
s_expect_item(parley__merge_t *m, uint64_t seq, const char *tag)
{
    parley__merge_out_t out;
    assert_int_equal(parley__merge_next(m, &out), 1);
    assert_int_equal(out.item.seq, seq);
    if (tag != NULL) {
        assert_int_equal(out.item.len, strlen(tag));
        assert_memory_equal(out.item.data, tag, out.item.len);
    }
    free(out.item.data);
}

static void
s_expect_gap(parley__merge_t *m, uint64_t from, uint64_t to)
{
    parley__merge_out_t out;
    assert_int_equal(parley__merge_next(m, &out), 2);
    assert_int_equal(out.gap_from, from);
    assert_int_equal(out.gap_to, to);
}

static void
s_expect_nothing(parley__merge_t *m)
{
    parley__merge_out_t out;
    assert_int_equal(parley__merge_next(m, &out), 0);
}

static void
s_expect_replay(parley__merge_t *m, uint64_t from)
{
    uint64_t got = 0;
    assert_int_equal(parley__merge_want_replay(m, &got), 1);
    assert_int_equal(got, from);
}

static void
s_expect_no_replay(parley__merge_t *m)
{
    uint64_t got = 0;
    assert_int_equal(parley__merge_want_replay(m, &got), 0);
}

/* Live start: contiguous feed deliveries flow without any replay, each
 * once although the feed repeats it per topic; older ones are dropped. */
static void
test_live_contiguous(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    s_live(&m, 9); /* arrived before the first heartbeat */
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 10);
    s_live(&m, 11);
    s_live(&m, 11);
    s_live(&m, 12);
    s_live(&m, 10);
    s_expect_no_replay(&m);
    s_expect_item(&m, 11, "d11");
    s_expect_item(&m, 12, "d12");
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    s_live(&m, 12);
    s_expect_nothing(&m);
    assert_int_equal(parley__merge_last_seq(&m), 12);
    parley__merge_clear(&m);
}

/* A seq jump on the feed holds the later delivery back until a replay
 * has filled the hole; the replayed delivery comes first. */
static void
test_hole_replayed(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t page;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 10);
    s_live(&m, 13);
    s_expect_nothing(&m);
    s_expect_replay(&m, 11);
    s_items(&page, 2, (uint64_t[]){ 12, 13 });
    assert_int_equal(parley__merge_page(&m, 11, 14, true, page.items, page.n), 0);
    s_expect_item(&m, 12, "r12");
    s_expect_item(&m, 13, "r13");
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    assert_int_equal(parley__merge_last_seq(&m), 13);
    parley__merge_clear(&m);
}

/* With a filter, a heartbeat beyond what was seen is settled by a replay
 * that returns nothing: the seqs are covered, nothing is handed out, and
 * the next matching delivery flows without another replay. */
static void
test_heartbeat_covers_filtered(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 10);
    parley__merge_heartbeat(&m, 10);
    s_expect_no_replay(&m);
    parley__merge_heartbeat(&m, 15);
    s_expect_replay(&m, 11);
    assert_int_equal(parley__merge_page(&m, 11, 16, true, NULL, 0), 0);
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    assert_int_equal(parley__merge_last_seq(&m), 15);
    s_live(&m, 16);
    s_expect_item(&m, 16, "d16");
    s_expect_no_replay(&m);
    parley__merge_clear(&m);
}

/* Pending contiguous deliveries are handed out before the heartbeat that
 * follows them can ask for a replay. */
static void
test_heartbeat_after_pending(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 10);
    s_live(&m, 11);
    s_live(&m, 12);
    parley__merge_heartbeat(&m, 12);
    s_expect_no_replay(&m);
    s_expect_item(&m, 11, NULL);
    s_expect_no_replay(&m);
    s_expect_item(&m, 12, NULL);
    s_expect_no_replay(&m);
    parley__merge_clear(&m);
}

/* The page is authoritative for its range: a feed delivery there that the
 * filtered replay lacks is not handed out. */
static void
test_page_replaces_range(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t page;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 10);
    s_live(&m, 12);
    s_live(&m, 20);
    s_expect_replay(&m, 11);
    s_items(&page, 1, (uint64_t[]){ 14 });
    assert_int_equal(parley__merge_page(&m, 11, 16, true, page.items, page.n), 0);
    s_expect_item(&m, 14, "r14");
    s_expect_nothing(&m);
    /* 20 is past the page: 16..19 still unaccounted for */
    s_expect_replay(&m, 16);
    assert_int_equal(parley__merge_page(&m, 16, 21, true, NULL, 0), 0);
    s_expect_nothing(&m); /* 20 was not in the filtered replay */
    parley__merge_clear(&m);
}

/* A SEQ start replays in pages; the next page is asked for only once the
 * previous one has been handed out, and live deliveries join after. */
static void
test_seq_start_paged(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t page;
    parley__merge_init(&m, 0);
    s_live(&m, 3);
    s_live(&m, 21);
    parley__merge_start(&m, PARLEY_START_SEQ, 5, 20);
    s_expect_nothing(&m);
    s_expect_replay(&m, 5);
    s_items(&page, 2, (uint64_t[]){ 5, 7 });
    assert_int_equal(parley__merge_page(&m, 5, 9, false, page.items, page.n), 0);
    s_expect_no_replay(&m);
    s_expect_item(&m, 5, "r5");
    s_expect_no_replay(&m);
    s_expect_item(&m, 7, "r7");
    s_expect_nothing(&m);
    s_expect_replay(&m, 9);
    s_items(&page, 1, (uint64_t[]){ 20 });
    assert_int_equal(parley__merge_page(&m, 9, 21, true, page.items, page.n), 0);
    s_expect_item(&m, 20, "r20");
    s_expect_item(&m, 21, "d21");
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    parley__merge_clear(&m);
}

/* With read-ahead, the next page of a replay is due while fewer than
 * `ahead` items of the last one are left to hand out; it speaks for the
 * seqs after the last one confirmed, and everything still comes out once,
 * in order. Once the replay is done, nothing more is asked early. */
static void
test_seq_start_read_ahead(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t page;
    parley__merge_init(&m, 0);
    m.ahead = 2;
    parley__merge_start(&m, PARLEY_START_SEQ, 1, 30);
    s_expect_replay(&m, 1);
    s_items(&page, 3, (uint64_t[]){ 1, 2, 4 });
    assert_int_equal(parley__merge_page(&m, 1, 6, false, page.items, page.n), 0);
    s_expect_no_replay(&m);       /* 3 left */
    s_expect_item(&m, 1, "r1");
    s_expect_no_replay(&m);       /* 2 left */
    s_expect_item(&m, 2, "r2");
    s_expect_replay(&m, 6);       /* 1 left: the next page is due */
    s_items(&page, 2, (uint64_t[]){ 6, 7 });
    assert_int_equal(parley__merge_page(&m, 6, 31, true, page.items, page.n), 0);
    s_expect_item(&m, 4, "r4");
    s_expect_item(&m, 6, "r6");
    s_expect_no_replay(&m);       /* done: not replaying any more */
    s_expect_item(&m, 7, "r7");
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    parley__merge_clear(&m);
}

/* SEQ start at 0 means from the beginning. */
static void
test_seq_start_zero(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_SEQ, 0, 4);
    s_expect_replay(&m, 1);
    parley__merge_clear(&m);
}

/* Live deliveries that arrive contiguously while a replay is out are
 * handed out at once; the replay's copies of them are not repeated. */
static void
test_live_during_replay(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t page;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 10);
    s_live(&m, 12);
    s_expect_replay(&m, 11);
    s_live(&m, 11); /* late, but in order on the feed after all */
    s_expect_item(&m, 11, "d11");
    s_expect_item(&m, 12, "d12");
    s_items(&page, 2, (uint64_t[]){ 11, 12 });
    assert_int_equal(parley__merge_page(&m, 11, 13, true, page.items, page.n), 0);
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    parley__merge_clear(&m);
}

/* TRUNCATED: the lost range is reported once as a gap, then the replay
 * continues where the daemon's log begins. */
static void
test_truncated_gap(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t page;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_SEQ, 1, 10);
    s_expect_replay(&m, 1);
    assert_int_equal(parley__merge_truncated(&m, 1, 6), 0);
    s_expect_no_replay(&m);
    s_expect_gap(&m, 1, 5);
    s_expect_nothing(&m);
    s_expect_replay(&m, 6);
    s_items(&page, 2, (uint64_t[]){ 6, 8 });
    assert_int_equal(parley__merge_page(&m, 6, 11, true, page.items, page.n), 0);
    s_expect_item(&m, 6, NULL);
    s_expect_item(&m, 8, NULL);
    s_expect_nothing(&m);
    assert_int_equal(parley__merge_last_seq(&m), 10);
    parley__merge_clear(&m);
}

/* A delivery the feed brought inside a truncated range is still handed
 * out, in order, between two gaps. */
static void
test_truncated_around_held(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_SEQ, 1, 10);
    s_live(&m, 3);
    s_expect_replay(&m, 1);
    assert_int_equal(parley__merge_truncated(&m, 1, 6), 0);
    s_expect_gap(&m, 1, 2);
    s_expect_item(&m, 3, "d3");
    s_expect_gap(&m, 4, 5);
    s_expect_nothing(&m);
    s_expect_replay(&m, 6);
    parley__merge_clear(&m);
}

/* TRUNCATED with first_seq 0: the daemon holds nothing, all up to its
 * head is gone and no more replay is asked for. */
static void
test_truncated_empty_log(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_SEQ, 1, 7);
    s_expect_replay(&m, 1);
    assert_int_equal(parley__merge_truncated(&m, 1, 0), 0);
    s_expect_gap(&m, 1, 7);
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    parley__merge_clear(&m);
}

/* LAST: nothing is handed out before the snapshot; feed deliveries it
 * covers are dropped (they may be superseded); later ones follow. */
static void
test_last_snapshot(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t snap;
    parley__merge_init(&m, 0);
    s_live(&m, 3);
    parley__merge_start(&m, PARLEY_START_LAST, 0, 5);
    s_live(&m, 5);
    s_live(&m, 6);
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    s_items(&snap, 2, (uint64_t[]){ 2, 4 });
    assert_int_equal(parley__merge_snapshot(&m, 5, snap.items, snap.n), 0);
    s_expect_item(&m, 2, "r2");
    s_expect_item(&m, 4, "r4");
    s_expect_item(&m, 6, "d6");
    s_expect_nothing(&m);
    s_expect_no_replay(&m);
    parley__merge_clear(&m);
}

/* LAST: a hole between the snapshot's seq and the first live delivery is
 * replayed. */
static void
test_last_then_hole(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_LAST, 0, 5);
    s_live(&m, 8);
    assert_int_equal(parley__merge_snapshot(&m, 5, NULL, 0), 0);
    s_expect_nothing(&m);
    s_expect_replay(&m, 6);
    parley__merge_clear(&m);
}

/* A full hold buffer keeps the lowest seqs; a dropped delivery is asked
 * for again by the replay the hole triggers. */
static void
test_overflow_keeps_lowest(void **state)
{
    (void)state;
    parley__merge_t m;
    s_items_t page;
    parley__merge_init(&m, 3);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 0);
    s_live(&m, 2);
    s_live(&m, 3);
    s_live(&m, 5);
    assert_int_equal(parley__merge_full(&m), 1);
    s_live(&m, 6); /* above everything held: dropped */
    s_live(&m, 4); /* below the top: 5 makes room */
    assert_int_equal(m.n, 3);
    assert_int_equal(m.items[2].seq, 4);
    s_expect_replay(&m, 1);
    s_items(&page, 5, (uint64_t[]){ 1, 2, 3, 5, 6 });
    assert_int_equal(parley__merge_page(&m, 1, 7, true, page.items, page.n), 0);
    s_expect_item(&m, 1, "r1");
    s_expect_item(&m, 2, "r2");
    s_expect_item(&m, 3, "r3");
    s_expect_item(&m, 5, "r5");
    s_expect_item(&m, 6, "r6");
    s_expect_nothing(&m);
    parley__merge_clear(&m);
}

/* Answers that make no sense are refused instead of looping. */
static void
test_protocol_errors(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_SEQ, 5, 10);
    assert_int_equal(parley__merge_page(&m, 5, 5, false, NULL, 0),
                     PARLEY_EPROTO);
    assert_int_equal(parley__merge_page(&m, 5, 4, true, NULL, 0),
                     PARLEY_EPROTO);
    assert_int_equal(parley__merge_truncated(&m, 5, 5), PARLEY_EPROTO);
    assert_int_equal(parley__merge_truncated(&m, 5, 3), PARLEY_EPROTO);
    parley__merge_clear(&m);
}

/* A daemon that came back with a different log is followed from the
 * rebase point with a replay. */
static void
test_rebase(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 0);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 100);
    s_live(&m, 105);
    parley__merge_rebase(&m, 0);
    assert_int_equal(m.n, 0);
    s_expect_replay(&m, 1);
    assert_int_equal(parley__merge_last_seq(&m), 0);
    parley__merge_clear(&m);
}

/* --------------------------------------------------------- feed endpoint */

static void
s_expect_endpoint(const char *adv, const char *api, const char *want)
{
    char out[256];
    assert_int_equal(parley__feed_endpoint(adv, api, out, sizeof(out)), 0);
    assert_string_equal(out, want);
}

static void
test_feed_endpoint(void **state)
{
    (void)state;
    char small[12];
    s_expect_endpoint("tcp://0.0.0.0:7711", "tcp://10.0.0.5:7710",
                      "tcp://10.0.0.5:7711");
    s_expect_endpoint("tcp://*:7711", "tcp://parley.example.org:7710",
                      "tcp://parley.example.org:7711");
    s_expect_endpoint("tcp://[::]:7711", "tcp://[::1]:7710",
                      "tcp://[::1]:7711");
    s_expect_endpoint("tcp://0.0.0.0:7711", "tcp://[fe80::1]:7710",
                      "tcp://[fe80::1]:7711");
    s_expect_endpoint("tcp://192.0.2.7:7711", "tcp://127.0.0.1:7710",
                      "tcp://192.0.2.7:7711");
    s_expect_endpoint("ipc:///run/parley/feed", "tcp://127.0.0.1:7710",
                      "ipc:///run/parley/feed");
    /* nothing better to offer than what was advertised */
    s_expect_endpoint("tcp://*:7711", "ipc:///run/parley/api",
                      "tcp://*:7711");
    assert_int_equal(parley__feed_endpoint("tcp://0.0.0.0:7711",
                                           "tcp://10.0.0.5:7710", small,
                                           sizeof(small)),
                     -ENAMETOOLONG);
    assert_int_equal(parley__feed_endpoint("", "tcp://10.0.0.5:7710", small,
                                           sizeof(small)),
                     PARLEY_EPROTO);
}

/*
 * Handing out from the front leaves room before the held items (taken in
 * O(1), not by moving the rest): a long stream of deliveries fed and
 * handed out in turns keeps its order and its allocation bounded, and an
 * item inserted between held ones after some were handed out (a replay
 * page filling a hole) lands in its place.
 */
static void
test_front_room_reused(void **state)
{
    (void)state;
    parley__merge_t m;
    parley__merge_init(&m, 64);
    parley__merge_start(&m, PARLEY_START_LIVE, 0, 0);
    uint64_t seq = 1, out_seq = 1;
    for (int round = 0; round < 500; round++) {
        /* feed up to 3, hand out 2: the held count stays at the limit */
        for (int i = 0; i < 3 && m.n < m.limit; i++)
            s_live(&m, seq++);
        for (int i = 0; i < 2 && m.n > 0; i++) {
            char tag[32];
            snprintf(tag, sizeof(tag), "d%llu", (unsigned long long)out_seq);
            s_expect_item(&m, out_seq++, tag);
        }
        assert_true(m.n <= m.limit);
        assert_true(m.items + m.alloc <= m.base + 256);
    }
    while (m.n > 0) {
        char tag[32];
        snprintf(tag, sizeof(tag), "d%llu", (unsigned long long)out_seq);
        s_expect_item(&m, out_seq++, tag);
    }
    assert_int_equal(out_seq, seq);
    assert_ptr_equal(m.items, m.base); /* empty: back at the start */

    /* A hole among held items after some went out: the page fills it. */
    s_live(&m, seq);
    s_live(&m, seq + 1);
    s_live(&m, seq + 3);
    s_live(&m, seq + 4);
    s_expect_item(&m, seq, NULL);
    s_expect_item(&m, seq + 1, NULL);
    s_expect_nothing(&m);
    s_expect_replay(&m, seq + 2);
    uint64_t page_seqs[] = { seq + 2 };
    s_items_t page;
    s_items(&page, 1, page_seqs);
    assert_int_equal(parley__merge_page(&m, seq + 2, seq + 3, true,
                                        page.items, page.n),
                     0);
    char tag[32];
    snprintf(tag, sizeof(tag), "r%llu", (unsigned long long)(seq + 2));
    s_expect_item(&m, seq + 2, tag);
    s_expect_item(&m, seq + 3, NULL);
    s_expect_item(&m, seq + 4, NULL);
    s_expect_nothing(&m);
    parley__merge_clear(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_contiguous),
        cmocka_unit_test(test_hole_replayed),
        cmocka_unit_test(test_heartbeat_covers_filtered),
        cmocka_unit_test(test_heartbeat_after_pending),
        cmocka_unit_test(test_page_replaces_range),
        cmocka_unit_test(test_seq_start_paged),
        cmocka_unit_test(test_seq_start_zero),
        cmocka_unit_test(test_live_during_replay),
        cmocka_unit_test(test_truncated_gap),
        cmocka_unit_test(test_truncated_around_held),
        cmocka_unit_test(test_truncated_empty_log),
        cmocka_unit_test(test_last_snapshot),
        cmocka_unit_test(test_last_then_hole),
        cmocka_unit_test(test_overflow_keeps_lowest),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_rebase),
        cmocka_unit_test(test_seq_start_read_ahead),
        cmocka_unit_test(test_feed_endpoint),
        cmocka_unit_test(test_front_room_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
