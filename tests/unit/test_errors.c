/*
 * test_errors.c - parley_strerror and parley_strerror_long.
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
        assert_string_equal(parley_strerror(names[i].code), names[i].name);
        const char *text = parley_strerror_long(names[i].code);
        assert_non_null(text);
        assert_true(strlen(text) > strlen(names[i].name));
        /* distinct from every other code's sentence */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(text, parley_strerror_long(names[j].code));
    }
    assert_string_equal(parley_strerror_long(PARLEY_EBADSIG),
                        "signature does not verify");
}

static void
test_strerror_errno_and_unknown(void **state)
{
    (void)state;
    /* -errno values read as the system's text */
    assert_string_equal(parley_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(parley_strerror(-EEXIST), strerror(EEXIST));
    assert_string_equal(parley_strerror_long(-ENOBUFS), strerror(ENOBUFS));
    /* constructors set errno to the positive code: -errno names it */
    errno = -PARLEY_EKEYPERM;
    assert_string_equal(parley_strerror(-errno), "key_permissions");

    /* anything else still gets a string, never NULL */
    static const int odd[] = { 0,     1,       4242,      -1000,
                               -1020, -999999, INT32_MIN, INT32_MAX };
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_non_null(parley_strerror(odd[i]));
        assert_non_null(parley_strerror_long(odd[i]));
        assert_true(strlen(parley_strerror(odd[i])) > 0);
    }
    /* and an unknown code does not borrow a real code's name */
    assert_string_not_equal(parley_strerror(-1020), "argument");
    assert_string_not_equal(parley_strerror(-1000), "too_large");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names),
        cmocka_unit_test(test_strerror_errno_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
