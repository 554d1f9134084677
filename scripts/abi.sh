#!/bin/sh
# abi.sh - the ABI of libparley against its committed baseline.
#
#   sh scripts/abi.sh check BUILD_DIR    (run by `make test`)
#   sh scripts/abi.sh update BUILD_DIR   (after a deliberate change)
#
# The baseline is abi/libparley.symbols (the exported symbols, one per
# line) and abi/libparley.abi (abidw's description of every exported
# function and the public types they use, from the DWARF of the build and
# include/parley.h; library-internal types are dropped). `check` fails
# when the exported set, a signature or a public type differs from it,
# and says what to do:
#
#   - an incompatible change (a symbol removed, a signature or a public
#     struct changed) needs a new SONAME (the major version in
#     CMakeLists.txt), then `update`;
#   - a compatible addition (a new function) needs a new minor version,
#     then `update`;
#   - a new SONAME without `update` fails too, so that the baseline always
#     describes the library being built.
#
# Needs abidw and abidiff (Debian package abigail-tools).
set -u
mode=${1:-}
build=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
base=$here/abi
lib=$build/libparley.so

[ "$mode" = check ] || [ "$mode" = update ] || {
    echo "usage: $0 check|update BUILD_DIR" >&2
    exit 2
}
[ -e "$lib" ] || { echo "abi: $lib is missing (build first)" >&2; exit 2; }
for t in abidw abidiff; do
    command -v $t >/dev/null 2>&1 || {
        echo "abi: $t is missing (Debian package abigail-tools; make deps)" >&2
        exit 2
    }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-abi-XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# The exported symbols (functions and data), sorted.
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort \
    >"$tmp/libparley.symbols"
# abidw's view, with this machine's paths cut down to the source tree's.
abidw --headers-dir "$here/include" --drop-private-types --no-corpus-path \
      --no-show-locs --no-comp-dir-path --no-elf-needed \
      --type-id-style hash --out-file "$tmp/raw.abi" "$lib" || {
    echo "abi: abidw failed on $lib" >&2
    exit 1
}
sed -e "s|path='[^']*/client/|path='client/|" \
    -e "s|path='[^']*/gen/|path='gen/|" "$tmp/raw.abi" >"$tmp/libparley.abi"
soname=$(sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$tmp/libparley.abi")

if [ "$mode" = update ]; then
    cp "$tmp/libparley.symbols" "$tmp/libparley.abi" "$base/"
    echo "abi: baseline updated for $soname ($(wc -l <"$base/libparley.symbols") symbols)"
    exit 0
fi

[ -f "$base/libparley.abi" ] && [ -f "$base/libparley.symbols" ] || {
    echo "abi: no baseline in abi/ (sh scripts/abi.sh update BUILD_DIR)" >&2
    exit 1
}
base_soname=$(sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$base/libparley.abi")
status=0
if [ "$soname" != "$base_soname" ]; then
    echo "abi: SONAME is $soname, the baseline is for $base_soname:" \
         "after a deliberate incompatible change, run" \
         "sh scripts/abi.sh update BUILD_DIR and commit abi/" >&2
    exit 1
fi
if ! diff -u "$base/libparley.symbols" "$tmp/libparley.symbols" >"$tmp/sym.diff"; then
    echo "abi: the exported symbols of $soname changed:" >&2
    grep '^[-+][a-z_]' "$tmp/sym.diff" >&2
    if grep -q '^-[a-z_]' "$tmp/sym.diff"; then
        echo "abi: a symbol was removed: that needs a new SONAME" \
             "(the major version in CMakeLists.txt)" >&2
    else
        echo "abi: symbols were added: bump the minor version and run" \
             "sh scripts/abi.sh update BUILD_DIR" >&2
    fi
    status=1
fi
abidiff --headers-dir2 "$here/include" --drop-private-types \
        "$base/libparley.abi" "$lib" >"$tmp/abidiff.out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    cat "$tmp/abidiff.out" >&2
    if [ $((rc & 8)) -ne 0 ]; then
        echo "abi: incompatible change without a new SONAME ($soname)" >&2
    elif [ $((rc & 4)) -ne 0 ]; then
        echo "abi: the ABI of $soname changed; if the change is compatible," \
             "bump the minor version and run sh scripts/abi.sh update" \
             "BUILD_DIR" >&2
    else
        echo "abi: abidiff failed (exit $rc)" >&2
    fi
    status=1
fi
[ $status -eq 0 ] && echo "abi: $soname matches abi/ ($(wc -l <"$base/libparley.symbols") symbols)"
exit $status
