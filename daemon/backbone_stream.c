/*
 * backbone_stream.c - the backbone's stream (backbone.h): create it or
 * check that an existing one has parleyd's settings, and probe its
 * leader, quorum and last seq.
 */
#include "backbone_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Whether a stream made at created (ns since the epoch) is young. */
static bool
s_young(int64_t created)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t age = (int64_t)ts.tv_sec - created / S_NS_PER_S;
    return age > -S_YOUNG_S && age < S_YOUNG_S;
}

/* Whether si was answered by the stream's leader (or a single server,
 * which is the stream). */
static bool
s_led(const jsStreamInfo *si)
{
    return si->Cluster == NULL
           || (si->Cluster->Leader != NULL && si->Cluster->Leader[0] != '\0');
}

/*
 * Create the stream or check the existing one, retrying transient errors
 * until deadline. Returns 0, -EEXIST, -ETIMEDOUT or -EPROTO.
 *
 * The creation time is the log id's source, and in nats-server 2.9.10
 * a replica that has just made its copy of a stream reports its own
 * clock as the creation time until it takes the one of the stream's
 * assignment; while a new stream's group has no leader every replica
 * answers, and its first leaders answer too. So the creation time is
 * taken from a leader's answer, and for a young replicated stream (made
 * less than S_YOUNG_S ago) only once leaders' answers have given the
 * same one for S_SETTLE_MS. A leaderless answer is taken only after
 * S_LEADER_WAIT_MS without a leader (JetStream down: the node starts
 * on its local data, as before).
 */
int
pd_backbone__stream_ensure(pd_backbone_t *self, int64_t deadline, char *errbuf,
                size_t errlen)
{
    const char *last = "no answer";
    char lastbuf[256];
    int64_t leaderless_until = parley__mono_ms() + S_LEADER_WAIT_MS;
    int64_t seen = 0, seen_since = 0; /* a young stream's creation time */
    for (;;) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetStreamInfo(&si, self->js, self->stream, NULL,
                                        &jerr);
        int64_t now = parley__mono_ms();
        const char *wait = NULL;
        if (s == NATS_OK && !s_led(si) && now < leaderless_until)
            wait = "the stream has no leader yet";
        else if (s == NATS_OK && si->Cluster != NULL && s_led(si)
                 && s_young(si->Created)) {
            if (seen_since == 0 || si->Created != seen) {
                seen = si->Created;
                seen_since = now;
            }
            if (now - seen_since < S_SETTLE_MS)
                wait = "the new stream's creation time is settling";
        }
        if (wait != NULL && now + S_RETRY_MS < deadline) {
            jsStreamInfo_Destroy(si);
            last = wait;
            nats_Sleep(S_RETRY_MS);
            continue;
        }
        if (s == NATS_OK) {
            char diffs[1024];
            int n = s_stream_compare(self, si->Config, diffs, sizeof(diffs));
            uint64_t last_seq = si->State.LastSeq;
            uint64_t first_seq = si->State.FirstSeq;
            int64_t created = si->Created;
            jsStreamInfo_Destroy(si);
            if (n > 0) {
                pd_backbone__err(errbuf, errlen,
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
                pd_backbone__err(errbuf, errlen,
                      "backbone: %u replicas need a JetStream cluster, but "
                      "the server is not clustered (set the replicas to 1, "
                      "or cluster the servers)",
                      self->replicas);
                return -EPROTO;
            }
            if (!s_transient(s, jerr)) {
                pd_backbone__err(errbuf, errlen, "backbone: cannot create stream %s: %s",
                      self->stream, pd_backbone__nats_text(s));
                return -EPROTO;
            }
        } else if (!s_transient(s, jerr)) {
            pd_backbone__err(errbuf, errlen, "backbone: stream %s: %s", self->stream,
                  pd_backbone__nats_text(s));
            return -EPROTO;
        }
        snprintf(lastbuf, sizeof(lastbuf), "%s", pd_backbone__nats_text(s));
        last = lastbuf;
        if (parley__mono_ms() + S_RETRY_MS >= deadline)
            break;
        nats_Sleep(S_RETRY_MS);
    }
    pd_backbone__err(errbuf, errlen,
          "backbone: JetStream did not serve stream %s in time (last: %s)",
          self->stream, last);
    return -ETIMEDOUT;
}

/* What one probe of the stream found. */
typedef struct {
    natsStatus s;
    jsErrCode jerr;
    uint64_t held;          /* what the leader had confirmed before */
    uint64_t last, first;   /* the stream's seqs */
    char leader[64];
    bool quorum, led, remade;
    int current;            /* replicas current, the leader included */
} s_probe_t;

/* Ask JetStream (no lock held): fill pr. */
static void
s_probe_ask(pd_backbone_t *self, s_probe_t *pr)
{
    jsStreamInfo *si = NULL;
    pr->s = js_GetStreamInfo(&si, self->js, self->stream, NULL, &pr->jerr);
    if (pr->s != NATS_OK)
        return;
    pr->last = si->State.LastSeq;
    pr->first = si->State.FirstSeq;
    pr->led = s_led(si);
    /* Only a leader's creation time counts (see stream_ensure). */
    pr->remade = pr->led && si->Created != self->created;
    if (si->Cluster == NULL) {
        pr->quorum = true; /* a single server: it is the stream */
    } else if (pr->led) {
        snprintf(pr->leader, sizeof(pr->leader), "%s", si->Cluster->Leader);
        pr->current = 1;
        for (int i = 0; i < si->Cluster->ReplicasLen; i++) {
            const jsPeerInfo *p = si->Cluster->Replicas[i];
            if (p != NULL && p->Current && !p->Offline
                && p->Active < S_ACTIVE_MAX_NS)
                pr->current++;
        }
        pr->quorum = pr->current > (int)self->replicas / 2;
    }
    jsStreamInfo_Destroy(si);
}

/*
 * One probe answer for a streak: hit, it saw the fault; else, if counts,
 * the streak ends (an answer that does not count leaves it as it is).
 * Returns whether the fault now holds: three answers in a row over two
 * probe intervals at least.
 */
static bool
s_streak_step(s_streak_t *st, bool hit, bool counts, int64_t now)
{
    if (hit) {
        if (st->n++ == 0)
            st->since_ms = now;
    } else if (counts) {
        st->n = 0;
    }
    return st->n >= 3 && now - st->since_ms >= 2 * S_PROBE_MS;
}

/* A stream made again, or shorter than what the leader confirmed to
 * this node (only a leader's answer counts, and only three in a row over
 * two probe intervals at least: a new leader may still be applying its
 * log; a server that was paused answers the probes queued meanwhile at
 * once), has diverged for good. mu held. */
static void
s_probe_diverged_locked(pd_backbone_t *self, const s_probe_t *pr)
{
    int64_t now = parley__mono_ms();
    bool shorter = s_streak_step(&self->shorter, pr->led && pr->last < pr->held,
                                 true, now);
    bool remade = s_streak_step(&self->remade, pr->remade, pr->led, now);
    if (self->diverged || !(remade || shorter))
        return;
    self->diverged = true;
    if (remade)
        pd_backbone__detail_locked(self,
                                   "stream %s was made again (another "
                                   "creation time): its seqs are not this "
                                   "node's",
                                   self->stream);
    else
        pd_backbone__detail_locked(self,
                                   "stream %s ends at seq %" PRIu64 " but "
                                   "this node has followed it to seq %" PRIu64
                                   ": the stream lost records",
                                   self->stream, pr->last, pr->held);
}

/* The stream answered: its seqs, leader and quorum. mu held. */
static void
s_probe_answered_locked(pd_backbone_t *self, const s_probe_t *pr)
{
    s_probe_diverged_locked(self, pr);
    if (pr->last > self->stream_last)
        self->stream_last = pr->last;
    if (pr->led && pr->first > self->stream_first)
        self->stream_first = pr->first;
    if (self->conn_up)
        self->stream_last_known = true;
    snprintf(self->leader, sizeof(self->leader), "%s", pr->leader);
    if (self->diverged)
        ; /* keep saying why: it is final */
    else if (!pr->quorum && pr->leader[0] == '\0')
        pd_backbone__detail_locked(self, "stream %s has no leader",
                                   self->stream);
    else if (!pr->quorum)
        pd_backbone__detail_locked(self,
                                   "stream %s: leader %s hears %d of %u "
                                   "replicas",
                                   self->stream, pr->leader, pr->current,
                                   self->replicas);
    self->probe_quorum = pr->quorum;
    /* A probe that sees a quorum clears an old submit failure; a fresh
     * one outweighs it (a leader that lost its followers still reports
     * itself for a few seconds). */
    if (pr->quorum && self->submit_failed
        && parley__mono_ms() - self->submit_failed_ms > S_FAIL_HOLD_MS)
        self->submit_failed = false;
}

/* The stream did not answer. mu held. */
static void
s_probe_failed_locked(pd_backbone_t *self, const s_probe_t *pr)
{
    if (self->stream_missing) {
        self->probe_quorum = false;
        pd_backbone__detail_locked(self, "stream %s not found (deleted?)",
                                   self->stream);
    } else if (self->conn_up) {
        self->probe_quorum = false;
        pd_backbone__detail_locked(self, "stream %s does not answer: %s",
                                   self->stream, natsStatus_GetText(pr->s));
        /* Connected, but the stream has no leader to ask: nothing can be
         * stored now, so what this node has is as far as it goes; it is
         * not cut off (catching up), only waiting with everyone else. */
        self->stream_last_known = true;
    }
}

void
pd_backbone__probe(pd_backbone_t *self)
{
    s_probe_t pr = { .s = NATS_OK };
    /* What this node had confirmed before asking: the answer covers at
     * least that (the leader's store only grows). Records read but not
     * yet confirmed do not count: they may come from a replica that holds
     * more than the leader. */
    pthread_mutex_lock(&self->mu);
    pr.held = self->following ? self->confirmed : 0;
    pthread_mutex_unlock(&self->mu);
    s_probe_ask(self, &pr);

    pthread_mutex_lock(&self->mu);
    self->n_probes++;
    if (pr.s != NATS_OK)
        self->n_probes_failed++;
    self->stream_missing = pr.jerr == JSStreamNotFoundErr;
    if (pr.s == NATS_OK)
        s_probe_answered_locked(self, &pr);
    else
        s_probe_failed_locked(self, &pr);
    pd_backbone__state_locked(self);
    pthread_mutex_unlock(&self->mu);
}
