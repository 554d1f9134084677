/*
 * ingest_verify.c - checks 1-6 of the write path (ingest_int.h): the
 * cheap checks of a step in arrival order (request decode, the peer's
 * cool-down, the envelope and its canonical form, the signer's token
 * bucket), the plan of which signatures go to the pool, their checks,
 * and the outcome of all of it for one publish, in request order. The
 * rest of the path, from the publish checks to the feed, is ingest.c.
 */
#include "ingest_int.h"

#include "clock.h"
#include "facts.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Below this many signatures a step checks them on the loop thread. */
#define S_PARALLEL_MIN 4
/*
 * Signatures of one connection checked in parallel per step at first, at
 * most. When all of them were good (and the connection is not cooling
 * down), its next ones in the step are checked in parallel too, in waves
 * of at most this many (pd_ingest__waves()); the rest, after a bad one,
 * are checked one by one in order, where a connection that has just sent
 * PD_LIMIT_BAD_MAX forgeries is cut off unverified. The next step's
 * checks start before this one's are counted (pd_ingest_turn()), so a
 * flooding peer gets at most twice this plus PD_LIMIT_BAD_MAX checks
 * before its cool-down stops them: its last wave, the next step's first,
 * and the ones counted one by one.
 */
#define S_PEER_PARALLEL_MAX (4 * PD_LIMIT_BAD_MAX)

/* ======================================================= gather, pre-check */

/*
 * The sequential part of checks 1-3a for a publish, in arrival order: the
 * request decode, the peer's cool-down, the envelope decode and signer
 * lookup, the signer's token bucket. What is left for the signature check
 * is marked S_PRE_PREPARED with prepare_rc 0. Anything that is not a
 * well-formed publish stays !publish for the api to answer.
 */
static void
s_precheck(pd_ingest_t *self, s_slot_t *slot, int64_t now_us)
{
    size_t len = zmq_msg_size(&slot->msg.body);
    size_t id_len = zmq_msg_size(&slot->msg.id);
    slot->publish = false;
    slot->pre = S_PRE_NONE;
    slot->sig_checked = false;
    slot->on_pool = false;
    slot->canon_why = NULL;
    slot->v.decoded = 0;
    if (slot->msg.frames != 2 || len > self->cfg->max_message_bytes
        || id_len == 0 || id_len > PD_INGEST_ID_MAX)
        return;
    parley__arena_reset(&self->arena);
    if (parley__request_decode(zmq_msg_data(&slot->msg.body), len,
                               &self->req, &self->arena)
            != 0
        || self->req.op != PARLEY__OP_PUBLISH)
        return;
    slot->publish = true;
    if (self->ring == NULL)
        return;
    if (pd_limit_peer_blocked(self->limit, zmq_msg_data(&slot->msg.id),
                              id_len, now_us / 1000)) {
        slot->pre = S_PRE_BLOCKED;
        return;
    }
    slot->prepare_rc = parley__verify_prepare(&slot->v, self->ring,
                                              self->req.update.data,
                                              self->req.update.len);
    /* Check 2 also wants the one encoding parley_sign() writes: an
     * envelope that decodes but carries more (an unknown or repeated
     * field, a padded length) would store unsigned bytes with the signed
     * ones. Before the signer lookup, as check 2 comes before 3. */
    if (slot->v.decoded
        && parley__envelope_canonical(self->req.update.data,
                                      self->req.update.len, &slot->canon_why)
               != 0)
        slot->prepare_rc = PARLEY_EMALFORMED;
    slot->pre = S_PRE_PREPARED;
    if (slot->prepare_rc == 0
        && !pd_limit_signer_take(self->limit, slot->v.env.signer, now_us))
        slot->pre = S_PRE_LIMITED;
}

/* Publishes of one connection in a step. */
typedef struct {
    const void *id;   /* ROUTER identity */
    size_t len;
    unsigned count;   /* its signatures planned for the pool */
    bool stop;        /* no further wave: a bad signature, or cooling down */
} s_peer_count_t;

/* The entry of slot's connection in peers (added if new). */
static s_peer_count_t *
s_peer_of(s_peer_count_t *peers, size_t *n_peers, s_slot_t *slot)
{
    const void *id = zmq_msg_data(&slot->msg.id);
    size_t len = zmq_msg_size(&slot->msg.id);
    size_t p = 0;
    while (p < *n_peers
           && (peers[p].len != len || memcmp(peers[p].id, id, len) != 0))
        p++;
    if (p == *n_peers)
        peers[(*n_peers)++] = (s_peer_count_t){ id, len, 0, false };
    return &peers[p];
}

/*
 * Mark the prepared publishes whose signatures go to the pool: all of
 * them, but at most S_PEER_PARALLEL_MAX from any one connection.
 */
static void
s_plan_pool(s_slot_t *slots, size_t n)
{
    s_peer_count_t peers[PD_INGEST_SLOTS];
    size_t n_peers = 0;
    for (size_t i = 0; i < n; i++) {
        s_slot_t *slot = &slots[i];
        if (slot->pre != S_PRE_PREPARED || slot->prepare_rc != 0)
            continue;
        s_peer_count_t *peer = s_peer_of(peers, &n_peers, slot);
        if (peer->count < S_PEER_PARALLEL_MAX) {
            peer->count++;
            slot->on_pool = true;
        }
    }
}

/*
 * Plan the next wave of a step whose planned checks are done: for each
 * connection whose checked signatures in the step were all good and that
 * is not cooling down, its next S_PEER_PARALLEL_MAX unchecked ones, in
 * order. Returns how many were planned.
 */
static size_t
s_plan_wave(pd_ingest_t *self, s_slot_t *slots, size_t n)
{
    s_peer_count_t peers[PD_INGEST_SLOTS];
    size_t n_peers = 0, planned = 0;
    bool unchecked = false;
    for (size_t i = 0; i < n; i++) {
        s_slot_t *slot = &slots[i];
        if (slot->pre != S_PRE_PREPARED || slot->prepare_rc != 0)
            continue;
        s_peer_count_t *peer = s_peer_of(peers, &n_peers, slot);
        if (!slot->sig_checked)
            unchecked = true;
        else if (slot->sig_rc != 0)
            peer->stop = true;
    }
    if (!unchecked)
        return 0;
    int64_t now_ms = parley__mono_us() / 1000;
    for (size_t p = 0; p < n_peers; p++)
        if (!peers[p].stop
            && pd_limit_peer_blocked(self->limit, peers[p].id, peers[p].len,
                                     now_ms))
            peers[p].stop = true;
    for (size_t i = 0; i < n; i++) {
        s_slot_t *slot = &slots[i];
        if (slot->pre != S_PRE_PREPARED || slot->prepare_rc != 0
            || slot->sig_checked)
            continue;
        s_peer_count_t *peer = s_peer_of(peers, &n_peers, slot);
        if (!peer->stop && peer->count < S_PEER_PARALLEL_MAX) {
            peer->count++;
            slot->on_pool = true;
            planned++;
        }
    }
    return planned;
}

/*
 * Gather one step into slots: read up to max (at most PD_INGEST_SLOTS)
 * requests and run the cheap checks in order. Returns the number read;
 * the caller starts their signature checks with pd_ingest__start().
 */
size_t
pd_ingest__gather(pd_ingest_t *self, s_slot_t *slots, size_t max)
{
    size_t n = 0;
    while (n < max && n < PD_INGEST_SLOTS
           && self->io.recv(self->io.ctx, &slots[n].msg) == 1)
        n++;
    if (n == 0)
        return 0;
    int64_t now_us = parley__mono_us();
    for (size_t i = 0; i < n; i++)
        s_precheck(self, &slots[i], now_us);
    s_plan_pool(slots, n);
    return n;
}

/* ================================================================= verify */

/* Pool work item: the signature check of one prepared publish planned
 * for the pool and not checked yet. */
static void
s_check_signature(void *ctx, size_t i)
{
    s_slot_t *slot = &((s_slot_t *)ctx)[i];
    if (slot->on_pool && !slot->sig_checked) {
        slot->sig_rc = parley__verify_signature(&slot->v);
        slot->sig_checked = true;
    }
}

/* Start the signature checks of n gathered slots on the pool; every start
 * is followed by one pd_pool_wait() before the slots are handled. A step
 * with few signatures to check (pings, replays, rejects) wakes no worker:
 * pd_pool_wait() checks them on the loop thread. */
void
pd_ingest__start(pd_ingest_t *self, s_slot_t *slots, size_t n)
{
    size_t checks = 0;
    for (size_t i = 0; i < n; i++)
        checks += slots[i].on_pool;
    if (n > 0)
        pd_pool_start(self->pool, n,
                      checks >= S_PARALLEL_MIN ? S_PARALLEL_MIN : SIZE_MAX,
                      s_check_signature, slots);
}

void
pd_ingest__waves(pd_ingest_t *self, s_slot_t *slots, size_t n)
{
    size_t planned;
    while ((planned = s_plan_wave(self, slots, n)) > 0)
        pd_pool_run(self->pool, n,
                    planned >= S_PARALLEL_MIN ? S_PARALLEL_MIN : SIZE_MAX,
                    s_check_signature, slots);
}

/* ================================================================ outcome */

/*
 * "signer <key id><why>" for the log line of a reject (only "<why>" if the
 * envelope did not decode), made in buf. Only rejects need it: the key id
 * is a hash, not worth computing for every accepted update.
 */
const char *
pd_ingest__signer_label(const s_slot_t *slot, const char *why,
               char buf[PARLEY_KEYID_CHARS + 64])
{
    char id[PARLEY_KEYID_CHARS + 1] = "";
    if (slot->v.decoded)
        parley_key_id(slot->v.env.signer, id);
    snprintf(buf, PARLEY_KEYID_CHARS + 64, "%s%s%s", *id ? "signer " : "", id,
             why);
    return buf;
}

/*
 * Checks 3a-6 in request order: the outcome of the pre-checks, the
 * signature (checked on the pool, or now), the body and permissions.
 * On 0 self->update and signer hold the update. A bad signature counts
 * against the peer; *why (a static string) says more for the log.
 *
 * Returns:   0 or the reject code.
 */
int
pd_ingest__verify_outcome(pd_ingest_t *self, s_slot_t *slot, const uint8_t *id,
                 size_t id_len, uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                 const char **why)
{
    if (slot->pre == S_PRE_NONE)
        return PARLEY_EUNAVAILABLE; /* no keyring */
    if (slot->pre == S_PRE_BLOCKED) {
        /* said without the signer: the envelope was not decoded */
        *why = "(peer cooling down after bad signatures)";
        return PARLEY_ERATELIMITED;
    }
    int rc = slot->prepare_rc;
    if (rc != 0)
        return rc;
    if (slot->pre == S_PRE_LIMITED) {
        *why = " (over rate_limit)";
        return PARLEY_ERATELIMITED;
    }
    if (!slot->sig_checked
        && pd_limit_peer_blocked(self->limit, id, id_len,
                                 parley__mono_us() / 1000)) {
        /* Not checked on the pool, and meanwhile its peer was cut off. */
        *why = " (peer cooling down after bad signatures)";
        return PARLEY_ERATELIMITED;
    }
    if (!slot->sig_checked)
        self->counters.verify_serial++;
    rc = slot->sig_checked ? slot->sig_rc : parley__verify_signature(&slot->v);
    if (rc == 0)
        return parley__verify_body(&slot->v, self->ring, &self->update,
                                   signer);
    char keyid[PARLEY_KEYID_CHARS + 64];
    if (rc == PARLEY_EBADSIG
        && pd_limit_peer_bad(self->limit, id, id_len,
                             parley__mono_us() / 1000))
        pd_log_limited(PD_LOG_KEY_BAD_SIGNATURES, PD_LOG_WARN,
                       "api: a peer sent %d bad signatures within a "
                       "second (last under %s); its publishes are "
                       "refused unverified for %d ms",
                       PD_LIMIT_BAD_MAX, pd_ingest__signer_label(slot, "", keyid),
                       PD_LIMIT_COOLDOWN_MS);
    return rc;
}
