/*
 * crc32c.c - CRC32C with a slicing-by-8 table and, on x86-64 CPUs that
 * have SSE4.2, the crc32 instruction.
 *
 * The store checksums every record it writes and every record it scans at
 * startup, so the checksum sits on the path that decides how fast parleyd
 * comes back after a restart; the instruction runs at several GB/s, the
 * table at about one.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define S_HAVE_X86_HW 1
#else
#define S_HAVE_X86_HW 0
#endif

#define S_POLY 0x82F63B78u /* Castagnoli, bit-reversed */

/*
 * s_table[0] is the classic byte-at-a-time table; s_table[k][b] is the CRC
 * contribution of byte b followed by k zero bytes, which lets the loop
 * below fold eight input bytes with eight independent lookups.
 */
static uint32_t s_table[8][256];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static bool s_hw;

static void
s_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ S_POLY : c >> 1;
        s_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            s_table[t][i] = (s_table[t - 1][i] >> 8) ^
                            s_table[0][s_table[t - 1][i] & 0xff];
#if S_HAVE_X86_HW
    __builtin_cpu_init();
    s_hw = __builtin_cpu_supports("sse4.2") != 0;
#endif
}

/* Table-driven CRC over len bytes; c is the running (inverted) value. */
static uint32_t
s_sw(uint32_t c, const uint8_t *p, size_t len)
{
    /* Byte steps until aligned, so the 8-byte loads below are cheap. */
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = s_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The word folding below relies on little-endian loads. */
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = s_table[7][lo & 0xff] ^ s_table[6][(lo >> 8) & 0xff] ^
            s_table[5][(lo >> 16) & 0xff] ^ s_table[4][lo >> 24] ^
            s_table[3][hi & 0xff] ^ s_table[2][(hi >> 8) & 0xff] ^
            s_table[1][(hi >> 16) & 0xff] ^ s_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
#endif
    while (len > 0) {
        c = s_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    return c;
}

#if S_HAVE_X86_HW
/* Same as s_sw() with the SSE4.2 instruction; only called when present. */
__attribute__((target("sse4.2"))) static uint32_t
s_hw_crc(uint32_t c, const uint8_t *p, size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
    uint64_t c64 = c;
    while (len >= 32) {
        uint64_t w[4];
        memcpy(w, p, sizeof(w));
        c64 = _mm_crc32_u64(c64, w[0]);
        c64 = _mm_crc32_u64(c64, w[1]);
        c64 = _mm_crc32_u64(c64, w[2]);
        c64 = _mm_crc32_u64(c64, w[3]);
        p += 32;
        len -= 32;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
    while (len > 0) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
    return c;
}
#endif

uint32_t
pd_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&s_once, s_init);
    return ~s_sw(~crc, buf, len);
}

uint32_t
pd_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&s_once, s_init);
#if S_HAVE_X86_HW
    if (s_hw)
        return ~s_hw_crc(~crc, buf, len);
#endif
    return ~s_sw(~crc, buf, len);
}

bool
pd_crc32c_hw_available(void)
{
    pthread_once(&s_once, s_init);
    return s_hw;
}
