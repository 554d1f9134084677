/*
 * tlog_dump.c - print the tree vectors (README.md) as libparley's
 * client/tlog.c computes them: roots for every size 1..2000 and the
 * 10,000 inclusion and 10,000 consistency proofs of the splitmix64 pairs.
 * tlog_ref.py runs it and compares every byte with its own RFC 9162
 * reference and with the digest of Go's output.
 *
 * Usage: tlog_dump > tree.txt
 */
#include "tlog.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#define ROOTS_UP_TO 2000
#define PAIRS 10000
#define MAX_LEAVES 100000
#define PRNG_SEED 0x7061726c6579ull /* "parley" */

/* splitmix64, as in gen_tlog.go and tlog_ref.py. */
static uint64_t
s_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
s_hash(const parley__tlog_hash_t *h)
{
    for (int i = 0; i < PARLEY__TLOG_HASH_BYTES; i++)
        printf("%02x", h->b[i]);
}

static int
s_proof(parley__tlog_mem_t *m, uint8_t kind, uint64_t a, uint64_t n)
{
    parley__tlog_proof_t p;
    int rc = parley__tlog_prove(parley__tlog_mem_read, m, kind, a, n, &p);
    if (rc != 0) {
        fprintf(stderr, "tlog_dump: proof %u %" PRIu64 " %" PRIu64 ": %d\n", kind,
                a, n, rc);
        return rc;
    }
    printf("%s %" PRIu64 " %" PRIu64 " ",
           kind == PARLEY__TLOG_INCLUSION ? "inclusion" : "consistency", a, n);
    if (p.count == 0)
        putchar('-');
    for (size_t i = 0; i < p.count; i++) {
        if (i > 0)
            putchar(',');
        s_hash(&p.path[i]);
    }
    putchar('\n');
    return 0;
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    parley__tlog_mem_t m;
    parley__tlog_mem_init(&m);
    for (uint64_t i = 0; i < MAX_LEAVES; i++) {
        char rec[32];
        int len = snprintf(rec, sizeof(rec), "record %" PRIu64, i);
        if (parley__tlog_mem_append(&m, rec, (size_t)len) != 0)
            return 1;
    }
    printf("# parley tlog vectors v1: records \"record <i>\", splitmix64 seed %llu\n",
           (unsigned long long)PRNG_SEED);
    for (uint64_t n = 1; n <= ROOTS_UP_TO; n++) {
        parley__tlog_hash_t h;
        if (parley__tlog_root(parley__tlog_mem_read, &m, n, &h) != 0)
            return 1;
        printf("root %" PRIu64 " ", n);
        s_hash(&h);
        putchar('\n');
    }
    uint64_t s = PRNG_SEED;
    for (int j = 0; j < PAIRS; j++) {
        uint64_t n = 1 + s_next(&s) % MAX_LEAVES;
        uint64_t i = s_next(&s) % n;
        if (s_proof(&m, PARLEY__TLOG_INCLUSION, i, n) != 0)
            return 1;
    }
    for (int j = 0; j < PAIRS; j++) {
        uint64_t n = 1 + s_next(&s) % MAX_LEAVES;
        uint64_t old = 1 + s_next(&s) % n;
        if (s_proof(&m, PARLEY__TLOG_CONSISTENCY, old, n) != 0)
            return 1;
    }
    parley__tlog_mem_clear(&m);
    return fflush(stdout) == 0 ? 0 : 1;
}
