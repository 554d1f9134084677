/*
 * alert.h - the alert path of `parley sub`: every update it receives is
 * handed to a handler (a command, or a webhook), retried with backoff
 * when the handler fails, dead-lettered when the retry window is over,
 * and recorded in the cursor once it is done, so that nothing is lost.
 *
 * Order. Updates start in seq order. With one job at a time (the
 * default) an update that fails holds the next ones back until it
 * succeeds or is dead-lettered: nothing overtakes it. With --exec-jobs N,
 * up to N updates are under way at once, each retried on its own (a
 * waiting retry keeps its slot), for handlers that are independent.
 *
 * Cursor. The cursor moves to the seq below the oldest update not yet
 * done (or to the last seq received when none is under way), after each
 * update that is done; an update is done when the handler succeeded or it
 * went to the dead-letter file. A crash repeats at most the updates that
 * were under way (at-least-once).
 */
#ifndef PARLEY_CLI_ALERT_H
#define PARLEY_CLI_ALERT_H

#include "common.h"
#include "cursor.h"
#include "retry.h"

#include <stddef.h>
#include <stdint.h>

/* Room for an Idempotency-Key "<32 hex>/<seq>" and its NUL. */
#define CLI_ALERT_KEY_CHARS 56

/* One update on its way through a handler. */
typedef struct cli_job {
    parley_delivery_t *d;       /* owned copy; NULL: the slot is free */
    uint64_t seq;
    char key[CLI_ALERT_KEY_CHARS]; /* Idempotency-Key: daemon id/seq */
    unsigned attempts;          /* attempts started */
    int running;                /* an attempt is under way */
    int64_t first_ms;           /* monotonic ms: the first attempt began */
    int64_t first_wall_ms;      /* the same, unix ms (for the dead letter) */
    int64_t next_ms;            /* monotonic ms: the next attempt, if
                                   waiting */
    char error[256];            /* why the last attempt failed */
} cli_job_t;

/*
 * What a handler does with one attempt of a job, in slot `slot` (0 to
 * max_jobs - 1). Calls are made from the main loop, never concurrently.
 */
typedef struct cli_handler_ops {
    /* Start an attempt. Returns 0, or -1 with why it could not start in
     * err (counted as a failed attempt). */
    int (*start)(void *self, int slot, const cli_job_t *job, char *err,
                 size_t cap);
    /* Look at a running attempt without blocking. Returns 1 (succeeded),
     * 0 (still running) or -1 (failed: why in err, and a wait the
     * receiver asked for in *hint_ms, 0 if none). */
    int (*poll)(void *self, int slot, char *err, size_t cap,
                int64_t *hint_ms);
    /* A stop was asked (SIGINT/SIGTERM): pass it on to a running attempt;
     * it still ends through poll(). */
    void (*stop)(void *self, int slot);
    /* Milliseconds the loop may sleep while attempts run (0: poll at once;
     * -1: no limit). */
    int (*timeout)(void *self);
    /* What the handler is, for messages ("COMMAND", "webhook URL"). */
    const char *(*name)(void *self);
} cli_handler_ops_t;

/* Counters for --stats-file and SIGUSR1. */
typedef struct cli_alert_stats {
    uint64_t received;       /* updates queued for the handler */
    uint64_t handled;        /* the handler succeeded */
    uint64_t retried;        /* attempts after a failure */
    uint64_t failed;         /* attempts that failed */
    uint64_t dead_lettered;  /* updates given up on after the window */
    uint64_t gaps;           /* ranges reported as no longer held */
    uint64_t skipped;        /* updates --status/--kind left out */
} cli_alert_stats_t;

typedef struct cli_alerts {
    const cli_common_t *c;
    const cli_handler_ops_t *ops;
    void *handler;
    int max_jobs;               /* slots */
    cli_job_t *slots;
    parley_delivery_t **queue;  /* ring, in seq order */
    size_t q_cap, q_head, q_len;
    cli_retry_t retry;
    cli_cursor_t *cursor;       /* NULL without --cursor */
    const char *dead_path;      /* NULL: dead letters are only reported */
    char daemon_id[33];         /* hex, for Idempotency-Key; "" unknown */
    uint64_t max_seen;          /* highest seq received or skipped */
    uint64_t low_water;         /* everything at or below is done */
    uint64_t start_seq;         /* the cursor when we started */
    cli_alert_stats_t stats;
    int stopping;               /* a stop was passed on */
    int failed_write;           /* cursor or dead-letter file failed */
} cli_alerts_t;

/* Most updates waiting for a free slot before the subscription pauses. */
#define CLI_ALERT_QUEUE_MAX 4096

/*
 * Set up the alert path. cursor and dead_path may be NULL.
 *
 * Returns:   0 or -ENOMEM.
 * Ownership: c, ops, handler, cursor and dead_path are borrowed and must
 *            outlive a; free with cli_alerts_free().
 */
int cli_alerts_init(cli_alerts_t *a, const cli_common_t *c,
                    const cli_handler_ops_t *ops, void *handler, int max_jobs,
                    const cli_retry_t *retry, cli_cursor_t *cursor,
                    const char *dead_path);

/* Free what the alert path holds (jobs under way are given up). */
void cli_alerts_free(cli_alerts_t *a);

/*
 * Queue a copy of d for the handler (d's seq must be above every seq
 * queued before). Returns 0, or -ENOMEM.
 */
int cli_alerts_push(cli_alerts_t *a, const parley_delivery_t *d);

/* Note a seq received but left out (a local filter, a failed
 * verification): the cursor may pass it. */
void cli_alerts_skip(cli_alerts_t *a, uint64_t seq);

/* Is the queue full (the subscription should pause)? */
int cli_alerts_full(const cli_alerts_t *a);

/* Nothing queued or under way. */
int cli_alerts_idle(const cli_alerts_t *a);

/*
 * Do what is due without blocking: look at running attempts, start
 * waiting ones whose time came and queued ones in free slots, retry or
 * dead-letter failures, move the cursor. After a stop, nothing new is
 * started.
 *
 * Returns:   the ms until something is due (0: at once, -1: nothing).
 */
int cli_alerts_step(cli_alerts_t *a);

/* Pass a stop on to the running attempts; start nothing new. What is
 * not done stays above the cursor, for the next start. */
void cli_alerts_stop(cli_alerts_t *a);

/* Start nothing new, but let running attempts end by themselves (-W). */
void cli_alerts_drain(cli_alerts_t *a);

/* Move the cursor up to what is done (also done by cli_alerts_step()
 * after each update; call it once more before exit). */
void cli_alerts_commit(cli_alerts_t *a);

/* Any attempt running now? */
int cli_alerts_running(const cli_alerts_t *a);

/* The lag in seqs: from what is done (the cursor) to head, the last seq
 * the subscription knows of (or the last received, if higher). */
uint64_t cli_alerts_lag(const cli_alerts_t *a, uint64_t head);

/*
 * The counters as one JSON object (a heap string, no newline) or as one
 * line for people ("handled 12, retried 3, ..."). head is the last seq
 * the subscription knows of, for the lag.
 */
char *cli_alerts_stats_json(const cli_alerts_t *a, uint64_t head);
void cli_alerts_stats_line(const cli_alerts_t *a, uint64_t head, char *buf,
                           size_t cap);

/* Monotonic milliseconds. */
int64_t cli_mono_ms(void);

#endif /* PARLEY_CLI_ALERT_H */
