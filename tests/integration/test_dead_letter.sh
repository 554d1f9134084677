# test_dead_letter.sh - a handler that always fails on one update: after
# the retry window that update goes to the dead-letter file, and the
# updates after it are still handled (issue 14, acceptance 1).
#
# 1. A command that exits 7 for seq 2 only, with --retry-for 2s: #2 is
#    tried several times, then written to CURSOR.dead (the default next
#    to --cursor) as one JSON line; #1, #3, #4 are handled in order; the
#    cursor ends at 4 and the stats count one dead letter.
# 2. A web hook that always answers 500, --dead-letter FILE, no cursor:
#    both updates end in FILE, with the HTTP status as the error.
. "$(dirname "$0")/harness.sh"

make_key desk
start_parleyd "$T/d" --keyring "$T/keyring" --no-fsync
export PARLEY_SERVER=$API
publish_n "$T/desk" 4 gaza-ceasefire

# --- 1. a command ------------------------------------------------------------
mkdir "$T/run"
(cd "$T/run" && timeout 60 "$PARLEY" sub --since 1 -C 4 --cursor "$T/cursor" \
    --retry-for 2s --retry-delay 0.2s --stats-file "$T/stats.json" \
    -- sh -c 'test "$PARLEY_SEQ" != 2 || exit 7; echo "$PARLEY_SEQ $PARLEY_ATTEMPT" >>handled') \
    >"$T/sub.out" 2>"$T/sub.err"
rc=$?
PH_LOGS="$PH_LOGS $T/sub.err"
[ $rc -eq 0 ] || fail "parley sub exited $rc"
[ "$(cat "$T/run/handled")" = "1 1
3 1
4 1" ] || fail "handled: $(cat "$T/run/handled"), expected #1, #3, #4 at their first attempt"
[ "$(cat "$T/cursor")" = 4 ] || fail "cursor $(cat "$T/cursor"), expected 4"
[ -f "$T/cursor.dead" ] || fail "no dead-letter file $T/cursor.dead"
ID=$(daemon_id "$API")
python3 - "$T/cursor.dead" "$ID" "$T/stats.json" <<'EOF' || fail "dead letter or stats wrong (above)"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
if len(lines) != 1:
    sys.exit("%d dead letters, expected 1" % len(lines))
d = json.loads(lines[0])
if d["seq"] != 2 or d["key"] != "%s/2" % sys.argv[2] or d["update"]["seq"] != 2 \
        or d["update"]["headline"] != "update 2" or d["attempts"] < 3 \
        or d["error"] != "sh exited with status 7" \
        or not d["handler"].endswith("/sh") \
        or d["dead_lettered_at"] - d["first_attempt_at"] < 2000:
    sys.exit("dead letter %r" % d)
st = json.load(open(sys.argv[3]))
if st["handled"] != 3 or st["dead_lettered"] != 1 or st["cursor"] != 4 \
        or st["retried"] != d["attempts"] - 1:
    sys.exit("stats %r" % st)
EOF
grep -q "^parley: #2: sh exited with status 7; trying again in " "$T/sub.err" \
    || fail "no retry line for #2"
grep -q "^parley: #2: sh exited with status 7; given up after [0-9]* attempts: written to $T/cursor.dead\$" \
    "$T/sub.err" || fail "no dead-letter line for #2"

# A restart resumes after the cursor: nothing is handled twice.
(cd "$T/run" && timeout 30 "$PARLEY" sub -W 2 --cursor "$T/cursor" \
    -- sh -c 'echo "$PARLEY_SEQ" >>again') >/dev/null 2>"$T/sub2.err"
[ ! -f "$T/run/again" ] || fail "a restart handled $(cat "$T/run/again") again"

# --- 2. a web hook ------------------------------------------------------------
start_hook "$T/hook" fail-always
timeout 60 "$PARLEY" sub --since 1 -C 2 --retry-for 1s --retry-delay 0.2s \
    --dead-letter "$T/hook.dead" --webhook "$HOOK_URL/x" \
    >"$T/hsub.out" 2>"$T/hsub.err"
rc=$?
PH_LOGS="$PH_LOGS $T/hsub.err"
[ $rc -eq 0 ] || fail "parley sub --webhook exited $rc"
python3 - "$T/hook.dead" "$HOOK_URL" <<'EOF' || fail "web hook dead letters wrong (above)"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
if [x["seq"] for x in d] != [1, 2]:
    sys.exit("dead letters for %r" % [x["seq"] for x in d])
for x in d:
    if x["error"] != "%s/x answered HTTP 500: unavailable" % sys.argv[2] \
            or x["handler"] != "webhook %s/x" % sys.argv[2] or x["attempts"] < 2:
        sys.exit("dead letter %r" % x)
EOF
stop_parleyd
pass "an update that keeps failing is dead-lettered; the rest are handled"
