/*
 * test_errors.c - parley_error_name, parley_strerror and
 * parley_error_retryable.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "parley.h"

#include <errno.h>
#include <string.h>

static void
test_strerror_names(void **state)
{
    (void)state;
    /* the short names are stable: scripts and logs depend on them */
    static const struct {
        int code;
        const char *name;
    } names[] = {
        { PARLEY_ETOOLARGE, "too_large" },
        { PARLEY_EMALFORMED, "malformed" },
        { PARLEY_EUNKNOWNSIGNER, "unknown_signer" },
        { PARLEY_EBADSIG, "bad_signature" },
        { PARLEY_EINVALID, "invalid" },
        { PARLEY_EFORBIDDEN, "forbidden" },
        { PARLEY_ESTALE, "stale" },
        { PARLEY_EFUTURE, "future" },
        { PARLEY_EREPLAY, "replay" },
        { PARLEY_ETRUNCATED, "truncated" },
        { PARLEY_EUNAVAILABLE, "unavailable" },
        { PARLEY_EBADREQUEST, "bad_request" },
        { PARLEY_ERATELIMITED, "rate_limited" },
        { PARLEY_ETIMEOUT, "timeout" },
        { PARLEY_EKEYPERM, "key_permissions" },
        { PARLEY_EKEYFILE, "key_file" },
        { PARLEY_EKEYRING, "keyring" },
        { PARLEY_EPROTO, "protocol" },
        { PARLEY_EARG, "argument" },
    };
    size_t n = sizeof(names) / sizeof(names[0]);
    /* the table above covers every code, -1001 .. -1019 */
    assert_int_equal(n, (size_t)(PARLEY_ETOOLARGE - PARLEY_EARG + 1));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(names[i].code, PARLEY_ETOOLARGE - (int)i);
        assert_string_equal(parley_error_name(names[i].code), names[i].name);
        const char *text = parley_strerror(names[i].code);
        assert_non_null(text);
        assert_true(strlen(text) > strlen(names[i].name));
        /* distinct from every other code's sentence */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(text, parley_strerror(names[j].code));
    }
    assert_string_equal(parley_strerror(PARLEY_EBADSIG),
                        "signature does not verify");
}

static void
test_strerror_errno_and_unknown(void **state)
{
    (void)state;
    /* -errno values: the errno name, and the system's text */
    assert_string_equal(parley_error_name(-ENOENT), "ENOENT");
    assert_string_equal(parley_error_name(-EACCES), "EACCES");
    assert_string_equal(parley_strerror(-EEXIST), strerror(EEXIST));
    assert_string_equal(parley_strerror(-ENOBUFS), strerror(ENOBUFS));
    /* success and a duplicate ack */
    assert_string_equal(parley_error_name(0), "ok");
    assert_string_equal(parley_error_name(PARLEY_DUPLICATE), "duplicate");
    /* constructors set errno to the positive code: -errno names it */
    errno = -PARLEY_EKEYPERM;
    assert_string_equal(parley_error_name(-errno), "key_permissions");

    /* anything else still gets a string, never NULL */
    static const int odd[] = { 0,     1,       4242,      -1000,
                               -1020, -999999, INT32_MIN, INT32_MAX };
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_non_null(parley_error_name(odd[i]));
        assert_non_null(parley_strerror(odd[i]));
        assert_true(strlen(parley_error_name(odd[i])) > 0);
    }
    /* and an unknown code does not borrow a real code's name */
    assert_string_not_equal(parley_error_name(-1020), "argument");
    assert_string_not_equal(parley_error_name(-1000), "too_large");
}

/* Which codes are worth the same request again later. */
static void
test_retryable(void **state)
{
    (void)state;
    static const int again[] = { PARLEY_ETIMEOUT, PARLEY_EUNAVAILABLE,
                                 PARLEY_ERATELIMITED, PARLEY_EFUTURE,
                                 -EAGAIN, -EINTR, -ENOMEM };
    for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++)
        if (parley_error_retryable(again[i]) != 1)
            fail_msg("%s should be worth a retry",
                     parley_error_name(again[i]));
    /* final: the same request meets the same answer */
    for (int code = PARLEY_ETOOLARGE; code >= PARLEY_EARG; code--) {
        int want = code == PARLEY_ETIMEOUT || code == PARLEY_EUNAVAILABLE
                   || code == PARLEY_ERATELIMITED || code == PARLEY_EFUTURE;
        if (parley_error_retryable(code) != want)
            fail_msg("parley_error_retryable(%s) != %d",
                     parley_error_name(code), want);
    }
    static const int final[] = { 0, PARLEY_DUPLICATE, -EACCES, -EINVAL,
                                 -ENOENT, 4242 };
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
        assert_int_equal(parley_error_retryable(final[i]), 0);
}

/* The version the library reports is the one the header names. */
static void
test_version(void **state)
{
    (void)state;
    assert_string_equal(parley_version(), PARLEY_VERSION);
    assert_int_equal(PARLEY_VERSION_MAJOR, 1);
    assert_true(parley_envelope_max() >= PARLEY_ENVELOPE_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names),
        cmocka_unit_test(test_strerror_errno_and_unknown),
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
