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

/* ------------------------------------------------------------- CURVE */

#define PARLEY__CURVE_BYTES 32 /* a Curve25519 key, binary */

/*
 * Parse a CURVE public key: 40 characters of Z85, then the end of the
 * text, a space, a tab or a newline (the NAME.pub line format).
 * Returns 0 or PARLEY_EKEYFILE.
 */
int parley__curve_public_parse(const char *text,
                               uint8_t out[PARLEY__CURVE_BYTES]);

/*
 * Read a CURVE secret key file (the format parley_curve_keygen() writes)
 * with the same ownership and mode rules as parley_key_load(). secret
 * should point into guarded memory (sodium_malloc); the file's text is
 * wiped from the stack before returning. public_z85 (may be NULL)
 * receives the public key derived from the secret, as Z85.
 *
 * Returns:   0, PARLEY_EKEYPERM, PARLEY_EKEYFILE or -errno.
 */
int parley__curve_secret_load(const char *path,
                              char public_z85[PARLEY_CURVE_KEY_CHARS + 1],
                              uint8_t secret[PARLEY__CURVE_BYTES]);

/*
 * Make sock a CurveZMQ client of the server in curve (ZMQ_CURVE_SERVERKEY,
 * ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY); a NULL curve does nothing.
 * Call before connecting. Returns 0 or -errno from libzmq.
 */
int parley__curve_apply(const parley_curve_t *curve, void *sock);

#endif /* PARLEY_KEYS_H */
