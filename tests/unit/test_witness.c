/*
 * test_witness.c - the C2SP tlog-witness request body (built and parsed)
 * and parley_witness_add_checkpoint(): every status the protocol names,
 * the state kept across a restart, and the cosignature it gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../tmpdir.h"
#include "note.h"
#include "tlog.h"
#include "witness.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORIGIN "parley.test/log"
#define NAME "witness.test/w1"

typedef struct fixture {
    char dir[256], state[300];
    parley_key_t *log, *other, *wkey;
    uint8_t log_pk[32], wpk[32];
    parley_keyring_t *ring;
    parley__tlog_mem_t tree;
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL || test_tmpdir_make(f->dir, sizeof(f->dir), "parley-witness-") != 0)
        return -1;
    snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    uint8_t seed[32];
    memset(seed, 0x31, 32);
    f->log = parley_key_from_seed(seed);
    memset(seed, 0x32, 32);
    f->other = parley_key_from_seed(seed);
    memset(seed, 0x33, 32);
    f->wkey = parley_key_from_seed(seed);
    parley_key_public(f->log, f->log_pk);
    parley_key_public(f->wkey, f->wpk);
    char b64[45], text[256];
    parley_pubkey_format(f->log_pk, b64);
    snprintf(text, sizeof(text), "log: %s %s\n", ORIGIN, b64);
    f->ring = parley_keyring_parse(text, strlen(text), NULL, 0);
    parley__tlog_mem_init(&f->tree);
    for (int i = 0; i < 20; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof(rec), "record %d", i + 1);
        parley__tlog_mem_append(&f->tree, rec, (size_t)n);
    }
    *state = f;
    return f->ring != NULL ? 0 : -1;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    parley_key_destroy(&f->log);
    parley_key_destroy(&f->other);
    parley_key_destroy(&f->wkey);
    parley_keyring_destroy(&f->ring);
    parley__tlog_mem_clear(&f->tree);
    test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* The body for (old -> size) signed by key, root of tree (or of another
 * history when fork). */
static char *
s_body(fixture_t *f, const parley_key_t *key, uint64_t old, uint64_t size, bool fork,
       size_t *len)
{
    parley__tlog_hash_t root;
    assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &f->tree, size, &root), 0);
    if (fork)
        root.b[0] ^= 1;
    char *note;
    size_t n;
    assert_int_equal(parley__checkpoint_sign(ORIGIN, size, &root, key, &note, &n), 0);
    parley__tlog_proof_t p = { .count = 0 };
    if (old > 0 && old < size)
        assert_int_equal(parley__tlog_prove(parley__tlog_mem_read, &f->tree,
                                            PARLEY__TLOG_CONSISTENCY, old, size, &p),
                         0);
    char *body;
    assert_int_equal(parley__witness_req_build(old, p.path, p.count, note, n, &body, len),
                     0);
    free(note);
    return body;
}

/* Ask w; returns the status, answer in out. */
static int
s_ask(parley_witness_t *w, const char *body, size_t len, char *out, size_t cap,
      const char **type)
{
    return parley_witness_add_checkpoint(w, body, len, out, cap, type);
}

/* --- tests ------------------------------------------------------------------ */

/* The request body round trips, and every malformed form is refused. */
static void
test_request_parse(void **state)
{
    (void)state;
    parley__tlog_hash_t proof[3];
    for (int i = 0; i < 3; i++)
        memset(proof[i].b, 0x10 + i, 32);
    char *body;
    size_t len;
    assert_int_equal(parley__witness_req_build(20852014, proof, 3, "note\n", 5, &body,
                                               &len),
                     0);
    parley__witness_req_t r;
    assert_int_equal(parley__witness_req_parse(body, len, &r, NULL), 0);
    assert_int_equal(r.old_size, 20852014);
    assert_int_equal(r.count, 3);
    assert_memory_equal(r.proof[2].b, proof[2].b, 32);
    assert_int_equal(r.note_len, 5);
    assert_memory_equal(r.note, "note\n", 5);
    free(body);
    const char *bad[] = {
        "",
        "old 1\n",                    /* no blank line */
        "old 1\n\n",                  /* nothing after it */
        "old 01\n\nx",                /* leading zero */
        "old -1\n\nx",
        "old\n\nx",
        "olds 1\n\nx",
        "old 1\nnot-base64\n\nx",
        "old 1\nAAAA\n\nx",           /* not 32 bytes */
        "old 99999999999999999999\n\nx",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parley__witness_req_parse(bad[i], strlen(bad[i]), &r, NULL)
            != PARLEY_EMALFORMED)
            fail_msg("accepted: \"%s\"", bad[i]);
    /* 63 proof lines are the limit. */
    parley__tlog_hash_t many[64];
    memset(many, 0, sizeof(many));
    assert_int_equal(parley__witness_req_build(1, many, 64, "n\n", 2, &body, &len),
                     PARLEY_EARG);
    char *big = malloc(32 + 64 * 45 + 8);
    size_t n = (size_t)sprintf(big, "old 1\n");
    for (int i = 0; i < 64; i++)
        n += (size_t)sprintf(big + n, "%s\n",
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    n += (size_t)sprintf(big + n, "\nx");
    assert_int_equal(parley__witness_req_parse(big, n, &r, NULL), PARLEY_EMALFORMED);
    free(big);
}

/* The protocol's answers, one by one. */
static void
test_add_checkpoint(void **state)
{
    fixture_t *f = *state;
    parley_witness_t *w = parley_witness_new(f->wkey, NAME, f->ring, f->state);
    assert_non_null(w);
    char out[4096];
    const char *type = NULL;
    size_t len;
    char *body;

    /* 400: not a request. */
    assert_int_equal(s_ask(w, "old x\n\n", 7, out, sizeof(out), &type), 400);
    /* 404: an unknown log. */
    const char *unknown = "old 0\n\nelsewhere/log\n1\n"
                          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
                          "— elsewhere/log AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    assert_int_equal(s_ask(w, unknown, strlen(unknown), out, sizeof(out), &type), 404);
    /* 403: signed by another key. */
    body = s_body(f, f->other, 0, 5, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 403);
    free(body);
    /* 400: old above the size. */
    body = s_body(f, f->log, 6, 5, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 400);
    free(body);
    /* 409: old is not what it cosigned (nothing yet: 0). */
    body = s_body(f, f->log, 3, 5, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 409);
    assert_string_equal(out, "0\n");
    assert_string_equal(type, "text/x.tlog.size");
    free(body);
    /* 200: the first, from 0; the cosignature checks. */
    body = s_body(f, f->log, 0, 5, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 200);
    parley__witness_req_t req;
    assert_int_equal(parley__witness_req_parse(body, len, &req, NULL), 0);
    parley__note_t *note;
    assert_int_equal(parley__note_parse(req.note, req.note_len, &note, NULL), 0);
    parley__cosig_t c;
    assert_int_equal(parley__cosig_parse(out, strlen(out), &c, NULL), 0);
    assert_string_equal(c.name, NAME);
    assert_int_equal(parley__cosig_check(&c, NAME, f->wpk, note->buf, note->text_len,
                                         NULL),
                     0);
    parley__note_destroy(&note);
    free(body);
    assert_int_equal(parley_witness_size(w, ORIGIN), 5);
    /* 409 with the size it holds now. */
    body = s_body(f, f->log, 0, 9, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 409);
    assert_string_equal(out, "5\n");
    free(body);
    /* 422: a proof that does not verify (another history). */
    body = s_body(f, f->log, 5, 9, true, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 422);
    free(body);
    /* 409: the same size with another root. */
    body = s_body(f, f->log, 5, 5, true, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 409);
    free(body);
    /* 200: the same size again (a fresh time), and an extension. */
    body = s_body(f, f->log, 5, 5, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 200);
    free(body);
    body = s_body(f, f->log, 5, 13, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 200);
    free(body);
    parley_witness_destroy(&w);

    /* A restart keeps what was cosigned. */
    w = parley_witness_new(f->wkey, NAME, f->ring, f->state);
    assert_non_null(w);
    assert_int_equal(parley_witness_size(w, ORIGIN), 13);
    body = s_body(f, f->log, 5, 20, false, &len);
    assert_int_equal(s_ask(w, body, len, out, sizeof(out), &type), 409);
    assert_string_equal(out, "13\n");
    free(body);
    parley_witness_destroy(&w);

    /* A damaged state file: the witness does not start. */
    FILE *fp = fopen(f->state, "w");
    fputs("garbage\n", fp);
    fclose(fp);
    assert_null(parley_witness_new(f->wkey, NAME, f->ring, f->state));
    assert_int_equal(errno, -PARLEY_EMALFORMED);
    /* A bad name or a ring without logs. */
    assert_null(parley_witness_new(f->wkey, "bad name", f->ring, f->state));
    assert_int_equal(errno, EINVAL);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_request_parse),
        T(test_add_checkpoint),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
