/*
 * log.h - parleyd's log: one line per event on stderr, with a level.
 *
 * Lines look like "<6>parleyd: message" when stderr goes to the journal
 * (JOURNAL_STREAM set) and "2026-11-28T20:58:15Z info message" otherwise.
 * Never log secret key material.
 */
#ifndef PD_LOG_H
#define PD_LOG_H

#include <stdint.h>

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
 * The rate-limited lines, one key each (pd_log_limited()): lines of one
 * key share one budget of a line per second. Every key is named here, so
 * two kinds of line cannot share a budget by accident.
 */
typedef enum pd_log_key {
    PD_LOG_KEY_SCAN = 0,         /* index: a logged record does not decode */
    PD_LOG_KEY_API,              /* api: receive, send, internal errors */
    PD_LOG_KEY_QUERY,            /* query: a replay or snapshot failed */
    PD_LOG_KEY_BAD_SIGNATURES,   /* ingest: a peer sent a forgery burst */
    PD_LOG_KEY_STORAGE,          /* storage: an update refused for memory */
    PD_LOG_KEY_FEED_SEND,        /* feed: a heartbeat or sys/stats/ not sent */
    PD_LOG_KEY_FEED_PEER,        /* feed: a peer sent a non-subscription */
    PD_LOG_KEY_RETENTION,        /* server: retention failed */
    PD_LOG_KEY_ZAP_DENIED,       /* zap: a client refused by the allow-list */
    PD_LOG_KEY_ZAP_REFUSED,      /* zap: over max_connections */
    PD_LOG_KEY_ZAP_HANDSHAKE,    /* zap: a handshake failed */
    PD_LOG_KEY_ZAP_SUBSCRIBE,    /* zap: a subscription refused */
    PD_LOG_KEY_ZAP_PARTIAL,      /* zap: ... as not a whole topic */
    PD_LOG_KEY_ZAP,              /* zap: the handler's own errors */
    PD_LOG_KEY_WITNESS,          /* cosign: a witness request failed */
    PD_LOG_KEY_TLOG,             /* translog: a proof could not be made */
    PD_LOG_KEY_TREE_WRITE,       /* translog: the hash file's write or sync */
    PD_LOG_KEY_STORE_SYNC,       /* store: a write or sync failed */
    PD_LOG_KEY_STORE_RESERVE,    /* store: the disk reserve runs short */
    PD_LOG_KEY_CLUSTER,          /* cluster: a stream record refused */
    PD_LOG_KEY_CLUSTER_SUBMIT,   /* cluster: a publish answered unavailable
                                    for a cause no outage explains */
    PD_LOG_KEY_REJECT,           /* a reject, one key per code from here:
                                    + (-(code) - 1001), 13 codes */
    PD_LOG_KEY_COUNT = PD_LOG_KEY_REJECT + 13
} pd_log_key_t;

/*
 * Like pd_log(), but at most one line per key per second; the next line
 * printed for that key says how many were suppressed. Use for anything a
 * peer can trigger.
 */
void pd_log_limited(pd_log_key_t key, pd_log_level_t level, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

/*
 * A failure a retry may repeat (a full disk: once a second): the first
 * is logged at once, the same one again once per period_ms with a count.
 * Zero-initialise; pd_log_repeat_clear() when it works again.
 */
typedef struct pd_log_repeat {
    int err;           /* the last failure's code, 0 = none since clear */
    int64_t logged_ms; /* CLOCK_MONOTONIC ms of its last line */
    uint64_t held;     /* failures alike not logged since */
} pd_log_repeat_t;

/*
 * Log the failure err (a negative code) through the limited line of key
 * as above: at once when it differs from the last one or period_ms have
 * passed (with "(N more failures alike since the last line)"), else only
 * counted.
 */
void pd_log_repeated(pd_log_repeat_t *r, pd_log_key_t key, pd_log_level_t level,
                     int err, int64_t period_ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* It works again: the next failure is logged at once. */
void pd_log_repeat_clear(pd_log_repeat_t *r);

#endif /* PD_LOG_H */
