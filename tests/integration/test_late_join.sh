# test_late_join.sh - issue 3, acceptance 4: a late joiner with
# `parley sub --last` sees the current state, then live updates.
#
# The demo feed (examples/ceasefire.jsonl, seqs 1-12) is published, then
#   - a correction of seq 3 (phase 1, israel and hamas, "proposed") that
#     names only hamas, status counter_proposal: seq 3 is withdrawn from
#     both its entries, the correction holds (hamas, 1) alone, and
#     (israel, 1) has no earlier update to fall back to: no state;
#   - a retraction of seq 11 (phase 2, israel and hamas, "awaiting
#     response"): both entries fall back to what was true before it, seq
#     6 (which had superseded seq 4).
# The expected current state per (negotiation, party, phase) is computed
# from the jsonl and these two by the reference model of docs/protocol.md
# section 5 (state_model.py), independently of the daemon. `parley sub --last -F ...` started after
# all that must print exactly the deliveries holding that state, each
# once, in ascending seq order, with their fields; then an update
# published afterwards must follow as a live update, and -C makes it exit
# 0. The same subscriber with --party hamas must print only the hamas part.
. "$(dirname "$0")/harness.sh"

JSONL=$PARLEY_SOURCE_DIR/examples/ceasefire.jsonl
[ -f "$JSONL" ] || fail "missing $JSONL"

make_key mediator
start_parleyd "$T/d" --keyring "$T/keyring"
export PARLEY_SERVER=$API

# --- publish the demo feed, a correction and a retraction ------------------
"$PARLEY" pub -k "$T/mediator" --json <"$JSONL" >"$T/pub.out" 2>"$T/pub.err" \
    || fail "parley pub --json: $(cat "$T/pub.err")"
total=$(grep -c . "$JSONL")
[ "$(cat "$T/pub.out")" = "$(seq "$total")" ] \
    || fail "the demo feed was not acked as seqs 1..$total: $(tr '\n' ' ' <"$T/pub.out")"

corr=$("$PARLEY" pub -k "$T/mediator" --negotiation gaza-ceasefire \
    --party hamas --phase 1 --status counter_proposal \
    --headline "Correction: Hamas made a counter-proposal on phase 1" \
    --kind correction --ref 3 2>"$T/corr.err") \
    || fail "publishing the correction: $(cat "$T/corr.err")"
retr=$("$PARLEY" pub -k "$T/mediator" --negotiation gaza-ceasefire \
    --party israel --party hamas --phase 2 --status awaiting_response \
    --headline "Retracted: no responses to the bridging proposals are expected yet" \
    --kind retraction --ref 11 2>"$T/retr.err") \
    || fail "publishing the retraction: $(cat "$T/retr.err")"
[ "$corr" = $((total + 1)) ] && [ "$retr" = $((total + 2)) ] \
    || fail "correction and retraction got seqs '$corr' '$retr', expected $((total + 1)) $((total + 2))"

# --- the expected state, from the files and the rules ----------------------
# extra.jsonl holds the correction and the retraction as the model sees them.
cat >"$T/extra.jsonl" <<EOF
{"negotiation":"gaza-ceasefire","parties":["hamas"],"phase":1,"status":"counter_proposal","kind":"correction","references":[3],"headline":"Correction: Hamas made a counter-proposal on phase 1"}
{"negotiation":"gaza-ceasefire","parties":["israel","hamas"],"phase":2,"status":"awaiting_response","kind":"retraction","references":[11],"headline":"Retracted: no responses to the bridging proposals are expected yet"}
EOF
FMT='%s|%n|%p|%P|%S|%k|%h'
# expect.py PARTY: print the expected state (to stderr) and the lines
# `sub --last -F FMT` must print (to stdout), for one party or all ("").
cat >"$T/expect.py" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[4])
from state_model import state as model_state
party = sys.argv[3]
ups = []
for path in sys.argv[1:3]:
    with open(path, encoding="utf-8") as f:
        ups += [json.loads(l) for l in f if l.strip()]
recs = [{"seq": seq, "kind": u.get("kind", "update"),
         "negotiation": u["negotiation"], "parties": u["parties"],
         "phase": u["phase"], "references": u.get("references", []),
         "expired": False} for seq, u in enumerate(ups, 1)]
state = model_state(recs)                    # (neg, party, phase) -> seq
if party:
    state = {k: v for k, v in state.items() if k[1] == party}
for k in sorted(state):
    print("state %s/%s/phase %d = seq %d" % (k[0], k[1], k[2], state[k]),
          file=sys.stderr)
for seq in sorted(set(state.values())):
    u = ups[seq - 1]
    print("|".join([str(seq), u["negotiation"], ",".join(u["parties"]),
                    str(u["phase"]), u["status"], u.get("kind", "update"),
                    u["headline"]]))
EOF
MODEL_DIR=$PARLEY_SOURCE_DIR/tests/integration
python3 "$T/expect.py" "$JSONL" "$T/extra.jsonl" "" "$MODEL_DIR" >"$T/expect.all" 2>"$T/state.all" \
    || fail "expect.py failed"
python3 "$T/expect.py" "$JSONL" "$T/extra.jsonl" hamas "$MODEL_DIR" >"$T/expect.hamas" 2>"$T/state.hamas" \
    || fail "expect.py hamas failed"
PH_LOGS="$PH_LOGS $T/state.all $T/expect.all"
# The model must say what this test is about, or the test proves nothing.
grep -q "hamas/phase 1 = seq $corr" "$T/state.all" || fail "model: (hamas, 1) should be the correction"
grep -q "israel/phase 1 " "$T/state.all" && fail "model: (israel, 1) should have no state"
grep -q "israel/phase 2 = seq 6\$" "$T/state.all" && grep -q "hamas/phase 2 = seq 6\$" "$T/state.all" \
    || fail "model: phase 2 should fall back to seq 6"
grep -q "qatar/phase 0 = seq 1\$" "$T/state.all" || fail "model: (qatar, 0) should still be seq 1"
grep -q "^6|" "$T/expect.all" && ! grep -q "^3|\|^4|\|^11|" "$T/expect.all" \
    || fail "model: seq 6 must be part of the state, and seqs 3, 4 and 11 not"

# --- the late joiner ---------------------------------------------------------
# sub_last NAME EXPECTED [FILTER...]: start `parley sub --last` and wait
# until it has printed the state, then publish a live update matching the
# filter; the output must be EXPECTED then that update.
sub_last() {
    local name=$1 expected=$2
    shift 2
    local n i
    n=$(grep -c . "$expected")
    [ "$n" -gt 0 ] || fail "$name: the model expects an empty state"
    "$PARLEY" sub --last "$@" -F "$FMT" -C $((n + 1)) -W 60 \
        >"$T/$name.out" 2>"$T/$name.err" &
    local pid=$!
    PH_PIDS="$PH_PIDS $pid"
    PH_LOGS="$PH_LOGS $T/$name.out $T/$name.err"
    for i in $(seq 200); do
        [ "$(grep -c . "$T/$name.out")" -ge "$n" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ "$(grep -c . "$T/$name.out")" -eq "$n" ] \
        || fail "$name: printed $(grep -c . "$T/$name.out") lines for a state of $n"
    if ! diff -u "$expected" "$T/$name.out" >"$T/$name.diff"; then
        cat "$T/$name.diff" >&2
        fail "$name: --last printed another state than expected (diff above)"
    fi
    # The subscriber is live once it has printed the snapshot.
    local live
    live=$("$PARLEY" pub -k "$T/mediator" --negotiation gaza-ceasefire \
        --party hamas --party israel --phase 1 --status agreed_in_principle \
        --headline "Phase 1 agreed in principle ($name)" 2>"$T/live.err") \
        || fail "publishing the live update: $(cat "$T/live.err")"
    wait_exit "$pid" 30
    [ "$EXIT_STATUS" -eq 0 ] || fail "$name: parley sub exited $EXIT_STATUS"
    local last
    last=$(tail -n 1 "$T/$name.out")
    [ "$last" = "$live|gaza-ceasefire|hamas,israel|1|agreed_in_principle|update|Phase 1 agreed in principle ($name)" ] \
        || fail "$name: last line '$last' is not the live update #$live"
    [ "$(grep -c . "$T/$name.out")" -eq $((n + 1)) ] \
        || fail "$name: printed more than the state and the live update"
    LIVE_SEQS="${LIVE_SEQS:-} $live"
}

sub_last all "$T/expect.all"
pass "parley sub --last: the current state ($(grep -c . "$T/expect.all") deliveries), then a live update"

# The live update of the first run is now the state of (israel|hamas, 1):
# fold it into the model for the filtered run.
first_live=$(echo $LIVE_SEQS | cut -d' ' -f1)
echo '{"negotiation":"gaza-ceasefire","parties":["hamas","israel"],"phase":1,"status":"agreed_in_principle","headline":"Phase 1 agreed in principle (all)"}' >>"$T/extra.jsonl"
[ "$first_live" = $((total + 3)) ] || fail "the live update got seq $first_live, expected $((total + 3))"
python3 "$T/expect.py" "$JSONL" "$T/extra.jsonl" hamas "$MODEL_DIR" >"$T/expect.hamas" 2>"$T/state.hamas" \
    || fail "expect.py hamas failed"
sub_last hamas "$T/expect.hamas" --party hamas
pass "parley sub --last --party hamas: only the hamas state, then a live update"

# --- whose state each delivery of the start holds ---------------------------
# An update naming several parties may hold the state of some of them only:
# --json says which in "current_for", the line in "(current for ...)". The
# live update of the second run holds (israel|hamas, 1) now.
echo '{"negotiation":"gaza-ceasefire","parties":["hamas","israel"],"phase":1,"status":"agreed_in_principle","headline":"Phase 1 agreed in principle (hamas)"}' >>"$T/extra.jsonl"
python3 "$T/expect.py" "$JSONL" "$T/extra.jsonl" "" "$MODEL_DIR" >"$T/expect.all" 2>"$T/state.all" \
    || fail "expect.py failed"
n=$(grep -c . "$T/expect.all")
"$PARLEY" sub --last --json -C "$n" -W 30 >"$T/json.out" 2>"$T/json.err" \
    || fail "parley sub --last --json: $(cat "$T/json.err")"
python3 - "$T/state.all" "$T/json.out" <<'EOF' || fail "current_for differs from the model (above)"
import json, re, sys
want = {}
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"state (\S+)/(\S+)/phase (\d+) = seq (\d+)$", line.strip())
    want.setdefault(int(m.group(4)), []).append(m.group(2))
got = {}
for line in open(sys.argv[2], encoding="utf-8"):
    o = json.loads(line)
    got[o["seq"]] = o["current_for"]
    for p in o["current_for"]:
        assert p in o["parties"], line
bad = [s for s in set(want) | set(got)
       if sorted(want.get(s, [])) != sorted(got.get(s, []))]
for s in sorted(bad):
    print("seq %d: current_for %s, model %s" % (s, got.get(s), want.get(s)),
          file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
# Seq 6 names hamas and israel on phase 2; after the retraction of 11 it
# holds both again, and the line says so.
"$PARLEY" sub --last --phase 2 -C 1 -W 30 >"$T/line.out" 2>"$T/line.err" \
    || fail "parley sub --last --phase 2: $(cat "$T/line.err")"
grep -Eq '^#6 [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} gaza-ceasefire phase 2 \[hamas,israel\] counter_proposal: .* \(current for hamas,israel\)$' "$T/line.out" \
    || fail "sub --last does not say whose state #6 holds: $(cat "$T/line.out")"
pass "parley sub --last: each delivery of the state says whose state it holds"

stop_parleyd
