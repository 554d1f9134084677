/*
 * test_zmq_move.c - parley__zmq_move(), the way a subscriber's feed and a
 * client's api socket go from one endpoint to another, on real libzmq
 * sockets over loopback TCP.
 *
 * The case that matters: the old endpoint still streams two-frame
 * messages and zmq_poll() has read the first frame of one ahead (a SUB
 * socket does). libzmq asserts ("!_more", fq.cpp) when the rest is read
 * after that connection was dropped by a plain zmq_disconnect(); the move
 * must leave the socket with whole messages only, and on the new
 * endpoint.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_EP_MAX 64
#define S_WAIT_MS 10000

/* Bind pub to a free loopback port; its endpoint into ep. */
static void
s_bind(void *pub, char ep[S_EP_MAX])
{
    size_t n = S_EP_MAX;
    assert_int_equal(zmq_bind(pub, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, ep, &n), 0);
}

/* Publish [topic][body] on pub. */
static void
s_send(void *pub, const char *body)
{
    assert_int_equal(zmq_send(pub, "t/", 2, ZMQ_SNDMORE), 2);
    assert_int_equal(zmq_send(pub, body, strlen(body), 0), (int)strlen(body));
}

/*
 * Read one whole message without waiting: 1 with its body in out, 0 when
 * none is waiting. A message that is not exactly [topic][body] fails.
 */
static int
s_read(void *sub, char *out, size_t cap)
{
    char topic[8];
    int more = 0;
    size_t n = sizeof(more);
    int len = zmq_recv(sub, topic, sizeof(topic), ZMQ_DONTWAIT);
    if (len < 0) {
        assert_int_equal(errno, EAGAIN);
        return 0;
    }
    assert_int_equal(len, 2);
    assert_int_equal(zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &n), 0);
    assert_int_equal(more, 1);
    len = zmq_recv(sub, out, cap - 1, ZMQ_DONTWAIT);
    assert_true(len > 0);
    out[len] = '\0';
    assert_int_equal(zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &n), 0);
    assert_int_equal(more, 0);
    return 1;
}

/*
 * Publish body until sub has a message waiting (the subscription reaches
 * a new connection some time after it is made): then zmq_poll() has read
 * the first frame of one ahead. Fails after S_WAIT_MS.
 */
static void
s_until_readable(void *pub, void *sub, const char *body)
{
    zmq_pollitem_t it = { .socket = sub, .events = ZMQ_POLLIN };
    for (int waited = 0; waited < S_WAIT_MS; waited += 10) {
        s_send(pub, body);
        assert_true(zmq_poll(&it, 1, 10) >= 0);
        if (it.revents & ZMQ_POLLIN)
            return;
    }
    fail_msg("nothing arrived on the subscriber");
}

static void
test_move_off_a_busy_feed(void **state)
{
    (void)state;
    char ep1[S_EP_MAX], ep2[S_EP_MAX], body[32];
    void *ctx = zmq_ctx_new();
    void *old_pub = zmq_socket(ctx, ZMQ_PUB);
    void *new_pub = zmq_socket(ctx, ZMQ_PUB);
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    assert_non_null(sub);
    zmq_setsockopt(old_pub, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(new_pub, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof(zero));
    s_bind(old_pub, ep1);
    s_bind(new_pub, ep2);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0), 0);
    int fd = parley__zmq_fd(sub);

    assert_int_equal(parley__zmq_move(sub, NULL, ep1), 0);
    s_until_readable(old_pub, sub, "old");
    for (int i = 0; i < 16; i++)
        s_send(old_pub, "old");
    /* A first frame is read ahead: the old connection goes now. */
    assert_int_equal(parley__zmq_move(sub, ep1, ep2), 0);
    while (s_read(sub, body, sizeof(body)) == 1)
        assert_string_equal(body, "old");
    /* The old endpoint is left: only the new one is heard. */
    s_send(old_pub, "old");
    s_until_readable(new_pub, sub, "new");
    while (s_read(sub, body, sizeof(body)) == 1)
        assert_true(strcmp(body, "new") == 0 || strcmp(body, "old") == 0);
    s_send(old_pub, "old");
    s_until_readable(new_pub, sub, "new");
    assert_int_equal(s_read(sub, body, sizeof(body)), 1);
    assert_string_equal(body, "new");
    /* The same socket all along: an event loop's descriptor stays. */
    assert_int_equal(parley__zmq_fd(sub), fd);
    /* A bad endpoint leaves the socket where it was. */
    assert_true(parley__zmq_move(sub, ep2, "nonsense") < 0);
    s_until_readable(new_pub, sub, "new");
    assert_int_equal(s_read(sub, body, sizeof(body)), 1);
    assert_string_equal(body, "new");

    zmq_close(sub);
    zmq_close(old_pub);
    zmq_close(new_pub);
    zmq_ctx_term(ctx);
}

/*
 * Read one whole message from a ROUTER without waiting. Returns its
 * frames (the identity included), 0 when none is waiting.
 */
static int
s_read_whole(void *router)
{
    zmq_msg_t m;
    int frames = 0;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, router, ZMQ_DONTWAIT) >= 0) {
        frames = 1;
        while (zmq_msg_more(&m)) {
            assert_true(zmq_msg_recv(&m, router, ZMQ_DONTWAIT) >= 0);
            frames++;
        }
    }
    zmq_msg_close(&m);
    return frames;
}

/*
 * parleyd's api cuts every connection by unbinding its ROUTER's endpoint
 * and binding it again (pd_api_cut()), possibly with a multi-frame
 * message read ahead by zmq_poll(). That differs from a disconnect: the
 * connections end from their own side, and libzmq still hands over what
 * each had queued, so the message read ahead is read to its end. Every
 * round: messages of 2 and 3 frames queued from two clients, the first
 * frame of one read ahead, the cut, a newcomer's messages; then every
 * message read is whole (no "!_more" assertion, no frames of two
 * messages mixed).
 */
static void
test_unbind_with_read_ahead(void **state)
{
    (void)state;
    char ep[S_EP_MAX];
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
    s_bind(router, ep);
    for (int round = 0; round < 50; round++) {
        void *c[3];
        for (int i = 0; i < 3; i++) {
            c[i] = zmq_socket(ctx, ZMQ_DEALER);
            zmq_setsockopt(c[i], ZMQ_LINGER, &zero, sizeof(zero));
            assert_int_equal(zmq_connect(c[i], ep), 0);
        }
        for (int k = 0; k < 50; k++) {
            zmq_send(c[0], "", 0, ZMQ_SNDMORE);
            zmq_send(c[0], "req", 3, 0);
            zmq_send(c[1], "x", 1, ZMQ_SNDMORE);
            zmq_send(c[1], "y", 1, ZMQ_SNDMORE);
            zmq_send(c[1], "z", 1, 0);
        }
        zmq_pollitem_t it = { .socket = router, .events = ZMQ_POLLIN };
        assert_int_equal(zmq_poll(&it, 1, S_WAIT_MS), 1); /* read ahead */
        /* the cut, as pd_api_cut() does it */
        assert_int_equal(zmq_unbind(router, ep), 0);
        struct timespec pause = { 0, 1000 * 1000 };
        for (int waited = 0; zmq_bind(router, ep) != 0; waited++) {
            assert_int_equal(zmq_errno(), EADDRINUSE);
            assert_true(waited < S_WAIT_MS);
            nanosleep(&pause, NULL);
        }
        for (int k = 0; k < 5; k++) {
            zmq_send(c[2], "", 0, ZMQ_SNDMORE);
            zmq_send(c[2], "new", 3, 0);
        }
        int frames, whole = 0;
        while ((frames = s_read_whole(router)) > 0) {
            assert_true(frames == 3 || frames == 4);
            whole++;
        }
        assert_true(whole > 0);
        for (int i = 0; i < 3; i++)
            zmq_close(c[i]);
    }
    zmq_close(router);
    zmq_ctx_term(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move_off_a_busy_feed),
        cmocka_unit_test(test_unbind_with_read_ahead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
