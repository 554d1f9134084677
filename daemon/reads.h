/*
 * reads.h - parleyd's read scheduler: the reads each api connection has
 * queued, served in turn a slice at a time, and the bytes of replies each
 * connection has not read yet.
 *
 * The api (api.c) queues every replay, snapshot, stats, ping, checkpoint,
 * inclusion and consistency request here, by connection (its ROUTER
 * identity), and answers them in slices
 * that the loop runs between its turns (server.c): each slice may read
 * PD_READS_SLICE_RECORDS records of the log and take PD_READS_SLICE_US,
 * then the loop runs its timers and publishes again. Connections take
 * turns: each turn serves the oldest read of the next connection that
 * has one, so a connection with a thousand replays queued delays another
 * connection's single request by one step, not by a thousand. A replay or
 * snapshot that does not finish in its step keeps its place (its job,
 * query.h) and goes on at its connection's next turn.
 *
 * Every reply the api sends is counted here until libzmq has written it
 * out or dropped it (its buffer's free function, which libzmq calls from
 * its own thread): per connection and in total, for reads and for the
 * other replies (acks, rejects, stats and ping) apart. A connection
 * whose replay and snapshot replies are unread beyond its share
 * (reply_queue_bytes, or PD_READS_CONN_MESSAGES replies) has its reads
 * wait, and so does every connection while all of them hold
 * reply_queue_total; a connection that leaves PD_READS_OTHER_BYTES of
 * other replies unread loses further ones.
 * docs/operations.md ("Memory") turns these bounds into the daemon's
 * memory ceiling.
 *
 * Threads: everything runs on the loop thread, except
 * pd_reads_reply_free(), which libzmq calls from its I/O thread; the
 * counters they share are atomic. The scheduler must outlive the zmq
 * context (zmq_ctx_term() returns after the last free).
 */
#ifndef PD_READS_H
#define PD_READS_H

#include "parley.h"
#include "query.h"
#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records one slice reads at most, and how long it may take. */
#define PD_READS_SLICE_RECORDS 4096
#define PD_READS_SLICE_US 5000
/* A slice starts no new step with fewer records left than this, so that
 * a page is not cut short for a handful of records. */
#define PD_READS_STEP_MIN 256

/* Reads one connection may have queued, and their request bytes. */
#define PD_READS_CONN_REQUESTS 1024
#define PD_READS_CONN_REQUEST_BYTES (256 * 1024)
/* Read replies one connection may leave unread before its reads wait
 * (below the api's ZMQ_SNDHWM, so libzmq never drops one). */
#define PD_READS_CONN_MESSAGES 1024
/* Bytes of other replies (acks, rejects, stats, ping) one connection may
 * leave unread; further ones are dropped. Enough for the 1,024 acks a
 * libparley publisher may have pending (max_pending), and for a client
 * that pipelines a few thousand publishes while libzmq's I/O thread, on
 * a busy machine, writes their answers out late: what is counted here
 * is what libzmq has not written out yet, read or not. */
#define PD_READS_OTHER_BYTES (1024 * 1024)
/* What a queued message costs besides its bytes: libzmq's message slot
 * and content header, the identity frame, allocator overhead. */
#define PD_READS_MSG_OVERHEAD 128
/* The CURVE key (Z85, the X-Key property) kept with a queued read, with
 * its NUL: the read's rights are looked up by it when it is served. */
#define PD_READS_KEY_MAX (PARLEY_CURVE_KEY_CHARS + 1)

/* Which share a reply counts against. */
typedef enum {
    PD_READS_REPLY_READ = 0,  /* replay, snapshot, checkpoint, proofs (and
                                 their rejects) */
    PD_READS_REPLY_OTHER = 1, /* acks, rejects, stats, ping: small */
} pd_reads_kind_t;

/* One queued read: the request frame as received, and its job. */
typedef struct pd_read {
    struct pd_read *next;        /* the connection's next read */
    int op;                      /* parley__op_t of the request */
    bool has_key;                /* key holds the CURVE key (X-Key) */
    bool held;                   /* counted in reads_held */
    uint64_t slice;              /* slices run when it was queued */
    char key[PD_READS_KEY_MAX];
    pd_query_job_t job;          /* a replay or snapshot under way */
    size_t len;
    uint8_t bytes[];             /* the request */
} pd_read_t;

/* What the scheduler enforces; from the config. */
typedef struct pd_reads_limits {
    size_t conn_reply_bytes;     /* reply_queue_bytes */
    size_t total_reply_bytes;    /* reply_queue_total */
} pd_reads_limits_t;

typedef struct pd_reads pd_reads_t;
typedef struct pd_reads_conn pd_reads_conn_t;

/*
 * Make an empty scheduler and register its counters in stats (may be
 * NULL).
 *
 * Returns:   the scheduler, or NULL with *err set (-ENOMEM).
 * Ownership: the caller's; pd_reads_destroy() after zmq_ctx_term().
 */
pd_reads_t *pd_reads_new(const pd_reads_limits_t *lim, pd_stats_t *stats,
                         int *err);

/*
 * Free the scheduler, the reads still queued (unanswered) and every
 * connection's account. Only once no reply can be freed any more (the
 * zmq context is terminated). *r becomes NULL; accepts NULL.
 */
void pd_reads_destroy(pd_reads_t **r);

/*
 * The account of the connection with this ROUTER identity (1..255
 * bytes), made if there is none.
 *
 * Returns:   the connection (valid until the next pd_reads_tidy()), or
 *            NULL (out of memory, or an identity out of range).
 */
pd_reads_conn_t *pd_reads_conn(pd_reads_t *r, const void *id, size_t len);

/* The connection's identity. */
const uint8_t *pd_reads_conn_id(const pd_reads_conn_t *c, size_t *len);

/*
 * Queue the request (len bytes, op) of connection c, read with the CURVE
 * key key (the X-Key property, Z85; NULL without CURVE).
 *
 * Returns:   0, -ENOBUFS (c has PD_READS_CONN_REQUESTS reads or
 *            PD_READS_CONN_REQUEST_BYTES bytes queued: the caller answers
 *            rate_limited; counted reads_refused), -ENAMETOOLONG (key
 *            too long) or -ENOMEM.
 */
int pd_reads_push(pd_reads_t *r, pd_reads_conn_t *c, int op, const void *req,
                  size_t len, const char *key);

/* Start a slice: reads answered from now on after waiting for one more
 * slice count as deferred. */
void pd_reads_slice_begin(pd_reads_t *r);

/*
 * The read to serve next, round robin over the connections: the oldest
 * read of the next connection that is a stats or ping request, or a
 * replay or snapshot whose connection's replies are within its share and
 * the total (and not a snapshot waiting for the one snapshot under way
 * to finish). *c gets its connection.
 *
 * Returns:   the read, or NULL when none can be served now.
 */
pd_read_t *pd_reads_next(pd_reads_t *r, pd_reads_conn_t **c);

/*
 * The head read of c was answered (or refused): free it, and the next
 * turn goes to the next connection.
 */
void pd_reads_finish(pd_reads_t *r, pd_reads_conn_t *c);

/*
 * The head read of c spent the slice's budget: it keeps its place and
 * its job, and the next turn goes to the next connection. A snapshot
 * that has started holds the one snapshot place until it finishes.
 */
void pd_reads_yield(pd_reads_t *r, pd_reads_conn_t *c);

/* c's peer is gone: drop its queued reads unanswered (reads_dropped). */
void pd_reads_drop(pd_reads_t *r, pd_reads_conn_t *c);

/* Every connection was closed: drop every queued read. */
void pd_reads_drop_all(pd_reads_t *r);

/*
 * End a slice: spent says it stopped at its budget; counted in
 * read_slices_full when reads could still be served. Frees the accounts
 * of connections that have nothing queued or unread (at most every
 * 100 ms), and gives freed memory back to the system after a burst of
 * replies.
 */
void pd_reads_slice_end(pd_reads_t *r, bool spent);

/* Whether a read can be served now (then the loop must not sleep). */
bool pd_reads_ready(const pd_reads_t *r);

/* Whether reads are queued at all (some may wait for their replies to
 * be read: the loop then looks again within a few milliseconds). */
bool pd_reads_queued(const pd_reads_t *r);

/*
 * Whether another reply of kind other may be sent to c now: false when c
 * leaves PD_READS_OTHER_BYTES of them unread (the reply is then dropped;
 * the caller counts it with pd_reads_reply_dropped()).
 */
bool pd_reads_may_send(const pd_reads_conn_t *c);

/* Count a reply not sent (peer gone, queue full, over its share). */
void pd_reads_reply_dropped(pd_reads_t *r);

/*
 * A buffer holding a copy of the len bytes of data, counted against c as
 * kind (with id_len bytes of identity) until pd_reads_reply_free(); for
 * zmq_msg_init_data(msg, buf, len, pd_reads_reply_free, *hint).
 *
 * Returns:   the buffer, or NULL (out of memory: nothing is counted).
 */
void *pd_reads_reply_new(pd_reads_t *r, pd_reads_conn_t *c,
                         pd_reads_kind_t kind, const void *data, size_t len,
                         size_t id_len, void **hint);

/*
 * Free a buffer of pd_reads_reply_new() and uncount it (a zmq_free_fn).
 *
 * Threads:   any (libzmq's I/O thread, or the loop's when a send fails).
 */
void pd_reads_reply_free(void *data, void *hint);

#endif /* PD_READS_H */
