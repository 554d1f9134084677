/*
 * cluster_follow.c - the cluster storage's follower (cluster.h; the
 * commit's steps 1 and 2 in cluster.c's head comment): take the stream's
 * records from the backbone, check each one as any node would, and append
 * it to the local replica at its stream seq, or a void record in its
 * place (docs/cluster.md, "What a node checks").
 */
#include "cluster_int.h"

#include "embedded.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stop following for good (the reason is logged and said in ping). */
static void
s_stop(pd_cluster_t *self, const char *why)
{
    if (!self->stopped)
        pd_log(PD_LOG_ERROR, "cluster: stopped following stream %s: %s",
               self->stream, why);
    self->stopped = true;
    snprintf(self->stopped_why, sizeof(self->stopped_why), "(%.*s)",
             S_DETAIL_MAX - 1, why);
}

/*
 * Checks 1-5 of cluster.h for a record: on 0, signer and self->update
 * hold the update (self->verify's arena its memory: end it after use).
 * Returns 0 or the reason to void it.
 */
static int
s_check(pd_cluster_t *self, const s_rec_t *r,
        uint8_t signer[PARLEY_PUBLICKEY_BYTES])
{
    if (r->key_id[0] == '\0')
        return PARLEY_EMALFORMED;
    int rc = parley__verify_prepare(&self->verify, self->ring, r->data,
                                    r->len);
    if (rc != 0)
        return rc;
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_id(self->verify.env.signer, id);
    if (strcmp(id, r->key_id) != 0)
        return PARLEY_EMALFORMED;
    uint64_t tag;
    const s_pend_t *p = NULL;
    if (pd_hash_get(self->by_sig, self->verify.env.signature, &tag))
        p = pd_cluster__pend_of(self, tag);
    bool own = p != NULL && p->len == r->len
               && memcmp(p->env, r->data, r->len) == 0;
    if (!own && (rc = parley__verify_signature(&self->verify)) != 0)
        return rc;
    if ((rc = parley__verify_body(&self->verify, self->ring, &self->update,
                                  signer))
        != 0)
        return rc;
    int64_t window = 2 * self->skew_ms;
    if (self->update.issued_at < r->time_ms - window)
        return PARLEY_ESTALE;
    if (self->update.issued_at > r->time_ms + window)
        return PARLEY_EFUTURE;
    return 0;
}

/* Append r (checked now) or its void record. 0, PD_STORAGE_FULL or a
 * fatal error. */
static int
s_append(pd_cluster_t *self, const s_rec_t *r)
{
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    int reason = s_check(self, r, signer);
    int rc;
    char why[96] = "";
    if (reason == 0) {
        uint64_t orig = 0, last = 0;
        int order = pd_embedded_check(self->local, signer,
                                      self->update.signer_seq, r->data,
                                      r->len, &orig, &last);
        if (order == 0)
            snprintf(why, sizeof(why), " (the same bytes as seq %" PRIu64 ")",
                     orig);
        else if (order != 1)
            snprintf(why, sizeof(why),
                     " (signer_seq %" PRIu64 ", the signer's last %" PRIu64
                     ")",
                     self->update.signer_seq, last);
        if (order != 1)
            reason = PARLEY_EREPLAY;
    }
    if (reason == 0) {
        rc = pd_embedded_put(self->local, r->seq, r->time_ms, r->data, r->len,
                             signer, &self->update);
        parley__verify_end(&self->verify);
        if (rc == 0)
            self->counters.applied++;
        return rc;
    }
    parley__verify_end(&self->verify);
    rc = pd_embedded_put_void(self->local, r->seq, r->time_ms, reason,
                              r->key_id[0] != '\0' ? r->key_id : NULL);
    if (rc == 0) {
        self->counters.voided++;
        pd_log_limited(PD_LOG_KEY_CLUSTER, PD_LOG_WARN,
                       "cluster: stream record seq %" PRIu64 " (subject key "
                       "%s) refused: %s%s; kept as a void record",
                       r->seq, r->key_id[0] != '\0' ? r->key_id : "none",
                       parley_error_name(reason), why);
    }
    return rc;
}

/*
 * Take one record into the replica: fill a gap (retention ran ahead of
 * this node) with void records first. Returns 0 when r is in, 1 when it
 * must wait for room (the caller holds it), or a fatal error.
 */
static int
s_take(pd_cluster_t *self, const s_rec_t *r)
{
    uint64_t next = pd_embedded_next_seq(self->local);
    if (r->seq < next)
        return 0; /* held already (cannot happen: the backbone checks) */
    if (r->seq > next && pd_storage_head(self->local) == 0) {
        /* A new node: its replica starts where the stream does now. */
        int rc = pd_embedded_start_at(self->local, r->seq);
        if (rc < 0)
            return rc;
        pd_log(PD_LOG_INFO, "cluster: the stream starts at seq %" PRIu64
                            " (retention); so does this node's log",
               r->seq);
        next = r->seq;
    }
    if (r->seq - next > S_GAP_MAX) {
        char why[S_DETAIL_MAX];
        snprintf(why, sizeof(why),
                 "the stream dropped seqs %" PRIu64 "..%" PRIu64
                 " before this node read them; start it with an empty "
                 "state directory",
                 next, r->seq - 1);
        s_stop(self, why);
        return 1;
    }
    while (next < r->seq) {
        if (pd_embedded_room(self->local) < PD_EMBEDDED_VOID_BYTES)
            return 1;
        int rc = pd_embedded_put_void(self->local, next, r->time_ms,
                                      PARLEY_ETRUNCATED, NULL);
        if (rc == PD_STORAGE_FULL)
            return 1;
        if (rc < 0)
            return rc;
        self->counters.voided++;
        next++;
    }
    if (pd_embedded_room(self->local) < r->len
        || pd_embedded_room(self->local) < PD_EMBEDDED_VOID_BYTES)
        return 1;
    int rc = s_append(self, r);
    if (rc == PD_STORAGE_FULL)
        return 1;
    if (rc < 0)
        return rc;
    uint64_t last;
    if (r->key_id[0] != '\0'
        && (!pd_hash_get(self->subject_last, r->key_id, &last)
            || r->seq > last))
        pd_hash_put(self->subject_last, r->key_id, r->seq);
    return 0;
}

/* Keep r (its bytes are the backbone's until its next event) as the
 * held record. 0 or -ENOMEM. */
static int
s_hold(pd_cluster_t *self, const s_rec_t *r)
{
    if ((self->held_buf = malloc(r->len > 0 ? r->len : 1)) == NULL)
        return -ENOMEM;
    memcpy(self->held_buf, r->data, r->len);
    self->held_rec = *r;
    self->held_rec.data = self->held_buf;
    return 0;
}

/* A state change of the backbone. */
static void
s_on_state(pd_cluster_t *self, const pd_backbone_event_t *ev)
{
    if (ev->health != self->health)
        pd_log(ev->health == PD_BACKBONE_OK ? PD_LOG_INFO : PD_LOG_WARN,
               "cluster: %s: %s", pd_backbone_health_name(ev->health),
               ev->detail);
    if (ev->rereads > self->rereads)
        pd_log(PD_LOG_WARN, "cluster: %s", ev->detail);
    self->rereads = ev->rereads;
    if (ev->catching_up != self->catching_up) {
        /* What made the follower start over, so far (backbone.h). */
        pd_backbone_status_t st;
        pd_backbone_status(self->bb, &st);
        pd_log(PD_LOG_INFO,
               "cluster: %s (followed up to seq %" PRIu64 " of %" PRIu64
               "; since start: %" PRIu64 " subscriptions, %" PRIu64
               " pauses, %" PRIu64 " gaps, %" PRIu64 " re-reads, %" PRIu64
               " reconnects)",
               ev->catching_up ? "catching up with the stream"
                               : "caught up with the stream",
               st.followed, st.stream_last, st.subscribes, st.pauses, st.gaps,
               st.rereads, st.reconnects);
    }
    self->health = ev->health;
    self->catching_up = ev->catching_up;
    snprintf(self->health_detail, sizeof(self->health_detail), "(%s: %s)",
             pd_backbone_health_name(ev->health), ev->detail);
    if (ev->health == PD_BACKBONE_DIVERGED)
        s_stop(self, ev->detail);
}

/*
 * Step 1 and 2 of a commit: take the backbone's events while the batch
 * has room for a record. Returns 0 or a fatal error.
 */
int
pd_cluster__drain(pd_cluster_t *self)
{
    int rc;
    if (self->held_buf != NULL && self->ring != NULL && !self->stopped) {
        if ((rc = s_take(self, &self->held_rec)) < 0)
            return rc;
        if (rc == 1)
            return 0;
        free(self->held_buf);
        self->held_buf = NULL;
    }
    pd_backbone_event_t ev;
    while (self->held_buf == NULL
           && pd_embedded_room(self->local) >= self->max_record
           && pd_backbone_next(self->bb, &ev) == 1) {
        switch (ev.kind) {
        case PD_BACKBONE_EV_STATE:
            s_on_state(self, &ev);
            break;
        case PD_BACKBONE_EV_SUBMITTED:
            pd_cluster__on_submitted(self, &ev);
            break;
        case PD_BACKBONE_EV_RECORD:
            if (self->stopped)
                break; /* nothing is applied any more */
            s_rec_t r = { .seq = ev.seq, .time_ms = ev.time_ms,
                          .data = ev.data, .len = ev.len };
            memcpy(r.key_id, ev.key_id, sizeof(r.key_id));
            rc = self->ring != NULL ? s_take(self, &r) : 1;
            if (rc == 1)
                rc = s_hold(self, &r); /* until there is room, a keyring */
            if (rc < 0)
                return rc;
            break;
        }
    }
    return 0;
}
