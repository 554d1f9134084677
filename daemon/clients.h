/*
 * clients.h - the CURVE allow-list: which client keys may connect, and
 * which feed topics each may read.
 *
 * The list is text, one client per line:
 *
 *     NAME Z85_PUBLIC_KEY [topics=PREFIX,PREFIX...|topics=*] [stats=yes|no]
 *
 * NAME is a slug that names the client in logs (the connection's ZAP user
 * id); rights follow the key, the 40-character Z85 form `parley keygen
 * --curve` writes to NAME.pub. Without topics= (or with topics=*) the
 * client may read every topic. With a list it may subscribe only to
 * topics that start with one of the prefixes (each ending in '/', so
 * "party/egypt/" cannot also match "party/egypt-2/"); sys/heartbeat/ is
 * always allowed. stats= says whether it may ask for the daemon's
 * counters and read sys/stats/: by default a client that reads every
 * topic may, a limited one may not. Blank lines and lines starting with
 * '#' are ignored; a name or a key may appear once. Parsing is a pure
 * function over text, so that it can be unit tested; pd_clients_load()
 * reads a file, or every *.keys file of a directory, as one list.
 *
 * Access classes: clients with the same rights (every topic or the same
 * set of prefixes, and the same stats permission) form one class. Class
 * 0 is every topic with stats, whether or not a client has it; the
 * others are numbered in the order their first client is listed. The
 * feed gives each class a socket of its own (feed.h), so that what one
 * class may read never shares a socket with a client of another.
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
/* The daemon's own topics (feed.c sends them, zap.c admits them): every
 * client may read heartbeats; sys/stats/ needs the stats permission. */
#define PD_CLIENTS_HEARTBEAT_TOPIC "sys/heartbeat/"
#define PD_CLIENTS_STATS_TOPIC "sys/stats/"
/* The transparency log's checkpoints: its tree size tells as much as the
 * counters, so it needs the stats permission too. */
#define PD_CLIENTS_CHECKPOINT_TOPIC "sys/checkpoint/"
/* Access classes a list may define (each is a feed socket). */
#define PD_CLIENTS_CLASSES_MAX 32

typedef struct pd_client {
    char name[PARLEY_SLUG_MAX + 1];    /* ZAP user id */
    uint8_t key[PD_CLIENTS_KEY_BYTES]; /* CURVE public key */
    bool all_topics;                   /* topics=* or none given */
    bool stats;                        /* may read the daemon's counters */
    unsigned klass;                    /* access class, see above */
    size_t n_prefixes;                 /* prefixes[0..n) with a list */
    char (*prefixes)[PD_CLIENTS_PREFIX_MAX + 1];
} pd_client_t;

typedef struct pd_clients pd_clients_t;

/*
 * Parse allow-list text (len bytes) and append its clients to *list
 * (made when *list is NULL), then number the access classes of the
 * whole list. source names the text in messages.
 *
 * Returns:   0, -EINVAL with "SOURCE:LINE: message" in errbuf (the list
 *            is then unchanged; more than PD_CLIENTS_CLASSES_MAX classes
 *            is an error of the text that adds one), or -ENOMEM.
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
 * sys/heartbeat/ always; sys/stats/ and sys/checkpoint/ with the stats
 * permission; no other
 * sys/ topic; anything else only if it starts with one of c's prefixes,
 * so that subscribing to "" or to a shorter prefix does not reach other
 * topics. c NULL: no client, nothing but heartbeats.
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
 * one: a key gone, its topics or stats permission changed, or its name
 * (which logs show)? Then the connections made under the old list must
 * be cut.
 */
bool pd_clients_narrowed(const pd_clients_t *old_list,
                         const pd_clients_t *new_list);

/* Access classes of the list: at least 1 (class 0), also for NULL. */
size_t pd_clients_classes(const pd_clients_t *list);

/*
 * A client of class k, whose rights are the class's; NULL for class 0
 * when no client has it (its rights are every topic and stats), or for a
 * class the list does not have.
 */
const pd_client_t *pd_clients_class_member(const pd_clients_t *list,
                                           size_t k);

/*
 * Do the two lists define the same access classes, numbered alike? When
 * they do, the feed's class sockets serve the new list as they are.
 */
bool pd_clients_same_classes(const pd_clients_t *a, const pd_clients_t *b);

#endif /* PD_CLIENTS_H */
