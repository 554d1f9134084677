/*
 * test_keys.c - key pairs, key files, key ids, public key text, and the
 * signer_seq state file.
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
#include "keys.h"
#include "parley.h"
#include "types.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------- helpers */

/* Each test gets a fresh temporary directory, removed afterwards. */
typedef struct {
    char dir[256];
} s_tmp_t;

static int
s_setup(void **state)
{
    s_tmp_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -1;
    if (test_tmpdir_make(t->dir, sizeof(t->dir), "parley-test-keys-") != 0) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int
s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
s_teardown(void **state)
{
    s_tmp_t *t = *state;
    /* the directory is ours and freshly made; nothing else lives there */
    int rc = nftw(t->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return rc;
}

static void
s_path(const s_tmp_t *t, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", t->dir, name);
}

static void
s_write(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Read a whole (small) file into buf, NUL-terminated; returns length. */
static size_t
s_read(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

static parley_key_t *
s_seed_key(uint8_t fill)
{
    uint8_t seed[32];
    memset(seed, fill, sizeof(seed));
    parley_key_t *k = parley_key_from_seed(seed);
    assert_non_null(k);
    return k;
}

static uint64_t
s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --------------------------------------------------------- key pairs */

static void
test_generate_and_seed(void **state)
{
    (void)state;
    uint8_t a[32], b[32], c[32];
    parley_key_t *k1 = parley_key_generate(), *k2 = parley_key_generate();
    assert_non_null(k1);
    assert_non_null(k2);
    parley_key_public(k1, a);
    parley_key_public(k2, b);
    assert_memory_not_equal(a, b, 32);

    /* a seed determines the pair, and it is libsodium's Ed25519 pair */
    uint8_t seed[32], pk[32], sk[64];
    for (size_t i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i * 3 + 1);
    parley_key_t *s1 = parley_key_from_seed(seed),
                 *s2 = parley_key_from_seed(seed);
    parley_key_public(s1, a);
    parley_key_public(s2, b);
    assert_memory_equal(a, b, 32);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    assert_memory_equal(a, pk, 32);
    assert_memory_equal(parley__key_secret(s1), sk, 64);
    parley_key_public(k1, c);
    assert_memory_not_equal(a, c, 32);

    parley_key_destroy(&k1);
    parley_key_destroy(&k2);
    parley_key_destroy(&s1);
    parley_key_destroy(&s2);
    assert_null(k1);
    assert_null(s2);
    parley_key_destroy(&k1); /* pointer to NULL */
    parley_key_destroy(NULL);
}

static void
test_save_load_roundtrip(void **state)
{
    s_tmp_t *t = *state;
    char path[512], pubpath[512];
    uint8_t pk[32], pk2[32];
    s_path(t, "mediator", path, sizeof(path));
    s_path(t, "mediator.pub", pubpath, sizeof(pubpath));

    parley_key_t *k = parley_key_generate();
    assert_non_null(k);
    assert_int_equal(parley_key_save(k, path, "mediator@cairo", 0), 0);
    parley_key_t *l = parley_key_load(path);
    assert_non_null(l);
    parley_key_public(k, pk);
    parley_key_public(l, pk2);
    assert_memory_equal(pk, pk2, 32);
    assert_memory_equal(parley__key_secret(k), parley__key_secret(l), 64);
    assert_int_equal(parley_pubkey_load(pubpath, pk2), 0);
    assert_memory_equal(pk, pk2, 32);

    /* a loaded key signs what verifies against the original public key */
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)"m", 1,
                         parley__key_secret(l));
    assert_int_equal(
        crypto_sign_verify_detached(sig, (const uint8_t *)"m", 1, pk), 0);

    parley_key_destroy(&k);
    parley_key_destroy(&l);
}

static void
test_saved_file_formats(void **state)
{
    s_tmp_t *t = *state;
    char path[512], pubpath[512], buf[1024], b64[45];
    struct stat st;
    uint8_t pk[32], sk[64];
    size_t bin_len = 0;
    s_path(t, "desk", path, sizeof(path));
    s_path(t, "desk.pub", pubpath, sizeof(pubpath));
    parley_key_t *k = s_seed_key(0x31);
    parley_key_public(k, pk);
    parley_pubkey_format(pk, b64);

    /* restrictive umask or not, the secret is 0600 */
    mode_t old = umask(0);
    int rc = parley_key_save(k, path, "cairo desk", 0);
    umask(old);
    assert_int_equal(rc, 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);

    /* secret: a header line, then base64 of the 64-byte secret key */
    s_read(path, buf, sizeof(buf));
    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    assert_true(nl > buf);
    char *b = nl + 1;
    char *nl2 = strchr(b, '\n');
    assert_non_null(nl2);
    assert_string_equal(nl2 + 1, ""); /* exactly two lines */
    assert_int_equal(sodium_base642bin(sk, sizeof(sk), b, (size_t)(nl2 - b),
                                       NULL, &bin_len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(bin_len, 64);
    assert_memory_equal(sk, parley__key_secret(k), 64);
    assert_memory_equal(sk + 32, pk, 32);
    sodium_memzero(sk, sizeof(sk));

    /* public: one line, "BASE64 comment" */
    char expect[128];
    snprintf(expect, sizeof(expect), "%s cairo desk\n", b64);
    s_read(pubpath, buf, sizeof(buf));
    assert_string_equal(buf, expect);
    assert_int_equal(strlen(b64), 44);

    /* no comment: just the key */
    s_path(t, "bare", path, sizeof(path));
    s_path(t, "bare.pub", pubpath, sizeof(pubpath));
    assert_int_equal(parley_key_save(k, path, NULL, 0), 0);
    s_read(pubpath, buf, sizeof(buf));
    snprintf(expect, sizeof(expect), "%s\n", b64);
    assert_string_equal(buf, expect);
    s_path(t, "empty", path, sizeof(path));
    s_path(t, "empty.pub", pubpath, sizeof(pubpath));
    assert_int_equal(parley_key_save(k, path, "", 0), 0);
    s_read(pubpath, buf, sizeof(buf));
    assert_string_equal(buf, expect);

    /* a comment with line breaks cannot break the one-line format */
    s_path(t, "multi", path, sizeof(path));
    s_path(t, "multi.pub", pubpath, sizeof(pubpath));
    assert_int_equal(parley_key_save(k, path, "line one\nline two\r\n", 0), 0);
    s_read(pubpath, buf, sizeof(buf));
    assert_int_equal(strncmp(buf, b64, 44), 0);
    assert_int_equal(buf[44], ' ');
    assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);
    assert_null(strchr(buf, '\r'));
    uint8_t pk2[32];
    assert_int_equal(parley_pubkey_load(pubpath, pk2), 0);
    assert_memory_equal(pk2, pk, 32);

    parley_key_destroy(&k);
}

static void
test_load_refuses_open_permissions(void **state)
{
    s_tmp_t *t = *state;
    char path[512];
    s_path(t, "k", path, sizeof(path));
    parley_key_t *k = s_seed_key(0x32);
    assert_int_equal(parley_key_save(k, path, NULL, 0), 0);

    static const mode_t bad[] = { 0644, 0640, 0604,       0660,
                                  0601, 0610, 0700 | 0004 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        errno = 0;
        parley_key_t *l = parley_key_load(path);
        if (l != NULL)
            fail_msg("mode %04o accepted", (unsigned)bad[i]);
        assert_int_equal(errno, -PARLEY_EKEYPERM);
        assert_string_equal(parley_error_name(-errno), "key_permissions");
    }
    /* 0600 and 0400 are fine */
    static const mode_t good[] = { 0600, 0400 };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(chmod(path, good[i]), 0);
        parley_key_t *l = parley_key_load(path);
        assert_non_null(l);
        parley_key_destroy(&l);
    }
    /* owned by someone else (only root can arrange that) */
    if (geteuid() == 0) {
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(chown(path, 65534, 65534), 0);
        errno = 0;
        assert_null(parley_key_load(path));
        assert_int_equal(errno, -PARLEY_EKEYPERM);
    }
    /* a directory is not a key file */
    char dir[512];
    s_path(t, "dir", dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    errno = 0;
    assert_null(parley_key_load(dir));
    assert_true(errno == -PARLEY_EKEYPERM || errno == -PARLEY_EKEYFILE
                || errno == EISDIR);
    parley_key_destroy(&k);
}

static void
test_load_refuses_bad_files(void **state)
{
    s_tmp_t *t = *state;
    char path[512], good[1024], buf[1024];
    s_path(t, "good", path, sizeof(path));
    parley_key_t *k = s_seed_key(0x33);
    assert_int_equal(parley_key_save(k, path, NULL, 0), 0);
    s_read(path, good, sizeof(good));
    char *nl = strchr(good, '\n');
    assert_non_null(nl);
    size_t hl = (size_t)(nl - good); /* header length */

    /* base64 of 63 and 65 bytes */
    uint8_t raw[65];
    char b63[100], b65[100];
    memset(raw, 7, sizeof(raw));
    sodium_bin2base64(b63, sizeof(b63), raw, 63,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b65, sizeof(b65), raw, 65,
                      sodium_base64_VARIANT_ORIGINAL);

    char cases[10][512];
    int n = 0;
    snprintf(cases[n++], 512, "%s", "");
    snprintf(cases[n++], 512, "%s", "hello world\n");
    snprintf(cases[n++], 512, "%.*s\n", (int)hl, good); /* header only */
    snprintf(cases[n++], 512, "%.*s\n%s\n", (int)hl, good, "!!!not base64!!!");
    snprintf(cases[n++], 512, "%.*s\n%s\n", (int)hl, good, b63);
    snprintf(cases[n++], 512, "%.*s\n%s\n", (int)hl, good, b65);
    snprintf(cases[n++], 512, "not-the-header\n%s", nl + 1); /* bad header */
    snprintf(cases[n++], 512, "%s", nl + 1);                 /* no header */
    snprintf(cases[n++], 512, "%.*s\n%.*s\n", (int)hl, good, 40,
             nl + 1); /* cut */
    for (int i = 0; i < n; i++) {
        s_write(path, cases[i], strlen(cases[i]), 0600);
        errno = 0;
        parley_key_t *l = parley_key_load(path);
        if (l != NULL || errno != -PARLEY_EKEYFILE)
            fail_msg("case %d (\"%.40s\"): key %p errno %d", i, cases[i],
                     (void *)l, errno);
    }
    /* a big file is not a key file either */
    char *big = malloc(1 << 20);
    assert_non_null(big);
    memset(big, 'A', 1 << 20);
    memcpy(big, good, strlen(good));
    s_write(path, big, 1 << 20, 0600);
    free(big);
    errno = 0;
    assert_null(parley_key_load(path));
    assert_int_equal(errno, -PARLEY_EKEYFILE);

    /* the original text loads again (the cases above were the problem) */
    s_write(path, good, strlen(good), 0600);
    parley_key_t *l = parley_key_load(path);
    assert_non_null(l);
    parley_key_destroy(&l);

    /* missing file: the system error */
    s_path(t, "missing", buf, sizeof(buf));
    errno = 0;
    assert_null(parley_key_load(buf));
    assert_int_equal(errno, ENOENT);
    parley_key_destroy(&k);
}

static void
test_save_overwrite(void **state)
{
    s_tmp_t *t = *state;
    char path[512], pubpath[512];
    struct stat st;
    uint8_t pa[32], pb[32], got[32];
    s_path(t, "k", path, sizeof(path));
    s_path(t, "k.pub", pubpath, sizeof(pubpath));
    parley_key_t *a = s_seed_key(0x34), *b = s_seed_key(0x35);
    parley_key_public(a, pa);
    parley_key_public(b, pb);

    assert_int_equal(parley_key_save(a, path, "a", 0), 0);
    assert_int_equal(parley_key_save(b, path, "b", 0), -EEXIST);
    /* nothing was changed */
    parley_key_t *l = parley_key_load(path);
    assert_non_null(l);
    parley_key_public(l, got);
    assert_memory_equal(got, pa, 32);
    parley_key_destroy(&l);
    assert_int_equal(parley_pubkey_load(pubpath, got), 0);
    assert_memory_equal(got, pa, 32);

    /* asked to: both files replaced, secret back to 0600 */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(parley_key_save(b, path, "b", 1), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    l = parley_key_load(path);
    assert_non_null(l);
    parley_key_public(l, got);
    assert_memory_equal(got, pb, 32);
    parley_key_destroy(&l);
    assert_int_equal(parley_pubkey_load(pubpath, got), 0);
    assert_memory_equal(got, pb, 32);

    assert_int_equal(parley_key_save(NULL, path, NULL, 1), PARLEY_EARG);
    assert_int_equal(parley_key_save(a, NULL, NULL, 1), PARLEY_EARG);
    parley_key_destroy(&a);
    parley_key_destroy(&b);
}

/*
 * --force replaces files, it does not write into them: another name for
 * the old file (a hard link, made by whoever could) keeps its contents.
 */
static void
test_save_overwrite_renames(void **state)
{
    s_tmp_t *t = *state;
    char path[512], pubpath[512], other[512], other_pub[512];
    char before[512], after[512], pub_before[512];
    uint8_t pb[32], got[32];
    s_path(t, "k", path, sizeof(path));
    s_path(t, "k.pub", pubpath, sizeof(pubpath));
    s_path(t, "other", other, sizeof(other));
    s_path(t, "other.pub", other_pub, sizeof(other_pub));
    parley_key_t *a = s_seed_key(0x38), *b = s_seed_key(0x39);
    parley_key_public(b, pb);
    assert_int_equal(parley_key_save(a, path, "a", 0), 0);
    assert_int_equal(link(path, other), 0);
    assert_int_equal(link(pubpath, other_pub), 0);
    s_read(other, before, sizeof(before));
    s_read(other_pub, pub_before, sizeof(pub_before));

    assert_int_equal(parley_key_save(b, path, "b", 1), 0);
    s_read(other, after, sizeof(after));
    assert_string_equal(after, before);
    s_read(other_pub, after, sizeof(after));
    assert_string_equal(after, pub_before);
    parley_key_t *l = parley_key_load(path);
    assert_non_null(l);
    parley_key_public(l, got);
    assert_memory_equal(got, pb, 32);
    parley_key_destroy(&l);
    assert_int_equal(parley_pubkey_load(pubpath, got), 0);
    assert_memory_equal(got, pb, 32);
    /* and no temporary file is left beside them */
    DIR *d = opendir(t->dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 4); /* k, k.pub, other, other.pub */

    /* The same for a CURVE key pair. */
    s_path(t, "c", path, sizeof(path));
    s_path(t, "c.kept", other, sizeof(other));
    assert_int_equal(parley_curve_keygen(path, NULL, 0, NULL), 0);
    assert_int_equal(link(path, other), 0);
    s_read(other, before, sizeof(before));
    assert_int_equal(parley_curve_keygen(path, NULL, 1, NULL), 0);
    s_read(other, after, sizeof(after));
    assert_string_equal(after, before);
    s_read(path, after, sizeof(after));
    assert_string_not_equal(after, before);
    parley_key_destroy(&a);
    parley_key_destroy(&b);
}

/* A key file of another user is theirs: --force leaves it alone. */
static void
test_save_overwrite_other_owner(void **state)
{
    s_tmp_t *t = *state;
    if (geteuid() != 0) {
        skip(); /* only root can make a file of another user */
        return;
    }
    char path[512], pubpath[512], before[512], after[512];
    s_path(t, "k", path, sizeof(path));
    s_path(t, "k.pub", pubpath, sizeof(pubpath));
    parley_key_t *a = s_seed_key(0x3a), *b = s_seed_key(0x3b);
    assert_int_equal(parley_key_save(a, path, "a", 0), 0);
    s_read(path, before, sizeof(before));
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(parley_key_save(b, path, "b", 1), -EPERM);
    s_read(path, after, sizeof(after));
    assert_string_equal(after, before);
    /* The public half of another user stops it before the secret too. */
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(chown(pubpath, 65534, 65534), 0);
    assert_int_equal(parley_key_save(b, path, "b", 1), -EPERM);
    s_read(path, after, sizeof(after));
    assert_string_equal(after, before);
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(parley_curve_keygen(path, NULL, 1, NULL), -EPERM);
    s_read(path, after, sizeof(after));
    assert_string_equal(after, before);
    parley_key_destroy(&a);
    parley_key_destroy(&b);
}

/*
 * A stale NAME.pub from an older key must not survive next to a new
 * secret: either save refuses before writing anything, or it writes both.
 */
static void
test_save_with_stale_pub(void **state)
{
    s_tmp_t *t = *state;
    char path[512], pubpath[512];
    uint8_t old_pk[32], new_pk[32], got[32];
    s_path(t, "k", path, sizeof(path));
    s_path(t, "k.pub", pubpath, sizeof(pubpath));
    parley_key_t *old = s_seed_key(0x36), *fresh = s_seed_key(0x37);
    parley_key_public(old, old_pk);
    parley_key_public(fresh, new_pk);
    assert_int_equal(parley_key_save(old, path, NULL, 0), 0);
    assert_int_equal(unlink(path), 0); /* secret gone, old .pub left */

    int rc = parley_key_save(fresh, path, NULL, 0);
    int secret_exists = access(path, F_OK) == 0;
    assert_int_equal(parley_pubkey_load(pubpath, got), 0);
    if (rc == 0) {
        assert_memory_equal(got, new_pk, 32);
    } else if (secret_exists) {
        fail_msg("parley_key_save returned %d (%s) but wrote %s, leaving "
                 "%s with another key's public half",
                 rc, parley_error_name(rc), path, pubpath);
    }
    parley_key_destroy(&old);
    parley_key_destroy(&fresh);
}

/* ------------------------------------------------------------ key ids */

static void
test_key_id(void **state)
{
    (void)state;
    for (uint8_t fill = 1; fill < 20; fill++) {
        uint8_t pk[32], h[32];
        char id[PARLEY_KEYID_CHARS + 1], expect[PARLEY_KEYID_CHARS + 1];
        parley_key_t *k = s_seed_key(fill);
        parley_key_public(k, pk);
        memset(id, 'Z', sizeof(id));
        parley_key_id(pk, id);
        crypto_generichash(h, sizeof(h), pk, sizeof(pk), NULL, 0);
        for (size_t i = 0; i < 8; i++)
            snprintf(expect + 2 * i, 3, "%02x", h[i]);
        assert_string_equal(id, expect);
        assert_int_equal(strlen(id), PARLEY_KEYID_CHARS);
        for (size_t i = 0; i < PARLEY_KEYID_CHARS; i++)
            assert_true((id[i] >= '0' && id[i] <= '9')
                        || (id[i] >= 'a' && id[i] <= 'f'));
        parley_key_destroy(&k);
    }
    /* the documented vector key (seed 32 x 0x01) */
    uint8_t pk[32];
    char id[PARLEY_KEYID_CHARS + 1];
    parley_key_t *k = s_seed_key(0x01);
    parley_key_public(k, pk);
    parley_key_id(pk, id);
    assert_string_equal(id, "c5e21ab1c9f6022d");
    parley_key_destroy(&k);
}

/* ------------------------------------------------------ public keys */

static void
test_pubkey_parse(void **state)
{
    (void)state;
    uint8_t pk[32], out[32];
    char b64[45], text[128];
    parley_key_t *k = s_seed_key(0x38);
    parley_key_public(k, pk);
    parley_pubkey_format(pk, b64);
    assert_int_equal(strlen(b64), 44);
    assert_int_equal(b64[43], '=');

    static const char *const suffix[] = {
        "",     " comment",  " two words",         "\n",
        "\r\n", "\tcomment", " desk@example.org\n"
    };
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", b64, suffix[i]);
        memset(out, 0, sizeof(out));
        if (parley_pubkey_parse(text, out) != 0)
            fail_msg("refused \"%s\"", text);
        assert_memory_equal(out, pk, 32);
    }

    /* wrong lengths of base64 */
    uint8_t raw[64];
    memset(raw, 0x5c, sizeof(raw));
    char other[100];
    sodium_bin2base64(other, sizeof(other), raw, 31,
                      sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(parley_pubkey_parse(other, out), PARLEY_EKEYFILE);
    sodium_bin2base64(other, sizeof(other), raw, 33,
                      sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(parley_pubkey_parse(other, out), PARLEY_EKEYFILE);
    sodium_bin2base64(other, sizeof(other), raw, 64,
                      sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(parley_pubkey_parse(other, out), PARLEY_EKEYFILE);

    /* broken text */
    static const char *const bad[] = { "", " ", "=", "not base64 at all" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parley_pubkey_parse(bad[i], out) != PARLEY_EKEYFILE)
            fail_msg("accepted \"%s\"", bad[i]);
    snprintf(text, sizeof(text), " %s", b64); /* leading space */
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);
    snprintf(text, sizeof(text), "%.43s", b64); /* padding missing */
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);
    snprintf(text, sizeof(text), "%s=", b64); /* extra padding */
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);
    snprintf(text, sizeof(text), "%sA", b64); /* glued text */
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);
    snprintf(text, sizeof(text), "%s", b64);
    text[10] = '!';
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);
    snprintf(text, sizeof(text), "%s", b64);
    text[5] = '-'; /* URL-safe alphabet is another format */
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);
    snprintf(text, sizeof(text), "%s", b64);
    text[20] = '_';
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);

    /* non-zero padding bits: another text for the same bytes */
    snprintf(text, sizeof(text), "%s", b64);
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *pos = strchr(alphabet, text[42]);
    assert_non_null(pos);
    text[42] = alphabet[(size_t)(pos - alphabet) ^ 1]; /* a low (padding) bit */
    assert_int_equal(parley_pubkey_parse(text, out), PARLEY_EKEYFILE);
    parley_key_destroy(&k);
}

static void
test_pubkey_load(void **state)
{
    s_tmp_t *t = *state;
    char path[512], b64[45], text[128];
    uint8_t pk[32], out[32];
    parley_key_t *k = s_seed_key(0x39);
    parley_key_public(k, pk);
    parley_pubkey_format(pk, b64);
    s_path(t, "x.pub", path, sizeof(path));

    snprintf(text, sizeof(text), "%s hand written\n", b64);
    s_write(path, text, strlen(text), 0644);
    assert_int_equal(parley_pubkey_load(path, out), 0);
    assert_memory_equal(out, pk, 32);
    s_write(path, "garbage\n", 8, 0644);
    assert_int_equal(parley_pubkey_load(path, out), PARLEY_EKEYFILE);
    s_path(t, "none.pub", path, sizeof(path));
    assert_int_equal(parley_pubkey_load(path, out), -ENOENT);
    parley_key_destroy(&k);
}

/* ----------------------------------------------------------- seqfile */

static void
test_seqfile_increasing(void **state)
{
    s_tmp_t *t = *state;
    char key[512];
    uint64_t prev = 0, v = 0;
    s_path(t, "signer", key, sizeof(key));
    for (int i = 0; i < 300; i++) {
        uint64_t before = s_now_us();
        assert_int_equal(parley_seqfile_next(key, &v), 0);
        if (v <= prev)
            fail_msg("call %d: %llu after %llu", i, (unsigned long long)v,
                     (unsigned long long)prev);
        if (v < before)
            fail_msg("call %d: %llu is below now (%llu us)", i,
                     (unsigned long long)v, (unsigned long long)before);
        prev = v;
    }
    /* the state file holds the last value */
    char seqpath[600], buf[64];
    snprintf(seqpath, sizeof(seqpath), "%s.seq", key);
    s_read(seqpath, buf, sizeof(buf));
    assert_true(strtoull(buf, NULL, 10) == prev);
}

static void
test_seqfile_survives_loss_and_damage(void **state)
{
    s_tmp_t *t = *state;
    char key[512], seqpath[600];
    uint64_t v = 0, w = 0;
    s_path(t, "signer", key, sizeof(key));
    snprintf(seqpath, sizeof(seqpath), "%s.seq", key);

    assert_int_equal(parley_seqfile_next(key, &v), 0);
    assert_int_equal(unlink(seqpath), 0);
    uint64_t before = s_now_us();
    assert_int_equal(parley_seqfile_next(key, &w), 0);
    assert_true(w > 0);
    assert_true(w >= before); /* time based, not restarted at 1 */
    assert_true(w > v);

    /* damaged contents read as "nothing recorded" */
    s_write(seqpath, "not a number\n", 13, 0600);
    before = s_now_us();
    assert_int_equal(parley_seqfile_next(key, &v), 0);
    assert_true(v >= before);
    s_write(seqpath, "", 0, 0600);
    before = s_now_us();
    assert_int_equal(parley_seqfile_next(key, &v), 0);
    assert_true(v >= before);

    /* a recorded value ahead of the clock (clock stepped back) wins */
    s_write(seqpath, "9000000000000000\n", 17, 0600);
    assert_int_equal(parley_seqfile_next(key, &v), 0);
    assert_true(v == 9000000000000001ull);
    assert_int_equal(parley_seqfile_next(key, &v), 0);
    assert_true(v == 9000000000000002ull);

    /* a directory that does not exist: the system error */
    s_path(t, "no/such/dir/key", key, sizeof(key));
    assert_int_equal(parley_seqfile_next(key, &v), -ENOENT);
}

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Two processes drawing from one state file never get the same value. */
static void
test_seqfile_concurrent_processes(void **state)
{
    s_tmp_t *t = *state;
    enum {
        PROCS = 2,
        CALLS = 200
    };
    char key[512];
    int fds[PROCS][2];
    pid_t pids[PROCS];
    static uint64_t all[PROCS * CALLS];
    s_path(t, "shared", key, sizeof(key));

    for (int p = 0; p < PROCS; p++) {
        assert_int_equal(pipe(fds[p]), 0);
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(fds[p][0]);
            uint64_t v;
            for (int i = 0; i < CALLS; i++) {
                if (parley_seqfile_next(key, &v) != 0)
                    v = 0; /* reported to the parent as a failure */
                if (write(fds[p][1], &v, sizeof(v)) != sizeof(v))
                    _exit(2);
            }
            _exit(0);
        }
        close(fds[p][1]);
    }
    size_t n = 0;
    for (int p = 0; p < PROCS; p++) {
        uint64_t prev = 0;
        for (int i = 0; i < CALLS; i++) {
            uint64_t v;
            size_t got = 0;
            while (got < sizeof(v)) {
                ssize_t r = read(fds[p][0], (char *)&v + got, sizeof(v) - got);
                assert_true(r > 0);
                got += (size_t)r;
            }
            if (v == 0)
                fail_msg("process %d call %d failed", p, i);
            if (v <= prev)
                fail_msg("process %d: %llu after %llu", p,
                         (unsigned long long)v, (unsigned long long)prev);
            prev = v;
            all[n++] = v;
        }
        close(fds[p][0]);
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    qsort(all, n, sizeof(all[0]), s_cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (all[i] == all[i - 1])
            fail_msg("value %llu handed out twice", (unsigned long long)all[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_seed),
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_saved_file_formats, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_open_permissions,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_bad_files, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_save_overwrite, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_save_overwrite_renames, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_save_overwrite_other_owner,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_save_with_stale_pub, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_key_id),
        cmocka_unit_test(test_pubkey_parse),
        cmocka_unit_test_setup_teardown(test_pubkey_load, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_seqfile_increasing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_seqfile_survives_loss_and_damage,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_seqfile_concurrent_processes,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
