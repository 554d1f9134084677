/*
 * probe.h - what answers at an endpoint, for messages after a failed
 * call: nothing, something that is not ZeroMQ, a ZeroMQ socket with
 * CURVE, or a ZeroMQ socket of some type (parleyd's api is a ROUTER, its
 * feed an XPUB).
 *
 * The probe speaks the first bytes of ZMTP 3 (RFC 23) itself over a plain
 * socket: it sends a greeting and reads the peer's, and with the NULL
 * mechanism the peer's READY command, which names its socket type. It
 * sends nothing else, so it is harmless to whatever listens.
 */
#ifndef PARLEY_CLI_PROBE_H
#define PARLEY_CLI_PROBE_H

#include <stddef.h>

typedef enum {
    CLI_PROBE_OTHER = 0,    /* not a tcp:// or ipc:// endpoint, or an error */
    CLI_PROBE_NOTHING,      /* connection refused: nothing listens */
    CLI_PROBE_UNREACHABLE,  /* no connection within the time */
    CLI_PROBE_SILENT,       /* connected, but no bytes came back */
    CLI_PROBE_NOT_ZMTP,     /* bytes came back that are not a ZMTP greeting */
    CLI_PROBE_CURVE,        /* ZeroMQ, with the CURVE mechanism */
    CLI_PROBE_ZMTP,         /* ZeroMQ (NULL mechanism); type names the socket */
} cli_probe_t;

/*
 * Connect to a tcp:// or ipc:// endpoint and see what answers, waiting at
 * most timeout_ms in all. With CLI_PROBE_ZMTP, type (cap bytes) holds the
 * peer's Socket-Type ("ROUTER", "XPUB", ...), or "" if it did not send one
 * in time.
 *
 * Returns:   what was found.
 * Threads:   safe.
 */
cli_probe_t cli_probe(const char *endpoint, int timeout_ms, char *type,
                      size_t cap);

/*
 * Split a tcp:// endpoint into host and port (brackets of an IPv6 host
 * removed). Returns 0, or -1 for another transport or a bad form.
 */
int cli_endpoint_split(const char *endpoint, char *host, size_t hcap,
                       int *port);

#endif /* PARLEY_CLI_PROBE_H */
