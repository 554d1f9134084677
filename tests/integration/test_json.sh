# test_json.sh - `parley sub --json` prints valid JSON that decodes to
# exactly the text that was published: quotes, backslashes, newlines, tabs,
# control characters and non-ASCII survive, and each update is one line.
#
# One update is published with `parley pub --headline/--body` (text from
# argv), one with `parley pub --json` (text from a JSON line on stdin).
. "$(dirname "$0")/harness.sh"

make_key tester
start_parleyd "$T/d" --keyring "$T/keyring"
export PARLEY_SERVER=$API

# Valid UTF-8 throughout; a newline is allowed in text, so are tab and
# other control characters except NUL.
H1=$'He said "stop" \\ and C:\\path\\n is not a newline,\nbut this was one;\ttab, unit sep \x1f, Waffenstillstand – «phase 1» 停火'
B1=$'Body with "quotes", back\\slashes\\\\, </script>, and\r\nCRLF line ends.\n'
H2=$'JSON-fed: 🕊 dove,   line separator, \\u0041 literally, \x7f DEL, "end"'

[ ${#H1} -gt 0 ] || fail "empty headline"
n=$(printf %s "$H1" | wc -c)
[ "$n" -le 200 ] || fail "test headline is $n bytes, over the 200-byte limit"
n=$(printf %s "$H2" | wc -c)
[ "$n" -le 200 ] || fail "test headline 2 is $n bytes, over the 200-byte limit"

# 1. From argv.
seq1=$("$PARLEY" pub -k "$T/tester" --negotiation gaza-ceasefire --party us \
        --party egypt --phase 1 --status talks_scheduled \
        --headline "$H1" --body "$B1" 2>"$T/pub1.err")
rc=$?
[ $rc -eq 0 ] || fail "parley pub (argv) exited $rc: $(cat "$T/pub1.err")"
[[ $seq1 =~ ^[0-9]+$ ]] || fail "parley pub printed '$seq1', expected a seq"

# 2. From a JSON line on stdin, encoded by python (non-ASCII kept raw).
line=$(H2="$H2" python3 -c 'import json, os
print(json.dumps({"negotiation": "gaza-ceasefire", "parties": ["qatar"],
                  "phase": 2, "status": "awaiting_response",
                  "headline": os.environ["H2"]}, ensure_ascii=False))')
seq2=$(printf '%s\n' "$line" | "$PARLEY" pub -k "$T/tester" --json 2>"$T/pub2.err")
rc=$?
[ $rc -eq 0 ] || fail "parley pub --json exited $rc: $(cat "$T/pub2.err")"
[[ $seq2 =~ ^[0-9]+$ ]] || fail "parley pub --json printed '$seq2', expected a seq"
[ "$seq2" -gt "$seq1" ] || fail "second seq $seq2 not above first $seq1"

# Read both back as JSON.
timeout 30 "$PARLEY" sub --since 1 -C 2 -W 20 --json >"$T/out.jsonl" 2>"$T/sub.err"
rc=$?
[ $rc -eq 0 ] || fail "parley sub --json exited $rc: $(cat "$T/sub.err")"
lines=$(wc -l <"$T/out.jsonl")
[ "$lines" -eq 2 ] || { cat "$T/out.jsonl" >&2; fail "expected 2 lines of JSON, got $lines"; }

i=0
while IFS= read -r l; do
    i=$((i + 1))
    printf '%s\n' "$l" | python3 -m json.tool >/dev/null 2>"$T/tool.err" \
        || fail "line $i is not valid JSON ($(cat "$T/tool.err")): $l"
done <"$T/out.jsonl"

H1="$H1" B1="$B1" H2="$H2" SEQ1="$seq1" SEQ2="$seq2" python3 - "$T/out.jsonl" <<'EOF' || fail "decoded JSON differs from what was published"
import json, os, sys
want = [
    {"seq": int(os.environ["SEQ1"]), "headline": os.environ["H1"],
     "body": os.environ["B1"], "parties": ["us", "egypt"], "phase": 1,
     "status": "talks_scheduled"},
    {"seq": int(os.environ["SEQ2"]), "headline": os.environ["H2"],
     "body": "", "parties": ["qatar"], "phase": 2,
     "status": "awaiting_response"},
]
with open(sys.argv[1], encoding="utf-8") as f:
    got = [json.loads(line) for line in f]
bad = 0
for w, g in zip(want, got):
    for k, v in w.items():
        if g.get(k) != v:
            print("seq %s field %s: want %r, got %r" % (w["seq"], k, v, g.get(k)),
                  file=sys.stderr)
            bad += 1
    if g.get("negotiation") != "gaza-ceasefire" or g.get("kind") != "update":
        print("seq %s: negotiation/kind %r/%r" % (w["seq"], g.get("negotiation"),
              g.get("kind")), file=sys.stderr)
        bad += 1
    for k in ("received_at", "signer", "signer_id", "issued_at", "signer_seq"):
        if k not in g:
            print("seq %s: field %s missing" % (w["seq"], k), file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
EOF

# Human-readable output escapes control characters: one line per update.
timeout 30 "$PARLEY" sub --since 1 -C 2 -W 20 >"$T/plain.out" 2>"$T/plain.err" \
    || fail "parley sub (default format) failed: $(cat "$T/plain.err")"
[ "$(wc -l <"$T/plain.out")" -eq 2 ] || { cat "$T/plain.out" >&2; fail "default format: expected 2 lines"; }
grep -q "^#$seq1 " "$T/plain.out" || fail "default format: no line for #$seq1"
grep -q "^#$seq2 " "$T/plain.out" || fail "default format: no line for #$seq2"
timeout 30 "$PARLEY" sub --since 1 -C 2 -W 20 -F '%h' >"$T/fmt.out" 2>"$T/fmt.err" \
    || fail "parley sub -F %h failed: $(cat "$T/fmt.err")"
[ "$(wc -l <"$T/fmt.out")" -eq 2 ] || { cat "$T/fmt.out" >&2; fail "-F %h: expected 2 lines"; }

stop_parleyd
pass "JSON output round-trips quotes, backslashes, newlines, control characters and non-ASCII"
