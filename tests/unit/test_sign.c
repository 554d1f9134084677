/*
 * test_sign.c - parley_sign, parley_verify, parley_delivery_decode, and
 * the golden vectors of tests/vectors/.
 *
 * parley_verify must apply its checks in parleyd's order (MALFORMED,
 * UNKNOWNSIGNER, BADSIG, INVALID, FORBIDDEN); several tests build inputs
 * that fail two checks at once to pin that order.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "codec.h"
#include "keys.h"
#include "parley.h"
#include "sign.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- helpers */

/* A valid, fully populated update (the running example). */
static void
s_update(parley_update_t *u)
{
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire");
    strcpy(u->parties[0], "israel");
    strcpy(u->parties[1], "hamas");
    strcpy(u->parties[2], "us");
    u->n_parties = 3;
    u->phase = 1;
    u->status = PARLEY_STATUS_TALKS_SCHEDULED;
    u->kind = PARLEY_KIND_UPDATE;
    strcpy(u->headline, "Talks scheduled in Cairo on Tuesday");
    strcpy(u->body, "Delegations invited.");
    strcpy(u->location, "Cairo");
    u->scheduled_at = 1717430400000;
    u->issued_at = 1717000000000;
    u->signer_seq = 1717000000000000;
    u->expires_at = 1717516800000;
}

static parley_key_t *
s_key(uint8_t fill)
{
    uint8_t seed[32];
    memset(seed, fill, sizeof(seed));
    parley_key_t *k = parley_key_from_seed(seed);
    assert_non_null(k);
    return k;
}

/* Keyring with one signer NAME for key with the given permissions. */
static parley_keyring_t *
s_ring(const char *name, const parley_key_t *key, const char *perms)
{
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char b64[45], text[512], err[256] = "";
    parley_key_public(key, pk);
    parley_pubkey_format(pk, b64);
    snprintf(text, sizeof(text), "%s %s %s\n", name, b64, perms);
    parley_keyring_t *ring =
        parley_keyring_parse(text, strlen(text), err, sizeof(err));
    if (ring == NULL)
        fail_msg("keyring: %s", err);
    return ring;
}

#define S_ANY "negotiations=* parties=* phases=*"

/* Sign u with key into env; returns the envelope length. */
static size_t
s_sign(const parley_key_t *key, const parley_update_t *u, uint8_t *env)
{
    size_t len = 0;
    assert_int_equal(parley_sign(key, u, env, PARLEY_ENVELOPE_MAX, &len), 0);
    assert_true(len > 0 && len <= PARLEY_ENVELOPE_MAX);
    return len;
}

/*
 * Sign arbitrary body bytes (bypassing parley_sign's validation) and wrap
 * them in an envelope, as a misbehaving publisher could.
 */
static size_t
s_sign_raw(const parley_key_t *key, const uint8_t *body, size_t body_len,
           uint8_t *env, size_t cap)
{
    uint8_t sig[PARLEY_SIGNATURE_BYTES], pk[PARLEY_PUBLICKEY_BYTES];
    size_t len = 0;
    assert_int_equal(parley__signature_make(key, body, body_len, sig), 0);
    parley_key_public(key, pk);
    assert_int_equal(
        parley__envelope_encode(body, body_len, pk, sig, env, cap, &len), 0);
    return len;
}

/* Sign an update that skips validation (encode + raw sign). */
static size_t
s_sign_unvalidated(const parley_key_t *key, const parley_update_t *u,
                   uint8_t *env)
{
    uint8_t body[PARLEY_ENVELOPE_MAX];
    size_t body_len = 0;
    assert_int_equal(parley__update_encode(u, body, sizeof(body), &body_len),
                     0);
    return s_sign_raw(key, body, body_len, env, PARLEY_ENVELOPE_MAX);
}

/* Offset and length of the body inside an envelope (field 1 comes first). */
static void
s_body_range(const uint8_t *env, size_t env_len, size_t *off, size_t *len)
{
    uint64_t n = 0;
    size_t i = 1;
    unsigned shift = 0;
    assert_int_equal(env[0], 0x0a); /* field 1, length-delimited */
    do {
        n |= (uint64_t)(env[i] & 0x7f) << shift;
        shift += 7;
    } while (env[i++] & 0x80);
    assert_true(i + n <= env_len);
    *off = i;
    *len = (size_t)n;
}

/* ------------------------------------------------------- sign/verify */

static void
test_sign_verify_roundtrip(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x11);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX], signer[PARLEY_PUBLICKEY_BYTES],
        pk[PARLEY_PUBLICKEY_BYTES];
    s_update(&u);
    size_t len = s_sign(key, &u, env);

    memset(&out, 0xAA, sizeof(out));
    memset(signer, 0, sizeof(signer));
    assert_int_equal(parley_verify(NULL, env, len, &out, signer), 0);
    assert_memory_equal(&out, &u, sizeof(u));
    parley_key_public(key, pk);
    assert_memory_equal(signer, pk, sizeof(pk));

    /* signer may be NULL */
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), 0);

    /* with a keyring that allows everything */
    parley_keyring_t *ring = s_ring("mediator", key, S_ANY);
    assert_int_equal(parley_verify(ring, env, len, &out, signer), 0);
    assert_memory_equal(&out, &u, sizeof(u));

    /* the envelope holds the signature over context || body */
    uint8_t space[4096];
    parley__arena_t arena;
    parley__envelope_t e;
    parley__arena_init(&arena, space, sizeof(space));
    assert_int_equal(parley__envelope_decode(env, len, &e, &arena), 0);
    assert_int_equal(
        parley__signature_check(pk, e.signature, e.body.data, e.body.len), 0);
    uint8_t *msg = malloc(sizeof(PARLEY_SIGN_CONTEXT) + e.body.len);
    assert_non_null(msg);
    memcpy(msg, PARLEY_SIGN_CONTEXT, sizeof(PARLEY_SIGN_CONTEXT));
    memcpy(msg + sizeof(PARLEY_SIGN_CONTEXT), e.body.data, e.body.len);
    assert_int_equal(
        crypto_sign_verify_detached(
            e.signature, msg, sizeof(PARLEY_SIGN_CONTEXT) + e.body.len, pk),
        0);
    /* ... and not over the bare body: the context is really there */
    assert_int_not_equal(
        crypto_sign_verify_detached(e.signature, e.body.data, e.body.len, pk),
        0);
    free(msg);
    parley__arena_reset(&arena);

    parley_keyring_destroy(&ring);
    parley_key_destroy(&key);
    assert_null(key);
}

static void
test_sign_args_and_space(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x12);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    s_update(&u);
    size_t full = s_sign(key, &u, env);

    assert_int_equal(parley_sign(key, &u, env, full - 1, &len), -ENOBUFS);
    assert_int_equal(parley_sign(key, &u, env, 0, &len), -ENOBUFS);
    assert_int_equal(parley_sign(key, &u, env, full, &len), 0);
    assert_int_equal(len, full);

    assert_int_equal(parley_sign(NULL, &u, env, sizeof(env), &len),
                     PARLEY_EARG);
    assert_int_equal(parley_sign(key, NULL, env, sizeof(env), &len),
                     PARLEY_EARG);
    assert_int_equal(parley_sign(key, &u, NULL, sizeof(env), &len),
                     PARLEY_EARG);
    assert_int_equal(parley_sign(key, &u, env, sizeof(env), NULL), PARLEY_EARG);
    assert_int_equal(parley_verify(NULL, NULL, 10, &u, NULL), PARLEY_EARG);
    assert_int_equal(parley_verify(NULL, env, full, NULL, NULL), PARLEY_EARG);
    parley_key_destroy(&key);
}

/* The largest valid update still fits PARLEY_ENVELOPE_MAX. */
static void
test_sign_largest_update(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x13);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    s_update(&u);
    memset(u.negotiation, 'n', PARLEY_SLUG_MAX);
    u.negotiation[PARLEY_SLUG_MAX] = '\0';
    u.n_parties = PARLEY_PARTIES_MAX;
    for (size_t i = 0; i < PARLEY_PARTIES_MAX; i++) {
        memset(u.parties[i], 'p', PARLEY_SLUG_MAX);
        u.parties[i][PARLEY_SLUG_MAX - 2] = (char)('a' + i / 10);
        u.parties[i][PARLEY_SLUG_MAX - 1] = (char)('a' + i % 10);
        u.parties[i][PARLEY_SLUG_MAX] = '\0';
    }
    u.kind = PARLEY_KIND_RETRACTION;
    u.n_references = PARLEY_REFERENCES_MAX;
    for (size_t i = 0; i < PARLEY_REFERENCES_MAX; i++)
        u.references[i] = (uint64_t)INT64_MAX - i;
    u.phase = PARLEY_PHASE_MAX;
    memset(u.headline, 'h', PARLEY_HEADLINE_MAX);
    u.headline[PARLEY_HEADLINE_MAX] = '\0';
    memset(u.body, 'b', PARLEY_BODY_MAX);
    u.body[PARLEY_BODY_MAX] = '\0';
    memset(u.location, 'l', PARLEY_LOCATION_MAX);
    u.location[PARLEY_LOCATION_MAX] = '\0';
    u.scheduled_at = INT64_MAX;
    u.issued_at = INT64_MAX - 1;
    u.expires_at = INT64_MAX;
    u.signer_seq = (uint64_t)INT64_MAX;
    assert_int_equal(parley_update_validate(&u, NULL, 0), 0);
    size_t len = s_sign(key, &u, env);
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), 0);
    assert_memory_equal(&out, &u, sizeof(u));
    parley_key_destroy(&key);
}

static void
test_sign_refuses_invalid(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x14);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 12345;

    s_update(&u);
    u.headline[0] = '\0';
    assert_int_equal(parley_sign(key, &u, env, sizeof(env), &len),
                     PARLEY_EINVALID);
    s_update(&u);
    strcpy(u.negotiation, "Gaza");
    assert_int_equal(parley_sign(key, &u, env, sizeof(env), &len),
                     PARLEY_EINVALID);
    s_update(&u);
    u.kind = PARLEY_KIND_CORRECTION; /* without references */
    assert_int_equal(parley_sign(key, &u, env, sizeof(env), &len),
                     PARLEY_EINVALID);
    s_update(&u);
    strcpy(u.body, "bad \xc3\x28 utf-8");
    assert_int_equal(parley_sign(key, &u, env, sizeof(env), &len),
                     PARLEY_EINVALID);
    s_update(&u);
    u.signer_seq = 0;
    assert_int_equal(parley_sign(key, &u, env, sizeof(env), &len),
                     PARLEY_EINVALID);
    parley_key_destroy(&key);
}

/* Every single-bit flip of the signature is caught. */
static void
test_verify_signature_bitflips(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x15);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    s_update(&u);
    size_t len = s_sign(key, &u, env);

    /* the signature is the last field: its 64 bytes end the envelope */
    uint8_t space[4096];
    parley__arena_t arena;
    parley__envelope_t e;
    parley__arena_init(&arena, space, sizeof(space));
    assert_int_equal(parley__envelope_decode(env, len, &e, &arena), 0);
    size_t sig_off = len - PARLEY_SIGNATURE_BYTES;
    assert_memory_equal(env + sig_off, e.signature, PARLEY_SIGNATURE_BYTES);
    parley__arena_reset(&arena);

    for (size_t bit = 0; bit < PARLEY_SIGNATURE_BYTES * 8; bit++) {
        env[sig_off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = parley_verify(NULL, env, len, &out, NULL);
        if (rc != PARLEY_EBADSIG)
            fail_msg("signature bit %zu flipped: got %d (%s)", bit, rc,
                     parley_error_name(rc));
        env[sig_off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), 0);
    parley_key_destroy(&key);
}

/* Every single-bit flip of the body is caught before the body is decoded. */
static void
test_verify_body_bitflips(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x16);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t off, blen;
    s_update(&u);
    size_t len = s_sign(key, &u, env);
    s_body_range(env, len, &off, &blen);
    assert_true(blen > 50);

    for (size_t bit = 0; bit < blen * 8; bit++) {
        env[off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = parley_verify(NULL, env, len, &out, NULL);
        if (rc != PARLEY_EBADSIG)
            fail_msg("body bit %zu flipped: got %d (%s)", bit, rc,
                     parley_error_name(rc));
        env[off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), 0);
    parley_key_destroy(&key);
}

/* A different signer key (same length) does not verify. */
static void
test_verify_signer_swapped(void **state)
{
    (void)state;
    parley_key_t *a = s_key(0x17), *b = s_key(0x18);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX], pkb[PARLEY_PUBLICKEY_BYTES];
    s_update(&u);
    size_t len = s_sign(a, &u, env);
    parley_key_public(b, pkb);
    /* signer is field 2, right before the 66 bytes of field 3 */
    size_t signer_off =
        len - (2 + PARLEY_SIGNATURE_BYTES) - PARLEY_PUBLICKEY_BYTES;
    memcpy(env + signer_off, pkb, sizeof(pkb));
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), PARLEY_EBADSIG);
    parley_key_destroy(&a);
    parley_key_destroy(&b);
}

static void
test_verify_malformed(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x19);
    parley_keyring_t *ring = s_ring("someone-else", key, S_ANY);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    s_update(&u);
    size_t len = s_sign(key, &u, env);
    static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff };

    assert_int_equal(parley_verify(NULL, garbage, sizeof(garbage), &out, NULL),
                     PARLEY_EMALFORMED);
    assert_int_equal(parley_verify(ring, garbage, sizeof(garbage), &out, NULL),
                     PARLEY_EMALFORMED);
    assert_int_equal(parley_verify(NULL, env, 0, &out, NULL),
                     PARLEY_EMALFORMED);
    /* every truncation of a good envelope is malformed, never accepted */
    for (size_t n = 1; n < len; n++) {
        int rc = parley_verify(NULL, env, n, &out, NULL);
        if (rc != PARLEY_EMALFORMED)
            fail_msg("envelope cut to %zu of %zu bytes: got %d", n, len, rc);
    }
    parley_keyring_destroy(&ring);
    parley_key_destroy(&key);
}

/* With a keyring, an unknown signer is reported before the signature. */
static void
test_verify_unknown_signer(void **state)
{
    (void)state;
    parley_key_t *known = s_key(0x1a), *stranger = s_key(0x1b);
    parley_keyring_t *ring = s_ring("mediator", known, S_ANY);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    s_update(&u);
    size_t len = s_sign(stranger, &u, env);

    assert_int_equal(parley_verify(ring, env, len, &out, NULL),
                     PARLEY_EUNKNOWNSIGNER);
    /* break the signature too: still UNKNOWNSIGNER, the first check */
    env[len - 1] ^= 0x01;
    assert_int_equal(parley_verify(ring, env, len, &out, NULL),
                     PARLEY_EUNKNOWNSIGNER);
    /* without a keyring the broken signature is what fails */
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), PARLEY_EBADSIG);
    env[len - 1] ^= 0x01;
    /* ... and the intact envelope is fine: ring NULL = signature only */
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), 0);

    /* the known signer passes the same keyring */
    len = s_sign(known, &u, env);
    assert_int_equal(parley_verify(ring, env, len, &out, NULL), 0);
    parley_keyring_destroy(&ring);
    parley_key_destroy(&known);
    parley_key_destroy(&stranger);
}

static void
test_verify_forbidden(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x1c);
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    s_update(&u); /* gaza-ceasefire; israel, hamas, us; phase 1 */
    size_t len = s_sign(key, &u, env);
    static const char *const cases[] = {
        "negotiations=sudan-talks parties=* phases=*",
        "negotiations=* parties=israel,hamas phases=*", /* us not allowed */
        "negotiations=* parties=* phases=0,2-3",
        "negotiations=sudan-talks parties=us phases=0",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parley_keyring_t *ring = s_ring("desk", key, cases[i]);
        int rc = parley_verify(ring, env, len, &out, NULL);
        if (rc != PARLEY_EFORBIDDEN)
            fail_msg("keyring \"%s\": got %d (%s)", cases[i], rc,
                     parley_error_name(rc));
        parley_keyring_destroy(&ring);
    }
    /* exactly the update's values are enough */
    parley_keyring_t *ring =
        s_ring("desk", key,
               "negotiations=gaza-ceasefire parties=us,hamas,israel phases=1");
    assert_int_equal(parley_verify(ring, env, len, &out, NULL), 0);
    parley_keyring_destroy(&ring);
    /* no keyring: no permissions apply */
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), 0);
    parley_key_destroy(&key);
}

/* A correctly signed body that breaks a schema rule is INVALID. */
static void
test_verify_signed_invalid(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x1d);
    parley_keyring_t *ring = s_ring("desk", key, S_ANY);
    parley_keyring_t *narrow =
        s_ring("desk", key, "negotiations=other parties=other phases=9");
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX];

    s_update(&u);
    strcpy(u.headline, "invalid \xc3\x28 sequence");
    size_t len = s_sign_unvalidated(key, &u, env);
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL),
                     PARLEY_EINVALID);
    assert_int_equal(parley_verify(ring, env, len, &out, NULL),
                     PARLEY_EINVALID);
    /* INVALID comes before FORBIDDEN */
    assert_int_equal(parley_verify(narrow, env, len, &out, NULL),
                     PARLEY_EINVALID);
    /* BADSIG comes before INVALID */
    env[len - 1] ^= 0x80;
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), PARLEY_EBADSIG);

    /* other rule breaks, each correctly signed */
    s_update(&u);
    u.n_parties = 0;
    len = s_sign_unvalidated(key, &u, env);
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL),
                     PARLEY_EINVALID);
    s_update(&u);
    u.status = PARLEY_STATUS_UNSPECIFIED;
    len = s_sign_unvalidated(key, &u, env);
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL),
                     PARLEY_EINVALID);
    s_update(&u);
    u.phase = 256;
    len = s_sign_unvalidated(key, &u, env);
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL),
                     PARLEY_EINVALID);

    /* signed bytes that are not a StatusUpdate at all */
    static const uint8_t junk[] = { 0x0a, 0x05, 'a', 'b' };
    len = s_sign_raw(key, junk, sizeof(junk), env, sizeof(env));
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL),
                     PARLEY_EINVALID);
    /* a non-canonical body (negotiation twice) */
    static const uint8_t twice[] = { 0x0a, 0x01, 'a', 0x0a, 0x01, 'b' };
    len = s_sign_raw(key, twice, sizeof(twice), env, sizeof(env));
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL),
                     PARLEY_EINVALID);

    parley_keyring_destroy(&ring);
    parley_keyring_destroy(&narrow);
    parley_key_destroy(&key);
}

/* An oversized (but correctly signed) body: heap paths, no leak, INVALID. */
static void
test_verify_oversized_body(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x1e);
    parley_update_t out;
    size_t body_len = 3 + 20000;
    uint8_t *body = malloc(body_len);
    uint8_t *env = malloc(body_len + 200);
    assert_non_null(body);
    assert_non_null(env);
    /* field 8 (body), 20000 bytes: decodes, but cannot fit the struct */
    body[0] = 0x42;
    body[1] = (uint8_t)(0x80 | (20000 & 0x7f));
    body[2] = (uint8_t)(20000 >> 7);
    memset(body + 3, 'x', 20000);
    size_t len = s_sign_raw(key, body, body_len, env, body_len + 200);
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL),
                     PARLEY_EINVALID);
    env[len - 1] ^= 1;
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), PARLEY_EBADSIG);
    free(body);
    free(env);
    parley_key_destroy(&key);
}

/* ---------------------------------------------------------- delivery */

static void
test_delivery_decode(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x21), *other = s_key(0x22);
    parley_keyring_t *ring = s_ring("cairo-desk", key, S_ANY);
    parley_keyring_t *other_ring = s_ring("elsewhere", other, S_ANY);
    parley_update_t u;
    parley_delivery_t d = { 0 };
    uint8_t env[PARLEY_ENVELOPE_MAX], del[PARLEY_ENVELOPE_MAX + 64];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char id[PARLEY_KEYID_CHARS + 1];
    size_t dlen = 0;
    s_update(&u);
    size_t len = s_sign(key, &u, env);
    parley_key_public(key, pk);
    parley_key_id(pk, id);
    assert_int_equal(parley__delivery_encode(987654321, 1717000000555, env, len,
                                             del, sizeof(del), &dlen),
                     0);

    memset(&d, 0xAA, offsetof(parley_delivery_t, envelope));
    assert_int_equal(parley_delivery_decode(ring, del, dlen, &d), 0);
    assert_int_equal(d.seq, 987654321);
    assert_int_equal(d.received_at, 1717000000555);
    assert_memory_equal(d.signer, pk, sizeof(pk));
    assert_string_equal(d.signer_id, id);
    assert_string_equal(d.signer_name, "cairo-desk");
    assert_memory_equal(&d.update, &u, sizeof(u));
    /* the signed bytes come with it, as they were signed */
    size_t elen = 0;
    const void *e = parley_delivery_envelope(&d, &elen);
    assert_int_equal(elen, len);
    assert_memory_equal(e, env, len);

    /* no keyring: verified against the embedded key, no name */
    memset(&d, 0xAA, offsetof(parley_delivery_t, envelope));
    assert_int_equal(parley_delivery_decode(NULL, del, dlen, &d), 0);
    assert_string_equal(d.signer_name, "");
    assert_string_equal(d.signer_id, id);
    assert_int_equal(d.seq, 987654321);

    /* the verification errors come through */
    assert_int_equal(parley_delivery_decode(other_ring, del, dlen, &d),
                     PARLEY_EUNKNOWNSIGNER);
    del[dlen - 1] ^= 0x04; /* last byte of the signature */
    assert_int_equal(parley_delivery_decode(NULL, del, dlen, &d),
                     PARLEY_EBADSIG);

    /* a Delivery that does not decode, or has no seq, or no update */
    static const uint8_t junk[] = { 0x08 };
    assert_int_equal(parley_delivery_decode(NULL, junk, sizeof(junk), &d),
                     PARLEY_EMALFORMED);
    assert_int_equal(
        parley__delivery_encode(0, 1, env, len, del, sizeof(del), &dlen), 0);
    assert_int_equal(parley_delivery_decode(NULL, del, dlen, &d),
                     PARLEY_EMALFORMED);
    assert_int_equal(
        parley__delivery_encode(5, 1, env, 0, del, sizeof(del), &dlen), 0);
    assert_int_equal(parley_delivery_decode(NULL, del, dlen, &d),
                     PARLEY_EMALFORMED);
    /* a Delivery around bytes that are not a SignedUpdate */
    assert_int_equal(
        parley__delivery_encode(5, 1, "\xff\xff", 2, del, sizeof(del), &dlen),
        0);
    assert_int_equal(parley_delivery_decode(NULL, del, dlen, &d),
                     PARLEY_EMALFORMED);
    assert_int_equal(parley_delivery_decode(NULL, NULL, 3, &d), PARLEY_EARG);
    /* after a failure the delivery is empty */
    assert_int_equal(parley_delivery_seq(&d), 0);
    assert_null(parley_delivery_envelope(&d, &elen));
    assert_int_equal(elen, 0);
    parley__delivery_release(&d);

    parley_keyring_destroy(&ring);
    parley_keyring_destroy(&other_ring);
    parley_key_destroy(&key);
    parley_key_destroy(&other);
}

/* ------------------------------------------------------ golden vectors */

/* One vector file, parsed. */
typedef struct {
    uint8_t seed[32];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char key_id[64];
    uint8_t body[2048];
    size_t body_len;
    uint8_t sig[PARLEY_SIGNATURE_BYTES];
    uint8_t env[2048];
    size_t env_len;
    uint64_t delivery_seq;
    int64_t received_at;
    uint8_t delivery[2048];
    size_t delivery_len;
    unsigned seen; /* bitmask of keys found */
} s_vector_t;

static size_t
s_unhex(const char *hex, uint8_t *out, size_t cap, const char *what)
{
    size_t bin_len = 0;
    if (sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &bin_len, NULL) != 0)
        fail_msg("vector %s: bad hex or too long", what);
    return bin_len;
}

static void
s_vector_load(const char *name, s_vector_t *v)
{
    char path[1024], line[8192];
    snprintf(path, sizeof(path), "%s/%s", PARLEY_VECTORS_DIR, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    memset(v, 0, sizeof(*v));
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *val = strchr(line, ' ');
        if (val == NULL)
            fail_msg("%s: line without value: %s", path, line);
        *val++ = '\0';
        if (strcmp(line, "seed") == 0) {
            assert_int_equal(s_unhex(val, v->seed, sizeof(v->seed), line), 32);
            v->seen |= 1;
        } else if (strcmp(line, "public_key") == 0) {
            assert_int_equal(s_unhex(val, v->pk, sizeof(v->pk), line), 32);
            v->seen |= 2;
        } else if (strcmp(line, "key_id") == 0) {
            snprintf(v->key_id, sizeof(v->key_id), "%s", val);
            v->seen |= 4;
        } else if (strcmp(line, "body") == 0) {
            v->body_len = s_unhex(val, v->body, sizeof(v->body), line);
            v->seen |= 8;
        } else if (strcmp(line, "signature") == 0) {
            assert_int_equal(s_unhex(val, v->sig, sizeof(v->sig), line), 64);
            v->seen |= 16;
        } else if (strcmp(line, "envelope") == 0) {
            v->env_len = s_unhex(val, v->env, sizeof(v->env), line);
            v->seen |= 32;
        } else if (strcmp(line, "delivery_seq") == 0) {
            v->delivery_seq = strtoull(val, NULL, 10);
            v->seen |= 64;
        } else if (strcmp(line, "delivery_received_at") == 0) {
            v->received_at = strtoll(val, NULL, 10);
            v->seen |= 128;
        } else if (strcmp(line, "delivery") == 0) {
            v->delivery_len =
                s_unhex(val, v->delivery, sizeof(v->delivery), line);
            v->seen |= 256;
        } else {
            fail_msg("%s: unknown key %s", path, line);
        }
    }
    fclose(f);
    assert_int_equal(v->seen, 511);
}

/* The updates of the vectors; the same fields are in gen_vectors.c. */
static void
s_vector_update(const char *name, parley_update_t *u)
{
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire");
    if (strcmp(name, "update-1.txt") == 0) {
        static const char *const parties[] = { "israel", "hamas", "us", "egypt",
                                               "qatar" };
        for (size_t i = 0; i < 5; i++)
            strcpy(u->parties[i], parties[i]);
        u->n_parties = 5;
        u->phase = 1;
        u->status = PARLEY_STATUS_TALKS_SCHEDULED;
        u->kind = PARLEY_KIND_UPDATE;
        strcpy(u->headline, "Talks scheduled in Cairo on Tuesday");
        strcpy(u->body, "Mediators from Egypt and Qatar, with US support, "
                        "invite both delegations to Cairo.\nAgenda: \"phase "
                        "1\" terms.");
        strcpy(u->location, "Cairo");
        u->scheduled_at = 1717430400000;
        u->issued_at = 1717000000000;
        u->signer_seq = 1717000000000000;
        u->expires_at = 1717516800000;
    } else {
        strcpy(u->parties[0], "us");
        u->n_parties = 1;
        u->phase = 0;
        u->status = PARLEY_STATUS_AGREED_IN_PRINCIPLE;
        u->kind = PARLEY_KIND_CORRECTION;
        u->references[0] = 7;
        u->references[1] = 300;
        u->n_references = 2;
        strcpy(u->headline, "Agreed in principle \xe2\x80\x94 \xe2\x80\x9c"
                            "framework\xe2\x80\x9d accepted");
        strcpy(u->location, "Doha");
        u->issued_at = 1717100000000;
        u->signer_seq = 1717100000000001;
    }
}

static void
s_check_vector(const char *name)
{
    s_vector_t v;
    parley_update_t u, out;
    parley_delivery_t d = { 0 };
    uint8_t pk[PARLEY_PUBLICKEY_BYTES], body[PARLEY_ENVELOPE_MAX],
        env[PARLEY_ENVELOPE_MAX], del[PARLEY_ENVELOPE_MAX + 64];
    char id[PARLEY_KEYID_CHARS + 1], b64[45], ringtext[256], err[256];
    size_t len = 0;

    s_vector_load(name, &v);
    s_vector_update(name, &u);
    assert_int_equal(parley_update_validate(&u, NULL, 0), 0);

    parley_key_t *key = parley_key_from_seed(v.seed);
    assert_non_null(key);
    parley_key_public(key, pk);
    assert_memory_equal(pk, v.pk, sizeof(pk));
    parley_key_id(pk, id);
    assert_string_equal(id, v.key_id);

    assert_int_equal(parley__update_encode(&u, body, sizeof(body), &len), 0);
    assert_int_equal(len, v.body_len);
    assert_memory_equal(body, v.body, len);

    uint8_t sig[PARLEY_SIGNATURE_BYTES];
    assert_int_equal(parley__signature_make(key, body, len, sig), 0);
    assert_memory_equal(sig, v.sig, sizeof(sig));

    assert_int_equal(parley_sign(key, &u, env, sizeof(env), &len), 0);
    assert_int_equal(len, v.env_len);
    assert_memory_equal(env, v.env, len);

    assert_int_equal(parley__delivery_encode(v.delivery_seq, v.received_at, env,
                                             len, del, sizeof(del), &len),
                     0);
    assert_int_equal(len, v.delivery_len);
    assert_memory_equal(del, v.delivery, len);

    /* the stored bytes verify and decode to the update */
    assert_int_equal(parley_verify(NULL, v.env, v.env_len, &out, pk), 0);
    assert_memory_equal(&out, &u, sizeof(u));
    assert_memory_equal(pk, v.pk, sizeof(pk));

    parley_pubkey_format(v.pk, b64);
    snprintf(ringtext, sizeof(ringtext),
             "vector-signer %s negotiations=gaza-ceasefire parties=* "
             "phases=0-1\n",
             b64);
    parley_keyring_t *ring =
        parley_keyring_parse(ringtext, strlen(ringtext), err, sizeof(err));
    assert_non_null(ring);
    assert_int_equal(
        parley_delivery_decode(ring, v.delivery, v.delivery_len, &d), 0);
    assert_int_equal(d.seq, v.delivery_seq);
    assert_int_equal(d.received_at, v.received_at);
    assert_memory_equal(d.signer, v.pk, sizeof(pk));
    assert_string_equal(d.signer_id, v.key_id);
    assert_string_equal(d.signer_name, "vector-signer");
    assert_memory_equal(&d.update, &u, sizeof(u));
    parley__delivery_release(&d);

    /* and the stored signature is not valid for a neighbouring body */
    v.env[v.env_len - PARLEY_SIGNATURE_BYTES - 40] ^= 1;
    assert_int_not_equal(parley_verify(NULL, v.env, v.env_len, &out, NULL), 0);

    parley_keyring_destroy(&ring);
    parley_key_destroy(&key);
}

static void
test_golden_update_1(void **state)
{
    (void)state;
    s_check_vector("update-1.txt");
}

static void
test_golden_correction_2(void **state)
{
    (void)state;
    s_check_vector("correction-2.txt");
}

/* The well-known Ed25519 public key of the all-0x01 seed. */
static void
test_golden_seed01_public_key(void **state)
{
    (void)state;
    static const uint8_t expect[32] = {
        0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1, 0x95, 0xfd, 0x52, 0xdb,
        0x2d, 0x3c, 0xba, 0x5d, 0x72, 0xca, 0x67, 0x09, 0xbf, 0x1d, 0x94,
        0x12, 0x1b, 0xf3, 0x74, 0x88, 0x01, 0xb4, 0x0f, 0x6f, 0x5c,
    };
    uint8_t pk[32];
    parley_key_t *key = s_key(0x01);
    parley_key_public(key, pk);
    assert_memory_equal(pk, expect, sizeof(pk));
    parley_key_destroy(&key);
}

/*
 * parley_envelope_unpack() gives back exactly the signed body, key and
 * signature, which verify by themselves over context || body, and
 * parley_envelope_pack() puts them together into the same bytes.
 */
static void
test_envelope_unpack_pack(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x21);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX], body[PARLEY_ENVELOPE_MAX];
    uint8_t again[PARLEY_ENVELOPE_MAX], pk[PARLEY_PUBLICKEY_BYTES];
    uint8_t signer[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    size_t body_len = 0, len2 = 0;
    s_update(&u);
    size_t len = s_sign(key, &u, env);
    parley_key_public(key, pk);

    assert_int_equal(parley_envelope_unpack(env, len, body, sizeof(body),
                                            &body_len, signer, sig),
                     0);
    assert_memory_equal(signer, pk, sizeof(pk));
    assert_int_equal(parley__signature_check(signer, sig, body, body_len), 0);
    parley_update_t back;
    uint8_t space[1024];
    parley__arena_t arena;
    parley__arena_init(&arena, space, sizeof(space));
    assert_int_equal(parley__update_decode(body, body_len, &back, &arena), 0);
    parley__arena_reset(&arena);
    assert_string_equal(back.headline, u.headline);

    assert_int_equal(parley_envelope_pack(body, body_len, signer, sig, again,
                                          sizeof(again), &len2),
                     0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, env, len);

    /* A body larger than the buffer: its size, and nothing copied. */
    size_t need = 0;
    assert_int_equal(parley_envelope_unpack(env, len, body, body_len - 1,
                                            &need, signer, sig),
                     -ENOBUFS);
    assert_int_equal(need, body_len);
    /* Room too small for the envelope; an empty body; NULLs. */
    assert_int_equal(parley_envelope_pack(body, body_len, signer, sig, again,
                                          len - 1, &len2),
                     -ENOBUFS);
    assert_int_equal(parley_envelope_pack(body, 0, signer, sig, again,
                                          sizeof(again), &len2),
                     PARLEY_EARG);
    assert_int_equal(parley_envelope_unpack(NULL, len, body, sizeof(body),
                                            &body_len, signer, sig),
                     PARLEY_EARG);
    parley_key_destroy(&key);
}

/* What is not an envelope is PARLEY_EMALFORMED, whatever its bytes. */
static void
test_envelope_unpack_malformed(void **state)
{
    (void)state;
    parley_key_t *key = s_key(0x22);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX], body[PARLEY_ENVELOPE_MAX];
    uint8_t signer[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    uint8_t short_sig[8] = { 0 };
    size_t body_len;
    s_update(&u);
    size_t len = s_sign(key, &u, env);
    /* Cut anywhere: a truncated field does not decode. */
    for (size_t cut = 0; cut < len; cut += 7)
        if (parley_envelope_unpack(env, cut, body, sizeof(body), &body_len,
                                   signer, sig)
            != PARLEY_EMALFORMED)
            fail_msg("an envelope cut at %zu of %zu bytes was accepted", cut,
                     len);
    /* A signature of the wrong size. */
    uint8_t bad[128];
    size_t bad_len = 0;
    static const uint8_t b[] = { 1, 2, 3 };
    uint8_t pk[PARLEY_PUBLICKEY_BYTES] = { 0 };
    assert_int_equal(parley__envelope_encode(b, sizeof(b), pk, sig, bad,
                                             sizeof(bad), &bad_len),
                     0);
    bad[bad_len - PARLEY_SIGNATURE_BYTES - 1] = sizeof(short_sig);
    assert_int_equal(parley_envelope_unpack(bad,
                                            bad_len - PARLEY_SIGNATURE_BYTES
                                                + sizeof(short_sig),
                                            body, sizeof(body), &body_len,
                                            signer, sig),
                     PARLEY_EMALFORMED);
    parley_key_destroy(&key);
}

/*
 * Deliveries of two signers decoded in turn into one delivery (as a
 * subscriber does into its event): the key id is kept only for the same
 * signer, and is always the id of the signer shown; a failed decode in
 * between leaves nothing to keep.
 */
static void
test_delivery_decode_signer_turns(void **state)
{
    (void)state;
    parley_key_t *keys[2] = { s_key(0x31), s_key(0x32) };
    char ids[2][PARLEY_KEYID_CHARS + 1];
    uint8_t dels[2][PARLEY_ENVELOPE_MAX + 64];
    size_t dlens[2] = { 0, 0 };
    parley_update_t u;
    s_update(&u);
    for (int k = 0; k < 2; k++) {
        uint8_t env[PARLEY_ENVELOPE_MAX], pk[PARLEY_PUBLICKEY_BYTES];
        size_t len = s_sign(keys[k], &u, env);
        parley_key_public(keys[k], pk);
        parley_key_id(pk, ids[k]);
        assert_int_equal(parley__delivery_encode((uint64_t)k + 1, 1, env, len,
                                                 dels[k], sizeof(dels[k]),
                                                 &dlens[k]),
                         0);
    }
    assert_string_not_equal(ids[0], ids[1]);
    parley_delivery_t *d = parley_delivery_new();
    assert_non_null(d);
    static const int turns[] = { 0, 0, 1, 1, 0, -1, 0, 1, -1, 1 };
    for (size_t i = 0; i < sizeof(turns) / sizeof(turns[0]); i++) {
        int k = turns[i];
        if (k < 0) {
            uint8_t bad[PARLEY_ENVELOPE_MAX + 64];
            memcpy(bad, dels[0], dlens[0]);
            bad[dlens[0] - 3] ^= 0x01; /* in the signature */
            assert_int_equal(parley_delivery_decode(NULL, bad, dlens[0], d),
                             PARLEY_EBADSIG);
            assert_string_equal(parley_delivery_signer_id(d), "");
            continue;
        }
        assert_int_equal(parley_delivery_decode(NULL, dels[k], dlens[k], d),
                         0);
        assert_string_equal(parley_delivery_signer_id(d), ids[k]);
    }
    parley_delivery_destroy(&d);
    parley_key_destroy(&keys[0]);
    parley_key_destroy(&keys[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify_roundtrip),
        cmocka_unit_test(test_sign_args_and_space),
        cmocka_unit_test(test_sign_largest_update),
        cmocka_unit_test(test_sign_refuses_invalid),
        cmocka_unit_test(test_verify_signature_bitflips),
        cmocka_unit_test(test_verify_body_bitflips),
        cmocka_unit_test(test_verify_signer_swapped),
        cmocka_unit_test(test_verify_malformed),
        cmocka_unit_test(test_verify_unknown_signer),
        cmocka_unit_test(test_verify_forbidden),
        cmocka_unit_test(test_verify_signed_invalid),
        cmocka_unit_test(test_verify_oversized_body),
        cmocka_unit_test(test_delivery_decode),
        cmocka_unit_test(test_delivery_decode_signer_turns),
        cmocka_unit_test(test_envelope_unpack_pack),
        cmocka_unit_test(test_envelope_unpack_malformed),
        cmocka_unit_test(test_golden_update_1),
        cmocka_unit_test(test_golden_correction_2),
        cmocka_unit_test(test_golden_seed01_public_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
