/*
 * test_codec.c - the wire codec (client/codec.c): updates, envelopes,
 * deliveries, heartbeats, api requests and replies, reject codes, and the
 * decode arena.
 *
 * Non-canonical bodies are built with a tiny protobuf writer below that
 * knows nothing of protobuf-c, so the tests can say exactly which bytes a
 * decoder must refuse.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "codec.h"
#include "parley.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- a protobuf writer */

typedef struct {
    uint8_t p[8192];
    size_t len;
} s_pb_t;

static void
s_pb_raw(s_pb_t *b, const void *data, size_t n)
{
    assert_true(b->len + n <= sizeof(b->p));
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void
s_pb_varint(s_pb_t *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            c |= 0x80;
        s_pb_raw(b, &c, 1);
    } while (v != 0);
}

/* field with a varint value, written even when it is 0 */
static void
s_pb_uint(s_pb_t *b, unsigned field, uint64_t v)
{
    s_pb_varint(b, (uint64_t)field << 3);
    s_pb_varint(b, v);
}

/* length-delimited field, written even when empty */
static void
s_pb_bytes(s_pb_t *b, unsigned field, const void *data, size_t n)
{
    s_pb_varint(b, ((uint64_t)field << 3) | 2);
    s_pb_varint(b, n);
    s_pb_raw(b, data, n);
}

static void
s_pb_str(s_pb_t *b, unsigned field, const char *s)
{
    s_pb_bytes(b, field, s, strlen(s));
}

/* StatusUpdate field numbers (proto/parley.proto). */
enum {
    F_NEGOTIATION = 1,
    F_PARTIES,
    F_PHASE,
    F_STATUS,
    F_KIND,
    F_REFERENCES,
    F_HEADLINE,
    F_BODY,
    F_LOCATION,
    F_SCHEDULED_AT,
    F_ISSUED_AT,
    F_SIGNER_SEQ,
    F_EXPIRES_AT,
};

/* The canonical encoding of the minimal update s_minimal() describes. */
static void
s_pb_minimal(s_pb_t *b)
{
    s_pb_str(b, F_NEGOTIATION, "gaza-ceasefire");
    s_pb_str(b, F_PARTIES, "us");
    s_pb_uint(b, F_PHASE, 2);
    s_pb_uint(b, F_STATUS, 4);
    s_pb_str(b, F_HEADLINE, "Responses expected");
    s_pb_uint(b, F_ISSUED_AT, 1717000000000);
    s_pb_uint(b, F_SIGNER_SEQ, 77);
}

static void
s_minimal(parley_update_t *u)
{
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire");
    strcpy(u->parties[0], "us");
    u->n_parties = 1;
    u->phase = 2;
    u->status = PARLEY_STATUS_AWAITING_RESPONSE;
    strcpy(u->headline, "Responses expected");
    u->issued_at = 1717000000000;
    u->signer_seq = 77;
}

/* Every field set, lists at their maximum, UTF-8 text. */
static void
s_full(parley_update_t *u)
{
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire-2024-round-three");
    u->n_parties = PARLEY_PARTIES_MAX;
    for (size_t i = 0; i < PARLEY_PARTIES_MAX; i++)
        snprintf(u->parties[i], sizeof(u->parties[i]), "party-%02zu", i);
    u->phase = 3;
    u->status = PARLEY_STATUS_COUNTER_PROPOSAL;
    u->kind = PARLEY_KIND_CORRECTION;
    u->n_references = PARLEY_REFERENCES_MAX;
    for (size_t i = 0; i < PARLEY_REFERENCES_MAX; i++)
        u->references[i] = (uint64_t)1 << (i * 4);
    strcpy(u->headline, "Counter-proposal \xe2\x80\x9c"
                        "b\xc3\xa9"
                        "ta\xe2\x80\x9d "
                        "\xf0\x9f\x95\x8a \"quoted\" \\ back");
    memset(u->body, 'x', PARLEY_BODY_MAX);
    u->body[PARLEY_BODY_MAX] = '\0';
    strcpy(u->location, "Doha \xe2\x80\x94 Qatar");
    u->scheduled_at = 1717430400000;
    u->issued_at = 1717000000000;
    u->signer_seq = (uint64_t)INT64_MAX;
    u->expires_at = INT64_MAX;
}

static int
s_decode(const void *buf, size_t len, parley_update_t *out)
{
    _Alignas(16) uint8_t space[16384];
    parley__arena_t a;
    parley__arena_init(&a, space, sizeof(space));
    int rc = parley__update_decode(buf, len, out, &a);
    parley__arena_reset(&a);
    return rc;
}

/* ---------------------------------------------------------- updates */

static void
test_update_roundtrip_full(void **state)
{
    (void)state;
    static uint8_t buf[PARLEY_ENVELOPE_MAX];
    parley_update_t u, out;
    size_t len = 0;
    s_full(&u);
    assert_int_equal(parley_update_validate(&u, NULL, 0), 0);
    assert_int_equal(parley__update_encode(&u, buf, sizeof(buf), &len), 0);
    assert_true(len > PARLEY_BODY_MAX);
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(s_decode(buf, len, &out), 0);
    assert_memory_equal(&out, &u, sizeof(u));
    assert_int_equal(parley_update_validate(&out, NULL, 0), 0);

    /* kind, negative-free int64 and uint64 extremes survive */
    s_full(&u);
    u.kind = PARLEY_KIND_RETRACTION;
    u.n_references = 1;
    u.references[0] = (uint64_t)INT64_MAX;
    for (size_t i = 1; i < PARLEY_REFERENCES_MAX; i++)
        u.references[i] = 0; /* unused slots must decode as zero */
    assert_int_equal(parley__update_encode(&u, buf, sizeof(buf), &len), 0);
    assert_int_equal(s_decode(buf, len, &out), 0);
    assert_memory_equal(&out, &u, sizeof(u));
}

/* The encoder writes exactly the canonical bytes (field order, defaults). */
static void
test_update_encode_is_canonical(void **state)
{
    (void)state;
    parley_update_t u, out;
    uint8_t buf[512];
    s_pb_t expect = { .len = 0 };
    size_t len = 0;
    s_minimal(&u);
    s_pb_minimal(&expect);
    assert_int_equal(parley__update_encode(&u, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, expect.len);
    assert_memory_equal(buf, expect.p, len);
    assert_int_equal(s_decode(expect.p, expect.len, &out), 0);
    assert_memory_equal(&out, &u, sizeof(u));
}

static void
test_update_encode_enobufs(void **state)
{
    (void)state;
    parley_update_t u;
    uint8_t buf[512];
    size_t len = 0, full = 0;
    s_minimal(&u);
    assert_int_equal(parley__update_encode(&u, buf, sizeof(buf), &full), 0);
    assert_int_equal(parley__update_encode(&u, buf, full - 1, &len), -ENOBUFS);
    assert_int_equal(parley__update_encode(&u, buf, 0, &len), -ENOBUFS);
    assert_int_equal(parley__update_encode(&u, buf, full, &len), 0);
    assert_int_equal(len, full);
}

/* Bytes that are not a StatusUpdate, or one that cannot fit the struct. */
static void
test_update_decode_bad_input(void **state)
{
    (void)state;
    parley_update_t out;
    s_pb_t b;
    char big[PARLEY_BODY_MAX + 2];

    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    assert_int_equal(s_decode(junk, sizeof(junk), &out), PARLEY_EINVALID);
    static const uint8_t cut[] = { 0x0a, 0x05, 'g', 'a' };
    assert_int_equal(s_decode(cut, sizeof(cut), &out), PARLEY_EINVALID);
    static const uint8_t wrong_type[] = { 0x0d, 1, 2, 3, 4 }; /* fixed32 #1 */
    assert_int_equal(s_decode(wrong_type, sizeof(wrong_type), &out),
                     PARLEY_EINVALID);

    /* 17 parties */
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, "n");
    for (int i = 0; i < PARLEY_PARTIES_MAX + 1; i++) {
        char p[8];
        snprintf(p, sizeof(p), "p%d", i);
        s_pb_str(&b, F_PARTIES, p);
    }
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);

    /* 17 references */
    b.len = 0;
    s_pb_t packed = { .len = 0 };
    for (int i = 0; i < PARLEY_REFERENCES_MAX + 1; i++)
        s_pb_varint(&packed, (uint64_t)i + 1);
    s_pb_uint(&b, F_KIND, 1);
    s_pb_bytes(&b, F_REFERENCES, packed.p, packed.len);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);

    /* strings one byte over their field */
    memset(big, 'a', sizeof(big));
    big[PARLEY_SLUG_MAX + 1] = '\0';
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, big);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    b.len = 0;
    s_pb_str(&b, F_PARTIES, big);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    big[PARLEY_SLUG_MAX] = '\0'; /* exactly 32 fits */
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, big);
    s_pb_str(&b, F_PARTIES, big);
    assert_int_equal(s_decode(b.p, b.len, &out), 0);
    assert_int_equal(strlen(out.negotiation), PARLEY_SLUG_MAX);
    assert_int_equal(strlen(out.parties[0]), PARLEY_SLUG_MAX);

    memset(big, 'h', sizeof(big));
    big[PARLEY_HEADLINE_MAX + 1] = '\0';
    b.len = 0;
    s_pb_str(&b, F_HEADLINE, big);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    big[PARLEY_LOCATION_MAX + 1] = '\0';
    b.len = 0;
    s_pb_str(&b, F_LOCATION, big);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    memset(big, 'b', sizeof(big));
    big[PARLEY_BODY_MAX + 1] = '\0';
    b.len = 0;
    s_pb_str(&b, F_BODY, big);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    big[PARLEY_BODY_MAX] = '\0';
    b.len = 0;
    s_pb_str(&b, F_BODY, big);
    assert_int_equal(s_decode(b.p, b.len, &out), 0);
    assert_int_equal(strlen(out.body), PARLEY_BODY_MAX);

    /* the empty message decodes (to the empty, invalid update) */
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(s_decode("", 0, &out), 0);
    assert_int_equal(out.n_parties, 0);
    assert_string_equal(out.negotiation, "");
    assert_int_equal(parley_update_validate(&out, NULL, 0), PARLEY_EINVALID);
}

/* Encodings protobuf accepts but that are not the canonical one. */
static void
test_update_decode_noncanonical(void **state)
{
    (void)state;
    parley_update_t out;
    s_pb_t b;

    /* the reference encoding decodes */
    b.len = 0;
    s_pb_minimal(&b);
    assert_int_equal(s_decode(b.p, b.len, &out), 0);

    /* a field encoded twice (protobuf: last one wins) */
    b.len = 0;
    s_pb_minimal(&b);
    s_pb_str(&b, F_HEADLINE, "Agreed in principle");
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    b.len = 0;
    s_pb_minimal(&b);
    s_pb_uint(&b, F_PHASE, 3);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);

    /* a string with an embedded NUL would be cut short by C readers */
    b.len = 0;
    s_pb_minimal(&b);
    s_pb_bytes(&b, F_LOCATION, "Cairo\0Gaza", 10);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, "gaza-ceasefire");
    s_pb_bytes(&b, F_PARTIES, "us\0", 3);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    b.len = 0;
    s_pb_bytes(&b, F_HEADLINE, "\0", 1);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);

    /* explicitly encoded defaults (proto3 omits them) */
    b.len = 0;
    s_pb_minimal(&b);
    s_pb_uint(&b, F_KIND, 0);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    b.len = 0;
    s_pb_minimal(&b);
    s_pb_uint(&b, F_EXPIRES_AT, 0);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    b.len = 0;
    s_pb_minimal(&b);
    s_pb_str(&b, F_BODY, "");
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
    b.len = 0;
    s_pb_minimal(&b);
    s_pb_bytes(&b, F_REFERENCES, "", 0);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);

    /* a padded varint: phase 2 as two bytes */
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, "gaza-ceasefire");
    s_pb_str(&b, F_PARTIES, "us");
    s_pb_raw(&b, "\x18\x82\x00", 3);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);

    /* references not packed (proto3 packs repeated scalars): 1 reference
     * unpacked is one byte shorter than packed */
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, "gaza-ceasefire");
    s_pb_uint(&b, F_KIND, 1);
    s_pb_uint(&b, F_REFERENCES, 5);
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
}

/*
 * codec.h: "no two byte strings decode to the same update". Non-canonical
 * encodings exactly as long as the canonical one are such byte strings.
 */
static void
test_update_decode_rejects_same_size_variants(void **state)
{
    (void)state;
    parley_update_t out;
    s_pb_t b = { .len = 0 };
    s_pb_t canon = { .len = 0 };
    int rc[3];
    s_pb_minimal(&canon);

    /* the same fields in another order */
    s_pb_uint(&b, F_SIGNER_SEQ, 77);
    s_pb_str(&b, F_HEADLINE, "Responses expected");
    s_pb_str(&b, F_NEGOTIATION, "gaza-ceasefire");
    s_pb_str(&b, F_PARTIES, "us");
    s_pb_uint(&b, F_PHASE, 2);
    s_pb_uint(&b, F_STATUS, 4);
    s_pb_uint(&b, F_ISSUED_AT, 1717000000000);
    assert_int_equal(b.len, canon.len);
    rc[0] = s_decode(b.p, b.len, &out);

    /* two references unpacked, in field order: 4 bytes, as many as packed */
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, "gaza-ceasefire");
    s_pb_str(&b, F_PARTIES, "us");
    s_pb_uint(&b, F_KIND, 1);
    s_pb_uint(&b, F_REFERENCES, 5);
    s_pb_uint(&b, F_REFERENCES, 6);
    s_pb_str(&b, F_HEADLINE, "Correction");
    rc[1] = s_decode(b.p, b.len, &out);

    /* one reference unpacked (1 byte short) plus a padded phase (1 over) */
    b.len = 0;
    s_pb_str(&b, F_NEGOTIATION, "gaza-ceasefire");
    s_pb_str(&b, F_PARTIES, "us");
    s_pb_raw(&b, "\x18\x82\x00", 3);
    s_pb_uint(&b, F_REFERENCES, 5);
    rc[2] = s_decode(b.p, b.len, &out);

    if (rc[0] != PARLEY_EINVALID || rc[1] != PARLEY_EINVALID
        || rc[2] != PARLEY_EINVALID)
        fail_msg("non-canonical bodies of canonical length accepted: "
                 "reordered fields -> %d, 2 unpacked references -> %d, "
                 "unpacked reference + padded varint -> %d (want %d each)",
                 rc[0], rc[1], rc[2], PARLEY_EINVALID);
}

/* Nor may bytes the schema does not know ride along in a signed body. */
static void
test_update_decode_rejects_unknown_field(void **state)
{
    (void)state;
    parley_update_t out;
    s_pb_t b = { .len = 0 };
    s_pb_minimal(&b);
    s_pb_str(&b, 99, "hidden text");
    assert_int_equal(s_decode(b.p, b.len, &out), PARLEY_EINVALID);
}

/* --------------------------------------------------------- envelopes */

static void
test_envelope_roundtrip(void **state)
{
    (void)state;
    uint8_t pk[PARLEY_PUBLICKEY_BYTES], sig[PARLEY_SIGNATURE_BYTES];
    uint8_t buf[256], space[1024];
    parley__arena_t a;
    parley__envelope_t e;
    size_t len = 0;
    static const char body[] = "some body bytes";
    for (size_t i = 0; i < sizeof(pk); i++)
        pk[i] = (uint8_t)(i + 1);
    for (size_t i = 0; i < sizeof(sig); i++)
        sig[i] = (uint8_t)(0xff - i);
    assert_int_equal(parley__envelope_encode(body, sizeof(body) - 1, pk, sig,
                                             buf, sizeof(buf), &len),
                     0);
    /* body(1), signer(2), signature(3) */
    assert_int_equal(len, 2 + 15 + 2 + 32 + 2 + 64);
    parley__arena_init(&a, space, sizeof(space));
    assert_int_equal(parley__envelope_decode(buf, len, &e, &a), 0);
    assert_int_equal(e.body.len, sizeof(body) - 1);
    assert_memory_equal(e.body.data, body, e.body.len);
    assert_memory_equal(e.signer, pk, sizeof(pk));
    assert_memory_equal(e.signature, sig, sizeof(sig));
    parley__arena_reset(&a);

    size_t small = 0;
    assert_int_equal(parley__envelope_encode(body, sizeof(body) - 1, pk, sig,
                                             buf, len - 1, &small),
                     -ENOBUFS);
}

static void
test_envelope_bad_sizes(void **state)
{
    (void)state;
    uint8_t key[40] = { 0 }, sig[70] = { 0 }, space[1024];
    parley__arena_t a;
    parley__envelope_t e;
    static const size_t key_sizes[] = { 0, 1, 31, 33, 40 };
    static const size_t sig_sizes[] = { 0, 1, 63, 65, 70 };
    s_pb_t b;
    parley__arena_init(&a, space, sizeof(space));

    for (size_t i = 0; i < sizeof(key_sizes) / sizeof(key_sizes[0]); i++) {
        b.len = 0;
        s_pb_str(&b, 1, "body");
        if (key_sizes[i] > 0)
            s_pb_bytes(&b, 2, key, key_sizes[i]);
        s_pb_bytes(&b, 3, sig, 64);
        if (parley__envelope_decode(b.p, b.len, &e, &a) != PARLEY_EMALFORMED)
            fail_msg("signer of %zu bytes accepted", key_sizes[i]);
        parley__arena_reset(&a);
    }
    for (size_t i = 0; i < sizeof(sig_sizes) / sizeof(sig_sizes[0]); i++) {
        b.len = 0;
        s_pb_str(&b, 1, "body");
        s_pb_bytes(&b, 2, key, 32);
        if (sig_sizes[i] > 0)
            s_pb_bytes(&b, 3, sig, sig_sizes[i]);
        if (parley__envelope_decode(b.p, b.len, &e, &a) != PARLEY_EMALFORMED)
            fail_msg("signature of %zu bytes accepted", sig_sizes[i]);
        parley__arena_reset(&a);
    }
    /* no body */
    b.len = 0;
    s_pb_bytes(&b, 2, key, 32);
    s_pb_bytes(&b, 3, sig, 64);
    assert_int_equal(parley__envelope_decode(b.p, b.len, &e, &a),
                     PARLEY_EMALFORMED);
    /* the right sizes decode */
    b.len = 0;
    s_pb_str(&b, 1, "body");
    s_pb_bytes(&b, 2, key, 32);
    s_pb_bytes(&b, 3, sig, 64);
    assert_int_equal(parley__envelope_decode(b.p, b.len, &e, &a), 0);
    /* garbage and nothing */
    assert_int_equal(parley__envelope_decode("\xff\xff\xff", 3, &e, &a),
                     PARLEY_EMALFORMED);
    assert_int_equal(parley__envelope_decode("", 0, &e, &a), PARLEY_EMALFORMED);
    parley__arena_reset(&a);
}

/* ---------------------------------------------- deliveries, heartbeats */

static void
test_delivery_raw_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[128], space[512];
    parley__arena_t a;
    parley__bytes_t upd;
    uint64_t seq = 0;
    int64_t at = 0;
    size_t len = 0;
    parley__arena_init(&a, space, sizeof(space));
    assert_int_equal(parley__delivery_encode(UINT64_MAX, INT64_MAX, "env", 3,
                                             buf, sizeof(buf), &len),
                     0);
    assert_int_equal(parley__delivery_decode_raw(buf, len, &seq, &at, &upd, &a),
                     0);
    assert_true(seq == UINT64_MAX);
    assert_true(at == INT64_MAX);
    assert_int_equal(upd.len, 3);
    assert_memory_equal(upd.data, "env", 3);
    size_t small = 0;
    assert_int_equal(parley__delivery_encode(UINT64_MAX, INT64_MAX, "env", 3,
                                             buf, len - 1, &small),
                     -ENOBUFS);
    /* seq 0 and an empty update are not deliveries */
    assert_int_equal(
        parley__delivery_encode(0, 5, "env", 3, buf, sizeof(buf), &len), 0);
    assert_int_equal(parley__delivery_decode_raw(buf, len, &seq, &at, &upd, &a),
                     PARLEY_EMALFORMED);
    assert_int_equal(
        parley__delivery_encode(9, 5, "", 0, buf, sizeof(buf), &len), 0);
    assert_int_equal(parley__delivery_decode_raw(buf, len, &seq, &at, &upd, &a),
                     PARLEY_EMALFORMED);
    assert_int_equal(
        parley__delivery_decode_raw("\xff", 1, &seq, &at, &upd, &a),
        PARLEY_EMALFORMED);
    parley__arena_reset(&a);
}

static void
test_heartbeat_roundtrip(void **state)
{
    (void)state;
    parley__heartbeat_t hb = { .seq = 123456789,
                               .time_ms = 1717000000000,
                               .first_seq = 17 },
                        out;
    uint8_t buf[128], space[512];
    parley__arena_t a;
    size_t len = 0;
    for (size_t i = 0; i < sizeof(hb.daemon_id); i++)
        hb.daemon_id[i] = (uint8_t)(0xa0 + i);
    parley__arena_init(&a, space, sizeof(space));
    assert_int_equal(parley__heartbeat_encode(&hb, buf, sizeof(buf), &len), 0);
    memset(&out, 0, sizeof(out));
    assert_int_equal(parley__heartbeat_decode(buf, len, &out, &a), 0);
    assert_memory_equal(out.daemon_id, hb.daemon_id, sizeof(hb.daemon_id));
    assert_int_equal(out.seq, hb.seq);
    assert_int_equal(out.time_ms, hb.time_ms);
    assert_int_equal(out.first_seq, hb.first_seq);
    size_t small = 0;
    assert_int_equal(parley__heartbeat_encode(&hb, buf, len - 1, &small),
                     -ENOBUFS);

    /* a daemon id that is not 16 bytes */
    s_pb_t b = { .len = 0 };
    s_pb_bytes(&b, 1, hb.daemon_id, 15);
    s_pb_uint(&b, 2, 1);
    assert_int_equal(parley__heartbeat_decode(b.p, b.len, &out, &a),
                     PARLEY_EMALFORMED);
    assert_int_equal(parley__heartbeat_decode("\xff", 1, &out, &a),
                     PARLEY_EMALFORMED);
    parley__arena_reset(&a);
}

/* ---------------------------------------------------------- requests */

static parley__request_t *
s_request_new(void)
{
    parley__request_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    return r;
}

/* Encode req, decode it into a fresh struct, return that. */
static parley__request_t *
s_request_roundtrip(const parley__request_t *req, parley__arena_t *a,
                    int expect_rc)
{
    static uint8_t buf[16384];
    size_t len = 0;
    parley__request_t *out = s_request_new();
    assert_int_equal(parley__request_encode(req, buf, sizeof(buf), &len), 0);
    memset(out, 0x5a, sizeof(*out));
    assert_int_equal(parley__request_decode(buf, len, out, a), expect_rc);
    assert_true(out->request_id == req->request_id);
    return out;
}

static void
test_request_every_op(void **state)
{
    (void)state;
    uint8_t space[16384];
    parley__arena_t a;
    parley__request_t *req = s_request_new(), *out;
    parley__arena_init(&a, space, sizeof(space));

    /* publish */
    req->request_id = UINT64_MAX;
    req->op = PARLEY__OP_PUBLISH;
    req->update.data = (const uint8_t *)"signed-bytes";
    req->update.len = 12;
    out = s_request_roundtrip(req, &a, 0);
    assert_int_equal(out->op, PARLEY__OP_PUBLISH);
    assert_int_equal(out->update.len, 12);
    assert_memory_equal(out->update.data, "signed-bytes", 12);
    free(out);

    /* replay with a filter on every dimension */
    static const char *const negs[] = { "gaza-ceasefire", "sudan" };
    static const char *const parties[] = { "us", "egypt", "qatar" };
    static const uint32_t phases[] = { 0, 1, 255 };
    parley_filter_t f = { .negotiations = negs,
                          .n_negotiations = 2,
                          .parties = parties,
                          .n_parties = 3,
                          .phases = phases,
                          .n_phases = 3 };
    memset(req, 0, sizeof(*req));
    req->request_id = 7;
    req->op = PARLEY__OP_REPLAY;
    req->from_seq = 100;
    req->to_seq = UINT64_MAX;
    req->limit = 500;
    assert_int_equal(parley__filterbuf_set(&req->filter, &f), 0);
    out = s_request_roundtrip(req, &a, 0);
    assert_int_equal(out->op, PARLEY__OP_REPLAY);
    assert_int_equal(out->from_seq, 100);
    assert_true(out->to_seq == UINT64_MAX);
    assert_int_equal(out->limit, 500);
    assert_int_equal(out->filter.filter.n_negotiations, 2);
    assert_string_equal(out->filter.filter.negotiations[0], "gaza-ceasefire");
    assert_string_equal(out->filter.filter.negotiations[1], "sudan");
    assert_int_equal(out->filter.filter.n_parties, 3);
    assert_string_equal(out->filter.filter.parties[0], "us");
    assert_string_equal(out->filter.filter.parties[1], "egypt");
    assert_string_equal(out->filter.filter.parties[2], "qatar");
    assert_int_equal(out->filter.filter.n_phases, 3);
    assert_int_equal(out->filter.filter.phases[0], 0);
    assert_int_equal(out->filter.filter.phases[1], 1);
    assert_int_equal(out->filter.filter.phases[2], 255);
    /* the decoded filter owns its strings (they live in the filterbuf) */
    assert_ptr_equal(out->filter.filter.parties[1], out->filter.parties[1]);
    free(out);

    /* replay, no filter */
    memset(req, 0, sizeof(*req));
    req->request_id = 8;
    req->op = PARLEY__OP_REPLAY;
    req->from_seq = 1;
    assert_int_equal(parley__filterbuf_set(&req->filter, NULL), 0);
    out = s_request_roundtrip(req, &a, 0);
    assert_int_equal(out->op, PARLEY__OP_REPLAY);
    assert_int_equal(out->from_seq, 1);
    assert_int_equal(out->to_seq, 0);
    assert_int_equal(out->limit, 0);
    assert_int_equal(out->filter.filter.n_negotiations, 0);
    assert_int_equal(out->filter.filter.n_parties, 0);
    assert_int_equal(out->filter.filter.n_phases, 0);
    free(out);

    /* snapshot with a party filter */
    memset(req, 0, sizeof(*req));
    req->request_id = 9;
    req->op = PARLEY__OP_SNAPSHOT;
    parley_filter_t fp = { .parties = parties, .n_parties = 1 };
    assert_int_equal(parley__filterbuf_set(&req->filter, &fp), 0);
    out = s_request_roundtrip(req, &a, 0);
    assert_int_equal(out->op, PARLEY__OP_SNAPSHOT);
    assert_int_equal(out->filter.filter.n_parties, 1);
    assert_string_equal(out->filter.filter.parties[0], "us");
    assert_int_equal(out->filter.filter.n_negotiations, 0);
    assert_int_equal(out->filter.filter.n_phases, 0);
    assert_int_equal(out->n_any_of, 0);
    free(out);

    /* replay and snapshot with alternatives (any_of): "party us" or
     * "phase 2"; an update matches if it matches one of them */
    static const uint32_t two[] = { 2 };
    parley_filter_t fph = { .phases = two, .n_phases = 1 };
    parley__filterbuf_t *alt = calloc(PARLEY__ANY_OF_MAX + 1, sizeof(*alt));
    assert_non_null(alt);
    assert_int_equal(parley__filterbuf_set(&alt[0], &fp), 0);
    assert_int_equal(parley__filterbuf_set(&alt[1], &fph), 0);
    for (int op = PARLEY__OP_REPLAY; op <= PARLEY__OP_SNAPSHOT; op++) {
        memset(req, 0, sizeof(*req));
        req->request_id = 11;
        req->op = (parley__op_t)op;
        parley__request_set_filters(req, alt, 2);
        assert_int_equal(req->n_any_of, 2);
        out = s_request_roundtrip(req, &a, 0);
        assert_int_equal(out->n_any_of, 2);
        assert_int_equal(out->any_of[0].filter.n_parties, 1);
        assert_string_equal(out->any_of[0].filter.parties[0], "us");
        assert_int_equal(out->any_of[1].filter.n_phases, 1);
        assert_int_equal(out->any_of[1].filter.phases[0], 2);
        parley_update_t u = { .negotiation = "sudan", .n_parties = 1,
                              .parties = { "us" }, .phase = 1 };
        assert_true(parley__request_match(out, &u)); /* party us */
        strcpy(u.parties[0], "egypt");
        assert_false(parley__request_match(out, &u)); /* neither */
        u.phase = 2;
        assert_true(parley__request_match(out, &u)); /* phase 2 */
        free(out);
        parley__arena_reset(&a);
    }
    /* one filter goes as the filter, not as any_of */
    memset(req, 0, sizeof(*req));
    parley__request_set_filters(req, alt, 1);
    assert_int_equal(req->n_any_of, 0);
    assert_int_equal(req->filter.filter.n_parties, 1);
    /* more than the daemon takes cannot be sent */
    memset(req, 0, sizeof(*req));
    req->op = PARLEY__OP_REPLAY;
    parley__request_set_filters(req, alt, PARLEY__ANY_OF_MAX + 1);
    static uint8_t big[65536];
    size_t blen;
    assert_int_equal(parley__request_encode(req, big, sizeof(big), &blen),
                     PARLEY_EARG);
    free(alt);

    /* stats, ping */
    memset(req, 0, sizeof(*req));
    req->request_id = 10;
    req->op = PARLEY__OP_STATS;
    out = s_request_roundtrip(req, &a, 0);
    assert_int_equal(out->op, PARLEY__OP_STATS);
    free(out);
    req->request_id = 0;
    req->op = PARLEY__OP_PING;
    out = s_request_roundtrip(req, &a, 0);
    assert_int_equal(out->op, PARLEY__OP_PING);
    free(out);

    /* no op: nothing to encode */
    uint8_t buf[64];
    size_t len = 0;
    req->op = PARLEY__OP_NONE;
    assert_int_equal(parley__request_encode(req, buf, sizeof(buf), &len),
                     PARLEY_EARG);
    /* too small a buffer */
    req->op = PARLEY__OP_PING;
    req->request_id = 1u << 30;
    assert_int_equal(parley__request_encode(req, buf, 2, &len), -ENOBUFS);

    parley__arena_reset(&a);
    free(req);
}

static void
test_request_decode_errors(void **state)
{
    (void)state;
    uint8_t space[16384];
    parley__arena_t a;
    parley__request_t *out = s_request_new();
    s_pb_t b, inner, filter;
    parley__arena_init(&a, space, sizeof(space));

    /* does not decode: MALFORMED, request_id 0 */
    out->request_id = 99;
    assert_int_equal(parley__request_decode("\xff\xff", 2, out, &a),
                     PARLEY_EMALFORMED);
    assert_int_equal(out->request_id, 0);
    assert_int_equal(out->op, PARLEY__OP_NONE);

    /* decodes but names no op: BADREQUEST, request_id kept */
    b.len = 0;
    s_pb_uint(&b, 1, 4242);
    assert_int_equal(parley__request_decode(b.p, b.len, out, &a),
                     PARLEY_EBADREQUEST);
    assert_int_equal(out->request_id, 4242);
    /* an op from a later protocol version (field 15) */
    s_pb_bytes(&b, 15, "", 0);
    assert_int_equal(parley__request_decode(b.p, b.len, out, &a),
                     PARLEY_EBADREQUEST);
    assert_int_equal(out->request_id, 4242);

    /* bad filters: not a slug, phase over 255, too many values */
    static const struct {
        unsigned field;
        const char *text;
        uint32_t phase;
    } bad[] = {
        { 1, "Gaza", 0 }, { 2, "-us", 0 }, { 2, "", 0 }, { 3, NULL, 256 }
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        filter.len = 0;
        if (bad[i].text != NULL) {
            s_pb_str(&filter, bad[i].field, bad[i].text);
        } else {
            s_pb_t packed = { .len = 0 };
            s_pb_varint(&packed, bad[i].phase);
            s_pb_bytes(&filter, 3, packed.p, packed.len);
        }
        for (int op = 3; op <= 4;
             op++) { /* replay (filter = 4), snapshot (1) */
            inner.len = 0;
            if (op == 3)
                s_pb_uint(&inner, 1, 5);
            s_pb_bytes(&inner, op == 3 ? 4 : 1, filter.p, filter.len);
            b.len = 0;
            s_pb_uint(&b, 1, 31337);
            s_pb_bytes(&b, (unsigned)op, inner.p, inner.len);
            out->request_id = 0;
            int rc = parley__request_decode(b.p, b.len, out, &a);
            if (rc != PARLEY_EBADREQUEST)
                fail_msg("bad filter %zu in op %d: got %d", i, op, rc);
            assert_int_equal(out->request_id, 31337);
            parley__arena_reset(&a);
        }
    }
    filter.len = 0;
    for (int i = 0; i <= PARLEY__FILTER_VALUES_MAX; i++)
        s_pb_str(&filter, 2, "us");
    inner.len = 0;
    s_pb_bytes(&inner, 1, filter.p, filter.len);
    b.len = 0;
    s_pb_uint(&b, 1, 5);
    s_pb_bytes(&b, 4, inner.p, inner.len);
    assert_int_equal(parley__request_decode(b.p, b.len, out, &a),
                     PARLEY_EBADREQUEST);
    /* ... while exactly the maximum is fine */
    filter.len = 0;
    for (int i = 0; i < PARLEY__FILTER_VALUES_MAX; i++)
        s_pb_str(&filter, 2, "us");
    inner.len = 0;
    s_pb_bytes(&inner, 1, filter.p, filter.len);
    b.len = 0;
    s_pb_uint(&b, 1, 5);
    s_pb_bytes(&b, 4, inner.p, inner.len);
    assert_int_equal(parley__request_decode(b.p, b.len, out, &a), 0);
    assert_int_equal(out->filter.filter.n_parties, PARLEY__FILTER_VALUES_MAX);

    parley__arena_reset(&a);
    free(out);
}

static void
test_filterbuf_set(void **state)
{
    (void)state;
    parley__filterbuf_t *fb = calloc(1, sizeof(*fb));
    assert_non_null(fb);
    char neg[16] = "gaza-ceasefire";
    const char *negs[] = { neg };
    const char *many[PARLEY__FILTER_VALUES_MAX + 1];
    uint32_t phases[PARLEY__FILTER_VALUES_MAX + 1];
    for (size_t i = 0; i <= PARLEY__FILTER_VALUES_MAX; i++) {
        many[i] = "us";
        phases[i] = (uint32_t)i;
    }
    parley_filter_t f = { .negotiations = negs, .n_negotiations = 1 };
    assert_int_equal(parley__filterbuf_set(fb, &f), 0);
    neg[0] = 'X'; /* the copy does not follow the caller's storage */
    assert_string_equal(fb->filter.negotiations[0], "gaza-ceasefire");
    assert_int_equal(fb->filter.n_parties, 0);

    f = (parley_filter_t){ .parties = many,
                           .n_parties = PARLEY__FILTER_VALUES_MAX,
                           .phases = phases,
                           .n_phases = PARLEY__FILTER_VALUES_MAX };
    assert_int_equal(parley__filterbuf_set(fb, &f), 0);
    assert_int_equal(fb->filter.n_parties, PARLEY__FILTER_VALUES_MAX);
    assert_int_equal(fb->filter.phases[63], 63);
    f.n_parties++;
    assert_int_equal(parley__filterbuf_set(fb, &f), PARLEY_EARG);
    f.n_parties--;
    f.n_phases++;
    assert_int_equal(parley__filterbuf_set(fb, &f), PARLEY_EARG);

    static const char *const bad_slug[] = { "us", "Egypt" };
    f = (parley_filter_t){ .parties = bad_slug, .n_parties = 2 };
    assert_int_equal(parley__filterbuf_set(fb, &f), PARLEY_EARG);
    f = (parley_filter_t){ .negotiations = bad_slug + 1, .n_negotiations = 1 };
    assert_int_equal(parley__filterbuf_set(fb, &f), PARLEY_EARG);
    static const uint32_t bad_phase[] = { 256 };
    f = (parley_filter_t){ .phases = bad_phase, .n_phases = 1 };
    assert_int_equal(parley__filterbuf_set(fb, &f), PARLEY_EARG);

    assert_int_equal(parley__filterbuf_set(fb, NULL), 0);
    assert_int_equal(fb->filter.n_negotiations + fb->filter.n_parties
                         + fb->filter.n_phases,
                     0);
    free(fb);
}

/* ----------------------------------------------------------- replies */

static void
s_reply_roundtrip(const parley__reply_t *r, parley__reply_t *out,
                  parley__arena_t *a, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    assert_int_equal(parley__reply_encode(r, buf, cap, &len), 0);
    assert_int_equal(parley__reply_decode(buf, len, out, a), 0);
    assert_true(out->request_id == r->request_id);
    assert_int_equal(out->type, r->type);
}

static void
test_reply_ack_reject_ping(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    uint8_t space[4096];
    parley__arena_t a;
    parley__reply_t r, out;
    parley__arena_init(&a, space, sizeof(space));

    memset(&r, 0, sizeof(r));
    r.request_id = 77;
    r.type = PARLEY__REPLY_ACK;
    r.seq = 1234567;
    r.duplicate = true;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.seq, 1234567);
    assert_true(out.duplicate);
    r.duplicate = false;
    r.seq = 1;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.seq, 1);
    assert_false(out.duplicate);

    /* every reject code travels with its message, first_seq and the
     * signer's last signer_seq */
    for (int code = PARLEY_ETOOLARGE; code >= PARLEY_ERATELIMITED; code--) {
        char msg[64];
        snprintf(msg, sizeof(msg), "rejected: %s", parley_error_name(code));
        memset(&r, 0, sizeof(r));
        r.request_id = (uint64_t)-code;
        r.type = PARLEY__REPLY_REJECT;
        r.code = code;
        r.message = msg;
        r.first_seq = code == PARLEY_ETRUNCATED ? 500 : 0;
        r.signer_seq = code == PARLEY_EREPLAY ? 1700000000000001ull : 0;
        s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
        assert_int_equal(out.code, code);
        assert_string_equal(out.message, msg);
        assert_int_equal(out.first_seq, r.first_seq);
        assert_int_equal(out.signer_seq, r.signer_seq);
        parley__arena_reset(&a);
    }
    /* a NULL message goes out as "" */
    memset(&r, 0, sizeof(r));
    r.type = PARLEY__REPLY_REJECT;
    r.code = PARLEY_EREPLAY;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.code, PARLEY_EREPLAY);
    assert_string_equal(out.message, "");

    memset(&r, 0, sizeof(r));
    r.request_id = 5;
    r.type = PARLEY__REPLY_PING;
    r.feed = "tcp://127.0.0.1:7711";
    r.version = PARLEY_VERSION;
    r.seq = 99;
    r.first_seq = 3;
    for (size_t i = 0; i < sizeof(r.daemon_id); i++)
        r.daemon_id[i] = (uint8_t)(i * 7);
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_string_equal(out.feed, "tcp://127.0.0.1:7711");
    assert_string_equal(out.version, PARLEY_VERSION);
    assert_int_equal(out.seq, 99);
    assert_int_equal(out.first_seq, 3);
    assert_memory_equal(out.daemon_id, r.daemon_id, sizeof(r.daemon_id));

    /* no result, NONE type, garbage, small buffer */
    size_t len = 0;
    s_pb_t b = { .len = 0 };
    s_pb_uint(&b, 1, 5);
    assert_int_equal(parley__reply_decode(b.p, b.len, &out, &a),
                     PARLEY_EMALFORMED);
    assert_int_equal(parley__reply_decode("\xff\xff", 2, &out, &a),
                     PARLEY_EMALFORMED);
    r.type = PARLEY__REPLY_NONE;
    assert_int_equal(parley__reply_encode(&r, buf, sizeof(buf), &len),
                     PARLEY_EARG);
    r.type = PARLEY__REPLY_PING;
    assert_int_equal(parley__reply_encode(&r, buf, 10, &len), -ENOBUFS);
    parley__arena_reset(&a);
}

static void
test_reply_replay_snapshot_stats(void **state)
{
    (void)state;
    static uint8_t buf[65536], d2[3000];
    uint8_t space[16384];
    parley__arena_t a;
    parley__reply_t r, out;
    memset(d2, 0xd2, sizeof(d2));
    parley__bytes_t items[3] = {
        { (const uint8_t *)"first", 5 },
        { d2, sizeof(d2) },
        { (const uint8_t *)"\x00\x01\x02", 3 },
    };
    parley__arena_init(&a, space, sizeof(space));

    memset(&r, 0, sizeof(r));
    r.request_id = 11;
    r.type = PARLEY__REPLY_REPLAY;
    r.deliveries = items;
    r.n_deliveries = 3;
    r.next_seq = 40;
    r.head_seq = 90;
    r.done = true;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.n_deliveries, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(out.deliveries[i].len, items[i].len);
        assert_memory_equal(out.deliveries[i].data, items[i].data,
                            items[i].len);
    }
    assert_int_equal(out.next_seq, 40);
    assert_int_equal(out.head_seq, 90);
    assert_true(out.done);
    parley__arena_reset(&a);

    /* an empty, unfinished replay */
    r.n_deliveries = 0;
    r.deliveries = NULL;
    r.done = false;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.n_deliveries, 0);
    assert_false(out.done);
    assert_int_equal(out.next_seq, 40);

    /* the per-item overhead bound holds */
    size_t empty_len = 0, full_len = 0;
    assert_int_equal(parley__reply_encode(&r, buf, sizeof(buf), &empty_len), 0);
    r.deliveries = items;
    r.n_deliveries = 3;
    assert_int_equal(parley__reply_encode(&r, buf, sizeof(buf), &full_len), 0);
    size_t bound = empty_len;
    for (size_t i = 0; i < 3; i++)
        bound += items[i].len + parley__reply_item_overhead(items[i].len);
    assert_true(full_len <= bound);
    assert_int_equal(parley__reply_encode(&r, buf, full_len - 1, &empty_len),
                     -ENOBUFS);

    memset(&r, 0, sizeof(r));
    r.request_id = 12;
    r.type = PARLEY__REPLY_SNAPSHOT;
    r.deliveries = items;
    r.n_deliveries = 2;
    r.seq = 90;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.n_deliveries, 2);
    assert_int_equal(out.seq, 90);
    assert_memory_equal(out.deliveries[0].data, "first", 5);
    assert_int_equal(out.deliveries[1].len, sizeof(d2));
    parley__arena_reset(&a);

    parley__stat_t stats[] = {
        { "published", 10 },
        { "rejected_bad_signature", 2 },
        { "subscribers", 0 },
        { "bytes_stored", UINT64_MAX },
    };
    memset(&r, 0, sizeof(r));
    r.request_id = 13;
    r.type = PARLEY__REPLY_STATS;
    r.stats = stats;
    r.n_stats = 4;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.n_stats, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(out.stats[i].name, stats[i].name);
        assert_true(out.stats[i].value == stats[i].value);
    }
    parley__arena_reset(&a);
    r.n_stats = 0;
    s_reply_roundtrip(&r, &out, &a, buf, sizeof(buf));
    assert_int_equal(out.n_stats, 0);
    parley__arena_reset(&a);
}

/* ------------------------------------------------------ reject codes */

static void
test_reject_code_mapping(void **state)
{
    (void)state;
    /* the wire enum numbers the reject codes 1..13 in PARLEY_E* order */
    for (int code = PARLEY_ETOOLARGE; code >= PARLEY_ERATELIMITED; code--) {
        int wire = parley__reject_to_wire(code);
        if (wire != -code - 1000)
            fail_msg("%s -> wire %d, want %d", parley_error_name(code), wire,
                     -code - 1000);
        assert_int_equal(parley__reject_from_wire(wire), code);
    }
    for (int wire = 1; wire <= 13; wire++)
        assert_int_equal(parley__reject_to_wire(parley__reject_from_wire(wire)),
                         wire);
    /* REJECT_UNSPECIFIED and unknown wire codes never read as success */
    static const int unknown[] = { 0, 14, 100, -1, -1004 };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        int code = parley__reject_from_wire(unknown[i]);
        if (code >= 0)
            fail_msg("wire %d -> %d", unknown[i], code);
    }
}

/* ------------------------------------------------------------- arena */

static void
test_arena_spills_to_heap(void **state)
{
    (void)state;
    static uint8_t buf[PARLEY_ENVELOPE_MAX];
    _Alignas(16) uint8_t small[64];
    parley_update_t u, out;
    parley__arena_t a;
    size_t len = 0;
    s_full(&u);
    assert_int_equal(parley__update_encode(&u, buf, sizeof(buf), &len), 0);

    /* 64 bytes cannot hold a full update: the rest comes from the heap */
    parley__arena_init(&a, small, sizeof(small));
    assert_int_equal(parley__update_decode(buf, len, &out, &a), 0);
    assert_non_null(a.spill);
    assert_true(a.used <= sizeof(small));
    assert_memory_equal(&out, &u, sizeof(u));
    parley__arena_reset(&a);
    assert_null(a.spill);
    assert_int_equal(a.used, 0);

    /* the arena is reusable after reset, several times */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(parley__update_decode(buf, len, &out, &a), 0);
        assert_memory_equal(&out, &u, sizeof(u));
        parley__arena_reset(&a);
    }

    /* no buffer at all: everything spills */
    parley__arena_init(&a, NULL, 1000);
    assert_int_equal(a.cap, 0);
    assert_int_equal(parley__update_decode(buf, len, &out, &a), 0);
    assert_non_null(a.spill);
    assert_memory_equal(&out, &u, sizeof(u));
    parley__arena_reset(&a);
    assert_null(a.spill);

    /* a buffer that starts off 16-byte alignment still hands out aligned
     * memory (UBSan checks the accesses protobuf-c makes) */
    _Alignas(16) uint8_t odd[16384 + 1];
    parley__arena_init(&a, odd + 1, sizeof(odd) - 1);
    assert_int_equal(parley__update_decode(buf, len, &out, &a), 0);
    assert_memory_equal(&out, &u, sizeof(u));
    parley__arena_reset(&a);

    /* a large buffer needs no heap for the same update */
    _Alignas(16) uint8_t big[32768];
    parley__arena_init(&a, big, sizeof(big));
    assert_int_equal(parley__update_decode(buf, len, &out, &a), 0);
    assert_null(a.spill);
    assert_true(a.used > 0 && a.used <= sizeof(big));
    parley__arena_reset(&a);

    /* a reply decode spills too (its delivery list is allocated after
     * protobuf-c's own allocations) */
    static uint8_t rbuf[8192];
    parley__bytes_t items[20];
    for (size_t i = 0; i < 20; i++) {
        items[i].data = (const uint8_t *)"delivery bytes";
        items[i].len = 14;
    }
    parley__reply_t r = { .request_id = 1,
                          .type = PARLEY__REPLY_SNAPSHOT,
                          .deliveries = items,
                          .n_deliveries = 20,
                          .seq = 20 },
                    ro;
    assert_int_equal(parley__reply_encode(&r, rbuf, sizeof(rbuf), &len), 0);
    parley__arena_init(&a, small, sizeof(small));
    assert_int_equal(parley__reply_decode(rbuf, len, &ro, &a), 0);
    assert_non_null(a.spill);
    assert_int_equal(ro.n_deliveries, 20);
    for (size_t i = 0; i < 20; i++)
        assert_memory_equal(ro.deliveries[i].data, "delivery bytes", 14);
    parley__arena_reset(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_roundtrip_full),
        cmocka_unit_test(test_update_encode_is_canonical),
        cmocka_unit_test(test_update_encode_enobufs),
        cmocka_unit_test(test_update_decode_bad_input),
        cmocka_unit_test(test_update_decode_noncanonical),
        cmocka_unit_test(test_update_decode_rejects_same_size_variants),
        cmocka_unit_test(test_update_decode_rejects_unknown_field),
        cmocka_unit_test(test_envelope_roundtrip),
        cmocka_unit_test(test_envelope_bad_sizes),
        cmocka_unit_test(test_delivery_raw_roundtrip),
        cmocka_unit_test(test_heartbeat_roundtrip),
        cmocka_unit_test(test_request_every_op),
        cmocka_unit_test(test_request_decode_errors),
        cmocka_unit_test(test_filterbuf_set),
        cmocka_unit_test(test_reply_ack_reject_ping),
        cmocka_unit_test(test_reply_replay_snapshot_stats),
        cmocka_unit_test(test_reject_code_mapping),
        cmocka_unit_test(test_arena_spills_to_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
