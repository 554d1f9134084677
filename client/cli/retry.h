/*
 * retry.h - when to try a failed alert again: exponential backoff with
 * jitter, within a retry window.
 *
 * Attempt n (n = 1 after the first failure) waits
 *     d = min(max_ms, min_ms * 2^(n-1)),
 * then a random time in [d/2, d] ("equal jitter": many subscribers that
 * failed at once do not come back at once, and no wait is shorter than
 * half the nominal one). The last attempt is made at the end of the
 * window: an update gets one more try when the window closes, then it
 * goes to the dead-letter file.
 */
#ifndef PARLEY_CLI_RETRY_H
#define PARLEY_CLI_RETRY_H

#include <stdint.h>

typedef struct cli_retry {
    int64_t window_ms;  /* --retry-for: 0 = no retries */
    int64_t min_ms;     /* first wait, before jitter */
    int64_t max_ms;     /* longest wait, before jitter */
} cli_retry_t;

/*
 * When to try again after failure number `failures` (1, 2, ...) of an
 * update whose first attempt started at first_ms, now being now_ms;
 * hint_ms (0 if none) is a wait the receiver asked for (Retry-After),
 * honoured within the window. rnd is a random 32-bit value (the jitter).
 *
 * Returns:   the time (same clock as now_ms) of the next attempt, or -1
 *            when the window is over: the update is dead-lettered.
 * Threads:   safe.
 */
int64_t cli_retry_next(const cli_retry_t *r, unsigned failures,
                       int64_t first_ms, int64_t now_ms, int64_t hint_ms,
                       uint32_t rnd);

#endif /* PARLEY_CLI_RETRY_H */
