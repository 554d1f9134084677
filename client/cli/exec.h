/*
 * exec.h - the command handler of `parley sub -- COMMAND`: one process
 * per attempt, with the update in PARLEY_* environment variables and as
 * one JSON line on its stdin; never through a shell string.
 *
 * The command runs with execve() on a path resolved once at start. The
 * child is prepared entirely before fork() (argv, environment, pipe),
 * because libzmq's threads live in this process and the child may only
 * make async-signal-safe calls before execve(). Each command leads its
 * own process group, so that a timeout (SIGKILL) or a stop (SIGTERM)
 * reaches what it started too.
 */
#ifndef PARLEY_CLI_EXEC_H
#define PARLEY_CLI_EXEC_H

#include "alert.h"

#include <sys/types.h>

/* One running command. A slot with pid 0 is free. */
typedef struct cli_exec_job {
    pid_t pid;               /* the command (and its process group) */
    int64_t deadline;        /* monotonic ms: SIGKILL then */
    int fd;                  /* write end of its stdin, -1 once closed */
    char *json;              /* its stdin: the update as one JSON line */
    size_t off, len;         /* bytes of json written, bytes in all */
    int killed;              /* SIGKILLed at the deadline */
    int termed;              /* SIGTERM passed on because we stop */
} cli_exec_job_t;

/* The command run per update, and its running instances. */
typedef struct cli_exec {
    char **argv;             /* COMMAND and ARGS, from our argv */
    char *path;              /* COMMAND resolved against PATH */
    int timeout_ms;          /* --exec-timeout */
    int max_jobs;            /* slots */
    cli_exec_job_t *jobs;
    unsigned long runs;      /* commands started (or tried) */
} cli_exec_t;

/* The handler operations for cli_alerts_init(). */
extern const cli_handler_ops_t cli_exec_ops;

/*
 * Prepare the handler for argv (COMMAND and its ARGS): resolve COMMAND
 * like execvp() would (a name with a slash as it is, else the first
 * executable regular file of that name in $PATH).
 *
 * Returns:   0, -ENOENT (not found or not executable) or -ENOMEM.
 * Ownership: argv is borrowed; free with cli_exec_free().
 */
int cli_exec_init(cli_exec_t *x, char **argv, int timeout_ms, int max_jobs);

/* Free the handler; commands still running are killed (SIGKILL to their
 * process group) and reaped. */
void cli_exec_free(cli_exec_t *x);

#endif /* PARLEY_CLI_EXEC_H */
