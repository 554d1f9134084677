/*
 * test_translog.c - parleyd's transparency log without sockets: the tree
 * fed by the embedded storage's applied records and its scan at open,
 * signed and time-stamped checkpoints, the proof answers of the api with
 * every limit and reject, what happens without a log key, and a cluster
 * replica's void records as absent-record leaves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "datapath.h"
#include "log.h"
#include "note.h"
#include "translog.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#define ORIGIN "parley.example.org/test"

typedef struct fixture {
    dp_t d;
    parley_key_t *log_key;
    uint8_t log_pk[PARLEY_PUBLICKEY_BYTES];
    pd_translog_t *t;
    parley__tlog_mem_t ref; /* the reference tree of what was appended */
    uint64_t signer_seq;
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL || dp_setup(&f->d, false) < 0)
        return -1;
    uint8_t seed[32];
    memset(seed, 0x4c, sizeof(seed));
    f->log_key = parley_key_from_seed(seed);
    parley_key_public(f->log_key, f->log_pk);
    snprintf(f->d.cfg.log_origin, sizeof(f->d.cfg.log_origin), "%s", ORIGIN);
    char path[600];
    snprintf(path, sizeof(path), "%s/log.key", f->d.dir);
    if (parley_key_save(f->log_key, path, "test log key", 0) < 0)
        return -1;
    if (pd_config_finish(&f->d.cfg) < 0)
        return -1;
    parley__tlog_mem_init(&f->ref);
    f->signer_seq = 1;
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    pd_translog_close(&f->t);
    parley_key_destroy(&f->log_key);
    parley__tlog_mem_clear(&f->ref);
    dp_teardown(&f->d);
    free(f);
    return 0;
}

/* (Re)open storage and log the way the server does: the log first, the
 * storage with the log's scan, then recovery. */
static int
s_open(fixture_t *f)
{
    int err = 0;
    pd_translog_close(&f->t);
    pd_storage_destroy(&f->d.storage);
    if ((f->t = pd_translog_open(&f->d.cfg, NULL, &err)) == NULL)
        return err;
    pd_storage_scan_t scan = { .fn = pd_translog_scan, .ctx = f->t };
    f->d.storage = pd_embedded_open(&f->d.cfg, f->d.stats, &scan, &err);
    if (f->d.storage == NULL) {
        pd_translog_close(&f->t);
        return err;
    }
    err = pd_translog_recover(f->t, pd_storage_head(f->d.storage));
    if (err < 0) {
        pd_translog_close(&f->t);
        pd_storage_destroy(&f->d.storage);
    }
    return err;
}

/* Publish n updates through the storage and hand what it applied to the
 * log, as ingest does after a commit. */
static void
s_publish(fixture_t *f, int n)
{
    for (int i = 0; i < n; i++) {
        parley_update_t u;
        uint8_t env[PARLEY_ENVELOPE_MAX];
        dp_update(&u, NULL, "egypt", 1, f->signer_seq++);
        size_t len = dp_sign(f->d.keys[0], &u, env);
        assert_true(len > 0);
        pd_storage_update_t su = { .env = env, .len = len, .signer = f->d.pk[0],
                                   .update = &u, .received_at = parley_now_ms() };
        pd_storage_done_t done;
        assert_int_equal(pd_storage_submit(f->d.storage, &su, &done), PD_STORAGE_DONE);
        assert_int_equal(parley__tlog_mem_append(&f->ref, env, len), 0);
    }
    assert_int_equal(pd_storage_commit(f->d.storage), 0);
    pd_storage_record_t rec;
    while (pd_storage_applied(f->d.storage, &rec))
        assert_int_equal(pd_translog_append(f->t, &rec), 0);
    assert_int_equal(pd_translog_commit(f->t), 0);
}

/* The reference root of the first n leaves. */
static void
s_ref_root(fixture_t *f, uint64_t n, parley__tlog_hash_t *out)
{
    assert_int_equal(parley__tlog_root(parley__tlog_mem_read, &f->ref, n, out), 0);
}

/* Ask the log and decode its answer (0) or return the reject code. */
static int
s_ask(fixture_t *f, const parley__request_t *req, parley__reply_t *r,
      parley__arena_t *arena, char *detail, size_t cap)
{
    pd_translog_answer_t a;
    int rc = pd_translog_answer(f->t, req, &a);
    if (detail != NULL)
        snprintf(detail, cap, "%s", a.detail);
    if (rc != 0)
        return rc;
    assert_int_equal(parley__reply_decode(a.reply, a.len, r, arena), 0);
    assert_int_equal(r->type, PARLEY__REPLY_PROOF);
    assert_int_equal(r->request_id, req->request_id);
    return 0;
}

/* --- tests ---------------------------------------------------------------- */

/* Every heartbeat publishes a checkpoint of the tree as it is, signed by
 * the log key under the origin, stamped with the time by the same key. */
static void
test_checkpoints(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_open(f), 0);
    size_t len;
    assert_null(pd_translog_checkpoint(f->t, &len)); /* no heartbeat yet */
    s_publish(f, 5);
    assert_int_equal(pd_translog_size(f->t), 5);
    int64_t now = 1790000000123;
    assert_int_equal(pd_translog_heartbeat(f->t, now), 0);
    const char *cp = pd_translog_checkpoint(f->t, &len);
    assert_non_null(cp);
    parley__checkpoint_t c;
    parley__note_t *note = NULL;
    assert_int_equal(parley__checkpoint_open(cp, len, ORIGIN, f->log_pk, &c, &note, NULL),
                     0);
    assert_int_equal(c.size, 5);
    parley__tlog_hash_t root;
    s_ref_root(f, 5, &root);
    assert_memory_equal(c.root.b, root.b, 32);
    uint64_t ts = 0;
    assert_int_equal(parley__cosig_verify(note, ORIGIN, f->log_pk, &ts, NULL), 0);
    assert_int_equal(ts, 1790000000);
    assert_int_equal(note->nsigs, 2);
    parley__note_destroy(&note);

    /* Same size: the same text and signature, a new time. */
    char *first = strndup(cp, len);
    assert_int_equal(pd_translog_heartbeat(f->t, now + 5000), 0);
    cp = pd_translog_checkpoint(f->t, &len);
    size_t sig_end = (size_t)(strstr(first, "\n\n") - first) + 2;
    sig_end = (size_t)(strchr(first + sig_end, '\n') - first) + 1;
    assert_memory_equal(cp, first, sig_end);
    assert_int_equal(parley__checkpoint_open(cp, len, ORIGIN, f->log_pk, &c, &note, NULL),
                     0);
    assert_int_equal(parley__cosig_verify(note, ORIGIN, f->log_pk, &ts, NULL), 0);
    assert_int_equal(ts, 1790000005);
    parley__note_destroy(&note);
    free(first);

    /* Growth: a new size and root. */
    s_publish(f, 3);
    assert_int_equal(pd_translog_heartbeat(f->t, now + 6000), 0);
    cp = pd_translog_checkpoint(f->t, &len);
    assert_int_equal(parley__checkpoint_open(cp, len, ORIGIN, f->log_pk, &c, NULL, NULL),
                     0);
    assert_int_equal(c.size, 8);
    s_ref_root(f, 8, &root);
    assert_memory_equal(c.root.b, root.b, 32);
    /* Another key does not verify it. */
    uint8_t other[32];
    memcpy(other, f->d.pk[1], 32);
    assert_int_not_equal(
        parley__checkpoint_open(cp, len, ORIGIN, other, &c, NULL, NULL), 0);
}

/* Inclusion and consistency answers verify against the checkpoint. */
static void
test_proofs(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_open(f), 0);
    s_publish(f, 13);
    assert_int_equal(pd_translog_heartbeat(f->t, parley_now_ms()), 0);
    uint8_t abuf[1 << 16];
    parley__arena_t arena;
    parley__arena_init(&arena, abuf, sizeof(abuf));
    parley__reply_t r;

    /* Inclusion of three seqs in the latest checkpoint (size 0). */
    uint64_t seqs[] = { 1, 7, 13 };
    parley__request_t req = { .request_id = 41, .op = PARLEY__OP_INCLUSION,
                              .seqs = seqs, .n_seqs = 3 };
    assert_int_equal(s_ask(f, &req, &r, &arena, NULL, 0), 0);
    assert_int_equal(r.tree_size, 13);
    assert_int_equal(r.n_proofs, 3);
    assert_true(r.checkpoint.len > 0);
    parley__checkpoint_t c;
    assert_int_equal(parley__checkpoint_open(r.checkpoint.data, r.checkpoint.len, ORIGIN,
                                             f->log_pk, &c, NULL, NULL),
                     0);
    for (size_t i = 0; i < 3; i++) {
        parley__tlog_proof_t p;
        assert_int_equal(parley__tlog_proof_decode(r.proofs[i].data, r.proofs[i].len,
                                                   &p, NULL),
                         0);
        parley__tlog_hash_t leaf;
        assert_int_equal(
            parley__tlog_mem_read(&f->ref, parley__tlog_stored_index(0, seqs[i] - 1),
                                  &leaf),
            0);
        assert_int_equal(parley__tlog_proof_check_inclusion(&p, &leaf, &c.root, NULL), 0);
    }
    parley__arena_reset(&arena);

    /* An older size: no checkpoint comes with it. */
    req.tree_size = 9;
    req.n_seqs = 1;
    assert_int_equal(s_ask(f, &req, &r, &arena, NULL, 0), 0);
    assert_int_equal(r.tree_size, 9);
    assert_int_equal(r.checkpoint.len, 0);
    parley__arena_reset(&arena);

    /* Consistency from 5 to the latest, with the range of 5. */
    parley__request_t con = { .request_id = 42, .op = PARLEY__OP_CONSISTENCY,
                              .old_size = 5, .with_range = true };
    assert_int_equal(s_ask(f, &con, &r, &arena, NULL, 0), 0);
    assert_int_equal(r.n_proofs, 1);
    assert_int_equal(r.n_range, 2); /* 5 = 4 + 1 */
    parley__tlog_range_t range;
    parley__tlog_range_init(&range);
    range.size = 5;
    range.count = 2;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(r.range[i].len, 32);
        memcpy(range.subtree[i].b, r.range[i].data, 32);
    }
    parley__tlog_hash_t old_root, want;
    parley__tlog_range_root(&range, &old_root);
    s_ref_root(f, 5, &want);
    assert_memory_equal(old_root.b, want.b, 32);
    parley__tlog_proof_t p;
    assert_int_equal(parley__tlog_proof_decode(r.proofs[0].data, r.proofs[0].len, &p,
                                               NULL),
                     0);
    assert_int_equal(parley__tlog_proof_check_consistency(&p, &old_root, &c.root, NULL),
                     0);
    parley__arena_reset(&arena);

    /* The checkpoint request. */
    parley__request_t cp = { .request_id = 43, .op = PARLEY__OP_CHECKPOINT };
    assert_int_equal(s_ask(f, &cp, &r, &arena, NULL, 0), 0);
    assert_int_equal(r.tree_size, 13);
    assert_true(r.checkpoint.len > 0);
}

/* Each limit of a proof request has its reject and its reason. */
static void
test_rejects(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_open(f), 0);
    s_publish(f, 4);
    uint8_t abuf[1 << 16];
    parley__arena_t arena;
    parley__arena_init(&arena, abuf, sizeof(abuf));
    parley__reply_t r;
    char why[200];
    uint64_t seqs[PARLEY__INCLUSION_MAX + 1];
    for (size_t i = 0; i <= PARLEY__INCLUSION_MAX; i++)
        seqs[i] = 1;
    parley__request_t req = { .op = PARLEY__OP_INCLUSION, .seqs = seqs, .n_seqs = 1 };
    /* No checkpoint yet: size 0 cannot be resolved. */
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), PARLEY_EUNAVAILABLE);
    assert_non_null(strstr(why, "no signed checkpoint"));
    parley__request_t cp = { .op = PARLEY__OP_CHECKPOINT };
    assert_int_equal(s_ask(f, &cp, &r, &arena, why, sizeof(why)), PARLEY_EUNAVAILABLE);
    /* With an explicit size it works. */
    req.tree_size = 4;
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), 0);
    parley__arena_reset(&arena);
    assert_int_equal(pd_translog_heartbeat(f->t, parley_now_ms()), 0);

    req.n_seqs = 0;
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
    assert_non_null(strstr(why, "1-256 seqs"));
    req.n_seqs = PARLEY__INCLUSION_MAX + 1;
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
    req.n_seqs = PARLEY__INCLUSION_MAX;
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), 0); /* the limit */
    parley__arena_reset(&arena);
    seqs[0] = 0;
    req.n_seqs = 1;
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
    assert_non_null(strstr(why, "seq 0 is not in the tree of 4"));
    seqs[0] = 5;
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
    seqs[0] = 2;
    req.tree_size = 5;
    assert_int_equal(s_ask(f, &req, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
    assert_non_null(strstr(why, "tree_size 5 is beyond the tree (4 leaves)"));

    parley__request_t con = { .op = PARLEY__OP_CONSISTENCY, .old_size = 3,
                              .new_size = 2 };
    assert_int_equal(s_ask(f, &con, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
    assert_non_null(strstr(why, "old_size 3 is above new_size 2"));
    con.new_size = 9;
    assert_int_equal(s_ask(f, &con, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
    con.old_size = 0;
    con.new_size = 0;
    assert_int_equal(s_ask(f, &con, &r, &arena, why, sizeof(why)), 0); /* 0 -> 4 */
    parley__arena_reset(&arena);
    parley__request_t other = { .op = PARLEY__OP_PING };
    assert_int_equal(s_ask(f, &other, &r, &arena, why, sizeof(why)), PARLEY_EBADREQUEST);
}

/* Flip one bit of the stored hash of leaf k (again: flip it back). */
static void
s_flip_leaf(fixture_t *f, uint64_t k)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", f->d.dir, PD_TREE_FILE);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    off_t off = PD_TREE_HEADER_BYTES + 32 * (off_t)parley__tlog_stored_index(0, k);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 1;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* A restart checks the tree against the log; a tampered hash refuses it,
 * and the absent log key means no checkpoints, still proofs. */
static void
test_restart_and_no_key(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_open(f), 0);
    s_publish(f, 20);
    assert_int_equal(pd_translog_heartbeat(f->t, parley_now_ms()), 0);
    parley__tlog_hash_t before;
    parley__checkpoint_t c;
    size_t len;
    const char *cp = pd_translog_checkpoint(f->t, &len);
    assert_int_equal(parley__checkpoint_open(cp, len, ORIGIN, f->log_pk, &c, NULL, NULL),
                     0);
    before = c.root;

    assert_int_equal(s_open(f), 0);
    assert_int_equal(pd_translog_size(f->t), 20);
    assert_int_equal(pd_translog_heartbeat(f->t, parley_now_ms()), 0);
    cp = pd_translog_checkpoint(f->t, &len);
    assert_int_equal(parley__checkpoint_open(cp, len, ORIGIN, f->log_pk, &c, NULL, NULL),
                     0);
    assert_memory_equal(c.root.b, before.b, 32);
    pd_translog_close(&f->t);
    pd_storage_destroy(&f->d.storage);

    /* One bit of a leaf hash changed: the start is refused. */
    s_flip_leaf(f, 11);
    assert_int_equal(s_open(f), -EBADMSG);
    s_flip_leaf(f, 11);

    /* Without the key file: no checkpoint, the tree and proofs still. */
    char path[600];
    snprintf(path, sizeof(path), "%s/log.key", f->d.dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(s_open(f), 0);
    assert_int_equal(pd_translog_heartbeat(f->t, parley_now_ms()), 0);
    assert_null(pd_translog_checkpoint(f->t, &len));
    uint8_t abuf[1 << 14];
    parley__arena_t arena;
    parley__arena_init(&arena, abuf, sizeof(abuf));
    parley__reply_t r;
    char why[200];
    parley__request_t cpreq = { .op = PARLEY__OP_CHECKPOINT };
    assert_int_equal(s_ask(f, &cpreq, &r, &arena, why, sizeof(why)),
                     PARLEY_EUNAVAILABLE);
    assert_non_null(strstr(why, "no log key"));
    uint64_t seq = 3;
    parley__request_t inc = { .op = PARLEY__OP_INCLUSION, .seqs = &seq, .n_seqs = 1,
                              .tree_size = 20 };
    assert_int_equal(s_ask(f, &inc, &r, &arena, why, sizeof(why)), 0);
    pd_translog_close(&f->t);

    /* A key named in the config must be there. */
    f->d.cfg.log_key_given = true;
    int err = 0;
    assert_null(pd_translog_open(&f->d.cfg, NULL, &err));
    assert_true(err < 0);
}

/* The root and size of the log's current checkpoint. */
static void
s_log_root(fixture_t *f, uint64_t *size, parley__tlog_hash_t *root)
{
    assert_int_equal(pd_translog_heartbeat(f->t, parley_now_ms()), 0);
    size_t len;
    const char *cp = pd_translog_checkpoint(f->t, &len);
    assert_non_null(cp);
    parley__checkpoint_t c;
    assert_int_equal(parley__checkpoint_open(cp, len, ORIGIN, f->log_pk, &c,
                                             NULL, NULL),
                     0);
    *size = c.size;
    *root = c.root;
}

/* A cluster replica's void record (a stream record its node refused) is
 * the absent-record leaf of its seq, applied and at a restart alike, so
 * every node's tree has the same root; a changed leaf there refuses the
 * start, a lost hash file is rebuilt with it. */
static void
test_void_records(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_open(f), 0);
    s_publish(f, 3);
    /* Seq 4 is a void record, seq 5 an update, as a replica takes them. */
    parley_update_t u;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    dp_update(&u, NULL, "qatar", 1, f->signer_seq++);
    size_t len = dp_sign(f->d.keys[0], &u, env);
    assert_true(len > 0);
    assert_int_equal(pd_embedded_put_void(f->d.storage, 4, parley_now_ms(),
                                          PARLEY_EREPLAY, NULL),
                     0);
    assert_int_equal(pd_embedded_put(f->d.storage, 5, parley_now_ms(), env,
                                     len, f->d.pk[0], &u),
                     0);
    assert_int_equal(pd_storage_commit(f->d.storage), 0);
    pd_storage_record_t rec;
    while (pd_storage_applied(f->d.storage, &rec))
        assert_int_equal(pd_translog_append(f->t, &rec), 0);
    assert_int_equal(pd_translog_commit(f->t), 0);
    parley__tlog_hash_t absent, want, got;
    parley__tlog_absent_leaf(4, &absent);
    assert_int_equal(parley__tlog_mem_append_hash(&f->ref, &absent), 0);
    assert_int_equal(parley__tlog_mem_append(&f->ref, env, len), 0);
    s_ref_root(f, 5, &want);
    uint64_t size = 0;
    s_log_root(f, &size, &got);
    assert_int_equal(size, 5);
    assert_memory_equal(got.b, want.b, 32);

    /* A restart checks seq 4 as absent. */
    assert_int_equal(s_open(f), 0);
    s_log_root(f, &size, &got);
    assert_int_equal(size, 5);
    assert_memory_equal(got.b, want.b, 32);
    pd_translog_close(&f->t);
    pd_storage_destroy(&f->d.storage);

    /* Its stored leaf changed: refused like a record's. */
    s_flip_leaf(f, 3);
    assert_int_equal(s_open(f), -EBADMSG);

    /* No hash file: rebuilt from the log, with the same root. */
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", f->d.dir, PD_TREE_FILE);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(s_open(f), 0);
    s_log_root(f, &size, &got);
    assert_int_equal(size, 5);
    assert_memory_equal(got.b, want.b, 32);
}

int
main(void)
{
    pd_log_set_level(PD_LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_checkpoints),
        T(test_proofs),
        T(test_rejects),
        T(test_restart_and_no_key),
        T(test_void_records),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
