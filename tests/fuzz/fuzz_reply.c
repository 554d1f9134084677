/*
 * fuzz_reply.c - ApiReply decode: what clients run on the daemon's answers.
 */
#include "codec.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(16) uint8_t space[4096];
    parley__arena_t arena;
    parley__reply_t r;
    parley__arena_init(&arena, space, sizeof(space));
    if (parley__reply_decode(data, size, &r, &arena) == 0) {
        for (size_t i = 0; i < r.n_deliveries; i++) {
            parley_delivery_t d = { 0 };
            FUZZ_IGNORE(parley_delivery_decode(NULL, r.deliveries[i].data,
                                         r.deliveries[i].len, &d));
            parley__delivery_release(&d);
        }
    }
    parley__arena_reset(&arena);
    return 0;
}
