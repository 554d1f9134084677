/*
 * main.c - parley-gateway: arguments and configuration, the keyring,
 * signals, then the loop (gateway.c). No protocol logic here.
 */
#include "gateway.h"

#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

enum { S_EXIT_OK = 0, S_EXIT_USAGE = 1, S_EXIT_CONFIG = 2, S_EXIT_RUN = 3 };

static void
s_help(void)
{
    printf("usage: parley-gateway [-c FILE] [--OPTION VALUE]...\n"
           "\n"
           "HTTP and Server-Sent Events gateway and live status board for\n"
           "parleyd: a libparley subscriber that serves the current state,\n"
           "recent updates and a live stream as JSON, each update with its\n"
           "signed bytes, and a web page at / that verifies every signature\n"
           "in the browser. See parley-gateway(8) and docs/http.md.\n"
           "\n"
           "  -c, --config FILE   read options from FILE (\"option value\" lines);\n"
           "                      flags given after it override it\n"
           "  -h, --help          print this help\n"
           "  -V, --version       print the version\n"
           "\n"
           "Options (config file name, or as a flag with dashes):\n");
    for (const gw_option_info_t *o = gw_config_options(); o->name != NULL; o++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s %s", o->name, o->arg);
        for (char *p = flag; *p != ' '; p++)
            if (*p == '_')
                *p = '-';
        printf("  %-34s %s\n  %-34s (default: %s)\n", flag, o->help, "",
               o->dflt);
    }
    printf("\n"
           "Endpoints: GET / (the board), /v1/state, /v1/updates,\n"
           "/v1/events, /v1/keyring, /metrics, /healthz; POST /v1/updates\n"
           "with publish on.\n"
           "\n"
           "Exit status: 0 after SIGTERM or SIGINT, 1 usage error, 2 bad\n"
           "configuration or keyring, 3 the gateway could not run (address\n"
           "in use, parleyd settings).\n");
}

/* getopt_long's table: the fixed flags and one per option. */
static struct option *
s_longopts(void)
{
    static char names[64][40];
    size_t n = 0;
    for (const gw_option_info_t *o = gw_config_options(); o->name != NULL; o++)
        n++;
    struct option *opts = calloc(n + 4, sizeof(*opts));
    if (opts == NULL || n > 64)
        return opts;
    size_t i = 0;
    opts[i++] = (struct option){ "config", required_argument, NULL, 'c' };
    opts[i++] = (struct option){ "help", no_argument, NULL, 'h' };
    opts[i++] = (struct option){ "version", no_argument, NULL, 'V' };
    for (const gw_option_info_t *o = gw_config_options(); o->name != NULL; o++) {
        size_t k = i - 3;
        snprintf(names[k], sizeof(names[k]), "%s", o->name);
        for (char *p = names[k]; *p != '\0'; p++)
            if (*p == '_')
                *p = '-';
        /* A switch takes an optional value: --publish, --publish=off. */
        opts[i++] = (struct option){ names[k],
                                     strchr(o->arg, '|') != NULL
                                         ? optional_argument
                                         : required_argument,
                                     NULL, 0x100 + (int)k };
    }
    return opts;
}

/*
 * Read the configuration: defaults, then -c FILE, then the other flags in
 * order. Returns 0, or an exit status after printing why.
 */
static int
s_configure(gw_config_t *cfg, int argc, char **argv)
{
    char err[512] = "";
    struct option *opts = s_longopts();
    int opt, rc;
    if (opts == NULL || gw_config_defaults(cfg) < 0) {
        fprintf(stderr, "parley-gateway: out of memory\n");
        free(opts);
        return S_EXIT_CONFIG;
    }
    /* The file first, wherever -c stands. */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        if (opt == 'c' && (rc = gw_config_load(cfg, optarg, err, sizeof(err))) < 0) {
            fprintf(stderr, "parley-gateway: %s\n", err);
            free(opts);
            return S_EXIT_CONFIG;
        }
    }
    optind = 0;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            continue;
        case 'h':
            s_help();
            free(opts);
            return -1;
        case 'V':
            printf("parley-gateway %s (libparley %s)\n", PARLEY_VERSION,
                   parley_version());
            free(opts);
            return -1;
        case '?':
            fprintf(stderr, "Try 'parley-gateway --help'.\n");
            free(opts);
            return S_EXIT_USAGE;
        default:
            break;
        }
        const gw_option_info_t *o = &gw_config_options()[opt - 0x100];
        if ((rc = gw_config_set(cfg, o->name, optarg, err, sizeof(err))) < 0) {
            fprintf(stderr, "parley-gateway: --%s\n", err);
            free(opts);
            return S_EXIT_USAGE;
        }
    }
    free(opts);
    if (optind < argc) {
        fprintf(stderr, "parley-gateway: unexpected argument \"%s\"\n"
                        "Try 'parley-gateway --help'.\n",
                argv[optind]);
        return S_EXIT_USAGE;
    }
    if (gw_config_check(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "parley-gateway: %s\n", err);
        return S_EXIT_CONFIG;
    }
    return 0;
}

/* Ten thousand streams need as many descriptors: take what is allowed. */
static void
s_raise_nofile(const gw_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = (rlim_t)cfg->max_connections + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
        gw_log(GW_LOG_WARN,
               "only %llu file descriptors allowed for max_connections %u "
               "(raise LimitNOFILE or ulimit -n)",
               (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

int
main(int argc, char **argv)
{
    gw_config_t cfg;
    gw_t gw;
    char detail[512] = "";
    int status = s_configure(&cfg, argc, argv);
    if (status != 0) {
        gw_config_free(&cfg);
        return status < 0 ? S_EXIT_OK : status;
    }
    gw_log_set_level(cfg.log_level);
    memset(&gw, 0, sizeof(gw));
    gw.cfg = &cfg;
    status = S_EXIT_CONFIG;
    if ((gw.ring = parley_keyring_load(cfg.keyring, detail, sizeof(detail)))
        == NULL) {
        gw_log(GW_LOG_ERROR, "keyring: %s",
               detail[0] != '\0' ? detail : strerror(errno));
        goto out;
    }
    status = S_EXIT_RUN;
    if ((gw.window = gw_window_new(cfg.window, cfg.window_bytes)) == NULL
        || (gw.state = gw_state_new()) == NULL || gw_http_keyring_json(&gw) < 0) {
        gw_log(GW_LOG_ERROR, "out of memory");
        goto out;
    }
    s_raise_nofile(&cfg);

    /* Signals arrive on a descriptor of the loop; the worker threads
     * inherit the mask, so none of them is interrupted. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);

    int rc = gw_http_start(&gw);
    if (rc < 0) {
        gw_log(GW_LOG_ERROR, "cannot listen on %s: %s", cfg.listen,
               strerror(-rc));
        gw_http_stop(&gw);
        goto out_sig;
    }
    gw_log(GW_LOG_INFO,
           "serving http on %s (port %u); parleyd %s; %zu signers; "
           "publish %s; window %zu updates",
           cfg.listen, gw.port, cfg.server != NULL ? cfg.server : "(default)",
           parley_keyring_size(gw.ring), cfg.publish ? "on" : "off",
           cfg.window);
    rc = gw_run(&gw, sigfd);
    status = rc < 0 ? S_EXIT_RUN : S_EXIT_OK;
    gw_http_stop(&gw);
    gw_log(GW_LOG_INFO, "stopped");
out_sig:
    if (sigfd >= 0)
        close(sigfd);
out:
    gw_upstream_destroy(&gw.up);
    gw_state_destroy(&gw.state);
    gw_window_destroy(&gw.window);
    free(gw.keyring_json);
    parley_keyring_destroy(&gw.ring);
    gw_config_free(&cfg);
    return status;
}
