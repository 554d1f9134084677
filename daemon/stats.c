/*
 * stats.c - the counter registry (stats.h).
 */
#include "stats.h"

#include "clock.h"

#include <stdio.h>
#include <stdlib.h>

/* Names of the stats after the rejected_<code> run, from
 * PD_STAT_SUBSCRIPTIONS on. */
static const char *const s_names[PD_STAT_COUNT - PD_STAT_SUBSCRIPTIONS] = {
    "subscriptions",
    "seq",
    "first_seq",
    "store_syncs",
    "store_records_synced",
    "store_bytes",
    "store_segments",
    "store_truncated_bytes",
    "store_sync_failures",
    "store_error",
    "store_queued",
    "store_low_space",
    "uptime_seconds",
    "requests_publish",
    "requests_replay",
    "requests_snapshot",
    "requests_stats",
    "requests_ping",
    "keyring_signers",
    "rate_limited_signer",
    "rate_limited_peer",
    "peers_penalized",
    "connections",
    "connections_refused",
    "auth_denied",
    "handshake_failed",
    "subscriptions_denied",
    "subscriptions_partial",
    "curve_clients",
    "verify_threads",
    "turns_read_ahead",
    "turn_requests_max",
    "verify_serial",
    "tree_size",
    "tree_syncs",
    "tree_write_errors",
    "checkpoints_signed",
    "requests_checkpoint",
    "requests_inclusion",
    "requests_consistency",
    "proofs_served",
    "witness_cosignatures",
    "witness_failures",
    "reloads",
    "reload_failures",
    "reload_failed",
    "cluster_records_applied",
    "cluster_records_voided",
    "cluster_submits",
    "cluster_conflicts",
    "cluster_unavailable",
    "cluster_catching_up",
    "cluster_healthy",
    "cluster_stream_last",
    "cluster_reconnects",
    "cluster_records_reread",
    "cluster_unavailable_refused",
    "cluster_unavailable_timeout",
    "cluster_unavailable_jetstream",
    "cluster_unavailable_unapplied",
    "cluster_unavailable_conflicts",
    "cluster_unavailable_mismatch",
    "reads_queued",
    "reads_deferred",
    "read_slices_full",
    "reads_held",
    "reads_refused",
    "reads_dropped",
    "reply_bytes",
    "replies_dropped",
};

/* Where one stat comes from. */
typedef struct {
    const uint64_t *value; /* a live counter, or */
    pd_stats_fn fn;        /* a getter (with ctx) */
    const void *ctx;
} s_source_t;

struct pd_stats {
    s_source_t src[PD_STAT_COUNT];
    char rejected[PD_STATS_NCODES][48]; /* "rejected_<code name>" */
    int64_t started_ms;                  /* monotonic, for uptime */
};

static uint64_t
s_uptime(const void *ctx)
{
    const pd_stats_t *self = ctx;
    return (uint64_t)((parley__mono_ms() - self->started_ms) / 1000);
}

pd_stats_t *
pd_stats_new(void)
{
    pd_stats_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    for (int i = 0; i < PD_STATS_NCODES; i++)
        snprintf(self->rejected[i], sizeof(self->rejected[i]), "rejected_%s",
                 parley_error_name(-1001 - i));
    self->started_ms = parley__mono_ms();
    pd_stats_getter(self, PD_STAT_UPTIME_SECONDS, s_uptime, self);
    return self;
}

void
pd_stats_destroy(pd_stats_t **stp)
{
    if (stp == NULL || *stp == NULL)
        return;
    free(*stp);
    *stp = NULL;
}

void
pd_stats_counter(pd_stats_t *self, pd_stat_t id, const uint64_t *value)
{
    if (id < PD_STAT_COUNT)
        self->src[id] = (s_source_t){ .value = value };
}

void
pd_stats_getter(pd_stats_t *self, pd_stat_t id, pd_stats_fn fn,
                const void *ctx)
{
    if (id < PD_STAT_COUNT)
        self->src[id] = (s_source_t){ .fn = fn, .ctx = ctx };
}

static bool
s_reported(const s_source_t *s)
{
    return s->value != NULL || s->fn != NULL;
}

uint64_t
pd_stats_get(const pd_stats_t *self, pd_stat_t id)
{
    if (id >= PD_STAT_COUNT)
        return 0;
    const s_source_t *s = &self->src[id];
    return s->value != NULL ? *s->value : s->fn != NULL ? s->fn(s->ctx) : 0;
}

uint64_t
pd_stats_rejected(const pd_stats_t *self)
{
    uint64_t sum = 0;
    for (int i = 0; i < PD_STATS_NCODES; i++)
        sum += pd_stats_get(self, (pd_stat_t)(PD_STAT_REJECTED + i));
    return sum;
}

const char *
pd_stats_name(const pd_stats_t *self, pd_stat_t id)
{
    switch (id) {
    case PD_STAT_RECEIVED:
        return "received";
    case PD_STAT_ACCEPTED:
        return "accepted";
    case PD_STAT_DUPLICATES:
        return "duplicates";
    default:
        break;
    }
    if (id >= PD_STAT_REJECTED && id < PD_STAT_SUBSCRIPTIONS)
        return self->rejected[id - PD_STAT_REJECTED];
    return id < PD_STAT_COUNT ? s_names[id - PD_STAT_SUBSCRIPTIONS] : "";
}

size_t
pd_stats_collect(const pd_stats_t *self, parley__stat_t v[PD_STAT_COUNT])
{
    size_t n = 0;
    for (int i = 0; i < PD_STAT_COUNT; i++) {
        pd_stat_t id = (pd_stat_t)i;
        if (s_reported(&self->src[id]))
            v[n++] = (parley__stat_t){ pd_stats_name(self, id),
                                       pd_stats_get(self, id) };
    }
    return n;
}
