/*
 * test_stats_topic.c - parleyd publishes its counters on sys/stats/ every
 * stats_interval, as the same message that answers a stats request.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

/* Wait for a sys/stats/ message whose "accepted" is want; 0 or -1. */
static int
s_wait_accepted(void *sub, uint64_t want, int timeout_ms, uint64_t *seen)
{
    static _Alignas(16) uint8_t space[8192];
    char topic[64];
    uint8_t buf[8192];
    int64_t end = parley_now_ms() + timeout_ms;
    while (parley_now_ms() < end) {
        zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 200) <= 0)
            continue;
        int tn = zmq_recv(sub, topic, sizeof(topic) - 1, 0);
        int n = zmq_recv(sub, buf, sizeof(buf), 0);
        assert_true(tn > 0 && n > 0);
        topic[tn] = '\0';
        assert_string_equal(topic, "sys/stats/");
        parley__arena_t a;
        parley__reply_t r;
        parley__arena_init(&a, space, sizeof(space));
        assert_int_equal(parley__reply_decode(buf, (size_t)n, &r, &a), 0);
        assert_int_equal(r.type, PARLEY__REPLY_STATS);
        assert_true(r.request_id == 0);
        bool found = false;
        for (size_t i = 0; i < r.n_stats; i++) {
            if (strcmp(r.stats[i].name, "accepted") == 0) {
                found = true;
                *seen = r.stats[i].value;
            }
        }
        parley__arena_reset(&a);
        assert_true(found);
        if (*seen == want)
            return 0;
    }
    return -1;
}

static void
test_stats_topic(void **state)
{
    (void)state;
    char dir[PH_PATH_MAX], ring_path[PH_PATH_MAX], conf[PH_PATH_MAX];
    char ring[1024] = "";
    ph_key_t k;
    ph_daemon_t d;
    assert_int_equal(ph_tmpdir_make(dir, sizeof(dir)), 0);
    assert_int_equal(ph_key_make(&k, dir, "desk", 7), 0);
    assert_int_equal(ph_keyring_add(ring, sizeof(ring), &k, "*", "*", "*"), 0);
    ph_path(ring_path, sizeof(ring_path), dir, "keyring");
    assert_int_equal(ph_file_write(ring_path, ring, strlen(ring), 0644), 0);
    ph_path(conf, sizeof(conf), dir, "parleyd.conf");
    const char *text = "stats_interval 200\n";
    assert_int_equal(ph_file_write(conf, text, strlen(text), 0644), 0);
    const char *extra[] = { "-c", conf, NULL };
    assert_int_equal(ph_daemon_start(&d, dir, ring_path, extra), 0);

    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "sys/stats/", 10), 0);
    assert_int_equal(zmq_connect(sub, d.feed), 0);

    uint64_t seen = 99;
    /* A fresh daemon reports 0 accepted ... */
    assert_int_equal(s_wait_accepted(sub, 0, 5000, &seen), 0);
    parley_pub_t *pub = ph_pub_new(d.api, k.key, NULL, 0);
    assert_non_null(pub);
    for (int i = 0; i < 3; i++) {
        parley_update_t u;
        ph_update_init(&u, "gaza-ceasefire", "egypt", 1, "Talks in Cairo");
        uint64_t seq = 0;
        assert_int_equal(ph_publish(pub, &u, &seq, NULL), 0);
    }
    parley_pub_destroy(&pub);
    /* ... and then what was published, within a few intervals. */
    if (s_wait_accepted(sub, 3, 5000, &seen) != 0)
        fail_msg("sys/stats/ never showed accepted 3 (last %llu)",
                 (unsigned long long)seen);

    zmq_close(sub);
    zmq_ctx_term(ctx);
    assert_int_equal(ph_daemon_stop(&d), 0);
    ph_key_free(&k);
    ph_tmpdir_remove(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
