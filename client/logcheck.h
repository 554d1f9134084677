/*
 * logcheck.h - what a client checks of parley's transparency log
 * (library-internal; docs/transparency.md):
 *
 *   - the policy: the log's origin and key, the witnesses and how many
 *     must cosign, the staleness limit (from a keyring's log: and
 *     witness: lines, or options);
 *   - checkpoints verified under a policy (the public parley_checkpoint_t);
 *   - evidence texts, made and parsed;
 *   - the verifier a subscriber and a replay run (parley__logcheck_t): a
 *     state machine without sockets, fed with the checkpoints and updates
 *     the caller sees and the answers to the requests it asks for, and
 *     handing out events. sub.c and query.c drive it; test_logcheck.c
 *     drives it message by message.
 *
 * The verifier, step by step:
 *
 *   trust      a checkpoint that verifies under the policy is a candidate.
 *              The first ever (with no saved state) is trusted as it is.
 *              Afterwards: the same size as the trusted one must have the
 *              same root (then it only refreshes the time); a larger one
 *              is trusted once a consistency proof from the trusted one
 *              verifies; a smaller one is not trusted (signed later: a
 *              rollback or a cluster node that lags, kept for the
 *              evidence of staleness; signed earlier: a replay).
 *   include    every update handed out must be in the trusted tree:
 *              all    (no filter: every update is seen, in order) the
 *                     updates are folded into a tree of their own, started
 *                     from the compact range the daemon gives for the seq
 *                     before the first (checked by a consistency proof),
 *                     and each trusted checkpoint is compared with it (the
 *                     same root at the same size, else a consistency proof
 *                     between the two sizes);
 *              some   inclusion proofs, up to PARLEY__INCLUSION_MAX seqs
 *                     per request, against the trusted checkpoint.
 *   fresh      the newest trusted checkpoint's time stamp (or, without
 *              one, when it came) must be within max_staleness of now.
 *   persist    with a state file, the trusted checkpoint is written there
 *              at each new size and read at start: it is the first
 *              trusted one, so the daemon's next checkpoint must extend it.
 *
 * Events: LOG_VERIFIED (a trusted size all handed-out updates up to it are
 * proven in; or fresh again after a LOG_STALE), LOG_INCONSISTENT (with
 * evidence), LOG_STALE (with the newest untrusted checkpoint shown and why),
 * REJECTED with seq 0 (a checkpoint that did not verify).
 *
 * Threads: a verifier belongs to one thread at a time.
 */
#ifndef PARLEY_LOGCHECK_H
#define PARLEY_LOGCHECK_H

#include "codec.h"
#include "note.h"
#include "tlog.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__LOG_WITNESSES_MAX 32
#define PARLEY__LOG_STALENESS_DEFAULT_MS 30000
/* Updates handed out and not yet proven, held at most (some mode). */
#define PARLEY__LOG_PENDING_MAX 65536

/* What to check of one log. */
typedef struct parley__logpolicy {
    char origin[PARLEY__NOTE_NAME_MAX + 1];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    size_t n_witnesses;
    struct {
        char name[PARLEY__NOTE_NAME_MAX + 1];
        uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    } witness[PARLEY__LOG_WITNESSES_MAX];
    unsigned need;              /* witness cosignatures a checkpoint needs */
    int64_t max_staleness_ms;   /* 0: no staleness check */
} parley__logpolicy_t;

/*
 * The keyring's policy for origin (NULL: its only log: line), with its
 * witness: lines.
 *
 * Returns:   0, -ENOENT (no such log line), or PARLEY_EARG (origin NULL
 *            and the keyring has several).
 */
int parley__keyring_logpolicy(const parley_keyring_t *ring, const char *origin,
                              parley__logpolicy_t *out);

/* A verified checkpoint: the public parley_checkpoint_t. */
struct parley_checkpoint {
    char *note;                 /* the signed note, NUL-terminated (owned) */
    size_t len;
    size_t text_len;            /* its text, up to the blank line */
    char origin[PARLEY__NOTE_NAME_MAX + 1];
    uint64_t size;
    parley__tlog_hash_t root;
    int64_t time;               /* the log's stamp, unix s; 0: none */
    size_t cosigners;           /* policy witnesses that cosigned */
};

/*
 * Verify a signed checkpoint under pol (see parley_checkpoint_verify());
 * why (may be NULL) receives a static reason on failure.
 *
 * Returns:   0 with *out set, PARLEY_EMALFORMED, PARLEY_ETOOLARGE,
 *            PARLEY_EUNKNOWNSIGNER, PARLEY_EBADSIG, PARLEY_EUNWITNESSED,
 *            PARLEY_EINVALID (another origin), -ENOMEM.
 * Ownership: *out is the caller's (parley_checkpoint_destroy()).
 */
int parley__checkpoint_check(const parley__logpolicy_t *pol, const void *note,
                             size_t len, parley_checkpoint_t **out,
                             const char **why) PARLEY_WARN_UNUSED;

/*
 * The keyring's policy for the origin a note names (its first line; the
 * signature is checked later, under that policy).
 *
 * Returns:   0, PARLEY_EMALFORMED (no origin line) or
 *            PARLEY_EUNKNOWNSIGNER (no log: line for it).
 */
int parley__checkpoint_policy(const parley_keyring_t *ring, const void *note,
                              size_t len, parley__logpolicy_t *pol,
                              const char **why);

/* A copy of a checkpoint, or NULL (out of memory). */
parley_checkpoint_t *parley__checkpoint_dup(const parley_checkpoint_t *cp);

/* ----------------------------------------------------------- evidence */

/* What an evidence text can hold. Pointers are borrowed. */
typedef struct parley__evidence {
    const char *kind;           /* "fork", "rollback", "consistency",
                                   "inclusion", "stale" */
    const char *reason;         /* a sentence */
    const parley_checkpoint_t *a, *b; /* the checkpoints (b may be NULL) */
    const char *shown;          /* stale: the note shown but not trusted */
    size_t shown_len;
    const void *proof;          /* an encoded proof, or NULL */
    size_t proof_len;
    uint64_t seq;               /* inclusion: the update's seq */
    const void *update;         /* inclusion: its SignedUpdate bytes */
    size_t update_len;
    uint64_t own_size;          /* all/ fold: the size and root the client */
    const parley__tlog_hash_t *own_root; /* computed from what it saw */
} parley__evidence_t;

/*
 * Write an evidence text (docs/transparency.md, "parley evidence v1").
 *
 * Returns:   the text (NUL-terminated, the caller's; free()), or NULL.
 */
char *parley__evidence_format(const parley__evidence_t *e);

/* An evidence text parsed; everything owned by it. */
typedef struct parley__evidence_doc {
    char kind[32];
    char reason[512];
    char *notes[2];             /* the checkpoints' notes (NULL if absent) */
    size_t note_len[2];
    char *shown;
    size_t shown_len;
    uint8_t *proof;
    size_t proof_len;
    uint64_t seq;
    uint8_t *update;
    size_t update_len;
    uint64_t own_size;
    bool have_own_root;
    parley__tlog_hash_t own_root;
} parley__evidence_doc_t;

/*
 * Parse an evidence text strictly.
 *
 * Returns:   0, PARLEY_EMALFORMED or -ENOMEM.
 * Ownership: free the document with parley__evidence_doc_clear().
 */
int parley__evidence_parse(const char *text, size_t len,
                           parley__evidence_doc_t *out, const char **why)
    PARLEY_WARN_UNUSED;
void parley__evidence_doc_clear(parley__evidence_doc_t *d);

/* ------------------------------------------------------------ verifier */

typedef struct parley__logcheck parley__logcheck_t;

/* An event of the verifier. */
typedef struct parley__logcheck_event {
    parley_event_type_t type;   /* LOG_VERIFIED, LOG_INCONSISTENT,
                                   LOG_STALE, REJECTED */
    uint64_t seq;
    int code;                   /* REJECTED: why; INCONSISTENT:
                                   PARLEY_EINCONSISTENT */
    char *evidence;             /* owned text, or NULL */
    parley_checkpoint_t *checkpoint; /* owned copy, or NULL */
} parley__logcheck_event_t;

/* Free what an event owns. */
void parley__logcheck_event_clear(parley__logcheck_event_t *ev);

/*
 * Make a verifier for pol (copied). all: the caller hands out every
 * update (no filter), so the root is recomputed; otherwise inclusion
 * proofs. state_path (may be NULL): the saved checkpoint, read now (a
 * missing file is a first start; one that does not verify is an error).
 * now_ms: wall clock, unix ms.
 *
 * Returns:   0 with *out set, -ENOMEM, or the error of the state file
 *            (-errno, or a verification code) with why set.
 */
int parley__logcheck_new(const parley__logpolicy_t *pol, bool all,
                         const char *state_path, int64_t now_ms,
                         parley__logcheck_t **out, const char **why);

void parley__logcheck_destroy(parley__logcheck_t **lc);

/* A checkpoint seen (feed, ping reply, proof reply); bytes copied. */
void parley__logcheck_checkpoint(parley__logcheck_t *lc, const void *note,
                                 size_t len, int64_t now_ms);

/*
 * An update handed out, with its SignedUpdate bytes (copied when they
 * may be needed as evidence). In all mode seqs must follow each other;
 * a jump (a gap the daemon no longer holds) restarts the fold.
 *
 * Returns:   0 or -ENOMEM.
 */
int parley__logcheck_update(parley__logcheck_t *lc, uint64_t seq,
                            const void *env, size_t len);

/*
 * The request the verifier wants answered next, if any: req is filled
 * (op, sizes, seqs pointing into the verifier) and 1 returned, else 0.
 * One request at a time: the next comes after parley__logcheck_reply().
 */
int parley__logcheck_want(parley__logcheck_t *lc, parley__request_t *req,
                          int64_t now_ms);

/*
 * The answer to the request last wanted (r NULL with code < 0: it failed
 * or was given up on; it is asked again later).
 */
void parley__logcheck_reply(parley__logcheck_t *lc, const parley__reply_t *r,
                            int code, int64_t now_ms);

/* Forget the outstanding request (the connection went). */
void parley__logcheck_abandon(parley__logcheck_t *lc);

/* The clock: staleness. */
void parley__logcheck_tick(parley__logcheck_t *lc, int64_t now_ms);

/* Milliseconds until parley__logcheck_tick() has something to do, -1: never. */
int64_t parley__logcheck_wait(const parley__logcheck_t *lc, int64_t now_ms);

/* The next event, if any (the caller owns what it points to). */
bool parley__logcheck_next(parley__logcheck_t *lc, parley__logcheck_event_t *ev);

/*
 * Where what the verifier is fed from now on comes from: src names the
 * server (sub.c: 1 + the endpoint's index in its list; 0, the default, is
 * none, and the state file's checkpoint counts as from 0). It is what
 * parley__logcheck_counts() compares.
 */
void parley__logcheck_source(parley__logcheck_t *lc, unsigned src);

/* What the verifier checked so far. */
typedef struct parley__logcheck_counts {
    uint64_t chains;        /* consistency proofs from the trusted
                               checkpoint to a larger one that verified */
    uint64_t chains_across; /* of them, proofs from another source than the
                               one the older checkpoint came from (a
                               subscriber that moved between the nodes of
                               a cluster, or started from its state file) */
    uint64_t roots_across;  /* checkpoints of the trusted size from another
                               source than the one it came from, with the
                               same root */
    uint64_t behind;        /* checkpoints smaller than the trusted one and
                               signed later (a node that lags, or a
                               rollback): not trusted, no alarm */
} parley__logcheck_counts_t;

/* The counts (all 0 for NULL). */
parley__logcheck_counts_t parley__logcheck_counts(const parley__logcheck_t *lc);

/* The counts of a subscriber's verifier (sub.c; all 0 without one), for
 * tests. Threads: the subscriber's. */
parley__logcheck_counts_t parley__sub_log_counts(const parley_sub_t *sub);

/* The newest trusted checkpoint, or NULL. */
const parley_checkpoint_t *parley__logcheck_trusted(const parley__logcheck_t *lc);

/* Updates handed out and not yet proven (some mode) or folded but not yet
 * compared (all mode). */
size_t parley__logcheck_pending(const parley__logcheck_t *lc);

#endif /* PARLEY_LOGCHECK_H */
