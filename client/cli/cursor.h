/*
 * cursor.h - the durable cursor of `parley sub --cursor FILE`: the seq of
 * the last update fully handled (every update at or below it was handled
 * or dead-lettered, or does not match), so that a restarted subscriber
 * resumes after it and misses nothing.
 *
 * FILE holds one line, the seq in decimal. It is replaced atomically
 * (write FILE.tmp, fsync, rename, fsync the directory), so after a crash
 * it holds either the old or the new value, never a torn one. FILE.lock
 * is held (flock) while a subscriber uses the cursor, so that two
 * subscribers cannot share one by mistake.
 */
#ifndef PARLEY_CLI_CURSOR_H
#define PARLEY_CLI_CURSOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_cursor {
    char *path;         /* FILE */
    int lock_fd;        /* FILE.lock, locked; -1 if not open */
    uint64_t seq;       /* the value in FILE (0: none yet) */
    int present;        /* FILE exists (it was read or written) */
    unsigned long writes; /* values written since opened */
} cli_cursor_t;

/* A cursor that is not open; cli_cursor_close() accepts it. */
#define CLI_CURSOR_INIT { .path = NULL, .lock_fd = -1 }

/*
 * Open the cursor at path: take FILE.lock and read FILE (a missing FILE
 * is a cursor of 0: start from the beginning of what the daemon holds).
 *
 * Returns:   0; -EWOULDBLOCK if another process holds the lock; -EINVAL if
 *            FILE does not hold a seq (err says so); or another -errno,
 *            with err naming the file.
 * Ownership: close with cli_cursor_close(), also after a failure.
 */
int cli_cursor_open(cli_cursor_t *cur, const char *path, char *err,
                    size_t cap);

/*
 * Record seq as handled, atomically and durably, if it is above the value
 * held or FILE does not exist yet (the cursor never moves back).
 *
 * Returns:   0 (also when nothing needed writing) or -errno, with err
 *            saying what failed; the old value stays in FILE then.
 */
int cli_cursor_write(cli_cursor_t *cur, uint64_t seq, char *err, size_t cap);

/* Release the lock and free the path. Accepts CLI_CURSOR_INIT. */
void cli_cursor_close(cli_cursor_t *cur);

/*
 * Replace path with text atomically and durably (path.tmp, fsync,
 * rename, fsync of the directory); what the cursor and the stats file
 * use. Returns 0 or -errno.
 */
int cli_write_atomic(const char *path, const char *text, size_t len);

#endif /* PARLEY_CLI_CURSOR_H */
