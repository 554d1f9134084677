/*
 * fuzz_update.c - StatusUpdate body decode and validation, past the
 * signature gate: the envelope target cannot forge signatures, so this one
 * feeds bodies straight to the code that runs after a signature verifies.
 */
#include "codec.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(16) uint8_t space[16384];
    static uint8_t again[PARLEY_ENVELOPE_MAX];
    parley__arena_t arena;
    parley_delivery_t d;
    memset(&d, 0, sizeof(d));
    parley__arena_init(&arena, space, sizeof(space));
    int rc = parley__update_decode(data, size, &d.update, &arena);
    parley__arena_reset(&arena);
    if (rc != 0 || parley_update_validate(&d.update, NULL, 0) != 0)
        return 0;
    /* A valid update re-encodes to exactly the bytes it came from. */
    size_t len = 0;
    if (parley__update_encode(&d.update, again, sizeof(again), &len) != 0
        || len != size || memcmp(again, data, size) != 0)
        abort();
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    if (parley_topics(&d.update, topics, PARLEY_TOPICS_MAX) < 3)
        abort();
    char *json = parley_delivery_to_json(&d);
    if (json == NULL)
        abort();
    parley_update_t back;
    memset(&back, 0, sizeof(back));
    if (parley_update_from_json(json, &back, NULL, 0) != 0
        || memcmp(&back, &d.update, sizeof(back)) != 0)
        abort(); /* JSON round trip is exact */
    free(json);
    return 0;
}
