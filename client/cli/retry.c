/*
 * retry.c - exponential backoff with jitter in a window (retry.h).
 */
#include "retry.h"

int64_t
cli_retry_next(const cli_retry_t *r, unsigned failures, int64_t first_ms,
               int64_t now_ms, int64_t hint_ms, uint32_t rnd)
{
    int64_t end = first_ms + r->window_ms;
    if (r->window_ms <= 0 || now_ms >= end)
        return -1;
    int64_t d = r->min_ms > 0 ? r->min_ms : 1;
    for (unsigned i = 1; i < failures && d < r->max_ms; i++)
        d *= 2;
    if (d > r->max_ms && r->max_ms > 0)
        d = r->max_ms;
    /* equal jitter: [d/2, d] */
    int64_t half = d / 2;
    int64_t wait = half + (int64_t)(rnd % (uint64_t)(d - half + 1));
    if (hint_ms > wait)
        wait = hint_ms;
    int64_t at = now_ms + wait;
    return at < end ? at : end;
}
