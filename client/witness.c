/*
 * witness.c - the C2SP tlog-witness protocol: the add-checkpoint request
 * body (witness.h).
 */
#include "witness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_fail(const char **why, const char *reason, int code)
{
    if (why != NULL)
        *why = reason;
    return code;
}

int
parley__witness_req_build(uint64_t old_size, const parley__tlog_hash_t *proof,
                          size_t count, const char *note, size_t note_len,
                          char **out, size_t *out_len)
{
    if (count > PARLEY__WITNESS_PROOF_MAX || (count > 0 && proof == NULL) ||
        (note == NULL && note_len > 0) || out == NULL || out_len == NULL)
        return PARLEY_EARG;
    size_t cap = 32 + count * 45 + 1 + note_len + 1;
    char *b = malloc(cap);
    if (b == NULL)
        return -ENOMEM;
    size_t n = (size_t)snprintf(b, cap, "old %llu\n", (unsigned long long)old_size);
    for (size_t i = 0; i < count; i++) {
        parley__note_hash_encode(&proof[i], b + n);
        n += 44;
        b[n++] = '\n';
    }
    b[n++] = '\n';
    if (note_len > 0)
        memcpy(b + n, note, note_len);
    n += note_len;
    b[n] = '\0';
    *out = b;
    *out_len = n;
    return 0;
}

int
parley__witness_req_parse(const void *body, size_t len, parley__witness_req_t *out,
                          const char **why)
{
    const char *b = body;
    if (out == NULL || (b == NULL && len > 0))
        return s_fail(why, "missing argument", PARLEY_EMALFORMED);
    if (len > PARLEY__WITNESS_BODY_MAX)
        return s_fail(why, "request body too large", PARLEY_ETOOLARGE);
    const char *nl = len > 0 ? memchr(b, '\n', len) : NULL;
    if (nl == NULL || nl - b < 5 || memcmp(b, "old ", 4) != 0)
        return s_fail(why, "the first line is not \"old <size>\"", PARLEY_EMALFORMED);
    if (parley__note_decimal(b + 4, (size_t)(nl - b) - 4, (uint64_t)INT64_MAX,
                             &out->old_size) != 0)
        return s_fail(why, "the old size is not a decimal number without leading zeros",
                      PARLEY_EMALFORMED);
    size_t p = (size_t)(nl - b) + 1;
    out->count = 0;
    for (;;) {
        if (p >= len)
            return s_fail(why, "no empty line before the checkpoint", PARLEY_EMALFORMED);
        nl = memchr(b + p, '\n', len - p);
        if (nl == NULL)
            return s_fail(why, "a line does not end with a newline", PARLEY_EMALFORMED);
        size_t n = (size_t)(nl - (b + p));
        if (n == 0) {
            p++;
            break;
        }
        if (out->count == PARLEY__WITNESS_PROOF_MAX)
            return s_fail(why, "more than 63 consistency proof lines", PARLEY_EMALFORMED);
        if (parley__note_hash_decode(b + p, n, &out->proof[out->count]) != 0)
            return s_fail(why, "a proof line is not base64 of 32 bytes", PARLEY_EMALFORMED);
        out->count++;
        p += n + 1;
    }
    if (p == len)
        return s_fail(why, "no checkpoint after the empty line", PARLEY_EMALFORMED);
    out->note = b + p;
    out->note_len = len - p;
    return 0;
}
