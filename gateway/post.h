/*
 * post.h - the body of POST /v1/updates: an already signed envelope,
 * either as its protobuf bytes (SignedUpdate) or in its JSON form
 * ({"signed_body","signature","signer"} in base64, parley_envelope_to_json()).
 *
 * Nothing is verified here: parleyd does, and its answer (with its
 * counters) is what the client gets. What is checked is that the body is
 * an envelope at all, so that a body of the wrong kind is answered by
 * the gateway and never reaches the daemon.
 */
#ifndef GW_POST_H
#define GW_POST_H

#include <stddef.h>
#include <stdint.h>

/*
 * Turn a POST body into SignedUpdate bytes. content_type (may be NULL)
 * picks the form: application/json for JSON; application/x-protobuf,
 * application/protobuf, application/octet-stream or
 * application/vnd.parley.signed-update for bytes; none: JSON when the
 * first byte that is not white space is '{', else bytes. Parameters after
 * a ';' are ignored.
 *
 * Returns:   0 with *out_len set; PARLEY_EMALFORMED with the reason in
 *            detail; -EPROTONOSUPPORT (another media type); -ENOBUFS
 *            (cap too small: PARLEY_ENVELOPE_MAX + 128 suffices for any
 *            body this accepts).
 */
int gw_post_envelope(const char *content_type, const void *body, size_t len,
                     uint8_t *out, size_t cap, size_t *out_len, char *detail,
                     size_t dcap);

#endif /* GW_POST_H */
