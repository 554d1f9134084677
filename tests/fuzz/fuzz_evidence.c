/*
 * fuzz_evidence.c - evidence texts, which people pass around and check
 * with `parley audit --evidence`: the parser (a refusal says why), then
 * the offline check against a keyring with the fuzz log (a verdict always
 * comes with a sentence).
 */
#include "fuzz.h"
#include "logcheck.h"
#include "tlog_keys.h"

#include <errno.h>
#include <stdio.h>

static parley_keyring_t *s_ring;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_ring == NULL) {
        uint8_t pk[PARLEY_PUBLICKEY_BYTES];
        char b64[45], text[256];
        fuzz_public_key(PARLEY_FUZZ_LOG_SEED, pk);
        parley_pubkey_format(pk, b64);
        snprintf(text, sizeof(text), "log: %s %s\n", PARLEY_FUZZ_ORIGIN, b64);
        if ((s_ring = parley_keyring_parse(text, strlen(text), NULL, 0)) == NULL)
            abort();
    }
    parley__evidence_doc_t d;
    const char *why = NULL;
    int rc = parley__evidence_parse((const char *)data, size, &d, &why);
    if (rc == 0) {
        if (d.kind[0] == '\0' || d.notes[0] == NULL)
            abort();
        parley__evidence_doc_clear(&d);
    } else if (rc != -ENOMEM && (rc != PARLEY_EMALFORMED || why == NULL)) {
        abort();
    }
    char verdict[1024];
    rc = parley_evidence_check(s_ring, (const char *)data, size, NULL, verdict,
                               sizeof(verdict));
    if (rc == 0 || rc == PARLEY_EINCONSISTENT) {
        if (verdict[0] == '\0')
            abort();
    }
    return 0;
}
