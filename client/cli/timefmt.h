/*
 * timefmt.h - times for people: durations ("90s", "1h30m"), timestamps
 * (ISO 8601, local or with a zone), and the "where to start" argument of
 * --since/--until that may be any of a seq, a duration or a timestamp.
 *
 * Pure functions of their arguments (and of the time zone for local
 * times), so that they can be unit tested.
 */
#ifndef PARLEY_CLI_TIMEFMT_H
#define PARLEY_CLI_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a duration: one or more NUMBER UNIT pairs, UNIT one of ms, s, m,
 * h, d ("500ms", "90s", "30m", "1h30m", "2d"). With bare_seconds, a plain
 * number ("5", "0.5") counts as seconds. Fractions are allowed for the
 * number of a single pair ("1.5h").
 *
 * Returns:   0 with *ms set (>= 0), or -1 (not a duration, or over about
 *            290 million years).
 * Threads:   safe.
 */
int cli_parse_duration(const char *s, int bare_seconds, int64_t *ms);

/*
 * Parse a timestamp:
 *   YYYY-MM-DD                       local midnight
 *   YYYY-MM-DDTHH:MM[:SS[.fff]]      local time ('T' or one space)
 *   ... followed by Z, +HH:MM, -HH:MM, +HHMM or +HH: that offset from UTC
 *   @SECONDS                         unix time, as date(1) takes it
 *
 * Returns:   0 with *ms set (unix milliseconds), or -1.
 * Threads:   safe (mktime() reads the time zone).
 */
int cli_parse_time(const char *s, int64_t *ms);

/* What a --since or --until argument named. */
typedef enum {
    CLI_POINT_SEQ = 0,  /* a seq: digits only */
    CLI_POINT_TIME,     /* a moment: a timestamp, or now minus a duration */
} cli_point_kind_t;

typedef struct cli_point {
    cli_point_kind_t kind;
    uint64_t seq;       /* CLI_POINT_SEQ */
    int64_t ms;         /* CLI_POINT_TIME: unix ms */
} cli_point_t;

/*
 * Parse a --since/--until argument: digits are a seq; a duration (with a
 * unit) is that long before now_ms; anything else must be a timestamp.
 *
 * Returns:   0 with *out set, or -1.
 * Threads:   safe.
 */
int cli_parse_point(const char *s, int64_t now_ms, cli_point_t *out);

/* Room for any text cli_format_time() writes, with the NUL. */
#define CLI_TIME_CHARS 40

/* How cli_format_time() writes. */
typedef enum {
    CLI_TIME_ISO_LOCAL = 0, /* 2024-08-20T14:03:05+02:00 */
    CLI_TIME_ISO_UTC,       /* 2024-08-20T12:03:05Z */
    CLI_TIME_SHORT_LOCAL,   /* 2024-08-20 14:03:05 (lines for people) */
    CLI_TIME_SHORT_UTC,     /* 2024-08-20 12:03:05 */
} cli_time_style_t;

/*
 * Write unix ms as text in the given style into buf (CLI_TIME_CHARS
 * bytes suffice); 0 ms (no time) is written as "-".
 * Threads:   safe (localtime_r).
 */
void cli_format_time(int64_t ms, cli_time_style_t style, char *buf,
                     size_t cap);

#endif /* PARLEY_CLI_TIMEFMT_H */
