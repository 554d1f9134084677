/*
 * fsize.h - a full disk for the unit tests without a small file system:
 * RLIMIT_FSIZE makes a write past the limit fail with EFBIG, which the
 * log treats like ENOSPC (a failure a later retry may get past). Shared
 * by test_store and test_ingest; include after cmocka.h.
 */
#ifndef PARLEY_TEST_FSIZE_H
#define PARLEY_TEST_FSIZE_H

#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>

/*
 * Make writes fail with EFBIG past limit bytes of a file (SIGXFSZ is
 * ignored meanwhile). Returns false (the caller skips its test) if the
 * limit cannot be set; *old gets the limit to put back.
 */
static inline bool
fsize_limit(rlim_t limit, struct rlimit *old)
{
    struct rlimit small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, old), 0);
    if (old->rlim_max != RLIM_INFINITY && old->rlim_max < 4096)
        return false;
    signal(SIGXFSZ, SIG_IGN);
    small = *old;
    small.rlim_cur = limit;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    return true;
}

/* Put back the limit fsize_limit() saved. */
static inline void
fsize_unlimit(const struct rlimit *old)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, old), 0);
    signal(SIGXFSZ, SIG_DFL);
}

#endif /* PARLEY_TEST_FSIZE_H */
