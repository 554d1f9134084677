/*
 * test_config.c - parleyd's config file parser and setters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../tmpdir.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
s_parse(pd_config_t *cfg, const char *text, char *err, size_t errlen)
{
    return pd_config_parse(cfg, text, strlen(text), "test.conf", err, errlen);
}

static void
test_defaults(void **state)
{
    (void)state;
    pd_config_t cfg;
    pd_config_defaults(&cfg);
    assert_string_equal(cfg.api, "tcp://127.0.0.1:7710");
    assert_string_equal(cfg.feed, "tcp://127.0.0.1:7711");
    assert_string_equal(cfg.state_dir, "./parley-data");
    assert_string_equal(cfg.keyring, "");
    assert_false(cfg.keyring_given);
    assert_int_equal(cfg.max_message_bytes, 65536);
    assert_int_equal(cfg.max_clock_skew, 300);
    assert_true(cfg.fsync);
    assert_int_equal(cfg.retention_bytes, 0);
    assert_int_equal(cfg.retention_age, 0);
    assert_int_equal(cfg.segment_bytes, 64 * 1024 * 1024);
    assert_int_equal(cfg.disk_reserve, 1024 * 1024);
    assert_int_equal(cfg.heartbeat_interval, 1000);
    assert_int_equal(cfg.log_level, PD_LOG_INFO);
    assert_string_equal(cfg.pid_file, "");
    assert_false(cfg.pid_file_given);
    assert_int_equal(cfg.reply_queue_bytes, 4 * 1024 * 1024);
    assert_int_equal(cfg.reply_queue_total, 64 * 1024 * 1024);
    assert_int_equal(pd_config_finish(&cfg), 0);
    assert_false(cfg.pid_file_given);
    assert_string_equal(cfg.keyring, "./parley-data/keyring");
    assert_string_equal(cfg.pid_file, "./parley-data/parleyd.pid");
}

static void
test_every_key(void **state)
{
    (void)state;
    pd_config_t cfg;
    char err[256] = "";
    pd_config_defaults(&cfg);
    const char *text =
        "# parleyd settings\n"
        "\n"
        "api tcp://0.0.0.0:9000\n"
        "feed   ipc:///run/parley/feed   # trailing comment\n"
        "\tstate_dir /var/lib/parley\n"
        "keyring /etc/parley/keyring\n"
        "max_message_bytes 128K\n"
        "max_clock_skew 60\n"
        "fsync off\n"
        "retention_bytes 2GiB\n"
        "retention_age 86400\n"
        "segment_bytes 1M\n"
        "disk_reserve 0\n"
        "heartbeat_interval 250\n"
        "pid_file /run/parleyd.pid\n"
        "reply_queue_bytes 2M\n"
        "reply_queue_total 1G\n"
        "log_level debug";  /* no newline at the end */
    assert_int_equal(s_parse(&cfg, text, err, sizeof(err)), 0);
    assert_string_equal(cfg.api, "tcp://0.0.0.0:9000");
    assert_string_equal(cfg.feed, "ipc:///run/parley/feed");
    assert_string_equal(cfg.state_dir, "/var/lib/parley");
    assert_string_equal(cfg.keyring, "/etc/parley/keyring");
    assert_true(cfg.keyring_given);
    assert_int_equal(cfg.max_message_bytes, 128 * 1024);
    assert_int_equal(cfg.max_clock_skew, 60);
    assert_false(cfg.fsync);
    assert_int_equal(cfg.retention_bytes, 2ull * 1024 * 1024 * 1024);
    assert_int_equal(cfg.retention_age, 86400);
    assert_int_equal(cfg.segment_bytes, 1024 * 1024);
    assert_int_equal(cfg.disk_reserve, 0);
    assert_int_equal(cfg.heartbeat_interval, 250);
    assert_int_equal(cfg.reply_queue_bytes, 2 * 1024 * 1024);
    assert_int_equal(cfg.reply_queue_total, 1024 * 1024 * 1024);
    assert_int_equal(cfg.log_level, PD_LOG_DEBUG);
    /* An explicit keyring and pid file survive finish. */
    assert_int_equal(pd_config_finish(&cfg), 0);
    assert_string_equal(cfg.keyring, "/etc/parley/keyring");
    assert_string_equal(cfg.pid_file, "/run/parleyd.pid");
    assert_true(cfg.pid_file_given);
}

static void
test_comments_and_crlf(void **state)
{
    (void)state;
    pd_config_t cfg;
    char err[256] = "";
    pd_config_defaults(&cfg);
    const char *text = "  # indented comment\r\n"
                       "\r\n"
                       "state_dir /data/a#b\r\n"   /* '#' inside a value */
                       "fsync on\t# comment after a tab\r\n";
    assert_int_equal(s_parse(&cfg, text, err, sizeof(err)), 0);
    assert_string_equal(cfg.state_dir, "/data/a#b");
    assert_true(cfg.fsync);
    assert_int_equal(s_parse(&cfg, "", err, sizeof(err)), 0);
}

/* Parse text, expect failure with exactly this message, cfg unchanged. */
static void
s_expect_error(const char *text, const char *message)
{
    pd_config_t cfg, before;
    char err[256] = "";
    pd_config_defaults(&cfg);
    before = cfg;
    assert_int_equal(s_parse(&cfg, text, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, message);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void
test_unknown_key(void **state)
{
    (void)state;
    s_expect_error("api tcp://127.0.0.1:1\n# ok\nlisten 1234\n",
                   "test.conf:3: unknown key 'listen'");
    s_expect_error("api=tcp://127.0.0.1:1\n",
                   "test.conf:1: unknown key 'api=tcp://127.0.0.1:1'");
}

static void
test_bad_values(void **state)
{
    (void)state;
    s_expect_error("fsync maybe\n", "test.conf:1: fsync: 'maybe' is not on or off");
    s_expect_error("log_level loud\n",
                   "test.conf:1: log_level: 'loud' is not one of error, "
                   "warn, info, debug");
    s_expect_error("\napi localhost:7710\n",
                   "test.conf:2: api: 'localhost:7710' is not an endpoint "
                   "like tcp://127.0.0.1:7710");
    s_expect_error("feed tcp://\n",
                   "test.conf:1: feed: 'tcp://' is not an endpoint like "
                   "tcp://127.0.0.1:7710");
    s_expect_error("max_clock_skew -5\n",
                   "test.conf:1: max_clock_skew: '-5' is not a number");
    s_expect_error("max_clock_skew 0\n",
                   "test.conf:1: max_clock_skew: 0 is out of range (1 to "
                   "316224000)");
    s_expect_error("max_clock_skew 10K\n",
                   "test.conf:1: max_clock_skew: '10K' is not a number");
    s_expect_error("max_message_bytes 12\n",
                   "test.conf:1: max_message_bytes: 12 is out of range "
                   "(1024 to 16777216)");
    s_expect_error("max_message_bytes 64X\n",
                   "test.conf:1: max_message_bytes: '64X' is not a number "
                   "(optionally with a K, M or G suffix)");
    s_expect_error("retention_bytes 99999999999999999999\n",
                   "test.conf:1: retention_bytes: 99999999999999999999 is "
                   "out of range (0 to 18446744073709551615)");
    s_expect_error("retention_bytes 17179869184G\n",
                   "test.conf:1: retention_bytes: 17179869184G is out of "
                   "range (0 to 18446744073709551615)");
    s_expect_error("heartbeat_interval 1\n",
                   "test.conf:1: heartbeat_interval: 1 is out of range (10 "
                   "to 3600000)");
    s_expect_error("disk_reserve 65G\n",
                   "test.conf:1: disk_reserve: 65G is out of range (0 to "
                   "68719476736)");
    s_expect_error("segment_bytes 1K\n",
                   "test.conf:1: segment_bytes: 1K is out of range (65536 "
                   "to 1099511627776)");
    s_expect_error("retention_age 1.5\n",
                   "test.conf:1: retention_age: '1.5' is not a number");
    s_expect_error("state_dir   # only a comment\n",
                   "test.conf:1: state_dir needs a value");
    s_expect_error("keyring\n", "test.conf:1: keyring needs a value");
    s_expect_error("fsync on\nfsync off\n", "test.conf:2: fsync is set twice");
    s_expect_error("reply_queue_bytes 512K\n",
                   "test.conf:1: reply_queue_bytes: 512K is out of range "
                   "(1048576 to 1099511627776)");
    s_expect_error("reply_queue_total 0\n",
                   "test.conf:1: reply_queue_total: 0 is out of range "
                   "(1048576 to 1099511627776)");
}

/* sys/stats/ interval: default 5 s, 0 turns it off, tiny values refused. */
static void
test_stats_interval(void **state)
{
    (void)state;
    pd_config_t cfg;
    char err[256];
    pd_config_defaults(&cfg);
    assert_int_equal(cfg.stats_interval, 5000);
    const char *off = "stats_interval 0\n";
    assert_int_equal(pd_config_parse(&cfg, off, strlen(off), "t.conf", err,
                                     sizeof(err)),
                     0);
    assert_int_equal(cfg.stats_interval, 0);
    const char *ok = "stats_interval 250\n";
    assert_int_equal(pd_config_parse(&cfg, ok, strlen(ok), "t.conf", err,
                                     sizeof(err)),
                     0);
    assert_int_equal(cfg.stats_interval, 250);
    s_expect_error("stats_interval 50\n",
                   "test.conf:1: stats_interval: 50 is out of range (0 = "
                   "off, or 100 to 3600000 ms)");
}

static void
test_nul_and_long_lines(void **state)
{
    (void)state;
    pd_config_t cfg, before;
    char err[256] = "";
    pd_config_defaults(&cfg);
    before = cfg;
    static const char nul[] = "fsync on\nfsync\0off\n";
    assert_int_equal(pd_config_parse(&cfg, nul, sizeof(nul) - 1, "x.conf",
                                     err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "x.conf:2: NUL byte in line");
    assert_memory_equal(&cfg, &before, sizeof(cfg));

    char *big = malloc(3 * PD_CONFIG_PATH_MAX);
    assert_non_null(big);
    strcpy(big, "state_dir /");
    memset(big + 11, 'a', 2 * PD_CONFIG_PATH_MAX);
    big[11 + 2 * PD_CONFIG_PATH_MAX] = '\0';
    assert_int_equal(s_parse(&cfg, big, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "test.conf:1: value of state_dir is too long");
    memset(big, 'k', 100);
    strcpy(big + 100, " 1\n");
    assert_int_equal(s_parse(&cfg, big, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "test.conf:1: unknown key 'kkkk"));
    free(big);
}

static void
test_set_for_flags(void **state)
{
    (void)state;
    pd_config_t cfg;
    char err[256] = "";
    pd_config_defaults(&cfg);
    assert_int_equal(pd_config_set(&cfg, "max_clock_skew", "5", err,
                                   sizeof(err)),
                     0);
    assert_int_equal(cfg.max_clock_skew, 5);
    assert_int_equal(pd_config_set(&cfg, "keyring", "/k", err, sizeof(err)),
                     0);
    assert_true(cfg.keyring_given);
    assert_int_equal(pd_config_set(&cfg, "nope", "1", err, sizeof(err)),
                     -ENOENT);
    assert_string_equal(err, "unknown key 'nope'");
    assert_int_equal(pd_config_set(&cfg, "fsync", "no", err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "fsync: 'no' is not on or off");
}

static void
test_load_file(void **state)
{
    (void)state;
    char path[256];
    assert_int_equal(test_tmp_template(path, sizeof(path), "test_config_"), 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "max_clock_skew 42\nbogus 1\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    pd_config_t cfg;
    char err[512] = "", want[512];
    pd_config_defaults(&cfg);
    assert_int_equal(pd_config_load(&cfg, path, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: unknown key 'bogus'", path);
    assert_string_equal(err, want);
    assert_int_equal(cfg.max_clock_skew, 300);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "max_clock_skew 42\n", 18), 18);
    close(fd);
    assert_int_equal(pd_config_load(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_clock_skew, 42);
    unlink(path);

    assert_int_equal(pd_config_load(&cfg, path, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
    assert_string_equal(err, want);
}

/* Write text to dir/name. */
static void
s_write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* include_dir: drop-ins in name order, later wins, all or nothing. */
static void
test_include_dir(void **state)
{
    (void)state;
    char dir[256];
    char sub[600], main_path[600], want[1024], err[1024] = "";
    assert_int_equal(test_tmpdir_make(dir, sizeof(dir), "test_config_inc_"), 0);
    snprintf(sub, sizeof(sub), "%s/conf.d", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(main_path, sizeof(main_path), "%s/parleyd.conf", dir);
    s_write_file(dir, "parleyd.conf",
                 "max_clock_skew 42\ninclude_dir conf.d\nlog_level info\n");
    s_write_file(sub, "20-late.conf", "log_level warn\n");
    s_write_file(sub, "10-early.conf", "log_level debug\nfsync off\n");
    s_write_file(sub, "notes.txt", "not a config file\n");

    pd_config_t cfg;
    pd_config_defaults(&cfg);
    assert_int_equal(pd_config_load(&cfg, main_path, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_clock_skew, 42);
    assert_int_equal(cfg.log_level, PD_LOG_WARN); /* 20- after 10- */
    assert_false(cfg.fsync);

    /* A bad drop-in fails the whole load, named by file and line. */
    s_write_file(sub, "30-bad.conf", "\nbogus 1\n");
    pd_config_t before;
    pd_config_defaults(&cfg);
    before = cfg;
    assert_int_equal(pd_config_load(&cfg, main_path, err, sizeof(err)),
                     -EINVAL);
    snprintf(want, sizeof(want), "%s/30-bad.conf:2: unknown key 'bogus'",
             sub);
    assert_string_equal(err, want);
    assert_memory_equal(&cfg, &before, sizeof(cfg));

    /* Drop-ins do not include further. */
    s_write_file(sub, "30-bad.conf", "include_dir /tmp\n");
    assert_int_equal(pd_config_load(&cfg, main_path, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "only allowed in the main file"));

    /* A missing directory is an error naming the including file. */
    s_write_file(dir, "parleyd.conf", "include_dir nowhere\n");
    assert_true(pd_config_load(&cfg, main_path, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, main_path));

    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Cluster mode: the backbone_* keys, their defaults and checks. */
static void
test_backbone_keys(void **state)
{
    (void)state;
    pd_config_t cfg;
    char err[512] = "";
    pd_config_defaults(&cfg);
    assert_string_equal(cfg.backbone, "");
    assert_string_equal(cfg.backbone_stream, "PARLEY");
    assert_int_equal(cfg.backbone_replicas, 3);
    assert_int_equal(cfg.backbone_publish_timeout, 2000);
    assert_int_equal(cfg.backbone_duplicate_window, 0);
    const char *text =
        "backbone nats://10.0.0.1:4222, tls://nats2.example:4222\n"
        "backbone_stream PARLEY_EU-1\n"
        "backbone_replicas 5\n"
        "backbone_duplicate_window 900\n"
        "backbone_publish_timeout 500\n"
        "backbone_creds /run/credentials/parleyd.service/nats.creds\n"
        "backbone_tls_ca /etc/parley/nats-ca.pem\n"
        "backbone_tls_cert /etc/parley/nats.pem\n"
        "backbone_tls_key /etc/parley/nats.key\n"
        "backbone_tls_hostname nats.example\n";
    assert_int_equal(s_parse(&cfg, text, err, sizeof(err)), 0);
    assert_string_equal(cfg.backbone,
                        "nats://10.0.0.1:4222, tls://nats2.example:4222");
    assert_string_equal(cfg.backbone_stream, "PARLEY_EU-1");
    assert_int_equal(cfg.backbone_replicas, 5);
    assert_int_equal(cfg.backbone_duplicate_window, 900);
    assert_int_equal(cfg.backbone_publish_timeout, 500);
    assert_string_equal(cfg.backbone_tls_hostname, "nats.example");
    assert_int_equal(pd_config_check(&cfg, err, sizeof(err)), 0);

    s_expect_error("backbone nats://user:secret@h:4222\n",
                   "test.conf:1: backbone: the server nats://user:secret@"
                   "h:4222 carries credentials; name a creds file "
                   "(backbone_creds) instead, so no secret sits in the "
                   "configuration");
    s_expect_error("backbone http://h:4222\n",
                   "test.conf:1: backbone: http://h:4222 is not a server URL "
                   "(nats://HOST:PORT or tls://HOST:PORT)");
    s_expect_error("backbone_stream PAR.LEY\n",
                   "test.conf:1: backbone_stream: 'PAR.LEY' is not 1-32 of "
                   "A-Z a-z 0-9 _ -");
    s_expect_error("backbone_replicas 6\n",
                   "test.conf:1: backbone_replicas: 6 is out of range (1 to "
                   "5)");
    s_expect_error("backbone_publish_timeout 10\n",
                   "test.conf:1: backbone_publish_timeout: 10 is out of "
                   "range (100 to 60000)");
    s_expect_error("backbone_tls_hostname a/b\n",
                   "test.conf:1: backbone_tls_hostname: 'a/b' is not a host "
                   "name");

    /* What only makes sense together. */
    pd_config_defaults(&cfg);
    assert_int_equal(pd_config_set(&cfg, "backbone_creds", "/x.creds", err,
                                   sizeof(err)),
                     0);
    assert_int_equal(pd_config_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "backbone is not"));
    assert_int_equal(pd_config_set(&cfg, "backbone", "nats://h:1", err,
                                   sizeof(err)),
                     0);
    assert_int_equal(pd_config_check(&cfg, err, sizeof(err)), 0);
    assert_int_equal(pd_config_set(&cfg, "backbone_tls_cert", "/c.pem", err,
                                   sizeof(err)),
                     0);
    assert_int_equal(pd_config_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "go together"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_comments_and_crlf),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_stats_interval),
        cmocka_unit_test(test_nul_and_long_lines),
        cmocka_unit_test(test_set_for_flags),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_include_dir),
        cmocka_unit_test(test_backbone_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
