/*
 * test_replica.c - the local log as a cluster node's replica (embedded.h's
 * replica side, pd_store_start_at(), void records) and the log identity
 * of a stream (cluster.h). What needs a real NATS cluster is in
 * tests/integration/test_cluster.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster.h"
#include "codec.h"
#include "datapath.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
s_setup(void **state)
{
    dp_t *d = calloc(1, sizeof(*d));
    if (d == NULL || dp_setup(d, false) < 0)
        return -1;
    *state = d;
    return 0;
}

static int
s_teardown(void **state)
{
    dp_teardown(*state);
    free(*state);
    return 0;
}

/* The current state holds exactly two entries, held by seqs a and b. */
static void
s_expect_state(const pd_storage_t *s, uint64_t a, uint64_t b)
{
    pd_entry_t *e = NULL;
    int n = pd_storage_latest(s, NULL, NULL, &e);
    assert_int_equal(n, 2);
    bool seen_a = false, seen_b = false;
    for (int i = 0; i < n; i++) {
        seen_a |= e[i].seq == a;
        seen_b |= e[i].seq == b;
    }
    free(e);
    assert_true(seen_a);
    assert_true(seen_b);
}

/* A void record names its reason and key id, and decodes as nothing a
 * reader takes: not an envelope, so replay and snapshot pass over it. */
static void
test_void_record(void **state)
{
    (void)state;
    uint8_t v[PD_EMBEDDED_VOID_BYTES];
    int reason = 0;
    char id[PARLEY_KEYID_CHARS + 1];
    pd_embedded_void_make(v, PARLEY_EBADSIG, "0123456789abcdef");
    assert_true(pd_embedded_void_parse(v, sizeof(v), &reason, id));
    assert_int_equal(reason, PARLEY_EBADSIG);
    assert_string_equal(id, "0123456789abcdef");
    pd_embedded_void_make(v, PARLEY_ETRUNCATED, NULL);
    assert_true(pd_embedded_void_parse(v, sizeof(v), &reason, id));
    assert_int_equal(reason, PARLEY_ETRUNCATED);
    assert_string_equal(id, "----------------");
    pd_embedded_void_make(v, -5, "short");
    assert_true(pd_embedded_void_parse(v, sizeof(v), &reason, NULL));
    assert_int_equal(reason, 0); /* not a parley code: unknown */
    /* Not a void record: other length, other start. */
    assert_false(pd_embedded_void_parse(v, sizeof(v) - 1, NULL, NULL));
    v[0] = 0x0a;
    assert_false(pd_embedded_void_parse(v, sizeof(v), NULL, NULL));
    v[0] = 0x00;

    uint8_t arena_buf[4096];
    parley__arena_t arena;
    parley__envelope_t env;
    parley__arena_init(&arena, arena_buf, sizeof(arena_buf));
    assert_int_equal(parley__envelope_decode(v, sizeof(v), &env, &arena),
                     PARLEY_EMALFORMED);
    parley__arena_reset(&arena);
}

/* The replica side of the embedded storage: records at given seqs, void
 * records in between, what applied() hands out, what a restart finds. */
static void
test_put_and_void(void **state)
{
    dp_t *d = *state;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    parley_update_t u;
    dp_update(&u, NULL, "egypt", 1, 100);
    size_t len = dp_sign(d->keys[0], &u, env);
    assert_true(len > 0);

    /* An empty log starts where the stream does. */
    assert_int_equal(pd_embedded_next_seq(d->storage), 1);
    assert_int_equal(pd_embedded_start_at(d->storage, 41), 0);
    assert_int_equal(pd_embedded_next_seq(d->storage), 41);
    assert_int_equal(pd_storage_head(d->storage), 40);
    assert_int_equal(pd_storage_first(d->storage), 0);
    /* Only the next seq goes in. */
    assert_int_equal(pd_embedded_put(d->storage, 42, 1000, env, len,
                                     d->pk[0], &u),
                     -EINVAL);
    assert_int_equal(pd_embedded_put(d->storage, 41, 1000, env, len,
                                     d->pk[0], &u),
                     0);
    assert_int_equal(pd_embedded_put_void(d->storage, 42, 1001,
                                          PARLEY_EREPLAY, NULL),
                     0);
    dp_update(&u, NULL, "qatar", 1, 101);
    size_t len2 = dp_sign(d->keys[0], &u, env + len);
    assert_int_equal(pd_embedded_put(d->storage, 43, 1002, env + len, len2,
                                     d->pk[0], &u),
                     0);
    assert_int_equal(pd_storage_commit(d->storage), 0);
    /* applied(): the two updates, and between them the void record's seq
     * as absent (a leaf of the tree, no update). */
    pd_storage_record_t rec;
    assert_true(pd_storage_applied(d->storage, &rec));
    assert_int_equal(rec.seq, 41);
    assert_int_equal(rec.received_at, 1000);
    assert_false(rec.absent);
    assert_int_equal(rec.len, len);
    assert_true(pd_storage_applied(d->storage, &rec));
    assert_int_equal(rec.seq, 42);
    assert_true(rec.absent);
    assert_null(rec.env);
    assert_int_equal(rec.len, 0);
    assert_true(pd_storage_applied(d->storage, &rec));
    assert_int_equal(rec.seq, 43);
    assert_false(rec.absent);
    assert_false(pd_storage_applied(d->storage, &rec));
    assert_int_equal(pd_storage_head(d->storage), 43);
    assert_int_equal(pd_storage_first(d->storage), 41);
    assert_int_equal(pd_embedded_voids(d->storage), 1);
    /* The void record takes its place in the state, holding nothing:
     * what came before it is still there. */
    s_expect_state(d->storage, 41, 43);
    /* Check 8 against the replica. */
    uint64_t orig = 0, last = 0;
    assert_int_equal(pd_embedded_check(d->storage, d->pk[0], 100, env, len,
                                       &orig, &last),
                     0);
    assert_int_equal(orig, 41);
    assert_int_equal(pd_embedded_check(d->storage, d->pk[0], 100, env + len,
                                       len2, &orig, &last),
                     PARLEY_EREPLAY);
    assert_int_equal(last, 101);
    assert_int_equal(pd_embedded_check(d->storage, d->pk[0], 102, env, len,
                                       &orig, &last),
                     1);
    uint64_t sseq = 0, seq = 0;
    assert_true(pd_embedded_signer_last(d->storage, d->pk[0], &sseq, &seq));
    assert_int_equal(sseq, 101);
    assert_int_equal(seq, 43);
    assert_false(pd_embedded_signer_last(d->storage, d->pk[1], &sseq, &seq));
    /* A void record reads back as itself. */
    uint8_t buf[256];
    int64_t at = 0;
    size_t got = 0;
    assert_int_equal(pd_storage_read(d->storage, 42, &at, buf, sizeof(buf),
                                     &got),
                     0);
    int reason = 0;
    assert_true(pd_embedded_void_parse(buf, got, &reason, NULL));
    assert_int_equal(reason, PARLEY_EREPLAY);
    assert_int_equal(at, 1001);
    /* No second start. */
    assert_int_equal(pd_embedded_start_at(d->storage, 100), -EEXIST);

    /* A restart finds the same. */
    assert_int_equal(dp_open_storage(d), 0);
    assert_int_equal(pd_storage_head(d->storage), 43);
    assert_int_equal(pd_storage_first(d->storage), 41);
    assert_int_equal(pd_embedded_voids(d->storage), 1);
    assert_int_equal(pd_embedded_next_seq(d->storage), 44);
    assert_int_equal(pd_embedded_check(d->storage, d->pk[0], 100, env, len,
                                       &orig, &last),
                     0);
    assert_int_equal(orig, 41);
    s_expect_state(d->storage, 41, 43);
}

/* The log id: the same for the same stream, another for another. */
static void
test_log_id(void **state)
{
    (void)state;
    uint8_t a[16], b[16], c[16], zero[16] = { 0 };
    pd_cluster_log_id("PARLEY", 1700000000123456789LL, a);
    pd_cluster_log_id("PARLEY", 1700000000123456789LL, b);
    assert_memory_equal(a, b, 16);
    assert_memory_not_equal(a, zero, 16);
    pd_cluster_log_id("PARLEY", 1700000000123456790LL, c);
    assert_memory_not_equal(a, c, 16);
    pd_cluster_log_id("PARLEY2", 1700000000123456789LL, c);
    assert_memory_not_equal(a, c, 16);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_void_record),
        cmocka_unit_test_setup_teardown(test_put_and_void, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_log_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
