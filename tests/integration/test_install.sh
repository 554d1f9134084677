# test_install.sh - `cmake --install` gives a usable parley (issue 5,
# acceptance 3).
#
# Installs this build into a temporary prefix, checks that every file is
# where it belongs (programs, library with its SONAME, header, parley.pc,
# units naming the installed programs, man pages, examples), then builds
# examples/pkgconfig/hello.c outside the tree with only
# `pkg-config --cflags --libs parley`, and runs it against the installed
# parleyd: it must publish an update and receive it back.
. "$(dirname "$0")/harness.sh"

: "${PARLEY_BUILD_DIR:?PARLEY_BUILD_DIR must name the build directory}"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config is not installed"
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || skip "no C compiler ($CC)"

P=$T/prefix
cmake --install "$PARLEY_BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 \
    || { PH_LOGS="$PH_LOGS $T/install.log"; fail "cmake --install failed"; }

# --- what was installed ---------------------------------------------------
for f in sbin/parleyd bin/parley sbin/parley-gateway; do
    [ -x "$P/$f" ] || fail "$P/$f is missing or not executable"
done
pc=$(find "$P" -name parley.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "no parley.pc under $P"
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libparley.so" "$P/include/parley.h" \
         "$P/lib/systemd/system/parleyd.service" \
         "$P/lib/systemd/system/parley-sub@.service" \
         "$P/lib/systemd/system/parley-gateway.service" \
         "$P/share/man/man1/parley.1" "$P/share/man/man5/parleyd.conf.5" \
         "$P/share/man/man8/parleyd.8" "$P/share/man/man8/parley-gateway.8" \
         "$P/share/doc/parley/examples/parleyd.conf" \
         "$P/share/doc/parley/examples/parley-gateway.conf"; do
    [ -f "$f" ] || fail "$f was not installed"
done
for f in append-log http-post mqtt-forward notify-desktop send-mail; do
    [ -x "$P/share/doc/parley/examples/alerts/$f" ] \
        || fail "alert recipe $f is not installed as an executable"
done
if command -v readelf >/dev/null 2>&1; then
    soname=$(readelf -d "$libdir/libparley.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [ "$soname" = libparley.so.1 ] || fail "libparley.so has SONAME '$soname', expected libparley.so.1"
    [ -e "$libdir/$soname" ] || fail "$libdir/$soname (the SONAME link) is missing"
fi
# Files that name installed paths name this prefix, not the configured one.
grep -qx "ExecStart=$P/sbin/parleyd -c $P/etc/parley/parleyd.conf" \
    "$P/lib/systemd/system/parleyd.service" \
    || fail "parleyd.service does not start $P/sbin/parleyd: $(grep ExecStart "$P/lib/systemd/system/parleyd.service")"
grep -q "^ExecStart=$P/bin/parley sub " "$P/lib/systemd/system/parley-sub@.service" \
    || fail "parley-sub@.service does not run $P/bin/parley"
grep -qx "ExecStart=$P/sbin/parley-gateway -c $P/etc/parley/gateway.conf" \
    "$P/lib/systemd/system/parley-gateway.service" \
    || fail "parley-gateway.service does not start $P/sbin/parley-gateway"
if command -v man >/dev/null 2>&1; then
    for page in parley parleyd parleyd.conf parley-gateway; do
        MANPATH=$P/share/man man -w "$page" >/dev/null 2>&1 \
            || fail "man -w $page does not find the installed page"
    done
fi

# --- a program built with pkg-config alone ---------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs parley) || fail "pkg-config --cflags --libs parley failed"
case " $flags " in
    *" -I$P/include "*) ;;
    *) fail "pkg-config --cflags does not point at $P/include: $flags" ;;
esac
[ "$(pkg-config --modversion parley)" = "$("$PARLEYD" --version | cut -d' ' -f2)" ] \
    || fail "parley.pc version $(pkg-config --modversion parley) differs from parleyd --version"
# A sanitizer build's library needs the sanitizer runtime in the program.
san=$(sed -n 's/^PARLEY_SANITIZE:[A-Z]*=//p' "$PARLEY_BUILD_DIR/CMakeCache.txt" 2>/dev/null)
mkdir "$T/outside"
cp "$PARLEY_SOURCE_DIR/examples/pkgconfig/hello.c" "$T/outside/"
# shellcheck disable=SC2086 # flags are words by design
(cd "$T/outside" && "$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror \
    ${san:+-fsanitize=$san} -o hello hello.c $flags) >"$T/cc.log" 2>&1 \
    || { PH_LOGS="$PH_LOGS $T/cc.log"; fail "hello.c does not build with pkg-config's flags"; }
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ldd "$T/outside/hello" | grep -q "libparley.so.1 => $libdir/libparley.so.1" \
    || fail "hello does not load the installed libparley: $(ldd "$T/outside/hello" | grep parley)"

# --- against the installed daemon ------------------------------------------
IP=$P/bin/parley
"$IP" keygen -o "$T/hello.key" >"$T/keygen.out" 2>&1 || fail "installed parley keygen failed: $(cat "$T/keygen.out")"
line=$(grep ' negotiations=' "$T/keygen.out") || fail "keygen printed no keyring line"
set -- $line
echo "$1 $2 negotiations=hello-world parties=* phases=*" >"$T/keyring"
PARLEYD=$P/sbin/parleyd start_parleyd "$T/d" --keyring "$T/keyring" --no-fsync

(cd "$T/outside" && timeout 60 ./hello "$API" "$T/hello.key") >"$T/hello.out" 2>"$T/hello.err"
rc=$?
PH_LOGS="$PH_LOGS $T/hello.out $T/hello.err"
[ $rc -eq 0 ] || fail "hello exited $rc"
grep -qx 'published #1' "$T/hello.out" || fail "hello did not publish seq 1"
grep -qx "received #1 hello-world \[libparley\] talks_scheduled: hello from libparley $(pkg-config --modversion parley)" \
    "$T/hello.out" || fail "hello did not receive its update back"

# The installed tool sees the same update.
got=$("$IP" replay -s "$API" --since 1 -F '%s %N %h' --keyring "$T/keyring") \
    || fail "installed parley replay failed"
[ "$got" = "1 hello hello from libparley $(pkg-config --modversion parley)" ] \
    || fail "installed parley replay printed '$got'"

stop_parleyd
pass "installed into $P; hello.c built with pkg-config published and received #1"
