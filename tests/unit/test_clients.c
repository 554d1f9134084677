/*
 * test_clients.c - the CURVE allow-list: its text, its errors, the topic
 * and stats checks made with it, its access classes, and what counts as
 * a narrowed list on reload.
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
#include "clients.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* Three key pairs made once; their Z85 public keys. */
static char s_pub[3][41];
static uint8_t s_raw[3][32];

static int
s_group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        char sec[41];
        if (zmq_curve_keypair(s_pub[i], sec) != 0
            || zmq_z85_decode(s_raw[i], s_pub[i]) == NULL)
            return -1;
    }
    return 0;
}

/* Expand "@0".."@2" into the Z85 keys. Returns a static buffer. */
static const char *
s_text(const char *tmpl)
{
    static char out[4096];
    size_t n = 0;
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (p[0] == '@' && p[1] >= '0' && p[1] <= '2') {
            memcpy(out + n, s_pub[p[1] - '0'], 40);
            n += 40;
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

static pd_clients_t *
s_ok(const char *tmpl)
{
    pd_clients_t *list = NULL;
    char err[256] = "";
    const char *text = s_text(tmpl);
    if (pd_clients_parse(&list, text, strlen(text), "t", err, sizeof(err)) != 0)
        fail_msg("refused: %s\n---\n%s", err, text);
    return list;
}

/* Must fail naming line N and word. */
static void
s_bad(const char *tmpl, unsigned line, const char *word)
{
    pd_clients_t *list = NULL;
    char err[256] = "", want[32];
    const char *text = s_text(tmpl);
    int rc = pd_clients_parse(&list, text, strlen(text), "t", err, sizeof(err));
    if (rc == 0) {
        pd_clients_destroy(&list);
        fail_msg("accepted:\n%s", text);
    }
    assert_int_equal(rc, -EINVAL);
    assert_null(list);
    snprintf(want, sizeof(want), "t:%u:", line);
    if (strstr(err, want) == NULL)
        fail_msg("message \"%s\" does not name %s", err, want);
    if (word != NULL && strstr(err, word) == NULL)
        fail_msg("message \"%s\" does not mention \"%s\"", err, word);
}

static void
test_parse_good(void **state)
{
    (void)state;
    pd_clients_t *l =
        s_ok("# allow-list\n"
             "\n"
             "mediators @0 topics=party/egypt/,neg/gaza-ceasefire/\n"
             "newsroom @1\r\n"
             "  archive\t@2 topics=*   # comment\n");
    assert_int_equal(pd_clients_size(l), 3);
    const pd_client_t *m = pd_clients_by_key(l, s_raw[0]);
    assert_non_null(m);
    assert_string_equal(m->name, "mediators");
    assert_false(m->all_topics);
    assert_int_equal(m->n_prefixes, 2);
    assert_string_equal(m->prefixes[1], "neg/gaza-ceasefire/");
    assert_true(pd_clients_by_name(l, "newsroom")->all_topics);
    assert_true(pd_clients_by_name(l, "archive")->all_topics);
    assert_ptr_equal(pd_clients_by_name(l, "archive"),
                     pd_clients_by_key(l, s_raw[2]));
    assert_null(pd_clients_by_name(l, "nobody"));
    assert_null(pd_clients_by_name(l, NULL));
    uint8_t other[32] = { 0 };
    assert_null(pd_clients_by_key(l, other));
    pd_clients_destroy(&l);
    assert_null(l);
    pd_clients_destroy(&l); /* accepts NULL */
}

static void
test_parse_errors(void **state)
{
    (void)state;
    s_bad("Bad-Name @0\n", 1, "slug");
    s_bad("# c\nalice\n", 2, "missing");
    s_bad("alice abc\n", 1, "Z85");
    s_bad("alice @0x\n", 1, "Z85");
    s_bad("alice @0\nbob @0\n", 2, "already listed as alice");
    s_bad("alice @0\nalice @1\n", 2, "twice");
    s_bad("alice @0 topics=party/egypt\n", 1, "must end with '/'");
    s_bad("alice @0 topics=\n", 1, "empty");
    s_bad("alice @0 topics=a/,,b/\n", 1, "empty item");
    s_bad("alice @0 topics=a/ topics=b/\n", 1, "repeated");
    s_bad("alice @0 parties=*\n", 1, "unknown");
    s_bad("alice @0 topics=\x01x/\n", 1, "printable");
    s_bad("alice @0 "
          "topics=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/\n",
          1, "longer than any topic");
    /* a NUL in the text */
    pd_clients_t *list = NULL;
    char err[128] = "";
    assert_int_equal(
        pd_clients_parse(&list, "a\0b\n", 4, "t", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "NUL"));
}

/* A failed parse leaves an existing list as it was. */
static void
test_parse_all_or_nothing(void **state)
{
    (void)state;
    pd_clients_t *l = s_ok("alice @0\n");
    char err[256];
    const char *text = s_text("bob @1\ncarol nokey\n");
    assert_int_equal(
        pd_clients_parse(&l, text, strlen(text), "u", err, sizeof(err)),
        -EINVAL);
    assert_non_null(l);
    assert_int_equal(pd_clients_size(l), 1);
    assert_null(pd_clients_by_name(l, "bob"));
    /* and appending a good one works, with duplicates across texts caught */
    text = s_text("bob @1\n");
    assert_int_equal(
        pd_clients_parse(&l, text, strlen(text), "u", err, sizeof(err)), 0);
    assert_int_equal(pd_clients_size(l), 2);
    text = s_text("alice2 @0\n");
    assert_int_equal(
        pd_clients_parse(&l, text, strlen(text), "v", err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "v:1:"));
    assert_int_equal(pd_clients_size(l), 2);
    pd_clients_destroy(&l);
}

/*
 * The ACL: a client limited to party/egypt/ may subscribe to it and to
 * narrower prefixes, never to "", "party/", "party/e" or "party/egypt"
 * (without the slash), which would reach other parties.
 */
static void
test_may_subscribe(void **state)
{
    (void)state;
    pd_clients_t *l = s_ok("m @0 topics=party/egypt/\nall @1\n");
    const pd_client_t *m = pd_clients_by_name(l, "m");
    const pd_client_t *all = pd_clients_by_name(l, "all");
    static const char *const no[] = {
        "",     "p",    "party/",         "party/e", "party/egypt",
        "all/", "neg/", "party/egypt-2/", "sys"
    };
    static const char *const yes[] = { "party/egypt/", "party/egypt/x",
                                       "sys/heartbeat/" };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (pd_client_may_subscribe(m, no[i], strlen(no[i])))
            fail_msg("limited client may subscribe to \"%s\"", no[i]);
        assert_true(pd_client_may_subscribe(all, no[i], strlen(no[i])));
    }
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(pd_client_may_subscribe(m, yes[i], strlen(yes[i])));
    /* sys/: heartbeats for everyone, the counters with stats only */
    assert_false(pd_client_may_subscribe(m, "sys/", 4));
    assert_false(pd_client_may_subscribe(all, "sys/", 4));
    assert_false(pd_client_may_subscribe(m, "sys/stats/", 10));
    assert_true(pd_client_may_subscribe(all, "sys/stats/", 10));
    assert_false(pd_client_may_subscribe(all, "sys/other/", 10));
    /* no client (a key not on the list): heartbeats only */
    assert_true(pd_client_may_subscribe(NULL, "sys/heartbeat/", 14));
    assert_false(pd_client_may_subscribe(NULL, "sys/stats/", 10));
    assert_false(pd_client_may_subscribe(NULL, "all/", 4));
    assert_false(pd_client_may_subscribe(NULL, "", 0));
    /* length is honoured: "party/egypt/" cut to 6 bytes is "party/" */
    assert_false(pd_client_may_subscribe(m, "party/egypt/", 6));
    pd_clients_destroy(&l);
}

static void
test_may_read(void **state)
{
    (void)state;
    pd_clients_t *l = s_ok("m @0 topics=party/egypt/,phase/3/\nall @1\n");
    const pd_client_t *m = pd_clients_by_name(l, "m");
    const char t1[][PARLEY_TOPIC_MAX] = { "all/", "neg/gaza-ceasefire/",
                                          "party/israel/", "party/egypt/",
                                          "phase/1/" };
    const char t2[][PARLEY_TOPIC_MAX] = { "all/", "neg/gaza-ceasefire/",
                                          "party/israel/", "phase/1/" };
    const char t3[][PARLEY_TOPIC_MAX] = { "all/", "party/us/", "phase/3/" };
    assert_true(pd_client_may_read(m, t1, 5));
    assert_false(pd_client_may_read(m, t2, 4));
    assert_true(pd_client_may_read(m, t3, 3));
    assert_true(pd_client_may_read(pd_clients_by_name(l, "all"), t2, 4));
    assert_false(pd_client_may_read(NULL, t1, 5));
    pd_clients_destroy(&l);
}

/*
 * stats=: by default with every topic and not with a list; either way on
 * request. Only yes and no, once.
 */
static void
test_stats_permission(void **state)
{
    (void)state;
    pd_clients_t *l = s_ok("a @0\nb @1 topics=party/egypt/ stats=yes\n"
                           "c @2 topics=* stats=no\n");
    assert_true(pd_clients_by_name(l, "a")->stats);
    assert_true(pd_clients_by_name(l, "b")->stats);
    assert_false(pd_clients_by_name(l, "c")->stats);
    pd_clients_destroy(&l);
    l = s_ok("d @0 topics=party/egypt/\n");
    assert_false(pd_clients_by_name(l, "d")->stats);
    pd_clients_destroy(&l);
    s_bad("a @0 stats=maybe\n", 1, "yes or no");
    s_bad("a @0 stats=yes stats=no\n", 1, "repeated");
}

/*
 * Access classes: one per set of rights (topics as a set, stats), class 0
 * for every topic with stats; a list with the same rights numbered alike
 * has the same classes.
 */
static void
test_classes(void **state)
{
    (void)state;
    pd_clients_t *l = s_ok("m @0 topics=party/egypt/,neg/x/\n"
                           "n @1 topics=neg/x/,party/egypt/\n"
                           "all @2\n");
    assert_int_equal(pd_clients_classes(l), 2);
    assert_int_equal(pd_clients_by_name(l, "all")->klass, 0);
    assert_int_equal(pd_clients_by_name(l, "m")->klass, 1);
    assert_int_equal(pd_clients_by_name(l, "n")->klass, 1); /* a set */
    assert_ptr_equal(pd_clients_class_member(l, 0),
                     pd_clients_by_name(l, "all"));
    assert_ptr_equal(pd_clients_class_member(l, 1),
                     pd_clients_by_name(l, "m"));
    assert_null(pd_clients_class_member(l, 2));

    pd_clients_t *same = s_ok("n @1 topics=party/egypt/,neg/x/\n");
    assert_true(pd_clients_same_classes(l, same)); /* class 0 is always */
    pd_clients_t *stats = s_ok("m @0 topics=party/egypt/,neg/x/ stats=yes\n");
    assert_false(pd_clients_same_classes(l, stats));
    pd_clients_t *none = s_ok("all @2\n");
    assert_int_equal(pd_clients_classes(none), 1);
    assert_false(pd_clients_same_classes(l, none));
    assert_true(pd_clients_same_classes(NULL, none));
    /* nobody with every topic: class 0 has no member */
    assert_null(pd_clients_class_member(same, 0));
    assert_int_equal(pd_clients_classes(NULL), 1);
    pd_clients_destroy(&l);
    pd_clients_destroy(&same);
    pd_clients_destroy(&stats);
    pd_clients_destroy(&none);

    /* PD_CLIENTS_CLASSES_MAX classes at most: class 0 and 31 lists */
    char text[8192];
    size_t n = 0;
    for (int i = 0; i < PD_CLIENTS_CLASSES_MAX; i++) {
        char key[41], sec[41];
        assert_int_equal(zmq_curve_keypair(key, sec), 0);
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "c%d %s topics=party/p%d/\n", i, key, i);
    }
    pd_clients_t *many = NULL;
    char err[256] = "";
    assert_int_equal(pd_clients_parse(&many, text, n, "t", err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "access classes"));
    assert_null(many);
    /* one fewer fits */
    size_t cut = n;
    while (cut > 0 && text[cut - 1] == '\n')
        cut--;
    while (cut > 0 && text[cut - 1] != '\n')
        cut--;
    assert_int_equal(pd_clients_parse(&many, text, cut, "t", err, sizeof(err)),
                     0);
    assert_int_equal(pd_clients_classes(many), PD_CLIENTS_CLASSES_MAX);
    pd_clients_destroy(&many);
}

static void
test_narrowed(void **state)
{
    (void)state;
    pd_clients_t *a = s_ok("m @0 topics=party/egypt/\nall @1\n");
    pd_clients_t *same = s_ok("all @1\nm @0 topics=party/egypt/\n");
    pd_clients_t *more = s_ok("all @1\nm @0 topics=party/egypt/\nn @2\n");
    pd_clients_t *gone = s_ok("m @0 topics=party/egypt/\n");
    pd_clients_t *narrower = s_ok("m @0 topics=party/egypt/\nall @1 "
                                  "topics=all/\n");
    pd_clients_t *renamed = s_ok("m2 @0 topics=party/egypt/\nall @1\n");
    pd_clients_t *no_stats = s_ok("m @0 topics=party/egypt/\nall @1 "
                                  "stats=no\n");
    assert_false(pd_clients_narrowed(a, same));
    assert_false(pd_clients_narrowed(a, more));
    assert_true(pd_clients_narrowed(a, gone));
    assert_true(pd_clients_narrowed(a, narrower));
    assert_true(pd_clients_narrowed(a, renamed));
    assert_true(pd_clients_narrowed(a, no_stats));
    pd_clients_destroy(&no_stats);
    assert_false(pd_clients_narrowed(NULL, a));
    pd_clients_destroy(&a);
    pd_clients_destroy(&same);
    pd_clients_destroy(&more);
    pd_clients_destroy(&gone);
    pd_clients_destroy(&narrower);
    pd_clients_destroy(&renamed);
}

/* A directory: every *.keys file, in name order, as one list. */
static void
test_load_dir_and_file(void **state)
{
    (void)state;
    char dir[200], path[256], err[256];
    int rc;
    assert_int_equal(test_tmpdir_make(dir, sizeof(dir), "parley-clients-"), 0);
    snprintf(path, sizeof(path), "%s/b.keys", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s_text("bob @1 topics=party/us/\n"), f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/a.keys", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(s_text("alice @0\n"), f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/ignored.txt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not read\n", f);
    fclose(f);

    pd_clients_t *l = pd_clients_load(dir, err, sizeof(err), &rc);
    if (l == NULL)
        fail_msg("load %s: %s", dir, err);
    assert_int_equal(pd_clients_size(l), 2);
    assert_non_null(pd_clients_by_name(l, "bob"));
    pd_clients_destroy(&l);

    /* one file alone */
    snprintf(path, sizeof(path), "%s/a.keys", dir);
    l = pd_clients_load(path, err, sizeof(err), &rc);
    assert_non_null(l);
    assert_int_equal(pd_clients_size(l), 1);
    pd_clients_destroy(&l);

    /* a bad file in the directory spoils the whole list, and is named */
    snprintf(path, sizeof(path), "%s/c.keys", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(s_text("# ok\ncarol @0\n"), f);
    fclose(f);
    l = pd_clients_load(dir, err, sizeof(err), &rc);
    assert_null(l);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "c.keys:2:"));
    unlink(path);

    /* missing */
    snprintf(path, sizeof(path), "%s/none", dir);
    l = pd_clients_load(path, err, sizeof(err), &rc);
    assert_null(l);
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "none"));

    snprintf(path, sizeof(path), "%s/a.keys", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.keys", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/ignored.txt", dir);
    unlink(path);
    /* an empty directory is an empty list (nobody may connect) */
    l = pd_clients_load(dir, err, sizeof(err), &rc);
    assert_non_null(l);
    assert_int_equal(pd_clients_size(l), 0);
    pd_clients_destroy(&l);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_all_or_nothing),
        cmocka_unit_test(test_may_subscribe),
        cmocka_unit_test(test_may_read),
        cmocka_unit_test(test_stats_permission),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_narrowed),
        cmocka_unit_test(test_load_dir_and_file),
    };
    return cmocka_run_group_tests(tests, s_group_setup, NULL);
}
