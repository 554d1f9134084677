/*
 * test_preverify.c - deliveries verified ahead on worker threads and on
 * the caller's own (client/preverify.c): every result taken is the one
 * parley_delivery_decode() gives on the spot for the very same bytes,
 * forgeries included, whichever thread computed it; every delivery
 * offered is verified once; what was not offered, or is offered under
 * the same seq with other bytes, is left to the caller.
 *
 * The deliveries are real: updates signed with the fixture's key and
 * wrapped as the feed carries them (delivery_fixture.h).
 */
#include "delivery_fixture.h"
#include "preverify.h"
#include "types.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_N 300             /* deliveries of the stream */
#define S_BUF (PARLEY_ENVELOPE_MAX + 64)

/* The stream: merge items of seqs 1..S_N; some forged. */
typedef struct {
    parley__merge_item_t items[S_N];
    uint8_t bytes[S_N][S_BUF];
} s_stream_t;

/* Is seq one whose signature the stream spoils? */
static bool
s_forged(uint64_t seq)
{
    return seq % 37 == 5;
}

static s_stream_t *
s_stream(void)
{
    s_stream_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    for (size_t i = 0; i < S_N; i++) {
        uint64_t seq = i + 1;
        size_t len = 0;
        /* Deliveries of different sizes in turn: a result moved into a
         * delivery that held a longer one must show only its own. */
        fx_update_t f = { .phase = (uint32_t)(seq % 5) };
        if (seq % 3 == 0) {
            f.parties = "hamas,israel,egypt";
            f.headline = "A longer headline than the others have";
            f.body = "Talks resumed in Cairo with both delegations present.";
            f.ref = seq - 1;
            f.kind = PARLEY_KIND_CORRECTION;
        }
        assert_int_equal(fx_delivery_bytes(seq, &f, st->bytes[i], S_BUF, &len),
                         0);
        if (s_forged(seq))
            st->bytes[i][len - 3] ^= 0x01; /* in the envelope's tail */
        st->items[i] = (parley__merge_item_t){ seq, st->bytes[i], len };
    }
    return st;
}

/* Do a and b show the same through every getter? */
static void
s_same_delivery(const parley_delivery_t *a, const parley_delivery_t *b)
{
    assert_int_equal(parley_delivery_seq(a), parley_delivery_seq(b));
    assert_int_equal(parley_delivery_received_at(a),
                     parley_delivery_received_at(b));
    assert_memory_equal(parley_delivery_signer(a), parley_delivery_signer(b),
                        PARLEY_PUBLICKEY_BYTES);
    assert_string_equal(parley_delivery_signer_id(a),
                        parley_delivery_signer_id(b));
    assert_string_equal(parley_delivery_signer_name(a),
                        parley_delivery_signer_name(b));
    size_t la = 0, lb = 0;
    const void *ea = parley_delivery_envelope(a, &la);
    const void *eb = parley_delivery_envelope(b, &lb);
    assert_int_equal(la, lb);
    if (la > 0)
        assert_memory_equal(ea, eb, la);
    const parley_update_t *ua = parley_delivery_update(a);
    const parley_update_t *ub = parley_delivery_update(b);
    assert_string_equal(parley_update_negotiation(ua),
                        parley_update_negotiation(ub));
    assert_int_equal(parley_update_party_count(ua),
                     parley_update_party_count(ub));
    for (size_t i = 0; i < parley_update_party_count(ua); i++)
        assert_string_equal(parley_update_party(ua, i),
                            parley_update_party(ub, i));
    assert_int_equal(parley_update_phase(ua), parley_update_phase(ub));
    assert_int_equal(parley_update_status(ua), parley_update_status(ub));
    assert_int_equal(parley_update_kind(ua), parley_update_kind(ub));
    assert_int_equal(parley_update_reference_count(ua),
                     parley_update_reference_count(ub));
    for (size_t i = 0; i < parley_update_reference_count(ua); i++)
        assert_int_equal(parley_update_reference(ua, i),
                         parley_update_reference(ub, i));
    assert_string_equal(parley_update_headline(ua),
                        parley_update_headline(ub));
    assert_string_equal(parley_update_body(ua), parley_update_body(ub));
    assert_string_equal(parley_update_location(ua),
                        parley_update_location(ub));
    assert_int_equal(parley_update_scheduled_at(ua),
                     parley_update_scheduled_at(ub));
    assert_int_equal(parley_update_issued_at(ua), parley_update_issued_at(ub));
    assert_int_equal(parley_update_expires_at(ua),
                     parley_update_expires_at(ub));
    assert_int_equal(parley_update_signer_seq(ua),
                     parley_update_signer_seq(ub));
}

/* What the caller's thread would have decoded on the spot. */
static void
s_check_same(const parley__merge_item_t *it, const parley_delivery_t *got,
             int got_rc)
{
    parley_delivery_t *want = parley_delivery_new();
    assert_non_null(want);
    int rc = parley_delivery_decode(NULL, it->data, it->len, want);
    assert_int_equal(got_rc, rc);
    if (rc == 0) {
        s_same_delivery(want, got);
        assert_int_equal(parley_delivery_seq(got), it->seq);
        assert_int_equal(parley_update_signer_seq(parley_delivery_update(got)),
                         1000 + it->seq);
        assert_int_equal(parley_update_phase(parley_delivery_update(got)),
                         it->seq % 5);
    }
    parley_delivery_destroy(&want);
}

/* A stream, an object verifying ahead with threads, a delivery to take
 * results into. */
typedef struct {
    s_stream_t *st;
    parley__preverify_t *pv;
    parley_delivery_t *d;
} s_fix_t;

static s_fix_t
s_open(unsigned threads)
{
    s_fix_t f = { .st = s_stream() };
    int err = 0;
    f.pv = parley__preverify_new(NULL, threads, &err);
    assert_non_null(f.pv);
    f.d = parley_delivery_new();
    assert_non_null(f.d);
    return f;
}

static void
s_close(s_fix_t *f)
{
    parley_delivery_destroy(&f->d);
    parley__preverify_destroy(&f->pv);
    assert_null(f->pv);
    free(f->st);
}

/* Take the result of it's seq for these bytes; one taken must be the
 * on-the-spot result. Returns what parley__preverify_take() did. */
static int
s_take(s_fix_t *f, uint64_t seq, const uint8_t *data, size_t len)
{
    int rc = 0;
    int got = parley__preverify_take(f->pv, seq, data, len, f->d, &rc);
    if (got == 1) {
        parley__merge_item_t it = { seq, (uint8_t *)data, len };
        s_check_same(&it, f->d, rc);
    }
    return got;
}

/* s_take() of the stream's delivery of seq. */
static int
s_take_seq(s_fix_t *f, uint64_t seq)
{
    const parley__merge_item_t *it = &f->st->items[seq - 1];
    return s_take(f, seq, it->data, it->len);
}

/*
 * Hand the stream out as sub.c does: before each delivery, offer the ones
 * held (the rest of the stream, done = the last seq handed out), then take
 * it. Every delivery but the first was offered (as items[1..] of an
 * earlier call) and must come back verified as on the spot.
 */
static void
s_hand_out(unsigned threads)
{
    s_fix_t f = s_open(threads);
    size_t taken = 0;
    for (size_t k = 0; k < S_N; k++) {
        assert_true(parley__preverify_offer(f.pv, &f.st->items[k], S_N - k,
                                            (uint64_t)k) >= 0);
        const parley__merge_item_t *it = &f.st->items[k];
        int got = s_take(&f, it->seq, it->data, it->len);
        assert_int_equal(got, k == 0 ? 0 : 1);
        taken += got == 1;
        /* What was handed out, verified ahead or here. */
        assert_int_equal(parley_delivery_decode(NULL, it->data, it->len, f.d)
                             == 0,
                         !s_forged(it->seq));
    }
    parley__preverify_counts_t c = parley__preverify_counts(f.pv);
    assert_int_equal(c.taken, taken);
    assert_int_equal(c.unoffered, 1);
    assert_true(c.ready + c.own <= c.taken);
    s_close(&f);
}

static void
test_two_threads(void **state)
{
    (void)state;
    s_hand_out(2);
}

static void
test_more_threads_than_cores(void **state)
{
    (void)state;
    s_hand_out(3);
    s_hand_out(8);
}

/*
 * The same seq with other bytes (dropped and fetched again from elsewhere):
 * the result of the old bytes is not handed out for them.
 */
static void
test_other_bytes_same_seq(void **state)
{
    (void)state;
    s_fix_t f = s_open(2);
    assert_int_equal(parley__preverify_offer(f.pv, f.st->items, 10, 0), 9);
    uint8_t other[S_BUF];
    const parley__merge_item_t *it = &f.st->items[3];
    memcpy(other, it->data, it->len);
    other[it->len - 3] ^= 0x01;
    assert_int_equal(s_take(&f, it->seq, other, it->len), 0);
    /* The result of the old bytes is dropped, or (if a worker was still
     * on it) kept for those bytes alone: s_take() checks it is theirs. */
    (void)s_take_seq(&f, it->seq);
    /* The others are still there. */
    assert_int_equal(s_take_seq(&f, 5), 1);
    s_close(&f);
}

/*
 * A seq whose slot holds one not yet handed out (the table has 128 slots
 * with 2 threads) is not offered; the one held stays and is handed out.
 */
static void
test_busy_slot(void **state)
{
    (void)state;
    s_fix_t f = s_open(2);
    /* seq 1 (next, left to the caller) and 2: seq 2 is offered. */
    assert_int_equal(parley__preverify_offer(f.pv, f.st->items, 2, 0), 1);
    /* seq 130 takes the slot of seq 2 (130 mod 128), not handed out yet. */
    parley__merge_item_t pair[2] = { f.st->items[0], f.st->items[129] };
    assert_int_equal(parley__preverify_offer(f.pv, pair, 2, 0), 0);
    assert_int_equal(s_take_seq(&f, 130), 0);
    assert_int_equal(s_take_seq(&f, 2), 1);
    /* Seq 2 handed out (done = 2): its slot is free for seq 130. */
    assert_int_equal(parley__preverify_offer(f.pv, pair, 2, 2), 1);
    assert_int_equal(s_take_seq(&f, 130), 1);
    s_close(&f);
}

/* Destroyed with deliveries offered and being verified: the workers stop,
 * nothing leaks (ASan), nothing hangs. */
static void
test_destroy_busy(void **state)
{
    (void)state;
    s_stream_t *st = s_stream();
    for (unsigned threads = 2; threads <= 4; threads++) {
        int err = 0;
        parley__preverify_t *pv = parley__preverify_new(NULL, threads, &err);
        assert_non_null(pv);
        assert_true(parley__preverify_offer(pv, st->items, S_N, 0) > 0);
        parley__preverify_destroy(&pv);
        assert_null(pv);
    }
    parley__preverify_destroy(NULL);
    free(st);
}

static void
test_bad_thread_counts(void **state)
{
    (void)state;
    int err = 0;
    assert_null(parley__preverify_new(NULL, 1, &err));
    assert_int_equal(err, PARLEY_EARG);
    err = 0;
    assert_null(parley__preverify_new(NULL, PARLEY__VERIFY_THREADS_MAX + 1,
                                      &err));
    assert_int_equal(err, PARLEY_EARG);
    parley__preverify_counts_t c = parley__preverify_counts(NULL);
    assert_int_equal(c.taken, 0);
}

/*
 * parley__delivery_move(): the delivery moved in shows exactly what was
 * decoded (also over one that held more parties and longer text), and
 * the envelope buffers change hands without a leak (ASan).
 */
static void
test_delivery_move(void **state)
{
    (void)state;
    s_stream_t *st = s_stream();
    parley_delivery_t *dst = parley_delivery_new();
    parley_delivery_t *src = parley_delivery_new();
    parley_delivery_t *want = parley_delivery_new();
    assert_non_null(dst);
    assert_non_null(src);
    assert_non_null(want);
    /* seq 3 (three parties, long text), then 4 and 5 over it; 5 forged */
    for (size_t k = 2; k < 6; k++) {
        const parley__merge_item_t *it = &st->items[k];
        int rc = parley_delivery_decode(NULL, it->data, it->len, src);
        assert_int_equal(parley_delivery_decode(NULL, it->data, it->len,
                                                want),
                         rc);
        parley__delivery_move(dst, src);
        s_same_delivery(want, dst);
        size_t len = 1;
        assert_null(parley_delivery_envelope(src, &len));
        assert_int_equal(len, 0);
    }
    parley_delivery_destroy(&dst);
    parley_delivery_destroy(&src);
    parley_delivery_destroy(&want);
    free(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads),
        cmocka_unit_test(test_delivery_move),
        cmocka_unit_test(test_more_threads_than_cores),
        cmocka_unit_test(test_other_bytes_same_seq),
        cmocka_unit_test(test_busy_slot),
        cmocka_unit_test(test_destroy_busy),
        cmocka_unit_test(test_bad_thread_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
