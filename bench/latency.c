/*
 * latency.c - publish-to-delivery latency at 1,000 updates per second.
 *
 * One publisher paces messages at 1 ms intervals (absolute deadlines on
 * CLOCK_MONOTONIC) for ~10 s; just before each send it records the time
 * in a table indexed by the message number, which the message carries. A
 * subscriber in the same process looks the number up when the message
 * arrives, so both timestamps come from the same clock. Every system
 * carries the same payload size (a typical parley Delivery).
 *
 *   parley      parleyd with fsync on (durable: the delivery leaves only
 *               after the group commit) and with fsync off; pre-signed
 *               envelopes sent with parley_pub_send (acks drained between
 *               sends); a raw ZMQ SUB on the feed decodes signer_seq to
 *               find the number. A parley_sub_t (which re-verifies the
 *               signature) is measured in a run of its own, so that every
 *               system is measured with exactly one subscriber.
 *   mosquitto   QoS 0, TCP_NODELAY on broker and clients (its low-latency
 *               setting).
 *   NATS core   nats.c with SendAsap on the publisher (its low-latency
 *               setting).
 *   raw libzmq  PUB -> SUB in this process, as a floor.
 *   fdatasync   a bare 400-byte append + fdatasync on the same file
 *               system, paced the same way: the cost durability adds.
 *               Sampled just before and just after the durable parley
 *               run; the target uses the lower p99 of the two.
 */
#include "bench.h"
#include "codec.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifdef BENCH_HAVE_MOSQUITTO
#include <mosquitto.h>
#endif
#ifdef BENCH_HAVE_NATS
#include <nats/nats.h>
#endif

#define S_RATE 1000              /* messages per second */
#define S_INTERVAL_NS 1000000ull /* 1 / S_RATE */

/* Send times and latencies of one run. */
/* Message number of a probe sent until the subscriber is known to hear. */
#define S_PROBE (UINT64_MAX - 1)

typedef struct s_lat {
    size_t n;                        /* messages in the run */
    atomic_int probed;               /* a probe arrived */
    _Atomic uint64_t *sent;          /* send time, 0 = not sent yet */
    uint64_t *lat;                   /* latency, 0 = not delivered */
} s_lat_t;

typedef struct s_result {
    bool ok;
    uint64_t p50, p99, p999, max;
    size_t lost;
} s_result_t;

static size_t s_count;               /* messages per run */
static uint8_t s_payload[BENCH_ENV_SLOT + 64];
static size_t s_payload_len;

static int
s_lat_init(s_lat_t *l, size_t n)
{
    l->n = n;
    atomic_init(&l->probed, 0);
    l->sent = calloc(n, sizeof(*l->sent));
    l->lat = calloc(n, sizeof(*l->lat));
    return l->sent != NULL && l->lat != NULL ? 0 : -ENOMEM;
}

static void
s_lat_free(s_lat_t *l)
{
    free((void *)l->sent);
    free(l->lat);
    memset(l, 0, sizeof(*l));
}

/* Record the arrival of message idx (called by the subscriber thread). */
static void
s_lat_arrive(s_lat_t *l, uint64_t idx, uint64_t now)
{
    if (idx == S_PROBE)
        atomic_store(&l->probed, 1);
    if (idx >= l->n || l->lat[idx] != 0)
        return;
    uint64_t t = atomic_load_explicit(&l->sent[idx], memory_order_acquire);
    if (t != 0 && now >= t)
        l->lat[idx] = now - t > 0 ? now - t : 1;
}

static s_result_t
s_lat_result(s_lat_t *l)
{
    s_result_t r = { .ok = true };
    uint64_t *v = malloc(l->n * sizeof(*v));
    size_t m = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->lat[i] != 0)
            v[m++] = l->lat[i];
        else
            r.lost++;
    }
    if (m == 0) {
        r.ok = false;
        free(v);
        return r;
    }
    r.p50 = bench_percentile(v, m, 50);
    r.p99 = bench_percentile(v, m, 99);
    r.p999 = bench_percentile(v, m, 99.9);
    r.max = v[m - 1];
    free(v);
    return r;
}

/* Sleep until start + i intervals. */
static void
s_pace(uint64_t start, size_t i)
{
    uint64_t target = start + i * S_INTERVAL_NS;
    struct timespec ts = { .tv_sec = (time_t)(target / 1000000000ull),
                           .tv_nsec = (long)(target % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void
s_print(const char *name, const s_result_t *r)
{
    if (!r->ok) {
        printf("  %-40s not measured\n", name);
        return;
    }
    printf("  %-40s p50 %8.1f us  p99 %8.1f us  p99.9 %8.1f us  max %8.1f "
           "us  lost %zu\n",
           name, (double)r->p50 / 1e3, (double)r->p99 / 1e3,
           (double)r->p999 / 1e3, (double)r->max / 1e3, r->lost);
}

static void
s_put_index(uint8_t *buf, uint64_t i)
{
    memcpy(buf, &i, sizeof(i));
}

static uint64_t
s_get_index(const void *buf, size_t len)
{
    uint64_t i = UINT64_MAX;
    if (len >= sizeof(i))
        memcpy(&i, buf, sizeof(i));
    return i;
}

/* ----------------------------------------------------------- fdatasync */

static s_result_t
s_fdatasync(const char *dir, size_t n)
{
    s_result_t r = { 0 };
    char path[BENCH_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/fdatasync.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return r;
    s_lat_t l;
    if (s_lat_init(&l, n) < 0) {
        close(fd);
        return r;
    }
    uint8_t rec[400];
    memset(rec, 0x42, sizeof(rec));
    uint64_t start = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        s_pace(start, i);
        uint64_t t0 = bench_now_ns();
        if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec) ||
            fdatasync(fd) != 0)
            break;
        l.lat[i] = bench_now_ns() - t0;
    }
    close(fd);
    unlink(path);
    r = s_lat_result(&l);
    s_lat_free(&l);
    return r;
}

/* ------------------------------------------------------------- raw zmq */

typedef struct s_zsub {
    void *sock;
    s_lat_t *l;
    atomic_int *stop;
    bool parley;          /* frames are [topic][Delivery] from parleyd */
    uint64_t seq0;        /* parley: signer_seq of message 0 */
    atomic_int heartbeat; /* parley: a sys/heartbeat/ arrived */
} s_zsub_t;

/* Message number of a parley Delivery: its update's signer_seq - seq0. */
static uint64_t
s_parley_index(const uint8_t *buf, size_t len, uint64_t seq0,
               parley__arena_t *a, parley_update_t *u)
{
    uint64_t seq, idx = UINT64_MAX;
    int64_t at;
    parley__bytes_t upd;
    parley__envelope_t env;
    parley__arena_reset(a);
    if (parley__delivery_decode_raw(buf, len, &seq, &at, &upd, a) == 0 &&
        parley__envelope_decode(upd.data, upd.len, &env, a) == 0 &&
        parley__update_decode(env.body.data, env.body.len, u, a) == 0)
        idx = u->signer_seq - seq0;
    return idx;
}

static void *
s_zsub_run(void *arg)
{
    s_zsub_t *s = arg;
    int tmo = 100;
    zmq_setsockopt(s->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
    uint8_t abuf[16384];
    parley__arena_t a;
    parley__arena_init(&a, abuf, sizeof(abuf));
    parley_update_t *u = malloc(sizeof(*u));
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    while (!atomic_load(s->stop)) {
        if (zmq_msg_recv(&topic, s->sock, 0) < 0)
            continue;
        if (!zmq_msg_more(&topic) || zmq_msg_recv(&body, s->sock, 0) < 0)
            continue;
        uint64_t now = bench_now_ns();
        if (s->parley) {
            if (zmq_msg_size(&topic) >= 4 &&
                memcmp(zmq_msg_data(&topic), "sys/", 4) == 0) {
                atomic_store(&s->heartbeat, 1);
                continue;
            }
            s_lat_arrive(s->l,
                         s_parley_index(zmq_msg_data(&body),
                                        zmq_msg_size(&body), s->seq0, &a, u),
                         now);
        } else {
            s_lat_arrive(s->l, s_get_index(zmq_msg_data(&body),
                                           zmq_msg_size(&body)),
                         now);
        }
    }
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    parley__arena_reset(&a);
    free(u);
    return NULL;
}

static s_result_t
s_raw_zmq(void)
{
    s_result_t r = { 0 };
    s_lat_t l;
    if (s_lat_init(&l, s_count) < 0)
        return r;
    int port = bench_free_port(), zero = 0;
    char ep[BENCH_EP_MAX];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
    void *pctx = zmq_ctx_new(), *sctx = zmq_ctx_new();
    void *pub = zmq_socket(pctx, ZMQ_PUB), *sub = zmq_socket(sctx, ZMQ_SUB);
    zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "all/", 4);
    atomic_int stop = 0;
    s_zsub_t zs = { .sock = sub, .l = &l, .stop = &stop };
    pthread_t tid;
    if (zmq_bind(pub, ep) == 0 && zmq_connect(sub, ep) == 0) {
        pthread_create(&tid, NULL, s_zsub_run, &zs);
        /* Join: probe until the subscription has reached the publisher. */
        for (int i = 0; i < 5000 && !atomic_load(&l.probed); i++) {
            s_put_index(s_payload, S_PROBE);
            zmq_send(pub, "all/", 4, ZMQ_SNDMORE);
            zmq_send(pub, s_payload, s_payload_len, 0);
            bench_sleep_ns(1000000);
        }
        uint64_t start = bench_now_ns();
        for (size_t i = 0; i < s_count; i++) {
            s_pace(start, i);
            s_put_index(s_payload, i);
            atomic_store_explicit(&l.sent[i], bench_now_ns(),
                                  memory_order_release);
            zmq_send(pub, "all/", 4, ZMQ_SNDMORE);
            zmq_send(pub, s_payload, s_payload_len, 0);
        }
        bench_sleep_ns(200000000);
        atomic_store(&stop, 1);
        pthread_join(tid, NULL);
        r = s_lat_result(&l);
    }
    zmq_close(sub);
    zmq_close(pub);
    zmq_ctx_term(sctx);
    zmq_ctx_term(pctx);
    s_lat_free(&l);
    return r;
}

/* -------------------------------------------------------------- parley */

typedef struct s_libsub {
    parley_sub_t *sub;
    s_lat_t *l;
    uint64_t seq0;
    atomic_int *stop;
    uint64_t gaps, rejected;
} s_libsub_t;

static void *
s_libsub_run(void *arg)
{
    s_libsub_t *s = arg;
    parley_event_t *ev = malloc(sizeof(*ev));
    while (ev != NULL && !atomic_load(s->stop)) {
        int rc = parley_sub_next(s->sub, 100, ev);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        uint64_t now = bench_now_ns();
        if (ev->type == PARLEY_EVENT_DELIVERY)
            s_lat_arrive(s->l, ev->delivery.update.signer_seq - s->seq0, now);
        else if (ev->type == PARLEY_EVENT_GAP)
            s->gaps++;
        else
            s->rejected++;
    }
    free(ev);
    return NULL;
}

/*
 * Run parleyd (fsync on/off) with one subscriber: a raw ZMQ SUB on the
 * feed, or with lib a parley_sub_t (the raw SUB then only hears the
 * heartbeat that shows the feed is up). The result goes to *out.
 */
static int
s_parley(const bench_opts_t *o, const char *base, const char *tag, bool fsync,
         bool lib, bench_key_t *key, const bench_envs_t *envs, uint64_t seq0,
         s_result_t *out)
{
    memset(out, 0, sizeof(*out));
    char dir[BENCH_PATH_MAX], ring[BENCH_PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/%s", base, tag);
    snprintf(ring, sizeof(ring), "%s/keyring", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    int rc = bench_keyring_write(ring, key, 1);
    bench_daemon_t d;
    if (rc < 0 || (rc = bench_daemon_start(&d, o->parleyd, dir, fsync, 10000)) < 0)
        return rc;
    s_lat_t lr, ll;
    s_lat_init(&lr, s_count);
    s_lat_init(&ll, s_count);
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    if (!lib)
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "all/", 4);
    zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "sys/heartbeat/", 14);
    zmq_connect(sock, d.feed);
    atomic_int stop = 0;
    s_zsub_t zs = { .sock = sock, .l = &lr, .stop = &stop, .parley = true,
                    .seq0 = seq0 };
    parley_filter_t f = { 0 };
    parley_sub_options_t opt = { .start = PARLEY_START_LIVE };
    s_libsub_t ls = { .sub = lib ? parley_sub_new(d.api, &f, &opt) : NULL,
                      .l = &ll, .seq0 = seq0, .stop = &stop };
    parley_pub_t *pub = parley_pub_new(d.api, key->key);
    pthread_t zt, lt;
    pthread_create(&zt, NULL, s_zsub_run, &zs);
    if (ls.sub != NULL)
        pthread_create(&lt, NULL, s_libsub_run, &ls);
    else if (lib)
        fprintf(stderr, "parley_sub_new: %s\n", parley_strerror(-errno));
    /* A heartbeat on the raw SUB proves its subscription is live. */
    for (int i = 0; i < 3000 && !atomic_load(&zs.heartbeat); i++)
        bench_sleep_ns(1000000);
    if (!atomic_load(&zs.heartbeat))
        fprintf(stderr, "parley: no heartbeat on the feed within 3 s\n");
    uint64_t acked = 0, rejected = 0;
    int first_err = 0;
    if (pub != NULL) {
        uint64_t start = bench_now_ns();
        for (size_t i = 0; i < s_count; i++) {
            s_pace(start, i);
            uint64_t rid, seq;
            int dup;
            atomic_store_explicit(&lr.sent[i], bench_now_ns(),
                                  memory_order_release);
            atomic_store_explicit(&ll.sent[i],
                                  atomic_load(&lr.sent[i]),
                                  memory_order_release);
            rc = parley_pub_send(pub, bench_env(envs, i), envs->lens[i], &rid);
            if (rc < 0 && first_err == 0)
                first_err = rc;
            /* Drain whatever answers have arrived, without waiting. */
            while ((rc = parley_pub_recv(pub, 0, &rid, &seq, &dup)) !=
                   PARLEY_ETIMEOUT) {
                if (rc == 0) {
                    acked++;
                } else {
                    rejected++;
                    if (first_err == 0)
                        first_err = rc;
                    if (rc > -1000)
                        break;
                }
            }
        }
        uint64_t rid, seq;
        int dup;
        while (acked + rejected < s_count &&
               (rc = parley_pub_recv(pub, 2000, &rid, &seq, &dup)) !=
                   PARLEY_ETIMEOUT) {
            if (rc == 0)
                acked++;
            else
                rejected++;
            if (rc < 0 && rc > -1000)
                break;
        }
    } else {
        fprintf(stderr, "parley_pub_new: %s\n", parley_strerror(-errno));
    }
    bench_sleep_ns(300000000);
    atomic_store(&stop, 1);
    pthread_join(zt, NULL);
    if (ls.sub != NULL)
        pthread_join(lt, NULL);
    if (rejected > 0 || first_err != 0)
        bench_note("parley %s: %llu acked, %llu rejected, first error %s", tag,
                   (unsigned long long)acked, (unsigned long long)rejected,
                   parley_strerror(first_err));
    if (ls.gaps > 0 || ls.rejected > 0)
        bench_note("parley_sub_t: %llu gap events, %llu rejected",
                   (unsigned long long)ls.gaps,
                   (unsigned long long)ls.rejected);
    if (!lib)
        *out = s_lat_result(&lr);
    else if (ls.sub != NULL)
        *out = s_lat_result(&ll);
    parley_sub_destroy(&ls.sub);
    parley_pub_destroy(&pub);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    s_lat_free(&lr);
    s_lat_free(&ll);
    rc = bench_daemon_stop(&d);
    if (rc != 0)
        fprintf(stderr, "parleyd exited with status %d\n", rc);
    return 0;
}

/* ----------------------------------------------------------- mosquitto */

#ifdef BENCH_HAVE_MOSQUITTO
static void
s_mosq_on_msg(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    uint64_t now = bench_now_ns();
    s_lat_arrive(obj, s_get_index(msg->payload, (size_t)msg->payloadlen), now);
}

static s_result_t
s_mosquitto(const char *dir)
{
    s_result_t r = { 0 };
    bench_broker_t b;
    int rc = bench_mosquitto_start(&b, dir, true);
    if (rc < 0) {
        fprintf(stderr, "mosquitto: cannot start (%s)\n", strerror(-rc));
        return r;
    }
    s_lat_t l;
    s_lat_init(&l, s_count);
    mosquitto_lib_init();
    struct mosquitto *sub = mosquitto_new(NULL, true, &l);
    struct mosquitto *pub = mosquitto_new(NULL, true, NULL);
    mosquitto_int_option(sub, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(pub, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_message_callback_set(sub, s_mosq_on_msg);
    if (mosquitto_connect(sub, "127.0.0.1", b.port, 60) != 0 ||
        mosquitto_subscribe(sub, NULL, "all", 0) != 0 ||
        mosquitto_loop_start(sub) != 0 ||
        mosquitto_connect(pub, "127.0.0.1", b.port, 60) != 0) {
        fprintf(stderr, "mosquitto: client setup failed\n");
        goto out;
    }
    /* Let CONNACK land, then probe until the subscription is live. */
    for (int i = 0; i < 10; i++)
        (void)mosquitto_loop(pub, 10, 1);
    for (int i = 0; i < 5000 && !atomic_load(&l.probed); i++) {
        s_put_index(s_payload, S_PROBE);
        mosquitto_publish(pub, NULL, "all", (int)s_payload_len, s_payload, 0,
                          false);
        (void)mosquitto_loop(pub, 1, 1);
    }
    uint64_t start = bench_now_ns();
    for (size_t i = 0; i < s_count; i++) {
        s_pace(start, i);
        s_put_index(s_payload, i);
        atomic_store_explicit(&l.sent[i], bench_now_ns(), memory_order_release);
        mosquitto_publish(pub, NULL, "all", (int)s_payload_len, s_payload, 0,
                          false);
        if (mosquitto_want_write(pub))
            (void)mosquitto_loop_write(pub, 1);
    }
    bench_sleep_ns(300000000);
    r = s_lat_result(&l);
out:
    mosquitto_disconnect(pub);
    mosquitto_disconnect(sub);
    mosquitto_loop_stop(sub, false);
    mosquitto_destroy(sub);
    mosquitto_destroy(pub);
    mosquitto_lib_cleanup();
    s_lat_free(&l);
    bench_broker_stop(&b);
    return r;
}
#endif

/* ---------------------------------------------------------------- NATS */

#ifdef BENCH_HAVE_NATS
static void
s_nats_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
              void *closure)
{
    (void)nc;
    (void)sub;
    uint64_t now = bench_now_ns();
    s_lat_arrive(closure,
                 s_get_index(natsMsg_GetData(msg),
                             (size_t)natsMsg_GetDataLength(msg)),
                 now);
    natsMsg_Destroy(msg);
}

static s_result_t
s_nats(const char *dir)
{
    s_result_t r = { 0 };
    bench_broker_t b;
    int rc = bench_nats_start(&b, dir);
    if (rc < 0) {
        fprintf(stderr, "nats-server: cannot start (%s)\n", strerror(-rc));
        return r;
    }
    s_lat_t l;
    s_lat_init(&l, s_count);
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", b.port);
    natsConnection *sc = NULL, *pc = NULL;
    natsSubscription *sub = NULL;
    natsOptions *opts = NULL;
    if (natsConnection_ConnectTo(&sc, url) != NATS_OK ||
        natsConnection_Subscribe(&sub, sc, "all", s_nats_on_msg, &l) !=
            NATS_OK ||
        natsConnection_Flush(sc) != NATS_OK || natsOptions_Create(&opts) != NATS_OK ||
        natsOptions_SetURL(opts, url) != NATS_OK ||
        natsOptions_SetSendAsap(opts, true) != NATS_OK ||
        natsConnection_Connect(&pc, opts) != NATS_OK) {
        fprintf(stderr, "nats: client setup failed: %s\n",
                nats_GetLastError(NULL));
        goto out;
    }
    for (int i = 0; i < 5000 && !atomic_load(&l.probed); i++) {
        s_put_index(s_payload, S_PROBE);
        natsConnection_Publish(pc, "all", s_payload, (int)s_payload_len);
        bench_sleep_ns(1000000);
    }
    uint64_t start = bench_now_ns();
    for (size_t i = 0; i < s_count; i++) {
        s_pace(start, i);
        s_put_index(s_payload, i);
        atomic_store_explicit(&l.sent[i], bench_now_ns(), memory_order_release);
        natsConnection_Publish(pc, "all", s_payload, (int)s_payload_len);
    }
    bench_sleep_ns(300000000);
    r = s_lat_result(&l);
out:
    /* Close before destroying (see fanout.c). */
    if (sub != NULL)
        natsSubscription_Unsubscribe(sub);
    if (pc != NULL)
        natsConnection_Close(pc);
    if (sc != NULL)
        natsConnection_Close(sc);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(sc);
    natsConnection_Destroy(pc);
    natsOptions_Destroy(opts);
    s_lat_free(&l);
    bench_broker_stop(&b);
    return r;
}
#endif

static uint64_t
s_min_peer(const s_result_t *a, const s_result_t *b)
{
    if (a->ok && b->ok)
        return a->p99 < b->p99 ? a->p99 : b->p99;
    return a->ok ? a->p99 : b->ok ? b->p99 : 0;
}

int
main(int argc, char **argv)
{
    bench_opts_t o;
    bench_opts_parse(&o, argc, argv, "bench_latency",
                     "Publish-to-delivery p50/p99/p99.9 at 1,000 msg/s: "
                     "parleyd (fsync on/off), mosquitto, NATS, raw libzmq.");
    if (sodium_init() < 0)
        return 1;
    s_count = o.quick ? 1000 : 10000;
    char base[BENCH_PATH_MAX];
    if (bench_tmpdir_make(base, sizeof(base), "latency") < 0)
        return 1;

    bench_key_t key;
    if (bench_keys_make(&key, 1) < 0)
        return 1;
    uint64_t seq0 = (uint64_t)parley_now_ms() * 1000ull;
    bench_envs_t envs;
    if (bench_envs_sign(&envs, key.key, s_count, seq0, 2) < 0)
        return 1;
    if (parley__delivery_encode(123456, parley_now_ms(), bench_env(&envs, 0),
                                envs.lens[0], s_payload, sizeof(s_payload),
                                &s_payload_len) < 0)
        return 1;

    bench_section("latency: publish to delivery at 1,000 msg/s");
    bench_note("%zu messages per system, payload %zu bytes, one subscriber; "
               "%s run", s_count, s_payload_len, o.quick ? "quick" : "full");
    s_result_t raw = s_raw_zmq();
    s_print("raw libzmq PUB/SUB", &raw);
    s_result_t mosq = { 0 }, nats = { 0 };
#ifdef BENCH_HAVE_MOSQUITTO
    mosq = s_mosquitto(base);
    s_print("mosquitto QoS 0 (nodelay)", &mosq);
#else
    bench_note("mosquitto: skipped (built without libmosquitto-dev)");
#endif
#ifdef BENCH_HAVE_NATS
    nats = s_nats(base);
    s_print("NATS core (SendAsap)", &nats);
#else
    bench_note("NATS: skipped (built without libnats-dev)");
#endif
    s_result_t off_raw, off_lib, on_raw, on_lib;
    if (s_parley(&o, base, "fsync-off", false, false, &key, &envs, seq0,
                 &off_raw) < 0)
        bench_note("parleyd fsync off: could not run");
    s_print("parley fsync off, raw SUB", &off_raw);
    if (s_parley(&o, base, "fsync-off-lib", false, true, &key, &envs, seq0,
                 &off_lib) < 0)
        bench_note("parleyd fsync off, parley_sub_t: could not run");
    s_print("parley fsync off, parley_sub_t", &off_lib);
    /* The disk is shared with other work: sample the bare fdatasync just
     * before and just after the durable run, and hold parleyd to the
     * lower p99 of the two (the conservative budget). */
    size_t nsync = o.quick ? 300 : 3000;
    s_result_t fs1 = s_fdatasync(base, nsync);
    s_print("bare append+fdatasync (before)", &fs1);
    if (s_parley(&o, base, "fsync-on", true, false, &key, &envs, seq0,
                 &on_raw) < 0)
        bench_note("parleyd fsync on: could not run");
    s_result_t fs2 = s_fdatasync(base, nsync);
    s_print("bare append+fdatasync (after)", &fs2);
    s_result_t fsync_r = fs1;
    if (fs2.ok && (!fs1.ok || fs2.p99 < fs1.p99))
        fsync_r = fs2;
    s_print("parley fsync on (durable), raw SUB", &on_raw);
    if (s_parley(&o, base, "fsync-on-lib", true, true, &key, &envs, seq0,
                 &on_lib) < 0)
        bench_note("parleyd fsync on, parley_sub_t: could not run");
    s_print("parley fsync on (durable), parley_sub_t", &on_lib);

    bench_section("latency: ratios (same run)");
    uint64_t best = s_min_peer(&mosq, &nats);
    if (off_raw.ok) {
        bench_ratio("parley fsync off p99", (double)off_raw.p99 / 1e3, "us",
                    "mosquitto p99", mosq.ok ? (double)mosq.p99 / 1e3 : 0,
                    1.0, true);
        bench_ratio("parley fsync off p99", (double)off_raw.p99 / 1e3, "us",
                    "NATS p99", nats.ok ? (double)nats.p99 / 1e3 : 0, 1.0,
                    true);
    }
    if (on_raw.ok && fsync_r.ok) {
        char ref[96];
        double budget = (double)(best + fsync_r.p99) / 1e3;
        snprintf(ref, sizeof(ref),
                 "(better peer p99 + lower fdatasync p99 = %.1f us)", budget);
        bench_ratio("parley durable p99", (double)on_raw.p99 / 1e3, "us", ref,
                    best > 0 ? budget : 0, 1.0, true);
    }
    bench_envs_free(&envs);
    bench_keys_free(&key, 1);
#ifdef BENCH_HAVE_NATS
    nats_Close();
#endif
    bench_tmpdir_remove(base);
    return 0;
}
