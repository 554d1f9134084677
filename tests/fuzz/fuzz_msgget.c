/*
 * fuzz_msgget.c - a cluster node's reading of the stream leader's answer
 * to its leader check (STREAM.MSG.GET, daemon/backbone_check.c): JSON a
 * NATS server sends. Checks what must hold of anything the parser
 * accepts, and runs the store-time parser on the input as text.
 */
#include "fuzz.h"

#include "backbone_int.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *buf;
    static size_t cap;
    s_answer_t a;
    s_ans_kind_t k = pd_backbone__answer_parse("PARLEY.u.",
                                               (const char *)data, size, &buf,
                                               &cap, &a);
    if (k != a.kind || memchr(a.why, '\0', sizeof(a.why)) == NULL)
        abort();
    if (k == S_ANS_RECORD) {
        size_t kl = strlen(a.key_id);
        /* Decoded base64 is shorter than the text it came from. */
        if (a.seq == 0 || a.len > size || (a.len > 0 && a.data != buf)
            || (kl != 0 && kl != PARLEY_KEYID_CHARS))
            abort();
    } else if (k != S_ANS_NONE && k != S_ANS_ERROR) {
        abort();
    }
    char *s = fuzz_strdup(data, size);
    if (s == NULL)
        return 0;
    int64_t ns;
    FUZZ_IGNORE(pd_backbone__parse_time(s, &ns));
    free(s);
    return 0;
}
