/*
 * tree.c - the Merkle tree hash store: one file of stored hashes beside the
 * log's segments, appended with the log's group commit, checked against
 * the records at start-up (tree.h says how), and read for roots and
 * proofs.
 *
 * Memory: a compact range (O(log n) hashes) and the queue of hashes not
 * yet synced (not yet written, without fsync); roots and proofs read the
 * file (O(log n) preads each, from the page cache for recent ones) and
 * the queue. With fsync the queue is written at the sync, or once it
 * holds S_WRITE_BATCH unwritten bytes; without, after every commit. A write or sync that fails keeps the queue: the next one
 * writes it again (after a failed fdatasync, all of it since the last
 * good one, as the kernel may have dropped those pages). The start-up
 * check reads the file front to back through a window, and writes and
 * syncs what it recomputes in pieces of S_FLUSH_BYTES.
 */
#include "tree.h"

#include "crc32c.h"
#include "fileio.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_HASH PARLEY__TLOG_HASH_BYTES
#define S_TMP_NAME PD_TREE_FILE ".tmp"
#define S_WINDOW 4096 /* stored hashes per read while checking (128 KiB) */
#define S_ALG_SHA256_RFC9162 1
#define S_FLUSH_BYTES (4u << 20) /* recomputed hashes written in pieces of this */
/* With sync: queued hashes a commit leaves unwritten, at most (see
 * pd_tree_write()); 8,192 hashes, about 4,096 records. */
#define S_WRITE_BATCH (256u << 10)

struct pd_tree {
    char *dir;                      /* state directory, for messages */
    int dirfd;                      /* the directory, for the file's creation */
    int fd;                         /* tree.hashes, flocked while open */
    pd_tree_opts_t opts;            /* as given */
    uint64_t absent_before;         /* seqs below have absent-record leaves */
    uint64_t file_bytes;            /* file size (what open found, then grown) */
    uint64_t file_leaves;           /* whole leaf groups the file held at open */
    bool started;                   /* pd_tree_check() has seen a record */
    bool ready;                     /* pd_tree_recover() succeeded */
    bool failed;                    /* the header could not be written */
    uint64_t next_check;            /* seq pd_tree_check() expects next */
    parley__tlog_range_t range;     /* every leaf appended or checked */
    uint64_t synced;                /* leaves fdatasync'd (<= range.size) */
    uint64_t pend_first;            /* leaf whose hashes start the queue */
    uint8_t *pend;                  /* queued stored hashes, not yet synced */
    size_t pend_len;                /* bytes queued */
    size_t pend_written;            /* of them, bytes written (not synced) */
    bool write_failing;             /* the last write or sync failed */
    size_t pend_cap;                /* bytes allocated */
    uint8_t *win;                   /* read window of the start-up check */
    uint64_t win_first;             /* stored index of win[0] */
    uint64_t win_count;             /* hashes in the window */
    pd_tree_stats_t stats;
    /* The background sync (opts.sync; pd_tree_sync_begin()): a thread of
     * the tree's own writes a copy of the queue's unwritten part and
     * fdatasyncs, while the loop goes on. The fields under mu are shared
     * with it; the rest of the struct is the loop's alone. */
    pthread_t syncer;               /* the thread, once bg_started */
    pthread_mutex_t mu;             /* guards bg_asked, bg_done, bg_rc, bg_stop */
    pthread_cond_t cv;              /* signals bg_asked, bg_done, bg_stop */
    bool bg_init;                   /* mu and cv initialised */
    bool bg_started;                /* the thread runs */
    bool bg_stop;                   /* the thread should end */
    bool bg_asked;                  /* a sync waits for the thread or runs */
    bool bg_done;                   /* it finished: bg_rc holds its result */
    int bg_rc;                      /* 0 or -errno */
    bool bg_flight;                 /* the loop: a sync was begun, not reaped */
    uint8_t *bg_buf;                /* what the thread writes (its copy) */
    size_t bg_cap;                  /* bytes allocated for bg_buf */
    size_t bg_len;                  /* bytes to write (may be 0) */
    uint64_t bg_off;                /* file offset to write them at */
    uint64_t bg_leaves;             /* range.size when begun: synced after */
    size_t bg_queued;               /* pend_len when begun */
};

/* --- small helpers ----------------------------------------------------------- */

/* Byte offset of stored hash index in the file. */
static uint64_t
s_offset(uint64_t index)
{
    return PD_TREE_HEADER_BYTES + index * S_HASH;
}

/* The first 8 bytes of a hash in hex, for messages. */
static void
s_short_hex(const parley__tlog_hash_t *h, char out[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", h->b[i]);
}

/* --- the header -------------------------------------------------------------- */

#define S_CRC_AT (PD_TREE_HEADER_BYTES - 4)

static void
s_header(uint8_t h[PD_TREE_HEADER_BYTES], uint64_t absent_before)
{
    memset(h, 0, PD_TREE_HEADER_BYTES);
    memcpy(h, PD_TREE_MAGIC, 8);
    pd_put32le(h + 8, PD_TREE_VERSION);
    pd_put32le(h + 12, PD_TREE_HEADER_BYTES);
    pd_put32le(h + 16, S_HASH);
    pd_put32le(h + 20, S_ALG_SHA256_RFC9162);
    pd_put64le(h + 24, absent_before);
    pd_put32le(h + S_CRC_AT, pd_crc32c(0, h, S_CRC_AT));
}

/* Why a header is not ours, or NULL when it is. */
static const char *
s_header_problem(const uint8_t h[PD_TREE_HEADER_BYTES])
{
    if (memcmp(h, PD_TREE_MAGIC, 8) != 0)
        return "not a parley hash file (bad magic)";
    if (pd_crc32c(0, h, S_CRC_AT) != pd_get32le(h + S_CRC_AT))
        return "header checksum mismatch";
    if (pd_get32le(h + 8) != PD_TREE_VERSION)
        return "unsupported format version";
    bool zero = true;
    for (size_t i = 32; i < S_CRC_AT; i++)
        zero = zero && h[i] == 0;
    if (pd_get32le(h + 12) != PD_TREE_HEADER_BYTES || pd_get32le(h + 16) != S_HASH ||
        pd_get32le(h + 20) != S_ALG_SHA256_RFC9162 || !zero)
        return "unsupported header fields (header size, hash size or function)";
    if (pd_get64le(h + 24) > PARLEY__TLOG_SIZE_MAX)
        return "absent-record boundary out of range";
    return NULL;
}

/* Record the absent-record boundary in the header, synced before any
 * hash that depends on it is written. */
static int
s_set_absent(pd_tree_t *self, uint64_t absent_before, char *errbuf, size_t errlen)
{
    uint8_t h[PD_TREE_HEADER_BYTES];
    s_header(h, absent_before);
    int rc = pd_pwrite_all(self->fd, h, sizeof(h), 0);
    if (rc == 0 && self->opts.sync && fdatasync(self->fd) < 0)
        rc = -errno;
    if (rc < 0) {
        pd_errf(errbuf, errlen, "cannot write the header of %s/%s: %s", self->dir,
                PD_TREE_FILE, strerror(-rc));
        self->failed = true;
        return rc;
    }
    self->absent_before = absent_before;
    return 0;
}

/*
 * Make an empty hash file: header into a temporary file, synced, renamed
 * into place, directory synced, so a crash leaves either no file or a
 * whole header.
 */
static int
s_create(pd_tree_t *self, char *errbuf, size_t errlen)
{
    uint8_t h[PD_TREE_HEADER_BYTES];
    s_header(h, 0);
    int fd = openat(self->dirfd, S_TMP_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0)
        rc = pd_pwrite_all(fd, h, sizeof(h), 0);
    if (rc == 0 && self->opts.sync && fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    if (rc == 0 && renameat(self->dirfd, S_TMP_NAME, self->dirfd, PD_TREE_FILE) < 0)
        rc = -errno;
    if (rc == 0 && self->opts.sync && fsync(self->dirfd) < 0)
        rc = -errno;
    if (rc < 0) {
        pd_errf(errbuf, errlen, "cannot create %s/%s: %s", self->dir, PD_TREE_FILE,
               strerror(-rc));
        unlinkat(self->dirfd, S_TMP_NAME, 0);
        return rc;
    }
    pd_log(PD_LOG_INFO, "tree: created %s/%s", self->dir, PD_TREE_FILE);
    return 0;
}

/* --- reading ----------------------------------------------------------------- */

/* A stored hash through the window (the start-up check reads in order). */
static int
s_win_get(pd_tree_t *self, uint64_t index, parley__tlog_hash_t *out)
{
    if (index < self->win_first || index - self->win_first >= self->win_count) {
        uint64_t total = parley__tlog_stored_count(self->file_leaves);
        if (index >= total)
            return -EINVAL;
        if (self->win == NULL && (self->win = malloc(S_WINDOW * S_HASH)) == NULL)
            return -ENOMEM;
        uint64_t n = total - index < S_WINDOW ? total - index : S_WINDOW;
        int rc = pd_pread_all(self->fd, self->win, (size_t)n * S_HASH, s_offset(index));
        if (rc < 0) {
            self->win_count = 0;
            return rc;
        }
        self->win_first = index;
        self->win_count = n;
    }
    memcpy(out->b, self->win + (index - self->win_first) * S_HASH, S_HASH);
    return 0;
}

/* The hash source over every leaf: the file, then the queue. */
static int
s_read(void *ctx, uint64_t index, parley__tlog_hash_t *out)
{
    pd_tree_t *self = ctx;
    if (index >= parley__tlog_stored_count(self->range.size))
        return -EINVAL;
    uint64_t queued = parley__tlog_stored_count(self->pend_first);
    if (self->pend_len > 0 && index >= queued) {
        memcpy(out->b, self->pend + (index - queued) * S_HASH, S_HASH);
        return 0;
    }
    return pd_pread_all(self->fd, out->b, S_HASH, s_offset(index));
}

/* --- writing ------------------------------------------------------------------ */

static void s_syncer_stop(pd_tree_t *self);

/* The queue is durable (or, without sync, written): drop it. */
static void
s_drop_queue(pd_tree_t *self)
{
    self->synced = self->range.size;
    self->pend_first = self->range.size;
    self->pend_len = 0;
    self->pend_written = 0;
    self->write_failing = false;
    if (self->pend_cap > (1u << 20)) {
        /* One burst should not pin its buffer forever. */
        free(self->pend);
        self->pend = NULL;
        self->pend_cap = 0;
    }
}

/*
 * Write the part of the queue not written yet, after the leaves already
 * in the file. No fdatasync here; without opts.sync the queue goes once
 * written. A failure keeps the queue for the next try.
 */
static int
s_write(pd_tree_t *self)
{
    if (self->pend_len > self->pend_written) {
        uint64_t off = s_offset(parley__tlog_stored_count(self->pend_first))
                       + self->pend_written;
        size_t n = self->pend_len - self->pend_written;
        int rc = pd_pwrite_all(self->fd, self->pend + self->pend_written, n, off);
        if (rc < 0) {
            self->write_failing = true;
            self->stats.write_errors++;
            return rc;
        }
        if (off + n > self->file_bytes)
            self->file_bytes = off + n;
        self->stats.writes++;
        self->pend_written = self->pend_len;
    }
    if (!self->opts.sync)
        s_drop_queue(self);
    return 0;
}

/*
 * s_write(), then fdatasync when anything was written since the last
 * one; the queue goes once synced. After a failed fdatasync the pages
 * written since the last good one may be gone from the kernel's cache
 * without reaching the disk: the next try writes all of them again.
 */
static int
s_sync(pd_tree_t *self)
{
    int rc = s_write(self);
    if (rc < 0 || self->pend_len == 0)
        return rc;
    if (fdatasync(self->fd) < 0) {
        rc = -errno;
        self->pend_written = 0;
        self->write_failing = true;
        self->stats.write_errors++;
        return rc;
    }
    self->stats.syncs++;
    s_drop_queue(self);
    return 0;
}

/* Append a leaf to the range and queue the stored hashes it adds. The
 * room is made first, so a failure leaves the tree as it was. */
static int
s_append_leaf(pd_tree_t *self, const parley__tlog_hash_t *leaf)
{
    parley__tlog_hash_t stored[64];
    size_t n;
    int rc = pd_buf_reserve(&self->pend, &self->pend_cap, self->pend_len, sizeof(stored),
                            16384);
    if (rc < 0)
        return rc;
    if (self->pend_len == 0)
        self->pend_first = self->range.size;
    if ((rc = parley__tlog_range_append(&self->range, leaf, stored, &n)) != 0)
        return rc;
    memcpy(self->pend + self->pend_len, stored, n * S_HASH);
    self->pend_len += n * S_HASH;
    return 0;
}

/* --- the start-up check -------------------------------------------------------- */

/* An all-zero hash: a SHA-256 output never is one, a block the file
 * system allocated but a crash kept from being written always is. */
static bool
s_is_zero(const parley__tlog_hash_t *h)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < sizeof(h->b); i++)
        acc |= h->b[i];
    return acc == 0;
}

/*
 * Check leaf j's group of stored hashes. leaf is the hash recomputed from
 * the record (or the absent-record leaf), or NULL when the record is gone
 * (the stored leaf hash is then taken as it is). Every subtree hash the
 * leaf completes must be the node hash of its children.
 *
 * Returns 0, 1 when the group holds a never-written (zero) hash, -EBADMSG
 * for a mismatch (message in errbuf) or -errno.
 */
static int
s_check_group(pd_tree_t *self, uint64_t j, const parley__tlog_hash_t *leaf,
              char *errbuf, size_t errlen)
{
    const uint64_t base = parley__tlog_stored_count(j);
    const size_t n = (size_t)(parley__tlog_stored_count(j + 1) - base);
    parley__tlog_hash_t stored[64], computed[64];
    size_t m;
    int rc;
    for (size_t l = 0; l < n; l++) {
        if ((rc = s_win_get(self, base + l, &stored[l])) < 0) {
            pd_errf(errbuf, errlen, "cannot read %s/%s: %s", self->dir, PD_TREE_FILE,
                   strerror(-rc));
            return rc;
        }
        if (s_is_zero(&stored[l]))
            return 1;
    }
    if (leaf != NULL && !parley__tlog_hash_equal(leaf, &stored[0])) {
        char a[17], b[17];
        s_short_hex(leaf, a);
        s_short_hex(&stored[0], b);
        pd_errf(errbuf, errlen,
               "%s/%s: the stored hash of seq %" PRIu64 " at byte offset %" PRIu64
               " does not match the %s (recomputed %s..., stored "
               "%s...): the hash file or the log has been altered (see "
               "docs/transparency.md)",
               self->dir, PD_TREE_FILE, j + 1, s_offset(base),
               j + 1 < self->absent_before ? "absent-record leaf"
                                           : "record in the log",
               a, b);
        return -EBADMSG;
    }
    if (parley__tlog_range_append(&self->range, leaf ? leaf : &stored[0], computed, &m) !=
        0)
        return -EINVAL;
    for (size_t l = 1; l < n; l++) {
        if (!parley__tlog_hash_equal(&computed[l], &stored[l])) {
            uint64_t span = (uint64_t)1 << l;
            pd_errf(errbuf, errlen,
                   "%s/%s: the stored hash at byte offset %" PRIu64
                   " (the subtree over seqs %" PRIu64 "-%" PRIu64
                   ") does not match the hash of its two children: the hash file "
                   "is damaged (see docs/transparency.md)",
                   self->dir, PD_TREE_FILE, s_offset(base + l), j + 2 - span, j + 1);
            return -EBADMSG;
        }
    }
    return 0;
}

/* The file's written part ends before leaf j's group: what follows is a
 * write a crash cut short, and goes (its hashes are recomputed). */
static void
s_unwritten(pd_tree_t *self, uint64_t j)
{
    pd_log(PD_LOG_WARN,
           "tree: %s/%s holds never-written (zero) bytes from offset %" PRIu64
           " (the hashes of seq %" PRIu64 " on): a write cut short by a crash",
           self->dir, PD_TREE_FILE, s_offset(parley__tlog_stored_count(j)), j + 1);
    self->file_leaves = j;
}

/*
 * Take leaf j (the file's or a new one) with the hash leaf recomputed
 * for it, or NULL when its record is gone. A new leaf is queued, and the
 * queue written out in pieces. 0, 2 when leaf is NULL and the file lacks
 * the leaf, or a negative error with a message.
 */
static int
s_take_leaf(pd_tree_t *self, uint64_t j, const parley__tlog_hash_t *leaf,
            char *errbuf, size_t errlen)
{
    int rc;
    if (j < self->file_leaves) {
        if ((rc = s_check_group(self, j, leaf, errbuf, errlen)) < 0)
            return rc;
        if (rc == 0) {
            if (leaf == NULL)
                self->stats.unbacked++;
            else if (j + 1 < self->absent_before)
                self->stats.absent++;
            else
                self->stats.checked++;
            return 0;
        }
        s_unwritten(self, j);
    }
    if (leaf == NULL)
        return 2; /* not in the file, and nothing to recompute it from */
    if ((rc = s_append_leaf(self, leaf)) != 0)
        return rc == PARLEY_EARG ? -EINVAL : rc;
    if (j + 1 < self->absent_before)
        self->stats.absent++;
    else
        self->stats.recomputed++;
    /* After a failure the queue stays in memory; pd_tree_recover() and
     * the daemon's later syncs try again. */
    if (self->pend_len >= S_FLUSH_BYTES && !self->write_failing
        && (rc = s_sync(self)) < 0)
        pd_log(PD_LOG_WARN, "tree: cannot write %s/%s: %s; the hashes "
                            "recomputed stay in memory until a write works",
               self->dir, PD_TREE_FILE, strerror(-rc));
    return 0;
}

/*
 * Leaves [range.size, upto) whose records the log does not hand over:
 * absent-record leaves below absent_before are recomputed; the others'
 * records are gone (retention), so their hashes are checked by their
 * parents only, and must be in the file. A tree with no leaf yet that
 * meets a log whose front is gone starts with absent-record leaves for
 * that front (the upgrade of a log older than its tree).
 */
static int
s_before_records(pd_tree_t *self, uint64_t upto, char *errbuf, size_t errlen)
{
    if (self->file_leaves == 0 && self->range.size == 0 && upto > 0 &&
        self->opts.absent_front) {
        int rc = s_set_absent(self, upto + 1, errbuf, errlen);
        if (rc < 0)
            return rc;
        pd_log(PD_LOG_WARN,
               "tree: %s/%s starts at seq %" PRIu64 ": the log no longer holds "
               "the records before it, so the tree has absent-record leaves "
               "for seqs 1-%" PRIu64 " (see docs/transparency.md)",
               self->dir, PD_TREE_FILE, upto + 1, upto);
    }
    for (uint64_t j = self->range.size; j < upto; j++) {
        parley__tlog_hash_t leaf;
        bool absent = j + 1 < self->absent_before;
        if (absent)
            parley__tlog_absent_leaf(j + 1, &leaf);
        int rc = s_take_leaf(self, j, absent ? &leaf : NULL, errbuf, errlen);
        if (rc == 2) {
            pd_errf(errbuf, errlen,
                    "%s/%s holds the hashes of %" PRIu64 " records but the log "
                    "no longer holds seqs %" PRIu64 "-%" PRIu64 ": their hashes "
                    "went with their segments and cannot be recomputed; restore "
                    "%s from a backup of this state directory%s (see "
                    "docs/transparency.md)",
                    self->dir, PD_TREE_FILE, j, j + 1, upto, PD_TREE_FILE,
                    j == 0 ? ", or, if this log is older than its tree, start "
                             "once with tree_absent_front on"
                           : "");
            return -EBADMSG;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- public API ------------------------------------------------------------------ */

/*
 * Open the hash file in self->dirfd (creating it if there is none) and
 * take its lock; sets self->fd and self->file_bytes. Returns 0 or a
 * negative error with errbuf set.
 */
static int
s_open_file(pd_tree_t *self, char *errbuf, size_t errlen)
{
    const char *dir = self->dir;
    int rc;
    /* A temporary file left by a crash while creating: never in use. */
    (void)unlinkat(self->dirfd, S_TMP_NAME, 0);
    self->fd = openat(self->dirfd, PD_TREE_FILE, O_RDWR | O_CLOEXEC);
    if (self->fd < 0 && errno == ENOENT) {
        if ((rc = s_create(self, errbuf, errlen)) < 0)
            return rc;
        self->fd = openat(self->dirfd, PD_TREE_FILE, O_RDWR | O_CLOEXEC);
    }
    if (self->fd < 0) {
        rc = -errno;
        pd_errf(errbuf, errlen, "cannot open %s/%s: %s", dir, PD_TREE_FILE,
               strerror(-rc));
        return rc;
    }
    if (flock(self->fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        pd_errf(errbuf, errlen, "%s/%s is in use by another process", dir,
               PD_TREE_FILE);
        return rc;
    }
    struct stat st;
    if (fstat(self->fd, &st) < 0) {
        rc = -errno;
        pd_errf(errbuf, errlen, "cannot stat %s/%s: %s", dir, PD_TREE_FILE,
               strerror(-rc));
        return rc;
    }
    self->file_bytes = (uint64_t)st.st_size;
    return 0;
}

pd_tree_t *
pd_tree_open(const char *dir, const pd_tree_opts_t *opts, char *errbuf,
             size_t errlen, int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (dir == NULL) {
        *err = -EINVAL;
        return NULL;
    }
    pd_tree_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    self->dirfd = -1;
    self->fd = -1;
    if (opts != NULL)
        self->opts = *opts;
    parley__tlog_range_init(&self->range);
    if ((self->dir = strdup(dir)) == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    /* Whichever of the log and the tree opens first makes the directory. */
    if ((self->dirfd = pd_dir_open(dir, errbuf, errlen)) < 0) {
        *err = self->dirfd;
        goto fail;
    }
    if ((*err = s_open_file(self, errbuf, errlen)) < 0)
        goto fail;
    uint8_t h[PD_TREE_HEADER_BYTES];
    const char *problem = NULL;
    if (self->file_bytes < PD_TREE_HEADER_BYTES)
        problem = "shorter than its header";
    else if ((*err = pd_pread_all(self->fd, h, sizeof(h), 0)) < 0) {
        pd_errf(errbuf, errlen, "cannot read %s/%s: %s", dir, PD_TREE_FILE,
               strerror(-*err));
        goto fail;
    } else
        problem = s_header_problem(h);
    if (problem != NULL) {
        *err = -EBADMSG;
        pd_errf(errbuf, errlen,
               "%s/%s at byte offset 0: %s; move it aside if it is not parley's "
               "(see docs/transparency.md)",
               dir, PD_TREE_FILE, problem);
        goto fail;
    }
    self->absent_before = pd_get64le(h + 24);
    self->file_leaves = parley__tlog_stored_leaves(
        (self->file_bytes - PD_TREE_HEADER_BYTES) / S_HASH);
    *err = 0;
    return self;
fail:
    pd_tree_close(&self);
    return NULL;
}

/* pd_tree_check() and pd_tree_check_absent(): leaf is the hash of the
 * record at seq, or its absent-record leaf when absent. */
static int
s_check(pd_tree_t *tree, uint64_t seq, const parley__tlog_hash_t *leaf,
        bool absent, char *errbuf, size_t errlen)
{
    if (tree == NULL || tree->ready || tree->failed || seq == 0)
        return -EINVAL;
    int rc;
    if (!tree->started) {
        if ((rc = s_before_records(tree, seq - 1, errbuf, errlen)) < 0)
            return rc;
        tree->started = true;
        tree->next_check = seq;
    }
    if (seq != tree->next_check) {
        pd_errf(errbuf, errlen, "tree: record seq %" PRIu64 " where %" PRIu64
               " was expected", seq, tree->next_check);
        return -EINVAL;
    }
    if (seq < tree->absent_before && !absent) {
        pd_errf(errbuf, errlen,
               "%s/%s: the log holds seq %" PRIu64 ", which the tree has as an "
               "absent record (the log before seq %" PRIu64 " was gone when the "
               "tree began): the log has been restored from an older copy (see "
               "docs/transparency.md)",
               tree->dir, PD_TREE_FILE, seq, tree->absent_before);
        return -EBADMSG;
    }
    if ((rc = s_take_leaf(tree, seq - 1, leaf, errbuf, errlen)) < 0)
        return rc;
    tree->next_check++;
    return 0;
}

int
pd_tree_check(pd_tree_t *tree, uint64_t seq, const void *record, size_t len,
              char *errbuf, size_t errlen)
{
    if (record == NULL && len > 0)
        return -EINVAL;
    parley__tlog_hash_t leaf;
    parley__tlog_leaf_hash(record, len, &leaf);
    return s_check(tree, seq, &leaf, false, errbuf, errlen);
}

int
pd_tree_check_absent(pd_tree_t *tree, uint64_t seq, char *errbuf,
                     size_t errlen)
{
    parley__tlog_hash_t leaf;
    parley__tlog_absent_leaf(seq, &leaf);
    return s_check(tree, seq, &leaf, true, errbuf, errlen);
}

int
pd_tree_recover(pd_tree_t *tree, uint64_t records, char *errbuf, size_t errlen)
{
    if (tree == NULL || tree->ready || tree->failed)
        return -EINVAL;
    int rc;
    if (tree->started) {
        if (tree->next_check - 1 != records) {
            pd_errf(errbuf, errlen,
                   "tree: the records checked end at seq %" PRIu64
                   " but the log has %" PRIu64,
                   tree->next_check - 1, records);
            return -EINVAL;
        }
    } else if ((rc = s_before_records(tree, records, errbuf, errlen)) < 0) {
        return rc; /* no record is held: all of them are gone */
    }
    free(tree->win);
    tree->win = NULL;
    tree->win_count = 0;

    /* What the file holds that stays: the leaves checked, and those
     * recomputed and written already; the rest is cut. */
    const uint64_t keep = tree->pend_len > 0 ? tree->pend_first
                          : tree->range.size;
    const uint64_t end = s_offset(parley__tlog_stored_count(keep));
    if (tree->file_bytes > end) {
        if (ftruncate(tree->fd, (off_t)end) < 0 ||
            (tree->opts.sync && fsync(tree->fd) < 0)) {
            rc = -errno;
            pd_errf(errbuf, errlen, "cannot truncate %s/%s: %s", tree->dir,
                   PD_TREE_FILE, strerror(errno));
            return rc;
        }
        uint64_t cut = tree->file_bytes - end;
        pd_log(PD_LOG_WARN,
               "tree: cut %" PRIu64 " bytes from %s/%s at offset %" PRIu64
               " (hashes of leaves beyond the log's %" PRIu64
               " records, or a write cut short)",
               cut, tree->dir, PD_TREE_FILE, end, records);
        tree->stats.truncated_bytes = cut;
        tree->file_bytes = end;
    }
    /* The hashes recomputed are written and synced now if the disk lets
     * them; if not (a full disk), they stay queued in memory: the log
     * holds their records, and every later sync tries again. */
    if (tree->pend_len == 0)
        tree->synced = tree->range.size;
    else if ((rc = s_sync(tree)) < 0)
        pd_log(PD_LOG_WARN,
               "tree: cannot write %s/%s: %s; the hashes of %" PRIu64
               " records stay in memory until a write works",
               tree->dir, PD_TREE_FILE, strerror(-rc),
               tree->range.size - tree->pend_first);
    if (tree->stats.recomputed > 0)
        pd_log(PD_LOG_INFO,
               "tree: recomputed the hashes of %" PRIu64 " records up to seq %" PRIu64
               " (%s/%s lacked them)",
               tree->stats.recomputed, records, tree->dir, PD_TREE_FILE);
    tree->stats.leaves = records;
    tree->ready = true;
    return 0;
}

void
pd_tree_close(pd_tree_t **tree)
{
    if (tree == NULL || *tree == NULL)
        return;
    pd_tree_t *self = *tree;
    if (self->ready) {
        int rc = pd_tree_sync(self);
        if (rc < 0)
            pd_log(PD_LOG_ERROR, "tree: writing queued hashes at close: %s (the "
                                 "next start recomputes them)",
                   strerror(-rc));
    }
    s_syncer_stop(self); /* pd_tree_sync() reaped the last background sync */
    if (self->fd >= 0)
        close(self->fd); /* releases the lock */
    if (self->dirfd >= 0)
        close(self->dirfd);
    free(self->pend);
    free(self->win);
    free(self->dir);
    free(self);
    *tree = NULL;
}

/* pd_tree_append() and pd_tree_append_absent(): queue leaf as seq's. */
static int
s_append(pd_tree_t *tree, uint64_t seq, const parley__tlog_hash_t *leaf)
{
    if (tree == NULL || !tree->ready || seq != tree->range.size + 1)
        return -EINVAL;
    int rc = s_append_leaf(tree, leaf);
    if (rc == 0)
        tree->stats.leaves = tree->range.size;
    return rc;
}

int
pd_tree_append(pd_tree_t *tree, uint64_t seq, const void *record, size_t len)
{
    if (record == NULL && len > 0)
        return -EINVAL;
    parley__tlog_hash_t leaf;
    parley__tlog_leaf_hash(record, len, &leaf);
    return s_append(tree, seq, &leaf);
}

int
pd_tree_append_absent(pd_tree_t *tree, uint64_t seq)
{
    parley__tlog_hash_t leaf;
    parley__tlog_absent_leaf(seq, &leaf);
    return s_append(tree, seq, &leaf);
}

int
pd_tree_write(pd_tree_t *tree)
{
    if (tree == NULL || !tree->ready)
        return -EINVAL;
    if (tree->bg_flight)
        return 0; /* the queue is written after the sync that runs */
    /* With sync the file is written at the next sync (the heartbeat):
     * a write per commit would be one more call into the file system on
     * the loop thread per commit, one that can wait behind the journal,
     * for hashes no crash needs (section "Durability" in tree.h). */
    if (tree->opts.sync && tree->pend_len - tree->pend_written < S_WRITE_BATCH)
        return 0;
    return s_write(tree);
}

int
pd_tree_sync(pd_tree_t *tree)
{
    if (tree == NULL || !tree->ready)
        return -EINVAL;
    /* A background sync that failed is tried again here at once. */
    (void)pd_tree_sync_reap(tree, true);
    return tree->opts.sync ? s_sync(tree) : s_write(tree);
}

/* --- the background sync ---------------------------------------------------- */

/* The sync thread: write what it was given, fdatasync, say how it went. */
static void *
s_syncer_run(void *arg)
{
    pd_tree_t *self = arg;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->bg_stop && !self->bg_asked)
            pthread_cond_wait(&self->cv, &self->mu);
        if (self->bg_stop)
            break;
        /* bg_buf, bg_len, bg_off and fd stay as they are while asked. */
        pthread_mutex_unlock(&self->mu);
        int rc = self->bg_len > 0 ? pd_pwrite_all(self->fd, self->bg_buf,
                                                  self->bg_len, self->bg_off)
                                  : 0;
        if (rc == 0 && fdatasync(self->fd) < 0)
            rc = -errno;
        pthread_mutex_lock(&self->mu);
        self->bg_rc = rc;
        self->bg_asked = false;
        self->bg_done = true;
        pthread_cond_broadcast(&self->cv);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

/* Start the sync thread (once). 0 or -errno. */
static int
s_syncer_start(pd_tree_t *self)
{
    if (self->bg_started)
        return 0;
    if (!self->bg_init) {
        if (pthread_mutex_init(&self->mu, NULL) != 0)
            return -ENOMEM;
        if (pthread_cond_init(&self->cv, NULL) != 0) {
            pthread_mutex_destroy(&self->mu);
            return -ENOMEM;
        }
        self->bg_init = true;
    }
    int rc = pthread_create(&self->syncer, NULL, s_syncer_run, self);
    if (rc != 0)
        return -rc;
    self->bg_started = true;
    return 0;
}

/* End the sync thread (after the last sync was reaped) and free its
 * state. */
static void
s_syncer_stop(pd_tree_t *self)
{
    if (self->bg_started) {
        pthread_mutex_lock(&self->mu);
        self->bg_stop = true;
        pthread_cond_broadcast(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->syncer, NULL);
        self->bg_started = false;
    }
    if (self->bg_init) {
        pthread_cond_destroy(&self->cv);
        pthread_mutex_destroy(&self->mu);
        self->bg_init = false;
    }
    free(self->bg_buf);
    self->bg_buf = NULL;
    self->bg_cap = 0;
}

int
pd_tree_sync_begin(pd_tree_t *tree)
{
    if (tree == NULL || !tree->ready)
        return -EINVAL;
    if (!tree->opts.sync)
        return s_write(tree);
    if (tree->bg_flight)
        return 0; /* one at a time: the next begin follows its reap */
    if (tree->pend_len == 0)
        return 0;
    size_t n = tree->pend_len - tree->pend_written;
    int rc = pd_buf_reserve(&tree->bg_buf, &tree->bg_cap, 0, n, 16384);
    if (rc == 0)
        rc = s_syncer_start(tree);
    if (rc < 0)
        return s_sync(tree); /* no thread: sync here, as before */
    if (n > 0) /* all written already: bg_buf may still be NULL */
        memcpy(tree->bg_buf, tree->pend + tree->pend_written, n);
    tree->bg_len = n;
    tree->bg_off = s_offset(parley__tlog_stored_count(tree->pend_first))
                   + tree->pend_written;
    tree->bg_leaves = tree->range.size;
    tree->bg_queued = tree->pend_len;
    tree->bg_flight = true;
    pthread_mutex_lock(&tree->mu);
    tree->bg_done = false;
    tree->bg_asked = true;
    pthread_cond_broadcast(&tree->cv);
    pthread_mutex_unlock(&tree->mu);
    return 0;
}

int
pd_tree_sync_reap(pd_tree_t *tree, bool wait)
{
    if (tree == NULL || !tree->ready)
        return -EINVAL;
    if (!tree->bg_flight)
        return 0;
    pthread_mutex_lock(&tree->mu);
    while (wait && !tree->bg_done)
        pthread_cond_wait(&tree->cv, &tree->mu);
    bool done = tree->bg_done;
    int rc = tree->bg_rc;
    tree->bg_done = false;
    pthread_mutex_unlock(&tree->mu);
    if (!done)
        return -EINPROGRESS;
    tree->bg_flight = false;
    if (tree->bg_cap > (1u << 20)) {
        /* One burst should not pin its copy forever. */
        free(tree->bg_buf);
        tree->bg_buf = NULL;
        tree->bg_cap = 0;
    }
    if (rc < 0) {
        /* As after a failed s_sync(): everything since the last good
         * sync is written again by the next try. */
        tree->pend_written = 0;
        tree->write_failing = true;
        tree->stats.write_errors++;
        return rc;
    }
    uint64_t end = tree->bg_off + tree->bg_len;
    if (tree->bg_len > 0) {
        tree->stats.writes++;
        if (end > tree->file_bytes)
            tree->file_bytes = end;
    }
    tree->stats.syncs++;
    /* The hashes of leaves up to bg_leaves are durable: they leave the
     * queue; what was queued since stays, none of it written. */
    size_t k = tree->bg_queued;
    if (k == tree->pend_len) {
        s_drop_queue(tree);
    } else {
        memmove(tree->pend, tree->pend + k, tree->pend_len - k);
        tree->pend_len -= k;
        tree->pend_written = 0;
        tree->pend_first = tree->bg_leaves;
        tree->synced = tree->bg_leaves;
        tree->write_failing = false;
    }
    return 0;
}

uint64_t
pd_tree_size(const pd_tree_t *tree)
{
    return tree != NULL && tree->ready ? tree->range.size : 0;
}

uint64_t
pd_tree_synced(const pd_tree_t *tree)
{
    return tree != NULL && tree->ready ? tree->synced : 0;
}

uint64_t
pd_tree_absent_before(const pd_tree_t *tree)
{
    return tree != NULL ? tree->absent_before : 0;
}

int
pd_tree_root(pd_tree_t *tree, uint64_t size, parley__tlog_hash_t *out)
{
    if (tree == NULL || out == NULL || !tree->ready || size > tree->range.size)
        return -EINVAL;
    if (size == tree->range.size) {
        parley__tlog_range_root(&tree->range, out);
        return 0;
    }
    int rc = parley__tlog_root(s_read, tree, size, out);
    return rc == PARLEY_EARG ? -EINVAL : rc;
}

int
pd_tree_prove(pd_tree_t *tree, uint8_t kind, uint64_t m, uint64_t n,
              parley__tlog_proof_t *out)
{
    if (tree == NULL || out == NULL || !tree->ready || n > tree->range.size)
        return -EINVAL;
    int rc = parley__tlog_prove(s_read, tree, kind, m, n, out);
    return rc == PARLEY_EARG ? -EINVAL : rc;
}

int
pd_tree_range(pd_tree_t *tree, uint64_t size, parley__tlog_range_t *out)
{
    if (tree == NULL || out == NULL || !tree->ready || size > tree->range.size)
        return -EINVAL;
    if (size == tree->range.size) {
        *out = tree->range;
        return 0;
    }
    int rc = parley__tlog_range_load(out, size, s_read, tree);
    return rc == PARLEY_EARG ? -EINVAL : rc;
}

void
pd_tree_get_stats(const pd_tree_t *tree, pd_tree_stats_t *out)
{
    if (out == NULL)
        return;
    if (tree == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = tree->stats;
}
