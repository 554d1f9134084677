/*
 * gw_util.h - helpers for the unit tests of parley-gateway's modules:
 * real signed deliveries made with the public API, and hand-made items.
 */
#ifndef PARLEY_TEST_GW_UTIL_H
#define PARLEY_TEST_GW_UTIL_H

#include "item.h"
#include "parley.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append a protobuf varint. */
static inline size_t
gwt_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/*
 * Sign an update (negotiation, parties "a,b", phase, kind, headline) with
 * the key of seed 0x61 and wrap it in a Delivery of seq; decode that into
 * a new delivery (verified against the key alone). Fails the test on
 * error. Free with parley_delivery_destroy().
 */
static inline parley_delivery_t *
gwt_delivery(uint64_t seq, const char *negotiation, const char *parties,
             uint32_t phase, parley_kind_t kind, const char *headline)
{
    uint8_t seed[32], env[PARLEY_ENVELOPE_MAX], del[PARLEY_ENVELOPE_MAX + 64];
    size_t env_len = 0, n = 0;
    char list[256];
    memset(seed, 0x61, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    parley_update_t *u = parley_update_new();
    assert_non_null(key);
    assert_non_null(u);
    assert_int_equal(parley_update_set_negotiation(u, negotiation), 0);
    snprintf(list, sizeof(list), "%s", parties);
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        assert_int_equal(parley_update_add_party(u, p), 0);
    assert_int_equal(parley_update_set_phase(u, phase), 0);
    assert_int_equal(parley_update_set_status(u, PARLEY_STATUS_PROPOSED), 0);
    assert_int_equal(parley_update_set_kind(u, kind), 0);
    if (kind != PARLEY_KIND_UPDATE)
        assert_int_equal(parley_update_add_reference(u, 1), 0);
    assert_int_equal(parley_update_set_headline(u, headline), 0);
    assert_int_equal(parley_update_set_issued_at(u, 1717000000000), 0);
    assert_int_equal(parley_update_set_signer_seq(u, 1000 + seq), 0);
    assert_int_equal(parley_sign(key, u, env, sizeof(env), &env_len), 0);
    /* Delivery: 1 seq, 2 received_at, 3 the SignedUpdate bytes. */
    del[n++] = 0x08;
    n += gwt_varint(del + n, seq);
    del[n++] = 0x10;
    n += gwt_varint(del + n, 1717000000123);
    del[n++] = 0x1a;
    n += gwt_varint(del + n, env_len);
    memcpy(del + n, env, env_len);
    n += env_len;
    parley_delivery_t *d = parley_delivery_new();
    assert_non_null(d);
    assert_int_equal(parley_delivery_decode(NULL, del, n, d), 0);
    parley_update_destroy(&u);
    parley_key_destroy(&key);
    return d;
}

/* The item of such a delivery (one reference). */
static inline gw_item_t *
gwt_item(uint64_t seq, const char *negotiation, const char *parties,
         uint32_t phase, parley_kind_t kind)
{
    char headline[64];
    snprintf(headline, sizeof(headline), "update %llu", (unsigned long long)seq);
    parley_delivery_t *d = gwt_delivery(seq, negotiation, parties, phase, kind,
                                        headline);
    gw_item_t *it = gw_item_update(d);
    assert_non_null(it);
    parley_delivery_destroy(&d);
    return it;
}

#endif
