/*
 * ingest.h - parleyd's write path: from a publish read off the api to an
 * acked, durable update on the feed.
 *
 * One call of pd_ingest_turn() is one group-commit turn. It takes the
 * steps of docs/protocol.md section 4 in order, each in ingest.c under a
 * heading of the same name:
 *
 *   gather     read up to PD_INGEST_TURN_MAX requests through io->recv,
 *              a step of at most PD_INGEST_SLOTS at a time
 *   pre-check  in arrival order: decode the request; for a publish the
 *              connection's cool-down, the envelope and signer lookup
 *              (checks 1-3) and the signer's token bucket (check 3a)
 *   verify     the step's signature checks (check 4) run on the pool
 *              while the loop thread gathers the next step
 *   checks     in arrival order: signature verdict, body and permissions
 *              (5, 6), clock window (7); anything not a publish goes to
 *              io->answer
 *   store      order check (8: replay, duplicate) and append: storage.h,
 *              which also keeps the indexes
 *   commit     one group commit (fdatasync) for the whole turn
 *   acks       then io->flush sends every reply queued in the turn, acks
 *              and rejects in request order
 *   feed       then every update the commit made durable is published
 *              through io->publish, and after it goes to the
 *              transparency log (io->applied, io->committed)
 *
 * Nothing is acked before it is durable, and no delivery is published
 * before its ack is sent. When the storage cannot make a batch durable
 * for now (a full disk: storage.h, "unavailable"), the batch is answered
 * unavailable, new publishes are answered unavailable at once, reads go
 * on, and pd_ingest_retry() on a timer commits again until it works. Under load a turn may leave its last step read
 * and being verified on the pool while it commits (pd_ingest_pending());
 * the next turn handles it, or pd_ingest_flush() does.
 *
 * ingest knows neither sockets nor files: requests, replies and the feed
 * pass through pd_ingest_io_t (api.c and feed.c in the daemon; a unit
 * test drives it with plain messages), and updates are kept through the
 * storage seam (storage.h).
 */
#ifndef PD_INGEST_H
#define PD_INGEST_H

#include "codec.h"
#include "config.h"
#include "parley.h"
#include "stats.h"
#include "storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* Requests handled per turn (group commit batch) at most. */
#define PD_INGEST_TURN_MAX 1024

/*
 * Requests read per step of a turn. Their signature checks run on the
 * pool together; more than this would only hold more memory (one
 * parley__verify_t each) for no gain in parallelism.
 */
#define PD_INGEST_SLOTS 256

/* An encoded ack reply at most; io->room() must offer this much. */
#define PD_INGEST_ACK_MAX 64

/* ROUTER identities are 1..255 bytes. */
#define PD_INGEST_ID_MAX 255

/* One api message as read: [identity][request], and how many frames. */
typedef struct pd_msg {
    zmq_msg_t id;    /* the connection's identity */
    zmq_msg_t body;  /* the request (the first frame after the identity) */
    int frames;      /* frames the message had; 2 is well-formed */
} pd_msg_t;

/*
 * What ingest needs from the api and the feed. In parleyd api.c provides
 * everything but publish (pd_api_io()), feed.c publish.
 */
typedef struct pd_ingest_io {
    void *ctx; /* passed to recv, answer, reply, room and flush */
    /*
     * Read one message without blocking into msg (initialised by the
     * callee). Returns 1 if one was read, 0 if none was waiting.
     */
    int (*recv)(void *ctx, pd_msg_t *msg);
    /*
     * Answer a request that is not a publish (or not a well-formed
     * message): in order with the replies queued before it. The callee
     * may take the frames over (zmq_msg_move); ingest closes msg after.
     */
    void (*answer)(void *ctx, pd_msg_t *msg);
    /*
     * Queue the reply r to the connection id (id_len bytes), to be sent
     * by the next flush. A reject carries its code (and, for a replay,
     * the signer's last accepted signer_seq); the callee counts and logs
     * it and makes its message: the code's sentence and detail (may be
     * NULL), which the log line says too.
     * Returns 0, or -ENOBUFS when the queue has no room (ingest then
     * commits and calls again).
     */
    int (*reply)(void *ctx, const uint8_t *id, size_t id_len,
                 const parley__reply_t *r, const char *detail);
    /* Whether an ack of PD_INGEST_ACK_MAX bytes to an id of id_len
     * bytes fits the queue now. */
    bool (*room)(void *ctx, size_t id_len);
    /*
     * After a commit: send what was queued, in order. An ack of a seq
     * above durable (the storage's head) is not sent, as that update is
     * not durable (a commit failed): its request is answered unavailable
     * instead, with why (may be NULL) as the reject's message.
     */
    void (*flush)(void *ctx, uint64_t durable, const char *why);
    /*
     * Publish one durable update on the feed, on each of its n topics.
     * Returns 0 or a negative error (logged; the delivery is not sent,
     * subscribers replay the gap).
     */
    int (*publish)(void *feed, uint64_t seq, int64_t received_at,
                   const void *env, size_t len,
                   const char topics[][PARLEY_TOPIC_MAX], size_t n);
    void *feed; /* passed to publish */
    /*
     * The transparency log (may be NULL): applied gets each record the
     * commit made durable and applied, in seq order, before it goes on
     * the feed; committed follows the last of them. A negative return is
     * fatal, as a failed commit is (the acks are out already; the daemon
     * stops, and its next start recomputes what the log lacks).
     */
    int (*applied)(void *log, const pd_storage_record_t *rec);
    int (*committed)(void *log);
    void *log; /* passed to applied and committed */
} pd_ingest_io_t;

typedef struct pd_ingest pd_ingest_t;

/*
 * Make the write path: buffers sized from cfg->max_message_bytes, the
 * verification pool, the rate limits (cfg->rate_limit, rate_burst), and
 * its counters registered in stats. cfg, storage and stats are borrowed
 * and must outlive it; io is copied.
 *
 * Returns:   the ingest, or NULL with *err set (-errno).
 */
pd_ingest_t *pd_ingest_new(const pd_config_t *cfg, pd_storage_t *storage,
                           const pd_ingest_io_t *io, pd_stats_t *stats,
                           int *err);

/*
 * Free everything; requests read ahead are dropped unanswered (the
 * daemon is stopping on an error; clients resend). *ing becomes NULL.
 * Accepts NULL.
 */
void pd_ingest_destroy(pd_ingest_t **ing);

/*
 * Check publishes against ring (borrowed) from now on. Call between turns
 * with nothing pending (pd_ingest_flush() first); the previous keyring
 * may be destroyed as soon as this returns. NULL answers every publish
 * unavailable.
 */
void pd_ingest_set_keyring(pd_ingest_t *ing, const parley_keyring_t *ring);

/*
 * One turn: handle what io->recv() yields, commit, send the replies,
 * publish the new deliveries.
 *
 * Returns:   0 (also when the storage answered unavailable), or a
 *            negative error when updates can no longer be stored
 *            (nothing of the failed batch was acked; the daemon must exit
 *            non-zero).
 */
int pd_ingest_turn(pd_ingest_t *ing);

/*
 * Whether a turn left requests read but not yet handled (their signatures
 * being checked on the pool): then the loop must turn again without
 * waiting for the socket.
 */
bool pd_ingest_pending(const pd_ingest_t *ing);

/*
 * Handle whatever a turn left pending, and commit and answer it: before
 * the keyring changes and before the daemon stops. While the storage is
 * unavailable this commit is also a retry.
 *
 * Returns:   0, or a negative error as for pd_ingest_turn().
 */
int pd_ingest_flush(pd_ingest_t *ing);

/*
 * On a timer, between turns: if the last commit found the storage
 * unavailable, commit again (the retry). If that works, the updates that
 * waited are durable and go out on the feed (their publishers were told
 * unavailable; a resend is answered duplicate, with the original seq).
 * Does nothing otherwise.
 *
 * Returns:   0 (also when the storage is still unavailable), or a fatal
 *            error as for pd_ingest_turn().
 */
int pd_ingest_retry(pd_ingest_t *ing);

/* Whether the last commit found the storage unavailable (publishes are
 * answered unavailable until a retry works). */
bool pd_ingest_unavailable(const pd_ingest_t *ing);

#endif /* PD_INGEST_H */
