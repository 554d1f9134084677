/*
 * buf.c - the growing buffer.
 */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Make room for n more bytes and a NUL. */
static int
s_room(gw_buf_t *b, size_t n)
{
    if (b->err != 0)
        return b->err;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap > 0 ? b->cap : 256;
    while (cap < b->len + n + 1) {
        if (cap > ((size_t)-1) / 2)
            return b->err = -ENOMEM;
        cap *= 2;
    }
    char *grown = realloc(b->data, cap);
    if (grown == NULL)
        return b->err = -ENOMEM;
    b->data = grown;
    b->cap = cap;
    return 0;
}

int
gw_buf_add(gw_buf_t *b, const void *data, size_t n)
{
    int rc = s_room(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
gw_buf_str(gw_buf_t *b, const char *s)
{
    return gw_buf_add(b, s, strlen(s));
}

int
gw_buf_printf(gw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return b->err = -ENOMEM;
    int rc = s_room(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *
gw_buf_take(gw_buf_t *b, size_t *len)
{
    char *data = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
    return data;
}

void
gw_buf_free(gw_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}
