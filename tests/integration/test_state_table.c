/*
 * test_state_table.c - the current state through libparley's public API,
 * against a real parleyd (docs/protocol.md sections 5 and 8):
 *
 *   - a snapshot names the entries each delivery holds
 *     (parley_query_entry(), parley_event_entry()): after U1 (israel,
 *     hamas) and U2 (israel), U1 holds hamas alone; after U2 is
 *     retracted, both again;
 *   - a state table (parley_state_t) fetched, then kept current by a live
 *     subscription: a live update holds what it names, a retraction makes
 *     it fetch (the entry falls back), an expired update leaves an entry
 *     empty, parley_state_expire() drops what has expired, filters select
 *     entries;
 *   - a table fed only by a subscriber that starts with the snapshot
 *     (PARLEY_START_LAST) reflects everything up to its CAUGHT_UP, also
 *     when the newest records hold no entry (a retraction last);
 *   - a fetch that fails leaves the table as it was and stale, and the
 *     next call fetches again;
 *   - a client that does not ask for entries (libparley before 1.2) is refused
 *     bad_request, saying why and counted, when the deliveries alone would
 *     show it a wrong state, and answered otherwise.
 */
#include "harness.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT 10000
#define S_NEG "gaza-ceasefire"

typedef struct {
    ph_world_t w;
    parley_pub_t *pub;
    bool test_ok;
} s_fx_t;

static int
s_setup(void **state)
{
    s_fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(ph_world_start(&f->w, 0x19,
                                     "rate_limit 0\nheartbeat_interval 100\n"),
                     0);
    f->pub = ph_pub_new(f->w.daemon.api, f->w.key.key, NULL, S_TIMEOUT);
    assert_non_null(f->pub);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *f = *state;
    parley_pub_destroy(&f->pub);
    ph_world_end(&f->w, f->test_ok);
    free(f);
    return 0;
}

/* Publish an update of kind naming parties (comma list) at phase, with
 * references refs[0..n); expires_at as given (0: never). Its seq. */
static uint64_t
s_pub(s_fx_t *f, parley_kind_t kind, const char *parties, uint32_t phase,
      parley_status_t status, const uint64_t *refs, size_t n,
      int64_t expires_at)
{
    parley_update_t u;
    char list[128];
    ph_update_init(&u, S_NEG, "x", phase, "headline");
    u.n_parties = 0;
    snprintf(list, sizeof(list), "%s", parties);
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        snprintf(u.parties[u.n_parties++], sizeof(u.parties[0]), "%s", p);
    u.kind = kind;
    u.status = status;
    for (size_t i = 0; i < n; i++)
        u.references[u.n_references++] = refs[i];
    if (expires_at != 0) {
        if (expires_at < u.issued_at)
            u.issued_at = expires_at - 1000;
        u.expires_at = expires_at;
    }
    uint64_t seq = 0;
    int rc = ph_publish(f->pub, &u, &seq, NULL);
    if (rc != 0)
        fail_msg("publish: %s (%s)", parley_error_name(rc),
                 parley_pub_detail(f->pub));
    return seq;
}

static uint64_t
s_up(s_fx_t *f, const char *parties, uint32_t phase)
{
    return s_pub(f, PARLEY_KIND_UPDATE, parties, phase,
                 PARLEY_STATUS_PROPOSED, NULL, 0, 0);
}

static uint64_t
s_retract(s_fx_t *f, uint64_t seq)
{
    return s_pub(f, PARLEY_KIND_RETRACTION, "us", 1, PARLEY_STATUS_PROPOSED,
                 &seq, 1, 0);
}

/* The table as "party/phase=seq " words, in its order. */
static const char *
s_table(const parley_state_t *st)
{
    static char buf[1024];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < parley_state_count(st); i++) {
        const char *neg, *party;
        uint32_t phase;
        const parley_delivery_t *d =
            parley_state_entry(st, i, &neg, &party, &phase);
        assert_non_null(d);
        assert_string_equal(neg, S_NEG);
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s/%u=%llu ",
                                 party, (unsigned)phase,
                                 (unsigned long long)parley_delivery_seq(d));
    }
    assert_null(parley_state_entry(st, parley_state_count(st), NULL, NULL,
                                   NULL));
    return buf;
}

/* The entries of a one-shot snapshot, as s_table() words. */
static const char *
s_snapshot(s_fx_t *f)
{
    static char buf[1024];
    parley_call_options_t o = ph_call_options(f->w.daemon.api, S_TIMEOUT);
    parley_query_t *q = NULL;
    assert_int_equal(parley_snapshot(&o, &q), 0);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < parley_query_entry_count(q); i++) {
        const char *neg, *party;
        uint32_t phase;
        uint64_t seq;
        assert_int_equal(parley_query_entry(q, i, &neg, &party, &phase, &seq),
                         0);
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s/%u=%llu ",
                                 party, (unsigned)phase,
                                 (unsigned long long)seq);
    }
    assert_int_equal(parley_query_entry(q, parley_query_entry_count(q), NULL,
                                        NULL, NULL, NULL),
                     PARLEY_EARG);
    parley_query_destroy(&q);
    return buf;
}

/* Feed st the events of sub until it reflects seq. */
static void
s_follow(parley_state_t *st, parley_sub_t *sub, uint64_t seq)
{
    for (int i = 0; i < 200 && parley_state_seq(st) < seq; i++) {
        const parley_event_t *ev;
        int rc = parley_sub_next(sub, 100, &ev);
        if (rc == 1)
            assert_true(parley_state_apply(st, ev) >= 0);
        else
            assert_true(rc == 0 || rc == PARLEY_ETIMEOUT);
    }
    if (parley_state_seq(st) < seq)
        fail_msg("the table reflects seq %llu, not %llu",
                 (unsigned long long)parley_state_seq(st),
                 (unsigned long long)seq);
}

/* U1, U2, U2 retracted: the entries say who holds what. */
static void
test_snapshot_entries(void **state)
{
    s_fx_t *f = *state;
    uint64_t u1 = s_up(f, "israel,hamas", 1);
    uint64_t u2 = s_pub(f, PARLEY_KIND_UPDATE, "israel", 1,
                        PARLEY_STATUS_AGREED_IN_PRINCIPLE, NULL, 0, 0);
    char want[128];
    snprintf(want, sizeof(want), "hamas/1=%llu israel/1=%llu ",
             (unsigned long long)u1, (unsigned long long)u2);
    assert_string_equal(s_snapshot(f), want);

    /* Each delivery event carries the entries it holds. */
    parley_call_options_t o = ph_call_options(f->w.daemon.api, S_TIMEOUT);
    parley_query_t *q = NULL;
    const parley_event_t *ev;
    assert_int_equal(parley_snapshot(&o, &q), 0);
    assert_int_equal(parley_query_next(q, &ev), 1);
    assert_int_equal(parley_event_seq(ev), u1);
    assert_int_equal(parley_event_entry_count(ev), 1);
    const char *neg, *party;
    uint32_t phase;
    assert_int_equal(parley_event_entry(ev, 0, &neg, &party, &phase), 0);
    assert_string_equal(neg, S_NEG);
    assert_string_equal(party, "hamas");
    assert_int_equal(phase, 1);
    assert_int_equal(parley_event_entry(ev, 1, NULL, NULL, NULL), PARLEY_EARG);
    assert_int_equal(parley_query_next(q, &ev), 1);
    assert_int_equal(parley_event_seq(ev), u2);
    assert_int_equal(parley_event_entry_count(ev), 1);
    assert_int_equal(parley_query_next(q, &ev), 0);
    parley_query_destroy(&q);

    /* The retraction of U2: israel goes back to U1. */
    s_retract(f, u2);
    snprintf(want, sizeof(want), "hamas/1=%llu israel/1=%llu ",
             (unsigned long long)u1, (unsigned long long)u1);
    assert_string_equal(s_snapshot(f), want);
    assert_int_equal(parley_snapshot(&o, &q), 0);
    assert_int_equal(parley_query_next(q, &ev), 1);
    assert_int_equal(parley_event_entry_count(ev), 2);
    assert_int_equal(parley_query_next(q, &ev), 0);
    parley_query_destroy(&q);
    f->test_ok = true;
}

/* A fetched table kept current by a live subscription. */
static void
test_table_live(void **state)
{
    s_fx_t *f = *state;
    uint64_t u1 = s_up(f, "israel,hamas", 1);
    uint64_t u2 = s_up(f, "israel", 1);
    /* Subscribe first, then fetch: nothing in between is missed. */
    parley_sub_t *sub = ph_sub_new(f->w.daemon.api, NULL, NULL);
    assert_non_null(sub);
    parley_call_options_t o = ph_call_options(f->w.daemon.api, S_TIMEOUT);
    parley_state_t *st = parley_state_new(&o);
    assert_non_null(st);
    assert_int_equal(parley_state_count(st), 0);
    assert_int_equal(parley_state_fetch(st), 0);
    assert_int_equal(parley_state_seq(st), u2);
    assert_false(parley_state_stale(st));
    char want[160];
    snprintf(want, sizeof(want), "hamas/1=%llu israel/1=%llu ",
             (unsigned long long)u1, (unsigned long long)u2);
    assert_string_equal(s_table(st), want);

    /* A filtered table of hamas, fed by the same events. */
    parley_filter_t *fh = parley_filter_new();
    assert_int_equal(parley_filter_add_party(fh, "hamas"), 0);
    const parley_filter_t *fs[] = { fh };
    o.filters = fs;
    o.n_filters = 1;
    parley_state_t *hamas = parley_state_new(&o);
    assert_non_null(hamas);
    parley_filter_destroy(&fh); /* the table keeps a copy */
    assert_int_equal(parley_state_fetch(hamas), 0);
    snprintf(want, sizeof(want), "hamas/1=%llu ", (unsigned long long)u1);
    assert_string_equal(s_table(hamas), want);

    /* Retracting U2: the table fetches again, and israel falls back. */
    uint64_t r = s_retract(f, u2);
    s_follow(st, sub, r);
    snprintf(want, sizeof(want), "hamas/1=%llu israel/1=%llu ",
             (unsigned long long)u1, (unsigned long long)u1);
    assert_string_equal(s_table(st), want);
    const parley_delivery_t *d = parley_state_entry(st, 1, NULL, NULL, NULL);
    assert_int_equal(parley_update_status(parley_delivery_update(d)),
                     PARLEY_STATUS_PROPOSED);

    /* A live update holds what it names, and what the filters want;
     * one that has expired holds nothing, and nothing comes back. */
    parley_sub_t *sub2 = ph_sub_new(f->w.daemon.api, NULL, NULL);
    assert_non_null(sub2);
    uint64_t u3 = s_up(f, "israel,hamas,egypt", 2);
    uint64_t u4 = s_pub(f, PARLEY_KIND_UPDATE, "israel", 1,
                        PARLEY_STATUS_SIGNED, NULL, 0,
                        parley_now_ms() - 1000);
    s_follow(st, sub, u4);
    snprintf(want, sizeof(want),
             "hamas/1=%llu egypt/2=%llu hamas/2=%llu israel/2=%llu ",
             (unsigned long long)u1, (unsigned long long)u3,
             (unsigned long long)u3, (unsigned long long)u3);
    assert_string_equal(s_table(st), want);
    assert_string_equal(s_snapshot(f), want);
    s_follow(hamas, sub2, u4);
    snprintf(want, sizeof(want), "hamas/1=%llu hamas/2=%llu ",
             (unsigned long long)u1, (unsigned long long)u3);
    assert_string_equal(s_table(hamas), want);

    /* Expiry as time passes: an update that expires in a minute. */
    uint64_t u5 = s_pub(f, PARLEY_KIND_UPDATE, "qatar", 3,
                        PARLEY_STATUS_STALLED, NULL, 0,
                        parley_now_ms() + 60000);
    s_follow(st, sub, u5);
    assert_int_equal(parley_state_count(st), 5);
    assert_int_equal(parley_state_expire(st, parley_now_ms()), 0);
    assert_int_equal(parley_state_expire(st, parley_now_ms() + 120000), 1);
    assert_int_equal(parley_state_count(st), 4);
    assert_int_equal(parley_state_rejected(st), 0);

    parley_state_destroy(&hamas);
    parley_state_destroy(&st);
    assert_null(st);
    parley_state_destroy(&st); /* accepts NULL */
    parley_sub_destroy(&sub2);
    parley_sub_destroy(&sub);
    f->test_ok = true;
}

/* A table fed only by a LAST subscriber, whose newest records hold no
 * entry: it reflects the head once the subscriber has caught up. */
static void
test_table_from_last(void **state)
{
    s_fx_t *f = *state;
    uint64_t u1 = s_up(f, "israel,hamas", 1);
    uint64_t u2 = s_up(f, "israel", 1);
    uint64_t r = s_retract(f, u2);
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.start = PARLEY_START_LAST;
    parley_sub_t *sub = ph_sub_new(f->w.daemon.api, NULL, &so);
    assert_non_null(sub);
    parley_call_options_t o = ph_call_options(f->w.daemon.api, S_TIMEOUT);
    parley_state_t *st = parley_state_new(&o);
    assert_non_null(st);
    s_follow(st, sub, r);
    char want[128];
    snprintf(want, sizeof(want), "hamas/1=%llu israel/1=%llu ",
             (unsigned long long)u1, (unsigned long long)u1);
    assert_string_equal(s_table(st), want);
    /* Then live. */
    uint64_t u3 = s_up(f, "hamas", 1);
    s_follow(st, sub, u3);
    snprintf(want, sizeof(want), "hamas/1=%llu israel/1=%llu ",
             (unsigned long long)u3, (unsigned long long)u1);
    assert_string_equal(s_table(st), want);
    parley_state_destroy(&st);
    parley_sub_destroy(&sub);
    f->test_ok = true;
}

/* A failed fetch keeps the table and marks it stale; the next call
 * fetches again. */
static void
test_table_stale(void **state)
{
    s_fx_t *f = *state;
    uint64_t u1 = s_up(f, "egypt", 0);
    parley_call_options_t o = ph_call_options(f->w.daemon.api, 300);
    parley_state_t *st = parley_state_new(&o);
    assert_non_null(st);
    assert_int_equal(parley_state_fetch(st), 0);
    assert_int_equal(ph_daemon_stop(&f->w.daemon), 0);
    assert_int_equal(parley_state_fetch(st), PARLEY_ETIMEOUT);
    assert_true(parley_state_stale(st));
    assert_int_equal(parley_state_count(st), 1);
    assert_int_equal(ph_world_restart(&f->w), 0);
    uint64_t u2 = s_up(f, "egypt", 0);
    /* Any event: the stale table fetches first, then applies it. */
    parley_sub_t *sub = ph_sub_new(f->w.daemon.api, NULL, NULL);
    assert_non_null(sub);
    const parley_event_t *ev = ph_sub_expect(sub, PARLEY_EVENT_CAUGHT_UP,
                                             true, S_TIMEOUT, "caught up");
    assert_int_equal(parley_state_apply(st, ev), 0);
    assert_false(parley_state_stale(st));
    assert_int_equal(parley_state_seq(st), u2);
    char want[64];
    snprintf(want, sizeof(want), "egypt/0=%llu ", (unsigned long long)u2);
    assert_string_equal(s_table(st), want);
    assert_true(u2 > u1);
    assert_int_equal(parley_state_apply(NULL, ev), PARLEY_EARG);
    assert_int_equal(parley_state_apply(st, NULL), PARLEY_EARG);
    assert_int_equal(parley_state_fetch(NULL), PARLEY_EARG);
    parley_state_destroy(&st);
    parley_sub_destroy(&sub);

    /* Options it cannot take. */
    o.timeout_ms = -2;
    errno = 0;
    assert_null(parley_state_new(&o));
    assert_int_equal(errno, -PARLEY_EARG);
    f->test_ok = true;
}

/*
 * A client that does not read entries: answered while the deliveries say
 * the state right, refused bad_request (counted) when one names an entry
 * whose newer update has expired.
 */
static void
test_old_client(void **state)
{
    s_fx_t *f = *state;
    s_up(f, "israel,hamas", 1);
    ph_api_t api = { 0 };
    assert_int_equal(ph_api_open(&api, f->w.daemon.api), 0);
    parley__request_t req = { .request_id = 7, .op = PARLEY__OP_SNAPSHOT };
    uint8_t buf[1024];
    size_t len;
    assert_int_equal(parley__request_encode(&req, buf, sizeof(buf), &len), 0);
    const void *frames[] = { buf };
    parley__reply_t r;
    assert_int_equal(ph_api_send_frames(&api, frames, &len, 1), 0);
    assert_int_equal(ph_api_recv(&api, S_TIMEOUT, &r), 0);
    assert_int_equal(r.type, PARLEY__REPLY_SNAPSHOT);
    assert_int_equal(r.n_deliveries, 1);
    assert_int_equal(r.n_entries, 0);

    /* hamas again, already expired: hamas has no state, but the update
     * before names it. */
    s_pub(f, PARLEY_KIND_UPDATE, "hamas", 1, PARLEY_STATUS_STALLED, NULL, 0,
          parley_now_ms() - 1000);
    ph_stats_t before, after;
    assert_int_equal(ph_stats_fetch(f->w.daemon.api, &before), 0);
    assert_int_equal(ph_api_send_frames(&api, frames, &len, 1), 0);
    assert_int_equal(ph_api_recv(&api, S_TIMEOUT, &r), 0);
    assert_int_equal(r.type, PARLEY__REPLY_REJECT);
    assert_int_equal(r.code, PARLEY_EBADREQUEST);
    assert_non_null(strstr(r.message, "entries"));
    assert_int_equal(ph_stats_fetch(f->w.daemon.api, &after), 0);
    const char *const expect[] = { "rejected_bad_request=1", NULL };
    assert_int_equal(ph_stats_expect(&before, &after, expect), 0);
    /* The same request with entries is answered. */
    req.entries = true;
    assert_int_equal(parley__request_encode(&req, buf, sizeof(buf), &len), 0);
    assert_int_equal(ph_api_send_frames(&api, frames, &len, 1), 0);
    assert_int_equal(ph_api_recv(&api, S_TIMEOUT, &r), 0);
    assert_int_equal(r.type, PARLEY__REPLY_SNAPSHOT);
    assert_int_equal(r.n_entries, 1);
    assert_string_equal(r.entries[0].party, "israel");
    ph_api_close(&api);
    f->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_entries, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_table_live, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_table_from_last, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_table_stale, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_old_client, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
