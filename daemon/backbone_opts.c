/*
 * backbone_opts.c - the backbone's options (backbone.h): defaults, the
 * server list, the files nats.c reads, and the checks on all of them.
 */
#include "backbone_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ============================================================ options */

void
pd_backbone_opts_defaults(pd_backbone_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->stream = S_DEFAULT_STREAM;
    o->replicas = 3;
    o->max_clock_skew = 300;
    o->max_message_bytes = PARLEY_ENVELOPE_MAX;
    o->publish_timeout_ms = 2000;
    o->open_timeout_ms = 10000;
    o->max_inflight = 1024;
    o->follow_max_records = 4096;
    o->follow_max_bytes = 16u << 20;
}

/* Does this server URL carry credentials, or is it not a URL we take? */
static int
s_check_url(const char *u, size_t len, char *errbuf, size_t errlen)
{
    if (len == 0) {
        pd_backbone__err(errbuf, errlen, "backbone: empty entry in the server list");
        return -EINVAL;
    }
    if (len > 255) {
        pd_backbone__err(errbuf, errlen, "backbone: server URL longer than 255 bytes");
        return -EINVAL;
    }
    if (memchr(u, '@', len) != NULL) {
        pd_backbone__err(errbuf, errlen,
              "backbone: the server %.*s carries credentials; name a creds "
              "file (backbone_creds) instead, so no secret sits in the "
              "configuration",
              (int)len, u);
        return -EINVAL;
    }
    static const char *const schemes[] = { "nats://", "tls://" };
    for (size_t i = 0; i < 2; i++) {
        size_t sl = strlen(schemes[i]);
        if (len > sl && strncmp(u, schemes[i], sl) == 0) {
            for (size_t j = sl; j < len; j++)
                if (u[j] <= ' ' || u[j] == '/' || u[j] == ',')
                    goto bad;
            return 0;
        }
    }
bad:
    pd_backbone__err(errbuf, errlen,
          "backbone: %.*s is not a server URL (nats://HOST:PORT or "
          "tls://HOST:PORT)",
          (int)len, u);
    return -EINVAL;
}

/* Split the list into servers[] (copies in buf). Returns the count. */
int
pd_backbone__split_servers(const char *list, char *buf, size_t cap,
                const char *servers[PD_BACKBONE_SERVERS_MAX], char *errbuf,
                size_t errlen)
{
    if (list == NULL || list[0] == '\0') {
        pd_backbone__err(errbuf, errlen, "backbone: no server named");
        return -EINVAL;
    }
    if (strlen(list) >= cap) {
        pd_backbone__err(errbuf, errlen, "backbone: the server list is too long");
        return -EINVAL;
    }
    int n = 0;
    size_t off = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        int rc = s_check_url(p, len, errbuf, errlen);
        if (rc < 0)
            return rc;
        if (n == PD_BACKBONE_SERVERS_MAX) {
            pd_backbone__err(errbuf, errlen, "backbone: more than %d servers",
                  PD_BACKBONE_SERVERS_MAX);
            return -EINVAL;
        }
        memcpy(buf + off, p, len);
        buf[off + len] = '\0';
        servers[n++] = buf + off;
        off += len + 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return n;
}

int
pd_backbone_servers_check(const char *list, char *errbuf, size_t errlen)
{
    char buf[PD_BACKBONE_SERVERS_MAX * 257];
    const char *servers[PD_BACKBONE_SERVERS_MAX];
    int n = pd_backbone__split_servers(list, buf, sizeof(buf), servers, errbuf, errlen);
    return n < 0 ? n : 0;
}

/* A file nats.c will read: it must exist; secret ones must be 0600-ish. */
static int
s_check_file(const char *what, const char *path, bool secret, char *errbuf,
             size_t errlen)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        int err = -errno;
        pd_backbone__err(errbuf, errlen, "backbone: %s %s: %s", what, path,
              strerror(errno));
        return err;
    }
    if (!S_ISREG(st.st_mode)) {
        pd_backbone__err(errbuf, errlen, "backbone: %s %s is not a regular file", what,
              path);
        return -EINVAL;
    }
    if (secret && (st.st_mode & 077) != 0) {
        pd_backbone__err(errbuf, errlen,
              "backbone: %s %s is readable or writable by group or others "
              "(mode %04o); it holds a secret: chmod 600 it",
              what, path, (unsigned)(st.st_mode & 07777));
        return -EACCES;
    }
    return 0;
}

/* The stream name: 1..PD_BACKBONE_STREAM_MAX of A-Z a-z 0-9 _ -. */
static int
s_check_stream(const char *st, char *errbuf, size_t errlen)
{
    size_t sl = strlen(st);
    bool ok = sl >= 1 && sl <= PD_BACKBONE_STREAM_MAX;
    for (size_t i = 0; ok && i < sl; i++)
        ok = (st[i] >= 'a' && st[i] <= 'z') || (st[i] >= 'A' && st[i] <= 'Z')
             || (st[i] >= '0' && st[i] <= '9') || st[i] == '_'
             || st[i] == '-';
    if (!ok) {
        pd_backbone__err(errbuf, errlen,
                         "backbone: stream name \"%s\" is not 1-%d of A-Z "
                         "a-z 0-9 _ -",
                         st, PD_BACKBONE_STREAM_MAX);
        return -EINVAL;
    }
    return 0;
}

/* The duplicate window against the clock skew and the retention, and
 * the durations and sizes JetStream takes in nanoseconds or int64. */
static int
s_check_window(const pd_backbone_opts_t *o, char *errbuf, size_t errlen)
{
    uint64_t least = 2 * (uint64_t)o->max_clock_skew;
    uint64_t window = o->duplicate_window != 0 ? o->duplicate_window : least;
    if (window == 0 || window < least) {
        pd_backbone__err(errbuf, errlen,
                         "backbone: duplicate window %" PRIu64 " s is below 2 "
                         "* max_clock_skew (%" PRIu64 " s), so a resend could "
                         "be stored twice",
                         window, least);
        return -EINVAL;
    }
    if (window > INT64_MAX / S_NS_PER_S
        || o->retention_age > (uint64_t)(INT64_MAX / S_NS_PER_S)
        || o->retention_bytes > (uint64_t)INT64_MAX) {
        pd_backbone__err(errbuf, errlen,
                         "backbone: a duration or size is too large");
        return -EINVAL;
    }
    if (o->retention_age != 0 && window > o->retention_age) {
        pd_backbone__err(errbuf, errlen,
                         "backbone: duplicate window %" PRIu64 " s is longer "
                         "than retention_age %" PRIu64 " s (JetStream needs "
                         "it shorter)",
                         window, o->retention_age);
        return -EINVAL;
    }
    return 0;
}

/* Sizes, counts and timeouts; a TLS certificate with its key. */
static int
s_check_limits(const pd_backbone_opts_t *o, char *errbuf, size_t errlen)
{
    if (o->max_message_bytes == 0 || o->max_inflight == 0
        || o->follow_max_records == 0 || o->follow_max_bytes == 0
        || o->publish_timeout_ms == 0) {
        pd_backbone__err(errbuf, errlen,
                         "backbone: a size, count or timeout is 0");
        return -EINVAL;
    }
    if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL)) {
        pd_backbone__err(errbuf, errlen,
                         "backbone: a client certificate needs its key and "
                         "the key its certificate");
        return -EINVAL;
    }
    return 0;
}

int
pd_backbone_opts_check(const pd_backbone_opts_t *o, char *errbuf,
                       size_t errlen)
{
    char buf[PD_BACKBONE_SERVERS_MAX * 257];
    const char *servers[PD_BACKBONE_SERVERS_MAX];
    int rc = pd_backbone__split_servers(o->servers, buf, sizeof(buf), servers,
                                        errbuf, errlen);
    if (rc < 0)
        return rc;
    if ((rc = s_check_stream(o->stream != NULL ? o->stream : S_DEFAULT_STREAM,
                             errbuf, errlen)) < 0)
        return rc;
    if (o->replicas < 1 || o->replicas > 5) {
        pd_backbone__err(errbuf, errlen, "backbone: replicas %u is not 1..5",
                         o->replicas);
        return -EINVAL;
    }
    if ((rc = s_check_window(o, errbuf, errlen)) < 0
        || (rc = s_check_limits(o, errbuf, errlen)) < 0)
        return rc;
    if ((rc = s_check_file("creds file", o->creds_file, true, errbuf,
                           errlen)) < 0
        || (rc = s_check_file("TLS CA file", o->tls_ca_file, false, errbuf,
                              errlen)) < 0
        || (rc = s_check_file("TLS certificate", o->tls_cert_file, false,
                              errbuf, errlen)) < 0
        || (rc = s_check_file("TLS key", o->tls_key_file, true, errbuf,
                              errlen)) < 0)
        return rc;
    return 0;
}
