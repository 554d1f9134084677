/*
 * test_slow_sub.c - issue 3, acceptance 3: a slow subscriber loses
 * nothing and slows nobody.
 *
 * 100,000 updates are signed once and published twice, each time to a
 * fresh parleyd (fsync off: the feed is under test here, not the disk) by
 * one publisher pipelining 256 requests:
 *
 *   run A (baseline): one normal subscriber, reading all the time in its
 *          own thread;
 *   run B: the same, plus a slow subscriber with a receive HWM of 10 that
 *          subscribes before the first publish and then does not call
 *          ph_sub_next() at all until the last update is acked; then
 *          it drains.
 *
 * Asserted (what users see): in both runs the normal subscriber delivers
 * seqs 1..100,000 exactly once each, in order, each with the signer_seq
 * its publish was acked for; the slow subscriber, once it drains, delivers
 * the same 100,000, in order, without a repeat or a gap, and nothing more.
 *
 * Printed, never asserted (a shared, noisy machine): how long the normal
 * subscriber took to see the last update in each run and the ratio B/A,
 * how long the slow one took to drain, and how many replay requests the
 * daemon served (the slow subscriber's feed queue overflows; what libzmq
 * dropped comes back through replay).
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

#define S_N 100000
#define S_WINDOW 256
#define S_TIMEOUT 10000
#define S_DRAIN_MS 120000     /* a generous bound for a stuck subscriber */

typedef struct s_reader {
    pthread_t thread;
    const char *name;
    parley_sub_t *sub;
    uint64_t *got;                 /* signer_seq delivered, by seq - 1 */
    int64_t t0_us;                 /* publishing started */
    atomic_int_fast64_t done_us;   /* last update seen, relative to t0 */
    atomic_bool stop;
    uint64_t last;                 /* last seq delivered */
    size_t n;                      /* deliveries */
    size_t timeouts;
    char err[256];                 /* first problem, "" if none */
} s_reader_t;

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    char config[PH_PATH_MAX];
    ph_key_t key;
    ph_daemon_t daemon;
    uint8_t *envs;                 /* S_N envelopes, stride PARLEY_ENVELOPE_MAX */
    size_t *lens;
    uint64_t *signer_seqs;         /* of envelope i */
    uint64_t *by_seq;              /* signer_seq acked as seq i + 1 */
    s_reader_t normal, slow;
    bool test_ok;
} s_state_t;

/* ----------------------------------------------------------- subscribers */

static void
s_reader_fail(s_reader_t *r, const char *fmt, ...)
{
    if (r->err[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
}

/*
 * Take one event and check it is the next update in order. Returns 1 for
 * a delivery, 0 for nothing within timeout_ms, -1 after a failure.
 */
static int
s_reader_step(s_reader_t *r, parley_event_t *ev, int timeout_ms)
{
    int rc = ph_sub_next(r->sub, timeout_ms, ev);
    if (rc == 0)
        return 0;
    if (rc == PARLEY_ETIMEOUT) {
        r->timeouts++; /* an api answer late under load: asked again */
        return 0;
    }
    if (rc < 0) {
        s_reader_fail(r, "parley_sub_next: %s", parley_error_name(rc));
        return -1;
    }
    if (ev->type == PARLEY_EVENT_GAP) {
        s_reader_fail(r, "gap %" PRIu64 "..%" PRIu64 " reported", ev->seq,
                      ev->seq_last);
        return -1;
    }
    if (ev->type == PARLEY_EVENT_REJECTED) {
        s_reader_fail(r, "seq %" PRIu64 " rejected: %s", ev->seq,
                      parley_error_name(ev->code));
        return -1;
    }
    uint64_t seq = ev->delivery.seq;
    if (seq != r->last + 1) {
        s_reader_fail(r, "delivery of seq %" PRIu64 " after seq %" PRIu64
                      " (%s)", seq, r->last,
                      seq <= r->last ? "a repeat or out of order"
                                     : "updates skipped");
        return -1;
    }
    if (seq > S_N) {
        s_reader_fail(r, "seq %" PRIu64 " delivered; only %d were published",
                      seq, S_N);
        return -1;
    }
    r->got[seq - 1] = ev->delivery.update.signer_seq;
    r->last = seq;
    r->n++;
    if (seq == S_N)
        atomic_store(&r->done_us, parley__mono_us() - r->t0_us);
    return 1;
}

/* The normal subscriber: read all the time until stopped or failed. */
static void *
s_reader_run(void *arg)
{
    s_reader_t *r = arg;
    parley_event_t *ev = malloc(sizeof(*ev));
    if (ev == NULL) {
        s_reader_fail(r, "out of memory");
        return NULL;
    }
    while (!atomic_load(&r->stop) && s_reader_step(r, ev, 100) >= 0)
        ;
    free(ev);
    return NULL;
}

static void
s_reader_open(s_state_t *st, s_reader_t *r, const char *name, int rcvhwm)
{
    parley_sub_options_t opt = { .start = PARLEY_START_SEQ,
                                 .since_seq = 1,
                                 .rcvhwm = rcvhwm };
    uint64_t *got = r->got;
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->got = got;
    atomic_store(&r->done_us, -1);
    r->sub = ph_sub_new(st->daemon.api, NULL, &opt);
    if (r->sub == NULL)
        fail_msg("parley_sub_new (%s): %s", name, parley_error_name(-errno));
}

static void
s_reader_close(s_reader_t *r)
{
    parley_sub_destroy(&r->sub);
}

/* Every delivery carried the update that was acked as its seq. */
static void
s_reader_check(const s_state_t *st, const s_reader_t *r, const char *run)
{
    for (size_t i = 0; i < S_N; i++)
        if (r->got[i] != st->by_seq[i])
            fail_msg("%s, %s: seq %zu carried signer_seq %" PRIu64 ", the "
                     "update acked as that seq has %" PRIu64, run, r->name,
                     i + 1, r->got[i], st->by_seq[i]);
}

/* ------------------------------------------------------------ publishing */

/*
 * Publish all S_N envelopes, S_WINDOW in flight, each acked with a new
 * seq in 1..S_N; st->by_seq records which update each seq is.
 */
static void
s_publish_all(s_state_t *st)
{
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL, 0);
    assert_non_null(pub);
    uint64_t *rids = calloc(S_N, sizeof(*rids));
    assert_non_null(rids);
    size_t next = 0, acked = 0, base = 0;
    while (acked < S_N) {
        while (next < S_N && next - acked < S_WINDOW) {
            int rc = parley_pub_send(pub, st->envs + next * PARLEY_ENVELOPE_MAX,
                                     st->lens[next], &rids[next]);
            if (rc != 0)
                fail_msg("send %zu: %s", next, parley_error_name(rc));
            next++;
        }
        uint64_t rid = 0, seq = 0;
        int dup = 0;
        int rc = ph_recv(pub, S_TIMEOUT, &rid, &seq, &dup);
        if (rc != 0)
            fail_msg("publish: %s after %zu acks", parley_error_name(rc), acked);
        /* Find the envelope: ids of one publisher rise with each send. */
        while (base < next && rids[base] == 0)
            base++;
        size_t i = base;
        while (i < next && rids[i] != rid)
            i++;
        if (i == next)
            fail_msg("answer to request %" PRIu64 " not in flight", rid);
        rids[i] = 0;
        if (dup || seq == 0 || seq > S_N)
            fail_msg("envelope %zu acked as seq %" PRIu64 " (duplicate %d)", i,
                     seq, dup);
        if (st->by_seq[seq - 1] != 0)
            fail_msg("seq %" PRIu64 " acked twice", seq);
        st->by_seq[seq - 1] = st->signer_seqs[i];
        acked++;
    }
    free(rids);
    parley_pub_destroy(&pub);
}

/* ------------------------------------------------------------- fixtures */

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    *state = st;
    char ring[1024] = "";
    if (ph_key_make(&st->key, st->dir, "newsdesk", 0x53) != 0
        || ph_keyring_add(ring, sizeof(ring), &st->key, "*", "*", "*") != 0
        || ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_file_write(st->keyring, ring, strlen(ring), 0644) != 0
        || ph_path(st->config, sizeof(st->config), st->dir, "parleyd.conf")
               != 0
        || du_config_write(st->config, "fsync off\nmax_clock_skew 3600\n"
                                       "rate_limit 0\n")
               != 0)
        return -1;
    st->envs = malloc((size_t)S_N * PARLEY_ENVELOPE_MAX);
    st->lens = calloc(S_N, sizeof(*st->lens));
    st->signer_seqs = calloc(S_N, sizeof(*st->signer_seqs));
    st->by_seq = calloc(S_N, sizeof(*st->by_seq));
    st->normal.got = calloc(S_N, sizeof(uint64_t));
    st->slow.got = calloc(S_N, sizeof(uint64_t));
    if (st->envs == NULL || st->lens == NULL || st->signer_seqs == NULL
        || st->by_seq == NULL || st->normal.got == NULL || st->slow.got == NULL)
        return -1;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    if (st == NULL)
        return 0;
    if (st->normal.sub != NULL) {
        atomic_store(&st->normal.stop, true);
        pthread_join(st->normal.thread, NULL);
    }
    s_reader_close(&st->normal);
    s_reader_close(&st->slow);
    ph_daemon_teardown(&st->daemon, st->test_ok);
    free(st->envs);
    free(st->lens);
    free(st->signer_seqs);
    free(st->by_seq);
    free(st->normal.got);
    free(st->slow.got);
    ph_key_free(&st->key);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

static void
s_start(s_state_t *st, const char *name)
{
    if (du_daemon_start_in(&st->daemon, st->dir, name, st->keyring,
                           st->config)
        != 0)
        fail_msg("parleyd did not start");
}

/*
 * One run: a fresh daemon, the normal subscriber (and the slow one when
 * with_slow), publish everything, wait for the normal one to finish.
 * Returns the normal subscriber's completion time in microseconds.
 */
static int64_t
s_run(s_state_t *st, const char *name, bool with_slow)
{
    s_start(st, name);
    if (with_slow)
        s_reader_open(st, &st->slow, "slow subscriber (rcvhwm 10)", 10);
    s_reader_open(st, &st->normal, "normal subscriber", 0);
    int64_t t0 = parley__mono_us();
    st->normal.t0_us = t0;
    assert_int_equal(pthread_create(&st->normal.thread, NULL, s_reader_run,
                                    &st->normal),
                     0);
    memset(st->by_seq, 0, S_N * sizeof(*st->by_seq));
    s_publish_all(st);
    int64_t published = parley__mono_us() - t0;
    int64_t deadline = parley__mono_ms() + S_DRAIN_MS;
    while (atomic_load(&st->normal.done_us) < 0 && st->normal.err[0] == '\0'
           && parley__mono_ms() < deadline)
        du_sleep_us(1000);
    /* A moment for a repeat to show up, then stop the reader. */
    du_sleep_us(300000);
    atomic_store(&st->normal.stop, true);
    pthread_join(st->normal.thread, NULL);
    if (st->normal.err[0] != '\0')
        fail_msg("%s, %s: %s", name, st->normal.name, st->normal.err);
    if (st->normal.n != S_N)
        fail_msg("%s, %s: %zu of %d delivered", name, st->normal.name,
                 st->normal.n, S_N);
    s_reader_check(st, &st->normal, name);
    printf("[slow-sub] %s: published %d updates in %.2f s; the normal "
           "subscriber had them all after %.2f s\n", name, S_N,
           (double)published / 1e6,
           (double)atomic_load(&st->normal.done_us) / 1e6);
    fflush(stdout);
    s_reader_close(&st->normal);
    return atomic_load(&st->normal.done_us);
}

/* --------------------------------------------------------------- tests */

static void
test_slow_subscriber(void **state)
{
    s_state_t *st = *state;
    int64_t t = parley__mono_us();
    for (size_t i = 0; i < S_N; i++) {
        char headline[80];
        snprintf(headline, sizeof(headline), "Talks update %zu", i);
        st->signer_seqs[i] = ph_next_signer_seq();
        assert_int_equal(du_sign(&st->key, i % 3 ? "hamas" : "israel",
                                 headline, st->signer_seqs[i],
                                 st->envs + i * PARLEY_ENVELOPE_MAX,
                                 PARLEY_ENVELOPE_MAX, &st->lens[i]),
                         0);
    }
    printf("[slow-sub] signed %d updates in %.2f s\n", S_N,
           (double)(parley__mono_us() - t) / 1e6);

    /* Run A: the baseline. */
    int64_t alone = s_run(st, "run A (no slow subscriber)", false);
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("run A: parleyd exit status after SIGTERM: %d", status);

    /* Run B: with the stalled subscriber. */
    int64_t with_slow = s_run(st, "run B (slow subscriber stalled)", true);
    ph_stats_t before, after;
    assert_int_equal(ph_stats_fetch(st->daemon.api, &before), 0);

    /* Now the slow one drains. */
    s_reader_t *r = &st->slow;
    r->t0_us = parley__mono_us();
    parley_event_t *ev = malloc(sizeof(*ev));
    assert_non_null(ev);
    int64_t deadline = parley__mono_ms() + S_DRAIN_MS;
    while (r->n < S_N && parley__mono_ms() < deadline)
        if (s_reader_step(r, ev, 1000) < 0)
            break;
    int64_t drained = parley__mono_us() - r->t0_us;
    /* Nothing more may come: no repeat, nothing past the last. */
    int64_t quiet_until = parley__mono_ms() + 1500;
    while (r->err[0] == '\0' && parley__mono_ms() < quiet_until) {
        int got = s_reader_step(r, ev, 200);
        if (got == 1)
            s_reader_fail(r, "an extra delivery after all %d: seq %" PRIu64,
                          S_N, ev->delivery.seq);
        if (got < 0)
            break;
    }
    free(ev);
    if (r->err[0] != '\0')
        fail_msg("%s: %s (after %zu deliveries)", r->name, r->err, r->n);
    if (r->n != S_N)
        fail_msg("%s: %zu of %d delivered within %d s", r->name, r->n, S_N,
                 S_DRAIN_MS / 1000);
    s_reader_check(st, r, "run B");
    assert_int_equal(ph_stats_fetch(st->daemon.api, &after), 0);
    uint64_t replays = du_stat(&after, "requests_replay")
                       - du_stat(&before, "requests_replay");
    printf("[slow-sub] the slow subscriber drained all %d in order, each "
           "once, in %.2f s, with %" PRIu64 " replay requests (%zu api "
           "timeouts)\n", S_N, (double)drained / 1e6, replays, r->timeouts);
    printf("[slow-sub] normal subscriber completion with / without the slow "
           "one: %.2f s / %.2f s = ratio %.2f (informational, not asserted)\n",
           (double)with_slow / 1e6, (double)alone / 1e6,
           (double)with_slow / (double)alone);
    fflush(stdout);
    s_reader_close(r);
    status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("run B: parleyd exit status after SIGTERM: %d", status);
    st->test_ok = true;
}

/*
 * A caller that is away for longer than the api timeout (busy with the
 * previous update, say) must not be told "timeout" for an answer the
 * daemon gave in time and that has been waiting in the socket.
 */
static void
test_stalled_caller_no_false_timeout(void **state)
{
    s_state_t *st = *state;
    s_start(st, "stall");
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL, 0);
    assert_non_null(pub);
    for (int i = 0; i < 3; i++) {
        parley_update_t u;
        uint64_t seq = 0;
        ph_update_init(&u, "gaza-ceasefire", "qatar", 0, "before the stall");
        assert_int_equal(ph_publish(pub, &u, &seq, NULL), 0);
        assert_int_equal(seq, (uint64_t)i + 1);
    }
    parley_pub_destroy(&pub);

    /* The replay from seq 1 is asked for inside parley_sub_new(). */
    parley_sub_options_t opt = { .start = PARLEY_START_SEQ, .since_seq = 1,
                                 .timeout_ms = 500 };
    parley_sub_t *sub = ph_sub_new(st->daemon.api, NULL, &opt);
    if (sub == NULL)
        fail_msg("parley_sub_new: %s", parley_error_name(-errno));
    du_sleep_us(1200000); /* the caller is busy: over twice the timeout */
    parley_event_t *ev = malloc(sizeof(*ev));
    assert_non_null(ev);
    for (uint64_t want = 1; want <= 3; want++) {
        int rc = ph_sub_next(sub, 2000, ev);
        if (rc != 1 || ev->type != PARLEY_EVENT_DELIVERY
            || ev->delivery.seq != want) {
            free(ev);
            parley_sub_destroy(&sub);
            fail_msg("after the caller was away 1.2 s: parley_sub_next "
                     "returned %d (%s), expected the delivery of seq %" PRIu64
                     " that the daemon had answered at once", rc,
                     rc < 0 ? parley_error_name(rc) : "event", want);
        }
    }
    free(ev);
    parley_sub_destroy(&sub);
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d", status);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stalled_caller_no_false_timeout,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_slow_subscriber, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
