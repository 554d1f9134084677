/*
 * cluster.c - parley in cluster mode against its references, measured in
 * one run on one machine (issue 13, acceptance 5).
 *
 * Starts three nats-server processes (JetStream, R3, the tests' NATS
 * harness), three parleyd in cluster mode on them (fsync on), and one
 * embedded parleyd (fsync on), then measures:
 *
 *   1. references: the CPU of one raw Ed25519 verify of a typical update
 *      (libsodium, in this process), and the CPU the three servers spend
 *      on one raw nats.c R3 async publish of a message of the same size
 *      (without and with a Nats-Msg-Id);
 *   2. throughput: publishers with pipelined windows, spread over the
 *      three nodes, as fast as they go: acked updates per second, and the
 *      CPU per acked update summed over every parleyd and nats-server
 *      (utime + stime from /proc, until every node has applied every
 *      update) against the sum of its unavoidable parts (one verify per
 *      node + the raw R3 message): goal <= 1.25; the same publishers
 *      against the embedded daemon for acked/s;
 *   3. latency: paced publishes through one node, delivered by a
 *      subscriber on another: publish -> delivery p50 and p99, against
 *      the embedded daemon (publish and delivery on the one node);
 *   4. fan-out: 100 subscribers on each of the three edges against 100 on
 *      the embedded daemon, publishers as fast as they go: deliveries per
 *      second summed over every subscriber;
 *   5. fail-over: a subscriber with an endpoint list on node k, updates
 *      published through another node every 10 ms; kill -9 of node k:
 *      the time from the kill to the delivery of the first update
 *      published after it (from another node), over rounds,
 *      against 2 heartbeat intervals + a fresh subscriber's connect time
 *      measured in the same run.
 *
 * Not part of `make test`; `make bench` runs it (bench/run.sh). On this
 * kind of machine (2 cores for 3 servers, 4 parleyd and the clients) the
 * absolute figures say more about the machine than about parley; the
 * ratios are what the goals are about.
 */
#include "bench.h"
#include "nats_harness.h"
#include "sign.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define S_NODES 3
#define S_PUBS 96          /* publishers (one key each) in the throughput */
#define S_WINDOW 4       /* updates in flight per publisher */
#define S_FANOUT_SUBS 100 /* subscribers per edge */
#define S_RAW_WINDOW 1024

typedef struct {
    char dir[BENCH_PATH_MAX];
    ph_nats_cluster_t nats;
    bench_daemon_t node[S_NODES];
    char backbone[S_NODES][PH_NATS_MAX * (PH_NATS_URL_MAX + 1)];
    bench_daemon_t embedded;
    bench_key_t keys[S_PUBS];
    const char *parleyd;
    uint64_t next_sseq;   /* signer_seqs handed out so far, per key */
} s_world_t;

/* ------------------------------------------------------------ setup */

static int
s_node_dir(const s_world_t *w, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", w->dir, name);
    if (mkdir(out, 0700) != 0 && errno != EEXIST)
        return -errno;
    char ring[BENCH_PATH_MAX + 16];
    snprintf(ring, sizeof(ring), "%s/keyring", out);
    return bench_keyring_write(ring, w->keys, S_PUBS);
}

/* Start cluster node i (again: same directory, new ports). */
static int
s_node_start(s_world_t *w, int i)
{
    char dir[BENCH_PATH_MAX + 16], name[16], extra[1024];
    snprintf(name, sizeof(name), "p%d", i + 1);
    int rc = s_node_dir(w, name, dir, sizeof(dir));
    if (rc < 0)
        return rc;
    snprintf(extra, sizeof(extra),
             "backbone %s\nbackbone_stream BENCH\nbackbone_replicas 3\n",
             w->backbone[i]);
    return bench_daemon_start_conf(&w->node[i], w->parleyd, dir, true, extra,
                                   30000);
}

static int
s_world_up(s_world_t *w)
{
    int rc = bench_keys_make(w->keys, S_PUBS);
    if (rc < 0)
        return rc;
    char nats_dir[BENCH_PATH_MAX + 16];
    snprintf(nats_dir, sizeof(nats_dir), "%s/nats", w->dir);
    if (mkdir(nats_dir, 0700) != 0)
        return -errno;
    ph_nats_opts_t no = { .nodes = S_NODES, .dir = nats_dir };
    if ((rc = ph_nats_start(&w->nats, &no)) < 0)
        return rc;
    for (int i = 0; i < S_NODES; i++) {
        size_t used = 0;
        for (int k = 0; k < S_NODES; k++)
            used += (size_t)snprintf(w->backbone[i] + used,
                                     sizeof(w->backbone[i]) - used, "%s%s",
                                     k > 0 ? "," : "",
                                     w->nats.node[(i + k) % S_NODES].url);
        if ((rc = s_node_start(w, i)) < 0)
            return rc;
    }
    char dir[BENCH_PATH_MAX + 16];
    if ((rc = s_node_dir(w, "embedded", dir, sizeof(dir))) < 0)
        return rc;
    return bench_daemon_start(&w->embedded, w->parleyd, dir, true, 30000);
}

static void
s_world_down(s_world_t *w)
{
    for (int i = 0; i < S_NODES; i++)
        bench_daemon_stop(&w->node[i]);
    bench_daemon_stop(&w->embedded);
    ph_nats_stop(&w->nats, false);
    bench_keys_free(w->keys, S_PUBS);
}

/* CPU seconds of every parleyd of the cluster and of every server. */
static void
s_cpu(const s_world_t *w, double *parleyd, double *servers)
{
    *parleyd = *servers = 0;
    for (int i = 0; i < S_NODES; i++) {
        *parleyd += bench_proc_cpu(w->node[i].pid);
        *servers += bench_proc_cpu(w->nats.node[i].pid);
    }
}

/* Wait until every node has applied seq head. */
static int
s_wait_applied(const s_world_t *w, uint64_t head, int timeout_ms)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        bool all = true;
        for (int i = 0; i < S_NODES && all; i++)
            all = bench_daemon_stat(&w->node[i], "seq", NULL) >= head;
        if (all)
            return 0;
        if (bench_now_ns() > deadline)
            return -ETIMEDOUT;
        bench_sleep_ns(20000000);
    }
}

/* ------------------------------------------------------- 1. references */

/* CPU microseconds of one raw verify of a typical update's signature. */
static double
s_verify_us(const bench_key_t *k, size_t n)
{
    parley_update_t u;
    uint8_t env[BENCH_ENV_SLOT];
    size_t len = 0;
    bench_update_fill(&u, 1, 1, parley_now_ms());
    if (parley_sign(k->key, &u, env, sizeof(env), &len) != 0)
        return 0;
    parley__verify_t *v = malloc(sizeof(*v));
    if (v == NULL || parley__verify_prepare(v, NULL, env, len) != 0) {
        free(v);
        return 0;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += parley__verify_signature(v) != 0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    parley__verify_end(v);
    free(v);
    if (bad > 0)
        return 0;
    return ((double)(b.tv_sec - a.tv_sec) * 1e9
            + (double)(b.tv_nsec - a.tv_nsec))
           / (double)n / 1e3;
}

static atomic_uint_fast64_t s_raw_errors;

static void
s_on_raw_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)closure;
    if (atomic_fetch_add(&s_raw_errors, 1) == 0)
        fprintf(stderr, "raw publish: %s (%d)\n",
                pae->ErrText != NULL ? pae->ErrText : "error",
                (int)pae->ErrCode);
}

/* CPU microseconds of the three servers per raw R3 async publish of len
 * bytes (with a unique msg id if with_id); 0 on failure (said). */
static double
s_raw_server_us(s_world_t *w, jsCtx *js, size_t n, size_t len, bool with_id,
                double *rate)
{
    static char payload[BENCH_ENV_SLOT];
    static int run; /* msg ids differ from run to run: none a duplicate */
    run++;
    memset(payload, 'r', sizeof(payload));
    double p0, s0, p1, s1;
    s_cpu(w, &p0, &s0);
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        char id[48];
        snprintf(id, sizeof(id), "raw-%d-%zu", run, i);
        if (with_id)
            po.MsgId = id;
        if (js_PublishAsync(js, "rawref.x", payload, (int)len,
                            with_id ? &po : NULL)
            != NATS_OK)
            return 0;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK
        || atomic_load(&s_raw_errors) > 0)
        return 0;
    *rate = (double)n / bench_secs(t0, bench_now_ns());
    s_cpu(w, &p1, &s1);
    return (s1 - s0) / (double)n * 1e6;
}

static atomic_uint_fast64_t s_raw_delivered;

static void
s_on_raw_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
             void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    atomic_fetch_add(&s_raw_delivered, 1);
    natsMsg_Destroy(msg);
}

/* As s_raw_server_us() with a msg id, while n_cons ordered consumers (one
 * connection each, as each parleyd has) read the stream from the start
 * of this run: the servers' part of what the cluster needs per update.
 * 0 on failure. */
static double
s_raw_consumers_us(s_world_t *w, jsCtx *js, size_t n, size_t len,
                   int n_cons, double *rate)
{
    natsConnection *cnc[S_NODES] = { 0 };
    jsCtx *cjs[S_NODES] = { 0 };
    natsSubscription *sub[S_NODES] = { 0 };
    double us = 0;
    atomic_store(&s_raw_delivered, 0);
    jsStreamInfo *si = NULL;
    uint64_t from = 1;
    if (js_GetStreamInfo(&si, js, "RAWREF", NULL, NULL) == NATS_OK) {
        from = si->State.LastSeq + 1;
        jsStreamInfo_Destroy(si);
    }
    int ok = 0;
    natsStatus st = NATS_OK;
    for (int i = 0; i < n_cons && i < S_NODES; i++) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = "RAWREF";
        so.Ordered = true;
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = from;
        so.Config.Heartbeat = 1000000000;
        if ((st = natsConnection_ConnectTo(&cnc[i], w->nats.node[i].url))
                != NATS_OK
            || (st = natsConnection_JetStream(&cjs[i], cnc[i], NULL))
                   != NATS_OK
            || (st = js_Subscribe(&sub[i], cjs[i], "rawref.>", s_on_raw_msg,
                                  NULL, NULL, &so, NULL))
                   != NATS_OK)
            break;
        natsSubscription_SetPendingLimits(sub[i], -1, -1);
        ok++;
    }
    if (ok < n_cons)
        fprintf(stderr, "raw consumers: %s\n",
                nats_GetLastError(&st) != NULL ? nats_GetLastError(&st)
                                               : natsStatus_GetText(st));
    double p0, s0, p1, s1;
    s_cpu(w, &p0, &s0);
    double r = 0;
    if (ok == n_cons
        && s_raw_server_us(w, js, n, len, true, &r) > 0) {
        uint64_t deadline = bench_now_ns() + 60000000000ull;
        while (atomic_load(&s_raw_delivered) < (uint64_t)n_cons * n
               && bench_now_ns() < deadline)
            bench_sleep_ns(5000000);
        if (atomic_load(&s_raw_delivered) >= (uint64_t)n_cons * n) {
            s_cpu(w, &p1, &s1);
            us = (s1 - s0) / (double)n * 1e6;
            *rate = r;
        } else {
            fprintf(stderr, "raw consumers: %" PRIu64 " of %zu delivered\n",
                    (uint64_t)atomic_load(&s_raw_delivered),
                    (size_t)n_cons * n);
        }
    } else if (ok == n_cons) {
        fprintf(stderr, "raw consumers: the publishes failed\n");
    }
    for (int i = 0; i < S_NODES; i++) {
        natsSubscription_Destroy(sub[i]);
        jsCtx_Destroy(cjs[i]);
        natsConnection_Destroy(cnc[i]);
    }
    return us;
}

/* ------------------------------------------------------- 2. throughput */

/* The nodes' stats that split cluster_unavailable by cause. */
static const char *const s_ua_stats[] = {
    "cluster_unavailable_refused",   "cluster_unavailable_timeout",
    "cluster_unavailable_jetstream", "cluster_unavailable_unapplied",
    "cluster_unavailable_conflicts", "cluster_unavailable_mismatch",
    "rejected_unavailable",
};
#define S_UA_N (sizeof(s_ua_stats) / sizeof(s_ua_stats[0]))
#define S_TASKS_MAX 256 /* threads of one parleyd, read at once */
#define S_GROUPS_MAX 16 /* thread names told apart */

/* The CPU of each thread of one process, as read at one time. */
typedef struct {
    int tid[S_TASKS_MAX];
    char name[S_TASKS_MAX][20];
    double secs[S_TASKS_MAX];
    int n;
} s_tasks_t;

/* CPU seconds by thread name, over the nodes. */
typedef struct {
    char name[S_GROUPS_MAX][20];
    double secs[S_GROUPS_MAX];
    int n;
} s_groups_t;

static void
s_task_add(void *ctx, bool main_thread, const char *comm, double secs,
           int tid)
{
    s_tasks_t *t = ctx;
    if (t->n == S_TASKS_MAX)
        return;
    t->tid[t->n] = tid;
    /* parleyd's loop; threads nobody named keep the process's name. */
    snprintf(t->name[t->n], sizeof(t->name[0]), "%s",
             main_thread ? "loop" : comm);
    t->secs[t->n++] = secs;
}

/* Add what each thread of `after` used since `before` (all of it for a
 * thread started since) to g, by name. */
static void
s_groups_add(s_groups_t *g, const s_tasks_t *before, const s_tasks_t *after)
{
    for (int i = 0; i < after->n; i++) {
        double d = after->secs[i];
        for (int j = 0; j < before->n; j++)
            if (before->tid[j] == after->tid[i])
                d -= before->secs[j];
        int k = 0;
        while (k < g->n && strcmp(g->name[k], after->name[i]) != 0)
            k++;
        if (k == g->n) {
            if (g->n == S_GROUPS_MAX)
                k--; /* the last one takes the rest */
            else
                snprintf(g->name[g->n++], sizeof(g->name[0]), "%s",
                         after->name[i]);
        }
        g->secs[k] += d;
    }
}

/* Print g as us per update (n updates), the largest first. */
static void
s_groups_note(s_groups_t *g, uint64_t n)
{
    char line[1024];
    size_t used = 0;
    line[0] = '\0';
    if (n == 0)
        return;
    for (;;) {
        int best = -1;
        for (int k = 0; k < g->n; k++)
            if (g->secs[k] >= 0 && (best < 0 || g->secs[k] > g->secs[best]))
                best = k;
        if (best < 0 || used >= sizeof(line) - 1)
            break;
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s %.1f",
                                 used > 0 ? ", " : "", g->name[best],
                                 g->secs[best] / (double)n * 1e6);
        g->secs[best] = -1;
    }
    bench_note("per thread of the 3 parleyd, us per acked update (unnamed "
               "threads under the process's name: nats.c's reader and "
               "flusher, the verify pool): %s",
               line);
}

typedef struct {
    double acked_per_s;
    uint64_t acked, rejected;
    int first_error;
    double cpu_parleyd, cpu_servers; /* seconds (cluster only) */
    uint64_t syncs, synced;          /* fdatasyncs and records, p1..p3 */
    uint64_t ua[S_UA_N];             /* unavailable by cause, p1..p3 */
    s_groups_t threads;              /* the parleyd's CPU by thread */
} s_tput_t;

/* Add each node's unavailable-by-cause stats times sign to ua. */
static void
s_ua_add(const s_world_t *w, uint64_t ua[S_UA_N], int sign)
{
    for (int i = 0; i < S_NODES; i++)
        for (size_t k = 0; k < S_UA_N; k++)
            ua[k] += (uint64_t)sign
                     * bench_daemon_stat(&w->node[i], s_ua_stats[k], NULL);
}

/* Sign n updates per key with fresh signer_seqs. */
static int
s_sign_all(s_world_t *w, bench_envs_t *envs, size_t n)
{
    uint64_t first = w->next_sseq + 1;
    w->next_sseq += n;
    for (int i = 0; i < S_PUBS; i++) {
        int rc = bench_envs_sign(&envs[i], w->keys[i].key, n, first,
                                 bench_cpus());
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Publish envs through apis[i % n_apis] with S_PUBS publishers. */
static s_tput_t
s_tput_run(s_world_t *w, bench_envs_t *envs, const char *const *apis,
           size_t n_apis, bool cluster)
{
    s_tput_t r = { 0 };
    atomic_int stop = 0;
    bench_pubber_t p[S_PUBS];
    pthread_t tid[S_PUBS];
    double p0 = 0, s0 = 0, p1 = 0, s1 = 0;
    uint64_t head0 = cluster ? bench_daemon_stat(&w->node[0], "seq", NULL)
                             : 0;
    uint64_t sy0 = 0, sd0 = 0;
    for (int i = 0; cluster && i < S_NODES; i++) {
        sy0 += bench_daemon_stat(&w->node[i], "store_syncs", NULL);
        sd0 += bench_daemon_stat(&w->node[i], "store_records_synced", NULL);
    }
    static s_tasks_t tasks0[S_NODES], tasks1;
    for (int i = 0; cluster && i < S_NODES; i++) {
        tasks0[i].n = 0;
        bench_tasks_cpu(w->node[i].pid, s_task_add, &tasks0[i]);
    }
    if (cluster) {
        s_ua_add(w, r.ua, -1);
        s_cpu(w, &p0, &s0);
    }
    uint64_t t0 = bench_now_ns(), t1 = t0;
    for (int i = 0; i < S_PUBS; i++) {
        p[i] = (bench_pubber_t){ .api = apis[(size_t)i % n_apis],
                                 .key = w->keys[i].key,
                                 .envs = &envs[i],
                                 .window = S_WINDOW,
                                 .stop = &stop };
        pthread_create(&tid[i], NULL, bench_pubber_run, &p[i]);
    }
    for (int i = 0; i < S_PUBS; i++) {
        pthread_join(tid[i], NULL);
        r.acked += atomic_load(&p[i].acked);
        r.rejected += p[i].rejected;
        if (r.first_error == 0)
            r.first_error = p[i].first_error;
        if (p[i].done_ns > t1)
            t1 = p[i].done_ns;
    }
    r.acked_per_s = (double)r.acked / bench_secs(t0, t1);
    if (cluster) {
        /* The CPU of an update includes its apply on every node. */
        (void)s_wait_applied(w, head0 + r.acked, 60000);
        s_cpu(w, &p1, &s1);
        r.cpu_parleyd = p1 - p0;
        r.cpu_servers = s1 - s0;
        for (int i = 0; i < S_NODES; i++) {
            tasks1.n = 0;
            bench_tasks_cpu(w->node[i].pid, s_task_add, &tasks1);
            s_groups_add(&r.threads, &tasks0[i], &tasks1);
        }
        for (int i = 0; i < S_NODES; i++) {
            r.syncs += bench_daemon_stat(&w->node[i], "store_syncs", NULL);
            r.synced += bench_daemon_stat(&w->node[i], "store_records_synced",
                                          NULL);
        }
        r.syncs -= sy0;
        r.synced -= sd0;
        s_ua_add(w, r.ua, 1);
    }
    return r;
}

/* Take whatever answers have come (their content is not needed here). */
static void
s_drain_answers(parley_pub_t *pub, int timeout_ms)
{
    uint64_t rid, seq;
    while (parley_pub_recv(pub, timeout_ms, &rid, &seq) != -EAGAIN)
        timeout_ms = 0;
}

/* ---------------------------------------------------------- 3. latency */

typedef struct {
    const char *api;             /* subscriber's */
    uint64_t first_sseq, n;      /* signer_seqs it waits for */
    const uint64_t *sent_ns;     /* by signer_seq - first_sseq */
    uint64_t *lat_ns;            /* same index */
    atomic_uint_fast64_t got;
    atomic_int ready, stop;
} s_latsub_t;

static void *
s_latsub_run(void *arg)
{
    s_latsub_t *s = arg;
    parley_sub_t *sub = bench_sub_new(s->api, PARLEY_START_LIVE, 0);
    if (sub == NULL) {
        atomic_store(&s->ready, -1);
        return NULL;
    }
    atomic_store(&s->ready, 1);
    while (!atomic_load(&s->stop) && atomic_load(&s->got) < s->n) {
        const parley_event_t *ev = NULL;
        int rc = parley_sub_next(sub, 100, &ev);
        if (rc != 1 || parley_event_type(ev) != PARLEY_EVENT_DELIVERY)
            continue;
        uint64_t now = bench_now_ns();
        const parley_update_t *u =
            parley_delivery_update(parley_event_delivery(ev));
        uint64_t k = parley_update_signer_seq(u) - s->first_sseq;
        if (k < s->n && s->lat_ns[k] == 0 && s->sent_ns[k] != 0) {
            s->lat_ns[k] = now - s->sent_ns[k];
            atomic_fetch_add(&s->got, 1);
        }
    }
    parley_sub_destroy(&sub);
    return NULL;
}

/* Paced publishes (rate per second) through pub_api, delivered at
 * sub_api: p50 and p99 in us. */
static int
s_latency(s_world_t *w, const char *pub_api, const char *sub_api, size_t n,
          double rate, double *p50, double *p99)
{
    bench_envs_t e;
    uint64_t first = w->next_sseq + 1;
    w->next_sseq += n;
    int rc = bench_envs_sign(&e, w->keys[0].key, n, first, bench_cpus());
    if (rc < 0)
        return rc;
    uint64_t *sent = calloc(n, sizeof(*sent)), *lat = calloc(n, sizeof(*lat));
    s_latsub_t s = { .api = sub_api, .first_sseq = first, .n = n,
                     .sent_ns = sent, .lat_ns = lat };
    pthread_t tid;
    pthread_create(&tid, NULL, s_latsub_run, &s);
    while (atomic_load(&s.ready) == 0)
        bench_sleep_ns(1000000);
    parley_pub_t *pub = bench_pub_new(pub_api, w->keys[0].key);
    uint64_t gap = (uint64_t)(1e9 / rate), t0 = bench_now_ns();
    for (size_t i = 0; pub != NULL && i < n; i++) {
        uint64_t due = t0 + i * gap;
        while (bench_now_ns() < due) {
            s_drain_answers(pub, 0);
            bench_sleep_ns(100000);
        }
        sent[i] = bench_now_ns();
        uint64_t rid;
        if (parley_pub_send(pub, bench_env(&e, i), e.lens[i], &rid) < 0)
            break;
    }
    uint64_t deadline = bench_now_ns() + 20000000000ull;
    while (pub != NULL && atomic_load(&s.got) < n
           && bench_now_ns() < deadline)
        s_drain_answers(pub, 10);
    atomic_store(&s.stop, 1);
    pthread_join(tid, NULL);
    parley_pub_destroy(&pub);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (lat[i] != 0)
            lat[k++] = lat[i];
    rc = k == n ? 0 : -ETIMEDOUT;
    if (k > 0) {
        *p50 = (double)bench_percentile(lat, k, 50) / 1e3;
        *p99 = (double)bench_percentile(lat, k, 99) / 1e3;
    }
    if (k < n)
        fprintf(stderr, "latency: %zu of %zu delivered\n", k, n);
    free(sent);
    free(lat);
    bench_envs_free(&e);
    return rc;
}

/* ---------------------------------------------------------- 4. fan-out */

/* Deliveries per second over n_subs SUB sockets on each feed while the
 * publishers publish envs through the apis. */
static double
s_fanout(s_world_t *w, const char *const *feeds, const char *const *apis,
         size_t n_nodes, bench_envs_t *envs)
{
    size_t n = n_nodes * S_FANOUT_SUBS;
    void *ctx = zmq_ctx_new();
    void **socks = calloc(n, sizeof(*socks));
    bench_counter_t *c = bench_counters_new(n);
    atomic_int stop = 0;
    for (size_t i = 0; i < n; i++) {
        socks[i] = zmq_socket(ctx, ZMQ_SUB);
        int zero = 0, hwm = 100000;
        zmq_setsockopt(socks[i], ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(socks[i], ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(socks[i], ZMQ_SUBSCRIBE, "all/", 4);
        zmq_connect(socks[i], feeds[i / S_FANOUT_SUBS]);
    }
    bench_zworker_t wk[2] = {
        { .socks = socks, .counters = c, .n = n / 2, .stop = &stop },
        { .socks = socks + n / 2, .counters = c + n / 2, .n = n - n / 2,
          .stop = &stop },
    };
    pthread_t wt[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&wt[i], NULL, bench_zworker_run, &wk[i]);
    bench_sleep_ns(500000000); /* subscriptions reach the feeds */
    atomic_int pstop = 0;
    bench_pubber_t p[S_PUBS];
    pthread_t pt[S_PUBS];
    uint64_t t0 = bench_now_ns();
    uint64_t c0 = bench_counters_sum(c, n);
    for (int i = 0; i < S_PUBS; i++) {
        p[i] = (bench_pubber_t){ .api = apis[(size_t)i % n_nodes],
                                 .key = w->keys[i].key, .envs = &envs[i],
                                 .window = S_WINDOW, .stop = &pstop };
        pthread_create(&pt[i], NULL, bench_pubber_run, &p[i]);
    }
    uint64_t acked = 0;
    for (int i = 0; i < S_PUBS; i++) {
        pthread_join(pt[i], NULL);
        acked += atomic_load(&p[i].acked);
    }
    /* Until every subscriber has every delivery (or 30 s). */
    uint64_t deadline = bench_now_ns() + 30000000000ull;
    while (bench_counters_min(c, n) < c0 / n + acked
           && bench_now_ns() < deadline)
        bench_sleep_ns(5000000);
    uint64_t c1 = bench_counters_sum(c, n), t1 = bench_now_ns();
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(wt[i], NULL);
    for (size_t i = 0; i < n; i++)
        zmq_close(socks[i]);
    zmq_ctx_term(ctx);
    free(socks);
    free(c);
    return (double)(c1 - c0) / bench_secs(t0, t1);
}

/* --------------------------------------------------------- 5. fail-over */

typedef struct {
    char list[512];
    atomic_uint_fast64_t count;     /* deliveries */
    atomic_uint_fast64_t after;     /* signer_seq sent first after the
                                       kill, 0 before it */
    atomic_uint_fast64_t got_ns;    /* when that one or a later one came */
    atomic_int stop, ready;
} s_fosub_t;

static void *
s_fosub_run(void *arg)
{
    s_fosub_t *s = arg;
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.server = s->list;
    o.start = PARLEY_START_LIVE;
    parley_sub_t *sub = parley_sub_new(&o);
    if (sub == NULL) {
        atomic_store(&s->ready, -1);
        return NULL;
    }
    atomic_store(&s->ready, 1);
    while (!atomic_load(&s->stop)) {
        const parley_event_t *ev = NULL;
        if (parley_sub_next(sub, 50, &ev) == 1
            && parley_event_type(ev) == PARLEY_EVENT_DELIVERY) {
            uint64_t now = bench_now_ns();
            uint64_t sseq = parley_update_signer_seq(
                parley_delivery_update(parley_event_delivery(ev)));
            uint64_t after = atomic_load(&s->after);
            if (after != 0 && sseq >= after && atomic_load(&s->got_ns) == 0)
                atomic_store(&s->got_ns, now);
            atomic_fetch_add(&s->count, 1);
        }
    }
    parley_sub_destroy(&sub);
    return NULL;
}

/* One fail-over: ms from the kill -9 of node k to the delivery, at a
 * subscriber that was on it, of the first update published after the
 * kill (what was already in its socket's buffers does not count);
 * *connect_ms: how long its first connection took. */
static int
s_failover_round(s_world_t *w, int k, double *ms, double *connect_ms)
{
    s_fosub_t s = { 0 };
    size_t used = 0;
    for (int i = 0; i < S_NODES; i++)
        used += (size_t)snprintf(s.list + used, sizeof(s.list) - used, "%s%s",
                                 i > 0 ? "," : "",
                                 w->node[(k + i) % S_NODES].api);
    uint64_t c0 = bench_now_ns();
    pthread_t tid;
    pthread_create(&tid, NULL, s_fosub_run, &s);
    while (atomic_load(&s.ready) == 0)
        bench_sleep_ns(1000000);
    *connect_ms = (double)(bench_now_ns() - c0) / 1e6;
    /* Updates at 100/s through the next node. */
    bench_envs_t e;
    size_t n = 1000;
    uint64_t first = w->next_sseq + 1;
    w->next_sseq += n;
    int rc = bench_envs_sign(&e, w->keys[1].key, n, first, 1);
    parley_pub_t *pub = rc == 0 ? bench_pub_new(w->node[(k + 1) % S_NODES].api,
                                                w->keys[1].key)
                                : NULL;
    uint64_t kill_ns = 0;
    *ms = -1;
    for (size_t i = 0; pub != NULL && i < n; i++) {
        uint64_t rid;
        if (parley_pub_send(pub, bench_env(&e, i), e.lens[i], &rid) < 0)
            break;
        s_drain_answers(pub, 0);
        bench_sleep_ns(10000000);
        if (kill_ns == 0 && atomic_load(&s.count) >= 20) {
            kill(w->node[k].pid, SIGKILL);
            kill_ns = bench_now_ns();
            (void)bench_stop(w->node[k].pid); /* reap */
            w->node[k].pid = 0;
            atomic_store(&s.after, first + i + 1);
        } else if (kill_ns != 0 && atomic_load(&s.got_ns) != 0) {
            *ms = (double)(atomic_load(&s.got_ns) - kill_ns) / 1e6;
            break;
        }
    }
    atomic_store(&s.stop, 1);
    pthread_join(tid, NULL);
    parley_pub_destroy(&pub);
    bench_envs_free(&e);
    if (w->node[k].pid == 0 && (rc = s_node_start(w, k)) < 0)
        return rc;
    return *ms >= 0 ? 0 : -ETIMEDOUT;
}

/* ------------------------------------------------------------- main */

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    bench_opts_t opts;
    bench_opts_parse(&opts, argc, argv, "bench_cluster",
                     "parley in cluster mode (3 nats-server, 3 parleyd) "
                     "against raw verify, raw nats.c R3 and the embedded "
                     "daemon, in one run.");
    size_t per_pub = opts.quick ? 1000 : 4000;
    size_t n_raw = opts.quick ? 5000 : 30000;
    size_t n_lat = opts.quick ? 300 : 1500;
    int rounds = opts.quick ? 3 : 8;
    s_world_t *w = calloc(1, sizeof(*w));
    if (w == NULL || bench_tmpdir_make(w->dir, sizeof(w->dir), "cluster") < 0)
        return 1;
    w->parleyd = opts.parleyd;
    w->next_sseq = (uint64_t)parley_now_ms() * 1000;
    int rc = s_world_up(w);
    if (rc < 0) {
        fprintf(stderr, "cannot start the cluster: %s\n",
                parley_error_name(rc));
        s_world_down(w);
        bench_tmpdir_remove(w->dir);
        return rc == -ENOENT ? 0 : 1;
    }
    printf("3 nats-server (JetStream R3, file storage in %s), 3 parleyd in "
           "cluster mode and 1 embedded parleyd, fsync on; nats.c %s\n",
           w->dir, nats_GetVersion());
    const char *apis[S_NODES], *feeds[S_NODES];
    for (int i = 0; i < S_NODES; i++) {
        apis[i] = w->node[i].api;
        feeds[i] = w->node[i].feed;
    }
    size_t env_len = bench_typical_envelope_size();

    /* 1. references */
    double verify_us = s_verify_us(&w->keys[0], opts.quick ? 5000 : 20000);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = S_RAW_WINDOW;
    jo.PublishAsync.StallWait = 10000;
    jo.PublishAsync.ErrHandler = s_on_raw_error;
    double raw_us = 0, raw_id_us = 0, raw_rate = 0, raw_id_rate = 0;
    double raw_cons_us = 0, raw_cons_rate = 0;
    if (natsConnection_ConnectTo(&nc, w->nats.urls) == NATS_OK
        && natsConnection_JetStream(&js, nc, &jo) == NATS_OK
        && ph_nats_add_stream(&w->nats, "RAWREF", "rawref.>", 3, false,
                              20000)
               == 0
        && ph_nats_stream_leader(&w->nats, "RAWREF", 20000) >= 0) {
        /* A warm-up; a failure there (the new stream settling) does not
         * count against the measured runs. */
        (void)s_raw_server_us(w, js, 2000, env_len, false, &raw_rate);
        atomic_store(&s_raw_errors, 0);
        raw_us = s_raw_server_us(w, js, n_raw, env_len, false, &raw_rate);
        raw_id_us = s_raw_server_us(w, js, n_raw, env_len, true, &raw_id_rate);
        raw_cons_us = s_raw_consumers_us(w, js, n_raw, env_len, S_NODES,
                                         &raw_cons_rate);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    bench_section("references (same run)");
    bench_figure("raw Ed25519 verify of a typical update", verify_us, "us");
    bench_figure("raw nats.c R3 publish: CPU of the 3 servers", raw_us, "us");
    bench_figure("  the same with a Nats-Msg-Id", raw_id_us, "us");
    bench_figure("  with a msg id, read by 3 ordered consumers", raw_cons_us,
                 "us");
    bench_note("%zu async publishes of %zu bytes (a typical envelope), up to "
               "%d in flight: %.0f msg/s, %.0f msg/s with a msg id, %.0f "
               "msg/s with 3 consumers",
               n_raw, env_len, S_RAW_WINDOW, raw_rate, raw_id_rate,
               raw_cons_rate);
    double unavoidable = 3 * verify_us + raw_us;

    /* 2. throughput and CPU */
    bench_envs_t envs[S_PUBS];
    if ((rc = s_sign_all(w, envs, per_pub / 4)) == 0) {
        (void)s_tput_run(w, envs, apis, S_NODES, true); /* warm-up */
        for (int i = 0; i < S_PUBS; i++)
            bench_envs_free(&envs[i]);
    }
    s_tput_t cl = { 0 }, em = { 0 };
    if (rc == 0 && (rc = s_sign_all(w, envs, per_pub)) == 0) {
        cl = s_tput_run(w, envs, apis, S_NODES, true);
        const char *one[1] = { w->embedded.api };
        em = s_tput_run(w, envs, one, 1, false);
        for (int i = 0; i < S_PUBS; i++)
            bench_envs_free(&envs[i]);
    }
    double cpu_us = cl.acked > 0 ? (cl.cpu_parleyd + cl.cpu_servers)
                                       / (double)cl.acked * 1e6
                                 : 0;
    bench_section("throughput: publishers with pipelined windows");
    bench_note("%d publishers (one signer each), %d updates in flight each, "
               "spread over the 3 nodes",
               S_PUBS, S_WINDOW);
    bench_ratio("cluster: acked updates per second", cl.acked_per_s, "/s",
                "embedded", em.acked_per_s, 0, false);
    bench_figure("embedded: acked updates per second", em.acked_per_s, "/s");
    bench_ratio("CPU per acked update, 3 parleyd + 3 servers", cpu_us, "us",
                "3 verifies + raw R3", unavoidable, 1.25, true);
    bench_note("of which parleyd %.1f us, servers %.1f us; unavoidable: 3 x "
               "%.1f + %.1f = %.1f us",
               cl.acked ? cl.cpu_parleyd / (double)cl.acked * 1e6 : 0,
               cl.acked ? cl.cpu_servers / (double)cl.acked * 1e6 : 0,
               verify_us, raw_us, unavoidable);
    if (cl.acked > 0)
        s_groups_note(&cl.threads, cl.acked);
    if (raw_cons_us > 0)
        bench_ratio("  the same against 3 verifies + raw R3 with a msg id "
                    "and 3 consumers",
                    cpu_us, "us", "that", 3 * verify_us + raw_cons_us, 0,
                    true);
    bench_note("the nodes' local logs: %.1f records per fdatasync",
               cl.syncs > 0 ? (double)cl.synced / (double)cl.syncs : 0);
    bench_note("cluster: %" PRIu64 " acked, %" PRIu64 " rejected (%s); "
               "embedded: %" PRIu64 " acked, %" PRIu64 " rejected",
               cl.acked, cl.rejected,
               cl.first_error ? parley_error_name(cl.first_error) : "-",
               em.acked, em.rejected);
    bench_note("cluster: %" PRIu64 " answered unavailable (p1..p3); by "
               "cause: refused %" PRIu64 ", timeout %" PRIu64 ", jetstream %"
               PRIu64 ", unapplied %" PRIu64 ", conflicts %" PRIu64
               ", mismatch %" PRIu64,
               cl.ua[6], cl.ua[0], cl.ua[1], cl.ua[2], cl.ua[3], cl.ua[4],
               cl.ua[5]);

    /* 3. latency */
    double c50 = 0, c99 = 0, e50 = 0, e99 = 0;
    int lrc = s_latency(w, apis[0], apis[1], n_lat, 200, &c50, &c99);
    int lre = s_latency(w, w->embedded.api, w->embedded.api, n_lat, 200, &e50,
                        &e99);
    bench_section("publish -> delivery, 200 updates/s");
    bench_ratio("cluster (publish on p1, delivery on p2) p50", c50, "us",
                "embedded", e50, 0, true);
    bench_ratio("cluster p99", c99, "us", "embedded", e99, 0, true);
    bench_figure("embedded p50", e50, "us");
    bench_figure("embedded p99", e99, "us");
    if (lrc < 0 || lre < 0)
        bench_note("incomplete: cluster %s, embedded %s",
                   parley_error_name(lrc), parley_error_name(lre));

    /* 4. fan-out */
    double fo_cl = 0, fo_em = 0;
    size_t per_fo = opts.quick ? 300 : 1000;
    if (s_sign_all(w, envs, per_fo) == 0) {
        fo_cl = s_fanout(w, feeds, apis, S_NODES, envs);
        for (int i = 0; i < S_PUBS; i++)
            bench_envs_free(&envs[i]);
    }
    if (s_sign_all(w, envs, per_fo) == 0) {
        const char *f1[1] = { w->embedded.feed }, *a1[1] = { w->embedded.api };
        fo_em = s_fanout(w, f1, a1, 1, envs);
        for (int i = 0; i < S_PUBS; i++)
            bench_envs_free(&envs[i]);
    }
    bench_section("fan-out: deliveries per second over every subscriber");
    bench_ratio("3 edges x 100 subscribers", fo_cl, "/s", "one node x 100",
                fo_em, 0, false);
    bench_figure("one node (embedded) x 100 subscribers", fo_em, "/s");

    /* 5. fail-over */
    double fo_ms[16], conn_ms[16];
    int done = 0;
    for (int r = 0; r < rounds && r < 16; r++) {
        int k = r % S_NODES;
        if (s_failover_round(w, k, &fo_ms[done], &conn_ms[done]) == 0)
            done++;
        /* The restarted node catches up before the next round. */
        uint64_t head = bench_daemon_stat(&w->node[(k + 1) % S_NODES], "seq",
                                          NULL);
        (void)s_wait_applied(w, head, 30000);
    }
    bench_section("fail-over: kill -9 of a subscriber's parleyd -> its "
                  "first new delivery, from another node");
    if (done > 0) {
        qsort(fo_ms, (size_t)done, sizeof(double), s_cmp_double);
        qsort(conn_ms, (size_t)done, sizeof(double), s_cmp_double);
        double hb = 1000, reconnect = conn_ms[done / 2];
        double p99 = fo_ms[done - 1 - (done - 1) / 100];
        bench_figure("p50", fo_ms[done / 2], "ms");
        bench_ratio("p99 (the worst of the rounds here)", p99, "ms",
                    "2 heartbeats + connect", 2 * hb + reconnect, 1.0, true);
        bench_note("%d rounds; a fresh subscriber connects in %.0f ms "
                   "(median); heartbeat interval %.0f ms",
                   done, reconnect, hb);
    } else {
        bench_note("no round completed");
    }

    s_world_down(w);
    bench_tmpdir_remove(w->dir);
    free(w);
    return cl.acked > 0 ? 0 : 1;
}
