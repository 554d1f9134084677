/*
 * memory.c - parleyd's resident set with 1,000 and 10,000 connected
 * subscribers (issue 17, target 2).
 *
 * References (same run):
 *   - the same daemon idle, after it has accepted and stored a few
 *     updates with no subscriber, so that what is counted per subscriber
 *     is only what subscribers cost;
 *   - a bare libzmq XPUB process (this program re-executed with
 *     --raw-xpub) configured like parleyd's feed (SNDHWM 10000), sending
 *     the same Delivery bytes on the same five topics per update with the
 *     same pacing: what libzmq itself costs for the same traffic.
 *
 * For each: N raw ZMQ SUB sockets, each subscribed to "all/" and
 * "sys/heartbeat/", connect to the feed from child processes of this one
 * (bench_fleet: at most 2,000 sockets per process, one zmq I/O thread
 * each). Once every one has heard a heartbeat the resident set is read
 * (connections alone); then updates are published paced (500 at 200/s
 * for 1,000 subscribers: 100,000 deliveries/s; for N subscribers the same
 * deliveries per second, so 100 at 20/s for 10,000); then a burst, as
 * fast as one pipelining publisher gets them acked by parleyd (1,000
 * updates for 1,000 subscribers, 100 for 10,000: a million deliveries
 * either way; the raw XPUB sends its burst at the rate and in the group
 * commits parleyd's burst had). Every subscriber must receive every
 * update. VmHWM and VmRSS come from /proc/PID/status.
 */
#include "bench.h"

#include "codec.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_MIB (1024.0 * 1024.0)
#define S_NWARM 100
#define S_NPACED 500           /* paced updates for 1,000 subscribers */
#define S_PACED_NS 5000000ull  /* 200 updates/s for 1,000 subscribers */
#define S_NBURST 1000          /* burst for 1,000 subscribers */
#define S_PER_PROC 2000        /* subscriber sockets per child process */
#define S_MAX_RUNS 2

/* The traffic of a run with nsubs subscribers: the same deliveries per
 * second and per burst as 1,000 subscribers with the figures above. */
typedef struct s_plan {
    size_t nsubs;
    size_t npaced;
    uint64_t paced_ns;
    size_t nburst;
} s_plan_t;

static s_plan_t
s_plan(size_t nsubs)
{
    s_plan_t p = { .nsubs = nsubs, .npaced = S_NPACED,
                   .paced_ns = S_PACED_NS, .nburst = S_NBURST };
    if (nsubs > 1000) {
        p.npaced = S_NPACED * 1000 / nsubs;
        p.paced_ns = S_PACED_NS * nsubs / 1000;
        p.nburst = S_NBURST * 1000 / nsubs;
    }
    return p;
}

/* Publish envs through one publisher: pipelined (window 256), or paced
 * one at a time every pace_ns. Returns the number acked. */
static uint64_t
s_publish(const char *api, const bench_key_t *key, const bench_envs_t *envs,
          uint64_t pace_ns)
{
    if (pace_ns == 0) {
        atomic_int stop = 0;
        bench_pubber_t p = { .api = api, .key = key->key, .envs = envs,
                             .window = 256, .stop = &stop };
        bench_pubber_run(&p);
        if (p.first_error != 0)
            fprintf(stderr, "publisher: first error %s\n",
                    parley_error_name(p.first_error));
        return atomic_load(&p.acked);
    }
    parley_pub_t *pub = bench_pub_new(api, key->key);
    if (pub == NULL)
        return 0;
    uint64_t acked = 0, t0 = bench_now_ns();
    for (size_t i = 0; i < envs->n; i++) {
        uint64_t rid, seq, now = bench_now_ns(), due = t0 + i * pace_ns;
        if (due > now)
            bench_sleep_ns(due - now);
        if (parley_pub_send(pub, bench_env(envs, i), envs->lens[i], &rid) ==
                0 &&
            parley_pub_recv(pub, 5000, &rid, &seq) >= 0)
            acked++;
    }
    parley_pub_destroy(&pub);
    return acked;
}

/* Wait until every subscriber has delivered seq `last` (up to 60 s).
 * Returns how many have. */
static size_t
s_wait_seq(bench_counter_t *c, size_t n, uint64_t last)
{
    uint64_t t0 = bench_now_ns();
    size_t done = 0;
    for (;;) {
        done = 0;
        for (size_t i = 0; i < n; i++)
            done += atomic_load(&c[i].last_seq) >= last;
        if (done == n || bench_secs(t0, bench_now_ns()) > 60)
            return done;
        bench_sleep_ns(10000000);
    }
}

/* Wait until every subscriber has heard a heartbeat (up to 120 s). */
static size_t
s_wait_joined(bench_counter_t *c, size_t n)
{
    uint64_t t0 = bench_now_ns();
    size_t heard = 0;
    for (;;) {
        heard = 0;
        for (size_t i = 0; i < n; i++)
            heard += atomic_load(&c[i].other) > 0;
        if (heard == n || bench_secs(t0, bench_now_ns()) > 120)
            return heard;
        bench_sleep_ns(10000000);
    }
}

/* ------------------------------------------------ the bare XPUB child */

/* A command from the parent: publish count updates, interval_ns apart
 * (0 = back to back); op 'q' = exit. */
typedef struct s_cmd {
    char op;
    uint32_t count;
    uint32_t batch;       /* send this many back to back per interval */
    uint64_t interval_ns; /* between batches */
} s_cmd_t;

static const char *const s_topics[] = { "all/", "neg/gaza-ceasefire/",
                                        "party/israel/", "party/hamas/",
                                        "phase/1/" };

static int
s_raw_publish(void *sock, uint64_t seq, const uint8_t *env, size_t elen)
{
    uint8_t buf[BENCH_ENV_SLOT + 64];
    size_t len = 0;
    if (parley__delivery_encode(seq, parley_now_ms(), env, elen, buf,
                                sizeof(buf), &len) < 0)
        return -ENOBUFS;
    zmq_msg_t body;
    zmq_msg_init_size(&body, len);
    memcpy(zmq_msg_data(&body), buf, len);
    for (size_t t = 0; t < sizeof(s_topics) / sizeof(s_topics[0]); t++) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_send(sock, s_topics[t], strlen(s_topics[t]), ZMQ_SNDMORE);
        zmq_msg_copy(&part, &body);
        zmq_msg_send(&part, sock, 0);
    }
    zmq_msg_close(&body);
    return 0;
}

/*
 * What the bare XPUB child adds to libzmq's defaults (BENCH_MEMORY_BARE,
 * a diagnosis: which of parleyd's settings costs what per subscriber).
 * The reference of the targets is mode 0.
 */
#define S_BARE_ARENA 1  /* one malloc arena, as parleyd (main.c) */
#define S_BARE_ZAP 2    /* a ZAP handler that admits everyone (NULL) */
#define S_BARE_RETIRE 4 /* retire that handler once handshakes paused for
                           100 ms, then hand free pages back keeping the
                           heap's size, as parleyd does (daemon/heap.h) */
#define S_BARE_ZAP_EP "inproc://zeromq.zap.01"

/* Answer every ZAP request waiting on rep with 200. Returns how many. */
static int
s_bare_zap_serve(void *rep)
{
    int served = 0;
    for (;;) {
        zmq_msg_t f[8];
        size_t n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, rep, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&m);
                for (size_t i = 0; i < n; i++)
                    zmq_msg_close(&f[i]);
                return served;
            }
            more = zmq_msg_more(&m);
            if (n < 8)
                f[n++] = m;
            else
                zmq_msg_close(&m);
        }
        zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(rep, n > 1 ? zmq_msg_data(&f[1]) : "",
                 n > 1 ? zmq_msg_size(&f[1]) : 0, ZMQ_SNDMORE);
        zmq_send(rep, "200", 3, ZMQ_SNDMORE);
        zmq_send(rep, "OK", 2, ZMQ_SNDMORE);
        zmq_send(rep, "", 0, ZMQ_SNDMORE);
        zmq_send(rep, "", 0, 0);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        served++;
    }
}

/* The child: a bare XPUB on 127.0.0.1:port, driven over two pipes; mode
 * as S_BARE_*. */
static int
s_raw_child(int cmd_fd, int ack_fd, int port, int mode)
{
    if (mode & S_BARE_ARENA)
        mallopt(M_ARENA_MAX, 1);
    bench_key_t key;
    bench_envs_t one;
    if (bench_keys_make(&key, 1) < 0 || bench_envs_sign(&one, key.key, 1, 1, 1) < 0)
        return 1;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_XPUB);
    int zero = 0, hwm = 10000;
    char ep[BENCH_EP_MAX];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
    void *zap = NULL;
    if (mode & S_BARE_ZAP) {
        zap = zmq_socket(ctx, ZMQ_REP);
        zmq_setsockopt(zap, ZMQ_LINGER, &zero, sizeof(zero));
        if (zmq_bind(zap, S_BARE_ZAP_EP) != 0
            || zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "bare", 4) != 0)
            return 1;
    }
    zmq_setsockopt(sock, ZMQ_XPUB_VERBOSE, &zero, sizeof(zero));
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    char ok = zmq_bind(sock, ep) == 0 ? 'r' : 'e';
    if (write(ack_fd, &ok, 1) != 1 || ok != 'r')
        return 1;
    uint64_t seq = 0, next_hb = bench_now_ns();
    uint64_t served_at = 0, trim_at = 0;
    int attached = 0;
    uint8_t hb[2] = { 0x0a, 0x00 }; /* a Heartbeat-like frame: no seq */
    for (;;) {
        zmq_pollitem_t items[] = { { sock, 0, ZMQ_POLLIN, 0 },
                                   { NULL, cmd_fd, ZMQ_POLLIN, 0 },
                                   { zap, 0, ZMQ_POLLIN, 0 } };
        zmq_poll(items, zap != NULL ? 3 : 2, zap != NULL ? 10 : 100);
        char sub[64];
        while (zmq_recv(sock, sub, sizeof(sub), ZMQ_DONTWAIT) >= 0)
            ;
        if (zap != NULL) {
            int k = s_bare_zap_serve(zap);
            uint64_t now = bench_now_ns();
            if (k > 0) {
                attached += k;
                served_at = now;
            }
            if ((mode & S_BARE_RETIRE) && attached > 0
                && now - served_at > 100000000ull) {
                /* Retire: a fresh handler in its place, the old one
                 * closed (its pipes freed), the heap trimmed later. */
                void *fresh = zmq_socket(ctx, ZMQ_REP);
                zmq_setsockopt(fresh, ZMQ_LINGER, &zero, sizeof(zero));
                zmq_unbind(zap, S_BARE_ZAP_EP);
                zmq_bind(fresh, S_BARE_ZAP_EP);
                s_bare_zap_serve(zap);
                zmq_close(zap);
                zap = fresh;
                attached = 0;
                trim_at = now + 100000000ull;
            }
            if (trim_at != 0 && now >= trim_at) {
                malloc_trim(SIZE_MAX / 2);
                trim_at = 0;
            }
        }
        if (bench_now_ns() >= next_hb) {
            zmq_send(sock, "sys/heartbeat/", 14, ZMQ_SNDMORE);
            zmq_send(sock, hb, sizeof(hb), 0);
            next_hb += 1000000000ull;
        }
        if ((items[1].revents & ZMQ_POLLIN) == 0)
            continue;
        s_cmd_t cmd;
        if (read(cmd_fd, &cmd, sizeof(cmd)) != (ssize_t)sizeof(cmd) ||
            cmd.op == 'q')
            break;
        uint64_t t0 = bench_now_ns();
        uint32_t batch = cmd.batch > 0 ? cmd.batch : 1;
        for (uint32_t i = 0; i < cmd.count; i++) {
            uint64_t due = t0 + (i / batch) * cmd.interval_ns;
            uint64_t now = bench_now_ns();
            if (due > now)
                bench_sleep_ns(due - now);
            s_raw_publish(sock, ++seq, bench_env(&one, 0), one.lens[0]);
        }
        char done = 'd';
        if (write(ack_fd, &done, 1) != 1)
            break;
    }
    if (zap != NULL)
        zmq_close(zap);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    bench_envs_free(&one);
    bench_keys_free(&key, 1);
    return 0;
}

/*
 * BENCH_MEMORY_MALLOC_INFO=DIR (a diagnosis): write glibc's
 * malloc_info() of pid, as it is with its subscribers connected, to
 * DIR/TAG-N.xml (through gdb, which stops the process for a moment), and
 * its /proc/PID/smaps to DIR/TAG-N.smaps.
 */
static void
s_malloc_info(pid_t pid, const char *tag, size_t n)
{
    const char *dir = getenv("BENCH_MEMORY_MALLOC_INFO");
    if (dir == NULL || dir[0] == '\0' || tag == NULL)
        return;
    char cmd[BENCH_PATH_MAX * 2 + 512];
    snprintf(cmd, sizeof(cmd),
             "gdb -p %d -batch -nx "
             "-ex 'set $f = (void *)fopen(\"%s/%s-%zu.xml\", \"w\")' "
             "-ex 'call (int)malloc_info(0, $f)' "
             "-ex 'call (int)fclose($f)' >/dev/null 2>&1; "
             "cat /proc/%d/smaps > \"%s/%s-%zu.smaps\"",
             (int)pid, dir, tag, n, (int)pid, dir, tag, n);
    if (system(cmd) != 0)
        fprintf(stderr, "malloc_info of %d: gdb failed\n", (int)pid);
}


/* What is measured for one publisher process. */
typedef struct s_mem {
    uint64_t idle_hwm, idle_rss, storm_hwm, conn_rss, paced_hwm, peak_hwm,
        peak_rss;
    bool hwm_reset;      /* paced and burst peaks are each phase's own */
    size_t opened, heard, done_p, done_b;
    double burst_rate;   /* updates/s the burst reached */
    double burst_batch;  /* parleyd: updates per group commit in the burst */
    double join_secs;    /* from the first connect to the last heartbeat
                            heard: how the crowd arrived */
    bool ok;
} s_mem_t;

/* The process under test and how to make it publish. */
typedef struct s_target {
    pid_t pid;
    const char *feed;
    /* parley */
    const char *api;
    const bench_key_t *key;
    const bench_envs_t *warm, *paced, *burst;
    s_plan_t plan;
    const char *tag;     /* names its malloc_info() dump */
    /* raw child */
    int cmd_fd, ack_fd;
    double burst_rate;   /* raw: pace the burst at this rate */
    double burst_batch;  /* raw: in batches of this size */
} s_target_t;

/* Publish phase 0 (warm), 1 (paced), 2 (burst). Returns updates acked. */
static uint64_t
s_target_publish(s_target_t *t, int phase)
{
    const bench_envs_t *all = phase == 0 ? t->warm : phase == 1 ? t->paced
                                                                : t->burst;
    /* The first envelopes of the set, as many as the plan says. */
    bench_envs_t e = *all;
    if (phase == 1)
        e.n = t->plan.npaced;
    else if (phase == 2)
        e.n = t->plan.nburst;
    uint64_t pace = phase == 1 ? t->plan.paced_ns : 0;
    if (t->api != NULL)
        return s_publish(t->api, t->key, &e, pace);
    s_cmd_t cmd = { .op = 'p', .count = (uint32_t)e.n, .batch = 1,
                    .interval_ns = pace };
    if (phase == 2 && t->burst_rate > 0) {
        /* The shape parleyd gave the burst: group commits of burst_batch
         * updates published together, at its average rate. */
        cmd.batch = t->burst_batch >= 1 ? (uint32_t)(t->burst_batch + 0.5) : 1;
        cmd.interval_ns = (uint64_t)(1e9 * cmd.batch / t->burst_rate);
    }
    char done;
    if (write(t->cmd_fd, &cmd, sizeof(cmd)) != (ssize_t)sizeof(cmd) ||
        read(t->ack_fd, &done, 1) != 1)
        return 0;
    return e.n;
}

static void
s_measure(s_target_t *t, size_t nsubs, s_mem_t *m)
{
    memset(m, 0, sizeof(*m));
    if (s_target_publish(t, 0) != S_NWARM)
        fprintf(stderr, "warm-up publishes were not all acked\n");
    bench_sleep_ns(200000000);
    bench_proc_mem(t->pid, &m->idle_hwm, &m->idle_rss);

    static const char *const topics[] = { "all/", "sys/heartbeat/", NULL };
    bench_fleet_t fleet;
    uint64_t tj = bench_now_ns();
    if (bench_fleet_start(&fleet, t->feed, topics, nsubs, S_PER_PROC, true)
        < 0)
        return;
    bench_counter_t *c = fleet.c;
    size_t opened = m->opened = nsubs;
    m->heard = s_wait_joined(c, opened);
    m->join_secs = bench_secs(tj, bench_now_ns());
    /* The peak of the connections' arrival (parleyd: with the ZAP pipes
     * libzmq keeps until the handler is retired, S_QUIET_MS + S_GRACE_MS
     * + S_TRIM_DELAY_MS after the last arrival in zap_handler.c); then,
     * a second later, what the connections hold once settled. */
    uint64_t unused;
    bench_proc_mem(t->pid, &m->storm_hwm, &unused);
    bench_sleep_ns(1000000000);
    bench_proc_mem(t->pid, &unused, &m->conn_rss);
    s_malloc_info(t->pid, t->tag, nsubs);

    /* Each phase's peak on its own: VmHWM restarts from VmRSS. */
    m->hwm_reset = bench_proc_hwm_reset(t->pid) == 0;
    uint64_t acked_p = s_target_publish(t, 1);
    m->done_p = s_wait_seq(c, opened, S_NWARM + acked_p);
    bench_proc_mem(t->pid, &m->paced_hwm, &unused);
    if (m->hwm_reset)
        (void)bench_proc_hwm_reset(t->pid);

    bench_daemon_t sd = { .pid = t->pid };
    uint64_t syncs0 = 0, recs0 = 0;
    if (t->api != NULL) {
        snprintf(sd.api, sizeof(sd.api), "%s", t->api);
        syncs0 = bench_daemon_stat(&sd, "store_syncs", NULL);
        recs0 = bench_daemon_stat(&sd, "store_records_synced", NULL);
    }
    uint64_t tb = bench_now_ns();
    uint64_t acked_b = s_target_publish(t, 2);
    m->burst_rate = (double)acked_b / bench_secs(tb, bench_now_ns());
    if (t->api != NULL) {
        uint64_t syncs = bench_daemon_stat(&sd, "store_syncs", NULL) - syncs0;
        uint64_t recs =
            bench_daemon_stat(&sd, "store_records_synced", NULL) - recs0;
        m->burst_batch = syncs > 0 ? (double)recs / (double)syncs : 0;
    }
    m->done_b = s_wait_seq(c, opened, S_NWARM + acked_p + acked_b);
    bench_sleep_ns(200000000);
    bench_proc_mem(t->pid, &m->peak_hwm, &m->peak_rss);
    m->ok = m->done_b == opened && opened == nsubs
            && acked_b == t->plan.nburst;
    bench_fleet_stop(&fleet);
}

/* Bytes per subscriber between two readings. */
static double
s_per(uint64_t with, uint64_t without, size_t n)
{
    return ((double)with - (double)without) / (double)(n > 0 ? n : 1);
}

static void
s_report(const char *who, const s_mem_t *m, const s_mem_t *ref,
         const s_plan_t *p, bool targets)
{
    char name[96];
    size_t n = m->opened;
    const char *rn = "bare libzmq XPUB";
    /* The targets of issue 17 hold from 1,000 subscribers on. */
    double goal = targets && ref != NULL && p->nsubs >= 1000 ? 1.10 : 0;
    printf("  -- %s, %zu subscribers\n", who, p->nsubs);
    bench_figure("idle (no subscribers), VmHWM", m->idle_hwm / S_MIB, "MiB");
    snprintf(name, sizeof(name), "%zu subscribers arriving, VmHWM", n);
    if (ref != NULL)
        bench_ratio(name, m->storm_hwm / S_MIB, "MiB", rn,
                    ref->storm_hwm / S_MIB, 0, true);
    else
        bench_figure(name, m->storm_hwm / S_MIB, "MiB");
    snprintf(name, sizeof(name), "%zu subscribers connected, VmRSS", n);
    if (ref != NULL)
        bench_ratio(name, m->conn_rss / S_MIB, "MiB", rn,
                    ref->conn_rss / S_MIB, 0, false);
    else
        bench_figure(name, m->conn_rss / S_MIB, "MiB");
    snprintf(name, sizeof(name), "  + %zu updates at %.0f/s, VmHWM",
             p->npaced, 1e9 / (double)p->paced_ns);
    if (ref != NULL)
        bench_ratio(name, m->paced_hwm / S_MIB, "MiB", rn,
                    ref->paced_hwm / S_MIB, 0, false);
    else
        bench_figure(name, m->paced_hwm / S_MIB, "MiB");
    snprintf(name, sizeof(name), "  + burst of %zu at %.0f/s, VmHWM",
             p->nburst, m->burst_rate);
    if (m->burst_batch > 0)
        bench_note("parleyd published the burst in group commits of %.1f "
                   "updates on average", m->burst_batch);
    if (ref != NULL)
        bench_ratio(name, m->peak_hwm / S_MIB, "MiB", rn,
                    ref->peak_hwm / S_MIB, goal, true);
    else
        bench_figure(name, m->peak_hwm / S_MIB, "MiB");
    double conn = s_per(m->conn_rss, m->idle_rss, n);
    if (ref != NULL)
        bench_ratio("bytes/subscriber connected (RSS - idle RSS)", conn, "B",
                    rn, s_per(ref->conn_rss, ref->idle_rss, ref->opened), goal,
                    true);
    else
        bench_figure("bytes/subscriber connected (RSS - idle RSS)", conn, "B");
    bench_figure("bytes/subscriber paced peak (HWM - idle RSS)",
                 s_per(m->paced_hwm, m->idle_rss, n), "B");
    if (ref != NULL)
        bench_ratio("bytes/subscriber burst peak (HWM - idle RSS)",
                    s_per(m->peak_hwm, m->idle_rss, n), "B", rn,
                    s_per(ref->peak_hwm, ref->idle_rss, ref->opened), 0, true);
    else
        bench_figure("bytes/subscriber burst peak (HWM - idle RSS)",
                     s_per(m->peak_hwm, m->idle_rss, n), "B");
    bench_note("the %zu subscribers took %.1f s from the first connect to "
               "the last one's first heartbeat", n, m->join_secs);
    if (!m->hwm_reset)
        bench_note("VmHWM could not be reset (clear_refs): the paced and "
                   "burst peaks include the arrival's");
    if (!m->ok || m->heard != m->opened)
        bench_note("INCOMPLETE: %zu/%zu heard a heartbeat, %zu got every "
                   "paced update, %zu every burst update",
                   m->heard, m->opened, m->done_p, m->done_b);
}

/* Start this program again as the bare XPUB child (mode: S_BARE_*). */
static pid_t
s_raw_start(s_target_t *t, char *feed, size_t cap, int mode)
{
    int cmd[2], ack[2];
    if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(ack, O_CLOEXEC) != 0)
        return -1;
    int port = bench_free_port();
    snprintf(feed, cap, "tcp://127.0.0.1:%d", port);
    char a[16], b[16], p[16], m[16];
    snprintf(a, sizeof(a), "%d", cmd[0]);
    snprintf(b, sizeof(b), "%d", ack[1]);
    snprintf(p, sizeof(p), "%d", port);
    snprintf(m, sizeof(m), "%d", mode);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Die with the parent; keep the child's pipe ends across exec. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        fcntl(cmd[0], F_SETFD, 0);
        fcntl(ack[1], F_SETFD, 0);
        execl("/proc/self/exe", "bench_memory", "--raw-xpub", a, b, p, m,
              (char *)NULL);
        _exit(127);
    }
    close(cmd[0]);
    close(ack[1]);
    t->pid = pid;
    t->cmd_fd = cmd[1];
    t->ack_fd = ack[0];
    t->feed = feed;
    char ready = 0;
    if (pid < 0 || read(t->ack_fd, &ready, 1) != 1 || ready != 'r') {
        fprintf(stderr, "bare XPUB child did not start\n");
        return -1;
    }
    return pid;
}

/*
 * Run the bare XPUB child in mode (S_BARE_*) through a whole measurement
 * into m. Returns 0, or -1 when the child did not start.
 */
static int
s_bare(s_target_t *rt, int mode, s_mem_t *m)
{
    char feed[BENCH_EP_MAX];
    if (s_raw_start(rt, feed, sizeof(feed), mode) <= 0)
        return -1;
    s_measure(rt, rt->plan.nsubs, m);
    s_cmd_t q = { .op = 'q' };
    if (write(rt->cmd_fd, &q, sizeof(q)) != (ssize_t)sizeof(q))
        kill(rt->pid, SIGTERM);
    waitpid(rt->pid, NULL, 0);
    close(rt->cmd_fd);
    close(rt->ack_fd);
    return 0;
}

/*
 * BENCH_MEMORY_BARE="1 3 7" (a diagnosis): the bare XPUB again with
 * parleyd's settings added one by one (S_BARE_* summed: 1 one malloc
 * arena, 2 a ZAP handler, 4 its retirement), each against ref (mode 0).
 */
static void
s_bare_variants(s_target_t *rt, const s_mem_t *ref)
{
    const char *env = getenv("BENCH_MEMORY_BARE");
    if (env == NULL || env[0] == '\0')
        return;
    char *end;
    for (const char *q = env; *q != '\0'; q = end) {
        long mode = strtol(q, &end, 10);
        if (end == q) {
            end = (char *)q + 1;
            continue;
        }
        s_mem_t m;
        char tag[16], who[96];
        snprintf(tag, sizeof(tag), "bare%ld", mode);
        snprintf(who, sizeof(who), "bare XPUB%s%s%s (mode %ld)",
                 (mode & S_BARE_ARENA) ? ", one arena" : "",
                 (mode & S_BARE_ZAP) ? ", ZAP handler" : "",
                 (mode & S_BARE_RETIRE) ? " retired" : "", mode);
        rt->tag = tag;
        if (s_bare(rt, (int)mode, &m) == 0)
            s_report(who, &m, ref, &rt->plan, false);
    }
}

int
main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--raw-xpub") == 0)
        return s_raw_child(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                           atoi(argv[5]));
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_memory",
                     "parleyd RSS with 1,000 and 10,000 subscribers, bytes per "
                     "subscriber, against a bare libzmq XPUB.");
    if (sodium_init() < 0)
        return 1;
    size_t sizes[S_MAX_RUNS] = { 1000, 10000 }, nruns = S_MAX_RUNS;
    if (o.quick) {
        sizes[0] = 200;
        nruns = 1;
    }
    /* BENCH_MEMORY_SIZES="1000": some sizes only, for a diagnosis. */
    const char *only = getenv("BENCH_MEMORY_SIZES");
    if (only != NULL && only[0] != '\0') {
        nruns = 0;
        char *end;
        for (const char *q = only; *q != '\0' && nruns < S_MAX_RUNS; q = end) {
            unsigned long long v = strtoull(q, &end, 10);
            if (end == q) {
                end = (char *)q + 1;
                continue;
            }
            if (v > 0)
                sizes[nruns++] = (size_t)v;
        }
    }

    char base[BENCH_PATH_MAX], ring[BENCH_PATH_MAX + 16];
    if (bench_tmpdir_make(base, sizeof(base), "memory") < 0)
        return 1;
    snprintf(ring, sizeof(ring), "%s/keyring", base);
    bench_key_t key;
    if (bench_keys_make(&key, 1) < 0 || bench_keyring_write(ring, &key, 1) < 0)
        return 1;
    bench_envs_t warm, paced, burst;
    uint64_t seq0 = (uint64_t)parley_now_ms() * 1000ull;
    if (bench_envs_sign(&warm, key.key, S_NWARM, seq0, 2) < 0 ||
        bench_envs_sign(&paced, key.key, S_NPACED, seq0 + S_NWARM, 2) < 0 ||
        bench_envs_sign(&burst, key.key, S_NBURST,
                        seq0 + S_NWARM + S_NPACED, 2) < 0)
        return 1;

    bench_section("memory: resident set with many subscribers");
    bench_note("subscribers in child processes (%d sockets each); the same "
               "deliveries per second and per burst at every size; %s run",
               S_PER_PROC, o.quick ? "quick" : "full");

    int rc = 0;
    for (size_t r = 0; r < nruns; r++) {
        s_plan_t plan = s_plan(sizes[r]);
        bench_daemon_t d;
        s_mem_t pm, rm;
        char tag[32], dir[BENCH_PATH_MAX + 48], ringr[BENCH_PATH_MAX + 64];
        snprintf(tag, sizeof(tag), "parley-%zu", plan.nsubs);
        snprintf(dir, sizeof(dir), "%s/%s", base, tag);
        snprintf(ringr, sizeof(ringr), "%s/keyring", dir);
        if (mkdir(dir, 0700) < 0 || bench_keyring_write(ringr, &key, 1) < 0
            || bench_daemon_start_conf(&d, o.parleyd, dir, true,
                                       "max_connections 12000\n", 10000)
                   < 0) {
            rc = 1;
            break;
        }
        s_target_t pt = { .pid = d.pid, .feed = d.feed, .api = d.api,
                          .key = &key, .warm = &warm, .paced = &paced,
                          .burst = &burst, .plan = plan, .cmd_fd = -1,
                          .ack_fd = -1, .tag = "parleyd" };
        s_measure(&pt, plan.nsubs, &pm);
        int st = bench_daemon_stop(&d);
        if (st != 0)
            fprintf(stderr, "parleyd exited with status %d\n", st);

        s_target_t rt = { .warm = &warm, .paced = &paced, .burst = &burst,
                          .plan = plan, .burst_rate = pm.burst_rate,
                          .burst_batch = pm.burst_batch, .tag = "bare" };
        if (s_bare(&rt, 0, &rm) == 0) {
            s_report("bare libzmq XPUB (same traffic)", &rm, NULL, &plan,
                     false);
            s_report("parleyd", &pm, &rm, &plan, true);
            s_bare_variants(&rt, &rm);
        } else {
            s_report("parleyd", &pm, NULL, &plan, true);
        }
        if (!pm.ok)
            rc = 1;
    }
    bench_envs_free(&burst);
    bench_envs_free(&paced);
    bench_envs_free(&warm);
    bench_keys_free(&key, 1);
    bench_tmpdir_remove(base);
    return rc;
}
