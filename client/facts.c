/*
 * facts.c - fast readers of the wire format (facts.h).
 *
 * Field numbers are those of proto/parley.proto:
 *   SignedUpdate  1 body, 2 signer, 3 signature
 *   StatusUpdate  1 negotiation, 2 parties, 3 phase, 4 status, 5 kind,
 *                 6 references, 7 headline, 8 body, 9 location,
 *                 10 scheduled_at, 11 issued_at, 12 signer_seq,
 *                 13 expires_at
 *   ApiRequest    1 request_id
 */
#include "facts.h"
#include "types.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* A protobuf tag byte: field number and wire type. */
#define S_TAG(field, type) (uint8_t)(((field) << 3) | (type))
#define S_VARINT 0
#define S_BYTES 2

/*
 * A varint as protobuf-c writes it: at most 10 bytes, no bits beyond 64,
 * no padding (a multi-byte varint never ends in a zero byte). false for
 * anything else, or if it runs past end.
 */
static inline bool
s_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p == end)
            return false;
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            if (b == 0 && shift > 0)
                return false;
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

/* A length-delimited field's bytes; false unless they fit before end. */
static inline bool
s_delimited(const uint8_t **pp, const uint8_t *end, const uint8_t **data,
            size_t *len)
{
    uint64_t n;
    if (!s_varint(pp, end, &n) || n > (uint64_t)(end - *pp))
        return false;
    *data = *pp;
    *len = (size_t)n;
    *pp += n;
    return true;
}

/* A slug as parley__update_decode() takes it: min to PARLEY_SLUG_MAX
 * bytes, no NUL. */
static inline bool
s_slug_ok(const uint8_t *p, size_t len, size_t min)
{
    return len >= min && len <= PARLEY_SLUG_MAX && memchr(p, 0, len) == NULL;
}

/*
 * A varint field of the body. proto3 leaves zero values out, so a zero
 * written out is not canonical. Enum values beyond the known ones are left
 * to the full decoder. false to decline.
 */
static bool
s_body_varint(unsigned field, const uint8_t **pp, const uint8_t *end,
              parley__facts_t *f)
{
    uint64_t v;
    if (!s_varint(pp, end, &v) || v == 0)
        return false;
    switch (field) {
    case 3: /* phase, uint32 */
        if (v > UINT32_MAX)
            return false;
        f->phase = (uint32_t)v;
        return true;
    case 4: /* status */
        return v <= PARLEY_STATUS_COLLAPSED;
    case 5: /* kind */
        if (v > PARLEY_KIND_RETRACTION)
            return false;
        f->kind = (parley_kind_t)v;
        return true;
    case 12: /* signer_seq */
        f->signer_seq = v;
        return true;
    case 10: /* scheduled_at */
    case 11: /* issued_at */
    case 13: /* expires_at */
        return true;
    default: /* unknown, or a known field with the wrong type */
        return false;
    }
}

/* Packed references: not empty, each an unpadded varint. */
static bool
s_references(const uint8_t *q, size_t n, parley__facts_t *f)
{
    const uint8_t *end = q + n;
    if (n == 0)
        return false;
    while (q < end) {
        uint64_t v;
        if (f->n_references == PARLEY_REFERENCES_MAX
            || !s_varint(&q, end, &v))
            return false;
        f->references[f->n_references++] = v;
    }
    return true;
}

/* Where the texts (fields 7-9) lie in the body, for one NUL check. */
typedef struct {
    const uint8_t *start, *end;
} s_texts_t;

/* A length-delimited field of the body. false to decline. */
static bool
s_body_bytes(unsigned field, const uint8_t **pp, const uint8_t *end,
             parley__facts_t *f, s_texts_t *texts)
{
    const uint8_t *d;
    size_t n;
    if (!s_delimited(pp, end, &d, &n))
        return false;
    switch (field) {
    case 1: /* negotiation */
        if (!s_slug_ok(d, n, 1))
            return false;
        f->negotiation = (const char *)d;
        f->negotiation_len = n;
        return true;
    case 2: /* parties: an empty one is written too */
        if (!s_slug_ok(d, n, 0) || f->n_parties == PARLEY_PARTIES_MAX)
            return false;
        f->parties[f->n_parties] = (const char *)d;
        f->party_lens[f->n_parties++] = n;
        return true;
    case 6: /* references, packed */
        return s_references(d, n, f);
    case 7: /* headline */
    case 8: /* body */
    case 9: /* location */
        if (n == 0
            || n > (field == 8   ? PARLEY_BODY_MAX
                    : field == 7 ? PARLEY_HEADLINE_MAX
                                 : PARLEY_LOCATION_MAX))
            return false;
        /* Checked for NUL together at the end. */
        if (texts->start == NULL)
            texts->start = d;
        texts->end = d + n;
        return true;
    default:
        return false;
    }
}

/*
 * The StatusUpdate body, in exactly the bytes protobuf-c packs for it
 * (which is what parley__update_decode() checks by re-packing): fields in
 * ascending number, each once except the repeated parties; no field with
 * the zero value, varints unpadded, references packed. The limits are
 * parley__update_decode()'s. 0, or 1 to decline.
 */
static int
s_read_body(const uint8_t *p, size_t len, parley__facts_t *f)
{
    const uint8_t *end = p + len;
    s_texts_t texts = { NULL, NULL };
    unsigned last = 0;
    f->negotiation = "";
    f->negotiation_len = 0;
    f->n_parties = 0;
    f->phase = 0;
    f->kind = PARLEY_KIND_UPDATE;
    f->n_references = 0;
    f->signer_seq = 0;
    if (len > PARLEY_ENVELOPE_MAX)
        return 1;
    while (p < end) {
        uint8_t tag = *p++;
        unsigned field = tag >> 3;
        if (tag >= 0x80 || field < last || (field == last && field != 2))
            return 1;
        last = field;
        bool ok = (tag & 7) == S_VARINT ? s_body_varint(field, &p, end, f)
                  : (tag & 7) == S_BYTES
                      ? s_body_bytes(field, &p, end, f, &texts)
                      : false;
        if (!ok)
            return 1;
    }
    /*
     * Fields 7 to 9 follow each other, so from the first of them to the
     * end of the last there are only their texts, tags and lengths; tags
     * are not zero, and neither is any byte of an unpadded varint over 0.
     * A zero byte there is a NUL in a text.
     */
    if (texts.start != NULL
        && memchr(texts.start, 0, (size_t)(texts.end - texts.start)) != NULL)
        return 1;
    return 0;
}

/* What follows the body in a canonical envelope: signer, signature. */
#define S_ENV_TAIL (2 + PARLEY_PUBLICKEY_BYTES + 2 + PARLEY_SIGNATURE_BYTES)

/*
 * The SignedUpdate exactly as parley_sign() writes it: body (field 1, not
 * empty, its length unpadded), signer (field 2, 32 bytes), signature
 * (field 3, 64 bytes), in that order and nothing else. NULL with *body
 * set, or why not.
 */
static const char *
s_envelope(const uint8_t *env, size_t len, const uint8_t **body,
           size_t *body_len)
{
    const uint8_t *p = env, *end = env + len;
    if (len == 0 || *p++ != S_TAG(1, S_BYTES))
        return "the body is not its first field";
    if (!s_delimited(&p, end, body, body_len) || *body_len == 0)
        return "the body's length is padded, zero or past the end";
    if ((size_t)(end - p) != S_ENV_TAIL)
        return "it holds other fields than body, signer and signature, or "
               "one of them twice";
    if (p[0] != S_TAG(2, S_BYTES) || p[1] != PARLEY_PUBLICKEY_BYTES
        || p[2 + PARLEY_PUBLICKEY_BYTES] != S_TAG(3, S_BYTES)
        || p[3 + PARLEY_PUBLICKEY_BYTES] != PARLEY_SIGNATURE_BYTES)
        return "signer and signature are not fields 2 and 3, in that order, "
               "of 32 and 64 bytes";
    return NULL;
}

int
parley__envelope_canonical(const uint8_t *env, size_t len, const char **why)
{
    const uint8_t *body;
    size_t body_len;
    const char *w = s_envelope(env, len, &body, &body_len);
    if (why != NULL)
        *why = w;
    return w == NULL ? 0 : PARLEY_EMALFORMED;
}

int
parley__facts_read(const uint8_t *env, size_t len, parley__facts_t *out)
{
    const uint8_t *body;
    size_t body_len;
    if (s_envelope(env, len, &body, &body_len) != NULL)
        return 1;
    out->signer = env + len - S_ENV_TAIL + 2;
    return s_read_body(body, body_len, out);
}

void
parley__facts_of_update(parley__facts_t *f, const uint8_t *signer,
                        const parley_update_t *u)
{
    f->signer = signer;
    f->signer_seq = u->signer_seq;
    f->negotiation = u->negotiation;
    f->negotiation_len = strnlen(u->negotiation, PARLEY_SLUG_MAX);
    f->n_parties = u->n_parties < PARLEY_PARTIES_MAX ? u->n_parties
                                                     : PARLEY_PARTIES_MAX;
    for (size_t i = 0; i < f->n_parties; i++) {
        f->parties[i] = u->parties[i];
        f->party_lens[i] = strnlen(u->parties[i], PARLEY_SLUG_MAX);
    }
    f->phase = u->phase;
    f->kind = u->kind;
    f->n_references = u->n_references < PARLEY_REFERENCES_MAX
                          ? u->n_references
                          : PARLEY_REFERENCES_MAX;
    memcpy(f->references, u->references,
           f->n_references * sizeof(f->references[0]));
}

int
parley__facts_decode(const uint8_t *env, size_t len, parley__facts_t *out,
                     parley__envelope_t *e, parley_update_t *u,
                     parley__arena_t *arena)
{
    if (parley__facts_read(env, len, out) == 0)
        return 0;
    int rc = parley__envelope_decode(env, len, e, arena);
    if (rc == 0)
        rc = parley__update_decode(e->body.data, e->body.len, u, arena);
    if (rc == 0)
        parley__facts_of_update(out, e->signer, u);
    return rc;
}

/* Write prefix, then n bytes of s, then '/' and a NUL into out. */
static void
s_topic(char out[PARLEY_TOPIC_MAX], const char *prefix, size_t plen,
        const char *s, size_t n)
{
    /* prefix (at most 6) + a slug (at most 32) + "/" fit 48 bytes. */
    memcpy(out, prefix, plen);
    memcpy(out + plen, s, n);
    out[plen + n] = '/';
    out[plen + n + 1] = '\0';
}

size_t
parley__facts_topics(const parley__facts_t *f, char out[][PARLEY_TOPIC_MAX])
{
    char phase[16];
    size_t n = 0;
    memcpy(out[n++], "all/", 5);
    s_topic(out[n++], "neg/", 4, f->negotiation, f->negotiation_len);
    for (size_t i = 0; i < f->n_parties; i++)
        s_topic(out[n++], "party/", 6, f->parties[i], f->party_lens[i]);
    int len = snprintf(phase, sizeof(phase), "%u", (unsigned)f->phase);
    s_topic(out[n++], "phase/", 6, phase, (size_t)len);
    return n;
}

uint64_t
parley__facts_request_id(const uint8_t *buf, size_t len)
{
    uint64_t v = 0;
    if (len < 2 || buf[0] != S_TAG(1, S_VARINT))
        return 0;
    for (size_t i = 1; i < len && i <= 10; i++) {
        v |= (uint64_t)(buf[i] & 0x7f) << (7 * (i - 1));
        if ((buf[i] & 0x80) == 0)
            return v;
    }
    return 0;
}
