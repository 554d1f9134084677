/*
 * codec.h - wire encoding and decoding (library-internal).
 *
 * codec.c is the only file that includes the generated protobuf-c code;
 * everything else sees plain C structs and byte ranges. Decoders take an
 * arena: the protobuf-c allocations of one decode come from a buffer the
 * caller owns (with a heap fallback for oversized input), so the hot path
 * performs no malloc, and parley__arena_reset() frees everything at once.
 */
#ifndef PARLEY_CODEC_H
#define PARLEY_CODEC_H

#include "parley.h"
#include "types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bump allocator over a caller buffer; spills to the heap when full. */
typedef struct parley__arena {
    uint8_t *buf;      /* caller's buffer, 16-byte aligned use */
    size_t cap;        /* bytes in buf */
    size_t used;       /* bytes handed out from buf */
    void *spill;       /* singly linked list of heap blocks */
} parley__arena_t;

/* Point an arena at buf (cap bytes). */
void parley__arena_init(parley__arena_t *a, void *buf, size_t cap);
/* Release every allocation made from the arena; it can be used again. */
void parley__arena_reset(parley__arena_t *a);

/* A byte range owned by someone else. */
typedef struct parley__bytes {
    const uint8_t *data;
    size_t len;
} parley__bytes_t;

/* A decoded SignedUpdate. body points into arena memory. */
typedef struct parley__envelope {
    parley__bytes_t body;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    uint8_t signature[PARLEY_SIGNATURE_BYTES];
} parley__envelope_t;

/*
 * Decode a SignedUpdate; the signer must be 32 bytes and the signature 64.
 * Returns 0 or PARLEY_EMALFORMED.
 */
int parley__envelope_decode(const void *buf, size_t len,
                            parley__envelope_t *out, parley__arena_t *arena);

/* Encode a SignedUpdate. Returns 0 or -ENOBUFS. */
int parley__envelope_encode(const void *body, size_t body_len,
                            const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                            const uint8_t sig[PARLEY_SIGNATURE_BYTES],
                            void *buf, size_t cap, size_t *len);

/*
 * Decode a StatusUpdate body into *out. The body must be the canonical
 * encoding of what it holds (so text cannot hide a NUL and no two byte
 * strings decode to the same update), and fit the fixed-size fields.
 * Returns 0 or PARLEY_EINVALID. Does not run parley_update_validate().
 */
int parley__update_decode(const void *buf, size_t len, parley_update_t *out,
                          parley__arena_t *arena);

/* Encode a StatusUpdate. Returns 0 or -ENOBUFS. */
int parley__update_encode(const parley_update_t *u, void *buf, size_t cap,
                          size_t *len);

/* Encode a Delivery around SignedUpdate bytes. Returns 0 or -ENOBUFS. */
int parley__delivery_encode(uint64_t seq, int64_t received_at,
                            const void *update, size_t update_len, void *buf,
                            size_t cap, size_t *len);

/* Decode a Delivery; update points into arena memory. 0 or EMALFORMED. */
int parley__delivery_decode_raw(const void *buf, size_t len, uint64_t *seq,
                                int64_t *received_at, parley__bytes_t *update,
                                parley__arena_t *arena);

/* sys/heartbeat/ payload. */
typedef struct parley__heartbeat {
    uint8_t daemon_id[16];
    uint64_t seq;
    int64_t time_ms;
    uint64_t first_seq;
    uint8_t log_id[16];          /* all zero: none (a single daemon) */
    bool catching_up;
} parley__heartbeat_t;

/* Whether a log id (heartbeat, ping) names a log: not all zero. */
bool parley__log_id_set(const uint8_t id[16]);

int parley__heartbeat_encode(const parley__heartbeat_t *hb, void *buf,
                             size_t cap, size_t *len);
int parley__heartbeat_decode(const void *buf, size_t len,
                             parley__heartbeat_t *out, parley__arena_t *arena);

/* Filter storage that owns its values (for requests). */
#define PARLEY__FILTER_VALUES_MAX 64
typedef struct parley__filterbuf {
    char negotiations[PARLEY__FILTER_VALUES_MAX][PARLEY_SLUG_MAX + 1];
    char parties[PARLEY__FILTER_VALUES_MAX][PARLEY_SLUG_MAX + 1];
    uint32_t phases[PARLEY__FILTER_VALUES_MAX];
    const char *neg_ptrs[PARLEY__FILTER_VALUES_MAX];
    const char *party_ptrs[PARLEY__FILTER_VALUES_MAX];
    parley_filter_t filter; /* points into the arrays above */
} parley__filterbuf_t;

/*
 * Copy a filter into owned storage. Returns 0 or PARLEY_EARG (too many
 * values, a value that is not a slug, a phase over 255).
 */
int parley__filterbuf_set(parley__filterbuf_t *fb, const parley_filter_t *f);

/* Alternative filters (any_of) of one request at most. */
#define PARLEY__ANY_OF_MAX 16

typedef enum {
    PARLEY__OP_NONE = 0,
    PARLEY__OP_PUBLISH,
    PARLEY__OP_REPLAY,
    PARLEY__OP_SNAPSHOT,
    PARLEY__OP_STATS,
    PARLEY__OP_PING,
    PARLEY__OP_CHECKPOINT,
    PARLEY__OP_INCLUSION,
    PARLEY__OP_CONSISTENCY,
} parley__op_t;

/* Seqs of one inclusion request at most. */
#define PARLEY__INCLUSION_MAX 256

/* An api request, decoded. Pointers are into arena memory. */
typedef struct parley__request {
    uint64_t request_id;
    parley__op_t op;
    parley__bytes_t update;      /* PUBLISH: SignedUpdate bytes */
    uint64_t from_seq, to_seq;   /* REPLAY */
    uint32_t limit;              /* REPLAY */
    parley__filterbuf_t filter;  /* REPLAY, SNAPSHOT */
    const parley__filterbuf_t *any_of; /* REPLAY, SNAPSHOT: OR of these */
    size_t n_any_of;             /* entries in any_of (decode: in the arena) */
    const uint64_t *seqs;        /* INCLUSION: the seqs (decode: arena) */
    size_t n_seqs;
    uint64_t tree_size;          /* INCLUSION; 0 = latest checkpoint */
    uint64_t old_size, new_size; /* CONSISTENCY; new 0 = latest checkpoint */
    bool with_range;             /* CONSISTENCY: the old tree's range too */
    bool entries;                /* SNAPSHOT: the client reads entries */
} parley__request_t;

/*
 * Does the update match the request's filters: its filter, and one of
 * any_of when there are any? Returns 1 or 0.
 */
int parley__request_match(const parley__request_t *req,
                          const parley_update_t *u);

/*
 * Does the state entry (negotiation, party, phase) match a filter (NULL:
 * all), as an update naming that one party would? Returns 1 or 0.
 */
int parley__filter_match_entry(const parley_filter_t *f,
                               const char *negotiation, const char *party,
                               uint32_t phase);

/*
 * Does the state entry match the request's filters (its filter, and one
 * of any_of when there are any)? Returns 1 or 0.
 */
int parley__request_match_entry(const parley__request_t *req,
                                const char *negotiation, const char *party,
                                uint32_t phase);

/*
 * Put a client's filters (n, any of them; none: everything) into a
 * replay or snapshot request: one as its filter, several as any_of (so
 * that a daemon that does not know any_of answers with a superset, which
 * the client filters again).
 */
void parley__request_set_filters(parley__request_t *req,
                                 const parley__filterbuf_t *fs, size_t n);

/*
 * Decode an ApiRequest. Returns 0, PARLEY_EMALFORMED (does not decode)
 * or PARLEY_EBADREQUEST (decodes but names no known op or a bad filter);
 * on EBADREQUEST out->request_id is still set when it was readable.
 */
int parley__request_decode(const void *buf, size_t len, parley__request_t *out,
                           parley__arena_t *arena);

/* Encode an ApiRequest from *req. Returns 0 or -ENOBUFS/PARLEY_EARG. */
int parley__request_encode(const parley__request_t *req, void *buf, size_t cap,
                           size_t *len);

/* A stat as carried in StatsReply. */
typedef struct parley__stat {
    const char *name;
    uint64_t value;
} parley__stat_t;

/* A state entry as carried in SnapshotReply (strings borrowed). */
typedef struct parley__entry {
    const char *negotiation;
    const char *party;
    uint32_t phase;
    uint64_t seq;
} parley__entry_t;

/* Bytes one encoded state entry takes in a SNAPSHOT reply, at most. */
#define PARLEY__ENTRY_WIRE_MAX (2 * (PARLEY_SLUG_MAX + 2) + 6 + 11 + 11)

/* An api reply, decoded or to be encoded. */
typedef struct parley__reply {
    uint64_t request_id;
    enum {
        PARLEY__REPLY_NONE = 0,
        PARLEY__REPLY_ACK,
        PARLEY__REPLY_REJECT,
        PARLEY__REPLY_REPLAY,
        PARLEY__REPLY_SNAPSHOT,
        PARLEY__REPLY_STATS,
        PARLEY__REPLY_PING,
        PARLEY__REPLY_PROOF,
    } type;
    uint64_t seq;                /* ACK; SNAPSHOT: as-of seq; PING: head */
    bool duplicate;              /* ACK */
    int code;                    /* REJECT: PARLEY_E* */
    const char *message;         /* REJECT */
    uint64_t first_seq;          /* REJECT truncated; PING */
    uint64_t signer_seq;         /* REJECT replay: the signer's last one */
    const parley__bytes_t *deliveries; /* REPLAY, SNAPSHOT */
    size_t n_deliveries;
    const parley__entry_t *entries; /* SNAPSHOT: the state entries */
    size_t n_entries;
    uint64_t next_seq, head_seq; /* REPLAY */
    bool done;                   /* REPLAY */
    const parley__stat_t *stats; /* STATS */
    size_t n_stats;
    const char *feed;            /* PING */
    uint8_t daemon_id[16];       /* PING */
    const char *version;         /* PING */
    uint8_t log_id[16];          /* PING: all zero: none */
    bool catching_up;            /* PING */
    const char *storage;         /* PING: "embedded", "cluster" (or NULL) */
    const char *health;          /* PING: "ok", ... (or NULL) */
    parley__bytes_t checkpoint;  /* PING, PROOF: signed checkpoint or empty */
    uint64_t tree_size;          /* PROOF */
    const parley__bytes_t *proofs; /* PROOF: encoded proofs */
    size_t n_proofs;
    const parley__bytes_t *range; /* PROOF: 32-byte hashes */
    size_t n_range;
} parley__reply_t;

/*
 * Encode an ApiReply. Returns 0 or -ENOBUFS. The caller can bound the size
 * of a REPLAY/SNAPSHOT reply with parley__reply_overhead().
 */
int parley__reply_encode(const parley__reply_t *r, void *buf, size_t cap,
                         size_t *len);

/* Bytes a delivery of n bytes adds to a REPLAY/SNAPSHOT reply (at most). */
size_t parley__reply_item_overhead(size_t n);

/* Decode an ApiReply. Returns 0 or PARLEY_EMALFORMED. */
int parley__reply_decode(const void *buf, size_t len, parley__reply_t *out,
                         parley__arena_t *arena);

/*
 * Map between PARLEY_E* codes and wire reject codes. A code with no wire
 * form goes out as UNAVAILABLE; an unknown wire code comes in as
 * PARLEY_EPROTO.
 */
int parley__reject_to_wire(int code);
int parley__reject_from_wire(int wire);

#endif /* PARLEY_CODEC_H */
