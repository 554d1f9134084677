/*
 * test_crc32c.c - CRC32C: the published check values, piecewise use, and
 * agreement of the instruction path with the table path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

/* Bit-at-a-time reference, written straight from the definition. */
static uint32_t
s_reference(const uint8_t *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

/* Deterministic filler, so a failure reproduces. */
static uint64_t s_rng = 0x9E3779B97F4A7C15ull;

static uint8_t
s_byte(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint8_t)s_rng;
}

static void
test_check_values(void **state)
{
    (void)state;
    assert_int_equal(pd_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(pd_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(pd_crc32c(0, "", 0), 0);

    /* RFC 3720 B.4: 32 bytes of zeros, of 0xFF, ascending, descending. */
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(pd_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof(buf));
    assert_int_equal(pd_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(pd_crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(pd_crc32c(0, buf, 32), 0x113FDB5Cu);
}

static void
test_matches_reference(void **state)
{
    (void)state;
    uint8_t buf[600];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = s_byte();
    for (size_t len = 0; len <= sizeof(buf); len += 7) {
        uint32_t want = s_reference(buf, len);
        assert_int_equal(pd_crc32c_sw(0, buf, len), want);
        assert_int_equal(pd_crc32c(0, buf, len), want);
    }
}

static void
test_incremental(void **state)
{
    (void)state;
    enum { N = 4096 };
    uint8_t *buf = malloc(N);
    assert_non_null(buf);
    for (size_t i = 0; i < N; i++)
        buf[i] = s_byte();
    uint32_t whole = pd_crc32c(0, buf, N);
    uint32_t whole_sw = pd_crc32c_sw(0, buf, N);
    assert_int_equal(whole, whole_sw);
    /* Every split point of a smaller prefix, then uneven pieces. */
    for (size_t cut = 0; cut <= 300; cut++) {
        uint32_t one = pd_crc32c(0, buf, 300);
        uint32_t two = pd_crc32c(pd_crc32c(0, buf, cut), buf + cut, 300 - cut);
        assert_int_equal(one, two);
        uint32_t mixed =
            pd_crc32c_sw(pd_crc32c(0, buf, cut), buf + cut, 300 - cut);
        assert_int_equal(one, mixed);
    }
    uint32_t c = 0;
    for (size_t off = 0, step = 1; off < N; off += step, step = step * 3 % 97 + 1) {
        size_t n = off + step > N ? N - off : step;
        c = pd_crc32c(c, buf + off, n);
    }
    assert_int_equal(c, whole);
    free(buf);
}

static void
test_hw_equals_sw(void **state)
{
    (void)state;
    if (!pd_crc32c_hw_available())
        print_message("note: no SSE4.2 on this CPU; both calls take the table path\n");
    enum { N = 70000 };
    uint8_t *buf = malloc(N + 16);
    assert_non_null(buf);
    for (size_t i = 0; i < N + 16; i++)
        buf[i] = s_byte();
    /* Every alignment with many lengths around the 8- and 32-byte steps. */
    for (size_t align = 0; align < 16; align++) {
        for (size_t len = 0; len < 300; len++) {
            uint32_t seed = (uint32_t)(len * 2654435761u);
            assert_int_equal(pd_crc32c(seed, buf + align, len),
                             pd_crc32c_sw(seed, buf + align, len));
        }
        for (size_t len = 1000; len <= N; len = len * 2 + 13)
            assert_int_equal(pd_crc32c(0, buf + align, len),
                             pd_crc32c_sw(0, buf + align, len));
    }
    free(buf);
}

/*
 * The hardware path checksums inputs of 192 bytes and more as three
 * interleaved streams (of 64, and from 6144 bytes of 2048) and joins the
 * three results: lengths on and around each step, with a running CRC
 * carried in, against the bitwise reference.
 */
static void
test_three_streams(void **state)
{
    (void)state;
    enum { N = 3 * 6144 + 64 };
    uint8_t *buf = malloc(N);
    assert_non_null(buf);
    for (size_t i = 0; i < N; i++)
        buf[i] = s_byte();
    static const size_t steps[] = { 192, 384, 6144, 12288 };
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        for (size_t len = steps[k] - 9; len <= steps[k] + 9; len++) {
            uint32_t want = s_reference(buf + 3, len);
            assert_int_equal(pd_crc32c(0, buf + 3, len), want);
            /* Split anywhere: the state carried in must join the same. */
            size_t cut = len / 3 + k;
            assert_int_equal(pd_crc32c(pd_crc32c(0, buf + 3, cut), buf + 3 + cut,
                                       len - cut),
                             want);
        }
    }
    assert_int_equal(pd_crc32c(0, buf, N), s_reference(buf, N));
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_hw_equals_sw),
        cmocka_unit_test(test_three_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
