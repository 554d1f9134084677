/*
 * test_ingest.c - the write path without sockets: ingest driven with
 * plain messages through its io hooks, over a real embedded storage
 * (fsync'd segment files in a scratch directory) and real Ed25519
 * signatures from fixed-seed keys.
 *
 * The hooks record every event in order (replies, answers handed back
 * to the api, flushes, feed publishes, and where a test asks for them
 * the transparency log's leaves), so the tests check what a client and a
 * subscriber would see: accepts with gap-free seqs, every reject code of
 * the publish checks, duplicates, one group commit per turn, that no
 * delivery is published before its ack went out, and that a delivery
 * does not wait for its leaf; and, when the
 * log cannot be written (a file size limit stands in for a full disk),
 * that nothing not durable is acked, publishes are answered unavailable
 * at once with the reason, and the retry publishes what waited.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "datapath.h"
#include "facts.h"
#include "fsize.h"
#include "ingest.h"
#include "sign.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- the hooks */

typedef enum {
    EV_REPLY,
    EV_ANSWER,
    EV_FLUSH,
    EV_PUBLISH,
    EV_LEAF,     /* a record handed to the transparency log (applied) */
    EV_TREE      /* the transparency log's commit (committed) */
} ev_kind_t;

/* One thing ingest did, in order. */
typedef struct {
    ev_kind_t kind;
    int type;              /* EV_REPLY: PARLEY__REPLY_ACK or _REJECT */
    uint64_t request_id;   /* EV_REPLY, EV_ANSWER */
    uint64_t seq;          /* EV_REPLY ack, EV_PUBLISH, EV_LEAF */
    bool duplicate;
    int code;              /* EV_REPLY reject */
    bool revoked;          /* EV_REPLY: an ack the flush turned into a
                              reject (above the durable head) */
    char message[192];     /* EV_REPLY reject: the detail the client is told */
    uint64_t durable;      /* EV_FLUSH: the storage's head */
    uint64_t signer_seq;   /* EV_REPLY reject: the signer's last (replay) */
    size_t n_topics;       /* EV_PUBLISH */
    char topics[4][PARLEY_TOPIC_MAX];
    char detail[160];      /* EV_REPLY reject: what the log line adds */
} ev_t;

/* A message waiting to be read. */
typedef struct {
    uint8_t id[4];
    size_t id_len;
    uint8_t *body;
    size_t len;
    int frames;
} in_t;

typedef struct {
    dp_t dp;
    pd_ingest_t *ing;
    in_t *in;              /* messages to read, in order */
    size_t n_in, next_in, cap_in;
    ev_t *ev;
    size_t n_ev, cap_ev;
    size_t queue_max;      /* replies the "queue" holds between flushes */
    size_t queued;
    size_t last_flush;     /* events before this one were flushed */
    bool tree;             /* with the transparency log's hooks */
} fx_t;

static ev_t *
s_event(fx_t *f, ev_kind_t kind)
{
    if (f->n_ev == f->cap_ev) {
        f->cap_ev = f->cap_ev ? 2 * f->cap_ev : 256;
        f->ev = realloc(f->ev, f->cap_ev * sizeof(*f->ev));
        assert_non_null(f->ev);
    }
    ev_t *e = &f->ev[f->n_ev++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    return e;
}

static int
s_recv(void *ctx, pd_msg_t *msg)
{
    fx_t *f = ctx;
    if (f->next_in == f->n_in)
        return 0;
    in_t *m = &f->in[f->next_in++];
    assert_int_equal(zmq_msg_init_size(&msg->id, m->id_len), 0);
    memcpy(zmq_msg_data(&msg->id), m->id, m->id_len);
    assert_int_equal(zmq_msg_init_size(&msg->body, m->len), 0);
    if (m->len > 0)
        memcpy(zmq_msg_data(&msg->body), m->body, m->len);
    msg->frames = m->frames;
    return 1;
}

static void
s_answer(void *ctx, pd_msg_t *msg)
{
    ev_t *e = s_event(ctx, EV_ANSWER);
    e->request_id = parley__facts_request_id(zmq_msg_data(&msg->body),
                                             zmq_msg_size(&msg->body));
}

static int
s_reply(void *ctx, const uint8_t *id, size_t id_len, const parley__reply_t *r,
        const char *detail)
{
    fx_t *f = ctx;
    assert_true(id_len > 0 && id_len <= 4);
    if (f->queued == f->queue_max)
        return -ENOBUFS;
    f->queued++;
    ev_t *e = s_event(f, EV_REPLY);
    e->type = r->type;
    e->request_id = r->request_id;
    e->seq = r->seq;
    e->duplicate = r->duplicate;
    e->code = r->code;
    if (detail != NULL)
        snprintf(e->message, sizeof(e->message), "%s", detail);
    e->signer_seq = r->signer_seq;
    snprintf(e->detail, sizeof(e->detail), "%s", detail != NULL ? detail : "");
    (void)id;
    return 0;
}

static bool
s_room(void *ctx, size_t id_len)
{
    fx_t *f = ctx;
    (void)id_len;
    return f->queued < f->queue_max;
}

/* As the api does: an ack above the durable head goes out as a reject
 * unavailable, with why. */
static void
s_flush(void *ctx, uint64_t durable, const char *why)
{
    fx_t *f = ctx;
    for (size_t i = f->last_flush; i < f->n_ev; i++) {
        ev_t *e = &f->ev[i];
        if (e->kind == EV_REPLY && e->type == PARLEY__REPLY_ACK
            && e->seq > durable) {
            e->type = PARLEY__REPLY_REJECT;
            e->code = PARLEY_EUNAVAILABLE;
            e->revoked = true;
            snprintf(e->message, sizeof(e->message), "%s",
                     why != NULL ? why : "");
        }
    }
    f->queued = 0;
    s_event(f, EV_FLUSH)->durable = durable;
    f->last_flush = f->n_ev;
}

static int
s_publish(void *ctx, uint64_t seq, int64_t received_at, const void *env,
          size_t len, const char topics[][PARLEY_TOPIC_MAX], size_t n)
{
    (void)received_at;
    (void)env;
    (void)len;
    ev_t *e = s_event(ctx, EV_PUBLISH);
    e->seq = seq;
    e->n_topics = n;
    for (size_t i = 0; i < n && i < 4; i++)
        memcpy(e->topics[i], topics[i], PARLEY_TOPIC_MAX);
    return 0;
}

/* The transparency log's hooks: record the leaf, and the commit. */
static int
s_leaf(void *ctx, const pd_storage_record_t *rec)
{
    s_event(ctx, EV_LEAF)->seq = rec->seq;
    return 0;
}

static int
s_tree_commit(void *ctx)
{
    s_event(ctx, EV_TREE);
    return 0;
}

/* Make the ingest over the fixture's storage (after any config change);
 * with f->tree, with the transparency log's hooks too. */
static void
s_make_ingest(fx_t *f)
{
    pd_ingest_io_t io = { .ctx = f,
                          .recv = s_recv,
                          .answer = s_answer,
                          .reply = s_reply,
                          .room = s_room,
                          .flush = s_flush,
                          .publish = s_publish,
                          .feed = f };
    if (f->tree) {
        io.applied = s_leaf;
        io.committed = s_tree_commit;
        io.log = f;
    }
    int err = 0;
    pd_ingest_destroy(&f->ing);
    f->ing = pd_ingest_new(&f->dp.cfg, f->dp.storage, &io, f->dp.stats, &err);
    assert_non_null(f->ing);
    pd_ingest_set_keyring(f->ing, f->dp.ring);
}

static int
s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (f == NULL || dp_setup(&f->dp, true) < 0)
        return -1;
    f->dp.cfg.rate_limit = 0; /* off unless a test turns it on */
    f->queue_max = SIZE_MAX;
    s_make_ingest(f);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fx_t *f = *state;
    pd_ingest_destroy(&f->ing);
    dp_teardown(&f->dp);
    for (size_t i = 0; i < f->n_in; i++)
        free(f->in[i].body);
    free(f->in);
    free(f->ev);
    free(f);
    return 0;
}

/* ------------------------------------------------------------- requests */

/* Queue a raw message from connection `conn`. */
static void
s_push_raw(fx_t *f, uint8_t conn, const void *body, size_t len, int frames)
{
    if (f->n_in == f->cap_in) {
        f->cap_in = f->cap_in ? 2 * f->cap_in : 64;
        f->in = realloc(f->in, f->cap_in * sizeof(*f->in));
        assert_non_null(f->in);
    }
    in_t *m = &f->in[f->n_in++];
    memset(m, 0, sizeof(*m));
    m->id[0] = 0;
    m->id[1] = conn;
    m->id_len = 2;
    m->body = malloc(len > 0 ? len : 1);
    assert_non_null(m->body);
    memcpy(m->body, body, len);
    m->len = len;
    m->frames = frames;
}

/* Queue a publish of the envelope env as request rid. */
static void
s_push_env(fx_t *f, uint8_t conn, uint64_t rid, const uint8_t *env,
           size_t len)
{
    static parley__request_t q;
    uint8_t buf[PARLEY_ENVELOPE_MAX + 64];
    size_t n;
    memset(&q, 0, sizeof(q));
    q.request_id = rid;
    q.op = PARLEY__OP_PUBLISH;
    q.update = (parley__bytes_t){ env, len };
    assert_int_equal(parley__request_encode(&q, buf, sizeof(buf), &n), 0);
    s_push_raw(f, conn, buf, n, 2);
}

/* Queue a publish of u signed by key, as request rid. */
static void
s_push(fx_t *f, uint8_t conn, uint64_t rid, const parley_key_t *key,
       const parley_update_t *u)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = dp_sign(key, u, env);
    assert_true(len > 0);
    s_push_env(f, conn, rid, env, len);
}

/* Queue a request of another op (ping) as rid. */
static void
s_push_ping(fx_t *f, uint8_t conn, uint64_t rid)
{
    static parley__request_t q;
    uint8_t buf[64];
    size_t n;
    memset(&q, 0, sizeof(q));
    q.request_id = rid;
    q.op = PARLEY__OP_PING;
    assert_int_equal(parley__request_encode(&q, buf, sizeof(buf), &n), 0);
    s_push_raw(f, conn, buf, n, 2);
}

/* The reply event to request rid (fails if there is none). */
static const ev_t *
s_reply_to(const fx_t *f, uint64_t rid)
{
    for (size_t i = 0; i < f->n_ev; i++)
        if (f->ev[i].kind == EV_REPLY && f->ev[i].request_id == rid)
            return &f->ev[i];
    fail_msg("no reply to request %llu", (unsigned long long)rid);
    return NULL;
}

static void
s_expect_ack(const fx_t *f, uint64_t rid, uint64_t seq, bool duplicate)
{
    const ev_t *e = s_reply_to(f, rid);
    assert_int_equal(e->type, PARLEY__REPLY_ACK);
    assert_int_equal(e->seq, seq);
    assert_int_equal(e->duplicate, duplicate);
}

static void
s_expect_reject(const fx_t *f, uint64_t rid, int code)
{
    const ev_t *e = s_reply_to(f, rid);
    if (e->type != PARLEY__REPLY_REJECT || e->code != code)
        fail_msg("request %llu: wanted reject %s, got type %d code %s",
                 (unsigned long long)rid, parley_error_name(code), e->type,
                 parley_error_name(e->code));
}

/*
 * What a client and a subscriber can rely on, over all events: each
 * seq is published once, after a flush that followed its ack, and in
 * ascending order without gaps.
 */
static void
s_check_ack_before_feed(const fx_t *f)
{
    uint64_t next = 1;
    for (size_t i = 0; i < f->n_ev; i++) {
        const ev_t *p = &f->ev[i];
        if (p->kind != EV_PUBLISH)
            continue;
        assert_int_equal(p->seq, next++);
        size_t ack = SIZE_MAX, flush = SIZE_MAX;
        for (size_t k = 0; k < i; k++) {
            const ev_t *e = &f->ev[k];
            if (e->kind == EV_REPLY && e->type == PARLEY__REPLY_ACK
                && !e->duplicate && e->seq == p->seq)
                ack = k;
            if (e->kind == EV_FLUSH && ack != SIZE_MAX)
                flush = k;
        }
        assert_true(ack != SIZE_MAX);
        assert_true(flush != SIZE_MAX && flush > ack);
    }
}

static size_t
s_count(const fx_t *f, ev_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_ev; i++)
        n += f->ev[i].kind == kind;
    return n;
}

/* ---------------------------------------------------------------- tests */

/* Updates of two signers in one turn: acked 1..3 in request order, one
 * flush, then published with their topics; durable in the storage. */
static void
test_accept(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    dp_update(&u, NULL, "egypt", 1, 100);
    s_push(f, 1, 11, f->dp.keys[0], &u);
    dp_update(&u, NULL, "qatar", 2, 100);
    s_push(f, 2, 12, f->dp.keys[1], &u);
    dp_update(&u, NULL, "us", 0, 101);
    s_push(f, 1, 13, f->dp.keys[0], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    assert_false(pd_ingest_pending(f->ing));

    s_expect_ack(f, 11, 1, false);
    s_expect_ack(f, 12, 2, false);
    s_expect_ack(f, 13, 3, false);
    assert_int_equal(s_count(f, EV_FLUSH), 1);
    assert_int_equal(s_count(f, EV_PUBLISH), 3);
    s_check_ack_before_feed(f);
    const ev_t *p = &f->ev[f->n_ev - 3];
    assert_int_equal(p->n_topics, 4);
    assert_string_equal(p->topics[0], "all/");
    assert_string_equal(p->topics[1], "neg/gaza-ceasefire/");
    assert_string_equal(p->topics[2], "party/egypt/");
    assert_string_equal(p->topics[3], "phase/1/");

    assert_int_equal(pd_storage_head(f->dp.storage), 3);
    uint8_t buf[PARLEY_ENVELOPE_MAX];
    size_t len;
    int64_t at;
    assert_int_equal(pd_storage_read(f->dp.storage, 2, &at, buf, sizeof(buf),
                                     &len), 0);
    pd_stats_t *st = f->dp.stats;
    assert_int_equal(pd_stats_get(st, PD_STAT_ACCEPTED), 3);
    assert_int_equal(pd_stats_get(st, PD_STAT_REQUESTS_PUBLISH), 3);
    assert_int_equal(pd_stats_get(st, PD_STAT_STORE_SYNCS), 1);
    assert_int_equal(pd_stats_get(st, PD_STAT_TURN_REQUESTS_MAX), 3);
}

/*
 * A turn's records go on the feed before the transparency log takes
 * them (a leaf is bookkeeping no reply waits for): after the acks'
 * flush, each record's delivery, then its leaf, in seq order; then the
 * tree's commit, once.
 */
static void
test_feed_before_leaf(void **state)
{
    fx_t *f = *state;
    f->tree = true;
    s_make_ingest(f);
    parley_update_t u;
    dp_update(&u, NULL, "egypt", 1, 100);
    s_push(f, 1, 11, f->dp.keys[0], &u);
    dp_update(&u, NULL, "qatar", 2, 100);
    s_push(f, 2, 12, f->dp.keys[1], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_check_ack_before_feed(f);
    static const ev_kind_t want[] = { EV_REPLY, EV_REPLY, EV_FLUSH,
                                      EV_PUBLISH, EV_LEAF, EV_PUBLISH,
                                      EV_LEAF, EV_TREE };
    assert_int_equal(f->n_ev, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < f->n_ev; i++)
        assert_int_equal(f->ev[i].kind, want[i]);
    assert_int_equal(f->ev[3].seq, 1);
    assert_int_equal(f->ev[4].seq, 1);
    assert_int_equal(f->ev[5].seq, 2);
    assert_int_equal(f->ev[6].seq, 2);
}

/*
 * Check 8: a resend of the same bytes is acked with the original seq
 * (from the log, and from the batch of the same turn); anything else at
 * or below the signer's last signer_seq is a replay. No state changes.
 */
static void
test_duplicate_and_replay(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    dp_update(&u, NULL, "egypt", 1, 500);
    size_t len = dp_sign(f->dp.keys[0], &u, env);
    s_push_env(f, 1, 1, env, len);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_ack(f, 1, 1, false);

    /* The next turn: a resend, an edit under the same signer_seq, an
     * older signer_seq, a new one and its resend in the same batch. */
    s_push_env(f, 1, 2, env, len);
    strcpy(u.headline, "edited");
    s_push(f, 1, 3, f->dp.keys[0], &u);
    dp_update(&u, NULL, "egypt", 1, 499);
    s_push(f, 1, 4, f->dp.keys[0], &u);
    dp_update(&u, NULL, "egypt", 1, 501);
    uint8_t env2[PARLEY_ENVELOPE_MAX];
    size_t len2 = dp_sign(f->dp.keys[0], &u, env2);
    s_push_env(f, 1, 5, env2, len2);
    s_push_env(f, 2, 6, env2, len2);
    assert_int_equal(pd_ingest_turn(f->ing), 0);

    s_expect_ack(f, 2, 1, true);
    s_expect_reject(f, 3, PARLEY_EREPLAY);
    s_expect_reject(f, 4, PARLEY_EREPLAY);
    /* A replay says the signer's last accepted signer_seq, so that a
     * publisher whose choice collided can choose above it. */
    assert_int_equal(s_reply_to(f, 3)->signer_seq, 500);
    assert_int_equal(s_reply_to(f, 4)->signer_seq, 500);
    s_expect_ack(f, 5, 2, false);
    s_expect_ack(f, 6, 2, true);
    assert_int_equal(pd_storage_head(f->dp.storage), 2);
    assert_int_equal(s_count(f, EV_PUBLISH), 2);
    s_check_ack_before_feed(f);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_DUPLICATES), 2);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_ACCEPTED), 2);

    /* After a restart the table is rebuilt from the log. */
    assert_int_equal(dp_open_storage(&f->dp), 0);
    s_make_ingest(f);
    s_push_env(f, 3, 7, env, len);
    s_push_env(f, 3, 8, env2, len2);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_ack(f, 7, 1, true);
    s_expect_ack(f, 8, 2, true);
}

/* Every reject code of checks 1-7: each answered, none stored. */
static void
test_rejects(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;

    dp_update(&u, NULL, "egypt", 1, 1);
    s_push(f, 1, 1, f->dp.stranger, &u); /* unknown_signer */
    len = dp_sign(f->dp.keys[0], &u, env);
    env[len - 1] ^= 0x01;                /* bad_signature */
    s_push_env(f, 1, 2, env, len);
    s_push(f, 1, 3, f->dp.keys[3], &u);  /* forbidden: only other-talks */
    dp_update(&u, NULL, "egypt", 1, 2);
    u.issued_at -= 3600 * 1000;          /* stale */
    s_push(f, 1, 4, f->dp.keys[0], &u);
    dp_update(&u, NULL, "egypt", 1, 3);
    u.issued_at += 3600 * 1000;          /* future */
    s_push(f, 1, 5, f->dp.keys[0], &u);
    static const uint8_t junk[] = { 0x0a, 0x03, 'x', 'y' };
    s_push_env(f, 1, 6, junk, sizeof(junk)); /* malformed envelope */

    /* invalid: a body that decodes but breaks a rule (no headline),
     * correctly signed. */
    dp_update(&u, NULL, "egypt", 1, 4);
    u.headline[0] = '\0';
    uint8_t body[PARLEY_ENVELOPE_MAX], sig[PARLEY_SIGNATURE_BYTES];
    size_t blen;
    assert_int_equal(parley__update_encode(&u, body, sizeof(body), &blen), 0);
    assert_int_equal(parley__signature_make(f->dp.keys[0], body, blen, sig), 0);
    assert_int_equal(parley__envelope_encode(body, blen, f->dp.pk[0], sig, env,
                                             sizeof(env), &len), 0);
    s_push_env(f, 1, 7, env, len);
    assert_int_equal(pd_ingest_turn(f->ing), 0);

    s_expect_reject(f, 1, PARLEY_EUNKNOWNSIGNER);
    s_expect_reject(f, 2, PARLEY_EBADSIG);
    s_expect_reject(f, 3, PARLEY_EFORBIDDEN);
    s_expect_reject(f, 4, PARLEY_ESTALE);
    s_expect_reject(f, 5, PARLEY_EFUTURE);
    s_expect_reject(f, 6, PARLEY_EMALFORMED);
    s_expect_reject(f, 7, PARLEY_EINVALID);
    assert_int_equal(pd_storage_head(f->dp.storage), 0);
    assert_int_equal(s_count(f, EV_PUBLISH), 0);
    /* Nothing of it touched the signer's order: signer_seq 1 is new. */
    dp_update(&u, NULL, "egypt", 1, 1);
    s_push(f, 1, 8, f->dp.keys[0], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_ack(f, 8, 1, false);
}

/*
 * Check 2 wants the envelope parley_sign() writes and nothing else: one
 * that decodes but carries an unknown field, a field twice, a padded
 * length or its fields out of order is malformed, with the reason in the
 * detail, before the signer is looked up; none is stored.
 */
static void
test_envelope_canonical(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX], bad[PARLEY_ENVELOPE_MAX + 128];
    dp_update(&u, NULL, "egypt", 1, 900);
    size_t len = dp_sign(f->dp.keys[0], &u, env);
    /* env: 0a LEN(1 or 2 bytes) BODY 12 20 SIGNER 1a 40 SIGNATURE */
    size_t tail = 2 + PARLEY_PUBLICKEY_BYTES + 2 + PARLEY_SIGNATURE_BYTES;
    size_t lenlen = env[1] & 0x80 ? 2 : 1;
    size_t blen = len - tail - 1 - lenlen;
    assert_int_equal(parley__envelope_canonical(env, len, NULL), 0);

    /* 1: an unknown field (4, bytes) after the signature */
    static const uint8_t extra[] = { 0x22, 0x03, 'a', 'b', 'c' };
    memcpy(bad, env, len);
    memcpy(bad + len, extra, sizeof(extra));
    s_push_env(f, 1, 1, bad, len + sizeof(extra));
    /* 2: the signer twice (protobuf keeps the last) */
    memcpy(bad, env, len);
    memcpy(bad + len, env + len - tail, 2 + PARLEY_PUBLICKEY_BYTES);
    s_push_env(f, 1, 2, bad, len + 2 + PARLEY_PUBLICKEY_BYTES);
    /* 3: the body's length padded with a zero continuation byte */
    size_t n = 0;
    bad[n++] = 0x0a;
    bad[n++] = (uint8_t)(0x80 | (blen & 0x7f));
    bad[n++] = (uint8_t)(0x80 | (blen >> 7));
    bad[n++] = 0x00;
    memcpy(bad + n, env + 1 + lenlen, len - 1 - lenlen);
    s_push_env(f, 1, 3, bad, n + len - 1 - lenlen);
    /* 4: signer and signature before the body */
    memcpy(bad, env + len - tail, tail);
    memcpy(bad + tail, env, len - tail);
    s_push_env(f, 1, 4, bad, len);
    /* 5: an unknown signer's envelope with an unknown field: check 2
     * comes before check 3 */
    uint8_t env_s[PARLEY_ENVELOPE_MAX];
    size_t len_s = dp_sign(f->dp.stranger, &u, env_s);
    memcpy(bad, env_s, len_s);
    memcpy(bad + len_s, extra, sizeof(extra));
    s_push_env(f, 1, 5, bad, len_s + sizeof(extra));
    /* 6: the canonical one */
    s_push_env(f, 1, 6, env, len);
    assert_int_equal(pd_ingest_turn(f->ing), 0);

    for (uint64_t rid = 1; rid <= 5; rid++) {
        s_expect_reject(f, rid, PARLEY_EMALFORMED);
        const char *d = s_reply_to(f, rid)->detail;
        if (strstr(d, "envelope not canonical: ") == NULL)
            fail_msg("request %llu: detail \"%s\"", (unsigned long long)rid,
                     d);
    }
    assert_non_null(strstr(s_reply_to(f, 1)->detail, "other fields"));
    assert_non_null(strstr(s_reply_to(f, 2)->detail, "twice"));
    assert_non_null(strstr(s_reply_to(f, 3)->detail, "padded"));
    assert_non_null(strstr(s_reply_to(f, 4)->detail, "first field"));
    s_expect_ack(f, 6, 1, false);
    assert_int_equal(pd_storage_head(f->dp.storage), 1);
    /* What was stored is the canonical envelope. */
    uint8_t got[PARLEY_ENVELOPE_MAX];
    size_t got_len;
    int64_t at;
    assert_int_equal(pd_storage_read(f->dp.storage, 1, &at, got, sizeof(got),
                                     &got_len), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, env, len);
}

/*
 * A duplicate is the same signed update (body, signer, signature), not
 * the same envelope bytes: a log written before parleyd required the
 * canonical envelope may hold one with an extra field, and the
 * publisher's canonical resend of it is still answered with its seq.
 * Another signed update under that signer_seq is a replay.
 */
static void
test_duplicate_of_legacy_record(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX], old[PARLEY_ENVELOPE_MAX + 16];
    dp_update(&u, NULL, "egypt", 1, 700);
    size_t len = dp_sign(f->dp.keys[0], &u, env);
    static const uint8_t extra[] = { 0x22, 0x03, 'o', 'l', 'd' };
    memcpy(old, env, len);
    memcpy(old + len, extra, sizeof(extra));
    /* Kept the way an earlier parleyd kept it: straight into the log. */
    pd_storage_update_t su = { .env = old,
                               .len = len + sizeof(extra),
                               .signer = f->dp.pk[0],
                               .update = &u,
                               .received_at = parley_now_ms(),
                               .tag = 0 };
    pd_storage_done_t done;
    assert_int_equal(pd_storage_submit(f->dp.storage, &su, &done),
                     PD_STORAGE_DONE);
    assert_int_equal(pd_storage_commit(f->dp.storage), 0);
    pd_storage_record_t rec;
    while (pd_storage_applied(f->dp.storage, &rec)) {
    }
    /* ... and read as before after a restart. */
    assert_int_equal(dp_open_storage(&f->dp), 0);
    s_make_ingest(f);
    uint8_t got[PARLEY_ENVELOPE_MAX + 16];
    size_t got_len;
    int64_t at;
    assert_int_equal(pd_storage_read(f->dp.storage, 1, &at, got, sizeof(got),
                                     &got_len), 0);
    assert_int_equal(got_len, len + sizeof(extra));

    s_push_env(f, 1, 1, env, len);
    strcpy(u.headline, "the same signer_seq, another update");
    s_push(f, 1, 2, f->dp.keys[0], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_ack(f, 1, 1, true);
    s_expect_reject(f, 2, PARLEY_EREPLAY);
    assert_int_equal(pd_storage_head(f->dp.storage), 1);
}

/* Check 3a: over the signer's bucket, rate_limited; and with no keyring,
 * unavailable. */
static void
test_rate_limit_and_no_keyring(void **state)
{
    fx_t *f = *state;
    f->dp.cfg.rate_limit = 1;
    f->dp.cfg.rate_burst = 1;
    s_make_ingest(f);
    parley_update_t u;
    dp_update(&u, NULL, "egypt", 1, 1);
    s_push(f, 1, 1, f->dp.keys[0], &u);
    dp_update(&u, NULL, "egypt", 1, 2);
    s_push(f, 1, 2, f->dp.keys[0], &u);
    dp_update(&u, NULL, "egypt", 1, 1);
    s_push(f, 1, 3, f->dp.keys[1], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_ack(f, 1, 1, false);
    s_expect_reject(f, 2, PARLEY_ERATELIMITED);
    s_expect_ack(f, 3, 2, false);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_RATE_LIMITED_SIGNER),
                     1);

    pd_ingest_set_keyring(f->ing, NULL);
    dp_update(&u, NULL, "egypt", 1, 9);
    s_push(f, 1, 4, f->dp.keys[2], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_reject(f, 4, PARLEY_EUNAVAILABLE);
    assert_int_equal(pd_storage_head(f->dp.storage), 2);
}

/* What is not a well-formed publish goes back to the api, in its place
 * among the replies. */
static void
test_other_requests(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    dp_update(&u, NULL, "egypt", 1, 1);
    s_push(f, 1, 1, f->dp.keys[0], &u);
    s_push_ping(f, 1, 2);
    static const uint8_t junk[] = { 0xff, 0xff };
    s_push_raw(f, 1, junk, sizeof(junk), 2);   /* does not decode */
    s_push_raw(f, 1, junk, 0, 1);              /* one frame only */
    dp_update(&u, NULL, "egypt", 1, 2);
    s_push(f, 1, 3, f->dp.keys[0], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    assert_int_equal(f->n_ev, 8);
    assert_int_equal(f->ev[0].kind, EV_REPLY);
    assert_int_equal(f->ev[1].kind, EV_ANSWER);
    assert_int_equal(f->ev[1].request_id, 2);
    assert_int_equal(f->ev[2].kind, EV_ANSWER);
    assert_int_equal(f->ev[3].kind, EV_ANSWER);
    assert_int_equal(f->ev[4].kind, EV_REPLY);
    assert_int_equal(f->ev[5].kind, EV_FLUSH);
    assert_int_equal(f->ev[6].kind, EV_PUBLISH);
    assert_int_equal(f->ev[7].kind, EV_PUBLISH);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_REQUESTS_PUBLISH), 2);
}

/*
 * Group commit: a turn of many publishes syncs once; a full reply queue
 * commits early (its acks go out, then their deliveries) and the rest of
 * the turn goes on; a turn stops at PD_INGEST_TURN_MAX and the rest,
 * read ahead, is handled by the next turn.
 */
static void
test_group_commit(void **state)
{
    fx_t *f = *state;
    f->dp.cfg.fsync = false; /* 1,300 records: no need to wear the disk */
    assert_int_equal(dp_open_storage(&f->dp), 0);
    s_make_ingest(f);
    parley_update_t u;
    for (uint64_t i = 1; i <= 300; i++) {
        dp_update(&u, NULL, i % 2 ? "egypt" : "qatar", (uint32_t)(i % 4), i);
        s_push(f, (uint8_t)(i % 3), i, f->dp.keys[i % 3], &u);
    }
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    assert_int_equal(pd_storage_head(f->dp.storage), 300);
    assert_int_equal(s_count(f, EV_FLUSH), 1);
    s_check_ack_before_feed(f);

    /* A queue of 100 replies: the turn commits when it is full. */
    f->queue_max = 100;
    for (uint64_t i = 301; i <= 550; i++) {
        dp_update(&u, NULL, "us", 1, i);
        s_push(f, 1, i, f->dp.keys[0], &u);
    }
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    assert_int_equal(pd_storage_head(f->dp.storage), 550);
    assert_int_equal(s_count(f, EV_FLUSH), 1 + 3);
    s_check_ack_before_feed(f);
    f->queue_max = SIZE_MAX;

    /* More than a turn takes, from one connection: 64 of each step's
     * signatures are checked in parallel first; as they are all good,
     * the rest in further parallel waves, none one by one. */
    uint64_t serial = pd_stats_get(f->dp.stats, PD_STAT_VERIFY_SERIAL);
    for (uint64_t i = 551; i <= 1800; i++) {
        dp_update(&u, NULL, "us", 1, i);
        s_push(f, 2, i, f->dp.keys[1], &u);
    }
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    assert_true(pd_ingest_pending(f->ing));
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_TURN_REQUESTS_MAX),
                     PD_INGEST_TURN_MAX);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_TURNS_READ_AHEAD), 1);
    assert_int_equal(pd_storage_head(f->dp.storage), 550 + PD_INGEST_TURN_MAX);
    while (pd_ingest_pending(f->ing) || f->next_in < f->n_in)
        assert_int_equal(pd_ingest_turn(f->ing), 0);
    assert_int_equal(pd_storage_head(f->dp.storage), 1800);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_VERIFY_SERIAL), serial);
    s_check_ack_before_feed(f);
    for (uint64_t i = 551; i <= 1800; i++)
        s_expect_ack(f, i, i, false);
}

/*
 * A step of two connections' publishes: the first 64 signatures of each
 * are checked in parallel; after a bad one among them a connection's
 * others are checked one by one in order (so that a forging peer is cut
 * off after a bounded number of checks), while the other connection's,
 * all good, are checked in further parallel waves.
 */
static void
test_verify_waves(void **state)
{
    fx_t *f = *state;
    f->dp.cfg.fsync = false;
    assert_int_equal(dp_open_storage(&f->dp), 0);
    s_make_ingest(f);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    for (uint64_t i = 1; i <= 150; i++) {
        dp_update(&u, NULL, "egypt", 1, i);
        size_t len = dp_sign(f->dp.keys[0], &u, env);
        if (i == 10)
            env[len - 1] ^= 0x01; /* bad_signature */
        s_push_env(f, 1, i, env, len);
        dp_update(&u, NULL, "qatar", 1, i);
        s_push(f, 2, 1000 + i, f->dp.keys[1], &u);
    }
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    while (pd_ingest_pending(f->ing) || f->next_in < f->n_in)
        assert_int_equal(pd_ingest_turn(f->ing), 0);
    /* Two steps, 256 and 44: connection 1 has 128 and 22 in them, 64 and
     * 22 checked in parallel first; the 10th was bad, so the other 64 of
     * the first step are checked one by one. Connection 2: all in
     * parallel. */
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_VERIFY_SERIAL),
                     128 - 64);
    s_expect_reject(f, 10, PARLEY_EBADSIG);
    uint64_t seq = 0;
    for (uint64_t i = 1; i <= 150; i++) {
        if (i != 10)
            s_expect_ack(f, i, ++seq, false);
        s_expect_ack(f, 1000 + i, ++seq, false);
    }
    assert_int_equal(pd_storage_head(f->dp.storage), 299);
}

/* ----------------------------------------------- a storage that is late */

/*
 * The seam's other shape, as the JetStream backbone will use it: submit
 * answers PD_STORAGE_LATER and the completions come out after a commit.
 * Built over the embedded storage, which does the real work.
 */
typedef struct {
    pd_storage_t base;
    pd_storage_t *inner;
    pd_storage_done_t done[64];
    size_t n_done, n_out, n_ready;
} late_t;

static int
s_late_submit(pd_storage_t *s, const pd_storage_update_t *u,
              pd_storage_done_t *done)
{
    late_t *l = (late_t *)s;
    int rc = pd_storage_submit(l->inner, u, done);
    if (rc != PD_STORAGE_DONE || l->n_done == 64)
        return rc;
    done->tag = u->tag;
    l->done[l->n_done++] = *done;
    return PD_STORAGE_LATER;
}

static int
s_late_commit(pd_storage_t *s)
{
    late_t *l = (late_t *)s;
    l->n_ready = l->n_done;
    return pd_storage_commit(l->inner);
}

static bool
s_late_completed(pd_storage_t *s, pd_storage_done_t *done)
{
    late_t *l = (late_t *)s;
    if (l->n_out == l->n_ready)
        return false;
    *done = l->done[l->n_out++];
    if (l->n_out == l->n_done)
        l->n_out = l->n_done = l->n_ready = 0;
    return true;
}

static bool
s_late_applied(pd_storage_t *s, pd_storage_record_t *rec)
{
    return pd_storage_applied(((late_t *)s)->inner, rec);
}

static uint64_t
s_late_head(const pd_storage_t *s)
{
    return pd_storage_head(((const late_t *)s)->inner);
}

static const pd_storage_ops_t s_late_ops = {
    .name = "late",
    .submit = s_late_submit,
    .commit = s_late_commit,
    .completed = s_late_completed,
    .applied = s_late_applied,
    .head = s_late_head,
};

static void
test_completed_later(void **state)
{
    fx_t *f = *state;
    late_t late = { .base = { &s_late_ops }, .inner = f->dp.storage };
    pd_ingest_io_t io = { .ctx = f, .recv = s_recv, .answer = s_answer,
                          .reply = s_reply, .room = s_room, .flush = s_flush,
                          .publish = s_publish, .feed = f };
    int err;
    pd_ingest_destroy(&f->ing);
    f->ing = pd_ingest_new(&f->dp.cfg, &late.base, &io, NULL, &err);
    assert_non_null(f->ing);
    pd_ingest_set_keyring(f->ing, f->dp.ring);
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    dp_update(&u, NULL, "egypt", 1, 1);
    size_t len = dp_sign(f->dp.keys[0], &u, env);
    s_push_env(f, 1, 1, env, len);
    dp_update(&u, NULL, "qatar", 1, 1);
    s_push(f, 2, 2, f->dp.keys[1], &u);
    s_push_env(f, 3, 3, env, len); /* a resend: a duplicate, later too */
    dp_update(&u, NULL, "egypt", 1, 1);
    strcpy(u.headline, "other bytes");
    s_push(f, 1, 4, f->dp.keys[0], &u); /* replay: refused at once */
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_ack(f, 1, 1, false);
    s_expect_ack(f, 2, 2, false);
    s_expect_ack(f, 3, 1, true);
    s_expect_reject(f, 4, PARLEY_EREPLAY);
    s_check_ack_before_feed(f);
    assert_int_equal(s_count(f, EV_PUBLISH), 2);
    pd_ingest_destroy(&f->ing);
}

/* ---------------------------------------------- the log cannot be written */

/* The size of the fixture's log (one segment). */
static off_t
s_segment_size(const fx_t *f)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/seg-%020d.log", f->dp.dir, 1);
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/*
 * Request rid was answered unavailable (by the flush, if revoked), with
 * the reason and whether the update was kept queued, and no file name:
 * clients are told the error alone.
 */
static void
s_expect_unavailable(const fx_t *f, uint64_t rid, bool revoked, bool queued)
{
    const ev_t *e = s_reply_to(f, rid);
    s_expect_reject(f, rid, PARLEY_EUNAVAILABLE);
    assert_int_equal(e->revoked, revoked);
    if (strstr(e->message, strerror(EFBIG)) == NULL
        || strstr(e->message, queued ? "kept queued" : "not stored") == NULL
        || strstr(e->message, f->dp.dir) != NULL)
        fail_msg("request %llu: message \"%s\"", (unsigned long long)rid,
                 e->message);
}

/*
 * Issue 11 item 5 in ingest: a commit that cannot write the log answers
 * its batch unavailable, never acked (a duplicate of a durable update
 * still is); new publishes are answered unavailable at once and do not
 * try the disk again; a resend of the queued update is unavailable, not
 * a replay; the retry, once writing works again, makes it durable and
 * publishes it, and its resend is then a duplicate of its seq.
 */
static void
test_unavailable(void **state)
{
    fx_t *f = *state;
    parley_update_t u;
    uint8_t env1[PARLEY_ENVELOPE_MAX], env_a[PARLEY_ENVELOPE_MAX];
    dp_update(&u, NULL, "egypt", 1, 1);
    size_t len1 = dp_sign(f->dp.keys[0], &u, env1);
    s_push_env(f, 1, 1, env1, len1);
    for (uint64_t i = 2; i <= 3; i++) {
        dp_update(&u, NULL, "egypt", 1, i);
        s_push(f, 1, i, f->dp.keys[0], &u);
    }
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    assert_int_equal(pd_storage_head(f->dp.storage), 3);

    /* The disk is full: the file may not grow. */
    struct rlimit old;
    if (!fsize_limit((rlim_t)s_segment_size(f), &old)) {
        skip();
        return;
    }
    dp_update(&u, NULL, "qatar", 2, 10);
    size_t len_a = dp_sign(f->dp.keys[1], &u, env_a);
    s_push_env(f, 2, 11, env_a, len_a);   /* new: queued as seq 4 */
    s_push_env(f, 1, 12, env1, len1);     /* a duplicate of durable seq 1 */
    s_push_env(f, 3, 13, env_a, len_a);   /* a resend of the new one */
    s_push_ping(f, 1, 14);
    size_t mark = f->n_ev;
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    uint64_t failures = pd_stats_get(f->dp.stats, PD_STAT_STORE_SYNC_FAILURES);
    assert_true(failures >= 1);
    s_expect_unavailable(f, 11, true, true);
    s_expect_ack(f, 12, 1, true);
    s_expect_unavailable(f, 13, true, true);
    for (size_t i = mark; i < f->n_ev; i++)
        assert_int_not_equal(f->ev[i].kind, EV_PUBLISH);
    assert_true(pd_ingest_unavailable(f->ing));
    pd_storage_health_t h;
    pd_storage_health(f->dp.storage, &h);
    assert_int_equal(h.err, -EFBIG);
    assert_false(h.fatal);
    assert_int_equal(h.queued, 1);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_STORE_ERROR), EFBIG);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_STORE_QUEUED), 1);
    assert_int_equal(pd_storage_head(f->dp.storage), 3);

    /* Meanwhile: answered at once, without another try at the disk. */
    dp_update(&u, NULL, "us", 1, 20);
    s_push(f, 1, 21, f->dp.keys[2], &u);  /* new */
    s_push_env(f, 2, 22, env_a, len_a);   /* the queued one again */
    dp_update(&u, NULL, "qatar", 2, 10);
    strcpy(u.headline, "other bytes");
    s_push(f, 2, 23, f->dp.keys[1], &u);  /* its signer_seq, other bytes */
    s_push_env(f, 1, 24, env1, len1);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_unavailable(f, 21, false, false);
    s_expect_unavailable(f, 22, false, true);
    s_expect_reject(f, 23, PARLEY_EREPLAY);
    s_expect_ack(f, 24, 1, true);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_STORE_SYNC_FAILURES),
                     failures);

    /* The retry, still full: still unavailable, nothing published. */
    assert_int_equal(pd_ingest_retry(f->ing), 0);
    assert_true(pd_ingest_unavailable(f->ing));
    assert_true(pd_stats_get(f->dp.stats, PD_STAT_STORE_SYNC_FAILURES)
                > failures);
    assert_int_equal(s_count(f, EV_PUBLISH), 3);

    /* Room again: the retry makes seq 4 durable and publishes it. */
    fsize_unlimit(&old);
    assert_int_equal(pd_ingest_retry(f->ing), 0);
    assert_false(pd_ingest_unavailable(f->ing));
    assert_int_equal(pd_storage_head(f->dp.storage), 4);
    assert_int_equal(f->ev[f->n_ev - 1].kind, EV_PUBLISH);
    assert_int_equal(f->ev[f->n_ev - 1].seq, 4);
    pd_storage_health(f->dp.storage, &h);
    assert_int_equal(h.err, 0);
    assert_int_equal(h.queued, 0);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_STORE_ERROR), 0);
    /* Nothing to retry now. */
    mark = f->n_ev;
    assert_int_equal(pd_ingest_retry(f->ing), 0);
    assert_int_equal(f->n_ev, mark);

    /* Its resend is a duplicate of seq 4; the next update is seq 5. */
    s_push_env(f, 2, 31, env_a, len_a);
    dp_update(&u, NULL, "us", 1, 21);
    s_push(f, 1, 32, f->dp.keys[2], &u);
    assert_int_equal(pd_ingest_turn(f->ing), 0);
    s_expect_ack(f, 31, 4, true);
    s_expect_ack(f, 32, 5, false);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_ACCEPTED), 5);
    assert_int_equal(pd_stats_get(f->dp.stats, PD_STAT_DUPLICATES), 3);

    /* And the log holds seq 4 with the bytes that waited. */
    pd_ingest_destroy(&f->ing);
    assert_int_equal(dp_open_storage(&f->dp), 0);
    uint8_t back[PARLEY_ENVELOPE_MAX];
    size_t n = 0;
    assert_int_equal(pd_storage_read(f->dp.storage, 4, NULL, back,
                                     sizeof(back), &n),
                     0);
    assert_int_equal(n, len_a);
    assert_memory_equal(back, env_a, len_a);
    assert_int_equal(pd_storage_head(f->dp.storage), 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_feed_before_leaf, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_replay, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_rejects, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_canonical, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_of_legacy_record,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_and_no_keyring,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_verify_waves, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_other_requests, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_completed_later, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unavailable, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
