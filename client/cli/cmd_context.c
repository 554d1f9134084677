/*
 * cmd_context.c - parley context: the client profiles of the config file.
 */
#include "common.h"

#include "profile.h"

#include <errno.h>
#include <string.h>

static void
s_help(void)
{
    printf("usage: parley context [NAME]\n"
           "\n"
           "Without NAME, list the contexts of the config file (the default\n"
           "one marked with *); with NAME, show what a command would use with\n"
           "--context NAME: its settings, and where the others come from.\n"
           "\n"
           "The config file is $PARLEY_CONFIG, else\n"
           "$XDG_CONFIG_HOME/parley/config, else ~/.config/parley/config:\n"
           "\n"
           "  # used when no context is named ($PARLEY_CONTEXT, --context)\n"
           "  default-context production\n"
           "\n"
           "  context production\n"
           "      server tcp://a.example:7710,tcp://b.example:7710\n"
           "      key ~/.config/parley/newsdesk.key\n"
           "      keyring ~/.config/parley/keyring\n"
           "      curve-server-key ~/.config/parley/parleyd.pub\n"
           "      curve-key ~/.config/parley/client.curve\n"
           "      timeout 10\n"
           "\n"
           "  context local\n"
           "      server tcp://127.0.0.1:7710\n"
           "\n"
           "\"key value\" lines, '#' comments; \"context NAME\" starts a context.\n"
           "key is parley pub's -k, keyring the --keyring of sub, replay,\n"
           "state and verify. Paths starting with ~/ are under $HOME, other\n"
           "relative paths beside the config file. A flag always wins; a\n"
           "context named with --context or $PARLEY_CONTEXT also wins over\n"
           "$PARLEY_SERVER, $PARLEY_CURVE_SERVER_KEY and $PARLEY_CURVE_KEY,\n"
           "the default context does not.\n"
           "\n"
           "Options:\n"
           "  -h, --help          print this help\n"
           "\n"
           "Exit status: 0 printed, 1 usage error (no such context, a bad\n"
           "config file).\n");
}

/* "name  value" for a setting that is set. */
static void
s_show(const char *name, const char *value)
{
    printf("%-17s %s\n", name, value != NULL ? value : "-");
}

int
cmd_context(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { NULL, 0, NULL, 0 },
    };
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT, longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            s_help();
            return CLI_EXIT_OK;
        }
        return cli_option_error("context", opt, argv);
    }
    if (optind + 1 < argc)
        return cli_usage_error("context", "unexpected argument \"%s\"",
                               argv[optind + 1]);
    if (optind < argc) {
        if (!parley_slug_valid(argv[optind]))
            return cli_usage_error("context", "\"%s\" is not a context name "
                                              "(" CLI_SLUG_RULE ")",
                                   argv[optind]);
        c->context = argv[optind];
    }
    char path[4096], err[512] = "";
    if (cli_config_path(path, sizeof(path)) < 0) {
        cli_error("no config file: set $PARLEY_CONFIG or $HOME");
        return CLI_EXIT_USAGE;
    }
    if (optind == argc) {
        cli_config_t cfg;
        int rc = cli_config_load(path, &cfg, err, sizeof(err));
        if (rc == -ENOENT) {
            cli_warn(c, "no config file %s yet (parley context --help shows "
                        "its format)",
                     path);
            return CLI_EXIT_OK;
        }
        if (rc < 0) {
            cli_error("%s", err);
            cli_config_free(&cfg);
            return CLI_EXIT_USAGE;
        }
        for (size_t i = 0; i < cfg.n; i++) {
            const cli_context_t *x = &cfg.contexts[i];
            int dflt = cfg.default_context != NULL
                       && strcmp(cfg.default_context, x->name) == 0;
            printf("%s %-16s %s\n", dflt ? "*" : " ", x->name,
                   x->server != NULL ? x->server : "-");
        }
        cli_config_free(&cfg);
        return CLI_EXIT_OK;
    }
    int rc = cli_common_ready(c);
    if (rc != 0)
        return rc;
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d.%03d s", c->timeout_ms / 1000,
             c->timeout_ms % 1000);
    s_show("config", path);
    s_show("context", c->context_used);
    s_show("server", c->server);
    s_show("key", c->key_path);
    s_show("keyring", c->keyring_path);
    s_show("curve-server-key", c->curve_server_key);
    s_show("curve-key", c->curve_key);
    s_show("timeout", timeout);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_OTHER;
}
