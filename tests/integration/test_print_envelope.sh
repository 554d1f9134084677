# test_print_envelope.sh - `parley pub --print-envelope[=json]` signs as a
# publish would and writes the envelope instead of sending it: the binary
# form passes `parley verify`, the JSON form has the three base64 fields
# of the right sizes for the key, each run takes a new signer_seq from
# KEYFILE.seq, and a bad update takes none.
. "$(dirname "$0")/harness.sh"

make_key desk
cd "$T" || fail "cd $T"
upd=(--negotiation gaza-ceasefire --party hamas --phase 1 --status proposed)

"$PARLEY" pub -k desk --print-envelope "${upd[@]}" --headline "binary form" \
    >env.bin || fail "--print-envelope exited $?"
out=$("$PARLEY" verify --keyring keyring env.bin) || fail "verify: $out"
case $out in
*"OK signer"*"(desk): binary form") ;;
*) fail "verify of the printed envelope said: $out" ;;
esac
seq1=$(cat desk.seq)

printf '%s\n' \
  '{"negotiation":"gaza-ceasefire","parties":["us"],"phase":0,"status":"proposed","headline":"one"}' \
  '{"negotiation":"gaza-ceasefire","parties":["us"],"phase":0,"status":"proposed","headline":"two"}' \
  | "$PARLEY" pub -k desk --json --print-envelope=json >env.jsonl \
  || fail "--json --print-envelope=json exited $?"
python3 - env.jsonl "$(cut -d' ' -f1 desk.pub)" <<'PY' || fail "the JSON envelopes are not right"
import base64, json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
for line in lines:
    e = json.loads(line)
    assert sorted(e) == ["signature", "signed_body", "signer"], e
    assert e["signer"] == sys.argv[2], (e["signer"], sys.argv[2])
    assert len(base64.b64decode(e["signature"], validate=True)) == 64
    body = base64.b64decode(e["signed_body"], validate=True)
    assert b"one" in body or b"two" in body, body
PY
seq2=$(cat desk.seq)
[ "$seq2" -gt "$seq1" ] || fail "desk.seq did not advance: $seq1 then $seq2"

# A bad update takes no signer_seq; binary with --json has no separator.
"$PARLEY" pub -k desk --print-envelope=json "${upd[@]}" --headline "" \
    >/dev/null 2>err.txt
rc=$?
[ $rc -eq 1 ] || fail "an empty headline exited $rc, expected 1: $(cat err.txt)"
[ "$(cat desk.seq)" = "$seq2" ] || fail "a refused update took a signer_seq"
"$PARLEY" pub -k desk --json --print-envelope </dev/null >/dev/null 2>&1
[ $? -eq 1 ] || fail "--json with a binary --print-envelope was not refused"
"$PARLEY" pub -k desk --print-envelope=xml "${upd[@]}" --headline x \
    >/dev/null 2>&1
[ $? -eq 1 ] || fail "--print-envelope=xml was not refused"
pass "parley pub --print-envelope"
