/*
 * fuzz_cosig.c - cosignature lines, as a log takes them from a witness:
 * parse and check against the witness key. The input is also cosigned as
 * a checkpoint text when it is one: what cosig_make writes must parse and
 * check.
 */
#include "fuzz.h"
#include "note.h"
#include "tlog_keys.h"

static uint8_t s_wit_pk[PARLEY_PUBLICKEY_BYTES];
static parley_key_t *s_wit;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_wit == NULL) {
        uint8_t seed[32];
        memset(seed, PARLEY_FUZZ_WITNESS_SEED, sizeof(seed));
        if ((s_wit = parley_key_from_seed(seed)) == NULL)
            abort();
        parley_key_public(s_wit, s_wit_pk);
    }
    static const char text[] = "parley.example.org/gaza\n64\n"
                               "tT+kZBd5VtaapRYiipphMTYKqUkB1lwB8g9wEr8LhxU=\n";
    parley__cosig_t c;
    const char *why = NULL;
    int rc = parley__cosig_parse((const char *)data, size, &c, &why);
    if (rc == 0) {
        if (c.timestamp > (uint64_t)INT64_MAX || c.name[0] == '\0')
            abort();
        FUZZ_IGNORE(parley__cosig_check(&c, PARLEY_FUZZ_WITNESS, s_wit_pk, text,
                                        sizeof(text) - 1, &why));
    } else if (why == NULL) {
        abort();
    }
    /* Cosign the input as a checkpoint text: the line must check. */
    parley__checkpoint_t cp;
    if (size <= PARLEY__NOTE_MAX &&
        parley__checkpoint_parse((const char *)data, size, &cp, &why) == 0) {
        char line[PARLEY__COSIG_LINE_MAX];
        size_t len;
        if (parley__cosig_make(s_wit, PARLEY_FUZZ_WITNESS, (const char *)data, size,
                               cp.size >> 1, line, sizeof(line), &len) != 0 ||
            parley__cosig_parse(line, len, &c, &why) != 0 ||
            parley__cosig_check(&c, PARLEY_FUZZ_WITNESS, s_wit_pk, (const char *)data, size,
                                &why) != 0)
            abort();
    }
    return 0;
}
