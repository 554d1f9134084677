/*
 * nats_proxy.h - a relay between NATS clients and one real nats-server
 * for tests, that reads the client protocol as it passes and can alter
 * what a JetStream consumer is delivered (as a replica that holds other
 * bytes than the stream leader would show) and hold back the answer to a
 * STREAM.MSG.GET request. Everything else passes unchanged, frame by
 * frame. It can also make the server answer that it holds no record at
 * a seq (by asking it about another). Loopback only; one thread.
 *
 * The frames it reads (docs.nats.io, "Client Protocol"): from the server
 * `MSG <subject> <sid> [reply] <#bytes>` and `HMSG <subject> <sid> [reply]
 * <#header bytes> <#total bytes>`, each followed by its payload and CRLF;
 * from the client `PUB` and `HPUB` alike. A consumer's delivery has the
 * reply `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
 * seq>.<time>.<pending>` (nats-server 2.9); a STREAM.MSG.GET request is a
 * PUB to `$JS.API.STREAM.MSG.GET.<stream>` with a reply inbox and the
 * JSON body `{"seq":N}`.
 */
#ifndef PH_NATS_PROXY_H
#define PH_NATS_PROXY_H

#include <stddef.h>
#include <stdint.h>

typedef struct ph_nats_proxy ph_nats_proxy_t;

/*
 * Listen on a free port of 127.0.0.1 and relay every connection to the
 * nats-server listening on 127.0.0.1:server_port, for stream `stream`'s
 * deliveries and requests.
 *
 * Returns:   0 or -errno.
 * Ownership: *out is the caller's; ph_nats_proxy_stop() ends it.
 * Threads:   the relay runs in a thread of its own; the other functions
 *            may be called from any thread.
 */
int ph_nats_proxy_start(ph_nats_proxy_t **out, const char *stream,
                        int server_port);

/* "nats://127.0.0.1:<port>" of the proxy. */
const char *ph_nats_proxy_url(const ph_nats_proxy_t *p);

/* Flip a bit of the payload's first byte in the next n deliveries of
 * stream seq `seq` to a consumer (the header is left alone). */
void ph_nats_proxy_tamper(ph_nats_proxy_t *p, uint64_t seq, int n);

/* Hold back the answer to the next STREAM.MSG.GET request for `seq`
 * until the client has asked for `until_seq` too, or for at most max_ms;
 * the frames after it pass meanwhile. */
void ph_nats_proxy_hold_get(ph_nats_proxy_t *p, uint64_t seq,
                            uint64_t until_seq, int max_ms);

/* What the proxy saw: deliveries it altered; answers it held back and
 * whether the client had asked for until_seq when each was let go. */
int ph_nats_proxy_tampered(ph_nats_proxy_t *p);
int ph_nats_proxy_held(ph_nats_proxy_t *p, int *released_on_time);

/* Make the next n STREAM.MSG.GET requests for `seq` ask the server
 * about a seq no stream reaches, so that the server itself answers that
 * it holds no such message (as a leader that has not applied a record
 * yet would). Up to 4 seqs at once; calling it again for a seq replaces
 * its count. */
void ph_nats_proxy_absent(ph_nats_proxy_t *p, uint64_t seq, int n);

/* The same for the first request about each of the n seqs from first
 * (n <= 64). */
void ph_nats_proxy_absent_span(ph_nats_proxy_t *p, uint64_t first, int n);

/*
 * The seqs of the STREAM.MSG.GET requests so far, in the order the
 * client sent them, into out (up to cap), and when each passed (mono ms)
 * into at_ms unless it is NULL.
 *
 * Returns:   how many were sent (may exceed cap).
 */
size_t ph_nats_proxy_gets(ph_nats_proxy_t *p, uint64_t *out, int64_t *at_ms,
                          size_t cap);

/* Stop the relay and close every connection; NULL is fine. */
void ph_nats_proxy_stop(ph_nats_proxy_t **pp);

#endif /* PH_NATS_PROXY_H */
