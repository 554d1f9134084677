/*
 * storage.h - the seam between parleyd's data path and where updates are
 * kept.
 *
 * ingest (the write side) and query (the read side) use this contract and
 * nothing else; they do not know which implementation runs. There are
 * two shapes of it:
 *
 *   embedded   (embedded.c, the default) the local segment log (store.c)
 *              and its indexes (index.c). submit runs the order check
 *              against the local signer index, appends with seq = the
 *              next local seq and indexes the update; commit is one
 *              fdatasync. Every submit completes at once.
 *   cluster    (cluster.c, when backbone is set) a NATS JetStream stream.
 *              ingest has run the stateless checks (1-7); submit runs
 *              check 8 against what this node has applied, then
 *              publishes the update on a per-signer subject with
 *              Nats-Expected-Last-Subject-Sequence and Nats-Msg-Id, so
 *              that JetStream makes the order check cluster-wide and
 *              assigns the global seq (the stream sequence); the PubAck
 *              arrives later. Every node runs a follower that reads the
 *              stream in order, verifies each update itself, appends it
 *              to its own local log (same seqs, same bytes: the local
 *              log is an embedded storage used as a replica) and updates
 *              its indexes: "applied" means the follower has made that
 *              seq durable locally. See docs/cluster.md.
 *
 * What differs between them is who assigns the seq and runs the order
 * check; everything else in ingest and query is the same code.
 *
 * The write side, in the order ingest calls it in one turn (loop thread
 * only, like every call here):
 *
 *   submit     hand over one update that passed checks 1-7. Answers:
 *                PD_STORAGE_DONE   completed now: *done holds the seq that
 *                                  keeps the update, duplicate if the same
 *                                  signed update (body, signer and
 *                                  signature) was kept before (its
 *                                  original seq). Not durable until the
 *                                  commit.
 *                PD_STORAGE_LATER  in flight (cluster); its completion is
 *                                  handed out by completed() after a later
 *                                  commit, with u->tag.
 *                PD_STORAGE_FULL   nothing done: the batch is full; commit
 *                                  (and drain, below), then submit again.
 *                PARLEY_EREPLAY, PARLEY_ETOOLARGE, PARLEY_EUNAVAILABLE
 *                                  refused; nothing changed (a reject).
 *                                  For a replay, done->signer_seq is the
 *                                  signer's last accepted signer_seq.
 *                any other < 0     the storage can no longer keep updates:
 *                                  the daemon stops without acking.
 *              u and everything it points to are borrowed for the call.
 *   commit     the group commit point. Answers:
 *                0                 every update submitted before it that
 *                                  completed (now or by completed()) is
 *                                  durable.
 *                PARLEY_EUNAVAILABLE
 *                                  the updates cannot be made durable now
 *                                  (a full disk, an I/O error), but may be
 *                                  later: the storage is "unavailable"
 *                                  (below). Of the updates submitted since
 *                                  the last good commit only those at or
 *                                  below head() are durable; the others
 *                                  keep the seqs they were given, stay
 *                                  queued, and no ack of them may go out.
 *                any other < 0     fatal, as for submit.
 *   completed  after a commit, hands out the completions of LATER submits
 *              one by one, each once its seq is applied on this node (so
 *              its ack may go out); rc is 0 or a reject code. The
 *              embedded storage never has any.
 *   applied    after a commit, hands out every record made durable and
 *              applied since the last commit, in seq order, each once.
 *              ingest sends the acks first, then publishes these on the
 *              feed, so an update is never on the feed before the ack of
 *              a completion handed out in the same commit (the embedded
 *              storage completes every update before its record is
 *              applied; a cluster node may apply a record of its own
 *              before JetStream's PubAck for it arrives, and then acks
 *              after the commit that brings the PubAck). rec's bytes
 *              stay valid until the next submit or commit. A seq that
 *              holds no update (a cluster replica's void record) comes
 *              out too, marked absent: it is a leaf of the transparency
 *              log like any other seq, and nothing else (no ack, no
 *              feed, not counted as accepted).
 *
 *   ingest drains completed() and applied() after every commit.
 *
 * Unavailable. After a commit answered PARLEY_EUNAVAILABLE, and until one
 * answers 0, the storage keeps no new update: submit answers
 * PARLEY_EUNAVAILABLE for a new update, and for a resend of one that is
 * still queued (it has a seq above head(), so it is neither a duplicate,
 * which would ack what is not durable, nor a replay: *done then holds
 * that seq, with duplicate set); a resend of a durable update is still
 * DONE, duplicate. Each commit tries again to
 * make the queued updates durable: that is the retry, and ingest runs it
 * on a timer (not every turn) while the storage is unavailable. Once a
 * commit answers 0, applied() hands out the queued records with the
 * others, and a publisher's resend of one is a duplicate with its
 * original seq. health() says at any time which state the write side is
 * in and why.
 *
 * The read side (query, the heartbeat, ping, stats) sees only what is
 * durable and applied: head is the last such seq, read() serves no other
 * record, and latest() the state they make. Nothing submitted but not
 * committed is visible, and no read ever commits. (The api does not
 * answer a read while replies of the turn wait for its commit: it answers
 * it right after, in request order; see api.h.)
 *
 * Between turns the loop calls, on its timers, retain() (retention) and
 * check() (about every PD_STORAGE_CHECK_MS: is the storage still the one
 * the daemon opened? The embedded one checks that its state directory,
 * lock file and newest segment are still the files at their paths; a
 * fatal answer stops the daemon).
 *
 * A storage that works in the background (the cluster's follower) gives
 * an fd to poll (fd()): when it is readable, or at the latest every
 * PD_STORAGE_TICK_MS, the loop commits (pd_ingest_flush()) so that what
 * arrived is applied, acked and published. state() says what ping and
 * heartbeats report about the log: its identity across nodes and whether
 * this node is catching up. set_keyring() gives it the keyring after
 * each reload (the follower verifies every record against it).
 */
#ifndef PD_STORAGE_H
#define PD_STORAGE_H

#include "entry.h"
#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Non-negative answers of pd_storage_submit(). */
#define PD_STORAGE_DONE 0
#define PD_STORAGE_LATER 1
#define PD_STORAGE_FULL 2

/* The loop commits at least this often while a storage has an fd. */
#define PD_STORAGE_TICK_MS 100
/* How often the loop calls check() (and, while the storage is
 * unavailable, runs ingest's retry), in ms. */
#define PD_STORAGE_CHECK_MS 1000

typedef struct pd_storage pd_storage_t;

/* One update handed to submit. */
typedef struct pd_storage_update {
    const uint8_t *env;           /* SignedUpdate bytes as received */
    size_t len;
    const uint8_t *signer;        /* PARLEY_PUBLICKEY_BYTES, verified */
    const parley_update_t *update; /* its body, decoded and checked */
    int64_t received_at;          /* unix ms, as the record will carry */
    uint64_t tag;                 /* the caller's; echoed by completed() */
} pd_storage_update_t;

/* How a submit ended. */
typedef struct pd_storage_done {
    uint64_t tag;                 /* completed(): the submit's tag */
    int rc;                       /* completed(): 0 or a reject code */
    uint64_t seq;                 /* the seq that keeps the update */
    bool duplicate;               /* kept before as seq: same signed update */
    uint64_t signer_seq;          /* PARLEY_EREPLAY: the signer's last
                                   * accepted signer_seq (0 if unknown) */
    const char *detail;           /* a reject: why, for the client and the
                                   * log (NULL: the code says it all);
                                   * valid until the next call into the
                                   * storage */
} pd_storage_done_t;

/* What the write side can do now (health()). */
typedef struct pd_storage_health {
    int err;                      /* 0: updates are kept; else -errno of
                                     what fails (unavailable, or fatal) */
    bool fatal;                   /* it cannot recover: the daemon stops */
    bool low_space;               /* updates are kept, but room runs short
                                     (embedded: the disk reserve) */
    uint64_t queued;              /* updates with a seq, not yet durable */
    char reason[256];             /* what fails, in words, for the log
                                     and STATUS= ("" while all is well);
                                     may name files: not for clients */
} pd_storage_health_t;

/* One durable record. */
typedef struct pd_storage_record {
    uint64_t seq;
    int64_t received_at;          /* unix ms */
    const uint8_t *env;           /* SignedUpdate bytes (NULL if absent) */
    size_t len;
    bool absent;                  /* the seq holds no update: a void record
                                   * of a cluster replica (embedded.h); the
                                   * tree's absent-record leaf */
} pd_storage_record_t;

/*
 * An observer of the records a storage finds when it opens (the local
 * log, or a cluster node's local replica): called once per record, in
 * seq order (void records too, marked absent), before the storage serves
 * anything. The transparency log
 * checks its tree against them. rec's bytes are valid during the call.
 * A non-zero return refuses the open (the observer logs why).
 */
typedef struct pd_storage_scan {
    int (*fn)(void *ctx, const pd_storage_record_t *rec);
    void *ctx;
} pd_storage_scan_t;

/* What ping and heartbeats say about the log (state()). */
typedef struct pd_storage_state {
    uint8_t log_id[16];           /* names the seq space, the same on every
                                   * node of a cluster; all zero: the
                                   * embedded log, which has none */
    bool catching_up;             /* behind the cluster's log: replays end
                                   * at this node's head */
    const char *health;           /* "ok", or why publishes fail now
                                   * ("no_quorum", ...); static */
} pd_storage_state_t;

/* An implementation: see the contract above for each entry. The last
 * three may be NULL (the embedded storage has none of them). */
typedef struct pd_storage_ops {
    const char *name;             /* "embedded", ... */
    int (*submit)(pd_storage_t *s, const pd_storage_update_t *u,
                  pd_storage_done_t *done);
    int (*commit)(pd_storage_t *s);
    bool (*completed)(pd_storage_t *s, pd_storage_done_t *done);
    bool (*applied)(pd_storage_t *s, pd_storage_record_t *rec);
    uint64_t (*head)(const pd_storage_t *s);
    uint64_t (*first)(const pd_storage_t *s);
    int (*read)(pd_storage_t *s, uint64_t seq, int64_t *received_at,
                void *buf, size_t cap, size_t *len);
    int (*latest)(const pd_storage_t *s, pd_entry_want_fn want, void *ctx,
                  pd_entry_t **entries);
    int (*retain)(pd_storage_t *s, int64_t now_ms);
    int (*check)(pd_storage_t *s);
    void (*health)(const pd_storage_t *s, pd_storage_health_t *out);
    void (*destroy)(pd_storage_t *s);
    int (*fd)(const pd_storage_t *s);
    void (*state)(const pd_storage_t *s, pd_storage_state_t *out);
    void (*set_keyring)(pd_storage_t *s, const parley_keyring_t *ring);
} pd_storage_ops_t;

/* The common head of every implementation's struct. */
struct pd_storage {
    const pd_storage_ops_t *ops;
};

/*
 * Hand over one update (see "submit" above).
 *
 * Returns:   PD_STORAGE_DONE, PD_STORAGE_LATER, PD_STORAGE_FULL, a reject
 *            code (PARLEY_EREPLAY, PARLEY_ETOOLARGE, PARLEY_EUNAVAILABLE)
 *            or another negative error (fatal).
 */
static inline int
pd_storage_submit(pd_storage_t *s, const pd_storage_update_t *u,
                  pd_storage_done_t *done)
{
    return s->ops->submit(s, u, done);
}

/*
 * The group commit point; after a commit that answered unavailable, also
 * the retry.
 *
 * Returns:   0; PARLEY_EUNAVAILABLE (not fatal: what is above head() may
 *            not be acked, and stays queued for the next commit); or
 *            another negative error (fatal: nothing since the last commit
 *            may be acked).
 */
static inline int
pd_storage_commit(pd_storage_t *s)
{
    return s->ops->commit(s);
}

/* The next completion of a LATER submit, if one is ready. */
static inline bool
pd_storage_completed(pd_storage_t *s, pd_storage_done_t *done)
{
    return s->ops->completed(s, done);
}

/* The next record made durable by the last commit, in seq order. */
static inline bool
pd_storage_applied(pd_storage_t *s, pd_storage_record_t *rec)
{
    return s->ops->applied(s, rec);
}

/* Last durable seq, 0 if none. */
static inline uint64_t
pd_storage_head(const pd_storage_t *s)
{
    return s->ops->head(s);
}

/* Oldest seq still held, 0 if none. */
static inline uint64_t
pd_storage_first(const pd_storage_t *s)
{
    return s->ops->first(s);
}

/*
 * Read a durable record's SignedUpdate bytes into buf.
 *
 * Returns:   0 with *len set, -ENOENT if seq is not held, -ENOBUFS if cap
 *            is too small (*len then holds the size needed), or another
 *            negative error (the record cannot be read now).
 */
static inline int
pd_storage_read(pd_storage_t *s, uint64_t seq, int64_t *received_at,
                void *buf, size_t cap, size_t *len)
{
    return s->ops->read(s, seq, received_at, buf, cap, len);
}

/*
 * The entries of the current state (docs/protocol.md section 5: per
 * negotiation, party and phase, the newest update or correction that no
 * withdrawal in force names) that want accepts (NULL: all), each with
 * the seq holding its state, in no particular order. Expiry is left to
 * the caller, who reads the records.
 *
 * Returns:   the count, or -ENOMEM.
 * Ownership: *entries is the caller's; free() it (NULL when the count is
 *            0).
 */
static inline int
pd_storage_latest(const pd_storage_t *s, pd_entry_want_fn want, void *ctx,
                  pd_entry_t **entries)
{
    return s->ops->latest(s, want, ctx, entries);
}

/*
 * Apply retention as configured, between turns.
 *
 * Returns:   how many units (segments) were removed, or a negative error
 *            (logged by the caller; the daemon goes on).
 */
static inline int
pd_storage_retain(pd_storage_t *s, int64_t now_ms)
{
    return s->ops->retain(s, now_ms);
}

/* The fd to poll for background work, or -1 if the storage has none. */
static inline int
pd_storage_fd(const pd_storage_t *s)
{
    return s->ops->fd != NULL ? s->ops->fd(s) : -1;
}

/* The log's identity and this node's state, for ping and heartbeats;
 * a write side that cannot keep updates (health()) is "store_error"
 * where the storage itself says "ok". */
static inline void
pd_storage_state(const pd_storage_t *s, pd_storage_state_t *out)
{
    if (s->ops->state != NULL)
        s->ops->state(s, out);
    else
        *out = (pd_storage_state_t){ .health = "ok" };
    pd_storage_health_t h;
    s->ops->health(s, &h);
    if (h.err != 0 && strcmp(out->health, "ok") == 0)
        out->health = "store_error";
}

/* The keyring to check records against from now on (borrowed; call
 * after every reload). */
static inline void
pd_storage_set_keyring(pd_storage_t *s, const parley_keyring_t *ring)
{
    if (s->ops->set_keyring != NULL)
        s->ops->set_keyring(s, ring);
}

/*
 * On a timer, every PD_STORAGE_CHECK_MS: is the storage still the one
 * the daemon opened, and can it go on? (See the top of this file.)
 *
 * Returns:   0, or a negative error (fatal: said in the log; the daemon
 *            stops, and nothing since the last commit may be acked).
 */
static inline int
pd_storage_check(pd_storage_t *s)
{
    return s->ops->check(s);
}

/* Fill out with what the write side can do now (see the top). */
static inline void
pd_storage_health(const pd_storage_t *s, pd_storage_health_t *out)
{
    s->ops->health(s, out);
}

/* Close the storage (the embedded one syncs first); *s becomes NULL.
 * Accepts NULL. */
static inline void
pd_storage_destroy(pd_storage_t **s)
{
    if (s != NULL && *s != NULL) {
        (*s)->ops->destroy(*s);
        *s = NULL;
    }
}

#endif /* PD_STORAGE_H */
