/*
 * options.c - options structs that carry their size, and endpoint lists.
 *
 * An options struct starts with its size, so the library knows which
 * fields the caller's header had: a program built against an older
 * header passes a shorter struct (the missing fields take their
 * defaults), one built against a newer header a longer one (accepted when
 * the fields this library does not know are 0, so nothing the caller
 * asked for is silently ignored).
 */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
parley__options_read(const void *opt, size_t known, void *out)
{
    memset(out, 0, known);
    if (opt != NULL) {
        size_t size;
        memcpy(&size, opt, sizeof(size));
        if (size < 2 * sizeof(size_t))
            return PARLEY_EARG; /* not even one field beyond the size */
        const unsigned char *tail = (const unsigned char *)opt;
        for (size_t i = known; i < size; i++)
            if (tail[i] != 0)
                return PARLEY_EARG;
        memcpy(out, opt, size < known ? size : known);
    }
    memcpy(out, &known, sizeof(known));
    return 0;
}

int
parley__options_timeout(int field)
{
    if (field == 0)
        return PARLEY_TIMEOUT_DEFAULT_MS;
    if (field < -1)
        return PARLEY_EARG;
    return field;
}

void
parley__endpoints_free(parley__endpoints_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    memset(e, 0, sizeof(*e));
}

/* Is c white space around a list entry? */
static int
s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
parley__endpoints_parse(parley__endpoints_t *e, const char *list)
{
    memset(e, 0, sizeof(*e));
    if (list == NULL) {
        const char *env = getenv("PARLEY_SERVER");
        list = env != NULL && *env != '\0' ? env : PARLEY_DEFAULT_SERVER;
    }
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && s_space(*a))
            a++;
        while (b > a && s_space(b[-1]))
            b--;
        size_t n = (size_t)(b - a);
        const char *sep = n > 3 ? memchr(a, ':', n) : NULL;
        if (n == 0 || n > PARLEY__ENDPOINT_CHARS || sep == NULL
            || sep == a || (size_t)(b - sep) < 4 || sep[1] != '/'
            || sep[2] != '/' || e->n == PARLEY__ENDPOINTS_MAX) {
            parley__endpoints_free(e);
            return PARLEY_EARG;
        }
        if ((e->v[e->n] = strndup(a, n)) == NULL) {
            parley__endpoints_free(e);
            return -ENOMEM;
        }
        e->n++;
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

const char *
parley__endpoints_current(const parley__endpoints_t *e)
{
    return e->n > 0 ? e->v[e->cur] : NULL;
}

const char *
parley__endpoints_next(parley__endpoints_t *e)
{
    if (e->n == 0)
        return NULL;
    e->cur = (e->cur + 1) % e->n;
    return e->v[e->cur];
}
