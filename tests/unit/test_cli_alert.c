/*
 * test_cli_alert.c - the alert path of parley sub without sockets: the
 * backoff (retry.c), the cursor file (cursor.c), and the order, retries,
 * dead letters and cursor moves of alert.c, driven by a scripted handler.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "alert.h"
#include "cursor.h"
#include "delivery_fixture.h"
#include "retry.h"
#include "../tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- retry */

static void
test_retry_backoff(void **state)
{
    (void)state;
    cli_retry_t r = { .window_ms = 60000, .min_ms = 1000, .max_ms = 8000 };
    /* the nominal wait doubles from 1 s to 8 s; jitter takes [d/2, d] */
    int64_t nominal[] = { 1000, 2000, 4000, 8000, 8000, 8000 };
    for (unsigned n = 1; n <= 6; n++) {
        int64_t d = nominal[n - 1];
        assert_int_equal(cli_retry_next(&r, n, 0, 10000, 0, 0), 10000 + d / 2);
        assert_int_equal(cli_retry_next(&r, n, 0, 10000, 0, 0xffffffffu)
                             <= 10000 + d,
                         1);
        assert_int_equal(cli_retry_next(&r, n, 0, 10000, 0, (uint32_t)(d / 2)),
                         10000 + d);
    }
    /* the last attempt is made when the window closes, then none */
    assert_int_equal(cli_retry_next(&r, 9, 0, 59000, 0, 12345), 60000);
    assert_int_equal(cli_retry_next(&r, 9, 0, 60000, 0, 12345), -1);
    /* Retry-After is honoured within the window */
    assert_int_equal(cli_retry_next(&r, 1, 0, 1000, 30000, 0), 31000);
    assert_int_equal(cli_retry_next(&r, 1, 0, 1000, 300000, 0), 60000);
    /* no window: no retries */
    cli_retry_t none = { .window_ms = 0, .min_ms = 1000, .max_ms = 8000 };
    assert_int_equal(cli_retry_next(&none, 1, 0, 0, 0, 0), -1);
}

/* ------------------------------------------------------------ cursor */

typedef struct {
    char dir[512];
    char path[600];
} s_files_t;

static int
s_setup(void **state)
{
    s_files_t *f = calloc(1, sizeof(*f));
    if (f == NULL || test_tmpdir_make(f->dir, sizeof(f->dir), "parley-alert-")
                         != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/cursor", f->dir);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_files_t *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char path[1024];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static char *
s_read(const char *path)
{
    static char buf[256];
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void
test_cursor_file(void **state)
{
    s_files_t *f = *state;
    char err[512];
    cli_cursor_t c = CLI_CURSOR_INIT, other = CLI_CURSOR_INIT;
    /* no file yet: a cursor of 0 */
    assert_int_equal(cli_cursor_open(&c, f->path, err, sizeof(err)), 0);
    assert_int_equal(c.seq, 0);
    /* a second user of the cursor is refused while the first holds it */
    assert_int_equal(cli_cursor_open(&other, f->path, err, sizeof(err)),
                     -EWOULDBLOCK);
    assert_non_null(strstr(err, "in use by another parley sub"));
    cli_cursor_close(&other);
    assert_int_equal(cli_cursor_write(&c, 41, err, sizeof(err)), 0);
    assert_string_equal(s_read(f->path), "41\n");
    /* it never moves back */
    assert_int_equal(cli_cursor_write(&c, 7, err, sizeof(err)), 0);
    assert_string_equal(s_read(f->path), "41\n");
    assert_int_equal(c.writes, 1);
    /* no temporary file is left behind */
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    assert_int_equal(access(tmp, F_OK), -1);
    cli_cursor_close(&c);
    /* the next start reads it */
    assert_int_equal(cli_cursor_open(&c, f->path, err, sizeof(err)), 0);
    assert_int_equal(c.seq, 41);
    cli_cursor_close(&c);
    /* a file that is not a cursor is refused, and said so */
    FILE *fp = fopen(f->path, "w");
    fputs("forty-one\n", fp);
    fclose(fp);
    assert_int_equal(cli_cursor_open(&c, f->path, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not hold a cursor"));
    cli_cursor_close(&c);
    /* a close of a cursor never opened is fine */
    cli_cursor_close(&other);
}

/* ------------------------------------------------------ alert path */

/* A scripted handler: which seqs fail, and on which attempts. */
typedef struct {
    uint64_t running[8];    /* seq per slot, 0 = none */
    uint64_t fail_seq;      /* this seq fails... */
    unsigned fail_times;    /* ...its first fail_times attempts (0: all) */
    uint64_t flaky_seq;     /* this seq fails its first attempt */
    uint64_t order[64];     /* seqs of attempts, in start order */
    size_t n_order;
    int hold;               /* attempts stay running while set... */
    uint64_t release;       /* ...except those of seqs with this bit */
} s_script_t;

static int
s_h_start(void *self, int slot, const cli_job_t *job, char *err, size_t cap)
{
    s_script_t *s = self;
    (void)err, (void)cap;
    s->running[slot] = job->seq;
    if (s->n_order < 64)
        s->order[s->n_order++] = job->seq;
    return 0;
}

static int
s_h_poll(void *self, int slot, char *err, size_t cap, int64_t *hint)
{
    s_script_t *s = self;
    uint64_t seq = s->running[slot];
    *hint = 0;
    if (s->hold && (seq >= 64 || (s->release & (1ull << seq)) == 0))
        return 0;
    s->running[slot] = 0;
    int attempts = 0;
    for (size_t i = 0; i < s->n_order; i++)
        attempts += s->order[i] == seq;
    if ((seq == s->fail_seq
         && (s->fail_times == 0 || attempts <= (int)s->fail_times))
        || (seq == s->flaky_seq && attempts == 1)) {
        snprintf(err, cap, "handler failed on #%llu", (unsigned long long)seq);
        return -1;
    }
    return 1;
}

static void
s_h_stop(void *self, int slot)
{
    (void)self, (void)slot;
}

static int
s_h_timeout(void *self)
{
    (void)self;
    return 0;
}

static const char *
s_h_name(void *self)
{
    (void)self;
    return "script";
}

static const cli_handler_ops_t s_script_ops = {
    .start = s_h_start,
    .poll = s_h_poll,
    .stop = s_h_stop,
    .timeout = s_h_timeout,
    .name = s_h_name,
};

/* Push deliveries first..last (seq = index). */
static void
s_push(cli_alerts_t *a, uint64_t first, uint64_t last)
{
    for (uint64_t s = first; s <= last; s++) {
        fx_update_t f = { 0 };
        parley_delivery_t *d = fx_delivery(s, &f);
        assert_non_null(d);
        assert_int_equal(cli_alerts_push(a, d), 0);
        parley_delivery_destroy(&d);
    }
}

/* Step until idle (the retry waits are made 0 by a tiny window). */
static void
s_drain(cli_alerts_t *a)
{
    for (int i = 0; i < 100000 && !cli_alerts_idle(a); i++) {
        int due = cli_alerts_step(a);
        if (due > 0) {
            struct timespec ts = { 0, (long)due * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    assert_true(cli_alerts_idle(a));
}

/* One job at a time: a failing update is retried, and nothing overtakes
 * it. (The window is far longer than the test takes: no clock decides.) */
static void
test_alerts_order_and_retries(void **state)
{
    s_files_t *f = *state;
    char err[512];
    cli_common_t c;
    cli_common_init(&c);
    c.quiet = 1;
    cli_cursor_t cur = CLI_CURSOR_INIT;
    assert_int_equal(cli_cursor_open(&cur, f->path, err, sizeof(err)), 0);
    s_script_t s = { .fail_seq = 3, .fail_times = 3, .flaky_seq = 2 };
    cli_retry_t retry = { .window_ms = 600000, .min_ms = 1, .max_ms = 2 };
    cli_alerts_t a;
    assert_int_equal(cli_alerts_init(&a, &c, &s_script_ops, &s, 1, &retry,
                                     &cur, NULL),
                     0);
    s_push(&a, 1, 5);
    s_drain(&a);
    uint64_t want[] = { 1, 2, 2, 3, 3, 3, 3, 4, 5 };
    assert_int_equal(s.n_order, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < s.n_order; i++)
        assert_int_equal(s.order[i], want[i]);
    assert_int_equal(a.stats.handled, 5);
    assert_int_equal(a.stats.retried, 4);
    assert_int_equal(a.stats.failed, 4);
    assert_int_equal(a.stats.dead_lettered, 0);
    assert_int_equal(cur.seq, 5);
    assert_string_equal(s_read(f->path), "5\n");
    cli_alerts_free(&a);
    cli_cursor_close(&cur);
}

/* No retry window: an update that fails goes to the dead-letter file at
 * once, and the next ones are handled. */
static void
test_alerts_dead_letter(void **state)
{
    s_files_t *f = *state;
    char err[512], dead[700];
    cli_common_t c;
    cli_common_init(&c);
    c.quiet = 1;
    cli_cursor_t cur = CLI_CURSOR_INIT;
    assert_int_equal(cli_cursor_open(&cur, f->path, err, sizeof(err)), 0);
    snprintf(dead, sizeof(dead), "%s/dead", f->dir);
    s_script_t s = { .fail_seq = 3 };
    cli_retry_t retry = { .window_ms = 0, .min_ms = 1, .max_ms = 2 };
    cli_alerts_t a;
    assert_int_equal(cli_alerts_init(&a, &c, &s_script_ops, &s, 1, &retry,
                                     &cur, dead),
                     0);
    strcpy(a.daemon_id, "00112233445566778899aabbccddeeff");
    s_push(&a, 1, 5);
    s_drain(&a);
    uint64_t want[] = { 1, 2, 3, 4, 5 };
    assert_int_equal(s.n_order, 5);
    for (size_t i = 0; i < s.n_order; i++)
        assert_int_equal(s.order[i], want[i]);
    assert_int_equal(a.stats.handled, 4);
    assert_int_equal(a.stats.dead_lettered, 1);
    assert_int_equal(a.stats.retried, 0);
    assert_int_equal(cur.seq, 5);
    /* the dead letter: one JSON line for #3 */
    FILE *fp = fopen(dead, "r");
    assert_non_null(fp);
    char line[16384];
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_null(fgets(line + strlen(line), 10, fp));
    fclose(fp);
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "key")),
                        "00112233445566778899aabbccddeeff/3");
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "error")),
                        "handler failed on #3");
    assert_string_equal(json_string_value(json_object_get(o, "handler")),
                        "script");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(o, "update"), "seq")),
                     3);
    json_decref(o);
    cli_alerts_free(&a);
    cli_cursor_close(&cur);
}

/* With several jobs, the cursor stays below the oldest update not done. */
static void
test_alerts_cursor_low_water(void **state)
{
    s_files_t *f = *state;
    char err[512];
    cli_common_t c;
    cli_common_init(&c);
    c.quiet = 1;
    cli_cursor_t cur = CLI_CURSOR_INIT;
    assert_int_equal(cli_cursor_open(&cur, f->path, err, sizeof(err)), 0);
    s_script_t s = { .hold = 1 };
    cli_retry_t retry = { .window_ms = 0, .min_ms = 1, .max_ms = 1 };
    cli_alerts_t a;
    assert_int_equal(cli_alerts_init(&a, &c, &s_script_ops, &s, 3, &retry,
                                     &cur, NULL),
                     0);
    s_push(&a, 10, 12);
    cli_alerts_step(&a); /* all three start */
    assert_int_equal(s.n_order, 3);
    /* #11 and #12 finish first: the cursor may not pass #10 */
    s.release = 1ull << 11 | 1ull << 12;
    cli_alerts_step(&a);
    assert_int_equal(a.stats.handled, 2);
    assert_int_equal(cur.seq, 9);
    assert_int_equal(cli_alerts_lag(&a, 12), 3);
    /* #10 done: the cursor moves to 12 */
    s.release |= 1ull << 10;
    cli_alerts_step(&a);
    assert_int_equal(a.stats.handled, 3);
    assert_int_equal(cur.seq, 12);
    assert_int_equal(cli_alerts_lag(&a, 12), 0);
    /* skipped seqs (a local filter) let the cursor pass at the next commit */
    cli_alerts_skip(&a, 15);
    cli_alerts_commit(&a);
    assert_int_equal(cur.seq, 15);
    char *json = cli_alerts_stats_json(&a, 20);
    assert_non_null(strstr(json, "\"handled\":3"));
    assert_non_null(strstr(json, "\"lag\":5"));
    free(json);
    cli_alerts_free(&a);
    cli_cursor_close(&cur);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test_setup_teardown(test_cursor_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_alerts_order_and_retries, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_alerts_dead_letter, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_alerts_cursor_low_water, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
