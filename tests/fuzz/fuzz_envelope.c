/*
 * fuzz_envelope.c - SignedUpdate decode, signature check, body decode and
 * validation, keyring permissions: what parleyd runs on every publish;
 * and the canonical form parleyd requires, which must be exactly the
 * envelopes that decode and encode back to the same bytes.
 */
#include "codec.h"
#include "facts.h"
#include "fuzz.h"
#include "parley.h"
#include "types.h"

#include <stdio.h>

static parley_keyring_t *s_ring;

static void
s_setup(void)
{
    /* The key of seed 0x01..: seeds in corpus/envelope are signed by it. */
    uint8_t seed[32];
    uint8_t pk[32];
    char b64[45], text[256];
    memset(seed, 1, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    if (key == NULL)
        abort();
    parley_key_public(key, pk);
    parley_key_destroy(&key);
    parley_pubkey_format(pk, b64);
    snprintf(text, sizeof(text),
             "fuzz %s negotiations=* parties=israel,hamas,us,egypt,qatar "
             "phases=0-3\n",
             b64);
    s_ring = parley_keyring_parse(text, strlen(text), NULL, 0);
    if (s_ring == NULL)
        abort();
}

/* canonical <=> decodes, and encoding what it holds gives data again */
static void
s_check_canonical(const uint8_t *data, size_t size)
{
    _Alignas(16) uint8_t space[16384];
    static uint8_t again[1 << 20];
    parley__arena_t arena;
    parley__envelope_t env;
    const char *why = NULL;
    int canon = parley__envelope_canonical(data, size, &why);
    if ((canon == 0) != (why == NULL))
        abort(); /* a refusal says why, an acceptance does not */
    parley__arena_init(&arena, space, sizeof(space));
    size_t len = 0;
    bool same = parley__envelope_decode(data, size, &env, &arena) == 0
                && parley__envelope_encode(env.body.data, env.body.len,
                                           env.signer, env.signature, again,
                                           sizeof(again), &len) == 0
                && len == size && memcmp(again, data, size) == 0;
    parley__arena_reset(&arena);
    if ((canon == 0) != same)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parley_update_t u;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    if (s_ring == NULL)
        s_setup();
    s_check_canonical(data, size);
    int rc = parley_verify(s_ring, data, size, &u, signer);
    if (rc == 0 && parley_update_validate(&u, NULL, 0) != 0)
        abort(); /* verify must only accept valid updates */
    rc = parley_verify(NULL, data, size, &u, signer);
    if (rc == 0) {
        char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
        FUZZ_IGNORE(parley_topics(&u, topics, PARLEY_TOPICS_MAX));
    }
    return 0;
}
