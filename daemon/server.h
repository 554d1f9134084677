/*
 * server.h - parleyd as a whole: recovers the log into the indexes, binds
 * the api and feed sockets, and runs the single-threaded zmq_poll loop
 * (requests, subscriptions, signals, heartbeats, retention, systemd).
 */
#ifndef PD_SERVER_H
#define PD_SERVER_H

#include "config.h"
#include "parley.h"

#include <stdbool.h>

typedef struct pd_server pd_server_t;

typedef struct pd_server_opts {
    const pd_config_t *cfg;   /* copied */
    const char *config_path;  /* re-read on SIGHUP for log_level, or NULL */
    bool log_level_fixed;     /* --log-level given: reload keeps it */
    parley_keyring_t *ring;   /* taken over (NULL on return) */
} pd_server_opts_t;

/*
 * Open and scan the log, then bind the feed and api endpoints. Failures
 * are logged with what to fix.
 *
 * Returns:   the server, or NULL with *err set (-errno or the store's
 *            error). The keyring is taken over either way.
 */
pd_server_t *pd_server_new(pd_server_opts_t *opts, int *err);

/*
 * Serve until SIGINT or SIGTERM arrives on sigfd (a signalfd for SIGINT,
 * SIGTERM and SIGHUP; SIGHUP reloads the keyring and log level).
 *
 * Returns:   0 after a clean stop, or a negative error when the log can
 *            no longer be written or the loop failed.
 */
int pd_server_run(pd_server_t *srv, int sigfd);

/* Sync and close the log, close the sockets; *srv becomes NULL. */
void pd_server_destroy(pd_server_t **srv);

/*
 * `parleyd --reload`: send SIGHUP to the parleyd with pid (0: the one in
 * cfg's pid_file, which pd_config_finish() sets) and wait up to timeout_ms for it to say in
 * STATE_DIR/reload.status how the reload went.
 *
 * Returns:   0 (it took effect), 1 (refused: the daemon's reason in msg;
 *            the old keyring and settings stay), or -errno with what went
 *            wrong in msg (-ESRCH no such process, -ETIMEDOUT no word in
 *            time, -ENOENT no pid file).
 */
int pd_server_reload_request(const pd_config_t *cfg, long pid, int timeout_ms,
                             char *msg, size_t cap);

/* The endpoint the api is bound to, as libzmq reports it (a port the
 * system chose is shown as the real port). Valid as long as srv. */
const char *pd_server_api_endpoint(const pd_server_t *srv);

#endif /* PD_SERVER_H */
