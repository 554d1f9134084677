/*
 * fanout.c - deliveries per second to 1, 10, 100, 1,000 and 10,000
 * subscribers.
 *
 * Every system carries the same payload: the bytes of a typical parley
 * Delivery (a signed cease-fire update, as the feed sends it).
 *
 *   raw libzmq   PUB -> N SUB over tcp loopback, two frames [topic][payload]
 *                like parley's feed, in this process.
 *   mosquitto    broker started here, libmosquitto clients, QoS 0.
 *   NATS core    nats-server started here, nats.c clients.
 *   parley       parleyd (fsync on, as shipped) fed by two publishers that
 *                pipeline pre-signed updates (window 256 each); N raw ZMQ
 *                SUB sockets on the feed, subscribed to "all/". Once more
 *                with N parley_sub_t library subscribers, which re-verify
 *                every signature.
 *
 * Every publisher, raw, peer or parley's, is flow-controlled (no
 * subscriber more than a window of 4,000 messages behind), so no queue
 * overflows and nothing is dropped; parley's subscribers count any gap in
 * the delivery seqs. The rate is the sum over subscribers of messages
 * received in a measurement window after a warm-up. From 1,000
 * subscribers on the warm-up lasts until the publisher has reached its
 * window (the steady state), the window is longer, and the CPU of the
 * process that fans out (the raw PUB's, parleyd) and of the subscriber
 * processes is printed for both sides (s_window_measure()).
 */
#include "bench.h"
#include "codec.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#ifdef BENCH_HAVE_MOSQUITTO
#include <mosquitto.h>
#endif
#ifdef BENCH_HAVE_NATS
#include <nats/nats.h>
#endif

#define S_NSIZES 5
#define S_NPEER 3          /* sizes the peers run at (1, 10, 100) */
#define S_FLEET_FROM 1000  /* subscribers in child processes from here */
#define S_PER_PROC 500   /* sockets per child: smaller polls, both cores */
#define S_WINDOW 4000      /* raw/peer flow-control window, messages */
#define S_HWM 10000        /* raw ZMQ HWMs: above the window, no drops */
#define S_PUBLISHERS 2     /* parley publishers */
#define S_PUB_WINDOW 256   /* parley publisher pipelining */
/* parley's flow control: updates sent ahead of the slowest subscriber,
 * the raw publisher's window. (1,024, two turns, was too tight: at 1,000
 * subscribers a turn takes about half a second to reach the last one,
 * and the publishers waited on that instead of on throughput.) */
#define S_PARLEY_AHEAD S_WINDOW
#define S_MAX_WORKERS 2    /* subscriber threads for ZMQ sockets */

static const size_t s_sizes[S_NSIZES] = { 1, 10, 100, 1000, 10000 };

/*
 * How long a run warms up and measures. Below S_FLEET_FROM: warm_ns,
 * then dur_ns. From S_FLEET_FROM on, the publisher (raw or parley's)
 * needs seconds to build up its lead over the slowest subscriber, and
 * until it does the queues grow and every delivery lands in fresh
 * memory: so the warm-up lasts until the publisher has reached its
 * window (up to steady_max_ns), then warm_ns more, and the window is
 * big_dur_ns. Both sides are measured the same way.
 */
typedef struct s_timing {
    uint64_t warm_ns, dur_ns;
    uint64_t steady_max_ns, big_dur_ns;
} s_timing_t;

/* What one measured window saw, whatever the system. */
typedef struct s_window {
    double rate;            /* deliveries/s, all subscribers */
    double aux_rate;        /* the meter's aux counter per second (parley:
                               acked updates) */
    double secs;            /* the window's length */
    double warm_secs;       /* from the start of the warm-up to the window */
    bool steady;            /* the publisher had reached its window */
    bool early;             /* the supply ran out before the window ended */
    bench_threads_t pub;    /* cores of the publishing process, by role */
    double pub_cores;       /* all of its threads */
    double other_cores;     /* the meter's other process (parley: the
                               bench's publishers), 0 if none */
    double subs_cores;      /* the subscriber processes; 0 in-process */
    double faults;          /* its minor page faults per delivery */
} s_window_t;

/* What to measure and how to tell the publisher's state. */
typedef struct s_meter {
    bench_counter_t *c;         /* n counters, one per subscriber */
    size_t n;
    pid_t pid;                  /* the process that fans out */
    pid_t other;                /* another process whose CPU counts, or 0 */
    const bench_fleet_t *fleet; /* the subscriber processes, or NULL */
    bool (*reached)(void *ctx); /* it has been a window ahead (steady) */
    bool (*done)(void *ctx);    /* it ran out of messages; may be NULL */
    uint64_t (*aux)(void *ctx); /* a counter to rate too; may be NULL */
    void *ctx;
    const char *tag;            /* names its profile (BENCH_FANOUT_PERF) */
} s_meter_t;

/* The message every system carries. */
static uint8_t s_payload[BENCH_ENV_SLOT + 64];
static size_t s_payload_len;

/* Start min(n, S_MAX_WORKERS) zworkers over socks[0..n). */
static size_t
s_workers_start(pthread_t *tid, bench_zworker_t *w, void **socks,
                bench_counter_t *c, size_t n, bool parse_seq, atomic_int *stop)
{
    size_t nw = n < S_MAX_WORKERS ? n : S_MAX_WORKERS;
    for (size_t i = 0; i < nw; i++) {
        size_t from = n * i / nw, to = n * (i + 1) / nw;
        w[i] = (bench_zworker_t){ .socks = socks + from, .counters = c + from,
                                  .n = to - from, .parse_seq = parse_seq,
                                  .stop = stop };
        pthread_create(&tid[i], NULL, bench_zworker_run, &w[i]);
    }
    return nw;
}

/* Wait for a flow publisher's join phase. Returns 0 or -ETIMEDOUT. */
static int
s_flow_wait(bench_flow_t *f)
{
    while (atomic_load(&f->ready) == 0)
        bench_sleep_ns(1000000);
    return atomic_load(&f->ready) == 1 ? 0 : -ETIMEDOUT;
}

static double
s_cores_sum(const bench_threads_t *t)
{
    return t->main + t->workers + t->io + t->other;
}

static bool
s_meter_done(const s_meter_t *m)
{
    return m->done != NULL && m->done(m->ctx);
}

/*
 * BENCH_FANOUT_PERF=DIR (a diagnosis): record a call-graph profile of
 * the process that fans out over the window, from 1,000 subscribers on,
 * into DIR/TAG-N.data (perf record in the background, for secs).
 */
static void
s_perf_start(const s_meter_t *m, double secs)
{
    const char *dir = getenv("BENCH_FANOUT_PERF");
    if (dir == NULL || dir[0] == '\0' || m->n < S_FLEET_FROM)
        return;
    char cmd[BENCH_PATH_MAX + 256];
    snprintf(cmd, sizeof(cmd),
             "perf record -q -g -p %d -o \"%s/%s-%zu.data\" -- sleep %.1f "
             ">/dev/null 2>&1 &",
             (int)m->pid, dir, m->tag != NULL ? m->tag : "run", m->n, secs);
    if (system(cmd) != 0)
        fprintf(stderr, "perf record could not be started\n");
}

/*
 * Warm up and measure one window (see s_timing_t), reading the
 * deliveries, the publishing process's threads, the other process and
 * the subscriber processes at the same two instants. Raw libzmq and
 * parley go through this one function.
 */
static void
s_window_measure(const s_meter_t *m, const s_timing_t *t, s_window_t *w)
{
    memset(w, 0, sizeof(*w));
    bool big = m->n >= S_FLEET_FROM;
    uint64_t tw = bench_now_ns();
    bench_sleep_ns(t->warm_ns);
    if (big) {
        while (!m->reached(m->ctx) && !s_meter_done(m)
               && bench_now_ns() - tw < t->steady_max_ns)
            bench_sleep_ns(10000000);
        if (m->reached(m->ctx))
            bench_sleep_ns(t->warm_ns); /* settle at the window */
    }
    w->steady = m->reached(m->ctx);
    w->early = s_meter_done(m);
    uint64_t dur = big ? t->big_dur_ns : t->dur_ns;
    bench_threads_t p0, p1;
    bench_threads_cpu(m->pid, &p0);
    double o0 = m->other > 0 ? bench_proc_cpu(m->other) : 0;
    double s0 = m->fleet != NULL ? bench_fleet_cpu(m->fleet) : 0;
    uint64_t f0 = bench_proc_faults(m->pid);
    uint64_t a0 = m->aux != NULL ? m->aux(m->ctx) : 0;
    uint64_t c0 = bench_counters_sum(m->c, m->n), t0 = bench_now_ns();
    w->warm_secs = bench_secs(tw, t0);
    s_perf_start(m, bench_secs(0, dur) * 0.9);
    while (bench_now_ns() - t0 < dur && !s_meter_done(m))
        bench_sleep_ns(5000000);
    uint64_t c1 = bench_counters_sum(m->c, m->n), t1 = bench_now_ns();
    uint64_t a1 = m->aux != NULL ? m->aux(m->ctx) : 0;
    uint64_t f1 = bench_proc_faults(m->pid);
    double s1 = m->fleet != NULL ? bench_fleet_cpu(m->fleet) : 0;
    double o1 = m->other > 0 ? bench_proc_cpu(m->other) : 0;
    bench_threads_cpu(m->pid, &p1);
    w->early = w->early || s_meter_done(m);
    w->secs = bench_secs(t0, t1);
    w->rate = (double)(c1 - c0) / w->secs;
    w->aux_rate = (double)(a1 - a0) / w->secs;
    w->pub = bench_threads_cores(&p0, &p1, w->secs);
    w->pub_cores = s_cores_sum(&w->pub);
    w->other_cores = (o1 - o0) / w->secs;
    w->subs_cores = (s1 - s0) / w->secs;
    w->faults = c1 > c0 ? (double)(f1 - f0) / (double)(c1 - c0) : 0;
}

/* Microseconds of CPU per delivery at `cores` busy. */
static double
s_us_per(double cores, double rate)
{
    return rate > 0 ? cores / rate * 1e6 : 0;
}

/*
 * n SUB sockets subscribed to "all/" on ep, read and counted: in this
 * process (up to S_MAX_WORKERS reader threads, sockets of ctx) below
 * S_FLEET_FROM, in child processes from there on.
 */
typedef struct s_subs {
    bool in_kids;
    bench_fleet_t fleet;
    void **socks;               /* in this process */
    bench_counter_t *c;         /* n counters */
    size_t n, nw;
    pthread_t wt[S_MAX_WORKERS];
    bench_zworker_t w[S_MAX_WORKERS];
} s_subs_t;

/* Open and start reading; *stop (set by the caller) ends the readers of
 * this process. Returns 0 or a negative error (nothing left open). */
static int
s_subs_open(s_subs_t *s, void *ctx, const char *ep, size_t n, bool parse_seq,
            atomic_int *stop)
{
    /* parleyd's subscribers also hear its heartbeats (counted apart), so
     * the run can wait until every one is in place. */
    static const char *const topics[] = { "all/", NULL };
    static const char *const parley_topics[] = { "all/", "sys/heartbeat/",
                                                 NULL };
    int hwm = S_HWM, zero = 0;
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->in_kids = n >= S_FLEET_FROM;
    if (s->in_kids) {
        int rc = bench_fleet_start(&s->fleet, ep,
                                   parse_seq ? parley_topics : topics, n,
                                   S_PER_PROC, parse_seq);
        s->c = s->fleet.c;
        return rc;
    }
    s->socks = calloc(n, sizeof(*s->socks));
    s->c = bench_counters_new(n);
    if (s->socks == NULL || s->c == NULL) {
        free(s->socks);
        free(s->c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        s->socks[i] = zmq_socket(ctx, ZMQ_SUB);
        zmq_setsockopt(s->socks[i], ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(s->socks[i], ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(s->socks[i], ZMQ_SUBSCRIBE, "all/", 4);
        if (parse_seq)
            zmq_setsockopt(s->socks[i], ZMQ_SUBSCRIBE, "sys/heartbeat/", 14);
        zmq_connect(s->socks[i], ep);
    }
    s->nw = s_workers_start(s->wt, s->w, s->socks, s->c, n, parse_seq, stop);
    return 0;
}

/* Join the readers (after *stop was set) and close everything. */
static void
s_subs_close(s_subs_t *s)
{
    for (size_t i = 0; i < s->nw; i++)
        pthread_join(s->wt[i], NULL);
    if (s->in_kids) {
        bench_fleet_stop(&s->fleet);
    } else {
        for (size_t i = 0; i < s->n; i++)
            zmq_close(s->socks[i]);
        free(s->socks);
        free(s->c);
    }
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------- raw zmq */

static int
s_zmq_send(void *ctx)
{
    if (zmq_send(ctx, "all/", 4, ZMQ_SNDMORE) < 0 ||
        zmq_send(ctx, s_payload, s_payload_len, 0) < 0)
        return -errno;
    return 0;
}

static bool
s_flow_reached(void *ctx)
{
    bench_flow_t *f = ctx;
    return atomic_load_explicit(&f->held, memory_order_relaxed) > 0;
}

/* Raw libzmq PUB -> n SUB; the rate in w (zeroed when it failed). */
static void
s_raw_zmq(size_t n, const s_timing_t *t, s_window_t *w)
{
    memset(w, 0, sizeof(*w));
    int port = bench_free_port(), hwm = S_HWM, zero = 0;
    char ep[BENCH_EP_MAX];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
    void *pctx = zmq_ctx_new(), *sctx = zmq_ctx_new();
    zmq_ctx_set(sctx, ZMQ_MAX_SOCKETS, 4096);
    void *pub = zmq_socket(pctx, ZMQ_PUB);
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_bind(pub, ep) != 0) {
        fprintf(stderr, "raw zmq bind %s: %s\n", ep, zmq_strerror(errno));
        zmq_close(pub);
        zmq_ctx_term(pctx);
        zmq_ctx_term(sctx);
        return;
    }
    atomic_int stop = 0;
    s_subs_t subs;
    if (s_subs_open(&subs, sctx, ep, n, false, &stop) < 0) {
        zmq_close(pub);
        zmq_ctx_term(pctx);
        zmq_ctx_term(sctx);
        return;
    }
    bench_counter_t *c = subs.c;
    pthread_t ft;
    bench_flow_t flow = { .send = s_zmq_send, .ctx = pub, .counters = c,
                          .n = n, .window = S_WINDOW, .stop = &stop,
                          /* Thousands of subscribers: one probe a
                           * second, as parleyd's heartbeat. Each probe
                           * costs the I/O thread one send() per joined
                           * connection; ten a second took all of its
                           * core at 10,000, and the connections still
                           * arriving then timed out in their handshake. */
                          .probe_ns = n >= S_FLEET_FROM ? 1000000000ull : 0 };
    pthread_create(&ft, NULL, bench_flow_run, &flow);
    if (s_flow_wait(&flow) == 0) {
        s_meter_t m = { .c = c, .n = n, .pid = getpid(),
                        .fleet = subs.in_kids ? &subs.fleet : NULL,
                        .reached = s_flow_reached, .ctx = &flow,
                        .tag = "raw" };
        s_window_measure(&m, t, w);
    } else {
        fprintf(stderr, "raw zmq: subscribers did not join\n");
    }
    atomic_store(&stop, 1);
    pthread_join(ft, NULL);
    s_subs_close(&subs);
    zmq_close(pub);
    zmq_ctx_term(sctx);
    zmq_ctx_term(pctx);
}

/* ----------------------------------------------------------- mosquitto */

#ifdef BENCH_HAVE_MOSQUITTO
static void
s_mosq_on_msg(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    (void)msg;
    bench_counter_t *c = obj;
    atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed);
}

static void
s_mosq_on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    if (rc == 0)
        atomic_store((atomic_int *)obj, 1);
}

static int
s_mosq_send(void *ctx)
{
    int rc = mosquitto_publish(ctx, NULL, "all", (int)s_payload_len, s_payload,
                               0, false);
    return rc == MOSQ_ERR_SUCCESS ? 0 : -EIO;
}

static void
s_mosq_flush(void *ctx)
{
    (void)mosquitto_loop(ctx, 0, 1);
}

static double
s_mosquitto(size_t n, const s_timing_t *t, const char *dir)
{
    bench_broker_t b;
    int rc = bench_mosquitto_start(&b, dir, false);
    if (rc < 0) {
        fprintf(stderr, "mosquitto: cannot start (%s)\n", strerror(-rc));
        return 0;
    }
    struct mosquitto **subs = calloc(n, sizeof(*subs));
    bench_counter_t *c = bench_counters_new(n);
    struct mosquitto *pub = NULL;
    double rate = 0;
    for (size_t i = 0; i < n; i++) {
        subs[i] = mosquitto_new(NULL, true, &c[i]);
        mosquitto_message_callback_set(subs[i], s_mosq_on_msg);
        if (mosquitto_connect(subs[i], "127.0.0.1", b.port, 60) != 0 ||
            mosquitto_subscribe(subs[i], NULL, "all", 0) != 0 ||
            mosquitto_loop_start(subs[i]) != 0) {
            fprintf(stderr, "mosquitto: subscriber %zu failed\n", i);
            goto out;
        }
    }
    atomic_int connected = 0;
    pub = mosquitto_new(NULL, true, &connected);
    mosquitto_connect_callback_set(pub, s_mosq_on_connect);
    if (mosquitto_connect(pub, "127.0.0.1", b.port, 60) != 0)
        goto out;
    for (int i = 0; i < 500 && !atomic_load(&connected); i++)
        (void)mosquitto_loop(pub, 10, 1);
    atomic_int stop = 0;
    bench_flow_t flow = { .send = s_mosq_send, .flush = s_mosq_flush,
                          .ctx = pub, .counters = c, .n = n,
                          .window = S_WINDOW, .stop = &stop };
    pthread_t ft;
    pthread_create(&ft, NULL, bench_flow_run, &flow);
    if (s_flow_wait(&flow) == 0)
        rate = bench_measure_rate(c, n, t->warm_ns, t->dur_ns, NULL, NULL);
    else
        fprintf(stderr, "mosquitto: subscribers did not join\n");
    atomic_store(&stop, 1);
    pthread_join(ft, NULL);
out:
    if (pub != NULL) {
        mosquitto_disconnect(pub);
        mosquitto_destroy(pub);
    }
    for (size_t i = 0; i < n; i++) {
        if (subs[i] == NULL)
            continue;
        mosquitto_disconnect(subs[i]);
        mosquitto_loop_stop(subs[i], false);
        mosquitto_destroy(subs[i]);
    }
    free(subs);
    free(c);
    bench_broker_stop(&b);
    return rate;
}
#endif

/* ---------------------------------------------------------------- NATS */

#ifdef BENCH_HAVE_NATS
static void
s_nats_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
              void *closure)
{
    (void)nc;
    (void)sub;
    bench_counter_t *c = closure;
    atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed);
    natsMsg_Destroy(msg);
}

static int
s_nats_send(void *ctx)
{
    return natsConnection_Publish(ctx, "all", s_payload, (int)s_payload_len) ==
                   NATS_OK
               ? 0
               : -EIO;
}

static double
s_nats(size_t n, const s_timing_t *t, const char *dir)
{
    bench_broker_t b;
    int rc = bench_nats_start(&b, dir);
    if (rc < 0) {
        fprintf(stderr, "nats-server: cannot start (%s)\n", strerror(-rc));
        return 0;
    }
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", b.port);
    natsConnection **conns = calloc(n, sizeof(*conns));
    natsSubscription **subs = calloc(n, sizeof(*subs));
    bench_counter_t *c = bench_counters_new(n);
    natsConnection *pub = NULL;
    double rate = 0;
    for (size_t i = 0; i < n; i++) {
        if (natsConnection_ConnectTo(&conns[i], url) != NATS_OK ||
            natsConnection_Subscribe(&subs[i], conns[i], "all", s_nats_on_msg,
                                     &c[i]) != NATS_OK ||
            natsConnection_Flush(conns[i]) != NATS_OK) {
            fprintf(stderr, "nats: subscriber %zu failed: %s\n", i,
                    nats_GetLastError(NULL));
            goto out;
        }
    }
    if (natsConnection_ConnectTo(&pub, url) != NATS_OK)
        goto out;
    atomic_int stop = 0;
    bench_flow_t flow = { .send = s_nats_send, .ctx = pub, .counters = c,
                          .n = n, .window = S_WINDOW, .stop = &stop };
    pthread_t ft;
    pthread_create(&ft, NULL, bench_flow_run, &flow);
    if (s_flow_wait(&flow) == 0)
        rate = bench_measure_rate(c, n, t->warm_ns, t->dur_ns, NULL, NULL);
    else
        fprintf(stderr, "nats: subscribers did not join\n");
    atomic_store(&stop, 1);
    pthread_join(ft, NULL);
out:
    /* Close before destroying: destroying a connection whose reader is
     * still delivering can deadlock in nats.c 3.4 (seen here). */
    if (pub != NULL)
        natsConnection_Close(pub);
    for (size_t i = 0; i < n; i++)
        if (subs[i] != NULL)
            natsSubscription_Unsubscribe(subs[i]);
    for (size_t i = 0; i < n; i++)
        if (conns[i] != NULL)
            natsConnection_Close(conns[i]);
    natsConnection_Destroy(pub);
    for (size_t i = 0; i < n; i++) {
        natsSubscription_Destroy(subs[i]);
        natsConnection_Destroy(conns[i]);
    }
    free(subs);
    free(conns);
    free(c);
    bench_broker_stop(&b);
    return rate;
}
#endif

/* -------------------------------------------------------------- parley */

typedef struct s_parley_run {
    s_window_t w;          /* deliveries; acked updates/s as aux_rate;
                              parleyd's threads as pub, the bench's
                              publishers as other */
    uint64_t gaps;         /* seqs a subscriber never saw */
    uint64_t rejected;
    bool exhausted;        /* publishers ran out of envelopes early */
} s_parley_run_t;

typedef struct s_pubset {
    bench_pubber_t p[S_PUBLISHERS];
    pthread_t tid[S_PUBLISHERS];
    bench_counter_t *c;        /* the subscribers' counters (flow control) */
    size_t n;
    atomic_uint_fast64_t held; /* times s_pubs_hold() held them */
} s_pubset_t;

/*
 * The flow control of the raw and peer publishers, for parley's: hold
 * while the updates sent are S_PARLEY_AHEAD or more ahead of what the
 * slowest subscriber has received. Without it the publishers, paced only by
 * parleyd's acks, ran ahead of the deliveries (at 1,000 subscribers
 * about twice as fast), and parleyd spent part of its CPU growing the
 * subscribers' queues (page faults on fresh memory for every delivery)
 * for deliveries that came after the window.
 */
static bool
s_pubs_hold(void *ctx)
{
    s_pubset_t *ps = ctx;
    uint64_t sent = 0;
    for (size_t i = 0; i < S_PUBLISHERS; i++)
        sent += atomic_load_explicit(&ps->p[i].sent, memory_order_relaxed);
    uint64_t got = bench_counters_min(ps->c, ps->n);
    bool hold = sent > got && sent - got >= S_PARLEY_AHEAD;
    if (hold)
        atomic_fetch_add_explicit(&ps->held, 1, memory_order_relaxed);
    return hold;
}

static bool
s_true(void *ctx)
{
    (void)ctx;
    return true;
}

static bool
s_pubs_reached(void *ctx)
{
    s_pubset_t *ps = ctx;
    return atomic_load_explicit(&ps->held, memory_order_relaxed) > 0;
}

static bool
s_pubs_done(void *ctx)
{
    s_pubset_t *ps = ctx;
    for (size_t i = 0; i < S_PUBLISHERS; i++)
        if (ps->p[i].done_ns == 0)
            return false;
    return true;
}

static uint64_t
s_pubs_acked(void *ctx)
{
    s_pubset_t *ps = ctx;
    uint64_t s = 0;
    for (size_t i = 0; i < S_PUBLISHERS; i++)
        s += atomic_load(&ps->p[i].acked);
    return s;
}

/* Start the publishers; with c (n counters) flow-controlled on them. */
static void
s_pubs_start(s_pubset_t *ps, const bench_daemon_t *d, bench_key_t *keys,
             const bench_envs_t *envs, atomic_int *stop, bench_counter_t *c,
             size_t n)
{
    memset(ps, 0, sizeof(*ps));
    ps->c = c;
    ps->n = n;
    for (size_t i = 0; i < S_PUBLISHERS; i++) {
        ps->p[i] = (bench_pubber_t){ .api = d->api, .key = keys[i].key,
                                     .envs = &envs[i], .window = S_PUB_WINDOW,
                                     .stop = stop,
                                     .hold = c != NULL ? s_pubs_hold : NULL,
                                     .hold_ctx = ps };
        pthread_create(&ps->tid[i], NULL, bench_pubber_run, &ps->p[i]);
    }
}

static void
s_pubs_join(s_pubset_t *ps, s_parley_run_t *r)
{
    for (size_t i = 0; i < S_PUBLISHERS; i++) {
        pthread_join(ps->tid[i], NULL);
        r->rejected += ps->p[i].rejected;
        if (ps->p[i].first_error != 0)
            fprintf(stderr, "parley publisher %zu: first error %s\n", i,
                    parley_error_name(ps->p[i].first_error));
    }
}

/*
 * Measure parley's window (s_window_measure()): deliveries, acks, and
 * the CPU of parleyd (pid), of this process's publishers and of the
 * subscriber processes (fleet, or NULL).
 */
static void
s_parley_measure(s_parley_run_t *r, bench_counter_t *c, size_t n,
                 s_pubset_t *ps, const bench_daemon_t *d,
                 const bench_fleet_t *fleet, const s_timing_t *t)
{
    s_meter_t m = { .c = c, .n = n, .pid = d->pid, .other = getpid(),
                    .fleet = fleet,
                    /* Library subscribers are not flow-controlled: there
                     * is no window to reach. */
                    .reached = ps->c != NULL ? s_pubs_reached : s_true,
                    .done = s_pubs_done, .aux = s_pubs_acked, .ctx = ps,
                    .tag = "parleyd" };
    s_window_measure(&m, t, &r->w);
    r->exhausted = r->w.early;
}

static int
s_parley_daemon(bench_daemon_t *d, const char *parleyd, const char *base,
                const bench_key_t *keys, const char *tag)
{
    char dir[BENCH_PATH_MAX], ring[BENCH_PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/%s", base, tag);
    snprintf(ring, sizeof(ring), "%s/keyring", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    int rc = bench_keyring_write(ring, keys, S_PUBLISHERS);
    if (rc < 0)
        return rc;
    /* Room for the 10,000-subscriber run. */
    return bench_daemon_start_conf(d, parleyd, dir, true,
                                   "max_connections 12000\n", 10000);
}

static s_parley_run_t
s_parley_raw(size_t n, const s_timing_t *t, const bench_opts_t *o,
             const char *base, bench_key_t *keys, const bench_envs_t *envs)
{
    s_parley_run_t r = { 0 };
    bench_daemon_t d;
    char tag[32];
    snprintf(tag, sizeof(tag), "parley-raw-%zu", n);
    if (s_parley_daemon(&d, o->parleyd, base, keys, tag) < 0)
        return r;
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 4096);
    atomic_int stop_subs = 0, stop_pubs = 0;
    s_subs_t subs;
    if (s_subs_open(&subs, ctx, d.feed, n, true, &stop_subs) < 0) {
        zmq_ctx_term(ctx);
        (void)bench_daemon_stop(&d);
        return r;
    }
    bench_counter_t *c = subs.c;
    bool in_kids = subs.in_kids;
    /* Subscriptions reach the XPUB asynchronously: wait until every
     * subscriber has heard a heartbeat (up to 120 s; 10,000 connections
     * take a while: with libzmq's listen backlog, 100 as parleyd's feed,
     * most of them lose SYNs and wait out TCP's back-off). Then a
     * second more before the publishers connect: parleyd renews its ZAP
     * handler once connections have paused, and a
     * publisher whose handshake meets the renewal waits for
     * handshake_timeout (5 s) before it tries again, which would stall
     * ingest for most of the measurement. */
    uint64_t tj = bench_now_ns();
    while (bench_secs(tj, bench_now_ns()) < 120) {
        size_t heard = 0;
        for (size_t i = 0; i < n; i++)
            heard += atomic_load(&c[i].other) > 0;
        if (heard == n)
            break;
        bench_sleep_ns(10000000);
    }
    bench_sleep_ns(in_kids ? 1000000000ull : 300000000ull);
    s_pubset_t ps;
    s_pubs_start(&ps, &d, keys, envs, &stop_pubs, c, n);
    if (bench_counters_wait_all(c, n, 10000) < 0)
        fprintf(stderr, "parley: not every subscriber got a delivery\n");
    s_parley_measure(&r, c, n, &ps, &d, in_kids ? &subs.fleet : NULL, t);
    atomic_store(&stop_pubs, 1);
    s_pubs_join(&ps, &r);
    bench_sleep_ns(100000000);
    atomic_store(&stop_subs, 1);
    for (size_t i = 0; i < n; i++)
        r.gaps += c[i].gaps;
    s_subs_close(&subs);
    zmq_ctx_term(ctx);
    int st = bench_daemon_stop(&d);
    if (st != 0)
        fprintf(stderr, "parleyd exited with status %d\n", st);
    return r;
}

typedef struct s_libsub {
    const char *api;
    bench_counter_t *c;
    atomic_int *stop;
    atomic_int *ready;
    uint64_t gap_events, rejected_events;
    int err;
} s_libsub_t;

static void *
s_libsub_run(void *arg)
{
    s_libsub_t *s = arg;
    parley_sub_t *sub = bench_sub_new(s->api, PARLEY_START_LIVE, 0);
    atomic_fetch_add(s->ready, 1);
    if (sub == NULL) {
        s->err = -errno;
        return NULL;
    }
    while (!atomic_load_explicit(s->stop, memory_order_relaxed)) {
        const parley_event_t *ev;
        int rc = parley_sub_next(sub, 100, &ev);
        if (rc < 0) {
            s->err = rc;
            break;
        }
        if (rc == 0)
            continue;
        parley_event_type_t type = parley_event_type(ev);
        if (type == PARLEY_EVENT_DELIVERY)
            atomic_fetch_add_explicit(&s->c->n, 1, memory_order_relaxed);
        else if (type == PARLEY_EVENT_GAP)
            s->gap_events++;
        else if (type == PARLEY_EVENT_REJECTED)
            s->rejected_events++;
    }
    parley_sub_destroy(&sub);
    return NULL;
}

static s_parley_run_t
s_parley_lib(size_t n, const s_timing_t *t, const bench_opts_t *o,
             const char *base, bench_key_t *keys, const bench_envs_t *envs)
{
    s_parley_run_t r = { 0 };
    bench_daemon_t d;
    char tag[32];
    snprintf(tag, sizeof(tag), "parley-lib-%zu", n);
    if (s_parley_daemon(&d, o->parleyd, base, keys, tag) < 0)
        return r;
    bench_counter_t *c = bench_counters_new(n);
    s_libsub_t *ls = calloc(n, sizeof(*ls));
    pthread_t *tid = calloc(n, sizeof(*tid));
    atomic_int stop_subs = 0, stop_pubs = 0, ready = 0;
    for (size_t i = 0; i < n; i++) {
        ls[i] = (s_libsub_t){ .api = d.api, .c = &c[i], .stop = &stop_subs,
                              .ready = &ready };
        pthread_create(&tid[i], NULL, s_libsub_run, &ls[i]);
    }
    while ((size_t)atomic_load(&ready) < n)
        bench_sleep_ns(1000000);
    bench_sleep_ns(300000000);
    s_pubset_t ps;
    s_pubs_start(&ps, &d, keys, envs, &stop_pubs, NULL, 0);
    if (bench_counters_wait_all(c, n, 10000) < 0)
        fprintf(stderr, "parley lib: not every subscriber got a delivery\n");
    s_parley_measure(&r, c, n, &ps, &d, NULL, t);
    atomic_store(&stop_pubs, 1);
    s_pubs_join(&ps, &r);
    atomic_store(&stop_subs, 1);
    for (size_t i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        r.gaps += ls[i].gap_events;
        if (ls[i].err != 0)
            fprintf(stderr, "parley_sub %zu: %s\n", i,
                    parley_error_name(ls[i].err));
    }
    free(tid);
    free(ls);
    free(c);
    (void)bench_daemon_stop(&d);
    return r;
}

/* One core's raw verify rate over a short run, to size the envelope supply. */
static double
s_verify_rate_estimate(void)
{
    uint8_t pk[32], sk[64], sig[64], msg[400];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof(msg));
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
    uint64_t t0 = bench_now_ns(), n = 0;
    while (bench_now_ns() - t0 < 200000000ull) {
        for (int i = 0; i < 100; i++)
            n += crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0;
    }
    return (double)n / bench_secs(t0, bench_now_ns());
}

/*
 * Which of the first nsizes sizes to run: all of them, or those listed
 * in BENCH_FANOUT_SIZES ("1000 10000"), for a profile of one size.
 */
static void
s_sizes_chosen(bool *run, size_t nsizes)
{
    const char *env = getenv("BENCH_FANOUT_SIZES");
    for (size_t i = 0; i < nsizes; i++)
        run[i] = env == NULL || env[0] == '\0';
    if (env == NULL || env[0] == '\0')
        return;
    char *end;
    for (const char *p = env; *p != '\0'; p = end) {
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p) {
            end = (char *)p + 1;
            continue;
        }
        for (size_t i = 0; i < nsizes; i++)
            if (s_sizes[i] == v)
                run[i] = true;
    }
}

/* Whether system name is to run: always, unless BENCH_FANOUT_SYSTEMS
 * lists others (names raw, mosquitto, nats, parley, lib). */
static bool
s_system_chosen(const char *name)
{
    const char *env = getenv("BENCH_FANOUT_SYSTEMS");
    if (env == NULL || env[0] == '\0')
        return true;
    size_t len = strlen(name);
    for (const char *p = env; (p = strstr(p, name)) != NULL; p += len)
        if ((p == env || p[-1] == ' ' || p[-1] == ',')
            && (p[len] == '\0' || p[len] == ' ' || p[len] == ','))
            return true;
    return false;
}

/*
 * Where the CPU went in a window with the subscribers in child
 * processes: the process that fans out, by thread role (main: the raw
 * publisher's caller is not main, so its flow thread counts as a
 * worker; parleyd's loop is main, its verify pool the workers), per
 * delivery, and the subscribers'. (In-process runs share one process
 * between publisher and subscribers: nothing to tell apart.)
 */
static void
s_print_cpu(const char *who, size_t n, const s_window_t *w)
{
    if (n < S_FLEET_FROM)
        return;
    bench_note("%s: %.2f cores (main %.2f, workers %.2f, I/O %.2f), "
               "%.3f us per delivery, %.4f page faults per delivery; "
               "subscriber processes %.2f cores (%.3f us per delivery); "
               "warm-up %.1f s, window %.1f s, %s",
               who, w->pub_cores, w->pub.main, w->pub.workers, w->pub.io,
               s_us_per(w->pub_cores, w->rate), w->faults, w->subs_cores,
               s_us_per(w->subs_cores, w->rate), w->warm_secs, w->secs,
               w->steady ? "publisher at its window (steady)"
                         : "PUBLISHER NEVER REACHED ITS WINDOW (queues "
                           "still growing)");
}

static void
s_print_parley(const char *label, size_t n, const s_parley_run_t *r)
{
    char name[96];
    const s_window_t *w = &r->w;
    snprintf(name, sizeof(name), "%s, %zu sub%s", label, n, n == 1 ? "" : "s");
    bench_figure(name, w->rate, "deliveries/s");
    bench_note("updates delivered %.0f/s (deliveries / subscribers), acked "
               "%.0f/s; parleyd CPU %.2f cores, %.3f us and %.4f page faults "
               "per delivery; publishers %.2f cores; gaps %llu, rejects "
               "%llu%s",
               w->rate / (double)n, w->aux_rate, w->pub_cores,
               s_us_per(w->pub_cores, w->rate), w->faults, w->other_cores,
               (unsigned long long)r->gaps, (unsigned long long)r->rejected,
               r->exhausted ? ", ENVELOPE SUPPLY RAN OUT (rate is partial)"
                            : "");
    s_print_cpu("parleyd", n, w);
    if (w->aux_rate == 0 && w->rate > 0)
        /* Seen at 10,000 subscribers: the deliveries are real, the acks
         * came before the window. */
        bench_note("no ack in the window: parleyd acks a turn (up to %d "
                   "updates here) before it publishes it, and publishing "
                   "one turn to %zu subscribers took longer than the window",
                   S_PUBLISHERS * S_PUB_WINDOW, n);
}

int
main(int argc, char **argv)
{
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_fanout",
                     "Deliveries/s to 1 to 10,000 subscribers: raw libzmq, "
                     "parleyd; mosquitto QoS 0 and NATS core up to 100.");
    if (sodium_init() < 0)
        return 1;
    s_timing_t t = { .warm_ns = o.quick ? 150000000ull : 500000000ull,
                     .dur_ns = o.quick ? 400000000ull : 2500000000ull,
                     .steady_max_ns = o.quick ? 5000000000ull
                                              : 20000000000ull,
                     .big_dur_ns = o.quick ? 1000000000ull : 5000000000ull };
    char base[BENCH_PATH_MAX];
    if (bench_tmpdir_make(base, sizeof(base), "fanout") < 0)
        return 1;

    /* The payload: a real Delivery around a real signed update. */
    bench_key_t keys[S_PUBLISHERS];
    if (bench_keys_make(keys, S_PUBLISHERS) < 0)
        return 1;
    bench_envs_t one;
    if (bench_envs_sign(&one, keys[0].key, 1, 1, 1) < 0)
        return 1;
    if (parley__delivery_encode(123456, parley_now_ms(), bench_env(&one, 0),
                                one.lens[0], s_payload, sizeof(s_payload),
                                &s_payload_len) < 0)
        return 1;
    bench_envs_free(&one);

    bench_section("fan-out: deliveries per second");
    bench_note("payload %zu bytes (a typical parley Delivery); window %d "
               "messages for raw/peers; %s run", s_payload_len, S_WINDOW,
               o.quick ? "quick" : "full");

    s_window_t raw[S_NSIZES] = { 0 };
    double mosq[S_NSIZES] = { 0 }, nats[S_NSIZES] = { 0 };
    s_parley_run_t pr[S_NSIZES] = { 0 }, pl[S_NSIZES] = { 0 };
    char label[64];
    /* A quick run stops at 1,000 subscribers. */
    size_t nsizes = o.quick ? S_NSIZES - 1 : S_NSIZES;
    bool run[S_NSIZES];
    s_sizes_chosen(run, nsizes);
    for (size_t i = 0; i < nsizes; i++) {
        if (!run[i] || !s_system_chosen("raw"))
            continue;
        s_raw_zmq(s_sizes[i], &t, &raw[i]);
        snprintf(label, sizeof(label), "raw libzmq PUB/SUB, %zu subs", s_sizes[i]);
        bench_figure(label, raw[i].rate, "deliveries/s");
        s_print_cpu("raw PUB's process", s_sizes[i], &raw[i]);
    }
#ifdef BENCH_HAVE_MOSQUITTO
    mosquitto_lib_init();
    for (size_t i = 0; i < S_NPEER; i++) {
        if (!run[i] || !s_system_chosen("mosquitto"))
            continue;
        mosq[i] = s_mosquitto(s_sizes[i], &t, base);
        snprintf(label, sizeof(label), "mosquitto QoS 0, %zu subs", s_sizes[i]);
        bench_figure(label, mosq[i], "deliveries/s");
    }
    mosquitto_lib_cleanup();
#else
    bench_note("mosquitto: skipped (built without libmosquitto-dev)");
#endif
#ifdef BENCH_HAVE_NATS
    for (size_t i = 0; i < S_NPEER; i++) {
        if (!run[i] || !s_system_chosen("nats"))
            continue;
        nats[i] = s_nats(s_sizes[i], &t, base);
        snprintf(label, sizeof(label), "NATS core, %zu subs", s_sizes[i]);
        bench_figure(label, nats[i], "deliveries/s");
    }
#else
    bench_note("NATS: skipped (built without libnats-dev)");
#endif

    /* Enough pre-signed updates for a daemon that verifies on both cores
     * with room to spare; each run uses a fresh daemon, so the same
     * envelopes serve every run. */
    double vr = s_verify_rate_estimate();
    size_t per_pub = (size_t)(vr * 3.0 * (bench_secs(0, t.warm_ns + t.dur_ns) +
                                          1.0) /
                              S_PUBLISHERS);
    bench_envs_t envs[S_PUBLISHERS];
    uint64_t seq0 = (uint64_t)parley_now_ms() * 1000ull;
    for (size_t k = 0; k < S_PUBLISHERS; k++)
        if (bench_envs_sign(&envs[k], keys[k].key, per_pub, seq0, 2) < 0)
            return 1;
    bench_note("%zu pre-signed updates per publisher, %d publishers, "
               "window %d; parleyd fsync on", per_pub, S_PUBLISHERS,
               S_PUB_WINDOW);
    for (size_t i = 0; i < nsizes; i++) {
        if (!run[i] || !s_system_chosen("parley"))
            continue;
        pr[i] = s_parley_raw(s_sizes[i], &t, &o, base, keys, envs);
        s_print_parley("parley (raw ZMQ SUB on feed)", s_sizes[i], &pr[i]);
    }
    for (size_t i = 0; i < 2; i++) {
        if (!run[i] || !s_system_chosen("lib"))
            continue;
        pl[i] = s_parley_lib(s_sizes[i], &t, &o, base, keys, envs);
        s_print_parley("parley (parley_sub_t, re-verifying)", s_sizes[i],
                       &pl[i]);
    }

    bench_section("fan-out: ratios (same run)");
    for (size_t i = 0; i < nsizes; i++) {
        if (!run[i])
            continue;
        bool ten = s_sizes[i] == 10;
        snprintf(label, sizeof(label), "parley, %zu subs", s_sizes[i]);
        /* Issue 17: 1,000 subscribers >= 0.90 x raw libzmq. */
        bench_ratio(label, pr[i].w.rate, "del/s", "raw libzmq", raw[i].rate,
                    s_sizes[i] == 1000 ? 0.90 : 0, false);
        if (s_sizes[i] >= S_FLEET_FROM) {
            /* The less noisy figure: what fanning out costs the process
             * that does it, per delivery (parleyd's includes verifying,
             * storing and acking every update). */
            snprintf(label, sizeof(label), "parley, %zu subs, CPU/delivery",
                     s_sizes[i]);
            bench_ratio(label, s_us_per(pr[i].w.pub_cores, pr[i].w.rate),
                        "us", "raw PUB's process",
                        s_us_per(raw[i].pub_cores, raw[i].rate), 0, true);
        }
        if (i >= S_NPEER)
            continue;
        bench_ratio(label, pr[i].w.rate, "del/s", "mosquitto QoS 0", mosq[i],
                    ten ? 10.0 : 0, false);
        bench_ratio(label, pr[i].w.rate, "del/s", "NATS core", nats[i],
                    ten ? 1.0 : 0, false);
    }
    for (size_t k = 0; k < S_PUBLISHERS; k++)
        bench_envs_free(&envs[k]);
    bench_keys_free(keys, S_PUBLISHERS);
#ifdef BENCH_HAVE_NATS
    nats_Close();
#endif
    bench_tmpdir_remove(base);
    return 0;
}
