/*
 * parley.h - public API of libparley.
 *
 * libparley signs, verifies, publishes and subscribes to negotiation-status
 * updates carried by parleyd. Everything a program needs is declared here;
 * a symbol not documented in this file is not API.
 *
 * Conventions
 *   - Fallible functions return 0 (or a count) on success and a negative
 *     code on failure: a PARLEY_E* value below, or -errno for system
 *     errors. parley_strerror() names either kind.
 *   - Constructors return NULL and set errno to the positive code
 *     (so parley_strerror(-errno) describes the failure).
 *   - Destructors take the address of the pointer, accept NULL or a pointer
 *     to NULL, and set the pointer to NULL.
 *   - The library never prints and never aborts on bad input.
 *   - Unless a function says otherwise, an object may be used by one thread
 *     at a time; distinct objects may be used from distinct threads.
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

#define PARLEY_VERSION "0.1.0"

/* ---------------------------------------------------------------- limits */

#define PARLEY_SLUG_MAX 32        /* bytes in a slug, without the NUL */
#define PARLEY_PARTIES_MAX 16     /* parties named by one update */
#define PARLEY_PHASE_MAX 255      /* phases are 0..255; 0 = the whole deal */
#define PARLEY_HEADLINE_MAX 200   /* bytes of UTF-8 */
#define PARLEY_BODY_MAX 4096      /* bytes of UTF-8 */
#define PARLEY_LOCATION_MAX 200   /* bytes of UTF-8 */
#define PARLEY_REFERENCES_MAX 16  /* seqs a correction/retraction replaces */
#define PARLEY_PUBLICKEY_BYTES 32
#define PARLEY_SIGNATURE_BYTES 64
#define PARLEY_KEYID_CHARS 16     /* hex chars of a key id, without the NUL */
#define PARLEY_TOPIC_MAX 48       /* bytes of a topic string, with the NUL */
#define PARLEY_TOPICS_MAX (3 + PARLEY_PARTIES_MAX) /* topics of one update */
/* Upper bound of a serialized SignedUpdate made from a valid update. */
#define PARLEY_ENVELOPE_MAX 8192
/* The context string every signature covers, followed by one 0x00 byte. */
#define PARLEY_SIGN_CONTEXT "parley/update/v1"

/* ---------------------------------------------------------------- errors */

/*
 * Error codes. Each PARLEY_E* below names a reason parleyd rejects an
 * update (the first nine, in the order parleyd checks them) or a failure
 * of the library. They are far from the errno range, so -errno values and
 * PARLEY_E* values never collide.
 */
enum {
    PARLEY_ETOOLARGE = -1001,     /* message over the size limit */
    PARLEY_EMALFORMED = -1002,    /* bytes that do not decode */
    PARLEY_EUNKNOWNSIGNER = -1003,/* signer not in the keyring */
    PARLEY_EBADSIG = -1004,       /* signature does not verify */
    PARLEY_EINVALID = -1005,      /* update decodes but breaks a rule */
    PARLEY_EFORBIDDEN = -1006,    /* signer may not publish this */
    PARLEY_ESTALE = -1007,        /* issued_at too far in the past */
    PARLEY_EFUTURE = -1008,       /* issued_at too far in the future */
    PARLEY_EREPLAY = -1009,       /* signer_seq not above the last accepted */
    PARLEY_ETRUNCATED = -1010,    /* data no longer held by the daemon */
    PARLEY_EUNAVAILABLE = -1011,  /* daemon cannot store right now */
    PARLEY_EBADREQUEST = -1012,   /* request the daemon does not understand */
    PARLEY_ERATELIMITED = -1013,  /* signer over its rate limit */
    PARLEY_ETIMEOUT = -1014,      /* no answer within the timeout */
    PARLEY_EKEYPERM = -1015,      /* secret key file readable by others */
    PARLEY_EKEYFILE = -1016,      /* key file has the wrong format */
    PARLEY_EKEYRING = -1017,      /* keyring text has an error */
    PARLEY_EPROTO = -1018,        /* peer answered something unexpected */
    PARLEY_EARG = -1019,          /* invalid argument */
};

/*
 * Name an error: the short code ("bad_signature", "timeout", ...) for
 * PARLEY_E* values, strerror() text for -errno values.
 *
 * Returns:   a static string; never NULL.
 * Threads:   safe.
 */
PARLEY_EXPORT const char *parley_strerror(int err);

/*
 * Describe an error in a sentence for people ("signature does not verify").
 *
 * Returns:   a static string; never NULL.
 */
PARLEY_EXPORT const char *parley_strerror_long(int err);

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

/*
 * A negotiation-status update, decoded. Fixed-size so that decoding needs
 * no allocation; strings are NUL-terminated UTF-8. A zeroed struct is an
 * empty (invalid) update.
 */
typedef struct parley_update {
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
} parley_update_t;

/*
 * A verified update as the daemon delivered it.
 */
typedef struct parley_delivery {
    uint64_t seq;                            /* daemon log sequence */
    int64_t received_at;                     /* unix ms, daemon clock */
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];  /* Ed25519 public key */
    char signer_id[PARLEY_KEYID_CHARS + 1];  /* key id, hex */
    char signer_name[PARLEY_SLUG_MAX + 1];   /* keyring name, "" if unknown */
    parley_update_t update;
} parley_delivery_t;

/*
 * Check an update against the schema rules: slugs, 1-16 distinct parties,
 * phase 0-255, known status and kind, headline 1-200 bytes, body 0-4096,
 * location 0-200, all valid UTF-8 without NUL, references (each 1 to
 * INT64_MAX) present exactly when kind is correction or retraction,
 * issued_at > 0, signer_seq 1 to INT64_MAX, scheduled_at >= 0, expires_at
 * 0 or after issued_at. (64-bit values stay within INT64_MAX so that every
 * JSON tool reads them exactly.)
 *
 * Returns:   0 or PARLEY_EINVALID.
 */
PARLEY_EXPORT int parley_update_validate(const parley_update_t *u)
    PARLEY_WARN_UNUSED;

/* Returns 1 if s is a slug ([a-z0-9][a-z0-9-]{0,31}), else 0. */
PARLEY_EXPORT int parley_slug_valid(const char *s);

/* Name of a status ("agreed_in_principle"), or NULL if out of range. */
PARLEY_EXPORT const char *parley_status_name(parley_status_t s);

/* Parse a status name. Returns 0 or PARLEY_EINVALID. */
PARLEY_EXPORT int parley_status_parse(const char *name, parley_status_t *out);

/* Name of a kind ("correction"), or NULL if out of range. */
PARLEY_EXPORT const char *parley_kind_name(parley_kind_t k);

/* Parse a kind name. Returns 0 or PARLEY_EINVALID. */
PARLEY_EXPORT int parley_kind_parse(const char *name, parley_kind_t *out);

/* Current time in unix milliseconds (CLOCK_REALTIME). */
PARLEY_EXPORT int64_t parley_now_ms(void);

/* ------------------------------------------------------------------ keys */

/* An Ed25519 key pair; the secret half lives in guarded memory. */
typedef struct parley_key parley_key_t;

/*
 * Make a new random key pair.
 *
 * Returns:   the key, or NULL with errno set.
 * Ownership: the caller's; free with parley_key_destroy().
 */
PARLEY_EXPORT parley_key_t *parley_key_generate(void);

/*
 * Make the key pair determined by a 32-byte seed (for test vectors).
 *
 * Returns:   the key, or NULL with errno set.
 */
PARLEY_EXPORT parley_key_t *parley_key_from_seed(const uint8_t seed[32]);

/*
 * Load a secret key file. The file must be a regular file owned by the
 * calling user with no group or other permission bits (0600 or 0400).
 *
 * Returns:   the key, or NULL with errno set: EKEYPERM (mode or owner),
 *            EKEYFILE (format), or a system error.
 * Ownership: the caller's; free with parley_key_destroy().
 */
PARLEY_EXPORT parley_key_t *parley_key_load(const char *path);

/*
 * Write the secret key to PATH (mode 0600, created exclusively unless
 * overwrite is non-zero) and the public key to PATH.pub with comment.
 * Both files are fsync'd. With overwrite, an existing file is replaced by
 * a new one renamed over it (never written into), and one owned by
 * another user is refused.
 *
 * Returns:   0 or a negative error (-EEXIST if PATH exists, -EPERM if
 *            PATH or PATH.pub belongs to another user).
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
PARLEY_EXPORT void parley_key_id(char out[PARLEY_KEYID_CHARS + 1],
                                 const uint8_t pk[PARLEY_PUBLICKEY_BYTES]);

/*
 * Parse a public key: base64 of 32 bytes, optionally followed by a space
 * and a comment (the NAME.pub line format).
 *
 * Returns:   0 or PARLEY_EKEYFILE.
 */
PARLEY_EXPORT int parley_pubkey_parse(const char *text,
                                      uint8_t out[PARLEY_PUBLICKEY_BYTES])
    PARLEY_WARN_UNUSED;

/* Read a NAME.pub file. Returns 0, PARLEY_EKEYFILE or -errno. */
PARLEY_EXPORT int parley_pubkey_load(const char *path,
                                     uint8_t out[PARLEY_PUBLICKEY_BYTES])
    PARLEY_WARN_UNUSED;

/*
 * Format a public key as base64 (44 chars and a NUL) into out.
 */
PARLEY_EXPORT void parley_pubkey_format(char out[45],
                                        const uint8_t pk[PARLEY_PUBLICKEY_BYTES]);

/*
 * Choose the next signer_seq for the key at key_path and record it, so
 * that separate and concurrent processes never reuse one: the value is
 * max(last recorded + 1, now in microseconds), kept in key_path + ".seq"
 * under an exclusive lock and fsync'd before it is returned.
 *
 * Returns:   0 or -errno.
 */
PARLEY_EXPORT int parley_seqfile_next(const char *key_path, uint64_t *out)
    PARLEY_WARN_UNUSED;

/* ------------------------------------------------------------ signatures */

/*
 * Serialize an update and sign it into a SignedUpdate envelope.
 *
 * The update is validated first. buf must hold PARLEY_ENVELOPE_MAX bytes
 * to be safe for any valid update.
 *
 * Returns:   0, PARLEY_EINVALID, or -ENOBUFS if cap is too small.
 *            *len receives the envelope size.
 */
PARLEY_EXPORT int parley_sign(const parley_key_t *key, const parley_update_t *u,
                              void *buf, size_t cap, size_t *len)
    PARLEY_WARN_UNUSED;

typedef struct parley_keyring parley_keyring_t;

/*
 * Verify a SignedUpdate envelope and decode its update, in the order
 * parleyd checks: decode envelope (MALFORMED), signer in the keyring
 * (UNKNOWNSIGNER), signature (BADSIG), body decodes and validates
 * (INVALID), keyring permits it (FORBIDDEN). With ring NULL the signature
 * is checked against the embedded signer alone and no permissions apply.
 *
 * Returns:   0 or the first failing code above.
 * Ownership: out and signer are the caller's buffers; signer may be NULL.
 */
PARLEY_EXPORT int parley_verify(const parley_keyring_t *ring, const void *buf,
                                size_t len, parley_update_t *out,
                                uint8_t signer[PARLEY_PUBLICKEY_BYTES])
    PARLEY_WARN_UNUSED;

/*
 * Decode a Delivery (as carried by the feed, replay and snapshot) and
 * verify the update inside it with parley_verify().
 *
 * Returns:   0 or a PARLEY_E* code from parley_verify() or EMALFORMED.
 */
PARLEY_EXPORT int parley_delivery_decode(const parley_keyring_t *ring,
                                         const void *buf, size_t len,
                                         parley_delivery_t *out)
    PARLEY_WARN_UNUSED;

/* --------------------------------------------------------------- keyring */

/*
 * Parse keyring text: one signer per line,
 *   NAME PUBKEY_BASE64 negotiations=LIST parties=LIST phases=LIST
 * LIST is comma-separated or "*"; phases may hold ranges ("1-3").
 * Blank lines and lines starting with '#' are ignored. A name or a key
 * may appear once.
 *
 * Returns:   the keyring, or NULL with errno set (EKEYRING for bad text);
 *            on EKEYRING a message naming the line is written to errbuf.
 * Ownership: the caller's; free with parley_keyring_destroy().
 */
PARLEY_EXPORT parley_keyring_t *parley_keyring_parse(const char *text,
                                                     size_t len, char *errbuf,
                                                     size_t errlen);

/* Read and parse a keyring file; errbuf names file and line on error. */
PARLEY_EXPORT parley_keyring_t *parley_keyring_load(const char *path,
                                                    char *errbuf,
                                                    size_t errlen);

/* Free a keyring; *ring becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_keyring_destroy(parley_keyring_t **ring);

/* Number of signers. */
PARLEY_EXPORT size_t parley_keyring_size(const parley_keyring_t *ring);

/* Name of the signer with this key, or NULL if not in the keyring. */
PARLEY_EXPORT const char *
parley_keyring_name(const parley_keyring_t *ring,
                    const uint8_t pk[PARLEY_PUBLICKEY_BYTES]);

/*
 * May this signer publish this update (negotiation, every party, phase)?
 *
 * Returns:   0, PARLEY_EUNKNOWNSIGNER or PARLEY_EFORBIDDEN.
 */
PARLEY_EXPORT int parley_keyring_allows(const parley_keyring_t *ring,
                                        const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                                        const parley_update_t *u)
    PARLEY_WARN_UNUSED;

/* ------------------------------------------------------- topics, filters */

/*
 * What a subscriber wants. An update matches when each non-empty list
 * holds one of its values: its negotiation, any of its parties, its phase.
 * Empty lists match everything. Pointers are borrowed.
 */
typedef struct parley_filter {
    const char *const *negotiations;
    size_t n_negotiations;
    const char *const *parties;
    size_t n_parties;
    const uint32_t *phases;
    size_t n_phases;
} parley_filter_t;

/*
 * Write the feed topics of an update, in the order the daemon sends them:
 * "all/", "neg/<n>/", "party/<p>/" for each party, "phase/<n>/".
 *
 * Returns:   the number written (at most PARLEY_TOPICS_MAX).
 */
PARLEY_EXPORT size_t parley_topics(const parley_update_t *u,
                                   char out[][PARLEY_TOPIC_MAX]);

/*
 * Write the narrowest set of feed subscriptions that covers a filter: the
 * values of the dimension with the fewest values (parties before phases
 * before negotiations on a tie), or "all/" for an empty filter.
 *
 * Returns:   the number written, or PARLEY_EARG if a value is not a slug,
 *            a phase is over 255, or there are more than cap topics.
 */
PARLEY_EXPORT int parley_filter_topics(const parley_filter_t *f,
                                       char out[][PARLEY_TOPIC_MAX],
                                       size_t cap);

/* Returns 1 if the update matches the filter, else 0. */
PARLEY_EXPORT int parley_filter_match(const parley_filter_t *f,
                                      const parley_update_t *u);

/* ------------------------------------------------------------------ JSON */

/*
 * Encode a delivery as one line of JSON (no newline), with fields
 * seq, received_at, signer, signer_id, signer_name, negotiation, parties,
 * phase, status, kind, references, headline, body, location,
 * scheduled_at, issued_at, signer_seq, expires_at.
 *
 * Returns:   a string, or NULL with errno set.
 * Ownership: the caller's; free with free().
 */
PARLEY_EXPORT char *parley_delivery_to_json(const parley_delivery_t *d);

/*
 * Fill an update from a JSON object with the fields of StatusUpdate
 * ("parties" an array of strings, "status" and "kind" by name, times in
 * unix ms). Fields not given stay as they were in *out.
 *
 * Returns:   0 or PARLEY_EINVALID with a message in errbuf.
 */
PARLEY_EXPORT int parley_update_from_json(const char *json, parley_update_t *out,
                                          char *errbuf, size_t errlen)
    PARLEY_WARN_UNUSED;

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
 */
#define PARLEY_CURVE_KEY_CHARS 40 /* Z85 text of a key, without the NUL */

/* The CURVE keys of a client; the secret lives in guarded memory. */
typedef struct parley_curve parley_curve_t;

/*
 * Load the keys a client needs: the daemon's public key from
 * server_key_path (its NAME.pub file) and this client's key pair from
 * client_key_path (a secret key file, which must be a regular file owned
 * by the calling user with no group or other permission bits).
 *
 * Returns:   the keys, or NULL with errno set: EKEYPERM (mode or owner of
 *            the secret file), EKEYFILE (format, or a public half that
 *            does not match the secret), EARG (a NULL path), or a system
 *            error.
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
 * Returns:   0 with the Z85 public key in public_z85 (may be NULL), or a
 *            negative error (-EEXIST if path or path.pub exists, -EPERM if
 *            one belongs to another user).
 */
PARLEY_EXPORT int parley_curve_keygen(const char *path, const char *comment,
                                      int overwrite,
                                      char public_z85[PARLEY_CURVE_KEY_CHARS
                                                      + 1]) PARLEY_WARN_UNUSED;

/* --------------------------------------------------------- daemon client */

/* Default api endpoint, used when neither a flag nor PARLEY_SERVER is set. */
#define PARLEY_DEFAULT_SERVER "tcp://127.0.0.1:7710"

/*
 * The daemon's answer to ping.
 */
typedef struct parley_info {
    char feed[256];           /* feed endpoint to connect to */
    uint8_t daemon_id[16];    /* changes at every daemon start */
    uint64_t seq;             /* last assigned seq */
    uint64_t first_seq;       /* oldest seq held, 0 if none */
    char version[32];
} parley_info_t;

/*
 * Ask the daemon at server (an api endpoint) for its feed endpoint and
 * state.
 *
 * Returns:   0, PARLEY_ETIMEOUT, PARLEY_EPROTO or -errno.
 */
PARLEY_EXPORT int parley_ping(const char *server, int timeout_ms,
                              parley_info_t *out) PARLEY_WARN_UNUSED;

/*
 * parley_ping() through CurveZMQ with the keys in curve (NULL: none, the
 * same as parley_ping()).
 *
 * Returns:   as parley_ping(), and -EACCES when the daemon refused this
 *            client's key, PARLEY_EPROTO when one side uses CURVE and the
 *            other does not.
 * Ownership: curve is borrowed for the call.
 */
PARLEY_EXPORT int parley_ping_ex(const char *server,
                                 const parley_curve_t *curve, int timeout_ms,
                                 parley_info_t *out) PARLEY_WARN_UNUSED;

typedef struct parley_stat {
    char name[64];
    uint64_t value;
} parley_stat_t;

/*
 * Fetch the daemon's counters.
 *
 * Returns:   the number of counters written (at most cap), or a negative
 *            error as parley_ping().
 */
PARLEY_EXPORT int parley_stats(const char *server, int timeout_ms,
                               parley_stat_t *out, size_t cap)
    PARLEY_WARN_UNUSED;

/*
 * parley_stats() through CurveZMQ with the keys in curve (NULL: none).
 *
 * Returns:   as parley_stats() and parley_ping_ex().
 * Ownership: curve is borrowed for the call.
 */
PARLEY_EXPORT int parley_stats_ex(const char *server,
                                  const parley_curve_t *curve, int timeout_ms,
                                  parley_stat_t *out, size_t cap)
    PARLEY_WARN_UNUSED;

/* ------------------------------------------------------------- publisher */

typedef struct parley_pub parley_pub_t;

/*
 * Connect a publisher to the daemon's api endpoint.
 *
 * Returns:   the publisher, or NULL with errno set.
 * Ownership: key is borrowed and must outlive the publisher.
 */
PARLEY_EXPORT parley_pub_t *parley_pub_new(const char *server,
                                           const parley_key_t *key);

/*
 * Connect a publisher through CurveZMQ with the keys in curve (NULL: none,
 * the same as parley_pub_new()). A daemon that refuses the key shows up
 * as -EACCES from the first publish.
 *
 * Returns:   the publisher, or NULL with errno set.
 * Ownership: key and curve are borrowed; key must outlive the publisher,
 *            curve is needed only during this call.
 */
PARLEY_EXPORT parley_pub_t *parley_pub_new_curve(const char *server,
                                                 const parley_key_t *key,
                                                 const parley_curve_t *curve);

/* Close and free a publisher; *pub becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_pub_destroy(parley_pub_t **pub);

/*
 * Sign and publish one update and wait for the daemon's answer. If
 * u->issued_at is 0 it is set to now; if u->signer_seq is 0 it is set to
 * max(last used by this publisher + 1, now in microseconds). On timeout
 * the same signed bytes are sent again once (the daemon answers a resend
 * with the original seq), then PARLEY_ETIMEOUT is returned.
 *
 * Returns:   0 with *seq set (and *duplicate set to 1 if the daemon had
 *            already accepted these bytes), or the daemon's reject code
 *            (PARLEY_EBADSIG, PARLEY_EREPLAY, ...), PARLEY_EINVALID
 *            before sending, PARLEY_ETIMEOUT, or -errno.
 *            seq and duplicate may be NULL.
 */
PARLEY_EXPORT int parley_pub_publish(parley_pub_t *pub, parley_update_t *u,
                                     int timeout_ms, uint64_t *seq,
                                     int *duplicate) PARLEY_WARN_UNUSED;

/*
 * Send an already signed envelope without waiting (pipelining).
 *
 * Returns:   0 with *request_id set, or -errno.
 */
PARLEY_EXPORT int parley_pub_send(parley_pub_t *pub, const void *env,
                                  size_t len, uint64_t *request_id)
    PARLEY_WARN_UNUSED;

/*
 * Wait for the answer to one earlier parley_pub_send().
 *
 * Returns:   0 on ack, the reject code on reject (both with *request_id
 *            set), PARLEY_ETIMEOUT, or -errno. seq/duplicate as above.
 */
PARLEY_EXPORT int parley_pub_recv(parley_pub_t *pub, int timeout_ms,
                                  uint64_t *request_id, uint64_t *seq,
                                  int *duplicate) PARLEY_WARN_UNUSED;

/* ------------------------------------------------------------ subscriber */

typedef struct parley_sub parley_sub_t;

/* Where a subscription starts. */
typedef enum {
    PARLEY_START_LIVE = 0,    /* updates published from now on */
    PARLEY_START_SEQ = 1,     /* every update from since_seq on, then live */
    PARLEY_START_LAST = 2,    /* current state (snapshot), then live */
} parley_start_t;

typedef struct parley_sub_options {
    const char *feed;                /* override the feed endpoint, or NULL */
    parley_start_t start;
    uint64_t since_seq;              /* with PARLEY_START_SEQ */
    const parley_keyring_t *keyring; /* re-verify against it, or NULL */
    int rcvhwm;                      /* feed receive HWM, 0 = libzmq default */
    int timeout_ms;                  /* per api request, 0 = 5000 */
    const parley_curve_t *curve;     /* CurveZMQ keys, or NULL for none;
                                        borrowed during parley_sub_new() */
} parley_sub_options_t;

typedef enum {
    PARLEY_EVENT_DELIVERY = 1,  /* ev->delivery holds an update */
    PARLEY_EVENT_GAP = 2,       /* updates gap_from..gap_to are gone */
    PARLEY_EVENT_REJECTED = 3,  /* a delivery failed re-verification */
} parley_event_type_t;

typedef struct parley_event {
    parley_event_type_t type;
    parley_delivery_t delivery;  /* with EVENT_DELIVERY */
    uint64_t gap_from, gap_to;   /* with EVENT_GAP: inclusive range lost */
    uint64_t rejected_seq;       /* with EVENT_REJECTED */
    int rejected_code;           /* with EVENT_REJECTED: the PARLEY_E* code */
} parley_event_t;

/*
 * Subscribe to the daemon at server with a filter. The feed endpoint is
 * learned from the daemon (opt->feed overrides it). The subscription is
 * reliable: it subscribes to the feed first, then fetches the snapshot or
 * replay the start asks for, merges by seq, and later replays any gap it
 * sees on the feed or in heartbeats. Each matching update is delivered
 * once, in seq order.
 *
 * Returns:   the subscriber, or NULL with errno set.
 * Ownership: f and opt are copied; opt->keyring is borrowed.
 */
PARLEY_EXPORT parley_sub_t *parley_sub_new(const char *server,
                                           const parley_filter_t *f,
                                           const parley_sub_options_t *opt);

/* Close and free a subscriber; *sub becomes NULL. Accepts NULL. */
PARLEY_EXPORT void parley_sub_destroy(parley_sub_t **sub);

/*
 * Wait up to timeout_ms (-1 = forever) for the next event.
 *
 * Returns:   1 with *ev filled, 0 on timeout, or a negative error
 *            (-EACCES: the daemon no longer accepts this client's CURVE
 *            key, as after it was removed from the allow-list).
 */
PARLEY_EXPORT int parley_sub_next(parley_sub_t *sub, int timeout_ms,
                                  parley_event_t *ev) PARLEY_WARN_UNUSED;

/* Seq of the last update delivered (or skipped by the filter). */
PARLEY_EXPORT uint64_t parley_sub_last_seq(const parley_sub_t *sub);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_H */
