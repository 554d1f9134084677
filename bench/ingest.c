/*
 * ingest.c - durable, acked updates per second from several publishers,
 * against raw Ed25519 verification measured in the same process run.
 *
 * References (one process, same message size as a typical update):
 *   - crypto_sign_verify_detached() per second on one core, and on two
 *     threads (what a daemon verifying on both cores could reach);
 *   - parley_verify() per second on one core: the library's whole check
 *     (envelope decode, signature, body decode, validation).
 * Then parleyd (fsync on, as shipped; then fsync off) in a temp dir with a
 * keyring of K publisher keys; K publisher threads each pipeline their
 * pre-signed envelopes (window 256) through parley_pub_send/recv. The rate
 * is acked updates over the time from the first send to the last ack.
 *
 * The transparency log: the fsync-on runs keep the Merkle tree and sign a
 * checkpoint every heartbeat (a log key in the state directory, as `make
 * run` sets up); the same run with `transparency off` is its reference
 * (target: tree on >= 0.95 x tree off). Each is run twice, alternating,
 * and the better of the two kept, as the machine is shared.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_PUBLISHERS 4
#define S_WINDOW 256

/* parley_verify() per second on one core. */
static double
s_lib_verify(const uint8_t *env, size_t len, uint64_t dur_ns)
{
    parley_update_t *u = malloc(sizeof(*u));
    if (u == NULL)
        return 0;
    uint64_t t0 = bench_now_ns(), n = 0;
    while (bench_now_ns() - t0 < dur_ns)
        for (int i = 0; i < 50; i++)
            n += parley_verify(NULL, env, len, u, NULL) == 0;
    free(u);
    return (double)n / bench_secs(t0, bench_now_ns());
}

typedef struct s_ingest {
    double rate;          /* acked/s */
    uint64_t acked, rejected;
    double daemon_cpu;    /* cores */
    bench_threads_t threads; /* cores used by parleyd's threads, by role */
    double pub_cpu;       /* cores used by this process (the publishers) */
    double secs;
    char stats[1024];     /* the daemon's non-zero counters after the run */
} s_ingest_t;

/*
 * What two cores allow in this setup: parleyd and the publishers share
 * them, so acked updates/s cannot pass cores / (CPU per update of both).
 */
static void
s_ceiling(const s_ingest_t *r, double v1)
{
    if (r->rate <= 0)
        return;
    double us_d = r->daemon_cpu / r->rate * 1e6;
    double us_p = r->pub_cpu / r->rate * 1e6;
    double cores = (double)bench_cpus();
    bench_note("publishers (this process) used %.2f cores, %.1f us per "
               "update; %u cores / (%.1f + %.1f us) = %.0f upd/s = %.2f x "
               "raw verify 1 core is what this machine allows here",
               r->pub_cpu, us_p, bench_cpus(), us_d, us_p,
               cores / (us_d + us_p) * 1e6,
               v1 > 0 ? cores / (us_d + us_p) * 1e6 / v1 : 0);
}

/* Say where parleyd's cores went in a run: which of its threads, and
 * how much of the two cores stayed idle. */
static void
s_threads_note(const s_ingest_t *r)
{
    const bench_threads_t *t = &r->threads;
    bench_note("parleyd's threads, cores: loop %.2f, verify pool %.2f, "
               "libzmq I/O %.2f, other %.2f; of %u cores %.2f not used by "
               "parleyd",
               t->main, t->workers, t->io, t->other, bench_cpus(),
               (double)bench_cpus() - (t->main + t->workers + t->io + t->other));
}

static int
s_run(s_ingest_t *r, const bench_opts_t *o, const char *base, const char *tag,
      bool fsync, bool tree, bench_key_t *keys, const bench_envs_t *envs)
{
    memset(r, 0, sizeof(*r));
    char dir[BENCH_PATH_MAX], ring[BENCH_PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/%s", base, tag);
    snprintf(ring, sizeof(ring), "%s/keyring", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    int rc = bench_keyring_write(ring, keys, S_PUBLISHERS);
    bench_daemon_t d;
    char extra[BENCH_PATH_MAX + 64], key_path[BENCH_PATH_MAX + 16];
    snprintf(key_path, sizeof(key_path), "%s/log.key", dir);
    snprintf(extra, sizeof(extra), tree ? "log_key %s\n" : "transparency off\n%s",
             tree ? key_path : "");
    if (tree && rc == 0) {
        parley_key_t *lk = parley_key_generate();
        rc = lk != NULL ? parley_key_save(lk, key_path, "bench log key", 1) : -ENOMEM;
        parley_key_destroy(&lk);
    }
    if (rc < 0
        || (rc = bench_daemon_start_conf(&d, o->parleyd, dir, fsync, extra, 10000)) < 0)
        return rc;
    atomic_int stop = 0;
    bench_pubber_t p[S_PUBLISHERS];
    pthread_t tid[S_PUBLISHERS];
    double cpu0 = bench_proc_cpu(d.pid), own0 = bench_proc_cpu(getpid());
    bench_threads_t th0, th1;
    bench_threads_cpu(d.pid, &th0);
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < S_PUBLISHERS; i++) {
        p[i] = (bench_pubber_t){ .api = d.api, .key = keys[i].key,
                                 .envs = &envs[i], .window = S_WINDOW,
                                 .stop = &stop };
        pthread_create(&tid[i], NULL, bench_pubber_run, &p[i]);
    }
    uint64_t t1 = t0;
    for (size_t i = 0; i < S_PUBLISHERS; i++) {
        pthread_join(tid[i], NULL);
        r->acked += atomic_load(&p[i].acked);
        r->rejected += p[i].rejected;
        if (p[i].done_ns > t1)
            t1 = p[i].done_ns;
        if (p[i].first_error != 0)
            fprintf(stderr, "publisher %zu: first error %s\n", i,
                    parley_error_name(p[i].first_error));
    }
    r->secs = bench_secs(t0, t1);
    r->rate = (double)r->acked / r->secs;
    r->daemon_cpu = (bench_proc_cpu(d.pid) - cpu0) / r->secs;
    bench_threads_cpu(d.pid, &th1);
    r->threads = bench_threads_cores(&th0, &th1, r->secs);
    r->pub_cpu = (bench_proc_cpu(getpid()) - own0) / r->secs;
    /* Show the daemon's own view of the run (group commit size etc.). */
    parley_call_options_t copt = PARLEY_CALL_OPTIONS_INIT;
    parley_stats_t *st = NULL;
    copt.server = d.api;
    copt.timeout_ms = 3000;
    size_t off = 0;
    if (parley_stats(&copt, &st) < 0)
        st = NULL;
    for (size_t i = 0; i < parley_stats_count(st) && off < sizeof(r->stats) - 80;
         i++) {
        if (parley_stats_value(st, i) == 0)
            continue;
        off += (size_t)snprintf(r->stats + off, sizeof(r->stats) - off,
                                "%s%s=%llu", off ? " " : "",
                                parley_stats_name(st, i),
                                (unsigned long long)parley_stats_value(st, i));
    }
    parley_stats_destroy(&st);
    rc = bench_daemon_stop(&d);
    if (rc != 0)
        fprintf(stderr, "parleyd exited with status %d\n", rc);
    return 0;
}

/* ------------------------------------------------------------ callgrind */

/*
 * --callgrind: the noise-free guard of target 3. parleyd (fsync on; the
 * transparency log on, as in the durable run, then off) runs under
 * valgrind's callgrind; after S_CG_WARM updates callgrind's counters are
 * zeroed (callgrind_control -z), S_CG_COUNT more are published by the
 * S_PUBLISHERS threads as in the timed runs, a ping makes sure the turn
 * that acked the last of them has also published them, and the counters
 * are dumped (callgrind_control -d). Instructions per update = every
 * instruction the daemon's threads ran in user space in between /
 * S_CG_COUNT; the reference is one raw verify: the instructions inside
 * crypto_sign_verify_detached() per call, from the same dump (parleyd
 * calls it once per update). The kernel's work (syscalls, fdatasync) is
 * not counted. Deterministic to a fraction of a percent: no noise from
 * the machine.
 */
#define S_CG_WARM 200
#define S_CG_COUNT 2000
#define S_CG_WINDOW S_WINDOW
/* A request under valgrind may wait long: a resend would be verified
 * twice and counted against parleyd. */
#define S_CG_TIMEOUT_MS 600000

/* Run argv to its end (output to log). Returns its exit status or -errno. */
static int
s_run_wait(const char *const argv[], const char *log)
{
    pid_t pid = bench_spawn(argv, log);
    if (pid < 0)
        return pid;
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Publish envs[i] from S_PUBLISHERS threads (window each) until every
 * one is answered. Returns the acks. */
static uint64_t
s_publish_all(const char *api, bench_key_t *keys, const bench_envs_t *envs,
              size_t window, int timeout_ms)
{
    atomic_int stop = 0;
    bench_pubber_t p[S_PUBLISHERS];
    pthread_t tid[S_PUBLISHERS];
    uint64_t acked = 0;
    for (size_t i = 0; i < S_PUBLISHERS; i++) {
        p[i] = (bench_pubber_t){ .api = api, .key = keys[i].key,
                                 .envs = &envs[i], .window = window,
                                 .timeout_ms = timeout_ms, .stop = &stop };
        pthread_create(&tid[i], NULL, bench_pubber_run, &p[i]);
    }
    for (size_t i = 0; i < S_PUBLISHERS; i++) {
        pthread_join(tid[i], NULL);
        acked += atomic_load(&p[i].acked);
        if (p[i].first_error != 0)
            fprintf(stderr, "publisher %zu: first error %s\n", i,
                    parley_error_name(p[i].first_error));
    }
    return acked;
}

static int
s_callgrind(const bench_opts_t *o, bench_key_t *keys, bool tree)
{
    char base[BENCH_PATH_MAX];
    if (bench_tmpdir_make(base, sizeof(base), "ingest-cg") < 0)
        return 1;
    char dir[BENCH_PATH_MAX + 16], ring[BENCH_PATH_MAX + 32],
        wrap[BENCH_PATH_MAX + 16], key_path[BENCH_PATH_MAX + 32],
        extra[BENCH_PATH_MAX + 64], out[BENCH_PATH_MAX + 32],
        dump[BENCH_PATH_MAX + 48], script[4 * BENCH_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/daemon", base);
    snprintf(ring, sizeof(ring), "%s/keyring", dir);
    snprintf(wrap, sizeof(wrap), "%s/parleyd-cg", base);
    snprintf(key_path, sizeof(key_path), "%s/log.key", dir);
    snprintf(extra, sizeof(extra), tree ? "log_key %s\n" : "transparency off\n",
             key_path);
    snprintf(out, sizeof(out), "%s/callgrind.out", base);
    /* The daemon under callgrind, started by bench_daemon_start_conf()
     * like any parleyd (exec keeps the pid). */
    snprintf(script, sizeof(script),
             "#!/bin/sh\nexec valgrind --tool=callgrind -q "
             "--callgrind-out-file=%s --compress-strings=no "
             "--compress-pos=no '%s' \"$@\"\n",
             out, o->parleyd);
    int rc = 0;
    parley_key_t *lk = NULL;
    if (mkdir(dir, 0700) < 0 || bench_file_write(wrap, script) < 0
        || chmod(wrap, 0700) < 0
        || bench_keyring_write(ring, keys, S_PUBLISHERS) < 0
        || (lk = parley_key_generate()) == NULL
        || parley_key_save(lk, key_path, "bench log key", 1) < 0)
        rc = -EIO;
    parley_key_destroy(&lk);
    bench_envs_t warm[S_PUBLISHERS], envs[S_PUBLISHERS];
    uint64_t seq0 = (uint64_t)parley_now_ms() * 1000ull;
    for (size_t i = 0; i < S_PUBLISHERS && rc == 0; i++)
        if (bench_envs_sign(&warm[i], keys[i].key, S_CG_WARM / S_PUBLISHERS,
                            seq0, 2) < 0
            || bench_envs_sign(&envs[i], keys[i].key,
                               S_CG_COUNT / S_PUBLISHERS, seq0 + S_CG_WARM, 2)
                   < 0)
            rc = -ENOMEM;
    bench_daemon_t d = { 0 };
    if (rc == 0)
        rc = bench_daemon_start_conf(&d, wrap, dir, true, extra, 120000);
    if (rc < 0) {
        bench_note("parleyd under valgrind: could not run (%s); is valgrind "
                   "installed?", parley_error_name(rc));
        bench_tmpdir_remove(base);
        return 1;
    }
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int)d.pid);
    const char *zero[] = { "callgrind_control", "-z", pid, NULL };
    const char *dumpv[] = { "callgrind_control", "-d", pid, NULL };
    uint64_t warm_acked =
        s_publish_all(d.api, keys, warm, S_CG_WINDOW, S_CG_TIMEOUT_MS);
    uint64_t acked = 0;
    if ((rc = s_run_wait(zero, NULL)) == 0) {
        acked =
            s_publish_all(d.api, keys, envs, S_CG_WINDOW, S_CG_TIMEOUT_MS);
        (void)bench_ping(d.api, 30000, NULL);
        rc = s_run_wait(dumpv, NULL);
    }
    bench_daemon_stop(&d);
    uint64_t total = 0, v_ir = 0, v_calls = 0;
    snprintf(dump, sizeof(dump), "%s.1", out);
    if (rc != 0)
        bench_note("callgrind_control failed (exit %d)", rc);
    else if (bench_callgrind_parse(dump, "crypto_sign_verify_detached",
                                   &total, &v_ir, &v_calls) < 0)
        bench_note("no callgrind dump in %s", dump);
    if (total > 0 && v_calls != acked)
        bench_note("%llu verifies for %llu updates: some were sent again "
                   "(timeouts) and the figure is off",
                   (unsigned long long)v_calls, (unsigned long long)acked);
    if (total > 0 && v_calls > 0 && acked > 0) {
        double per_update = (double)total / (double)acked;
        double per_verify = (double)v_ir / (double)v_calls;
        bench_note("%llu updates after %llu warm-up ones, %d publishers, "
                   "window %d; %llu instructions in all parleyd threads, "
                   "%llu verifies",
                   (unsigned long long)acked, (unsigned long long)warm_acked,
                   S_PUBLISHERS, S_CG_WINDOW, (unsigned long long)total,
                   (unsigned long long)v_calls);
        if (tree)
            bench_ratio("parleyd instructions per durable update", per_update,
                        "Ir", "one raw verify", per_verify, 1.05, true);
        else
            bench_ratio("  same, transparency off", per_update, "Ir",
                        "one raw verify", per_verify, 0, true);
    } else {
        rc = rc != 0 ? rc : -ENODATA;
    }
    for (size_t i = 0; i < S_PUBLISHERS; i++) {
        bench_envs_free(&warm[i]);
        bench_envs_free(&envs[i]);
    }
    bench_tmpdir_remove(base);
    return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    /* --callgrind: only the instruction count (s_callgrind()). */
    bool callgrind = bench_take_flag(&argc, argv, "--callgrind");
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_ingest",
                     "Durable acked updates/s vs raw Ed25519 verify/s; with "
                     "--callgrind, parleyd's instructions per update vs one "
                     "verify (valgrind).");
    if (sodium_init() < 0)
        return 1;
    uint64_t vdur = o.quick ? 300000000ull : 2000000000ull;
    double run_secs = o.quick ? 1.0 : 2.5;

    bench_key_t keys[S_PUBLISHERS];
    if (bench_keys_make(keys, S_PUBLISHERS) < 0)
        return 1;
    if (callgrind) {
        bench_section("ingest: instructions per update (callgrind)");
        int rc = s_callgrind(&o, keys, true);
        if (s_callgrind(&o, keys, false) != 0)
            rc = 1;
        bench_keys_free(keys, S_PUBLISHERS);
        return rc;
    }

    /* The exact bytes parleyd verifies for a typical update. */
    bench_envs_t one;
    if (bench_envs_sign(&one, keys[0].key, 1, 1, 1) < 0)
        return 1;
    uint8_t abuf[16384];
    parley__arena_t arena;
    parley__arena_init(&arena, abuf, sizeof(abuf));
    parley__envelope_t env;
    if (parley__envelope_decode(bench_env(&one, 0), one.lens[0], &env,
                                &arena) != 0)
        return 1;
    size_t clen = sizeof(PARLEY_SIGN_CONTEXT);
    size_t mlen = clen + env.body.len;
    uint8_t *msg = malloc(mlen);
    memcpy(msg, PARLEY_SIGN_CONTEXT, clen);
    memcpy(msg + clen, env.body.data, env.body.len);

    /* The reference is sampled before, between and after the daemon runs
     * (this machine is shared: a sample taken while others are busy is
     * low), and the best sample is used, which is the conservative
     * choice for parleyd's ratio. CPU time per verify is also kept: it
     * hardly depends on the load and is compared with parleyd's CPU
     * time per update. */
    bench_section("ingest: references (this process, this run)");
    bench_note("typical update: body %zu bytes, envelope %u bytes; %s run",
               env.body.len, (unsigned)one.lens[0], o.quick ? "quick" : "full");
    double v1s[3] = { 0 }, us_verify = 0;
    v1s[0] = bench_raw_verify_min(msg, mlen, env.signature, env.signer, 1, vdur,
                                  &us_verify);
    double v2s[3] = { 0 };
    v2s[0] = bench_raw_verify(msg, mlen, env.signature, env.signer, 2, vdur, NULL);
    double lv = s_lib_verify(bench_env(&one, 0), one.lens[0], vdur);

    /* Enough envelopes for run_secs at up to 2.2 x one core's verify rate
     * (a daemon verifying on both cores), so the run lasts >= run_secs
     * unless parleyd beats that. */
    size_t per_pub = (size_t)(v1s[0] * 2.2 * run_secs / S_PUBLISHERS);
    if (per_pub < 1000)
        per_pub = 1000;
    bench_envs_t envs[S_PUBLISHERS];
    uint64_t seq0 = (uint64_t)parley_now_ms() * 1000ull;
    for (size_t i = 0; i < S_PUBLISHERS; i++)
        if (bench_envs_sign(&envs[i], keys[i].key, per_pub, seq0, 2) < 0)
            return 1;

    char base[BENCH_PATH_MAX];
    if (bench_tmpdir_make(base, sizeof(base), "ingest") < 0)
        return 1;
    s_ingest_t on, off, tree_off, again;
    int rc_on = s_run(&on, &o, base, "fsync-on", true, true, keys, envs);
    int rc_tree_off = s_run(&tree_off, &o, base, "fsync-on-tree-off", true, false,
                            keys, envs);
    v1s[1] = bench_raw_verify_min(msg, mlen, env.signature, env.signer, 1, vdur,
                                  &us_verify);
    v2s[1] = bench_raw_verify(msg, mlen, env.signature, env.signer, 2, vdur, NULL);
    if (rc_on == 0 && s_run(&again, &o, base, "fsync-on-2", true, true, keys, envs) == 0
        && again.rate > on.rate)
        on = again;
    if (rc_tree_off == 0
        && s_run(&again, &o, base, "fsync-on-tree-off-2", true, false, keys, envs) == 0
        && again.rate > tree_off.rate)
        tree_off = again;
    int rc_off = s_run(&off, &o, base, "fsync-off", false, true, keys, envs);
    v1s[2] = bench_raw_verify_min(msg, mlen, env.signature, env.signer, 1, vdur,
                                  &us_verify);
    v2s[2] = bench_raw_verify(msg, mlen, env.signature, env.signer, 2, vdur, NULL);
    double v1 = v1s[0], v2 = v2s[0];
    for (int i = 1; i < 3; i++) {
        if (v1s[i] > v1)
            v1 = v1s[i];
        if (v2s[i] > v2)
            v2 = v2s[i];
    }
    parley__arena_reset(&arena);
    bench_envs_free(&one);
    free(msg);

    bench_figure("raw crypto_sign_verify_detached, 1 core", v1, "verifies/s");
    bench_note("best of three samples (before, between, after the daemon "
               "runs): %.0f, %.0f, %.0f; %.1f us of CPU per verify",
               v1s[0], v1s[1], v1s[2], us_verify);
    bench_figure("raw crypto_sign_verify_detached, 2 threads", v2,
                 "verifies/s");
    bench_note("best of three samples, as above: %.0f, %.0f, %.0f", v2s[0],
               v2s[1], v2s[2]);
    bench_ratio("parley_verify() (decode+verify+validate), 1 core", lv,
                "/s", "raw verify 1 core", v1, 0, false);

    bench_section("ingest: parleyd");
    bench_note("%d publishers x %zu pre-signed updates, window %d each",
               S_PUBLISHERS, per_pub, S_WINDOW);
    if (rc_on == 0) {
        bench_ratio("parleyd durable (fsync on), acked", on.rate,
                    "upd/s", "raw verify 1 core", v1, 0.85, false);
        bench_ratio("  same, stretch target (verify on both cores)",
                    on.rate, "upd/s", "raw verify 1 core", v1, 1.5, false);
        bench_ratio("  same, against 2-thread raw verify (both cores)",
                    on.rate, "upd/s", "raw verify 2 threads", v2, 0.90,
                    false);
        bench_note("%llu acked, %llu rejected in %.2f s; parleyd used %.2f "
                   "cores",
                   (unsigned long long)on.acked,
                   (unsigned long long)on.rejected, on.secs, on.daemon_cpu);
        bench_note("parleyd stats: %s", on.stats);
        s_threads_note(&on);
        if (on.rate > 0 && us_verify > 0)
            bench_ratio("  parleyd CPU per durable update",
                        on.daemon_cpu / on.rate * 1e6, "us",
                        "raw verify CPU", us_verify, 0, true);
        s_ceiling(&on, v1);
    } else {
        bench_note("parleyd fsync on: could not run (%s)",
                   parley_error_name(rc_on));
    }
    if (rc_on == 0 && rc_tree_off == 0) {
        bench_ratio("transparency log on (tree, checkpoints), acked", on.rate,
                    "upd/s", "transparency off", tree_off.rate, 0.95, false);
        bench_note("tree off: %llu acked in %.2f s; parleyd used %.2f cores",
                   (unsigned long long)tree_off.acked, tree_off.secs,
                   tree_off.daemon_cpu);
        if (on.rate > 0 && tree_off.rate > 0)
            bench_ratio("  parleyd CPU per durable update, tree on",
                        on.daemon_cpu / on.rate * 1e6, "us", "tree off",
                        tree_off.daemon_cpu / tree_off.rate * 1e6, 0, true);
    }
    if (rc_off == 0) {
        bench_ratio("parleyd fsync off, acked", off.rate, "upd/s",
                    "raw verify 1 core", v1, 0, false);
        bench_note("%llu acked, %llu rejected in %.2f s; parleyd used %.2f "
                   "cores",
                   (unsigned long long)off.acked,
                   (unsigned long long)off.rejected, off.secs,
                   off.daemon_cpu);
        bench_note("parleyd stats: %s", off.stats);
        s_threads_note(&off);
        if (off.rate > 0 && us_verify > 0)
            bench_ratio("  parleyd CPU per update (fsync off)",
                        off.daemon_cpu / off.rate * 1e6, "us",
                        "raw verify CPU", us_verify, 0, true);
    } else {
        bench_note("parleyd fsync off: could not run (%s)",
                   parley_error_name(rc_off));
    }
    for (size_t i = 0; i < S_PUBLISHERS; i++)
        bench_envs_free(&envs[i]);
    bench_keys_free(keys, S_PUBLISHERS);
    bench_tmpdir_remove(base);
    return rc_on == 0 && rc_off == 0 && rc_tree_off == 0 ? 0 : 1;
}
