/*
 * test_mutation.c - forged and damaged updates, and keys no one owns.
 *
 * The mutation sweep (issue 4, acceptance 1): 100 valid signed updates
 * from fixed seeds; every single-bit flip of the signer key, the
 * signature and the body of each goes through the checks parleyd runs
 * (parley_verify with a keyring, and the prepare/finish split the daemon
 * uses around its rate limits). None may be accepted, and each must fail
 * with the code the check order predicts:
 *   signer flips    -> unknown_signer (step 3: the key is in no keyring)
 *   signature flips -> bad_signature  (step 4)
 *   body flips      -> bad_signature  (step 4 comes before the body is
 *                      even decoded: a flip that breaks the protobuf is
 *                      still a bad signature, never invalid)
 *
 * Also: the keyring refuses small-order and non-canonical public keys
 * with a line-numbered message, and the start-up self-test passes on this
 * libsodium.
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
#include "parley.h"
#include "sign.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_UPDATES 100
#define S_SIGNERS 10

typedef struct {
    parley_key_t *keys[S_SIGNERS];
    parley_keyring_t *ring;
} s_fixture_t;

static int
s_setup(void **state)
{
    s_fixture_t *f = calloc(1, sizeof(*f));
    char text[S_SIGNERS * 128] = "", err[256] = "";
    size_t used = 0;
    if (f == NULL)
        return -1;
    for (int i = 0; i < S_SIGNERS; i++) {
        uint8_t seed[32], pk[PARLEY_PUBLICKEY_BYTES];
        char b64[45];
        memset(seed, 0x60 + i, sizeof(seed));
        if ((f->keys[i] = parley_key_from_seed(seed)) == NULL)
            return -1;
        parley_key_public(f->keys[i], pk);
        parley_pubkey_format(pk, b64);
        used += (size_t)snprintf(text + used, sizeof(text) - used,
                                 "signer-%d %s negotiations=* parties=* "
                                 "phases=*\n",
                                 i, b64);
    }
    f->ring = parley_keyring_parse(text, used, err, sizeof(err));
    if (f->ring == NULL) {
        fprintf(stderr, "keyring: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fixture_t *f = *state;
    for (int i = 0; i < S_SIGNERS; i++)
        parley_key_destroy(&f->keys[i]);
    parley_keyring_destroy(&f->ring);
    free(f);
    return 0;
}

/* Update number i: fixed content, varied so that bodies differ. */
static void
s_update(parley_update_t *u, int i)
{
    static const char *const parties[] = { "israel", "hamas", "us", "egypt",
                                           "qatar" };
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire");
    strcpy(u->parties[0], parties[i % 5]);
    u->n_parties = 1;
    u->phase = (uint32_t)(i % 4);
    u->status = (parley_status_t)(1 + i % 12);
    snprintf(u->headline, sizeof(u->headline), "update %d", i);
    u->issued_at = 1717000000000 + i;
    u->signer_seq = 1717000000000000 + (uint64_t)i;
}

/* Where n bytes equal to what start in env (they occur exactly once). */
static size_t
s_find(const uint8_t *env, size_t len, const uint8_t *what, size_t n)
{
    const uint8_t *hit = memmem(env, len, what, n);
    assert_non_null(hit);
    assert_null(memmem(hit + 1, len - (size_t)(hit + 1 - env), what, n));
    return (size_t)(hit - env);
}

/*
 * Run the mutated envelope through parley_verify() and, with both set,
 * also through the prepare/finish split parleyd runs (the same code; the
 * sample keeps the test short) and check they agree. Returns the code.
 */
static int
s_check(const parley_keyring_t *ring, const uint8_t *env, size_t len, bool both)
{
    parley_update_t out;
    parley__verify_t v;
    int rc = parley_verify(ring, env, len, &out, NULL);
    if (!both)
        return rc;
    int split = parley__verify_prepare(&v, ring, env, len);
    if (split == 0)
        split = parley__verify_finish(&v, ring, &out, NULL);
    parley__verify_end(&v);
    assert_int_equal(split, rc);
    return rc;
}

typedef struct {
    const char *region;
    size_t off, n; /* bytes of the envelope */
    int expect;
    unsigned long tried, accepted, wrong;
} s_region_t;

static void
test_mutation_sweep(void **state)
{
    s_fixture_t *f = *state;
    s_region_t total[3] = {
        { "signer", 0, 0, PARLEY_EUNKNOWNSIGNER, 0, 0, 0 },
        { "signature", 0, 0, PARLEY_EBADSIG, 0, 0, 0 },
        { "body", 0, 0, PARLEY_EBADSIG, 0, 0, 0 },
    };

    for (int i = 0; i < S_UPDATES; i++) {
        parley_key_t *key = f->keys[i % S_SIGNERS];
        parley_update_t u, out;
        uint8_t env[PARLEY_ENVELOPE_MAX], pk[PARLEY_PUBLICKEY_BYTES];
        uint8_t body[PARLEY_ENVELOPE_MAX];
        size_t len = 0, body_len = 0;
        s_update(&u, i);
        assert_int_equal(parley_sign(key, &u, env, sizeof(env), &len), 0);
        /* The unmodified envelope passes, or the sweep proves nothing. */
        assert_int_equal(s_check(f->ring, env, len, true), 0);
        assert_int_equal(parley_verify(f->ring, env, len, &out, NULL), 0);

        parley_key_public(key, pk);
        assert_int_equal(
            parley__update_encode(&u, body, sizeof(body), &body_len), 0);
        s_region_t r[3] = { total[0], total[1], total[2] };
        r[0].off = s_find(env, len, pk, sizeof(pk));
        r[0].n = sizeof(pk);
        /* The signature is the last field written, the last 64 bytes. */
        r[1].off = len - PARLEY_SIGNATURE_BYTES;
        r[1].n = PARLEY_SIGNATURE_BYTES;
        r[2].off = s_find(env, len, body, body_len);
        r[2].n = body_len;
        assert_true(r[1].off >= r[0].off + r[0].n
                    || r[1].off + r[1].n <= r[0].off);

        for (int k = 0; k < 3; k++) {
            for (size_t b = 0; b < r[k].n * 8; b++) {
                size_t at = r[k].off + b / 8;
                uint8_t bit = (uint8_t)(1u << (b % 8));
                env[at] ^= bit;
                int rc = s_check(f->ring, env, len, b % 4 == 0);
                env[at] ^= bit;
                total[k].tried++;
                if (rc == 0)
                    total[k].accepted++;
                else if (rc != r[k].expect) {
                    if (total[k].wrong++ < 5)
                        print_message("update %d: %s bit %zu gave %s, "
                                      "expected %s\n",
                                      i, r[k].region, b, parley_error_name(rc),
                                      parley_error_name(r[k].expect));
                }
            }
        }
    }
    unsigned long all = 0;
    for (int k = 0; k < 3; k++) {
        print_message("%-9s flips: %lu tried, %lu accepted, %lu with another "
                      "code than %s\n",
                      total[k].region, total[k].tried, total[k].accepted,
                      total[k].wrong, parley_error_name(total[k].expect));
        assert_int_equal(total[k].accepted, 0);
        assert_int_equal(total[k].wrong, 0);
        all += total[k].tried;
    }
    /* 100 updates x (256 signer + 512 signature + 8*body) bits */
    assert_true(all > (unsigned long)S_UPDATES * (256 + 512));
}

/*
 * The split the daemon uses stops where it must: prepare names an
 * unknown signer before any signature work, and a bad signature is found
 * by the signature step alone.
 */
static void
test_split_steps(void **state)
{
    s_fixture_t *f = *state;
    parley_update_t u, out;
    uint8_t env[PARLEY_ENVELOPE_MAX], pk[PARLEY_PUBLICKEY_BYTES];
    size_t len = 0;
    parley__verify_t v;
    s_update(&u, 7);
    assert_int_equal(parley_sign(f->keys[3], &u, env, sizeof(env), &len), 0);

    assert_int_equal(parley__verify_prepare(&v, f->ring, env, len), 0);
    assert_int_equal(parley__verify_signature(&v), 0);
    assert_int_equal(parley__verify_body(&v, f->ring, &out, pk), 0);
    parley__verify_end(&v);
    assert_string_equal(out.headline, "update 7");

    env[len - 1] ^= 0x80;
    assert_int_equal(parley__verify_prepare(&v, f->ring, env, len), 0);
    assert_int_equal(parley__verify_signature(&v), PARLEY_EBADSIG);
    parley__verify_end(&v);

    /* with no keyring nothing is unknown; with another, the signer is */
    env[len - 1] ^= 0x80;
    parley_keyring_t *other = parley_keyring_parse("", 0, NULL, 0);
    assert_non_null(other);
    assert_int_equal(parley__verify_prepare(&v, other, env, len),
                     PARLEY_EUNKNOWNSIGNER);
    assert_true(v.decoded); /* the signer can still be named in the log */
    parley__verify_end(&v);
    assert_int_equal(parley__verify_prepare(&v, NULL, env, len), 0);
    parley__verify_end(&v);
    parley_keyring_destroy(&other);

    assert_int_equal(parley__verify_prepare(&v, f->ring, "\xff\xff", 2),
                     PARLEY_EMALFORMED);
    assert_false(v.decoded);
    parley__verify_end(&v);
}

/* A keyring line with this raw key must be refused, naming line 2. */
static void
s_refused_key(const uint8_t raw[32], const char *what)
{
    char b64[45], text[512], err[256] = "";
    parley_pubkey_format(raw, b64);
    snprintf(text, sizeof(text),
             "# first line is a comment\n"
             "bad %s negotiations=* parties=* phases=*\n",
             b64);
    errno = 0;
    parley_keyring_t *ring =
        parley_keyring_parse(text, strlen(text), err, sizeof(err));
    if (ring != NULL) {
        parley_keyring_destroy(&ring);
        fail_msg("keyring accepted %s key %s", what, b64);
    }
    assert_int_equal(errno, -PARLEY_EKEYRING);
    if (strstr(err, "line 2") == NULL || strstr(err, "not a valid") == NULL)
        fail_msg("%s key: message \"%s\" does not name line 2 and the reason",
                 what, err);
}

static void
test_keyring_refuses_small_order_and_noncanonical(void **state)
{
    (void)state;
    uint8_t k[32];

    /* the identity (order 1) */
    memset(k, 0, sizeof(k));
    k[0] = 0x01;
    s_refused_key(k, "identity");
    /* y = 0: a point of order 4 */
    memset(k, 0, sizeof(k));
    s_refused_key(k, "order-4");
    /* y = -1: the point of order 2 */
    memset(k, 0xff, sizeof(k));
    k[0] = 0xec;
    k[31] = 0x7f;
    s_refused_key(k, "order-2");
    /* y = p + 1: a non-canonical encoding of the identity */
    memset(k, 0xff, sizeof(k));
    k[0] = 0xee;
    k[31] = 0x7f;
    s_refused_key(k, "non-canonical (p+1)");
    /* y = p + 5: non-canonical, whatever point it would name */
    memset(k, 0xff, sizeof(k));
    k[0] = 0xf2;
    k[31] = 0x7f;
    s_refused_key(k, "non-canonical (p+5)");

    /* and a real key is still fine on the same line */
    parley_key_t *key;
    uint8_t seed[32], pk[32];
    char b64[45], text[256];
    memset(seed, 0x33, sizeof(seed));
    key = parley_key_from_seed(seed);
    assert_non_null(key);
    parley_key_public(key, pk);
    parley_key_destroy(&key);
    parley_pubkey_format(pk, b64);
    snprintf(text, sizeof(text),
             "# c\nok %s negotiations=* parties=* "
             "phases=*\n",
             b64);
    parley_keyring_t *ring = parley_keyring_parse(text, strlen(text), NULL, 0);
    assert_non_null(ring);
    parley_keyring_destroy(&ring);
}

/* L, the order of the Ed25519 base point, little-endian. */
static const uint8_t s_l[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
    0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/*
 * A signature under the identity key with R = identity and S = 0 fits
 * the verification equation for every message; it must fail anyway, as
 * must a valid signature with L added to S. parleyd runs the same checks
 * at start (parley__sign_selftest) and refuses to start if they pass.
 */
static void
test_selftest_and_known_forgeries(void **state)
{
    s_fixture_t *f = *state;
    parley_update_t u, out;
    uint8_t body[PARLEY_ENVELOPE_MAX], env[PARLEY_ENVELOPE_MAX];
    size_t body_len = 0, len = 0;

    assert_int_equal(parley__sign_selftest(), 0);

    s_update(&u, 42);
    assert_int_equal(parley__update_encode(&u, body, sizeof(body), &body_len),
                     0);
    /* small order: identity key, R = identity, S = 0 */
    uint8_t pk[32] = { 0x01 }, sig[64] = { 0x01 };
    assert_int_equal(parley__envelope_encode(body, body_len, pk, sig, env,
                                             sizeof(env), &len),
                     0);
    assert_int_equal(parley_verify(NULL, env, len, &out, NULL), PARLEY_EBADSIG);

    /* non-canonical S: a real signature with L added to S */
    uint8_t good[PARLEY_ENVELOPE_MAX];
    size_t good_len = 0;
    assert_int_equal(parley_sign(f->keys[0], &u, good, sizeof(good), &good_len),
                     0);
    assert_int_equal(parley_verify(f->ring, good, good_len, &out, NULL), 0);
    uint8_t *s = good + good_len - 32; /* S is the signature's second half */
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
        unsigned t = (unsigned)s[i] + s_l[i] + carry;
        s[i] = (uint8_t)t;
        carry = t >> 8;
    }
    assert_int_equal(carry, 0);
    assert_int_equal(parley_verify(f->ring, good, good_len, &out, NULL),
                     PARLEY_EBADSIG);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutation_sweep),
        cmocka_unit_test(test_split_steps),
        cmocka_unit_test(test_keyring_refuses_small_order_and_noncanonical),
        cmocka_unit_test(test_selftest_and_known_forgeries),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
