/*
 * crc32c.h - CRC32C (Castagnoli), the checksum of the store's records.
 *
 * The reflected polynomial 0x82F63B78 with the usual pre- and
 * post-inversion (the iSCSI / ext4 / RFC 3720 variant), so that
 * pd_crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef PD_CRC32C_H
#define PD_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc (0 to start, or the value returned for the bytes before) over
 * len bytes at buf, so that checksumming a buffer in pieces gives the same
 * value as checksumming it at once. Uses the SSE4.2 crc32 instruction when
 * the CPU has it, a table otherwise; the results are identical.
 *
 * Threads:   safe.
 */
uint32_t pd_crc32c(uint32_t crc, const void *buf, size_t len);

/* The table-driven path alone (same contract); exposed for tests. */
uint32_t pd_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Whether pd_crc32c() uses the CPU instruction on this machine. */
bool pd_crc32c_hw_available(void);

#endif /* PD_CRC32C_H */
