/*
 * trust.c - refuse a state directory, keyring or allow-list that someone
 * other than parleyd's user (or root) could change.
 */
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "group", "others" or "group and others" for the write bits of mode. */
static const char *
s_writers(mode_t mode)
{
    if ((mode & S_IWGRP) && (mode & S_IWOTH))
        return "group and others";
    return (mode & S_IWGRP) ? "group" : "others";
}

/*
 * Check one file or directory st (named name, for the setting what). holder
 * is true for the directory that holds the setting's path; it may be
 * writable by others if it has the sticky bit.
 */
static int
s_check(const struct stat *st, const char *name, const char *what,
        bool holder, const char *setting_path, char *errbuf, size_t errlen)
{
    const uid_t me = geteuid();
    const bool dir = S_ISDIR(st->st_mode);
    if (st->st_uid != me && st->st_uid != 0) {
        if (holder)
            snprintf(errbuf, errlen,
                     "%s %s: its directory %s is owned by uid %u, not by "
                     "parleyd's user (uid %u) or root, who alone may be able "
                     "to change it; fix: chown %u %s (or move %s elsewhere)",
                     what, setting_path, name, (unsigned)st->st_uid,
                     (unsigned)me, (unsigned)me, name, setting_path);
        else
            snprintf(errbuf, errlen,
                     "%s %s is owned by uid %u, not by parleyd's user "
                     "(uid %u) or root, who alone may be able to change it; "
                     "fix: chown %u %s",
                     what, name, (unsigned)st->st_uid, (unsigned)me,
                     (unsigned)me, name);
        return -EPERM;
    }
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) == 0)
        return 0;
    if (holder && (st->st_mode & S_ISVTX))
        return 0; /* others cannot rename or remove what is not theirs */
    const char *fix = dir && !holder && strcmp(what, "state_dir") == 0
                          ? "chmod 700"
                          : "chmod go-w";
    if (holder)
        snprintf(errbuf, errlen,
                 "%s %s: its directory %s is writable by %s (mode %04o), "
                 "who could replace it; fix: %s %s (or move %s elsewhere)",
                 what, setting_path, name, s_writers(st->st_mode),
                 (unsigned)(st->st_mode & 07777), fix, name, setting_path);
    else
        snprintf(errbuf, errlen,
                 "%s %s is writable by %s (mode %04o), who could change what "
                 "parleyd trusts; fix: %s %s",
                 what, name, s_writers(st->st_mode),
                 (unsigned)(st->st_mode & 07777), fix, name);
    return -EPERM;
}

int
pd_trust_check(const char *path, const char *what, char *errbuf,
               size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int rc = -errno;
        snprintf(errbuf, errlen, "%s %s: %s", what, path, strerror(errno));
        return rc;
    }
    int rc = s_check(&st, path, what, false, path, errbuf, errlen);
    if (rc < 0)
        return rc;
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy)) {
        snprintf(errbuf, errlen, "%s %s: path too long", what, path);
        return -ENAMETOOLONG;
    }
    const char *holder = dirname(copy);
    if (stat(holder, &st) != 0) {
        rc = -errno;
        snprintf(errbuf, errlen, "%s %s: %s: %s", what, path, holder,
                 strerror(errno));
        return rc;
    }
    return s_check(&st, holder, what, true, path, errbuf, errlen);
}

parley_keyring_t *
pd_trust_keyring_load(const char *path, char *errbuf, size_t errlen)
{
    int rc = pd_trust_check(path, "keyring", errbuf, errlen);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    return parley_keyring_load(path, errbuf, errlen);
}

int
pd_trust_write_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    if (unlink(tmp) != 0 && errno != ENOENT)
        return -errno;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    int rc = 0;
    errno = 0;
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
        rc = errno != 0 ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}
