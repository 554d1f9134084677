/*
 * log.h - parleyd's log: one line per event on stderr, with a level.
 *
 * Lines look like "<6>parleyd: message" when stderr goes to the journal
 * (JOURNAL_STREAM set) and "2026-11-28T20:58:15Z info message" otherwise.
 * Never log secret key material.
 */
#ifndef PD_LOG_H
#define PD_LOG_H

typedef enum {
    PD_LOG_ERROR = 3,
    PD_LOG_WARN = 4,
    PD_LOG_INFO = 6,
    PD_LOG_DEBUG = 7,
} pd_log_level_t;

/* Set the most verbose level that is printed (default PD_LOG_INFO). */
void pd_log_set_level(pd_log_level_t level);

/* Parse "error", "warn", "info", "debug". Returns 0 or -EINVAL. */
int pd_log_parse_level(const char *name, pd_log_level_t *out);

/* Print one line at level. */
void pd_log(pd_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Like pd_log(), but at most one line per key per second; the next line
 * printed for that key says how many were suppressed. Use for anything a
 * peer can trigger. key is a small integer chosen by the caller (< 64).
 */
void pd_log_limited(unsigned key, pd_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* PD_LOG_H */
