/*
 * test_reads.c - the read scheduler without sockets: connections take
 * turns, a read that spends its budget keeps its place, queues are
 * bounded, reads wait while their connection (or everyone) leaves too
 * many reply bytes unread, stats and ping never wait, one snapshot runs
 * at a time, reads of a connection that is gone are dropped, and the
 * counters say so. Reply buffers are freed as libzmq frees them: through
 * pd_reads_reply_free().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "datapath.h"
#include "query.h"
#include "reads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CONN_BYTES (1u << 20)
#define S_TOTAL_BYTES (5u << 19) /* 2.5 MiB */

typedef struct {
    pd_stats_t *stats;
    pd_reads_t *r;
} fx_t;

static int
s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    pd_reads_limits_t lim = { .conn_reply_bytes = S_CONN_BYTES,
                              .total_reply_bytes = S_TOTAL_BYTES };
    int err;
    if (f == NULL || (f->stats = pd_stats_new()) == NULL
        || (f->r = pd_reads_new(&lim, f->stats, &err)) == NULL)
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fx_t *f = *state;
    pd_reads_destroy(&f->r);
    pd_stats_destroy(&f->stats);
    free(f);
    return 0;
}

static pd_reads_conn_t *
s_conn(fx_t *f, const char *name)
{
    pd_reads_conn_t *c = pd_reads_conn(f->r, name, strlen(name));
    assert_non_null(c);
    return c;
}

/* Queue a read whose request bytes are its tag (checked when served). */
static int
s_push(fx_t *f, pd_reads_conn_t *c, parley__op_t op, const char *tag)
{
    return pd_reads_push(f->r, c, (int)op, tag, strlen(tag) + 1, NULL);
}

/* The tag of the next read served, and finish it; "" if none. */
static const char *
s_serve(fx_t *f)
{
    static char tag[64];
    pd_reads_conn_t *c;
    pd_read_t *rd = pd_reads_next(f->r, &c);
    if (rd == NULL)
        return "";
    snprintf(tag, sizeof(tag), "%s", (const char *)rd->bytes);
    pd_reads_finish(f->r, c);
    return tag;
}

/* A reply of len bytes charged to c as kind; free with s_free(). */
static void *
s_reply(fx_t *f, pd_reads_conn_t *c, pd_reads_kind_t kind, size_t len)
{
    void *data = malloc(len), *hint;
    assert_non_null(data);
    memset(data, 0x5a, len);
    void *buf = pd_reads_reply_new(f->r, c, kind, data, len, 5, &hint);
    assert_non_null(buf);
    assert_memory_equal(buf, data, len);
    free(data);
    return hint;
}

static void
s_free(void *hint)
{
    pd_reads_reply_free(NULL, hint);
}

static uint64_t
s_stat(fx_t *f, pd_stat_t id)
{
    return pd_stats_get(f->stats, id);
}

/* ---------------------------------------------------------------- tests */

/* Identities are 1..255 bytes; each names one account. */
static void
test_connections(void **state)
{
    fx_t *f = *state;
    uint8_t id[256];
    memset(id, 7, sizeof(id));
    assert_null(pd_reads_conn(f->r, id, 0));
    assert_null(pd_reads_conn(f->r, id, 256));
    pd_reads_conn_t *c = pd_reads_conn(f->r, id, 255);
    assert_non_null(c);
    assert_ptr_equal(pd_reads_conn(f->r, id, 255), c);
    assert_ptr_not_equal(pd_reads_conn(f->r, id, 254), c);
    size_t len;
    assert_memory_equal(pd_reads_conn_id(c, &len), id, 255);
    assert_int_equal(len, 255);
}

/* Connections take turns, one read each; each one's reads in order. */
static void
test_round_robin(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a"), *b = s_conn(f, "b"),
                    *c = s_conn(f, "c");
    const char *const want[] = { "a1", "b1", "c1", "a2", "c2", "a3", "a4" };
    assert_int_equal(s_push(f, a, PARLEY__OP_REPLAY, "a1"), 0);
    assert_int_equal(s_push(f, a, PARLEY__OP_PING, "a2"), 0);
    assert_int_equal(s_push(f, a, PARLEY__OP_SNAPSHOT, "a3"), 0);
    assert_int_equal(s_push(f, a, PARLEY__OP_STATS, "a4"), 0);
    assert_int_equal(s_push(f, b, PARLEY__OP_REPLAY, "b1"), 0);
    assert_int_equal(s_push(f, c, PARLEY__OP_REPLAY, "c1"), 0);
    assert_int_equal(s_push(f, c, PARLEY__OP_REPLAY, "c2"), 0);
    assert_true(pd_reads_ready(f->r));
    assert_int_equal(s_stat(f, PD_STAT_READS_QUEUED), 7);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(s_serve(f), want[i]);
    assert_string_equal(s_serve(f), "");
    assert_false(pd_reads_queued(f->r));
    assert_false(pd_reads_ready(f->r));
    assert_int_equal(s_stat(f, PD_STAT_READS_QUEUED), 0);
}

/* A read that spends the budget keeps its place; the others go first. */
static void
test_yield(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a"), *b = s_conn(f, "b"), *c;
    assert_int_equal(s_push(f, a, PARLEY__OP_REPLAY, "long"), 0);
    assert_int_equal(s_push(f, a, PARLEY__OP_REPLAY, "after"), 0);
    assert_int_equal(s_push(f, b, PARLEY__OP_REPLAY, "short"), 0);
    pd_read_t *rd = pd_reads_next(f->r, &c);
    assert_string_equal((const char *)rd->bytes, "long");
    assert_int_equal(s_stat(f, PD_STAT_READS_QUEUED), 2); /* not itself */
    rd->job.seq = 77; /* where it stopped */
    pd_reads_yield(f->r, c);
    assert_string_equal(s_serve(f), "short");
    rd = pd_reads_next(f->r, &c);
    assert_string_equal((const char *)rd->bytes, "long");
    assert_int_equal(rd->job.seq, 77);
    pd_reads_finish(f->r, c);
    assert_string_equal(s_serve(f), "after");
}

/* 1,024 reads or 256 KiB per connection; more are refused and counted.
 * The first read is taken whatever its size. */
static void
test_queue_limits(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a"), *b = s_conn(f, "b");
    for (int i = 0; i < PD_READS_CONN_REQUESTS; i++)
        assert_int_equal(s_push(f, a, PARLEY__OP_PING, "p"), 0);
    assert_int_equal(s_push(f, a, PARLEY__OP_PING, "p"), -ENOBUFS);
    assert_int_equal(s_stat(f, PD_STAT_READS_REFUSED), 1);
    /* Another connection is not affected. */
    assert_int_equal(s_push(f, b, PARLEY__OP_PING, "p"), 0);
    pd_reads_drop(f->r, a);
    pd_reads_drop(f->r, b);

    static uint8_t big[300 * 1024];
    memset(big, 1, sizeof(big));
    assert_int_equal(pd_reads_push(f->r, a, PARLEY__OP_REPLAY, big,
                                   sizeof(big), NULL),
                     0);
    assert_int_equal(pd_reads_push(f->r, a, PARLEY__OP_REPLAY, big, 16, NULL),
                     -ENOBUFS);
    pd_reads_drop(f->r, a);
    int n = 0;
    while (pd_reads_push(f->r, a, PARLEY__OP_REPLAY, big, 2000, NULL) == 0)
        n++;
    assert_true(n > 100 && n < PD_READS_CONN_REQUESTS);
    assert_true((size_t)n * 2000 <= PD_READS_CONN_REQUEST_BYTES);

    /* The key is kept, and must fit. */
    char key[PD_READS_KEY_MAX + 1];
    memset(key, 'k', sizeof(key));
    key[PD_READS_KEY_MAX] = '\0';
    assert_int_equal(pd_reads_push(f->r, b, PARLEY__OP_PING, "p", 2, key),
                     -ENAMETOOLONG);
    key[PD_READS_KEY_MAX - 1] = '\0';
    assert_int_equal(pd_reads_push(f->r, b, PARLEY__OP_PING, "p", 2, key), 0);
    pd_reads_conn_t *c;
    pd_read_t *rd = pd_reads_next(f->r, &c);
    assert_ptr_equal(c, a); /* a's turn */
    pd_reads_finish(f->r, c);
    rd = pd_reads_next(f->r, &c);
    assert_ptr_equal(c, b);
    assert_true(rd->has_key);
    assert_string_equal(rd->key, key);
}

/*
 * A connection's replays wait while its replies are unread beyond its
 * share, everyone's while all replies pass the total; stats and ping
 * never wait; reads go on as the replies are freed.
 */
static void
test_held_for_memory(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a"), *b = s_conn(f, "b"),
                    *c = s_conn(f, "c");
    void *ra = s_reply(f, a, PD_READS_REPLY_READ, S_CONN_BYTES);
    assert_int_equal(s_push(f, a, PARLEY__OP_REPLAY, "a-replay"), 0);
    assert_int_equal(s_push(f, a, PARLEY__OP_PING, "a-ping"), 0);
    assert_int_equal(s_push(f, b, PARLEY__OP_REPLAY, "b-replay"), 0);
    assert_true(s_stat(f, PD_STAT_REPLY_BYTES) > S_CONN_BYTES);
    assert_string_equal(s_serve(f), "b-replay");
    assert_string_equal(s_serve(f), ""); /* a-replay waits, a-ping behind */
    assert_true(pd_reads_queued(f->r));
    assert_false(pd_reads_ready(f->r));
    assert_int_equal(s_stat(f, PD_STAT_READS_HELD), 1);
    assert_string_equal(s_serve(f), ""); /* counted once per read */
    assert_int_equal(s_stat(f, PD_STAT_READS_HELD), 1);
    s_free(ra);
    assert_true(pd_reads_ready(f->r));
    assert_string_equal(s_serve(f), "a-replay");
    assert_string_equal(s_serve(f), "a-ping");
    assert_int_equal(s_stat(f, PD_STAT_REPLY_BYTES), 0);

    /* The total: three connections under their share, over it together. */
    void *r1 = s_reply(f, a, PD_READS_REPLY_READ, S_CONN_BYTES - 1000);
    void *r2 = s_reply(f, b, PD_READS_REPLY_READ, S_CONN_BYTES - 1000);
    void *r3 = s_reply(f, c, PD_READS_REPLY_READ, S_CONN_BYTES - 1000);
    assert_int_equal(s_push(f, a, PARLEY__OP_SNAPSHOT, "a-snap"), 0);
    assert_int_equal(s_push(f, b, PARLEY__OP_STATS, "b-stats"), 0);
    assert_string_equal(s_serve(f), "b-stats");
    assert_string_equal(s_serve(f), "");
    s_free(r3); /* c's replies read: the total is under again */
    assert_string_equal(s_serve(f), "a-snap");
    s_free(r1);
    s_free(r2);

    /* PD_READS_CONN_MESSAGES replies, however small, hold it too. */
    void *small[PD_READS_CONN_MESSAGES];
    for (int i = 0; i < PD_READS_CONN_MESSAGES; i++)
        small[i] = s_reply(f, a, PD_READS_REPLY_READ, 10);
    assert_int_equal(s_push(f, a, PARLEY__OP_REPLAY, "a-more"), 0);
    assert_string_equal(s_serve(f), "");
    s_free(small[0]);
    assert_string_equal(s_serve(f), "a-more");
    for (int i = 1; i < PD_READS_CONN_MESSAGES; i++)
        s_free(small[i]);
    assert_int_equal(s_stat(f, PD_STAT_REPLY_BYTES), 0);
}

/* Acks, rejects, stats and ping: dropped beyond PD_READS_OTHER_BYTES
 * unread on one connection. */
static void
test_other_replies(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a"), *b = s_conn(f, "b");
    void *held[PD_READS_OTHER_BYTES / 1000 + 1];
    size_t n = 0;
    while (pd_reads_may_send(a)) {
        assert_true(n < sizeof(held) / sizeof(held[0]));
        held[n++] = s_reply(f, a, PD_READS_REPLY_OTHER, 1000);
    }
    assert_true(n * 1000 >= PD_READS_OTHER_BYTES / 2);
    assert_true(pd_reads_may_send(b));
    /* Read replies do not count against it. */
    void *r = s_reply(f, b, PD_READS_REPLY_READ, 2 * PD_READS_OTHER_BYTES);
    assert_true(pd_reads_may_send(b));
    s_free(r);
    s_free(held[0]);
    assert_true(pd_reads_may_send(a));
    for (size_t i = 1; i < n; i++)
        s_free(held[i]);
    pd_reads_reply_dropped(f->r);
    assert_int_equal(s_stat(f, PD_STAT_REPLIES_DROPPED), 1);
}

/* Reads of a connection that is gone are dropped and counted; a cut
 * drops every read. */
static void
test_drop(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a"), *b = s_conn(f, "b");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s_push(f, a, PARLEY__OP_REPLAY, "a"), 0);
        assert_int_equal(s_push(f, b, PARLEY__OP_REPLAY, "b"), 0);
    }
    pd_reads_drop(f->r, a);
    assert_int_equal(s_stat(f, PD_STAT_READS_DROPPED), 3);
    assert_string_equal(s_serve(f), "b");
    assert_string_equal(s_serve(f), "b");
    assert_int_equal(s_push(f, a, PARLEY__OP_REPLAY, "a"), 0);
    pd_reads_drop_all(f->r);
    assert_int_equal(s_stat(f, PD_STAT_READS_DROPPED), 5);
    assert_false(pd_reads_queued(f->r));
    assert_string_equal(s_serve(f), "");
}

/* A read answered after waiting a whole slice counts as deferred; a
 * slice that spent its budget with reads still ready counts as full. */
static void
test_counters(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a");
    assert_int_equal(s_push(f, a, PARLEY__OP_PING, "1"), 0);
    assert_int_equal(s_push(f, a, PARLEY__OP_PING, "2"), 0);
    pd_reads_slice_begin(f->r);
    assert_string_equal(s_serve(f), "1"); /* in the first slice */
    pd_reads_slice_end(f->r, true);
    assert_int_equal(s_stat(f, PD_STAT_READ_SLICES_FULL), 1);
    pd_reads_slice_begin(f->r);
    assert_string_equal(s_serve(f), "2"); /* a slice later */
    pd_reads_slice_end(f->r, true); /* nothing left: not full */
    assert_int_equal(s_stat(f, PD_STAT_READ_SLICES_FULL), 1);
    assert_int_equal(s_stat(f, PD_STAT_READS_DEFERRED), 1);
}

/*
 * Accounts are freed once nothing is queued or unread (at most every
 * 100 ms); a reply still held keeps its account alive until libzmq
 * frees it (ASan checks the free touches no freed account).
 */
static void
test_tidy(void **state)
{
    fx_t *f = *state;
    pd_reads_conn_t *a = s_conn(f, "a");
    void *r = s_reply(f, a, PD_READS_REPLY_OTHER, 100);
    s_conn(f, "b"); /* idle */
    pd_reads_slice_begin(f->r);
    pd_reads_slice_end(f->r, false);
    s_free(r);
    struct timespec ts = { 0, 120 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    pd_reads_slice_begin(f->r);
    pd_reads_slice_end(f->r, false); /* a goes now */
    assert_int_equal(s_stat(f, PD_STAT_REPLY_BYTES), 0);
    a = s_conn(f, "a");
    assert_true(pd_reads_may_send(a));
}

/*
 * One snapshot at a time: a snapshot that spent its budget holds the
 * place until it is answered; another connection's snapshot waits, its
 * replays do not.
 */
static void
test_one_snapshot(void **state)
{
    fx_t *f = *state;
    dp_t dp;
    int err;
    assert_int_equal(dp_setup(&dp, false), 0);
    pd_query_t *q = pd_query_new(dp.storage, NULL, dp.cfg.max_message_bytes,
                                 &err);
    assert_non_null(q);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    for (uint32_t i = 0; i < 10; i++) {
        dp_update(&u, NULL, "egypt", i, i + 1);
        size_t len = dp_sign(dp.keys[0], &u, env);
        assert_true(len > 0);
        pd_storage_update_t su = { .env = env, .len = len,
                                   .signer = dp.pk[0], .update = &u,
                                   .received_at = parley_now_ms() };
        pd_storage_done_t done;
        assert_int_equal(pd_storage_submit(dp.storage, &su, &done),
                         PD_STORAGE_DONE);
    }
    assert_int_equal(pd_storage_commit(dp.storage), 0);
    pd_storage_record_t rec;
    while (pd_storage_applied(dp.storage, &rec))
        ;

    pd_reads_conn_t *a = s_conn(f, "a"), *b = s_conn(f, "b"), *c;
    assert_int_equal(s_push(f, a, PARLEY__OP_SNAPSHOT, "a-snap"), 0);
    assert_int_equal(s_push(f, b, PARLEY__OP_SNAPSHOT, "b-snap"), 0);
    assert_int_equal(s_push(f, b, PARLEY__OP_REPLAY, "b-replay"), 0);
    static parley__request_t req = { .request_id = 1,
                                     .op = PARLEY__OP_SNAPSHOT };
    pd_query_answer_t ans;
    pd_query_budget_t budget = { .records = 3 };
    pd_read_t *rd = pd_reads_next(f->r, &c);
    assert_ptr_equal(c, a);
    assert_int_equal(pd_query_snapshot_step(q, &req, NULL, &rd->job, &budget,
                                            &ans),
                     PD_QUERY_MORE);
    pd_reads_yield(f->r, c);
    /* b's snapshot waits: nothing of b's is next, as its head is that. */
    rd = pd_reads_next(f->r, &c);
    assert_ptr_equal(c, a);
    budget.records = 100;
    assert_int_equal(pd_query_snapshot_step(q, &req, NULL, &rd->job, &budget,
                                            &ans),
                     0);
    pd_reads_finish(f->r, c);
    assert_string_equal(s_serve(f), "b-snap");
    assert_string_equal(s_serve(f), "b-replay");

    /* A started snapshot dropped with its connection frees the place. */
    assert_int_equal(s_push(f, a, PARLEY__OP_SNAPSHOT, "a-snap"), 0);
    assert_int_equal(s_push(f, b, PARLEY__OP_SNAPSHOT, "b-snap"), 0);
    rd = pd_reads_next(f->r, &c);
    budget.records = 3;
    assert_int_equal(pd_query_snapshot_step(q, &req, NULL, &rd->job, &budget,
                                            &ans),
                     PD_QUERY_MORE);
    pd_reads_yield(f->r, c);
    pd_reads_drop(f->r, a);
    assert_string_equal(s_serve(f), "b-snap");

    pd_query_destroy(&q);
    dp_teardown(&dp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connections, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_round_robin, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_yield, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_queue_limits, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_held_for_memory, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_other_replies, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_drop, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_counters, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tidy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_one_snapshot, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
