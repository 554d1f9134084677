/*
 * keys.c - Ed25519 key pairs, key files, key ids, signer_seq state.
 *
 * Secret key file: one header line, then the base64 of libsodium's 64-byte
 * secret key (seed || public key):
 *
 *     parley-secret-key-v1 ed25519
 *     <base64>
 *
 * Public key file (NAME.pub): "<base64 of 32 bytes> <comment>".
 *
 * CURVE keys (for CurveZMQ transport security) live here too, in files of
 * their own: "parley-curve-secret-key-v1", "public-key <Z85>" and
 * "secret-key <Z85>" lines, and NAME.pub with the Z85 public key.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_HEADER "parley-secret-key-v1 ed25519"
#define S_CURVE_HEADER "parley-curve-secret-key-v1"

struct parley_key {
    uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key */
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
};

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_sodium_ok;

static void
s_init(void)
{
    s_sodium_ok = sodium_init() >= 0;
}

int
parley__sodium_init(void)
{
    pthread_once(&s_once, s_init);
    return s_sodium_ok ? 0 : -ENOSYS;
}

static parley_key_t *
s_key_alloc(void)
{
    if (parley__sodium_init() < 0) {
        errno = ENOSYS;
        return NULL;
    }
    /* Guarded pages: no swap, no core dumps, wiped on free. */
    parley_key_t *key = sodium_malloc(sizeof(*key));
    if (key == NULL)
        errno = ENOMEM;
    return key;
}

parley_key_t *
parley_key_generate(void)
{
    parley_key_t *key = s_key_alloc();
    if (key != NULL)
        crypto_sign_keypair(key->pk, key->sk);
    return key;
}

parley_key_t *
parley_key_from_seed(const uint8_t seed[32])
{
    parley_key_t *key = s_key_alloc();
    if (key != NULL)
        crypto_sign_seed_keypair(key->pk, key->sk, seed);
    return key;
}

void
parley_key_destroy(parley_key_t **key)
{
    if (key == NULL || *key == NULL)
        return;
    sodium_free(*key); /* wipes before unmapping */
    *key = NULL;
}

void
parley_key_public(const parley_key_t *key, uint8_t out[PARLEY_PUBLICKEY_BYTES])
{
    memcpy(out, key->pk, PARLEY_PUBLICKEY_BYTES);
}

const uint8_t *
parley__key_secret(const parley_key_t *key)
{
    return key->sk;
}

void
parley_key_id(const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
              char out[PARLEY_KEYID_CHARS + 1])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), pk, PARLEY_PUBLICKEY_BYTES, NULL, 0);
    sodium_bin2hex(out, PARLEY_KEYID_CHARS + 1, h, PARLEY_KEYID_CHARS / 2);
}

void
parley_pubkey_format(const uint8_t pk[PARLEY_PUBLICKEY_BYTES], char out[45])
{
    sodium_bin2base64(out, 45, pk, PARLEY_PUBLICKEY_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
}

int
parley_pubkey_parse(const char *text, uint8_t out[PARLEY_PUBLICKEY_BYTES])
{
    size_t n = strcspn(text, " \t\r\n");
    size_t bin_len = 0;
    const char *end = NULL;
    if (parley__sodium_init() < 0)
        return -ENOSYS;
    if (n != 44)
        return PARLEY_EKEYFILE;
    if (sodium_base642bin(out, PARLEY_PUBLICKEY_BYTES, text, n, NULL, &bin_len,
                          &end, sodium_base64_VARIANT_ORIGINAL)
            != 0
        || bin_len != PARLEY_PUBLICKEY_BYTES || end != text + n)
        return PARLEY_EKEYFILE;
    return 0;
}

/* Read a small file (at most cap-1 bytes) into buf, NUL-terminated. */
static int
s_read_small(int fd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            return PARLEY_EKEYFILE; /* too big to be a key file */
    }
    buf[n] = '\0';
    *len = n;
    return 0;
}

int
parley_pubkey_load(const char *path, uint8_t out[PARLEY_PUBLICKEY_BYTES])
{
    char buf[1024];
    size_t len;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = s_read_small(fd, buf, sizeof(buf), &len);
    close(fd);
    return rc < 0 ? rc : parley_pubkey_parse(buf, out);
}

/*
 * Open a secret key file for reading: it must be a regular file (not a
 * symlink) owned by the effective user with no group or other bits.
 * Returns the descriptor, or PARLEY_EKEYPERM / -errno.
 */
static int
s_open_secret(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    /* Refuse a secret anyone else could have read or replaced. */
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0
        || st.st_uid != geteuid()) {
        close(fd);
        return PARLEY_EKEYPERM;
    }
    return fd;
}

parley_key_t *
parley_key_load(const char *path)
{
    char buf[256];
    size_t len = 0;
    parley_key_t *key = NULL;
    int rc;

    int fd = s_open_secret(path);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    if ((rc = s_read_small(fd, buf, sizeof(buf), &len)) < 0)
        goto out;
    rc = PARLEY_EKEYFILE;
    size_t hl = strlen(S_HEADER);
    if (len < hl + 1 || memcmp(buf, S_HEADER, hl) != 0 || buf[hl] != '\n')
        goto out;
    const char *b64 = buf + hl + 1;
    size_t b64_len = strcspn(b64, "\r\n");
    if ((key = s_key_alloc()) == NULL) {
        rc = -errno;
        goto out;
    }
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(key->sk, sizeof(key->sk), b64, b64_len, NULL,
                          &bin_len, &end, sodium_base64_VARIANT_ORIGINAL)
            != 0
        || bin_len != sizeof(key->sk) || end != b64 + b64_len)
        goto out;
    /* The public half is derived, never trusted from the file. */
    uint8_t seed[crypto_sign_SEEDBYTES];
    crypto_sign_ed25519_sk_to_seed(seed, key->sk);
    crypto_sign_seed_keypair(key->pk, key->sk, seed);
    sodium_memzero(seed, sizeof(seed));
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    if (rc != 0) {
        parley_key_destroy(&key);
        errno = -rc;
        return NULL;
    }
    return key;
}

/* Write all of buf to fd. */
static int
s_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/*
 * May path be replaced? Yes if it does not exist or belongs to the
 * caller; a file of another user is theirs to keep (-EPERM).
 */
static int
s_may_replace(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    return st.st_uid == geteuid() ? 0 : -EPERM;
}

/*
 * Create path with mode and contents, fsync'd. Without overwrite, path
 * must not exist (O_EXCL). With it, the contents go to a new file beside
 * path (mkostemp: O_EXCL, so nothing planted is written through) that is
 * then renamed over it: an existing file is replaced, never written into,
 * so another name for it (a hard link) keeps what it held. The caller
 * checks s_may_replace() first.
 */
static int
s_write_file(const char *path, int mode, int overwrite, const char *data,
             size_t len)
{
    char tmp[4096 + 8];
    int fd;
    if (!overwrite) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  mode);
    } else {
        if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
            return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
    }
    if (fd < 0)
        return -errno;
    /* The mode asked for, whatever the umask (or mkostemp) gave. */
    int rc = fchmod(fd, (mode_t)mode) != 0 ? -errno : 0;
    if (rc == 0)
        rc = s_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (overwrite && rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (overwrite && rc < 0)
        unlink(tmp);
    return rc;
}

int
parley_key_save(const parley_key_t *key, const char *path, const char *comment,
                int overwrite)
{
    char secret[sizeof(S_HEADER) + 128];
    char pub[45];
    char publine[45 + 2 + 256];
    char pubpath[4096];
    int rc;

    if (key == NULL || path == NULL)
        return PARLEY_EARG;
    if (snprintf(pubpath, sizeof(pubpath), "%s.pub", path)
        >= (int)sizeof(pubpath))
        return -ENAMETOOLONG;
    /* Refuse before writing anything, so a secret never sits beside a
     * stale public key. */
    if (!overwrite && access(pubpath, F_OK) == 0)
        return -EEXIST;
    if (overwrite
        && ((rc = s_may_replace(path)) < 0 || (rc = s_may_replace(pubpath)) < 0))
        return rc;
    int n = snprintf(secret, sizeof(secret), "%s\n", S_HEADER);
    sodium_bin2base64(secret + n, sizeof(secret) - (size_t)n, key->sk,
                      sizeof(key->sk), sodium_base64_VARIANT_ORIGINAL);
    n = (int)strlen(secret);
    secret[n++] = '\n';
    rc = s_write_file(path, 0600, overwrite, secret, (size_t)n);
    sodium_memzero(secret, sizeof(secret));
    if (rc < 0)
        return rc;
    parley_pubkey_format(key->pk, pub);
    char comment_clean[256] = "";
    if (comment != NULL) {
        /* One line: the comment cannot break the file format. */
        snprintf(comment_clean, sizeof(comment_clean), "%s", comment);
        for (char *p = comment_clean; *p != '\0'; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    n = snprintf(publine, sizeof(publine), "%s%s%s\n", pub,
                 comment_clean[0] != '\0' ? " " : "", comment_clean);
    return s_write_file(pubpath, 0644, overwrite, publine, (size_t)n);
}

/* Microseconds since the epoch (CLOCK_REALTIME). */
static uint64_t
s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Open path and take its exclusive lock. Returns the fd or -errno. */
static int
s_seqfile_lock(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int err = -errno;
            close(fd);
            return err;
        }
    }
    return fd;
}

/* The value in a locked seq file; a damaged or empty file reads as 0. */
static int
s_seqfile_read(int fd, uint64_t *out)
{
    char buf[32];
    ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
    if (r < 0)
        return -errno;
    buf[r] = '\0';
    *out = strtoull(buf, NULL, 10);
    return 0;
}

/* Replace the value in a locked seq file, durably. */
static int
s_seqfile_write(int fd, uint64_t value)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)value);
    errno = 0;
    if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) != 0
        || fdatasync(fd) != 0)
        return errno != 0 ? -errno : -EIO;
    return 0;
}

/*
 * Under the file's lock: next = max(recorded + 1, floor), recorded; the
 * old value goes to *was (may be NULL). Returns 0 or -errno/-EOVERFLOW.
 */
static int
s_seqfile_take(const char *path, uint64_t floor, uint64_t *out,
               uint64_t *was)
{
    uint64_t last = 0;
    int fd = s_seqfile_lock(path);
    if (fd < 0)
        return fd;
    int rc = s_seqfile_read(fd, &last);
    if (rc == 0 && last >= (uint64_t)INT64_MAX)
        rc = -EOVERFLOW; /* signer_seq must stay representable */
    uint64_t next = last + 1 > floor ? last + 1 : floor;
    if (rc == 0)
        rc = s_seqfile_write(fd, next);
    close(fd); /* releases the lock */
    if (rc == 0) {
        *out = next;
        if (was != NULL)
            *was = last;
    }
    return rc;
}

int
parley_seqfile_next(const char *key_path, uint64_t *out)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s.seq", key_path) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    return s_seqfile_take(path, s_now_us(), out, NULL);
}

struct parley__seq {
    uint8_t pk[PARLEY_PUBLICKEY_BYTES]; /* the key it counts for */
    pthread_mutex_t lock;               /* held while a value is drawn */
    uint64_t last;                      /* highest value drawn */
    uint64_t floor;                     /* the daemon's last accepted */
    struct parley__seq *next;           /* registry list */
};

/* Every sequencer of the process, one per public key. */
static pthread_mutex_t s_seqs_lock = PTHREAD_MUTEX_INITIALIZER;
static parley__seq_t *s_seqs;

parley__seq_t *
parley__seq_of(const parley_key_t *key)
{
    pthread_mutex_lock(&s_seqs_lock);
    parley__seq_t *s = s_seqs;
    while (s != NULL && memcmp(s->pk, key->pk, sizeof(s->pk)) != 0)
        s = s->next;
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
        memcpy(s->pk, key->pk, sizeof(s->pk));
        pthread_mutex_init(&s->lock, NULL);
        s->next = s_seqs;
        s_seqs = s;
    }
    pthread_mutex_unlock(&s_seqs_lock);
    return s;
}

int
parley__seq_take(parley__seq_t *s, const char *seq_file,
                 parley__seq_ticket_t *t)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t next = s->last + 1;
    uint64_t now = s_now_us();
    if (now > next)
        next = now;
    if (s->floor + 1 > next)
        next = s->floor + 1;
    t->prev = s->last;
    t->prev_file = 0;
    if (seq_file != NULL)
        rc = s_seqfile_take(seq_file, next, &next, &t->prev_file);
    if (rc == 0 && next > (uint64_t)INT64_MAX)
        rc = -EOVERFLOW;
    if (rc == 0) {
        s->last = next;
        t->value = next;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void
parley__seq_floor(parley__seq_t *s, uint64_t accepted)
{
    pthread_mutex_lock(&s->lock);
    if (accepted > s->floor && accepted < (uint64_t)INT64_MAX)
        s->floor = accepted;
    pthread_mutex_unlock(&s->lock);
}

void
parley__seq_give_back(parley__seq_t *s, const char *seq_file,
                      const parley__seq_ticket_t *t)
{
    pthread_mutex_lock(&s->lock);
    if (s->last == t->value)
        s->last = t->prev;
    if (seq_file != NULL) {
        uint64_t now = 0;
        int fd = s_seqfile_lock(seq_file);
        if (fd >= 0) {
            if (s_seqfile_read(fd, &now) == 0 && now == t->value)
                (void)s_seqfile_write(fd, t->prev_file);
            close(fd);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* ================================================================ CURVE */

struct parley_curve {
    uint8_t server_public[PARLEY__CURVE_BYTES]; /* the daemon's key */
    uint8_t public_key[PARLEY__CURVE_BYTES];    /* this client's key */
    uint8_t secret_key[PARLEY__CURVE_BYTES];    /* this client's secret */
};

/* 1 if the n bytes at s are all Z85 characters. */
static int
s_z85_chars(const char *s, size_t n)
{
    static const char alphabet[] =
        "0123456789abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(alphabet, s[i]) == NULL)
            return 0;
    return 1;
}

/* Decode exactly 40 Z85 characters at text into 32 bytes. */
static int
s_z85_key(const char *text, uint8_t out[PARLEY__CURVE_BYTES])
{
    char z[PARLEY_CURVE_KEY_CHARS + 1];
    if (!s_z85_chars(text, PARLEY_CURVE_KEY_CHARS))
        return PARLEY_EKEYFILE;
    memcpy(z, text, PARLEY_CURVE_KEY_CHARS);
    z[PARLEY_CURVE_KEY_CHARS] = '\0';
    int rc = zmq_z85_decode(out, z) != NULL ? 0 : PARLEY_EKEYFILE;
    sodium_memzero(z, sizeof(z));
    return rc;
}

int
parley__curve_public_parse(const char *text, uint8_t out[PARLEY__CURVE_BYTES])
{
    size_t n = strcspn(text, " \t\r\n");
    if (n != PARLEY_CURVE_KEY_CHARS)
        return PARLEY_EKEYFILE;
    return s_z85_key(text, out);
}

/* Parse one "label <Z85>" line at *p into out; advance *p past it. */
static int
s_curve_line(const char **p, const char *label,
             uint8_t out[PARLEY__CURVE_BYTES])
{
    size_t ll = strlen(label);
    const char *s = *p;
    if (strncmp(s, label, ll) != 0 || s[ll] != ' ')
        return PARLEY_EKEYFILE;
    s += ll + 1;
    if (strcspn(s, "\r\n") != PARLEY_CURVE_KEY_CHARS || s_z85_key(s, out) != 0)
        return PARLEY_EKEYFILE;
    s += PARLEY_CURVE_KEY_CHARS;
    if (*s == '\r')
        s++;
    if (*s != '\n' && *s != '\0')
        return PARLEY_EKEYFILE;
    *p = *s == '\n' ? s + 1 : s;
    return 0;
}

int
parley__curve_secret_load(const char *path,
                          char public_z85[PARLEY_CURVE_KEY_CHARS + 1],
                          uint8_t secret[PARLEY__CURVE_BYTES])
{
    char buf[512];
    size_t len = 0;
    uint8_t listed[PARLEY__CURVE_BYTES], derived[PARLEY__CURVE_BYTES];
    int rc;

    if (path == NULL || secret == NULL)
        return PARLEY_EARG;
    if (parley__sodium_init() < 0)
        return -ENOSYS;
    int fd = s_open_secret(path);
    if (fd < 0)
        return fd;
    rc = s_read_small(fd, buf, sizeof(buf), &len);
    close(fd);
    if (rc < 0)
        goto out;
    rc = PARLEY_EKEYFILE;
    size_t hl = strlen(S_CURVE_HEADER);
    if (len < hl + 1 || memcmp(buf, S_CURVE_HEADER, hl) != 0
        || (buf[hl] != '\n' && buf[hl] != '\r'))
        goto out;
    const char *p = buf + hl + (buf[hl] == '\r') + 1;
    if (s_curve_line(&p, "public-key", listed) != 0
        || s_curve_line(&p, "secret-key", secret) != 0)
        goto out;
    /* The public half must belong to the secret: a file pasted together
     * from two key pairs would otherwise fail only at the handshake. */
    if (crypto_scalarmult_base(derived, secret) != 0
        || sodium_memcmp(derived, listed, sizeof(derived)) != 0) {
        sodium_memzero(secret, PARLEY__CURVE_BYTES);
        goto out;
    }
    if (public_z85 != NULL
        && zmq_z85_encode(public_z85, derived, sizeof(derived)) == NULL) {
        rc = -EINVAL;
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

parley_curve_t *
parley_curve_load(const char *server_key_path, const char *client_key_path)
{
    parley_curve_t *c = NULL;
    char line[1024];
    size_t len;
    int rc;

    if (server_key_path == NULL || client_key_path == NULL) {
        errno = -PARLEY_EARG;
        return NULL;
    }
    if (parley__sodium_init() < 0) {
        errno = ENOSYS;
        return NULL;
    }
    /* Guarded pages: no swap, no core dumps, wiped on free. */
    if ((c = sodium_malloc(sizeof(*c))) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int fd = open(server_key_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = s_read_small(fd, line, sizeof(line), &len);
    close(fd);
    if (rc < 0 || (rc = parley__curve_public_parse(line, c->server_public)) < 0)
        goto fail;
    char pub[PARLEY_CURVE_KEY_CHARS + 1];
    if ((rc = parley__curve_secret_load(client_key_path, pub, c->secret_key))
            < 0
        || (rc = s_z85_key(pub, c->public_key)) < 0)
        goto fail;
    return c;
fail:
    parley_curve_destroy(&c);
    errno = -rc;
    return NULL;
}

void
parley_curve_destroy(parley_curve_t **curve)
{
    if (curve == NULL || *curve == NULL)
        return;
    sodium_free(*curve); /* wipes before unmapping */
    *curve = NULL;
}

int
parley__curve_apply(const parley_curve_t *c, void *sock)
{
    if (c == NULL)
        return 0;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server_public,
                       PARLEY__CURVE_BYTES) != 0
        || zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->public_key,
                          PARLEY__CURVE_BYTES) != 0
        || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_key,
                          PARLEY__CURVE_BYTES) != 0)
        return -zmq_errno();
    return 0;
}

int
parley_curve_keygen(const char *path, const char *comment, int overwrite,
                    char public_z85[PARLEY_CURVE_KEY_CHARS + 1])
{
    char pubpath[4096], publine[PARLEY_CURVE_KEY_CHARS + 2 + 256];
    char pub[PARLEY_CURVE_KEY_CHARS + 1];
    int rc;

    if (path == NULL || *path == '\0')
        return PARLEY_EARG;
    if (parley__sodium_init() < 0)
        return -ENOSYS;
    if (snprintf(pubpath, sizeof(pubpath), "%s.pub", path)
        >= (int)sizeof(pubpath))
        return -ENAMETOOLONG;
    if (!overwrite && access(pubpath, F_OK) == 0)
        return -EEXIST;
    if (overwrite
        && ((rc = s_may_replace(path)) < 0 || (rc = s_may_replace(pubpath)) < 0))
        return rc;
    /* Secret, its Z85 text and the file text, all in guarded memory. */
    struct {
        uint8_t pk[PARLEY__CURVE_BYTES];
        uint8_t sk[PARLEY__CURVE_BYTES];
        char sk_z85[PARLEY_CURVE_KEY_CHARS + 1];
        char text[256];
    } *g = sodium_malloc(sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    crypto_box_keypair(g->pk, g->sk); /* Curve25519, as CurveZMQ uses */
    if (zmq_z85_encode(pub, g->pk, sizeof(g->pk)) == NULL
        || zmq_z85_encode(g->sk_z85, g->sk, sizeof(g->sk)) == NULL) {
        rc = -EINVAL;
        goto out;
    }
    int n = snprintf(g->text, sizeof(g->text),
                     "%s\npublic-key %s\nsecret-key %s\n", S_CURVE_HEADER, pub,
                     g->sk_z85);
    rc = s_write_file(path, 0600, overwrite, g->text, (size_t)n);
    if (rc < 0)
        goto out;
    char comment_clean[256] = "";
    if (comment != NULL) {
        snprintf(comment_clean, sizeof(comment_clean), "%s", comment);
        for (char *p = comment_clean; *p != '\0'; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    n = snprintf(publine, sizeof(publine), "%s%s%s\n", pub,
                 comment_clean[0] != '\0' ? " " : "", comment_clean);
    rc = s_write_file(pubpath, 0644, overwrite, publine, (size_t)n);
    if (rc == 0 && public_z85 != NULL)
        memcpy(public_z85, pub, sizeof(pub));
out:
    sodium_free(g);
    return rc;
}
