/*
 * note.c - signed notes, checkpoints and cosignatures (note.h): strict
 * parsers, signing, and verification with libsodium's Ed25519.
 */
#include "note.h"

#include "types.h"
#include "keys.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DASH "\xe2\x80\x94 " /* U+2014 and a space: a signature line's start */
#define S_DASH_LEN 4
#define S_COSIG_HEADER "cosignature/v1\ntime "
#define S_ED25519_BLOB (4 + PARLEY_SIGNATURE_BYTES)

static int
s_fail(const char **why, const char *reason, int code)
{
    if (why != NULL)
        *why = reason;
    return code;
}

/* --- base64, canonical only ---------------------------------------------- */

static int
s_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Bytes that len characters of padded base64 decode to (len % 4 == 0). */
static size_t
s_b64_size(const char *in, size_t len)
{
    size_t pad = 0;
    if (len >= 4 && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    return len / 4 * 3 - pad;
}

/*
 * Decode standard base64 (RFC 4648 §4) that is in its one canonical form:
 * padded to a multiple of four characters, '=' only at the end, spare
 * bits zero. out may be NULL to check only. Returns the decoded length,
 * or -1 (bad text, or more than cap bytes).
 */
static long
s_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    const size_t n = s_b64_size(in, len);
    const size_t data = len - (len / 4 * 3 - n); /* characters before the '=' */
    if (out != NULL && n > cap)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (i + (size_t)k >= data) {
                v[k] = 0; /* padding, known to be '=' */
                continue;
            }
            if ((v[k] = s_b64_value((unsigned char)in[i + (size_t)k])) < 0)
                return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)v[2] << 6 | (uint32_t)v[3];
        for (int k = 0; k < 3 && o < n; k++, o++)
            if (out != NULL)
                out[o] = (uint8_t)(w >> (16 - 8 * k));
        if (i + 4 == len) {
            /* The bits after the last byte must be zero. */
            if ((n % 3 == 1 && (w & 0xffff) != 0) || (n % 3 == 2 && (w & 0xff) != 0))
                return -1;
        }
    }
    return (long)n;
}

/* Encode as standard padded base64, NUL-terminated. out holds
 * 4 * ((len + 2) / 3) + 1 bytes. */
static size_t
s_b64_encode(char *out, const uint8_t *in, size_t len)
{
    sodium_bin2base64(out, 4 * ((len + 2) / 3) + 1, in, len,
                      sodium_base64_VARIANT_ORIGINAL);
    return 4 * ((len + 2) / 3);
}

int
parley__note_hash_decode(const char *b64, size_t len, parley__tlog_hash_t *out)
{
    if (b64 == NULL || len != 44 || s_b64_decode(b64, 44, out->b, sizeof(out->b)) != 32)
        return PARLEY_EMALFORMED;
    return 0;
}

void
parley__note_hash_encode(const parley__tlog_hash_t *h, char out[45])
{
    s_b64_encode(out, h->b, sizeof(h->b));
}

int
parley__note_decimal(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return PARLEY_EMALFORMED;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return PARLEY_EMALFORMED;
        v = v * 10 + d;
    }
    if (v > max)
        return PARLEY_EMALFORMED;
    *out = v;
    return 0;
}

/* --- text rules ------------------------------------------------------------- */

/* Well-formed UTF-8 without ASCII control characters other than newline. */
static bool
s_text_ok(const char *text, size_t len)
{
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = parley__utf8_next(s + i, len - i, &cp);
        if (n == 0 || (cp < 0x20 && cp != '\n'))
            return false;
        i += n;
    }
    return true;
}

/* Unicode White_Space (what Go's unicode.IsSpace and the spec mean). */
static bool
s_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

int
parley__note_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > PARLEY__NOTE_NAME_MAX)
        return 0;
    const uint8_t *s = (const uint8_t *)name;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = parley__utf8_next(s + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || cp == '+' || s_is_space(cp))
            return 0;
        i += n;
    }
    return 1;
}

/* A newline-terminated text that a note may carry. */
static bool
s_note_text_ok(const char *text, size_t len)
{
    return text != NULL && len > 0 && text[len - 1] == '\n' && s_text_ok(text, len);
}

/* --- key IDs and signature lines ------------------------------------------- */

uint32_t
parley__note_key_id(const char *name, uint8_t type,
                    const uint8_t pk[PARLEY_PUBLICKEY_BYTES])
{
    crypto_hash_sha256_state st;
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, (const uint8_t *)"\n", 1);
    crypto_hash_sha256_update(&st, &type, 1);
    crypto_hash_sha256_update(&st, pk, PARLEY_PUBLICKEY_BYTES);
    crypto_hash_sha256_final(&st, h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/*
 * Parse a signature line (len bytes, without its newline) into sig.
 * *size receives the decoded signature's length (key ID included).
 */
static int
s_sig_line(const char *line, size_t len, parley__note_sig_t *sig, size_t *size,
           const char **why)
{
    if (len < S_DASH_LEN || memcmp(line, S_DASH, S_DASH_LEN) != 0)
        return s_fail(why, "signature line does not start with an em dash and a space",
                      PARLEY_EMALFORMED);
    const char *name = line + S_DASH_LEN;
    const char *sp = memchr(name, ' ', len - S_DASH_LEN);
    if (sp == NULL)
        return s_fail(why, "signature line has no space after the key name",
                      PARLEY_EMALFORMED);
    size_t name_len = (size_t)(sp - name);
    if (!parley__note_name_valid(name, name_len))
        return s_fail(why, "key name is not valid", PARLEY_EMALFORMED);
    const char *b64 = sp + 1;
    size_t b64_len = len - (size_t)(b64 - line);
    uint8_t id[6];
    if (b64_len == 0 || s_b64_decode(b64, b64_len, NULL, 0) < 0)
        return s_fail(why, "signature is not canonical base64", PARLEY_EMALFORMED);
    size_t n = s_b64_size(b64, b64_len);
    if (n < 5)
        return s_fail(why, "signature shorter than a key ID and one byte",
                      PARLEY_EMALFORMED);
    /* The key ID: 5 or more bytes take 8 characters or more, and the
     * first 8 (a whole prefix, checked above) hold the first 4 bytes. */
    if (s_b64_decode(b64, 8, id, sizeof(id)) < 4)
        return s_fail(why, "signature is not canonical base64", PARLEY_EMALFORMED);
    sig->name = name;
    sig->name_len = name_len;
    sig->key_id = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 |
                  (uint32_t)id[2] << 8 | id[3];
    sig->b64 = b64;
    sig->b64_len = b64_len;
    sig->line = line;
    sig->line_len = len + 1;
    *size = n;
    return 0;
}

/* Whether sig is by the key (name, id). */
static bool
s_sig_is(const parley__note_sig_t *sig, const char *name, uint32_t id)
{
    size_t n = strlen(name);
    return sig->key_id == id && sig->name_len == n && memcmp(sig->name, name, n) == 0;
}

/* "— name base64(blob)\n" into out (cap bytes), NUL-terminated. */
static int
s_format_line(const char *name, const uint8_t *blob, size_t blob_len, char *out,
              size_t cap, size_t *len)
{
    size_t name_len = strlen(name);
    size_t b64_len = 4 * ((blob_len + 2) / 3);
    size_t need = S_DASH_LEN + name_len + 1 + b64_len + 1;
    if (len != NULL)
        *len = need;
    if (need + 1 > cap)
        return -ENOBUFS;
    memcpy(out, S_DASH, S_DASH_LEN);
    memcpy(out + S_DASH_LEN, name, name_len);
    out[S_DASH_LEN + name_len] = ' ';
    s_b64_encode(out + S_DASH_LEN + name_len + 1, blob, blob_len);
    out[need - 1] = '\n';
    out[need] = '\0';
    return 0;
}

static void
s_put_id(uint8_t *p, uint32_t id)
{
    p[0] = (uint8_t)(id >> 24);
    p[1] = (uint8_t)(id >> 16);
    p[2] = (uint8_t)(id >> 8);
    p[3] = (uint8_t)id;
}

/* --- notes ----------------------------------------------------------------- */

int
parley__note_parse(const void *buf, size_t len, parley__note_t **out,
                   const char **why)
{
    if (out == NULL)
        return s_fail(why, "missing argument", PARLEY_EMALFORMED);
    *out = NULL;
    if (buf == NULL && len > 0)
        return s_fail(why, "missing argument", PARLEY_EMALFORMED);
    if (len > PARLEY__NOTE_MAX)
        return s_fail(why, "note larger than 65536 bytes", PARLEY_ETOOLARGE);
    const char *s = buf;
    if (!s_text_ok(s, len))
        return s_fail(why, "not UTF-8 text without control characters",
                      PARLEY_EMALFORMED);
    if (len == 0 || s[len - 1] != '\n')
        return s_fail(why, "note does not end with a newline", PARLEY_EMALFORMED);
    /* The text ends at the last blank line. */
    size_t split = len;
    for (size_t i = len - 1; i-- > 0;)
        if (s[i] == '\n' && s[i + 1] == '\n') {
            split = i;
            break;
        }
    if (split == len)
        return s_fail(why, "no blank line before the signatures", PARLEY_EMALFORMED);
    if (split + 2 == len)
        return s_fail(why, "no signature lines", PARLEY_EMALFORMED);

    parley__note_t *n = calloc(1, sizeof(*n));
    if (n == NULL || (n->buf = malloc(len + 1)) == NULL) {
        free(n);
        return -ENOMEM;
    }
    memcpy(n->buf, s, len);
    n->buf[len] = '\0';
    n->len = len;
    n->text_len = split + 1;
    int rc = 0;
    for (size_t p = split + 2; p < len;) {
        const char *nl = memchr(n->buf + p, '\n', len - p); /* found: ends in '\n' */
        size_t line_len = (size_t)(nl - (n->buf + p));
        size_t size;
        if (n->nsigs == PARLEY__NOTE_SIGS_MAX) {
            rc = s_fail(why, "more than 64 signature lines", PARLEY_EMALFORMED);
            break;
        }
        if ((rc = s_sig_line(n->buf + p, line_len, &n->sigs[n->nsigs], &size, why)) != 0)
            break;
        n->nsigs++;
        p += line_len + 1;
    }
    if (rc != 0) {
        parley__note_destroy(&n);
        return rc;
    }
    *out = n;
    return 0;
}

void
parley__note_destroy(parley__note_t **note)
{
    if (note == NULL || *note == NULL)
        return;
    free((*note)->buf);
    free(*note);
    *note = NULL;
}

int
parley__note_verify(const parley__note_t *note, const char *name,
                    const uint8_t pk[PARLEY_PUBLICKEY_BYTES], const char **why)
{
    if (note == NULL || name == NULL || pk == NULL)
        return s_fail(why, "missing argument", PARLEY_EUNKNOWNSIGNER);
    const uint32_t id = parley__note_key_id(name, PARLEY__NOTE_TYPE_ED25519, pk);
    size_t found = 0;
    for (size_t i = 0; i < note->nsigs; i++) {
        const parley__note_sig_t *sig = &note->sigs[i];
        if (!s_sig_is(sig, name, id))
            continue;
        uint8_t blob[S_ED25519_BLOB];
        if (s_b64_size(sig->b64, sig->b64_len) != sizeof(blob) ||
            s_b64_decode(sig->b64, sig->b64_len, blob, sizeof(blob)) < 0)
            return s_fail(why, "the key's signature is not an Ed25519 signature",
                          PARLEY_EBADSIG);
        if (crypto_sign_verify_detached(blob + 4, (const uint8_t *)note->buf,
                                        note->text_len, pk) != 0)
            return s_fail(why, "the key's signature does not verify", PARLEY_EBADSIG);
        found++;
    }
    if (found == 0)
        return s_fail(why, "no signature by this key", PARLEY_EUNKNOWNSIGNER);
    return 0;
}

int
parley__note_sign(const char *text, size_t text_len, const char *name,
                  const parley_key_t *key, char **out, size_t *out_len)
{
    if (out == NULL || key == NULL || name == NULL || !s_note_text_ok(text, text_len) ||
        !parley__note_name_valid(name, strlen(name)))
        return PARLEY_EARG;
    *out = NULL;
    char line[S_DASH_LEN + PARLEY__NOTE_NAME_MAX + 1 + 4 * (S_ED25519_BLOB + 2) / 3 + 2];
    size_t line_len;
    if (text_len + 1 + sizeof(line) > PARLEY__NOTE_MAX)
        return PARLEY_EARG;
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    uint8_t blob[S_ED25519_BLOB];
    parley_key_public(key, pk);
    s_put_id(blob, parley__note_key_id(name, PARLEY__NOTE_TYPE_ED25519, pk));
    if (parley__sodium_init() < 0 ||
        crypto_sign_detached(blob + 4, NULL, (const uint8_t *)text, text_len,
                             parley__key_secret(key)) != 0)
        return PARLEY_EARG;
    if (s_format_line(name, blob, sizeof(blob), line, sizeof(line), &line_len) != 0)
        return PARLEY_EARG;
    char *n = malloc(text_len + 1 + line_len + 1);
    if (n == NULL)
        return -ENOMEM;
    memcpy(n, text, text_len);
    n[text_len] = '\n';
    memcpy(n + text_len + 1, line, line_len + 1);
    *out = n;
    if (out_len != NULL)
        *out_len = text_len + 1 + line_len;
    return 0;
}

int
parley__note_add_line(const parley__note_t *note, const char *line, size_t line_len,
                      char **out, size_t *out_len)
{
    if (out == NULL || note == NULL || (line == NULL && line_len > 0))
        return PARLEY_EMALFORMED;
    *out = NULL;
    parley__note_sig_t sig;
    size_t size;
    if (line_len == 0 || line[line_len - 1] != '\n' ||
        memchr(line, '\n', line_len - 1) != NULL || !s_text_ok(line, line_len) ||
        s_sig_line(line, line_len - 1, &sig, &size, NULL) != 0)
        return PARLEY_EMALFORMED;
    if (note->len + line_len > PARLEY__NOTE_MAX || note->nsigs == PARLEY__NOTE_SIGS_MAX)
        return PARLEY_ETOOLARGE;
    char *n = malloc(note->len + line_len + 1);
    if (n == NULL)
        return -ENOMEM;
    memcpy(n, note->buf, note->len);
    memcpy(n + note->len, line, line_len);
    n[note->len + line_len] = '\0';
    *out = n;
    if (out_len != NULL)
        *out_len = note->len + line_len;
    return 0;
}

/* --- checkpoints -------------------------------------------------------------- */

int
parley__checkpoint_text(const char *origin, uint64_t size,
                        const parley__tlog_hash_t *root, const char *extensions,
                        char *out, size_t cap, size_t *len)
{
    if (origin == NULL || root == NULL || (out == NULL && cap > 0))
        return PARLEY_EARG;
    size_t olen = strlen(origin);
    if (olen == 0 || olen > PARLEY__NOTE_NAME_MAX || memchr(origin, '\n', olen) ||
        !s_text_ok(origin, olen))
        return PARLEY_EARG;
    if (extensions == NULL)
        extensions = "";
    size_t elen = strlen(extensions);
    if (elen > 0 && (!s_note_text_ok(extensions, elen) || extensions[0] == '\n' ||
                     strstr(extensions, "\n\n") != NULL))
        return PARLEY_EARG;
    char b64[45];
    s_b64_encode(b64, root->b, sizeof(root->b));
    int n = snprintf(out, cap, "%s\n%" PRIu64 "\n%s\n%s", origin, size, b64, extensions);
    if (n < 0)
        return PARLEY_EARG;
    if (len != NULL)
        *len = (size_t)n;
    return (size_t)n >= cap ? -ENOBUFS : 0;
}

int
parley__checkpoint_parse(const char *text, size_t len, parley__checkpoint_t *out,
                         const char **why)
{
    if (out == NULL || (text == NULL && len > 0))
        return s_fail(why, "missing argument", PARLEY_EMALFORMED);
    if (len == 0 || text[len - 1] != '\n')
        return s_fail(why, "checkpoint text does not end with a newline",
                      PARLEY_EMALFORMED);
    if (!s_text_ok(text, len))
        return s_fail(why, "not UTF-8 text without control characters",
                      PARLEY_EMALFORMED);
    const char *line[3];
    size_t line_len[3];
    size_t p = 0, k = 0;
    for (; k < 3 && p < len; k++) {
        const char *nl = memchr(text + p, '\n', len - p);
        line[k] = text + p;
        line_len[k] = (size_t)(nl - line[k]);
        p += line_len[k] + 1;
    }
    if (k < 3)
        return s_fail(why, "fewer than three lines", PARLEY_EMALFORMED);
    /* 1. origin */
    if (line_len[0] == 0)
        return s_fail(why, "origin line is empty", PARLEY_EMALFORMED);
    if (line_len[0] > PARLEY__NOTE_NAME_MAX)
        return s_fail(why, "origin longer than 255 bytes", PARLEY_EMALFORMED);
    /* 2. tree size */
    uint64_t size = 0;
    if (parley__note_decimal(line[1], line_len[1], UINT64_MAX, &size) != 0)
        return s_fail(why, "tree size is not a decimal number without leading zeros",
                      PARLEY_EMALFORMED);
    /* 3. root hash */
    parley__tlog_hash_t root;
    if (parley__note_hash_decode(line[2], line_len[2], &root) != 0)
        return s_fail(why, "root hash is not base64 of 32 bytes", PARLEY_EMALFORMED);
    /* 4. extension lines, each non-empty */
    size_t ext = 0;
    for (; p < len; ext++) {
        const char *nl = memchr(text + p, '\n', len - p);
        if (nl == text + p)
            return s_fail(why, "empty extension line", PARLEY_EMALFORMED);
        p = (size_t)(nl - text) + 1;
    }
    memcpy(out->origin, line[0], line_len[0]);
    out->origin[line_len[0]] = '\0';
    out->size = size;
    out->root = root;
    out->extensions = ext;
    return 0;
}

int
parley__checkpoint_sign(const char *origin, uint64_t size,
                        const parley__tlog_hash_t *root, const parley_key_t *key,
                        char **out, size_t *out_len)
{
    char text[PARLEY__CHECKPOINT_TEXT_MAX];
    size_t len;
    if (origin == NULL || !parley__note_name_valid(origin, strlen(origin)))
        return PARLEY_EARG;
    int rc = parley__checkpoint_text(origin, size, root, NULL, text, sizeof(text), &len);
    if (rc != 0)
        return rc == -ENOBUFS ? PARLEY_EARG : rc;
    return parley__note_sign(text, len, origin, key, out, out_len);
}

int
parley__checkpoint_open(const void *buf, size_t len, const char *origin,
                        const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                        parley__checkpoint_t *out, parley__note_t **note,
                        const char **why)
{
    if (note != NULL)
        *note = NULL;
    if (origin == NULL || pk == NULL || out == NULL)
        return s_fail(why, "missing argument", PARLEY_EMALFORMED);
    parley__note_t *n;
    int rc = parley__note_parse(buf, len, &n, why);
    if (rc != 0)
        return rc;
    /* Nothing in the text counts before the log's signature does. */
    if ((rc = parley__note_verify(n, origin, pk, why)) != 0)
        goto done;
    if ((rc = parley__checkpoint_parse(n->buf, n->text_len, out, why)) != 0)
        goto done;
    if (strcmp(out->origin, origin) != 0) {
        rc = s_fail(why, "checkpoint of another origin", PARLEY_EINVALID);
        goto done;
    }
done:
    if (rc == 0 && note != NULL)
        *note = n;
    else
        parley__note_destroy(&n);
    return rc;
}

/* --- cosignatures --------------------------------------------------------------- */

/* "cosignature/v1\ntime <ts>\n" || text, in a new buffer. */
static uint8_t *
s_cosig_message(uint64_t ts, const char *text, size_t text_len, size_t *len)
{
    char head[sizeof(S_COSIG_HEADER) + 24];
    int h = snprintf(head, sizeof(head), S_COSIG_HEADER "%" PRIu64 "\n", ts);
    uint8_t *m = malloc((size_t)h + text_len);
    if (m == NULL)
        return NULL;
    memcpy(m, head, (size_t)h);
    memcpy(m + h, text, text_len);
    *len = (size_t)h + text_len;
    return m;
}

static void
s_put64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int
parley__cosig_make(const parley_key_t *key, const char *name, const char *text,
                   size_t text_len, uint64_t timestamp, char *line, size_t cap,
                   size_t *len)
{
    if (key == NULL || name == NULL || line == NULL ||
        !parley__note_name_valid(name, strlen(name)) ||
        !s_note_text_ok(text, text_len) || text_len > PARLEY__NOTE_MAX ||
        timestamp > (uint64_t)INT64_MAX)
        return PARLEY_EARG;
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    uint8_t blob[PARLEY__COSIG_BYTES];
    parley_key_public(key, pk);
    s_put_id(blob, parley__note_key_id(name, PARLEY__NOTE_TYPE_COSIG, pk));
    s_put64be(blob + 4, timestamp);
    size_t mlen;
    uint8_t *msg = s_cosig_message(timestamp, text, text_len, &mlen);
    if (msg == NULL)
        return -ENOMEM;
    int rc = 0;
    if (parley__sodium_init() < 0 ||
        crypto_sign_detached(blob + 12, NULL, msg, mlen, parley__key_secret(key)) != 0)
        rc = PARLEY_EARG;
    free(msg);
    if (rc != 0)
        return rc;
    return s_format_line(name, blob, sizeof(blob), line, cap, len);
}

int
parley__cosig_parse(const char *line, size_t len, parley__cosig_t *out,
                    const char **why)
{
    if (out == NULL || (line == NULL && len > 0))
        return s_fail(why, "missing argument", PARLEY_EMALFORMED);
    if (len == 0 || line[len - 1] != '\n')
        return s_fail(why, "line does not end with a newline", PARLEY_EMALFORMED);
    if (memchr(line, '\n', len - 1) != NULL)
        return s_fail(why, "more than one line", PARLEY_EMALFORMED);
    if (!s_text_ok(line, len))
        return s_fail(why, "not UTF-8 text without control characters",
                      PARLEY_EMALFORMED);
    parley__note_sig_t sig;
    size_t size;
    int rc = s_sig_line(line, len - 1, &sig, &size, why);
    if (rc != 0)
        return rc;
    uint8_t blob[PARLEY__COSIG_BYTES];
    if (size != sizeof(blob) || s_b64_decode(sig.b64, sig.b64_len, blob, sizeof(blob)) < 0)
        return s_fail(why, "signature is not 76 bytes (key ID, time, Ed25519)",
                      PARLEY_EMALFORMED);
    uint64_t ts = 0;
    for (int i = 0; i < 8; i++)
        ts = ts << 8 | blob[4 + i];
    if (ts > (uint64_t)INT64_MAX)
        return s_fail(why, "timestamp above 2^63 - 1", PARLEY_EMALFORMED);
    memcpy(out->name, sig.name, sig.name_len);
    out->name[sig.name_len] = '\0';
    out->key_id = sig.key_id;
    out->timestamp = ts;
    memcpy(out->signature, blob + 12, PARLEY_SIGNATURE_BYTES);
    return 0;
}

int
parley__cosig_check(const parley__cosig_t *c, const char *name,
                    const uint8_t pk[PARLEY_PUBLICKEY_BYTES], const char *text,
                    size_t text_len, const char **why)
{
    if (c == NULL || name == NULL || pk == NULL || (text == NULL && text_len > 0))
        return s_fail(why, "missing argument", PARLEY_EUNKNOWNSIGNER);
    if (strcmp(c->name, name) != 0 ||
        c->key_id != parley__note_key_id(name, PARLEY__NOTE_TYPE_COSIG, pk))
        return s_fail(why, "not a cosignature by this witness key",
                      PARLEY_EUNKNOWNSIGNER);
    size_t mlen;
    uint8_t *msg = s_cosig_message(c->timestamp, text ? text : "", text_len, &mlen);
    if (msg == NULL)
        return -ENOMEM;
    int ok = crypto_sign_verify_detached(c->signature, msg, mlen, pk) == 0;
    free(msg);
    return ok ? 0 : s_fail(why, "the cosignature does not verify", PARLEY_EBADSIG);
}

int
parley__cosig_verify(const parley__note_t *note, const char *name,
                     const uint8_t pk[PARLEY_PUBLICKEY_BYTES], uint64_t *timestamp,
                     const char **why)
{
    if (note == NULL || name == NULL || pk == NULL)
        return s_fail(why, "missing argument", PARLEY_EUNKNOWNSIGNER);
    const uint32_t id = parley__note_key_id(name, PARLEY__NOTE_TYPE_COSIG, pk);
    size_t found = 0;
    uint64_t latest = 0;
    for (size_t i = 0; i < note->nsigs; i++) {
        const parley__note_sig_t *sig = &note->sigs[i];
        if (!s_sig_is(sig, name, id))
            continue;
        parley__cosig_t c;
        int rc = parley__cosig_parse(sig->line, sig->line_len, &c, why);
        if (rc == 0)
            rc = parley__cosig_check(&c, name, pk, note->buf, note->text_len, why);
        if (rc != 0)
            return rc;
        latest = c.timestamp > latest ? c.timestamp : latest;
        found++;
    }
    if (found == 0)
        return s_fail(why, "no cosignature by this witness", PARLEY_EUNKNOWNSIGNER);
    if (timestamp != NULL)
        *timestamp = latest;
    return 0;
}
