/*
 * sign.c - signing and verification of updates.
 *
 * A signature covers "parley/update/v1" || 0x00 || body, where body is the
 * exact serialized StatusUpdate. The context string keeps a parley
 * signature from ever being valid for anything else a key might sign.
 * Verification runs on the received bytes before the body is decoded;
 * nothing is ever re-serialized to be checked.
 */
#include "codec.h"
#include "keys.h"
#include "sign.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CONTEXT_LEN (sizeof(PARLEY_SIGN_CONTEXT)) /* includes the 0x00 */
#define S_STACK_MSG 8192

/*
 * Run f over context || body. Bodies of valid updates fit on the stack;
 * longer ones (which will fail validation, but must first fail or pass
 * the signature check in the documented order) go to the heap.
 */
static int
s_with_message(const uint8_t *body, size_t len,
               int (*f)(void *ctx, const uint8_t *msg, size_t n), void *ctx)
{
    uint8_t stack[S_STACK_MSG];
    uint8_t *msg = stack;
    if (len > sizeof(stack) - S_CONTEXT_LEN) {
        if ((msg = malloc(S_CONTEXT_LEN + len)) == NULL)
            return -ENOMEM;
    }
    memcpy(msg, PARLEY_SIGN_CONTEXT, S_CONTEXT_LEN);
    memcpy(msg + S_CONTEXT_LEN, body, len);
    int rc = f(ctx, msg, S_CONTEXT_LEN + len);
    if (msg != stack)
        free(msg);
    return rc;
}

typedef struct {
    const uint8_t *sig;
    const uint8_t *pk;
    uint8_t *sig_out;
    const uint8_t *sk;
} s_sigctx_t;

static int
s_verify_cb(void *ctx, const uint8_t *msg, size_t n)
{
    s_sigctx_t *c = ctx;
    return crypto_sign_verify_detached(c->sig, msg, n, c->pk) == 0
               ? 0
               : PARLEY_EBADSIG;
}

static int
s_sign_cb(void *ctx, const uint8_t *msg, size_t n)
{
    s_sigctx_t *c = ctx;
    crypto_sign_detached(c->sig_out, NULL, msg, n, c->sk);
    return 0;
}

int
parley__signature_check(const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                        const uint8_t sig[PARLEY_SIGNATURE_BYTES],
                        const uint8_t *body, size_t len)
{
    if (parley__sodium_init() < 0)
        return -ENOSYS;
    s_sigctx_t c = { .sig = sig, .pk = pk };
    return s_with_message(body, len, s_verify_cb, &c);
}

int
parley__signature_make(const parley_key_t *key, const uint8_t *body,
                       size_t len, uint8_t sig[PARLEY_SIGNATURE_BYTES])
{
    s_sigctx_t c = { .sig_out = sig, .sk = parley__key_secret(key) };
    return s_with_message(body, len, s_sign_cb, &c);
}

int
parley_sign(const parley_key_t *key, const parley_update_t *u, void *buf,
            size_t cap, size_t *len)
{
    uint8_t body[PARLEY_ENVELOPE_MAX];
    size_t body_len;
    uint8_t sig[PARLEY_SIGNATURE_BYTES];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    int rc;

    if (key == NULL || u == NULL || buf == NULL || len == NULL)
        return PARLEY_EARG;
    if ((rc = parley_update_validate(u)) < 0)
        return rc;
    if ((rc = parley__update_encode(u, body, sizeof(body), &body_len)) < 0)
        return rc;
    if ((rc = parley__signature_make(key, body, body_len, sig)) < 0)
        return rc;
    parley_key_public(key, pk);
    return parley__envelope_encode(body, body_len, pk, sig, buf, cap, len);
}

/* Arena space for one decode on the stack; larger input spills to heap. */
#define S_ARENA 16384

int
parley_verify(const parley_keyring_t *ring, const void *buf, size_t len,
              parley_update_t *out, uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    _Alignas(16) uint8_t space[S_ARENA];
    parley__arena_t arena;
    parley__envelope_t env;
    int rc;

    if (buf == NULL || out == NULL)
        return PARLEY_EARG;
    parley__arena_init(&arena, space, sizeof(space));
    if ((rc = parley__envelope_decode(buf, len, &env, &arena)) < 0)
        goto out;
    if (ring != NULL && parley_keyring_name(ring, env.signer) == NULL) {
        rc = PARLEY_EUNKNOWNSIGNER;
        goto out;
    }
    rc = parley__signature_check(env.signer, env.signature, env.body.data,
                                 env.body.len);
    if (rc < 0)
        goto out;
    if ((rc = parley__update_decode(env.body.data, env.body.len, out,
                                    &arena))
        < 0)
        goto out;
    if ((rc = parley_update_validate(out)) < 0)
        goto out;
    if (ring != NULL && (rc = parley_keyring_allows(ring, env.signer, out)) < 0)
        goto out;
    if (signer != NULL)
        memcpy(signer, env.signer, PARLEY_PUBLICKEY_BYTES);
out:
    parley__arena_reset(&arena);
    return rc;
}

int
parley_delivery_decode(const parley_keyring_t *ring, const void *buf,
                       size_t len, parley_delivery_t *out)
{
    _Alignas(16) uint8_t space[S_ARENA];
    parley__arena_t arena;
    parley__bytes_t update;
    int rc;

    if (buf == NULL || out == NULL)
        return PARLEY_EARG;
    parley__arena_init(&arena, space, sizeof(space));
    rc = parley__delivery_decode_raw(buf, len, &out->seq, &out->received_at,
                                     &update, &arena);
    if (rc == 0)
        rc = parley_verify(ring, update.data, update.len, &out->update,
                           out->signer);
    parley__arena_reset(&arena);
    if (rc < 0)
        return rc;
    parley_key_id(out->signer_id, out->signer);
    const char *name = ring != NULL ? parley_keyring_name(ring, out->signer)
                                    : NULL;
    snprintf(out->signer_name, sizeof(out->signer_name), "%s",
             name != NULL ? name : "");
    return 0;
}
