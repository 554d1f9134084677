/*
 * zap_int.h - the ZAP module's internals shared by its files:
 * zap_handler.c (the ZAP handler, secured sockets, monitors, connection
 * records, the handler's retirement) and zap.c (subscriptions, access
 * classes, reload). Nothing else includes this header.
 */
#ifndef PD_ZAP_INT_H
#define PD_ZAP_INT_H

#include "zap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The metadata property that carries a connection's number. */
#define PD_ZAP__CONN_PROP "X-Conn"
#define PD_ZAP__ADDR_MAX 64 /* peer address kept for logs */

/* What the ZAP handler knows about one admitted connection. */
typedef struct {
    uint64_t id;                    /* connection number, 0 = empty */
    uint32_t subscriptions;         /* granted so far */
    char user[PARLEY_SLUG_MAX + 1]; /* ZAP user id, "" with curve off */
    char addr[PD_ZAP__ADDR_MAX];    /* peer address */
} pd_zap_conn_t;

/* One secured socket and its monitor. */
typedef struct {
    void *sock;      /* borrowed: the api or a feed socket */
    void *monitor;   /* PAIR reading its events */
    char name[16];   /* "api", "feed", "feed-3" */
    char domain[32]; /* its ZAP domain, which says what it is to ZAP */
    int klass;       /* a feed's access class; -1: any client (api) */
    uint64_t live;   /* accepted - disconnected */
    uint64_t shaking; /* accepted, handshake not over yet */
} pd_zap_watch_t;

/* The most connections accepted while no handler was bound that are kept
 * (see pd_zap_tick()); more in one window are rare, and not rescued. */
#define PD_ZAP__STRAY_MAX 32

/* A connection accepted while no handler was bound (a renewal): its
 * handshake may have asked none. The addresses tell its descriptor from
 * a later one with the same number. */
typedef struct {
    int fd;                        /* libzmq's socket descriptor */
    socklen_t local_len, peer_len; /* of the addresses below */
    struct sockaddr_storage local; /* getsockname() when seen */
    struct sockaddr_storage peer;  /* getpeername() when seen */
} pd_zap_stray_t;

struct pd_zap {
    void *ctx;         /* borrowed */
    void *rep;         /* REP on the ZAP endpoint */
    void *old;         /* the previous REP, unbound, until its grace ends */
    int64_t old_since; /* CLOCK_MONOTONIC ms when old was unbound */
    uint64_t attached; /* requests rep has served (pipes it holds) */
    uint64_t asking;   /* requests read (either handler) less handshakes
                          ended since: those in their handshake that have
                          asked (errs low; at most all in a handshake) */
    int64_t served_at; /* CLOCK_MONOTONIC ms of rep's last request */
    int64_t joined_at; /* CLOCK_MONOTONIC ms of the last accept seen */
    int64_t trim_at;   /* when to malloc_trim() after a close, 0 = no */
    bool enforced;     /* ZAP is enforced on every secured socket */
    bool unbound;      /* rep lost its endpoint in a failed renewal */
    bool window;       /* no handler may be bound: keep strays */
    bool met;          /* a handshake found no handler bound */
    pd_zap_stray_t stray[PD_ZAP__STRAY_MAX]; /* accepted in the window */
    size_t n_stray;
    bool curve;
    uint32_t max_connections;
    uint32_t max_subscriptions;
    int handshake_ms;
    char clients_path[PD_CONFIG_PATH_MAX];
    uint8_t *secret; /* sodium_malloc'd, NULL once wiped */
    char public_z85[PARLEY_CURVE_KEY_CHARS + 1];
    pd_clients_t *clients; /* allow-list, NULL with curve off */
    uint64_t generation;   /* +1 whenever the access classes change */
    pd_zap_watch_t watch[PD_ZAP_SOCKETS];
    size_t n_watch;
    unsigned serial;       /* secured sockets so far: names domains */
    pd_zap_conn_t *conns;  /* ring of connection records */
    size_t n_conns;
    uint64_t next_conn; /* number of the next connection */
    pd_zap_counters_t counters;
};

#endif
