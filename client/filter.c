/*
 * filter.c - the filter object: lists of negotiations, parties and
 * phases, and whether an update matches them.
 *
 * A filter from parley_filter_new() lives in a parley__filterbuf_t that
 * owns its values; the parley_filter_t inside it is what every matching
 * and encoding function reads, the same view library code builds on the
 * stack over values it borrows.
 */
#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

parley_filter_t *
parley_filter_new(void)
{
    parley__filterbuf_t *fb = calloc(1, sizeof(*fb));
    if (fb == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (parley__filterbuf_set(fb, NULL) < 0) {
        free(fb);
        errno = -PARLEY_EARG;
        return NULL;
    }
    fb->filter.own = fb;
    return &fb->filter;
}

void
parley_filter_destroy(parley_filter_t **f)
{
    if (f == NULL || *f == NULL)
        return;
    free((*f)->own);
    *f = NULL;
}

/* Add a slug to one list of fb unless it is there. */
static int
s_add_slug(char (*vals)[PARLEY_SLUG_MAX + 1], const char **ptrs,
           size_t *n, const char *slug)
{
    if (slug == NULL)
        return PARLEY_EARG;
    if (!parley_slug_valid(slug))
        return PARLEY_EINVALID;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(vals[i], slug) == 0)
            return 0;
    if (*n >= PARLEY__FILTER_VALUES_MAX)
        return -ENOBUFS;
    strcpy(vals[*n], slug);
    ptrs[*n] = vals[*n];
    (*n)++;
    return 0;
}

int
parley_filter_add_negotiation(parley_filter_t *f, const char *slug)
{
    if (f == NULL || f->own == NULL)
        return PARLEY_EARG;
    parley__filterbuf_t *fb = f->own;
    return s_add_slug(fb->negotiations, fb->neg_ptrs,
                      &fb->filter.n_negotiations, slug);
}

int
parley_filter_add_party(parley_filter_t *f, const char *slug)
{
    if (f == NULL || f->own == NULL)
        return PARLEY_EARG;
    parley__filterbuf_t *fb = f->own;
    return s_add_slug(fb->parties, fb->party_ptrs, &fb->filter.n_parties,
                      slug);
}

int
parley_filter_add_phase(parley_filter_t *f, uint32_t phase)
{
    if (f == NULL || f->own == NULL)
        return PARLEY_EARG;
    parley__filterbuf_t *fb = f->own;
    if (phase > PARLEY_PHASE_MAX)
        return PARLEY_EINVALID;
    for (size_t i = 0; i < fb->filter.n_phases; i++)
        if (fb->phases[i] == phase)
            return 0;
    if (fb->filter.n_phases >= PARLEY__FILTER_VALUES_MAX)
        return -ENOBUFS;
    fb->phases[fb->filter.n_phases++] = phase;
    return 0;
}

void
parley__request_set_filters(parley__request_t *req,
                            const parley__filterbuf_t *fs, size_t n)
{
    req->any_of = NULL;
    req->n_any_of = 0;
    if (n == 1)
        req->filter = fs[0];
    else if (n > 1) {
        req->any_of = fs;
        req->n_any_of = n;
    }
}

int
parley__request_match(const parley__request_t *req, const parley_update_t *u)
{
    if (!parley_filter_match(&req->filter.filter, u))
        return 0;
    if (req->n_any_of == 0)
        return 1;
    for (size_t i = 0; i < req->n_any_of; i++)
        if (parley_filter_match(&req->any_of[i].filter, u))
            return 1;
    return 0;
}

int
parley__filter_match_entry(const parley_filter_t *f, const char *negotiation,
                           const char *party, uint32_t phase)
{
    if (f == NULL)
        return 1;
    int hit = f->n_negotiations == 0;
    for (size_t i = 0; i < f->n_negotiations && !hit; i++)
        hit = strcmp(f->negotiations[i], negotiation) == 0;
    if (!hit)
        return 0;
    hit = f->n_parties == 0;
    for (size_t i = 0; i < f->n_parties && !hit; i++)
        hit = strcmp(f->parties[i], party) == 0;
    if (!hit)
        return 0;
    hit = f->n_phases == 0;
    for (size_t i = 0; i < f->n_phases && !hit; i++)
        hit = f->phases[i] == phase;
    return hit;
}

int
parley__request_match_entry(const parley__request_t *req,
                            const char *negotiation, const char *party,
                            uint32_t phase)
{
    if (!parley__filter_match_entry(&req->filter.filter, negotiation, party,
                                    phase))
        return 0;
    if (req->n_any_of == 0)
        return 1;
    for (size_t i = 0; i < req->n_any_of; i++)
        if (parley__filter_match_entry(&req->any_of[i].filter, negotiation,
                                       party, phase))
            return 1;
    return 0;
}

int
parley_filter_match(const parley_filter_t *f, const parley_update_t *u)
{
    if (f == NULL)
        return 1;
    if (f->n_negotiations > 0) {
        int hit = 0;
        for (size_t i = 0; i < f->n_negotiations && !hit; i++)
            hit = strcmp(f->negotiations[i], u->negotiation) == 0;
        if (!hit)
            return 0;
    }
    if (f->n_parties > 0) {
        int hit = 0;
        for (size_t i = 0; i < f->n_parties && !hit; i++)
            for (size_t j = 0; j < u->n_parties && !hit; j++)
                hit = strcmp(f->parties[i], u->parties[j]) == 0;
        if (!hit)
            return 0;
    }
    if (f->n_phases > 0) {
        int hit = 0;
        for (size_t i = 0; i < f->n_phases && !hit; i++)
            hit = f->phases[i] == u->phase;
        if (!hit)
            return 0;
    }
    return 1;
}
