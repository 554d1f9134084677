/*
 * cluster_raw.c - raw nats.c references on a 3-node JetStream cluster
 * (issue 13), for the cluster benchmark to compare parley with.
 *
 * Starts three nats-server processes on loopback (the test harness's
 * cluster, file storage under $TMPDIR or /var/tmp), creates an R3 stream
 * and measures, with nats.c and nothing of parley:
 *
 *   1. async publish of 420-byte messages (a parley SignedUpdate's size)
 *      with up to 1024 in flight: acknowledged messages per second, and the
 *      CPU the three servers spend per message (utime + stime from
 *      /proc/PID/stat before and after), plus the publisher's own CPU;
 *   2. the same with a unique Nats-Msg-Id header on each message (what
 *      deduplication costs);
 *   3. sync publish latency (one message at a time): p50, p99, max;
 *   4. the JetStream 2.9 per-subject race: two connections to two
 *      servers publish on one subject at the same moment, both with
 *      Nats-Expected-Last-Subject-Sequence = the subject's last seq; once
 *      with distinct msg ids, once with the same msg id. Prints how many
 *      rounds stored both messages.
 *
 * BENCH_SOAK=SECONDS adds a last phase that keeps publishing (async, as
 * in 1) for that long, to watch the servers under load for longer than
 * their sync interval (docs/cluster.md: strace of the fsyncs).
 *
 * Not part of `make test`; `make bench` runs it (bench/run.sh).
 */
#include "bench.h"
#include "nats_harness.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define S_PAYLOAD 420
#define S_WINDOW 1024

static atomic_uint_fast64_t s_async_errors;

static void
s_on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pae;
    (void)closure;
    atomic_fetch_add(&s_async_errors, 1);
}

static int
s_connect(const char *const *urls, int n, natsConnection **nc, jsCtx **js)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, (const char **)urls, n);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        fprintf(stderr, "connect: %s\n", nats_GetLastError(NULL));
        return -EIO;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    jo.PublishAsync.MaxPending = S_WINDOW;
    jo.PublishAsync.ErrHandler = s_on_pub_error;
    jo.PublishAsync.StallWait = 10000; /* a slow (traced) server is no error */
    s = natsConnection_JetStream(js, *nc, &jo);
    return s == NATS_OK ? 0 : -EIO;
}

static double
s_self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double
s_servers_cpu(const ph_nats_cluster_t *c)
{
    double sum = 0;
    for (int i = 0; i < c->n; i++)
        sum += bench_proc_cpu(c->node[i].pid);
    return sum;
}

/* Async publish n messages; with_id adds a unique Nats-Msg-Id. Prints
 * the figures under the heading what (NULL: quiet). */
static int
s_async_run(jsCtx *js, const ph_nats_cluster_t *c, size_t n, bool with_id,
            const char *tag, const char *what)
{
    static char payload[S_PAYLOAD];
    memset(payload, 'p', sizeof(payload));
    atomic_store(&s_async_errors, 0);
    double cpu0 = s_servers_cpu(c), self0 = s_self_cpu();
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        char id[48];
        if (with_id) {
            snprintf(id, sizeof(id), "%s-%zu", tag, i);
            po.MsgId = id;
        }
        natsStatus s = js_PublishAsync(js, "raw.a", payload, S_PAYLOAD,
                                       with_id ? &po : NULL);
        if (s != NATS_OK) {
            fprintf(stderr, "publish %zu: %s\n", i, nats_GetLastError(NULL));
            return -EIO;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
        fprintf(stderr, "async publishes not all acknowledged in 60 s\n");
        return -ETIMEDOUT;
    }
    uint64_t t1 = bench_now_ns();
    double cpu = s_servers_cpu(c) - cpu0, self = s_self_cpu() - self0;
    double secs = bench_secs(t0, t1);
    if (what == NULL) /* quiet (the soak) */
        return atomic_load(&s_async_errors) == 0 ? 0 : -EIO;
    bench_section(what);
    bench_figure("acknowledged messages per second", (double)n / secs,
                 "msg/s");
    bench_figure("CPU of the three servers per message", cpu / (double)n * 1e6,
                 "us");
    bench_figure("CPU of the publisher per message", self / (double)n * 1e6,
                 "us");
    bench_note("%zu messages of %d bytes, up to %d in flight, %.2f s; %" PRIu64
               " errors",
               n, S_PAYLOAD, S_WINDOW, secs,
               (uint64_t)atomic_load(&s_async_errors));
    return atomic_load(&s_async_errors) == 0 ? 0 : -EIO;
}

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int
s_sync_run(jsCtx *js, size_t n)
{
    static char payload[S_PAYLOAD];
    memset(payload, 's', sizeof(payload));
    uint64_t *lat = calloc(n, sizeof(*lat));
    if (lat == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        uint64_t t0 = bench_now_ns();
        natsStatus s = js_Publish(&pa, js, "raw.s", payload, S_PAYLOAD, NULL,
                                  &jerr);
        lat[i] = bench_now_ns() - t0;
        jsPubAck_Destroy(pa);
        if (s != NATS_OK) {
            fprintf(stderr, "sync publish %zu: %s\n", i,
                    nats_GetLastError(NULL));
            free(lat);
            return -EIO;
        }
    }
    qsort(lat, n, sizeof(*lat), s_cmp_u64);
    bench_section("sync publish (one at a time), 420 bytes, R3");
    bench_figure("latency p50", (double)bench_percentile(lat, n, 50) / 1e3,
                 "us");
    bench_figure("latency p99", (double)bench_percentile(lat, n, 99) / 1e3,
                 "us");
    bench_figure("latency max", (double)lat[n - 1] / 1e3, "us");
    bench_note("%zu publishes", n);
    free(lat);
    return 0;
}

/* ------------------------------------------------------------ the race */

typedef struct s_racer {
    jsCtx *js;
    pthread_barrier_t *go;
    const char *subject;
    uint64_t expect;
    char id[64];
    bool stored;   /* stored as a new message */
    bool dup;
    jsErrCode jerr;
} s_racer_t;

static void *
s_race_main(void *arg)
{
    s_racer_t *r = arg;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = r->id;
    if (r->expect == 0)
        po.ExpectNoMessage = true;
    else
        po.ExpectLastSubjectSeq = r->expect;
    jsPubAck *pa = NULL;
    pthread_barrier_wait(r->go);
    natsStatus s = js_Publish(&pa, r->js, r->subject, r->id,
                              (int)strlen(r->id), &po, &r->jerr);
    r->stored = s == NATS_OK && !pa->Duplicate;
    r->dup = s == NATS_OK && pa->Duplicate;
    jsPubAck_Destroy(pa);
    return NULL;
}

static int
s_race_run(jsCtx *js1, jsCtx *js2, size_t rounds, bool same_id)
{
    const char *subject = same_id ? "raw.race.same" : "raw.race.distinct";
    uint64_t expect = 0;
    size_t both = 0, one = 0, none = 0;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    for (size_t r = 0; r < rounds; r++) {
        s_racer_t a = { .js = js1, .go = &go, .subject = subject,
                        .expect = expect };
        s_racer_t b = a;
        b.js = js2;
        snprintf(a.id, sizeof(a.id), "%s-%zu-%s", subject, r,
                 same_id ? "x" : "a");
        snprintf(b.id, sizeof(b.id), "%s-%zu-%s", subject, r,
                 same_id ? "x" : "b");
        pthread_t ta, tb;
        pthread_create(&ta, NULL, s_race_main, &a);
        pthread_create(&tb, NULL, s_race_main, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        size_t n = (size_t)a.stored + (size_t)b.stored;
        both += n == 2;
        one += n == 1;
        none += n == 0;
        /* The subject's last seq now. */
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        if (js_GetLastMsg(&m, js1, "RAW", subject, NULL, &jerr) != NATS_OK) {
            fprintf(stderr, "last message of %s: %s\n", subject,
                    nats_GetLastError(NULL));
            pthread_barrier_destroy(&go);
            return -EIO;
        }
        expect = natsMsg_GetSequence(m);
        natsMsg_Destroy(m);
    }
    pthread_barrier_destroy(&go);
    bench_section(same_id ? "race, same Nats-Msg-Id (parley's (signer, "
                            "signer_seq) id)"
                          : "race, distinct Nats-Msg-Id (expected last "
                            "subject seq alone)");
    bench_figure("rounds where both were stored", (double)both, "rounds");
    bench_figure("rounds where exactly one was stored", (double)one,
                 "rounds");
    bench_note("%zu rounds; two connections to two servers publish on one "
               "subject at once, both expecting its last seq; %zu rounds "
               "stored none",
               rounds, none);
    return 0;
}

int
main(int argc, char **argv)
{
    bench_opts_t opts;
    bench_opts_parse(&opts, argc, argv, "bench_cluster_raw",
                     "Raw nats.c references on a 3-node JetStream cluster "
                     "(R3): async publish rate and server CPU per message, "
                     "sync publish latency, the per-subject race.");
    size_t n_async = opts.quick ? 5000 : 50000;
    size_t n_sync = opts.quick ? 300 : 3000;
    size_t rounds = opts.quick ? 50 : 300;
    char dir[BENCH_PATH_MAX];
    if (bench_tmpdir_make(dir, sizeof(dir), "cluster") < 0)
        return 1;
    ph_nats_cluster_t c;
    ph_nats_opts_t no = { .nodes = 3, .dir = dir };
    int rc = ph_nats_start(&c, &no);
    if (rc < 0) {
        fprintf(stderr, "cannot start the cluster: %s\n", strerror(-rc));
        bench_tmpdir_remove(dir);
        return rc == -ENOENT ? 0 : 1;
    }
    printf("nats-server 3-node cluster (JetStream, file storage in %s), "
           "nats.c %s\n",
           dir, nats_GetVersion());

    const char *urls[3] = { c.node[0].url, c.node[1].url, c.node[2].url };
    natsConnection *nc = NULL, *nc1 = NULL, *nc3 = NULL;
    jsCtx *js = NULL, *js1 = NULL, *js3 = NULL;
    rc = s_connect(urls, 3, &nc, &js);
    if (rc == 0)
        rc = s_connect(&urls[0], 1, &nc1, &js1);
    if (rc == 0)
        rc = s_connect(&urls[2], 1, &nc3, &js3);
    if (rc == 0)
        rc = ph_nats_add_stream(&c, "RAW", "raw.>", 3, false, 20000);
    /* Warm up: connections, the stream's leader, the file store. */
    if (rc == 0)
        rc = s_async_run(js, &c, 2000, false, "warm",
                         "warm-up (not a result)");
    if (rc == 0)
        rc = s_async_run(js, &c, n_async, false, "plain",
                         "async publish, 420 bytes, R3");
    if (rc == 0)
        rc = s_async_run(js, &c, n_async, true, "dedupe",
                         "async publish with a unique Nats-Msg-Id, 420 "
                         "bytes, R3");
    if (rc == 0)
        rc = s_sync_run(js, n_sync);
    if (rc == 0)
        rc = s_race_run(js1, js3, rounds, false);
    if (rc == 0)
        rc = s_race_run(js1, js3, rounds, true);
    const char *soak = getenv("BENCH_SOAK");
    if (rc == 0 && soak != NULL && atoi(soak) > 0) {
        uint64_t t0 = bench_now_ns();
        uint64_t end = t0 + (uint64_t)atoi(soak) * 1000000000ull;
        size_t rounds_done = 0;
        while (rc == 0 && bench_now_ns() < end) {
            rc = s_async_run(js, &c, 20000, false, "soak", NULL);
            rounds_done++;
        }
        bench_section("soak (BENCH_SOAK)");
        bench_figure("acknowledged messages per second",
                     (double)rounds_done * 20000
                         / bench_secs(t0, bench_now_ns()),
                     "msg/s");
        bench_note("%zu x 20,000 messages in %.0f s", rounds_done,
                   bench_secs(t0, bench_now_ns()));
    }

    jsCtx_Destroy(js);
    jsCtx_Destroy(js1);
    jsCtx_Destroy(js3);
    natsConnection_Destroy(nc);
    natsConnection_Destroy(nc1);
    natsConnection_Destroy(nc3);
    ph_nats_stop(&c, rc != 0);
    bench_tmpdir_remove(dir);
    nats_CloseAndWait(5000);
    return rc == 0 ? 0 : 1;
}
