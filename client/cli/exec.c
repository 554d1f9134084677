/*
 * exec.c - the command handler of parley sub (exec.h).
 */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The variables we set; any of these inherited from our environment is
 * replaced, so a command never sees a stale one. */
static const char *const s_vars[] = {
    "PARLEY_SEQ", "PARLEY_NEGOTIATION", "PARLEY_PARTIES", "PARLEY_PHASE",
    "PARLEY_STATUS", "PARLEY_KIND", "PARLEY_HEADLINE", "PARLEY_BODY",
    "PARLEY_LOCATION", "PARLEY_REFERENCES", "PARLEY_SIGNER",
    "PARLEY_SIGNER_NAME", "PARLEY_ISSUED_AT", "PARLEY_RECEIVED_AT",
    "PARLEY_ATTEMPT", "PARLEY_IDEMPOTENCY_KEY",
};
#define S_N_VARS (sizeof(s_vars) / sizeof(s_vars[0]))

/* 1 if the environment entry e ("NAME=value") is one of s_vars. */
static int
s_is_our_var(const char *e)
{
    for (size_t i = 0; i < S_N_VARS; i++) {
        size_t n = strlen(s_vars[i]);
        if (strncmp(e, s_vars[i], n) == 0 && e[n] == '=')
            return 1;
    }
    return 0;
}

/* Find COMMAND like execvp() would, once, before any fork. Returns a heap
 * string or NULL. */
static char *
s_resolve(const char *cmd)
{
    struct stat st;
    if (strchr(cmd, '/') != NULL) {
        if (stat(cmd, &st) == 0 && S_ISREG(st.st_mode) && access(cmd, X_OK) == 0)
            return strdup(cmd);
        return NULL;
    }
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        int dlen = (int)(colon != NULL ? (size_t)(colon - p) : strlen(p));
        char *full = NULL;
        /* an empty PATH entry means the current directory */
        if (asprintf(&full, "%.*s/%s", dlen > 0 ? dlen : 1, dlen > 0 ? p : ".",
                     cmd) < 0)
            return NULL;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)
            && access(full, X_OK) == 0)
            return full;
        free(full);
        if (colon == NULL)
            return NULL;
        p = colon + 1;
    }
}

/* Free a NULL-terminated array of heap strings from index from on. */
static void
s_free_strings(char **v, size_t from)
{
    for (size_t i = from; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* Store "name=value" in a new heap string at env[*k]. 0 or -1. */
static int
s_setvar(char **env, size_t *k, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *e = malloc(n + 1 + v + 1);
    if (e == NULL)
        return -1;
    memcpy(e, name, n);
    e[n] = '=';
    memcpy(e + n + 1, value, v + 1);
    env[(*k)++] = e;
    return 0;
}

/*
 * Build the command's environment: ours without stale PARLEY_* values,
 * then the update's. Returns the array (entries from index *first_own on
 * are heap strings of ours) or NULL.
 */
static char **
s_build_env(const cli_job_t *job, size_t *first_own)
{
    const parley_delivery_t *d = job->d;
    const parley_update_t *u = parley_delivery_update(d);
    char parties[PARLEY_PARTIES_MAX * (PARLEY_SLUG_MAX + 1) + 1];
    char refs[CLI_REFS_CHARS];
    char seq[24], phase[8], issued[24], received[24], attempt[16];
    size_t n = 0, k = 0;
    while (environ != NULL && environ[n] != NULL)
        n++;
    char **env = calloc(n + S_N_VARS + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!s_is_our_var(environ[i]))
            env[k++] = environ[i];
    *first_own = k;

    cli_parties(u, parties, sizeof(parties));
    cli_references(u, "", refs, sizeof(refs));
    snprintf(seq, sizeof(seq), "%llu",
             (unsigned long long)parley_delivery_seq(d));
    snprintf(phase, sizeof(phase), "%u", (unsigned)parley_update_phase(u));
    snprintf(issued, sizeof(issued), "%lld",
             (long long)parley_update_issued_at(u));
    snprintf(received, sizeof(received), "%lld",
             (long long)parley_delivery_received_at(d));
    snprintf(attempt, sizeof(attempt), "%u", job->attempts);
    const char *status = parley_status_name(parley_update_status(u));
    const char *kind = parley_kind_name(parley_update_kind(u));
    if (s_setvar(env, &k, "PARLEY_SEQ", seq) < 0
        || s_setvar(env, &k, "PARLEY_NEGOTIATION",
                    parley_update_negotiation(u)) < 0
        || s_setvar(env, &k, "PARLEY_PARTIES", parties) < 0
        || s_setvar(env, &k, "PARLEY_PHASE", phase) < 0
        || s_setvar(env, &k, "PARLEY_STATUS", status != NULL ? status : "unknown") < 0
        || s_setvar(env, &k, "PARLEY_KIND", kind != NULL ? kind : "unknown") < 0
        || s_setvar(env, &k, "PARLEY_HEADLINE", parley_update_headline(u)) < 0
        || s_setvar(env, &k, "PARLEY_BODY", parley_update_body(u)) < 0
        || s_setvar(env, &k, "PARLEY_LOCATION", parley_update_location(u)) < 0
        || s_setvar(env, &k, "PARLEY_REFERENCES", refs) < 0
        || s_setvar(env, &k, "PARLEY_SIGNER", parley_delivery_signer_id(d)) < 0
        || s_setvar(env, &k, "PARLEY_SIGNER_NAME",
                    parley_delivery_signer_name(d)) < 0
        || s_setvar(env, &k, "PARLEY_ISSUED_AT", issued) < 0
        || s_setvar(env, &k, "PARLEY_RECEIVED_AT", received) < 0
        || s_setvar(env, &k, "PARLEY_ATTEMPT", attempt) < 0
        || s_setvar(env, &k, "PARLEY_IDEMPOTENCY_KEY", job->key) < 0) {
        s_free_strings(env, *first_own);
        return NULL;
    }
    return env;
}

/*
 * Send what is left of a job's stdin without blocking; close it when all
 * is written or the command stopped reading (EPIPE is not a failure: the
 * command's exit status says how it went).
 */
static void
s_job_feed(cli_exec_job_t *j)
{
    while (j->fd >= 0 && j->off < j->len) {
        ssize_t w = write(j->fd, j->json + j->off, j->len - j->off);
        if (w > 0) {
            j->off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return; /* the pipe is full: more at the next poll */
        break;
    }
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    free(j->json);
    j->json = NULL;
}

/* Signal a job's whole process group (a shell's children too). */
static void
s_job_signal(const cli_exec_job_t *j, int sig)
{
    if (kill(-j->pid, sig) < 0)
        kill(j->pid, sig); /* not yet its own group leader */
}

/* Free a slot's buffers; it is free afterwards. */
static void
s_job_clear(cli_exec_job_t *j)
{
    if (j->fd >= 0)
        close(j->fd);
    free(j->json);
    memset(j, 0, sizeof(*j));
    j->fd = -1;
}

int
cli_exec_init(cli_exec_t *x, char **argv, int timeout_ms, int max_jobs)
{
    memset(x, 0, sizeof(*x));
    x->argv = argv;
    x->timeout_ms = timeout_ms;
    x->max_jobs = max_jobs;
    if ((x->path = s_resolve(argv[0])) == NULL)
        return errno == ENOMEM ? -ENOMEM : -ENOENT;
    if ((x->jobs = calloc((size_t)max_jobs, sizeof(*x->jobs))) == NULL) {
        free(x->path);
        x->path = NULL;
        return -ENOMEM;
    }
    for (int i = 0; i < max_jobs; i++)
        x->jobs[i].fd = -1;
    return 0;
}

void
cli_exec_free(cli_exec_t *x)
{
    for (int i = 0; x->jobs != NULL && i < x->max_jobs; i++) {
        cli_exec_job_t *j = &x->jobs[i];
        if (j->pid > 0) {
            s_job_signal(j, SIGKILL);
            while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        s_job_clear(j);
    }
    free(x->jobs);
    free(x->path);
    x->jobs = NULL;
    x->path = NULL;
}

/* Start the command for one attempt in slot i. */
static int
s_start(void *self, int i, const cli_job_t *job, char *err, size_t cap)
{
    cli_exec_t *x = self;
    cli_exec_job_t *j = &x->jobs[i];
    size_t first_own = 0;
    int fds[2];
    char failmsg[256];
    int failmsg_len;
    char *json = parley_delivery_to_json(job->d);
    char **env = s_build_env(job, &first_own);

    x->runs++;
    if (json == NULL || env == NULL) {
        snprintf(err, cap, "cannot prepare %s: out of memory", x->argv[0]);
        goto fail;
    }
    failmsg_len = snprintf(failmsg, sizeof(failmsg),
                           "parley: cannot execute %s\n", x->path);
    if (failmsg_len < 0 || (size_t)failmsg_len >= sizeof(failmsg))
        failmsg_len = (int)strlen(failmsg);
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        goto fail;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: async-signal-safe calls only. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &dfl, NULL); /* we ignore it; the command must not */
        sigaction(SIGUSR1, &dfl, NULL);
        setpgid(0, 0);
        if (fds[0] == STDIN_FILENO) {
            /* already in place (our stdin was closed): keep it open */
            if (fcntl(fds[0], F_SETFD, 0) < 0)
                _exit(127);
        } else if (dup2(fds[0], STDIN_FILENO) < 0) {
            _exit(127);
        }
        execve(x->path, x->argv, env);
        if (write(STDERR_FILENO, failmsg, (size_t)failmsg_len) < 0) {
            /* nothing more to do */
        }
        _exit(127);
    }
    close(fds[0]);
    s_free_strings(env, first_own);
    env = NULL;
    if (pid < 0) {
        close(fds[1]);
        snprintf(err, cap, "fork: %s", strerror(errno));
        goto fail;
    }
    /* Both sides set the group, so it is in place whichever runs first;
     * the child may already have exec'd (EACCES), which is as good. */
    setpgid(pid, pid);
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    size_t jlen = strlen(json);
    json[jlen] = '\n'; /* one line, terminated; the NUL is not sent */
    *j = (cli_exec_job_t){ .pid = pid,
                           .deadline = cli_mono_ms() + x->timeout_ms,
                           .fd = fds[1],
                           .json = json,
                           .len = jlen + 1 };
    s_job_feed(j);
    return 0;
fail:
    free(json);
    if (env != NULL)
        s_free_strings(env, first_own);
    return -1;
}

/* Look at the command of slot i without blocking. */
static int
s_poll(void *self, int i, char *err, size_t cap, int64_t *hint_ms)
{
    cli_exec_t *x = self;
    cli_exec_job_t *j = &x->jobs[i];
    int status = 0;
    *hint_ms = 0;
    s_job_feed(j);
    pid_t r = waitpid(j->pid, &status, WNOHANG);
    if (r < 0 && errno == EINTR)
        r = 0;
    if (r == 0) {
        if (cli_mono_ms() >= j->deadline && !j->killed) {
            s_job_signal(j, SIGKILL);
            j->killed = 1;
        }
        return 0;
    }
    int rc = -1;
    if (r < 0)
        snprintf(err, cap, "%s: lost track of the command", x->argv[0]);
    else if (j->killed)
        snprintf(err, cap, "%s killed after %d.%03d s", x->argv[0],
                 x->timeout_ms / 1000, x->timeout_ms % 1000);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 1;
    else if (WIFEXITED(status))
        snprintf(err, cap, "%s exited with status %d", x->argv[0],
                 WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(err, cap, "%s killed by signal %d", x->argv[0],
                 WTERMSIG(status));
    s_job_clear(j);
    return rc;
}

static void
s_stop(void *self, int i)
{
    cli_exec_t *x = self;
    cli_exec_job_t *j = &x->jobs[i];
    if (j->pid > 0 && !j->termed && !j->killed) {
        s_job_signal(j, SIGTERM);
        j->termed = 1;
    }
}

/* Commands give no descriptor to wait on: look at them every 20 ms, and
 * at once for a killed one (it is reaped right away). */
static int
s_timeout(void *self)
{
    cli_exec_t *x = self;
    int64_t now = cli_mono_ms(), next = 20;
    for (int i = 0; i < x->max_jobs; i++) {
        const cli_exec_job_t *j = &x->jobs[i];
        if (j->pid <= 0)
            continue;
        int64_t left = j->killed ? 0 : j->deadline - now;
        if (left < next)
            next = left > 0 ? left : 0;
    }
    return (int)next;
}

static const char *
s_name(void *self)
{
    cli_exec_t *x = self;
    return x->path;
}

const cli_handler_ops_t cli_exec_ops = {
    .start = s_start,
    .poll = s_poll,
    .stop = s_stop,
    .timeout = s_timeout,
    .name = s_name,
};
