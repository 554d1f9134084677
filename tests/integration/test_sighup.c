/*
 * test_sighup.c - SIGHUP reloads the keyring atomically while subscribers
 * stay connected (issue 5, acceptance 2).
 *
 * parleyd starts with a keyring trusting signers "steady" and "leaving".
 * A library subscriber and a `parley sub` process subscribe before the
 * first publish and stay connected throughout. Then:
 *
 *   1. steady and leaving publish; "arriving" (not in the keyring) is
 *      rejected unknown_signer.
 *   2. The keyring is replaced by steady, arriving and a third signer
 *      (so the reload shows as keyring_signers 3) and the daemon gets
 *      SIGHUP: arriving now publishes, leaving is rejected unknown_signer.
 *   3. The keyring is replaced by one that starts with a valid line for
 *      steady alone and then has an invalid line, and the daemon gets
 *      SIGHUP: the log says "reload FAILED" with the file and line, and
 *      the keyring in force is still the one of step 2 (arriving still
 *      publishes, leaving is still rejected, keyring_signers stays 3): the
 *      valid first line was not applied on its own.
 *
 * Both subscribers must receive every accepted update, each once and in
 * order, with no gap, and nothing rejected; the reject counters must have
 * risen by exactly the rejects the test caused; the daemon exits 0.
 */
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define S_TIMEOUT 10000
#define S_MAX_UPDATES 16

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    ph_key_t steady, leaving, arriving, third;
    ph_daemon_t daemon;
    parley_sub_t *sub;                 /* library subscriber */
    ph_proc_t cli;                     /* `parley sub` */
    uint64_t seqs[S_MAX_UPDATES];      /* accepted, in order */
    char headlines[S_MAX_UPDATES][64]; /* what each carried */
    size_t n;
    bool test_ok;
} s_state_t;

/* ------------------------------------------------------------ helpers */

/* Replace the keyring atomically (write a temporary file, rename). */
static void
s_keyring_replace(s_state_t *st, const char *text)
{
    char tmp[PH_PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", st->keyring);
    assert_int_equal(ph_file_write(tmp, text, strlen(text), 0644), 0);
    if (rename(tmp, st->keyring) != 0)
        fail_msg("rename %s: %s", tmp, strerror(errno));
}

/* Publish one update signed by k; returns what parley_pub_publish said. */
static int
s_publish(s_state_t *st, const ph_key_t *k, const char *headline,
          uint64_t *seq)
{
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", "hamas", 1, headline);
    parley_pub_t *pub = ph_pub_new(st->daemon.api, k->key, NULL, 0);
    if (pub == NULL)
        fail_msg("parley_pub_new: %s", parley_error_name(-errno));
    int rc = ph_publish(pub, &u, seq, NULL);
    parley_pub_destroy(&pub);
    return rc;
}

/* Publish and expect an ack; remember the update for the subscribers. */
static void
s_publish_ok(s_state_t *st, const ph_key_t *k, const char *step)
{
    char headline[64];
    uint64_t seq = 0;
    snprintf(headline, sizeof(headline), "%s by %s", step, k->name);
    int rc = s_publish(st, k, headline, &seq);
    if (rc != 0)
        fail_msg("%s: publish by %s: %s (expected an ack)", step, k->name,
                 parley_error_name(rc));
    assert_true(st->n < S_MAX_UPDATES);
    if (st->n > 0 && seq != st->seqs[st->n - 1] + 1)
        fail_msg("%s: seq %" PRIu64 " after %" PRIu64, step, seq,
                 st->seqs[st->n - 1]);
    st->seqs[st->n] = seq;
    snprintf(st->headlines[st->n], sizeof(st->headlines[0]), "%s", headline);
    st->n++;
}

/* Publish and expect the reject unknown_signer. */
static void
s_publish_rejected(s_state_t *st, const ph_key_t *k, const char *step)
{
    uint64_t seq = 0;
    int rc = s_publish(st, k, "must be rejected", &seq);
    if (rc != PARLEY_EUNKNOWNSIGNER)
        fail_msg("%s: publish by %s returned %s (seq %" PRIu64 "), expected "
                 "unknown_signer", step, k->name,
                 rc == 0 ? "an ack" : parley_error_name(rc), seq);
}

/* Wait until the daemon reports `want` keyring signers. */
static void
s_wait_signers(s_state_t *st, uint64_t want)
{
    ph_stats_t s;
    uint64_t have = 0;
    for (int i = 0; i < S_TIMEOUT / 50; i++) {
        if (ph_stats_fetch(st->daemon.api, &s) == 0) {
            bool found = false;
            have = ph_stats_get(&s, "keyring_signers", &found);
            assert_true(found);
            if (have == want)
                return;
        }
        usleep(50 * 1000);
    }
    ph_daemon_dump_log(&st->daemon);
    fail_msg("keyring_signers is %" PRIu64 ", expected %" PRIu64
             " after SIGHUP", have, want);
}

/* Occurrences of needle in the daemon log. */
static int
s_log_count(const s_state_t *st, const char *needle)
{
    char *text = ph_file_read(st->daemon.log_path, NULL);
    int n = 0;
    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL;
         p++)
        n++;
    free(text);
    return n;
}

/* Wait until the daemon log holds `want` lines with needle. */
static void
s_wait_log(s_state_t *st, const char *needle, int want)
{
    for (int i = 0; i < S_TIMEOUT / 50; i++) {
        if (s_log_count(st, needle) >= want)
            return;
        usleep(50 * 1000);
    }
    ph_daemon_dump_log(&st->daemon);
    fail_msg("the daemon log has no %d. \"%s\" line", want, needle);
}

/* `parley sub` still holds its feed connection (it exits after five). */
static void
s_assert_connected(s_state_t *st)
{
    int rc = ph_wait_connected(st->cli.pid, st->daemon.feed_port, 1000);
    if (rc != 0) {
        ph_proc_wait(&st->cli, 1000);
        ph_proc_report(&st->cli, "parley sub");
        fail_msg("parley sub lost its feed connection: %s", strerror(-rc));
    }
}

static void
s_sighup(s_state_t *st)
{
    if (kill(st->daemon.pid, SIGHUP) != 0)
        fail_msg("kill -HUP %d: %s", (int)st->daemon.pid, strerror(errno));
}

/* ---------------------------------------------------------- fixtures */

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    *state = st;
    st->cli = (ph_proc_t)PH_PROC_INIT;
    if (ph_key_make(&st->steady, st->dir, "steady", 0x51) != 0
        || ph_key_make(&st->leaving, st->dir, "leaving", 0x52) != 0
        || ph_key_make(&st->arriving, st->dir, "arriving", 0x53) != 0
        || ph_key_make(&st->third, st->dir, "third", 0x54) != 0)
        return -1;
    char ring[2048] = "";
    if (ph_keyring_add(ring, sizeof(ring), &st->steady, "*", "*", "*") != 0
        || ph_keyring_add(ring, sizeof(ring), &st->leaving, "*", "*", "*") != 0
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
    parley_sub_destroy(&st->sub);
    ph_proc_free(&st->cli);
    ph_daemon_teardown(&st->daemon, st->test_ok);
    ph_key_free(&st->steady);
    ph_key_free(&st->leaving);
    ph_key_free(&st->arriving);
    ph_key_free(&st->third);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

/* -------------------------------------------------------------- test */

static void
test_sighup_reloads_keyring_atomically(void **state)
{
    s_state_t *st = *state;
    ph_stats_t before, after;
    bool found = false;

    assert_int_equal(ph_stats_fetch(st->daemon.api, &before), 0);
    assert_int_equal(ph_stats_get(&before, "keyring_signers", &found), 2);
    assert_true(found);

    /* Subscribers first, both live, connected throughout. Five updates
     * are accepted below. The CLI first: it is live once its two topics
     * (all/, sys/heartbeat/) are granted and a heartbeat followed. */
    const char *cli_argv[] = { PARLEY_BIN, "sub", "-s", st->daemon.api,
                               "-C", "5", "-F", "%s %h", "-W", "60", NULL };
    int rc = ph_sub_spawn_live(&st->cli, &st->daemon, cli_argv, st->dir, 2,
                               S_TIMEOUT);
    if (rc != 0)
        fail_msg("parley sub did not become live on the feed: %s",
                 strerror(-rc));
    /* The library's subscriber is live when parley_sub_new() returns. */
    parley_sub_options_t opt = { 0 };
    parley_filter_t filter = { 0 };
    opt.start = PARLEY_START_LIVE;
    st->sub = ph_sub_new(st->daemon.api, &filter, &opt);
    if (st->sub == NULL)
        fail_msg("parley_sub_new: %s", parley_error_name(-errno));

    /* 1. The first keyring. */
    s_publish_ok(st, &st->steady, "step 1");
    s_publish_ok(st, &st->leaving, "step 1");
    s_publish_rejected(st, &st->arriving, "step 1 (not yet trusted)");

    /* 2. A new keyring: arriving added, leaving removed. */
    char ring[2048] = "";
    assert_int_equal(ph_keyring_add(ring, sizeof(ring), &st->steady, "*", "*",
                                    "*"), 0);
    assert_int_equal(ph_keyring_add(ring, sizeof(ring), &st->arriving,
                                    "gaza-ceasefire", "*", "0-3"), 0);
    assert_int_equal(ph_keyring_add(ring, sizeof(ring), &st->third, "*",
                                    "israel", "*"), 0);
    s_keyring_replace(st, ring);
    s_sighup(st);
    s_wait_signers(st, 3);
    s_wait_log(st, "reloaded", 1);
    s_assert_connected(st);
    s_publish_ok(st, &st->arriving, "step 2 (newly trusted)");
    s_publish_rejected(st, &st->leaving, "step 2 (no longer trusted)");
    s_publish_ok(st, &st->steady, "step 2");

    /* 3. An invalid keyring: refused whole, the old one kept. */
    char bad[2048] = "";
    assert_int_equal(ph_keyring_add(bad, sizeof(bad), &st->steady, "*", "*",
                                    "*"), 0);
    strcat(bad, "broken AAAA negotiations=* parties=* phases=*\n");
    s_keyring_replace(st, bad);
    s_sighup(st);
    s_wait_log(st, "reload FAILED", 1);
    char *log = ph_file_read(st->daemon.log_path, NULL);
    assert_non_null(log);
    /* The message names the keyring file and the bad line (line 2). */
    const char *failed = strstr(log, "reload FAILED");
    assert_non_null(failed);
    char where[PH_PATH_MAX + 16];
    snprintf(where, sizeof(where), "%s: line 2", st->keyring);
    if (strstr(failed, where) == NULL)
        fail_msg("the reload failure does not name %s:\n%s", where, failed);
    free(log);
    s_wait_signers(st, 3);
    s_assert_connected(st);
    s_publish_ok(st, &st->arriving, "step 3 (old keyring kept)");
    s_publish_rejected(st, &st->leaving, "step 3 (old keyring kept)");
    assert_int_equal(s_log_count(st, "reloaded"), 1);

    /* Exactly the rejects caused above, and the accepted updates. */
    assert_int_equal(ph_stats_fetch(st->daemon.api, &after), 0);
    char accepted[32];
    snprintf(accepted, sizeof(accepted), "accepted=%zu", st->n);
    const char *expect[] = { accepted, "rejected_unknown_signer=3", NULL };
    assert_int_equal(ph_stats_expect(&before, &after, expect), 0);
    assert_int_equal(st->n, 5);

    /* The library subscriber saw every update once, in order, no gap. */
    ph_events_t ev = { 0 };
    ph_sub_collect(st->sub, &ev, st->n, st->seqs[st->n - 1], S_TIMEOUT);
    char a[256], b[256];
    uint64_t got[S_MAX_UPDATES];
    size_t ngot = 0;
    for (size_t i = 0; i < ev.n && ngot < S_MAX_UPDATES; i++)
        got[ngot++] = ev.d[i].seq;
    if (ngot != st->n || memcmp(got, st->seqs, st->n * sizeof(got[0])) != 0)
        fail_msg("library subscriber: expected seqs [%s], got [%s]",
                 ph_seqs_format(st->seqs, st->n, a, sizeof(a)),
                 ph_seqs_format(got, ngot, b, sizeof(b)));
    for (size_t i = 0; i < ev.n; i++)
        assert_string_equal(ev.d[i].update.headline, st->headlines[i]);
    if (ev.n_gaps != 0 || ev.n_rejected != 0 || ev.err != 0)
        fail_msg("library subscriber: %zu gaps, %zu rejected, error %d",
                 ev.n_gaps, ev.n_rejected, ev.err);
    ph_events_free(&ev);

    /* So did `parley sub`. */
    assert_int_equal(ph_proc_wait(&st->cli, S_TIMEOUT * 3), 0);
    char want[1024] = "";
    for (size_t i = 0; i < st->n; i++) {
        char line[128];
        snprintf(line, sizeof(line), "%" PRIu64 " %s\n", st->seqs[i],
                 st->headlines[i]);
        strcat(want, line);
    }
    if (st->cli.status != 0 || strcmp(st->cli.out, want) != 0) {
        ph_proc_report(&st->cli, "parley sub");
        fail_msg("parley sub printed other updates than the five accepted");
    }
    if (strstr(st->cli.err, "gap") != NULL) {
        ph_proc_report(&st->cli, "parley sub");
        fail_msg("parley sub reported a gap");
    }

    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d (expected 0)", status);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sighup_reloads_keyring_atomically,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
