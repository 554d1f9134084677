/*
 * soak.c - parleyd under steady load and injected faults for minutes
 * (issue 11, acceptance 2): nothing acked is lost.
 *
 * One parleyd (fsync on), publishers that send 500 updates/s in all
 * (four library publishers sharing one key, each paced), and 20 reliable
 * subscriptions (parley_sub_t, from seq 1), for 10 minutes by default.
 * Every --fault-every seconds the next fault of the cycle hits parleyd:
 *
 *   SIGHUP     a reload (keyring and log level read again)
 *   SIGSTOP    the process stops for 4 s (longer than the subscribers'
 *              three heartbeat intervals), then SIGCONT
 *   kill -9    the process dies; it is started again at once on the same
 *              state directory and ports
 *
 * At the end the publishers stop, the subscribers catch up with the log,
 * and the run prints: updates acked (and answered as duplicates after a
 * resend, timed out, rejected), what each subscriber received, how many
 * acked updates a subscriber never received (lost: must be 0) and how
 * many it received twice, and parleyd's RSS and open file descriptors at
 * the start and at the end. Exit status 1 if anything acked was lost or
 * delivered twice.
 *
 *   bench_soak [--seconds N] [--rate R] [--subscribers N]
 *              [--fault-every S] [--quick] [--parleyd PATH]
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_PUBLISHERS 4
#define S_STOP_MS 4000        /* how long SIGSTOP holds parleyd */
#define S_CATCH_UP_MS 120000  /* subscribers' time to catch up at the end */

/* What the run is asked for. */
typedef struct {
    int seconds;
    int rate;                 /* updates per second, all publishers */
    int subscribers;
    int fault_every;          /* seconds between faults */
} s_conf_t;

/* Shared by every thread. */
typedef struct {
    s_conf_t conf;
    const char *api;
    const parley_key_t *key;
    size_t cap;               /* seqs the tables hold */
    atomic_uchar *acked;      /* [seq]: acked to a publisher */
    atomic_int stop_pub;
    atomic_int stop_sub;
} s_run_t;

typedef struct {
    s_run_t *run;
    pthread_t thread;
    int index;
    uint64_t acked, duplicates, timeouts, rejected;
    int first_error;
    uint64_t max_seq;
} s_pubber_t;

typedef struct {
    s_run_t *run;
    pthread_t thread;
    parley_sub_t *sub;
    uint8_t *got;             /* [seq]: times handed out */
    atomic_uint_fast64_t received, last_seq;
    uint64_t beyond;          /* seqs past the table (should be none) */
    uint64_t gaps, rejected, disconnects, connects, errors;
    int last_error;           /* of parley_sub_next() */
} s_subber_t;

/* ------------------------------------------------------------ threads */

/* Publish rate / S_PUBLISHERS updates per second until stop_pub. */
static void *
s_pub_run(void *arg)
{
    s_pubber_t *p = arg;
    s_run_t *run = p->run;
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = run->api;
    o.timeout_ms = 2000;
    o.attempts = 6; /* outlasts a SIGSTOP and a restart */
    parley_pub_t *pub = parley_pub_new(run->key, &o);
    parley_update_t *u = parley_update_new();
    if (pub == NULL || u == NULL) {
        p->first_error = -errno;
        parley_pub_destroy(&pub);
        return NULL;
    }
    uint64_t period = 1000000000ull * S_PUBLISHERS / (uint64_t)run->conf.rate;
    uint64_t next = bench_now_ns() + period * (uint64_t)p->index / S_PUBLISHERS;
    for (uint64_t i = 0; !atomic_load(&run->stop_pub); i++) {
        uint64_t now = bench_now_ns();
        if (now < next)
            bench_sleep_ns(next - now);
        /* After a stall, go on at the rate rather than in a burst. */
        next = (now > next + period ? now : next) + period;
        bench_update_fill(u, i * S_PUBLISHERS + (uint64_t)p->index, 0, 0);
        uint64_t seq = 0;
        int rc = parley_pub_publish(pub, u, &seq);
        if (rc == 0 || rc == PARLEY_DUPLICATE) {
            if (seq < run->cap)
                atomic_store(&run->acked[seq], 1);
            if (seq > p->max_seq)
                p->max_seq = seq;
            p->acked++;
            p->duplicates += rc == PARLEY_DUPLICATE;
        } else if (rc == PARLEY_ETIMEOUT) {
            p->timeouts++;
        } else {
            p->rejected++;
            if (p->first_error == 0)
                p->first_error = rc;
        }
    }
    parley_update_destroy(&u);
    parley_pub_destroy(&pub);
    return NULL;
}

/* Take events until stop_sub; count each delivery by seq. */
static void *
s_sub_run(void *arg)
{
    s_subber_t *s = arg;
    s_run_t *run = s->run;
    while (!atomic_load(&run->stop_sub)) {
        const parley_event_t *ev;
        int rc = parley_sub_next(s->sub, 200, &ev);
        if (rc < 0) {
            s->errors++; /* asked again by the next call */
            s->last_error = rc;
            continue;
        }
        if (rc == 0)
            continue;
        uint64_t seq = parley_event_seq(ev);
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_DELIVERY:
            if (seq < run->cap) {
                if (s->got[seq] < UINT8_MAX)
                    s->got[seq]++;
            } else {
                s->beyond++;
            }
            atomic_fetch_add(&s->received, 1);
            atomic_store(&s->last_seq, seq);
            break;
        case PARLEY_EVENT_GAP:
            s->gaps++;
            break;
        case PARLEY_EVENT_REJECTED:
            s->rejected++;
            break;
        case PARLEY_EVENT_DISCONNECTED:
            s->disconnects++;
            break;
        case PARLEY_EVENT_CONNECTED:
            s->connects++;
            break;
        default:
            break;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- parleyd */

/* Open file descriptors of pid (-1 if unknown). */
static int
s_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The fault of step k of the cycle; counts in n[3]. 0 or an error. */
static int
s_fault(bench_daemon_t *d, const char *parleyd, int k, int n[3],
        uint64_t *restart_ms)
{
    switch (k % 3) {
    case 0:
        n[0]++;
        return kill(d->pid, SIGHUP) == 0 ? 0 : -errno;
    case 1:
        n[1]++;
        if (kill(d->pid, SIGSTOP) != 0)
            return -errno;
        bench_sleep_ns((uint64_t)S_STOP_MS * 1000000ull);
        return kill(d->pid, SIGCONT) == 0 ? 0 : -errno;
    default: {
        n[2]++;
        (void)kill(d->pid, SIGKILL);
        (void)waitpid(d->pid, NULL, 0);
        uint64_t t0 = bench_now_ns();
        int rc = bench_daemon_restart(d, parleyd, 30000);
        uint64_t ms = (bench_now_ns() - t0) / 1000000ull;
        if (ms > *restart_ms)
            *restart_ms = ms;
        return rc;
    }
    }
}

/* ---------------------------------------------------------------- main */

/* Take soak's own flags out of argv; the rest go to bench_opts_parse. */
static int
s_args(s_conf_t *c, int argc, char **argv, char **rest)
{
    *c = (s_conf_t){ .seconds = 600, .rate = 500, .subscribers = 20,
                     .fault_every = 20 };
    int n = 0;
    rest[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        int *v = strcmp(argv[i], "--seconds") == 0       ? &c->seconds
                 : strcmp(argv[i], "--rate") == 0        ? &c->rate
                 : strcmp(argv[i], "--subscribers") == 0 ? &c->subscribers
                 : strcmp(argv[i], "--fault-every") == 0 ? &c->fault_every
                                                         : NULL;
        if (v != NULL && i + 1 < argc) {
            *v = atoi(argv[++i]);
            if (*v <= 0) {
                fprintf(stderr, "bench_soak: %s needs a positive number\n",
                        argv[i - 1]);
                exit(2);
            }
        } else {
            rest[n++] = argv[i];
        }
    }
    rest[n] = NULL;
    return n;
}

int
main(int argc, char **argv)
{
    s_conf_t conf;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    if (rest == NULL)
        return 1;
    int nrest = s_args(&conf, argc, argv, rest);
    bench_opts_t o;
    bench_opts_parse(&o, nrest, rest, "bench_soak",
                     "parleyd for --seconds N (600) at --rate R updates/s "
                     "(500) with\n--subscribers N (20), and SIGHUP, SIGSTOP "
                     "or kill -9 every --fault-every S\nseconds (20); "
                     "--quick: 60 s. Prints acked, received, lost (must be "
                     "0),\nduplicates, parleyd's RSS and fds.");
    if (o.quick && conf.seconds == 600)
        conf.seconds = 60;

    char dir[BENCH_PATH_MAX], ring[BENCH_PATH_MAX + 16];
    bench_key_t key;
    bench_daemon_t d;
    if (bench_tmpdir_make(dir, sizeof(dir), "soak") < 0
        || bench_keys_make(&key, 1) < 0)
        return 1;
    snprintf(ring, sizeof(ring), "%s/keyring", dir);
    if (bench_keyring_write(ring, &key, 1) < 0
        || bench_daemon_start(&d, o.parleyd, dir, true, 10000) < 0)
        return 1;

    s_run_t run = { .conf = conf, .api = d.api, .key = key.key };
    run.cap = (size_t)conf.rate * (size_t)conf.seconds * 2 + 100000;
    run.acked = calloc(run.cap, 1);
    s_subber_t *subs = calloc((size_t)conf.subscribers, sizeof(*subs));
    s_pubber_t pubs[S_PUBLISHERS] = { 0 };
    if (run.acked == NULL || subs == NULL)
        return 1;

    bench_section("soak");
    bench_note("%d s at %d updates/s, %d subscribers, a fault every %d s "
               "(SIGHUP, SIGSTOP %d s, kill -9 in turn), fsync on",
               conf.seconds, conf.rate, conf.subscribers, conf.fault_every,
               S_STOP_MS / 1000);
    for (int i = 0; i < conf.subscribers; i++) {
        subs[i].run = &run;
        subs[i].got = calloc(run.cap, 1);
        subs[i].sub = bench_sub_new(d.api, PARLEY_START_SEQ, 1);
        if (subs[i].got == NULL || subs[i].sub == NULL) {
            fprintf(stderr, "bench_soak: subscriber %d: %s\n", i,
                    parley_error_name(-errno));
            return 1;
        }
        pthread_create(&subs[i].thread, NULL, s_sub_run, &subs[i]);
    }
    pid_t first_pid = d.pid;
    uint64_t hwm0, rss0;
    (void)bench_proc_mem(d.pid, &hwm0, &rss0);
    int fds0 = s_fds(d.pid);

    for (int i = 0; i < S_PUBLISHERS; i++) {
        pubs[i] = (s_pubber_t){ .run = &run, .index = i };
        pthread_create(&pubs[i].thread, NULL, s_pub_run, &pubs[i]);
    }
    uint64_t start = bench_now_ns(), restart_ms = 0;
    uint64_t end = start + (uint64_t)conf.seconds * 1000000000ull;
    int faults[3] = { 0 }, step = 0, rc = 0;
    double peak_rss = rss0;
    for (;;) {
        uint64_t due = start + (uint64_t)(step + 1) * (uint64_t)conf.fault_every
                                   * 1000000000ull;
        uint64_t now = bench_now_ns();
        if (due >= end || rc < 0) {
            if (end > now)
                bench_sleep_ns(end - now);
            break;
        }
        while ((now = bench_now_ns()) < due) {
            bench_sleep_ns(due - now < 1000000000ull ? due - now
                                                     : 1000000000ull);
            uint64_t h, r;
            if (bench_proc_mem(d.pid, &h, &r) == 0 && r > peak_rss)
                peak_rss = (double)r;
        }
        rc = s_fault(&d, o.parleyd, step++, faults, &restart_ms);
    }
    atomic_store(&run.stop_pub, 1);
    for (int i = 0; i < S_PUBLISHERS; i++)
        pthread_join(pubs[i].thread, NULL);
    double secs = bench_secs(start, bench_now_ns());

    /* Everything in the log, then every subscriber up to its head. */
    uint64_t head = 0;
    (void)bench_ping(d.api, 5000, &head);
    uint64_t deadline = bench_now_ns() + (uint64_t)S_CATCH_UP_MS * 1000000ull;
    for (int i = 0; i < conf.subscribers && bench_now_ns() < deadline; i++)
        while (atomic_load(&subs[i].last_seq) < head
               && bench_now_ns() < deadline)
            bench_sleep_ns(50000000);
    atomic_store(&run.stop_sub, 1);
    for (int i = 0; i < conf.subscribers; i++)
        pthread_join(subs[i].thread, NULL);
    uint64_t hwm1, rss1;
    (void)bench_proc_mem(d.pid, &hwm1, &rss1);
    int fds1 = s_fds(d.pid);
    /* What the daemon's read scheduler says at the end (0 when absent). */
    static const char *const s_read_stats[] = {
        "reads_queued", "reads_held", "reads_deferred", "reads_refused",
        "reads_dropped", "reply_bytes", "replies_dropped", "connections",
    };
    char read_stats[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof(s_read_stats) / sizeof(s_read_stats[0]);
         i++)
        used += (size_t)snprintf(read_stats + used, sizeof(read_stats) - used,
                                 "%s%s %" PRIu64, i > 0 ? ", " : "",
                                 s_read_stats[i],
                                 bench_daemon_stat(&d, s_read_stats[i],
                                                   NULL));

    /* The tally. */
    uint64_t acked = 0, dups = 0, timeouts = 0, rejected = 0;
    int first_error = 0;
    for (int i = 0; i < S_PUBLISHERS; i++) {
        acked += pubs[i].acked;
        dups += pubs[i].duplicates;
        timeouts += pubs[i].timeouts;
        rejected += pubs[i].rejected;
        if (first_error == 0)
            first_error = pubs[i].first_error;
    }
    uint64_t acked_seqs = 0;
    for (size_t s = 1; s < run.cap; s++)
        acked_seqs += atomic_load(&run.acked[s]);
    bench_figure("seconds", secs, "s");
    bench_figure("acked", (double)acked, "updates");
    bench_figure("acked, distinct seqs", (double)acked_seqs, "seqs");
    bench_figure("rate acked", acked / secs, "updates/s");
    bench_figure("acked as duplicate (resent)", (double)dups, "updates");
    bench_figure("publish timed out", (double)timeouts, "updates");
    bench_figure("publish rejected", (double)rejected, "updates");
    if (first_error != 0)
        bench_note("first error: %s", parley_error_name(first_error));
    bench_figure("log head", (double)head, "seq");
    bench_note("faults: %d SIGHUP, %d SIGSTOP, %d kill -9 (longest restart "
               "%" PRIu64 " ms)",
               faults[0], faults[1], faults[2], restart_ms);
    uint64_t lost_total = 0, twice_total = 0;
    for (int i = 0; i < conf.subscribers; i++) {
        s_subber_t *s = &subs[i];
        uint64_t lost = 0, twice = 0;
        for (size_t q = 1; q < run.cap; q++) {
            if (atomic_load(&run.acked[q]) && s->got[q] == 0)
                lost++;
            twice += s->got[q] > 1 ? s->got[q] - 1u : 0u;
        }
        lost_total += lost;
        twice_total += twice;
        printf("  subscriber %2d: received %" PRIu64 ", lost %" PRIu64
               ", duplicates %" PRIu64 ", gaps %" PRIu64 ", rejected %" PRIu64
               ", disconnects %" PRIu64 ", connects %" PRIu64
               ", errors %" PRIu64 "%s%s\n",
               i, atomic_load(&s->received), lost, twice, s->gaps,
               s->rejected, s->disconnects, s->connects, s->errors,
               s->errors > 0 ? ", last " : "",
               s->errors > 0 ? parley_error_name(s->last_error) : "");
        if (lost > 0)
            printf("                 last seq %" PRIu64 ", endpoint %s\n",
                   atomic_load(&s->last_seq), parley_sub_endpoint(s->sub));
        parley_sub_destroy(&s->sub);
        free(s->got);
    }
    bench_figure("lost (acked, never received), all subscribers",
                 (double)lost_total, "updates");
    bench_figure("received twice, all subscribers", (double)twice_total,
                 "updates");
    printf("  parleyd at the start (pid %d): RSS %.1f MiB, %d open fds\n",
           (int)first_pid, rss0 / 1048576.0, fds0);
    printf("  parleyd at the end   (pid %d): RSS %.1f MiB (peak of this "
           "process %.1f MiB), %d open fds\n",
           (int)d.pid, rss1 / 1048576.0, hwm1 / 1048576.0, fds1);
    bench_note("largest RSS sampled during the run: %.1f MiB",
               peak_rss / 1048576.0);
    bench_note("parleyd at the end: %s", read_stats);
    if (rc < 0)
        fprintf(stderr, "bench_soak: a fault failed: %s\n",
                parley_error_name(rc));

    bench_daemon_stop(&d);
    bench_keys_free(&key, 1);
    bench_tmpdir_remove(dir);
    free(run.acked);
    free(subs);
    free(rest);
    return lost_total == 0 && twice_total == 0 && rc == 0 ? 0 : 1;
}
