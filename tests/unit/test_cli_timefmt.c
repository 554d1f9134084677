/*
 * test_cli_timefmt.c - durations, timestamps, --since arguments and the
 * times the tool prints (client/cli/timefmt.c).
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "timefmt.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2024-08-20T12:00:00Z */
#define S_T0 1724155200000LL

static void
test_duration(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int bare;
        int64_t ms; /* -1: refused */
    } cases[] = {
        { "90s", 0, 90000 },        { "30m", 0, 1800000 },
        { "1h", 0, 3600000 },       { "2d", 0, 172800000 },
        { "1h30m", 0, 5400000 },    { "500ms", 0, 500 },
        { "1.5h", 0, 5400000 },     { "0.0001s", 0, 1 },
        { "5", 1, 5000 },           { "0.25", 1, 250 },
        { "0", 1, 0 },              { "5", 0, -1 },
        { "", 1, -1 },              { "h", 0, -1 },
        { "1x", 0, -1 },            { "1h5", 1, -1 },
        { "-1s", 0, -1 },           { "1 h", 0, -1 },
        { "99999999999999999999d", 0, -1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 42;
        int rc = cli_parse_duration(cases[i].text, cases[i].bare, &ms);
        if (cases[i].ms < 0) {
            if (rc != -1)
                fail_msg("\"%s\" accepted as %lld ms", cases[i].text,
                         (long long)ms);
        } else if (rc != 0 || ms != cases[i].ms) {
            fail_msg("\"%s\": rc %d, %lld ms, expected %lld", cases[i].text,
                     rc, (long long)ms, (long long)cases[i].ms);
        }
    }
}

static void
test_time(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(cli_parse_time("2024-08-20T12:00:00Z", &ms), 0);
    assert_int_equal(ms, S_T0);
    assert_int_equal(cli_parse_time("2024-08-20T14:00+02:00", &ms), 0);
    assert_int_equal(ms, S_T0);
    assert_int_equal(cli_parse_time("2024-08-20 07:00:00.250-0500", &ms), 0);
    assert_int_equal(ms, S_T0 + 250);
    assert_int_equal(cli_parse_time("@1724155200", &ms), 0);
    assert_int_equal(ms, S_T0);
    /* local time: in UTC here */
    assert_int_equal(cli_parse_time("2024-08-20T12:00", &ms), 0);
    assert_int_equal(ms, S_T0);
    assert_int_equal(cli_parse_time("2024-08-20", &ms), 0);
    assert_int_equal(ms, S_T0 - 12 * 3600000LL);
    assert_int_equal(cli_parse_time("2024-02-29", &ms), 0);
    /* refused */
    const char *bad[] = { "2023-02-29", "2024-13-01", "2024-08-20T25:00",
                          "2024-08-20T12:00+2", "20240820", "2024-08-20x",
                          "1969-12-31", "@1h", "@", "yesterday" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cli_parse_time(bad[i], &ms) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
}

static void
test_point(void **state)
{
    (void)state;
    cli_point_t p;
    int64_t now = S_T0 + 3600000;
    assert_int_equal(cli_parse_point("42", now, &p), 0);
    assert_int_equal(p.kind, CLI_POINT_SEQ);
    assert_int_equal(p.seq, 42);
    assert_int_equal(cli_parse_point("1h", now, &p), 0);
    assert_int_equal(p.kind, CLI_POINT_TIME);
    assert_int_equal(p.ms, S_T0);
    assert_int_equal(cli_parse_point("2024-08-20T12:00Z", now, &p), 0);
    assert_int_equal(p.kind, CLI_POINT_TIME);
    assert_int_equal(p.ms, S_T0);
    assert_int_equal(cli_parse_point("12345678901234567890", now, &p), -1);
    assert_int_equal(cli_parse_point("soon", now, &p), -1);
    assert_int_equal(cli_parse_point("", now, &p), -1);
}

static void
test_format(void **state)
{
    (void)state;
    char buf[CLI_TIME_CHARS];
    cli_format_time(S_T0 + 5123, CLI_TIME_ISO_UTC, buf, sizeof(buf));
    assert_string_equal(buf, "2024-08-20T12:00:05Z");
    cli_format_time(S_T0 + 5123, CLI_TIME_ISO_LOCAL, buf, sizeof(buf));
    assert_string_equal(buf, "2024-08-20T12:00:05+00:00");
    cli_format_time(S_T0 + 5123, CLI_TIME_SHORT_LOCAL, buf, sizeof(buf));
    assert_string_equal(buf, "2024-08-20 12:00:05");
    cli_format_time(0, CLI_TIME_SHORT_LOCAL, buf, sizeof(buf));
    assert_string_equal(buf, "-");
    /* another zone: the offset is written, and parsing reads it back */
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    cli_format_time(S_T0, CLI_TIME_ISO_LOCAL, buf, sizeof(buf));
    int64_t ms = 0;
    if (strcmp(buf, "2024-08-20T17:30:00+05:30") == 0) {
        assert_int_equal(cli_parse_time(buf, &ms), 0);
        assert_int_equal(ms, S_T0);
        assert_int_equal(cli_parse_time("2024-08-20T17:30", &ms), 0);
        assert_int_equal(ms, S_T0);
    } else {
        /* no zone database here: the time is in UTC */
        assert_string_equal(buf, "2024-08-20T12:00:00+00:00");
    }
    setenv("TZ", "UTC", 1);
    tzset();
}

int
main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_point),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
