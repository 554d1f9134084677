/*
 * fuzz_json.c - JSON update input (parley pub --json reads it from stdin).
 */
#include "fuzz.h"
#include "parley.h"
#include "types.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    parley_update_t u;
    char *s = fuzz_strdup(data, size);
    if (s == NULL)
        return 0;
    memset(&u, 0, sizeof(u));
    FUZZ_IGNORE(parley_update_from_json(s, &u, err, sizeof(err)));
    /* Whatever was filled must be safe to validate. */
    FUZZ_IGNORE(parley_update_validate(&u, NULL, 0));
    free(s);
    return 0;
}
