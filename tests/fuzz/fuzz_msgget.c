/*
 * fuzz_msgget.c - a cluster node's reading of the stream leader's answer
 * to its leader check (STREAM.MSG.GET, daemon/backbone_check.c): JSON a
 * NATS server sends. Checks what must hold of anything the parser
 * accepts; that the scanner, whenever it takes an input, reads it as
 * jansson does; that the base64 decoder decides as libsodium's on the
 * input as base64 text; and runs the store-time parser on the input as
 * text.
 */
#include "fuzz.h"

#include "backbone_int.h"

#include <sodium.h>

/* Abort unless x and y say the same. */
static void
s_same(const s_answer_t *x, const s_answer_t *y)
{
    if (x->kind != y->kind || x->seq != y->seq || x->time_ns != y->time_ns
        || strcmp(x->key_id, y->key_id) != 0 || x->len != y->len
        || (x->len > 0 && memcmp(x->data, y->data, x->len) != 0)
        || strcmp(x->why, y->why) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *buf, *jbuf, *sbuf;
    static size_t cap, jcap, scap;
    s_answer_t a, j, sc;
    const char *text = (const char *)data;
    s_ans_kind_t k = pd_backbone__answer_parse("PARLEY.u.", text, size, &buf,
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
    /* The scanner, where it takes the input, agrees with jansson; what
     * it leaves, jansson reads. */
    pd_backbone__answer_parse_json("PARLEY.u.", text, size, &jbuf, &jcap, &j);
    s_same(&a, &j);
    if (pd_backbone__answer_scan("PARLEY.u.", text, size, &sbuf, &scap, &sc))
        s_same(&sc, &j);

    /* The base64 decoder decides as libsodium's on ASCII text (1.0.18
     * reads any byte above 0x7F as '/'; the decoder refuses them). */
    bool ascii = true;
    for (size_t i = 0; i < size && ascii; i++)
        ascii = data[i] < 0x80;
    uint8_t *x = malloc(size + 1), *y = malloc(size + 1);
    if (x != NULL && y != NULL) {
        size_t xl = 0, yl = 0;
        int rx = pd_backbone__base64_decode(x, size + 1, text, size, &xl);
        int ry = ascii ? sodium_base642bin(y, size + 1, text, size, NULL, &yl,
                                           NULL, sodium_base64_VARIANT_ORIGINAL)
                       : -1;
        if (rx != ry || (rx == 0 && (xl != yl || memcmp(x, y, xl) != 0)))
            abort();
    }
    free(x);
    free(y);

    char *s = fuzz_strdup(data, size);
    if (s == NULL)
        return 0;
    int64_t ns;
    FUZZ_IGNORE(pd_backbone__parse_time(s, &ns));
    free(s);
    return 0;
}
