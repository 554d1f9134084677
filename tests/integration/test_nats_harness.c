/*
 * test_nats_harness.c - the NATS cluster harness against real nats-server
 * processes (issue 13): what the cluster tests and benchmarks rely on.
 *
 * One node: start, JetStream answers, an R1 stream keeps an acknowledged
 * message across kill -9 and restart of the server (same name, port and
 * store).
 *
 * Three nodes: start with routes, an R3 stream is placed on all three,
 * its leader is found; SIGSTOP of a non-leader leaves a quorum (a publish
 * is acknowledged while the stopped node answers nothing), SIGCONT brings
 * it back; kill -9 of the leader makes another node lead (found by
 * polling), the restarted node rejoins and the stream keeps every
 * acknowledged message. At the end every server is stopped by pid and no
 * process of the cluster is left.
 */
#include "harness.h"
#include "nats_harness.h"
#include "wire.h"

#include <errno.h>
#include <nats/nats.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define S_LEADER_MS 30000 /* a new stream leader is elected by then */

/* The cluster of the test running, for the teardown of a failed one. */
static ph_nats_cluster_t *s_running;

/* After each test: a failed one left its servers running; stop them and
 * print their logs (a passed one has stopped them already). */
static int
s_teardown(void **state)
{
    (void)state;
    if (s_running != NULL && s_running->n > 0)
        ph_nats_stop(s_running, true);
    s_running = NULL;
    return 0;
}

/* A connection with reconnects to every node of c. */
static void
s_connect(const ph_nats_cluster_t *c, natsConnection **nc, jsCtx **js)
{
    natsOptions *o = NULL;
    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    const char *urls[PH_NATS_MAX];
    for (int i = 0; i < c->n; i++)
        urls[i] = c->node[i].url;
    assert_int_equal(natsOptions_SetServers(o, urls, c->n), NATS_OK);
    assert_int_equal(natsOptions_SetTimeout(o, 1000), NATS_OK);
    assert_int_equal(natsOptions_SetReconnectWait(o, 100), NATS_OK);
    assert_int_equal(natsOptions_SetMaxReconnect(o, -1), NATS_OK);
    assert_int_equal(natsOptions_SetPingInterval(o, 500), NATS_OK);
    assert_int_equal(natsOptions_SetMaxPingsOut(o, 2), NATS_OK);
    natsStatus cs = natsConnection_Connect(nc, o);
    if (cs != NATS_OK)
        fail_msg("connect %s: %s", c->urls, nats_GetLastError(NULL));
    natsOptions_Destroy(o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    assert_int_equal(natsConnection_JetStream(js, *nc, &jo), NATS_OK);
}

/*
 * Publish, retrying while the cluster elects a leader; returns the seq. A
 * try that timed out may be stored later: the msg id (the text) makes the
 * retries duplicates of it, never a second message.
 */
static uint64_t
s_publish(jsCtx *js, const char *subject, const char *text, int within_ms)
{
    int64_t deadline = parley__mono_ms() + within_ms;
    for (;;) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 1000;
        po.MsgId = text;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        natsStatus s =
            js_Publish(&pa, js, subject, text, (int)strlen(text), &po, &jerr);
        if (s == NATS_OK) {
            uint64_t seq = pa->Sequence;
            jsPubAck_Destroy(pa);
            return seq;
        }
        if (parley__mono_ms() >= deadline)
            fail_msg("publish on %s: %s (%d)", subject, natsStatus_GetText(s),
                     (int)jerr);
        usleep(100 * 1000);
    }
}

static uint64_t
s_last_seq(jsCtx *js, const char *stream)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = NATS_ERR;
    for (int i = 0; i < 100 && s != NATS_OK; i++) {
        s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
        if (s != NATS_OK)
            usleep(100 * 1000);
    }
    assert_int_equal(s, NATS_OK);
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return last;
}

/* Is a process with this pid alive (not reaped, not a zombie)? */
static int
s_alive(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[256] = "";
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    const char *rp = line != NULL ? strrchr(buf, ')') : NULL;
    return rp != NULL && rp[2] != 'Z' && rp[2] != 'X';
}

static void
test_one_node(void **state)
{
    (void)state;
    /* static: the teardown may need it after a failure left the test */
    static ph_nats_cluster_t c;
    memset(&c, 0, sizeof(c));
    s_running = &c;
    ph_nats_opts_t o = { .nodes = 1 };
    assert_int_equal(ph_nats_start(&c, &o), 0);
    assert_int_equal(c.n, 1);
    assert_true(c.node[0].pid > 0);
    assert_string_equal(c.node[0].name, "n1");
    assert_non_null(strstr(c.urls, "nats://127.0.0.1:"));

    natsConnection *nc;
    jsCtx *js;
    s_connect(&c, &nc, &js);
    assert_int_equal(ph_nats_add_stream(&c, "ONE", "one.>", 1, false, 10000),
                     0);
    assert_int_equal(ph_nats_stream_leader(&c, "ONE", 5000), 0);
    assert_int_equal(ph_nats_stream_leader(&c, "NOPE", 5000), -ENOENT);
    assert_int_equal(s_publish(js, "one.a", "first", 5000), 1);

    /* kill -9 and restart: the acknowledged message is still there. */
    pid_t old = c.node[0].pid;
    assert_int_equal(ph_nats_kill9(&c, 0), 0);
    assert_int_equal(c.node[0].pid, 0);
    assert_false(s_alive(old));
    assert_int_equal(ph_nats_kill9(&c, 0), -ESRCH);
    assert_int_equal(ph_nats_restart(&c, 0), 0);
    assert_int_equal(ph_nats_restart(&c, 0), -EBUSY);
    assert_int_equal(ph_nats_wait_ready(&c, 20000), 0);
    assert_int_equal(s_publish(js, "one.b", "second", 10000), 2);
    assert_int_equal(s_last_seq(js, "ONE"), 2);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    pid_t pid = c.node[0].pid;
    ph_nats_stop(&c, false);
    assert_false(s_alive(pid));
}

static void
test_three_nodes(void **state)
{
    (void)state;
    /* static: the teardown may need it after a failure left the test */
    static ph_nats_cluster_t c;
    memset(&c, 0, sizeof(c));
    s_running = &c;
    ph_nats_opts_t o = { .nodes = 3 };
    assert_int_equal(ph_nats_start(&c, &o), 0);
    assert_int_equal(c.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(c.node[i].pid > 0);
        assert_int_equal(ph_nats_node_by_name(&c, c.node[i].name), i);
        for (int j = 0; j < i; j++) {
            assert_int_not_equal(c.node[i].port, c.node[j].port);
            assert_int_not_equal(c.node[i].cluster_port,
                                 c.node[j].cluster_port);
        }
    }
    assert_int_equal(ph_nats_node_by_name(&c, "n9"), -ENOENT);

    natsConnection *nc;
    jsCtx *js;
    s_connect(&c, &nc, &js);
    assert_int_equal(ph_nats_add_stream(&c, "TRI", "tri.>", 3, false, 10000),
                     0);
    int leader = ph_nats_stream_leader(&c, "TRI", S_LEADER_MS);
    assert_true(leader >= 0 && leader < 3);
    uint64_t acked = s_publish(js, "tri.a", "one", 5000);
    assert_int_equal(acked, 1);

    /* SIGSTOP a follower: two of three still make a quorum. */
    int other = (leader + 1) % 3;
    assert_int_equal(ph_nats_sigstop(&c, other), 0);
    assert_true(c.node[other].stopped);
    assert_int_equal(s_publish(js, "tri.a", "two", 10000), 2);
    /* The stopped node answers nothing: its readiness poll times out. */
    ph_nats_cluster_t view = c;
    for (int i = 0; i < 3; i++)
        if (i != other)
            view.node[i].stopped = true;
    view.node[other].stopped = false;
    assert_int_equal(ph_nats_wait_ready(&view, 300), -ETIMEDOUT);
    assert_int_equal(ph_nats_sigcont(&c, other), 0);
    assert_false(c.node[other].stopped);
    assert_int_equal(ph_nats_wait_ready(&c, 20000), 0);

    /* kill -9 the leader: another node leads, the restarted one rejoins. */
    assert_int_equal(ph_nats_kill9(&c, leader), 0);
    int next = -1;
    int64_t deadline = parley__mono_ms() + S_LEADER_MS;
    while (parley__mono_ms() < deadline) {
        next = ph_nats_stream_leader(&c, "TRI", 1000);
        if (next >= 0 && next != leader)
            break;
        usleep(100 * 1000);
    }
    assert_true(next >= 0 && next != leader);
    assert_int_equal(s_publish(js, "tri.a", "three", S_LEADER_MS), 3);
    assert_int_equal(ph_nats_restart(&c, leader), 0);
    assert_int_equal(ph_nats_wait_ready(&c, 20000), 0);
    assert_int_equal(s_publish(js, "tri.a", "four", 10000), 4);
    assert_int_equal(s_last_seq(js, "TRI"), 4);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    pid_t pids[3];
    for (int i = 0; i < 3; i++)
        pids[i] = c.node[i].pid;
    ph_nats_stop(&c, false);
    for (int i = 0; i < 3; i++)
        assert_false(s_alive(pids[i]));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_one_node, s_teardown),
        cmocka_unit_test_teardown(test_three_nodes, s_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nats_CloseAndWait(5000);
    return rc;
}
