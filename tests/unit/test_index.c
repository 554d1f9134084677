/*
 * test_index.c - parleyd's hash table and the indexes built on it:
 * signer seqs, dedupe of envelope bytes, and the latest-state rules for
 * updates, corrections and retractions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "index.h"
#include "parley.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================ hash table */

static void
s_key(uint8_t key[12], uint32_t n)
{
    memset(key, 0xA5, 12);
    memcpy(key, &n, sizeof(n));
}

static void
test_hash_basic(void **state)
{
    (void)state;
    pd_hash_t *h = pd_hash_new(12);
    assert_non_null(h);
    uint8_t k[12];
    uint64_t v = 0;
    s_key(k, 1);
    assert_false(pd_hash_get(h, k, &v));
    assert_false(pd_hash_del(h, k));
    assert_int_equal(pd_hash_put(h, k, 10), 0);
    assert_true(pd_hash_get(h, k, &v));
    assert_int_equal(v, 10);
    assert_int_equal(pd_hash_put(h, k, 11), 0); /* overwrite */
    assert_true(pd_hash_get(h, k, NULL));
    assert_true(pd_hash_get(h, k, &v));
    assert_int_equal(v, 11);
    assert_int_equal(pd_hash_count(h), 1);
    s_key(k, 2);
    assert_false(pd_hash_get(h, k, &v));
    s_key(k, 1);
    assert_true(pd_hash_del(h, k));
    assert_false(pd_hash_get(h, k, &v));
    assert_int_equal(pd_hash_count(h), 0);
    pd_hash_destroy(&h);
    assert_null(h);
    pd_hash_destroy(&h); /* NULL is fine */
    pd_hash_destroy(NULL);

    errno = 0;
    assert_null(pd_hash_new(0));
    assert_int_equal(errno, EINVAL);
    assert_null(pd_hash_new(256));
}

/*
 * Random puts, overwrites and deletes over a small key space, checked
 * against a plain array after every step. Deletes shift entries back
 * across probe runs (and around the end of the table), which is where an
 * open-addressing table breaks if it breaks.
 */
static void
test_hash_against_model(void **state)
{
    (void)state;
    enum { KEYS = 3000, STEPS = 200000 };
    uint64_t *model = calloc(KEYS, sizeof(uint64_t)); /* 0 = absent */
    assert_non_null(model);
    pd_hash_t *h = pd_hash_new(12);
    assert_non_null(h);
    size_t count = 0;
    uint32_t rnd = 12345;
    uint8_t k[12];
    for (uint32_t step = 1; step <= STEPS; step++) {
        rnd = rnd * 1103515245u + 12345u;
        uint32_t n = (rnd >> 8) % KEYS;
        s_key(k, n);
        if ((rnd >> 4) % 3 == 0) {
            assert_int_equal(pd_hash_del(h, k), model[n] != 0);
            count -= model[n] != 0;
            model[n] = 0;
        } else {
            assert_int_equal(pd_hash_put(h, k, step), 0);
            count += model[n] == 0;
            model[n] = step;
        }
        assert_int_equal(pd_hash_count(h), count);
        if (step % 10007 == 0) {
            for (uint32_t i = 0; i < KEYS; i++) {
                uint64_t v = 0;
                s_key(k, i);
                assert_int_equal(pd_hash_get(h, k, &v), model[i] != 0);
                if (model[i] != 0)
                    assert_int_equal(v, model[i]);
            }
        }
    }
    pd_hash_destroy(&h);
    free(model);
}

static bool
s_is_odd(uint64_t v, void *ctx)
{
    (*(int *)ctx)++;
    return v % 2 == 1;
}

static void
s_sum(const void *key, uint64_t val, void *ctx)
{
    (void)key;
    *(uint64_t *)ctx += val;
}

static void
test_hash_remove_if_and_foreach(void **state)
{
    (void)state;
    enum { N = 5000 };
    pd_hash_t *h = pd_hash_new(12);
    assert_non_null(h);
    uint8_t k[12];
    /* Reserved room: puts of new keys cannot fail. */
    assert_int_equal(pd_hash_reserve(h, N), 0);
    for (uint32_t i = 0; i < N; i++) {
        s_key(k, i);
        assert_int_equal(pd_hash_put(h, k, i), 0);
    }
    uint64_t sum = 0;
    pd_hash_foreach(h, s_sum, &sum);
    assert_int_equal(sum, (uint64_t)N * (N - 1) / 2);

    int calls = 0;
    assert_int_equal(pd_hash_remove_if(h, s_is_odd, &calls), N / 2);
    assert_true(calls >= N);
    assert_int_equal(pd_hash_count(h), N / 2);
    for (uint32_t i = 0; i < N; i++) {
        uint64_t v;
        s_key(k, i);
        assert_int_equal(pd_hash_get(h, k, &v), i % 2 == 0);
        if (i % 2 == 0)
            assert_int_equal(v, i);
    }
    sum = 0;
    pd_hash_foreach(h, s_sum, &sum);
    assert_int_equal(sum, (uint64_t)(N / 2) * (N / 2 - 1)); /* 0+2+...+N-2 */
    pd_hash_destroy(&h);
}

/* ================================================================ indexes */

static const uint8_t s_signer_a[PARLEY_PUBLICKEY_BYTES] = { 0xAA };
static const uint8_t s_signer_b[PARLEY_PUBLICKEY_BYTES] = { 0xBB };

/* An update in negotiation "gaza-ceasefire" at phase for parties. */
static parley_update_t *
s_update(parley_kind_t kind, uint32_t phase, uint64_t signer_seq,
         const char *parties, const uint64_t *refs, size_t n_refs)
{
    static parley_update_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.negotiation, "gaza-ceasefire");
    char list[256];
    snprintf(list, sizeof(list), "%s", parties);
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        strcpy(u.parties[u.n_parties++], p);
    u.phase = phase;
    u.status = PARLEY_STATUS_AGREED_IN_PRINCIPLE;
    u.kind = kind;
    for (size_t i = 0; i < n_refs; i++)
        u.references[u.n_references++] = refs[i];
    strcpy(u.headline, "headline");
    u.issued_at = 1700000000000;
    u.signer_seq = signer_seq;
    return &u;
}

/* Add with the seq as stand-in envelope bytes (unique per record). */
static void
s_add(pd_index_t *idx, uint64_t seq, const uint8_t *signer,
      const parley_update_t *u)
{
    char env[32];
    int n = snprintf(env, sizeof(env), "envelope-%llu",
                     (unsigned long long)seq);
    assert_int_equal(pd_index_reserve(idx), 0);
    pd_index_add(idx, seq, signer, u, env, (size_t)n);
}

/* Assert the latest-state seqs equal want[0..n). */
static void
s_expect_latest(pd_index_t *idx, const uint64_t *want, size_t n)
{
    uint64_t *got = NULL;
    int count = pd_index_latest_seqs(idx, &got);
    assert_int_equal(count, (int)n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
    free(got);
}

static void
test_latest_updates(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_expect_latest(idx, NULL, 0);

    /* 1: israel+hamas phase 1 */
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 10,
                                       "israel,hamas", NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 1 }, 1);
    /* 2: hamas phase 1 supersedes 1 for hamas only */
    s_add(idx, 2, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 11, "hamas",
                                       NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 1, 2 }, 2);
    /* 3: another phase is another key */
    s_add(idx, 3, s_signer_b, s_update(PARLEY_KIND_UPDATE, 2, 5, "hamas",
                                       NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 1, 2, 3 }, 3);
    /* 4: israel phase 1 again: 1 no longer holds any key */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 12, "israel",
                                       NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 2, 3, 4 }, 3);

    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.latest, 3);   /* israel/1, hamas/1, hamas/2 */
    assert_int_equal(st.signers, 2);
    assert_int_equal(st.dedupe, 4);
    pd_index_destroy(&idx);
    assert_null(idx);
}

static void
test_latest_correction(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 1,
                                       "israel,hamas", NULL, 0));
    s_add(idx, 2, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 2, "hamas",
                                       NULL, 0));
    /* 3 corrects 1 (which still holds israel/1) with a different key set:
     * israel/1 loses 1, and 3 takes egypt/1. */
    s_add(idx, 3, s_signer_a, s_update(PARLEY_KIND_CORRECTION, 1, 3, "egypt",
                                       (uint64_t[]){ 1 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 2, 3 }, 2);
    /* A correction of a seq that holds no key anymore only sets its own. */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_CORRECTION, 1, 4,
                                       "hamas", (uint64_t[]){ 1 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 3, 4 }, 2);
    /* Correcting several at once. */
    s_add(idx, 5, s_signer_a, s_update(PARLEY_KIND_CORRECTION, 1, 5, "qatar",
                                       (uint64_t[]){ 3, 4 }, 2));
    s_expect_latest(idx, (uint64_t[]){ 5 }, 1);
    pd_index_destroy(&idx);
}

static void
test_latest_retraction(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 1, "hamas",
                                       NULL, 0));
    s_add(idx, 2, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 2,
                                       "hamas,israel", NULL, 0));
    s_add(idx, 3, s_signer_a, s_update(PARLEY_KIND_UPDATE, 2, 3, "us", NULL,
                                       0));
    s_expect_latest(idx, (uint64_t[]){ 2, 3 }, 2);
    /* Retracting 2 empties hamas/1 and israel/1; 1 is NOT restored. */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_RETRACTION, 1, 4, "hamas",
                                       (uint64_t[]){ 2 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 3 }, 1);
    /* Retracting something that holds no key changes nothing; the
     * retraction itself never becomes state. */
    s_add(idx, 5, s_signer_a, s_update(PARLEY_KIND_RETRACTION, 2, 5, "us",
                                       (uint64_t[]){ 1 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 3 }, 1);
    s_add(idx, 6, s_signer_a, s_update(PARLEY_KIND_RETRACTION, 2, 6, "us",
                                       (uint64_t[]){ 3 }, 1));
    s_expect_latest(idx, NULL, 0);
    pd_index_destroy(&idx);
}

static void
test_signers_and_dedupe(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    uint64_t last = 0;
    assert_false(pd_index_signer_last(idx, s_signer_a, &last));
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 100, "hamas",
                                       NULL, 0));
    s_add(idx, 2, s_signer_b, s_update(PARLEY_KIND_UPDATE, 1, 7, "hamas",
                                       NULL, 0));
    s_add(idx, 3, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 200, "hamas",
                                       NULL, 0));
    assert_true(pd_index_signer_last(idx, s_signer_a, &last));
    assert_int_equal(last, 200);
    assert_true(pd_index_signer_last(idx, s_signer_b, &last));
    assert_int_equal(last, 7);
    /* A lower signer_seq (as from the log of an older run) never lowers it */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 150, "hamas",
                                       NULL, 0));
    assert_true(pd_index_signer_last(idx, s_signer_a, &last));
    assert_int_equal(last, 200);

    assert_int_equal(pd_index_dedupe_lookup(idx, "envelope-3", 10), 3);
    assert_int_equal(pd_index_dedupe_lookup(idx, "envelope-9", 10), 0);
    assert_int_equal(pd_index_dedupe_lookup(idx, "envelope-3x", 11), 0);

    /* Retention dropped seqs 1-2: their dedupe and state entries go. */
    pd_index_forget_before(idx, 3);
    assert_int_equal(pd_index_dedupe_lookup(idx, "envelope-1", 10), 0);
    assert_int_equal(pd_index_dedupe_lookup(idx, "envelope-3", 10), 3);
    s_expect_latest(idx, (uint64_t[]){ 4 }, 1);
    pd_index_forget_before(idx, 5);
    s_expect_latest(idx, NULL, 0);
    assert_true(pd_index_signer_last(idx, s_signer_b, &last)); /* kept */
    pd_index_destroy(&idx);
}

/* The pd_store_open() callback, on real signed envelopes and on junk. */
static void
test_scan(void **state)
{
    (void)state;
    uint8_t seed[32];
    memset(seed, 7, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    assert_non_null(key);
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    parley_key_public(key, pk);

    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;
    parley_update_t *u = s_update(PARLEY_KIND_UPDATE, 3, 42, "egypt,qatar",
                                  NULL, 0);
    assert_int_equal(parley_sign(key, u, env, sizeof(env), &len), 0);
    assert_int_equal(pd_index_scan(idx, 1, 0, env, len), 0);

    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0x01, 0x02 };
    assert_int_equal(pd_index_scan(idx, 2, 0, junk, sizeof(junk)), 0);

    uint64_t last = 0;
    assert_true(pd_index_signer_last(idx, pk, &last));
    assert_int_equal(last, 42);
    assert_int_equal(pd_index_dedupe_lookup(idx, env, len), 1);
    s_expect_latest(idx, (uint64_t[]){ 1 }, 1);
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.scanned, 1);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.latest, 2);
    pd_index_destroy(&idx);
    parley_key_destroy(&key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_basic),
        cmocka_unit_test(test_hash_against_model),
        cmocka_unit_test(test_hash_remove_if_and_foreach),
        cmocka_unit_test(test_latest_updates),
        cmocka_unit_test(test_latest_correction),
        cmocka_unit_test(test_latest_retraction),
        cmocka_unit_test(test_signers_and_dedupe),
        cmocka_unit_test(test_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
