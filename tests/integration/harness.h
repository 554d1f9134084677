/*
 * harness.h - shared helpers for parley's integration tests.
 *
 * The integration tests drive the real programs: they start parleyd on
 * free loopback ports in a temporary directory, publish through libparley
 * or through raw frames, run the `parley` tool, and assert on what a user
 * would see. This header gives them the plumbing: temporary directories,
 * free ports, fixed-seed keys and keyrings, starting and stopping the
 * daemon by pid, running a command with captured output and a timeout, a
 * raw api client (DEALER) for frames the library would never send, and
 * collectors for subscriber events.
 *
 * Helpers return 0 (or a count) on success and a negative -errno or
 * PARLEY_E* code on failure, and print a line saying what failed on
 * stderr, so a failing assertion in a test comes with its cause.
 * Names carry the ph_ prefix (parley harness).
 */
#ifndef PARLEY_HARNESS_H
#define PARLEY_HARNESS_H

#include "codec.h"
#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PH_PATH_MAX 512
#define PH_EP_MAX 64

/* ------------------------------------------------------- files, ports */

/*
 * Make a fresh directory under $TMPDIR (or /tmp) named parley-it-XXXXXX.
 * Returns 0 or -errno.
 */
int ph_tmpdir_make(char *out, size_t cap);

/* Remove a directory tree (depth first, not following symlinks). */
int ph_tmpdir_remove(const char *dir);

/* out = dir + "/" + name. Returns 0 or -ENAMETOOLONG. */
int ph_path(char *out, size_t cap, const char *dir, const char *name);

/* Write len bytes to path (created or truncated) with mode. 0 or -errno. */
int ph_file_write(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Read a whole file into a NUL-terminated heap buffer.
 * Returns the buffer (free with free()) or NULL with errno set.
 */
char *ph_file_read(const char *path, size_t *len);

/* Copy a file's contents to stderr, framed by a header naming it. */
void ph_file_dump(const char *title, const char *path);

/*
 * Pick a loopback TCP port that is free right now (bind 127.0.0.1:0, read
 * the port, close). Returns the port or -errno.
 */
int ph_free_port(void);

/* out = "tcp://127.0.0.1:<port>". */
void ph_endpoint(char out[PH_EP_MAX], int port);

/* --------------------------------------------------------------- keys */

/*
 * A fixed-seed key pair, saved as a key file. The raw libsodium secret key
 * is kept as well so tests can sign bytes the library refuses to sign.
 */
typedef struct ph_key {
    uint8_t seed[32];                   /* every byte = the seed byte */
    uint8_t pk[PARLEY_PUBLICKEY_BYTES]; /* public key */
    uint8_t sk[64];                     /* libsodium secret key (seed||pk) */
    parley_key_t *key;                  /* the library's view of the key */
    char path[PH_PATH_MAX];             /* secret key file; PATH.pub beside */
    char pub_b64[45];                   /* base64 public key */
    char name[PARLEY_SLUG_MAX + 1];     /* name used in keyrings */
} ph_key_t;

/*
 * Make the key whose seed is 32 copies of seed_byte, save it as
 * dir/name.key (+ .pub) with parley_key_save(). The library's public key
 * must equal libsodium's for the same seed (checked; -EPROTO otherwise).
 * Returns 0 or a negative error.
 */
int ph_key_make(ph_key_t *k, const char *dir, const char *name,
                uint8_t seed_byte);

/* Free the library key. Accepts a zeroed or already freed ph_key_t. */
void ph_key_free(ph_key_t *k);

/*
 * Append one keyring line "NAME PUBKEY negotiations=N parties=P phases=F"
 * to buf (NUL-terminated, cap bytes). Returns 0 or -ENOBUFS.
 */
int ph_keyring_add(char *buf, size_t cap, const ph_key_t *k, const char *negs,
                   const char *parties, const char *phases);

/* --------------------------------------------------------- processes */

/*
 * A child process with captured stdout and stderr. status is the exit code
 * (0..255), or 128 + signal number when killed by a signal, or -1 while
 * unknown.
 */
typedef struct ph_proc {
    pid_t pid;          /* 0 when not running */
    int in_fd;          /* write end of the child's stdin, or -1 */
    int out_fd, err_fd; /* read ends of stdout/stderr pipes, or -1 */
    const char *in;     /* stdin text still to write */
    size_t in_left;
    char *out; /* captured stdout, NUL-terminated */
    size_t out_len;
    char *err; /* captured stderr, NUL-terminated */
    size_t err_len;
    int status;
    bool timed_out; /* killed by ph_proc_wait() at its timeout */
} ph_proc_t;

/* A ph_proc_t that is not running; ph_proc_free() accepts it. */
#define PH_PROC_INIT                                                           \
    {                                                                          \
        .pid = 0, .in_fd = -1, .out_fd = -1, .err_fd = -1, .status = -1        \
    }

/*
 * Start argv[0] (a path; no PATH search, no shell) with argv. env is a
 * NULL-terminated list of "NAME=VALUE" added to (or replacing in) the
 * current environment, or NULL. cwd may be NULL. stdin_text NULL gives the
 * child /dev/null as stdin; otherwise the text is fed to it (and stdin
 * closed after it) while ph_proc_wait() runs. stdin_text must stay valid
 * until ph_proc_wait() returns.
 * Returns 0 or -errno.
 */
int ph_proc_spawn(ph_proc_t *p, const char *const argv[],
                  const char *const env[], const char *cwd,
                  const char *stdin_text);

/*
 * Collect output until the child exits, or until timeout_ms passes; then
 * SIGKILL it and set timed_out. Returns 0 (see p->status) or -errno.
 */
int ph_proc_wait(ph_proc_t *p, int timeout_ms);

/* Kill (SIGKILL) a still-running child and reap it; free the buffers. */
void ph_proc_free(ph_proc_t *p);

/* ph_proc_spawn() + ph_proc_wait(). */
int ph_run(ph_proc_t *p, const char *const argv[], const char *const env[],
           const char *cwd, const char *stdin_text, int timeout_ms);

/* Print a finished command's argv, status, stdout and stderr to stderr. */
void ph_proc_report(const ph_proc_t *p, const char *what);

/*
 * Start argv[0] (a path) with argv, its stdout and stderr appended to
 * log_path (after a "[harness] starting: ..." line) and /dev/null as
 * stdin. With die_with_parent the child gets SIGKILL when the calling
 * thread ends (a crashed test leaves nothing running). Everything is
 * prepared before fork(), so it is safe with threads running.
 * Returns 0 with *pid set, or -errno.
 */
int ph_spawn_logged(const char *const argv[], const char *log_path,
                    bool die_with_parent, pid_t *pid);

/*
 * Wait up to timeout_ms for the child pid to exit, and reap it. Nothing is
 * sent to it. Returns its exit status (0..255), 128 + signal if a signal
 * ended it, -ETIMEDOUT if it still runs, or -errno (-ECHILD: not a child
 * of this process, or reaped already).
 */
int ph_wait_exit(pid_t pid, int timeout_ms);

/* Sleep ms milliseconds (a signal does not cut it short). */
void ph_sleep_ms(int ms);

/* Is something accepting TCP connections on 127.0.0.1:port? */
bool ph_port_listening(int port);

/*
 * Wait until process pid holds an ESTABLISHED TCP connection to the
 * loopback port (seen from the client side, in /proc/net/tcp{,6}), for
 * example a subscriber's connection to the feed.
 * Returns 0, -ETIMEDOUT, or -ESRCH if the process is gone.
 */
int ph_wait_connected(pid_t pid, int port, int timeout_ms);

/* ------------------------------------------------------------- parleyd */

typedef struct ph_daemon {
    pid_t pid;                   /* 0 when not running */
    char dir[PH_PATH_MAX];       /* directory holding log and state */
    char state_dir[PH_PATH_MAX]; /* --state-dir */
    char log_path[PH_PATH_MAX];  /* stdout+stderr of the daemon */
    char api[PH_EP_MAX];         /* --api endpoint */
    char feed[PH_EP_MAX];        /* --feed endpoint */
    int api_port, feed_port;
} ph_daemon_t;

/*
 * Start PARLEYD_BIN --api EP --feed EP --state-dir DIR/state
 * [--keyring KEYRING] EXTRA... with its output in DIR/parleyd.log, and wait
 * (up to 10 s) until parley_ping() answers. keyring may be NULL (no flag);
 * extra is NULL-terminated or NULL. If the daemon exits at once (a port
 * taken between choosing and binding) it is retried on new ports.
 * On failure the daemon log is printed.
 * Returns 0 or a negative error.
 */
int ph_daemon_start(ph_daemon_t *d, const char *dir, const char *keyring,
                    const char *const *extra);

/*
 * Start parleyd again on d's ports, state directory and log file, the way
 * an operator restarts a service, so that clients of the old process
 * reconnect to the new one. d comes from ph_daemon_start() and its process
 * must be gone (ph_daemon_stop() or ph_daemon_kill9()). Waits up to 10 s
 * for a ping answer. A port taken by someone else meanwhile is a failure.
 * Returns 0, -ECHILD if parleyd exited (its log is printed), -ETIMEDOUT,
 * -EBUSY if the old process still runs, or -errno.
 */
int ph_daemon_restart(ph_daemon_t *d, const char *keyring,
                      const char *const *extra);

/*
 * SIGTERM the daemon and wait up to 10 s for it to exit, then SIGKILL.
 * Returns its exit status (0..255), 128 + signal if a signal ended it, or
 * -ETIMEDOUT if it had to be killed. A daemon not running returns 0.
 */
int ph_daemon_stop(ph_daemon_t *d);

/*
 * End of a test: stop the daemon if it still runs (SIGTERM, as
 * ph_daemon_stop()), and print its log when the test failed or the daemon
 * did not exit 0, so a failure explains itself.
 */
void ph_daemon_teardown(ph_daemon_t *d, bool test_ok);

/* SIGKILL the daemon and reap it (crash simulation). */
void ph_daemon_kill9(ph_daemon_t *d);

/* Print the daemon log to stderr. */
void ph_daemon_dump_log(const ph_daemon_t *d);

/*
 * What most library tests start from: a temporary directory, one key
 * (named desk, seed byte seed) trusted for everything in a keyring file,
 * and a parleyd started with that keyring and config text (NULL: none).
 */
typedef struct ph_world {
    char dir[PH_PATH_MAX];
    char ring[PH_PATH_MAX];     /* the keyring file */
    char conf[PH_PATH_MAX];     /* the config file, "" without one */
    ph_key_t key;
    ph_daemon_t daemon;
} ph_world_t;

/* Make the world. Returns 0 or a negative error (printed). */
int ph_world_start(ph_world_t *w, uint8_t seed, const char *config);

/* ph_daemon_restart() of its daemon, with its keyring and config. */
int ph_world_restart(ph_world_t *w);

/* Stop the daemon (ph_daemon_teardown()), free the key, remove the
 * directory. Accepts a zeroed world. */
void ph_world_end(ph_world_t *w, bool test_ok);

/* ---------------------------------------------------------------- stats */

#define PH_STATS_MAX 128

typedef struct ph_stat {
    char name[64];
    uint64_t value;
} ph_stat_t;

typedef struct ph_stats {
    size_t n;
    ph_stat_t s[PH_STATS_MAX];
} ph_stats_t;

/* Fetch all counters with parley_stats(). Returns 0 or a negative error. */
int ph_stats_fetch(const char *api, ph_stats_t *out);

/* Value of a counter; *found (may be NULL) says whether it exists. */
uint64_t ph_stats_get(const ph_stats_t *s, const char *name, bool *found);

/*
 * Wait until the counter name reaches at least want (at_least) or at
 * most want (!at_least), polling the daemon's stats.
 * Returns 0, or -ETIMEDOUT (with a line saying the last value).
 */
int ph_stat_wait(const char *api, const char *name, uint64_t want,
                 bool at_least, int timeout_ms);

/*
 * Wait until a live subscriber is live: until the daemon has granted at
 * least topics feed topics (the subscriptions counter), and then until a
 * heartbeat has gone out after those grants (seen on a subscription made
 * after them). A subscriber whose topics were among them has then had
 * its first heartbeat too, so everything published from now on reaches
 * it. Use it where a user would "wait a heartbeat" before publishing.
 * Returns 0 or -ETIMEDOUT.
 */
int ph_wait_feed_live(const char *api, const char *feed, uint64_t topics,
                      int timeout_ms);

/*
 * Start `parley sub` (argv, in cwd) as p against daemon d and wait until
 * it is live: its feed connection is up, and then ph_wait_feed_live()
 * for topics (the topics granted once it holds its own). On failure the
 * command is stopped and reported.
 * Returns 0 or a negative error.
 */
int ph_sub_spawn_live(ph_proc_t *p, const ph_daemon_t *d,
                      const char *const argv[], const char *cwd,
                      uint64_t topics, int timeout_ms);

/*
 * Compare two snapshots: every counter named "rejected_*" and "accepted"
 * and "duplicates" must have risen by exactly the amount in expect (a
 * NULL-terminated list of "name=delta" strings), and by 0 if not listed.
 * Prints each mismatch. Returns the number of mismatches.
 */
int ph_stats_expect(const ph_stats_t *before, const ph_stats_t *after,
                    const char *const *expect);

/* ------------------------------------------------------- raw api client */

#define PH_FRAME_MAX (256 * 1024)

/*
 * A DEALER socket on the daemon's api, for frames the library never sends.
 * Replies decode into arena memory owned here; a decoded reply stays valid
 * until the next receive.
 */
typedef struct ph_api {
    void *ctx;
    void *sock;
    uint64_t next_id; /* request ids handed out */
    uint8_t *rbuf;    /* last reply frame */
    size_t rlen;
    int rframes; /* frames in the last reply message */
    uint8_t *arena_buf;
    parley__arena_t arena;
} ph_api_t;

/* Connect to endpoint. Returns 0 or -errno. */
int ph_api_open(ph_api_t *a, const char *endpoint);

/* Close; accepts a zeroed or closed ph_api_t. */
void ph_api_close(ph_api_t *a);

/* Send one message of n frames exactly as given. Returns 0 or -errno. */
int ph_api_send_frames(ph_api_t *a, const void *const *frames,
                       const size_t *lens, size_t n);

/*
 * Receive one reply message and decode it. A reply of more than one frame
 * is reported (a->rframes) and decodes from the last frame.
 * Returns 0, PARLEY_ETIMEOUT, PARLEY_EMALFORMED, or -errno.
 */
int ph_api_recv(ph_api_t *a, int timeout_ms, parley__reply_t *r);

/*
 * Encode a PublishRequest around env (SignedUpdate bytes) with a fresh
 * request id, send it as one frame and wait for the reply.
 * Returns as ph_api_recv(); *request_id (may be NULL) gets the id sent.
 */
int ph_api_publish(ph_api_t *a, const void *env, size_t len, int timeout_ms,
                   parley__reply_t *r, uint64_t *request_id);

/* Name a reply for messages: "ack seq=3", "reject forbidden: ...". */
const char *ph_reply_describe(const parley__reply_t *r, char *buf, size_t cap);

/* ------------------------------------------------------ library clients */

/* One-shot call options for api with timeout_ms (and no CURVE). */
parley_call_options_t ph_call_options(const char *api, int timeout_ms);

/*
 * parley_ping() of api (through CURVE with curve, may be NULL); *out (may
 * be NULL: the answer is freed) is the caller's. Returns its code.
 */
int ph_ping_info(const char *api, const parley_curve_t *curve, int timeout_ms,
                 parley_info_t **out);

/* ph_ping_info() without CURVE, keeping nothing. */
int ph_ping(const char *api, int timeout_ms);

/*
 * A publisher for api that signs with key, through CURVE with curve (may
 * be NULL), waiting timeout_ms per attempt. Returns it, or NULL (errno
 * set, and a line printed).
 */
parley_pub_t *ph_pub_new(const char *api, const parley_key_t *key,
                         const parley_curve_t *curve, int timeout_ms);

/*
 * parley_pub_publish(): returns 0 for an ack (new or a duplicate, which
 * *dup says; dup may be NULL) or the error.
 */
int ph_publish(parley_pub_t *pub, const parley_update_t *u, uint64_t *seq,
               int *dup);

/*
 * ph_recv() in the shape the tests check: 0 for an ack (with *dup
 * 1 for a duplicate), the reject code, or PARLEY_ETIMEOUT when nothing
 * was answered within timeout_ms. request_id, seq and dup may be NULL.
 */
int ph_recv(parley_pub_t *pub, int timeout_ms, uint64_t *request_id,
            uint64_t *seq, int *dup);

/*
 * A subscriber of api with filter f (NULL: everything) and the rest of
 * opt (NULL: defaults; its size is filled in when 0). Returns it, or NULL
 * with errno set.
 */
parley_sub_t *ph_sub_new(const char *api, const parley_filter_t *f,
                         parley_sub_options_t *opt);

/*
 * parley_sub_next() into a copy the test owns (without the envelope
 * bytes, which stay the subscriber's), passing over the connection
 * events (CONNECTED, DISCONNECTED, CAUGHT_UP) within timeout_ms: the
 * tests that read through this one check deliveries, gaps and rejects.
 * Returns what parley_sub_next() returns.
 */
int ph_sub_next(parley_sub_t *sub, int timeout_ms, parley_event_t *out);

/*
 * The next event of sub of type within timeout_ms; with skip, events of
 * other types are passed over on the way. Fails the test (naming when)
 * if none comes, or, without skip, if the next one is of another type.
 */
const parley_event_t *ph_sub_expect(parley_sub_t *sub,
                                    parley_event_type_t type, bool skip,
                                    int timeout_ms, const char *when);

/* ------------------------------------------------------------- updates */

/*
 * Fill a valid update: negotiation, one party, phase, status
 * talks_scheduled, headline, issued_at now, signer_seq a fresh value that
 * is higher than every earlier one this process chose.
 */
void ph_update_init(parley_update_t *u, const char *negotiation,
                    const char *party, uint32_t phase, const char *headline);

/* A signer_seq above every earlier one from this process (and now in us). */
uint64_t ph_next_signer_seq(void);

/* Sign with the library (validated). Returns 0 or parley_sign()'s error. */
int ph_sign(const ph_key_t *k, const parley_update_t *u, uint8_t *buf,
            size_t cap, size_t *len);

/*
 * Encode the update as is (no validation), sign the body with libsodium
 * over "parley/update/v1" 0x00 body, and wrap it in an envelope: bytes no
 * library function would produce for an invalid update.
 * Returns 0 or -ENOBUFS.
 */
int ph_sign_raw(const ph_key_t *k, const parley_update_t *u, uint8_t *buf,
                size_t cap, size_t *len);

/* ----------------------------------------------------------- subscriber */

/* Events a subscriber produced. */
typedef struct ph_events {
    size_t n; /* deliveries */
    size_t cap;
    parley_delivery_t *d;      /* deliveries, in arrival order */
    size_t n_gaps, n_rejected; /* other events seen */
    int err;                   /* negative return of parley_sub_next, or 0 */
} ph_events_t;

/* Free what ph_sub_collect() gathered; the struct can be reused. */
void ph_events_free(ph_events_t *ev);

/*
 * Read events into ev until it holds `want` deliveries in total, or a
 * delivery with seq == until_seq arrives (until_seq 0: no such stop), or
 * timeout_ms passes, or parley_sub_next() fails.
 * Returns the number of deliveries in ev.
 */
size_t ph_sub_collect(parley_sub_t *sub, ph_events_t *ev, size_t want,
                      uint64_t until_seq, int timeout_ms);

/* Format seqs as "1 2 5" into buf (for failure messages). */
const char *ph_seqs_format(const uint64_t *seqs, size_t n, char *buf,
                           size_t cap);

#endif /* PARLEY_HARNESS_H */
