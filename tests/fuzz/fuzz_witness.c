/*
 * fuzz_witness.c - what a witness takes from anyone on the network: the
 * add-checkpoint request body. The parser must say why it refuses; a
 * witness for the fuzz log (a fresh state each run) must answer one of
 * the protocol's statuses, a cosignature on 200 that checks.
 */
#include "../tmpdir.h"
#include "fuzz.h"
#include "note.h"
#include "tlog_keys.h"
#include "witness.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static parley_key_t *s_wit;
static uint8_t s_wit_pk[PARLEY_PUBLICKEY_BYTES];
static parley_keyring_t *s_ring;
static char s_dir[256], s_state[300];

/* The scratch directory goes when the process ends (libFuzzer and the
 * corpus driver both end through exit()). */
static void
s_cleanup(void)
{
    if (s_dir[0] != '\0')
        (void)test_tmpdir_remove(s_dir);
}

static void
s_init(void)
{
    uint8_t seed[32], log_pk[PARLEY_PUBLICKEY_BYTES];
    char b64[45], text[256];
    memset(seed, PARLEY_FUZZ_WITNESS_SEED, sizeof(seed));
    if ((s_wit = parley_key_from_seed(seed)) == NULL)
        abort();
    parley_key_public(s_wit, s_wit_pk);
    fuzz_public_key(PARLEY_FUZZ_LOG_SEED, log_pk);
    parley_pubkey_format(log_pk, b64);
    snprintf(text, sizeof(text), "log: %s %s\n", PARLEY_FUZZ_ORIGIN, b64);
    if ((s_ring = parley_keyring_parse(text, strlen(text), NULL, 0)) == NULL ||
        test_tmpdir_make(s_dir, sizeof(s_dir), "parley-fuzz-witness-") != 0)
        abort();
    snprintf(s_state, sizeof(s_state), "%s/state", s_dir);
    atexit(s_cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_wit == NULL)
        s_init();
    parley__witness_req_t req;
    const char *why = NULL;
    int rc = parley__witness_req_parse(data, size, &req, &why);
    if (rc == 0) {
        if (req.count > PARLEY__WITNESS_PROOF_MAX || req.note_len == 0 ||
            req.note < (const char *)data || req.note + req.note_len != (const char *)data + size)
            abort();
    } else if (why == NULL || (rc != PARLEY_EMALFORMED && rc != PARLEY_ETOOLARGE)) {
        abort();
    }
    unlink(s_state);
    parley_witness_t *w = parley_witness_new(s_wit, PARLEY_FUZZ_WITNESS, s_ring, s_state);
    if (w == NULL)
        abort();
    char out[4096];
    const char *type = NULL;
    int status = parley_witness_add_checkpoint(w, data, size, out, sizeof(out), &type);
    if (type == NULL || strlen(out) >= sizeof(out))
        abort();
    switch (status) {
    case 200: {
        /* A cosignature of the note the request carried. */
        parley__note_t *note = NULL;
        parley__cosig_t c;
        if (rc != 0 || parley__note_parse(req.note, req.note_len, &note, NULL) != 0 ||
            parley__cosig_parse(out, strlen(out), &c, NULL) != 0 ||
            parley__cosig_check(&c, PARLEY_FUZZ_WITNESS, s_wit_pk, note->buf,
                                note->text_len, NULL) != 0)
            abort();
        parley__note_destroy(&note);
        break;
    }
    case 400: case 403: case 404: case 409: case 422:
        break;
    default:
        abort();
    }
    parley_witness_destroy(&w);
    return 0;
}
