/*
 * clock.c - the monotonic clock (clock.h).
 */
#include "clock.h"

#include <time.h>

int64_t
parley__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
parley__mono_ms(void)
{
    return parley__mono_us() / 1000;
}
