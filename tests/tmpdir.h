/*
 * tmpdir.h - names for scratch files and directories of the tests, under
 * $TMPDIR (or /tmp when it is unset or empty); shared by the unit tests,
 * the fuzz targets and the integration harness.
 */
#ifndef PARLEY_TEST_TMPDIR_H
#define PARLEY_TEST_TMPDIR_H

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Write "$TMPDIR/<name>XXXXXX" to out, ready for mkdtemp() or mkstemp().
 *
 * Returns:   0, or -ENAMETOOLONG if it does not fit in cap bytes.
 */
static inline int
test_tmp_template(char *out, size_t cap, const char *name)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(out, cap, "%s/%sXXXXXX", base, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/*
 * Make a fresh private directory "$TMPDIR/<name>XXXXXX"; its path goes to
 * out.
 *
 * Returns:   0, or -errno (-ENAMETOOLONG if the path does not fit).
 */
static inline int
test_tmpdir_make(char *out, size_t cap, const char *name)
{
    int rc = test_tmp_template(out, cap, name);
    if (rc == 0 && mkdtemp(out) == NULL)
        rc = -errno;
    return rc;
}

/*
 * Remove a directory test_tmpdir_make() made, with the files in it (one
 * level: the unit tests make no subdirectories).
 */
static inline void
test_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

#endif
