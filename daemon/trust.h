/*
 * trust.h - which files parleyd may trust.
 *
 * Whoever can write the state directory, the keyring or the CURVE
 * allow-list decides what parleyd stores and whom it trusts. parleyd
 * therefore refuses such a file or directory when anyone but its own
 * user (or root) could change it: when it is writable by group or
 * others, when it is owned by another user, or when the directory that
 * holds it is (a directory with the sticky bit, like /tmp, is fine: there
 * others cannot replace what is not theirs).
 */
#ifndef PD_TRUST_H
#define PD_TRUST_H

#include "parley.h"

#include <stddef.h>

/*
 * Check path, and the directory that holds it, as above. what names the
 * setting in the message ("state_dir", "keyring", "curve_clients").
 *
 * Returns:   0; -EPERM with a message in errbuf saying what is wrong and
 *            the command that fixes it (chmod 700 DIR, chmod go-w FILE,
 *            chown); or -errno when path cannot be looked at (errbuf
 *            names it).
 */
int pd_trust_check(const char *path, const char *what, char *errbuf,
                   size_t errlen);

/*
 * pd_trust_check(path, "keyring") and then parley_keyring_load(): the
 * keyring as parleyd loads it, at start and on SIGHUP.
 *
 * Returns:   the keyring, or NULL with errno set and a message in errbuf.
 * Ownership: the caller's; free with parley_keyring_destroy().
 */
parley_keyring_t *pd_trust_keyring_load(const char *path, char *errbuf,
                                        size_t errlen);

/*
 * Replace path with text, atomically and durably, readable by our user
 * only: path.tmp (made exclusively, not following a link), fsync, rename.
 * For the files parleyd writes itself (the demo keyring, the pid file,
 * the reload status).
 *
 * Returns:   0 or -errno.
 */
int pd_trust_write_atomic(const char *path, const char *text);

#endif /* PD_TRUST_H */
