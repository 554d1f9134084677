/*
 * cosign.h - parleyd's witness client: it asks the configured witnesses
 * to cosign each new checkpoint, over the C2SP tlog-witness protocol
 * (c2sp.org/tlog-witness, "add-checkpoint"), and keeps the cosignatures
 * they return, checked, for the checkpoints parleyd publishes.
 *
 * The witness list (the `witnesses` file of the config) has one witness
 * per line, '#' comments and blank lines allowed:
 *
 *     NAME PUBKEY_BASE64 URL
 *
 * NAME is the witness's key name (its cosignature lines carry it), URL
 * its submission prefix: requests go to URL/add-checkpoint.
 *
 * For each witness the client remembers the tree size the witness last
 * cosigned (learned from its answers; 0 at start). A new checkpoint goes
 * out as
 *
 *     old <that size>
 *     <consistency proof from that size, one base64 hash per line>
 *     <blank line>
 *     <the checkpoint, signed by the log>
 *
 * 200: the body holds cosignature lines; the witness's own is checked
 * against its key and the checkpoint text and kept. 409 with a size body:
 * the witness knows another size; the request goes out again at once
 * with a proof from it (once). Anything else (or no answer within the
 * timeout): counted, logged (rate-limited) and tried again after a back-off
 * of 1, 2, 4 ... 60 s, or with the next checkpoint.
 *
 * Everything runs on the daemon's loop thread through libcurl's multi
 * interface: pd_cosign_poll() drives the transfers and says when it wants
 * to be called again; nothing blocks.
 *
 * Threads: one thread at a time (the loop's).
 */
#ifndef PD_COSIGN_H
#define PD_COSIGN_H

#include "note.h"
#include "stats.h"
#include "tlog.h"

#include <stddef.h>
#include <stdint.h>

#define PD_COSIGN_MAX 32 /* witnesses in the list at most */

typedef struct pd_cosign pd_cosign_t;

/*
 * The consistency proof from old_size to new_size, from the log's tree.
 * Returns 0 or a negative error.
 */
typedef int (*pd_cosign_prove_fn)(void *ctx, uint64_t old_size,
                                  uint64_t new_size, parley__tlog_proof_t *out);

/*
 * Read the witness list at path and set up the transfers.
 *
 * Returns:   the client, or NULL with *err set (-EINVAL with a message
 *            naming file and line in errbuf, -errno, -ENOMEM).
 * Ownership: the caller's; free with pd_cosign_destroy(). prove's ctx
 *            must outlive the client; stats (may be NULL) too.
 */
pd_cosign_t *pd_cosign_new(const char *path, uint32_t timeout_ms,
                           pd_cosign_prove_fn prove, void *ctx,
                           pd_stats_t *stats, char *errbuf, size_t errlen,
                           int *err);

/* Abort the transfers and free; *c becomes NULL. Accepts NULL. */
void pd_cosign_destroy(pd_cosign_t **c);

/* Witnesses in the list. */
size_t pd_cosign_count(const pd_cosign_t *c);

/*
 * The checkpoint to have cosigned from now on: note is the signed note
 * (text and the log's signature), text_len the length of its text, size
 * its tree size. Copied. Requests go out at the next pd_cosign_poll().
 *
 * Returns:   0 or -ENOMEM.
 */
int pd_cosign_submit(pd_cosign_t *c, const char *note, size_t len,
                     size_t text_len, uint64_t size);

/*
 * Drive the transfers: read answers, start requests that are due.
 *
 * Returns:   milliseconds until the client wants to be called again
 *            (-1: nothing to do until the next submit).
 */
long pd_cosign_poll(pd_cosign_t *c, int64_t now_ms);

/*
 * The cosignature lines (each with its newline) the witnesses gave for
 * exactly this checkpoint text, appended to out (cap bytes, NUL kept).
 *
 * Returns:   the bytes appended, or -ENOBUFS (nothing appended).
 */
long pd_cosign_lines(const pd_cosign_t *c, const char *text, size_t text_len,
                     char *out, size_t cap);

/* Valid cosignatures received, and requests that failed, since start. */
uint64_t pd_cosign_received(const pd_cosign_t *c);
uint64_t pd_cosign_failed(const pd_cosign_t *c);

/*
 * Parse a witness list (for tests and the config check): up to max
 * entries into names/pks/urls.
 *
 * Returns:   the number of witnesses, or -EINVAL with a message ("LINE:
 *            what") in errbuf.
 */
typedef struct pd_cosign_witness {
    char name[PARLEY__NOTE_NAME_MAX + 1];
    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char url[1024];
} pd_cosign_witness_t;

int pd_cosign_parse(const char *text, size_t len, pd_cosign_witness_t *out,
                    size_t max, char *errbuf, size_t errlen);

#endif /* PD_COSIGN_H */
