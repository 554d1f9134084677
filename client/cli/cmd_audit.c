/*
 * cmd_audit.c - parley audit: check a saved checkpoint (or a pair, or an
 * alarm's evidence) against the daemon's transparency log and print a
 * verdict.
 */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    S_OPT_LOG_STATE = CLI_OPT_FIRST_FREE,
    S_OPT_EVIDENCE,
    S_OPT_OFFLINE,
    S_OPT_UPDATE,
};

static void
s_help(void)
{
    printf("usage: parley audit --keyring FILE --log-state FILE [--update]\n"
           "       parley audit --keyring FILE OLD NEW\n"
           "       parley audit --keyring FILE --evidence FILE [--offline]\n"
           "\n"
           "Check the daemon's transparency log (docs/transparency.md). The\n"
           "keyring's log: line names the log and its key.\n"
           "\n"
           "  --log-state FILE    a checkpoint saved before (a subscriber's\n"
           "                      --log-state file, or a checkpoint as parleyd\n"
           "                      sends it): the daemon's latest checkpoint must\n"
           "                      extend it. --update then saves the latest one\n"
           "                      there, for the next audit.\n"
           "  OLD NEW             two saved checkpoints of the log: they must\n"
           "                      not contradict each other (the daemon is asked\n"
           "                      for the consistency proof between them).\n"
           "  --evidence FILE     the evidence of an alarm (parley sub --evidence,\n"
           "                      or what it printed): is it proof of a dishonest\n"
           "                      log? Checked again with the daemon unless\n"
           "                      --offline (then only what needs no daemon).\n"
           "\n"
           "Prints one line: \"consistent: ...\" or \"INCONSISTENT: ...\"; an\n"
           "inconsistency found by --log-state or OLD NEW is followed by its\n"
           "evidence, to publish.\n"
           "\n"
           "Options:\n"
           "      --keyring FILE  the keyring with the log: line (required)\n"
           "%s"
           "\n"
           "Exit status: 0 consistent, 6 inconsistent, 1 usage error, 2 a\n"
           "checkpoint did not verify or the evidence needs the daemon, 3 no\n"
           "answer, 4 keyring file problem, 5 other.\n",
           cli_common_help);
}

/* Load a checkpoint file, saying why it failed. An exit code. */
static int
s_load(const parley_keyring_t *ring, const char *path, parley_checkpoint_t **out)
{
    char detail[256] = "";
    int rc = parley_checkpoint_load(ring, path, out, detail, sizeof(detail));
    if (rc == 0)
        return CLI_EXIT_OK;
    cli_error("%s: %s", path, detail[0] != '\0' ? detail : parley_strerror(rc));
    return rc < 0 && rc > -1000 ? CLI_EXIT_USAGE : CLI_EXIT_REJECTED;
}

/* Write the note of cp to path, atomically. 0 or -errno. */
static int
s_save(const parley_checkpoint_t *cp, const char *path)
{
    size_t len;
    const char *note = parley_checkpoint_note(cp, &len);
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "we");
    if (f == NULL)
        return -errno;
    int rc = fwrite(note, 1, len, f) == len && fflush(f) == 0
                     && fsync(fileno(f)) == 0
                 ? 0
                 : -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* Audit a pair and print the verdict. An exit code. */
static int
s_pair(cli_common_t *c, const parley_call_options_t *copt,
       const parley_checkpoint_t *a, const parley_checkpoint_t *b)
{
    char *evidence = NULL;
    int rc = parley_log_audit(copt, a, b, &evidence);
    if (rc == PARLEY_EINCONSISTENT) {
        printf("INCONSISTENT: log %s: its checkpoints of %" PRIu64 " and %" PRIu64
               " leaves cannot both be honest; evidence follows\n%s",
               parley_checkpoint_origin(a), parley_checkpoint_size(a),
               parley_checkpoint_size(b), evidence != NULL ? evidence : "");
        free(evidence);
        return CLI_EXIT_INCONSISTENT;
    }
    if (rc == PARLEY_EARG) {
        cli_error("the two checkpoints are of two logs (%s, %s)",
                  parley_checkpoint_origin(a), parley_checkpoint_origin(b));
        return CLI_EXIT_USAGE;
    }
    if (rc < 0)
        return cli_fail(c, NULL, rc);
    printf("consistent: log %s, %" PRIu64 " leaves then %" PRIu64 " leaves\n",
           parley_checkpoint_origin(a), parley_checkpoint_size(a),
           parley_checkpoint_size(b));
    return CLI_EXIT_OK;
}

/* --evidence FILE. An exit code. */
static int
s_evidence(cli_common_t *c, const parley_keyring_t *ring,
           const parley_call_options_t *copt, const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        cli_error("%s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    char *text = malloc(1 << 20);
    size_t len = text != NULL ? fread(text, 1, 1 << 20, f) : 0;
    fclose(f);
    if (text == NULL)
        return CLI_EXIT_OTHER;
    /* A file may hold several (sub --evidence appends): check the first. */
    char verdict[1024] = "";
    int rc = parley_evidence_check(ring, text, len, copt, verdict, sizeof(verdict));
    free(text);
    if (rc == PARLEY_EINCONSISTENT) {
        printf("%s\n", verdict);
        return CLI_EXIT_INCONSISTENT;
    }
    if (rc == 0) {
        printf("consistent: %s\n", verdict);
        return CLI_EXIT_OK;
    }
    if (verdict[0] != '\0')
        cli_error("%s", verdict);
    if (rc == PARLEY_EUNAVAILABLE || rc == PARLEY_EMALFORMED || rc <= -1001)
        return rc == PARLEY_ETIMEOUT ? CLI_EXIT_NOANSWER : CLI_EXIT_REJECTED;
    return cli_fail(c, NULL, rc);
}

int
cmd_audit(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { "log-state", required_argument, NULL, S_OPT_LOG_STATE },
        { "evidence", required_argument, NULL, S_OPT_EVIDENCE },
        { "offline", no_argument, NULL, S_OPT_OFFLINE },
        { "update", no_argument, NULL, S_OPT_UPDATE },
        { NULL, 0, NULL, 0 },
    };
    const char *keyring_path = NULL, *state = NULL, *evidence = NULL;
    int offline = 0, update = 0, opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT, longopts, NULL))
           != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        switch (opt) {
        case 'h':
            s_help();
            return CLI_EXIT_OK;
        case CLI_OPT_KEYRING:
            keyring_path = optarg;
            break;
        case S_OPT_LOG_STATE:
            state = optarg;
            break;
        case S_OPT_EVIDENCE:
            evidence = optarg;
            break;
        case S_OPT_OFFLINE:
            offline = 1;
            break;
        case S_OPT_UPDATE:
            update = 1;
            break;
        default:
            return cli_option_error("audit", opt, argv);
        }
    }
    int files = argc - optind;
    if (keyring_path == NULL)
        return cli_usage_error("audit", "--keyring FILE is required (its log: "
                                        "line names the log)");
    if ((state != NULL) + (evidence != NULL) + (files > 0) != 1
        || (files != 0 && files != 2))
        return cli_usage_error("audit", "give one of --log-state FILE, OLD NEW, "
                                        "or --evidence FILE");
    if ((update && state == NULL) || (offline && evidence == NULL))
        return cli_usage_error("audit", "--update goes with --log-state, "
                                        "--offline with --evidence");
    parley_keyring_t *ring = NULL;
    int status = cli_load_keyring(keyring_path, &ring);
    if (status != 0)
        return status;
    parley_call_options_t copt = PARLEY_CALL_OPTIONS_INIT;
    if (cli_call_options(c, &copt) < 0) {
        parley_keyring_destroy(&ring);
        return CLI_EXIT_KEY;
    }
    copt.keyring = ring;
    parley_checkpoint_t *a = NULL, *b = NULL;
    if (evidence != NULL) {
        status = s_evidence(c, ring, offline ? NULL : &copt, evidence);
    } else if (state != NULL) {
        status = s_load(ring, state, &a);
        if (status == CLI_EXIT_OK) {
            int rc = parley_log_checkpoint(&copt, &b);
            status = rc < 0 ? cli_fail(c, NULL, rc) : s_pair(c, &copt, a, b);
        }
        int rc;
        if (status == CLI_EXIT_OK && update && (rc = s_save(b, state)) < 0) {
            cli_error("%s: %s", state, strerror(-rc));
            status = CLI_EXIT_OTHER;
        }
    } else {
        status = s_load(ring, argv[optind], &a);
        if (status == CLI_EXIT_OK)
            status = s_load(ring, argv[optind + 1], &b);
        if (status == CLI_EXIT_OK)
            status = s_pair(c, &copt, a, b);
    }
    parley_checkpoint_destroy(&a);
    parley_checkpoint_destroy(&b);
    parley_keyring_destroy(&ring);
    if (fflush(stdout) != 0 && status == CLI_EXIT_OK)
        status = CLI_EXIT_OTHER;
    return status;
}
