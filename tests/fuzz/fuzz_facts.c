/*
 * fuzz_facts.c - the store scan's in-place record reader against the full
 * decoders (a differential target).
 *
 * pd_index_facts_read() reads logged SignedUpdates without protobuf-c.
 * Whenever it answers, the full decoders must accept the same bytes and
 * yield the same fields; otherwise it must leave the verdict to them. The
 * bytes then go through pd_index_scan() as a logged record would.
 */
#include "codec.h"
#include "fuzz.h"
#include "index.h"

/* Abort unless the reader's facts are what the full decoders give. */
static void
s_same_facts(const pd_index_facts_t *f, const parley__envelope_t *e,
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
    if (!same)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(16) uint8_t space[64 * 1024];
    static parley_update_t u;
    static pd_index_t *idx;
    static uint64_t seq;
    parley__arena_t arena;
    parley__envelope_t e;
    parley__arena_init(&arena, space, sizeof(space));
    bool full = parley__envelope_decode(data, size, &e, &arena) == 0
                && parley__update_decode(e.body.data, e.body.len, &u, &arena)
                       == 0;
    pd_index_facts_t f;
    int fast = pd_index_facts_read(data, size, &f);
    if (fast == 0) {
        if (!full)
            abort(); /* read in place what the decoders refuse */
        s_same_facts(&f, &e, &u);
    } else if (fast != 1) {
        abort();
    }
    parley__arena_reset(&arena);

    /* A fresh index now and then, so a long run does not grow without end. */
    if (idx == NULL || seq % 4096 == 0) {
        pd_index_destroy(&idx);
        if ((idx = pd_index_new()) == NULL)
            abort();
    }
    if (pd_index_scan(idx, ++seq, 0, data, size) != 0)
        abort(); /* only -ENOMEM stops a scan */
    return 0;
}
