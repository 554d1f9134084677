/*
 * topic.c - feed topics of an update, and the subscriptions of a filter.
 *
 * Every topic ends in '/', so ZeroMQ's prefix match is exact: a
 * subscription to "party/us/" can never match "party/usa/".
 */
#include "facts.h"
#include "parley.h"
#include "types.h"

#include <stdio.h>
#include <string.h>

size_t
parley_topics(const parley_update_t *u, char out[][PARLEY_TOPIC_MAX],
              size_t cap)
{
    if (u == NULL)
        return 0;
    /* One naming for the library and the daemon's feed, which works from
     * the facts of a logged record. */
    parley__facts_t f;
    parley__facts_of_update(&f, NULL, u);
    if (cap >= PARLEY_TOPICS_MAX)
        return parley__facts_topics(&f, out);
    char all[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    size_t n = parley__facts_topics(&f, all);
    if (cap > 0)
        memcpy(out, all, (n < cap ? n : cap) * sizeof(all[0]));
    return n;
}

int
parley_filter_topics(const parley_filter_t *f, char out[][PARLEY_TOPIC_MAX],
                     size_t cap)
{
    static const parley_filter_t empty = { 0 };
    if (f == NULL)
        f = &empty;
    /* Values of a filter from parley_filter_new() were checked when they
     * were added; one built by library code is checked here. */
    for (size_t i = 0; i < f->n_negotiations; i++)
        if (!parley_slug_valid(f->negotiations[i]))
            return PARLEY_EARG;
    for (size_t i = 0; i < f->n_parties; i++)
        if (!parley_slug_valid(f->parties[i]))
            return PARLEY_EARG;
    for (size_t i = 0; i < f->n_phases; i++)
        if (f->phases[i] > PARLEY_PHASE_MAX)
            return PARLEY_EARG;

    /*
     * Subscribe on the dimension with the fewest values: every update that
     * matches the whole filter carries one of them, so nothing is missed,
     * and the rest of the filter is applied locally. Parties win ties
     * because they are usually the most selective.
     */
    size_t best = 0;
    enum { NONE, PARTY, PHASE, NEG } dim = NONE;
    if (f->n_parties > 0) {
        dim = PARTY;
        best = f->n_parties;
    }
    if (f->n_phases > 0 && (dim == NONE || f->n_phases < best)) {
        dim = PHASE;
        best = f->n_phases;
    }
    if (f->n_negotiations > 0 && (dim == NONE || f->n_negotiations < best)) {
        dim = NEG;
        best = f->n_negotiations;
    }
    if (dim == NONE)
        best = 1;
    if (best > cap)
        return PARLEY_EARG;
    for (size_t i = 0; i < best; i++) {
        switch (dim) {
        case NONE:
            snprintf(out[i], PARLEY_TOPIC_MAX, "all/");
            break;
        case PARTY:
            snprintf(out[i], PARLEY_TOPIC_MAX, "party/%s/", f->parties[i]);
            break;
        case PHASE:
            snprintf(out[i], PARLEY_TOPIC_MAX, "phase/%u/",
                     (unsigned)f->phases[i]);
            break;
        case NEG:
            snprintf(out[i], PARLEY_TOPIC_MAX, "neg/%s/", f->negotiations[i]);
            break;
        }
    }
    return (int)best;
}

/* Does t (len bytes) start with prefix and end in '/'? Then *mid and
 * *mid_len are what lies between. */
static bool
s_between(const char *t, size_t len, const char *prefix, const char **mid,
          size_t *mid_len)
{
    size_t n = strlen(prefix);
    if (len <= n + 1 || memcmp(t, prefix, n) != 0 || t[len - 1] != '/')
        return false;
    *mid = t + n;
    *mid_len = len - n - 1;
    return true;
}

bool
parley__topic_whole(const char *t, size_t len)
{
    const char *mid;
    size_t n;
    char value[PARLEY_SLUG_MAX + 1];
    if (len == 4 && memcmp(t, "all/", 4) == 0)
        return true;
    if (s_between(t, len, "neg/", &mid, &n)
        || s_between(t, len, "party/", &mid, &n)) {
        if (n > PARLEY_SLUG_MAX || memchr(mid, '\0', n) != NULL)
            return false;
        memcpy(value, mid, n);
        value[n] = '\0';
        return parley_slug_valid(value);
    }
    if (s_between(t, len, "phase/", &mid, &n)) {
        /* decimal 0-255, no leading zero, as parley__facts_topics() writes */
        if (n > 3 || (n > 1 && mid[0] == '0'))
            return false;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
            if (mid[i] < '0' || mid[i] > '9')
                return false;
            v = v * 10 + (unsigned)(mid[i] - '0');
        }
        return v <= PARLEY_PHASE_MAX;
    }
    return false;
}
