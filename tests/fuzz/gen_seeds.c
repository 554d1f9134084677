/*
 * gen_seeds.c - write the seed corpora of the fuzz targets.
 *
 * Usage: fuzz_gen_seeds CORPUS_DIR
 * Deterministic (fixed-seed key, fixed times), so re-running it rewrites
 * the same files. Not run by the tests: the seeds are committed.
 */
#include "../tmpdir.h"
#include "codec.h"
#include "logcheck.h"
#include "note.h"
#include "store.h"
#include "tlog.h"
#include "tlog_keys.h"
#include "witness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *s_dir;

static void
s_write(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", s_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", s_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void
s_text(const char *target, const char *name, const char *text)
{
    s_write(target, name, text, strlen(text));
}

static void
s_update(parley_update_t *u, uint64_t signer_seq)
{
    memset(u, 0, sizeof(*u));
    strcpy(u->negotiation, "gaza-ceasefire");
    u->n_parties = 2;
    strcpy(u->parties[0], "hamas");
    strcpy(u->parties[1], "israel");
    u->phase = 1;
    u->status = PARLEY_STATUS_AGREED_IN_PRINCIPLE;
    strcpy(u->headline, "Phase 1 \"agreed\" in principle \xe2\x80\x94 Cairo");
    strcpy(u->body, "Hostages for prisoners; details to follow.");
    strcpy(u->location, "Cairo");
    u->issued_at = 1717000000000;
    u->signer_seq = signer_seq;
}

int
main(int argc, char **argv)
{
    static uint8_t env[PARLEY_ENVELOPE_MAX], env2[PARLEY_ENVELOPE_MAX];
    static uint8_t buf[65536];
    size_t env_len, env2_len, len;
    uint8_t seed[32];
    parley_update_t u;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    s_dir = argv[1];
    memset(seed, 1, sizeof(seed));
    parley_key_t *key = parley_key_from_seed(seed);
    if (key == NULL)
        return 1;

    s_update(&u, 1);
    if (parley_sign(key, &u, env, sizeof(env), &env_len) != 0)
        return 1;
    s_update(&u, 2);
    u.kind = PARLEY_KIND_CORRECTION;
    u.n_references = 1;
    u.references[0] = 1;
    u.phase = 2;
    u.expires_at = 1717000000000 + 86400000;
    u.scheduled_at = 1717000000000 + 3600000;
    if (parley_sign(key, &u, env2, sizeof(env2), &env2_len) != 0)
        return 1;
    s_write("envelope", "update", env, env_len);
    s_write("facts", "update", env, env_len);
    s_update(&u, 1);
    parley__update_encode(&u, buf, sizeof(buf), &len);
    s_write("update", "update", buf, len);
    s_write("envelope", "correction", env2, env2_len);
    s_write("facts", "correction", env2, env2_len);
    s_update(&u, 2);
    u.kind = PARLEY_KIND_CORRECTION;
    u.n_references = 1;
    u.references[0] = 1;
    u.phase = 2;
    u.expires_at = 1717000000000 + 86400000;
    u.scheduled_at = 1717000000000 + 3600000;
    parley__update_encode(&u, buf, sizeof(buf), &len);
    s_write("update", "correction", buf, len);

    parley__delivery_encode(7, 1717000000123, env, env_len, buf, sizeof(buf),
                            &len);
    s_write("delivery", "update", buf, len);
    parley__delivery_encode(8, 1717000000456, env2, env2_len, buf, sizeof(buf),
                            &len);
    s_write("delivery", "correction", buf, len);

    static parley__request_t req;
    const char *negs[] = { "gaza-ceasefire" };
    const char *parties[] = { "hamas", "egypt" };
    const uint32_t phases[] = { 1, 2 };
    parley_filter_t f = { negs, 1, parties, 2, phases, 2 };
    parley__filterbuf_set(&req.filter, &f);
    req.request_id = 42;
    req.op = PARLEY__OP_PUBLISH;
    req.update.data = env;
    req.update.len = env_len;
    parley__request_encode(&req, buf, sizeof(buf), &len);
    s_write("request", "publish", buf, len);
    req.op = PARLEY__OP_REPLAY;
    req.from_seq = 3;
    req.to_seq = 90;
    req.limit = 100;
    parley__request_encode(&req, buf, sizeof(buf), &len);
    s_write("request", "replay", buf, len);
    req.op = PARLEY__OP_SNAPSHOT;
    parley__request_encode(&req, buf, sizeof(buf), &len);
    s_write("request", "snapshot", buf, len);
    req.entries = true;
    parley__request_encode(&req, buf, sizeof(buf), &len);
    s_write("request", "snapshot-entries", buf, len);
    req.entries = false;
    req.op = PARLEY__OP_STATS;
    parley__request_encode(&req, buf, sizeof(buf), &len);
    s_write("request", "stats", buf, len);
    req.op = PARLEY__OP_PING;
    parley__request_encode(&req, buf, sizeof(buf), &len);
    s_write("request", "ping", buf, len);

    static uint8_t d1[1024], d2[1024];
    size_t d1_len, d2_len;
    parley__delivery_encode(7, 1717000000123, env, env_len, d1, sizeof(d1),
                            &d1_len);
    parley__delivery_encode(8, 1717000000456, env2, env2_len, d2, sizeof(d2),
                            &d2_len);
    parley__bytes_t items[2] = { { d1, d1_len }, { d2, d2_len } };
    parley__stat_t stats[2] = { { "accepted", 12 }, { "rejected_replay", 1 } };
    parley__reply_t r = { .request_id = 42, .type = PARLEY__REPLY_ACK, .seq = 9 };
    parley__reply_encode(&r, buf, sizeof(buf), &len);
    s_write("reply", "ack", buf, len);
    r = (parley__reply_t){ .request_id = 42, .type = PARLEY__REPLY_REJECT,
                           .code = PARLEY_ETRUNCATED, .message = "gone",
                           .first_seq = 5 };
    parley__reply_encode(&r, buf, sizeof(buf), &len);
    s_write("reply", "reject", buf, len);
    r = (parley__reply_t){ .request_id = 42, .type = PARLEY__REPLY_REPLAY,
                           .deliveries = items, .n_deliveries = 2,
                           .next_seq = 9, .head_seq = 9, .done = true };
    parley__reply_encode(&r, buf, sizeof(buf), &len);
    s_write("reply", "replay", buf, len);
    r = (parley__reply_t){ .request_id = 42, .type = PARLEY__REPLY_SNAPSHOT,
                           .deliveries = items, .n_deliveries = 2, .seq = 9 };
    parley__reply_encode(&r, buf, sizeof(buf), &len);
    s_write("reply", "snapshot", buf, len);
    /* The same with entries: 7 (phase 1) holds hamas, 8 (phase 2) both. */
    parley__entry_t ents[3] = {
        { "gaza-ceasefire", "hamas", 1, 7 },
        { "gaza-ceasefire", "hamas", 2, 8 },
        { "gaza-ceasefire", "israel", 2, 8 },
    };
    r.entries = ents;
    r.n_entries = 3;
    parley__reply_encode(&r, buf, sizeof(buf), &len);
    s_write("reply", "snapshot-entries", buf, len);
    r = (parley__reply_t){ .request_id = 42, .type = PARLEY__REPLY_STATS,
                           .stats = stats, .n_stats = 2 };
    parley__reply_encode(&r, buf, sizeof(buf), &len);
    s_write("reply", "stats", buf, len);
    r = (parley__reply_t){ .request_id = 42, .type = PARLEY__REPLY_PING,
                           .feed = "tcp://127.0.0.1:7711", .seq = 9,
                           .first_seq = 1, .version = PARLEY_VERSION };
    parley__reply_encode(&r, buf, sizeof(buf), &len);
    s_write("reply", "ping", buf, len);

    uint8_t pk[32];
    char b64[45], text[1024];
    parley_key_public(key, pk);
    parley_pubkey_format(pk, b64);
    snprintf(text, sizeof(text),
             "# mediators\n"
             "mediator %s negotiations=gaza-ceasefire parties=* phases=0-3\n"
             "\n"
             "newsroom AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
             "negotiations=* parties=us,egypt,qatar phases=0,2\r\n",
             b64);
    s_text("keyring", "good", text);

    s_text("json", "update",
           "{\"negotiation\":\"gaza-ceasefire\",\"parties\":[\"us\",\"egypt\"],"
           "\"phase\":0,\"status\":\"talks_scheduled\",\"kind\":\"update\","
           "\"headline\":\"Talks in Cairo on Tuesday\",\"body\":\"\\u00e9\","
           "\"location\":\"Cairo\",\"scheduled_at\":1717430400000}");
    s_text("json", "correction",
           "{\"kind\":\"correction\",\"references\":[3,4],\"signer_seq\":9,"
           "\"issued_at\":1,\"expires_at\":2}");

    s_text("config", "example",
           "# parleyd.conf\n"
           "api tcp://127.0.0.1:7710\n"
           "feed tcp://*:7711   # all interfaces\n"
           "state_dir /var/lib/parley\n"
           "keyring /etc/parley/keyring\n"
           "max_message_bytes 65536\n"
           "max_clock_skew 300\n"
           "fsync on\n"
           "retention_bytes 1G\n"
           "retention_age 2592000\n"
           "segment_bytes 64M\n"
           "heartbeat_interval 1000\n"
           "log_level info\n");

    char tmp[256];
    if (test_tmpdir_make(tmp, sizeof(tmp), "parley-seeds.") != 0)
        return 1;
    char kpath[300];
    snprintf(kpath, sizeof(kpath), "%s/k", tmp);
    if (parley_key_save(key, kpath, "seed key", 0) != 0)
        return 1;
    FILE *kf = fopen(kpath, "rb");
    len = fread(buf, 1, sizeof(buf), kf);
    fclose(kf);
    s_write("keyfile", "secret", buf, len);
    snprintf(text, sizeof(text), "%s seed key\n", b64);
    s_text("keyfile", "public", text);
    unlink(kpath);
    strcat(kpath, ".pub");
    unlink(kpath);

    /* A segment of three records, then the same cut in its last record. */
    pd_store_opts_t opts = { .sync = false };
    char err[256];
    int rc;
    pd_store_t *st = pd_store_open(tmp, &opts, NULL, NULL, err, sizeof(err), &rc);
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    pd_store_append(st, 1, 1717000000001, env, env_len);
    pd_store_append(st, 2, 1717000000002, env2, env2_len);
    pd_store_append(st, 3, 1717000000003, env, env_len);
    pd_store_sync(st);
    pd_store_close(&st);
    char seg[512];
    snprintf(seg, sizeof(seg), "%s/seg-%020llu.log", tmp, 1ULL);
    FILE *sf = fopen(seg, "rb");
    len = fread(buf, 1, sizeof(buf), sf);
    fclose(sf);
    s_write("store", "three", buf, len);
    s_write("store", "torn", buf, len - 7);
    unlink(seg);
    snprintf(seg, sizeof(seg), "%s/store.lock", tmp);
    unlink(seg);
    rmdir(tmp);

    /* Transparency log: the keys and names of tests/vectors/tlog. */
    uint8_t s3[32], s4[32];
    memset(s3, PARLEY_FUZZ_LOG_SEED, sizeof(s3));
    memset(s4, PARLEY_FUZZ_WITNESS_SEED, sizeof(s4));
    parley_key_t *log_key = parley_key_from_seed(s3);
    parley_key_t *wit_key = parley_key_from_seed(s4);
    if (log_key == NULL || wit_key == NULL)
        return 1;
    parley__tlog_mem_t tree;
    parley__tlog_mem_init(&tree);
    for (int i = 0; i < 64; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof(rec), "record %d", i);
        if (parley__tlog_mem_append(&tree, rec, (size_t)n) != 0)
            return 1;
    }
    static const struct {
        const char *name;
        uint64_t size;
        const char *ext;
    } cps[] = { { "checkpoint", 64, NULL }, { "checkpoint-ext", 13, "extension\n" },
                { "checkpoint-empty", 0, NULL } };
    for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
        parley__tlog_hash_t root;
        char cp_text[512], line[PARLEY__COSIG_LINE_MAX];
        size_t cp_len, line_len, note_len, both_len;
        char *note = NULL, *both = NULL;
        parley__note_t *n = NULL;
        if (parley__tlog_root(parley__tlog_mem_read, &tree, cps[i].size, &root) != 0 ||
            parley__checkpoint_text(PARLEY_FUZZ_ORIGIN, cps[i].size, &root, cps[i].ext,
                                    cp_text, sizeof(cp_text), &cp_len) != 0 ||
            parley__note_sign(cp_text, cp_len, PARLEY_FUZZ_ORIGIN, log_key, &note,
                              &note_len) != 0 ||
            parley__cosig_make(wit_key, PARLEY_FUZZ_WITNESS, cp_text, cp_len, 1700000000,
                               line, sizeof(line), &line_len) != 0 ||
            parley__note_parse(note, note_len, &n, NULL) != 0 ||
            parley__note_add_line(n, line, line_len, &both, &both_len) != 0)
            return 1;
        s_write("note", cps[i].name, both, both_len);
        if (i == 0) {
            s_write("note", "log-only", note, note_len);
            s_write("cosig", "cosignature", line, line_len);
            s_write("cosig", "note-signature", note + cp_len + 1, note_len - cp_len - 1);
        }
        parley__note_destroy(&n);
        free(note);
        free(both);
    }
    s_text("note", "spec-example",
           "If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n"
           "\n"
           "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1F"
           "FYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n");
    /* Witness requests: the first (old 0), an extension with its proof,
     * and evidence texts of each kind around the same checkpoints. */
    {
        char *notes[3] = { NULL, NULL, NULL };
        size_t lens[3];
        const uint64_t sizes[3] = { 13, 64, 13 };
        for (int i = 0; i < 3; i++) {
            parley__tlog_hash_t root;
            if (parley__tlog_root(parley__tlog_mem_read, &tree, sizes[i], &root) != 0)
                return 1;
            if (i == 2)
                root.b[0] ^= 1; /* another history of the same size */
            if (parley__checkpoint_sign(PARLEY_FUZZ_ORIGIN, sizes[i], &root, log_key,
                                        &notes[i], &lens[i]) != 0)
                return 1;
        }
        parley__tlog_proof_t p;
        char *body;
        size_t blen;
        if (parley__witness_req_build(0, NULL, 0, notes[0], lens[0], &body, &blen) != 0)
            return 1;
        s_write("witness", "first", body, blen);
        free(body);
        if (parley__tlog_prove(parley__tlog_mem_read, &tree, PARLEY__TLOG_CONSISTENCY, 13,
                               64, &p) != 0 ||
            parley__witness_req_build(13, p.path, p.count, notes[1], lens[1], &body,
                                      &blen) != 0)
            return 1;
        s_write("witness", "extension", body, blen);
        free(body);
        s_text("witness", "spec-shape",
               "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\n"
               "example.com/behind-the-sofa\n20852163\n"
               "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
               "\xe2\x80\x94 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/"
               "5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n");
        parley_checkpoint_t cp[3];
        for (int i = 0; i < 3; i++) {
            memset(&cp[i], 0, sizeof(cp[i]));
            cp[i].note = notes[i];
            cp[i].len = lens[i];
        }
        static const struct {
            const char *name, *kind;
            int a, b;
        } ev[] = { { "evidence-fork", "fork", 0, 2 },
                   { "evidence-consistency", "consistency", 0, 1 },
                   { "evidence-inclusion", "inclusion", 1, -1 },
                   { "evidence-stale", "stale", 0, -1 } };
        for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
            uint8_t proof[PARLEY__TLOG_PROOF_ENCODED_MAX];
            size_t plen = 0;
            if (parley__tlog_proof_encode(&p, proof, sizeof(proof), &plen) != 0)
                return 1;
            parley__evidence_t e = { .kind = ev[i].kind, .reason = "seed",
                                     .a = &cp[ev[i].a],
                                     .b = ev[i].b >= 0 ? &cp[ev[i].b] : NULL,
                                     .proof = proof, .proof_len = plen,
                                     .seq = 5, .update = "record 4", .update_len = 8 };
            char *etext = parley__evidence_format(&e);
            if (etext == NULL)
                return 1;
            s_text("evidence", ev[i].name, etext);
            free(etext);
        }
        for (int i = 0; i < 3; i++)
            free(notes[i]);
    }

    /* Proofs from the 64-leaf tree, and from a tree of 2^62 leaves. */
    static const struct {
        const char *name;
        uint8_t kind;
        uint64_t m, n;
    } proofs[] = {
        { "inclusion-0-1", PARLEY__TLOG_INCLUSION, 0, 1 },
        { "inclusion-5-13", PARLEY__TLOG_INCLUSION, 5, 13 },
        { "inclusion-63-64", PARLEY__TLOG_INCLUSION, 63, 64 },
        { "consistency-3-7", PARLEY__TLOG_CONSISTENCY, 3, 7 },
        { "consistency-4-13", PARLEY__TLOG_CONSISTENCY, 4, 13 },
        { "consistency-13-64", PARLEY__TLOG_CONSISTENCY, 13, 64 },
        { "consistency-9-9", PARLEY__TLOG_CONSISTENCY, 9, 9 },
    };
    for (size_t i = 0; i < sizeof(proofs) / sizeof(proofs[0]); i++) {
        parley__tlog_proof_t p;
        if (parley__tlog_prove(parley__tlog_mem_read, &tree, proofs[i].kind, proofs[i].m,
                               proofs[i].n, &p) != 0 ||
            parley__tlog_proof_encode(&p, buf, sizeof(buf), &len) != 0)
            return 1;
        s_write("proof", proofs[i].name, buf, len);
    }
    parley__tlog_mem_clear(&tree);
    parley_key_destroy(&log_key);
    parley_key_destroy(&wit_key);

    parley_key_destroy(&key);
    return 0;
}
