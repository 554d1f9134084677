/*
 * stats.h - parleyd's one registry of counters.
 *
 * Every module reports into it: at setup each registers the stats it
 * keeps (pd_<module>_stats_register()), either as a pointer to a live
 * counter or as a getter. The stats reply, the sys/stats/ topic and the
 * systemd STATUS= line all read from here, so a counter is added in one
 * place (here, docs/protocol.md section 9, and the module that counts).
 *
 * The ids are in the order of docs/protocol.md section 9, which is the
 * order of a stats reply.
 */
#ifndef PD_STATS_H
#define PD_STATS_H

#include "codec.h"

#include <stddef.h>
#include <stdint.h>

/* PARLEY_E* codes that can be a reject: PARLEY_ETOOLARGE .. ERATELIMITED. */
#define PD_STATS_NCODES 13

typedef enum pd_stat {
    PD_STAT_RECEIVED = 0,          /* api messages read (every op) */
    PD_STAT_ACCEPTED,              /* updates appended (new seqs) */
    PD_STAT_DUPLICATES,            /* resends answered with the original */
    PD_STAT_REJECTED,              /* rejected_<code>: PD_STATS_NCODES ids
                                      from here, by -(code) - 1001 */
    PD_STAT_SUBSCRIPTIONS = PD_STAT_REJECTED + PD_STATS_NCODES,
    PD_STAT_SEQ,                   /* last durable seq */
    PD_STAT_FIRST_SEQ,             /* oldest seq held */
    PD_STAT_STORE_SYNCS,
    PD_STAT_STORE_RECORDS_SYNCED,
    PD_STAT_STORE_BYTES,
    PD_STAT_STORE_SEGMENTS,
    PD_STAT_STORE_TRUNCATED_BYTES,
    PD_STAT_STORE_SYNC_FAILURES,   /* writes or syncs of the log that failed */
    PD_STAT_STORE_ERROR,           /* 0, or the errno keeping updates out */
    PD_STAT_STORE_QUEUED,          /* updates with a seq, not yet durable */
    PD_STAT_STORE_LOW_SPACE,       /* 1: the disk reserve is short */
    PD_STAT_UPTIME_SECONDS,        /* kept by the registry itself */
    PD_STAT_REQUESTS_PUBLISH,
    PD_STAT_REQUESTS_REPLAY,
    PD_STAT_REQUESTS_SNAPSHOT,
    PD_STAT_REQUESTS_STATS,
    PD_STAT_REQUESTS_PING,
    PD_STAT_KEYRING_SIGNERS,
    PD_STAT_RATE_LIMITED_SIGNER,
    PD_STAT_RATE_LIMITED_PEER,
    PD_STAT_PEERS_PENALIZED,
    PD_STAT_CONNECTIONS,
    PD_STAT_CONNECTIONS_REFUSED,
    PD_STAT_AUTH_DENIED,
    PD_STAT_HANDSHAKE_FAILED,
    PD_STAT_SUBSCRIPTIONS_DENIED,
    PD_STAT_SUBSCRIPTIONS_PARTIAL, /* refused: not a whole topic */
    PD_STAT_CURVE_CLIENTS,
    PD_STAT_VERIFY_THREADS,
    PD_STAT_TURNS_READ_AHEAD,      /* turns that synced with a step read ahead */
    PD_STAT_TURN_REQUESTS_MAX,     /* most requests one turn handled */
    PD_STAT_VERIFY_SERIAL,         /* signatures checked one by one in order */
    PD_STAT_TREE_SIZE,             /* leaves of the Merkle tree */
    PD_STAT_TREE_SYNCS,            /* fdatasyncs of the tree's hash file */
    PD_STAT_TREE_WRITE_ERRORS,     /* its writes or syncs that failed */
    PD_STAT_CHECKPOINTS,           /* checkpoints signed (new tree sizes) */
    PD_STAT_REQUESTS_CHECKPOINT,
    PD_STAT_REQUESTS_INCLUSION,
    PD_STAT_REQUESTS_CONSISTENCY,
    PD_STAT_PROOFS,                /* inclusion and consistency proofs served */
    PD_STAT_WITNESS_COSIGNATURES,  /* valid cosignatures witnesses returned */
    PD_STAT_WITNESS_FAILURES,      /* witness requests that failed */
    PD_STAT_RELOADS,               /* SIGHUP reloads that took effect */
    PD_STAT_RELOAD_FAILURES,       /* SIGHUP reloads refused (kept the old) */
    PD_STAT_RELOAD_FAILED,         /* 1: the last reload was refused */
    PD_STAT_CLUSTER_RECORDS_APPLIED, /* cluster: stream records applied */
    PD_STAT_CLUSTER_RECORDS_VOIDED,  /* cluster: stream records refused */
    PD_STAT_CLUSTER_SUBMITS,       /* cluster: updates handed to JetStream */
    PD_STAT_CLUSTER_CONFLICTS,     /* cluster: submits that met another's */
    PD_STAT_CLUSTER_UNAVAILABLE,   /* cluster: publishes JetStream could not
                                      take (no quorum, timeout) */
    PD_STAT_CLUSTER_CATCHING_UP,   /* cluster: 1 while behind the stream */
    PD_STAT_CLUSTER_HEALTHY,       /* cluster: 1 while publishes can go */
    PD_STAT_CLUSTER_STREAM_LAST,   /* cluster: the stream's last seq seen */
    PD_STAT_CLUSTER_RECONNECTS,    /* cluster: NATS reconnections */
    PD_STAT_CLUSTER_RECORDS_REREAD, /* cluster: stream records a replica
                                      held otherwise than the leader */
    /* cluster: of PD_STAT_CLUSTER_UNAVAILABLE, by cause: */
    PD_STAT_CLUSTER_UNAVAILABLE_REFUSED,   /* before JetStream (health) */
    PD_STAT_CLUSTER_UNAVAILABLE_TIMEOUT,   /* no PubAck in time */
    PD_STAT_CLUSTER_UNAVAILABLE_JETSTREAM, /* no leader, an error answer */
    PD_STAT_CLUSTER_UNAVAILABLE_UNAPPLIED, /* stored, not applied in time */
    PD_STAT_CLUSTER_UNAVAILABLE_CONFLICTS, /* the subject kept changing */
    PD_STAT_CLUSTER_UNAVAILABLE_MISMATCH,  /* other bytes at the seq */
    PD_STAT_READS_QUEUED,          /* reads waiting to be answered now */
    PD_STAT_READS_DEFERRED,        /* reads that waited a whole slice */
    PD_STAT_READ_SLICES_FULL,      /* slices that spent their budget */
    PD_STAT_READS_HELD,            /* reads held for unread replies */
    PD_STAT_READS_REFUSED,         /* reads refused: queue full */
    PD_STAT_READS_DROPPED,         /* reads dropped: connection gone */
    PD_STAT_REPLY_BYTES,           /* bytes of replies not yet read */
    PD_STAT_REPLIES_DROPPED,       /* replies not sent */
    PD_STAT_COUNT
} pd_stat_t;

typedef struct pd_stats pd_stats_t;

/* A stat computed when it is read; ctx is what was registered with it. */
typedef uint64_t (*pd_stats_fn)(const void *ctx);

/*
 * Make an empty registry; uptime_seconds counts from now.
 *
 * Returns:   the registry, or NULL (out of memory).
 * Ownership: the caller's; free with pd_stats_destroy() after every
 *            module that registered into it has stopped being read.
 */
pd_stats_t *pd_stats_new(void);

/* Free the registry; *st becomes NULL. Accepts NULL. */
void pd_stats_destroy(pd_stats_t **st);

/*
 * Report stat id as the live counter at value (read at every collect).
 * value must stay valid while the registry is read. A later registration
 * of the same id replaces the earlier one.
 */
void pd_stats_counter(pd_stats_t *st, pd_stat_t id, const uint64_t *value);

/* Report stat id as fn(ctx), called at every read. As for the counter. */
void pd_stats_getter(pd_stats_t *st, pd_stat_t id, pd_stats_fn fn,
                     const void *ctx);

/*
 * The current value of one stat (0 if nothing reports it).
 *
 * Threads:   the loop thread, like every module it reads.
 */
uint64_t pd_stats_get(const pd_stats_t *st, pd_stat_t id);

/* The sum of the rejected_<code> counters. */
uint64_t pd_stats_rejected(const pd_stats_t *st);

/*
 * Every reported stat, in id order, with its name (names are static or
 * live as long as the registry).
 *
 * Returns:   the number written to v.
 */
size_t pd_stats_collect(const pd_stats_t *st, parley__stat_t v[PD_STAT_COUNT]);

/* The name of a stat ("received", "rejected_bad_signature", ...). */
const char *pd_stats_name(const pd_stats_t *st, pd_stat_t id);

#endif /* PD_STATS_H */
