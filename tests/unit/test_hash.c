/*
 * test_hash.c - parleyd's hash table (hash.h): puts, overwrites and
 * deletes against a model, remove_if and foreach, and SipHash against
 * libsodium's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hash.h"

#include <sodium.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* pd_hash_siphash(2, 4) is SipHash-2-4 as libsodium computes it. */
static void
test_siphash(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    uint8_t key[16], msg[300];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    /* The reference vector of the SipHash paper (15 bytes 00..0e). */
    assert_true(pd_hash_siphash(key, msg, 15, 2, 4) == 0xa129ca6149be45e5ull);
    for (size_t len = 0; len < sizeof(msg); len += (len < 40 ? 1 : 37)) {
        uint8_t out[crypto_shorthash_BYTES];
        uint64_t want = 0;
        crypto_shorthash(out, msg, len, key);
        for (int i = 7; i >= 0; i--)
            want = (want << 8) | out[i];
        assert_true(pd_hash_siphash(key, msg, len, 2, 4) == want);
        /* 1-3 is another function of the same input, and stable. */
        assert_true(pd_hash_siphash(key, msg, len, 1, 3)
                    == pd_hash_siphash(key, msg, len, 1, 3));
        assert_true(pd_hash_siphash(key, msg, len, 1, 3) != want);
    }
}

/* Many signer_seqs per signer: every one is found, gaps are not, and
 * retention drops exactly the ones below the first kept seq. */
int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_basic),
        cmocka_unit_test(test_hash_against_model),
        cmocka_unit_test(test_hash_remove_if_and_foreach),
        cmocka_unit_test(test_siphash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
