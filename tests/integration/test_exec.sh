# test_exec.sh - `parley sub -- COMMAND` hands the update to COMMAND only
# through PARLEY_* environment variables and JSON on stdin; nothing from
# the update is ever spliced into a shell string.
#
# The headline is full of shell syntax: command substitution in both
# forms, quotes, a semicolon, variable references, a newline. The command
# line is fixed; if any of it were evaluated, a marker file would appear
# or the copy would differ.
. "$(dirname "$0")/harness.sh"

make_key tester
start_parleyd "$T/d" --keyring "$T/keyring"
export PARLEY_SERVER=$API

# Relative marker names land in the command's directory, which must end
# up holding only "out"; one absolute marker covers a different cwd.
M=$T/pw
H="x \$(touch $M) \$(touch pw1) \`touch pw2\` \"dq\" 'sq' ; touch pw3 && echo \$HOME"$'\n'"2nd line \${PATH} \\ | > pw4 end"
n=$(printf %s "$H" | wc -c)
[ "$n" -le 200 ] || fail "test headline is $n bytes, over the 200-byte limit"

seq=$("$PARLEY" pub -k "$T/tester" --negotiation gaza-ceasefire --party hamas \
       --phase 1 --status counter_proposal --headline "$H" 2>"$T/pub.err")
rc=$?
[ $rc -eq 0 ] || fail "parley pub exited $rc: $(cat "$T/pub.err")"
[[ $seq =~ ^[0-9]+$ ]] || fail "parley pub printed '$seq', expected a seq"

mkdir "$T/run"
(cd "$T/run" && timeout 30 "$PARLEY" sub --since 1 -C 1 -W 20 \
    -- sh -c 'printf %s "$PARLEY_HEADLINE" > out') >"$T/sub.out" 2>"$T/sub.err"
rc=$?
[ $rc -eq 0 ] || fail "parley sub -- sh -c ... exited $rc: $(cat "$T/sub.err")"

[ -f "$T/run/out" ] || fail "the command did not run (no out file); stderr: $(cat "$T/sub.err")"
printf %s "$H" >"$T/expected"
if ! cmp -s "$T/expected" "$T/run/out"; then
    echo "expected:" >&2; od -c "$T/expected" | head -20 >&2
    echo "got:" >&2; od -c "$T/run/out" | head -20 >&2
    fail "PARLEY_HEADLINE differs from the published headline"
fi
for f in "$M" "$T/run/pw1" "$T/run/pw2" "$T/run/pw3" "$T/run/pw4"; do
    [ ! -e "$f" ] || fail "$f exists: text from the update was run by a shell"
done
[ "$(ls -A "$T/run")" = out ] || fail "unexpected files in the command's directory: $(ls "$T/run")"

# The same update arrives as JSON on the command's stdin.
(cd "$T/run" && timeout 30 "$PARLEY" sub --since 1 -C 1 -W 20 \
    -- sh -c 'cat > in.json') >"$T/sub2.out" 2>"$T/sub2.err"
rc=$?
[ $rc -eq 0 ] || fail "parley sub -- sh -c 'cat > in.json' exited $rc: $(cat "$T/sub2.err")"
H="$H" SEQ="$seq" python3 - "$T/run/in.json" <<'EOF' || fail "JSON on the command's stdin is wrong"
import json, os, sys
with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
objs = [json.loads(l) for l in text.splitlines() if l.strip()]
if len(objs) != 1:
    sys.exit("expected one JSON object on stdin, got %d: %r" % (len(objs), text))
o = objs[0]
if o.get("headline") != os.environ["H"] or o.get("seq") != int(os.environ["SEQ"]):
    sys.exit("headline/seq: got %r / %r" % (o.get("headline"), o.get("seq")))
EOF
for f in "$M" "$T/run/pw1" "$T/run/pw2" "$T/run/pw3" "$T/run/pw4"; do
    [ ! -e "$f" ] || fail "$f exists: text from the update was run by a shell"
done

stop_parleyd
pass "COMMAND gets the update through the environment and stdin, never a shell string"
