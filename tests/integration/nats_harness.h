/*
 * nats_harness.h - real NATS JetStream servers for parley's cluster tests
 * and benchmarks.
 *
 * Starts 1 to PH_NATS_MAX `nats-server` processes with JetStream on, each
 * with its own server name, its own file store in a temporary directory,
 * client and cluster ports chosen free on 127.0.0.1, and (for more than
 * one) routes to every other node, so they form one JetStream cluster.
 * Readiness is polled with nats.c (the meta leader answers a JetStream
 * account request through every node), never slept for. A test can then
 * find a stream's leader, kill -9, SIGSTOP, SIGCONT and restart single
 * nodes by pid, and stop everything at the end. Nothing listens outside
 * 127.0.0.0/8.
 *
 * Helpers return 0 (or a node index) on success and a negative -errno on
 * failure, and print a line saying what failed on stderr. Names carry the
 * ph_nats_ prefix.
 *
 * Threads: one cluster is driven from one thread (the one that started
 * it: nodes die with it, see ph_nats_start()).
 */
#ifndef PARLEY_NATS_HARNESS_H
#define PARLEY_NATS_HARNESS_H

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PH_NATS_MAX 5           /* nodes in one cluster */
#define PH_NATS_PATH_MAX 512
#define PH_NATS_URL_MAX 64      /* "nats://127.0.0.1:65535" and room */

/* One nats-server process. */
typedef struct ph_nats_node {
    pid_t pid;                      /* 0 when not running */
    bool stopped;                   /* SIGSTOPped by ph_nats_sigstop() */
    int port;                       /* client port on 127.0.0.1 */
    int cluster_port;               /* route port on 127.0.0.1 (n > 1) */
    char name[16];                  /* server_name: "n1", "n2", ... */
    char dir[PH_NATS_PATH_MAX];     /* this node's directory */
    char conf[PH_NATS_PATH_MAX + 16];  /* dir/nats.conf */
    char log[PH_NATS_PATH_MAX + 16];   /* dir/nats.log: stdout + stderr */
    char store[PH_NATS_PATH_MAX + 16]; /* dir/store: the JetStream files */
    char url[PH_NATS_URL_MAX];      /* nats://127.0.0.1:<port> */
} ph_nats_node_t;

/* Options of ph_nats_start(); zero them for the defaults. */
typedef struct ph_nats_opts {
    int nodes;              /* 1..PH_NATS_MAX; 0 = 1 */
    const char *dir;        /* parent directory; NULL = a fresh one under
                               $TMPDIR, removed by ph_nats_stop() */
    const char *extra_conf; /* text appended to every node's config (a
                               tls block, say), or NULL */
    const char *url_scheme; /* "nats" (NULL) or "tls" in the urls */
    const char *tls_ca;     /* for the harness's own connections to a TLS
                               cluster: CA file, or NULL */
    const char *tls_cert;   /* and client certificate + key, or NULL */
    const char *tls_key;
    int ready_ms;           /* ph_nats_start() waits this long for the
                               cluster to be ready; 0 = 20000 */
} ph_nats_opts_t;

/* A set of nodes forming one JetStream cluster (or one server). */
typedef struct ph_nats_cluster {
    int n;                          /* nodes */
    char dir[PH_NATS_PATH_MAX];     /* parent of the node directories */
    bool own_dir;                   /* made here: removed at stop */
    char extra_conf[2048];
    char scheme[8];
    char tls_ca[PH_NATS_PATH_MAX], tls_cert[PH_NATS_PATH_MAX],
        tls_key[PH_NATS_PATH_MAX];
    ph_nats_node_t node[PH_NATS_MAX];
    char urls[PH_NATS_MAX * (PH_NATS_URL_MAX + 1)]; /* "url,url,..." */
} ph_nats_cluster_t;

/*
 * Write each node's config and start the nodes, then wait (up to
 * opts->ready_ms) until ph_nats_wait_ready() says the cluster is ready. A
 * node that exits during start-up (a port taken between choosing and
 * binding) makes the whole start retry on fresh ports, up to 3 times.
 * Each node gets SIGKILL if the starting thread dies, so a crashed test
 * leaves no server behind.
 *
 * Returns:   0, -ENOENT if nats-server is not installed, -ETIMEDOUT,
 *            -ECHILD (a node kept exiting; its log is printed) or -errno.
 *            On failure nothing is left running.
 * Ownership: stop with ph_nats_stop() in every case.
 */
int ph_nats_start(ph_nats_cluster_t *c, const ph_nats_opts_t *opts);

/*
 * Wait until every running, not stopped node answers a JetStream account
 * info request (which only the meta leader answers, so this proves that a
 * meta leader is elected and reachable through each node's routes).
 *
 * Returns:   0 or -ETIMEDOUT (each silent node is named on stderr).
 */
int ph_nats_wait_ready(ph_nats_cluster_t *c, int timeout_ms);

/*
 * Index of the node that leads stream `stream` now, asked through any
 * running node; polls until a leader is known or timeout_ms passes. With
 * one node it is that node (0).
 *
 * Returns:   0..n-1, -ENOENT (no such stream), or -ETIMEDOUT.
 */
int ph_nats_stream_leader(ph_nats_cluster_t *c, const char *stream,
                          int timeout_ms);

/*
 * Create stream `name` holding `subject` (a wildcard is fine) with
 * `replicas`, file storage (memory storage with `memory`), through any
 * running node; retries until timeout_ms while the cluster cannot place
 * it yet (a new stream can lag the meta leader by a moment).
 * Returns:   0, or -EIO (the last error is printed).
 */
int ph_nats_add_stream(ph_nats_cluster_t *c, const char *name,
                       const char *subject, int replicas, bool memory,
                       int timeout_ms);

/* Index of the node named name ("n2"), or -ENOENT. */
int ph_nats_node_by_name(const ph_nats_cluster_t *c, const char *name);

/*
 * SIGKILL node i and reap it (a crash: nothing is flushed). Its store is
 * kept, so ph_nats_restart() brings the same server back.
 * Returns:   0, or -ESRCH if it was not running.
 */
int ph_nats_kill9(ph_nats_cluster_t *c, int i);

/*
 * SIGSTOP node i: it keeps its sockets but answers nothing. Returns once
 * every thread of the process is stopped: 0, -ESRCH, or -ETIMEDOUT (not
 * stopped within 2 s).
 */
int ph_nats_sigstop(ph_nats_cluster_t *c, int i);

/* SIGCONT a node stopped by ph_nats_sigstop(). 0 or -ESRCH. */
int ph_nats_sigcont(ph_nats_cluster_t *c, int i);

/*
 * Start node i again with its config (same name, ports and store) after
 * ph_nats_kill9() or ph_nats_term(), and wait until its client port
 * accepts connections (not for the cluster: call ph_nats_wait_ready() or
 * poll what the test needs).
 * Returns:   0, -EBUSY if it still runs, -ECHILD if it exited at once (its
 *            log is printed), -ETIMEDOUT, or -errno.
 */
int ph_nats_restart(ph_nats_cluster_t *c, int i);

/*
 * SIGTERM node i (SIGCONT first if stopped) and wait up to 10 s, then
 * SIGKILL. Returns its exit status, 128 + signal, or -ESRCH.
 */
int ph_nats_term(ph_nats_cluster_t *c, int i);

/*
 * Stop every node still running (as ph_nats_term()), remove the directory
 * if ph_nats_start() made it, and leave c zeroed but safe to pass here
 * again. With dump_logs, each node's log is printed first (for a failed
 * test). Accepts a cluster that never started.
 */
void ph_nats_stop(ph_nats_cluster_t *c, bool dump_logs);

/* Print node i's log to stderr. */
void ph_nats_dump_log(const ph_nats_cluster_t *c, int i);

/* ------------------------------------------- parleyd nodes (cluster mode) */

/* parleyd processes in cluster mode on one NATS cluster. */
typedef struct ph_nodes {
    int n;                              /* parleyd nodes */
    char conf[PH_PATH_MAX];             /* the config file they share */
    char keyring[PH_PATH_MAX];          /* the keyring they share */
    /* node i's --backbone: every server, its own (i mod servers) first */
    char backbone[PH_NATS_MAX][PH_NATS_MAX * (PH_NATS_URL_MAX + 1)];
    ph_daemon_t d[PH_NATS_MAX];         /* d[i].dir is DIR/p<i+1> */
} ph_nodes_t;

/*
 * Start n parleyd (1..PH_NATS_MAX) with --backbone on the servers of c,
 * the keyring (path) and config (text written to DIR/cluster.conf, may be
 * NULL), each in DIR/p<i> with free ports, one after the other (each
 * waits for a ping answer: its backbone is open then). The stream
 * options are the config's.
 * Returns:   0, or a negative error (the failing node's log is printed);
 *            stop with ph_nodes_stop() in every case.
 */
int ph_nodes_start(ph_nodes_t *s, const ph_nats_cluster_t *c, int n,
                   const char *dir, const char *keyring, const char *config);

/* Start node i again (after ph_daemon_kill9() or ph_daemon_stop()) on its
 * ports and state. Returns as ph_daemon_restart(). */
int ph_nodes_restart(ph_nodes_t *s, int i);

/* SIGTERM every node (teardown: logs printed unless test_ok). */
void ph_nodes_stop(ph_nodes_t *s, bool test_ok);

/*
 * The api endpoints of the nodes as a list, node first's first, then the
 * others in order: the endpoint list of a client that prefers that node.
 */
void ph_nodes_api_list(const ph_nodes_t *s, int first, char *out,
                       size_t cap);

/*
 * Wait until every running node reports seq (its head) >= head and
 * cluster_catching_up 0. Returns 0 or -ETIMEDOUT (the heads printed).
 */
int ph_nodes_wait_head(const ph_nodes_t *s, uint64_t head, int timeout_ms);

/*
 * Compare the nodes' logs byte for byte: the same segment files, with
 * the same bytes. Returns 0, or -EBADMSG with what differs (file, first
 * differing offset, and the record seqs around it) printed.
 */
int ph_nodes_logs_equal(const ph_nodes_t *s);

#endif /* PARLEY_NATS_HARNESS_H */
