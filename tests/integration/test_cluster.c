/*
 * test_cluster.c - parleyd in cluster mode: three real nats-server
 * processes (JetStream, R3) and parleyd nodes following one stream
 * (issue 13; docs/cluster.md).
 *
 *   - chaos (acceptance 1): 4 publishers with endpoint lists spread over
 *     3 parleyd, one subscriber per node with an endpoint list; during
 *     the publishing the stream leader's nats-server is killed with -9
 *     and restarted, another is SIGSTOPped for 5 s, and one parleyd is
 *     killed with -9 and restarted. Then: every acked update reached
 *     every subscriber exactly once, in seq order, without a gap, with
 *     the acked bytes, and each subscriber verified the transparency log
 *     (checkpoints, consistency, inclusion) up to the last seq across its
 *     fail-overs; the three local logs are byte-identical; a resend of
 *     every acked update is answered duplicate with its original seq; the
 *     three transparency logs sign checkpoints of the same size with the
 *     same root; the publishes that ended in an error are counted and
 *     printed;
 *   - pause: the same publishers and checks while the server leading the
 *     stream is SIGSTOPped for 5 s and continued, once per stream, on 3
 *     streams one after the other: with
 *     nats-server 2.9.10 the paused leader can come back holding other
 *     records than the other replicas (docs/cluster.md, "Replicas that
 *     disagree"); no node may log, serve or ack them;
 *   - race (acceptance 2): two nodes are sent, at the same moment,
 *     updates of one signer with the same signer_seq and different
 *     bytes: per round exactly one is accepted cluster-wide, the other
 *     is answered replay; then rounds with two different signer_seqs
 *     (JetStream 2.9 may store the lower after the higher): never are
 *     both acked out of signer order, a refused one is void on every
 *     node, and the logs stay identical;
 *   - quorum loss (acceptance 3): with 2 of 3 servers down a publish is
 *     answered unavailable (by the daemon, before the client's own
 *     timeout), a subscriber stays connected and keeps getting
 *     heartbeats through the outage, and once the servers are back
 *     publishing works again with the same parleyd, and the subscriber
 *     gets the new update once (from its node, or from the other one if
 *     its node stays behind the stream for more than 3 heartbeats
 *     after the restart, which its list allows);
 *   - records no node may serve, put into the stream by hand (garbage, a
 *     signer outside the keyring, a subject naming another signer, a bad
 *     signature): every node logs them as void records, counts them,
 *     serves none, and the logs stay identical; in the transparency log
 *     each is the absent-record leaf of its seq, so both nodes' trees
 *     have the root computed here from those leaves and the good update;
 *   - a state directory holding a log that is not a replica of the
 *     stream is refused at start, with a message saying so;
 *   - a node with an empty state directory is refused at start when
 *     retention removed the stream's first records: its transparency log
 *     cannot start there;
 *   - a node that applies the stream's records more than a publish
 *     timeout after JetStream stored them, but keeps applying, acks the
 *     publishes it took once it has applied them (test_slow_apply);
 *   - every node's cluster_unavailable adds up to its causes.
 *
 * For a developer: CLUSTER_TEST=test_chaos runs one test, CLUSTER_KEEP=1
 * keeps the directory (parleyd logs), CLUSTER_DEBUG=1 runs parleyd with
 * log_level debug.
 */
#include "harness.h"
#include "nats_harness.h"
#include "nats_proxy.h"

#include "clock.h"
#include "embedded.h"
#include "tlog.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define S_NODES 3
#define S_PUBS 4
#define S_CHAOS_MS 30000      /* publishing under chaos */
#define S_PUB_PAUSE_MS 15     /* between one publisher's updates */
#define S_WAIT_MS 60000       /* for what must come */
#define S_CONFIG                                                               \
    "backbone_replicas 3\n"                                                    \
    "backbone_publish_timeout 2000\n"
#define S_ORIGIN "parley.test/cluster" /* every node signs as this log */

static ph_nats_cluster_t s_nats;
static char s_dir[PH_PATH_MAX];
static ph_key_t s_keys[S_PUBS + 1]; /* the last is outside the keyring */
static char s_ring[PH_PATH_MAX];
static ph_key_t s_log;                /* the log key every node shares */
static parley_keyring_t *s_log_ring;  /* names that log, for checkpoints */

static void
s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Now in microseconds, for signer_seqs. */
static uint64_t
s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A valid update with the given signer_seq, issued now. */
static void
s_update(parley_update_t *u, const char *party, uint64_t signer_seq,
         const char *headline)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->negotiation, sizeof(u->negotiation), "gaza-ceasefire");
    snprintf(u->parties[0], sizeof(u->parties[0]), "%s", party);
    u->n_parties = 1;
    u->phase = 1;
    u->status = PARLEY_STATUS_TALKS_IN_PROGRESS;
    u->kind = PARLEY_KIND_UPDATE;
    snprintf(u->headline, sizeof(u->headline), "%s", headline);
    u->issued_at = parley_now_ms();
    u->signer_seq = signer_seq;
}

static int
s_group_up(void **state)
{
    (void)state;
    char text[4096] = "";
    if (ph_tmpdir_make(s_dir, sizeof(s_dir)) < 0)
        return -1;
    for (int i = 0; i <= S_PUBS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "desk%d", i + 1);
        if (ph_key_make(&s_keys[i], s_dir, name, (uint8_t)(40 + i)) < 0)
            return -1;
        if (i < S_PUBS
            && ph_keyring_add(text, sizeof(text), &s_keys[i], "*", "*", "*")
                   < 0)
            return -1;
    }
    if (ph_path(s_ring, sizeof(s_ring), s_dir, "keyring") < 0
        || ph_file_write(s_ring, text, strlen(text), 0644) < 0)
        return -1;
    char log_line[256], err[256] = "";
    if (ph_key_make(&s_log, s_dir, "log", 0x4c) < 0)
        return -1;
    snprintf(log_line, sizeof(log_line), "log: %s %s\n", S_ORIGIN,
             s_log.pub_b64);
    s_log_ring = parley_keyring_parse(log_line, strlen(log_line), err,
                                      sizeof(err));
    if (s_log_ring == NULL) {
        fprintf(stderr, "log keyring: %s\n", err);
        return -1;
    }
    /* The servers' directories (stores, logs) in the test's own: kept
     * with it (CLUSTER_KEEP=1) for a look at what each server stored. */
    ph_nats_opts_t o = { .nodes = S_NODES, .dir = s_dir };
    return ph_nats_start(&s_nats, &o);
}

static int
s_group_down(void **state)
{
    (void)state;
    ph_nats_stop(&s_nats, false);
    for (int i = 0; i <= S_PUBS; i++)
        ph_key_free(&s_keys[i]);
    ph_key_free(&s_log);
    parley_keyring_destroy(&s_log_ring);
    if (getenv("CLUSTER_KEEP") == NULL)
        ph_tmpdir_remove(s_dir);
    else
        fprintf(stderr, "[test] kept %s\n", s_dir);
    return 0;
}

/* The config lines of a node on stream `stream` (with more, may be ""). */
static void
s_node_conf(char *conf, size_t cap, const char *stream, const char *more)
{
    snprintf(conf, cap,
             S_CONFIG "backbone_stream %s\nlog_key %s\nlog_origin %s\n%s%s",
             stream, s_log.path, S_ORIGIN,
             getenv("CLUSTER_DEBUG") != NULL ? "log_level debug\n" : "",
             more);
}

/* Start the parleyd nodes of a test on stream `stream`, in DIR/name,
 * with more config lines (may be ""). */
static void
s_nodes_up_conf(ph_nodes_t *nodes, const char *name, const char *stream,
                int n, const char *more)
{
    char dir[PH_PATH_MAX], conf[512 + PH_PATH_MAX];
    assert_int_equal(ph_path(dir, sizeof(dir), s_dir, name), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    s_node_conf(conf, sizeof(conf), stream, more);
    assert_int_equal(ph_nats_wait_ready(&s_nats, 20000), 0);
    assert_int_equal(ph_nodes_start(nodes, &s_nats, n, dir, s_ring, conf), 0);
}

/* Start the parleyd nodes of a test on stream `stream`, in DIR/name. */
static void
s_nodes_up(ph_nodes_t *nodes, const char *name, const char *stream, int n)
{
    s_nodes_up_conf(nodes, name, stream, n, "");
}

/* A stat of a node (0 if it does not answer). */
static uint64_t
s_stat(const ph_daemon_t *d, const char *name)
{
    ph_stats_t st;
    if (ph_stats_fetch(d->api, &st) < 0)
        return 0;
    return ph_stats_get(&st, name, NULL);
}

/* cluster_unavailable's causes, in the order of docs/protocol.md. */
static const char *const s_ua_names[] = {
    "refused", "timeout", "jetstream", "unapplied", "conflicts", "mismatch",
};
#define S_UA_N (sizeof(s_ua_names) / sizeof(s_ua_names[0]))

/*
 * Node d's publishes answered unavailable, by cause (ua[], S_UA_N), from
 * one stats reply; printed as "<name> <cause> N ...". The causes must add
 * up to cluster_unavailable. Returns that total.
 */
static uint64_t
s_unavailable_causes(const ph_daemon_t *d, const char *name,
                     uint64_t ua[S_UA_N])
{
    ph_stats_t st;
    assert_int_equal(ph_stats_fetch(d->api, &st), 0);
    uint64_t total = ph_stats_get(&st, "cluster_unavailable", NULL), sum = 0;
    char line[512];
    size_t off = (size_t)snprintf(line, sizeof(line),
                                  "%s: %" PRIu64 " publishes answered "
                                  "unavailable:",
                                  name, total);
    for (size_t k = 0; k < S_UA_N; k++) {
        char stat[64];
        bool found = false;
        snprintf(stat, sizeof(stat), "cluster_unavailable_%s", s_ua_names[k]);
        ua[k] = ph_stats_get(&st, stat, &found);
        assert_true(found);
        sum += ua[k];
        off += (size_t)snprintf(line + off, sizeof(line) - off, " %s %" PRIu64,
                                s_ua_names[k], ua[k]);
    }
    fprintf(stderr, "[test] %s\n", line);
    assert_int_equal(sum, total);
    return total;
}

/*
 * Every node's transparency log at size head: wait for each node's
 * checkpoint of that size (signed at a heartbeat, checked against the
 * log key) and require one root for all of them; it goes to root (may be
 * NULL).
 */
static void
s_trees_agree(const ph_nodes_t *nodes, int n, uint64_t head, uint8_t *root)
{
    uint8_t first[32];
    for (int i = 0; i < n; i++) {
        parley_call_options_t o = ph_call_options(nodes->d[i].api, 2000);
        o.keyring = s_log_ring;
        int64_t until = parley__mono_ms() + S_WAIT_MS;
        parley_checkpoint_t *cp = NULL;
        int rc;
        while ((rc = parley_log_checkpoint(&o, &cp)) != 0
               || parley_checkpoint_size(cp) < head) {
            uint64_t got = rc == 0 ? parley_checkpoint_size(cp) : 0;
            parley_checkpoint_destroy(&cp);
            if (parley__mono_ms() > until)
                fail_msg("node %d: no checkpoint of size %" PRIu64 " (last: "
                         "%s, size %" PRIu64 ")",
                         i + 1, head, parley_error_name(rc), got);
            s_sleep_ms(50);
        }
        assert_int_equal(parley_checkpoint_size(cp), head);
        if (i == 0)
            memcpy(first, parley_checkpoint_root(cp), sizeof(first));
        else if (memcmp(first, parley_checkpoint_root(cp), sizeof(first)) != 0)
            fail_msg("node %d's tree of size %" PRIu64 " has another root "
                     "than node 1's",
                     i + 1, head);
        parley_checkpoint_destroy(&cp);
    }
    if (root != NULL)
        memcpy(root, first, sizeof(first));
    fprintf(stderr, "[test] the %d transparency logs agree: size %" PRIu64
                    ", root %02x%02x%02x%02x...\n",
            n, head, first[0], first[1], first[2], first[3]);
}

/* ------------------------------------------------------------- chaos */

static atomic_bool s_stop_pubs, s_stop_subs;

/* An update a publisher got an ack for: its seq and bytes. */
typedef struct {
    uint64_t seq;
    uint8_t *env;
    size_t len;
} s_acked_t;

/* One publisher thread. */
typedef struct {
    int idx;
    char servers[512];
    pthread_t thr;
    s_acked_t *acked;
    size_t n_acked, cap;
    size_t sent, errors;
    int last_rc;
    char last_detail[320];
} s_pubber_t;

static int64_t s_t0; /* mono ms the publishing started */

static void
s_acked_add(s_pubber_t *p, uint64_t seq, const uint8_t *env, size_t len)
{
    if (p->n_acked == p->cap) {
        p->cap = p->cap > 0 ? 2 * p->cap : 1024;
        p->acked = realloc(p->acked, p->cap * sizeof(*p->acked));
        assert_non_null(p->acked);
    }
    s_acked_t *a = &p->acked[p->n_acked++];
    a->seq = seq;
    a->len = len;
    a->env = malloc(len);
    assert_non_null(a->env);
    memcpy(a->env, env, len);
}

/* Send one envelope and wait for its own answer. */
static int
s_send_wait(parley_pub_t *pub, const uint8_t *env, size_t len, uint64_t *seq)
{
    uint64_t rid = 0, got = 0;
    int rc = parley_pub_send(pub, env, len, &rid);
    if (rc < 0)
        return rc;
    for (;;) {
        rc = parley_pub_recv(pub, 30000, &got, seq);
        if (rc == -EAGAIN)
            return PARLEY_ETIMEOUT;
        if (got == rid)
            return rc;
    }
}

static void *
s_pub_main(void *arg)
{
    s_pubber_t *p = arg;
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = p->servers;
    /* Longer than a node may take to answer: the PubAck and the local
     * apply, each up to backbone_publish_timeout. */
    o.timeout_ms = 8000;
    o.attempts = 6;
    parley_pub_t *pub = parley_pub_new(s_keys[p->idx].key, &o);
    if (pub == NULL) {
        p->last_rc = -errno;
        return NULL;
    }
    uint64_t sseq = s_now_us();
    uint8_t env[2048];
    while (!atomic_load(&s_stop_pubs)) {
        parley_update_t u;
        char headline[64];
        size_t len = 0;
        snprintf(headline, sizeof(headline), "publisher %d update %zu",
                 p->idx + 1, p->sent);
        s_update(&u, p->idx % 2 ? "qatar" : "egypt", ++sseq, headline);
        if (ph_sign(&s_keys[p->idx], &u, env, sizeof(env), &len) < 0) {
            p->last_rc = -EINVAL;
            break;
        }
        uint64_t seq = 0;
        int rc = s_send_wait(pub, env, len, &seq);
        p->sent++;
        if (rc == 0 || rc == PARLEY_DUPLICATE) {
            s_acked_add(p, seq, env, len);
        } else {
            p->errors++;
            p->last_rc = rc;
            snprintf(p->last_detail, sizeof(p->last_detail),
                     "%s: %s (at %.1f s, endpoint %s)", parley_error_name(rc),
                     parley_pub_detail(pub),
                     (double)(parley__mono_ms() - s_t0) / 1000,
                     parley_pub_endpoint(pub));
            s_sleep_ms(200); /* as a program would, before its next */
        }
        s_sleep_ms(S_PUB_PAUSE_MS);
    }
    parley_pub_destroy(&pub);
    return NULL;
}

/* One subscriber thread: what it was handed, in order. */
typedef struct {
    int idx;
    char servers[512];
    pthread_t thr;
    uint64_t *seqs;
    uint8_t **envs;
    size_t *lens;
    size_t n, cap;
    size_t gaps, rejected, disconnects, errors;
    size_t inconsistent, stale;  /* LOG_INCONSISTENT, LOG_STALE events */
    atomic_uint_fast64_t last; /* last seq handed out */
    atomic_uint_fast64_t verified; /* the last LOG_VERIFIED's tree size */
    int err;                   /* one it could not go on after */
} s_subber_t;

static void *
s_sub_main(void *arg)
{
    s_subber_t *s = arg;
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.server = s->servers;
    o.start = PARLEY_START_SEQ;
    o.since_seq = 1;
    o.timeout_ms = 3000;
    /* It verifies the log as it goes, whichever node it reads from. */
    o.log_origin = S_ORIGIN;
    o.log_pubkey = s_log.pk;
    parley_sub_t *sub = parley_sub_new(&o);
    if (sub == NULL) {
        s->err = -errno;
        return NULL;
    }
    while (!atomic_load(&s_stop_subs)) {
        const parley_event_t *ev = NULL;
        int rc = parley_sub_next(sub, 100, &ev);
        if (rc == 0)
            continue;
        if (rc == PARLEY_ETIMEOUT || rc == PARLEY_EUNAVAILABLE) {
            /* a request timed out or was refused: it goes out again */
            s->errors++;
            fprintf(stderr, "[test] subscriber %d: %s (goes on)\n",
                    s->idx + 1, parley_error_name(rc));
            continue;
        }
        if (rc < 0) {
            s->err = rc;
            fprintf(stderr, "[test] subscriber %d: %s\n", s->idx + 1,
                    parley_error_name(rc));
            break;
        }
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_DELIVERY: {
            const parley_delivery_t *d = parley_event_delivery(ev);
            size_t len = 0;
            const void *env = parley_delivery_envelope(d, &len);
            if (s->n == s->cap) {
                s->cap = s->cap > 0 ? 2 * s->cap : 4096;
                s->seqs = realloc(s->seqs, s->cap * sizeof(*s->seqs));
                s->envs = realloc(s->envs, s->cap * sizeof(*s->envs));
                s->lens = realloc(s->lens, s->cap * sizeof(*s->lens));
            }
            s->seqs[s->n] = parley_delivery_seq(d);
            s->lens[s->n] = len;
            s->envs[s->n] = malloc(len > 0 ? len : 1);
            if (len > 0)
                memcpy(s->envs[s->n], env, len);
            s->n++;
            atomic_store(&s->last, parley_delivery_seq(d));
            break;
        }
        case PARLEY_EVENT_GAP:
            s->gaps++;
            break;
        case PARLEY_EVENT_REJECTED:
            s->rejected++;
            break;
        case PARLEY_EVENT_LOG_VERIFIED:
            atomic_store(&s->verified,
                         parley_checkpoint_size(parley_event_checkpoint(ev)));
            break;
        case PARLEY_EVENT_LOG_INCONSISTENT:
            s->inconsistent++;
            fprintf(stderr, "[test] subscriber %d: the log is inconsistent "
                            "at %" PRIu64 "\n",
                    s->idx + 1, parley_event_seq(ev));
            break;
        case PARLEY_EVENT_LOG_STALE:
            s->stale++;
            break;
        case PARLEY_EVENT_DISCONNECTED:
            s->disconnects++;
            fprintf(stderr, "[test] subscriber %d left %s (%s)\n", s->idx + 1,
                    parley_event_endpoint(ev),
                    parley_error_name(parley_event_code(ev)));
            break;
        default:
            break;
        }
    }
    parley_sub_destroy(&sub);
    return NULL;
}

/* The chaos schedule, in ms from the start of publishing. */
static void
s_chaos(ph_nodes_t *nodes, const char *stream)
{
    int64_t t0 = parley__mono_ms();
#define S_AT(ms)                                                               \
    do {                                                                       \
        int64_t left_ = t0 + (ms) - parley__mono_ms();                         \
        if (left_ > 0)                                                         \
            s_sleep_ms((int)left_);                                            \
    } while (0)
    S_AT(4000);
    int leader = ph_nats_stream_leader(&s_nats, stream, 10000);
    assert_true(leader >= 0);
    fprintf(stderr, "[test] %.1f s: kill -9 %s, the stream leader\n",
            (double)(parley__mono_ms() - t0) / 1000, s_nats.node[leader].name);
    assert_int_equal(ph_nats_kill9(&s_nats, leader), 0);
    S_AT(8000);
    fprintf(stderr, "[test] %.1f s: restart %s\n",
            (double)(parley__mono_ms() - t0) / 1000, s_nats.node[leader].name);
    assert_int_equal(ph_nats_restart(&s_nats, leader), 0);
    S_AT(12000);
    int other = (leader + 1) % S_NODES;
    fprintf(stderr, "[test] %.1f s: SIGSTOP %s for 5 s\n",
            (double)(parley__mono_ms() - t0) / 1000, s_nats.node[other].name);
    assert_int_equal(ph_nats_sigstop(&s_nats, other), 0);
    S_AT(17000);
    assert_int_equal(ph_nats_sigcont(&s_nats, other), 0);
    S_AT(20000);
    fprintf(stderr, "[test] %.1f s: kill -9 parleyd p2\n",
            (double)(parley__mono_ms() - t0) / 1000);
    ph_daemon_kill9(&nodes->d[1]);
    S_AT(23000);
    fprintf(stderr, "[test] %.1f s: restart parleyd p2\n",
            (double)(parley__mono_ms() - t0) / 1000);
    assert_int_equal(ph_nodes_restart(nodes, 1), 0);
    S_AT(S_CHAOS_MS);
#undef S_AT
}

/* Resend every acked update through pub: each must be a duplicate with
 * its original seq. Pipelined in windows. */
static void
s_resend_all(parley_pub_t *pub, s_pubber_t *pubs)
{
    size_t checked = 0;
    for (int i = 0; i < S_PUBS; i++) {
        s_pubber_t *p = &pubs[i];
        for (size_t k = 0; k < p->n_acked; k++) {
            uint64_t seq = 0;
            int rc = s_send_wait(pub, p->acked[k].env, p->acked[k].len, &seq);
            if (rc != PARLEY_DUPLICATE || seq != p->acked[k].seq)
                fail_msg("publisher %d's update acked as seq %" PRIu64
                         ", resent: %s seq %" PRIu64 " (%s)",
                         i + 1, p->acked[k].seq, parley_error_name(rc), seq,
                         parley_pub_detail(pub));
            checked++;
        }
    }
    fprintf(stderr, "[test] %zu resends: every one a duplicate of its "
                    "original seq\n",
            checked);
}

/* Every subscriber: seqs 1..head in order, each once, with the bytes
 * of every acked update at its seq. */
static void
s_check_subscribers(s_subber_t *subs, s_pubber_t *pubs, uint64_t head)
{
    for (int i = 0; i < S_NODES; i++) {
        s_subber_t *s = &subs[i];
        assert_int_equal(s->err, 0);
        if (s->n != head)
            fail_msg("subscriber %d got %zu deliveries for seqs 1..%" PRIu64,
                     i + 1, s->n, head);
        for (size_t k = 0; k < s->n; k++)
            if (s->seqs[k] != k + 1)
                fail_msg("subscriber %d: delivery %zu has seq %" PRIu64
                         ", expected %zu (a gap, a repeat or disorder)",
                         i + 1, k, s->seqs[k], k + 1);
        assert_int_equal(s->gaps, 0);
        assert_int_equal(s->rejected, 0);
        assert_int_equal(s->inconsistent, 0);
        if (atomic_load(&s->verified) != head)
            fail_msg("subscriber %d: the log verified up to %" PRIu64
                     " of %" PRIu64,
                     i + 1, (uint64_t)atomic_load(&s->verified), head);
        for (int p = 0; p < S_PUBS; p++)
            for (size_t k = 0; k < pubs[p].n_acked; k++) {
                const s_acked_t *a = &pubs[p].acked[k];
                assert_true(a->seq >= 1 && a->seq <= head);
                if (s->lens[a->seq - 1] != a->len
                    || memcmp(s->envs[a->seq - 1], a->env, a->len) != 0)
                    fail_msg("subscriber %d: seq %" PRIu64 " is not the "
                             "update acked as it",
                             i + 1, a->seq);
            }
    }
}

/*
 * A pause of the stream's leader (the fault that makes a replica of
 * nats-server 2.9.10 diverge; docs/cluster.md, "Replicas that disagree"):
 * the server leading the stream is SIGSTOPped for 5 s and continued, once.
 * Once only: the replica that diverged stays so (2.9.10 does not repair
 * it), so a second fault would be a second one at a time, and could make
 * it the leader (every node then stops, diverged).
 */
static void
s_pause(ph_nodes_t *nodes, const char *stream)
{
    (void)nodes;
    int64_t t0 = parley__mono_ms();
    s_sleep_ms(2000);
    int leader = ph_nats_stream_leader(&s_nats, stream, 10000);
    assert_true(leader >= 0);
    fprintf(stderr, "[test] %.1f s: SIGSTOP %s, the stream leader, for 5 s\n",
            (double)(parley__mono_ms() - t0) / 1000,
            s_nats.node[leader].name);
    assert_int_equal(ph_nats_sigstop(&s_nats, leader), 0);
    s_sleep_ms(5000);
    assert_int_equal(ph_nats_sigcont(&s_nats, leader), 0);
    s_sleep_ms(5000);
}

/*
 * 4 publishers with endpoint lists spread over the nodes, a subscriber
 * per node, while schedule() makes its faults; then every acked update
 * reached every subscriber once, in order, with its bytes; the logs are
 * identical; every resend is a duplicate of its original seq.
 */
static void
s_storm(const char *name, const char *stream,
        void (*schedule)(ph_nodes_t *, const char *))
{
    ph_nodes_t nodes;
    s_nodes_up(&nodes, name, stream, S_NODES);

    s_subber_t subs[S_NODES];
    s_pubber_t pubs[S_PUBS];
    memset(subs, 0, sizeof(subs));
    memset(pubs, 0, sizeof(pubs));
    atomic_store(&s_stop_subs, false);
    atomic_store(&s_stop_pubs, false);
    for (int i = 0; i < S_NODES; i++) {
        subs[i].idx = i;
        ph_nodes_api_list(&nodes, i, subs[i].servers, sizeof(subs[i].servers));
        assert_int_equal(pthread_create(&subs[i].thr, NULL, s_sub_main,
                                        &subs[i]),
                         0);
    }
    s_t0 = parley__mono_ms();
    fprintf(stderr, "[test] publishing from unix ms %lld\n",
            (long long)parley_now_ms());
    for (int i = 0; i < S_PUBS; i++) {
        pubs[i].idx = i;
        ph_nodes_api_list(&nodes, i % S_NODES, pubs[i].servers,
                          sizeof(pubs[i].servers));
        assert_int_equal(pthread_create(&pubs[i].thr, NULL, s_pub_main,
                                        &pubs[i]),
                         0);
    }
    schedule(&nodes, stream);
    atomic_store(&s_stop_pubs, true);
    size_t sent = 0, errors = 0, acked = 0;
    uint64_t max_acked = 0;
    for (int i = 0; i < S_PUBS; i++) {
        pthread_join(pubs[i].thr, NULL);
        sent += pubs[i].sent;
        errors += pubs[i].errors;
        acked += pubs[i].n_acked;
        for (size_t k = 0; k < pubs[i].n_acked; k++)
            if (pubs[i].acked[k].seq > max_acked)
                max_acked = pubs[i].acked[k].seq;
        if (pubs[i].errors > 0)
            fprintf(stderr, "[test] publisher %d: %zu errors, the last %s\n",
                    i + 1, pubs[i].errors, pubs[i].last_detail);
    }
    fprintf(stderr, "[test] %zu publishes: %zu acked, %zu got an error\n",
            sent, acked, errors);
    assert_true(acked > 0);

    /* Everything the stream holds reaches every node, then every
     * subscriber. The stream may hold more than was acked (a publish
     * answered unavailable can be stored after all, and one node can
     * have read it before another): every node gets to the highest seq
     * any of them knows. */
    assert_int_equal(ph_nodes_wait_head(&nodes, max_acked, S_WAIT_MS), 0);
    uint64_t head = 0;
    for (int i = 0; i < S_NODES; i++) {
        uint64_t h = s_stat(&nodes.d[i], "seq");
        uint64_t last = s_stat(&nodes.d[i], "cluster_stream_last");
        head = h > head ? h : head;
        head = last > head ? last : head;
    }
    assert_int_equal(ph_nodes_wait_head(&nodes, head, S_WAIT_MS), 0);
    for (int i = 0; i < S_NODES; i++)
        assert_int_equal(s_stat(&nodes.d[i], "seq"), head);
    int64_t deadline = parley__mono_ms() + S_WAIT_MS;
    for (int i = 0; i < S_NODES; i++)
        while ((atomic_load(&subs[i].last) < head
                || atomic_load(&subs[i].verified) < head)
               && parley__mono_ms() < deadline)
            s_sleep_ms(20);
    atomic_store(&s_stop_subs, true);
    for (int i = 0; i < S_NODES; i++) {
        pthread_join(subs[i].thr, NULL);
        fprintf(stderr, "[test] subscriber %d: %zu deliveries, %zu "
                        "fail-overs; the log verified up to %" PRIu64
                        " (%zu stale)\n",
                subs[i].idx + 1, subs[i].n, subs[i].disconnects,
                (uint64_t)atomic_load(&subs[i].verified), subs[i].stale);
    }
    for (int i = 0; i < S_NODES; i++) {
        fprintf(stderr, "[test] parleyd p%d: %" PRIu64 " records read again "
                        "(a replica held them otherwise than the stream "
                        "leader)\n",
                i + 1, s_stat(&nodes.d[i], "cluster_records_reread"));
        char node[32];
        uint64_t ua[S_UA_N];
        snprintf(node, sizeof(node), "parleyd p%d", i + 1);
        (void)s_unavailable_causes(&nodes.d[i], node, ua);
    }
    s_check_subscribers(subs, pubs, head);
    assert_int_equal(ph_nodes_logs_equal(&nodes), 0);
    fprintf(stderr, "[test] the three logs are byte-identical up to seq "
                    "%" PRIu64 "\n",
            head);
    s_trees_agree(&nodes, S_NODES, head, NULL);

    char list[512];
    ph_nodes_api_list(&nodes, 2, list, sizeof(list));
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = list;
    o.timeout_ms = 5000;
    parley_pub_t *pub = parley_pub_new(s_keys[0].key, &o);
    assert_non_null(pub);
    s_resend_all(pub, pubs);
    parley_pub_destroy(&pub);
    fprintf(stderr, "[test] publishes that got an error: %zu of %zu\n",
            errors, sent);

    for (int i = 0; i < S_PUBS; i++) {
        for (size_t k = 0; k < pubs[i].n_acked; k++)
            free(pubs[i].acked[k].env);
        free(pubs[i].acked);
    }
    for (int i = 0; i < S_NODES; i++) {
        for (size_t k = 0; k < subs[i].n; k++)
            free(subs[i].envs[k]);
        free(subs[i].envs);
        free(subs[i].seqs);
        free(subs[i].lens);
    }
    ph_nodes_stop(&nodes, true);
}

static void
test_chaos(void **state)
{
    (void)state;
    s_storm("chaos", "CHAOS", s_chaos);
}

/* The leader paused and continued under publishes: a replica that holds
 * other records than the leader must not reach a node's log (each record
 * is checked against the leader's). Three rounds, each on a stream of its
 * own (one fault per stream), as one pause makes a replica diverge only
 * now and then. */
static void
test_pause(void **state)
{
    (void)state;
    for (int i = 1; i <= 3; i++) {
        char name[16], stream[16];
        snprintf(name, sizeof(name), "pause%d", i);
        snprintf(stream, sizeof(stream), "PAUSE%d", i);
        fprintf(stderr, "[test] round %d, stream %s\n", i, stream);
        s_storm(name, stream, s_pause);
    }
}

/* -------------------------------------------------------------- race */

/* Publish env through api a and env2 through api b at the same moment;
 * the answers in *ra, *rb. */
static void
s_race_pair(ph_api_t *a, ph_api_t *b, const uint8_t *env1, size_t len1,
            const uint8_t *env2, size_t len2, parley__reply_t *ra,
            parley__reply_t *rb)
{
    uint8_t req1[4096], req2[4096];
    size_t l1 = 0, l2 = 0;
    parley__request_t q = { .op = PARLEY__OP_PUBLISH, .request_id = 1 };
    q.update.data = env1;
    q.update.len = len1;
    assert_int_equal(parley__request_encode(&q, req1, sizeof(req1), &l1), 0);
    q.request_id = 2;
    q.update.data = env2;
    q.update.len = len2;
    assert_int_equal(parley__request_encode(&q, req2, sizeof(req2), &l2), 0);
    const void *fa[1] = { req1 }, *fb[1] = { req2 };
    size_t la[1] = { l1 }, lb[1] = { l2 };
    assert_int_equal(ph_api_send_frames(a, fa, la, 1), 0);
    assert_int_equal(ph_api_send_frames(b, fb, lb, 1), 0);
    assert_int_equal(ph_api_recv(a, 30000, ra), 0);
    assert_int_equal(ph_api_recv(b, 30000, rb), 0);
}

static void
test_race(void **state)
{
    (void)state;
    ph_nodes_t nodes;
    s_nodes_up(&nodes, "race", "RACE", 2);
    ph_api_t a, b;
    assert_int_equal(ph_api_open(&a, nodes.d[0].api), 0);
    assert_int_equal(ph_api_open(&b, nodes.d[1].api), 0);
    const ph_key_t *k = &s_keys[0];
    uint8_t e1[2048], e2[2048];
    size_t l1, l2;
    parley_update_t u;
    uint64_t sseq = s_now_us();
    int rounds = 40, won_a = 0, won_b = 0;
    uint64_t last_seq = 0;
    for (int r = 0; r < rounds; r++) {
        sseq++;
        s_update(&u, "egypt", sseq, "through node 1");
        assert_int_equal(ph_sign(k, &u, e1, sizeof(e1), &l1), 0);
        s_update(&u, "egypt", sseq, "through node 2");
        assert_int_equal(ph_sign(k, &u, e2, sizeof(e2), &l2), 0);
        parley__reply_t ra, rb;
        s_race_pair(&a, &b, e1, l1, e2, l2, &ra, &rb);
        bool acked_a = ra.type == PARLEY__REPLY_ACK;
        bool acked_b = rb.type == PARLEY__REPLY_ACK;
        char da[128], db[128];
        if (acked_a == acked_b
            || (!acked_a && (ra.type != PARLEY__REPLY_REJECT
                             || ra.code != PARLEY_EREPLAY))
            || (!acked_b && (rb.type != PARLEY__REPLY_REJECT
                             || rb.code != PARLEY_EREPLAY)))
            fail_msg("round %d: node 1 %s, node 2 %s", r,
                     ph_reply_describe(&ra, da, sizeof(da)),
                     ph_reply_describe(&rb, db, sizeof(db)));
        uint64_t seq = acked_a ? ra.seq : rb.seq;
        assert_true(seq > last_seq);
        last_seq = seq;
        won_a += acked_a;
        won_b += acked_b;
    }
    fprintf(stderr, "[test] %d rounds, one signer_seq through two nodes: "
                    "node 1 won %d, node 2 won %d, the other got replay\n",
            rounds, won_a, won_b);

    /* Two signer_seqs of one signer at once: JetStream 2.9 can store the
     * lower after the higher; the nodes then void the lower. */
    int both = 0, lower_refused = 0;
    for (int r = 0; r < rounds; r++) {
        sseq += 2;
        s_update(&u, "qatar", sseq - 1, "the lower");
        assert_int_equal(ph_sign(k, &u, e1, sizeof(e1), &l1), 0);
        s_update(&u, "qatar", sseq, "the higher");
        assert_int_equal(ph_sign(k, &u, e2, sizeof(e2), &l2), 0);
        parley__reply_t ra, rb;
        /* The higher one through node 2 is sent first. */
        s_race_pair(&b, &a, e2, l2, e1, l1, &rb, &ra);
        char da[128], db[128];
        if (rb.type == PARLEY__REPLY_ACK && ra.type == PARLEY__REPLY_ACK) {
            if (ra.seq > rb.seq)
                fail_msg("round %d: the lower signer_seq acked as seq %" PRIu64
                         " after the higher one's %" PRIu64,
                         r, ra.seq, rb.seq);
            both++;
        } else if (ra.type == PARLEY__REPLY_REJECT
                   && ra.code == PARLEY_EREPLAY
                   && rb.type == PARLEY__REPLY_ACK) {
            lower_refused++;
        } else {
            fail_msg("round %d: the lower %s, the higher %s", r,
                     ph_reply_describe(&ra, da, sizeof(da)),
                     ph_reply_describe(&rb, db, sizeof(db)));
        }
    }
    fprintf(stderr, "[test] %d rounds of two signer_seqs: both acked in "
                    "order %d, the lower refused replay %d\n",
            rounds, both, lower_refused);
    ph_api_close(&a);
    ph_api_close(&b);
    uint64_t head = s_stat(&nodes.d[0], "cluster_stream_last");
    assert_int_equal(ph_nodes_wait_head(&nodes, head, S_WAIT_MS), 0);
    assert_int_equal(ph_nodes_logs_equal(&nodes), 0);
    uint64_t v0 = s_stat(&nodes.d[0], "cluster_records_voided");
    assert_int_equal(s_stat(&nodes.d[1], "cluster_records_voided"), v0);
    s_trees_agree(&nodes, 2, head, NULL);
    fprintf(stderr, "[test] stream seqs %" PRIu64 ", void on both nodes: "
                    "%" PRIu64 "; logs identical\n",
            head, v0);
    /* Every update acked is there once; a void one only as a void. */
    assert_int_equal(head - v0, (uint64_t)(rounds + 2 * both + lower_refused));
    ph_nodes_stop(&nodes, true);
}

/* -------------------------------------------------------- quorum loss */

static void
test_quorum(void **state)
{
    (void)state;
    ph_nodes_t nodes;
    s_nodes_up(&nodes, "quorum", "QUORUM", 2);
    /* With a list: it would move on from a node that said it is behind
     * (and no heartbeats for 3 intervals would say DISCONNECTED too). */
    char list[512];
    ph_nodes_api_list(&nodes, 1, list, sizeof(list));
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.server = list;
    so.start = PARLEY_START_LIVE;
    parley_sub_t *sub = parley_sub_new(&so);
    assert_non_null(sub);
    parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
    po.server = nodes.d[0].api;
    po.timeout_ms = 10000; /* the daemon must answer well before this */
    po.attempts = 1;
    parley_pub_t *pub = parley_pub_new(s_keys[1].key, &po);
    assert_non_null(pub);
    parley_update_t u;
    uint64_t sseq = s_now_us(), seq = 0;
    s_update(&u, "egypt", ++sseq, "before the outage");
    assert_int_equal(parley_pub_publish(pub, &u, &seq), 0);

    /* Two of three servers down: the stream has no quorum. */
    int leader = ph_nats_stream_leader(&s_nats, "QUORUM", 10000);
    assert_true(leader >= 0);
    int down[2] = { leader, (leader + 1) % S_NODES };
    for (int i = 0; i < 2; i++)
        assert_int_equal(ph_nats_kill9(&s_nats, down[i]), 0);
    int64_t t = parley__mono_ms();
    s_update(&u, "egypt", ++sseq, "during the outage");
    int rc = parley_pub_publish(pub, &u, &seq);
    int64_t took = parley__mono_ms() - t;
    fprintf(stderr, "[test] publish without quorum: %s after %lld ms (%s)\n",
            parley_error_name(rc), (long long)took, parley_pub_detail(pub));
    assert_int_equal(rc, PARLEY_EUNAVAILABLE);
    /* Later ones are refused at once while the node knows. */
    for (int i = 0; i < 3; i++) {
        s_update(&u, "egypt", ++sseq, "still out");
        t = parley__mono_ms();
        rc = parley_pub_publish(pub, &u, &seq);
        fprintf(stderr, "[test] again: %s after %lld ms (%s)\n",
                parley_error_name(rc), (long long)(parley__mono_ms() - t),
                parley_pub_detail(pub));
        assert_int_equal(rc, PARLEY_EUNAVAILABLE);
    }
    /* The four count as the outage's: refused before JetStream (no
     * server reachable), no PubAck in time, or no stream leader; none
     * under a cause of the node's own. */
    uint64_t ua[S_UA_N];
    assert_int_equal(s_unavailable_causes(&nodes.d[0], "parleyd p1", ua), 4);
    assert_int_equal(ua[0] + ua[1] + ua[2], 4);
    /* The subscriber of the other node stays connected and hears
     * heartbeats for 8 s (8 intervals). */
    int64_t end = parley__mono_ms() + 8000;
    while (parley__mono_ms() < end) {
        const parley_event_t *ev = NULL;
        rc = parley_sub_next(sub, 200, &ev);
        assert_true(rc >= 0);
        if (rc == 1)
            assert_int_not_equal(parley_event_type(ev),
                                 PARLEY_EVENT_DISCONNECTED);
    }
    /* Back: the same parleyd takes publishes again. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(ph_nats_restart(&s_nats, down[i]), 0);
    t = parley__mono_ms();
    for (;;) {
        s_update(&u, "egypt", ++sseq, "after the outage");
        rc = parley_pub_publish(pub, &u, &seq);
        if (rc == 0 || parley__mono_ms() - t > S_WAIT_MS)
            break;
        s_sleep_ms(250);
    }
    fprintf(stderr, "[test] publishing again %lld ms after the restart\n",
            (long long)(parley__mono_ms() - t));
    assert_int_equal(rc, 0);
    /* The subscriber gets it, once, without a gap. Its node may now be
     * behind the stream for a while (its consumer may have died with a
     * server, and is made again only once JetStream has a leader): a
     * subscriber with a list leaves a node that stays behind for more
     * than 3 heartbeats, by design (docs/cluster.md), and continues from
     * its last seq on the other one. Only the outage itself, above, must
     * not move it. */
    const parley_event_t *ev = NULL;
    int64_t deadline = parley__mono_ms() + S_WAIT_MS;
    int got = 0, moves = 0;
    while (got == 0 && parley__mono_ms() < deadline) {
        rc = parley_sub_next(sub, 500, &ev);
        assert_true(rc >= 0);
        if (rc != 1)
            continue;
        int type = parley_event_type(ev);
        assert_int_not_equal(type, PARLEY_EVENT_GAP);
        assert_int_not_equal(type, PARLEY_EVENT_REJECTED);
        if (type == PARLEY_EVENT_DISCONNECTED)
            moves++;
        if (type == PARLEY_EVENT_DELIVERY) {
            assert_true(parley_event_seq(ev) <= seq);
            got += parley_event_seq(ev) == seq;
        }
    }
    assert_int_equal(got, 1);
    /* And nothing more: no repeat of it. */
    while ((rc = parley_sub_next(sub, 1500, &ev)) == 1)
        if (parley_event_type(ev) == PARLEY_EVENT_DELIVERY)
            assert_true(parley_event_seq(ev) > seq);
    assert_true(rc >= 0);
    fprintf(stderr, "[test] the subscriber got seq %" PRIu64 " after the "
                    "outage (%d move%s to the other node after the "
                    "restart)\n",
            seq, moves, moves == 1 ? "" : "s");
    parley_pub_destroy(&pub);
    parley_sub_destroy(&sub);
    ph_nodes_stop(&nodes, true);
}

/* -------------------------------------------------- records no one serves */

/* Publish data straight into the stream on subject (no parleyd). */
static void
s_inject(const char *subject, const void *data, size_t len)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(natsConnection_ConnectTo(&nc, s_nats.urls), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    natsStatus st = js_Publish(&pa, js, subject, data, (int)len, NULL, &jerr);
    if (st != NATS_OK)
        fail_msg("js_Publish %s: %s (%d)", subject, natsStatus_GetText(st),
                 (int)jerr);
    jsPubAck_Destroy(pa);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void
test_void(void **state)
{
    (void)state;
    ph_nodes_t nodes;
    s_nodes_up(&nodes, "void", "VOID", 2);
    char subj_a[64], subj_out[64], id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(s_keys[0].pk, id);
    snprintf(subj_a, sizeof(subj_a), "VOID.u.%s", id);
    parley_key_id(s_keys[S_PUBS].pk, id);
    snprintf(subj_out, sizeof(subj_out), "VOID.u.%s", id);
    uint8_t env[2048];
    size_t len;
    parley_update_t u;
    uint64_t sseq = s_now_us();

    s_inject(subj_a, "not a signed update", 19);         /* 1: malformed */
    s_update(&u, "egypt", ++sseq, "from outside the keyring");
    assert_int_equal(ph_sign(&s_keys[S_PUBS], &u, env, sizeof(env), &len), 0);
    s_inject(subj_out, env, len);                        /* 2: unknown */
    s_update(&u, "egypt", ++sseq, "under another signer's subject");
    assert_int_equal(ph_sign(&s_keys[1], &u, env, sizeof(env), &len), 0);
    s_inject(subj_a, env, len);                          /* 3: subject */
    s_update(&u, "egypt", ++sseq, "with a broken signature");
    assert_int_equal(ph_sign(&s_keys[0], &u, env, sizeof(env), &len), 0);
    env[len - 1] ^= 0x01;                                /* in the signature */
    s_inject(subj_a, env, len);                          /* 4: bad sig */
    /* Then a good one through parleyd. */
    parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
    po.server = nodes.d[1].api;
    parley_pub_t *pub = parley_pub_new(s_keys[0].key, &po);
    assert_non_null(pub);
    uint64_t seq = 0;
    s_update(&u, "egypt", ++sseq, "the one good update");
    assert_int_equal(ph_sign(&s_keys[0], &u, env, sizeof(env), &len), 0);
    assert_int_equal(s_send_wait(pub, env, len, &seq), 0);
    assert_int_equal(seq, 5);
    parley_pub_destroy(&pub);

    assert_int_equal(ph_nodes_wait_head(&nodes, 5, S_WAIT_MS), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s_stat(&nodes.d[i], "cluster_records_voided"), 4);
        assert_int_equal(s_stat(&nodes.d[i], "cluster_records_applied"), 1);
        /* A replay from 1 serves the good one only. */
        parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
        so.server = nodes.d[i].api;
        so.start = PARLEY_START_SEQ;
        so.since_seq = 1;
        parley_sub_t *sub = parley_sub_new(&so);
        assert_non_null(sub);
        const parley_event_t *ev = ph_sub_expect(
            sub, PARLEY_EVENT_DELIVERY, true, 10000, "the good update");
        assert_int_equal(parley_event_seq(ev), 5);
        parley_sub_destroy(&sub);
    }
    assert_int_equal(ph_nodes_logs_equal(&nodes), 0);
    /* In the tree, seqs 1-4 are absent-record leaves, 5 the update. */
    parley__tlog_mem_t ref;
    parley__tlog_mem_init(&ref);
    for (uint64_t k = 1; k <= 4; k++) {
        parley__tlog_hash_t leaf;
        parley__tlog_absent_leaf(k, &leaf);
        assert_int_equal(parley__tlog_mem_append_hash(&ref, &leaf), 0);
    }
    assert_int_equal(parley__tlog_mem_append(&ref, env, len), 0);
    parley__tlog_hash_t ref_root;
    assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &ref, 5,
                                       &ref_root),
                     0);
    parley__tlog_mem_clear(&ref);
    uint8_t root[32];
    s_trees_agree(&nodes, 2, 5, root);
    assert_memory_equal(root, ref_root.b, 32);
    /* The void records say why, in the log. */
    char seg[PH_PATH_MAX];
    size_t flen = 0;
    assert_int_equal(ph_path(seg, sizeof(seg), nodes.d[0].state_dir,
                             "seg-00000000000000000001.log"),
                     0);
    uint8_t *f = (uint8_t *)ph_file_read(seg, &flen);
    assert_non_null(f);
    int want[4] = { PARLEY_EMALFORMED, PARLEY_EUNKNOWNSIGNER,
                    PARLEY_EMALFORMED, PARLEY_EBADSIG };
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        uint32_t rlen = (uint32_t)f[off] | (uint32_t)f[off + 1] << 8;
        int reason = 0;
        assert_true(pd_embedded_void_parse(f + off + 24, rlen, &reason, NULL));
        assert_int_equal(reason, want[i]);
        off += 24 + rlen;
    }
    free(f);
    ph_nodes_stop(&nodes, true);
}

/* --------------------------------------------------- a foreign state dir */

static void
test_foreign_state(void **state)
{
    (void)state;
    /* An embedded log first. */
    ph_daemon_t d;
    char dir[PH_PATH_MAX];
    assert_int_equal(ph_path(dir, sizeof(dir), s_dir, "foreign"), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(ph_daemon_start(&d, dir, s_ring, NULL), 0);
    parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
    po.server = d.api;
    parley_pub_t *pub = parley_pub_new(s_keys[0].key, &po);
    assert_non_null(pub);
    parley_update_t u;
    uint64_t seq = 0;
    s_update(&u, "egypt", s_now_us(), "an embedded update");
    assert_int_equal(parley_pub_publish(pub, &u, &seq), 0);
    parley_pub_destroy(&pub);
    assert_int_equal(ph_daemon_stop(&d), 0);
    /* The same state directory in cluster mode: refused. */
    const char *argv[] = { PARLEYD_BIN, "--state-dir", d.state_dir,
                           "--keyring", s_ring, "--api", d.api, "--feed",
                           d.feed, "--backbone", s_nats.urls,
                           "--backbone-stream", "FOREIGN", NULL };
    ph_proc_t p = PH_PROC_INIT;
    assert_int_equal(ph_run(&p, argv, NULL, NULL, NULL, 30000), 0);
    assert_int_equal(p.status, 1);
    if (strstr(p.err, "is not a replica of stream FOREIGN") == NULL)
        fail_msg("parleyd said: %s", p.err);
    ph_proc_free(&p);
    ph_daemon_teardown(&d, true);
}

/* ------------------------------------------------ a node behind the stream */

/* When the proxy px last relayed a STREAM.MSG.GET request for seq (mono
 * ms), or 0 if never. */
static int64_t
s_asked(ph_nats_proxy_t *px, uint64_t seq)
{
    static uint64_t gets[4096];
    static int64_t at[4096];
    size_t n = ph_nats_proxy_gets(px, gets, at, 4096);
    int64_t last = 0;
    for (size_t i = 0; i < n && i < 4096; i++)
        if (gets[i] == seq)
            last = at[i];
    return last;
}

/*
 * A node that applies the stream's records later than JetStream stores
 * them, but keeps applying (as a node does whose consumer reads a replica
 * that lags the quorum, or that confirms records with the stream leader
 * more slowly than the other nodes publish), answers a publish once it
 * has applied it, however long after its PubAck: never `unavailable`
 * for a record it is on its way to. Here the stream leader says that it
 * holds none yet (the relay asks it about a seq no stream has) 3 times
 * in a row for the first of 4 records, 6 for the second, 9 and 12 for
 * the others. The node asks again about every undecided record of its
 * window together, 250 ms apart, so the four are confirmed one after
 * another, about 750 ms apart, and the last about 3 s after it was
 * sent: applied more than a publish timeout (2 s) after its PubAck,
 * with no pause of a publish timeout in between. Another signer
 * publishes meanwhile, so the node looks at its waiting publishes all
 * along.
 */
static void
test_slow_apply(void **state)
{
    (void)state;
    enum { STALLS = 4, ABSENT = 3, TRICKLE = 40 };
    ph_nodes_t nodes;
    s_nodes_up(&nodes, "slowapply", "SLOWAPPLY", 1);
    ph_nats_proxy_t *px = NULL;
    assert_int_equal(ph_nats_proxy_start(&px, "SLOWAPPLY",
                                         s_nats.node[0].port),
                     0);
    snprintf(nodes.backbone[0], sizeof(nodes.backbone[0]), "%s",
             ph_nats_proxy_url(px));
    assert_int_equal(ph_daemon_stop(&nodes.d[0]), 0);
    assert_int_equal(ph_nodes_restart(&nodes, 0), 0);
    parley_pub_t *a = ph_pub_new(nodes.d[0].api, s_keys[2].key, NULL, 30000);
    parley_pub_t *b = ph_pub_new(nodes.d[0].api, s_keys[3].key, NULL, 30000);
    assert_non_null(a);
    assert_non_null(b);
    parley_update_t u;
    uint64_t sseq = s_now_us(), seq = 0;
    s_update(&u, "egypt", ++sseq, "before");
    assert_int_equal(ph_publish(a, &u, &seq, NULL), 0);

    /* The next STALLS records wait for the leader's confirmation, each
     * ABSENT answers longer than the one before. */
    for (uint64_t k = 1; k <= STALLS; k++)
        ph_nats_proxy_absent(px, seq + k, ABSENT * (int)k);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;
    int64_t t0 = parley__mono_ms();
    for (int k = 1; k <= STALLS; k++) {
        s_update(&u, "egypt", ++sseq, "stored, applied later");
        assert_int_equal(ph_sign(&s_keys[2], &u, env, sizeof(env), &len), 0);
        assert_int_equal(parley_pub_send(a, env, len, NULL), 0);
    }
    /* Once all of them are stored (asked about), the other signer. */
    int64_t until = t0 + S_WAIT_MS;
    while (s_asked(px, seq + STALLS) == 0 && parley__mono_ms() < until)
        s_sleep_ms(5);
    assert_true(s_asked(px, seq + STALLS) > 0);
    uint64_t bseq = s_now_us();
    for (int k = 0; k < TRICKLE; k++) {
        s_update(&u, "qatar", ++bseq, "meanwhile");
        assert_int_equal(ph_sign(&s_keys[3], &u, env, sizeof(env), &len), 0);
        assert_int_equal(parley_pub_send(b, env, len, NULL), 0);
        s_sleep_ms(100);
    }

    for (int k = 1; k <= STALLS; k++) {
        uint64_t got = 0;
        int rc = ph_recv(a, S_WAIT_MS, NULL, &got, NULL);
        fprintf(stderr, "[test] publish %d: %s, seq %" PRIu64 " (%s)\n", k,
                parley_error_name(rc), got, parley_pub_detail(a));
        assert_int_equal(rc, 0);
        assert_int_equal(got, seq + (uint64_t)k);
    }
    /* The last was confirmed (asked about a last time) more than a
     * publish timeout after it was sent, so stored. */
    int64_t confirmed = s_asked(px, seq + STALLS) - t0;
    fprintf(stderr, "[test] seq %" PRIu64 " confirmed %lld ms after it was "
                    "sent\n",
            seq + STALLS, (long long)confirmed);
    assert_true(confirmed > 2000);
    for (int k = 0; k < TRICKLE; k++)
        assert_int_equal(ph_recv(b, S_WAIT_MS, NULL, NULL, NULL), 0);
    uint64_t ua[S_UA_N];
    assert_int_equal(s_unavailable_causes(&nodes.d[0], "parleyd p1", ua), 0);
    parley_pub_destroy(&a);
    parley_pub_destroy(&b);
    ph_nodes_stop(&nodes, true);
    ph_nats_proxy_stop(&px);
}

/* ------------------------------------------- a new node after retention */

/*
 * A node with an empty state directory joins a stream whose first
 * records retention removed: its transparency log cannot start there
 * (the tree has a leaf per seq from 1), so it refuses to start and says
 * what to do.
 */
static void
test_tree_start(void **state)
{
    (void)state;
    ph_nodes_t nodes;
    s_nodes_up_conf(&nodes, "retain", "RETAIN", 1, "retention_bytes 8192\n");
    parley_pub_options_t po = PARLEY_PUB_OPTIONS_INIT;
    po.server = nodes.d[0].api;
    parley_pub_t *pub = parley_pub_new(s_keys[0].key, &po);
    assert_non_null(pub);
    uint64_t sseq = s_now_us(), seq = 0;
    for (int i = 0; i < 60; i++) {
        parley_update_t u;
        s_update(&u, "egypt", ++sseq, "an update that retention removes");
        assert_int_equal(parley_pub_publish(pub, &u, &seq), 0);
    }
    parley_pub_destroy(&pub);

    /* 60 updates of about 400 bytes in a stream of 8 KiB: its first seq
     * is far above 1 now. A new node: refused. */
    char dir[PH_PATH_MAX], state_dir[PH_PATH_MAX], conf[512 + PH_PATH_MAX];
    char conf_path[PH_PATH_MAX], api[64], feed[64];
    assert_int_equal(ph_path(dir, sizeof(dir), s_dir, "retain-new"), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(ph_path(state_dir, sizeof(state_dir), dir, "state"), 0);
    assert_int_equal(ph_path(conf_path, sizeof(conf_path), dir, "conf"), 0);
    s_node_conf(conf, sizeof(conf), "RETAIN", "retention_bytes 8192\n");
    assert_int_equal(ph_file_write(conf_path, conf, strlen(conf), 0644), 0);
    snprintf(api, sizeof(api), "tcp://127.0.0.1:%d", ph_free_port());
    snprintf(feed, sizeof(feed), "tcp://127.0.0.1:%d", ph_free_port());
    const char *argv[] = { PARLEYD_BIN, "-c", conf_path, "--state-dir",
                           state_dir, "--keyring", s_ring, "--api", api,
                           "--feed", feed, "--backbone", s_nats.urls, NULL };
    ph_proc_t p = PH_PROC_INIT;
    assert_int_equal(ph_run(&p, argv, NULL, NULL, NULL, 30000), 0);
    assert_int_equal(p.status, 1);
    if (strstr(p.err, "its transparency log cannot start there") == NULL)
        fail_msg("parleyd said: %s", p.err);
    ph_proc_free(&p);
    ph_nodes_stop(&nodes, true);
}

int
main(void)
{
    /* CLUSTER_TEST=test_chaos runs that one (a pattern, as cmocka's). */
    if (getenv("CLUSTER_TEST") != NULL)
        cmocka_set_test_filter(getenv("CLUSTER_TEST"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_void),
        cmocka_unit_test(test_tree_start),
        cmocka_unit_test(test_foreign_state),
        cmocka_unit_test(test_race),
        cmocka_unit_test(test_quorum),
        cmocka_unit_test(test_slow_apply),
        cmocka_unit_test(test_chaos),
        cmocka_unit_test(test_pause),
    };
    return cmocka_run_group_tests(tests, s_group_up, s_group_down);
}
