/*
 * post.c - a POST body as an envelope.
 */
#include "post.h"

#include "parley.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Does the media type (before any ';', case-insensitive) equal want? */
static bool
s_type_is(const char *type, const char *want)
{
    size_t n = strcspn(type, "; \t");
    return n == strlen(want) && strncasecmp(type, want, n) == 0;
}

int
gw_post_envelope(const char *content_type, const void *body, size_t len,
                 uint8_t *out, size_t cap, size_t *out_len, char *detail,
                 size_t dcap)
{
    static const char *const binary[] = {
        "application/x-protobuf", "application/protobuf",
        "application/octet-stream", "application/vnd.parley.signed-update",
    };
    bool json;
    if (detail != NULL && dcap > 0)
        detail[0] = '\0';
    if (content_type != NULL && content_type[0] != '\0') {
        content_type += strspn(content_type, " \t");
        json = s_type_is(content_type, "application/json");
        bool known = json;
        for (size_t i = 0; !known && i < sizeof(binary) / sizeof(binary[0]); i++)
            known = s_type_is(content_type, binary[i]);
        if (!known)
            return -EPROTONOSUPPORT;
    } else {
        const char *p = body;
        size_t i = 0;
        while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'
                           || p[i] == '\n'))
            i++;
        json = i < len && p[i] == '{';
    }
    if (json)
        return parley_envelope_from_json(body, len, out, cap, out_len, detail,
                                         dcap);

    /* Bytes: they must decode as an envelope; then they go on unchanged,
     * so that the daemon sees (and verifies) exactly what was sent. */
    uint8_t signed_body[PARLEY_ENVELOPE_MAX];
    uint8_t signer[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    size_t body_len = 0;
    int rc = parley_envelope_unpack(body, len, signed_body, sizeof(signed_body),
                                    &body_len, signer, sig);
    if (rc == -ENOBUFS) {
        if (detail != NULL)
            snprintf(detail, dcap, "signed body of %zu bytes, over %d",
                     body_len, PARLEY_ENVELOPE_MAX);
        return PARLEY_EMALFORMED;
    }
    if (rc < 0) {
        if (detail != NULL)
            snprintf(detail, dcap, "not a SignedUpdate (protobuf) envelope");
        return PARLEY_EMALFORMED;
    }
    if (len > cap)
        return -ENOBUFS;
    memcpy(out, body, len);
    *out_len = len;
    return 0;
}
