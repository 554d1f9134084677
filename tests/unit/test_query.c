/*
 * test_query.c - the read path without sockets: replay and snapshot over
 * a real embedded storage in a scratch directory, with the replies
 * decoded as a client decodes them.
 *
 * Replay: paging by count, by bytes and by records looked at, ranges,
 * filters, truncated below what retention kept. Snapshot: the current
 * state after updates, corrections, retractions and expiry, with the
 * entries each delivery holds, filtered by entry, refused when too large
 * and, for a client that does not read entries, when the deliveries
 * alone would say it wrong. Both see only what is committed, and both
 * take OR filters (any_of). Both run in steps under a budget (records,
 * time) and give the same answers as in one step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "datapath.h"
#include "query.h"

#include "clock.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    dp_t dp;
    pd_query_t *q;
    uint64_t signer_seq;        /* last used, for signer 0 */
    uint8_t space[1 << 16];     /* arena for decoding replies */
    parley__request_t req;
} fx_t;

static int
s_setup_with(void **state, bool fsync)
{
    fx_t *f = calloc(1, sizeof(*f));
    int err;
    if (f == NULL || dp_setup(&f->dp, fsync) < 0)
        return -1;
    f->q = pd_query_new(f->dp.storage, NULL, f->dp.cfg.max_message_bytes,
                        &err);
    if (f->q == NULL)
        return -1;
    *state = f;
    return 0;
}

static int
s_setup(void **state)
{
    return s_setup_with(state, true);
}

/* For the tests that store thousands of records. */
static int
s_setup_nosync(void **state)
{
    return s_setup_with(state, false);
}

static int
s_teardown(void **state)
{
    fx_t *f = *state;
    pd_query_destroy(&f->q);
    dp_teardown(&f->dp);
    free(f);
    return 0;
}

/*
 * Keep u (signer 0, next signer_seq) in the storage, not yet committed.
 * The storage checks no signature (ingest did), so a fixed one will do.
 */
static void
s_submit(fx_t *f, parley_update_t *u)
{
    uint8_t body[PARLEY_ENVELOPE_MAX], env[PARLEY_ENVELOPE_MAX + 128];
    uint8_t sig[PARLEY_SIGNATURE_BYTES];
    size_t blen, len;
    memset(sig, 0x5a, sizeof(sig));
    u->signer_seq = ++f->signer_seq;
    assert_int_equal(parley__update_encode(u, body, sizeof(body), &blen), 0);
    assert_int_equal(parley__envelope_encode(body, blen, f->dp.pk[0], sig,
                                             env, sizeof(env), &len), 0);
    pd_storage_update_t su = { .env = env, .len = len,
                               .signer = f->dp.pk[0], .update = u,
                               .received_at = parley_now_ms() };
    pd_storage_done_t done;
    int rc = pd_storage_submit(f->dp.storage, &su, &done);
    if (rc == PD_STORAGE_FULL) {
        assert_int_equal(pd_storage_commit(f->dp.storage), 0);
        rc = pd_storage_submit(f->dp.storage, &su, &done);
    }
    assert_int_equal(rc, PD_STORAGE_DONE);
    assert_false(done.duplicate);
}

/* Commit, and take what the commit applied (as ingest does). */
static void
s_commit(fx_t *f)
{
    pd_storage_record_t rec;
    assert_int_equal(pd_storage_commit(f->dp.storage), 0);
    while (pd_storage_applied(f->dp.storage, &rec))
        ;
}

/* Store n updates for party/phase and commit them. */
static void
s_store(fx_t *f, size_t n, const char *party, uint32_t phase)
{
    parley_update_t u;
    for (size_t i = 0; i < n; i++) {
        dp_update(&u, NULL, party, phase, 0);
        s_submit(f, &u);
    }
    s_commit(f);
}

/* A request for op with a filter on party (NULL: none). */
static parley__request_t *
s_request(fx_t *f, parley__op_t op, const char *party)
{
    memset(&f->req, 0, sizeof(f->req));
    f->req.request_id = 42;
    f->req.op = op;
    if (party != NULL) {
        const char *parties[1] = { party };
        parley_filter_t flt = { .parties = parties, .n_parties = 1 };
        assert_int_equal(parley__filterbuf_set(&f->req.filter, &flt), 0);
    } else {
        assert_int_equal(parley__filterbuf_set(&f->req.filter, NULL), 0);
    }
    return &f->req;
}

/* What a client reads from a replay or snapshot reply. */
typedef struct {
    parley__reply_t r;
    uint64_t seqs[PD_QUERY_SNAPSHOT_MAX];
    size_t n;
    size_t bytes;       /* of the deliveries */
    char entries[4096]; /* "party/phase=seq " for each entry, in order */
    size_t n_entries;
} s_got_t;

static void
s_decode(fx_t *f, const pd_query_answer_t *a, s_got_t *g)
{
    parley__arena_t arena;
    parley__arena_init(&arena, f->space, sizeof(f->space));
    assert_int_equal(parley__reply_decode(a->reply, a->len, &g->r, &arena), 0);
    assert_int_equal(g->r.request_id, 42);
    g->n = g->r.n_deliveries;
    g->bytes = 0;
    for (size_t i = 0; i < g->n; i++) {
        g->bytes += g->r.deliveries[i].len;
        int64_t at;
        parley__bytes_t upd;
        assert_int_equal(parley__delivery_decode_raw(
                             g->r.deliveries[i].data, g->r.deliveries[i].len,
                             &g->seqs[i], &at, &upd, &arena),
                         0);
    }
    g->n_entries = g->r.n_entries;
    g->entries[0] = '\0';
    for (size_t i = 0, used = 0; i < g->r.n_entries && used < 4000; i++) {
        const parley__entry_t *e = &g->r.entries[i];
        assert_string_equal(e->negotiation, "gaza-ceasefire");
        used += (size_t)snprintf(g->entries + used, sizeof(g->entries) - used,
                                 "%s/%u=%llu ", e->party, (unsigned)e->phase,
                                 (unsigned long long)e->seq);
    }
    /* g->r's pointers die with the arena: only its numbers are used. */
    g->r.deliveries = NULL;
    g->r.entries = NULL;
    parley__arena_reset(&arena);
}

static void
s_replay(fx_t *f, uint64_t from, uint64_t to, uint32_t limit,
         const char *party, s_got_t *g)
{
    parley__request_t *q = s_request(f, PARLEY__OP_REPLAY, party);
    q->from_seq = from;
    q->to_seq = to;
    q->limit = limit;
    pd_query_answer_t a;
    assert_int_equal(pd_query_replay(f->q, q, NULL, &a), 0);
    s_decode(f, &a, g);
    assert_int_equal(g->r.type, PARLEY__REPLY_REPLAY);
}

/* ---------------------------------------------------------------- tests */

static void
test_replay_pages(void **state)
{
    fx_t *f = *state;
    static s_got_t g;
    for (int i = 0; i < 25; i++)
        s_store(f, 100, i % 2 ? "qatar" : "egypt", 1);
    /* 0 and over 1000 mean 1000. */
    s_replay(f, 0, 0, 0, NULL, &g);
    assert_int_equal(g.n, PD_QUERY_REPLAY_MAX);
    assert_int_equal(g.seqs[0], 1);
    assert_int_equal(g.seqs[999], 1000);
    assert_int_equal(g.r.next_seq, 1001);
    assert_int_equal(g.r.head_seq, 2500);
    assert_false(g.r.done);
    s_replay(f, 1001, 0, 5000, NULL, &g);
    assert_int_equal(g.n, PD_QUERY_REPLAY_MAX);
    s_replay(f, 1001, 0, 10, NULL, &g);
    assert_int_equal(g.n, 10);
    assert_int_equal(g.r.next_seq, 1011);
    /* The tail, and a closed range. */
    s_replay(f, 2400, 0, 0, NULL, &g);
    assert_int_equal(g.n, 101);
    assert_int_equal(g.seqs[100], 2500);
    assert_int_equal(g.r.next_seq, 2501);
    assert_true(g.r.done);
    s_replay(f, 1500, 1505, 0, NULL, &g);
    assert_int_equal(g.n, 6);
    assert_true(g.r.done);
    /* Past the head: empty and done. */
    s_replay(f, 2501, 0, 0, NULL, &g);
    assert_int_equal(g.n, 0);
    assert_true(g.r.done);
    /* A filter: only qatar's (the odd hundreds). */
    s_replay(f, 95, 0, 10, "qatar", &g);
    assert_int_equal(g.n, 10);
    assert_int_equal(g.seqs[0], 101);
    assert_int_equal(g.seqs[9], 110);
    assert_int_equal(g.r.next_seq, 111);
}

/* A page stops at about 1 MiB of deliveries, and after looking at
 * PD_QUERY_SCAN_MAX records that all fail the filter. */
static void
test_replay_budget_and_scan(void **state)
{
    fx_t *f = *state;
    static s_got_t g;
    parley_update_t u;
    for (int i = 0; i < 400; i++) {
        dp_update(&u, NULL, "egypt", 1, 0);
        memset(u.body, 'b', PARLEY_BODY_MAX);
        s_submit(f, &u);
    }
    s_commit(f);
    s_replay(f, 1, 0, 0, NULL, &g);
    assert_true(g.n > 100 && g.n < 400);
    assert_int_equal(g.r.next_seq, g.seqs[g.n - 1] + 1);
    assert_false(g.r.done);
    assert_true(g.bytes <= PD_QUERY_REPLY_BUDGET);

    for (int i = 0; i < 21; i++)
        s_store(f, 1000, "qatar", 2);
    s_replay(f, 401, 0, 0, "nobody", &g);
    assert_int_equal(g.n, 0);
    assert_int_equal(g.r.next_seq, 401 + PD_QUERY_SCAN_MAX);
    assert_false(g.r.done);
}

/* Open the storage again with small segments and a retention of four. */
static void
s_small_retention(fx_t *f)
{
    f->dp.cfg.segment_bytes = 4096;
    f->dp.cfg.retention_bytes = 16384;
    assert_int_equal(dp_open_storage(&f->dp), 0);
    pd_query_destroy(&f->q);
    int err;
    f->q = pd_query_new(f->dp.storage, NULL, f->dp.cfg.max_message_bytes,
                        &err);
    assert_non_null(f->q);
}

/* Below the first seq retention kept: truncated, with that seq. */
static void
test_replay_truncated(void **state)
{
    fx_t *f = *state;
    s_small_retention(f);
    for (int i = 0; i < 10; i++)
        s_store(f, 20, "egypt", 1);
    assert_true(pd_storage_retain(f->dp.storage, parley_now_ms()) > 0);
    uint64_t first = pd_storage_first(f->dp.storage);
    assert_true(first > 1);

    parley__request_t *q = s_request(f, PARLEY__OP_REPLAY, NULL);
    q->from_seq = 1;
    pd_query_answer_t a;
    assert_int_equal(pd_query_replay(f->q, q, NULL, &a), PARLEY_ETRUNCATED);
    assert_int_equal(a.first_seq, first);
    static s_got_t g;
    s_replay(f, first, 0, 0, NULL, &g);
    assert_int_equal(g.seqs[0], first);
    assert_int_equal(g.seqs[g.n - 1], 200);
}

/* A snapshot for a client that reads entries (filter: party or all). */
static void
s_snapshot(fx_t *f, const char *party, s_got_t *g)
{
    pd_query_answer_t a;
    parley__request_t *q = s_request(f, PARLEY__OP_SNAPSHOT, party);
    q->entries = true;
    assert_int_equal(pd_query_snapshot(f->q, q, NULL, &a), 0);
    s_decode(f, &a, g);
    assert_int_equal(g->r.type, PARLEY__REPLY_SNAPSHOT);
}

/* The same for an older client (no entries): the answer's code. */
static int
s_snapshot_old(fx_t *f, const char *party, s_got_t *g,
               pd_query_answer_t *a)
{
    parley__request_t *q = s_request(f, PARLEY__OP_SNAPSHOT, party);
    int rc = pd_query_snapshot(f->q, q, NULL, a);
    if (rc == 0) {
        s_decode(f, a, g);
        assert_int_equal(g->n_entries, 0);
    }
    return rc;
}

/* The current state after corrections, retractions and expiry; and only
 * what is committed, in both replay and snapshot. */
static void
test_snapshot(void **state)
{
    fx_t *f = *state;
    static s_got_t g;
    parley_update_t u;
    dp_update(&u, NULL, "egypt", 1, 0);  /* 1 */
    s_submit(f, &u);
    dp_update(&u, NULL, "qatar", 1, 0);  /* 2 */
    s_submit(f, &u);
    dp_update(&u, NULL, "egypt", 1, 0);  /* 3: replaces 1 */
    s_submit(f, &u);
    dp_update(&u, NULL, "qatar", 2, 0);  /* 4: corrects 2, on phase 2 */
    u.kind = PARLEY_KIND_CORRECTION;
    u.references[u.n_references++] = 2;
    s_submit(f, &u);
    dp_update(&u, NULL, "egypt", 1, 0);  /* 5: retracts 3 */
    u.kind = PARLEY_KIND_RETRACTION;
    u.references[u.n_references++] = 3;
    s_submit(f, &u);
    dp_update(&u, NULL, "us", 0, 0);     /* 6: expired */
    u.expires_at = parley_now_ms() - 1000;
    s_submit(f, &u);
    dp_update(&u, NULL, "israel", 3, 0); /* 7 */
    s_submit(f, &u);

    /* Not committed: neither replay nor snapshot sees any of it. */
    s_snapshot(f, NULL, &g);
    assert_int_equal(g.n, 0);
    assert_int_equal(g.r.seq, 0);
    s_replay(f, 1, 0, 0, NULL, &g);
    assert_int_equal(g.n, 0);
    assert_int_equal(g.r.head_seq, 0);

    s_commit(f);
    /* egypt/1 falls back to 1 when 3 is retracted; the expired 6 holds
     * nothing, and nothing falls back past it. */
    s_snapshot(f, NULL, &g);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.seqs[0], 1);
    assert_int_equal(g.seqs[1], 4);
    assert_int_equal(g.seqs[2], 7);
    assert_int_equal(g.r.seq, 7);
    assert_string_equal(g.entries, "egypt/1=1 qatar/2=4 israel/3=7 ");
    s_snapshot(f, "israel", &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.seqs[0], 7);
    /* Each of these updates holds every entry it names: an older client
     * reads them right, and is answered. */
    pd_query_answer_t a;
    assert_int_equal(s_snapshot_old(f, NULL, &g, &a), 0);
    assert_int_equal(g.n, 3);

    /* A newer israel update, submitted only: the snapshot still holds 7. */
    dp_update(&u, NULL, "israel", 3, 0);
    s_submit(f, &u);
    s_snapshot(f, "israel", &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.seqs[0], 7);
    assert_int_equal(g.r.seq, 7);
    s_commit(f);
    s_snapshot(f, "israel", &g);
    assert_int_equal(g.seqs[0], 8);
    assert_int_equal(g.r.seq, 8);
}

/* An update naming several parties (dp_update() names one). */
static void
s_update2(parley_update_t *u, const char *p1, const char *p2, uint32_t phase)
{
    dp_update(u, NULL, p1, phase, 0);
    snprintf(u->parties[1], sizeof(u->parties[1]), "%s", p2);
    u->n_parties = 2;
}

/*
 * The example of the issue: U1 names israel and hamas, U2 israel; U2 is
 * retracted. The snapshot holds U1 for both, and says so; a filter on a
 * party selects entries, not updates. A client that does not read
 * entries reads a delivery as the state of every entry it names: that is
 * right whenever a newer delivery holds each entry it does not, and only
 * an expired (or unreadable) newer update breaks it; such a client is
 * then refused, saying why, rather than shown a wrong state.
 */
static void
test_snapshot_entries(void **state)
{
    fx_t *f = *state;
    static s_got_t g;
    parley_update_t u;
    pd_query_answer_t a;
    s_update2(&u, "israel", "hamas", 1); /* 1: U1 */
    s_submit(f, &u);
    dp_update(&u, NULL, "israel", 1, 0); /* 2: U2 */
    s_submit(f, &u);
    s_commit(f);
    s_snapshot(f, NULL, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.entries, "hamas/1=1 israel/1=2 ");
    /* Filtered on israel: U2 alone, although U1 names israel too. */
    s_snapshot(f, "israel", &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.seqs[0], 2);
    assert_string_equal(g.entries, "israel/1=2 ");
    assert_int_equal(s_snapshot_old(f, NULL, &g, &a), 0);
    assert_int_equal(g.n, 2);

    dp_update(&u, NULL, "us", 1, 0); /* 3: retracts U2 */
    u.kind = PARLEY_KIND_RETRACTION;
    u.references[u.n_references++] = 2;
    s_submit(f, &u);
    s_commit(f);
    s_snapshot(f, NULL, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.seqs[0], 1);
    assert_string_equal(g.entries, "hamas/1=1 israel/1=1 ");
    s_snapshot(f, "israel", &g);
    assert_string_equal(g.entries, "israel/1=1 ");

    /* 4: hamas; 5: a correction of 4 naming egypt: hamas falls back to
     * U1 again, and egypt/1 is 5's. */
    dp_update(&u, NULL, "hamas", 1, 0);
    s_submit(f, &u);
    dp_update(&u, NULL, "egypt", 1, 0);
    u.kind = PARLEY_KIND_CORRECTION;
    u.references[u.n_references++] = 4;
    s_submit(f, &u);
    s_commit(f);
    s_snapshot(f, NULL, &g);
    assert_string_equal(g.entries, "egypt/1=5 hamas/1=1 israel/1=1 ");
    assert_int_equal(s_snapshot_old(f, NULL, &g, &a), 0);

    /* 6: hamas and egypt on phase 2; 7: hamas, already expired: hamas/2
     * has no state (nothing falls back past 7), and 6 holds egypt/2
     * alone. An older client would read hamas/2 from 6. */
    s_update2(&u, "hamas", "egypt", 2);
    s_submit(f, &u);
    dp_update(&u, NULL, "hamas", 2, 0);
    u.expires_at = parley_now_ms() - 1000;
    s_submit(f, &u);
    s_commit(f);
    s_snapshot(f, NULL, &g);
    assert_string_equal(g.entries, "egypt/1=5 hamas/1=1 israel/1=1 "
                                   "egypt/2=6 ");
    assert_int_equal(s_snapshot_old(f, NULL, &g, &a), PARLEY_EBADREQUEST);
    assert_non_null(strstr(a.detail, "entries"));
    /* Asking for what it can read right is answered. */
    assert_int_equal(s_snapshot_old(f, "egypt", &g, &a), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(s_snapshot_old(f, "israel", &g, &a), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(s_snapshot_old(f, "hamas", &g, &a), 0);
    assert_int_equal(g.n, 1); /* U1, for hamas/1 */
    /* 8: hamas/2 again: 6 is right for an older client once more. */
    dp_update(&u, NULL, "hamas", 2, 0);
    s_submit(f, &u);
    s_commit(f);
    assert_int_equal(s_snapshot_old(f, NULL, &g, &a), 0);
}

/* More than PD_QUERY_SNAPSHOT_MAX current states: unavailable, saying
 * why; a filter brings it under. */
static void
test_snapshot_too_large(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    for (int i = 0; i <= PD_QUERY_SNAPSHOT_MAX; i++) {
        char party[16];
        snprintf(party, sizeof(party), "p%d", i / 256);
        dp_update(&u, NULL, party, (uint32_t)(i % 256), 0);
        s_submit(f, &u);
    }
    s_commit(f);
    pd_query_answer_t a;
    parley__request_t *q = s_request(f, PARLEY__OP_SNAPSHOT, NULL);
    assert_int_equal(pd_query_snapshot(f->q, q, NULL, &a),
                     PARLEY_EUNAVAILABLE);
    assert_string_equal(a.detail, "the state asked for holds more than 4096 "
                                  "current updates, over what one answer "
                                  "carries: ask for less with filters "
                                  "(negotiation, party, phase)");
    static s_got_t g;
    s_snapshot(f, "p3", &g);
    assert_int_equal(g.n, 256);
}

/* Answer q (a replay or a snapshot) and decode the reply into g. */
static void
s_ask(fx_t *f, const parley__request_t *q, s_got_t *g)
{
    pd_query_answer_t a;
    int rc = q->op == PARLEY__OP_REPLAY ? pd_query_replay(f->q, q, NULL, &a)
                                        : pd_query_snapshot(f->q, q, NULL, &a);
    assert_int_equal(rc, 0);
    s_decode(f, &a, g);
}

/*
 * OR filters (any_of): a request matches its filter and one of any_of.
 * The request goes through the wire encoding, as a client sends it.
 */
static void
test_any_of(void **state)
{
    fx_t *f = *state;
    static s_got_t g;
    parley_update_t u;
    static const char *const parties[] = { "egypt", "qatar", "us", "israel" };
    for (uint32_t i = 0; i < 8; i++) { /* seqs 1..8 */
        dp_update(&u, NULL, parties[i % 4], i % 3, 0);
        s_submit(f, &u);
    }
    s_commit(f);

    /* party egypt OR phase 2; with the filter phase 0..1 AND-ed on top. */
    static parley__filterbuf_t alt[2];
    const char *egypt[] = { "egypt" };
    const uint32_t two[] = { 2 }, low[] = { 0, 1 };
    parley_filter_t fe = { .parties = egypt, .n_parties = 1 };
    parley_filter_t fp = { .phases = two, .n_phases = 1 };
    parley_filter_t fl = { .phases = low, .n_phases = 2 };
    assert_int_equal(parley__filterbuf_set(&alt[0], &fe), 0);
    assert_int_equal(parley__filterbuf_set(&alt[1], &fp), 0);
    for (int op = 0; op < 2; op++) {
        parley__request_t *q = s_request(
            f, op == 0 ? PARLEY__OP_REPLAY : PARLEY__OP_SNAPSHOT, NULL);
        q->any_of = alt;
        q->n_any_of = 2;
        static uint8_t buf[4096], space[1 << 15];
        size_t len;
        assert_int_equal(parley__request_encode(q, buf, sizeof(buf), &len), 0);
        parley__arena_t arena;
        parley__arena_init(&arena, space, sizeof(space));
        static parley__request_t in;
        assert_int_equal(parley__request_decode(buf, len, &in, &arena), 0);
        assert_int_equal(in.n_any_of, 2);
        s_ask(f, &in, &g);
        /* egypt: seqs 1 (phase 0), 5 (phase 1); phase 2: 3, 6. */
        assert_int_equal(g.n, 4);
        assert_int_equal(g.seqs[0], 1);
        assert_int_equal(g.seqs[1], 3);
        assert_int_equal(g.seqs[2], 5);
        assert_int_equal(g.seqs[3], 6);

        /* The filter still applies to every alternative. */
        assert_int_equal(parley__filterbuf_set(&in.filter, &fl), 0);
        s_ask(f, &in, &g);
        assert_int_equal(g.n, 2);
        assert_int_equal(g.seqs[0], 1);
        assert_int_equal(g.seqs[1], 5);
        parley__arena_reset(&arena);
    }
}

/* One step of q's replay or snapshot within a budget of records. */
static int
s_step(fx_t *f, const parley__request_t *q, pd_query_job_t *job,
       uint64_t records, pd_query_answer_t *a)
{
    pd_query_budget_t b = { .records = records };
    int rc = q->op == PARLEY__OP_REPLAY
                 ? pd_query_replay_step(f->q, q, NULL, job, &b, a)
                 : pd_query_snapshot_step(f->q, q, NULL, job, &b, a);
    /* A step never reads more than it was given. */
    assert_true(b.records <= records);
    return rc;
}

/* Steps of `records` each until the answer; returns how many MORE. */
static int
s_steps(fx_t *f, const parley__request_t *q, uint64_t records, s_got_t *g)
{
    pd_query_job_t job = { 0 };
    pd_query_answer_t a;
    int more = 0, rc;
    while ((rc = s_step(f, q, &job, records, &a)) == PD_QUERY_MORE)
        more++;
    assert_int_equal(rc, 0);
    s_decode(f, &a, g);
    pd_query_job_end(&job);
    return more;
}

/*
 * A replay in steps: no empty page is answered for the budget's sake (the
 * job goes on where it stopped), a page with deliveries is answered when
 * the budget runs out, the records looked at add up over the steps to
 * PD_QUERY_SCAN_MAX, and the deadline stops a step as the records do.
 */
static void
test_replay_steps(void **state)
{
    fx_t *f = *state;
    static s_got_t g;
    s_store(f, 4000, "qatar", 1);   /* 1..4000 */
    s_store(f, 1000, "egypt", 1);   /* 4001..5000 */
    parley__request_t *q = s_request(f, PARLEY__OP_REPLAY, "egypt");
    q->from_seq = 1;

    /* 40 steps of 100 find nothing; the 41st fills its 100 records. */
    assert_int_equal(s_steps(f, q, 100, &g), 40);
    assert_int_equal(g.n, 100);
    assert_int_equal(g.seqs[0], 4001);
    assert_int_equal(g.seqs[99], 4100);
    assert_int_equal(g.r.next_seq, 4101);
    assert_false(g.r.done);
    /* With the budget for it, the same page as in one step. */
    assert_int_equal(s_steps(f, q, 5000, &g), 0);
    assert_int_equal(g.n, 1000);
    assert_int_equal(g.seqs[0], 4001);
    assert_true(g.r.done);

    /* Nothing matches: 20,000 looked at over many steps, then the page. */
    s_store(f, 16000, "qatar", 1);  /* 5001..21000 */
    q = s_request(f, PARLEY__OP_REPLAY, "nobody");
    q->from_seq = 401;
    assert_int_equal(s_steps(f, q, 1000, &g), 19);
    assert_int_equal(g.n, 0);
    assert_int_equal(g.r.next_seq, 401 + PD_QUERY_SCAN_MAX);
    assert_false(g.r.done);

    /* Past its deadline a step reads nothing and goes on later. */
    pd_query_job_t job = { 0 };
    pd_query_answer_t a;
    pd_query_budget_t b = { .records = 1000,
                            .deadline_us = parley__mono_us() };
    assert_int_equal(pd_query_replay_step(f->q, q, NULL, &job, &b, &a),
                     PD_QUERY_MORE);
    assert_int_equal(b.records, 0);
    assert_int_equal(job.seq, 401);
    assert_int_equal(job.looked, 0);
    pd_query_job_end(&job);
}

/* Retention passes a replay between its steps: truncated, from there. */
static void
test_replay_step_truncated(void **state)
{
    fx_t *f = *state;
    s_small_retention(f);
    s_store(f, 60, "egypt", 1);
    parley__request_t *q = s_request(f, PARLEY__OP_REPLAY, "nobody");
    q->from_seq = 1;
    pd_query_job_t job = { 0 };
    pd_query_answer_t a;
    assert_int_equal(s_step(f, q, &job, 10, &a), PD_QUERY_MORE);
    assert_int_equal(job.seq, 11);
    for (int i = 0; i < 10; i++)
        s_store(f, 20, "egypt", 1);
    assert_true(pd_storage_retain(f->dp.storage, parley_now_ms()) > 0);
    uint64_t first = pd_storage_first(f->dp.storage);
    assert_true(first > 11);
    assert_int_equal(s_step(f, q, &job, 10, &a), PARLEY_ETRUNCATED);
    assert_int_equal(a.first_seq, first);
    pd_query_job_end(&job);
}

/*
 * A snapshot in steps is the snapshot of the moment it started: the same
 * as in one step then, though an update is committed in between.
 */
static void
test_snapshot_steps(void **state)
{
    fx_t *f = *state;
    static s_got_t g, one;
    parley_update_t u;
    for (uint32_t i = 0; i < 300; i++) {
        char party[16];
        snprintf(party, sizeof(party), "p%u", i / 100);
        dp_update(&u, NULL, party, i % 100, 0);
        s_submit(f, &u);
    }
    s_commit(f);
    parley__request_t *q = s_request(f, PARLEY__OP_SNAPSHOT, NULL);
    pd_query_answer_t a;
    assert_int_equal(pd_query_snapshot(f->q, q, NULL, &a), 0);
    s_decode(f, &a, &one);
    assert_int_equal(one.n, 300);

    pd_query_job_t job = { 0 };
    int more = 0, rc;
    while ((rc = s_step(f, q, &job, 50, &a)) == PD_QUERY_MORE) {
        if (more++ == 2) { /* p0's phase 0 again, mid-snapshot */
            dp_update(&u, NULL, "p0", 0, 0);
            s_submit(f, &u);
            s_commit(f);
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(more, 5); /* the sixth step reads the last 50 */
    s_decode(f, &a, &g);
    pd_query_job_end(&job);
    assert_int_equal(g.n, one.n);
    assert_memory_equal(g.seqs, one.seqs, one.n * sizeof(one.seqs[0]));
    assert_int_equal(g.r.seq, 300);

    /* The next snapshot has the new one instead of seq 1. */
    assert_int_equal(s_steps(f, q, 50, &g), 5);
    assert_int_equal(g.n, 300);
    assert_int_equal(g.seqs[0], 2);
    assert_int_equal(g.seqs[299], 301);
    assert_int_equal(g.r.seq, 301);
}

/* Over PD_QUERY_SNAPSHOT_BYTES of deliveries: unavailable, saying why. */
static void
test_snapshot_too_many_bytes(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    /* About 4.2 KiB each: 2,048 states pass 8 MiB, under 4,096. */
    for (uint32_t i = 0; i < 2048; i++) {
        char party[16];
        snprintf(party, sizeof(party), "p%u", i / 256);
        dp_update(&u, NULL, party, i % 256, 0);
        memset(u.body, 'b', PARLEY_BODY_MAX);
        s_submit(f, &u);
    }
    s_commit(f);
    pd_query_answer_t a;
    parley__request_t *q = s_request(f, PARLEY__OP_SNAPSHOT, NULL);
    assert_int_equal(pd_query_snapshot(f->q, q, NULL, &a),
                     PARLEY_EUNAVAILABLE);
    assert_non_null(strstr(a.detail, "over 8388608 bytes"));
    static s_got_t g;
    s_snapshot(f, "p3", &g);
    assert_int_equal(g.n, 256);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_pages, s_setup_nosync,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_replay_budget_and_scan,
                                        s_setup_nosync, s_teardown),
        cmocka_unit_test_setup_teardown(test_replay_truncated, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_entries, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_too_large,
                                        s_setup_nosync, s_teardown),
        cmocka_unit_test_setup_teardown(test_any_of, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replay_steps, s_setup_nosync,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_replay_step_truncated, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_steps, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_too_many_bytes,
                                        s_setup_nosync, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
