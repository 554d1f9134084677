/*
 * cluster_int.h - what cluster.c (the submits, the seam, the setup) and
 * cluster_follow.c (the follower) share: the cluster storage's struct and
 * the functions one calls in the other. Not for other modules.
 */
#ifndef PD_CLUSTER_INT_H
#define PD_CLUSTER_INT_H

#include "cluster.h"

#include "backbone.h"
#include "hash.h"
#include "sign.h"

/* Submits in flight at most: ingest's table of waiting publishes. */
#define S_PEND_CAP 4096
/* Submits again after conflicts on the signer's subject, at most. */
#define S_CONFLICTS_MAX 4
/* A stored publish waits for this node to apply its seq for at most this
 * many apply waits in all, while the node keeps applying (cluster.c). */
#define S_APPLY_WAITS_MAX 4
/* Seqs a returning node fills with void records at most (retention ran
 * ahead of it); beyond that it stops following: docs/cluster.md. */
#define S_GAP_MAX 1000000
#define S_ID_FILE "cluster.id"
#define S_DETAIL_MAX 160

typedef enum {
    S_FREE = 0,
    S_SUBMITTED,
    S_WAITING,
    S_READY,
} s_state_t;

/* One publish in flight (see the top of cluster.c). */
typedef struct {
    s_state_t state;
    uint64_t tag;                /* ingest's; also the backbone's token */
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    char key_id[PARLEY_KEYID_CHARS + 1];
    uint64_t signer_seq;
    uint8_t sig[PARLEY_SIGNATURE_BYTES]; /* its key in by_sig */
    uint8_t *env;                /* the SignedUpdate bytes (owned) */
    size_t len;
    bool conflict;               /* WAITING after a conflict at seq */
    bool dup;                    /* WAITING: JetStream said duplicate */
    uint64_t seq;                /* WAITING: the seq to have applied */
    int conflicts;               /* conflicts so far */
    int64_t deadline;            /* WAITING: mono ms it may give up, if
                                    the node applies nothing meanwhile */
    int64_t give_up;             /* WAITING: mono ms it gives up anyway */
    pd_storage_done_t done;      /* READY: the completion */
    char detail[S_DETAIL_MAX];   /* READY: done.detail's text */
} s_pend_t;

/* A stream record taken from the backbone: the event's bytes, or a copy
 * while it waits for room in the batch or for a keyring. */
typedef struct {
    uint64_t seq;
    int64_t time_ms;                      /* the stream's time for it */
    char key_id[PARLEY_KEYID_CHARS + 1];  /* from its subject, or "" */
    const uint8_t *data;
    size_t len;
} s_rec_t;

/* The counters behind the cluster_* stats. unavailable counts every
 * publish answered unavailable here; the causes below (and the
 * backbone's own counts, for submits JetStream did not store) split it
 * (docs/operations.md, "Cluster mode"). */
typedef struct {
    uint64_t applied, voided, submits, conflicts, unavailable;
    uint64_t ua_refused;     /* before JetStream: the node's state */
    uint64_t ua_jetstream;   /* JetStream refused it, or gave no seq */
    uint64_t ua_unapplied;   /* stored, not applied here in time */
    uint64_t ua_conflicts;   /* the subject kept changing */
    uint64_t ua_mismatch;    /* other bytes here at the seq stored */
} s_counters_t;

typedef struct pd_cluster {
    pd_storage_t base;           /* first: the seam's view */
    pd_storage_t *local;         /* the replica (embedded storage, owned) */
    pd_backbone_t *bb;           /* the stream (owned) */
    const parley_keyring_t *ring; /* borrowed; records wait for one */
    char stream[PD_CONFIG_STREAM_MAX + 1];
    int64_t skew_ms;             /* max_clock_skew */
    uint32_t apply_wait_ms;      /* WAITING gives up after this without
                                    progress (S_APPLY_WAITS_MAX x: anyway) */
    uint64_t progress_head;      /* the replica's head when last seen to
                                    move, and when (mono ms) */
    int64_t progress_ms;
    size_t max_record;           /* max_message_bytes */
    uint8_t log_id[16];

    s_pend_t *pend;              /* S_PEND_CAP, by tag % S_PEND_CAP */
    uint64_t *ready;             /* ring of READY tags, S_PEND_CAP */
    size_t ready_head, ready_n;
    uint64_t *waiting;           /* tags in WAITING, in completion order */
    size_t n_waiting;
    pd_hash_t *by_sig;           /* signature -> tag of a pend in flight */
    pd_hash_t *subject_last;     /* key id -> last seq seen on its subject */

    s_rec_t held_rec;            /* a record waiting for room ... */
    uint8_t *held_buf;           /* ... its bytes (owned), NULL if none */
    bool stopped;                /* following stopped: see s_stop() */
    char stopped_why[S_DETAIL_MAX + 8];

    /* the backbone's state, as its last EV_STATE said */
    pd_backbone_health_t health;
    bool catching_up;
    uint64_t rereads;            /* the backbone's, as last logged */
    char health_detail[PD_BACKBONE_DETAIL_MAX + 32];

    uint8_t *record;             /* a record read back (max_record) */
    parley__verify_t verify;     /* a stream record being checked */
    parley_update_t update;      /* its body */
    parley__verify_t own;        /* a submit's envelope, for its signature */
    s_counters_t counters;
} pd_cluster_t;

/* The pend of a submit in flight with ingest's tag, or NULL. */
static inline s_pend_t *
pd_cluster__pend_of(pd_cluster_t *self, uint64_t tag)
{
    s_pend_t *p = &self->pend[tag % S_PEND_CAP];
    return p->state != S_FREE && p->tag == tag ? p : NULL;
}

/*
 * Steps 1 and 2 of a commit (cluster_follow.c): take the backbone's
 * events while the local batch has room for a record, checking each
 * stream record into the replica. Returns 0 or a fatal error.
 */
int pd_cluster__drain(pd_cluster_t *self);

/* A submit completion from the backbone (cluster.c): its pend waits for
 * the seq, or is ready. */
void pd_cluster__on_submitted(pd_cluster_t *self,
                              const pd_backbone_event_t *ev);

#endif /* PD_CLUSTER_INT_H */
