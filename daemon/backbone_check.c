/*
 * backbone_check.c - the backbone's check of each record it read against
 * the stream leader's (backbone.h).
 *
 * The check: a record is handed over only once the stream leader holds
 * the very same record at its seq (same subject, bytes and store time).
 * The follower's consumer reads from whichever replica it was placed on,
 * and a replica of nats-server 2.9.10 can hold other records than the
 * leader (docs/cluster.md, "Replicas that disagree"). The follower's
 * handler queues records unchecked (raw); S_CHECK_WINDOW asker threads
 * ask the leader about the first raw records at once (one STREAM.MSG.GET
 * each, S_CHECK_WINDOW in flight), and the check thread takes the
 * answers strictly in seq order and moves each confirmed record to the
 * queue the loop drains. Wake-ups: a record that comes into the window
 * (queued, or the window moving on) wakes one asker, and an asker wakes
 * the check thread only with the answer it waits for (the first raw
 * record's). An answer that decides nothing (no leader to ask, none
 * there yet) is asked again S_CHECK_RETRY_MS later, when the record is
 * the first raw one. A record the leader holds otherwise is dropped
 * with everything read after it, and the follower reads again from its
 * seq with a new consumer (placed anew); after S_RECHECK_MAX such
 * re-reads of one seq in a row the backbone is DIVERGED.
 */
#include "backbone_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        snprintf(why, cap, "%s", pd_backbone__nats_text(s));
        return -1;
    }
    char key[PARLEY_KEYID_CHARS + 1];
    pd_backbone__subject_key(self, natsMsg_GetSubject(m), key);
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

/*
 * The leader holds another record at the seq of the first raw record:
 * drop it and every raw record after it, and read again from its seq
 * with a new subscription. mu held.
 */
static void
s_reread_locked(pd_backbone_t *self, const char *why)
{
    /* Askers read raw records unlocked: let them finish first. */
    self->ckgen++;
    self->ck_hold = true;
    while (self->asking > 0 && !self->closing)
        pthread_cond_wait(&self->cv_check, &self->mu);
    self->ck_hold = false;
    if (self->closing)
        return;
    self->why_seq = 0;
    uint64_t seq = self->raw_head->seq;
    for (s_rec_t *r = self->raw_head; r != NULL; r = r->next) {
        self->rec_n--;
        self->rec_bytes -= r->len;
    }
    pd_backbone__recs_free(self->raw_head);
    self->raw_head = self->raw_tail = NULL;
    self->raw_n = 0;
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
        pd_backbone__detail_locked(self,
                        "stream %s seq %" PRIu64 ": %s, read %d times: "
                        "the replicas diverged",
                        self->stream, seq, why, self->rechecks);
    } else if (!self->diverged) {
        pd_backbone__detail_locked(self, "stream %s seq %" PRIu64 ": %s; read again",
                        self->stream, seq, why);
    }
    self->state_dirty = true; /* the caller hears of every re-read */
    pd_backbone__signal_locked(self);
    pthread_cond_signal(&self->cv_ctl);
    pd_backbone__state_locked(self);
}

/*
 * After a re-read, a record confirmed: the replica read before may have
 * been right and the leader changed to one that holds other records.
 * Then the records already handed over are not the leader's any more:
 * the stream's history changed (diverged). mu held; dropped while asking.
 * Returns 1 to go on with r, 0 to look again (retry later, or
 * diverged), -1 when closing.
 */
static int
s_verify_prev_locked(pd_backbone_t *self, const s_rec_t *r)
{
    char why[PD_BACKBONE_DETAIL_MAX] = "";
    const s_rec_t *prev = self->last_ok;
    pthread_mutex_unlock(&self->mu);
    int kept = prev == NULL || prev->seq + 1 != r->seq
                   ? 1
                   : s_leader_has(self, prev, why, sizeof(why));
    pthread_mutex_lock(&self->mu);
    if (self->closing)
        return -1;
    if (kept == -1) {
        pd_backbone__wait_ms(&self->cv_check, &self->mu, S_CHECK_RETRY_MS);
        return 0;
    }
    /* None there (-2): retention may just have dropped it; only another
     * record there says the history changed. */
    if (kept == 0) {
        self->diverged = true;
        pd_backbone__detail_locked(self,
                                   "stream %s seq %" PRIu64 " (applied): "
                                   "%s: the leader changed its history",
                                   self->stream, prev->seq, why);
        pd_backbone__state_locked(self);
        return 0;
    }
    self->verify_prev = false;
    return 1;
}

/* The leader confirmed r, the first raw record: keep a copy of it (for
 * the check after a re-read) and queue it for the loop. mu held. */
static void
s_confirmed_locked(pd_backbone_t *self, s_rec_t *r)
{
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
    self->raw_n--;
    /* The window moved on by one: a record may have come into it. */
    if (self->raw_n >= S_CHECK_WINDOW)
        pthread_cond_signal(&self->cv_ask);
    pd_backbone__recs_append(&self->rec_head, &self->rec_tail, r);
    self->confirmed = r->seq;
    self->n_checked++;
    self->absent = 0;
    if (r->seq >= self->recheck_seq)
        self->rechecks = 0;
    pd_backbone__signal_locked(self);
}

/* The first raw record in the window of checks in flight that is to be
 * asked about now, or NULL. mu held. */
static s_rec_t *
s_askable_locked(const pd_backbone_t *self)
{
    if (!self->conn_up || self->diverged || self->ck_hold)
        return NULL;
    int i = 0;
    for (s_rec_t *x = self->raw_head; x != NULL && i < S_CHECK_WINDOW;
         x = x->next, i++)
        if (x->ck == S_CK_TODO)
            return x;
    return NULL;
}

void
pd_backbone__check_queued_locked(pd_backbone_t *self)
{
    if (self->raw_n <= S_CHECK_WINDOW)
        pthread_cond_signal(&self->cv_ask);
    /* Connected, the asker's answer wakes the check thread; if not, the
     * check thread says the leader is not asked and tries again later. */
    if (self->raw_n == 1 && !self->conn_up)
        pthread_cond_signal(&self->cv_check);
}

/* An asker thread (arg is the backbone): ask the leader about the first
 * raw record in the window nobody asks about, and leave the answer in it
 * for the check thread, until closing. An asker looks for work before it
 * waits, so one wake-up per record is enough: a record queued while every
 * asker is busy is taken by the first that finishes. */
static void *
s_ask_main(void *arg)
{
    pd_backbone_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (!self->closing) {
        s_rec_t *r = s_askable_locked(self);
        if (r == NULL) {
            pthread_cond_wait(&self->cv_ask, &self->mu);
            continue;
        }
        r->ck = S_CK_ASKING;
        self->asking++;
        uint64_t gen = self->ckgen;
        pthread_mutex_unlock(&self->mu);
        char why[PD_BACKBONE_DETAIL_MAX] = "";
        /* r stays alive: raw records are dropped only when asking == 0
         * (s_reread_locked) and taken off only once answered. */
        int has = s_leader_has(self, r, why, sizeof(why));
        pthread_mutex_lock(&self->mu);
        r->ck = has;
        if (gen == self->ckgen && has == 0
            && (self->why_seq == 0 || r->seq < self->why_seq)) {
            self->why_seq = r->seq;
            snprintf(self->why, sizeof(self->why), "%s", why);
        }
        self->asking--;
        /* The check thread waits for the first raw record's answer, or
         * (dropping raw records) for the last asker to finish. */
        if (r == self->raw_head || (self->ck_hold && self->asking == 0))
            pthread_cond_signal(&self->cv_check);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

/* The first raw record r had no answer that decides (no leader to ask, or
 * none there): ask again in S_CHECK_RETRY_MS. mu held. */
static void
s_later_locked(pd_backbone_t *self, s_rec_t *r)
{
    r->ck = S_CK_LATER;
    self->ck_retry_ms = parley__mono_ms() + S_CHECK_RETRY_MS;
}

/* Confirm raw records with the leader, in order, and queue them for the
 * loop (see the top of backbone_check.c). */
void *
pd_backbone__check_main(void *arg)
{
    pd_backbone_t *self = arg;
    pthread_t thr[S_CHECK_WINDOW];
    int n_thr = 0;
    while (n_thr < S_CHECK_WINDOW
           && pthread_create(&thr[n_thr], NULL, s_ask_main, self) == 0)
        n_thr++;
    pthread_mutex_lock(&self->mu);
    if (n_thr == 0) {
        /* No asker: nothing is ever confirmed; say so. */
        self->diverged = true;
        pd_backbone__detail_locked(self, "no thread to check records with "
                                         "the stream leader");
        pd_backbone__state_locked(self);
    }
    s_rec_t *stuck = NULL; /* the first raw record, left to ask before */
    while (!self->closing) {
        s_rec_t *r = self->raw_head;
        if (r == NULL || self->diverged || r->ck == S_CK_ASKING) {
            pthread_cond_wait(&self->cv_check, &self->mu);
            continue;
        }
        if (r->ck == S_CK_LATER) {
            int64_t wait = self->ck_retry_ms - parley__mono_ms();
            if (wait > 0) {
                pd_backbone__wait_ms(&self->cv_check, &self->mu, wait);
                continue;
            }
            /* Also wakes askers that found no connection before. */
            r->ck = S_CK_TODO;
            pthread_cond_broadcast(&self->cv_ask);
            continue;
        }
        if (r->ck == S_CK_TODO && self->conn_up) {
            /* An asker takes it (one may be woken already). Still not
             * taken a while later, the askers found no connection when
             * they last looked: wake them all. */
            if (r == stuck)
                pthread_cond_broadcast(&self->cv_ask);
            else
                pthread_cond_signal(&self->cv_ask);
            stuck = r;
            pd_backbone__wait_ms(&self->cv_check, &self->mu,
                                 S_CHECK_RETRY_MS);
            continue;
        }
        stuck = NULL;
        int has = r->ck == S_CK_TODO ? -1 : r->ck;
        char why[PD_BACKBONE_DETAIL_MAX] = "the leader holds none";
        if (has == 0)
            snprintf(why, sizeof(why), "%s",
                     self->why_seq == r->seq ? self->why
                                             : "the leader holds another");
        self->n_check_unanswered += has == -1;
        self->n_check_absent += has == -2;
        if (has == -2 && ++self->absent >= S_ABSENT_MAX)
            has = 0;
        if ((has == -1) != self->check_unanswered) {
            self->check_unanswered = has == -1;
            pd_backbone__state_locked(self);
        }
        if (has < 0) {
            s_later_locked(self, r);
            continue;
        }
        if (has == 0) {
            s_reread_locked(self, why);
            continue;
        }
        if (self->verify_prev) {
            int v = s_verify_prev_locked(self, r);
            if (v < 0)
                break;
            if (v == 0)
                continue;
        }
        s_confirmed_locked(self, r);
    }
    pthread_cond_broadcast(&self->cv_ask);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < n_thr; i++)
        pthread_join(thr[i], NULL);
    return NULL;
}
