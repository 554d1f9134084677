/*
 * state_probe.c - the client side of test_state_model.sh: publishes
 * updates, and reads the current state back two ways through libparley,
 * on commands from its standard input (one per line; answers on standard
 * output, one line each unless said otherwise):
 *
 *   server EP           use the api endpoint EP (closes what is open)   OK
 *   pub N               then N lines of update JSON (parley pub --json
 *                       fields; issued_at 0 = now): signed and sent
 *                       pipelined, the answers awaited        SEQS s1 .. sN
 *   snap N NEG...       a one-shot snapshot (parley_snapshot()) of these
 *                       negotiations: its entries, as checked by the
 *                       library, one "E NEG PARTY PHASE SEQ" line each,
 *                       then END
 *   open N NEG...       a subscriber (PARLEY_START_LAST) and a state table
 *                       (parley_state_t), both on these negotiations, the
 *                       table fed every event of the subscriber          OK
 *   table SEQ           feed the table until it reflects SEQ and the
 *                       subscriber has caught up: its entries as E lines,
 *                       then END
 *   close               drop the subscriber and the table               OK
 *
 * A failure answers "ERR what" instead. The signer_seq of each update
 * comes from the clock (microseconds), rising, so that a probe started
 * again after a daemon restart goes on above the last one.
 *
 *   state_probe KEYFILE
 */
#include "parley.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_NEGS 64   /* negotiations per command (one filter) */
#define S_MAX_PUB 1000  /* updates per pub command */

typedef struct {
    parley_key_t *key;
    char server[256];
    parley_pub_t *pub;
    uint64_t signer_seq;
    parley_filter_t *filter;   /* of the open subscriber and table */
    parley_sub_t *sub;
    parley_state_t *table;
    int caught_up;             /* the subscriber said CAUGHT_UP */
} s_probe_t;

static void
s_close(s_probe_t *p)
{
    parley_sub_destroy(&p->sub);
    parley_state_destroy(&p->table);
    parley_filter_destroy(&p->filter);
    p->caught_up = 0;
}

/* A filter on the negotiations in words[0..n). NULL on failure. */
static parley_filter_t *
s_filter(char **words, size_t n)
{
    parley_filter_t *f = parley_filter_new();
    for (size_t i = 0; f != NULL && i < n; i++)
        if (parley_filter_add_negotiation(f, words[i]) != 0)
            parley_filter_destroy(&f);
    return f;
}

/* Split line into at most cap words (in place). Returns the count. */
static size_t
s_words(char *line, char **words, size_t cap)
{
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save);
         w != NULL && n < cap; w = strtok_r(NULL, " \t\r\n", &save))
        words[n++] = w;
    return n;
}

static void
s_entry_line(const char *neg, const char *party, uint32_t phase, uint64_t seq)
{
    printf("E %s %s %u %llu\n", neg, party, (unsigned)phase,
           (unsigned long long)seq);
}

/* pub N: read N JSON lines, send them all, wait for every answer. */
static void
s_pub(s_probe_t *p, size_t n)
{
    static uint64_t seqs[S_MAX_PUB], ids[S_MAX_PUB];
    char *line = NULL, detail[256] = "";
    size_t cap = 0, bad = 0;
    int rc = 0;
    parley_update_t *u = parley_update_new();
    if (p->pub == NULL) {
        parley_pub_options_t opt = PARLEY_PUB_OPTIONS_INIT;
        opt.server = p->server;
        opt.timeout_ms = 10000;
        p->pub = parley_pub_new(p->key, &opt);
    }
    for (size_t i = 0; i < n; i++) {
        if (getline(&line, &cap, stdin) < 0) {
            rc = -EIO;
            break;
        }
        if (rc < 0 || u == NULL || p->pub == NULL)
            continue; /* read the rest of the command */
        uint8_t env[PARLEY_ENVELOPE_MAX];
        size_t len;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
        p->signer_seq = now_us > p->signer_seq ? now_us : p->signer_seq + 1;
        parley_update_reset(u);
        if ((rc = parley_update_from_json(line, u, detail, sizeof(detail))) == 0
            && (parley_update_issued_at(u) != 0
                || (rc = parley_update_set_issued_at(u, parley_now_ms())) == 0)
            && (rc = parley_update_set_signer_seq(u, p->signer_seq)) == 0
            && (rc = parley_sign(p->key, u, env, sizeof(env), &len)) == 0)
            rc = parley_pub_send(p->pub, env, len, &ids[i]);
        if (rc < 0)
            bad = i;
        seqs[i] = 0;
    }
    free(line);
    parley_update_destroy(&u);
    if (u == NULL && n > 0 && p->pub == NULL) {
        printf("ERR no publisher\n");
        return;
    }
    if (rc < 0) {
        printf("ERR update %zu: %s %s\n", bad, parley_error_name(rc), detail);
        return;
    }
    for (size_t got = 0; got < n;) {
        uint64_t id = 0, seq = 0;
        rc = parley_pub_recv(p->pub, 30000, &id, &seq);
        if (rc == -EINTR)
            continue;
        if (rc != 0 && rc != PARLEY_DUPLICATE) {
            printf("ERR answer: %s: %s\n", parley_error_name(rc),
                   parley_pub_detail(p->pub));
            return;
        }
        for (size_t i = 0; i < n; i++)
            if (ids[i] == id)
                seqs[i] = seq;
        got++;
    }
    printf("SEQS");
    for (size_t i = 0; i < n; i++)
        printf(" %llu", (unsigned long long)seqs[i]);
    printf("\n");
}

/* snap N NEG...: the entries of a one-shot snapshot. */
static void
s_snap(s_probe_t *p, char **negs, size_t n)
{
    parley_filter_t *f = s_filter(negs, n);
    const parley_filter_t *fs[] = { f };
    parley_call_options_t opt = PARLEY_CALL_OPTIONS_INIT;
    opt.server = p->server;
    opt.filters = fs;
    opt.n_filters = 1;
    opt.timeout_ms = 10000;
    parley_query_t *q = NULL;
    int rc = f == NULL ? -ENOMEM : parley_snapshot(&opt, &q);
    const parley_event_t *ev;
    /* Every delivery must verify and agree with its entries. */
    while (rc == 0 && (rc = parley_query_next(q, &ev)) == 1) {
        rc = 0;
        if (parley_event_type(ev) == PARLEY_EVENT_REJECTED) {
            printf("ERR #%llu rejected: %s\n",
                   (unsigned long long)parley_event_seq(ev),
                   parley_error_name(parley_event_code(ev)));
            rc = 1;
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < parley_query_entry_count(q); i++) {
            const char *neg, *party;
            uint32_t phase;
            uint64_t seq;
            if (parley_query_entry(q, i, &neg, &party, &phase, &seq) == 0)
                s_entry_line(neg, party, phase, seq);
        }
        printf("END\n");
    } else if (rc < 0) {
        printf("ERR snapshot: %s\n", parley_error_name(rc));
    }
    parley_query_destroy(&q);
    parley_filter_destroy(&f);
}

/* open N NEG...: a subscriber starting with the snapshot, and a table. */
static void
s_open(s_probe_t *p, char **negs, size_t n)
{
    s_close(p);
    p->filter = s_filter(negs, n);
    const parley_filter_t *fs[] = { p->filter };
    parley_sub_options_t so = PARLEY_SUB_OPTIONS_INIT;
    so.server = p->server;
    so.filters = fs;
    so.n_filters = 1;
    so.start = PARLEY_START_LAST;
    so.timeout_ms = 10000;
    parley_call_options_t co = PARLEY_CALL_OPTIONS_INIT;
    co.server = p->server;
    co.filters = fs;
    co.n_filters = 1;
    co.timeout_ms = 10000;
    if (p->filter == NULL || (p->sub = parley_sub_new(&so)) == NULL
        || (p->table = parley_state_new(&co)) == NULL) {
        printf("ERR open: %s\n", parley_strerror(-errno));
        s_close(p);
        return;
    }
    printf("OK\n");
}

/* table SEQ: feed the table until it reflects seq, then print it. */
static void
s_table(s_probe_t *p, uint64_t seq)
{
    if (p->sub == NULL) {
        printf("ERR nothing open\n");
        return;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!p->caught_up || parley_state_seq(p->table) < seq) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 60) {
            printf("ERR table at seq %llu after 60 s, waiting for %llu\n",
                   (unsigned long long)parley_state_seq(p->table),
                   (unsigned long long)seq);
            return;
        }
        const parley_event_t *ev;
        int rc = parley_sub_next(p->sub, 200, &ev);
        if (rc == 0 || rc == -EINTR || rc == PARLEY_ETIMEOUT)
            continue;
        if (rc < 0) {
            printf("ERR subscriber: %s\n", parley_error_name(rc));
            return;
        }
        if (parley_event_type(ev) == PARLEY_EVENT_CAUGHT_UP)
            p->caught_up = 1;
        if (parley_event_type(ev) == PARLEY_EVENT_REJECTED) {
            printf("ERR #%llu rejected: %s\n",
                   (unsigned long long)parley_event_seq(ev),
                   parley_error_name(parley_event_code(ev)));
            return;
        }
        if ((rc = parley_state_apply(p->table, ev)) < 0) {
            printf("ERR table: %s\n", parley_error_name(rc));
            return;
        }
    }
    for (size_t i = 0; i < parley_state_count(p->table); i++) {
        const char *neg, *party;
        uint32_t phase;
        const parley_delivery_t *d =
            parley_state_entry(p->table, i, &neg, &party, &phase);
        s_entry_line(neg, party, phase, parley_delivery_seq(d));
    }
    printf("END\n");
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: state_probe KEYFILE\n");
        return 2;
    }
    s_probe_t p = { 0 };
    if ((p.key = parley_key_load(argv[1])) == NULL) {
        fprintf(stderr, "state_probe: %s: %s\n", argv[1],
                parley_strerror(-errno));
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) >= 0) {
        char *w[S_MAX_NEGS + 2];
        size_t n = s_words(line, w, S_MAX_NEGS + 2);
        if (n == 0)
            continue;
        size_t count = n > 1 ? strtoul(w[1], NULL, 10) : 0;
        if (strcmp(w[0], "server") == 0 && n == 2) {
            s_close(&p);
            parley_pub_destroy(&p.pub);
            snprintf(p.server, sizeof(p.server), "%s", w[1]);
            printf("OK\n");
        } else if (strcmp(w[0], "pub") == 0 && n == 2 && count <= S_MAX_PUB) {
            s_pub(&p, count);
        } else if (strcmp(w[0], "snap") == 0 && n >= 2 && count == n - 2) {
            s_snap(&p, w + 2, count);
        } else if (strcmp(w[0], "open") == 0 && n >= 2 && count == n - 2) {
            s_open(&p, w + 2, count);
        } else if (strcmp(w[0], "table") == 0 && n == 2) {
            s_table(&p, strtoull(w[1], NULL, 10));
        } else if (strcmp(w[0], "close") == 0) {
            s_close(&p);
            printf("OK\n");
        } else {
            printf("ERR bad command %s\n", w[0]);
        }
        fflush(stdout);
    }
    free(line);
    s_close(&p);
    parley_pub_destroy(&p.pub);
    parley_key_destroy(&p.key);
    return 0;
}
