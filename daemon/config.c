/*
 * config.c - defaults, the "key value" config file, and checked setters.
 */
#include "config.h"

#include "backbone.h"
#include "note.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_KIB 1024ull
#define S_MIB (1024ull * 1024ull)
#define S_GIB (1024ull * 1024ull * 1024ull)

/* Longest key name; a longer token cannot be a key. */
#define S_KEY_MAX 32
/* Config files are short; refuse to slurp something that is not one. */
#define S_FILE_MAX (1024 * 1024)

void
pd_config_defaults(pd_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->api, PD_CONFIG_DEFAULT_API);
    strcpy(cfg->feed, PD_CONFIG_DEFAULT_FEED);
    strcpy(cfg->state_dir, PD_CONFIG_DEFAULT_STATE_DIR);
    cfg->keyring[0] = '\0';
    cfg->keyring_given = false;
    cfg->pid_file_given = false;
    cfg->max_message_bytes = 65536;
    cfg->max_clock_skew = 300;
    cfg->fsync = true;
    cfg->retention_bytes = 0;
    cfg->retention_age = 0;
    cfg->segment_bytes = 64 * S_MIB;
    cfg->disk_reserve = S_MIB;
    cfg->heartbeat_interval = 1000;
    cfg->stats_interval = 5000;
    cfg->log_level = PD_LOG_INFO;
    cfg->curve = false;
    cfg->max_connections = 1024;
    cfg->max_subscriptions = 256;
    cfg->handshake_timeout = 5000;
    cfg->rate_limit = 1000;
    cfg->rate_burst = 2000;
    strcpy(cfg->backbone_stream, "PARLEY");
    cfg->backbone_replicas = 3;
    cfg->backbone_publish_timeout = 2000;
    cfg->transparency = true;
    cfg->witness_timeout = 5000;
    cfg->reply_queue_bytes = 4 * S_MIB;
    cfg->reply_queue_total = 64 * S_MIB;
}

/* ----------------------------------------------------------- value parsers */

/*
 * Parse a decimal number without sign into *out, checking [min, max]. With
 * units set, a suffix K, M or G (optionally followed by "iB") multiplies
 * by 1024, 1024^2 or 1024^3. Returns 0 or -EINVAL with a message.
 */
static int
s_number(const char *v, bool units, uint64_t min, uint64_t max,
         uint64_t *out, char *err, size_t errlen)
{
    uint64_t n = 0;
    const char *p = v;
    if (*p < '0' || *p > '9')
        goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            goto range;
        n = n * 10 + d;
    }
    if (*p != '\0') {
        uint64_t mult;
        if (!units)
            goto bad;
        switch (*p) {
        case 'k':
        case 'K':
            mult = S_KIB;
            break;
        case 'M':
            mult = S_MIB;
            break;
        case 'G':
            mult = S_GIB;
            break;
        default:
            goto bad;
        }
        p++;
        if (strcmp(p, "") != 0 && strcmp(p, "iB") != 0 && strcmp(p, "B") != 0)
            goto bad;
        if (n > UINT64_MAX / mult)
            goto range;
        n *= mult;
    }
    if (n < min || n > max)
        goto range;
    *out = n;
    return 0;
bad:
    snprintf(err, errlen, "'%s' is not a number%s", v,
             units ? " (optionally with a K, M or G suffix)" : "");
    return -EINVAL;
range:
    snprintf(err, errlen, "%s is out of range (%llu to %llu)", v,
             (unsigned long long)min, (unsigned long long)max);
    return -EINVAL;
}

/* An endpoint: "<transport>://<address>", no whitespace. */
static int
s_endpoint(char *dst, const char *v, char *err, size_t errlen)
{
    const char *sep = strstr(v, "://");
    size_t n = strlen(v);
    bool ok = sep != NULL && sep > v && sep[3] != '\0'
              && n < PD_CONFIG_ENDPOINT_MAX;
    for (const char *p = v; ok && p < sep; p++)
        ok = *p >= 'a' && *p <= 'z';
    for (const char *p = v; ok && *p != '\0'; p++)
        ok = (unsigned char)*p > ' ' && *p != 0x7f;
    if (!ok) {
        snprintf(err, errlen,
                 "'%s' is not an endpoint like tcp://127.0.0.1:7710", v);
        return -EINVAL;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* A path: non-empty, no control characters, fits PD_CONFIG_PATH_MAX. */
static int
s_path(char *dst, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    bool ok = n > 0 && n < PD_CONFIG_PATH_MAX;
    for (const char *p = v; ok && *p != '\0'; p++)
        ok = (unsigned char)*p >= ' ' && *p != 0x7f;
    if (!ok) {
        snprintf(err, errlen, "'%s' is not a usable path", v);
        return -EINVAL;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* on or off into *dst. */
static int
s_bool(bool *dst, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "on") == 0) {
        *dst = true;
    } else if (strcmp(v, "off") == 0) {
        *dst = false;
    } else {
        snprintf(err, errlen, "'%s' is not on or off", v);
        return -EINVAL;
    }
    return 0;
}

/* ----------------------------------------------------------------- keys */

typedef int (*s_setter_fn)(pd_config_t *cfg, const char *v, char *err,
                           size_t errlen);

static int
s_set_api(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_endpoint(cfg->api, v, err, errlen);
}

static int
s_set_feed(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_endpoint(cfg->feed, v, err, errlen);
}

static int
s_set_state_dir(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_path(cfg->state_dir, v, err, errlen);
}

static int
s_set_keyring(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    int rc = s_path(cfg->keyring, v, err, errlen);
    if (rc == 0)
        cfg->keyring_given = true;
    return rc;
}

static int
s_set_pid_file(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    int rc = s_path(cfg->pid_file, v, err, errlen);
    if (rc == 0)
        cfg->pid_file_given = true;
    return rc;
}

static int
s_set_max_message_bytes(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    /* Below 1 KiB not even a small valid update fits; above 16 MiB one
     * message would stall the single-threaded loop. */
    uint64_t n;
    int rc = s_number(v, true, S_KIB, 16 * S_MIB, &n, err, errlen);
    if (rc == 0)
        cfg->max_message_bytes = (uint32_t)n;
    return rc;
}

static int
s_set_max_clock_skew(pd_config_t *cfg, const char *v, char *err,
                     size_t errlen)
{
    uint64_t n;
    int rc = s_number(v, false, 1, 10ull * 366 * 86400, &n, err, errlen);
    if (rc == 0)
        cfg->max_clock_skew = (uint32_t)n;
    return rc;
}

static int
s_set_fsync(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_bool(&cfg->fsync, v, err, errlen);
}

static int
s_set_retention_bytes(pd_config_t *cfg, const char *v, char *err,
                      size_t errlen)
{
    return s_number(v, true, 0, UINT64_MAX, &cfg->retention_bytes, err,
                    errlen);
}

static int
s_set_retention_age(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    /* Bounded so that the value in milliseconds fits an int64_t. */
    return s_number(v, false, 0, INT64_MAX / 1000, &cfg->retention_age, err,
                    errlen);
}

static int
s_set_segment_bytes(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_number(v, true, 64 * S_KIB, 1024 * S_GIB, &cfg->segment_bytes,
                    err, errlen);
}

static int
s_set_disk_reserve(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_number(v, true, 0, 64 * S_GIB, &cfg->disk_reserve, err, errlen);
}

static int
s_set_heartbeat_interval(pd_config_t *cfg, const char *v, char *err,
                         size_t errlen)
{
    uint64_t n;
    int rc = s_number(v, false, 10, 3600 * 1000, &n, err, errlen);
    if (rc == 0)
        cfg->heartbeat_interval = (uint32_t)n;
    return rc;
}

static int
s_set_stats_interval(pd_config_t *cfg, const char *v, char *err,
                     size_t errlen)
{
    uint64_t n;
    int rc = s_number(v, false, 0, 3600 * 1000, &n, err, errlen);
    if (rc == 0 && n != 0 && n < 100) {
        snprintf(err, errlen, "%s is out of range (0 = off, or 100 to "
                              "3600000 ms)", v);
        return -EINVAL;
    }
    if (rc == 0)
        cfg->stats_interval = (uint32_t)n;
    return rc;
}

static int
s_set_include_dir(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_path(cfg->include_dir, v, err, errlen);
}

static int
s_set_log_level(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    if (pd_log_parse_level(v, &cfg->log_level) < 0) {
        snprintf(err, errlen, "'%s' is not one of error, warn, info, debug",
                 v);
        return -EINVAL;
    }
    return 0;
}

static int
s_set_curve(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_bool(&cfg->curve, v, err, errlen);
}

static int
s_set_curve_secret_key(pd_config_t *cfg, const char *v, char *err,
                       size_t errlen)
{
    return s_path(cfg->curve_secret_key, v, err, errlen);
}

static int
s_set_curve_clients(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_path(cfg->curve_clients, v, err, errlen);
}

/* A uint32 setter over a range, for the limits below. */
static int
s_u32(uint32_t *dst, const char *v, uint64_t min, uint64_t max, char *err,
      size_t errlen)
{
    uint64_t n;
    int rc = s_number(v, false, min, max, &n, err, errlen);
    if (rc == 0)
        *dst = (uint32_t)n;
    return rc;
}

static int
s_set_max_connections(pd_config_t *cfg, const char *v, char *err,
                      size_t errlen)
{
    /* Each connection is a descriptor; beyond 65536 the fd limit bites
     * long before this one would. */
    return s_u32(&cfg->max_connections, v, 1, 65536, err, errlen);
}

static int
s_set_max_subscriptions(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    return s_u32(&cfg->max_subscriptions, v, 1, 65536, err, errlen);
}

static int
s_set_handshake_timeout(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    /* 0 would mean "wait forever" to libzmq: exactly what a half-open
     * connection from an attacker wants. */
    return s_u32(&cfg->handshake_timeout, v, 100, 600000, err, errlen);
}

static int
s_set_rate_limit(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_u32(&cfg->rate_limit, v, 0, 10000000, err, errlen);
}

static int
s_set_rate_burst(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_u32(&cfg->rate_burst, v, 1, 100000000, err, errlen);
}

static int
s_set_backbone(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    char why[512];
    if (pd_backbone_servers_check(v, why, sizeof(why)) < 0) {
        /* "backbone: ..." from the backbone; the key is said already */
        snprintf(err, errlen, "%s",
                 strncmp(why, "backbone: ", 10) == 0 ? why + 10 : why);
        return -EINVAL;
    }
    return s_path(cfg->backbone, v, err, errlen);
}

/* Is v 1..max of A-Z a-z 0-9 and the chars of extra? */
static bool
s_name_ok(const char *v, size_t max, const char *extra)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= max;
    for (const char *p = v; ok && *p != '\0'; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
             || (*p >= '0' && *p <= '9') || strchr(extra, *p) != NULL;
    return ok;
}

static int
s_set_backbone_stream(pd_config_t *cfg, const char *v, char *err,
                      size_t errlen)
{
    if (!s_name_ok(v, PD_CONFIG_STREAM_MAX, "_-")) {
        snprintf(err, errlen, "'%s' is not 1-%d of A-Z a-z 0-9 _ -", v,
                 PD_CONFIG_STREAM_MAX);
        return -EINVAL;
    }
    memcpy(cfg->backbone_stream, v, strlen(v) + 1);
    return 0;
}

static int
s_set_transparency(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_bool(&cfg->transparency, v, err, errlen);
}

static int
s_set_log_key(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    int rc = s_path(cfg->log_key, v, err, errlen);
    if (rc == 0)
        cfg->log_key_given = true;
    return rc;
}

static int
s_set_log_origin(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    /* The origin is also the log key's name in its signed notes. */
    size_t n = strlen(v);
    if (n >= sizeof(cfg->log_origin) || !parley__note_name_valid(v, n)
        || strcmp(v, "cosignature/v1") == 0) {
        snprintf(err, errlen,
                 "'%s' is not a log origin (1-255 bytes of UTF-8 without "
                 "spaces or '+', like parley.example.org/gaza)", v);
        return -EINVAL;
    }
    memcpy(cfg->log_origin, v, n + 1);
    return 0;
}

static int
s_set_backbone_replicas(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    return s_u32(&cfg->backbone_replicas, v, 1, 5, err, errlen);
}

static int
s_set_backbone_duplicate_window(pd_config_t *cfg, const char *v, char *err,
                                size_t errlen)
{
    /* Checked against max_clock_skew when the backbone opens. */
    return s_number(v, false, 1, 10ull * 366 * 86400,
                    &cfg->backbone_duplicate_window, err, errlen);
}

static int
s_set_backbone_publish_timeout(pd_config_t *cfg, const char *v, char *err,
                               size_t errlen)
{
    return s_u32(&cfg->backbone_publish_timeout, v, 100, 60000, err, errlen);
}

static int
s_set_backbone_creds(pd_config_t *cfg, const char *v, char *err,
                     size_t errlen)
{
    return s_path(cfg->backbone_creds, v, err, errlen);
}

static int
s_set_backbone_tls_ca(pd_config_t *cfg, const char *v, char *err,
                      size_t errlen)
{
    return s_path(cfg->backbone_tls_ca, v, err, errlen);
}

static int
s_set_backbone_tls_cert(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    return s_path(cfg->backbone_tls_cert, v, err, errlen);
}

static int
s_set_backbone_tls_key(pd_config_t *cfg, const char *v, char *err,
                       size_t errlen)
{
    return s_path(cfg->backbone_tls_key, v, err, errlen);
}

static int
s_set_backbone_tls_hostname(pd_config_t *cfg, const char *v, char *err,
                            size_t errlen)
{
    if (!s_name_ok(v, sizeof(cfg->backbone_tls_hostname) - 1, ".-")) {
        snprintf(err, errlen, "'%s' is not a host name", v);
        return -EINVAL;
    }
    memcpy(cfg->backbone_tls_hostname, v, strlen(v) + 1);
    return 0;
}

static int
s_set_witnesses(pd_config_t *cfg, const char *v, char *err, size_t errlen)
{
    return s_path(cfg->witnesses, v, err, errlen);
}

static int
s_set_witness_timeout(pd_config_t *cfg, const char *v, char *err,
                      size_t errlen)
{
    return s_u32(&cfg->witness_timeout, v, 100, 600000, err, errlen);
}

static int
s_set_tree_absent_front(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    return s_bool(&cfg->tree_absent_front, v, err, errlen);
}

static int
s_set_reply_queue_bytes(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    return s_number(v, true, S_MIB, 1024 * S_GIB, &cfg->reply_queue_bytes,
                    err, errlen);
}

static int
s_set_reply_queue_total(pd_config_t *cfg, const char *v, char *err,
                        size_t errlen)
{
    return s_number(v, true, S_MIB, 1024 * S_GIB, &cfg->reply_queue_total,
                    err, errlen);
}

static const struct {
    const char *key;
    s_setter_fn set;
} s_keys[] = {
    { "api", s_set_api },
    { "feed", s_set_feed },
    { "state_dir", s_set_state_dir },
    { "keyring", s_set_keyring },
    { "include_dir", s_set_include_dir },
    { "pid_file", s_set_pid_file },
    { "max_message_bytes", s_set_max_message_bytes },
    { "max_clock_skew", s_set_max_clock_skew },
    { "fsync", s_set_fsync },
    { "retention_bytes", s_set_retention_bytes },
    { "retention_age", s_set_retention_age },
    { "segment_bytes", s_set_segment_bytes },
    { "disk_reserve", s_set_disk_reserve },
    { "heartbeat_interval", s_set_heartbeat_interval },
    { "stats_interval", s_set_stats_interval },
    { "log_level", s_set_log_level },
    { "curve", s_set_curve },
    { "curve_secret_key", s_set_curve_secret_key },
    { "curve_clients", s_set_curve_clients },
    { "max_connections", s_set_max_connections },
    { "max_subscriptions", s_set_max_subscriptions },
    { "handshake_timeout", s_set_handshake_timeout },
    { "rate_limit", s_set_rate_limit },
    { "rate_burst", s_set_rate_burst },
    { "backbone", s_set_backbone },
    { "backbone_stream", s_set_backbone_stream },
    { "backbone_replicas", s_set_backbone_replicas },
    { "backbone_duplicate_window", s_set_backbone_duplicate_window },
    { "backbone_publish_timeout", s_set_backbone_publish_timeout },
    { "backbone_creds", s_set_backbone_creds },
    { "backbone_tls_ca", s_set_backbone_tls_ca },
    { "backbone_tls_cert", s_set_backbone_tls_cert },
    { "backbone_tls_key", s_set_backbone_tls_key },
    { "backbone_tls_hostname", s_set_backbone_tls_hostname },
    { "transparency", s_set_transparency },
    { "log_key", s_set_log_key },
    { "log_origin", s_set_log_origin },
    { "witnesses", s_set_witnesses },
    { "witness_timeout", s_set_witness_timeout },
    { "tree_absent_front", s_set_tree_absent_front },
    { "reply_queue_bytes", s_set_reply_queue_bytes },
    { "reply_queue_total", s_set_reply_queue_total },
};

#define S_NKEYS (sizeof(s_keys) / sizeof(s_keys[0]))

static int
s_find_key(const char *key)
{
    for (size_t i = 0; i < S_NKEYS; i++)
        if (strcmp(s_keys[i].key, key) == 0)
            return (int)i;
    return -1;
}

int
pd_config_set(pd_config_t *cfg, const char *key, const char *value,
              char *errbuf, size_t errlen)
{
    int i = s_find_key(key);
    if (i < 0) {
        snprintf(errbuf, errlen, "unknown key '%s'", key);
        return -ENOENT;
    }
    char msg[256] = "";
    int rc = s_keys[i].set(cfg, value, msg, sizeof(msg));
    if (rc < 0)
        snprintf(errbuf, errlen, "%s: %s", key, msg);
    return rc;
}

/* --------------------------------------------------------------- parsing */

static bool
s_space(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Split one line (no newline, NUL-free) into key and value (possibly
 * empty). Returns 1 with both set, 0 for a blank or comment line, -EINVAL
 * with a message.
 */
static int
s_split(const char *line, size_t n, char *key, char *value, char *err,
        size_t errlen)
{
    size_t i = 0;
    while (i < n && s_space(line[i]))
        i++;
    if (i == n || line[i] == '#')
        return 0;
    size_t k0 = i;
    while (i < n && !s_space(line[i]))
        i++;
    size_t klen = i - k0;
    if (klen > S_KEY_MAX) {
        snprintf(err, errlen, "unknown key '%.*s...'", S_KEY_MAX, line + k0);
        return -EINVAL;
    }
    memcpy(key, line + k0, klen);
    key[klen] = '\0';
    while (i < n && s_space(line[i]))
        i++;
    /* The value runs to a '#' that follows whitespace, or to the end. */
    size_t v0 = i, v1 = i;
    for (; i < n; i++) {
        if (line[i] == '#' && s_space(line[i - 1]))
            break;
        if (!s_space(line[i]))
            v1 = i + 1;
    }
    if (v1 - v0 >= PD_CONFIG_PATH_MAX) {
        snprintf(err, errlen, "value of %s is too long", key);
        return -EINVAL;
    }
    memcpy(value, line + v0, v1 - v0);
    value[v1 - v0] = '\0';
    return 1;
}

int
pd_config_parse(pd_config_t *cfg, const char *text, size_t len,
                const char *filename, char *errbuf, size_t errlen)
{
    pd_config_t tmp = *cfg;    /* all or nothing */
    bool seen[S_NKEYS] = { false };
    char key[S_KEY_MAX + 1];
    char value[PD_CONFIG_PATH_MAX];
    char msg[512];
    size_t lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\0', n) != NULL) {
            snprintf(msg, sizeof(msg), "NUL byte in line");
            goto fail;
        }
        int rc = s_split(line, n, key, value, msg, sizeof(msg));
        if (rc < 0)
            goto fail;
        if (rc == 0)
            continue;
        int k = s_find_key(key);
        if (k < 0) {
            snprintf(msg, sizeof(msg), "unknown key '%s'", key);
            goto fail;
        }
        if (seen[k]) {
            snprintf(msg, sizeof(msg), "%s is set twice", key);
            goto fail;
        }
        if (value[0] == '\0') {
            snprintf(msg, sizeof(msg), "%s needs a value", key);
            goto fail;
        }
        if (pd_config_set(&tmp, key, value, msg, sizeof(msg)) < 0)
            goto fail;
        seen[k] = true;
    }
    *cfg = tmp;
    return 0;
fail:
    snprintf(errbuf, errlen, "%s:%zu: %s", filename, lineno, msg);
    return -EINVAL;
}

/* Read one file and apply it on top of cfg. */
static int
s_load_file(pd_config_t *cfg, const char *path, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        snprintf(errbuf, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    char *text = malloc(S_FILE_MAX);
    size_t len = 0;
    int rc = 0;
    if (text == NULL) {
        rc = -ENOMEM;
        goto fail_errno;
    }
    for (;;) {
        ssize_t got = read(fd, text + len, S_FILE_MAX - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto fail_errno;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len == S_FILE_MAX) {
            snprintf(errbuf, errlen, "%s: larger than %d bytes", path,
                     S_FILE_MAX);
            rc = -EFBIG;
            goto out;
        }
    }
    rc = pd_config_parse(cfg, text, len, path, errbuf, errlen);
    goto out;
fail_errno:
    snprintf(errbuf, errlen, "%s: %s", path, strerror(-rc));
out:
    free(text);
    close(fd);
    return rc;
}

/* scandir filter: regular-looking names ending in ".conf". */
static int
s_is_dropin(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 5
           && strcmp(e->d_name + n - 5, ".conf") == 0;
}

/* Apply the drop-ins of cfg->include_dir, named in the file including. */
static int
s_load_dropins(pd_config_t *cfg, const char *including, char *errbuf,
               size_t errlen)
{
    char dir[PD_CONFIG_PATH_MAX];
    char path[2 * PD_CONFIG_PATH_MAX];
    if (cfg->include_dir[0] == '/') {
        snprintf(dir, sizeof(dir), "%s", cfg->include_dir);
    } else {
        char copy[PD_CONFIG_PATH_MAX];
        snprintf(copy, sizeof(copy), "%s", including);
        if (snprintf(dir, sizeof(dir), "%s/%s", dirname(copy),
                     cfg->include_dir)
            >= (int)sizeof(dir)) {
            snprintf(errbuf, errlen, "%s: include_dir path too long", including);
            return -ENAMETOOLONG;
        }
    }
    struct dirent **names = NULL;
    int n = scandir(dir, &names, s_is_dropin, alphasort);
    if (n < 0) {
        int rc = -errno;
        snprintf(errbuf, errlen, "%s: include_dir %s: %s", including, dir,
                 strerror(-rc));
        return rc;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            char keep[PD_CONFIG_PATH_MAX];
            memcpy(keep, cfg->include_dir, sizeof(keep));
            cfg->include_dir[0] = '\0';
            rc = s_load_file(cfg, path, errbuf, errlen);
            if (rc == 0 && cfg->include_dir[0] != '\0') {
                snprintf(errbuf, errlen,
                         "%s: include_dir is only allowed in the main file",
                         path);
                rc = -EINVAL;
            }
            memcpy(cfg->include_dir, keep, sizeof(keep));
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int
pd_config_load(pd_config_t *cfg, const char *path, char *errbuf,
               size_t errlen)
{
    pd_config_t tmp = *cfg; /* all or nothing across the drop-ins too */
    tmp.include_dir[0] = '\0';
    int rc = s_load_file(&tmp, path, errbuf, errlen);
    if (rc == 0 && tmp.include_dir[0] != '\0')
        rc = s_load_dropins(&tmp, path, errbuf, errlen);
    if (rc == 0)
        *cfg = tmp;
    return rc;
}

/* dst = <state_dir>/name when dst is empty. */
static int
s_default_path(char dst[PD_CONFIG_PATH_MAX], const char *state_dir,
               const char *name)
{
    if (dst[0] != '\0')
        return 0;
    int n = snprintf(dst, PD_CONFIG_PATH_MAX, "%s/%s", state_dir, name);
    if (n < 0 || n >= PD_CONFIG_PATH_MAX) {
        dst[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

int
pd_config_finish(pd_config_t *cfg)
{
    int rc = s_default_path(cfg->keyring, cfg->state_dir, "keyring");
    if (rc == 0)
        rc = s_default_path(cfg->pid_file, cfg->state_dir, "parleyd.pid");
    if (rc == 0)
        rc = s_default_path(cfg->log_key, cfg->state_dir, "log.key");
    return rc;
}

int
pd_config_check(const pd_config_t *cfg, char *errbuf, size_t errlen)
{
    if (cfg->curve && cfg->curve_secret_key[0] == '\0') {
        snprintf(errbuf, errlen,
                 "curve is on but curve_secret_key is not set (make one "
                 "with: parley keygen --curve -o /etc/parley/server.curve)");
        return -EINVAL;
    }
    if (cfg->curve && cfg->curve_clients[0] == '\0') {
        snprintf(errbuf, errlen,
                 "curve is on but curve_clients is not set (a file or a "
                 "directory of *.keys files listing the client keys)");
        return -EINVAL;
    }
    bool tls = cfg->backbone_tls_ca[0] != '\0' || cfg->backbone_tls_cert[0]
               || cfg->backbone_tls_key[0] || cfg->backbone_tls_hostname[0];
    if (cfg->backbone[0] == '\0' && (tls || cfg->backbone_creds[0] != '\0')) {
        snprintf(errbuf, errlen,
                 "backbone_creds and backbone_tls_* are set but backbone "
                 "is not (the NATS servers of cluster mode)");
        return -EINVAL;
    }
    if ((cfg->backbone_tls_cert[0] == '\0')
        != (cfg->backbone_tls_key[0] == '\0')) {
        snprintf(errbuf, errlen,
                 "backbone_tls_cert and backbone_tls_key go together (a "
                 "client certificate and its key)");
        return -EINVAL;
    }
    return 0;
}
