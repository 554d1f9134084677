/*
 * codec.c - the one file that speaks protobuf-c.
 *
 * Every message goes through protobuf-c's generated pack/unpack; this file
 * translates between those structs and the plain C types of codec.h and
 * parley.h, so the generated names never leak.
 */
#include "codec.h"

#include "parley.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

/* Heap block header for allocations that do not fit in the arena buffer. */
typedef struct s_spill {
    struct s_spill *next;
    max_align_t data[];
} s_spill_t;

void
parley__arena_init(parley__arena_t *a, void *buf, size_t cap)
{
    a->buf = buf;
    a->cap = buf != NULL ? cap : 0;
    a->used = 0;
    a->spill = NULL;
}

void
parley__arena_reset(parley__arena_t *a)
{
    s_spill_t *s = a->spill;
    while (s != NULL) {
        s_spill_t *next = s->next;
        free(s);
        s = next;
    }
    a->spill = NULL;
    a->used = 0;
}

static void *
s_arena_alloc(void *ctx, size_t size)
{
    parley__arena_t *a = ctx;
    size_t aligned = (size + 15u) & ~(size_t)15u;
    uintptr_t base = (uintptr_t)a->buf;
    size_t pad = (16u - (base + a->used) % 16u) % 16u;
    if (aligned >= size && a->cap >= a->used && a->cap - a->used >= pad
        && a->cap - a->used - pad >= aligned) {
        void *p = a->buf + a->used + pad;
        a->used += pad + aligned;
        return p;
    }
    if (size > SIZE_MAX - sizeof(s_spill_t))
        return NULL;
    s_spill_t *s = malloc(sizeof(*s) + size);
    if (s == NULL)
        return NULL;
    s->next = a->spill;
    a->spill = s;
    return s->data;
}

static void
s_arena_free(void *ctx, void *p)
{
    /* Everything is released at once by parley__arena_reset(). */
    (void)ctx;
    (void)p;
}

#define S_ALLOCATOR(arena)                                                    \
    (&(ProtobufCAllocator){ .alloc = s_arena_alloc, .free = s_arena_free,      \
                            .allocator_data = (arena) })

/* Pack msg into buf if it fits. */
static int
s_pack(const ProtobufCMessage *msg, void *buf, size_t cap, size_t *len)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    if (need > cap)
        return -ENOBUFS;
    *len = protobuf_c_message_pack(msg, buf);
    return 0;
}

/* -------------------------------------------------------------- envelope */

int
parley__envelope_decode(const void *buf, size_t len, parley__envelope_t *out,
                        parley__arena_t *arena)
{
    Parley__V1__SignedUpdate *m =
        parley__v1__signed_update__unpack(S_ALLOCATOR(arena), len, buf);
    if (m == NULL)
        return PARLEY_EMALFORMED;
    if (m->signer.len != PARLEY_PUBLICKEY_BYTES
        || m->signature.len != PARLEY_SIGNATURE_BYTES || m->body.len == 0)
        return PARLEY_EMALFORMED;
    out->body.data = m->body.data;
    out->body.len = m->body.len;
    memcpy(out->signer, m->signer.data, PARLEY_PUBLICKEY_BYTES);
    memcpy(out->signature, m->signature.data, PARLEY_SIGNATURE_BYTES);
    return 0;
}

int
parley__envelope_encode(const void *body, size_t body_len,
                        const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                        const uint8_t sig[PARLEY_SIGNATURE_BYTES], void *buf,
                        size_t cap, size_t *len)
{
    Parley__V1__SignedUpdate m = PARLEY__V1__SIGNED_UPDATE__INIT;
    m.body.data = (uint8_t *)body;
    m.body.len = body_len;
    m.signer.data = (uint8_t *)signer;
    m.signer.len = PARLEY_PUBLICKEY_BYTES;
    m.signature.data = (uint8_t *)sig;
    m.signature.len = PARLEY_SIGNATURE_BYTES;
    return s_pack(&m.base, buf, cap, len);
}

/* ---------------------------------------------------------------- update */

/* Copy a NUL-terminated string into a fixed field; 0 or EINVALID. */
static int
s_copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return PARLEY_EINVALID;
    memcpy(dst, src, n + 1);
    return 0;
}

int
parley__update_decode(const void *buf, size_t len, parley_update_t *out,
                      parley__arena_t *arena)
{
    uint8_t canon[PARLEY_ENVELOPE_MAX];
    /* No valid update encodes to more; don't spend work on one that does. */
    if (len > sizeof(canon))
        return PARLEY_EINVALID;
    Parley__V1__StatusUpdate *m =
        parley__v1__status_update__unpack(S_ALLOCATOR(arena), len, buf);
    if (m == NULL)
        return PARLEY_EINVALID;
    /*
     * protobuf-c keeps no length for strings, so a NUL inside one would
     * silently shorten it. Requiring the canonical encoding (exactly what
     * we would pack ourselves) rules that out, along with reordered or
     * duplicate fields and padded varints that would let two byte strings
     * mean one update. Unknown fields would be signed bytes no verifier
     * ever shows anyone, so they are refused too.
     */
    if (m->base.n_unknown_fields != 0
        || protobuf_c_message_get_packed_size(&m->base) != len
        || protobuf_c_message_pack(&m->base, canon) != len
        || memcmp(canon, buf, len) != 0)
        return PARLEY_EINVALID;
    memset(out, 0, sizeof(*out));
    if (s_copy_text(out->negotiation, sizeof(out->negotiation), m->negotiation))
        return PARLEY_EINVALID;
    if (m->n_parties > PARLEY_PARTIES_MAX)
        return PARLEY_EINVALID;
    out->n_parties = m->n_parties;
    for (size_t i = 0; i < m->n_parties; i++)
        if (s_copy_text(out->parties[i], sizeof(out->parties[i]),
                        m->parties[i]))
            return PARLEY_EINVALID;
    out->phase = m->phase;
    out->status = (parley_status_t)m->status;
    out->kind = (parley_kind_t)m->kind;
    if (m->n_references > PARLEY_REFERENCES_MAX)
        return PARLEY_EINVALID;
    out->n_references = m->n_references;
    if (m->n_references > 0)
        memcpy(out->references, m->references,
               m->n_references * sizeof(uint64_t));
    if (s_copy_text(out->headline, sizeof(out->headline), m->headline)
        || s_copy_text(out->body, sizeof(out->body), m->body)
        || s_copy_text(out->location, sizeof(out->location), m->location))
        return PARLEY_EINVALID;
    out->scheduled_at = m->scheduled_at;
    out->issued_at = m->issued_at;
    out->signer_seq = m->signer_seq;
    out->expires_at = m->expires_at;
    return 0;
}

int
parley__update_encode(const parley_update_t *u, void *buf, size_t cap,
                      size_t *len)
{
    Parley__V1__StatusUpdate m = PARLEY__V1__STATUS_UPDATE__INIT;
    char *parties[PARLEY_PARTIES_MAX];
    size_t np = u->n_parties <= PARLEY_PARTIES_MAX ? u->n_parties
                                                   : PARLEY_PARTIES_MAX;
    for (size_t i = 0; i < np; i++)
        parties[i] = (char *)u->parties[i];
    m.negotiation = (char *)u->negotiation;
    m.n_parties = np;
    m.parties = parties;
    m.phase = u->phase;
    m.status = (Parley__V1__Status)u->status;
    m.kind = (Parley__V1__Kind)u->kind;
    m.n_references = u->n_references <= PARLEY_REFERENCES_MAX
                         ? u->n_references
                         : PARLEY_REFERENCES_MAX;
    m.references = (uint64_t *)u->references;
    m.headline = (char *)u->headline;
    m.body = (char *)u->body;
    m.location = (char *)u->location;
    m.scheduled_at = u->scheduled_at;
    m.issued_at = u->issued_at;
    m.signer_seq = u->signer_seq;
    m.expires_at = u->expires_at;
    return s_pack(&m.base, buf, cap, len);
}

/* -------------------------------------------------------------- delivery */

int
parley__delivery_encode(uint64_t seq, int64_t received_at, const void *update,
                        size_t update_len, void *buf, size_t cap, size_t *len)
{
    Parley__V1__Delivery m = PARLEY__V1__DELIVERY__INIT;
    m.seq = seq;
    m.received_at = received_at;
    m.update.data = (uint8_t *)update;
    m.update.len = update_len;
    return s_pack(&m.base, buf, cap, len);
}

int
parley__delivery_decode_raw(const void *buf, size_t len, uint64_t *seq,
                            int64_t *received_at, parley__bytes_t *update,
                            parley__arena_t *arena)
{
    Parley__V1__Delivery *m =
        parley__v1__delivery__unpack(S_ALLOCATOR(arena), len, buf);
    if (m == NULL || m->seq == 0 || m->update.len == 0)
        return PARLEY_EMALFORMED;
    *seq = m->seq;
    *received_at = m->received_at;
    update->data = m->update.data;
    update->len = m->update.len;
    return 0;
}

/* ------------------------------------------------------------- heartbeat */

int
parley__heartbeat_encode(const parley__heartbeat_t *hb, void *buf, size_t cap,
                         size_t *len)
{
    Parley__V1__Heartbeat m = PARLEY__V1__HEARTBEAT__INIT;
    m.daemon_id.data = (uint8_t *)hb->daemon_id;
    m.daemon_id.len = sizeof(hb->daemon_id);
    m.seq = hb->seq;
    m.time = hb->time_ms;
    m.first_seq = hb->first_seq;
    if (parley__log_id_set(hb->log_id)) {
        m.log_id.data = (uint8_t *)hb->log_id;
        m.log_id.len = sizeof(hb->log_id);
    }
    m.catching_up = hb->catching_up;
    return s_pack(&m.base, buf, cap, len);
}

int
parley__heartbeat_decode(const void *buf, size_t len, parley__heartbeat_t *out,
                         parley__arena_t *arena)
{
    Parley__V1__Heartbeat *m =
        parley__v1__heartbeat__unpack(S_ALLOCATOR(arena), len, buf);
    if (m == NULL || m->daemon_id.len != sizeof(out->daemon_id))
        return PARLEY_EMALFORMED;
    memcpy(out->daemon_id, m->daemon_id.data, sizeof(out->daemon_id));
    out->seq = m->seq;
    out->time_ms = m->time;
    out->first_seq = m->first_seq;
    memset(out->log_id, 0, sizeof(out->log_id));
    if (m->log_id.len == sizeof(out->log_id))
        memcpy(out->log_id, m->log_id.data, sizeof(out->log_id));
    out->catching_up = m->catching_up;
    return 0;
}

bool
parley__log_id_set(const uint8_t id[16])
{
    static const uint8_t zero[16];
    return memcmp(id, zero, sizeof(zero)) != 0;
}

/* ---------------------------------------------------------------- filter */

int
parley__filterbuf_set(parley__filterbuf_t *fb, const parley_filter_t *f)
{
    static const parley_filter_t empty = { 0 };
    if (f == NULL)
        f = &empty;
    if (f->n_negotiations > PARLEY__FILTER_VALUES_MAX
        || f->n_parties > PARLEY__FILTER_VALUES_MAX
        || f->n_phases > PARLEY__FILTER_VALUES_MAX)
        return PARLEY_EARG;
    for (size_t i = 0; i < f->n_negotiations; i++) {
        if (!parley_slug_valid(f->negotiations[i]))
            return PARLEY_EARG;
        strcpy(fb->negotiations[i], f->negotiations[i]);
        fb->neg_ptrs[i] = fb->negotiations[i];
    }
    for (size_t i = 0; i < f->n_parties; i++) {
        if (!parley_slug_valid(f->parties[i]))
            return PARLEY_EARG;
        strcpy(fb->parties[i], f->parties[i]);
        fb->party_ptrs[i] = fb->parties[i];
    }
    for (size_t i = 0; i < f->n_phases; i++) {
        if (f->phases[i] > PARLEY_PHASE_MAX)
            return PARLEY_EARG;
        fb->phases[i] = f->phases[i];
    }
    fb->filter.negotiations = fb->neg_ptrs;
    fb->filter.n_negotiations = f->n_negotiations;
    fb->filter.parties = fb->party_ptrs;
    fb->filter.n_parties = f->n_parties;
    fb->filter.phases = fb->phases;
    fb->filter.n_phases = f->n_phases;
    return 0;
}

/* Fill fb from a wire Filter (NULL = empty). 0 or PARLEY_EBADREQUEST. */
static int
s_filter_from_wire(parley__filterbuf_t *fb, const Parley__V1__Filter *w)
{
    parley_filter_t f = { 0 };
    if (w != NULL) {
        f.negotiations = (const char *const *)w->negotiations;
        f.n_negotiations = w->n_negotiations;
        f.parties = (const char *const *)w->parties;
        f.n_parties = w->n_parties;
        f.phases = w->phases;
        f.n_phases = w->n_phases;
    }
    return parley__filterbuf_set(fb, &f) == 0 ? 0 : PARLEY_EBADREQUEST;
}

static void
s_filter_to_wire(Parley__V1__Filter *w, const parley_filter_t *f)
{
    w->negotiations = (char **)f->negotiations;
    w->n_negotiations = f->n_negotiations;
    w->parties = (char **)f->parties;
    w->n_parties = f->n_parties;
    w->phases = (uint32_t *)f->phases;
    w->n_phases = f->n_phases;
}

/* Fill req's any_of from wire Filters, in arena memory. 0 or EBADREQUEST. */
static int
s_any_of_from_wire(parley__request_t *req, Parley__V1__Filter **w, size_t n,
                   parley__arena_t *arena)
{
    if (n == 0)
        return 0;
    if (n > PARLEY__ANY_OF_MAX)
        return PARLEY_EBADREQUEST;
    parley__filterbuf_t *v = s_arena_alloc(arena, n * sizeof(*v));
    if (v == NULL)
        return PARLEY_EBADREQUEST;
    for (size_t i = 0; i < n; i++) {
        memset(&v[i].filter, 0, sizeof(v[i].filter));
        int rc = s_filter_from_wire(&v[i], w[i]);
        if (rc < 0)
            return rc;
    }
    req->any_of = v;
    req->n_any_of = n;
    return 0;
}

/* --------------------------------------------------------------- request */

int
parley__request_decode(const void *buf, size_t len, parley__request_t *out,
                       parley__arena_t *arena)
{
    int rc;
    Parley__V1__ApiRequest *m =
        parley__v1__api_request__unpack(S_ALLOCATOR(arena), len, buf);
    out->request_id = 0;
    out->op = PARLEY__OP_NONE;
    if (m == NULL)
        return PARLEY_EMALFORMED;
    out->request_id = m->request_id;
    out->filter.filter = (parley_filter_t){ 0 };
    out->any_of = NULL;
    out->n_any_of = 0;
    out->entries = false;
    switch (m->op_case) {
    case PARLEY__V1__API_REQUEST__OP_PUBLISH:
        out->op = PARLEY__OP_PUBLISH;
        out->update.data = m->publish->update.data;
        out->update.len = m->publish->update.len;
        return 0;
    case PARLEY__V1__API_REQUEST__OP_REPLAY:
        out->op = PARLEY__OP_REPLAY;
        out->from_seq = m->replay->from_seq;
        out->to_seq = m->replay->to_seq;
        out->limit = m->replay->limit;
        rc = s_filter_from_wire(&out->filter, m->replay->filter);
        return rc < 0 ? rc
                      : s_any_of_from_wire(out, m->replay->any_of,
                                           m->replay->n_any_of, arena);
    case PARLEY__V1__API_REQUEST__OP_SNAPSHOT:
        out->op = PARLEY__OP_SNAPSHOT;
        out->entries = m->snapshot->entries;
        rc = s_filter_from_wire(&out->filter, m->snapshot->filter);
        return rc < 0 ? rc
                      : s_any_of_from_wire(out, m->snapshot->any_of,
                                           m->snapshot->n_any_of, arena);
    case PARLEY__V1__API_REQUEST__OP_STATS:
        out->op = PARLEY__OP_STATS;
        return 0;
    case PARLEY__V1__API_REQUEST__OP_PING:
        out->op = PARLEY__OP_PING;
        return 0;
    case PARLEY__V1__API_REQUEST__OP_CHECKPOINT:
        out->op = PARLEY__OP_CHECKPOINT;
        return 0;
    case PARLEY__V1__API_REQUEST__OP_INCLUSION:
        out->op = PARLEY__OP_INCLUSION;
        out->seqs = m->inclusion->seqs;
        out->n_seqs = m->inclusion->n_seqs;
        out->tree_size = m->inclusion->tree_size;
        return 0;
    case PARLEY__V1__API_REQUEST__OP_CONSISTENCY:
        out->op = PARLEY__OP_CONSISTENCY;
        out->old_size = m->consistency->old_size;
        out->new_size = m->consistency->new_size;
        out->with_range = m->consistency->with_range;
        return 0;
    default:
        return PARLEY_EBADREQUEST;
    }
}

int
parley__request_encode(const parley__request_t *req, void *buf, size_t cap,
                       size_t *len)
{
    Parley__V1__ApiRequest m = PARLEY__V1__API_REQUEST__INIT;
    Parley__V1__PublishRequest pub = PARLEY__V1__PUBLISH_REQUEST__INIT;
    Parley__V1__ReplayRequest rep = PARLEY__V1__REPLAY_REQUEST__INIT;
    Parley__V1__SnapshotRequest snap = PARLEY__V1__SNAPSHOT_REQUEST__INIT;
    Parley__V1__StatsRequest stats = PARLEY__V1__STATS_REQUEST__INIT;
    Parley__V1__PingRequest ping = PARLEY__V1__PING_REQUEST__INIT;
    Parley__V1__CheckpointRequest cp = PARLEY__V1__CHECKPOINT_REQUEST__INIT;
    Parley__V1__InclusionRequest inc = PARLEY__V1__INCLUSION_REQUEST__INIT;
    Parley__V1__ConsistencyRequest con = PARLEY__V1__CONSISTENCY_REQUEST__INIT;
    Parley__V1__Filter filter = PARLEY__V1__FILTER__INIT;
    Parley__V1__Filter any[PARLEY__ANY_OF_MAX];
    Parley__V1__Filter *anyp[PARLEY__ANY_OF_MAX];

    if (req->n_any_of > PARLEY__ANY_OF_MAX)
        return PARLEY_EARG;
    m.request_id = req->request_id;
    s_filter_to_wire(&filter, &req->filter.filter);
    for (size_t i = 0; i < req->n_any_of; i++) {
        any[i] = (Parley__V1__Filter)PARLEY__V1__FILTER__INIT;
        s_filter_to_wire(&any[i], &req->any_of[i].filter);
        anyp[i] = &any[i];
    }
    switch (req->op) {
    case PARLEY__OP_PUBLISH:
        pub.update.data = (uint8_t *)req->update.data;
        pub.update.len = req->update.len;
        m.op_case = PARLEY__V1__API_REQUEST__OP_PUBLISH;
        m.publish = &pub;
        break;
    case PARLEY__OP_REPLAY:
        rep.from_seq = req->from_seq;
        rep.to_seq = req->to_seq;
        rep.limit = req->limit;
        rep.filter = &filter;
        rep.n_any_of = req->n_any_of;
        rep.any_of = anyp;
        m.op_case = PARLEY__V1__API_REQUEST__OP_REPLAY;
        m.replay = &rep;
        break;
    case PARLEY__OP_SNAPSHOT:
        snap.filter = &filter;
        snap.n_any_of = req->n_any_of;
        snap.any_of = anyp;
        snap.entries = req->entries;
        m.op_case = PARLEY__V1__API_REQUEST__OP_SNAPSHOT;
        m.snapshot = &snap;
        break;
    case PARLEY__OP_STATS:
        m.op_case = PARLEY__V1__API_REQUEST__OP_STATS;
        m.stats = &stats;
        break;
    case PARLEY__OP_PING:
        m.op_case = PARLEY__V1__API_REQUEST__OP_PING;
        m.ping = &ping;
        break;
    case PARLEY__OP_CHECKPOINT:
        m.op_case = PARLEY__V1__API_REQUEST__OP_CHECKPOINT;
        m.checkpoint = &cp;
        break;
    case PARLEY__OP_INCLUSION:
        inc.seqs = (uint64_t *)req->seqs;
        inc.n_seqs = req->n_seqs;
        inc.tree_size = req->tree_size;
        m.op_case = PARLEY__V1__API_REQUEST__OP_INCLUSION;
        m.inclusion = &inc;
        break;
    case PARLEY__OP_CONSISTENCY:
        con.old_size = req->old_size;
        con.new_size = req->new_size;
        con.with_range = req->with_range;
        m.op_case = PARLEY__V1__API_REQUEST__OP_CONSISTENCY;
        m.consistency = &con;
        break;
    default:
        return PARLEY_EARG;
    }
    return s_pack(&m.base, buf, cap, len);
}

/* ----------------------------------------------------------------- reply */

/* Wire reject codes, indexed by -(PARLEY_E*) - 1001. */
static const struct {
    int code;
    Parley__V1__RejectCode wire;
} s_rejects[] = {
    { PARLEY_ETOOLARGE, PARLEY__V1__REJECT_CODE__TOO_LARGE },
    { PARLEY_EMALFORMED, PARLEY__V1__REJECT_CODE__MALFORMED },
    { PARLEY_EUNKNOWNSIGNER, PARLEY__V1__REJECT_CODE__UNKNOWN_SIGNER },
    { PARLEY_EBADSIG, PARLEY__V1__REJECT_CODE__BAD_SIGNATURE },
    { PARLEY_EINVALID, PARLEY__V1__REJECT_CODE__INVALID },
    { PARLEY_EFORBIDDEN, PARLEY__V1__REJECT_CODE__FORBIDDEN },
    { PARLEY_ESTALE, PARLEY__V1__REJECT_CODE__STALE },
    { PARLEY_EFUTURE, PARLEY__V1__REJECT_CODE__FUTURE },
    { PARLEY_EREPLAY, PARLEY__V1__REJECT_CODE__REPLAY },
    { PARLEY_ETRUNCATED, PARLEY__V1__REJECT_CODE__TRUNCATED },
    { PARLEY_EUNAVAILABLE, PARLEY__V1__REJECT_CODE__UNAVAILABLE },
    { PARLEY_EBADREQUEST, PARLEY__V1__REJECT_CODE__BAD_REQUEST },
    { PARLEY_ERATELIMITED, PARLEY__V1__REJECT_CODE__RATE_LIMITED },
};

int
parley__reject_to_wire(int code)
{
    for (size_t i = 0; i < sizeof(s_rejects) / sizeof(s_rejects[0]); i++)
        if (s_rejects[i].code == code)
            return (int)s_rejects[i].wire;
    return PARLEY__V1__REJECT_CODE__UNAVAILABLE;
}

int
parley__reject_from_wire(int wire)
{
    for (size_t i = 0; i < sizeof(s_rejects) / sizeof(s_rejects[0]); i++)
        if ((int)s_rejects[i].wire == wire)
            return s_rejects[i].code;
    return PARLEY_EPROTO;
}

size_t
parley__reply_item_overhead(size_t n)
{
    /* tag (1) + length varint (at most 10) */
    (void)n;
    return 11;
}

/* Lists up to this long are laid out on the stack; longer ones on the heap. */
#define S_STACK_LIST 256

/* A PING reply's fields into its message (strings borrowed from r). */
static void
s_ping_encode(const parley__reply_t *r, Parley__V1__PingReply *ping)
{
    ping->feed = (char *)(r->feed != NULL ? r->feed : "");
    ping->daemon_id.data = (uint8_t *)r->daemon_id;
    ping->daemon_id.len = sizeof(r->daemon_id);
    ping->seq = r->seq;
    ping->first_seq = r->first_seq;
    ping->version = (char *)(r->version != NULL ? r->version : "");
    if (parley__log_id_set(r->log_id)) {
        ping->log_id.data = (uint8_t *)r->log_id;
        ping->log_id.len = sizeof(r->log_id);
    }
    ping->catching_up = r->catching_up;
    ping->storage = (char *)(r->storage != NULL ? r->storage : "");
    ping->health = (char *)(r->health != NULL ? r->health : "");
    ping->checkpoint.data = (uint8_t *)r->checkpoint.data;
    ping->checkpoint.len = r->checkpoint.len;
}

/* A decoded PingReply into out (strings and bytes borrowed from ping). */
static void
s_ping_decode(const Parley__V1__PingReply *ping, parley__reply_t *out)
{
    out->type = PARLEY__REPLY_PING;
    out->feed = ping->feed;
    if (ping->daemon_id.len == sizeof(out->daemon_id))
        memcpy(out->daemon_id, ping->daemon_id.data, sizeof(out->daemon_id));
    out->seq = ping->seq;
    out->first_seq = ping->first_seq;
    out->version = ping->version;
    if (ping->log_id.len == sizeof(out->log_id))
        memcpy(out->log_id, ping->log_id.data, sizeof(out->log_id));
    out->catching_up = ping->catching_up;
    out->storage = ping->storage;
    out->health = ping->health;
    out->checkpoint.data = ping->checkpoint.data;
    out->checkpoint.len = ping->checkpoint.len;
}

int
parley__reply_encode(const parley__reply_t *r, void *buf, size_t cap,
                     size_t *len)
{
    Parley__V1__ApiReply m = PARLEY__V1__API_REPLY__INIT;
    Parley__V1__Ack ack = PARLEY__V1__ACK__INIT;
    Parley__V1__Reject rej = PARLEY__V1__REJECT__INIT;
    Parley__V1__ReplayReply rep = PARLEY__V1__REPLAY_REPLY__INIT;
    Parley__V1__SnapshotReply snap = PARLEY__V1__SNAPSHOT_REPLY__INIT;
    Parley__V1__StatsReply stats = PARLEY__V1__STATS_REPLY__INIT;
    Parley__V1__PingReply ping = PARLEY__V1__PING_REPLY__INIT;
    Parley__V1__ProofReply proof = PARLEY__V1__PROOF_REPLY__INIT;
    ProtobufCBinaryData items_stack[S_STACK_LIST];
    ProtobufCBinaryData range[64];
    ProtobufCBinaryData *items = items_stack;
    Parley__V1__Stat statv[S_STACK_LIST];
    Parley__V1__Stat *statp[S_STACK_LIST];
    Parley__V1__StateEntry *entv = NULL;
    Parley__V1__StateEntry **entp = NULL;
    int rc;

    m.request_id = r->request_id;
    switch (r->type) {
    case PARLEY__REPLY_ACK:
        ack.seq = r->seq;
        ack.duplicate = r->duplicate;
        m.result_case = PARLEY__V1__API_REPLY__RESULT_ACK;
        m.ack = &ack;
        break;
    case PARLEY__REPLY_REJECT:
        rej.code = (Parley__V1__RejectCode)parley__reject_to_wire(r->code);
        rej.message = (char *)(r->message != NULL ? r->message : "");
        rej.first_seq = r->first_seq;
        rej.signer_seq = r->signer_seq;
        m.result_case = PARLEY__V1__API_REPLY__RESULT_REJECT;
        m.reject = &rej;
        break;
    case PARLEY__REPLY_REPLAY:
    case PARLEY__REPLY_SNAPSHOT:
        if (r->n_deliveries > S_STACK_LIST) {
            if (r->n_deliveries > SIZE_MAX / sizeof(*items))
                return -ENOBUFS;
            items = malloc(r->n_deliveries * sizeof(*items));
            if (items == NULL)
                return -ENOMEM;
        }
        for (size_t i = 0; i < r->n_deliveries; i++) {
            items[i].data = (uint8_t *)r->deliveries[i].data;
            items[i].len = r->deliveries[i].len;
        }
        if (r->type == PARLEY__REPLY_REPLAY) {
            rep.n_deliveries = r->n_deliveries;
            rep.deliveries = items;
            rep.next_seq = r->next_seq;
            rep.head_seq = r->head_seq;
            rep.done = r->done;
            m.result_case = PARLEY__V1__API_REPLY__RESULT_REPLAY;
            m.replay = &rep;
        } else {
            snap.n_deliveries = r->n_deliveries;
            snap.deliveries = items;
            snap.seq = r->seq;
            if (r->n_entries > 0) {
                entv = r->n_entries <= SIZE_MAX / sizeof(*entv)
                           ? malloc(r->n_entries * sizeof(*entv))
                           : NULL;
                entp = entv != NULL ? malloc(r->n_entries * sizeof(*entp))
                                    : NULL;
                if (entp == NULL) {
                    rc = -ENOMEM;
                    goto done;
                }
                for (size_t i = 0; i < r->n_entries; i++) {
                    entv[i] = (Parley__V1__StateEntry)
                        PARLEY__V1__STATE_ENTRY__INIT;
                    entv[i].negotiation = (char *)r->entries[i].negotiation;
                    entv[i].party = (char *)r->entries[i].party;
                    entv[i].phase = r->entries[i].phase;
                    entv[i].seq = r->entries[i].seq;
                    entp[i] = &entv[i];
                }
                snap.n_entries = r->n_entries;
                snap.entries = entp;
            }
            m.result_case = PARLEY__V1__API_REPLY__RESULT_SNAPSHOT;
            m.snapshot = &snap;
        }
        break;
    case PARLEY__REPLY_STATS:
        if (r->n_stats > S_STACK_LIST)
            return -ENOBUFS; /* far more counters than parleyd has */
        for (size_t i = 0; i < r->n_stats; i++) {
            statv[i] = (Parley__V1__Stat)PARLEY__V1__STAT__INIT;
            statv[i].name = (char *)r->stats[i].name;
            statv[i].value = r->stats[i].value;
            statp[i] = &statv[i];
        }
        stats.n_stats = r->n_stats;
        stats.stats = statp;
        m.result_case = PARLEY__V1__API_REPLY__RESULT_STATS;
        m.stats = &stats;
        break;
    case PARLEY__REPLY_PING:
        s_ping_encode(r, &ping);
        m.result_case = PARLEY__V1__API_REPLY__RESULT_PING;
        m.ping = &ping;
        break;
    case PARLEY__REPLY_PROOF:
        if (r->n_proofs > S_STACK_LIST || r->n_range > 64)
            return PARLEY_EARG;
        for (size_t i = 0; i < r->n_proofs; i++) {
            items[i].data = (uint8_t *)r->proofs[i].data;
            items[i].len = r->proofs[i].len;
        }
        for (size_t i = 0; i < r->n_range; i++) {
            range[i].data = (uint8_t *)r->range[i].data;
            range[i].len = r->range[i].len;
        }
        proof.checkpoint.data = (uint8_t *)r->checkpoint.data;
        proof.checkpoint.len = r->checkpoint.len;
        proof.tree_size = r->tree_size;
        proof.n_proofs = r->n_proofs;
        proof.proofs = items;
        proof.n_range = r->n_range;
        proof.range = range;
        m.result_case = PARLEY__V1__API_REPLY__RESULT_PROOF;
        m.proof = &proof;
        break;
    default:
        return PARLEY_EARG;
    }
    rc = s_pack(&m.base, buf, cap, len);
done:
    if (items != items_stack)
        free(items);
    free(entv);
    free(entp);
    return rc;
}

int
parley__reply_decode(const void *buf, size_t len, parley__reply_t *out,
                     parley__arena_t *arena)
{
    Parley__V1__ApiReply *m =
        parley__v1__api_reply__unpack(S_ALLOCATOR(arena), len, buf);
    memset(out, 0, sizeof(*out));
    if (m == NULL)
        return PARLEY_EMALFORMED;
    out->request_id = m->request_id;
    switch (m->result_case) {
    case PARLEY__V1__API_REPLY__RESULT_ACK:
        out->type = PARLEY__REPLY_ACK;
        out->seq = m->ack->seq;
        out->duplicate = m->ack->duplicate;
        return 0;
    case PARLEY__V1__API_REPLY__RESULT_REJECT:
        out->type = PARLEY__REPLY_REJECT;
        out->code = parley__reject_from_wire(m->reject->code);
        out->message = m->reject->message;
        out->first_seq = m->reject->first_seq;
        out->signer_seq = m->reject->signer_seq;
        return 0;
    case PARLEY__V1__API_REPLY__RESULT_REPLAY:
    case PARLEY__V1__API_REPLY__RESULT_SNAPSHOT: {
        size_t n;
        ProtobufCBinaryData *items;
        if (m->result_case == PARLEY__V1__API_REPLY__RESULT_REPLAY) {
            out->type = PARLEY__REPLY_REPLAY;
            n = m->replay->n_deliveries;
            items = m->replay->deliveries;
            out->next_seq = m->replay->next_seq;
            out->head_seq = m->replay->head_seq;
            out->done = m->replay->done;
        } else {
            out->type = PARLEY__REPLY_SNAPSHOT;
            n = m->snapshot->n_deliveries;
            items = m->snapshot->deliveries;
            out->seq = m->snapshot->seq;
            size_t ne = m->snapshot->n_entries;
            parley__entry_t *e =
                ne > 0 ? s_arena_alloc(arena, ne * sizeof(*e)) : NULL;
            if (ne > 0 && e == NULL)
                return -ENOMEM;
            for (size_t i = 0; i < ne; i++) {
                const Parley__V1__StateEntry *w = m->snapshot->entries[i];
                e[i] = (parley__entry_t){ w->negotiation, w->party, w->phase,
                                          w->seq };
            }
            out->entries = e;
            out->n_entries = ne;
        }
        parley__bytes_t *v = n > 0 ? s_arena_alloc(arena, n * sizeof(*v)) : NULL;
        if (n > 0 && v == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            v[i].data = items[i].data;
            v[i].len = items[i].len;
        }
        out->deliveries = v;
        out->n_deliveries = n;
        return 0;
    }
    case PARLEY__V1__API_REPLY__RESULT_STATS: {
        size_t n = m->stats->n_stats;
        parley__stat_t *v = n > 0 ? s_arena_alloc(arena, n * sizeof(*v)) : NULL;
        if (n > 0 && v == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            v[i].name = m->stats->stats[i]->name;
            v[i].value = m->stats->stats[i]->value;
        }
        out->type = PARLEY__REPLY_STATS;
        out->stats = v;
        out->n_stats = n;
        return 0;
    }
    case PARLEY__V1__API_REPLY__RESULT_PING:
        s_ping_decode(m->ping, out);
        return 0;
    case PARLEY__V1__API_REPLY__RESULT_PROOF: {
        const Parley__V1__ProofReply *p = m->proof;
        size_t n = p->n_proofs, k = p->n_range;
        parley__bytes_t *v = n + k > 0 ? s_arena_alloc(arena, (n + k) * sizeof(*v))
                                       : NULL;
        if (n + k > 0 && v == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            v[i] = (parley__bytes_t){ p->proofs[i].data, p->proofs[i].len };
        for (size_t i = 0; i < k; i++)
            v[n + i] = (parley__bytes_t){ p->range[i].data, p->range[i].len };
        out->type = PARLEY__REPLY_PROOF;
        out->checkpoint.data = p->checkpoint.data;
        out->checkpoint.len = p->checkpoint.len;
        out->tree_size = p->tree_size;
        out->proofs = n > 0 ? v : NULL;
        out->n_proofs = n;
        out->range = k > 0 ? v + n : NULL;
        out->n_range = k;
        return 0;
    }
    default:
        return PARLEY_EMALFORMED;
    }
}
