#!/bin/sh
# check-deb.sh - build the Debian package, install it on this machine,
# check that it works, and remove it again (issue 5, acceptance 6).
#
#   scripts/check-deb.sh [BUILD_DIR]      (default: build-deb)
#
# Configures BUILD_DIR if needed, builds, runs `cpack -G DEB` in it and
# checks the package's contents. As root it then installs the package
# with dpkg -i (apt-get -f install pulls in missing dependencies), checks
# `parleyd --version`, `parley --version`, `man -w` for the three pages,
# the shared library and pkg-config, and `systemd-analyze verify` and
# `security` on the installed unit where systemd-analyze exists; finally
# it removes the package again (dpkg --purge), whatever happened. It refuses to
# run over a parley that is already installed. Not part of `make test`:
# it changes the machine while it runs.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-deb}
JOBS=${JOBS:-2}
failures=0

say() { printf '%s\n' "$*"; }
ok() { say "ok: $*"; }
bad() { say "FAILED: $*"; failures=$((failures + 1)); }

# ---- build the package ------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$BUILD" -j"$JOBS" --target parley parleyd parley_cli >/dev/null
rm -f "$BUILD"/parley_*.deb
(cd "$BUILD" && cpack -G DEB >cpack.log 2>&1) || { cat "$BUILD/cpack.log"; exit 1; }
DEB=$(ls "$BUILD"/parley_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || { cat "$BUILD/cpack.log"; say "FAILED: cpack made no .deb"; exit 1; }
say "package: $DEB"
dpkg-deb --field "$DEB" Package Version Architecture Depends | sed 's/^/  /'

# ---- its contents -------------------------------------------------------------
dpkg-deb --contents "$DEB" | awk '{print $6}' >"$BUILD/deb-contents.txt"
for f in ./usr/sbin/parleyd ./usr/bin/parley ./usr/include/parley.h \
         ./usr/lib/systemd/system/parleyd.service \
         ./usr/lib/systemd/system/parley-sub@.service \
         ./usr/share/man/man1/parley.1 ./usr/share/man/man5/parleyd.conf.5 \
         ./usr/share/man/man8/parleyd.8 \
         ./usr/share/doc/parley/examples/parleyd.conf \
         ./usr/share/doc/parley/examples/alerts/append-log; do
    if grep -qx "$f" "$BUILD/deb-contents.txt"; then ok "package holds $f"; else bad "package lacks $f"; fi
done
grep -Eq '^\./usr/lib/([^/]+/)?libparley\.so\.1$' "$BUILD/deb-contents.txt" \
    && ok "package holds libparley.so.1" || bad "package lacks libparley.so.1"
grep -Eq '^\./usr/lib/([^/]+/)?pkgconfig/parley\.pc$' "$BUILD/deb-contents.txt" \
    && ok "package holds parley.pc" || bad "package lacks parley.pc"

if [ "$(id -u)" -ne 0 ]; then
    say "not root: the package was built and checked, not installed"
    [ $failures -eq 0 ] || exit 1
    exit 0
fi

# ---- install it ------------------------------------------------------------------
if dpkg-query -W -f='${Status}' parley 2>/dev/null | grep -q 'ok installed'; then
    say "parley is already installed here; remove it first (dpkg --purge parley)"
    exit 1
fi
for f in /usr/sbin/parleyd /usr/bin/parley; do
    if [ -e "$f" ]; then say "$f exists and is not from the package; not installing over it"; exit 1; fi
done

installed=0
cleanup() {
    if [ $installed -eq 1 ]; then
        # --purge: dpkg -r would keep the package's record ("rc").
        if dpkg --purge parley >"$BUILD/dpkg-r.log" 2>&1; then
            say "removed: dpkg --purge parley"
        else
            cat "$BUILD/dpkg-r.log"
            say "FAILED: dpkg --purge parley"
        fi
        for f in /usr/sbin/parleyd /usr/bin/parley /usr/lib/systemd/system/parleyd.service; do
            [ ! -e "$f" ] || say "FAILED: $f is still there after removal"
        done
    fi
}
trap cleanup EXIT INT TERM

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -i "$DEB" >"$BUILD/dpkg-i.log" 2>&1; then
    installed=1
    say "dpkg -i left dependencies missing; apt-get -f install:"
    apt-get -f install -y -q >"$BUILD/apt-f.log" 2>&1 || { cat "$BUILD/dpkg-i.log" "$BUILD/apt-f.log"; exit 1; }
    grep '^Setting up' "$BUILD/apt-f.log" | sed 's/^/  /' || true
fi
installed=1
dpkg-query -W -f='${Status}' parley | grep -q 'ok installed' \
    || { cat "$BUILD/dpkg-i.log"; say "FAILED: dpkg -i"; exit 1; }
ok "dpkg -i $(basename "$DEB")"

# ---- it works ----------------------------------------------------------------------
version=$(dpkg-deb --field "$DEB" Version)
out=$(/usr/sbin/parleyd --version 2>&1) || true
[ "$out" = "parleyd $version" ] && ok "parleyd --version: $out" || bad "parleyd --version: '$out'"
out=$(parley --version 2>&1) || true
[ "$out" = "parley $version" ] && ok "parley --version: $out" || bad "parley --version: '$out'"
for page in parleyd parley parleyd.conf; do
    if where=$(man -w "$page" 2>&1); then ok "man -w $page: $where"; else bad "man -w $page: $where"; fi
done
first=$(MANPAGER=cat MANWIDTH=80 man parleyd 2>/dev/null | sed -n '/^NAME/{n;p;q}' | sed 's/^ *//')
[ -n "$first" ] && ok "man parleyd: $first" || bad "man parleyd shows nothing"
ldconfig -p | grep -q 'libparley\.so\.1 ' && ok "ldconfig knows libparley.so.1" \
    || bad "libparley.so.1 is not in the ldconfig cache"
out=$(pkg-config --modversion parley 2>&1) || true
[ "$out" = "$version" ] && ok "pkg-config --modversion parley: $out" || bad "pkg-config: '$out'"
grep -qx 'ExecStart=/usr/sbin/parleyd -c /etc/parley/parleyd.conf' \
    /usr/lib/systemd/system/parleyd.service \
    && ok "parleyd.service starts /usr/sbin/parleyd -c /etc/parley/parleyd.conf" \
    || bad "parleyd.service: $(grep ExecStart= /usr/lib/systemd/system/parleyd.service)"
if command -v systemd-analyze >/dev/null 2>&1; then
    if out=$(systemd-analyze verify /usr/lib/systemd/system/parleyd.service \
             /usr/lib/systemd/system/parley-sub@check.service 2>&1) \
       && ! printf '%s\n' "$out" | grep -Eq 'parleyd\.service|parley-sub@'; then
        ok "systemd-analyze verify: both units"
    else
        printf '%s\n' "$out"
        bad "systemd-analyze verify"
    fi
    level=$(systemd-analyze security --offline=yes /usr/lib/systemd/system/parleyd.service 2>&1 \
            | sed -n 's/.*Overall exposure level for parleyd\.service: //p')
    say "systemd-analyze security: ${level:-unavailable}"
else
    say "systemd-analyze is not installed: units not verified"
fi

if [ $failures -eq 0 ]; then
    say "PASS: the package installs and works"
    exit 0
fi
say "FAILED: $failures check(s)"
exit 1
