/*
 * main.c - the parley tool: common options, then one subcommand.
 *
 *   parley [COMMON OPTIONS] COMMAND [OPTIONS] [ARGS]
 *
 * Common options may come before the command or among its own options.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(cli_common_t *c, int argc, char **argv);
    const char *summary;
} s_commands[] = {
    { "pub", cmd_pub, "sign and publish an update (or JSON lines from stdin)" },
    { "sub", cmd_sub, "subscribe: print updates, or alert a command or a web hook" },
    { "replay", cmd_replay, "print the updates the daemon holds in a range" },
    { "state", cmd_state, "where things stand: the current state, as a table" },
    { "keygen", cmd_keygen, "make a signing key pair and its keyring line" },
    { "verify", cmd_verify, "check saved Delivery or SignedUpdate bytes offline" },
    { "stats", cmd_stats, "print the daemon's counters" },
    { "ping", cmd_ping, "check the daemon: feed endpoint, seqs, version" },
    { "audit", cmd_audit, "check saved checkpoints or evidence against the log" },
    { "witness", cmd_witness, "serve a transparency-log witness over HTTP" },
    { "context", cmd_context, "list or show the client profiles (--context)" },
};

#define S_N_COMMANDS (sizeof(s_commands) / sizeof(s_commands[0]))

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: parley [OPTIONS] COMMAND [ARGS]...\n"
            "\n"
            "Publish and subscribe to signed negotiation-status updates "
            "through parleyd.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < S_N_COMMANDS; i++)
        fprintf(out, "  %-8s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(out,
            "\n"
            "Options (also accepted after the command):\n"
            "%s"
            "      --version       print the version\n"
            "\n"
            "Run 'parley COMMAND --help' for the options of a command.\n"
            "\n"
            "Exit status:\n"
            "  0  success\n"
            "  1  usage error (bad option, argument or input line)\n"
            "  2  rejected: the daemon refused the request, or verify found a\n"
            "     bad update (the reason is printed as\n"
            "     \"parley: rejected: <code>: <text>\")\n"
            "  3  no answer from the daemon within the timeout\n"
            "  4  problem with a key or keyring file\n"
            "  5  any other error\n"
            "\n"
            "Environment:\n"
            "  PARLEY_SERVER            api endpoint used when --server is not "
            "given\n"
            "  PARLEY_CURVE_SERVER_KEY  default of --curve-server-key\n"
            "  PARLEY_CURVE_KEY         default of --curve-key\n"
            "  PARLEY_CONTEXT           default of --context\n"
            "  PARLEY_CONFIG            the config file of the contexts (default\n"
            "                           ~/.config/parley/config)\n",
            cli_common_help);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    cli_common_t common;
    int opt;

    cli_common_init(&common);
    /* "+": stop at the command name; its options are its own. */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:" CLI_COMMON_SHORT, longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(&common, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        switch (opt) {
        case 'h':
            s_usage(stdout);
            return CLI_EXIT_OK;
        case 'V':
            printf("parley %s\n", PARLEY_VERSION);
            return CLI_EXIT_OK;
        default:
            return cli_option_error(NULL, opt, argv);
        }
    }
    if (optind >= argc) {
        s_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        if (optind + 1 < argc) {
            /* "parley help sub" is "parley sub --help" */
            for (size_t i = 0; i < S_N_COMMANDS; i++)
                if (strcmp(argv[optind + 1], s_commands[i].name) == 0) {
                    char *args[] = { argv[optind + 1], (char *)"--help", NULL };
                    optind = 0;
                    return s_commands[i].run(&common, 2, args);
                }
        }
        s_usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < S_N_COMMANDS; i++) {
        if (strcmp(name, s_commands[i].name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0; /* reinitialise getopt for the command's options */
            opterr = 0;
            return s_commands[i].run(&common, sub_argc, sub_argv);
        }
    }
    cli_error("unknown command \"%s\"", name);
    fprintf(stderr, "Try 'parley --help'.\n");
    return CLI_EXIT_USAGE;
}
