#!/usr/bin/env bash
# test_make_run.sh - issue 18, item 3: `make run` makes its state
# directory 0700, as parleyd itself does, so that nobody else can read
# the log or the demo key in it.
#
# The test takes the commands of the run recipe from `make -n` (nothing
# is built or started), runs the mkdir among those that name the state
# directory, and looks at the directory it made.
. "$(dirname "$0")/harness.sh"
: "${PARLEY_BUILD_DIR:?PARLEY_BUILD_DIR must name the build directory}"

data="$T/parley-data"
cmds=$(make -s -n --no-print-directory -C "$PARLEY_SOURCE_DIR" run \
       STATE_DIR="$data" BUILD="$PARLEY_BUILD_DIR") ||
    fail "make -n run failed"
echo "$cmds" | grep -F "$data" | grep -E '^ *mkdir ' >"$T/steps.sh"
[ -s "$T/steps.sh" ] || fail "make run has no command that makes $data"
(umask 022 && sh "$T/steps.sh") || fail "the commands of make run failed: $(cat "$T/steps.sh")"
[ -d "$data" ] || fail "make run did not make $data"
mode=$(stat -c %a "$data")
[ "$mode" = 700 ] || fail "make run made $data with mode $mode, not 700 ($(cat "$T/steps.sh"))"
pass "make run makes its state directory 0700"
