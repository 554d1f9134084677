/*
 * hostile.c - valid publishers' throughput while one peer floods parleyd
 * with forged updates and oversized frames (issue 4, acceptance 4).
 *
 * One parleyd (fsync off, so that the loop's CPU and not the disk is what
 * a flood could take away; rate_limit 0, so that the valid publishers are
 * not capped by their own signer buckets), P publisher threads with their
 * own keys pipelining pre-signed updates. Three phases in the same run:
 *
 *   unloaded   the publishers alone
 *   flooded    the same, while a hostile peer sends updates whose
 *              signatures do not verify, forged under the first
 *              publisher's own key (the worst case: that signer's bucket
 *              and verification both stand to suffer), as fast as the
 *              socket takes them, plus a second peer sending frames one
 *              byte over max_message_bytes and a third frames far over it
 *              (each of which costs it its connection)
 *   unloaded   again, so that a daemon slowing down as its log grows does
 *              not pass for the flood's doing
 *
 * The flooded phase runs twice: with at least 10,000 forged updates
 * spread evenly over the phase (the acceptance figure), and with the
 * flooder sending as fast as its socket takes them (several times more;
 * every request still costs the loop a receive, a decode and an answer).
 *
 * It reports acked updates per second in each phase, the flooded rates
 * against the mean of the unloaded ones (target for the paced flood: 90%
 * or more), how many forged updates the daemon verified and how many it
 * refused unverified, and parleyd's peak RSS after each phase.
 */
#include "bench.h"
#include "codec.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define S_PUBLISHERS 2
#define S_WINDOW 128
#define S_MAX_MSG 65536     /* max_message_bytes (the default) */
#define S_FORGED_MIN 10000  /* forged updates the flood must reach */
#define S_FLOOD_WINDOW 2000 /* forged requests in flight */

/* ------------------------------------------------------------- daemon */

static int
s_daemon_start(bench_daemon_t *d, const char *parleyd, const char *dir)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    snprintf(d->state_dir, sizeof(d->state_dir), "%s/state", dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/parleyd.log", dir);
    if (mkdir(d->state_dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    if (bench_daemon_ports(d) < 0)
        return -EADDRINUSE;
    char conf[4 * BENCH_PATH_MAX], conf_path[BENCH_PATH_MAX + 32];
    snprintf(conf, sizeof(conf),
             "# written by bench_hostile\n"
             "api %s\nfeed %s\nstate_dir %s\nkeyring %s/keyring\n"
             "fsync off\nlog_level warn\nmax_clock_skew 3600\n"
             "max_message_bytes %d\nrate_limit 0\n",
             d->api, d->feed, d->state_dir, dir, S_MAX_MSG);
    snprintf(conf_path, sizeof(conf_path), "%s/parleyd.conf", dir);
    int rc = bench_file_write(conf_path, conf);
    if (rc < 0)
        return rc;
    const char *argv[] = { parleyd, "-c", conf_path, NULL };
    d->pid = bench_spawn(argv, d->log_path);
    if (d->pid < 0) {
        rc = d->pid;
        d->pid = 0;
        return rc;
    }
    uint64_t deadline = bench_now_ns() + 10000000000ull;
    while (bench_now_ns() < deadline && bench_alive(d->pid)) {
        if (bench_ping(d->api, 250, NULL) == 0)
            return 0;
        bench_sleep_ns(5000000);
    }
    bench_log_tail(d->log_path, "parleyd (did not start)");
    bench_daemon_stop(d);
    return -ECHILD;
}

/* -------------------------------------------------------------- flood */

typedef struct {
    const char *api;
    const bench_envs_t *forged; /* valid envelopes with a broken byte */
    double rate;                /* forged updates per second, 0 = as fast
                                   as the socket takes them */
    atomic_int *stop;
    /* results */
    uint64_t sent, badsig, limited, other;
    uint64_t over_sent, over_rejected; /* frames one byte over the limit */
    uint64_t huge_sent;                /* frames far over it */
    int err;
} s_flood_t;

/* Encode a publish request around env into buf. */
static size_t
s_request(uint8_t *buf, size_t cap, uint64_t id, const void *env, size_t len)
{
    parley__request_t *rq = calloc(1, sizeof(*rq));
    size_t n = 0;
    if (rq == NULL)
        return 0;
    rq->request_id = id;
    rq->op = PARLEY__OP_PUBLISH;
    rq->update.data = env;
    rq->update.len = len;
    if (parley__request_encode(rq, buf, cap, &n) < 0)
        n = 0;
    free(rq);
    return n;
}

/* Read and count every answer waiting on the forging socket. */
static void
s_flood_answers(s_flood_t *f, void *sock, uint64_t *inflight)
{
    uint8_t buf[1024], space[4096];
    for (;;) {
        int n = zmq_recv(sock, buf, sizeof(buf), ZMQ_DONTWAIT);
        if (n < 0)
            return;
        parley__arena_t arena;
        parley__reply_t r;
        parley__arena_init(&arena, space, sizeof(space));
        if (parley__reply_decode(buf, (size_t)n, &r, &arena) == 0
            && r.type == PARLEY__REPLY_REJECT) {
            if (r.code == PARLEY_EBADSIG)
                f->badsig++;
            else if (r.code == PARLEY_ERATELIMITED)
                f->limited++;
            else
                f->other++;
        } else {
            f->other++;
        }
        parley__arena_reset(&arena);
        if (*inflight > 0)
            (*inflight)--;
    }
}

static void *
s_flood_run(void *arg)
{
    s_flood_t *f = arg;
    void *ctx = zmq_ctx_new();
    int zero = 0, hwm = 100000;
    void *forge = zmq_socket(ctx, ZMQ_DEALER);
    void *over = zmq_socket(ctx, ZMQ_DEALER);
    void *huge = zmq_socket(ctx, ZMQ_DEALER);
    void *socks[] = { forge, over, huge };
    for (int i = 0; i < 3; i++) {
        zmq_setsockopt(socks[i], ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(socks[i], ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(socks[i], ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_connect(socks[i], f->api);
    }
    uint8_t *req = malloc(BENCH_ENV_SLOT + 64);
    uint8_t *big = calloc(1, 3 * S_MAX_MSG);
    if (req == NULL || big == NULL) {
        f->err = -ENOMEM;
        goto out;
    }
    /* A frame starting like a request (id 1) and one byte too long. */
    big[0] = 0x08;
    big[1] = 0x01;
    memset(big + 2, 0x5a, 3 * S_MAX_MSG - 2);
    uint64_t inflight = 0, i = 0, t0 = bench_now_ns();
    while (!atomic_load(f->stop)) {
        s_flood_answers(f, forge, &inflight);
        if (f->rate > 0
            && (double)(bench_now_ns() - t0) * 1e-9 * f->rate < (double)i) {
            /* Paced: the next burst is due in a few ms. Sleeping (not
             * spinning) keeps the flooder's own CPU out of the figures. */
            zmq_pollitem_t it = { forge, 0, ZMQ_POLLIN, 0 };
            zmq_poll(&it, 1, 5);
            continue;
        }
        if (inflight < S_FLOOD_WINDOW) {
            size_t k = i % f->forged->n;
            size_t n = s_request(req, BENCH_ENV_SLOT + 64, i + 1,
                                 bench_env(f->forged, k), f->forged->lens[k]);
            if (n > 0 && zmq_send(forge, req, n, ZMQ_DONTWAIT) >= 0) {
                f->sent++;
                inflight++;
                i++;
                /* every 50 forged updates, a frame one byte over the
                 * limit; every 2000, one far over it (third socket) */
                if (i % 50 == 0
                    && zmq_send(over, big, S_MAX_MSG + 1, ZMQ_DONTWAIT) >= 0)
                    f->over_sent++;
                if (i % 2000 == 0
                    && zmq_send(huge, big, 3 * S_MAX_MSG, ZMQ_DONTWAIT) >= 0)
                    f->huge_sent++;
            }
        } else {
            zmq_pollitem_t it = { forge, 0, ZMQ_POLLIN, 0 };
            zmq_poll(&it, 1, 10);
        }
        char ans[256];
        while (zmq_recv(over, ans, sizeof(ans), ZMQ_DONTWAIT) >= 0)
            f->over_rejected++;
    }
    /* the last answers */
    uint64_t until = bench_now_ns() + 2000000000ull;
    while (inflight > 0 && bench_now_ns() < until) {
        zmq_pollitem_t it = { forge, 0, ZMQ_POLLIN, 0 };
        zmq_poll(&it, 1, 50);
        s_flood_answers(f, forge, &inflight);
    }
out:
    free(req);
    free(big);
    for (int k = 0; k < 3; k++)
        zmq_close(socks[k]);
    zmq_ctx_term(ctx);
    return NULL;
}

/* ------------------------------------------------------------- phases */

typedef struct {
    double rate; /* acked / s */
    uint64_t acked, rejected;
    uint64_t hwm, rss; /* parleyd's memory after the phase */
    int err;
} s_phase_t;

/* Run the publishers over their envelopes (one set per publisher). */
static void
s_phase(const bench_daemon_t *d, bench_key_t *keys, bench_envs_t *envs,
        s_flood_t *flood, s_phase_t *out)
{
    bench_pubber_t p[S_PUBLISHERS];
    pthread_t tid[S_PUBLISHERS], ftid;
    atomic_int stop = 0, fstop = 0;
    memset(out, 0, sizeof(*out));
    if (flood != NULL) {
        flood->stop = &fstop;
        pthread_create(&ftid, NULL, s_flood_run, flood);
        /* let the flood reach full speed first */
        bench_sleep_ns(300000000ull);
    }
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < S_PUBLISHERS; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].api = d->api;
        p[i].key = keys[i].key;
        p[i].envs = &envs[i];
        p[i].window = S_WINDOW;
        p[i].stop = &stop;
        pthread_create(&tid[i], NULL, bench_pubber_run, &p[i]);
    }
    uint64_t last = t0;
    for (int i = 0; i < S_PUBLISHERS; i++) {
        pthread_join(tid[i], NULL);
        out->acked += atomic_load(&p[i].acked);
        out->rejected += p[i].rejected;
        if (p[i].first_error != 0 && out->err == 0)
            out->err = p[i].first_error;
        if (p[i].done_ns > last)
            last = p[i].done_ns;
    }
    if (flood != NULL) {
        atomic_store(&fstop, 1);
        pthread_join(ftid, NULL);
    }
    out->rate = (double)out->acked / bench_secs(t0, last);
    bench_proc_mem(d->pid, &out->hwm, &out->rss);
}

/* Sign the phase's envelopes (fresh signer_seqs), run it, free them. */
static int
s_run(const bench_daemon_t *d, bench_key_t *keys, size_t per_pub,
      uint64_t *next_seq, s_flood_t *flood, s_phase_t *out)
{
    bench_envs_t envs[S_PUBLISHERS];
    int rc = 0;
    memset(envs, 0, sizeof(envs));
    for (int i = 0; i < S_PUBLISHERS && rc == 0; i++)
        rc = bench_envs_sign(&envs[i], keys[i].key, per_pub, *next_seq, 2);
    *next_seq += per_pub;
    if (rc == 0)
        s_phase(d, keys, envs, flood, out);
    for (int i = 0; i < S_PUBLISHERS; i++)
        bench_envs_free(&envs[i]);
    return rc;
}

static void
s_flood_note(const char *what, const s_flood_t *f)
{
    bench_note("%s: %llu forged sent%s (%llu verified as bad_signature, %llu "
               "refused unverified, %llu other); %llu frames 1 byte over "
               "max_message_bytes (%llu answered too_large), %llu frames 3x "
               "over (peer dropped)",
               what, (unsigned long long)f->sent, f->rate > 0 ? " paced" : "",
               (unsigned long long)f->badsig, (unsigned long long)f->limited,
               (unsigned long long)f->other, (unsigned long long)f->over_sent,
               (unsigned long long)f->over_rejected,
               (unsigned long long)f->huge_sent);
    if (f->sent < S_FORGED_MIN)
        bench_note("WARNING: only %llu of %d forged updates were sent during "
                   "the phase",
                   (unsigned long long)f->sent, S_FORGED_MIN);
}

int
main(int argc, char **argv)
{
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_hostile",
                     "Valid publishers' acked/s with and without a flood of "
                     "forged updates and oversized frames.");
    size_t per_pub = o.quick ? 5000 : 25000;
    size_t n_forged = o.quick ? 2000 : 20000;
    char dir[BENCH_PATH_MAX], ring[BENCH_PATH_MAX + 16];
    bench_key_t keys[S_PUBLISHERS];
    bench_envs_t forged;
    bench_daemon_t d;
    int rc;

    memset(&forged, 0, sizeof(forged));
    if ((rc = bench_tmpdir_make(dir, sizeof(dir), "hostile")) < 0
        || (rc = bench_keys_make(keys, S_PUBLISHERS)) < 0) {
        fprintf(stderr, "bench_hostile: setup: %s\n", parley_error_name(rc));
        return 1;
    }
    snprintf(ring, sizeof(ring), "%s/keyring", dir);
    if ((rc = bench_keyring_write(ring, keys, S_PUBLISHERS)) < 0)
        goto fail;
    /* The forged updates: signed by the first key, then broken. */
    uint64_t next_seq = (uint64_t)parley_now_ms() * 1000;
    if ((rc = bench_envs_sign(&forged, keys[0].key, n_forged,
                              next_seq + 1000000000ull, 2))
        < 0)
        goto fail;
    for (size_t i = 0; i < forged.n; i++) {
        uint8_t *e = forged.slots + i * BENCH_ENV_SLOT;
        e[forged.lens[i] - 1 - i % 64] ^= 0x01; /* a signature byte */
    }
    if ((rc = s_daemon_start(&d, o.parleyd, dir)) < 0)
        goto fail;

    /* Unloaded phases around each flooded one: the machine's load drifts
     * (other work, a growing log), so each flooded phase is compared with
     * the mean of its two neighbours. */
    enum {
        U0,
        P0,
        U1,
        P1,
        U2,
        F0,
        U3,
        N_PHASES
    };
    s_phase_t ph[N_PHASES];
    s_flood_t fl[N_PHASES];
    memset(fl, 0, sizeof(fl));
    for (int i = 0; i < N_PHASES && rc == 0; i++) {
        s_flood_t *f = NULL;
        if (i == P0 || i == P1 || i == F0) {
            f = &fl[i];
            f->api = d.api;
            f->forged = &forged;
            /* paced: S_FORGED_MIN over half the expected length of the
             * phase, so that all land within it even if it runs faster */
            if (i != F0)
                f->rate = 2.0 * S_FORGED_MIN
                          / ((double)(per_pub * S_PUBLISHERS) / ph[U0].rate);
        }
        rc = s_run(&d, keys, per_pub, &next_seq, f, &ph[i]);
    }
    uint64_t verified = bench_daemon_stat(&d, "rejected_bad_signature", NULL);
    uint64_t penalized = bench_daemon_stat(&d, "peers_penalized", NULL);
    uint64_t too_large = bench_daemon_stat(&d, "rejected_too_large", NULL);
    bench_daemon_stop(&d);
    if (rc < 0)
        goto fail;

    bench_section("valid publishers under a flood of forged updates "
                  "(fsync off, rate_limit 0)");
    bench_note("%d publishers, window %d, %zu updates each per phase; "
               "forged updates are signed under the first publisher's key",
               S_PUBLISHERS, S_WINDOW, per_pub);
    const char *names[N_PHASES] = { "unloaded", "flooded, paced",
                                    "unloaded", "flooded, paced",
                                    "unloaded", "flooded, unbounded",
                                    "unloaded" };
    double ratio_sum = 0;
    for (int i = 0; i < N_PHASES; i++) {
        if (i % 2 == 0) {
            bench_figure(names[i], ph[i].rate, "acked/s");
            continue;
        }
        double ref = (ph[i - 1].rate + ph[i + 1].rate) / 2;
        bench_ratio(names[i], ph[i].rate, "acked/s", "neighbours' mean", ref,
                    i == F0 ? 0 : 0.90, false);
        s_flood_note(i == F0 ? "  unbounded flood" : "  paced flood", &fl[i]);
        if (i != F0)
            ratio_sum += ph[i].rate / ref;
    }
    bench_figure("paced flood, mean ratio", ratio_sum / 2, "x unloaded");
    bench_note("daemon counters: rejected_bad_signature %llu, "
               "peers_penalized %llu, rejected_too_large %llu",
               (unsigned long long)verified, (unsigned long long)penalized,
               (unsigned long long)too_large);
    for (int i = 0; i < N_PHASES; i++) {
        char name[64];
        snprintf(name, sizeof(name), "parleyd peak RSS after %d (%s)", i,
                 names[i]);
        bench_figure(name, (double)ph[i].hwm / 1048576.0, "MiB");
    }
    uint64_t rejected = 0;
    int err = 0;
    for (int i = 0; i < N_PHASES; i++) {
        rejected += ph[i].rejected;
        if (err == 0)
            err = ph[i].err;
    }
    if (err != 0 || rejected > 0)
        bench_note("publisher errors: first %s, %llu rejected",
                   parley_error_name(err), (unsigned long long)rejected);

    bench_envs_free(&forged);
    bench_keys_free(keys, S_PUBLISHERS);
    bench_tmpdir_remove(dir);
    return 0;
fail:
    fprintf(stderr, "bench_hostile: %s\n", parley_error_name(rc));
    bench_envs_free(&forged);
    bench_keys_free(keys, S_PUBLISHERS);
    bench_tmpdir_remove(dir);
    return 1;
}
