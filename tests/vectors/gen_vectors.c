/*
 * gen_vectors.c - write the golden signature vectors of tests/vectors/.
 *
 * Deliberately independent of libparley: the StatusUpdate, SignedUpdate
 * and Delivery bytes are encoded here by hand, straight from
 * proto/parley.proto (fields in number order, proto3 defaults omitted,
 * repeated scalars packed), and signed with libsodium directly over
 * "parley/update/v1" || 0x00 || body. test_sign.c then recomputes each
 * vector through the library and compares byte for byte, so a vector
 * pins the wire format and the signing rule, not just "what the code did
 * last time".
 *
 * The vectors are committed; this program is only needed to make new
 * ones. Build and run from the source tree:
 *
 *   cc -std=c11 -Wall -Wextra -o /tmp/gen_vectors tests/vectors/gen_vectors.c \
 *      $(pkg-config --cflags --libs libsodium)
 *   /tmp/gen_vectors tests/vectors
 *
 * Ed25519 signatures are deterministic, so running it again rewrites the
 * same files.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CONTEXT "parley/update/v1" /* followed by one 0x00 byte */

/* A growable byte buffer; aborts on allocation failure (a tool, not lib). */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} s_buf_t;

static void
s_put(s_buf_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL) {
            perror("realloc");
            exit(1);
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void
s_varint(s_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            tmp[n] |= 0x80;
        n++;
    } while (v != 0);
    s_put(b, tmp, n);
}

/* Wire types of the protobuf encoding. */
enum {
    S_VARINT = 0,
    S_LEN = 2
};

static void
s_tag(s_buf_t *b, unsigned field, unsigned wire)
{
    s_varint(b, ((uint64_t)field << 3) | wire);
}

/* A proto3 scalar: omitted when zero. int64 is sent as its 2's complement. */
static void
s_field_varint(s_buf_t *b, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    s_tag(b, field, S_VARINT);
    s_varint(b, v);
}

/* A proto3 string/bytes field: omitted when empty. */
static void
s_field_bytes(s_buf_t *b, unsigned field, const void *data, size_t n)
{
    if (n == 0)
        return;
    s_tag(b, field, S_LEN);
    s_varint(b, n);
    s_put(b, data, n);
}

static void
s_field_str(s_buf_t *b, unsigned field, const char *s)
{
    s_field_bytes(b, field, s, strlen(s));
}

/* The fields of one vector's update (mirrors test_sign.c). */
typedef struct {
    const char *name;
    uint8_t seed_byte;
    const char *negotiation;
    const char *parties[5];
    size_t n_parties;
    uint32_t phase;
    unsigned status, kind;
    uint64_t references[4];
    size_t n_references;
    const char *headline, *body, *location;
    int64_t scheduled_at, issued_at;
    uint64_t signer_seq;
    int64_t expires_at;
    uint64_t delivery_seq;
    int64_t received_at;
} s_vector_t;

static const s_vector_t s_vectors[] = {
    {
        .name = "update-1",
        .seed_byte = 0x01,
        .negotiation = "gaza-ceasefire",
        .parties = { "israel", "hamas", "us", "egypt", "qatar" },
        .n_parties = 5,
        .phase = 1,
        .status = 2, /* talks_scheduled */
        .kind = 0,   /* update */
        .headline = "Talks scheduled in Cairo on Tuesday",
        .body = "Mediators from Egypt and Qatar, with US support, invite "
                "both delegations to Cairo.\nAgenda: \"phase 1\" terms.",
        .location = "Cairo",
        .scheduled_at = 1717430400000,
        .issued_at = 1717000000000,
        .signer_seq = 1717000000000000,
        .expires_at = 1717516800000,
        .delivery_seq = 42,
        .received_at = 1717000000123,
    },
    {
        .name = "correction-2",
        .seed_byte = 0x02,
        .negotiation = "gaza-ceasefire",
        .parties = { "us" },
        .n_parties = 1,
        .phase = 0,
        .status = 6, /* agreed_in_principle */
        .kind = 1,   /* correction */
        .references = { 7, 300 },
        .n_references = 2,
        .headline = "Agreed in principle \xe2\x80\x94 \xe2\x80\x9c"
                    "framework\xe2\x80\x9d accepted",
        .body = "",
        .location = "Doha",
        .scheduled_at = 0,
        .issued_at = 1717100000000,
        .signer_seq = 1717100000000001,
        .expires_at = 0,
        .delivery_seq = 1,
        .received_at = 1717100000999,
    },
};

static void
s_body(s_buf_t *b, const s_vector_t *v)
{
    s_field_str(b, 1, v->negotiation);
    for (size_t i = 0; i < v->n_parties; i++) {
        /* repeated string: every element is written, even an empty one */
        s_tag(b, 2, S_LEN);
        s_varint(b, strlen(v->parties[i]));
        s_put(b, v->parties[i], strlen(v->parties[i]));
    }
    s_field_varint(b, 3, v->phase);
    s_field_varint(b, 4, v->status);
    s_field_varint(b, 5, v->kind);
    if (v->n_references > 0) {
        s_buf_t packed = { 0 };
        for (size_t i = 0; i < v->n_references; i++)
            s_varint(&packed, v->references[i]);
        s_field_bytes(b, 6, packed.p, packed.len);
        free(packed.p);
    }
    s_field_str(b, 7, v->headline);
    s_field_str(b, 8, v->body);
    s_field_str(b, 9, v->location);
    s_field_varint(b, 10, (uint64_t)v->scheduled_at);
    s_field_varint(b, 11, (uint64_t)v->issued_at);
    s_field_varint(b, 12, v->signer_seq);
    s_field_varint(b, 13, (uint64_t)v->expires_at);
}

static void
s_hex_line(FILE *f, const char *key, const uint8_t *p, size_t n)
{
    fprintf(f, "%s ", key);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
    fputc('\n', f);
}

static int
s_write_vector(const char *dir, const s_vector_t *v)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t sig[crypto_sign_BYTES], h[32];
    s_buf_t body = { 0 }, msg = { 0 }, env = { 0 }, del = { 0 };
    char path[4096];

    memset(seed, v->seed_byte, sizeof(seed));
    crypto_sign_seed_keypair(pk, sk, seed);
    crypto_generichash(h, sizeof(h), pk, sizeof(pk), NULL, 0);

    s_body(&body, v);
    s_put(&msg, S_CONTEXT, sizeof(S_CONTEXT)); /* includes the 0x00 */
    s_put(&msg, body.p, body.len);
    crypto_sign_detached(sig, NULL, msg.p, msg.len, sk);

    s_field_bytes(&env, 1, body.p, body.len);
    s_field_bytes(&env, 2, pk, sizeof(pk));
    s_field_bytes(&env, 3, sig, sizeof(sig));

    s_field_varint(&del, 1, v->delivery_seq);
    s_field_varint(&del, 2, (uint64_t)v->received_at);
    s_field_bytes(&del, 3, env.p, env.len);

    snprintf(path, sizeof(path), "%s/%s.txt", dir, v->name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    fprintf(f,
            "# parley golden vector %s: written by gen_vectors.c, checked "
            "by tests/unit/test_sign.c.\n# The update fields are listed in "
            "both programs; each line below is KEY VALUE (hex unless "
            "noted).\n",
            v->name);
    s_hex_line(f, "seed", seed, sizeof(seed));
    s_hex_line(f, "public_key", pk, sizeof(pk));
    s_hex_line(f, "key_id", h, 8);
    s_hex_line(f, "body", body.p, body.len);
    s_hex_line(f, "signature", sig, sizeof(sig));
    s_hex_line(f, "envelope", env.p, env.len);
    fprintf(f, "delivery_seq %llu\n", (unsigned long long)v->delivery_seq);
    fprintf(f, "delivery_received_at %lld\n", (long long)v->received_at);
    s_hex_line(f, "delivery", del.p, del.len);
    int rc = fclose(f) == 0 ? 0 : -1;
    free(body.p);
    free(msg.p);
    free(env.p);
    free(del.p);
    sodium_memzero(sk, sizeof(sk));
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "sodium_init failed\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof(s_vectors) / sizeof(s_vectors[0]); i++)
        if (s_write_vector(argv[1], &s_vectors[i]) != 0)
            return 1;
    return 0;
}
