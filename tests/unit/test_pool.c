/*
 * test_pool.c - the thread pool runs every item exactly once per run,
 * whether the caller waits at once or works meanwhile.
 */
#include "pool.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#define S_N 10000

typedef struct {
    atomic_int hits[S_N];
} s_ctx_t;

static void
s_count(void *ctx, size_t i)
{
    s_ctx_t *c = ctx;
    atomic_fetch_add(&c->hits[i], 1);
}

static void
s_check_runs(unsigned workers)
{
    int err = 1;
    pd_pool_t *pool = pd_pool_new(workers, &err);
    assert_non_null(pool);
    assert_int_equal(err, 0);
    assert_int_equal(pd_pool_size(pool), workers + 1);
    s_ctx_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    /* Many runs of varied sizes: each item once per run, none outside. */
    size_t sizes[] = { 0, 1, 2, 3, 17, 1000, S_N };
    for (int round = 0; round < 50; round++) {
        size_t n = sizes[round % (sizeof(sizes) / sizeof(sizes[0]))];
        for (size_t i = 0; i < S_N; i++)
            atomic_store(&c->hits[i], 0);
        pd_pool_run(pool, n, 2, s_count, c);
        for (size_t i = 0; i < S_N; i++)
            assert_int_equal(atomic_load(&c->hits[i]), i < n ? 1 : 0);
    }
    free(c);
    pd_pool_destroy(&pool);
    assert_null(pool);
    pd_pool_destroy(&pool); /* NULL is fine */
}

static void
test_inline(void **state)
{
    (void)state;
    s_check_runs(0);
}

static void
test_one_worker(void **state)
{
    (void)state;
    s_check_runs(1);
}

static void
test_three_workers(void **state)
{
    (void)state;
    s_check_runs(3);
}

/*
 * pd_pool_start() + pd_pool_wait(): the caller does its own work between
 * them; afterwards every item ran once, and a run below min_parallel ran
 * on the caller only during the wait.
 */
static void
test_start_wait(void **state)
{
    (void)state;
    int err = 1;
    pd_pool_t *pool = pd_pool_new(1, &err);
    assert_non_null(pool);
    s_ctx_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    for (int round = 0; round < 20; round++) {
        size_t n = round % 2 ? S_N : 3;
        for (size_t i = 0; i < S_N; i++)
            atomic_store(&c->hits[i], 0);
        pd_pool_start(pool, n, 4, s_count, c);
        if (n == 3) /* inline: nothing ran yet */
            for (size_t i = 0; i < n; i++)
                assert_int_equal(atomic_load(&c->hits[i]), 0);
        volatile unsigned long spin = 0; /* the caller's other work */
        for (int i = 0; i < 100000; i++)
            spin = spin + (unsigned long)i;
        pd_pool_wait(pool);
        for (size_t i = 0; i < S_N; i++)
            assert_int_equal(atomic_load(&c->hits[i]), i < n ? 1 : 0);
    }
    free(c);
    pd_pool_destroy(&pool);
}

static void
test_cpus(void **state)
{
    (void)state;
    assert_true(pd_pool_cpus() >= 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_one_worker),
        cmocka_unit_test(test_three_workers),
        cmocka_unit_test(test_start_wait),
        cmocka_unit_test(test_cpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
