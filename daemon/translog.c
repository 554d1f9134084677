/*
 * translog.c - parleyd's transparency log: tree, key, checkpoints,
 * cosignatures, proofs (translog.h).
 *
 * Memory: the tree's own (tree.h); the current checkpoint (a few KiB);
 * one answer buffer for the largest proof reply (PARLEY__INCLUSION_MAX
 * encoded proofs and a checkpoint), allocated at open.
 */
#include "translog.h"

#include "cosign.h"
#include "keys.h"
#include "log.h"
#include "note.h"
#include "tree.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The published checkpoint at most: its text, the log's two lines and
 * one cosignature line per witness. */
#define S_NOTE_MAX                                                            \
    (PARLEY__CHECKPOINT_TEXT_MAX + (2 + PD_COSIGN_MAX) * PARLEY__COSIG_LINE_MAX)
#define S_ANSWER_MAX                                                          \
    (PARLEY__INCLUSION_MAX * (PARLEY__TLOG_PROOF_ENCODED_MAX + 16)            \
     + S_NOTE_MAX + 64 * 40 + 256)
#define S_WRITE_LOG_MS 60000 /* the same write failure logged this often */

struct pd_translog {
    pd_tree_t *tree;
    parley_key_t *key;            /* NULL: checkpoints are not signed */
    char origin[PD_CONFIG_ORIGIN_MAX];
    pd_cosign_t *cosign;          /* NULL: no witnesses */
    bool failed;                  /* the tree failed: nothing more */
    char dir[PD_CONFIG_PATH_MAX]; /* the state directory, for messages */
    pd_log_repeat_t write_log;    /* how often a failed write is logged */
    char scan_msg[512];           /* the start-up check's last message */

    /* the current checkpoint */
    uint64_t cp_size;             /* its tree size */
    bool have_cp;                 /* one was signed */
    char *signed_note;            /* text + the log's note signature */
    size_t signed_len, text_len;
    char *published;              /* + time line + cosignatures */
    size_t published_len;
    uint64_t published_cosigned;  /* cosignatures received when it was made */

    /* answers */
    uint8_t *abuf;                /* S_ANSWER_MAX */
    uint8_t *pbuf;                /* encoded proofs */
    parley__bytes_t items[PARLEY__INCLUSION_MAX];
    uint8_t range[64][PARLEY__TLOG_HASH_BYTES];
    parley__bytes_t range_items[64];

    /* counters */
    uint64_t checkpoints;         /* signed checkpoints (new sizes) */
    uint64_t requests_checkpoint, requests_inclusion, requests_consistency;
    uint64_t proofs;              /* proofs served */
};

/* ============================================================== setup */

static uint64_t
s_stat_size(const void *ctx)
{
    return pd_translog_size(ctx);
}

static uint64_t
s_stat_syncs(const void *ctx)
{
    pd_tree_stats_t ts;
    pd_tree_get_stats(((const pd_translog_t *)ctx)->tree, &ts);
    return ts.syncs;
}

static uint64_t
s_stat_write_errors(const void *ctx)
{
    pd_tree_stats_t ts;
    pd_tree_get_stats(((const pd_translog_t *)ctx)->tree, &ts);
    return ts.write_errors;
}

static uint64_t
s_stat_cosigned(const void *ctx)
{
    return pd_cosign_received(((const pd_translog_t *)ctx)->cosign);
}

static uint64_t
s_stat_witness_failed(const void *ctx)
{
    return pd_cosign_failed(((const pd_translog_t *)ctx)->cosign);
}

static void
s_stats_register(pd_translog_t *self, pd_stats_t *st)
{
    if (st == NULL)
        return;
    pd_stats_getter(st, PD_STAT_TREE_SIZE, s_stat_size, self);
    pd_stats_getter(st, PD_STAT_TREE_SYNCS, s_stat_syncs, self);
    pd_stats_getter(st, PD_STAT_TREE_WRITE_ERRORS, s_stat_write_errors, self);
    pd_stats_counter(st, PD_STAT_CHECKPOINTS, &self->checkpoints);
    pd_stats_counter(st, PD_STAT_REQUESTS_CHECKPOINT, &self->requests_checkpoint);
    pd_stats_counter(st, PD_STAT_REQUESTS_INCLUSION, &self->requests_inclusion);
    pd_stats_counter(st, PD_STAT_REQUESTS_CONSISTENCY,
                     &self->requests_consistency);
    pd_stats_counter(st, PD_STAT_PROOFS, &self->proofs);
    pd_stats_getter(st, PD_STAT_WITNESS_COSIGNATURES, s_stat_cosigned, self);
    pd_stats_getter(st, PD_STAT_WITNESS_FAILURES, s_stat_witness_failed, self);
}

/* The consistency proofs the witness client asks for. */
static int
s_prove(void *ctx, uint64_t old_size, uint64_t new_size, parley__tlog_proof_t *out)
{
    pd_translog_t *self = ctx;
    return pd_tree_prove(self->tree, PARLEY__TLOG_CONSISTENCY, old_size, new_size,
                         out);
}

/* Load the log key and settle the origin. 0 or a negative error. */
static int
s_load_key(pd_translog_t *self, const pd_config_t *cfg)
{
    if (!cfg->log_key_given && access(cfg->log_key, F_OK) < 0) {
        pd_log(PD_LOG_INFO,
               "no log key at %s: checkpoints are not signed (make one with "
               "`parley keygen -o %s`, see docs/transparency.md)",
               cfg->log_key, cfg->log_key);
        return 0;
    }
    if ((self->key = parley_key_load(cfg->log_key)) == NULL) {
        int rc = -errno;
        pd_log(PD_LOG_ERROR, "cannot load the log key %s: %s", cfg->log_key,
               parley_error_name(rc));
        return rc;
    }
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char id[17], b64[45];
    parley_key_public(self->key, pk);
    parley_key_id(pk, id);
    parley_pubkey_format(pk, b64);
    if (cfg->log_origin[0] != '\0')
        snprintf(self->origin, sizeof(self->origin), "%s", cfg->log_origin);
    else
        snprintf(self->origin, sizeof(self->origin), "parley/%s", id);
    pd_log(PD_LOG_INFO, "log %s: key %s (id %s), public key %s", self->origin,
           cfg->log_key, id, b64);
    return 0;
}

pd_translog_t *
pd_translog_open(const pd_config_t *cfg, pd_stats_t *stats, int *err)
{
    pd_translog_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->abuf = malloc(S_ANSWER_MAX);
    self->pbuf = malloc(PARLEY__INCLUSION_MAX * PARLEY__TLOG_PROOF_ENCODED_MAX);
    if (self->abuf == NULL || self->pbuf == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    if ((*err = s_load_key(self, cfg)) < 0)
        goto fail;
    snprintf(self->dir, sizeof(self->dir), "%s", cfg->state_dir);
    char errbuf[512] = "";
    pd_tree_opts_t to = { .sync = cfg->fsync,
                          .absent_front = cfg->tree_absent_front };
    if ((self->tree = pd_tree_open(cfg->state_dir, &to, errbuf, sizeof(errbuf),
                                   err)) == NULL) {
        pd_log(PD_LOG_ERROR, "cannot open the Merkle tree: %s", errbuf);
        goto fail;
    }
    if (cfg->witnesses[0] != '\0') {
        if (self->key == NULL) {
            pd_log(PD_LOG_ERROR, "witnesses %s are configured but there is no "
                                 "log key: witnesses cosign signed checkpoints",
                   cfg->witnesses);
            *err = -EINVAL;
            goto fail;
        }
        self->cosign = pd_cosign_new(cfg->witnesses, cfg->witness_timeout, s_prove,
                                     self, stats, errbuf, sizeof(errbuf), err);
        if (self->cosign == NULL) {
            pd_log(PD_LOG_ERROR, "%s", errbuf);
            goto fail;
        }
        pd_log(PD_LOG_INFO, "witnesses %s: %zu", cfg->witnesses,
               pd_cosign_count(self->cosign));
    }
    s_stats_register(self, stats);
    *err = 0;
    return self;
fail:
    pd_translog_close(&self);
    return NULL;
}

void
pd_translog_close(pd_translog_t **t)
{
    if (t == NULL || *t == NULL)
        return;
    pd_translog_t *self = *t;
    pd_cosign_destroy(&self->cosign);
    pd_tree_close(&self->tree);
    parley_key_destroy(&self->key);
    free(self->signed_note);
    free(self->published);
    free(self->abuf);
    free(self->pbuf);
    free(self);
    *t = NULL;
}

/* ============================================================ the tree */

int
pd_translog_scan(void *ctx, const pd_storage_record_t *rec)
{
    pd_translog_t *self = ctx;
    int rc = rec->absent ? pd_tree_check_absent(self->tree, rec->seq,
                                                self->scan_msg,
                                                sizeof(self->scan_msg))
                         : pd_tree_check(self->tree, rec->seq, rec->env,
                                         rec->len, self->scan_msg,
                                         sizeof(self->scan_msg));
    if (rc < 0)
        pd_log(PD_LOG_ERROR, "Merkle tree check failed: %s", self->scan_msg);
    return rc;
}

int
pd_translog_recover(pd_translog_t *t, uint64_t records)
{
    char errbuf[512] = "";
    int rc = pd_tree_recover(t->tree, records, errbuf, sizeof(errbuf));
    if (rc < 0) {
        pd_log(PD_LOG_ERROR, "Merkle tree check failed: %s", errbuf);
        return rc;
    }
    pd_tree_stats_t ts;
    pd_tree_get_stats(t->tree, &ts);
    pd_log(PD_LOG_INFO,
           "Merkle tree: %" PRIu64 " leaves (checked %" PRIu64 ", recomputed %" PRIu64
           ", absent %" PRIu64 ", kept for removed records %" PRIu64 ")",
           ts.leaves, ts.checked, ts.recomputed, ts.absent, ts.unbacked);
    return 0;
}

/* The tree failed: say so once; the daemon stops. */
static int
s_fail(pd_translog_t *self, const char *what, int rc)
{
    if (!self->failed)
        pd_log(PD_LOG_ERROR, "Merkle tree: %s failed: %s; stopping (the next "
                             "start recomputes what is missing)",
               what, parley_error_name(rc));
    self->failed = true;
    return rc;
}

int
pd_translog_append(pd_translog_t *t, const pd_storage_record_t *rec)
{
    int rc = rec->absent ? pd_tree_append_absent(t->tree, rec->seq)
                         : pd_tree_append(t->tree, rec->seq, rec->env, rec->len);
    return rc < 0 ? s_fail(t, "append", rc) : 0;
}

/* A write or sync of the hash file: 0, or its error logged (as the
 * store logs its own: the same failure once a minute). Only a sync that
 * works ends the failure (a write may work while syncs fail). */
static int
s_written(pd_translog_t *self, const char *what, int rc)
{
    if (rc == 0 && strcmp(what, "sync") != 0)
        return 0;
    if (rc == 0) {
        if (self->write_log.err != 0)
            pd_log(PD_LOG_INFO, "Merkle tree: %s/%s is written again", self->dir,
                   PD_TREE_FILE);
        pd_log_repeat_clear(&self->write_log);
        return 0;
    }
    pd_log_repeated(&self->write_log, PD_LOG_KEY_TREE_WRITE, PD_LOG_ERROR, rc,
                    S_WRITE_LOG_MS,
                    "Merkle tree: %s of %s/%s failed: %s; its hashes stay in "
                    "memory and retention waits until it works",
                    what, self->dir, PD_TREE_FILE, strerror(-rc));
    return rc;
}

int
pd_translog_commit(pd_translog_t *t)
{
    (void)s_written(t, "write", pd_tree_write(t->tree));
    return 0;
}

int
pd_translog_sync(pd_translog_t *t)
{
    return s_written(t, "sync", pd_tree_sync(t->tree));
}

uint64_t
pd_translog_size(const pd_translog_t *t)
{
    return t != NULL ? pd_tree_size(t->tree) : 0;
}

/* ======================================================== checkpoints */

/* Sign the checkpoint of the tree as it is now. 0 or a negative error. */
static int
s_sign(pd_translog_t *self, uint64_t size)
{
    parley__tlog_hash_t root;
    int rc = pd_tree_root(self->tree, size, &root);
    if (rc < 0)
        return s_fail(self, "root", rc);
    char *note = NULL;
    size_t len;
    if ((rc = parley__checkpoint_sign(self->origin, size, &root, self->key, &note,
                                      &len)) < 0)
        return rc;
    free(self->signed_note);
    self->signed_note = note;
    self->signed_len = len;
    /* The text ends at the blank line that precedes the signatures. */
    self->text_len = (size_t)(strstr(note, "\n\n") - note) + 1;
    self->cp_size = size;
    self->have_cp = true;
    self->checkpoints++;
    if (self->cosign != NULL &&
        (rc = pd_cosign_submit(self->cosign, note, len, self->text_len, size)) < 0)
        return rc;
    return 0;
}

/* The published note: the signed one, the time line, the cosignatures. */
static int
s_publish(pd_translog_t *self, int64_t now_ms)
{
    char *out = malloc(S_NOTE_MAX);
    if (out == NULL)
        return -ENOMEM;
    memcpy(out, self->signed_note, self->signed_len + 1);
    size_t len = self->signed_len, n;
    uint64_t ts = now_ms > 0 ? (uint64_t)now_ms / 1000 : 0;
    int rc = parley__cosig_make(self->key, self->origin, self->signed_note,
                                self->text_len, ts, out + len, S_NOTE_MAX - len, &n);
    if (rc < 0) {
        free(out);
        return rc;
    }
    len += n;
    long added = pd_cosign_lines(self->cosign, self->signed_note, self->text_len, out,
                                 S_NOTE_MAX);
    if (added > 0)
        len += (size_t)added;
    free(self->published);
    self->published = out;
    self->published_len = len;
    self->published_cosigned = pd_cosign_received(self->cosign);
    return 0;
}

int
pd_translog_heartbeat(pd_translog_t *t, int64_t now_ms)
{
    if (t->failed)
        return -EIO;
    /* The tree's sync runs on its own thread, so that no update waits
     * behind a second fdatasync on the loop: take the last one's result
     * (a failure is logged) and begin the next. A checkpoint may so cover
     * leaves whose hashes are not synced yet: they are leaves of durable
     * records, which a crash does not take back, and the start-up check
     * recomputes their hashes. */
    int bg = pd_tree_sync_reap(t->tree, false);
    if (bg != -EINPROGRESS) {
        (void)s_written(t, "sync", bg);
        if ((bg = pd_tree_sync_begin(t->tree)) < 0)
            (void)s_written(t, "sync", bg);
    }
    if (t->key == NULL)
        return 0;
    int rc;
    uint64_t size = pd_tree_size(t->tree);
    if ((!t->have_cp || size != t->cp_size) && (rc = s_sign(t, size)) < 0)
        return rc;
    if ((rc = s_publish(t, now_ms)) < 0)
        pd_log_limited(PD_LOG_KEY_TLOG, PD_LOG_WARN,
                       "checkpoint of size %" PRIu64 " not made: %s", size,
                       parley_error_name(rc));
    return t->failed ? -EIO : 0;
}

const char *
pd_translog_checkpoint(const pd_translog_t *t, size_t *len)
{
    if (t == NULL || t->published == NULL) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = t->published_len;
    return t->published;
}

long
pd_translog_poll(pd_translog_t *t, int64_t now_ms, bool *republish)
{
    *republish = false;
    if (t == NULL)
        return -1;
    long next = pd_cosign_poll(t->cosign, now_ms);
    /* A cosignature counts only when it is of the current checkpoint
     * (cosign.c): publish it now, not at the next heartbeat, which may
     * sign a new size that has none yet. */
    if (t->published != NULL && pd_cosign_received(t->cosign) != t->published_cosigned) {
        int rc = s_publish(t, parley_now_ms());
        if (rc < 0)
            pd_log_limited(PD_LOG_KEY_TLOG, PD_LOG_WARN,
                           "checkpoint of size %" PRIu64 " not made again: %s",
                           t->cp_size, parley_error_name(rc));
        *republish = rc == 0;
    }
    return next;
}

/* ============================================================ answers */

static int
s_reject(pd_translog_answer_t *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_reject(pd_translog_answer_t *a, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->detail, sizeof(a->detail), fmt, ap);
    va_end(ap);
    return code;
}

/* The tree size a request names: 0 is the latest checkpoint's. */
static int
s_size(pd_translog_t *self, uint64_t asked, const char *what, uint64_t *size,
       pd_translog_answer_t *a)
{
    if (asked == 0) {
        if (!self->have_cp)
            return s_reject(a, PARLEY_EUNAVAILABLE,
                            "no signed checkpoint yet: name the tree size");
        *size = self->cp_size;
        return 0;
    }
    uint64_t have = pd_tree_size(self->tree);
    if (asked > have)
        return s_reject(a, PARLEY_EBADREQUEST,
                        "%s %" PRIu64 " is beyond the tree (%" PRIu64 " leaves)",
                        what, asked, have);
    *size = asked;
    return 0;
}

/* Encode a proof into the proof buffer as item i. */
static int
s_item(pd_translog_t *self, size_t i, const parley__tlog_proof_t *p)
{
    uint8_t *at = self->pbuf + i * PARLEY__TLOG_PROOF_ENCODED_MAX;
    size_t n;
    int rc = parley__tlog_proof_encode(p, at, PARLEY__TLOG_PROOF_ENCODED_MAX, &n);
    if (rc == 0)
        self->items[i] = (parley__bytes_t){ at, n };
    return rc;
}

/* A proof the tree could not make: logged, answered unavailable. */
static int
s_unreadable(pd_translog_answer_t *a, int rc)
{
    pd_log_limited(PD_LOG_KEY_TLOG, PD_LOG_ERROR, "Merkle tree: a proof failed: %s",
                   parley_error_name(rc));
    return s_reject(a, PARLEY_EUNAVAILABLE, "the tree cannot be read now");
}

static int
s_inclusion(pd_translog_t *self, const parley__request_t *req, parley__reply_t *r,
            pd_translog_answer_t *a)
{
    self->requests_inclusion++;
    if (req->n_seqs == 0 || req->n_seqs > PARLEY__INCLUSION_MAX)
        return s_reject(a, PARLEY_EBADREQUEST, "an inclusion request names 1-%d seqs",
                        PARLEY__INCLUSION_MAX);
    uint64_t size = 0;
    int rc = s_size(self, req->tree_size, "tree_size", &size, a);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < req->n_seqs; i++)
        if (req->seqs[i] == 0 || req->seqs[i] > size)
            return s_reject(a, PARLEY_EBADREQUEST,
                            "seq %" PRIu64 " is not in the tree of %" PRIu64 " leaves",
                            req->seqs[i], size);
    for (size_t i = 0; i < req->n_seqs; i++) {
        parley__tlog_proof_t p;
        if ((rc = pd_tree_prove(self->tree, PARLEY__TLOG_INCLUSION, req->seqs[i] - 1,
                                size, &p)) < 0 ||
            (rc = s_item(self, i, &p)) < 0)
            return s_unreadable(a, rc);
    }
    r->tree_size = size;
    r->proofs = self->items;
    r->n_proofs = req->n_seqs;
    self->proofs += req->n_seqs;
    return 0;
}

static int
s_consistency(pd_translog_t *self, const parley__request_t *req, parley__reply_t *r,
              pd_translog_answer_t *a)
{
    self->requests_consistency++;
    uint64_t size = 0;
    int rc = s_size(self, req->new_size, "new_size", &size, a);
    if (rc < 0)
        return rc;
    if (req->old_size > size)
        return s_reject(a, PARLEY_EBADREQUEST,
                        "old_size %" PRIu64 " is above new_size %" PRIu64,
                        req->old_size, size);
    parley__tlog_proof_t p;
    if ((rc = pd_tree_prove(self->tree, PARLEY__TLOG_CONSISTENCY, req->old_size, size,
                            &p)) < 0 ||
        (rc = s_item(self, 0, &p)) < 0)
        return s_unreadable(a, rc);
    r->tree_size = size;
    r->proofs = self->items;
    r->n_proofs = 1;
    if (req->with_range) {
        parley__tlog_range_t range;
        if ((rc = pd_tree_range(self->tree, req->old_size, &range)) < 0)
            return s_unreadable(a, rc);
        for (unsigned i = 0; i < range.count; i++) {
            memcpy(self->range[i], range.subtree[i].b, PARLEY__TLOG_HASH_BYTES);
            self->range_items[i] = (parley__bytes_t){ self->range[i],
                                                      PARLEY__TLOG_HASH_BYTES };
        }
        r->range = self->range_items;
        r->n_range = range.count;
    }
    self->proofs++;
    return 0;
}

int
pd_translog_answer(pd_translog_t *t, const parley__request_t *req,
                   pd_translog_answer_t *a)
{
    a->reply = NULL;
    a->len = 0;
    a->detail[0] = '\0';
    parley__reply_t r = { .request_id = req->request_id, .type = PARLEY__REPLY_PROOF };
    int rc;
    if (t->failed)
        return s_reject(a, PARLEY_EUNAVAILABLE, "the Merkle tree failed");
    switch (req->op) {
    case PARLEY__OP_CHECKPOINT:
        t->requests_checkpoint++;
        if (t->key == NULL)
            return s_reject(a, PARLEY_EUNAVAILABLE,
                            "this daemon has no log key: checkpoints are not signed");
        if (t->published == NULL)
            return s_reject(a, PARLEY_EUNAVAILABLE, "no checkpoint yet");
        r.tree_size = t->cp_size;
        rc = 0;
        break;
    case PARLEY__OP_INCLUSION:
        rc = s_inclusion(t, req, &r, a);
        break;
    case PARLEY__OP_CONSISTENCY:
        rc = s_consistency(t, req, &r, a);
        break;
    default:
        return s_reject(a, PARLEY_EBADREQUEST, "not a transparency log request");
    }
    if (rc < 0)
        return rc;
    if (t->published != NULL && r.tree_size == t->cp_size)
        r.checkpoint = (parley__bytes_t){ (const uint8_t *)t->published,
                                          t->published_len };
    size_t len;
    if ((rc = parley__reply_encode(&r, t->abuf, S_ANSWER_MAX, &len)) < 0)
        return s_unreadable(a, rc);
    a->reply = t->abuf;
    a->len = len;
    return 0;
}
