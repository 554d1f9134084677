/*
 * bench.h - plumbing shared by parley's benchmark programs.
 *
 * Each bench program measures parley and, in the same run, a reference
 * (raw libsodium, raw libzmq, mosquitto, NATS, a bare fdatasync, cat) and
 * prints both with their ratio. This header holds what they share: clocks,
 * ports and temporary directories, starting and stopping parleyd and the
 * peer brokers by pid, pre-signing updates, subscriber worker threads that
 * count deliveries, percentiles, and the report line format.
 *
 * Helpers return 0 (or a count) on success and a negative -errno or
 * PARLEY_E* code on failure; they print what failed on stderr (these are
 * programs, not library code). Names carry the bench_ prefix.
 */
#ifndef PARLEY_BENCH_H
#define PARLEY_BENCH_H

#include "parley.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_PATH_MAX 512
#define BENCH_EP_MAX 64
/* Every pre-signed envelope fits in a slot of this size (checked). */
#define BENCH_ENV_SLOT 512

/* ------------------------------------------------------------- options */

/* What every bench program accepts on its command line. */
typedef struct bench_opts {
    bool quick;                       /* --quick: short smoke run */
    char parleyd[BENCH_PATH_MAX];     /* --parleyd PATH (or $PARLEYD, or build) */
} bench_opts_t;

/*
 * Parse --quick, --parleyd PATH and --help. Exits with a usage message on
 * anything else. Also raises RLIMIT_NOFILE to its hard limit and ignores
 * SIGPIPE, which every program here needs.
 */
void bench_opts_parse(bench_opts_t *o, int argc, char **argv,
                      const char *name, const char *what);

/*
 * Take flag (a mode of the program, "--callgrind") out of argv before
 * bench_opts_parse() sees it. Returns whether it was there.
 */
bool bench_take_flag(int *argc, char **argv, const char *flag);

/* -------------------------------------------------------------- clocks */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Seconds between two bench_now_ns() values. */
double bench_secs(uint64_t from_ns, uint64_t to_ns);

/* Sleep for ns nanoseconds (restarting after signals). */
void bench_sleep_ns(uint64_t ns);

/* ------------------------------------------------------- files, ports */

/* Make a fresh directory under $TMPDIR (or /var/tmp: on disk, never
 * tmpfs, so fdatasync means something). Returns 0 or -errno. */
int bench_tmpdir_make(char *out, size_t cap, const char *tag);

/* Remove a directory tree (depth first, not following symlinks), unless
 * BENCH_KEEP is set (then say where it is, for a look or a profile). */
void bench_tmpdir_remove(const char *dir);

/* Write text to path (created or truncated, mode 0600). 0 or -errno. */
int bench_file_write(const char *path, const char *text);

/* Pick a loopback TCP port that is free right now. Returns it or -errno. */
int bench_free_port(void);

/* ------------------------------------------------------------ processes */

/*
 * Start argv[0] (a path or a name looked up in PATH) with its stdout and
 * stderr appended to log_path (or /dev/null when NULL) and /dev/null as
 * stdin. The child gets SIGTERM if this process dies first. Call from the
 * main thread. Returns the pid or -errno.
 */
pid_t bench_spawn(const char *const argv[], const char *log_path);

/*
 * SIGTERM pid and wait up to 5 s, then SIGKILL. Returns the exit status,
 * 128 + signal, or -ETIMEDOUT when it had to be killed. pid <= 0: 0.
 */
int bench_stop(pid_t pid);

/* 1 if pid is still running (not reaped), else 0. */
int bench_alive(pid_t pid);

/* Wait until a TCP connect to 127.0.0.1:port succeeds. 0 or -ETIMEDOUT. */
int bench_wait_port(int port, int timeout_ms, pid_t pid);

/* Peak and current resident set size of pid in bytes (VmHWM, VmRSS). */
int bench_proc_mem(pid_t pid, uint64_t *hwm, uint64_t *rss);

/* Threads bench_raw_verify() runs at most. */
#define BENCH_VERIFY_THREADS_MAX 4

/*
 * crypto_sign_verify_detached() of (sig, msg, pk) as often as `threads`
 * threads do in dur_ns: the reference every ratio against "raw verify"
 * uses. Returns verifies per second (all threads); *us_per_verify (may be
 * NULL) gets the threads' CPU time per verify in microseconds.
 */
double bench_raw_verify(const uint8_t *msg, size_t len, const uint8_t *sig,
                        const uint8_t *pk, size_t threads, uint64_t dur_ns,
                        double *us_per_verify);

/*
 * bench_raw_verify() as one of several samples of a run: *us_min (0 before
 * the first sample) is lowered to this sample's CPU time per verify when
 * that is lower, so that it ends as the least CPU a verify took in the run
 * (the figure hardly depends on the load; the lowest is the conservative
 * reference for a daemon's CPU per update). Returns verifies per second.
 */
double bench_raw_verify_min(const uint8_t *msg, size_t len, const uint8_t *sig,
                            const uint8_t *pk, size_t threads,
                            uint64_t dur_ns, double *us_min);

/* Reset the process's VmHWM to its VmRSS (Linux clear_refs "5"), so that
 * the next VmHWM is the peak of what follows. 0 or -errno. */
int bench_proc_hwm_reset(pid_t pid);

/* Minor page faults of a process so far (/proc/PID/stat), 0 if unknown. */
uint64_t bench_proc_faults(pid_t pid);

/* User + system CPU seconds pid has used so far (from /proc/PID/stat). */
double bench_proc_cpu(pid_t pid);

/* CPU seconds (or cores, see bench_threads_cores()) of a process's
 * threads by role. */
typedef struct bench_threads {
    double main;          /* the main thread (parleyd's loop, a bench's
                             caller) */
    double workers;       /* threads not libzmq's (parleyd's verify pool,
                             a parley_sub_t's parley-verify threads) */
    double io;            /* libzmq's I/O threads (ZMQbg/IO/...) */
    double other;         /* libzmq's reaper and its other threads */
} bench_threads_t;

/* Read the CPU seconds of each of pid's threads into t by role (from
 * /proc/PID/task; all 0 if it cannot be read). */
void bench_threads_cpu(pid_t pid, bench_threads_t *t);

/* Called for each thread of a process: whether it is the main thread,
 * its name (comm), the CPU seconds it has used (user + system), its id. */
typedef void (*bench_task_fn)(void *ctx, bool main_thread, const char *comm,
                              double secs, int tid);

/* Call fn for each of pid's threads (from /proc/PID/task; none if it
 * cannot be read). */
void bench_tasks_cpu(pid_t pid, bench_task_fn fn, void *ctx);

/* The cores each role used between two readings secs apart. */
bench_threads_t bench_threads_cores(const bench_threads_t *t0,
                                    const bench_threads_t *t1, double secs);

/* Online CPUs, at least 1. */
unsigned bench_cpus(void);

/*
 * Read a callgrind dump (written with --compress-strings=no): the total
 * instructions, and the inclusive instructions and calls of fn summed
 * over its callers. Returns 0 or -errno (-ENODATA: no total in it).
 */
int bench_callgrind_parse(const char *path, const char *fn, uint64_t *total,
                          uint64_t *fn_ir, uint64_t *fn_calls);

/* Print the last lines of a log file to stderr. */
void bench_log_tail(const char *path, const char *title);

/* ---------------------------------------------------------------- keys */

/* A benchmark signer: a fixed-seed key and its keyring name. */
typedef struct bench_key {
    parley_key_t *key;
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char pub_b64[45];
    char name[32];
} bench_key_t;

/* Make n keys from fixed seeds (seed i = 32 bytes of value 1 + i). */
int bench_keys_make(bench_key_t *keys, size_t n);
void bench_keys_free(bench_key_t *keys, size_t n);

/* Write a keyring that lets every key publish anything. 0 or -errno. */
int bench_keyring_write(const char *path, const bench_key_t *keys, size_t n);

/* ------------------------------------------------------------- parleyd */

typedef struct bench_daemon {
    pid_t pid;                      /* 0 when not running */
    char dir[BENCH_PATH_MAX];       /* temp dir: config, keyring, log */
    char state_dir[BENCH_PATH_MAX + 32]; /* dir/state: the segment files */
    char log_path[BENCH_PATH_MAX + 32];  /* daemon stdout + stderr */
    char api[BENCH_EP_MAX];
    char feed[BENCH_EP_MAX];
    int api_port, feed_port;
} bench_daemon_t;

/*
 * Write dir/parleyd.conf (api and feed on free loopback ports, state_dir
 * dir/state, keyring dir/keyring, fsync on or off, log_level warn,
 * max_clock_skew 3600 so envelopes signed before a long run stay
 * acceptable, rate_limit 0 so the per-signer limit (a policy, 1000/s by
 * default) does not cap what is measured, max_connections 2048 for the
 * 1,000-subscriber run) and start `parleyd -c dir/parleyd.conf`; wait until
 * parley_ping() answers (up to wait_ms). dir must exist and hold the
 * keyring; dir/state is created if missing (it may hold a log already).
 * Returns 0 or a negative error (the daemon log is printed).
 */
int bench_daemon_start(bench_daemon_t *d, const char *parleyd,
                       const char *dir, bool fsync, int wait_ms);

/*
 * Pick two distinct free loopback ports for d's api and feed and write
 * their endpoints into d (api, feed, api_port, feed_port). Returns 0 or
 * -EADDRINUSE.
 */
int bench_daemon_ports(bench_daemon_t *d);

/* The same with more config lines (extra, may be NULL) appended; a
 * max_connections line there replaces the 2048 above. */
int bench_daemon_start_conf(bench_daemon_t *d, const char *parleyd,
                            const char *dir, bool fsync, const char *extra,
                            int wait_ms);
/*
 * Start parleyd again on d's configuration (the same ports, state
 * directory and log) after its process is gone, and wait up to wait_ms
 * for a ping answer. Returns as bench_daemon_start().
 */
int bench_daemon_restart(bench_daemon_t *d, const char *parleyd,
                         int wait_ms);

/* SIGTERM the daemon and reap it. Returns as bench_stop(). */
int bench_daemon_stop(bench_daemon_t *d);

/* parley_ping() of api within timeout_ms; *head (may be NULL) gets the
 * head seq. Returns its code. */
int bench_ping(const char *api, int timeout_ms, uint64_t *head);

/* A publisher for api that signs with key (NULL with errno set). */
parley_pub_t *bench_pub_new(const char *api, const parley_key_t *key);

/* A subscriber for api with every update, starting at start (since_seq
 * with PARLEY_START_SEQ); NULL with errno set. */
parley_sub_t *bench_sub_new(const char *api, parley_start_t start,
                            uint64_t since_seq);

/* Counter by name from parley_stats(), or 0 (and *found = false). */
uint64_t bench_daemon_stat(const bench_daemon_t *d, const char *name,
                           bool *found);

/* ------------------------------------------------------------- updates */

/*
 * Fill a typical update (gaza-ceasefire, two parties, phase 1, a headline
 * and a short body like the demo feed's) with index i written into the
 * headline at a fixed width, so every envelope has the same size.
 */
void bench_update_fill(parley_update_t *u, uint64_t i, uint64_t signer_seq,
                       int64_t issued_at);

/* Pre-signed envelopes in fixed slots. */
typedef struct bench_envs {
    size_t n;
    uint8_t *slots;     /* n * BENCH_ENV_SLOT bytes */
    uint16_t *lens;     /* length of each envelope */
} bench_envs_t;

/*
 * Sign n typical updates with key, signer_seq first_seq + i, issued_at
 * now, using `threads` threads. Returns 0 or a negative error.
 */
int bench_envs_sign(bench_envs_t *e, const parley_key_t *key, size_t n,
                    uint64_t first_seq, size_t threads);
void bench_envs_free(bench_envs_t *e);

static inline const uint8_t *
bench_env(const bench_envs_t *e, size_t i)
{
    return e->slots + i * BENCH_ENV_SLOT;
}

/* Size of a typical envelope and of the Delivery around it on the feed. */
size_t bench_typical_envelope_size(void);
size_t bench_typical_delivery_size(void);

/* ---------------------------------------------------------- publishers */

/*
 * A parley publisher thread: sends envelopes [0, envs->n) through its own
 * parley_pub_t with up to `window` in flight (parley_pub_send /
 * parley_pub_recv), until all are answered or *stop is set.
 */
typedef struct bench_pubber {
    const char *api;
    const parley_key_t *key;
    const bench_envs_t *envs;
    size_t window;
    int timeout_ms;           /* per request (parley_pub_options_t); 0:
                                 the library's default */
    atomic_int *stop;
    /* Flow control (may be NULL): while hold(hold_ctx) is true no new
     * envelope is sent (answers are still read). */
    bool (*hold)(void *ctx);
    void *hold_ctx;
    /* results */
    atomic_uint_fast64_t sent;
    atomic_uint_fast64_t acked;
    uint64_t rejected;
    int first_error;          /* first reject code or error, 0 if none */
    uint64_t done_ns;         /* when the last answer came */
} bench_pubber_t;

void *bench_pubber_run(void *arg);

/* ------------------------------------------------- delivery counting */

/* One counter per subscriber, on its own cache line. */
typedef struct bench_counter {
    _Alignas(64) atomic_uint_fast64_t n;
    atomic_uint_fast64_t last_seq; /* parley: last seq seen (gap detection) */
    atomic_uint_fast64_t gaps;     /* parley: seqs skipped */
    atomic_uint_fast64_t other;    /* parley: messages that are not
                                      deliveries (heartbeats) */
} bench_counter_t;

bench_counter_t *bench_counters_new(size_t n);

/* Sum and minimum over n counters. */
uint64_t bench_counters_sum(bench_counter_t *c, size_t n);
uint64_t bench_counters_min(bench_counter_t *c, size_t n);

/*
 * Subscriber worker over ZMQ SUB sockets: waits in epoll on their
 * ZMQ_FDs, reads the sockets that have something and counts every
 * complete message; with parse_seq it reads the Delivery seq of the last
 * frame and counts gaps. Runs until *stop.
 */
typedef struct bench_zworker {
    void **socks;
    bench_counter_t *counters;  /* one per socket */
    size_t n;
    bool parse_seq;
    atomic_int *stop;
} bench_zworker_t;

void *bench_zworker_run(void *arg);

/*
 * Wait until every counter is > 0 (all subscribers joined), up to
 * timeout_ms. Returns 0 or -ETIMEDOUT.
 */
int bench_counters_wait_all(bench_counter_t *c, size_t n, int timeout_ms);

/*
 * Measure a delivery rate: sleep warm_ns, read the sum, sleep dur_ns (or
 * until early(ctx) returns true: the supply ran out), read again.
 * Returns deliveries per second.
 */
double bench_measure_rate(bench_counter_t *c, size_t n, uint64_t warm_ns,
                          uint64_t dur_ns, bool (*early)(void *ctx),
                          void *early_ctx);

/* Delivery seq from a Delivery frame without a full decode (0 if none). */
uint64_t bench_delivery_seq(const uint8_t *buf, size_t len);

/*
 * Raw ZMQ SUB sockets in child processes, for more subscribers than one
 * process has descriptors for (each socket takes two: its TCP connection
 * and its mailbox). n sockets, at most per_proc in each forked child;
 * each child has its own context (one I/O thread) and one bench_zworker
 * over its sockets. Every socket subscribes to topics (NULL-terminated)
 * and connects to feed. The counters live in memory shared with the
 * children, so the parent reads them as for in-process workers (and
 * bench_flow_run() paces on them).
 */
typedef struct bench_fleet {
    size_t n;                   /* sockets asked for */
    size_t nproc;               /* children */
    pid_t *pids;
    bench_counter_t *c;         /* n counters (shared) */
    atomic_int *stop;           /* shared: 1 = children stop and exit */
    atomic_uint_fast64_t *opened; /* shared: sockets connected so far */
    atomic_uint_fast64_t *failed; /* shared: sockets that could not be made */
    size_t shm_len;
} bench_fleet_t;

/*
 * Fork the children. Returns 0 once every child has made and connected
 * its sockets (up to 60 s), or a negative error (the children are then
 * stopped). parse_seq as for bench_zworker_t.
 */
int bench_fleet_start(bench_fleet_t *f, const char *feed,
                      const char *const *topics, size_t n, size_t per_proc,
                      bool parse_seq);

/* Stop the children, reap them, unmap the counters. Accepts a zeroed f. */
void bench_fleet_stop(bench_fleet_t *f);

/* CPU seconds the children have used so far (bench_proc_cpu() summed). */
double bench_fleet_cpu(const bench_fleet_t *f);

/*
 * A flow-controlled publisher for the raw and peer fan-out runs: first a
 * join phase (one message per ms, or per probe_ns, until every subscriber
 * has counted one),
 * then as fast as `send` goes while no subscriber is more than `window`
 * messages behind (so no broker or socket queue ever overflows or grows
 * without bound, and nothing is dropped). `flush` (may be NULL) is called
 * while waiting. Sets ready after the join phase; runs until *stop.
 */
typedef struct bench_flow {
    int (*send)(void *ctx);
    void (*flush)(void *ctx);
    void *ctx;
    bench_counter_t *counters;
    size_t n;
    size_t window;
    uint64_t probe_ns;          /* join phase: between probes (0 = 1 ms;
                                   more for thousands of subscribers, or
                                   the probes starve their connecting) */
    atomic_int *stop;
    atomic_int ready;           /* 1 after the join phase, -1 if it failed */
    atomic_uint_fast64_t held;  /* times it found itself `window` ahead and
                                   waited: > 0 once it has reached its
                                   window (the steady state) */
    uint64_t sent;
    int err;                    /* first error from send */
} bench_flow_t;

void *bench_flow_run(void *arg);

/* ------------------------------------------------------------ peers */

/* A peer broker started by a bench program on a loopback port. */
typedef struct bench_broker {
    pid_t pid;                  /* 0 when not running */
    int port;
    char log_path[BENCH_PATH_MAX];
} bench_broker_t;

/*
 * Start `mosquitto -c DIR/mosquitto.conf` (listener on 127.0.0.1:port,
 * anonymous, no persistence; TCP_NODELAY when nodelay) and wait for the
 * port. Returns 0, -ENOENT if mosquitto is not installed, or an error.
 */
int bench_mosquitto_start(bench_broker_t *b, const char *dir, bool nodelay);

/* Start `nats-server -a 127.0.0.1 -p PORT` likewise. */
int bench_nats_start(bench_broker_t *b, const char *dir);

/* Stop a broker by pid. */
void bench_broker_stop(bench_broker_t *b);

/* ------------------------------------------------------------ statistics */

/* Sort v (ns) and return the p-th percentile (0..100), nearest rank. */
uint64_t bench_percentile(uint64_t *v, size_t n, double p);

/* -------------------------------------------------------------- report */

/* Print a section heading. */
void bench_section(const char *title);

/* Print a figure: "  name  value unit". */
void bench_figure(const char *name, double value, const char *unit);

/*
 * Print a figure with its ratio to a reference figure measured in the
 * same run, and (when target > 0) whether ratio >= target (or, with
 * lower_is_better, ratio <= target).
 */
void bench_ratio(const char *name, double value, const char *unit,
                 const char *ref_name, double ref_value, double target,
                 bool lower_is_better);

/* Print a note line (indented). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* PARLEY_BENCH_H */
