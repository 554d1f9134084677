/*
 * fuzz_delivery.c - Delivery decode and verification and JSON output: what
 * a subscriber runs on every feed message.
 */
#include "fuzz.h"
#include "parley.h"
#include "types.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parley_delivery_t d = { 0 };
    if (parley_delivery_decode(NULL, data, size, &d) == 0) {
        char *json = parley_delivery_to_json(&d);
        if (json == NULL)
            abort(); /* a verified delivery always has a JSON form */
        free(json);
    }
    parley__delivery_release(&d);
    return 0;
}
