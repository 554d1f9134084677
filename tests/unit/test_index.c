/*
 * test_index.c - parleyd's indexes: signer seqs, dedupe by (signer,
 * signer_seq), the current state of docs/protocol.md section 5 (updates,
 * corrections and retractions, falling back, chains, retention), and the
 * scan of logged records, fast and slow. The state is also checked
 * against a model written from the definition (withdrawal sets), over
 * random records, added and scanned.
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
    assert_int_equal(pd_index_reserve(idx, signer, u->n_parties,
                                      u->n_references),
                     0);
    pd_index_add(idx, seq, signer, u);
}

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Assert the seqs holding the state, each once, ascending, are want[0..n). */
static void
s_expect_latest(pd_index_t *idx, const uint64_t *want, size_t n)
{
    pd_entry_t *got = NULL;
    int count = pd_index_latest(idx, NULL, NULL, &got);
    assert_true(count >= 0);
    uint64_t *seqs = calloc((size_t)count + 1, sizeof(*seqs));
    assert_non_null(seqs);
    for (int i = 0; i < count; i++)
        seqs[i] = got[i].seq;
    qsort(seqs, (size_t)count, sizeof(*seqs), s_cmp_u64);
    size_t u = 0;
    for (int i = 0; i < count; i++)
        if (u == 0 || seqs[u - 1] != seqs[i])
            seqs[u++] = seqs[i];
    assert_int_equal(u, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seqs[i], want[i]);
    free(seqs);
    free(got);
}

/* The entry asked for by s_state(). */
typedef struct {
    const char *neg, *party;
    uint32_t phase;
} s_key_t;

static bool
s_is_key(const pd_entry_t *e, void *ctx)
{
    const s_key_t *k = ctx;
    return strcmp(e->negotiation, k->neg) == 0
           && strcmp(e->party, k->party) == 0 && e->phase == k->phase;
}

/* The seq holding (neg, party, phase), 0 if it has no state. */
static uint64_t
s_state_of(pd_index_t *idx, const char *neg, const char *party,
           uint32_t phase)
{
    s_key_t k = { neg, party, phase };
    pd_entry_t *got = NULL;
    int n = pd_index_latest(idx, s_is_key, &k, &got);
    assert_true(n == 0 || n == 1);
    uint64_t seq = n == 1 ? got[0].seq : 0;
    free(got);
    return seq;
}

/* ... of gaza-ceasefire, the negotiation of s_update(). */
static uint64_t
s_state(pd_index_t *idx, const char *party, uint32_t phase)
{
    return s_state_of(idx, "gaza-ceasefire", party, phase);
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

/* Shorthands for the state tests: signer a, signer_seq = seq. */
static void
s_up(pd_index_t *idx, uint64_t seq, uint32_t phase, const char *parties)
{
    s_add(idx, seq, s_signer_a,
          s_update(PARLEY_KIND_UPDATE, phase, seq, parties, NULL, 0));
}

static void
s_corr(pd_index_t *idx, uint64_t seq, uint32_t phase, const char *parties,
       const uint64_t *refs, size_t n)
{
    s_add(idx, seq, s_signer_a,
          s_update(PARLEY_KIND_CORRECTION, phase, seq, parties, refs, n));
}

static void
s_retr(pd_index_t *idx, uint64_t seq, const uint64_t *refs, size_t n)
{
    s_add(idx, seq, s_signer_a,
          s_update(PARLEY_KIND_RETRACTION, 1, seq, "us", refs, n));
}

/*
 * The example of the issue: U1 names israel and hamas (phase 1), U2
 * israel alone; U2 is retracted: israel falls back to U1, which holds
 * both entries again.
 */
static void
test_state_u1_u2(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_up(idx, 1, 1, "israel,hamas");
    s_up(idx, 2, 1, "israel");
    assert_int_equal(s_state(idx, "israel", 1), 2);
    assert_int_equal(s_state(idx, "hamas", 1), 1);
    s_retr(idx, 3, (uint64_t[]){ 2 }, 1);
    assert_int_equal(s_state(idx, "israel", 1), 1);
    assert_int_equal(s_state(idx, "hamas", 1), 1);
    s_expect_latest(idx, (uint64_t[]){ 1 }, 1);
    /* The retraction holds no entry of its own (it names us). */
    assert_int_equal(s_state(idx, "us", 1), 0);
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.latest, 2);
    assert_int_equal(st.withdrawn, 1);
    assert_int_equal(st.named, 1);
    assert_int_equal(st.records, 3);
    pd_index_destroy(&idx);
}

/*
 * A correction withdraws what it names from every entry it held, and
 * holds its own entries, which may be others (parties, phase).
 */
static void
test_state_correction(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_up(idx, 1, 1, "israel,hamas");
    s_up(idx, 2, 1, "israel,hamas");
    /* 3 corrects 2 naming egypt on phase 2: israel and hamas fall back to
     * 1; egypt/2 is 3's. */
    s_corr(idx, 3, 2, "egypt", (uint64_t[]){ 2 }, 1);
    assert_int_equal(s_state(idx, "israel", 1), 1);
    assert_int_equal(s_state(idx, "hamas", 1), 1);
    assert_int_equal(s_state(idx, "egypt", 2), 3);
    /* 4 corrects 1, which is not current anywhere... */
    s_up(idx, 4, 1, "hamas");
    s_corr(idx, 5, 1, "qatar", (uint64_t[]){ 1 }, 1);
    assert_int_equal(s_state(idx, "israel", 1), 0); /* 2 and 1 withdrawn */
    assert_int_equal(s_state(idx, "hamas", 1), 4);
    /* ... and when 4 goes, hamas does not fall back to 1 either. */
    s_retr(idx, 6, (uint64_t[]){ 4 }, 1);
    assert_int_equal(s_state(idx, "hamas", 1), 0);
    assert_int_equal(s_state(idx, "qatar", 1), 5);
    /* Several seqs at once, and seqs that name nothing: itself, later
     * seqs, seqs never held. */
    s_up(idx, 7, 3, "us");
    s_up(idx, 8, 3, "us,egypt");
    s_corr(idx, 9, 3, "us", (uint64_t[]){ 7, 8, 9, 10, 8, 4000 }, 6);
    assert_int_equal(s_state(idx, "us", 3), 9);
    assert_int_equal(s_state(idx, "egypt", 3), 0);
    s_expect_latest(idx, (uint64_t[]){ 3, 5, 9 }, 3);
    pd_index_destroy(&idx);
}

/*
 * Chains: a retraction of a correction brings back what it replaced; a
 * correction of a correction carries on its withdrawals; the same for a
 * retraction of a retraction, and a correction of a retraction.
 */
static void
test_state_chains(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_up(idx, 1, 1, "israel");
    s_corr(idx, 2, 1, "israel", (uint64_t[]){ 1 }, 1);  /* 1 -> 2 */
    assert_int_equal(s_state(idx, "israel", 1), 2);
    s_retr(idx, 3, (uint64_t[]){ 2 }, 1);               /* undo 2: 1 back */
    assert_int_equal(s_state(idx, "israel", 1), 1);
    s_retr(idx, 4, (uint64_t[]){ 3 }, 1);               /* undo 3: 2 back */
    assert_int_equal(s_state(idx, "israel", 1), 2);
    s_corr(idx, 5, 1, "israel", (uint64_t[]){ 2 }, 1);  /* 2 -> 5, 1 stays out */
    assert_int_equal(s_state(idx, "israel", 1), 5);
    s_retr(idx, 6, (uint64_t[]){ 5 }, 1);               /* undo 5: 2 back */
    assert_int_equal(s_state(idx, "israel", 1), 2);
    s_retr(idx, 7, (uint64_t[]){ 4 }, 1);  /* undo 4: 3 holds again */
    /* 3 withdraws 2 again (5 is withdrawn by 6), and 2's withdrawal of 1
     * lapses with it (3 is a retraction: it carries nothing on): 1 is
     * back. */
    assert_int_equal(s_state(idx, "israel", 1), 1);

    /* A correction of a retraction: the retraction's withdrawals are
     * carried on, and the correction holds its entries. */
    s_up(idx, 10, 2, "hamas");
    s_up(idx, 11, 2, "hamas");
    s_retr(idx, 12, (uint64_t[]){ 11 }, 1);
    assert_int_equal(s_state(idx, "hamas", 2), 10);
    s_corr(idx, 13, 2, "egypt", (uint64_t[]){ 12 }, 1);
    assert_int_equal(s_state(idx, "hamas", 2), 10);
    assert_int_equal(s_state(idx, "egypt", 2), 13);
    /* Retracting that correction brings back what it replaced, the
     * retraction 12, which still withdraws 11. */
    s_retr(idx, 14, (uint64_t[]){ 13 }, 1);
    assert_int_equal(s_state(idx, "hamas", 2), 10);
    assert_int_equal(s_state(idx, "egypt", 2), 0);
    /* Withdrawn by a correction and a retraction at once: the
     * correction's carrying on wins, whatever the order. */
    s_up(idx, 20, 3, "qatar");
    s_corr(idx, 21, 3, "qatar", (uint64_t[]){ 20 }, 1);
    s_retr(idx, 22, (uint64_t[]){ 21 }, 1);
    assert_int_equal(s_state(idx, "qatar", 3), 20);
    s_corr(idx, 23, 3, "us", (uint64_t[]){ 21 }, 1);
    assert_int_equal(s_state(idx, "qatar", 3), 0);
    assert_int_equal(s_state(idx, "us", 3), 23);
    pd_index_destroy(&idx);
}

/*
 * Retention: an entry whose state is gone has none (it cannot fall back
 * below the first seq held), a fall back stops there too, and what
 * retention took withdraws nothing any more (it named only older seqs,
 * gone as well). Entries without a held candidate go; their ids are
 * used again.
 */
static void
test_state_retention(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_up(idx, 1, 1, "israel,hamas");   /* hamas/1 */
    s_up(idx, 2, 1, "israel");
    s_up(idx, 3, 2, "egypt");          /* egypt/2, gone with 3 */
    s_up(idx, 4, 1, "israel");         /* israel/1 */
    s_retr(idx, 5, (uint64_t[]){ 2 }, 1);
    s_up(idx, 6, 1, "qatar");
    assert_int_equal(s_state(idx, "hamas", 1), 1);
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.entries, 4);
    pd_index_forget_before(idx, 4);
    assert_int_equal(s_state(idx, "hamas", 1), 0);
    assert_int_equal(s_state(idx, "egypt", 2), 0);
    assert_int_equal(s_state(idx, "israel", 1), 4);
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.entries, 2); /* israel/1, qatar/1 */
    assert_int_equal(st.named, 0);   /* 2 is gone */
    assert_int_equal(st.withdrawn, 0);
    /* Retracting 4: israel had 2 and 1 before, both gone: no state. */
    s_retr(idx, 7, (uint64_t[]){ 4 }, 1);
    assert_int_equal(s_state(idx, "israel", 1), 0);
    /* Retracting 7 brings 4 back; names of gone seqs do nothing. */
    s_retr(idx, 8, (uint64_t[]){ 7, 1, 2 }, 3);
    assert_int_equal(s_state(idx, "israel", 1), 4);
    /* New entries take the freed ids; old ones keep theirs. */
    s_up(idx, 9, 5, "a,b");
    assert_int_equal(s_state(idx, "a", 5), 9);
    assert_int_equal(s_state(idx, "b", 5), 9);
    assert_int_equal(s_state(idx, "qatar", 1), 6);
    s_expect_latest(idx, (uint64_t[]){ 4, 6, 9 }, 3);
    /* Everything gone, then on from the next seq. */
    pd_index_forget_before(idx, 10);
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.links, 0);
    s_expect_latest(idx, NULL, 0);
    s_up(idx, 10, 1, "israel");
    assert_int_equal(s_state(idx, "israel", 1), 10);
    pd_index_destroy(&idx);
}

/* A seq applied twice is ignored; one that skips ahead forgets the state
 * before it (logged). Records that do not decode take their place. */
static void
test_state_order(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_up(idx, 5, 1, "israel");
    s_up(idx, 5, 1, "hamas");
    assert_int_equal(s_state(idx, "hamas", 1), 0);
    assert_int_equal(pd_index_reserve(idx, s_signer_a, 0, 0), 0);
    pd_index_apply(idx, 6, NULL);
    s_retr(idx, 7, (uint64_t[]){ 6 }, 1);
    assert_int_equal(s_state(idx, "israel", 1), 5);
    s_up(idx, 9, 1, "egypt");
    assert_int_equal(s_state(idx, "israel", 1), 0);
    assert_int_equal(s_state(idx, "egypt", 1), 9);
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.records, 1);
    pd_index_destroy(&idx);
}

/* A party named twice by one record (ingest refuses it; the index must
 * not trust that) is one candidate of its entry: one link, and a
 * retraction of the record falls back to the one before it. */
static void
test_state_party_twice(void **state)
{
    (void)state;
    pd_index_t *idx = pd_index_new();
    assert_non_null(idx);
    s_up(idx, 1, 1, "israel");
    s_up(idx, 2, 1, "israel,hamas,israel");
    assert_int_equal(s_state(idx, "israel", 1), 2);
    s_retr(idx, 3, (uint64_t[]){ 2 }, 1);
    assert_int_equal(s_state(idx, "israel", 1), 1);
    assert_int_equal(s_state(idx, "hamas", 1), 0);
    s_expect_latest(idx, (uint64_t[]){ 1 }, 1);
    /* One link per entry it is a candidate of, one per seq it names. */
    pd_index_stats_t st;
    pd_index_get_stats(idx, &st);
    assert_int_equal(st.links, 1 + 2 + 1);
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
    assert_int_equal(pd_index_reserve(idx, other, 1, 0), 0);
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

/* --- the state against a model ---------------------------------------- */

#define M_NEG 3
#define M_PARTY 5
#define M_PHASE 3
#define M_STEPS 4000
#define M_KEYS (M_NEG * M_PARTY * M_PHASE)

static uint32_t
s_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static const char *s_negs[M_NEG] = { "gaza-ceasefire",
                                     "a-very-long-negotiation-slug-32c",
                                     "b" };
static const char *s_parties[M_PARTY] = { "israel", "hamas", "egypt", "us",
                                          "thirty-two-character-party-slug" };

/* A record as the model keeps it. */
typedef struct {
    parley_kind_t kind;
    int neg, phase;
    unsigned parties;           /* bit per party */
    size_t n_refs;
    uint64_t refs[PARLEY_REFERENCES_MAX];
    uint64_t *w;                /* its withdrawal set (see s_model_w()) */
    size_t n_w;
} m_rec_t;

static m_rec_t s_m[M_STEPS + 1];

/* Add seq to a set (an array) unless it is there. */
static void
s_set_add(uint64_t **v, size_t *n, uint64_t seq)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == seq)
            return;
    *v = realloc(*v, (*n + 1) * sizeof(**v));
    assert_non_null(*v);
    (*v)[(*n)++] = seq;
}

/*
 * The definition, written as sets: a retraction withdraws the held
 * records it names before it; a correction the same, and everything those
 * withdraw (it takes their place). Records from first on are held.
 */
static void
s_model_w(uint64_t seq, uint64_t first)
{
    m_rec_t *r = &s_m[seq];
    free(r->w);
    r->w = NULL;
    r->n_w = 0;
    if (r->kind == PARLEY_KIND_UPDATE)
        return;
    for (size_t i = 0; i < r->n_refs; i++) {
        uint64_t t = r->refs[i];
        if (t >= seq || t < first)
            continue;
        s_set_add(&r->w, &r->n_w, t);
        if (r->kind == PARLEY_KIND_CORRECTION)
            for (size_t j = 0; j < s_m[t].n_w; j++)
                s_set_add(&r->w, &r->n_w, s_m[t].w[j]);
    }
}

/*
 * The state after records first..last, from scratch: a record is
 * withdrawn when a record after it that is not withdrawn has it in its
 * set; an entry's state is its newest candidate not withdrawn.
 * out[key] = seq or 0, key = (neg * M_PARTY + party) * M_PHASE + phase.
 */
static void
s_model_state(uint64_t first, uint64_t last, uint64_t out[M_KEYS])
{
    static bool withdrawn[M_STEPS + 1];
    memset(withdrawn, 0, sizeof(withdrawn));
    for (uint64_t seq = first; seq <= last; seq++)
        s_model_w(seq, first);
    for (uint64_t seq = last; seq >= first && seq > 0; seq--)
        if (!withdrawn[seq])
            for (size_t j = 0; j < s_m[seq].n_w; j++)
                withdrawn[s_m[seq].w[j]] = true;
    memset(out, 0, M_KEYS * sizeof(uint64_t));
    for (uint64_t seq = first; seq <= last; seq++) {
        const m_rec_t *r = &s_m[seq];
        if (r->kind == PARLEY_KIND_RETRACTION || withdrawn[seq])
            continue;
        for (int b = 0; b < M_PARTY; b++)
            if (r->parties & (1u << b))
                out[(r->neg * M_PARTY + b) * M_PHASE + r->phase] = seq;
    }
}

/* Compare the index's state with the model's, entry by entry. */
static void
s_model_check(pd_index_t *idx, uint64_t first, uint64_t last)
{
    uint64_t want[M_KEYS], got[M_KEYS] = { 0 };
    s_model_state(first, last, want);
    pd_entry_t *e = NULL;
    int n = pd_index_latest(idx, NULL, NULL, &e);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        int a = -1, b = -1;
        for (int k = 0; k < M_NEG; k++)
            if (strcmp(e[i].negotiation, s_negs[k]) == 0)
                a = k;
        for (int k = 0; k < M_PARTY; k++)
            if (strcmp(e[i].party, s_parties[k]) == 0)
                b = k;
        assert_true(a >= 0 && b >= 0 && e[i].phase % 85 == 0);
        size_t key = ((size_t)a * M_PARTY + (size_t)b) * M_PHASE
                     + e[i].phase / 85;
        assert_int_equal(got[key], 0); /* each entry once */
        got[key] = e[i].seq;
    }
    free(e);
    for (size_t k = 0; k < M_KEYS; k++) {
        if (got[k] != want[k])
            print_error("entry %zu: index %llu, model %llu (records %llu..%llu)\n",
                        k, (unsigned long long)got[k],
                        (unsigned long long)want[k],
                        (unsigned long long)first, (unsigned long long)last);
        assert_int_equal(got[k], want[k]);
    }
}

/* A random record for seq: references mostly to recent records, so that
 * chains of corrections and retractions form. */
static void
s_model_record(uint32_t *rng, uint64_t seq, parley_update_t *u)
{
    m_rec_t *r = &s_m[seq];
    uint32_t x = s_rand(rng);
    memset(r, 0, sizeof(*r));
    r->neg = (int)(x % M_NEG);
    r->phase = (int)((x >> 4) % M_PHASE);
    uint32_t k = (x >> 8) % 10;
    r->kind = k < 5 ? PARLEY_KIND_UPDATE
              : k < 8 ? PARLEY_KIND_CORRECTION
                      : PARLEY_KIND_RETRACTION;
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, s_negs[r->neg]);
    u->phase = (uint32_t)r->phase * 85; /* 0, 85, 170 */
    u->status = PARLEY_STATUS_PROPOSED;
    u->kind = r->kind;
    strcpy(u->headline, "h");
    u->issued_at = 1700000000000;
    u->signer_seq = seq;
    size_t np = 1 + (x >> 13) % 3;
    for (size_t i = 0; i < np; i++) {
        int b = (int)(s_rand(rng) % M_PARTY);
        if (r->parties & (1u << b))
            continue;
        r->parties |= 1u << b;
        strcpy(u->parties[u->n_parties++], s_parties[b]);
    }
    if (r->kind != PARLEY_KIND_UPDATE) {
        size_t nr = 1 + s_rand(rng) % 3;
        for (size_t i = 0; i < nr; i++) {
            uint32_t y = s_rand(rng);
            uint64_t back = y % 8 < 6 ? 1 + (y >> 3) % 12 : 1 + (y >> 3) % seq;
            /* now and then a seq not before this one */
            uint64_t t = y % 50 == 0 ? seq + (y >> 8) % 3
                         : back < seq ? seq - back
                                      : 1;
            r->refs[r->n_refs++] = t;
            u->references[u->n_references++] = t;
        }
    }
}

/*
 * Random updates, corrections and retractions over a small key space,
 * added through pd_index_add() to one index and as signed bytes through
 * pd_index_scan() to another; both must follow the model. Retention
 * halfway through on the first; at the end a third index scans what the
 * first still holds (a restart after retention).
 */
static void
test_state_model(void **state)
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
    static uint8_t envs[M_STEPS + 1][512];
    static size_t lens[M_STEPS + 1];
    parley_update_t *u = malloc(sizeof(*u));
    assert_non_null(u);
    uint32_t rng = 12345;
    uint64_t first = 1;
    for (uint64_t seq = 1; seq <= M_STEPS; seq++) {
        s_model_record(&rng, seq, u);
        s_add(idx, seq, pk, u);
        assert_int_equal(parley_sign(key, u, envs[seq], sizeof(envs[seq]),
                                     &lens[seq]), 0);
        assert_int_equal(pd_index_scan(scanned, seq, 0, envs[seq], lens[seq]),
                         0);
        if (seq == M_STEPS / 2) {
            first = M_STEPS / 4;
            pd_index_forget_before(idx, first);
        }
        if (seq % 37 == 0 || seq == M_STEPS) {
            s_model_check(idx, first, seq);
            s_model_check(scanned, 1, seq);
        }
    }
    pd_index_stats_t st;
    pd_index_get_stats(scanned, &st);
    assert_int_equal(st.scanned, M_STEPS);
    assert_int_equal(st.skipped, 0);
    assert_true(st.withdrawn > M_STEPS / 10); /* the model was exercised */
    pd_index_t *again = pd_index_new();
    assert_non_null(again);
    for (uint64_t seq = first; seq <= M_STEPS; seq++)
        assert_int_equal(pd_index_scan(again, seq, 0, envs[seq], lens[seq]),
                         0);
    s_model_check(again, first, M_STEPS);
    /* Retention in steps, on both. */
    for (uint64_t f = first + 300; f <= M_STEPS + 1; f += 300) {
        pd_index_forget_before(idx, f);
        pd_index_forget_before(again, f);
        s_model_check(idx, f, M_STEPS);
        s_model_check(again, f, M_STEPS);
    }
    for (uint64_t seq = 0; seq <= M_STEPS; seq++)
        free(s_m[seq].w);
    free(u);
    pd_index_destroy(&idx);
    pd_index_destroy(&scanned);
    pd_index_destroy(&again);
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
        cmocka_unit_test(test_state_u1_u2),
        cmocka_unit_test(test_state_correction),
        cmocka_unit_test(test_state_chains),
        cmocka_unit_test(test_state_retention),
        cmocka_unit_test(test_state_order),
        cmocka_unit_test(test_state_party_twice),
        cmocka_unit_test(test_signers_and_dedupe),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_dedupe_many),
        cmocka_unit_test(test_state_model),
        cmocka_unit_test(test_scan_slow_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
