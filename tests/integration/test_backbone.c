/*
 * test_backbone.c - parleyd's JetStream client (daemon/backbone.c) against
 * real nats-server processes (issue 13).
 *
 * Options: what is refused before any connection (credentials in URLs, a
 * duplicate window under 2 * max_clock_skew, secret files readable by
 * others, ...), and the subject, msg id and error-text helpers.
 *
 * One server (R1):
 *   - the stream is created with parleyd's settings; an existing stream
 *     that contradicts them is refused with every differing field named;
 *     3 replicas on a server that is not clustered is refused;
 *   - submit + follow round trip: every submit is stored, the follower
 *     hands over the same bytes with seq = the stream seq of the PubAck,
 *     in order, each once; catching_up ends when it has them all;
 *   - a resend (same signer and signer_seq, even other bytes) is a
 *     JetStream duplicate with the original seq; a stale or wrong
 *     expect_last is a conflict naming the subject's last seq;
 *   - a loop that does not drain: the follower pauses at its limit, then
 *     hands over every record once, in order, when the loop reads again;
 *   - the stream deleted under a client: health no_stream; made again:
 *     diverged (final), and submits are refused;
 *   - no server: open gives up after its timeout.
 *   - the leader check inside a full window (through nats_proxy, a relay
 *     that alters what the consumer is delivered): 64 records in the
 *     stream; the follower is shown other bytes at seq 20 than the
 *     server holds, and the server's answer about seq 20 is held back
 *     until the follower has asked about 21-51 too (S_CHECK_WINDOW = 32
 *     checks in flight). It reads again from 20, hands over every record
 *     once, in order, with the server's bytes (never the altered ones),
 *     and asks again about 21-51, whose first answers it dropped.
 *   - answers out of order: the answer about seq 20 held back until
 *     21-51 are asked (and answered): every record is handed over once,
 *     in order, each asked about once, none read again.
 *   - a late answer: the answer about seq 10 held back 1.6 s, past the
 *     check's 1 s timeout: the follower asks again 250 ms after the
 *     timeout, goes on with that answer, and leaves the late one alone
 *     (counted as late_answers), nothing read again.
 *   - a leader that holds no record yet at a seq (the relay makes the
 *     server answer so 3 times): the follower asks again, each time
 *     250 ms after the answer before, however many other answers and
 *     records come meanwhile, and hands every record over once.
 *   - a leader that holds none of seqs 5-12 yet (once each): the
 *     follower asks again about all eight together, 250 ms after the
 *     first answer, not 250 ms after one another.
 *
 * TLS (one server that requires client certificates; certificates made
 * with openssl): the backbone connects with the CA, its client
 * certificate and the expected host name, and stores and follows; a
 * wrong expected name or no CA are refused at open as -EACCES with the
 * TLS error; without a client certificate the server drops the
 * connection and open gives up at its timeout.
 *
 * Three servers (R3), one cluster for the group:
 *   - round trip through two clients on different servers: both followers
 *     see the same seqs and bytes; SIGSTOP of one client's server: it
 *     reconnects elsewhere and its follower continues without a gap;
 *   - two clients on two servers race the same signer subject with the
 *     same signer_seq and different bytes, round after round: exactly one
 *     is stored per round, the other is told duplicate or conflict with
 *     the winner's seq, and the stream holds one record per round;
 *   - quorum loss: with 2 of 3 servers killed a submit ends UNAVAILABLE
 *     within its timeout and health says no_quorum; after the servers are
 *     restarted the same client stores again and reports ok;
 *   - closing a client whose only server is stopped (SIGSTOP) with a
 *     submit pending returns (its time is printed).
 */
#include "backbone.h"
#include "backbone_int.h" /* S_CHECK_WINDOW, the check's timings, the
                             STREAM.MSG.GET answer parser */
#include "harness.h"
#include "nats_harness.h"
#include "nats_proxy.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <poll.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define S_WAIT_MS 20000       /* for events that must come */
#define S_RECS_MAX 4096
#define S_DONE_MAX 4096

/* ------------------------------------------------------------ event sink */

/* What one backbone client produced. */
typedef struct s_sink {
    pd_backbone_t *bb;
    /* completions, indexed by token */
    bool done[S_DONE_MAX];
    pd_backbone_result_t result[S_DONE_MAX];
    bool dup[S_DONE_MAX];
    uint64_t seq[S_DONE_MAX];
    int64_t done_ms[S_DONE_MAX];
    uint64_t done_batch[S_DONE_MAX]; /* which s_drain() call took it */
    uint64_t batches;
    size_t n_done;
    /* records in arrival order */
    uint64_t rec_seq[S_RECS_MAX];
    uint8_t *rec_data[S_RECS_MAX];
    size_t rec_len[S_RECS_MAX];
    char rec_key[S_RECS_MAX][PARLEY_KEYID_CHARS + 1];
    size_t n_recs;
    uint8_t signer[S_DONE_MAX][PARLEY_PUBLICKEY_BYTES]; /* by token */
    bool keep_parked;    /* leave a conflict parked (else abandon it) */
    /* last state event */
    int n_states;
    pd_backbone_health_t health;
    bool catching_up;
    bool saw_health[PD_BACKBONE_DIVERGED + 1];
} s_sink_t;

static s_sink_t *
s_sink_new(pd_backbone_t *bb)
{
    s_sink_t *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    k->bb = bb;
    return k;
}

static void
s_sink_free(s_sink_t *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n_recs; i++)
        free(k->rec_data[i]);
    pd_backbone_close(&k->bb);
    free(k);
}

/* Take every event waiting. Returns how many. */
static int
s_drain(s_sink_t *k)
{
    int n = 0;
    pd_backbone_event_t ev;
    k->batches++;
    while (pd_backbone_next(k->bb, &ev) == 1) {
        n++;
        switch (ev.kind) {
        case PD_BACKBONE_EV_SUBMITTED:
            assert_true(ev.token < S_DONE_MAX);
            assert_false(k->done[ev.token]); /* exactly one completion */
            k->done[ev.token] = true;
            k->result[ev.token] = ev.result;
            k->dup[ev.token] = ev.duplicate;
            k->seq[ev.token] = ev.seq;
            k->done_ms[ev.token] = parley__mono_ms();
            k->done_batch[ev.token] = k->batches;
            k->n_done++;
            /* A conflict parks the submit (and its subject); these tests
             * decide nothing from it, so they let it go. */
            if (ev.result == PD_BACKBONE_CONFLICT && !k->keep_parked)
                assert_int_equal(pd_backbone_abandon(k->bb, ev.token,
                                                     k->signer[ev.token]),
                                 0);
            break;
        case PD_BACKBONE_EV_RECORD:
            assert_true(k->n_recs < S_RECS_MAX);
            k->rec_seq[k->n_recs] = ev.seq;
            k->rec_data[k->n_recs] = malloc(ev.len + 1);
            assert_non_null(k->rec_data[k->n_recs]);
            memcpy(k->rec_data[k->n_recs], ev.data, ev.len);
            k->rec_len[k->n_recs] = ev.len;
            memcpy(k->rec_key[k->n_recs], ev.key_id, sizeof(ev.key_id));
            k->n_recs++;
            break;
        case PD_BACKBONE_EV_STATE:
            k->n_states++;
            k->health = ev.health;
            k->catching_up = ev.catching_up;
            k->saw_health[ev.health] = true;
            fprintf(stderr, "[test] state: %s%s (%s)\n",
                    pd_backbone_health_name(ev.health),
                    ev.catching_up ? ", catching up" : "", ev.detail);
            break;
        }
    }
    return n;
}

/* Wait for the fd (up to ms), then drain. */
static int
s_pump(s_sink_t *k, int ms)
{
    struct pollfd p = { .fd = pd_backbone_fd(k->bb), .events = POLLIN };
    (void)poll(&p, 1, ms);
    return s_drain(k);
}

/* Pump every sink until pred(ctx) or ms pass. Returns pred's last value. */
static bool
s_pump_until(s_sink_t **ks, size_t n, bool (*pred)(void *), void *ctx,
             int ms)
{
    int64_t deadline = parley__mono_ms() + ms;
    for (;;) {
        for (size_t i = 0; i < n; i++)
            s_pump(ks[i], n > 1 ? 5 : 20);
        if (pred(ctx))
            return true;
        if (parley__mono_ms() >= deadline)
            return false;
    }
}

typedef struct s_count {
    s_sink_t *k;
    size_t done, recs;
} s_count_t;

static bool
s_have_counts(void *arg)
{
    s_count_t *c = arg;
    return c->k->n_done >= c->done && c->k->n_recs >= c->recs;
}

static void
s_wait_counts(s_sink_t *k, size_t done, size_t recs)
{
    s_count_t c = { k, done, recs };
    if (!s_pump_until(&k, 1, s_have_counts, &c, S_WAIT_MS)) {
        pd_backbone_status_t st;
        pd_backbone_status(k->bb, &st);
        fail_msg("waited for %zu completions and %zu records, have %zu and "
                 "%zu; status %s (%s), followed %" PRIu64 ", stream_last %"
                 PRIu64 ", subscribes %" PRIu64 ", pauses %" PRIu64
                 ", async errors %" PRIu64 ", probes %" PRIu64 "/%" PRIu64
                 " failed, server %s",
                 done, recs, k->n_done, k->n_recs,
                 pd_backbone_health_name(st.health), st.detail, st.followed,
                 st.stream_last, st.subscribes, st.pauses, st.async_errors,
                 st.probes, st.probes_failed, st.server);
    }
}

typedef struct s_token {
    s_sink_t *k;
    uint64_t token;
} s_token_t;

/* Has the submit with this token completed? */
static bool
s_has_token(void *arg)
{
    s_token_t *t = arg;
    return t->k->done[t->token];
}

static bool
s_caught_up(void *arg)
{
    s_sink_t *k = arg;
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    /* Following an empty stream is caught up at once: no state event. */
    return !st.catching_up && (k->n_states == 0 || !k->catching_up);
}

/* ------------------------------------------------------------ helpers */

/* A signer's public key from a fixed seed. */
static void
s_signer(uint8_t pk[PARLEY_PUBLICKEY_BYTES], uint8_t seed_byte)
{
    uint8_t seed[32], sk[64];
    memset(seed, seed_byte, sizeof(seed));
    assert_int_equal(sodium_init() >= 0, 1);
    crypto_sign_seed_keypair(pk, sk, seed);
}

/* Options for a client of cluster c, stream name given. */
static void
s_opts(pd_backbone_opts_t *o, const char *servers, const char *stream,
       uint32_t replicas)
{
    pd_backbone_opts_defaults(o);
    o->servers = servers;
    o->stream = stream;
    o->replicas = replicas;
    o->max_clock_skew = 30;
    o->publish_timeout_ms = 1000;
    o->open_timeout_ms = 20000;
    o->name = "parley test";
}

static pd_backbone_t *
s_open(const pd_backbone_opts_t *o)
{
    char errbuf[1024] = "";
    int err = 0;
    pd_backbone_t *bb = pd_backbone_open(o, errbuf, sizeof(errbuf), &err);
    if (bb == NULL)
        fail_msg("pd_backbone_open: %d: %s", err, errbuf);
    return bb;
}

/* Submit bytes "text" as (signer, signer_seq) with token. */
static void
s_submit(s_sink_t *k, uint64_t token, const uint8_t *pk, uint64_t signer_seq,
         uint64_t expect_last, const char *text)
{
    pd_backbone_submit_t s = { .token = token,
                               .signer = pk,
                               .signer_seq = signer_seq,
                               .expect_last = expect_last,
                               .data = text,
                               .len = strlen(text) };
    int rc;
    assert_true(token < S_DONE_MAX);
    memcpy(k->signer[token], pk, PARLEY_PUBLICKEY_BYTES);
    while ((rc = pd_backbone_submit(k->bb, &s)) == -EAGAIN)
        s_pump(k, 10);
    assert_int_equal(rc, 0);
}

static const char *
s_key_id(const uint8_t *pk)
{
    static char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(pk, id);
    return id;
}

/* Records must be seqs first.., consecutive, each once. */
static void
s_assert_consecutive(const s_sink_t *k, uint64_t first)
{
    for (size_t i = 0; i < k->n_recs; i++)
        if (k->rec_seq[i] != first + i)
            fail_msg("record %zu has seq %" PRIu64 ", expected %" PRIu64, i,
                     k->rec_seq[i], first + i);
}

static bool s_has_health(void *arg);
static bool s_saw_diverged(void *arg);

/* ------------------------------------------------------------ options */

static void
test_opts(void **state)
{
    (void)state;
    char dir[PH_PATH_MAX];
    assert_int_equal(ph_tmpdir_make(dir, sizeof(dir)), 0);
    char creds[PH_PATH_MAX], key[PH_PATH_MAX];
    assert_int_equal(ph_path(creds, sizeof(creds), dir, "user.creds"), 0);
    assert_int_equal(ph_path(key, sizeof(key), dir, "client.key"), 0);
    assert_int_equal(ph_file_write(creds, "x", 1, 0644), 0);
    assert_int_equal(ph_file_write(key, "x", 1, 0600), 0);

    pd_backbone_opts_t o;
    char err[512];
    s_opts(&o, "nats://127.0.0.1:4222, tls://10.0.0.2:4222 ,nats://h:1",
           "PARLEY", 3);
    assert_int_equal(pd_backbone_opts_check(&o, err, sizeof(err)), 0);

    struct {
        const char *servers;
        const char *stream;
        uint32_t replicas;
        uint64_t window, age;
        const char *creds;
        int rc;
        const char *says;
    } bad[] = {
        { NULL, "P", 1, 0, 0, NULL, -EINVAL, "no server" },
        { "", "P", 1, 0, 0, NULL, -EINVAL, "no server" },
        { "nats://u:secret@h:4222", "P", 1, 0, 0, NULL, -EINVAL, "creds" },
        { "nats://a:1,,nats://b:2", "P", 1, 0, 0, NULL, -EINVAL, "empty" },
        { "http://h:4222", "P", 1, 0, 0, NULL, -EINVAL, "not a server URL" },
        { "nats://h:1/x", "P", 1, 0, 0, NULL, -EINVAL, "not a server URL" },
        { "nats://h:1", "A.B", 1, 0, 0, NULL, -EINVAL, "stream name" },
        { "nats://h:1", "", 1, 0, 0, NULL, -EINVAL, "stream name" },
        { "nats://h:1", "P", 0, 0, 0, NULL, -EINVAL, "replicas" },
        { "nats://h:1", "P", 6, 0, 0, NULL, -EINVAL, "replicas" },
        { "nats://h:1", "P", 1, 59, 0, NULL, -EINVAL, "2 * max_clock_skew" },
        { "nats://h:1", "P", 1, 120, 100, NULL, -EINVAL, "retention_age" },
        { "nats://h:1", "P", 1, 0, 0, creds, -EACCES, "chmod 600" },
        { "nats://h:1", "P", 1, 0, 0, "/nonexistent/x.creds", -ENOENT,
          "x.creds" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s_opts(&o, bad[i].servers, bad[i].stream, bad[i].replicas);
        o.duplicate_window = bad[i].window;
        o.retention_age = bad[i].age;
        o.creds_file = bad[i].creds;
        err[0] = '\0';
        int rc = pd_backbone_opts_check(&o, err, sizeof(err));
        if (rc != bad[i].rc || strstr(err, bad[i].says) == NULL)
            fail_msg("case %zu: rc %d (want %d), message \"%s\" (want \"%s\")",
                     i, rc, bad[i].rc, err, bad[i].says);
    }
    /* A client certificate needs its key; a key must be private. */
    s_opts(&o, "tls://h:1", "P", 1);
    o.tls_cert_file = creds;
    assert_int_equal(pd_backbone_opts_check(&o, err, sizeof(err)), -EINVAL);
    o.tls_key_file = key;
    assert_int_equal(chmod(creds, 0644), 0);
    assert_int_equal(pd_backbone_opts_check(&o, err, sizeof(err)), 0);
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(pd_backbone_opts_check(&o, err, sizeof(err)), -EACCES);
    /* open() checks the same before connecting. */
    s_opts(&o, "nats://u:p@127.0.0.1:1", "P", 1);
    int e = 0;
    assert_null(pd_backbone_open(&o, err, sizeof(err), &e));
    assert_int_equal(e, -EINVAL);
    ph_tmpdir_remove(dir);
}

static void
test_names(void **state)
{
    (void)state;
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    s_signer(pk, 7);
    char buf[128], want[128];
    assert_int_equal(pd_backbone_subject(buf, sizeof(buf), "PARLEY", pk), 0);
    snprintf(want, sizeof(want), "PARLEY.u.%s", s_key_id(pk));
    assert_string_equal(buf, want);
    assert_int_equal(pd_backbone_subject(buf, 10, "PARLEY", pk), -ENOBUFS);
    assert_int_equal(pd_backbone_msg_id(buf, sizeof(buf), pk, 1234567), 0);
    snprintf(want, sizeof(want), "%s-1234567", s_key_id(pk));
    assert_string_equal(buf, want);

    uint64_t v = 0;
    assert_int_equal(pd_backbone_parse_last_seq("wrong last sequence: 42", &v),
                     0);
    assert_int_equal(v, 42);
    assert_int_equal(pd_backbone_parse_last_seq("wrong last sequence: 0", &v),
                     0);
    assert_int_equal(v, 0);
    assert_int_equal(pd_backbone_parse_last_seq("no number", &v), -EINVAL);
    assert_int_equal(pd_backbone_parse_last_seq("", &v), -EINVAL);
    assert_int_equal(pd_backbone_parse_last_seq(NULL, &v), -EINVAL);
    assert_int_equal(
        pd_backbone_parse_last_seq("x: 99999999999999999999999", &v), -EINVAL);
    assert_int_equal(
        pd_backbone_parse_last_seq("x: 18446744073709551616", &v), -EINVAL);
    assert_int_equal(
        pd_backbone_parse_last_seq("x: 18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_string_equal(pd_backbone_health_name(PD_BACKBONE_NO_QUORUM),
                        "no_quorum");
    assert_string_equal(pd_backbone_result_name(PD_BACKBONE_CONFLICT),
                        "conflict");
}

/* Parse answer text (a C string) with the prefix "PARLEY.u.". */
static s_ans_kind_t
s_parse(const char *text, s_answer_t *a, uint8_t **buf, size_t *cap)
{
    return pd_backbone__answer_parse("PARLEY.u.", text, strlen(text), buf,
                                     cap, a);
}

static void
test_answer_parse(void **state)
{
    (void)state;
    /* Times: against glibc's timegm. */
    struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 5,
                     .tm_hour = 15, .tm_min = 20, .tm_sec = 26 };
    int64_t base = (int64_t)timegm(&tm) * 1000000000LL, ns = 0;
    assert_int_equal(pd_backbone__parse_time("2026-12-05T15:20:26Z", &ns), 0);
    assert_true(ns == base);
    assert_int_equal(
        pd_backbone__parse_time("2026-12-05T15:20:26.123456789Z", &ns), 0);
    assert_true(ns == base + 123456789);
    assert_int_equal(pd_backbone__parse_time("2026-12-05T15:20:26.5Z", &ns),
                     0);
    assert_true(ns == base + 500000000);
    assert_int_equal(
        pd_backbone__parse_time("2026-12-05T16:20:26.000000001+01:00", &ns), 0);
    assert_true(ns == base + 1);
    assert_int_equal(pd_backbone__parse_time("1970-01-01T00:00:00Z", &ns), 0);
    assert_true(ns == 0);
    assert_int_equal(pd_backbone__parse_time("2024-02-29T00:00:00Z", &ns), 0);
    const char *bad[] = {
        "", "2026-12-05", "2026-12-05T15:20:26", "2026-12-05 15:20:26Z",
        "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-12-05T24:00:00Z",
        "2026-12-05T15:20:26.Z", "2026-12-05T15:20:26.1234567891Z",
        "2026-12-05T15:20:26Zx", "2026-12-05T15:20:26+0100", "1969-12-31T23:59:59Z",
        "2201-01-01T00:00:00Z", "2026-12-05T15:20:26.12a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pd_backbone__parse_time(bad[i], &ns) != -1)
            fail_msg("time \"%s\" accepted", bad[i]);

    /* Answers as nats-server 2.9.10 gives them. */
    uint8_t *buf = NULL;
    size_t cap = 0;
    s_answer_t a;
    assert_int_equal(
        s_parse("{\"type\":\"io.nats.jetstream.api.v1.stream_msg_get_"
                "response\",\"message\":{\"subject\":\"PARLEY.u."
                "0123456789abcdef\",\"seq\":5,\"hdrs\":\"TkFUUy8xLjANCg0K\","
                "\"data\":\"aGVsbG8=\",\"time\":\"2026-12-05T15:20:26."
                "123456789Z\"}}",
                &a, &buf, &cap),
        S_ANS_RECORD);
    assert_true(a.seq == 5);
    assert_true(a.time_ns == base + 123456789);
    assert_string_equal(a.key_id, "0123456789abcdef");
    assert_int_equal(a.len, 5);
    assert_memory_equal(a.data, "hello", 5);
    /* No data (an empty record); a subject of another form. */
    assert_int_equal(s_parse("{\"message\":{\"subject\":\"OTHER.x\",\"seq\":7,"
                             "\"time\":\"2026-12-05T15:20:26Z\"}}",
                             &a, &buf, &cap),
                     S_ANS_RECORD);
    assert_int_equal(a.len, 0);
    assert_string_equal(a.key_id, "");
    assert_int_equal(
        s_parse("{\"type\":\"io.nats.jetstream.api.v1.stream_msg_get_"
                "response\",\"error\":{\"code\":404,\"err_code\":10037,"
                "\"description\":\"no message found\"}}",
                &a, &buf, &cap),
        S_ANS_NONE);
    assert_int_equal(
        s_parse("{\"error\":{\"code\":503,\"err_code\":10008,\"description\":"
                "\"JetStream system temporarily unavailable\"}}",
                &a, &buf, &cap),
        S_ANS_ERROR);
    assert_string_equal(a.why, "JetStream system temporarily unavailable");
    const char *errors[] = {
        "", /* no responders: a status message without a payload */
        "not json", "[1,2]", "{}", "{\"message\":5}",
        "{\"message\":{\"subject\":\"PARLEY.u.0123456789abcdef\",\"seq\":5,"
        "\"data\":\"aGVsbG8\",\"time\":\"2026-12-05T15:20:26Z\"}}",
        "{\"message\":{\"subject\":\"PARLEY.u.0123456789abcdef\",\"seq\":5,"
        "\"data\":\"aGVsbG8=\"}}",
        "{\"message\":{\"subject\":\"PARLEY.u.0123456789abcdef\",\"seq\":0,"
        "\"data\":\"aGVsbG8=\",\"time\":\"2026-12-05T15:20:26Z\"}}",
        "{\"message\":{\"seq\":5,\"data\":\"aGVsbG8=\","
        "\"time\":\"2026-12-05T15:20:26Z\"}}",
        "{\"message\":{\"subject\":\"PARLEY.u.0123456789abcdef\",\"seq\":5,"
        "\"data\":7,\"time\":\"2026-12-05T15:20:26Z\"}}",
        "{\"error\":{\"code\":404,\"err_code\":\"10037\"}}",
    };
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (s_parse(errors[i], &a, &buf, &cap) != S_ANS_ERROR)
            fail_msg("answer \"%s\" not taken as an error", errors[i]);
    free(buf);
}

/* Both readers of text; returns whether the scanner took it, and fails
 * unless the two agree then. */
static bool
s_scan_agrees(const char *text)
{
    static uint8_t *b1, *b2;
    static size_t c1, c2;
    s_answer_t x, y;
    size_t len = text != NULL ? strlen(text) : 0;
    if (text == NULL) {
        free(b1);
        free(b2);
        b1 = b2 = NULL;
        c1 = c2 = 0;
        return false;
    }
    pd_backbone__answer_parse_json("PARLEY.u.", text, len, &b1, &c1, &y);
    if (!pd_backbone__answer_scan("PARLEY.u.", text, len, &b2, &c2, &x))
        return false;
    if (x.kind != y.kind || x.seq != y.seq || x.time_ns != y.time_ns
        || strcmp(x.key_id, y.key_id) != 0 || x.len != y.len
        || (x.len > 0 && memcmp(x.data, y.data, x.len) != 0)
        || strcmp(x.why, y.why) != 0)
        fail_msg("the scanner and jansson differ on %s", text);
    return true;
}

static void
test_answer_scan(void **state)
{
    (void)state;
#define S_REC(body) "{\"type\":\"io.nats.jetstream.api.v1.stream_msg_get_" \
                    "response\",\"message\":{" body "}}"
#define S_SUBJ "\"subject\":\"PARLEY.u.0123456789abcdef\""
#define S_TIME "\"time\":\"2026-12-05T15:20:26.123456789Z\""
    /* What nats-server 2.9.10 writes, and shapes it could: taken. */
    const char *taken[] = {
        S_REC(S_SUBJ ",\"seq\":5,\"hdrs\":\"TkFUUy8xLjANCg0K\",\"data\":"
              "\"aGVsbG8=\"," S_TIME),
        S_REC(S_SUBJ ",\"seq\":5," S_TIME),
        S_REC(S_TIME ",\"data\":\"aGVsbG8h\",\"seq\":123456789012345678,"
              S_SUBJ),
        "{\"message\":{\"subject\":\"OTHER.x\",\"seq\":7,\"time\":"
        "\"2026-12-05T15:20:26Z\"},\"type\":\"x\"}",
        /* Taken, and an error for both: the time, the base64. */
        S_REC(S_SUBJ ",\"seq\":5,\"time\":\"2026-12-05\""),
        S_REC(S_SUBJ ",\"seq\":5,\"data\":\"aGVsbG8\"," S_TIME),
        S_REC(S_SUBJ ",\"seq\":5,\"data\":\"aGVsbG9=\"," S_TIME),
        S_REC(S_SUBJ ",\"seq\":5,\"data\":\"aGVs=bG8=\"," S_TIME),
    };
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
        if (!s_scan_agrees(taken[i]))
            fail_msg("the scanner left %s", taken[i]);
    /* Anything else goes to jansson (which may still read a record). */
    const char *left[] = {
        "", "{}", "[1]", "{\"message\":5}",
        "{\"type\":\"t\",\"error\":{\"code\":404,\"err_code\":10037,"
        "\"description\":\"no message found\"}}",
        S_REC(S_SUBJ ", \"seq\":5," S_TIME),                /* whitespace */
        S_REC(S_SUBJ ",\"seq\":5," S_TIME) " ",             /* after it */
        S_REC(S_SUBJ ",\"seq\":5," S_TIME) "x",
        S_REC("\"subject\":\"PARLEY.u.0123456789abcde\\u0066\",\"seq\":5,"
              S_TIME),                                       /* escape */
        S_REC(S_SUBJ ",\"seq\":05," S_TIME),                /* leading 0 */
        S_REC(S_SUBJ ",\"seq\":0," S_TIME),
        S_REC(S_SUBJ ",\"seq\":-5," S_TIME),
        S_REC(S_SUBJ ",\"seq\":5.0," S_TIME),
        S_REC(S_SUBJ ",\"seq\":1234567890123456789," S_TIME), /* 19 */
        S_REC(S_SUBJ ",\"seq\":5,\"seq\":6," S_TIME),       /* twice */
        S_REC(S_SUBJ ",\"seq\":5," S_TIME ",\"other\":1"),
        S_REC(S_SUBJ ",\"seq\":5"),                         /* no time */
        S_REC(S_SUBJ ",\"seq\":5,\"data\":7," S_TIME),
        S_REC(S_SUBJ ",\"seq\":5,\"data\":null," S_TIME),
        "{\"type\":1,\"message\":{" S_SUBJ ",\"seq\":5," S_TIME "}}",
        "{\"type\":\"t\"}",
        S_REC(S_SUBJ ",\"seq\":5," S_TIME) "}",
        "{\"message\":{" S_SUBJ ",\"seq\":5," S_TIME "",
    };
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
        if (s_scan_agrees(left[i]))
            fail_msg("the scanner took %s", left[i]);
    (void)s_scan_agrees(NULL);
#undef S_REC
#undef S_SUBJ
#undef S_TIME

    /* The base64 decoder against libsodium's, on edge cases. */
    const char *b64[] = { "", "QQ==", "QUI=", "QUJD", "QR==", "QUJ=", "Q",
                          "QQ=", "QQ===", "QUJD=", "QU=D", "Q===", "====",
                          "QUJDRA==", "-_-_", "QUJ\n", "+/+/", "QQ==QQ==" };
    for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
        uint8_t x[16], y[16];
        size_t xl = 0, yl = 0, n = strlen(b64[i]);
        int rx = pd_backbone__base64_decode(x, sizeof(x), b64[i], n, &xl);
        int ry = sodium_base642bin(y, sizeof(y), b64[i], n, NULL, &yl, NULL,
                                   sodium_base64_VARIANT_ORIGINAL);
        if (rx != ry || (rx == 0 && (xl != yl || memcmp(x, y, xl) != 0)))
            fail_msg("base64 \"%s\": %d (%zu bytes), libsodium %d (%zu)",
                     b64[i], rx, xl, ry, yl);
    }
    /* Not more than cap bytes; no byte above 0x7F (libsodium 1.0.18
     * reads those as '/'). */
    uint8_t two[2];
    size_t tl = 0;
    assert_int_equal(pd_backbone__base64_decode(two, sizeof(two),
                                                "QUJ\xa2", 4, &tl),
                     -1);
    assert_int_equal(pd_backbone__base64_decode(two, sizeof(two), "QUJD", 4,
                                                &tl),
                     -1);
}

/* ------------------------------------------------------------ one server */

static ph_nats_cluster_t s_one;

static int
s_one_up(void **state)
{
    (void)state;
    ph_nats_opts_t o = { .nodes = 1 };
    return ph_nats_start(&s_one, &o);
}

static int
s_one_down(void **state)
{
    (void)state;
    ph_nats_stop(&s_one, false);
    return 0;
}

/* A raw nats.c connection to server url, for setting up and checking. */
static void
s_raw(const char *url, natsConnection **nc, jsCtx **js)
{
    assert_int_equal(natsConnection_ConnectTo(nc, url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(js, *nc, NULL), NATS_OK);
}

static void
s_raw_close(natsConnection *nc, jsCtx *js)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void
test_stream_create_and_refuse(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_one.urls, "MADE", 1);
    o.retention_bytes = 1 << 20;
    o.retention_age = 3600;
    pd_backbone_t *bb = s_open(&o);
    pd_backbone_close(&bb);
    assert_null(bb);

    natsConnection *nc;
    jsCtx *js;
    s_raw(s_one.node[0].url, &nc, &js);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, js, "MADE", NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->Storage, js_FileStorage);
    assert_int_equal(si->Config->Replicas, 1);
    assert_int_equal(si->Config->SubjectsLen, 1);
    assert_string_equal(si->Config->Subjects[0], "MADE.u.*");
    assert_true(si->Config->Duplicates == 60LL * 1000000000);
    assert_true(si->Config->MaxAge == 3600LL * 1000000000);
    assert_true(si->Config->MaxBytes == 1 << 20);
    assert_true(si->Config->DenyDelete && si->Config->DenyPurge);
    jsStreamInfo_Destroy(si);

    /* Opening again with the same settings finds the stream fine. */
    bb = s_open(&o);
    pd_backbone_close(&bb);

    /* Other settings: refused, naming each field. */
    char err[1024] = "";
    int e = 0;
    pd_backbone_opts_t other = o;
    other.duplicate_window = 120;
    other.retention_age = 7200;
    other.retention_bytes = 0;
    assert_null(pd_backbone_open(&other, err, sizeof(err), &e));
    assert_int_equal(e, -EEXIST);
    fprintf(stderr, "[test] refused: %s\n", err);
    assert_non_null(strstr(err, "stream MADE exists with 3 settings"));
    assert_non_null(strstr(err, "duplicate_window 60s (parleyd: 120s)"));
    assert_non_null(strstr(err, "max_age 3600s (parleyd: 7200s)"));
    assert_non_null(strstr(err, "max_bytes 1048576 (parleyd: -1)"));

    /* A stream someone made by hand without parleyd's guards. */
    assert_int_equal(
        ph_nats_add_stream(&s_one, "HAND", "HAND.u.*", 1, true, 5000), 0);
    s_opts(&other, s_one.urls, "HAND", 1);
    assert_null(pd_backbone_open(&other, err, sizeof(err), &e));
    assert_int_equal(e, -EEXIST);
    assert_non_null(strstr(err, "storage memory (parleyd: file)"));
    assert_non_null(strstr(err, "deny_delete false (parleyd: true)"));
    assert_non_null(strstr(err, "deny_purge false (parleyd: true)"));
    assert_non_null(strstr(err, "duplicate_window 120s (parleyd: 60s)"));

    /* R3 on a server that is not clustered. */
    s_opts(&other, s_one.urls, "TRIPLE", 3);
    assert_null(pd_backbone_open(&other, err, sizeof(err), &e));
    assert_int_equal(e, -EPROTO);
    assert_non_null(strstr(err, "not clustered"));
    s_raw_close(nc, js);
}

static void
test_roundtrip_one(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_one.urls, "ROUND", 1);
    s_sink_t *k = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k->bb, 1), 0);
    assert_int_equal(pd_backbone_follow(k->bb, 1), -EALREADY);

    uint8_t a[PARLEY_PUBLICKEY_BYTES], b[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 1);
    s_signer(b, 2);
    char text[40][64];
    uint64_t last_a = 0, last_b = 0;
    /* Pipelined: the expected last seqs are what the stream will assign,
     * as each signer's updates go out in order on one connection. */
    for (uint64_t i = 0; i < 40; i++) {
        snprintf(text[i], sizeof(text[i]), "update %" PRIu64 " from %s", i,
                 i % 2 ? "b" : "a");
        s_submit(k, i, i % 2 ? b : a, 100 + i, i % 2 ? last_b : last_a,
                 text[i]);
        if (i % 2)
            last_b = i + 1;
        else
            last_a = i + 1;
    }
    s_wait_counts(k, 40, 40);
    s_assert_consecutive(k, 1);
    for (uint64_t i = 0; i < 40; i++) {
        assert_true(k->done[i]);
        assert_int_equal(k->result[i], PD_BACKBONE_STORED);
        assert_false(k->dup[i]);
        assert_int_equal(k->seq[i], i + 1);
        /* The follower's record at that seq holds exactly these bytes. */
        assert_int_equal(k->rec_len[i], strlen(text[i]));
        assert_memory_equal(k->rec_data[i], text[i], k->rec_len[i]);
        assert_string_equal(k->rec_key[i], s_key_id(i % 2 ? b : a));
    }
    assert_true(s_pump_until(&k, 1, s_caught_up, k, S_WAIT_MS));

    /* A resend, and other bytes under the same signer_seq: duplicates of
     * the original seq (the caller compares the bytes). */
    s_submit(k, 100, a, 100, last_a, "update 0 from a");
    s_submit(k, 101, a, 100, last_a, "other bytes, same signer_seq");
    /* An expectation behind what this client stored itself is raised to
     * it: stored, no conflict. */
    s_submit(k, 102, b, 102, 0, "b, behind its own last");
    s_wait_counts(k, 43, 41);
    assert_int_equal(k->result[100], PD_BACKBONE_STORED);
    assert_true(k->dup[100]);
    assert_int_equal(k->seq[100], 1);
    assert_int_equal(k->result[101], PD_BACKBONE_STORED);
    assert_true(k->dup[101]);
    assert_int_equal(k->seq[101], 1);
    assert_int_equal(k->result[102], PD_BACKBONE_STORED);
    assert_false(k->dup[102]);
    assert_int_equal(k->seq[102], 41);
    last_b = 41;

    /* A client that knows nothing of the subjects: expect_last behind the
     * subject is a conflict naming the real last, and so is 0 on a
     * subject that has updates. The conflict parks the submit, and what
     * the client submits on that subject behind it waits. */
    s_sink_t *kc = s_sink_new(s_open(&o));
    kc->keep_parked = true;
    s_submit(kc, 1, a, 500, 3, "stale expectation");
    s_submit(kc, 2, b, 501, 0, "first? no");
    s_wait_counts(kc, 2, 0);
    assert_int_equal(kc->result[1], PD_BACKBONE_CONFLICT);
    assert_int_equal(kc->seq[1], last_a);
    assert_int_equal(kc->result[2], PD_BACKBONE_CONFLICT);
    assert_int_equal(kc->seq[2], last_b);
    s_submit(kc, 3, a, 501, last_a, "behind the parked one");
    s_pump(kc, 300);
    assert_false(kc->done[3]);
    /* Submitted again expecting the real last: stored, then the one
     * behind it, in that order. Abandoned: the subject goes on. */
    assert_int_equal(pd_backbone_resubmit(kc->bb, 1, a, last_a), 0);
    assert_int_equal(pd_backbone_resubmit(kc->bb, 1, a, last_a), -ENOENT);
    assert_int_equal(pd_backbone_abandon(kc->bb, 2, b), 0);
    assert_int_equal(pd_backbone_abandon(kc->bb, 2, b), -ENOENT);
    kc->done[1] = false; /* a second completion for token 1 now */
    s_wait_counts(kc, 4, 0);
    assert_int_equal(kc->result[1], PD_BACKBONE_STORED);
    assert_int_equal(kc->seq[1], 42);
    assert_int_equal(kc->result[3], PD_BACKBONE_STORED);
    assert_int_equal(kc->seq[3], 43);
    pd_backbone_status_t st;
    pd_backbone_status(kc->bb, &st);
    assert_int_equal(st.conflicts, 2);
    assert_int_equal(st.inflight, 0);
    s_sink_free(kc);
    s_wait_counts(k, 43, 43);
    assert_int_equal(k->rec_seq[42], 43);

    pd_backbone_status(k->bb, &st);
    assert_int_equal(st.health, PD_BACKBONE_OK);
    assert_int_equal(st.submitted, 43);
    assert_int_equal(st.stored, 43);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(st.conflicts, 0);
    assert_int_equal(st.records, 43);
    assert_int_equal(st.followed, 43);
    assert_int_equal(st.inflight, 0);

    /* A second client following from the middle sees the same records. */
    s_sink_t *k2 = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k2->bb, 30), 0);
    s_wait_counts(k2, 0, 14);
    s_assert_consecutive(k2, 30);
    for (size_t i = 0; i < 14; i++) {
        assert_int_equal(k2->rec_len[i], k->rec_len[29 + i]);
        assert_memory_equal(k2->rec_data[i], k->rec_data[29 + i],
                            k2->rec_len[i]);
    }
    s_sink_free(k2);
    s_sink_free(k);
}

static void
test_slow_loop(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_one.urls, "SLOW", 1);
    o.follow_max_records = 8;
    o.max_inflight = 16;
    s_sink_t *k = s_sink_new(s_open(&o));
    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 3);
    /* 200 records in the stream before anyone follows. */
    char text[64];
    for (uint64_t i = 0; i < 200; i++) {
        snprintf(text, sizeof(text), "record %" PRIu64, i);
        s_submit(k, i, a, i + 1, i, text);
    }
    s_wait_counts(k, 200, 0);
    assert_int_equal(pd_backbone_follow(k->bb, 1), 0);
    /* Let the follower fill its queue and more without draining it. */
    usleep(500 * 1000);
    s_wait_counts(k, 200, 200);
    s_assert_consecutive(k, 1);
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    fprintf(stderr, "[test] slow loop: %" PRIu64 " pauses, %" PRIu64
                    " subscribes\n",
            st.pauses, st.subscribes);
    assert_true(st.pauses >= 1);
    assert_true(st.subscribes >= 2);
    s_sink_free(k);
}

static void
test_stream_remade(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_one.urls, "GONE", 1);
    s_sink_t *k = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k->bb, 1), 0);
    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 10);
    s_submit(k, 0, a, 1, 0, "one");
    s_submit(k, 1, a, 2, 1, "two");
    s_wait_counts(k, 2, 2);

    natsConnection *nc;
    jsCtx *js;
    s_raw(s_one.node[0].url, &nc, &js);
    jsErrCode jerr = 0;
    assert_int_equal(js_DeleteStream(js, "GONE", NULL, &jerr), NATS_OK);
    k->health = PD_BACKBONE_NO_STREAM;
    assert_true(s_pump_until(&k, 1, s_has_health, k, S_WAIT_MS));
    /* Made again (empty, a new creation time): never the same seqs. */
    pd_backbone_t *other = s_open(&o);
    pd_backbone_close(&other);
    /* (ok first, while the leaders' answers that say so add up) */
    assert_true(s_pump_until(&k, 1, s_saw_diverged, k, S_WAIT_MS));
    pd_backbone_submit_t sub = { .token = 2, .signer = a, .signer_seq = 3,
                                 .expect_last = 2, .data = "x", .len = 1 };
    assert_int_equal(pd_backbone_submit(k->bb, &sub), -ESTALE);
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    assert_non_null(strstr(st.detail, "made again"));
    s_raw_close(nc, js);
    s_sink_free(k);
}

static void
test_no_server(void **state)
{
    (void)state;
    int port = ph_free_port();
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    pd_backbone_opts_t o;
    s_opts(&o, url, "NONE", 1);
    o.open_timeout_ms = 600;
    char err[512] = "";
    int e = 0;
    int64_t t0 = parley__mono_ms();
    assert_null(pd_backbone_open(&o, err, sizeof(err), &e));
    int64_t took = parley__mono_ms() - t0;
    assert_int_equal(e, -ETIMEDOUT);
    assert_non_null(strstr(err, "no NATS server answers"));
    fprintf(stderr, "[test] no server: gave up after %" PRId64 " ms: %s\n",
            took, err);
}

/* Store n records text[i] ("<what> <seq>") in stream `stream` of the one
 * server, seqs 1..n, one signer (seed byte given). */
static void
s_fill(const char *stream, uint8_t seed, const char *what, size_t n,
       char (*text)[64])
{
    pd_backbone_opts_t o;
    s_opts(&o, s_one.urls, stream, 1);
    s_sink_t *w = s_sink_new(s_open(&o));
    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, seed);
    for (uint64_t i = 0; i < n; i++) {
        snprintf(text[i], 64, "%s %" PRIu64, what, i + 1);
        s_submit(w, i, a, i + 1, i, text[i]);
    }
    s_wait_counts(w, n, 0);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(w->seq[i], i + 1);
    s_sink_free(w);
}

/* A client of stream `stream` through relay px, following from seq 1. */
/* A relay for stream `stream` in front of the one server. */
static ph_nats_proxy_t *
s_proxy(const char *stream)
{
    ph_nats_proxy_t *px = NULL;
    assert_int_equal(ph_nats_proxy_start(&px, stream, s_one.node[0].port), 0);
    return px;
}

/* Wait for the n records of s_fill() (text[i] at seq i + 1): each handed
 * over once, in order, with those bytes, and nothing after them. */
static void
s_expect_texts(s_sink_t *k, size_t n, char (*text)[64])
{
    s_wait_counts(k, 0, n);
    s_pump(k, 200);
    assert_int_equal(k->n_recs, n);
    s_assert_consecutive(k, 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(k->rec_len[i], strlen(text[i]));
        assert_memory_equal(k->rec_data[i], text[i], k->rec_len[i]);
    }
}

static s_sink_t *
s_follow_via(ph_nats_proxy_t *px, const char *stream)
{
    pd_backbone_opts_t o;
    s_opts(&o, ph_nats_proxy_url(px), stream, 1);
    s_sink_t *k = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k->bb, 1), 0);
    return k;
}

static void
test_mismatch_in_window(void **state)
{
    (void)state;
    enum { N = 64, BAD = 20, LAST = BAD + S_CHECK_WINDOW - 1 };
    static char text[N][64];
    s_fill("TAMPER", 11, "window test", N, text);

    /* A follower behind the relay: the consumer shows other bytes at BAD
     * once; the server's answer about BAD waits until LAST is asked. */
    ph_nats_proxy_t *px = s_proxy("TAMPER");
    ph_nats_proxy_tamper(px, BAD, 1);
    ph_nats_proxy_hold_get(px, BAD, LAST, 10000);
    s_sink_t *k = s_follow_via(px, "TAMPER");
    s_expect_texts(k, N, text);
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    assert_int_equal(st.health, PD_BACKBONE_OK);
    assert_int_equal(st.rereads, 1);
    assert_int_equal(st.checked, N);
    assert_int_equal(ph_nats_proxy_tampered(px), 1);
    int on_time = 0;
    assert_int_equal(ph_nats_proxy_held(px, &on_time), 1);

    /* The requests: BAD, then every seq up to LAST while its answer was
     * held (the window full), then BAD again after the re-read and each
     * of BAD+1..LAST again (their first answers dropped with it). */
    static uint64_t gets[4096];
    size_t n = ph_nats_proxy_gets(px, gets, NULL, 4096);
    assert_true(n <= 4096);
    size_t first = n, second = n;
    for (size_t i = 0; i < n; i++)
        if (gets[i] == BAD) {
            if (first == n)
                first = i;
            else if (second == n)
                second = i;
        }
    fprintf(stderr, "[test] mismatch at seq %d: %zu requests; the answer "
                    "about it held until seq %d was asked: %s\n",
            BAD, n, LAST, on_time ? "yes" : "no");
    assert_true(first < n && second < n);
    /* Two askers may send their requests in either order: what counts is
     * that each was asked before the re-read asked about BAD again, and
     * once more in all. */
    for (uint64_t seq = BAD + 1; seq <= LAST; seq++) {
        int before = 0, all = 0;
        for (size_t i = 0; i < n; i++)
            if (gets[i] == seq) {
                all++;
                before += i < second;
            }
        if (before < 1 || all < 2)
            fail_msg("seq %" PRIu64 " asked %d times before the re-read of "
                     "%d asked about it again, %d in all",
                     seq, before, BAD, all);
    }
    assert_int_equal(on_time, 1);
    s_sink_free(k);
    ph_nats_proxy_stop(&px);
}

static void
test_absent_retry(void **state)
{
    (void)state;
    enum { N = 32, ABSENT = 5, TIMES = 3 };
    static char text[N][64];
    s_fill("ABSENT", 12, "absent test", N, text);

    /* The server says TIMES times that it holds no record at ABSENT. */
    ph_nats_proxy_t *px = s_proxy("ABSENT");
    ph_nats_proxy_absent(px, ABSENT, TIMES);
    s_sink_t *k = s_follow_via(px, "ABSENT");
    s_expect_texts(k, N, text);
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    assert_int_equal(st.rereads, 0); /* fewer than S_ABSENT_MAX */

    /* Asked TIMES + 1 times, each time at least S_CHECK_RETRY_MS after
     * the one before, however many other answers came meanwhile. */
    static uint64_t gets[4096];
    static int64_t at[4096];
    size_t n = ph_nats_proxy_gets(px, gets, at, 4096);
    assert_true(n <= 4096);
    int asked = 0;
    int64_t prev = 0, gap_min = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (gets[i] != ABSENT)
            continue;
        if (asked++ > 0 && at[i] - prev < gap_min)
            gap_min = at[i] - prev;
        prev = at[i];
    }
    fprintf(stderr, "[test] seq %d asked %d times, at least %" PRId64
                    " ms apart\n",
            ABSENT, asked, gap_min);
    assert_int_equal(asked, TIMES + 1);
    /* The answer takes a little of the interval before the wait. */
    assert_true(gap_min >= S_CHECK_RETRY_MS - 20);
    s_sink_free(k);
    ph_nats_proxy_stop(&px);
}

/* How often the requests seen by px asked about seq. */
static int
s_asked(ph_nats_proxy_t *px, uint64_t seq)
{
    static uint64_t gets[4096];
    size_t n = ph_nats_proxy_gets(px, gets, NULL, 4096);
    assert_true(n <= 4096);
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += gets[i] == seq;
    return k;
}

static void
test_answers_out_of_order(void **state)
{
    (void)state;
    enum { N = 64, HELD = 20, LAST = HELD + S_CHECK_WINDOW - 1 };
    static char text[N][64];
    s_fill("ORDER", 13, "order test", N, text);

    /* The answer about HELD comes after those about HELD+1..LAST. */
    ph_nats_proxy_t *px = s_proxy("ORDER");
    ph_nats_proxy_hold_get(px, HELD, LAST, 10000);
    s_sink_t *k = s_follow_via(px, "ORDER");
    s_expect_texts(k, N, text);
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    assert_int_equal(st.health, PD_BACKBONE_OK);
    assert_int_equal(st.rereads, 0);
    assert_int_equal(st.checked, N);
    assert_int_equal(st.late_answers, 0);
    int on_time = 0;
    assert_int_equal(ph_nats_proxy_held(px, &on_time), 1);
    assert_int_equal(on_time, 1);
    for (uint64_t seq = 1; seq <= N; seq++)
        if (s_asked(px, seq) != 1)
            fail_msg("seq %" PRIu64 " asked %d times", seq,
                     s_asked(px, seq));
    fprintf(stderr, "[test] the answer about seq %d came after those about "
                    "%d-%d: every record handed over once, in order\n",
            HELD, HELD + 1, LAST);
    s_sink_free(k);
    ph_nats_proxy_stop(&px);
}

static bool
s_late_seen(void *arg)
{
    s_sink_t *k = arg;
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    return st.late_answers > 0;
}

static void
test_late_answer(void **state)
{
    (void)state;
    enum { N = 32, LATE = 10, HOLD_MS = S_CHECK_WAIT_MS + 600 };
    static char text[N][64];
    s_fill("LATE", 14, "late test", N, text);

    /* The answer about LATE comes HOLD_MS after it was asked for (until
     * seq 0 is asked: never), past the check's timeout. */
    ph_nats_proxy_t *px = s_proxy("LATE");
    ph_nats_proxy_hold_get(px, LATE, 0, HOLD_MS);
    s_sink_t *k = s_follow_via(px, "LATE");
    s_expect_texts(k, N, text);
    if (!s_pump_until(&k, 1, s_late_seen, k, S_WAIT_MS))
        fail_msg("the answer held back was not counted late");
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    assert_int_equal(st.health, PD_BACKBONE_OK);
    assert_int_equal(st.rereads, 0);
    assert_int_equal(st.checked, N);
    assert_int_equal(st.late_answers, 1);
    int on_time = 0;
    assert_int_equal(ph_nats_proxy_held(px, &on_time), 1);
    assert_int_equal(on_time, 0);
    /* Asked again once after the timeout; the others once. */
    assert_int_equal(s_asked(px, LATE), 2);
    for (uint64_t seq = 1; seq <= N; seq++)
        if (seq != LATE && s_asked(px, seq) != 1)
            fail_msg("seq %" PRIu64 " asked %d times", seq,
                     s_asked(px, seq));
    fprintf(stderr, "[test] the answer about seq %d held %d ms: asked again "
                    "after the timeout, the late answer left alone\n",
            LATE, HOLD_MS);
    s_sink_free(k);
    ph_nats_proxy_stop(&px);
}

static void
test_undecided_asked_together(void **state)
{
    (void)state;
    enum { N = 32, FIRST = 5, SPAN = 8 };
    static char text[N][64];
    s_fill("SPAN", 15, "span test", N, text);

    /* The server says once for each of FIRST..FIRST+SPAN-1 that it holds
     * no record there (as a leader that lags behind the replica). */
    ph_nats_proxy_t *px = s_proxy("SPAN");
    ph_nats_proxy_absent_span(px, FIRST, SPAN);
    s_sink_t *k = s_follow_via(px, "SPAN");
    s_expect_texts(k, N, text);
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    assert_int_equal(st.rereads, 0);
    assert_int_equal(st.checked, N);

    /* Each asked twice; the second time all together, when the first of
     * them is asked again: not one retry interval after another. */
    static uint64_t gets[4096];
    static int64_t at[4096];
    size_t n = ph_nats_proxy_gets(px, gets, at, 4096);
    assert_true(n <= 4096);
    int64_t again[SPAN];
    for (int s = 0; s < SPAN; s++) {
        int asked = 0;
        for (size_t i = 0; i < n; i++)
            if (gets[i] == (uint64_t)(FIRST + s) && asked++ == 1)
                again[s] = at[i];
        if (asked != 2)
            fail_msg("seq %d asked %d times", FIRST + s, asked);
    }
    int64_t spread = 0;
    for (int s = 1; s < SPAN; s++)
        if (again[s] - again[0] > spread)
            spread = again[s] - again[0];
    fprintf(stderr, "[test] seqs %d-%d without a record at first: asked "
                    "again within %" PRId64 " ms of each other\n",
            FIRST, FIRST + SPAN - 1, spread);
    assert_true(spread < S_CHECK_RETRY_MS);
    s_sink_free(k);
    ph_nats_proxy_stop(&px);
}

/* ------------------------------------------------------------ TLS */

static ph_nats_cluster_t s_tls;
static char s_tls_dir[PH_PATH_MAX];
static char s_ca[PH_PATH_MAX], s_cert[PH_PATH_MAX], s_key[PH_PATH_MAX];

/* Run openssl with args in dir; 0 or -1 (output printed). */
static int
s_openssl(const char *dir, const char *const *args)
{
    const char *argv[32] = { "/usr/bin/openssl" };
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    ph_proc_t p = PH_PROC_INIT;
    int rc = ph_run(&p, argv, NULL, dir, NULL, 20000);
    if (rc != 0 || p.status != 0) {
        ph_proc_report(&p, "openssl");
        rc = -1;
    }
    ph_proc_free(&p);
    return rc;
}

/* A CA, a server certificate for nats.test and 127.0.0.1, a client one. */
static int
s_make_certs(const char *dir)
{
    char ext[PH_PATH_MAX];
    if (ph_path(ext, sizeof(ext), dir, "ext.cnf") != 0)
        return -1;
    const char *exts = "[srv]\nsubjectAltName=DNS:nats.test,IP:127.0.0.1\n"
                       "extendedKeyUsage=serverAuth\n"
                       "[cli]\nextendedKeyUsage=clientAuth\n";
    if (ph_file_write(ext, exts, strlen(exts), 0600) != 0)
        return -1;
    const char *ca[] = { "req", "-x509", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                         "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
                         "/CN=parley test CA", NULL };
    const char *sreq[] = { "req", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                           "server.key", "-out", "server.csr", "-subj",
                           "/CN=nats.test", NULL };
    const char *ssign[] = { "x509", "-req", "-in", "server.csr", "-CA",
                            "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                            "-out", "server.pem", "-days", "2", "-extfile",
                            "ext.cnf", "-extensions", "srv", NULL };
    const char *creq[] = { "req", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                           "client.key", "-out", "client.csr", "-subj",
                           "/CN=parleyd", NULL };
    const char *csign[] = { "x509", "-req", "-in", "client.csr", "-CA",
                            "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                            "-out", "client.pem", "-days", "2", "-extfile",
                            "ext.cnf", "-extensions", "cli", NULL };
    if (s_openssl(dir, ca) != 0 || s_openssl(dir, sreq) != 0
        || s_openssl(dir, ssign) != 0 || s_openssl(dir, creq) != 0
        || s_openssl(dir, csign) != 0)
        return -1;
    return 0;
}

static int
s_tls_up(void **state)
{
    (void)state;
    if (access("/usr/bin/openssl", X_OK) != 0)
        return 0; /* the tests skip */
    if (ph_tmpdir_make(s_tls_dir, sizeof(s_tls_dir)) != 0
        || s_make_certs(s_tls_dir) != 0)
        return -1;
    char key[PH_PATH_MAX], srv[PH_PATH_MAX], conf[2048];
    if (ph_path(s_ca, sizeof(s_ca), s_tls_dir, "ca.pem") != 0
        || ph_path(s_cert, sizeof(s_cert), s_tls_dir, "client.pem") != 0
        || ph_path(s_key, sizeof(s_key), s_tls_dir, "client.key") != 0
        || ph_path(key, sizeof(key), s_tls_dir, "server.key") != 0
        || ph_path(srv, sizeof(srv), s_tls_dir, "server.pem") != 0
        || chmod(s_key, 0600) != 0)
        return -1;
    snprintf(conf, sizeof(conf),
             "tls {\n  cert_file: \"%s\"\n  key_file: \"%s\"\n"
             "  ca_file: \"%s\"\n  verify: true\n}\n",
             srv, key, s_ca);
    ph_nats_opts_t o = { .nodes = 1,
                         .extra_conf = conf,
                         .url_scheme = "tls",
                         .tls_ca = s_ca,
                         .tls_cert = s_cert,
                         .tls_key = s_key };
    return ph_nats_start(&s_tls, &o);
}

static int
s_tls_down(void **state)
{
    (void)state;
    ph_nats_stop(&s_tls, false);
    if (s_tls_dir[0] != '\0')
        ph_tmpdir_remove(s_tls_dir);
    return 0;
}

static void
test_tls(void **state)
{
    (void)state;
    if (s_tls.n == 0)
        skip(); /* no openssl to make certificates with */
    assert_non_null(strstr(s_tls.urls, "tls://127.0.0.1:"));
    pd_backbone_opts_t o;
    s_opts(&o, s_tls.urls, "SECURE", 1);
    o.tls_ca_file = s_ca;
    o.tls_cert_file = s_cert;
    o.tls_key_file = s_key;
    o.tls_hostname = "nats.test";
    s_sink_t *k = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k->bb, 1), 0);
    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 9);
    s_submit(k, 0, a, 1, 0, "over TLS");
    s_wait_counts(k, 1, 1);
    assert_int_equal(k->result[0], PD_BACKBONE_STORED);
    assert_memory_equal(k->rec_data[0], "over TLS", 8);
    s_sink_free(k);

    struct {
        const char *what;
        bool ca, cert;
        const char *host;
    } bad[] = {
        { "no client certificate", true, false, "nats.test" },
        { "another host name", true, true, "other.test" },
        { "no CA", false, true, "nats.test" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s_opts(&o, s_tls.urls, "SECURE", 1);
        o.open_timeout_ms = 1500;
        o.tls_ca_file = bad[i].ca ? s_ca : NULL;
        o.tls_cert_file = bad[i].cert ? s_cert : NULL;
        o.tls_key_file = bad[i].cert ? s_key : NULL;
        o.tls_hostname = bad[i].host;
        char err[512] = "";
        int e = 0;
        assert_null(pd_backbone_open(&o, err, sizeof(err), &e));
        fprintf(stderr, "[test] %s: %d: %s\n", bad[i].what, e, err);
        /* Without a client certificate the server drops the connection
         * after the TLS handshake (TLS 1.3), which nats.c reports as a
         * connection that gave no answer: then open times out. */
        assert_true(e == -EACCES || (!bad[i].cert && e == -ETIMEDOUT));
    }
}

/* ------------------------------------------------------------ three servers */

static ph_nats_cluster_t s_three;

static int
s_three_up(void **state)
{
    (void)state;
    ph_nats_opts_t o = { .nodes = 3 };
    return ph_nats_start(&s_three, &o);
}

static int
s_three_down(void **state)
{
    (void)state;
    ph_nats_stop(&s_three, false);
    return 0;
}

/* Index of the node a client is connected to, from its status. */
static int
s_connected_node(pd_backbone_t *bb)
{
    pd_backbone_status_t st;
    pd_backbone_status(bb, &st);
    for (int i = 0; i < s_three.n; i++)
        if (strstr(st.server, s_three.node[i].url + 7) != NULL)
            return i;
    return -1;
}

static void
test_roundtrip_three(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_three.node[0].url, "TRI", 3);
    /* Client 1 on n1 (plus the others to fail over to, listed after). */
    char list1[512], list2[512];
    snprintf(list1, sizeof(list1), "%s,%s,%s", s_three.node[0].url,
             s_three.node[1].url, s_three.node[2].url);
    snprintf(list2, sizeof(list2), "%s", s_three.node[1].url);
    o.servers = list1;
    s_sink_t *k1 = s_sink_new(s_open(&o));
    o.servers = list2;
    s_sink_t *k2 = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k1->bb, 1), 0);
    assert_int_equal(pd_backbone_follow(k2->bb, 1), 0);

    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 4);
    char text[64];
    for (uint64_t i = 0; i < 30; i++) {
        snprintf(text, sizeof(text), "r3 update %" PRIu64, i);
        s_submit(k1, i, a, i + 1, i, text);
    }
    s_wait_counts(k1, 30, 30);
    s_wait_counts(k2, 0, 30);
    s_assert_consecutive(k1, 1);
    s_assert_consecutive(k2, 1);
    for (uint64_t i = 0; i < 30; i++) {
        assert_int_equal(k1->result[i], PD_BACKBONE_STORED);
        assert_int_equal(k1->seq[i], i + 1);
        assert_int_equal(k1->rec_len[i], k2->rec_len[i]);
        assert_memory_equal(k1->rec_data[i], k2->rec_data[i],
                            k1->rec_len[i]);
    }

    /* SIGSTOP the server client 1 uses: it moves to another one, and
     * both followers continue without a gap. */
    int n = s_connected_node(k1->bb);
    assert_true(n >= 0);
    fprintf(stderr, "[test] stopping %s (client 1's server)\n",
            s_three.node[n].name);
    assert_int_equal(ph_nats_sigstop(&s_three, n), 0);
    uint64_t token = 30, last = 30;
    int64_t deadline = parley__mono_ms() + S_WAIT_MS;
    size_t stored = 0;
    while (stored < 10 && parley__mono_ms() < deadline) {
        snprintf(text, sizeof(text), "after stop %" PRIu64, token);
        s_submit(k1, token, a, token + 1, last, text);
        s_count_t c = { k1, token + 1, 0 };
        assert_true(s_pump_until(&k1, 1, s_have_counts, &c, S_WAIT_MS));
        if (k1->result[token] == PD_BACKBONE_STORED) {
            last = k1->seq[token];
            stored++;
        } else if (k1->result[token] == PD_BACKBONE_CONFLICT) {
            last = k1->seq[token]; /* a timed-out one was stored later */
        }
        token++;
        s_pump(k2, 0);
    }
    assert_int_equal(stored, 10);
    assert_int_not_equal(s_connected_node(k1->bb), n);
    assert_int_equal(ph_nats_sigcont(&s_three, n), 0);
    s_wait_counts(k1, token, last);
    s_wait_counts(k2, 0, last);
    s_assert_consecutive(k1, 1);
    s_assert_consecutive(k2, 1);
    for (uint64_t i = 0; i < last; i++) {
        if (k1->rec_len[i] != k2->rec_len[i]
            || memcmp(k1->rec_data[i], k2->rec_data[i], k1->rec_len[i])
                   != 0) {
            for (uint64_t t = 30; t < token; t++)
                fprintf(stderr, "[test] token %" PRIu64 ": %s seq %" PRIu64
                                "%s\n",
                        t, pd_backbone_result_name(k1->result[t]),
                        k1->seq[t], k1->dup[t] ? " dup" : "");
            for (uint64_t j = 28; j < last; j++)
                fprintf(stderr, "[test] seq %" PRIu64 ": k1 \"%.*s\" k2 "
                                "\"%.*s\"\n",
                        j + 1, (int)k1->rec_len[j], k1->rec_data[j],
                        (int)k2->rec_len[j], k2->rec_data[j]);
            fail_msg("seq %" PRIu64 " differs between the followers", i + 1);
        }
    }
    pd_backbone_status_t st;
    pd_backbone_status(k1->bb, &st);
    fprintf(stderr, "[test] after the stop: %" PRIu64 " reconnects, %" PRIu64
                    " unavailable, %" PRIu64 " conflicts, last seq %" PRIu64
                    "\n",
            st.reconnects, st.unavailable, st.conflicts, last);
    assert_true(st.reconnects >= 1);
    s_sink_free(k2);
    s_sink_free(k1);
}

static void
test_race_three(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_three.node[0].url, "RACE", 3);
    s_sink_t *k1 = s_sink_new(s_open(&o));
    o.servers = s_three.node[2].url;
    s_sink_t *k2 = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k1->bb, 1), 0);
    s_sink_t *ks[2] = { k1, k2 };

    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 5);
    enum { S_ROUNDS = 60 };
    uint64_t last = 0;
    int dup_answers = 0, conflict_answers = 0;
    for (uint64_t r = 0; r < S_ROUNDS; r++) {
        char t1[64], t2[64];
        snprintf(t1, sizeof(t1), "round %" PRIu64 " via n1", r);
        snprintf(t2, sizeof(t2), "round %" PRIu64 " via n3", r);
        /* Same signer, same signer_seq, same expectation, other bytes. */
        s_submit(k1, r, a, 1000 + r, last, t1);
        s_submit(k2, r, a, 1000 + r, last, t2);
        s_count_t c1 = { k1, r + 1, 0 }, c2 = { k2, r + 1, 0 };
        assert_true(s_pump_until(ks, 2, s_have_counts, &c1, S_WAIT_MS));
        assert_true(s_pump_until(ks, 2, s_have_counts, &c2, S_WAIT_MS));
        bool w1 = k1->result[r] == PD_BACKBONE_STORED && !k1->dup[r];
        bool w2 = k2->result[r] == PD_BACKBONE_STORED && !k2->dup[r];
        if (w1 == w2)
            fail_msg("round %" PRIu64 ": %s%s / %s%s: want exactly one "
                     "stored",
                     r, pd_backbone_result_name(k1->result[r]),
                     k1->dup[r] ? " dup" : "",
                     pd_backbone_result_name(k2->result[r]),
                     k2->dup[r] ? " dup" : "");
        s_sink_t *loser = w1 ? k2 : k1;
        uint64_t won = w1 ? k1->seq[r] : k2->seq[r];
        assert_true(won > last);
        /* The loser learns the winner's seq either way. */
        assert_int_equal(loser->seq[r], won);
        if (loser->result[r] == PD_BACKBONE_STORED) {
            assert_true(loser->dup[r]);
            dup_answers++;
        } else {
            assert_int_equal(loser->result[r], PD_BACKBONE_CONFLICT);
            conflict_answers++;
        }
        last = won;
    }
    fprintf(stderr, "[test] race: %d rounds, loser told duplicate %d times, "
                    "conflict %d times\n",
            S_ROUNDS, dup_answers, conflict_answers);
    /* The stream holds exactly one record per round. */
    s_wait_counts(k1, S_ROUNDS, S_ROUNDS);
    s_assert_consecutive(k1, 1);
    assert_int_equal(last, S_ROUNDS);
    s_pump(k1, 200);
    assert_int_equal(k1->n_recs, S_ROUNDS);
    s_sink_free(k2);
    s_sink_free(k1);
}

static bool
s_has_health(void *arg)
{
    s_sink_t *k = arg;
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    return st.health == k->health && k->n_states > 0;
}

/* The health was DIVERGED at some time. */
static bool
s_saw_diverged(void *arg)
{
    const s_sink_t *k = arg;
    return k->saw_health[PD_BACKBONE_DIVERGED];
}

static void
test_quorum_loss_three(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_three.urls, "QUORUM", 3);
    s_sink_t *k = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k->bb, 1), 0);
    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 6);
    s_submit(k, 0, a, 1, 0, "before");
    s_wait_counts(k, 1, 1);
    assert_int_equal(k->result[0], PD_BACKBONE_STORED);
    assert_true(s_pump_until(&k, 1, s_caught_up, k, S_WAIT_MS));

    /* Kill the two servers that do not lead the stream. */
    int leader = ph_nats_stream_leader(&s_three, "QUORUM", S_WAIT_MS);
    assert_true(leader >= 0);
    for (int i = 0; i < 3; i++)
        if (i != leader)
            assert_int_equal(ph_nats_kill9(&s_three, i), 0);
    fprintf(stderr, "[test] killed all but %s\n", s_three.node[leader].name);

    /* A submit now ends UNAVAILABLE within its timeout (plus the time to
     * reconnect if the client was on a killed server). */
    int64_t t0 = parley__mono_ms();
    s_submit(k, 1, a, 2, 1, "during the outage");
    s_submit(k, 99, a, 3, 1, "queued behind it");
    s_wait_counts(k, 3, 1);
    int64_t took = k->done_ms[1] - t0;
    fprintf(stderr, "[test] submit without quorum: %s after %" PRId64
                    " ms\n",
            pd_backbone_result_name(k->result[1]), took);
    assert_int_equal(k->result[1], PD_BACKBONE_UNAVAILABLE);
    assert_true(took < 3 * (int64_t)o.publish_timeout_ms + 3000);
    /* The one queued behind it on the same signer ends with it, without
     * a timeout of its own. */
    assert_int_equal(k->result[99], PD_BACKBONE_UNAVAILABLE);
    assert_int_equal(k->done_batch[99], k->done_batch[1]);
    /* Both count as timeouts when the first waited out its timeout (the
     * one behind it ended with it), as neither otherwise (no responders,
     * no connection: at once). nats.c times the wait on its own clock,
     * in ms: allow it a tenth. */
    pd_backbone_status_t st;
    pd_backbone_status(k->bb, &st);
    fprintf(stderr, "[test] unavailable %" PRIu64 ", of them timeouts %"
                    PRIu64 "\n",
            st.unavailable, st.timeouts);
    assert_int_equal(st.unavailable, 2);
    assert_int_equal(st.timeouts,
                     took >= (int64_t)o.publish_timeout_ms * 9 / 10 ? 2 : 0);
    k->health = PD_BACKBONE_NO_QUORUM;
    assert_true(s_pump_until(&k, 1, s_has_health, k, S_WAIT_MS));

    /* Restart them: the same client stores again and reports ok. */
    for (int i = 0; i < 3; i++)
        if (i != leader)
            assert_int_equal(ph_nats_restart(&s_three, i), 0);
    uint64_t token = 100, stored_seq = 0;
    int64_t t_restart = parley__mono_ms();
    int64_t deadline = t_restart + 60000; /* a new election: up to ~20 s */
    while (stored_seq == 0 && parley__mono_ms() < deadline) {
        /* The outage's update may have been stored after all: resend it
         * as is, then it is a duplicate or new, never two records. */
        s_submit(k, token, a, 2, 1, "during the outage");
        s_token_t t = { k, token };
        assert_true(s_pump_until(&k, 1, s_has_token, &t, S_WAIT_MS));
        if (k->result[token] == PD_BACKBONE_STORED)
            stored_seq = k->seq[token];
        else if (k->result[token] == PD_BACKBONE_CONFLICT)
            stored_seq = k->seq[token]; /* stored after all: checked below */
        else
            usleep(200 * 1000);
        token++;
    }
    fprintf(stderr, "[test] stored again %" PRId64 " ms after the restart, "
                    "%" PRIu64 " tries\n",
            parley__mono_ms() - t_restart, token - 100);
    assert_int_equal(stored_seq, 2);
    k->health = PD_BACKBONE_OK;
    assert_true(s_pump_until(&k, 1, s_has_health, k, S_WAIT_MS));
    s_submit(k, token, a, 3, 2, "after");
    s_token_t t = { k, token };
    assert_true(s_pump_until(&k, 1, s_has_token, &t, S_WAIT_MS));
    s_wait_counts(k, 0, 3);
    assert_int_equal(k->result[token], PD_BACKBONE_STORED);
    assert_int_equal(k->seq[token], 3);
    s_assert_consecutive(k, 1);
    assert_memory_equal(k->rec_data[1], "during the outage", 17);
    assert_true(k->saw_health[PD_BACKBONE_NO_QUORUM]);
    s_sink_free(k);
}

static void
test_close_stopped_three(void **state)
{
    (void)state;
    pd_backbone_opts_t o;
    s_opts(&o, s_three.node[2].url, "CLOSE", 3);
    s_sink_t *k = s_sink_new(s_open(&o));
    assert_int_equal(pd_backbone_follow(k->bb, 1), 0);
    uint8_t a[PARLEY_PUBLICKEY_BYTES];
    s_signer(a, 8);
    s_submit(k, 0, a, 1, 0, "one");
    s_wait_counts(k, 1, 1);
    assert_int_equal(ph_nats_sigstop(&s_three, 2), 0);
    s_submit(k, 1, a, 2, 1, "two, never answered");
    s_pump(k, 100);
    int64_t t0 = parley__mono_ms();
    s_sink_free(k);
    fprintf(stderr, "[test] close with the server stopped took %" PRId64
                    " ms\n",
            parley__mono_ms() - t0);
    assert_int_equal(ph_nats_sigcont(&s_three, 2), 0);
    assert_int_equal(ph_nats_wait_ready(&s_three, S_WAIT_MS), 0);
}

int
main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_answer_parse),
        cmocka_unit_test(test_answer_scan),
    };
    const struct CMUnitTest one[] = {
        cmocka_unit_test(test_stream_create_and_refuse),
        cmocka_unit_test(test_roundtrip_one),
        cmocka_unit_test(test_slow_loop),
        cmocka_unit_test(test_stream_remade),
        cmocka_unit_test(test_no_server),
        cmocka_unit_test(test_mismatch_in_window),
        cmocka_unit_test(test_absent_retry),
        cmocka_unit_test(test_answers_out_of_order),
        cmocka_unit_test(test_late_answer),
        cmocka_unit_test(test_undecided_asked_together),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tls),
    };
    const struct CMUnitTest three[] = {
        cmocka_unit_test(test_roundtrip_three),
        cmocka_unit_test(test_race_three),
        cmocka_unit_test(test_quorum_loss_three),
        cmocka_unit_test(test_close_stopped_three),
    };
    int rc = cmocka_run_group_tests_name("options", pure, NULL, NULL);
    rc += cmocka_run_group_tests_name("one server", one, s_one_up, s_one_down);
    rc += cmocka_run_group_tests_name("tls", tls, s_tls_up, s_tls_down);
    rc += cmocka_run_group_tests_name("three servers", three, s_three_up,
                                      s_three_down);
    nats_CloseAndWait(5000);
    return rc;
}
