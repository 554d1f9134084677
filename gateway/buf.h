/*
 * buf.h - a growing byte buffer for answers built piece by piece.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>

typedef struct gw_buf {
    char *data; /* NUL-terminated when not NULL */
    size_t len;
    size_t cap;
    int err;    /* -ENOMEM once an append failed; later appends do nothing */
} gw_buf_t;

#define GW_BUF_INIT { NULL, 0, 0, 0 }

/* Append n bytes. Returns 0 or -ENOMEM (also kept in b->err). */
int gw_buf_add(gw_buf_t *b, const void *data, size_t n);

/* Append a NUL-terminated string. Returns as gw_buf_add(). */
int gw_buf_str(gw_buf_t *b, const char *s);

/* Append printf-style. Returns as gw_buf_add(). */
int gw_buf_printf(gw_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Give the bytes away: returns data (the caller frees it), b is empty. */
char *gw_buf_take(gw_buf_t *b, size_t *len);

/* Free the bytes; b is empty again. */
void gw_buf_free(gw_buf_t *b);

#endif /* GW_BUF_H */
