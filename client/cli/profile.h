/*
 * profile.h - client profiles: named contexts in ~/.config/parley/config
 * (or $PARLEY_CONFIG), so that people stop repeating -s and key paths.
 *
 *   # which context applies when none is named
 *   default-context production
 *
 *   context production
 *       server tcp://a.example:7710,tcp://b.example:7710
 *       key ~/.config/parley/newsdesk.key
 *       keyring ~/.config/parley/keyring
 *       curve-server-key ~/.config/parley/parleyd.pub
 *       curve-key ~/.config/parley/client.curve
 *       timeout 10
 *
 * "key value" lines like parleyd.conf, '#' comments, blank lines; a
 * "context NAME" line starts a context and the settings after it belong
 * to it. Paths starting with "~/" are under $HOME; other relative paths
 * are relative to the directory of the config file.
 */
#ifndef PARLEY_CLI_PROFILE_H
#define PARLEY_CLI_PROFILE_H

#include <stddef.h>

/* Settings of one context; NULL (or 0) where the context sets none. */
typedef struct cli_context {
    char *name;             /* a slug */
    char *server;           /* endpoint list */
    char *key;              /* signing key file (parley pub -k) */
    char *keyring;          /* keyring file (--keyring) */
    char *curve_server_key; /* --curve-server-key */
    char *curve_key;        /* --curve-key */
    int timeout_ms;         /* --timeout; 0 = not set */
    int line;               /* where it starts in the file */
} cli_context_t;

/* A parsed config file. */
typedef struct cli_config {
    char *path;               /* the file read */
    char *default_context;    /* default-context, or NULL */
    cli_context_t *contexts;  /* in file order */
    size_t n;
} cli_config_t;

/*
 * The config file to read: $PARLEY_CONFIG if set and not empty, else
 * $XDG_CONFIG_HOME/parley/config, else $HOME/.config/parley/config.
 *
 * Returns:   0 with the path in buf, or -1 (no HOME, name too long).
 */
int cli_config_path(char *buf, size_t cap);

/*
 * Parse config text (from path, which names the file in messages and
 * anchors relative paths).
 *
 * Returns:   0 with *out filled, or -1 with a message naming the line in
 *            err ("FILE:LINE: unknown setting \"sever\"").
 * Ownership: free *out with cli_config_free(), also after a failure.
 */
int cli_config_parse(const char *text, const char *path, cli_config_t *out,
                     char *err, size_t cap);

/*
 * Read and parse the file at path.
 *
 * Returns:   0, -ENOENT if there is no such file (*out empty), or -1 with
 *            the reason in err.
 * Ownership: free *out with cli_config_free().
 */
int cli_config_load(const char *path, cli_config_t *out, char *err,
                    size_t cap);

/* The context called name, or NULL. */
const cli_context_t *cli_config_find(const cli_config_t *cfg,
                                     const char *name);

/* Free what a config holds; it is empty afterwards. */
void cli_config_free(cli_config_t *cfg);

#endif /* PARLEY_CLI_PROFILE_H */
