/*
 * backbone_check.c - the backbone's check of each record it read against
 * the stream leader's (backbone.h).
 *
 * The check: a record is handed over only once the stream leader holds
 * the very same record at its seq (same subject, bytes and store time).
 * The follower's consumer reads from whichever replica it was placed on,
 * and a replica of nats-server 2.9.10 can hold other records than the
 * leader (docs/cluster.md, "Replicas that disagree"). The follower's
 * handler queues records unchecked (raw).
 *
 * The requests are asynchronous and pipelined: one STREAM.MSG.GET per
 * record (which in a clustered stream only the leader answers) for each
 * of the first S_CHECK_WINDOW raw records, each published with a reply
 * subject of its own, <ck_inbox>.<seq>.<request id>, on which one
 * wildcard subscription takes the answers. The thread that learns
 * something moves the check on itself (pd_backbone__check_advance_locked):
 * the follower's handler when it queues a record, the answers' callback
 * when an answer comes, the check thread when a deadline passes. Moving
 * on takes the answers strictly in seq order: a confirmed record goes to
 * the queue the loop drains, and every record that comes into the window
 * is asked about. An answer is matched by its request id, so an answer
 * that comes after its request was given up (or after the records were
 * dropped) is counted and left alone.
 *
 * An answer that decides nothing (no leader, an error, none within
 * S_CHECK_WAIT_MS) or says the leader holds no record there is asked
 * again S_CHECK_RETRY_MS later, when the record is the first raw one;
 * after S_ABSENT_MAX "none there" in a row the record counts as held
 * otherwise. A record the leader holds otherwise is dropped with
 * everything read after it, and the follower reads again from its seq
 * with a new consumer (placed anew); after S_RECHECK_MAX such re-reads of
 * one seq in a row the backbone is DIVERGED. The check thread only keeps
 * the deadlines: it sleeps until the earliest one (an answer due, a
 * record to ask again), and is woken only when one comes sooner.
 */
#include "backbone_int.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ============================================================ answers */

/* n decimal digits at *p into *out; moves *p on. 0 or -1. */
static int
s_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int
s_mdays(int y, int m)
{
    static const int n[12] = { 31, 28, 31, 30, 31, 30,
                               31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : n[m - 1];
}

int
pd_backbone__parse_time(const char *s, int64_t *ns)
{
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (s == NULL || s_digits(&p, 4, &y) < 0 || *p++ != '-'
        || s_digits(&p, 2, &mo) < 0 || *p++ != '-'
        || s_digits(&p, 2, &d) < 0 || (*p != 'T' && *p != 't'))
        return -1;
    p++;
    if (s_digits(&p, 2, &h) < 0 || *p++ != ':' || s_digits(&p, 2, &mi) < 0
        || *p++ != ':' || s_digits(&p, 2, &sec) < 0)
        return -1;
    if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1
        || d > s_mdays(y, mo) || h > 23 || mi > 59 || sec > 59)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits == 9)
                return -1;
            frac = frac * 10 + (*p - '0');
        }
        if (digits == 0)
            return -1;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (s_digits(&p, 2, &oh) < 0 || *p++ != ':'
            || s_digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
            return -1;
        off = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = sec };
    *ns = ((int64_t)timegm(&tm) - off) * S_NS_PER_S + frac;
    return 0;
}

/* What each base64 character stands for (the standard alphabet), plus
 * 1; 0: not one of them. */
static const uint8_t s_b64[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
    ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
    ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
    ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

int
pd_backbone__base64_decode(uint8_t *out, size_t cap, const char *b64,
                           size_t n, size_t *len)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t i = 0, o = 0;
    for (; i < n; i++) {
        uint8_t d = s_b64[(uint8_t)b64[i]];
        if (d == 0)
            break;
        acc = acc << 6 | (uint32_t)(d - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Left over: at most 4 bits, all zero, then one '=' per 2 of them
     * and nothing after. */
    if (bits > 4 || (acc & ((1u << bits) - 1u)) != 0)
        return -1;
    for (unsigned pad = bits / 2; pad > 0; pad--, i++)
        if (i >= n || b64[i] != '=')
            return -1;
    if (i != n)
        return -1;
    *len = o;
    return 0;
}

/* The fields of a record an answer holds (NUL-terminated texts, data
 * not: dlen characters of base64; NULL, 0: no bytes). */
typedef struct s_fields {
    uint64_t seq;
    const char *subject;
    const char *time;
    const char *data;
    size_t dlen;
} s_fields_t;

/* A record's fields f into out; both readers of an answer end here. */
static void
s_answer_record(const char *prefix, const s_fields_t *f, uint8_t **buf,
                size_t *cap, s_answer_t *out)
{
    if (pd_backbone__parse_time(f->time, &out->time_ns) < 0) {
        snprintf(out->why, sizeof(out->why),
                 "an answer with a store time not in RFC 3339");
        return;
    }
    size_t need = f->dlen / 4 * 3 + 3;
    if (need > *cap) {
        uint8_t *x = realloc(*buf, need);
        if (x == NULL) {
            snprintf(out->why, sizeof(out->why), "out of memory");
            return;
        }
        *buf = x;
        *cap = need;
    }
    size_t n = 0;
    if (f->dlen > 0
        && pd_backbone__base64_decode(*buf, *cap, f->data, f->dlen, &n)
               != 0) {
        snprintf(out->why, sizeof(out->why),
                 "an answer whose record is not base64");
        return;
    }
    out->seq = f->seq;
    pd_backbone__subject_key(prefix, f->subject, out->key_id);
    out->data = *buf;
    out->len = n;
    out->kind = S_ANS_RECORD;
}

s_ans_kind_t
pd_backbone__answer_parse_json(const char *prefix, const char *json,
                               size_t len, uint8_t **buf, size_t *cap,
                               s_answer_t *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = S_ANS_ERROR;
    json_error_t jerr;
    json_t *root = len > 0 ? json_loadb(json, len, 0, &jerr) : NULL;
    if (root == NULL) {
        /* No responders (a status message without a payload), say. */
        snprintf(out->why, sizeof(out->why), "%s",
                 len == 0 ? "an empty answer" : "an answer that is not JSON");
        return out->kind;
    }
    const json_t *m = json_object_get(root, "message");
    const json_t *e = json_object_get(root, "error");
    if (json_is_object(m)) {
        const json_t *seq = json_object_get(m, "seq");
        const json_t *data = json_object_get(m, "data"); /* absent: none */
        s_fields_t f = {
            .subject = json_string_value(json_object_get(m, "subject")),
            .time = json_string_value(json_object_get(m, "time")),
            .data = json_string_value(data),
            .dlen = json_is_string(data) ? json_string_length(data) : 0,
        };
        if (!json_is_integer(seq) || json_integer_value(seq) <= 0
            || f.subject == NULL || f.time == NULL
            || (data != NULL && !json_is_string(data))) {
            snprintf(out->why, sizeof(out->why),
                     "an answer without the record's seq, subject or time");
        } else {
            f.seq = (uint64_t)json_integer_value(seq);
            s_answer_record(prefix, &f, buf, cap, out);
        }
    } else if (json_integer_value(json_object_get(e, "err_code"))
               == S_NO_MESSAGE_ERR) {
        out->kind = S_ANS_NONE;
    } else {
        const char *d = json_string_value(json_object_get(e, "description"));
        snprintf(out->why, sizeof(out->why), "%s",
                 d != NULL ? d : "an answer without a record");
    }
    json_decref(root);
    return out->kind;
}

/* ------------------------------------------------- the scanner's steps */

#define S_SCAN_TEXT_MAX 128 /* a subject or time the scanner copies */

/*
 * A JSON string at *p (before end) of plain printable ASCII (no escape,
 * no control character, nothing beyond 0x7E): its characters into *s,
 * *n, and *p past its closing quote. Returns false if it is not one.
 */
static bool
s_scan_string(const char **p, const char *end, const char **s, size_t *n)
{
    const char *q = *p;
    if (q >= end || *q != '"')
        return false;
    const char *first = ++q;
    for (; q < end && *q != '"'; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e
            || *q == '\\')
            return false;
    if (q >= end)
        return false;
    *s = first;
    *n = (size_t)(q - first);
    *p = q + 1;
    return true;
}

/* A key at *p and its colon: which of names[] (n of them) it is, or -1
 * (not a plain string, another key, no colon). Moves *p past the colon. */
static int
s_scan_key(const char **p, const char *end, const char *const *names,
           int n)
{
    const char *k;
    size_t kl;
    if (!s_scan_string(p, end, &k, &kl) || *p >= end || **p != ':')
        return -1;
    (*p)++;
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == kl && memcmp(names[i], k, kl) == 0)
            return i;
    return -1;
}

/* A plain string value at *p copied NUL-terminated into out (cap bytes).
 * Returns false if it is not one or does not fit. */
static bool
s_scan_copy(const char **p, const char *end, char *out, size_t cap)
{
    const char *s;
    size_t n;
    if (!s_scan_string(p, end, &s, &n) || n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* The message object at *p: subject, seq, hdrs, data, time, each at most
 * once in any order, nothing else; subject, seq and time present. The
 * seq is 1 to 18 digits without a leading zero (what jansson reads as an
 * integer above 0). Returns false if it is not that. */
static bool
s_scan_message(const char **p, const char *end, s_fields_t *f,
               char subject[S_SCAN_TEXT_MAX], char time[S_SCAN_TEXT_MAX])
{
    static const char *const names[] = { "subject", "seq", "hdrs", "data",
                                         "time" };
    unsigned seen = 0;
    if (*p >= end || *(*p)++ != '{')
        return false;
    for (;;) {
        int k = s_scan_key(p, end, names, 5);
        if (k < 0 || (seen & (1u << k)) != 0)
            return false;
        seen |= 1u << k;
        const char *s;
        size_t n;
        switch (k) {
        case 0:
            if (!s_scan_copy(p, end, subject, S_SCAN_TEXT_MAX))
                return false;
            f->subject = subject;
            break;
        case 1:
            f->seq = 0;
            for (n = 0; *p < end && **p >= '0' && **p <= '9'; n++, (*p)++)
                f->seq = f->seq * 10 + (uint64_t)(**p - '0');
            if (n == 0 || n > 18 || (*p)[-(ptrdiff_t)n] == '0')
                return false;
            break;
        case 2:
            if (!s_scan_string(p, end, &s, &n))
                return false;
            break;
        case 3:
            if (!s_scan_string(p, end, &f->data, &f->dlen))
                return false;
            break;
        default:
            if (!s_scan_copy(p, end, time, S_SCAN_TEXT_MAX))
                return false;
            f->time = time;
            break;
        }
        if (*p >= end)
            return false;
        char c = *(*p)++;
        if (c == '}')
            return (seen & 0x13u) == 0x13u; /* subject, seq, time */
        if (c != ',')
            return false;
    }
}

bool
pd_backbone__answer_scan(const char *prefix, const char *json, size_t len,
                         uint8_t **buf, size_t *cap, s_answer_t *out)
{
    static const char *const names[] = { "type", "message" };
    const char *p = json, *end = json + len;
    char subject[S_SCAN_TEXT_MAX], time[S_SCAN_TEXT_MAX];
    s_fields_t f = { 0 };
    unsigned seen = 0;
    if (len == 0 || *p++ != '{')
        return false;
    for (;;) {
        int k = s_scan_key(&p, end, names, 2);
        if (k < 0 || (seen & (1u << k)) != 0)
            return false;
        seen |= 1u << k;
        const char *s;
        size_t n;
        if (k == 0 ? !s_scan_string(&p, end, &s, &n)
                   : !s_scan_message(&p, end, &f, subject, time))
            return false;
        if (p >= end)
            return false;
        char c = *p++;
        if (c == '}')
            break;
        if (c != ',')
            return false;
    }
    if (p != end || (seen & 2u) == 0)
        return false;
    memset(out, 0, sizeof(*out));
    out->kind = S_ANS_ERROR;
    s_answer_record(prefix, &f, buf, cap, out);
    return true;
}

s_ans_kind_t
pd_backbone__answer_parse(const char *prefix, const char *json, size_t len,
                          uint8_t **buf, size_t *cap, s_answer_t *out)
{
    if (pd_backbone__answer_scan(prefix, json, len, buf, cap, out))
        return out->kind;
    return pd_backbone__answer_parse_json(prefix, json, len, buf, cap, out);
}

/*
 * What answer a says the stream leader holds at r's seq. Returns 1 the
 * same record (subject, bytes, store time), 0 another one (why says
 * which), -1 no answer that decides (ask again later), -2 none there
 * (not yet applied by the leader, or never).
 */
static int
s_judge(const s_answer_t *a, const s_rec_t *r, char *why, size_t cap)
{
    if (a->kind == S_ANS_NONE) {
        snprintf(why, cap, "the leader holds none");
        return -2;
    }
    if (a->kind != S_ANS_RECORD) {
        snprintf(why, cap, "%s", a->why);
        return -1;
    }
    bool same = a->seq == r->seq && a->time_ns == r->time_ns
                && strcmp(a->key_id, r->key_id) == 0 && a->len == r->len
                && (a->len == 0 || memcmp(a->data, r->data, a->len) == 0);
    if (!same)
        snprintf(why, cap,
                 "the leader holds %zu bytes stored at %lld ms, the replica "
                 "%zu at %lld",
                 a->len, (long long)(a->time_ns / 1000000), r->len,
                 (long long)r->time_ms);
    return same ? 1 : 0;
}

/* ============================================================ the check */

/* A deadline at mono ms `at` is due: wake the check thread if it sleeps
 * until later. mu held. */
static void
s_timer_locked(pd_backbone_t *self, int64_t at)
{
    if (at < self->ck_timer_ms)
        pthread_cond_signal(&self->cv_check);
}

/*
 * The request id was answered (a, or NULL: not sent): leave the verdict
 * in its record, or in the check of the last record confirmed. Returns
 * whether the id was one still asked about. mu held.
 */
static bool
s_answered_locked(pd_backbone_t *self, uint64_t id, const s_answer_t *a)
{
    char why[PD_BACKBONE_DETAIL_MAX] = "";
    if (self->verify_prev && self->prev_ck == S_CK_ASKING
        && id == self->prev_id) {
        self->prev_ck = a != NULL && self->last_ok != NULL
                            ? s_judge(a, self->last_ok, why, sizeof(why))
                            : -1;
        if (self->prev_ck == 0) {
            /* The leader changed to a replica that holds other records
             * than the one that confirmed this node's: the stream's
             * history changed. (None there, -2: retention may just have
             * dropped it.) */
            self->diverged = true;
            pd_backbone__detail_locked(self,
                                       "stream %s seq %" PRIu64 " (applied): "
                                       "%s: the leader changed its history",
                                       self->stream, self->last_ok->seq, why);
            pd_backbone__state_locked(self);
        }
        return true;
    }
    int i = 0;
    for (s_rec_t *r = self->raw_head; r != NULL && i < S_CHECK_WINDOW;
         r = r->next, i++) {
        if (r->ck != S_CK_ASKING || r->ask_id != id)
            continue;
        r->ck = a != NULL ? s_judge(a, r, why, sizeof(why)) : -1;
        if (r->ck == 0 && (self->why_seq == 0 || r->seq < self->why_seq)) {
            self->why_seq = r->seq;
            snprintf(self->why, sizeof(self->why), "%s", why);
        }
        return true;
    }
    if (a != NULL)
        self->n_late++;
    return false;
}

/*
 * The leader holds another record at the seq of the first raw record:
 * drop it and every raw record after it, and read again from its seq
 * with a new subscription. Answers still due for them are late then (no
 * record has their ids). mu held.
 */
static void
s_reread_locked(pd_backbone_t *self, const char *why)
{
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
    self->prev_ck = S_CK_TODO;
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
 * After a re-read, the first record r the leader confirmed: the replica
 * read before may have been right and the leader changed to one that
 * holds other records. Then the records already handed over are not the
 * leader's any more (s_answered_locked says diverged). So the leader is
 * asked about the last record confirmed (into asks at *n) before r goes
 * on. mu held. Returns 1 to go on with r, 0 to wait (an answer, a retry,
 * or diverged).
 */
static int
s_verify_prev_locked(pd_backbone_t *self, const s_rec_t *r, s_ask_t *asks,
                     int *n)
{
    const s_rec_t *prev = self->last_ok;
    if (prev == NULL || prev->seq + 1 != r->seq) {
        self->verify_prev = false;
        return 1;
    }
    int64_t now = parley__mono_ms();
    switch (self->prev_ck) {
    case S_CK_TODO:
        if (self->conn_up) {
            self->prev_ck = S_CK_ASKING;
            self->prev_id = ++self->ck_next_id;
            self->prev_at = now + S_CHECK_WAIT_MS;
            asks[(*n)++] = (s_ask_t){ .seq = prev->seq, .id = self->prev_id };
            s_timer_locked(self, self->prev_at);
            return 0;
        }
        /* No connection: as no answer. */
        /* fall through */
    case -1:
        self->prev_ck = S_CK_LATER;
        self->prev_at = now + S_CHECK_RETRY_MS;
        s_timer_locked(self, self->prev_at);
        return 0;
    case S_CK_ASKING:
    case S_CK_LATER:
    case 0:
        return 0;
    default: /* 1, or -2: none there (retention) */
        self->verify_prev = false;
        return 1;
    }
}

/* The leader confirmed r, the first raw record: keep a copy of it (for
 * the check after a re-read) and queue it for the loop. mu held. */
static void
s_confirmed_locked(pd_backbone_t *self, s_rec_t *r)
{
    size_t need = sizeof(*r) + r->len;
    if (self->last_ok_cap < need) {
        s_rec_t *c = realloc(self->last_ok, need);
        if (c == NULL) {
            /* No copy: nothing to verify after a re-read. */
            free(self->last_ok);
            self->last_ok_cap = 0;
        } else {
            self->last_ok_cap = need;
        }
        self->last_ok = c;
    }
    if (self->last_ok != NULL)
        memcpy(self->last_ok, r, need);
    self->raw_head = r->next;
    if (self->raw_head == NULL)
        self->raw_tail = NULL;
    self->raw_n--;
    pd_backbone__recs_append(&self->rec_head, &self->rec_tail, r);
    self->confirmed = r->seq;
    self->n_checked++;
    self->absent = 0;
    if (r->seq >= self->recheck_seq)
        self->rechecks = 0;
    pd_backbone__signal_locked(self);
}

/* The first raw record r had no answer that decides (no leader to ask, or
 * none there): ask again in S_CHECK_RETRY_MS. mu held. */
static void
s_later_locked(pd_backbone_t *self, s_rec_t *r)
{
    r->ck = S_CK_LATER;
    self->ck_retry_ms = parley__mono_ms() + S_CHECK_RETRY_MS;
    s_timer_locked(self, self->ck_retry_ms);
}

/* Hand out ids to the records in the window still to be asked about,
 * into asks from n. Returns the new count. mu held. */
static int
s_collect_locked(pd_backbone_t *self, s_ask_t *asks, int n)
{
    if (!self->conn_up || self->diverged || self->closing)
        return n;
    int64_t deadline = 0;
    int i = 0;
    for (s_rec_t *r = self->raw_head; r != NULL && i < S_CHECK_WINDOW;
         r = r->next, i++) {
        if (r->ck != S_CK_TODO)
            continue;
        if (deadline == 0)
            deadline = parley__mono_ms() + S_CHECK_WAIT_MS;
        r->ck = S_CK_ASKING;
        r->ask_id = ++self->ck_next_id;
        r->ask_deadline = deadline;
        asks[n++] = (s_ask_t){ .seq = r->seq, .id = r->ask_id };
    }
    if (deadline != 0)
        s_timer_locked(self, deadline);
    return n;
}

int
pd_backbone__check_advance_locked(pd_backbone_t *self, s_ask_t *asks)
{
    int n = 0;
    while (!self->closing && !self->diverged && self->raw_head != NULL) {
        s_rec_t *r = self->raw_head;
        int has = r->ck;
        if (has == S_CK_ASKING || has == S_CK_LATER)
            break;
        if (has == S_CK_TODO) {
            if (self->conn_up)
                break; /* asked below */
            has = -1;  /* no connection: the leader is not asked */
        }
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
            break;
        }
        if (has == 0) {
            s_reread_locked(self, why);
            continue;
        }
        if (self->verify_prev && s_verify_prev_locked(self, r, asks, &n) == 0)
            break;
        s_confirmed_locked(self, r);
    }
    return s_collect_locked(self, asks, n);
}

void
pd_backbone__check_send(pd_backbone_t *self, s_ask_t *asks, int n)
{
    while (n > 0) {
        uint64_t failed[S_CHECK_WINDOW + 1];
        int n_failed = 0;
        for (int i = 0; i < n; i++) {
            char reply[sizeof(self->ck_inbox) + 48], body[40];
            snprintf(reply, sizeof(reply), "%s.%" PRIu64 ".%" PRIu64,
                     self->ck_inbox, asks[i].seq, asks[i].id);
            int len = snprintf(body, sizeof(body), "{\"seq\":%" PRIu64 "}",
                               asks[i].seq);
            if (natsConnection_PublishRequest(self->nc, self->ck_api, reply,
                                              body, len)
                != NATS_OK)
                failed[n_failed++] = asks[i].id;
        }
        if (n_failed == 0)
            return;
        /* Not sent: as not answered; the check moves on (and may have
         * others to ask, never the same ones: they are answered now). */
        pthread_mutex_lock(&self->mu);
        bool moved = false;
        for (int i = 0; i < n_failed; i++)
            moved = s_answered_locked(self, failed[i], NULL) || moved;
        n = moved ? pd_backbone__check_advance_locked(self, asks) : 0;
        pthread_mutex_unlock(&self->mu);
    }
}

/* The id in a reply subject <ck_inbox>.<seq>.<id>; false if not one. */
static bool
s_reply_id(const pd_backbone_t *self, const char *subject, uint64_t *id)
{
    size_t n = strlen(self->ck_inbox);
    if (subject == NULL || strncmp(subject, self->ck_inbox, n) != 0
        || subject[n] != '.')
        return false;
    const char *dot = strrchr(subject + n + 1, '.');
    if (dot == NULL || dot[1] < '0' || dot[1] > '9')
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(dot + 1, &end, 10);
    if (*end != '\0')
        return false;
    *id = (uint64_t)v;
    return true;
}

/* An answer from the stream leader (the answers' subscription's delivery
 * thread; self->ck_buf is this thread's). */
static void
s_on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
            void *closure)
{
    (void)nc;
    (void)sub;
    pd_backbone_t *self = closure;
    pd_backbone__name_thread("nats-answers");
    uint64_t id = 0;
    bool ours = s_reply_id(self, natsMsg_GetSubject(msg), &id);
    s_answer_t a;
    if (ours) {
        int len = natsMsg_GetDataLength(msg);
        pd_backbone__answer_parse(self->prefix, natsMsg_GetData(msg),
                                  len > 0 ? (size_t)len : 0, &self->ck_buf,
                                  &self->ck_cap, &a);
    }
    natsMsg_Destroy(msg);
    s_ask_t asks[S_CHECK_WINDOW + 1];
    int n = 0;
    pthread_mutex_lock(&self->mu);
    if (ours && !self->closing && s_answered_locked(self, id, &a))
        n = pd_backbone__check_advance_locked(self, asks);
    pthread_mutex_unlock(&self->mu);
    pd_backbone__check_send(self, asks, n);
}

/* The answers' subscription has ended: no more calls of s_on_answer. */
static void
s_on_answers_complete(void *closure)
{
    pd_backbone_t *self = closure;
    pthread_mutex_lock(&self->mu);
    self->subs_alive--;
    pthread_cond_broadcast(&self->cv_done);
    pthread_mutex_unlock(&self->mu);
}

int
pd_backbone__check_open(pd_backbone_t *self, char *errbuf, size_t errlen)
{
    snprintf(self->ck_api, sizeof(self->ck_api), S_MSG_GET_API "%s",
             self->stream);
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(self->ck_inbox, sizeof(self->ck_inbox), "%s", inbox);
        natsInbox_Destroy(inbox);
    }
    char wild[sizeof(self->ck_inbox) + 8];
    snprintf(wild, sizeof(wild), "%s.*.*", self->ck_inbox);
    natsSubscription *sub = NULL;
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&sub, self->nc, wild, s_on_answer,
                                     self);
    /* At most S_CHECK_WINDOW + 1 requests are out at once (and a few
     * late answers): no limit needed, and none may drop an answer. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub, s_on_answers_complete,
                                             self);
    if (s != NATS_OK) {
        pd_backbone__err(errbuf, errlen,
                         "backbone: subscribing to the leader's answers: %s",
                         pd_backbone__nats_text(s));
        if (sub != NULL) {
            /* Nothing was asked yet: no answer comes to it. */
            natsSubscription_Unsubscribe(sub);
            natsSubscription_Destroy(sub);
        }
        return s == NATS_NO_MEMORY ? -ENOMEM : -EIO;
    }
    pthread_mutex_lock(&self->mu);
    self->ck_sub = sub;
    self->subs_alive++;
    pthread_mutex_unlock(&self->mu);
    return 0;
}

void
pd_backbone__check_close(pd_backbone_t *self)
{
    pthread_mutex_lock(&self->mu);
    natsSubscription *sub = self->ck_sub;
    self->ck_sub = NULL;
    pthread_mutex_unlock(&self->mu);
    if (sub == NULL)
        return;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

/*
 * The deadlines that passed by now: the first raw record to ask again,
 * the check of the last record confirmed, answers not come. The earliest
 * still ahead goes into *next. Returns whether any passed. mu held.
 */
static bool
s_deadlines_locked(pd_backbone_t *self, int64_t now, int64_t *next)
{
    bool passed = false;
    s_rec_t *h = self->raw_head;
    if (h != NULL && h->ck == S_CK_LATER) {
        if (now >= self->ck_retry_ms) {
            /* Ask again about it, and with it about every record in the
             * window whose answer decided nothing either (one timeout
             * or one leader that lagged often leaves many): one retry
             * for all of them, not one S_CHECK_RETRY_MS after another. */
            h->ck = S_CK_TODO;
            int j = 1;
            for (s_rec_t *r = h->next; r != NULL && j < S_CHECK_WINDOW;
                 r = r->next, j++)
                if (r->ck == -1 || r->ck == -2)
                    r->ck = S_CK_TODO;
            passed = true;
        } else if (self->ck_retry_ms < *next) {
            *next = self->ck_retry_ms;
        }
    }
    if (self->verify_prev
        && (self->prev_ck == S_CK_LATER || self->prev_ck == S_CK_ASKING)) {
        if (now >= self->prev_at) {
            self->prev_ck = self->prev_ck == S_CK_LATER ? S_CK_TODO : -1;
            passed = true;
        } else if (self->prev_at < *next) {
            *next = self->prev_at;
        }
    }
    int i = 0;
    for (s_rec_t *r = self->raw_head; r != NULL && i < S_CHECK_WINDOW;
         r = r->next, i++) {
        if (r->ck != S_CK_ASKING)
            continue;
        if (now >= r->ask_deadline) {
            r->ck = -1; /* no answer in time */
            passed = true;
        } else if (r->ask_deadline < *next) {
            *next = r->ask_deadline;
        }
    }
    return passed;
}

/* Keep the check's deadlines (see the top of backbone_check.c). */
void *
pd_backbone__check_main(void *arg)
{
    pd_backbone_t *self = arg;
    s_ask_t asks[S_CHECK_WINDOW + 1];
    pthread_mutex_lock(&self->mu);
    while (!self->closing) {
        int64_t now = parley__mono_ms(), next = INT64_MAX;
        if (s_deadlines_locked(self, now, &next)) {
            int n = pd_backbone__check_advance_locked(self, asks);
            pthread_mutex_unlock(&self->mu);
            pd_backbone__check_send(self, asks, n);
            pthread_mutex_lock(&self->mu);
            continue;
        }
        /* Until then no signal is needed: it looks again after. */
        self->ck_timer_ms = next;
        if (next == INT64_MAX)
            pthread_cond_wait(&self->cv_check, &self->mu);
        else
            pd_backbone__wait_ms(&self->cv_check, &self->mu, next - now);
        self->ck_timer_ms = INT64_MIN;
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}
