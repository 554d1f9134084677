/*
 * test_heap.c - parleyd's heap is never shrunk, and its free pages still
 * go back to the system (heap.h says why: a freed libzmq pipe can still
 * be read, and must stay mapped).
 *
 * Both tests look at the program break and at this process's resident
 * pages, which glibc's allocator decides; under AddressSanitizer, whose
 * allocator is another, they are skipped.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "../sanitize.h"
#include "heap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 64 MiB in chunks below the mmap threshold: they come from the heap. */
#define S_CHUNK (16 * 1024)
#define S_CHUNKS 4096
#define S_MIB (1024.0 * 1024.0)

static char *s_chunks[S_CHUNKS];

/* Resident bytes of this process (statm's second field). */
static size_t
s_resident(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Allocate and touch every chunk. */
static void
s_fill(void)
{
    for (int i = 0; i < S_CHUNKS; i++) {
        s_chunks[i] = malloc(S_CHUNK);
        assert_non_null(s_chunks[i]);
        memset(s_chunks[i], 0x5a, S_CHUNK);
    }
}

static void
s_empty(void)
{
    for (int i = S_CHUNKS - 1; i >= 0; i--) {
        free(s_chunks[i]);
        s_chunks[i] = NULL;
    }
}

/* 64 MiB freed at the top of the heap: neither free() nor the hand-back
 * lowers the break (with glibc's defaults both did). */
static void
test_break_never_lowered(void **state)
{
    (void)state;
    if (PARLEY_TEST_ASAN)
        skip();
    s_fill();
    void *top = sbrk(0);
    s_empty();
    assert_ptr_equal(sbrk(0), top);
    pd_heap_give_back();
    assert_ptr_equal(sbrk(0), top);
}

/* 64 MiB freed inside the heap (a live allocation above them): the
 * hand-back returns their pages to the system. */
static void
test_free_pages_go_back(void **state)
{
    (void)state;
    if (PARLEY_TEST_ASAN)
        skip();
    s_fill();
    char *fence = malloc(64);
    assert_non_null(fence);
    memset(fence, 1, 64);
    s_empty();
    size_t before = s_resident();
    void *top = sbrk(0);
    pd_heap_give_back();
    size_t after = s_resident();
    print_message("resident %.1f MiB before the hand-back, %.1f after\n",
                  before / S_MIB, after / S_MIB);
    assert_ptr_equal(sbrk(0), top);
    assert_true(before > after);
    assert_true(before - after >= (size_t)S_CHUNKS * S_CHUNK / 2);
    free(fence);
}

int
main(void)
{
    /* As parleyd's main() does, before anything is allocated. */
    pd_heap_setup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_break_never_lowered),
        cmocka_unit_test(test_free_pages_go_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
