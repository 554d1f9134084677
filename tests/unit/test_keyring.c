/*
 * test_keyring.c - keyring text, its errors, and permissions.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "../tmpdir.h"
#include "logcheck.h"
#include "parley.h"
#include "types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ----------------------------------------------------------- helpers */

/* Public keys (and their base64) of seeds 0x41.. */
#define S_NKEYS 4
static uint8_t s_pk[S_NKEYS][PARLEY_PUBLICKEY_BYTES];
static char s_b64[S_NKEYS][45];

static int
s_group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < S_NKEYS; i++) {
        uint8_t seed[32];
        memset(seed, 0x41 + i, sizeof(seed));
        parley_key_t *k = parley_key_from_seed(seed);
        if (k == NULL)
            return -1;
        parley_key_public(k, s_pk[i]);
        parley_pubkey_format(s_pk[i], s_b64[i]);
        parley_key_destroy(&k);
    }
    return 0;
}

/*
 * Expand a template: "@0".."@3" become the base64 keys. Returns a static
 * buffer.
 */
static const char *
s_text(const char *tmpl)
{
    static char out[8192];
    size_t n = 0;
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (p[0] == '@' && p[1] >= '0' && p[1] < '0' + S_NKEYS) {
            size_t k = (size_t)(p[1] - '0');
            assert_true(n + 44 < sizeof(out));
            memcpy(out + n, s_b64[k], 44);
            n += 44;
            p++;
        } else {
            assert_true(n + 1 < sizeof(out));
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

static parley_keyring_t *
s_parse_ok(const char *tmpl)
{
    char err[256] = "unset";
    const char *text = s_text(tmpl);
    parley_keyring_t *ring =
        parley_keyring_parse(text, strlen(text), err, sizeof(err));
    if (ring == NULL)
        fail_msg("refused: %s\n---\n%s---", err, text);
    assert_string_equal(err, "");
    return ring;
}

/* Parse must fail with EKEYRING and a message naming line N and WORD. */
static void
s_parse_bad(const char *tmpl, unsigned line, const char *word)
{
    char err[256] = "", want[32];
    const char *text = s_text(tmpl);
    errno = 0;
    parley_keyring_t *ring =
        parley_keyring_parse(text, strlen(text), err, sizeof(err));
    if (ring != NULL) {
        parley_keyring_destroy(&ring);
        fail_msg("accepted:\n%s", text);
    }
    if (errno != -PARLEY_EKEYRING)
        fail_msg("errno %d, want EKEYRING, for:\n%s", errno, text);
    snprintf(want, sizeof(want), "line %u", line);
    if (strstr(err, want) == NULL)
        fail_msg("message \"%s\" does not name %s", err, want);
    if (word != NULL && strstr(err, word) == NULL)
        fail_msg("message \"%s\" does not mention \"%s\"", err, word);
}

static void
s_update(parley_update_t *u, const char *neg, const char *parties,
         uint32_t phase)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->negotiation, sizeof(u->negotiation), "%s", neg);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", parties);
    char *save = NULL;
    for (char *p = strtok_r(tmp, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        snprintf(u->parties[u->n_parties++], PARLEY_SLUG_MAX + 1, "%s", p);
    u->phase = phase;
    u->status = PARLEY_STATUS_PROPOSED;
    strcpy(u->headline, "h");
    u->issued_at = 1;
    u->signer_seq = 1;
}

/* ------------------------------------------------------------- parsing */

static void
test_parse_good_file(void **state)
{
    (void)state;
    parley_keyring_t *ring = s_parse_ok(
        "# parley keyring\r\n"
        "\r\n"
        "   \t  \n"
        "mediator @0 negotiations=* parties=* phases=*\r\n"
        "  # indented comment\n"
        "cairo-desk\t@1\tnegotiations=gaza-ceasefire,sudan parties=egypt "
        "phases=0,2\n"
        "\n"
        "us-state-dept @2 phases=1-3 parties=us negotiations=gaza-ceasefire\n"
        "x @3 negotiations=a parties=b phases=255"); /* no final newline */
    assert_int_equal(parley_keyring_size(ring), 4);
    assert_string_equal(parley_keyring_name(ring, s_pk[0]), "mediator");
    assert_string_equal(parley_keyring_name(ring, s_pk[1]), "cairo-desk");
    assert_string_equal(parley_keyring_name(ring, s_pk[2]), "us-state-dept");
    assert_string_equal(parley_keyring_name(ring, s_pk[3]), "x");
    uint8_t stranger[32];
    memset(stranger, 0x77, sizeof(stranger));
    assert_null(parley_keyring_name(ring, stranger));
    parley_keyring_destroy(&ring);
    assert_null(ring);
    parley_keyring_destroy(&ring);
    parley_keyring_destroy(NULL);

    /* empty text and comments only: an empty keyring */
    ring = s_parse_ok("");
    assert_int_equal(parley_keyring_size(ring), 0);
    assert_null(parley_keyring_name(ring, s_pk[0]));
    parley_keyring_destroy(&ring);
    ring = s_parse_ok("# nothing yet\n\n");
    assert_int_equal(parley_keyring_size(ring), 0);
    parley_keyring_destroy(&ring);
    assert_int_equal(parley_keyring_size(NULL), 0);

    /* a name of 32 characters, and .pub-style comment after the key is
     * not allowed (options follow the key) - see the error tests */
    ring = s_parse_ok("abcdefghijklmnopqrstuvwxyz012345 @0 negotiations=* "
                      "parties=* phases=*\n");
    assert_string_equal(parley_keyring_name(ring, s_pk[0]),
                        "abcdefghijklmnopqrstuvwxyz012345");
    parley_keyring_destroy(&ring);

    /* errbuf may be NULL */
    const char *text = s_text("a @0 negotiations=* parties=* phases=*\n");
    ring = parley_keyring_parse(text, strlen(text), NULL, 0);
    assert_non_null(ring);
    parley_keyring_destroy(&ring);
    errno = 0;
    assert_null(parley_keyring_parse("bad", 3, NULL, 0));
    assert_int_equal(errno, -PARLEY_EKEYRING);
}

/* Only len bytes are read: the text need not be NUL-terminated. */
static void
test_parse_respects_len(void **state)
{
    (void)state;
    char buf[512];
    const char *line = s_text("a @0 negotiations=* parties=* phases=*\n");
    size_t n = strlen(line);
    memcpy(buf, line, n);
    memcpy(buf + n, "garbage that is not a keyring line", 34);
    char err[256];
    parley_keyring_t *ring = parley_keyring_parse(buf, n, err, sizeof(err));
    assert_non_null(ring);
    assert_int_equal(parley_keyring_size(ring), 1);
    parley_keyring_destroy(&ring);
    /* a NUL inside the given length is an error */
    buf[5] = '\0';
    assert_null(parley_keyring_parse(buf, n, err, sizeof(err)));
    assert_non_null(strstr(err, "line 1"));
}

static void
test_parse_errors(void **state)
{
    (void)state;
    const char *ok = "good @0 negotiations=* parties=* phases=*\n";
    char tmpl[1024];

    /* bad slugs as signer names */
    s_parse_bad("Mediator @1 negotiations=* parties=* phases=*\n", 1,
                "Mediator");
    s_parse_bad("-desk @1 negotiations=* parties=* phases=*\n", 1, "-desk");
    s_parse_bad("abcdefghijklmnopqrstuvwxyz0123456 @1 negotiations=* "
                "parties=* phases=*\n",
                1, NULL);
    s_parse_bad("cairo_desk @1 negotiations=* parties=* phases=*\n", 1, NULL);
    /* bad slugs in lists, on line 3 */
    snprintf(tmpl, sizeof(tmpl),
             "%s\nx @1 negotiations=Gaza parties=* phases=*\n", ok);
    s_parse_bad(tmpl, 3, "Gaza");
    snprintf(tmpl, sizeof(tmpl),
             "%s# c\nx @1 negotiations=* parties=us,-eg phases=*\n", ok);
    s_parse_bad(tmpl, 3, "-eg");

    /* bad keys */
    s_parse_bad("x notbase64 negotiations=* parties=* phases=*\n", 1, "x");
    s_parse_bad("x AAAA negotiations=* parties=* phases=*\n", 1, NULL);
    s_parse_bad("x\n", 1, "key");
    snprintf(tmpl, sizeof(tmpl), "%s%s", ok,
             "x @1X negotiations=* parties=* phases=*\n");
    s_parse_bad(tmpl, 2, NULL);

    /* duplicates */
    snprintf(tmpl, sizeof(tmpl), "%s\n%s", ok,
             "good @1 negotiations=* parties=* phases=*\n");
    s_parse_bad(tmpl, 3, "good");
    snprintf(tmpl, sizeof(tmpl), "%s%s", ok,
             "other @0 negotiations=* parties=* phases=*\n");
    s_parse_bad(tmpl, 2, "other");

    /* missing options */
    s_parse_bad("x @1\n", 1, NULL);
    s_parse_bad("x @1 negotiations=* parties=*\n", 1, "phases");
    s_parse_bad("x @1 negotiations=* phases=*\n", 1, "parties");
    s_parse_bad("x @1 parties=* phases=*\n", 1, "negotiations");

    /* unknown and repeated options, and options that are not key=value */
    s_parse_bad("x @1 negotiations=* parties=* phases=* rate=10\n", 1, "rate");
    s_parse_bad("x @1 negotiations=* parties=* phases=* phases=1\n", 1,
                "phases");
    s_parse_bad("x @1 negotiations=* parties=* phases=* # comment\n", 1, "#");
    s_parse_bad("x @1 negotiations * parties=* phases=*\n", 1, "negotiations");

    /* bad phase ranges and phases */
    static const char *const bad_phases[] = {
        "3-1", "1-",    "-1",  "1-256", "256", "1000",
        "a",   "1-3-5", "1.5", "+1",    "0x1", "1,,x",
    };
    for (size_t i = 0; i < sizeof(bad_phases) / sizeof(bad_phases[0]); i++) {
        snprintf(tmpl, sizeof(tmpl),
                 "# line 1\n%sx @1 negotiations=* parties=* phases=%s\n", ok,
                 bad_phases[i]);
        s_parse_bad(tmpl, 3, "phases");
    }

    /* empty lists */
    s_parse_bad("x @1 negotiations= parties=* phases=*\n", 1, "negotiations");
    s_parse_bad("x @1 negotiations=* parties= phases=*\n", 1, "parties");
    s_parse_bad("x @1 negotiations=* parties=* phases=\n", 1, "phases");
    s_parse_bad("x @1 negotiations=, parties=* phases=*\n", 1, "negotiations");
    s_parse_bad("x @1 negotiations=* parties=* phases=,\n", 1, "phases");

    /* the message fits a short errbuf, truncated and terminated */
    char small[12];
    memset(small, 'Z', sizeof(small));
    assert_null(parley_keyring_parse("Bad", 3, small, sizeof(small)));
    assert_non_null(memchr(small, '\0', sizeof(small)));
    assert_int_equal(strncmp(small, "line 1", 6), 0);
}

/* CRLF line ends report the same line numbers. */
static void
test_parse_error_line_numbers_crlf(void **state)
{
    (void)state;
    s_parse_bad("# a\r\n\r\ngood @0 negotiations=* parties=* phases=*\r\n"
                "bad @1 negotiations=* parties=* phases=9-8\r\n",
                4, "phases");
    s_parse_bad(
        "\n\n\n\n\n\n\n\n\n\nBAD @1 negotiations=* parties=* phases=*\n", 11,
        NULL);
}

/* ---------------------------------------------------------------- files */

static void
test_load_names_file(void **state)
{
    (void)state;
    char dir[256], path[512], err[1024];
    assert_int_equal(test_tmpdir_make(dir, sizeof(dir), "parley-test-keyring-"),
                     0);
    snprintf(path, sizeof(path), "%s/keyring", dir);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s_text("# signers\nmediator @0 negotiations=* parties=* phases=*\n"),
          f);
    fclose(f);
    parley_keyring_t *ring = parley_keyring_load(path, err, sizeof(err));
    assert_non_null(ring);
    assert_int_equal(parley_keyring_size(ring), 1);
    parley_keyring_destroy(&ring);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs(s_text("# signers\nmediator @0 negotiations=* parties=* phases=*\n"
                 "mediator @1 negotiations=* parties=* phases=*\n"),
          f);
    fclose(f);
    errno = 0;
    assert_null(parley_keyring_load(path, err, sizeof(err)));
    assert_int_equal(errno, -PARLEY_EKEYRING);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 3"));
    assert_non_null(strstr(err, "mediator"));

    assert_int_equal(unlink(path), 0);
    errno = 0;
    assert_null(parley_keyring_load(path, err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, path));
    assert_int_equal(rmdir(dir), 0);
}

/* ---------------------------------------------------------- permissions */

static void
test_allows_each_dimension(void **state)
{
    (void)state;
    parley_update_t u;
    parley_keyring_t *ring =
        s_parse_ok("any @0 negotiations=* parties=* phases=*\n"
                   "narrow @1 negotiations=gaza-ceasefire,sudan "
                   "parties=us,egypt phases=1-3\n"
                   "phased @2 negotiations=* parties=* phases=0,2\n"
                   "top @3 negotiations=* parties=* phases=200-255\n");
    uint8_t stranger[32];
    memset(stranger, 0x99, sizeof(stranger));

    s_update(&u, "gaza-ceasefire", "us", 1);
    assert_int_equal(parley_keyring_allows(ring, s_pk[0], &u), 0);
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u), 0);
    assert_int_equal(parley_keyring_allows(ring, stranger, &u),
                     PARLEY_EUNKNOWNSIGNER);
    assert_int_equal(parley_keyring_allows(NULL, s_pk[0], &u),
                     PARLEY_EUNKNOWNSIGNER);

    /* negotiation */
    s_update(&u, "sudan", "egypt", 2);
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u), 0);
    s_update(&u, "yemen", "egypt", 2);
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u),
                     PARLEY_EFORBIDDEN);
    assert_int_equal(parley_keyring_allows(ring, s_pk[0], &u), 0);
    s_update(&u, "gaza", "egypt", 2); /* a prefix is not a match */
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u),
                     PARLEY_EFORBIDDEN);

    /* parties: every party must be allowed */
    s_update(&u, "gaza-ceasefire", "us,egypt", 3);
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u), 0);
    s_update(&u, "gaza-ceasefire", "us,egypt,qatar", 3);
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u),
                     PARLEY_EFORBIDDEN);
    s_update(&u, "gaza-ceasefire", "qatar,us", 3);
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u),
                     PARLEY_EFORBIDDEN);
    s_update(&u, "gaza-ceasefire", "usa", 3);
    assert_int_equal(parley_keyring_allows(ring, s_pk[1], &u),
                     PARLEY_EFORBIDDEN);

    /* phases: range 1-3 inclusive */
    static const struct {
        uint32_t phase;
        int narrow, phased, top;
    } ph[] = {
        { 0, 0, 1, 0 },      { 1, 1, 0, 0 },   { 2, 1, 1, 0 },
        { 3, 1, 0, 0 },      { 4, 0, 0, 0 },   { 199, 0, 0, 0 },
        { 200, 0, 0, 1 },    { 255, 0, 0, 1 }, { 256, 0, 0, 0 },
        { 100000, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(ph) / sizeof(ph[0]); i++) {
        s_update(&u, "gaza-ceasefire", "us", ph[i].phase);
        int want[3] = { ph[i].narrow, ph[i].phased, ph[i].top };
        for (int k = 0; k < 3; k++) {
            int rc = parley_keyring_allows(ring, s_pk[k + 1], &u);
            if (rc != (want[k] ? 0 : PARLEY_EFORBIDDEN))
                fail_msg("signer %d phase %u: got %d", k + 1,
                         (unsigned)ph[i].phase, rc);
        }
    }
    /* "*" for phases covers 0..255 but never an out-of-range phase */
    s_update(&u, "gaza-ceasefire", "us", 255);
    assert_int_equal(parley_keyring_allows(ring, s_pk[0], &u), 0);
    s_update(&u, "gaza-ceasefire", "us", 256);
    assert_int_equal(parley_keyring_allows(ring, s_pk[0], &u),
                     PARLEY_EFORBIDDEN);
    parley_keyring_destroy(&ring);
}

/* ------------------------------------------------- logs and witnesses */

/* log: and witness: lines: the policy they give, and their errors. */
static void
test_log_lines(void **state)
{
    (void)state;
    parley_keyring_t *ring = s_parse_ok(
        "desk @0 negotiations=* parties=* phases=*\n"
        "log: parley.example.org/gaza @1 witnesses=2 max_staleness=12\n"
        "witness: w.example/1 @2\n"
        "witness: w.example/2 @3\n"
        "log: other.example/log @2\n");
    assert_int_equal(parley_keyring_size(ring), 1); /* signers only */
    parley__logpolicy_t pol;
    assert_int_equal(parley__keyring_logpolicy(ring, NULL, &pol), PARLEY_EARG);
    assert_int_equal(parley__keyring_logpolicy(ring, "none", &pol), -ENOENT);
    assert_int_equal(parley__keyring_logpolicy(ring, "parley.example.org/gaza", &pol), 0);
    assert_string_equal(pol.origin, "parley.example.org/gaza");
    assert_memory_equal(pol.pk, s_pk[1], 32);
    assert_int_equal(pol.need, 2);
    assert_int_equal(pol.max_staleness_ms, 12000);
    assert_int_equal(pol.n_witnesses, 2);
    assert_string_equal(pol.witness[1].name, "w.example/2");
    assert_memory_equal(pol.witness[1].pk, s_pk[3], 32);
    assert_int_equal(parley__keyring_logpolicy(ring, "other.example/log", &pol), 0);
    assert_int_equal(pol.need, 0);
    assert_int_equal(pol.max_staleness_ms, 30000); /* the default */
    parley_keyring_destroy(&ring);
    /* One log: no origin needed. */
    ring = s_parse_ok("log: a/b @0 max_staleness=0\n");
    assert_int_equal(parley__keyring_logpolicy(ring, NULL, &pol), 0);
    assert_int_equal(pol.max_staleness_ms, 0);
    parley_keyring_destroy(&ring);
    /* No log line at all. */
    ring = s_parse_ok("desk @0 negotiations=* parties=* phases=*\n");
    assert_int_equal(parley__keyring_logpolicy(ring, NULL, &pol), -ENOENT);
    parley_keyring_destroy(&ring);

    s_parse_bad("log:\n", 1, "origin");
    s_parse_bad("log: has+plus @0\n", 1, "origin");
    s_parse_bad("log: a/b\n", 1, "missing public key");
    s_parse_bad("log: a/b notbase64\n", 1, "base64");
    s_parse_bad("log: a/b @0 witnesses=x\n", 1, "witnesses=K");
    s_parse_bad("log: a/b @0 witnesses=1 witnesses=1\n", 1, "repeats");
    s_parse_bad("log: a/b @0 color=red\n", 1, "color=red");
    s_parse_bad("log: a/b @0\nlog: a/b @1\n", 2, "twice");
    s_parse_bad("witness: w @0 extra\n", 1, "more than");
    s_parse_bad("witness: w @0\nwitness: w @1\n", 2, "twice");
    s_parse_bad("witness:\n", 1, "name");
    /* A log asking for more witnesses than there are. */
    char err[256];
    const char *text = s_text("log: a/b @0 witnesses=2\nwitness: w @1\n");
    assert_null(parley_keyring_parse(text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "asks for 2 witnesses"));
}

/* A forbidden update says which field, and what the keyring allows. */
static void
test_explain_forbidden(void **state)
{
    (void)state;
    parley_keyring_t *ring = s_parse_ok(
        "desk @0 negotiations=gaza-ceasefire parties=israel,hamas phases=0-3,7\n"
        "all @1 negotiations=* parties=* phases=*\n");
    parley_update_t u;
    char buf[512];
    memset(&u, 0, sizeof(u));
    strcpy(u.negotiation, "gaza-ceasefire");
    strcpy(u.parties[0], "israel");
    strcpy(u.parties[1], "us");
    u.n_parties = 2;
    u.phase = 2;
    assert_int_equal(parley__keyring_explain(ring, s_pk[0], &u, buf,
                                             sizeof(buf)),
                     PARLEY_EFORBIDDEN);
    assert_string_equal(buf, "party \"us\" is not allowed; the keyring allows "
                             "desk negotiations=gaza-ceasefire "
                             "parties=israel,hamas phases=0-3,7");
    u.n_parties = 1;
    u.phase = 5;
    assert_int_equal(parley__keyring_explain(ring, s_pk[0], &u, buf,
                                             sizeof(buf)),
                     PARLEY_EFORBIDDEN);
    assert_non_null(strstr(buf, "phase 5 is not allowed; "));
    strcpy(u.negotiation, "sudan-talks");
    assert_int_equal(parley__keyring_explain(ring, s_pk[0], &u, buf,
                                             sizeof(buf)),
                     PARLEY_EFORBIDDEN);
    assert_non_null(strstr(buf, "negotiation \"sudan-talks\" is not allowed"));
    /* allowed, unknown, and a buffer too small to hold it all */
    assert_int_equal(parley__keyring_explain(ring, s_pk[1], &u, buf,
                                             sizeof(buf)),
                     0);
    assert_string_equal(buf, "");
    assert_int_equal(parley__keyring_explain(ring, s_pk[2], &u, buf,
                                             sizeof(buf)),
                     PARLEY_EUNKNOWNSIGNER);
    char small[16];
    assert_int_equal(parley__keyring_explain(ring, s_pk[0], &u, small,
                                             sizeof(small)),
                     PARLEY_EFORBIDDEN);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    parley_keyring_destroy(&ring);
}

/* The accessors give back each signer as the text named it, in order. */
static void
test_signer_accessors(void **state)
{
    (void)state;
    parley_keyring_t *ring = s_parse_ok(
        "# who may say what\n"
        "demo @0 negotiations=* parties=* phases=*\n"
        "\n"
        "egypt-mfa @1 negotiations=gaza-ceasefire parties=egypt,israel,hamas "
        "phases=0-3,7,9-10\n"
        "one @2 negotiations=a,b parties=us phases=255\n"
        "all @3 negotiations=x parties=y phases=0-255\n");
    assert_int_equal(parley_keyring_size(ring), 4);
    static const char *const want[4][4] = {
        { "demo", "*", "*", "*" },
        { "egypt-mfa", "gaza-ceasefire", "egypt,israel,hamas", "0-3,7,9-10" },
        { "one", "a,b", "us", "255" },
        { "all", "x", "y", "*" },
    };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(parley_keyring_signer_name(ring, i), want[i][0]);
        assert_memory_equal(parley_keyring_signer_key(ring, i), s_pk[i],
                            PARLEY_PUBLICKEY_BYTES);
        for (int k = 0; k < 3; k++) {
            char *list = parley_keyring_signer_list(
                ring, i, (parley_keyring_list_t)k);
            assert_non_null(list);
            if (strcmp(list, want[i][k + 1]) != 0)
                fail_msg("signer %zu list %d: \"%s\", expected \"%s\"", i, k,
                         list, want[i][k + 1]);
            free(list);
        }
    }
    /* Every other phase: the longest text the phases can take. */
    char phases[1024] = "", line[1200];
    for (unsigned ph = 0; ph <= 254; ph += 2)
        sprintf(phases + strlen(phases), ph > 0 ? ",%u" : "%u", ph);
    snprintf(line, sizeof(line),
             "wide @0 negotiations=* parties=* phases=%s\n", phases);
    parley_keyring_t *wide = s_parse_ok(line);
    char *list = parley_keyring_signer_list(wide, 0, PARLEY_KEYRING_PHASES);
    assert_non_null(list);
    assert_string_equal(list, phases);
    free(list);
    parley_keyring_destroy(&wide);

    assert_null(parley_keyring_signer_name(ring, 4));
    assert_null(parley_keyring_signer_key(ring, 4));
    errno = 0;
    assert_null(parley_keyring_signer_list(ring, 4, PARLEY_KEYRING_PARTIES));
    assert_int_equal(errno, ENOENT);
    assert_null(parley_keyring_signer_list(ring, 0, (parley_keyring_list_t)3));
    assert_int_equal(errno, -PARLEY_EARG);
    assert_null(parley_keyring_signer_name(NULL, 0));
    parley_keyring_destroy(&ring);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good_file),
        cmocka_unit_test(test_parse_respects_len),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_error_line_numbers_crlf),
        cmocka_unit_test(test_load_names_file),
        cmocka_unit_test(test_allows_each_dimension),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_explain_forbidden),
        cmocka_unit_test(test_signer_accessors),
    };
    return cmocka_run_group_tests(tests, s_group_setup, NULL);
}
