/*
 * backbone_submit.c - the backbone's submits (backbone.h, backbone.c's
 * head comment): the in-flight tables, the subjects' queues, the PubAck
 * handler, the submit thread, and submit, resubmit and abandon.
 */
#include "backbone_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ============================================================ in-flight */

static size_t
s_hash64(uint64_t h, size_t cap)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & (cap - 1);
}

int
pd_backbone__tab_init(s_tab_t *t, size_t entries)
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
    pd_backbone__signal_locked(self);
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
 * after another (timed_out: the outage was a PubAck that did not come
 * in time; each of them counts in n_timeouts). Returns 0 if m is not a
 * submit, else 1 (the caller destroys m) or 2. mu held.
 */
static int
s_finish_locked(pd_backbone_t *self, natsMsg *m, pd_backbone_result_t result,
                bool dup, uint64_t seq, const char *detail, bool timed_out)
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
    if (result == PD_BACKBONE_UNAVAILABLE && timed_out)
        self->n_timeouts++;
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
                if (timed_out)
                    self->n_timeouts++;
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

/* What a PubAck (or its error) says of a submit. */
typedef struct {
    pd_backbone_result_t result;
    uint64_t seq;
    bool dup;
    bool quorum_lost;               /* unavailable: no answer, no leader */
    bool timed_out;                 /* unavailable: no answer in time */
    char detail[PD_BACKBONE_DETAIL_MAX];
} s_ack_t;

/* The outcome of a submit that JetStream did not store. */
static void
s_ack_error(const pd_backbone_t *self, const jsPubAckErr *pae, s_ack_t *a)
{
    if (pae != NULL && pae->ErrCode == JSStreamWrongLastSequenceErr) {
        a->result = PD_BACKBONE_CONFLICT;
        if (pd_backbone_parse_last_seq(pae->ErrText, &a->seq) != 0)
            a->seq = 0;
        snprintf(a->detail, sizeof(a->detail), "%s", pae->ErrText);
        return;
    }
    if (pae != NULL
        && (pae->ErrCode == JSStreamMessageExceedsMaximumErr
            || pae->Err == NATS_NOT_PERMITTED || pae->Err == NATS_MAX_PAYLOAD)) {
        a->result = PD_BACKBONE_REFUSED;
        snprintf(a->detail, sizeof(a->detail), "%s", pae->ErrText);
        return;
    }
    a->result = PD_BACKBONE_UNAVAILABLE;
    a->quorum_lost = true;
    natsStatus st = pae != NULL ? pae->Err : NATS_ERR;
    a->timed_out = st == NATS_TIMEOUT;
    if (st == NATS_TIMEOUT)
        snprintf(a->detail, sizeof(a->detail),
                 "no answer from the stream within %u ms",
                 self->publish_timeout_ms);
    else if (st == NATS_NO_RESPONDERS)
        snprintf(a->detail, sizeof(a->detail),
                 "no server serves the stream (no responders)");
    else
        snprintf(a->detail, sizeof(a->detail), "%s (%d)",
                 pae != NULL && pae->ErrText != NULL ? pae->ErrText : "error",
                 pae != NULL ? (int)pae->ErrCode : 0);
}

/*
 * PubAck handler (nats.c's reply-subscription thread): a positive ack, a
 * JetStream error, or nats.c's timeout after publish_timeout_ms.
 */
void
pd_backbone__on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa,
                       jsPubAckErr *pae, void *closure)
{
    (void)js;
    pd_backbone_t *self = closure;
    pd_backbone__name_thread("nats-puback");
    s_ack_t a = { .result = PD_BACKBONE_STORED };
    if (pa != NULL) {
        a.seq = pa->Sequence;
        a.dup = pa->Duplicate;
    } else {
        s_ack_error(self, pae, &a);
    }

    pthread_mutex_lock(&self->mu);
    int fin = s_finish_locked(self, msg, a.result, a.dup, a.seq, a.detail,
                              a.timed_out);
    if (fin != 0) {
        if (a.result == PD_BACKBONE_STORED) {
            self->submit_failed = false;
        } else if (a.quorum_lost && self->conn_up) {
            if (!self->submit_failed)
                pd_backbone__detail_locked(self, "stream %s: %s",
                                           self->stream, a.detail);
            self->submit_failed = true;
            self->submit_failed_ms = parley__mono_ms();
            self->probe_now = true;
            pthread_cond_signal(&self->cv_ctl);
        }
        pd_backbone__state_locked(self);
    }
    pthread_mutex_unlock(&self->mu);
    if (fin != 2)
        natsMsg_Destroy(msg);
}

/* ============================================================ threads */

/* Hand queued messages to nats.c; never holds mu while publishing. */
void *
pd_backbone__submit_main(void *arg)
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
                     pd_backbone__nats_text(s));
            pthread_mutex_lock(&self->mu);
            (void)s_finish_locked(self, batch[i], PD_BACKBONE_UNAVAILABLE,
                                  false, 0, detail, false); /* never parks */
            pthread_mutex_unlock(&self->mu);
            natsMsg_Destroy(batch[i]);
        }
        pthread_mutex_lock(&self->mu);
    }
    pthread_mutex_unlock(&self->mu);
    free(batch);
    return NULL;
}
/* ============================================================ loop API */

/* The natsMsg of a submit: its subject, Nats-Msg-Id and expected last
 * subject seq, with a copy of the bytes. NULL if out of memory. */
static natsMsg *
s_submit_msg(const pd_backbone_t *self, const pd_backbone_submit_t *in)
{
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
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

/* Enter m (waiting as w) in the in-flight map and behind its subject's
 * submits; release it if none is out. mu held. */
static void
s_queue_locked(pd_backbone_t *self, const pd_backbone_submit_t *in,
               natsMsg *m, s_wait_t *w)
{
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
}

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

    natsMsg *m = s_submit_msg(self, in);
    s_wait_t *w = m != NULL ? calloc(1, sizeof(*w)) : NULL;
    pthread_mutex_lock(&self->mu);
    if (w == NULL) {
        self->inflight--;
        pthread_mutex_unlock(&self->mu);
        natsMsg_Destroy(m);
        return -ENOMEM;
    }
    s_queue_locked(self, in, m, w);
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
