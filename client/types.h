/*
 * types.h - the definitions behind libparley's opaque public types
 * (library-internal).
 *
 * parley.h declares parley_update_t, parley_delivery_t, parley_filter_t
 * and parley_event_t without their fields, so that programs never depend
 * on their size. The library, parleyd and the in-tree tests see the
 * fields here: fixed-size updates decode without allocation, and the
 * daemon keeps them in its own structs.
 */
#ifndef PARLEY_TYPES_H
#define PARLEY_TYPES_H

#include "parley.h"

#include <stddef.h>
#include <stdint.h>

/*
 * A negotiation-status update, decoded. Fixed-size so that decoding needs
 * no allocation; strings are NUL-terminated UTF-8. A zeroed struct is an
 * empty (invalid) update.
 */
struct parley_update {
    char negotiation[PARLEY_SLUG_MAX + 1];   /* slug of the negotiation */
    size_t n_parties;                        /* parties[0..n_parties) used */
    char parties[PARLEY_PARTIES_MAX][PARLEY_SLUG_MAX + 1]; /* party slugs */
    uint32_t phase;                          /* 0..255 */
    parley_status_t status;
    parley_kind_t kind;
    size_t n_references;                     /* references[0..n) used */
    uint64_t references[PARLEY_REFERENCES_MAX]; /* seqs replaced */
    char headline[PARLEY_HEADLINE_MAX + 1];
    char body[PARLEY_BODY_MAX + 1];
    char location[PARLEY_LOCATION_MAX + 1];
    int64_t scheduled_at;                    /* unix ms, 0 = none */
    int64_t issued_at;                       /* unix ms */
    uint64_t signer_seq;                     /* per-signer, increasing */
    int64_t expires_at;                      /* unix ms, 0 = never */
};

/*
 * A verified update as the daemon delivered it. The envelope bytes are
 * owned when envelope_cap > 0 (freed by parley__delivery_release()), and
 * borrowed otherwise.
 */
struct parley_delivery {
    uint64_t seq;                            /* daemon log sequence */
    int64_t received_at;                     /* unix ms, daemon clock */
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];  /* Ed25519 public key */
    char signer_id[PARLEY_KEYID_CHARS + 1];  /* key id, hex */
    char signer_name[PARLEY_SLUG_MAX + 1];   /* keyring name, "" if unknown */
    parley_update_t update;
    uint8_t *envelope;                       /* SignedUpdate bytes, or NULL */
    size_t envelope_len;                     /* bytes at envelope */
    size_t envelope_cap;                     /* 0: envelope is borrowed */
};

/* Free an owned envelope; the delivery stays usable (and empty of it). */
void parley__delivery_release(parley_delivery_t *d);

/*
 * Keep a copy of the envelope bytes in d, reusing its owned buffer.
 * Returns 0 or -ENOMEM.
 */
int parley__delivery_set_envelope(parley_delivery_t *d, const void *env,
                                  size_t len);

/*
 * Move the delivery src into dst: its fields are copied (strings up to
 * their NUL, arrays up to their counts, not the struct's five kilobytes)
 * and the envelope buffers change places, so that src keeps dst's old one
 * (emptied) for reuse. What dst held past its strings and counts is left
 * as it was. Used to hand out a delivery decoded on another thread
 * without moving every cache line of the struct between cores.
 * Ownership: each envelope buffer keeps exactly one owner.
 */
void parley__delivery_move(parley_delivery_t *dst, parley_delivery_t *src);

/*
 * Why the keyring forbids signer pk this update, in words: which of
 * negotiation, party and phase it refuses, and what it allows the signer
 * ("party \"us\" is not allowed; the keyring allows desk
 * negotiations=gaza-ceasefire parties=israel,hamas phases=0-3"), written
 * to buf (cut to cap bytes).
 *
 * Returns:   PARLEY_EFORBIDDEN with buf set, 0 if it is allowed (buf ""),
 *            PARLEY_EUNKNOWNSIGNER or PARLEY_EARG.
 */
int parley__keyring_explain(const parley_keyring_t *ring,
                            const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                            const parley_update_t *u, char *buf, size_t cap);

/* What a slug is, for messages: the pattern, then in words. */
#define PARLEY__SLUG_RULE                                                    \
    "[a-z0-9][a-z0-9-]{0,31}: lowercase letters, digits and '-', "           \
    "at most 32, not starting with '-'"

/* 1 if text is well-formed UTF-8 (RFC 3629, no NUL) of at most max
 * bytes, else 0 (validate.c). */
int parley__utf8_valid(const char *text, size_t max);

/*
 * Decode the UTF-8 sequence at the start of s (n bytes): well-formed as
 * RFC 3629 defines it (shortest form, no surrogates, at most U+10FFFF).
 * Shared by the update rules (validate.c) and the signed-note parser
 * (note.c).
 *
 * Returns:   its length (1-4) with *cp set to the code point, or 0 when
 *            the bytes are not well-formed UTF-8 (or n is 0).
 */
size_t parley__utf8_next(const uint8_t *s, size_t n, uint32_t *cp);

/*
 * Write a message (printf-style) into detail (may be NULL, cap bytes) and
 * return PARLEY_EINVALID: how validation and JSON input say which field
 * broke which rule (validate.c).
 */
int parley__invalid(char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct parley__filterbuf;

/*
 * What a subscriber wants: borrowed lists (empty lists match everything).
 * A filter made by parley_filter_new() owns its values in *own; one made
 * by library code on the stack or in a parley__filterbuf_t has own NULL
 * and cannot be added to.
 */
struct parley_filter {
    const char *const *negotiations;
    size_t n_negotiations;
    const char *const *parties;
    size_t n_parties;
    const uint32_t *phases;
    size_t n_phases;
    struct parley__filterbuf *own;
};

/* An entry of the current state and the seq holding it (entries.h). */
typedef struct parley__state_key {
    char negotiation[PARLEY_SLUG_MAX + 1];
    char party[PARLEY_SLUG_MAX + 1];
    uint32_t phase;
    uint64_t seq;
} parley__state_key_t;

/* What a subscriber or a query hands out. */
struct parley_event {
    parley_event_type_t type;
    uint64_t seq;                  /* see parley_event_seq() */
    uint64_t seq_last;             /* GAP: last seq gone */
    int code;                      /* REJECTED, DISCONNECTED */
    const char *endpoint;          /* CONNECTED, DISCONNECTED (borrowed) */
    struct parley_delivery delivery; /* DELIVERY */
    char *evidence;                /* LOG_INCONSISTENT, LOG_STALE, a
                                      rejected checkpoint (owned) */
    parley_checkpoint_t *checkpoint; /* LOG_VERIFIED, LOG_STALE (owned) */
    const parley__state_key_t *entries; /* DELIVERY of a snapshot: the
                                      entries it holds (borrowed) */
    size_t n_entries;
};

/* Set *ev to an event of type with seq (seq_last = seq), no delivery; the
 * delivery's owned envelope buffer is kept for reuse, the evidence and
 * checkpoint of the event before are freed. */
void parley__event_set(parley_event_t *ev, parley_event_type_t type,
                       uint64_t seq);

/* Free everything an event owns (when its object goes). */
void parley__event_release(parley_event_t *ev);

#endif /* PARLEY_TYPES_H */
