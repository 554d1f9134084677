/*
 * json.c - updates as JSON, for tools and scripts.
 *
 * jansson does the escaping; every string field is passed through as the
 * UTF-8 it already is (validated), so quotes, backslashes, control
 * characters and non-ASCII text come out as correct JSON.
 */
#include "types.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int
s_set(json_t *obj, const char *key, json_t *val)
{
    return val == NULL ? -1 : json_object_set_new(obj, key, val);
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
                rc = parley__invalid(errbuf, errlen, "status: unknown status");
        } else if (strcmp(key, "kind") == 0) {
            if (!json_is_string(val)
                || parley_kind_parse(json_string_value(val), &out->kind) != 0)
                rc = parley__invalid(errbuf, errlen, "kind: expected update, correction "
                                           "or retraction");
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
                   || strcmp(key, "signer_name") == 0) {
            /* Set by the daemon and the verifier, not by a publisher:
             * accepted so `parley sub --json` output can be piped back in,
             * and ignored. */
        } else {
            rc = parley__invalid(errbuf, errlen, "unknown field \"%s\"", key);
        }
        if (rc != 0)
            break;
    }
    json_decref(o);
    return rc;
}
