/*
 * probe.c - see what answers at an endpoint (probe.h).
 */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ZMTP 3 greeting: signature, version, mechanism, as-server, filler. */
#define S_GREETING_BYTES 64

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
cli_endpoint_split(const char *endpoint, char *host, size_t hcap, int *port)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return -1;
    const char *h = endpoint + 6;
    const char *colon = strrchr(h, ':');
    if (colon == NULL || colon == h)
        return -1;
    size_t hlen = (size_t)(colon - h);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    /* "tcp://iface;host:port" (a source address) is not ours to probe */
    if (hlen == 0 || hlen >= hcap || memchr(h, ';', hlen) != NULL)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

/* Wait until fd is ready for events or the deadline. 1, 0 (time), -1. */
static int
s_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - s_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = fd, .events = events };
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc < 0 ? -1 : rc;
    }
}

/*
 * Connect a non-blocking socket to the endpoint. Returns the fd, or -1
 * with *why set to CLI_PROBE_NOTHING, CLI_PROBE_UNREACHABLE or
 * CLI_PROBE_OTHER.
 */
static int
s_connect(const char *endpoint, int64_t deadline, cli_probe_t *why)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char host[256];
    int port, fd;
    *why = CLI_PROBE_OTHER;
    memset(&ss, 0, sizeof(ss));
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        const char *path = endpoint + 6;
        if (strlen(path) >= sizeof(un->sun_path) || path[0] == '\0')
            return -1;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        sslen = sizeof(*un);
    } else if (cli_endpoint_split(endpoint, host, sizeof(host), &port) == 0) {
        struct addrinfo hints, *ai = NULL;
        char ports[8];
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        snprintf(ports, sizeof(ports), "%d", port);
        if (getaddrinfo(strcmp(host, "*") == 0 ? "127.0.0.1" : host, ports,
                        &hints, &ai)
                != 0
            || ai == NULL)
            return -1;
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sslen = ai->ai_addrlen;
        freeaddrinfo(ai);
    } else {
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
        int e = errno;
        if (e == EINPROGRESS && s_wait(fd, POLLOUT, deadline) > 0) {
            socklen_t len = sizeof(e);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
        } else if (e == EINPROGRESS) {
            e = ETIMEDOUT;
        }
        if (e != 0) {
            close(fd);
            *why = e == ECONNREFUSED || e == ENOENT ? CLI_PROBE_NOTHING
                   : e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH
                       ? CLI_PROBE_UNREACHABLE
                       : CLI_PROBE_OTHER;
            return -1;
        }
    }
    return fd;
}

/* Write all of buf before the deadline. 0 or -1. */
static int
s_write_all(int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (s_wait(fd, POLLOUT, deadline) <= 0)
            return -1;
    }
    return 0;
}

/* Read exactly len bytes before the deadline. Returns the bytes read
 * (fewer at the deadline or when the peer closed). */
static size_t
s_read_upto(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = recv(fd, buf + got, len - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            break;
        if (s_wait(fd, POLLIN, deadline) <= 0)
            break;
    }
    return got;
}

/*
 * Find the Socket-Type property in the body of a READY command (after
 * its name). Writes it to type, or "".
 */
static void
s_socket_type(const uint8_t *p, size_t len, char *type, size_t cap)
{
    type[0] = '\0';
    while (len > 0) {
        size_t nlen = p[0];
        if (1 + nlen + 4 > len)
            return;
        const uint8_t *name = p + 1;
        const uint8_t *v = name + nlen;
        size_t vlen = ((size_t)v[0] << 24) | ((size_t)v[1] << 16)
                      | ((size_t)v[2] << 8) | v[3];
        if (vlen > len - 1 - nlen - 4)
            return;
        if (nlen == 11 && strncasecmp((const char *)name, "Socket-Type", 11) == 0
            && vlen < cap) {
            memcpy(type, v + 4, vlen);
            type[vlen] = '\0';
            return;
        }
        p += 1 + nlen + 4 + vlen;
        len -= 1 + nlen + 4 + vlen;
    }
}

cli_probe_t
cli_probe(const char *endpoint, int timeout_ms, char *type, size_t cap)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    cli_probe_t why;
    uint8_t greet[S_GREETING_BYTES], peer[S_GREETING_BYTES];
    if (cap > 0)
        type[0] = '\0';
    int fd = s_connect(endpoint, deadline, &why);
    if (fd < 0)
        return why;
    /* Our greeting: ZMTP 3.0, NULL mechanism, as a client. */
    memset(greet, 0, sizeof(greet));
    greet[0] = 0xff;
    greet[8] = 0x01;
    greet[9] = 0x7f;
    greet[10] = 3;
    greet[11] = 0;
    memcpy(greet + 12, "NULL", 4);
    cli_probe_t found = CLI_PROBE_SILENT;
    if (s_write_all(fd, greet, sizeof(greet), deadline) < 0)
        goto out;
    size_t got = s_read_upto(fd, peer, 10, deadline);
    if (got == 0)
        goto out;
    if (got < 10 || peer[0] != 0xff || peer[9] != 0x7f) {
        found = CLI_PROBE_NOT_ZMTP;
        goto out;
    }
    found = CLI_PROBE_ZMTP;
    if (s_read_upto(fd, peer + 10, sizeof(peer) - 10, deadline)
        < sizeof(peer) - 10)
        goto out;
    if (memcmp(peer + 12, "CURVE", 5) == 0) {
        found = CLI_PROBE_CURVE;
        goto out;
    }
    if (memcmp(peer + 12, "NULL", 4) != 0)
        goto out;
    /* With NULL, the peer sends its READY (with its Socket-Type) when its
     * side of the handshake is done, whether ours came or not. Ours is
     * not sent: a socket type the peer cannot talk to (a DEALER to an
     * XPUB) could make it hang up before its READY goes out. */
    uint8_t head[9], body[512];
    if (s_read_upto(fd, head, 2, deadline) < 2 || (head[0] & 0x04) == 0)
        goto out;
    size_t blen = head[1];
    if (head[0] & 0x02) { /* a long command: 8-byte size */
        if (s_read_upto(fd, head + 2, 7, deadline) < 7)
            goto out;
        blen = 0;
        for (int i = 1; i < 9; i++)
            blen = (blen << 8) | head[i];
    }
    if (blen > sizeof(body) || s_read_upto(fd, body, blen, deadline) < blen)
        goto out;
    if (blen > 6 && body[0] == 5 && memcmp(body + 1, "READY", 5) == 0 && cap > 0)
        s_socket_type(body + 6, blen - 6, type, cap);
out:
    close(fd);
    return found;
}
