/*
 * fuzz_facts.c - the store scan's in-place record reader against the full
 * decoders (a differential target).
 *
 * parley__facts_read() reads logged SignedUpdates without protobuf-c.
 * Whenever it answers, the full decoders must accept the same bytes and
 * yield the same fields; otherwise it must leave the verdict to them. The
 * bytes then go through pd_index_scan() as a logged record would.
 */
#include "facts_check.h"
#include "fuzz.h"
#include "index.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pd_index_t *idx;
    static uint64_t seq;
    bool full, same;
    int fast = facts_both_ways(data, size, &full, &same);
    if (fast != 0 && fast != 1)
        abort();
    if (fast == 0 && !full)
        abort(); /* read in place what the decoders refuse */
    if (!same)
        abort();

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
