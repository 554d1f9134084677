/*
 * fault_util.h - helpers for the tests of the log's files (issue 11):
 * a state directory removed under parleyd, clock steps, a full disk, I/O
 * errors.
 *
 * Static inline like dur_util.h, which it builds on. Names carry the fu_
 * prefix. Like the harness, helpers print a line on stderr saying what
 * failed.
 *
 *   - putting the fault library (tests/shim/fault.c) under a parleyd the
 *     harness starts, and writing its control file;
 *   - waiting for a daemon to exit on its own, and reading its log;
 *   - publishing one update at a time through a raw api client, keeping
 *     what was acked;
 *   - a fixture: a directory with a key and a keyring, a daemon, a
 *     publisher, all cleaned up at the end.
 */
#ifndef PARLEY_FAULT_UTIL_H
#define PARLEY_FAULT_UTIL_H

#include "dur_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* --------------------------------------------------------------- setup */

/*
 * Make a fresh temporary directory dir holding a key pair "desk" (from
 * seed_byte) and dir/keyring, which trusts it for everything (mode 0600).
 * Returns 0 or a negative error (printed by the harness).
 */
static inline int
fu_dir_make(char dir[PH_PATH_MAX], ph_key_t *key, uint8_t seed_byte,
            char keyring[PH_PATH_MAX])
{
    char ring[1024] = "";
    int rc = ph_tmpdir_make(dir, PH_PATH_MAX);
    if (rc == 0)
        rc = ph_key_make(key, dir, "desk", seed_byte);
    if (rc == 0)
        rc = ph_keyring_add(ring, sizeof(ring), key, "*", "*", "*");
    if (rc == 0)
        rc = ph_path(keyring, PH_PATH_MAX, dir, "keyring");
    if (rc == 0)
        rc = ph_file_write(keyring, ring, strlen(ring), 0600);
    return rc;
}

/* ------------------------------------------------------- the fault shim */

/* The environment as it was before fu_preload(). */
typedef struct fu_env {
    char *ld_preload, *fault, *asan;
} fu_env_t;

static inline char *
fu_strdup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/*
 * Make the next daemon the harness starts run with the fault library,
 * controlled by the file ctl (which need not exist yet). Undo with
 * fu_unpreload() once it runs, so that other programs run as usual.
 */
static inline void
fu_preload(fu_env_t *saved, const char *ctl)
{
    saved->ld_preload = fu_strdup_or_null(getenv("LD_PRELOAD"));
    saved->fault = fu_strdup_or_null(getenv("PARLEY_FAULT"));
    saved->asan = fu_strdup_or_null(getenv("ASAN_OPTIONS"));
    setenv("LD_PRELOAD", PARLEY_FAULT_LIB, 1);
    setenv("PARLEY_FAULT", ctl, 1);
    /* Under ASan the library comes before ASan's runtime: allow that. */
    char asan[1024];
    snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
             saved->asan != NULL ? saved->asan : "",
             saved->asan != NULL && saved->asan[0] != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
}

static inline void
fu_unpreload(fu_env_t *saved)
{
    const char *names[] = { "LD_PRELOAD", "PARLEY_FAULT", "ASAN_OPTIONS" };
    char *values[] = { saved->ld_preload, saved->fault, saved->asan };
    for (int i = 0; i < 3; i++) {
        if (values[i] != NULL)
            setenv(names[i], values[i], 1);
        else
            unsetenv(names[i]);
        free(values[i]);
    }
    memset(saved, 0, sizeof(*saved));
}

/*
 * Replace the control file's text (written beside it and renamed over it,
 * so the library never reads half a file). Returns 0 or -errno.
 */
static inline int
fu_ctl_write(const char *ctl, const char *text)
{
    char tmp[PH_PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", ctl);
    int rc = ph_file_write(tmp, text, strlen(text), 0600);
    if (rc == 0 && rename(tmp, ctl) != 0)
        rc = -errno;
    if (rc != 0)
        fprintf(stderr, "[fault] cannot write %s: %s\n", ctl, strerror(-rc));
    return rc;
}

/* --------------------------------------------------------------- daemon */

/*
 * Wait up to timeout_ms for the daemon to exit by itself, and reap it.
 * Returns its exit status (128 + signal if a signal ended it), or
 * -ETIMEDOUT (it still runs).
 */
static inline int
fu_wait_exit(ph_daemon_t *d, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        int ws;
        if (d->pid > 0 && waitpid(d->pid, &ws, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        }
        if (d->pid <= 0 || parley__mono_ms() >= deadline)
            break;
        du_sleep_us(10000);
    }
    if (d->pid > 0)
        fprintf(stderr, "[fault] parleyd pid %d still runs after %d ms\n",
                (int)d->pid, timeout_ms);
    return -ETIMEDOUT;
}

/* Does the daemon's log hold needle? */
static inline bool
fu_log_has(const ph_daemon_t *d, const char *needle)
{
    size_t len = 0;
    char *text = ph_file_read(d->log_path, &len);
    bool found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* How many times needle is in the daemon's log. */
static inline size_t
fu_log_count(const ph_daemon_t *d, const char *needle)
{
    size_t len = 0, n = 0;
    char *text = ph_file_read(d->log_path, &len);
    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL;
         p += strlen(needle))
        n++;
    free(text);
    return n;
}

/* Wait up to timeout_ms for needle to appear in the daemon's log. */
static inline bool
fu_wait_log(const ph_daemon_t *d, const char *needle, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    while (!fu_log_has(d, needle)) {
        if (parley__mono_ms() >= deadline) {
            fprintf(stderr, "[fault] \"%s\" not in %s after %d ms\n", needle,
                    d->log_path, timeout_ms);
            return false;
        }
        du_sleep_us(20000);
    }
    return true;
}

/* ----------------------------------------------------------- publishing */

/* Updates published one at a time, and which of them were acked. */
typedef struct fu_pub {
    ph_api_t api;
    const ph_key_t *key;
    int64_t issued_offset_ms; /* added to issued_at (a daemon clock ahead) */
    size_t n_acked;
    uint64_t *seqs;           /* acked seqs, in order */
    uint8_t **envs;           /* their envelopes */
    size_t *lens;
    size_t cap;
    char message[256];        /* the last reject's message */
    int64_t answer_ms;        /* how long the last answer took */
} fu_pub_t;

static inline int
fu_pub_open(fu_pub_t *p, const char *api, const ph_key_t *key)
{
    memset(p, 0, sizeof(*p));
    p->key = key;
    return ph_api_open(&p->api, api);
}

static inline void
fu_pub_close(fu_pub_t *p)
{
    ph_api_close(&p->api);
    for (size_t i = 0; i < p->n_acked; i++)
        free(p->envs[i]);
    free(p->seqs);
    free(p->envs);
    free(p->lens);
    memset(p, 0, sizeof(*p));
}

/*
 * Sign one update (headline "<tag> <n>: talks resume in Cairo") into env
 * (PARLEY_ENVELOPE_MAX bytes). Returns 0 or a negative error.
 */
static inline int
fu_sign(const fu_pub_t *p, const char *tag, size_t n, uint8_t *env,
        size_t *len)
{
    char headline[96];
    snprintf(headline, sizeof(headline), "%s %zu: talks resume in Cairo", tag,
             n);
    parley_update_t *u = malloc(sizeof(*u));
    if (u == NULL)
        return -ENOMEM;
    ph_update_init(u, "gaza-ceasefire", n % 2 ? "hamas" : "israel", 1,
                   headline);
    u->issued_at += p->issued_offset_ms;
    int rc = ph_sign(p->key, u, env, PARLEY_ENVELOPE_MAX, len);
    free(u);
    return rc;
}

/*
 * Publish the envelope env and wait up to timeout_ms for the answer. An
 * ack (a duplicate too) is kept in p; a reject's message in p->message;
 * the time the answer took in p->answer_ms. Returns 0 (acked),
 * PARLEY_ETIMEOUT (no answer), the reject code, or another error.
 */
static inline int
fu_send(fu_pub_t *p, const uint8_t *env, size_t len, int timeout_ms)
{
    parley__reply_t r;
    p->message[0] = '\0';
    int64_t t0 = parley__mono_ms();
    int rc = ph_api_publish(&p->api, env, len, timeout_ms, &r, NULL);
    p->answer_ms = parley__mono_ms() - t0;
    if (rc != 0)
        return rc;
    if (r.type == PARLEY__REPLY_REJECT) {
        snprintf(p->message, sizeof(p->message), "%s",
                 r.message != NULL ? r.message : "");
        return r.code;
    }
    if (r.type != PARLEY__REPLY_ACK)
        return PARLEY_EPROTO;
    if (p->n_acked == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        uint64_t *s = realloc(p->seqs, cap * sizeof(*s));
        if (s != NULL)
            p->seqs = s;
        uint8_t **e = realloc(p->envs, cap * sizeof(*e));
        if (e != NULL)
            p->envs = e;
        size_t *l = realloc(p->lens, cap * sizeof(*l));
        if (l != NULL)
            p->lens = l;
        if (s == NULL || e == NULL || l == NULL)
            return -ENOMEM;
        p->cap = cap;
    }
    if ((p->envs[p->n_acked] = malloc(len)) == NULL)
        return -ENOMEM;
    memcpy(p->envs[p->n_acked], env, len);
    p->lens[p->n_acked] = len;
    p->seqs[p->n_acked] = r.seq;
    p->n_acked++;
    return 0;
}

/* fu_sign() and fu_send() one update. Returns as fu_send(). */
static inline int
fu_publish(fu_pub_t *p, const char *tag, size_t n, int timeout_ms)
{
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    int rc = fu_sign(p, tag, n, env, &len);
    return rc != 0 ? rc : fu_send(p, env, len, timeout_ms);
}

/*
 * Publish n updates ("<tag> 0" on), each of which must be acked. Returns
 * 0, or the first failure (printed).
 */
static inline int
fu_publish_acked(fu_pub_t *p, const char *tag, size_t n, int timeout_ms)
{
    for (size_t i = 0; i < n; i++) {
        int rc = fu_publish(p, tag, i, timeout_ms);
        if (rc != 0) {
            fprintf(stderr, "[fault] publish %s %zu: %s\n", tag, i,
                    parley_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/*
 * The log read back from the daemon at api must be exactly what p saw
 * acked: seqs 1..n in order, each with the bytes that were published.
 * Prints the first difference. Returns true if so.
 */
static inline bool
fu_log_is_acked(const char *api, const fu_pub_t *p)
{
    du_log_t log;
    memset(&log, 0, sizeof(log));
    int rc = du_replay_all(api, 1, &log);
    bool ok = rc == 0 && du_log_gapless(&log) && log.n == p->n_acked;
    if (rc == 0 && log.n != p->n_acked)
        fprintf(stderr, "[fault] the log holds %zu records, %zu were acked\n",
                log.n, p->n_acked);
    for (size_t i = 0; ok && i < log.n; i++) {
        if (p->seqs[i] != i + 1 || log.r[i].len != p->lens[i]
            || memcmp(log.r[i].env, p->envs[i], p->lens[i]) != 0) {
            fprintf(stderr, "[fault] seq %zu is not what was acked as it\n",
                    i + 1);
            ok = false;
        }
    }
    du_log_free(&log);
    return ok;
}

/* ------------------------------------------------------------ fixture */

/* What each test here starts from, and what its end cleans up. */
typedef struct fu_fix {
    char dir[PH_PATH_MAX];     /* temporary directory, removed at the end */
    char keyring[PH_PATH_MAX]; /* dir/keyring, trusting key */
    ph_key_t key;              /* "desk" */
    ph_daemon_t d;             /* stopped at the end if it still runs */
    fu_pub_t pub;              /* closed at the end (may stay zeroed) */
    bool ok;                   /* the test passed: no daemon log printed */
} fu_fix_t;

/* fu_dir_make() into a zeroed f. Returns 0 or a negative error. */
static inline int
fu_fix_init(fu_fix_t *f, uint8_t seed_byte)
{
    memset(f, 0, sizeof(*f));
    return fu_dir_make(f->dir, &f->key, seed_byte, f->keyring);
}

/* The end of a test: stop (a stopped daemon is continued first), close,
 * free and remove what f holds. */
static inline void
fu_fix_done(fu_fix_t *f)
{
    if (f->d.pid > 0)
        kill(f->d.pid, SIGCONT);
    ph_daemon_teardown(&f->d, f->ok);
    fu_pub_close(&f->pub);
    ph_key_free(&f->key);
    ph_tmpdir_remove(f->dir);
}

/*
 * After a failure and a restart: the daemon f->d holds exactly the
 * updates f->pub saw acked, found no torn tail to cut (the store had cut
 * the file back itself), and acks a new update as the next seq. f->pub
 * starts afresh. Prints what is wrong; returns true if all is well.
 */
static inline bool
fu_recovered(fu_fix_t *f)
{
    const uint64_t next = f->pub.n_acked + 1;
    if (!fu_log_is_acked(f->d.api, &f->pub))
        return false;
    ph_stats_t st;
    if (ph_stats_fetch(f->d.api, &st) != 0)
        return false;
    if (du_stat(&st, "store_truncated_bytes") != 0) {
        fprintf(stderr, "[fault] the restart cut a torn tail\n");
        return false;
    }
    fu_pub_close(&f->pub);
    int rc = fu_pub_open(&f->pub, f->d.api, &f->key);
    if (rc == 0)
        rc = fu_publish(&f->pub, "after", 0, 5000);
    if (rc != 0 || f->pub.seqs[0] != next) {
        fprintf(stderr, "[fault] the next update was not acked as seq %llu "
                        "(%s)\n",
                (unsigned long long)next, parley_strerror(rc));
        return false;
    }
    return true;
}

#endif /* PARLEY_FAULT_UTIL_H */
