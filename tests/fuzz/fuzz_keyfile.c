/*
 * fuzz_keyfile.c - secret and public key file parsing.
 */
#include "fuzz.h"
#include "parley.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char s_path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char *s = fuzz_strdup(data, size);
    if (s == NULL)
        return 0;
    FUZZ_IGNORE(parley_pubkey_parse(s, pk));
    free(s);

    if (s_path[0] == '\0')
        snprintf(s_path, sizeof(s_path), "/tmp/parley-fuzz-key.%d", (int)getpid());
    int fd = open(s_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    ssize_t w = write(fd, data, size);
    close(fd);
    if (w == (ssize_t)size) {
        parley_key_t *key = parley_key_load(s_path);
        parley_key_destroy(&key);
        FUZZ_IGNORE(parley_pubkey_load(s_path, pk));
    }
    unlink(s_path);
    return 0;
}
