/*
 * test_note.c - signed notes, checkpoints and cosignatures: the notes Go's
 * sumdb/note made (tests/vectors/tlog/notes.txt) open here and are rebuilt
 * byte for byte from the same seeds; and every rejection path of the
 * parsers and verifiers, each with its reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"
#include "tlog.h"

#define NOTES PARLEY_VECTORS_DIR "/tlog/notes.txt"

/* --- helpers -------------------------------------------------------------- */

/* The value of key in notes.txt (static buffer, valid until the next call). */
static const char *
s_vector(const char *key)
{
    static char value[8192];
    FILE *f = fopen(NOTES, "r");
    assert_non_null(f);
    char line[8192];
    size_t klen = strlen(key);
    const char *found = NULL;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
            snprintf(value, sizeof(value), "%s", line + klen + 1);
            value[strcspn(value, "\n")] = '\0';
            found = value;
            break;
        }
    }
    fclose(f);
    assert_non_null(found);
    return found;
}

/* A hex value of notes.txt as bytes; returns the length. */
static size_t
s_vector_bin(const char *key, uint8_t *out, size_t cap)
{
    const char *hex = s_vector(key);
    size_t len = 0;
    assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len, NULL), 0);
    return len;
}

static parley_key_t *
s_key(const char *seed_key)
{
    uint8_t seed[32];
    assert_int_equal(s_vector_bin(seed_key, seed, sizeof(seed)), 32);
    parley_key_t *k = parley_key_from_seed(seed);
    assert_non_null(k);
    return k;
}

static void
s_public(const char *key, uint8_t pk[32])
{
    assert_int_equal(s_vector_bin(key, pk, 32), 32);
}

/* Parse expecting failure with code and reason. */
static void
s_parse_fails(const char *note, size_t len, int code, const char *reason)
{
    parley__note_t *n = (parley__note_t *)1;
    const char *why = NULL;
    assert_int_equal(parley__note_parse(note, len, &n, &why), code);
    assert_null(n);
    assert_non_null(why);
    if (strcmp(why, reason) != 0)
        fail_msg("reason \"%s\", expected \"%s\" for:\n%.*s", why, reason, (int)len,
                 note);
}

/* A note made of text and raw signature-block lines. */
static char *
s_join(const char *text, const char *sigs)
{
    size_t a = strlen(text), b = strlen(sigs);
    char *s = malloc(a + 1 + b + 1);
    assert_non_null(s);
    memcpy(s, text, a);
    s[a] = '\n';
    memcpy(s + a + 1, sigs, b + 1);
    return s;
}

static const char *s_text = "example.org/log\n5\n"
                            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";

/* --- tests ---------------------------------------------------------------- */

/* Go's notes open with libparley's verifiers and are rebuilt byte for byte. */
static void
test_go_vectors(void **state)
{
    (void)state;
    uint8_t log_pk[32], wit_pk[32], id[4];
    s_public("log_public_key", log_pk);
    s_public("witness_public_key", wit_pk);
    char log_name[64], wit_name[64];
    snprintf(log_name, sizeof(log_name), "%s", s_vector("log_name"));
    snprintf(wit_name, sizeof(wit_name), "%s", s_vector("witness_name"));
    parley_key_t *log_key = s_key("log_seed");
    parley_key_t *wit_key = s_key("witness_seed");
    uint8_t pk[32];
    parley_key_public(log_key, pk);
    assert_memory_equal(pk, log_pk, 32);
    parley_key_public(wit_key, pk);
    assert_memory_equal(pk, wit_pk, 32);

    assert_int_equal(s_vector_bin("log_key_id", id, sizeof(id)), 4);
    uint32_t want = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
    assert_int_equal(parley__note_key_id(log_name, PARLEY__NOTE_TYPE_ED25519, log_pk), want);
    assert_int_equal(s_vector_bin("witness_key_id", id, sizeof(id)), 4);
    want = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
    assert_int_equal(parley__note_key_id(wit_name, PARLEY__NOTE_TYPE_COSIG, wit_pk), want);
    const uint64_t ts = strtoull(s_vector("cosignature_time"), NULL, 10);
    assert_int_equal(ts, 1700000000);

    /* The root of records 0..1999, the tree vectors' leaves. */
    parley__tlog_mem_t m;
    parley__tlog_mem_init(&m);
    for (int i = 0; i < 2000; i++) {
        char rec[32];
        int len = snprintf(rec, sizeof(rec), "record %d", i);
        assert_int_equal(parley__tlog_mem_append(&m, rec, (size_t)len), 0);
    }
    parley__tlog_hash_t root2000, empty;
    parley__tlog_range_root(&m.range, &root2000);
    parley__tlog_empty_root(&empty);
    parley__tlog_mem_clear(&m);

    static const struct {
        const char *key;
        uint64_t size;
        const char *ext;
    } cases[] = {
        { "checkpoint", 2000, NULL },
        { "checkpoint_ext", 2000, "parley extension line\n" },
        { "checkpoint_empty", 0, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t go[4096];
        size_t go_len = s_vector_bin(cases[i].key, go, sizeof(go));
        /* Open Go's note. */
        parley__checkpoint_t cp;
        parley__note_t *n = NULL;
        const char *why = NULL;
        int rc = parley__checkpoint_open(go, go_len, log_name, log_pk, &cp, &n, &why);
        if (rc != 0)
            fail_msg("%s: %d %s", cases[i].key, rc, why);
        assert_string_equal(cp.origin, log_name);
        assert_int_equal(cp.size, cases[i].size);
        assert_memory_equal(cp.root.b, (cases[i].size ? &root2000 : &empty)->b, 32);
        assert_int_equal(cp.extensions, cases[i].ext ? 1 : 0);
        assert_int_equal(n->nsigs, 2);
        uint64_t got_ts = 0;
        assert_int_equal(parley__cosig_verify(n, wit_name, wit_pk, &got_ts, &why), 0);
        assert_int_equal(got_ts, ts);

        /* Rebuild it: text, the log's signature, the witness's cosignature. */
        char text[1024];
        size_t text_len;
        assert_int_equal(parley__checkpoint_text(log_name, cp.size, &cp.root, cases[i].ext,
                                                 text, sizeof(text), &text_len),
                         0);
        assert_int_equal(text_len, n->text_len);
        assert_memory_equal(text, n->buf, text_len);
        char *signed_note = NULL;
        size_t signed_len;
        assert_int_equal(parley__note_sign(text, text_len, log_name, log_key, &signed_note,
                                           &signed_len),
                         0);
        if (cases[i].ext == NULL) {
            /* The checkpoint helper makes the same note. */
            char *cp_note = NULL;
            size_t cp_len;
            assert_int_equal(parley__checkpoint_sign(log_name, cp.size, &cp.root, log_key,
                                                     &cp_note, &cp_len),
                             0);
            assert_int_equal(cp_len, signed_len);
            assert_memory_equal(cp_note, signed_note, cp_len);
            free(cp_note);
        }
        char line[PARLEY__COSIG_LINE_MAX];
        size_t line_len;
        assert_int_equal(parley__cosig_make(wit_key, wit_name, text, text_len, ts, line,
                                            sizeof(line), &line_len),
                         0);
        parley__note_t *mine = NULL;
        assert_int_equal(parley__note_parse(signed_note, signed_len, &mine, &why), 0);
        char *both = NULL;
        size_t both_len;
        assert_int_equal(parley__note_add_line(mine, line, line_len, &both, &both_len), 0);
        assert_int_equal(both_len, go_len);
        assert_memory_equal(both, go, go_len);
        assert_int_equal(both[both_len], '\0');
        free(both);
        free(signed_note);
        parley__note_destroy(&mine);
        parley__note_destroy(&n);
        assert_null(n);
    }
    parley_key_destroy(&log_key);
    parley_key_destroy(&wit_key);
}

/* The example note of the signed-note spec (Go's package documentation):
 * its signature opens with the key it was made with. */
static void
test_spec_example(void **state)
{
    (void)state;
    /* "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW" */
    uint8_t vk[33];
    size_t len = 0;
    assert_int_equal(sodium_base642bin(vk, sizeof(vk),
                                       "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", 44,
                                       NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(len, 33);
    assert_int_equal(vk[0], 1);
    assert_int_equal(parley__note_key_id("PeterNeumann", 1, vk + 1), 0xc74f20a3);
    const char *msg =
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
        "\n"
        "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    parley__note_t *n = NULL;
    assert_int_equal(parley__note_parse(msg, strlen(msg), &n, NULL), 0);
    assert_int_equal(n->nsigs, 1);
    assert_int_equal(n->sigs[0].key_id, 0xc74f20a3);
    assert_int_equal(parley__note_verify(n, "PeterNeumann", vk + 1, NULL), 0);
    parley__note_destroy(&n);
}

/* Every reason a note is refused. */
static void
test_note_rejects(void **state)
{
    (void)state;
    parley_key_t *k = s_key("log_seed");
    char *good = NULL;
    size_t good_len;
    assert_int_equal(parley__note_sign(s_text, strlen(s_text), "example.org/log", k,
                                       &good, &good_len),
                     0);
    const char *sig_line = good + strlen(s_text) + 1; /* "— example.org/log ...\n" */
    const char *b64 = strchr(sig_line + 4, ' ') + 1;
    char *n;

    /* Size. */
    char *big = malloc(PARLEY__NOTE_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', PARLEY__NOTE_MAX + 1);
    s_parse_fails(big, PARLEY__NOTE_MAX + 1, PARLEY_ETOOLARGE, "note larger than 65536 bytes");
    free(big);
    /* Text rules. */
#define LIT(s) s, sizeof(s) - 1
    s_parse_fails(LIT("a\xff\n\n\xe2\x80\x94 a AAAAAAA=\n"), PARLEY_EMALFORMED,
                  "not UTF-8 text without control characters");
    s_parse_fails(LIT("a\r\n\n\xe2\x80\x94 a AAAAAAA=\n"), PARLEY_EMALFORMED,
                  "not UTF-8 text without control characters");
    s_parse_fails(LIT("a\0\n\n\xe2\x80\x94 a AAAAAAA=\n"), PARLEY_EMALFORMED,
                  "not UTF-8 text without control characters");
    s_parse_fails(LIT("a\xed\xa0\x80\n\n\xe2\x80\x94 a AAAAAAA=\n"), PARLEY_EMALFORMED,
                  "not UTF-8 text without control characters"); /* a surrogate */
#undef LIT
    s_parse_fails(good, good_len - 1, PARLEY_EMALFORMED, "note does not end with a newline");
    s_parse_fails("", 0, PARLEY_EMALFORMED, "note does not end with a newline");
    s_parse_fails(s_text, strlen(s_text), PARLEY_EMALFORMED,
                  "no blank line before the signatures");
    n = s_join(s_text, "");
    s_parse_fails(n, strlen(n), PARLEY_EMALFORMED, "no signature lines");
    free(n);
    /* Signature lines. */
    static const struct {
        const char *sigs;
        const char *why;
    } lines[] = {
        { "-- a AAAAAAA=\n", "signature line does not start with an em dash and a space" },
        { "\xe2\x80\x94""a AAAAAAA=\n", "signature line does not start with an em dash and a space" },
        { "\xe2\x80\x93 a AAAAAAA=\n", "signature line does not start with an em dash and a space" },
        { "\xe2\x80\x94 aAAAAAAA=\n", "signature line has no space after the key name" },
        { "\xe2\x80\x94  AAAAAAA=\n", "key name is not valid" },
        { "\xe2\x80\x94 a+b AAAAAAA=\n", "key name is not valid" },
        { "\xe2\x80\x94 a\xc2\xa0""b AAAAAAA=\n", "key name is not valid" },
        { "\xe2\x80\x94 a\xe3\x80\x80""b AAAAAAA=\n", "key name is not valid" },
        { "\xe2\x80\x94 a\xe2\x80\xa8 AAAAAAA=\n", "key name is not valid" },
        { "\xe2\x80\x94 a \n", "signature is not canonical base64" },
        { "\xe2\x80\x94 a AAAAAAA\n", "signature is not canonical base64" },
        { "\xe2\x80\x94 a AAAAAAB=\n", "signature is not canonical base64" },
        { "\xe2\x80\x94 a AAAA=AAA\n", "signature is not canonical base64" },
        { "\xe2\x80\x94 a AAAA AAA=\n", "signature is not canonical base64" },
        { "\xe2\x80\x94 a AAAA-AA=\n", "signature is not canonical base64" },
        { "\xe2\x80\x94 a AAAAAA==\n", "signature shorter than a key ID and one byte" },
        { "\xe2\x80\x94 a AAAA\n", "signature shorter than a key ID and one byte" },
        { "\xe2\x80\x94 a AAAAAAA=\n\xe2\x80\x94 b\n", "signature line has no space after the key name" },
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        n = s_join(s_text, lines[i].sigs);
        s_parse_fails(n, strlen(n), PARLEY_EMALFORMED, lines[i].why);
        free(n);
    }
    /* A name of 255 bytes is fine, 256 is not. */
    char name[300], sigs[400];
    memset(name, 'n', 256);
    name[255] = '\0';
    snprintf(sigs, sizeof(sigs), "\xe2\x80\x94 %s AAAAAAA=\n", name);
    n = s_join(s_text, sigs);
    parley__note_t *note = NULL;
    assert_int_equal(parley__note_parse(n, strlen(n), &note, NULL), 0);
    parley__note_destroy(&note);
    free(n);
    name[255] = 'n';
    name[256] = '\0';
    snprintf(sigs, sizeof(sigs), "\xe2\x80\x94 %s AAAAAAA=\n", name);
    n = s_join(s_text, sigs);
    s_parse_fails(n, strlen(n), PARLEY_EMALFORMED, "key name is not valid");
    free(n);
    /* 64 signature lines are fine, 65 are not. */
    char *many = malloc(65 * 20 + 1);
    assert_non_null(many);
    many[0] = '\0';
    for (int i = 0; i < 64; i++)
        strcat(many, "\xe2\x80\x94 a AAAAAAA=\n");
    n = s_join(s_text, many);
    assert_int_equal(parley__note_parse(n, strlen(n), &note, NULL), 0);
    assert_int_equal(note->nsigs, 64);
    /* ... and a 65th cannot be added either. */
    char *out = NULL;
    const char *extra = "\xe2\x80\x94 b AAAAAAA=\n";
    assert_int_equal(parley__note_add_line(note, extra, strlen(extra), &out, NULL),
                     PARLEY_ETOOLARGE);
    parley__note_destroy(&note);
    free(n);
    strcat(many, "\xe2\x80\x94 a AAAAAAA=\n");
    n = s_join(s_text, many);
    s_parse_fails(n, strlen(n), PARLEY_EMALFORMED, "more than 64 signature lines");
    free(n);
    free(many);
    /* The separator is the last blank line: a text may hold blank lines. */
    n = s_join("a\n\nb\n", sig_line);
    assert_int_equal(parley__note_parse(n, strlen(n), &note, NULL), 0);
    assert_int_equal(note->text_len, 5);
    parley__note_destroy(&note);
    free(n);
    /* Arguments. */
    const char *why = NULL;
    assert_int_equal(parley__note_parse(good, good_len, NULL, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "missing argument");
    assert_int_equal(parley__note_parse(NULL, 5, &note, &why), PARLEY_EMALFORMED);
    (void)b64;
    free(good);
    parley_key_destroy(&k);
}

/* Every verification outcome of a note signature. */
static void
test_note_verify(void **state)
{
    (void)state;
    parley_key_t *k = s_key("log_seed");
    parley_key_t *other = s_key("witness_seed");
    uint8_t pk[32], opk[32];
    parley_key_public(k, pk);
    parley_key_public(other, opk);
    const char *name = "example.org/log";
    char *good = NULL, *by_other = NULL;
    size_t good_len, other_len;
    assert_int_equal(parley__note_sign(s_text, strlen(s_text), name, k, &good, &good_len), 0);
    assert_int_equal(parley__note_sign(s_text, strlen(s_text), name, other, &by_other,
                                       &other_len),
                     0);
    const char *line = good + strlen(s_text) + 1;
    const char *other_line = by_other + strlen(s_text) + 1;
    parley__note_t *n = NULL;
    const char *why = NULL;

    assert_int_equal(parley__note_parse(good, good_len, &n, &why), 0);
    assert_int_equal(n->nsigs, 1);
    assert_int_equal(n->text_len, strlen(s_text));
    assert_int_equal(parley__note_verify(n, name, pk, &why), 0);
    /* Another key under the same name, or the same key under another
     * name: no signature of that key. */
    assert_int_equal(parley__note_verify(n, name, opk, &why), PARLEY_EUNKNOWNSIGNER);
    assert_string_equal(why, "no signature by this key");
    assert_int_equal(parley__note_verify(n, "example.org/other", pk, &why),
                     PARLEY_EUNKNOWNSIGNER);
    assert_int_equal(parley__note_verify(n, NULL, pk, &why), PARLEY_EUNKNOWNSIGNER);
    assert_string_equal(why, "missing argument");
    parley__note_destroy(&n);

    /* The text changed after signing. */
    char *changed = strdup(good);
    changed[strlen("example.org/log\n")] = '6';
    assert_int_equal(parley__note_parse(changed, good_len, &n, NULL), 0);
    assert_int_equal(parley__note_verify(n, name, pk, &why), PARLEY_EBADSIG);
    assert_string_equal(why, "the key's signature does not verify");
    parley__note_destroy(&n);
    free(changed);

    /* A signature byte changed (the first base64 character after the
     * key ID's 8: byte 6 of the blob). */
    changed = strdup(good);
    char *c = strchr(changed + strlen(s_text) + 5, ' ') + 1 + 8;
    *c = *c == 'A' ? 'B' : 'A';
    assert_int_equal(parley__note_parse(changed, good_len, &n, NULL), 0);
    assert_int_equal(parley__note_verify(n, name, pk, &why), PARLEY_EBADSIG);
    parley__note_destroy(&n);
    free(changed);

    /* A line with the key's name and ID but not 68 bytes long. */
    char sigs[512];
    const char *b64 = strchr(line + 4, ' ') + 1;
    snprintf(sigs, sizeof(sigs), "\xe2\x80\x94 %s %.8sAAAA\n", name, b64);
    char *note = s_join(s_text, sigs);
    assert_int_equal(parley__note_parse(note, strlen(note), &n, &why), 0);
    assert_int_equal(parley__note_verify(n, name, pk, &why), PARLEY_EBADSIG);
    assert_string_equal(why, "the key's signature is not an Ed25519 signature");
    parley__note_destroy(&n);
    free(note);

    /* Unknown lines are kept and ignored; a good line twice is fine; a
     * good and a bad line of the same key is not. */
    snprintf(sigs, sizeof(sigs), "\xe2\x80\x94 stranger AAAAAAA=\n%s%s", line, line);
    note = s_join(s_text, sigs);
    assert_int_equal(parley__note_parse(note, strlen(note), &n, NULL), 0);
    assert_int_equal(n->nsigs, 3);
    assert_int_equal(parley__note_verify(n, name, pk, NULL), 0);
    assert_int_equal(n->sigs[0].name_len, 8);
    assert_memory_equal(n->sigs[0].name, "stranger", 8);
    parley__note_destroy(&n);
    free(note);
    /* (other_line carries other's key ID, so it is not the key's line;
     * give it the key's ID to make a forged line of the key.) */
    snprintf(sigs, sizeof(sigs), "%s\xe2\x80\x94 %s %.8s%s", line, name, b64,
             strchr(other_line + 4, ' ') + 1 + 8);
    note = s_join(s_text, sigs);
    assert_int_equal(parley__note_parse(note, strlen(note), &n, NULL), 0);
    assert_int_equal(parley__note_verify(n, name, pk, &why), PARLEY_EBADSIG);
    parley__note_destroy(&n);
    free(note);

    free(good);
    free(by_other);
    parley_key_destroy(&k);
    parley_key_destroy(&other);
}

/* Signing and adding lines: what they refuse. */
static void
test_sign_and_add(void **state)
{
    (void)state;
    parley_key_t *k = s_key("log_seed");
    char *out = NULL;
    assert_int_equal(parley__note_sign("no newline", 10, "n", k, &out, NULL), PARLEY_EARG);
    assert_int_equal(parley__note_sign("tab\there\n", 9, "n", k, &out, NULL), PARLEY_EARG);
    assert_int_equal(parley__note_sign("", 0, "n", k, &out, NULL), PARLEY_EARG);
    assert_int_equal(parley__note_sign(s_text, strlen(s_text), "a b", k, &out, NULL),
                     PARLEY_EARG);
    assert_int_equal(parley__note_sign(s_text, strlen(s_text), "", k, &out, NULL),
                     PARLEY_EARG);
    assert_int_equal(parley__note_sign(s_text, strlen(s_text), "n", NULL, &out, NULL),
                     PARLEY_EARG);
    char *big = malloc(PARLEY__NOTE_MAX);
    assert_non_null(big);
    memset(big, 'x', PARLEY__NOTE_MAX);
    big[PARLEY__NOTE_MAX - 1] = '\n';
    assert_int_equal(parley__note_sign(big, PARLEY__NOTE_MAX, "n", k, &out, NULL),
                     PARLEY_EARG);
    free(big);
    assert_null(out);

    /* A text with a blank line of its own still opens to the same text. */
    const char *text = "a\n\nb\n";
    size_t len;
    assert_int_equal(parley__note_sign(text, 5, "n", k, &out, &len), 0);
    parley__note_t *n = NULL;
    assert_int_equal(parley__note_parse(out, len, &n, NULL), 0);
    assert_int_equal(n->text_len, 5);
    uint8_t pk[32];
    parley_key_public(k, pk);
    assert_int_equal(parley__note_verify(n, "n", pk, NULL), 0);

    char *more = NULL;
    static const char *bad[] = {
        "",
        "\xe2\x80\x94 a AAAAAAA=",              /* no newline */
        "\xe2\x80\x94 a AAAAAAA=\n\xe2\x80\x94 a AAAAAAA=\n", /* two lines */
        "\xe2\x80\x94 a AAAAAAA=\r\n",           /* control character */
        "- a AAAAAAA=\n",                        /* not a signature line */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parley__note_add_line(n, bad[i], strlen(bad[i]), &more, NULL),
                         PARLEY_EMALFORMED);
    assert_int_equal(parley__note_add_line(NULL, "x\n", 2, &more, NULL), PARLEY_EMALFORMED);
    const char *ok = "\xe2\x80\x94 a AAAAAAA=\n";
    size_t more_len;
    assert_int_equal(parley__note_add_line(n, ok, strlen(ok), &more, &more_len), 0);
    assert_int_equal(more_len, len + strlen(ok));
    parley__note_t *n2 = NULL;
    assert_int_equal(parley__note_parse(more, more_len, &n2, NULL), 0);
    assert_int_equal(n2->nsigs, 2);
    assert_int_equal(parley__note_verify(n2, "n", pk, NULL), 0);
    parley__note_destroy(&n2);
    free(more);
    parley__note_destroy(&n);
    parley__note_destroy(&n); /* NULL is fine */
    parley__note_destroy(NULL);
    free(out);
    parley_key_destroy(&k);
}

/* Key names. */
static void
test_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int valid;
    } cases[] = {
        { "parley.example.org/gaza", 1 },
        { "oid/1.3.6.1.4.1", 1 },
        { "caf\xc3\xa9", 1 },                 /* é */
        { "", 0 },
        { "a b", 0 },
        { "a\tb", 0 },
        { "a+b", 0 },
        { "a\xc2\x85", 0 },                  /* NEL */
        { "a\xe1\x9a\x80", 0 },              /* U+1680 */
        { "a\xe2\x80\x8a", 0 },              /* U+200A */
        { "a\xe2\x80\xaf", 0 },              /* U+202F */
        { "a\xe2\x81\x9f", 0 },              /* U+205F */
        { "a\xe2\x80\x8b", 1 },              /* U+200B is not White_Space */
        { "a\xc0\xaf", 0 },                  /* overlong */
        { "a\x7f", 1 },                      /* DEL is not below U+0020 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (parley__note_name_valid(cases[i].name, strlen(cases[i].name)) != cases[i].valid)
            fail_msg("name %zu (\"%s\") should be %s", i, cases[i].name,
                     cases[i].valid ? "valid" : "refused");
    assert_int_equal(parley__note_name_valid(NULL, 0), 0);
}

/* Checkpoint texts: what is made, and every reason a text is refused. */
static void
test_checkpoint_text(void **state)
{
    (void)state;
    parley__tlog_hash_t root;
    parley__tlog_empty_root(&root);
    char text[512];
    size_t len;
    assert_int_equal(parley__checkpoint_text("example.org/log", 5, &root, NULL, text,
                                             sizeof(text), &len),
                     0);
    assert_string_equal(text, s_text);
    assert_int_equal(len, strlen(s_text));
    assert_int_equal(parley__checkpoint_text("example.org/log", 5, &root, NULL, text,
                                             len, &len),
                     -ENOBUFS);
    assert_int_equal(parley__checkpoint_text("example.org/log", 5, &root, "x\ny\n", text,
                                             sizeof(text), &len),
                     0);
    parley__checkpoint_t cp;
    assert_int_equal(parley__checkpoint_parse(text, len, &cp, NULL), 0);
    assert_int_equal(cp.extensions, 2);
    assert_int_equal(parley__checkpoint_text("example.org/log", UINT64_MAX, &root, NULL,
                                             text, sizeof(text), &len),
                     0);
    assert_int_equal(parley__checkpoint_parse(text, len, &cp, NULL), 0);
    assert_int_equal(cp.size, UINT64_MAX);
    /* Refused arguments. */
    char long_origin[300];
    memset(long_origin, 'o', 256);
    long_origin[256] = '\0';
    const char *bad_origins[] = { "", "a\nb", "a\rb", long_origin };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(parley__checkpoint_text(bad_origins[i], 1, &root, NULL, text,
                                                 sizeof(text), &len),
                         PARLEY_EARG);
    const char *bad_ext[] = { "x", "\n", "a\n\nb\n", "a\tb\n" };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(parley__checkpoint_text("o", 1, &root, bad_ext[i], text,
                                                 sizeof(text), &len),
                         PARLEY_EARG);
    /* An origin with a space is a valid checkpoint origin but not a key
     * name: text yes, signed checkpoint no. */
    assert_int_equal(parley__checkpoint_text("my log", 1, &root, NULL, text, sizeof(text),
                                             &len),
                     0);
    parley_key_t *k = s_key("log_seed");
    char *out = NULL;
    assert_int_equal(parley__checkpoint_sign("my log", 1, &root, k, &out, &len), PARLEY_EARG);
    assert_null(out);
    parley_key_destroy(&k);

    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        { "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "checkpoint text does not end with a newline" },
        { "", "checkpoint text does not end with a newline" },
        { "o\n1\n", "fewer than three lines" },
        { "o\n", "fewer than three lines" },
        { "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "origin line is empty" },
        { "o\n\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n00\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n+1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n1a\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n 1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n100000000000000000000\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "tree size is not a decimal number without leading zeros" },
        { "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n", "root hash is not base64 of 32 bytes" },
        { "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n", "root hash is not base64 of 32 bytes" },
        { "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==\n", "root hash is not base64 of 32 bytes" },
        { "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= \n", "root hash is not base64 of 32 bytes" },
        { "o\n1\n47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "root hash is not base64 of 32 bytes" },
        { "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n", "empty extension line" },
        { "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nx\n\ny\n", "empty extension line" },
        { "o\x01\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "not UTF-8 text without control characters" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = NULL;
        int rc = parley__checkpoint_parse(cases[i].text, strlen(cases[i].text), &cp, &why);
        if (rc != PARLEY_EMALFORMED || why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("case %zu: %d \"%s\", expected \"%s\"", i, rc, why ? why : "",
                     cases[i].why);
    }
    /* 255 bytes of origin is the most. */
    char t[600];
    memset(long_origin, 'o', 255);
    long_origin[255] = '\0';
    snprintf(t, sizeof(t), "%s\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", long_origin);
    assert_int_equal(parley__checkpoint_parse(t, strlen(t), &cp, NULL), 0);
    assert_int_equal(cp.size, 0);
    assert_string_equal(cp.origin, long_origin);
    snprintf(t, sizeof(t), "o%s\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", long_origin);
    const char *why = NULL;
    assert_int_equal(parley__checkpoint_parse(t, strlen(t), &cp, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "origin longer than 255 bytes");
    assert_int_equal(parley__checkpoint_parse(t, strlen(t), NULL, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "missing argument");
}

/* Opening signed checkpoints: each way one is refused. */
static void
test_checkpoint_open(void **state)
{
    (void)state;
    parley_key_t *k = s_key("log_seed");
    parley_key_t *other = s_key("witness_seed");
    uint8_t pk[32];
    parley_key_public(k, pk);
    parley__tlog_hash_t root;
    memset(root.b, 7, 32);
    const char *origin = "parley.example.org/gaza";
    char *note = NULL;
    size_t len;
    assert_int_equal(parley__checkpoint_sign(origin, 42, &root, k, &note, &len), 0);
    parley__checkpoint_t cp;
    const char *why = NULL;
    assert_int_equal(parley__checkpoint_open(note, len, origin, pk, &cp, NULL, &why), 0);
    assert_int_equal(cp.size, 42);
    assert_memory_equal(cp.root.b, root.b, 32);

    /* Mangled: one byte of the note changed, cut, grown. */
    note[3] ^= 0x20;
    assert_int_equal(parley__checkpoint_open(note, len, origin, pk, &cp, NULL, &why),
                     PARLEY_EBADSIG);
    note[3] ^= 0x20;
    assert_int_equal(parley__checkpoint_open(note, len - 2, origin, pk, &cp, NULL, &why),
                     PARLEY_EMALFORMED);
    /* Signed by another key under the log's name. */
    char *forged = NULL;
    assert_int_equal(parley__checkpoint_sign(origin, 42, &root, other, &forged, &len), 0);
    assert_int_equal(parley__checkpoint_open(forged, len, origin, pk, &cp, NULL, &why),
                     PARLEY_EUNKNOWNSIGNER);
    free(forged);
    /* Signed by the log's key, but not a checkpoint. */
    assert_int_equal(parley__note_sign("hello\n", 6, origin, k, &forged, &len), 0);
    assert_int_equal(parley__checkpoint_open(forged, len, origin, pk, &cp, NULL, &why),
                     PARLEY_EMALFORMED);
    assert_string_equal(why, "fewer than three lines");
    free(forged);
    /* Signed by the log's key, for another origin. */
    char text[256];
    assert_int_equal(parley__checkpoint_text("elsewhere", 42, &root, NULL, text,
                                             sizeof(text), &len),
                     0);
    assert_int_equal(parley__note_sign(text, len, origin, k, &forged, &len), 0);
    parley__note_t *n = (parley__note_t *)1;
    assert_int_equal(parley__checkpoint_open(forged, len, origin, pk, &cp, &n, &why),
                     PARLEY_EINVALID);
    assert_string_equal(why, "checkpoint of another origin");
    assert_null(n);
    free(forged);
    assert_int_equal(parley__checkpoint_open(note, strlen(note), NULL, pk, &cp, NULL, &why),
                     PARLEY_EMALFORMED);
    free(note);
    parley_key_destroy(&k);
    parley_key_destroy(&other);
}

/* Cosignatures: made, parsed, checked; each way one is refused. */
static void
test_cosignatures(void **state)
{
    (void)state;
    parley_key_t *w = s_key("witness_seed");
    parley_key_t *k = s_key("log_seed");
    uint8_t wpk[32], kpk[32];
    parley_key_public(w, wpk);
    parley_key_public(k, kpk);
    const char *wname = "witness.example.org/w1";
    const size_t tlen = strlen(s_text);
    char line[PARLEY__COSIG_LINE_MAX];
    size_t len;
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen, 1234, line, sizeof(line),
                                        &len),
                     0);
    assert_int_equal(len, strlen(line));
    parley__cosig_t c;
    const char *why = NULL;
    assert_int_equal(parley__cosig_parse(line, len, &c, &why), 0);
    assert_string_equal(c.name, wname);
    assert_int_equal(c.timestamp, 1234);
    assert_int_equal(c.key_id, parley__note_key_id(wname, PARLEY__NOTE_TYPE_COSIG, wpk));
    assert_int_equal(parley__cosig_check(&c, wname, wpk, s_text, tlen, &why), 0);
    /* The largest timestamp there is; the smallest. */
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen, (uint64_t)INT64_MAX, line,
                                        sizeof(line), &len),
                     0);
    assert_int_equal(parley__cosig_parse(line, len, &c, NULL), 0);
    assert_int_equal(c.timestamp, (uint64_t)INT64_MAX);
    assert_int_equal(parley__cosig_check(&c, wname, wpk, s_text, tlen, NULL), 0);
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen, 0, line, sizeof(line), &len),
                     0);
    assert_int_equal(parley__cosig_parse(line, len, &c, NULL), 0);
    assert_int_equal(parley__cosig_check(&c, wname, wpk, s_text, tlen, NULL), 0);

    /* make: refused arguments. */
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen, (uint64_t)INT64_MAX + 1,
                                        line, sizeof(line), &len),
                     PARLEY_EARG);
    assert_int_equal(parley__cosig_make(w, "a b", s_text, tlen, 1, line, sizeof(line), &len),
                     PARLEY_EARG);
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen - 1, 1, line, sizeof(line),
                                        &len),
                     PARLEY_EARG);
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen, 1, line, 50, &len), -ENOBUFS);

    /* check: another witness name, another key, another text, another time. */
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen, 1234, line, sizeof(line),
                                        &len),
                     0);
    assert_int_equal(parley__cosig_parse(line, len, &c, NULL), 0);
    assert_int_equal(parley__cosig_check(&c, "witness.example.org/w2", wpk, s_text, tlen,
                                         &why),
                     PARLEY_EUNKNOWNSIGNER);
    assert_string_equal(why, "not a cosignature by this witness key");
    assert_int_equal(parley__cosig_check(&c, wname, kpk, s_text, tlen, &why),
                     PARLEY_EUNKNOWNSIGNER);
    assert_int_equal(parley__cosig_check(&c, wname, wpk, s_text, tlen - 2, &why),
                     PARLEY_EBADSIG);
    assert_string_equal(why, "the cosignature does not verify");
    c.timestamp++;
    assert_int_equal(parley__cosig_check(&c, wname, wpk, s_text, tlen, &why), PARLEY_EBADSIG);
    c.timestamp--;
    /* A key ID computed with the note signature type instead of 0x04. */
    c.key_id = parley__note_key_id(wname, PARLEY__NOTE_TYPE_ED25519, wpk);
    assert_int_equal(parley__cosig_check(&c, wname, wpk, s_text, tlen, &why),
                     PARLEY_EUNKNOWNSIGNER);

    /* parse: every reason. */
    static const struct {
        const char *line;
        const char *why;
    } cases[] = {
        { "\xe2\x80\x94 w AAAAAAA=", "line does not end with a newline" },
        { "", "line does not end with a newline" },
        { "\xe2\x80\x94 w AAAAAAA=\n\xe2\x80\x94 w AAAAAAA=\n", "more than one line" },
        { "\xe2\x80\x94 w\x01 AAAAAAA=\n", "not UTF-8 text without control characters" },
        { "- w AAAAAAA=\n", "signature line does not start with an em dash and a space" },
        { "\xe2\x80\x94 w AAAAAAA=\n", "signature is not 76 bytes (key ID, time, Ed25519)" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        int rc = parley__cosig_parse(cases[i].line, strlen(cases[i].line), &c, &why);
        if (rc != PARLEY_EMALFORMED || why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("case %zu: %d \"%s\", expected \"%s\"", i, rc, why ? why : "",
                     cases[i].why);
    }
    /* A note signature (68 bytes) is not a cosignature. */
    char *signed_note = NULL;
    size_t slen;
    assert_int_equal(parley__note_sign(s_text, tlen, wname, w, &signed_note, &slen), 0);
    const char *sig_line = signed_note + tlen + 1;
    assert_int_equal(parley__cosig_parse(sig_line, strlen(sig_line), &c, &why),
                     PARLEY_EMALFORMED);
    assert_string_equal(why, "signature is not 76 bytes (key ID, time, Ed25519)");
    /* A timestamp with the top bit set. */
    uint8_t blob[76] = { 0 };
    blob[4] = 0x80;
    char b64[120], bad[200];
    sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);
    snprintf(bad, sizeof(bad), "\xe2\x80\x94 w %s\n", b64);
    assert_int_equal(parley__cosig_parse(bad, strlen(bad), &c, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "timestamp above 2^63 - 1");
    assert_int_equal(parley__cosig_parse(bad, strlen(bad), NULL, &why), PARLEY_EMALFORMED);
    assert_string_equal(why, "missing argument");

    /* verify in a note: found, missing, malformed, bad. */
    parley__note_t *n = NULL, *with = NULL;
    assert_int_equal(parley__note_parse(signed_note, slen, &n, NULL), 0);
    uint64_t ts = 0;
    assert_int_equal(parley__cosig_verify(n, wname, wpk, &ts, &why), PARLEY_EUNKNOWNSIGNER);
    assert_string_equal(why, "no cosignature by this witness");
    assert_int_equal(parley__cosig_make(w, wname, s_text, tlen, 99, line, sizeof(line), &len),
                     0);
    char *two = NULL;
    size_t two_len;
    assert_int_equal(parley__note_add_line(n, line, len, &two, &two_len), 0);
    assert_int_equal(parley__note_parse(two, two_len, &with, NULL), 0);
    assert_int_equal(parley__cosig_verify(with, wname, wpk, &ts, &why), 0);
    assert_int_equal(ts, 99);
    /* The log's own signature still checks beside it. */
    assert_int_equal(parley__note_verify(with, wname, wpk, NULL), 0);
    parley__note_destroy(&with);
    free(two);
    /* A line with the witness's name and cosignature ID, 68 bytes long. */
    uint32_t id = parley__note_key_id(wname, PARLEY__NOTE_TYPE_COSIG, wpk);
    uint8_t blob68[68] = { (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8),
                           (uint8_t)id };
    sodium_bin2base64(b64, sizeof(b64), blob68, sizeof(blob68),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(bad, sizeof(bad), "\xe2\x80\x94 %s %s\n", wname, b64);
    assert_int_equal(parley__note_add_line(n, bad, strlen(bad), &two, &two_len), 0);
    assert_int_equal(parley__note_parse(two, two_len, &with, NULL), 0);
    assert_int_equal(parley__cosig_verify(with, wname, wpk, &ts, &why), PARLEY_EMALFORMED);
    parley__note_destroy(&with);
    free(two);
    /* A cosignature of another text. */
    assert_int_equal(parley__cosig_make(w, wname, "other\n", 6, 99, line, sizeof(line), &len),
                     0);
    assert_int_equal(parley__note_add_line(n, line, len, &two, &two_len), 0);
    assert_int_equal(parley__note_parse(two, two_len, &with, NULL), 0);
    assert_int_equal(parley__cosig_verify(with, wname, wpk, &ts, &why), PARLEY_EBADSIG);
    assert_int_equal(parley__cosig_verify(NULL, wname, wpk, &ts, &why), PARLEY_EUNKNOWNSIGNER);
    parley__note_destroy(&with);
    free(two);
    parley__note_destroy(&n);
    free(signed_note);
    parley_key_destroy(&w);
    parley_key_destroy(&k);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_vectors),
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_note_rejects),
        cmocka_unit_test(test_note_verify),
        cmocka_unit_test(test_sign_and_add),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_checkpoint_text),
        cmocka_unit_test(test_checkpoint_open),
        cmocka_unit_test(test_cosignatures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
