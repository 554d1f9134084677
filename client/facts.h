/*
 * facts.h - the hand-written fast readers of the wire format
 * (library-internal).
 *
 * codec.c decodes every message through protobuf-c; the readers here pull
 * a few fields straight out of the bytes where a full decode costs too
 * much: the facts of a logged SignedUpdate that parleyd's indexes and feed
 * need (a million records are read at every start), and the request_id of
 * an api request too large to be decoded. They live beside the codec so
 * that the schema's field numbers (proto/parley.proto) are spelled out in
 * one room: change the schema, change codec.c and this file together.
 *
 * Whenever a fast reader answers, the full decoders accept the same bytes
 * and yield the same values (tests/unit/test_facts.c, fuzz_facts and
 * fuzz_request check this); for anything else it declines and the caller
 * falls back to them.
 */
#ifndef PARLEY_FACTS_H
#define PARLEY_FACTS_H

#include "codec.h"
#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The fields of one update that the daemon's indexes and feed topics use.
 * Strings are not NUL-terminated; the pointers are into the bytes read
 * (parley__facts_read()) or into the update (parley__facts_of_update()).
 */
typedef struct parley__facts {
    const uint8_t *signer;        /* PARLEY_PUBLICKEY_BYTES */
    uint64_t signer_seq;
    const char *negotiation;
    size_t negotiation_len;       /* <= PARLEY_SLUG_MAX */
    size_t n_parties;
    const char *parties[PARLEY_PARTIES_MAX];
    size_t party_lens[PARLEY_PARTIES_MAX];     /* each <= PARLEY_SLUG_MAX */
    uint32_t phase;
    parley_kind_t kind;
    size_t n_references;
    uint64_t references[PARLEY_REFERENCES_MAX];
} parley__facts_t;

/*
 * Read the facts of a SignedUpdate straight from its bytes, without
 * protobuf-c, when they are in exactly the form the daemon accepts: the
 * envelope as parley_sign() lays it out and a body in the canonical
 * encoding that parley__update_decode() requires. Whenever this returns 0
 * the full decoders accept the same bytes and yield the same fields; for
 * anything it does not recognise it returns 1 and leaves the verdict to
 * them. Never reads outside env[0..len).
 *
 * Returns:   0 (*out filled, pointing into env) or 1 (use the decoders).
 * Threads:   safe; touches only its arguments.
 */
int parley__facts_read(const uint8_t *env, size_t len, parley__facts_t *out);

/*
 * Is env the canonical envelope: exactly the bytes parley_sign() writes
 * (parley__envelope_encode()), body (field 1, not empty), signer (field
 * 2, 32 bytes) and signature (field 3, 64 bytes), in that order, each
 * once, lengths unpadded, and nothing else? parleyd stores no other
 * envelope, so that no unsigned byte rides with a signed update and one
 * signed update has one encoding. Whenever this returns 0 the envelope
 * decoder accepts the same bytes, and encoding what it yields gives them
 * back (fuzz_envelope checks both ways).
 *
 * Returns:   0, or PARLEY_EMALFORMED with *why (may be NULL) a static
 *            phrase saying what differs.
 * Threads:   safe; touches only its arguments.
 */
int parley__envelope_canonical(const uint8_t *env, size_t len,
                               const char **why);

/*
 * The facts of a decoded update u signed by signer; out points into u
 * and signer, which must outlive it.
 */
void parley__facts_of_update(parley__facts_t *out, const uint8_t *signer,
                             const parley_update_t *u);

/*
 * The facts of a SignedUpdate: read in place by parley__facts_read() when
 * it can, else through the full decoders (envelope, then body) into *e
 * and *u, with arena for their allocations (reset it after use). out
 * points into env, or into *e and *u, which must outlive it.
 *
 * Returns:   0, or PARLEY_EMALFORMED / PARLEY_EINVALID when the bytes do
 *            not decode.
 */
int parley__facts_decode(const uint8_t *env, size_t len, parley__facts_t *out,
                         parley__envelope_t *e, parley_update_t *u,
                         parley__arena_t *arena);

/*
 * The feed topics of the update the facts describe, exactly as
 * parley_topics() names them (which is built on this): "all/",
 * "neg/<negotiation>/", "party/<party>/" for each party in order,
 * "phase/<n>/".
 *
 * Returns:   the number written (at most PARLEY_TOPICS_MAX).
 */
size_t parley__facts_topics(const parley__facts_t *f,
                            char out[][PARLEY_TOPIC_MAX]);

/*
 * Is t (len bytes, not NUL-terminated) one whole feed topic of the kind
 * parley__facts_topics() names: "all/", "neg/<slug>/", "party/<slug>/" or
 * "phase/<0-255>/" (no leading zero)? A subscription to such a topic
 * matches that topic alone, so it receives an update at most once.
 * (topic.c)
 */
bool parley__topic_whole(const char *t, size_t len);

/*
 * The request_id of an encoded ApiRequest without decoding the rest: it
 * is field 1, which an encoder writes first (tag 0x08, then a varint).
 * Used to address the reject of a request too large to be decoded.
 *
 * Returns:   the id, or 0 if the bytes do not start that way.
 */
uint64_t parley__facts_request_id(const uint8_t *buf, size_t len);

#endif /* PARLEY_FACTS_H */
