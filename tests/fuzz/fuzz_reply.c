/*
 * fuzz_reply.c - ApiReply decode: what clients run on the daemon's
 * answers, and for a snapshot the check of its entries against its
 * deliveries (entries.c).
 */
#include "codec.h"
#include "entries.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(16) uint8_t space[4096];
    parley__arena_t arena;
    parley__reply_t r;
    parley__arena_init(&arena, space, sizeof(space));
    if (parley__reply_decode(data, size, &r, &arena) == 0) {
        parley__entries_t e = { 0 };
        bool entries = r.type == PARLEY__REPLY_SNAPSHOT
                       && parley__entries_take(&e, &r) == 0;
        for (size_t i = 0; i < r.n_deliveries; i++) {
            parley_delivery_t d = { 0 };
            if (parley_delivery_decode(NULL, r.deliveries[i].data,
                                       r.deliveries[i].len, &d) == 0
                && entries) {
                const parley__state_key_t *keys;
                size_t n = parley__entries_of(&e, d.seq, &keys);
                FUZZ_IGNORE(parley__entries_agree(keys, n, &d.update));
            }
            parley__delivery_release(&d);
        }
        parley__entries_free(&e);
    }
    parley__arena_reset(&arena);
    return 0;
}
