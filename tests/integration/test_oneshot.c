/*
 * test_oneshot.c - the one-shot calls against a real parleyd:
 *
 *   - parley_snapshot() hands out the current state once, verified, in
 *     seq order, with the seq it reflects: the same updates a LAST
 *     subscription starts with; filters apply;
 *   - parley_replay() hands out a range once, page after page (2,500
 *     updates take three pages), ends at the head the first page saw even
 *     while more is published, and honours from/to bounds and filters;
 *   - a keyring that does not know the signer turns deliveries into
 *     PARLEY_EVENT_REJECTED;
 *   - a replay over seqs retention removed hands out one
 *     PARLEY_EVENT_GAP for them, then the rest.
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
#include <sys/stat.h>

#include <cmocka.h>

#define S_TIMEOUT 10000
#define S_MANY 2500

typedef struct {
    ph_world_t w;           /* the daemon, without rate limit, and its key */
    ph_key_t other;         /* a key it does not know */
    parley_pub_t *pub;
    uint64_t hamas_first;   /* seq of the first hamas update */
    uint64_t correction;    /* seq of the correction of it */
    uint64_t egypt;         /* seq of the egypt update */
    uint64_t head;          /* after the setup */
    bool test_ok;
} s_state_t;

/* Publish u; returns its seq. */
static uint64_t
s_pub(s_state_t *st, parley_update_t *u)
{
    uint64_t seq = 0;
    int rc = ph_publish(st->pub, u, &seq, NULL);
    if (rc != 0)
        fail_msg("publish: %s (%s)", parley_error_name(rc),
                 parley_pub_detail(st->pub));
    return seq;
}

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    assert_int_equal(ph_world_start(&st->w, 0x81, "rate_limit 0\n"), 0);
    assert_int_equal(ph_key_make(&st->other, st->w.dir, "other", 0x82), 0);
    st->pub = ph_pub_new(st->w.daemon.api, st->w.key.key, NULL, S_TIMEOUT);
    assert_non_null(st->pub);

    /* A small state: hamas phase 1 (then corrected), egypt phase 2. */
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1, "first word on hamas");
    st->hamas_first = s_pub(st, &u);
    ph_update_init(&u, "gaza-ceasefire", "egypt", 2, "egypt hosts talks");
    st->egypt = s_pub(st, &u);
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1, "hamas, corrected");
    u.kind = PARLEY_KIND_CORRECTION;
    u.references[0] = st->hamas_first;
    u.n_references = 1;
    st->correction = s_pub(st, &u);
    st->head = st->correction;
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    parley_pub_destroy(&st->pub);
    ph_key_free(&st->other);
    ph_world_end(&st->w, st->test_ok);
    free(st);
    return 0;
}

/* Every event of q: delivery seqs into seqs (at most cap), counts of the
 * other kinds; returns the number of deliveries. */
static size_t
s_drain(parley_query_t *q, uint64_t *seqs, size_t cap, size_t *gaps,
        size_t *rejected)
{
    size_t n = 0;
    const parley_event_t *ev;
    int rc;
    while ((rc = parley_query_next(q, &ev)) == 1) {
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_DELIVERY:
            assert_int_equal(parley_event_seq(ev),
                             parley_delivery_seq(parley_event_delivery(ev)));
            if (n < cap)
                seqs[n] = parley_event_seq(ev);
            n++;
            break;
        case PARLEY_EVENT_GAP:
            if (gaps != NULL)
                (*gaps)++;
            break;
        case PARLEY_EVENT_REJECTED:
            if (rejected != NULL)
                (*rejected)++;
            break;
        default:
            fail_msg("a query handed out event %d", (int)parley_event_type(ev));
        }
    }
    if (rc != 0)
        fail_msg("parley_query_next: %s", parley_error_name(rc));
    /* and it stays at the end */
    assert_int_equal(parley_query_next(q, &ev), 0);
    return n;
}

static void
test_snapshot(void **state)
{
    s_state_t *st = *state;
    parley_call_options_t o = ph_call_options(st->w.daemon.api, S_TIMEOUT);
    parley_query_t *q = NULL;
    uint64_t seqs[16];

    assert_int_equal(parley_snapshot(&o, &q), 0);
    assert_int_equal(parley_query_seq(q), st->head);
    size_t n = s_drain(q, seqs, 16, NULL, NULL);
    parley_query_destroy(&q);
    assert_null(q);
    assert_int_equal(n, 2);
    assert_int_equal(seqs[0], st->egypt);
    assert_int_equal(seqs[1], st->correction);

    /* The same updates a LAST subscription starts with. */
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.start = PARLEY_START_LAST;
    parley_sub_t *sub = ph_sub_new(st->w.daemon.api, NULL, &so);
    assert_non_null(sub);
    ph_events_t ev = { 0 };
    assert_int_equal(ph_sub_collect(sub, &ev, 2, 0, S_TIMEOUT), 2);
    assert_int_equal(ev.d[0].seq, seqs[0]);
    assert_int_equal(ev.d[1].seq, seqs[1]);
    ph_events_free(&ev);
    parley_sub_destroy(&sub);

    /* A filter: egypt only. */
    parley_filter_t *f = parley_filter_new();
    assert_non_null(f);
    assert_int_equal(parley_filter_add_party(f, "egypt"), 0);
    const parley_filter_t *fs[] = { f };
    o.filters = fs;
    o.n_filters = 1;
    assert_int_equal(parley_snapshot(&o, &q), 0);
    n = s_drain(q, seqs, 16, NULL, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(seqs[0], st->egypt);
    parley_query_destroy(&q);
    parley_filter_destroy(&f);

    /* A keyring without the signer: each delivery fails verification. */
    char text[512] = "", err[256];
    assert_int_equal(ph_keyring_add(text, sizeof(text), &st->other, "*", "*",
                                    "*"),
                     0);
    parley_keyring_t *ring = parley_keyring_parse(text, strlen(text), err,
                                                  sizeof(err));
    assert_non_null(ring);
    o.filters = NULL;
    o.n_filters = 0;
    o.keyring = ring;
    size_t rejected = 0;
    assert_int_equal(parley_snapshot(&o, &q), 0);
    assert_int_equal(s_drain(q, seqs, 16, NULL, &rejected), 0);
    assert_int_equal(rejected, 2);
    parley_query_destroy(&q);
    parley_keyring_destroy(&ring);
    st->test_ok = true;
}

static void
test_replay(void **state)
{
    s_state_t *st = *state;
    parley_call_options_t o = ph_call_options(st->w.daemon.api, S_TIMEOUT);
    parley_query_t *q = NULL;
    uint64_t *seqs = calloc(S_MANY + 16, sizeof(*seqs));
    assert_non_null(seqs);

    /* Many more, pipelined, so the replay needs several pages. */
    uint8_t env[PARLEY_ENVELOPE_MAX];
    for (int i = 0; i < S_MANY; i++) {
        parley_update_t u;
        size_t len = 0;
        ph_update_init(&u, "gaza-ceasefire", i % 2 ? "qatar" : "israel", 3,
                       "many");
        assert_int_equal(ph_sign(&st->w.key, &u, env, sizeof(env), &len), 0);
        assert_int_equal(parley_pub_send(st->pub, env, len, NULL), 0);
        while (parley_pub_pending(st->pub) > 256)
            assert_int_equal(ph_recv(st->pub, S_TIMEOUT, NULL, NULL, NULL), 0);
    }
    while (parley_pub_pending(st->pub) > 0)
        assert_int_equal(ph_recv(st->pub, S_TIMEOUT, NULL, NULL, NULL), 0);
    uint64_t head = st->head + S_MANY;

    /* All of it, once, in order; the end is the head the first page saw,
     * though more is published after that page. */
    assert_int_equal(parley_replay(0, 0, &o, &q), 0);
    assert_int_equal(parley_query_seq(q), head);
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 3, "after the first page");
    uint64_t later = s_pub(st, &u);
    size_t gaps = 0;
    size_t n = s_drain(q, seqs, S_MANY + 16, &gaps, NULL);
    parley_query_destroy(&q);
    assert_int_equal(gaps, 0);
    assert_int_equal(n, head);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seqs[i], i + 1);
    assert_true(later > head);

    /* Bounds: from/to, to above the head, from above the head, to below
     * from. */
    assert_int_equal(parley_replay(10, 19, &o, &q), 0);
    n = s_drain(q, seqs, S_MANY, NULL, NULL);
    parley_query_destroy(&q);
    assert_int_equal(n, 10);
    assert_int_equal(seqs[0], 10);
    assert_int_equal(seqs[9], 19);
    assert_int_equal(parley_replay(later, later + 1000, &o, &q), 0);
    assert_int_equal(s_drain(q, seqs, S_MANY, NULL, NULL), 1);
    assert_int_equal(parley_query_seq(q), later);
    parley_query_destroy(&q);
    assert_int_equal(parley_replay(later + 1, 0, &o, &q), 0);
    assert_int_equal(s_drain(q, seqs, S_MANY, NULL, NULL), 0);
    parley_query_destroy(&q);
    assert_int_equal(parley_replay(5, 4, &o, &q), PARLEY_EARG);
    assert_null(q);

    /* A filter: the qatar ones only. */
    parley_filter_t *f = parley_filter_new();
    assert_non_null(f);
    assert_int_equal(parley_filter_add_party(f, "qatar"), 0);
    const parley_filter_t *fs[] = { f };
    o.filters = fs;
    o.n_filters = 1;
    assert_int_equal(parley_replay(1, later, &o, &q), 0);
    n = s_drain(q, seqs, S_MANY + 16, NULL, NULL);
    parley_query_destroy(&q);
    parley_filter_destroy(&f);
    assert_int_equal(n, S_MANY / 2 + 1);
    assert_int_equal(seqs[n - 1], later);
    free(seqs);
    st->test_ok = true;
}

/* Retention removed the start of the log: one gap, then the rest. */
static void
test_replay_gap(void **state)
{
    s_state_t *st = *state;
    char dir[PH_PATH_MAX], conf[PH_PATH_MAX];
    ph_daemon_t d;
    ph_path(dir, sizeof(dir), st->w.dir, "trimmed");
    assert_int_equal(mkdir(dir, 0700), 0);
    ph_path(conf, sizeof(conf), dir, "parleyd.conf");
    static const char text[] = "rate_limit 0\nsegment_bytes 64K\n"
                               "retention_bytes 128K\n";
    assert_int_equal(ph_file_write(conf, text, strlen(text), 0644), 0);
    const char *extra[] = { "-c", conf, NULL };
    assert_int_equal(ph_daemon_start(&d, dir, st->w.ring, extra), 0);
    parley_pub_t *pub = ph_pub_new(d.api, st->w.key.key, NULL, S_TIMEOUT);
    assert_non_null(pub);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    for (int i = 0; i < 1000; i++) {
        parley_update_t u;
        size_t len = 0;
        ph_update_init(&u, "gaza-ceasefire", "qatar", 3,
                       "a long enough headline to fill segments quickly, "
                       "a long enough headline to fill segments quickly");
        assert_int_equal(ph_sign(&st->w.key, &u, env, sizeof(env), &len), 0);
        assert_int_equal(parley_pub_send(pub, env, len, NULL), 0);
        while (parley_pub_pending(pub) > 256)
            assert_int_equal(ph_recv(pub, S_TIMEOUT, NULL, NULL, NULL), 0);
    }
    while (parley_pub_pending(pub) > 0)
        assert_int_equal(ph_recv(pub, S_TIMEOUT, NULL, NULL, NULL), 0);
    parley_pub_destroy(&pub);
    /* Retention runs at start. */
    assert_int_equal(ph_daemon_stop(&d), 0);
    assert_int_equal(ph_daemon_restart(&d, st->w.ring, extra), 0);
    parley_call_options_t o = ph_call_options(d.api, S_TIMEOUT);
    parley_info_t *info = NULL;
    assert_int_equal(parley_ping(&o, &info), 0);
    uint64_t first = parley_info_first_seq(info);
    parley_info_destroy(&info);
    assert_true(first > 1);

    parley_query_t *q = NULL;
    const parley_event_t *ev;
    assert_int_equal(parley_replay(1, 0, &o, &q), 0);
    assert_int_equal(parley_query_next(q, &ev), 1);
    assert_int_equal(parley_event_type(ev), PARLEY_EVENT_GAP);
    assert_int_equal(parley_event_seq(ev), 1);
    assert_int_equal(parley_event_seq_last(ev), first - 1);
    uint64_t want = first;
    int rc;
    while ((rc = parley_query_next(q, &ev)) == 1) {
        assert_int_equal(parley_event_type(ev), PARLEY_EVENT_DELIVERY);
        assert_int_equal(parley_event_seq(ev), want);
        want++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(want, 1001);
    parley_query_destroy(&q);
    /* A range that lies wholly in the gap: just the gap. */
    assert_int_equal(parley_replay(2, 3, &o, &q), 0);
    assert_int_equal(parley_query_next(q, &ev), 1);
    assert_int_equal(parley_event_type(ev), PARLEY_EVENT_GAP);
    assert_int_equal(parley_event_seq(ev), 2);
    assert_int_equal(parley_event_seq_last(ev), 3);
    assert_int_equal(parley_query_next(q, &ev), 0);
    parley_query_destroy(&q);
    assert_int_equal(ph_daemon_stop(&d), 0);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_replay_gap),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
