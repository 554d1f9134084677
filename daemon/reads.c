/*
 * reads.c - the read scheduler (reads.h).
 *
 * Connections are accounts in a hash table keyed by the BLAKE2b hash of
 * their identity (clients may choose identities; a match is checked
 * against the identity itself). The connections that have
 * reads queued form a ring, and a cursor walks it: each turn goes to the
 * next connection on the ring that may be served.
 *
 * Reply buffers carry a header in front of the bytes libzmq sends: the
 * account and what was charged to it. libzmq frees the buffer from its
 * I/O thread; the free takes the charge off the connection's and the
 * total counters, and takes the message off the connection's count last,
 * so that the loop may free an account as soon as it sees no message of
 * it left (the free touches the account no more after that).
 */
#include "reads.h"

#include "clock.h"
#include "codec.h"
#include "hash.h"
#include "heap.h"
#include "log.h"

#include <errno.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY 32               /* BLAKE2b-256 of the identity */
#define S_ID_MAX 255           /* ROUTER identities are 1..255 bytes */
#define S_TIDY_MS 100          /* accounts are freed at most this often */
/* After the replies held reached this much, give free memory back to the
 * system once they are down to S_TRIM_LOW. */
#define S_TRIM_HIGH (4 * 1024 * 1024)
#define S_TRIM_LOW (256 * 1024)

struct pd_reads_conn {
    uint8_t id[S_ID_MAX];          /* the ROUTER identity */
    size_t id_len;
    pd_read_t *head, *tail;        /* queued reads, oldest first */
    uint32_t n_reads;
    size_t req_bytes;              /* bytes of the reads queued */
    pd_reads_conn_t *prev, *next;  /* the ring, while it has reads */
    /* Replies libzmq holds for it, by pd_reads_kind_t. */
    atomic_size_t bytes[2];
    atomic_uint msgs[2];
};

/* The counters (stats.h). */
typedef struct {
    uint64_t deferred;
    uint64_t slices_full;
    uint64_t held;
    uint64_t refused;
    uint64_t dropped;
    atomic_uint_fast64_t replies_dropped;
} s_counters_t;

struct pd_reads {
    pd_reads_limits_t lim;
    pd_hash_t *conns;              /* key -> pd_reads_conn_t * */
    pd_reads_conn_t *cursor;       /* the next turn, on the ring; NULL when
                                      no connection has reads */
    size_t ring;                   /* connections on the ring */
    uint64_t queued;               /* reads queued, every connection */
    uint64_t slice;                /* slices begun */
    const pd_read_t *snapshot;     /* the snapshot under way, or NULL */
    const pd_read_t *serving;      /* the read being answered, or NULL */
    atomic_size_t total[2];        /* reply bytes held, by kind */
    size_t trim_peak;              /* most held since the last trim */
    int64_t tidied_ms;             /* when accounts were last freed */
    s_counters_t counters;
};

/* The header in front of a reply buffer (the zmq free function's hint). */
typedef struct {
    pd_reads_t *reads;
    pd_reads_conn_t *conn;
    size_t charge;                 /* bytes counted */
    int kind;
} s_reply_t;

/* Reply bytes start here after the header, aligned for anything. */
#define S_REPLY_HDR                                                            \
    ((sizeof(s_reply_t) + alignof(max_align_t) - 1)                           \
     / alignof(max_align_t) * alignof(max_align_t))

static void s_stats_register(pd_reads_t *self, pd_stats_t *st);

/* ================================================================ setup */

pd_reads_t *
pd_reads_new(const pd_reads_limits_t *lim, pd_stats_t *stats, int *err)
{
    pd_reads_t *self = calloc(1, sizeof(*self));
    if (self == NULL || (self->conns = pd_hash_new(S_KEY)) == NULL) {
        free(self);
        *err = -ENOMEM;
        return NULL;
    }
    self->lim = *lim;
    if (stats != NULL)
        s_stats_register(self, stats);
    *err = 0;
    return self;
}

/* Free a read (and its job). */
static void
s_read_free(pd_reads_t *self, pd_read_t *rd)
{
    if (self->snapshot == rd)
        self->snapshot = NULL;
    if (self->serving == rd)
        self->serving = NULL;
    pd_query_job_end(&rd->job);
    free(rd);
}

/* Free every read c has queued, unanswered. Returns how many. */
static uint32_t
s_conn_clear(pd_reads_t *self, pd_reads_conn_t *c)
{
    uint32_t n = c->n_reads;
    while (c->head != NULL) {
        pd_read_t *rd = c->head;
        c->head = rd->next;
        s_read_free(self, rd);
    }
    c->tail = NULL;
    c->n_reads = 0;
    c->req_bytes = 0;
    self->queued -= n;
    return n;
}

static void
s_free_conn(const void *key, uint64_t val, void *ctx)
{
    (void)key;
    pd_reads_t *self = ctx;
    pd_reads_conn_t *c = (pd_reads_conn_t *)(uintptr_t)val;
    s_conn_clear(self, c);
    free(c);
}

void
pd_reads_destroy(pd_reads_t **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    pd_reads_t *self = *rp;
    pd_hash_foreach(self->conns, s_free_conn, self);
    pd_hash_destroy(&self->conns);
    free(self);
    *rp = NULL;
}

/* =========================================================== connections */

pd_reads_conn_t *
pd_reads_conn(pd_reads_t *self, const void *id, size_t len)
{
    if (len == 0 || len > S_ID_MAX)
        return NULL;
    uint8_t key[S_KEY];
    crypto_generichash(key, sizeof(key), id, len, NULL, 0);
    uint64_t val;
    if (pd_hash_get(self->conns, key, &val)) {
        pd_reads_conn_t *c = (pd_reads_conn_t *)(uintptr_t)val;
        /* Never someone else's account (nor its replies' address). */
        return c->id_len == len && memcmp(c->id, id, len) == 0 ? c : NULL;
    }
    pd_reads_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    memcpy(c->id, id, len);
    c->id_len = len;
    if (pd_hash_put(self->conns, key, (uint64_t)(uintptr_t)c) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

const uint8_t *
pd_reads_conn_id(const pd_reads_conn_t *c, size_t *len)
{
    *len = c->id_len;
    return c->id;
}

/* Put c on the ring, behind the cursor (it has its turn last). */
static void
s_ring_add(pd_reads_t *self, pd_reads_conn_t *c)
{
    if (self->cursor == NULL) {
        c->prev = c->next = c;
        self->cursor = c;
    } else {
        pd_reads_conn_t *last = self->cursor->prev;
        c->prev = last;
        c->next = self->cursor;
        last->next = c;
        self->cursor->prev = c;
    }
    self->ring++;
}

/* Take c off the ring; the cursor moves on if it stood on c. */
static void
s_ring_remove(pd_reads_t *self, pd_reads_conn_t *c)
{
    if (c->next == c) {
        self->cursor = NULL;
    } else {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        if (self->cursor == c)
            self->cursor = c->next;
    }
    c->prev = c->next = NULL;
    self->ring--;
}

/* ================================================================ queue */

int
pd_reads_push(pd_reads_t *self, pd_reads_conn_t *c, int op, const void *req,
              size_t len, const char *key)
{
    size_t size = sizeof(pd_read_t) + len;
    if (c->n_reads >= PD_READS_CONN_REQUESTS
        || (c->n_reads > 0
            && c->req_bytes + size > PD_READS_CONN_REQUEST_BYTES)) {
        self->counters.refused++;
        return -ENOBUFS;
    }
    if (key != NULL && strlen(key) >= PD_READS_KEY_MAX)
        return -ENAMETOOLONG;
    pd_read_t *rd = calloc(1, size);
    if (rd == NULL)
        return -ENOMEM;
    rd->op = op;
    rd->slice = self->slice;
    rd->has_key = key != NULL;
    if (key != NULL)
        memcpy(rd->key, key, strlen(key) + 1);
    rd->len = len;
    memcpy(rd->bytes, req, len);
    if (c->tail != NULL)
        c->tail->next = rd;
    else
        c->head = rd;
    c->tail = rd;
    c->req_bytes += size;
    self->queued++;
    if (c->n_reads++ == 0)
        s_ring_add(self, c);
    return 0;
}

/*
 * Whether c's oldest read may be answered now: its read replies are
 * within its share and the total. Stats and ping are small: they go out
 * as other replies, whatever the reads hold. Replays, snapshots and the
 * transparency log's checkpoints and proofs (up to PARLEY__INCLUSION_MAX
 * proofs in one reply) are read replies.
 */
static bool
s_room(const pd_reads_t *self, const pd_reads_conn_t *c)
{
    if (c->head->op == PARLEY__OP_STATS || c->head->op == PARLEY__OP_PING)
        return true;
    return atomic_load(&c->msgs[PD_READS_REPLY_READ]) < PD_READS_CONN_MESSAGES
           && atomic_load(&c->bytes[PD_READS_REPLY_READ])
                  < self->lim.conn_reply_bytes
           && atomic_load(&self->total[PD_READS_REPLY_READ])
                  < self->lim.total_reply_bytes;
}

/* Whether c's oldest read waits for the snapshot under way. */
static bool
s_snapshot_waits(const pd_reads_t *self, const pd_reads_conn_t *c)
{
    const pd_read_t *rd = c->head;
    return rd->op == PARLEY__OP_SNAPSHOT && self->snapshot != NULL
           && self->snapshot != rd;
}

void
pd_reads_slice_begin(pd_reads_t *self)
{
    self->slice++;
}

pd_read_t *
pd_reads_next(pd_reads_t *self, pd_reads_conn_t **cp)
{
    pd_reads_conn_t *c = self->cursor;
    for (size_t i = 0; i < self->ring; i++, c = c->next) {
        if (s_snapshot_waits(self, c))
            continue;
        if (!s_room(self, c)) {
            if (!c->head->held) {
                c->head->held = true;
                self->counters.held++;
            }
            continue;
        }
        self->cursor = c;
        self->serving = c->head;
        *cp = c;
        return c->head;
    }
    return NULL;
}

/* The turn after c's goes to the connection after it. */
static void
s_turn_done(pd_reads_t *self, pd_reads_conn_t *c)
{
    self->serving = NULL;
    if (c->n_reads == 0)
        s_ring_remove(self, c); /* the cursor moves on by itself */
    else if (self->cursor == c)
        self->cursor = c->next;
}

void
pd_reads_finish(pd_reads_t *self, pd_reads_conn_t *c)
{
    pd_read_t *rd = c->head;
    if (rd == NULL)
        return;
    /* Queued before the slice before this one: it waited at least one
     * whole slice. */
    if (rd->slice + 1 < self->slice)
        self->counters.deferred++;
    c->head = rd->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->n_reads--;
    c->req_bytes -= sizeof(pd_read_t) + rd->len;
    self->queued--;
    s_read_free(self, rd);
    s_turn_done(self, c);
}

void
pd_reads_yield(pd_reads_t *self, pd_reads_conn_t *c)
{
    pd_read_t *rd = c->head;
    if (rd != NULL && rd->op == PARLEY__OP_SNAPSHOT && rd->job.snap != NULL)
        self->snapshot = rd;
    s_turn_done(self, c);
}

void
pd_reads_drop(pd_reads_t *self, pd_reads_conn_t *c)
{
    if (c->n_reads == 0)
        return;
    s_ring_remove(self, c);
    self->counters.dropped += s_conn_clear(self, c);
}

void
pd_reads_drop_all(pd_reads_t *self)
{
    while (self->cursor != NULL)
        pd_reads_drop(self, self->cursor);
}

bool
pd_reads_ready(const pd_reads_t *self)
{
    const pd_reads_conn_t *c = self->cursor;
    for (size_t i = 0; i < self->ring; i++, c = c->next)
        if (!s_snapshot_waits(self, c) && s_room(self, c))
            return true;
    return false;
}

bool
pd_reads_queued(const pd_reads_t *self)
{
    return self->queued > 0;
}

/* ================================================================ tidy */

/* Whether an account may go: nothing queued, no reply of it held. */
static bool
s_idle(uint64_t val, void *ctx)
{
    (void)ctx;
    pd_reads_conn_t *c = (pd_reads_conn_t *)(uintptr_t)val;
    if (c->n_reads > 0 || atomic_load(&c->msgs[0]) > 0
        || atomic_load(&c->msgs[1]) > 0)
        return false;
    free(c);
    return true;
}

/*
 * After a burst of replies, once most of them are gone, give the free
 * memory back: libzmq frees the buffers in its own thread, and glibc
 * keeps what it freed resident unless asked (large buffers are mapped
 * and unmapped by themselves: see heap.h).
 */
static void
s_trim(pd_reads_t *self)
{
    size_t held = atomic_load(&self->total[0]) + atomic_load(&self->total[1]);
    if (held > self->trim_peak)
        self->trim_peak = held;
    if (self->trim_peak < S_TRIM_HIGH || held > S_TRIM_LOW)
        return;
    pd_heap_give_back();
    self->trim_peak = held;
}

void
pd_reads_slice_end(pd_reads_t *self, bool spent)
{
    if (spent && pd_reads_ready(self))
        self->counters.slices_full++;
    int64_t now = parley__mono_ms();
    if (now - self->tidied_ms >= S_TIDY_MS) {
        self->tidied_ms = now;
        pd_hash_remove_if(self->conns, s_idle, NULL);
        s_trim(self);
    }
}

/* ============================================================== replies */

bool
pd_reads_may_send(const pd_reads_conn_t *c)
{
    return atomic_load(&c->bytes[PD_READS_REPLY_OTHER]) < PD_READS_OTHER_BYTES;
}

void
pd_reads_reply_dropped(pd_reads_t *self)
{
    atomic_fetch_add(&self->counters.replies_dropped, 1);
}

void *
pd_reads_reply_new(pd_reads_t *self, pd_reads_conn_t *c, pd_reads_kind_t kind,
                   const void *data, size_t len, size_t id_len, void **hint)
{
    uint8_t *buf = malloc(S_REPLY_HDR + len);
    if (buf == NULL)
        return NULL;
    s_reply_t *h = (s_reply_t *)(void *)buf;
    *h = (s_reply_t){ .reads = self,
                      .conn = c,
                      .charge = len + id_len + PD_READS_MSG_OVERHEAD,
                      .kind = (int)kind };
    memcpy(buf + S_REPLY_HDR, data, len);
    atomic_fetch_add(&c->msgs[kind], 1);
    atomic_fetch_add(&c->bytes[kind], h->charge);
    atomic_fetch_add(&self->total[kind], h->charge);
    *hint = h;
    return buf + S_REPLY_HDR;
}

void
pd_reads_reply_free(void *data, void *hint)
{
    s_reply_t *h = hint;
    pd_reads_conn_t *c = h->conn;
    (void)data;
    atomic_fetch_sub(&h->reads->total[h->kind], h->charge);
    atomic_fetch_sub(&c->bytes[h->kind], h->charge);
    /* Last: once no message of c is left, the loop may free c. */
    atomic_fetch_sub(&c->msgs[h->kind], 1);
    free(h);
}

/* ================================================================= stats */

/* Reads waiting: not the one being answered (a stats request itself). */
static uint64_t
s_queued(const void *ctx)
{
    const pd_reads_t *self = ctx;
    return self->queued - (self->serving != NULL);
}

static uint64_t
s_reply_bytes(const void *ctx)
{
    const pd_reads_t *self = ctx;
    return atomic_load(&self->total[0]) + atomic_load(&self->total[1]);
}

static uint64_t
s_replies_dropped(const void *ctx)
{
    const pd_reads_t *self = ctx;
    return atomic_load(&self->counters.replies_dropped);
}

static void
s_stats_register(pd_reads_t *self, pd_stats_t *st)
{
    const s_counters_t *c = &self->counters;
    pd_stats_getter(st, PD_STAT_READS_QUEUED, s_queued, self);
    pd_stats_counter(st, PD_STAT_READS_DEFERRED, &c->deferred);
    pd_stats_counter(st, PD_STAT_READ_SLICES_FULL, &c->slices_full);
    pd_stats_counter(st, PD_STAT_READS_HELD, &c->held);
    pd_stats_counter(st, PD_STAT_READS_REFUSED, &c->refused);
    pd_stats_counter(st, PD_STAT_READS_DROPPED, &c->dropped);
    pd_stats_getter(st, PD_STAT_REPLY_BYTES, s_reply_bytes, self);
    pd_stats_getter(st, PD_STAT_REPLIES_DROPPED, s_replies_dropped, self);
}
