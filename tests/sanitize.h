/*
 * sanitize.h - whether this test is built with AddressSanitizer, whose
 * allocator replaces glibc's: tests that read the heap's size or a
 * process's resident memory relax or skip what it decides otherwise.
 */
#ifndef PARLEY_TEST_SANITIZE_H
#define PARLEY_TEST_SANITIZE_H

/* GCC's macro, clang's feature test. */
#if defined(__SANITIZE_ADDRESS__)
#define PARLEY_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PARLEY_TEST_ASAN 1
#endif
#endif
#ifndef PARLEY_TEST_ASAN
#define PARLEY_TEST_ASAN 0
#endif

#endif /* PARLEY_TEST_SANITIZE_H */
