/*
 * config.c - the option table and what reads it: defaults, config file,
 * flags.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    S_STR,   /* char *, NULL when empty */
    S_UINT,  /* unsigned */
    S_INT,   /* int */
    S_SIZE,  /* size_t, with an optional K, M or G */
    S_BOOL,  /* on/off, yes/no, true/false, 1/0 */
    S_LEVEL, /* gw_log_level_t */
} s_type_t;

typedef struct {
    gw_option_info_t info;
    s_type_t type;
    size_t offset;             /* of the field in gw_config_t */
    unsigned long long lo, hi; /* numbers: the range allowed */
} s_option_t;

#define S_OFF(f) offsetof(gw_config_t, f)

static const s_option_t s_options[] = {
    { { "listen", "HOST:PORT",
        "HTTP address: an IPv4 address or [IPv6]; a port of 0 picks one",
        "127.0.0.1:7780" },
      S_STR, S_OFF(listen), 0, 0 },
    { { "server", "ENDPOINTS",
        "parleyd api endpoint list, comma-separated (fail-over)",
        "$PARLEY_SERVER, else tcp://127.0.0.1:7710" },
      S_STR, S_OFF(server), 0, 0 },
    { { "keyring", "PATH",
        "trusted signers: updates are checked against it and browsers "
        "get it from /v1/keyring (required)",
        "none" },
      S_STR, S_OFF(keyring), 0, 0 },
    { { "curve_server_key", "PATH", "parleyd's CURVE public key file",
        "none (no CURVE)" },
      S_STR, S_OFF(curve_server_key), 0, 0 },
    { { "curve_client_key", "PATH", "this gateway's CURVE secret key file",
        "none" },
      S_STR, S_OFF(curve_client_key), 0, 0 },
    { { "timeout_ms", "MS", "wait for parleyd's answer to one request",
        "5000" },
      S_INT, S_OFF(timeout_ms), 100, 600000 },
    { { "window", "N", "recent updates kept in memory for /v1/updates "
                       "and /v1/events resumes",
        "10000" },
      S_SIZE, S_OFF(window), 1, 10000000 },
    { { "window_bytes", "BYTES", "memory the window may use (K, M, G)",
        "64M" },
      S_SIZE, S_OFF(window_bytes), 65536, 1ull << 40 },
    { { "max_connections", "N", "HTTP connections at once", "4096" },
      S_UINT, S_OFF(max_connections), 1, 1000000 },
    { { "max_connections_per_ip", "N", "HTTP connections from one address",
        "64" },
      S_UINT, S_OFF(max_connections_per_ip), 1, 1000000 },
    { { "max_sse_clients", "N", "/v1/events streams at once", "3072" },
      S_UINT, S_OFF(max_sse_clients), 0, 1000000 },
    { { "max_request_bytes", "BYTES", "body of a POST (K, M)", "64K" },
      S_SIZE, S_OFF(max_request_bytes), 256, 16ull << 20 },
    { { "connection_memory", "BYTES",
        "buffer per connection for the request head and the response "
        "being written (K); a request head larger than about half of it "
        "is refused",
        "8K" },
      S_SIZE, S_OFF(connection_memory), 4096, 1ull << 20 },
    { { "header_timeout", "SECONDS",
        "time a client has to send a whole request (slow clients are cut "
        "off)",
        "10" },
      S_UINT, S_OFF(header_timeout), 1, 3600 },
    { { "idle_timeout", "SECONDS", "a connection without traffic is closed",
        "60" },
      S_UINT, S_OFF(idle_timeout), 1, 86400 },
    { { "sse_keepalive", "SECONDS", "keep-alive comment on idle streams",
        "15" },
      S_UINT, S_OFF(sse_keepalive), 1, 3600 },
    { { "sse_retry_ms", "MS", "reconnection delay suggested to browsers",
        "2000" },
      S_UINT, S_OFF(sse_retry_ms), 100, 600000 },
    { { "page_max", "N", "most updates in one /v1/updates answer", "1000" },
      S_UINT, S_OFF(page_max), 1, 1000 },
    { { "workers", "N", "threads that ask parleyd for snapshots and replays",
        "2" },
      S_UINT, S_OFF(workers), 1, 64 },
    { { "max_jobs", "N",
        "snapshot and replay requests waiting for a worker; more are "
        "answered 503",
        "64" },
      S_UINT, S_OFF(max_jobs), 1, 100000 },
    { { "cors_origin", "ORIGIN",
        "allow this origin (or *) to read the API from other sites",
        "none (no CORS)" },
      S_STR, S_OFF(cors_origin), 0, 0 },
    { { "publish", "on|off", "accept POST /v1/updates and forward it to "
                             "parleyd",
        "off" },
      S_BOOL, S_OFF(publish), 0, 0 },
    { { "log_level", "LEVEL", "error, warn, info or debug", "info" },
      S_LEVEL, S_OFF(log_level), 0, 0 },
};

#define S_N (sizeof(s_options) / sizeof(s_options[0]))

const gw_option_info_t *
gw_config_options(void)
{
    static gw_option_info_t infos[S_N + 1];
    if (infos[0].name == NULL)
        for (size_t i = 0; i < S_N; i++)
            infos[i] = s_options[i].info;
    return infos;
}

static int
s_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Parse HOST:PORT (IPv4 literal or [IPv6]) into c->addr. */
static int
s_listen(gw_config_t *c, const char *v, char *err, size_t cap)
{
    char host[64];
    const char *port;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - v) > sizeof(host))
            return s_err(err, cap, "listen: expected [IPv6]:PORT, not \"%s\"", v);
        memcpy(host, v + 1, (size_t)(close - v - 1));
        host[close - v - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (colon == NULL || (size_t)(colon - v) >= sizeof(host))
            return s_err(err, cap, "listen: expected HOST:PORT, not \"%s\"", v);
        memcpy(host, v, (size_t)(colon - v));
        host[colon - v] = '\0';
        port = colon + 1;
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (port[0] < '0' || port[0] > '9' || *end != '\0' || p > 65535 || errno)
        return s_err(err, cap, "listen: \"%s\" is not a port 0-65535", port);
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
        return s_err(err, cap,
                     "listen: \"%s\" is not an IP address (names are not "
                     "looked up)",
                     host);
    memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
    c->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* A number with an optional K, M or G (powers of 1024) for S_SIZE. */
static int
s_number(const char *v, bool suffix, unsigned long long *out)
{
    char *end;
    if (v[0] < '0' || v[0] > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0)
        return -EINVAL;
    unsigned shift = 0;
    if (suffix && *end != '\0' && end[1] == '\0') {
        switch (*end) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        default: return -EINVAL;
        }
        end++;
    }
    if (*end != '\0' || (shift > 0 && n > (ULLONG_MAX >> shift)))
        return -EINVAL;
    *out = n << shift;
    return 0;
}

static const s_option_t *
s_find(const char *name)
{
    for (size_t i = 0; i < S_N; i++) {
        const char *a = s_options[i].info.name, *b = name;
        /* "max_connections" and "max-connections" name the same option. */
        while (*a != '\0' && (*a == *b || (*a == '_' && *b == '-'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return &s_options[i];
    }
    return NULL;
}

int
gw_config_set(gw_config_t *c, const char *name, const char *value, char *err,
              size_t cap)
{
    const s_option_t *o = s_find(name);
    if (o == NULL)
        return -ENOENT;
    char *field = (char *)c + o->offset;
    unsigned long long n = 0;
    if (value == NULL) {
        if (o->type != S_BOOL)
            return s_err(err, cap, "%s: needs a value (%s)", o->info.name,
                         o->info.arg);
        value = "on";
    }
    switch (o->type) {
    case S_STR: {
        char **s = (char **)(void *)field;
        if (strcmp(o->info.name, "listen") == 0) {
            int rc = s_listen(c, value, err, cap);
            if (rc < 0)
                return rc;
        }
        char *copy = value[0] != '\0' ? strdup(value) : NULL;
        if (value[0] != '\0' && copy == NULL)
            return -ENOMEM;
        free(*s);
        *s = copy;
        return 0;
    }
    case S_UINT:
    case S_INT:
    case S_SIZE:
        if (s_number(value, o->type == S_SIZE, &n) < 0 || n < o->lo
            || n > o->hi)
            return s_err(err, cap, "%s: expected a number %llu-%llu%s, not "
                                   "\"%s\"",
                         o->info.name, o->lo, o->hi,
                         o->type == S_SIZE ? " (K, M, G allowed)" : "", value);
        if (o->type == S_UINT)
            *(unsigned *)(void *)field = (unsigned)n;
        else if (o->type == S_INT)
            *(int *)(void *)field = (int)n;
        else
            *(size_t *)(void *)field = (size_t)n;
        return 0;
    case S_BOOL:
        if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0
            || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *(bool *)(void *)field = true;
        else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0
                 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *(bool *)(void *)field = false;
        else
            return s_err(err, cap, "%s: expected on or off, not \"%s\"",
                         o->info.name, value);
        return 0;
    case S_LEVEL:
        if (gw_log_level_parse(value, (gw_log_level_t *)(void *)field) < 0)
            return s_err(err, cap, "%s: expected error, warn, info or debug, "
                                   "not \"%s\"",
                         o->info.name, value);
        return 0;
    }
    return -EINVAL;
}

int
gw_config_defaults(gw_config_t *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < S_N; i++) {
        const char *d = s_options[i].info.dflt;
        /* Defaults that are not values ("none", "$PARLEY_SERVER, ...")
         * leave the field empty. */
        if (strncmp(d, "none", 4) == 0 || d[0] == '$')
            continue;
        int rc = gw_config_set(c, s_options[i].info.name, d, NULL, 0);
        if (rc < 0) {
            gw_config_free(c);
            return rc;
        }
    }
    return 0;
}

void
gw_config_free(gw_config_t *c)
{
    for (size_t i = 0; i < S_N; i++)
        if (s_options[i].type == S_STR) {
            char **s = (char **)(void *)((char *)c + s_options[i].offset);
            free(*s);
            *s = NULL;
        }
}

int
gw_config_load(gw_config_t *c, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int rc = -errno;
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return rc;
    }
    char *line = NULL, msg[256];
    size_t lcap = 0;
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &lcap, f) >= 0) {
        lineno++;
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r\n")] = '\0';
        if (*p == '\0' || *p == '#')
            continue;
        char *key = p;
        char *val = key + strcspn(key, " \t");
        if (*val != '\0')
            *val++ = '\0';
        val += strspn(val, " \t");
        size_t n = strlen(val);
        while (n > 0 && (val[n - 1] == ' ' || val[n - 1] == '\t'))
            val[--n] = '\0';
        msg[0] = '\0';
        rc = gw_config_set(c, key, val, msg, sizeof(msg));
        if (rc == -ENOENT)
            snprintf(err, cap, "%s:%u: unknown option \"%s\"", path, lineno, key);
        else if (rc < 0)
            snprintf(err, cap, "%s:%u: %s", path, lineno,
                     msg[0] != '\0' ? msg : strerror(-rc));
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        snprintf(err, cap, "%s: read error", path);
    }
    free(line);
    fclose(f);
    return rc;
}

int
gw_config_check(const gw_config_t *c, char *err, size_t cap)
{
    if (c->keyring == NULL)
        return s_err(err, cap, "keyring: required (the trusted signers, as "
                               "parleyd's keyring file)");
    if ((c->curve_server_key == NULL) != (c->curve_client_key == NULL))
        return s_err(err, cap, "curve_server_key and curve_client_key go "
                               "together");
    if (c->max_connections_per_ip > c->max_connections)
        return s_err(err, cap, "max_connections_per_ip (%u) is above "
                               "max_connections (%u)",
                     c->max_connections_per_ip, c->max_connections);
    if (c->max_sse_clients > c->max_connections)
        return s_err(err, cap, "max_sse_clients (%u) is above "
                               "max_connections (%u)",
                     c->max_sse_clients, c->max_connections);
    if (c->max_request_bytes > c->window_bytes)
        return s_err(err, cap, "max_request_bytes is above window_bytes");
    return 0;
}
