/*
 * test_filtering.c - subscribers get exactly the updates their filter asks
 * for (the acceptance test).
 *
 * parleyd starts empty; library subscribers start live before anything
 * is published: --party hamas, --phase 2, --negotiation gaza-ceasefire
 * --party egypt, no filter, and --party israel --party egypt --phase 0
 * --phase 2 (filtered partly in the library, with repeats across
 * topics). A `parley sub --party hamas -C N -F %s` runs live alongside
 * them. Then the demo feed
 * (examples/ceasefire.jsonl) is published line by line, followed by an
 * update naming two parties and a closing update that every filter
 * matches. Each subscriber must receive
 * exactly the expected seqs, each once, ascending, with the content that
 * was published; the expected sets are computed from the .jsonl itself
 * (cross-checked against examples/ceasefire.expected), and must be
 * non-empty and distinct, so the test can fail. A second `parley sub`
 * with --since 1 checks the same through replay.
 */
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define S_LINES_MAX 64
#define S_TIMEOUT 10000

/* What the test needs to know about one published update. */
typedef struct s_line {
    char json[2048]; /* the line as published */
    char negotiation[PARLEY_SLUG_MAX + 1];
    char parties[PARLEY_PARTIES_MAX][PARLEY_SLUG_MAX + 1];
    size_t n_parties;
    uint32_t phase;
    char headline[PARLEY_HEADLINE_MAX + 1];
    uint64_t seq; /* seq parleyd acked it with */
} s_line_t;

/* A subscriber's filter, in a form both the library and the test read. */
typedef struct s_filter {
    const char *name;
    const char *negotiations[2];
    size_t n_negotiations;
    const char *parties[2];
    size_t n_parties;
    uint32_t phases[2];
    size_t n_phases;
} s_filter_t;

static const s_filter_t s_filters[] = {
    { "--party hamas", { NULL }, 0, { "hamas" }, 1, { 0 }, 0 },
    { "--phase 2", { NULL }, 0, { NULL }, 0, { 2 }, 1 },
    { "--negotiation gaza-ceasefire --party egypt",
      { "gaza-ceasefire" },
      1,
      { "egypt" },
      1,
      { 0 },
      0 },
    { "no filter", { NULL }, 0, { NULL }, 0, { 0 }, 0 },
    /*
     * Two values in each dimension: the library subscribes to the party
     * topics and must drop the phase 1 and 3 updates itself, and an update
     * naming both parties arrives on two topics but must be handed over
     * once.
     */
    { "--party israel --party egypt --phase 0 --phase 2",
      { NULL },
      0,
      { "israel", "egypt" },
      2,
      { 0, 2 },
      2 },
};
#define S_NFILTERS (sizeof(s_filters) / sizeof(s_filters[0]))

typedef struct s_state {
    char dir[PH_PATH_MAX];
    char keyring[PH_PATH_MAX];
    ph_key_t key;
    ph_daemon_t daemon;
    s_line_t lines[S_LINES_MAX];
    size_t n_lines;
    ph_proc_t cli; /* a `parley sub` run by the test */
    bool test_ok;
} s_state_t;

/* ------------------------------------------------------------ helpers */

/* Does the update of line l match filter f? (The rule of parley.h.) */
static bool
s_match(const s_filter_t *f, const s_line_t *l)
{
    bool neg = f->n_negotiations == 0, party = f->n_parties == 0,
         phase = f->n_phases == 0;
    for (size_t i = 0; i < f->n_negotiations; i++)
        neg |= strcmp(f->negotiations[i], l->negotiation) == 0;
    for (size_t i = 0; i < f->n_parties; i++)
        for (size_t j = 0; j < l->n_parties; j++)
            party |= strcmp(f->parties[i], l->parties[j]) == 0;
    for (size_t i = 0; i < f->n_phases; i++)
        phase |= f->phases[i] == l->phase;
    return neg && party && phase;
}

/* Expected seqs of filter f, ascending. Returns the count. */
static size_t
s_expected(const s_state_t *st, const s_filter_t *f, uint64_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_lines; i++)
        if (s_match(f, &st->lines[i]))
            out[n++] = st->lines[i].seq;
    return n;
}

static parley_filter_t
s_to_filter(const s_filter_t *f)
{
    parley_filter_t pf = { 0 };
    pf.negotiations = f->negotiations;
    pf.n_negotiations = f->n_negotiations;
    pf.parties = f->parties;
    pf.n_parties = f->n_parties;
    pf.phases = f->phases;
    pf.n_phases = f->n_phases;
    return pf;
}

/*
 * Parse one demo line with jansson, independently of the library's JSON
 * reader, so a bug there cannot hide by also shaping the expectation.
 */
static void
s_parse_line(s_line_t *l, const char *text, size_t lineno)
{
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    if (o == NULL)
        fail_msg("ceasefire.jsonl line %zu: %s", lineno, jerr.text);
    const char *neg = json_string_value(json_object_get(o, "negotiation"));
    const char *head = json_string_value(json_object_get(o, "headline"));
    json_t *parties = json_object_get(o, "parties");
    json_t *phase = json_object_get(o, "phase");
    if (neg == NULL || head == NULL || !json_is_array(parties)
        || json_array_size(parties) == 0
        || json_array_size(parties) > PARLEY_PARTIES_MAX)
        fail_msg("ceasefire.jsonl line %zu lacks negotiation/headline/parties",
                 lineno);
    snprintf(l->json, sizeof(l->json), "%s", text);
    snprintf(l->negotiation, sizeof(l->negotiation), "%s", neg);
    snprintf(l->headline, sizeof(l->headline), "%s", head);
    l->n_parties = json_array_size(parties);
    for (size_t i = 0; i < l->n_parties; i++) {
        const char *p = json_string_value(json_array_get(parties, i));
        assert_non_null(p);
        snprintf(l->parties[i], sizeof(l->parties[i]), "%s", p);
    }
    l->phase = json_is_integer(phase) ? (uint32_t)json_integer_value(phase) : 0;
    json_decref(o);
}

/* Read examples/ceasefire.jsonl into st->lines. */
static void
s_load_demo(s_state_t *st)
{
    size_t len = 0;
    char *text =
        ph_file_read(PARLEY_SOURCE_DIR "/examples/ceasefire.jsonl", &len);
    if (text == NULL)
        fail_msg("cannot read examples/ceasefire.jsonl: %s", strerror(errno));
    char *save = NULL;
    size_t lineno = 0;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '\0')
            continue;
        assert_true(st->n_lines < S_LINES_MAX - 2); /* room for two more */
        s_parse_line(&st->lines[st->n_lines++], line, lineno);
    }
    free(text);
    assert_true(st->n_lines >= 4);
}

/*
 * Cross-check examples/ceasefire.expected ("LINE PHASE PARTY,PARTY") with
 * the .jsonl, so the two example files cannot drift apart.
 */
static void
s_check_expected_file(const s_state_t *st)
{
    char *text =
        ph_file_read(PARLEY_SOURCE_DIR "/examples/ceasefire.expected", NULL);
    if (text == NULL)
        fail_msg("cannot read examples/ceasefire.expected: %s",
                 strerror(errno));
    size_t rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        unsigned n, phase;
        char parties[512];
        if (sscanf(line, "%u %u %511s", &n, &phase, parties) != 3)
            fail_msg("ceasefire.expected: cannot read row \"%s\"", line);
        if (n < 1 || n > st->n_lines)
            fail_msg("ceasefire.expected names line %u; the .jsonl has %zu", n,
                     st->n_lines);
        const s_line_t *l = &st->lines[n - 1];
        char joined[512] = "";
        for (size_t i = 0; i < l->n_parties; i++) {
            strcat(joined, i ? "," : "");
            strcat(joined, l->parties[i]);
        }
        if (phase != l->phase || strcmp(parties, joined) != 0)
            fail_msg("ceasefire.expected line %u says phase %u parties %s; the "
                     ".jsonl has phase %u parties %s",
                     n, phase, parties, l->phase, joined);
        rows++;
    }
    free(text);
    if (rows != st->n_lines)
        fail_msg("ceasefire.expected has %zu rows for %zu lines", rows,
                 st->n_lines);
}

/* Parse `-F %s` output: one seq per line. Returns the count. */
static size_t
s_parse_seqs(const char *out, uint64_t *seqs, size_t cap, bool *clean)
{
    size_t n = 0;
    *clean = true;
    const char *p = out;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        char buf[64];
        if (len == 0 || len >= sizeof(buf)) {
            *clean = false;
        } else {
            memcpy(buf, p, len);
            buf[len] = '\0';
            char *end;
            unsigned long long v = strtoull(buf, &end, 10);
            if (*end != '\0' || n == cap)
                *clean = false;
            else
                seqs[n++] = v;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return n;
}

static void
s_assert_seqs(const char *who, const uint64_t *want, size_t nwant,
              const uint64_t *got, size_t ngot)
{
    char a[1024], b[1024];
    bool same = nwant == ngot;
    for (size_t i = 0; same && i < nwant; i++)
        same = want[i] == got[i];
    if (!same)
        fail_msg("%s: expected seqs [%s], got [%s]", who,
                 ph_seqs_format(want, nwant, a, sizeof(a)),
                 ph_seqs_format(got, ngot, b, sizeof(b)));
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
    if (ph_key_make(&st->key, st->dir, "mediators", 0x44) != 0)
        return -1;
    char ring[1024] = "";
    if (ph_keyring_add(ring, sizeof(ring), &st->key, "gaza-ceasefire", "*", "*")
            != 0
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
    ph_proc_free(&st->cli);
    ph_daemon_teardown(&st->daemon, st->test_ok);
    ph_key_free(&st->key);
    ph_tmpdir_remove(st->dir);
    free(st);
    return 0;
}

/* -------------------------------------------------------------- tests */

static void
test_filters_deliver_exactly_their_updates(void **state)
{
    s_state_t *st = *state;
    s_load_demo(st);
    s_check_expected_file(st);

    parley_info_t *info = NULL;
    assert_int_equal(ph_ping_info(st->daemon.api, NULL, S_TIMEOUT, &info), 0);
    assert_string_equal(parley_info_feed(info), st->daemon.feed);
    assert_int_equal(parley_info_seq(info), 0);
    parley_info_destroy(&info);

    /*
     * Two updates follow the demo feed. The first names israel and egypt,
     * so it reaches the last subscriber on two topics and must still come
     * out once. The closing one matches every filter (parties hamas, egypt
     * and israel, phase 2): a subscriber that has it has everything before
     * it, so "nothing else arrived" needs no waiting.
     */
    static const char *const extra[] = {
        "{\"negotiation\":\"gaza-ceasefire\",\"parties\":[\"israel\","
        "\"egypt\"],\"phase\":0,\"status\":\"talks_scheduled\","
        "\"headline\":\"Israeli delegation to join the Cairo talks\"}",
        "{\"negotiation\":\"gaza-ceasefire\",\"parties\":[\"hamas\","
        "\"egypt\",\"israel\"],\"phase\":2,\"status\":"
        "\"agreed_in_principle\",\"headline\":\"closing update of "
        "test_filtering\"}",
    };
    for (size_t i = 0; i < 2; i++) {
        s_parse_line(&st->lines[st->n_lines], extra[i], st->n_lines + 1);
        st->n_lines++;
    }
    s_line_t *closing = &st->lines[st->n_lines - 1];
    for (size_t i = 0; i < S_NFILTERS; i++)
        assert_true(s_match(&s_filters[i], closing));

    /* Give each line a provisional seq (line N = seq N on an empty daemon). */
    for (size_t i = 0; i < st->n_lines; i++)
        st->lines[i].seq = i + 1;
    uint64_t want[S_NFILTERS][S_LINES_MAX];
    size_t nwant[S_NFILTERS];
    for (size_t i = 0; i < S_NFILTERS; i++) {
        nwant[i] = s_expected(st, &s_filters[i], want[i]);
        /* Each filter must select something, and not everything alike. */
        assert_true(nwant[i] > 1);
        for (size_t j = 0; j < i; j++) {
            bool same =
                nwant[i] == nwant[j]
                && memcmp(want[i], want[j], nwant[i] * sizeof(uint64_t)) == 0;
            if (same)
                fail_msg("filters \"%s\" and \"%s\" select the same updates; "
                         "the test would not tell them apart",
                         s_filters[i].name, s_filters[j].name);
        }
    }
    assert_true(nwant[0] < st->n_lines); /* --party hamas is a real filter */
    /* The last filter's phases drop some updates of its party topics. */
    s_filter_t parties_only = s_filters[S_NFILTERS - 1];
    parties_only.n_phases = 0;
    uint64_t tmp[S_LINES_MAX];
    assert_true(s_expected(st, &parties_only, tmp) > nwant[S_NFILTERS - 1]);

    /* A live CLI subscriber for --party hamas. */
    char count[16];
    snprintf(count, sizeof(count), "%zu", nwant[0]);
    const char *cli_argv[] = { PARLEY_BIN, "sub",   "-s", st->daemon.api,
                               "--party",  "hamas", "-C", count,
                               "-F",       "%s",    "-W", "20",
                               NULL };
    ph_proc_t *cli = &st->cli;
    /*
     * A user cannot see when `parley sub` is live; the test waits until it
     * holds its feed connection, the daemon granted its two topics
     * (party/hamas/, sys/heartbeat/; it is the first subscriber) and a
     * heartbeat followed them.
     */
    int rc = ph_sub_spawn_live(cli, &st->daemon, cli_argv, st->dir, 2,
                               S_TIMEOUT);
    if (rc != 0)
        fail_msg("parley sub --party hamas did not become live: %s",
                 strerror(-rc));

    /* The library's subscribers, live when parley_sub_new() returns. */
    parley_sub_t *subs[S_NFILTERS] = { NULL };
    parley_filter_t pf[S_NFILTERS];
    for (size_t i = 0; i < S_NFILTERS; i++) {
        parley_sub_options_t opt = { 0 };
        opt.start = PARLEY_START_LIVE;
        pf[i] = s_to_filter(&s_filters[i]);
        subs[i] = ph_sub_new(st->daemon.api, &pf[i], &opt);
        if (subs[i] == NULL)
            fail_msg("parley_sub_new(%s): %s", s_filters[i].name,
                     parley_error_name(-errno));
    }

    /* Publish the demo feed, then the closing update. */
    parley_pub_t *pub = ph_pub_new(st->daemon.api, st->key.key, NULL, 0);
    if (pub == NULL)
        fail_msg("parley_pub_new: %s", parley_error_name(-errno));
    for (size_t i = 0; i < st->n_lines; i++) {
        parley_update_t u;
        char err[256] = "";
        memset(&u, 0, sizeof(u));
        rc = parley_update_from_json(st->lines[i].json, &u, err, sizeof(err));
        if (rc != 0)
            fail_msg("parley_update_from_json line %zu: %s (%s)", i + 1,
                     parley_error_name(rc), err);
        uint64_t seq = 0;
        int dup = -1;
        rc = ph_publish(pub, &u, &seq, &dup);
        if (rc != 0)
            fail_msg("publishing line %zu: %s", i + 1, parley_error_name(rc));
        assert_int_equal(dup, 0);
        if (seq != i + 1)
            fail_msg("line %zu acked with seq %" PRIu64 " on an empty daemon, "
                     "expected %zu",
                     i + 1, seq, i + 1);
        st->lines[i].seq = seq;
    }
    parley_pub_destroy(&pub);
    uint64_t closing_seq = closing->seq;

    /* Each library subscriber: exactly its set, once, ascending. */
    for (size_t i = 0; i < S_NFILTERS; i++) {
        ph_events_t ev = { 0 };
        ph_sub_collect(subs[i], &ev, S_LINES_MAX * 2, closing_seq, S_TIMEOUT);
        uint64_t got[S_LINES_MAX * 2];
        size_t ngot = 0;
        for (size_t k = 0; k < ev.n && ngot < S_LINES_MAX * 2; k++)
            got[ngot++] = ev.d[k].seq;
        char who[128];
        snprintf(who, sizeof(who), "library subscriber %s", s_filters[i].name);
        s_assert_seqs(who, want[i], nwant[i], got, ngot);
        if (ev.n_gaps != 0 || ev.n_rejected != 0)
            fail_msg("%s: %zu gap and %zu rejected events on a healthy feed",
                     who, ev.n_gaps, ev.n_rejected);
        /* And the content is what was published. */
        for (size_t k = 0; k < ev.n; k++) {
            const parley_delivery_t *d = &ev.d[k];
            const s_line_t *l = &st->lines[d->seq - 1];
            assert_string_equal(d->update.headline, l->headline);
            assert_string_equal(d->update.negotiation, l->negotiation);
            assert_int_equal(d->update.phase, l->phase);
            assert_int_equal(d->update.n_parties, l->n_parties);
            assert_memory_equal(d->signer, st->key.pk, PARLEY_PUBLICKEY_BYTES);
        }
        ph_events_free(&ev);
        /* Nothing more comes (a repeat of the closing update, say). */
        parley_event_t *e = malloc(sizeof(*e));
        assert_non_null(e);
        rc = ph_sub_next(subs[i], 200, e);
        if (rc == 1 && e->type == PARLEY_EVENT_DELIVERY)
            fail_msg("%s: extra delivery seq %" PRIu64 " after the closing "
                     "update",
                     who, e->delivery.seq);
        free(e);
        parley_sub_destroy(&subs[i]);
        assert_null(subs[i]);
    }

    /* The live CLI subscriber prints the --party hamas seqs. */
    assert_int_equal(ph_proc_wait(cli, S_TIMEOUT * 3), 0);
    if (cli->status != 0 || cli->timed_out)
        ph_proc_report(cli, "parley sub --party hamas (live)");
    assert_false(cli->timed_out);
    assert_int_equal(cli->status, 0);
    uint64_t got[S_LINES_MAX];
    bool clean;
    size_t ngot = s_parse_seqs(cli->out, got, S_LINES_MAX, &clean);
    if (!clean)
        ph_proc_report(cli, "parley sub --party hamas (live)");
    assert_true(clean);
    s_assert_seqs("parley sub --party hamas -C N -F %s (live)", want[0],
                  nwant[0], got, ngot);
    ph_proc_free(cli);

    /* The same through replay: --phase 2 --since 1. */
    snprintf(count, sizeof(count), "%zu", nwant[1]);
    const char *since_argv[] = { PARLEY_BIN, "sub", "-s",      st->daemon.api,
                                 "--phase",  "2",   "--since", "1",
                                 "-C",       count, "-F",      "%s",
                                 "-W",       "30",  NULL };
    assert_int_equal(ph_run(cli, since_argv, NULL, st->dir, NULL, 40000), 0);
    ngot = s_parse_seqs(cli->out, got, S_LINES_MAX, &clean);
    if (cli->status != 0 || !clean)
        ph_proc_report(cli, "parley sub --phase 2 --since 1");
    assert_int_equal(cli->status, 0);
    assert_true(clean);
    s_assert_seqs("parley sub --phase 2 --since 1 -C N -F %s", want[1],
                  nwant[1], got, ngot);
    ph_proc_free(cli);

    /* And the daemon stops cleanly. */
    int status = ph_daemon_stop(&st->daemon);
    if (status != 0)
        fail_msg("parleyd exit status after SIGTERM: %d (expected 0)", status);
    st->test_ok = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_filters_deliver_exactly_their_updates, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
