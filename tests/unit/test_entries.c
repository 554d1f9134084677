/*
 * test_entries.c - the library's check of a snapshot's entries
 * (entries.c): what it takes, what it refuses as PARLEY_EPROTO (entries
 * that are not slugs and phases, an entry twice, an entry of no delivery,
 * a delivery holding none, deliveries without any entries: a daemon
 * before 1.2), the entries of one delivery, and whether an update names
 * the entries said to be its.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "entries.h"

#include <string.h>

/* Two deliveries, seqs 7 and 8, of a signed update (content unchecked). */
typedef struct {
    uint8_t d[2][1024];
    parley__bytes_t items[2];
} s_deliveries_t;

static void
s_deliveries(s_deliveries_t *s)
{
    static const uint8_t env[] = { 0x0a, 0x01, 0x08 }; /* any bytes */
    for (int i = 0; i < 2; i++) {
        size_t len;
        assert_int_equal(parley__delivery_encode(7 + (uint64_t)i, 1, env,
                                                 sizeof(env), s->d[i],
                                                 sizeof(s->d[i]), &len),
                         0);
        s->items[i] = (parley__bytes_t){ s->d[i], len };
    }
}

static int
s_take(parley__entries_t *e, const s_deliveries_t *s, size_t n_deliveries,
       const parley__entry_t *ents, size_t n)
{
    parley__reply_t r = { .type = PARLEY__REPLY_SNAPSHOT,
                          .deliveries = s->items,
                          .n_deliveries = n_deliveries,
                          .entries = ents,
                          .n_entries = n };
    return parley__entries_take(e, &r);
}

static void
test_take(void **state)
{
    (void)state;
    static s_deliveries_t s;
    s_deliveries(&s);
    parley__entries_t e = { 0 };
    const parley__entry_t good[] = {
        { "gaza-ceasefire", "israel", 2, 8 },
        { "gaza-ceasefire", "hamas", 1, 7 },
        { "gaza-ceasefire", "hamas", 2, 8 },
        { "a", "us", 0, 7 },
    };
    assert_int_equal(s_take(&e, &s, 2, good, 4), 0);
    assert_int_equal(e.n, 4);
    /* by key: negotiation, phase, party */
    assert_string_equal(e.by_key[0].negotiation, "a");
    assert_string_equal(e.by_key[1].party, "hamas");
    assert_int_equal(e.by_key[1].phase, 1);
    assert_string_equal(e.by_key[2].party, "hamas");
    assert_int_equal(e.by_key[2].phase, 2);
    assert_string_equal(e.by_key[3].party, "israel");
    const parley__state_key_t *k;
    assert_int_equal(parley__entries_of(&e, 7, &k), 2);
    assert_string_equal(k[0].negotiation, "a");
    assert_string_equal(k[1].party, "hamas");
    assert_int_equal(parley__entries_of(&e, 8, &k), 2);
    assert_int_equal(parley__entries_of(&e, 9, &k), 0);
    assert_null(k);
    /* Taking again replaces; nothing at all is fine. */
    assert_int_equal(s_take(&e, &s, 0, NULL, 0), 0);
    assert_int_equal(e.n, 0);
    parley__entries_free(&e);
}

static void
test_refused(void **state)
{
    (void)state;
    static s_deliveries_t s;
    s_deliveries(&s);
    parley__entries_t e = { 0 };
    const parley__entry_t twice[] = { { "n", "israel", 1, 7 },
                                      { "n", "israel", 1, 8 } };
    const parley__entry_t stray[] = { { "n", "israel", 1, 7 },
                                      { "n", "hamas", 1, 8 },
                                      { "n", "us", 1, 9 } };
    const parley__entry_t lonely[] = { { "n", "israel", 1, 7 } };
    const parley__entry_t slug[] = { { "n", "Israel", 1, 7 },
                                     { "n", "hamas", 1, 8 } };
    const parley__entry_t phase[] = { { "n", "israel", 256, 7 },
                                      { "n", "hamas", 1, 8 } };
    const parley__entry_t null[] = { { "n", NULL, 1, 7 },
                                     { "n", "hamas", 1, 8 } };
    assert_int_equal(s_take(&e, &s, 2, twice, 2), PARLEY_EPROTO);
    assert_int_equal(s_take(&e, &s, 2, stray, 3), PARLEY_EPROTO);
    assert_int_equal(s_take(&e, &s, 2, lonely, 1), PARLEY_EPROTO);
    assert_int_equal(s_take(&e, &s, 2, slug, 2), PARLEY_EPROTO);
    assert_int_equal(s_take(&e, &s, 2, phase, 2), PARLEY_EPROTO);
    assert_int_equal(s_take(&e, &s, 2, null, 2), PARLEY_EPROTO);
    /* A daemon that names no entries. */
    assert_int_equal(s_take(&e, &s, 2, NULL, 0), PARLEY_EPROTO);
    assert_int_equal(e.n, 0);
    assert_null(e.by_key);
}

static void
test_agree(void **state)
{
    (void)state;
    parley_update_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.negotiation, "n");
    strcpy(u.parties[0], "israel");
    strcpy(u.parties[1], "hamas");
    u.n_parties = 2;
    u.phase = 1;
    parley__state_key_t k[2] = { { "n", "hamas", 1, 7 },
                                 { "n", "israel", 1, 7 } };
    assert_int_equal(parley__entries_agree(k, 2, &u), 1);
    assert_int_equal(parley__entries_agree(NULL, 0, &u), 1);
    strcpy(k[1].party, "us");
    assert_int_equal(parley__entries_agree(k, 2, &u), 0);
    strcpy(k[1].party, "israel");
    k[1].phase = 2;
    assert_int_equal(parley__entries_agree(k, 2, &u), 0);
    k[1].phase = 1;
    strcpy(k[0].negotiation, "m");
    assert_int_equal(parley__entries_agree(k, 2, &u), 0);
    const char *neg = NULL, *party = NULL;
    uint32_t ph = 0;
    parley__state_key_out(&k[1], &neg, &party, &ph);
    assert_string_equal(neg, "n");
    assert_string_equal(party, "israel");
    assert_int_equal(ph, 1);
    parley__state_key_out(&k[1], NULL, NULL, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
