/*
 * fuzz.h - shared by the fuzz targets.
 */
#ifndef PARLEY_FUZZ_H
#define PARLEY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Results a target does not need; the call itself is what is fuzzed. */
#define FUZZ_IGNORE(expr)                                                     \
    do {                                                                      \
        if ((expr) != 0) {                                                    \
        }                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input, for text parsers. */
static inline char *
fuzz_strdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
