/*
 * clock.h - the one monotonic clock of libparley, parleyd and the tests
 * (library-internal).
 *
 * CLOCK_MONOTONIC, for timeouts, timers and rate limits; never for
 * timestamps that leave the process (those are wall-clock unix ms, see
 * parley_now_ms()). The CLI keeps its own, as it uses only the public API.
 */
#ifndef PARLEY_CLOCK_H
#define PARLEY_CLOCK_H

#include <stdint.h>

/*
 * Current CLOCK_MONOTONIC time in milliseconds, and in microseconds.
 *
 * Threads:   safe from any thread.
 */
int64_t parley__mono_ms(void);
int64_t parley__mono_us(void);

#endif /* PARLEY_CLOCK_H */
