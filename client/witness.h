/*
 * witness.h - the C2SP tlog-witness protocol (c2sp.org/tlog-witness),
 * library-internal: the add-checkpoint request body, built by parleyd's
 * witness client (daemon/cosign.c) and parsed by a witness (witness.c,
 * behind parley_witness_*() in parley.h).
 *
 * The body, every line ending in a newline:
 *
 *     old <size, decimal, no leading zeros>
 *     <0 to 63 lines: one hash of the consistency proof each, base64>
 *     <empty line>
 *     <the checkpoint: a signed note>
 *
 * Threads: no shared state.
 */
#ifndef PARLEY_WITNESS_H
#define PARLEY_WITNESS_H

#include "note.h"
#include "tlog.h"

#include <stddef.h>
#include <stdint.h>

/* Proof lines an add-checkpoint request may carry (the spec's limit). */
#define PARLEY__WITNESS_PROOF_MAX 63
/* The largest body: "old " + 20 digits, the proof lines, a note. */
#define PARLEY__WITNESS_BODY_MAX                                            \
    (32 + PARLEY__WITNESS_PROOF_MAX * 45 + 1 + PARLEY__NOTE_MAX)

/* A parsed add-checkpoint request; pointers into the body. */
typedef struct parley__witness_req {
    uint64_t old_size;                            /* "old" line */
    size_t count;                                 /* proof hashes */
    parley__tlog_hash_t proof[PARLEY__WITNESS_PROOF_MAX];
    const char *note;                             /* the checkpoint */
    size_t note_len;
} parley__witness_req_t;

/*
 * Build a request body: the old size, the proof hashes (count of them),
 * then the note.
 *
 * Returns:   0, PARLEY_EARG (more than PARLEY__WITNESS_PROOF_MAX hashes)
 *            or -ENOMEM.
 * Ownership: *out (NUL-terminated, *out_len bytes) is the caller's; free().
 */
int parley__witness_req_build(uint64_t old_size,
                              const parley__tlog_hash_t *proof, size_t count,
                              const char *note, size_t note_len, char **out,
                              size_t *out_len);

/*
 * Parse a request body strictly (as above; the note itself is parsed
 * later, by the checkpoint parser). why (may be NULL) receives a static
 * reason on failure.
 *
 * Returns:   0, PARLEY_ETOOLARGE (over PARLEY__WITNESS_BODY_MAX) or
 *            PARLEY_EMALFORMED.
 */
int parley__witness_req_parse(const void *body, size_t len,
                              parley__witness_req_t *out, const char **why)
    PARLEY_WARN_UNUSED;

#endif /* PARLEY_WITNESS_H */
