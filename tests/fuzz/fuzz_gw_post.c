/*
 * fuzz_gw_post.c - the body of POST /v1/updates as parley-gateway reads
 * it (gateway/post.c): a binary SignedUpdate or its JSON form
 * (parley_envelope_from_json()).
 *
 * Input: the first byte picks the Content-Type (or none); the rest is
 * the body. Whatever is accepted must be an envelope the library can
 * take apart again, and its JSON form must give the same bytes back.
 */
#include "fuzz.h"
#include "parley.h"
#include "post.h"

static const char *const s_types[] = {
    NULL,
    "",
    "application/json",
    "application/x-protobuf",
    "application/octet-stream; x=1",
    "application/vnd.parley.signed-update",
    "text/plain",
    "APPLICATION/JSON;charset=utf-8",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[PARLEY_ENVELOPE_MAX + 128], again[PARLEY_ENVELOPE_MAX + 128];
    uint8_t body[PARLEY_ENVELOPE_MAX];
    uint8_t signer[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    size_t out_len = 0, again_len = 0, body_len = 0;
    char detail[256];
    if (size == 0)
        return 0;
    const char *type = s_types[data[0] % (sizeof(s_types) / sizeof(s_types[0]))];
    int rc = gw_post_envelope(type, data + 1, size - 1, out, sizeof(out),
                              &out_len, detail, sizeof(detail));
    if (rc != 0)
        return 0;
    if (parley_envelope_unpack(out, out_len, body, sizeof(body), &body_len,
                               signer, sig)
        != 0)
        abort(); /* accepted, but not an envelope */
    char *json = parley_envelope_to_json(out, out_len);
    if (json == NULL)
        abort();
    if (parley_envelope_from_json(json, strlen(json), again, sizeof(again),
                                  &again_len, NULL, 0)
            != 0
        || parley_envelope_pack(body, body_len, signer, sig, again,
                                sizeof(again), &again_len)
               != 0)
        abort();
    free(json);
    return 0;
}
