/*
 * timefmt.c - durations, timestamps and --since/--until arguments.
 */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Largest duration or time accepted, in ms: keeps every sum below
 * INT64_MAX (about 290 million years). */
#define S_MS_MAX ((int64_t)9000000000000000000LL)

/*
 * Parse a decimal number with an optional fraction at *p, scaled by
 * unit_ms once the unit is known: returns the digits as whole and as
 * fraction numerator/denominator. Returns the number of digits read.
 */
static int
s_number(const char **p, int64_t *whole, int64_t *frac, int64_t *den)
{
    int digits = 0;
    *whole = 0;
    *frac = 0;
    *den = 1;
    for (; **p >= '0' && **p <= '9'; (*p)++, digits++) {
        if (*whole > S_MS_MAX / 10)
            return -1;
        *whole = *whole * 10 + (**p - '0');
    }
    if (**p == '.') {
        for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, digits++) {
            if (*den < 1000000) { /* finer than a microsecond is noise */
                *frac = *frac * 10 + (**p - '0');
                *den *= 10;
            }
        }
    }
    return digits;
}

/* The length of a unit at s and its size in ms; 0 if none. */
static size_t
s_unit(const char *s, int64_t *unit_ms)
{
    if (strncmp(s, "ms", 2) == 0) {
        *unit_ms = 1;
        return 2;
    }
    switch (*s) {
    case 's':
        *unit_ms = 1000;
        return 1;
    case 'm':
        *unit_ms = 60 * 1000;
        return 1;
    case 'h':
        *unit_ms = 3600 * 1000;
        return 1;
    case 'd':
        *unit_ms = 86400 * 1000;
        return 1;
    default:
        return 0;
    }
}

int
cli_parse_duration(const char *s, int bare_seconds, int64_t *ms)
{
    const char *p = s;
    int64_t total = 0;
    int pairs = 0;
    if (s == NULL || *s == '\0')
        return -1;
    while (*p != '\0') {
        int64_t whole, frac, den, unit;
        int digits = s_number(&p, &whole, &frac, &den);
        if (digits <= 0)
            return -1;
        size_t ulen = s_unit(p, &unit);
        if (ulen == 0) {
            if (*p != '\0' || pairs > 0 || !bare_seconds)
                return -1;
            unit = 1000; /* a bare number: seconds */
        }
        p += ulen;
        if (whole > (S_MS_MAX - total) / unit)
            return -1;
        /* a fraction below a millisecond rounds up, so that "0.0001s"
         * still means some time */
        int64_t part = whole * unit + (frac * unit + den - 1) / den;
        if (part > S_MS_MAX - total)
            return -1;
        total += part;
        pairs++;
    }
    *ms = total;
    return 0;
}

/* Read exactly n digits at *p into *out. 0 or -1. */
static int
s_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

/* Days in month mon (1-12) of year. */
static int
s_mdays(int year, int mon)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon == 2 && leap ? 29 : days[mon - 1];
}

/* Parse a zone at p: Z, +HH:MM, +HHMM or +HH. 0 with *off_s, or -1. */
static int
s_zone(const char *p, long *off_s)
{
    int hh = 0, mm = 0, sign;
    if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) {
        *off_s = 0;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return -1;
    sign = *p == '-' ? -1 : 1;
    p++;
    if (s_digits(&p, 2, &hh) < 0)
        return -1;
    if (*p == ':')
        p++;
    if (*p != '\0' && s_digits(&p, 2, &mm) < 0)
        return -1;
    if (*p != '\0' || hh > 23 || mm > 59)
        return -1;
    *off_s = sign * (hh * 3600L + mm * 60L);
    return 0;
}

int
cli_parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    const char *p = s;
    int year, mon, day, hh = 0, mi = 0, ss = 0, msec = 0, zoned = 0;
    long off = 0;
    if (s == NULL)
        return -1;
    if (*p == '@') {
        int64_t secs;
        p++;
        if (*p == '\0' || cli_parse_duration(p, 1, &secs) < 0
            || strpbrk(p, "smhd") != NULL)
            return -1;
        *ms = secs;
        return 0;
    }
    if (s_digits(&p, 4, &year) < 0 || *p++ != '-' || s_digits(&p, 2, &mon) < 0
        || *p++ != '-' || s_digits(&p, 2, &day) < 0)
        return -1;
    if (year < 1970 || mon < 1 || mon > 12 || day < 1
        || day > s_mdays(year, mon))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (s_digits(&p, 2, &hh) < 0 || *p++ != ':' || s_digits(&p, 2, &mi) < 0)
            return -1;
        if (*p == ':') {
            p++;
            if (s_digits(&p, 2, &ss) < 0)
                return -1;
            if (*p == '.' || *p == ',') {
                int scale = 100;
                for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                    msec += (*p - '0') * scale;
            }
        }
        if (hh > 23 || mi > 59 || ss > 60)
            return -1;
        if (*p != '\0') {
            if (s_zone(p, &off) < 0)
                return -1;
            zoned = 1;
        }
    } else if (*p != '\0') {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mi;
    tm.tm_sec = ss;
    tm.tm_isdst = -1;
    time_t t = zoned ? timegm(&tm) - off : mktime(&tm);
    if (t == (time_t)-1 && !zoned)
        return -1;
    *ms = (int64_t)t * 1000 + msec;
    return 0;
}

int
cli_parse_point(const char *s, int64_t now_ms, cli_point_t *out)
{
    int64_t v;
    const char *p = s;
    if (s == NULL || *s == '\0')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        ;
    if (*p == '\0') {
        unsigned long long seq = 0;
        if (p - s > 19 || sscanf(s, "%llu", &seq) != 1)
            return -1;
        out->kind = CLI_POINT_SEQ;
        out->seq = (uint64_t)seq;
        out->ms = 0;
        return 0;
    }
    if (cli_parse_duration(s, 0, &v) == 0) {
        out->kind = CLI_POINT_TIME;
        out->seq = 0;
        out->ms = now_ms - v;
        return 0;
    }
    if (cli_parse_time(s, &v) == 0) {
        out->kind = CLI_POINT_TIME;
        out->seq = 0;
        out->ms = v;
        return 0;
    }
    return -1;
}

void
cli_format_time(int64_t ms, cli_time_style_t style, char *buf, size_t cap)
{
    struct tm tm;
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int utc = style == CLI_TIME_ISO_UTC || style == CLI_TIME_SHORT_UTC;
    if (cap == 0)
        return;
    if (ms == 0 || (utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) == NULL) {
        snprintf(buf, cap, "-");
        return;
    }
    switch (style) {
    case CLI_TIME_ISO_UTC:
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
        break;
    case CLI_TIME_ISO_LOCAL: {
        /* %z gives +0200; ISO 8601's extended form wants +02:00 */
        char zone[8];
        size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
        if (strftime(zone, sizeof(zone), "%z", &tm) == 5 && n + 7 <= cap)
            snprintf(buf + n, cap - n, "%.3s:%.2s", zone, zone + 3);
        break;
    }
    case CLI_TIME_SHORT_LOCAL:
    case CLI_TIME_SHORT_UTC:
    default:
        strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
        break;
    }
}
