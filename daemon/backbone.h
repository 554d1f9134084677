/*
 * backbone.h - parleyd's NATS JetStream client: the replicated log of the
 * cluster mode (issue 13; docs/cluster.md).
 *
 * In cluster mode one JetStream stream holds every accepted update, and
 * its stream sequence is the parley seq. This module is the daemon's only
 * door to it. It
 *
 *   - connects to the NATS servers (with the credentials and TLS a real
 *     deployment needs) and creates the stream if it is missing: file
 *     storage, the configured replicas, a duplicate window of at least
 *     2 * max_clock_skew, retention mapped from parleyd's retention
 *     options; an existing stream whose settings contradict these is
 *     refused, naming every field that differs;
 *   - SUBMITS the bytes of one SignedUpdate on its signer's subject
 *     "<stream>.u.<key id>", with Nats-Expected-Last-Subject-Sequence (the
 *     stream seq of that signer's last update the node knows) and
 *     Nats-Msg-Id "<key id>-<signer_seq>", so that a resend of an update,
 *     and any other update with the same signer and signer_seq, is a
 *     JetStream duplicate: JetStream stores at most one update per
 *     (signer, signer_seq) within the duplicate window, whatever node
 *     submits it;
 *   - FOLLOWS the stream in order from a given seq (a push consumer)
 *     and hands each record (seq, bytes, JetStream time) over once the
 *     stream leader has confirmed that it holds that very record at that
 *     seq: a replica of nats-server 2.9.10 can hold other records than
 *     the leader after a leader was paused (docs/cluster.md, "Replicas
 *     that disagree"), and the consumer reads from any replica;
 *   - watches the connection and the stream's quorum and reports a health
 *     state and whether the follower is catching up.
 *
 * Threads. nats.c calls back on its own threads; this module adds a
 * submit thread (so that no publish can block the caller, even against a
 * stopped server), a control thread (follower subscription, probes of
 * the stream) and a check thread (each record against the leader's).
 * Everything they produce reaches the caller through one
 * queue and an eventfd: the daemon's single-threaded zmq_poll loop polls
 * pd_backbone_fd() and drains events with pd_backbone_next(). Every
 * function below is for that one caller thread, unless it says otherwise.
 *
 * Flow control. At most max_inflight submits are pending at a time
 * (pd_backbone_submit() says -EAGAIN beyond). At most follow_max_records
 * records / follow_max_bytes bytes wait in the queue: when the caller
 * falls that far behind, the follower unsubscribes and subscribes again
 * from the next seq once the caller has taken half of them, so a slow
 * loop costs re-reads, never unbounded memory.
 *
 * JetStream 2.9 caveat (measured; docs/cluster.md): in a clustered stream
 * the server checks Nats-Expected-Last-Subject-Sequence > 0 only before
 * proposing a message, against what it has applied, so two publishes on
 * one subject racing within a commit round-trip can both pass. The check
 * of Nats-Msg-Id runs when each message is applied, in log order, and is
 * race-free; that is why the msg id names (signer, signer_seq).
 */
#ifndef PD_BACKBONE_H
#define PD_BACKBONE_H

#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_BACKBONE_STREAM_MAX 32   /* chars of a stream name */
#define PD_BACKBONE_SERVERS_MAX 16  /* URLs in the server list */
#define PD_BACKBONE_DETAIL_MAX 160  /* bytes of a detail text, with NUL */

typedef struct pd_backbone pd_backbone_t;

/* What pd_backbone_open() needs. Strings are copied; NULL = not set. */
typedef struct pd_backbone_opts {
    /* "nats://h1:4222,nats://h2:4222" (tls:// for TLS). No user:password@
     * part: credentials go in creds_file (see docs/cluster.md). */
    const char *servers;
    const char *stream;          /* [A-Za-z0-9_-]{1,32}; default PARLEY */
    uint32_t replicas;           /* 1..5; default 3 */
    uint32_t max_clock_skew;     /* s, parleyd's max_clock_skew */
    uint64_t duplicate_window;   /* s; 0 = 2 * max_clock_skew (the least
                                    allowed) */
    uint64_t retention_bytes;    /* parleyd's retention_bytes, 0 = none */
    uint64_t retention_age;      /* parleyd's retention_age (s), 0 = none */
    uint32_t max_message_bytes;  /* largest SignedUpdate submitted */
    const char *creds_file;      /* NATS user JWT + nkey seed (mode 0600) */
    const char *tls_ca_file;     /* CA bundle that signs the servers' certs */
    const char *tls_cert_file;   /* client certificate (mutual TLS) */
    const char *tls_key_file;    /* its key (mode 0600) */
    const char *tls_hostname;    /* name the servers' certificates must
                                    carry; without it nats.c 3.4 checks the
                                    chain only, not the name */
    const char *name;            /* connection name servers show, or NULL */
    uint32_t publish_timeout_ms; /* a submit unanswered by then is
                                    UNAVAILABLE; default 2000 */
    uint32_t open_timeout_ms;    /* pd_backbone_open() gives up; 10000 */
    uint32_t max_inflight;       /* submits pending at once; 1024 */
    uint32_t follow_max_records; /* records queued for the caller; 4096 */
    uint64_t follow_max_bytes;   /* and their bytes; 16 MiB */
} pd_backbone_opts_t;

/* Fill o with the defaults above (servers NULL: must be set). */
void pd_backbone_opts_defaults(pd_backbone_opts_t *o);

/*
 * Check options without connecting: server list syntax (no credentials in
 * URLs), stream name, replicas, the duplicate window against
 * max_clock_skew and retention_age, and that the credential and key files
 * exist and are not readable by group or others.
 *
 * Returns:   0, or -EINVAL / -EACCES / -ENOENT with a message in errbuf.
 */
int pd_backbone_opts_check(const pd_backbone_opts_t *o, char *errbuf,
                           size_t errlen);

/*
 * Check a server list alone ("nats://h:4222,tls://h2:4222"): syntax, no
 * credentials in URLs, at most PD_BACKBONE_SERVERS_MAX servers.
 *
 * Returns:   0, or -EINVAL with a message in errbuf.
 */
int pd_backbone_servers_check(const char *list, char *errbuf, size_t errlen);

/*
 * Connect and make sure the stream exists with parleyd's settings (create
 * it if missing). Blocks for up to open_timeout_ms while no server answers
 * or JetStream has no leader yet, retrying; fails at once on a permanent
 * error. Does not follow yet (pd_backbone_follow()).
 *
 * Returns:   the client, or NULL with *err = -EINVAL (options), -EACCES
 *            (authentication or TLS refused), -EEXIST (the stream exists
 *            with contradicting settings: errbuf lists every field that
 *            differs), -ETIMEDOUT (nothing usable answered in time),
 *            -EPROTO (JetStream refused the stream for another reason) or
 *            -ENOMEM; errbuf says what happened.
 * Ownership: the caller's; close with pd_backbone_close().
 */
pd_backbone_t *pd_backbone_open(const pd_backbone_opts_t *opts, char *errbuf,
                                size_t errlen, int *err);

/*
 * Stop the threads, wait (up to publish_timeout_ms) for pending submits to
 * be answered or time out, end the follower and close the connection.
 * Events not taken are dropped. *bb becomes NULL; accepts NULL.
 */
void pd_backbone_close(pd_backbone_t **bb);

/*
 * At the end of a process that used a backbone: stop nats.c's own
 * threads and free its global state (waits up to 2 s for them).
 * Threads:   the main thread, after every backbone is closed.
 */
void pd_backbone_library_close(void);

/*
 * The eventfd to poll (ZMQ_POLLIN / POLLIN): readable while events wait.
 * Drain with pd_backbone_next() until it returns 0.
 * Ownership: the backbone's; valid until pd_backbone_close().
 */
int pd_backbone_fd(const pd_backbone_t *bb);

/* ------------------------------------------------------------- submit */

/* One update to submit. */
typedef struct pd_backbone_submit {
    uint64_t token;             /* the caller's id; comes back in the event */
    const uint8_t *signer;      /* PARLEY_PUBLICKEY_BYTES: subject, msg id */
    uint64_t signer_seq;        /* of the verified update: msg id */
    uint64_t expect_last;       /* stream seq of this signer's last update
                                   the node knows; 0 = none */
    const void *data;           /* the SignedUpdate bytes (copied) */
    size_t len;
} pd_backbone_submit_t;

/*
 * Queue one submit. Never blocks. Exactly one PD_BACKBONE_EV_SUBMITTED
 * event with this token follows a 0 return.
 *
 * One submit per signer is in nats.c at a time, the others wait in
 * submit order; the one that goes next expects the subject's last seq
 * the backbone knows from the completions (or expect_last, if later).
 *
 * Returns:   0, -EAGAIN (max_inflight submits pending: try again after a
 *            completion), -EMSGSIZE (len over max_message_bytes), -EINVAL,
 *            -ENOMEM, -ESTALE (health is PD_BACKBONE_DIVERGED), or
 *            -ESHUTDOWN (closing).
 */
int pd_backbone_submit(pd_backbone_t *bb, const pd_backbone_submit_t *s);

/*
 * Submit the parked submit token of signer's subject again (after a
 * PD_BACKBONE_CONFLICT), expecting expect_last (or the subject's last seq
 * the backbone knows, if later). Exactly one more EV_SUBMITTED follows.
 *
 * Returns:   0, -ENOENT (no such parked submit), -ESTALE (diverged), or
 *            -ESHUTDOWN.
 */
int pd_backbone_resubmit(pd_backbone_t *bb, uint64_t token,
                         const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                         uint64_t expect_last);

/*
 * Drop the parked submit token of signer's subject (the caller has
 * answered it otherwise); the subject's next submit goes on. No event
 * follows.
 *
 * Returns:   0 or -ENOENT.
 */
int pd_backbone_abandon(pd_backbone_t *bb, uint64_t token,
                        const uint8_t signer[PARLEY_PUBLICKEY_BYTES]);

/* ------------------------------------------------------------- follow */

/*
 * Start following the stream from seq from (>= 1): every record with
 * seq >= from is handed over as a PD_BACKBONE_EV_RECORD event, in
 * stream order, each once, for as long as the backbone is open (across
 * reconnects and server failures). Records the stream no longer holds
 * (retention) are skipped: the next event's seq then jumps; a jump over
 * seqs the stream still holds (a consumer that lost its way) is never
 * handed over: the follower reads again from the seq it wants.
 * catching_up is true until the follower has handed over the stream's
 * last record as known then.
 *
 * Each record is handed over only once the stream leader answered that
 * it holds the same subject, bytes and store time at that seq; while no
 * leader answers, records wait. A record the leader holds otherwise is
 * read again from a new consumer (status: rereads); after 10 re-reads of
 * one seq in a row health becomes PD_BACKBONE_DIVERGED.
 *
 * If the stream ends before from - 1 (the node holds records the stream
 * does not), health becomes PD_BACKBONE_DIVERGED within a few seconds.
 *
 * Returns:   0, -EINVAL (from 0), or -EALREADY.
 */
int pd_backbone_follow(pd_backbone_t *bb, uint64_t from);

/* ------------------------------------------------------------- events */

typedef enum {
    PD_BACKBONE_EV_SUBMITTED = 1, /* a submit completed */
    PD_BACKBONE_EV_RECORD,        /* the follower read a record */
    PD_BACKBONE_EV_STATE,         /* health or catching_up changed */
} pd_backbone_ev_kind_t;

/* How a submit ended. */
typedef enum {
    /* Stored at seq. duplicate: JetStream already held an update with
     * this signer and signer_seq, at seq; it may be other bytes (compare
     * them once the follower has handed seq over: same bytes = duplicate,
     * else replay). */
    PD_BACKBONE_STORED = 0,
    /* The signer's subject has another last seq (seq) than expect_last.
     * The submit is parked, and the subject with it: the submits queued
     * behind it wait, so a signer's updates keep their order. The caller
     * catches up to seq and decides from its own state: a duplicate or a
     * replay (pd_backbone_abandon()), or pd_backbone_resubmit() expecting
     * seq. A seq below expect_last means retention dropped the signer's
     * last update. */
    PD_BACKBONE_CONFLICT,
    /* No answer within publish_timeout_ms, no stream leader, or no
     * connection. Not known to be stored: it may still be stored later (a
     * quorum that comes back commits what it had), so a resend must use
     * the same bytes (it is then a duplicate). */
    PD_BACKBONE_UNAVAILABLE,
    /* JetStream refused the message itself (size, permissions): detail. */
    PD_BACKBONE_REFUSED,
} pd_backbone_result_t;

/* Connection and stream health, as pd_backbone_status() reports it. */
typedef enum {
    PD_BACKBONE_OK = 0,          /* connected, the stream has a quorum */
    PD_BACKBONE_DISCONNECTED,    /* no NATS server reachable: reconnecting */
    PD_BACKBONE_NO_QUORUM,       /* connected, but the stream has no leader
                                    or submits time out */
    PD_BACKBONE_NO_STREAM,       /* the stream was deleted under us */
    PD_BACKBONE_DIVERGED,        /* the stream was made again, or ends
                                    below what the leader confirmed to this
                                    node (3 probes in a row over 2 s at
                                    least, each from a leader):
                                    it lost records (a majority of its
                                    servers lost what they had not
                                    synced); or the replicas kept holding
                                    another record than the leader at one
                                    seq. Final: submits are refused */
} pd_backbone_health_t;

/* One event. Pointers stay valid until the next pd_backbone_next(). */
typedef struct pd_backbone_event {
    pd_backbone_ev_kind_t kind;
    /* EV_SUBMITTED */
    uint64_t token;
    pd_backbone_result_t result;
    bool duplicate;
    /* EV_SUBMITTED: the stored seq, or the subject's last seq on CONFLICT.
     * EV_RECORD: the record's stream seq = its parley seq. */
    uint64_t seq;
    /* EV_RECORD */
    int64_t time_ms;            /* JetStream's store time: received_at */
    const uint8_t *data;        /* the SignedUpdate bytes as submitted */
    size_t len;
    char key_id[PARLEY_KEYID_CHARS + 1]; /* from the subject ("" if it
                                   does not have the form): must be the
                                   key id of the update's signer */
    uint64_t pending;           /* records after this one when it was sent */
    /* EV_STATE */
    pd_backbone_health_t health;
    bool catching_up;
    uint64_t rereads;           /* records read again so far (status):
                                   when it rose, detail says why */
    /* EV_SUBMITTED (UNAVAILABLE, REFUSED), EV_STATE: why */
    char detail[PD_BACKBONE_DETAIL_MAX];
} pd_backbone_event_t;

/*
 * Take the next event: state changes first, then submit completions, then
 * records.
 *
 * Returns:   1 with *ev filled, or 0 when none waits (the fd is then
 *            reset until the next event).
 */
int pd_backbone_next(pd_backbone_t *bb, pd_backbone_event_t *ev);

/* ------------------------------------------------------------- status */

typedef struct pd_backbone_status {
    pd_backbone_health_t health;
    bool following;
    bool catching_up;          /* following, and not yet at stream_last */
    uint64_t followed;         /* last seq handed over, or from - 1 */
    uint64_t read;             /* last seq the consumer delivered (checked
                                  or not), or from - 1 */
    uint64_t stream_last;      /* the stream's last seq, as last seen */
    uint64_t stream_first;     /* its first seq, as last seen */
    int64_t created;           /* its creation time (unix ns): with the
                                  name, what makes it this stream */
    uint32_t inflight;         /* submits pending */
    char server[128];          /* URL of the server connected to, or "" */
    char leader[64];           /* stream leader's server name, or "" */
    char detail[PD_BACKBONE_DETAIL_MAX]; /* why health is what it is */
    /* counters since open */
    uint64_t submitted, stored, duplicates, conflicts, unavailable, refused;
    uint64_t timeouts;         /* of unavailable: no PubAck within
                                  publish_timeout_ms (and those queued
                                  behind such a submit, ended with it) */
    uint64_t records;          /* records handed over */
    uint64_t subscribes;       /* follower (re)subscriptions */
    uint64_t pauses;           /* times the caller fell follow_max behind */
    uint64_t reconnects;
    uint64_t async_errors;     /* nats.c reports: missed heartbeats, ... */
    uint64_t probes;           /* stream info requests made */
    uint64_t probes_failed;    /* of them unanswered or refused */
    uint64_t gaps;             /* records that skipped seqs the stream
                                  holds: read again from the seq wanted */
    uint64_t checked;          /* records the stream leader confirmed */
    uint64_t rereads;          /* records the leader holds otherwise: read
                                  again from their seq (a JetStream replica
                                  that diverged; docs/cluster.md) */
    uint64_t check_unanswered; /* checks of the next record to confirm
                                  that got no answer in time (or found no
                                  leader): asked again */
    uint64_t check_absent;     /* ... that found no record at the leader:
                                  asked again */
    uint64_t late_answers;     /* answers of the leader that came after
                                  their check was given up (a timeout, a
                                  re-read): left alone */
} pd_backbone_status_t;

/* A copy of the current status. Threads: any thread. */
void pd_backbone_status(pd_backbone_t *bb, pd_backbone_status_t *out);

/* "ok", "disconnected", "no_quorum", "no_stream", "diverged". */
const char *pd_backbone_health_name(pd_backbone_health_t h);

/* "stored", "conflict", "unavailable", "refused". */
const char *pd_backbone_result_name(pd_backbone_result_t r);

/* ------------------------------------------- pure helpers (for tests) */

/*
 * The subject and msg id of a submit: "<stream>.u.<key id>" and
 * "<key id>-<signer_seq>".
 * Returns:   0 or -ENOBUFS.
 */
int pd_backbone_subject(char *out, size_t cap, const char *stream,
                        const uint8_t signer[PARLEY_PUBLICKEY_BYTES]);
int pd_backbone_msg_id(char *out, size_t cap,
                       const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                       uint64_t signer_seq);

/*
 * The last seq in a JetStream "wrong last sequence: N" error text.
 * Returns:   0, or -EINVAL if text does not end in a number.
 */
int pd_backbone_parse_last_seq(const char *text, uint64_t *out);

#endif /* PD_BACKBONE_H */
