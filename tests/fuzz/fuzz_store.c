/*
 * fuzz_store.c - the store's record scan, over an arbitrary segment file.
 *
 * The input becomes the only segment of a fresh state directory; opening
 * it must either recover (possibly cutting a torn tail) or refuse with a
 * message, and every record handed to the scan callback must read back.
 */
#include "../tmpdir.h"
#include "fuzz.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int
s_scan(void *ctx, uint64_t seq, int64_t received_at, const uint8_t *payload,
       size_t len)
{
    (void)seq;
    (void)received_at;
    (void)payload;
    (*(size_t *)ctx) += len;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256];
    char path[320];
    char err[512];
    if (test_tmpdir_make(dir, sizeof(dir), "parley-fuzz-store.") != 0)
        return 0;
    snprintf(path, sizeof(path), "%s/seg-%020llu.log", dir, 1ULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, data, size);
        close(fd);
        if (w == (ssize_t)size) {
            pd_store_opts_t opts = { .sync = false };
            size_t bytes = 0;
            int rc = 0;
            pd_store_t *st = pd_store_open(dir, &opts, s_scan, &bytes, err,
                                           sizeof(err), &rc);
            if (st != NULL) {
                uint64_t first = pd_store_first_seq(st);
                uint64_t last = pd_store_last_seq(st);
                uint8_t buf[4096];
                for (uint64_t s = first; s != 0 && s <= last && s < first + 64;
                     s++) {
                    int64_t at;
                    size_t len;
                    int r = pd_store_read(st, s, &at, buf, sizeof(buf), &len);
                    if (r != 0 && r != -ENOBUFS)
                        abort(); /* scanned records must read back */
                }
                pd_store_close(&st);
            }
        }
    }
    test_tmpdir_remove(dir);
    return 0;
}
