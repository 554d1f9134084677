/*
 * fuzz_request.c - ApiRequest decode: what parleyd runs on every api frame,
 * and the request_id peek it runs on frames too large to decode.
 */
#include "codec.h"
#include "facts.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(16) uint8_t space[8192];
    static parley__request_t req;
    parley__arena_t arena;
    parley__arena_init(&arena, space, sizeof(space));
    FUZZ_IGNORE(parley__facts_request_id(data, size));
    if (parley__request_decode(data, size, &req, &arena) == 0
        && req.op == PARLEY__OP_PUBLISH) {
        parley_update_t u;
        FUZZ_IGNORE(parley_verify(NULL, req.update.data, req.update.len, &u, NULL));
    }
    parley__arena_reset(&arena);
    return 0;
}
