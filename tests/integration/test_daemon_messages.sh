# test_daemon_messages.sh - what parleyd says after a mistake says what
# to do (issue 14, "Errors that say what to do", acceptance 3): the
# daemon's side of the list.
#
#   the startup hint names the endpoint parleyd bound (a port the system
#     chose, a wildcard), and its commands work as printed
#   forbidden names the field refused and what the keyring allows
#   unknown_signer names the key id and the daemon that answered
#   a correction or retraction of a seq the daemon does not hold is
#     rejected invalid, with the reason
#   an oversized snapshot says to use filters
#   a reload with more than one daemon (pid_file) and a failed reload
#     seen outside the log: parleyd --reload's exit status, the stats
#   a client giving up in the handshake is not logged as a warning
. "$(dirname "$0")/harness.sh"

expect_err() {
    local got
    got=$(head -n 1 "$1")
    [ "$got" = "$2" ] || fail "expected: $2
got:      $got"
}

# --- the startup hint, with a port the system chose ----------------------------
mkdir "$T/hint"
"$PARLEYD" --api tcp://127.0.0.1:0 --feed tcp://127.0.0.1:0 --state-dir "$T/hint/state" \
    --no-fsync >"$T/hint/out" 2>"$T/hint/log" </dev/null &
HPID=$!
PH_PIDS="$PH_PIDS $HPID"
PH_LOGS="$PH_LOGS $T/hint/out $T/hint/log"
for _ in $(seq 100); do grep -q publish-demo "$T/hint/out" 2>/dev/null && break; sleep 0.1; done
BOUND=$(sed -n 's/.*api bound at \(tcp:[^ ]*\).*/\1/p' "$T/hint/log")
[ -n "$BOUND" ] && [ "${BOUND##*:}" != 0 ] || fail "no bound api endpoint in the log"
grep -qx "  parley sub -s $BOUND --party hamas" "$T/hint/out" \
    || fail "the hint's sub command does not name $BOUND: $(cat "$T/hint/out")"
grep -qx "  examples/publish-demo.sh $T/hint/state/demo.key $BOUND" "$T/hint/out" \
    || fail "the hint's demo script has no server argument $BOUND"
# the commands work as printed (parley from this build)
pubcmd=$(sed -n 's/^  parley pub /pub /p' "$T/hint/out")
eval "set -- $pubcmd"
"$PARLEY" "$@" >"$T/hint/pub.out" 2>"$T/hint/pub.err" \
    || fail "the hint's parley pub failed: $(cat "$T/hint/pub.err")"
democmd=$(sed -n 's/^  examples\/publish-demo.sh //p' "$T/hint/out")
# shellcheck disable=SC2086
PARLEY=$PARLEY "$PARLEY_SOURCE_DIR/examples/publish-demo.sh" $democmd \
    >"$T/hint/demo.out" 2>"$T/hint/demo.err" \
    || fail "the hint's publish-demo.sh failed: $(cat "$T/hint/demo.err")"
[ "$(wc -l <"$T/hint/demo.out")" = 12 ] || fail "publish-demo.sh printed $(wc -l <"$T/hint/demo.out") seqs"
kill -TERM "$HPID"
wait_exit "$HPID" 15

# --- forbidden, unknown_signer, references ------------------------------------------
make_key desk
make_key stranger
echo "desk $(cut -d' ' -f1 "$T/desk.pub") negotiations=gaza-ceasefire parties=israel,hamas phases=0-3" \
    >"$T/keyring.narrow"
start_parleyd "$T/d" --keyring "$T/keyring.narrow" --no-fsync
export PARLEY_SERVER=$API
# key_id FILE.pub: the key id, as docs/protocol.md section 3 defines it
key_id() {
    python3 - "$1" <<'EOF'
import base64, hashlib, sys
pk = base64.b64decode(open(sys.argv[1]).read().split()[0])
print(hashlib.blake2b(pk, digest_size=32).hexdigest()[:16])
EOF
}
DESK_ID=$(key_id "$T/desk.pub")
"$PARLEY" pub -k "$T/desk" --negotiation gaza-ceasefire --party israel --party us \
    --phase 1 --status proposed --headline h >/dev/null 2>"$T/forbidden.err"
[ $? -eq 2 ] || fail "a forbidden publish: exit status not 2"
expect_err "$T/forbidden.err" "parley: rejected: forbidden: signer may not publish for this negotiation, party or phase, or client may not ask this: signer $DESK_ID: party \"us\" is not allowed; the keyring allows desk negotiations=gaza-ceasefire parties=israel,hamas phases=0-3"
"$PARLEY" pub -k "$T/desk" --negotiation gaza-ceasefire --party israel \
    --phase 7 --status proposed --headline h >/dev/null 2>"$T/forbidden2.err"
expect_err "$T/forbidden2.err" "parley: rejected: forbidden: signer may not publish for this negotiation, party or phase, or client may not ask this: signer $DESK_ID: phase 7 is not allowed; the keyring allows desk negotiations=gaza-ceasefire parties=israel,hamas phases=0-3"
STRANGER_ID=$(key_id "$T/stranger.pub")
"$PARLEY" pub -k "$T/stranger" --negotiation gaza-ceasefire --party israel \
    --status proposed --headline h >/dev/null 2>"$T/unknown.err"
[ $? -eq 2 ] || fail "an unknown signer: exit status not 2"
expect_err "$T/unknown.err" "parley: rejected: unknown_signer: signer is not in the keyring: signer $STRANGER_ID ($API answered; its keyring needs a line for $T/stranger.pub)"

seq=$("$PARLEY" pub -k "$T/desk" --negotiation gaza-ceasefire --party israel \
      --status stalled --headline "stalled") || fail "a plain publish failed"
"$PARLEY" pub -k "$T/desk" --negotiation gaza-ceasefire --party israel \
    --kind correction --ref 999 --status proposed --headline h >/dev/null 2>"$T/ref.err"
[ $? -eq 2 ] || fail "a correction of #999: exit status not 2"
expect_err "$T/ref.err" "parley: rejected: invalid: update breaks a schema rule: references: #999 is not held by this daemon (its last seq is #$seq)"
echo "{\"negotiation\":\"gaza-ceasefire\",\"parties\":[\"israel\"],\"kind\":\"retraction\",\"references\":[$seq,1000],\"status\":\"stalled\",\"headline\":\"r\"}" \
    | "$PARLEY" pub -k "$T/desk" --json >/dev/null 2>"$T/ref2.err"
expect_err "$T/ref2.err" "parley: line 1: rejected: invalid: update breaks a schema rule: references: #1000 is not held by this daemon (its last seq is #$seq)"
[ "$("$PARLEY" stats | sed -n 's/^rejected_invalid //p')" = 2 ] \
    || fail "rejected_invalid does not count the two"
"$PARLEY" pub -k "$T/desk" --negotiation gaza-ceasefire --party israel \
    --kind correction --ref "$seq" --status proposed --headline "corrected" \
    >/dev/null 2>"$T/ref3.err" || fail "a correction of a held seq failed: $(cat "$T/ref3.err")"

# --- reload: two daemons, pid files, a failed reload seen outside the log -----
D1_PID=$DAEMON_PID D1_API=$API D1_STATE=$STATE
# the second one without a rate limit: it takes 4097 publishes at once below
printf 'rate_limit 0\n' >"$T/d2.conf"
start_parleyd "$T/d2" -c "$T/d2.conf" --keyring "$T/keyring" --no-fsync \
    --pid-file "$T/d2/parleyd.pid"
export PARLEY_SERVER=$API
# the first one has the default pid file, in its state directory; the
# second the one given
[ "$(cat "$D1_STATE/parleyd.pid")" = "$D1_PID" ] || fail "the default pid file does not hold the daemon's pid"
[ "$(cat "$T/d2/parleyd.pid")" = "$DAEMON_PID" ] || fail "--pid-file does not hold the daemon's pid"
[ ! -e "$T/d2/state/parleyd.pid" ] || fail "--pid-file given, yet parleyd.pid written in the state directory"
"$PARLEYD" --state-dir "$D1_STATE" --reload >"$T/reload.out" 2>&1
[ $? -eq 0 ] || fail "parleyd --reload exited non-zero: $(cat "$T/reload.out")"
[ "$(cat "$T/reload.out")" = "parleyd: reloaded (reload 1 of pid $D1_PID)" ] \
    || fail "parleyd --reload said: $(cat "$T/reload.out")"
echo "broken line" >>"$T/keyring.narrow"
"$PARLEYD" --state-dir "$D1_STATE" --reload >"$T/reload2.out" 2>&1
[ $? -eq 1 ] || fail "a refused reload: parleyd --reload did not exit 1"
grep -q "^parleyd: reload FAILED, the old keyring and settings stay: .*keyring.narrow: line 2: " \
    "$T/reload2.out" || fail "a refused reload said: $(cat "$T/reload2.out")"
st=$("$PARLEY" stats -s "$D1_API")
for want in "reloads 1" "reload_failures 1" "reload_failed 1"; do
    echo "$st" | grep -qx "$want" || fail "stats after a refused reload lack '$want'"
done
# the other daemon was not touched
[ "$("$PARLEY" stats -s "$API" | sed -n 's/^reloads //p')" = 0 ] \
    || fail "the second daemon was reloaded too"
# the second one, by its pid file: reloads 1 there
"$PARLEYD" --state-dir "$T/d2/state" --pid-file "$T/d2/parleyd.pid" --reload \
    >"$T/reload4.out" 2>&1 || fail "reloading the second daemon: $(cat "$T/reload4.out")"
[ "$("$PARLEY" stats -s "$API" | sed -n 's/^reloads //p')" = 1 ] \
    || fail "the second daemon's reload did not count"
# a state directory no daemon runs with
"$PARLEYD" --state-dir "$T/nowhere" --reload >"$T/reload3.out" 2>&1
[ $? -eq 2 ] || fail "--reload with no daemon: exit status not 2"
expect_err "$T/reload3.out" "parleyd: $T/nowhere/parleyd.pid: No such file or directory (no parleyd runs with this state directory or pid_file; which one? give -c FILE, --state-dir DIR or --pid PID)"

# --- an oversized snapshot ------------------------------------------------------
python3 - <<'EOF' >"$T/many.jsonl"
import json
for i in range(4097):
    print(json.dumps({"negotiation": "many", "parties": ["p%d" % (i // 256)],
                      "phase": i % 256, "status": "proposed", "headline": "h"}))
EOF
"$PARLEY" pub -q -k "$T/desk" --json <"$T/many.jsonl" >/dev/null 2>"$T/many.err" \
    || fail "publishing 4097 updates failed: $(head -3 "$T/many.err")"
"$PARLEY" state >/dev/null 2>"$T/big.err"
[ $? -eq 2 ] || fail "an oversized state: exit status not 2"
expect_err "$T/big.err" "parley: rejected: unavailable: the daemon cannot serve this right now (a state of more than 4096 current updates does not fit one answer: narrow it with --negotiation, --party or --phase)"
grep -q "rejected request [0-9]*: unavailable the state asked for holds more than 4096 current updates, over what one answer carries: ask for less with filters" \
    "$DAEMON_LOG" || fail "the daemon's reject text for an oversized snapshot"
"$PARLEY" state --party p16 >"$T/small.out" || fail "a filtered state failed"

# --- a client that gives up is no warning -----------------------------------------
"$PARLEY" ping -s "$FEED" >/dev/null 2>&1   # the tool's probe hangs up on the feed
for _ in $(seq 50); do grep -q "a client closed its connection during the handshake" "$DAEMON_LOG" && break; sleep 0.1; done
grep -q "info feed: a client closed its connection during the handshake" "$DAEMON_LOG" \
    || fail "no info line for a client that gave up"
! grep -E "warn .*handshake failed: (Broken pipe|Connection reset by peer)" "$DAEMON_LOG" \
    || fail "a client giving up is logged as a warning"

stop_parleyd
[ ! -e "$T/d2/parleyd.pid" ] || fail "the pid file outlived a clean stop"
DAEMON_PID=$D1_PID
stop_parleyd
[ ! -e "$D1_STATE/parleyd.pid" ] || fail "the default pid file outlived a clean stop"
pass "parleyd's messages say what to do"
