/*
 * test_gw_item.c - an update as parley-gateway sends it (gateway/item.c):
 * the delivery's JSON fields with the exact signed body and signature
 * beside them, and the SSE frame around that JSON.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "gw_util.h"

#include <jansson.h>

static void
test_update_json_and_frame(void **state)
{
    (void)state;
    parley_delivery_t *d = gwt_delivery(42, "gaza-ceasefire", "israel,hamas", 1,
                                        PARLEY_KIND_UPDATE,
                                        "He said \"no\"\nthen left");
    gw_item_t *it = gw_item_update(d);
    assert_non_null(it);
    assert_int_equal(it->type, GW_ITEM_UPDATE);
    assert_int_equal(it->seq, 42);
    assert_int_equal(it->n_parties, 2);
    assert_string_equal(it->parties[1], "hamas");
    /* The frame: id, event, one data line, a blank line. */
    const char *head = "id: 42\nevent: update\ndata: ";
    assert_memory_equal(it->frame, head, strlen(head));
    assert_int_equal(it->json_off, strlen(head));
    assert_int_equal(it->frame_len, it->json_off + it->json_len + 2);
    assert_memory_equal(it->frame + it->frame_len - 2, "\n\n", 2);
    assert_null(memchr(gw_item_json(it), '\n', it->json_len));
    /* The JSON: the delivery's fields and the envelope's, base64 the same
     * as the library's own JSON form of the envelope. */
    json_t *o = json_loadb(gw_item_json(it), it->json_len, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "headline")),
                        "He said \"no\"\nthen left");
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 42);
    size_t env_len;
    const void *env = parley_delivery_envelope(d, &env_len);
    char *ej = parley_envelope_to_json(env, env_len);
    json_t *e = json_loads(ej, 0, NULL);
    assert_non_null(e);
    for (const char *const *k = (const char *const[]){ "signed_body", "signature",
                                                       "signer", NULL };
         *k != NULL; k++)
        assert_true(json_equal(json_object_get(o, *k), json_object_get(e, *k)));
    /* And the JSON goes back to the same envelope. */
    uint8_t back[PARLEY_ENVELOPE_MAX + 128];
    size_t back_len = 0;
    assert_int_equal(parley_envelope_from_json(gw_item_json(it), it->json_len,
                                               back, sizeof(back), &back_len,
                                               NULL, 0),
                     0);
    assert_int_equal(back_len, env_len);
    assert_memory_equal(back, env, env_len);
    json_decref(e);
    free(ej);
    json_decref(o);
    /* References count the holders. */
    gw_item_ref(it);
    gw_item_unref(it);
    assert_int_equal(it->refs, 1);
    gw_item_unref(it);
    parley_delivery_destroy(&d);
}

static void
test_gap_frame(void **state)
{
    (void)state;
    gw_item_t *it = gw_item_gap(3, 9);
    assert_non_null(it);
    assert_int_equal(it->type, GW_ITEM_GAP);
    assert_string_equal(it->frame,
                        "id: 9\nevent: gap\ndata: {\"from\":3,\"to\":9}\n\n");
    assert_memory_equal(gw_item_json(it), "{\"from\":3,\"to\":9}", it->json_len);
    gw_item_unref(it);
    gw_item_unref(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_json_and_frame),
        cmocka_unit_test(test_gap_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
