/*
 * json.c - updates as JSON, for tools and scripts.
 *
 * jansson does the escaping; every string field is passed through as the
 * UTF-8 it already is (validated), so quotes, backslashes, control
 * characters and non-ASCII text come out as correct JSON.
 */
#include "codec.h"
#include "keys.h"
#include "sign.h"
#include "types.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_set(json_t *obj, const char *key, json_t *val)
{
    return val == NULL ? -1 : json_object_set_new(obj, key, val);
}

/* Base64 (standard alphabet, padded) of n bytes as a JSON string. */
static json_t *
s_base64(const uint8_t *bin, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(cap);
    if (b64 == NULL)
        return NULL;
    sodium_bin2base64(b64, cap, bin, n, sodium_base64_VARIANT_ORIGINAL);
    json_t *v = json_string(b64);
    free(b64);
    return v;
}

/*
 * Add signed_body and signature, the parts of the envelope a receiver
 * verifies (docs/protocol.md section 12), when d holds its envelope.
 * Returns 0 or -1.
 */
static int
s_set_signed(json_t *o, const parley_delivery_t *d)
{
    _Alignas(16) uint8_t space[PARLEY__VERIFY_ARENA];
    parley__arena_t arena;
    parley__envelope_t env;
    if (d->envelope == NULL || d->envelope_len == 0)
        return 0;
    parley__arena_init(&arena, space, sizeof(space));
    if (parley__envelope_decode(d->envelope, d->envelope_len, &env, &arena)
        != 0)
        return -1;
    int rc = s_set(o, "signed_body", s_base64(env.body.data, env.body.len));
    if (rc == 0)
        rc = s_set(o, "signature",
                   s_base64(env.signature, sizeof(env.signature)));
    parley__arena_reset(&arena);
    return rc;
}

char *
parley_delivery_to_json(const parley_delivery_t *d)
{
    const parley_update_t *u = &d->update;
    char pk[45];
    int bad = 0;
    json_t *o = json_object();
    json_t *parties = json_array();
    json_t *refs = json_array();
    if (o == NULL || parties == NULL || refs == NULL) {
        json_decref(o);
        json_decref(parties);
        json_decref(refs);
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < u->n_parties; i++)
        bad |= json_array_append_new(parties, json_string(u->parties[i]));
    for (size_t i = 0; i < u->n_references; i++)
        bad |= json_array_append_new(refs,
                                     json_integer((json_int_t)u->references[i]));
    parley_pubkey_format(d->signer, pk);
    const char *status = parley_status_name(u->status);
    const char *kind = parley_kind_name(u->kind);
    bad |= s_set(o, "seq", json_integer((json_int_t)d->seq));
    bad |= s_set(o, "received_at", json_integer(d->received_at));
    bad |= s_set(o, "negotiation", json_string(u->negotiation));
    bad |= s_set(o, "parties", parties);
    bad |= s_set(o, "phase", json_integer(u->phase));
    bad |= s_set(o, "status", json_string(status != NULL ? status : "unknown"));
    bad |= s_set(o, "kind", json_string(kind != NULL ? kind : "unknown"));
    bad |= s_set(o, "references", refs);
    bad |= s_set(o, "headline", json_string(u->headline));
    bad |= s_set(o, "body", json_string(u->body));
    bad |= s_set(o, "location", json_string(u->location));
    bad |= s_set(o, "scheduled_at", json_integer(u->scheduled_at));
    bad |= s_set(o, "issued_at", json_integer(u->issued_at));
    bad |= s_set(o, "expires_at", json_integer(u->expires_at));
    bad |= s_set(o, "signer_seq", json_integer((json_int_t)u->signer_seq));
    bad |= s_set(o, "signer", json_string(pk));
    bad |= s_set(o, "signer_id", json_string(d->signer_id));
    bad |= s_set(o, "signer_name", json_string(d->signer_name));
    bad |= s_set_signed(o, d);
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL)
        errno = bad ? EINVAL : ENOMEM;
    return s;
}

/* Copy a JSON string into a fixed field. */
static int
s_text(json_t *v, const char *key, char *dst, size_t cap, char *errbuf,
       size_t errlen)
{
    if (!json_is_string(v))
        return parley__invalid(errbuf, errlen, "%s: expected a string", key);
    size_t n = json_string_length(v);
    if (n >= cap)
        return parley__invalid(errbuf, errlen, "%s: longer than %zu bytes", key, cap - 1);
    if (memchr(json_string_value(v), '\0', n) != NULL)
        return parley__invalid(errbuf, errlen, "%s: contains a NUL character", key);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

static int
s_int(json_t *v, const char *key, int64_t lo, int64_t hi, int64_t *out,
      char *errbuf, size_t errlen)
{
    if (!json_is_integer(v))
        return parley__invalid(errbuf, errlen, "%s: expected an integer", key);
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi)
        return parley__invalid(errbuf, errlen, "%s: out of range", key);
    *out = (int64_t)i;
    return 0;
}

/* The value given, for a message: a string as it is (shortened), anything
 * else as its JSON type. */
static const char *
s_shown(json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    return json_is_integer(v) || json_is_real(v) ? "a number"
           : json_is_boolean(v)                  ? "a boolean"
           : json_is_null(v)                     ? "null"
                                                 : "not a string";
}

/* "status: unknown status "X" (valid: proposed, ...)" */
static int
s_bad_status(json_t *v, char *errbuf, size_t errlen)
{
    char list[256];
    size_t used = 0;
    list[0] = '\0';
    for (int s = PARLEY_STATUS_PROPOSED; s <= PARLEY_STATUS_COLLAPSED; s++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%s",
                         s > PARLEY_STATUS_PROPOSED ? ", " : "",
                         parley_status_name((parley_status_t)s));
        if (n < 0 || (size_t)n >= sizeof(list) - used)
            break;
        used += (size_t)n;
    }
    return parley__invalid(errbuf, errlen,
                           "status: unknown status \"%.40s\" (valid: %s)",
                           s_shown(v), list);
}

/* "kind: unknown kind "X" (valid: update, correction, retraction)" */
static int
s_bad_kind(json_t *v, char *errbuf, size_t errlen)
{
    return parley__invalid(errbuf, errlen,
                           "kind: unknown kind \"%.40s\" (valid: update, "
                           "correction, retraction)",
                           s_shown(v));
}

int
parley_update_from_json(const char *text, parley_update_t *out, char *errbuf,
                        size_t errlen)
{
    json_error_t jerr;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    int64_t v = 0;
    if (o == NULL)
        return parley__invalid(errbuf, errlen, "not JSON: %s (column %d)", jerr.text,
                     jerr.column);
    if (!json_is_object(o)) {
        json_decref(o);
        return parley__invalid(errbuf, errlen, "expected a JSON object");
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        if (strcmp(key, "negotiation") == 0) {
            rc = s_text(val, key, out->negotiation, sizeof(out->negotiation),
                        errbuf, errlen);
        } else if (strcmp(key, "parties") == 0) {
            size_t i;
            json_t *p;
            if (!json_is_array(val) || json_array_size(val) > PARLEY_PARTIES_MAX) {
                rc = parley__invalid(errbuf, errlen, "parties: expected an array of "
                                           "at most %d strings",
                           PARLEY_PARTIES_MAX);
                break;
            }
            out->n_parties = 0;
            json_array_foreach(val, i, p) {
                if ((rc = s_text(p, key, out->parties[i],
                                 sizeof(out->parties[i]), errbuf, errlen)))
                    break;
                out->n_parties = i + 1;
            }
        } else if (strcmp(key, "references") == 0) {
            size_t i;
            json_t *p;
            if (!json_is_array(val)
                || json_array_size(val) > PARLEY_REFERENCES_MAX) {
                rc = parley__invalid(errbuf, errlen, "references: expected an array of "
                                           "at most %d seqs",
                           PARLEY_REFERENCES_MAX);
                break;
            }
            out->n_references = 0;
            json_array_foreach(val, i, p) {
                if ((rc = s_int(p, key, 1, INT64_MAX, &v, errbuf, errlen)))
                    break;
                out->references[i] = (uint64_t)v;
                out->n_references = i + 1;
            }
        } else if (strcmp(key, "phase") == 0) {
            if ((rc = s_int(val, key, 0, PARLEY_PHASE_MAX, &v, errbuf, errlen)) == 0)
                out->phase = (uint32_t)v;
        } else if (strcmp(key, "status") == 0) {
            if (!json_is_string(val)
                || parley_status_parse(json_string_value(val), &out->status) != 0)
                rc = s_bad_status(val, errbuf, errlen);
        } else if (strcmp(key, "kind") == 0) {
            if (!json_is_string(val)
                || parley_kind_parse(json_string_value(val), &out->kind) != 0)
                rc = s_bad_kind(val, errbuf, errlen);
        } else if (strcmp(key, "headline") == 0) {
            rc = s_text(val, key, out->headline, sizeof(out->headline), errbuf,
                        errlen);
        } else if (strcmp(key, "body") == 0) {
            rc = s_text(val, key, out->body, sizeof(out->body), errbuf, errlen);
        } else if (strcmp(key, "location") == 0) {
            rc = s_text(val, key, out->location, sizeof(out->location), errbuf,
                        errlen);
        } else if (strcmp(key, "scheduled_at") == 0) {
            if ((rc = s_int(val, key, 0, INT64_MAX, &v, errbuf, errlen)) == 0)
                out->scheduled_at = v;
        } else if (strcmp(key, "issued_at") == 0) {
            if ((rc = s_int(val, key, 0, INT64_MAX, &v, errbuf, errlen)) == 0)
                out->issued_at = v;
        } else if (strcmp(key, "expires_at") == 0) {
            if ((rc = s_int(val, key, 0, INT64_MAX, &v, errbuf, errlen)) == 0)
                out->expires_at = v;
        } else if (strcmp(key, "signer_seq") == 0) {
            if ((rc = s_int(val, key, 0, INT64_MAX, &v, errbuf, errlen)) == 0)
                out->signer_seq = (uint64_t)v;
        } else if (strcmp(key, "seq") == 0 || strcmp(key, "received_at") == 0
                   || strcmp(key, "signer") == 0 || strcmp(key, "signer_id") == 0
                   || strcmp(key, "signer_name") == 0
                   || strcmp(key, "signed_body") == 0
                   || strcmp(key, "signature") == 0) {
            /* Set by the daemon, the verifier and the signer, not by a
             * publisher: accepted so that `parley sub --json` output and
             * the updates of an HTTP gateway can be piped back in, and
             * ignored. */
        } else {
            rc = parley__invalid(errbuf, errlen, "unknown field \"%s\"", key);
        }
        if (rc != 0)
            break;
    }
    json_decref(o);
    return rc;
}

/* ------------------------------------------------------------- envelopes */

char *
parley_envelope_to_json(const void *env, size_t len)
{
    uint8_t body[PARLEY_ENVELOPE_MAX];
    uint8_t *big = NULL, *b = body;
    uint8_t pk[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    size_t body_len = 0;
    char *out = NULL;
    if (parley__sodium_init() < 0) {
        errno = ENOSYS;
        return NULL;
    }
    int rc = parley_envelope_unpack(env, len, body, sizeof(body), &body_len,
                                    pk, sig);
    if (rc == -ENOBUFS) {
        if ((big = malloc(body_len)) == NULL)
            return NULL; /* errno = ENOMEM */
        b = big;
        rc = parley_envelope_unpack(env, len, big, body_len, &body_len, pk,
                                    sig);
    }
    if (rc < 0) {
        free(big);
        errno = -rc;
        return NULL;
    }
    json_t *o = json_object();
    int bad = o == NULL;
    if (!bad) {
        bad |= s_set(o, "signed_body", s_base64(b, body_len));
        bad |= s_set(o, "signature", s_base64(sig, sizeof(sig)));
        bad |= s_set(o, "signer", s_base64(pk, sizeof(pk)));
    }
    if (!bad)
        out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    free(big);
    if (out == NULL)
        errno = ENOMEM;
    return out;
}

/*
 * Decode the base64 string field key of o into out (cap bytes): exactly
 * want bytes unless want is 0 (then 1 to cap). Returns 0 with *n set, or
 * PARLEY_EMALFORMED with the field named in detail.
 */
static int
s_unbase64(json_t *o, const char *key, uint8_t *out, size_t cap, size_t want,
           size_t *n, char *detail, size_t dcap)
{
    json_t *v = json_object_get(o, key);
    const char *end = NULL;
    if (!json_is_string(v)) {
        parley__invalid(detail, dcap, "%s: expected a base64 string", key);
        return PARLEY_EMALFORMED;
    }
    const char *text = json_string_value(v);
    size_t text_len = json_string_length(v);
    if (sodium_base642bin(out, cap, text, text_len, NULL, n, &end,
                          sodium_base64_VARIANT_ORIGINAL)
            != 0
        || end != text + text_len || (want != 0 && *n != want)
        || (want == 0 && *n == 0)) {
        if (want != 0)
            parley__invalid(detail, dcap,
                            "%s: expected base64 (standard, padded) of %zu "
                            "bytes",
                            key, want);
        else
            parley__invalid(detail, dcap,
                            "%s: expected base64 (standard, padded) of 1 to "
                            "%zu bytes",
                            key, cap);
        return PARLEY_EMALFORMED;
    }
    return 0;
}

int
parley_envelope_from_json(const char *json, size_t len, void *buf, size_t cap,
                          size_t *out_len, char *detail, size_t dcap)
{
    uint8_t body[PARLEY_ENVELOPE_MAX];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    size_t body_len = 0, n = 0;
    json_error_t jerr;
    if (detail != NULL && dcap > 0)
        detail[0] = '\0';
    if (json == NULL || buf == NULL || out_len == NULL)
        return PARLEY_EARG;
    if (parley__sodium_init() < 0)
        return -ENOSYS;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    if (o == NULL) {
        parley__invalid(detail, dcap, "not JSON: %s (column %d)", jerr.text,
                        jerr.column);
        return PARLEY_EMALFORMED;
    }
    if (!json_is_object(o)) {
        parley__invalid(detail, dcap, "expected a JSON object");
        rc = PARLEY_EMALFORMED;
    }
    if (rc == 0)
        rc = s_unbase64(o, "signed_body", body, sizeof(body), 0, &body_len,
                        detail, dcap);
    if (rc == 0)
        rc = s_unbase64(o, "signature", sig, sizeof(sig), sizeof(sig), &n,
                        detail, dcap);
    if (rc == 0)
        rc = s_unbase64(o, "signer", pk, sizeof(pk), sizeof(pk), &n, detail,
                        dcap);
    if (rc == 0)
        rc = parley_envelope_pack(body, body_len, pk, sig, buf, cap, out_len);
    json_decref(o);
    return rc;
}
