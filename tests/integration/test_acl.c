/*
 * test_acl.c - subscriber access by CURVE key (issue 4, acceptance 3),
 * the feed socket of each access class, and what sys/ and stats reveal
 * to a limited client (issue 18, items 2 and 5).
 *
 * The allow-list limits "mediator" to topics=party/egypt/; "archive" may
 * read everything. 10,000 updates are published, one in five naming
 * egypt. Raw SUB sockets with the mediator's key subscribe to "" (a
 * prefix of every topic), "party/israel/" and "all/" (whole topics it
 * may not read), one socket each and all of them on one socket with
 * "party/egypt/" too: the first three receive nothing at all, the last
 * receives exactly the egypt updates and not one of another party. The api applies the same
 * rule: the mediator's replay and snapshot hold only updates that name
 * egypt, while the archive's hold everything.
 *
 * Each access class reads the feed on a socket of its own: the mediator
 * is refused on the main feed and the archive on the mediator's; a ping
 * names each its own. What a limited client learns of others' traffic:
 * its heartbeats and ping carry the last seq it may read, not the head;
 * the counters (stats request, sys/stats/) need stats=yes, which the
 * auditor (limited to egypt too) has and the mediator has not.
 */
#include "harness.h"
#include "security.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
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
    sec_curve_t server, mediator, archive, auditor;
    parley_curve_t *mediator_c, *archive_c, *auditor_c;
    ph_daemon_t daemon;
    void *ctx;
    void *socks[4]; /* raw subscribers, closed in teardown */
    uint64_t published_egypt;
    uint64_t head;
    char mediator_feed[256]; /* the feed a ping names to the mediator */
    char auditor_feed[256];  /* ... and to the auditor */
    char kdir[PH_PATH_MAX];  /* the allow-list directory */
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
        || sec_curve_make(&st->archive, st->dir, "archive.curve") != 0
        || sec_curve_make(&st->auditor, st->dir, "auditor.curve") != 0)
        return -1;
    /* a directory of *.keys files */
    char kdir[PH_PATH_MAX], kfile[PH_PATH_MAX + 16];
    if (ph_path(kdir, sizeof(kdir), st->dir, "clients.d") != 0
        || mkdir(kdir, 0755) != 0)
        return -1;
    snprintf(kfile, sizeof(kfile), "%s/mediators.keys", kdir);
    int n = snprintf(text, sizeof(text),
                     "# the mediators' private channel\n"
                     "mediator %s topics=party/egypt/\n"
                     "auditor %s topics=party/egypt/ stats=yes\n",
                     st->mediator.pub, st->auditor.pub);
    if (ph_file_write(kfile, text, (size_t)n, 0644) != 0)
        return -1;
    snprintf(kfile, sizeof(kfile), "%s/archive.keys", kdir);
    n = snprintf(text, sizeof(text), "archive %s topics=*\n", st->archive.pub);
    if (ph_file_write(kfile, text, (size_t)n, 0644) != 0)
        return -1;
    snprintf(clients, sizeof(clients), "%s", kdir);
    snprintf(st->kdir, sizeof(st->kdir), "%s", kdir);
    if ((st->mediator_c = sec_curve_load(&st->server, &st->mediator)) == NULL
        || (st->archive_c = sec_curve_load(&st->server, &st->archive)) == NULL
        || (st->auditor_c = sec_curve_load(&st->server, &st->auditor)) == NULL)
        return -1;
    /* No per-signer limit: one signer publishes 10,000 at full speed. */
    snprintf(conf, sizeof(conf),
             "curve on\ncurve_secret_key %s\ncurve_clients %s\n"
             "fsync off\nrate_limit 0\nlog_level info\n"
             "heartbeat_interval 100\nstats_interval 200\n",
             st->server.path, clients);
    if (sec_daemon_start(&st->daemon, st->dir, st->keyring, conf, st->archive_c)
        != 0)
        return -1;
    /* A limited client has a feed socket of its own (its access class):
     * a ping tells it where. */
    if (sec_feed_of(&st->daemon, st->mediator_c, st->mediator_feed,
                    sizeof(st->mediator_feed))
            != 0
        || sec_feed_of(&st->daemon, st->auditor_c, st->auditor_feed,
                       sizeof(st->auditor_feed))
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
    parley_curve_destroy(&st->auditor_c);
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
    assert_int_equal(zmq_connect(s, st->mediator_feed), 0);
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
    static const char *const p_party[] = { "party/israel/" };
    static const char *const p_e[] = { "all/" };
    static const char *const p_all[] = { "", "party/israel/", "all/",
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
                  "\"\" %zu, \"party/israel/\" %zu, \"all/\" %zu, all four %zu "
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
    assert_true(sec_log_count(&st->daemon, "not a whole topic") > 0);
}

/*
 * A reliable subscription through the library: replay and snapshot. It
 * has everything once it has caught up with the head as the client may
 * know it: its ping's seq (a limited client's view, query.h).
 */
static void
s_lib_collect(s_state_t *st, const parley_curve_t *curve, parley_start_t start,
              size_t want, size_t *egypt, size_t *other)
{
    parley_sub_options_t opt = { .curve = curve,
                                 .start = start,
                                 .since_seq = 1 };
    parley_info_t *info = NULL;
    assert_int_equal(ph_ping_info(st->daemon.api, curve, 5000, &info), 0);
    uint64_t head = parley_info_seq(info);
    parley_info_destroy(&info);
    parley_sub_t *sub = ph_sub_new(st->daemon.api, NULL, &opt);
    if (sub == NULL)
        fail_msg("parley_sub_new: %s", parley_error_name(-errno));
    *egypt = *other = 0;
    int64_t deadline = parley__mono_ms() + 60000;
    while (*egypt + *other < want && parley__mono_ms() < deadline) {
        parley_event_t ev;
        int rc = ph_sub_next(sub, 1500, &ev);
        if (rc == 0 && parley_sub_last_seq(sub) >= head)
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

/*
 * Each access class has its own feed socket: a ping names it; a client
 * on another class's socket is refused at the handshake (auth_denied),
 * and gets nothing.
 */
static void
test_class_sockets(void **state)
{
    s_state_t *st = *state;
    print_message("feeds: main %s, mediator %s, auditor %s\n",
                  st->daemon.feed, st->mediator_feed, st->auditor_feed);
    assert_string_not_equal(st->mediator_feed, st->daemon.feed);
    assert_string_not_equal(st->auditor_feed, st->daemon.feed);
    assert_string_not_equal(st->auditor_feed, st->mediator_feed);
    parley_info_t *info = NULL;
    assert_int_equal(ph_ping_info(st->daemon.api, st->archive_c, 5000, &info),
                     0);
    assert_string_equal(parley_info_feed(info), st->daemon.feed);
    parley_info_destroy(&info);

    struct {
        const sec_curve_t *who;
        const char *feed;
    } wrong[] = { { &st->mediator, st->daemon.feed },
                  { &st->archive, st->mediator_feed },
                  { &st->auditor, st->mediator_feed } };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        uint64_t denied = sec_stat(&st->daemon, st->archive_c, "auth_denied");
        void *s = sec_socket(st->ctx, ZMQ_SUB, SEC_CURVE, wrong[i].who,
                             st->server.pub);
        assert_non_null(s);
        zmq_setsockopt(s, ZMQ_SUBSCRIBE, "sys/heartbeat/", 14);
        void *watch = sec_watch(st->ctx, s);
        assert_non_null(watch);
        assert_int_equal(zmq_connect(s, wrong[i].feed), 0);
        assert_int_equal(sec_watch_wait(watch, SEC_REFUSED, 5000), 0);
        zmq_close(watch);
        size_t hb = 0;
        assert_int_equal(sec_sub_drain(s, 300, &hb, NULL, NULL), 0);
        assert_int_equal(hb, 0);
        zmq_close(s);
        assert_true(sec_stat_wait(&st->daemon, st->archive_c, "auth_denied",
                                  denied + 1, 5000)
                    >= denied + 1);
    }
    assert_true(sec_log_count(&st->daemon, "a ping names the feed endpoint")
                > 0);
}

/* The next heartbeat's seq on sub, within timeout_ms; other messages
 * are counted into *others (by topic: sys/stats/ into *stats). */
static int
s_heartbeat_seq(void *sub, int timeout_ms, uint64_t *seq, size_t *stats)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - parley__mono_ms();
        zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
        if (left <= 0 || zmq_poll(&it, 1, (long)left) != 1)
            return -ETIMEDOUT;
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        zmq_msg_recv(&topic, sub, 0);
        if (zmq_msg_more(&topic))
            zmq_msg_recv(&body, sub, 0);
        bool hb = zmq_msg_size(&topic) == 14
                  && memcmp(zmq_msg_data(&topic), "sys/heartbeat/", 14) == 0;
        if (stats != NULL && zmq_msg_size(&topic) == 10
            && memcmp(zmq_msg_data(&topic), "sys/stats/", 10) == 0)
            (*stats)++;
        int rc = 1;
        if (hb) {
            uint8_t space[1024];
            parley__arena_t arena;
            parley__heartbeat_t h;
            parley__arena_init(&arena, space, sizeof(space));
            rc = parley__heartbeat_decode(zmq_msg_data(&body),
                                          zmq_msg_size(&body), &h, &arena);
            if (rc == 0)
                *seq = h.seq;
            parley__arena_reset(&arena);
        }
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
        if (hb)
            return rc;
    }
}

/* The seq of sub's heartbeats once they name want (within 5 s), else the
 * last one seen. */
static uint64_t
s_heartbeat_until(void *sub, uint64_t want, size_t *stats)
{
    uint64_t seq = 0;
    int64_t deadline = parley__mono_ms() + 5000;
    while (parley__mono_ms() < deadline) {
        if (s_heartbeat_seq(sub, 1000, &seq, stats) == 0 && seq == want)
            break;
    }
    return seq;
}

/* Publish one update for party as the archive; its seq. */
static uint64_t
s_publish_one(s_state_t *st, const char *party)
{
    parley_pub_t *pub =
        ph_pub_new(st->daemon.api, st->signer.key, st->archive_c, 0);
    assert_non_null(pub);
    parley_update_t u;
    ph_update_init(&u, "gaza-ceasefire", party, 1, "one more");
    uint64_t seq = 0;
    assert_int_equal(ph_publish(pub, &u, &seq, NULL), 0);
    parley_pub_destroy(&pub);
    return seq;
}

/* A seq the ping names to a client. */
static uint64_t
s_ping_seq(s_state_t *st, const parley_curve_t *c)
{
    parley_info_t *info = NULL;
    assert_int_equal(ph_ping_info(st->daemon.api, c, 5000, &info), 0);
    uint64_t seq = parley_info_seq(info);
    parley_info_destroy(&info);
    return seq;
}

/*
 * What a limited client learns of others' traffic. Its heartbeats and
 * ping name the last seq it may read (its gap detection needs no more),
 * not the head, which goes on rising with others' updates; when an
 * update it may read comes, they name that. The counters are refused to
 * it on both ways (a stats request: forbidden; sys/stats/: not
 * granted, and not sent on its socket), and given to a limited client
 * with stats=yes.
 */
static void
test_what_sys_reveals(void **state)
{
    s_state_t *st = *state;
    uint64_t denied =
        sec_stat(&st->daemon, st->archive_c, "subscriptions_denied");
    void **s = st->socks;
    static const char *const topics[] = { "party/egypt/", "sys/stats/",
                                          "sys/heartbeat/" };
    const char *feeds[3] = { st->daemon.feed, st->mediator_feed,
                             st->auditor_feed };
    const sec_curve_t *keys[3] = { &st->archive, &st->mediator,
                                   &st->auditor };
    for (int i = 0; i < 3; i++) {
        s[i] = sec_socket(st->ctx, ZMQ_SUB, SEC_CURVE, keys[i],
                          st->server.pub);
        assert_non_null(s[i]);
        for (int t = 0; t < 3; t++)
            zmq_setsockopt(s[i], ZMQ_SUBSCRIBE, topics[t], strlen(topics[t]));
        assert_int_equal(zmq_connect(s[i], feeds[i]), 0);
        assert_int_equal(sec_sub_wait_heartbeat(s[i], 5000, NULL), 0);
    }
    /* the mediator's sys/stats/ alone was refused */
    assert_int_equal(
        sec_stat(&st->daemon, st->archive_c, "subscriptions_denied"),
        denied + 1);

    /* Others publish: the head rises, the mediator's view does not. */
    uint64_t view = s_ping_seq(st, st->mediator_c);
    uint64_t head = 0;
    for (int i = 0; i < 20; i++)
        head = s_publish_one(st, "israel");
    assert_true(view < head);
    assert_int_equal(s_ping_seq(st, st->archive_c), head);
    assert_int_equal(s_ping_seq(st, st->mediator_c), view);
    assert_int_equal(s_ping_seq(st, st->auditor_c), view);
    size_t stats[3] = { 0, 0, 0 };
    assert_int_equal(s_heartbeat_until(s[0], head, &stats[0]), head);
    for (int r = 0; r < 5; r++) { /* five heartbeats, each the view */
        uint64_t seq = 0;
        assert_int_equal(s_heartbeat_seq(s[1], 2000, &seq, &stats[1]), 0);
        assert_int_equal(seq, view);
        assert_int_equal(s_heartbeat_seq(s[2], 2000, &seq, &stats[2]), 0);
        assert_int_equal(seq, view);
    }

    /* One it may read: now the views name it. */
    uint64_t egypt = s_publish_one(st, "egypt");
    assert_int_equal(egypt, head + 1);
    assert_int_equal(s_heartbeat_until(s[1], egypt, &stats[1]), egypt);
    assert_int_equal(s_ping_seq(st, st->mediator_c), egypt);

    /* The counters: stats_interval is 200 ms, and a second has passed. */
    assert_int_equal(s_heartbeat_until(s[0], egypt, &stats[0]), egypt);
    assert_int_equal(s_heartbeat_until(s[2], egypt, &stats[2]), egypt);
    sec_sub_drain(s[1], 600, NULL, NULL, NULL);
    size_t mediator_any = 0;
    uint64_t seq = 0;
    for (int r = 0; r < 5; r++)
        if (s_heartbeat_seq(s[1], 2000, &seq, &stats[1]) == 0)
            mediator_any++;
    print_message("sys/stats/ messages: archive %zu, mediator %zu, auditor "
                  "%zu\n",
                  stats[0], stats[1], stats[2]);
    assert_true(stats[0] > 0);
    assert_true(stats[2] > 0);
    assert_int_equal(stats[1], 0);
    assert_int_equal(mediator_any, 5);

    uint64_t forbidden =
        sec_stat(&st->daemon, st->archive_c, "rejected_forbidden");
    parley_call_options_t o = ph_call_options(st->daemon.api, 5000);
    parley_stats_t *ps = NULL;
    o.curve = st->mediator_c;
    assert_int_equal(parley_stats(&o, &ps), PARLEY_EFORBIDDEN);
    assert_null(ps);
    o.curve = st->auditor_c;
    assert_int_equal(parley_stats(&o, &ps), 0);
    parley_stats_destroy(&ps);
    assert_int_equal(
        sec_stat(&st->daemon, st->archive_c, "rejected_forbidden"),
        forbidden + 1);
    for (int i = 0; i < 3; i++) {
        zmq_close(s[i]);
        s[i] = NULL;
    }
}

/*
 * Send one checkpoint, inclusion or consistency request on a raw DEALER
 * with client's key and return the reply's reject code (0: answered).
 */
static int
s_transparency_code(s_state_t *st, const sec_curve_t *client,
                    parley__op_t op)
{
    static const uint64_t seqs[] = { 1 };
    void *d = sec_socket(st->ctx, ZMQ_DEALER, SEC_CURVE, client,
                         st->server.pub);
    assert_non_null(d);
    assert_int_equal(zmq_connect(d, st->daemon.api), 0);
    parley__request_t q;
    uint8_t buf[256];
    size_t n = 0;
    memset(&q, 0, sizeof(q));
    q.request_id = 77;
    q.op = op;
    q.seqs = seqs;
    q.n_seqs = op == PARLEY__OP_INCLUSION ? 1 : 0;
    assert_int_equal(parley__request_encode(&q, buf, sizeof(buf), &n), 0);
    assert_true(zmq_send(d, buf, n, 0) >= 0);
    zmq_pollitem_t it = { d, 0, ZMQ_POLLIN, 0 };
    assert_int_equal(zmq_poll(&it, 1, 10000), 1);
    static uint8_t reply[1 << 20], space[1 << 20];
    int len = zmq_recv(d, reply, sizeof(reply), 0);
    assert_true(len > 0);
    parley__arena_t arena;
    parley__reply_t r;
    parley__arena_init(&arena, space, sizeof(space));
    assert_int_equal(parley__reply_decode(reply, (size_t)len, &r, &arena), 0);
    assert_int_equal(r.request_id, 77);
    zmq_close(d);
    return r.type == PARLEY__REPLY_REJECT ? r.code : 0;
}

/*
 * A tree size tells how much everyone publishes, as the counters do: the
 * transparency log's checkpoint, inclusion and consistency requests are
 * refused forbidden to a key without stats=yes (the mediator), and not
 * to one with it (the auditor; its answer depends on the log key).
 */
static void
test_transparency_needs_stats(void **state)
{
    s_state_t *st = *state;
    static const parley__op_t ops[] = { PARLEY__OP_CHECKPOINT,
                                        PARLEY__OP_INCLUSION,
                                        PARLEY__OP_CONSISTENCY };
    uint64_t forbidden =
        sec_stat(&st->daemon, st->archive_c, "rejected_forbidden");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(s_transparency_code(st, &st->mediator, ops[i]),
                         PARLEY_EFORBIDDEN);
        assert_int_not_equal(s_transparency_code(st, &st->auditor, ops[i]),
                             PARLEY_EFORBIDDEN);
    }
    assert_int_equal(
        sec_stat(&st->daemon, st->archive_c, "rejected_forbidden"),
        forbidden + 3);
}

/* Does a replay reply hold only deliveries naming egypt? Counts both. */
static void
s_tally_reply(const uint8_t *buf, size_t len, size_t *egypt, size_t *other,
              size_t *replies)
{
    static uint8_t space[4 << 20];
    parley__arena_t arena;
    parley__reply_t r;
    parley__arena_init(&arena, space, sizeof(space));
    if (parley__reply_decode(buf, len, &r, &arena) == 0
        && r.type == PARLEY__REPLY_REPLAY) {
        (*replies)++;
        for (size_t i = 0; i < r.n_deliveries; i++) {
            parley_delivery_t d = { 0 };
            if (parley_delivery_decode(NULL, r.deliveries[i].data,
                                       r.deliveries[i].len, &d)
                != 0) {
                (*other)++;
                continue;
            }
            bool e = false;
            for (size_t p = 0; p < d.update.n_parties; p++)
                e |= strcmp(d.update.parties[p], "egypt") == 0;
            if (e)
                (*egypt)++;
            else
                (*other)++;
            parley__delivery_release(&d);
        }
    }
    parley__arena_reset(&arena);
}

/*
 * Rights follow the key (issue 18, item 4). The mediator (egypt only)
 * has replays queued in the daemon when a reload swaps its name with
 * the archive's (which reads everything). Whatever is answered to the
 * mediator's key, before the reload or after (its requests read after
 * it carry the name "mediator", which is now the archive's key), holds
 * egypt alone; and under its new name its key still reads egypt alone.
 * Last: it changes the list.
 */
static void
test_swapped_names(void **state)
{
    s_state_t *st = *state;
    /* more than a turn reads (1,024), each small: most are still queued
     * in the daemon when it handles the SIGHUP after its turn */
    enum { REPLAYS = 3000 };
    void *d = st->socks[0] = sec_socket(st->ctx, ZMQ_DEALER, SEC_CURVE,
                                        &st->mediator, st->server.pub);
    assert_non_null(d);
    /* the same identity after the cut, so that an answer to a request
     * of the old connection could find the new one */
    zmq_setsockopt(d, ZMQ_ROUTING_ID, "mediator-d", 10);
    assert_int_equal(zmq_connect(d, st->daemon.api), 0);
    for (int i = 0; i < REPLAYS; i++) {
        parley__request_t q;
        uint8_t buf[256];
        size_t n = 0;
        memset(&q, 0, sizeof(q));
        q.request_id = (uint64_t)i + 1;
        q.op = PARLEY__OP_REPLAY;
        q.from_seq = 1 + (uint64_t)i;
        q.limit = 5;
        assert_int_equal(parley__request_encode(&q, buf, sizeof(buf), &n), 0);
        assert_true(zmq_send(d, buf, n, 0) >= 0);
    }
    /* the first answers prove the requests are in the daemon */
    size_t egypt = 0, other = 0, replies = 0;
    zmq_pollitem_t it = { d, 0, ZMQ_POLLIN, 0 };
    assert_int_equal(zmq_poll(&it, 1, 10000), 1);

    char text[512], path[PH_PATH_MAX + 32];
    int n = snprintf(text, sizeof(text),
                     "archive %s topics=party/egypt/\n"
                     "auditor %s topics=party/egypt/ stats=yes\n",
                     st->mediator.pub, st->auditor.pub);
    snprintf(path, sizeof(path), "%s/mediators.keys", st->kdir);
    assert_int_equal(ph_file_write(path, text, (size_t)n, 0644), 0);
    n = snprintf(text, sizeof(text), "mediator %s topics=*\n",
                 st->archive.pub);
    snprintf(path, sizeof(path), "%s/archive.keys", st->kdir);
    size_t cuts = sec_log_count(&st->daemon, "closed every connection");
    assert_int_equal(ph_file_write(path, text, (size_t)n, 0644), 0);
    assert_int_equal(kill(st->daemon.pid, SIGHUP), 0);
    assert_true(
        sec_log_wait(&st->daemon, "closed every connection", cuts, 10000));

    /* Everything answered to the mediator's key, until 1.5 s pass
     * without an answer. */
    while (zmq_poll(&it, 1, 1500) == 1) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, d, 0) >= 0)
            s_tally_reply(zmq_msg_data(&m), zmq_msg_size(&m), &egypt, &other,
                          &replies);
        zmq_msg_close(&m);
    }
    print_message("%d replays queued across the swap: %zu answered (%zu "
                  "deliveries naming egypt, %zu not)\n",
                  REPLAYS, replies, egypt, other);
    assert_true(replies > 0);
    assert_int_equal(other, 0);
    zmq_close(d);
    st->socks[0] = NULL;

    /* Under its new name the key reads what it read before, and the
     * archive's key, now named mediator, still everything. */
    size_t e2 = 0, o2 = 0;
    s_lib_collect(st, st->mediator_c, PARLEY_START_SEQ, S_UPDATES, &e2, &o2);
    assert_int_equal(o2, 0);
    assert_true(e2 >= st->published_egypt);
    assert_int_equal(s_ping_seq(st, st->archive_c),
                     sec_stat(&st->daemon, st->archive_c, "seq"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_acl),
        cmocka_unit_test(test_api_acl),
        cmocka_unit_test(test_class_sockets),
        cmocka_unit_test(test_what_sys_reveals),
        cmocka_unit_test(test_transparency_needs_stats),
        cmocka_unit_test(test_swapped_names),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
