/*
 * harness.c - plumbing for the integration tests (see harness.h).
 *
 * Everything here runs in the test process, which also hosts libzmq's I/O
 * threads once a subscriber or publisher exists. Children are therefore
 * prepared entirely before fork() (argv, environment, file descriptors)
 * and the child only calls async-signal-safe functions before execve().
 */
#include "harness.h"

#include "../tmpdir.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* cmocka, for ph_sub_expect()'s failures; it needs these first */
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

extern char **environ;

static void
s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One diagnostic line on stderr, prefixed so it stands out in ctest logs. */
static void
s_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[harness] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------- files, ports */

int
ph_tmpdir_make(char *out, size_t cap)
{
    int err = test_tmpdir_make(out, cap, "parley-it-");
    if (err < 0)
        s_say("mkdtemp %s: %s", out, strerror(-err));
    return err;
}

static int
s_remove_entry(const char *path, const struct stat *st, int flag,
               struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        s_say("remove %s: %s", path, strerror(errno));
    return 0;
}

int
ph_tmpdir_remove(const char *dir)
{
    if (dir == NULL || dir[0] == '\0')
        return 0;
    if (nftw(dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return errno != 0 ? -errno : -EIO;
    return 0;
}

int
ph_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int
ph_file_write(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        int err = -errno;
        s_say("open %s: %s", path, strerror(-err));
        return err;
    }
    /* open() applies the umask; the test asked for this exact mode. */
    if (fchmod(fd, mode) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            close(fd);
            return err;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd) == 0 ? 0 : -errno;
}

char *
ph_file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (cap - n < 2) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    if (buf == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

void
ph_file_dump(const char *title, const char *path)
{
    size_t n = 0;
    char *text = ph_file_read(path, &n);
    fprintf(stderr, "----- %s (%s) -----\n", title, path);
    if (text == NULL)
        fprintf(stderr, "(cannot read: %s)\n", strerror(errno));
    else
        fwrite(text, 1, n, stderr);
    fprintf(stderr, "----- end of %s -----\n", title);
    free(text);
}

int
ph_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = { 0 };
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

void
ph_endpoint(char out[PH_EP_MAX], int port)
{
    snprintf(out, PH_EP_MAX, "tcp://127.0.0.1:%d", port);
}

/* --------------------------------------------------------------- keys */

int
ph_key_make(ph_key_t *k, const char *dir, const char *name, uint8_t seed_byte)
{
    memset(k, 0, sizeof(*k));
    if (sodium_init() < 0)
        return -EIO;
    memset(k->seed, seed_byte, sizeof(k->seed));
    crypto_sign_seed_keypair(k->pk, k->sk, k->seed);
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->key = parley_key_from_seed(k->seed);
    if (k->key == NULL) {
        int err = -errno;
        s_say("parley_key_from_seed: %s", parley_error_name(err));
        return err;
    }
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    parley_key_public(k->key, pk);
    if (memcmp(pk, k->pk, sizeof(pk)) != 0) {
        s_say("parley_key_from_seed gives another public key than "
              "crypto_sign_seed_keypair for the same seed");
        return -EPROTO;
    }
    parley_pubkey_format(k->pk, k->pub_b64);
    char file[PH_PATH_MAX];
    snprintf(file, sizeof(file), "%s.key", name);
    if (ph_path(k->path, sizeof(k->path), dir, file) != 0)
        return -ENAMETOOLONG;
    int rc = parley_key_save(k->key, k->path, name, 1);
    if (rc != 0)
        s_say("parley_key_save %s: %s", k->path, parley_error_name(rc));
    return rc;
}

void
ph_key_free(ph_key_t *k)
{
    parley_key_destroy(&k->key);
    sodium_memzero(k->sk, sizeof(k->sk));
}

int
ph_keyring_add(char *buf, size_t cap, const ph_key_t *k, const char *negs,
               const char *parties, const char *phases)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, cap - used,
                     "%s %s negotiations=%s parties=%s phases=%s\n", k->name,
                     k->pub_b64, negs, parties, phases);
    return n < 0 || (size_t)n >= cap - used ? -ENOBUFS : 0;
}

/* --------------------------------------------------------- processes */

/* Does env entry e ("NAME=...") set the same NAME as one in list? */
static bool
s_env_overridden(const char *e, const char *const env[])
{
    const char *eq = strchr(e, '=');
    size_t n = eq != NULL ? (size_t)(eq - e) : strlen(e);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (strncmp(env[i], e, n) == 0 && env[i][n] == '=')
            return true;
    return false;
}

/* Build the child's environment before fork (malloc is not fork-safe). */
static char **
s_env_build(const char *const env[])
{
    size_t n = 0, m = 0;
    while (environ[n] != NULL)
        n++;
    while (env != NULL && env[m] != NULL)
        m++;
    char **out = calloc(n + m + 1, sizeof(*out));
    if (out == NULL)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (!s_env_overridden(environ[i], env))
            out[j++] = environ[i];
    for (size_t i = 0; i < m; i++)
        out[j++] = (char *)env[i];
    out[j] = NULL;
    return out;
}

static void
s_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int
ph_proc_spawn(ph_proc_t *p, const char *const argv[], const char *const env[],
              const char *cwd, const char *stdin_text)
{
    memset(p, 0, sizeof(*p));
    p->in_fd = p->out_fd = p->err_fd = -1;
    p->status = -1;
    /* A child that exits before reading its stdin must not kill us. */
    signal(SIGPIPE, SIG_IGN);

    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    char **envp = s_env_build(env);
    if (envp == NULL)
        return -ENOMEM;
    int rc = 0;
    if (stdin_text != NULL) {
        if (pipe2(in, O_CLOEXEC) != 0)
            rc = -errno;
    } else {
        in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in[0] < 0)
            rc = -errno;
    }
    if (rc == 0 && (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0))
        rc = -errno;
    if (rc != 0)
        goto fail;

    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0) {
        /* Own process group, so a timeout can kill what the child spawns. */
        setpgid(0, 0);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(126);
        if (cwd != NULL && chdir(cwd) != 0)
            _exit(126);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = err[0];
    p->in = stdin_text;
    p->in_left = stdin_text != NULL ? strlen(stdin_text) : 0;
    if (p->in_fd >= 0)
        fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
    if (p->in_fd >= 0 && p->in_left == 0)
        s_close(&p->in_fd);
    return 0;
fail:
    free(envp);
    for (int i = 0; i < 2; i++) {
        s_close(&in[i]);
        s_close(&out[i]);
        s_close(&err[i]);
    }
    s_say("spawn %s: %s", argv[0], strerror(-rc));
    return rc;
}

/* Read what is available on *fd into *buf; close it at EOF. */
static void
s_drain(int *fd, char **buf, size_t *len)
{
    for (;;) {
        char tmp[4096];
        ssize_t r = read(*fd, tmp, sizeof(tmp));
        if (r > 0) {
            char *nb = realloc(*buf, *len + (size_t)r + 1);
            if (nb == NULL)
                return;
            *buf = nb;
            memcpy(*buf + *len, tmp, (size_t)r);
            *len += (size_t)r;
            (*buf)[*len] = '\0';
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        s_close(fd);
        return;
    }
}

static int
s_status_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

int
ph_proc_wait(ph_proc_t *p, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    int64_t reaped_at = 0;
    for (;;) {
        if (p->pid > 0) {
            int ws;
            pid_t r = waitpid(p->pid, &ws, WNOHANG);
            if (r == p->pid) {
                p->status = s_status_of(ws);
                p->pid = 0;
                reaped_at = parley__mono_ms();
            }
        }
        bool pipes_open = p->out_fd >= 0 || p->err_fd >= 0;
        if (p->pid == 0 && !pipes_open)
            break;
        /* A grandchild may hold the pipes; do not wait on it for long. */
        if (p->pid == 0 && parley__mono_ms() - reaped_at > 2000)
            break;
        int64_t now = parley__mono_ms();
        if (now >= deadline) {
            if (p->pid > 0) {
                kill(-p->pid, SIGKILL);
                kill(p->pid, SIGKILL);
                int ws;
                if (waitpid(p->pid, &ws, 0) == p->pid)
                    p->status = s_status_of(ws);
                p->pid = 0;
                p->timed_out = true;
            }
            break;
        }
        struct pollfd fds[3];
        int nfds = 0;
        if (p->out_fd >= 0)
            fds[nfds++] = (struct pollfd){ .fd = p->out_fd, .events = POLLIN };
        if (p->err_fd >= 0)
            fds[nfds++] = (struct pollfd){ .fd = p->err_fd, .events = POLLIN };
        if (p->in_fd >= 0)
            fds[nfds++] = (struct pollfd){ .fd = p->in_fd, .events = POLLOUT };
        int wait = (int)(deadline - now < 50 ? deadline - now : 50);
        if (nfds > 0)
            (void)poll(fds, (nfds_t)nfds, wait);
        else
            s_sleep_ms(wait);
        if (p->out_fd >= 0)
            s_drain(&p->out_fd, &p->out, &p->out_len);
        if (p->err_fd >= 0)
            s_drain(&p->err_fd, &p->err, &p->err_len);
        if (p->in_fd >= 0 && p->in_left > 0) {
            ssize_t w = write(p->in_fd, p->in, p->in_left);
            if (w > 0) {
                p->in += w;
                p->in_left -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                p->in_left = 0;
            }
        }
        if (p->in_fd >= 0 && p->in_left == 0)
            s_close(&p->in_fd);
    }
    s_close(&p->in_fd);
    s_close(&p->out_fd);
    s_close(&p->err_fd);
    /* Callers print these as strings; make sure they exist. */
    if (p->out == NULL)
        p->out = calloc(1, 1);
    if (p->err == NULL)
        p->err = calloc(1, 1);
    return p->out != NULL && p->err != NULL ? 0 : -ENOMEM;
}

void
ph_proc_free(ph_proc_t *p)
{
    if (p->pid > 0) {
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    s_close(&p->in_fd);
    s_close(&p->out_fd);
    s_close(&p->err_fd);
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
    p->out_len = p->err_len = 0;
}

int
ph_run(ph_proc_t *p, const char *const argv[], const char *const env[],
       const char *cwd, const char *stdin_text, int timeout_ms)
{
    int rc = ph_proc_spawn(p, argv, env, cwd, stdin_text);
    if (rc != 0)
        return rc;
    return ph_proc_wait(p, timeout_ms);
}

void
ph_proc_report(const ph_proc_t *p, const char *what)
{
    fprintf(stderr, "----- %s: status %d%s -----\n", what, p->status,
            p->timed_out ? " (killed at timeout)" : "");
    fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n----- end -----\n",
            p->out != NULL ? p->out : "", p->err != NULL ? p->err : "");
}

/*
 * Collect the socket inodes from one /proc/net/tcp* table: with listen,
 * of listening sockets whose local port is port; else of ESTABLISHED
 * connections whose remote port is port. Returns how many were added.
 */
static size_t
s_tcp_inodes(const char *table, int port, bool listen, unsigned long *out,
             size_t n, size_t cap)
{
    FILE *f = fopen(table, "r");
    if (f == NULL)
        return n;
    char line[512];
    if (fgets(line, sizeof(line), f) == NULL) { /* header */
        fclose(f);
        return n;
    }
    while (n < cap && fgets(line, sizeof(line), f) != NULL) {
        char local[128], remote[128];
        unsigned st;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*s %127s %127s %x %*s %*s %*s %*s %*s %lu", local,
                   remote, &st, &inode)
            != 4)
            continue;
        const char *colon = strrchr(listen ? local : remote, ':');
        if (colon == NULL || st != (listen ? 0x0au : 0x01u))
            continue;
        if ((int)strtol(colon + 1, NULL, 16) == port)
            out[n++] = inode;
    }
    fclose(f);
    return n;
}

/* Does process pid hold one of the n sockets of inodes? */
static bool
s_pid_holds(pid_t pid, const unsigned long *inodes, size_t n)
{
    char fddir[64];
    snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
    DIR *d = n > 0 ? opendir(fddir) : NULL;
    if (d == NULL)
        return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d)) != NULL) {
        char link[PH_PATH_MAX], target[128];
        snprintf(link, sizeof(link), "%s/%s", fddir, e->d_name);
        ssize_t r = readlink(link, target, sizeof(target) - 1);
        if (r <= 0)
            continue;
        target[r] = '\0';
        unsigned long ino;
        if (sscanf(target, "socket:[%lu]", &ino) != 1)
            continue;
        for (size_t i = 0; i < n; i++)
            if (inodes[i] == ino)
                found = true;
    }
    closedir(d);
    return found;
}

/* The inodes of port's sockets (listen: see s_tcp_inodes()), IPv4 and 6. */
static size_t
s_port_inodes(int port, bool listen, unsigned long *out, size_t cap)
{
    size_t n = s_tcp_inodes("/proc/net/tcp", port, listen, out, 0, cap);
    return s_tcp_inodes("/proc/net/tcp6", port, listen, out, n, cap);
}

/* Is the process a zombie or gone? */
static bool
s_proc_gone(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    bool gone = false;
    if (fgets(buf, sizeof(buf), f) != NULL) {
        const char *rp = strrchr(buf, ')');
        gone = rp != NULL && (rp[2] == 'Z' || rp[2] == 'X');
    }
    fclose(f);
    return gone;
}

int
ph_wait_connected(pid_t pid, int port, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        if (s_proc_gone(pid))
            return -ESRCH;
        unsigned long inodes[256];
        size_t n = s_port_inodes(port, false, inodes, 256);
        if (s_pid_holds(pid, inodes, n))
            return 0;
        if (parley__mono_ms() >= deadline)
            return -ETIMEDOUT;
        s_sleep_ms(20);
    }
}

/* ------------------------------------------------------------- parleyd */

/* Start one daemon process on d's current ports. 0 or -errno. */
static int
s_daemon_spawn(ph_daemon_t *d, const char *keyring, const char *const *extra)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = PARLEYD_BIN;
    argv[n++] = "--api";
    argv[n++] = d->api;
    argv[n++] = "--feed";
    argv[n++] = d->feed;
    argv[n++] = "--state-dir";
    argv[n++] = d->state_dir;
    if (keyring != NULL) {
        argv[n++] = "--keyring";
        argv[n++] = keyring;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return ph_spawn_logged(argv, d->log_path, false, &d->pid);
}

int
ph_spawn_logged(const char *const argv[], const char *log_path,
                bool die_with_parent, pid_t *pid_out)
{
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return -errno;
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0) {
        int err = -errno;
        close(logfd);
        return err;
    }
    dprintf(logfd, "[harness] starting:");
    for (size_t i = 0; argv[i] != NULL; i++)
        dprintf(logfd, " %s", argv[i]);
    dprintf(logfd, "\n");

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(logfd);
        close(nullfd);
        return err;
    }
    if (pid == 0) {
        if (die_with_parent
            && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
            _exit(125);
        if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    *pid_out = pid;
    return 0;
}

bool
ph_port_listening(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = { 0 };
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/*
 * Wait up to 10 s for the daemon just spawned to answer ping. Pings start
 * once the api port accepts connections: one sent earlier would wait out
 * libzmq's reconnect interval. Returns 0, -ECHILD if the daemon exited
 * (reaped, d->pid 0), or -ETIMEDOUT (killed, log printed).
 */
static int
s_daemon_ready(ph_daemon_t *d)
{
    int64_t deadline = parley__mono_ms() + 10000;
    int last = 0;
    while (parley__mono_ms() < deadline) {
        int ws;
        if (waitpid(d->pid, &ws, WNOHANG) == d->pid) {
            s_say("parleyd exited with status %d", s_status_of(ws));
            d->pid = 0;
            return -ECHILD;
        }
        if (!ph_port_listening(d->api_port)) {
            s_sleep_ms(1);
            continue;
        }
        last = ph_ping(d->api, 1000);
        /* The answer must come from this daemon: a port of a stopped one
         * may be taken meanwhile by another test's (which answers too),
         * and then this one exits for want of it. */
        unsigned long inodes[16];
        if (last == 0
            && s_pid_holds(d->pid,
                           inodes, s_port_inodes(d->api_port, true, inodes, 16)))
            return 0;
        s_sleep_ms(5);
    }
    s_say("parleyd did not answer ping on %s within 10 s (last: %s)", d->api,
          parley_error_name(last));
    ph_daemon_kill9(d);
    ph_daemon_dump_log(d);
    return -ETIMEDOUT;
}

int
ph_daemon_start(ph_daemon_t *d, const char *dir, const char *keyring,
                const char *const *extra)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    if (ph_path(d->state_dir, sizeof(d->state_dir), dir, "state") != 0
        || ph_path(d->log_path, sizeof(d->log_path), dir, "parleyd.log") != 0)
        return -ENAMETOOLONG;
    if (mkdir(d->state_dir, 0700) != 0 && errno != EEXIST)
        return -errno;

    for (int attempt = 0; attempt < 3; attempt++) {
        d->api_port = ph_free_port();
        d->feed_port = ph_free_port();
        while (d->feed_port == d->api_port && d->api_port > 0)
            d->feed_port = ph_free_port();
        if (d->api_port < 0 || d->feed_port < 0)
            return d->api_port < 0 ? d->api_port : d->feed_port;
        ph_endpoint(d->api, d->api_port);
        ph_endpoint(d->feed, d->feed_port);
        int rc = s_daemon_spawn(d, keyring, extra);
        if (rc != 0) {
            s_say("cannot start %s: %s", PARLEYD_BIN, strerror(-rc));
            return rc;
        }
        rc = s_daemon_ready(d);
        if (rc != -ECHILD)
            return rc;
        s_say("parleyd exited during start-up (attempt %d)", attempt + 1);
    }
    ph_daemon_dump_log(d);
    return -ECHILD;
}

int
ph_daemon_restart(ph_daemon_t *d, const char *keyring,
                  const char *const *extra)
{
    if (d->pid > 0) {
        s_say("restart: parleyd pid %d is still running", (int)d->pid);
        return -EBUSY;
    }
    int rc = s_daemon_spawn(d, keyring, extra);
    if (rc != 0)
        return rc;
    rc = s_daemon_ready(d);
    if (rc == -ECHILD) {
        s_say("restarted parleyd exited at once");
        ph_daemon_dump_log(d);
    }
    return rc;
}

void
ph_daemon_teardown(ph_daemon_t *d, bool test_ok)
{
    if (d->pid > 0) {
        int status = ph_daemon_stop(d);
        if (status != 0)
            s_say("parleyd exit status after SIGTERM: %d", status);
        if (!test_ok || status != 0)
            ph_daemon_dump_log(d);
    } else if (!test_ok) {
        ph_daemon_dump_log(d);
    }
}

void
ph_sleep_ms(int ms)
{
    s_sleep_ms(ms);
}

int
ph_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        int ws;
        pid_t r = waitpid(pid, &ws, WNOHANG);
        if (r == pid)
            return s_status_of(ws);
        if (r < 0)
            return -errno;
        if (parley__mono_ms() >= deadline)
            return -ETIMEDOUT;
        s_sleep_ms(1); /* quick: some tests restart hundreds of times */
    }
}

int
ph_daemon_stop(ph_daemon_t *d)
{
    if (d->pid <= 0)
        return 0;
    kill(d->pid, SIGTERM);
    int rc = ph_wait_exit(d->pid, 10000);
    if (rc != -ETIMEDOUT) {
        d->pid = 0;
        return rc;
    }
    s_say("parleyd (pid %d) ignored SIGTERM for 10 s; killing it", (int)d->pid);
    ph_daemon_kill9(d);
    return -ETIMEDOUT;
}

void
ph_daemon_kill9(ph_daemon_t *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

void
ph_daemon_dump_log(const ph_daemon_t *d)
{
    if (d->log_path[0] != '\0')
        ph_file_dump("parleyd log", d->log_path);
}

/* ---------------------------------------------------------------- world */

int
ph_world_start(ph_world_t *w, uint8_t seed, const char *config)
{
    char text[1024] = "";
    int rc;
    memset(w, 0, sizeof(*w));
    if ((rc = ph_tmpdir_make(w->dir, sizeof(w->dir))) < 0
        || (rc = ph_key_make(&w->key, w->dir, "desk", seed)) < 0
        || (rc = ph_keyring_add(text, sizeof(text), &w->key, "*", "*", "*"))
               < 0
        || (rc = ph_path(w->ring, sizeof(w->ring), w->dir, "keyring")) < 0
        || (rc = ph_file_write(w->ring, text, strlen(text), 0644)) < 0)
        return rc;
    if (config != NULL
        && ((rc = ph_path(w->conf, sizeof(w->conf), w->dir, "parleyd.conf"))
                < 0
            || (rc = ph_file_write(w->conf, config, strlen(config), 0644))
                   < 0))
        return rc;
    const char *extra[] = { "-c", w->conf, NULL };
    return ph_daemon_start(&w->daemon, w->dir, w->ring,
                           config != NULL ? extra : NULL);
}

int
ph_world_restart(ph_world_t *w)
{
    const char *extra[] = { "-c", w->conf, NULL };
    return ph_daemon_restart(&w->daemon, w->ring,
                             w->conf[0] != '\0' ? extra : NULL);
}

void
ph_world_end(ph_world_t *w, bool test_ok)
{
    if (w->daemon.pid > 0 || w->daemon.log_path[0] != '\0')
        ph_daemon_teardown(&w->daemon, test_ok);
    ph_key_free(&w->key);
    if (w->dir[0] != '\0')
        ph_tmpdir_remove(w->dir);
    memset(w, 0, sizeof(*w));
}

/* ---------------------------------------------------------------- stats */

int
ph_stats_fetch(const char *api, ph_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    parley_call_options_t o = ph_call_options(api, 3000);
    parley_stats_t *stats = NULL;
    int rc = parley_stats(&o, &stats);
    if (rc < 0) {
        s_say("parley_stats %s: %s", api, parley_error_name(rc));
        return rc;
    }
    for (size_t i = 0; i < parley_stats_count(stats) && i < PH_STATS_MAX;
         i++) {
        snprintf(out->s[i].name, sizeof(out->s[i].name), "%s",
                 parley_stats_name(stats, i));
        out->s[i].value = parley_stats_value(stats, i);
        out->n++;
    }
    parley_stats_destroy(&stats);
    return 0;
}

uint64_t
ph_stats_get(const ph_stats_t *s, const char *name, bool *found)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->s[i].name, name) == 0) {
            if (found != NULL)
                *found = true;
            return s->s[i].value;
        }
    if (found != NULL)
        *found = false;
    return 0;
}

int
ph_stat_wait(const char *api, const char *name, uint64_t want, bool at_least,
             int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    uint64_t v = 0;
    bool found = false;
    for (;;) {
        ph_stats_t s;
        if (ph_stats_fetch(api, &s) == 0) {
            v = ph_stats_get(&s, name, &found);
            if (found && (at_least ? v >= want : v <= want))
                return 0;
        }
        if (parley__mono_ms() >= deadline)
            break;
        struct timespec pause = { 0, 20 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "[harness] %s is %s%" PRIu64 ", waited for %s %" PRIu64
            " for %d ms\n", name, found ? "" : "missing, ", v,
            at_least ? "at least" : "at most", want, timeout_ms);
    return -ETIMEDOUT;
}

int
ph_wait_feed_live(const char *api, const char *feed, uint64_t topics,
                  int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    if (ph_stat_wait(api, "subscriptions", topics, true, timeout_ms) < 0)
        return -ETIMEDOUT;
    void *ctx = zmq_ctx_new();
    void *sub = ctx != NULL ? zmq_socket(ctx, ZMQ_SUB) : NULL;
    int zero = 0, rc = -ETIMEDOUT;
    if (sub != NULL
        && zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof(zero)) == 0
        && zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "sys/heartbeat/", 14) == 0
        && zmq_connect(sub, feed) == 0) {
        zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
        int64_t left = deadline - parley__mono_ms();
        if (left > 0 && zmq_poll(&it, 1, (long)left) == 1)
            rc = 0;
    }
    if (rc < 0)
        fprintf(stderr, "[harness] no heartbeat on %s within %d ms\n", feed,
                timeout_ms);
    if (sub != NULL)
        zmq_close(sub);
    if (ctx != NULL)
        zmq_ctx_term(ctx);
    return rc;
}

int
ph_sub_spawn_live(ph_proc_t *p, const ph_daemon_t *d, const char *const argv[],
                  const char *cwd, uint64_t topics, int timeout_ms)
{
    int rc = ph_proc_spawn(p, argv, NULL, cwd, NULL);
    if (rc < 0)
        return rc;
    rc = ph_wait_connected(p->pid, d->feed_port, timeout_ms);
    if (rc == 0)
        rc = ph_wait_feed_live(d->api, d->feed, topics, timeout_ms);
    if (rc != 0) {
        ph_proc_wait(p, 1000);
        ph_proc_report(p, "parley sub (not live)");
    }
    return rc;
}

/* Is this a counter ph_stats_expect() watches? */
static bool
s_watched(const char *name)
{
    return strncmp(name, "rejected_", 9) == 0 || strcmp(name, "accepted") == 0
           || strcmp(name, "duplicates") == 0;
}

/* Expected rise of name per the "name=delta" list; 0 if not listed. */
static int64_t
s_expected_delta(const char *name, const char *const *expect)
{
    size_t n = strlen(name);
    for (size_t i = 0; expect != NULL && expect[i] != NULL; i++)
        if (strncmp(expect[i], name, n) == 0 && expect[i][n] == '=')
            return strtoll(expect[i] + n + 1, NULL, 10);
    return 0;
}

int
ph_stats_expect(const ph_stats_t *before, const ph_stats_t *after,
                const char *const *expect)
{
    int bad = 0;
    for (size_t i = 0; expect != NULL && expect[i] != NULL; i++) {
        char name[64];
        const char *eq = strchr(expect[i], '=');
        size_t n = eq != NULL ? (size_t)(eq - expect[i]) : strlen(expect[i]);
        snprintf(name, sizeof(name), "%.*s", (int)n, expect[i]);
        bool found;
        (void)ph_stats_get(after, name, &found);
        if (!found) {
            s_say("stats: counter %s is missing", name);
            bad++;
        }
    }
    for (size_t i = 0; i < after->n; i++) {
        const char *name = after->s[i].name;
        if (!s_watched(name))
            continue;
        uint64_t was = ph_stats_get(before, name, NULL);
        int64_t delta = (int64_t)(after->s[i].value - was);
        int64_t want = s_expected_delta(name, expect);
        if (delta != want) {
            s_say("stats: %s rose by %" PRId64 ", expected %" PRId64
                  " (%" PRIu64 " -> %" PRIu64 ")",
                  name, delta, want, was, after->s[i].value);
            bad++;
        }
    }
    return bad;
}

/* ------------------------------------------------------- raw api client */

int
ph_api_open(ph_api_t *a, const char *endpoint)
{
    memset(a, 0, sizeof(*a));
    a->rbuf = malloc(PH_FRAME_MAX);
    a->arena_buf = malloc(PH_FRAME_MAX);
    a->ctx = zmq_ctx_new();
    if (a->rbuf == NULL || a->arena_buf == NULL || a->ctx == NULL) {
        ph_api_close(a);
        return -ENOMEM;
    }
    parley__arena_init(&a->arena, a->arena_buf, PH_FRAME_MAX);
    a->sock = zmq_socket(a->ctx, ZMQ_DEALER);
    int linger = 0;
    if (a->sock == NULL
        || zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0
        || zmq_connect(a->sock, endpoint) != 0) {
        int err = -errno;
        ph_api_close(a);
        return err;
    }
    a->next_id = 1000;
    return 0;
}

void
ph_api_close(ph_api_t *a)
{
    if (a->sock != NULL)
        zmq_close(a->sock);
    if (a->ctx != NULL)
        zmq_ctx_term(a->ctx);
    if (a->arena_buf != NULL)
        parley__arena_reset(&a->arena);
    free(a->rbuf);
    free(a->arena_buf);
    memset(a, 0, sizeof(*a));
}

int
ph_api_send_frames(ph_api_t *a, const void *const *frames, const size_t *lens,
                   size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int flags = i + 1 < n ? ZMQ_SNDMORE : 0;
        if (zmq_send(a->sock, frames[i], lens[i], flags) < 0)
            return -errno;
    }
    return 0;
}

int
ph_api_recv(ph_api_t *a, int timeout_ms, parley__reply_t *r)
{
    memset(r, 0, sizeof(*r));
    zmq_pollitem_t item = { a->sock, 0, ZMQ_POLLIN, 0 };
    int pr = zmq_poll(&item, 1, timeout_ms);
    if (pr < 0)
        return -errno;
    if (pr == 0)
        return PARLEY_ETIMEOUT;
    a->rframes = 0;
    a->rlen = 0;
    int more = 1;
    while (more) {
        int n = zmq_recv(a->sock, a->rbuf, PH_FRAME_MAX, 0);
        if (n < 0)
            return -errno;
        a->rlen = (size_t)n < PH_FRAME_MAX ? (size_t)n : PH_FRAME_MAX;
        a->rframes++;
        size_t ml = sizeof(more);
        if (zmq_getsockopt(a->sock, ZMQ_RCVMORE, &more, &ml) != 0)
            return -errno;
    }
    if (a->rframes != 1)
        s_say("api reply came as %d frames (expected 1)", a->rframes);
    parley__arena_reset(&a->arena);
    int rc = parley__reply_decode(a->rbuf, a->rlen, r, &a->arena);
    if (rc != 0)
        s_say("api reply of %zu bytes does not decode: %s", a->rlen,
              parley_error_name(rc));
    return rc;
}

int
ph_api_publish(ph_api_t *a, const void *env, size_t len, int timeout_ms,
               parley__reply_t *r, uint64_t *request_id)
{
    parley__request_t *req = calloc(1, sizeof(*req));
    size_t cap = len + 64, n = 0;
    uint8_t *buf = malloc(cap);
    if (req == NULL || buf == NULL) {
        free(req);
        free(buf);
        return -ENOMEM;
    }
    req->request_id = ++a->next_id;
    req->op = PARLEY__OP_PUBLISH;
    req->update.data = env;
    req->update.len = len;
    int rc = parley__request_encode(req, buf, cap, &n);
    uint64_t id = req->request_id;
    free(req);
    if (request_id != NULL)
        *request_id = id;
    if (rc == 0) {
        const void *frames[1] = { buf };
        rc = ph_api_send_frames(a, frames, &n, 1);
    }
    free(buf);
    if (rc != 0)
        return rc;
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - parley__mono_ms();
        rc = ph_api_recv(a, left > 0 ? (int)left : 0, r);
        if (rc != 0 || r->request_id == id)
            return rc;
        char d[256];
        s_say("reply for request %" PRIu64 " while waiting for %" PRIu64 ": %s",
              r->request_id, id, ph_reply_describe(r, d, sizeof(d)));
    }
}

const char *
ph_reply_describe(const parley__reply_t *r, char *buf, size_t cap)
{
    switch (r->type) {
    case PARLEY__REPLY_ACK:
        snprintf(buf, cap,
                 "ack seq=%" PRIu64 " duplicate=%d (request %" PRIu64 ")",
                 r->seq, (int)r->duplicate, r->request_id);
        break;
    case PARLEY__REPLY_REJECT:
        snprintf(buf, cap, "reject %s: %s (request %" PRIu64 ")",
                 parley_error_name(r->code), r->message != NULL ? r->message : "",
                 r->request_id);
        break;
    default:
        snprintf(buf, cap, "reply type %d (request %" PRIu64 ")", (int)r->type,
                 r->request_id);
        break;
    }
    return buf;
}

/* ------------------------------------------------------ library clients */

parley_call_options_t
ph_call_options(const char *api, int timeout_ms)
{
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    o.server = api;
    o.timeout_ms = timeout_ms;
    return o;
}

int
ph_ping_info(const char *api, const parley_curve_t *curve, int timeout_ms,
             parley_info_t **out)
{
    parley_call_options_t o = ph_call_options(api, timeout_ms);
    parley_info_t *info = NULL;
    o.curve = curve;
    int rc = parley_ping(&o, &info);
    if (out != NULL)
        *out = info;
    else
        parley_info_destroy(&info);
    return rc;
}

int
ph_ping(const char *api, int timeout_ms)
{
    return ph_ping_info(api, NULL, timeout_ms, NULL);
}

parley_pub_t *
ph_pub_new(const char *api, const parley_key_t *key,
           const parley_curve_t *curve, int timeout_ms)
{
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = api;
    o.curve = curve;
    o.timeout_ms = timeout_ms;
    parley_pub_t *pub = parley_pub_new(key, &o);
    if (pub == NULL) {
        int err = errno;
        s_say("parley_pub_new(%s): %s", api, parley_error_name(-err));
        errno = err;
    }
    return pub;
}

int
ph_publish(parley_pub_t *pub, const parley_update_t *u, uint64_t *seq,
           int *dup)
{
    int rc = parley_pub_publish(pub, u, seq);
    if (dup != NULL)
        *dup = rc == PARLEY_DUPLICATE;
    return rc == PARLEY_DUPLICATE ? 0 : rc;
}

int
ph_recv(parley_pub_t *pub, int timeout_ms, uint64_t *request_id,
        uint64_t *seq, int *dup)
{
    int rc = parley_pub_recv(pub, timeout_ms, request_id, seq);
    if (dup != NULL)
        *dup = rc == PARLEY_DUPLICATE;
    if (rc == -EAGAIN)
        return PARLEY_ETIMEOUT;
    return rc == PARLEY_DUPLICATE ? 0 : rc;
}

const parley_event_t *
ph_sub_expect(parley_sub_t *sub, parley_event_type_t type, bool skip,
              int timeout_ms, const char *when)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    for (;;) {
        const parley_event_t *ev = NULL;
        int64_t left = deadline - parley__mono_ms();
        int rc = parley_sub_next(sub, left > 0 ? (int)left : 0, &ev);
        if (rc != 1)
            fail_msg("%s: no event %d within %d ms (%s)", when, (int)type,
                     timeout_ms,
                     rc < 0 ? parley_error_name(rc) : "nothing came");
        if (parley_event_type(ev) == type)
            return ev;
        if (!skip)
            fail_msg("%s: event %d (seq %" PRIu64 "), expected %d", when,
                     (int)parley_event_type(ev), parley_event_seq(ev),
                     (int)type);
    }
}

int
ph_sub_next(parley_sub_t *sub, int timeout_ms, parley_event_t *out)
{
    int64_t deadline = timeout_ms < 0 ? -1 : parley__mono_ms() + timeout_ms;
    for (;;) {
        const parley_event_t *e;
        int64_t left = deadline < 0 ? -1 : deadline - parley__mono_ms();
        int rc = parley_sub_next(sub, left < 0 && deadline >= 0 ? 0 : (int)left,
                                 &e);
        if (rc != 1)
            return rc;
        if (e->type == PARLEY_EVENT_CONNECTED
            || e->type == PARLEY_EVENT_DISCONNECTED
            || e->type == PARLEY_EVENT_CAUGHT_UP)
            continue;
        *out = *e;
        out->delivery.envelope = NULL;
        out->delivery.envelope_len = out->delivery.envelope_cap = 0;
        return rc;
    }
}

parley_sub_t *
ph_sub_new(const char *api, const parley_filter_t *f, parley_sub_options_t *opt)
{
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    if (opt != NULL)
        o = *opt;
    o.size = sizeof(o);
    o.server = api;
    if (f != NULL) {
        o.filters = &f;
        o.n_filters = 1;
    }
    return parley_sub_new(&o);
}

/* ------------------------------------------------------------- updates */

uint64_t
ph_next_signer_seq(void)
{
    static uint64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_us =
        (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    last = now_us > last ? now_us : last + 1;
    return last;
}

void
ph_update_init(parley_update_t *u, const char *negotiation, const char *party,
               uint32_t phase, const char *headline)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->negotiation, sizeof(u->negotiation), "%s", negotiation);
    snprintf(u->parties[0], sizeof(u->parties[0]), "%s", party);
    u->n_parties = 1;
    u->phase = phase;
    u->status = PARLEY_STATUS_TALKS_SCHEDULED;
    u->kind = PARLEY_KIND_UPDATE;
    snprintf(u->headline, sizeof(u->headline), "%s", headline);
    u->issued_at = parley_now_ms();
    u->signer_seq = ph_next_signer_seq();
}

int
ph_sign(const ph_key_t *k, const parley_update_t *u, uint8_t *buf, size_t cap,
        size_t *len)
{
    int rc = parley_sign(k->key, u, buf, cap, len);
    if (rc != 0)
        s_say("parley_sign: %s", parley_error_name(rc));
    return rc;
}

int
ph_sign_raw(const ph_key_t *k, const parley_update_t *u, uint8_t *buf,
            size_t cap, size_t *len)
{
    static const char ctx[] = PARLEY_SIGN_CONTEXT;
    uint8_t msg[sizeof(ctx) + PARLEY_ENVELOPE_MAX];
    size_t body_len = 0;
    /* sizeof(ctx) counts the NUL: exactly the 0x00 separator we need. */
    memcpy(msg, ctx, sizeof(ctx));
    int rc = parley__update_encode(u, msg + sizeof(ctx), PARLEY_ENVELOPE_MAX,
                                   &body_len);
    if (rc != 0)
        return rc;
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, msg, sizeof(ctx) + body_len, k->sk);
    return parley__envelope_encode(msg + sizeof(ctx), body_len, k->pk, sig, buf,
                                   cap, len);
}

/* ----------------------------------------------------------- subscriber */

void
ph_events_free(ph_events_t *ev)
{
    free(ev->d);
    memset(ev, 0, sizeof(*ev));
}

size_t
ph_sub_collect(parley_sub_t *sub, ph_events_t *ev, size_t want,
               uint64_t until_seq, int timeout_ms)
{
    int64_t deadline = parley__mono_ms() + timeout_ms;
    while (ev->n < want) {
        const parley_event_t *e;
        int64_t left = deadline - parley__mono_ms();
        if (left <= 0)
            break;
        int rc = parley_sub_next(sub, (int)left, &e);
        if (rc < 0) {
            ev->err = rc;
            s_say("parley_sub_next: %s", parley_error_name(rc));
            break;
        }
        if (rc == 0)
            break;
        if (e->type == PARLEY_EVENT_GAP) {
            s_say("subscriber saw a gap %" PRIu64 "..%" PRIu64, e->seq,
                  e->seq_last);
            ev->n_gaps++;
            continue;
        }
        if (e->type == PARLEY_EVENT_REJECTED) {
            s_say("subscriber rejected seq %" PRIu64 ": %s", e->seq,
                  parley_error_name(e->code));
            ev->n_rejected++;
            continue;
        }
        if (e->type != PARLEY_EVENT_DELIVERY)
            continue;
        if (ev->n == ev->cap) {
            size_t nc = ev->cap == 0 ? 16 : ev->cap * 2;
            parley_delivery_t *nd = realloc(ev->d, nc * sizeof(*nd));
            if (nd == NULL) {
                ev->err = -ENOMEM;
                break;
            }
            ev->d = nd;
            ev->cap = nc;
        }
        /* The copy keeps the fields, not the envelope the subscriber owns. */
        ev->d[ev->n] = e->delivery;
        ev->d[ev->n].envelope = NULL;
        ev->d[ev->n].envelope_len = ev->d[ev->n].envelope_cap = 0;
        ev->n++;
        if (until_seq != 0 && e->delivery.seq == until_seq)
            break;
    }
    return ev->n;
}

const char *
ph_seqs_format(const uint64_t *seqs, size_t n, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%" PRIu64, i ? " " : "",
                         seqs[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}
