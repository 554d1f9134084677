/*
 * gateway.c - parley-gateway's event-stream fan-out (issue 15,
 * acceptance 3).
 *
 * 10,000 Server-Sent Event streams (GET /v1/events) on one gateway read a
 * paced feed, and in the same run a parley_sub_t in this process reads
 * it straight from parleyd's feed (ZeroMQ). Reported:
 *
 *   - the gateway's resident memory per stream: its RSS with every stream
 *     open, idle and then after the feed (each connection has written its
 *     chunks; the larger of the two counts), less its RSS before the
 *     first stream, divided by the number of streams; goal at most
 *     16 KiB;
 *   - publish -> SSE latency, p50 and p99 over every (stream, update),
 *     beside publish -> parley_sub_t over every update; goal: the SSE p99
 *     at most 1.5 times the subscriber's;
 *   - that every stream got every update, once and in order;
 *   - the floor (s_floor()): the same reader and streams served by a
 *     bare writer with no gateway, its p99 and CPU per stream-update
 *     beside the gateway's.
 *
 * Timing: a publisher thread sends pre-signed envelopes at S_RATE per
 * second (absolute deadlines) and records the time just before each
 * send, indexed by the update's place in the feed (its seq less the seq
 * of a warm-up update); readers look that time up when the update's seq
 * arrives, so all timestamps come from one clock. This process reads the
 * 10,000 streams with one epoll thread: the time it takes to get to a
 * stream is part of what is measured, as it would be for real readers
 * on the same machine (2 cores here, shared by parleyd, the gateway and
 * this program).
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_RATE 10                 /* updates per second */
#define S_BATCH 500               /* streams opened at a time */

/* One stream, as this process reads it. */
typedef struct {
    int fd;
    enum { S_HEAD, S_SIZE, S_DATA, S_CRLF } state; /* HTTP framing */
    size_t chunk_left;   /* S_DATA: bytes of the chunk still to come */
    char line[48];       /* the start of the current SSE line */
    size_t line_len;
    size_t head_seen;    /* S_HEAD: bytes of "\r\n\r\n" matched */
    uint64_t pending_id; /* "id:" of the frame being read */
    uint32_t got;        /* updates received */
    int32_t last_k;      /* the last feed index received, -1 none */
    uint64_t bytes;      /* bytes read so far */
    bool open;           /* the stream's first bytes came */
    bool broken;         /* out of order, repeated, or closed */
} s_stream_t;

typedef struct {
    size_t nstreams, nupdates;
    uint64_t base_seq;              /* seq of the warm-up update */
    _Atomic uint64_t *sent_ns;      /* per update: just before its send */
    uint64_t *sse_ns;               /* per (stream, update): latency */
    uint64_t *sub_ns;               /* per update: latency to parley_sub_t */
    atomic_size_t sub_got;
    atomic_int stop;
    const char *api;
    const bench_key_t *key;
    const bench_envs_t *envs;
    int pub_err;
} s_run_t;

/* --------------------------------------------------------------- streams */

static int
s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* An SSE line is complete: an "id:" is kept for the "event: update"
 * that follows it in the same frame. */
static void
s_line(s_run_t *r, s_stream_t *s, size_t idx, uint64_t now)
{
    s->line[s->line_len < sizeof(s->line) ? s->line_len : sizeof(s->line) - 1] = '\0';
    if (strncmp(s->line, "id: ", 4) == 0) {
        s->pending_id = strtoull(s->line + 4, NULL, 10);
    } else if (strcmp(s->line, "event: update") == 0 && s->pending_id > r->base_seq) {
        uint64_t k = s->pending_id - r->base_seq - 1;
        if (k < r->nupdates) {
            uint64_t sent = atomic_load_explicit(&r->sent_ns[k], memory_order_acquire);
            if ((int64_t)k != s->last_k + 1)
                s->broken = true;
            s->last_k = (int32_t)k;
            s->got++;
            r->sse_ns[idx * r->nupdates + k] = sent != 0 && now > sent ? now - sent : 0;
        }
    } else if (s->line_len == 0) {
        s->pending_id = 0; /* the end of a frame */
    }
    s->line_len = 0;
}

/* Feed bytes of the body to the SSE line reader. */
static void
s_body(s_run_t *r, s_stream_t *s, size_t idx, const char *p, size_t n, uint64_t now)
{
    s->open = true;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            s_line(r, s, idx, now);
        } else if (s->line_len < sizeof(s->line) - 1) {
            s->line[s->line_len++] = p[i];
        } else {
            s->line_len++; /* a long data line: only its start matters */
        }
    }
}

/* Undo the HTTP framing (head, then chunked encoding). */
static void
s_bytes(s_run_t *r, s_stream_t *s, size_t idx, const char *p, size_t n, uint64_t now)
{
    size_t i = 0;
    while (i < n) {
        switch (s->state) {
        case S_HEAD: {
            static const char end[] = "\r\n\r\n";
            s->head_seen = p[i] == end[s->head_seen] ? s->head_seen + 1
                                                      : (p[i] == '\r' ? 1 : 0);
            i++;
            if (s->head_seen == 4) {
                s->state = S_SIZE;
                s->chunk_left = 0;
            }
            break;
        }
        case S_SIZE:
            if (p[i] == '\n') {
                s->state = s->chunk_left > 0 ? S_DATA : S_CRLF;
            } else if (p[i] != '\r') {
                int v = p[i] >= 'a' ? p[i] - 'a' + 10 : p[i] >= 'A' ? p[i] - 'A' + 10 : p[i] - '0';
                s->chunk_left = s->chunk_left * 16 + (size_t)v;
            }
            i++;
            break;
        case S_DATA: {
            size_t take = n - i < s->chunk_left ? n - i : s->chunk_left;
            s_body(r, s, idx, p + i, take, now);
            s->chunk_left -= take;
            i += take;
            if (s->chunk_left == 0)
                s->state = S_CRLF;
            break;
        }
        case S_CRLF:
            if (p[i] == '\n') {
                s->state = S_SIZE;
                s->chunk_left = 0;
            }
            i++;
            break;
        }
    }
}

/* Read everything a stream has. Returns 0, or -1 when it closed. */
static int
s_read(s_run_t *r, s_stream_t *s, size_t idx)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof(buf));
        if (n > 0) {
            s->bytes += (uint64_t)n;
            s_bytes(r, s, idx, buf, (size_t)n, bench_now_ns());
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        return -1;
    }
}

/* ------------------------------------------------------------- threads */

static void *
s_publisher(void *arg)
{
    s_run_t *r = arg;
    parley_pub_t *pub = bench_pub_new(r->api, r->key->key);
    if (pub == NULL) {
        r->pub_err = -errno;
        return NULL;
    }
    uint64_t start = bench_now_ns() + 200000000ull;
    for (size_t k = 0; k < r->nupdates && !atomic_load(&r->stop); k++) {
        uint64_t due = start + k * (1000000000ull / S_RATE);
        uint64_t now = bench_now_ns();
        if (due > now)
            bench_sleep_ns(due - now);
        atomic_store_explicit(&r->sent_ns[k], bench_now_ns(), memory_order_release);
        int rc = parley_pub_send(pub, bench_env(r->envs, k), r->envs->lens[k], NULL);
        uint64_t seq = 0;
        if (rc == 0)
            rc = parley_pub_recv(pub, 5000, NULL, &seq);
        if (rc < 0 || seq != r->base_seq + 1 + k) {
            r->pub_err = rc < 0 ? rc : -EPROTO;
            break;
        }
    }
    parley_pub_destroy(&pub);
    return NULL;
}

static void *
s_subscriber(void *arg)
{
    s_run_t *r = arg;
    parley_sub_t *sub = bench_sub_new(r->api, PARLEY_START_LIVE, 0);
    if (sub == NULL)
        return NULL;
    while (!atomic_load(&r->stop)) {
        const parley_event_t *ev;
        int rc = parley_sub_next(sub, 100, &ev);
        if (rc != 1 || parley_event_type(ev) != PARLEY_EVENT_DELIVERY)
            continue;
        uint64_t now = bench_now_ns();
        uint64_t seq = parley_event_seq(ev);
        if (seq <= r->base_seq || seq - r->base_seq - 1 >= r->nupdates)
            continue;
        uint64_t k = seq - r->base_seq - 1;
        uint64_t sent = atomic_load_explicit(&r->sent_ns[k], memory_order_acquire);
        r->sub_ns[k] = now > sent ? now - sent : 0;
        atomic_fetch_add(&r->sub_got, 1);
    }
    parley_sub_destroy(&sub);
    return NULL;
}

/* ----------------------------------------------------------------- main */

/* Read streams until pred(ctx) holds or timeout_ms passes. */
static int
s_pump(s_run_t *r, int ep, s_stream_t *st, int timeout_ms,
       bool (*pred)(s_run_t *, s_stream_t *), s_stream_t *arg)
{
    struct epoll_event evs[512];
    uint64_t until = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (!pred(r, arg)) {
        if (bench_now_ns() > until)
            return -ETIMEDOUT;
        int n = epoll_wait(ep, evs, 512, 50);
        for (int i = 0; i < n; i++) {
            size_t idx = evs[i].data.u64;
            if (s_read(r, &st[idx], idx) < 0) {
                st[idx].broken = true;
                epoll_ctl(ep, EPOLL_CTL_DEL, st[idx].fd, NULL);
            }
        }
    }
    return 0;
}

static s_stream_t *s_streams;
static size_t s_open_target;

static bool
s_all_open(s_run_t *r, s_stream_t *unused)
{
    (void)r;
    (void)unused;
    for (size_t i = 0; i < s_open_target; i++)
        if (!s_streams[i].open && !s_streams[i].broken)
            return false;
    return true;
}

static bool
s_all_got(s_run_t *r, s_stream_t *unused)
{
    (void)unused;
    for (size_t i = 0; i < r->nstreams; i++)
        if (s_streams[i].got < r->nupdates && !s_streams[i].broken)
            return false;
    return atomic_load(&r->sub_got) >= r->nupdates || r->pub_err != 0;
}

static void
s_streams_close(size_t n)
{
    for (size_t i = 0; s_streams != NULL && i < n; i++)
        if (s_streams[i].fd > 0)
            close(s_streams[i].fd);
    free(s_streams);
    s_streams = NULL;
}

/* Open r->nstreams streams to port, S_BATCH at a time: each sends the
 * request once connected and counts as open when its first body bytes
 * came. Returns 0, or -1 (said on stderr). */
static int
s_open_streams(s_run_t *r, int ep, int port)
{
    static const char req[] = "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Accept: text/event-stream\r\n\r\n";
    for (size_t i = 0; i < r->nstreams; i++) {
        s_stream_t *s = &s_streams[i];
        s->last_k = -1;
        if ((s->fd = s_connect(port)) < 0) {
            fprintf(stderr, "bench_gateway: connect %zu: %s\n", i, strerror(-s->fd));
            return -1;
        }
        /* The request goes once the connection is up. */
        struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = i };
        epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
        if ((i + 1) % S_BATCH != 0 && i + 1 != r->nstreams)
            continue;
        for (size_t k = i + 1 - ((i % S_BATCH) + 1); k <= i; k++) {
            struct pollfd pfd = { .fd = s_streams[k].fd, .events = POLLOUT };
            if (poll(&pfd, 1, 10000) != 1
                || write(s_streams[k].fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
                fprintf(stderr, "bench_gateway: stream %zu did not connect\n", k);
                return -1;
            }
            int one = 1;
            setsockopt(s_streams[k].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            struct epoll_event in = { .events = EPOLLIN | EPOLLET, .data.u64 = k };
            epoll_ctl(ep, EPOLL_CTL_MOD, s_streams[k].fd, &in);
        }
        s_open_target = i + 1;
        if (s_pump(r, ep, s_streams, 30000, s_all_open, NULL) < 0) {
            fprintf(stderr, "bench_gateway: streams did not open\n");
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- floor */

/*
 * The floor: what one frame to every stream costs on this machine with
 * no gateway at all. A child process accepts as many loopback
 * connections, answers each with a chunked event-stream head, and per
 * update writes one chunk of the gateway's frame size to every
 * connection in turn (one write each), at the same pace, recording the
 * time before its first write. The same reader measures it, so
 * "gateway p99 / floor p99" is what the gateway adds to the cost of
 * writing N sockets, which no design on one core avoids.
 */

static int
s_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Update id's chunk of about frame bytes into buf (cap >= frame + 64). */
static size_t
s_floor_chunk(char *buf, size_t frame, uint64_t id)
{
    char body[4096];
    int h = snprintf(body, sizeof(body), "id: %" PRIu64 "\nevent: update\ndata: ", id);
    size_t want = frame > (size_t)h + 16 ? frame - 10 : (size_t)h + 6;
    if (want > sizeof(body) - 2)
        want = sizeof(body) - 2;
    size_t len = (size_t)h;
    while (len < want - 2)
        body[len++] = 'x';
    body[len++] = '\n';
    body[len++] = '\n';
    int c = sprintf(buf, "%zx\r\n", len);
    memcpy(buf + c, body, len);
    memcpy(buf + c + len, "\r\n", 2);
    return (size_t)c + len + 2;
}

/* The floor's writer (runs in the child); exits when go_fd closes. */
static int
s_floor_writer(int lfd, int go_fd, size_t n, size_t nupdates, size_t frame,
               _Atomic uint64_t *sent_ns)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n7\r\n: open\n\r\n";
    int *fds = calloc(n, sizeof(*fds));
    char *buf = malloc(frame + 4096 + 64);
    if (fds == NULL || buf == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR) {
            i--;
            continue;
        }
        int one = 1;
        if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0
            || s_write_all(fd, head, sizeof(head) - 1) < 0)
            return 1;
        fds[i] = fd;
    }
    char go;
    if (read(go_fd, &go, 1) != 1)
        return 1;
    uint64_t start = bench_now_ns();
    for (size_t k = 0; k < nupdates; k++) {
        uint64_t due = start + k * (1000000000ull / S_RATE), now = bench_now_ns();
        if (due > now)
            bench_sleep_ns(due - now);
        size_t len = s_floor_chunk(buf, frame, k + 1);
        atomic_store_explicit(&sent_ns[k], bench_now_ns(), memory_order_release);
        for (size_t i = 0; i < n; i++)
            if (s_write_all(fds[i], buf, len) < 0)
                return 1;
    }
    while (read(go_fd, &go, 1) > 0)
        ; /* the reader is done when it closes its end */
    return 0;
}

/* Run the floor for f->nstreams streams and f->nupdates updates of about
 * frame bytes; f->sse_ns gets the latencies, *cpu the writer's CPU
 * seconds. Returns 0 or -1. */
static int
s_floor(s_run_t *f, size_t frame, double *cpu)
{
    int rc = -1, ep = -1, go[2] = { -1, -1 };
    pid_t child = -1;
    size_t shared_len = f->nupdates * sizeof(*f->sent_ns);
    void *shared = mmap(NULL, shared_len, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (shared == MAP_FAILED || lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0
        || listen(lfd, 4096) < 0 || getsockname(lfd, (struct sockaddr *)&sin, &sl) < 0
        || pipe2(go, O_CLOEXEC) < 0)
        goto out;
    f->sent_ns = shared;
    if ((child = fork()) < 0)
        goto out;
    if (child == 0) {
        close(go[1]);
        _exit(s_floor_writer(lfd, go[0], f->nstreams, f->nupdates, frame, f->sent_ns));
    }
    close(go[0]);
    go[0] = -1;
    s_streams = calloc(f->nstreams, sizeof(*s_streams));
    if (s_streams == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0
        || s_open_streams(f, ep, ntohs(sin.sin_port)) < 0 || write(go[1], "g", 1) != 1)
        goto out;
    atomic_store(&f->sub_got, f->nupdates); /* no subscriber in this run */
    rc = s_pump(f, ep, s_streams, (int)(f->nupdates * 1000 / S_RATE) + 30000, s_all_got, NULL);
out:
    if (go[1] >= 0)
        close(go[1]); /* the writer exits */
    if (go[0] >= 0)
        close(go[0]);
    struct rusage ru;
    if (child > 0 && wait4(child, NULL, 0, &ru) == child)
        *cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
               + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    s_streams_close(f->nstreams);
    if (ep >= 0)
        close(ep);
    if (lfd >= 0)
        close(lfd);
    if (shared != MAP_FAILED)
        munmap(shared, shared_len);
    f->sent_ns = NULL;
    return rc;
}

/* The latencies of every (stream, update) that got one, into lat.
 * Returns how many. */
static size_t
s_samples(const s_run_t *r, uint64_t *lat)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nstreams * r->nupdates; i++)
        if (r->sse_ns[i] > 0)
            lat[n++] = r->sse_ns[i];
    return n;
}

/* Measure and print the floor beside the gateway's SSE p99 (ms); lat
 * has room for every (stream, update). */
static void
s_floor_report(const s_run_t *r, size_t frame, uint64_t *lat, double sse99, double gw_us)
{
    s_run_t f = { .nstreams = r->nstreams, .nupdates = r->nupdates };
    double cpu = 0;
    f.sse_ns = calloc(f.nstreams * f.nupdates, sizeof(*f.sse_ns));
    if (f.sse_ns == NULL || s_floor(&f, frame, &cpu) < 0) {
        bench_note("floor: did not complete");
        free(f.sse_ns);
        return;
    }
    size_t n = s_samples(&f, lat);
    free(f.sse_ns);
    if (n == 0)
        return;
    double f50 = (double)bench_percentile(lat, n, 50) / 1e6;
    double f99 = (double)bench_percentile(lat, n, 99) / 1e6;
    bench_note("floor: one process writes each update's %zu-byte frame to all %zu "
               "streams in turn, no gateway (%zu samples)", frame, f.nstreams, n);
    bench_figure("floor p50", f50, "ms");
    bench_ratio("publish -> SSE p99", sse99, "ms", "floor p99", f99, 0, true);
    bench_ratio("gateway CPU per stream-update", gw_us, "us", "the floor's",
                cpu * 1e6 / (double)(f.nstreams * f.nupdates), 0, true);
}

int
main(int argc, char **argv)
{
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_gateway",
                     "parley-gateway: 10,000 event streams, RSS per stream, "
                     "publish -> SSE latency beside publish -> parley_sub_t.");
    const char *gw_bin = getenv("PARLEY_GATEWAY");
    if (gw_bin == NULL || gw_bin[0] == '\0')
        gw_bin = BENCH_GATEWAY_BIN;
    s_run_t r = { .nstreams = o.quick ? 1000 : 10000, .nupdates = o.quick ? 30 : 100 };
    char base[BENCH_PATH_MAX], ring[BENCH_PATH_MAX + 16], log[BENCH_PATH_MAX + 16];
    if (bench_tmpdir_make(base, sizeof(base), "gateway") < 0)
        return 1;
    snprintf(ring, sizeof(ring), "%s/keyring", base);
    snprintf(log, sizeof(log), "%s/gateway.log", base);
    bench_key_t key;
    bench_envs_t warm, feed;
    uint64_t seq0 = (uint64_t)parley_now_ms() * 1000ull;
    if (bench_keys_make(&key, 1) < 0 || bench_keyring_write(ring, &key, 1) < 0
        || bench_envs_sign(&warm, key.key, 1, seq0, 1) < 0
        || bench_envs_sign(&feed, key.key, r.nupdates, seq0 + 1, 2) < 0)
        return 1;
    r.key = &key;
    r.envs = &feed;
    r.sent_ns = calloc(r.nupdates, sizeof(*r.sent_ns));
    r.sse_ns = calloc(r.nstreams * r.nupdates, sizeof(*r.sse_ns));
    r.sub_ns = calloc(r.nupdates, sizeof(*r.sub_ns));
    s_streams = calloc(r.nstreams, sizeof(*s_streams));
    if (r.sent_ns == NULL || r.sse_ns == NULL || r.sub_ns == NULL || s_streams == NULL)
        return 1;

    bench_section("gateway: event-stream fan-out");
    bench_note("%zu streams on one parley-gateway; %zu updates paced at %d/s; "
               "a parley_sub_t in the same run; %s run",
               r.nstreams, r.nupdates, S_RATE, o.quick ? "quick" : "full");

    int rc = 1, ep = -1;
    pid_t gw = 0;
    pthread_t pub_t = 0, sub_t = 0;
    bench_daemon_t d;
    if (bench_daemon_start(&d, o.parleyd, base, true, 10000) < 0)
        goto out;
    r.api = d.api;

    /* The gateway, with room for every stream from one address. */
    int port = bench_free_port();
    char listen[32], maxc[16], maxs[16], maxip[16];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(maxc, sizeof(maxc), "%zu", r.nstreams + 64);
    snprintf(maxip, sizeof(maxip), "%zu", r.nstreams + 64);
    snprintf(maxs, sizeof(maxs), "%zu", r.nstreams + 16);
    const char *argv_gw[] = { gw_bin, "--listen", listen, "--server", d.api,
                              "--keyring", ring, "--max-connections", maxc,
                              "--max-connections-per-ip", maxip,
                              "--max-sse-clients", maxs, "--sse-keepalive", "600",
                              "--idle-timeout", "600", "--log-level", "warn",
                              NULL };
    if ((gw = bench_spawn(argv_gw, log)) < 0 || bench_wait_port(port, 10000, gw) < 0) {
        bench_log_tail(log, "parley-gateway");
        goto out;
    }
    /* The warm-up update: its seq is the base, the gateway holds the state. */
    parley_pub_t *pub = bench_pub_new(d.api, key.key);
    if (pub == NULL || parley_pub_send(pub, bench_env(&warm, 0), warm.lens[0], NULL) < 0
        || parley_pub_recv(pub, 5000, NULL, &r.base_seq) < 0) {
        fprintf(stderr, "bench_gateway: warm-up publish failed\n");
        parley_pub_destroy(&pub);
        goto out;
    }
    parley_pub_destroy(&pub);
    bench_sleep_ns(1000000000ull);
    uint64_t hwm0, rss0, hwm1, rss1;
    if (bench_proc_mem(gw, &hwm0, &rss0) < 0)
        goto out;

    /* Open the streams, a batch at a time. */
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        goto out;
    uint64_t t_open = bench_now_ns();
    if (s_open_streams(&r, ep, port) < 0)
        goto out;
    double open_s = bench_secs(t_open, bench_now_ns());
    bench_sleep_ns(500000000ull);
    uint64_t bytes_open = s_streams[0].bytes;
    double cpu_open = bench_proc_cpu(gw);
    if (bench_proc_mem(gw, &hwm1, &rss1) < 0)
        goto out;

    /* The feed, read by the streams and by the subscriber. */
    if (pthread_create(&sub_t, NULL, s_subscriber, &r) != 0)
        goto out;
    bench_sleep_ns(1000000000ull); /* the subscriber connects */
    if (pthread_create(&pub_t, NULL, s_publisher, &r) != 0)
        goto out;
    int got = s_pump(&r, ep, s_streams, (int)(r.nupdates * 1000 / S_RATE) + 30000,
                     s_all_got, NULL);
    atomic_store(&r.stop, 1);
    pthread_join(pub_t, NULL);
    pub_t = 0;
    pthread_join(sub_t, NULL);
    sub_t = 0;
    uint64_t hwm2, rss2;
    bench_proc_mem(gw, &hwm2, &rss2);
    double cpu = bench_proc_cpu(gw);

    /* Did every stream get every update, once and in order? */
    size_t complete = 0, broken = 0, samples = 0;
    for (size_t i = 0; i < r.nstreams; i++) {
        if (s_streams[i].got == r.nupdates && !s_streams[i].broken)
            complete++;
        if (s_streams[i].broken)
            broken++;
    }
    size_t frame = (size_t)(s_streams[0].bytes - bytes_open) / r.nupdates;
    uint64_t *lat = calloc(r.nstreams * r.nupdates, sizeof(*lat));
    if (lat == NULL)
        goto out;
    samples = s_samples(&r, lat);
    size_t sub_samples = 0;
    for (size_t k = 0; k < r.nupdates; k++)
        if (r.sub_ns[k] > 0)
            r.sub_ns[sub_samples++] = r.sub_ns[k];

    bench_figure("streams opened", (double)r.nstreams, "");
    bench_figure("time to open them", open_s, "s");
    bench_figure("streams with every update, in order, once", (double)complete, "");
    if (broken > 0 || got < 0 || r.pub_err != 0)
        bench_note("incomplete: %zu streams broken, wait %s, publisher %s", broken,
                   got < 0 ? "timed out" : "ok",
                   r.pub_err != 0 ? parley_strerror(r.pub_err) : "ok");
    uint64_t rss_max = rss2 > rss1 ? rss2 : rss1;
    double per = rss_max > rss0 ? (double)(rss_max - rss0) / (double)r.nstreams : 0;
    bench_figure("gateway RSS before the streams", (double)rss0 / 1048576.0, "MiB");
    bench_figure("gateway RSS with the streams open", (double)rss1 / 1048576.0, "MiB");
    bench_figure("gateway RSS after the feed", (double)rss2 / 1048576.0, "MiB");
    bench_ratio("RSS per stream", per / 1024.0, "KiB", "the goal", 16.0, 1.0, true);
    bench_figure("gateway CPU for the whole run", cpu, "s");
    if (samples > 0 && sub_samples > 0) {
        double s50 = (double)bench_percentile(lat, samples, 50) / 1e6;
        double s99 = (double)bench_percentile(lat, samples, 99) / 1e6;
        double smax = (double)bench_percentile(lat, samples, 100) / 1e6;
        double z50 = (double)bench_percentile(r.sub_ns, sub_samples, 50) / 1e6;
        double z99 = (double)bench_percentile(r.sub_ns, sub_samples, 99) / 1e6;
        bench_note("%zu SSE samples, %zu parley_sub_t samples", samples, sub_samples);
        bench_figure("publish -> parley_sub_t p50", z50, "ms");
        bench_figure("publish -> parley_sub_t p99", z99, "ms");
        bench_ratio("publish -> SSE p50", s50, "ms", "parley_sub_t p50", z50, 0, true);
        bench_ratio("publish -> SSE p99", s99, "ms", "parley_sub_t p99", z99, 1.5, true);
        bench_figure("publish -> SSE max", smax, "ms");
        /* The floor, with the gateway's streams closed and the gateway
         * stopped: the same streams and frames, no gateway. */
        s_streams_close(r.nstreams);
        if (bench_stop(gw) != 0)
            bench_log_tail(log, "parley-gateway");
        gw = 0;
        s_floor_report(&r, frame, lat, s99,
                       (cpu - cpu_open) * 1e6 / (double)(r.nstreams * r.nupdates));
    }
    rc = complete == r.nstreams && r.pub_err == 0 ? 0 : 1;
    free(lat);
out:
    atomic_store(&r.stop, 1);
    if (pub_t != 0)
        pthread_join(pub_t, NULL);
    if (sub_t != 0)
        pthread_join(sub_t, NULL);
    s_streams_close(r.nstreams);
    if (ep >= 0)
        close(ep);
    if (gw > 0 && bench_stop(gw) != 0)
        bench_log_tail(log, "parley-gateway");
    bench_daemon_stop(&d);
    bench_envs_free(&warm);
    bench_envs_free(&feed);
    bench_keys_free(&key, 1);
    bench_tmpdir_remove(base);
    free(r.sse_ns);
    free(r.sub_ns);
    free(r.sent_ns);
    return rc;
}
