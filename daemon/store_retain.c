/*
 * store_retain.c - the log's retention: which old segments go, and the
 * ages it measures them by.
 *
 * Ages are kept on the monotonic clock, so that a step of the wall clock
 * neither removes recent segments nor keeps old ones: a segment's newest
 * record is dated when it is synced, and records found at open are dated
 * as long before the open as the wall clock then said. A segment goes,
 * oldest first and never the newest, when the log is over max_bytes or
 * its newest record is older than max_age_ms.
 */
#include "store_int.h"

#include "log.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_STEP_LOG_MS 60000 /* a wall-clock step worth a log line */

/* --- ages ------------------------------------------------------------------
 */

/*
 * Monotonic time of a record found at open with received_at at: as long
 * before the open as the wall clock then said (never after it).
 */
static int64_t
s_mono_of(const pd_store_t *self, int64_t at)
{
    int64_t age, mono;
    if (__builtin_sub_overflow(self->wall0, at, &age))
        age = at < 0 ? INT64_MAX : 0;
    if (age < 0)
        age = 0;
    if (__builtin_sub_overflow(self->mono0, age, &mono))
        mono = INT64_MIN;
    return mono;
}

void
pd_store__age_segments(pd_store_t *self)
{
    for (size_t i = 0; i < self->nsegs; i++)
        if (self->segs[i].count > 0)
            self->segs[i].newest_mono =
                s_mono_of(self, self->segs[i].newest_at);
}

/* --- retention -------------------------------------------------------------
 */

/* Say once when the wall clock stepped against the monotonic one. */
static void
s_note_step(pd_store_t *self, int64_t now_ms, int64_t mono_ms)
{
    int64_t off, step;
    if (__builtin_sub_overflow(now_ms, mono_ms, &off)
        || __builtin_sub_overflow(off, self->clock_off, &step))
        return;
    if (step <= S_STEP_LOG_MS && step >= -S_STEP_LOG_MS)
        return;
    pd_log(PD_LOG_WARN,
           "store: the wall clock stepped %s by %" PRId64 " s; retention "
           "measures ages on the monotonic clock, so the step neither "
           "removes recent segments nor keeps old ones",
           step > 0 ? "forward" : "back",
           ((step > 0 ? step : -step) + 500) / 1000);
    self->clock_off = off;
}

int
pd_store_retain(pd_store_t *store, int64_t now_ms)
{
    return pd_store_retain_at(store, now_ms, parley__mono_ms());
}

int
pd_store_retain_at(pd_store_t *store, int64_t now_ms, int64_t mono_ms)
{
    if (store == NULL)
        return -EINVAL;
    s_note_step(store, now_ms, mono_ms);
    int removed = 0;
    while (store->nsegs > 1) {
        segment_t *seg = &store->segs[0];
        bool over = store->opts.max_bytes > 0
                    && store->stats.bytes > store->opts.max_bytes;
        int64_t age;
        bool old = store->opts.max_age_ms > 0 && seg->count > 0
                   && (__builtin_sub_overflow(mono_ms, seg->newest_mono, &age)
                       || age > store->opts.max_age_ms);
        if (!over && !old)
            break;
        char name[PD_STORE__NAME_LEN + 1];
        pd_store__segment_name(name, sizeof(name), seg->first_seq);
        if (unlinkat(store->dirfd, name, 0) < 0 && errno != ENOENT) {
            int rc = -errno;
            pd_log(PD_LOG_ERROR, "store: cannot remove %s/%s: %s", store->dir,
                   name, strerror(errno));
            return rc;
        }
        pd_log(PD_LOG_INFO,
               "store: retention removed %s/%s (seqs %" PRIu64 "-%" PRIu64
               ", %" PRIu64 " bytes)",
               store->dir, name, seg->first_seq,
               seg->first_seq + seg->count - 1, seg->bytes);
        pd_store__close_fd(store, 0);
        free(seg->offsets);
        store->stats.bytes -= seg->bytes;
        store->stats.segments--;
        memmove(&store->segs[0], &store->segs[1],
                (store->nsegs - 1) * sizeof(*store->segs));
        store->nsegs--;
        removed++;
        /*
         * Make each removal durable before the next: after a crash the
         * segments left must still run on from each other, which they
         * would not if a later unlink survived and an earlier one did not.
         */
        if (store->opts.sync && fsync(store->dirfd) < 0)
            return -errno;
    }
    return removed;
}
