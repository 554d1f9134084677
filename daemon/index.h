/*
 * index.h - parleyd's in-memory indexes over the log.
 *
 * All three are rebuilt from the log at start (pd_index_scan() is the
 * pd_store_open() callback), so replay protection and the snapshot survive
 * restarts and kill -9:
 *
 *   signers  32-byte public key -> last accepted signer_seq, and for each
 *            signer the (signer_seq, seq) of its updates still in the log,
 *            ascending (signer_seq only grows per signer), so that a
 *            resend of accepted bytes can be answered with its seq after
 *            a binary search and one byte comparison with the log
 *   latest   (negotiation, party, phase) -> seq of the update that holds
 *            the current state of that key
 *
 * The signer and latest-state tables are open-addressing hash tables,
 * pd_hash_t.
 */
#ifndef PD_INDEX_H
#define PD_INDEX_H

#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- hash table */

/*
 * Fixed-length byte keys -> uint64_t values, linear probing with
 * backward-shift deletion (no tombstones), SipHash-1-3 with a random key
 * per table so that chosen keys cannot force collisions.
 */
typedef struct pd_hash pd_hash_t;

/*
 * Make an empty table for keys of keylen bytes (1..255).
 *
 * Returns:   the table, or NULL with errno set.
 */
pd_hash_t *pd_hash_new(size_t keylen);

/* Free a table; *h becomes NULL. Accepts NULL. */
void pd_hash_destroy(pd_hash_t **h);

/* Returns true and sets *val (may be NULL) if key is present. */
bool pd_hash_get(const pd_hash_t *h, const void *key, uint64_t *val);

/*
 * Make room so that the next n inserts of new keys cannot fail.
 *
 * Returns:   0 or -ENOMEM.
 */
int pd_hash_reserve(pd_hash_t *h, size_t n);

/*
 * Insert or overwrite key -> val.
 *
 * Returns:   0 or -ENOMEM (only if no room was reserved).
 */
int pd_hash_put(pd_hash_t *h, const void *key, uint64_t val);

/* Remove key. Returns true if it was present. */
bool pd_hash_del(pd_hash_t *h, const void *key);

/* Number of keys held. */
size_t pd_hash_count(const pd_hash_t *h);

/* Predicate over a value for pd_hash_remove_if(). */
typedef bool (*pd_hash_pred_fn)(uint64_t val, void *ctx);

/* Remove every entry whose value satisfies pred. Returns how many. */
size_t pd_hash_remove_if(pd_hash_t *h, pd_hash_pred_fn pred, void *ctx);

/* Call fn for every entry, in no particular order; fn must not modify h. */
void pd_hash_foreach(const pd_hash_t *h,
                     void (*fn)(const void *key, uint64_t val, void *ctx),
                     void *ctx);

/*
 * SipHash with crounds compression and drounds finalization rounds of
 * len bytes at p under the 16-byte key (2, 4 is the SipHash-2-4 of
 * libsodium's crypto_shorthash; the tables use 1, 3). Exposed for tests.
 */
uint64_t pd_hash_siphash(const uint8_t key[16], const void *p, size_t len,
                         int crounds, int drounds);

/* ---------------------------------------------------------------- indexes */

typedef struct pd_index pd_index_t;

/*
 * Make empty indexes.
 *
 * Returns:   the indexes, or NULL with errno set.
 */
pd_index_t *pd_index_new(void);

/* Free the indexes; *idx becomes NULL. Accepts NULL. */
void pd_index_destroy(pd_index_t **idx);

/*
 * Make room for one more record by signer, so that the pd_index_add() for
 * it that follows cannot fail (the daemon reserves before it appends to
 * the log).
 *
 * Returns:   0 or -ENOMEM.
 */
int pd_index_reserve(pd_index_t *idx,
                     const uint8_t signer[PARLEY_PUBLICKEY_BYTES]);

/*
 * Record an accepted update: raise the signer's last seq, remember
 * (signer_seq, seq) for dedupe, and apply the update to the latest state.
 * Call pd_index_reserve() for the same signer first.
 */
void pd_index_add(pd_index_t *idx, uint64_t seq,
                  const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                  const parley_update_t *u);

/*
 * pd_store_scan_fn for pd_store_open(); ctx is the pd_index_t. Reads the
 * fields the indexes use from a logged record (no signature check: the
 * log holds only what was verified before) and adds it. Records in the
 * canonical encoding the daemon accepts are read in place by
 * pd_index_facts_read(); anything else goes through the full decoder,
 * which decides as before. A record that does not decode is logged and
 * skipped.
 *
 * Returns:   0, or -ENOMEM (which stops the scan).
 */
int pd_index_scan(void *ctx, uint64_t seq, int64_t received_at,
                  const uint8_t *payload, size_t len);

/* The fields of one update the indexes use; pointers into the envelope. */
typedef struct pd_index_facts {
    const uint8_t *signer;        /* PARLEY_PUBLICKEY_BYTES */
    uint64_t signer_seq;
    const char *negotiation;      /* not NUL-terminated */
    size_t negotiation_len;       /* <= PARLEY_SLUG_MAX */
    size_t n_parties;
    const char *parties[PARLEY_PARTIES_MAX];   /* not NUL-terminated */
    size_t party_lens[PARLEY_PARTIES_MAX];     /* each <= PARLEY_SLUG_MAX */
    uint32_t phase;
    parley_kind_t kind;
    size_t n_references;
    uint64_t references[PARLEY_REFERENCES_MAX];
} pd_index_facts_t;

/*
 * Read the facts of a SignedUpdate straight from its bytes, without
 * protobuf-c, when they are in exactly the form the daemon accepts: the
 * envelope as parley_sign() lays it out and a body in the canonical
 * encoding that parley__update_decode() requires. Whenever this returns 0
 * the full decoders accept the same bytes and yield the same fields; for
 * anything it does not recognise it returns 1 and leaves the verdict to
 * them.
 *
 * Returns:   0 (*out filled) or 1 (use the full decoders).
 */
int pd_index_facts_read(const uint8_t *env, size_t len, pd_index_facts_t *out);

/* Returns true and sets *last if the signer has an accepted update. */
bool pd_index_signer_last(const pd_index_t *idx,
                          const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                          uint64_t *last);

/*
 * Seq of the logged update by signer with this signer_seq, or 0 if none is
 * held. The caller confirms that the bytes resent are the logged bytes.
 */
uint64_t pd_index_dedupe_lookup(const pd_index_t *idx,
                                const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                                uint64_t signer_seq);

/*
 * The seqs the latest state consists of, ascending, each once.
 *
 * Returns:   the count, or -ENOMEM.
 * Ownership: *out is the caller's; free() it (NULL when the count is 0).
 */
int pd_index_latest_seqs(const pd_index_t *idx, uint64_t **out);

/*
 * Forget entries that point below first_seq (retention removed them): the
 * dedupe entries and latest-state keys. Signer seqs are kept.
 */
void pd_index_forget_before(pd_index_t *idx, uint64_t first_seq);

/* Sizes, for stats. */
typedef struct pd_index_stats {
    size_t signers;      /* signers with an accepted update */
    size_t dedupe;       /* (signer_seq, seq) pairs remembered */
    size_t latest;       /* (negotiation, party, phase) keys with state */
    uint64_t scanned;    /* records added by pd_index_scan() */
    uint64_t skipped;    /* logged records that did not decode */
} pd_index_stats_t;

void pd_index_get_stats(const pd_index_t *idx, pd_index_stats_t *out);

#endif /* PD_INDEX_H */
