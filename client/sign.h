/*
 * sign.h - library-internal signature primitives.
 */
#ifndef PARLEY_SIGN_H
#define PARLEY_SIGN_H

#include "codec.h"
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

/* Arena space for one envelope decode; larger input spills to the heap. */
#define PARLEY__VERIFY_ARENA 16384

/*
 * parley_verify() in two steps, so that parleyd can apply its rate limits
 * between the cheap checks and the signature check (DESIGN.md "What
 * parleyd checks"): prepare decodes the envelope and looks the signer up,
 * finish checks the signature, the body and the permissions. Both steps
 * are the very code parley_verify() runs, so the order of the checks and
 * the codes they give are the same everywhere.
 */
typedef struct parley__verify {
    parley__arena_t arena;          /* holds the decoded envelope */
    parley__envelope_t env;         /* valid after prepare returned 0 */
    int decoded;                    /* 1 once env holds a decoded envelope */
    _Alignas(16) uint8_t space[PARLEY__VERIFY_ARENA];
} parley__verify_t;

/*
 * Step 1: decode the envelope (MALFORMED: bad bytes, key not 32 bytes,
 * signature not 64) and, with ring not NULL, find the signer in it
 * (UNKNOWNSIGNER). v->env.signer is valid whenever v->decoded is 1, also
 * after UNKNOWNSIGNER. Always end with parley__verify_end().
 *
 * Returns:   0, PARLEY_EMALFORMED, PARLEY_EUNKNOWNSIGNER or PARLEY_EARG.
 */
int parley__verify_prepare(parley__verify_t *v, const parley_keyring_t *ring,
                           const void *buf, size_t len);

/*
 * Step 2, after prepare returned 0: the signature (BADSIG), the body
 * decodes and validates (INVALID), and with ring not NULL the keyring
 * permits it (FORBIDDEN). signer (may be NULL) receives the signer's key
 * on success. The same as parley__verify_signature() followed by
 * parley__verify_body().
 *
 * Returns:   0, PARLEY_EBADSIG, PARLEY_EINVALID, PARLEY_EFORBIDDEN or
 *            -ENOMEM.
 */
int parley__verify_finish(parley__verify_t *v, const parley_keyring_t *ring,
                          parley_update_t *out,
                          uint8_t signer[PARLEY_PUBLICKEY_BYTES]);

/*
 * Step 2a: only the signature. Reads v and nothing else, so checks of
 * different envelopes may run on different threads.
 *
 * Returns:   0, PARLEY_EBADSIG, PARLEY_EARG or -ENOMEM.
 */
int parley__verify_signature(const parley__verify_t *v);

/*
 * Step 2b, after the signature passed: body, validation, permissions.
 *
 * Returns:   0, PARLEY_EINVALID, PARLEY_EFORBIDDEN or PARLEY_EARG.
 */
int parley__verify_body(parley__verify_t *v, const parley_keyring_t *ring,
                        parley_update_t *out,
                        uint8_t signer[PARLEY_PUBLICKEY_BYTES]);

/* Release what the decode used; v can be prepared again. */
void parley__verify_end(parley__verify_t *v);

/*
 * Check that this libsodium refuses the signatures a careless Ed25519
 * verifier accepts: one under a small-order public key (the identity,
 * with R the identity and S = 0, which satisfies the verification
 * equation) and one whose S is not reduced (a valid signature with L
 * added to S). parleyd refuses to start if this fails.
 *
 * Returns:   0 when all is well, -EPROTO when one of them verified (or
 *            a good signature did not), -ENOSYS when libsodium does not
 *            initialise.
 */
int parley__sign_selftest(void);

#endif /* PARLEY_SIGN_H */
