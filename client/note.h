/*
 * note.h - signed notes, checkpoints and cosignatures (library-internal):
 * the C2SP formats parley's transparency log speaks.
 *
 * Signed note (c2sp.org/signed-note): a text of newline-terminated lines,
 * a blank line, then one or more signature lines
 *
 *     — <key name> <base64(key ID (4 bytes, big-endian) || signature)>
 *
 * (U+2014 em dash, space). The whole note is UTF-8 with no control
 * character but newline. Ed25519 signatures cover the text including its
 * final newline; key ID = SHA-256(name || "\n" || 0x01 || public key)[:4].
 * Verifiers check the lines of the keys they know and keep the others.
 *
 * Checkpoint (c2sp.org/tlog-checkpoint): a note whose text is
 *
 *     <origin>
 *     <tree size, decimal, no leading zeros>
 *     <root hash, base64 of 32 bytes>
 *     [extension lines, each non-empty]
 *
 * parley's log signs with its log key under the key name = its origin.
 *
 * Cosignature (c2sp.org/tlog-cosignature, cosignature/v1): a signature
 * line by a witness whose key ID uses type byte 0x04 and whose signature
 * is a u64 big-endian timestamp (seconds, at most 2^63 - 1) followed by
 * the Ed25519 signature of
 *
 *     "cosignature/v1\n" "time <timestamp, decimal>\n" <the checkpoint text>
 *
 * Parsing is strict: base64 must be canonical (padding, zero spare bits),
 * numbers must have no leading zeros, names at most PARLEY__NOTE_NAME_MAX
 * bytes with no Unicode space and no '+'. Failing calls can give a static
 * reason (why) for logs and evidence.
 *
 * Threads: no shared state; a parley__note_t belongs to one thread at a
 * time.
 */
#ifndef PARLEY_NOTE_H
#define PARLEY_NOTE_H

#include "parley.h"
#include "tlog.h"

#include <stddef.h>
#include <stdint.h>

#define PARLEY__NOTE_MAX 65536      /* bytes of a note accepted */
#define PARLEY__NOTE_SIGS_MAX 64    /* signature lines of a note */
#define PARLEY__NOTE_NAME_MAX 255   /* bytes of a key name or an origin */
#define PARLEY__NOTE_TYPE_ED25519 0x01 /* signature type of note signatures */
#define PARLEY__NOTE_TYPE_COSIG 0x04   /* ... of cosignature/v1 */
#define PARLEY__COSIG_BYTES 76      /* key ID, timestamp, Ed25519 signature */
/* A cosignature line: dash, name, space, base64 of 76 bytes, newline, NUL. */
#define PARLEY__COSIG_LINE_MAX (4 + PARLEY__NOTE_NAME_MAX + 1 + 104 + 1 + 1)
#define PARLEY__CHECKPOINT_TEXT_MAX 4096 /* checkpoint text parley makes */

/* One signature line of a parsed note; pointers into the note's buffer. */
typedef struct parley__note_sig {
    const char *name;   /* key name, name_len bytes (not NUL-terminated) */
    size_t name_len;
    uint32_t key_id;    /* the first four bytes, big-endian */
    const char *b64;    /* base64 of key ID || signature, b64_len bytes */
    size_t b64_len;
    const char *line;   /* the whole line, with "— " and its newline */
    size_t line_len;
} parley__note_sig_t;

/* A parsed signed note. */
typedef struct parley__note {
    char *buf;          /* the note's bytes, NUL-terminated (owned) */
    size_t len;         /* bytes of the note */
    size_t text_len;    /* bytes of the text: buf[0..text_len), final newline included */
    size_t nsigs;       /* signature lines, in their order */
    parley__note_sig_t sigs[PARLEY__NOTE_SIGS_MAX];
} parley__note_t;

/* Decode the canonical base64 of a 32-byte hash (44 characters).
 * Returns 0 or PARLEY_EMALFORMED. */
int parley__note_hash_decode(const char *b64, size_t len,
                             parley__tlog_hash_t *out) PARLEY_WARN_UNUSED;

/* The base64 of a hash: 44 characters and a NUL. */
void parley__note_hash_encode(const parley__tlog_hash_t *h, char out[45]);

/*
 * A decimal number as the C2SP formats write them: digits only, no
 * leading zero (but "0"), at most max.
 *
 * Returns:   0 with *out set, or PARLEY_EMALFORMED.
 */
int parley__note_decimal(const char *s, size_t len, uint64_t max,
                         uint64_t *out) PARLEY_WARN_UNUSED;

/*
 * SHA-256(name || "\n" || type || public key)[:4] as a big-endian u32.
 */
uint32_t parley__note_key_id(const char *name, uint8_t type,
                             const uint8_t pk[PARLEY_PUBLICKEY_BYTES]);

/*
 * 1 when name is a valid key name: 1..PARLEY__NOTE_NAME_MAX bytes of
 * UTF-8, no Unicode space, no '+'.
 */
int parley__note_name_valid(const char *name, size_t len);

/*
 * Parse a signed note. Every signature line must be well-formed; none is
 * verified here.
 *
 * Returns:   0, PARLEY_ETOOLARGE (over PARLEY__NOTE_MAX), PARLEY_EMALFORMED
 *            or -ENOMEM.
 * Ownership: on success *out is the caller's; free with
 *            parley__note_destroy().
 */
int parley__note_parse(const void *buf, size_t len, parley__note_t **out,
                       const char **why) PARLEY_WARN_UNUSED;

/* Free a note; *note becomes NULL. Accepts NULL. */
void parley__note_destroy(parley__note_t **note);

/*
 * Check the Ed25519 note signatures of the key (name, pk): every line with
 * that name and key ID must verify, and there must be one.
 *
 * Returns:   0, PARLEY_EBADSIG (a line of the key does not verify), or
 *            PARLEY_EUNKNOWNSIGNER (no line of the key).
 */
int parley__note_verify(const parley__note_t *note, const char *name,
                        const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                        const char **why) PARLEY_WARN_UNUSED;

/*
 * Sign text (newline-terminated, valid note text) with key under name:
 * the note is text, a blank line and the signature line.
 *
 * Returns:   0, PARLEY_EARG (text or name not valid, text too long) or
 *            -ENOMEM.
 * Ownership: *out (NUL-terminated, *out_len bytes) is the caller's; free().
 */
int parley__note_sign(const char *text, size_t text_len, const char *name,
                      const parley_key_t *key, char **out, size_t *out_len);

/*
 * The note with one more signature line (a well-formed line with its
 * newline, e.g. a witness's cosignature) after its own.
 *
 * Returns:   0, PARLEY_EMALFORMED (not a signature line), PARLEY_ETOOLARGE
 *            or -ENOMEM.
 * Ownership: *out (NUL-terminated, *out_len bytes) is the caller's; free().
 */
int parley__note_add_line(const parley__note_t *note, const char *line,
                          size_t line_len, char **out, size_t *out_len);

/* ------------------------------------------------------------ checkpoint */

/* A parsed checkpoint text. */
typedef struct parley__checkpoint {
    char origin[PARLEY__NOTE_NAME_MAX + 1]; /* the first line, NUL-terminated */
    uint64_t size;                          /* tree size */
    parley__tlog_hash_t root;               /* root hash */
    size_t extensions;                      /* extension lines that follow */
} parley__checkpoint_t;

/*
 * Write a checkpoint text: origin (1..PARLEY__NOTE_NAME_MAX bytes of note
 * text, no newline), size, root, then extensions (NULL, or non-empty
 * newline-terminated lines).
 *
 * Returns:   0 with *len set (the text is NUL-terminated too), PARLEY_EARG
 *            or -ENOBUFS.
 */
int parley__checkpoint_text(const char *origin, uint64_t size,
                            const parley__tlog_hash_t *root,
                            const char *extensions, char *out, size_t cap,
                            size_t *len);

/*
 * Parse a checkpoint text (a note's text, with its final newline).
 *
 * Returns:   0 or PARLEY_EMALFORMED.
 */
int parley__checkpoint_parse(const char *text, size_t len,
                             parley__checkpoint_t *out, const char **why)
    PARLEY_WARN_UNUSED;

/*
 * Make a signed checkpoint of (size, root) for the log whose origin is
 * also its key name.
 *
 * Returns:   0, PARLEY_EARG (origin not a valid key name) or -ENOMEM.
 * Ownership: *out (NUL-terminated, *out_len bytes) is the caller's; free().
 */
int parley__checkpoint_sign(const char *origin, uint64_t size,
                            const parley__tlog_hash_t *root,
                            const parley_key_t *key, char **out,
                            size_t *out_len);

/*
 * Parse a signed checkpoint, verify the log's signature (key name =
 * origin, public key pk) and parse its text. note (may be NULL) receives
 * the parsed note, for cosignatures and evidence.
 *
 * Returns:   0, PARLEY_ETOOLARGE, PARLEY_EMALFORMED (note or checkpoint
 *            text), PARLEY_EUNKNOWNSIGNER (not signed by that key),
 *            PARLEY_EBADSIG, PARLEY_EINVALID (another origin) or -ENOMEM.
 * Ownership: on success *note, if asked for, is the caller's.
 */
int parley__checkpoint_open(const void *buf, size_t len, const char *origin,
                            const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                            parley__checkpoint_t *out, parley__note_t **note,
                            const char **why) PARLEY_WARN_UNUSED;

/* ------------------------------------------------------------ cosignature */

/* A parsed cosignature line. */
typedef struct parley__cosig {
    char name[PARLEY__NOTE_NAME_MAX + 1];   /* the witness's key name */
    uint32_t key_id;                        /* as given in the line */
    uint64_t timestamp;                     /* seconds since the epoch */
    uint8_t signature[PARLEY_SIGNATURE_BYTES];
} parley__cosig_t;

/*
 * Cosign a checkpoint text as the witness (name, key) at timestamp: the
 * signature line, with its newline, NUL-terminated, in line.
 *
 * Returns:   0 with *len set, PARLEY_EARG (name, text or timestamp not
 *            valid) or -ENOBUFS.
 */
int parley__cosig_make(const parley_key_t *key, const char *name,
                       const char *text, size_t text_len, uint64_t timestamp,
                       char *line, size_t cap, size_t *len);

/*
 * Parse one cosignature line ("— name base64\n"): a valid signature line
 * whose signature is exactly PARLEY__COSIG_BYTES with a timestamp of at
 * most 2^63 - 1.
 *
 * Returns:   0 or PARLEY_EMALFORMED.
 */
int parley__cosig_parse(const char *line, size_t len, parley__cosig_t *out,
                        const char **why) PARLEY_WARN_UNUSED;

/*
 * Check a parsed cosignature against the witness (name, pk) and the
 * checkpoint text it cosigns.
 *
 * Returns:   0, PARLEY_EUNKNOWNSIGNER (another name or key ID) or
 *            PARLEY_EBADSIG.
 */
int parley__cosig_check(const parley__cosig_t *c, const char *name,
                        const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                        const char *text, size_t text_len, const char **why)
    PARLEY_WARN_UNUSED;

/*
 * Find and check the witness (name, pk)'s cosignature in a note: every
 * line with that name and cosignature key ID must be a valid cosignature
 * of the note's text, and there must be one. *timestamp (may be NULL)
 * receives the latest one.
 *
 * Returns:   0, PARLEY_EUNKNOWNSIGNER (no cosignature by the witness),
 *            PARLEY_EMALFORMED (its line is not a cosignature) or
 *            PARLEY_EBADSIG.
 */
int parley__cosig_verify(const parley__note_t *note, const char *name,
                         const uint8_t pk[PARLEY_PUBLICKEY_BYTES],
                         uint64_t *timestamp, const char **why)
    PARLEY_WARN_UNUSED;

#endif /* PARLEY_NOTE_H */
