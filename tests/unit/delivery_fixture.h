/*
 * delivery_fixture.h - real, signed deliveries for unit tests of what
 * consumes them (JSON, the tool's webhook bodies and state table).
 *
 * fx_delivery() signs an update with the fixed-seed key (32 bytes of
 * 0x11), wraps it in a Delivery with the given seq and received_at, and
 * decodes that as a subscriber would, so the result carries its envelope
 * like any delivery the library hands out. fx_delivery_bytes() stops
 * before the decoding: the Delivery's bytes, as the feed carries them.
 */
#ifndef PARLEY_DELIVERY_FIXTURE_H
#define PARLEY_DELIVERY_FIXTURE_H

#include "codec.h"
#include "parley.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What an update of the fixture says; NULL/0 fields take defaults. */
typedef struct fx_update {
    const char *negotiation;    /* default "gaza-ceasefire" */
    const char *parties;        /* comma list, default "hamas" */
    uint32_t phase;
    parley_status_t status;     /* default proposed */
    parley_kind_t kind;
    uint64_t ref;               /* a reference for a correction/retraction */
    const char *headline;       /* default "Headline" */
    const char *body;
    int64_t issued_at;          /* default 1724155200000 (2024-08-20T12:00Z) */
} fx_update_t;

/*
 * Encode the delivery of seq (received 5 ms after issued_at) for what f
 * says into del (cap bytes; PARLEY_ENVELOPE_MAX + 64 is enough), its
 * length in *len. Returns 0 or -1.
 */
static inline int
fx_delivery_bytes(uint64_t seq, const fx_update_t *f, uint8_t *del,
                  size_t cap, size_t *len)
{
    uint8_t seed[32], env[PARLEY_ENVELOPE_MAX];
    size_t env_len = 0;
    char parties[PARLEY_PARTIES_MAX * (PARLEY_SLUG_MAX + 1) + 1];
    int rc = -1;
    memset(seed, 0x11, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    parley_update_t *u = parley_update_new();
    int64_t issued = f->issued_at != 0 ? f->issued_at : 1724155200000;
    if (key == NULL || u == NULL)
        goto out;
    snprintf(parties, sizeof(parties), "%s",
             f->parties != NULL ? f->parties : "hamas");
    char *save = NULL;
    for (char *p = strtok_r(parties, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        if (parley_update_add_party(u, p) != 0)
            goto out;
    if (parley_update_set_negotiation(u, f->negotiation != NULL
                                             ? f->negotiation
                                             : "gaza-ceasefire")
            != 0
        || parley_update_set_phase(u, f->phase) != 0
        || parley_update_set_status(u, f->status != 0 ? f->status
                                                      : PARLEY_STATUS_PROPOSED)
               != 0
        || parley_update_set_kind(u, f->kind) != 0
        || (f->ref != 0 && parley_update_add_reference(u, f->ref) != 0)
        || parley_update_set_headline(u, f->headline != NULL ? f->headline
                                                             : "Headline")
               != 0
        || (f->body != NULL && parley_update_set_body(u, f->body) != 0)
        || parley_update_set_issued_at(u, issued) != 0
        || parley_update_set_signer_seq(u, 1000 + seq) != 0
        || parley_sign(key, u, env, sizeof(env), &env_len) != 0
        || parley__delivery_encode(seq, issued + 5, env, env_len, del, cap,
                                   len)
               != 0)
        goto out;
    rc = 0;
out:
    parley_update_destroy(&u);
    parley_key_destroy(&key);
    return rc;
}

/*
 * Make the delivery of seq (received 5 ms after issued_at) for what f
 * says. Returns it (free with parley_delivery_destroy()) or NULL.
 */
static inline parley_delivery_t *
fx_delivery(uint64_t seq, const fx_update_t *f)
{
    uint8_t del[PARLEY_ENVELOPE_MAX + 64];
    size_t del_len = 0;
    parley_delivery_t *d = NULL;
    if (fx_delivery_bytes(seq, f, del, sizeof(del), &del_len) != 0
        || (d = parley_delivery_new()) == NULL)
        return NULL;
    if (parley_delivery_decode(NULL, del, del_len, d) != 0)
        parley_delivery_destroy(&d);
    return d;
}

#endif /* PARLEY_DELIVERY_FIXTURE_H */
