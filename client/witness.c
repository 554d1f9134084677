/*
 * witness.c - the C2SP tlog-witness protocol: the add-checkpoint request
 * body (witness.h).
 */
#include "witness.h"

#include "keys.h"
#include "logcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ============================================================== witness */

/* What the witness holds per log: the latest checkpoint it cosigned. */
typedef struct {
    char origin[PARLEY__NOTE_NAME_MAX + 1];
    uint64_t size;
    parley__tlog_hash_t root;
} s_log_state_t;

#define S_WITNESS_LOGS_MAX 1024

struct parley_witness {
    const parley_key_t *key;
    char name[PARLEY__NOTE_NAME_MAX + 1];
    const parley_keyring_t *ring;
    char *state_path;
    s_log_state_t *logs;
    size_t n;
};

/*
 * Read the state file: lines "ORIGIN SIZE ROOT_BASE64". 0, -errno, or
 * PARLEY_EMALFORMED.
 */
static int
s_state_read(parley_witness_t *w)
{
    FILE *f = fopen(w->state_path, "re");
    if (f == NULL)
        return errno == ENOENT ? 0 : -errno;
    char line[PARLEY__NOTE_NAME_MAX + 100];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n' || w->n == S_WITNESS_LOGS_MAX) {
            rc = PARLEY_EMALFORMED;
            break;
        }
        line[--n] = '\0';
        char *sp1 = strchr(line, ' ');
        char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
        s_log_state_t *l = &w->logs[w->n];
        if (sp1 == NULL || sp2 == NULL || (size_t)(sp1 - line) > PARLEY__NOTE_NAME_MAX
            || parley__note_decimal(sp1 + 1, (size_t)(sp2 - sp1 - 1), UINT64_MAX,
                                    &l->size) != 0
            || parley__note_hash_decode(sp2 + 1, strlen(sp2 + 1), &l->root) != 0) {
            rc = PARLEY_EMALFORMED;
            break;
        }
        memcpy(l->origin, line, (size_t)(sp1 - line));
        l->origin[sp1 - line] = '\0';
        w->n++;
    }
    fclose(f);
    return rc;
}

/* Write the state file atomically (temporary file, fsync, rename). */
static int
s_state_write(const parley_witness_t *w)
{
    size_t plen = strlen(w->state_path) + 8;
    char *tmp = malloc(plen);
    if (tmp == NULL)
        return -ENOMEM;
    snprintf(tmp, plen, "%s.tmp", w->state_path);
    FILE *f = fopen(tmp, "we");
    int rc = f == NULL ? -errno : 0;
    for (size_t i = 0; rc == 0 && i < w->n; i++) {
        char b64[45];
        parley__note_hash_encode(&w->logs[i].root, b64);
        if (fprintf(f, "%s %" PRIu64 " %s\n", w->logs[i].origin, w->logs[i].size, b64)
            < 0)
            rc = -EIO;
    }
    if (f != NULL) {
        if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
            rc = -errno;
        if (fclose(f) != 0 && rc == 0)
            rc = -errno;
    }
    if (rc == 0 && rename(tmp, w->state_path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

parley_witness_t *
parley_witness_new(const parley_key_t *key, const char *name,
                   const parley_keyring_t *ring, const char *state_path)
{
    parley__logpolicy_t pol;
    if (key == NULL || name == NULL || state_path == NULL
        || strlen(name) > PARLEY__NOTE_NAME_MAX
        || !parley__note_name_valid(name, strlen(name))
        || parley__keyring_logpolicy(ring, NULL, &pol) == -ENOENT) {
        errno = EINVAL;
        return NULL;
    }
    parley_witness_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->state_path = strdup(state_path)) == NULL
        || (w->logs = calloc(S_WITNESS_LOGS_MAX, sizeof(*w->logs))) == NULL) {
        parley_witness_destroy(&w);
        errno = ENOMEM;
        return NULL;
    }
    w->key = key;
    w->ring = ring;
    strcpy(w->name, name);
    int rc = s_state_read(w);
    if (rc != 0) {
        parley_witness_destroy(&w);
        errno = -rc;
        return NULL;
    }
    return w;
}

void
parley_witness_destroy(parley_witness_t **w)
{
    if (w == NULL || *w == NULL)
        return;
    free((*w)->state_path);
    free((*w)->logs);
    free(*w);
    *w = NULL;
}

static s_log_state_t *
s_find(const parley_witness_t *w, const char *origin)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->logs[i].origin, origin) == 0)
            return &w->logs[i];
    return NULL;
}

uint64_t
parley_witness_size(const parley_witness_t *w, const char *origin)
{
    const s_log_state_t *l = w != NULL && origin != NULL ? s_find(w, origin) : NULL;
    return l != NULL ? l->size : 0;
}

/* Set the answer: status, body text, Content-Type. */
static int
s_answer(int status, char *out, size_t cap, const char **ctype, const char *type,
         const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int
s_answer(int status, char *out, size_t cap, const char **ctype, const char *type,
         const char *fmt, ...)
{
    if (out != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out, cap, fmt, ap);
        va_end(ap);
    }
    if (ctype != NULL)
        *ctype = type;
    return status;
}

#define S_TEXT "text/plain; charset=utf-8"

int
parley_witness_add_checkpoint(parley_witness_t *w, const void *body, size_t len,
                              char *out, size_t cap, const char **ctype)
{
    parley__witness_req_t req;
    const char *why = NULL;
    if (w == NULL || (body == NULL && len > 0))
        return s_answer(400, out, cap, ctype, S_TEXT, "no request\n");
    if (parley__witness_req_parse(body, len, &req, &why) != 0)
        return s_answer(400, out, cap, ctype, S_TEXT, "malformed request: %s\n", why);
    parley__note_t *note = NULL;
    parley__checkpoint_t c;
    if (parley__note_parse(req.note, req.note_len, &note, &why) != 0)
        return s_answer(400, out, cap, ctype, S_TEXT, "malformed checkpoint: %s\n", why);
    int status;
    if (parley__checkpoint_parse(note->buf, note->text_len, &c, &why) != 0) {
        status = s_answer(400, out, cap, ctype, S_TEXT, "malformed checkpoint: %s\n",
                          why);
        goto done;
    }
    parley__logpolicy_t pol;
    if (parley__keyring_logpolicy(w->ring, c.origin, &pol) != 0) {
        status = s_answer(404, out, cap, ctype, S_TEXT, "unknown log %s\n", c.origin);
        goto done;
    }
    if (parley__note_verify(note, pol.origin, pol.pk, &why) != 0) {
        status = s_answer(403, out, cap, ctype, S_TEXT,
                          "no valid signature of the log %s: %s\n", c.origin, why);
        goto done;
    }
    if (req.old_size > c.size) {
        status = s_answer(400, out, cap, ctype, S_TEXT,
                          "old size %" PRIu64 " is above the checkpoint's %" PRIu64 "\n",
                          req.old_size, c.size);
        goto done;
    }
    s_log_state_t *l = s_find(w, c.origin);
    uint64_t have = l != NULL ? l->size : 0;
    if (req.old_size != have) {
        status = s_answer(409, out, cap, ctype, "text/x.tlog.size", "%" PRIu64 "\n",
                          have);
        goto done;
    }
    if (l != NULL && c.size == l->size) {
        if (!parley__tlog_hash_equal(&c.root, &l->root)) {
            status = s_answer(409, out, cap, ctype, S_TEXT,
                              "a checkpoint of %" PRIu64 " leaves with another root "
                              "than the one cosigned\n", c.size);
            goto done;
        }
    } else if (req.old_size == 0) {
        if (req.count != 0) {
            status = s_answer(400, out, cap, ctype, S_TEXT,
                              "a proof from size 0 must be empty\n");
            goto done;
        }
    } else if (parley__tlog_verify_consistency(req.old_size, c.size, &l->root, &c.root,
                                               req.proof, req.count, &why) != 0) {
        status = s_answer(422, out, cap, ctype, S_TEXT,
                          "the consistency proof from %" PRIu64 " to %" PRIu64
                          " does not verify: %s\n", req.old_size, c.size, why);
        goto done;
    }
    /* Cosign only what is saved: the state first. */
    s_log_state_t keep = { 0 };
    bool added = false;
    if (l == NULL) {
        if (w->n == S_WITNESS_LOGS_MAX) {
            status = s_answer(500, out, cap, ctype, S_TEXT, "too many logs\n");
            goto done;
        }
        l = &w->logs[w->n++];
        strcpy(l->origin, c.origin);
        added = true;
    } else {
        keep = *l;
    }
    l->size = c.size;
    l->root = c.root;
    int rc = s_state_write(w);
    if (rc != 0) {
        if (added)
            w->n--;
        else
            *l = keep;
        status = s_answer(500, out, cap, ctype, S_TEXT, "cannot save the state: %s\n",
                          strerror(-rc));
        goto done;
    }
    size_t n;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (parley__cosig_make(w->key, w->name, note->buf, note->text_len,
                           (uint64_t)now.tv_sec, out, cap, &n) != 0) {
        status = s_answer(500, out, cap, ctype, S_TEXT, "cannot cosign\n");
        goto done;
    }
    if (ctype != NULL)
        *ctype = S_TEXT;
    status = 200;
done:
    parley__note_destroy(&note);
    return status;
}
