/*
 * facts_check.h - whether parley__facts_read()'s answer is what the full
 * decoders give; shared by the differential fuzz target, test_facts and
 * test_index.
 */
#ifndef PARLEY_FACTS_CHECK_H
#define PARLEY_FACTS_CHECK_H

#include "codec.h"
#include "facts.h"

#include <stdbool.h>
#include <string.h>

/* True if the facts f name the same fields as envelope e and update u. */
static inline bool
facts_match(const parley__facts_t *f, const parley__envelope_t *e,
            const parley_update_t *u)
{
    bool same = memcmp(f->signer, e->signer, PARLEY_PUBLICKEY_BYTES) == 0
                && f->signer_seq == u->signer_seq
                && f->negotiation_len == strlen(u->negotiation)
                && memcmp(f->negotiation, u->negotiation, f->negotiation_len)
                       == 0
                && f->n_parties == u->n_parties && f->phase == u->phase
                && f->kind == u->kind && f->n_references == u->n_references;
    for (size_t i = 0; same && i < f->n_parties; i++)
        same = f->party_lens[i] == strlen(u->parties[i])
               && memcmp(f->parties[i], u->parties[i], f->party_lens[i]) == 0;
    for (size_t i = 0; same && i < f->n_references; i++)
        same = f->references[i] == u->references[i];
    return same;
}

/*
 * Read env both ways: with parley__facts_read() and with the full
 * decoders. *full_ok says whether the decoders accepted; *same whether,
 * when the fast reader answered, both gave the same fields (true when it
 * declined). Returns the fast reader's answer (0 or 1; anything else is a
 * defect). Not reentrant: the decode space is static.
 */
static inline int
facts_both_ways(const uint8_t *env, size_t len, bool *full_ok, bool *same)
{
    static _Alignas(16) uint8_t space[64 * 1024];
    static parley_update_t u;
    parley__arena_t arena;
    parley__envelope_t e;
    parley__facts_t f;
    parley__arena_init(&arena, space, sizeof(space));
    *full_ok = parley__envelope_decode(env, len, &e, &arena) == 0
               && parley__update_decode(e.body.data, e.body.len, &u, &arena)
                      == 0;
    memset(&f, 0xEE, sizeof(f));
    int fast = parley__facts_read(env, len, &f);
    *same = fast != 0 || (*full_ok && facts_match(&f, &e, &u));
    parley__arena_reset(&arena);
    return fast;
}

/*
 * An envelope around u encoded without validation, with a fixed signer
 * (0x42 bytes) and signature. Returns its length, 0 if it does not fit.
 */
static inline size_t
facts_raw_envelope(const parley_update_t *u, uint8_t *out, size_t cap)
{
    uint8_t body[PARLEY_ENVELOPE_MAX + 64];
    uint8_t signer[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    size_t blen, len;
    memset(signer, 0x42, sizeof(signer));
    memset(sig, 0x99, sizeof(sig));
    if (parley__update_encode(u, body, sizeof(body), &blen) != 0
        || parley__envelope_encode(body, blen, signer, sig, out, cap, &len)
               != 0)
        return 0;
    return len;
}

#endif /* PARLEY_FACTS_CHECK_H */
