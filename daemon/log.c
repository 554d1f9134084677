/*
 * log.c - leveled, rate-limited logging to stderr.
 */
#include "log.h"

#include "clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pd_log_level_t s_level = PD_LOG_INFO;

static const char *const s_names[] = {
    [PD_LOG_ERROR] = "error",
    [PD_LOG_WARN] = "warn",
    [PD_LOG_INFO] = "info",
    [PD_LOG_DEBUG] = "debug",
};

void
pd_log_set_level(pd_log_level_t level)
{
    s_level = level;
}

int
pd_log_parse_level(const char *name, pd_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(s_names) / sizeof(s_names[0]); i++) {
        if (s_names[i] != NULL && strcmp(s_names[i], name) == 0) {
            *out = (pd_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

static void
s_vlog(pd_log_level_t level, const char *prefix, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    /* One event, one line: a peer must not be able to forge log lines. */
    for (char *p = line; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (getenv("JOURNAL_STREAM") != NULL) {
        fprintf(stderr, "<%d>%s%s\n", (int)level, prefix, line);
    } else {
        char stamp[32];
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(stderr, "%s %s %s%s\n", stamp, s_names[level], prefix, line);
    }
}

void
pd_log(pd_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, "", fmt, ap);
    va_end(ap);
}

static struct {
    time_t second;      /* second of the last line printed */
    unsigned long held; /* lines suppressed since */
} s_limits[PD_LOG_KEY_COUNT];

void
pd_log_limited(pd_log_key_t key, pd_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    if ((unsigned)key >= PD_LOG_KEY_COUNT)
        key = PD_LOG_KEY_API; /* a caller's mistake: still limited */
    time_t now = time(NULL);
    if (s_limits[key].second == now) {
        s_limits[key].held++;
        return;
    }
    char prefix[64] = "";
    if (s_limits[key].held > 0)
        snprintf(prefix, sizeof(prefix), "(%lu similar suppressed) ",
                 s_limits[key].held);
    s_limits[key].second = now;
    s_limits[key].held = 0;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, prefix, fmt, ap);
    va_end(ap);
}

void
pd_log_repeated(pd_log_repeat_t *r, pd_log_key_t key, pd_log_level_t level, int err,
                int64_t period_ms, const char *fmt, ...)
{
    bool again = r->err == err;
    r->err = err;
    int64_t now = parley__mono_ms();
    if (again && now - r->logged_ms < period_ms) {
        r->held++;
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->held > 0)
        pd_log_limited(key, level, "%s (%" PRIu64 " more failures alike since the "
                                   "last line)",
                       msg, r->held);
    else
        pd_log_limited(key, level, "%s", msg);
    r->logged_ms = now;
    r->held = 0;
}

void
pd_log_repeat_clear(pd_log_repeat_t *r)
{
    r->err = 0;
    r->held = 0;
}
