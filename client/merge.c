/*
 * merge.c - the Clone-merge state machine of the reliable subscription:
 * held deliveries ordered by seq, what the daemon has confirmed, what can
 * be handed out, when a replay or a snapshot is due (docs/protocol.md
 * section 10). No sockets: sub.c feeds it what the feed and the api
 * bring, and test_sub_merge.c drives it directly.
 */
#include "merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
parley__merge_init(parley__merge_t *m, size_t limit)
{
    memset(m, 0, sizeof(*m));
    m->limit = limit > 0 ? limit : 1024;
}

void
parley__merge_clear(parley__merge_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->items[i].data);
    free(m->base);
    m->items = m->base = NULL;
    m->n = m->alloc = 0;
}

/* Index of the first item with seq >= seq. */
static size_t
s_lower_bound(const parley__merge_t *m, uint64_t seq)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->items[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Free and remove items [from, to) of the array. */
static void
s_remove_range(parley__merge_t *m, size_t from, size_t to)
{
    if (from >= to)
        return;
    for (size_t i = from; i < to; i++)
        free(m->items[i].data);
    memmove(&m->items[from], &m->items[to],
            (m->n - to) * sizeof(m->items[0]));
    m->n -= to - from;
}

/* Remove every item with lo <= seq <= hi. */
static void
s_remove_seqs(parley__merge_t *m, uint64_t lo, uint64_t hi)
{
    if (lo > hi)
        return;
    size_t a = s_lower_bound(m, lo);
    size_t b = hi == UINT64_MAX ? m->n : s_lower_bound(m, hi + 1);
    s_remove_range(m, a, b);
}

/*
 * Room for one more item at the end: the room the items handed out left
 * before them is taken back when it is at least as large as what is
 * held (so each item is moved O(1) times on average), else the array
 * doubles. Returns 0 or -ENOMEM.
 */
static int
s_make_room(parley__merge_t *m)
{
    size_t off = m->base != NULL ? (size_t)(m->items - m->base) : 0;
    if (off > 0 && off >= m->n) {
        memmove(m->base, m->items, m->n * sizeof(m->items[0]));
        m->items = m->base;
        m->alloc += off;
        return 0;
    }
    size_t total = off + m->alloc;
    total = total > 0 ? total * 2 : 64;
    parley__merge_item_t *base = realloc(m->base, total * sizeof(*base));
    if (base == NULL)
        return -ENOMEM;
    m->base = base;
    m->items = base + off;
    m->alloc = total - off;
    return 0;
}

/*
 * Insert a copy of one delivery unless its seq is already held.
 * Returns 0 or -ENOMEM.
 */
static int
s_insert(parley__merge_t *m, uint64_t seq, const void *data, size_t len)
{
    size_t at = s_lower_bound(m, seq);
    if (at < m->n && m->items[at].seq == seq)
        return 0; /* the same delivery again, once per matching topic */
    if (m->n == m->alloc && s_make_room(m) < 0)
        return -ENOMEM;
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return -ENOMEM;
    if (len > 0)
        memcpy(copy, data, len);
    memmove(&m->items[at + 1], &m->items[at],
            (m->n - at) * sizeof(m->items[0]));
    m->items[at] = (parley__merge_item_t){ seq, copy, len };
    m->n++;
    return 0;
}

void
parley__merge_start(parley__merge_t *m, parley_start_t start, uint64_t since,
                    uint64_t head)
{
    m->hb_seq = head > m->hb_seq ? head : m->hb_seq;
    m->gap_to = 0;
    m->hold = false;
    m->replaying = false;
    switch (start) {
    case PARLEY_START_SEQ:
        m->emitted = m->confirmed = since > 0 ? since - 1 : 0;
        m->replaying = true;
        break;
    case PARLEY_START_LAST:
        m->emitted = m->confirmed = 0;
        m->hold = true;
        return; /* the snapshot decides what the held items are worth */
    case PARLEY_START_LIVE:
    default:
        m->emitted = m->confirmed = head;
        break;
    }
    s_remove_seqs(m, 0, m->confirmed);
}

void
parley__merge_rebase(parley__merge_t *m, uint64_t after)
{
    s_remove_range(m, 0, m->n);
    m->emitted = m->confirmed = after;
    m->gap_to = 0;
    m->hb_seq = after;
    m->hold = false;
    m->replaying = true;
}

void
parley__merge_forget(parley__merge_t *m)
{
    if (m->hold)
        s_remove_range(m, 0, m->n);
    else
        s_remove_seqs(m, m->confirmed + 1, UINT64_MAX);
}

int
parley__merge_current(const parley__merge_t *m, uint64_t head)
{
    return !m->hold && !m->replaying && parley__merge_last_seq(m) >= head;
}

int
parley__merge_live(parley__merge_t *m, uint64_t seq, const void *data,
                   size_t len)
{
    /* Everything up to confirmed is held or handed out already; a
     * delivery there that is not held is one the filter does not want. */
    if (seq <= m->confirmed && !m->hold)
        return 0;
    if (seq <= m->emitted)
        return 0;
    if (m->n >= m->limit) {
        /* Full: keep the lowest seqs, which are handed out first. Items at
         * or below confirmed were promised by the daemon and stay. */
        parley__merge_item_t *top = &m->items[m->n - 1];
        if (seq >= top->seq || top->seq <= m->confirmed)
            return 0;
        free(top->data);
        m->n--;
    }
    return s_insert(m, seq, data, len);
}

void
parley__merge_heartbeat(parley__merge_t *m, uint64_t seq)
{
    if (seq > m->hb_seq)
        m->hb_seq = seq;
}

int
parley__merge_full(const parley__merge_t *m)
{
    return m->n >= m->limit;
}

/* 1 if merge_next() has something to hand out now. */
static int
s_ready(const parley__merge_t *m)
{
    if (m->hold)
        return 0;
    if (m->n > 0 && m->items[0].seq <= m->confirmed + 1)
        return 1;
    return m->gap_to > m->confirmed;
}

/*
 * Is the next replay page worth asking for already? Only during a replay,
 * with read-ahead on, no range reported gone waiting, and fewer than
 * m->ahead held items accounted for (up to confirmed) left to hand out.
 */
static bool
s_read_ahead(const parley__merge_t *m)
{
    return m->replaying && m->ahead > 0 && m->gap_to <= m->confirmed
           && s_lower_bound(m, m->confirmed + 1) < m->ahead;
}

int
parley__merge_want_replay(parley__merge_t *m, uint64_t *from)
{
    if (m->hold || (s_ready(m) && !s_read_ahead(m)))
        return 0;
    /* Not ready, so a held item lies beyond confirmed + 1; with nothing
     * held, a heartbeat beyond confirmed names seqs the feed did not show. */
    if (!m->replaying) {
        if (m->n == 0 && m->hb_seq <= m->confirmed)
            return 0;
        m->replaying = true;
    }
    *from = m->confirmed + 1;
    return 1;
}

int
parley__merge_page(parley__merge_t *m, uint64_t from, uint64_t next_seq,
                   bool done, const parley__merge_item_t *items, size_t n)
{
    if (from == 0 || next_seq < from || (!done && next_seq == from))
        return PARLEY_EPROTO;
    uint64_t last = next_seq - 1; /* the page speaks for from..last */
    /* The daemon's answer is authoritative for its range: what the feed
     * brought there and the page lacks does not match the filter. */
    if (last >= from)
        s_remove_seqs(m, from, last);
    for (size_t i = 0; i < n; i++) {
        uint64_t s = items[i].seq;
        if (s < from || s > last || s <= m->emitted)
            continue;
        int rc = s_insert(m, s, items[i].data, items[i].len);
        if (rc < 0)
            return rc;
    }
    if (last > m->confirmed)
        m->confirmed = last;
    if (last > m->hb_seq)
        m->hb_seq = last;
    m->replaying = !done;
    return 0;
}

int
parley__merge_snapshot(parley__merge_t *m, uint64_t seq,
                       const parley__merge_item_t *items, size_t n)
{
    /* Feed deliveries up to seq are either in the snapshot or superseded
     * by something in it; only the snapshot counts there. */
    s_remove_seqs(m, 0, seq);
    for (size_t i = 0; i < n; i++) {
        if (items[i].seq == 0 || items[i].seq <= m->emitted)
            continue;
        int rc = s_insert(m, items[i].seq, items[i].data, items[i].len);
        if (rc < 0)
            return rc;
    }
    if (seq > m->confirmed)
        m->confirmed = seq;
    if (seq > m->hb_seq)
        m->hb_seq = seq;
    m->hold = false;
    return 0;
}

int
parley__merge_truncated(parley__merge_t *m, uint64_t from, uint64_t first_seq)
{
    uint64_t gone;
    if (first_seq == 0) {
        /* The daemon holds nothing: all up to its head is gone. */
        gone = m->hb_seq;
        m->replaying = false;
    } else {
        if (first_seq <= from)
            return PARLEY_EPROTO;
        gone = first_seq - 1;
        m->replaying = true; /* continues from first_seq once reported */
    }
    if (gone > m->gap_to)
        m->gap_to = gone;
    return 0;
}

int
parley__merge_next(parley__merge_t *m, parley__merge_out_t *out)
{
    if (m->hold)
        return 0;
    if (m->n > 0 && m->items[0].seq <= m->confirmed + 1) {
        out->item = m->items[0];
        /* O(1): the slot stays before items until s_make_room() takes
         * it back (or at once when nothing is left). */
        m->items++;
        m->alloc--;
        if (--m->n == 0) {
            m->alloc += (size_t)(m->items - m->base);
            m->items = m->base;
        }
        m->emitted = out->item.seq;
        if (m->emitted > m->confirmed)
            m->confirmed = m->emitted;
        return 1;
    }
    if (m->gap_to > m->confirmed) {
        /* Report the gone range up to the next delivery we do hold: the
         * feed may have brought some of it before the log was trimmed. */
        uint64_t to = m->gap_to;
        if (m->n > 0 && m->items[0].seq <= to)
            to = m->items[0].seq - 1;
        out->gap_from = m->confirmed + 1;
        out->gap_to = to;
        m->emitted = m->confirmed = to;
        return 2;
    }
    return 0;
}

uint64_t
parley__merge_last_seq(const parley__merge_t *m)
{
    if (m->n > 0 && m->items[0].seq <= m->confirmed)
        return m->items[0].seq - 1 > m->emitted ? m->items[0].seq - 1
                                                : m->emitted;
    return m->confirmed;
}
