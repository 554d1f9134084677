/*
 * subscriber.c - how fast one parley_sub_t hands out verified updates,
 * against one core's raw Ed25519 verification (issue 17, target 4).
 *
 * References (this process, same run): crypto_sign_verify_detached over
 * the exact signed bytes of a typical update, one thread and two, sampled
 * before, between and after the subscriber runs (the best sample counts:
 * the conservative choice for parley's ratios); parley_delivery_decode()
 * of the typical Delivery on one thread (the library's whole per-update
 * work, without sockets).
 *
 * parley: one parleyd (fsync off: the daemon is not under test) holds a
 * log of M updates published before the timed part.
 *   - catch-up: a parley_sub_t with PARLEY_START_SEQ at 1 (a replay of
 *     the whole log, pages of 256), timed from the return of
 *     parley_sub_new() (which waits for the daemon's first heartbeat, up
 *     to a second; printed, not timed) to the delivery of the head, with
 *     verify_threads 1 and 2, in alternating rounds;
 *   - live burst: a parley_sub_t started LIVE (receive HWM above the
 *     burst) does not read while K updates are published and acked; once
 *     they are all in its feed queue it drains them, timed from its first
 *     parley_sub_next() to the delivery of the last. This is the live
 *     path (feed, merge, verify, hand out) with the daemon idle: on this
 *     2-core machine a daemon ingesting at the same time needs about as
 *     much CPU per update as the subscriber, so a figure taken during
 *     ingest measures the sharing of the cores, not the subscriber.
 *     Also a raw ZMQ SUB draining the same burst: what the socket alone
 *     costs.
 * Every subscriber must hand out every update once, in order, with no
 * reject and no gap (checked; a run that does not is reported failed).
 *
 * Where the cores went in each run: the CPU of this process's threads by
 * role (the caller, the parley-verify threads, libzmq's) and of parleyd,
 * from /proc; from their sum per update, the rate the machine's cores
 * allow if that work were spread over them perfectly; and what the
 * caller's thread met when it took results verified ahead.
 */
#include "bench.h"
#include "codec.h"
#include "preverify.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define S_HAVE_CALLGRIND 1
#endif
#endif

#define S_ROUNDS 2
#define S_HWM 1000000

/* Lowest CPU microseconds per raw verify seen in any sample of the run. */
static double s_us_per_verify;

/* parley_delivery_decode() of one Delivery per second, one thread. */
static double
s_lib_decode(const uint8_t *dlv, size_t len, uint64_t dur_ns)
{
    parley_delivery_t *d = parley_delivery_new();
    if (d == NULL)
        return 0;
    uint64_t t0 = bench_now_ns(), n = 0;
    while (bench_now_ns() - t0 < dur_ns)
        for (int i = 0; i < 50; i++)
            n += parley_delivery_decode(NULL, dlv, len, d) == 0;
    parley_delivery_destroy(&d);
    return (double)n / bench_secs(t0, bench_now_ns());
}

static double
s_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ parley */

/* CPU used so far by this process's threads and by parleyd. */
typedef struct s_probe {
    bench_threads_t self;
    double daemon;      /* CPU seconds of parleyd */
} s_probe_t;

static void
s_probe_read(const bench_daemon_t *d, s_probe_t *p)
{
    bench_threads_cpu(getpid(), &p->self);
    p->daemon = bench_proc_cpu(d->pid);
}

typedef struct s_run {
    double rate;        /* deliveries/s */
    double cpu_us;      /* CPU of the calling thread per delivery */
    bench_threads_t cores;  /* cores this process's threads used */
    double daemon_cores;    /* ... and parleyd */
    parley__preverify_counts_t vc; /* what the caller met (threads > 1) */
    double connect_ms;      /* catch-up: parley_sub_new(), not timed */
    bool ok;
} s_run_t;

static parley_sub_t *
s_sub_new(const char *api, parley_start_t start, int threads)
{
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.server = api;
    o.start = start;
    o.since_seq = 1;
    o.rcvhwm = S_HWM;
    o.verify_threads = threads;
    return parley_sub_new(&o);
}

/*
 * Take events from sub until the delivery of seq last (or secs pass):
 * every seq from *next on must come once, in order, as a delivery; *next
 * ends after the last one taken. Returns 0, or -1 after saying on stderr
 * what went wrong.
 */
static int
s_take(parley_sub_t *sub, uint64_t *next, uint64_t last, unsigned secs,
       const char *what)
{
    uint64_t deadline = bench_now_ns() + secs * 1000000000ull;
    while (*next <= last && bench_now_ns() < deadline) {
        const parley_event_t *ev;
        int rc = parley_sub_next(sub, 1000, &ev);
        if (rc == 0 || rc == PARLEY_ETIMEOUT)
            continue;
        if (rc < 0) {
            fprintf(stderr, "%s: parley_sub_next: %s\n", what,
                    parley_error_name(rc));
            return -1;
        }
        parley_event_type_t type = parley_event_type(ev);
        if (type == PARLEY_EVENT_DELIVERY) {
            uint64_t seq = parley_event_seq(ev);
            if (seq != *next) {
                fprintf(stderr, "%s: seq %llu where %llu was due\n", what,
                        (unsigned long long)seq, (unsigned long long)*next);
                return -1;
            }
            (*next)++;
        } else if (type == PARLEY_EVENT_GAP || type == PARLEY_EVENT_REJECTED) {
            fprintf(stderr, "%s: %s at seq %llu\n", what,
                    type == PARLEY_EVENT_GAP ? "gap" : "reject",
                    (unsigned long long)parley_event_seq(ev));
            return -1;
        }
    }
    return *next > last ? 0 : -1;
}

/*
 * Hand out events until the delivery of seq `last`; every seq from
 * `first` on must come once, in order, as a delivery. The clock starts
 * at the first call.
 */
static s_run_t
s_drain(const bench_daemon_t *d, parley_sub_t *sub, uint64_t first,
        uint64_t last, const char *what)
{
    s_run_t r = { 0 };
    uint64_t next = first;
    s_probe_t p0, pend;
    s_probe_read(d, &p0);
    double c0 = s_thread_cpu();
    uint64_t t0 = bench_now_ns();
    if (s_take(sub, &next, last, 120, what) < 0)
        return r;
    double secs = bench_secs(t0, bench_now_ns());
    uint64_t n = last - first + 1;
    r.ok = next > last;
    r.rate = (double)n / secs;
    r.cpu_us = (s_thread_cpu() - c0) / (double)n * 1e6;
    /* Before parley_sub_destroy(): the verify threads' CPU goes with
     * them. */
    s_probe_read(d, &pend);
    r.cores = bench_threads_cores(&p0.self, &pend.self, secs);
    r.daemon_cores = (pend.daemon - p0.daemon) / secs;
    r.vc = parley__sub_verify_counts(sub);
    if (!r.ok)
        fprintf(stderr, "%s: stopped at seq %llu of %llu\n", what,
                (unsigned long long)next, (unsigned long long)last);
    return r;
}

/*
 * Replay catch-up of seqs 1..head with `threads` verify threads, timed
 * from the return of parley_sub_new(), which waits for the daemon's first
 * heartbeat (they come once a second: up to a second that has nothing to
 * do with the catch-up's pace; r.connect_ms says how long it was).
 */
static s_run_t
s_catchup(const bench_daemon_t *d, uint64_t head, int threads)
{
    uint64_t t0 = bench_now_ns();
    parley_sub_t *sub = s_sub_new(d->api, PARLEY_START_SEQ, threads);
    if (sub == NULL) {
        fprintf(stderr, "catch-up: parley_sub_new: %s\n", strerror(errno));
        return (s_run_t){ 0 };
    }
    double connect_ms = bench_secs(t0, bench_now_ns()) * 1e3;
    s_run_t r = s_drain(d, sub, 1, head, "catch-up");
    r.connect_ms = connect_ms;
    parley_sub_destroy(&sub);
    return r;
}

/* Publish envs [from, from + n) through one pipelining publisher. */
static uint64_t
s_publish(const char *api, const parley_key_t *key, const bench_envs_t *all,
          size_t from, size_t n)
{
    bench_envs_t part = { .n = n, .slots = all->slots + from * BENCH_ENV_SLOT,
                          .lens = all->lens + from };
    atomic_int stop = 0;
    bench_pubber_t p = { .api = api, .key = key, .envs = &part,
                         .window = 256, .stop = &stop };
    bench_pubber_run(&p);
    if (p.first_error != 0)
        fprintf(stderr, "publisher: first error %s\n",
                parley_error_name(p.first_error));
    return atomic_load(&p.acked);
}

/* Wait until the daemon's head is want (up to 30 s). */
static int
s_wait_head(const bench_daemon_t *d, uint64_t want)
{
    for (int i = 0; i < 3000; i++) {
        uint64_t head = 0;
        if (bench_ping(d->api, 1000, &head) == 0 && head >= want)
            return 0;
        bench_sleep_ns(10000000);
    }
    return -ETIMEDOUT;
}

/*
 * A live burst: a subscriber that does not read while envs [from, from +
 * n) are published, then drains them. *head is the daemon's head (moved
 * on by n).
 */
static s_run_t
s_burst(const bench_daemon_t *d, const parley_key_t *key,
        const bench_envs_t *envs, size_t from, size_t n, uint64_t *head,
        int threads)
{
    parley_sub_t *sub = s_sub_new(d->api, PARLEY_START_LIVE, threads);
    if (sub == NULL) {
        fprintf(stderr, "burst: parley_sub_new: %s\n", strerror(errno));
        return (s_run_t){ 0 };
    }
    /* Connected: take CONNECTED (and anything else waiting). */
    const parley_event_t *ev;
    while (parley_sub_next(sub, 0, &ev) == 1)
        ;
    uint64_t first = *head + 1;
    uint64_t acked = s_publish(d->api, key, envs, from, n);
    *head += acked;
    /* Let the feed bring all of it into the subscriber's queue. */
    bench_sleep_ns(300000000);
    s_run_t r = { 0 };
    if (acked == n)
        r = s_drain(d, sub, first, *head, "live burst");
    else
        fprintf(stderr, "burst: %llu of %zu acked\n",
                (unsigned long long)acked, n);
    parley_sub_destroy(&sub);
    return r;
}

/* A raw ZMQ SUB on the feed draining a burst of n (the socket's cost). */
static double
s_raw_burst(const bench_daemon_t *d, const parley_key_t *key,
            const bench_envs_t *envs, size_t from, size_t n, uint64_t *head)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_SUB);
    int hwm = S_HWM, zero = 0;
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, "all/", 4);
    zmq_connect(s, d->feed);
    bench_sleep_ns(300000000);
    uint64_t acked = s_publish(d->api, key, envs, from, n);
    uint64_t last = *head + acked;
    *head = last;
    bench_sleep_ns(300000000);
    uint64_t t0 = bench_now_ns(), got = 0, seq = 0;
    uint8_t buf[BENCH_ENV_SLOT + 256];
    while (seq < last && bench_secs(t0, bench_now_ns()) < 60) {
        int more = 0;
        size_t ml = sizeof(more);
        int len = zmq_recv(s, buf, sizeof(buf), 0);
        if (len < 0)
            break;
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
        if (more)
            continue;
        seq = bench_delivery_seq(buf, (size_t)len);
        got++;
    }
    double secs = bench_secs(t0, bench_now_ns());
    zmq_close(s);
    zmq_ctx_term(ctx);
    return got == acked && acked > 0 ? (double)got / secs : 0;
}

/*
 * Where the cores went in run r (verify_threads th, what: "catch-up" or
 * "live burst"): this process's threads and parleyd, per update; the rate
 * the machine allows if all of that work were spread over its cores (and,
 * with one thread, the caller's own CPU per update, which is serial); and
 * what the caller's thread met when it took results verified ahead.
 */
static void
s_cores_note(const s_run_t *r, int th, const char *what, double v1)
{
    if (r->rate <= 0)
        return;
    const bench_threads_t *c = &r->cores;
    double per = 1e6 / r->rate;
    double total = (c->main + c->workers + c->io + c->other
                    + r->daemon_cores) * per;
    double allows = total > 0 ? (double)bench_cpus() / total * 1e6 : 0;
    if (th == 1 && r->cpu_us > 0 && 1e6 / r->cpu_us < allows)
        allows = 1e6 / r->cpu_us;
    bench_note("verify_threads %d, %s: cores used: caller %.2f, verify "
               "threads %.2f, libzmq I/O %.2f, other %.2f, parleyd %.2f; "
               "per update %.1f + %.1f + %.1f + %.1f + %.1f us",
               th, what, c->main, c->workers, c->io, c->other,
               r->daemon_cores, c->main * per, c->workers * per, c->io * per,
               c->other * per, r->daemon_cores * per);
    bench_note("  %s: %u cores / %.1f us%s = %.0f upd/s = %.2f x raw verify "
               "1 core is what this machine allows here (measured %.2f x)",
               what, bench_cpus(), total,
               th == 1 ? " (and the caller's serial CPU)" : "", allows,
               v1 > 0 ? allows / v1 : 0, v1 > 0 ? r->rate / v1 : 0);
    const parley__preverify_counts_t *v = &r->vc;
    if (v->starved > 0)
        bench_note("  %s: the caller waited %llu times for a replay page "
                   "with nothing to hand out", what,
                   (unsigned long long)v->starved);
    if (v->taken == 0)
        return;
    double t = (double)v->taken;
    bench_note("  %s: of %llu results the caller took, %.0f%% were ready, "
               "%.0f%% it verified itself, and it verified %.0f%% more "
               "while a worker was on its next; %.2f waits per 1,000; "
               "%.1f offered not started at each take; %llu not offered",
               what, (unsigned long long)v->taken, 100.0 * (double)v->ready / t,
               100.0 * (double)v->own / t, 100.0 * (double)v->helped / t,
               1000.0 * (double)v->waits / t, (double)v->pending_sum / t,
               (unsigned long long)v->unoffered);
}

/* Keep the best of two. */
static double
s_max(double a, double b)
{
    return a > b ? a : b;
}


/* A fresh temporary directory (tag) into base (BENCH_PATH_MAX bytes) and
 * the signer, with a keyring for it there. 0 or -1. */
static int
s_base_and_key(char *base, const char *tag, bench_key_t *key)
{
    char ring[BENCH_PATH_MAX + 16];
    if (bench_tmpdir_make(base, BENCH_PATH_MAX, tag) < 0)
        return -1;
    snprintf(ring, sizeof(ring), "%s/keyring", base);
    if (bench_keys_make(key, 1) < 0 || bench_keyring_write(ring, key, 1) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ callgrind */

/*
 * --callgrind: the noise-free guard of target 4. A subscriber process
 * (this program again, "--cg-child", with verify_threads 1) runs under
 * valgrind's callgrind against parleyd (fsync off, not under valgrind):
 * a catch-up (PARLEY_START_SEQ at 1 over a log of S_CG_WARM + S_CG_COUNT
 * updates) and a live burst (started LIVE; it reads nothing until the
 * same number more are published and a pause let its I/O thread queue
 * them). The child takes S_CG_WARM deliveries, zeroes callgrind's
 * counters (CALLGRIND_ZERO_STATS), takes S_CG_COUNT more and dumps them
 * (CALLGRIND_DUMP_STATS). Instructions per delivery = every instruction
 * the subscriber process's threads ran in user space in between /
 * S_CG_COUNT, against one raw verify: the instructions inside
 * crypto_sign_verify_detached() per call, from the same dump. The
 * kernel's work is not counted. Deterministic to a fraction of a
 * percent.
 */
#define S_CG_WARM 200
#define S_CG_COUNT 2000
/* Waits of the parent for a child under valgrind, in 10 ms steps. */
#define S_CG_WAIT_STEPS 30000

/* Does path exist? */
static bool
s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/*
 * The child (argv: MODE API FIRST DIR, MODE "catchup" or "live"): take
 * S_CG_WARM deliveries from FIRST, then S_CG_COUNT counted ones. A live
 * one writes DIR/ready once connected and waits for DIR/go. Exit 0 if
 * every seq came once, in order.
 */
static int
s_cg_child(char **argv)
{
#ifdef S_HAVE_CALLGRIND
    bool live = strcmp(argv[0], "live") == 0;
    uint64_t first = strtoull(argv[2], NULL, 10);
    char ready[BENCH_PATH_MAX + 16], go[BENCH_PATH_MAX + 16];
    snprintf(ready, sizeof(ready), "%s/ready", argv[3]);
    snprintf(go, sizeof(go), "%s/go", argv[3]);
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.server = argv[1];
    o.start = live ? PARLEY_START_LIVE : PARLEY_START_SEQ;
    o.since_seq = first;
    o.rcvhwm = S_HWM;
    o.verify_threads = 1;
    /* Everything is ~50 times slower under valgrind. */
    o.timeout_ms = 120000;
    o.heartbeat_misses = 120;
    parley_sub_t *sub = parley_sub_new(&o);
    if (sub == NULL) {
        fprintf(stderr, "cg child: parley_sub_new: %s\n", strerror(errno));
        return 1;
    }
    if (live) {
        const parley_event_t *ev;
        while (parley_sub_next(sub, 0, &ev) == 1)
            ;
        if (bench_file_write(ready, "ready\n") < 0)
            return 1;
        for (int i = 0; i < S_CG_WAIT_STEPS && !s_exists(go); i++)
            bench_sleep_ns(10000000);
    }
    uint64_t next = first;
    int rc = s_take(sub, &next, first + S_CG_WARM - 1, 600, argv[0]);
    if (rc == 0) {
        CALLGRIND_ZERO_STATS;
        rc = s_take(sub, &next, first + S_CG_WARM + S_CG_COUNT - 1, 600,
                    argv[0]);
        CALLGRIND_DUMP_STATS;
    }
    parley_sub_destroy(&sub);
    return rc == 0 ? 0 : 1;
#else
    (void)argv;
    return 2;
#endif
}

/* Wait for pid; its exit status or -1. */
static int
s_wait_child(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * One child under callgrind (mode "catchup" or "live", from seq first):
 * for live, publish envs [from, from + S_CG_WARM + S_CG_COUNT) once it is
 * connected. Prints the ratio; 0 or -1.
 */
static int
s_cg_run(const bench_daemon_t *d, const parley_key_t *key,
         const bench_envs_t *envs, size_t from, const char *base,
         const char *mode, uint64_t first, uint64_t *head)
{
    char dir[BENCH_PATH_MAX + 16], out[BENCH_PATH_MAX + 48],
        dump[BENCH_PATH_MAX + 64], log[BENCH_PATH_MAX + 48],
        outarg[BENCH_PATH_MAX + 96], self[BENCH_PATH_MAX], firsts[24];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(dir, sizeof(dir), "%s/%s", base, mode);
    snprintf(out, sizeof(out), "%s/callgrind.out", dir);
    snprintf(dump, sizeof(dump), "%s.1", out);
    snprintf(log, sizeof(log), "%s/child.log", dir);
    snprintf(outarg, sizeof(outarg), "--callgrind-out-file=%s", out);
    snprintf(firsts, sizeof(firsts), "%llu", (unsigned long long)first);
    if (mkdir(dir, 0700) < 0)
        return -1;
    const char *argv[] = { "valgrind", "--tool=callgrind", "-q", outarg,
                           "--compress-strings=no", "--compress-pos=no",
                           self, "--cg-child", mode, d->api, firsts, dir,
                           NULL };
    pid_t pid = bench_spawn(argv, log);
    if (pid < 0)
        return -1;
    bool live = strcmp(mode, "live") == 0;
    if (live) {
        char ready[BENCH_PATH_MAX + 32], go[BENCH_PATH_MAX + 32];
        snprintf(ready, sizeof(ready), "%s/ready", dir);
        snprintf(go, sizeof(go), "%s/go", dir);
        for (int i = 0; i < S_CG_WAIT_STEPS && !s_exists(ready)
                        && bench_alive(pid);
             i++)
            bench_sleep_ns(10000000);
        size_t k = S_CG_WARM + S_CG_COUNT;
        uint64_t acked = s_publish(d->api, key, envs, from, k);
        *head += acked;
        /* Time for the child's I/O thread (under valgrind) to queue all
         * of it before the child reads. */
        if (acked == k && s_wait_head(d, *head) == 0)
            bench_sleep_ns(5000000000ull);
        (void)bench_file_write(go, "go\n");
    }
    int st = s_wait_child(pid);
    uint64_t total = 0, v_ir = 0, v_calls = 0;
    if (st != 0) {
        bench_note("%s: the subscriber under callgrind exited with %d", mode,
                   st);
        bench_log_tail(log, "subscriber under callgrind");
        return -1;
    }
    if (bench_callgrind_parse(dump, "crypto_sign_verify_detached", &total,
                              &v_ir, &v_calls) < 0
        || v_calls == 0) {
        bench_note("%s: no callgrind dump in %s", mode, dump);
        return -1;
    }
    if (v_calls != S_CG_COUNT)
        bench_note("%s: %llu verifies for %d deliveries", mode,
                   (unsigned long long)v_calls, S_CG_COUNT);
    double per = (double)total / S_CG_COUNT;
    double per_verify = (double)v_ir / (double)v_calls;
    bench_note("%s: %d deliveries after %d warm-up ones; %llu instructions "
               "in all the subscriber's threads, %llu in %llu verifies",
               mode, S_CG_COUNT, S_CG_WARM, (unsigned long long)total,
               (unsigned long long)v_ir, (unsigned long long)v_calls);
    bench_ratio(live ? "instructions per delivery, live burst, 1 thread"
                     : "instructions per delivery, catch-up, 1 thread",
                per, "Ir", "one raw verify", per_verify, live ? 1.05 : 0,
                true);
    return 0;
}

/* --callgrind: both runs (see above). Returns the exit code. */
static int
s_callgrind(const bench_opts_t *o)
{
#ifndef S_HAVE_CALLGRIND
    (void)o;
    bench_note("built without valgrind/callgrind.h: no callgrind mode");
    return 1;
#else
    char base[BENCH_PATH_MAX];
    bench_key_t key;
    if (s_base_and_key(base, "subscriber-cg", &key) < 0)
        return 1;
    size_t k = S_CG_WARM + S_CG_COUNT;
    bench_envs_t envs;
    if (bench_envs_sign(&envs, key.key, 2 * k,
                        (uint64_t)parley_now_ms() * 1000ull, 2) < 0)
        return 1;
    bench_daemon_t d;
    if (bench_daemon_start(&d, o->parleyd, base, false, 10000) < 0)
        return 1;
    uint64_t head = s_publish(d.api, key.key, &envs, 0, k);
    int rc = head == k && s_wait_head(&d, head) == 0 ? 0 : -1;
    if (rc == 0)
        rc = s_cg_run(&d, key.key, &envs, 0, base, "catchup", 1, &head);
    if (rc == 0)
        rc = s_cg_run(&d, key.key, &envs, k, base, "live", head + 1, &head);
    bench_daemon_stop(&d);
    bench_envs_free(&envs);
    bench_keys_free(&key, 1);
    bench_tmpdir_remove(base);
    return rc == 0 ? 0 : 1;
#endif
}

int
main(int argc, char **argv)
{
    /* The subscriber of --callgrind, under valgrind (s_cg_child()). */
    if (argc == 6 && strcmp(argv[1], "--cg-child") == 0)
        return s_cg_child(argv + 2);
    bool callgrind = bench_take_flag(&argc, argv, "--callgrind");
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_subscriber",
                     "One parley_sub_t: replay catch-up on 1 and 2 verify "
                     "threads, a live burst, against raw Ed25519 verify; "
                     "with --callgrind, its instructions per delivery vs "
                     "one verify (valgrind).");
    if (sodium_init() < 0)
        return 1;
    if (callgrind) {
        bench_section("subscriber: instructions per delivery (callgrind)");
        return s_callgrind(&o);
    }
    size_t m = o.quick ? 20000 : 100000;      /* log for the catch-up */
    size_t k = o.quick ? 10000 : 40000;       /* each live burst */
    uint64_t vdur = o.quick ? 300000000ull : 1000000000ull;
    int rounds = o.quick ? 1 : S_ROUNDS;

    char base[BENCH_PATH_MAX];
    bench_key_t key;
    if (s_base_and_key(base, "subscriber", &key) < 0)
        return 1;

    /* The reference's bytes: the typical update's signed message. */
    bench_envs_t one;
    if (bench_envs_sign(&one, key.key, 1, 1, 1) < 0)
        return 1;
    uint8_t abuf[16384], dlv[BENCH_ENV_SLOT + 256];
    size_t dlv_len;
    parley__arena_t arena;
    parley__arena_init(&arena, abuf, sizeof(abuf));
    parley__envelope_t env;
    if (parley__envelope_decode(bench_env(&one, 0), one.lens[0], &env,
                                &arena) != 0 ||
        parley__delivery_encode(1, parley_now_ms(), bench_env(&one, 0),
                                one.lens[0], dlv, sizeof(dlv), &dlv_len) != 0)
        return 1;
    size_t clen = sizeof(PARLEY_SIGN_CONTEXT), mlen = clen + env.body.len;
    uint8_t *msg = malloc(mlen);
    memcpy(msg, PARLEY_SIGN_CONTEXT, clen);
    memcpy(msg + clen, env.body.data, env.body.len);

    bench_section("subscriber: references (this process, this run)");
    bench_note("typical update: body %zu bytes, Delivery %zu bytes; %s run",
               env.body.len, dlv_len, o.quick ? "quick" : "full");
    double v1 = bench_raw_verify_min(msg, mlen, env.signature, env.signer, 1,
                                     vdur, &s_us_per_verify);
    double v2 = bench_raw_verify_min(msg, mlen, env.signature, env.signer, 2,
                                     vdur, &s_us_per_verify);
    double dec = s_lib_decode(dlv, dlv_len, vdur);

    /* The log and the bursts' envelopes, signed before the timed part. */
    size_t total = m + (size_t)(2 * rounds + 1) * k;
    bench_envs_t envs;
    if (bench_envs_sign(&envs, key.key, total,
                        (uint64_t)parley_now_ms() * 1000ull, 2) < 0)
        return 1;
    bench_daemon_t d;
    if (bench_daemon_start(&d, o.parleyd, base, false, 10000) < 0)
        return 1;
    uint64_t head = s_publish(d.api, key.key, &envs, 0, m);
    if (head != m || s_wait_head(&d, head) < 0) {
        fprintf(stderr, "the log: %llu of %zu acked\n",
                (unsigned long long)head, m);
        return 1;
    }
    bench_note("log of %zu updates (fsync off), live bursts of %zu; %d "
               "round%s, threads alternating", m, k, rounds,
               rounds == 1 ? "" : "s");

    s_run_t cu[3] = { 0 }, lb[3] = { 0 };
    bool ok = true;
    size_t next_env = m;
    for (int round = 0; round < rounds; round++) {
        for (int t = 1; t <= 2; t++) {
            int th = round % 2 ? 3 - t : t;
            s_run_t r = s_catchup(&d, m, th);
            ok &= r.ok;
            if (r.rate > cu[th].rate)
                cu[th] = r;
        }
        for (int t = 1; t <= 2; t++) {
            int th = round % 2 ? 3 - t : t;
            s_run_t r = s_burst(&d, key.key, &envs, next_env, k, &head, th);
            next_env += k;
            ok &= r.ok;
            if (r.rate > lb[th].rate)
                lb[th] = r;
        }
        v1 = s_max(v1, bench_raw_verify_min(msg, mlen, env.signature,
                                            env.signer, 1, vdur,
                                            &s_us_per_verify));
    }
    double raw_burst = s_raw_burst(&d, key.key, &envs, next_env, k, &head);
    v1 = s_max(v1, bench_raw_verify_min(msg, mlen, env.signature, env.signer,
                                        1, vdur, &s_us_per_verify));
    int st = bench_daemon_stop(&d);
    if (st != 0)
        fprintf(stderr, "parleyd exited with status %d\n", st);

    bench_figure("raw verify, 1 core (best sample)", v1, "verifies/s");
    bench_figure("raw verify, 2 threads", v2, "verifies/s");
    bench_ratio("parley_delivery_decode(), 1 thread", dec, "dec/s",
                "raw verify 1 core", v1, 0, false);
    bench_figure("raw ZMQ SUB draining a burst", raw_burst, "msgs/s");
    for (int th = 1; th <= 2; th++)
        bench_note("verify_threads %d: catch-up %.0f/s (%.1f us CPU of the "
                   "caller's thread per update; parley_sub_new() %.0f ms "
                   "before, not timed), live burst %.0f/s (%.1f us)",
                   th, cu[th].rate, cu[th].cpu_us, cu[th].connect_ms,
                   lb[th].rate, lb[th].cpu_us);

    bench_section("subscriber: where the cores went (same run)");
    for (int th = 1; th <= 2; th++) {
        s_cores_note(&cu[th], th, "catch-up", v1);
        s_cores_note(&lb[th], th, "live burst", v1);
    }

    bench_section("subscriber: against the targets (same run)");
    bench_ratio("catch-up, verify_threads 2", cu[2].rate, "del/s",
                "raw verify 1 core", v1, 1.6, false);
    bench_ratio("catch-up, verify_threads 1", cu[1].rate, "del/s",
                "raw verify 1 core", v1, 0, false);
    bench_ratio("live burst, one parley_sub_t (1 thread)", lb[1].rate,
                "del/s", "raw verify 1 core", v1, 0.95, false);
    bench_ratio("live burst, verify_threads 2", lb[2].rate, "del/s",
                "raw verify 1 core", v1, 0, false);
    bench_ratio("catch-up, verify_threads 2", cu[2].rate, "del/s",
                "raw verify 2 threads", v2, 0, false);
    /* CPU time hardly depends on what else runs: the noise-free view of
     * what the subscriber adds to a verify on the caller's thread. */
    bench_ratio("CPU per update, live burst, 1 thread", lb[1].cpu_us, "us",
                "raw verify CPU", s_us_per_verify, 0, true);
    bench_ratio("CPU per update, catch-up, 1 thread", cu[1].cpu_us, "us",
                "raw verify CPU", s_us_per_verify, 0, true);
    if (!ok)
        bench_note("A SUBSCRIBER RUN FAILED (see above): its figure is partial");

    bench_envs_free(&envs);
    bench_envs_free(&one);
    bench_keys_free(&key, 1);
    free(msg);
    bench_tmpdir_remove(base);
    return ok ? 0 : 1;
}
