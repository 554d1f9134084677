/*
 * test_rejects.c - every reason parleyd refuses an update, end to end.
 *
 * One daemon (started with --max-clock-skew 60) serves the whole group. For
 * each reject code the test sends the offending bytes through a raw api
 * socket and checks what a publisher and a subscriber would see:
 *   - the reply is a Reject with the expected code;
 *   - the matching stats counter rose by exactly 1, and no other reject
 *     counter nor "accepted" moved;
 *   - nothing reached the feed: a valid update published next through the
 *     library gets the next seq (the log has no hole and no extra record)
 *     and is the very next delivery of an all/ subscriber.
 * It also checks the duplicate path (same signed bytes resent = the
 * original ack, flagged duplicate, no new delivery), that an envelope
 * that is not the canonical one is refused (so that an altered copy can
 * neither be stored nor turn the publisher's resend into a replay), and
 * that the library hands the daemon's reject code to its caller.
 */
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 5000

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    ph_key_t mediator; /* may publish anything */
    ph_key_t israel;   /* may publish only party israel */
    ph_key_t stranger; /* not in the keyring */
    ph_daemon_t daemon;
    ph_api_t api;      /* raw frames */
    parley_pub_t *pub; /* library publisher, mediator key */
    parley_sub_t *sub; /* all/ subscriber, no filter */
    uint64_t head;     /* last seq seen accepted */
    /* An update accepted through the raw socket, kept for the duplicate test.
     */
    uint8_t kept[PARLEY_ENVELOPE_MAX];
    size_t kept_len;
    uint64_t kept_seq;
    bool test_ok; /* set by each test at its end; else dump the log */
    bool resync;  /* a test failed: head and subscriber need resync */
} s_state_t;

/* ------------------------------------------------------------ helpers */

/* The next delivery must be seq with this headline, within the timeout. */
static void
s_expect_delivery(s_state_t *st, uint64_t seq, const char *headline)
{
    ph_events_t ev = { 0 };
    ph_sub_collect(st->sub, &ev, 1, 0, S_TIMEOUT);
    if (ev.n != 1) {
        ph_events_free(&ev);
        fail_msg(
            "all/ subscriber: no delivery within %d ms (expected seq %" PRIu64
            ")",
            S_TIMEOUT, seq);
    }
    uint64_t got = ev.d[0].seq;
    char head[PARLEY_HEADLINE_MAX + 1];
    snprintf(head, sizeof(head), "%s", ev.d[0].update.headline);
    ph_events_free(&ev);
    if (got != seq)
        fail_msg("all/ subscriber: next delivery is seq %" PRIu64 " (\"%s\"), "
                 "expected seq %" PRIu64 " (\"%s\")",
                 got, head, seq, headline);
    assert_string_equal(head, headline);
}

/*
 * Publish a valid update through the library and check it is the next seq
 * and the next delivery: proof that whatever was refused before left no
 * trace in the log or on the feed, and that the daemon still serves.
 */
static void
s_flow(s_state_t *st, const char *after)
{
    parley_update_t u;
    char headline[PARLEY_HEADLINE_MAX + 1];
    snprintf(headline, sizeof(headline), "still flowing after %s", after);
    ph_update_init(&u, "gaza-ceasefire", "egypt", 1, headline);
    u.issued_at = 0; /* let the library choose, as a user would */
    u.signer_seq = 0;
    uint64_t seq = 0;
    int dup = -1;
    int rc = ph_publish(st->pub, &u, &seq, &dup);
    if (rc != 0)
        fail_msg("after %s: a valid update was refused: %s", after,
                 parley_error_name(rc));
    if (seq != st->head + 1)
        fail_msg("after %s: valid update got seq %" PRIu64 ", expected %" PRIu64
                 " (the refused request changed the log)",
                 after, seq, st->head + 1);
    assert_int_equal(dup, 0);
    s_expect_delivery(st, seq, headline);
    st->head = seq;
}

/* Check a reply is a Reject with the code. */
static void
s_assert_reject(const parley__reply_t *r, int code, const char *what)
{
    char d[512];
    if (r->type != PARLEY__REPLY_REJECT || r->code != code)
        fail_msg("%s: expected reject %s, got %s", what, parley_error_name(code),
                 ph_reply_describe(r, d, sizeof(d)));
}

/* Fetch stats and fail the test if that is impossible. */
static void
s_stats(s_state_t *st, ph_stats_t *out)
{
    int rc = ph_stats_fetch(st->daemon.api, out);
    if (rc != 0)
        fail_msg("parley_stats on %s: %s", st->daemon.api, parley_error_name(rc));
}

/* Counter check: exactly the listed deltas among reject/accept counters. */
static void
s_stats_check(const ph_stats_t *before, const ph_stats_t *after,
              const char *counter, const char *what)
{
    char want[96];
    snprintf(want, sizeof(want), "%s=1", counter);
    const char *expect[] = { want, NULL };
    int bad = ph_stats_expect(before, after, expect);
    if (bad != 0)
        fail_msg("%s: %d counter(s) off (expected only %s +1, see above)", what,
                 bad, counter);
}

/*
 * Publish an envelope through the raw socket; expect a reject with code,
 * counter +1, then a valid update flows.
 */
static void
s_reject_env(s_state_t *st, const void *env, size_t len, int code,
             const char *counter, const char *what)
{
    ph_stats_t before, after;
    parley__reply_t r;
    uint64_t id = 0;
    s_stats(st, &before);
    int rc = ph_api_publish(&st->api, env, len, S_TIMEOUT, &r, &id);
    if (rc != 0)
        fail_msg("%s: no reply: %s", what, parley_error_name(rc));
    s_assert_reject(&r, code, what);
    assert_int_equal(r.request_id, id);
    s_stats(st, &after);
    s_stats_check(&before, &after, counter, what);
    s_flow(st, what);
}

/* Send frames as one message; expect a reject with code, counter +1. */
static void
s_reject_frames(s_state_t *st, const void *const *frames, const size_t *lens,
                size_t n, int code, const char *counter, const char *what)
{
    ph_stats_t before, after;
    parley__reply_t r;
    s_stats(st, &before);
    int rc = ph_api_send_frames(&st->api, frames, lens, n);
    if (rc != 0)
        fail_msg("%s: send: %s", what, strerror(-rc));
    rc = ph_api_recv(&st->api, S_TIMEOUT, &r);
    if (rc != 0)
        fail_msg("%s: no reply from parleyd within %d ms: %s", what, S_TIMEOUT,
                 parley_error_name(rc));
    s_assert_reject(&r, code, what);
    s_stats(st, &after);
    s_stats_check(&before, &after, counter, what);
    s_flow(st, what);
}

/* Sign u with k through the library into a fresh buffer. */
static size_t
s_sign(const ph_key_t *k, const parley_update_t *u, uint8_t *buf)
{
    size_t len = 0;
    int rc = ph_sign(k, u, buf, PARLEY_ENVELOPE_MAX, &len);
    if (rc != 0)
        fail_msg("parley_sign of a valid update: %s", parley_error_name(rc));
    return len;
}

/* ---------------------------------------------------------- fixtures */

static int
s_group_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    *state = st;
    if (ph_key_make(&st->mediator, st->dir, "mediator", 0x11) != 0
        || ph_key_make(&st->israel, st->dir, "israel-mfa", 0x22) != 0
        || ph_key_make(&st->stranger, st->dir, "stranger", 0x33) != 0)
        return -1;
    char ring[2048] = "# signers for test_rejects\n";
    if (ph_keyring_add(ring, sizeof(ring), &st->mediator, "*", "*", "*") != 0
        || ph_keyring_add(ring, sizeof(ring), &st->israel, "*", "israel", "*")
               != 0
        || ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_file_write(st->keyring, ring, strlen(ring), 0644) != 0)
        return -1;
    const char *extra[] = { "--max-clock-skew", "60", NULL };
    if (ph_daemon_start(&st->daemon, st->dir, st->keyring, extra) != 0)
        return -1;
    if (ph_api_open(&st->api, st->daemon.api) != 0)
        return -1;
    st->pub = ph_pub_new(st->daemon.api, st->mediator.key, NULL, 0);
    if (st->pub == NULL) {
        fprintf(stderr, "parley_pub_new: %s\n", parley_error_name(-errno));
        return -1;
    }
    parley_filter_t all = { 0 };
    parley_sub_options_t opt = { 0 };
    opt.start = PARLEY_START_LIVE;
    st->sub = ph_sub_new(st->daemon.api, &all, &opt);
    if (st->sub == NULL) {
        fprintf(stderr, "parley_sub_new: %s\n", parley_error_name(-errno));
        ph_daemon_dump_log(&st->daemon);
        return -1;
    }
    return 0;
}

static int
s_group_teardown(void **state)
{
    s_state_t *st = *state;
    if (st == NULL)
        return 0;
    parley_sub_destroy(&st->sub);
    parley_pub_destroy(&st->pub);
    ph_api_close(&st->api);
    /* Still running only if test_clean_stop did not run to its end. */
    if (st->daemon.pid > 0)
        ph_daemon_stop(&st->daemon);
    ph_key_free(&st->mediator);
    ph_key_free(&st->israel);
    ph_key_free(&st->stranger);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

/*
 * Before each test: if the previous one failed half-way, take the head seq
 * from the daemon and drop what the subscriber still holds, so one failure
 * is reported once instead of cascading into every later test.
 */
static int
s_begin(void **state)
{
    s_state_t *st = *state;
    st->test_ok = false;
    if (st->resync && st->daemon.pid > 0) {
        parley_info_t *info = NULL;
        if (ph_ping_info(st->daemon.api, NULL, S_TIMEOUT, &info) == 0)
            st->head = parley_info_seq(info);
        parley_info_destroy(&info);
        ph_events_t ev = { 0 };
        for (;;) {
            size_t before = ev.n;
            ph_sub_collect(st->sub, &ev, before + 1, 0, 500);
            if (ev.n == before || ev.err != 0 || ev.n >= 1000)
                break;
        }
        ph_events_free(&ev);
        st->resync = false;
    }
    return 0;
}

static int
s_end(void **state)
{
    s_state_t *st = *state;
    if (!st->test_ok) {
        ph_daemon_dump_log(&st->daemon);
        st->resync = true;
    }
    return 0;
}

/* -------------------------------------------------------------- tests */

/* Baseline: valid updates, signed by the library and raw, are accepted. */
static void
test_valid_baseline(void **state)
{
    s_state_t *st = *state;
    parley_info_t *info = NULL;
    assert_int_equal(ph_ping_info(st->daemon.api, NULL, S_TIMEOUT, &info), 0);
    st->head = parley_info_seq(info);
    parley_info_destroy(&info);
    assert_int_equal(st->head, 0);
    s_flow(st, "start");

    /* The raw signer used below must produce what parleyd accepts. */
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "raw-signed control");
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    assert_int_equal(ph_sign_raw(&st->mediator, &u, env, sizeof(env), &len), 0);
    parley__reply_t r;
    assert_int_equal(ph_api_publish(&st->api, env, len, S_TIMEOUT, &r, NULL),
                     0);
    char d[512];
    if (r.type != PARLEY__REPLY_ACK || r.seq != st->head + 1)
        fail_msg("raw-signed valid update: %s",
                 ph_reply_describe(&r, d, sizeof(d)));
    s_expect_delivery(st, r.seq, u.headline);
    st->head = r.seq;

    /* The limited signer may publish for its own party. */
    ph_update_init(&u, "gaza-ceasefire", "israel", 1,
                   "israel within its rights");
    len = s_sign(&st->israel, &u, env);
    assert_int_equal(ph_api_publish(&st->api, env, len, S_TIMEOUT, &r, NULL),
                     0);
    if (r.type != PARLEY__REPLY_ACK || r.seq != st->head + 1)
        fail_msg("israel-mfa publishing for israel: %s",
                 ph_reply_describe(&r, d, sizeof(d)));
    s_expect_delivery(st, r.seq, u.headline);
    st->head = r.seq;
    st->test_ok = true;
}

static void
test_bad_signature(void **state)
{
    s_state_t *st = *state;
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1,
                   "forged: one signature bit flipped");
    uint8_t env[PARLEY_ENVELOPE_MAX], forged[PARLEY_ENVELOPE_MAX];
    size_t len = s_sign(&st->mediator, &u, env), flen = 0;
    /* Flip one bit of the signature, keeping the envelope well-formed. */
    uint8_t abuf[16384];
    parley__arena_t arena;
    parley__envelope_t e;
    parley__arena_init(&arena, abuf, sizeof(abuf));
    assert_int_equal(parley__envelope_decode(env, len, &e, &arena), 0);
    e.signature[17] ^= 0x01;
    assert_int_equal(parley__envelope_encode(e.body.data, e.body.len, e.signer,
                                             e.signature, forged,
                                             sizeof(forged), &flen),
                     0);
    parley__arena_reset(&arena);
    s_reject_env(st, forged, flen, PARLEY_EBADSIG, "rejected_bad_signature",
                 "flipped signature bit");

    /* A body changed after signing is a forgery too. */
    parley__arena_init(&arena, abuf, sizeof(abuf));
    assert_int_equal(parley__envelope_decode(env, len, &e, &arena), 0);
    uint8_t body[PARLEY_ENVELOPE_MAX];
    memcpy(body, e.body.data, e.body.len);
    char *h = memmem(body, e.body.len, "forged", 6);
    assert_non_null(h);
    memcpy(h, "FORGED", 6);
    assert_int_equal(parley__envelope_encode(body, e.body.len, e.signer,
                                             e.signature, forged,
                                             sizeof(forged), &flen),
                     0);
    parley__arena_reset(&arena);
    s_reject_env(st, forged, flen, PARLEY_EBADSIG, "rejected_bad_signature",
                 "body changed after signing");
    st->test_ok = true;
}

static void
test_unknown_signer(void **state)
{
    s_state_t *st = *state;
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "us", 2,
                   "signed by a key not in the keyring");
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = s_sign(&st->stranger, &u, env);
    s_reject_env(st, env, len, PARLEY_EUNKNOWNSIGNER, "rejected_unknown_signer",
                 "unknown signer");
    st->test_ok = true;
}

static void
test_forbidden(void **state)
{
    s_state_t *st = *state;
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1,
                   "israel-mfa speaking for hamas");
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = s_sign(&st->israel, &u, env);
    s_reject_env(st, env, len, PARLEY_EFORBIDDEN, "rejected_forbidden",
                 "party outside the signer's keyring line");

    /* Every party must be allowed, not just one of them. */
    ph_update_init(&u, "gaza-ceasefire", "israel", 1,
                   "israel-mfa speaking for israel and hamas");
    snprintf(u.parties[1], sizeof(u.parties[1]), "hamas");
    u.n_parties = 2;
    len = s_sign(&st->israel, &u, env);
    s_reject_env(st, env, len, PARLEY_EFORBIDDEN, "rejected_forbidden",
                 "one of two parties outside the keyring line");
    st->test_ok = true;
}

static void
test_stale_and_future(void **state)
{
    s_state_t *st = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    ph_update_init(&u, "gaza-ceasefire", "egypt", 1, "issued an hour ago");
    u.issued_at = parley_now_ms() - 3600 * 1000;
    size_t len = s_sign(&st->mediator, &u, env);
    s_reject_env(st, env, len, PARLEY_ESTALE, "rejected_stale",
                 "issued_at one hour in the past (skew 60 s)");

    ph_update_init(&u, "gaza-ceasefire", "egypt", 1, "issued an hour from now");
    u.issued_at = parley_now_ms() + 3600 * 1000;
    len = s_sign(&st->mediator, &u, env);
    s_reject_env(st, env, len, PARLEY_EFUTURE, "rejected_future",
                 "issued_at one hour in the future (skew 60 s)");

    /*
     * A refused update changes no state: its signer_seq is not recorded,
     * so a valid update from the same signer may use it next.
     */
    ph_update_init(&u, "gaza-ceasefire", "israel", 2, "israel: stale attempt");
    u.issued_at = parley_now_ms() - 3600 * 1000;
    uint64_t seq_again = u.signer_seq;
    len = s_sign(&st->israel, &u, env);
    s_reject_env(st, env, len, PARLEY_ESTALE, "rejected_stale",
                 "israel-mfa issued_at one hour in the past");
    ph_update_init(&u, "gaza-ceasefire", "israel", 2,
                   "israel: same signer_seq, fresh issued_at");
    u.signer_seq = seq_again;
    len = s_sign(&st->israel, &u, env);
    parley__reply_t r;
    char d[512];
    assert_int_equal(ph_api_publish(&st->api, env, len, S_TIMEOUT, &r, NULL),
                     0);
    if (r.type != PARLEY__REPLY_ACK || r.seq != st->head + 1)
        fail_msg("the signer_seq of a rejected update was consumed: %s",
                 ph_reply_describe(&r, d, sizeof(d)));
    s_expect_delivery(st, r.seq, u.headline);
    st->head = r.seq;
    st->test_ok = true;
}

static void
test_replay(void **state)
{
    s_state_t *st = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    parley__reply_t r;
    char d[512];

    ph_update_init(&u, "gaza-ceasefire", "us", 1,
                   "US bridging proposal presented");
    uint64_t signer_seq = u.signer_seq;
    st->kept_len = s_sign(&st->mediator, &u, st->kept);
    assert_int_equal(
        ph_api_publish(&st->api, st->kept, st->kept_len, S_TIMEOUT, &r, NULL),
        0);
    if (r.type != PARLEY__REPLY_ACK || r.seq != st->head + 1 || r.duplicate)
        fail_msg("first publish: %s", ph_reply_describe(&r, d, sizeof(d)));
    st->kept_seq = r.seq;
    s_expect_delivery(st, r.seq, u.headline);
    st->head = r.seq;

    /* Same signer_seq, other bytes. */
    ph_update_init(&u, "gaza-ceasefire", "us", 1,
                   "US bridging proposal withdrawn");
    u.signer_seq = signer_seq;
    size_t len = s_sign(&st->mediator, &u, env);
    s_reject_env(st, env, len, PARLEY_EREPLAY, "rejected_replay",
                 "signer_seq equal to an accepted one");

    /* A lower signer_seq. */
    ph_update_init(&u, "gaza-ceasefire", "us", 1, "an older statement");
    u.signer_seq = signer_seq - 1;
    len = s_sign(&st->mediator, &u, env);
    s_reject_env(st, env, len, PARLEY_EREPLAY, "rejected_replay",
                 "signer_seq below an accepted one");
    st->test_ok = true;
}

static void
test_duplicate(void **state)
{
    s_state_t *st = *state;
    assert_true(st->kept_len > 0); /* test_replay ran */
    ph_stats_t before, after;
    parley__reply_t r;
    char d[512];

    s_stats(st, &before);
    assert_int_equal(
        ph_api_publish(&st->api, st->kept, st->kept_len, S_TIMEOUT, &r, NULL),
        0);
    if (r.type != PARLEY__REPLY_ACK || !r.duplicate || r.seq != st->kept_seq)
        fail_msg("identical bytes resent: expected ack seq=%" PRIu64
                 " duplicate=1, got %s",
                 st->kept_seq, ph_reply_describe(&r, d, sizeof(d)));
    s_stats(st, &after);
    const char *expect[] = { "duplicates=1", NULL };
    if (ph_stats_expect(&before, &after, expect) != 0)
        fail_msg("duplicate: counters off (see above)");

    /* The library reports the flag the same way. */
    uint64_t id = 0, seq = 0;
    int dup = 0;
    assert_int_equal(parley_pub_send(st->pub, st->kept, st->kept_len, &id), 0);
    uint64_t rid = 0;
    int rc = ph_recv(st->pub, S_TIMEOUT, &rid, &seq, &dup);
    if (rc != 0)
        fail_msg("parley_pub_recv on a duplicate: %s", parley_error_name(rc));
    assert_int_equal(rid, id);
    assert_int_equal(seq, st->kept_seq);
    assert_int_equal(dup, 1);

    /* No delivery for either resend: the next one is a new update. */
    s_flow(st, "duplicate resends");
    st->test_ok = true;
}

static void
test_malformed(void **state)
{
    s_state_t *st = *state;
    static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

    /* The request itself does not decode. */
    const void *f1[] = { garbage };
    size_t l1[] = { sizeof(garbage) };
    s_reject_frames(st, f1, l1, 1, PARLEY_EMALFORMED, "rejected_malformed",
                    "garbage bytes as ApiRequest");

    /* A publish whose envelope does not decode. */
    s_reject_env(st, garbage, sizeof(garbage), PARLEY_EMALFORMED,
                 "rejected_malformed", "garbage envelope");

    /* An envelope that decodes but whose signer is 31 bytes. */
    uint8_t env[3 + 2 + 31 + 2 + 64];
    size_t n = 0;
    env[n++] = 0x0a; /* body, 1 byte */
    env[n++] = 0x01;
    env[n++] = 'x';
    env[n++] = 0x12; /* signer, 31 bytes */
    env[n++] = 31;
    memset(env + n, 0x42, 31);
    n += 31;
    env[n++] = 0x1a; /* signature, 64 bytes */
    env[n++] = 64;
    memset(env + n, 0x43, 64);
    n += 64;
    s_reject_env(st, env, n, PARLEY_EMALFORMED, "rejected_malformed",
                 "31-byte signer in the envelope");

    /* A valid publish followed by two more frames: wrong frame count. */
    parley_update_t u;
    uint8_t signed_env[PARLEY_ENVELOPE_MAX], req[PARLEY_ENVELOPE_MAX + 64];
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1, "sent in three frames");
    size_t elen = s_sign(&st->mediator, &u, signed_env), rlen = 0;
    parley__request_t *rq = calloc(1, sizeof(*rq));
    assert_non_null(rq);
    rq->request_id = 77;
    rq->op = PARLEY__OP_PUBLISH;
    rq->update.data = signed_env;
    rq->update.len = elen;
    assert_int_equal(parley__request_encode(rq, req, sizeof(req), &rlen), 0);
    free(rq);
    const void *f3[] = { req, "x", "y" };
    size_t l3[] = { rlen, 1, 1 };
    s_reject_frames(st, f3, l3, 3, PARLEY_EMALFORMED, "rejected_malformed",
                    "publish request in three frames");
    st->test_ok = true;
}

/*
 * Check 2 also wants the canonical envelope, the bytes parley_sign()
 * writes: one with a field added is refused as malformed and says why.
 * That closes what an on-path attacker (curve off) could do with the
 * bytes of an update in flight: add a field so that the altered copy
 * is stored and the publisher's resend of its own bytes is answered
 * replay. Now the altered copy is refused, the resend is accepted, and
 * a resend of that is its duplicate.
 */
static void
test_non_canonical_envelope(void **state)
{
    s_state_t *st = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX], bad[PARLEY_ENVELOPE_MAX + 16];
    static const uint8_t extra[] = { 0x22, 0x04, 'e', 'v', 'i', 'l' };
    ph_update_init(&u, "gaza-ceasefire", "egypt", 2, "altered on the way");
    size_t len = s_sign(&st->mediator, &u, env);
    memcpy(bad, env, len);
    memcpy(bad + len, extra, sizeof(extra));

    ph_stats_t before, after;
    parley__reply_t r;
    char d[512];
    s_stats(st, &before);
    assert_int_equal(ph_api_publish(&st->api, bad, len + sizeof(extra),
                                    S_TIMEOUT, &r, NULL),
                     0);
    s_assert_reject(&r, PARLEY_EMALFORMED, "an envelope with a field added");
    if (r.message == NULL || strstr(r.message, "envelope not canonical") == NULL)
        fail_msg("the reject does not say why: \"%s\"",
                 r.message != NULL ? r.message : "");
    s_stats(st, &after);
    s_stats_check(&before, &after, "rejected_malformed",
                  "an envelope with a field added");

    /* The publisher's own bytes: a new seq, then its duplicate. */
    assert_int_equal(ph_api_publish(&st->api, env, len, S_TIMEOUT, &r, NULL),
                     0);
    if (r.type != PARLEY__REPLY_ACK || r.duplicate || r.seq != st->head + 1)
        fail_msg("the publisher's resend: expected ack seq=%" PRIu64
                 ", got %s",
                 st->head + 1, ph_reply_describe(&r, d, sizeof(d)));
    uint64_t seq = r.seq;
    s_expect_delivery(st, seq, "altered on the way");
    st->head = seq;
    assert_int_equal(ph_api_publish(&st->api, env, len, S_TIMEOUT, &r, NULL),
                     0);
    if (r.type != PARLEY__REPLY_ACK || !r.duplicate || r.seq != seq)
        fail_msg("a second resend: expected ack seq=%" PRIu64
                 " duplicate=1, got %s",
                 seq, ph_reply_describe(&r, d, sizeof(d)));
    /* The altered copy comes too late now as well: still malformed. */
    s_reject_env(st, bad, len + sizeof(extra), PARLEY_EMALFORMED,
                 "rejected_malformed", "the altered copy after the original");
    st->test_ok = true;
}

static void
test_too_large(void **state)
{
    s_state_t *st = *state;
    /* One frame of 70000 bytes: over the default max_message_bytes 65536. */
    size_t big = 70000;
    uint8_t *env = malloc(big);
    assert_non_null(env);
    memset(env, 'x', big);
    parley__request_t *rq = calloc(1, sizeof(*rq));
    uint8_t *req = malloc(big + 64);
    assert_non_null(rq);
    assert_non_null(req);
    size_t rlen = 0;
    rq->request_id = 78;
    rq->op = PARLEY__OP_PUBLISH;
    rq->update.data = env;
    rq->update.len = big;
    assert_int_equal(parley__request_encode(rq, req, big + 64, &rlen), 0);
    assert_true(rlen > 65536);
    const void *f[] = { req };
    size_t l[] = { rlen };
    s_reject_frames(st, f, l, 1, PARLEY_ETOOLARGE, "rejected_too_large",
                    "70000-byte request");
    free(rq);
    free(req);
    free(env);
    st->test_ok = true;
}

static void
test_invalid(void **state)
{
    s_state_t *st = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;

    /* Invalid UTF-8 in the headline, correctly signed. */
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1, "");
    static const char bad[] = { 'b', 'a', 'd', ' ', (char)0xC3, 0x28,
                                ' ', 'u', 't', 'f', '8',        0 };
    memcpy(u.headline, bad, sizeof(bad));
    assert_int_equal(parley_update_validate(&u, NULL, 0), PARLEY_EINVALID);
    assert_int_equal(ph_sign_raw(&st->mediator, &u, env, sizeof(env), &len), 0);
    s_reject_env(st, env, len, PARLEY_EINVALID, "rejected_invalid",
                 "headline with bytes C3 28");

    /* A negotiation that is not a slug. */
    ph_update_init(&u, "Gaza Ceasefire", "hamas", 1, "negotiation not a slug");
    assert_int_equal(ph_sign_raw(&st->mediator, &u, env, sizeof(env), &len), 0);
    s_reject_env(st, env, len, PARLEY_EINVALID, "rejected_invalid",
                 "negotiation \"Gaza Ceasefire\"");

    /* An empty headline. */
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1, "");
    assert_int_equal(ph_sign_raw(&st->mediator, &u, env, sizeof(env), &len), 0);
    s_reject_env(st, env, len, PARLEY_EINVALID, "rejected_invalid",
                 "empty headline");
    st->test_ok = true;
}

/* The library gives its caller the daemon's reason: the code, and the
 * daemon's text with its detail (parley_pub_detail()). */
static void
test_library_reports_codes(void **state)
{
    s_state_t *st = *state;
    ph_stats_t before, after;
    parley_update_t u;

    parley_pub_t *stranger = ph_pub_new(st->daemon.api, st->stranger.key, NULL, 0);
    assert_non_null(stranger);
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "stranger via library");
    s_stats(st, &before);
    int rc = parley_pub_publish(stranger, &u, NULL);
    if (rc != PARLEY_EUNKNOWNSIGNER)
        fail_msg("parley_pub_publish with an unknown key returned %s, expected "
                 "unknown_signer",
                 parley_error_name(rc));
    /* "signer is not in the keyring: signer <key id>" */
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(st->stranger.pk, id);
    const char *detail = parley_pub_detail(stranger);
    printf("[rejects] unknown signer: \"%s\"\n", detail);
    assert_true(strncmp(detail, parley_strerror(rc),
                        strlen(parley_strerror(rc)))
                == 0);
    assert_non_null(strstr(detail, id));
    assert_false(parley_error_retryable(rc));
    parley_pub_destroy(&stranger);
    assert_null(stranger);
    s_stats(st, &after);
    s_stats_check(&before, &after, "rejected_unknown_signer",
                  "library: unknown");
    s_flow(st, "library unknown signer");

    ph_update_init(&u, "gaza-ceasefire", "qatar", 0,
                   "from the future via library");
    u.issued_at = parley_now_ms() + 3600 * 1000;
    u.signer_seq = 0;
    s_stats(st, &before);
    rc = parley_pub_publish(st->pub, &u, NULL);
    if (rc != PARLEY_EFUTURE)
        fail_msg("parley_pub_publish with issued_at +1h returned %s, expected "
                 "future",
                 parley_error_name(rc));
    assert_string_equal(parley_pub_detail(st->pub), parley_strerror(rc));
    assert_true(parley_error_retryable(rc));
    s_stats(st, &after);
    s_stats_check(&before, &after, "rejected_future", "library: future");
    s_flow(st, "library future");

    /* A rule the update breaks is found before anything is sent, and
     * named: nothing reaches the daemon. */
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "");
    s_stats(st, &before);
    rc = parley_pub_publish(st->pub, &u, NULL);
    assert_int_equal(rc, PARLEY_EINVALID);
    printf("[rejects] empty headline: \"%s\"\n", parley_pub_detail(st->pub));
    assert_true(strncmp(parley_pub_detail(st->pub), "headline:", 9) == 0);
    ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "a correction of nothing");
    u.kind = PARLEY_KIND_CORRECTION;
    rc = parley_pub_publish(st->pub, &u, NULL);
    assert_int_equal(rc, PARLEY_EINVALID);
    assert_true(strncmp(parley_pub_detail(st->pub), "references:", 11) == 0);
    s_stats(st, &after);
    assert_int_equal(ph_stats_get(&after, "requests_publish", NULL),
                     ph_stats_get(&before, "requests_publish", NULL));
    st->test_ok = true;
}

/* After all that abuse, SIGTERM still gives a clean exit. */
static void
test_clean_stop(void **state)
{
    s_state_t *st = *state;
    parley_sub_destroy(&st->sub);
    parley_pub_destroy(&st->pub);
    ph_api_close(&st->api);
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d (expected 0)", status);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_baseline, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_bad_signature, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_unknown_signer, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_forbidden, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_stale_and_future, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_replay, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_duplicate, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_malformed, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_non_canonical_envelope, s_begin,
                                        s_end),
        cmocka_unit_test_setup_teardown(test_too_large, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_invalid, s_begin, s_end),
        cmocka_unit_test_setup_teardown(test_library_reports_codes, s_begin,
                                        s_end),
        cmocka_unit_test_setup_teardown(test_clean_stop, s_begin, s_end),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
