/*
 * fuzz_envelope.c - SignedUpdate decode, signature check, body decode and
 * validation, keyring permissions: what parleyd runs on every publish.
 */
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parley_update_t u;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    if (s_ring == NULL)
        s_setup();
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
