/*
 * test_json.c - parley_delivery_to_json (checked by parsing it back with
 * jansson), parley_update_from_json, and the JSON form of envelopes
 * (parley_envelope_to_json, parley_envelope_from_json).
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "delivery_fixture.h"
#include "parley.h"
#include "types.h"

#include <sodium.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A headline that needs every kind of JSON escaping. */
#define S_NASTY                                                                \
    "He said \"no\" \\ then\nleft\tearly\x01 caf\xc3\xa9 \xf0\x9f\x95\x8a /"

static void
s_delivery(parley_delivery_t *d)
{
    memset(d, 0, sizeof(*d));
    d->seq = 4242;
    d->received_at = 1717000000123;
    for (size_t i = 0; i < sizeof(d->signer); i++)
        d->signer[i] = (uint8_t)(i * 5 + 3);
    parley_key_id(d->signer, d->signer_id);
    strcpy(d->signer_name, "cairo-desk");
    parley_update_t *u = &d->update;
    strcpy(u->negotiation, "gaza-ceasefire");
    strcpy(u->parties[0], "us");
    strcpy(u->parties[1], "egypt");
    strcpy(u->parties[2], "qatar");
    u->n_parties = 3;
    u->phase = 2;
    u->status = PARLEY_STATUS_AGREED_IN_PRINCIPLE;
    u->kind = PARLEY_KIND_CORRECTION;
    u->references[0] = 7;
    u->references[1] = 9000000000ull;
    u->n_references = 2;
    strcpy(u->headline, S_NASTY);
    strcpy(u->body, "Line one.\nLine two: \"quoted\".\r\n\x1f end");
    strcpy(u->location, "Doha \xe2\x80\x94 Qatar");
    u->scheduled_at = 1717430400000;
    u->issued_at = 1717000000000;
    u->signer_seq = 1717000000000001;
    u->expires_at = 1717516800000;
}

static json_t *
s_get(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        fail_msg("field \"%s\" missing", key);
    return v;
}

static void
s_str(json_t *o, const char *key, const char *want)
{
    json_t *v = s_get(o, key);
    assert_true(json_is_string(v));
    assert_int_equal(json_string_length(v), strlen(want));
    assert_string_equal(json_string_value(v), want);
}

static void
s_int(json_t *o, const char *key, long long want)
{
    json_t *v = s_get(o, key);
    if (!json_is_integer(v))
        fail_msg("field \"%s\" is not an integer", key);
    assert_true(json_integer_value(v) == want);
}

/* -------------------------------------------------------------- to_json */

static void
test_delivery_to_json_fields(void **state)
{
    (void)state;
    parley_delivery_t d;
    char b64[45];
    s_delivery(&d);
    parley_pubkey_format(d.signer, b64);

    char *s = parley_delivery_to_json(&d);
    assert_non_null(s);
    /* one line, and no raw control characters anywhere */
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            fail_msg("raw control character 0x%02x at %zu", (unsigned)*p,
                     (size_t)(p - s));

    json_error_t err;
    json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, &err);
    if (o == NULL)
        fail_msg("output is not JSON: %s\n%s", err.text, s);
    assert_true(json_is_object(o));
    assert_int_equal(json_object_size(o), 18);

    s_int(o, "seq", 4242);
    s_int(o, "received_at", 1717000000123);
    s_str(o, "signer", b64);
    s_str(o, "signer_id", d.signer_id);
    s_str(o, "signer_name", "cairo-desk");
    s_str(o, "negotiation", "gaza-ceasefire");
    json_t *parties = s_get(o, "parties");
    assert_true(json_is_array(parties));
    assert_int_equal(json_array_size(parties), 3);
    assert_string_equal(json_string_value(json_array_get(parties, 0)), "us");
    assert_string_equal(json_string_value(json_array_get(parties, 1)), "egypt");
    assert_string_equal(json_string_value(json_array_get(parties, 2)), "qatar");
    s_int(o, "phase", 2);
    s_str(o, "status", "agreed_in_principle");
    s_str(o, "kind", "correction");
    json_t *refs = s_get(o, "references");
    assert_true(json_is_array(refs));
    assert_int_equal(json_array_size(refs), 2);
    assert_true(json_integer_value(json_array_get(refs, 0)) == 7);
    assert_true(json_integer_value(json_array_get(refs, 1)) == 9000000000ll);
    s_str(o, "headline", S_NASTY);
    s_str(o, "body", d.update.body);
    s_str(o, "location", "Doha \xe2\x80\x94 Qatar");
    s_int(o, "scheduled_at", 1717430400000);
    s_int(o, "issued_at", 1717000000000);
    s_int(o, "signer_seq", 1717000000000001);
    s_int(o, "expires_at", 1717516800000);
    json_decref(o);
    free(s);
}

static void
test_delivery_to_json_minimal(void **state)
{
    (void)state;
    parley_delivery_t d;
    s_delivery(&d);
    d.signer_name[0] = '\0';
    d.update.kind = PARLEY_KIND_UPDATE;
    d.update.n_references = 0;
    d.update.n_parties = 1;
    d.update.body[0] = '\0';
    d.update.location[0] = '\0';
    d.update.scheduled_at = 0;
    d.update.expires_at = 0;
    strcpy(d.update.headline, "x");

    char *s = parley_delivery_to_json(&d);
    assert_non_null(s);
    json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 18);
    s_str(o, "signer_name", "");
    s_str(o, "kind", "update");
    s_str(o, "body", "");
    s_str(o, "location", "");
    s_int(o, "scheduled_at", 0);
    s_int(o, "expires_at", 0);
    assert_int_equal(json_array_size(s_get(o, "references")), 0);
    assert_int_equal(json_array_size(s_get(o, "parties")), 1);
    json_decref(o);
    free(s);

    /* text that is not UTF-8 cannot be JSON: NULL with errno */
    strcpy(d.update.headline, "bad \xc3\x28");
    errno = 0;
    s = parley_delivery_to_json(&d);
    assert_null(s);
    assert_true(errno != 0);
}

/*
 * signer_seq and references are valid up to INT64_MAX (validation refuses
 * more, so every JSON reader gets them exactly); the largest valid values
 * must come out as themselves, not as negative numbers.
 */
static void
test_delivery_to_json_large_u64(void **state)
{
    (void)state;
    parley_delivery_t d;
    s_delivery(&d);
    d.update.signer_seq = (uint64_t)INT64_MAX;
    d.update.references[1] = (uint64_t)INT64_MAX - 1;
    assert_int_equal(parley_update_validate(&d.update, NULL, 0), 0);
    char *s = parley_delivery_to_json(&d);
    if (s == NULL)
        return; /* refusing is honest; a wrong number is not */
    json_t *o = json_loads(s, 0, NULL);
    assert_non_null(o);
    json_t *seq = s_get(o, "signer_seq");
    json_t *ref = json_array_get(s_get(o, "references"), 1);
    assert_true(json_is_integer(seq) && json_integer_value(seq) == INT64_MAX);
    assert_true(json_is_integer(ref)
                && json_integer_value(ref) == INT64_MAX - 1);
    int seq_neg = json_is_integer(seq) && json_integer_value(seq) < 0;
    int ref_neg = json_is_integer(ref) && json_integer_value(ref) < 0;
    char shown[64] = "";
    if (seq_neg || ref_neg) {
        const char *p = strstr(s, "\"signer_seq\"");
        snprintf(shown, sizeof(shown), "%.40s", p != NULL ? p : s);
    }
    json_decref(o);
    free(s);
    if (seq_neg || ref_neg)
        fail_msg("uint64 fields came out negative: signer_seq %llu gave %s; "
                 "reference %llu negative: %s",
                 (unsigned long long)d.update.signer_seq, shown,
                 (unsigned long long)d.update.references[1],
                 ref_neg ? "yes" : "no");
}

/* ------------------------------------------------------------ from_json */

static void
test_update_from_json_fills(void **state)
{
    (void)state;
    parley_update_t u;
    char err[256] = "";
    memset(&u, 0, sizeof(u));
    const char *text =
        "{\"negotiation\":\"gaza-ceasefire\",\"parties\":[\"us\",\"egypt\"],"
        "\"phase\":3,\"status\":\"in_effect\",\"kind\":\"retraction\","
        "\"references\":[11,12],\"headline\":\"Phase 3 \\u00e9 \\ud83d\\udd4a "
        "\\\"q\\\"\","
        "\"body\":\"b\\nc\",\"location\":\"Cairo\",\"scheduled_at\":5,"
        "\"issued_at\":1717000000000,\"signer_seq\":99,\"expires_at\":"
        "1717000000001}";
    assert_int_equal(parley_update_from_json(text, &u, err, sizeof(err)), 0);
    assert_string_equal(u.negotiation, "gaza-ceasefire");
    assert_int_equal(u.n_parties, 2);
    assert_string_equal(u.parties[0], "us");
    assert_string_equal(u.parties[1], "egypt");
    assert_int_equal(u.phase, 3);
    assert_int_equal(u.status, PARLEY_STATUS_IN_EFFECT);
    assert_int_equal(u.kind, PARLEY_KIND_RETRACTION);
    assert_int_equal(u.n_references, 2);
    assert_int_equal(u.references[0], 11);
    assert_int_equal(u.references[1], 12);
    assert_string_equal(u.headline, "Phase 3 \xc3\xa9 \xf0\x9f\x95\x8a \"q\"");
    assert_string_equal(u.body, "b\nc");
    assert_string_equal(u.location, "Cairo");
    assert_int_equal(u.scheduled_at, 5);
    assert_int_equal(u.issued_at, 1717000000000);
    assert_int_equal(u.signer_seq, 99);
    assert_int_equal(u.expires_at, 1717000000001);
    assert_int_equal(parley_update_validate(&u, NULL, 0), 0);

    /* fields not given stay as they were */
    assert_int_equal(
        parley_update_from_json("{\"headline\":\"New\",\"phase\":0}", &u, err,
                                sizeof(err)),
        0);
    assert_string_equal(u.headline, "New");
    assert_int_equal(u.phase, 0);
    assert_string_equal(u.negotiation, "gaza-ceasefire");
    assert_int_equal(u.n_parties, 2);
    assert_int_equal(u.signer_seq, 99);
    assert_int_equal(parley_update_from_json("{}", &u, err, sizeof(err)), 0);
    assert_string_equal(u.headline, "New");

    /* the limits themselves are fine */
    char text2[512], h200[201];
    memset(h200, 'h', 200);
    h200[200] = '\0';
    snprintf(text2, sizeof(text2),
             "{\"headline\":\"%s\",\"negotiation\":\"%.32s\",\"phase\":255}",
             h200, h200);
    assert_int_equal(parley_update_from_json(text2, &u, err, sizeof(err)), 0);
    assert_int_equal(strlen(u.headline), 200);
    assert_int_equal(strlen(u.negotiation), 32);
    assert_int_equal(u.phase, 255);
}

/*
 * The fields round-trip: to_json output goes straight back in (the
 * delivery-only fields are accepted and ignored, so `parley sub --json`
 * can feed `parley pub --json`).
 */
static void
test_json_roundtrip(void **state)
{
    (void)state;
    parley_delivery_t d;
    parley_update_t u;
    char err[256] = "";
    s_delivery(&d);
    char *s = parley_delivery_to_json(&d);
    assert_non_null(s);
    memset(&u, 0, sizeof(u));
    int rc = parley_update_from_json(s, &u, err, sizeof(err));
    if (rc != 0)
        fail_msg("from_json: %s", err);
    assert_memory_equal(&u, &d.update, sizeof(u));
    free(s);
}

static void
test_update_from_json_errors(void **state)
{
    (void)state;
    char big[5000];
    static char cases[64][5200];
    static const char *words[64];
    int n = 0;
#define S_CASE(word, ...)                                                      \
    do {                                                                       \
        snprintf(cases[n], sizeof(cases[n]), __VA_ARGS__);                     \
        words[n++] = (word);                                                   \
    } while (0)

    S_CASE("color", "{\"headline\":\"x\",\"color\":\"red\"}");
    S_CASE("Headline", "{\"Headline\":\"x\"}");
    S_CASE("bogus", "{\"bogus\":5}"); /* a field no update has */
    /* wrong types */
    S_CASE("phase", "{\"phase\":\"1\"}");
    S_CASE("phase", "{\"phase\":1.5}");
    S_CASE("phase", "{\"phase\":null}");
    S_CASE("parties", "{\"parties\":\"us\"}");
    S_CASE("parties", "{\"parties\":[1]}");
    S_CASE("parties", "{\"parties\":[[\"us\"]]}");
    S_CASE("headline", "{\"headline\":5}");
    S_CASE("headline", "{\"headline\":[\"x\"]}");
    S_CASE("negotiation", "{\"negotiation\":true}");
    S_CASE("issued_at", "{\"issued_at\":\"now\"}");
    S_CASE("issued_at", "{\"issued_at\":1e12}");
    S_CASE("signer_seq", "{\"signer_seq\":{}}");
    S_CASE("status", "{\"status\":4}");
    S_CASE("kind", "{\"kind\":true}");
    S_CASE("references", "{\"references\":\"7\"}");
    S_CASE("references", "{\"references\":[\"7\"]}");
    /* duplicate keys */
    S_CASE(NULL, "{\"headline\":\"a\",\"headline\":\"b\"}");
    S_CASE(NULL, "{\"phase\":1,\"status\":\"signed\",\"phase\":2}");
    /* oversize strings (one byte over) */
    memset(big, 'a', sizeof(big));
    S_CASE("headline", "{\"headline\":\"%.*s\"}", 201, big);
    S_CASE("negotiation", "{\"negotiation\":\"%.*s\"}", 33, big);
    S_CASE("parties", "{\"parties\":[\"us\",\"%.*s\"]}", 33, big);
    S_CASE("location", "{\"location\":\"%.*s\"}", 201, big);
    S_CASE("body", "{\"body\":\"%.*s\"}", 4097, big);
    /* unknown enum names */
    S_CASE("status", "{\"status\":\"maybe\"}");
    S_CASE("status", "{\"status\":\"PROPOSED\"}");
    S_CASE("status", "{\"status\":\"\"}");
    S_CASE("kind", "{\"kind\":\"rumour\"}");
    /* out of range numbers */
    S_CASE("phase", "{\"phase\":256}");
    S_CASE("phase", "{\"phase\":-1}");
    S_CASE("issued_at", "{\"issued_at\":-5}");
    S_CASE("signer_seq", "{\"signer_seq\":-1}");
    S_CASE("references", "{\"kind\":\"correction\",\"references\":[0]}");
    S_CASE("parties",
           "{\"parties\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\","
           "\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}");
    S_CASE("references", "{\"references\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,"
                         "15,16,17]}");
    /* not an object, not JSON */
    S_CASE(NULL, "[\"headline\"]");
    S_CASE(NULL, "\"headline\"");
    S_CASE(NULL, "{\"headline\":\"x\"");
    S_CASE(NULL, "headline=x");
    S_CASE(NULL, "{\"headline\":\"x\"} {}");
    S_CASE(NULL, "%s", ""); /* empty input */
    /* a NUL character inside a string */
    S_CASE(NULL, "{\"headline\":\"a\\u0000b\"}");
#undef S_CASE

    for (int i = 0; i < n; i++) {
        parley_update_t u;
        char err[256];
        memset(&u, 0, sizeof(u));
        strcpy(err, "");
        int rc = parley_update_from_json(cases[i], &u, err, sizeof(err));
        if (rc != PARLEY_EINVALID)
            fail_msg("case %d (%.60s): got %d", i, cases[i], rc);
        if (err[0] == '\0')
            fail_msg("case %d (%.60s): no message", i, cases[i]);
        if (words[i] != NULL && strstr(err, words[i]) == NULL)
            fail_msg("case %d (%.60s): message \"%s\" does not name \"%s\"", i,
                     cases[i], err, words[i]);
        /* errbuf is optional */
        assert_int_equal(parley_update_from_json(cases[i], &u, NULL, 0),
                         PARLEY_EINVALID);
    }
}

/* A signed envelope of a valid update, by the key of seed 0x31. */
static size_t
s_envelope(uint8_t *env, uint8_t pk[PARLEY_PUBLICKEY_BYTES])
{
    uint8_t seed[32];
    size_t len = 0;
    memset(seed, 0x31, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    assert_non_null(key);
    parley_delivery_t d;
    s_delivery(&d);
    d.update.kind = PARLEY_KIND_UPDATE;
    d.update.n_references = 0;
    assert_int_equal(parley_sign(key, &d.update, env, PARLEY_ENVELOPE_MAX, &len),
                     0);
    parley_key_public(key, pk);
    parley_key_destroy(&key);
    return len;
}

/*
 * to_json gives the three fields in base64; from_json turns them (alone,
 * or with the decoded fields beside them) back into the same bytes.
 */
static void
test_envelope_json_roundtrip(void **state)
{
    (void)state;
    uint8_t env[PARLEY_ENVELOPE_MAX], back[PARLEY_ENVELOPE_MAX + 128];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char pk64[45], detail[128];
    size_t len = s_envelope(env, pk), back_len = 0;
    parley_pubkey_format(pk, pk64);

    char *text = parley_envelope_to_json(env, len);
    assert_non_null(text);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 3);
    assert_string_equal(json_string_value(s_get(o, "signer")), pk64);
    assert_int_equal(json_string_length(s_get(o, "signature")), 88);
    assert_true(json_string_length(s_get(o, "signed_body")) > 0);

    assert_int_equal(parley_envelope_from_json(text, strlen(text), back,
                                               sizeof(back), &back_len, detail,
                                               sizeof(detail)),
                     0);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, env, len);

    /* With the decoded fields beside them (as a gateway shows an update),
     * and not NUL-terminated. */
    json_object_set_new(o, "seq", json_integer(12));
    json_object_set_new(o, "headline", json_string("shown, not signed"));
    char *whole = json_dumps(o, JSON_COMPACT);
    assert_non_null(whole);
    size_t whole_len = strlen(whole);
    char *unterminated = malloc(whole_len);
    assert_non_null(unterminated);
    memcpy(unterminated, whole, whole_len);
    memset(back, 0, sizeof(back));
    assert_int_equal(parley_envelope_from_json(unterminated, whole_len, back,
                                               sizeof(back), &back_len, NULL, 0),
                     0);
    assert_memory_equal(back, env, len);
    /* Too little room for the envelope. */
    assert_int_equal(parley_envelope_from_json(text, strlen(text), back,
                                               len - 1, &back_len, NULL, 0),
                     -ENOBUFS);
    free(unterminated);
    free(whole);
    json_decref(o);
    free(text);

    /* Not an envelope. */
    errno = 0;
    assert_null(parley_envelope_to_json("\x0a\x01", 2));
    assert_int_equal(errno, -PARLEY_EMALFORMED);
}

/* Every way the JSON form can be wrong is PARLEY_EMALFORMED, named. */
static void
test_envelope_from_json_errors(void **state)
{
    (void)state;
    uint8_t env[PARLEY_ENVELOPE_MAX], out[PARLEY_ENVELOPE_MAX + 128];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    size_t len = s_envelope(env, pk), out_len;
    char *good = parley_envelope_to_json(env, len);
    assert_non_null(good);
    json_t *g = json_loads(good, 0, NULL);
    assert_non_null(g);
    const char *body = json_string_value(s_get(g, "signed_body"));
    const char *sig = json_string_value(s_get(g, "signature"));
    const char *signer = json_string_value(s_get(g, "signer"));
    char big[PARLEY_ENVELOPE_MAX * 2 + 64];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct {
        const char *fmt;  /* %1$s body, %2$s sig, %3$s signer, %4$s big */
        const char *want; /* start of the detail */
    } cases[] = {
        { "", "not JSON" },
        { "[1,2]", "expected a JSON object" },
        { "{\"signature\":\"%2$s\",\"signer\":\"%3$s\"}", "signed_body:" },
        { "{\"signed_body\":\"%1$s\",\"signer\":\"%3$s\"}", "signature:" },
        { "{\"signed_body\":\"%1$s\",\"signature\":\"%2$s\"}", "signer:" },
        { "{\"signed_body\":1,\"signature\":\"%2$s\",\"signer\":\"%3$s\"}",
          "signed_body:" },
        { "{\"signed_body\":\"\",\"signature\":\"%2$s\",\"signer\":\"%3$s\"}",
          "signed_body:" },
        { "{\"signed_body\":\"%1$s!\",\"signature\":\"%2$s\",\"signer\":\"%3$s\"}",
          "signed_body:" },
        { "{\"signed_body\":\"%1$s\",\"signature\":\"%3$s\",\"signer\":\"%3$s\"}",
          "signature:" },
        { "{\"signed_body\":\"%1$s\",\"signature\":\"%2$s\",\"signer\":\"%2$s\"}",
          "signer:" },
        { "{\"signed_body\":\"%4$s\",\"signature\":\"%2$s\",\"signer\":\"%3$s\"}",
          "signed_body:" },
        { "{\"signed_body\":\"%1$s\",\"signed_body\":\"%1$s\",\"signature\":"
          "\"%2$s\",\"signer\":\"%3$s\"}",
          "not JSON" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[sizeof(big) + 1024], detail[256] = "";
        snprintf(text, sizeof(text), cases[i].fmt, body, sig, signer, big);
        int rc = parley_envelope_from_json(text, strlen(text), out, sizeof(out),
                                           &out_len, detail, sizeof(detail));
        if (rc != PARLEY_EMALFORMED
            || strncmp(detail, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: %d \"%s\", expected malformed \"%s...\"", i,
                     rc, detail, cases[i].want);
    }
    assert_int_equal(parley_envelope_from_json(NULL, 0, out, sizeof(out),
                                               &out_len, NULL, 0),
                     PARLEY_EARG);
    json_decref(g);
    free(good);
}

/* An update as a gateway shows it goes back into `parley pub --json`:
 * the signature fields are ignored like seq and signer. */
static void
test_update_from_json_ignores_signature_fields(void **state)
{
    (void)state;
    parley_update_t u;
    memset(&u, 0, sizeof(u));
    assert_int_equal(parley_update_from_json(
                         "{\"headline\":\"h\",\"signed_body\":\"AAAA\","
                         "\"signature\":\"AAAA\",\"signer\":\"x\"}",
                         &u, NULL, 0),
                     0);
    assert_string_equal(u.headline, "h");
}

/* The JSON of a delivery that holds its envelope carries the signed
 * bytes and the signature; they verify, and a JSON line with them can
 * be read back by parley_update_from_json(). */
static void
test_delivery_to_json_signed(void **state)
{
    (void)state;
    fx_update_t f = { .headline = "Talks resume in Cairo", .phase = 1 };
    parley_delivery_t *d = fx_delivery(7, &f);
    assert_non_null(d);
    char *text = parley_delivery_to_json(d);
    assert_non_null(text);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    const char *b_body = json_string_value(s_get(o, "signed_body"));
    const char *b_sig = json_string_value(s_get(o, "signature"));
    const char *b_pk = json_string_value(s_get(o, "signer"));
    assert_non_null(b_body);
    assert_non_null(b_sig);
    uint8_t body[PARLEY_ENVELOPE_MAX], sig[64], pk[32];
    size_t body_len = 0, sig_len = 0, pk_len = 0;
    assert_int_equal(sodium_base642bin(body, sizeof(body), b_body,
                                       strlen(b_body), NULL, &body_len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(sodium_base642bin(sig, sizeof(sig), b_sig, strlen(b_sig),
                                       NULL, &sig_len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(sodium_base642bin(pk, sizeof(pk), b_pk, strlen(b_pk),
                                       NULL, &pk_len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(sig_len, 64);
    assert_int_equal(pk_len, 32);
    /* what a receiver checks: Ed25519 over context || 0 || body */
    uint8_t msg[sizeof(PARLEY_SIGN_CONTEXT) + PARLEY_ENVELOPE_MAX];
    memcpy(msg, PARLEY_SIGN_CONTEXT, sizeof(PARLEY_SIGN_CONTEXT));
    memcpy(msg + sizeof(PARLEY_SIGN_CONTEXT), body, body_len);
    assert_int_equal(crypto_sign_verify_detached(
                         sig, msg, sizeof(PARLEY_SIGN_CONTEXT) + body_len, pk),
                     0);
    /* and the body decodes to the update the JSON shows */
    parley_update_t u;
    _Alignas(16) uint8_t space[16384];
    parley__arena_t arena;
    parley__arena_init(&arena, space, sizeof(space));
    assert_int_equal(parley__update_decode(body, body_len, &u, &arena), 0);
    parley__arena_reset(&arena);
    assert_string_equal(u.headline, "Talks resume in Cairo");
    /* a --json line goes back into parley pub --json */
    parley_update_t *back = parley_update_new();
    char err[256] = "";
    assert_int_equal(parley_update_from_json(text, back, err, sizeof(err)), 0);
    assert_string_equal(parley_update_headline(back), "Talks resume in Cairo");
    parley_update_destroy(&back);
    json_decref(o);
    free(text);
    parley_delivery_destroy(&d);
}

/* A bad status or kind says which value, and lists the valid ones. */
static void
test_update_from_json_lists_values(void **state)
{
    (void)state;
    parley_update_t *u = parley_update_new();
    char err[512];
    assert_int_equal(parley_update_from_json("{\"status\": \"agreed\"}", u, err,
                                             sizeof(err)),
                     PARLEY_EINVALID);
    assert_string_equal(err,
                        "status: unknown status \"agreed\" (valid: proposed, "
                        "talks_scheduled, talks_in_progress, awaiting_response, "
                        "counter_proposal, agreed_in_principle, signed, "
                        "in_effect, completed, stalled, suspended, collapsed)");
    assert_int_equal(parley_update_from_json("{\"kind\": 3}", u, err,
                                             sizeof(err)),
                     PARLEY_EINVALID);
    assert_string_equal(err, "kind: unknown kind \"a number\" (valid: update, "
                             "correction, retraction)");
    parley_update_destroy(&u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_to_json_fields),
        cmocka_unit_test(test_delivery_to_json_minimal),
        cmocka_unit_test(test_delivery_to_json_large_u64),
        cmocka_unit_test(test_update_from_json_fills),
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_update_from_json_errors),
        cmocka_unit_test(test_envelope_json_roundtrip),
        cmocka_unit_test(test_envelope_from_json_errors),
        cmocka_unit_test(test_update_from_json_ignores_signature_fields),
        cmocka_unit_test(test_delivery_to_json_signed),
        cmocka_unit_test(test_update_from_json_lists_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
