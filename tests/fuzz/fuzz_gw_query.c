/*
 * fuzz_gw_query.c - what parley-gateway makes of a query string and a
 * Last-Event-ID header (gateway/query.c).
 *
 * Input: the first byte picks the parameters the route takes (GW_Q_*);
 * the rest is the query as libmicrohttpd hands it over, one parameter
 * per line, "key=value" or "key" alone (value NULL). The whole input is
 * also tried as a Last-Event-ID. A query that is accepted is then used:
 * matched against updates and cells, copied, turned into libparley's
 * filter, which must agree with it.
 */
#include "fuzz.h"
#include "query.h"

#include <stdio.h>

static gw_item_t s_items[3];

static void
s_setup(void)
{
    static const char *const negs[] = { "gaza-ceasefire", "other", "a" };
    static const char *const parties[][2] = { { "israel", "hamas" },
                                              { "us", "egypt" },
                                              { "b", "c" } };
    for (size_t i = 0; i < 3; i++) {
        gw_item_t *it = &s_items[i];
        it->type = GW_ITEM_UPDATE;
        it->seq = it->seq_last = i + 1;
        it->phase = (uint32_t)i;
        snprintf(it->negotiation, sizeof(it->negotiation), "%s", negs[i]);
        it->n_parties = 2;
        for (size_t k = 0; k < 2; k++)
            snprintf(it->parties[k], sizeof(it->parties[k]), "%s", parties[i][k]);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_items[0].type == 0)
        s_setup();
    char *text = fuzz_strdup(data, size);
    if (text == NULL)
        return 0;
    uint64_t v;
    FUZZ_IGNORE(gw_query_last_event_id(text, &v));
    FUZZ_IGNORE(gw_parse_seq(text, size & 1, &v));
    if (size == 0) {
        free(text);
        return 0;
    }
    gw_query_t q;
    gw_query_init(&q, (unsigned)data[0] & 0xf);
    char *save = NULL;
    for (char *line = strtok_r(text + 1, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (eq != NULL)
            *eq = '\0';
        FUZZ_IGNORE(gw_query_arg(&q, line, eq != NULL ? eq + 1 : NULL));
    }
    if (q.err == 0) {
        gw_filter_t copy;
        parley_filter_t *pf = NULL;
        if (gw_filter_copy(&copy, &q.filter) == 0) {
            for (size_t i = 0; i < 3; i++)
                if (gw_filter_match(&q.filter, &s_items[i])
                    != gw_filter_match(&copy, &s_items[i]))
                    abort(); /* a copy must match the same */
            gw_filter_free(&copy);
        }
        /* Every value accepted is one libparley takes too. */
        if (gw_filter_to_parley(&q.filter, &pf) != 0)
            abort();
        parley_filter_destroy(&pf);
        for (size_t i = 0; i < 3; i++)
            (void)gw_filter_match_cell(&q.filter, s_items[i].negotiation,
                                       s_items[i].parties[0], s_items[i].phase);
        if (q.has_limit && (q.limit == 0 || q.limit > 1000))
            abort();
        if ((q.has_since && q.since == 0) || (q.has_until && q.until == 0))
            abort();
    }
    gw_query_free(&q);
    free(text);
    return 0;
}
