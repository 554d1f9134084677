/*
 * validate.c - the schema rules of an update, and the names of its enums.
 *
 * Both sides run the same rules: publishers before they sign (so a bad
 * update never leaves the process), parleyd before it stores, subscribers
 * when they re-verify.
 */
#include "types.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const s_status_names[] = {
    [PARLEY_STATUS_PROPOSED] = "proposed",
    [PARLEY_STATUS_TALKS_SCHEDULED] = "talks_scheduled",
    [PARLEY_STATUS_TALKS_IN_PROGRESS] = "talks_in_progress",
    [PARLEY_STATUS_AWAITING_RESPONSE] = "awaiting_response",
    [PARLEY_STATUS_COUNTER_PROPOSAL] = "counter_proposal",
    [PARLEY_STATUS_AGREED_IN_PRINCIPLE] = "agreed_in_principle",
    [PARLEY_STATUS_SIGNED] = "signed",
    [PARLEY_STATUS_IN_EFFECT] = "in_effect",
    [PARLEY_STATUS_COMPLETED] = "completed",
    [PARLEY_STATUS_STALLED] = "stalled",
    [PARLEY_STATUS_SUSPENDED] = "suspended",
    [PARLEY_STATUS_COLLAPSED] = "collapsed",
};
#define S_NSTATUS (sizeof(s_status_names) / sizeof(s_status_names[0]))

static const char *const s_kind_names[] = {
    [PARLEY_KIND_UPDATE] = "update",
    [PARLEY_KIND_CORRECTION] = "correction",
    [PARLEY_KIND_RETRACTION] = "retraction",
};
#define S_NKIND (sizeof(s_kind_names) / sizeof(s_kind_names[0]))

const char *
parley_status_name(parley_status_t s)
{
    if ((unsigned)s >= S_NSTATUS)
        return NULL;
    return s_status_names[s]; /* NULL for UNSPECIFIED */
}

int
parley_status_parse(const char *name, parley_status_t *out)
{
    for (size_t i = 1; i < S_NSTATUS; i++) {
        if (strcmp(name, s_status_names[i]) == 0) {
            *out = (parley_status_t)i;
            return 0;
        }
    }
    return PARLEY_EINVALID;
}

const char *
parley_kind_name(parley_kind_t k)
{
    if ((unsigned)k >= S_NKIND)
        return NULL;
    return s_kind_names[k];
}

int
parley_kind_parse(const char *name, parley_kind_t *out)
{
    for (size_t i = 0; i < S_NKIND; i++) {
        if (strcmp(name, s_kind_names[i]) == 0) {
            *out = (parley_kind_t)i;
            return 0;
        }
    }
    return PARLEY_EINVALID;
}

int64_t
parley_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
parley_slug_valid(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (n >= PARLEY_SLUG_MAX || !(alnum || (n > 0 && c == '-')))
            return 0;
    }
    return n > 0;
}

size_t
parley__utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0u) != 0x80u)
            return 0;
        v = (v << 6) | (s[k] & 0x3Fu);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/*
 * Well-formed UTF-8 as RFC 3629 defines it: shortest forms only, no
 * surrogates, nothing above U+10FFFF. NUL is refused too: the fields are
 * C strings, and a NUL would hide what follows it from readers.
 */
int
parley__utf8_valid(const char *str, size_t max)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t n = strlen(str);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n;) {
        /* Runs of ASCII (most text) eight bytes at a time: strlen() has
         * already ruled out a NUL before n. */
        uint64_t w;
        while (n - i >= sizeof(w)) {
            memcpy(&w, s + i, sizeof(w));
            if ((w & 0x8080808080808080ull) != 0)
                break;
            i += sizeof(w);
        }
        if (i == n)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = parley__utf8_next(s + i, n - i, &cp);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

/* Fixed-size fields must hold a NUL within their bounds. */
static int
s_terminated(const char *field, size_t size)
{
    return memchr(field, '\0', size) != NULL;
}

int
parley__invalid(char *detail, size_t cap, const char *fmt, ...)
{
    if (detail != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, cap, fmt, ap);
        va_end(ap);
    }
    return PARLEY_EINVALID;
}

/* Check one text field: terminated, UTF-8, at most max bytes. */
static int
s_check_text(const char *name, const char *field, size_t size, size_t max,
             char *detail, size_t cap)
{
    if (!s_terminated(field, size) || strlen(field) > max)
        return parley__invalid(detail, cap, "%s: longer than %zu bytes", name, max);
    if (!parley__utf8_valid(field, max))
        return parley__invalid(detail, cap, "%s: not valid UTF-8", name);
    return 0;
}

/* The rules of the negotiation and the parties. */
static int
s_check_names(const parley_update_t *u, char *detail, size_t cap)
{
    if (!s_terminated(u->negotiation, sizeof(u->negotiation))
        || u->negotiation[0] == '\0')
        return parley__invalid(detail, cap, "negotiation: required");
    if (!parley_slug_valid(u->negotiation))
        return parley__invalid(detail, cap,
                         "negotiation: \"%s\" is not a slug ("
                         PARLEY__SLUG_RULE ")",
                         u->negotiation);
    if (u->n_parties < 1)
        return parley__invalid(detail, cap, "parties: at least one is required");
    if (u->n_parties > PARLEY_PARTIES_MAX)
        return parley__invalid(detail, cap, "parties: more than %d",
                         PARLEY_PARTIES_MAX);
    for (size_t i = 0; i < u->n_parties; i++) {
        if (!s_terminated(u->parties[i], sizeof(u->parties[i]))
            || !parley_slug_valid(u->parties[i]))
            return parley__invalid(detail, cap,
                                   "parties: party %zu \"%.32s\" is not a "
                                   "slug (" PARLEY__SLUG_RULE ")",
                                   i + 1,
                                   s_terminated(u->parties[i],
                                                sizeof(u->parties[i]))
                                       ? u->parties[i]
                                       : "");
        for (size_t j = 0; j < i; j++)
            if (strcmp(u->parties[i], u->parties[j]) == 0)
                return parley__invalid(detail, cap,
                                 "parties: \"%s\" is named twice",
                                 u->parties[i]);
    }
    return 0;
}

/* The rules of kind and references. */
static int
s_check_references(const parley_update_t *u, char *detail, size_t cap)
{
    if (parley_kind_name(u->kind) == NULL)
        return parley__invalid(detail, cap, "kind: unknown (%d)", (int)u->kind);
    if (u->n_references > PARLEY_REFERENCES_MAX)
        return parley__invalid(detail, cap, "references: more than %d",
                         PARLEY_REFERENCES_MAX);
    if (u->kind != PARLEY_KIND_UPDATE && u->n_references == 0)
        return parley__invalid(detail, cap,
                         "references: a %s needs the seq it replaces",
                         parley_kind_name(u->kind));
    if (u->kind == PARLEY_KIND_UPDATE && u->n_references > 0)
        return parley__invalid(detail, cap, "references: only for corrections "
                                      "and retractions");
    for (size_t i = 0; i < u->n_references; i++)
        if (u->references[i] == 0 || u->references[i] > (uint64_t)INT64_MAX)
            return parley__invalid(detail, cap, "references: %llu is not a seq",
                             (unsigned long long)u->references[i]);
    return 0;
}

int
parley_update_validate(const parley_update_t *u, char *detail, size_t cap)
{
    int rc;
    if (detail != NULL && cap > 0)
        detail[0] = '\0';
    if (u == NULL)
        return parley__invalid(detail, cap, "no update");
    if ((rc = s_check_names(u, detail, cap)) < 0)
        return rc;
    if (u->phase > PARLEY_PHASE_MAX)
        return parley__invalid(detail, cap, "phase: %u is over 255",
                         (unsigned)u->phase);
    if (u->status == PARLEY_STATUS_UNSPECIFIED)
        return parley__invalid(detail, cap, "status: required");
    if (parley_status_name(u->status) == NULL)
        return parley__invalid(detail, cap, "status: unknown (%d)", (int)u->status);
    if ((rc = s_check_references(u, detail, cap)) < 0)
        return rc;
    if (s_terminated(u->headline, sizeof(u->headline))
        && u->headline[0] == '\0')
        return parley__invalid(detail, cap, "headline: required (1-%d bytes)",
                         PARLEY_HEADLINE_MAX);
    if ((rc = s_check_text("headline", u->headline, sizeof(u->headline),
                           PARLEY_HEADLINE_MAX, detail, cap)) < 0
        || (rc = s_check_text("body", u->body, sizeof(u->body),
                              PARLEY_BODY_MAX, detail, cap)) < 0
        || (rc = s_check_text("location", u->location, sizeof(u->location),
                              PARLEY_LOCATION_MAX, detail, cap)) < 0)
        return rc;
    if (u->issued_at <= 0)
        return parley__invalid(detail, cap, "issued_at: required (unix ms)");
    if (u->signer_seq == 0 || u->signer_seq > (uint64_t)INT64_MAX)
        return parley__invalid(detail, cap, "signer_seq: %s",
                         u->signer_seq == 0 ? "required" : "over INT64_MAX");
    if (u->scheduled_at < 0)
        return parley__invalid(detail, cap, "scheduled_at: negative");
    if (u->expires_at != 0 && u->expires_at <= u->issued_at)
        return parley__invalid(detail, cap, "expires_at: not after issued_at");
    return 0;
}
