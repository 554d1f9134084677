# test_walkthrough.sh - the first-look walk-through, as a new user runs it.
#
# 1. parleyd with no --keyring on an empty state directory creates a demo
#    key and a keyring trusting it; `parley sub --party hamas -C N` runs in
#    the background; examples/publish-demo.sh publishes the demo feed with
#    the demo key, then one update is published by hand as in README.md;
#    the subscriber prints exactly the documented lines and exits 0.
# 2. parleyd with no arguments at all uses ./parley-data and the default
#    ports 7710/7711 (only when both are free here; skipped otherwise).
. "$(dirname "$0")/harness.sh"

JSONL=$PARLEY_SOURCE_DIR/examples/ceasefire.jsonl
DEMO=$PARLEY_SOURCE_DIR/examples/publish-demo.sh
[ -f "$JSONL" ] || fail "missing $JSONL"
[ -x "$DEMO" ] || fail "missing or not executable: $DEMO"

# --- 1. demo key, background subscriber, publish-demo.sh -----------------
start_parleyd "$T/w"
[ -f "$STATE/demo.key" ] || fail "parleyd made no $STATE/demo.key"
[ -f "$STATE/demo.key.pub" ] || fail "parleyd made no $STATE/demo.key.pub"
[ -f "$STATE/keyring" ] || fail "parleyd made no $STATE/keyring"
mode=$(stat -c %a "$STATE/demo.key")
[ "$mode" = 600 ] || fail "demo.key has mode $mode, expected 600"
pub=$(cut -d' ' -f1 "$STATE/demo.key.pub")
grep -q "^demo $pub negotiations=\* parties=\* phases=\*\$" "$STATE/keyring" \
    || fail "keyring does not trust demo.key for everything: $(cat "$STATE/keyring")"

# What terminal 2 should print for the demo feed, computed from the feed
# itself in the documented line format
#   #<seq> <date> <time> <negotiation> phase <n> [<parties>] <status>: <headline>
# (line N of the feed gets seq N on a fresh daemon). The time varies, so
# it is checked for its form and then left out of the comparison.
python3 - "$JSONL" >"$T/expected.out" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    lines = [l for l in f if l.strip()]
for n, line in enumerate(lines, 1):
    u = json.loads(line)
    if "hamas" in u["parties"]:
        print("#%d %s phase %d [%s] %s: %s" % (n, u["negotiation"], u.get("phase", 0),
              ",".join(u["parties"]), u["status"], u["headline"]))
EOF
total=$(grep -c . "$JSONL")
N=$(wc -l <"$T/expected.out")
[ "$N" -gt 0 ] && [ "$N" -lt "$total" ] \
    || fail "--party hamas selects $N of $total lines; the test needs a proper subset"
# The README's hand-published update, which terminal 2 shows as well.
HAND_HEADLINE="Phase 1 of the cease-fire deal is agreed in principle"
echo "#$((total + 1)) gaza-ceasefire phase 1 [israel,hamas] agreed_in_principle: $HAND_HEADLINE" >>"$T/expected.out"

# Terminal 2.
export PARLEY_SERVER=$API
"$PARLEY" sub --party hamas -C "$((N + 1))" -W 60 >"$T/sub.out" 2>"$T/sub.err" &
SUB=$!
PH_PIDS="$PH_PIDS $SUB"
PH_LOGS="$PH_LOGS $T/sub.out $T/sub.err"
# A user cannot see when the subscriber is live; wait for its feed
# connection, its two topics (party/hamas/, sys/heartbeat/) granted and a
# heartbeat after them.
wait_connected "$SUB" "$FEED_PORT" 10 || fail "parley sub did not connect to the feed"
wait_feed_live 2 || fail "parley sub did not become live"

# Terminal 3.
"$DEMO" "$STATE/demo.key" "$API" >"$T/demo.out" 2>"$T/demo.err"
rc=$?
PH_LOGS="$PH_LOGS $T/demo.out $T/demo.err"
[ $rc -eq 0 ] || fail "publish-demo.sh exited $rc"
[ "$(seq "$total")" = "$(cat "$T/demo.out")" ] \
    || fail "publish-demo.sh should print the seqs 1..$total on a fresh daemon"
seq=$("$PARLEY" pub -k "$STATE/demo.key" --negotiation gaza-ceasefire \
      --party israel --party hamas --phase 1 --status agreed_in_principle \
      --headline "$HAND_HEADLINE" 2>"$T/pub.err")
rc=$?
[ $rc -eq 0 ] || fail "parley pub exited $rc: $(cat "$T/pub.err")"
[ "$seq" = "$((total + 1))" ] || fail "parley pub printed '$seq', expected $((total + 1))"

wait_exit "$SUB" 30
[ "$EXIT_STATUS" -eq 0 ] || fail "parley sub --party hamas -C $((N + 1)) exited $EXIT_STATUS"
# drop_time: "#N YYYY-MM-DD HH:MM:SS rest" -> "#N rest"; a line without
# the time is left as it is, and then differs from the expected one.
drop_time() {
    sed -E 's/^(#[0-9]+) [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} /\1 /' "$1"
}
grep -Evq '^#[0-9]+ [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} gaza-ceasefire ' "$T/sub.out" \
    && fail "a line of parley sub has no time: $(cat "$T/sub.out")"
drop_time "$T/sub.out" >"$T/sub.notime"
if ! cmp -s "$T/expected.out" "$T/sub.notime"; then
    diff "$T/expected.out" "$T/sub.notime" >&2
    fail "parley sub --party hamas printed other lines than expected (diff above: < expected, > got)"
fi

# The README's walk-through section shows the same lines (its example
# output must not drift from what the tools print).
README=$PARLEY_SOURCE_DIR/README.md
if [ -f "$README" ]; then
    awk '/^## A first walk-through/ { on = 1; next } on && /^##/ { on = 0 }
         on && /^#[0-9]+ [0-9-]+ [0-9:]+ gaza-ceasefire phase / { print }' "$README" >"$T/readme.out"
    [ -s "$T/readme.out" ] || fail "README.md has no walk-through output lines to compare"
    drop_time "$T/readme.out" >"$T/readme.notime"
    if ! cmp -s "$T/readme.notime" "$T/sub.notime"; then
        diff "$T/readme.notime" "$T/sub.notime" >&2
        fail "README.md's walk-through output differs from what parley sub prints (< README, > got)"
    fi
fi
stop_parleyd
pass "walk-through: demo key, background subscriber, publish-demo.sh, parley pub"

# --- 2. no arguments at all ------------------------------------------------
if ! port_free 7710 || ! port_free 7711; then
    skip "default ports 7710/7711 are in use here; part 2 (no arguments) not run"
fi
mkdir "$T/cwd"
unset PARLEY_SERVER
(cd "$T/cwd" && exec "$PARLEYD") >"$T/default.log" 2>&1 </dev/null &
DAEMON_PID=$!
PH_PIDS="$PH_PIDS $DAEMON_PID"
PH_LOGS="$PH_LOGS $T/default.log"
ok=1
wait_ping tcp://127.0.0.1:7710 10 || ok=0
if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
    # Someone took a default port between the check and the bind.
    grep -q 'in use' "$T/default.log" \
        && skip "default ports taken while starting; part 2 (no arguments) not run"
    fail "parleyd with no arguments exited"
fi
[ $ok -eq 1 ] || fail "parleyd with no arguments did not answer on 7710"
[ -d "$T/cwd/parley-data" ] || fail "parleyd with no arguments made no ./parley-data"
mode=$(stat -c %a "$T/cwd/parley-data")
[ "$mode" = 700 ] || fail "./parley-data has mode $mode, expected 700"
[ -f "$T/cwd/parley-data/demo.key" ] || fail "no ./parley-data/demo.key"
# The tool's default server is the daemon's default api.
out=$(timeout 5 "$PARLEY" ping 2>&1) || fail "parley ping (default server) failed: $out"
case $out in
*7711*) ;;
*) fail "parley ping does not name the default feed 7711: $out" ;;
esac
stop_parleyd
pass "parleyd with no arguments: ./parley-data, default ports, clean stop"
