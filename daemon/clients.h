/*
 * clients.h - the CURVE allow-list: which client keys may connect, and
 * which feed topics each may read.
 *
 * The list is text, one client per line:
 *
 *     NAME Z85_PUBLIC_KEY [topics=PREFIX,PREFIX...|topics=*]
 *
 * NAME is a slug and becomes the connection's ZAP user id; the key is the
 * 40-character Z85 form `parley keygen --curve` writes to NAME.pub.
 * Without topics= (or with topics=*) the client may read every topic.
 * With a list it may subscribe only to topics that start with one of the
 * prefixes (each ending in '/', so "party/egypt/" cannot also match
 * "party/egypt-2/"); "sys/" (heartbeats) is always allowed. Blank lines
 * and lines starting with '#' are ignored; a name or a key may appear
 * once. Parsing is a pure function over text, so that it can be unit
 * tested; pd_clients_load() reads a file, or every *.keys file of a
 * directory, as one list.
 */
#ifndef PD_CLIENTS_H
#define PD_CLIENTS_H

#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_CLIENTS_KEY_BYTES 32
/* Longest allowed prefix: a longer one could never match a topic. */
#define PD_CLIENTS_PREFIX_MAX (PARLEY_TOPIC_MAX - 1)
/* Topics every client may read. */
#define PD_CLIENTS_ALWAYS "sys/"

typedef struct pd_client {
    char name[PARLEY_SLUG_MAX + 1];    /* ZAP user id */
    uint8_t key[PD_CLIENTS_KEY_BYTES]; /* CURVE public key */
    bool all_topics;                   /* topics=* or none given */
    size_t n_prefixes;                 /* prefixes[0..n) with a list */
    char (*prefixes)[PD_CLIENTS_PREFIX_MAX + 1];
} pd_client_t;

typedef struct pd_clients pd_clients_t;

/*
 * Parse allow-list text (len bytes) and append its clients to *list
 * (made when *list is NULL). source names the text in messages.
 *
 * Returns:   0, -EINVAL with "SOURCE:LINE: message" in errbuf (the list
 *            is then unchanged), or -ENOMEM.
 */
int pd_clients_parse(pd_clients_t **list, const char *text, size_t len,
                     const char *source, char *errbuf, size_t errlen);

/*
 * Read the allow-list at path: a file, or a directory whose *.keys files
 * are read in name order as one list. The path and each file must pass
 * pd_trust_check() (trust.h): writable by parleyd's user or root alone.
 *
 * Returns:   the list, or NULL with *err set (-EINVAL for bad text,
 *            -EPERM for a file others could change, -errno for a file
 *            problem) and a message naming the file (and line) in errbuf.
 */
pd_clients_t *pd_clients_load(const char *path, char *errbuf, size_t errlen,
                              int *err);

/* Free a list; *list becomes NULL. Accepts NULL. */
void pd_clients_destroy(pd_clients_t **list);

/* Number of clients. */
size_t pd_clients_size(const pd_clients_t *list);

/* The client with this key, or NULL. */
const pd_client_t *pd_clients_by_key(const pd_clients_t *list,
                                     const uint8_t key[PD_CLIENTS_KEY_BYTES]);

/* The client with this name, or NULL. */
const pd_client_t *pd_clients_by_name(const pd_clients_t *list,
                                      const char *name);

/*
 * May client c subscribe to this prefix (len bytes, not NUL-terminated)?
 * Only if the prefix starts with one of c's prefixes (or with "sys/"), so
 * that subscribing to "" or to a shorter prefix does not reach other
 * topics. c NULL: no client, nothing but "sys/".
 */
bool pd_client_may_subscribe(const pd_client_t *c, const char *prefix,
                             size_t len);

/*
 * May client c read an update carried on these topics (the topics of the
 * update, parley_topics())? Yes if one of them is under one of its
 * prefixes. c NULL: no.
 */
bool pd_client_may_read(const pd_client_t *c,
                        const char topics[][PARLEY_TOPIC_MAX], size_t n);

/*
 * Would a client connected under the old list lose anything with the new
 * one: a key gone, or its topics narrowed or changed? Then the
 * connections made under the old list must be cut.
 */
bool pd_clients_narrowed(const pd_clients_t *old_list,
                         const pd_clients_t *new_list);

#endif /* PD_CLIENTS_H */
