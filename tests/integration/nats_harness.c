/*
 * nats_harness.c - real nats-server clusters for the tests and benchmarks
 * (see nats_harness.h).
 *
 * The test process may already run nats.c and libzmq threads when it
 * starts a node, so each child is prepared entirely before fork() (argv,
 * file descriptors) and only calls async-signal-safe functions before
 * execv().
 */
#include "nats_harness.h"

#include "harness.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_START_ATTEMPTS 3
#define S_PORT_WAIT_MS 10000 /* a node's client port accepts by then */
#define S_POLL_MS 25         /* between readiness polls */
#define S_REQUEST_MS 500     /* one nats.c request while polling */

static void
s_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[nats-harness] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void
s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The nats-server binary: $PH_NATS_SERVER, or where Debian installs it. */
static const char *
s_server_bin(void)
{
    static char buf[PH_NATS_PATH_MAX];
    const char *env = getenv("PH_NATS_SERVER");
    if (env != NULL && env[0] != '\0')
        return access(env, X_OK) == 0 ? env : NULL;
    static const char *const dirs[] = { "/usr/sbin", "/usr/bin",
                                        "/usr/local/sbin", "/usr/local/bin" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(buf, sizeof(buf), "%s/nats-server", dirs[i]);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

static bool
s_valid(const ph_nats_cluster_t *c, int i)
{
    return c != NULL && i >= 0 && i < c->n;
}

/* ------------------------------------------------------------ config */

/* Pick a client and a cluster port for every node, all distinct. */
static int
s_pick_ports(ph_nats_cluster_t *c)
{
    int used[2 * PH_NATS_MAX];
    int n_used = 0;
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < 2; k++) {
            int p;
            bool dup;
            int tries = 0;
            do {
                if ((p = ph_free_port()) < 0)
                    return p;
                dup = false;
                for (int j = 0; j < n_used; j++)
                    dup = dup || used[j] == p;
            } while (dup && ++tries < 50);
            if (dup)
                return -EADDRINUSE;
            used[n_used++] = p;
            if (k == 0)
                c->node[i].port = p;
            else
                c->node[i].cluster_port = p;
        }
        snprintf(c->node[i].url, sizeof(c->node[i].url), "%s://127.0.0.1:%d",
                 c->scheme, c->node[i].port);
    }
    size_t off = 0;
    c->urls[0] = '\0';
    for (int i = 0; i < c->n; i++)
        off += (size_t)snprintf(c->urls + off, sizeof(c->urls) - off, "%s%s",
                                i > 0 ? "," : "", c->node[i].url);
    return 0;
}

/* Write node i's config file for the ports chosen. */
static int
s_write_conf(const ph_nats_cluster_t *c, int i)
{
    const ph_nats_node_t *nd = &c->node[i];
    char text[8192];
    size_t off = 0;
    off += (size_t)snprintf(text + off, sizeof(text) - off,
                            "# written by parley's test harness\n"
                            "server_name: %s\n"
                            "listen: 127.0.0.1:%d\n"
                            "jetstream {\n"
                            "  store_dir: \"%s\"\n"
                            "}\n",
                            nd->name, nd->port, nd->store);
    if (c->n > 1) {
        off += (size_t)snprintf(text + off, sizeof(text) - off,
                                "cluster {\n"
                                "  name: parley-test\n"
                                "  listen: 127.0.0.1:%d\n"
                                "  routes: [\n",
                                nd->cluster_port);
        for (int j = 0; j < c->n; j++)
            if (j != i)
                off += (size_t)snprintf(text + off, sizeof(text) - off,
                                        "    nats-route://127.0.0.1:%d\n",
                                        c->node[j].cluster_port);
        off += (size_t)snprintf(text + off, sizeof(text) - off, "  ]\n}\n");
    }
    off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\n",
                            c->extra_conf);
    if (off >= sizeof(text))
        return -ENOBUFS;
    return ph_file_write(nd->conf, text, off, 0600);
}

/* ------------------------------------------------------------ processes */

/* Start nats-server -c CONF with its output appended to the log. */
static int
s_spawn(ph_nats_node_t *nd)
{
    const char *bin = s_server_bin();
    if (bin == NULL) {
        s_say("nats-server is not installed (looked in /usr/sbin, /usr/bin, "
              "/usr/local/...; set PH_NATS_SERVER to name it)");
        return -ENOENT;
    }
    const char *argv[] = { bin, "-c", nd->conf, NULL };
    int rc = ph_spawn_logged(argv, nd->log, true, &nd->pid);
    if (rc == 0)
        nd->stopped = false;
    return rc;
}

static int
s_status_of(int ws)
{
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws))
        return 128 + WTERMSIG(ws);
    return -1;
}

/* Has the node exited? Reaps it (pid = 0) if so. */
static bool
s_exited(ph_nats_node_t *nd, int *status)
{
    int ws;
    if (nd->pid > 0 && waitpid(nd->pid, &ws, WNOHANG) == nd->pid) {
        if (status != NULL)
            *status = s_status_of(ws);
        nd->pid = 0;
        return true;
    }
    return nd->pid <= 0;
}

/* Wait until the node's client port accepts. 0, -ECHILD or -ETIMEDOUT. */
static int
s_wait_port(ph_nats_node_t *nd, int64_t deadline)
{
    for (;;) {
        int status = -1;
        if (s_exited(nd, &status)) {
            s_say("%s exited during start-up (status %d)", nd->name, status);
            return -ECHILD;
        }
        if (ph_port_listening(nd->port))
            return 0;
        if (parley__mono_ms() >= deadline) {
            s_say("%s: port %d does not accept connections", nd->name,
                  nd->port);
            return -ETIMEDOUT;
        }
        s_sleep_ms(5);
    }
}

/* SIGTERM (SIGCONT first if stopped), wait up to 10 s, then SIGKILL. */
static int
s_term(ph_nats_node_t *nd)
{
    if (nd->pid <= 0)
        return -ESRCH;
    kill(nd->pid, SIGTERM);
    if (nd->stopped)
        kill(nd->pid, SIGCONT);
    nd->stopped = false;
    int64_t deadline = parley__mono_ms() + 10000;
    while (parley__mono_ms() < deadline) {
        int status = -1;
        if (s_exited(nd, &status))
            return status;
        s_sleep_ms(5);
    }
    s_say("%s (pid %d) ignored SIGTERM for 10 s; killing it", nd->name,
          (int)nd->pid);
    kill(nd->pid, SIGKILL);
    int ws = 0;
    waitpid(nd->pid, &ws, 0);
    nd->pid = 0;
    return s_status_of(ws);
}

/* ------------------------------------------------------------ nats.c */

/* A connection to one node alone, no reconnects, short timeouts. */
static natsStatus
s_connect(const ph_nats_cluster_t *c, const ph_nats_node_t *nd,
          natsConnection **nc, jsCtx **js)
{
    natsOptions *o = NULL;
    jsOptions jo;
    *nc = NULL;
    *js = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, nd->url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, S_REQUEST_MS);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "parley test harness");
    if (s == NATS_OK && c->tls_ca[0] != '\0') {
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(o, c->tls_ca);
    }
    if (s == NATS_OK && c->tls_cert[0] != '\0')
        s = natsOptions_LoadCertificatesChain(o, c->tls_cert, c->tls_key);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.Wait = S_REQUEST_MS;
        s = natsConnection_JetStream(js, *nc, &jo);
    }
    if (s != NATS_OK) {
        natsConnection_Destroy(*nc);
        *nc = NULL;
    }
    return s;
}

static void
s_disconnect(natsConnection **nc, jsCtx **js)
{
    jsCtx_Destroy(*js);
    natsConnection_Destroy(*nc);
    *js = NULL;
    *nc = NULL;
}

/* ------------------------------------------------------------ public */

int
ph_nats_wait_ready(ph_nats_cluster_t *c, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    bool ready[PH_NATS_MAX] = { false };
    const char *why[PH_NATS_MAX] = { NULL };
    for (;;) {
        bool all = true;
        for (int i = 0; i < c->n; i++) {
            ph_nats_node_t *nd = &c->node[i];
            if (ready[i] || nd->pid <= 0 || nd->stopped)
                continue;
            natsConnection *nc;
            jsCtx *js;
            jsAccountInfo *ai = NULL;
            jsErrCode jerr = 0;
            natsStatus s = s_connect(c, nd, &nc, &js);
            if (s == NATS_OK)
                s = js_GetAccountInfo(&ai, js, NULL, &jerr);
            jsAccountInfo_Destroy(ai);
            s_disconnect(&nc, &js);
            ready[i] = s == NATS_OK;
            why[i] = natsStatus_GetText(s);
            all = all && ready[i];
        }
        if (all)
            return 0;
        if (parley__mono_ms() >= deadline)
            break;
        s_sleep_ms(S_POLL_MS);
    }
    for (int i = 0; i < c->n; i++)
        if (!ready[i] && c->node[i].pid > 0 && !c->node[i].stopped)
            s_say("%s (%s): no JetStream meta leader answered within %d ms "
                  "(last: %s)",
                  c->node[i].name, c->node[i].url, timeout_ms,
                  why[i] != NULL ? why[i] : "-");
    return -ETIMEDOUT;
}

int
ph_nats_start(ph_nats_cluster_t *c, const ph_nats_opts_t *opts)
{
    ph_nats_opts_t none = { 0 };
    if (opts == NULL)
        opts = &none;
    memset(c, 0, sizeof(*c));
    c->n = opts->nodes > 0 ? opts->nodes : 1;
    if (c->n > PH_NATS_MAX)
        return -EINVAL;
    if (s_server_bin() == NULL)
        return -ENOENT;
    snprintf(c->scheme, sizeof(c->scheme), "%s",
             opts->url_scheme != NULL ? opts->url_scheme : "nats");
    if (opts->extra_conf != NULL
        && (size_t)snprintf(c->extra_conf, sizeof(c->extra_conf), "%s",
                            opts->extra_conf)
               >= sizeof(c->extra_conf))
        return -ENOBUFS;
    snprintf(c->tls_ca, sizeof(c->tls_ca), "%s",
             opts->tls_ca != NULL ? opts->tls_ca : "");
    snprintf(c->tls_cert, sizeof(c->tls_cert), "%s",
             opts->tls_cert != NULL ? opts->tls_cert : "");
    snprintf(c->tls_key, sizeof(c->tls_key), "%s",
             opts->tls_key != NULL ? opts->tls_key : "");
    int rc;
    if (opts->dir != NULL) {
        snprintf(c->dir, sizeof(c->dir), "%s", opts->dir);
    } else {
        if ((rc = ph_tmpdir_make(c->dir, sizeof(c->dir))) < 0)
            return rc;
        c->own_dir = true;
    }
    for (int i = 0; i < c->n; i++) {
        ph_nats_node_t *nd = &c->node[i];
        snprintf(nd->name, sizeof(nd->name), "n%d", i + 1);
        if (ph_path(nd->dir, sizeof(nd->dir), c->dir, nd->name) != 0)
            return -ENAMETOOLONG;
        char d[PH_NATS_PATH_MAX]; /* a copy: the fields share c */
        memcpy(d, nd->dir, sizeof(d));
        snprintf(nd->conf, sizeof(nd->conf), "%s/nats.conf", d);
        snprintf(nd->log, sizeof(nd->log), "%s/nats.log", d);
        snprintf(nd->store, sizeof(nd->store), "%s/store", d);
        if (mkdir(nd->dir, 0700) != 0 && errno != EEXIST)
            return -errno;
    }

    int ready_ms = opts->ready_ms > 0 ? opts->ready_ms : 20000;
    for (int attempt = 1; attempt <= S_START_ATTEMPTS; attempt++) {
        if ((rc = s_pick_ports(c)) < 0)
            break;
        for (int i = 0; i < c->n && rc == 0; i++)
            rc = s_write_conf(c, i);
        for (int i = 0; i < c->n && rc == 0; i++)
            rc = s_spawn(&c->node[i]);
        int64_t deadline = parley__mono_ms() + S_PORT_WAIT_MS;
        for (int i = 0; i < c->n && rc == 0; i++)
            rc = s_wait_port(&c->node[i], deadline);
        if (rc == 0)
            rc = ph_nats_wait_ready(c, ready_ms);
        if (rc == 0)
            return 0;
        for (int i = 0; i < c->n; i++)
            (void)s_term(&c->node[i]);
        if (rc != -ECHILD)
            break;
        s_say("start attempt %d failed; trying fresh ports", attempt);
    }
    for (int i = 0; i < c->n; i++)
        ph_nats_dump_log(c, i);
    return rc;
}

int
ph_nats_add_stream(ph_nats_cluster_t *c, const char *name,
                   const char *subject, int replicas, bool memory,
                   int timeout_ms)
{
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = &subject;
    sc.SubjectsLen = 1;
    sc.Storage = memory ? js_MemoryStorage : js_FileStorage;
    sc.Replicas = replicas;
    int64_t deadline = parley__mono_ms() + timeout_ms;
    char last[256] = "no node running";
    for (;;) {
        for (int i = 0; i < c->n; i++) {
            ph_nats_node_t *nd = &c->node[i];
            if (nd->pid <= 0 || nd->stopped)
                continue;
            natsConnection *nc;
            jsCtx *js;
            jsErrCode jerr = 0;
            natsStatus s = s_connect(c, nd, &nc, &js);
            if (s == NATS_OK)
                s = js_AddStream(NULL, js, &sc, NULL, &jerr);
            if (s != NATS_OK)
                snprintf(last, sizeof(last), "%s (%d)",
                         nats_GetLastError(NULL) != NULL
                             ? nats_GetLastError(NULL)
                             : natsStatus_GetText(s),
                         (int)jerr);
            s_disconnect(&nc, &js);
            if (s == NATS_OK)
                return 0;
        }
        if (parley__mono_ms() >= deadline)
            break;
        s_sleep_ms(50);
    }
    s_say("stream %s (%s, R%d): not created within %d ms: %s", name, subject,
          replicas, timeout_ms, last);
    return -EIO;
}

int
ph_nats_node_by_name(const ph_nats_cluster_t *c, const char *name)
{
    for (int i = 0; name != NULL && i < c->n; i++)
        if (strcmp(c->node[i].name, name) == 0)
            return i;
    return -ENOENT;
}

int
ph_nats_stream_leader(ph_nats_cluster_t *c, const char *stream,
                      int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    const char *last = "no node running";
    for (;;) {
        for (int i = 0; i < c->n; i++) {
            ph_nats_node_t *nd = &c->node[i];
            if (nd->pid <= 0 || nd->stopped)
                continue;
            natsConnection *nc;
            jsCtx *js;
            jsStreamInfo *si = NULL;
            jsErrCode jerr = 0;
            natsStatus s = s_connect(c, nd, &nc, &js);
            if (s == NATS_OK)
                s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
            int found = -ETIMEDOUT;
            if (s == NATS_OK) {
                const char *leader = si->Cluster != NULL
                                         ? si->Cluster->Leader
                                         : NULL;
                if (leader != NULL && leader[0] != '\0')
                    found = ph_nats_node_by_name(c, leader);
                else if (c->n == 1)
                    found = 0;
                last = "no leader yet";
            } else if (jerr == JSStreamNotFoundErr) {
                found = -ENOENT;
            } else {
                last = natsStatus_GetText(s);
            }
            jsStreamInfo_Destroy(si);
            s_disconnect(&nc, &js);
            if (found >= 0 || found == -ENOENT)
                return found;
        }
        if (parley__mono_ms() >= deadline)
            break;
        s_sleep_ms(S_POLL_MS);
    }
    s_say("stream %s: no leader known within %d ms (last: %s)", stream,
          timeout_ms, last);
    return -ETIMEDOUT;
}

int
ph_nats_kill9(ph_nats_cluster_t *c, int i)
{
    if (!s_valid(c, i) || c->node[i].pid <= 0)
        return -ESRCH;
    ph_nats_node_t *nd = &c->node[i];
    kill(nd->pid, SIGKILL);
    waitpid(nd->pid, NULL, 0);
    nd->pid = 0;
    nd->stopped = false;
    return 0;
}

/* Is every thread of pid stopped (state T in /proc/PID/task/N/stat)? */
static bool
s_all_stopped(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    bool all = true;
    struct dirent *e;
    while (all && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PH_NATS_PATH_MAX], buf[512] = "";
        snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* a thread that just ended */
        char *line = fgets(buf, sizeof(buf), f);
        fclose(f);
        const char *rp = line != NULL ? strrchr(buf, ')') : NULL;
        all = rp != NULL && (rp[2] == 'T' || rp[2] == 't');
    }
    closedir(d);
    return all;
}

int
ph_nats_sigstop(ph_nats_cluster_t *c, int i)
{
    if (!s_valid(c, i) || c->node[i].pid <= 0)
        return -ESRCH;
    if (kill(c->node[i].pid, SIGSTOP) != 0)
        return -errno;
    c->node[i].stopped = true;
    /* kill() returns before every thread has stopped; one still running
     * could greet a new connection and then fall silent, which nats.c 3.4
     * does not survive (see docs/cluster.md). Return once it is still. */
    int64_t deadline = parley__mono_ms() + 2000;
    while (!s_all_stopped(c->node[i].pid)) {
        if (parley__mono_ms() >= deadline) {
            s_say("%s (pid %d) did not stop within 2 s of SIGSTOP",
                  c->node[i].name, (int)c->node[i].pid);
            return -ETIMEDOUT;
        }
        s_sleep_ms(1);
    }
    return 0;
}

int
ph_nats_sigcont(ph_nats_cluster_t *c, int i)
{
    if (!s_valid(c, i) || c->node[i].pid <= 0)
        return -ESRCH;
    if (kill(c->node[i].pid, SIGCONT) != 0)
        return -errno;
    c->node[i].stopped = false;
    return 0;
}

int
ph_nats_restart(ph_nats_cluster_t *c, int i)
{
    if (!s_valid(c, i))
        return -ESRCH;
    ph_nats_node_t *nd = &c->node[i];
    if (nd->pid > 0) {
        s_say("restart: %s (pid %d) still runs", nd->name, (int)nd->pid);
        return -EBUSY;
    }
    int rc = s_spawn(nd);
    if (rc == 0)
        rc = s_wait_port(nd, parley__mono_ms() + S_PORT_WAIT_MS);
    if (rc == -ECHILD)
        ph_nats_dump_log(c, i);
    return rc;
}

int
ph_nats_term(ph_nats_cluster_t *c, int i)
{
    if (!s_valid(c, i))
        return -ESRCH;
    return s_term(&c->node[i]);
}

void
ph_nats_dump_log(const ph_nats_cluster_t *c, int i)
{
    if (s_valid(c, i) && c->node[i].log[0] != '\0') {
        char title[64];
        snprintf(title, sizeof(title), "nats-server %s log", c->node[i].name);
        ph_file_dump(title, c->node[i].log);
    }
}

void
ph_nats_stop(ph_nats_cluster_t *c, bool dump_logs)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->n && i < PH_NATS_MAX; i++) {
        if (dump_logs)
            ph_nats_dump_log(c, i);
        if (c->node[i].pid > 0)
            (void)s_term(&c->node[i]);
    }
    if (c->own_dir && c->dir[0] != '\0')
        (void)ph_tmpdir_remove(c->dir);
    memset(c, 0, sizeof(*c));
}

/* ================================================ parleyd nodes (cluster) */

int
ph_nodes_start(ph_nodes_t *s, const ph_nats_cluster_t *c, int n,
               const char *dir, const char *keyring, const char *config)
{
    memset(s, 0, sizeof(*s));
    if (n < 1 || n > PH_NATS_MAX || c->n < 1)
        return -EINVAL;
    snprintf(s->keyring, sizeof(s->keyring), "%s", keyring);
    int rc = ph_path(s->conf, sizeof(s->conf), dir, "cluster.conf");
    if (rc < 0)
        return rc;
    const char *text = config != NULL ? config : "";
    if ((rc = ph_file_write(s->conf, text, strlen(text), 0644)) < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        size_t used = 0;
        for (int k = 0; k < c->n; k++) {
            const ph_nats_node_t *nd = &c->node[(i + k) % c->n];
            used += (size_t)snprintf(s->backbone[i] + used,
                                     sizeof(s->backbone[i]) - used, "%s%s",
                                     k > 0 ? "," : "", nd->url);
        }
    }
    for (int i = 0; i < n; i++) {
        char name[16], ndir[PH_PATH_MAX];
        snprintf(name, sizeof(name), "p%d", i + 1);
        if ((rc = ph_path(ndir, sizeof(ndir), dir, name)) < 0)
            return rc;
        if (mkdir(ndir, 0700) != 0 && errno != EEXIST)
            return -errno;
        const char *extra[] = { "-c", s->conf, "--backbone", s->backbone[i],
                                NULL };
        s->n = i + 1;
        if ((rc = ph_daemon_start(&s->d[i], ndir, s->keyring, extra)) < 0) {
            s_say("parleyd node %d did not start", i + 1);
            return rc;
        }
    }
    return 0;
}

int
ph_nodes_restart(ph_nodes_t *s, int i)
{
    const char *extra[] = { "-c", s->conf, "--backbone", s->backbone[i],
                            NULL };
    return ph_daemon_restart(&s->d[i], s->keyring, extra);
}

void
ph_nodes_stop(ph_nodes_t *s, bool test_ok)
{
    for (int i = 0; i < s->n; i++)
        if (s->d[i].pid > 0 || s->d[i].log_path[0] != '\0')
            ph_daemon_teardown(&s->d[i], test_ok);
    s->n = 0;
}

void
ph_nodes_api_list(const ph_nodes_t *s, int first, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < s->n && used < cap; k++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s",
                                 k > 0 ? "," : "",
                                 s->d[(first + k) % s->n].api);
}

int
ph_nodes_wait_head(const ph_nodes_t *s, uint64_t head, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        char line[512] = "";
        size_t used = 0;
        for (int i = 0; i < s->n; i++) {
            if (s->d[i].pid <= 0)
                continue;
            ph_stats_t st;
            uint64_t seq = 0, catching = 1;
            if (ph_stats_fetch(s->d[i].api, &st) == 0) {
                seq = ph_stats_get(&st, "seq", NULL);
                catching = ph_stats_get(&st, "cluster_catching_up", NULL);
            }
            if (seq < head || catching != 0)
                all = false;
            used += (size_t)snprintf(line + used, sizeof(line) - used,
                                     " p%d seq %llu%s", i + 1,
                                     (unsigned long long)seq,
                                     catching ? " (catching up)" : "");
        }
        if (all)
            return 0;
        if (parley__mono_ms() >= deadline) {
            s_say("nodes not at seq %llu within %d ms:%s",
                  (unsigned long long)head, timeout_ms, line);
            return -ETIMEDOUT;
        }
        s_sleep_ms(50);
    }
}

/* The segment file names of a state directory, sorted; count in *n. */
static char **
s_segments(const char *dir, size_t *n)
{
    struct dirent **names = NULL;
    *n = 0;
    int k = scandir(dir, &names, NULL, alphasort);
    if (k < 0)
        return NULL;
    char **out = calloc((size_t)k + 1, sizeof(*out));
    for (int i = 0; i < k; i++) {
        const char *nm = names[i]->d_name;
        if (out != NULL && strncmp(nm, "seg-", 4) == 0
            && strstr(nm, ".log") != NULL)
            out[(*n)++] = strdup(nm);
        free(names[i]);
    }
    free(names);
    return out;
}

static void
s_segments_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

/* Say which record holds offset off of a segment's bytes. */
static void
s_say_record_at(const char *who, const uint8_t *p, size_t len, size_t off)
{
    size_t at = 0;
    while (at + 24 <= len) {
        uint32_t rlen = (uint32_t)p[at] | (uint32_t)p[at + 1] << 8
                        | (uint32_t)p[at + 2] << 16
                        | (uint32_t)p[at + 3] << 24;
        uint64_t seq = 0;
        for (int b = 7; b >= 0; b--)
            seq = seq << 8 | p[at + 8 + b];
        if (off < at + 24 + rlen) {
            s_say("  %s: offset %zu is in the record of seq %llu (%u bytes "
                  "at offset %zu)",
                  who, off, (unsigned long long)seq, rlen, at);
            return;
        }
        at += 24 + rlen;
    }
    s_say("  %s: offset %zu is past its last whole record", who, off);
}

/* Of two segments that differ from offset off: what differs in the
 * record that holds it (its received_at, its payload bytes, whether
 * either is a void record). */
static void
s_say_record_diff(const uint8_t *pa, size_t la, const uint8_t *pb,
                  size_t lb, size_t off)
{
    size_t at = 0;
    while (at + 24 <= la && at + 24 <= lb) {
        uint32_t rlen = (uint32_t)pa[at] | (uint32_t)pa[at + 1] << 8
                        | (uint32_t)pa[at + 2] << 16
                        | (uint32_t)pa[at + 3] << 24;
        if (off < at + 24 + rlen)
            break;
        at += 24 + rlen;
    }
    if (at + 24 > la || at + 24 > lb)
        return;
    uint64_t ta = 0, tb = 0;
    for (int b = 7; b >= 0; b--) {
        ta = ta << 8 | pa[at + 16 + b];
        tb = tb << 8 | pb[at + 16 + b];
    }
    size_t n = 0;
    while (at + 24 + n < la && at + 24 + n < lb
           && pa[at + 24 + n] == pb[at + 24 + n])
        n++;
    s_say("  received_at p1 %llu, p2+ %llu; payloads equal for %zu bytes; "
          "void: p1 %s, p2+ %s",
          (unsigned long long)ta, (unsigned long long)tb, n,
          pa[at + 24] == 0x00 && pa[at + 25] == 0x56 ? "yes" : "no",
          pb[at + 24] == 0x00 && pb[at + 25] == 0x56 ? "yes" : "no");
}

int
ph_nodes_logs_equal(const ph_nodes_t *s)
{
    size_t n0 = 0;
    char **seg0 = s_segments(s->d[0].state_dir, &n0);
    int rc = seg0 != NULL ? 0 : -EIO;
    for (int i = 1; i < s->n && rc == 0; i++) {
        size_t ni = 0;
        char **segi = s_segments(s->d[i].state_dir, &ni);
        if (segi == NULL || ni != n0) {
            s_say("p1 has %zu segment files, p%d %zu", n0, i + 1, ni);
            rc = -EBADMSG;
        }
        for (size_t k = 0; rc == 0 && k < n0; k++) {
            if (strcmp(seg0[k], segi[k]) != 0) {
                s_say("segment %zu: p1 %s, p%d %s", k, seg0[k], i + 1,
                      segi[k]);
                rc = -EBADMSG;
                break;
            }
            char a[PH_PATH_MAX], b[PH_PATH_MAX];
            size_t la = 0, lb = 0;
            ph_path(a, sizeof(a), s->d[0].state_dir, seg0[k]);
            ph_path(b, sizeof(b), s->d[i].state_dir, segi[k]);
            uint8_t *pa = (uint8_t *)ph_file_read(a, &la);
            uint8_t *pb = (uint8_t *)ph_file_read(b, &lb);
            if (pa == NULL || pb == NULL) {
                rc = -EIO;
            } else if (la != lb || memcmp(pa, pb, la) != 0) {
                size_t off = 0;
                while (off < la && off < lb && pa[off] == pb[off])
                    off++;
                s_say("%s differs between p1 (%zu bytes) and p%d (%zu "
                      "bytes) from offset %zu",
                      seg0[k], la, i + 1, lb, off);
                s_say_record_at("p1", pa, la, off);
                s_say_record_at("p2+", pb, lb, off);
                s_say_record_diff(pa, la, pb, lb, off);
                rc = -EBADMSG;
            }
            free(pa);
            free(pb);
        }
        s_segments_free(segi, ni);
    }
    s_segments_free(seg0, n0);
    return rc;
}
