/*
 * merge.h - the Clone-merge state machine of the reliable subscription
 * (library-internal).
 *
 * The pure bookkeeping behind parley_sub_t: what is known about the
 * daemon's log, which deliveries are held, when a replay or a snapshot
 * is due, what can be handed out next. It is kept free of sockets so that
 * unit tests (test_sub_merge.c) drive it message by message; sub.c drives
 * it with the feed and the api.
 */
#ifndef PARLEY_MERGE_H
#define PARLEY_MERGE_H

#include "parley.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One held delivery: its seq and the Delivery bytes (heap, owned). */
typedef struct parley__merge_item {
    uint64_t seq;
    uint8_t *data;
    size_t len;
} parley__merge_item_t;

/*
 * What a subscriber knows about the log, as plain state.
 *
 * emitted <= confirmed always. Every seq <= emitted has been handed out
 * (delivered, rejected, dropped by the filter or reported in a gap). Every
 * seq <= confirmed is either handed out or held in items[]: the daemon has
 * said so (a replay page or a snapshot), or the feed showed it contiguously.
 * A held item above confirmed + 1 means something between may be missing,
 * which only a replay can settle: with a filter, seqs of updates that do not
 * match are legitimately absent from the feed.
 */
typedef struct parley__merge {
    parley__merge_item_t *items; /* ascending, unique seqs, all > emitted */
    size_t n;                    /* items used */
    size_t alloc;                /* items allocated from items on */
    parley__merge_item_t *base;  /* the allocation: items handed out from
                                    the front leave room before items, so
                                    that taking the first is O(1) */
    size_t limit;                /* live items held at most (soft cap) */
    uint64_t emitted;            /* last seq handed out */
    uint64_t confirmed;          /* all seqs up to here are accounted for */
    uint64_t gap_to;             /* seqs up to here are gone (TRUNCATED) */
    uint64_t hb_seq;             /* head seq of the latest heartbeat */
    bool hold;                   /* a snapshot is awaited: emit nothing */
    bool replaying;              /* a replay is under way: keep paging */
    size_t ahead;                /* read-ahead: during a replay, the next
                                    page is due once fewer than this many
                                    accounted-for items are left to hand
                                    out (0: only once none is) */
} parley__merge_t;

/* What parley__merge_next() hands out. */
typedef struct parley__merge_out {
    parley__merge_item_t item;   /* with 1: the caller frees item.data */
    uint64_t gap_from, gap_to;   /* with 2: inclusive range gone */
} parley__merge_out_t;

/* Start empty, holding at most limit live items (0 = 1024). */
void parley__merge_init(parley__merge_t *m, size_t limit);

/* Free every held item; the state can be initialised again. */
void parley__merge_clear(parley__merge_t *m);

/*
 * Set where the subscription starts, once the first heartbeat (head seq
 * head) has shown the feed is live: LIVE after head; SEQ from since (a
 * replay); LAST holds everything until parley__merge_snapshot().
 */
void parley__merge_start(parley__merge_t *m, parley_start_t start,
                         uint64_t since, uint64_t head);

/*
 * Forget everything and continue after seq after with a replay (the
 * daemon came back with a different log).
 */
void parley__merge_rebase(parley__merge_t *m, uint64_t after);

/*
 * Drop every held item that the daemon has not confirmed: they came from
 * a connection that is gone, perhaps from a daemon with another log, and
 * a replay (or the awaited snapshot) fetches what is needed again.
 */
void parley__merge_forget(parley__merge_t *m);

/*
 * Is the subscription current: no snapshot awaited, no replay under way,
 * and every seq up to `head` handed out or known not to match?
 *
 * Returns:   1 or 0.
 */
int parley__merge_current(const parley__merge_t *m, uint64_t head);

/*
 * A delivery read from the feed. Repeats (one per topic) and seqs already
 * accounted for are dropped; when limit items are held the highest
 * unconfirmed one is dropped (a later replay fetches it again).
 *
 * Returns:   0 or -ENOMEM.
 */
int parley__merge_live(parley__merge_t *m, uint64_t seq, const void *data,
                       size_t len);

/* A heartbeat with the daemon's head seq. */
void parley__merge_heartbeat(parley__merge_t *m, uint64_t seq);

/* 1 if no more live items should be read for now, else 0. */
int parley__merge_full(const parley__merge_t *m);

/*
 * Should a replay request go out now? When nothing can be handed out:
 * then if a replay is under way, or a held item or the latest heartbeat
 * shows seqs beyond confirmed that the feed did not account for. With
 * m->ahead set, also during a replay while fewer than m->ahead items up
 * to confirmed are left to hand out, so that the next page arrives while
 * these are handed out (the page speaks for confirmed + 1 onwards, as it
 * would once they are out).
 *
 * Returns:   1 with *from set (always confirmed + 1), else 0.
 */
int parley__merge_want_replay(parley__merge_t *m, uint64_t *from);

/*
 * A replay page for a request from seq from: items (Delivery bytes,
 * copied) are every delivery matching the filter in from..next_seq-1.
 *
 * Returns:   0, -ENOMEM, or PARLEY_EPROTO (a page that makes no progress).
 */
int parley__merge_page(parley__merge_t *m, uint64_t from, uint64_t next_seq,
                       bool done, const parley__merge_item_t *items,
                       size_t n);

/*
 * The snapshot (as of seq) a LAST start waits for: it replaces whatever
 * the feed brought up to seq, and releases the hold.
 *
 * Returns:   0 or -ENOMEM.
 */
int parley__merge_snapshot(parley__merge_t *m, uint64_t seq,
                           const parley__merge_item_t *items, size_t n);

/*
 * A replay from seq from was answered TRUNCATED with first_seq (0 = the
 * daemon holds nothing): the seqs before it are reported as gaps (around
 * any that the feed brought), and the replay continues at first_seq.
 *
 * Returns:   0 or PARLEY_EPROTO (first_seq not above from).
 */
int parley__merge_truncated(parley__merge_t *m, uint64_t from,
                            uint64_t first_seq);

/*
 * Hand out the next thing in seq order.
 *
 * Returns:   0 (nothing yet), 1 (an item; out->item.data is the caller's)
 *            or 2 (a gap, out->gap_from..gap_to).
 */
int parley__merge_next(parley__merge_t *m, parley__merge_out_t *out);

/* Seq of the last update handed out or known to be skipped. */
uint64_t parley__merge_last_seq(const parley__merge_t *m);

#endif /* PARLEY_MERGE_H */
