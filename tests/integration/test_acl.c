/*
 * test_acl.c - subscriber access by CURVE key (issue 4, acceptance 3).
 *
 * The allow-list limits "mediator" to topics=party/egypt/; "archive" may
 * read everything. 10,000 updates are published, one in five naming
 * egypt. Raw SUB sockets with the mediator's key subscribe to "",
 * "party/" and "party/e" (the prefixes that would reach other parties),
 * one socket each and all of them on one socket with "party/egypt/" too:
 * the first three receive nothing at all, the last receives exactly the
 * egypt updates and not one of another party. The api applies the same
 * rule: the mediator's replay and snapshot hold only updates that name
 * egypt, while the archive's hold everything.
 */
#include "harness.h"
#include "security.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 10000
#define S_UPDATES 10000
#define S_WINDOW 256 /* publishes in flight */

static const char *const s_parties[] = { "israel", "hamas", "us", "egypt",
                                         "qatar" };

typedef struct {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    ph_key_t signer;
    sec_curve_t server, mediator, archive;
    parley_curve_t *mediator_c, *archive_c;
    ph_daemon_t daemon;
    void *ctx;
    void *socks[4]; /* raw subscribers, closed in teardown */
    uint64_t published_egypt;
    uint64_t head;
} s_state_t;

static int
s_setup(void **state)
{
    s_state_t *st = calloc(1, sizeof(*st));
    char ring[1024] = "", text[512], conf[4 * PH_PATH_MAX];
    char clients[PH_PATH_MAX];
    if (st == NULL || ph_tmpdir_make(st->dir, sizeof(st->dir)) != 0)
        return -1;
    if (ph_key_make(&st->signer, st->dir, "mediator-office", 0x52) != 0
        || ph_keyring_add(ring, sizeof(ring), &st->signer, "*", "*", "*") != 0
        || ph_path(st->keyring, sizeof(st->keyring), st->dir, "keyring") != 0
        || ph_file_write(st->keyring, ring, strlen(ring), 0644) != 0)
        return -1;
    if (sec_curve_make(&st->server, st->dir, "server.curve") != 0
        || sec_curve_make(&st->mediator, st->dir, "mediator.curve") != 0
        || sec_curve_make(&st->archive, st->dir, "archive.curve") != 0)
        return -1;
    /* a directory of *.keys files */
    char kdir[PH_PATH_MAX], kfile[PH_PATH_MAX + 16];
    if (ph_path(kdir, sizeof(kdir), st->dir, "clients.d") != 0
        || mkdir(kdir, 0755) != 0)
        return -1;
    snprintf(kfile, sizeof(kfile), "%s/mediators.keys", kdir);
    int n = snprintf(text, sizeof(text),
                     "# the mediators' private channel\n"
                     "mediator %s topics=party/egypt/\n",
                     st->mediator.pub);
    if (ph_file_write(kfile, text, (size_t)n, 0644) != 0)
        return -1;
    snprintf(kfile, sizeof(kfile), "%s/archive.keys", kdir);
    n = snprintf(text, sizeof(text), "archive %s topics=*\n", st->archive.pub);
    if (ph_file_write(kfile, text, (size_t)n, 0644) != 0)
        return -1;
    snprintf(clients, sizeof(clients), "%s", kdir);
    if ((st->mediator_c = sec_curve_load(&st->server, &st->mediator)) == NULL
        || (st->archive_c = sec_curve_load(&st->server, &st->archive)) == NULL)
        return -1;
    /* No per-signer limit: one signer publishes 10,000 at full speed. */
    snprintf(conf, sizeof(conf),
             "curve on\ncurve_secret_key %s\ncurve_clients %s\n"
             "fsync off\nrate_limit 0\nlog_level info\n",
             st->server.path, clients);
    if (sec_daemon_start(&st->daemon, st->dir, st->keyring, conf, st->archive_c)
        != 0)
        return -1;
    st->ctx = zmq_ctx_new();
    *state = st;
    return st->ctx != NULL ? 0 : -1;
}

static int
s_teardown(void **state)
{
    s_state_t *st = *state;
    for (int i = 0; i < 4; i++)
        if (st->socks[i] != NULL)
            zmq_close(st->socks[i]);
    if (st->ctx != NULL)
        zmq_ctx_term(st->ctx);
    int rc = ph_daemon_stop(&st->daemon);
    if (rc != 0)
        ph_daemon_dump_log(&st->daemon);
    parley_curve_destroy(&st->mediator_c);
    parley_curve_destroy(&st->archive_c);
    ph_key_free(&st->signer);
    ph_tmpdir_remove(st->dir);
    free(st);
    return rc == 0 ? 0 : -1;
}

/* Raw SUB with the mediator's key on the given prefixes, then heartbeats. */
static void *
s_mediator_sub(s_state_t *st, const char *const *prefixes, size_t n)
{
    void *s =
        sec_socket(st->ctx, ZMQ_SUB, SEC_CURVE, &st->mediator, st->server.pub);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            zmq_setsockopt(s, ZMQ_SUBSCRIBE, prefixes[i], strlen(prefixes[i])),
            0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "sys/heartbeat/", 14), 0);
    assert_int_equal(zmq_connect(s, st->daemon.feed), 0);
    return s;
}

/* Per received message: does the update name egypt? */
typedef struct {
    size_t egypt, other, undecodable;
    size_t bad_topic;
} s_tally_t;

static void
s_tally(void *ctx, const char *topic, size_t tlen, const void *body,
        size_t blen)
{
    s_tally_t *t = ctx;
    parley_delivery_t d = { 0 };
    if (tlen != strlen("party/egypt/") || memcmp(topic, "party/egypt/", tlen))
        t->bad_topic++;
    if (parley_delivery_decode(NULL, body, blen, &d) != 0) {
        t->undecodable++;
        parley__delivery_release(&d);
        return;
    }
    parley__delivery_release(&d);
    bool egypt = false;
    for (size_t i = 0; i < d.update.n_parties; i++)
        egypt |= strcmp(d.update.parties[i], "egypt") == 0;
    if (egypt)
        t->egypt++;
    else
        t->other++;
}

/* Publish S_UPDATES updates, pipelined, as the archive client. */
static void
s_publish_all(s_state_t *st)
{
    parley_pub_t *pub =
        ph_pub_new(st->daemon.api, st->signer.key, st->archive_c, 0);
    assert_non_null(pub);
    size_t sent = 0, answered = 0;
    uint64_t last = 0;
    while (answered < S_UPDATES) {
        while (sent < S_UPDATES && sent - answered < S_WINDOW) {
            parley_update_t u;
            uint8_t env[PARLEY_ENVELOPE_MAX];
            size_t len = 0;
            char h[64];
            snprintf(h, sizeof(h), "update %zu", sent);
            ph_update_init(&u, "gaza-ceasefire", s_parties[sent % 5],
                           (uint32_t)(sent % 4), h);
            if (sent % 5 == 3)
                st->published_egypt++;
            assert_int_equal(ph_sign(&st->signer, &u, env, sizeof(env), &len),
                             0);
            int rc = parley_pub_send(pub, env, len, NULL);
            if (rc != 0)
                fail_msg("send %zu: %s", sent, parley_error_name(rc));
            sent++;
        }
        uint64_t seq = 0;
        int rc = ph_recv(pub, S_TIMEOUT, NULL, &seq, NULL);
        if (rc != 0)
            fail_msg("publish %zu: %s", answered, parley_error_name(rc));
        if (seq > last)
            last = seq;
        answered++;
    }
    parley_pub_destroy(&pub);
    st->head = last;
}

static void
test_feed_acl(void **state)
{
    s_state_t *st = *state;
    static const char *const p_empty[] = { "" };
    static const char *const p_party[] = { "party/" };
    static const char *const p_e[] = { "party/e" };
    static const char *const p_all[] = { "", "party/", "party/e",
                                         "party/egypt/" };
    uint64_t denied =
        sec_stat(&st->daemon, st->archive_c, "subscriptions_denied");
    void **s = st->socks;
    s[0] = s_mediator_sub(st, p_empty, 1);
    s[1] = s_mediator_sub(st, p_party, 1);
    s[2] = s_mediator_sub(st, p_e, 1);
    s[3] = s_mediator_sub(st, p_all, 4);
    /* The heartbeat proves the earlier subscriptions were decided. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(sec_sub_wait_heartbeat(s[i], S_TIMEOUT, NULL), 0);
    assert_int_equal(
        sec_stat(&st->daemon, st->archive_c, "subscriptions_denied"),
        denied + 6);

    s_publish_all(st);

    s_tally_t t[4];
    memset(t, 0, sizeof(t));
    size_t got[4];
    for (int i = 0; i < 4; i++)
        got[i] = sec_sub_drain(s[i], 1500, NULL, s_tally, &t[i]);
    print_message("published %d (%" PRIu64 " naming egypt); received: "
                  "\"\" %zu, \"party/\" %zu, \"party/e\" %zu, all four %zu "
                  "(egypt %zu, other parties %zu)\n",
                  S_UPDATES, st->published_egypt, got[0], got[1], got[2],
                  got[3], t[3].egypt, t[3].other);
    for (int i = 0; i < 3; i++)
        if (got[i] != 0)
            fail_msg("socket %d received %zu updates", i, got[i]);
    assert_int_equal(t[3].other, 0);
    assert_int_equal(t[3].undecodable, 0);
    assert_int_equal(t[3].bad_topic, 0);
    assert_int_equal(t[3].egypt, st->published_egypt);
    for (int i = 0; i < 4; i++) {
        zmq_close(s[i]);
        s[i] = NULL;
    }
    assert_true(sec_log_count(&st->daemon, "topic not allowed for this client")
                > 0);
}

/* A reliable subscription through the library: replay and snapshot. */
static void
s_lib_collect(s_state_t *st, const parley_curve_t *curve, parley_start_t start,
              size_t want, size_t *egypt, size_t *other)
{
    parley_sub_options_t opt = { .curve = curve,
                                 .start = start,
                                 .since_seq = 1 };
    parley_sub_t *sub = ph_sub_new(st->daemon.api, NULL, &opt);
    if (sub == NULL)
        fail_msg("parley_sub_new: %s", parley_error_name(-errno));
    *egypt = *other = 0;
    int64_t deadline = parley__mono_ms() + 60000;
    while (*egypt + *other < want && parley__mono_ms() < deadline) {
        parley_event_t ev;
        int rc = ph_sub_next(sub, 1500, &ev);
        if (rc == 0 && parley_sub_last_seq(sub) >= st->head)
            break; /* caught up with the head: nothing more will come */
        if (rc < 0)
            fail_msg("parley_sub_next: %s", parley_error_name(rc));
        if (rc == 1 && ev.type == PARLEY_EVENT_DELIVERY) {
            bool e = false;
            for (size_t i = 0; i < ev.delivery.update.n_parties; i++)
                e |= strcmp(ev.delivery.update.parties[i], "egypt") == 0;
            if (e)
                (*egypt)++;
            else
                (*other)++;
        }
    }
    parley_sub_destroy(&sub);
}

static void
test_api_acl(void **state)
{
    s_state_t *st = *state;
    size_t egypt, other;
    if (st->head == 0)
        skip(); /* needs the updates of test_feed_acl */

    /* replay from seq 1: the mediator sees only egypt, all of it */
    s_lib_collect(st, st->mediator_c, PARLEY_START_SEQ, S_UPDATES, &egypt,
                  &other);
    print_message("mediator replay: egypt %zu, other %zu\n", egypt, other);
    assert_int_equal(other, 0);
    assert_int_equal(egypt, st->published_egypt);

    /* the archive sees everything */
    s_lib_collect(st, st->archive_c, PARLEY_START_SEQ, S_UPDATES, &egypt,
                  &other);
    assert_int_equal(egypt + other, S_UPDATES);

    /* snapshot: one state per (negotiation, party, phase); egypt only */
    s_lib_collect(st, st->mediator_c, PARLEY_START_LAST, S_UPDATES, &egypt,
                  &other);
    print_message("mediator snapshot: egypt %zu, other %zu\n", egypt, other);
    assert_int_equal(other, 0);
    assert_true(egypt > 0);
    s_lib_collect(st, st->archive_c, PARLEY_START_LAST, S_UPDATES, &egypt,
                  &other);
    assert_true(other > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_acl),
        cmocka_unit_test(test_api_acl),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
