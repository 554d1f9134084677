/*
 * clients.c - the CURVE allow-list and the topic checks made with it.
 */
#include "clients.h"

#include "keys.h"
#include "trust.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Allow-list files are small; refuse to slurp something that is not one. */
#define S_FILE_MAX (16 * 1024 * 1024)
/* Files read from one directory at most (they are read in one go). */
#define S_DIR_FILES_MAX 4096

/* One access class: its rights, written out so that lists compare. */
typedef struct {
    size_t member;  /* index in v of its first client, SIZE_MAX: none */
    char *sig;      /* "*" or the sorted prefixes, then "|stats" or "|-" */
} s_class_t;

struct pd_clients {
    size_t n, cap;
    pd_client_t *v; /* in the order read; lookups scan (lists are short) */
    s_class_t classes[PD_CLIENTS_CLASSES_MAX];
    size_t n_classes;
};

static void
s_classes_free(pd_clients_t *list)
{
    for (size_t k = 0; k < list->n_classes; k++)
        free(list->classes[k].sig);
    list->n_classes = 0;
}

void
pd_clients_destroy(pd_clients_t **list)
{
    if (list == NULL || *list == NULL)
        return;
    for (size_t i = 0; i < (*list)->n; i++)
        free((*list)->v[i].prefixes);
    s_classes_free(*list);
    free((*list)->v);
    free(*list);
    *list = NULL;
}

size_t
pd_clients_size(const pd_clients_t *list)
{
    return list != NULL ? list->n : 0;
}

const pd_client_t *
pd_clients_by_key(const pd_clients_t *list,
                  const uint8_t key[PD_CLIENTS_KEY_BYTES])
{
    for (size_t i = 0; list != NULL && i < list->n; i++)
        if (memcmp(list->v[i].key, key, PD_CLIENTS_KEY_BYTES) == 0)
            return &list->v[i];
    return NULL;
}

const pd_client_t *
pd_clients_by_name(const pd_clients_t *list, const char *name)
{
    for (size_t i = 0; list != NULL && name != NULL && i < list->n; i++)
        if (strcmp(list->v[i].name, name) == 0)
            return &list->v[i];
    return NULL;
}

/* Does s (len bytes) start with the NUL-terminated prefix p? */
static bool
s_starts(const char *s, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len >= n && memcmp(s, p, n) == 0;
}

/* Is s (len bytes) exactly the NUL-terminated t? */
static bool
s_is(const char *s, size_t len, const char *t)
{
    return len == strlen(t) && memcmp(s, t, len) == 0;
}

bool
pd_client_may_subscribe(const pd_client_t *c, const char *prefix, size_t len)
{
    if (s_is(prefix, len, PD_CLIENTS_HEARTBEAT_TOPIC))
        return true;
    if (s_is(prefix, len, PD_CLIENTS_STATS_TOPIC)
        || s_is(prefix, len, PD_CLIENTS_CHECKPOINT_TOPIC))
        return c != NULL && c->stats;
    if (c == NULL || s_starts(prefix, len, "sys/"))
        return false;
    if (c->all_topics)
        return true;
    for (size_t i = 0; i < c->n_prefixes; i++)
        if (s_starts(prefix, len, c->prefixes[i]))
            return true;
    return false;
}

bool
pd_client_may_read(const pd_client_t *c, const char topics[][PARLEY_TOPIC_MAX],
                   size_t n)
{
    if (c == NULL)
        return false;
    if (c->all_topics)
        return true;
    for (size_t t = 0; t < n; t++)
        for (size_t i = 0; i < c->n_prefixes; i++)
            if (s_starts(topics[t], strlen(topics[t]), c->prefixes[i]))
                return true;
    return false;
}

/* Do the two entries grant the same topics, listed the same way? */
static bool
s_same_topics(const pd_client_t *old_c, const pd_client_t *new_c)
{
    if (old_c->all_topics != new_c->all_topics
        || old_c->n_prefixes != new_c->n_prefixes)
        return false;
    for (size_t i = 0; i < old_c->n_prefixes; i++)
        if (strcmp(old_c->prefixes[i], new_c->prefixes[i]) != 0)
            return false;
    return true;
}

bool
pd_clients_narrowed(const pd_clients_t *old_list, const pd_clients_t *new_list)
{
    for (size_t i = 0; old_list != NULL && i < old_list->n; i++) {
        const pd_client_t *o = &old_list->v[i];
        const pd_client_t *n = pd_clients_by_key(new_list, o->key);
        /* A renamed key changes the user id its connections carry. */
        if (n == NULL || strcmp(n->name, o->name) != 0 || !s_same_topics(o, n)
            || n->stats != o->stats)
            return true;
    }
    return false;
}

/* --------------------------------------------------------------- classes */

static int
s_cmp_prefix(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The rights of c written out (malloc'd): equal strings, equal rights. */
static char *
s_class_sig(const pd_client_t *c)
{
    size_t n = c->all_topics ? 0 : c->n_prefixes;
    char(*sorted)[PD_CLIENTS_PREFIX_MAX + 1] =
        n > 0 ? malloc(n * sizeof(*sorted)) : NULL;
    char *sig = malloc(n * (PD_CLIENTS_PREFIX_MAX + 2) + 16);
    if (sig == NULL || (n > 0 && sorted == NULL)) {
        free(sorted);
        free(sig);
        return NULL;
    }
    size_t used = 0;
    if (c->all_topics) {
        sig[used++] = '*';
    } else {
        memcpy(sorted, c->prefixes, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), s_cmp_prefix);
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
                continue; /* listed twice: the same rights */
            size_t l = strlen(sorted[i]);
            memcpy(sig + used, sorted[i], l);
            used += l;
            sig[used++] = ',';
        }
    }
    strcpy(sig + used, c->stats ? "|stats" : "|-");
    free(sorted);
    return sig;
}

/*
 * Number the access classes of the whole list. Returns 0, -ENOMEM, or
 * -E2BIG when it has more than PD_CLIENTS_CLASSES_MAX (*over then names
 * the first client of the class that does not fit).
 */
static int
s_classify(pd_clients_t *list, size_t *over)
{
    s_classes_free(list);
    if ((list->classes[0].sig = strdup("*|stats")) == NULL)
        return -ENOMEM;
    list->classes[0].member = SIZE_MAX;
    list->n_classes = 1;
    for (size_t i = 0; i < list->n; i++) {
        char *sig = s_class_sig(&list->v[i]);
        if (sig == NULL)
            return -ENOMEM;
        size_t k = 0;
        while (k < list->n_classes && strcmp(list->classes[k].sig, sig) != 0)
            k++;
        if (k == list->n_classes) {
            if (k == PD_CLIENTS_CLASSES_MAX) {
                free(sig);
                *over = i;
                return -E2BIG;
            }
            list->classes[k] = (s_class_t){ .member = i, .sig = sig };
            list->n_classes++;
        } else {
            free(sig);
            if (list->classes[k].member == SIZE_MAX)
                list->classes[k].member = i;
        }
        list->v[i].klass = (unsigned)k;
    }
    return 0;
}

size_t
pd_clients_classes(const pd_clients_t *list)
{
    return list != NULL && list->n_classes > 0 ? list->n_classes : 1;
}

const pd_client_t *
pd_clients_class_member(const pd_clients_t *list, size_t k)
{
    if (list == NULL || k >= list->n_classes
        || list->classes[k].member == SIZE_MAX)
        return NULL;
    return &list->v[list->classes[k].member];
}

bool
pd_clients_same_classes(const pd_clients_t *a, const pd_clients_t *b)
{
    size_t n = pd_clients_classes(a);
    if (n != pd_clients_classes(b))
        return false;
    for (size_t k = 1; k < n; k++)
        if (strcmp(a->classes[k].sig, b->classes[k].sig) != 0)
            return false;
    return true;
}

/* ---------------------------------------------------------------- parser */

typedef struct {
    const char *source;
    size_t line;
    char *errbuf;
    size_t errlen;
} s_parse_t;

static int
s_fail(s_parse_t *p, const char *fmt, ...)
{
    if (p->errbuf != NULL && p->errlen > 0) {
        int n = snprintf(p->errbuf, p->errlen, "%s:%zu: ", p->source, p->line);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->errbuf + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

/* A prefix: printable ASCII without space or comma, ending in '/'. */
static int
s_parse_prefix(s_parse_t *p, const char *name, const char *v)
{
    size_t n = strlen(v);
    if (n == 0)
        return s_fail(p, "client %s: topics: empty item in list", name);
    if (n > PD_CLIENTS_PREFIX_MAX)
        return s_fail(p,
                      "client %s: topics: \"%.16s...\" is longer than any "
                      "topic (%d bytes)",
                      name, v, PD_CLIENTS_PREFIX_MAX);
    for (const char *c = v; *c != '\0'; c++)
        if (*c <= ' ' || *c >= 0x7f)
            return s_fail(p,
                          "client %s: topics: \"%s\" holds a character "
                          "that is not printable ASCII",
                          name, v);
    if (v[n - 1] != '/')
        return s_fail(p,
                      "client %s: topics: \"%s\" must end with '/' (a "
                      "whole topic level, e.g. \"%s/\"), or it would "
                      "also match longer names",
                      name, v, v);
    return 0;
}

static int
s_parse_topics(s_parse_t *p, pd_client_t *c, char *val)
{
    if (strcmp(val, "*") == 0) {
        c->all_topics = true;
        return 0;
    }
    size_t n = 1;
    for (const char *s = val; *s != '\0'; s++)
        n += *s == ',';
    if (val[0] == ',' || strstr(val, ",,") != NULL
        || (val[0] != '\0' && val[strlen(val) - 1] == ','))
        return s_fail(p, "client %s: topics: empty item in list", c->name);
    if ((c->prefixes = calloc(n, sizeof(*c->prefixes))) == NULL)
        return -ENOMEM;
    char *save = NULL;
    for (char *tok = strtok_r(val, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int rc = s_parse_prefix(p, c->name, tok);
        if (rc < 0)
            return rc;
        strcpy(c->prefixes[c->n_prefixes++], tok);
    }
    if (c->n_prefixes == 0)
        return s_fail(p,
                      "client %s: topics: empty list (use topics=* for "
                      "every topic)",
                      c->name);
    return 0;
}

/*
 * Add a client named name with the Z85 public key key at the end of
 * list, checking that neither is listed already. Returns 0 with *out the
 * new entry, or a negative code (the entry, if made, stays counted so
 * that a failure frees it with the rest).
 */
static int
s_add_client(s_parse_t *p, pd_clients_t *list, const char *name,
             const char *key, pd_client_t **out)
{
    if (list->n == list->cap) {
        size_t cap = list->cap > 0 ? list->cap * 2 : 16;
        pd_client_t *v = realloc(list->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        list->v = v;
        list->cap = cap;
    }
    pd_client_t *c = &list->v[list->n];
    memset(c, 0, sizeof(*c));
    list->n++; /* counted now so that a failure frees its prefixes */
    strcpy(c->name, name);
    if (parley__curve_public_parse(key, c->key) != 0)
        return s_fail(p,
                      "client %s: \"%.48s\" is not a CURVE public key (40 "
                      "characters of Z85, as in the NAME.pub file "
                      "`parley keygen --curve` writes)",
                      name, key);
    for (size_t i = 0; i + 1 < list->n; i++) {
        if (strcmp(list->v[i].name, name) == 0)
            return s_fail(p, "client %s: name appears twice", name);
        if (memcmp(list->v[i].key, c->key, sizeof(c->key)) == 0)
            return s_fail(p, "client %s: key already listed as %s", name,
                          list->v[i].name);
    }
    *out = c;
    return 0;
}

/* The value of stats=: yes or no. */
static int
s_parse_stats(s_parse_t *p, pd_client_t *c, const char *val)
{
    if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0)
        return s_fail(p, "client %s: stats= takes yes or no, not "
                         "\"%s\"",
                      c->name, val);
    c->stats = strcmp(val, "yes") == 0;
    return 0;
}

/* The options after a client's key, each at most once: topics= and
 * stats=, up to the end of the line or a comment; save is strtok_r's
 * state over the line. */
static int
s_parse_options(s_parse_t *p, pd_client_t *c, char **save)
{
    c->all_topics = true;
    bool seen_topics = false, seen_stats = false;
    for (char *opt = strtok_r(NULL, " \t", save); opt != NULL;
         opt = strtok_r(NULL, " \t", save)) {
        if (opt[0] == '#')
            break; /* a comment after the fields */
        int rc;
        if (strncmp(opt, "stats=", 6) == 0 && !seen_stats) {
            seen_stats = true;
            if ((rc = s_parse_stats(p, c, opt + 6)) < 0)
                return rc;
            continue;
        }
        if (strncmp(opt, "topics=", 7) != 0 || seen_topics)
            return s_fail(p,
                          "client %s: unknown or repeated option \"%s\" "
                          "(expected topics=PREFIX,... or topics=*, and "
                          "stats=yes or stats=no)",
                          c->name, opt);
        seen_topics = true;
        c->all_topics = false;
        if ((rc = s_parse_topics(p, c, opt + 7)) < 0)
            return rc;
    }
    /* By default the counters go with reading everything: they tell
     * how much traffic there is, which a limited client should not
     * learn from them. */
    if (!seen_stats)
        c->stats = c->all_topics;
    return 0;
}

/* Parse one line (NUL-terminated, modified) into list->v[list->n]:
 * NAME KEY [topics=...] [stats=...] [# comment], or a comment. */
static int
s_parse_line(s_parse_t *p, pd_clients_t *list, char *line)
{
    char *save = NULL;
    char *name = strtok_r(line, " \t", &save);
    if (name == NULL || name[0] == '#')
        return 0;
    if (!parley_slug_valid(name))
        return s_fail(p,
                      "client name \"%s\" is not a slug "
                      "([a-z0-9][a-z0-9-]{0,31})",
                      name);
    char *key = strtok_r(NULL, " \t", &save);
    if (key == NULL)
        return s_fail(p, "client %s: missing the Z85 public key", name);
    pd_client_t *c = NULL;
    int rc = s_add_client(p, list, name, key, &c);
    if (rc < 0)
        return rc;
    return s_parse_options(p, c, &save);
}

/* Parse every line of text (len bytes) into list; stops at the first
 * error. */
static int
s_parse_lines(s_parse_t *p, pd_clients_t *list, const char *text,
              size_t len)
{
    int rc = 0;
    char *line = malloc(len + 1);
    if (line == NULL)
        return -ENOMEM;
    for (size_t start = 0; start < len;) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        p->line++;
        size_t n = end - start;
        if (n > 0 && text[end - 1] == '\r')
            n--;
        if (memchr(text + start, '\0', n) != NULL) {
            rc = s_fail(p, "NUL byte in line");
            break;
        }
        memcpy(line, text + start, n);
        line[n] = '\0';
        if ((rc = s_parse_line(p, list, line)) < 0)
            break;
        start = end + 1;
    }
    free(line);
    return rc;
}

/* Count the access classes of list, saying so in p's error buffer when
 * there are more than PD_CLIENTS_CLASSES_MAX. */
static int
s_check_classes(s_parse_t *p, pd_clients_t *list)
{
    size_t over = 0;
    int rc = s_classify(list, &over);
    if (rc == -E2BIG) {
        if (p->errbuf != NULL && p->errlen > 0)
            snprintf(p->errbuf, p->errlen,
                     "%s: client %s: more than %d different access "
                     "classes (topics= lists and stats= permissions); "
                     "clients with the same rights share one",
                     p->source, list->v[over].name, PD_CLIENTS_CLASSES_MAX);
        rc = -EINVAL;
    }
    return rc;
}

/* All or nothing: drop what a failed parse added to *listp after its
 * first n0 clients (all of the list, if the parse made it). */
static void
s_undo(pd_clients_t **listp, size_t n0, bool made)
{
    pd_clients_t *list = *listp;
    for (size_t i = n0; i < list->n; i++)
        free(list->v[i].prefixes);
    list->n = n0;
    size_t over;
    if (!made && s_classify(list, &over) < 0)
        s_classes_free(list); /* out of memory: classes counted again
                                 by the next parse */
    if (made)
        pd_clients_destroy(listp);
}

int
pd_clients_parse(pd_clients_t **listp, const char *text, size_t len,
                 const char *source, char *errbuf, size_t errlen)
{
    s_parse_t p = { source != NULL ? source : "clients", 0, errbuf, errlen };
    bool made = false;
    if (*listp == NULL) {
        if ((*listp = calloc(1, sizeof(**listp))) == NULL)
            return -ENOMEM;
        made = true;
    }
    size_t n0 = (*listp)->n;
    int rc = s_parse_lines(&p, *listp, text, len);
    if (rc == 0)
        rc = s_check_classes(&p, *listp);
    if (rc < 0) {
        s_undo(listp, n0, made);
        if (rc == -ENOMEM && errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s: out of memory", p.source);
    }
    return rc;
}

/* Read a regular file of at most S_FILE_MAX bytes. */
static int
s_read_file(const char *path, char **out, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    if (st.st_size > S_FILE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    char *text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, text + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            free(text);
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = text;
    *len = n;
out:
    close(fd);
    return rc;
}

static int
s_load_file(pd_clients_t **list, const char *path, char *errbuf, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = s_read_file(path, &text, &len);
    if (rc < 0) {
        snprintf(errbuf, errlen, "%s: %s", path,
                 rc == -EINVAL ? "not a regular file" : strerror(-rc));
        return rc;
    }
    rc = pd_clients_parse(list, text, len, path, errbuf, errlen);
    free(text);
    return rc;
}

static int
s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
s_is_keys_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".keys") == 0;
}

/*
 * The *.keys files of directory path, sorted by name, into *names (*n of
 * them; the caller frees each name and the array, also after an error).
 * Returns 0 or a negative error with a message in errbuf.
 */
static int
s_list_keys_files(const char *path, char ***names, size_t *n, char *errbuf,
                  size_t errlen)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        int rc = -errno;
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!s_is_keys_file(e->d_name))
            continue;
        if (*n == S_DIR_FILES_MAX) {
            rc = -EFBIG;
            snprintf(errbuf, errlen, "%s: more than %d *.keys files", path,
                     S_DIR_FILES_MAX);
            break;
        }
        char **v = realloc(*names, (*n + 1) * sizeof(**names));
        if (v == NULL || (v[*n] = strdup(e->d_name)) == NULL) {
            *names = v != NULL ? v : *names;
            rc = -ENOMEM;
            snprintf(errbuf, errlen, "%s: out of memory", path);
            break;
        }
        *names = v;
        (*n)++;
    }
    closedir(d);
    if (rc == 0 && *n > 1)
        qsort(*names, *n, sizeof(**names), s_cmp_names);
    return rc;
}

/*
 * The list of a directory: its *.keys files in name order, each checked
 * like the directory (pd_trust_check()). An empty directory is an empty
 * list: nobody may connect. Returns 0 or a negative error with a message
 * in errbuf; *list may be set after an error too.
 */
static int
s_load_dir(pd_clients_t **list, const char *path, char *errbuf,
           size_t errlen)
{
    char **names = NULL;
    size_t n = 0;
    int rc = s_list_keys_files(path, &names, &n, errbuf, errlen);
    if (rc == 0 && (*list = calloc(1, sizeof(**list))) == NULL) {
        rc = -ENOMEM;
        snprintf(errbuf, errlen, "%s: out of memory", path);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char file[PATH_MAX];
        if (snprintf(file, sizeof(file), "%s/%s", path, names[i])
            >= (int)sizeof(file)) {
            rc = -ENAMETOOLONG;
            snprintf(errbuf, errlen, "%s/%s: name too long", path, names[i]);
            break;
        }
        rc = pd_trust_check(file, "curve_clients", errbuf, errlen);
        if (rc == 0)
            rc = s_load_file(list, file, errbuf, errlen);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

pd_clients_t *
pd_clients_load(const char *path, char *errbuf, size_t errlen, int *err)
{
    pd_clients_t *list = NULL;
    struct stat st;
    errbuf[0] = '\0';
    /* Whoever can write the list decides who may connect. */
    if ((*err = pd_trust_check(path, "curve_clients", errbuf, errlen)) < 0)
        return NULL;
    if (stat(path, &st) != 0) {
        *err = -errno;
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    int rc = S_ISDIR(st.st_mode) ? s_load_dir(&list, path, errbuf, errlen)
                                 : s_load_file(&list, path, errbuf, errlen);
    if (rc < 0) {
        pd_clients_destroy(&list);
        *err = rc;
        return NULL;
    }
    *err = 0;
    return list;
}
