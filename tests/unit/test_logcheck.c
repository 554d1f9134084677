/*
 * test_logcheck.c - the transparency log's verifier (client/logcheck.c)
 * message by message, against a daemon made of a memory tree and a log
 * key: trusting and chaining checkpoints, inclusion proofs, the all/
 * fold from a compact range, forks, rollbacks, a lying feed, forged and
 * mangled checkpoints, staleness, witnesses, the state file, and the
 * evidence texts (made, parsed, checked offline), and what the counts
 * say about the sources (the nodes of a cluster) of checkpoints and proofs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../tmpdir.h"
#include "logcheck.h"
#include "note.h"
#include "tlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORIGIN "parley.test/log"
#define T0 1790000000000LL /* wall ms of the tests' start */

/* A daemon: records, its tree, its key. */
typedef struct fake {
    parley__tlog_mem_t tree;
    uint8_t rec[400][64]; /* record bytes by index */
    size_t len[400];
    uint64_t n;
    parley_key_t *key;
    uint8_t pk[32];
    parley_key_t *witness;
    uint8_t wpk[32];
    /* answers */
    uint8_t pbuf[PARLEY__INCLUSION_MAX][PARLEY__TLOG_PROOF_ENCODED_MAX];
    parley__bytes_t items[PARLEY__INCLUSION_MAX];
    uint8_t range[64][32];
    parley__bytes_t ritems[64];
} fake_t;

static void
s_fake_init(fake_t *f, uint8_t key_seed, const char *salt)
{
    memset(f, 0, sizeof(*f));
    parley__tlog_mem_init(&f->tree);
    uint8_t seed[32];
    memset(seed, key_seed, sizeof(seed));
    f->key = parley_key_from_seed(seed);
    parley_key_public(f->key, f->pk);
    memset(seed, 0x77, sizeof(seed));
    f->witness = parley_key_from_seed(seed);
    parley_key_public(f->witness, f->wpk);
    (void)salt;
}

static void
s_fake_free(fake_t *f)
{
    parley__tlog_mem_clear(&f->tree);
    parley_key_destroy(&f->key);
    parley_key_destroy(&f->witness);
}

/* Append record seq (its bytes depend on salt, so two daemons differ). */
static void
s_fake_add(fake_t *f, char salt)
{
    uint64_t i = f->n++;
    f->len[i] = (size_t)snprintf((char *)f->rec[i], sizeof(f->rec[i]),
                                 "record %" PRIu64 " %c", i + 1, salt);
    assert_int_equal(parley__tlog_mem_append(&f->tree, f->rec[i], f->len[i]), 0);
}

/* A signed checkpoint of the first size leaves, stamped at ts (0: no
 * stamp), cosigned by the witness if asked. */
static char *
s_fake_checkpoint(fake_t *f, uint64_t size, int64_t ts, bool cosign, size_t *len)
{
    parley__tlog_hash_t root;
    assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &f->tree, size, &root), 0);
    char *note;
    size_t n;
    assert_int_equal(parley__checkpoint_sign(ORIGIN, size, &root, f->key, &note, &n), 0);
    size_t text_len = (size_t)(strstr(note, "\n\n") - note) + 1;
    char *out = malloc(n + 2 * PARLEY__COSIG_LINE_MAX + 1);
    assert_non_null(out);
    memcpy(out, note, n + 1);
    size_t l;
    if (ts > 0) {
        assert_int_equal(parley__cosig_make(f->key, ORIGIN, note, text_len,
                                            (uint64_t)ts, out + n,
                                            PARLEY__COSIG_LINE_MAX, &l),
                         0);
        n += l;
    }
    if (cosign) {
        assert_int_equal(parley__cosig_make(f->witness, "witness.test/w1", note,
                                            text_len, (uint64_t)ts, out + n,
                                            PARLEY__COSIG_LINE_MAX, &l),
                         0);
        n += l;
    }
    free(note);
    *len = n;
    return out;
}

/* Answer the verifier's request as this daemon would. */
static void
s_fake_answer(fake_t *f, const parley__request_t *req, parley__reply_t *r)
{
    memset(r, 0, sizeof(*r));
    r->type = PARLEY__REPLY_PROOF;
    if (req->op == PARLEY__OP_INCLUSION) {
        r->tree_size = req->tree_size;
        for (size_t i = 0; i < req->n_seqs; i++) {
            parley__tlog_proof_t p;
            assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &f->tree,
                                                PARLEY__TLOG_INCLUSION, req->seqs[i] - 1,
                                                req->tree_size, &p),
                             0);
            size_t n;
            assert_int_equal(parley__tlog_proof_encode(&p, f->pbuf[i],
                                                       sizeof(f->pbuf[i]), &n),
                             0);
            f->items[i] = (parley__bytes_t){ f->pbuf[i], n };
        }
        r->proofs = f->items;
        r->n_proofs = req->n_seqs;
        return;
    }
    assert_int_equal(req->op, PARLEY__OP_CONSISTENCY);
    parley__tlog_proof_t p;
    assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &f->tree,
                                        PARLEY__TLOG_CONSISTENCY, req->old_size,
                                        req->new_size, &p),
                     0);
    size_t n;
    assert_int_equal(parley__tlog_proof_encode(&p, f->pbuf[0], sizeof(f->pbuf[0]), &n), 0);
    f->items[0] = (parley__bytes_t){ f->pbuf[0], n };
    r->proofs = f->items;
    r->n_proofs = 1;
    r->tree_size = req->new_size;
    if (req->with_range) {
        parley__tlog_range_t range;
        assert_int_equal(parley__tlog_range_load(&range, req->old_size,
                                                 parley__tlog_mem_read, &f->tree),
                         0);
        for (unsigned i = 0; i < range.count; i++) {
            memcpy(f->range[i], range.subtree[i].b, 32);
            f->ritems[i] = (parley__bytes_t){ f->range[i], 32 };
        }
        r->range = f->ritems;
        r->n_range = range.count;
    }
}

/* Answer every request the verifier wants; returns how many. */
static int
s_pump(parley__logcheck_t *lc, fake_t *f, int64_t now)
{
    int n = 0;
    parley__request_t req;
    while (parley__logcheck_want(lc, &req, now) == 1) {
        parley__reply_t r;
        s_fake_answer(f, &req, &r);
        parley__logcheck_reply(lc, &r, 0, now);
        n++;
        assert_true(n < 100);
    }
    return n;
}

/* Show checkpoint of size at ts. */
static void
s_show(parley__logcheck_t *lc, fake_t *f, uint64_t size, int64_t ts, bool cosign)
{
    size_t len;
    char *cp = s_fake_checkpoint(f, size, ts / 1000, cosign, &len);
    parley__logcheck_checkpoint(lc, cp, len, ts);
    free(cp);
}

/* Hand out record seq of f (the bytes of record at: a liar can shift). */
static void
s_hand(parley__logcheck_t *lc, fake_t *f, uint64_t seq, uint64_t at)
{
    assert_int_equal(parley__logcheck_update(lc, seq, f->rec[at - 1], f->len[at - 1]), 0);
}

/* The next event must be of type (and seq, unless 0); returns it (the
 * caller clears it). LOG_VERIFIED events before an alarm are passed over
 * (a checkpoint trusted with nothing handed out is verified at once). */
static parley__logcheck_event_t
s_expect(parley__logcheck_t *lc, parley_event_type_t type, uint64_t seq)
{
    parley__logcheck_event_t ev;
    for (;;) {
        if (!parley__logcheck_next(lc, &ev))
            fail_msg("no event; expected type %d", type);
        if (type == PARLEY_EVENT_LOG_VERIFIED || ev.type != PARLEY_EVENT_LOG_VERIFIED)
            break;
        parley__logcheck_event_clear(&ev);
    }
    if (ev.type != type || (seq != 0 && ev.seq != seq))
        fail_msg("event type %d seq %" PRIu64 "; expected type %d seq %" PRIu64,
                 ev.type, ev.seq, type, seq);
    return ev;
}

/* No event but LOG_VERIFIED ones. */
static void
s_no_event(parley__logcheck_t *lc)
{
    parley__logcheck_event_t ev;
    while (parley__logcheck_next(lc, &ev)) {
        if (ev.type == PARLEY_EVENT_LOG_VERIFIED) {
            parley__logcheck_event_clear(&ev);
            continue;
        }
        fail_msg("unexpected event type %d seq %" PRIu64 ": %s", ev.type, ev.seq,
                 ev.evidence != NULL ? ev.evidence : "");
    }
}

static parley__logpolicy_t
s_policy(const fake_t *f, unsigned need, int64_t staleness)
{
    parley__logpolicy_t p;
    memset(&p, 0, sizeof(p));
    strcpy(p.origin, ORIGIN);
    memcpy(p.pk, f->pk, 32);
    p.n_witnesses = 1;
    strcpy(p.witness[0].name, "witness.test/w1");
    memcpy(p.witness[0].pk, f->wpk, 32);
    p.need = need;
    p.max_staleness_ms = staleness;
    return p;
}

/* The evidence of an event parses, and names kind. */
static void
s_evidence_is(const parley__logcheck_event_t *ev, const char *kind, size_t notes)
{
    assert_non_null(ev->evidence);
    parley__evidence_doc_t d;
    const char *why = NULL;
    if (parley__evidence_parse(ev->evidence, strlen(ev->evidence), &d, &why) != 0)
        fail_msg("evidence does not parse (%s):\n%s", why, ev->evidence);
    assert_string_equal(d.kind, kind);
    assert_int_equal(d.notes[0] != NULL, notes >= 1);
    assert_int_equal(d.notes[1] != NULL, notes >= 2);
    parley__evidence_doc_clear(&d);
}

/* --- tests ------------------------------------------------------------------ */

/* A filtered subscriber: inclusion proofs per trusted checkpoint, chained
 * checkpoints, LOG_VERIFIED when every update handed out is proven. */
static void
test_some_honest(void **state)
{
    (void)state;
    fake_t f;
    s_fake_init(&f, 0x41, "a");
    for (int i = 0; i < 12; i++)
        s_fake_add(&f, 'a');
    parley__logpolicy_t pol = s_policy(&f, 0, 0);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    for (uint64_t s = 2; s <= 10; s += 2)
        s_hand(lc, &f, s, s);
    assert_int_equal(s_pump(lc, &f, T0), 0); /* nothing trusted yet */
    s_show(lc, &f, 10, T0, false);
    assert_int_equal(s_pump(lc, &f, T0), 1); /* one inclusion request of 5 */
    parley__logcheck_event_t ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 10);
    assert_int_equal(ev.checkpoint->size, 10);
    parley__logcheck_event_clear(&ev);
    s_no_event(lc);
    s_hand(lc, &f, 12, 12);
    s_show(lc, &f, 12, T0 + 1000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 1000), 2); /* consistency, inclusion */
    ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 12);
    parley__logcheck_event_clear(&ev);
    assert_int_equal(parley__logcheck_trusted(lc)->size, 12);
    assert_int_equal(parley__logcheck_pending(lc), 0);
    parley__logcheck_destroy(&lc);
    s_fake_free(&f);
}

/* A feed that shifts the updates after a dropped one: the update handed
 * out as seq 5 is the log's record 6, and its inclusion proof fails. */
static void
test_some_shifted(void **state)
{
    (void)state;
    fake_t f;
    s_fake_init(&f, 0x41, "a");
    for (int i = 0; i < 8; i++)
        s_fake_add(&f, 'a');
    parley__logpolicy_t pol = s_policy(&f, 0, 0);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    s_hand(lc, &f, 4, 4);
    s_hand(lc, &f, 5, 6); /* 5 dropped; 6 shown as 5 */
    s_show(lc, &f, 8, T0, false);
    s_pump(lc, &f, T0);
    parley__logcheck_event_t ev = s_expect(lc, PARLEY_EVENT_LOG_INCONSISTENT, 5);
    assert_int_equal(ev.code, PARLEY_EINCONSISTENT);
    s_evidence_is(&ev, "inclusion", 1);
    parley__evidence_doc_t d;
    assert_int_equal(parley__evidence_parse(ev.evidence, strlen(ev.evidence), &d, NULL),
                     0);
    assert_int_equal(d.seq, 5);
    assert_int_equal(d.update_len, f.len[5]);
    assert_memory_equal(d.update, f.rec[5], f.len[5]);
    assert_non_null(d.proof);
    parley__evidence_doc_clear(&d);
    parley__logcheck_event_clear(&ev);
    /* After an alarm the verifier checks nothing more. */
    s_show(lc, &f, 8, T0 + 1000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 1000), 0);
    s_no_event(lc);
    parley__logcheck_destroy(&lc);
    s_fake_free(&f);
}

/* An all/ subscriber from seq 1: the fold alone proves it, no request;
 * from a later seq: the range first, checked by its proof. */
static void
test_all_fold(void **state)
{
    (void)state;
    fake_t f;
    s_fake_init(&f, 0x41, "a");
    for (int i = 0; i < 40; i++)
        s_fake_add(&f, 'a');
    parley__logpolicy_t pol = s_policy(&f, 0, 0);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, true, NULL, T0, &lc, NULL), 0);
    for (uint64_t s = 1; s <= 9; s++)
        s_hand(lc, &f, s, s);
    s_show(lc, &f, 9, T0, false);
    assert_int_equal(s_pump(lc, &f, T0), 0);
    parley__logcheck_event_t ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 9);
    parley__logcheck_event_clear(&ev);
    /* The fold ahead of the checkpoint: one consistency request. */
    for (uint64_t s = 10; s <= 14; s++)
        s_hand(lc, &f, s, s);
    s_show(lc, &f, 12, T0 + 1000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 1000), 2); /* chain, fold */
    ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 12);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);

    /* Starting at seq 21 (a replay from there): the range of 20. */
    assert_int_equal(parley__logcheck_new(&pol, true, NULL, T0, &lc, NULL), 0);
    s_show(lc, &f, 20, T0, false);
    ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 20); /* nothing handed out yet */
    parley__logcheck_event_clear(&ev);
    for (uint64_t s = 21; s <= 30; s++)
        s_hand(lc, &f, s, s);
    s_show(lc, &f, 30, T0 + 1000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 1000), 2); /* chain 20-30, range 20 */
    ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 30);
    parley__logcheck_event_clear(&ev);
    /* A jump (updates gone) starts the fold again, from the range. */
    for (uint64_t s = 35; s <= 40; s++)
        s_hand(lc, &f, s, s);
    s_show(lc, &f, 40, T0 + 2000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 2000), 2);
    ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 40);
    parley__logcheck_event_clear(&ev);
    s_no_event(lc);
    parley__logcheck_destroy(&lc);
    s_fake_free(&f);
}

/* An all/ subscriber whose feed dropped update 5 and shifted the rest
 * (with heartbeats to match): its own tree cannot match the checkpoint. */
static void
test_all_dropped(void **state)
{
    (void)state;
    fake_t f;
    s_fake_init(&f, 0x41, "a");
    for (int i = 0; i < 10; i++)
        s_fake_add(&f, 'a');
    parley__logpolicy_t pol = s_policy(&f, 0, 0);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, true, NULL, T0, &lc, NULL), 0);
    s_show(lc, &f, 3, T0, false);
    for (uint64_t s = 1; s <= 9; s++)
        s_hand(lc, &f, s, s < 5 ? s : s + 1);
    s_show(lc, &f, 10, T0 + 1000, false);
    s_pump(lc, &f, T0 + 1000);
    parley__logcheck_event_t ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 3);
    parley__logcheck_event_clear(&ev);
    ev = s_expect(lc, PARLEY_EVENT_LOG_INCONSISTENT, 10);
    s_evidence_is(&ev, "consistency", 1);
    parley__evidence_doc_t d;
    assert_int_equal(parley__evidence_parse(ev.evidence, strlen(ev.evidence), &d, NULL),
                     0);
    assert_int_equal(d.own_size, 9);
    assert_true(d.have_own_root);
    parley__evidence_doc_clear(&d);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);
    s_fake_free(&f);
}

/* Two checkpoints of one size with two roots (a fork), a smaller one
 * signed later (a rollback), a smaller one signed earlier (a replay:
 * ignored), and a larger one from another history (its proof fails). */
static void
test_forks_and_rollbacks(void **state)
{
    (void)state;
    fake_t a, b;
    s_fake_init(&a, 0x41, "a");
    s_fake_init(&b, 0x41, "b"); /* the same key: a forked daemon */
    for (int i = 0; i < 12; i++) {
        s_fake_add(&a, 'a');
        s_fake_add(&b, i < 6 ? 'a' : 'b');
    }
    parley__logpolicy_t pol = s_policy(&a, 0, 0);
    parley__logcheck_t *lc;
    parley__logcheck_event_t ev;

    /* fork */
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    s_show(lc, &a, 10, T0, false);
    s_show(lc, &b, 10, T0 + 1000, false);
    ev = s_expect(lc, PARLEY_EVENT_LOG_INCONSISTENT, 10);
    s_evidence_is(&ev, "fork", 2);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);

    /* A smaller one signed later (a rollback, or a cluster node that
     * lags): not trusted, no alarm; if nothing fresh comes, LOG_STALE
     * with both checkpoints. A replayed old one is ignored. */
    pol.max_staleness_ms = 5000;
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    s_show(lc, &a, 10, T0 + 5000, false);
    s_show(lc, &a, 8, T0 + 1000, false); /* older: a replay */
    s_no_event(lc);
    s_show(lc, &a, 8, T0 + 9000, false);
    s_no_event(lc);
    assert_int_equal(parley__logcheck_trusted(lc)->size, 10);
    parley__logcheck_tick(lc, T0 + 10001);
    ev = s_expect(lc, PARLEY_EVENT_LOG_STALE, 10);
    s_evidence_is(&ev, "stale", 1);
    assert_non_null(strstr(ev.evidence, "behind the checkpoint trusted"));
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);
    pol.max_staleness_ms = 0;

    /* another history, larger */
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    s_show(lc, &a, 8, T0, false);
    s_show(lc, &b, 12, T0 + 1000, false);
    s_pump(lc, &b, T0 + 1000);
    ev = s_expect(lc, PARLEY_EVENT_LOG_INCONSISTENT, 12);
    s_evidence_is(&ev, "consistency", 2);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);
    s_fake_free(&a);
    s_fake_free(&b);
}

/* Sources (the nodes of a cluster): what the counts say about where the
 * checkpoints and proofs came from. */
static void
test_sources(void **state)
{
    (void)state;
    fake_t f;
    s_fake_init(&f, 0x41, "a");
    for (int i = 0; i < 12; i++)
        s_fake_add(&f, 'a');
    parley__logpolicy_t pol = s_policy(&f, 0, 0);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    parley__logcheck_counts_t c = parley__logcheck_counts(lc);
    assert_int_equal(c.chains + c.chains_across + c.roots_across + c.behind, 0);
    /* Node 1 shows 6; node 1 proves 6 -> 8: a proof, not across. */
    parley__logcheck_source(lc, 1);
    s_show(lc, &f, 6, T0, false);
    s_show(lc, &f, 8, T0 + 1000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 1000), 1);
    c = parley__logcheck_counts(lc);
    assert_int_equal(c.chains, 1);
    assert_int_equal(c.chains_across, 0);
    /* Node 2: the same size and root (across), one behind it signed
     * later (not trusted, no alarm), then 8 -> 10 proven by node 2:
     * across, though node 2 also signed a checkpoint of 8. */
    parley__logcheck_source(lc, 2);
    s_show(lc, &f, 8, T0 + 2000, false);
    s_show(lc, &f, 7, T0 + 3000, false);
    s_show(lc, &f, 7, T0 + 500, false); /* signed earlier: a replay */
    s_show(lc, &f, 10, T0 + 3000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 3000), 1);
    s_no_event(lc);
    assert_int_equal(parley__logcheck_trusted(lc)->size, 10);
    c = parley__logcheck_counts(lc);
    assert_int_equal(c.roots_across, 1);
    assert_int_equal(c.behind, 1);
    assert_int_equal(c.chains, 2);
    assert_int_equal(c.chains_across, 1);
    /* Node 2 again: 10 -> 12, not across. */
    s_show(lc, &f, 12, T0 + 4000, false);
    assert_int_equal(s_pump(lc, &f, T0 + 4000), 1);
    c = parley__logcheck_counts(lc);
    assert_int_equal(c.chains, 3);
    assert_int_equal(c.chains_across, 1);
    assert_int_equal(parley__logcheck_counts(NULL).chains, 0);
    parley__logcheck_destroy(&lc);
    s_fake_free(&f);
}

/* A checkpoint signed by another key, or mangled, is rejected (an event
 * with seq 0 and the note) and never trusted. */
static void
test_forged_and_mangled(void **state)
{
    (void)state;
    fake_t f, other;
    s_fake_init(&f, 0x41, "a");
    s_fake_init(&other, 0x42, "a");
    for (int i = 0; i < 4; i++) {
        s_fake_add(&f, 'a');
        s_fake_add(&other, 'a');
    }
    parley__logpolicy_t pol = s_policy(&f, 0, 0);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    s_show(lc, &other, 4, T0, false);
    parley__logcheck_event_t ev = s_expect(lc, PARLEY_EVENT_REJECTED, 0);
    assert_int_equal(ev.code, PARLEY_EUNKNOWNSIGNER);
    assert_non_null(strstr(ev.evidence, ORIGIN));
    parley__logcheck_event_clear(&ev);
    size_t len;
    char *cp = s_fake_checkpoint(&f, 4, T0 / 1000, false, &len);
    char *bad = strdup(cp);
    bad[strlen(ORIGIN) + 1] ^= 1; /* the size line */
    parley__logcheck_checkpoint(lc, bad, len, T0);
    ev = s_expect(lc, PARLEY_EVENT_REJECTED, 0);
    assert_int_equal(ev.code, PARLEY_EBADSIG);
    parley__logcheck_event_clear(&ev);
    strcpy(bad, cp);
    bad[len - 3] = bad[len - 3] == 'A' ? 'B' : 'A'; /* the time line */
    parley__logcheck_checkpoint(lc, bad, len, T0);
    ev = s_expect(lc, PARLEY_EVENT_REJECTED, 0);
    assert_true(ev.code == PARLEY_EBADSIG || ev.code == PARLEY_EMALFORMED);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_checkpoint(lc, "garbage\n", 8, T0);
    ev = s_expect(lc, PARLEY_EVENT_REJECTED, 0);
    assert_int_equal(ev.code, PARLEY_EMALFORMED);
    parley__logcheck_event_clear(&ev);
    assert_null(parley__logcheck_trusted(lc));
    parley__logcheck_checkpoint(lc, cp, len, T0);
    assert_non_null(parley__logcheck_trusted(lc));
    free(cp);
    free(bad);
    parley__logcheck_destroy(&lc);
    s_fake_free(&f);
    s_fake_free(&other);
}

/* No fresh checkpoint within max_staleness: LOG_STALE once, with what
 * was shown; fresh again: LOG_VERIFIED. Witnesses asked for: a
 * checkpoint without their cosignature is not trusted (and shown). */
static void
test_stale_and_witnesses(void **state)
{
    (void)state;
    fake_t f;
    s_fake_init(&f, 0x41, "a");
    for (int i = 0; i < 4; i++)
        s_fake_add(&f, 'a');
    parley__logpolicy_t pol = s_policy(&f, 1, 3000);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, false, NULL, T0, &lc, NULL), 0);
    s_show(lc, &f, 4, T0, true);
    assert_non_null(parley__logcheck_trusted(lc));
    assert_int_equal(parley__logcheck_trusted(lc)->cosigners, 1);
    parley__logcheck_tick(lc, T0 + 3000);
    s_no_event(lc);
    assert_int_equal(parley__logcheck_wait(lc, T0 + 3000), 1);
    s_show(lc, &f, 4, T0 + 2000, false); /* no cosignature: shown only */
    parley__logcheck_tick(lc, T0 + 3001);
    parley__logcheck_event_t ev = s_expect(lc, PARLEY_EVENT_LOG_STALE, 4);
    s_evidence_is(&ev, "stale", 1);
    assert_non_null(strstr(ev.evidence, "shown "));
    assert_non_null(strstr(ev.evidence, "too few witness cosignatures"));
    assert_int_equal(ev.checkpoint->size, 4);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_tick(lc, T0 + 9000);
    s_no_event(lc); /* once */
    s_show(lc, &f, 4, T0 + 9000, true);
    ev = s_expect(lc, PARLEY_EVENT_LOG_VERIFIED, 4);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);
    s_fake_free(&f);
}

/* The state file: written at each new size, read at start: a daemon
 * rolled back to an older copy, or forked, is caught after a restart. */
static void
test_state_file(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(test_tmpdir_make(dir, sizeof(dir), "parley-logcheck-"), 0);
    snprintf(path, sizeof(path), "%s/state", dir);
    fake_t a, b;
    s_fake_init(&a, 0x41, "a");
    s_fake_init(&b, 0x41, "b");
    for (int i = 0; i < 10; i++) {
        s_fake_add(&a, 'a');
        s_fake_add(&b, i < 5 ? 'a' : 'b');
    }
    parley__logpolicy_t pol = s_policy(&a, 0, 0);
    parley__logcheck_t *lc;
    assert_int_equal(parley__logcheck_new(&pol, false, path, T0, &lc, NULL), 0);
    s_show(lc, &a, 5, T0, false);
    s_show(lc, &a, 8, T0 + 1000, false);
    s_pump(lc, &a, T0 + 1000);
    parley__logcheck_destroy(&lc);

    /* A restart: the saved checkpoint (8) is the first trusted one. */
    assert_int_equal(parley__logcheck_new(&pol, false, path, T0 + 5000, &lc, NULL), 0);
    assert_int_equal(parley__logcheck_trusted(lc)->size, 8);
    s_show(lc, &b, 9, T0 + 6000, false); /* forked after 5 */
    s_pump(lc, &b, T0 + 6000);
    parley__logcheck_event_t ev = s_expect(lc, PARLEY_EVENT_LOG_INCONSISTENT, 9);
    s_evidence_is(&ev, "consistency", 2);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);

    /* Restored from an older copy and grown past the saved size with
     * other records: the proof from the saved checkpoint fails. */
    assert_int_equal(parley__logcheck_new(&pol, false, path, T0 + 5000, &lc, NULL), 0);
    s_show(lc, &b, 6, T0 + 7000, false); /* behind: not trusted, no alarm */
    s_no_event(lc);
    s_show(lc, &b, 10, T0 + 8000, false);
    s_pump(lc, &b, T0 + 8000);
    ev = s_expect(lc, PARLEY_EVENT_LOG_INCONSISTENT, 10);
    s_evidence_is(&ev, "consistency", 2);
    parley__logcheck_event_clear(&ev);
    parley__logcheck_destroy(&lc);

    /* A state file that is not a checkpoint of this log is an error. */
    FILE *fp = fopen(path, "w");
    fputs("nonsense\n", fp);
    fclose(fp);
    const char *why = NULL;
    assert_int_equal(parley__logcheck_new(&pol, false, path, T0, &lc, &why),
                     PARLEY_EMALFORMED);
    assert_null(lc);
    test_tmpdir_remove(dir);
    s_fake_free(&a);
    s_fake_free(&b);
}

/* Evidence texts: every field round trips; damage is refused. */
static void
test_evidence_format(void **state)
{
    (void)state;
    fake_t f;
    s_fake_init(&f, 0x41, "a");
    s_fake_add(&f, 'a');
    s_fake_add(&f, 'a');
    parley__logpolicy_t pol = s_policy(&f, 0, 0);
    size_t l1, l2;
    char *n1 = s_fake_checkpoint(&f, 1, 100, false, &l1);
    char *n2 = s_fake_checkpoint(&f, 2, 200, false, &l2);
    parley_checkpoint_t *c1, *c2;
    assert_int_equal(parley__checkpoint_check(&pol, n1, l1, &c1, NULL), 0);
    assert_int_equal(parley__checkpoint_check(&pol, n2, l2, &c2, NULL), 0);
    assert_int_equal(c2->time, 200);
    parley__tlog_hash_t own;
    memset(own.b, 7, 32);
    uint8_t proof[5] = { 1, 2, 3, 4, 5 };
    parley__evidence_t e = { .kind = "inclusion", .reason = "a\nmultiline reason",
                             .a = c1, .b = c2, .shown = n1, .shown_len = l1,
                             .proof = proof, .proof_len = 5, .seq = 2,
                             .update = f.rec[1], .update_len = f.len[1],
                             .own_size = 9, .own_root = &own };
    char *text = parley__evidence_format(&e);
    assert_non_null(text);
    assert_int_equal(strncmp(text, "parley evidence v1\n", 19), 0);
    parley__evidence_doc_t d;
    assert_int_equal(parley__evidence_parse(text, strlen(text), &d, NULL), 0);
    assert_string_equal(d.kind, "inclusion");
    assert_string_equal(d.reason, "a multiline reason");
    assert_int_equal(d.note_len[0], l1);
    assert_memory_equal(d.notes[0], n1, l1);
    assert_memory_equal(d.notes[1], n2, l2);
    assert_memory_equal(d.shown, n1, l1);
    assert_memory_equal(d.proof, proof, 5);
    assert_int_equal(d.seq, 2);
    assert_memory_equal(d.update, f.rec[1], f.len[1]);
    assert_int_equal(d.own_size, 9);
    assert_memory_equal(d.own_root.b, own.b, 32);
    parley__evidence_doc_clear(&d);
    /* Damage: each refused. */
    const char *bad[] = { "", "parley evidence v2\nkind fork\n",
                          "parley evidence v1\nkind fork\n", /* no checkpoint */
                          "parley evidence v1\nkind fork\ncheckpoint !!!!\n",
                          "parley evidence v1\nkind fork\nkind fork\n",
                          "parley evidence v1\nbogus line\n",
                          "parley evidence v1\nkind fork" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parley__evidence_parse(bad[i], strlen(bad[i]), &d, NULL),
                         PARLEY_EMALFORMED);
    free(text);
    free(n1);
    free(n2);
    parley_checkpoint_destroy(&c1);
    parley_checkpoint_destroy(&c2);
    s_fake_free(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_some_honest),
        cmocka_unit_test(test_some_shifted),
        cmocka_unit_test(test_all_fold),
        cmocka_unit_test(test_all_dropped),
        cmocka_unit_test(test_forks_and_rollbacks),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_forged_and_mangled),
        cmocka_unit_test(test_stale_and_witnesses),
        cmocka_unit_test(test_state_file),
        cmocka_unit_test(test_evidence_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
