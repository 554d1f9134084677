/*
 * backbone_follow.c - the backbone's follower (backbone.h, backbone.c's
 * head comment): the records its consumer delivers, its
 * subscription, the control thread, and follow and next.
 */
#include "backbone_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Follower message handler (the subscription's delivery thread). */
static void
s_on_record(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
            void *closure)
{
    (void)nc;
    (void)sub;
    s_fctx_t *fc = closure;
    pd_backbone_t *self = fc->bb;
    pd_backbone__name_thread("nats-follow");
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
        r->ck = S_CK_TODO;
        r->ask_id = 0;
        r->ask_deadline = 0;
        r->len = (size_t)(len > 0 ? len : 0);
        if (r->len > 0)
            memcpy(r->data, natsMsg_GetData(msg), r->len);
        pd_backbone__subject_key(self->prefix, natsMsg_GetSubject(msg),
                                 r->key_id);
    }
    jsMsgMetaData_Destroy(meta);
    natsMsg_Destroy(msg);

    s_ask_t asks[S_CHECK_WINDOW + 1];
    int n_asks = 0;
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
        pd_backbone__state_locked(self);
    } else if (fc->gen == self->fgen && !self->paused
               && r->seq >= self->follow_next) {
        pd_backbone__recs_append(&self->raw_head, &self->raw_tail, r);
        self->raw_n++;
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
            pd_backbone__state_locked(self);
        }
        /* Ask the leader about it if it is in the window. */
        n_asks = pd_backbone__check_advance_locked(self, asks);
    }
    pthread_mutex_unlock(&self->mu);
    free(r);
    pd_backbone__check_send(self, asks, n_asks);
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
    /* A plain ephemeral push consumer, configured as nats.c configures an
     * ordered one, but without nats.c's ordered mode: this follower
     * already starts over by itself on a gap (s_on_record) and on silence
     * (s_stall_check_locked), and nats.c 3.4.1's ordered mode recreates
     * the consumer on a thread of its own that can race an unsubscribe
     * of the same subscription. */
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    so.Config.AckPolicy = js_AckNone;
    so.Config.MaxDeliver = 1;
    so.Config.FlowControl = true;
    so.Config.Heartbeat = (int64_t)S_HEARTBEAT_MS * 1000000;
    so.Config.Replicas = 1;
    so.Config.MemoryStorage = true;
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
void
pd_backbone__follow_unsubscribe(pd_backbone_t *self)
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


/* Behind the stream, nothing queued, nothing arriving: the consumer is
 * gone (its server died); a new generation makes a new one. mu held. */
static void
s_stall_check_locked(pd_backbone_t *self)
{
    int64_t now = parley__mono_ms();
    if (self->fsub != NULL && !self->paused && !self->diverged
        && self->stream_last_known && self->stream_last >= self->follow_next
        && self->rec_n == 0 && now - self->last_record_ms > S_STALL_MS
        && now - self->subscribed_ms > S_STALL_MS) {
        self->fgen++;
        self->catching = true;
        pd_backbone__state_locked(self);
    }
}

/* Probe the stream if connected (control thread, mu not held). */
static void
s_probe_if_up(pd_backbone_t *self)
{
    pthread_mutex_lock(&self->mu);
    bool conn_up = self->conn_up;
    pthread_mutex_unlock(&self->mu);
    if (conn_up)
        pd_backbone__probe(self);
}

void *
pd_backbone__ctl_main(void *arg)
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
            pd_backbone__wait_ms(&self->cv_ctl, &self->mu, next_probe - now);
            continue;
        }
        self->probe_now = false;
        pthread_mutex_unlock(&self->mu);
        if (unsub)
            pd_backbone__follow_unsubscribe(self);
        if (sub && !s_follow_subscribe(self))
            sub_after = parley__mono_ms() + S_PROBE_MS;
        if (probe) {
            s_probe_if_up(self);
            next_probe = parley__mono_ms() + S_PROBE_MS;
        }
        pthread_mutex_lock(&self->mu);
        s_stall_check_locked(self);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
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
    pd_backbone__state_locked(self);
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
        ev->health = self->told_health = pd_backbone__health_locked(self);
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
        pd_backbone__state_locked(self);
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
