/*
 * test_facts.c - the fast readers of the wire format (client/facts.c)
 * against the full decoders: every answer of parley__facts_read() is what
 * protobuf-c gives, on edge values and thousands of mutants; what the
 * decoders refuse is never read in place; parley__facts_of_update() and
 * the request_id peek.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../fuzz/facts_check.h"
#include "codec.h"
#include "facts.h"
#include "parley.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t
s_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/*
 * Read env both ways. Whenever parley__facts_read() answers, the full
 * decoders must accept the same bytes and give the same fields. Returns
 * the reader's answer; *full_ok says whether the decoders accepted.
 */
static int
s_both_ways(const uint8_t *env, size_t len, bool *full_ok)
{
    bool same;
    int fast = facts_both_ways(env, len, full_ok, &same);
    assert_true(fast == 0 || fast == 1);
    if (fast == 0)
        assert_true(*full_ok);
    assert_true(same);
    return fast;
}

static void
test_facts_read(void **state)
{
    (void)state;
    parley_update_t *u = calloc(1, sizeof(*u));
    assert_non_null(u);
    enum { CASES = 12, MUTATIONS = 3000 };
    uint32_t rng = 777;
    size_t fast_mutants = 0, slow_only = 0;
    for (int c = 0; c < CASES; c++) {
        memset(u, 0, sizeof(*u));
        /* Edge values of every field the reader checks. */
        strcpy(u->negotiation, c == 1 ? "" : c == 2 ? "n" :
               "negotiation-with-a-32-byte-slug!");
        u->n_parties = (size_t)(c == 3 ? 0 : c == 4 ? PARLEY_PARTIES_MAX
                                                    : 1 + c % 3);
        for (size_t i = 0; i < u->n_parties; i++)
            snprintf(u->parties[i], sizeof(u->parties[i]), "%s%zu",
                     c == 5 && i == 0 ? "" : "party-", i);
        if (c == 5)
            u->parties[0][0] = '\0'; /* an empty party is encoded too */
        u->phase = c == 6 ? 0 : c == 7 ? 70000 : c == 8 ? UINT32_MAX
                                                        : (uint32_t)c;
        u->status = c == 9 ? PARLEY_STATUS_UNSPECIFIED
                           : (parley_status_t)(1 + c % 12);
        u->kind = (parley_kind_t)(c % 3);
        u->n_references = c == 10 ? PARLEY_REFERENCES_MAX : (size_t)(c % 3);
        for (size_t i = 0; i < u->n_references; i++)
            u->references[i] = i == 0 ? 0 : (uint64_t)-1 / (i + 1);
        if (c != 11)
            strcpy(u->headline, "Talks scheduled");
        if (c % 2 == 0)
            memset(u->body, 'b', c == 4 ? PARLEY_BODY_MAX : 100);
        if (c % 4 == 1)
            strcpy(u->location, "cairo");
        u->scheduled_at = c == 7 ? -5 : c % 2 ? 1700000000000 : 0;
        u->issued_at = c == 3 ? 0 : 1700000000001;
        u->signer_seq = c == 8 ? UINT64_MAX : c == 2 ? 0 : 12345;
        u->expires_at = c == 9 ? INT64_MIN : 0;

        uint8_t env[2 * PARLEY_ENVELOPE_MAX];
        size_t len = facts_raw_envelope(u, env, sizeof(env));
        bool ok;
        /* The encoder's own output is always read in place. */
        assert_int_equal(s_both_ways(env, len, &ok), 0);

        uint8_t mut[2 * PARLEY_ENVELOPE_MAX + 8];
        for (int k = 0; k < MUTATIONS; k++) {
            size_t n = len;
            memcpy(mut, env, len);
            uint32_t r = s_rand(&rng);
            size_t at = s_rand(&rng) % len;
            switch (r % 6) {
            case 0: /* flip a bit */
                mut[at] ^= (uint8_t)(1u << ((r >> 8) % 8));
                break;
            case 1: /* set a byte */
                mut[at] = (uint8_t)(r >> 8);
                break;
            case 2: /* set a byte to an edge value */
                mut[at] = (const uint8_t[]){ 0, 1, 0x7f, 0x80, 0xff }[(r >> 8) % 5];
                break;
            case 3: /* cut */
                n = at;
                break;
            case 4: /* insert */
                memmove(mut + at + 1, mut + at, len - at);
                mut[at] = (uint8_t)(r >> 8);
                n = len + 1;
                break;
            default: /* delete */
                memmove(mut + at, mut + at + 1, len - at - 1);
                n = len - 1;
                break;
            }
            int fast = s_both_ways(mut, n, &ok);
            if (fast == 0 && memcmp(mut, env, len < n ? len : n) != 0)
                fast_mutants++;
            if (fast != 0 && ok)
                slow_only++;
        }
    }
    /* Mutations inside text and numbers stay readable in place, so the
     * comparison above did check fields that changed. */
    assert_true(fast_mutants > 1000);
    (void)slow_only;
    free(u);
}

/* Bodies the decoders refuse are never read in place either. */
static void
test_facts_read_refusals(void **state)
{
    (void)state;
    static uint8_t body[600];
    uint8_t env[1024];
    uint8_t signer[PARLEY_PUBLICKEY_BYTES] = { 1 };
    uint8_t sig[PARLEY_SIGNATURE_BYTES] = { 2 };
    /* A valid start (negotiation "n", party "p", headline "h") that each
     * case below extends or replaces. */
    static const uint8_t ok_body[] = { 0x0a, 1, 'n', 0x12, 1, 'p',
                                       0x3a, 1, 'h', 0x60, 5 };
    struct {
        const char *what;
        size_t n;
        uint8_t b[40];
    } cases[] = {
        { "empty negotiation written out", 2, { 0x0a, 0 } },
        { "empty headline written out", 5, { 0x12, 1, 'p', 0x3a, 0 } },
        { "zero phase written out", 5, { 0x12, 1, 'p', 0x18, 0 } },
        { "zero signer_seq written out", 2, { 0x60, 0 } },
        { "phase twice", 7, { 0x12, 1, 'p', 0x18, 1, 0x18, 2 } },
        { "fields out of order", 5, { 0x18, 1, 0x12, 1, 'p' } },
        { "parties apart", 8, { 0x12, 1, 'p', 0x18, 1, 0x12, 1, 'q' } },
        { "references not packed", 5, { 0x12, 1, 'p', 0x30, 5 } },
        { "empty packed references", 5, { 0x12, 1, 'p', 0x32, 0 } },
        { "padded varint in references", 7,
          { 0x12, 1, 'p', 0x32, 2, 0x85, 0x00 } },
        { "unknown field", 5, { 0x12, 1, 'p', 0x70, 1 } },
        { "NUL in a party", 5, { 0x12, 3, 'p', 0, 'q' } },
        { "phase over 32 bits", 9,
          { 0x12, 1, 'p', 0x18, 0x80, 0x80, 0x80, 0x80, 0x10 } },
        { "varint over 64 bits", 14,
          { 0x60, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            0x12, 1, 'p' } },
        { "length past the end", 3, { 0x12, 5, 'p' } },
        { "tag of two bytes", 4, { 0x80, 0x01, 0x01, 0x01 } },
        { "wrong wire type", 4, { 0x12, 1, 'p', 0x1a } },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        size_t blen = cases[k].n;
        memcpy(body, cases[k].b, blen);
        size_t len;
        assert_int_equal(parley__envelope_encode(body, blen, signer, sig, env,
                                                 sizeof(env), &len), 0);
        bool ok;
        int fast = s_both_ways(env, len, &ok);
        if (fast != 1 || ok)
            print_error("case \"%s\": fast %d, decoders %s\n", cases[k].what,
                        fast, ok ? "accept" : "refuse");
        assert_int_equal(fast, 1);
        assert_false(ok);
    }
    /* Lengths one over each limit. */
    struct {
        uint8_t tag;
        size_t max;
    } texts[] = { { 0x0a, PARLEY_SLUG_MAX }, { 0x12, PARLEY_SLUG_MAX },
                  { 0x3a, PARLEY_HEADLINE_MAX }, { 0x4a, PARLEY_LOCATION_MAX } };
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        for (size_t over = 0; over <= 1; over++) {
            size_t blen = 0, n = texts[k].max + over;
            if (texts[k].tag > 0x12) { /* after negotiation and party */
                memcpy(body, ok_body, 6);
                blen = 6;
            }
            body[blen++] = texts[k].tag;
            body[blen++] = (uint8_t)(n < 128 ? n : (n & 0x7f) | 0x80);
            if (n >= 128)
                body[blen++] = (uint8_t)(n >> 7);
            memset(body + blen, 'x', n);
            blen += n;
            size_t len;
            assert_int_equal(parley__envelope_encode(body, blen, signer, sig,
                                                     env, sizeof(env), &len),
                             0);
            bool ok;
            int fast = s_both_ways(env, len, &ok);
            assert_int_equal(ok, !over);
            assert_int_equal(fast, over ? 1 : 0);
        }
    }
    /* The valid start itself is read in place. */
    size_t len;
    assert_int_equal(parley__envelope_encode(ok_body, sizeof(ok_body), signer,
                                             sig, env, sizeof(env), &len), 0);
    bool ok;
    assert_int_equal(s_both_ways(env, len, &ok), 0);
    assert_true(ok);
}

/* The facts of a decoded update are those read from its signed bytes. */
static void
test_facts_of_update(void **state)
{
    (void)state;
    parley_update_t *u = calloc(1, sizeof(*u));
    assert_non_null(u);
    strcpy(u->negotiation, "gaza-ceasefire");
    u->n_parties = 2;
    strcpy(u->parties[0], "egypt");
    strcpy(u->parties[1], "qatar");
    u->phase = 2;
    u->status = PARLEY_STATUS_TALKS_SCHEDULED;
    u->kind = PARLEY_KIND_CORRECTION;
    u->n_references = 1;
    u->references[0] = 7;
    strcpy(u->headline, "Talks in Cairo on Tuesday");
    u->issued_at = 1700000000000;
    u->signer_seq = 99;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = facts_raw_envelope(u, env, sizeof(env));
    assert_true(len > 0);
    parley__facts_t read, of;
    assert_int_equal(parley__facts_read(env, len, &read), 0);
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    memset(signer, 0x42, sizeof(signer));
    parley__facts_of_update(&of, signer, u);
    assert_memory_equal(read.signer, of.signer, PARLEY_PUBLICKEY_BYTES);
    assert_int_equal(read.signer_seq, of.signer_seq);
    assert_int_equal(read.negotiation_len, of.negotiation_len);
    assert_memory_equal(read.negotiation, of.negotiation, of.negotiation_len);
    assert_int_equal(read.n_parties, of.n_parties);
    for (size_t i = 0; i < of.n_parties; i++) {
        assert_int_equal(read.party_lens[i], of.party_lens[i]);
        assert_memory_equal(read.parties[i], of.parties[i], of.party_lens[i]);
    }
    assert_int_equal(read.phase, of.phase);
    assert_int_equal(read.kind, of.kind);
    assert_int_equal(read.n_references, 1);
    assert_int_equal(of.references[0], 7);
    free(u);
}

/* The request_id of an encoded request, read without decoding it. */
static void
test_request_id(void **state)
{
    (void)state;
    static const uint64_t ids[] = { 1, 127, 128, 300, 1u << 31,
                                    UINT64_MAX / 3, UINT64_MAX };
    uint8_t buf[256];
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        parley__request_t *q = calloc(1, sizeof(*q));
        assert_non_null(q);
        q->request_id = ids[i];
        q->op = PARLEY__OP_STATS;
        size_t len;
        assert_int_equal(parley__request_encode(q, buf, sizeof(buf), &len), 0);
        assert_true(parley__facts_request_id(buf, len) == ids[i]);
        /* Cut inside the varint: no id. */
        assert_true(parley__facts_request_id(buf, 1) == 0);
        free(q);
    }
    static const uint8_t other_field[] = { 0x10, 0x05 };
    assert_true(parley__facts_request_id(other_field, 2) == 0);
    static const uint8_t endless[12] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    assert_true(parley__facts_request_id(endless, sizeof(endless)) == 0);
    assert_true(parley__facts_request_id(NULL, 0) == 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facts_read),
        cmocka_unit_test(test_facts_read_refusals),
        cmocka_unit_test(test_facts_of_update),
        cmocka_unit_test(test_request_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
