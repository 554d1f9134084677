/*
 * common.c - plumbing shared by the bench programs (see bench.h).
 */
#include "bench.h"
#include "codec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifndef BENCH_PARLEYD_BIN
#define BENCH_PARLEYD_BIN "parleyd"
#endif

/* ------------------------------------------------------------- options */

void
bench_opts_parse(bench_opts_t *o, int argc, char **argv, const char *name,
                 const char *what)
{
    memset(o, 0, sizeof(*o));
    const char *env = getenv("PARLEYD");
    snprintf(o->parleyd, sizeof(o->parleyd), "%s",
             env != NULL && env[0] != '\0' ? env : BENCH_PARLEYD_BIN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(argv[i], "--parleyd") == 0 && i + 1 < argc) {
            snprintf(o->parleyd, sizeof(o->parleyd), "%s", argv[++i]);
        } else {
            int help = strcmp(argv[i], "--help") == 0 ||
                       strcmp(argv[i], "-h") == 0;
            fprintf(help ? stdout : stderr,
                    "usage: %s [--quick] [--parleyd PATH]\n%s\n", name, what);
            exit(help ? 0 : 2);
        }
    }
    /* Hundreds of sockets per run; a dead peer must not kill us. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

/* -------------------------------------------------------------- clocks */

uint64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double
bench_secs(uint64_t from_ns, uint64_t to_ns)
{
    return (double)(to_ns - from_ns) / 1e9;
}

void
bench_sleep_ns(uint64_t ns)
{
    struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
                           .tv_nsec = (long)(ns % 1000000000ull) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------- files, ports */

int
bench_tmpdir_make(char *out, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/var/tmp";
    int n = snprintf(out, cap, "%s/parley-bench-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    if (mkdtemp(out) == NULL) {
        int rc = -errno;
        fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
        return rc;
    }
    return 0;
}

static int
s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void
bench_tmpdir_remove(const char *dir)
{
    if (dir == NULL || dir[0] == '\0')
        return;
    const char *keep = getenv("BENCH_KEEP");
    if (keep != NULL && keep[0] != '\0' && strcmp(keep, "0") != 0) {
        fprintf(stderr, "BENCH_KEEP: kept %s\n", dir);
        return;
    }
    (void)nftw(dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
bench_file_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int rc = -errno;
            close(fd);
            return rc;
        }
        off += (size_t)w;
    }
    return close(fd) == 0 ? 0 : -errno;
}

int
bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int rc;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        rc = -errno;
    else
        rc = ntohs(sa.sin_port);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ processes */

pid_t
bench_spawn(const char *const argv[], const char *log_path)
{
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = log_path != NULL
                  ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                         0600)
                  : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (in < 0 || out < 0) {
        int rc = -errno;
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
        return rc;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. A daemon or
         * broker must not outlive a bench killed half-way: SIGTERM it when
         * we die (spawns happen on the main thread, which lives as long
         * as the process). */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int err = errno;
    close(in);
    close(out);
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(err));
        return -err;
    }
    return pid;
}

int
bench_stop(pid_t pid)
{
    if (pid <= 0)
        return 0;
    int status;
    (void)kill(pid, SIGTERM);
    uint64_t deadline = bench_now_ns() + 5000000000ull;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            return -errno;
        if (bench_now_ns() > deadline) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            return -ETIMEDOUT;
        }
        bench_sleep_ns(2000000);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int
bench_alive(pid_t pid)
{
    int status;
    return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

int
bench_wait_port(int port, int timeout_ms, pid_t pid)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc == 0)
            return 0;
        if (bench_now_ns() > deadline || (pid > 0 && !bench_alive(pid)))
            return -ETIMEDOUT;
        bench_sleep_ns(200000);
    }
}

int
bench_proc_mem(pid_t pid, uint64_t *hwm, uint64_t *rss)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    *hwm = *rss = 0;
    unsigned long long kb;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            *hwm = kb * 1024ull;
        else if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            *rss = kb * 1024ull;
    }
    fclose(f);
    return *hwm > 0 ? 0 : -ENOENT;
}

typedef struct s_verify_job {
    const uint8_t *msg, *sig, *pk;
    size_t len;
    uint64_t dur_ns;
    uint64_t count;
    double cpu_secs;      /* this thread's CPU time in the loop */
} s_verify_job_t;

static double
s_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
s_verify_loop(void *arg)
{
    s_verify_job_t *j = arg;
    uint64_t t0 = bench_now_ns(), n = 0;
    double c0 = s_thread_cpu();
    while (bench_now_ns() - t0 < j->dur_ns)
        for (int i = 0; i < 50; i++)
            n += crypto_sign_verify_detached(j->sig, j->msg, j->len, j->pk) == 0;
    j->cpu_secs = s_thread_cpu() - c0;
    j->count = n;
    return NULL;
}

double
bench_raw_verify(const uint8_t *msg, size_t len, const uint8_t *sig,
                 const uint8_t *pk, size_t threads, uint64_t dur_ns,
                 double *us_per_verify)
{
    pthread_t tid[BENCH_VERIFY_THREADS_MAX];
    s_verify_job_t job[BENCH_VERIFY_THREADS_MAX];
    if (threads > BENCH_VERIFY_THREADS_MAX)
        threads = BENCH_VERIFY_THREADS_MAX;
    uint64_t t0 = bench_now_ns(), n = 0;
    for (size_t i = 0; i < threads; i++) {
        job[i] = (s_verify_job_t){ .msg = msg, .sig = sig, .pk = pk,
                                   .len = len, .dur_ns = dur_ns };
        pthread_create(&tid[i], NULL, s_verify_loop, &job[i]);
    }
    double cpu = 0;
    for (size_t i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        n += job[i].count;
        cpu += job[i].cpu_secs;
    }
    if (us_per_verify != NULL)
        *us_per_verify = n > 0 ? cpu / (double)n * 1e6 : 0;
    return (double)n / bench_secs(t0, bench_now_ns());
}

double
bench_raw_verify_min(const uint8_t *msg, size_t len, const uint8_t *sig,
                     const uint8_t *pk, size_t threads, uint64_t dur_ns,
                     double *us_min)
{
    double us = 0;
    double rate = bench_raw_verify(msg, len, sig, pk, threads, dur_ns, &us);
    if (us > 0 && (*us_min == 0 || us < *us_min))
        *us_min = us;
    return rate;
}

int
bench_proc_hwm_reset(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = write(fd, "5", 1) == 1 ? 0 : -errno;
    close(fd);
    return rc;
}

unsigned
bench_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Read /proc/PID/stat into buf; returns what follows the command name's
 * closing ")" (the state field on), or NULL. */
static const char *
s_proc_stat(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p != NULL ? p + 1 : NULL;
}

double
bench_proc_cpu(pid_t pid)
{
    char buf[1024];
    const char *p = s_proc_stat(pid, buf, sizeof(buf));
    unsigned long long ut = 0, st = 0;
    /* After ")": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime. */
    if (p == NULL
        || sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                  &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

uint64_t
bench_proc_faults(pid_t pid)
{
    char buf[1024];
    const char *p = s_proc_stat(pid, buf, sizeof(buf));
    unsigned long long minflt = 0;
    /* After ")": state ppid pgrp session tty tpgid flags minflt. */
    if (p == NULL
        || sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %llu", &minflt) != 1)
        return 0;
    return minflt;
}

void
bench_tasks_cpu(pid_t pid, bench_task_fn fn, void *ctx)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char file[384], buf[1024], comm[64] = "";
        snprintf(file, sizeof(file), "%s/%s/comm", path, e->d_name);
        FILE *f = fopen(file, "r");
        if (f != NULL) {
            if (fgets(comm, sizeof(comm), f) == NULL)
                comm[0] = '\0';
            fclose(f);
        }
        snprintf(file, sizeof(file), "%s/%s/stat", path, e->d_name);
        if ((f = fopen(file, "r")) == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (p == NULL
            || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                             "%llu %llu",
                      &ut, &st)
                   != 2)
            continue;
        comm[strcspn(comm, "\n")] = '\0';
        fn(ctx, atoi(e->d_name) == (int)pid, comm,
           (double)(ut + st) / (double)sysconf(_SC_CLK_TCK), atoi(e->d_name));
    }
    closedir(dir);
}

/* One thread's CPU into a bench_threads_t by role. */
static void
s_thread_role(void *ctx, bool main_thread, const char *comm, double secs,
              int tid)
{
    (void)tid;
    bench_threads_t *t = ctx;
    if (main_thread)
        t->main += secs;
    else if (strncmp(comm, "ZMQbg/IO", 8) == 0)
        t->io += secs;
    else if (strncmp(comm, "ZMQbg", 5) == 0)
        t->other += secs;
    else
        t->workers += secs;
}

void
bench_threads_cpu(pid_t pid, bench_threads_t *t)
{
    memset(t, 0, sizeof(*t));
    bench_tasks_cpu(pid, s_thread_role, t);
}

bench_threads_t
bench_threads_cores(const bench_threads_t *t0, const bench_threads_t *t1,
                    double secs)
{
    if (secs <= 0)
        return (bench_threads_t){ 0 };
    return (bench_threads_t){ (t1->main - t0->main) / secs,
                              (t1->workers - t0->workers) / secs,
                              (t1->io - t0->io) / secs,
                              (t1->other - t0->other) / secs };
}

void
bench_log_tail(const char *path, const char *title)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char *lines[20] = { 0 };
    char buf[512];
    size_t n = 0;
    while (fgets(buf, sizeof(buf), f) != NULL) {
        free(lines[n % 20]);
        lines[n % 20] = strdup(buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "----- %s: last lines of %s -----\n", title, path);
    for (size_t i = n > 20 ? n - 20 : 0; i < n; i++)
        fputs(lines[i % 20] != NULL ? lines[i % 20] : "", stderr);
    fprintf(stderr, "-----\n");
    for (size_t i = 0; i < 20; i++)
        free(lines[i]);
}

/* ---------------------------------------------------------------- keys */

int
bench_keys_make(bench_key_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t seed[32];
        memset(seed, (int)(1 + i), sizeof(seed));
        keys[i].key = parley_key_from_seed(seed);
        if (keys[i].key == NULL) {
            int rc = -errno;
            fprintf(stderr, "parley_key_from_seed: %s\n", parley_error_name(rc));
            bench_keys_free(keys, i);
            return rc;
        }
        parley_key_public(keys[i].key, keys[i].pk);
        parley_pubkey_format(keys[i].pk, keys[i].pub_b64);
        snprintf(keys[i].name, sizeof(keys[i].name), "bench%zu", i);
    }
    return 0;
}

void
bench_keys_free(bench_key_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        parley_key_destroy(&keys[i].key);
}

int
bench_keyring_write(const char *path, const bench_key_t *keys, size_t n)
{
    size_t cap = 128 + n * 160;
    char *text = calloc(1, cap);
    if (text == NULL)
        return -ENOMEM;
    size_t off = (size_t)snprintf(text, cap, "# bench keyring\n");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(text + off, cap - off,
                                "%s %s negotiations=* parties=* phases=*\n",
                                keys[i].name, keys[i].pub_b64);
    int rc = bench_file_write(path, text);
    free(text);
    return rc;
}

/* ------------------------------------------------------------- parleyd */

/*
 * Start `parleyd -c d->dir/parleyd.conf` and wait up to wait_ms until it
 * answers a ping. Returns 0, PARLEY_ETIMEOUT (stopped again), -ECHILD
 * (it exited) or -errno.
 */
static int
s_daemon_spawn(bench_daemon_t *d, const char *parleyd, int wait_ms)
{
    char conf_path[BENCH_PATH_MAX + 32];
    snprintf(conf_path, sizeof(conf_path), "%s/parleyd.conf", d->dir);
    const char *argv[] = { parleyd, "-c", conf_path, NULL };
    d->pid = bench_spawn(argv, d->log_path);
    if (d->pid < 0) {
        int rc = d->pid;
        d->pid = 0;
        return rc;
    }
    uint64_t deadline = bench_now_ns() + (uint64_t)wait_ms * 1000000ull;
    while (bench_now_ns() < deadline && bench_alive(d->pid)) {
        if (bench_ping(d->api, 250, NULL) == 0)
            return 0;
        bench_sleep_ns(5000000);
    }
    if (bench_alive(d->pid)) {
        bench_log_tail(d->log_path, "parleyd (no answer to ping)");
        bench_daemon_stop(d);
        return PARLEY_ETIMEOUT;
    }
    (void)bench_stop(d->pid);
    d->pid = 0;
    return -ECHILD;
}

int
bench_daemon_ports(bench_daemon_t *d)
{
    d->api_port = bench_free_port();
    d->feed_port = bench_free_port();
    if (d->api_port < 0 || d->feed_port < 0 || d->api_port == d->feed_port)
        return -EADDRINUSE;
    snprintf(d->api, sizeof(d->api), "tcp://127.0.0.1:%d", d->api_port);
    snprintf(d->feed, sizeof(d->feed), "tcp://127.0.0.1:%d", d->feed_port);
    return 0;
}

int
bench_daemon_start(bench_daemon_t *d, const char *parleyd, const char *dir,
                   bool fsync, int wait_ms)
{
    return bench_daemon_start_conf(d, parleyd, dir, fsync, NULL, wait_ms);
}

int
bench_daemon_start_conf(bench_daemon_t *d, const char *parleyd, const char *dir,
                        bool fsync, const char *extra, int wait_ms)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    snprintf(d->state_dir, sizeof(d->state_dir), "%s/state", dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/parleyd.log", dir);
    if (mkdir(d->state_dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    /* A port can be taken between choosing and binding: retry a few times. */
    for (int attempt = 0; attempt < 3; attempt++) {
        if (bench_daemon_ports(d) < 0)
            continue;
        char conf[4 * BENCH_PATH_MAX], conf_path[BENCH_PATH_MAX + 32];
        /* BENCH_LOG_LEVEL=info makes the daemons log every kind of
         * reject (rate-limited), with BENCH_KEEP to read them after. */
        const char *level = getenv("BENCH_LOG_LEVEL");
        snprintf(conf, sizeof(conf),
                 "# written by the parley benchmarks\n"
                 "api %s\nfeed %s\nstate_dir %s\nkeyring %s/keyring\n"
                 "fsync %s\nlog_level %s\nmax_clock_skew 3600\n"
                 "rate_limit 0\n%s%s",
                 d->api, d->feed, d->state_dir, dir, fsync ? "on" : "off",
                 level != NULL && level[0] != '\0' ? level : "warn",
                 extra != NULL && strstr(extra, "max_connections ") != NULL
                     ? ""
                     : "max_connections 2048\n",
                 extra != NULL ? extra : "");
        snprintf(conf_path, sizeof(conf_path), "%s/parleyd.conf", dir);
        int rc = bench_file_write(conf_path, conf);
        if (rc < 0)
            return rc;
        rc = s_daemon_spawn(d, parleyd, wait_ms);
        if (rc != -ECHILD)
            return rc;
    }
    bench_log_tail(d->log_path, "parleyd (exited at start)");
    return -ECHILD;
}

int
bench_daemon_restart(bench_daemon_t *d, const char *parleyd, int wait_ms)
{
    int rc = s_daemon_spawn(d, parleyd, wait_ms);
    if (rc == -ECHILD)
        bench_log_tail(d->log_path, "parleyd (exited at start)");
    return rc;
}

int
bench_daemon_stop(bench_daemon_t *d)
{
    int rc = bench_stop(d->pid);
    d->pid = 0;
    return rc;
}

int
bench_ping(const char *api, int timeout_ms, uint64_t *head)
{
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    parley_info_t *info = NULL;
    o.server = api;
    o.timeout_ms = timeout_ms;
    int rc = parley_ping(&o, &info);
    if (rc == 0 && head != NULL)
        *head = parley_info_seq(info);
    parley_info_destroy(&info);
    return rc;
}

parley_pub_t *
bench_pub_new(const char *api, const parley_key_t *key)
{
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = api;
    return parley_pub_new(key, &o);
}

parley_sub_t *
bench_sub_new(const char *api, parley_start_t start, uint64_t since_seq)
{
    parley_sub_options_t o = PARLEY_SUB_OPTIONS_INIT;
    o.server = api;
    o.start = start;
    o.since_seq = since_seq;
    return parley_sub_new(&o);
}

uint64_t
bench_daemon_stat(const bench_daemon_t *d, const char *name, bool *found)
{
    parley_call_options_t o = PARLEY_CALL_OPTIONS_INIT;
    parley_stats_t *st = NULL;
    uint64_t v = 0;
    o.server = d->api;
    o.timeout_ms = 3000;
    int rc = parley_stats(&o, &st);
    if (rc == 0)
        rc = parley_stats_get(st, name, &v);
    parley_stats_destroy(&st);
    if (found != NULL)
        *found = rc == 0;
    return rc == 0 ? v : 0;
}

/* ------------------------------------------------------------- updates */

void
bench_update_fill(parley_update_t *u, uint64_t i, uint64_t signer_seq,
                  int64_t issued_at)
{
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire");
    u->n_parties = 2;
    strcpy(u->parties[0], "israel");
    strcpy(u->parties[1], "hamas");
    u->phase = 1;
    u->status = PARLEY_STATUS_TALKS_SCHEDULED;
    u->kind = PARLEY_KIND_UPDATE;
    snprintf(u->headline, sizeof(u->headline),
             "Talks on the US bridging proposal scheduled in Cairo on "
             "Tuesday (#%010llu)",
             (unsigned long long)(i % 10000000000ull));
    snprintf(u->body, sizeof(u->body), "%s",
             "Mediators from Egypt and Qatar say both delegations will meet "
             "in Cairo on Tuesday to discuss the US bridging proposal for "
             "phase 1; responses are expected within the week.");
    strcpy(u->location, "cairo");
    u->issued_at = issued_at;
    u->signer_seq = signer_seq;
}

typedef struct s_signjob {
    bench_envs_t *e;
    const parley_key_t *key;
    size_t from, to;
    uint64_t first_seq;
    int64_t issued_at;
    int rc;
} s_signjob_t;

static void *
s_sign_range(void *arg)
{
    s_signjob_t *j = arg;
    parley_update_t *u = malloc(sizeof(*u));
    if (u == NULL) {
        j->rc = -ENOMEM;
        return NULL;
    }
    for (size_t i = j->from; i < j->to; i++) {
        bench_update_fill(u, i, j->first_seq + i, j->issued_at);
        size_t len;
        int rc = parley_sign(j->key, u, j->e->slots + i * BENCH_ENV_SLOT,
                             BENCH_ENV_SLOT, &len);
        if (rc < 0) {
            j->rc = rc;
            break;
        }
        j->e->lens[i] = (uint16_t)len;
    }
    free(u);
    return NULL;
}

int
bench_envs_sign(bench_envs_t *e, const parley_key_t *key, size_t n,
                uint64_t first_seq, size_t threads)
{
    memset(e, 0, sizeof(*e));
    e->slots = malloc(n * BENCH_ENV_SLOT + 1);
    e->lens = calloc(n + 1, sizeof(*e->lens));
    if (e->slots == NULL || e->lens == NULL) {
        bench_envs_free(e);
        return -ENOMEM;
    }
    e->n = n;
    if (threads < 1)
        threads = 1;
    if (threads > 16)
        threads = 16;
    pthread_t tid[16];
    s_signjob_t job[16];
    int64_t now = parley_now_ms();
    for (size_t t = 0; t < threads; t++) {
        job[t] = (s_signjob_t){ .e = e, .key = key, .from = n * t / threads,
                                .to = n * (t + 1) / threads,
                                .first_seq = first_seq, .issued_at = now };
        if (pthread_create(&tid[t], NULL, s_sign_range, &job[t]) != 0) {
            job[t].rc = -EAGAIN;
            s_sign_range(&job[t]);
            tid[t] = 0;
        }
    }
    int rc = 0;
    for (size_t t = 0; t < threads; t++) {
        if (tid[t] != 0)
            pthread_join(tid[t], NULL);
        if (job[t].rc < 0 && rc == 0)
            rc = job[t].rc;
    }
    if (rc < 0) {
        fprintf(stderr, "pre-signing: %s\n", parley_error_name(rc));
        bench_envs_free(e);
    }
    return rc;
}

void
bench_envs_free(bench_envs_t *e)
{
    free(e->slots);
    free(e->lens);
    memset(e, 0, sizeof(*e));
}

size_t
bench_typical_envelope_size(void)
{
    parley_key_t *k = parley_key_generate();
    parley_update_t *u = malloc(sizeof(*u));
    uint8_t buf[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    if (k != NULL && u != NULL) {
        bench_update_fill(u, 1, (uint64_t)parley_now_ms() * 1000ull,
                          parley_now_ms());
        if (parley_sign(k, u, buf, sizeof(buf), &len) < 0)
            len = 0;
    }
    free(u);
    parley_key_destroy(&k);
    return len;
}

size_t
bench_typical_delivery_size(void)
{
    uint8_t env[PARLEY_ENVELOPE_MAX], out[PARLEY_ENVELOPE_MAX + 64];
    size_t elen = bench_typical_envelope_size(), dlen = 0;
    memset(env, 0x5a, sizeof(env));
    /* A seq in the hundred thousands and a current timestamp. */
    if (parley__delivery_encode(123456, parley_now_ms(), env, elen, out,
                                sizeof(out), &dlen) < 0)
        return elen + 16;
    return dlen;
}

/* ---------------------------------------------------------- publishers */

void *
bench_pubber_run(void *arg)
{
    bench_pubber_t *p = arg;
    parley_pub_options_t o = PARLEY_PUB_OPTIONS_INIT;
    o.server = p->api;
    o.timeout_ms = p->timeout_ms;
    parley_pub_t *pub = parley_pub_new(p->key, &o);
    if (pub == NULL) {
        p->first_error = -errno;
        p->done_ns = bench_now_ns();
        return NULL;
    }
    size_t next = 0, inflight = 0;
    uint64_t acked = 0;
    while (next < p->envs->n || inflight > 0) {
        bool stopping = atomic_load_explicit(p->stop, memory_order_relaxed);
        bool held = !stopping && p->hold != NULL && p->hold(p->hold_ctx);
        if (held && inflight == 0) {
            bench_sleep_ns(20000);
            continue;
        }
        while (!stopping && !held && inflight < p->window
               && next < p->envs->n) {
            uint64_t rid;
            int rc = parley_pub_send(pub, bench_env(p->envs, next),
                                     p->envs->lens[next], &rid);
            if (rc < 0) {
                if (p->first_error == 0)
                    p->first_error = rc;
                stopping = true;
                break;
            }
            next++;
            inflight++;
            atomic_store_explicit(&p->sent, next, memory_order_relaxed);
        }
        if (inflight == 0)
            break;
        uint64_t rid, seq;
        int rc = parley_pub_recv(pub, p->timeout_ms > 10000 ? p->timeout_ms
                                                            : 10000,
                                 &rid, &seq);
        if (rc == PARLEY_DUPLICATE)
            rc = 0;
        if (rc == -EAGAIN)
            rc = PARLEY_ETIMEOUT;
        if (rc == PARLEY_ETIMEOUT || (rc < 0 && rc > -1000)) {
            /* No answer for 10 s, or a socket error: give up. */
            if (p->first_error == 0)
                p->first_error = rc;
            break;
        }
        inflight--;
        if (rc == 0) {
            acked++;
            atomic_store_explicit(&p->acked, acked, memory_order_relaxed);
        } else {
            p->rejected++;
            if (p->first_error == 0)
                p->first_error = rc;
        }
    }
    p->done_ns = bench_now_ns();
    parley_pub_destroy(&pub);
    return NULL;
}

/* ------------------------------------------------- delivery counting */

bench_counter_t *
bench_counters_new(size_t n)
{
    bench_counter_t *c = aligned_alloc(64, ((n * sizeof(*c) + 63) / 64) * 64);
    if (c != NULL)
        memset(c, 0, n * sizeof(*c));
    return c;
}

uint64_t
bench_counters_sum(bench_counter_t *c, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += atomic_load_explicit(&c[i].n, memory_order_relaxed);
    return s;
}

uint64_t
bench_counters_min(bench_counter_t *c, size_t n)
{
    uint64_t m = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = atomic_load_explicit(&c[i].n, memory_order_relaxed);
        if (v < m)
            m = v;
    }
    return n > 0 ? m : 0;
}

int
bench_counters_wait_all(bench_counter_t *c, size_t n, int timeout_ms)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (bench_counters_min(c, n) == 0) {
        if (bench_now_ns() > deadline)
            return -ETIMEDOUT;
        bench_sleep_ns(1000000);
    }
    return 0;
}

double
bench_measure_rate(bench_counter_t *c, size_t n, uint64_t warm_ns,
                   uint64_t dur_ns, bool (*early)(void *ctx), void *early_ctx)
{
    bench_sleep_ns(warm_ns);
    uint64_t c0 = bench_counters_sum(c, n), t0 = bench_now_ns();
    uint64_t end = t0 + dur_ns;
    while (bench_now_ns() < end && (early == NULL || !early(early_ctx)))
        bench_sleep_ns(5000000);
    uint64_t c1 = bench_counters_sum(c, n), t1 = bench_now_ns();
    return (double)(c1 - c0) / bench_secs(t0, t1);
}

uint64_t
bench_delivery_seq(const uint8_t *buf, size_t len)
{
    /* Delivery field 1 (seq) is a varint, written first by protobuf-c. */
    if (len < 2 || buf[0] != 0x08)
        return 0;
    uint64_t v = 0;
    for (size_t i = 1; i < len && i < 11; i++) {
        v |= (uint64_t)(buf[i] & 0x7f) << (7 * (i - 1));
        if ((buf[i] & 0x80) == 0)
            return v;
    }
    return 0;
}

/*
 * Read what socket i of w has queued, at most S_DRAIN_MAX messages, and
 * count it. Returns true when the socket was read empty (EAGAIN): its
 * ZMQ_FD then signals again when something new arrives.
 */
#define S_DRAIN_MAX 4096
static bool
s_zworker_drain(bench_zworker_t *w, size_t i, zmq_msg_t *msg)
{
    bench_counter_t *c = &w->counters[i];
    uint64_t got = 0;
    bool empty = false;
    for (int k = 0; k < S_DRAIN_MAX; k++) {
        if (zmq_msg_recv(msg, w->socks[i], ZMQ_DONTWAIT) < 0) {
            empty = true;
            break;
        }
        if (zmq_msg_more(msg))
            continue;
        if (w->parse_seq) {
            uint64_t seq = bench_delivery_seq(zmq_msg_data(msg),
                                              zmq_msg_size(msg));
            uint64_t last = atomic_load_explicit(&c->last_seq,
                                                 memory_order_relaxed);
            if (seq > last) {
                if (last != 0 && seq > last + 1)
                    atomic_fetch_add_explicit(&c->gaps, seq - last - 1,
                                              memory_order_relaxed);
                atomic_store_explicit(&c->last_seq, seq,
                                      memory_order_relaxed);
            }
            if (seq == 0) {
                /* Not a delivery: a heartbeat. */
                atomic_fetch_add_explicit(&c->other, 1, memory_order_relaxed);
                continue;
            }
        }
        got++;
    }
    if (got > 0)
        atomic_fetch_add_explicit(&c->n, got, memory_order_relaxed);
    return empty;
}

/*
 * The worker waits in epoll on each socket's ZMQ_FD (its mailbox), so a
 * wake-up costs in proportion to the sockets that have something, not to
 * all of them (zmq_poll() looks at every socket on every call, which at
 * 500 sockets per reader made the readers, not the publisher, the limit
 * of a fan-out run with thousands of subscribers). ZMQ_FD only says that
 * something may have changed: a socket is read until EAGAIN (or marked to
 * be read again when its drain stopped at S_DRAIN_MAX, so one busy socket
 * does not starve the others), after which libzmq signals the descriptor
 * again for whatever comes next.
 */
void *
bench_zworker_run(void *arg)
{
    bench_zworker_t *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    bool *again = calloc(w->n + 1, sizeof(*again));
    size_t *todo = calloc(w->n + 1, sizeof(*todo));   /* sockets to read */
    size_t *next = calloc(w->n + 1, sizeof(*next));
    struct epoll_event *evs = calloc(256, sizeof(*evs));
    if (ep < 0 || again == NULL || todo == NULL || next == NULL
        || evs == NULL) {
        if (ep >= 0)
            close(ep);
        free(again);
        free(todo);
        free(next);
        free(evs);
        return NULL;
    }
    size_t n_todo = 0;
    for (size_t i = 0; i < w->n; i++) {
        int fd;
        size_t len = sizeof(fd);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        if (zmq_getsockopt(w->socks[i], ZMQ_FD, &fd, &len) == 0)
            (void)epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        again[i] = true; /* read once: anything queued before the wait */
        todo[n_todo++] = i;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        int ne = epoll_wait(ep, evs, 256, n_todo > 0 ? 0 : 50);
        for (int e = 0; e < ne; e++) {
            size_t i = (size_t)evs[e].data.u64;
            if (!again[i]) {
                again[i] = true;
                todo[n_todo++] = i;
            }
        }
        size_t n_next = 0;
        for (size_t k = 0; k < n_todo; k++) {
            size_t i = todo[k];
            /* Reading also makes libzmq consume the mailbox signal. */
            again[i] = !s_zworker_drain(w, i, &msg);
            if (again[i])
                next[n_next++] = i;
        }
        size_t *t = todo;
        todo = next;
        next = t;
        n_todo = n_next;
    }
    zmq_msg_close(&msg);
    close(ep);
    free(evs);
    free(next);
    free(todo);
    free(again);
    return NULL;
}

/* A fleet child: make its sockets, count until told to stop, exit. */
static void
s_fleet_child(bench_fleet_t *f, const char *feed, const char *const *topics,
              size_t from, size_t to, bool parse_seq)
{
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, (int)(to - from) + 64);
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 1);
    void **socks = calloc(to - from, sizeof(*socks));
    size_t made = 0;
    int zero = 0;
    for (size_t i = from; socks != NULL && i < to; i++) {
        void *s = zmq_socket(ctx, ZMQ_SUB);
        if (s == NULL) {
            atomic_fetch_add(f->failed, to - i);
            break;
        }
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
        for (size_t t = 0; topics[t] != NULL; t++)
            zmq_setsockopt(s, ZMQ_SUBSCRIBE, topics[t], strlen(topics[t]));
        if (zmq_connect(s, feed) != 0) {
            zmq_close(s);
            atomic_fetch_add(f->failed, to - i);
            break;
        }
        socks[made++] = s;
        atomic_fetch_add(f->opened, 1);
    }
    bench_zworker_t w = { .socks = socks, .counters = f->c + from, .n = made,
                          .parse_seq = parse_seq, .stop = f->stop };
    if (made > 0)
        bench_zworker_run(&w);
    while (!atomic_load(f->stop))
        bench_sleep_ns(10000000);
    for (size_t i = 0; i < made; i++)
        zmq_close(socks[i]);
    zmq_ctx_term(ctx);
    _exit(0);
}

int
bench_fleet_start(bench_fleet_t *f, const char *feed,
                  const char *const *topics, size_t n, size_t per_proc,
                  bool parse_seq)
{
    memset(f, 0, sizeof(*f));
    f->n = n;
    f->nproc = (n + per_proc - 1) / per_proc;
    size_t cbytes = ((n * sizeof(bench_counter_t) + 63) / 64) * 64;
    f->shm_len = cbytes + 64 * 3;
    uint8_t *m = mmap(NULL, f->shm_len, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    f->c = (bench_counter_t *)m;
    f->stop = (atomic_int *)(m + cbytes);
    f->opened = (atomic_uint_fast64_t *)(m + cbytes + 64);
    f->failed = (atomic_uint_fast64_t *)(m + cbytes + 128);
    f->pids = calloc(f->nproc, sizeof(*f->pids));
    if (f->pids == NULL)
        return -ENOMEM;
    pid_t parent = getpid();
    for (size_t p = 0; p < f->nproc; p++) {
        size_t from = n * p / f->nproc, to = n * (p + 1) / f->nproc;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            bench_fleet_stop(f);
            return -errno;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);
            s_fleet_child(f, feed, topics, from, to, parse_seq);
        }
        f->pids[p] = pid;
    }
    uint64_t t0 = bench_now_ns();
    while (atomic_load(f->opened) + atomic_load(f->failed) < n) {
        if (bench_secs(t0, bench_now_ns()) > 60) {
            fprintf(stderr, "fleet: %llu of %zu sockets made in 60 s\n",
                    (unsigned long long)atomic_load(f->opened), n);
            bench_fleet_stop(f);
            return -ETIMEDOUT;
        }
        bench_sleep_ns(10000000);
    }
    if (atomic_load(f->failed) > 0) {
        fprintf(stderr, "fleet: %llu of %zu sockets could not be made\n",
                (unsigned long long)atomic_load(f->failed), n);
        bench_fleet_stop(f);
        return -EMFILE;
    }
    return 0;
}

void
bench_fleet_stop(bench_fleet_t *f)
{
    if (f->stop != NULL)
        atomic_store(f->stop, 1);
    /* They close their sockets and exit; a child that does not within
     * 10 s is stopped by signal. */
    uint64_t t0 = bench_now_ns();
    for (size_t p = 0; f->pids != NULL && p < f->nproc; p++) {
        while (f->pids[p] > 0 && bench_secs(t0, bench_now_ns()) < 10) {
            int status;
            if (waitpid(f->pids[p], &status, WNOHANG) != 0)
                f->pids[p] = 0;
            else
                bench_sleep_ns(5000000);
        }
        if (f->pids[p] > 0)
            bench_stop(f->pids[p]);
    }
    free(f->pids);
    if (f->c != NULL)
        munmap(f->c, f->shm_len);
    memset(f, 0, sizeof(*f));
}

double
bench_fleet_cpu(const bench_fleet_t *f)
{
    double cpu = 0;
    for (size_t p = 0; f->pids != NULL && p < f->nproc; p++)
        if (f->pids[p] > 0)
            cpu += bench_proc_cpu(f->pids[p]);
    return cpu;
}

void *
bench_flow_run(void *arg)
{
    bench_flow_t *f = arg;
    /* Join phase: subscriptions travel asynchronously, so probe until
     * every subscriber has seen a message (or 120 s pass: 10,000
     * connections arriving at once overflow the listen backlog, and the
     * kernel's SYN retries take their time). */
    uint64_t deadline = bench_now_ns() + 120000000000ull;
    while (bench_counters_min(f->counters, f->n) == 0) {
        if (atomic_load(f->stop) || bench_now_ns() > deadline) {
            atomic_store(&f->ready, -1);
            return NULL;
        }
        if ((f->err = f->send(f->ctx)) < 0) {
            atomic_store(&f->ready, -1);
            return NULL;
        }
        f->sent++;
        if (f->flush != NULL)
            f->flush(f->ctx);
        bench_sleep_ns(f->probe_ns > 0 ? f->probe_ns : 1000000);
    }
    /* Let the probes land, then count from here: messages sent before a
     * late subscriber joined never reach it, so track progress since. */
    bench_sleep_ns(50000000);
    uint64_t *base = calloc(f->n, sizeof(*base));
    if (base == NULL) {
        atomic_store(&f->ready, -1);
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++)
        base[i] = atomic_load(&f->counters[i].n);
    uint64_t sent0 = f->sent;
    atomic_store(&f->ready, 1);
    while (!atomic_load_explicit(f->stop, memory_order_relaxed)) {
        uint64_t lag_min = UINT64_MAX;
        for (size_t i = 0; i < f->n; i++) {
            uint64_t got = atomic_load_explicit(&f->counters[i].n,
                                                memory_order_relaxed) -
                           base[i];
            if (got < lag_min)
                lag_min = got;
        }
        uint64_t ahead = f->sent - sent0 - lag_min;
        if (ahead >= f->window) {
            atomic_fetch_add_explicit(&f->held, 1, memory_order_relaxed);
            if (f->flush != NULL)
                f->flush(f->ctx);
            bench_sleep_ns(20000);
            continue;
        }
        uint64_t batch = f->window - ahead;
        if (batch > 256)
            batch = 256;
        for (uint64_t b = 0; b < batch; b++) {
            if ((f->err = f->send(f->ctx)) < 0)
                goto out;
            f->sent++;
        }
    }
out:
    free(base);
    return NULL;
}

/* ------------------------------------------------------------ statistics */

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t
bench_percentile(uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), s_cmp_u64);
    double rank = ceil(p / 100.0 * (double)n);
    size_t idx = rank < 1 ? 0 : (size_t)rank - 1;
    return v[idx < n ? idx : n - 1];
}

/* -------------------------------------------------------------- report */

void
bench_section(const char *title)
{
    printf("\n== %s\n", title);
}

static void
s_value(char *out, size_t cap, double v)
{
    if (v != 0 && fabs(v) < 10)
        snprintf(out, cap, "%.3f", v);
    else if (fabs(v) < 1000)
        snprintf(out, cap, "%.1f", v);
    else
        snprintf(out, cap, "%.0f", v);
}

void
bench_figure(const char *name, double value, const char *unit)
{
    char v[32];
    s_value(v, sizeof(v), value);
    printf("  %-46s %12s %s\n", name, v, unit);
}

void
bench_ratio(const char *name, double value, const char *unit,
            const char *ref_name, double ref_value, double target,
            bool lower_is_better)
{
    char v[32];
    s_value(v, sizeof(v), value);
    double ratio = ref_value > 0 ? value / ref_value : 0;
    printf("  %-46s %12s %-6s = %7.3f x %s", name, v, unit, ratio, ref_name);
    if (target > 0) {
        bool ok = ref_value > 0 &&
                  (lower_is_better ? ratio <= target : ratio >= target);
        printf("  [target %s %.2f: %s]", lower_is_better ? "<=" : ">=", target,
               ok ? "MET" : "MISSED");
    }
    printf("\n");
}

void
bench_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("    ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* ------------------------------------------------------------ callgrind */

int
bench_callgrind_parse(const char *path, const char *fn, uint64_t *total,
                      uint64_t *fn_ir, uint64_t *fn_calls)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char line[4096];
    size_t fn_len = strlen(fn);
    bool in_call = false, cost_next = false;
    *total = *fn_ir = *fn_calls = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long a, b;
        if (cost_next) {
            /* "<position> <inclusive Ir>" after a calls= line */
            if (sscanf(line, "%llu %llu", &a, &b) == 2)
                *fn_ir += b;
            cost_next = false;
            continue;
        }
        if (strncmp(line, "cfn=", 4) == 0) {
            const char *name = line + 4;
            if (name[0] == '(') /* "(id) name" if strings are compressed */
                name = strchr(name, ' ') != NULL ? strchr(name, ' ') + 1 : name;
            in_call = strncmp(name, fn, fn_len) == 0
                      && (name[fn_len] == '\n' || name[fn_len] == '\0'
                          || name[fn_len] == '\'' || name[fn_len] == ' ');
        } else if (strncmp(line, "calls=", 6) == 0) {
            if (in_call && sscanf(line + 6, "%llu", &a) == 1) {
                *fn_calls += a;
                cost_next = true;
            }
            in_call = false;
        } else if (sscanf(line, "summary: %llu", &a) == 1
                   || sscanf(line, "totals: %llu", &a) == 1) {
            *total = a;
        }
    }
    fclose(f);
    return *total > 0 ? 0 : -ENODATA;
}

bool
bench_take_flag(int *argc, char **argv, const char *flag)
{
    for (int i = 1; i < *argc; i++)
        if (strcmp(argv[i], flag) == 0) {
            memmove(&argv[i], &argv[i + 1],
                    (size_t)(*argc - i) * sizeof(*argv));
            (*argc)--;
            return true;
        }
    return false;
}
