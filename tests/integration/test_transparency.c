/*
 * test_transparency.c - the transparency log against real daemons,
 * subscribers and a witness, and the attacks of issue 16 (docs/
 * transparency.md, "Threat model"), each ending in the event it must:
 *
 *   - a proxy between daemon and subscriber drops one update and shifts
 *     the rest, heartbeats included: LOG_INCONSISTENT for an all/
 *     subscriber (its own tree) and a filtered one (an inclusion proof);
 *   - a checkpoint on the feed signed with another key, or mangled:
 *     rejected (REJECTED, seq 0), never trusted;
 *   - the state directory restored from an older copy, with other updates
 *     published after: a subscriber with a log state file raises
 *     LOG_INCONSISTENT at its next start (a fork at the saved size; a
 *     rollback behind it is LOG_STALE until the log grows past it with
 *     another history, then LOG_INCONSISTENT);
 *   - two daemons with one log key serving two histories: the witness
 *     both subscribers require cosigns the first and refuses the second,
 *     whose subscriber gets LOG_STALE with the uncosigned checkpoint;
 *   - the daemon stopped (SIGSTOP): LOG_STALE after max_staleness, and
 *     LOG_VERIFIED when it resumes;
 *   - and no false alarm on an honest daemon across restarts, kill -9
 *     with a torn tail, and retention.
 */
#include "harness.h"
#include "note.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#define S_TIMEOUT 20000
#define ORIGIN "parley.test/gaza"
#define S_HEARTBEAT_MS 200

/* ============================================================= fixture */

typedef struct {
    char dir[PH_PATH_MAX];
    ph_key_t signer;               /* publishes */
    ph_key_t log;                  /* the log key (seed 0x4c) */
    ph_key_t wkey;                 /* the witness's key (seed 0x57) */
    char ring[PH_PATH_MAX];        /* the daemons' keyring */
    char sub_ring_text[2048];      /* subscribers' keyring: signer + log */
    ph_daemon_t d[2];              /* the daemons (stopped by teardown) */
    ph_proc_t witness;             /* parley witness, if started */
    bool test_ok;
} s_env_t;

static int
s_setup(void **state)
{
    s_env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(ph_tmpdir_make(e->dir, sizeof(e->dir)), 0);
    assert_int_equal(ph_key_make(&e->signer, e->dir, "desk", 0x61), 0);
    assert_int_equal(ph_key_make(&e->log, e->dir, "log", 0x4c), 0);
    assert_int_equal(ph_key_make(&e->wkey, e->dir, "witness", 0x57), 0);
    char text[512] = "";
    assert_int_equal(ph_keyring_add(text, sizeof(text), &e->signer, "*", "*", "*"), 0);
    assert_int_equal(ph_path(e->ring, sizeof(e->ring), e->dir, "keyring"), 0);
    assert_int_equal(ph_file_write(e->ring, text, strlen(text), 0644), 0);
    e->witness = (ph_proc_t)PH_PROC_INIT;
    snprintf(e->sub_ring_text, sizeof(e->sub_ring_text), "%slog: %s %s", text, ORIGIN,
             e->log.pub_b64);
    *state = e;
    return 0;
}

static int
s_teardown(void **state)
{
    s_env_t *e = *state;
    for (int i = 0; i < 2; i++) {
        if (e->d[i].pid > 0)
            kill(e->d[i].pid, SIGCONT); /* a test that failed while stopped */
        if (e->d[i].pid > 0 || e->d[i].log_path[0] != '\0')
            ph_daemon_teardown(&e->d[i], e->test_ok);
    }
    ph_proc_free(&e->witness);
    ph_key_free(&e->signer);
    ph_key_free(&e->log);
    ph_key_free(&e->wkey);
    ph_tmpdir_remove(e->dir);
    free(e);
    return 0;
}

/* A subscribers' keyring: the signer, the log line with extra options,
 * and more lines. */
static parley_keyring_t *
s_sub_ring(const s_env_t *e, const char *log_opts, const char *more)
{
    char text[4096], err[256] = "";
    snprintf(text, sizeof(text), "%s %s\n%s", e->sub_ring_text,
             log_opts != NULL ? log_opts : "", more != NULL ? more : "");
    parley_keyring_t *ring = parley_keyring_parse(text, strlen(text), err, sizeof(err));
    if (ring == NULL)
        fail_msg("keyring: %s\n%s", err, text);
    return ring;
}

/* Start a daemon in e->dir/name with the log key and extra config. */
static void
s_daemon(s_env_t *e, ph_daemon_t *d, const char *name, const char *more_conf)
{
    char dir[PH_PATH_MAX], conf[PH_PATH_MAX], text[2048];
    assert_int_equal(ph_path(dir, sizeof(dir), e->dir, name), 0);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", dir, strerror(errno));
    assert_int_equal(ph_path(conf, sizeof(conf), dir, "parleyd.conf"), 0);
    snprintf(text, sizeof(text),
             "log_key %s\nlog_origin %s\nheartbeat_interval %d\n%s", e->log.path,
             ORIGIN, S_HEARTBEAT_MS, more_conf != NULL ? more_conf : "");
    assert_int_equal(ph_file_write(conf, text, strlen(text), 0644), 0);
    const char *extra[] = { "-c", conf, NULL };
    assert_int_equal(ph_daemon_start(d, dir, e->ring, extra), 0);
}

static void
s_restart(s_env_t *e, ph_daemon_t *d)
{
    char conf[PH_PATH_MAX];
    assert_int_equal(ph_path(conf, sizeof(conf), d->dir, "parleyd.conf"), 0);
    const char *extra[] = { "-c", conf, NULL };
    (void)e;
    assert_int_equal(ph_daemon_restart(d, e->ring, extra), 0);
}

/* Publish n updates for party (pipelined) through api; the last seq. */
static uint64_t
s_publish(s_env_t *e, const char *api, int n, const char *party, const char *tag)
{
    parley_pub_t *pub = ph_pub_new(api, e->signer.key, NULL, S_TIMEOUT);
    assert_non_null(pub);
    uint64_t last = 0;
    int sent = 0, got = 0;
    while (got < n) {
        while (sent < n && sent - got < 256) {
            parley_update_t u;
            uint8_t env[PARLEY_ENVELOPE_MAX];
            size_t len;
            char headline[64];
            snprintf(headline, sizeof(headline), "%s %d", tag, sent);
            ph_update_init(&u, "gaza-ceasefire", party, 1, headline);
            assert_int_equal(ph_sign(&e->signer, &u, env, sizeof(env), &len), 0);
            assert_int_equal(parley_pub_send(pub, env, len, NULL), 0);
            sent++;
        }
        uint64_t seq = 0;
        int rc = ph_recv(pub, S_TIMEOUT, NULL, &seq, NULL);
        if (rc != 0)
            fail_msg("publish %s: %s", tag, parley_error_name(rc));
        if (seq > last)
            last = seq;
        got++;
    }
    parley_pub_destroy(&pub);
    return last;
}

/* ============================================================= events */

/* What a subscriber said about the log. */
typedef struct {
    uint64_t verified;        /* highest LOG_VERIFIED seq */
    int n_verified, n_inconsistent, n_stale, n_rejected_cp;
    uint64_t deliveries, last_seq;
    char *evidence;           /* of the first alarm (owned) */
    int rejected_code;        /* of the last rejected checkpoint */
} s_seen_t;

static void
s_seen_free(s_seen_t *s)
{
    free(s->evidence);
    memset(s, 0, sizeof(*s));
}

/* Read events until stop(seen) or the timeout. true when stopped. */
static bool
s_watch(parley_sub_t *sub, s_seen_t *s, bool (*stop)(const s_seen_t *, uint64_t),
        uint64_t arg, int timeout_ms)
{
    int64_t until = parley__mono_ms() + timeout_ms;
    while (!stop(s, arg)) {
        int64_t left = until - parley__mono_ms();
        if (left <= 0)
            return false;
        const parley_event_t *ev;
        int rc = parley_sub_next(sub, (int)(left < 200 ? left : 200), &ev);
        if (rc <= 0)
            continue;
        const char *evidence = parley_event_evidence(ev);
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_DELIVERY:
            s->deliveries++;
            s->last_seq = parley_event_seq(ev);
            break;
        case PARLEY_EVENT_LOG_VERIFIED:
            s->n_verified++;
            if (parley_event_seq(ev) > s->verified)
                s->verified = parley_event_seq(ev);
            break;
        case PARLEY_EVENT_LOG_INCONSISTENT:
        case PARLEY_EVENT_LOG_STALE:
            if (parley_event_type(ev) == PARLEY_EVENT_LOG_STALE)
                s->n_stale++;
            else
                s->n_inconsistent++;
            if (s->evidence == NULL && evidence != NULL)
                s->evidence = strdup(evidence);
            break;
        case PARLEY_EVENT_REJECTED:
            if (parley_event_seq(ev) == 0) {
                s->n_rejected_cp++;
                s->rejected_code = parley_event_code(ev);
            }
            break;
        default:
            break;
        }
    }
    return true;
}

static bool
s_until_verified(const s_seen_t *s, uint64_t seq)
{
    return s->verified >= seq || s->n_inconsistent > 0;
}

static bool
s_until_inconsistent(const s_seen_t *s, uint64_t unused)
{
    (void)unused;
    return s->n_inconsistent > 0;
}

static bool
s_until_stale(const s_seen_t *s, uint64_t unused)
{
    (void)unused;
    return s->n_stale > 0 || s->n_inconsistent > 0;
}

static bool
s_until_more_verified(const s_seen_t *s, uint64_t n)
{
    return s->n_verified > (int)n || s->n_inconsistent > 0;
}

static bool
s_until_rejected(const s_seen_t *s, uint64_t n)
{
    return s->n_rejected_cp >= (int)n || s->n_inconsistent > 0;
}

/* The evidence names kind ("kind <k>" line). */
static void
s_evidence_kind(const s_seen_t *s, const char *kind)
{
    char want[64];
    snprintf(want, sizeof(want), "\nkind %s\n", kind);
    if (s->evidence == NULL || strstr(s->evidence, want) == NULL)
        fail_msg("evidence is not of kind %s:\n%s", kind,
                 s->evidence != NULL ? s->evidence : "(none)");
}

/* A subscriber of api (or through a proxy: feed given) with the log. */
static parley_sub_t *
s_subscriber(const char *api, const char *feed, const parley_keyring_t *ring,
             const char *party, const char *state, int staleness_ms)
{
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    parley_filter_t *f = NULL;
    o.server = api;
    o.feed = feed;
    o.keyring = ring;
    o.log_state = state;
    o.max_staleness_ms = staleness_ms;
    o.timeout_ms = 3000;
    if (party != NULL) {
        f = parley_filter_new();
        assert_int_equal(parley_filter_add_party(f, party), 0);
        o.filters = (const parley_filter_t *const *)&f;
        o.n_filters = 1;
    }
    parley_sub_t *sub = parley_sub_new(&o);
    parley_filter_destroy(&f);
    if (sub == NULL)
        fail_msg("parley_sub_new(%s): %s", api, parley_error_name(-errno));
    return sub;
}

/* ============================================================== proxy */

/* How the proxy lies. */
typedef enum {
    S_PROXY_DROP,      /* drop the update with seq `drop`, shift the rest */
    S_PROXY_FORGE,     /* re-sign each checkpoint with another key */
    S_PROXY_MANGLE,    /* change one byte of each checkpoint's root */
} s_lie_t;

typedef struct {
    s_lie_t lie;
    uint64_t drop;
    const char *daemon_api, *daemon_feed;
    char api[PH_EP_MAX], feed[PH_EP_MAX];
    parley_key_t *forger;
    volatile int stop;
    pthread_t thread;
    void *ctx, *front_api, *back_api, *front_feed, *back_feed;
} s_proxy_t;

/* Rewrite one feed message (topic, body) as the lie says; false: drop. */
static bool
s_rewrite(s_proxy_t *p, const char *topic, size_t tlen, zmq_msg_t *body)
{
    uint8_t space[PARLEY_ENVELOPE_MAX + 4096];
    parley__arena_t arena;
    parley__arena_init(&arena, space, sizeof(space));
    bool keep = true;
    if (tlen == 15 && memcmp(topic, "sys/checkpoint/", 15) == 0) {
        if (p->lie == S_PROXY_DROP)
            goto out;
        parley__note_t *n = NULL;
        if (parley__note_parse(zmq_msg_data(body), zmq_msg_size(body), &n, NULL) != 0)
            goto out;
        char *note = NULL;
        size_t len = 0;
        if (p->lie == S_PROXY_FORGE) {
            assert_int_equal(parley__note_sign(n->buf, n->text_len, ORIGIN, p->forger,
                                               &note, &len),
                             0);
        } else {
            note = strndup(n->buf, n->len);
            len = n->len;
            char *root = strchr(strchr(note, '\n') + 1, '\n') + 1;
            root[3] = root[3] == 'A' ? 'B' : 'A';
        }
        zmq_msg_close(body);
        zmq_msg_init_size(body, len);
        memcpy(zmq_msg_data(body), note, len);
        free(note);
        parley__note_destroy(&n);
        goto out;
    }
    if (p->lie != S_PROXY_DROP)
        goto out;
    if (tlen == 14 && memcmp(topic, "sys/heartbeat/", 14) == 0) {
        parley__heartbeat_t hb;
        if (parley__heartbeat_decode(zmq_msg_data(body), zmq_msg_size(body), &hb,
                                     &arena) == 0 && hb.seq >= p->drop) {
            hb.seq--;
            uint8_t buf[256];
            size_t len;
            assert_int_equal(parley__heartbeat_encode(&hb, buf, sizeof(buf), &len), 0);
            zmq_msg_close(body);
            zmq_msg_init_size(body, len);
            memcpy(zmq_msg_data(body), buf, len);
        }
        goto out;
    }
    uint64_t seq;
    int64_t at;
    parley__bytes_t env;
    if (parley__delivery_decode_raw(zmq_msg_data(body), zmq_msg_size(body), &seq, &at,
                                    &env, &arena) != 0)
        goto out;
    if (seq == p->drop) {
        keep = false;
    } else if (seq > p->drop) {
        uint8_t buf[PARLEY_ENVELOPE_MAX + 64];
        size_t len;
        assert_int_equal(parley__delivery_encode(seq - 1, at, env.data, env.len, buf,
                                                 sizeof(buf), &len),
                         0);
        zmq_msg_close(body);
        zmq_msg_init_size(body, len);
        memcpy(zmq_msg_data(body), buf, len);
    }
out:
    parley__arena_reset(&arena);
    return keep;
}

/* Move every message waiting on from to to (one client behind the api). */
static void
s_pump_api(void *from, void *to, bool front, zmq_msg_t *client)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (front) {
            /* [client id][request] -> [request]; a failed receive would
             * clear the id kept, so it goes through another message. */
            zmq_msg_t id;
            zmq_msg_init(&id);
            if (zmq_msg_recv(&id, from, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&id);
                zmq_msg_close(&m);
                return;
            }
            zmq_msg_copy(client, &id);
            zmq_msg_close(&id);
            zmq_msg_recv(&m, from, 0);
            zmq_msg_send(&m, to, 0);
        } else {
            if (zmq_msg_recv(&m, from, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                return;
            }
            zmq_msg_t id;
            zmq_msg_init(&id);
            zmq_msg_copy(&id, client);
            zmq_msg_send(&id, to, ZMQ_SNDMORE);
            zmq_msg_send(&m, to, 0);
        }
    }
}

static void *
s_proxy_run(void *arg)
{
    s_proxy_t *p = arg;
    zmq_msg_t client;
    zmq_msg_init(&client);
    while (!p->stop) {
        zmq_pollitem_t items[3] = {
            { p->front_api, 0, ZMQ_POLLIN, 0 },
            { p->back_api, 0, ZMQ_POLLIN, 0 },
            { p->back_feed, 0, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll(items, 3, 50) < 0)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            s_pump_api(p->front_api, p->back_api, true, &client);
        if (items[1].revents & ZMQ_POLLIN)
            s_pump_api(p->back_api, p->front_api, false, &client);
        while (items[2].revents & ZMQ_POLLIN) {
            zmq_msg_t topic, body;
            zmq_msg_init(&topic);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&topic, p->back_feed, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&topic);
                zmq_msg_close(&body);
                break;
            }
            zmq_msg_recv(&body, p->back_feed, 0);
            char t[PARLEY_TOPIC_MAX];
            size_t tl = zmq_msg_size(&topic) < sizeof(t) ? zmq_msg_size(&topic) : 0;
            memcpy(t, zmq_msg_data(&topic), tl);
            if (s_rewrite(p, t, tl, &body)) {
                zmq_msg_send(&topic, p->front_feed, ZMQ_SNDMORE);
                zmq_msg_send(&body, p->front_feed, 0);
            }
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
        }
        /* Subscriptions from the front go nowhere: the back has its own. */
        zmq_msg_t sub;
        zmq_msg_init(&sub);
        while (zmq_msg_recv(&sub, p->front_feed, ZMQ_DONTWAIT) >= 0)
            ;
        zmq_msg_close(&sub);
    }
    zmq_msg_close(&client);
    return NULL;
}

static void
s_proxy_start(s_proxy_t *p, const ph_daemon_t *d, s_lie_t lie, uint64_t drop)
{
    memset(p, 0, sizeof(*p));
    p->lie = lie;
    p->drop = drop;
    if (lie == S_PROXY_FORGE) {
        uint8_t seed[32];
        memset(seed, 0x66, sizeof(seed));
        p->forger = parley_key_from_seed(seed);
    }
    p->ctx = zmq_ctx_new();
    int zero = 0;
    p->front_api = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->back_api = zmq_socket(p->ctx, ZMQ_DEALER);
    p->front_feed = zmq_socket(p->ctx, ZMQ_XPUB);
    p->back_feed = zmq_socket(p->ctx, ZMQ_SUB);
    void *socks[] = { p->front_api, p->back_api, p->front_feed, p->back_feed };
    for (int i = 0; i < 4; i++)
        zmq_setsockopt(socks[i], ZMQ_LINGER, &zero, sizeof(zero));
    for (;;) {
        ph_endpoint(p->api, ph_free_port());
        ph_endpoint(p->feed, ph_free_port());
        if (zmq_bind(p->front_api, p->api) == 0 && zmq_bind(p->front_feed, p->feed) == 0)
            break;
        zmq_unbind(p->front_api, p->api);
    }
    assert_int_equal(zmq_connect(p->back_api, d->api), 0);
    assert_int_equal(zmq_connect(p->back_feed, d->feed), 0);
    /* parleyd grants whole topics only: the ones the tests' subscribers
     * take (each update comes once per topic, each rewritten alike). */
    static const char *const topics[] = { "all/", "party/egypt/", "sys/heartbeat/",
                                          "sys/checkpoint/" };
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        assert_int_equal(zmq_setsockopt(p->back_feed, ZMQ_SUBSCRIBE, topics[i],
                                        strlen(topics[i])),
                         0);
    assert_int_equal(pthread_create(&p->thread, NULL, s_proxy_run, p), 0);
}

static void
s_proxy_stop(s_proxy_t *p)
{
    p->stop = 1;
    pthread_join(p->thread, NULL);
    zmq_close(p->front_api);
    zmq_close(p->back_api);
    zmq_close(p->front_feed);
    zmq_close(p->back_feed);
    zmq_ctx_term(p->ctx);
    parley_key_destroy(&p->forger);
}

/* ============================================================== tests */

/* A proxy drops update 5 and shifts everything after it, heartbeats
 * included, so that no gap shows: the all/ subscriber's own tree and the
 * filtered subscriber's inclusion proofs both catch it. */
static void
test_proxy_drops_an_update(void **state)
{
    s_env_t *e = *state;
    ph_daemon_t *d = &e->d[0];
    s_daemon(e, d, "d", NULL);
    parley_keyring_t *ring = s_sub_ring(e, NULL, NULL);
    const char *parties[2] = { NULL, "egypt" };
    for (int k = 0; k < 2; k++) {
        s_proxy_t p;
        uint64_t head = s_publish(e, d->api, 0 + 2, "egypt", "before");
        s_proxy_start(&p, d, S_PROXY_DROP, head + 3);
        parley_sub_t *sub = s_subscriber(p.api, p.feed, ring, parties[k], NULL, -1);
        s_seen_t seen = { 0 };
        s_publish(e, d->api, 8, "egypt", "through the proxy");
        if (!s_watch(sub, &seen, s_until_inconsistent, 0, S_TIMEOUT)) {
            ph_stats_t stats;
            ph_stats_fetch(d->api, &stats);
            fail_msg("%s subscriber: no LOG_INCONSISTENT (verified %" PRIu64
                     ", %" PRIu64 " deliveries; the daemon answered %" PRIu64
                     " consistency and %" PRIu64 " inclusion requests)",
                     parties[k] ? "filtered" : "all/", seen.verified, seen.deliveries,
                     ph_stats_get(&stats, "requests_consistency", NULL),
                     ph_stats_get(&stats, "requests_inclusion", NULL));
        }
        s_evidence_kind(&seen, k == 0 ? "consistency" : "inclusion");
        /* The evidence holds: checked again with the daemon. */
        char verdict[1024];
        parley_call_options_t copt = ph_call_options(d->api, 5000);
        int rc = parley_evidence_check(ring, seen.evidence, strlen(seen.evidence), &copt,
                                       verdict, sizeof(verdict));
        if (k == 1 && rc != PARLEY_EINCONSISTENT)
            fail_msg("evidence check: %s (%s)", parley_error_name(rc), verdict);
        assert_int_equal(seen.n_rejected_cp, 0);
        s_seen_free(&seen);
        parley_sub_destroy(&sub);
        s_proxy_stop(&p);
    }
    parley_keyring_destroy(&ring);
    e->test_ok = true;
}

/* Checkpoints on the feed signed with another key, or with a changed
 * root: each rejected (seq 0), nothing trusted from them, no alarm. */
static void
test_forged_checkpoints(void **state)
{
    s_env_t *e = *state;
    ph_daemon_t *d = &e->d[0];
    s_daemon(e, d, "d", NULL);
    parley_keyring_t *ring = s_sub_ring(e, NULL, NULL);
    s_publish(e, d->api, 3, "egypt", "before");
    const s_lie_t lies[2] = { S_PROXY_FORGE, S_PROXY_MANGLE };
    const int codes[2] = { PARLEY_EUNKNOWNSIGNER, PARLEY_EBADSIG };
    for (int k = 0; k < 2; k++) {
        s_proxy_t p;
        s_proxy_start(&p, d, lies[k], 0);
        parley_sub_t *sub = s_subscriber(p.api, p.feed, ring, NULL, NULL, -1);
        s_seen_t seen = { 0 };
        s_publish(e, d->api, 2, "egypt", "forged");
        if (!s_watch(sub, &seen, s_until_rejected, 3, S_TIMEOUT))
            fail_msg("no rejected checkpoint (lie %d)", k);
        assert_int_equal(seen.rejected_code, codes[k]);
        assert_int_equal(seen.n_inconsistent, 0);
        s_seen_free(&seen);
        parley_sub_destroy(&sub);
        s_proxy_stop(&p);
    }
    parley_keyring_destroy(&ring);
    e->test_ok = true;
}

/* Copy a directory's regular files (a state directory, stopped). */
static void
s_copy_dir(const char *from, const char *to)
{
    char cmd[4 * PH_PATH_MAX];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* The state directory restored from an older copy, and other updates
 * published: a subscriber that keeps its log state notices at its next
 * start, as a fork (the same size, another root) and as a rollback (a
 * smaller tree signed later). */
static void
test_restored_state_dir(void **state)
{
    s_env_t *e = *state;
    ph_daemon_t *d = &e->d[0];
    char st[PH_PATH_MAX], backup[PH_PATH_MAX];
    assert_int_equal(ph_path(st, sizeof(st), e->dir, "sub.state"), 0);
    assert_int_equal(ph_path(backup, sizeof(backup), e->dir, "backup"), 0);
    parley_keyring_t *ring = s_sub_ring(e, NULL, NULL);
    s_daemon(e, d, "d", NULL);
    s_publish(e, d->api, 3, "egypt", "first");
    assert_int_equal(ph_daemon_stop(d), 0);
    s_copy_dir(d->state_dir, backup);
    s_restart(e, d);
    uint64_t head = s_publish(e, d->api, 3, "egypt", "second");
    parley_sub_t *sub = s_subscriber(d->api, NULL, ring, NULL, st, -1);
    s_seen_t seen = { 0 };
    assert_true(s_watch(sub, &seen, s_until_verified, head, S_TIMEOUT));
    assert_int_equal(seen.n_inconsistent, 0);
    s_seen_free(&seen);
    parley_sub_destroy(&sub);
    assert_int_equal(ph_daemon_stop(d), 0);

    /* Back to the copy of 3 records, then 3 other updates: a fork at the
     * very size the subscriber saved. */
    s_copy_dir(backup, d->state_dir);
    s_restart(e, d);
    s_publish(e, d->api, 3, "qatar", "rewritten");
    assert_int_equal(ph_stat_wait(d->api, "tree_size", 6, true, S_TIMEOUT), 0);
    usleep(3 * S_HEARTBEAT_MS * 1000); /* a heartbeat signs the new size */
    sub = s_subscriber(d->api, NULL, ring, NULL, st, -1);
    if (!s_watch(sub, &seen, s_until_inconsistent, 0, S_TIMEOUT))
        fail_msg("restored state: no LOG_INCONSISTENT for the fork");
    s_evidence_kind(&seen, "fork");
    char verdict[1024];
    assert_int_equal(parley_evidence_check(ring, seen.evidence, strlen(seen.evidence),
                                           NULL, verdict, sizeof(verdict)),
                     PARLEY_EINCONSISTENT);
    s_seen_free(&seen);
    parley_sub_destroy(&sub);
    assert_int_equal(ph_daemon_stop(d), 0);

    /* Back to the copy again, one other update: the log is behind what
     * the subscriber trusted (a rollback, or a cluster node that lags:
     * LOG_STALE, no alarm); more updates take it past the saved size,
     * and the history it shows then cannot extend the saved one. */
    s_copy_dir(backup, d->state_dir);
    s_restart(e, d);
    s_publish(e, d->api, 1, "qatar", "rolled back");
    sub = s_subscriber(d->api, NULL, ring, NULL, st, 2000);
    if (!s_watch(sub, &seen, s_until_stale, 0, S_TIMEOUT))
        fail_msg("restored state: no LOG_STALE while behind");
    s_evidence_kind(&seen, "stale");
    assert_non_null(strstr(seen.evidence, "behind the checkpoint trusted"));
    free(seen.evidence);
    seen.evidence = NULL;
    s_publish(e, d->api, 4, "qatar", "rolled back, then more");
    if (!s_watch(sub, &seen, s_until_inconsistent, 0, S_TIMEOUT))
        fail_msg("restored state: no LOG_INCONSISTENT past the saved size");
    s_evidence_kind(&seen, "consistency");
    parley_call_options_t copt = ph_call_options(d->api, 5000);
    assert_int_equal(parley_evidence_check(ring, seen.evidence, strlen(seen.evidence),
                                           &copt, verdict, sizeof(verdict)),
                     PARLEY_EINCONSISTENT);
    s_seen_free(&seen);
    parley_sub_destroy(&sub);
    parley_keyring_destroy(&ring);
    e->test_ok = true;
}

/* Wait until a TCP port on loopback accepts connections. */
static void
s_wait_port(int port)
{
    int64_t until = parley__mono_ms() + S_TIMEOUT;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return;
        if (parley__mono_ms() > until)
            fail_msg("nothing listens on port %d", port);
        usleep(20000);
    }
}

/*
 * Wait until the daemon at api serves a checkpoint of size that verifies
 * against ring with its witness policy (so cosigned as it asks).
 */
static void
s_wait_cosigned(const char *api, const parley_keyring_t *ring, uint64_t size)
{
    parley_call_options_t copt = ph_call_options(api, 2000);
    copt.keyring = ring;
    int64_t until = parley__mono_ms() + S_TIMEOUT;
    int rc = 0;
    uint64_t got = 0;
    for (;;) {
        parley_checkpoint_t *cp = NULL;
        rc = parley_log_checkpoint(&copt, &cp);
        got = cp != NULL ? parley_checkpoint_size(cp) : 0;
        parley_checkpoint_destroy(&cp);
        if (rc == 0 && got == size)
            return;
        if (parley__mono_ms() > until)
            fail_msg("no cosigned checkpoint of size %" PRIu64 " at %s (last: %s, "
                     "size %" PRIu64 ")", size, api, parley_error_name(rc), got);
        usleep(20000);
    }
}

/* Two daemons with one log key and origin serve two histories; one
 * witness both subscribers require: it cosigns the first, refuses the
 * second, and the second's subscriber is left with LOG_STALE. */
static void
test_split_view_witness(void **state)
{
    s_env_t *e = *state;
    char wstate[PH_PATH_MAX], wring[PH_PATH_MAX], wlist[PH_PATH_MAX], text[1024];
    assert_int_equal(ph_path(wstate, sizeof(wstate), e->dir, "witness.state"), 0);
    assert_int_equal(ph_path(wring, sizeof(wring), e->dir, "witness.keyring"), 0);
    assert_int_equal(ph_path(wlist, sizeof(wlist), e->dir, "witnesses"), 0);
    snprintf(text, sizeof(text), "log: %s %s\n", ORIGIN, e->log.pub_b64);
    assert_int_equal(ph_file_write(wring, text, strlen(text), 0644), 0);
    int port = ph_free_port();
    char listen_at[64], url[64], portbuf[16];
    snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    ph_proc_t *w = &e->witness;
    const char *argv[] = { PARLEY_BIN, "witness", "-v", "-k", e->wkey.path, "--name",
                           "witness.test/w1", "--keyring", wring, "--state", wstate,
                           "--listen", listen_at, NULL };
    assert_int_equal(ph_proc_spawn(w, argv, NULL, NULL, NULL), 0);
    s_wait_port(port);
    snprintf(text, sizeof(text), "witness.test/w1 %s %s\n", e->wkey.pub_b64, url);
    assert_int_equal(ph_file_write(wlist, text, strlen(text), 0644), 0);
    char conf[PH_PATH_MAX + 32];
    snprintf(conf, sizeof(conf), "witnesses %s\n", wlist);

    ph_daemon_t *a = &e->d[0], *b = &e->d[1];
    char more[256];
    snprintf(more, sizeof(more), "witness: witness.test/w1 %s\n", e->wkey.pub_b64);
    parley_keyring_t *ring = s_sub_ring(e, "witnesses=1", more);
    s_daemon(e, a, "a", conf);
    s_daemon(e, b, "b", conf);
    uint64_t head = s_publish(e, a->api, 3, "egypt", "history A");
    /* A's history of this size is what the witness cosigned first. */
    s_wait_cosigned(a->api, ring, head);
    s_publish(e, b->api, 3, "qatar", "history B");
    assert_int_equal(ph_stat_wait(b->api, "witness_failures", 1, true, S_TIMEOUT), 0);
    parley_sub_t *sa = s_subscriber(a->api, NULL, ring, NULL, NULL, 3000);
    parley_sub_t *sb = s_subscriber(b->api, NULL, ring, NULL, NULL, 3000);
    s_seen_t seen_a = { 0 }, seen_b = { 0 };
    if (!s_watch(sa, &seen_a, s_until_verified, head, S_TIMEOUT))
        fail_msg("subscriber A: not verified through %" PRIu64, head);
    if (!s_watch(sb, &seen_b, s_until_stale, 0, S_TIMEOUT))
        fail_msg("subscriber B: no LOG_STALE");
    s_evidence_kind(&seen_b, "stale");
    if (strstr(seen_b.evidence, "\nshown ") == NULL
        || strstr(seen_b.evidence, "too few witness cosignatures") == NULL)
        fail_msg("stale evidence without the checkpoint shown:\n%s", seen_b.evidence);
    assert_int_equal(seen_b.verified, 0);
    assert_int_equal(seen_a.n_inconsistent + seen_b.n_inconsistent, 0);
    s_seen_free(&seen_a);
    s_seen_free(&seen_b);
    parley_sub_destroy(&sa);
    parley_sub_destroy(&sb);
    parley_keyring_destroy(&ring);
    kill(w->pid, SIGTERM);
    assert_int_equal(ph_proc_wait(w, S_TIMEOUT), 0);
    if (strstr(w->err, "refused a checkpoint of " ORIGIN ": 409") == NULL)
        fail_msg("the witness did not log its refusal:\n%s", w->err);
    e->test_ok = true;
}

/* SIGSTOP: no fresh checkpoint, LOG_STALE after max_staleness; SIGCONT:
 * LOG_VERIFIED again. */
static void
test_stopped_daemon_is_stale(void **state)
{
    s_env_t *e = *state;
    ph_daemon_t *d = &e->d[0];
    s_daemon(e, d, "d", NULL);
    parley_keyring_t *ring = s_sub_ring(e, NULL, NULL);
    uint64_t head = s_publish(e, d->api, 2, "egypt", "before");
    parley_sub_t *sub = s_subscriber(d->api, NULL, ring, NULL, NULL, 2000);
    s_seen_t seen = { 0 };
    assert_true(s_watch(sub, &seen, s_until_verified, head, S_TIMEOUT));
    assert_int_equal(kill(d->pid, SIGSTOP), 0);
    bool stale = s_watch(sub, &seen, s_until_stale, 0, 8000);
    assert_int_equal(kill(d->pid, SIGCONT), 0);
    if (!stale)
        fail_msg("no LOG_STALE while the daemon was stopped");
    assert_int_equal(seen.n_inconsistent, 0);
    s_evidence_kind(&seen, "stale");
    if (!s_watch(sub, &seen, s_until_more_verified, (uint64_t)seen.n_verified,
                 S_TIMEOUT))
        fail_msg("no LOG_VERIFIED after SIGCONT");
    assert_int_equal(seen.n_inconsistent, 0);
    s_seen_free(&seen);
    parley_sub_destroy(&sub);
    parley_keyring_destroy(&ring);
    e->test_ok = true;
}

/* Append bytes to the newest segment: a torn tail after kill -9. */
static void
s_tear_tail(const ph_daemon_t *d)
{
    char cmd[3 * PH_PATH_MAX];
    snprintf(cmd, sizeof(cmd),
             "f=$(ls '%s'/seg-*.log | tail -1) && printf 'torn tail bytes' >> \"$f\"",
             d->state_dir);
    assert_int_equal(system(cmd), 0);
}

/* An honest daemon: restarts, kill -9 with a torn tail, retention; an
 * all/ and a filtered subscriber with log states all along, and a late
 * one from seq 1 (a gap, then a range): no alarm, all verified. */
static void
test_honest_daemon_no_false_alarm(void **state)
{
    s_env_t *e = *state;
    ph_daemon_t *d = &e->d[0];
    char st1[PH_PATH_MAX], st2[PH_PATH_MAX];
    assert_int_equal(ph_path(st1, sizeof(st1), e->dir, "all.state"), 0);
    assert_int_equal(ph_path(st2, sizeof(st2), e->dir, "egypt.state"), 0);
    s_daemon(e, d, "d", "segment_bytes 64K\nretention_bytes 160K\n");
    parley_keyring_t *ring = s_sub_ring(e, NULL, NULL);
    parley_sub_t *all = s_subscriber(d->api, NULL, ring, NULL, st1, -1);
    parley_sub_t *eg = s_subscriber(d->api, NULL, ring, "egypt", st2, -1);
    s_seen_t sa = { 0 }, se = { 0 };
    uint64_t head = 0;
    for (int round = 0; round < 4; round++) {
        head = s_publish(e, d->api, 250, round % 2 ? "qatar" : "egypt", "round");
        head = s_publish(e, d->api, 100, "egypt", "round egypt");
        if (!s_watch(all, &sa, s_until_verified, head, S_TIMEOUT))
            fail_msg("round %d: all/ not verified through %" PRIu64 " (%" PRIu64 ")",
                     round, head, sa.verified);
        if (!s_watch(eg, &se, s_until_verified, head, S_TIMEOUT))
            fail_msg("round %d: egypt not verified through %" PRIu64 " (%" PRIu64 ")",
                     round, head, se.verified);
        if (round == 0) {
            assert_int_equal(ph_daemon_stop(d), 0);
            s_restart(e, d);
        } else if (round == 1) {
            ph_daemon_kill9(d);
            s_tear_tail(d);
            s_restart(e, d);
        } else if (round == 2) {
            /* Retention runs at the start: the front goes. */
            assert_int_equal(ph_daemon_stop(d), 0);
            s_restart(e, d);
            assert_int_equal(ph_stat_wait(d->api, "first_seq", 2, true, S_TIMEOUT), 0);
        }
    }
    assert_int_equal(sa.n_inconsistent + se.n_inconsistent, 0);
    assert_int_equal(sa.n_rejected_cp + se.n_rejected_cp, 0);
    assert_int_equal(sa.n_stale + se.n_stale, 0);
    /* A newcomer from seq 1: the front is gone (a gap), the rest verifies
     * from the compact range the daemon gives. */
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.server = d->api;
    o.keyring = ring;
    o.start = PARLEY_START_SEQ;
    o.since_seq = 1;
    o.max_staleness_ms = -1;
    parley_sub_t *late = parley_sub_new(&o);
    assert_non_null(late);
    s_seen_t sl = { 0 };
    if (!s_watch(late, &sl, s_until_verified, head, S_TIMEOUT))
        fail_msg("newcomer: not verified through %" PRIu64 " (%" PRIu64 ")", head,
                 sl.verified);
    assert_int_equal(sl.n_inconsistent, 0);
    /* The restarted subscribers' states are audit-clean too. */
    parley_checkpoint_t *saved = NULL, *now = NULL;
    char detail[256];
    assert_int_equal(parley_checkpoint_load(ring, st1, &saved, detail, sizeof(detail)), 0);
    parley_call_options_t copt = ph_call_options(d->api, 5000);
    copt.keyring = ring;
    assert_int_equal(parley_log_checkpoint(&copt, &now), 0);
    char *evidence = NULL;
    assert_int_equal(parley_log_audit(&copt, saved, now, &evidence), 0);
    assert_null(evidence);
    parley_checkpoint_destroy(&saved);
    parley_checkpoint_destroy(&now);
    s_seen_free(&sa);
    s_seen_free(&se);
    s_seen_free(&sl);
    parley_sub_destroy(&all);
    parley_sub_destroy(&eg);
    parley_sub_destroy(&late);
    parley_keyring_destroy(&ring);
    e->test_ok = true;
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_proxy_drops_an_update),
        T(test_forged_checkpoints),
        T(test_restored_state_dir),
        T(test_split_view_witness),
        T(test_stopped_daemon_is_stale),
        T(test_honest_daemon_no_false_alarm),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
