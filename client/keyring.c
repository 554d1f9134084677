/*
 * keyring.c - trusted signers and what each may publish.
 *
 * One signer per line:
 *
 *     NAME PUBKEY_BASE64 negotiations=LIST parties=LIST phases=LIST
 *
 * LIST is "*" or comma-separated values; phases may hold ranges ("1-3").
 * All three permissions must be given: a forgotten one is an error, not
 * an implicit "anything".
 */
#include "logcheck.h"
#include "types.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A list of slugs, or any. */
typedef struct {
    int any;
    size_t n;
    char (*v)[PARLEY_SLUG_MAX + 1];
} s_slugs_t;

typedef struct {
    char name[PARLEY_SLUG_MAX + 1];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    s_slugs_t negotiations;
    s_slugs_t parties;
    uint8_t phases[(PARLEY_PHASE_MAX + 1) / 8]; /* bitmap of allowed phases */
} s_signer_t;

/* A transparency log (log: line) and a witness (witness: line). */
typedef struct {
    char origin[PARLEY__NOTE_NAME_MAX + 1];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    unsigned witnesses;       /* cosignatures a checkpoint needs */
    int64_t max_staleness_ms;
} s_log_t;

typedef struct {
    char name[PARLEY__NOTE_NAME_MAX + 1];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
} s_witness_t;

struct parley_keyring {
    size_t n;
    s_signer_t *signers;
    size_t n_logs, n_witnesses;
    s_log_t *logs;            /* as many as the text has "log:" */
    s_witness_t *witnesses;   /* ... and "witness:" */
};

void
parley_keyring_destroy(parley_keyring_t **ring)
{
    if (ring == NULL || *ring == NULL)
        return;
    for (size_t i = 0; i < (*ring)->n; i++) {
        free((*ring)->signers[i].negotiations.v);
        free((*ring)->signers[i].parties.v);
    }
    free((*ring)->signers);
    free((*ring)->logs);
    free((*ring)->witnesses);
    free(*ring);
    *ring = NULL;
}

size_t
parley_keyring_size(const parley_keyring_t *ring)
{
    return ring != NULL ? ring->n : 0;
}

static const s_signer_t *
s_find(const parley_keyring_t *ring, const uint8_t pk[PARLEY_PUBLICKEY_BYTES])
{
    if (ring == NULL)
        return NULL;
    for (size_t i = 0; i < ring->n; i++)
        if (memcmp(ring->signers[i].pk, pk, PARLEY_PUBLICKEY_BYTES) == 0)
            return &ring->signers[i];
    return NULL;
}

const char *
parley_keyring_name(const parley_keyring_t *ring,
                    const uint8_t pk[PARLEY_PUBLICKEY_BYTES])
{
    const s_signer_t *s = s_find(ring, pk);
    return s != NULL ? s->name : NULL;
}

static int
s_slugs_has(const s_slugs_t *l, const char *v)
{
    if (l->any)
        return 1;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], v) == 0)
            return 1;
    return 0;
}

int
parley_keyring_allows(const parley_keyring_t *ring,
                      const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                      const parley_update_t *u)
{
    const s_signer_t *s = s_find(ring, pk);
    if (s == NULL)
        return PARLEY_EUNKNOWNSIGNER;
    if (!s_slugs_has(&s->negotiations, u->negotiation))
        return PARLEY_EFORBIDDEN;
    for (size_t i = 0; i < u->n_parties; i++)
        if (!s_slugs_has(&s->parties, u->parties[i]))
            return PARLEY_EFORBIDDEN;
    if (u->phase > PARLEY_PHASE_MAX
        || !(s->phases[u->phase / 8] & (1u << (u->phase % 8))))
        return PARLEY_EFORBIDDEN;
    return 0;
}

/* ------------------------------------------------------------ accessors */

const char *
parley_keyring_signer_name(const parley_keyring_t *ring, size_t i)
{
    return ring != NULL && i < ring->n ? ring->signers[i].name : NULL;
}

const uint8_t *
parley_keyring_signer_key(const parley_keyring_t *ring, size_t i)
{
    return ring != NULL && i < ring->n ? ring->signers[i].pk : NULL;
}

/* A list of slugs as the keyring writes it: "*" or "a,b". */
static char *
s_slugs_text(const s_slugs_t *l)
{
    if (l->any)
        return strdup("*");
    char *out = malloc(l->n * (PARLEY_SLUG_MAX + 1) + 1);
    if (out == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < l->n; i++) {
        size_t n = strlen(l->v[i]);
        if (i > 0)
            out[at++] = ',';
        memcpy(out + at, l->v[i], n);
        at += n;
    }
    out[at] = '\0';
    return out;
}

/* The phases of a bitmap: "*" when all are set, else "0-3,7". */
static char *
s_phases_text(const uint8_t *bitmap)
{
    /* At most 128 runs of "ddd-ddd," (every other phase set). */
    char *out = malloc(128 * 8 + 1);
    if (out == NULL)
        return NULL;
    size_t at = 0, set = 0;
    for (unsigned ph = 0; ph <= PARLEY_PHASE_MAX;) {
        if (!(bitmap[ph / 8] & (1u << (ph % 8)))) {
            ph++;
            continue;
        }
        unsigned lo = ph;
        while (ph <= PARLEY_PHASE_MAX && (bitmap[ph / 8] & (1u << (ph % 8))))
            ph++;
        set += ph - lo;
        at += (size_t)sprintf(out + at, at > 0 ? ",%u" : "%u", lo);
        if (ph - 1 > lo)
            at += (size_t)sprintf(out + at, "-%u", ph - 1);
    }
    if (set == PARLEY_PHASE_MAX + 1)
        strcpy(out, "*");
    return out;
}

char *
parley_keyring_signer_list(const parley_keyring_t *ring, size_t i,
                           parley_keyring_list_t which)
{
    if (ring == NULL || i >= ring->n) {
        errno = ENOENT;
        return NULL;
    }
    const s_signer_t *s = &ring->signers[i];
    switch (which) {
    case PARLEY_KEYRING_NEGOTIATIONS:
        return s_slugs_text(&s->negotiations);
    case PARLEY_KEYRING_PARTIES:
        return s_slugs_text(&s->parties);
    case PARLEY_KEYRING_PHASES:
        return s_phases_text(s->phases);
    }
    errno = -PARLEY_EARG;
    return NULL;
}

/* Append printf text to buf at *used (cap bytes in all), cut if need be. */
static void
s_append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
s_append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    if (*used >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used = *used + (size_t)n < cap ? *used + (size_t)n : cap - 1;
}

int
parley__keyring_explain(const parley_keyring_t *ring,
                        const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                        const parley_update_t *u, char *buf, size_t cap)
{
    const s_signer_t *s = s_find(ring, pk);
    size_t used = 0;
    if (cap == 0)
        return PARLEY_EARG;
    buf[0] = '\0';
    if (s == NULL)
        return PARLEY_EUNKNOWNSIGNER;
    if (!s_slugs_has(&s->negotiations, u->negotiation)) {
        s_append(buf, cap, &used, "negotiation \"%s\" is not allowed",
                 u->negotiation);
    } else {
        for (size_t i = 0; i < u->n_parties && used == 0; i++)
            if (!s_slugs_has(&s->parties, u->parties[i]))
                s_append(buf, cap, &used, "party \"%s\" is not allowed",
                         u->parties[i]);
        if (used == 0
            && (u->phase > PARLEY_PHASE_MAX
                || !(s->phases[u->phase / 8] & (1u << (u->phase % 8)))))
            s_append(buf, cap, &used, "phase %u is not allowed",
                     (unsigned)u->phase);
    }
    if (used == 0)
        return 0;
    char *negs = s_slugs_text(&s->negotiations);
    char *parties = s_slugs_text(&s->parties);
    char *phases = s_phases_text(s->phases);
    if (negs != NULL && parties != NULL && phases != NULL)
        s_append(buf, cap, &used,
                 "; the keyring allows %s negotiations=%s parties=%s "
                 "phases=%s",
                 s->name, negs, parties, phases);
    free(negs);
    free(parties);
    free(phases);
    return PARLEY_EFORBIDDEN;
}

/* ---------------------------------------------------------------- parser */

typedef struct {
    char *errbuf;
    size_t errlen;
    unsigned line;
} s_parse_t;

static int
s_fail(s_parse_t *p, const char *fmt, ...)
{
    if (p->errbuf != NULL && p->errlen > 0) {
        int n = snprintf(p->errbuf, p->errlen, "line %u: ", p->line);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->errbuf + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return PARLEY_EKEYRING;
}

static int
s_parse_slugs(s_parse_t *p, const char *what, char *val, s_slugs_t *out)
{
    if (strcmp(val, "*") == 0) {
        out->any = 1;
        return 0;
    }
    size_t n = 1;
    for (const char *c = val; *c != '\0'; c++)
        n += *c == ',';
    out->v = calloc(n, sizeof(*out->v));
    if (out->v == NULL)
        return -ENOMEM;
    if (val[0] == ',' || strstr(val, ",,") != NULL
        || (val[0] != '\0' && val[strlen(val) - 1] == ','))
        return s_fail(p, "%s: empty item in list", what);
    char *save = NULL;
    for (char *tok = strtok_r(val, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (!parley_slug_valid(tok))
            return s_fail(p, "%s: \"%s\" is not a slug (" PARLEY__SLUG_RULE ") or *",
                          what, tok);
        strcpy(out->v[out->n++], tok);
    }
    if (out->n == 0)
        return s_fail(p, "%s: empty list (use * for any)", what);
    return 0;
}

/* Parse a decimal phase 0..255 from [s, end). */
static int
s_phase(const char *s, const char *end, unsigned *out)
{
    unsigned v = 0;
    if (s == end || end - s > 3)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > PARLEY_PHASE_MAX)
        return -1;
    *out = v;
    return 0;
}

static int
s_parse_phases(s_parse_t *p, char *val, uint8_t *bitmap)
{
    if (strcmp(val, "*") == 0) {
        memset(bitmap, 0xff, (PARLEY_PHASE_MAX + 1) / 8);
        return 0;
    }
    char *save = NULL;
    int any = 0;
    for (char *tok = strtok_r(val, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        unsigned lo, hi;
        char *dash = strchr(tok, '-');
        char *end = tok + strlen(tok);
        if (dash != NULL) {
            if (s_phase(tok, dash, &lo) < 0 || s_phase(dash + 1, end, &hi) < 0
                || lo > hi)
                return s_fail(p, "phases: \"%s\" is not a range like 1-3", tok);
        } else {
            if (s_phase(tok, end, &lo) < 0)
                return s_fail(p, "phases: \"%s\" is not a phase 0-255", tok);
            hi = lo;
        }
        for (unsigned ph = lo; ph <= hi; ph++)
            bitmap[ph / 8] |= (uint8_t)(1u << (ph % 8));
        any = 1;
    }
    if (!any)
        return s_fail(p, "phases: empty list (use * for any)");
    return 0;
}

/* A public key of a log or witness line. */
static int
s_line_key(s_parse_t *p, const char *what, const char *name, const char *key,
           uint8_t pk[PARLEY_PUBLICKEY_BYTES])
{
    if (key == NULL)
        return s_fail(p, "%s %s: missing public key", what, name);
    if (parley_pubkey_parse(key, pk) != 0)
        return s_fail(p, "%s %s: public key is not base64 of 32 bytes", what, name);
    if (crypto_core_ed25519_is_valid_point(pk) != 1)
        return s_fail(p, "%s %s: public key is not a valid Ed25519 key", what, name);
    return 0;
}

/* log: ORIGIN PUBKEY [witnesses=K] [max_staleness=SECONDS] */
static int
s_parse_log(s_parse_t *p, parley_keyring_t *ring, char **save)
{
    char *origin = strtok_r(NULL, " \t", save);
    if (origin == NULL || strlen(origin) > PARLEY__NOTE_NAME_MAX
        || !parley__note_name_valid(origin, strlen(origin)))
        return s_fail(p, "log: the origin is missing or not a key name (1-255 "
                         "bytes, no spaces, no '+')");
    s_log_t *l = &ring->logs[ring->n_logs];
    memset(l, 0, sizeof(*l));
    strcpy(l->origin, origin);
    l->max_staleness_ms = PARLEY__LOG_STALENESS_DEFAULT_MS;
    int rc = s_line_key(p, "log", origin, strtok_r(NULL, " \t", save), l->pk);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < ring->n_logs; i++)
        if (strcmp(ring->logs[i].origin, origin) == 0)
            return s_fail(p, "log %s: origin appears twice", origin);
    bool seen_w = false, seen_s = false;
    for (char *opt = strtok_r(NULL, " \t", save); opt != NULL;
         opt = strtok_r(NULL, " \t", save)) {
        uint64_t v;
        char *eq = strchr(opt, '=');
        size_t kl = eq != NULL ? (size_t)(eq - opt) : 0;
        const char *val = eq != NULL ? eq + 1 : "";
        if (kl == 9 && strncmp(opt, "witnesses", 9) == 0 && !seen_w
            && parley__note_decimal(val, strlen(val), PARLEY__LOG_WITNESSES_MAX, &v)
                   == 0) {
            l->witnesses = (unsigned)v;
            seen_w = true;
        } else if (kl == 13 && strncmp(opt, "max_staleness", 13) == 0 && !seen_s
                   && parley__note_decimal(val, strlen(val), 366 * 86400, &v) == 0) {
            l->max_staleness_ms = (int64_t)v * 1000;
            seen_s = true;
        } else {
            return s_fail(p, "log %s: \"%s\" is not witnesses=K or "
                             "max_staleness=SECONDS (or repeats one)",
                          origin, opt);
        }
    }
    ring->n_logs++;
    return 0;
}

/* witness: NAME PUBKEY */
static int
s_parse_witness(s_parse_t *p, parley_keyring_t *ring, char **save)
{
    char *name = strtok_r(NULL, " \t", save);
    if (name == NULL || strlen(name) > PARLEY__NOTE_NAME_MAX
        || !parley__note_name_valid(name, strlen(name)))
        return s_fail(p, "witness: the name is missing or not a key name");
    if (ring->n_witnesses == PARLEY__LOG_WITNESSES_MAX)
        return s_fail(p, "witness %s: more than %d witnesses", name,
                      PARLEY__LOG_WITNESSES_MAX);
    s_witness_t *w = &ring->witnesses[ring->n_witnesses];
    strcpy(w->name, name);
    int rc = s_line_key(p, "witness", name, strtok_r(NULL, " \t", save), w->pk);
    if (rc != 0)
        return rc;
    if (strtok_r(NULL, " \t", save) != NULL)
        return s_fail(p, "witness %s: more than NAME PUBKEY", name);
    for (size_t i = 0; i < ring->n_witnesses; i++)
        if (strcmp(ring->witnesses[i].name, name) == 0)
            return s_fail(p, "witness %s: name appears twice", name);
    ring->n_witnesses++;
    return 0;
}

static int
s_parse_line(s_parse_t *p, parley_keyring_t *ring, char *line)
{
    char *save = NULL;
    char *name = strtok_r(line, " \t", &save);
    if (name == NULL || name[0] == '#')
        return 0; /* blank or comment */
    if (strcmp(name, "log:") == 0)
        return s_parse_log(p, ring, &save);
    if (strcmp(name, "witness:") == 0)
        return s_parse_witness(p, ring, &save);
    if (!parley_slug_valid(name))
        return s_fail(p, "signer name \"%s\" is not a slug", name);
    char *key = strtok_r(NULL, " \t", &save);
    if (key == NULL)
        return s_fail(p, "signer %s: missing public key", name);

    s_signer_t *s = &ring->signers[ring->n];
    memset(s, 0, sizeof(*s));
    ring->n++; /* counted now so destroy frees partial lists */
    strcpy(s->name, name);
    if (parley_pubkey_parse(key, s->pk) != 0)
        return s_fail(p, "signer %s: public key is not base64 of 32 bytes", name);
    /* A small-order or non-canonical key is no one's key: with it, one
     * forged signature can verify for many messages. Never trust it. */
    if (crypto_core_ed25519_is_valid_point(s->pk) != 1)
        return s_fail(p, "signer %s: public key is not a valid Ed25519 key "
                         "(small order or non-canonical encoding)",
                      name);
    for (size_t i = 0; i + 1 < ring->n; i++) {
        if (strcmp(ring->signers[i].name, name) == 0)
            return s_fail(p, "signer %s: name appears twice", name);
        if (memcmp(ring->signers[i].pk, s->pk, sizeof(s->pk)) == 0)
            return s_fail(p, "signer %s: key already listed as %s", name,
                          ring->signers[i].name);
    }
    int seen_neg = 0, seen_party = 0, seen_phase = 0, rc;
    for (char *opt = strtok_r(NULL, " \t", &save); opt != NULL;
         opt = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(opt, '=');
        if (eq == NULL)
            return s_fail(p, "signer %s: \"%s\" is not key=value", name, opt);
        *eq = '\0';
        char *val = eq + 1;
        if (strcmp(opt, "negotiations") == 0 && !seen_neg++)
            rc = s_parse_slugs(p, "negotiations", val, &s->negotiations);
        else if (strcmp(opt, "parties") == 0 && !seen_party++)
            rc = s_parse_slugs(p, "parties", val, &s->parties);
        else if (strcmp(opt, "phases") == 0 && !seen_phase++)
            rc = s_parse_phases(p, val, s->phases);
        else
            return s_fail(p, "signer %s: unknown or repeated option \"%s\"",
                          name, opt);
        if (rc != 0)
            return rc;
    }
    if (!seen_neg || !seen_party || !seen_phase)
        return s_fail(p, "signer %s: needs negotiations=, parties= and "
                         "phases= (use * for any)",
                      name);
    return 0;
}

parley_keyring_t *
parley_keyring_parse(const char *text, size_t len, char *errbuf, size_t errlen)
{
    s_parse_t p = { errbuf, errlen, 0 };
    int rc = 0;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (text == NULL) {
        errno = -PARLEY_EARG;
        return NULL;
    }
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    /* At most one log or witness per "log:" or "witness:" in the text. */
    size_t logs = 0, witnesses = 0;
    for (size_t i = 0; i + 4 <= len; i++) {
        logs += memcmp(text + i, "log:", 4) == 0;
        witnesses += i + 8 <= len && memcmp(text + i, "witness:", 8) == 0;
    }
    parley_keyring_t *ring = calloc(1, sizeof(*ring));
    char *line = malloc(len + 1);
    if (ring == NULL || line == NULL
        || (ring->signers = calloc(lines, sizeof(*ring->signers))) == NULL
        || (logs > 0 && (ring->logs = calloc(logs, sizeof(*ring->logs))) == NULL)
        || (witnesses > 0
            && (ring->witnesses = calloc(witnesses, sizeof(*ring->witnesses)))
                   == NULL)) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t start = 0; start < len || (start == len && rc == 0);) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        p.line++;
        size_t n = end - start;
        if (n > 0 && text[end - 1] == '\r')
            n--;
        memcpy(line, text + start, n);
        line[n] = '\0';
        if (memchr(text + start, '\0', n) != NULL) {
            rc = s_fail(&p, "NUL byte in line");
            break;
        }
        if ((rc = s_parse_line(&p, ring, line)) != 0)
            break;
        if (end >= len)
            break;
        start = end + 1;
    }
    for (size_t i = 0; rc == 0 && ring != NULL && i < ring->n_logs; i++)
        if (ring->logs[i].witnesses > ring->n_witnesses) {
            if (errbuf != NULL && errlen > 0)
                snprintf(errbuf, errlen,
                         "log %s asks for %u witnesses but the keyring names %zu",
                         ring->logs[i].origin, ring->logs[i].witnesses,
                         ring->n_witnesses);
            rc = PARLEY_EKEYRING;
        }
out:
    free(line);
    if (rc != 0) {
        parley_keyring_destroy(&ring);
        errno = -rc;
        return NULL;
    }
    return ring;
}

parley_keyring_t *
parley_keyring_load(const char *path, char *errbuf, size_t errlen)
{
    char inner[512];
    struct stat st;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    if (fstat(fd, &st) != 0 || st.st_size > 16 * 1024 * 1024
        || (text = malloc((size_t)st.st_size + 1)) == NULL) {
        int e = errno != 0 ? errno : EFBIG;
        close(fd);
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, text + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    parley_keyring_t *ring = parley_keyring_parse(text, len, inner, sizeof(inner));
    int e = errno;
    free(text);
    if (ring == NULL && errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s: %s", path, inner);
    errno = e;
    return ring;
}

int
parley__keyring_logpolicy(const parley_keyring_t *ring, const char *origin,
                          parley__logpolicy_t *out)
{
    if (ring == NULL || ring->n_logs == 0)
        return -ENOENT;
    const s_log_t *l = NULL;
    if (origin == NULL) {
        if (ring->n_logs > 1)
            return PARLEY_EARG;
        l = &ring->logs[0];
    } else {
        for (size_t i = 0; i < ring->n_logs && l == NULL; i++)
            if (strcmp(ring->logs[i].origin, origin) == 0)
                l = &ring->logs[i];
        if (l == NULL)
            return -ENOENT;
    }
    memset(out, 0, sizeof(*out));
    strcpy(out->origin, l->origin);
    memcpy(out->pk, l->pk, sizeof(out->pk));
    out->need = l->witnesses;
    out->max_staleness_ms = l->max_staleness_ms;
    out->n_witnesses = ring->n_witnesses;
    for (size_t i = 0; i < ring->n_witnesses; i++) {
        strcpy(out->witness[i].name, ring->witnesses[i].name);
        memcpy(out->witness[i].pk, ring->witnesses[i].pk, PARLEY_PUBLICKEY_BYTES);
    }
    return 0;
}
