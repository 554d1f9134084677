/*
 * facts_check.h - whether pd_index_facts_read()'s answer is what the full
 * decoders give; shared by the differential fuzz target and test_index.
 */
#ifndef PARLEY_FACTS_CHECK_H
#define PARLEY_FACTS_CHECK_H

#include "codec.h"
#include "index.h"

#include <stdbool.h>
#include <string.h>

/* True if the facts f name the same fields as envelope e and update u. */
static inline bool
facts_match(const pd_index_facts_t *f, const parley__envelope_t *e,
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

#endif /* PARLEY_FACTS_CHECK_H */
