/*
 * test_validate.c - parley_update_validate at the edges of each rule, the
 * slug rule, UTF-8, and the status and kind names.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "parley.h"
#include "types.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void
s_valid(parley_update_t *u)
{
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire");
    strcpy(u->parties[0], "israel");
    strcpy(u->parties[1], "hamas");
    u->n_parties = 2;
    u->phase = 1;
    u->status = PARLEY_STATUS_IN_EFFECT;
    u->kind = PARLEY_KIND_UPDATE;
    strcpy(u->headline, "Phase 1 in effect");
    u->issued_at = 1717000000000;
    u->signer_seq = 1;
}

#define S_OK(u) assert_int_equal(parley_update_validate(u, NULL, 0), 0)
#define S_BAD(u) assert_int_equal(parley_update_validate(u, NULL, 0), PARLEY_EINVALID)

/* Fill dst with n copies of c, NUL-terminated. */
static void
s_fill(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
}

/* ---------------------------------------------------------------- slugs */

static void
test_slug_rules(void **state)
{
    (void)state;
    char s[64];
    static const char *const good[] = { "a",  "0",    "us",   "gaza-ceasefire",
                                        "a-", "a--b", "9to5", "x-1-2-3" };
    static const char *const bad[] = { "",     "-",    "-us", "US",  "Us",
                                       "u s",  "us/",  "us_", "us.", "\xc3\xa9",
                                       "a\tb", "us\n", "*" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!parley_slug_valid(good[i]))
            fail_msg("\"%s\" refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parley_slug_valid(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
    assert_false(parley_slug_valid(NULL));
    s_fill(s, 'a', 32);
    assert_true(parley_slug_valid(s));
    s_fill(s, 'a', 33);
    assert_false(parley_slug_valid(s));
    s_fill(s, '-', 32);
    s[0] = 'a';
    assert_true(parley_slug_valid(s));
    s[0] = '-';
    assert_false(parley_slug_valid(s));
}

/* ------------------------------------------------------------- validate */

static void
test_validate_baseline(void **state)
{
    (void)state;
    parley_update_t u;
    s_valid(&u);
    S_OK(&u);
    assert_int_equal(parley_update_validate(NULL, NULL, 0), PARLEY_EINVALID);
    memset(&u, 0, sizeof(u));
    S_BAD(&u); /* a zeroed struct is an empty (invalid) update */
}

static void
test_validate_negotiation(void **state)
{
    (void)state;
    parley_update_t u;
    s_valid(&u);
    s_fill(u.negotiation, 'n', 32);
    S_OK(&u);
    u.negotiation[0] = '-';
    S_BAD(&u);
    strcpy(u.negotiation, "");
    S_BAD(&u);
    strcpy(u.negotiation, "Gaza");
    S_BAD(&u);
    strcpy(u.negotiation, "gaza ceasefire");
    S_BAD(&u);
    /* a field without its NUL (33 bytes of slug characters) */
    memset(u.negotiation, 'n', sizeof(u.negotiation));
    S_BAD(&u);
}

static void
test_validate_parties(void **state)
{
    (void)state;
    parley_update_t u;
    s_valid(&u);
    u.n_parties = 0;
    S_BAD(&u);
    u.n_parties = 1;
    S_OK(&u);
    for (size_t i = 0; i < PARLEY_PARTIES_MAX; i++)
        snprintf(u.parties[i], sizeof(u.parties[i]), "party-%zu", i);
    u.n_parties = PARLEY_PARTIES_MAX;
    S_OK(&u);
    u.n_parties = PARLEY_PARTIES_MAX + 1;
    S_BAD(&u);
    u.n_parties = SIZE_MAX;
    S_BAD(&u);
    /* duplicates, adjacent or not */
    u.n_parties = PARLEY_PARTIES_MAX;
    strcpy(u.parties[15], "party-0");
    S_BAD(&u);
    strcpy(u.parties[15], "party-14");
    S_BAD(&u);
    strcpy(u.parties[15], "party-15");
    S_OK(&u);
    /* slug rules apply to parties, at 32 and 33 bytes too */
    s_fill(u.parties[3], 'p', 32);
    S_OK(&u);
    memset(u.parties[3], 'p', sizeof(u.parties[3])); /* no NUL in the field */
    S_BAD(&u);
    strcpy(u.parties[3], "-p");
    S_BAD(&u);
    strcpy(u.parties[3], "P");
    S_BAD(&u);
    strcpy(u.parties[3], "");
    S_BAD(&u);
    /* only the first n_parties entries count */
    s_valid(&u);
    strcpy(u.parties[5], "NOT A SLUG");
    S_OK(&u);
}

static void
test_validate_phase_status_kind(void **state)
{
    (void)state;
    parley_update_t u;
    s_valid(&u);
    u.phase = 0;
    S_OK(&u);
    u.phase = 255;
    S_OK(&u);
    u.phase = 256;
    S_BAD(&u);
    u.phase = UINT32_MAX;
    S_BAD(&u);

    s_valid(&u);
    for (int s = PARLEY_STATUS_PROPOSED; s <= PARLEY_STATUS_COLLAPSED; s++) {
        u.status = (parley_status_t)s;
        S_OK(&u);
    }
    u.status = PARLEY_STATUS_UNSPECIFIED;
    S_BAD(&u);
    u.status = (parley_status_t)13;
    S_BAD(&u);
    u.status = (parley_status_t)-1;
    S_BAD(&u);

    s_valid(&u);
    u.kind = (parley_kind_t)3;
    S_BAD(&u);
    u.kind = (parley_kind_t)-1;
    S_BAD(&u);
}

static void
test_validate_references(void **state)
{
    (void)state;
    parley_update_t u;
    s_valid(&u);
    /* update: no references */
    u.n_references = 1;
    u.references[0] = 5;
    S_BAD(&u);
    /* correction and retraction: at least one, at most 16, none zero */
    for (int k = PARLEY_KIND_CORRECTION; k <= PARLEY_KIND_RETRACTION; k++) {
        s_valid(&u);
        u.kind = (parley_kind_t)k;
        S_BAD(&u);
        u.n_references = 1;
        u.references[0] = 12;
        S_OK(&u);
        u.n_references = PARLEY_REFERENCES_MAX;
        for (size_t i = 0; i < PARLEY_REFERENCES_MAX; i++)
            u.references[i] = 100 + i;
        S_OK(&u);
        u.n_references = PARLEY_REFERENCES_MAX + 1;
        S_BAD(&u);
        u.n_references = 2;
        u.references[1] = 0; /* seqs start at 1 */
        S_BAD(&u);
        u.references[1] = (uint64_t)INT64_MAX;
        S_OK(&u);
        u.references[1] = (uint64_t)INT64_MAX + 1; /* not exact in JSON */
        S_BAD(&u);
    }
}

static void
test_validate_text_lengths(void **state)
{
    (void)state;
    parley_update_t u;

    s_valid(&u);
    s_fill(u.headline, 'h', 200);
    S_OK(&u);
    memset(u.headline, 'h', sizeof(u.headline)); /* 201 bytes, no NUL */
    S_BAD(&u);
    u.headline[0] = '\0';
    S_BAD(&u); /* empty headline */
    strcpy(u.headline, "x");
    S_OK(&u);
    /* 200 bytes of multi-byte characters (100 x U+00E9) are 200 bytes */
    for (size_t i = 0; i < 100; i++)
        memcpy(u.headline + 2 * i, "\xc3\xa9", 2);
    u.headline[200] = '\0';
    S_OK(&u);

    s_valid(&u);
    u.body[0] = '\0';
    S_OK(&u); /* body may be empty */
    s_fill(u.body, 'b', 4096);
    S_OK(&u);
    memset(u.body, 'b', sizeof(u.body));
    S_BAD(&u);

    s_valid(&u);
    s_fill(u.location, 'l', 200);
    S_OK(&u);
    memset(u.location, 'l', sizeof(u.location));
    S_BAD(&u);
}

/* Validate u with body = pre ASCII bytes, seq, post ASCII bytes. */
static int
s_validate_between(parley_update_t *u, size_t pre, const char *seq,
                   size_t post)
{
    s_valid(u);
    snprintf(u->body, sizeof(u->body), "%.*s%s%.*s", (int)pre,
             "abcdefghijklmnopqr", seq, (int)post, "0123456789");
    return parley_update_validate(u, NULL, 0);
}

/* Every text field takes well-formed UTF-8 only. */
static void
test_validate_utf8(void **state)
{
    (void)state;
    static const char *const good[] = {
        "plain ascii",
        "caf\xc3\xa9",                  /* U+00E9 */
        "\xc2\x80",                     /* U+0080, smallest 2-byte */
        "\xdf\xbf",                     /* U+07FF */
        "\xe0\xa0\x80",                 /* U+0800, smallest 3-byte */
        "\xed\x9f\xbf",                 /* U+D7FF, just below surrogates */
        "\xee\x80\x80",                 /* U+E000, just above */
        "\xef\xbf\xbf",                 /* U+FFFF */
        "\xf0\x90\x80\x80",             /* U+10000, smallest 4-byte */
        "\xf0\x9f\x95\x8a\xef\xb8\x8f", /* dove emoji + VS16 */
        "\xf4\x8f\xbf\xbf",             /* U+10FFFF, the last one */
        "tab\tnewline\ncontrol\x01",    /* control characters are text */
    };
    static const char *const bad[] = {
        "\x80", /* lone continuation */
        "\xbf",
        "a\xc3",        /* truncated 2-byte */
        "\xe2\x82",     /* truncated 3-byte */
        "\xf0\x9f\x95", /* truncated 4-byte */
        "\xc3\x28",     /* bad continuation */
        "\xe2\x28\xa1",
        "\xc0\xaf",                 /* overlong '/' */
        "\xc1\xbf",                 /* overlong 2-byte */
        "\xe0\x80\xaf",             /* overlong 3-byte */
        "\xe0\x9f\xbf",             /* overlong U+07FF */
        "\xf0\x80\x80\xaf",         /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf",         /* overlong U+FFFF */
        "\xed\xa0\x80",             /* U+D800 surrogate */
        "\xed\xbf\xbf",             /* U+DFFF surrogate */
        "\xed\xa0\xbd\xed\xb8\x80", /* CESU-8 surrogate pair */
        "\xf4\x90\x80\x80",         /* U+110000 */
        "\xf5\x80\x80\x80",         /* lead byte past U+10FFFF */
        "\xf8\x88\x80\x80\x80",     /* 5-byte form */
        "\xfe",
        "\xff",
    };
    parley_update_t u;
    for (int field = 0; field < 3; field++) {
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            s_valid(&u);
            char *dst = field == 0   ? u.headline
                        : field == 1 ? u.body
                                     : u.location;
            snprintf(dst, 64, "x%sy", good[i]);
            if (parley_update_validate(&u, NULL, 0) != 0)
                fail_msg("field %d: good sequence %zu refused", field, i);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            s_valid(&u);
            char *dst = field == 0   ? u.headline
                        : field == 1 ? u.body
                                     : u.location;
            snprintf(dst, 64, "x%sy", bad[i]);
            if (parley_update_validate(&u, NULL, 0) != PARLEY_EINVALID)
                fail_msg("field %d: bad sequence %zu accepted", field, i);
            /* at the very end of the text too (no byte after it) */
            snprintf(dst, 64, "x%s", bad[i]);
            if (parley_update_validate(&u, NULL, 0) != PARLEY_EINVALID)
                fail_msg("field %d: bad sequence %zu at end accepted", field,
                         i);
        }
    }
    /* The same sequences after 0-17 ASCII bytes and before 0-9: every
     * place relative to the eight-byte steps the check takes over ASCII
     * runs. */
    for (size_t pre = 0; pre < 18; pre++) {
        for (size_t post = 0; post < 10; post++) {
            for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                if (s_validate_between(&u, pre, good[i], post) != 0)
                    fail_msg("good sequence %zu after %zu, before %zu "
                             "ASCII bytes refused",
                             i, pre, post);
            for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (s_validate_between(&u, pre, bad[i], post)
                    != PARLEY_EINVALID)
                    fail_msg("bad sequence %zu after %zu, before %zu ASCII "
                             "bytes accepted",
                             i, pre, post);
        }
    }
    /* a 4-byte character ending exactly at the 200-byte limit */
    s_valid(&u);
    s_fill(u.headline, 'h', 196);
    memcpy(u.headline + 196, "\xf0\x9f\x95\x8a", 5);
    assert_int_equal(strlen(u.headline), 200);
    S_OK(&u);
}

static void
test_validate_times(void **state)
{
    (void)state;
    parley_update_t u;
    s_valid(&u);
    u.issued_at = 0;
    S_BAD(&u);
    u.issued_at = -1;
    S_BAD(&u);
    u.issued_at = 1;
    S_OK(&u);

    s_valid(&u);
    u.signer_seq = 0;
    S_BAD(&u);
    u.signer_seq = (uint64_t)INT64_MAX;
    S_OK(&u);
    u.signer_seq = (uint64_t)INT64_MAX + 1; /* not exact in JSON */
    S_BAD(&u);

    /* expires_at: 0 (never) or strictly after issued_at */
    s_valid(&u);
    u.expires_at = 0;
    S_OK(&u);
    u.expires_at = u.issued_at + 1;
    S_OK(&u);
    u.expires_at = u.issued_at;
    S_BAD(&u);
    u.expires_at = u.issued_at - 1;
    S_BAD(&u);
    u.expires_at = -1;
    S_BAD(&u);
    u.expires_at = INT64_MAX;
    S_OK(&u);

    /* scheduled_at: 0 = none; any time, past or future */
    s_valid(&u);
    u.scheduled_at = 1;
    S_OK(&u);
    u.scheduled_at = u.issued_at + 86400000;
    S_OK(&u);
    u.scheduled_at = u.issued_at - 86400000;
    S_OK(&u);
}

/* ---------------------------------------------------------------- names */

static void
test_status_kind_names(void **state)
{
    (void)state;
    static const char *const names[] = {
        NULL,
        "proposed",
        "talks_scheduled",
        "talks_in_progress",
        "awaiting_response",
        "counter_proposal",
        "agreed_in_principle",
        "signed",
        "in_effect",
        "completed",
        "stalled",
        "suspended",
        "collapsed",
    };
    for (int s = 1; s <= 12; s++) {
        parley_status_t got = PARLEY_STATUS_UNSPECIFIED;
        assert_string_equal(parley_status_name((parley_status_t)s), names[s]);
        assert_int_equal(parley_status_parse(names[s], &got), 0);
        assert_int_equal(got, s);
    }
    assert_null(parley_status_name(PARLEY_STATUS_UNSPECIFIED));
    assert_null(parley_status_name((parley_status_t)13));
    assert_null(parley_status_name((parley_status_t)-1));
    static const char *const bad_status[] = {
        "",       "unspecified",        "PROPOSED", "Proposed", "proposed ",
        "agreed", "status_unspecified", "0",        "1"
    };
    for (size_t i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
        parley_status_t got = PARLEY_STATUS_SIGNED;
        if (parley_status_parse(bad_status[i], &got) != PARLEY_EINVALID)
            fail_msg("status \"%s\" parsed", bad_status[i]);
        assert_int_equal(got, PARLEY_STATUS_SIGNED); /* untouched */
    }

    static const char *const kinds[] = { "update", "correction", "retraction" };
    for (int k = 0; k <= 2; k++) {
        parley_kind_t got = (parley_kind_t)-1;
        assert_string_equal(parley_kind_name((parley_kind_t)k), kinds[k]);
        assert_int_equal(parley_kind_parse(kinds[k], &got), 0);
        assert_int_equal(got, k);
    }
    assert_null(parley_kind_name((parley_kind_t)3));
    assert_null(parley_kind_name((parley_kind_t)-1));
    parley_kind_t got = PARLEY_KIND_RETRACTION;
    assert_int_equal(parley_kind_parse("Update", &got), PARLEY_EINVALID);
    assert_int_equal(parley_kind_parse("", &got), PARLEY_EINVALID);
    assert_int_equal(parley_kind_parse("retract", &got), PARLEY_EINVALID);
    assert_int_equal(got, PARLEY_KIND_RETRACTION);
}

static void
test_now_ms(void **state)
{
    (void)state;
    /* Bounds from the precise clock: time() may read the coarse one,
     * which lags it by up to a tick across a second's boundary. */
    struct timespec a, b;
    clock_gettime(CLOCK_REALTIME, &a);
    int64_t now = parley_now_ms();
    clock_gettime(CLOCK_REALTIME, &b);
    assert_true(now >= (int64_t)a.tv_sec * 1000 + a.tv_nsec / 1000000);
    assert_true(now <= (int64_t)b.tv_sec * 1000 + b.tv_nsec / 1000000);
}

/* Validation says which field broke which rule, field name first. */
static void
s_detail(parley_update_t *u, const char *field)
{
    char why[128] = "untouched";
    assert_int_equal(parley_update_validate(u, why, sizeof(why)),
                     PARLEY_EINVALID);
    if (strncmp(why, field, strlen(field)) != 0 || why[strlen(field)] != ':')
        fail_msg("detail \"%s\" does not start with \"%s:\"", why, field);
    /* a short buffer gets a cut, terminated message; NULL is fine */
    char tiny[4];
    assert_int_equal(parley_update_validate(u, tiny, sizeof(tiny)),
                     PARLEY_EINVALID);
    assert_int_equal(strlen(tiny), 3);
    assert_int_equal(parley_update_validate(u, NULL, 0), PARLEY_EINVALID);
}

static void
test_validate_detail(void **state)
{
    (void)state;
    parley_update_t u;
    char why[128] = "untouched";
    s_valid(&u);
    assert_int_equal(parley_update_validate(&u, why, sizeof(why)), 0);
    assert_string_equal(why, ""); /* cleared on success */

    s_valid(&u);
    strcpy(u.negotiation, "Gaza");
    s_detail(&u, "negotiation");
    s_valid(&u);
    u.n_parties = 0;
    s_detail(&u, "parties");
    s_valid(&u);
    strcpy(u.parties[1], "israel");
    s_detail(&u, "parties");
    s_valid(&u);
    u.phase = 256;
    s_detail(&u, "phase");
    s_valid(&u);
    u.status = PARLEY_STATUS_UNSPECIFIED;
    s_detail(&u, "status");
    s_valid(&u);
    u.kind = PARLEY_KIND_RETRACTION;
    s_detail(&u, "references");
    s_valid(&u);
    u.headline[0] = '\0';
    s_detail(&u, "headline");
    s_valid(&u);
    strcpy(u.body, "bad \xC3\x28 utf-8");
    s_detail(&u, "body");
    s_valid(&u);
    s_fill(u.location, 'x', PARLEY_LOCATION_MAX + 1);
    s_detail(&u, "location");
    s_valid(&u);
    u.issued_at = 0;
    s_detail(&u, "issued_at");
    s_valid(&u);
    u.signer_seq = 0;
    s_detail(&u, "signer_seq");
    s_valid(&u);
    u.scheduled_at = -1;
    s_detail(&u, "scheduled_at");
    s_valid(&u);
    u.expires_at = u.issued_at;
    s_detail(&u, "expires_at");
}

/* The setters refuse what the field alone cannot hold, and keep the old
 * value; the getters read it back. */
static void
test_setters(void **state)
{
    (void)state;
    parley_update_t *u = parley_update_new();
    assert_non_null(u);
    assert_int_equal(parley_update_set_negotiation(u, "gaza-ceasefire"), 0);
    assert_int_equal(parley_update_set_negotiation(u, "Not A Slug"),
                     PARLEY_EINVALID);
    assert_string_equal(parley_update_negotiation(u), "gaza-ceasefire");
    for (int i = 0; i < PARLEY_PARTIES_MAX; i++) {
        char p[8];
        snprintf(p, sizeof(p), "p%d", i);
        assert_int_equal(parley_update_add_party(u, p), 0);
    }
    assert_int_equal(parley_update_add_party(u, "one-more"), PARLEY_EINVALID);
    assert_int_equal(parley_update_party_count(u), PARLEY_PARTIES_MAX);
    parley_update_clear_parties(u);
    assert_int_equal(parley_update_add_party(u, "hamas"), 0);
    assert_int_equal(parley_update_add_party(u, "hamas"), PARLEY_EINVALID);
    assert_string_equal(parley_update_party(u, 0), "hamas");
    assert_null(parley_update_party(u, 1));
    assert_int_equal(parley_update_set_phase(u, 256), PARLEY_EINVALID);
    assert_int_equal(parley_update_set_phase(u, 2), 0);
    assert_int_equal(parley_update_set_status(u, (parley_status_t)13),
                     PARLEY_EINVALID);
    assert_int_equal(parley_update_set_status(u, PARLEY_STATUS_SIGNED), 0);
    assert_int_equal(parley_update_set_kind(u, (parley_kind_t)3),
                     PARLEY_EINVALID);
    char big[PARLEY_BODY_MAX + 2];
    s_fill(big, 'b', PARLEY_BODY_MAX + 1);
    assert_int_equal(parley_update_set_body(u, big), PARLEY_EINVALID);
    assert_string_equal(parley_update_body(u), "");
    big[PARLEY_BODY_MAX] = '\0';
    assert_int_equal(parley_update_set_body(u, big), 0);
    assert_int_equal(strlen(parley_update_body(u)), PARLEY_BODY_MAX);
    assert_int_equal(parley_update_set_headline(u, "bad \xC3\x28"),
                     PARLEY_EINVALID);
    assert_int_equal(parley_update_set_headline(u, "Signed in Cairo"), 0);
    assert_int_equal(parley_update_add_reference(u, 0), PARLEY_EINVALID);
    assert_int_equal(parley_update_set_expires_at(u, -1), PARLEY_EINVALID);
    assert_int_equal(parley_update_set_signer_seq(u, (uint64_t)INT64_MAX + 1),
                     PARLEY_EINVALID);
    assert_int_equal(parley_update_set_headline(NULL, "x"), PARLEY_EARG);
    assert_int_equal(parley_update_set_headline(u, NULL), PARLEY_EARG);
    /* issued_at and signer_seq left 0: not valid as it is (the publisher
     * fills them in), valid with them */
    assert_int_equal(parley_update_validate(u, NULL, 0), PARLEY_EINVALID);
    assert_int_equal(parley_update_set_issued_at(u, 1717000000000), 0);
    assert_int_equal(parley_update_set_signer_seq(u, 5), 0);
    assert_int_equal(parley_update_validate(u, NULL, 0), 0);
    parley_update_t *copy = parley_update_dup(u);
    assert_non_null(copy);
    assert_memory_equal(copy, u, sizeof(*u));
    parley_update_reset(u);
    assert_string_equal(parley_update_headline(u), "");
    assert_int_equal(parley_update_party_count(u), 0);
    parley_update_destroy(&u);
    parley_update_destroy(&copy);
    assert_null(u);
    parley_update_destroy(&u); /* accepts a NULL pointer */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slug_rules),
        cmocka_unit_test(test_validate_baseline),
        cmocka_unit_test(test_validate_negotiation),
        cmocka_unit_test(test_validate_parties),
        cmocka_unit_test(test_validate_phase_status_kind),
        cmocka_unit_test(test_validate_references),
        cmocka_unit_test(test_validate_text_lengths),
        cmocka_unit_test(test_validate_utf8),
        cmocka_unit_test(test_validate_times),
        cmocka_unit_test(test_status_kind_names),
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test(test_validate_detail),
        cmocka_unit_test(test_setters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
