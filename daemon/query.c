/*
 * query.c - replay and snapshot (query.h).
 *
 * Memory: a replay page is built in buffers allocated once in
 * pd_query_new() (the largest page fits); a page that spans steps holds
 * no delivery yet, so only its place is kept in the job. A snapshot,
 * rarer, grows a heap buffer in its job (at most PD_QUERY_SNAPSHOT_BYTES
 * of deliveries) and its reply lives until the next snapshot.
 */
#include "query.h"

#include "clock.h"
#include "entries.h"
#include "facts.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DECODE_SLACK (64 * 1024)  /* arena room beyond the record itself */
#define S_DELIVERY_OVERHEAD 64      /* Delivery fields around an envelope */
/* Records read between two looks at the clock. */
#define S_CLOCK_EVERY 16

struct pd_query {
    pd_storage_t *storage;           /* borrowed */
    const pd_zap_t *zap;             /* borrowed, may be NULL */
    uint8_t *record;                 /* one record, max_message_bytes */
    size_t record_cap;
    uint8_t *scratch;                /* arena for decoding a record */
    size_t scratch_cap;
    parley_update_t update;          /* the record's decoded update */
    uint8_t *items;                  /* Delivery bytes of a replay page */
    size_t items_cap;
    parley__bytes_t *item_list;      /* PD_QUERY_REPLAY_MAX entries */
    uint8_t *out;                    /* an encoded replay reply */
    size_t out_cap;
    uint8_t *snap_out;               /* the last snapshot reply (heap) */
    /* pd_query_view_head() of each access class */
    struct {
        uint64_t generation;         /* pd_zap_generation() it is of */
        uint64_t head;               /* the class's view of the head */
        uint64_t scanned;            /* records up to here looked at */
        bool set;
    } views[PD_CLIENTS_CLASSES_MAX];
};

pd_query_t *
pd_query_new(pd_storage_t *storage, const pd_zap_t *zap,
             size_t max_message_bytes, int *err)
{
    pd_query_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    size_t max = max_message_bytes;
    self->storage = storage;
    self->zap = zap;
    self->record_cap = max;
    self->scratch_cap = max + S_DECODE_SLACK;
    self->items_cap = PD_QUERY_REPLY_BUDGET + max + S_DELIVERY_OVERHEAD;
    self->out_cap = self->items_cap
                    + PD_QUERY_REPLAY_MAX * parley__reply_item_overhead(max)
                    + 256;
    self->record = malloc(self->record_cap);
    self->scratch = malloc(self->scratch_cap);
    self->items = malloc(self->items_cap);
    self->item_list = calloc(PD_QUERY_REPLAY_MAX, sizeof(parley__bytes_t));
    self->out = malloc(self->out_cap);
    if (self->record == NULL || self->scratch == NULL || self->items == NULL
        || self->item_list == NULL || self->out == NULL) {
        pd_query_destroy(&self);
        *err = -ENOMEM;
        return NULL;
    }
    *err = 0;
    return self;
}

void
pd_query_destroy(pd_query_t **qp)
{
    if (qp == NULL || *qp == NULL)
        return;
    pd_query_t *self = *qp;
    free(self->record);
    free(self->scratch);
    free(self->items);
    free(self->item_list);
    free(self->out);
    free(self->snap_out);
    free(self);
    *qp = NULL;
}

/*
 * Read seq and decode its update into self->update. Returns 0, -ENOENT
 * (not held), PARLEY_EMALFORMED/EINVALID (does not decode) or another
 * negative error. *len receives the record's size.
 */
static int
s_read_record(pd_query_t *self, uint64_t seq, int64_t *received_at,
              size_t *len)
{
    int rc = pd_storage_read(self->storage, seq, received_at, self->record,
                             self->record_cap, len);
    if (rc < 0)
        return rc;
    parley__arena_t arena;
    parley__envelope_t env;
    parley__arena_init(&arena, self->scratch, self->scratch_cap);
    rc = parley__envelope_decode(self->record, *len, &env, &arena);
    if (rc == 0)
        rc = parley__update_decode(env.body.data, env.body.len,
                                   &self->update, &arena);
    parley__arena_reset(&arena);
    return rc;
}

/* Who asks, and what they asked for. */
typedef struct {
    const parley__request_t *req; /* its filter, and any_of (OR) */
    const char *key;    /* CURVE client key (X-Key), NULL without CURVE */
    bool reads_all;     /* key may read every topic */
    uint64_t head;      /* its view of the head (pd_query_view_head()) */
} s_reader_t;

static s_reader_t
s_reader(pd_query_t *self, const parley__request_t *req, const char *key)
{
    int k = self->zap != NULL ? pd_zap_class_of(self->zap, key) : 0;
    return (s_reader_t){ .req = req,
                         .key = key,
                         .reads_all = self->zap == NULL
                                      || pd_zap_reads_all(self->zap, key),
                         .head = pd_query_view_head(self, k) };
}

/* May access class k read the record of seq (its topics)? A record that
 * cannot be read counts as no. */
static bool
s_class_reads_seq(pd_query_t *self, int k, uint64_t seq)
{
    int64_t received_at;
    size_t len;
    if (pd_storage_read(self->storage, seq, &received_at, self->record,
                        self->record_cap, &len)
        < 0)
        return false;
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    parley__facts_t f;
    parley__envelope_t e;
    parley__arena_t arena;
    parley__arena_init(&arena, self->scratch, self->scratch_cap);
    bool yes = false;
    if (parley__facts_decode(self->record, len, &f, &e, &self->update,
                             &arena)
        == 0) {
        size_t n = parley__facts_topics(&f, topics);
        for (size_t i = 0; i < n && !yes; i++)
            yes = pd_zap_class_reads(self->zap, k, topics[i]);
    }
    parley__arena_reset(&arena);
    return yes;
}

uint64_t
pd_query_view_head(pd_query_t *self, int k)
{
    uint64_t head = pd_storage_head(self->storage);
    if (k < 0)
        return 0;
    if (self->zap == NULL || pd_zap_class_reads_all(self->zap, k)
        || k >= PD_CLIENTS_CLASSES_MAX)
        return head;
    uint64_t gen = pd_zap_generation(self->zap);
    if (!self->views[k].set || self->views[k].generation != gen) {
        /* A class new to this daemon: what was logged before is not
         * looked at; the head now bounds every seq it may read. */
        self->views[k].set = true;
        self->views[k].generation = gen;
        self->views[k].head = self->views[k].scanned = head;
        return head;
    }
    uint64_t first = pd_storage_first(self->storage);
    for (uint64_t s = head; s > self->views[k].scanned && s >= first && s > 0;
         s--) {
        if (s_class_reads_seq(self, k, s)) {
            self->views[k].head = s;
            break;
        }
    }
    if (head > self->views[k].scanned)
        self->views[k].scanned = head;
    return self->views[k].head;
}

/* Does u match the reader's filters (filter, and one of any_of), and may
 * the reader see it? */
static bool
s_wanted(const pd_query_t *self, const s_reader_t *rd,
         const parley_update_t *u)
{
    if (!parley__request_match(rd->req, u))
        return false;
    if (rd->reads_all)
        return true;
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    size_t n = parley_topics(u, topics, PARLEY_TOPICS_MAX);
    return pd_zap_may_read(self->zap, rd->key,
                           (const char(*)[PARLEY_TOPIC_MAX])topics, n);
}

/* Encode r into buf; 0 with a->reply set, or PARLEY_EUNAVAILABLE. */
static int
s_encode(const parley__reply_t *r, uint8_t *buf, size_t cap,
         pd_query_answer_t *a)
{
    int rc = parley__reply_encode(r, buf, cap, &a->len);
    if (rc < 0) {
        pd_log(PD_LOG_ERROR, "query: reply does not encode: %s",
               parley_error_name(rc));
        snprintf(a->detail, sizeof(a->detail), "(reply does not encode)");
        return PARLEY_EUNAVAILABLE;
    }
    a->reply = buf;
    return 0;
}

/*
 * Take one record from the budget. Returns false when it is spent: no
 * records left, or past the deadline (looked at every S_CLOCK_EVERY
 * records, and before the first).
 */
static bool
s_take(pd_query_budget_t *b, uint64_t taken)
{
    if (b->records == 0)
        return false;
    if (b->deadline_us != 0 && taken % S_CLOCK_EVERY == 0
        && parley__mono_us() >= b->deadline_us) {
        b->records = 0; /* the slice is over for every later step too */
        return false;
    }
    b->records--;
    return true;
}

/* A step of a replay or a snapshot. */
typedef int (*s_step_fn)(pd_query_t *, const parley__request_t *,
                         const char *, pd_query_job_t *, pd_query_budget_t *,
                         pd_query_answer_t *);

/* A query answered in one step, without a budget. */
static int
s_once(pd_query_t *self, s_step_fn step, const parley__request_t *req,
       const char *key, pd_query_answer_t *a)
{
    pd_query_job_t job = { 0 };
    pd_query_budget_t b = { .records = UINT64_MAX, .deadline_us = 0 };
    int rc = step(self, req, key, &job, &b, a);
    pd_query_job_end(&job);
    return rc;
}

/* ================================================================ replay */

/* One replay page being filled. */
typedef struct {
    size_t n;        /* deliveries */
    size_t used;     /* bytes of self->items */
    uint64_t seq;    /* the next seq to look at */
} s_page_t;

/*
 * Add the deliveries of seqs pg->seq..to that rd wants to the page, until
 * it holds limit of them, is full, the job has looked at
 * PD_QUERY_SCAN_MAX records, or the budget is spent (*spent then).
 * Returns 0 or PARLEY_EUNAVAILABLE (a read error, logged).
 */
static int
s_fill_page(pd_query_t *self, const s_reader_t *rd, uint64_t to,
            uint32_t limit, pd_query_job_t *job, pd_query_budget_t *b,
            s_page_t *pg, bool *spent)
{
    *spent = false;
    for (uint64_t taken = 0; pg->seq <= to && pg->n < limit
                             && job->looked < PD_QUERY_SCAN_MAX;
         pg->seq++, job->looked++) {
        if (!s_take(b, taken++)) {
            *spent = true;
            break;
        }
        int64_t received_at;
        size_t len, dlen;
        int rc = s_read_record(self, pg->seq, &received_at, &len);
        if (rc == PARLEY_EMALFORMED || rc == PARLEY_EINVALID)
            continue; /* pd_index_scan() logged it at start */
        if (rc < 0) {
            pd_log_limited(PD_LOG_KEY_QUERY, PD_LOG_ERROR,
                           "replay: reading seq %llu: %s",
                           (unsigned long long)pg->seq, parley_error_name(rc));
            return PARLEY_EUNAVAILABLE;
        }
        if (!s_wanted(self, rd, &self->update))
            continue;
        if (pg->n > 0
            && pg->used + len + S_DELIVERY_OVERHEAD > PD_QUERY_REPLY_BUDGET)
            break; /* this seq starts the next page */
        if (parley__delivery_encode(pg->seq, received_at, self->record, len,
                                    self->items + pg->used,
                                    self->items_cap - pg->used, &dlen) < 0)
            break;
        self->item_list[pg->n++] =
            (parley__bytes_t){ self->items + pg->used, dlen };
        pg->used += dlen;
    }
    return 0;
}

int
pd_query_replay_step(pd_query_t *self, const parley__request_t *req,
                     const char *key, pd_query_job_t *job,
                     pd_query_budget_t *b, pd_query_answer_t *a)
{
    memset(a, 0, sizeof(*a));
    s_reader_t rd = s_reader(self, req, key);
    uint64_t first = pd_storage_first(self->storage);
    uint64_t head = rd.head;
    /* Where the page starts, or where an earlier step of it stopped:
     * retention may have passed it since. */
    uint64_t from = job->seq > 0 ? job->seq
                    : req->from_seq > 0 ? req->from_seq
                                        : 1;
    if ((first > 0 && from < first)
        || (first == 0 && head > 0 && from <= head)) {
        a->first_seq = first > 0 ? first : head + 1;
        return PARLEY_ETRUNCATED;
    }
    uint64_t to = req->to_seq == 0 || req->to_seq > head ? head : req->to_seq;
    uint32_t limit = req->limit == 0 || req->limit > PD_QUERY_REPLAY_MAX
                         ? PD_QUERY_REPLAY_MAX
                         : req->limit;
    s_page_t pg = { .seq = from };
    bool spent;
    int rc = s_fill_page(self, &rd, to, limit, job, b, &pg, &spent);
    if (rc < 0)
        return rc;
    if (spent && pg.n == 0) {
        job->seq = pg.seq; /* nothing to send yet: go on in a later step */
        return PD_QUERY_MORE;
    }
    parley__reply_t r = { .request_id = req->request_id,
                          .type = PARLEY__REPLY_REPLAY,
                          .deliveries = self->item_list,
                          .n_deliveries = pg.n,
                          .next_seq = pg.seq,
                          .head_seq = head,
                          .done = pg.seq > to };
    return s_encode(&r, self->out, self->out_cap, a);
}

/* ============================================================== snapshot */

/* A growing buffer of Delivery bytes for a snapshot (not the hot path). */
typedef struct {
    uint8_t *buf;
    size_t used, cap;
    size_t *offs;      /* start of each delivery (PD_QUERY_SNAPSHOT_MAX) */
    size_t n;
} s_snap_t;


/* Where a snapshot stands between its steps. */
struct pd_query_snap {
    s_snap_t got;          /* the deliveries collected */
    pd_entry_t *entries;   /* the state's entries the request asks for,
                              by seq; those kept first, then the rest */
    size_t n_entries;      /* entries asked for */
    size_t next;           /* the first entry of the next seq to read */
    size_t kept;           /* entries kept: their update was read, is not
                              expired and may be read by the client */
    pd_entry_t *claims;    /* older clients: see s_claims_add() */
    size_t n_claims, claims_cap;
    uint64_t head;         /* the snapshot's seq */
    int64_t now_ms;        /* expiry is measured at the start */
};

/*
 * Add one delivery. Returns 0, PARLEY_EUNAVAILABLE (over
 * PD_QUERY_SNAPSHOT_MAX or PD_QUERY_SNAPSHOT_BYTES: detail says which)
 * or another negative error.
 */
static int
s_snap_add(s_snap_t *s, uint64_t seq, int64_t received_at, const void *env,
           size_t len, char *detail, size_t detail_cap)
{
    size_t need = len + S_DELIVERY_OVERHEAD, dlen;
    if (s->n == PD_QUERY_SNAPSHOT_MAX) {
        snprintf(detail, detail_cap,
                 "the state asked for holds more than %d current updates, "
                 "over what one answer carries: ask for less with filters "
                 "(negotiation, party, phase)",
                 PD_QUERY_SNAPSHOT_MAX);
        return PARLEY_EUNAVAILABLE;
    }
    if (s->used + need > PD_QUERY_SNAPSHOT_BYTES + S_DELIVERY_OVERHEAD) {
        snprintf(detail, detail_cap, "(snapshot holds over %d bytes)",
                 PD_QUERY_SNAPSHOT_BYTES);
        return PARLEY_EUNAVAILABLE;
    }
    if (s->offs == NULL
        && (s->offs = malloc(PD_QUERY_SNAPSHOT_MAX * sizeof(size_t))) == NULL)
        return -ENOMEM;
    if (s->cap - s->used < need) {
        size_t cap = s->cap * 2 > s->used + need ? s->cap * 2 : s->used + need;
        uint8_t *b = realloc(s->buf, cap);
        if (b == NULL)
            return -ENOMEM;
        s->buf = b;
        s->cap = cap;
    }
    int rc = parley__delivery_encode(seq, received_at, env, len,
                                     s->buf + s->used, s->cap - s->used,
                                     &dlen);
    if (rc < 0)
        return rc;
    if (s->used + dlen > PD_QUERY_SNAPSHOT_BYTES) {
        snprintf(detail, detail_cap, "(snapshot holds over %d bytes)",
                 PD_QUERY_SNAPSHOT_BYTES);
        return PARLEY_EUNAVAILABLE;
    }
    s->offs[s->n++] = s->used;
    s->used += dlen;
    return 0;
}

/* pd_entry_want_fn: does the entry match the request's filters? */
static bool
s_entry_wanted(const pd_entry_t *e, void *ctx)
{
    return parley__request_match_entry(ctx, e->negotiation, e->party,
                                       e->phase);
}

/* Order entries by seq, then key. */
static int
s_cmp_seq(const void *a, const void *b)
{
    const pd_entry_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return parley__state_key_cmp(x, y);
}

/* Order entries as the reply lists them: by key, then seq. */
static int
s_cmp_key(const void *a, const void *b)
{
    const pd_entry_t *x = a, *y = b;
    int c = parley__state_key_cmp(x, y);
    return c != 0 ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * An older client (no `entries` in its request) reads each delivery as the
 * state of every entry it names. Note, for a delivery kept, the entries it
 * names that the request asks for: each must be held by that delivery or
 * a newer one of the reply, or that client would read a wrong state.
 * claims collects them as entries with the delivery's seq.
 */
static int
s_claims_add(pd_entry_t **claims, size_t *n, size_t *cap,
             const parley__request_t *req, const parley_update_t *u,
             uint64_t seq)
{
    for (size_t i = 0; i < u->n_parties; i++) {
        if (!parley__request_match_entry(req, u->negotiation, u->parties[i],
                                         u->phase))
            continue;
        if (*n == *cap) {
            size_t c = *cap > 0 ? *cap * 2 : 64;
            pd_entry_t *p = realloc(*claims, c * sizeof(*p));
            if (p == NULL)
                return -ENOMEM;
            *claims = p;
            *cap = c;
        }
        pd_entry_t *e = &(*claims)[(*n)++];
        memset(e, 0, sizeof(*e));
        memcpy(e->negotiation, u->negotiation, sizeof(e->negotiation));
        memcpy(e->party, u->parties[i], sizeof(e->party));
        e->phase = u->phase;
        e->seq = seq;
    }
    return 0;
}

/*
 * Would an older client read the state right from these deliveries: is
 * every claim (sorted here) matched by an entry (sorted by key; one per
 * key) of the same key with a seq at least the claim's?
 */
static bool
s_claims_hold(pd_entry_t *claims, size_t n_claims, const pd_entry_t *entries,
              size_t n)
{
    if (n_claims > 1) /* claims is NULL when there are none */
        qsort(claims, n_claims, sizeof(*claims), s_cmp_key);
    size_t j = 0;
    for (size_t i = 0; i < n_claims; i++) {
        while (j < n && parley__state_key_cmp(&entries[j], &claims[i]) < 0)
            j++;
        if (j == n || parley__state_key_cmp(&entries[j], &claims[i]) != 0
            || entries[j].seq < claims[i].seq)
            return false;
    }
    return true;
}

/*
 * Read the update of each seq the entries name, once, in seq order, from
 * where the job stands, and keep it (and its entries) unless it is gone,
 * expired when the job started or not for this reader, until the budget
 * is spent (*spent then). Returns 0 or a negative error
 * (PARLEY_EUNAVAILABLE with a->detail when the snapshot is too large).
 */
static int
s_snap_collect(pd_query_t *self, const s_reader_t *rd, pd_query_snap_t *js,
               pd_query_budget_t *b, bool *spent, pd_query_answer_t *a)
{
    size_t n = js->n_entries;
    *spent = false;
    for (size_t next, taken = 0; js->next < n; js->next = next) {
        if (!s_take(b, taken++)) {
            *spent = true;
            return 0;
        }
        size_t i = js->next;
        uint64_t seq = js->entries[i].seq;
        for (next = i + 1; next < n && js->entries[next].seq == seq; next++)
            ;
        int64_t received_at;
        size_t len;
        int rc = s_read_record(self, seq, &received_at, &len);
        if (rc == -ENOENT || rc == PARLEY_EMALFORMED || rc == PARLEY_EINVALID)
            continue; /* removed by retention, or logged at start */
        if (rc < 0)
            return rc;
        const parley_update_t *u = &self->update;
        /* An expired update holds no entry; nothing falls back. */
        if (u->expires_at != 0 && u->expires_at <= js->now_ms)
            continue;
        if (!rd->reads_all && !s_wanted(self, rd, u))
            continue;
        if ((rc = s_snap_add(&js->got, seq, received_at, self->record, len,
                             a->detail, sizeof(a->detail)))
            < 0)
            return rc;
        if (!rd->req->entries
            && (rc = s_claims_add(&js->claims, &js->n_claims,
                                  &js->claims_cap, rd->req, u, seq)) < 0)
            return rc;
        /* Keep its entries: move them to the front. */
        for (size_t k = i; k < next; k++) {
            pd_entry_t e = js->entries[k];
            js->entries[k] = js->entries[js->kept];
            js->entries[js->kept++] = e;
        }
    }
    if (js->kept > 1)
        qsort(js->entries, js->kept, sizeof(*js->entries), s_cmp_key);
    return 0;
}

/* Encode the collected deliveries and entries as the reply to req. */
static int
s_snap_encode(pd_query_t *self, const parley__request_t *req,
              const pd_query_snap_t *js, pd_query_answer_t *a)
{
    const s_snap_t *s = &js->got;
    parley__bytes_t *list = calloc(s->n > 0 ? s->n : 1, sizeof(*list));
    parley__entry_t *ents = NULL;
    size_t n_ents = req->entries ? js->kept : 0;
    size_t out_cap = s->used + s->n * parley__reply_item_overhead(0)
                     + n_ents * PARLEY__ENTRY_WIRE_MAX + 64;
    int rc = PARLEY_EUNAVAILABLE;
    if (n_ents > 0)
        ents = calloc(n_ents, sizeof(*ents));
    free(self->snap_out);
    self->snap_out = malloc(out_cap);
    if (list != NULL && self->snap_out != NULL && (n_ents == 0 || ents)) {
        for (size_t i = 0; i < s->n; i++) {
            size_t end = i + 1 < s->n ? s->offs[i + 1] : s->used;
            list[i] = (parley__bytes_t){ s->buf + s->offs[i],
                                         end - s->offs[i] };
        }
        for (size_t i = 0; i < n_ents; i++)
            ents[i] = (parley__entry_t){ js->entries[i].negotiation,
                                         js->entries[i].party,
                                         js->entries[i].phase,
                                         js->entries[i].seq };
        parley__reply_t r = { .request_id = req->request_id,
                              .type = PARLEY__REPLY_SNAPSHOT,
                              .deliveries = list,
                              .n_deliveries = s->n,
                              .entries = ents,
                              .n_entries = n_ents,
                              .seq = js->head };
        rc = s_encode(&r, self->snap_out, out_cap, a);
    } else {
        snprintf(a->detail, sizeof(a->detail), "(out of memory)");
    }
    free(list);
    free(ents);
    return rc;
}

/* Start a snapshot job: the entries req asks for, by seq, the reader's
 * view of the head (its seq) and the time now. */
static int
s_snap_start(pd_query_t *self, const s_reader_t *rd, pd_query_job_t *job)
{
    const parley__request_t *req = rd->req;
    pd_query_snap_t *js = calloc(1, sizeof(*js));
    if (js == NULL)
        return -ENOMEM;
    job->snap = js;
    /* Both from the same moment: the loop thread applies commits between
     * steps, never within one. */
    js->head = rd->head;
    js->now_ms = parley_now_ms();
    int n = pd_storage_latest(self->storage, s_entry_wanted, (void *)req,
                              &js->entries);
    if (n < 0)
        return n;
    js->n_entries = (size_t)n;
    if (n > 1) /* entries is NULL when there are none */
        qsort(js->entries, js->n_entries, sizeof(*js->entries), s_cmp_seq);
    return 0;
}

int
pd_query_snapshot_step(pd_query_t *self, const parley__request_t *req,
                       const char *key, pd_query_job_t *job,
                       pd_query_budget_t *b, pd_query_answer_t *a)
{
    memset(a, 0, sizeof(*a));
    s_reader_t rd = s_reader(self, req, key);
    int rc = job->snap == NULL ? s_snap_start(self, &rd, job) : 0;
    bool spent = false;
    if (rc == 0)
        rc = s_snap_collect(self, &rd, job->snap, b, &spent, a);
    if (rc == 0 && spent)
        return PD_QUERY_MORE;
    if (rc == 0 && !req->entries
        && !s_claims_hold(job->snap->claims, job->snap->n_claims,
                          job->snap->entries, job->snap->kept)) {
        snprintf(a->detail, sizeof(a->detail),
                 "(updates name entries they do not hold: needs a client "
                 "that reads entries)");
        rc = PARLEY_EBADREQUEST;
    } else if (rc == 0) {
        rc = s_snap_encode(self, req, job->snap, a);
    } else if (rc != PARLEY_EUNAVAILABLE) {
        pd_log_limited(PD_LOG_KEY_QUERY, PD_LOG_ERROR, "snapshot failed: %s",
                       parley_error_name(rc));
        rc = PARLEY_EUNAVAILABLE;
    }
    /* Answered (or refused): what was collected is not needed any more. */
    pd_query_job_end(job);
    return rc;
}

int
pd_query_replay(pd_query_t *self, const parley__request_t *req,
                const char *key, pd_query_answer_t *a)
{
    return s_once(self, pd_query_replay_step, req, key, a);
}

int
pd_query_snapshot(pd_query_t *self, const parley__request_t *req,
                  const char *key, pd_query_answer_t *a)
{
    return s_once(self, pd_query_snapshot_step, req, key, a);
}

void
pd_query_job_end(pd_query_job_t *job)
{
    if (job->snap != NULL) {
        free(job->snap->entries);
        free(job->snap->claims);
        free(job->snap->got.buf);
        free(job->snap->got.offs);
        free(job->snap);
    }
    memset(job, 0, sizeof(*job));
}
