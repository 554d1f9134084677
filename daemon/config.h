/*
 * config.h - parleyd's settings: embedded defaults, the config file, and
 * the command-line flags that override it.
 *
 * The file is "key value" lines. A '#' at the start of a line, or after
 * whitespace, starts a comment; blank lines are ignored. Every key may
 * appear once. Parsing is a pure function over text so that it can be unit
 * tested and fuzzed; reading the file is a separate step.
 */
#ifndef PD_CONFIG_H
#define PD_CONFIG_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_CONFIG_ENDPOINT_MAX 256 /* bytes of an endpoint, with the NUL */
#define PD_CONFIG_PATH_MAX 1024    /* bytes of a path, with the NUL */
#define PD_CONFIG_STREAM_MAX 32    /* chars of a JetStream stream name */
#define PD_CONFIG_ORIGIN_MAX 256   /* bytes of a log origin, with the NUL */

#define PD_CONFIG_DEFAULT_API "tcp://127.0.0.1:7710"
#define PD_CONFIG_DEFAULT_FEED "tcp://127.0.0.1:7711"
#define PD_CONFIG_DEFAULT_STATE_DIR "./parley-data"

typedef struct pd_config {
    char api[PD_CONFIG_ENDPOINT_MAX];   /* ROUTER bind endpoint */
    char feed[PD_CONFIG_ENDPOINT_MAX];  /* XPUB bind endpoint */
    char state_dir[PD_CONFIG_PATH_MAX]; /* log segments, demo key, keyring */
    char keyring[PD_CONFIG_PATH_MAX];   /* "" = <state_dir>/keyring */
    bool keyring_given;                 /* keyring named by file or flag */
    uint32_t max_message_bytes;         /* largest api request served */
    uint32_t max_clock_skew;            /* seconds issued_at may be off */
    bool fsync;                         /* fdatasync before acking */
    uint64_t retention_bytes;           /* log size kept, 0 = unlimited */
    uint64_t retention_age;             /* seconds kept, 0 = forever */
    uint64_t segment_bytes;             /* roll segments past this size */
    uint64_t disk_reserve;              /* bytes kept allocated past the
                                           log's end, 0 = none */
    uint32_t heartbeat_interval;        /* ms between sys/heartbeat/ */
    uint32_t stats_interval;            /* ms between sys/stats/, 0 = off */
    char include_dir[PD_CONFIG_PATH_MAX]; /* drop-in *.conf files, "" = none */
    char pid_file[PD_CONFIG_PATH_MAX];  /* our pid while we run; "" =
                                           <state_dir>/parleyd.pid */
    bool pid_file_given;                /* pid_file named by file or flag */
    pd_log_level_t log_level;
    /* transport security and limits (DESIGN.md "Transport security") */
    bool curve;                         /* CurveZMQ on api and feed */
    char curve_secret_key[PD_CONFIG_PATH_MAX]; /* server key file, "" = none */
    char curve_clients[PD_CONFIG_PATH_MAX];    /* allow-list file or dir */
    uint32_t max_connections;           /* api + feed connections at once */
    uint32_t max_subscriptions;         /* subscriptions per connection */
    uint32_t handshake_timeout;         /* ms a peer has to finish ZMTP */
    uint32_t rate_limit;                /* updates/s per signer, 0 = off */
    uint32_t rate_burst;                /* bucket size per signer */
    /* cluster mode (docs/cluster.md): on when backbone is set */
    char backbone[PD_CONFIG_PATH_MAX];  /* NATS server URLs, "" = embedded */
    char backbone_stream[PD_CONFIG_STREAM_MAX + 1]; /* stream name */
    uint32_t backbone_replicas;         /* 1..5 */
    uint64_t backbone_duplicate_window; /* s, 0 = 2 * max_clock_skew */
    uint32_t backbone_publish_timeout;  /* ms a submit waits for JetStream */
    char backbone_creds[PD_CONFIG_PATH_MAX];    /* NATS creds file, "" */
    char backbone_tls_ca[PD_CONFIG_PATH_MAX];   /* CA file, "" */
    char backbone_tls_cert[PD_CONFIG_PATH_MAX]; /* client certificate, "" */
    char backbone_tls_key[PD_CONFIG_PATH_MAX];  /* its key (0600), "" */
    char backbone_tls_hostname[PD_CONFIG_ENDPOINT_MAX]; /* expected name */
    /* the transparency log (docs/transparency.md) */
    bool transparency;                  /* keep the Merkle tree, checkpoints */
    char log_key[PD_CONFIG_PATH_MAX];   /* "" = <state_dir>/log.key if there */
    bool log_key_given;                 /* log_key named by file or flag */
    char log_origin[PD_CONFIG_ORIGIN_MAX]; /* "" = parley/<key id> */
    char witnesses[PD_CONFIG_PATH_MAX]; /* witness list file, "" = none */
    uint32_t witness_timeout;           /* ms per add-checkpoint request */
    bool tree_absent_front;             /* start a tree on a log whose front
                                           is gone (docs/transparency.md) */
    /* read replies not yet read by their clients (reads.h) */
    uint64_t reply_queue_bytes;         /* per connection, then reads wait */
    uint64_t reply_queue_total;         /* all connections, then reads wait */
} pd_config_t;

/* Fill cfg with the embedded defaults. */
void pd_config_defaults(pd_config_t *cfg);

/*
 * Set one key from its text value, checking it. Used by the file parser
 * and for command-line flags, so both accept exactly the same values.
 *
 * Returns:   0, or -ENOENT for an unknown key, -EINVAL for a bad value;
 *            then errbuf holds a message without a location.
 */
int pd_config_set(pd_config_t *cfg, const char *key, const char *value,
                  char *errbuf, size_t errlen);

/*
 * Apply config text (len bytes, need not be NUL-terminated) on top of
 * what cfg holds. On error cfg is left unchanged and errbuf holds
 * "FILENAME:LINE: message".
 *
 * Returns:   0 or -EINVAL.
 */
int pd_config_parse(pd_config_t *cfg, const char *text, size_t len,
                    const char *filename, char *errbuf, size_t errlen);

/*
 * Read the file at path and apply it with pd_config_parse(). If it sets
 * include_dir (relative paths are taken from the file's directory), the
 * *.conf files there are applied next, in name order, each able to set a
 * key the main file or an earlier drop-in set (the later wins); a drop-in
 * may not set include_dir itself. All or nothing: on error cfg is
 * unchanged.
 *
 * Returns:   0, -EINVAL (bad text), or -errno (file unreadable); errbuf
 *            names the file either way.
 */
int pd_config_load(pd_config_t *cfg, const char *path, char *errbuf,
                   size_t errlen);

/*
 * Fill in values that depend on others: the keyring defaults to
 * <state_dir>/keyring, the log key to <state_dir>/log.key.
 *
 * Returns:   0 or -ENAMETOOLONG.
 */
int pd_config_finish(pd_config_t *cfg);

/*
 * Check settings that only make sense together: curve on needs
 * curve_secret_key and curve_clients; the backbone_* keys need backbone,
 * and a TLS client certificate its key.
 *
 * Returns:   0, or -EINVAL with a message in errbuf.
 */
int pd_config_check(const pd_config_t *cfg, char *errbuf, size_t errlen);

#endif /* PD_CONFIG_H */
