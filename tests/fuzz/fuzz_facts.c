/*
 * fuzz_facts.c - the store scan's in-place record reader against the full
 * decoders (a differential target).
 *
 * pd_index_facts_read() reads logged SignedUpdates without protobuf-c.
 * Whenever it answers, the full decoders must accept the same bytes and
 * yield the same fields; otherwise it must leave the verdict to them. The
 * bytes then go through pd_index_scan() as a logged record would.
 */
#include "facts_check.h"
#include "fuzz.h"

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
        if (!facts_match(&f, &e, &u))
            abort();
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
