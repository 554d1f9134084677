/*
 * parley.h - public API of libparley 1.
 *
 * libparley signs, verifies, publishes and subscribes to negotiation-status
 * updates carried by parleyd. Everything a program needs is declared here;
 * a symbol not documented in this file is not API.
 *
 * Conventions
 *
 *   Return values. A function that can fail returns an int: 0 (or a count,
 *   or another value >= 0 it documents) on success, and a negative code on
 *   failure: a PARLEY_E* value below, or -errno for a system error.
 *   parley_error_name() and parley_strerror() name either kind. Every
 *   function lists the codes it can return.
 *
 *   Constructors (parley_*_new, _load, _generate, _parse, _from_seed)
 *   return the object, or NULL with errno set to the positive code, so
 *   that parley_strerror(-errno) describes the failure. Destructors take
 *   the address of the pointer, accept NULL or a pointer to NULL, and set
 *   the pointer to NULL.
 *
 *   Parameter order. The object a function acts on comes first, then its
 *   other inputs, then an options struct, then the output parameters, last
 *   of all. A buffer for a message ("detail") and its capacity are output
 *   parameters; they may be NULL and 0.
 *
 *   Options. Calls that talk to parleyd take an options struct whose first
 *   field is its own size. Declare it with its _INIT macro, which sets the
 *   size and leaves every other field 0; a field left 0 takes its
 *   documented default. A NULL options pointer means all defaults. A
 *   library older than the header a program was built with accepts the
 *   larger struct as long as the fields it does not know are 0.
 *
 *   Timeouts. A timeout_ms argument: > 0 waits at most that many
 *   milliseconds, 0 does not wait (only what has already arrived counts),
 *   -1 waits without limit. In an options struct, 0 means the default
 *   (PARLEY_TIMEOUT_DEFAULT_MS) and -1 no limit.
 *
 *   Endpoints. Where parleyd's api endpoint is asked for, a list of
 *   endpoints separated by commas may be given ("tcp://a:7710,tcp://b:7710");
 *   NULL means the environment variable PARLEY_SERVER (same format) if it
 *   is set and not empty, else PARLEY_DEFAULT_SERVER. The library moves to
 *   the next endpoint of the list when one does not answer.
 *
 *   Threads. An object may be used by one thread at a time; distinct
 *   objects may be used from distinct threads at once. Objects that are
 *   only read after they are made may be shared between threads, and are
 *   marked so: parley_key_t, parley_keyring_t, parley_curve_t,
 *   parley_filter_t (once built) and const parley_update_t. Functions that
 *   take no object are safe from any thread, except that reading
 *   PARLEY_SERVER must not race with setenv().
 *
 *   Sizes. Public types are opaque, so no struct a program allocates
 *   changes size when a limit changes; the limits below are the rules of
 *   the wire format, and buffers a program passes come with their capacity.
 *
 *   The library never prints and never aborts on bad input.
 */
#ifndef PARLEY_H
#define PARLEY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PARLEY_EXPORT __attribute__((visibility("default")))
#define PARLEY_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define PARLEY_EXPORT
#define PARLEY_WARN_UNUSED
#endif

#define PARLEY_VERSION "1.5.0"
#define PARLEY_VERSION_MAJOR 1
#define PARLEY_VERSION_MINOR 5
#define PARLEY_VERSION_PATCH 0

/*
 * The version of the library running, which may be newer than the header
 * a program was built with.
 *
 * Returns:   a static string such as "1.0.0".
 * Threads:   safe.
 */
PARLEY_EXPORT const char *parley_version(void);

/* Opaque types, described where their functions are. */
typedef struct parley_update parley_update_t;
typedef struct parley_delivery parley_delivery_t;
typedef struct parley_key parley_key_t;
typedef struct parley_keyring parley_keyring_t;
typedef struct parley_filter parley_filter_t;
typedef struct parley_curve parley_curve_t;
typedef struct parley_event parley_event_t;
typedef struct parley_pub parley_pub_t;
typedef struct parley_sub parley_sub_t;
typedef struct parley_info parley_info_t;
typedef struct parley_stats parley_stats_t;
typedef struct parley_query parley_query_t;
typedef struct parley_checkpoint parley_checkpoint_t;
typedef struct parley_witness parley_witness_t;
typedef struct parley_state parley_state_t;

/* ---------------------------------------------------------------- limits */

#define PARLEY_SLUG_MAX 32        /* bytes in a slug, without the NUL */
#define PARLEY_PARTIES_MAX 16     /* parties named by one update */
#define PARLEY_PHASE_MAX 255      /* phases are 0..255; 0 = the whole deal */
#define PARLEY_HEADLINE_MAX 200   /* bytes of UTF-8 */
#define PARLEY_BODY_MAX 4096      /* bytes of UTF-8 */
#define PARLEY_LOCATION_MAX 200   /* bytes of UTF-8 */
#define PARLEY_REFERENCES_MAX 16  /* seqs a correction/retraction replaces */
#define PARLEY_PUBLICKEY_BYTES 32 /* Ed25519, fixed by the algorithm */
#define PARLEY_SIGNATURE_BYTES 64 /* Ed25519, fixed by the algorithm */
#define PARLEY_KEYID_CHARS 16     /* hex chars of a key id, without the NUL */
#define PARLEY_TOPIC_MAX 48       /* bytes of a topic string, with the NUL */
#define PARLEY_TOPICS_MAX (3 + PARLEY_PARTIES_MAX) /* topics of one update */
/* The context string every signature covers, followed by one 0x00 byte. */
#define PARLEY_SIGN_CONTEXT "parley/update/v1"
/* Per-request timeout that options fields left 0 stand for. */
#define PARLEY_TIMEOUT_DEFAULT_MS 5000

/* Upper bound of a serialized SignedUpdate made from a valid update, for
 * buffers sized at compile time. */
#define PARLEY_ENVELOPE_MAX 8192

/*
 * The same bound as the library running counts it: what parley_sign()
 * needs. A later 1.x library never returns less than PARLEY_ENVELOPE_MAX
 * of 1.0, so a buffer of that size stays enough for updates within these
 * limits.
 *
 * Threads:   safe.
 */
PARLEY_EXPORT size_t parley_envelope_max(void);

/* ---------------------------------------------------------------- errors */

/*
 * Error codes. The first thirteen are the reasons parleyd refuses a
 * request (the first nine in the order it checks an update); the rest are
 * failures of the library. They are far from the errno range, so -errno
 * values and PARLEY_E* values never collide.
 */
enum {
    PARLEY_ETOOLARGE = -1001,     /* message over the size limit */
    PARLEY_EMALFORMED = -1002,    /* bytes that do not decode */
    PARLEY_EUNKNOWNSIGNER = -1003,/* signer not in the keyring */
    PARLEY_EBADSIG = -1004,       /* signature does not verify */
    PARLEY_EINVALID = -1005,      /* update decodes but breaks a rule */
    PARLEY_EFORBIDDEN = -1006,    /* signer may not publish this, or
                                     client may not ask it (stats) */
    PARLEY_ESTALE = -1007,        /* issued_at too far in the past */
    PARLEY_EFUTURE = -1008,       /* issued_at too far in the future */
    PARLEY_EREPLAY = -1009,       /* signer_seq not above the last accepted */
    PARLEY_ETRUNCATED = -1010,    /* data no longer held by the daemon */
    PARLEY_EUNAVAILABLE = -1011,  /* daemon cannot serve this right now */
    PARLEY_EBADREQUEST = -1012,   /* request the daemon does not understand */
    PARLEY_ERATELIMITED = -1013,  /* signer over its rate limit */
    PARLEY_ETIMEOUT = -1014,      /* no answer within the timeout */
    PARLEY_EKEYPERM = -1015,      /* secret key file readable by others */
    PARLEY_EKEYFILE = -1016,      /* key file has the wrong format */
    PARLEY_EKEYRING = -1017,      /* keyring text has an error */
    PARLEY_EPROTO = -1018,        /* peer answered something unexpected */
    PARLEY_EARG = -1019,          /* invalid argument */
    PARLEY_EINCONSISTENT = -1020, /* the log's signed checkpoints or proofs
                                     contradict each other (1.3) */
    PARLEY_EUNWITNESSED = -1021,  /* a checkpoint lacks the witness
                                     cosignatures the policy needs (1.3) */
};

/* A publish that parleyd answered with the seq it had already given these
 * exact bytes (a resend after a lost answer): success, like 0. */
#define PARLEY_DUPLICATE 1

/*
 * The short, stable name of a code: "bad_signature", "timeout" (the wire
 * name of a reject code) for PARLEY_E* values, the errno name for -errno
 * values ("EACCES"), "ok" for 0 and "duplicate" for PARLEY_DUPLICATE.
 *
 * Returns:   a static string; never NULL ("unknown_error" for other values).
 * Threads:   safe.
 */
PARLEY_EXPORT const char *parley_error_name(int err);

/*
 * Describe a code in a sentence for people: "signature does not verify"
 * for PARLEY_EBADSIG, strerror()'s text for -errno values.
 *
 * Returns:   a static string; never NULL.
 * Threads:   safe.
 */
PARLEY_EXPORT const char *parley_strerror(int err);

/*
 * Is it worth sending the same request again later? 1 for PARLEY_ETIMEOUT,
 * PARLEY_EUNAVAILABLE, PARLEY_ERATELIMITED, PARLEY_EFUTURE (the same bytes
 * pass once the daemon's clock has caught up with issued_at), -EAGAIN,
 * -EINTR and -ENOMEM; 0 for every other code, which the same request will
 * meet again (a resent publish that was accepted meanwhile is answered
 * PARLEY_DUPLICATE, so resending after a timeout never publishes twice).
 *
 * Returns:   1 or 0 (0 also for 0 and PARLEY_DUPLICATE).
 * Threads:   safe.
 */
PARLEY_EXPORT int parley_error_retryable(int err);

/* --------------------------------------------------------------- updates */

typedef enum {
    PARLEY_STATUS_UNSPECIFIED = 0,
    PARLEY_STATUS_PROPOSED = 1,
    PARLEY_STATUS_TALKS_SCHEDULED = 2,
    PARLEY_STATUS_TALKS_IN_PROGRESS = 3,
    PARLEY_STATUS_AWAITING_RESPONSE = 4,
    PARLEY_STATUS_COUNTER_PROPOSAL = 5,
    PARLEY_STATUS_AGREED_IN_PRINCIPLE = 6,
    PARLEY_STATUS_SIGNED = 7,
    PARLEY_STATUS_IN_EFFECT = 8,
    PARLEY_STATUS_COMPLETED = 9,
    PARLEY_STATUS_STALLED = 10,
    PARLEY_STATUS_SUSPENDED = 11,
    PARLEY_STATUS_COLLAPSED = 12,
} parley_status_t;

typedef enum {
    PARLEY_KIND_UPDATE = 0,
    PARLEY_KIND_CORRECTION = 1,
    PARLEY_KIND_RETRACTION = 2,
} parley_kind_t;

/* Name of a status ("agreed_in_principle"), or NULL if out of range. */
PARLEY_EXPORT const char *parley_status_name(parley_status_t s);

/* Parse a status name. Returns 0 or PARLEY_EINVALID. Threads: safe. */
PARLEY_EXPORT int parley_status_parse(const char *name, parley_status_t *out)
    PARLEY_WARN_UNUSED;

/* Name of a kind ("correction"), or NULL if out of range. */
PARLEY_EXPORT const char *parley_kind_name(parley_kind_t k);

/* Parse a kind name. Returns 0 or PARLEY_EINVALID. Threads: safe. */
PARLEY_EXPORT int parley_kind_parse(const char *name, parley_kind_t *out)
    PARLEY_WARN_UNUSED;

/* Returns 1 if s is a slug ([a-z0-9][a-z0-9-]{0,31}), else 0. */
PARLEY_EXPORT int parley_slug_valid(const char *s);

/* Current time in unix milliseconds (CLOCK_REALTIME). Threads: safe. */
PARLEY_EXPORT int64_t parley_now_ms(void);

/*
 * A negotiation-status update: what a source says. Opaque; made empty by
 * parley_update_new(), filled by the setters (or parley_update_from_json),
 * read by the getters. Strings are UTF-8.
 *
 * Threads:   a const parley_update_t may be read by several threads.
 */

/*
 * Make an empty update: no negotiation, no parties, phase 0, status
 * unspecified, kind update, every time 0, signer_seq 0.
 *
 * Returns:   the update, or NULL with errno ENOMEM.
 * Ownership: the caller's; free with parley_update_destroy().
 */
PARLEY_EXPORT parley_update_t *parley_update_new(void);

/*
 * Make a copy of u.
 *
 * Returns:   the copy, or NULL with errno ENOMEM (or PARLEY_EARG's code
 *            for a NULL u).
 * Ownership: the caller's; free with parley_update_destroy().
 */
PARLEY_EXPORT parley_update_t *parley_update_dup(const parley_update_t *u);

/* Free an update; *u becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_update_destroy(parley_update_t **u);

/* Make u empty again, as parley_update_new() made it. */
PARLEY_EXPORT void parley_update_reset(parley_update_t *u);

/*
 * Setters. Each checks what it can check alone and leaves u as it was on
 * failure; the rules that span fields (a headline is required, references
 * go with corrections and retractions, expires_at after issued_at) are
 * checked by parley_update_validate() and before signing.
 *
 * Returns:   0, or PARLEY_EINVALID (a value that breaks the field's rule:
 *            not a slug, over its length, not UTF-8, out of range, a 17th
 *            party or a party named twice, a 17th reference, a reference
 *            of 0 or over INT64_MAX), or PARLEY_EARG (NULL u or string).
 */
PARLEY_EXPORT int parley_update_set_negotiation(parley_update_t *u,
                                                const char *slug)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_add_party(parley_update_t *u, const char *slug)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT void parley_update_clear_parties(parley_update_t *u);
PARLEY_EXPORT int parley_update_set_phase(parley_update_t *u, uint32_t phase)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_set_status(parley_update_t *u,
                                           parley_status_t status)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_set_kind(parley_update_t *u, parley_kind_t kind)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_add_reference(parley_update_t *u, uint64_t seq)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT void parley_update_clear_references(parley_update_t *u);
PARLEY_EXPORT int parley_update_set_headline(parley_update_t *u,
                                             const char *text)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_set_body(parley_update_t *u, const char *text)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_set_location(parley_update_t *u,
                                             const char *text)
    PARLEY_WARN_UNUSED;
/* Times in unix ms: scheduled_at and expires_at 0 = none, never negative;
 * issued_at 0 = "now" when published. */
PARLEY_EXPORT int parley_update_set_scheduled_at(parley_update_t *u,
                                                 int64_t ms)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_set_issued_at(parley_update_t *u, int64_t ms)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_update_set_expires_at(parley_update_t *u, int64_t ms)
    PARLEY_WARN_UNUSED;
/* 0 = chosen by the publisher (see parley_pub_publish()). */
PARLEY_EXPORT int parley_update_set_signer_seq(parley_update_t *u,
                                               uint64_t signer_seq)
    PARLEY_WARN_UNUSED;

/*
 * Getters. Strings stay valid until u is changed or freed; "" when unset.
 * parley_update_party() and parley_update_reference() return NULL and 0
 * for an index past the count.
 */
PARLEY_EXPORT const char *parley_update_negotiation(const parley_update_t *u);
PARLEY_EXPORT size_t parley_update_party_count(const parley_update_t *u);
PARLEY_EXPORT const char *parley_update_party(const parley_update_t *u,
                                              size_t i);
PARLEY_EXPORT uint32_t parley_update_phase(const parley_update_t *u);
PARLEY_EXPORT parley_status_t parley_update_status(const parley_update_t *u);
PARLEY_EXPORT parley_kind_t parley_update_kind(const parley_update_t *u);
PARLEY_EXPORT size_t parley_update_reference_count(const parley_update_t *u);
PARLEY_EXPORT uint64_t parley_update_reference(const parley_update_t *u,
                                               size_t i);
PARLEY_EXPORT const char *parley_update_headline(const parley_update_t *u);
PARLEY_EXPORT const char *parley_update_body(const parley_update_t *u);
PARLEY_EXPORT const char *parley_update_location(const parley_update_t *u);
PARLEY_EXPORT int64_t parley_update_scheduled_at(const parley_update_t *u);
PARLEY_EXPORT int64_t parley_update_issued_at(const parley_update_t *u);
PARLEY_EXPORT int64_t parley_update_expires_at(const parley_update_t *u);
PARLEY_EXPORT uint64_t parley_update_signer_seq(const parley_update_t *u);

/*
 * Check an update against every schema rule: negotiation a slug; 1-16
 * distinct party slugs; phase 0-255; a known status other than
 * unspecified, and kind; headline 1-200 bytes, body 0-4096, location
 * 0-200, all valid UTF-8 without NUL; references (each 1 to INT64_MAX)
 * present exactly when kind is correction or retraction; issued_at > 0;
 * signer_seq 1 to INT64_MAX; scheduled_at >= 0; expires_at 0 or after
 * issued_at. (64-bit values stay within INT64_MAX so that every JSON tool
 * reads them exactly.)
 *
 * Returns:   0 or PARLEY_EINVALID, with a sentence that starts with the
 *            field's name in detail ("headline: required, 1-200 bytes").
 * Threads:   safe for a const u.
 */
PARLEY_EXPORT int parley_update_validate(const parley_update_t *u,
                                         char *detail, size_t cap)
    PARLEY_WARN_UNUSED;

/*
 * Fill an update from a JSON object with the fields of StatusUpdate
 * ("parties" and "references" arrays, "status" and "kind" by name, times
 * in unix ms). Fields not given stay as they were in u.
 *
 * Returns:   0, PARLEY_EINVALID with the field named in detail ("phase:
 *            out of range", "not JSON: ..."), or PARLEY_EARG.
 */
PARLEY_EXPORT int parley_update_from_json(const char *json, parley_update_t *u,
                                          char *detail, size_t cap)
    PARLEY_WARN_UNUSED;

/*
 * Write the feed topics of an update, in the order the daemon sends them:
 * "all/", "neg/<n>/", "party/<p>/" for each party, "phase/<n>/".
 *
 * Returns:   the number of topics the update has; at most cap are written
 *            (PARLEY_TOPICS_MAX always suffices for a valid update).
 */
PARLEY_EXPORT size_t parley_topics(const parley_update_t *u,
                                   char out[][PARLEY_TOPIC_MAX], size_t cap);

/* ------------------------------------------------------------ deliveries */

/*
 * A verified update as the daemon delivered it: the update, the seq and
 * time the daemon gave it, and who signed it. Opaque.
 *
 * Threads:   a const parley_delivery_t may be read by several threads.
 */

/*
 * Make an empty delivery, to decode into with parley_delivery_decode().
 *
 * Returns:   the delivery, or NULL with errno ENOMEM.
 * Ownership: the caller's; free with parley_delivery_destroy().
 */
PARLEY_EXPORT parley_delivery_t *parley_delivery_new(void);

/*
 * Make a copy of d (for instance to keep a delivery an event handed out).
 *
 * Returns:   the copy, or NULL with errno ENOMEM (or PARLEY_EARG's code).
 * Ownership: the caller's; free with parley_delivery_destroy().
 */
PARLEY_EXPORT parley_delivery_t *parley_delivery_dup(const parley_delivery_t *d);

/* Free a delivery; *d becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_delivery_destroy(parley_delivery_t **d);

/*
 * Getters. What they return belongs to d and stays valid until d is
 * freed or decoded into again; a NULL d gives 0, "" or NULL.
 */

/* The daemon's log sequence number. */
PARLEY_EXPORT uint64_t parley_delivery_seq(const parley_delivery_t *d);
/* When the daemon accepted it, unix ms, daemon clock. */
PARLEY_EXPORT int64_t parley_delivery_received_at(const parley_delivery_t *d);
/* The signer's Ed25519 public key (PARLEY_PUBLICKEY_BYTES bytes). */
PARLEY_EXPORT const uint8_t *parley_delivery_signer(const parley_delivery_t *d);
/* The signer's key id, 16 hex chars. */
PARLEY_EXPORT const char *parley_delivery_signer_id(const parley_delivery_t *d);
/* The signer's name in the keyring it was verified with, "" if none. */
PARLEY_EXPORT const char *parley_delivery_signer_name(const parley_delivery_t *d);
/* The update; valid as long as d. */
PARLEY_EXPORT const parley_update_t *
parley_delivery_update(const parley_delivery_t *d);

/*
 * The signed bytes (SignedUpdate) as the signer made them, for a program
 * that passes updates on so that others can verify them themselves
 * (parley_verify()).
 *
 * Returns:   the bytes, valid as long as d (and until d is decoded into
 *            again), with *len set; NULL and 0 for an empty delivery.
 */
PARLEY_EXPORT const void *parley_delivery_envelope(const parley_delivery_t *d,
                                                   size_t *len);

/*
 * Decode a Delivery (as carried by the feed, replay and snapshot) into
 * out and verify the update inside it with parley_verify().
 *
 * Returns:   0, PARLEY_EMALFORMED, a code of parley_verify(), PARLEY_EARG
 *            or -ENOMEM. On failure out is empty.
 */
PARLEY_EXPORT int parley_delivery_decode(const parley_keyring_t *ring,
                                         const void *buf, size_t len,
                                         parley_delivery_t *out)
    PARLEY_WARN_UNUSED;

/*
 * Encode a delivery as one line of JSON (no newline), with fields
 * seq, received_at, negotiation, parties, phase, status, kind, references,
 * headline, body, location, scheduled_at, issued_at, expires_at,
 * signer_seq, signer, signer_id, signer_name, and, when the delivery
 * holds its envelope (any delivery from the daemon does), signed_body and
 * signature: base64 of the signed bytes and of the signature, so that a
 * reader can verify the line (docs/protocol.md section 12). (1.1)
 *
 * Returns:   a string, or NULL with errno set (ENOMEM, EINVAL).
 * Ownership: the caller's; free with free().
 */
PARLEY_EXPORT char *parley_delivery_to_json(const parley_delivery_t *d);

/* ------------------------------------------------------------------ keys */

/*
 * An Ed25519 key pair; the secret half lives in guarded memory (no swap,
 * no core dumps, wiped when freed).
 *
 * Threads:   a key may be shared by several threads and publishers at
 *            once: signing only reads it, and the signer_seq sequencer of
 *            its public key (one per process, see parley_pub_publish())
 *            is locked.
 */

/*
 * Make a new random key pair.
 *
 * Returns:   the key, or NULL with errno ENOMEM or ENOSYS (libsodium does
 *            not initialise).
 * Ownership: the caller's; free with parley_key_destroy().
 */
PARLEY_EXPORT parley_key_t *parley_key_generate(void);

/*
 * Make the key pair determined by a 32-byte seed (for test vectors).
 *
 * Returns:   the key, or NULL with errno as parley_key_generate().
 * Ownership: the caller's; free with parley_key_destroy().
 */
PARLEY_EXPORT parley_key_t *parley_key_from_seed(const uint8_t seed[32]);

/*
 * Load a secret key file. The file must be a regular file owned by the
 * calling user with no group or other permission bits (0600 or 0400).
 *
 * Returns:   the key, or NULL with errno set: EKEYPERM (mode or owner),
 *            EKEYFILE (format), ENOSYS, ENOMEM or another system error.
 * Ownership: the caller's; free with parley_key_destroy().
 */
PARLEY_EXPORT parley_key_t *parley_key_load(const char *path);

/*
 * Write the secret key to path (mode 0600, created exclusively unless
 * overwrite is non-zero) and the public key to path.pub with comment
 * (may be NULL). Both files are fsync'd. With overwrite, an existing file
 * is replaced by a new one renamed over it (never written into), and one
 * owned by another user is refused.
 *
 * Returns:   0, -EEXIST if path exists (and overwrite is 0), -EPERM if
 *            path or path.pub belongs to another user, PARLEY_EARG, or
 *            another -errno.
 */
PARLEY_EXPORT int parley_key_save(const parley_key_t *key, const char *path,
                                  const char *comment, int overwrite)
    PARLEY_WARN_UNUSED;

/* Copy the public half of key into out. */
PARLEY_EXPORT void parley_key_public(const parley_key_t *key,
                                     uint8_t out[PARLEY_PUBLICKEY_BYTES]);

/* Wipe and free a key; *key becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_key_destroy(parley_key_t **key);

/*
 * Write the key id of a public key (first 8 bytes of BLAKE2b-256 of the
 * key, as 16 lowercase hex chars and a NUL) into out.
 */
PARLEY_EXPORT void parley_key_id(const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                                 char out[PARLEY_KEYID_CHARS + 1]);

/*
 * Parse a public key: base64 of 32 bytes, optionally followed by a space
 * and a comment (the NAME.pub line format).
 *
 * Returns:   0, PARLEY_EKEYFILE or -ENOSYS.
 */
PARLEY_EXPORT int parley_pubkey_parse(const char *text,
                                      uint8_t out[PARLEY_PUBLICKEY_BYTES])
    PARLEY_WARN_UNUSED;

/* Read a NAME.pub file. Returns 0, PARLEY_EKEYFILE or -errno. */
PARLEY_EXPORT int parley_pubkey_load(const char *path,
                                     uint8_t out[PARLEY_PUBLICKEY_BYTES])
    PARLEY_WARN_UNUSED;

/* Format a public key as base64 (44 chars and a NUL) into out. */
PARLEY_EXPORT void parley_pubkey_format(const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                                        char out[45]);

/*
 * Choose the next signer_seq for the key at key_path and record it, so
 * that separate and concurrent processes never hand out one twice: the
 * value is max(last recorded + 1, now in microseconds), kept in
 * key_path + ".seq" under an exclusive lock and fsync'd before it is
 * returned. (A publisher does this itself with the seq_file option.)
 *
 * Returns:   0 with *out set, -EOVERFLOW (the file holds INT64_MAX), or
 *            another -errno.
 */
PARLEY_EXPORT int parley_seqfile_next(const char *key_path, uint64_t *out)
    PARLEY_WARN_UNUSED;

/* ------------------------------------------------------------ signatures */

/*
 * Serialize an update and sign it into a SignedUpdate envelope, as it is.
 * (parley_pub_publish() also fills in issued_at and signer_seq; this does
 * not: both must be set.)
 *
 * Returns:   0 with *len set, PARLEY_EINVALID (the update breaks a rule:
 *            see parley_update_validate()), -ENOBUFS if cap is below the
 *            envelope's size (parley_envelope_max() always suffices), or
 *            PARLEY_EARG.
 * Threads:   safe; key and u are only read.
 */
PARLEY_EXPORT int parley_sign(const parley_key_t *key, const parley_update_t *u,
                              void *buf, size_t cap, size_t *len)
    PARLEY_WARN_UNUSED;

/*
 * Verify a SignedUpdate envelope and decode its update, in the order
 * parleyd checks: decode envelope (MALFORMED), signer in the keyring
 * (UNKNOWNSIGNER), signature (BADSIG), body decodes and validates
 * (INVALID), keyring permits it (FORBIDDEN). With ring NULL the signature
 * is checked against the embedded signer alone and no permissions apply.
 *
 * Returns:   0, the first failing code above, PARLEY_EARG or -ENOMEM.
 * Ownership: out (from parley_update_new()) and signer (may be NULL) are
 *            the caller's; out is overwritten.
 * Threads:   safe; ring is only read.
 */
PARLEY_EXPORT int parley_verify(const parley_keyring_t *ring, const void *buf,
                                size_t len, parley_update_t *out,
                                uint8_t signer[PARLEY_PUBLICKEY_BYTES])
    PARLEY_WARN_UNUSED;

/*
 * Take a SignedUpdate envelope apart: the signed body (the StatusUpdate
 * bytes exactly as signed), the signer's public key and the signature,
 * for a program that passes an update on in another form (JSON, say) so
 * that others can check the signature over "parley/update/v1" || 0x00 ||
 * body themselves. Nothing is verified here (see parley_verify()).
 *
 * Returns:   0 with *body_len set; PARLEY_EMALFORMED (the bytes do not
 *            decode, the key is not 32 bytes, the signature not 64, the
 *            body is empty); -ENOBUFS with *body_len set to the body's
 *            size when it exceeds cap (PARLEY_ENVELOPE_MAX suffices for
 *            an envelope of a valid update); PARLEY_EARG.
 * Threads:   safe.
 */
PARLEY_EXPORT int
parley_envelope_unpack(const void *env, size_t len, void *body, size_t cap,
                       size_t *body_len, uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                       uint8_t signature[PARLEY_SIGNATURE_BYTES])
    PARLEY_WARN_UNUSED;

/*
 * Put a signed body, the signer's public key and the signature together
 * into a SignedUpdate envelope (what parleyd takes), as they are: the
 * reverse of parley_envelope_unpack(). Nothing is checked but the sizes;
 * the daemon verifies.
 *
 * Returns:   0 with *len set, -ENOBUFS if cap is too small (body_len +
 *            128 always suffices), or PARLEY_EARG (an empty body).
 * Threads:   safe.
 */
PARLEY_EXPORT int
parley_envelope_pack(const void *body, size_t body_len,
                     const uint8_t signer[PARLEY_PUBLICKEY_BYTES],
                     const uint8_t signature[PARLEY_SIGNATURE_BYTES], void *buf,
                     size_t cap, size_t *len) PARLEY_WARN_UNUSED;

/*
 * An envelope as one line of JSON (no newline), for programs and
 * browsers that do not speak protobuf:
 *   {"signed_body":"<base64>","signature":"<base64>","signer":"<base64>"}
 * signed_body is the StatusUpdate bytes exactly as signed, signature the
 * 64-byte Ed25519 signature over "parley/update/v1" || 0x00 || those
 * bytes, signer the 32-byte public key; base64 is the standard alphabet
 * with padding. The same three fields stand beside the decoded fields in
 * the updates of parley-gateway (docs/http.md).
 *
 * Returns:   a string, or NULL with errno set (PARLEY_EMALFORMED's code:
 *            not an envelope; ENOMEM; ENOSYS).
 * Ownership: the caller's; free with free().
 * Threads:   safe.
 */
PARLEY_EXPORT char *parley_envelope_to_json(const void *env, size_t len);

/*
 * Make an envelope from its JSON form (above): a JSON object with
 * signed_body (1 to PARLEY_ENVELOPE_MAX bytes), signature and signer;
 * other fields are ignored, so an update as parley-gateway shows it may
 * be given whole. json need not be NUL-terminated. Nothing is verified
 * here; parleyd does.
 *
 * Returns:   0 with *len set; PARLEY_EMALFORMED with the reason in detail
 *            ("not JSON: ...", "signature: expected base64 (standard,
 *            padded) of 64 bytes"); -ENOBUFS (cap: PARLEY_ENVELOPE_MAX +
 *            128 always suffices); PARLEY_EARG; -ENOSYS.
 * Threads:   safe.
 */
PARLEY_EXPORT int parley_envelope_from_json(const char *json, size_t len,
                                            void *buf, size_t cap, size_t *out_len,
                                            char *detail, size_t dcap)
    PARLEY_WARN_UNUSED;

/* --------------------------------------------------------------- keyring */

/*
 * Trusted signers and what each may publish.
 *
 * Threads:   a keyring may be shared by several threads and objects.
 */

/*
 * Parse keyring text: one signer per line,
 *   NAME PUBKEY_BASE64 negotiations=LIST parties=LIST phases=LIST
 * LIST is comma-separated or "*"; phases may hold ranges ("1-3").
 * Blank lines and lines starting with '#' are ignored. A name or a key
 * may appear once.
 *
 * Since 1.3 a keyring may also name transparency logs and witnesses
 * (docs/transparency.md):
 *   log: ORIGIN PUBKEY_BASE64 [witnesses=K] [max_staleness=SECONDS]
 *   witness: NAME PUBKEY_BASE64
 * A log line makes subscribers and one-shot calls that use the keyring
 * verify that log's checkpoints and proofs; witnesses=K asks for the
 * cosignatures of K of the keyring's witnesses on every checkpoint
 * trusted (default 0); max_staleness is how old the newest checkpoint
 * may get before PARLEY_EVENT_LOG_STALE (default 30 s, 0 = never).
 *
 * Returns:   the keyring, or NULL with errno set (EKEYRING for bad text,
 *            with a message naming the line in detail; ENOMEM).
 * Ownership: the caller's; free with parley_keyring_destroy().
 */
PARLEY_EXPORT parley_keyring_t *parley_keyring_parse(const char *text,
                                                     size_t len, char *detail,
                                                     size_t cap);

/*
 * Read and parse a keyring file; detail names file and line on error.
 *
 * Returns:   as parley_keyring_parse(), and errno of reading the file.
 * Ownership: the caller's; free with parley_keyring_destroy().
 */
PARLEY_EXPORT parley_keyring_t *parley_keyring_load(const char *path,
                                                    char *detail, size_t cap);

/* Free a keyring; *ring becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_keyring_destroy(parley_keyring_t **ring);

/* Number of signers. */
PARLEY_EXPORT size_t parley_keyring_size(const parley_keyring_t *ring);

/* Name of the signer with this key, or NULL if not in the keyring. */
PARLEY_EXPORT const char *
parley_keyring_name(const parley_keyring_t *ring,
                    const uint8_t pk[PARLEY_PUBLICKEY_BYTES]);

/*
 * The signers of a keyring one by one, i from 0 to parley_keyring_size()
 * - 1 in the order of the text, for a program that shows or passes on
 * who is trusted for what (an HTTP gateway's keyring page, say).
 *
 * parley_keyring_signer_name() and parley_keyring_signer_key() return
 * the name and the public key (PARLEY_PUBLICKEY_BYTES bytes), valid as
 * long as ring, or NULL past the end.
 */
PARLEY_EXPORT const char *parley_keyring_signer_name(const parley_keyring_t *ring,
                                                     size_t i);
PARLEY_EXPORT const uint8_t *
parley_keyring_signer_key(const parley_keyring_t *ring, size_t i);

/* The three lists of a keyring line. */
typedef enum {
    PARLEY_KEYRING_NEGOTIATIONS = 0,
    PARLEY_KEYRING_PARTIES = 1,
    PARLEY_KEYRING_PHASES = 2,
} parley_keyring_list_t;

/*
 * What signer i may publish, one list in the keyring's own form: "*" for
 * any, else the values separated by commas ("egypt,israel"); phases as
 * ranges in ascending order ("0-3,7"), "*" when every phase is allowed.
 *
 * Returns:   a string, or NULL with errno set: ENOENT (i past the end),
 *            PARLEY_EARG's code (which is not a list), ENOMEM.
 * Ownership: the caller's; free with free().
 */
PARLEY_EXPORT char *parley_keyring_signer_list(const parley_keyring_t *ring,
                                               size_t i,
                                               parley_keyring_list_t which);

/*
 * May this signer publish this update (negotiation, every party, phase)?
 *
 * Returns:   0, PARLEY_EUNKNOWNSIGNER or PARLEY_EFORBIDDEN.
 */
PARLEY_EXPORT int parley_keyring_allows(const parley_keyring_t *ring,
                                        const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                                        const parley_update_t *u)
    PARLEY_WARN_UNUSED;

/* --------------------------------------------------------------- filters */

/*
 * What a subscriber wants: lists of negotiations, parties and phases. An
 * update matches when each non-empty list holds one of its values: its
 * negotiation, any of its parties, its phase. An empty filter matches
 * everything. Several filters given together (parley_sub_options_t,
 * parley_call_options_t) match an update that matches any of them.
 *
 * Threads:   once built, a filter may be shared by several threads.
 */

/*
 * Make an empty filter (it matches every update).
 *
 * Returns:   the filter, or NULL with errno ENOMEM.
 * Ownership: the caller's; free with parley_filter_destroy().
 */
PARLEY_EXPORT parley_filter_t *parley_filter_new(void);

/* Free a filter; *f becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_filter_destroy(parley_filter_t **f);

/*
 * Add a value to one of the filter's lists (at most 64 per list; a value
 * given twice counts once).
 *
 * Returns:   0, PARLEY_EINVALID (not a slug, a phase over 255), -ENOBUFS
 *            (a 65th value) or PARLEY_EARG.
 */
PARLEY_EXPORT int parley_filter_add_negotiation(parley_filter_t *f,
                                                const char *slug)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_filter_add_party(parley_filter_t *f, const char *slug)
    PARLEY_WARN_UNUSED;
PARLEY_EXPORT int parley_filter_add_phase(parley_filter_t *f, uint32_t phase)
    PARLEY_WARN_UNUSED;

/* Returns 1 if the update matches the filter (NULL matches all), else 0. */
PARLEY_EXPORT int parley_filter_match(const parley_filter_t *f,
                                      const parley_update_t *u);

/*
 * Write the narrowest set of feed subscriptions that covers a filter: the
 * values of the dimension with the fewest values (parties before phases
 * before negotiations on a tie), or "all/" for an empty (or NULL) filter.
 * For a program that reads the feed with its own ZeroMQ socket.
 *
 * Returns:   the number written, or PARLEY_EARG if there are more than cap.
 */
PARLEY_EXPORT int parley_filter_topics(const parley_filter_t *f,
                                       char out[][PARLEY_TOPIC_MAX],
                                       size_t cap) PARLEY_WARN_UNUSED;

/* -------------------------------------------------------------- CurveZMQ */

/*
 * A daemon with `curve = on` encrypts and authenticates every connection
 * with CurveZMQ and lets in only the client keys it lists. A client then
 * needs the daemon's public key and a key pair of its own, all in
 * ZeroMQ's Z85 text form (40 characters for 32 bytes).
 *
 * Key files, as `parley keygen --curve -o NAME` writes them:
 *   NAME      secret, mode 0600:  "parley-curve-secret-key-v1" on the
 *             first line, then "public-key <Z85>" and "secret-key <Z85>"
 *   NAME.pub  one line: the Z85 public key, optionally a space and a
 *             comment (what goes into the daemon's curve_clients list)
 *
 * The keys go into the options of the calls that talk to parleyd (the
 * curve field); they are needed only while that call runs.
 *
 * Threads:   CURVE keys may be shared by several threads.
 */
#define PARLEY_CURVE_KEY_CHARS 40 /* Z85 text of a key, without the NUL */

/*
 * Load the keys a client needs: the daemon's public key from
 * server_key_path (its NAME.pub file) and this client's key pair from
 * client_key_path (a secret key file, which must be a regular file owned
 * by the calling user with no group or other permission bits).
 *
 * Returns:   the keys, or NULL with errno set: EKEYPERM (mode or owner of
 *            the secret file), EKEYFILE (format, or a public half that
 *            does not match the secret), EARG (a NULL path), ENOSYS,
 *            ENOMEM, or another system error.
 * Ownership: the caller's; free with parley_curve_destroy(). The secret
 *            is wiped when it is freed.
 */
PARLEY_EXPORT parley_curve_t *parley_curve_load(const char *server_key_path,
                                                const char *client_key_path);

/* Wipe and free CURVE keys; *curve becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_curve_destroy(parley_curve_t **curve);

/*
 * Make a new CURVE key pair and write it: the secret key file to path
 * (mode 0600, created exclusively unless overwrite is non-zero) and the
 * public key to path.pub with comment. Both files are fsync'd. The same
 * files serve a client (--curve-key) and the daemon (curve_secret_key).
 * overwrite replaces files as parley_key_save() does.
 *
 * Returns:   0 with the Z85 public key in public_z85 (may be NULL),
 *            -EEXIST if path or path.pub exists, -EPERM if one belongs to
 *            another user, PARLEY_EARG, -ENOSYS or another -errno.
 */
PARLEY_EXPORT int parley_curve_keygen(const char *path, const char *comment,
                                      int overwrite,
                                      char public_z85[PARLEY_CURVE_KEY_CHARS
                                                      + 1]) PARLEY_WARN_UNUSED;

/* ---------------------------------------------------------------- options */

/* Default api endpoint, used when neither the options nor PARLEY_SERVER
 * name one. */
#define PARLEY_DEFAULT_SERVER "tcp://127.0.0.1:7710"

#ifdef __cplusplus
#define PARLEY__OPTIONS_INIT(type) { sizeof(type) }
#else
#define PARLEY__OPTIONS_INIT(type) { .size = sizeof(type) }
#endif

/*
 * Options of the one-shot calls: parley_ping(), parley_stats(),
 * parley_snapshot(), parley_replay(). Declare with
 *   parley_call_options_t opt = PARLEY_CALL_OPTIONS_INIT;
 * Everything is copied or used during the call only.
 */
typedef struct parley_call_options {
    size_t size;                 /* sizeof(parley_call_options_t) */
    const char *server;          /* api endpoint list; NULL: PARLEY_SERVER,
                                    else PARLEY_DEFAULT_SERVER */
    const parley_curve_t *curve; /* CurveZMQ keys, or NULL for none */
    int timeout_ms;              /* per request and endpoint: 0 = default,
                                    -1 = no limit */
    const parley_filter_t *const *filters; /* snapshot, replay: updates
                                    matching any of these; none: all */
    size_t n_filters;            /* entries in filters (at most 16) */
    const parley_keyring_t *keyring; /* snapshot, replay: verify against
                                    it; NULL: the signature alone. A log:
                                    line makes a replay or snapshot prove
                                    every update it hands out included in
                                    the log's checkpoint (1.3) */
    unsigned flags;              /* PARLEY_CALL_* (1.3) */
} parley_call_options_t;
#define PARLEY_CALL_NO_LOG 0x1u  /* do not check the transparency log even
                                    if the keyring names it */
#define PARLEY_CALL_OPTIONS_INIT PARLEY__OPTIONS_INIT(parley_call_options_t)

/* Options of a publisher; PARLEY_PUB_OPTIONS_INIT. */
typedef struct parley_pub_options {
    size_t size;                 /* sizeof(parley_pub_options_t) */
    const char *server;          /* api endpoint list, as above */
    const parley_curve_t *curve; /* CurveZMQ keys, or NULL for none */
    int timeout_ms;              /* wait for an answer per attempt: 0 =
                                    default, -1 = no limit */
    int attempts;                /* sends of one request (the same bytes)
                                    before PARLEY_ETIMEOUT: 0 = 2, or one
                                    per endpoint if the list is longer */
    const char *seq_file;        /* also record each signer_seq the
                                    publisher chooses in this file, under a
                                    lock (as parley_seqfile_next()), so that
                                    other processes using the key never
                                    choose one twice; NULL: this process
                                    only. The CLI uses KEYFILE.seq. */
    size_t max_pending;          /* requests of parley_pub_send() not yet
                                    taken by parley_pub_recv(), at most:
                                    0 = 1024 */
} parley_pub_options_t;
#define PARLEY_PUB_OPTIONS_INIT PARLEY__OPTIONS_INIT(parley_pub_options_t)

/* Where a subscription starts. */
typedef enum {
    PARLEY_START_LIVE = 0,    /* updates published from now on */
    PARLEY_START_SEQ = 1,     /* every update from since_seq on, then live */
    PARLEY_START_LAST = 2,    /* current state (snapshot: each delivery
                                 says which entries it holds,
                                 parley_event_entry()), then live */
} parley_start_t;

/* parley_sub_options_t.flags */
#define PARLEY_SUB_NOWAIT 0x1u /* parley_sub_new() returns at once; the
                                  connection is made by parley_sub_next()
                                  and announced by PARLEY_EVENT_CONNECTED */
#define PARLEY_SUB_NO_LOG 0x2u /* do not verify the transparency log even
                                  if the keyring or log_pubkey names it */

/* Options of a subscriber; PARLEY_SUB_OPTIONS_INIT. */
typedef struct parley_sub_options {
    size_t size;                 /* sizeof(parley_sub_options_t) */
    const char *server;          /* api endpoint list, as above */
    const parley_curve_t *curve; /* CurveZMQ keys, or NULL for none */
    int timeout_ms;              /* per api request: 0 = default, -1 = no
                                    limit */
    const parley_filter_t *const *filters; /* updates matching any of
                                    these (each delivered once); none: all */
    size_t n_filters;            /* entries in filters (at most 16) */
    const parley_keyring_t *keyring; /* verify against it (borrowed: must
                                    outlive the subscriber); NULL: the
                                    signature alone */
    parley_start_t start;        /* where to start */
    uint64_t since_seq;          /* with PARLEY_START_SEQ */
    const char *feed;            /* the feed endpoint, instead of the one
                                    the daemon names (one server only) */
    int rcvhwm;                  /* feed receive queue limit in messages:
                                    0 = libzmq's default */
    int heartbeat_misses;        /* heartbeat intervals without one before
                                    the daemon counts as gone: 0 = 3 */
    unsigned flags;              /* PARLEY_SUB_* */
    /* The transparency log (1.3, docs/transparency.md). With a log known
     * (a keyring log: line, or the two fields below) the subscriber
     * verifies by default: every checkpoint's signature, consistency from
     * the last checkpoint it trusted, and the inclusion of every update it
     * hands out; PARLEY_EVENT_LOG_* say how that goes. */
    const char *log_origin;      /* the log's origin; NULL: the keyring's
                                    log line (it must have exactly one) */
    const uint8_t *log_pubkey;   /* its public key (PARLEY_PUBLICKEY_BYTES),
                                    with log_origin; NULL: the keyring's */
    const char *log_state;       /* file that keeps the last checkpoint
                                    trusted, read at start and written at
                                    each new one, so that a log rolled back
                                    or forked between runs is caught; NULL:
                                    none */
    int max_staleness_ms;        /* PARLEY_EVENT_LOG_STALE when the newest
                                    trusted checkpoint is older than this:
                                    0 = the keyring's or 30 s, -1 = never */
    int log_witnesses;           /* cosignatures of the keyring's witnesses
                                    a checkpoint needs: 0 = the keyring's
                                    witnesses=, -1 = none */
    /* Verification on several threads (1.4). A subscriber that is behind
     * (a replay catch-up, a burst on the feed) holds deliveries it hands
     * out in seq order; with verify_threads > 1, verify_threads - 1
     * threads of its own (named parley-verify) decode and verify the
     * next ones (up to 32 per thread ahead) while the caller's thread
     * hands out those before; the caller's thread, finding one of them
     * on the delivery it wants, verifies another meanwhile, so every
     * thread keeps a core busy. What is handed out does not change: the
     * same events in the same order, each delivery verified before it
     * is handed out, a failed one a PARLEY_EVENT_REJECTED with the same
     * code. The threads wait on a condition variable when there is
     * nothing to verify and are joined by parley_sub_destroy(). The
     * keyring must then be safe to read from several threads (a
     * parley_keyring_t is). */
    int verify_threads;          /* threads that verify, the caller's
                                    included: 0 or 1 = the caller's alone
                                    (the default, for lightweight
                                    clients), at most 64 */
} parley_sub_options_t;
#define PARLEY_SUB_OPTIONS_INIT PARLEY__OPTIONS_INIT(parley_sub_options_t)

/* -------------------------------------------------------- one-shot calls */

/*
 * Each call below asks the daemon once and returns; with an endpoint
 * list, an endpoint that does not answer within the timeout (or answers
 * PARLEY_EUNAVAILABLE) is left for the next one. The codes every call can
 * return, besides its own: PARLEY_ETIMEOUT (no endpoint answered),
 * -EACCES (the daemon refused this client's CURVE key), PARLEY_EPROTO
 * (one side uses CURVE and the other does not, or an answer that does
 * not decode), PARLEY_EARG (bad options, an endpoint libzmq cannot use),
 * -ENOMEM, -EINTR (a signal arrived while waiting).
 */

/*
 * Ask the daemon how it is: its feed endpoint, head seq and version.
 *
 * Returns:   0 with *out set, or a code above.
 * Ownership: *out is the caller's; free with parley_info_destroy().
 */
PARLEY_EXPORT int parley_ping(const parley_call_options_t *opt,
                              parley_info_t **out) PARLEY_WARN_UNUSED;

/* Getters; strings belong to info. The api endpoint that answered. */
PARLEY_EXPORT const char *parley_info_endpoint(const parley_info_t *info);
/* The feed endpoint to connect to (a wildcard host is replaced by the
 * host of the api endpoint). */
PARLEY_EXPORT const char *parley_info_feed(const parley_info_t *info);
/* 16 bytes that change at every daemon start. */
PARLEY_EXPORT const uint8_t *parley_info_daemon_id(const parley_info_t *info);
/*
 * 16 bytes naming the log the seqs belong to, the same on every node of
 * a cluster (docs/cluster.md), or NULL for a single daemon, whose log is
 * its own. (Since 1.5.)
 */
PARLEY_EXPORT const uint8_t *parley_info_log_id(const parley_info_t *info);
/* 1 if the daemon is a cluster node behind its cluster's log (it serves
 * what it holds; its head moves on as it catches up), else 0. (1.5) */
PARLEY_EXPORT int parley_info_catching_up(const parley_info_t *info);
/* Where the daemon keeps updates: "embedded" or "cluster" ("" from a
 * daemon before 1.5). (1.5) */
PARLEY_EXPORT const char *parley_info_storage(const parley_info_t *info);
/* "ok" while the daemon can take publishes, else why not ("no_quorum",
 * "disconnected", "store_error", ...; "" from a daemon before 1.5).
 * (1.5) */
PARLEY_EXPORT const char *parley_info_health(const parley_info_t *info);
/* The last seq assigned (0: none yet). */
PARLEY_EXPORT uint64_t parley_info_seq(const parley_info_t *info);
/* The oldest seq still held (0: none). */
PARLEY_EXPORT uint64_t parley_info_first_seq(const parley_info_t *info);
/* The daemon's version string. */
PARLEY_EXPORT const char *parley_info_version(const parley_info_t *info);
/* Free a ping answer; *info becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_info_destroy(parley_info_t **info);

/*
 * Fetch the daemon's counters (names and values; a program should ignore
 * names it does not know).
 *
 * Returns:   0 with *out set, or a code above.
 * Ownership: *out is the caller's; free with parley_stats_destroy().
 */
PARLEY_EXPORT int parley_stats(const parley_call_options_t *opt,
                               parley_stats_t **out) PARLEY_WARN_UNUSED;

/* Getters; strings belong to s. The api endpoint that answered. */
PARLEY_EXPORT const char *parley_stats_endpoint(const parley_stats_t *s);
/* Number of counters. */
PARLEY_EXPORT size_t parley_stats_count(const parley_stats_t *s);
/* Name of counter i, or NULL past the count. */
PARLEY_EXPORT const char *parley_stats_name(const parley_stats_t *s, size_t i);
/* Value of counter i, or 0 past the count. */
PARLEY_EXPORT uint64_t parley_stats_value(const parley_stats_t *s, size_t i);
/* Value of the counter called name. Returns 0 with *value set,
 * -ENOENT, or PARLEY_EARG. */
PARLEY_EXPORT int parley_stats_get(const parley_stats_t *s, const char *name,
                                   uint64_t *value) PARLEY_WARN_UNUSED;
/* Free counters; *s becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_stats_destroy(parley_stats_t **s);

/*
 * The current state, once: for each entry (negotiation, party, phase)
 * that matches the options' filters, the update holding its state after
 * corrections, retractions and expiry (docs/protocol.md sections 5 and
 * 8). The filters select entries: an update naming israel and hamas that
 * holds only the hamas entry is not part of a snapshot for israel. The
 * answer is fetched here; parley_query_next() hands out each update once,
 * verified, in seq order, with the entries it holds
 * (parley_event_entry()); parley_query_entry() lists them all, grouped.
 * An update naming several parties may hold the state of only some of
 * them: read the state from the entries, never from an update's parties.
 * (The parley_state_t table below does that for you.)
 *
 * Returns:   0 with *out set, PARLEY_EUNAVAILABLE (the state is too large
 *            for one answer: use filters), PARLEY_EPROTO also for a
 *            daemon that does not name the entries (a parleyd older than
 *            1.2), or a code above.
 * Ownership: *out is the caller's; free with parley_query_destroy().
 */
PARLEY_EXPORT int parley_snapshot(const parley_call_options_t *opt,
                                  parley_query_t **out) PARLEY_WARN_UNUSED;

/*
 * The updates from from_seq (0: 1) to to_seq that match the options'
 * filters, once. The range ends at the head as the first page sees it if
 * to_seq is 0 or above it, so that updates published meanwhile are not
 * part of it. The first page is fetched here, the rest by
 * parley_query_next() as it goes. Updates the daemon no longer holds are
 * handed out as one PARLEY_EVENT_GAP.
 *
 * Returns:   0 with *out set, PARLEY_EARG (to_seq below from_seq), or a
 *            code above.
 * Ownership: *out is the caller's; free with parley_query_destroy().
 */
PARLEY_EXPORT int parley_replay(uint64_t from_seq, uint64_t to_seq,
                                const parley_call_options_t *opt,
                                parley_query_t **out) PARLEY_WARN_UNUSED;

/*
 * The next event of a snapshot or replay: PARLEY_EVENT_DELIVERY,
 * PARLEY_EVENT_REJECTED (a delivery that failed verification, or, code
 * PARLEY_EPROTO, whose update does not name the entries the daemon says
 * it holds) or, for a replay, PARLEY_EVENT_GAP. A replay fetches its next
 * page here when it needs one, waiting up to the options' timeout per
 * endpoint.
 *
 * Returns:   1 with *ev set (valid until the next call or the query is
 *            freed), 0 at the end, or a code of the one-shot calls.
 */
PARLEY_EXPORT int parley_query_next(parley_query_t *q, const parley_event_t **ev)
    PARLEY_WARN_UNUSED;

/*
 * Snapshot: the seq the state reflects (the head when it was made).
 * Replay: the last seq of the range (known once the first page came).
 */
PARLEY_EXPORT uint64_t parley_query_seq(const parley_query_t *q);

/*
 * Snapshot: the number of entries of the state it holds (0 for a
 * replay). Entries whose update fails verification are counted here too;
 * parley_query_next() reports those updates as rejected.
 *
 * Threads:   as the query.
 */
PARLEY_EXPORT size_t parley_query_entry_count(const parley_query_t *q);

/*
 * Entry i of a snapshot, in the order negotiation, phase (numeric),
 * party, so that the entries of one negotiation and phase come together:
 * its key and the seq of the update holding its state. Any output may be
 * NULL.
 *
 * Returns:   0, or PARLEY_EARG (i past the count, or a NULL q).
 * Ownership: the strings belong to q and live as long as it.
 */
PARLEY_EXPORT int parley_query_entry(const parley_query_t *q, size_t i,
                                     const char **negotiation,
                                     const char **party, uint32_t *phase,
                                     uint64_t *seq);

/* Free a query; *q becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_query_destroy(parley_query_t **q);

/* ------------------------------------------------------ transparency log */

/*
 * parleyd keeps a Merkle tree over its log and signs a checkpoint of it
 * with every heartbeat; witnesses cosign checkpoints after checking that
 * each extends the last they saw (docs/transparency.md). A checkpoint is
 * a C2SP signed note; parley_checkpoint_t is one that verified against a
 * keyring's log: line.
 *
 * Threads:   a checkpoint is read-only once made and may be shared.
 */

/*
 * Verify a signed checkpoint against the keyring's log: and witness:
 * lines: the log's signature under the origin, the log's time stamp if
 * there is one, and the witness cosignatures the log line asks for.
 *
 * Returns:   0 with *out set, PARLEY_EMALFORMED or PARLEY_ETOOLARGE (not
 *            a checkpoint), PARLEY_EUNKNOWNSIGNER (no log: line for its
 *            origin, or not signed by that key), PARLEY_EBADSIG,
 *            PARLEY_EUNWITNESSED, -ENOMEM; detail (may be NULL) says why.
 * Ownership: *out is the caller's; free with parley_checkpoint_destroy().
 */
PARLEY_EXPORT int parley_checkpoint_verify(const parley_keyring_t *ring,
                                           const void *note, size_t len,
                                           parley_checkpoint_t **out,
                                           char *detail, size_t cap)
    PARLEY_WARN_UNUSED;

/*
 * Read a checkpoint saved in a file (a signed note as parleyd sends it,
 * or a subscriber's log_state file) and verify it as above.
 *
 * Returns:   as parley_checkpoint_verify(), or -errno of reading.
 * Ownership: *out is the caller's.
 */
PARLEY_EXPORT int parley_checkpoint_load(const parley_keyring_t *ring,
                                         const char *path,
                                         parley_checkpoint_t **out,
                                         char *detail, size_t cap)
    PARLEY_WARN_UNUSED;

/* Getters. The origin line (the log's name). */
PARLEY_EXPORT const char *parley_checkpoint_origin(const parley_checkpoint_t *cp);
/* The tree size: the checkpoint covers seqs 1..size. */
PARLEY_EXPORT uint64_t parley_checkpoint_size(const parley_checkpoint_t *cp);
/* The root hash, 32 bytes. */
PARLEY_EXPORT const uint8_t *parley_checkpoint_root(const parley_checkpoint_t *cp);
/* When the log stamped it (unix seconds), 0 if it has no stamp. */
PARLEY_EXPORT int64_t parley_checkpoint_time(const parley_checkpoint_t *cp);
/* Witnesses of the keyring whose cosignature on it verified. */
PARLEY_EXPORT size_t parley_checkpoint_cosigners(const parley_checkpoint_t *cp);
/* The signed note, as received (NUL-terminated; *len may be NULL). */
PARLEY_EXPORT const char *parley_checkpoint_note(const parley_checkpoint_t *cp,
                                                 size_t *len);
/* Free a checkpoint; *cp becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_checkpoint_destroy(parley_checkpoint_t **cp);

/*
 * Ask the daemon for its latest checkpoint and verify it against
 * opt->keyring (which must have a log: line).
 *
 * Returns:   0 with *out set, a code of parley_checkpoint_verify(), or a
 *            code of the one-shot calls.
 * Ownership: *out is the caller's.
 */
PARLEY_EXPORT int parley_log_checkpoint(const parley_call_options_t *opt,
                                        parley_checkpoint_t **out)
    PARLEY_WARN_UNUSED;

/*
 * Check that two checkpoints of one log can both be honest: the same
 * size must have the same root; otherwise the daemon is asked for the
 * consistency proof from the smaller to the larger (a daemon that cannot
 * give it because it no longer has the larger tree, which it signed
 * before the smaller, went back: a rollback). older and newer may come in
 * either order.
 *
 * Returns:   0 (consistent), PARLEY_EINCONSISTENT with *evidence set (the
 *            evidence text; see parley_event_evidence()), PARLEY_EARG
 *            (checkpoints of two origins), or a code of the one-shot calls.
 * Ownership: *evidence (may be NULL) is the caller's; free().
 */
PARLEY_EXPORT int parley_log_audit(const parley_call_options_t *opt,
                                   const parley_checkpoint_t *older,
                                   const parley_checkpoint_t *newer,
                                   char **evidence) PARLEY_WARN_UNUSED;

/*
 * Check an evidence text (from PARLEY_EVENT_LOG_INCONSISTENT or
 * LOG_STALE, or parley_log_audit()): its checkpoints against the keyring,
 * and what it claims. Two checkpoints of one size with two roots prove a
 * dishonest log on their own, and so does a rollback (a smaller one
 * signed later; for a cluster, only once its nodes have caught up); a
 * failed proof is asked of the daemon again when opt is not NULL.
 *
 * Returns:   PARLEY_EINCONSISTENT (the evidence proves the log dishonest),
 *            0 (it does not: the claim does not hold, or the daemon proved
 *            consistency when asked again), PARLEY_EMALFORMED (not evidence),
 *            a verification code of its checkpoints, or a code of the
 *            one-shot calls. verdict (may be NULL) receives a sentence.
 */
PARLEY_EXPORT int parley_evidence_check(const parley_keyring_t *ring,
                                        const char *text, size_t len,
                                        const parley_call_options_t *opt,
                                        char *verdict, size_t cap)
    PARLEY_WARN_UNUSED;

/* --------------------------------------------------------------- witness */

/*
 * A witness (c2sp.org/tlog-witness): it keeps the latest checkpoint it
 * cosigned for each log of its keyring and cosigns a new one only when a
 * consistency proof shows that the new one extends it. `parley witness`
 * serves one over HTTP; any HTTP server can (docs/transparency.md).
 */

/*
 * Make a witness that signs as name with key, for the logs of ring (its
 * log: lines), keeping its state in state_path (created if missing; one
 * line per origin, written atomically before each cosignature is given).
 *
 * Returns:   the witness, or NULL with errno set (EINVAL for a bad name
 *            or a ring without log: lines, EMALFORMED's code for a bad
 *            state file, or the errno of reading it).
 * Ownership: key and ring are borrowed and must outlive the witness.
 * Threads:   one thread at a time; a process should run one witness per
 *            state file.
 */
PARLEY_EXPORT parley_witness_t *parley_witness_new(const parley_key_t *key,
                                                   const char *name,
                                                   const parley_keyring_t *ring,
                                                   const char *state_path);

/* Free a witness; *w becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_witness_destroy(parley_witness_t **w);

/*
 * Handle one add-checkpoint request body: check it and answer as the
 * protocol says. out receives the response body, NUL-terminated (the
 * cosignature line on 200, the witness's size on 409, a reason
 * otherwise); *content_type the response's Content-Type.
 *
 * Returns:   the HTTP status: 200, 400 (malformed), 403 (no valid
 *            signature of the log), 404 (unknown log), 409 (old size is
 *            not the size last cosigned, or same size and another root),
 *            422 (the consistency proof does not verify), 500 (the state
 *            could not be saved).
 */
PARLEY_EXPORT int parley_witness_add_checkpoint(parley_witness_t *w,
                                                const void *body, size_t len,
                                                char *out, size_t cap,
                                                const char **content_type);

/* The tree size the witness last cosigned for origin (0 if none). */
PARLEY_EXPORT uint64_t parley_witness_size(const parley_witness_t *w,
                                           const char *origin);
/* ----------------------------------------------------------- state table */

/*
 * A table of the current state: for each entry (negotiation, party,
 * phase) the delivery holding its state, as parleyd says it
 * (docs/protocol.md section 5), kept current from a subscription. What
 * `parley state` prints, and what a dashboard shows.
 *
 * It is filled by a snapshot (parley_state_fetch(), or the snapshot a
 * subscriber with PARLEY_START_LAST starts with, fed through
 * parley_state_apply()) and kept current by the subscription's events:
 *
 *   - a live update is the newest record there is, so it holds every
 *     entry it names (that the table's filters want);
 *   - a live correction or retraction can bring back an older update for
 *     an entry, which the table may never have held (a retraction means
 *     "that was wrong", and the state goes back to what was true before
 *     it). The table does not keep the daemon's history: it asks the
 *     daemon for a new snapshot (one-shot, with its filters; this waits
 *     up to the options' timeout per endpoint) and takes that. So does a
 *     gap, or a delivery that fails verification.
 *
 * A correction or retraction may name other parties, phases or even
 * negotiations than the entries it changes; a subscription whose filters
 * are narrower than the table's does not see those, and the table then
 * stays as it was until its next fetch. Feed it from a subscription
 * without filters, or one at least as wide as the table's, for a table
 * that is always current. Start that subscription before the first
 * parley_state_fetch() (parley_sub_new() returns once it is live), or
 * let it start with PARLEY_START_LAST and feed it every event from its
 * first: deliveries the table already reflects are skipped.
 *
 * Entries are held in the order negotiation, phase (numeric), party:
 * walk them with parley_state_count() and parley_state_entry() and a
 * change of negotiation or phase starts a new group.
 *
 * An entry whose update has expired has no state (nothing older comes
 * back in its place); a fetch leaves such entries out, and
 * parley_state_expire() drops them from a table as time passes.
 *
 * Threads:   a table may be used by one thread at a time.
 */

/*
 * Make an empty table. The options say where to fetch snapshots from
 * (server, curve, timeout), with what filters (entries matching any of
 * them; none: all) and how to verify (keyring).
 *
 * Returns:   the table, or NULL with errno set: PARLEY_EARG's code (bad
 *            options: more than 16 filters, a NULL one, a timeout below
 *            -1), ENOMEM.
 * Ownership: the caller's; free with parley_state_destroy(). The server
 *            string and the filters are copied; curve and keyring are
 *            borrowed and must outlive the table.
 */
PARLEY_EXPORT parley_state_t *
parley_state_new(const parley_call_options_t *opt);

/* Free a table; *st becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_state_destroy(parley_state_t **st);

/*
 * Ask the daemon for its snapshot now (parley_snapshot()) and make the
 * table exactly that: every entry it holds that the filters want, with
 * its verified delivery. Deliveries that fail verification are left out
 * with their entries, and counted (parley_state_rejected()).
 *
 * Returns:   0; or a code of parley_snapshot() (PARLEY_ETIMEOUT,
 *            PARLEY_EUNAVAILABLE, PARLEY_EPROTO, -EACCES, -EINTR,
 *            -ENOMEM, ...), and then the table is as it was and marked
 *            stale (parley_state_stale()).
 * Threads:   one thread at a time per table; blocks up to the options'
 *            timeout per endpoint.
 */
PARLEY_EXPORT int parley_state_fetch(parley_state_t *st) PARLEY_WARN_UNUSED;

/*
 * Bring the table up to date with one event of a subscription: a
 * delivery of a snapshot sets the entries it holds; a live update the
 * entries it names; a correction, a retraction, a gap or a delivery that
 * failed verification make the table fetch a new snapshot (see above);
 * deliveries at or below parley_state_seq() are already reflected and
 * skipped; PARLEY_EVENT_CAUGHT_UP raises parley_state_seq() to its seq
 * (everything up to it was handed out); other events change nothing. A
 * stale table fetches first.
 *
 * Returns:   1 if the table changed (or was fetched again), 0 if not; or
 *            a code of parley_state_fetch() (the table is then stale and
 *            fetches again at the next call), -ENOMEM, PARLEY_EARG (NULL
 *            st or ev).
 * Ownership: ev is only read; what the table keeps, it copies.
 * Threads:   one thread at a time per table; may block as
 *            parley_state_fetch().
 */
PARLEY_EXPORT int parley_state_apply(parley_state_t *st,
                                     const parley_event_t *ev)
    PARLEY_WARN_UNUSED;

/*
 * Drop the entries whose update expires at or before now_ms (unix ms,
 * e.g. parley_now_ms()).
 *
 * Returns:   how many were dropped.
 */
PARLEY_EXPORT size_t parley_state_expire(parley_state_t *st, int64_t now_ms);

/* The number of entries the table holds. */
PARLEY_EXPORT size_t parley_state_count(const parley_state_t *st);

/*
 * Entry i (0 to parley_state_count() - 1, in the order negotiation,
 * phase, party): its key and the delivery holding its state. Any output
 * may be NULL.
 *
 * Returns:   the delivery, or NULL past the count.
 * Ownership: the delivery and the strings belong to the table and stay
 *            valid until the next parley_state_fetch(),
 *            parley_state_apply() or parley_state_expire() on it
 *            (parley_delivery_dup() keeps a copy).
 */
PARLEY_EXPORT const parley_delivery_t *
parley_state_entry(const parley_state_t *st, size_t i,
                   const char **negotiation, const char **party,
                   uint32_t *phase);

/* The seq of the log the table reflects: the snapshot's, the last
 * delivery applied since, or the seq of the subscriber's last
 * PARLEY_EVENT_CAUGHT_UP, whichever is highest. */
PARLEY_EXPORT uint64_t parley_state_seq(const parley_state_t *st);

/* Deliveries that failed verification since the table was made (their
 * entries are not shown). */
PARLEY_EXPORT size_t parley_state_rejected(const parley_state_t *st);

/* 1 if the last fetch failed and the table waits for the next one, else
 * 0. */
PARLEY_EXPORT int parley_state_stale(const parley_state_t *st);

/* ------------------------------------------------------------- publisher */

/*
 * A publisher holds one connection to an api endpoint of its list and
 * moves to the next one when an answer does not come within timeout_ms,
 * or the daemon answers PARLEY_EUNAVAILABLE; it then sends the same
 * bytes again (a daemon that already accepted them answers with the
 * original seq, PARLEY_DUPLICATE). Nothing here blocks except
 * parley_pub_publish() and a parley_pub_recv() that is asked to wait.
 */

/*
 * Make a publisher that signs with key. It connects in the background:
 * no daemon needs to be up yet. With a NULL key the publisher only
 * forwards envelopes signed elsewhere (a relay, such as an HTTP gateway):
 * parley_pub_send() and parley_pub_recv() work as with a key, and
 * parley_pub_publish() returns PARLEY_EARG.
 *
 * Returns:   the publisher, or NULL with errno set: PARLEY_EARG's code (bad
 *            options, a seq_file without a key, an endpoint libzmq cannot
 *            use), ENOMEM, or another system error.
 * Ownership: key (may be NULL) is borrowed and must outlive the
 *            publisher; the options are copied (curve is needed during
 *            this call only).
 * Threads:   publishers in several threads may share one key.
 */
PARLEY_EXPORT parley_pub_t *parley_pub_new(const parley_key_t *key,
                                           const parley_pub_options_t *opt);

/* Close and free a publisher; *pub becomes NULL. Accepts NULL. Requests
 * not yet answered are given up. */
PARLEY_EXPORT void parley_pub_destroy(parley_pub_t **pub);

/*
 * Sign and publish one update and wait for the daemon's answer. u is not
 * changed: an issued_at of 0 is published as now, and a signer_seq of 0
 * as the next value of the key's sequencer: max(last + 1, now in
 * microseconds), one sequencer per public key and process, shared by all
 * its publishers and threads (and with seq_file, by other processes).
 *
 * A signer_seq the library chose is kept out of harm's way: when the
 * daemon answers PARLEY_EREPLAY (another publisher of the same key got a
 * later value to it first, or the clock stepped back), the update is
 * signed again with a new value above the signer's last accepted one,
 * which the daemon names in its answer, and sent again (up to 64 times,
 * then PARLEY_EREPLAY is returned); when it answers PARLEY_EFUTURE the
 * value is given back, so that the next one does not carry a skewed
 * clock forward. A signer_seq the caller chose is sent as it is, once.
 *
 * Returns:   0 with *seq (may be NULL) the seq the daemon assigned,
 *            PARLEY_DUPLICATE with *seq the seq these bytes got before;
 *            or PARLEY_EINVALID before sending (parley_pub_detail() names
 *            the field), a reject code of the daemon (PARLEY_EBADSIG,
 *            PARLEY_EFORBIDDEN, ...; parley_pub_detail() has its text),
 *            PARLEY_ETIMEOUT (no answer after the attempts), -EACCES,
 *            PARLEY_EPROTO, -EAGAIN (max_pending requests of
 *            parley_pub_send() are not yet taken), -EINTR, -ENOMEM,
 *            PARLEY_EARG (also for a publisher without a key), or an error
 *            of the seq_file (-errno).
 * Threads:   one thread at a time per publisher.
 */
PARLEY_EXPORT int parley_pub_publish(parley_pub_t *pub, const parley_update_t *u,
                                     uint64_t *seq) PARLEY_WARN_UNUSED;

/*
 * Queue an already signed envelope (from parley_sign()) for the daemon
 * and return at once (pipelining): it goes out now if a daemon is
 * connected, else as soon as one is. Its answer comes from
 * parley_pub_recv(); if none comes within timeout_ms it is sent again
 * (to the next endpoint of a list), and after the attempts it is answered
 * PARLEY_ETIMEOUT. The envelope is copied. The signer_seq is the
 * caller's: a PARLEY_EREPLAY answer is passed on, not retried.
 *
 * Returns:   0 with *request_id (may be NULL) set, -EAGAIN when
 *            max_pending requests are not yet taken (take answers with
 *            parley_pub_recv() first), -EACCES, PARLEY_EPROTO (see the
 *            one-shot calls), PARLEY_ETOOLARGE (over 64 KiB), PARLEY_EARG
 *            or -ENOMEM. Never blocks.
 */
PARLEY_EXPORT int parley_pub_send(parley_pub_t *pub, const void *env,
                                  size_t len, uint64_t *request_id)
    PARLEY_WARN_UNUSED;

/*
 * Take the answer to one earlier parley_pub_send(), waiting up to
 * timeout_ms for one. Answers come in the order they arrive.
 *
 * Returns:   0 (accepted) or PARLEY_DUPLICATE, with *seq set; the
 *            daemon's reject code; PARLEY_ETIMEOUT (no answer after the
 *            attempts) - each with *request_id set to the request it
 *            answers; or, with *request_id untouched: -EAGAIN (no answer
 *            within timeout_ms), -EACCES, PARLEY_EPROTO, -EINTR,
 *            PARLEY_EARG. request_id and seq may be NULL.
 */
PARLEY_EXPORT int parley_pub_recv(parley_pub_t *pub, int timeout_ms,
                                  uint64_t *request_id, uint64_t *seq)
    PARLEY_WARN_UNUSED;

/*
 * More about the last answer parley_pub_publish() or parley_pub_recv()
 * returned: the daemon's reject text, which field broke a rule, or what
 * the library gave up on. "" after a success.
 *
 * Returns:   a string valid until the next call on pub.
 */
PARLEY_EXPORT const char *parley_pub_detail(const parley_pub_t *pub);

/* The api endpoint the publisher uses now. */
PARLEY_EXPORT const char *parley_pub_endpoint(const parley_pub_t *pub);

/* Requests sent with parley_pub_send() and not yet taken by
 * parley_pub_recv(), answered or not. */
PARLEY_EXPORT size_t parley_pub_pending(const parley_pub_t *pub);


/* ------------------------------------------------------------ subscriber */

/*
 * A reliable subscription (docs/protocol.md section 10): it reads the
 * feed, fetches from the daemon's log what the feed cannot prove it
 * carried, and hands out each matching update once, in seq order. It
 * says what happens to its connection: PARLEY_EVENT_CONNECTED when it has
 * a daemon (the first time too), PARLEY_EVENT_DISCONNECTED when it lost
 * it (the connection closed, or no heartbeat for heartbeat_misses
 * intervals), and PARLEY_EVENT_CAUGHT_UP once what the start (or, after
 * a reconnection, the gap) asked for has been handed out and what follows
 * is live. After a disconnection it tries the next endpoint of its list
 * (the same one if it is the only one) and continues after the last seq it
 * handed out.
 */

/*
 * Subscribe. Without PARLEY_SUB_NOWAIT this waits until a daemon of the
 * list is connected and its feed is live (each endpoint gets timeout_ms),
 * so that nothing published after it returns can be missed.
 *
 * Returns:   the subscriber, or NULL with errno set to the positive code:
 *            PARLEY_ETIMEOUT (no endpoint answered, or no heartbeat on
 *            the feed), EACCES, PARLEY_EPROTO, PARLEY_EARG (bad options,
 *            an endpoint libzmq cannot use, feed with an endpoint list),
 *            ENOMEM, EINTR.
 * Ownership: the options are copied; the keyring is borrowed and must
 *            outlive the subscriber.
 */
PARLEY_EXPORT parley_sub_t *parley_sub_new(const parley_sub_options_t *opt);

/* Close and free a subscriber; *sub becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_sub_destroy(parley_sub_t **sub);

/*
 * Wait up to timeout_ms for the next event.
 *
 * Returns:   1 with *ev set (valid until the next call on sub), 0 when
 *            timeout_ms passed without one; or an error: PARLEY_ETIMEOUT
 *            (a replay or snapshot was not answered within the request
 *            timeout; the next call asks again), a reject code of the
 *            daemon (PARLEY_EUNAVAILABLE, PARLEY_ERATELIMITED; asked again
 *            a second later), -EACCES (the daemon no longer accepts this
 *            client's CURVE key), PARLEY_EPROTO (also: with
 *            PARLEY_START_LAST, a snapshot that does not name the entries
 *            its deliveries hold, from a parleyd older than 1.2; asked
 *            again a second later), -EINTR, -ENOMEM, PARLEY_EARG. After
 *            an error the subscriber can be used on.
 */
PARLEY_EXPORT int parley_sub_next(parley_sub_t *sub, int timeout_ms,
                                  const parley_event_t **ev)
    PARLEY_WARN_UNUSED;

/* Seq of the last update handed out (or known not to match). */
PARLEY_EXPORT uint64_t parley_sub_last_seq(const parley_sub_t *sub);

/* The api endpoint the subscriber uses now (or tries). */
PARLEY_EXPORT const char *parley_sub_endpoint(const parley_sub_t *sub);

/* ---------------------------------------------------------------- events */

typedef enum {
    PARLEY_EVENT_DELIVERY = 1,     /* parley_event_delivery() */
    PARLEY_EVENT_GAP = 2,          /* updates seq..seq_last are gone from
                                      the daemon's log */
    PARLEY_EVENT_REJECTED = 3,     /* the delivery of seq failed
                                      verification: parley_event_code() */
    PARLEY_EVENT_CONNECTED = 4,    /* a daemon at parley_event_endpoint()
                                      is connected and its feed live */
    PARLEY_EVENT_DISCONNECTED = 5, /* the daemon at parley_event_endpoint()
                                      is gone: parley_event_code() says
                                      how it was noticed */
    PARLEY_EVENT_CAUGHT_UP = 6,    /* every update up to seq has been
                                      handed out: the view is complete and
                                      what follows is live */
    /* The transparency log (1.3): */
    PARLEY_EVENT_LOG_VERIFIED = 7, /* a checkpoint of seq leaves is trusted
                                      (signed, witnessed as asked, consistent
                                      with the last one) and every update
                                      handed out up to seq is proven in it;
                                      also after LOG_STALE, when fresh ones
                                      come again: parley_event_checkpoint() */
    PARLEY_EVENT_LOG_INCONSISTENT = 8, /* the log contradicts itself: two
                                      checkpoints that cannot both be honest,
                                      or a proof that fails;
                                      parley_event_evidence() holds what
                                      proves it, parley_event_seq() the
                                      tree size or update concerned */
    PARLEY_EVENT_LOG_STALE = 9,    /* no checkpoint newer than max_staleness
                                      was trusted: parley_event_checkpoint()
                                      is the newest that was (NULL if none),
                                      parley_event_evidence() what was shown
                                      instead and why it was not trusted */
} parley_event_type_t;

/* Getters of an event; what they return belongs to the object that
 * handed the event out. What happened: */
PARLEY_EXPORT parley_event_type_t parley_event_type(const parley_event_t *ev);

/* The delivery of a PARLEY_EVENT_DELIVERY (valid as long as ev), else
 * NULL. */
PARLEY_EXPORT const parley_delivery_t *
parley_event_delivery(const parley_event_t *ev);

/* DELIVERY, REJECTED: the seq; GAP: the first seq gone; CAUGHT_UP: the
 * last seq covered; else 0. */
PARLEY_EXPORT uint64_t parley_event_seq(const parley_event_t *ev);

/* GAP: the last seq gone; else as parley_event_seq(). */
PARLEY_EXPORT uint64_t parley_event_seq_last(const parley_event_t *ev);

/* REJECTED: the code verification failed with; DISCONNECTED:
 * PARLEY_ETIMEOUT (heartbeats stopped or no answer) or -ECONNRESET (the
 * connection closed); else 0. */
PARLEY_EXPORT int parley_event_code(const parley_event_t *ev);

/* CONNECTED, DISCONNECTED: the api endpoint; else NULL. */
PARLEY_EXPORT const char *parley_event_endpoint(const parley_event_t *ev);

/*
 * LOG_INCONSISTENT, LOG_STALE: the evidence, a text in the format of
 * docs/transparency.md ("parley evidence v1"), fit to publish and to check
 * with parley_evidence_check() or `parley audit --evidence`; REJECTED
 * with seq 0: the checkpoint that failed verification; else NULL (1.3).
 */
PARLEY_EXPORT const char *parley_event_evidence(const parley_event_t *ev);

/* LOG_VERIFIED, LOG_STALE: the newest trusted checkpoint (valid as long as
 * ev; NULL if none); else NULL (1.3). */
PARLEY_EXPORT const parley_checkpoint_t *
parley_event_checkpoint(const parley_event_t *ev);

/*
 * DELIVERY of a snapshot (parley_snapshot(), or the start of a subscriber
 * with PARLEY_START_LAST): how many entries (negotiation, party, phase)
 * of the current state its update holds. An update naming several
 * parties may hold only some of them. 0 for every other event, and for
 * deliveries that are not part of a snapshot (live, replayed).
 */
PARLEY_EXPORT size_t parley_event_entry_count(const parley_event_t *ev);

/*
 * Entry i of such a delivery: the negotiation and phase are its update's,
 * the party one it names. Any output may be NULL.
 *
 * Returns:   0, or PARLEY_EARG (i past the count).
 * Ownership: the strings belong to the event, valid as long as it.
 */
PARLEY_EXPORT int parley_event_entry(const parley_event_t *ev, size_t i,
                                     const char **negotiation,
                                     const char **party, uint32_t *phase);

/* ------------------------------------------------ event-loop integration */

/*
 * A publisher or subscriber can live in a program's own event loop
 * (poll(), libuv, libev, glib, a ZeroMQ loop) without a thread of its
 * own. It owns a few ZeroMQ sockets; what the loop watches are their
 * ZMQ_FD file descriptors, with a timeout for the library's own timers
 * (heartbeats, request deadlines, resends):
 *
 *     for (;;) {
 *         const parley_event_t *ev;
 *         while ((rc = parley_sub_next(sub, 0, &ev)) == 1)
 *             handle(ev);                        // drain: see below
 *         if (rc < 0 && rc != PARLEY_ETIMEOUT) ...
 *         n = parley_sub_fds(sub, fds, 8);       // watch for readability
 *         poll(pfds, n, parley_sub_timeout(sub));
 *     }
 *
 * ZMQ_FD is edge-triggered: it becomes readable when the state of a
 * socket may have changed, and stays quiet after that until the library
 * has looked at the socket again, however many messages are waiting.
 * So after it fires, call parley_sub_next(sub, 0, ...) (or
 * parley_pub_recv(pub, 0, ...)) until it returns 0 (-EAGAIN for
 * parley_pub_recv()), and only then wait again: the library reads every
 * socket until it is empty, or returns a timeout of 0 when it left
 * messages waiting on purpose. Do not read from the descriptors, and
 * wait for readability only (the library's sends never block). A
 * readable descriptor with nothing to do is normal.
 *
 * The descriptors stay the same for the life of the object, also when it
 * moves to another endpoint.
 */

/*
 * The descriptors to watch for readability.
 *
 * Returns:   the number of descriptors the object has (at most 4); at most
 *            cap are written to fds.
 */
PARLEY_EXPORT int parley_sub_fds(const parley_sub_t *sub, int *fds, size_t cap);
PARLEY_EXPORT int parley_pub_fds(const parley_pub_t *pub, int *fds, size_t cap);

/*
 * How long the loop may wait before it must call parley_sub_next() or
 * parley_pub_recv() even though no descriptor fired.
 *
 * Returns:   milliseconds; 0 to call at once, -1 for no limit.
 */
PARLEY_EXPORT int parley_sub_timeout(const parley_sub_t *sub);
PARLEY_EXPORT int parley_pub_timeout(const parley_pub_t *pub);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_H */
