/*
 * tlog_keys.h - the transparency log the note, cosig and proof targets
 * check against: the names and fixed-seed keys of tests/vectors/tlog
 * (log key: 32 bytes of 0x03; witness key: 32 bytes of 0x04), so the
 * seeds gen_seeds.c signs with them reach the verifiers' success paths.
 */
#ifndef PARLEY_FUZZ_TLOG_KEYS_H
#define PARLEY_FUZZ_TLOG_KEYS_H

#include "parley.h"

#include <stdlib.h>
#include <string.h>

#define PARLEY_FUZZ_ORIGIN "parley.example.org/gaza"
#define PARLEY_FUZZ_WITNESS "witness.example.org/w1"
#define PARLEY_FUZZ_LOG_SEED 3
#define PARLEY_FUZZ_WITNESS_SEED 4

/* The public key of the key whose seed is 32 bytes of b. */
static inline void
fuzz_public_key(uint8_t b, uint8_t pk[PARLEY_PUBLICKEY_BYTES])
{
    uint8_t seed[32];
    memset(seed, b, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    if (key == NULL)
        abort();
    parley_key_public(key, pk);
    parley_key_destroy(&key);
}

#endif
