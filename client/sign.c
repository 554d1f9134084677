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
#include <stdbool.h>
#include <stddef.h>
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
    if ((rc = parley_update_validate(u, NULL, 0)) < 0)
        return rc;
    if ((rc = parley__update_encode(u, body, sizeof(body), &body_len)) < 0)
        return rc;
    if ((rc = parley__signature_make(key, body, body_len, sig)) < 0)
        return rc;
    parley_key_public(key, pk);
    return parley__envelope_encode(body, body_len, pk, sig, buf, cap, len);
}

int
parley__verify_prepare(parley__verify_t *v, const parley_keyring_t *ring,
                       const void *buf, size_t len)
{
    v->decoded = 0;
    parley__arena_init(&v->arena, v->space, sizeof(v->space));
    if (buf == NULL)
        return PARLEY_EARG;
    int rc = parley__envelope_decode(buf, len, &v->env, &v->arena);
    if (rc < 0)
        return rc;
    v->decoded = 1;
    if (ring != NULL && parley_keyring_name(ring, v->env.signer) == NULL)
        return PARLEY_EUNKNOWNSIGNER;
    return 0;
}

int
parley__verify_signature(const parley__verify_t *v)
{
    const parley__envelope_t *env = &v->env;
    if (!v->decoded)
        return PARLEY_EARG;
    return parley__signature_check(env->signer, env->signature,
                                   env->body.data, env->body.len);
}

int
parley__verify_body(parley__verify_t *v, const parley_keyring_t *ring,
                    parley_update_t *out,
                    uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    const parley__envelope_t *env = &v->env;
    int rc;
    if (!v->decoded || out == NULL)
        return PARLEY_EARG;
    if ((rc = parley__update_decode(env->body.data, env->body.len, out,
                                    &v->arena))
        < 0)
        return rc;
    if ((rc = parley_update_validate(out, NULL, 0)) < 0)
        return rc;
    if (ring != NULL
        && (rc = parley_keyring_allows(ring, env->signer, out)) < 0)
        return rc;
    if (signer != NULL)
        memcpy(signer, env->signer, PARLEY_PUBLICKEY_BYTES);
    return 0;
}

int
parley__verify_finish(parley__verify_t *v, const parley_keyring_t *ring,
                      parley_update_t *out,
                      uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    if (out == NULL)
        return PARLEY_EARG;
    int rc = parley__verify_signature(v);
    return rc < 0 ? rc : parley__verify_body(v, ring, out, signer);
}

void
parley__verify_end(parley__verify_t *v)
{
    parley__arena_reset(&v->arena);
    v->decoded = 0;
}

int
parley_verify(const parley_keyring_t *ring, const void *buf, size_t len,
              parley_update_t *out, uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    parley__verify_t v;
    if (buf == NULL || out == NULL)
        return PARLEY_EARG;
    int rc = parley__verify_prepare(&v, ring, buf, len);
    if (rc == 0)
        rc = parley__verify_finish(&v, ring, out, signer);
    parley__verify_end(&v);
    return rc;
}

int
parley_envelope_unpack(const void *env, size_t len, void *body, size_t cap,
                       size_t *body_len, uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                       uint8_t signature[PARLEY_SIGNATURE_BYTES])
{
    uint8_t space[512];
    parley__arena_t arena;
    parley__envelope_t e;
    if (env == NULL || (body == NULL && cap > 0) || body_len == NULL
        || signer == NULL || signature == NULL)
        return PARLEY_EARG;
    parley__arena_init(&arena, space, sizeof(space));
    int rc = parley__envelope_decode(env, len, &e, &arena);
    if (rc == 0) {
        *body_len = e.body.len;
        if (e.body.len > cap) {
            rc = -ENOBUFS;
        } else {
            memcpy(body, e.body.data, e.body.len);
            memcpy(signer, e.signer, PARLEY_PUBLICKEY_BYTES);
            memcpy(signature, e.signature, PARLEY_SIGNATURE_BYTES);
        }
    }
    parley__arena_reset(&arena);
    return rc;
}

int
parley_envelope_pack(const void *body, size_t body_len,
                     const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                     const uint8_t signature[PARLEY_SIGNATURE_BYTES], void *buf,
                     size_t cap, size_t *len)
{
    if (body == NULL || body_len == 0 || signer == NULL || signature == NULL
        || buf == NULL || len == NULL)
        return PARLEY_EARG;
    return parley__envelope_encode(body, body_len, signer, signature, buf, cap,
                                   len);
}

/* ------------------------------------------------------------ self-test */

/* The order of the Ed25519 base point, little-endian. */
static const uint8_t s_group_order[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
    0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

int
parley__sign_selftest(void)
{
    static const uint8_t body[] = "parley self-test";
    uint8_t seed[32], sig[PARLEY_SIGNATURE_BYTES];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    int bad = 0;

    if (parley__sodium_init() < 0)
        return -ENOSYS;
    memset(seed, 0x5a, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    if (key == NULL)
        return -errno;
    parley_key_public(key, pk);
    int rc = parley__signature_make(key, body, sizeof(body), sig);
    parley_key_destroy(&key);
    if (rc < 0)
        return rc;
    /* A good signature must pass, or the checks below prove nothing. */
    if (parley__signature_check(pk, sig, body, sizeof(body)) != 0)
        bad++;

    /* S + L: the same scalar, not reduced. S < L < 2^253, so the sum
     * still fits the 32 bytes. */
    uint8_t *s = sig + 32;
    unsigned carry = 0;
    for (size_t i = 0; i < 32; i++) {
        unsigned t = (unsigned)s[i] + s_group_order[i] + carry;
        s[i] = (uint8_t)t;
        carry = t >> 8;
    }
    if (carry != 0 || parley__signature_check(pk, sig, body, sizeof(body))
                          != PARLEY_EBADSIG)
        bad++;

    /* The identity point as public key and as R, with S = 0: 8 * (S B)
     * = 8 * R + 8 * h A holds for every message. */
    memset(pk, 0, sizeof(pk));
    pk[0] = 0x01;
    memset(sig, 0, sizeof(sig));
    sig[0] = 0x01;
    if (parley__signature_check(pk, sig, body, sizeof(body))
        != PARLEY_EBADSIG)
        bad++;
    /* The same small-order key must not pass the keyring's check either. */
    if (crypto_core_ed25519_is_valid_point(pk) != 0)
        bad++;
    return bad == 0 ? 0 : -EPROTO;
}

int
parley_delivery_decode(const parley_keyring_t *ring, const void *buf,
                       size_t len, parley_delivery_t *out)
{
    _Alignas(16) uint8_t space[PARLEY__VERIFY_ARENA];
    parley__arena_t arena;
    parley__bytes_t update;
    int rc;

    if (buf == NULL || out == NULL)
        return PARLEY_EARG;
    /* The key id of the signer of the delivery decoded into out before,
     * kept for when it is the same signer (a hash less per delivery for
     * a subscriber). */
    uint8_t prev[PARLEY_PUBLICKEY_BYTES];
    char prev_id[PARLEY_KEYID_CHARS + 1];
    bool have_prev = out->signer_id[0] != '\0';
    if (have_prev) {
        memcpy(prev, out->signer, sizeof(prev));
        memcpy(prev_id, out->signer_id, sizeof(prev_id));
    }
    /* Empty, but keep an envelope buffer the delivery owns for reuse. */
    uint8_t *keep = out->envelope_cap > 0 ? out->envelope : NULL;
    size_t keep_cap = out->envelope_cap;
    memset(out, 0, sizeof(*out));
    out->envelope = keep;
    out->envelope_cap = keep_cap;
    parley__arena_init(&arena, space, sizeof(space));
    rc = parley__delivery_decode_raw(buf, len, &out->seq, &out->received_at,
                                     &update, &arena);
    if (rc == 0)
        rc = parley_verify(ring, update.data, update.len, &out->update,
                           out->signer);
    if (rc == 0)
        rc = parley__delivery_set_envelope(out, update.data, update.len);
    parley__arena_reset(&arena);
    if (rc < 0) {
        memset(out, 0, offsetof(parley_delivery_t, envelope));
        out->envelope_len = 0;
        return rc;
    }
    if (have_prev && memcmp(prev, out->signer, sizeof(prev)) == 0)
        memcpy(out->signer_id, prev_id, sizeof(prev_id));
    else
        parley_key_id(out->signer, out->signer_id);
    const char *name = ring != NULL ? parley_keyring_name(ring, out->signer)
                                    : NULL;
    snprintf(out->signer_name, sizeof(out->signer_name), "%s",
             name != NULL ? name : "");
    return 0;
}
