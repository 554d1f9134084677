/*
 * main.c - parleyd's entry point: arguments, config, the keyring (or a
 * demo one on first start), signals; then the server loop (server.c).
 */
#include "backbone.h"
#include "config.h"
#include "heap.h"
#include "log.h"
#include "parley.h"
#include "server.h"
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: parleyd [-c FILE] [--api EP] [--feed EP] [--state-dir DIR]\n"
            "               [--keyring FILE] [--max-clock-skew SECONDS] "
            "[--no-fsync]\n"
            "               [--pid-file FILE] [--backbone URLS\n"
            "               [--backbone-stream NAME] [--backbone-replicas N]]\n"
            "       parleyd [-c FILE] [--state-dir DIR] --reload [--pid PID]\n"
            "               [--log-level error|warn|info|debug] [--version] "
            "[--help]\n"
            "\n"
            "Verify, store and broadcast signed negotiation-status updates.\n"
            "\n"
            "  -c, --config FILE        read settings from FILE (key value "
            "lines)\n"
            "      --api EP             api endpoint to bind (default %s)\n"
            "      --feed EP            feed endpoint to bind (default %s)\n"
            "      --state-dir DIR      log and keys (default %s)\n"
            "      --keyring FILE       trusted signers (default "
            "STATE_DIR/keyring;\n"
            "                           a demo one is made if that is "
            "missing)\n"
            "      --max-clock-skew S   accepted issued_at drift in seconds "
            "(default 300)\n"
            "      --no-fsync           do not fdatasync before acking "
            "(tests only)\n"
            "      --log-level L        error, warn, info (default) or debug\n"
            "      --pid-file FILE      write the pid to FILE while running\n"
            "                           (default STATE_DIR/parleyd.pid)\n"
            "      --reload             ask the running parleyd (--pid PID, or\n"
            "                           the one in pid_file of -c FILE or\n"
            "                           --state-dir DIR) to reload, wait\n"
            "                           for its answer and exit 0 if it took\n"
            "                           effect, 1 if it was refused (the reason\n"
            "                           is printed), 3 if no answer came\n"
            "      --backbone URLS      cluster mode: the NATS JetStream "
            "servers,\n"
            "                           nats://h1:4222,nats://h2:4222 "
            "(docs/cluster.md)\n"
            "      --backbone-stream N  the stream (default PARLEY)\n"
            "      --backbone-replicas N  its replicas, 1..5 (default 3)\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "Flags override the config file. SIGHUP reloads the keyring, the "
            "CURVE\nallow-list (curve_clients) and the log level.\n",
            PD_CONFIG_DEFAULT_API, PD_CONFIG_DEFAULT_FEED,
            PD_CONFIG_DEFAULT_STATE_DIR);
}

/* ---------------------------------------------------------- state, demo */

/* mkdir -p with mode for each directory made. Returns 0 or -errno. */
static int
s_mkdirs(const char *path, mode_t mode)
{
    char buf[PD_CONFIG_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(buf, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * The public key of the demo key: always derived from demo.key itself.
 * demo.key.pub, if there, must be that key, or the start is refused: a
 * demo.key.pub put there on its own must not become a key the demo
 * keyring trusts for everything.
 */
static int
s_demo_public(const char *key_path, const char *pub_path,
              uint8_t pk[PARLEY_PUBLICKEY_BYTES])
{
    parley_key_t *key = parley_key_load(key_path);
    if (key == NULL) {
        int rc = -errno;
        pd_log(PD_LOG_ERROR,
               "demo key %s: %s; remove it and %s to have a new one made",
               key_path, parley_strerror(rc), pub_path);
        return rc;
    }
    parley_key_public(key, pk);
    parley_key_destroy(&key);
    uint8_t listed[PARLEY_PUBLICKEY_BYTES];
    int rc = parley_pubkey_load(pub_path, listed);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0 && sodium_memcmp(listed, pk, sizeof(listed)) != 0)
        rc = PARLEY_EKEYFILE;
    if (rc < 0)
        pd_log(PD_LOG_ERROR,
               "%s is not the public half of %s (%s): refusing to trust it; "
               "remove both to have a new demo key made, or name a keyring",
               pub_path, key_path,
               rc == PARLEY_EKEYFILE ? "a different key"
                                     : parley_strerror(rc));
    return rc;
}

/*
 * First start without a keyring: make a demo key pair in the state dir and
 * a keyring that trusts it for everything. A demo key left by an earlier
 * start is reused.
 */
static int
s_make_demo(const pd_config_t *cfg)
{
    char key_path[PD_CONFIG_PATH_MAX + 16], pub_path[PD_CONFIG_PATH_MAX + 16];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    snprintf(key_path, sizeof(key_path), "%s/demo.key", cfg->state_dir);
    snprintf(pub_path, sizeof(pub_path), "%s/demo.key.pub", cfg->state_dir);

    parley_key_t *key = parley_key_generate();
    if (key == NULL)
        return -errno;
    int rc = parley_key_save(key, key_path, "parleyd demo key", 0);
    parley_key_destroy(&key);
    /* Like everything parleyd makes, readable by its user alone. */
    if (rc == 0 && chmod(pub_path, 0600) != 0)
        rc = -errno;
    if (rc < 0 && rc != -EEXIST) {
        pd_log(PD_LOG_ERROR, "cannot make the demo key %s: %s", key_path,
               parley_error_name(rc));
        return rc;
    }
    if ((rc = s_demo_public(key_path, pub_path, pk)) < 0)
        return rc;

    char b64[45], id[PARLEY_KEYID_CHARS + 1], text[512];
    parley_pubkey_format(pk, b64);
    parley_key_id(pk, id);
    snprintf(text, sizeof(text),
             "# parley keyring: NAME PUBKEY negotiations=LIST parties=LIST "
             "phases=LIST\n"
             "# Made by parleyd for a first try: it trusts the demo key for "
             "everything.\n"
             "# Replace it with your signers' keys, then send parleyd "
             "SIGHUP.\n"
             "demo %s negotiations=* parties=* phases=*\n",
             b64);
    if ((rc = pd_trust_write_atomic(cfg->keyring, text)) < 0) {
        pd_log(PD_LOG_ERROR, "cannot write the keyring %s: %s", cfg->keyring,
               parley_error_name(rc));
        return rc;
    }
    pd_log(PD_LOG_INFO,
           "no keyring yet: made demo key %s (key id %s) and keyring %s "
           "trusting it for everything",
           key_path, id, cfg->keyring);

    return 0;
}

/*
 * The endpoint a client on this machine uses for the bound endpoint ep:
 * a wildcard host (0.0.0.0, [::]) becomes the loopback address.
 */
static void
s_client_endpoint(const char *ep, char *out, size_t cap)
{
    static const struct {
        const char *prefix, *loopback;
    } any[] = { { "tcp://0.0.0.0:", "tcp://127.0.0.1:" },
                { "tcp://*:", "tcp://127.0.0.1:" },
                { "tcp://[::]:", "tcp://[::1]:" } };
    for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++) {
        size_t n = strlen(any[i].prefix);
        if (strncmp(ep, any[i].prefix, n) == 0) {
            snprintf(out, cap, "%s%s", any[i].loopback, ep + n);
            return;
        }
    }
    snprintf(out, cap, "%s", ep);
}

/*
 * Tell someone trying parleyd for the first time what to type next, with
 * the api endpoint it bound (the port the system chose for port 0, the
 * loopback address for a wildcard), so that each command works as shown.
 */
static void
s_print_try_this(const pd_config_t *cfg, const char *bound_api)
{
    char ep[PD_CONFIG_ENDPOINT_MAX + 32];
    char server[PD_CONFIG_ENDPOINT_MAX + 40] = "", arg[sizeof(server)] = "";
    s_client_endpoint(bound_api, ep, sizeof(ep));
    if (strcmp(ep, PARLEY_DEFAULT_SERVER) != 0) {
        snprintf(server, sizeof(server), " -s %s", ep);
        snprintf(arg, sizeof(arg), " %s", ep);
    }
    printf("\nparleyd made a demo signing key. Try this in another terminal:\n"
           "  parley sub%s --party hamas\n"
           "  parley pub%s -k %s/demo.key --negotiation gaza-ceasefire "
           "--party hamas --phase 1 --status agreed_in_principle --headline "
           "\"Phase 1 agreed in principle\"\n"
           "  examples/publish-demo.sh %s/demo.key%s\n\n",
           server, server, cfg->state_dir, cfg->state_dir, arg);
    fflush(stdout);
}

/* -------------------------------------------------------------- options */

enum {
    S_OPT_API = 256,
    S_OPT_FEED,
    S_OPT_STATE_DIR,
    S_OPT_KEYRING,
    S_OPT_SKEW,
    S_OPT_NO_FSYNC,
    S_OPT_LOG_LEVEL,
    S_OPT_BACKBONE,
    S_OPT_BACKBONE_STREAM,
    S_OPT_BACKBONE_REPLICAS,
    S_OPT_PID_FILE,
    S_OPT_RELOAD,
    S_OPT_PID,
};

static const struct option s_options[] = {
    { "config", required_argument, NULL, 'c' },
    { "api", required_argument, NULL, S_OPT_API },
    { "feed", required_argument, NULL, S_OPT_FEED },
    { "state-dir", required_argument, NULL, S_OPT_STATE_DIR },
    { "keyring", required_argument, NULL, S_OPT_KEYRING },
    { "max-clock-skew", required_argument, NULL, S_OPT_SKEW },
    { "no-fsync", no_argument, NULL, S_OPT_NO_FSYNC },
    { "log-level", required_argument, NULL, S_OPT_LOG_LEVEL },
    { "backbone", required_argument, NULL, S_OPT_BACKBONE },
    { "backbone-stream", required_argument, NULL, S_OPT_BACKBONE_STREAM },
    { "backbone-replicas", required_argument, NULL,
      S_OPT_BACKBONE_REPLICAS },
    { "pid-file", required_argument, NULL, S_OPT_PID_FILE },
    { "reload", no_argument, NULL, S_OPT_RELOAD },
    { "pid", required_argument, NULL, S_OPT_PID },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/*
 * The flags that set a config key: the option, the key, and the value of
 * a flag that takes no argument.
 */
static const struct {
    int opt;
    const char *key;
    const char *value; /* NULL: the flag's argument */
} s_flag_keys[] = {
    { S_OPT_API, "api", NULL },
    { S_OPT_FEED, "feed", NULL },
    { S_OPT_STATE_DIR, "state_dir", NULL },
    { S_OPT_KEYRING, "keyring", NULL },
    { S_OPT_SKEW, "max_clock_skew", NULL },
    { S_OPT_NO_FSYNC, "fsync", "off" },
    { S_OPT_LOG_LEVEL, "log_level", NULL },
    { S_OPT_BACKBONE, "backbone", NULL },
    { S_OPT_BACKBONE_STREAM, "backbone_stream", NULL },
    { S_OPT_BACKBONE_REPLICAS, "backbone_replicas", NULL },
    { S_OPT_PID_FILE, "pid_file", NULL },
};

/* A flag remembered until the config file has been read. */
typedef struct {
    const char *flag;   /* long option name, for messages */
    const char *key;    /* config key it sets */
    const char *value;
} s_flag_t;

/* What the command line said. */
typedef struct {
    const char *config_path; /* -c FILE, or NULL */
    s_flag_t flags[16];      /* flags that set a config key, in order */
    size_t n_flags;
    bool level_flag;         /* --log-level given: a reload keeps it */
    bool reload;             /* --reload: ask the running daemon */
    long reload_pid;         /* --pid PID, 0 if not given */
} s_args_t;

/*
 * Remember option opt (s_options[li], argument arg) if it is a flag that
 * sets a config key. Returns false if it is not one.
 */
static bool
s_keep_flag(s_args_t *args, int opt, int li, const char *arg)
{
    for (size_t i = 0; i < sizeof(s_flag_keys) / sizeof(s_flag_keys[0]);
         i++) {
        if (s_flag_keys[i].opt != opt)
            continue;
        const char *value =
            s_flag_keys[i].value != NULL ? s_flag_keys[i].value : arg;
        if (args->n_flags < sizeof(args->flags) / sizeof(args->flags[0]))
            args->flags[args->n_flags++] =
                (s_flag_t){ s_options[li].name, s_flag_keys[i].key, value };
        if (opt == S_OPT_LOG_LEVEL)
            args->level_flag = true;
        return true;
    }
    return false;
}

/*
 * Read the command line into args. Returns -1 to go on, or the exit
 * status: 0 after --version or --help, 2 for a command line that is
 * wrong (after the usage on stderr).
 */
static int
s_parse_args(int argc, char **argv, s_args_t *args)
{
    int c, li = -1;
    memset(args, 0, sizeof(*args));
    while ((c = getopt_long(argc, argv, "c:Vh", s_options, &li)) != -1) {
        switch (c) {
        case 'c':
            args->config_path = optarg;
            break;
        case S_OPT_RELOAD:
            args->reload = true;
            break;
        case S_OPT_PID: {
            char *end;
            args->reload_pid = strtol(optarg, &end, 10);
            if (*end != '\0' || args->reload_pid <= 0) {
                fprintf(stderr, "parleyd: --pid: \"%s\" is not a pid\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'V':
            printf("parleyd %s\n", PARLEY_VERSION);
            return 0;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            if (!s_keep_flag(args, c, li, optarg)) {
                s_usage(stderr);
                return 2;
            }
        }
        li = -1;
    }
    if (optind < argc) {
        fprintf(stderr, "parleyd: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    if (args->reload_pid > 0 && !args->reload) {
        fprintf(stderr, "parleyd: --pid goes with --reload\n");
        return 2;
    }
    return -1;
}

/*
 * The settings: the defaults, the config file of -c over them, the
 * flags over that. Returns 0, or the exit status after a message on
 * stderr (2 for a flag's bad value).
 */
static int
s_load_config(const s_args_t *args, pd_config_t *cfg)
{
    char errbuf[512];
    pd_config_defaults(cfg);
    if (args->config_path != NULL
        && pd_config_load(cfg, args->config_path, errbuf, sizeof(errbuf))
               < 0) {
        fprintf(stderr, "parleyd: %s\n", errbuf);
        return 1;
    }
    for (size_t i = 0; i < args->n_flags; i++) {
        const s_flag_t *f = &args->flags[i];
        if (pd_config_set(cfg, f->key, f->value, errbuf, sizeof(errbuf))
            < 0) {
            /* errbuf starts with the config key; name the flag instead. */
            size_t k = strlen(f->key);
            const char *msg = strncmp(errbuf, f->key, k) == 0
                                      && strncmp(errbuf + k, ": ", 2) == 0
                                  ? errbuf + k + 2
                                  : errbuf;
            fprintf(stderr, "parleyd: --%s: %s\n", f->flag, msg);
            return 2;
        }
    }
    if (pd_config_finish(cfg) < 0) {
        fprintf(stderr, "parleyd: state_dir is too long\n");
        return 1;
    }
    return 0;
}

/*
 * Make the state directory and check who may write it; on a first start
 * without a keyring make the demo one (*demo); load the keyring.
 * Returns the keyring, or NULL after a log line.
 */
static parley_keyring_t *
s_load_keyring(const pd_config_t *cfg, bool *demo)
{
    char errbuf[512];
    int rc = s_mkdirs(cfg->state_dir, 0700);
    if (rc < 0) {
        pd_log(PD_LOG_ERROR, "cannot create state dir %s: %s", cfg->state_dir,
               strerror(-rc));
        return NULL;
    }
    if (pd_trust_check(cfg->state_dir, "state_dir", errbuf, sizeof(errbuf))
        < 0) {
        pd_log(PD_LOG_ERROR, "refusing to start: %s", errbuf);
        return NULL;
    }
    *demo = false;
    if (!cfg->keyring_given && access(cfg->keyring, F_OK) < 0
        && errno == ENOENT) {
        if (s_make_demo(cfg) < 0)
            return NULL;
        *demo = true;
    }
    parley_keyring_t *ring = pd_trust_keyring_load(cfg->keyring, errbuf,
                                                   sizeof(errbuf));
    if (ring == NULL) {
        pd_log(PD_LOG_ERROR, "cannot start without a valid keyring: %s",
               errbuf);
        return NULL;
    }
    if (parley_keyring_size(ring) == 0)
        pd_log(PD_LOG_WARN, "keyring %s names no signer: every publish will "
                            "be rejected unknown_signer", cfg->keyring);
    else
        pd_log(PD_LOG_INFO, "keyring %s: %zu signers", cfg->keyring,
               parley_keyring_size(ring));
    return ring;
}

/*
 * Block SIGINT, SIGTERM and SIGHUP before libzmq starts its threads, so
 * that they reach only the signalfd the loop polls; ignore SIGPIPE.
 * Returns the signalfd, or -1 after a log line.
 */
static int
s_signal_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    int sigfd = -1;
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0
        || (sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        pd_log(PD_LOG_ERROR, "cannot set up signals: %s", strerror(errno));
        return -1;
    }
    return sigfd;
}

/* -------------------------------------------------------- start guard */

/*
 * SIGTERM and SIGINT during start-up. They are blocked before the first
 * thread starts (s_signal_fd()), so until the loop polls its signalfd
 * they would wait: through connecting to the backbone (up to its open
 * timeout while no server answers), checking the stream, recovering the
 * log, binding; and a start that then failed would exit 1 without a
 * word of the signal. The guard is a thread that takes those two
 * signals alone while the server is made (SIGHUP stays pending for the
 * loop) and ends the process at once, as their default action would:
 * nothing has been acked or served yet, and an exit here leaves the
 * files as a kill -9 does, which the log and the tree recover from.
 */
typedef struct {
    pthread_t thr;
    int sigfd;  /* SIGTERM and SIGINT */
    int donefd; /* eventfd: start-up is over, return */
    bool running;
} s_start_guard_t;

static void *
s_start_guard_main(void *arg)
{
    s_start_guard_t *g = arg;
    struct pollfd pfd[2] = { { .fd = g->donefd, .events = POLLIN },
                             { .fd = g->sigfd, .events = POLLIN } };
    for (;;) {
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            return NULL; /* the signal waits for the loop then */
        /* Done first: a signal still pending then is the loop's. */
        if (pfd[0].revents != 0)
            return NULL;
        struct signalfd_siginfo si;
        if (pfd[1].revents == 0
            || read(g->sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        pd_log(PD_LOG_INFO, "%s: stopping during start-up, before serving",
               si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        pd_log(PD_LOG_INFO, "parleyd stopped");
        _exit(0);
    }
}

/* Close the guard's fds (-1 after). */
static void
s_start_guard_close(s_start_guard_t *g)
{
    if (g->sigfd >= 0)
        close(g->sigfd);
    if (g->donefd >= 0)
        close(g->donefd);
    g->sigfd = g->donefd = -1;
}

/*
 * Start the guard (signals already blocked). Without it (no thread, no
 * fd) the signals wait for the loop as before: a warning, not a failure.
 */
static void
s_start_guard_begin(s_start_guard_t *g)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int e = 0;
    g->running = false;
    g->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (g->sigfd < 0)
        e = errno;
    g->donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g->donefd < 0 && e == 0)
        e = errno;
    if (e == 0
        && (e = pthread_create(&g->thr, NULL, s_start_guard_main, g)) == 0) {
        pthread_setname_np(g->thr, "start-guard");
        g->running = true;
        return;
    }
    pd_log(PD_LOG_WARN, "cannot watch for SIGTERM during start-up (%s): it "
                        "takes effect once parleyd serves",
           strerror(e));
    s_start_guard_close(g);
}

/* Stop the guard: from here a stop signal is the loop's. */
static void
s_start_guard_end(s_start_guard_t *g)
{
    if (g->running) {
        uint64_t one = 1;
        if (write(g->donefd, &one, sizeof(one)) == (ssize_t)sizeof(one))
            pthread_join(g->thr, NULL);
        else
            pthread_detach(g->thr); /* cannot happen: a fresh eventfd */
        g->running = false;
    }
    s_start_guard_close(g);
}

/*
 * Write our pid to cfg's pid_file. Returns 0, or 1 (the exit status)
 * when a pid file named by the config or --pid-file cannot be written.
 */
static int
s_write_pid_file(const pd_config_t *cfg)
{
    char pid_text[32];
    int rc;
    snprintf(pid_text, sizeof(pid_text), "%ld\n", (long)getpid());
    if (cfg->pid_file[0] == '\0'
        || (rc = pd_trust_write_atomic(cfg->pid_file, pid_text)) == 0)
        return 0;
    if (cfg->pid_file_given) {
        pd_log(PD_LOG_ERROR, "cannot write the pid file %s: %s",
               cfg->pid_file, strerror(-rc));
        return 1;
    }
    /* The default one in the state directory is a convenience: a full
     * disk must not stop the daemon (its log has a reserve, the pid file
     * has none). A stale one would name another process. */
    pd_log(PD_LOG_WARN, "cannot write the pid file %s: %s; parleyd --reload "
                        "needs --pid %ld",
           cfg->pid_file, strerror(-rc), (long)getpid());
    unlink(cfg->pid_file);
    return 0;
}

/*
 * Make the server, write the pid file, run until a stop signal, and
 * destroy the server. *ran says whether it ran. Returns the run's result
 * (0 or a negative error) if it ran, else the exit status (1: the server
 * or the pid file failed; both say why).
 */
static int
s_serve(pd_server_opts_t *opts, int sigfd, bool demo, bool *ran)
{
    const pd_config_t *cfg = opts->cfg;
    int rc = 0;
    *ran = false;
    s_start_guard_t guard;
    s_start_guard_begin(&guard);
    pd_server_t *srv = pd_server_new(opts, &rc);
    s_start_guard_end(&guard);
    if (srv == NULL)
        return 1;
    if (demo)
        s_print_try_this(cfg, pd_server_api_endpoint(srv));
    if ((rc = s_write_pid_file(cfg)) != 0) {
        pd_server_destroy(&srv);
        return rc;
    }
    rc = pd_server_run(srv, sigfd);
    *ran = true;
    if (cfg->pid_file[0] != '\0')
        unlink(cfg->pid_file);
    pd_server_destroy(&srv);
    return rc;
}

/*
 * The last line of a start that failed, after the line saying why: so
 * that a log (the journal of a Type=notify unit) shows plainly that
 * parleyd gave up and exits non-zero. Returns status.
 */
static int
s_not_started(int status)
{
    pd_log(PD_LOG_ERROR, "parleyd did not start (exit status %d)", status);
    return status;
}

int
main(int argc, char **argv)
{
    /* Before any thread starts (heap.h). */
    pd_heap_setup();

    s_args_t args;
    int rc = s_parse_args(argc, argv, &args);
    if (rc >= 0)
        return rc;
    pd_config_t cfg;
    if ((rc = s_load_config(&args, &cfg)) != 0)
        return rc;
    if (args.reload) {
        /* Ask the running daemon to reload, and say how it went. */
        char msg[1400];
        int rrc = pd_server_reload_request(&cfg, args.reload_pid, 10000, msg,
                                           sizeof(msg));
        fprintf(rrc == 0 ? stdout : stderr, "parleyd: %s\n", msg);
        return rrc == 0 ? 0 : rrc == 1 ? 1 : rrc == -ETIMEDOUT ? 3 : 2;
    }
    pd_log_set_level(cfg.log_level);
    if (sodium_init() < 0) {
        pd_log(PD_LOG_ERROR, "libsodium failed to initialize");
        return 1;
    }
    pd_log(PD_LOG_INFO, "parleyd %s starting; state dir %s%s", PARLEY_VERSION,
           cfg.state_dir, cfg.fsync ? "" : " (fsync OFF: acked updates can "
                                           "be lost on power failure)");

    bool demo = false;
    parley_keyring_t *ring = s_load_keyring(&cfg, &demo);
    if (ring == NULL)
        return s_not_started(1);
    int sigfd = s_signal_fd();
    if (sigfd < 0) {
        parley_keyring_destroy(&ring);
        return s_not_started(1);
    }

    pd_server_opts_t opts = { .cfg = &cfg,
                              .config_path = args.config_path,
                              .log_level_fixed = args.level_flag,
                              .ring = ring };
    bool ran;
    rc = s_serve(&opts, sigfd, demo, &ran);
    close(sigfd);
    if (cfg.backbone[0] != '\0')
        pd_backbone_library_close(); /* nats.c's own threads (cluster mode) */
    if (!ran)
        return s_not_started(rc);
    pd_log(rc == 0 ? PD_LOG_INFO : PD_LOG_ERROR, "parleyd stopped%s",
           rc == 0 ? "" : " after an error");
    return rc == 0 ? 0 : 1;
}
