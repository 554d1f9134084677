/*
 * backbone_int.h - what the files of the backbone (backbone.h) share: its
 * struct with the tables and queues in it, and the functions one file
 * calls in another (pd_backbone__ names). Not for other modules. The
 * threads and the lock are described in backbone.c.
 *
 *   backbone.c         helpers, health and events, the connection's
 *                      callbacks, open and close, status
 *   backbone_opts.c    the options: defaults, the server list, the files
 *                      nats.c reads
 *   backbone_submit.c  submits: the in-flight tables, the PubAck handler,
 *                      the submit thread, submit, resubmit, abandon
 *   backbone_follow.c  the follower: its records and subscription, the
 *                      control thread, follow and next
 *   backbone_stream.c  the stream: create it or check its settings, probe
 *                      its leader and quorum
 *   backbone_check.c   the check: each record read against the stream
 *                      leader's before the loop gets it
 */
#ifndef PD_BACKBONE_INT_H
#define PD_BACKBONE_INT_H

#include "backbone.h"
#include "wire.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S_DEFAULT_STREAM "PARLEY"
#define S_SUBJECT_MID ".u."         /* <stream>.u.<key id> */
#define S_HDR_MSG_ID "Nats-Msg-Id"
#define S_HDR_EXPECT "Nats-Expected-Last-Subject-Sequence"
#define S_NS_PER_S 1000000000LL
#define S_PROBE_MS 1000             /* stream info this often */
#define S_HEARTBEAT_MS 1000         /* follower consumer idle heartbeat */
#define S_STALL_MS 3000             /* follower silent though behind */
#define S_ACTIVE_MAX_NS (3 * S_NS_PER_S) /* a replica heard from within */
#define S_FAIL_HOLD_MS 5000         /* a timed-out submit outweighs probes */
#define S_CLOSE_WAIT_MS 10000       /* for nats.c to finish callbacks */
#define S_RETRY_MS 200              /* between attempts while opening */
#define S_LEADER_WAIT_MS 5000       /* for a leader's stream info at open */
#define S_YOUNG_S 60                /* a stream made less ago is young */
#define S_SETTLE_MS 2000            /* a young stream's creation time */
#define S_CHECK_WAIT_MS 1000        /* a check's request to the leader */
#define S_CHECK_RETRY_MS 250        /* after a check the leader left open */
#define S_CHECK_WINDOW 32           /* leader checks in flight at once */
#define S_CK_TODO 2                 /* s_rec.ck: to ask (again) now */
#define S_CK_ASKING 3               /* s_rec.ck: a request is out */
#define S_CK_LATER 4                /* s_rec.ck: the first raw record, to
                                       ask again at ck_retry_ms */
#define S_RECHECK_MAX 10            /* re-reads of one seq, then diverged */
#define S_ABSENT_MAX 8              /* checks that found no record at the
                                       leader (it may not have applied it
                                       yet), then read again */
#define S_MSG_GET_API "$JS.API.STREAM.MSG.GET." /* + the stream's name */
#define S_NO_MESSAGE_ERR 10037      /* JetStream's "no message found" */

/* A submit completion waiting for the loop. */
typedef struct s_done {
    uint64_t token;
    pd_backbone_result_t result;
    bool duplicate;
    bool parked;                /* a conflict: the submit keeps its slot */
    uint64_t seq;
    char detail[PD_BACKBONE_DETAIL_MAX];
} s_done_t;

/* A record read by the follower, waiting for the loop. */
typedef struct s_rec {
    struct s_rec *next;
    uint64_t seq;
    uint64_t pending;
    int64_t time_ms;
    int64_t time_ns;            /* JetStream's store time, as stored */
    int ck;                     /* raw: S_CK_TODO, S_CK_ASKING,
                                   S_CK_LATER, or the leader's answer
                                   (s_judge: 1, 0, -1, -2) */
    uint64_t ask_id;            /* S_CK_ASKING: the request's id */
    int64_t ask_deadline;       /* S_CK_ASKING: no answer by then (mono
                                   ms) counts as none */
    char key_id[PARLEY_KEYID_CHARS + 1];
    size_t len;
    uint8_t data[];
} s_rec_t;

/* A request to the stream leader about one seq, to be sent. */
typedef struct s_ask {
    uint64_t seq;
    uint64_t id;                /* in its reply subject */
} s_ask_t;

/* What a STREAM.MSG.GET answer says (pd_backbone__answer_parse). */
typedef enum {
    S_ANS_RECORD = 1,           /* the leader's record at the seq */
    S_ANS_NONE,                 /* the leader holds none there */
    S_ANS_ERROR,                /* no answer that decides: ask again */
} s_ans_kind_t;

typedef struct s_answer {
    s_ans_kind_t kind;
    uint64_t seq;               /* S_ANS_RECORD: the record's */
    int64_t time_ns;            /* its store time */
    char key_id[PARLEY_KEYID_CHARS + 1]; /* from its subject, or "" */
    const uint8_t *data;        /* its bytes (in the caller's buffer) */
    size_t len;
    char why[96];               /* S_ANS_ERROR: what was wrong */
} s_answer_t;

/* The closure of one follower subscription. */
typedef struct s_fctx {
    pd_backbone_t *bb;
    uint64_t gen;               /* records count only while gen == fgen */
} s_fctx_t;

/* A submit waiting for the one before it on the same subject. */
typedef struct s_wait {
    struct s_wait *next;
    natsMsg *msg;
    uint64_t expect;            /* the caller's expect_last */
} s_wait_t;

/* An entry of a small table keyed by 64 bits (open addressing). */
typedef struct s_ent {
    uint64_t key;
    bool used;
    uint64_t val;               /* msgs: the caller's token; subjects: the
                                   last seq known stored on it */
    uint64_t aux;               /* msgs: the subject's key; subjects: 1
                                   while a submit of it is in nats.c or
                                   parked */
    s_wait_t *head, *tail;      /* subjects: submits waiting their turn */
    natsMsg *parked;            /* subjects: the submit that met a
                                   conflict, until resubmit or abandon */
} s_ent_t;

/* Never more than half full: capacity >= 2 * max_inflight entries. */
typedef struct s_tab {
    s_ent_t *e;
    size_t cap;                 /* power of two */
} s_tab_t;

/* Probe answers in a row that saw the same fault (s_streak_step()). */
typedef struct s_streak {
    int n;                      /* answers in a row */
    int64_t since_ms;           /* mono ms of the first of them */
} s_streak_t;

struct pd_backbone {
    /* options (immutable after open) */
    char stream[PD_BACKBONE_STREAM_MAX + 1];
    char filter[PD_BACKBONE_STREAM_MAX + 8];  /* "<stream>.u.*" */
    char prefix[PD_BACKBONE_STREAM_MAX + 8];  /* "<stream>.u." */
    uint32_t replicas;
    int64_t dup_window_ns, max_age_ns, max_bytes;
    uint32_t max_message_bytes;
    uint32_t publish_timeout_ms;
    uint32_t max_inflight;
    uint32_t follow_max_records;
    uint64_t follow_max_bytes;

    natsOptions *nopts;
    natsConnection *nc;
    jsCtx *js;
    int efd;                    /* eventfd for the loop */
    pthread_t submit_thr, ctl_thr, check_thr;
    bool threads;               /* all three started */
    char ck_api[PD_BACKBONE_STREAM_MAX + 32]; /* STREAM.MSG.GET subject */
    char ck_inbox[64];          /* "_INBOX.<nuid>": replies go to
                                   <ck_inbox>.<seq>.<request id> */
    natsSubscription *ck_sub;   /* the replies (<ck_inbox>.*.*) */
    uint8_t *ck_buf;            /* an answer's bytes (its callback only) */
    size_t ck_cap;
    s_rec_t *cur;               /* record handed out by the last next() */

    /* ---- shared: under mu ---- */
    pthread_mutex_t mu;
    pthread_cond_t cv_submit;   /* submit thread: work or closing */
    pthread_cond_t cv_ctl;      /* control thread: something to do */
    pthread_cond_t cv_check;    /* check thread: a deadline sooner than
                                   the one it waits for, or closing */
    pthread_cond_t cv_done;     /* close: subscriptions ended, closed */
    bool closing;
    bool signalled;             /* efd written since the loop drained it */

    /* submits */
    uint32_t inflight;          /* submitted, completion not yet taken */
    natsMsg **outq;             /* ring for the submit thread */
    uint32_t outq_head, outq_n;
    s_tab_t msgs;               /* natsMsg pointer -> token, subject key:
                                   every submit until it completes */
    s_tab_t subjects;           /* subject (key id) -> its last known seq,
                                   whether a submit of it is out, and the
                                   submits queued behind that one; idle
                                   entries are dropped when it fills */
    s_done_t *done;             /* ring of completions for the loop */
    uint32_t done_head, done_n;

    /* follower */
    bool following;
    uint64_t follow_next;       /* next seq to queue */
    uint64_t handed;            /* last seq handed to the loop */
    uint64_t fgen;              /* generation of the wanted subscription */
    natsSubscription *fsub;     /* owned by the control thread */
    uint64_t fsub_gen;          /* generation fsub was made with */
    int subs_alive;             /* subscriptions whose complete cb is due */
    bool paused;                /* loop too far behind: not subscribed */
    s_rec_t *raw_head, *raw_tail; /* read, not yet checked (seq order) */
    size_t raw_n;               /* records in raw_head..raw_tail */
    s_rec_t *rec_head, *rec_tail; /* checked: for the loop (seq order) */
    size_t rec_n, rec_bytes;    /* of both queues */
    uint64_t recheck_seq;       /* the seq last read again, and */
    int rechecks;               /* how often in a row */
    int absent;                 /* checks of the first raw record that
                                   found none at the leader */
    bool verify_prev;           /* after a re-read: the leader must still
                                   hold the last record confirmed */
    int prev_ck;                /* that check of last_ok: S_CK_TODO,
                                   S_CK_ASKING, S_CK_LATER or an answer */
    uint64_t prev_id;           /* S_CK_ASKING: its request's id */
    int64_t prev_at;            /* mono ms: its deadline (S_CK_ASKING) or
                                   when to ask again (S_CK_LATER) */
    int64_t ck_retry_ms;        /* mono ms: ask the first raw record again
                                   (its ck is S_CK_LATER) */
    int64_t ck_timer_ms;        /* mono ms the check thread waits until
                                   (INT64_MAX: for a signal) */
    uint64_t ck_next_id;        /* the last request id handed out */
    uint64_t why_seq;           /* lowest seq the leader holds otherwise */
    char why[PD_BACKBONE_DETAIL_MAX]; /* and why */
    bool check_unanswered;      /* the last check found no leader to ask */
    s_rec_t *last_ok;           /* a copy of the last record confirmed */
    size_t last_ok_cap;
    int64_t last_record_ms;     /* mono ms of the last record queued */
    int64_t subscribed_ms;      /* mono ms of the last subscribe */

    /* health */
    bool conn_up;
    bool conn_closed;           /* nats.c's closed callback ran */
    bool submit_failed;         /* a submit timed out, none stored since */
    int64_t submit_failed_ms;
    bool probe_quorum;          /* last probe: leader and a quorum */
    bool stream_missing;
    bool diverged;              /* final: see PD_BACKBONE_DIVERGED */
    s_streak_t shorter;         /* probes in a row: stream shorter */
    s_streak_t remade;          /* leaders' answers in a row: made again */
    uint64_t confirmed;         /* last seq the leader confirmed (check
                                   thread; or from - 1) */
    int64_t created;            /* the stream's creation time (ns) */
    bool catching;
    uint64_t stream_last;
    bool stream_last_known;     /* since the last (re)connect */
    uint64_t stream_first;      /* the stream's first seq, as last seen */
    bool probe_now;             /* control thread: probe at once */
    char leader[64];
    char server[128];
    char detail[PD_BACKBONE_DETAIL_MAX];
    bool state_dirty;           /* an EV_STATE is due */
    pd_backbone_health_t told_health; /* as last reported by EV_STATE */
    bool told_catching;

    /* counters */
    uint64_t n_submitted, n_stored, n_duplicates, n_conflicts;
    uint64_t n_unavailable, n_refused, n_records, n_subscribes, n_pauses;
    uint64_t n_timeouts;        /* of n_unavailable: no PubAck within
                                   publish_timeout_ms, or queued behind
                                   such a submit on its subject */
    uint64_t n_reconnects, n_async_errors, n_probes, n_probes_failed;
    uint64_t n_gaps;            /* records after a gap, refused */
    uint64_t n_checked;         /* records the leader confirmed */
    uint64_t n_rereads;         /* records the leader holds otherwise */
    uint64_t n_check_unanswered; /* checks of the first raw record that
                                   got no answer (timeout, no leader) */
    uint64_t n_check_absent;    /* ... that found none at the leader */
    uint64_t n_late;            /* answers to requests no longer asked */
};

/* ---- backbone.c ---- */

/* snprintf into buf (cap bytes) if buf is not NULL. Any thread. */
void pd_backbone__err(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* nats.c's last error text for this thread, or the status name. */
const char *pd_backbone__nats_text(natsStatus s);

/* The key id in a subject "<prefix><16 hex>" (prefix "<stream>.u.") into
 * out, or "" if the subject is not of that form. Any thread. */
void pd_backbone__subject_key(const char *prefix, const char *subject,
                              char out[PARLEY_KEYID_CHARS + 1]);

/* Make the eventfd readable unless it already is. mu held. */
void pd_backbone__signal_locked(pd_backbone_t *self);

/* The health the state says now. mu held. */
pd_backbone_health_t pd_backbone__health_locked(const pd_backbone_t *self);

/* Leave catching-up once everything the stream held is handed over.
 * mu held. */
void pd_backbone__catch_check_locked(pd_backbone_t *self);

/* Queue an EV_STATE if health or catching_up changed. mu held. */
void pd_backbone__state_locked(pd_backbone_t *self);

/* Set the detail text that goes with the health. mu held. */
void pd_backbone__detail_locked(pd_backbone_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Name the calling thread (one of nats.c's delivery threads) once, for
 * per-thread CPU figures (top -H, /proc/PID/task). */
void pd_backbone__name_thread(const char *name);

/* Free a list of records (linked by next). */
void pd_backbone__recs_free(s_rec_t *r);

/* Append r to the list head..tail. */
void pd_backbone__recs_append(s_rec_t **head, s_rec_t **tail, s_rec_t *r);

/* Wait on cv (mu held) for at most ms, or until signalled. */
void pd_backbone__wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

/* ---- backbone_opts.c ---- */

/*
 * Split the server list into servers[] (copies in buf, cap bytes) and
 * check each URL. Returns the count, or -EINVAL with the reason in
 * errbuf.
 */
int pd_backbone__split_servers(const char *list, char *buf, size_t cap,
                               const char *servers[PD_BACKBONE_SERVERS_MAX],
                               char *errbuf, size_t errlen);

/* ---- backbone_submit.c ---- */

/* Make an empty table for entries keys (capacity 2 * entries, a power of
 * two). Returns 0 or -ENOMEM. */
int pd_backbone__tab_init(s_tab_t *t, size_t entries);

/* The PubAck handler (jsOptions.PublishAsync.AckHandler; closure is the
 * backbone). nats.c's reply thread. */
void pd_backbone__on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa,
                            jsPubAckErr *pae, void *closure);

/* The submit thread (arg is the backbone): hands queued submits to
 * nats.c until closing. */
void *pd_backbone__submit_main(void *arg);

/* ---- backbone_follow.c ---- */

/* The control thread (arg is the backbone): the follower's subscription,
 * probes, the stall watch, until closing. */
void *pd_backbone__ctl_main(void *arg);

/* End the follower's subscription, if any (control thread or close). */
void pd_backbone__follow_unsubscribe(pd_backbone_t *self);

/* ---- backbone_stream.c ---- */

/*
 * Create the stream or check the existing one (its settings must be
 * parleyd's), retrying transient errors until deadline (mono ms). Sets
 * stream_last, stream_first and created. Open only.
 *
 * Returns:   0, -EEXIST (settings differ: listed in errbuf), -ETIMEDOUT
 *            or -EPROTO.
 */
int pd_backbone__stream_ensure(pd_backbone_t *self, int64_t deadline,
                               char *errbuf, size_t errlen);

/* Ask JetStream about the stream (last seq, leader, quorum) and update
 * the health. Control thread; takes mu. */
void pd_backbone__probe(pd_backbone_t *self);

/* ---- backbone_check.c ---- */

/* Subscribe to the answers of the leader checks. Open only (connected,
 * before the threads start). Returns 0 or -ENOMEM / -EIO (errbuf). */
int pd_backbone__check_open(pd_backbone_t *self, char *errbuf,
                            size_t errlen);

/* End the answers' subscription, if any (close; its complete callback
 * is counted in subs_alive). */
void pd_backbone__check_close(pd_backbone_t *self);

/* The check thread (arg is the backbone): the checks' deadlines (an
 * answer not come, a record to ask about again), until closing. */
void *pd_backbone__check_main(void *arg);

/*
 * Move the check on: take the answers of the first raw records in seq
 * order (confirm, read again, or ask again later), and hand out an id to
 * every record in the window of checks in flight that is to be asked
 * about now, into asks (S_CHECK_WINDOW + 1 of them at most). The caller
 * sends them with pd_backbone__check_send() once it has let go of mu.
 * Called whenever a record is queued raw (the follower's handler), an
 * answer comes, or a deadline passes. mu held.
 *
 * Returns:   the number of requests in asks.
 */
int pd_backbone__check_advance_locked(pd_backbone_t *self, s_ask_t *asks);

/* Send the requests of asks (n; mu not held); a request that cannot be
 * sent counts as unanswered. Any thread. */
void pd_backbone__check_send(pd_backbone_t *self, s_ask_t *asks, int n);

/*
 * Read a STREAM.MSG.GET answer (JSON, len bytes; untrusted): the record
 * it holds, "no message found", or anything else (an error, no
 * responders, bytes that are not such an answer). prefix is the stream's
 * subject prefix ("<stream>.u.") for the key id. The record's bytes are
 * decoded into *buf (*cap bytes, grown with realloc; NULL and 0 at
 * first). The answer as nats-server writes it is read by
 * pd_backbone__answer_scan(); whatever that does not take, by
 * pd_backbone__answer_parse_json(); the two agree wherever both read.
 *
 * Returns:   out->kind.
 * Ownership: *buf is the caller's to free; out->data points into it.
 * Threads:   any; nothing shared.
 */
s_ans_kind_t pd_backbone__answer_parse(const char *prefix, const char *json,
                                       size_t len, uint8_t **buf,
                                       size_t *cap, s_answer_t *out);

/*
 * pd_backbone__answer_parse() through jansson: any JSON answer, with its
 * fields in any order.
 *
 * Returns:   out->kind.
 * Ownership, Threads: as pd_backbone__answer_parse().
 */
s_ans_kind_t pd_backbone__answer_parse_json(const char *prefix,
                                            const char *json, size_t len,
                                            uint8_t **buf, size_t *cap,
                                            s_answer_t *out);

/*
 * pd_backbone__answer_parse() without a parse tree, for the one answer
 * of every check: {"type":<string>,"message":{"subject":..,"seq":..,
 * "hdrs":..,"data":..,"time":..}}, members in any order, hdrs and data
 * optional, no whitespace, strings of printable ASCII without escapes
 * (as nats-server writes them). Takes nothing else: an error, other
 * members, escapes, whitespace, a seq of more than 18 digits are left to
 * pd_backbone__answer_parse_json().
 *
 * Returns:   whether it took the answer: then *out as
 *            pd_backbone__answer_parse_json() makes it (a record, or an
 *            error in its time or base64); else *out and *buf untouched.
 * Ownership, Threads: as pd_backbone__answer_parse().
 */
bool pd_backbone__answer_scan(const char *prefix, const char *json,
                              size_t len, uint8_t **buf, size_t *cap,
                              s_answer_t *out);

/*
 * Decode n characters of padded base64 (the standard alphabet) at b64
 * into out (cap bytes), by a table; on ASCII text what it accepts and
 * makes is what sodium_base642bin(out, cap, b64, n, NULL, len, NULL,
 * sodium_base64_VARIANT_ORIGINAL) does, at a fraction of its constant-
 * time cost (the text is no secret). A byte above 0x7F is no base64
 * (libsodium 1.0.18 reads it as '/').
 *
 * Returns:   0 with the length in *len, or -1 (not such base64, or more
 *            than cap bytes).
 * Threads:   any.
 */
int pd_backbone__base64_decode(uint8_t *out, size_t cap, const char *b64,
                               size_t n, size_t *len);

/* The UTC time of an RFC 3339 text ("2026-12-05T15:20:26.123456789Z",
 * or an offset for Z) in ns since the epoch, into *ns. Returns 0, or -1
 * if it is not such a text or out of range (years 1970-2200). */
int pd_backbone__parse_time(const char *s, int64_t *ns);

#endif /* PD_BACKBONE_INT_H */
