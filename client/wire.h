/*
 * wire.h - talking to parleyd (library-internal).
 *
 * Three pieces live behind this header:
 *
 *   - the api request/reply helper (wire.c): one ZMQ_DEALER connected to
 *     the daemon's api endpoint, request ids, replies matched by id, with
 *     stale answers to abandoned requests dropped;
 *   - the feed endpoint fix-up (wire.c): a daemon bound to a wildcard
 *     advertises 0.0.0.0, * or [::], which the client replaces with the
 *     host it reached the api on;
 *   - the subscription merge state (sub.c): the pure bookkeeping behind
 *     the reliable subscription, kept free of sockets so that unit tests
 *     can drive it message by message.
 */
#ifndef PARLEY_WIRE_H
#define PARLEY_WIRE_H

#include "clock.h"
#include "codec.h"
#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-request timeout used when a caller passes 0. */
#define PARLEY__TIMEOUT_DEFAULT_MS 5000

/* ------------------------------------------------------------ api wire */

typedef struct parley__wire parley__wire_t;

/* Largest reply a client reads (a snapshot of 4096 updates fits). */
#define PARLEY__REPLY_MAX (64 * 1024 * 1024)
/* Largest feed message a subscriber reads: a Delivery of a valid update. */
#define PARLEY__FEED_MSG_MAX (64 * 1024)

/*
 * Make a zmq context and a DEALER connected to the api endpoint server
 * (ZMQ_LINGER 0, ZMQ_IMMEDIATE 1: nothing is queued for a daemon that is
 * not connected, so a dead daemon shows up as a send timeout), through
 * CurveZMQ when curve is not NULL. A socket monitor watches the handshake
 * so that a daemon refusing us is told apart from one that is not there.
 *
 * Returns:   the wire, or NULL with *err set (-errno from libzmq, e.g.
 *            -EINVAL for a malformed endpoint).
 * Ownership: the caller's; free with parley__wire_destroy(). curve is
 *            needed only during the call.
 */
parley__wire_t *parley__wire_new(const char *server,
                                 const parley_curve_t *curve, int *err);

/*
 * Has the handshake with the daemon failed? Reads the monitor without
 * blocking.
 *
 * Returns:   0 (no news), -EACCES (the daemon refused our key) or
 *            PARLEY_EPROTO (the security mechanisms differ: one side uses
 *            CURVE and the other does not, or keys do not match).
 */
int parley__wire_handshake(parley__wire_t *w);

/* Close the socket and terminate the context; *w becomes NULL. */
void parley__wire_destroy(parley__wire_t **w);

/* The wire's zmq context, for more sockets of the same object. */
void *parley__wire_ctx(parley__wire_t *w);

/* The DEALER socket, for zmq_poll(). */
void *parley__wire_socket(parley__wire_t *w);

/* The PAIR that receives the DEALER's handshake failures, for zmq_poll()
 * (then parley__wire_handshake() says what happened). */
void *parley__wire_monitor(parley__wire_t *w);

/* The api endpoint this wire was made for. */
const char *parley__wire_server(const parley__wire_t *w);

/*
 * Encode req under a fresh request id into the wire's send buffer,
 * replacing any earlier prepared request. req->request_id is overwritten.
 *
 * Returns:   0 with *id set, -ENOBUFS or PARLEY_EARG.
 */
int parley__wire_prepare(parley__wire_t *w, parley__request_t *req,
                         uint64_t *id);

/*
 * Send the prepared request (again, if it was sent before: the same
 * bytes under the same id), waiting up to timeout_ms (-1 = forever) for a
 * connected daemon.
 *
 * Returns:   0, PARLEY_ETIMEOUT (nothing connected in time), -EACCES or
 *            PARLEY_EPROTO (see parley__wire_handshake()), -EINTR or
 *            another -errno.
 */
int parley__wire_send(parley__wire_t *w, int timeout_ms);

/*
 * Receive the reply to request id (0 = to any request), waiting up to
 * timeout_ms (-1 = forever, 0 = only what has arrived). Replies with other
 * ids are dropped: they answer requests given up on earlier.
 *
 * Returns:   0 with *out filled (its pointers stay valid until the next
 *            receive on this wire), PARLEY_ETIMEOUT, PARLEY_EPROTO (an
 *            answer that does not decode, or see parley__wire_handshake()),
 *            -EACCES, -EINTR or another -errno.
 */
int parley__wire_recv(parley__wire_t *w, uint64_t id, int timeout_ms,
                      parley__reply_t *out);

/*
 * Prepare, send and receive within one timeout_ms (0 = the default).
 * A REJECT reply is returned as its PARLEY_E* code with *out filled.
 *
 * Returns:   0, the reject code, or an error as above.
 */
int parley__wire_call(parley__wire_t *w, parley__request_t *req,
                      int timeout_ms, parley__reply_t *out);

/*
 * Turn the feed endpoint a daemon advertised into one to connect to: if
 * its host is 0.0.0.0, * or [::] (or empty), use the host of the api
 * endpoint instead ("tcp://0.0.0.0:7711" with api "tcp://10.0.0.5:7710"
 * gives "tcp://10.0.0.5:7711"). Other endpoints are copied unchanged.
 *
 * Returns:   0, -ENAMETOOLONG if out is too small, PARLEY_EPROTO for an
 *            empty advertised endpoint.
 */
int parley__feed_endpoint(const char *advertised, const char *api, char *out,
                          size_t cap);

/* ----------------------------------------------- subscription merging */

/* One held delivery: its seq and the Delivery bytes (heap, owned). */
typedef struct parley__merge_item {
    uint64_t seq;
    uint8_t *data;
    size_t len;
} parley__merge_item_t;

/*
 * What a subscriber knows about the log, as plain state.
 *
 * emitted <= confirmed always. Every seq <= emitted has been handed out
 * (delivered, rejected, dropped by the filter or reported in a gap). Every
 * seq <= confirmed is either handed out or held in items[]: the daemon has
 * said so (a replay page or a snapshot), or the feed showed it contiguously.
 * A held item above confirmed + 1 means something between may be missing,
 * which only a replay can settle: with a filter, seqs of updates that do not
 * match are legitimately absent from the feed.
 */
typedef struct parley__merge {
    parley__merge_item_t *items; /* ascending, unique seqs, all > emitted */
    size_t n;                    /* items used */
    size_t alloc;                /* items allocated */
    size_t limit;                /* live items held at most (soft cap) */
    uint64_t emitted;            /* last seq handed out */
    uint64_t confirmed;          /* all seqs up to here are accounted for */
    uint64_t gap_to;             /* seqs up to here are gone (TRUNCATED) */
    uint64_t hb_seq;             /* head seq of the latest heartbeat */
    bool hold;                   /* a snapshot is awaited: emit nothing */
    bool replaying;              /* a replay is under way: keep paging */
} parley__merge_t;

/* What parley__merge_next() hands out. */
typedef struct parley__merge_out {
    parley__merge_item_t item;   /* with 1: the caller frees item.data */
    uint64_t gap_from, gap_to;   /* with 2: inclusive range gone */
} parley__merge_out_t;

/* Start empty, holding at most limit live items (0 = 1024). */
void parley__merge_init(parley__merge_t *m, size_t limit);

/* Free every held item; the state can be initialised again. */
void parley__merge_clear(parley__merge_t *m);

/*
 * Set where the subscription starts, once the first heartbeat (head seq
 * head) has shown the feed is live: LIVE after head; SEQ from since (a
 * replay); LAST holds everything until parley__merge_snapshot().
 */
void parley__merge_start(parley__merge_t *m, parley_start_t start,
                         uint64_t since, uint64_t head);

/*
 * Forget everything and continue after seq after with a replay (the
 * daemon came back with a different log).
 */
void parley__merge_rebase(parley__merge_t *m, uint64_t after);

/*
 * A delivery read from the feed. Repeats (one per topic) and seqs already
 * accounted for are dropped; when limit items are held the highest
 * unconfirmed one is dropped (a later replay fetches it again).
 *
 * Returns:   0 or -ENOMEM.
 */
int parley__merge_live(parley__merge_t *m, uint64_t seq, const void *data,
                       size_t len);

/* A heartbeat with the daemon's head seq. */
void parley__merge_heartbeat(parley__merge_t *m, uint64_t seq);

/* 1 if no more live items should be read for now, else 0. */
int parley__merge_full(const parley__merge_t *m);

/*
 * Should a replay request go out now? Only when nothing can be handed
 * out: then if a replay is under way, or a held item or the latest
 * heartbeat shows seqs beyond confirmed that the feed did not account for.
 *
 * Returns:   1 with *from set (always confirmed + 1), else 0.
 */
int parley__merge_want_replay(parley__merge_t *m, uint64_t *from);

/*
 * A replay page for a request from seq from: items (Delivery bytes,
 * copied) are every delivery matching the filter in from..next_seq-1.
 *
 * Returns:   0, -ENOMEM, or PARLEY_EPROTO (a page that makes no progress).
 */
int parley__merge_page(parley__merge_t *m, uint64_t from, uint64_t next_seq,
                       bool done, const parley__merge_item_t *items,
                       size_t n);

/*
 * The snapshot (as of seq) a LAST start waits for: it replaces whatever
 * the feed brought up to seq, and releases the hold.
 *
 * Returns:   0 or -ENOMEM.
 */
int parley__merge_snapshot(parley__merge_t *m, uint64_t seq,
                           const parley__merge_item_t *items, size_t n);

/*
 * A replay from seq from was answered TRUNCATED with first_seq (0 = the
 * daemon holds nothing): the seqs before it are reported as gaps (around
 * any that the feed brought), and the replay continues at first_seq.
 *
 * Returns:   0 or PARLEY_EPROTO (first_seq not above from).
 */
int parley__merge_truncated(parley__merge_t *m, uint64_t from,
                            uint64_t first_seq);

/*
 * Hand out the next thing in seq order.
 *
 * Returns:   0 (nothing yet), 1 (an item; out->item.data is the caller's)
 *            or 2 (a gap, out->gap_from..gap_to).
 */
int parley__merge_next(parley__merge_t *m, parley__merge_out_t *out);

/* Seq of the last update handed out or known to be skipped. */
uint64_t parley__merge_last_seq(const parley__merge_t *m);

#endif /* PARLEY_WIRE_H */
