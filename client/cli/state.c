/*
 * state.c - the current state as a table or a JSON document (state.h).
 */
#include "state.h"

#include "timefmt.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Order of rows: negotiation, phase, party. */
static int
s_cmp(const void *pa, const void *pb)
{
    const cli_state_row_t *a = pa, *b = pb;
    int c = strcmp(a->negotiation, b->negotiation);
    if (c != 0)
        return c;
    if (a->phase != b->phase)
        return a->phase < b->phase ? -1 : 1;
    return strcmp(a->party, b->party);
}

int
cli_state_rows(const cli_state_row_t *entries, size_t n,
               const cli_filter_t *filters, cli_state_row_t **rows,
               size_t *n_rows)
{
    size_t kept = 0;
    cli_state_row_t *r = NULL;
    if (n > 0 && (r = calloc(n, sizeof(*r))) == NULL)
        return -ENOMEM;
    /* --status and --kind ask about what the entry stands at now */
    for (size_t i = 0; i < n; i++)
        if (cli_filter_entry(filters, entries[i].negotiation, entries[i].party,
                             entries[i].phase)
            && cli_filter_local(filters, parley_delivery_update(entries[i].d)))
            r[kept++] = entries[i];
    if (kept > 1)
        qsort(r, kept, sizeof(*r), s_cmp);
    *rows = r;
    *n_rows = kept;
    return 0;
}

int
cli_state_print_table(FILE *out, const cli_state_row_t *rows, size_t n)
{
    int wparty = 0, wstatus = 0, wseq = 0;
    for (size_t i = 0; i < n; i++) {
        const char *st =
            parley_status_name(parley_update_status(parley_delivery_update(rows[i].d)));
        char seq[24];
        int l = snprintf(seq, sizeof(seq), "#%llu",
                         (unsigned long long)parley_delivery_seq(rows[i].d));
        if ((int)strlen(rows[i].party) > wparty)
            wparty = (int)strlen(rows[i].party);
        if (st != NULL && (int)strlen(st) > wstatus)
            wstatus = (int)strlen(st);
        if (l > wseq)
            wseq = l;
    }
    for (size_t i = 0; i < n; i++) {
        const cli_state_row_t *r = &rows[i];
        const parley_update_t *u = parley_delivery_update(r->d);
        const char *st = parley_status_name(parley_update_status(u));
        char when[CLI_TIME_CHARS], seq[24];
        if (i == 0 || strcmp(r->negotiation, rows[i - 1].negotiation) != 0) {
            cli_put_text(out, r->negotiation);
            fputc('\n', out);
        }
        if (i == 0 || strcmp(r->negotiation, rows[i - 1].negotiation) != 0
            || r->phase != rows[i - 1].phase)
            fprintf(out, "  phase %u%s\n", (unsigned)r->phase,
                    r->phase == 0 ? " (the deal as a whole)" : "");
        cli_format_time(parley_update_issued_at(u), CLI_TIME_SHORT_LOCAL, when,
                        sizeof(when));
        when[16] = '\0'; /* to the minute */
        snprintf(seq, sizeof(seq), "#%llu",
                 (unsigned long long)parley_delivery_seq(r->d));
        fprintf(out, "    %-*s  %-*s  %-*s  %s  ", wparty, r->party, wstatus,
                st != NULL ? st : "unknown", wseq, seq, when);
        cli_put_text(out, parley_update_headline(u));
        if (parley_update_kind(u) != PARLEY_KIND_UPDATE) {
            char refs[CLI_REFS_CHARS];
            cli_references(u, "#", refs, sizeof(refs));
            fprintf(out, " (%s of %s)",
                    parley_kind_name(parley_update_kind(u)), refs);
        }
        fputc('\n', out);
    }
    if (fflush(out) != 0 || ferror(out))
        return errno != 0 ? -errno : -EIO;
    return 0;
}

/* The JSON of one entry. */
static json_t *
s_entry(const cli_state_row_t *r)
{
    const parley_update_t *u = parley_delivery_update(r->d);
    const char *st = parley_status_name(parley_update_status(u));
    const char *kind = parley_kind_name(parley_update_kind(u));
    json_t *refs = json_array();
    for (size_t k = 0; refs != NULL && k < parley_update_reference_count(u);
         k++)
        json_array_append_new(refs, json_integer((json_int_t)
                                                     parley_update_reference(u, k)));
    return json_pack("{s:s, s:I, s:s, s:s, s:o?, s:s, s:I, s:I, s:s, s:s}",
                     "party", r->party, "seq",
                     (json_int_t)parley_delivery_seq(r->d), "status",
                     st != NULL ? st : "unknown", "kind",
                     kind != NULL ? kind : "unknown", "references", refs,
                     "headline", parley_update_headline(u), "issued_at",
                     (json_int_t)parley_update_issued_at(u), "received_at",
                     (json_int_t)parley_delivery_received_at(r->d),
                     "signer_id", parley_delivery_signer_id(r->d),
                     "signer_name", parley_delivery_signer_name(r->d));
}

int
cli_state_print_json(FILE *out, const cli_state_row_t *rows, size_t n,
                     uint64_t seq)
{
    json_t *negs = json_array();
    json_t *doc = json_pack("{s:I, s:o}", "seq", (json_int_t)seq,
                            "negotiations", negs);
    json_t *phases = NULL, *parties = NULL;
    int bad = doc == NULL;
    for (size_t i = 0; !bad && i < n; i++) {
        const cli_state_row_t *r = &rows[i];
        int new_neg = i == 0
                      || strcmp(r->negotiation, rows[i - 1].negotiation) != 0;
        if (new_neg) {
            phases = json_array();
            bad |= json_array_append_new(negs,
                                         json_pack("{s:s, s:o}", "negotiation",
                                                   r->negotiation, "phases",
                                                   phases));
        }
        if (new_neg || r->phase != rows[i - 1].phase) {
            parties = json_array();
            bad |= json_array_append_new(phases,
                                         json_pack("{s:I, s:o}", "phase",
                                                   (json_int_t)r->phase,
                                                   "parties", parties));
        }
        bad |= json_array_append_new(parties, s_entry(r));
    }
    char *text = bad ? NULL
                     : json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL)
        return -ENOMEM;
    fputs(text, out);
    fputc('\n', out);
    free(text);
    if (fflush(out) != 0 || ferror(out))
        return errno != 0 ? -errno : -EIO;
    return 0;
}
