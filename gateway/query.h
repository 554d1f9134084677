/*
 * query.h - what a request asks for, from its query string: filters
 * (negotiation, party, phase), a seq range (since, until), a page size
 * (limit), and the Last-Event-ID of a resuming event stream.
 *
 * libmicrohttpd splits and percent-decodes the query string; the values
 * are checked here, strictly: an unknown parameter, a value that is not a
 * slug or a number in range, or too many values is a 400 with a sentence
 * saying which. Values of one parameter are alternatives, given either
 * repeated (party=us&party=egypt) or comma-separated (party=us,egypt);
 * different parameters must all match, as in `parley sub`.
 */
#ifndef GW_QUERY_H
#define GW_QUERY_H

#include "item.h"
#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Values of one list at most, as in libparley's filters. */
#define GW_FILTER_VALUES_MAX 64

/* A filter; empty lists match anything. Lists are allocated as they
 * grow, so an empty filter costs nothing beyond the struct. */
typedef struct gw_filter {
    size_t n_negotiations, n_parties, n_phases;
    char (*negotiations)[PARLEY_SLUG_MAX + 1];
    char (*parties)[PARLEY_SLUG_MAX + 1];
    uint32_t *phases;
} gw_filter_t;

/* Free a filter's lists; it is empty again. */
void gw_filter_free(gw_filter_t *f);

/* 1 if the filter has no values (it matches everything). */
bool gw_filter_empty(const gw_filter_t *f);

/* 1 if the update item matches the filter (gaps match every filter). */
bool gw_filter_match(const gw_filter_t *f, const gw_item_t *it);

/* 1 if one cell of the state (negotiation, party, phase) matches. */
bool gw_filter_match_cell(const gw_filter_t *f, const char *negotiation,
                          const char *party, uint32_t phase);

/* Copy src into dst (dst empty). Returns 0 or -ENOMEM. */
int gw_filter_copy(gw_filter_t *dst, const gw_filter_t *src);

/*
 * The same filter as libparley's, for a replay (NULL for an empty one).
 * Returns 0 with *out set (the caller's, parley_filter_destroy()), or
 * -ENOMEM.
 */
int gw_filter_to_parley(const gw_filter_t *f, parley_filter_t **out);

/* Parameters a route takes (a mask for gw_query_init()). */
#define GW_Q_FILTER 0x1u /* negotiation, party, phase */
#define GW_Q_SINCE 0x2u  /* since */
#define GW_Q_UNTIL 0x4u  /* until */
#define GW_Q_LIMIT 0x8u  /* limit */

typedef struct gw_query {
    unsigned allowed;     /* GW_Q_* the route takes */
    gw_filter_t filter;
    bool has_since, has_until, has_limit;
    uint64_t since, until;
    unsigned limit;
    int err;              /* 0, or the first error: -EINVAL, -ENOMEM */
    char detail[160];     /* what was wrong, for the 400 answer */
} gw_query_t;

/* Start an empty query for a route taking the GW_Q_* in allowed. */
void gw_query_init(gw_query_t *q, unsigned allowed);

/* Free what q holds. */
void gw_query_free(gw_query_t *q);

/*
 * Add one parameter (value NULL when the query string had "key" without
 * "="). After the first error the rest are ignored; q->err and q->detail
 * keep it.
 *
 * Returns:   0, -EINVAL (unknown or repeated parameter, bad value, too
 *            many values), -ENOMEM.
 */
int gw_query_arg(gw_query_t *q, const char *key, const char *value);

/*
 * A seq as the API takes it: decimal digits, 1 to INT64_MAX (0 too when
 * zero_ok), no sign, no spaces. Returns 0 or -EINVAL.
 */
int gw_parse_seq(const char *s, bool zero_ok, uint64_t *out);

/*
 * The value of a Last-Event-ID header: the seq of the last event the
 * client had (0 allowed: from the start). Surrounding spaces are allowed.
 * Returns 0 or -EINVAL.
 */
int gw_query_last_event_id(const char *value, uint64_t *out);

#endif /* GW_QUERY_H */
