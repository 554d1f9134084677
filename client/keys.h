/*
 * keys.h - library-internal access to keys.
 */
#ifndef PARLEY_KEYS_H
#define PARLEY_KEYS_H

#include "parley.h"

/* Initialize libsodium once per process. Returns 0 or -ENOSYS. */
int parley__sodium_init(void);

/* The 64-byte libsodium secret key (seed || public key). */
const uint8_t *parley__key_secret(const parley_key_t *key);

#endif /* PARLEY_KEYS_H */
