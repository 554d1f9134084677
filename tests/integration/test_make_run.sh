#!/usr/bin/env bash
# test_make_run.sh - issue 18, item 3: `make run` makes its state
# directory 0700, as parleyd itself does, so that nobody else can read
# the log or the demo key in it. Issue 16: it makes the log key there
# (0600), once; a second run keeps it.
#
# The test takes the commands of the run recipe from `make -n` (nothing
# is built or started), runs the mkdir and the log key's command among
# those that name the state directory, and looks at what they made.
. "$(dirname "$0")/harness.sh"
: "${PARLEY_BUILD_DIR:?PARLEY_BUILD_DIR must name the build directory}"

data="$T/parley-data"
cmds=$(make -s -n --no-print-directory -C "$PARLEY_SOURCE_DIR" run \
       STATE_DIR="$data" BUILD="$PARLEY_BUILD_DIR") ||
    fail "make -n run failed"
echo "$cmds" | grep -F "$data" | grep -E '^ *(mkdir|test -f) ' >"$T/steps.sh"
[ -s "$T/steps.sh" ] || fail "make run has no command that makes $data"
(umask 022 && sh "$T/steps.sh") || fail "the commands of make run failed: $(cat "$T/steps.sh")"
[ -d "$data" ] || fail "make run did not make $data"
mode=$(stat -c %a "$data")
[ "$mode" = 700 ] || fail "make run made $data with mode $mode, not 700 ($(cat "$T/steps.sh"))"
[ -f "$data/log.key" ] || fail "make run made no log key in $data"
kmode=$(stat -c %a "$data/log.key")
[ "$kmode" = 600 ] || fail "make run made the log key with mode $kmode, not 600"
pub=$(cat "$data/log.key.pub")
(umask 022 && sh "$T/steps.sh") || fail "a second run of make run's commands failed"
[ "$(cat "$data/log.key.pub")" = "$pub" ] || fail "a second make run replaced the log key"
pass "make run makes its state directory 0700 and a log key (0600) in it, once"
