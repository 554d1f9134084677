/*
 * fuzz_keyfile.c - secret and public key file parsing.
 */
#include "../tmpdir.h"
#include "fuzz.h"
#include "parley.h"

#include <stdio.h>
#include <unistd.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char *s = fuzz_strdup(data, size);
    if (s == NULL)
        return 0;
    FUZZ_IGNORE(parley_pubkey_parse(s, pk));
    free(s);

    /* mkstemp() makes the file 0600, as a secret key file must be. */
    char path[256];
    int fd = test_tmp_template(path, sizeof(path), "parley-fuzz-key.") == 0
                 ? mkstemp(path)
                 : -1;
    if (fd < 0)
        return 0;
    ssize_t w = write(fd, data, size);
    close(fd);
    if (w == (ssize_t)size) {
        parley_key_t *key = parley_key_load(path);
        parley_key_destroy(&key);
        FUZZ_IGNORE(parley_pubkey_load(path, pk));
    }
    unlink(path);
    return 0;
}
