/*
 * fuzz_keyring.c - keyring text parsing.
 */
#include "fuzz.h"
#include "parley.h"
#include "types.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    parley_keyring_t *ring =
        parley_keyring_parse((const char *)data, size, err, sizeof(err));
    if (ring != NULL) {
        parley_update_t u = { .negotiation = "n", .n_parties = 1,
                              .parties = { "p" } };
        uint8_t pk[PARLEY_PUBLICKEY_BYTES] = { 0 };
        FUZZ_IGNORE(parley_keyring_allows(ring, pk, &u));
    } else if (memchr(err, '\0', sizeof(err)) == NULL) {
        abort(); /* the message must be terminated */
    }
    parley_keyring_destroy(&ring);
    return 0;
}
