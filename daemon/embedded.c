/*
 * embedded.c - the storage seam over the local segment log and its
 * indexes (embedded.h).
 *
 * Memory: the batch buffer and the pending table are allocated once at
 * open, so a submit does no malloc of its own. Each submitted update is
 * copied twice: into the store's write queue (as the on-disk record) and
 * into the batch, which answers duplicate checks against the updates of
 * this turn and hands the records to applied() after the commit.
 *
 * The signer index follows each submit (the order check of the next one
 * needs it); the latest state follows the commit, so that it only ever
 * holds durable updates and a snapshot never names a seq that cannot be
 * read yet.
 *
 * A sync that fails for lack of space or an I/O error leaves the log as
 * durable as it was, with the batch still queued in the store (store.h);
 * the batch stays here too, and the storage is unavailable until a
 * commit makes it durable. The signer index is not rolled back (it has
 * no rollback): the queued updates keep their seqs, which is why a
 * resend of one is answered unavailable rather than replay meanwhile.
 */
#include "embedded.h"

#include "facts.h"
#include "index.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Envelope bytes a batch holds at least (more if a message may be
 * larger); a full batch answers PD_STORAGE_FULL. */
#define S_BATCH_MIN (8 * 1024 * 1024)
/* Updates a batch holds at most. */
#define S_PENDING_MAX 1024
#define S_DECODE_SLACK (64 * 1024) /* arena room beyond a record */

/* An update of the batch: its seq and where its bytes are. */
typedef struct {
    uint64_t seq;
    int64_t received_at;
    size_t off, len;   /* envelope bytes in the batch buffer */
    bool is_void;      /* a void record (replica): never applied */
} s_pending_t;

typedef struct pd_embedded {
    pd_storage_t base;       /* first: the seam's view */
    pd_store_t *store;       /* the log (owned) */
    pd_index_t *idx;         /* its indexes (owned) */
    uint8_t *batch;          /* envelope bytes of the batch */
    size_t batch_cap, batch_used;
    s_pending_t *pending;    /* S_PENDING_MAX entries */
    size_t n_pending;        /* updates in the batch */
    size_t n_durable;        /* of which the last commit made durable */
    size_t next_out;         /* next one applied() hands out */
    uint8_t *record;         /* one record read back, max_message_bytes */
    size_t record_cap;
    uint8_t *scratch;        /* arena for reading a record's facts */
    size_t scratch_cap;
    parley_update_t update;  /* a record decoded the slow way */
    uint64_t voids;          /* void records in the log (replica) */
    bool unavailable;        /* a commit failed; the batch waits (above) */
} pd_embedded_t;

/* ============================================================ write side */

/* Forget the batch of the last commit once all of it is durable
 * (applied() has handed it out: ingest drains it after every commit). */
static void
s_release(pd_embedded_t *self)
{
    if (self->n_durable < self->n_pending)
        return;
    self->n_pending = self->n_durable = self->next_out = 0;
    self->batch_used = 0;
}

/*
 * Do the envelope kept (kept_len bytes) and the one submitted carry the
 * same signed update: the same body, signer and signature? The submitted
 * one is canonical (ingest checked), so equal bytes say yes at once; an
 * envelope logged before parleyd required the canonical form may differ
 * in bytes and still hold the same three fields.
 */
static bool
s_same_signed(pd_embedded_t *self, const uint8_t *kept, size_t kept_len,
              const void *env, size_t len)
{
    if (kept_len == len && memcmp(kept, env, len) == 0)
        return true;
    parley__envelope_t a, b;
    parley__arena_t arena;
    parley__arena_init(&arena, self->scratch, self->scratch_cap);
    bool same = parley__envelope_decode(kept, kept_len, &a, &arena) == 0
                && parley__envelope_decode(env, len, &b, &arena) == 0
                && a.body.len == b.body.len
                && memcmp(a.body.data, b.body.data, a.body.len) == 0
                && memcmp(a.signer, b.signer, sizeof(a.signer)) == 0
                && memcmp(a.signature, b.signature, sizeof(a.signature)) == 0;
    parley__arena_reset(&arena);
    return same;
}

/* Is the update kept (or in the batch) as seq the one submitted? */
static bool
s_same_update(pd_embedded_t *self, uint64_t seq, const void *env, size_t len)
{
    if (self->n_pending > 0 && seq >= self->pending[0].seq) {
        uint64_t i = seq - self->pending[0].seq;
        if (i >= self->n_pending)
            return false;
        const s_pending_t *p = &self->pending[i];
        return s_same_signed(self, self->batch + p->off, p->len, env, len);
    }
    int64_t received_at;
    size_t got;
    if (pd_store_read(self->store, seq, &received_at, self->record,
                      self->record_cap, &got) < 0)
        return false; /* gone by retention: a replay like any other */
    return s_same_signed(self, self->record, got, env, len);
}

/*
 * Check 8 against the local signer index: a signer_seq at or below the
 * signer's last is a replay, unless it is the very update kept before
 * (the same body, signer and signature: what was signed, not how the
 * envelope around it was written).
 * Returns 1 (new), 0 (*orig: the seq of the same bytes) or PARLEY_EREPLAY
 * (*last: the signer's last accepted signer_seq).
 */
static int
s_order_check(pd_embedded_t *self, const uint8_t *signer, uint64_t signer_seq,
              const void *env, size_t len, uint64_t *orig, uint64_t *last)
{
    if (!pd_index_signer_last(self->idx, signer, last) || signer_seq > *last)
        return 1;
    *orig = pd_index_dedupe_lookup(self->idx, signer, signer_seq);
    if (*orig != 0 && s_same_update(self, *orig, env, len))
        return 0;
    return PARLEY_EREPLAY;
}

/*
 * Append one record at seq (the next) and keep it in the batch: a
 * verified update (signer set: its order half is indexed now, its state
 * half at the commit) or a void record (signer NULL). Returns 0,
 * PD_STORAGE_FULL, PARLEY_EUNAVAILABLE (no memory for the indexes),
 * PARLEY_ETOOLARGE or a fatal error (logged).
 */
static int
s_put(pd_embedded_t *self, uint64_t seq, int64_t received_at,
      const void *env, size_t len, const uint8_t *signer,
      const parley_update_t *u)
{
    if (self->n_durable > 0)
        s_release(self);
    if (self->batch_cap - self->batch_used < len
        || self->n_pending == S_PENDING_MAX)
        return PD_STORAGE_FULL;
    /* Room in the indexes, so that applying it after the commit cannot
     * fail (a void record takes its place in the state too, holding
     * nothing); given back if the append is refused. */
    size_t n_parties = signer != NULL ? u->n_parties : 0;
    size_t n_refs = signer != NULL ? u->n_references : 0;
    if ((signer != NULL
             ? pd_index_reserve(self->idx, signer, n_parties, n_refs)
             : pd_index_reserve_empty(self->idx))
        < 0) {
        pd_log_limited(PD_LOG_KEY_STORAGE, PD_LOG_ERROR,
                       "embedded: out of memory for the indexes; update "
                       "refused as unavailable");
        return PARLEY_EUNAVAILABLE;
    }
    int rc = pd_store_append(self->store, seq, received_at, env, len);
    if (rc == -EMSGSIZE) {
        pd_index_unreserve(self->idx, n_parties, n_refs);
        return PARLEY_ETOOLARGE;
    }
    if (rc < 0) {
        pd_log(PD_LOG_ERROR, "store append of seq %llu failed: %s; stopping",
               (unsigned long long)seq, parley_error_name(rc));
        return rc;
    }
    if (signer != NULL)
        pd_index_add_signer(self->idx, seq, signer, u->signer_seq);
    else
        self->voids++;
    self->pending[self->n_pending++] = (s_pending_t){
        .seq = seq, .received_at = received_at,
        .off = self->batch_used, .len = len, .is_void = signer == NULL
    };
    memcpy(self->batch + self->batch_used, env, len);
    self->batch_used += len;
    return 0;
}

static int
s_submit(pd_storage_t *base, const pd_storage_update_t *u,
         pd_storage_done_t *done)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    s_release(self);
    uint64_t orig = 0, last = 0;
    int rc = s_order_check(self, u->signer, u->update->signer_seq, u->env,
                           u->len, &orig, &last);
    if (rc < 0) {
        *done = (pd_storage_done_t){ .tag = u->tag, .rc = rc,
                                     .signer_seq = last };
        return rc;
    }
    if (rc == 0) {
        *done = (pd_storage_done_t){ .tag = u->tag, .seq = orig,
                                     .duplicate = true };
        /* Still queued, not durable: no ack yet, and not a replay. */
        if (self->unavailable && orig > pd_store_last_seq(self->store))
            return PARLEY_EUNAVAILABLE;
        return PD_STORAGE_DONE;
    }
    if (self->unavailable)
        return PARLEY_EUNAVAILABLE; /* nothing new until the retry works */
    uint64_t seq = pd_store_next_seq(self->store);
    if ((rc = s_put(self, seq, u->received_at, u->env, u->len, u->signer,
                    u->update)) != 0)
        return rc;
    *done = (pd_storage_done_t){ .tag = u->tag, .seq = seq };
    return PD_STORAGE_DONE;
}

/* Apply a durable record of the batch to the latest state. */
static void
s_apply(pd_embedded_t *self, const s_pending_t *p)
{
    if (p->is_void) { /* its place in the state, holding nothing */
        pd_index_apply(self->idx, p->seq, NULL);
        return;
    }
    parley__facts_t f;
    parley__envelope_t e;
    parley__arena_t arena;
    parley__arena_init(&arena, self->scratch, self->scratch_cap);
    int rc = parley__facts_decode(self->batch + p->off, p->len, &f, &e,
                                  &self->update, &arena);
    if (rc < 0) /* it decoded when it was checked: cannot happen */
        pd_log(PD_LOG_ERROR, "embedded: seq %llu does not decode (%s); "
                             "not in the current state",
               (unsigned long long)p->seq, parley_error_name(rc));
    /* Every seq takes its place in the state, in order. */
    pd_index_apply(self->idx, p->seq, rc == 0 ? &f : NULL);
    parley__arena_reset(&arena);
}

/* How many of the batch the log holds durable now (a prefix of it). */
static size_t
s_durable_count(const pd_embedded_t *self)
{
    uint64_t head = pd_store_last_seq(self->store);
    if (self->n_pending == 0 || head < self->pending[0].seq)
        return 0;
    uint64_t n = head - self->pending[0].seq + 1;
    return n < self->n_pending ? (size_t)n : self->n_pending;
}

/*
 * The sync failed with rc. Fatal (the store says so): stop. Otherwise the
 * storage is unavailable until a later commit works.
 */
static int
s_commit_failed(pd_embedded_t *self, int rc)
{
    pd_store_health_t h;
    pd_store_health(self->store, &h);
    size_t waiting = self->n_pending - self->n_durable;
    if (h.fatal) {
        pd_log(PD_LOG_ERROR,
               "store sync failed: %s; %zu updates not acked, stopping",
               parley_strerror(rc), waiting);
        return rc;
    }
    if (!self->unavailable)
        pd_log(PD_LOG_ERROR,
               "store sync failed: %s; %zu updates not acked and kept "
               "queued (seq %llu on); publishes are answered unavailable "
               "until writing works again",
               parley_strerror(rc), waiting,
               (unsigned long long)pd_store_last_seq(self->store) + 1);
    self->unavailable = true;
    return PARLEY_EUNAVAILABLE;
}

static int
s_commit(pd_storage_t *base)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    int rc = 0;
    if (self->n_pending > self->n_durable)
        rc = pd_store_sync(self->store);
    /* After a failure a prefix may be durable (the queue spanned a roll). */
    size_t durable = rc == 0 ? self->n_pending : s_durable_count(self);
    for (size_t i = self->n_durable; i < durable; i++)
        s_apply(self, &self->pending[i]);
    self->n_durable = durable;
    if (rc < 0)
        return s_commit_failed(self, rc);
    if (self->unavailable) {
        pd_log(PD_LOG_INFO, "publishes are taken again: the updates that "
                            "waited are durable");
        self->unavailable = false;
    }
    return 0;
}

static bool
s_completed(pd_storage_t *base, pd_storage_done_t *done)
{
    (void)base;
    (void)done;
    return false; /* every submit completed at once */
}

static bool
s_applied(pd_storage_t *base, pd_storage_record_t *rec)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    if (self->next_out >= self->n_durable)
        return false;
    const s_pending_t *p = &self->pending[self->next_out++];
    /* A void record holds no update: the seq alone (storage.h). */
    *rec = (pd_storage_record_t){ .seq = p->seq,
                                  .received_at = p->received_at,
                                  .env = p->is_void ? NULL
                                                    : self->batch + p->off,
                                  .len = p->is_void ? 0 : p->len,
                                  .absent = p->is_void };
    return true;
}

/* ============================================================= read side */

static uint64_t
s_head(const pd_storage_t *base)
{
    return pd_store_last_seq(((const pd_embedded_t *)base)->store);
}

static uint64_t
s_first(const pd_storage_t *base)
{
    return pd_store_first_seq(((const pd_embedded_t *)base)->store);
}

static int
s_read(pd_storage_t *base, uint64_t seq, int64_t *received_at, void *buf,
       size_t cap, size_t *len)
{
    return pd_store_read(((pd_embedded_t *)base)->store, seq, received_at,
                         buf, cap, len);
}

static int
s_latest(const pd_storage_t *base, pd_entry_want_fn want, void *ctx,
         pd_entry_t **entries)
{
    return pd_index_latest(((const pd_embedded_t *)base)->idx, want, ctx,
                           entries);
}

static int
s_retain(pd_storage_t *base, int64_t now_ms)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    int n = pd_store_retain(self->store, now_ms);
    if (n > 0)
        pd_index_forget_before(self->idx, pd_store_first_seq(self->store));
    return n;
}

static int
s_check(pd_storage_t *base)
{
    return pd_store_check(((pd_embedded_t *)base)->store);
}

static void
s_health(const pd_storage_t *base, pd_storage_health_t *out)
{
    pd_store_health_t h;
    pd_store_health(((const pd_embedded_t *)base)->store, &h);
    *out = (pd_storage_health_t){ .err = h.err,
                                  .fatal = h.fatal,
                                  .low_space = h.low_space,
                                  .queued = h.queued };
    snprintf(out->reason, sizeof(out->reason), "%s", h.reason);
}

/* ================================================================= setup */

static void
s_destroy(pd_storage_t *base)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    pd_store_close(&self->store);
    pd_index_destroy(&self->idx);
    free(self->batch);
    free(self->pending);
    free(self->record);
    free(self->scratch);
    free(self);
}

static const pd_storage_ops_t s_ops = {
    .name = "embedded",
    .submit = s_submit,
    .commit = s_commit,
    .completed = s_completed,
    .applied = s_applied,
    .head = s_head,
    .first = s_first,
    .read = s_read,
    .latest = s_latest,
    .retain = s_retain,
    .check = s_check,
    .health = s_health,
    .destroy = s_destroy,
};

/* What the store's scan hands over at open: to the indexes, then to the
 * caller's observer. */
typedef struct {
    pd_embedded_t *self;
    const pd_storage_scan_t *scan;
} s_scan_ctx_t;

static int
s_scan(void *ctx, uint64_t seq, int64_t received_at, const uint8_t *payload,
       size_t len)
{
    s_scan_ctx_t *c = ctx;
    pd_embedded_t *self = c->self;
    pd_storage_record_t rec = { .seq = seq, .received_at = received_at,
                                .env = payload, .len = len };
    int rc;
    if (pd_embedded_void_parse(payload, len, NULL, NULL)) {
        /* A void record (replica) is counted, takes its place in the
         * state holding nothing, and is an absent seq to the observer. */
        self->voids++;
        rc = pd_index_reserve_empty(self->idx);
        if (rc == 0)
            pd_index_apply(self->idx, seq, NULL);
        rec.env = NULL;
        rec.len = 0;
        rec.absent = true;
    } else {
        rc = pd_index_scan(self->idx, seq, received_at, payload, len);
    }
    if (rc == 0 && c->scan != NULL && c->scan->fn != NULL)
        rc = c->scan->fn(c->scan->ctx, &rec);
    return rc;
}

/* Open the log, rebuilding the indexes, and say what was recovered. */
static int
s_open_log(pd_embedded_t *self, const pd_config_t *cfg,
           const pd_storage_scan_t *scan)
{
    pd_store_opts_t opts = {
        .segment_bytes = cfg->segment_bytes,
        .max_bytes = cfg->retention_bytes,
        .max_age_ms = (int64_t)cfg->retention_age * 1000,
        .sync = cfg->fsync,
        .max_record = cfg->max_message_bytes,
        .reserve = cfg->disk_reserve,
    };
    char errbuf[512] = "";
    int err = 0;
    s_scan_ctx_t sc = { .self = self, .scan = scan };
    self->store = pd_store_open(cfg->state_dir, &opts, s_scan, &sc, errbuf,
                                sizeof(errbuf), &err);
    if (self->store == NULL) {
        pd_log(PD_LOG_ERROR, "cannot open the log in %s: %s", cfg->state_dir,
               errbuf[0] != '\0' ? errbuf : parley_error_name(err));
        return err;
    }
    pd_index_stats_t is;
    pd_store_stats_t ss;
    pd_index_get_stats(self->idx, &is);
    pd_store_get_stats(self->store, &ss);
    pd_log(PD_LOG_INFO,
           "recovered %llu records (seq %llu..%llu) in %llu segments: "
           "%zu signers, %zu current states",
           (unsigned long long)is.scanned,
           (unsigned long long)pd_store_first_seq(self->store),
           (unsigned long long)pd_store_last_seq(self->store),
           (unsigned long long)ss.segments, is.signers, is.latest);
    if (is.skipped > 0)
        pd_log(PD_LOG_WARN, "%llu logged records did not decode",
               (unsigned long long)is.skipped);
    if (self->voids > 0)
        pd_log(PD_LOG_INFO, "%llu void records (stream records this node "
                            "refused; docs/cluster.md)",
               (unsigned long long)self->voids);
    return 0;
}

static uint64_t
s_stat_head(const void *ctx)
{
    return s_head(ctx);
}

static uint64_t
s_stat_first(const void *ctx)
{
    return s_first(ctx);
}

/* store_error: 0, or the errno that keeps updates from being stored. */
static uint64_t
s_stat_error(const void *ctx)
{
    pd_storage_health_t h;
    s_health(ctx, &h);
    return (uint64_t)-h.err;
}

static uint64_t
s_stat_queued(const void *ctx)
{
    pd_storage_health_t h;
    s_health(ctx, &h);
    return h.queued;
}

static uint64_t
s_stat_low_space(const void *ctx)
{
    pd_storage_health_t h;
    s_health(ctx, &h);
    return h.low_space;
}

pd_storage_t *
pd_embedded_open(const pd_config_t *cfg, pd_stats_t *stats,
                 const pd_storage_scan_t *scan, int *err)
{
    pd_embedded_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->base.ops = &s_ops;
    size_t max = cfg->max_message_bytes;
    self->batch_cap = max > S_BATCH_MIN ? max : S_BATCH_MIN;
    self->record_cap = max;
    self->batch = malloc(self->batch_cap);
    self->pending = calloc(S_PENDING_MAX, sizeof(s_pending_t));
    self->record = malloc(self->record_cap);
    self->scratch_cap = max + S_DECODE_SLACK;
    self->scratch = malloc(self->scratch_cap);
    if (self->batch == NULL || self->pending == NULL || self->record == NULL
        || self->scratch == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    /* Recover before anyone can talk to us. */
    if ((self->idx = pd_index_new()) == NULL) {
        *err = errno != 0 ? -errno : -ENOMEM;
        goto fail;
    }
    if ((*err = s_open_log(self, cfg, scan)) < 0)
        goto fail;
    if (stats != NULL) {
        pd_stats_getter(stats, PD_STAT_SEQ, s_stat_head, self);
        pd_stats_getter(stats, PD_STAT_FIRST_SEQ, s_stat_first, self);
        pd_stats_getter(stats, PD_STAT_STORE_ERROR, s_stat_error, self);
        pd_stats_getter(stats, PD_STAT_STORE_QUEUED, s_stat_queued, self);
        pd_stats_getter(stats, PD_STAT_STORE_LOW_SPACE, s_stat_low_space,
                        self);
        pd_store_stats_register(self->store, stats);
    }
    *err = 0;
    return &self->base;
fail:
    s_destroy(&self->base);
    return NULL;
}

/* ================================================================ replica */

/* The first two bytes of a void record: field number 0 cannot start a
 * protobuf message, so no SignedUpdate (nor anything a reader decodes as
 * one) begins like this. */
static const uint8_t s_void_magic[2] = { 0x00, 0x56 };

void
pd_embedded_void_make(uint8_t out[PD_EMBEDDED_VOID_BYTES], int reason,
                      const char *key_id)
{
    memcpy(out, s_void_magic, sizeof(s_void_magic));
    /* PARLEY_E* codes are -1001 and below: one byte holds -code - 1000. */
    out[2] = (uint8_t)(reason <= -1001 && reason > -1256 ? -reason - 1000
                                                         : 0);
    for (size_t i = 0; i < PARLEY_KEYID_CHARS; i++)
        out[3 + i] = key_id != NULL && strlen(key_id) == PARLEY_KEYID_CHARS
                         ? (uint8_t)key_id[i]
                         : (uint8_t)'-';
}

bool
pd_embedded_void_parse(const void *payload, size_t len, int *reason,
                       char key_id[PARLEY_KEYID_CHARS + 1])
{
    const uint8_t *p = payload;
    if (len != PD_EMBEDDED_VOID_BYTES
        || memcmp(p, s_void_magic, sizeof(s_void_magic)) != 0)
        return false;
    if (reason != NULL)
        *reason = p[2] != 0 ? -1000 - (int)p[2] : 0;
    if (key_id != NULL) {
        memcpy(key_id, p + 3, PARLEY_KEYID_CHARS);
        key_id[PARLEY_KEYID_CHARS] = '\0';
    }
    return true;
}

int
pd_embedded_check(pd_storage_t *base, const uint8_t *signer,
                  uint64_t signer_seq, const void *env, size_t len,
                  uint64_t *orig, uint64_t *last)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    *orig = *last = 0;
    return s_order_check(self, signer, signer_seq, env, len, orig, last);
}

bool
pd_embedded_signer_last(const pd_storage_t *base, const uint8_t *signer,
                        uint64_t *signer_seq, uint64_t *seq)
{
    const pd_embedded_t *self = (const pd_embedded_t *)base;
    if (!pd_index_signer_last(self->idx, signer, signer_seq))
        return false;
    *seq = pd_index_dedupe_lookup(self->idx, signer, *signer_seq);
    return true;
}

int
pd_embedded_put(pd_storage_t *base, uint64_t seq, int64_t received_at,
                const void *env, size_t len, const uint8_t *signer,
                const parley_update_t *u)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    if (seq != pd_store_next_seq(self->store) || signer == NULL || u == NULL)
        return -EINVAL;
    if (self->unavailable)
        return PD_STORAGE_FULL;
    return s_put(self, seq, received_at, env, len, signer, u);
}

int
pd_embedded_put_void(pd_storage_t *base, uint64_t seq, int64_t received_at,
                     int reason, const char *key_id)
{
    pd_embedded_t *self = (pd_embedded_t *)base;
    uint8_t marker[PD_EMBEDDED_VOID_BYTES];
    if (seq != pd_store_next_seq(self->store))
        return -EINVAL;
    if (self->unavailable)
        return PD_STORAGE_FULL;
    pd_embedded_void_make(marker, reason, key_id);
    return s_put(self, seq, received_at, marker, sizeof(marker), NULL, NULL);
}

uint64_t
pd_embedded_next_seq(const pd_storage_t *base)
{
    return pd_store_next_seq(((const pd_embedded_t *)base)->store);
}

int
pd_embedded_start_at(pd_storage_t *base, uint64_t seq)
{
    return pd_store_start_at(((pd_embedded_t *)base)->store, seq);
}

size_t
pd_embedded_room(const pd_storage_t *base)
{
    const pd_embedded_t *self = (const pd_embedded_t *)base;
    if (self->unavailable)
        return 0; /* nothing new until a commit works again */
    if (self->n_durable > 0)
        return self->batch_cap; /* the next put starts a new batch */
    if (self->n_pending == S_PENDING_MAX)
        return 0;
    return self->batch_cap - self->batch_used;
}

uint64_t
pd_embedded_voids(const pd_storage_t *base)
{
    return ((const pd_embedded_t *)base)->voids;
}
