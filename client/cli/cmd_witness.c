/*
 * cmd_witness.c - parley witness: a C2SP tlog-witness over HTTP
 * (libmicrohttpd), cosigning the checkpoints of the logs in its keyring
 * that extend what it cosigned before (parley_witness_*() does the
 * checking; this file is the HTTP side).
 *
 * One MHD thread answers every request, so the witness object is only
 * ever used by it; the main thread waits for SIGINT or SIGTERM.
 */
#include "common.h"

#include <errno.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    S_OPT_NAME = CLI_OPT_FIRST_FREE,
    S_OPT_STATE,
    S_OPT_LISTEN,
    S_OPT_KEY,
};

/* A request body is read up to this; the protocol's are far smaller. */
#define S_BODY_MAX (256 * 1024)
#define S_ANSWER_MAX 4096
#define S_PATH "/add-checkpoint"

static void
s_help(void)
{
    printf("usage: parley witness -k KEYFILE --name NAME --keyring FILE\n"
           "                      --state FILE [--listen HOST:PORT]\n"
           "\n"
           "Serve a transparency-log witness over HTTP, as c2sp.org/tlog-witness\n"
           "says: POST " S_PATH " with an old size, a consistency proof and a\n"
           "checkpoint; the witness checks the log's signature (the keyring's\n"
           "log: lines name the logs it witnesses and their keys), checks that\n"
           "the checkpoint extends the last one it cosigned for that log,\n"
           "saves it, and answers with its cosignature (cosignature/v1, with\n"
           "a time stamp). Give parleyd its URL, name and public key in its\n"
           "`witnesses` file; give subscribers a witness: line.\n"
           "\n"
           "Each request is logged on stderr: what was cosigned, and what was\n"
           "refused and why (a refused checkpoint of a known log can be proof\n"
           "of a dishonest log: the line carries its size).\n"
           "\n"
           "Options:\n"
           "  -k, --key FILE      the witness's secret key (parley keygen)\n"
           "      --name NAME     its key name in cosignatures, e.g.\n"
           "                      witness.example.org/w1 (no spaces, no '+')\n"
           "      --keyring FILE  the logs it witnesses (log: lines)\n"
           "      --state FILE    where it keeps the latest checkpoint it\n"
           "                      cosigned per log (made if missing)\n"
           "      --listen HOST:PORT\n"
           "                      where to listen (default 127.0.0.1:7720; port 0\n"
           "                      picks a free one); the first line on stdout\n"
           "                      says: \"listening on http://HOST:PORT/\"\n"
           "%s"
           "\n"
           "Exit status: 0 stopped by SIGINT or SIGTERM, 1 usage error, 4 key or\n"
           "keyring problem, 5 other error.\n",
           cli_common_help);
}

/* One request's body, as it arrives. */
typedef struct {
    char *data;
    size_t len;
    bool too_big;
} s_body_t;

typedef struct {
    parley_witness_t *w;
    const cli_common_t *c;
} s_ctx_t;

static enum MHD_Result
s_reply(struct MHD_Connection *conn, unsigned status, const char *type,
        const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* The origin line of a request's checkpoint, for the log line. */
static void
s_origin(const s_body_t *b, char *out, size_t cap)
{
    const char *p = b->data != NULL ? memmem(b->data, b->len, "\n\n", 2) : NULL;
    snprintf(out, cap, "?");
    if (p == NULL)
        return;
    p += 2;
    const char *end = memchr(p, '\n', b->len - (size_t)(p - b->data));
    if (end != NULL && end - p < (ptrdiff_t)cap)
        snprintf(out, cap, "%.*s", (int)(end - p), p);
}

static enum MHD_Result
s_handle(void *cls, struct MHD_Connection *conn, const char *url,
         const char *method, const char *version, const char *upload,
         size_t *upload_len, void **state)
{
    (void)version;
    s_ctx_t *ctx = cls;
    s_body_t *b = *state;
    if (b == NULL) {
        if ((b = calloc(1, sizeof(*b))) == NULL)
            return MHD_NO;
        *state = b;
        return MHD_YES;
    }
    if (*upload_len > 0) {
        if (!b->too_big && b->len + *upload_len <= S_BODY_MAX) {
            char *p = realloc(b->data, b->len + *upload_len);
            if (p == NULL)
                return MHD_NO;
            memcpy(p + b->len, upload, *upload_len);
            b->data = p;
            b->len += *upload_len;
        } else {
            b->too_big = true;
        }
        *upload_len = 0;
        return MHD_YES;
    }
    if (strcmp(url, S_PATH) != 0)
        return s_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n");
    if (strcmp(method, "POST") != 0)
        return s_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                       "POST " S_PATH "\n");
    if (b->too_big)
        return s_reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain",
                       "request body too large\n");
    char answer[S_ANSWER_MAX];
    const char *type = "text/plain";
    int status = parley_witness_add_checkpoint(ctx->w, b->data, b->len, answer,
                                               sizeof(answer), &type);
    char origin[300];
    s_origin(b, origin, sizeof(origin));
    if (status == 200)
        cli_info(ctx->c, "cosigned a checkpoint of %s (%zu bytes)", origin, b->len);
    else
        cli_warn(ctx->c, "refused a checkpoint of %s: %d %s", origin, status,
                 answer);
    return s_reply(conn, (unsigned)status, type, answer);
}

static void
s_done(void *cls, struct MHD_Connection *conn, void **state,
       enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    s_body_t *b = *state;
    if (b != NULL) {
        free(b->data);
        free(b);
    }
    *state = NULL;
}

/* "HOST:PORT" into a loopback or any IPv4 address. 0 or -1. */
static int
s_listen_addr(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    uint64_t port;
    char host[64];
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host)
        || cli_parse_u64(colon + 1, &port) < 0 || port > 65535)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int
cmd_witness(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { "key", required_argument, NULL, 'k' },
        { "name", required_argument, NULL, S_OPT_NAME },
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { "state", required_argument, NULL, S_OPT_STATE },
        { "listen", required_argument, NULL, S_OPT_LISTEN },
        { NULL, 0, NULL, 0 },
    };
    const char *key_path = NULL, *name = NULL, *keyring_path = NULL;
    const char *state = NULL, *listen_at = "127.0.0.1:7720";
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "k:", longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        switch (opt) {
        case 'h':
            s_help();
            return CLI_EXIT_OK;
        case 'k':
            key_path = optarg;
            break;
        case S_OPT_NAME:
            name = optarg;
            break;
        case CLI_OPT_KEYRING:
            keyring_path = optarg;
            break;
        case S_OPT_STATE:
            state = optarg;
            break;
        case S_OPT_LISTEN:
            listen_at = optarg;
            break;
        default:
            return cli_option_error("witness", opt, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("witness", "unexpected argument \"%s\"", argv[optind]);
    if (key_path == NULL || name == NULL || keyring_path == NULL || state == NULL)
        return cli_usage_error("witness", "-k, --name, --keyring and --state are "
                                          "required");
    struct sockaddr_in sa;
    if (s_listen_addr(listen_at, &sa) < 0)
        return cli_usage_error("witness", "--listen: \"%s\" is not IPV4:PORT",
                               listen_at);
    parley_key_t *key = parley_key_load(key_path);
    if (key == NULL) {
        cli_error("%s: %s", key_path, parley_strerror(-errno));
        return CLI_EXIT_KEY;
    }
    parley_keyring_t *ring = NULL;
    int status = cli_load_keyring(keyring_path, &ring);
    if (status != 0) {
        parley_key_destroy(&key);
        return status;
    }
    parley_witness_t *w = parley_witness_new(key, name, ring, state);
    if (w == NULL) {
        int e = errno;
        cli_error("cannot start the witness: %s (the name must be a key name, "
                  "the keyring needs log: lines, %s must be a witness state file)",
                  parley_strerror(-e), state);
        parley_keyring_destroy(&ring);
        parley_key_destroy(&key);
        return e == EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_OTHER;
    }
    s_ctx_t ctx = { .w = w, .c = c };
    cli_signals_install();
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_handle,
        &ctx, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, s_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
    if (d == NULL) {
        cli_error("cannot listen on %s", listen_at);
        status = CLI_EXIT_OTHER;
    } else {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        char host[64];
        inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
        printf("listening on http://%s:%u/\n", host,
               info != NULL ? (unsigned)info->port : (unsigned)ntohs(sa.sin_port));
        fflush(stdout);
        while (!cli_stop) {
            struct timespec t = { 0, 200 * 1000 * 1000 };
            nanosleep(&t, NULL);
        }
        MHD_stop_daemon(d);
        status = CLI_EXIT_OK;
    }
    parley_witness_destroy(&w);
    parley_keyring_destroy(&ring);
    parley_key_destroy(&key);
    return status;
}
