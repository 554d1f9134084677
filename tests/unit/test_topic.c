/*
 * test_topic.c - feed topics of an update, subscriptions of a filter, and
 * filter matching.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "facts.h"
#include "parley.h"
#include "types.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void
s_update(parley_update_t *u, const char *neg, const char *const *parties,
         size_t n, uint32_t phase)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->negotiation, sizeof(u->negotiation), "%s", neg);
    for (size_t i = 0; i < n; i++)
        snprintf(u->parties[i], sizeof(u->parties[i]), "%s", parties[i]);
    u->n_parties = n;
    u->phase = phase;
    u->status = PARLEY_STATUS_PROPOSED;
    strcpy(u->headline, "h");
    u->issued_at = 1;
    u->signer_seq = 1;
}

/* ZeroMQ's subscription test: does subscription sub receive topic? */
static int
s_prefix(const char *sub, const char *topic)
{
    return strncmp(sub, topic, strlen(sub)) == 0;
}

/* --------------------------------------------------------------- topics */

static void
test_topics_order_and_content(void **state)
{
    (void)state;
    static const char *const parties[] = { "israel", "hamas", "us", "egypt",
                                           "qatar" };
    parley_update_t u;
    char out[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    s_update(&u, "gaza-ceasefire", parties, 5, 2);
    memset(out, 'Z', sizeof(out));
    size_t n = parley_topics(&u, out, PARLEY_TOPICS_MAX);
    static const char *const expect[] = {
        "all/",      "neg/gaza-ceasefire/", "party/israel/", "party/hamas/",
        "party/us/", "party/egypt/",        "party/qatar/",  "phase/2/",
    };
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(out[i], expect[i]);

    /* one party, phase 0 */
    s_update(&u, "sudan", parties + 2, 1, 0);
    n = parley_topics(&u, out, PARLEY_TOPICS_MAX);
    assert_int_equal(n, 4);
    assert_string_equal(out[0], "all/");
    assert_string_equal(out[1], "neg/sudan/");
    assert_string_equal(out[2], "party/us/");
    assert_string_equal(out[3], "phase/0/");

    /* A small cap: the count of them all, only cap written. */
    s_update(&u, "gaza-ceasefire", parties, 5, 2);
    memset(out, 'Z', sizeof(out));
    assert_int_equal(parley_topics(&u, out, 3), 8);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(out[i], expect[i]);
    assert_int_equal(out[3][0], 'Z');
    assert_int_equal(parley_topics(&u, NULL, 0), 8);
}

/* The largest update's topics fit: 16 parties, 32-byte slugs, phase 255. */
static void
test_topics_largest(void **state)
{
    (void)state;
    parley_update_t u;
    char out[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    s_update(&u, "", NULL, 0, 255);
    memset(u.negotiation, 'n', 32);
    u.negotiation[32] = '\0';
    u.n_parties = PARLEY_PARTIES_MAX;
    for (size_t i = 0; i < PARLEY_PARTIES_MAX; i++) {
        memset(u.parties[i], 'p', 32);
        u.parties[i][30] = (char)('a' + i);
        u.parties[i][32] = '\0';
    }
    assert_int_equal(parley_update_validate(&u, NULL, 0), 0);
    size_t n = parley_topics(&u, out, PARLEY_TOPICS_MAX);
    assert_int_equal(n, PARLEY_TOPICS_MAX);
    char want[PARLEY_TOPIC_MAX];
    snprintf(want, sizeof(want), "neg/%s/", u.negotiation);
    assert_string_equal(out[1], want);
    for (size_t i = 0; i < PARLEY_PARTIES_MAX; i++) {
        snprintf(want, sizeof(want), "party/%s/", u.parties[i]);
        assert_string_equal(out[2 + i], want);
    }
    assert_string_equal(out[PARLEY_TOPICS_MAX - 1], "phase/255/");
}

/* "party/us/" must not receive "party/usa/" (and so on). */
static void
test_topics_prefix_exact(void **state)
{
    (void)state;
    static const char *const usa[] = { "usa" };
    static const char *const us[] = { "us" };
    parley_update_t u;
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    char subs[4][PARLEY_TOPIC_MAX];
    parley_filter_t f = { .parties = us, .n_parties = 1 };

    s_update(&u, "gaza-ceasefire-2", usa, 1, 12);
    size_t n = parley_topics(&u, topics, PARLEY_TOPICS_MAX);
    assert_int_equal(parley_filter_topics(&f, subs, 4), 1);
    assert_string_equal(subs[0], "party/us/");
    for (size_t i = 0; i < n; i++)
        if (s_prefix(subs[0], topics[i]))
            fail_msg("\"%s\" receives \"%s\"", subs[0], topics[i]);

    /* negotiation and phase prefixes, too */
    static const char *const negs[] = { "gaza-ceasefire" };
    static const uint32_t one[] = { 1 };
    f = (parley_filter_t){ .negotiations = negs, .n_negotiations = 1 };
    assert_int_equal(parley_filter_topics(&f, subs, 4), 1);
    for (size_t i = 0; i < n; i++)
        assert_false(s_prefix(subs[0], topics[i]));
    f = (parley_filter_t){ .phases = one, .n_phases = 1 };
    assert_int_equal(parley_filter_topics(&f, subs, 4), 1);
    assert_string_equal(subs[0], "phase/1/");
    for (size_t i = 0; i < n; i++)
        assert_false(s_prefix(subs[0], topics[i])); /* phase 12 */

    /* and the exact value is received */
    s_update(&u, "gaza-ceasefire", us, 1, 1);
    n = parley_topics(&u, topics, PARLEY_TOPICS_MAX);
    int hits = 0;
    for (size_t i = 0; i < n; i++)
        hits += s_prefix(subs[0], topics[i]);
    assert_int_equal(hits, 1);
}

/* ------------------------------------------------------- filter topics */

static void
test_filter_topics_dimension(void **state)
{
    (void)state;
    static const char *const negs1[] = { "gaza-ceasefire" };
    static const char *const negs2[] = { "gaza-ceasefire", "sudan" };
    static const char *const negs3[] = { "a", "b", "c" };
    static const char *const parties1[] = { "us" };
    static const char *const parties2[] = { "us", "egypt" };
    static const char *const parties3[] = { "us", "egypt", "qatar" };
    static const uint32_t phases1[] = { 1 };
    static const uint32_t phases2[] = { 1, 2 };
    char out[8][PARLEY_TOPIC_MAX];
    parley_filter_t f;

    /* empty filter: everything */
    f = (parley_filter_t){ 0 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 1);
    assert_string_equal(out[0], "all/");

    /* a single dimension */
    f = (parley_filter_t){ .parties = parties2, .n_parties = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 2);
    assert_string_equal(out[0], "party/us/");
    assert_string_equal(out[1], "party/egypt/");
    f = (parley_filter_t){ .phases = phases2, .n_phases = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 2);
    assert_string_equal(out[0], "phase/1/");
    assert_string_equal(out[1], "phase/2/");
    f = (parley_filter_t){ .negotiations = negs2, .n_negotiations = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 2);
    assert_string_equal(out[0], "neg/gaza-ceasefire/");
    assert_string_equal(out[1], "neg/sudan/");

    /* the fewest values win */
    f = (parley_filter_t){ .negotiations = negs1,
                           .n_negotiations = 1,
                           .parties = parties3,
                           .n_parties = 3,
                           .phases = phases2,
                           .n_phases = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 1);
    assert_string_equal(out[0], "neg/gaza-ceasefire/");
    f = (parley_filter_t){ .negotiations = negs3,
                           .n_negotiations = 3,
                           .parties = parties3,
                           .n_parties = 3,
                           .phases = phases2,
                           .n_phases = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 2);
    assert_string_equal(out[0], "phase/1/");
    f = (parley_filter_t){ .negotiations = negs3,
                           .n_negotiations = 3,
                           .parties = parties1,
                           .n_parties = 1,
                           .phases = phases2,
                           .n_phases = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 1);
    assert_string_equal(out[0], "party/us/");

    /* ties: parties, then phases, then negotiations */
    f = (parley_filter_t){ .negotiations = negs2,
                           .n_negotiations = 2,
                           .parties = parties2,
                           .n_parties = 2,
                           .phases = phases2,
                           .n_phases = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 2);
    assert_string_equal(out[0], "party/us/");
    assert_string_equal(out[1], "party/egypt/");
    f = (parley_filter_t){ .negotiations = negs2,
                           .n_negotiations = 2,
                           .phases = phases2,
                           .n_phases = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 2);
    assert_string_equal(out[0], "phase/1/");
    f = (parley_filter_t){ .negotiations = negs1,
                           .n_negotiations = 1,
                           .parties = parties1,
                           .n_parties = 1 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 1);
    assert_string_equal(out[0], "party/us/");
    f = (parley_filter_t){
        .parties = parties1, .n_parties = 1, .phases = phases1, .n_phases = 1
    };
    assert_int_equal(parley_filter_topics(&f, out, 8), 1);
    assert_string_equal(out[0], "party/us/");
    f = (parley_filter_t){ .negotiations = negs1,
                           .n_negotiations = 1,
                           .phases = phases1,
                           .n_phases = 1 };
    assert_int_equal(parley_filter_topics(&f, out, 8), 1);
    assert_string_equal(out[0], "phase/1/");
}

static void
test_filter_topics_errors(void **state)
{
    (void)state;
    static const char *const bad_slug[] = { "us", "Egypt" };
    static const char *const leading_dash[] = { "-us" };
    static const char *const empty[] = { "" };
    static const char *const long_slug[] = {
        "abcdefghijklmnopqrstuvwxyz0123456"
    };
    static const uint32_t bad_phase[] = { 1, 256 };
    static const char *const three[] = { "a", "b", "c" };
    char out[8][PARLEY_TOPIC_MAX];
    parley_filter_t f;

    f = (parley_filter_t){ .parties = bad_slug, .n_parties = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), PARLEY_EARG);
    f = (parley_filter_t){ .parties = leading_dash, .n_parties = 1 };
    assert_int_equal(parley_filter_topics(&f, out, 8), PARLEY_EARG);
    f = (parley_filter_t){ .negotiations = empty, .n_negotiations = 1 };
    assert_int_equal(parley_filter_topics(&f, out, 8), PARLEY_EARG);
    f = (parley_filter_t){ .negotiations = long_slug, .n_negotiations = 1 };
    assert_int_equal(parley_filter_topics(&f, out, 8), PARLEY_EARG);
    f = (parley_filter_t){ .phases = bad_phase, .n_phases = 2 };
    assert_int_equal(parley_filter_topics(&f, out, 8), PARLEY_EARG);
    /* an invalid value is refused even in a dimension that is not used */
    f = (parley_filter_t){ .negotiations = bad_slug + 1,
                           .n_negotiations = 1,
                           .parties = three,
                           .n_parties = 1 };
    assert_int_equal(parley_filter_topics(&f, out, 8), PARLEY_EARG);
    f = (parley_filter_t){
        .parties = three, .n_parties = 1, .phases = bad_phase, .n_phases = 2
    };
    assert_int_equal(parley_filter_topics(&f, out, 8), PARLEY_EARG);

    /* cap */
    f = (parley_filter_t){ .parties = three, .n_parties = 3 };
    assert_int_equal(parley_filter_topics(&f, out, 3), 3);
    assert_int_equal(parley_filter_topics(&f, out, 2), PARLEY_EARG);
    f = (parley_filter_t){ 0 };
    assert_int_equal(parley_filter_topics(&f, out, 1), 1);
    assert_int_equal(parley_filter_topics(&f, out, 0), PARLEY_EARG);
}

/* --------------------------------------------------------------- match */

static void
test_filter_match_table(void **state)
{
    (void)state;
    static const char *const gaza[] = { "gaza-ceasefire" };
    static const char *const two_negs[] = { "sudan", "gaza-ceasefire" };
    static const char *const other_neg[] = { "sudan" };
    static const char *const us_egypt[] = { "us", "egypt" };
    static const char *const qatar[] = { "qatar" };
    static const char *const usa[] = { "usa" };
    static const uint32_t ph1[] = { 1 };
    static const uint32_t ph02[] = { 0, 2 };
    static const char *const upd_parties[] = { "israel", "egypt" };
    parley_update_t u;
    s_update(&u, "gaza-ceasefire", upd_parties, 2, 1);

    static const struct {
        const char *name;
        parley_filter_t f;
        int match;
    } table[] = {
        { "empty", { 0 }, 1 },
        { "neg hit", { .negotiations = gaza, .n_negotiations = 1 }, 1 },
        { "neg hit (second)",
          { .negotiations = two_negs, .n_negotiations = 2 },
          1 },
        { "neg miss", { .negotiations = other_neg, .n_negotiations = 1 }, 0 },
        { "party hit (any one)", { .parties = us_egypt, .n_parties = 2 }, 1 },
        { "party miss", { .parties = qatar, .n_parties = 1 }, 0 },
        { "party prefix", { .parties = usa, .n_parties = 1 }, 0 },
        { "phase hit", { .phases = ph1, .n_phases = 1 }, 1 },
        { "phase miss", { .phases = ph02, .n_phases = 2 }, 0 },
        { "all hit",
          { .negotiations = gaza,
            .n_negotiations = 1,
            .parties = us_egypt,
            .n_parties = 2,
            .phases = ph1,
            .n_phases = 1 },
          1 },
        { "neg miss, rest hit",
          { .negotiations = other_neg,
            .n_negotiations = 1,
            .parties = us_egypt,
            .n_parties = 2,
            .phases = ph1,
            .n_phases = 1 },
          0 },
        { "party miss, rest hit",
          { .negotiations = gaza,
            .n_negotiations = 1,
            .parties = qatar,
            .n_parties = 1,
            .phases = ph1,
            .n_phases = 1 },
          0 },
        { "phase miss, rest hit",
          { .negotiations = gaza,
            .n_negotiations = 1,
            .parties = us_egypt,
            .n_parties = 2,
            .phases = ph02,
            .n_phases = 2 },
          0 },
        /* a count of 0 means the list is not used, whatever it points to */
        { "zero counts",
          { .negotiations = other_neg, .parties = qatar, .phases = ph02 },
          1 },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int got = parley_filter_match(&table[i].f, &u);
        if (got != table[i].match)
            fail_msg("%s: got %d, want %d", table[i].name, got, table[i].match);
    }
    assert_int_equal(parley_filter_match(NULL, &u), 1);

    /* phase 0 is a value like any other */
    s_update(&u, "gaza-ceasefire", upd_parties, 2, 0);
    parley_filter_t f = { .phases = ph02, .n_phases = 2 };
    assert_int_equal(parley_filter_match(&f, &u), 1);
}

/*
 * The subscriptions of a filter cover every update the filter matches:
 * each matching update is published on at least one subscribed topic.
 */
static void
test_filter_topics_cover_matches(void **state)
{
    (void)state;
    static const char *const negs[] = { "gaza-ceasefire", "sudan", "yemen" };
    static const char *const parties[] = { "us", "egypt", "qatar", "israel" };
    static const uint32_t phases[] = { 0, 1, 2, 3 };
    parley_update_t u;
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    char subs[8][PARLEY_TOPIC_MAX];

    for (size_t nn = 0; nn <= 2; nn++)
        for (size_t np = 0; np <= 2; np++)
            for (size_t nph = 0; nph <= 2; nph++) {
                parley_filter_t f = { .negotiations = negs,
                                      .n_negotiations = nn,
                                      .parties = parties,
                                      .n_parties = np,
                                      .phases = phases,
                                      .n_phases = nph };
                int ns = parley_filter_topics(&f, subs, 8);
                assert_true(ns >= 1);
                for (size_t a = 0; a < 3; a++)
                    for (size_t b = 0; b < 4; b++)
                        for (size_t c = 0; c < 4; c++) {
                            s_update(&u, negs[a], parties + b, 1, phases[c]);
                            if (!parley_filter_match(&f, &u))
                                continue;
                            size_t nt = parley_topics(&u, topics, PARLEY_TOPICS_MAX);
                            int covered = 0;
                            for (int s = 0; s < ns && !covered; s++)
                                for (size_t t = 0; t < nt && !covered; t++)
                                    covered = s_prefix(subs[s], topics[t]);
                            if (!covered)
                                fail_msg("filter %zu/%zu/%zu misses %s %s %u",
                                         nn, np, nph, negs[a], parties[b],
                                         (unsigned)phases[c]);
                        }
            }
}

/* The filter object: values copied, checked, counted once, bounded. */
/*
 * The whole topics the feed grants: every topic an update goes out on,
 * and nothing that would match several of them.
 */
static void
test_topic_whole(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "all/", "neg/gaza-ceasefire/", "party/us/", "party/a/",
        "phase/0/", "phase/7/", "phase/255/",
        "party/abcdefghijklmnopqrstuvwxyz012345/",
    };
    static const char *const no[] = {
        "", "a", "all", "all/x", "p", "party/", "party//", "party/us",
        "party/Us/", "party/-us/", "party/us/x/", "neg/", "phase/",
        "phase/00/", "phase/01/", "phase/256/", "phase/1000/", "phase/x/",
        "sys/", "sys/heartbeat/", "party/abcdefghijklmnopqrstuvwxyz0123456/",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!parley__topic_whole(yes[i], strlen(yes[i])))
            fail_msg("\"%s\" is a whole topic", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (parley__topic_whole(no[i], strlen(no[i])))
            fail_msg("\"%s\" is not a whole topic", no[i]);
    /* a NUL inside is not a slug */
    assert_false(parley__topic_whole("party/u\0s/", 10));
    /* every topic of an update is whole */
    parley_update_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.negotiation, "gaza-ceasefire");
    u.n_parties = PARLEY_PARTIES_MAX;
    for (int i = 0; i < PARLEY_PARTIES_MAX; i++)
        snprintf(u.parties[i], sizeof(u.parties[i]), "party-%d", i);
    u.phase = 200;
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    size_t n = parley_topics(&u, topics, PARLEY_TOPICS_MAX);
    for (size_t i = 0; i < n; i++)
        assert_true(parley__topic_whole(topics[i], strlen(topics[i])));
}

static void
test_filter_object(void **state)
{
    (void)state;
    parley_filter_t *f = parley_filter_new();
    assert_non_null(f);
    char slug[16];
    strcpy(slug, "egypt");
    assert_int_equal(parley_filter_add_party(f, slug), 0);
    strcpy(slug, "qatar"); /* the filter keeps its own copy */
    assert_int_equal(parley_filter_add_party(f, "egypt"), 0); /* once */
    assert_int_equal(f->n_parties, 1);
    assert_string_equal(f->parties[0], "egypt");
    assert_int_equal(parley_filter_add_party(f, "Egypt"), PARLEY_EINVALID);
    assert_int_equal(parley_filter_add_phase(f, 256), PARLEY_EINVALID);
    assert_int_equal(parley_filter_add_negotiation(f, NULL), PARLEY_EARG);
    for (int i = 0; i < 64; i++) {
        char n[8];
        snprintf(n, sizeof(n), "n%d", i);
        assert_int_equal(parley_filter_add_negotiation(f, n), 0);
    }
    assert_int_equal(parley_filter_add_negotiation(f, "n64"), -ENOBUFS);
    parley_update_t u = { .negotiation = "n7", .n_parties = 1,
                          .parties = { "egypt" }, .phase = 4 };
    assert_true(parley_filter_match(f, &u));
    strcpy(u.parties[0], "qatar");
    assert_false(parley_filter_match(f, &u));
    char topics[4][PARLEY_TOPIC_MAX];
    assert_int_equal(parley_filter_topics(f, topics, 4), 1);
    assert_string_equal(topics[0], "party/egypt/");
    /* a filter library code builds on the stack cannot be added to */
    parley_filter_t borrowed = { 0 };
    assert_int_equal(parley_filter_add_party(&borrowed, "egypt"), PARLEY_EARG);
    parley_filter_destroy(&f);
    assert_null(f);
    parley_filter_destroy(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_object),
        cmocka_unit_test(test_topic_whole),
        cmocka_unit_test(test_topics_order_and_content),
        cmocka_unit_test(test_topics_largest),
        cmocka_unit_test(test_topics_prefix_exact),
        cmocka_unit_test(test_filter_topics_dimension),
        cmocka_unit_test(test_filter_topics_errors),
        cmocka_unit_test(test_filter_match_table),
        cmocka_unit_test(test_filter_topics_cover_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
