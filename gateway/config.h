/*
 * config.h - parley-gateway's settings: one table of options read from a
 * config file ("key value" lines, '#' comments) and from command-line
 * flags (--key-with-dashes VALUE), which override the file. The same
 * table writes --help and docs/man/parley-gateway.8 names each entry.
 *
 * Defaults are safe: loopback only, no CORS, publishing off, and limits
 * on connections, request sizes and time.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Every setting, after defaults, file and flags. */
typedef struct gw_config {
    char *listen;                     /* "127.0.0.1:7780", "[::1]:7780" */
    struct sockaddr_storage addr;     /* listen, parsed */
    socklen_t addr_len;
    char *server;                     /* parleyd api endpoint list */
    char *keyring;                    /* keyring file (required) */
    char *curve_server_key;           /* parleyd's CURVE public key file */
    char *curve_client_key;           /* this client's CURVE secret key */
    int timeout_ms;                   /* per request to parleyd */
    size_t window;                    /* recent updates kept in memory */
    size_t window_bytes;              /* and their bytes at most */
    unsigned max_connections;         /* HTTP connections at once */
    unsigned max_connections_per_ip;  /* from one client address */
    unsigned max_sse_clients;         /* /v1/events streams at once */
    size_t max_request_bytes;         /* body of a POST */
    size_t connection_memory;         /* libmicrohttpd's pool per connection */
    unsigned header_timeout;          /* s to send a whole request */
    unsigned idle_timeout;            /* s without traffic on a connection */
    unsigned sse_keepalive;           /* s between keep-alive comments */
    unsigned sse_retry_ms;            /* retry: hint to EventSource */
    unsigned page_max;                /* most updates in one /v1/updates */
    unsigned workers;                 /* threads for snapshot and replay */
    unsigned max_jobs;                /* snapshot/replay jobs queued */
    char *cors_origin;                /* Access-Control-Allow-Origin, or NULL */
    bool publish;                     /* POST /v1/updates allowed */
    gw_log_level_t log_level;
} gw_config_t;

/*
 * Fill c with the defaults. Returns 0 or -ENOMEM.
 * Ownership: free what c holds with gw_config_free().
 */
int gw_config_defaults(gw_config_t *c);

/* Free what c holds (accepts a zeroed or half-filled c). */
void gw_config_free(gw_config_t *c);

/*
 * Set one option by its config-file name ("max_connections") or flag
 * name ("max-connections"); value NULL for a flag without a value (only
 * booleans, which it sets to on).
 *
 * Returns:   0; -ENOENT for a name no option has; -EINVAL with a sentence
 *            in err (the option, what it takes) for a bad value; -ENOMEM.
 */
int gw_config_set(gw_config_t *c, const char *name, const char *value,
                  char *err, size_t cap);

/*
 * Read a config file: "key value" per line, '#' starts a comment line,
 * blank lines are ignored.
 *
 * Returns:   0, or a negative code with "FILE:LINE: ..." in err.
 */
int gw_config_load(gw_config_t *c, const char *path, char *err, size_t cap);

/*
 * Check what cannot be checked one option at a time (a keyring is
 * given; the limits fit together). Returns 0 or -EINVAL with err set.
 */
int gw_config_check(const gw_config_t *c, char *err, size_t cap);

/* The options, for getopt_long() and --help. */
typedef struct gw_option_info {
    const char *name;   /* config-file name */
    const char *arg;    /* what the value is ("N", "PATH"); NULL: a switch */
    const char *help;   /* one line */
    const char *dflt;   /* the default, as text */
} gw_option_info_t;

/* The table, ended by an entry with name NULL. */
const gw_option_info_t *gw_config_options(void);

#endif /* GW_CONFIG_H */
