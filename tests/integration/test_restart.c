/*
 * test_restart.c - issue 3, acceptance 5 and 6: subscribers across daemon
 * restarts, and replay protection across restarts.
 *
 * Restart under running subscribers (acceptance 5). Two library
 * subscribers run in their own threads, calling ph_sub_next() all the
 * time: one with no filter, one for party hamas. The test publishes 300
 * updates (alternating parties israel and hamas), stops parleyd with
 * SIGTERM, tries to publish while it is down (those fail: the publisher
 * sees a timeout), starts parleyd again on the same ports and state
 * directory, publishes 300 more; then pipelines 400 and kills parleyd
 * with SIGKILL after about half of them are acked, starts it again and
 * publishes 300 more. At the end:
 *   - the unfiltered subscriber has delivered seqs 1..head of the log,
 *     each once, in order, with the same signer and signer_seq as the log
 *     (so every acked update, and every unacked one that made it into the
 *     log, exactly once), and no gap or rejected event;
 *   - the hamas subscriber has delivered exactly the hamas records of the
 *     log, in order, each once;
 *   - every acked update is in the log at the seq its ack named.
 * ph_sub_next() may return timeout while the daemon is down; that is
 * counted and printed, not an error.
 *
 * Replay protection (acceptance 6). After a clean restart and after a
 * kill -9: an update reusing an accepted signer_seq with different bytes
 * is rejected as replay (through the raw api and through the library),
 * and the accepted bytes sent again get a duplicate ack with the original
 * seq. The counters move accordingly and the log gains no record.
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

#define S_TIMEOUT 5000
#define S_ITEMS_MAX 2000
#define S_WAIT_MS 60000      /* for subscribers to catch up */

/* One update sent (all signed by the one key). */
typedef struct s_item {
    uint8_t *env;
    size_t len;
    uint64_t signer_seq;
    const char *party;
    uint64_t acked;       /* seq of its ack, 0 if none */
} s_item_t;

/* What one subscriber delivered. */
typedef struct s_got {
    uint64_t seq;
    uint64_t signer_seq;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    char party[PARLEY_SLUG_MAX + 1];
} s_got_t;

typedef struct s_reader {
    pthread_t thread;
    const char *name;
    parley_sub_t *sub;
    atomic_bool stop;
    atomic_uint_fast64_t last;   /* seq of the latest delivery */
    s_got_t *got;
    size_t n, cap;
    size_t gaps, rejected, timeouts, errors;
    int first_error;
} s_reader_t;

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    ph_key_t key;
    ph_daemon_t daemon;
    s_item_t items[S_ITEMS_MAX];
    size_t n_items;
    s_reader_t readers[2];
    bool test_ok;
} s_state_t;

/* ----------------------------------------------------------- subscribers */

static void *
s_reader_run(void *arg)
{
    s_reader_t *r = arg;
    parley_event_t *ev = malloc(sizeof(*ev));
    if (ev == NULL) {
        r->errors++;
        r->first_error = -ENOMEM;
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        int rc = ph_sub_next(r->sub, 200, ev);
        if (rc == 0)
            continue;
        if (rc == PARLEY_ETIMEOUT) {
            /* An api request went unanswered: the daemon is down. */
            r->timeouts++;
            continue;
        }
        if (rc < 0) {
            if (r->errors++ == 0)
                r->first_error = rc;
            fprintf(stderr, "[restart] %s: parley_sub_next: %s\n", r->name,
                    parley_error_name(rc));
            du_sleep_us(100000);
            continue;
        }
        if (ev->type == PARLEY_EVENT_GAP) {
            fprintf(stderr, "[restart] %s: gap %" PRIu64 "..%" PRIu64 "\n",
                    r->name, ev->seq, ev->seq_last);
            r->gaps++;
            continue;
        }
        if (ev->type == PARLEY_EVENT_REJECTED) {
            fprintf(stderr, "[restart] %s: rejected seq %" PRIu64 ": %s\n",
                    r->name, ev->seq,
                    parley_error_name(ev->code));
            r->rejected++;
            continue;
        }
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 256;
            s_got_t *g = realloc(r->got, cap * sizeof(*g));
            if (g == NULL) {
                r->errors++;
                r->first_error = -ENOMEM;
                break;
            }
            r->got = g;
            r->cap = cap;
        }
        s_got_t *g = &r->got[r->n++];
        g->seq = ev->delivery.seq;
        g->signer_seq = ev->delivery.update.signer_seq;
        memcpy(g->signer, ev->delivery.signer, sizeof(g->signer));
        snprintf(g->party, sizeof(g->party), "%s",
                 ev->delivery.update.n_parties > 0
                     ? ev->delivery.update.parties[0]
                     : "");
        atomic_store(&r->last, ev->delivery.seq);
    }
    free(ev);
    return NULL;
}

/* Subscribe (from seq 1, optionally to one party) and start reading. */
static void
s_reader_start(s_state_t *st, s_reader_t *r, const char *name,
               const char *party)
{
    const char *parties[1] = { party };
    parley_filter_t f = { 0 };
    if (party != NULL) {
        f.parties = parties;
        f.n_parties = 1;
    }
    parley_sub_options_t opt = { .start = PARLEY_START_SEQ, .since_seq = 1,
                                 .timeout_ms = 2000 };
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->sub = ph_sub_new(st->daemon.api, &f, &opt);
    if (r->sub == NULL)
        fail_msg("parley_sub_new (%s): %s", name, parley_error_name(-errno));
    assert_int_equal(pthread_create(&r->thread, NULL, s_reader_run, r), 0);
}

static void
s_reader_stop(s_reader_t *r)
{
    if (r->sub == NULL)
        return;
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    parley_sub_destroy(&r->sub);
}

/* Wait until the reader has delivered seq `until` or later. */
static void
s_reader_wait(s_reader_t *r, uint64_t until)
{
    int64_t deadline = parley__mono_ms() + S_WAIT_MS;
    while (atomic_load(&r->last) < until && parley__mono_ms() < deadline)
        du_sleep_us(20000);
    if (atomic_load(&r->last) < until)
        fail_msg("%s: still at seq %" PRIu64 " after %d s, waiting for %"
                 PRIu64 " (%zu delivered, %zu timeouts, %zu errors)", r->name,
                 (uint64_t)atomic_load(&r->last), S_WAIT_MS / 1000, until,
                 r->n, r->timeouts, r->errors);
}

/* ----------------------------------------------------------- publishing */

static s_item_t *
s_new_item(s_state_t *st, const char *party, const char *headline)
{
    assert_true(st->n_items < S_ITEMS_MAX);
    s_item_t *it = &st->items[st->n_items++];
    uint8_t env[PARLEY_ENVELOPE_MAX];
    memset(it, 0, sizeof(*it));
    it->party = party;
    it->signer_seq = ph_next_signer_seq();
    assert_int_equal(du_sign(&st->key, party, headline, it->signer_seq, env,
                             sizeof(env), &it->len),
                     0);
    it->env = malloc(it->len);
    assert_non_null(it->env);
    memcpy(it->env, env, it->len);
    return it;
}

/*
 * Publish n new updates one at a time through the library; each must be
 * acked with a new seq.
 */
static void
s_publish_n(s_state_t *st, parley_pub_t *pub, size_t n, const char *phase)
{
    for (size_t i = 0; i < n; i++) {
        char headline[96];
        const char *party = st->n_items % 2 ? "hamas" : "israel";
        snprintf(headline, sizeof(headline), "%s update %zu", phase, i);
        s_item_t *it = s_new_item(st, party, headline);
        uint64_t rid, seq = 0;
        int dup = 0;
        int rc = parley_pub_send(pub, it->env, it->len, &rid);
        if (rc == 0)
            rc = ph_recv(pub, S_TIMEOUT, &rid, &seq, &dup);
        if (rc != 0)
            fail_msg("%s: publish %zu: %s", phase, i, parley_error_name(rc));
        if (dup)
            fail_msg("%s: publish %zu answered as a duplicate", phase, i);
        it->acked = seq;
    }
}

/* ---------------------------------------------------------------- checks */

/* The sent item with this signer_seq, or NULL. */
static const s_item_t *
s_find(const s_state_t *st, uint64_t signer_seq)
{
    for (size_t i = 0; i < st->n_items; i++)
        if (st->items[i].signer_seq == signer_seq)
            return &st->items[i];
    return NULL;
}

/*
 * Hold a reader's deliveries against the log: exactly the records the
 * filter (party, or NULL for all) selects, in order, each once.
 */
static void
s_check_reader(const s_state_t *st, const s_reader_t *r, const du_log_t *log,
               const char *party)
{
    size_t k = 0;
    for (size_t i = 0; i < log->n; i++) {
        const du_rec_t *rec = &log->r[i];
        const s_item_t *it = s_find(st, rec->signer_seq);
        if (it == NULL)
            fail_msg("log seq %" PRIu64 " (signer_seq %" PRIu64 ") is no "
                     "update this test sent", rec->seq, rec->signer_seq);
        if (party != NULL && strcmp(it->party, party) != 0)
            continue;
        if (k >= r->n)
            fail_msg("%s: missing seq %" PRIu64 " (and %zu delivered in all)",
                     r->name, rec->seq, r->n);
        const s_got_t *g = &r->got[k];
        if (g->seq != rec->seq)
            fail_msg("%s: delivery %zu is seq %" PRIu64 ", expected %" PRIu64
                     " (%s)", r->name, k, g->seq, rec->seq,
                     g->seq < rec->seq ? "a repeat or out of order"
                                       : "an update was skipped");
        if (g->signer_seq != rec->signer_seq
            || memcmp(g->signer, rec->signer, sizeof(g->signer)) != 0)
            fail_msg("%s: seq %" PRIu64 " delivered with signer_seq %" PRIu64
                     " but the log has %" PRIu64, r->name, g->seq,
                     g->signer_seq, rec->signer_seq);
        if (strcmp(g->party, it->party) != 0)
            fail_msg("%s: seq %" PRIu64 " delivered for party %s, sent for %s",
                     r->name, g->seq, g->party, it->party);
        k++;
    }
    if (k != r->n)
        fail_msg("%s: %zu deliveries, but the log holds only %zu for it; "
                 "extra one: seq %" PRIu64, r->name, r->n, k, r->got[k].seq);
    if (r->gaps != 0 || r->rejected != 0)
        fail_msg("%s: %zu gap and %zu rejected events; expected none", r->name,
                 r->gaps, r->rejected);
    if (r->errors != 0)
        fail_msg("%s: parley_sub_next failed %zu times (first: %s)", r->name,
                 r->errors, parley_error_name(r->first_error));
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
    if (ph_key_make(&st->key, st->dir, "mediator", 0x52) != 0
        || ph_keyring_add(ring, sizeof(ring), &st->key, "gaza-ceasefire", "*",
                          "*") != 0
        || ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_file_write(st->keyring, ring, strlen(ring), 0644) != 0)
        return -1;
    if (ph_daemon_start(&st->daemon, st->dir, st->keyring, NULL) != 0)
        return -1;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    if (st == NULL)
        return 0;
    for (int i = 0; i < 2; i++) {
        s_reader_stop(&st->readers[i]);
        free(st->readers[i].got);
    }
    ph_daemon_teardown(&st->daemon, st->test_ok);
    for (size_t i = 0; i < st->n_items; i++)
        free(st->items[i].env);
    ph_key_free(&st->key);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void
test_subscribers_across_restarts(void **state)
{
    s_state_t *st = *state;
    s_reader_t *all = &st->readers[0], *hamas = &st->readers[1];
    s_reader_start(st, all, "all/ subscriber", NULL);
    s_reader_start(st, hamas, "hamas subscriber", "hamas");

    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL, 0);
    assert_non_null(pub);

    /* 1. Before. */
    s_publish_n(st, pub, 300, "before");
    uint64_t head = st->items[st->n_items - 1].acked;
    assert_int_equal(head, 300);

    /* 2. SIGTERM; publishing while it is down fails. */
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d (expected 0)", status);
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        parley_update_t u;
        ph_update_init(&u, "gaza-ceasefire", "israel", 1, "while down");
        uint64_t seq = 0;
        int rc = ph_publish(pub, &u, &seq, NULL);
        if (rc == 0)
            fail_msg("a publish while parleyd is stopped was acked (seq %"
                     PRIu64 ")", seq);
        failed++;
    }
    du_sleep_us(1500000); /* subscribers miss a heartbeat or so */

    /* 3. Same ports, same state: the subscribers reconnect by themselves. */
    if (ph_daemon_restart(&st->daemon, st->keyring, NULL) != 0)
        fail_msg("parleyd did not restart on %s", st->daemon.api);
    s_publish_n(st, pub, 300, "after SIGTERM");
    head = st->items[st->n_items - 1].acked;
    assert_int_equal(head, 600);
    s_reader_wait(all, head);

    /* 4. kill -9 with about 200 of 400 pipelined updates acked. */
    struct {
        uint64_t rid;
        s_item_t *it;
    } flight[16];
    size_t n_flight = 0, sent = 0, acks = 0;
    for (bool killed = false;;) {
        while (!killed && sent < 400 && n_flight < 16) {
            char headline[64];
            snprintf(headline, sizeof(headline), "before kill -9 %zu", sent);
            s_item_t *it = s_new_item(st, st->n_items % 2 ? "hamas" : "israel",
                                      headline);
            int rc = parley_pub_send(pub, it->env, it->len,
                                     &flight[n_flight].rid);
            if (rc != 0)
                fail_msg("pipelined send: %s", parley_error_name(rc));
            flight[n_flight++].it = it;
            sent++;
        }
        if (!killed && acks >= 200) {
            ph_daemon_kill9(&st->daemon);
            killed = true;
        }
        uint64_t rid = 0, seq = 0;
        int dup = 0;
        /* After the kill: take what answers the dead daemon got out. */
        int rc = ph_recv(pub, killed ? 300 : S_TIMEOUT, &rid, &seq,
                                 &dup);
        if (rc == PARLEY_ETIMEOUT && killed)
            break;
        if (rc != 0)
            fail_msg("pipelined publish: %s", parley_error_name(rc));
        size_t k = 0;
        while (k < n_flight && flight[k].rid != rid)
            k++;
        if (k == n_flight)
            fail_msg("answer to request %" PRIu64 " not in flight", rid);
        flight[k].it->acked = seq;
        flight[k] = flight[--n_flight];
        acks++;
    }
    if (ph_daemon_restart(&st->daemon, st->keyring, NULL) != 0)
        fail_msg("parleyd did not restart after kill -9 on %s",
                 st->daemon.api);

    /* 5. After. */
    s_publish_n(st, pub, 300, "after kill -9");
    head = st->items[st->n_items - 1].acked;
    s_reader_wait(all, head);
    /* The hamas reader's last update: the last hamas item acked. */
    uint64_t last_hamas = 0;
    for (size_t i = 0; i < st->n_items; i++)
        if (st->items[i].acked != 0 && strcmp(st->items[i].party, "hamas") == 0)
            last_hamas = st->items[i].acked;
    s_reader_wait(hamas, last_hamas);
    /* A moment for any repeat to show up before the readers stop. */
    du_sleep_us(1500000);
    s_reader_stop(all);
    s_reader_stop(hamas);
    parley_pub_destroy(&pub);

    du_log_t log = { 0 };
    int rc = du_replay_all(st->daemon.api, 1, &log);
    if (rc != 0)
        fail_msg("replay of the log: %s", parley_error_name(rc));
    if (!du_log_gapless(&log)) {
        du_log_free(&log);
        fail_msg("the log is not seqs 1..head in order (see above)");
    }
    for (size_t i = 0; i < st->n_items; i++) {
        const s_item_t *it = &st->items[i];
        if (it->acked == 0)
            continue;
        if (it->acked > log.n || log.r[it->acked - 1].signer_seq != it->signer_seq)
            fail_msg("acked seq %" PRIu64 " (signer_seq %" PRIu64 ") is not "
                     "in the log at its seq", it->acked, it->signer_seq);
    }
    s_check_reader(st, all, &log, NULL);
    s_check_reader(st, hamas, &log, "hamas");
    printf("[restart] log head %zu; all/ subscriber got %zu, hamas "
           "subscriber %zu, each once and in order; %d publishes failed "
           "while down; sub timeouts while down: %zu and %zu\n",
           log.n, all->n, hamas->n, failed, all->timeouts, hamas->timeouts);
    du_log_free(&log);
    st->test_ok = true;
}

/* Send env through a raw socket; expect a reject with code. */
static void
s_expect_reject(s_state_t *st, const void *env, size_t len, int code,
                const char *what)
{
    ph_api_t a;
    parley__reply_t r;
    char d[256];
    assert_int_equal(ph_api_open(&a, st->daemon.api), 0);
    int rc = ph_api_publish(&a, env, len, S_TIMEOUT, &r, NULL);
    if (rc != 0) {
        ph_api_close(&a);
        fail_msg("%s: %s", what, parley_error_name(rc));
    }
    if (r.type != PARLEY__REPLY_REJECT || r.code != code) {
        ph_reply_describe(&r, d, sizeof(d));
        ph_api_close(&a);
        fail_msg("%s: got %s, expected reject %s", what, d,
                 parley_error_name(code));
    }
    ph_api_close(&a);
}

/* Send env through a raw socket; expect an ack of seq (duplicate or not). */
static void
s_expect_ack(s_state_t *st, const void *env, size_t len, uint64_t seq,
             bool duplicate, const char *what)
{
    ph_api_t a;
    parley__reply_t r;
    char d[256];
    assert_int_equal(ph_api_open(&a, st->daemon.api), 0);
    int rc = ph_api_publish(&a, env, len, S_TIMEOUT, &r, NULL);
    if (rc != 0) {
        ph_api_close(&a);
        fail_msg("%s: %s", what, parley_error_name(rc));
    }
    if (r.type != PARLEY__REPLY_ACK || r.seq != seq
        || r.duplicate != duplicate) {
        ph_reply_describe(&r, d, sizeof(d));
        ph_api_close(&a);
        fail_msg("%s: got %s, expected ack seq=%" PRIu64 " duplicate=%d",
                 what, d, seq, (int)duplicate);
    }
    ph_api_close(&a);
}

/* Sign an update with this signer_seq and headline. */
static void
s_sign(s_state_t *st, uint64_t signer_seq, const char *headline, uint8_t *env,
       size_t *len)
{
    assert_int_equal(du_sign(&st->key, "egypt", headline, signer_seq, env,
                             PARLEY_ENVELOPE_MAX, len),
                     0);
}

/*
 * After a restart: for each accepted (bytes, seq) the same bytes get a
 * duplicate ack, and other bytes under its signer_seq get replay; also
 * through the library. Counters: replay and duplicates only.
 */
static void
s_check_replays(s_state_t *st, const char *after, uint8_t envs[][PARLEY_ENVELOPE_MAX],
                const size_t *lens, const uint64_t *sseqs,
                const uint64_t *seqs, size_t n)
{
    ph_stats_t before, later;
    char what[160];
    assert_int_equal(ph_stats_fetch(st->daemon.api, &before), 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t env[PARLEY_ENVELOPE_MAX];
        size_t len;
        snprintf(what, sizeof(what), "after %s: signer_seq of seq %" PRIu64
                 " with other bytes", after, seqs[i]);
        s_sign(st, sseqs[i], "a different update, same signer_seq", env, &len);
        s_expect_reject(st, env, len, PARLEY_EREPLAY, what);
        snprintf(what, sizeof(what), "after %s: the bytes of seq %" PRIu64
                 " again", after, seqs[i]);
        s_expect_ack(st, envs[i], lens[i], seqs[i], true, what);
    }
    /* The library hands the same verdict to its caller. */
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL, 0);
    assert_non_null(pub);
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "egypt", 1, "library reuse");
    u.signer_seq = sseqs[n - 1];
    int rc = ph_publish(pub, &u, NULL, NULL);
    parley_pub_destroy(&pub);
    if (rc != PARLEY_EREPLAY)
        fail_msg("after %s: parley_pub_publish reusing signer_seq %" PRIu64
                 " returned %s, expected replay", after, sseqs[n - 1],
                 parley_error_name(rc));
    assert_int_equal(ph_stats_fetch(st->daemon.api, &later), 0);
    char r[48], d[48];
    snprintf(r, sizeof(r), "rejected_replay=%zu", n + 1);
    snprintf(d, sizeof(d), "duplicates=%zu", n);
    const char *expect[] = { r, d, NULL };
    if (ph_stats_expect(&before, &later, expect) != 0)
        fail_msg("after %s: counters off (see above)", after);
}

static void
test_replayed_signer_seq(void **state)
{
    s_state_t *st = *state;
    static uint8_t envs[3][PARLEY_ENVELOPE_MAX];
    size_t lens[3];
    uint64_t sseqs[3], seqs[3];

    /* A and B accepted. */
    for (int i = 0; i < 2; i++) {
        sseqs[i] = ph_next_signer_seq();
        s_sign(st, sseqs[i], i == 0 ? "first accepted" : "second accepted",
               envs[i], &lens[i]);
        s_expect_ack(st, envs[i], lens[i], (uint64_t)i + 1, false,
                     "a new update");
        seqs[i] = (uint64_t)i + 1;
    }
    /* Clean restart (other ports: only the state directory matters). */
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d (expected 0)", status);
    if (ph_daemon_start(&st->daemon, st->dir, st->keyring, NULL) != 0)
        fail_msg("parleyd did not start again");
    s_check_replays(st, "a clean restart", envs, lens, sseqs, seqs, 2);

    /* C accepted: the log gained nothing from the rejects. */
    sseqs[2] = ph_next_signer_seq();
    s_sign(st, sseqs[2], "third accepted", envs[2], &lens[2]);
    s_expect_ack(st, envs[2], lens[2], 3, false, "a new update after restart");
    seqs[2] = 3;
    ph_daemon_kill9(&st->daemon);
    if (ph_daemon_start(&st->daemon, st->dir, st->keyring, NULL) != 0)
        fail_msg("parleyd did not start after kill -9");
    s_check_replays(st, "kill -9", envs, lens, sseqs, seqs, 3);

    /* And a fresh signer_seq is still welcome, at the next seq. */
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len;
    s_sign(st, ph_next_signer_seq(), "fourth accepted", env, &len);
    s_expect_ack(st, env, len, 4, false, "a new update after kill -9");
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subscribers_across_restarts,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replayed_signer_seq, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
