/*
 * fuzz_note.c - signed notes and checkpoints: what a subscriber, a witness
 * and `parley audit` run on every checkpoint they are handed. Checks what
 * must hold of anything the parsers accept: a parsed checkpoint text
 * writes back to the same bytes, and a note with a line added parses.
 */
#include "fuzz.h"

#include <errno.h>

#include "note.h"
#include "tlog_keys.h"

static uint8_t s_log_pk[PARLEY_PUBLICKEY_BYTES];
static uint8_t s_wit_pk[PARLEY_PUBLICKEY_BYTES];
static int s_ready;

/* A checkpoint text parsed is exactly the text made from what was parsed. */
static void
s_round_trip(const parley__note_t *n, const parley__checkpoint_t *cp)
{
    /* The extension lines: everything after the third newline. */
    const char *ext = n->buf;
    for (int i = 0; i < 3; i++)
        ext = (const char *)memchr(ext, '\n', n->text_len - (size_t)(ext - n->buf)) + 1;
    size_t ext_len = n->text_len - (size_t)(ext - n->buf);
    char *ext_copy = fuzz_strdup((const uint8_t *)ext, ext_len);
    char *text = malloc(n->text_len + 1);
    size_t len = 0;
    if (ext_copy == NULL || text == NULL)
        abort();
    if (parley__checkpoint_text(cp->origin, cp->size, &cp->root, ext_copy, text,
                                n->text_len + 1, &len) != 0 ||
        len != n->text_len || memcmp(text, n->buf, len) != 0)
        abort();
    free(ext_copy);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_ready) {
        fuzz_public_key(PARLEY_FUZZ_LOG_SEED, s_log_pk);
        fuzz_public_key(PARLEY_FUZZ_WITNESS_SEED, s_wit_pk);
        s_ready = 1;
    }
    parley__note_t *n = NULL;
    const char *why = NULL;
    int rc = parley__note_parse(data, size, &n, &why);
    if (rc != 0) {
        if (n != NULL || (rc != -ENOMEM && why == NULL))
            abort();
        return 0;
    }
    if (n->nsigs == 0 || n->nsigs > PARLEY__NOTE_SIGS_MAX || n->text_len > n->len ||
        n->buf[n->text_len - 1] != '\n' || n->len != size)
        abort();
    FUZZ_IGNORE(parley__note_verify(n, PARLEY_FUZZ_ORIGIN, s_log_pk, &why));
    uint64_t ts;
    FUZZ_IGNORE(parley__cosig_verify(n, PARLEY_FUZZ_WITNESS, s_wit_pk, &ts, &why));
    for (size_t i = 0; i < n->nsigs; i++) {
        parley__cosig_t c;
        FUZZ_IGNORE(parley__cosig_parse(n->sigs[i].line, n->sigs[i].line_len, &c, &why));
    }
    parley__checkpoint_t cp;
    if (parley__checkpoint_parse(n->buf, n->text_len, &cp, &why) == 0)
        s_round_trip(n, &cp);
    parley__note_t *opened = NULL;
    if (parley__checkpoint_open(data, size, PARLEY_FUZZ_ORIGIN, s_log_pk, &cp, &opened,
                                &why) == 0) {
        if (opened == NULL || strcmp(cp.origin, PARLEY_FUZZ_ORIGIN) != 0)
            abort();
        parley__note_destroy(&opened);
    }
    const char *line = "\xe2\x80\x94 fuzz AAAAAAA=\n";
    char *more = NULL;
    size_t more_len;
    if (parley__note_add_line(n, line, strlen(line), &more, &more_len) == 0) {
        parley__note_t *m = NULL;
        if (parley__note_parse(more, more_len, &m, &why) != 0 || m->nsigs != n->nsigs + 1 ||
            m->text_len != n->text_len)
            abort();
        parley__note_destroy(&m);
        free(more);
    }
    parley__note_destroy(&n);
    return 0;
}
