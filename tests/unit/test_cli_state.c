/*
 * test_cli_state.c - parley state's grouping of a snapshot into entries
 * and its table (client/cli/state.c).
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "delivery_fixture.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_N 4

static parley_delivery_t *s_ds[S_N];

static int
s_setup(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    fx_update_t u[S_N] = {
        { .parties = "us,egypt,qatar", .status = PARLEY_STATUS_TALKS_IN_PROGRESS,
          .headline = "Talks in Doha" },
        { .parties = "israel,hamas", .phase = 1, .headline = "Phase 1 proposed" },
        /* later, for two of the three mediators of #1 */
        { .parties = "us,egypt", .status = PARLEY_STATUS_TALKS_SCHEDULED,
          .headline = "Talks in Cairo on Tuesday", .issued_at = 1724158800000 },
        { .negotiation = "sudan-talks", .parties = "saf", .phase = 2,
          .kind = PARLEY_KIND_CORRECTION, .ref = 2, .headline = "Corrected\ttext" },
    };
    uint64_t seqs[S_N] = { 1, 3, 12, 14 };
    for (int i = 0; i < S_N; i++)
        if ((s_ds[i] = fx_delivery(seqs[i], &u[i])) == NULL)
            return -1;
    return 0;
}

static int
s_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < S_N; i++)
        parley_delivery_destroy(&s_ds[i]);
    return 0;
}

/*
 * The entries the library's state table gives for these deliveries (in an
 * order of its own, to show that the rows are sorted): #12 holds egypt's
 * and the us's phase 0, #1 still holds qatar's.
 */
#define S_E 6
static void
s_entries(cli_state_row_t e[S_E])
{
    const cli_state_row_t t[S_E] = {
        { "sudan-talks", 2, "saf", NULL },
        { "gaza-ceasefire", 0, "us", NULL },
        { "gaza-ceasefire", 1, "israel", NULL },
        { "gaza-ceasefire", 0, "qatar", NULL },
        { "gaza-ceasefire", 1, "hamas", NULL },
        { "gaza-ceasefire", 0, "egypt", NULL },
    };
    const int held_by[S_E] = { 3, 2, 1, 0, 1, 2 };
    for (int i = 0; i < S_E; i++) {
        e[i] = t[i];
        e[i].d = s_ds[held_by[i]];
    }
}

/* The table of rows, as a string. */
static char *
s_table(const cli_state_row_t *rows, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(cli_state_print_table(f, rows, n), 0);
    fclose(f);
    return text;
}

static void
test_rows_and_table(void **state)
{
    (void)state;
    cli_filter_t filters = { .n = 0 };
    cli_state_row_t *rows = NULL;
    size_t n = 0;
    cli_state_row_t e[S_E];
    s_entries(e);
    assert_int_equal(cli_state_rows(e, S_E, &filters, &rows, &n), 0);
    assert_int_equal(n, 6);
    char *t = s_table(rows, n);
    assert_string_equal(
        t, "gaza-ceasefire\n"
           "  phase 0 (the deal as a whole)\n"
           "    egypt   talks_scheduled    #12  2024-08-20 13:00  Talks in Cairo on Tuesday\n"
           "    qatar   talks_in_progress  #1   2024-08-20 12:00  Talks in Doha\n"
           "    us      talks_scheduled    #12  2024-08-20 13:00  Talks in Cairo on Tuesday\n"
           "  phase 1\n"
           "    hamas   proposed           #3   2024-08-20 12:00  Phase 1 proposed\n"
           "    israel  proposed           #3   2024-08-20 12:00  Phase 1 proposed\n"
           "sudan-talks\n"
           "  phase 2\n"
           "    saf     proposed           #14  2024-08-20 12:00  Corrected\\ttext (correction of #2)\n");
    free(t);
    free(rows);
}

static void
test_rows_filtered(void **state)
{
    (void)state;
    cli_filter_t f = { .n = 0 };
    cli_state_row_t *rows = NULL;
    size_t n = 0;
    cli_state_row_t e[S_E];
    s_entries(e);
    /* --party egypt: the entry, not every party of the update */
    assert_int_equal(cli_filter_option(&f, "state", CLI_OPT_PARTY, "egypt"), 1);
    assert_int_equal(cli_state_rows(e, S_E, &f, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].party, "egypt");
    assert_int_equal(parley_delivery_seq(rows[0].d), 12);
    free(rows);
    cli_filter_free(&f);
    /* --status talks_in_progress: what an entry stands at now; #1 is no
     * longer current for us and egypt */
    assert_int_equal(cli_filter_option(&f, "state", CLI_OPT_STATUS_FILTER,
                                       "talks_in_progress"),
                     1);
    assert_int_equal(cli_state_rows(e, S_E, &f, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].party, "qatar");
    free(rows);
    cli_filter_free(&f);
    /* --kind correction --or: filters still choose entries */
    assert_int_equal(cli_filter_option(&f, "state", CLI_OPT_KIND_FILTER,
                                       "correction"),
                     1);
    assert_int_equal(cli_state_rows(e, S_E, &f, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].negotiation, "sudan-talks");
    free(rows);
    cli_filter_free(&f);
    /* nothing: no rows, an empty table */
    assert_int_equal(cli_state_rows(e, 0, &f, &rows, &n), 0);
    assert_int_equal(n, 0);
    char *t = s_table(rows, n);
    assert_string_equal(t, "");
    free(t);
    free(rows);
}

static void
test_json(void **state)
{
    (void)state;
    cli_filter_t f = { .n = 0 };
    cli_state_row_t *rows = NULL;
    size_t n = 0;
    cli_state_row_t e[S_E];
    s_entries(e);
    /* phase 1: hamas and israel, both held by #3 */
    assert_int_equal(cli_filter_option(&f, "state", CLI_OPT_PHASE, "1"), 1);
    assert_int_equal(cli_state_rows(e, S_E, &f, &rows, &n), 0);
    cli_filter_free(&f);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_int_equal(cli_state_print_json(out, rows, n, 20), 0);
    fclose(out);
    assert_string_equal(
        text,
        "{\"seq\":20,\"negotiations\":[{\"negotiation\":\"gaza-ceasefire\","
        "\"phases\":[{\"phase\":1,\"parties\":["
        "{\"party\":\"hamas\",\"seq\":3,\"status\":\"proposed\",\"kind\":"
        "\"update\",\"references\":[],\"headline\":\"Phase 1 proposed\","
        "\"issued_at\":1724155200000,\"received_at\":1724155200005,"
        "\"signer_id\":\"d3bd75fcd7676504\",\"signer_name\":\"\"},"
        "{\"party\":\"israel\",\"seq\":3,\"status\":\"proposed\",\"kind\":"
        "\"update\",\"references\":[],\"headline\":\"Phase 1 proposed\","
        "\"issued_at\":1724155200000,\"received_at\":1724155200005,"
        "\"signer_id\":\"d3bd75fcd7676504\",\"signer_name\":\"\"}]}]}]}\n");
    free(text);
    free(rows);
}

/* cli_references(): the list the table, the default line, PARLEY_REFERENCES
 * and a retraction's headline share. */
static void
test_references(void **state)
{
    (void)state;
    parley_update_t *u = parley_update_new();
    char buf[CLI_REFS_CHARS];
    assert_non_null(u);
    cli_references(u, "#", buf, sizeof(buf));
    assert_string_equal(buf, "");
    assert_int_equal(parley_update_add_reference(u, 4), 0);
    assert_int_equal(parley_update_add_reference(u, 7), 0);
    assert_int_equal(parley_update_add_reference(u, 1000000000000000000ull),
                     0);
    cli_references(u, "#", buf, sizeof(buf));
    assert_string_equal(buf, "#4,#7,#1000000000000000000");
    cli_references(u, "", buf, sizeof(buf));
    assert_string_equal(buf, "4,7,1000000000000000000");
    /* too small: cut after a whole reference */
    cli_references(u, "#", buf, 8);
    assert_string_equal(buf, "#4,#7");
    cli_references(u, "#", buf, 2);
    assert_string_equal(buf, "");
    /* the most references, the longest seqs: all of them fit */
    for (uint64_t i = 3; i < PARLEY_REFERENCES_MAX; i++)
        assert_int_equal(
            parley_update_add_reference(u, 1000000000000000000ull + i), 0);
    cli_references(u, "#", buf, sizeof(buf));
    assert_int_equal(strlen(buf), 26 + (PARLEY_REFERENCES_MAX - 3) * 21);
    parley_update_destroy(&u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_table),
        cmocka_unit_test(test_rows_filtered),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_references),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
