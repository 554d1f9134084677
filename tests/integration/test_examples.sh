# test_examples.sh - the programs in examples/ build against the public
# header alone (tests/CMakeLists.txt) and do what they say against a real
# parleyd.
#
# event-loop: one poll() loop publishes COUNT updates pipelined and
# receives each back on a subscription, through the descriptors and
# timeouts of parley_sub_fds()/parley_pub_fds().
. "$(dirname "$0")/harness.sh"

: "${PARLEY_BUILD_DIR:?PARLEY_BUILD_DIR must name the build directory}"
EX=$PARLEY_BUILD_DIR/examples
[ -x "$EX/event-loop" ] || fail "$EX/event-loop was not built"

make_key looper
start_parleyd "$T/d" --keyring "$T/keyring"

COUNT=40
timeout 60 "$EX/event-loop" "$API" "$T/looper" $COUNT >"$T/loop.out" 2>"$T/loop.err"
rc=$?
PH_LOGS="$PH_LOGS $T/loop.out $T/loop.err"
[ $rc -eq 0 ] || fail "event-loop exited $rc"
n=$(grep -c '^#[0-9]* event loop update [0-9]*$' "$T/loop.out")
[ "$n" -eq $COUNT ] || fail "event-loop printed $n updates, expected $COUNT"
# Each update once, in the order they were published.
seq 1 $COUNT | sed 's/^/event loop update /' >"$T/want"
sed 's/^#[0-9]* //' "$T/loop.out" >"$T/got"
cmp -s "$T/want" "$T/got" || fail "updates out of order or repeated"
pass "event-loop: $COUNT updates published and received in one poll() loop"
stop_parleyd
