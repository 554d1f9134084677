/*
 * wire.h - talking to parleyd (library-internal).
 *
 * Two pieces live behind this header (wire.c):
 *
 *   - the api request/reply helper: one ZMQ_DEALER connected to the
 *     daemon's api endpoint, request ids, replies matched by id, with
 *     stale answers to abandoned requests dropped;
 *   - the feed endpoint fix-up: a daemon bound to a wildcard advertises
 *     0.0.0.0, * or [::], which the client replaces with the host it
 *     reached the api on.
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

/*
 * Has the connection to the wire's endpoint closed since the last call
 * (the daemon stopped, or the link broke)? Reads the monitor without
 * blocking; libzmq reconnects by itself.
 *
 * Returns:   1 once per closed connection, else 0.
 */
int parley__wire_disconnected(parley__wire_t *w);

/* Close the socket and terminate the context; *w becomes NULL. */
void parley__wire_destroy(parley__wire_t **w);

/* The wire's zmq context, for more sockets of the same object. */
void *parley__wire_ctx(parley__wire_t *w);

/* The DEALER socket, for zmq_poll(). */
void *parley__wire_socket(parley__wire_t *w);

/* The PAIR that receives the DEALER's handshake failures, for zmq_poll()
 * (then parley__wire_handshake() says what happened). */
void *parley__wire_monitor(parley__wire_t *w);

/*
 * The ZMQ_FD descriptors of the DEALER and of the monitor, for an event
 * loop (parley.h, "event-loop integration").
 *
 * Returns:   2 (the number the wire has); at most cap are written.
 */
int parley__wire_fds(const parley__wire_t *w, int *fds, size_t cap);

/* The ZMQ_FD of a socket, or -1. */
int parley__zmq_fd(void *sock);

/*
 * Connect sock to the endpoint to and drop its connection to from (NULL or
 * "": none), on the same socket, so that its ZMQ_FD stays. sock must be
 * connected to from alone. Before from goes, a message libzmq holds partly
 * read is read to its end and dropped (zmq_poll() reads the first frame of
 * a waiting message ahead on a SUB socket, and libzmq asserts when the
 * rest is read after its connection went); it is one of from's, which the
 * disconnect discards anyway.
 *
 * Returns:   0 or -errno from zmq_connect() (sock then stays on from,
 *            less that one message).
 * Threads:   the thread that owns sock.
 */
int parley__zmq_move(void *sock, const char *from, const char *to);

/* The api endpoint this wire is connected to. */
const char *parley__wire_server(const parley__wire_t *w);

/*
 * Connect the wire's DEALER to another api endpoint instead (the same
 * socket, so its file descriptor stays): the old connection and whatever
 * was queued on it are dropped, and what the handshake monitor knew is
 * forgotten. A prepared request stays prepared. The endpoint in use
 * already is left alone: libzmq reconnects to it by itself, and tearing
 * down a connection it is re-establishing (with CURVE) can leave the
 * socket without one.
 *
 * Returns:   0, -ENOMEM or -errno from libzmq (the wire is then still on
 *            its old endpoint).
 */
int parley__wire_switch(parley__wire_t *w, const char *server);

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
 * Send one encoded request (its own bytes, not the prepared one) without
 * waiting: with ZMQ_IMMEDIATE nothing is queued for a daemon that is not
 * connected.
 *
 * Returns:   0, -EAGAIN (no daemon connected, or its queue is full),
 *            -EACCES or PARLEY_EPROTO (see parley__wire_handshake()), or
 *            another -errno.
 */
int parley__wire_send_bytes(parley__wire_t *w, const void *buf, size_t len);

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

#endif /* PARLEY_WIRE_H */
