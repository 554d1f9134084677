/*
 * test_gw_config.c - parley-gateway's options (gateway/config.c): safe
 * defaults, one table for file and flags, and errors that name the
 * option (and the file's line).
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "../tmpdir.h"
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
test_defaults_are_safe(void **state)
{
    (void)state;
    gw_config_t c;
    assert_int_equal(gw_config_defaults(&c), 0);
    assert_string_equal(c.listen, "127.0.0.1:7780");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&c.addr;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(sin->sin_port), 7780);
    assert_false(c.publish);
    assert_null(c.cors_origin);
    assert_null(c.server);
    assert_null(c.keyring);
    assert_int_equal(c.window, 10000);
    assert_int_equal(c.window_bytes, 64u << 20);
    assert_int_equal(c.max_request_bytes, 64u << 10);
    assert_int_equal(c.connection_memory, 8192);
    assert_true(c.header_timeout > 0 && c.idle_timeout > 0);
    assert_true(c.max_connections_per_ip < c.max_connections);
    char err[256];
    /* Without a keyring it does not start. */
    assert_int_equal(gw_config_check(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "keyring"));
    gw_config_free(&c);
}

static void
test_set_by_either_name(void **state)
{
    (void)state;
    gw_config_t c;
    char err[256];
    assert_int_equal(gw_config_defaults(&c), 0);
    assert_int_equal(gw_config_set(&c, "max-connections-per-ip", "7", err, sizeof(err)), 0);
    assert_int_equal(c.max_connections_per_ip, 7);
    assert_int_equal(gw_config_set(&c, "window_bytes", "2M", err, sizeof(err)), 0);
    assert_int_equal(c.window_bytes, 2u << 20);
    assert_int_equal(gw_config_set(&c, "publish", NULL, err, sizeof(err)), 0);
    assert_true(c.publish);
    assert_int_equal(gw_config_set(&c, "publish", "off", err, sizeof(err)), 0);
    assert_false(c.publish);
    assert_int_equal(gw_config_set(&c, "listen", "[::1]:0", err, sizeof(err)), 0);
    assert_int_equal(c.addr.ss_family, AF_INET6);
    assert_int_equal(gw_config_set(&c, "log_level", "debug", err, sizeof(err)), 0);
    assert_int_equal(c.log_level, GW_LOG_DEBUG);
    assert_int_equal(gw_config_set(&c, "cors-origin", "*", err, sizeof(err)), 0);
    assert_string_equal(c.cors_origin, "*");
    assert_int_equal(gw_config_set(&c, "no_such", "1", err, sizeof(err)), -ENOENT);
    static const char *const bad[][3] = {
        { "window", "0", "window: expected a number 1-" },
        { "window", "12 apples", "window: expected a number" },
        { "window_bytes", "1X", "window_bytes: expected a number" },
        { "max_request_bytes", "99999999999999999999", "max_request_bytes:" },
        { "header_timeout", "-1", "header_timeout:" },
        { "publish", "maybe", "publish: expected on or off" },
        { "listen", "localhost:80", "listen: \"localhost\" is not an IP" },
        { "listen", "127.0.0.1", "listen: expected HOST:PORT" },
        { "listen", "127.0.0.1:99999", "listen: \"99999\" is not a port" },
        { "listen", "[::1:80", "listen: expected [IPv6]:PORT" },
        { "log_level", "loud", "log_level: expected error" },
        { "timeout_ms", NULL, "timeout_ms: needs a value" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (gw_config_set(&c, bad[i][0], bad[i][1], err, sizeof(err)) != -EINVAL
            || strncmp(err, bad[i][2], strlen(bad[i][2])) != 0)
            fail_msg("%s %s: \"%s\"", bad[i][0], bad[i][1] ? bad[i][1] : "(none)",
                     err);
    }
    /* Limits that do not fit together. */
    assert_int_equal(gw_config_set(&c, "keyring", "/k", err, sizeof(err)), 0);
    assert_int_equal(gw_config_check(&c, err, sizeof(err)), 0);
    assert_int_equal(gw_config_set(&c, "max_sse_clients", "99999", err, sizeof(err)), 0);
    assert_int_equal(gw_config_check(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "max_sse_clients"));
    gw_config_free(&c);
}

static void
test_file_names_its_line(void **state)
{
    (void)state;
    char dir[256], path[300], err[512];
    assert_int_equal(test_tmpdir_make(dir, sizeof(dir), "gw-config"), 0);
    snprintf(path, sizeof(path), "%s/gateway.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# parley-gateway\n\n  listen   127.0.0.1:8080  \r\n"
          "server tcp://a:7710,tcp://b:7710\npublish on\n", f);
    fclose(f);
    gw_config_t c;
    assert_int_equal(gw_config_defaults(&c), 0);
    assert_int_equal(gw_config_load(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.server, "tcp://a:7710,tcp://b:7710");
    assert_true(c.publish);
    f = fopen(path, "a");
    fputs("colour red\n", f);
    fclose(f);
    assert_int_equal(gw_config_load(&c, path, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "gateway.conf:6: unknown option \"colour\""));
    f = fopen(path, "w");
    fputs("window x\n", f);
    fclose(f);
    assert_int_equal(gw_config_load(&c, path, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "gateway.conf:1: window: expected a number"));
    unlink(path);
    assert_true(gw_config_load(&c, path, err, sizeof(err)) == -ENOENT);
    rmdir(dir);
    gw_config_free(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_safe),
        cmocka_unit_test(test_set_by_either_name),
        cmocka_unit_test(test_file_names_its_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
