/*
 * test_trust.c - issue 18, item 3: which files parleyd trusts, and how it
 * makes its own, with the real daemon.
 *
 * - A state directory, keyring or curve_clients (file, or a file in the
 *   directory) writable by group or others, or owned by another user, or
 *   in a directory others may write: parleyd refuses to start and the
 *   message names the file and the fix (chmod 700 DIR, chmod go-w FILE,
 *   chown). A keyring in a sticky directory (like /tmp) is fine. A keyring
 *   made writable by others is refused on SIGHUP too: the old one stays.
 * - Everything parleyd makes is its user's alone: the state directory
 *   0700, store.lock, segments, the demo key, its public half and the demo
 *   keyring 0600.
 * - demo.key.pub becomes the demo keyring's trust-everything key only if
 *   it is demo.key's public half.
 * - keyring.tmp, planted as a symlink, is not written through.
 */
#include "fault_util.h"
#include "security.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define S_TIMEOUT 5000
#define S_NOBODY 65534

typedef struct {
    fu_fix_t fx;
    char state[PH_PATH_MAX];   /* dir/state, made by the test when needed */
    ph_key_t key2;             /* a second signer, not in the keyring */
} s_fix_t;

static int
s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof(*f));
    if (f == NULL || fu_fix_init(&f->fx, 21) != 0
        || ph_key_make(&f->key2, f->fx.dir, "wire", 22) != 0
        || ph_path(f->state, sizeof(f->state), f->fx.dir, "state") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fix_t *f = *state;
    ph_key_free(&f->key2);
    fu_fix_done(&f->fx);
    free(f);
    return 0;
}

/*
 * Run parleyd on f's state directory with keyring (NULL: none, the demo)
 * and config (NULL: none); it must refuse to start (exit 1) with each of
 * want (NULL-terminated) on stderr.
 */
static void
s_refused(s_fix_t *f, const char *keyring, const char *config,
          const char *const *want)
{
    char api[PH_EP_MAX], feed[PH_EP_MAX];
    ph_endpoint(api, ph_free_port());
    ph_endpoint(feed, ph_free_port());
    const char *argv[16] = { PARLEYD_BIN, "--api", api, "--feed", feed,
                             "--state-dir", f->state };
    size_t n = 7;
    if (keyring != NULL) {
        argv[n++] = "--keyring";
        argv[n++] = keyring;
    }
    if (config != NULL) {
        argv[n++] = "-c";
        argv[n++] = config;
    }
    argv[n] = NULL;
    ph_proc_t p = PH_PROC_INIT;
    assert_int_equal(ph_run(&p, argv, NULL, NULL, NULL, S_TIMEOUT), 0);
    bool ok = !p.timed_out && p.status == 1;
    for (size_t i = 0; ok && want[i] != NULL; i++)
        if (strstr(p.err, want[i]) == NULL) {
            fprintf(stderr, "[trust] stderr lacks \"%s\"\n", want[i]);
            ok = false;
        }
    if (!ok) {
        ph_proc_report(&p, "parleyd");
        ph_proc_free(&p);
        fail_msg("parleyd did not refuse to start as it should");
    }
    ph_proc_free(&p);
}

static mode_t
s_mode(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static void
test_state_dir(void **state)
{
    s_fix_t *f = *state;
    char want[2][PH_PATH_MAX + 64];
    assert_int_equal(mkdir(f->state, 0700), 0);
    assert_int_equal(chmod(f->state, 0777), 0);
    snprintf(want[0], sizeof(want[0]), "state_dir %s is writable by group "
             "and others (mode 0777)", f->state);
    snprintf(want[1], sizeof(want[1]), "fix: chmod 700 %s", f->state);
    const char *w[] = { want[0], want[1], NULL };
    s_refused(f, f->fx.keyring, NULL, w);
    assert_int_equal(chmod(f->state, 0770), 0);
    const char *w2[] = { "writable by group (mode 0770)", want[1], NULL };
    s_refused(f, f->fx.keyring, NULL, w2);
    /* Readable by others is their business; writable is not. */
    assert_int_equal(chmod(f->state, 0755), 0);
    assert_int_equal(ph_daemon_start(&f->fx.d, f->fx.dir, f->fx.keyring, NULL), 0);
    assert_int_equal(ph_daemon_stop(&f->fx.d), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(f->state, S_NOBODY, S_NOBODY), 0);
        const char *w3[] = { "is owned by uid 65534", "fix: chown 0 ", NULL };
        s_refused(f, f->fx.keyring, NULL, w3);
    }
    f->fx.ok = true;
}

static void
test_keyring(void **state)
{
    s_fix_t *f = *state;
    char want[PH_PATH_MAX + 64], ringdir[PH_PATH_MAX], ring2[PH_PATH_MAX];
    assert_int_equal(chmod(f->fx.keyring, 0666), 0);
    snprintf(want, sizeof(want), "fix: chmod go-w %s", f->fx.keyring);
    const char *w[] = { "keyring ", "writable by group and others", want,
                        NULL };
    s_refused(f, f->fx.keyring, NULL, w);
    assert_int_equal(chmod(f->fx.keyring, 0620), 0);
    const char *w2[] = { "writable by group (mode 0620)", want, NULL };
    s_refused(f, f->fx.keyring, NULL, w2);
    assert_int_equal(chmod(f->fx.keyring, 0644), 0);

    /* In a directory others may write, someone could swap it... */
    ph_path(ringdir, sizeof(ringdir), f->fx.dir, "ring.d");
    ph_path(ring2, sizeof(ring2), ringdir, "keyring");
    assert_int_equal(mkdir(ringdir, 0700), 0);
    assert_int_equal(link(f->fx.keyring, ring2), 0);
    assert_int_equal(chmod(ringdir, 0777), 0);
    snprintf(want, sizeof(want), "its directory %s is writable by group and "
             "others", ringdir);
    const char *w3[] = { want, NULL };
    s_refused(f, ring2, NULL, w3);
    /* ... unless it is sticky, as /tmp is. */
    assert_int_equal(chmod(ringdir, 01777), 0);
    assert_int_equal(ph_daemon_start(&f->fx.d, f->fx.dir, ring2, NULL), 0);
    assert_int_equal(ph_daemon_stop(&f->fx.d), 0);

    if (geteuid() == 0) {
        assert_int_equal(chown(f->fx.keyring, S_NOBODY, S_NOBODY), 0);
        const char *w4[] = { "is owned by uid 65534", NULL };
        s_refused(f, f->fx.keyring, NULL, w4);
    }
    f->fx.ok = true;
}

static void
test_keyring_reload(void **state)
{
    s_fix_t *f = *state;
    char ring[2048] = "";
    assert_int_equal(ph_daemon_start(&f->fx.d, f->fx.dir, f->fx.keyring, NULL), 0);
    /* A second signer added, in a file anyone may now write. */
    assert_int_equal(ph_keyring_add(ring, sizeof(ring), &f->fx.key, "*", "*",
                                    "*"),
                     0);
    assert_int_equal(ph_keyring_add(ring, sizeof(ring), &f->key2, "*", "*",
                                    "*"),
                     0);
    assert_int_equal(ph_file_write(f->fx.keyring, ring, strlen(ring), 0666), 0);
    assert_int_equal(kill(f->fx.d.pid, SIGHUP), 0);
    assert_true(fu_wait_log(&f->fx.d, "reload FAILED", S_TIMEOUT));
    assert_true(fu_log_has(&f->fx.d, "writable by group and others"));
    fu_pub_t pub;
    assert_int_equal(fu_pub_open(&pub, f->fx.d.api, &f->key2), 0);
    assert_int_equal(fu_publish(&pub, "wire", 1, S_TIMEOUT),
                     PARLEY_EUNKNOWNSIGNER);
    /* Made private again, the same file is taken. */
    assert_int_equal(chmod(f->fx.keyring, 0644), 0);
    assert_int_equal(kill(f->fx.d.pid, SIGHUP), 0);
    assert_true(fu_wait_log(&f->fx.d, "(2 signers)", S_TIMEOUT));
    assert_int_equal(fu_publish(&pub, "wire", 2, S_TIMEOUT), 0);
    fu_pub_close(&pub);
    f->fx.ok = true;
}

static void
test_curve_clients(void **state)
{
    s_fix_t *f = *state;
    sec_curve_t srv, alice;
    char clients[PH_PATH_MAX], config[PH_PATH_MAX], text[2048];
    char want[PH_PATH_MAX + 64];
    assert_int_equal(sec_curve_make(&srv, f->fx.dir, "server.curve"), 0);
    assert_int_equal(sec_curve_make(&alice, f->fx.dir, "alice.curve"), 0);
    ph_path(clients, sizeof(clients), f->fx.dir, "clients");
    ph_path(config, sizeof(config), f->fx.dir, "parleyd.conf");
    snprintf(text, sizeof(text), "alice %s topics=*\n", alice.pub);
    assert_int_equal(ph_file_write(clients, text, strlen(text), 0666), 0);
    snprintf(text, sizeof(text),
             "curve on\ncurve_secret_key %s\ncurve_clients %s\n", srv.path,
             clients);
    assert_int_equal(du_config_write(config, text), 0);
    snprintf(want, sizeof(want), "curve_clients %s is writable by group and "
             "others (mode 0666)", clients);
    const char *w[] = { want, "chmod go-w", NULL };
    s_refused(f, f->fx.keyring, config, w);

    /* A directory of *.keys files: each file counts. */
    char cdir[PH_PATH_MAX], keys[PH_PATH_MAX];
    ph_path(cdir, sizeof(cdir), f->fx.dir, "clients.d");
    ph_path(keys, sizeof(keys), cdir, "alice.keys");
    assert_int_equal(mkdir(cdir, 0700), 0);
    snprintf(text, sizeof(text), "alice %s topics=*\n", alice.pub);
    assert_int_equal(ph_file_write(keys, text, strlen(text), 0646), 0);
    snprintf(text, sizeof(text),
             "curve on\ncurve_secret_key %s\ncurve_clients %s\n", srv.path,
             cdir);
    assert_int_equal(du_config_write(config, text), 0);
    snprintf(want, sizeof(want), "curve_clients %s is writable by others "
             "(mode 0646)", keys);
    const char *w2[] = { want, NULL };
    s_refused(f, f->fx.keyring, config, w2);
    f->fx.ok = true;
}

static void
test_modes(void **state)
{
    s_fix_t *f = *state;
    char path[PH_PATH_MAX];
    assert_int_equal(ph_daemon_start(&f->fx.d, f->fx.dir, f->fx.keyring, NULL), 0);
    fu_pub_t pub;
    assert_int_equal(fu_pub_open(&pub, f->fx.d.api, &f->fx.key), 0);
    assert_int_equal(fu_publish(&pub, "modes", 0, S_TIMEOUT), 0);
    fu_pub_close(&pub);
    assert_int_equal(s_mode(f->state), 0700);
    ph_path(path, sizeof(path), f->state, "store.lock");
    assert_int_equal(s_mode(path), 0600);
    ph_path(path, sizeof(path), f->state, "seg-00000000000000000001.log");
    assert_int_equal(s_mode(path), 0600);
    assert_int_equal(ph_daemon_stop(&f->fx.d), 0);

    /* The demo: key, public half and keyring. */
    char demo[PH_PATH_MAX];
    ph_path(demo, sizeof(demo), f->fx.dir, "demo");
    assert_int_equal(mkdir(demo, 0700), 0);
    assert_int_equal(ph_daemon_start(&f->fx.d, demo, NULL, NULL), 0);
    const char *files[] = { "keyring", "demo.key", "demo.key.pub" };
    for (size_t i = 0; i < 3; i++) {
        ph_path(path, sizeof(path), f->fx.d.state_dir, files[i]);
        if (s_mode(path) != 0600)
            fail_msg("%s has mode %04o, not 0600", path,
                     (unsigned)s_mode(path));
    }
    f->fx.ok = true;
}

static void
test_demo_pub(void **state)
{
    s_fix_t *f = *state;
    char key_path[PH_PATH_MAX], pub_path[PH_PATH_MAX], ring[PH_PATH_MAX];
    assert_int_equal(mkdir(f->state, 0700), 0);
    ph_path(key_path, sizeof(key_path), f->state, "demo.key");
    ph_path(pub_path, sizeof(pub_path), f->state, "demo.key.pub");
    ph_path(ring, sizeof(ring), f->state, "keyring");
    /* demo.key is key, demo.key.pub is key2's: not to be trusted. */
    assert_int_equal(parley_key_save(f->fx.key.key, key_path, "demo", 0), 0);
    char line[128];
    snprintf(line, sizeof(line), "%s planted\n", f->key2.pub_b64);
    assert_int_equal(ph_file_write(pub_path, line, strlen(line), 0644), 0);
    const char *w[] = { "is not the public half of", NULL };
    s_refused(f, NULL, NULL, w);
    assert_int_equal(access(ring, F_OK), -1);
    /* A demo.key.pub on its own neither. */
    assert_int_equal(unlink(key_path), 0);
    const char *w2[] = { "demo key ", NULL };
    s_refused(f, NULL, NULL, w2);
    assert_int_equal(access(ring, F_OK), -1);
    /* The real pair is reused, and trusted. */
    assert_int_equal(unlink(pub_path), 0);
    assert_int_equal(parley_key_save(f->fx.key.key, key_path, "demo", 0), 0);
    assert_int_equal(ph_daemon_start(&f->fx.d, f->fx.dir, NULL, NULL), 0);
    char *text = ph_file_read(ring, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, f->fx.key.pub_b64));
    free(text);
    f->fx.ok = true;
}

static void
test_keyring_tmp(void **state)
{
    s_fix_t *f = *state;
    char victim[PH_PATH_MAX], tmp[PH_PATH_MAX], ring[PH_PATH_MAX];
    const char *precious = "not a keyring\n";
    assert_int_equal(mkdir(f->state, 0700), 0);
    ph_path(victim, sizeof(victim), f->fx.dir, "victim");
    ph_path(tmp, sizeof(tmp), f->state, "keyring.tmp");
    ph_path(ring, sizeof(ring), f->state, "keyring");
    assert_int_equal(ph_file_write(victim, precious, strlen(precious), 0644),
                     0);
    assert_int_equal(symlink(victim, tmp), 0);
    assert_int_equal(ph_daemon_start(&f->fx.d, f->fx.dir, NULL, NULL), 0);
    char *text = ph_file_read(victim, NULL);
    assert_non_null(text);
    assert_string_equal(text, precious);
    free(text);
    struct stat st;
    assert_int_equal(lstat(ring, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(lstat(tmp, &st), -1);
    f->fx.ok = true;
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_state_dir),
        T(test_keyring),
        T(test_keyring_reload),
        T(test_curve_clients),
        T(test_modes),
        T(test_demo_pub),
        T(test_keyring_tmp),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
