/*
 * test_cluster_tlog.c - the transparency log across cluster fail-over
 * (issue 16, "Works in every mode"; docs/transparency.md section 16).
 *
 * Three nats-server (JetStream, R3) and three parleyd nodes that sign
 * with one log key and origin and ask one witness (parley witness) to
 * cosign. A publisher with an endpoint list keeps a steady feed going.
 * Subscribers verify the log with the strictest settings documented:
 * the log's key in their keyring, a log state file each, max_staleness
 * set, and (A and B) the witness's cosignature required on every
 * checkpoint they trust. A and C see every record (their own tree,
 * consistency proofs), B a filter (inclusion proofs of every update
 * handed out). C does without the witness, so that the checkpoints of a
 * node that lags always reach its size check (a subscriber that requires
 * the witness drops them before when the witness has not cosigned them).
 * While the feed goes on:
 *
 *   1. the node A and B are on is killed with -9: both move to
 *      other nodes and go on verifying there;
 *   2. with more published meanwhile, that node is restarted, and once
 *      it has caught up its nats-server is killed with -9 (made a
 *      follower of the stream first, so the others go on at once; and
 *      killed, not SIGSTOPped: see s_lag_begin()): the node now lags
 *      (each parleyd is given its own server alone, and the servers
 *      advertise no address a client could move to; the stream keeps its
 *      quorum on the other two). C's node is killed with -9:
 *      C moves to the lagging node, sees its checkpoints behind the one
 *      it trusts, and moves on;
 *   3. the node killed last is restarted the same way and made to lag;
 *      A is restarted (A') with its log state file (a checkpoint another
 *      node signed) and an endpoint list that starts at that node.
 *
 * Then every subscriber: no alarm of any kind (LOG_INCONSISTENT,
 * LOG_STALE, a rejected checkpoint or delivery, a gap); its LOG_VERIFIED
 * seq only grew, and its trusted checkpoint grew through consistency
 * proofs that a node other than the one the older checkpoint came from
 * gave (parley__sub_log_counts(): chains_across); C, on the lagging
 * node, saw its smaller checkpoints (behind) and raised nothing;
 * every update handed out is proven (the last LOG_VERIFIED covers the
 * last seq and the head). An all/ subscriber got every seq once, in
 * order (the restarted one from what it had proven before).
 *
 * Two negative controls, so that none of this can pass vacuously:
 *
 *   - a fourth node on the same stream with another log key: a
 *     subscriber there rejects its checkpoints (REJECTED, seq 0) and
 *     trusts none;
 *   - a daemon with the cluster's log key and origin and another history
 *     (a fork): a subscriber started from a copy of a cluster
 *     subscriber's log state raises LOG_INCONSISTENT.
 *
 * Before parleyd sent a witness's cosignature on as soon as it came, A
 * and B raised LOG_STALE here: with an update every heartbeat interval,
 * each heartbeat signed a new size before the witness had cosigned it.
 *
 * When the test fails, the daemons' and the servers' logs are printed
 * and its directory is kept (its path printed); CLUSTER_KEEP=1 keeps it
 * after a pass too.
 */
#include "harness.h"
#include "nats_harness.h"

#include "clock.h"
#include "logcheck.h"

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
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define S_NODES 3
#define S_SUBS 3
#define S_ORIGIN "parley.test/cluster-tlog"
#define S_STALENESS_MS 20000  /* max_staleness of every subscriber */
#define S_PUB_PAUSE_MS 10     /* between two updates of the feed */
#define S_LAG_UPDATES 300     /* published while a node is down */
#define S_WAIT_MS 60000       /* for what must come */
#define S_CONFIG                                                               \
    "backbone_replicas 3\n"                                                    \
    "backbone_publish_timeout 2000\n"

static ph_nats_cluster_t s_nats;
static char s_dir[PH_PATH_MAX];
static ph_key_t s_signer;
static ph_key_t s_log;         /* the log key every node shares */
static ph_key_t s_other_log;   /* another key, for the control */
static ph_key_t s_wkey;        /* the witness's key */
static char s_ring[PH_PATH_MAX];  /* the daemons' keyring */
static char s_wlist[PH_PATH_MAX]; /* the nodes' witnesses file */
static pid_t s_witness;          /* parley witness */
static parley_keyring_t *s_sub_ring; /* the signer, the log, the witness */
static ph_nodes_t s_nodes;      /* the cluster's parleyd */
static ph_daemon_t s_ctl[2];    /* the controls' daemons */
static bool s_ok;               /* the test got to its end */

#define S_WITNESS "witness.test/w1"


static void
s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
s_group_up(void **state)
{
    (void)state;
    char text[1024] = "", sub_text[2048], err[256] = "";
    if (ph_tmpdir_make(s_dir, sizeof(s_dir)) < 0
        || ph_key_make(&s_signer, s_dir, "desk", 0x61) < 0
        || ph_key_make(&s_log, s_dir, "log", 0x4c) < 0
        || ph_key_make(&s_other_log, s_dir, "otherlog", 0x4d) < 0
        || ph_keyring_add(text, sizeof(text), &s_signer, "*", "*", "*") < 0
        || ph_path(s_ring, sizeof(s_ring), s_dir, "keyring") < 0
        || ph_file_write(s_ring, text, strlen(text), 0644) < 0)
        return -1;
    if (ph_key_make(&s_wkey, s_dir, "witness", 0x57) < 0)
        return -1;
    snprintf(sub_text, sizeof(sub_text),
             "%slog: %s %s witnesses=1 max_staleness=%d\nwitness: %s %s\n",
             text, S_ORIGIN, s_log.pub_b64, S_STALENESS_MS / 1000, S_WITNESS,
             s_wkey.pub_b64);
    s_sub_ring = parley_keyring_parse(sub_text, strlen(sub_text), err,
                                      sizeof(err));
    if (s_sub_ring == NULL) {
        fprintf(stderr, "keyring: %s\n", err);
        return -1;
    }
    /* The servers advertise no address a client can reach, so a parleyd
     * given one server keeps to it (nats.c would otherwise add the others
     * it learns of): stopping that server leaves the node behind. */
    ph_nats_opts_t o = { .nodes = S_NODES,
                         .dir = s_dir, /* kept with the rest on failure */
                         .extra_conf = "client_advertise: \"127.0.0.1:1\"" };
    if (ph_nats_start(&s_nats, &o) < 0)
        return -1;
    /* One witness every node asks (parley witness). */
    char wring[PH_PATH_MAX], wstate[PH_PATH_MAX], wlog[PH_PATH_MAX];
    char listen_at[64], line[256];
    int port = ph_free_port();
    snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", port);
    snprintf(line, sizeof(line), "log: %s %s\n", S_ORIGIN, s_log.pub_b64);
    if (ph_path(wring, sizeof(wring), s_dir, "witness.keyring") < 0
        || ph_path(wstate, sizeof(wstate), s_dir, "witness.state") < 0
        || ph_path(wlog, sizeof(wlog), s_dir, "witness.log") < 0
        || ph_file_write(wring, line, strlen(line), 0644) < 0)
        return -1;
    const char *argv[] = { PARLEY_BIN, "witness", "-k", s_wkey.path, "--name",
                           S_WITNESS, "--keyring", wring, "--state", wstate,
                           "--listen", listen_at, NULL };
    if (ph_spawn_logged(argv, wlog, true, &s_witness) < 0)
        return -1;
    int64_t until = parley__mono_ms() + 20000;
    while (!ph_port_listening(port)) {
        if (parley__mono_ms() > until) {
            fprintf(stderr, "the witness does not listen on %d\n", port);
            return -1;
        }
        s_sleep_ms(20);
    }
    snprintf(line, sizeof(line), "%s %s http://%s\n", S_WITNESS,
             s_wkey.pub_b64, listen_at);
    if (ph_path(s_wlist, sizeof(s_wlist), s_dir, "witnesses") < 0
        || ph_file_write(s_wlist, line, strlen(line), 0644) < 0)
        return -1;
    return 0;
}

static int
s_group_down(void **state)
{
    (void)state;
    ph_nats_stop(&s_nats, !s_ok); /* the servers' logs, if it failed */
    if (s_witness > 0) {
        kill(s_witness, SIGTERM);
        waitpid(s_witness, NULL, 0);
    }
    ph_key_free(&s_wkey);
    ph_key_free(&s_signer);
    ph_key_free(&s_log);
    ph_key_free(&s_other_log);
    parley_keyring_destroy(&s_sub_ring);
    if (getenv("CLUSTER_KEEP") == NULL && s_ok)
        ph_tmpdir_remove(s_dir);
    else
        fprintf(stderr, "[test] kept %s\n", s_dir);
    return 0;
}

/* A stat of a daemon (0 if it does not answer). */
static uint64_t
s_stat(const ph_daemon_t *d, const char *name)
{
    ph_stats_t st;
    if (ph_stats_fetch(d->api, &st) < 0)
        return 0;
    return ph_stats_get(&st, name, NULL);
}

/* The endpoint list of nodes a, b, c (indices) in that order. */
static void
s_list(const ph_nodes_t *nodes, int a, int b, int c, char *out, size_t cap)
{
    snprintf(out, cap, "%s,%s,%s", nodes->d[a].api, nodes->d[b].api,
             nodes->d[c].api);
}

/* A daemon config signing with log_key_path as S_ORIGIN: a cluster node
 * on stream, or (stream NULL) a single daemon; with the witness or not. */
static void
s_write_conf(const char *path, const char *stream, const char *log_key_path,
             bool witness)
{
    char text[1024 + 2 * PH_PATH_MAX], more[PH_PATH_MAX + 32] = "";
    if (witness)
        snprintf(more, sizeof(more), "witnesses %s\n", s_wlist);
    if (stream != NULL)
        snprintf(text, sizeof(text),
                 S_CONFIG "backbone_stream %s\nlog_key %s\nlog_origin %s\n%s",
                 stream, log_key_path, S_ORIGIN, more);
    else /* the fork: a whole history at once, beyond a signer's burst */
        snprintf(text, sizeof(text),
                 "log_key %s\nlog_origin %s\nrate_limit 0\n%s", log_key_path,
                 S_ORIGIN, more);
    assert_int_equal(ph_file_write(path, text, strlen(text), 0644), 0);
}

/* ---------------------------------------------------------- publisher */

typedef struct {
    char servers[512];
    pthread_t thr;
    atomic_bool stop;
    atomic_uint_fast64_t acked;    /* updates acked */
    atomic_uint_fast64_t max_seq;  /* the highest seq acked */
    size_t sent, errors;
    char last_error[256];
} s_pubber_t;

static void *
s_pub_main(void *arg)
{
    s_pubber_t *p = arg;
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = p->servers;
    o.timeout_ms = 8000;
    o.attempts = 6;
    parley_pub_t *pub = parley_pub_new(s_signer.key, &o);
    if (pub == NULL) {
        snprintf(p->last_error, sizeof(p->last_error), "parley_pub_new: %s",
                 parley_error_name(-errno));
        return NULL;
    }
    while (!atomic_load(&p->stop)) {
        parley_update_t u;
        char headline[64];
        snprintf(headline, sizeof(headline), "feed %zu", p->sent);
        ph_update_init(&u, "gaza-ceasefire", p->sent % 2 ? "qatar" : "egypt",
                       1, headline);
        uint64_t seq = 0;
        int rc = parley_pub_publish(pub, &u, &seq);
        p->sent++;
        if (rc == 0 || rc == PARLEY_DUPLICATE) {
            atomic_fetch_add(&p->acked, 1);
            if (seq > atomic_load(&p->max_seq))
                atomic_store(&p->max_seq, seq);
        } else {
            p->errors++;
            snprintf(p->last_error, sizeof(p->last_error), "%s: %s",
                     parley_error_name(rc), parley_pub_detail(pub));
            s_sleep_ms(200);
        }
        s_sleep_ms(S_PUB_PAUSE_MS);
    }
    parley_pub_destroy(&pub);
    return NULL;
}

/* --------------------------------------------------------- subscribers */

/* One subscriber thread and what it saw. */
typedef struct {
    const char *name;
    char servers[512];
    const char *party;          /* a filter, or NULL: every record */
    char state[PH_PATH_MAX];    /* its log state file */
    uint64_t since;             /* starts at this seq */
    bool no_witness;            /* log_witnesses -1: no cosignature needed */
    bool started;               /* its thread runs until s_sub_join() */
    pthread_t thr;
    atomic_bool stop;
    int err;                    /* a code it could not go on after */

    atomic_uint_fast64_t last;      /* last seq handed out */
    atomic_uint_fast64_t verified;  /* highest LOG_VERIFIED seq */
    atomic_uint_fast64_t deliveries;
    atomic_int alarms;              /* INCONSISTENT, STALE, REJECTED, GAP */
    atomic_int rejected_cp;         /* REJECTED with seq 0 */
    atomic_int inconsistent;
    atomic_uint connected;          /* bit i: connected to list entry i */
    atomic_int on;                  /* the entry it is on now, -1: none */
    int disconnects;
    bool disorder;              /* a delivery out of order or repeated */
    bool shrank;                /* a LOG_VERIFIED below an earlier one */
    char first_alarm[2048];     /* what the first alarm said */
    parley__logcheck_counts_t counts; /* the verifier's, at the end */
    atomic_uint_fast64_t behind; /* counts.behind, as it goes */
} s_subber_t;

/* The test's feed and subscribers (A, B, C, then A restarted), here so
 * that the teardown stops their threads when the test fails. */
static s_pubber_t s_pub;
static bool s_pub_started;
static s_subber_t s_subs[S_SUBS + 1];

static void
s_alarm(s_subber_t *s, const char *what, const parley_event_t *ev)
{
    if (s->first_alarm[0] == '\0') {
        const char *e = parley_event_evidence(ev);
        snprintf(s->first_alarm, sizeof(s->first_alarm),
                 "%s: %s seq %" PRIu64 " code %s\n%s", s->name, what,
                 parley_event_seq(ev), parley_error_name(parley_event_code(ev)),
                 e != NULL ? e : "");
        fprintf(stderr, "[test] %s", s->first_alarm);
    }
    atomic_fetch_add(&s->alarms, 1);
}

/* Which entry of the subscriber's list ep is (-1: none). */
static int
s_entry(const s_subber_t *s, const char *ep)
{
    char list[512];
    snprintf(list, sizeof(list), "%s", s->servers);
    int i = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save), i++)
        if (ep != NULL && strcmp(t, ep) == 0)
            return i;
    return -1;
}

static void
s_on_event(s_subber_t *s, const parley_event_t *ev)
{
    uint64_t seq = parley_event_seq(ev);
    switch (parley_event_type(ev)) {
    case PARLEY_EVENT_DELIVERY: {
        uint64_t last = atomic_load(&s->last);
        if (last > 0 && (seq <= last || (s->party == NULL && seq != last + 1)))
            s->disorder = true;
        if (last == 0 && s->party == NULL && seq != s->since)
            s->disorder = true;
        atomic_store(&s->last, seq);
        atomic_fetch_add(&s->deliveries, 1);
        break;
    }
    case PARLEY_EVENT_LOG_VERIFIED:
        if (seq < atomic_load(&s->verified))
            s->shrank = true;
        else
            atomic_store(&s->verified, seq);
        break;
    case PARLEY_EVENT_LOG_INCONSISTENT:
        atomic_fetch_add(&s->inconsistent, 1);
        s_alarm(s, "LOG_INCONSISTENT", ev);
        break;
    case PARLEY_EVENT_LOG_STALE:
        s_alarm(s, "LOG_STALE", ev);
        break;
    case PARLEY_EVENT_REJECTED:
        if (seq == 0)
            atomic_fetch_add(&s->rejected_cp, 1);
        s_alarm(s, "REJECTED", ev);
        break;
    case PARLEY_EVENT_GAP:
        s_alarm(s, "GAP", ev);
        break;
    case PARLEY_EVENT_CONNECTED: {
        int i = s_entry(s, parley_event_endpoint(ev));
        if (i >= 0)
            atomic_fetch_or(&s->connected, 1u << i);
        atomic_store(&s->on, i);
        fprintf(stderr, "[test] %s on %s (list entry %d)\n", s->name,
                parley_event_endpoint(ev), i);
        break;
    }
    case PARLEY_EVENT_DISCONNECTED:
        atomic_store(&s->on, -1);
        s->disconnects++;
        fprintf(stderr, "[test] %s left %s (%s)\n", s->name,
                parley_event_endpoint(ev),
                parley_error_name(parley_event_code(ev)));
        break;
    default:
        break;
    }
}

static void *
s_sub_main(void *arg)
{
    s_subber_t *s = arg;
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    parley_filter_t *f = NULL;
    o.server = s->servers;
    o.keyring = s_sub_ring;
    o.start = PARLEY_START_SEQ;
    o.since_seq = s->since;
    o.timeout_ms = 3000;
    o.log_state = s->state;
    o.max_staleness_ms = S_STALENESS_MS;
    o.log_witnesses = s->no_witness ? -1 : 0;
    o.flags = PARLEY_SUB_NOWAIT; /* the first node may be down or stopped */
    if (s->party != NULL) {
        f = parley_filter_new();
        if (f == NULL || parley_filter_add_party(f, s->party) < 0) {
            s->err = PARLEY_EARG;
            parley_filter_destroy(&f);
            return NULL;
        }
        o.filters = (const parley_filter_t *const *)&f;
        o.n_filters = 1;
    }
    parley_sub_t *sub = parley_sub_new(&o);
    parley_filter_destroy(&f);
    if (sub == NULL) {
        s->err = -errno;
        return NULL;
    }
    while (!atomic_load(&s->stop)) {
        const parley_event_t *ev = NULL;
        int rc = parley_sub_next(sub, 100, &ev);
        atomic_store(&s->behind, parley__sub_log_counts(sub).behind);
        if (rc == 1) {
            s_on_event(s, ev);
        } else if (rc < 0 && rc != PARLEY_ETIMEOUT
                   && rc != PARLEY_EUNAVAILABLE) {
            s->err = rc;
            fprintf(stderr, "[test] %s: %s\n", s->name, parley_error_name(rc));
            break;
        }
    }
    s->counts = parley__sub_log_counts(sub);
    parley_sub_destroy(&sub);
    return NULL;
}

static void
s_sub_start(s_subber_t *s)
{
    atomic_store(&s->stop, false);
    atomic_store(&s->on, -1);
    assert_int_equal(pthread_create(&s->thr, NULL, s_sub_main, s), 0);
    s->started = true;
}

static void
s_sub_join(s_subber_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thr, NULL);
    s->started = false;
    fprintf(stderr, "[test] %s: %" PRIu64 " deliveries up to seq %" PRIu64
                    ", verified through %" PRIu64 ", %d fail-overs; "
                    "consistency proofs checked %" PRIu64 ", %" PRIu64
                    " of them from another node than the one the older "
                    "checkpoint came from; %" PRIu64 " checkpoints of the "
                    "trusted size from another node, same root; %" PRIu64
                    " smaller ones signed later (a node behind)\n",
            s->name, (uint64_t)atomic_load(&s->deliveries),
            (uint64_t)atomic_load(&s->last),
            (uint64_t)atomic_load(&s->verified), s->disconnects,
            s->counts.chains, s->counts.chains_across,
            s->counts.roots_across, s->counts.behind);
}

/* What a finished honest subscriber must show; through: the seq its
 * LOG_VERIFIED must reach, and (all_proven) every seq it handed out. */
static void
s_sub_check_honest(const s_subber_t *s, uint64_t through, bool all_proven)
{
    assert_int_equal(s->err, 0);
    if (atomic_load(&s->alarms) != 0)
        fail_msg("%s raised %d alarms; the first: %s", s->name,
                 (int)atomic_load(&s->alarms), s->first_alarm);
    if (s->disorder)
        fail_msg("%s: a delivery out of order, repeated or missing", s->name);
    if (s->shrank)
        fail_msg("%s: LOG_VERIFIED went backwards", s->name);
    if ((all_proven && atomic_load(&s->verified) < atomic_load(&s->last))
        || atomic_load(&s->verified) < through)
        fail_msg("%s: verified through %" PRIu64 ", handed out up to %" PRIu64
                 ", wanted %" PRIu64,
                 s->name, (uint64_t)atomic_load(&s->verified),
                 (uint64_t)atomic_load(&s->last), through);
    if (s->counts.chains_across == 0)
        fail_msg("%s: no consistency proof from another node than the one "
                 "its older checkpoint came from (%" PRIu64 " proofs)",
                 s->name, s->counts.chains);
}

/* Wait until cond(s, arg) holds for the subscriber, or fail. */
static void
s_wait_sub(s_subber_t *s, bool (*cond)(s_subber_t *, uint64_t), uint64_t arg,
           const char *what)
{
    int64_t until = parley__mono_ms() + S_WAIT_MS;
    while (!cond(s, arg)) {
        if (s->err != 0 || atomic_load(&s->alarms) != 0)
            fail_msg("%s, waiting for %s: error %s, alarm %s", s->name, what,
                     parley_error_name(s->err), s->first_alarm);
        if (parley__mono_ms() > until)
            fail_msg("%s: no %s within %d ms (verified %" PRIu64 ", last %"
                     PRIu64 ")",
                     s->name, what, S_WAIT_MS,
                     (uint64_t)atomic_load(&s->verified),
                     (uint64_t)atomic_load(&s->last));
        s_sleep_ms(20);
    }
}

static bool
s_verified_at(s_subber_t *s, uint64_t seq)
{
    return atomic_load(&s->verified) >= seq;
}

static bool
s_done_at(s_subber_t *s, uint64_t seq)
{
    return atomic_load(&s->verified) >= seq
           && (s->party != NULL || atomic_load(&s->last) >= seq);
}

static bool
s_left_entry0(s_subber_t *s, uint64_t seq)
{
    return (atomic_load(&s->connected) & ~1u) != 0
           && atomic_load(&s->verified) >= seq;
}

static void
s_wait_acked(s_pubber_t *p, uint64_t n)
{
    int64_t until = parley__mono_ms() + S_WAIT_MS;
    while (atomic_load(&p->acked) < n) {
        if (parley__mono_ms() > until)
            fail_msg("the feed: %" PRIu64 " of %" PRIu64 " acked (last error "
                     "%s)",
                     (uint64_t)atomic_load(&p->acked), n, p->last_error);
        s_sleep_ms(20);
    }
}

static bool
s_on_entry0(s_subber_t *s, uint64_t unused)
{
    (void)unused;
    return (atomic_load(&s->connected) & 1u) != 0;
}

static bool
s_now_on_entry0(s_subber_t *s, uint64_t unused)
{
    (void)unused;
    return atomic_load(&s->on) == 0;
}

static bool
s_saw_behind(s_subber_t *s, uint64_t n)
{
    return atomic_load(&s->behind) >= n;
}

static bool
s_on_entry1(s_subber_t *s, uint64_t unused)
{
    (void)unused;
    return (atomic_load(&s->connected) & 2u) != 0;
}

/*
 * Give every parleyd node its own nats-server alone (nats.c would pick
 * any of a list, and the servers advertise no other address), restarting
 * each: stopping server k then leaves node k behind, and no other.
 */
static void
s_own_servers(ph_nodes_t *nodes)
{
    for (int i = 0; i < nodes->n; i++) {
        snprintf(nodes->backbone[i], sizeof(nodes->backbone[i]), "%s",
                 s_nats.node[i].url);
        assert_int_equal(ph_daemon_stop(&nodes->d[i]), 0);
        assert_int_equal(ph_nodes_restart(nodes, i), 0);
    }
}

/*
 * Make nats-server k a follower of stream TLOG: while it leads, ask the
 * leader to step down. (Stopping the leader would hold every node up
 * until the next election, and subscribers would leave them all.)
 */
static void
s_not_leader(int k)
{
    int64_t until = parley__mono_ms() + S_WAIT_MS;
    int leader;
    while ((leader = ph_nats_stream_leader(&s_nats, "TLOG", 10000)) == k) {
        int64_t t0 = parley__mono_ms();
        natsConnection *nc = NULL;
        natsMsg *reply = NULL;
        assert_int_equal(natsConnection_ConnectTo(&nc, s_nats.urls), NATS_OK);
        (void)natsConnection_RequestString(
            &reply, nc, "$JS.API.STREAM.LEADER.STEPDOWN.TLOG", "", 5000);
        natsMsg_Destroy(reply);
        natsConnection_Destroy(nc);
        int who;
        while ((who = ph_nats_stream_leader(&s_nats, "TLOG", 10000)) == k
               && parley__mono_ms() < until)
            s_sleep_ms(100);
        fprintf(stderr, "[test] %s stepped down: %s leads TLOG %lld ms "
                        "later\n",
                s_nats.node[k].name,
                who >= 0 ? s_nats.node[who].name : "no server",
                (long long)(parley__mono_ms() - t0));
        if (parley__mono_ms() > until)
            fail_msg("%s stays the leader of TLOG", s_nats.node[k].name);
    }
    assert_true(leader >= 0);
}

/*
 * Kill nats-server k, the only server of parleyd node k (after
 * s_own_servers()), once it leads nothing, and wait until the feed has
 * gone on without that node: it is behind from then on, and says so.
 *
 * Killed and restarted (s_lag_end()), not SIGSTOPped and continued: the
 * Raft of nats-server 2.9.10 has no pre-vote. A follower's election
 * timer runs out while it is stopped, so at SIGCONT it stands for
 * election at once, with a term above the leader's: the leader steps
 * down on seeing it, every member restarts its election timer (4 to 9
 * s, raft.go's minElectionTimeout and maxElectionTimeout), and the
 * candidate is refused (its log ends before theirs). In three runs
 * with the servers' debug logs ("Stepping down from candidate, detected
 * higher term", voteResponse granted:false) the stream had no leader
 * for 11.0 s and 11.3 s after the two SIGCONTs of one run, none in the
 * next, 4.4 s and none in the third (docs/cluster.md); earlier runs saw
 * 5-22 s. With no leader no node can confirm records,
 * so a node that lags cannot catch up, and a subscriber left on it gets
 * no fresh checkpoint it trusts, against max_staleness 20 s. A
 * restarted server starts its timer afresh and hears the leader within
 * a heartbeat (1 s), before it could stand.
 */
static void
s_lag_begin(int k, s_pubber_t *p)
{
    s_not_leader(k);
    assert_int_equal(ph_nats_kill9(&s_nats, k), 0);
    int64_t t0 = parley__mono_ms();
    uint64_t acked = atomic_load(&p->acked);
    s_wait_acked(p, acked + 1);
    int64_t first = parley__mono_ms() - t0;
    s_wait_acked(p, acked + 50);
    fprintf(stderr, "[test] %s killed: parleyd p%d lags (the feed's next "
                    "ack came %lld ms after the kill)\n",
            s_nats.node[k].name, k + 1, (long long)first);
}

/* Restart nats-server k (s_lag_begin()); the stream keeps its leader. */
static void
s_lag_end(int k, s_pubber_t *p)
{
    assert_int_equal(ph_nats_restart(&s_nats, k), 0);
    int64_t t0 = parley__mono_ms();
    uint64_t acked = atomic_load(&p->acked);
    s_wait_acked(p, acked + 1);
    fprintf(stderr, "[test] %s restarted: the feed's next ack %lld ms "
                    "later\n",
            s_nats.node[k].name, (long long)(parley__mono_ms() - t0));
}

/*
 * Subscriber s on the first node of its list, as step 2 needs C on p3
 * when p3 is killed. Stopping n1 can hold p3 behind for seconds on a
 * loaded machine (JetStream had put p3's consumer, or its meta leader, on
 * n1), and a subscriber leaves a node that stays behind, by design, and
 * does not come back while the next one serves it. Then s is restarted
 * from its log state with the same list, as A is in step 3.
 */
static void
s_back_on_entry0(s_subber_t *s)
{
    int64_t until = parley__mono_ms() + 10000;
    while (atomic_load(&s->on) != 0 && parley__mono_ms() < until) {
        if (s->err != 0 || atomic_load(&s->alarms) != 0)
            fail_msg("%s, waiting to be on its first node: error %s, "
                     "alarm %s",
                     s->name, parley_error_name(s->err), s->first_alarm);
        s_sleep_ms(20);
    }
    if (atomic_load(&s->on) == 0)
        return;
    s_sub_join(s);
    assert_int_equal(s->err, 0);
    assert_int_equal(atomic_load(&s->alarms), 0);
    assert_false(s->disorder);
    assert_false(s->shrank);
    uint64_t last = atomic_load(&s->last), verified = atomic_load(&s->verified);
    uint64_t since = (verified < last ? verified : last) + 1;
    fprintf(stderr, "[test] %s left its first node while it was behind; "
                    "restarted from its log state at seq %" PRIu64 "\n",
            s->name, since);
    s->since = since;
    atomic_store(&s->last, 0);
    atomic_store(&s->verified, 0);
    atomic_store(&s->deliveries, 0);
    atomic_store(&s->connected, 0u);
    atomic_store(&s->behind, 0);
    s->disconnects = 0;
    memset(&s->counts, 0, sizeof(s->counts));
    s_sub_start(s);
    s_wait_sub(s, s_now_on_entry0, 0, "being on its first node");
}

/* Node d's head (it must answer a ping). */
static uint64_t
s_head(const ph_daemon_t *d)
{
    parley_call_options_t o = ph_call_options(d->api, 5000);
    parley_info_t *info = NULL;
    int rc = parley_ping(&o, &info);
    if (rc != 0)
        fail_msg("%s does not answer a ping: %s", d->api, parley_error_name(rc));
    uint64_t head = parley_info_seq(info);
    parley_info_destroy(&info);
    return head;
}

/* Node d lags: its head is below the highest seq acked (it says how far,
 * and whether it knows it is catching up). */
static void
s_check_lag(const char *name, const ph_daemon_t *d, const s_pubber_t *p)
{
    parley_call_options_t o = ph_call_options(d->api, 5000);
    parley_info_t *info = NULL;
    int rc = parley_ping(&o, &info);
    if (rc != 0)
        fail_msg("%s does not answer a ping: %s", name, parley_error_name(rc));
    uint64_t head = parley_info_seq(info), acked = atomic_load(&p->max_seq);
    fprintf(stderr, "[test] %s lags: head %" PRIu64 ", highest acked %" PRIu64
                    ", catching up %d, health %s\n",
            name, head, acked, parley_info_catching_up(info),
            parley_info_health(info));
    parley_info_destroy(&info);
    assert_true(head < acked);
}

/* ------------------------------------------------------ negative controls */

/* A fourth node on the same stream, signing with another key: a
 * subscriber there rejects its checkpoints and trusts none. */
static void
s_control_other_key(const char *dir)
{
    char ndir[PH_PATH_MAX], conf[PH_PATH_MAX];
    ph_daemon_t *d = &s_ctl[0];
    assert_int_equal(ph_path(ndir, sizeof(ndir), dir, "p4-otherkey"), 0);
    assert_int_equal(mkdir(ndir, 0700), 0);
    assert_int_equal(ph_path(conf, sizeof(conf), ndir, "parleyd.conf"), 0);
    s_write_conf(conf, "TLOG", s_other_log.path, false);
    const char *extra[] = { "-c", conf, "--backbone", s_nats.urls, NULL };
    assert_int_equal(ph_daemon_start(d, ndir, s_ring, extra), 0);
    s_subber_t s;
    memset(&s, 0, sizeof(s));
    s.name = "control (node with another log key)";
    s.since = 1;
    snprintf(s.servers, sizeof(s.servers), "%s", d->api);
    assert_int_equal(ph_path(s.state, sizeof(s.state), dir, "control1.state"),
                     0);
    s_sub_start(&s);
    int64_t until = parley__mono_ms() + S_WAIT_MS;
    while (atomic_load(&s.rejected_cp) < 2 && parley__mono_ms() < until
           && s.err == 0)
        s_sleep_ms(20);
    s_sub_join(&s);
    assert_int_equal(s.err, 0);
    if (atomic_load(&s.rejected_cp) < 2)
        fail_msg("the node with another log key: %d checkpoints rejected",
                 (int)atomic_load(&s.rejected_cp));
    assert_int_equal(atomic_load(&s.verified), 0);
    assert_int_equal(atomic_load(&s.inconsistent), 0);
    assert_int_equal(s.counts.chains, 0);
    assert_non_null(strstr(s.first_alarm, "REJECTED seq 0"));
    fprintf(stderr, "[test] control: the node with another log key: %d "
                    "checkpoints rejected, none trusted\n",
            (int)atomic_load(&s.rejected_cp));
    ph_daemon_teardown(d, true);
}

/* A single daemon with the cluster's log key and origin and another
 * history, longer than what state_from holds: a subscriber started from a
 * copy of that state file raises LOG_INCONSISTENT. */
static void
s_control_fork(const char *dir, const char *state_from)
{
    parley_checkpoint_t *saved = NULL;
    assert_int_equal(parley_checkpoint_load(s_sub_ring, state_from, &saved, NULL, 0),
                     0);
    uint64_t size = parley_checkpoint_size(saved);
    parley_checkpoint_destroy(&saved);

    char ndir[PH_PATH_MAX], conf[PH_PATH_MAX], state[PH_PATH_MAX];
    ph_daemon_t *d = &s_ctl[1];
    assert_int_equal(ph_path(ndir, sizeof(ndir), dir, "fork"), 0);
    assert_int_equal(mkdir(ndir, 0700), 0);
    assert_int_equal(ph_path(conf, sizeof(conf), ndir, "parleyd.conf"), 0);
    s_write_conf(conf, NULL, s_log.path, false);
    const char *extra[] = { "-c", conf, NULL };
    assert_int_equal(ph_daemon_start(d, ndir, s_ring, extra), 0);
    /* Another history, a few records longer than the saved checkpoint. */
    parley_pub_t *pub = ph_pub_new(d->api, s_signer.key, NULL, 20000);
    assert_non_null(pub);
    uint64_t n = size + 5, sent = 0, got = 0;
    while (got < n) {
        while (sent < n && sent - got < 256) {
            parley_update_t u;
            uint8_t env[PARLEY_ENVELOPE_MAX];
            size_t len;
            char headline[64];
            snprintf(headline, sizeof(headline), "forked %" PRIu64, sent);
            ph_update_init(&u, "gaza-ceasefire", "egypt", 1, headline);
            assert_int_equal(ph_sign(&s_signer, &u, env, sizeof(env), &len), 0);
            assert_int_equal(parley_pub_send(pub, env, len, NULL), 0);
            sent++;
        }
        uint64_t seq = 0;
        int rc = ph_recv(pub, 20000, NULL, &seq, NULL);
        if (rc != 0)
            fail_msg("publish to the fork: %s", parley_error_name(rc));
        got++;
    }
    parley_pub_destroy(&pub);

    assert_int_equal(ph_path(state, sizeof(state), dir, "control2.state"), 0);
    size_t len = 0;
    char *copy = ph_file_read(state_from, &len);
    assert_non_null(copy);
    assert_int_equal(ph_file_write(state, copy, len, 0600), 0);
    free(copy);
    s_subber_t s;
    memset(&s, 0, sizeof(s));
    s.name = "control (a fork under the log key)";
    s.since = 1;
    s.no_witness = true; /* the witness would not cosign it */
    snprintf(s.servers, sizeof(s.servers), "%s", d->api);
    snprintf(s.state, sizeof(s.state), "%s", state);
    s_sub_start(&s);
    int64_t until = parley__mono_ms() + S_WAIT_MS;
    while (atomic_load(&s.inconsistent) == 0 && parley__mono_ms() < until
           && s.err == 0)
        s_sleep_ms(20);
    s_sub_join(&s);
    assert_int_equal(s.err, 0);
    if (atomic_load(&s.inconsistent) == 0)
        fail_msg("the fork of %" PRIu64 " records raised no LOG_INCONSISTENT",
                 n);
    assert_non_null(strstr(s.first_alarm, "\nkind consistency\n"));
    fprintf(stderr, "[test] control: a fork of %" PRIu64 " records beside a "
                    "saved checkpoint of size %" PRIu64 ": LOG_INCONSISTENT\n",
            n, size);
    ph_daemon_teardown(d, true);
}

/* ------------------------------------------------------------ the test */

static void
test_failover(void **state)
{
    (void)state;
    char dir[PH_PATH_MAX], conf[PH_PATH_MAX];
    assert_int_equal(ph_path(dir, sizeof(dir), s_dir, "failover"), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(ph_path(conf, sizeof(conf), s_dir, "nodes.conf"), 0);
    s_write_conf(conf, "TLOG", s_log.path, true);
    size_t clen = 0;
    char *ctext = ph_file_read(conf, &clen);
    assert_non_null(ctext);
    assert_int_equal(ph_nats_wait_ready(&s_nats, 20000), 0);
    assert_int_equal(ph_nodes_start(&s_nodes, &s_nats, S_NODES, dir, s_ring,
                                    ctext),
                     0);
    free(ctext);
    s_own_servers(&s_nodes);

    /* The feed, mostly through p2. */
    s_pubber_t *pub = &s_pub;
    s_list(&s_nodes, 1, 2, 0, pub->servers, sizeof(pub->servers));
    assert_int_equal(pthread_create(&pub->thr, NULL, s_pub_main, pub), 0);
    s_pub_started = true;

    /* A: every record, p1 first; B: a filter, p1 first; C: every record,
     * p3 first, then p1 (it moves to p1 when p3 goes). */
    s_subber_t *subs = s_subs;
    const char *names[S_SUBS] = { "A (all/)", "B (egypt)", "C (all/)" };
    int order[S_SUBS][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 2, 0, 1 } };
    for (int i = 0; i < S_SUBS; i++) {
        subs[i].name = names[i];
        subs[i].party = i == 1 ? "egypt" : NULL;
        subs[i].no_witness = i == 2;
        subs[i].since = 1;
        char file[32];
        snprintf(file, sizeof(file), "sub%d.state", i + 1);
        assert_int_equal(ph_path(subs[i].state, sizeof(subs[i].state), dir,
                                 file),
                         0);
        s_list(&s_nodes, order[i][0], order[i][1], order[i][2],
               subs[i].servers, sizeof(subs[i].servers));
        s_sub_start(&subs[i]);
    }
    s_wait_acked(pub, 50);
    for (int i = 0; i < S_SUBS; i++)
        s_wait_sub(&subs[i], s_verified_at, 20, "a first LOG_VERIFIED");

    /* 1. kill -9 p1, where A and B are: they move on and go on verifying
     *    on other nodes. */
    uint64_t at = atomic_load(&pub->max_seq), acked = atomic_load(&pub->acked);
    fprintf(stderr, "[test] kill -9 parleyd p1 at seq %" PRIu64 "\n", at);
    ph_daemon_kill9(&s_nodes.d[0]);
    for (int i = 0; i < 2; i++)
        s_wait_sub(&subs[i], s_left_entry0, at + 20,
                   "a fail-over and LOG_VERIFIED beyond the kill");
    s_wait_acked(pub, acked + S_LAG_UPDATES);

    /* 2. p1 back, on one server only, n1; once it has caught up, n1 is
     *    stopped: p1 stays behind while the feed goes on (p2 and p3 follow
     *    n2 and n3). Then p3, where C is, is killed: C moves to p1, the
     *    next node of its list, which lags. */
    fprintf(stderr, "[test] restart parleyd p1\n");
    assert_int_equal(ph_nodes_restart(&s_nodes, 0), 0);
    assert_int_equal(ph_nodes_wait_head(&s_nodes, atomic_load(&pub->max_seq),
                                        S_WAIT_MS),
                     0);
    s_lag_begin(0, pub);
    /* C trusts a checkpoint beyond p1's head before it goes there. */
    s_wait_sub(&subs[2], s_verified_at, s_head(&s_nodes.d[0]) + 1,
               "LOG_VERIFIED beyond the lagging node's head");
    s_back_on_entry0(&subs[2]);
    atomic_store(&subs[2].connected, 0u);
    at = atomic_load(&pub->max_seq);
    fprintf(stderr, "[test] kill -9 parleyd p3 at seq %" PRIu64 "\n", at);
    ph_daemon_kill9(&s_nodes.d[2]);
    s_wait_sub(&subs[2], s_on_entry1, 0, "a connection to p1");
    s_check_lag("p1", &s_nodes.d[0], pub);
    s_wait_sub(&subs[2], s_saw_behind, 1, "a checkpoint of p1's, behind");
    s_wait_sub(&subs[2], s_left_entry0, at + 20,
               "LOG_VERIFIED beyond the kill");
    s_lag_end(0, pub);

    /* 3. p3 back the same way, on n3 alone, then behind; A restarts from
     *    its log state file (a checkpoint p2 signed) with a list that
     *    starts at p3. */
    fprintf(stderr, "[test] restart parleyd p3\n");
    assert_int_equal(ph_nodes_restart(&s_nodes, 2), 0);
    assert_int_equal(ph_nodes_wait_head(&s_nodes, atomic_load(&pub->max_seq),
                                        S_WAIT_MS),
                     0);
    s_lag_begin(2, pub);
    s_wait_sub(&subs[0], s_verified_at, s_head(&s_nodes.d[2]) + 1,
               "LOG_VERIFIED beyond the lagging node's head");
    /* What A handed out beyond what it had proven, A' is handed again. */
    s_sub_join(&subs[0]);
    s_sub_check_honest(&subs[0], 0, false);
    s_subber_t *a2 = &s_subs[S_SUBS];
    a2->name = "A' (all/, restarted from its log state)";
    /* It goes on after what it handed out and had proven. */
    uint64_t a_last = atomic_load(&subs[0].last);
    uint64_t a_verified = atomic_load(&subs[0].verified);
    a2->since = (a_verified < a_last ? a_verified : a_last) + 1;
    memcpy(a2->state, subs[0].state, sizeof(a2->state));
    s_list(&s_nodes, 2, 0, 1, a2->servers, sizeof(a2->servers));
    fprintf(stderr, "[test] A restarts from seq %" PRIu64 " with its log "
                    "state\n",
            a2->since);
    s_sub_start(a2);
    s_wait_sub(a2, s_on_entry0, 0, "a connection to p3");
    s_check_lag("p3", &s_nodes.d[2], pub);
    s_lag_end(2, pub);
    s_wait_acked(pub, atomic_load(&pub->acked) + 100);

    /* The end: the feed stops; every node and every subscriber reaches
     * the head, all of it verified. */
    atomic_store(&pub->stop, true);
    pthread_join(pub->thr, NULL);
    s_pub_started = false;
    fprintf(stderr, "[test] the feed: %zu sent, %" PRIu64 " acked, %zu "
                    "errors%s%s\n",
            pub->sent, (uint64_t)atomic_load(&pub->acked), pub->errors,
            pub->errors > 0 ? ", the last: " : "", pub->last_error);
    uint64_t head = atomic_load(&pub->max_seq);
    assert_int_equal(ph_nodes_wait_head(&s_nodes, head, S_WAIT_MS), 0);
    head = s_stat(&s_nodes.d[0], "seq");
    s_subber_t *live[S_SUBS] = { a2, &subs[1], &subs[2] };
    for (int i = 0; i < S_SUBS; i++)
        s_wait_sub(live[i], s_done_at, head, "the head, verified");
    for (int i = 0; i < S_SUBS; i++)
        s_sub_join(live[i]);
    for (int i = 0; i < S_SUBS; i++)
        s_sub_check_honest(live[i], head, true);
    fprintf(stderr, "[test] no alarm; every subscriber verified through seq "
                    "%" PRIu64 " across the nodes\n",
            head);

    /* The controls. */
    s_control_other_key(dir);
    s_control_fork(dir, a2->state);
    s_ok = true;
}

/* Stop what the test started (with the logs, if it failed). */
static int
s_test_down(void **state)
{
    (void)state;
    if (s_pub_started) {
        atomic_store(&s_pub.stop, true);
        pthread_join(s_pub.thr, NULL);
    }
    for (int i = 0; i <= S_SUBS; i++)
        if (s_subs[i].started) {
            atomic_store(&s_subs[i].stop, true);
            pthread_join(s_subs[i].thr, NULL);
        }
    for (int i = 0; i < PH_NATS_MAX; i++)
        if (s_nats.node[i].stopped)
            (void)ph_nats_sigcont(&s_nats, i);
    ph_nodes_stop(&s_nodes, s_ok);
    for (int i = 0; i < 2; i++)
        if (s_ctl[i].pid > 0 || s_ctl[i].log_path[0] != '\0')
            ph_daemon_teardown(&s_ctl[i], s_ok);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_failover, s_test_down),
    };
    return cmocka_run_group_tests(tests, s_group_up, s_group_down);
}
