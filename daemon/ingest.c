/*
 * ingest.c - the write path, one group-commit turn at a time (ingest.h).
 *
 * The file reads in the order an update travels, after the pre-checks
 * and the signature checks of ingest_verify.c: the publish checks, store
 * (submit), commit, acks, feed; then the turn that drives them.
 *
 * Memory: every buffer is sized from max_message_bytes and allocated once
 * in pd_ingest_new(), so the publish path does no malloc of its own (the
 * table of updates in flight, for a storage that completes them later,
 * is allocated when the first one is).
 */
#include "ingest_int.h"

#include "clock.h"
#include "facts.h"
#include "limit.h"
#include "log.h"
#include "pool.h"
#include "sign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DECODE_SLACK (64 * 1024)  /* arena room beyond the message itself */
/* Updates a storage may hold in flight (PD_STORAGE_LATER) at most. */
#define S_INFLIGHT_MAX 4096

static int s_commit(pd_ingest_t *self, bool retry);

/* ================================================================ replies */

/*
 * Queue a reply to a publish. A full queue is a group-commit point: the
 * turn commits, which sends the queue, and queues again.
 * Returns 0 or a fatal error of that commit.
 */
static int
s_reply(pd_ingest_t *self, const uint8_t *id, size_t id_len,
        const parley__reply_t *r, const char *detail)
{
    int rc = self->io.reply(self->io.ctx, id, id_len, r, detail);
    if (rc == -ENOBUFS) {
        if ((rc = s_commit(self, false)) < 0)
            return rc;
        rc = self->io.reply(self->io.ctx, id, id_len, r, detail);
    }
    if (rc < 0) /* a small reply always fits an empty queue */
        pd_log(PD_LOG_ERROR, "ingest: reply does not fit the queue; dropped");
    return 0;
}

/* Queue a reject; signer_seq goes with a replay (the signer's last). */
static int
s_reject_seq(pd_ingest_t *self, const uint8_t *id, size_t id_len,
             uint64_t rid, int code, uint64_t signer_seq, const char *detail)
{
    parley__reply_t r = { .request_id = rid,
                          .type = PARLEY__REPLY_REJECT,
                          .code = code,
                          .signer_seq = signer_seq };
    return s_reply(self, id, id_len, &r, detail);
}

static int
s_reject(pd_ingest_t *self, const uint8_t *id, size_t id_len, uint64_t rid,
         int code, const char *detail)
{
    return s_reject_seq(self, id, id_len, rid, code, 0, detail);
}

/*
 * What a client is told, after the code's sentence, when the storage
 * cannot keep updates now (made in self->why), or NULL when the storage
 * reports no error (the unavailable has another cause). queued: the
 * update keeps its seq and waits for the retry (else it was not kept).
 * The storage's reason may name files: clients get the error alone.
 */
static const char *
s_why(pd_ingest_t *self, bool queued)
{
    pd_storage_health_t h;
    pd_storage_health(self->storage, &h);
    if (h.err == 0)
        return NULL;
    snprintf(self->why, sizeof(self->why),
             "the log cannot be written (%s); %s", strerror(-h.err),
             queued ? "kept queued, not acked: resend the same bytes later"
                    : "not stored: publish later");
    return self->why;
}

/* Reject a publish unavailable, saying why: the storage's detail for
 * this update if it gave one, else what its health says (queued as for
 * s_why()). */
static int
s_unavailable(pd_ingest_t *self, const uint8_t *id, size_t id_len,
              uint64_t rid, bool queued, const char *detail)
{
    return s_reject(self, id, id_len, rid, PARLEY_EUNAVAILABLE,
                    detail != NULL ? detail : s_why(self, queued));
}

/*
 * Answer a publish the storage has finished with: ack its seq (a
 * duplicate's original seq), or reject it. u is its update, or NULL when
 * the storage completed it later.
 */
static int
s_answer_done(pd_ingest_t *self, const uint8_t *id, size_t id_len,
              uint64_t rid, const pd_storage_done_t *done,
              const parley_update_t *u)
{
    if (done->rc == PARLEY_EUNAVAILABLE)
        return s_unavailable(self, id, id_len, rid, false, done->detail);
    if (done->rc < 0)
        return s_reject_seq(self, id, id_len, rid, done->rc,
                            done->signer_seq, done->detail);
    if (done->duplicate) {
        /* Of a seq not yet durable: counted if the commit makes it so. */
        if (done->seq <= pd_storage_head(self->storage))
            self->counters.duplicates++;
        else
            self->dups_waiting++;
    } else {
        pd_log(PD_LOG_DEBUG, "stored seq %llu: %s phase %u",
               (unsigned long long)done->seq, u != NULL ? u->negotiation : "",
               u != NULL ? (unsigned)u->phase : 0);
    }
    parley__reply_t r = { .request_id = rid,
                          .type = PARLEY__REPLY_ACK,
                          .seq = done->seq,
                          .duplicate = done->duplicate };
    return s_reply(self, id, id_len, &r, NULL);
}

/* ================================================================= checks */

/* Room for the detail of a reject that explains itself. */
#define PD_INGEST_DETAIL_MAX 320

/*
 * A correction or retraction names seqs this daemon holds: one it never
 * assigned, or that retention removed, would replace nothing anyone can
 * see. Returns 0, or PARLEY_EINVALID with the reason in buf.
 */
static int
s_references_held(const pd_ingest_t *self, const parley_update_t *u,
                  char *buf, size_t cap)
{
    uint64_t first = pd_storage_first(self->storage);
    uint64_t head = pd_storage_head(self->storage);
    for (size_t i = 0; i < u->n_references; i++) {
        uint64_t ref = u->references[i];
        if (ref >= first && ref <= head && first > 0)
            continue;
        if (head == 0)
            snprintf(buf, cap, "references: #%llu is not held by this daemon "
                               "(its log is empty)",
                     (unsigned long long)ref);
        else if (ref > head)
            snprintf(buf, cap, "references: #%llu is not held by this daemon "
                               "(its last seq is #%llu)",
                     (unsigned long long)ref, (unsigned long long)head);
        else
            snprintf(buf, cap, "references: #%llu is no longer held by this "
                               "daemon (retention; the oldest held is #%llu)",
                     (unsigned long long)ref, (unsigned long long)first);
        return PARLEY_EINVALID;
    }
    return 0;
}

/* Check 7: issued_at within max_clock_skew of now_ms. 0 or the code. */
static int
s_clock_window(const pd_ingest_t *self, const parley_update_t *u,
               int64_t now_ms)
{
    int64_t skew = (int64_t)self->cfg->max_clock_skew * 1000;
    if (u->issued_at < now_ms - skew)
        return PARLEY_ESTALE;
    if (u->issued_at > now_ms + skew)
        return PARLEY_EFUTURE;
    return 0;
}

/* ================================================================== store */

/* Whether the next submit's tag has a free place among those waiting
 * for the storage to complete them. */
static bool
s_wait_room(const pd_ingest_t *self)
{
    return self->waiting == NULL
           || self->waiting[self->next_tag % S_INFLIGHT_MAX].tag == 0;
}

/*
 * Remember where the answer to the submit of tag next_tag goes: the
 * storage completes it later. Returns 0, or -ENOMEM (logged; the update
 * may still be stored, and a resend is then answered as a duplicate).
 */
static int
s_wait_for(pd_ingest_t *self, const uint8_t *id, size_t id_len, uint64_t rid)
{
    if (self->waiting == NULL
        && (self->waiting = calloc(S_INFLIGHT_MAX, sizeof(s_waiting_t)))
               == NULL) {
        pd_log(PD_LOG_ERROR, "ingest: no memory to wait for an update "
                             "in flight; answered unavailable");
        return -ENOMEM;
    }
    s_waiting_t *w = &self->waiting[self->next_tag % S_INFLIGHT_MAX];
    w->tag = self->next_tag++;
    w->request_id = rid;
    w->id_len = id_len;
    memcpy(w->id, id, id_len);
    return 0;
}

/*
 * Check 8 and the append, through the storage: submit the update and
 * answer what it says. The ack waits in the queue for the commit.
 * Returns 0 or a fatal error.
 */
static int
s_store(pd_ingest_t *self, const uint8_t *id, size_t id_len, uint64_t rid,
        const uint8_t signer[PARLEY_PUBLICKEY_BYTES], int64_t now_ms)
{
    int rc = 0;
    /* Room for the ack first: it must go out before the delivery; and
     * for the answer's address, if the storage completes it later. */
    if ((!self->io.room(self->io.ctx, id_len) || !s_wait_room(self))
        && (rc = s_commit(self, false)) < 0)
        return rc;
    if (!s_wait_room(self))
        return s_reject(self, id, id_len, rid, PARLEY_EUNAVAILABLE,
                        "(too many updates in flight)");
    pd_storage_update_t su = { .env = self->req.update.data,
                               .len = self->req.update.len,
                               .signer = signer,
                               .update = &self->update,
                               .received_at = now_ms,
                               .tag = self->next_tag };
    pd_storage_done_t done = { 0 };
    rc = pd_storage_submit(self->storage, &su, &done);
    if (rc == PD_STORAGE_FULL) {
        if ((rc = s_commit(self, false)) < 0)
            return rc;
        rc = pd_storage_submit(self->storage, &su, &done);
    }
    if (rc == PD_STORAGE_DONE)
        return s_answer_done(self, id, id_len, rid, &done, &self->update);
    if (rc == PD_STORAGE_LATER) {
        if (s_wait_for(self, id, id_len, rid) == 0)
            return 0;
        rc = PARLEY_EUNAVAILABLE;
    }
    if (rc == PARLEY_EUNAVAILABLE || rc == PD_STORAGE_FULL)
        return s_unavailable(self, id, id_len, rid,
                             rc == PARLEY_EUNAVAILABLE && done.duplicate,
                             rc == PARLEY_EUNAVAILABLE ? done.detail : NULL);
    if (rc == PARLEY_EREPLAY || rc == PARLEY_ETOOLARGE)
        return s_reject_seq(self, id, id_len, rid, rc,
                            rc == PARLEY_EREPLAY ? done.signer_seq : 0,
                            done.detail);
    return rc; /* the storage failed: stop */
}

/*
 * Checks 3a-8 for one publish, in request order, then the append. A
 * reject changes no state. The rate limits come before the signature
 * check (the one costly step): a peer that has sent too many bad
 * signatures is refused, undecoded, for a while; then, after the signer
 * lookup, the signer's bucket must hold a token. The peer check comes
 * first so that forgeries under a real signer's key do not drain that
 * signer's bucket.
 *
 * Returns:   0, or a fatal storage error.
 */
static int
s_publish(pd_ingest_t *self, s_slot_t *slot)
{
    const uint8_t *id = zmq_msg_data(&slot->msg.id);
    size_t id_len = zmq_msg_size(&slot->msg.id);
    size_t len = zmq_msg_size(&slot->msg.body);
    uint8_t signer[PARLEY_PUBLICKEY_BYTES] = { 0 };
    char keyid[PARLEY_KEYID_CHARS + 64];
    const char *why = ""; /* said after the signer in a reject's log line */

    /* The request decoded in s_precheck(); decode it again, as the arena
     * has served the other requests of the step since. */
    parley__arena_reset(&self->arena);
    if (parley__request_decode(zmq_msg_data(&slot->msg.body), len,
                               &self->req, &self->arena)
        != 0)
        return s_reject(self, id, id_len, 0, -EPROTO, "(decodes no more)");
    uint64_t rid = self->req.request_id;
    pd_log(PD_LOG_DEBUG, "request %llu: publish, %zu bytes",
           (unsigned long long)rid, len);
    self->counters.requests_publish++;
    int rc = pd_ingest__verify_outcome(self, slot, id, id_len, signer, &why);
    if (rc == PARLEY_EMALFORMED && slot->canon_why != NULL) {
        char detail[256];
        snprintf(detail, sizeof(detail),
                 "%s (envelope not canonical: %s)",
                 pd_ingest__signer_label(slot, "", keyid), slot->canon_why);
        return s_reject(self, id, id_len, rid, rc, detail);
    }
    char explain[PD_INGEST_DETAIL_MAX];
    if (rc == PARLEY_EFORBIDDEN && self->ring != NULL
        && parley__keyring_explain(self->ring, slot->v.env.signer,
                                   &self->update, explain, sizeof(explain))
               == PARLEY_EFORBIDDEN) {
        /* which field, and what the keyring allows this signer */
        char detail[PD_INGEST_DETAIL_MAX + PARLEY_KEYID_CHARS + 64 + 4];
        snprintf(detail, sizeof(detail), "%s: %s",
                 pd_ingest__signer_label(slot, "", keyid), explain);
        return s_reject(self, id, id_len, rid, rc, detail);
    }
    if (rc != 0)
        return s_reject(self, id, id_len, rid, rc,
                        slot->pre == S_PRE_BLOCKED
                            ? why
                            : pd_ingest__signer_label(slot, why, keyid));
    if (self->update.kind != PARLEY_KIND_UPDATE) {
        char reason[PD_INGEST_DETAIL_MAX];
        if ((rc = s_references_held(self, &self->update, reason,
                                    sizeof(reason)))
            != 0)
            return s_reject(self, id, id_len, rid, rc, reason);
    }
    int64_t now = parley_now_ms();
    if ((rc = s_clock_window(self, &self->update, now)) != 0)
        return s_reject(self, id, id_len, rid, rc, NULL);
    return s_store(self, id, id_len, rid, signer, now);
}

/* ================================================================= commit */

/* Send the replies queued: no ack of a seq the storage has not made
 * durable goes out (ingest.h); those are answered unavailable, as kept
 * queued (the storage keeps them for the retry). */
static void
s_flush(pd_ingest_t *self)
{
    self->io.flush(self->io.ctx, pd_storage_head(self->storage),
                   self->unavailable ? s_why(self, true) : NULL);
}

/* Answer the publishes the storage completed since the last commit. */
static int
s_drain_completed(pd_ingest_t *self)
{
    pd_storage_done_t done;
    while (pd_storage_completed(self->storage, &done)) {
        s_waiting_t *w = self->waiting != NULL
                             ? &self->waiting[done.tag % S_INFLIGHT_MAX]
                             : NULL;
        if (w == NULL || w->tag != done.tag || done.tag == 0) {
            pd_log(PD_LOG_ERROR, "ingest: the storage completed an update "
                                 "it was not given (tag %llu)",
                   (unsigned long long)done.tag);
            continue;
        }
        w->tag = 0;
        if (!self->io.room(self->io.ctx, w->id_len))
            s_flush(self); /* committed: may go out */
        int rc = s_answer_done(self, w->id, w->id_len, w->request_id, &done,
                               NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* =================================================================== feed */

/*
 * Publish a durable record on the feed, on the topics of its update (read
 * from its bytes: the same for every storage, whoever submitted it).
 */
static void
s_feed(pd_ingest_t *self, const pd_storage_record_t *rec)
{
    char topics[PARLEY_TOPICS_MAX][PARLEY_TOPIC_MAX];
    parley__facts_t f;
    parley__envelope_t e;
    parley__arena_t arena;
    parley__arena_init(&arena, self->scratch, self->scratch_cap);
    int rc = parley__facts_decode(rec->env, rec->len, &f, &e,
                                  &self->feed_update, &arena);
    if (rc == 0)
        rc = self->io.publish(self->io.feed, rec->seq, rec->received_at,
                              rec->env, rec->len,
                              (const char(*)[PARLEY_TOPIC_MAX])topics,
                              parley__facts_topics(&f, topics));
    parley__arena_reset(&arena);
    if (rc < 0)
        pd_log_limited(PD_LOG_KEY_API, PD_LOG_WARN,
                       "feed: seq %llu not published: %s",
                       (unsigned long long)rec->seq, parley_error_name(rc));
}

/*
 * The group commit: make the batch durable, then send the queued replies
 * (acks), then publish each new record and hand it to the transparency
 * log (an absent one, storage.h, goes to the transparency log only). A
 * fatal failure of the commit sends nothing; one of the transparency log
 * stops the daemon after the records before it went out. Either way the
 * caller must stop.
 *
 * If the storage answers unavailable, the acks of what it did not make
 * durable go out as unavailable instead (s_flush()), and the turns that
 * follow do not commit (the storage keeps nothing new meanwhile): the
 * retry timer does, with retry set (pd_ingest_retry()). Once a commit
 * works, the updates that waited come out of applied() like any others.
 *
 * Returns:   0, the storage's fatal error or the transparency log's.
 */
static int
s_commit(pd_ingest_t *self, bool retry)
{
    if (!self->unavailable || retry) {
        int rc = pd_storage_commit(self->storage);
        if (rc < 0 && rc != PARLEY_EUNAVAILABLE)
            return rc;
        self->unavailable = rc == PARLEY_EUNAVAILABLE;
    }
    int rc = s_drain_completed(self);
    if (rc < 0)
        return rc;
    s_flush(self);
    if (!self->unavailable)
        self->counters.duplicates += self->dups_waiting;
    self->dups_waiting = 0;
    pd_storage_record_t rec;
    bool any = false;
    while (pd_storage_applied(self->storage, &rec)) {
        /* The delivery first, the leaf after it: subscribers need not
         * wait for bookkeeping that no reply of this turn depends on
         * (reads are answered after the turn, the tree complete). An
         * absent seq is a leaf only: nothing to send. */
        if (!rec.absent) {
            self->counters.accepted++;
            s_feed(self, &rec);
        }
        if (self->io.applied != NULL
            && (rc = self->io.applied(self->io.log, &rec)) < 0)
            return rc;
        any = true;
    }
    if (any && self->io.committed != NULL
        && (rc = self->io.committed(self->io.log)) < 0)
        return rc;
    return 0;
}

/* =================================================================== turn */

/*
 * Handle the n gathered and checked requests of a step in order (after a
 * fatal error, only release them). Returns 0 or a fatal storage error.
 */
static int
s_finish(pd_ingest_t *self, s_slot_t *slots, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++) {
        s_slot_t *slot = &slots[i];
        if (rc == 0 && slot->publish)
            rc = s_publish(self, slot);
        else if (rc == 0)
            self->io.answer(self->io.ctx, &slot->msg);
        parley__verify_end(&slot->v);
        zmq_msg_close(&slot->msg.id);
        zmq_msg_close(&slot->msg.body);
    }
    return rc;
}

/*
 * Turns are a pipeline of steps over two sets of slots, so that the pool
 * always has signatures to check: while it checks one step, the loop
 * thread reads and pre-checks the next one, then (after the further
 * waves of checks a step from few connections needs: pd_ingest__waves())
 * handles the checked step in order (bodies, ordering checks, the log)
 * while the pool goes on with the next. A turn that stops at PD_INGEST_TURN_MAX leaves its last step
 * being checked "ahead" while it commits and answers its batch; the next
 * turn (or pd_ingest_flush()) handles it.
 */
int
pd_ingest_turn(pd_ingest_t *self)
{
    s_slot_t *cur = self->ahead;
    size_t n = self->n_ahead;
    self->n_ahead = 0;
    if (n == 0) {
        cur = self->slots;
        n = pd_ingest__gather(self, cur, PD_INGEST_SLOTS);
        pd_ingest__start(self, cur, n);
    }
    s_slot_t *next = cur == self->slots ? self->slots + PD_INGEST_SLOTS
                                        : self->slots;
    size_t handled = 0;
    int rc = 0;
    while (n > 0 && handled < PD_INGEST_TURN_MAX) {
        /* handled + n <= PD_INGEST_TURN_MAX: read no more than the turn
         * may still handle, and once it is full a whole step for the
         * next. */
        size_t room = PD_INGEST_TURN_MAX - handled - n;
        size_t n_next = 0;
        if (rc == 0)
            n_next = pd_ingest__gather(self, next, room > 0 ? room : PD_INGEST_SLOTS);
        pd_pool_wait(self->pool);
        if (rc == 0)
            pd_ingest__waves(self, cur, n);
        pd_ingest__start(self, next, n_next);
        rc = s_finish(self, cur, n, rc);
        handled += n;
        s_slot_t *t = cur;
        cur = next;
        next = t;
        n = n_next;
    }
    if (rc < 0) {
        if (n > 0) {
            pd_pool_wait(self->pool);
            s_finish(self, cur, n, rc);
        }
        return rc;
    }
    self->ahead = cur;
    self->n_ahead = n;
    if (n > 0)
        self->counters.turns_read_ahead++;
    if (handled > self->counters.turn_requests_max)
        self->counters.turn_requests_max = handled;
    parley__arena_reset(&self->arena);
    return s_commit(self, false);
}

bool
pd_ingest_pending(const pd_ingest_t *self)
{
    return self->n_ahead > 0;
}

int
pd_ingest_flush(pd_ingest_t *self)
{
    int rc = 0;
    if (self->n_ahead > 0) {
        pd_pool_wait(self->pool);
        pd_ingest__waves(self, self->ahead, self->n_ahead);
        rc = s_finish(self, self->ahead, self->n_ahead, 0);
        self->n_ahead = 0;
    }
    parley__arena_reset(&self->arena);
    return rc < 0 ? rc : s_commit(self, true);
}

int
pd_ingest_retry(pd_ingest_t *self)
{
    return self->unavailable ? s_commit(self, true) : 0;
}

bool
pd_ingest_unavailable(const pd_ingest_t *self)
{
    return self->unavailable;
}

void
pd_ingest_set_keyring(pd_ingest_t *self, const parley_keyring_t *ring)
{
    self->ring = ring;
}

/* ================================================================== setup */

static uint64_t
s_keyring_signers(const void *ctx)
{
    const pd_ingest_t *self = ctx;
    return self->ring != NULL ? parley_keyring_size(self->ring) : 0;
}

static uint64_t
s_verify_threads(const void *ctx)
{
    return pd_pool_size(((const pd_ingest_t *)ctx)->pool);
}

/* Report ingest's counters, and those of the pool and limits it owns. */
static void
s_stats_register(pd_ingest_t *self, pd_stats_t *st)
{
    const s_counters_t *c = &self->counters;
    pd_stats_counter(st, PD_STAT_ACCEPTED, &c->accepted);
    pd_stats_counter(st, PD_STAT_DUPLICATES, &c->duplicates);
    pd_stats_counter(st, PD_STAT_REQUESTS_PUBLISH, &c->requests_publish);
    pd_stats_getter(st, PD_STAT_KEYRING_SIGNERS, s_keyring_signers, self);
    pd_stats_getter(st, PD_STAT_VERIFY_THREADS, s_verify_threads, self);
    pd_stats_counter(st, PD_STAT_TURNS_READ_AHEAD, &c->turns_read_ahead);
    pd_stats_counter(st, PD_STAT_TURN_REQUESTS_MAX, &c->turn_requests_max);
    pd_stats_counter(st, PD_STAT_VERIFY_SERIAL, &c->verify_serial);
    pd_limit_stats_register(self->limit, st);
}

pd_ingest_t *
pd_ingest_new(const pd_config_t *cfg, pd_storage_t *storage,
              const pd_ingest_io_t *io, pd_stats_t *stats, int *err)
{
    pd_ingest_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->cfg = cfg;
    self->storage = storage;
    self->io = *io;
    self->next_tag = 1;
    self->arena_cap = cfg->max_message_bytes + S_DECODE_SLACK;
    self->scratch_cap = cfg->max_message_bytes + S_DECODE_SLACK;
    self->arena_buf = malloc(self->arena_cap);
    self->scratch = malloc(self->scratch_cap);
    self->slots = calloc(2 * PD_INGEST_SLOTS, sizeof(s_slot_t));
    self->limit = pd_limit_new(cfg->rate_limit, cfg->rate_burst);
    if (self->arena_buf == NULL || self->scratch == NULL
        || self->slots == NULL || self->limit == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    parley__arena_init(&self->arena, self->arena_buf, self->arena_cap);
    /* One checker per core: the loop thread is one of them. */
    unsigned cpus = pd_pool_cpus();
    if ((self->pool = pd_pool_new(cpus > 8 ? 7 : cpus - 1, err)) == NULL)
        goto fail;
    if (stats != NULL)
        s_stats_register(self, stats);
    *err = 0;
    return self;
fail:
    pd_ingest_destroy(&self);
    return NULL;
}

void
pd_ingest_destroy(pd_ingest_t **ingp)
{
    if (ingp == NULL || *ingp == NULL)
        return;
    pd_ingest_t *self = *ingp;
    if (self->n_ahead > 0) {
        /* Read but never handled (the daemon is stopping on an error):
         * no answer; the clients resend elsewhen. */
        pd_pool_wait(self->pool);
        s_finish(self, self->ahead, self->n_ahead, -ECANCELED);
        self->n_ahead = 0;
    }
    parley__arena_reset(&self->arena);
    free(self->arena_buf);
    free(self->scratch);
    free(self->slots);
    free(self->waiting);
    pd_limit_destroy(&self->limit);
    pd_pool_destroy(&self->pool);
    free(self);
    *ingp = NULL;
}
