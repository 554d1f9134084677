/*
 * test_pipeline.c - parleyd's read-ahead between turns, under load.
 *
 * With more requests waiting than one turn takes (PD_INGEST_TURN_MAX), a
 * turn syncs and answers its batch while the signatures of the next
 * requests, already read, are being checked (stat turns_read_ahead). Those
 * requests belong to no batch yet, so the two moments where the daemon
 * must not forget them are tested here with two publishers pipelining
 * 1,000 requests each (fsync on, rate limit off):
 *
 *   - SIGHUP under load: the keyring is replaced (a third signer added)
 *     in the middle, while more than a turn's worth of requests waits;
 *     every update of both publishers is acked exactly once, none is
 *     rejected, the new signer can publish,
 *     turns_read_ahead shows the read-ahead happened, and no turn handled
 *     more than PD_INGEST_TURN_MAX requests (turn_requests_max);
 *   - SIGTERM under load: parleyd exits 0; started again on the same
 *     state directory, its log runs 1..head without a gap and holds every
 *     acked update, byte for byte, at the seq its ack named; an update in
 *     the log whose ack was not heard, resent, is answered with its seq.
 */
#include "dur_util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define S_PUBS 2
#define S_PER_PUB 3000
#define S_WINDOW 1000   /* requests in flight per publisher */
#define S_RECV_MS 3000  /* a live daemon answers within this */

typedef struct s_item {
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;
    uint64_t rid;       /* request id of its send */
    uint64_t acked;     /* seq of its ack, 0 if none */
} s_item_t;

typedef struct s_worker {
    pthread_t thread;
    const char *api;
    const ph_key_t *key;
    s_item_t *items;    /* S_PER_PUB */
    atomic_size_t acks;
    size_t rejected;
    int first_error;
} s_worker_t;

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    char config[PH_PATH_MAX];
    ph_key_t keys[S_PUBS + 1]; /* the last one joins on SIGHUP */
    ph_daemon_t daemon;
    s_worker_t w[S_PUBS];
    bool test_ok;
} s_state_t;

static const char *const s_parties[S_PUBS] = { "israel", "hamas" };

/* ---------------------------------------------------------- publishers */

/* The item a reply answers: replies come in request order, so from *at. */
static s_item_t *
s_item_for(s_worker_t *w, size_t sent, size_t *at, uint64_t rid)
{
    for (size_t i = *at; i < sent; i++)
        if (w->items[i].rid == rid) {
            *at = i;
            return &w->items[i];
        }
    return NULL;
}

/*
 * Send every item with up to S_WINDOW in flight and record the answers,
 * until all are answered or the daemon stops answering.
 */
static void *
s_worker_run(void *arg)
{
    s_worker_t *w = arg;
    parley_pub_t *pub = ph_pub_new(w->api, w->key->key, NULL, 0);
    if (pub == NULL) {
        w->first_error = -errno;
        return NULL;
    }
    size_t sent = 0, answered = 0, at = 0;
    while (answered < S_PER_PUB) {
        while (sent < S_PER_PUB && sent - answered < S_WINDOW) {
            int rc = parley_pub_send(pub, w->items[sent].env,
                                     w->items[sent].len, &w->items[sent].rid);
            if (rc < 0)
                break; /* stopped: what was sent is still answered */
            sent++;
        }
        uint64_t rid, seq;
        int dup;
        int rc = ph_recv(pub, S_RECV_MS, &rid, &seq, &dup);
        if (rc == PARLEY_ETIMEOUT)
            break; /* the daemon is gone */
        answered++;
        s_item_t *it = s_item_for(w, sent, &at, rid);
        if (rc == 0 && it != NULL && !dup) {
            it->acked = seq;
            atomic_fetch_add(&w->acks, 1);
        } else {
            w->rejected++;
            if (w->first_error == 0)
                w->first_error = rc != 0 ? rc : PARLEY_EPROTO;
        }
    }
    parley_pub_destroy(&pub);
    return NULL;
}

static void
s_workers_start(s_state_t *st)
{
    for (size_t p = 0; p < S_PUBS; p++) {
        s_worker_t *w = &st->w[p];
        w->api = st->daemon.api;
        w->key = &st->keys[p];
        atomic_store(&w->acks, 0);
        w->rejected = 0;
        w->first_error = 0;
        for (size_t i = 0; i < S_PER_PUB; i++) {
            char headline[64];
            snprintf(headline, sizeof(headline), "pipelined update %zu", i);
            w->items[i].acked = 0;
            assert_int_equal(du_sign(w->key, s_parties[p], headline, i + 1,
                                     w->items[i].env,
                                     sizeof(w->items[i].env),
                                     &w->items[i].len),
                             0);
        }
        assert_int_equal(pthread_create(&w->thread, NULL, s_worker_run, w),
                         0);
    }
}

static size_t
s_acks(s_state_t *st)
{
    size_t n = 0;
    for (size_t p = 0; p < S_PUBS; p++)
        n += atomic_load(&st->w[p].acks);
    return n;
}

/* Wait until the publishers have seen want acks in all (or 30 s). */
static void
s_wait_acks(s_state_t *st, size_t want)
{
    int64_t t0 = parley__mono_ms();
    while (s_acks(st) < want && parley__mono_ms() - t0 < 30000)
        du_sleep_us(200);
    assert_true(s_acks(st) >= want);
}

/* Has the daemon synced a turn with a step read ahead (stat)? */
static bool
s_read_ahead_seen(s_state_t *st)
{
    ph_stats_t stats;
    return ph_stats_fetch(st->daemon.api, &stats) == 0
           && du_stat(&stats, "turns_read_ahead") > 0;
}

static void
s_workers_join(s_state_t *st)
{
    for (size_t p = 0; p < S_PUBS; p++)
        pthread_join(st->w[p].thread, NULL);
}

/* ------------------------------------------------------------ fixtures */

static int
s_write_keyring(s_state_t *st, size_t n_keys)
{
    char ring[4096] = "";
    for (size_t i = 0; i < n_keys; i++)
        if (ph_keyring_add(ring, sizeof(ring), &st->keys[i], "*", "*", "*")
            != 0)
            return -1;
    return ph_file_write(st->keyring, ring, strlen(ring), 0644);
}

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    *state = st;
    static const char *const names[] = { "mediator", "observer", "newcomer" };
    for (size_t i = 0; i <= S_PUBS; i++)
        if (ph_key_make(&st->keys[i], st->dir, names[i], (uint8_t)(0x61 + i))
            != 0)
            return -1;
    for (size_t p = 0; p < S_PUBS; p++)
        if ((st->w[p].items = calloc(S_PER_PUB, sizeof(s_item_t))) == NULL)
            return -1;
    if (ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_path(st->config, sizeof(st->config), st->dir, "parleyd.conf")
               != 0
        || s_write_keyring(st, S_PUBS) != 0
        || du_config_write(st->config, "fsync on\nrate_limit 0\n") != 0)
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
    for (size_t i = 0; i <= S_PUBS; i++)
        ph_key_free(&st->keys[i]);
    for (size_t p = 0; p < S_PUBS; p++)
        free(st->w[p].items);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

/* --------------------------------------------------------------- tests */

static void
test_sighup_under_load(void **state)
{
    s_state_t *st = *state;
    assert_int_equal(du_daemon_start_in(&st->daemon, st->dir, "hup",
                                        st->keyring, st->config),
                     0);
    s_workers_start(st);
    s_wait_acks(st, S_PUBS * S_PER_PUB / 4);
    /* Make sure more than one turn is waiting, however fast the daemon is
     * against its publishers (ASan builds, a loaded machine): pause it
     * while both fill their windows (2 x S_WINDOW requests), and let the
     * reload arrive with them. Its first turn then reads ahead, and the
     * SIGHUP finds that step pending. */
    assert_int_equal(kill(st->daemon.pid, SIGSTOP), 0);
    du_sleep_us(500 * 1000);
    assert_int_equal(s_write_keyring(st, S_PUBS + 1), 0);
    assert_int_equal(kill(st->daemon.pid, SIGHUP), 0);
    assert_int_equal(kill(st->daemon.pid, SIGCONT), 0);
    /* libzmq's I/O thread feeds that backlog to the loop as the loop reads
     * it; if the machine starves the I/O thread the loop can still find the
     * socket empty before a turn is full. Further backlogs, after the
     * reload, every 5 % of the updates, until the daemon says it read
     * ahead (or the publishers are done: then the check below fails). At
     * load 5-9 on two cores, every 10 % failed 2 runs of 18 and every 5 %
     * failed 3 of 261; each failed run had no turn over 1,001 requests,
     * one publisher's window (not explained). */
    for (size_t want = S_PUBS * S_PER_PUB / 2;
         want < S_PUBS * S_PER_PUB && !s_read_ahead_seen(st);
         want += S_PUBS * S_PER_PUB / 20) {
        s_wait_acks(st, want);
        assert_int_equal(kill(st->daemon.pid, SIGSTOP), 0);
        du_sleep_us(500 * 1000);
        assert_int_equal(kill(st->daemon.pid, SIGCONT), 0);
    }
    s_workers_join(st);

    /* Every update acked once, each with its own seq. */
    bool *seen = calloc(S_PUBS * S_PER_PUB + 1, sizeof(bool));
    assert_non_null(seen);
    for (size_t p = 0; p < S_PUBS; p++) {
        s_worker_t *w = &st->w[p];
        if (w->rejected > 0)
            fail_msg("publisher %zu: %zu not acked, first %s", p, w->rejected,
                     parley_error_name(w->first_error));
        for (size_t i = 0; i < S_PER_PUB; i++) {
            uint64_t seq = w->items[i].acked;
            if (seq == 0 || seq > S_PUBS * S_PER_PUB || seen[seq])
                fail_msg("publisher %zu item %zu: ack seq %" PRIu64, p, i,
                         seq);
            seen[seq] = true;
        }
    }
    free(seen);

    /* The new keyring is in force, and read-ahead did happen. */
    int64_t t0 = parley__mono_ms();
    ph_stats_t stats;
    do {
        assert_int_equal(ph_stats_fetch(st->daemon.api, &stats), 0);
    } while (du_stat(&stats, "keyring_signers") != S_PUBS + 1
             && parley__mono_ms() - t0 < 10000 && (du_sleep_us(10000), 1));
    assert_int_equal(du_stat(&stats, "keyring_signers"), S_PUBS + 1);
    assert_int_equal(du_stat(&stats, "accepted"), S_PUBS * S_PER_PUB);
    printf("[pipeline] turns_read_ahead %" PRIu64 ", store_syncs %" PRIu64
           ", turn_requests_max %" PRIu64 "\n",
           du_stat(&stats, "turns_read_ahead"), du_stat(&stats, "store_syncs"),
           du_stat(&stats, "turn_requests_max"));
    assert_true(du_stat(&stats, "turns_read_ahead") > 0);
    /* Reading ahead never makes a turn handle more than PD_INGEST_TURN_MAX
     * (1,024) requests: its batch and reply queue are sized for that. */
    assert_true(du_stat(&stats, "turn_requests_max") > 0);
    assert_true(du_stat(&stats, "turn_requests_max") <= 1024);
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;
    assert_int_equal(du_sign(&st->keys[S_PUBS], "israel", "after reload", 1,
                             env, sizeof(env), &len),
                     0);
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->keys[S_PUBS].key, NULL, 0);
    assert_non_null(pub);
    uint64_t rid, seq = 0;
    int dup;
    assert_int_equal(parley_pub_send(pub, env, len, &rid), 0);
    assert_int_equal(ph_recv(pub, 5000, &rid, &seq, &dup), 0);
    parley_pub_destroy(&pub);
    assert_int_equal(seq, S_PUBS * S_PER_PUB + 1);
    assert_int_equal(ph_daemon_stop(&st->daemon), 0);
    assert_int_equal(s_write_keyring(st, S_PUBS), 0);
    st->test_ok = true;
}

static void
test_sigterm_under_load(void **state)
{
    s_state_t *st = *state;
    assert_int_equal(du_daemon_start_in(&st->daemon, st->dir, "term",
                                        st->keyring, st->config),
                     0);
    s_workers_start(st);
    s_wait_acks(st, S_PUBS * S_PER_PUB / 3);
    assert_int_equal(ph_daemon_stop(&st->daemon), 0); /* exits 0 */
    s_workers_join(st);
    size_t acked = s_acks(st);
    printf("[pipeline] %zu of %d updates acked before the stop\n", acked,
           S_PUBS * S_PER_PUB);

    const char *extra[] = { "-c", st->config, NULL };
    assert_int_equal(ph_daemon_restart(&st->daemon, st->keyring, extra), 0);
    du_log_t log = { 0 };
    assert_int_equal(du_replay_all(st->daemon.api, 1, &log), 0);
    assert_true(du_log_gapless(&log));
    for (size_t p = 0; p < S_PUBS; p++) {
        const s_worker_t *w = &st->w[p];
        for (size_t i = 0; i < S_PER_PUB; i++) {
            const s_item_t *it = &w->items[i];
            if (it->acked == 0)
                continue;
            if (it->acked > log.n)
                fail_msg("acked seq %" PRIu64 " is past the head %zu",
                         it->acked, log.n);
            const du_rec_t *r = &log.r[it->acked - 1];
            if (r->len != it->len || memcmp(r->env, it->env, it->len) != 0)
                fail_msg("seq %" PRIu64 " does not hold the update acked "
                         "with it", it->acked);
        }
    }
    /* An update in the log whose ack the publisher did not hear (the stop
     * lets the last acks out, but a connection reset can still lose them
     * in the publisher's receive buffer) is recovered by resending the
     * same bytes: the answer is its original seq, marked duplicate. One
     * heard update is resent too, so that this path always runs. */
    bool *heard = calloc(log.n + 1, sizeof(*heard));
    assert_non_null(heard);
    for (size_t p = 0; p < S_PUBS; p++)
        for (size_t i = 0; i < S_PER_PUB; i++)
            heard[st->w[p].items[i].acked] = true; /* [0]: not acked */
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->keys[0].key, NULL, 0);
    assert_non_null(pub);
    size_t resent = 0, unheard = 0;
    for (size_t seq = 1; seq <= log.n; seq++) {
        if (heard[seq] && resent > 0)
            continue;
        unheard += !heard[seq];
        const du_rec_t *r = &log.r[seq - 1];
        uint64_t rid, got_rid, got_seq;
        int dup = 0;
        assert_int_equal(parley_pub_send(pub, r->env, r->len, &rid), 0);
        assert_int_equal(ph_recv(pub, S_RECV_MS, &got_rid, &got_seq,
                                         &dup),
                         0);
        if (got_rid != rid || got_seq != seq || !dup)
            fail_msg("resent seq %zu: answered seq %" PRIu64 ", duplicate %d",
                     seq, got_seq, dup);
        resent++;
    }
    printf("[pipeline] %zu updates in the log, %zu acks not heard before "
           "the stop; %zu resent, each answered with its seq\n",
           log.n, unheard, resent);
    parley_pub_destroy(&pub);
    free(heard);
    du_log_free(&log);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sighup_under_load, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_under_load, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
