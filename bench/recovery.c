/*
 * recovery.c - start-up on a large log, and replay catch-up.
 *
 *   1. Write a log of 1,000,000 real signed updates (distinct signer_seq,
 *      valid signatures) with the daemon's own store code (pd_store_*,
 *      sync off: the file contents are what parleyd would have written).
 *   2. Reference: `cat SEGMENTS > /dev/null`, run twice, the second timed
 *      (page cache warm, as it is for the daemon start that follows).
 *   3. Time from spawning parleyd on that state directory until
 *      parley_ping() answers (parleyd scans the log and rebuilds its
 *      indexes before it binds): with `transparency off` (the reference),
 *      then with the Merkle tree: its first start (the hashes of every
 *      record computed and written) and a restart (every stored hash
 *      checked against its record).
 *   4. Replay catch-up: a parley_sub_t with PARLEY_START_SEQ from
 *      head - 100,000 + 1, counted until it has delivered up to head.
 *   5. Reference: live fan-out to one parley_sub_t on the same daemon, fed
 *      by two pipelining publishers, from first to last delivery.
 * Both subscribers re-verify every signature (that is what the library
 * does), so both rates include one Ed25519 verify per update.
 */
#include "bench.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define S_CHUNK 65536
#define S_LIVE_PUBS 2

/* Write n records signed by key into dir with the store. */
static int
s_build_log(const char *dir, const bench_key_t *key, size_t n,
            uint64_t first_signer_seq)
{
    char errbuf[256] = "";
    int err = 0;
    pd_store_opts_t so = { .sync = false };
    pd_store_t *st = pd_store_open(dir, &so, NULL, NULL, errbuf,
                                   sizeof(errbuf), &err);
    if (st == NULL) {
        fprintf(stderr, "pd_store_open %s: %s %s\n", dir, strerror(-err),
                errbuf);
        return err;
    }
    int rc = 0;
    for (size_t done = 0; done < n && rc == 0;) {
        size_t k = n - done < S_CHUNK ? n - done : S_CHUNK;
        bench_envs_t e;
        if ((rc = bench_envs_sign(&e, key->key, k, first_signer_seq + done,
                                  2)) < 0)
            break;
        int64_t now = parley_now_ms();
        for (size_t i = 0; i < k && rc == 0; i++)
            rc = pd_store_append(st, pd_store_next_seq(st), now,
                                 bench_env(&e, i), e.lens[i]);
        if (rc == 0)
            rc = pd_store_sync(st);
        bench_envs_free(&e);
        done += k;
    }
    if (rc < 0)
        fprintf(stderr, "store append: %s\n", strerror(-rc));
    pd_store_close(&st);
    return rc;
}

/* Run cat over every file in dir with output to /dev/null; seconds. */
static double
s_cat(const char *dir, uint64_t *bytes)
{
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return -1;
    size_t cap = 64, n = 0;
    char **argv = calloc(cap, sizeof(*argv));
    argv[n++] = strdup("cat");
    *bytes = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n + 2 >= cap) {
            cap *= 2;
            argv = realloc(argv, cap * sizeof(*argv));
        }
        char path[BENCH_PATH_MAX + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            *bytes += (uint64_t)sb.st_size;
            argv[n++] = strdup(path);
        }
    }
    closedir(dp);
    argv[n] = NULL;
    uint64_t t0 = bench_now_ns();
    pid_t pid = bench_spawn((const char *const *)argv, NULL);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    double secs = bench_secs(t0, bench_now_ns());
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    free(argv);
    return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? secs : -1;
}

/* Start parleyd on d->dir and time it until ping answers. */
static double
s_start_timed(bench_daemon_t *d, const bench_opts_t *o, const char *dir,
              const char *extra, uint64_t *head)
{
    /* bench_daemon_start polls ping every few ms; for the timing, poll
     * the port itself (bound only after recovery) every 0.2 ms first. */
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    snprintf(d->state_dir, sizeof(d->state_dir), "%s/state", dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/parleyd.log", dir);
    d->api_port = bench_free_port();
    d->feed_port = bench_free_port();
    snprintf(d->api, sizeof(d->api), "tcp://127.0.0.1:%d", d->api_port);
    snprintf(d->feed, sizeof(d->feed), "tcp://127.0.0.1:%d", d->feed_port);
    char conf[4 * BENCH_PATH_MAX], conf_path[BENCH_PATH_MAX + 32];
    snprintf(conf, sizeof(conf),
             "api %s\nfeed %s\nstate_dir %s\nkeyring %s/keyring\n"
             "fsync on\nlog_level info\nmax_clock_skew 3600\n"
             "rate_limit 0\nmax_connections 2048\n%s",
             d->api, d->feed, d->state_dir, dir, extra);
    snprintf(conf_path, sizeof(conf_path), "%s/parleyd.conf", dir);
    if (bench_file_write(conf_path, conf) < 0)
        return -1;
    const char *argv[] = { o->parleyd, "-c", conf_path, NULL };
    uint64_t t0 = bench_now_ns();
    if ((d->pid = bench_spawn(argv, d->log_path)) < 0) {
        d->pid = 0;
        return -1;
    }
    int rc = bench_wait_port(d->api_port, 120000, d->pid);
    if (rc == 0)
        rc = bench_ping(d->api, 10000, head);
    double secs = bench_secs(t0, bench_now_ns());
    if (rc != 0) {
        bench_log_tail(d->log_path, "parleyd (start on a large log)");
        bench_daemon_stop(d);
        return -1;
    }
    return secs;
}

typedef struct s_counted {
    uint64_t n, gaps, rejected;
    uint64_t first_ns, last_ns;
    int err;
} s_counted_t;

/* Read sub until it has delivered seq `until`; count and time it. */
static void
s_drain(parley_sub_t *sub, uint64_t until, int idle_ms, s_counted_t *c)
{
    memset(c, 0, sizeof(*c));
    while (parley_sub_last_seq(sub) < until) {
        const parley_event_t *ev;
        int rc = parley_sub_next(sub, idle_ms, &ev);
        if (rc <= 0) {
            c->err = rc == 0 ? PARLEY_ETIMEOUT : rc;
            break;
        }
        parley_event_type_t type = parley_event_type(ev);
        if (type == PARLEY_EVENT_DELIVERY) {
            uint64_t now = bench_now_ns();
            if (c->n++ == 0)
                c->first_ns = now;
            c->last_ns = now;
        } else if (type == PARLEY_EVENT_GAP) {
            c->gaps++;
        } else if (type == PARLEY_EVENT_REJECTED) {
            c->rejected++;
        }
    }
}

int
main(int argc, char **argv)
{
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_recovery",
                     "parleyd start-up on a 1,000,000-record log vs cat; "
                     "replay catch-up vs live fan-out.");
    if (sodium_init() < 0)
        return 1;
    size_t nrec = o.quick ? 100000 : 1000000;
    size_t behind = o.quick ? 10000 : 100000;
    size_t nlive = o.quick ? 5000 : 40000;

    char base[BENCH_PATH_MAX], state[BENCH_PATH_MAX + 16],
        ring[BENCH_PATH_MAX + 16];
    if (bench_tmpdir_make(base, sizeof(base), "recovery") < 0)
        return 1;
    snprintf(state, sizeof(state), "%s/state", base);
    snprintf(ring, sizeof(ring), "%s/keyring", base);
    bench_key_t keys[S_LIVE_PUBS];
    if (bench_keys_make(keys, S_LIVE_PUBS) < 0 ||
        bench_keyring_write(ring, keys, S_LIVE_PUBS) < 0 ||
        mkdir(state, 0700) < 0)
        return 1;

    bench_section("recovery: start-up and replay");
    uint64_t sseq0 = (uint64_t)parley_now_ms() * 1000ull;
    uint64_t tb = bench_now_ns();
    if (s_build_log(state, &keys[0], nrec, sseq0) < 0)
        return 1;
    bench_note("built a log of %zu signed updates in %.1f s (signing on 2 "
               "threads + pd_store appends, sync off); %s run",
               nrec, bench_secs(tb, bench_now_ns()), o.quick ? "quick" : "full");

    uint64_t bytes = 0;
    (void)s_cat(state, &bytes);            /* warm the page cache */
    double cat_s = s_cat(state, &bytes);
    bench_figure("cat SEGMENTS > /dev/null (warm)", cat_s * 1e3, "ms");
    bench_note("%.1f MiB in segments, %.0f MiB/s", (double)bytes / 1048576.0,
               (double)bytes / 1048576.0 / cat_s);

    bench_daemon_t d;
    uint64_t head = 0;
    int rc = 1;
    char name[96];
    /* The reference: no tree. */
    double start_s = s_start_timed(&d, &o, base, "transparency off\n", &head);
    if (start_s < 0 || bench_daemon_stop(&d) != 0) {
        bench_note("parleyd did not start on the log");
        goto out;
    }
    snprintf(name, sizeof(name), "parleyd start until ping, %zu records", nrec);
    bench_ratio(name, start_s * 1e3, "ms", "cat of the same files", cat_s * 1e3,
                nrec >= 1000000 ? 10.0 : 0, true);
    bench_note("transparency off");
    /* The tree: built at the first start, checked at the next. */
    double build_s = s_start_timed(&d, &o, base, "", &head);
    if (build_s < 0 || bench_daemon_stop(&d) != 0) {
        bench_note("parleyd did not start on the log with the tree");
        goto out;
    }
    bench_ratio("  first start with the tree (hashes made)", build_s * 1e3, "ms",
                "transparency off", start_s * 1e3, 0, true);
    double check_s = s_start_timed(&d, &o, base, "", &head);
    if (check_s < 0) {
        bench_note("parleyd did not restart on the log with the tree");
        goto out;
    }
    bench_ratio("  restart with the tree (every hash checked)", check_s * 1e3, "ms",
                "transparency off", start_s * 1e3, 0, true);
    start_s = check_s;
    bench_note("%.0f records/s scanned; head seq %llu", (double)nrec / start_s,
               (unsigned long long)head);
    uint64_t hwm = 0, rss = 0;
    if (bench_proc_mem(d.pid, &hwm, &rss) == 0)
        bench_note("parleyd after recovery: VmRSS %.1f MiB, VmHWM %.1f MiB "
                   "(%.0f bytes per record, counting all of VmRSS)",
                   (double)rss / 1048576.0, (double)hwm / 1048576.0,
                   (double)rss / (double)nrec);
    if (head != nrec)
        bench_note("WARNING: head seq %llu != %zu records written",
                   (unsigned long long)head, nrec);

    /* Replay catch-up. */
    uint64_t t0 = bench_now_ns();
    parley_sub_t *sub = bench_sub_new(d.api, PARLEY_START_SEQ,
                                      head - behind + 1);
    if (sub == NULL) {
        bench_note("parley_sub_new: %s", parley_error_name(-errno));
        goto stop;
    }
    s_counted_t rep;
    s_drain(sub, head, 10000, &rep);
    double rep_s = bench_secs(t0, bench_now_ns());
    parley_sub_destroy(&sub);
    double rep_rate = (double)rep.n / rep_s;
    if (rep.err != 0 || rep.n != behind)
        bench_note("replay: %llu of %zu delivered, gaps %llu, rejected %llu, "
                   "error %s",
                   (unsigned long long)rep.n, behind,
                   (unsigned long long)rep.gaps,
                   (unsigned long long)rep.rejected,
                   rep.err ? parley_error_name(rep.err) : "none");

    /* Live fan-out to one parley_sub_t on the same daemon. */
    sub = bench_sub_new(d.api, PARLEY_START_LIVE, 0);
    if (sub == NULL) {
        bench_note("parley_sub_new (live): %s", parley_error_name(-errno));
        goto stop;
    }
    bench_envs_t envs[S_LIVE_PUBS];
    uint64_t lseq0 = (uint64_t)parley_now_ms() * 1000ull;
    if (lseq0 <= sseq0 + nrec)
        lseq0 = sseq0 + nrec + 1;
    for (size_t i = 0; i < S_LIVE_PUBS; i++)
        if (bench_envs_sign(&envs[i], keys[i].key, nlive / S_LIVE_PUBS, lseq0,
                            2) < 0)
            goto stop;
    bench_sleep_ns(200000000);
    atomic_int stopflag = 0;
    bench_pubber_t p[S_LIVE_PUBS];
    pthread_t tid[S_LIVE_PUBS];
    for (size_t i = 0; i < S_LIVE_PUBS; i++) {
        p[i] = (bench_pubber_t){ .api = d.api, .key = keys[i].key,
                                 .envs = &envs[i], .window = 256,
                                 .stop = &stopflag };
        pthread_create(&tid[i], NULL, bench_pubber_run, &p[i]);
    }
    s_counted_t live;
    s_drain(sub, head + (nlive / S_LIVE_PUBS) * S_LIVE_PUBS, 10000, &live);
    uint64_t acked = 0;
    for (size_t i = 0; i < S_LIVE_PUBS; i++) {
        pthread_join(tid[i], NULL);
        acked += atomic_load(&p[i].acked);
        bench_envs_free(&envs[i]);
    }
    parley_sub_destroy(&sub);
    double live_rate = live.n > 1 ? (double)(live.n - 1) /
                                        bench_secs(live.first_ns, live.last_ns)
                                  : 0;
    bench_figure("live fan-out to 1 parley_sub_t", live_rate, "deliveries/s");
    bench_note("%llu delivered of %llu acked; gap events %llu",
               (unsigned long long)live.n, (unsigned long long)acked,
               (unsigned long long)live.gaps);
    snprintf(name, sizeof(name), "replay catch-up, %zu behind", behind);
    bench_ratio(name, rep_rate, "upd/s", "live fan-out to 1 sub", live_rate,
                0.5, false);
    rc = 0;
stop:
    {
        int st = bench_daemon_stop(&d);
        if (st != 0)
            fprintf(stderr, "parleyd exited with status %d\n", st);
    }
out:
    bench_keys_free(keys, S_LIVE_PUBS);
    bench_tmpdir_remove(base);
    return rc;
}
