/*
 * logcheck.c - checkpoints under a policy, evidence texts, and the
 * verifier of subscribers and replays (logcheck.h).
 *
 * Memory: the verifier holds its trusted checkpoint and at most one
 * candidate and one "shown" checkpoint (each a few KiB), the compact range
 * of its own tree (all mode: 64 hashes), the updates not yet proven (some
 * mode: up to PARLEY__LOG_PENDING_MAX, each with a copy of its bytes for
 * evidence), and a small queue of events.
 */
#include "logcheck.h"

#include "keys.h"
#include "types.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_EVENTS_MAX 32
#define S_RETRY_MS 1000          /* after a failed request */
#define S_EVIDENCE_MAGIC "parley evidence v1\n"

static int
s_fail(const char **why, const char *reason, int code)
{
    if (why != NULL)
        *why = reason;
    return code;
}

/* ========================================================= checkpoints */

int
parley__checkpoint_check(const parley__logpolicy_t *pol, const void *note, size_t len,
                         parley_checkpoint_t **out, const char **why)
{
    *out = NULL;
    parley__checkpoint_t c;
    parley__note_t *n = NULL;
    int rc = parley__checkpoint_open(note, len, pol->origin, pol->pk, &c, &n, why);
    if (rc != 0)
        return rc;
    /* The log's time stamp: none is fine, a bad one is not. */
    uint64_t ts = 0;
    rc = parley__cosig_verify(n, pol->origin, pol->pk, &ts, why);
    if (rc == PARLEY_EUNKNOWNSIGNER) {
        ts = 0;
        rc = 0;
    } else if (rc != 0 || ts > (uint64_t)INT64_MAX / 1000) {
        parley__note_destroy(&n);
        return rc != 0 ? rc : s_fail(why, "time stamp out of range", PARLEY_EMALFORMED);
    }
    size_t cosigners = 0;
    for (size_t i = 0; i < pol->n_witnesses; i++)
        if (parley__cosig_verify(n, pol->witness[i].name, pol->witness[i].pk, NULL,
                                 NULL) == 0)
            cosigners++;
    size_t text_len = n->text_len;
    parley__note_destroy(&n);
    if (cosigners < pol->need)
        return s_fail(why, "too few witness cosignatures", PARLEY_EUNWITNESSED);
    parley_checkpoint_t *cp = calloc(1, sizeof(*cp));
    if (cp == NULL || (cp->note = malloc(len + 1)) == NULL) {
        free(cp);
        return -ENOMEM;
    }
    memcpy(cp->note, note, len);
    cp->note[len] = '\0';
    cp->len = len;
    cp->text_len = text_len;
    memcpy(cp->origin, c.origin, sizeof(cp->origin));
    cp->size = c.size;
    cp->root = c.root;
    cp->time = (int64_t)ts;
    cp->cosigners = cosigners;
    *out = cp;
    return 0;
}

/* Copy a static reason into detail. */
static void
s_detail(char *detail, size_t cap, const char *why, int rc)
{
    if (detail != NULL && cap > 0)
        snprintf(detail, cap, "%s", why != NULL ? why : parley_strerror(rc));
}

int
parley__checkpoint_policy(const parley_keyring_t *ring, const void *note, size_t len,
                          parley__logpolicy_t *pol, const char **why)
{
    /* The origin is the first line; nothing in it counts before the
     * signature does, it only picks the key to check with. */
    const char *t = note;
    const char *nl = t != NULL && len > 0 ? memchr(t, '\n', len) : NULL;
    size_t n = nl != NULL ? (size_t)(nl - t) : 0;
    char origin[PARLEY__NOTE_NAME_MAX + 1];
    if (n == 0 || n > PARLEY__NOTE_NAME_MAX)
        return s_fail(why, "not a checkpoint (no origin line)", PARLEY_EMALFORMED);
    memcpy(origin, t, n);
    origin[n] = '\0';
    int rc = parley__keyring_logpolicy(ring, origin, pol);
    if (rc < 0)
        return s_fail(why, "the keyring has no log: line for this origin",
                      PARLEY_EUNKNOWNSIGNER);
    return 0;
}

int
parley_checkpoint_verify(const parley_keyring_t *ring, const void *note, size_t len,
                         parley_checkpoint_t **out, char *detail, size_t cap)
{
    const char *why = NULL;
    if (out == NULL || (note == NULL && len > 0))
        return PARLEY_EARG;
    *out = NULL;
    parley__logpolicy_t pol;
    int rc = parley__checkpoint_policy(ring, note, len, &pol, &why);
    if (rc == 0)
        rc = parley__checkpoint_check(&pol, note, len, out, &why);
    if (rc != 0)
        s_detail(detail, cap, why, rc);
    return rc;
}

int
parley_checkpoint_load(const parley_keyring_t *ring, const char *path,
                       parley_checkpoint_t **out, char *detail, size_t cap)
{
    if (out == NULL || path == NULL)
        return PARLEY_EARG;
    *out = NULL;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int rc = -errno;
        if (detail != NULL && cap > 0)
            snprintf(detail, cap, "%s: %s", path, strerror(-rc));
        return rc;
    }
    char *buf = malloc(PARLEY__NOTE_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, PARLEY__NOTE_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return -ENOMEM;
    int rc = parley_checkpoint_verify(ring, buf, n, out, detail, cap);
    free(buf);
    return rc;
}

parley_checkpoint_t *
parley__checkpoint_dup(const parley_checkpoint_t *cp)
{
    if (cp == NULL)
        return NULL;
    parley_checkpoint_t *d = malloc(sizeof(*d));
    if (d == NULL)
        return NULL;
    *d = *cp;
    if ((d->note = malloc(cp->len + 1)) == NULL) {
        free(d);
        return NULL;
    }
    memcpy(d->note, cp->note, cp->len + 1);
    return d;
}

void
parley_checkpoint_destroy(parley_checkpoint_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    free((*cp)->note);
    free(*cp);
    *cp = NULL;
}

const char *
parley_checkpoint_origin(const parley_checkpoint_t *cp)
{
    return cp != NULL ? cp->origin : NULL;
}

uint64_t
parley_checkpoint_size(const parley_checkpoint_t *cp)
{
    return cp != NULL ? cp->size : 0;
}

const uint8_t *
parley_checkpoint_root(const parley_checkpoint_t *cp)
{
    return cp != NULL ? cp->root.b : NULL;
}

int64_t
parley_checkpoint_time(const parley_checkpoint_t *cp)
{
    return cp != NULL ? cp->time : 0;
}

size_t
parley_checkpoint_cosigners(const parley_checkpoint_t *cp)
{
    return cp != NULL ? cp->cosigners : 0;
}

const char *
parley_checkpoint_note(const parley_checkpoint_t *cp, size_t *len)
{
    if (len != NULL)
        *len = cp != NULL ? cp->len : 0;
    return cp != NULL ? cp->note : NULL;
}

/* ============================================================ evidence */

/* Append printf output to a growing buffer; false when out of memory. */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} s_buf_t;

static void
s_addf(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_addf(s_buf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p != NULL ? b->p + b->len : NULL,
                          b->p != NULL ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p != NULL && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 256;
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* "name <base64 of bytes>\n" */
static void
s_add_b64(s_buf_t *b, const char *name, const void *bytes, size_t len)
{
    size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *t = malloc(n);
    if (t == NULL) {
        b->oom = true;
        return;
    }
    sodium_bin2base64(t, n, bytes, len, sodium_base64_VARIANT_ORIGINAL);
    s_addf(b, "%s %s\n", name, t);
    free(t);
}

char *
parley__evidence_format(const parley__evidence_t *e)
{
    s_buf_t b = { 0 };
    s_addf(&b, S_EVIDENCE_MAGIC);
    s_addf(&b, "kind %s\n", e->kind);
    /* One line: the reason is ours, but keep it so whatever it says. */
    char reason[512];
    snprintf(reason, sizeof(reason), "%s", e->reason != NULL ? e->reason : "");
    for (char *c = reason; *c != '\0'; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    s_addf(&b, "reason %s\n", reason);
    const parley_checkpoint_t *cps[2] = { e->a, e->b };
    for (int i = 0; i < 2; i++)
        if (cps[i] != NULL)
            s_add_b64(&b, "checkpoint", cps[i]->note, cps[i]->len);
    if (e->shown != NULL)
        s_add_b64(&b, "shown", e->shown, e->shown_len);
    if (e->proof != NULL)
        s_add_b64(&b, "proof", e->proof, e->proof_len);
    if (e->update != NULL) {
        s_addf(&b, "seq %" PRIu64 "\n", e->seq);
        s_add_b64(&b, "update", e->update, e->update_len);
    }
    if (e->own_root != NULL) {
        s_addf(&b, "own-size %" PRIu64 "\n", e->own_size);
        s_add_b64(&b, "own-root", e->own_root->b, sizeof(e->own_root->b));
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

void
parley__evidence_doc_clear(parley__evidence_doc_t *d)
{
    free(d->notes[0]);
    free(d->notes[1]);
    free(d->shown);
    free(d->proof);
    free(d->update);
    memset(d, 0, sizeof(*d));
}

/* Decode base64 of value (vlen chars) into a new buffer. 0 or error. */
static int
s_b64_field(const char *v, size_t vlen, uint8_t **out, size_t *len, bool text)
{
    size_t cap = vlen / 4 * 3 + 1;
    uint8_t *p = malloc(cap);
    if (p == NULL)
        return -ENOMEM;
    size_t n;
    const char *end;
    if (sodium_base642bin(p, cap, v, vlen, NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || end != v + vlen) {
        free(p);
        return PARLEY_EMALFORMED;
    }
    if (text)
        p[n] = '\0';
    *out = p;
    *len = n;
    return 0;
}

int
parley__evidence_parse(const char *text, size_t len, parley__evidence_doc_t *d,
                       const char **why)
{
    memset(d, 0, sizeof(*d));
    const size_t ml = strlen(S_EVIDENCE_MAGIC);
    if (text == NULL || len < ml || memcmp(text, S_EVIDENCE_MAGIC, ml) != 0)
        return s_fail(why, "not a parley evidence v1 text", PARLEY_EMALFORMED);
    size_t p = ml, notes = 0;
    int rc = 0;
    while (p < len && rc == 0) {
        const char *line = text + p;
        const char *nl = memchr(line, '\n', len - p);
        if (nl == NULL) {
            rc = s_fail(why, "a line does not end with a newline", PARLEY_EMALFORMED);
            break;
        }
        size_t ll = (size_t)(nl - line);
        p += ll + 1;
        const char *sp = memchr(line, ' ', ll);
        if (sp == NULL) {
            rc = s_fail(why, "a line is not \"name value\"", PARLEY_EMALFORMED);
            break;
        }
        size_t kl = (size_t)(sp - line);
        const char *v = sp + 1;
        size_t vl = ll - kl - 1;
#define S_IS(k) (kl == strlen(k) && memcmp(line, k, kl) == 0)
        if (S_IS("kind") && vl < sizeof(d->kind) && d->kind[0] == '\0') {
            memcpy(d->kind, v, vl);
            d->kind[vl] = '\0';
        } else if (S_IS("reason") && d->reason[0] == '\0') {
            size_t n = vl < sizeof(d->reason) - 1 ? vl : sizeof(d->reason) - 1;
            memcpy(d->reason, v, n);
            d->reason[n] = '\0';
        } else if (S_IS("checkpoint") && notes < 2) {
            rc = s_b64_field(v, vl, (uint8_t **)&d->notes[notes], &d->note_len[notes],
                             true);
            notes++;
        } else if (S_IS("shown") && d->shown == NULL) {
            rc = s_b64_field(v, vl, (uint8_t **)&d->shown, &d->shown_len, true);
        } else if (S_IS("proof") && d->proof == NULL) {
            rc = s_b64_field(v, vl, &d->proof, &d->proof_len, false);
        } else if (S_IS("seq")) {
            rc = parley__note_decimal(v, vl, UINT64_MAX, &d->seq);
        } else if (S_IS("update") && d->update == NULL) {
            rc = s_b64_field(v, vl, &d->update, &d->update_len, false);
        } else if (S_IS("own-size")) {
            rc = parley__note_decimal(v, vl, UINT64_MAX, &d->own_size);
        } else if (S_IS("own-root") && !d->have_own_root) {
            rc = parley__note_hash_decode(v, vl, &d->own_root);
            d->have_own_root = rc == 0;
        } else {
            rc = s_fail(why, "an unknown or repeated line", PARLEY_EMALFORMED);
        }
#undef S_IS
        if (rc == PARLEY_EMALFORMED)
            s_fail(why, "a value does not decode", PARLEY_EMALFORMED);
    }
    if (rc == 0 && (d->kind[0] == '\0' || notes == 0))
        rc = s_fail(why, "no kind or no checkpoint", PARLEY_EMALFORMED);
    if (rc != 0)
        parley__evidence_doc_clear(d);
    return rc;
}

/* ============================================================ verifier */

typedef enum {
    S_REQ_NONE = 0,
    S_REQ_CHAIN,    /* consistency trusted -> candidate */
    S_REQ_RANGE,    /* all: the range at fold_start, and its consistency */
    S_REQ_FOLD,     /* all: own tree <-> trusted */
    S_REQ_INCL,     /* some: inclusion proofs */
} s_req_t;

/* An update handed out, its leaf hash, and its bytes for evidence. */
typedef struct {
    uint64_t seq;
    parley__tlog_hash_t leaf;
    uint8_t *env;               /* some mode only */
    size_t len;
} s_pend_t;

struct parley__logcheck {
    parley__logpolicy_t pol;
    bool all;
    char *state_path;
    bool broken;                /* a contradiction was found: stop */
    int64_t started_at;         /* wall ms */

    parley_checkpoint_t *trusted;
    unsigned src;               /* where what comes now comes from */
    unsigned trusted_src;       /* where the trusted tree (size and root)
                                   was first shown */
    unsigned cand_src;          /* and the candidate */
    parley__logcheck_counts_t counts;
    int64_t fresh_at;           /* wall ms the trusted one counts as of */
    bool stale;                 /* LOG_STALE raised, not cleared */
    uint64_t verified;          /* last size LOG_VERIFIED announced */
    parley_checkpoint_t *cand;  /* larger, waiting for its proof */
    parley_checkpoint_t *shown; /* newest not trusted, for evidence */
    const char *shown_why;

    /* the request out */
    s_req_t req;
    bool req_out;
    int64_t retry_at;
    uint64_t req_old, req_new;
    parley__tlog_hash_t req_root; /* FOLD: the own root at req_old/new */
    uint64_t req_own;             /* FOLD: the own size */
    uint64_t seqs[PARLEY__INCLUSION_MAX];
    size_t n_seqs;

    /* all mode */
    bool fold_ok;               /* fold holds the leaves [0, fold.size) */
    parley__tlog_range_t fold;
    uint64_t fold_start;        /* the range is needed at this size */
    uint64_t fold_checked;      /* trusted size compared with the fold */
    uint64_t handed;            /* updates handed out */

    s_pend_t *pend;             /* all: waiting for the range; some: unproven */
    size_t n_pend, cap_pend;
    parley__tlog_batch_t batch; /* some: the authenticated nodes of a size */

    parley__logcheck_event_t ev[S_EVENTS_MAX];
    size_t n_ev;
};

void
parley__logcheck_event_clear(parley__logcheck_event_t *ev)
{
    free(ev->evidence);
    parley_checkpoint_destroy(&ev->checkpoint);
    memset(ev, 0, sizeof(*ev));
}

/* Queue an event; takes evidence. VERIFIED and REJECTED give way when
 * the queue is full, the alarms never do (the oldest VERIFIED goes). */
static void
s_event(parley__logcheck_t *lc, parley_event_type_t type, uint64_t seq, int code,
        char *evidence, const parley_checkpoint_t *cp)
{
    if (lc->n_ev == S_EVENTS_MAX) {
        size_t drop = S_EVENTS_MAX;
        for (size_t i = 0; i < lc->n_ev && drop == S_EVENTS_MAX; i++)
            if (lc->ev[i].type == PARLEY_EVENT_LOG_VERIFIED ||
                lc->ev[i].type == PARLEY_EVENT_REJECTED)
                drop = i;
        bool minor = type == PARLEY_EVENT_LOG_VERIFIED || type == PARLEY_EVENT_REJECTED;
        if (drop == S_EVENTS_MAX || minor) {
            free(evidence);
            return;
        }
        parley__logcheck_event_clear(&lc->ev[drop]);
        memmove(&lc->ev[drop], &lc->ev[drop + 1],
                (lc->n_ev - drop - 1) * sizeof(lc->ev[0]));
        lc->n_ev--;
    }
    parley__logcheck_event_t *e = &lc->ev[lc->n_ev++];
    *e = (parley__logcheck_event_t){ .type = type, .seq = seq, .code = code,
                                     .evidence = evidence,
                                     .checkpoint = parley__checkpoint_dup(cp) };
}

/* A contradiction: the alarm with its evidence; nothing more is checked. */
static void
s_inconsistent(parley__logcheck_t *lc, uint64_t seq, const parley__evidence_t *e)
{
    s_event(lc, PARLEY_EVENT_LOG_INCONSISTENT, seq, PARLEY_EINCONSISTENT,
            parley__evidence_format(e), NULL);
    lc->broken = true;
    lc->req_out = false;
    lc->req = S_REQ_NONE;
}

/* Write the trusted checkpoint to the state file (atomically). */
static void
s_save(parley__logcheck_t *lc)
{
    if (lc->state_path == NULL || lc->trusted == NULL)
        return;
    size_t n = strlen(lc->state_path) + 8;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return;
    snprintf(tmp, n, "%s.tmp", lc->state_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    size_t off = 0;
    while (ok && off < lc->trusted->len) {
        ssize_t w = write(fd, lc->trusted->note + off, lc->trusted->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += w > 0 ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, lc->state_path) != 0)
        unlink(tmp);
    free(tmp);
}

/* How fresh a trusted checkpoint is: its stamp, or when it came. */
static int64_t
s_fresh(const parley_checkpoint_t *cp, int64_t now_ms)
{
    return cp->time > 0 ? cp->time * 1000 : now_ms;
}

/* Make cp, which came from src, the trusted checkpoint (taking it). */
static void
s_trust(parley__logcheck_t *lc, parley_checkpoint_t *cp, unsigned src, int64_t now_ms)
{
    bool grew = lc->trusted == NULL || cp->size != lc->trusted->size;
    parley_checkpoint_destroy(&lc->trusted);
    lc->trusted = cp;
    lc->trusted_src = src;
    int64_t f = s_fresh(cp, now_ms);
    if (f > lc->fresh_at)
        lc->fresh_at = f;
    if (grew)
        s_save(lc);
    if (lc->stale && (lc->pol.max_staleness_ms == 0 ||
                      now_ms - lc->fresh_at <= lc->pol.max_staleness_ms)) {
        lc->stale = false;
        s_event(lc, PARLEY_EVENT_LOG_VERIFIED, cp->size, 0, NULL, cp);
    }
}

/* Remember the newest checkpoint shown but not trusted (for evidence). */
static void
s_shown(parley__logcheck_t *lc, const void *note, size_t len, const char *why)
{
    parley_checkpoint_t *cp = calloc(1, sizeof(*cp));
    if (cp == NULL || (cp->note = malloc(len + 1)) == NULL) {
        free(cp);
        return;
    }
    memcpy(cp->note, note, len);
    cp->note[len] = '\0';
    cp->len = len;
    parley_checkpoint_destroy(&lc->shown);
    lc->shown = cp;
    lc->shown_why = why;
}

int
parley__logcheck_new(const parley__logpolicy_t *pol, bool all, const char *state_path,
                     int64_t now_ms, parley__logcheck_t **out, const char **why)
{
    *out = NULL;
    parley__logcheck_t *lc = calloc(1, sizeof(*lc));
    if (lc == NULL)
        return -ENOMEM;
    lc->pol = *pol;
    lc->all = all;
    lc->started_at = now_ms;
    lc->fresh_at = now_ms; /* a grace of max_staleness from the start */
    parley__tlog_range_init(&lc->fold);
    if (state_path != NULL) {
        if ((lc->state_path = strdup(state_path)) == NULL) {
            parley__logcheck_destroy(&lc);
            return -ENOMEM;
        }
        FILE *f = fopen(state_path, "re");
        if (f == NULL && errno != ENOENT) {
            int rc = -errno;
            parley__logcheck_destroy(&lc);
            return s_fail(why, "the log state file cannot be read", rc);
        }
        if (f != NULL) {
            char *buf = malloc(PARLEY__NOTE_MAX + 1);
            size_t n = buf != NULL ? fread(buf, 1, PARLEY__NOTE_MAX + 1, f) : 0;
            fclose(f);
            int rc = buf == NULL ? -ENOMEM
                                 : parley__checkpoint_check(pol, buf, n, &lc->trusted, why);
            free(buf);
            if (rc != 0) {
                parley__logcheck_destroy(&lc);
                return rc;
            }
        }
    }
    *out = lc;
    return 0;
}

void
parley__logcheck_destroy(parley__logcheck_t **lcp)
{
    if (lcp == NULL || *lcp == NULL)
        return;
    parley__logcheck_t *lc = *lcp;
    parley_checkpoint_destroy(&lc->trusted);
    parley_checkpoint_destroy(&lc->cand);
    parley_checkpoint_destroy(&lc->shown);
    for (size_t i = 0; i < lc->n_pend; i++)
        free(lc->pend[i].env);
    free(lc->pend);
    parley__tlog_batch_clear(&lc->batch);
    for (size_t i = 0; i < lc->n_ev; i++)
        parley__logcheck_event_clear(&lc->ev[i]);
    free(lc->state_path);
    free(lc);
    *lcp = NULL;
}

/* --- what can be settled without asking the daemon ----------------------- */

static void
s_settle(parley__logcheck_t *lc)
{
    const parley_checkpoint_t *t = lc->trusted;
    if (lc->broken || t == NULL)
        return;
    if (lc->all) {
        if (lc->handed == 0 && lc->verified < t->size) {
            /* Nothing handed out yet: nothing to prove. */
            lc->verified = t->size;
            s_event(lc, PARLEY_EVENT_LOG_VERIFIED, t->size, 0, NULL, t);
            return;
        }
        if (lc->fold_ok && lc->fold.size == t->size && lc->fold_checked < t->size) {
            parley__tlog_hash_t own;
            parley__tlog_range_root(&lc->fold, &own);
            if (!parley__tlog_hash_equal(&own, &t->root)) {
                parley__evidence_t e = {
                    .kind = "consistency",
                    .reason = "the updates delivered up to the checkpoint's size do "
                              "not make the root the log signed",
                    .a = t, .own_size = lc->fold.size, .own_root = &own
                };
                s_inconsistent(lc, t->size, &e);
                return;
            }
            lc->fold_checked = t->size;
        }
        if (lc->fold_checked == t->size && lc->verified < t->size) {
            lc->verified = t->size;
            s_event(lc, PARLEY_EVENT_LOG_VERIFIED, t->size, 0, NULL, t);
        }
        return;
    }
    for (size_t i = 0; i < lc->n_pend; i++)
        if (lc->pend[i].seq <= t->size)
            return;
    if (lc->verified < t->size) {
        lc->verified = t->size;
        s_event(lc, PARLEY_EVENT_LOG_VERIFIED, t->size, 0, NULL, t);
    }
}

/* --- checkpoints ------------------------------------------------------------ */

void
parley__logcheck_checkpoint(parley__logcheck_t *lc, const void *note, size_t len,
                            int64_t now_ms)
{
    if (lc == NULL || lc->broken)
        return;
    parley_checkpoint_t *cp = NULL;
    const char *why = NULL;
    int rc = parley__checkpoint_check(&lc->pol, note, len, &cp, &why);
    if (rc == -ENOMEM)
        return;
    if (rc != 0) {
        s_shown(lc, note, len, why);
        if (rc != PARLEY_EUNWITNESSED) {
            /* A forgery or damage: reported; it proves nothing about the log. */
            size_t n = len < 4096 ? len : 4096;
            char *text = malloc(n + 1);
            if (text != NULL) {
                memcpy(text, note, n);
                text[n] = '\0';
            }
            s_event(lc, PARLEY_EVENT_REJECTED, 0, rc, text, NULL);
        }
        return;
    }
    parley_checkpoint_t *t = lc->trusted;
    if (t == NULL) {
        s_trust(lc, cp, lc->src, now_ms); /* the first one, with nothing to check it by */
    } else if (cp->size == t->size) {
        if (!parley__tlog_hash_equal(&cp->root, &t->root)) {
            parley__evidence_t e = { .kind = "fork",
                                     .reason = "two checkpoints of one tree size "
                                               "with two roots",
                                     .a = t, .b = cp };
            s_inconsistent(lc, cp->size, &e);
            parley_checkpoint_destroy(&cp);
            return;
        }
        if (lc->src != lc->trusted_src)
            lc->counts.roots_across++;
        /* Fresher: it refreshes the time; the tree stays the one first
         * shown by where it came from. */
        if (cp->time > t->time || (cp->time == 0 && t->time == 0))
            s_trust(lc, cp, lc->trusted_src, now_ms);
        else
            parley_checkpoint_destroy(&cp);
    } else if (cp->size < t->size) {
        /* Signed later: a daemon rolled back to an older copy, or a node
         * of a cluster that lags (this log cannot tell them apart). Not
         * trusted; shown, so that it is in the evidence of LOG_STALE if
         * it lasts, and a history that forks shows when it grows past
         * the trusted size. Signed earlier: an old one, replayed. */
        if (cp->time > t->time && t->time > 0) {
            lc->counts.behind++;
            s_shown(lc, note, len,
                    "behind the checkpoint trusted: a rollback, or a node "
                    "that lags");
        }
        parley_checkpoint_destroy(&cp);
    } else {
        if (lc->cand == NULL || cp->size >= lc->cand->size) {
            parley_checkpoint_destroy(&lc->cand);
            lc->cand = cp;
            lc->cand_src = lc->src;
        } else {
            parley_checkpoint_destroy(&cp);
        }
    }
    s_settle(lc);
}

/* --- updates ------------------------------------------------------------------- */

static int
s_push(parley__logcheck_t *lc, uint64_t seq, const parley__tlog_hash_t *leaf,
       const void *env, size_t len)
{
    if (lc->n_pend == PARLEY__LOG_PENDING_MAX) {
        /* Proofs fell too far behind (no checkpoint covers them): the
         * oldest goes unproven; staleness says why. */
        free(lc->pend[0].env);
        memmove(&lc->pend[0], &lc->pend[1], (lc->n_pend - 1) * sizeof(lc->pend[0]));
        lc->n_pend--;
    }
    if (lc->n_pend == lc->cap_pend) {
        size_t cap = lc->cap_pend ? lc->cap_pend * 2 : 64;
        s_pend_t *p = realloc(lc->pend, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        lc->pend = p;
        lc->cap_pend = cap;
    }
    s_pend_t *p = &lc->pend[lc->n_pend];
    *p = (s_pend_t){ .seq = seq, .leaf = *leaf };
    if (env != NULL) {
        if ((p->env = malloc(len)) == NULL)
            return -ENOMEM;
        memcpy(p->env, env, len);
        p->len = len;
    }
    lc->n_pend++;
    return 0;
}

static void
s_clear_pend(parley__logcheck_t *lc)
{
    for (size_t i = 0; i < lc->n_pend; i++)
        free(lc->pend[i].env);
    lc->n_pend = 0;
}

/* Fold one leaf into the own tree. */
static void
s_fold(parley__logcheck_t *lc, const parley__tlog_hash_t *leaf)
{
    parley__tlog_hash_t stored[64];
    size_t n;
    if (parley__tlog_range_append(&lc->fold, leaf, stored, &n) != 0)
        lc->fold_ok = false;
}

int
parley__logcheck_update(parley__logcheck_t *lc, uint64_t seq, const void *env,
                        size_t len)
{
    if (lc == NULL || lc->broken || seq == 0)
        return 0;
    parley__tlog_hash_t leaf;
    parley__tlog_leaf_hash(env, len, &leaf);
    int rc = 0;
    lc->handed++;
    if (!lc->all) {
        rc = s_push(lc, seq, &leaf, env, len);
    } else if (lc->fold_ok && seq == lc->fold.size + 1) {
        s_fold(lc, &leaf);
    } else if (!lc->fold_ok && lc->n_pend > 0 && seq == lc->pend[lc->n_pend - 1].seq + 1) {
        rc = s_push(lc, seq, &leaf, NULL, 0);
    } else {
        /* The start, or a jump (updates gone): begin again from the range
         * the daemon gives for seq - 1. */
        s_clear_pend(lc);
        parley__tlog_range_init(&lc->fold);
        lc->fold_checked = 0;
        lc->fold_start = seq - 1;
        if (seq == 1) {
            lc->fold_ok = true;
            s_fold(lc, &leaf);
        } else {
            lc->fold_ok = false;
            rc = s_push(lc, seq, &leaf, NULL, 0);
            if (lc->req_out && lc->req == S_REQ_RANGE)
                lc->req_out = false; /* for another start: its answer is dropped */
        }
    }
    s_settle(lc);
    return rc;
}

/* --- requests ------------------------------------------------------------------- */

int
parley__logcheck_want(parley__logcheck_t *lc, parley__request_t *req, int64_t now_ms)
{
    if (lc == NULL || lc->broken || lc->req_out || now_ms < lc->retry_at)
        return 0;
    const parley_checkpoint_t *t = lc->trusted;
    if (t == NULL)
        return 0;
    memset(req, 0, sizeof(*req));
    lc->req = S_REQ_NONE;
    if (lc->cand != NULL) {
        lc->req = S_REQ_CHAIN;
        req->op = PARLEY__OP_CONSISTENCY;
        req->old_size = lc->req_old = t->size;
        req->new_size = lc->req_new = lc->cand->size;
    } else if (lc->all && !lc->fold_ok && lc->n_pend > 0 && t->size >= lc->fold_start) {
        lc->req = S_REQ_RANGE;
        req->op = PARLEY__OP_CONSISTENCY;
        req->old_size = lc->req_old = lc->fold_start;
        req->new_size = lc->req_new = t->size;
        req->with_range = true;
    } else if (lc->all && lc->fold_ok && lc->fold_checked < t->size &&
               lc->fold.size != t->size && lc->fold.size > 0) {
        lc->req = S_REQ_FOLD;
        req->op = PARLEY__OP_CONSISTENCY;
        uint64_t f = lc->fold.size;
        req->old_size = lc->req_old = f < t->size ? f : t->size;
        req->new_size = lc->req_new = f < t->size ? t->size : f;
        lc->req_own = f;
        parley__tlog_range_root(&lc->fold, &lc->req_root);
    } else if (!lc->all) {
        lc->n_seqs = 0;
        for (size_t i = 0; i < lc->n_pend && lc->n_seqs < PARLEY__INCLUSION_MAX; i++)
            if (lc->pend[i].seq <= t->size)
                lc->seqs[lc->n_seqs++] = lc->pend[i].seq;
        if (lc->n_seqs == 0)
            return 0;
        lc->req = S_REQ_INCL;
        req->op = PARLEY__OP_INCLUSION;
        req->seqs = lc->seqs;
        req->n_seqs = lc->n_seqs;
        req->tree_size = lc->req_new = t->size;
    } else {
        return 0;
    }
    lc->req_out = true;
    return 1;
}

void
parley__logcheck_abandon(parley__logcheck_t *lc)
{
    if (lc != NULL)
        lc->req_out = false;
}

/* Decode proof i of the reply as kind with (m, n). 0 or EMALFORMED. */
static int
s_proof(const parley__reply_t *r, size_t i, uint8_t kind, uint64_t m, uint64_t n,
        parley__tlog_proof_t *p)
{
    if (i >= r->n_proofs ||
        parley__tlog_proof_decode(r->proofs[i].data, r->proofs[i].len, p, NULL) != 0 ||
        p->kind != kind || p->m != m || p->n != n)
        return PARLEY_EMALFORMED;
    return 0;
}

static void
s_on_chain(parley__logcheck_t *lc, const parley__reply_t *r, int64_t now_ms)
{
    parley__tlog_proof_t p;
    parley_checkpoint_t *c = lc->cand;
    if (c == NULL || c->size != lc->req_new)
        return; /* replaced meanwhile: asked again */
    bool ok = s_proof(r, 0, PARLEY__TLOG_CONSISTENCY, lc->req_old, lc->req_new, &p) == 0
              && parley__tlog_proof_check_consistency(&p, &lc->trusted->root, &c->root,
                                                      NULL) == 0;
    if (!ok) {
        parley__evidence_t e = {
            .kind = "consistency",
            .reason = "the log cannot prove that its new checkpoint extends the "
                      "one trusted before",
            .a = lc->trusted, .b = c,
            .proof = r->n_proofs > 0 ? r->proofs[0].data : NULL,
            .proof_len = r->n_proofs > 0 ? r->proofs[0].len : 0
        };
        s_inconsistent(lc, c->size, &e);
        return;
    }
    lc->cand = NULL;
    lc->counts.chains++;
    if (lc->src != lc->trusted_src)
        lc->counts.chains_across++;
    s_trust(lc, c, lc->cand_src, now_ms);
}

static void
s_on_range(parley__logcheck_t *lc, const parley__reply_t *r)
{
    parley__tlog_proof_t p;
    const parley_checkpoint_t *t = lc->trusted;
    if (lc->fold_ok || lc->fold_start != lc->req_old || t->size != lc->req_new)
        return; /* the start moved on meanwhile */
    parley__tlog_range_t range;
    parley__tlog_range_init(&range);
    range.size = lc->req_old;
    range.count = (unsigned)__builtin_popcountll(lc->req_old);
    bool ok = r->n_range == range.count;
    for (unsigned i = 0; ok && i < range.count; i++) {
        ok = r->range[i].len == PARLEY__TLOG_HASH_BYTES;
        if (ok)
            memcpy(range.subtree[i].b, r->range[i].data, PARLEY__TLOG_HASH_BYTES);
    }
    parley__tlog_hash_t old_root;
    if (ok) {
        parley__tlog_range_root(&range, &old_root);
        ok = s_proof(r, 0, PARLEY__TLOG_CONSISTENCY, lc->req_old, lc->req_new, &p) == 0
             && parley__tlog_proof_check_consistency(&p, &old_root, &t->root, NULL) == 0;
    }
    if (!ok) {
        parley__evidence_t e = {
            .kind = "consistency",
            .reason = "the log's tree before the first update delivered is not a "
                      "prefix of its checkpoint",
            .a = t, .own_size = lc->req_old,
            .own_root = r->n_range == range.count ? &old_root : NULL,
            .proof = r->n_proofs > 0 ? r->proofs[0].data : NULL,
            .proof_len = r->n_proofs > 0 ? r->proofs[0].len : 0
        };
        s_inconsistent(lc, lc->req_old, &e);
        return;
    }
    lc->fold = range;
    lc->fold_ok = true;
    for (size_t i = 0; i < lc->n_pend; i++)
        s_fold(lc, &lc->pend[i].leaf);
    s_clear_pend(lc);
}

static void
s_on_fold(parley__logcheck_t *lc, const parley__reply_t *r)
{
    parley__tlog_proof_t p;
    const parley_checkpoint_t *t = lc->trusted;
    uint64_t ts = t->size;
    if (!lc->fold_ok || (lc->req_old != ts && lc->req_new != ts))
        return;
    const parley__tlog_hash_t *old_root = lc->req_own < ts ? &lc->req_root : &t->root;
    const parley__tlog_hash_t *new_root = lc->req_own < ts ? &t->root : &lc->req_root;
    bool ok = s_proof(r, 0, PARLEY__TLOG_CONSISTENCY, lc->req_old, lc->req_new, &p) == 0
              && parley__tlog_proof_check_consistency(&p, old_root, new_root, NULL) == 0;
    if (!ok) {
        parley__evidence_t e = {
            .kind = "consistency",
            .reason = "the updates delivered do not make a tree consistent with "
                      "the log's checkpoint",
            .a = t, .own_size = lc->req_own, .own_root = &lc->req_root,
            .proof = r->n_proofs > 0 ? r->proofs[0].data : NULL,
            .proof_len = r->n_proofs > 0 ? r->proofs[0].len : 0
        };
        s_inconsistent(lc, ts, &e);
        return;
    }
    if (lc->fold_checked < ts)
        lc->fold_checked = ts;
}

static void
s_on_inclusion(parley__logcheck_t *lc, const parley__reply_t *r)
{
    const parley_checkpoint_t *t = lc->trusted;
    if (t->size != lc->req_new)
        return;
    /* One batch per tree size: proofs of one checkpoint share their
     * upper nodes, which are hashed once (tlog.h). */
    if (lc->batch.slots == NULL || lc->batch.size != t->size
        || !parley__tlog_hash_equal(&lc->batch.root, &t->root)) {
        parley__tlog_batch_clear(&lc->batch);
        if (parley__tlog_batch_init(&lc->batch, t->size, &t->root) < 0) {
            lc->retry_at = 0;
            return; /* asked again */
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < lc->n_pend; i++) {
        s_pend_t *pe = &lc->pend[i];
        size_t k = 0;
        while (k < lc->n_seqs && lc->seqs[k] != pe->seq)
            k++;
        if (k == lc->n_seqs) {
            lc->pend[kept++] = *pe;
            continue;
        }
        parley__tlog_proof_t p;
        bool ok = s_proof(r, k, PARLEY__TLOG_INCLUSION, pe->seq - 1, t->size, &p) == 0
                  && parley__tlog_batch_verify(&lc->batch, &pe->leaf, pe->seq - 1,
                                               p.path, p.count, NULL) == 0;
        if (!ok) {
            parley__evidence_t e = {
                .kind = "inclusion",
                .reason = "an update delivered under this seq is not the log's "
                          "record at that seq in its checkpoint",
                .a = t, .seq = pe->seq, .update = pe->env, .update_len = pe->len,
                .proof = k < r->n_proofs ? r->proofs[k].data : NULL,
                .proof_len = k < r->n_proofs ? r->proofs[k].len : 0
            };
            /* Keep the rest for destroy to free; nothing more is checked. */
            for (size_t j = i; j < lc->n_pend; j++)
                lc->pend[kept++] = lc->pend[j];
            lc->n_pend = kept;
            s_inconsistent(lc, pe->seq, &e);
            return;
        }
        free(pe->env);
    }
    lc->n_pend = kept;
}

void
parley__logcheck_reply(parley__logcheck_t *lc, const parley__reply_t *r, int code,
                       int64_t now_ms)
{
    if (lc == NULL || !lc->req_out)
        return;
    lc->req_out = false;
    if (r == NULL || code < 0 || r->type != PARLEY__REPLY_PROOF) {
        lc->retry_at = now_ms + S_RETRY_MS;
        return;
    }
    if (r->checkpoint.len > 0)
        parley__logcheck_checkpoint(lc, r->checkpoint.data, r->checkpoint.len, now_ms);
    if (lc->broken || lc->trusted == NULL)
        return;
    switch (lc->req) {
    case S_REQ_CHAIN:
        s_on_chain(lc, r, now_ms);
        break;
    case S_REQ_RANGE:
        s_on_range(lc, r);
        break;
    case S_REQ_FOLD:
        s_on_fold(lc, r);
        break;
    case S_REQ_INCL:
        s_on_inclusion(lc, r);
        break;
    default:
        break;
    }
    s_settle(lc);
}

/* --- the clock ---------------------------------------------------------------- */

void
parley__logcheck_tick(parley__logcheck_t *lc, int64_t now_ms)
{
    if (lc == NULL || lc->broken || lc->stale || lc->pol.max_staleness_ms <= 0)
        return;
    if (now_ms - lc->fresh_at <= lc->pol.max_staleness_ms)
        return;
    lc->stale = true;
    char reason[256];
    snprintf(reason, sizeof(reason),
             "no checkpoint newer than %lld ms was trusted%s%s",
             (long long)lc->pol.max_staleness_ms, lc->shown != NULL ? "; the newest shown: " : "",
             lc->shown != NULL && lc->shown_why != NULL ? lc->shown_why : "");
    parley__evidence_t e = { .kind = "stale", .reason = reason, .a = lc->trusted,
                             .shown = lc->shown != NULL ? lc->shown->note : NULL,
                             .shown_len = lc->shown != NULL ? lc->shown->len : 0 };
    char *text = lc->trusted != NULL || lc->shown != NULL ? parley__evidence_format(&e)
                                                           : NULL;
    s_event(lc, PARLEY_EVENT_LOG_STALE, lc->trusted ? lc->trusted->size : 0, 0, text,
            lc->trusted);
}

int64_t
parley__logcheck_wait(const parley__logcheck_t *lc, int64_t now_ms)
{
    if (lc == NULL)
        return -1;
    if (lc->n_ev > 0)
        return 0;
    if (lc->broken)
        return -1;
    int64_t w = -1;
    if (!lc->req_out && lc->retry_at > now_ms)
        w = lc->retry_at - now_ms;
    if (!lc->stale && lc->pol.max_staleness_ms > 0) {
        int64_t s = lc->fresh_at + lc->pol.max_staleness_ms + 1 - now_ms;
        if (s < 0)
            s = 0;
        if (w < 0 || s < w)
            w = s;
    }
    return w;
}

bool
parley__logcheck_next(parley__logcheck_t *lc, parley__logcheck_event_t *ev)
{
    if (lc == NULL || lc->n_ev == 0)
        return false;
    *ev = lc->ev[0];
    memmove(&lc->ev[0], &lc->ev[1], (lc->n_ev - 1) * sizeof(lc->ev[0]));
    lc->n_ev--;
    return true;
}

void
parley__logcheck_source(parley__logcheck_t *lc, unsigned src)
{
    if (lc != NULL)
        lc->src = src;
}

parley__logcheck_counts_t
parley__logcheck_counts(const parley__logcheck_t *lc)
{
    parley__logcheck_counts_t none = { 0 };
    return lc != NULL ? lc->counts : none;
}

const parley_checkpoint_t *
parley__logcheck_trusted(const parley__logcheck_t *lc)
{
    return lc != NULL ? lc->trusted : NULL;
}

size_t
parley__logcheck_pending(const parley__logcheck_t *lc)
{
    if (lc == NULL)
        return 0;
    if (lc->all)
        return lc->fold_ok ? (size_t)(lc->fold.size - lc->fold_checked) : lc->n_pend;
    return lc->n_pend;
}
