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

#endif /* PD_SERVER_H */
