/*
 * cmd_sub.c - parley sub: print updates, or run a command for each.
 *
 * The command runs with execve() on a path resolved once at start, with
 * the update in PARLEY_* environment variables and as one JSON line on its
 * stdin: update text never passes through a shell. The child is prepared
 * entirely before fork() (argv, environment, pipe), because libzmq's
 * threads live in this process and the child may only make
 * async-signal-safe calls before execve().
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum {
    S_OPT_SINCE = CLI_OPT_FIRST_FREE,
    S_OPT_LAST,
    S_OPT_FEED,
    S_OPT_EXEC_TIMEOUT,
    S_OPT_EXEC_JOBS,
    S_OPT_HWM,
};

/* How often the main loop looks at signals and -W when idle. */
#define S_TICK_MS 500
/* ... and at the commands it runs, while some are running. */
#define S_EXEC_TICK_MS 20

static void
s_help(void)
{
    printf("usage: parley sub [OPTIONS] [--party P]... [--phase N]...\n"
           "                  [--negotiation N]... [--since SEQ | --last]\n"
           "                  [-C COUNT] [-W SECONDS] [--json | -F FORMAT]\n"
           "                  [--keyring FILE] [-- COMMAND [ARGS...]]\n"
           "\n"
           "Subscribe to parleyd and print each matching update, once and in\n"
           "seq order, as it is published. Updates missed on the feed (a\n"
           "reconnect, a slow reader) are fetched from the daemon's log; if the\n"
           "daemon no longer holds them, a line on stderr says so:\n"
           "  parley: gap: updates A-B are no longer held\n"
           "\n"
           "Filters:\n"
           "%s"
           "\n"
           "Where to start (default: updates published from now on):\n"
           "      --since SEQ     every held update from SEQ on, then live\n"
           "      --last          the current state first (for each negotiation,\n"
           "                      party and phase the update holding its state,\n"
           "                      each update once, with the parties whose state\n"
           "                      it holds: \"(current for P,Q)\", or\n"
           "                      \"current_for\" with --json), then live\n"
           "\n"
           "When to stop (default: at SIGINT or SIGTERM, with exit status 0):\n"
           "  -C, --count COUNT   after COUNT updates\n"
           "  -W, --wait SECONDS  after SECONDS, whatever arrived (exit status 0)\n"
           "\n"
           "Output:\n"
           "%s"
           "\n"
           "Checking:\n"
           "      --keyring FILE  re-verify each update against this keyring;\n"
           "                      without it the signature is still checked\n"
           "                      against the key that made it. An update that\n"
           "                      fails is reported on stderr and skipped.\n"
           "      --feed EP       feed endpoint (default: as the daemon says)\n"
           "      --rcvhwm N      feed receive queue limit, in messages\n"
           "\n"
           "Running a command:\n"
           "  -- COMMAND [ARGS]   run COMMAND (no shell) once per update, with\n"
           "                      the update as JSON on its stdin and\n"
           "                      in the environment: PARLEY_SEQ,\n"
           "                      PARLEY_NEGOTIATION, PARLEY_PARTIES (comma list),\n"
           "                      PARLEY_PHASE, PARLEY_STATUS, PARLEY_KIND,\n"
           "                      PARLEY_HEADLINE, PARLEY_BODY, PARLEY_LOCATION,\n"
           "                      PARLEY_REFERENCES, PARLEY_SIGNER (key id),\n"
           "                      PARLEY_SIGNER_NAME, PARLEY_ISSUED_AT,\n"
           "                      PARLEY_RECEIVED_AT. Nothing is printed on\n"
           "                      stdout then, unless --json or -F is given.\n"
           "      --exec-jobs N   run up to N commands at once (default 1: one\n"
           "                      at a time, in seq order; 1 to 64)\n"
           "      --exec-timeout SECONDS\n"
           "                      kill COMMAND and what it started (SIGKILL to\n"
           "                      its process group) after this long (default\n"
           "                      30). A command that fails (exit status not 0,\n"
           "                      a signal, the timeout) is reported on stderr\n"
           "                      (not with -q) and counted (-v prints the\n"
           "                      counts at the end); the subscription goes on\n"
           "\n"
           "Common options:\n"
           "%s"
           "\n"
           "Exit status: 0 when stopped by -C, -W or a signal; 1 usage error;\n"
           "2 the daemon refused the request; 3 no answer from the daemon or no\n"
           "heartbeat on its feed at start; 4 keyring file problem; 5 other\n"
           "error. If the daemon goes away later, sub says so on stderr\n"
           "(\"parley: EP: disconnected ...\"), moves to the next endpoint of\n"
           "the server list (the same one if it is alone) and keeps trying;\n"
           "\"parley: EP: connected\" when one is back.\n",
           cli_filter_help, cli_output_help, cli_common_help);
}

/* ----------------------------------------------------------------- exec */

/* Most commands --exec-jobs lets run at once. */
#define S_JOBS_MAX 64

/* One running command. A slot with pid 0 is free. */
typedef struct {
    pid_t pid;               /* the command (and its process group) */
    uint64_t seq;            /* the update it was started for */
    int64_t deadline;        /* CLOCK_MONOTONIC ms: SIGKILL then */
    int fd;                  /* write end of its stdin, -1 once closed */
    char *json;              /* its stdin: the update as one JSON line */
    size_t off, len;         /* bytes of json written, bytes in all */
    int killed;              /* SIGKILLed at the deadline */
    int termed;              /* SIGTERM passed on because we stop */
} s_job_t;

/* The command run per update, its running instances, and what they did. */
typedef struct {
    char **argv;             /* COMMAND and ARGS, from our argv */
    char *path;              /* COMMAND resolved against PATH */
    int timeout_ms;          /* --exec-timeout */
    int max_jobs;            /* --exec-jobs: commands running at once */
    s_job_t *jobs;           /* max_jobs slots */
    int running;             /* slots in use */
    unsigned long runs;      /* commands started (or tried) */
    unsigned long failures;  /* non-zero exit, signal, timeout, no exec */
} s_exec_t;

/* The variables we set; any of these inherited from our environment is
 * replaced, so a command never sees a stale one. */
static const char *const s_vars[] = {
    "PARLEY_SEQ", "PARLEY_NEGOTIATION", "PARLEY_PARTIES", "PARLEY_PHASE",
    "PARLEY_STATUS", "PARLEY_KIND", "PARLEY_HEADLINE", "PARLEY_BODY",
    "PARLEY_LOCATION", "PARLEY_REFERENCES", "PARLEY_SIGNER",
    "PARLEY_SIGNER_NAME", "PARLEY_ISSUED_AT", "PARLEY_RECEIVED_AT",
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

/*
 * Find COMMAND like execvp() would, once, before any fork: a name with a
 * slash is taken as it is; otherwise the first executable regular file
 * of that name in $PATH. Returns a heap string or NULL.
 */
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
s_build_env(const parley_delivery_t *d, size_t *first_own)
{
    const parley_update_t *u = parley_delivery_update(d);
    char parties[PARLEY_PARTIES_MAX * (PARLEY_SLUG_MAX + 1) + 1];
    char refs[PARLEY_REFERENCES_MAX * 21 + 1];
    char seq[24], phase[8], issued[24], received[24];
    size_t n = 0, k = 0, used = 0;
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
    refs[0] = '\0';
    for (size_t i = 0; i < parley_update_reference_count(u); i++) {
        int w = snprintf(refs + used, sizeof(refs) - used, "%s%llu",
                         i > 0 ? "," : "",
                         (unsigned long long)parley_update_reference(u, i));
        if (w < 0 || (size_t)w >= sizeof(refs) - used)
            break;
        used += (size_t)w;
    }
    snprintf(seq, sizeof(seq), "%llu",
             (unsigned long long)parley_delivery_seq(d));
    snprintf(phase, sizeof(phase), "%u", (unsigned)parley_update_phase(u));
    snprintf(issued, sizeof(issued), "%lld",
             (long long)parley_update_issued_at(u));
    snprintf(received, sizeof(received), "%lld",
             (long long)parley_delivery_received_at(d));
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
        || s_setvar(env, &k, "PARLEY_RECEIVED_AT", received) < 0) {
        s_free_strings(env, *first_own);
        return NULL;
    }
    return env;
}

static int64_t
s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Send what is left of a job's stdin without blocking; close it when all
 * is written or the command stopped reading (EPIPE is not a failure: the
 * command's exit status says how it went).
 */
static void
s_job_feed(s_job_t *j)
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
s_job_signal(const s_job_t *j, int sig)
{
    if (kill(-j->pid, sig) < 0)
        kill(j->pid, sig); /* not yet its own group leader */
}

/*
 * Account for a job that ended with wait status `status` (-1: lost), say
 * why it failed unless -q, and free its slot.
 */
static void
s_job_done(s_exec_t *x, const cli_common_t *c, s_job_t *j, int status)
{
    unsigned long long seq = (unsigned long long)j->seq;
    if (j->fd >= 0)
        close(j->fd);
    free(j->json);
    if (j->killed) {
        x->failures++;
        cli_warn(c, "#%llu: %s killed after %d.%03d s", seq, x->argv[0],
                 x->timeout_ms / 1000, x->timeout_ms % 1000);
    } else if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        /* success */
    } else if (status >= 0 && WIFEXITED(status)) {
        x->failures++;
        cli_warn(c, "#%llu: %s exited with status %d", seq, x->argv[0],
                 WEXITSTATUS(status));
    } else if (status >= 0 && WIFSIGNALED(status)) {
        x->failures++;
        cli_warn(c, "#%llu: %s killed by signal %d", seq, x->argv[0],
                 WTERMSIG(status));
    } else {
        x->failures++;
        cli_warn(c, "#%llu: %s: lost track of the command", seq, x->argv[0]);
    }
    memset(j, 0, sizeof(*j));
    j->fd = -1;
    x->running--;
}

/*
 * Look after the running jobs once, without blocking: feed their stdin,
 * reap those that ended, SIGKILL those past their deadline, and pass a
 * stop request on as SIGTERM. Returns the ms until the nearest deadline
 * (INT32_MAX with nothing running).
 */
static int64_t
s_exec_poll(s_exec_t *x, const cli_common_t *c)
{
    int64_t now = s_mono_ms(), next = INT32_MAX;
    for (int i = 0; i < x->max_jobs; i++) {
        s_job_t *j = &x->jobs[i];
        if (j->pid <= 0)
            continue;
        s_job_feed(j);
        int status = 0;
        pid_t r = waitpid(j->pid, &status, WNOHANG);
        if (r < 0 && errno == EINTR)
            r = 0;
        if (r == j->pid || r < 0) {
            s_job_done(x, c, j, r < 0 ? -1 : status);
            continue;
        }
        if (now >= j->deadline && !j->killed) {
            s_job_signal(j, SIGKILL);
            j->killed = 1;
        } else if (cli_stop && !j->termed && !j->killed) {
            s_job_signal(j, SIGTERM);
            j->termed = 1;
        }
        /* a killed job is reaped at the next poll, right away */
        int64_t left = j->killed ? 0 : j->deadline - now;
        if (left < next)
            next = left;
    }
    return next;
}

/*
 * Wait until at most `limit` commands are running. Every command ends by
 * its deadline, so this returns within --exec-timeout.
 */
static void
s_exec_wait(s_exec_t *x, const cli_common_t *c, int limit)
{
    for (int nap = 1;;) {
        int64_t left = s_exec_poll(x, c);
        if (x->running <= limit)
            return;
        if (left > nap)
            left = nap;
        struct timespec ts = { 0, (long)(left > 0 ? left : 1) * 1000000L };
        nanosleep(&ts, NULL);
        if (nap < 50)
            nap *= 2;
    }
}

/*
 * Start the command for one delivery in a free slot (the caller makes
 * sure there is one). The command becomes the leader of its own process
 * group, so that a timeout kills what it started too. A command that
 * cannot be started is counted as failed and reported.
 */
static void
s_exec_start(s_exec_t *x, const cli_common_t *c, const parley_delivery_t *d)
{
    size_t first_own = 0;
    int fds[2];
    char *json = parley_delivery_to_json(d);
    char **env = s_build_env(d, &first_own);
    char failmsg[256];
    int failmsg_len;
    s_job_t *j = NULL;

    x->runs++;
    for (int i = 0; i < x->max_jobs && j == NULL; i++)
        if (x->jobs[i].pid <= 0)
            j = &x->jobs[i];
    if (j == NULL || json == NULL || env == NULL) {
        cli_warn(c, "#%llu: cannot prepare the command: %s",
                 (unsigned long long)parley_delivery_seq(d),
                 j == NULL ? "no free slot" : "out of memory");
        goto fail;
    }
    failmsg_len = snprintf(failmsg, sizeof(failmsg),
                           "parley: cannot execute %s\n", x->path);
    if (failmsg_len < 0 || (size_t)failmsg_len >= sizeof(failmsg))
        failmsg_len = (int)strlen(failmsg);
    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_warn(c, "#%llu: pipe: %s",
                 (unsigned long long)parley_delivery_seq(d),
                 strerror(errno));
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
        cli_warn(c, "#%llu: fork: %s",
                 (unsigned long long)parley_delivery_seq(d),
                 strerror(errno));
        goto fail;
    }
    /* Both sides set the group, so it is in place whichever runs first;
     * the child may already have exec'd (EACCES), which is as good. */
    setpgid(pid, pid);
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    size_t jlen = strlen(json);
    json[jlen] = '\n'; /* one line, terminated; the NUL is not sent */
    *j = (s_job_t){ .pid = pid,
                    .seq = parley_delivery_seq(d),
                    .deadline = s_mono_ms() + x->timeout_ms,
                    .fd = fds[1],
                    .json = json,
                    .len = jlen + 1 };
    x->running++;
    s_job_feed(j);
    return;
fail:
    x->failures++;
    free(json);
    if (env != NULL)
        s_free_strings(env, first_own);
}

/* ------------------------------------------------------------------ run */

/* The command, with the filters made on the way in *filter_opts. */
static int
s_run(cli_common_t *c, int argc, char **argv, cli_filter_t *filter_opts)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        CLI_FILTER_LONG,
        CLI_OUTPUT_FORMAT_LONG,
        { "since", required_argument, NULL, S_OPT_SINCE },
        { "last", no_argument, NULL, S_OPT_LAST },
        { "count", required_argument, NULL, 'C' },
        { "wait", required_argument, NULL, 'W' },
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { "feed", required_argument, NULL, S_OPT_FEED },
        { "rcvhwm", required_argument, NULL, S_OPT_HWM },
        { "exec-timeout", required_argument, NULL, S_OPT_EXEC_TIMEOUT },
        { "exec-jobs", required_argument, NULL, S_OPT_EXEC_JOBS },
        { NULL, 0, NULL, 0 },
    };
    cli_output_t out = { .mode = CLI_OUT_LINE };
    parley_sub_options_t sopt = PARLEY_SUB_OPTIONS_INIT;
    s_exec_t exec = { .timeout_ms = 30000, .max_jobs = 1 };
    const char *keyring_path = NULL;
    uint64_t count = 0, v64;
    int wait_ms = 0, since_given = 0, opt;

    /* "+": the command after "--" (or the first non-option) is not ours */
    while ((opt = getopt_long(argc, argv, "+:" CLI_COMMON_SHORT "F:C:W:",
                              longopts, NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc == 0)
            rc = cli_filter_option(filter_opts, "sub", opt, optarg);
        if (rc == 0)
            rc = cli_output_option(&out, "sub", opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        switch (opt) {
        case 'h':
            s_help();
            return CLI_EXIT_OK;
        case S_OPT_SINCE:
            if (cli_parse_u64(optarg, &v64) < 0)
                return cli_usage_error("sub", "--since: \"%s\" is not a seq",
                                       optarg);
            sopt.start = PARLEY_START_SEQ;
            sopt.since_seq = v64 > 0 ? v64 : 1;
            since_given = 1;
            break;
        case S_OPT_LAST:
            sopt.start = PARLEY_START_LAST;
            break;
        case 'C':
            if (cli_parse_u64(optarg, &count) < 0 || count == 0)
                return cli_usage_error("sub", "-C: \"%s\" is not a count above 0",
                                       optarg);
            break;
        case 'W':
            if (cli_parse_seconds(optarg, 0, &wait_ms) < 0)
                return cli_usage_error("sub", "-W: \"%s\" is not a number of "
                                              "seconds above 0",
                                       optarg);
            break;
        case CLI_OPT_KEYRING:
            keyring_path = optarg;
            break;
        case S_OPT_FEED:
            sopt.feed = optarg;
            break;
        case S_OPT_HWM:
            if (cli_parse_u64(optarg, &v64) < 0 || v64 == 0 || v64 > 1000000000)
                return cli_usage_error("sub", "--rcvhwm: \"%s\" is not a count "
                                              "above 0",
                                       optarg);
            sopt.rcvhwm = (int)v64;
            break;
        case S_OPT_EXEC_TIMEOUT:
            if (cli_parse_seconds(optarg, 0, &exec.timeout_ms) < 0)
                return cli_usage_error("sub", "--exec-timeout: \"%s\" is not a "
                                              "number of seconds above 0",
                                       optarg);
            break;
        case S_OPT_EXEC_JOBS:
            if (cli_parse_u64(optarg, &v64) < 0 || v64 == 0
                || v64 > S_JOBS_MAX)
                return cli_usage_error("sub", "--exec-jobs: \"%s\" is not a "
                                              "count from 1 to %d",
                                       optarg, S_JOBS_MAX);
            exec.max_jobs = (int)v64;
            break;
        default:
            return cli_option_error("sub", opt, argv);
        }
    }
    if (since_given && sopt.start == PARLEY_START_LAST)
        return cli_usage_error("sub", "--since and --last exclude each other");
    if (cli_filter_done(filter_opts, "sub") < 0)
        return CLI_EXIT_USAGE;
    if (optind < argc) {
        exec.argv = argv + optind;
        if ((exec.path = s_resolve(exec.argv[0])) == NULL) {
            cli_error("%s: command not found or not executable", exec.argv[0]);
            return CLI_EXIT_USAGE;
        }
        if ((exec.jobs = calloc((size_t)exec.max_jobs, sizeof(*exec.jobs)))
            == NULL) {
            cli_error("out of memory");
            free(exec.path);
            return CLI_EXIT_OTHER;
        }
        if (!out.given)
            out.mode = CLI_OUT_NONE;
    }

    parley_keyring_t *ring = NULL;
    int status = cli_load_keyring(keyring_path, &ring);
    if (status != 0) {
        free(exec.jobs);
        free(exec.path);
        return status;
    }
    cli_filter_sub(filter_opts, &sopt);
    sopt.keyring = ring;
    cli_signals_install();

    parley_sub_t *sub = cli_sub_new(c, &sopt);
    if (sub == NULL) {
        int err = -errno;
        if (err == PARLEY_ETIMEOUT) {
            cli_error("no answer from %s, or no heartbeat on its feed, within "
                      "%d.%03d s (is parleyd running?)",
                      c->server, c->timeout_ms / 1000, c->timeout_ms % 1000);
            status = CLI_EXIT_NOANSWER;
        } else if (err == -EINTR && cli_stop) {
            status = CLI_EXIT_OK;
        } else {
            status = cli_fail(c, NULL, err);
        }
        goto done;
    }
    cli_info(c, "subscribed to %s", parley_sub_endpoint(sub));

    uint64_t delivered = 0, gaps = 0, rejected = 0;
    int64_t stop_at = wait_ms > 0 ? s_mono_ms() + wait_ms : -1;
    int warned_silent = 0, disconnected = 0;
    while (!cli_stop) {
        const parley_event_t *ev;
        int tick = S_TICK_MS;
        if (exec.running > 0) {
            /* commands run beside us: look after them between events */
            int64_t left = s_exec_poll(&exec, c);
            tick = left < S_EXEC_TICK_MS ? (int)(left > 0 ? left : 0)
                                         : S_EXEC_TICK_MS;
        }
        if (stop_at >= 0) {
            int64_t left = stop_at - s_mono_ms();
            if (left <= 0)
                break;
            if (left < tick)
                tick = (int)left;
        }
        int rc = parley_sub_next(sub, tick, &ev);
        if (rc == 0 || rc == -EINTR)
            continue;
        if (rc == PARLEY_ETIMEOUT || rc == PARLEY_EUNAVAILABLE
            || rc == PARLEY_ERATELIMITED) {
            if (!warned_silent)
                cli_warn(c, "%s: %s; still trying", parley_sub_endpoint(sub),
                         parley_strerror(rc));
            warned_silent = 1;
            continue;
        }
        if (rc < 0) {
            status = cli_fail(c, NULL, rc);
            break;
        }
        if (warned_silent) {
            cli_warn(c, "%s: answering again", parley_sub_endpoint(sub));
            warned_silent = 0;
        }
        switch (parley_event_type(ev)) {
        case PARLEY_EVENT_CONNECTED:
            if (disconnected)
                cli_warn(c, "%s: connected", parley_event_endpoint(ev));
            else
                cli_info(c, "%s: connected", parley_event_endpoint(ev));
            disconnected = 0;
            continue;
        case PARLEY_EVENT_DISCONNECTED:
            cli_warn(c, "%s: disconnected (%s); trying %s",
                     parley_event_endpoint(ev),
                     parley_event_code(ev) == PARLEY_ETIMEOUT
                         ? "no heartbeat"
                         : "connection closed",
                     parley_sub_endpoint(sub));
            disconnected = 1;
            continue;
        case PARLEY_EVENT_CAUGHT_UP:
            cli_info(c, "caught up at seq %llu: live from here",
                     (unsigned long long)parley_event_seq(ev));
            continue;
        case PARLEY_EVENT_GAP:
            gaps++;
            cli_warn(c, "gap: updates %llu-%llu are no longer held",
                     (unsigned long long)parley_event_seq(ev),
                     (unsigned long long)parley_event_seq_last(ev));
            continue;
        case PARLEY_EVENT_REJECTED:
            rejected++;
            cli_warn(c, "#%llu failed verification: %s: %s",
                     (unsigned long long)parley_event_seq(ev),
                     parley_error_name(parley_event_code(ev)),
                     parley_strerror(parley_event_code(ev)));
            continue;
        case PARLEY_EVENT_DELIVERY:
            break;
        default:
            continue;
        }
        const parley_delivery_t *d = parley_event_delivery(ev);
        delivered++;
        rc = cli_print_event(stdout, &out, ev);
        if (rc == -EPIPE)
            break; /* the reader is gone: nothing left to do */
        if (rc < 0) {
            cli_error("writing output: %s", strerror(-rc));
            status = CLI_EXIT_OTHER;
            break;
        }
        if (exec.argv != NULL) {
            /* With one job at a time this waits for the command to end,
             * so commands run in the order of the updates. */
            s_exec_start(&exec, c, d);
            s_exec_wait(&exec, c, exec.max_jobs - 1);
        }
        if (count > 0 && delivered >= count)
            break;
    }
    if (exec.argv != NULL) {
        s_exec_wait(&exec, c, 0); /* the commands still running finish */
        cli_info(c, "%llu updates, %llu gaps, %llu failed verification; "
                    "%lu commands run, %lu failed",
                 (unsigned long long)delivered, (unsigned long long)gaps,
                 (unsigned long long)rejected, exec.runs, exec.failures);
    } else {
        cli_info(c, "%llu updates, %llu gaps, %llu failed verification",
                 (unsigned long long)delivered, (unsigned long long)gaps,
                 (unsigned long long)rejected);
    }
done:
    parley_sub_destroy(&sub);
    parley_keyring_destroy(&ring);
    free(exec.jobs);
    free(exec.path);
    return status;
}

int
cmd_sub(cli_common_t *c, int argc, char **argv)
{
    return cli_with_filters(c, argc, argv, s_run);
}
