/*
 * test_index.c - parleyd's indexes: signer seqs, dedupe by (signer,
 * signer_seq), the latest-state rules for updates, corrections and
 * retractions, and the scan of logged records, fast and slow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../fuzz/facts_check.h"
#include "codec.h"
#include "index.h"
#include "parley.h"

#include <sodium.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t s_signer_a[PARLEY_PUBLICKEY_BYTES] = { 0xAA };
static const uint8_t s_signer_b[PARLEY_PUBLICKEY_BYTES] = { 0xBB };

/* An update in negotiation "gaza-ceasefire" at phase for parties. */
static parley_update_t *
s_update(parley_kind_t kind, uint32_t phase, uint64_t signer_seq,
         const char *parties, const uint64_t *refs, size_t n_refs)
{
    static parley_update_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.negotiation, "gaza-ceasefire");
    char list[256];
    snprintf(list, sizeof(list), "%s", parties);
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        strcpy(u.parties[u.n_parties++], p);
    u.phase = phase;
    u.status = PARLEY_STATUS_AGREED_IN_PRINCIPLE;
    u.kind = kind;
    for (size_t i = 0; i < n_refs; i++)
        u.references[u.n_references++] = refs[i];
    strcpy(u.headline, "headline");
    u.issued_at = 1700000000000;
    u.signer_seq = signer_seq;
    return &u;
}

static void
s_add(pd_index_t *idx, uint64_t seq, const uint8_t *signer,
      const parley_update_t *u)
{
    assert_int_equal(pd_index_reserve(idx, signer, u->n_parties), 0);
    pd_index_add(idx, seq, signer, u);
}

/* Assert the latest-state seqs equal want[0..n). */
static void
s_expect_latest(pd_index_t *idx, const uint64_t *want, size_t n)
{
    uint64_t *got = NULL;
    int count = pd_index_latest_seqs(idx, &got);
    assert_int_equal(count, (int)n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
    free(got);
}

static void
test_latest_updates(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_expect_latest(idx, NULL, 0);

    /* 1: israel+hamas phase 1 */
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 10,
                                       "israel,hamas", NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 1 }, 1);
    /* 2: hamas phase 1 supersedes 1 for hamas only */
    s_add(idx, 2, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 11, "hamas",
                                       NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 1, 2 }, 2);
    /* 3: another phase is another key */
    s_add(idx, 3, s_signer_b, s_update(PARLEY_KIND_UPDATE, 2, 5, "hamas",
                                       NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 1, 2, 3 }, 3);
    /* 4: israel phase 1 again: 1 no longer holds any key */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 12, "israel",
                                       NULL, 0));
    s_expect_latest(idx, (uint64_t[]){ 2, 3, 4 }, 3);

    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.latest, 3);   /* israel/1, hamas/1, hamas/2 */
    assert_int_equal(st.signers, 2);
    assert_int_equal(st.dedupe, 4);
    pd_index_destroy(&idx);
    assert_null(idx);
}

static void
test_latest_correction(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 1,
                                       "israel,hamas", NULL, 0));
    s_add(idx, 2, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 2, "hamas",
                                       NULL, 0));
    /* 3 corrects 1 (which still holds israel/1) with a different key set:
     * israel/1 loses 1, and 3 takes egypt/1. */
    s_add(idx, 3, s_signer_a, s_update(PARLEY_KIND_CORRECTION, 1, 3, "egypt",
                                       (uint64_t[]){ 1 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 2, 3 }, 2);
    /* A correction of a seq that holds no key anymore only sets its own. */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_CORRECTION, 1, 4,
                                       "hamas", (uint64_t[]){ 1 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 3, 4 }, 2);
    /* Correcting several at once. */
    s_add(idx, 5, s_signer_a, s_update(PARLEY_KIND_CORRECTION, 1, 5, "qatar",
                                       (uint64_t[]){ 3, 4 }, 2));
    s_expect_latest(idx, (uint64_t[]){ 5 }, 1);
    pd_index_destroy(&idx);
}

static void
test_latest_retraction(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 1, "hamas",
                                       NULL, 0));
    s_add(idx, 2, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 2,
                                       "hamas,israel", NULL, 0));
    s_add(idx, 3, s_signer_a, s_update(PARLEY_KIND_UPDATE, 2, 3, "us", NULL,
                                       0));
    s_expect_latest(idx, (uint64_t[]){ 2, 3 }, 2);
    /* Retracting 2 empties hamas/1 and israel/1; 1 is NOT restored. */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_RETRACTION, 1, 4, "hamas",
                                       (uint64_t[]){ 2 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 3 }, 1);
    /* Retracting something that holds no key changes nothing; the
     * retraction itself never becomes state. */
    s_add(idx, 5, s_signer_a, s_update(PARLEY_KIND_RETRACTION, 2, 5, "us",
                                       (uint64_t[]){ 1 }, 1));
    s_expect_latest(idx, (uint64_t[]){ 3 }, 1);
    s_add(idx, 6, s_signer_a, s_update(PARLEY_KIND_RETRACTION, 2, 6, "us",
                                       (uint64_t[]){ 3 }, 1));
    s_expect_latest(idx, NULL, 0);
    pd_index_destroy(&idx);
}

static void
test_signers_and_dedupe(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    uint64_t last = 0;
    assert_false(pd_index_signer_last(idx, s_signer_a, &last));
    s_add(idx, 1, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 100, "hamas",
                                       NULL, 0));
    s_add(idx, 2, s_signer_b, s_update(PARLEY_KIND_UPDATE, 1, 7, "hamas",
                                       NULL, 0));
    s_add(idx, 3, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 200, "hamas",
                                       NULL, 0));
    assert_true(pd_index_signer_last(idx, s_signer_a, &last));
    assert_int_equal(last, 200);
    assert_true(pd_index_signer_last(idx, s_signer_b, &last));
    assert_int_equal(last, 7);
    /* A lower signer_seq (as from the log of an older run) never lowers it */
    s_add(idx, 4, s_signer_a, s_update(PARLEY_KIND_UPDATE, 1, 150, "hamas",
                                       NULL, 0));
    assert_true(pd_index_signer_last(idx, s_signer_a, &last));
    assert_int_equal(last, 200);

    /* Dedupe answers the seq of (signer, signer_seq), in or out of order. */
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 100), 1);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_b, 7), 2);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 200), 3);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 150), 4);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 7), 0);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_b, 100), 0);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 201), 0);
    static const uint8_t other[PARLEY_PUBLICKEY_BYTES] = { 0xCC };
    assert_int_equal(pd_index_dedupe_lookup(idx, other, 100), 0);
    assert_false(pd_index_signer_last(idx, other, &last));
    /* Reserving for a signer does not make it known. */
    assert_int_equal(pd_index_reserve(idx, other, 1), 0);
    assert_false(pd_index_signer_last(idx, other, &last));
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.signers, 2);
    assert_int_equal(st.dedupe, 4);

    /* Retention dropped seqs 1-2: their dedupe and state entries go. */
    pd_index_forget_before(idx, 3);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 100), 0);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_b, 7), 0);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 200), 3);
    assert_int_equal(pd_index_dedupe_lookup(idx, s_signer_a, 150), 4);
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.dedupe, 2);
    s_expect_latest(idx, (uint64_t[]){ 4 }, 1);
    pd_index_forget_before(idx, 5);
    s_expect_latest(idx, NULL, 0);
    assert_true(pd_index_signer_last(idx, s_signer_b, &last)); /* kept */
    pd_index_destroy(&idx);
}

/* The pd_store_open() callback, on real signed envelopes and on junk. */
static void
test_scan(void **state)
{
    (void)state;
    uint8_t seed[32];
    memset(seed, 7, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    assert_non_null(key);
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    parley_key_public(key, pk);

    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;
    parley_update_t *u = s_update(PARLEY_KIND_UPDATE, 3, 42, "egypt,qatar",
                                  NULL, 0);
    assert_int_equal(parley_sign(key, u, env, sizeof(env), &len), 0);
    assert_int_equal(pd_index_scan(idx, 1, 0, env, len), 0);

    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0x01, 0x02 };
    assert_int_equal(pd_index_scan(idx, 2, 0, junk, sizeof(junk)), 0);

    uint64_t last = 0;
    assert_true(pd_index_signer_last(idx, pk, &last));
    assert_int_equal(last, 42);
    assert_int_equal(pd_index_dedupe_lookup(idx, pk, 42), 1);
    s_expect_latest(idx, (uint64_t[]){ 1 }, 1);
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.scanned, 1);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.latest, 2);
    pd_index_destroy(&idx);
    parley_key_destroy(&key);
}

/* ========================================================== more indexes */

static void
test_dedupe_many(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    enum { N = 5000 };
    static uint64_t sseq[2][N];
    uint64_t next[2] = { 1000, 7 };
    for (uint64_t seq = 1; seq <= 2 * N; seq++) {
        int who = (seq % 3) == 0 ? 1 : 0; /* runs of one signer, then the other */
        size_t k = 0;
        while (k < N && sseq[who][k] != 0)
            k++;
        if (k == N)
            who = 1 - who;
        for (k = 0; sseq[who][k] != 0; k++)
            ;
        next[who] += 1 + seq % 5; /* rising with gaps */
        sseq[who][k] = next[who] * 16 + (uint64_t)who; /* kept distinct */
        const uint8_t *signer = who ? s_signer_b : s_signer_a;
        s_add(idx, seq, signer, s_update(PARLEY_KIND_UPDATE, 1, sseq[who][k],
                                         who ? "hamas" : "israel", NULL, 0));
    }
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.dedupe, 2 * N);
    /* Look every pair up again; rebuild which seq each one got. */
    for (int who = 0; who < 2; who++) {
        const uint8_t *signer = who ? s_signer_b : s_signer_a;
        uint64_t prev = 0;
        for (size_t k = 0; k < N; k++) {
            uint64_t seq = pd_index_dedupe_lookup(idx, signer, sseq[who][k]);
            assert_true(seq > prev); /* found, in accept order */
            prev = seq;
            assert_int_equal(pd_index_dedupe_lookup(idx, signer,
                                                    sseq[who][k] + 1), 0);
        }
        uint64_t last = 0;
        assert_true(pd_index_signer_last(idx, signer, &last));
        assert_int_equal(last, sseq[who][N - 1]);
    }
    pd_index_forget_before(idx, N + 1);
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.dedupe, N);
    for (int who = 0; who < 2; who++) {
        const uint8_t *signer = who ? s_signer_b : s_signer_a;
        for (size_t k = 0; k < N; k++) {
            uint64_t seq = pd_index_dedupe_lookup(idx, signer, sseq[who][k]);
            assert_true(seq == 0 || seq > N);
        }
    }
    pd_index_forget_before(idx, 2 * N + 1);
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.dedupe, 0);
    assert_int_equal(st.signers, 2); /* their last seqs stay */
    pd_index_destroy(&idx);
}

/* --- the latest state against a model ----------------------------------- */

#define M_NEG 5
#define M_PARTY 7
#define M_PHASE 4
#define M_STEPS 4000

typedef struct {
    uint64_t state[M_NEG][M_PARTY][M_PHASE]; /* seq, 0 = none */
    uint32_t rng;
} s_model_t;

static uint32_t
s_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static const char *s_negs[M_NEG] = { "gaza-ceasefire", "a", "sudan-jeddah-talks",
                                     "a-very-long-negotiation-slug-32c",
                                     "b" };
static const char *s_parties[M_PARTY] = { "israel", "hamas", "egypt", "qatar",
                                          "us", "x",
                                          "thirty-two-character-party-slug" };

/* Compare the index's latest seqs with the model's. */
static void
s_model_check(pd_index_t *idx, const s_model_t *m)
{
    uint64_t want[M_NEG * M_PARTY * M_PHASE];
    size_t n = 0;
    for (int a = 0; a < M_NEG; a++)
        for (int b = 0; b < M_PARTY; b++)
            for (int c = 0; c < M_PHASE; c++)
                if (m->state[a][b][c] != 0)
                    want[n++] = m->state[a][b][c];
    /* sort, unique */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && want[j - 1] > want[j]; j--) {
            uint64_t t = want[j];
            want[j] = want[j - 1];
            want[j - 1] = t;
        }
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || want[u - 1] != want[i])
            want[u++] = want[i];
    s_expect_latest(idx, want, u);
}

/*
 * Random updates, corrections and retractions over a small key space,
 * added through pd_index_add() to one index and as signed bytes through
 * pd_index_scan() to another; both must follow the model.
 */
static void
test_latest_model(void **state)
{
    (void)state;
    uint8_t seed[32];
    memset(seed, 3, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    assert_non_null(key);
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    parley_key_public(key, pk);
    pd_index_t *idx = pd_index_new(), *scanned = pd_index_new();
    assert_non_null(idx);
    assert_non_null(scanned);
    static s_model_t m;
    memset(&m, 0, sizeof(m));
    m.rng = 12345;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    parley_update_t *u = malloc(sizeof(*u));
    assert_non_null(u);
    for (uint64_t seq = 1; seq <= M_STEPS; seq++) {
        uint32_t r = s_rand(&m.rng);
        int a = (int)(r % M_NEG);
        int c = (int)((r >> 4) % M_PHASE);
        uint32_t kindr = (r >> 8) % 20;
        memset(u, 0, sizeof(*u));
        strcpy(u->negotiation, s_negs[a]);
        u->phase = (uint32_t)c * 85; /* 0, 85, 170, 255 */
        u->status = PARLEY_STATUS_PROPOSED;
        u->kind = kindr < 16 ? PARLEY_KIND_UPDATE
                  : kindr < 18 ? PARLEY_KIND_CORRECTION
                               : PARLEY_KIND_RETRACTION;
        strcpy(u->headline, "h");
        u->issued_at = 1700000000000;
        u->signer_seq = seq;
        bool used[M_PARTY] = { false };
        size_t np = 1 + (r >> 13) % 3;
        for (size_t i = 0; i < np; i++) {
            int b = (int)(s_rand(&m.rng) % M_PARTY);
            if (used[b])
                continue;
            used[b] = true;
            strcpy(u->parties[u->n_parties++], s_parties[b]);
        }
        if (u->kind != PARLEY_KIND_UPDATE) {
            size_t nr = 1 + s_rand(&m.rng) % 3;
            for (size_t i = 0; i < nr; i++)
                u->references[u->n_references++] =
                    1 + s_rand(&m.rng) % seq;
        }
        /* The model. */
        if (u->kind != PARLEY_KIND_UPDATE)
            for (int x = 0; x < M_NEG; x++)
                for (int y = 0; y < M_PARTY; y++)
                    for (int z = 0; z < M_PHASE; z++)
                        for (size_t i = 0; i < u->n_references; i++)
                            if (m.state[x][y][z] == u->references[i])
                                m.state[x][y][z] = 0;
        if (u->kind != PARLEY_KIND_RETRACTION)
            for (int b = 0; b < M_PARTY; b++)
                if (used[b])
                    m.state[a][b][c] = seq;
        /* The two indexes. */
        s_add(idx, seq, pk, u);
        size_t len;
        assert_int_equal(parley_sign(key, u, env, sizeof(env), &len), 0);
        assert_int_equal(pd_index_scan(scanned, seq, 0, env, len), 0);
        if (seq % 97 == 0 || seq == M_STEPS) {
            s_model_check(idx, &m);
            s_model_check(scanned, &m);
        }
    }
    pd_index_stats_t st;
    pd_index_get_stats(scanned, &st);
    assert_int_equal(st.scanned, M_STEPS);
    assert_int_equal(st.skipped, 0);
    /* Retention: keys whose state is below 3000 go. */
    pd_index_forget_before(idx, 3000);
    for (int x = 0; x < M_NEG; x++)
        for (int y = 0; y < M_PARTY; y++)
            for (int z = 0; z < M_PHASE; z++)
                if (m.state[x][y][z] < 3000)
                    m.state[x][y][z] = 0;
    s_model_check(idx, &m);
    free(u);
    pd_index_destroy(&idx);
    pd_index_destroy(&scanned);
    parley_key_destroy(&key);
}

/* --- records the fast reader declines ------------------------------------ */

/*
 * Records the reader leaves to the full decoders are still indexed when
 * those accept them (fields in another order, an unknown status), and
 * skipped when they do not.
 */
static void
test_scan_slow_path(void **state)
{
    (void)state;
    parley_update_t *u = s_update(PARLEY_KIND_UPDATE, 2, 77, "egypt", NULL, 0);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = facts_raw_envelope(u, env, sizeof(env));
    /* SignedUpdate with signer, signature, then body: same message. */
    parley__arena_t arena;
    uint8_t scratch[16384];
    parley__envelope_t e;
    parley__arena_init(&arena, scratch, sizeof(scratch));
    assert_int_equal(parley__envelope_decode(env, len, &e, &arena), 0);
    uint8_t odd[PARLEY_ENVELOPE_MAX];
    size_t n = 0;
    odd[n++] = (2 << 3) | 2;
    odd[n++] = PARLEY_PUBLICKEY_BYTES;
    memcpy(odd + n, e.signer, PARLEY_PUBLICKEY_BYTES);
    n += PARLEY_PUBLICKEY_BYTES;
    odd[n++] = (3 << 3) | 2;
    odd[n++] = PARLEY_SIGNATURE_BYTES;
    memcpy(odd + n, e.signature, PARLEY_SIGNATURE_BYTES);
    n += PARLEY_SIGNATURE_BYTES;
    odd[n++] = (1 << 3) | 2;
    assert_true(e.body.len < 128);
    odd[n++] = (uint8_t)e.body.len;
    memcpy(odd + n, e.body.data, e.body.len);
    n += e.body.len;
    parley__arena_reset(&arena);

    bool ok, same;
    assert_int_equal(facts_both_ways(odd, n, &ok, &same), 1);
    assert_true(ok);

    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    assert_int_equal(pd_index_scan(idx, 1, 0, odd, n), 0);
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    memset(signer, 0x42, sizeof(signer));
    uint64_t last = 0;
    assert_true(pd_index_signer_last(idx, signer, &last));
    assert_int_equal(last, 77);
    assert_int_equal(pd_index_dedupe_lookup(idx, signer, 77), 1);
    s_expect_latest(idx, (uint64_t[]){ 1 }, 1);

    /* A status no version knows: the decoders have the last word. */
    u = s_update(PARLEY_KIND_UPDATE, 2, 78, "qatar", NULL, 0);
    u->status = (parley_status_t)40;
    len = facts_raw_envelope(u, env, sizeof(env));
    assert_int_equal(facts_both_ways(env, len, &ok, &same), 1);
    assert_int_equal(pd_index_scan(idx, 2, 0, env, len), 0);
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.scanned + st.skipped, 2);
    assert_int_equal(st.scanned, ok ? 2 : 1);

    /* A body that is not canonical (a padded varint) is skipped. */
    static const uint8_t padded_body[] = { 0x18, 0x81, 0x00 }; /* phase 1 */
    uint8_t sig[PARLEY_SIGNATURE_BYTES] = { 0 };
    assert_int_equal(parley__envelope_encode(padded_body, sizeof(padded_body),
                                             signer, sig, env, sizeof(env),
                                             &len), 0);
    assert_int_equal(facts_both_ways(env, len, &ok, &same), 1);
    assert_false(ok);
    assert_int_equal(pd_index_scan(idx, 3, 0, env, len), 0);
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.skipped, ok ? 0 : 1 + (st.scanned == 1));
    pd_index_destroy(&idx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_updates),
        cmocka_unit_test(test_latest_correction),
        cmocka_unit_test(test_latest_retraction),
        cmocka_unit_test(test_signers_and_dedupe),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_dedupe_many),
        cmocka_unit_test(test_latest_model),
        cmocka_unit_test(test_scan_slow_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
