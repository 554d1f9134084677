# test_state.sh - parley state on the demo feed prints the committed
# table and JSON (issue 14, acceptance 2).
#
# examples/publish-demo.sh publishes examples/ceasefire.jsonl to a fresh
# daemon; `parley state` must print examples/ceasefire.state and `parley
# state --json` examples/ceasefire.state.json. What changes from run to
# run is masked first: the time column of the table (YYYY-MM-DD HH:MM),
# and issued_at, received_at (0) and signer_id ("") in the JSON. The
# filters choose entries: --party hamas prints the hamas lines of the
# full table under their headings; and the command exits at once, without
# waiting for a heartbeat or for more updates.
. "$(dirname "$0")/harness.sh"

EX=$PARLEY_SOURCE_DIR/examples
start_parleyd "$T/d" --no-fsync
export PARLEY_SERVER=$API
PARLEY="$PARLEY" "$EX/publish-demo.sh" "$STATE/demo.key" "$API" >/dev/null 2>"$T/demo.err" \
    || fail "publish-demo.sh failed: $(cat "$T/demo.err")"

mask_table() {
    sed -E 's/  [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}  /  YYYY-MM-DD HH:MM  /'
}
start=$(date +%s%N)
"$PARLEY" state >"$T/state.out" 2>"$T/state.err" || fail "parley state failed: $(cat "$T/state.err")"
end=$(date +%s%N)
mask_table <"$T/state.out" >"$T/state.masked"
if ! cmp -s "$EX/ceasefire.state" "$T/state.masked"; then
    diff "$EX/ceasefire.state" "$T/state.masked" >&2
    fail "parley state differs from examples/ceasefire.state (< expected, > got)"
fi
# one request: well under a heartbeat interval on an idle daemon
[ $(( (end - start) / 1000000 )) -lt 900 ] \
    || echo "note: parley state took $(( (end - start) / 1000000 )) ms (a busy machine?)"

"$PARLEY" state --json >"$T/state.json" || fail "parley state --json failed"
python3 - "$T/state.json" "$EX/ceasefire.state.json" <<'EOF' || fail "parley state --json differs from examples/ceasefire.state.json (above)"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
if text.count("\n") != 1:
    sys.exit("expected one line of JSON")
got = json.loads(text)
for n in got["negotiations"]:
    for p in n["phases"]:
        for e in p["parties"]:
            if not (e["issued_at"] > 0 and e["received_at"] >= e["issued_at"] - 300000
                    and len(e["signer_id"]) == 16):
                sys.exit("entry %r" % e)
            e["issued_at"] = e["received_at"] = 0
            e["signer_id"] = ""
want = json.load(open(sys.argv[2], encoding="utf-8"))
if got != want:
    print(json.dumps(got, indent=2), file=sys.stderr)
    sys.exit("not the committed JSON")
EOF

# --party hamas: the hamas lines of the full table, under their headings
# (the columns are as wide as that table needs: spaces are squeezed).
"$PARLEY" state --party hamas | mask_table | tr -s ' ' >"$T/hamas.out" \
    || fail "parley state --party hamas failed"
grep -E '^(gaza|  phase|    hamas )' "$EX/ceasefire.state" | tr -s ' ' >"$T/hamas.want"
cmp -s "$T/hamas.want" "$T/hamas.out" || { diff "$T/hamas.want" "$T/hamas.out" >&2;
    fail "parley state --party hamas is not the hamas part of the table"; }
# --status: entries that stand at it now; nothing current: a note, exit 0
"$PARLEY" state --status awaiting_response | mask_table >"$T/await.out"
[ "$(grep -c '^    ' "$T/await.out")" = 2 ] || fail "--status awaiting_response: $(cat "$T/await.out")"
"$PARLEY" state --status collapsed >"$T/none.out" 2>"$T/none.err" || fail "an empty state is not an error"
[ ! -s "$T/none.out" ] || fail "an empty state printed: $(cat "$T/none.out")"
[ "$(cat "$T/none.err")" = "parley: nothing is current for these filters" ] \
    || fail "empty state message: $(cat "$T/none.err")"
stop_parleyd
pass "parley state prints the committed table and JSON for the demo feed"
