/*
 * test_gw_post.c - the body of POST /v1/updates (gateway/post.c): binary
 * envelopes go on unchanged, the JSON form becomes the same bytes, the
 * media type picks the form, and what is not an envelope is refused.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "gw_util.h"
#include "post.h"

#include <errno.h>

static void
test_forms_and_types(void **state)
{
    (void)state;
    parley_delivery_t *d = gwt_delivery(1, "gaza-ceasefire", "us", 0,
                                        PARLEY_KIND_UPDATE, "posted");
    size_t len, out_len;
    const uint8_t *env = parley_delivery_envelope(d, &len);
    char *json = parley_envelope_to_json(env, len);
    assert_non_null(json);
    char spaced[4096];
    snprintf(spaced, sizeof(spaced), " \r\n\t%s", json);
    uint8_t out[PARLEY_ENVELOPE_MAX + 128];
    char detail[256];
    static const struct {
        const char *type;
        int json;
    } ok[] = {
        { "application/x-protobuf", 0 },
        { "application/protobuf", 0 },
        { "Application/Octet-Stream; charset=binary", 0 },
        { "application/vnd.parley.signed-update", 0 },
        { "application/json", 1 },
        { "application/json; charset=utf-8", 1 },
        { NULL, 0 },      /* sniffed: not '{' */
        { "", 1 },        /* sniffed: '{' after white space */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *body = ok[i].json ? spaced : (const char *)env;
        size_t n = ok[i].json ? strlen(spaced) : len;
        memset(out, 0, sizeof(out));
        int rc = gw_post_envelope(ok[i].type, body, n, out, sizeof(out),
                                  &out_len, detail, sizeof(detail));
        if (rc != 0 || out_len != len || memcmp(out, env, len) != 0)
            fail_msg("case %zu (%s): %d %s", i,
                     ok[i].type ? ok[i].type : "none", rc, detail);
    }
    assert_int_equal(gw_post_envelope("text/plain", env, len, out, sizeof(out),
                                      &out_len, detail, sizeof(detail)),
                     -EPROTONOSUPPORT);
    assert_int_equal(gw_post_envelope("application/jsonx", spaced,
                                      strlen(spaced), out, sizeof(out),
                                      &out_len, detail, sizeof(detail)),
                     -EPROTONOSUPPORT);
    /* JSON sent as protobuf, bytes sent as JSON, cut bytes. */
    assert_int_equal(gw_post_envelope("application/x-protobuf", json,
                                      strlen(json), out, sizeof(out), &out_len,
                                      detail, sizeof(detail)),
                     PARLEY_EMALFORMED);
    assert_string_equal(detail, "not a SignedUpdate (protobuf) envelope");
    assert_int_equal(gw_post_envelope("application/json", env, len, out,
                                      sizeof(out), &out_len, detail,
                                      sizeof(detail)),
                     PARLEY_EMALFORMED);
    assert_non_null(strstr(detail, "not JSON"));
    assert_int_equal(gw_post_envelope(NULL, env, len - 1, out, sizeof(out),
                                      &out_len, detail, sizeof(detail)),
                     PARLEY_EMALFORMED);
    assert_int_equal(gw_post_envelope(NULL, "", 0, out, sizeof(out), &out_len,
                                      detail, sizeof(detail)),
                     PARLEY_EMALFORMED);
    /* Too little room. */
    assert_int_equal(gw_post_envelope(NULL, env, len, out, len - 1, &out_len,
                                      detail, sizeof(detail)),
                     -ENOBUFS);
    free(json);
    parley_delivery_destroy(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms_and_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
