/*
 * dur_util.h - helpers for the durability tests (issue 3, "Nothing lost").
 *
 * Static inline on purpose: each test program includes what it uses and
 * the shared harness (harness.h/.c, owned elsewhere) stays as it is.
 * Names carry the du_ prefix. Like the harness, helpers print a line on
 * stderr saying what failed, so a failing assertion comes with its cause.
 *
 *   - clocks and sleeps;
 *   - restarting parleyd on the SAME ports and state directory as an
 *     earlier ph_daemon_start() (ph_daemon_start() picks new ports, which
 *     a subscriber that must reconnect cannot follow);
 *   - reading the whole log back through raw REPLAY requests, page by
 *     page, with each record's signer, signer_seq and exact bytes;
 *   - a small config file writer (segment_bytes etc. have no flag).
 */
#ifndef PARLEY_DUR_UTIL_H
#define PARLEY_DUR_UTIL_H

#include "harness.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- time */

/* The clock is the library's: parley__mono_ms(), parley__mono_us(). */

static inline void
du_sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* -------------------------------------------------------------- config */

/*
 * Write a parleyd config file at path with the given text (key value
 * lines). Returns 0 or -errno.
 */
static inline int
du_config_write(const char *path, const char *text)
{
    return ph_file_write(path, text, strlen(text), 0644);
}

/*
 * Start a fresh parleyd whose files live in top/name, with the config file
 * config and the keyring keyring. Returns 0 or a negative error (printed).
 * Restarts and stops: ph_daemon_restart(), ph_daemon_stop() (harness).
 */
static inline int
du_daemon_start_in(ph_daemon_t *d, const char *top, const char *name,
                   const char *keyring, const char *config)
{
    char dir[PH_PATH_MAX];
    if (ph_path(dir, sizeof(dir), top, name) != 0)
        return -ENAMETOOLONG;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int err = -errno;
        fprintf(stderr, "[dur] mkdir %s: %s\n", dir, strerror(-err));
        return err;
    }
    const char *extra[] = { "-c", config, NULL };
    int rc = ph_daemon_start(d, dir, keyring, extra);
    if (rc != 0)
        fprintf(stderr, "[dur] parleyd did not start in %s (log above)\n",
                dir);
    return rc;
}

/* ------------------------------------------------------- reading the log */

/* One record of the log as REPLAY returns it. */
typedef struct du_rec {
    uint64_t seq;
    int64_t received_at;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    uint64_t signer_seq;
    uint8_t *env;       /* the SignedUpdate bytes, heap */
    size_t len;
} du_rec_t;

/* The whole log, in the order REPLAY returned it. */
typedef struct du_log {
    size_t n, cap;
    du_rec_t *r;
    uint64_t head;      /* head_seq of the last page */
} du_log_t;

static inline void
du_log_free(du_log_t *log)
{
    for (size_t i = 0; i < log->n; i++)
        free(log->r[i].env);
    free(log->r);
    memset(log, 0, sizeof(*log));
}

/*
 * Append one Delivery (bytes from a replay page) to log: its seq, its
 * envelope bytes, and the signer and signer_seq they name. The signature
 * is not checked here (the tests compare the bytes with what they signed,
 * which says more, and checking 40,000 signatures per round would be most
 * of the kill -9 test's time). Returns 0 or a negative error.
 */
static inline int
du_log_add(du_log_t *log, const uint8_t *data, size_t len,
           parley_update_t *scratch)
{
    uint8_t abuf[2 * PARLEY_ENVELOPE_MAX + 8192];
    parley__arena_t arena;
    parley__envelope_t e;
    uint64_t seq = 0;
    int64_t received_at = 0;
    parley__bytes_t env;
    parley__arena_init(&arena, abuf, sizeof(abuf));
    int rc = parley__delivery_decode_raw(data, len, &seq, &received_at, &env,
                                         &arena);
    if (rc == 0)
        rc = parley__envelope_decode(env.data, env.len, &e, &arena);
    if (rc == 0)
        rc = parley__update_decode(e.body.data, e.body.len, scratch, &arena);
    if (rc != 0) {
        parley__arena_reset(&arena);
        fprintf(stderr, "[dur] replayed delivery (seq %" PRIu64 ") does not "
                "decode: %s\n", seq, parley_error_name(rc));
        return rc;
    }
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 1024;
        du_rec_t *nr = realloc(log->r, cap * sizeof(*nr));
        if (nr == NULL) {
            parley__arena_reset(&arena);
            return -ENOMEM;
        }
        log->r = nr;
        log->cap = cap;
    }
    du_rec_t *r = &log->r[log->n];
    r->env = malloc(env.len);
    if (r->env == NULL) {
        parley__arena_reset(&arena);
        return -ENOMEM;
    }
    memcpy(r->env, env.data, env.len);
    r->len = env.len;
    r->seq = seq;
    r->received_at = received_at;
    memcpy(r->signer, e.signer, sizeof(r->signer));
    r->signer_seq = scratch->signer_seq;
    log->n++;
    parley__arena_reset(&arena);
    return 0;
}

/*
 * Read every record from seq `from` to the head with raw REPLAY requests
 * (no filter, 1000 per page), following next_seq until done, into *log
 * (which must be zeroed or freed). Returns 0 or a negative error (a
 * reject code, PARLEY_ETIMEOUT, PARLEY_EPROTO for a page that makes no
 * progress).
 */
static inline int
du_replay_all(const char *api, uint64_t from, du_log_t *log)
{
    ph_api_t a;
    int rc = ph_api_open(&a, api);
    if (rc != 0)
        return rc;
    parley__request_t *req = calloc(1, sizeof(*req));
    parley_update_t *scratch = malloc(sizeof(*scratch));
    uint8_t buf[1024];
    if (req == NULL || scratch == NULL) {
        rc = -ENOMEM;
        goto done;
    }
    memset(log, 0, sizeof(*log));
    for (;;) {
        memset(req, 0, sizeof(*req));
        req->request_id = ++a.next_id;
        req->op = PARLEY__OP_REPLAY;
        req->from_seq = from;
        req->to_seq = 0;
        req->limit = 1000;
        size_t n = 0;
        if ((rc = parley__request_encode(req, buf, sizeof(buf), &n)) != 0)
            break;
        const void *frames[1] = { buf };
        if ((rc = ph_api_send_frames(&a, frames, &n, 1)) != 0)
            break;
        parley__reply_t r;
        do {
            rc = ph_api_recv(&a, 10000, &r);
        } while (rc == 0 && r.request_id != req->request_id);
        if (rc != 0) {
            fprintf(stderr, "[dur] replay from %" PRIu64 ": %s\n", from,
                    parley_error_name(rc));
            break;
        }
        if (r.type == PARLEY__REPLY_REJECT) {
            char d[256];
            fprintf(stderr, "[dur] replay from %" PRIu64 ": %s\n", from,
                    ph_reply_describe(&r, d, sizeof(d)));
            rc = r.code;
            break;
        }
        if (r.type != PARLEY__REPLY_REPLAY || r.next_seq < from
            || (!r.done && r.next_seq == from)) {
            fprintf(stderr, "[dur] replay from %" PRIu64 ": unexpected reply "
                    "(type %d, next_seq %" PRIu64 ")\n", from, (int)r.type,
                    r.next_seq);
            rc = PARLEY_EPROTO;
            break;
        }
        for (size_t i = 0; i < r.n_deliveries && rc == 0; i++)
            rc = du_log_add(log, r.deliveries[i].data, r.deliveries[i].len,
                            scratch);
        if (rc != 0)
            break;
        log->head = r.head_seq;
        if (r.done)
            break;
        from = r.next_seq;
    }
done:
    free(req);
    free(scratch);
    ph_api_close(&a);
    return rc;
}

/*
 * Check the log holds seqs 1..n exactly, ascending and without a gap, and
 * that its head is n. Prints the first problem. Returns true if so.
 */
static inline bool
du_log_gapless(const du_log_t *log)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->r[i].seq != (uint64_t)i + 1) {
            fprintf(stderr, "[dur] log position %zu holds seq %" PRIu64
                    ", expected %zu (a gap, a repeat or a reordering)\n", i,
                    log->r[i].seq, i + 1);
            return false;
        }
    if (log->head != (uint64_t)log->n) {
        fprintf(stderr, "[dur] replay returned %zu records but the head is %"
                PRIu64 "\n", log->n, log->head);
        return false;
    }
    return true;
}

/* ----------------------------------------------------------- publishing */

/*
 * Sign an update for key k with the given headline, party and signer_seq
 * (issued now) into env. Returns 0 or a negative error.
 */
static inline int
du_sign(const ph_key_t *k, const char *party, const char *headline,
        uint64_t signer_seq, uint8_t *env, size_t cap, size_t *len)
{
    parley_update_t *u = malloc(sizeof(*u));
    if (u == NULL)
        return -ENOMEM;
    ph_update_init(u, "gaza-ceasefire", party, 1, headline);
    u->signer_seq = signer_seq;
    int rc = ph_sign(k, u, env, cap, len);
    free(u);
    return rc;
}

/* A counter from a stats snapshot, failing loudly when it is missing. */
static inline uint64_t
du_stat(const ph_stats_t *s, const char *name)
{
    bool found = false;
    uint64_t v = ph_stats_get(s, name, &found);
    if (!found)
        fprintf(stderr, "[dur] stats counter %s is missing\n", name);
    return v;
}

#endif /* PARLEY_DUR_UTIL_H */
