/*
 * query.c - query parameters, checked, and the filters they make.
 */
#include "query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
gw_filter_free(gw_filter_t *f)
{
    free(f->negotiations);
    free(f->parties);
    free(f->phases);
    memset(f, 0, sizeof(*f));
}

bool
gw_filter_empty(const gw_filter_t *f)
{
    return f->n_negotiations == 0 && f->n_parties == 0 && f->n_phases == 0;
}

static bool
s_has_slug(char (*list)[PARLEY_SLUG_MAX + 1], size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], v) == 0)
            return true;
    return false;
}

static bool
s_has_phase(const uint32_t *list, size_t n, uint32_t v)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == v)
            return true;
    return false;
}

bool
gw_filter_match(const gw_filter_t *f, const gw_item_t *it)
{
    if (f == NULL || it->type != GW_ITEM_UPDATE)
        return true;
    if (f->n_negotiations > 0
        && !s_has_slug(f->negotiations, f->n_negotiations, it->negotiation))
        return false;
    if (f->n_phases > 0 && !s_has_phase(f->phases, f->n_phases, it->phase))
        return false;
    if (f->n_parties == 0)
        return true;
    for (size_t i = 0; i < it->n_parties; i++)
        if (s_has_slug(f->parties, f->n_parties, it->parties[i]))
            return true;
    return false;
}

bool
gw_filter_match_cell(const gw_filter_t *f, const char *negotiation,
                     const char *party, uint32_t phase)
{
    return f == NULL
           || ((f->n_negotiations == 0
                || s_has_slug(f->negotiations, f->n_negotiations, negotiation))
               && (f->n_parties == 0
                   || s_has_slug(f->parties, f->n_parties, party))
               && (f->n_phases == 0
                   || s_has_phase(f->phases, f->n_phases, phase)));
}

/* Copy n elements of size sz (NULL for 0). */
static int
s_dup(void **dst, const void *src, size_t n, size_t sz)
{
    *dst = NULL;
    if (n == 0)
        return 0;
    if ((*dst = malloc(n * sz)) == NULL)
        return -ENOMEM;
    memcpy(*dst, src, n * sz);
    return 0;
}

int
gw_filter_copy(gw_filter_t *dst, const gw_filter_t *src)
{
    void *p;
    memset(dst, 0, sizeof(*dst));
    if (s_dup(&p, src->negotiations, src->n_negotiations,
              sizeof(src->negotiations[0])) < 0)
        goto fail;
    dst->negotiations = p;
    dst->n_negotiations = src->n_negotiations;
    if (s_dup(&p, src->parties, src->n_parties, sizeof(src->parties[0])) < 0)
        goto fail;
    dst->parties = p;
    dst->n_parties = src->n_parties;
    if (s_dup(&p, src->phases, src->n_phases, sizeof(src->phases[0])) < 0)
        goto fail;
    dst->phases = p;
    dst->n_phases = src->n_phases;
    return 0;
fail:
    gw_filter_free(dst);
    return -ENOMEM;
}

int
gw_filter_to_parley(const gw_filter_t *f, parley_filter_t **out)
{
    *out = NULL;
    if (f == NULL || gw_filter_empty(f))
        return 0;
    parley_filter_t *pf = parley_filter_new();
    int rc = pf != NULL ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < f->n_negotiations; i++)
        rc = parley_filter_add_negotiation(pf, f->negotiations[i]);
    for (size_t i = 0; rc == 0 && i < f->n_parties; i++)
        rc = parley_filter_add_party(pf, f->parties[i]);
    for (size_t i = 0; rc == 0 && i < f->n_phases; i++)
        rc = parley_filter_add_phase(pf, f->phases[i]);
    if (rc < 0) {
        parley_filter_destroy(&pf);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    *out = pf;
    return 0;
}

/* ------------------------------------------------------------- query */

void
gw_query_init(gw_query_t *q, unsigned allowed)
{
    memset(q, 0, sizeof(*q));
    q->allowed = allowed;
}

void
gw_query_free(gw_query_t *q)
{
    gw_filter_free(&q->filter);
}

static int
s_fail(gw_query_t *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the first error. Returns -EINVAL. */
static int
s_fail(gw_query_t *q, const char *fmt, ...)
{
    if (q->err == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(q->detail, sizeof(q->detail), fmt, ap);
        va_end(ap);
        q->err = -EINVAL;
    }
    return -EINVAL;
}

int
gw_parse_seq(const char *s, bool zero_ok, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0' || strlen(s) > 19)
        return -EINVAL;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX || (v == 0 && !zero_ok))
        return -EINVAL;
    *out = v;
    return 0;
}

int
gw_query_last_event_id(const char *value, uint64_t *out)
{
    char buf[24];
    if (value == NULL)
        return -EINVAL;
    value += strspn(value, " \t");
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, value, n);
    buf[n] = '\0';
    return gw_parse_seq(buf, true, out);
}

/* Append one value of a list parameter. */
static int
s_add(gw_query_t *q, const char *key, const char *v, size_t len)
{
    gw_filter_t *f = &q->filter;
    char val[PARLEY_SLUG_MAX + 2];
    if (len == 0)
        return s_fail(q, "%s: empty value", key);
    if (len >= sizeof(val))
        return s_fail(q, "%s: value longer than %d characters", key,
                      PARLEY_SLUG_MAX);
    memcpy(val, v, len);
    val[len] = '\0';
    if (strcmp(key, "phase") == 0) {
        uint64_t ph;
        if (len > 3 || gw_parse_seq(val, true, &ph) < 0 || ph > PARLEY_PHASE_MAX)
            return s_fail(q, "phase: \"%s\" is not a phase 0-255", val);
        if (s_has_phase(f->phases, f->n_phases, (uint32_t)ph))
            return 0;
        if (f->n_phases == GW_FILTER_VALUES_MAX)
            return s_fail(q, "phase: more than %d values", GW_FILTER_VALUES_MAX);
        uint32_t *grown = realloc(f->phases, (f->n_phases + 1) * sizeof(*grown));
        if (grown == NULL)
            return q->err = -ENOMEM;
        f->phases = grown;
        f->phases[f->n_phases++] = (uint32_t)ph;
        return 0;
    }
    bool neg = strcmp(key, "negotiation") == 0;
    char (**list)[PARLEY_SLUG_MAX + 1] = neg ? &f->negotiations : &f->parties;
    size_t *n = neg ? &f->n_negotiations : &f->n_parties;
    if (!parley_slug_valid(val))
        return s_fail(q, "%s: \"%s\" is not a slug ([a-z0-9][a-z0-9-]{0,31})",
                      key, val);
    if (s_has_slug(*list, *n, val))
        return 0;
    if (*n == GW_FILTER_VALUES_MAX)
        return s_fail(q, "%s: more than %d values", key, GW_FILTER_VALUES_MAX);
    char (*grown)[PARLEY_SLUG_MAX + 1] = realloc(*list, (*n + 1) * sizeof(**list));
    if (grown == NULL)
        return q->err = -ENOMEM;
    *list = grown;
    memcpy((*list)[(*n)++], val, len + 1);
    return 0;
}

int
gw_query_arg(gw_query_t *q, const char *key, const char *value)
{
    static const struct {
        const char *name;
        unsigned mask;
    } known[] = {
        { "negotiation", GW_Q_FILTER }, { "party", GW_Q_FILTER },
        { "phase", GW_Q_FILTER },       { "since", GW_Q_SINCE },
        { "until", GW_Q_UNTIL },        { "limit", GW_Q_LIMIT },
    };
    if (q->err != 0)
        return q->err;
    unsigned mask = 0;
    for (size_t i = 0; key != NULL && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(key, known[i].name) == 0)
            mask = known[i].mask;
    if (mask == 0 || (mask & q->allowed) == 0) {
        char shown[40];
        snprintf(shown, sizeof(shown), "%s", key != NULL ? key : "");
        for (char *p = shown; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\'
                || (unsigned char)*p >= 0x7f)
                *p = '?';
        return s_fail(q, "unknown parameter \"%s\" here", shown);
    }
    if (value == NULL)
        return s_fail(q, "%s: needs a value (%s=...)", key, key);
    if (mask == GW_Q_FILTER) {
        const char *p = value;
        for (;;) {
            size_t len = strcspn(p, ",");
            int rc = s_add(q, key, p, len);
            if (rc < 0)
                return rc;
            if (p[len] == '\0')
                return 0;
            p += len + 1;
        }
    }
    bool *has = mask == GW_Q_SINCE ? &q->has_since
                : mask == GW_Q_UNTIL ? &q->has_until : &q->has_limit;
    if (*has)
        return s_fail(q, "%s: given twice", key);
    uint64_t v;
    if (gw_parse_seq(value, false, &v) < 0)
        return s_fail(q, "%s: expected a number 1-%s", key,
                      mask == GW_Q_LIMIT ? "1000" : "9223372036854775807");
    if (mask == GW_Q_LIMIT) {
        if (v > 1000)
            return s_fail(q, "limit: expected a number 1-1000");
        q->limit = (unsigned)v;
    } else if (mask == GW_Q_SINCE) {
        q->since = v;
    } else {
        q->until = v;
    }
    *has = true;
    return 0;
}
