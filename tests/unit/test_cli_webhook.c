/*
 * test_cli_webhook.c - the requests of parley sub --webhook, byte for
 * byte, in every --webhook-format (client/cli/webhook.c); the same
 * requests reach a real HTTP server in tests/integration/
 * test_webhook_formats.sh.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "delivery_fixture.h"
#include "webhook.h"

#include <stdlib.h>
#include <string.h>

#define S_KEY "00112233445566778899aabbccddeeff/12"
#define S_LINE                                                               \
    "#12 gaza-ceasefire phase 1 [israel,hamas] agreed_in_principle: "        \
    "Phase 1 <agreed> & signed"

static parley_delivery_t *
s_delivery(void)
{
    fx_update_t f = { .parties = "israel,hamas",
                      .phase = 1,
                      .status = PARLEY_STATUS_AGREED_IN_PRINCIPLE,
                      .headline = "Phase 1 <agreed> & signed",
                      .body = "Details." };
    parley_delivery_t *d = fx_delivery(12, &f);
    assert_non_null(d);
    return d;
}

/* The request's headers, one per line, for comparing. */
static char *
s_headers(const cli_hook_request_t *r)
{
    static char buf[4096];
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_headers; i++) {
        strcat(buf, r->headers[i]);
        strcat(buf, "\n");
    }
    return buf;
}

static void
s_check(cli_hook_format_t fmt, const char *url, const char *method,
        const char *headers, const char *body)
{
    parley_delivery_t *d = s_delivery();
    cli_hook_request_t r;
    assert_int_equal(cli_hook_request(fmt, "https://hooks.example/x", d, S_KEY,
                                      NULL, 0, &r),
                     0);
    assert_string_equal(r.url, url);
    assert_string_equal(r.method, method);
    assert_string_equal(s_headers(&r), headers);
    assert_int_equal(r.body_len, strlen(body));
    assert_string_equal(r.body, body);
    cli_hook_request_free(&r);
    parley_delivery_destroy(&d);
}

#define S_JSON_HEADERS                                                       \
    "Content-Type: application/json\n"                                       \
    "Idempotency-Key: " S_KEY "\n"                                           \
    "User-Agent: parley/" PARLEY_VERSION "\n"

static void
test_formats(void **state)
{
    (void)state;
    s_check(CLI_HOOK_SLACK, "https://hooks.example/x", "POST", S_JSON_HEADERS,
            "{\"text\":\"#12 gaza-ceasefire phase 1 [israel,hamas] "
            "agreed_in_principle: Phase 1 &lt;agreed&gt; &amp; signed\"}");
    s_check(CLI_HOOK_MATTERMOST, "https://hooks.example/x", "POST",
            S_JSON_HEADERS, "{\"text\":\"" S_LINE "\"}");
    s_check(CLI_HOOK_MATRIX,
            "https://hooks.example/x/parley-00112233445566778899aabbccddeeff-12",
            "PUT", S_JSON_HEADERS,
            "{\"msgtype\":\"m.notice\",\"body\":\"" S_LINE "\"}");
    s_check(CLI_HOOK_NTFY, "https://hooks.example/x", "POST",
            "Content-Type: text/plain; charset=utf-8\n"
            "Idempotency-Key: " S_KEY "\n"
            "User-Agent: parley/" PARLEY_VERSION "\n"
            "Title: gaza-ceasefire phase 1 [israel,hamas]: agreed_in_principle\n"
            "Tags: parley,agreed_in_principle\n"
            "Priority: high\n",
            "Phase 1 <agreed> & signed\n\nDetails.");
    s_check(CLI_HOOK_TEAMS, "https://hooks.example/x", "POST", S_JSON_HEADERS,
            "{\"type\":\"message\",\"attachments\":[{\"contentType\":"
            "\"application/vnd.microsoft.card.adaptive\",\"content\":{"
            "\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\","
            "\"type\":\"AdaptiveCard\",\"version\":\"1.4\",\"body\":[{\"type\":"
            "\"TextBlock\",\"text\":\"gaza-ceasefire phase 1 [israel,hamas]: "
            "agreed_in_principle\",\"weight\":\"Bolder\",\"wrap\":true},{"
            "\"type\":\"TextBlock\",\"text\":\"Phase 1 <agreed> & signed\","
            "\"wrap\":true},{\"type\":\"FactSet\",\"facts\":[{\"title\":\"seq\","
            "\"value\":\"12\"},{\"title\":\"signer\",\"value\":"
            "\"d3bd75fcd7676504\"}]}]}}]}");
}

/* json: the --json object, as parley_delivery_to_json() makes it. */
static void
test_format_json(void **state)
{
    (void)state;
    parley_delivery_t *d = s_delivery();
    char *want = parley_delivery_to_json(d);
    assert_non_null(want);
    assert_non_null(strstr(want, "\"signed_body\":"));
    parley_delivery_destroy(&d);
    s_check(CLI_HOOK_JSON, "https://hooks.example/x", "POST", S_JSON_HEADERS,
            want);
    free(want);
}

/* --header adds lines, and one named like ours replaces ours. */
static void
test_extra_headers(void **state)
{
    (void)state;
    char *extra[2] = { NULL, NULL };
    assert_int_equal(cli_hook_header_parse("Authorization:Bearer t0k", &extra[0]),
                     0);
    assert_string_equal(extra[0], "Authorization: Bearer t0k");
    assert_int_equal(cli_hook_header_parse("content-type:  application/x",
                                           &extra[1]),
                     0);
    parley_delivery_t *d = s_delivery();
    cli_hook_request_t r;
    assert_int_equal(cli_hook_request(CLI_HOOK_MATTERMOST, "http://h/", d,
                                      S_KEY, extra, 2, &r),
                     0);
    assert_string_equal(s_headers(&r), "Idempotency-Key: " S_KEY "\n"
                                       "User-Agent: parley/" PARLEY_VERSION "\n"
                                       "Authorization: Bearer t0k\n"
                                       "content-type: application/x\n");
    cli_hook_request_free(&r);
    parley_delivery_destroy(&d);
    free(extra[0]);
    free(extra[1]);
    /* what --header refuses */
    char *h = NULL;
    assert_int_equal(cli_hook_header_parse("no colon", &h), -1);
    assert_int_equal(cli_hook_header_parse(": empty name", &h), -1);
    assert_int_equal(cli_hook_header_parse("Bad Name: x", &h), -1);
    assert_int_equal(cli_hook_header_parse("X-A: b\r\nX-Evil: 1", &h), -1);
    assert_null(h);
}

static void
test_format_names(void **state)
{
    (void)state;
    const char *names[] = { "json", "slack", "mattermost", "matrix", "ntfy",
                            "teams" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cli_hook_format_t f;
        assert_int_equal(cli_hook_format_parse(names[i], &f), 0);
        assert_int_equal((int)f, (int)i);
        assert_non_null(strstr(cli_hook_formats, names[i]));
    }
    cli_hook_format_t f;
    assert_int_equal(cli_hook_format_parse("discord", &f), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_format_json),
        cmocka_unit_test(test_extra_headers),
        cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
