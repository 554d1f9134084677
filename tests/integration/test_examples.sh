# test_examples.sh - the programs in examples/ build against the public
# header alone (tests/CMakeLists.txt) and do what they say against a real
# parleyd.
#
# event-loop: one poll() loop publishes COUNT updates pipelined and
# receives each back on a subscription, through the descriptors and
# timeouts of parley_sub_fds()/parley_pub_fds().
# where-things-stand: the current state of a negotiation after the demo
# feed, from one snapshot, equal to what `parley state` prints.
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

# The demo feed, then the state of gaza-ceasefire.
"$PARLEY" -s "$API" pub -k "$T/looper" --json \
    <"$PARLEY_SOURCE_DIR/examples/ceasefire.jsonl" >"$T/demo.seqs" 2>"$T/demo.err" \
    || fail "publishing the demo feed: $(cat "$T/demo.err")"
head=$(tail -1 "$T/demo.seqs")
timeout 30 "$EX/where-things-stand" "$API" gaza-ceasefire >"$T/stand.out" 2>"$T/stand.err"
rc=$?
PH_LOGS="$PH_LOGS $T/stand.out $T/stand.err"
[ $rc -eq 0 ] || fail "where-things-stand exited $rc"
head -1 "$T/stand.out" | grep -qx "gaza-ceasefire, as of seq $head:" \
    || fail "where-things-stand: no 'as of seq $head' line"
# the seq of each entry, in the order of the table (phase, party)
"$PARLEY" -s "$API" state --negotiation gaza-ceasefire --json >"$T/state.json" \
    || fail "parley state failed"
python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
for n in doc["negotiations"]:
    for ph in n["phases"]:
        for p in ph["parties"]:
            print(p["seq"])' "$T/state.json" >"$T/state.seqs" || fail "parley state --json is not a document"
n=$(grep -c . "$T/state.seqs")
[ "$n" -gt 0 ] || fail "parley state printed nothing"
sed -n 's/.*(#\([0-9]*\))$/\1/p' "$T/stand.out" >"$T/stand.seqs"
cmp -s "$T/state.seqs" "$T/stand.seqs" \
    || fail "where-things-stand and parley state disagree"
# The phase 2 entries are the update of line 11 of 12 (the demo feed's
# last word on them), one line per party.
l11=$((head - 1))
grep -A2 '^phase 2:$' "$T/stand.out" | grep -q "^  israel: awaiting_response: .*(#$l11)\$" \
    && grep -A2 '^phase 2:$' "$T/stand.out" | grep -q "^  hamas: awaiting_response: .*(#$l11)\$" \
    || fail "where-things-stand: no current phase 2 entries"
pass "where-things-stand: $n entries of the state as of seq $head, as parley state says"
stop_parleyd
