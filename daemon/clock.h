/*
 * clock.h - parleyd's one reading of CLOCK_MONOTONIC, for timers, rate
 * limits and grace periods (never for timestamps that leave the daemon).
 */
#ifndef PD_CLOCK_H
#define PD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in microseconds. */
static inline int64_t
pd_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline int64_t
pd_mono_ms(void)
{
    return pd_mono_us() / 1000;
}

#endif /* PD_CLOCK_H */
