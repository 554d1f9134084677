/*
 * tlog.c - what the transparency log's Merkle tree costs per update, for
 * the "tree on vs off" and "verification with proofs vs without"
 * targets, against references measured in the same run:
 *
 *   1. Reference: crypto_sign_verify_detached() on a typical envelope (the
 *      per-update floor: every update is verified once on ingest and again
 *      by every subscriber).
 *   2. The tree's in-memory work per record: leaf hash + compact-range
 *      append + queueing its stored hashes (pd_tree_append, no I/O).
 *   3. Durable appends in group commits of 1, 16 and 256 records with
 *      fdatasync: the log alone (pd_store) against the log plus the hash
 *      store (pd_store + pd_tree, the tree synced right after the log, as
 *      planned), and against the log plus the tree written but not
 *      fdatasynced (what deferring the tree's sync would cost: the tree
 *      can be recomputed from the durable log). Records per second, and
 *      the ratio to the log alone (target 0.95).
 *   4. A subscriber's check per update, at a tree of 2^20 leaves: the
 *      signature alone, then the signature plus an inclusion proof
 *      (filtered subscribers), the signature plus a leaf append to its own
 *      compact range (all/ subscribers, who recompute the root), and a
 *      consistency proof and a checkpoint signature (once per checkpoint).
 *   5. The same as the library runs it (client/logcheck.c): a stream of
 *      real updates after 2^20 leaves, a signed and time-stamped
 *      checkpoint every 200 (or 1000) of them; per update the library's
 *      decode and signature check (parley_delivery_decode(), the
 *      reference) against that plus the verifier's work: inclusion proofs
 *      batched per checkpoint for a subscriber that sees one update in
 *      five, and its own root for an all/ subscriber; the checkpoint's
 *      signature and consistency proof amortised over the updates. Only
 *      the subscriber's side is timed (the proofs' making is the
 *      daemon's).
 *
 * Not part of `make test`; `make bench` runs it (bench/run.sh).
 */
#include "bench.h"
#include "codec.h"
#include "logcheck.h"
#include "note.h"
#include "store.h"
#include "tlog.h"
#include "tree.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run op until at least min_ns have passed; out = nanoseconds per call. */
#define S_TIME(out, min_ns, op)                                               \
    do {                                                                      \
        uint64_t t0_ = bench_now_ns(), n_ = 0, el_;                           \
        do {                                                                  \
            for (int k_ = 0; k_ < 64; k_++) {                                 \
                op;                                                           \
            }                                                                 \
            n_ += 64;                                                         \
        } while ((el_ = bench_now_ns() - t0_) < (min_ns));                    \
        (out) = (double)el_ / (double)n_;                                     \
    } while (0)

typedef enum {
    S_LOG_ALONE,     /* the log, fdatasync per commit */
    S_TREE_SYNCED,   /* and the tree, written and fdatasynced per commit */
    S_TREE_DEFERRED, /* and the tree, written per commit, never fdatasynced */
} s_mode_t;

/* Records per second through the log (and the tree, by mode) in group
 * commits of batch records, for total records. */
static double
s_durable_rate(const char *dir, const bench_envs_t *e, size_t total, size_t batch,
               s_mode_t mode)
{
    char errbuf[512] = "";
    int err = 0;
    pd_store_opts_t so = {.sync = true};
    pd_tree_opts_t to = {.sync = mode == S_TREE_SYNCED};
    pd_tree_t *tree = NULL;
    if (mode != S_LOG_ALONE) {
        tree = pd_tree_open(dir, &to, errbuf, sizeof(errbuf), &err);
        if (tree == NULL || pd_tree_recover(tree, 0, errbuf, sizeof(errbuf)) != 0) {
            fprintf(stderr, "bench_tlog: tree: %s\n", errbuf);
            pd_tree_close(&tree);
            return -1;
        }
    }
    pd_store_t *st = pd_store_open(dir, &so, NULL, NULL, errbuf, sizeof(errbuf), &err);
    if (st == NULL) {
        fprintf(stderr, "bench_tlog: store: %s\n", errbuf);
        pd_tree_close(&tree);
        return -1;
    }
    uint64_t t0 = bench_now_ns();
    int rc = 0;
    for (size_t done = 0; done < total && rc == 0;) {
        for (size_t i = 0; i < batch && rc == 0; i++, done++) {
            const uint8_t *env = bench_env(e, done % e->n);
            size_t len = e->lens[done % e->n];
            uint64_t seq = pd_store_next_seq(st);
            rc = pd_store_append(st, seq, 0, env, len);
            if (rc == 0 && tree != NULL)
                rc = pd_tree_append(tree, seq, env, len);
        }
        if (rc == 0)
            rc = pd_store_sync(st);
        if (rc == 0 && tree != NULL)
            rc = pd_tree_sync(tree);
    }
    double secs = bench_secs(t0, bench_now_ns());
    if (rc != 0)
        fprintf(stderr, "bench_tlog: append: %s\n", strerror(-rc));
    pd_store_close(&st);
    pd_tree_close(&tree);
    return rc == 0 ? (double)total / secs : -1;
}


/* The daemon's answer to the verifier's request (made untimed). */
typedef struct {
    uint8_t pbuf[PARLEY__INCLUSION_MAX][PARLEY__TLOG_PROOF_ENCODED_MAX];
    parley__bytes_t items[PARLEY__INCLUSION_MAX];
    uint8_t range[64][32];
    parley__bytes_t ritems[64];
} s_answer_t;

static int
s_answer(parley__tlog_mem_t *tree, const parley__request_t *q, s_answer_t *a,
         parley__reply_t *r)
{
    memset(r, 0, sizeof(*r));
    r->type = PARLEY__REPLY_PROOF;
    size_t n = q->op == PARLEY__OP_INCLUSION ? q->n_seqs : 1;
    for (size_t i = 0; i < n; i++) {
        parley__tlog_proof_t p;
        size_t len;
        int rc = q->op == PARLEY__OP_INCLUSION
                     ? parley__tlog_prove(parley__tlog_mem_read, tree,
                                          PARLEY__TLOG_INCLUSION, q->seqs[i] - 1,
                                          q->tree_size, &p)
                     : parley__tlog_prove(parley__tlog_mem_read, tree,
                                          PARLEY__TLOG_CONSISTENCY, q->old_size,
                                          q->new_size, &p);
        if (rc != 0 || parley__tlog_proof_encode(&p, a->pbuf[i], sizeof(a->pbuf[i]),
                                                 &len) != 0)
            return -1;
        a->items[i] = (parley__bytes_t){ a->pbuf[i], len };
    }
    r->proofs = a->items;
    r->n_proofs = n;
    if (q->op == PARLEY__OP_CONSISTENCY && q->with_range) {
        parley__tlog_range_t range;
        if (parley__tlog_range_load(&range, q->old_size, parley__tlog_mem_read, tree) != 0)
            return -1;
        for (unsigned i = 0; i < range.count; i++) {
            memcpy(a->range[i], range.subtree[i].b, 32);
            a->ritems[i] = (parley__bytes_t){ a->range[i], 32 };
        }
        r->range = a->ritems;
        r->n_range = range.count;
    }
    return 0;
}

/*
 * Section 5: the library's per-update cost with and without the log's
 * verification, for a subscriber seeing one update in one_in (all: every
 * update, folded into its own tree). Prints the ratio.
 */
static int
s_library_cost(const bench_key_t *key, const bench_envs_t *e, size_t base, bool all,
               size_t one_in, size_t updates, size_t cp_every)
{
    parley__tlog_mem_t tree;
    parley__tlog_mem_init(&tree);
    for (size_t i = 0; i < base; i++) {
        uint32_t v = (uint32_t)i;
        if (parley__tlog_mem_append(&tree, &v, sizeof(v)) != 0)
            return -1;
    }
    uint8_t seed[32];
    memset(seed, 0x4c, sizeof(seed));
    parley_key_t *log_key = parley_key_from_seed(seed);
    parley__logpolicy_t pol = { .max_staleness_ms = 0 };
    strcpy(pol.origin, "parley.example.org/gaza");
    parley_key_public(log_key, pol.pk);
    parley__logcheck_t *lc = NULL;
    if (parley__logcheck_new(&pol, all, NULL, parley_now_ms(), &lc, NULL) != 0)
        return -1;
    static s_answer_t answer;
    static uint8_t dbuf[PARLEY_ENVELOPE_MAX + 64];
    parley_delivery_t *d = parley_delivery_new();
    uint64_t ref_ns = 0, log_ns = 0, seen = 0, inconsistent = 0;
    int rc = 0;
    for (size_t done = 0; done < updates && rc == 0; done += cp_every) {
        for (size_t k = 0; k < cp_every; k++) {
            size_t i = (done + k) % e->n;
            uint64_t seq = tree.range.size + 1;
            if (parley__tlog_mem_append(&tree, bench_env(e, i), e->lens[i]) != 0)
                return -1;
            if (!all && (done + k) % one_in != 0)
                continue; /* another party's update: not delivered here */
            size_t dlen;
            if (parley__delivery_encode(seq, 1, bench_env(e, i), e->lens[i], dbuf,
                                        sizeof(dbuf), &dlen) != 0)
                return -1;
            uint64_t t0 = bench_now_ns();
            rc = parley_delivery_decode(NULL, dbuf, dlen, d);
            uint64_t t1 = bench_now_ns();
            rc |= parley__logcheck_update(lc, seq, bench_env(e, i), e->lens[i]);
            uint64_t t2 = bench_now_ns();
            ref_ns += t1 - t0;
            log_ns += t2 - t1;
            seen++;
        }
        /* The heartbeat's checkpoint, signed and stamped (daemon side). */
        parley__tlog_hash_t root;
        parley__tlog_range_root(&tree.range, &root);
        char *note = NULL, line[PARLEY__COSIG_LINE_MAX];
        size_t nlen, llen;
        if (parley__checkpoint_sign(pol.origin, tree.range.size, &root, log_key, &note,
                                    &nlen) != 0)
            return -1;
        size_t text_len = (size_t)(strstr(note, "\n\n") - note) + 1;
        if (parley__cosig_make(log_key, pol.origin, note, text_len,
                               (uint64_t)(parley_now_ms() / 1000), line, sizeof(line),
                               &llen) != 0)
            return -1;
        char *full = malloc(nlen + llen + 1);
        memcpy(full, note, nlen);
        memcpy(full + nlen, line, llen + 1);
        uint64_t t0 = bench_now_ns();
        parley__logcheck_checkpoint(lc, full, nlen + llen, parley_now_ms());
        log_ns += bench_now_ns() - t0;
        free(note);
        free(full);
        parley__request_t q;
        for (;;) {
            t0 = bench_now_ns();
            int want = parley__logcheck_want(lc, &q, parley_now_ms());
            log_ns += bench_now_ns() - t0;
            if (want != 1)
                break;
            parley__reply_t r;
            if (s_answer(&tree, &q, &answer, &r) != 0)
                return -1;
            t0 = bench_now_ns();
            parley__logcheck_reply(lc, &r, 0, parley_now_ms());
            log_ns += bench_now_ns() - t0;
        }
        parley__logcheck_event_t ev;
        while (parley__logcheck_next(lc, &ev)) {
            inconsistent += ev.type == PARLEY_EVENT_LOG_INCONSISTENT;
            parley__logcheck_event_clear(&ev);
        }
    }
    if (rc != 0 || inconsistent != 0 || parley__logcheck_pending(lc) != 0) {
        fprintf(stderr, "bench_tlog: the verifier did not verify (rc %d, %llu alarms, "
                        "%zu pending)\n",
                rc, (unsigned long long)inconsistent, parley__logcheck_pending(lc));
        return -1;
    }
    char name[96], refname[96];
    snprintf(name, sizeof(name), "%s, %zu/checkpoint: + %s", all ? "all/" : "1 in 5",
             cp_every, all ? "own root" : "batched proofs");
    snprintf(refname, sizeof(refname), "%s, %zu/checkpoint: decode alone",
             all ? "all/" : "1 in 5", cp_every);
    double ref = (double)ref_ns / (double)seen / 1000;
    double with = (double)(ref_ns + log_ns) / (double)seen / 1000;
    bench_figure(refname, ref, "us");
    bench_ratio(name, with, "us", "decode alone", ref, 1.10, true);
    bench_note("%llu updates checked; checkpoints (two signatures each) every %zu "
               "updates of the log",
               (unsigned long long)seen, cp_every);
    parley_delivery_destroy(&d);
    parley__logcheck_destroy(&lc);
    parley_key_destroy(&log_key);
    parley__tlog_mem_clear(&tree);
    (void)key;
    return 0;
}

int
main(int argc, char **argv)
{
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_tlog",
                     "Merkle tree cost per update: hash store appends and proof checks");
    if (sodium_init() < 0)
        return 1;
    const uint64_t min_ns = o.quick ? 200000000ull : 1000000000ull;
    const size_t leaves = o.quick ? (1u << 16) : (1u << 20);

    bench_key_t key;
    bench_envs_t e;
    if (bench_keys_make(&key, 1) != 0 || bench_envs_sign(&e, key.key, 1024, 1, 2) != 0)
        return 1;
    parley__envelope_t env;
    uint8_t arena_buf[16384];
    parley__arena_t arena;
    parley__arena_init(&arena, arena_buf, sizeof(arena_buf));
    if (parley__envelope_decode(bench_env(&e, 0), e.lens[0], &env, &arena) != 0)
        return 1;
    /* What parley signs: "parley/update/v1" 0x00 body. */
    size_t msg_len = sizeof(PARLEY_SIGN_CONTEXT) + env.body.len;
    uint8_t *msg = malloc(msg_len);
    if (msg == NULL)
        return 1;
    memcpy(msg, PARLEY_SIGN_CONTEXT, sizeof(PARLEY_SIGN_CONTEXT));
    memcpy(msg + sizeof(PARLEY_SIGN_CONTEXT), env.body.data, env.body.len);
    if (crypto_sign_verify_detached(env.signature, msg, msg_len, env.signer) != 0) {
        fprintf(stderr, "bench_tlog: the envelope does not verify\n");
        return 1;
    }

    bench_section("per-update floor (reference)");
    volatile int sink = 0;
    double verify_ns;
    S_TIME(verify_ns, min_ns,
           sink += crypto_sign_verify_detached(env.signature, msg, msg_len, env.signer));
    bench_figure("crypto_sign_verify_detached", verify_ns / 1000, "us");
    bench_note("envelope %u bytes", (unsigned)e.lens[0]);

    bench_section("tree work per record, in memory");
    char dir[BENCH_PATH_MAX];
    if (bench_tmpdir_make(dir, sizeof(dir), "tlog") != 0)
        return 1;
    char errbuf[512];
    int err;
    pd_tree_opts_t nosync = {.sync = false};
    pd_tree_t *mem = pd_tree_open(dir, &nosync, errbuf, sizeof(errbuf), &err);
    if (mem == NULL || pd_tree_recover(mem, 0, errbuf, sizeof(errbuf)) != 0)
        return 1;
    uint64_t seq = 0;
    double append_ns;
    S_TIME(append_ns, min_ns, {
        seq++;
        if (pd_tree_append(mem, seq, bench_env(&e, seq % e.n), e.lens[seq % e.n]) != 0)
            return 1;
        if ((seq & 4095) == 0 && pd_tree_sync(mem) != 0)
            return 1;
    });
    pd_tree_close(&mem);
    char path[BENCH_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, PD_TREE_FILE);
    unlink(path);
    bench_ratio("leaf hash + append (pd_tree_append)", append_ns / 1000, "us",
                "verify", verify_ns / 1000, 0, true);

    bench_section("durable appends, fdatasync per group commit");
    bench_note("temp dir %s", dir);
    const size_t batches[] = {1, 16, 256};
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        size_t batch = batches[b];
        size_t total = o.quick ? batch * (batch == 1 ? 100 : 20) : batch * (batch == 1 ? 500 : 100);
        char sub[BENCH_PATH_MAX + 32];
        double rate[3];
        for (int m = 0; m < 3; m++) {
            snprintf(sub, sizeof(sub), "%s/run-%zu-%d", dir, batch, m);
            rate[m] = s_durable_rate(sub, &e, total, batch, (s_mode_t)m);
            bench_tmpdir_remove(sub);
            if (rate[m] <= 0)
                return 1;
        }
        char name[64], ref[64];
        snprintf(ref, sizeof(ref), "log alone (%.0f/s)", rate[S_LOG_ALONE]);
        snprintf(name, sizeof(name), "log + tree synced, %zu per commit", batch);
        bench_ratio(name, rate[S_TREE_SYNCED], "rec/s", ref, rate[S_LOG_ALONE], 0.95,
                    false);
        snprintf(name, sizeof(name), "log + tree unsynced, %zu per commit", batch);
        bench_ratio(name, rate[S_TREE_DEFERRED], "rec/s", ref, rate[S_LOG_ALONE], 0.95,
                    false);
        bench_note("extra per record, tree synced: %.1f us (%.2f x verify)",
                   1e6 / rate[S_TREE_SYNCED] - 1e6 / rate[S_LOG_ALONE],
                   (1e9 / rate[S_TREE_SYNCED] - 1e9 / rate[S_LOG_ALONE]) / verify_ns);
        /* What that means once each record also costs one verify, as on
         * ingest (a model from the figures above, not an ingest run). */
        const double base = verify_ns + 1e9 / rate[S_LOG_ALONE];
        bench_note("with one verify per record: tree synced %.3f x, unsynced %.3f x "
                   "the rate without the tree",
                   base / (verify_ns + 1e9 / rate[S_TREE_SYNCED]),
                   base / (verify_ns + 1e9 / rate[S_TREE_DEFERRED]));
    }

    bench_section("subscriber's check per update");
    parley__tlog_mem_t tree;
    parley__tlog_mem_init(&tree);
    for (size_t i = 0; i < leaves; i++) {
        uint32_t v = (uint32_t)i;
        if (parley__tlog_mem_append(&tree, &v, sizeof(v)) != 0)
            return 1;
    }
    parley__tlog_hash_t root, old_root, leaf;
    parley__tlog_range_root(&tree.range, &root);
    bench_note("tree of %zu leaves", leaves);
    /* Inclusion proofs for leaves spread over the tree. */
    enum { NPROOFS = 64 };
    static parley__tlog_proof_t proofs[NPROOFS];
    static parley__tlog_hash_t leaf_of[NPROOFS];
    for (int i = 0; i < NPROOFS; i++) {
        uint32_t v = (uint32_t)((uint64_t)i * leaves / NPROOFS + 7);
        parley__tlog_leaf_hash(&v, sizeof(v), &leaf_of[i]);
        if (parley__tlog_prove(parley__tlog_mem_read, &tree, PARLEY__TLOG_INCLUSION, v,
                               leaves, &proofs[i]) != 0)
            return 1;
    }
    int pi = 0;
    double incl_ns;
    S_TIME(incl_ns, min_ns, {
        sink += parley__tlog_proof_check_inclusion(&proofs[pi], &leaf_of[pi], &root, NULL);
        pi = (pi + 1) % NPROOFS;
    });
    if (sink != 0) {
        fprintf(stderr, "bench_tlog: a check failed\n");
        return 1;
    }
    bench_figure("inclusion proof check", incl_ns / 1000, "us");
    bench_note("%zu hashes per proof", proofs[0].count);
    bench_ratio("verify + inclusion proof", (verify_ns + incl_ns) / 1000, "us",
                "verify alone", verify_ns / 1000, 1.10, true);
    parley__tlog_range_t r = tree.range;
    double range_ns;
    S_TIME(range_ns, min_ns, {
        parley__tlog_hash_t stored[64];
        size_t ns;
        size_t k = (size_t)(r.size % e.n);
        parley__tlog_leaf_hash(bench_env(&e, k), e.lens[k], &leaf);
        if (parley__tlog_range_append(&r, &leaf, stored, &ns) != 0)
            return 1;
    });
    bench_ratio("verify + leaf into own range (all/)", (verify_ns + range_ns) / 1000, "us",
                "verify alone", verify_ns / 1000, 1.10, true);

    /* Once per checkpoint: consistency from the last one, and its signature. */
    parley__tlog_proof_t cons;
    uint64_t old = leaves - leaves / 3;
    if (parley__tlog_root(parley__tlog_mem_read, &tree, old, &old_root) != 0 ||
        parley__tlog_prove(parley__tlog_mem_read, &tree, PARLEY__TLOG_CONSISTENCY, old,
                           leaves, &cons) != 0)
        return 1;
    double cons_ns;
    S_TIME(cons_ns, min_ns,
           sink += parley__tlog_proof_check_consistency(&cons, &old_root, &root, NULL));
    bench_figure("consistency proof check (per checkpoint)", cons_ns / 1000, "us");
    char *note = NULL;
    size_t note_len;
    if (parley__checkpoint_sign("parley.example.org/gaza", leaves, &root, key.key, &note,
                                &note_len) != 0)
        return 1;
    parley__checkpoint_t cp;
    double open_ns;
    S_TIME(open_ns, min_ns / 2,
           sink += parley__checkpoint_open(note, note_len, "parley.example.org/gaza", key.pk,
                                           &cp, NULL, NULL));
    bench_figure("checkpoint parse + signature (per checkpoint)", open_ns / 1000, "us");
    if (sink != 0) {
        fprintf(stderr, "bench_tlog: a check failed\n");
        return 1;
    }
    bench_note("per checkpoint, amortised over the updates it covers");

    bench_section("subscriber's check per update, as the library runs it");
    bench_note("after %zu leaves; timed: the subscriber's side only", leaves);
    size_t stream = o.quick ? 20000 : 100000;
    bench_note("a checkpoint comes with each heartbeat (1 s): 200 or 1000 updates "
               "of the log between two is 200 or 1000 updates/s");
    if (s_library_cost(&key, &e, leaves, false, 5, stream, 200) != 0
        || s_library_cost(&key, &e, leaves, false, 5, stream, 1000) != 0
        || s_library_cost(&key, &e, leaves, true, 1, stream / 5, 200) != 0)
        return 1;
    free(note);
    free(msg);
    parley__tlog_mem_clear(&tree);
    bench_envs_free(&e);
    bench_keys_free(&key, 1);
    bench_tmpdir_remove(dir);
    return 0;
}
