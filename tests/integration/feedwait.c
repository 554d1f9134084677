/*
 * feedwait.c - ph_wait_feed_live() for the shell tests (harness.sh
 * wait_feed_live): wait until the daemon has granted TOPICS feed topics
 * and a heartbeat has gone out after them.
 *
 *   feedwait API FEED TOPICS SECONDS     exit 0 when live, 1 on timeout
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: feedwait API FEED TOPICS SECONDS\n");
        return 2;
    }
    uint64_t topics = strtoull(argv[3], NULL, 10);
    int ms = (int)(strtod(argv[4], NULL) * 1000);
    return ph_wait_feed_live(argv[1], argv[2], topics, ms) == 0 ? 0 : 1;
}
