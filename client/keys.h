/*
 * keys.h - library-internal access to keys.
 */
#ifndef PARLEY_KEYS_H
#define PARLEY_KEYS_H

#include "parley.h"

/* Initialize libsodium once per process. Returns 0 or -ENOSYS. */
int parley__sodium_init(void);

/* The 64-byte libsodium secret key (seed || public key). */
const uint8_t *parley__key_secret(const parley_key_t *key);

/* ---------------------------------------------------------- signer_seq */

/*
 * The signer_seq sequencer of one public key in this process: every
 * publisher (in every thread) that signs with that key draws its values
 * here, so no two of them ever choose the same one. Entries live as long
 * as the process, so a key freed and loaded again continues where it was.
 */
typedef struct parley__seq parley__seq_t;

/* A value drawn from a sequencer, and what to restore if it is given
 * back. */
typedef struct parley__seq_ticket {
    uint64_t value;          /* the signer_seq to use */
    uint64_t prev;           /* the sequencer's last value before it */
    uint64_t prev_file;      /* the seq file's value before it */
} parley__seq_ticket_t;

/*
 * The sequencer of key's public key, made on first use.
 * Returns it, or NULL (out of memory).
 * Threads:   safe.
 */
parley__seq_t *parley__seq_of(const parley_key_t *key);

/*
 * Draw the next value: max(last + 1, now in microseconds, floor + 1),
 * and with seq_file (may be NULL) also above the value recorded there,
 * which is then replaced by the new one (under an exclusive lock,
 * fsync'd, as parley_seqfile_next() does).
 *
 * Returns:   0 with *t set, -EOVERFLOW (past INT64_MAX) or -errno of the
 *            file.
 * Threads:   safe.
 */
int parley__seq_take(parley__seq_t *s, const char *seq_file,
                     parley__seq_ticket_t *t);

/*
 * The daemon's last accepted signer_seq for this key (from a REPLAY
 * reject): later values are drawn above it. A clock that stepped back, or
 * another process of the key, is caught up with this way.
 * Threads:   safe.
 */
void parley__seq_floor(parley__seq_t *s, uint64_t accepted);

/*
 * Give a value back that no daemon accepted (a FUTURE reject): if no
 * later value was drawn meanwhile, the sequencer (and seq_file) return to
 * what they held before it, so that a clock running ahead does not carry
 * the signer's values forward. Failures of the file are ignored: the
 * value is then simply used up.
 * Threads:   safe.
 */
void parley__seq_give_back(parley__seq_t *s, const char *seq_file,
                           const parley__seq_ticket_t *t);

/* ------------------------------------------------------------- CURVE */

#define PARLEY__CURVE_BYTES 32 /* a Curve25519 key, binary */

/*
 * Parse a CURVE public key: 40 characters of Z85, then the end of the
 * text, a space, a tab or a newline (the NAME.pub line format).
 * Returns 0 or PARLEY_EKEYFILE.
 */
int parley__curve_public_parse(const char *text,
                               uint8_t out[PARLEY__CURVE_BYTES]);

/*
 * Read a CURVE secret key file (the format parley_curve_keygen() writes)
 * with the same ownership and mode rules as parley_key_load(). secret
 * should point into guarded memory (sodium_malloc); the file's text is
 * wiped from the stack before returning. public_z85 (may be NULL)
 * receives the public key derived from the secret, as Z85.
 *
 * Returns:   0, PARLEY_EKEYPERM, PARLEY_EKEYFILE or -errno.
 */
int parley__curve_secret_load(const char *path,
                              char public_z85[PARLEY_CURVE_KEY_CHARS + 1],
                              uint8_t secret[PARLEY__CURVE_BYTES]);

/*
 * Make sock a CurveZMQ client of the server in curve (ZMQ_CURVE_SERVERKEY,
 * ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY); a NULL curve does nothing.
 * Call before connecting. Returns 0 or -errno from libzmq.
 */
int parley__curve_apply(const parley_curve_t *curve, void *sock);

#endif /* PARLEY_KEYS_H */
