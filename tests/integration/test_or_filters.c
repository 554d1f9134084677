/*
 * test_or_filters.c - several filters are an OR: "party hamas" or
 * "phase 2" delivers every update that matches either, each once, through
 * a live subscription, a replaying one, a snapshot, a replay, the daemon's
 * own answer (any_of) and `parley replay --or`.
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

#define S_TIMEOUT 10000

typedef struct {
    ph_world_t w;
    parley_pub_t *pub;
    parley_filter_t *hamas, *phase2;
    bool test_ok;
} s_state_t;

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    assert_int_equal(ph_world_start(&st->w, 0x91, NULL), 0);
    st->pub = ph_pub_new(st->w.daemon.api, st->w.key.key, NULL, S_TIMEOUT);
    assert_non_null(st->pub);
    st->hamas = parley_filter_new();
    st->phase2 = parley_filter_new();
    assert_non_null(st->hamas);
    assert_non_null(st->phase2);
    assert_int_equal(parley_filter_add_party(st->hamas, "hamas"), 0);
    assert_int_equal(parley_filter_add_phase(st->phase2, 2), 0);
    *state = st;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    parley_filter_destroy(&st->hamas);
    parley_filter_destroy(&st->phase2);
    parley_pub_destroy(&st->pub);
    ph_world_end(&st->w, st->test_ok);
    free(st);
    return 0;
}

/* Publish one update naming parties (comma-separated) in phase. */
static uint64_t
s_pub(s_state_t *st, const char *parties, uint32_t phase, const char *h)
{
    parley_update_t u;
    char list[128];
    ph_update_init(&u, "gaza-ceasefire", "x", phase, h);
    u.n_parties = 0;
    snprintf(list, sizeof(list), "%s", parties);
    for (char *p = strtok(list, ","); p != NULL; p = strtok(NULL, ","))
        snprintf(u.parties[u.n_parties++], sizeof(u.parties[0]), "%s", p);
    uint64_t seq = 0;
    assert_int_equal(ph_publish(st->pub, &u, &seq, NULL), 0);
    return seq;
}

/* Delivery seqs of a subscriber, until `want` or the timeout. */
static size_t
s_sub_seqs(parley_sub_t *sub, uint64_t *seqs, size_t want)
{
    ph_events_t ev = { 0 };
    size_t n = ph_sub_collect(sub, &ev, want, 0, S_TIMEOUT);
    for (size_t i = 0; i < n; i++)
        seqs[i] = ev.d[i].seq;
    assert_int_equal(ev.n_gaps, 0);
    ph_events_free(&ev);
    return n;
}

/* Delivery seqs of a query. */
static size_t
s_query_seqs(parley_query_t *q, uint64_t *seqs, size_t cap)
{
    const parley_event_t *ev;
    size_t n = 0;
    int rc;
    while ((rc = parley_query_next(q, &ev)) == 1) {
        assert_int_equal(parley_event_type(ev), PARLEY_EVENT_DELIVERY);
        if (n < cap)
            seqs[n] = parley_event_seq(ev);
        n++;
    }
    assert_int_equal(rc, 0);
    return n;
}

static void
s_expect(const char *what, const uint64_t *got, size_t n,
         const uint64_t *want, size_t nwant)
{
    char a[256], b[256];
    if (n != nwant || memcmp(got, want, n * sizeof(*got)) != 0)
        fail_msg("%s: got [%s], expected [%s]", what,
                 ph_seqs_format(got, n, a, sizeof(a)),
                 ph_seqs_format(want, nwant, b, sizeof(b)));
}

static void
test_or(void **state)
{
    s_state_t *st = *state;
    const parley_filter_t *either[] = { st->hamas, st->phase2 };

    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.server = st->w.daemon.api;
    so.filters = either;
    so.n_filters = 2;
    parley_sub_t *live = parley_sub_new(&so);
    assert_non_null(live);

    uint64_t a = s_pub(st, "hamas", 1, "A: hamas, phase 1");
    uint64_t b = s_pub(st, "egypt", 2, "B: egypt, phase 2");
    uint64_t c = s_pub(st, "hamas,qatar", 2, "C: hamas and phase 2");
    (void)s_pub(st, "qatar", 3, "D: neither");
    uint64_t e = s_pub(st, "qatar", 2, "E: phase 2");
    (void)s_pub(st, "israel", 1, "F: neither");
    const uint64_t want[] = { a, b, c, e };
    uint64_t seqs[16];

    /* Live: each matching update once (C matches both, and comes on
     * two of the subscribed topics). */
    s_expect("live subscription", seqs, s_sub_seqs(live, seqs, 4), want, 4);
    parley_event_t extra;
    assert_int_equal(ph_sub_next(live, 300, &extra), 0);
    parley_sub_destroy(&live);

    /* From seq 1: the replay the subscription asks for carries any_of. */
    so.start = PARLEY_START_SEQ;
    so.since_seq = 1;
    parley_sub_t *late = parley_sub_new(&so);
    assert_non_null(late);
    s_expect("subscription from seq 1", seqs, s_sub_seqs(late, seqs, 4), want,
             4);
    parley_sub_destroy(&late);

    /* The one-shot calls. */
    parley_call_options_t co = ph_call_options(st->w.daemon.api, S_TIMEOUT);
    co.filters = either;
    co.n_filters = 2;
    parley_query_t *q = NULL;
    assert_int_equal(parley_replay(1, 0, &co, &q), 0);
    s_expect("replay", seqs, s_query_seqs(q, seqs, 16), want, 4);
    parley_query_destroy(&q);
    assert_int_equal(parley_snapshot(&co, &q), 0);
    s_expect("snapshot", seqs, s_query_seqs(q, seqs, 16), want, 4);
    parley_query_destroy(&q);

    /* The daemon applies the OR itself: its answer holds only these. */
    ph_api_t api = { 0 };
    assert_int_equal(ph_api_open(&api, st->w.daemon.api), 0);
    parley__request_t *rq = calloc(1, sizeof(*rq));
    parley__filterbuf_t *fb = calloc(2, sizeof(*fb));
    assert_non_null(rq);
    assert_non_null(fb);
    assert_int_equal(parley__filterbuf_set(&fb[0], st->hamas), 0);
    assert_int_equal(parley__filterbuf_set(&fb[1], st->phase2), 0);
    rq->request_id = 7;
    rq->op = PARLEY__OP_REPLAY;
    rq->from_seq = 1;
    rq->any_of = fb;
    rq->n_any_of = 2;
    static uint8_t frame[65536];
    size_t flen = 0;
    assert_int_equal(parley__request_encode(rq, frame, sizeof(frame), &flen),
                     0);
    const void *f[] = { frame };
    size_t l[] = { flen };
    assert_int_equal(ph_api_send_frames(&api, f, l, 1), 0);
    parley__reply_t r;
    assert_int_equal(ph_api_recv(&api, S_TIMEOUT, &r), 0);
    assert_int_equal(r.type, PARLEY__REPLY_REPLAY);
    assert_int_equal(r.n_deliveries, 4);
    ph_api_close(&api);
    free(rq);
    free(fb);

    /* The tool. */
    char since[8];
    snprintf(since, sizeof(since), "%d", 1);
    const char *argv[] = { PARLEY_BIN, "-s", st->w.daemon.api, "replay",
                           "--since", since, "--party", "hamas", "--or",
                           "--phase", "2", "-F", "%s", NULL };
    ph_proc_t p = PH_PROC_INIT;
    assert_int_equal(ph_run(&p, argv, NULL, NULL, NULL, S_TIMEOUT), 0);
    char expect[64];
    snprintf(expect, sizeof(expect), "%" PRIu64 "\n%" PRIu64 "\n%" PRIu64
             "\n%" PRIu64 "\n", a, b, c, e);
    if (p.status != 0 || strcmp(p.out, expect) != 0)
        ph_proc_report(&p, "parley replay --party hamas --or --phase 2");
    assert_int_equal(p.status, 0);
    assert_string_equal(p.out, expect);
    ph_proc_free(&p);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_or),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
