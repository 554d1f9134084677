/*
 * fuzz_proof.c - proof decoding and verification, as a subscriber runs
 * them on what an api reply carries. Against a real tree of 64 leaves:
 * a proof that verifies must be the very proof the tree makes (anything
 * else would be a forgery), a decoded proof encodes back to the input,
 * and the raw verifiers take any count of hashes without harm.
 */
#include "fuzz.h"
#include "tlog.h"

#include <stdio.h>

#define LEAVES 64

static parley__tlog_mem_t s_tree;
static parley__tlog_hash_t s_leaf[LEAVES], s_root[LEAVES + 1];
static int s_ready;

static void
s_setup(void)
{
    parley__tlog_mem_init(&s_tree);
    for (int i = 0; i < LEAVES; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof(rec), "record %d", i);
        parley__tlog_leaf_hash(rec, (size_t)n, &s_leaf[i]);
        if (parley__tlog_mem_append_hash(&s_tree, &s_leaf[i]) != 0)
            abort();
    }
    for (int n = 0; n <= LEAVES; n++)
        if (parley__tlog_root(parley__tlog_mem_read, &s_tree, (uint64_t)n, &s_root[n]) != 0)
            abort();
    s_ready = 1;
}

/* A proof that verified against the tree must be the tree's own. */
static void
s_must_be_real(uint8_t kind, uint64_t m, uint64_t n, const parley__tlog_hash_t *path,
               size_t count)
{
    parley__tlog_proof_t real;
    if (parley__tlog_prove(parley__tlog_mem_read, &s_tree, kind, m, n, &real) != 0 ||
        real.count != count || memcmp(real.path, path, count * sizeof(*path)) != 0)
        abort();
}

static uint64_t
s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_ready)
        s_setup();
    parley__tlog_proof_t p;
    const char *why = NULL;
    if (parley__tlog_proof_decode(data, size, &p, &why) == 0) {
        uint8_t buf[PARLEY__TLOG_PROOF_ENCODED_MAX];
        size_t len = 0;
        if (parley__tlog_proof_encode(&p, buf, sizeof(buf), &len) != 0 || len != size ||
            memcmp(buf, data, size) != 0)
            abort();
        if (p.n <= LEAVES) {
            int rc;
            if (p.kind == PARLEY__TLOG_INCLUSION)
                rc = parley__tlog_proof_check_inclusion(&p, &s_leaf[p.m], &s_root[p.n], &why);
            else
                rc = parley__tlog_proof_check_consistency(&p, &s_root[p.m], &s_root[p.n],
                                                          &why);
            if (rc == 0)
                s_must_be_real(p.kind, p.m, p.n, p.path, p.count);
        }
    } else if (why == NULL) {
        abort();
    }
    /* The raw verifiers: sizes from the first 16 bytes (folded into the
     * real tree), then any number of hashes. */
    if (size >= 16) {
        uint64_t a = s_get64(data) % (LEAVES + 1), b = s_get64(data + 8) % (LEAVES + 1);
        size_t count = (size - 16) / sizeof(parley__tlog_hash_t);
        parley__tlog_hash_t *path = malloc(count ? count * sizeof(*path) : 1);
        if (path == NULL)
            abort();
        memcpy(path, data + 16, count * sizeof(*path));
        if (a < LEAVES &&
            parley__tlog_verify_inclusion(&s_leaf[a], a, b, &s_root[b], path, count, &why) == 0)
            s_must_be_real(PARLEY__TLOG_INCLUSION, a, b, path, count);
        if (parley__tlog_verify_consistency(a, b, &s_root[a], &s_root[b], path, count,
                                            &why) == 0 &&
            a > 0 && a < b)
            s_must_be_real(PARLEY__TLOG_CONSISTENCY, a, b, path, count);
        /* Unrelated roots and huge sizes, for the paths through the loops. */
        FUZZ_IGNORE(parley__tlog_verify_inclusion(count ? &path[0] : &s_leaf[0],
                                                  s_get64(data), s_get64(data + 8),
                                                  &s_root[0], path, count, &why));
        FUZZ_IGNORE(parley__tlog_verify_consistency(s_get64(data), s_get64(data + 8),
                                                    &s_root[1], &s_root[2], path, count,
                                                    &why));
        free(path);
    }
    return 0;
}
