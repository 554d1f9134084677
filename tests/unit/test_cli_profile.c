/*
 * test_cli_profile.c - client profiles (client/cli/profile.c) and how a
 * context combines with flags and the environment (cli_common_ready()).
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "common.h"
#include "profile.h"
#include "../tmpdir.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char s_text[] =
    "# parley client configuration\n"
    "default-context local\n"
    "\n"
    "context production\n"
    "    server tcp://a.example:7710,tcp://b.example:7710\n"
    "    key ~/keys/desk.key   # a comment after a value\n"
    "    keyring keyring\n"
    "    curve-server-key /etc/parley/server.pub\n"
    "    curve-key curve/client\n"
    "    timeout 2.5s\n"
    "context local\n"
    "\tserver tcp://127.0.0.1:7710\n";

static void
test_parse(void **state)
{
    (void)state;
    cli_config_t cfg;
    char err[256] = "";
    setenv("HOME", "/home/desk", 1);
    assert_int_equal(cli_config_parse(s_text, "/etc/x/config", &cfg, err,
                                      sizeof(err)),
                     0);
    assert_int_equal(cfg.n, 2);
    assert_string_equal(cfg.default_context, "local");
    const cli_context_t *p = cli_config_find(&cfg, "production");
    assert_non_null(p);
    assert_string_equal(p->server, "tcp://a.example:7710,tcp://b.example:7710");
    assert_string_equal(p->key, "/home/desk/keys/desk.key");
    assert_string_equal(p->keyring, "/etc/x/keyring");
    assert_string_equal(p->curve_server_key, "/etc/parley/server.pub");
    assert_string_equal(p->curve_key, "/etc/x/curve/client");
    assert_int_equal(p->timeout_ms, 2500);
    const cli_context_t *l = cli_config_find(&cfg, "local");
    assert_non_null(l);
    assert_string_equal(l->server, "tcp://127.0.0.1:7710");
    assert_null(l->key);
    assert_int_equal(l->timeout_ms, 0);
    assert_null(cli_config_find(&cfg, "nope"));
    cli_config_free(&cfg);
}

static void
test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *err;
    } cases[] = {
        { "server tcp://x:1\n",
          "f:1: \"server\" before any \"context NAME\" line" },
        { "context a\n  sever tcp://x:1\n",
          "f:2: unknown setting \"sever\" (a context takes server, key, "
          "keyring, curve-server-key, curve-key and timeout)" },
        { "context a\n  server\n", "f:2: \"server\" needs a value" },
        { "context a\n  server a b\n",
          "f:2: \"server\": one value expected, found \"b\" after it (an "
          "endpoint list is one value: EP,EP)" },
        { "context A\n", "f:1: context name \"A\" is not a slug "
                         "([a-z0-9][a-z0-9-]{0,31})" },
        { "context a\ncontext a\n", "f:2: context \"a\" defined twice" },
        { "context a\n server x\n server y\n",
          "f:3: \"server\" given twice in one context" },
        { "context a\n timeout soon\n",
          "f:2: timeout: \"soon\" is not a duration such as 5 or 2.5s" },
        { "default-context b\ncontext a\n",
          "f:2: default-context \"b\" is not defined in the file" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_config_t cfg;
        char err[512] = "";
        int rc = cli_config_parse(cases[i].text, "f", &cfg, err, sizeof(err));
        cli_config_free(&cfg);
        if (rc != -1 || strcmp(err, cases[i].err) != 0)
            fail_msg("case %zu: rc %d, \"%s\", expected \"%s\"", i, rc, err,
                     cases[i].err);
    }
}

/* Flags win; a named context wins over the environment; the default
 * context does not. */
static void
test_precedence(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(test_tmpdir_make(dir, sizeof(dir), "parley-config-"), 0);
    snprintf(path, sizeof(path), "%s/config", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s_text, f);
    fclose(f);
    setenv("PARLEY_CONFIG", path, 1);
    setenv("PARLEY_SERVER", "tcp://env:1", 1);
    unsetenv("PARLEY_CONTEXT");

    cli_common_t c;
    cli_common_init(&c);
    assert_int_equal(cli_common_ready(&c), 0);
    assert_string_equal(c.server, "tcp://env:1"); /* default context: env wins */
    assert_string_equal(c.context_used, "local");

    cli_common_init(&c);
    assert_int_equal(cli_common_option(&c, CLI_OPT_CONTEXT, "production"), 1);
    assert_int_equal(cli_common_ready(&c), 0);
    assert_string_equal(c.server, "tcp://a.example:7710,tcp://b.example:7710");
    assert_int_equal(c.timeout_ms, 2500);
    assert_string_equal(c.key_path, "/home/desk/keys/desk.key");

    cli_common_init(&c);
    assert_int_equal(cli_common_option(&c, 's', "tcp://flag:2"), 1);
    assert_int_equal(cli_common_option(&c, CLI_OPT_TIMEOUT, "1"), 1);
    assert_int_equal(cli_common_option(&c, CLI_OPT_CONTEXT, "production"), 1);
    assert_int_equal(cli_common_ready(&c), 0);
    assert_string_equal(c.server, "tcp://flag:2");
    assert_int_equal(c.timeout_ms, 1000);

    /* an unknown context is an error, named with what the file has */
    setenv("PARLEY_CONTEXT", "staging", 1);
    cli_common_init(&c);
    c.quiet = 1;
    assert_int_equal(cli_common_ready(&c), CLI_EXIT_USAGE);
    assert_int_equal(cli_common_ready(&c), CLI_EXIT_USAGE);
    unsetenv("PARLEY_CONTEXT");

    /* no file: fine, unless a context is asked for */
    unlink(path);
    cli_common_init(&c);
    assert_int_equal(cli_common_ready(&c), 0);
    assert_string_equal(c.server, "tcp://env:1");
    cli_common_init(&c);
    c.context = "production";
    assert_int_equal(cli_common_ready(&c), CLI_EXIT_USAGE);
    rmdir(dir);
    unsetenv("PARLEY_SERVER");
    unsetenv("PARLEY_CONFIG");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_precedence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
