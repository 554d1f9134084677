/*
 * log.c - leveled lines on stderr, some of them rate-limited.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static gw_log_level_t s_max = GW_LOG_INFO;

static const struct {
    gw_log_level_t level;
    const char *name;
} s_levels[] = {
    { GW_LOG_ERROR, "error" },
    { GW_LOG_WARN, "warn" },
    { GW_LOG_INFO, "info" },
    { GW_LOG_DEBUG, "debug" },
};

void
gw_log_set_level(gw_log_level_t level)
{
    s_max = level;
}

int
gw_log_level_parse(const char *name, gw_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(s_levels) / sizeof(s_levels[0]); i++)
        if (strcmp(name, s_levels[i].name) == 0) {
            *out = s_levels[i].level;
            return 0;
        }
    return -EINVAL;
}

/* Format a whole line (prefix, text, newline) and write it at once. */
static void
s_emit(gw_log_level_t level, const char *suffix, const char *fmt, va_list ap)
{
    char text[1024], line[1200];
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    if (n < 0)
        return;
    for (char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    const char *name = "?";
    for (size_t i = 0; i < sizeof(s_levels) / sizeof(s_levels[0]); i++)
        if (s_levels[i].level == level)
            name = s_levels[i].name;
    if (getenv("JOURNAL_STREAM") != NULL) {
        n = snprintf(line, sizeof(line), "<%d>parley-gateway: %s%s\n",
                     (int)level, text, suffix);
    } else {
        struct timespec now;
        struct tm tm;
        char when[24];
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        n = snprintf(line, sizeof(line), "%s %-5s %s%s\n", when, name, text,
                     suffix);
    }
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (write(STDERR_FILENO, line, len) < 0) {
        /* Nowhere left to say it. */
    }
}

void
gw_log(gw_log_level_t level, const char *fmt, ...)
{
    if (level > s_max)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_emit(level, "", fmt, ap);
    va_end(ap);
}

static struct {
    time_t at;           /* the second of the last line printed */
    unsigned long quiet; /* lines held back since */
} s_keys[GW_LOGK_COUNT];

void
gw_log_limited(gw_log_key_t key, gw_log_level_t level, const char *fmt, ...)
{
    if (level > s_max || key >= GW_LOGK_COUNT)
        return;
    time_t now = time(NULL);
    if (s_keys[key].at == now) {
        s_keys[key].quiet++;
        return;
    }
    char suffix[64] = "";
    if (s_keys[key].quiet > 0)
        snprintf(suffix, sizeof(suffix), " (%lu more like it not shown)",
                 s_keys[key].quiet);
    s_keys[key].at = now;
    s_keys[key].quiet = 0;
    va_list ap;
    va_start(ap, fmt);
    s_emit(level, suffix, fmt, ap);
    va_end(ap);
}
