/*
 * log.h - the gateway's log: one line per event on stderr.
 *
 * Under systemd (JOURNAL_STREAM set) a line carries the journal's level
 * prefix, "<4>parley-gateway: ..."; elsewhere it starts with a UTC time
 * and the level name. What a peer sends is never printed raw: control
 * characters become '?', so one event is always one line.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

typedef enum {
    GW_LOG_ERROR = 3,
    GW_LOG_WARN = 4,
    GW_LOG_INFO = 6,
    GW_LOG_DEBUG = 7,
} gw_log_level_t;

/* Print lines up to level (default GW_LOG_INFO). Threads: call before
 * starting threads. */
void gw_log_set_level(gw_log_level_t level);

/* "error", "warn", "info" or "debug" into *out. Returns 0 or -EINVAL. */
int gw_log_level_parse(const char *name, gw_log_level_t *out);

/* Print one line at level. Threads: safe (one write(2) per line). */
void gw_log(gw_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Keys of gw_log_limited(): each is printed at most once per second, and
 * the next line printed for it says how many were held back. For events
 * a peer can cause at will.
 */
typedef enum {
    GW_LOGK_BAD_REQUEST = 0,
    GW_LOGK_REFUSED,
    GW_LOGK_TIMEOUT,
    GW_LOGK_PUBLISH,
    GW_LOGK_UPSTREAM,
    GW_LOGK_SSE,
    GW_LOGK_COUNT
} gw_log_key_t;

/* gw_log(), at most once per second per key. Threads: main thread. */
void gw_log_limited(gw_log_key_t key, gw_log_level_t level, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

#endif /* GW_LOG_H */
