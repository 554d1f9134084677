/*
 * cluster.c - the cluster storage: a JetStream stream as the log of the
 * cluster, followed into a local replica (cluster.h).
 *
 * Everything here runs on the loop thread; the backbone (backbone.h)
 * hands over what its threads produce as events, which commit() drains:
 * state changes, submit completions, stream records. A commit
 *
 *   1. takes the events, as many records as the local batch has room
 *      for (the rest wait in the backbone, whose fd stays readable);
 *   2. checks each record and appends it to the local replica (or a void
 *      record in its place), at its stream seq with the stream's time;
 *   3. commits the replica (one fdatasync) and so applies the records;
 *   4. resolves the submits whose seq is now applied here, in the order
 *      they are found, into completions for completed().
 *
 * A submit in flight is one s_pend_t, in a table indexed by ingest's tag
 * (ingest has at most S_PEND_CAP in flight, with the same tags, so a slot
 * is free whenever ingest has room). It lives through these states:
 *
 *   SUBMITTED  in the backbone; exactly one completion comes back
 *   WAITING    JetStream stored it (or a duplicate, or its subject moved
 *              on: conflict) at seq: wait until this node has applied
 *              seq, then decide by what the replica holds. After a
 *              conflict the backbone keeps the submit parked, and the
 *              signer's later submits behind it, until it is submitted
 *              again or abandoned: a signer's updates through one node
 *              keep their order.
 *   READY      done: completed() hands it out and frees the slot
 *
 * The follower (steps 1 and 2) is in cluster_follow.c; the struct the two
 * files share is in cluster_int.h.
 */
#include "cluster_int.h"

#include "backbone.h"
#include "clock.h"
#include "embedded.h"
#include "hash.h"
#include "log.h"
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
pd_cluster_log_id(const char *stream, int64_t created, uint8_t out[16])
{
    static const char ctx[] = "parley/log/v1";
    uint8_t le[8], h[32];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)((uint64_t)created >> (8 * i));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof(ctx) - 1);
    crypto_generichash_update(&st, (const uint8_t *)stream,
                              strlen(stream) + 1);
    crypto_generichash_update(&st, le, sizeof(le));
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(out, h, 16);
}

/* ============================================================ submits */

/* Finish p with rc (0: an ack of seq) and queue it for completed(). */
static void
s_ready(pd_cluster_t *self, s_pend_t *p, int rc, uint64_t seq, bool dup,
        uint64_t signer_seq, const char *detail)
{
    if (p->state == S_SUBMITTED || p->state == S_WAITING)
        pd_hash_del(self->by_sig, p->sig);
    if (p->state == S_WAITING && p->conflict)
        (void)pd_backbone_abandon(self->bb, p->tag, p->signer);
    p->state = S_READY;
    snprintf(p->detail, sizeof(p->detail), "%s", detail != NULL ? detail : "");
    p->done = (pd_storage_done_t){ .tag = p->tag,
                                   .rc = rc,
                                   .seq = rc == 0 ? seq : 0,
                                   .duplicate = rc == 0 && dup,
                                   .signer_seq = signer_seq,
                                   .detail = detail != NULL ? p->detail
                                                            : NULL };
    if (rc == PARLEY_EUNAVAILABLE)
        self->counters.unavailable++;
    self->ready[(self->ready_head + self->ready_n) % S_PEND_CAP] = p->tag;
    self->ready_n++;
}

/* A publish refused before JetStream was asked (the local log, the
 * node's state, the backbone's queue): count it. */
static void
s_count_refused(pd_cluster_t *self)
{
    self->counters.unavailable++;
    self->counters.ua_refused++;
}

/* Finish p unavailable, counting it under its cause (NULL: the
 * backbone's counters have it: a submit JetStream did not store). */
static void
s_unavailable(pd_cluster_t *self, s_pend_t *p, uint64_t *cause,
              const char *detail)
{
    if (cause != NULL)
        (*cause)++;
    s_ready(self, p, PARLEY_EUNAVAILABLE, 0, false, 0, detail);
}

/* The stream seq of the signer's last record this node knows of: what
 * its next update must expect on the subject. */
static uint64_t
s_expect(pd_cluster_t *self, const uint8_t *signer, const char *key_id)
{
    uint64_t signer_seq, seq = 0, v;
    if (!pd_embedded_signer_last(self->local, signer, &signer_seq, &seq))
        seq = 0;
    if (pd_hash_get(self->subject_last, key_id, &v) && v > seq)
        seq = v;
    return seq;
}

/*
 * Hand p to the backbone expecting expect_last on its subject. Returns 0,
 * PD_STORAGE_FULL (the backbone has max_inflight submits) or the reject
 * code with *detail; nothing was submitted then.
 */
static int
s_send(pd_cluster_t *self, s_pend_t *p, uint64_t expect_last,
       const char **detail)
{
    pd_backbone_submit_t bs = { .token = p->tag,
                                .signer = p->signer,
                                .signer_seq = p->signer_seq,
                                .expect_last = expect_last,
                                .data = p->env,
                                .len = p->len };
    int rc = pd_backbone_submit(self->bb, &bs);
    if (rc == 0) {
        p->state = S_SUBMITTED;
        self->counters.submits++;
        return 0;
    }
    if (rc == -EAGAIN) {
        *detail = "(too many updates in flight to JetStream)";
        return PD_STORAGE_FULL;
    }
    if (rc == -EMSGSIZE) {
        *detail = NULL;
        return PARLEY_ETOOLARGE;
    }
    *detail = rc == -ESTALE ? "(the stream diverged from this node's log)"
                            : "(the backbone refused the submit)";
    return PARLEY_EUNAVAILABLE;
}

/*
 * Why a publish is refused without asking JetStream, or NULL. Only what
 * a submit could not change: no server reachable (nats.c would hold the
 * message until it reconnects), the stream gone or diverged, following
 * stopped. Without a quorum the submit goes out all the same: it is
 * answered unavailable within the publish timeout while there is none,
 * and stored as soon as a leader is elected again.
 */
static const char *
s_refused(pd_cluster_t *self)
{
    if (self->stopped)
        return self->stopped_why;
    if (self->health == PD_BACKBONE_OK || self->health == PD_BACKBONE_NO_QUORUM)
        return NULL;
    return self->health_detail;
}

/*
 * What this node can answer without JetStream: check 8 against what it
 * has applied (a refusal is cluster-wide too: a signer's last signer_seq
 * only grows; what passes, JetStream decides), and whether anything can
 * be stored now. Returns 1 to go on to JetStream, else the submit's
 * answer (done filled).
 */
static int
s_local_answer(pd_cluster_t *self, const pd_storage_update_t *u,
               pd_storage_done_t *done)
{
    uint64_t orig = 0, last = 0;
    int rc = pd_embedded_check(self->local, u->signer, u->update->signer_seq,
                               u->env, u->len, &orig, &last);
    if (rc == 0) {
        done->seq = orig;
        done->duplicate = true;
        /* In the local log but not durable (its disk failed): no ack. */
        if (orig > pd_storage_head(self->local)) {
            s_count_refused(self);
            return PARLEY_EUNAVAILABLE;
        }
        return PD_STORAGE_DONE;
    }
    if (rc < 0) {
        done->rc = rc;
        done->signer_seq = last;
        return rc;
    }
    /* The local log cannot take records now: nothing new would be
     * applied here, so nothing new is acked (the reason is the local
     * storage's health, which ingest tells the client). */
    pd_storage_health_t lh;
    pd_storage_health(self->local, &lh);
    if (lh.err != 0) {
        s_count_refused(self);
        return PARLEY_EUNAVAILABLE;
    }
    const char *why = s_refused(self);
    if (why != NULL) {
        s_count_refused(self);
        done->rc = PARLEY_EUNAVAILABLE;
        done->detail = why;
        return PARLEY_EUNAVAILABLE;
    }
    return 1;
}

/* Fill the free pend p with the update u: a copy of its bytes, its
 * signature (a record of the stream with it and the same bytes needs no
 * second signature check). Returns 0 or PARLEY_EUNAVAILABLE. */
static int
s_pend_fill(pd_cluster_t *self, s_pend_t *p, const pd_storage_update_t *u)
{
    parley__envelope_t env;
    parley__arena_t arena;
    uint8_t space[PARLEY__VERIFY_ARENA];
    parley__arena_init(&arena, space, sizeof(space));
    int rc = parley__envelope_decode(u->env, u->len, &env, &arena);
    if (rc == 0)
        memcpy(p->sig, env.signature, sizeof(p->sig));
    parley__arena_reset(&arena);
    if (rc < 0) /* it decoded in ingest: cannot happen */
        return PARLEY_EUNAVAILABLE;
    if ((p->env = malloc(u->len)) == NULL
        || pd_hash_reserve(self->by_sig, 1) < 0) {
        free(p->env);
        p->env = NULL;
        return PARLEY_EUNAVAILABLE;
    }
    memcpy(p->env, u->env, u->len);
    p->len = u->len;
    p->tag = u->tag;
    memcpy(p->signer, u->signer, PARLEY_PUBLICKEY_BYTES);
    parley_key_id(u->signer, p->key_id);
    p->signer_seq = u->update->signer_seq;
    p->conflict = p->dup = false;
    p->conflicts = 0;
    return 0;
}

static int
s_submit(pd_storage_t *base, const pd_storage_update_t *u,
         pd_storage_done_t *done)
{
    pd_cluster_t *self = (pd_cluster_t *)base;
    *done = (pd_storage_done_t){ .tag = u->tag };
    int rc = s_local_answer(self, u, done);
    if (rc != 1)
        return rc;
    s_pend_t *p = &self->pend[u->tag % S_PEND_CAP];
    if (p->state != S_FREE)
        return PD_STORAGE_FULL;
    if ((rc = s_pend_fill(self, p, u)) != 0) {
        s_count_refused(self);
        done->rc = rc;
        return rc;
    }
    const char *detail = NULL;
    if ((rc = s_send(self, p, s_expect(self, p->signer, p->key_id),
                     &detail)) != 0) {
        free(p->env);
        p->env = NULL;
        p->state = S_FREE;
        if (rc == PD_STORAGE_FULL)
            return rc;
        if (rc == PARLEY_EUNAVAILABLE)
            s_count_refused(self);
        done->rc = rc;
        done->detail = detail;
        return rc;
    }
    (void)pd_hash_put(self->by_sig, p->sig, p->tag); /* room reserved */
    return PD_STORAGE_LATER;
}

/* A submit completed in the backbone. */
void
pd_cluster__on_submitted(pd_cluster_t *self, const pd_backbone_event_t *ev)
{
    s_pend_t *p = pd_cluster__pend_of(self, ev->token);
    if (p == NULL || p->state != S_SUBMITTED) {
        pd_log(PD_LOG_ERROR, "cluster: a completion for no submit (token "
                             "%" PRIu64 ")",
               ev->token);
        return;
    }
    switch (ev->result) {
    case PD_BACKBONE_STORED:
    case PD_BACKBONE_CONFLICT:
        if (ev->seq == 0) {
            s_unavailable(self, p, &self->counters.ua_jetstream,
                          "(JetStream answered without a seq)");
            return;
        }
        p->conflict = ev->result == PD_BACKBONE_CONFLICT;
        if (p->conflict) {
            self->counters.conflicts++;
        } else if (!ev->duplicate) {
            /* The subject's last is this now, applied here or not: the
             * signer's next update expects it. */
            uint64_t v;
            if (!pd_hash_get(self->subject_last, p->key_id, &v)
                || ev->seq > v)
                (void)pd_hash_put(self->subject_last, p->key_id, ev->seq);
        }
        p->dup = ev->duplicate;
        p->seq = ev->seq;
        p->state = S_WAITING;
        p->deadline = parley__mono_ms() + self->apply_wait_ms;
        p->give_up = p->deadline
                     + (int64_t)(S_APPLY_WAITS_MAX - 1) * self->apply_wait_ms;
        self->waiting[self->n_waiting++] = p->tag;
        return;
    case PD_BACKBONE_UNAVAILABLE:
        s_unavailable(self, p, NULL, ev->detail);
        return;
    case PD_BACKBONE_REFUSED:
        if (strstr(ev->detail, "maximum") != NULL)
            s_ready(self, p, PARLEY_ETOOLARGE, 0, false, 0, ev->detail);
        else
            s_unavailable(self, p, &self->counters.ua_jetstream, ev->detail);
        return;
    }
}

/*
 * p waits for seq and this node has applied it: decide by what the
 * replica holds. Returns true if p is done (READY), false if it was
 * submitted again (after a conflict).
 */
static bool
s_resolve(pd_cluster_t *self, s_pend_t *p)
{
    int64_t at;
    size_t got = 0;
    int rc = pd_storage_read(self->local, p->seq, &at, self->record,
                             self->max_record, &got);
    if (rc < 0)
        got = 0;
    if (got == p->len && memcmp(self->record, p->env, got) == 0) {
        /* After a conflict: the subject's last is these very bytes, kept
         * before (a resend's original). */
        s_ready(self, p, 0, p->seq, p->dup || p->conflict, 0, NULL);
        return true;
    }
    /* Not these bytes at seq: what does the replica say of them? A fresh
     * store (no duplicate, no conflict) at seq with other bytes here is
     * no resend's original nor a replay, whatever else the replica holds:
     * only a void record (below) explains it; anything else is a replica
     * that disagrees with the leader, never to be acked under another
     * seq. */
    bool fresh = !p->dup && !p->conflict;
    uint64_t orig = 0, last = 0;
    rc = pd_embedded_check(self->local, p->signer, p->signer_seq, p->env,
                           p->len, &orig, &last);
    if (rc == 0 && !fresh) { /* kept under another seq: a resend's original */
        s_ready(self, p, 0, orig, true, 0, NULL);
        return true;
    }
    if (rc < 0 && !fresh) {
        s_ready(self, p, rc, 0, false, last, NULL);
        return true;
    }
    if (p->conflict) {
        /* The subject moved on, with nothing of this signer's at or above
         * our signer_seq: submit again expecting what it holds now. */
        if (++p->conflicts > S_CONFLICTS_MAX) {
            pd_log_limited(PD_LOG_KEY_CLUSTER_SUBMIT, PD_LOG_WARN,
                           "cluster: an update of signer %s met %d "
                           "conflicts on its subject (last at seq %" PRIu64
                           "); answered unavailable",
                           p->key_id, S_CONFLICTS_MAX + 1, p->seq);
            s_unavailable(self, p, &self->counters.ua_conflicts,
                          "(the signer's subject kept changing; resend)");
            return true;
        }
        uint64_t expect = s_expect(self, p->signer, p->key_id);
        if (p->seq > expect)
            expect = p->seq;
        if (pd_backbone_resubmit(self->bb, p->tag, p->signer, expect) == 0) {
            p->state = S_SUBMITTED;
            self->counters.submits++;
            return false;
        }
        s_unavailable(self, p, &self->counters.ua_refused,
                      "(the backbone refused the submit)");
        return true;
    }
    if (p->dup) {
        /* JetStream holds this (signer, signer_seq) with other bytes,
         * which the nodes refused: the signer_seq is taken all the same. */
        s_ready(self, p, PARLEY_EREPLAY, 0, false, last, NULL);
        return true;
    }
    int reason = 0;
    if (pd_embedded_void_parse(self->record, got, &reason, NULL)
        && reason != 0) {
        s_ready(self, p, reason, 0, false, last,
                "(stored, then refused by the nodes' own check of the "
                "stream)");
        return true;
    }
    pd_log(PD_LOG_ERROR, "cluster: JetStream stored an update as seq %" PRIu64
                         " but this node holds other bytes there",
           p->seq);
    s_unavailable(self, p, &self->counters.ua_mismatch,
                  "(this node holds other bytes at the seq JetStream named)");
    return true;
}

/*
 * Resolve the waiting submits whose seq is applied; give up on the
 * others only when this node does not get there. A stored publish is
 * answered once this node has applied its seq, and a node that follows
 * a replica lagging behind the quorum, or confirms records with the
 * stream leader more slowly than the others publish, can be seconds
 * behind the seq JetStream named while it applies record after record.
 * So a wait ends unavailable once the node has applied nothing for
 * apply_wait_ms (no leader to confirm records, its consumer gone: it
 * cannot say when it will get there), or after S_APPLY_WAITS_MAX of them
 * in all (it is that far behind).
 */
static void
s_resolve_waiting(pd_cluster_t *self)
{
    uint64_t head = pd_storage_head(self->local);
    int64_t now = parley__mono_ms();
    if (head != self->progress_head || self->n_waiting == 0) {
        self->progress_head = head;
        self->progress_ms = now;
    }
    bool stuck = now - self->progress_ms >= (int64_t)self->apply_wait_ms;
    size_t m = 0;
    for (size_t i = 0; i < self->n_waiting; i++) {
        s_pend_t *p = pd_cluster__pend_of(self, self->waiting[i]);
        if (p == NULL || p->state != S_WAITING)
            continue;
        if (p->seq <= head) {
            (void)s_resolve(self, p); /* done, or submitted again */
            continue;
        }
        if ((now >= p->deadline && stuck) || now >= p->give_up) {
            char why[S_DETAIL_MAX];
            snprintf(why, sizeof(why),
                     "(stored as seq %" PRIu64 ", but this node has not "
                     "applied it yet: resend, it is then a duplicate)",
                     p->seq);
            pd_backbone_status_t st;
            pd_backbone_status(self->bb, &st);
            pd_log_limited(PD_LOG_KEY_CLUSTER_SUBMIT, PD_LOG_WARN,
                           "cluster: seq %" PRIu64 " stored for a publish "
                           "here, not applied here in %lld ms (applied up "
                           "to %" PRIu64 ", %s; handed over up to %" PRIu64
                           ", read up to %" PRIu64 ", the stream's last %"
                           PRIu64 " via %s, leader %s; checks unanswered %"
                           PRIu64 ", absent %" PRIu64 "); answered "
                           "unavailable",
                           p->seq,
                           (long long)(now - p->deadline + self->apply_wait_ms),
                           head,
                           stuck ? "nothing applied for a publish timeout"
                                 : "too far behind",
                           st.followed, st.read, st.stream_last, st.server,
                           st.leader, st.check_unanswered, st.check_absent);
            s_unavailable(self, p, &self->counters.ua_unapplied, why);
            continue;
        }
        self->waiting[m++] = p->tag;
    }
    self->n_waiting = m;
}

/* ============================================================ the seam */

static int
s_commit(pd_storage_t *base)
{
    pd_cluster_t *self = (pd_cluster_t *)base;
    int rc = pd_cluster__drain(self);
    if (rc < 0)
        return rc;
    /* Unavailable (the local disk): the records taken stay queued in
     * the replica, the rest wait in the backbone; ingest retries. */
    rc = pd_storage_commit(self->local);
    if (rc < 0 && rc != PARLEY_EUNAVAILABLE)
        return rc;
    s_resolve_waiting(self);
    return rc;
}

static bool
s_completed(pd_storage_t *base, pd_storage_done_t *done)
{
    pd_cluster_t *self = (pd_cluster_t *)base;
    if (self->ready_n == 0)
        return false;
    uint64_t tag = self->ready[self->ready_head];
    self->ready_head = (self->ready_head + 1) % S_PEND_CAP;
    self->ready_n--;
    s_pend_t *p = pd_cluster__pend_of(self, tag);
    if (p == NULL || p->state != S_READY)
        return false; /* cannot happen */
    *done = p->done;
    free(p->env);
    p->env = NULL;
    p->state = S_FREE;
    return true;
}

static bool
s_applied(pd_storage_t *base, pd_storage_record_t *rec)
{
    return pd_storage_applied(((pd_cluster_t *)base)->local, rec);
}

static uint64_t
s_head(const pd_storage_t *base)
{
    return pd_storage_head(((const pd_cluster_t *)base)->local);
}

static uint64_t
s_first(const pd_storage_t *base)
{
    return pd_storage_first(((const pd_cluster_t *)base)->local);
}

static int
s_read(pd_storage_t *base, uint64_t seq, int64_t *received_at, void *buf,
       size_t cap, size_t *len)
{
    return pd_storage_read(((pd_cluster_t *)base)->local, seq, received_at,
                           buf, cap, len);
}

static int
s_latest(const pd_storage_t *base, pd_entry_want_fn want, void *ctx,
         pd_entry_t **entries)
{
    return pd_storage_latest(((const pd_cluster_t *)base)->local, want, ctx,
                             entries);
}

static int
s_retain(pd_storage_t *base, int64_t now_ms)
{
    return pd_storage_retain(((pd_cluster_t *)base)->local, now_ms);
}

static int
s_check_local(pd_storage_t *base)
{
    return pd_storage_check(((pd_cluster_t *)base)->local);
}

/* The write side's health is the local log's: JetStream's state is in
 * state() and in each reject's detail. */
static void
s_health(const pd_storage_t *base, pd_storage_health_t *out)
{
    pd_storage_health(((const pd_cluster_t *)base)->local, out);
}

static int
s_fd(const pd_storage_t *base)
{
    return pd_backbone_fd(((const pd_cluster_t *)base)->bb);
}

static void
s_state(const pd_storage_t *base, pd_storage_state_t *out)
{
    const pd_cluster_t *self = (const pd_cluster_t *)base;
    memcpy(out->log_id, self->log_id, sizeof(out->log_id));
    out->catching_up = self->catching_up || self->held_buf != NULL
                       || self->stopped;
    out->health = self->stopped ? "stopped"
                                : pd_backbone_health_name(self->health);
}

static void
s_set_keyring(pd_storage_t *base, const parley_keyring_t *ring)
{
    ((pd_cluster_t *)base)->ring = ring;
}

static void
s_destroy(pd_storage_t *base)
{
    pd_cluster_t *self = (pd_cluster_t *)base;
    pd_backbone_close(&self->bb);
    pd_storage_destroy(&self->local);
    for (size_t i = 0; self->pend != NULL && i < S_PEND_CAP; i++)
        free(self->pend[i].env);
    free(self->pend);
    free(self->ready);
    free(self->waiting);
    pd_hash_destroy(&self->by_sig);
    pd_hash_destroy(&self->subject_last);
    free(self->held_buf);
    free(self->record);
    free(self);
}

static const pd_storage_ops_t s_ops = {
    .name = "cluster",
    .submit = s_submit,
    .commit = s_commit,
    .completed = s_completed,
    .applied = s_applied,
    .head = s_head,
    .first = s_first,
    .read = s_read,
    .latest = s_latest,
    .retain = s_retain,
    .check = s_check_local,
    .health = s_health,
    .destroy = s_destroy,
    .fd = s_fd,
    .state = s_state,
    .set_keyring = s_set_keyring,
};

/* ============================================================ setup */

static uint64_t
s_stat_catching_up(const void *ctx)
{
    pd_storage_state_t st;
    s_state(ctx, &st);
    return st.catching_up;
}

static uint64_t
s_stat_healthy(const void *ctx)
{
    const pd_cluster_t *self = ctx;
    return !self->stopped && self->health == PD_BACKBONE_OK;
}

static uint64_t
s_stat_stream_last(const void *ctx)
{
    pd_backbone_status_t st;
    pd_backbone_status(((const pd_cluster_t *)ctx)->bb, &st);
    return st.stream_last;
}

static uint64_t
s_stat_reconnects(const void *ctx)
{
    pd_backbone_status_t st;
    pd_backbone_status(((const pd_cluster_t *)ctx)->bb, &st);
    return st.reconnects;
}

static uint64_t
s_stat_rereads(const void *ctx)
{
    pd_backbone_status_t st;
    pd_backbone_status(((const pd_cluster_t *)ctx)->bb, &st);
    return st.rereads;
}

/* Submits JetStream left unanswered within the publish timeout (and
 * those queued behind them on their subject). */
static uint64_t
s_stat_ua_timeout(const void *ctx)
{
    pd_backbone_status_t st;
    pd_backbone_status(((const pd_cluster_t *)ctx)->bb, &st);
    return st.timeouts;
}

/* Submits not stored otherwise: no server served the stream (no leader),
 * none connected, or JetStream answered with an error. */
static uint64_t
s_stat_ua_jetstream(const void *ctx)
{
    const pd_cluster_t *self = ctx;
    pd_backbone_status_t st;
    pd_backbone_status(self->bb, &st);
    return st.unavailable - st.timeouts + self->counters.ua_jetstream;
}

static void
s_stats_register(pd_cluster_t *self, pd_stats_t *st)
{
    const s_counters_t *c = &self->counters;
    pd_stats_counter(st, PD_STAT_CLUSTER_RECORDS_APPLIED, &c->applied);
    pd_stats_counter(st, PD_STAT_CLUSTER_RECORDS_VOIDED, &c->voided);
    pd_stats_counter(st, PD_STAT_CLUSTER_SUBMITS, &c->submits);
    pd_stats_counter(st, PD_STAT_CLUSTER_CONFLICTS, &c->conflicts);
    pd_stats_counter(st, PD_STAT_CLUSTER_UNAVAILABLE, &c->unavailable);
    pd_stats_getter(st, PD_STAT_CLUSTER_CATCHING_UP, s_stat_catching_up,
                    self);
    pd_stats_getter(st, PD_STAT_CLUSTER_HEALTHY, s_stat_healthy, self);
    pd_stats_getter(st, PD_STAT_CLUSTER_STREAM_LAST, s_stat_stream_last,
                    self);
    pd_stats_getter(st, PD_STAT_CLUSTER_RECONNECTS, s_stat_reconnects, self);
    pd_stats_getter(st, PD_STAT_CLUSTER_RECORDS_REREAD, s_stat_rereads, self);
    pd_stats_counter(st, PD_STAT_CLUSTER_UNAVAILABLE_REFUSED, &c->ua_refused);
    pd_stats_getter(st, PD_STAT_CLUSTER_UNAVAILABLE_TIMEOUT, s_stat_ua_timeout,
                    self);
    pd_stats_getter(st, PD_STAT_CLUSTER_UNAVAILABLE_JETSTREAM,
                    s_stat_ua_jetstream, self);
    pd_stats_counter(st, PD_STAT_CLUSTER_UNAVAILABLE_UNAPPLIED,
                     &c->ua_unapplied);
    pd_stats_counter(st, PD_STAT_CLUSTER_UNAVAILABLE_CONFLICTS,
                     &c->ua_conflicts);
    pd_stats_counter(st, PD_STAT_CLUSTER_UNAVAILABLE_MISMATCH,
                     &c->ua_mismatch);
}

/*
 * The state directory must be a replica of this very stream: its
 * cluster.id names the stream and its creation time. A directory without
 * one is made a replica only while its log is empty. Returns 0 or -EEXIST
 * / -errno (logged).
 */
static int
s_check_identity(pd_cluster_t *self, const char *dir, int64_t created)
{
    char path[PD_CONFIG_PATH_MAX + 16], tmp[PD_CONFIG_PATH_MAX + 24];
    char want[128], have[128] = "";
    snprintf(path, sizeof(path), "%s/" S_ID_FILE, dir);
    snprintf(want, sizeof(want), "stream %s created %" PRId64 "\n",
             self->stream, created);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, have, sizeof(have) - 1);
        close(fd);
        have[n > 0 ? n : 0] = '\0';
        if (strcmp(have, want) == 0)
            return 0;
        have[strcspn(have, "\n")] = '\0';
        pd_log(PD_LOG_ERROR,
               "cluster: %s says this state directory is a replica of "
               "\"%s\", but the stream now is \"stream %s created %" PRId64
               "\" (made again, or another stream): its seqs are not this "
               "log's. Move the state directory aside to follow the stream "
               "from an empty one (docs/cluster.md)",
               path, have, self->stream, created);
        return -EEXIST;
    }
    if (errno != ENOENT) {
        int rc = -errno;
        pd_log(PD_LOG_ERROR, "cluster: cannot read %s: %s", path,
               strerror(errno));
        return rc;
    }
    if (pd_storage_head(self->local) > 0) {
        pd_log(PD_LOG_ERROR,
               "cluster: the state directory %s holds a log (up to seq "
               "%" PRIu64 ") that is not a replica of stream %s (no %s): a "
               "cluster node starts from an empty state directory "
               "(docs/cluster.md)",
               dir, pd_storage_head(self->local), self->stream, S_ID_FILE);
        return -EEXIST;
    }
    /* Made anew, readable by the daemon's user alone; a file or symlink
     * planted at the temporary name is removed, not written through. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (unlink(tmp) != 0 && errno != ENOENT) {
        int rc = -errno;
        pd_log(PD_LOG_ERROR, "cluster: cannot remove %s: %s", tmp,
               strerror(errno));
        return rc;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    int rc = 0;
    if (fd < 0 || write(fd, want, strlen(want)) != (ssize_t)strlen(want)
        || fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    int dfd = rc == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        if (fsync(dfd) < 0)
            rc = -errno;
        close(dfd);
    }
    if (rc < 0)
        pd_log(PD_LOG_ERROR, "cluster: cannot write %s: %s", path,
               strerror(-rc));
    return rc;
}

/* The backbone's options from parleyd's configuration. */
static void
s_backbone_opts(const pd_config_t *cfg, pd_backbone_opts_t *o, char *name,
                size_t cap)
{
    pd_backbone_opts_defaults(o);
    o->servers = cfg->backbone;
    o->stream = cfg->backbone_stream;
    o->replicas = cfg->backbone_replicas;
    o->max_clock_skew = cfg->max_clock_skew;
    o->duplicate_window = cfg->backbone_duplicate_window;
    o->retention_bytes = cfg->retention_bytes;
    o->retention_age = cfg->retention_age;
    o->max_message_bytes = cfg->max_message_bytes;
    o->publish_timeout_ms = cfg->backbone_publish_timeout;
#define S_OPT(field, key) o->field = cfg->key[0] != '\0' ? cfg->key : NULL
    S_OPT(creds_file, backbone_creds);
    S_OPT(tls_ca_file, backbone_tls_ca);
    S_OPT(tls_cert_file, backbone_tls_cert);
    S_OPT(tls_key_file, backbone_tls_key);
    S_OPT(tls_hostname, backbone_tls_hostname);
#undef S_OPT
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(name, cap, "parleyd %s %ld", host, (long)getpid());
    o->name = name;
}

/*
 * A node with an empty state directory starts its log where the stream
 * starts now. With the transparency log (tree: a scan observer is set)
 * that must be seq 1: the tree has one leaf per seq from 1, and the
 * hashes of records retention removed are nowhere but in another node's
 * tree.hashes. Returns 0 or -EEXIST (logged, with what to do).
 */
static int
s_check_tree_start(pd_cluster_t *self, bool tree, uint64_t stream_first)
{
    if (!tree || pd_embedded_next_seq(self->local) != 1 || stream_first <= 1)
        return 0;
    pd_log(PD_LOG_ERROR,
           "cluster: stream %s starts at seq %" PRIu64 " (retention removed "
           "the records before it) and this node's log is empty: its "
           "transparency log cannot start there. Start the node from a "
           "copy of another node's state directory (with tree.hashes), or "
           "with transparency off (docs/transparency.md section 16)",
           self->stream, stream_first);
    return -EEXIST;
}

pd_storage_t *
pd_cluster_open(const pd_config_t *cfg, pd_stats_t *stats,
                const pd_storage_scan_t *scan, int *err)
{
    pd_cluster_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->base.ops = &s_ops;
    snprintf(self->stream, sizeof(self->stream), "%s", cfg->backbone_stream);
    self->skew_ms = (int64_t)cfg->max_clock_skew * 1000;
    self->apply_wait_ms = cfg->backbone_publish_timeout;
    self->max_record = cfg->max_message_bytes;
    self->pend = calloc(S_PEND_CAP, sizeof(*self->pend));
    self->ready = calloc(S_PEND_CAP, sizeof(*self->ready));
    self->waiting = calloc(S_PEND_CAP, sizeof(*self->waiting));
    self->record = malloc(self->max_record);
    self->by_sig = pd_hash_new(PARLEY_SIGNATURE_BYTES);
    self->subject_last = pd_hash_new(PARLEY_KEYID_CHARS);
    if (self->pend == NULL || self->ready == NULL || self->waiting == NULL
        || self->record == NULL || self->by_sig == NULL
        || self->subject_last == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    if ((self->local = pd_embedded_open(cfg, stats, scan, err)) == NULL)
        goto fail;

    pd_backbone_opts_t o;
    char name[128], errbuf[1024] = "";
    s_backbone_opts(cfg, &o, name, sizeof(name));
    pd_log(PD_LOG_INFO, "cluster: connecting to %s (stream %s, %u replicas)",
           cfg->backbone, self->stream, o.replicas);
    if ((self->bb = pd_backbone_open(&o, errbuf, sizeof(errbuf), err))
        == NULL) {
        pd_log(PD_LOG_ERROR, "cluster: %s", errbuf);
        goto fail;
    }
    pd_backbone_status_t st;
    pd_backbone_status(self->bb, &st);
    if ((*err = s_check_identity(self, cfg->state_dir, st.created)) < 0
        || (*err = s_check_tree_start(self, scan != NULL, st.stream_first))
               < 0)
        goto fail;
    pd_cluster_log_id(self->stream, st.created, self->log_id);
    /* As the backbone last told (nothing yet): its events bring changes. */
    self->health = PD_BACKBONE_OK;
    self->catching_up = false;
    uint64_t from = pd_embedded_next_seq(self->local);
    if ((*err = pd_backbone_follow(self->bb, from)) < 0)
        goto fail;
    pd_log(PD_LOG_INFO,
           "cluster: stream %s (last seq %" PRIu64 ") via %s; following "
           "from seq %" PRIu64,
           self->stream, st.stream_last, st.server, from);
    if (stats != NULL)
        s_stats_register(self, stats);
    *err = 0;
    return &self->base;
fail:
    s_destroy(&self->base);
    return NULL;
}

