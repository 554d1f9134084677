/*
 * nats_proxy.c - a relay in front of one nats-server that can alter a
 * consumer's delivery and hold back a STREAM.MSG.GET answer (see
 * nats_proxy.h).
 */
#include "nats_proxy.h"

#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_PAIRS 8          /* connections relayed at once */
#define S_GETS_MAX 4096    /* requests remembered, in order */
#define S_INBOX_MAX 256    /* reply inboxes of requests for the held seq */
#define S_SUBJECT_MAX 256
#define S_ABSENT_SLOTS 4   /* seqs made absent at once */

/* One direction of a connection: bytes read, not yet relayed. */
typedef struct s_buf {
    char *d;
    size_t len, cap;
} s_buf_t;

typedef struct s_pair {
    int cfd, sfd;          /* client, server; -1 when free */
    s_buf_t from_c, from_s;
} s_pair_t;

struct ph_nats_proxy {
    int lfd;
    int server_port;
    char url[64];
    char stream[64];
    char get_subject[S_SUBJECT_MAX]; /* $JS.API.STREAM.MSG.GET.<stream> */
    pthread_t thr;
    bool running;

    pthread_mutex_t mu;    /* the fields below */
    bool stop;
    s_pair_t pair[S_PAIRS];
    uint64_t tamper_seq;
    int tamper_left, tampered;
    uint64_t hold_seq, hold_until;
    int hold_ms;
    bool hold_armed;       /* waiting for the request for hold_seq */
    char hold_inbox[S_SUBJECT_MAX]; /* its reply subject, once seen */
    bool until_seen;       /* the request for hold_until was seen */
    char *held;            /* the answer held back, and its length */
    size_t held_len;
    int held_fd;           /* the client it goes to */
    int64_t held_at;
    int n_held, held_on_time;
    uint64_t gets[S_GETS_MAX];
    int64_t get_ms[S_GETS_MAX]; /* when each was relayed (mono ms) */
    size_t n_gets;
    uint64_t absent_seq[S_ABSENT_SLOTS]; /* seqs made absent, and */
    int absent_left[S_ABSENT_SLOTS];     /* how many times yet */
    uint64_t span_first;   /* the first request for each seq of */
    int span_n;            /* span_first .. + span_n - 1: absent */
    uint64_t span_done;    /* bit i: span_first + i rewritten */
};

static int
s_buf_add(s_buf_t *b, const char *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *x = realloc(b->d, cap);
        if (x == NULL)
            return -ENOMEM;
        b->d = x;
        b->cap = cap;
    }
    memcpy(b->d + b->len, d, n);
    b->len += n;
    return 0;
}

static void
s_buf_drop(s_buf_t *b, size_t n)
{
    memmove(b->d, b->d + n, b->len - n);
    b->len -= n;
}

static int
s_write_all(int fd, const char *d, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        d += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Split a protocol line into at most max tokens (in place). */
static int
s_tokens(char *line, char **tok, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t", &save);
         t != NULL && n < max; t = strtok_r(NULL, " \t", &save))
        tok[n++] = t;
    return n;
}

/*
 * The frame at the start of b: its length (line, payload and CRLF) in
 * *frame, and for MSG/HMSG/PUB/HPUB the subject, reply (or "") and the
 * payload's offset in the frame and its header length. Returns 1 a frame
 * with a payload, 0 a line alone, -1 not all there yet.
 */
static int
s_frame(const s_buf_t *b, size_t *frame, char *subject, char *reply,
        size_t *pay_off, size_t *hdr_len)
{
    const char *eol = b->len > 0 ? memmem(b->d, b->len, "\r\n", 2) : NULL;
    if (eol == NULL)
        return -1;
    size_t line_len = (size_t)(eol - b->d);
    *frame = line_len + 2;
    char line[1024];
    if (line_len >= sizeof(line))
        return 0; /* INFO and CONNECT can be long; never MSG */
    memcpy(line, b->d, line_len);
    line[line_len] = '\0';
    bool h, pub;
    if (strncmp(line, "MSG ", 4) == 0 || strncmp(line, "PUB ", 4) == 0) {
        h = false;
        pub = line[0] == 'P';
    } else if (strncmp(line, "HMSG ", 5) == 0
               || strncmp(line, "HPUB ", 5) == 0) {
        h = true;
        pub = line[1] == 'P';
    } else {
        return 0;
    }
    char *tok[8] = { NULL };
    int n = s_tokens(line, tok, 8);
    /* MSG subj sid [reply] size; PUB subj [reply] size; H*: hdr total.
     * The tokens without a reply: */
    int fixed = (pub ? 3 : 4) + (h ? 1 : 0);
    bool has_reply = n == fixed + 1;
    if (n != fixed && n != fixed + 1)
        return 0;
    snprintf(subject, S_SUBJECT_MAX, "%s", tok[1]);
    snprintf(reply, S_SUBJECT_MAX, "%s", has_reply ? tok[pub ? 2 : 3] : "");
    size_t total = strtoull(tok[n - 1], NULL, 10);
    *hdr_len = h ? strtoull(tok[n - 2], NULL, 10) : 0;
    if (b->len < *frame + total + 2)
        return -1;
    *pay_off = *frame;
    *frame += total + 2;
    return 1;
}

/* The stream seq of a delivery of this proxy's stream ($JS.ACK reply), or
 * 0. */
static uint64_t
s_ack_seq(const ph_nats_proxy_t *p, const char *reply)
{
    if (strncmp(reply, "$JS.ACK.", 8) != 0)
        return 0;
    char copy[S_SUBJECT_MAX], *tok[16];
    snprintf(copy, sizeof(copy), "%s", reply + 8);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(copy, ".", &save);
         t != NULL && n < 16; t = strtok_r(NULL, ".", &save))
        tok[n++] = t;
    /* <stream>.<consumer>.<delivered>.<sseq>... (7 tokens), or with a
     * domain and account hash in front (9 or more). */
    int at = n == 7 ? 0 : n >= 9 ? 2 : -1;
    if (at < 0 || strcmp(tok[at], p->stream) != 0)
        return 0;
    return strtoull(tok[at + 3], NULL, 10);
}

/* Let the held answer go. mu held. */
static void
s_release_locked(ph_nats_proxy_t *p)
{
    if (p->held == NULL)
        return;
    (void)s_write_all(p->held_fd, p->held, p->held_len);
    p->held_on_time += p->until_seen;
    free(p->held);
    p->held = NULL;
}

/* Relay the complete frames from the client. mu held. */
static int
s_from_client(ph_nats_proxy_t *p, s_pair_t *x)
{
    char subject[S_SUBJECT_MAX], reply[S_SUBJECT_MAX];
    size_t frame, off, hdr;
    int k;
    while ((k = s_frame(&x->from_c, &frame, subject, reply, &off, &hdr)) >= 0) {
        if (k == 1 && strcmp(subject, p->get_subject) == 0) {
            const char *pay = x->from_c.d + off + hdr;
            size_t len = frame - off - hdr - 2;
            char body[128];
            snprintf(body, sizeof(body), "%.*s",
                     (int)(len < sizeof(body) - 1 ? len : sizeof(body) - 1),
                     pay);
            const char *s = strstr(body, "\"seq\":");
            uint64_t seq = s != NULL ? strtoull(s + 6, NULL, 10) : 0;
            if (p->n_gets < S_GETS_MAX)
                p->gets[p->n_gets] = seq;
            p->n_gets++;
            if (p->hold_armed && seq == p->hold_seq
                && p->hold_inbox[0] == '\0')
                snprintf(p->hold_inbox, sizeof(p->hold_inbox), "%s", reply);
            if ((p->hold_armed || p->held != NULL) && seq == p->hold_until)
                p->until_seen = true; /* before or after hold_seq's */
            if (p->n_gets <= S_GETS_MAX)
                p->get_ms[p->n_gets - 1] = parley__mono_ms();
            int slot = -1;
            for (int i = 0; i < S_ABSENT_SLOTS && hdr == 0; i++)
                if (p->absent_left[i] > 0 && seq == p->absent_seq[i])
                    slot = i;
            bool in_span = hdr == 0 && seq >= p->span_first
                           && seq < p->span_first + (uint64_t)p->span_n
                           && !(p->span_done >> (seq - p->span_first) & 1);
            if (slot >= 0 || in_span) {
                /* Ask the server about a seq no stream reaches instead:
                 * it answers "no message found" itself. */
                if (in_span)
                    p->span_done |= 1ull << (seq - p->span_first);
                else
                    p->absent_left[slot]--;
                char req[S_SUBJECT_MAX * 2 + 64];
                const char *body2 = "{\"seq\":18446744073709551615}";
                int n = snprintf(req, sizeof(req), "PUB %s %s %zu\r\n%s\r\n",
                                 subject, reply, strlen(body2), body2);
                int rc = s_write_all(x->sfd, req, (size_t)n);
                s_buf_drop(&x->from_c, frame);
                if (rc < 0)
                    return rc;
                continue;
            }
        }
        int rc = s_write_all(x->sfd, x->from_c.d, frame);
        s_buf_drop(&x->from_c, frame);
        if (rc < 0)
            return rc;
    }
    if (p->held != NULL && p->until_seen)
        s_release_locked(p);
    return 0;
}

/* Relay the complete frames from the server. mu held. */
static int
s_from_server(ph_nats_proxy_t *p, s_pair_t *x)
{
    char subject[S_SUBJECT_MAX], reply[S_SUBJECT_MAX];
    size_t frame, off, hdr;
    int k;
    while ((k = s_frame(&x->from_s, &frame, subject, reply, &off, &hdr)) >= 0) {
        char *d = x->from_s.d;
        if (k == 1 && p->tamper_left > 0 && frame > off + hdr + 2
            && s_ack_seq(p, reply) == p->tamper_seq) {
            d[off + hdr] ^= 0x01;
            p->tamper_left--;
            p->tampered++;
        }
        if (k == 1 && p->hold_armed && p->hold_inbox[0] != '\0'
            && strcmp(subject, p->hold_inbox) == 0) {
            p->hold_armed = false;
            p->n_held++;
            p->held = malloc(frame);
            if (p->held != NULL) {
                memcpy(p->held, d, frame);
                p->held_len = frame;
                p->held_fd = x->cfd;
                p->held_at = parley__mono_ms();
                s_buf_drop(&x->from_s, frame);
                if (p->until_seen)
                    s_release_locked(p);
                continue;
            }
        }
        int rc = s_write_all(x->cfd, d, frame);
        s_buf_drop(&x->from_s, frame);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void
s_pair_close(ph_nats_proxy_t *p, s_pair_t *x)
{
    if (p->held != NULL && p->held_fd == x->cfd) {
        free(p->held);
        p->held = NULL;
    }
    if (x->cfd >= 0)
        close(x->cfd);
    if (x->sfd >= 0)
        close(x->sfd);
    free(x->from_c.d);
    free(x->from_s.d);
    memset(x, 0, sizeof(*x));
    x->cfd = x->sfd = -1;
}

static void
s_accept(ph_nats_proxy_t *p)
{
    int c = accept(p->lfd, NULL, NULL);
    if (c < 0)
        return;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)p->server_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(c);
        if (s >= 0)
            close(s);
        return;
    }
    for (int i = 0; i < S_PAIRS; i++)
        if (p->pair[i].cfd < 0) {
            p->pair[i].cfd = c;
            p->pair[i].sfd = s;
            return;
        }
    close(c);
    close(s);
}

static void *
s_main(void *arg)
{
    ph_nats_proxy_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct pollfd fds[1 + 2 * S_PAIRS];
        int map[1 + 2 * S_PAIRS];
        int n = 0;
        fds[n] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
        map[n++] = -1;
        for (int i = 0; i < S_PAIRS; i++)
            if (p->pair[i].cfd >= 0) {
                fds[n] = (struct pollfd){ .fd = p->pair[i].cfd,
                                          .events = POLLIN };
                map[n++] = 2 * i;
                fds[n] = (struct pollfd){ .fd = p->pair[i].sfd,
                                          .events = POLLIN };
                map[n++] = 2 * i + 1;
            }
        pthread_mutex_unlock(&p->mu);
        int r = poll(fds, (nfds_t)n, 10);
        pthread_mutex_lock(&p->mu);
        if (p->held != NULL && parley__mono_ms() - p->held_at >= p->hold_ms)
            s_release_locked(p);
        if (r <= 0)
            continue;
        for (int j = 0; j < n; j++) {
            if (fds[j].revents == 0)
                continue;
            if (map[j] < 0) {
                s_accept(p);
                continue;
            }
            s_pair_t *x = &p->pair[map[j] / 2];
            bool from_server = map[j] % 2 == 1;
            if (x->cfd < 0)
                continue;
            char buf[65536];
            ssize_t got = recv(from_server ? x->sfd : x->cfd, buf,
                               sizeof(buf), 0);
            if (got <= 0) {
                if (got < 0 && errno == EINTR)
                    continue;
                s_pair_close(p, x);
                continue;
            }
            s_buf_t *b = from_server ? &x->from_s : &x->from_c;
            if (s_buf_add(b, buf, (size_t)got) < 0
                || (from_server ? s_from_server(p, x) : s_from_client(p, x))
                       < 0)
                s_pair_close(p, x);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int
ph_nats_proxy_start(ph_nats_proxy_t **out, const char *stream,
                    int server_port)
{
    *out = NULL;
    ph_nats_proxy_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    for (int i = 0; i < S_PAIRS; i++)
        p->pair[i].cfd = p->pair[i].sfd = -1;
    p->server_port = server_port;
    snprintf(p->stream, sizeof(p->stream), "%s", stream);
    snprintf(p->get_subject, sizeof(p->get_subject),
             "$JS.API.STREAM.MSG.GET.%s", stream);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) < 0
        || listen(p->lfd, 16) < 0
        || getsockname(p->lfd, (struct sockaddr *)&a, &alen) < 0) {
        int rc = -errno;
        ph_nats_proxy_stop(&p);
        return rc;
    }
    snprintf(p->url, sizeof(p->url), "nats://127.0.0.1:%d",
             (int)ntohs(a.sin_port));
    int rc = pthread_create(&p->thr, NULL, s_main, p);
    if (rc != 0) {
        ph_nats_proxy_stop(&p);
        return -rc;
    }
    p->running = true;
    *out = p;
    return 0;
}

const char *
ph_nats_proxy_url(const ph_nats_proxy_t *p)
{
    return p->url;
}

void
ph_nats_proxy_tamper(ph_nats_proxy_t *p, uint64_t seq, int n)
{
    pthread_mutex_lock(&p->mu);
    p->tamper_seq = seq;
    p->tamper_left = n;
    pthread_mutex_unlock(&p->mu);
}

void
ph_nats_proxy_hold_get(ph_nats_proxy_t *p, uint64_t seq, uint64_t until_seq,
                       int max_ms)
{
    pthread_mutex_lock(&p->mu);
    p->hold_seq = seq;
    p->hold_until = until_seq;
    p->hold_ms = max_ms;
    p->hold_armed = true;
    p->hold_inbox[0] = '\0';
    p->until_seen = false;
    pthread_mutex_unlock(&p->mu);
}

int
ph_nats_proxy_tampered(ph_nats_proxy_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->tampered;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int
ph_nats_proxy_held(ph_nats_proxy_t *p, int *released_on_time)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_held;
    *released_on_time = p->held_on_time;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void
ph_nats_proxy_absent(ph_nats_proxy_t *p, uint64_t seq, int n)
{
    pthread_mutex_lock(&p->mu);
    int slot = -1; /* seq's slot, else a spent one, else the first */
    for (int i = 0; i < S_ABSENT_SLOTS && slot < 0; i++)
        if (p->absent_seq[i] == seq)
            slot = i;
    for (int i = 0; i < S_ABSENT_SLOTS && slot < 0; i++)
        if (p->absent_left[i] == 0)
            slot = i;
    if (slot < 0)
        slot = 0;
    p->absent_seq[slot] = seq;
    p->absent_left[slot] = n;
    pthread_mutex_unlock(&p->mu);
}

void
ph_nats_proxy_absent_span(ph_nats_proxy_t *p, uint64_t first, int n)
{
    pthread_mutex_lock(&p->mu);
    p->span_first = first;
    p->span_n = n < 0 ? 0 : n > 64 ? 64 : n;
    p->span_done = 0;
    pthread_mutex_unlock(&p->mu);
}

size_t
ph_nats_proxy_gets(ph_nats_proxy_t *p, uint64_t *out, int64_t *at_ms,
                   size_t cap)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->n_gets;
    for (size_t i = 0; i < n && i < cap && i < S_GETS_MAX; i++) {
        out[i] = p->gets[i];
        if (at_ms != NULL)
            at_ms[i] = p->get_ms[i];
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

void
ph_nats_proxy_stop(ph_nats_proxy_t **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    ph_nats_proxy_t *p = *pp;
    *pp = NULL;
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thr, NULL);
    }
    for (int i = 0; i < S_PAIRS; i++)
        if (p->pair[i].cfd >= 0)
            s_pair_close(p, &p->pair[i]);
    free(p->held);
    if (p->lfd >= 0)
        close(p->lfd);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
