/*
 * datapath.h - what test_ingest and test_query share: a real embedded
 * storage in a scratch directory, fixed-seed signers and their keyring,
 * and signed updates. All functions are static inline: each test uses a
 * part of them.
 */
#ifndef PARLEY_TEST_DATAPATH_H
#define PARLEY_TEST_DATAPATH_H

#include "../tmpdir.h"
#include "config.h"
#include "embedded.h"
#include "parley.h"
#include "stats.h"
#include "storage.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DP_SIGNERS 4

typedef struct dp {
    char dir[512];                     /* scratch state directory */
    pd_config_t cfg;                   /* defaults, state_dir = dir */
    pd_stats_t *stats;
    pd_storage_t *storage;             /* embedded, in dir */
    parley_key_t *keys[DP_SIGNERS];    /* seeds 0x70 + i */
    uint8_t pk[DP_SIGNERS][PARLEY_PUBLICKEY_BYTES];
    parley_keyring_t *ring;            /* signer-0..2 may publish anything;
                                          signer-3 only "other-talks" */
    parley_key_t *stranger;            /* not in the keyring */
} dp_t;

/* Open (again) the storage of d->dir with d->cfg. */
static inline int
dp_open_storage(dp_t *d)
{
    int err = 0;
    pd_storage_destroy(&d->storage);
    d->storage = pd_embedded_open(&d->cfg, d->stats, NULL, &err);
    return d->storage != NULL ? 0 : err;
}

/* Make everything; fsync as given. 0, or -1 (with a message). */
static inline int
dp_setup(dp_t *d, bool fsync)
{
    memset(d, 0, sizeof(*d));
    if (test_tmpdir_make(d->dir, sizeof(d->dir), "parley-datapath-") < 0)
        return -1;
    pd_config_defaults(&d->cfg);
    snprintf(d->cfg.state_dir, sizeof(d->cfg.state_dir), "%s", d->dir);
    d->cfg.fsync = fsync;
    char text[DP_SIGNERS * 160] = "", err[256] = "";
    size_t used = 0;
    for (int i = 0; i < DP_SIGNERS; i++) {
        uint8_t seed[32];
        char b64[45];
        memset(seed, 0x70 + i, sizeof(seed));
        if ((d->keys[i] = parley_key_from_seed(seed)) == NULL)
            return -1;
        parley_key_public(d->keys[i], d->pk[i]);
        parley_pubkey_format(d->pk[i], b64);
        used += (size_t)snprintf(text + used, sizeof(text) - used,
                                 "signer-%d %s negotiations=%s parties=* "
                                 "phases=*\n",
                                 i, b64, i == 3 ? "other-talks" : "*");
    }
    uint8_t seed[32];
    memset(seed, 0x5e, sizeof(seed));
    d->stranger = parley_key_from_seed(seed);
    d->ring = parley_keyring_parse(text, used, err, sizeof(err));
    if (d->ring == NULL || d->stranger == NULL) {
        fprintf(stderr, "keyring: %s\n", err);
        return -1;
    }
    if ((d->stats = pd_stats_new()) == NULL || dp_open_storage(d) < 0)
        return -1;
    return 0;
}

/* Close everything and remove the scratch directory. */
static inline void
dp_teardown(dp_t *d)
{
    pd_storage_destroy(&d->storage);
    pd_stats_destroy(&d->stats);
    for (int i = 0; i < DP_SIGNERS; i++)
        parley_key_destroy(&d->keys[i]);
    parley_key_destroy(&d->stranger);
    parley_keyring_destroy(&d->ring);
    DIR *dir = opendir(d->dir);
    struct dirent *e;
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        char path[1024];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
        unlink(path);
    }
    if (dir != NULL)
        closedir(dir);
    rmdir(d->dir);
}

/*
 * A valid update in "gaza-ceasefire" (or neg) for party at phase, issued
 * now, with signer_seq.
 */
static inline void
dp_update(parley_update_t *u, const char *neg, const char *party,
          uint32_t phase, uint64_t signer_seq)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->negotiation, sizeof(u->negotiation), "%s",
             neg != NULL ? neg : "gaza-ceasefire");
    snprintf(u->parties[0], sizeof(u->parties[0]), "%s", party);
    u->n_parties = 1;
    u->phase = phase;
    u->status = PARLEY_STATUS_TALKS_SCHEDULED;
    snprintf(u->headline, sizeof(u->headline), "update %llu from %s",
             (unsigned long long)signer_seq, party);
    u->issued_at = parley_now_ms();
    u->signer_seq = signer_seq;
}

/* Sign u with key into env. Returns its length, 0 on failure. */
static inline size_t
dp_sign(const parley_key_t *key, const parley_update_t *u,
        uint8_t env[PARLEY_ENVELOPE_MAX])
{
    size_t len = 0;
    return parley_sign(key, u, env, PARLEY_ENVELOPE_MAX, &len) == 0 ? len : 0;
}

#endif /* PARLEY_TEST_DATAPATH_H */
