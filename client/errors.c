/*
 * errors.c - names and descriptions of error codes, and which are worth
 * a retry; the library's version.
 */
#include "parley.h"

#include <errno.h>
#include <string.h>

static const struct {
    int code;
    const char *name; /* short, stable; also the wire reject name */
    const char *text; /* a sentence for people */
} s_errors[] = {
    { PARLEY_ETOOLARGE, "too_large", "message is over the size limit" },
    { PARLEY_EMALFORMED, "malformed", "message does not decode" },
    { PARLEY_EUNKNOWNSIGNER, "unknown_signer", "signer is not in the keyring" },
    { PARLEY_EBADSIG, "bad_signature", "signature does not verify" },
    { PARLEY_EINVALID, "invalid", "update breaks a schema rule" },
    { PARLEY_EFORBIDDEN, "forbidden",
      "signer may not publish for this negotiation, party or phase, or "
      "client may not ask this" },
    { PARLEY_ESTALE, "stale", "issued_at is too far in the past" },
    { PARLEY_EFUTURE, "future", "issued_at is too far in the future" },
    { PARLEY_EREPLAY, "replay",
      "signer_seq is not above the last one accepted from this signer" },
    { PARLEY_ETRUNCATED, "truncated", "the daemon no longer holds that data" },
    { PARLEY_EUNAVAILABLE, "unavailable", "the daemon cannot serve this right now" },
    { PARLEY_EBADREQUEST, "bad_request", "the daemon does not understand the request" },
    { PARLEY_ERATELIMITED, "rate_limited", "signer is over its rate limit" },
    { PARLEY_ETIMEOUT, "timeout", "no answer within the timeout" },
    { PARLEY_EKEYPERM, "key_permissions",
      "secret key file must be owned by you and not readable by others (chmod 600)" },
    { PARLEY_EKEYFILE, "key_file", "key file has the wrong format" },
    { PARLEY_EKEYRING, "keyring", "keyring has an error" },
    { PARLEY_EPROTO, "protocol", "peer answered something unexpected" },
    { PARLEY_EARG, "argument", "invalid argument" },
    { PARLEY_EINCONSISTENT, "inconsistent",
      "the log's signed checkpoints or proofs contradict each other" },
    { PARLEY_EUNWITNESSED, "unwitnessed",
      "the checkpoint lacks the witness cosignatures asked for" },
};

static int
s_find(int err)
{
    for (size_t i = 0; i < sizeof(s_errors) / sizeof(s_errors[0]); i++)
        if (s_errors[i].code == err)
            return (int)i;
    return -1;
}

/* -errno values are small; PARLEY_E* and anything else are not. */
static int
s_is_errno(int err)
{
    return err < 0 && err > -1000;
}

const char *
parley_error_name(int err)
{
    if (err == 0)
        return "ok";
    if (err == PARLEY_DUPLICATE)
        return "duplicate";
    int i = s_find(err);
    if (i >= 0)
        return s_errors[i].name;
    if (s_is_errno(err)) {
        const char *name = strerrorname_np(-err);
        if (name != NULL)
            return name;
    }
    return "unknown_error";
}

const char *
parley_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err == PARLEY_DUPLICATE)
        return "accepted before: the seq is the original one";
    int i = s_find(err);
    if (i >= 0)
        return s_errors[i].text;
    if (s_is_errno(err))
        return strerror(-err);
    return "unknown error";
}

int
parley_error_retryable(int err)
{
    switch (err) {
    case PARLEY_ETIMEOUT:
    case PARLEY_EUNAVAILABLE:
    case PARLEY_ERATELIMITED:
    case PARLEY_EFUTURE:
    case -EAGAIN:
    case -EINTR:
    case -ENOMEM:
        return 1;
    default:
        return 0;
    }
}

const char *
parley_version(void)
{
    return PARLEY_VERSION;
}

size_t
parley_envelope_max(void)
{
    return PARLEY_ENVELOPE_MAX;
}
