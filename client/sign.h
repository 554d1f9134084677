/*
 * sign.h - library-internal signature primitives.
 */
#ifndef PARLEY_SIGN_H
#define PARLEY_SIGN_H

#include "parley.h"

/*
 * Check an Ed25519 signature over context || body.
 * Returns 0, PARLEY_EBADSIG or -ENOMEM.
 */
int parley__signature_check(const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                            const uint8_t sig[PARLEY_SIGNATURE_BYTES],
                            const uint8_t *body, size_t len);

/* Sign context || body with key. Returns 0 or -ENOMEM. */
int parley__signature_make(const parley_key_t *key, const uint8_t *body,
                           size_t len, uint8_t sig[PARLEY_SIGNATURE_BYTES]);

#endif /* PARLEY_SIGN_H */
