/*
 * ingest_int.h - the write path's internals shared by its files:
 * ingest.c (the publish checks, store, commit, acks, feed, and the turn
 * that drives them) and ingest_verify.c (checks 1-6: the pre-checks in
 * arrival order, the signature checks on the pool, their outcome).
 * Nothing else includes this header.
 *
 * Names: pd_ingest__<verb> for functions of one file the other calls;
 * the types keep their s_ names, as they are ingest's alone.
 */
#ifndef PD_INGEST_INT_H
#define PD_INGEST_INT_H

#include "ingest.h"

#include "limit.h"
#include "pool.h"
#include "sign.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a publish stands after the sequential pre-checks of its step. */
typedef enum {
    S_PRE_NONE = 0,   /* no keyring: answered unavailable */
    S_PRE_BLOCKED,    /* its peer is cooling down after bad signatures */
    S_PRE_PREPARED,   /* envelope decoded; see prepare_rc */
    S_PRE_LIMITED,    /* prepared, but the signer's bucket was empty */
} s_pre_t;

/* One request read in this step, with what was decided about it so far. */
typedef struct {
    pd_msg_t msg;         /* the frames, kept until it is handled */
    bool publish;         /* a well-formed publish: ingest's to answer */
    s_pre_t pre;
    int prepare_rc;       /* parley__verify_prepare(), with S_PRE_PREPARED */
    int sig_rc;           /* parley__verify_signature(), when it ran */
    bool sig_checked;
    bool on_pool;         /* its signature is checked on the pool */
    const char *canon_why; /* why the envelope is not canonical, or NULL */
    parley__verify_t v;   /* the decoded envelope between the steps */
} s_slot_t;

/* A publish whose storage completes it later: where its answer goes. */
typedef struct {
    uint64_t tag;         /* the submit's tag; 0 = free */
    uint64_t request_id;
    size_t id_len;
    uint8_t id[PD_INGEST_ID_MAX];
} s_waiting_t;

/* ingest's counters (reported through stats.h). */
typedef struct {
    uint64_t requests_publish;
    uint64_t accepted;      /* updates made durable under a new seq */
    uint64_t duplicates;    /* resends answered with the original seq */
    uint64_t turns_read_ahead; /* turns that synced with a step read ahead */
    uint64_t turn_requests_max; /* most requests one turn handled */
    uint64_t verify_serial; /* signatures checked on the loop thread in
                               request order, not on the pool */
} s_counters_t;

struct pd_ingest {
    const pd_config_t *cfg;          /* borrowed */
    pd_storage_t *storage;           /* borrowed */
    pd_ingest_io_t io;
    const parley_keyring_t *ring;    /* borrowed, swapped on reload */
    pd_limit_t *limit;               /* rate limits (owned) */
    pd_pool_t *pool;                 /* threads for the signature checks */
    s_counters_t counters;

    /* decoding the request being handled */
    uint8_t *arena_buf;              /* max_message_bytes + slack */
    size_t arena_cap;
    parley__arena_t arena;
    parley__request_t req;
    parley_update_t update;          /* the update being published */

    /* requests read in this step of the turn */
    s_slot_t *slots;                 /* 2 x PD_INGEST_SLOTS */
    s_slot_t *ahead;                 /* a step being checked between turns */
    size_t n_ahead;                  /* its requests, 0 if none */

    /* the storage is unavailable (a commit answered so): turns do not
     * commit, pd_ingest_retry() does */
    bool unavailable;
    char why[192];                   /* what clients are told, s_why() */
    uint64_t dups_waiting;           /* duplicate acks of seqs not yet
                                        durable: counted after the commit */

    /* updates a storage completes later (PD_STORAGE_LATER) */
    s_waiting_t *waiting;            /* S_INFLIGHT_MAX, by tag */
    uint64_t next_tag;

    /* the feed: decoding a record for its topics */
    uint8_t *scratch;                /* max_message_bytes + slack */
    size_t scratch_cap;
    parley_update_t feed_update;     /* a record decoded the slow way */
};

/*
 * Gather one step into slots: read up to max requests and run the
 * sequential pre-checks (ingest_verify.c).
 *
 * Returns:   the number read; start their signature checks with
 *            pd_ingest__start().
 * Threads:   the loop thread.
 */
size_t pd_ingest__gather(pd_ingest_t *self, s_slot_t *slots, size_t max);

/*
 * Start the signature checks of n gathered slots on the pool; each start
 * is followed by one pd_pool_wait() before the slots are handled.
 * Threads:   the loop thread.
 */
void pd_ingest__start(pd_ingest_t *self, s_slot_t *slots, size_t n);

/*
 * After pd_pool_wait() for n slots: check the rest of their signatures in
 * parallel, in waves, for each connection whose checked ones were all
 * good and that is not cooling down (S_PEER_PARALLEL_MAX at a time); the
 * others stay for the in-order check of pd_ingest__verify_outcome().
 * Threads:   the loop thread; the pool is idle before and after.
 */
void pd_ingest__waves(pd_ingest_t *self, s_slot_t *slots, size_t n);

/*
 * Checks 3a-6 of one slot in request order (the pre-checks' outcome, the
 * signature, the body and permissions); on 0 self->update and signer
 * hold the update, otherwise *why (static) says more for the log.
 *
 * Returns:   0 or the reject code.
 * Threads:   the loop thread, after pd_pool_wait().
 */
int pd_ingest__verify_outcome(pd_ingest_t *self, s_slot_t *slot,
                              const uint8_t *id, size_t id_len,
                              uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                              const char **why);

/*
 * "signer <key id><why>" for the log line of a reject (only "<why>" if
 * the envelope did not decode), made in buf.
 *
 * Returns:   buf.
 */
const char *pd_ingest__signer_label(const s_slot_t *slot, const char *why,
                                    char buf[PARLEY_KEYID_CHARS + 64]);

#endif
