/*
 * test_kill9.c - issue 3, acceptance 1 and 7: kill -9 under load, and the
 * group-commit figures.
 *
 * kill -9 (acceptance 1). One log, 20 rounds. Each round: parleyd (fsync
 * ON, 64 KiB segments so that rolls happen under load too) takes 2,000
 * updates from 4 publisher threads, each with its own key, pipelining 500
 * pre-signed updates with parley_pub_send()/ph_recv() and a window
 * of 32. The daemon is killed with SIGKILL at a random moment: once the
 * publishers together have seen a random number of acks (0..1999, so some
 * rounds die at once and some near the end), plus a random few hundred
 * microseconds so the kill lands anywhere in a group-commit cycle. Every
 * ack is recorded: publisher, signer_seq, seq. Then parleyd is started
 * again on the same state directory, the whole log is read back with raw
 * REPLAY requests, and the test asserts what a user relies on:
 *   - seqs run 1..head with no gap and no repeat, in ascending order;
 *   - every record is one of the updates sent, byte for byte, and no
 *     update appears twice (per signer, signer_seqs strictly increase);
 *   - every acked update (of this round and all earlier ones) is present
 *     exactly once, at the seq its ack named;
 *   - re-publishing an acked envelope is answered as a duplicate with the
 *     original seq, never with a new seq.
 * Updates that were sent but not acked may be present or absent; the
 * counts are printed. The restarted daemon serves the next round, and
 * the last one must stop cleanly on SIGTERM.
 *
 * Figures (acceptance 7). A fresh daemon with fsync ON takes (a) 400
 * updates from one publisher that waits for each ack, (b) 1,200 from four
 * such publishers, and (c) 12,000 from four publishers pipelining 64
 * each. From the stats counters store_syncs
 * and store_records_synced and the elapsed time it prints fsyncs per
 * second and updates per fsync. Timing is never asserted; the counters
 * are: every accepted update was made durable by a counted sync, and with
 * one update in flight at a time each sync covers exactly one update.
 *
 * PARLEY_TEST_SEED=N replays the random choices of an earlier run (the
 * seed is printed at the start).
 */
#include "dur_util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define S_ROUNDS 20
#define S_PUBS 4
#define S_PER_PUB 500                      /* per publisher per round */
#define S_WINDOW 32                        /* requests in flight */
#define S_RECV_MS 300                      /* one wait for an answer */
#define S_STALL_MS 20000                   /* a live daemon answers by then */
#define S_PER_PUB_MAX (S_ROUNDS * S_PER_PUB + 8000) /* incl. the figures */

static const char *const s_names[S_PUBS] = { "mediator", "egypt-mfa",
                                             "qatar-mfa", "us-state" };
static const char *const s_parties[S_PUBS] = { "israel", "egypt", "qatar",
                                               "us" };

/* One update a publisher sent (or will send). */
typedef struct s_item {
    uint8_t *env;         /* signed bytes */
    size_t len;
    uint64_t signer_seq;
    uint64_t acked;       /* seq of its ack, 0 if none seen */
    uint64_t in_log;      /* seq found in the log at the last check */
    bool sent;            /* handed to parley_pub_send() */
    int round;
} s_item_t;

/* A publisher thread and everything it sent, across rounds. */
typedef struct s_worker {
    pthread_t thread;
    const char *api;
    const ph_key_t *key;
    s_item_t *items;      /* all items, ascending signer_seq */
    size_t n_items;
    size_t from, to;      /* this run: items[from, to) */
    int window;
    atomic_bool *stop;    /* set just before the daemon is killed */
    atomic_size_t acks;   /* acks seen in this run */
    atomic_bool finished; /* every item of this run answered */
    size_t sent;          /* items sent in this run */
    char err[256];        /* first unexpected event, "" if none */
} s_worker_t;

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    char config[PH_PATH_MAX];
    ph_key_t keys[S_PUBS];
    ph_daemon_t daemon;
    s_worker_t w[S_PUBS];
    uint64_t rng;
    bool test_ok;
} s_state_t;

/* --------------------------------------------------------- randomness */

static uint64_t
s_rand(s_state_t *st)
{
    /* xorshift64*: reproducible from the printed seed. */
    st->rng ^= st->rng >> 12;
    st->rng ^= st->rng << 25;
    st->rng ^= st->rng >> 27;
    return st->rng * 0x2545F4914F6CDD1DULL;
}

/* ---------------------------------------------------------- publishers */

static void
s_worker_fail(s_worker_t *w, const char *fmt, ...)
{
    if (w->err[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof(w->err), fmt, ap);
    va_end(ap);
}

/*
 * Publish items[from, to) with up to window requests in flight, recording
 * each ack. Stops sending when *stop is set, then takes what answers
 * still arrive until the line goes quiet (the daemon is being killed).
 */
static void *
s_worker_run(void *arg)
{
    s_worker_t *w = arg;
    struct {
        uint64_t rid;
        size_t idx;
    } flight[256];
    size_t n_flight = 0, next = w->from;
    int64_t last_progress = parley__mono_ms();

    parley_pub_t *pub = ph_pub_new(w->api, w->key->key, NULL, 0);
    if (pub == NULL) {
        s_worker_fail(w, "parley_pub_new: %s", parley_error_name(-errno));
        atomic_store(&w->finished, true);
        return NULL;
    }
    for (;;) {
        bool stopping = atomic_load(w->stop);
        while (!stopping && next < w->to && n_flight < (size_t)w->window) {
            uint64_t rid = 0;
            int rc = parley_pub_send(pub, w->items[next].env,
                                     w->items[next].len, &rid);
            if (rc != 0) {
                if (!atomic_load(w->stop))
                    s_worker_fail(w, "parley_pub_send: %s",
                                  parley_error_name(rc));
                stopping = true;
                break;
            }
            w->items[next].sent = true;
            flight[n_flight].rid = rid;
            flight[n_flight].idx = next;
            n_flight++;
            next++;
            w->sent++;
        }
        if (n_flight == 0 && (next == w->to || stopping))
            break;
        if (n_flight == 0)
            continue;
        uint64_t rid = 0, seq = 0;
        int dup = 0;
        int rc = ph_recv(pub, S_RECV_MS, &rid, &seq, &dup);
        if (rc == PARLEY_ETIMEOUT) {
            if (atomic_load(w->stop))
                break; /* killed: nothing more will come */
            if (parley__mono_ms() - last_progress > S_STALL_MS) {
                s_worker_fail(w, "no answer for %d ms from a live daemon "
                              "(%zu in flight)", S_STALL_MS, n_flight);
                break;
            }
            continue;
        }
        if (rc < 0 && rc > -1000) { /* -errno: not an answer */
            s_worker_fail(w, "parley_pub_recv: %s", parley_error_name(rc));
            break;
        }
        size_t k = 0;
        while (k < n_flight && flight[k].rid != rid)
            k++;
        if (k == n_flight) {
            s_worker_fail(w, "answer to request %" PRIu64 " not in flight",
                          rid);
            continue;
        }
        s_item_t *it = &w->items[flight[k].idx];
        flight[k] = flight[--n_flight];
        last_progress = parley__mono_ms();
        if (rc != 0) {
            s_worker_fail(w, "signer_seq %" PRIu64 " rejected: %s",
                          it->signer_seq, parley_error_name(rc));
            continue;
        }
        if (dup)
            s_worker_fail(w, "first send of signer_seq %" PRIu64 " answered "
                          "as a duplicate of seq %" PRIu64, it->signer_seq,
                          seq);
        it->acked = seq;
        atomic_fetch_add(&w->acks, 1);
    }
    parley_pub_destroy(&pub);
    atomic_store(&w->finished, true);
    return NULL;
}

/*
 * Sign n more updates for each publisher (in the main thread: the
 * harness's signer_seq source is not thread-safe) and append them.
 */
static void
s_sign_more(s_state_t *st, size_t n, int round)
{
    for (int p = 0; p < S_PUBS; p++) {
        s_worker_t *w = &st->w[p];
        assert_true(w->n_items + n <= S_PER_PUB_MAX);
        for (size_t i = 0; i < n; i++) {
            s_item_t *it = &w->items[w->n_items];
            uint8_t env[PARLEY_ENVELOPE_MAX];
            char headline[96];
            memset(it, 0, sizeof(*it));
            it->signer_seq = ph_next_signer_seq();
            it->round = round;
            snprintf(headline, sizeof(headline),
                     "%s round %d update %zu", s_names[p], round, i);
            assert_int_equal(du_sign(&st->keys[p], s_parties[p], headline,
                                     it->signer_seq, env, sizeof(env),
                                     &it->len),
                             0);
            it->env = malloc(it->len);
            assert_non_null(it->env);
            memcpy(it->env, env, it->len);
            w->n_items++;
        }
    }
}

/* Start the first count publishers on their last n items, with a window. */
static void
s_workers_start(s_state_t *st, int count, atomic_bool *stop, size_t n,
                int window)
{
    for (int p = 0; p < count; p++) {
        s_worker_t *w = &st->w[p];
        w->api = st->daemon.api;
        w->key = &st->keys[p];
        w->from = w->n_items - n;
        w->to = w->n_items;
        w->window = window;
        w->stop = stop;
        w->sent = 0;
        w->err[0] = '\0';
        atomic_store(&w->acks, 0);
        atomic_store(&w->finished, false);
        assert_int_equal(pthread_create(&w->thread, NULL, s_worker_run, w), 0);
    }
}

static void
s_workers_join(s_state_t *st, int count)
{
    for (int p = 0; p < count; p++)
        pthread_join(st->w[p].thread, NULL);
    for (int p = 0; p < count; p++)
        if (st->w[p].err[0] != '\0')
            fail_msg("publisher %s: %s", s_names[p], st->w[p].err);
}

static size_t
s_acks(s_state_t *st)
{
    size_t n = 0;
    for (int p = 0; p < S_PUBS; p++)
        n += atomic_load(&st->w[p].acks);
    return n;
}

static bool
s_all_finished(s_state_t *st)
{
    for (int p = 0; p < S_PUBS; p++)
        if (!atomic_load(&st->w[p].finished))
            return false;
    return true;
}

/* ------------------------------------------------------------ checking */

/* Index of the item with this signer_seq in w, or -1. */
static long
s_find(const s_worker_t *w, uint64_t signer_seq)
{
    size_t lo = 0, hi = w->n_items;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->items[mid].signer_seq < signer_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n_items && w->items[lo].signer_seq == signer_seq
               ? (long)lo
               : -1;
}

typedef struct s_counts {
    size_t acked, unacked_kept, unacked_lost, unsent;
} s_counts_t;

/*
 * Read the whole log and hold it against everything sent so far (see the
 * file comment). Counts what happened to the items of `round`.
 */
static void
s_verify_log(s_state_t *st, int round, s_counts_t *c, uint64_t *head)
{
    du_log_t log = { 0 };
    int rc = du_replay_all(st->daemon.api, 1, &log);
    if (rc != 0)
        fail_msg("round %d: replay of the whole log failed: %s", round,
                 parley_error_name(rc));
    if (!du_log_gapless(&log)) {
        du_log_free(&log);
        fail_msg("round %d: the log after restart is not seqs 1..head in "
                 "order (see above)", round);
    }
    for (int p = 0; p < S_PUBS; p++)
        for (size_t i = 0; i < st->w[p].n_items; i++)
            st->w[p].items[i].in_log = 0;

    uint64_t prev[S_PUBS] = { 0 };
    for (size_t i = 0; i < log.n; i++) {
        const du_rec_t *r = &log.r[i];
        int p = 0;
        while (p < S_PUBS
               && memcmp(r->signer, st->keys[p].pk, PARLEY_PUBLICKEY_BYTES) != 0)
            p++;
        if (p == S_PUBS)
            fail_msg("round %d: seq %" PRIu64 " is signed by a key no "
                     "publisher has", round, r->seq);
        long k = s_find(&st->w[p], r->signer_seq);
        if (k < 0)
            fail_msg("round %d: seq %" PRIu64 " (%s, signer_seq %" PRIu64
                     ") is no update that was sent", round, r->seq,
                     s_names[p], r->signer_seq);
        s_item_t *it = &st->w[p].items[k];
        if (it->len != r->len || memcmp(it->env, r->env, r->len) != 0)
            fail_msg("round %d: seq %" PRIu64 " differs from the bytes sent "
                     "for %s signer_seq %" PRIu64, round, r->seq, s_names[p],
                     r->signer_seq);
        if (it->in_log != 0)
            fail_msg("round %d: %s signer_seq %" PRIu64 " is in the log "
                     "twice: seqs %" PRIu64 " and %" PRIu64, round,
                     s_names[p], r->signer_seq, it->in_log, r->seq);
        if (r->signer_seq <= prev[p])
            fail_msg("round %d: %s signer_seq %" PRIu64 " at seq %" PRIu64
                     " is not above the previous one (%" PRIu64 ")", round,
                     s_names[p], r->signer_seq, r->seq, prev[p]);
        prev[p] = r->signer_seq;
        it->in_log = r->seq;
    }
    memset(c, 0, sizeof(*c));
    for (int p = 0; p < S_PUBS; p++) {
        for (size_t i = 0; i < st->w[p].n_items; i++) {
            const s_item_t *it = &st->w[p].items[i];
            if (it->acked != 0 && it->in_log != it->acked) {
                du_log_free(&log);
                if (it->in_log == 0)
                    fail_msg("round %d: LOST: %s signer_seq %" PRIu64
                             " (sent in round %d) was acked as seq %" PRIu64
                             " but is not in the log after kill -9",
                             round, s_names[p], it->signer_seq, it->round,
                             it->acked);
                fail_msg("round %d: %s signer_seq %" PRIu64 " was acked as "
                         "seq %" PRIu64 " but the log has it at seq %" PRIu64,
                         round, s_names[p], it->signer_seq, it->acked,
                         it->in_log);
            }
            if (it->round != round)
                continue;
            if (it->acked != 0)
                c->acked++;
            else if (it->in_log != 0)
                c->unacked_kept++;
            else if (it->sent)
                c->unacked_lost++;
            else
                c->unsent++;
        }
    }
    *head = log.n;
    du_log_free(&log);
}

/*
 * Send an acked envelope again through a raw socket: the answer must be
 * the original ack, flagged duplicate.
 */
static void
s_resend_acked(s_state_t *st, const s_item_t *it, const char *who)
{
    ph_api_t a;
    parley__reply_t r;
    char d[256];
    assert_int_equal(ph_api_open(&a, st->daemon.api), 0);
    int rc = ph_api_publish(&a, it->env, it->len, 5000, &r, NULL);
    if (rc != 0) {
        ph_api_close(&a);
        fail_msg("resending %s: %s", who, parley_error_name(rc));
    }
    if (r.type != PARLEY__REPLY_ACK || !r.duplicate || r.seq != it->acked) {
        ph_reply_describe(&r, d, sizeof(d));
        ph_api_close(&a);
        fail_msg("resending %s (acked as seq %" PRIu64 ") after kill -9 and "
                 "restart: got %s, expected a duplicate ack of seq %" PRIu64,
                 who, it->acked, d, it->acked);
    }
    ph_api_close(&a);
}

/* ------------------------------------------------------------ fixtures */

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    *state = st;
    const char *seed = getenv("PARLEY_TEST_SEED");
    st->rng = seed != NULL ? strtoull(seed, NULL, 10)
                           : (uint64_t)parley__mono_us() ^ ((uint64_t)getpid() << 32);
    if (st->rng == 0)
        st->rng = 1;
    fprintf(stderr, "[kill9] PARLEY_TEST_SEED=%" PRIu64 "\n", st->rng);

    char ring[4096] = "";
    for (int p = 0; p < S_PUBS; p++) {
        if (ph_key_make(&st->keys[p], st->dir, s_names[p],
                        (uint8_t)(0x61 + p)) != 0
            || ph_keyring_add(ring, sizeof(ring), &st->keys[p], "*", "*", "*")
                   != 0)
            return -1;
        st->w[p].items = calloc(S_PER_PUB_MAX, sizeof(s_item_t));
        if (st->w[p].items == NULL)
            return -1;
    }
    if (ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_file_write(st->keyring, ring, strlen(ring), 0644) != 0
        || ph_path(st->config, sizeof(st->config), st->dir, "parleyd.conf")
               != 0
        || du_config_write(st->config, "# kill -9 test: durable, small "
                                       "segments\n"
                                       "fsync on\n"
                                       "segment_bytes 64K\n"
                                       "max_clock_skew 3600\n"
                                       "# a load test, not a rate-limit "
                                       "test\n"
                                       "rate_limit 0\n")
               != 0)
        return -1;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    if (st == NULL)
        return 0;
    ph_daemon_teardown(&st->daemon, st->test_ok);
    for (int p = 0; p < S_PUBS; p++) {
        for (size_t i = 0; i < st->w[p].n_items; i++)
            free(st->w[p].items[i].env);
        free(st->w[p].items);
        ph_key_free(&st->keys[p]);
    }
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

static void
s_start(s_state_t *st, const char *subdir)
{
    if (du_daemon_start_in(&st->daemon, st->dir, subdir, st->keyring,
                           st->config)
        != 0)
        fail_msg("parleyd did not start");
}

/* --------------------------------------------------------------- tests */

static void
test_kill9_rounds(void **state)
{
    s_state_t *st = *state;
    size_t total_acked = 0, total_kept = 0, total_lost = 0;
    uint64_t total_cut = 0;
    int64_t t0 = parley__mono_ms();

    s_start(st, "kill9");
    for (int round = 0; round < S_ROUNDS; round++) {
        s_sign_more(st, S_PER_PUB, round);
        /* Round 0 dies at once, round 1 near the end, the rest anywhere. */
        size_t total = (size_t)S_PUBS * S_PER_PUB;
        size_t target = round == 0   ? 1
                        : round == 1 ? total - 1
                                     : (size_t)(s_rand(st) % total);
        long jitter_us = (long)(s_rand(st) % 700);
        atomic_bool stop = false;

        s_workers_start(st, S_PUBS, &stop, S_PER_PUB, S_WINDOW);
        int64_t started = parley__mono_ms();
        while (s_acks(st) < target && !s_all_finished(st)) {
            if (parley__mono_ms() - started > 60000)
                break; /* the workers report the stall */
            du_sleep_us(100);
        }
        du_sleep_us(jitter_us);
        size_t at_kill = s_acks(st);
        atomic_store(&stop, true);
        ph_daemon_kill9(&st->daemon);
        s_workers_join(st, S_PUBS);
        size_t sent = 0;
        for (int p = 0; p < S_PUBS; p++)
            sent += st->w[p].sent;

        /* Same state directory; the daemon picks new ports. */
        s_start(st, "kill9");
        ph_stats_t stats;
        assert_int_equal(ph_stats_fetch(st->daemon.api, &stats), 0);
        uint64_t cut = du_stat(&stats, "store_truncated_bytes");
        s_counts_t c;
        uint64_t head = 0;
        s_verify_log(st, round, &c, &head);
        if (du_stat(&stats, "seq") != head)
            fail_msg("round %d: stats seq %" PRIu64 " but the log ends at %"
                     PRIu64, round, du_stat(&stats, "seq"), head);

        /* Resend acked envelopes: the newest of this round and one from
         * anywhere before; neither may get a new seq. */
        const s_item_t *newest = NULL, *older = NULL;
        for (int p = 0; p < S_PUBS; p++)
            for (size_t i = 0; i < st->w[p].n_items; i++) {
                const s_item_t *it = &st->w[p].items[i];
                if (it->acked == 0)
                    continue;
                if (it->round == round
                    && (newest == NULL || it->acked > newest->acked))
                    newest = it;
                if (older == NULL || s_rand(st) % 64 == 0)
                    older = it;
            }
        ph_stats_t before, after;
        assert_int_equal(ph_stats_fetch(st->daemon.api, &before), 0);
        int resent = 0;
        if (newest != NULL) {
            s_resend_acked(st, newest, "the newest acked update");
            resent++;
        }
        if (older != NULL) {
            s_resend_acked(st, older, "an earlier acked update");
            resent++;
        }
        assert_int_equal(ph_stats_fetch(st->daemon.api, &after), 0);
        char want[32];
        snprintf(want, sizeof(want), "duplicates=%d", resent);
        const char *expect[] = { want, NULL };
        if (ph_stats_expect(&before, &after, expect) != 0)
            fail_msg("round %d: resending acked updates changed counters "
                     "other than duplicates (see above)", round);

        printf("[kill9] round %2d: kill after %4zu acks (target %4zu, +%3ld "
               "us), %4zu sent: %4zu acked, %3zu unacked kept, %3zu unacked "
               "absent, %4zu never sent; torn tail cut %" PRIu64
               " bytes; log head %" PRIu64 "\n",
               round, at_kill, target, jitter_us, sent, c.acked,
               c.unacked_kept, c.unacked_lost, c.unsent, cut, head);
        if (c.acked + c.unacked_kept + c.unacked_lost != sent
            || c.unsent != total - sent)
            fail_msg("round %d: the items do not add up (%zu sent)", round,
                     sent);
        fflush(stdout);
        total_acked += c.acked;
        total_kept += c.unacked_kept;
        total_lost += c.unacked_lost;
        total_cut += cut;
    }
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d (expected 0)", status);
    printf("[kill9] %d rounds in %.1f s: %zu acked updates, all present once "
           "at their seq; %zu unacked kept, %zu unacked absent; %" PRIu64
           " torn-tail bytes cut in all\n",
           S_ROUNDS, (double)(parley__mono_ms() - t0) / 1000.0, total_acked,
           total_kept, total_lost, total_cut);
    /* The kill must have hit mid-stream at least sometimes, or the test
     * did not test what it says. */
    if (total_kept + total_lost == 0)
        fail_msg("no round was killed with updates in flight");
    st->test_ok = true;
}

/*
 * Run the publishers on their last n items each (count of them), with a
 * window, to the end; return the elapsed microseconds.
 */
static int64_t
s_load(s_state_t *st, int count, size_t n, int window)
{
    atomic_bool stop = false;
    int64_t t = parley__mono_us();
    s_workers_start(st, count, &stop, n, window);
    s_workers_join(st, count);
    int64_t elapsed = parley__mono_us() - t;
    for (int p = 0; p < count; p++)
        if (atomic_load(&st->w[p].acks) != n)
            fail_msg("publisher %s: %zu of %zu acked", s_names[p],
                     atomic_load(&st->w[p].acks), n);
    return elapsed;
}

/* One figure: run a load, print fsyncs/s and updates per fsync. */
static void
s_figure(s_state_t *st, const char *what, int count, size_t n, int window,
         bool one_per_sync)
{
    ph_stats_t before, after;
    s_sign_more(st, n, 100);
    assert_int_equal(ph_stats_fetch(st->daemon.api, &before), 0);
    int64_t us = s_load(st, count, n, window);
    assert_int_equal(ph_stats_fetch(st->daemon.api, &after), 0);
    uint64_t syncs = du_stat(&after, "store_syncs")
                     - du_stat(&before, "store_syncs");
    uint64_t recs = du_stat(&after, "store_records_synced")
                    - du_stat(&before, "store_records_synced");
    uint64_t acc = du_stat(&after, "accepted") - du_stat(&before, "accepted");
    uint64_t updates = (uint64_t)count * n;
    double secs = (double)us / 1e6;
    printf("[figures] fsync ON, %s: %" PRIu64 " updates in %.2f s = %.0f "
           "updates/s; %" PRIu64 " fsyncs = %.0f fsyncs/s, %.1f updates per "
           "fsync\n",
           what, updates, secs, (double)updates / secs, syncs,
           (double)syncs / secs, syncs ? (double)recs / (double)syncs : 0.0);
    fflush(stdout);
    if (acc != updates || recs != updates)
        fail_msg("%s: %" PRIu64 " updates acked, but accepted rose by %" PRIu64
                 " and store_records_synced by %" PRIu64, what, updates, acc,
                 recs);
    if (syncs == 0 || syncs > recs)
        fail_msg("%s: %" PRIu64 " fsyncs for %" PRIu64 " records", what, syncs,
                 recs);
    /* One update in flight at a time: no sync can cover two. */
    if (one_per_sync && syncs != recs)
        fail_msg("%s: %" PRIu64 " fsyncs for %" PRIu64 " records, with one "
                 "update in flight at a time they must be equal", what, syncs,
                 recs);
}

static void
test_group_commit_figures(void **state)
{
    s_state_t *st = *state;
    s_start(st, "figures");
    s_figure(st, "1 publisher, 1 in flight", 1, 400, 1, true);
    s_figure(st, "4 publishers, 1 in flight each", S_PUBS, 300, 1, false);
    s_figure(st, "4 publishers, 64 in flight each", S_PUBS, 3000, 64, false);
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d (expected 0)", status);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_rounds, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_figures, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
