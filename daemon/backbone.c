/*
 * backbone.c - parleyd's NATS JetStream client (see backbone.h).
 *
 * Threads and locking. One mutex (mu) guards every field below the
 * "shared" line of struct pd_backbone. Four kinds of threads take it:
 * the caller's loop, our submit and control threads, and nats.c's threads
 * (the PubAck handler, the follower's message handler, the connection
 * callbacks). No nats.c function is ever called with mu held, so nats.c's
 * own locks and ours never nest in two orders.
 *
 * A submit: the loop builds the natsMsg (subject, headers, a copy of the
 * bytes), enters it in the in-flight map (natsMsg pointer -> token) and
 * queues it for the submit thread, which hands it to
 * js_PublishMsgAsync(); the PubAck handler (or nats.c's timeout of
 * publish_timeout_ms) looks the token up and queues a completion. A
 * submit counts against max_inflight until the loop has taken its
 * completion, so the completion ring never overflows.
 *
 * The follower: an ordered consumer whose handler queues records. Each
 * subscription carries a generation; bumping the generation (pause,
 * stall) makes the handler drop what that subscription still delivers,
 * and the control thread then unsubscribes and, when the loop has room
 * again, subscribes from the next seq wanted. So the queue holds seqs in
 * order without gaps or repeats, whatever the subscriptions do.
 *
 * The check: a record is handed over only once the stream leader holds
 * the very same record at its seq (same subject, bytes and store time).
 * The ordered consumer reads from whichever replica it was placed on,
 * and a replica of nats-server 2.9.10 can hold other records than the
 * leader (docs/cluster.md, "Replicas that disagree"). The follower's
 * handler queues records unchecked (raw); the check thread asks the
 * leader for each one (one STREAM.MSG.GET at a time) and moves it to the
 * queue the loop drains. A record the leader holds otherwise is dropped
 * with everything read after it, and the follower reads again from its
 * seq with a new consumer (placed anew); after S_RECHECK_MAX such
 * re-reads of one seq in a row the backbone is DIVERGED.
 */
#include "backbone.h"

#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_DEFAULT_STREAM "PARLEY"
#define S_SUBJECT_MID ".u."         /* <stream>.u.<key id> */
#define S_HDR_MSG_ID "Nats-Msg-Id"
#define S_HDR_EXPECT "Nats-Expected-Last-Subject-Sequence"
#define S_NS_PER_S 1000000000LL
#define S_PROBE_MS 1000             /* stream info this often */
#define S_HEARTBEAT_MS 1000         /* ordered consumer idle heartbeat */
#define S_STALL_MS 3000             /* follower silent though behind */
#define S_ACTIVE_MAX_NS (3 * S_NS_PER_S) /* a replica heard from within */
#define S_FAIL_HOLD_MS 5000         /* a timed-out submit outweighs probes */
#define S_CLOSE_WAIT_MS 10000       /* for nats.c to finish callbacks */
#define S_RETRY_MS 200              /* between attempts while opening */
#define S_CHECK_WAIT_MS 1000        /* a check's request to the leader */
#define S_CHECK_RETRY_MS 250        /* after a check the leader left open */
#define S_RECHECK_MAX 10            /* re-reads of one seq, then diverged */
#define S_ABSENT_MAX 8              /* checks that found no record at the
                                       leader (it may not have applied it
                                       yet), then read again */

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
    char key_id[PARLEY_KEYID_CHARS + 1];
    size_t len;
    uint8_t data[];
} s_rec_t;

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
    s_rec_t *cur;               /* record handed out by the last next() */

    /* ---- shared: under mu ---- */
    pthread_mutex_t mu;
    pthread_cond_t cv_submit;   /* submit thread: work or closing */
    pthread_cond_t cv_ctl;      /* control thread: something to do */
    pthread_cond_t cv_check;    /* check thread: raw records or closing */
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
    s_rec_t *rec_head, *rec_tail; /* checked: for the loop (seq order) */
    size_t rec_n, rec_bytes;    /* of both queues */
    uint64_t recheck_seq;       /* the seq last read again, and */
    int rechecks;               /* how often in a row */
    int absent;                 /* checks of the first raw record that
                                   found none at the leader */
    bool verify_prev;           /* after a re-read: the leader must still
                                   hold the last record confirmed */
    bool check_unanswered;      /* the last check found no leader to ask */
    s_rec_t *last_ok;           /* a copy of the last record confirmed
                                   (check thread only) */
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
    int short_probes;           /* probes in a row: stream shorter */
    int64_t short_since_ms;     /* mono ms of the first of them */
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
    uint64_t n_reconnects, n_async_errors, n_probes, n_probes_failed;
    uint64_t n_gaps;            /* records after a gap, refused */
    uint64_t n_checked;         /* records the leader confirmed */
    uint64_t n_rereads;         /* records the leader holds otherwise */
};

/* ============================================================ helpers */

static void
s_err(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
s_err(char *buf, size_t cap, const char *fmt, ...)
{
    if (buf == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* nats.c's last error text for this thread, or the status name. */
static const char *
s_nats_text(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return t != NULL && t[0] != '\0' ? t : natsStatus_GetText(s);
}

const char *
pd_backbone_health_name(pd_backbone_health_t h)
{
    switch (h) {
    case PD_BACKBONE_OK:
        return "ok";
    case PD_BACKBONE_DISCONNECTED:
        return "disconnected";
    case PD_BACKBONE_NO_QUORUM:
        return "no_quorum";
    case PD_BACKBONE_NO_STREAM:
        return "no_stream";
    case PD_BACKBONE_DIVERGED:
        return "diverged";
    }
    return "unknown";
}

const char *
pd_backbone_result_name(pd_backbone_result_t r)
{
    switch (r) {
    case PD_BACKBONE_STORED:
        return "stored";
    case PD_BACKBONE_CONFLICT:
        return "conflict";
    case PD_BACKBONE_UNAVAILABLE:
        return "unavailable";
    case PD_BACKBONE_REFUSED:
        return "refused";
    }
    return "unknown";
}

int
pd_backbone_subject(char *out, size_t cap, const char *stream,
                    const uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(signer, id);
    int n = snprintf(out, cap, "%s" S_SUBJECT_MID "%s", stream, id);
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : 0;
}

int
pd_backbone_msg_id(char *out, size_t cap,
                   const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                   uint64_t signer_seq)
{
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(signer, id);
    int n = snprintf(out, cap, "%s-%" PRIu64, id, signer_seq);
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : 0;
}

int
pd_backbone_parse_last_seq(const char *text, uint64_t *out)
{
    if (text == NULL)
        return -EINVAL;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n'))
        n--;
    size_t end = n;
    while (n > 0 && text[n - 1] >= '0' && text[n - 1] <= '9')
        n--;
    if (n == end || end - n > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = n; i < end; i++) {
        uint64_t d = (uint64_t)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* The key id in a subject "<stream>.u.<16 hex>", or "" if not that form. */
static void
s_subject_key(const pd_backbone_t *self, const char *subject,
              char out[PARLEY_KEYID_CHARS + 1])
{
    out[0] = '\0';
    size_t pl = strlen(self->prefix);
    if (subject == NULL || strncmp(subject, self->prefix, pl) != 0)
        return;
    const char *k = subject + pl;
    if (strlen(k) != PARLEY_KEYID_CHARS)
        return;
    for (size_t i = 0; i < PARLEY_KEYID_CHARS; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
            return;
    memcpy(out, k, PARLEY_KEYID_CHARS + 1);
}

/* ============================================================ options */

void
pd_backbone_opts_defaults(pd_backbone_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->stream = S_DEFAULT_STREAM;
    o->replicas = 3;
    o->max_clock_skew = 300;
    o->max_message_bytes = PARLEY_ENVELOPE_MAX;
    o->publish_timeout_ms = 2000;
    o->open_timeout_ms = 10000;
    o->max_inflight = 1024;
    o->follow_max_records = 4096;
    o->follow_max_bytes = 16u << 20;
}

/* Does this server URL carry credentials, or is it not a URL we take? */
static int
s_check_url(const char *u, size_t len, char *errbuf, size_t errlen)
{
    if (len == 0) {
        s_err(errbuf, errlen, "backbone: empty entry in the server list");
        return -EINVAL;
    }
    if (len > 255) {
        s_err(errbuf, errlen, "backbone: server URL longer than 255 bytes");
        return -EINVAL;
    }
    if (memchr(u, '@', len) != NULL) {
        s_err(errbuf, errlen,
              "backbone: the server %.*s carries credentials; name a creds "
              "file (backbone_creds) instead, so no secret sits in the "
              "configuration",
              (int)len, u);
        return -EINVAL;
    }
    static const char *const schemes[] = { "nats://", "tls://" };
    for (size_t i = 0; i < 2; i++) {
        size_t sl = strlen(schemes[i]);
        if (len > sl && strncmp(u, schemes[i], sl) == 0) {
            for (size_t j = sl; j < len; j++)
                if (u[j] <= ' ' || u[j] == '/' || u[j] == ',')
                    goto bad;
            return 0;
        }
    }
bad:
    s_err(errbuf, errlen,
          "backbone: %.*s is not a server URL (nats://HOST:PORT or "
          "tls://HOST:PORT)",
          (int)len, u);
    return -EINVAL;
}

/* Split the list into servers[] (copies in buf). Returns the count. */
static int
s_split_servers(const char *list, char *buf, size_t cap,
                const char *servers[PD_BACKBONE_SERVERS_MAX], char *errbuf,
                size_t errlen)
{
    if (list == NULL || list[0] == '\0') {
        s_err(errbuf, errlen, "backbone: no server named");
        return -EINVAL;
    }
    if (strlen(list) >= cap) {
        s_err(errbuf, errlen, "backbone: the server list is too long");
        return -EINVAL;
    }
    int n = 0;
    size_t off = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        int rc = s_check_url(p, len, errbuf, errlen);
        if (rc < 0)
            return rc;
        if (n == PD_BACKBONE_SERVERS_MAX) {
            s_err(errbuf, errlen, "backbone: more than %d servers",
                  PD_BACKBONE_SERVERS_MAX);
            return -EINVAL;
        }
        memcpy(buf + off, p, len);
        buf[off + len] = '\0';
        servers[n++] = buf + off;
        off += len + 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return n;
}

int
pd_backbone_servers_check(const char *list, char *errbuf, size_t errlen)
{
    char buf[PD_BACKBONE_SERVERS_MAX * 257];
    const char *servers[PD_BACKBONE_SERVERS_MAX];
    int n = s_split_servers(list, buf, sizeof(buf), servers, errbuf, errlen);
    return n < 0 ? n : 0;
}

/* A file nats.c will read: it must exist; secret ones must be 0600-ish. */
static int
s_check_file(const char *what, const char *path, bool secret, char *errbuf,
             size_t errlen)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        int err = -errno;
        s_err(errbuf, errlen, "backbone: %s %s: %s", what, path,
              strerror(errno));
        return err;
    }
    if (!S_ISREG(st.st_mode)) {
        s_err(errbuf, errlen, "backbone: %s %s is not a regular file", what,
              path);
        return -EINVAL;
    }
    if (secret && (st.st_mode & 077) != 0) {
        s_err(errbuf, errlen,
              "backbone: %s %s is readable or writable by group or others "
              "(mode %04o); it holds a secret: chmod 600 it",
              what, path, (unsigned)(st.st_mode & 07777));
        return -EACCES;
    }
    return 0;
}

int
pd_backbone_opts_check(const pd_backbone_opts_t *o, char *errbuf,
                       size_t errlen)
{
    char buf[PD_BACKBONE_SERVERS_MAX * 257];
    const char *servers[PD_BACKBONE_SERVERS_MAX];
    int n = s_split_servers(o->servers, buf, sizeof(buf), servers, errbuf,
                            errlen);
    if (n < 0)
        return n;
    const char *st = o->stream != NULL ? o->stream : S_DEFAULT_STREAM;
    size_t sl = strlen(st);
    bool ok = sl >= 1 && sl <= PD_BACKBONE_STREAM_MAX;
    for (size_t i = 0; ok && i < sl; i++)
        ok = (st[i] >= 'a' && st[i] <= 'z') || (st[i] >= 'A' && st[i] <= 'Z')
             || (st[i] >= '0' && st[i] <= '9') || st[i] == '_'
             || st[i] == '-';
    if (!ok) {
        s_err(errbuf, errlen,
              "backbone: stream name \"%s\" is not 1-%d of A-Z a-z 0-9 _ -",
              st, PD_BACKBONE_STREAM_MAX);
        return -EINVAL;
    }
    if (o->replicas < 1 || o->replicas > 5) {
        s_err(errbuf, errlen, "backbone: replicas %u is not 1..5",
              o->replicas);
        return -EINVAL;
    }
    uint64_t least = 2 * (uint64_t)o->max_clock_skew;
    uint64_t window = o->duplicate_window != 0 ? o->duplicate_window : least;
    if (window == 0 || window < least) {
        s_err(errbuf, errlen,
              "backbone: duplicate window %" PRIu64 " s is below 2 * "
              "max_clock_skew (%" PRIu64 " s), so a resend could be stored "
              "twice",
              window, least);
        return -EINVAL;
    }
    if (window > INT64_MAX / S_NS_PER_S
        || o->retention_age > (uint64_t)(INT64_MAX / S_NS_PER_S)
        || o->retention_bytes > (uint64_t)INT64_MAX) {
        s_err(errbuf, errlen, "backbone: a duration or size is too large");
        return -EINVAL;
    }
    if (o->retention_age != 0 && window > o->retention_age) {
        s_err(errbuf, errlen,
              "backbone: duplicate window %" PRIu64 " s is longer than "
              "retention_age %" PRIu64 " s (JetStream needs it shorter)",
              window, o->retention_age);
        return -EINVAL;
    }
    if (o->max_message_bytes == 0 || o->max_inflight == 0
        || o->follow_max_records == 0 || o->follow_max_bytes == 0
        || o->publish_timeout_ms == 0) {
        s_err(errbuf, errlen, "backbone: a size, count or timeout is 0");
        return -EINVAL;
    }
    if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL)) {
        s_err(errbuf, errlen,
              "backbone: a client certificate needs its key and the key "
              "its certificate");
        return -EINVAL;
    }
    int rc;
    if ((rc = s_check_file("creds file", o->creds_file, true, errbuf,
                           errlen)) < 0
        || (rc = s_check_file("TLS CA file", o->tls_ca_file, false, errbuf,
                              errlen)) < 0
        || (rc = s_check_file("TLS certificate", o->tls_cert_file, false,
                              errbuf, errlen)) < 0
        || (rc = s_check_file("TLS key", o->tls_key_file, true, errbuf,
                              errlen)) < 0)
        return rc;
    return 0;
}

/* ============================================================ events */

/* Make the eventfd readable unless it already is. Call with mu held. */
static void
s_signal_locked(pd_backbone_t *self)
{
    if (self->signalled)
        return;
    self->signalled = true;
    uint64_t one = 1;
    ssize_t w = write(self->efd, &one, sizeof(one));
    (void)w; /* only fails when the counter is full: still readable */
}

static pd_backbone_health_t
s_health_locked(const pd_backbone_t *self)
{
    if (!self->conn_up)
        return PD_BACKBONE_DISCONNECTED;
    if (self->stream_missing)
        return PD_BACKBONE_NO_STREAM;
    if (self->diverged)
        return PD_BACKBONE_DIVERGED;
    if (self->submit_failed || !self->probe_quorum)
        return PD_BACKBONE_NO_QUORUM;
    return PD_BACKBONE_OK;
}

/* Leave catching-up once everything the stream held is handed over, or
 * once all that is left waits for a leader to confirm it while there is
 * none to ask: then no node can get further, and this one is not cut
 * off, only waiting with everyone else. */
static void
s_catch_check_locked(pd_backbone_t *self)
{
    bool waiting = self->check_unanswered && self->rec_head == NULL;
    if (self->catching && self->following && self->conn_up
        && self->stream_last_known
        && (waiting
            || (self->rec_n == 0 && self->handed >= self->stream_last)))
        self->catching = false;
}

static void
s_detail_locked(pd_backbone_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queue an EV_STATE if health or catching_up changed. mu held. */
static void
s_state_locked(pd_backbone_t *self)
{
    s_catch_check_locked(self);
    pd_backbone_health_t h = s_health_locked(self);
    bool c = self->following && self->catching;
    if (h == PD_BACKBONE_OK && h != self->told_health)
        s_detail_locked(self, "stream %s%s%s via %.100s", self->stream,
                        self->leader[0] != '\0' ? " led by " : "",
                        self->leader, self->server);
    if (h != self->told_health || c != self->told_catching) {
        self->state_dirty = true;
        s_signal_locked(self);
    }
}

static void
s_detail_locked(pd_backbone_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->detail, sizeof(self->detail), fmt, ap);
    va_end(ap);
}

/* ============================================================ in-flight */

static size_t
s_hash64(uint64_t h, size_t cap)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & (cap - 1);
}

static int
s_tab_init(s_tab_t *t, size_t entries)
{
    t->cap = 16;
    while (t->cap < 2 * entries)
        t->cap *= 2;
    t->e = calloc(t->cap, sizeof(*t->e));
    return t->e != NULL ? 0 : -ENOMEM;
}

static s_ent_t *
s_tab_find(const s_tab_t *t, uint64_t key)
{
    size_t i = s_hash64(key, t->cap);
    while (t->e[i].used) {
        if (t->e[i].key == key)
            return &t->e[i];
        i = (i + 1) & (t->cap - 1);
    }
    return NULL;
}

/* Add key (absent); the table has room by construction. */
static s_ent_t *
s_tab_add(s_tab_t *t, uint64_t key)
{
    size_t i = s_hash64(key, t->cap);
    while (t->e[i].used)
        i = (i + 1) & (t->cap - 1);
    memset(&t->e[i], 0, sizeof(t->e[i]));
    t->e[i].used = true;
    t->e[i].key = key;
    return &t->e[i];
}

/* Remove e; entries after it may move (backward-shift deletion). */
static void
s_tab_del(s_tab_t *t, s_ent_t *e)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)(e - t->e);
    t->e[i].used = false;
    for (size_t j = (i + 1) & mask; t->e[j].used; j = (j + 1) & mask) {
        size_t home = s_hash64(t->e[j].key, t->cap);
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->e[i] = t->e[j];
            t->e[j].used = false;
            i = j;
        }
    }
}

/* The 64-bit key of a signer's subject: its key id. */
static uint64_t
s_subject_key_of(const uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(signer, id);
    return strtoull(id, NULL, 16);
}

/* Queue a completion for the loop. mu held. */
static void
s_complete_locked(pd_backbone_t *self, uint64_t token,
                  pd_backbone_result_t result, bool dup, uint64_t seq,
                  const char *detail)
{
    /* Cannot overflow: inflight <= max_inflight counts these too. */
    uint32_t at = (self->done_head + self->done_n) % self->max_inflight;
    s_done_t *d = &self->done[at];
    self->done_n++;
    d->token = token;
    d->result = result;
    d->duplicate = dup;
    d->parked = result == PD_BACKBONE_CONFLICT;
    d->seq = seq;
    snprintf(d->detail, sizeof(d->detail), "%s", detail != NULL ? detail : "");
    switch (result) {
    case PD_BACKBONE_STORED:
        self->n_stored++;
        if (dup)
            self->n_duplicates++;
        break;
    case PD_BACKBONE_CONFLICT:
        self->n_conflicts++;
        break;
    case PD_BACKBONE_UNAVAILABLE:
        self->n_unavailable++;
        break;
    case PD_BACKBONE_REFUSED:
        self->n_refused++;
        break;
    }
    s_signal_locked(self);
}

/* Hand a message to the submit thread. mu held. */
static void
s_outq_push_locked(pd_backbone_t *self, natsMsg *m)
{
    self->outq[(self->outq_head + self->outq_n) % self->max_inflight] = m;
    self->outq_n++;
    pthread_cond_signal(&self->cv_submit);
}

/* Set m's expected last subject seq. Only fails without memory; the
 * submit then goes with what it had. */
static void
s_set_expect(natsMsg *m, uint64_t expect)
{
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, expect);
    (void)natsMsgHeader_Set(m, S_HDR_EXPECT, v);
}

/*
 * The subject se is free for its next submit: hand the first one
 * waiting to the submit thread, expecting the subject's last known seq
 * (or the caller's, if later), or mark it idle. mu held.
 */
static void
s_release_next_locked(pd_backbone_t *self, s_ent_t *se)
{
    s_wait_t *w = se->head;
    if (w == NULL) {
        se->aux = 0;
        return;
    }
    se->head = w->next;
    if (se->head == NULL)
        se->tail = NULL;
    s_set_expect(w->msg, w->expect > se->val ? w->expect : se->val);
    s_outq_push_locked(self, w->msg);
    free(w);
}

/* Make room in the subject table for one more entry: drop idle ones
 * (only a cache of last seqs) once it is half full. mu held. */
static void
s_subjects_trim_locked(pd_backbone_t *self)
{
    size_t used = 0;
    for (size_t i = 0; i < self->subjects.cap; i++)
        used += self->subjects.e[i].used;
    if (used < self->max_inflight)
        return;
    for (size_t i = 0; i < self->subjects.cap;) {
        s_ent_t *e = &self->subjects.e[i];
        if (e->used && e->aux == 0 && e->head == NULL && e->parked == NULL)
            s_tab_del(&self->subjects, e); /* another may move into i */
        else
            i++;
    }
}

/*
 * A submit ended: queue its completion, then let the subject go on. A
 * conflict parks the submit: the subject stays blocked (what waits
 * behind it keeps its order) until the caller resubmits or abandons it,
 * and the return is 2 (the caller must not destroy m). After a fresh
 * store the next waiting one expects that seq; after an outage every
 * waiting one ends UNAVAILABLE too, at once rather than one timeout
 * after another. Returns 0 if m is not a submit, else 1 (the caller
 * destroys m) or 2. mu held.
 */
static int
s_finish_locked(pd_backbone_t *self, natsMsg *m, pd_backbone_result_t result,
                bool dup, uint64_t seq, const char *detail)
{
    s_ent_t *me = s_tab_find(&self->msgs, (uint64_t)(uintptr_t)m);
    if (me == NULL)
        return 0;
    uint64_t token = me->val, skey = me->aux;
    s_ent_t *se = s_tab_find(&self->subjects, skey);
    if (result == PD_BACKBONE_CONFLICT && se != NULL) {
        if (seq > se->val)
            se->val = seq;
        se->parked = m;
        s_complete_locked(self, token, result, dup, seq, detail);
        return 2;
    }
    s_tab_del(&self->msgs, me);
    s_complete_locked(self, token, result, dup, seq, detail);
    if (se == NULL)
        return 1;
    if (result == PD_BACKBONE_STORED && !dup && seq > se->val)
        se->val = seq;
    if (result == PD_BACKBONE_UNAVAILABLE) {
        for (s_wait_t *w = se->head; w != NULL;) {
            s_wait_t *next = w->next;
            s_ent_t *we = s_tab_find(&self->msgs, (uint64_t)(uintptr_t)w->msg);
            if (we != NULL) {
                uint64_t t = we->val;
                s_tab_del(&self->msgs, we);
                s_complete_locked(self, t, PD_BACKBONE_UNAVAILABLE, false, 0,
                                  detail);
            }
            natsMsg_Destroy(w->msg);
            free(w);
            w = next;
        }
        se->head = se->tail = NULL;
    }
    s_release_next_locked(self, se);
    return 1;
}

/* ============================================================ nats.c side */

/*
 * PubAck handler (nats.c's reply-subscription thread): a positive ack, a
 * JetStream error, or nats.c's timeout after publish_timeout_ms.
 */
static void
s_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
            void *closure)
{
    (void)js;
    pd_backbone_t *self = closure;
    pd_backbone_result_t result = PD_BACKBONE_STORED;
    uint64_t seq = 0;
    bool dup = false;
    char detail[PD_BACKBONE_DETAIL_MAX] = "";
    bool quorum_lost = false;
    if (pa != NULL) {
        seq = pa->Sequence;
        dup = pa->Duplicate;
    } else if (pae != NULL && pae->ErrCode == JSStreamWrongLastSequenceErr) {
        result = PD_BACKBONE_CONFLICT;
        if (pd_backbone_parse_last_seq(pae->ErrText, &seq) != 0)
            seq = 0;
        snprintf(detail, sizeof(detail), "%s", pae->ErrText);
    } else if (pae != NULL
               && (pae->ErrCode == JSStreamMessageExceedsMaximumErr
                   || pae->Err == NATS_NOT_PERMITTED
                   || pae->Err == NATS_MAX_PAYLOAD)) {
        result = PD_BACKBONE_REFUSED;
        snprintf(detail, sizeof(detail), "%s", pae->ErrText);
    } else {
        result = PD_BACKBONE_UNAVAILABLE;
        natsStatus st = pae != NULL ? pae->Err : NATS_ERR;
        if (st == NATS_TIMEOUT)
            snprintf(detail, sizeof(detail),
                     "no answer from the stream within %u ms",
                     self->publish_timeout_ms);
        else if (st == NATS_NO_RESPONDERS)
            snprintf(detail, sizeof(detail),
                     "no server serves the stream (no responders)");
        else
            snprintf(detail, sizeof(detail), "%s (%d)",
                     pae != NULL && pae->ErrText != NULL ? pae->ErrText
                                                         : "error",
                     pae != NULL ? (int)pae->ErrCode : 0);
        quorum_lost = true;
    }

    pthread_mutex_lock(&self->mu);
    int fin = s_finish_locked(self, msg, result, dup, seq, detail);
    if (fin != 0) {
        if (result == PD_BACKBONE_STORED) {
            self->submit_failed = false;
        } else if (quorum_lost && self->conn_up) {
            if (!self->submit_failed)
                s_detail_locked(self, "stream %s: %s", self->stream, detail);
            self->submit_failed = true;
            self->submit_failed_ms = parley__mono_ms();
            self->probe_now = true;
            pthread_cond_signal(&self->cv_ctl);
        }
        s_state_locked(self);
    }
    pthread_mutex_unlock(&self->mu);
    if (fin != 2)
        natsMsg_Destroy(msg);
}

/* Append r to the list head..tail. */
static void
s_recs_append(s_rec_t **head, s_rec_t **tail, s_rec_t *r)
{
    r->next = NULL;
    if (*tail != NULL)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

/* Wait on cv (mu held) for at most ms, or until signalled. */
static void
s_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ms > 0) {
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* Follower message handler (the subscription's delivery thread). */
static void
s_on_record(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
            void *closure)
{
    (void)nc;
    (void)sub;
    s_fctx_t *fc = closure;
    pd_backbone_t *self = fc->bb;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        /* Not a stream message (nats.c filters control messages). */
        natsMsg_Destroy(msg);
        return;
    }
    int len = natsMsg_GetDataLength(msg);
    s_rec_t *r = malloc(sizeof(*r) + (size_t)(len > 0 ? len : 0));
    if (r != NULL) {
        r->next = NULL;
        r->seq = meta->Sequence.Stream;
        r->pending = meta->NumPending;
        r->time_ms = meta->Timestamp / 1000000;
        r->time_ns = meta->Timestamp;
        r->len = (size_t)(len > 0 ? len : 0);
        if (r->len > 0)
            memcpy(r->data, natsMsg_GetData(msg), r->len);
        s_subject_key(self, natsMsg_GetSubject(msg), r->key_id);
    }
    jsMsgMetaData_Destroy(meta);
    natsMsg_Destroy(msg);

    pthread_mutex_lock(&self->mu);
    if (r == NULL) {
        /* Out of memory: start over from the next seq later. */
        self->fgen++;
        self->catching = true;
        pthread_cond_signal(&self->cv_ctl);
    } else if (fc->gen == self->fgen && !self->paused
               && r->seq > self->follow_next
               && self->stream_first <= self->follow_next) {
        /* A seq skipped that the stream still holds (it cuts no holes:
         * deny_delete): not retention but a consumer that lost its way.
         * Read again from the seq wanted, and ask for the stream's first
         * seq in case retention has moved on since the last probe. */
        self->n_gaps++;
        self->fgen++;
        self->catching = true;
        self->probe_now = true;
        pthread_cond_signal(&self->cv_ctl);
        s_state_locked(self);
    } else if (fc->gen == self->fgen && !self->paused
               && r->seq >= self->follow_next) {
        s_recs_append(&self->raw_head, &self->raw_tail, r);
        self->rec_n++;
        self->rec_bytes += r->len;
        self->follow_next = r->seq + 1;
        self->last_record_ms = parley__mono_ms();
        if (r->seq + r->pending > self->stream_last)
            self->stream_last = r->seq + r->pending;
        self->stream_last_known = true;
        r = NULL;
        if (self->rec_n >= self->follow_max_records
            || self->rec_bytes >= self->follow_max_bytes) {
            /* The loop is far behind: stop reading until it catches up. */
            self->paused = true;
            self->fgen++;
            self->n_pauses++;
            self->catching = true;
            pthread_cond_signal(&self->cv_ctl);
            s_state_locked(self);
        }
        pthread_cond_signal(&self->cv_check);
    }
    pthread_mutex_unlock(&self->mu);
    free(r);
}

/* A follower subscription has ended: no more calls with this closure. */
static void
s_on_sub_complete(void *closure)
{
    s_fctx_t *fc = closure;
    pd_backbone_t *self = fc->bb;
    pthread_mutex_lock(&self->mu);
    self->subs_alive--;
    pthread_cond_broadcast(&self->cv_done);
    pthread_mutex_unlock(&self->mu);
    free(fc);
}

static void
s_on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    pd_backbone_t *self = closure;
    pthread_mutex_lock(&self->mu);
    if (self->conn_up)
        s_detail_locked(self, "disconnected from %s; reconnecting",
                        self->server);
    self->conn_up = false;
    self->stream_last_known = false;
    self->catching = true;
    s_state_locked(self);
    pthread_mutex_unlock(&self->mu);
}

static void
s_on_reconnected(natsConnection *nc, void *closure)
{
    pd_backbone_t *self = closure;
    char url[128] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    pthread_mutex_lock(&self->mu);
    snprintf(self->server, sizeof(self->server), "%s", url);
    self->conn_up = true;
    self->n_reconnects++;
    self->catching = true;
    self->probe_now = true;
    /* A submit that timed out says nothing of the servers reached now:
     * the probe decides again. */
    self->submit_failed = false;
    s_detail_locked(self, "reconnected to %s", url);
    pthread_cond_signal(&self->cv_ctl);
    s_state_locked(self);
    pthread_mutex_unlock(&self->mu);
}

static void
s_on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    pd_backbone_t *self = closure;
    pthread_mutex_lock(&self->mu);
    self->conn_closed = true;
    self->conn_up = false;
    pthread_cond_broadcast(&self->cv_done);
    pthread_mutex_unlock(&self->mu);
}

static void
s_on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                 void *closure)
{
    (void)nc;
    (void)sub;
    (void)err;
    pd_backbone_t *self = closure;
    pthread_mutex_lock(&self->mu);
    self->n_async_errors++;
    pthread_mutex_unlock(&self->mu);
}

/* ============================================================ stream */

static void
s_stream_config(const pd_backbone_t *self, jsStreamConfig *sc,
                const char **subject)
{
    jsStreamConfig_Init(sc);
    *subject = self->filter;
    sc->Name = self->stream;
    sc->Subjects = subject;
    sc->SubjectsLen = 1;
    sc->Retention = js_LimitsPolicy;
    sc->Discard = js_DiscardOld;
    sc->Storage = js_FileStorage;
    sc->Replicas = self->replicas;
    sc->MaxBytes = self->max_bytes;
    sc->MaxAge = self->max_age_ns;
    sc->Duplicates = self->dup_window_ns;
    sc->DenyDelete = true;
    sc->DenyPurge = true;
}

/* Append "field have (parleyd: want)" to the list in buf. */
static void
s_diff(char *buf, size_t cap, const char *field, const char *have,
       const char *want)
{
    size_t used = strlen(buf);
    if (used + 1 >= cap)
        return;
    snprintf(buf + used, cap - used, "%s%s %s (parleyd: %s)",
             used > 0 ? "; " : "", field, have, want);
}

static void
s_diff_i64(char *buf, size_t cap, const char *field, int64_t have,
           int64_t want, const char *unit)
{
    char h[48], w[48];
    snprintf(h, sizeof(h), "%" PRId64 "%s", have, unit);
    snprintf(w, sizeof(w), "%" PRId64 "%s", want, unit);
    s_diff(buf, cap, field, h, w);
}

static const char *
s_bool(bool b)
{
    return b ? "true" : "false";
}

/* Normalise "no limit" (0 or -1 for different fields) to -1. */
static int64_t
s_nolimit(int64_t v)
{
    return v <= 0 ? -1 : v;
}

/*
 * Compare an existing stream's config with ours; list what contradicts
 * in buf. Returns the number of fields that differ.
 */
static int
s_stream_compare(const pd_backbone_t *self, const jsStreamConfig *c,
                 char *buf, size_t cap)
{
    buf[0] = '\0';
    int n = 0;
#define S_DIFF(cond, ...)                                                      \
    do {                                                                       \
        if (cond) {                                                            \
            __VA_ARGS__;                                                       \
            n++;                                                               \
        }                                                                      \
    } while (0)
    bool subj_ok = c->SubjectsLen == 1 && c->Subjects != NULL
                   && c->Subjects[0] != NULL
                   && strcmp(c->Subjects[0], self->filter) == 0;
    if (!subj_ok) {
        char have[256] = "";
        for (int i = 0; i < c->SubjectsLen && c->Subjects != NULL; i++) {
            size_t u = strlen(have);
            snprintf(have + u, sizeof(have) - u, "%s%s", i > 0 ? "," : "",
                     c->Subjects[i] != NULL ? c->Subjects[i] : "");
        }
        s_diff(buf, cap, "subjects", have[0] != '\0' ? have : "(none)",
               self->filter);
        n++;
    }
    S_DIFF(c->Retention != js_LimitsPolicy,
           s_diff(buf, cap, "retention",
                  c->Retention == js_InterestPolicy ? "interest" : "workqueue",
                  "limits"));
    S_DIFF(c->Storage != js_FileStorage,
           s_diff(buf, cap, "storage", "memory", "file"));
    S_DIFF(c->Replicas != (int64_t)self->replicas,
           s_diff_i64(buf, cap, "replicas", c->Replicas, self->replicas, ""));
    S_DIFF(c->Duplicates != self->dup_window_ns,
           s_diff_i64(buf, cap, "duplicate_window", c->Duplicates / S_NS_PER_S,
                      self->dup_window_ns / S_NS_PER_S, "s"));
    S_DIFF(s_nolimit(c->MaxBytes) != s_nolimit(self->max_bytes),
           s_diff_i64(buf, cap, "max_bytes", s_nolimit(c->MaxBytes),
                      s_nolimit(self->max_bytes), ""));
    S_DIFF(c->MaxAge != self->max_age_ns,
           s_diff_i64(buf, cap, "max_age", c->MaxAge / S_NS_PER_S,
                      self->max_age_ns / S_NS_PER_S, "s"));
    S_DIFF(s_nolimit(c->MaxMsgs) != -1,
           s_diff_i64(buf, cap, "max_msgs", c->MaxMsgs, -1, ""));
    S_DIFF(s_nolimit(c->MaxMsgsPerSubject) != -1,
           s_diff_i64(buf, cap, "max_msgs_per_subject", c->MaxMsgsPerSubject,
                      -1, ""));
    S_DIFF(c->MaxMsgSize > 0
               && (uint64_t)c->MaxMsgSize < self->max_message_bytes + 1024u,
           s_diff_i64(buf, cap, "max_msg_size", c->MaxMsgSize,
                      (int64_t)self->max_message_bytes + 1024, " or more"));
    S_DIFF(c->Discard != js_DiscardOld,
           s_diff(buf, cap, "discard", "new", "old"));
    S_DIFF(!c->DenyDelete,
           s_diff(buf, cap, "deny_delete", s_bool(c->DenyDelete), "true"));
    S_DIFF(!c->DenyPurge,
           s_diff(buf, cap, "deny_purge", s_bool(c->DenyPurge), "true"));
    S_DIFF(c->AllowRollup, s_diff(buf, cap, "allow_rollup", "true", "false"));
    S_DIFF(c->NoAck, s_diff(buf, cap, "no_ack", "true", "false"));
    S_DIFF(c->Sealed, s_diff(buf, cap, "sealed", "true", "false"));
    S_DIFF(c->Mirror != NULL || c->SourcesLen > 0,
           s_diff(buf, cap, "mirror/sources", "set", "none"));
#undef S_DIFF
    return n;
}

/* Errors worth retrying while the cluster forms or elects. */
static bool
s_transient(natsStatus s, jsErrCode jerr)
{
    if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS
        || s == NATS_CONNECTION_DISCONNECTED || s == NATS_NOT_YET_CONNECTED)
        return true;
    return jerr == JSClusterNotAvailErr || jerr == JSClusterNoPeersErr
           || jerr == JSInsufficientResourcesErr || jerr == JSClusterNotLeaderErr
           || jerr == JSClusterIncompleteErr || jerr == JSNotEnabledErr;
}

/*
 * Create the stream or check the existing one, retrying transient errors
 * until deadline. Returns 0, -EEXIST, -ETIMEDOUT or -EPROTO.
 */
static int
s_stream_ensure(pd_backbone_t *self, int64_t deadline, char *errbuf,
                size_t errlen)
{
    const char *last = "no answer";
    char lastbuf[256];
    for (;;) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetStreamInfo(&si, self->js, self->stream, NULL,
                                        &jerr);
        if (s == NATS_OK) {
            char diffs[1024];
            int n = s_stream_compare(self, si->Config, diffs, sizeof(diffs));
            uint64_t last_seq = si->State.LastSeq;
            uint64_t first_seq = si->State.FirstSeq;
            int64_t created = si->Created;
            jsStreamInfo_Destroy(si);
            if (n > 0) {
                s_err(errbuf, errlen,
                      "backbone: stream %s exists with %d setting%s that "
                      "contradict parleyd's: %s. Change the stream (nats "
                      "stream edit) or parleyd's settings; parleyd does not "
                      "change an existing stream",
                      self->stream, n, n == 1 ? "" : "s", diffs);
                return -EEXIST;
            }
            self->stream_last = last_seq;
            self->stream_first = first_seq;
            self->created = created;
            return 0;
        }
        if (jerr == JSStreamNotFoundErr) {
            jsStreamConfig sc;
            const char *subject;
            s_stream_config(self, &sc, &subject);
            jerr = 0;
            s = js_AddStream(&si, self->js, &sc, NULL, &jerr);
            jsStreamInfo_Destroy(si);
            if (s == NATS_OK || jerr == JSStreamNameExistErr)
                continue; /* read it back (another node may have won) */
            if (jerr == JSStreamReplicasNotSupportedErr) {
                s_err(errbuf, errlen,
                      "backbone: %u replicas need a JetStream cluster, but "
                      "the server is not clustered (set the replicas to 1, "
                      "or cluster the servers)",
                      self->replicas);
                return -EPROTO;
            }
            if (!s_transient(s, jerr)) {
                s_err(errbuf, errlen, "backbone: cannot create stream %s: %s",
                      self->stream, s_nats_text(s));
                return -EPROTO;
            }
        } else if (!s_transient(s, jerr)) {
            s_err(errbuf, errlen, "backbone: stream %s: %s", self->stream,
                  s_nats_text(s));
            return -EPROTO;
        }
        snprintf(lastbuf, sizeof(lastbuf), "%s", s_nats_text(s));
        last = lastbuf;
        if (parley__mono_ms() + S_RETRY_MS >= deadline)
            break;
        nats_Sleep(S_RETRY_MS);
    }
    s_err(errbuf, errlen,
          "backbone: JetStream did not serve stream %s in time (last: %s)",
          self->stream, last);
    return -ETIMEDOUT;
}

/* ============================================================ threads */

/* Hand queued messages to nats.c; never holds mu while publishing. */
static void *
s_submit_main(void *arg)
{
    pd_backbone_t *self = arg;
    natsMsg **batch = calloc(self->max_inflight, sizeof(*batch));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = self->publish_timeout_ms;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (self->outq_n == 0 && !self->closing)
            pthread_cond_wait(&self->cv_submit, &self->mu);
        if (self->closing || batch == NULL)
            break;
        uint32_t n = self->outq_n;
        for (uint32_t i = 0; i < n; i++)
            batch[i] = self->outq[(self->outq_head + i) % self->max_inflight];
        self->outq_head = (self->outq_head + n) % self->max_inflight;
        self->outq_n = 0;
        pthread_mutex_unlock(&self->mu);
        for (uint32_t i = 0; i < n; i++) {
            natsMsg *m = batch[i];
            natsStatus s = js_PublishMsgAsync(self->js, &m, &po);
            if (s == NATS_OK)
                continue;
            /* Not handed over: ours to complete and free. */
            char detail[PD_BACKBONE_DETAIL_MAX];
            snprintf(detail, sizeof(detail), "cannot publish: %s",
                     s_nats_text(s));
            pthread_mutex_lock(&self->mu);
            (void)s_finish_locked(self, batch[i], PD_BACKBONE_UNAVAILABLE,
                                  false, 0, detail); /* never parks */
            pthread_mutex_unlock(&self->mu);
            natsMsg_Destroy(batch[i]);
        }
        pthread_mutex_lock(&self->mu);
    }
    pthread_mutex_unlock(&self->mu);
    free(batch);
    return NULL;
}

/* Subscribe the follower from follow_next (control thread). Returns
 * whether it is subscribed. */
static bool
s_follow_subscribe(pd_backbone_t *self)
{
    s_fctx_t *fc = calloc(1, sizeof(*fc));
    if (fc == NULL)
        return false;
    pthread_mutex_lock(&self->mu);
    fc->bb = self;
    fc->gen = ++self->fgen;
    uint64_t from = self->follow_next;
    pthread_mutex_unlock(&self->mu);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = self->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    so.Config.Heartbeat = (int64_t)S_HEARTBEAT_MS * 1000000;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Subscribe(&sub, self->js, self->filter, s_on_record, fc,
                                NULL, &so, &jerr);
    if (s == NATS_OK) {
        /* Memory is bounded by pausing (and JetStream's flow control), not
         * by nats.c dropping messages, which would leave holes. */
        natsSubscription_SetPendingLimits(sub, -1, -1);
        s = natsSubscription_SetOnCompleteCB(sub, s_on_sub_complete, fc);
    }
    pthread_mutex_lock(&self->mu);
    if (s == NATS_OK) {
        self->fsub = sub;
        self->fsub_gen = fc->gen;
        self->subs_alive++;
        self->n_subscribes++;
        self->subscribed_ms = parley__mono_ms();
        self->last_record_ms = self->subscribed_ms;
        pthread_mutex_unlock(&self->mu);
        return true;
    }
    pthread_mutex_unlock(&self->mu);
    if (sub != NULL) {
        /* Subscribed but no complete callback: no closure left behind. */
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        pthread_mutex_lock(&self->mu);
        self->fgen++;
        pthread_mutex_unlock(&self->mu);
        /* Its handler may still run with fc: leak fc rather than risk it. */
        return false;
    }
    free(fc);
    return false;
}

/* End the follower's subscription (control thread or close). */
static void
s_follow_unsubscribe(pd_backbone_t *self)
{
    pthread_mutex_lock(&self->mu);
    natsSubscription *sub = self->fsub;
    self->fsub = NULL;
    pthread_mutex_unlock(&self->mu);
    if (sub == NULL)
        return;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

/* Ask JetStream about the stream: last seq, leader, quorum (control). */
static void
s_probe(pd_backbone_t *self)
{
    /* What this node had confirmed before asking: the answer covers at
     * least that (the leader's store only grows). Records read but not
     * yet confirmed do not count: they may come from a replica that holds
     * more than the leader. */
    pthread_mutex_lock(&self->mu);
    uint64_t held = self->following ? self->confirmed : 0;
    pthread_mutex_unlock(&self->mu);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, self->js, self->stream, NULL, &jerr);
    char leader[64] = "";
    bool quorum = false, led = false, remade = false;
    uint64_t last = 0, first = 0;
    int current = 0;
    if (s == NATS_OK) {
        last = si->State.LastSeq;
        first = si->State.FirstSeq;
        remade = si->Created != self->created;
        if (si->Cluster == NULL) {
            quorum = led = true; /* a single server: it is the stream */
        } else if (si->Cluster->Leader != NULL
                   && si->Cluster->Leader[0] != '\0') {
            snprintf(leader, sizeof(leader), "%s", si->Cluster->Leader);
            led = true;
            current = 1;
            for (int i = 0; i < si->Cluster->ReplicasLen; i++) {
                const jsPeerInfo *p = si->Cluster->Replicas[i];
                if (p != NULL && p->Current && !p->Offline
                    && p->Active < S_ACTIVE_MAX_NS)
                    current++;
            }
            quorum = current > (int)self->replicas / 2;
        }
        jsStreamInfo_Destroy(si);
    }

    pthread_mutex_lock(&self->mu);
    self->n_probes++;
    if (s != NATS_OK)
        self->n_probes_failed++;
    self->stream_missing = jerr == JSStreamNotFoundErr;
    /* Shorter than what we hold: only a leader's answer counts, and only
     * three in a row over two probe intervals at least (a new leader may
     * still be applying its log; a server that was paused answers the
     * probes queued meanwhile at once). */
    if (s == NATS_OK && led && last < held) {
        if (self->short_probes++ == 0)
            self->short_since_ms = parley__mono_ms();
    } else if (s == NATS_OK) {
        self->short_probes = 0;
    }
    if (s == NATS_OK && !self->diverged
        && (remade
            || (self->short_probes >= 3
                && parley__mono_ms() - self->short_since_ms
                       >= 2 * S_PROBE_MS))) {
        self->diverged = true;
        if (remade)
            s_detail_locked(self,
                            "stream %s was made again (another creation "
                            "time): its seqs are not this node's",
                            self->stream);
        else
            s_detail_locked(self,
                            "stream %s ends at seq %" PRIu64 " but this "
                            "node has followed it to seq %" PRIu64
                            ": the stream lost records",
                            self->stream, last, held);
    }
    if (s == NATS_OK) {
        if (last > self->stream_last)
            self->stream_last = last;
        if (led && first > self->stream_first)
            self->stream_first = first;
        if (self->conn_up)
            self->stream_last_known = true;
        snprintf(self->leader, sizeof(self->leader), "%s", leader);
        if (self->diverged)
            ; /* keep saying why: it is final */
        else if (!quorum && leader[0] == '\0')
            s_detail_locked(self, "stream %s has no leader", self->stream);
        else if (!quorum)
            s_detail_locked(self,
                            "stream %s: leader %s hears %d of %u replicas",
                            self->stream, leader, current, self->replicas);
        self->probe_quorum = quorum;
        /* A probe that sees a quorum clears an old submit failure; a
         * fresh one outweighs it (a leader that lost its followers still
         * reports itself for a few seconds). */
        if (quorum && self->submit_failed
            && parley__mono_ms() - self->submit_failed_ms > S_FAIL_HOLD_MS) {
            self->submit_failed = false;
        }
    } else if (self->stream_missing) {
        self->probe_quorum = false;
        s_detail_locked(self, "stream %s not found (deleted?)", self->stream);
    } else if (self->conn_up) {
        self->probe_quorum = false;
        s_detail_locked(self, "stream %s does not answer: %s", self->stream,
                        natsStatus_GetText(s));
        /* Connected, but the stream has no leader to ask: nothing can be
         * stored now, so what this node has is as far as it goes; it is
         * not cut off (catching up), only waiting with everyone else. */
        self->stream_last_known = true;
    }
    s_state_locked(self);
    pthread_mutex_unlock(&self->mu);
}

/* Follower subscription, probes, stall watch. */
static void *
s_ctl_main(void *arg)
{
    pd_backbone_t *self = arg;
    int64_t next_probe = parley__mono_ms() + S_PROBE_MS;
    int64_t sub_after = 0; /* after a failed subscribe: not before then */
    pthread_mutex_lock(&self->mu);
    while (!self->closing) {
        int64_t now = parley__mono_ms();
        bool unsub = self->fsub != NULL
                     && (self->fsub_gen != self->fgen || self->paused);
        bool sub = !unsub && self->fsub == NULL && self->following
                   && !self->paused && self->conn_up && now >= sub_after;
        bool probe = self->probe_now || now >= next_probe;
        if (!unsub && !sub && !probe) {
            s_wait_ms(&self->cv_ctl, &self->mu, next_probe - now);
            continue;
        }
        self->probe_now = false;
        pthread_mutex_unlock(&self->mu);
        if (unsub)
            s_follow_unsubscribe(self);
        if (sub && !s_follow_subscribe(self))
            sub_after = parley__mono_ms() + S_PROBE_MS;
        bool conn_up = true;
        if (probe) {
            pthread_mutex_lock(&self->mu);
            conn_up = self->conn_up;
            pthread_mutex_unlock(&self->mu);
            if (conn_up)
                s_probe(self);
            next_probe = parley__mono_ms() + S_PROBE_MS;
        }
        pthread_mutex_lock(&self->mu);
        /* Behind the stream, nothing queued, nothing arriving: the
         * consumer is gone (its server died); start a new one. */
        now = parley__mono_ms();
        if (self->fsub != NULL && !self->paused && !self->diverged
            && self->stream_last_known
            && self->stream_last >= self->follow_next && self->rec_n == 0
            && now - self->last_record_ms > S_STALL_MS
            && now - self->subscribed_ms > S_STALL_MS) {
            self->fgen++;
            self->catching = true;
            s_state_locked(self);
        }
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

/* ============================================================ the check */

/*
 * What the stream leader holds at r's seq (check thread; STREAM.MSG.GET,
 * which in a clustered stream only the leader answers). Returns 1 the
 * same record (subject, bytes, store time), 0 another one (why says
 * which), -1 no answer now (no leader, timeout, no connection): ask
 * again later, -2 none there (not yet applied by the leader, or never).
 */
static int
s_leader_has(pd_backbone_t *self, const s_rec_t *r, char *why, size_t cap)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = S_CHECK_WAIT_MS;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, self->js, self->stream, r->seq, &jo, &jerr);
    if (s != NATS_OK) {
        if (jerr == JSNoMessageFoundErr) {
            snprintf(why, cap, "the leader holds none");
            return -2;
        }
        snprintf(why, cap, "%s", s_nats_text(s));
        return -1;
    }
    char key[PARLEY_KEYID_CHARS + 1];
    s_subject_key(self, natsMsg_GetSubject(m), key);
    int len = natsMsg_GetDataLength(m);
    size_t n = len > 0 ? (size_t)len : 0;
    int64_t at = natsMsg_GetTime(m);
    bool same = natsMsg_GetSequence(m) == r->seq && at == r->time_ns
                && strcmp(key, r->key_id) == 0 && n == r->len
                && (n == 0 || memcmp(natsMsg_GetData(m), r->data, n) == 0);
    if (!same)
        snprintf(why, cap,
                 "the leader holds %zu bytes stored at %lld ms, the replica "
                 "%zu at %lld",
                 n, (long long)(at / 1000000), r->len, (long long)r->time_ms);
    natsMsg_Destroy(m);
    return same ? 1 : 0;
}

/* Free a list of records. */
static void
s_recs_free(s_rec_t *r)
{
    while (r != NULL) {
        s_rec_t *next = r->next;
        free(r);
        r = next;
    }
}

/*
 * The leader holds another record at the seq of the first raw record:
 * drop it and every raw record after it, and read again from its seq
 * with a new subscription. mu held.
 */
static void
s_reread_locked(pd_backbone_t *self, const char *why)
{
    uint64_t seq = self->raw_head->seq;
    for (s_rec_t *r = self->raw_head; r != NULL; r = r->next) {
        self->rec_n--;
        self->rec_bytes -= r->len;
    }
    s_recs_free(self->raw_head);
    self->raw_head = self->raw_tail = NULL;
    self->n_rereads++;
    if (seq == self->recheck_seq) {
        self->rechecks++;
    } else {
        self->recheck_seq = seq;
        self->rechecks = 1;
    }
    self->follow_next = seq;
    self->fgen++;
    self->catching = true;
    if (self->paused && self->rec_n <= self->follow_max_records / 2
        && self->rec_bytes <= self->follow_max_bytes / 2)
        self->paused = false;
    self->absent = 0;
    self->verify_prev = true;
    if (self->rechecks >= S_RECHECK_MAX && !self->diverged) {
        self->diverged = true;
        s_detail_locked(self,
                        "stream %s seq %" PRIu64 ": %s, read %d times: "
                        "the replicas diverged",
                        self->stream, seq, why, self->rechecks);
    } else if (!self->diverged) {
        s_detail_locked(self, "stream %s seq %" PRIu64 ": %s; read again",
                        self->stream, seq, why);
    }
    self->state_dirty = true; /* the caller hears of every re-read */
    s_signal_locked(self);
    pthread_cond_signal(&self->cv_ctl);
    s_state_locked(self);
}

/* Confirm raw records with the leader, in order, and queue them for the
 * loop (see the top of the file). */
static void *
s_check_main(void *arg)
{
    pd_backbone_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (!self->closing) {
        s_rec_t *r = self->raw_head;
        if (r == NULL || self->diverged) {
            pthread_cond_wait(&self->cv_check, &self->mu);
            continue;
        }
        bool ask = self->conn_up;
        pthread_mutex_unlock(&self->mu);
        char why[PD_BACKBONE_DETAIL_MAX] = "";
        /* r stays the head: only this thread takes raw records off. */
        int has = ask ? s_leader_has(self, r, why, sizeof(why)) : -1;
        pthread_mutex_lock(&self->mu);
        if (self->closing)
            break;
        if (has == -2 && ++self->absent >= S_ABSENT_MAX)
            has = 0;
        if ((has == -1) != self->check_unanswered) {
            self->check_unanswered = has == -1;
            s_state_locked(self);
        }
        if (has < 0) {
            s_wait_ms(&self->cv_check, &self->mu, S_CHECK_RETRY_MS);
            continue;
        }
        if (has == 0) {
            s_reread_locked(self, why);
            continue;
        }
        if (self->verify_prev) {
            /* Confirmed after a re-read: the replica read before may have
             * been right and the leader changed to one that holds other
             * records. Then the records already handed over are not the
             * leader's any more: the stream's history changed. */
            const s_rec_t *prev = self->last_ok;
            pthread_mutex_unlock(&self->mu);
            int kept = prev == NULL || prev->seq + 1 != r->seq
                           ? 1
                           : s_leader_has(self, prev, why, sizeof(why));
            pthread_mutex_lock(&self->mu);
            if (self->closing)
                break;
            if (kept == -1) {
                s_wait_ms(&self->cv_check, &self->mu, S_CHECK_RETRY_MS);
                continue;
            }
            /* None there (-2): retention may just have dropped it; only
             * another record there says the history changed. */
            if (kept == 0) {
                self->diverged = true;
                s_detail_locked(self,
                                "stream %s seq %" PRIu64 " (applied): %s: "
                                "the leader changed its history",
                                self->stream, prev->seq, why);
                s_state_locked(self);
                continue;
            }
            self->verify_prev = false;
        }
        if (self->last_ok_cap < sizeof(*r) + r->len) {
            s_rec_t *c = realloc(self->last_ok, sizeof(*r) + r->len);
            if (c != NULL) {
                self->last_ok = c;
                self->last_ok_cap = sizeof(*r) + r->len;
            }
        }
        if (self->last_ok_cap >= sizeof(*r) + r->len)
            memcpy(self->last_ok, r, sizeof(*r) + r->len);
        else
            self->last_ok_cap = 0; /* no copy: nothing to verify after */
        self->raw_head = r->next;
        if (self->raw_head == NULL)
            self->raw_tail = NULL;
        s_recs_append(&self->rec_head, &self->rec_tail, r);
        self->confirmed = r->seq;
        self->n_checked++;
        self->absent = 0;
        if (r->seq >= self->recheck_seq)
            self->rechecks = 0;
        s_signal_locked(self);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

/* ============================================================ open/close */

static natsStatus
s_nats_options(pd_backbone_t *self, const pd_backbone_opts_t *o,
               const char *const *servers, int n)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    self->nopts = no;
    if (s == NATS_OK)
        s = natsOptions_SetServers(no, (const char **)servers, n);
    if (s == NATS_OK && o->name != NULL)
        s = natsOptions_SetName(no, o->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(no, 100, 500);
    /* A stopped server is noticed within about 2 s (2 pings unanswered). */
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(no, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(no, 2);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(no, s_on_disconnected, self);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(no, s_on_reconnected, self);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(no, s_on_closed, self);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(no, s_on_async_error, self);
    bool tls = o->tls_ca_file != NULL || o->tls_cert_file != NULL
               || o->tls_hostname != NULL;
    for (int i = 0; i < n; i++)
        tls = tls || strncmp(servers[i], "tls://", 6) == 0;
    if (s == NATS_OK && tls)
        s = natsOptions_SetSecure(no, true);
    if (s == NATS_OK && o->tls_ca_file != NULL)
        s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca_file);
    if (s == NATS_OK && o->tls_cert_file != NULL)
        s = natsOptions_LoadCertificatesChain(no, o->tls_cert_file,
                                              o->tls_key_file);
    if (s == NATS_OK && o->tls_hostname != NULL)
        s = natsOptions_SetExpectedHostname(no, o->tls_hostname);
    if (s == NATS_OK && o->creds_file != NULL)
        s = natsOptions_SetUserCredentialsFromFiles(no, o->creds_file, NULL);
    return s;
}

/* Connect, retrying unreachable servers until deadline. */
static int
s_connect(pd_backbone_t *self, int64_t deadline, char *errbuf, size_t errlen)
{
    for (;;) {
        natsStatus s = natsConnection_Connect(&self->nc, self->nopts);
        if (s == NATS_OK)
            return 0;
        const char *why = s_nats_text(s);
        if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED
            || s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_WANTED
            || s == NATS_SECURE_CONNECTION_REQUIRED) {
            s_err(errbuf, errlen, "backbone: the NATS servers refuse us: %s",
                  why);
            return -EACCES;
        }
        if (parley__mono_ms() + S_RETRY_MS >= deadline) {
            s_err(errbuf, errlen, "backbone: no NATS server answers: %s", why);
            return -ETIMEDOUT;
        }
        nats_Sleep(S_RETRY_MS);
    }
}

pd_backbone_t *
pd_backbone_open(const pd_backbone_opts_t *o, char *errbuf, size_t errlen,
                 int *err)
{
    int64_t deadline = parley__mono_ms() + (o->open_timeout_ms > 0
                                          ? o->open_timeout_ms
                                          : 10000);
    int rc = pd_backbone_opts_check(o, errbuf, errlen);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    pd_backbone_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->efd = -1;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv_submit, NULL);
    pthread_cond_init(&self->cv_ctl, NULL);
    pthread_cond_init(&self->cv_check, NULL);
    pthread_cond_init(&self->cv_done, NULL);

    snprintf(self->stream, sizeof(self->stream), "%s",
             o->stream != NULL ? o->stream : S_DEFAULT_STREAM);
    snprintf(self->prefix, sizeof(self->prefix), "%s" S_SUBJECT_MID,
             self->stream);
    snprintf(self->filter, sizeof(self->filter), "%s" S_SUBJECT_MID "*",
             self->stream);
    self->replicas = o->replicas;
    uint64_t window = o->duplicate_window != 0
                          ? o->duplicate_window
                          : 2 * (uint64_t)o->max_clock_skew;
    self->dup_window_ns = (int64_t)window * S_NS_PER_S;
    self->max_age_ns = (int64_t)o->retention_age * S_NS_PER_S;
    self->max_bytes = o->retention_bytes != 0 ? (int64_t)o->retention_bytes
                                              : -1;
    self->max_message_bytes = o->max_message_bytes;
    self->publish_timeout_ms = o->publish_timeout_ms;
    self->max_inflight = o->max_inflight;
    self->follow_max_records = o->follow_max_records;
    self->follow_max_bytes = o->follow_max_bytes;

    self->outq = calloc(self->max_inflight, sizeof(*self->outq));
    self->done = calloc(self->max_inflight, sizeof(*self->done));
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s_tab_init(&self->msgs, self->max_inflight) < 0
        || s_tab_init(&self->subjects, self->max_inflight) < 0
        || self->outq == NULL || self->done == NULL || self->efd < 0) {
        rc = self->efd < 0 ? -errno : -ENOMEM;
        s_err(errbuf, errlen, "backbone: %s", strerror(-rc));
        goto fail;
    }

    char buf[PD_BACKBONE_SERVERS_MAX * 257];
    const char *servers[PD_BACKBONE_SERVERS_MAX];
    int n = s_split_servers(o->servers, buf, sizeof(buf), servers, errbuf,
                            errlen);
    natsStatus s = s_nats_options(self, o, servers, n);
    if (s != NATS_OK) {
        s_err(errbuf, errlen, "backbone: NATS client options: %s",
              s_nats_text(s));
        rc = s == NATS_SSL_ERROR ? -EACCES : -EINVAL;
        goto fail;
    }
    if ((rc = s_connect(self, deadline, errbuf, errlen)) < 0)
        goto fail;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = self->publish_timeout_ms < 500    ? 500
              : self->publish_timeout_ms > 5000 ? 5000
                                                : self->publish_timeout_ms;
    jo.PublishAsync.AckHandler = s_on_puback;
    jo.PublishAsync.AckHandlerClosure = self;
    if ((s = natsConnection_JetStream(&self->js, self->nc, &jo)) != NATS_OK) {
        s_err(errbuf, errlen, "backbone: JetStream context: %s",
              s_nats_text(s));
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = s_stream_ensure(self, deadline, errbuf, errlen)) < 0)
        goto fail;

    natsConnection_GetConnectedUrl(self->nc, self->server,
                                   sizeof(self->server));
    self->conn_up = !natsConnection_IsReconnecting(self->nc);
    self->probe_quorum = true;
    self->stream_last_known = true;
    self->told_health = PD_BACKBONE_OK;
    snprintf(self->detail, sizeof(self->detail), "stream %s ready on %.100s",
             self->stream, self->server);
    if (pthread_create(&self->submit_thr, NULL, s_submit_main, self) != 0) {
        rc = -EAGAIN;
        goto fail;
    }
    bool ctl = pthread_create(&self->ctl_thr, NULL, s_ctl_main, self) == 0;
    if (!ctl
        || pthread_create(&self->check_thr, NULL, s_check_main, self) != 0) {
        pthread_mutex_lock(&self->mu);
        self->closing = true;
        pthread_cond_broadcast(&self->cv_submit);
        pthread_cond_broadcast(&self->cv_ctl);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->submit_thr, NULL);
        if (ctl)
            pthread_join(self->ctl_thr, NULL);
        rc = -EAGAIN;
        goto fail;
    }
    self->threads = true;
    /* Health as of now (a disconnect during open shows at once). */
    pthread_mutex_lock(&self->mu);
    self->probe_now = true;
    pthread_cond_signal(&self->cv_ctl);
    s_state_locked(self);
    pthread_mutex_unlock(&self->mu);
    return self;
fail:
    *err = rc;
    pd_backbone_close(&self);
    return NULL;
}

/* Wait on cv_done until cond holds or ms pass; mu held. */
#define S_WAIT_DONE(self, cond, ms)                                            \
    do {                                                                       \
        struct timespec ts_;                                                   \
        clock_gettime(CLOCK_REALTIME, &ts_);                                   \
        ts_.tv_sec += (ms) / 1000;                                             \
        while (!(cond)                                                         \
               && pthread_cond_timedwait(&(self)->cv_done, &(self)->mu, &ts_)  \
                      == 0)                                                    \
            ;                                                                  \
    } while (0)

void
pd_backbone_close(pd_backbone_t **bbp)
{
    if (bbp == NULL || *bbp == NULL)
        return;
    pd_backbone_t *self = *bbp;
    *bbp = NULL;
    bool leak = false;

    pthread_mutex_lock(&self->mu);
    self->closing = true;
    pthread_cond_broadcast(&self->cv_submit);
    pthread_cond_broadcast(&self->cv_ctl);
    pthread_cond_broadcast(&self->cv_check);
    pthread_mutex_unlock(&self->mu);
    if (self->threads) {
        pthread_join(self->submit_thr, NULL);
        pthread_join(self->ctl_thr, NULL);
        pthread_join(self->check_thr, NULL);
    }
    if (self->js != NULL) {
        /* Every publish has a timeout: after this no PubAck handler runs. */
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = (int64_t)self->publish_timeout_ms + 1000;
        if (js_PublishAsyncComplete(self->js, &po) != NATS_OK)
            leak = true;
    }
    s_follow_unsubscribe(self);
    if (self->nc != NULL) {
        natsConnection_Close(self->nc);
        pthread_mutex_lock(&self->mu);
        S_WAIT_DONE(self, self->conn_closed && self->subs_alive == 0,
                    S_CLOSE_WAIT_MS);
        leak = leak || !self->conn_closed || self->subs_alive != 0;
        pthread_mutex_unlock(&self->mu);
    }
    jsCtx_Destroy(self->js);
    natsConnection_Destroy(self->nc);
    natsOptions_Destroy(self->nopts);
    if (leak) {
        /* nats.c may still call back with self: keep it (and say so in
         * the one place that can: stderr of a closing daemon). */
        fprintf(stderr, "backbone: nats.c did not finish its callbacks "
                        "within %d ms; leaving its state allocated\n",
                S_CLOSE_WAIT_MS);
        return;
    }
    /* Submits never handed to nats.c: queued, or waiting their turn. */
    while (self->outq != NULL && self->outq_n > 0) {
        natsMsg_Destroy(self->outq[self->outq_head]);
        self->outq_head = (self->outq_head + 1) % self->max_inflight;
        self->outq_n--;
    }
    for (size_t i = 0; self->subjects.e != NULL && i < self->subjects.cap;
         i++)
        if (self->subjects.e[i].used && self->subjects.e[i].parked != NULL)
            natsMsg_Destroy(self->subjects.e[i].parked);
    for (size_t i = 0; self->subjects.e != NULL && i < self->subjects.cap;
         i++)
        for (s_wait_t *w = self->subjects.e[i].used
                               ? self->subjects.e[i].head
                               : NULL;
             w != NULL;) {
            s_wait_t *next = w->next;
            natsMsg_Destroy(w->msg);
            free(w);
            w = next;
        }
    s_recs_free(self->raw_head);
    s_recs_free(self->rec_head);
    free(self->last_ok);
    free(self->cur);
    free(self->msgs.e);
    free(self->subjects.e);
    free(self->outq);
    free(self->done);
    if (self->efd >= 0)
        close(self->efd);
    pthread_cond_destroy(&self->cv_submit);
    pthread_cond_destroy(&self->cv_ctl);
    pthread_cond_destroy(&self->cv_check);
    pthread_cond_destroy(&self->cv_done);
    pthread_mutex_destroy(&self->mu);
    free(self);
}

int
pd_backbone_fd(const pd_backbone_t *self)
{
    return self->efd;
}

/* ============================================================ loop API */

int
pd_backbone_submit(pd_backbone_t *self, const pd_backbone_submit_t *in)
{
    if (in == NULL || in->signer == NULL || (in->data == NULL && in->len > 0))
        return -EINVAL;
    if (in->len > self->max_message_bytes || in->len > INT32_MAX)
        return -EMSGSIZE;
    pthread_mutex_lock(&self->mu);
    int rc = self->closing                           ? -ESHUTDOWN
             : self->diverged                        ? -ESTALE
             : self->inflight >= self->max_inflight ? -EAGAIN
                                                     : 0;
    if (rc == 0)
        self->inflight++;
    pthread_mutex_unlock(&self->mu);
    if (rc < 0)
        return rc;

    char subject[PD_BACKBONE_STREAM_MAX + 32], id[48], expect[24];
    natsMsg *m = NULL;
    natsStatus s = NATS_NO_MEMORY;
    if (pd_backbone_subject(subject, sizeof(subject), self->stream,
                            in->signer)
            == 0
        && pd_backbone_msg_id(id, sizeof(id), in->signer, in->signer_seq)
               == 0) {
        snprintf(expect, sizeof(expect), "%" PRIu64, in->expect_last);
        s = natsMsg_Create(&m, subject, NULL, in->data, (int)in->len);
    }
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, S_HDR_MSG_ID, id);
    /* "0" too: the subject must then hold no message (checked at apply
     * time by JetStream, unlike values above 0 in a cluster). */
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, S_HDR_EXPECT, expect);
    s_wait_t *w = s == NATS_OK ? calloc(1, sizeof(*w)) : NULL;
    pthread_mutex_lock(&self->mu);
    if (w == NULL) {
        self->inflight--;
        pthread_mutex_unlock(&self->mu);
        natsMsg_Destroy(m);
        return -ENOMEM;
    }
    uint64_t skey = s_subject_key_of(in->signer);
    s_ent_t *me = s_tab_add(&self->msgs, (uint64_t)(uintptr_t)m);
    me->val = in->token;
    me->aux = skey;
    self->n_submitted++;
    /* One submit per subject in nats.c at a time: JetStream 2.9 checks
     * the expected last seq of a clustered stream against what its leader
     * has applied, so a second one in flight would be refused. */
    s_ent_t *se = s_tab_find(&self->subjects, skey);
    if (se == NULL) {
        s_subjects_trim_locked(self);
        se = s_tab_add(&self->subjects, skey);
    }
    w->msg = m;
    w->expect = in->expect_last;
    if (se->tail != NULL)
        se->tail->next = w;
    else
        se->head = w;
    se->tail = w;
    if (se->aux == 0) {
        se->aux = 1;
        s_release_next_locked(self, se);
    }
    pthread_mutex_unlock(&self->mu);
    return 0;
}

/* The parked submit of signer's subject with token, or NULL. mu held. */
static s_ent_t *
s_parked_locked(pd_backbone_t *self, uint64_t token,
                const uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    s_ent_t *se = s_tab_find(&self->subjects, s_subject_key_of(signer));
    if (se == NULL || se->parked == NULL)
        return NULL;
    s_ent_t *me = s_tab_find(&self->msgs, (uint64_t)(uintptr_t)se->parked);
    return me != NULL && me->val == token ? se : NULL;
}

int
pd_backbone_resubmit(pd_backbone_t *self, uint64_t token,
                     const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                     uint64_t expect_last)
{
    pthread_mutex_lock(&self->mu);
    int rc = self->closing ? -ESHUTDOWN : self->diverged ? -ESTALE : 0;
    s_ent_t *se = rc == 0 ? s_parked_locked(self, token, signer) : NULL;
    if (rc == 0 && se == NULL)
        rc = -ENOENT;
    if (rc == 0) {
        natsMsg *m = se->parked;
        se->parked = NULL;
        s_set_expect(m, expect_last > se->val ? expect_last : se->val);
        self->n_submitted++;
        s_outq_push_locked(self, m);
    }
    pthread_mutex_unlock(&self->mu);
    return rc;
}

int
pd_backbone_abandon(pd_backbone_t *self, uint64_t token,
                    const uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    pthread_mutex_lock(&self->mu);
    s_ent_t *se = s_parked_locked(self, token, signer);
    natsMsg *m = NULL;
    if (se != NULL) {
        m = se->parked;
        se->parked = NULL;
        s_tab_del(&self->msgs,
                  s_tab_find(&self->msgs, (uint64_t)(uintptr_t)m));
        self->inflight--;
        s_release_next_locked(self, se);
    }
    pthread_mutex_unlock(&self->mu);
    natsMsg_Destroy(m);
    return m != NULL ? 0 : -ENOENT;
}

int
pd_backbone_follow(pd_backbone_t *self, uint64_t from)
{
    if (from == 0)
        return -EINVAL;
    pthread_mutex_lock(&self->mu);
    if (self->following) {
        pthread_mutex_unlock(&self->mu);
        return -EALREADY;
    }

    self->following = true;
    self->follow_next = from;
    self->handed = from - 1;
    self->confirmed = from - 1;
    self->catching = true;
    pthread_cond_signal(&self->cv_ctl);
    s_state_locked(self);
    pthread_mutex_unlock(&self->mu);
    return 0;
}

int
pd_backbone_next(pd_backbone_t *self, pd_backbone_event_t *ev)
{
    free(self->cur);
    self->cur = NULL;
    memset(ev, 0, sizeof(*ev));
    pthread_mutex_lock(&self->mu);
    if (self->state_dirty) {
        self->state_dirty = false;
        ev->kind = PD_BACKBONE_EV_STATE;
        ev->health = self->told_health = s_health_locked(self);
        ev->catching_up = self->told_catching =
            self->following && self->catching;
        ev->rereads = self->n_rereads;
        snprintf(ev->detail, sizeof(ev->detail), "%s", self->detail);
    } else if (self->done_n > 0) {
        const s_done_t *d = &self->done[self->done_head];
        ev->kind = PD_BACKBONE_EV_SUBMITTED;
        ev->token = d->token;
        ev->result = d->result;
        ev->duplicate = d->duplicate;
        ev->seq = d->seq;
        memcpy(ev->detail, d->detail, sizeof(ev->detail));
        self->done_head = (self->done_head + 1) % self->max_inflight;
        self->done_n--;
        if (!d->parked)
            self->inflight--;
    } else if (self->rec_head != NULL) {
        s_rec_t *r = self->rec_head;
        self->rec_head = r->next;
        if (self->rec_head == NULL)
            self->rec_tail = NULL;
        self->rec_n--;
        self->rec_bytes -= r->len;
        self->handed = r->seq;
        self->n_records++;
        ev->kind = PD_BACKBONE_EV_RECORD;
        ev->seq = r->seq;
        ev->time_ms = r->time_ms;
        ev->data = r->data;
        ev->len = r->len;
        ev->pending = r->pending;
        memcpy(ev->key_id, r->key_id, sizeof(ev->key_id));
        self->cur = r;
        if (self->paused && self->rec_n <= self->follow_max_records / 2
            && self->rec_bytes <= self->follow_max_bytes / 2) {
            self->paused = false; /* the control thread subscribes again */
            pthread_cond_signal(&self->cv_ctl);
        }
        s_state_locked(self);
    } else {
        /* Nothing left: reset the eventfd until the next event. */
        self->signalled = false;
        uint64_t v;
        ssize_t r = read(self->efd, &v, sizeof(v));
        (void)r;
        pthread_mutex_unlock(&self->mu);
        return 0;
    }
    pthread_mutex_unlock(&self->mu);
    return 1;
}

void
pd_backbone_status(pd_backbone_t *self, pd_backbone_status_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&self->mu);
    out->health = s_health_locked(self);
    out->following = self->following;
    out->catching_up = self->following && self->catching;
    out->followed = self->handed;
    out->stream_last = self->stream_last;
    out->inflight = self->inflight;
    snprintf(out->server, sizeof(out->server), "%s", self->server);
    snprintf(out->leader, sizeof(out->leader), "%s", self->leader);
    snprintf(out->detail, sizeof(out->detail), "%s", self->detail);
    out->submitted = self->n_submitted;
    out->stored = self->n_stored;
    out->duplicates = self->n_duplicates;
    out->conflicts = self->n_conflicts;
    out->unavailable = self->n_unavailable;
    out->refused = self->n_refused;
    out->records = self->n_records;
    out->subscribes = self->n_subscribes;
    out->pauses = self->n_pauses;
    out->reconnects = self->n_reconnects;
    out->async_errors = self->n_async_errors;
    out->probes = self->n_probes;
    out->probes_failed = self->n_probes_failed;
    out->gaps = self->n_gaps;
    out->checked = self->n_checked;
    out->rereads = self->n_rereads;
    out->stream_first = self->stream_first;
    out->created = self->created;
    pthread_mutex_unlock(&self->mu);
}
