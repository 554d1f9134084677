/*
 * peers.c - starting the peer brokers (mosquitto, nats-server) that the
 * fan-out and latency benchmarks compare parley with. Debian installs both
 * in /usr/sbin, which is not always on a user's PATH.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Full path of a broker binary, or NULL if it is not installed. */
static const char *
s_find(const char *name, char *buf, size_t cap)
{
    static const char *const dirs[] = { "/usr/sbin", "/usr/bin",
                                        "/usr/local/sbin", "/usr/local/bin",
                                        "/sbin", "/bin" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(buf, cap, "%s/%s", dirs[i], name);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

static int
s_wait(bench_broker_t *b, const char *what)
{
    if (bench_wait_port(b->port, 10000, b->pid) == 0)
        return 0;
    bench_log_tail(b->log_path, what);
    bench_broker_stop(b);
    return -ETIMEDOUT;
}

int
bench_mosquitto_start(bench_broker_t *b, const char *dir, bool nodelay)
{
    char bin[BENCH_PATH_MAX], conf_path[BENCH_PATH_MAX], conf[512];
    memset(b, 0, sizeof(*b));
    if (s_find("mosquitto", bin, sizeof(bin)) == NULL)
        return -ENOENT;
    if ((b->port = bench_free_port()) < 0)
        return b->port;
    snprintf(b->log_path, sizeof(b->log_path), "%s/mosquitto.log", dir);
    snprintf(conf_path, sizeof(conf_path), "%s/mosquitto.conf", dir);
    snprintf(conf, sizeof(conf),
             "# written by the parley benchmarks\n"
             "listener %d 127.0.0.1\n"
             "allow_anonymous true\n"
             "persistence false\n"
             "log_dest stderr\n"
             "log_type error\n"
             "log_type warning\n"
             "set_tcp_nodelay %s\n",
             b->port, nodelay ? "true" : "false");
    int rc = bench_file_write(conf_path, conf);
    if (rc < 0)
        return rc;
    const char *argv[] = { bin, "-c", conf_path, NULL };
    if ((b->pid = bench_spawn(argv, b->log_path)) < 0) {
        rc = b->pid;
        b->pid = 0;
        return rc;
    }
    return s_wait(b, "mosquitto");
}

int
bench_nats_start(bench_broker_t *b, const char *dir)
{
    char bin[BENCH_PATH_MAX], port[16];
    memset(b, 0, sizeof(*b));
    if (s_find("nats-server", bin, sizeof(bin)) == NULL)
        return -ENOENT;
    if ((b->port = bench_free_port()) < 0)
        return b->port;
    snprintf(port, sizeof(port), "%d", b->port);
    snprintf(b->log_path, sizeof(b->log_path), "%s/nats-server.log", dir);
    const char *argv[] = { bin, "-a", "127.0.0.1", "-p", port, NULL };
    if ((b->pid = bench_spawn(argv, b->log_path)) < 0) {
        int rc = b->pid;
        b->pid = 0;
        return rc;
    }
    return s_wait(b, "nats-server");
}

void
bench_broker_stop(bench_broker_t *b)
{
    (void)bench_stop(b->pid);
    b->pid = 0;
}
