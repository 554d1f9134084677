/*
 * options.h - reading the options structs of the public API, and api
 * endpoint lists (library-internal).
 */
#ifndef PARLEY_OPTIONS_H
#define PARLEY_OPTIONS_H

#include "parley.h"

#include <stddef.h>

/* Endpoints of one list at most, and bytes of one endpoint. */
#define PARLEY__ENDPOINTS_MAX 16
#define PARLEY__ENDPOINT_CHARS 255

/*
 * Copy a caller's options struct (opt, whose first field is its size)
 * into out, a struct of known bytes as this library knows it: fields the
 * caller's (older) struct lacks are 0, and fields a newer struct has
 * beyond known must be 0. opt NULL gives all zeros. out->size is set to
 * known.
 *
 * Returns:   0, or PARLEY_EARG (a size below one field, or a field this
 *            library does not know that is not 0).
 */
int parley__options_read(const void *opt, size_t known, void *out);

/*
 * The timeout an options field stands for: 0 -> PARLEY_TIMEOUT_DEFAULT_MS,
 * -1 -> -1 (no limit), > 0 as it is.
 *
 * Returns:   the timeout, or PARLEY_EARG for a value below -1.
 */
int parley__options_timeout(int field);

/* An api endpoint list, as parsed. */
typedef struct parley__endpoints {
    char *v[PARLEY__ENDPOINTS_MAX]; /* heap strings */
    size_t n;                       /* entries used, >= 1 once parsed */
    size_t cur;                     /* index of the endpoint in use */
} parley__endpoints_t;

/*
 * Parse "ep[,ep]..." (white space around an entry is ignored). A NULL
 * list means $PARLEY_SERVER if set and not empty, else
 * PARLEY_DEFAULT_SERVER. Every entry must be transport://address.
 *
 * Returns:   0, PARLEY_EARG (an empty entry, no "://", too long, more than
 *            PARLEY__ENDPOINTS_MAX) or -ENOMEM. On failure e is empty.
 */
int parley__endpoints_parse(parley__endpoints_t *e, const char *list);

/* Free the strings; e can be parsed into again. */
void parley__endpoints_free(parley__endpoints_t *e);

/* The endpoint in use. */
const char *parley__endpoints_current(const parley__endpoints_t *e);

/* Move to the next endpoint (the first after the last) and return it. */
const char *parley__endpoints_next(parley__endpoints_t *e);

#endif /* PARLEY_OPTIONS_H */
