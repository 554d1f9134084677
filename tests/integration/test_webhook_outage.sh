# test_webhook_outage.sh - a web hook that is down for 20 s loses nothing
# (issue 14, acceptance 1).
#
# The receiver answers 503 for its first 20 seconds, then 200. Thirty
# updates are published while it fails. parley sub --cursor --webhook
# retries with backoff and jitter, in seq order: once the receiver is
# back it gets every update exactly once (no Idempotency-Key accepted
# twice: duplicates are allowed only across a crash, and there is none
# here), in seq order, each with Idempotency-Key DAEMONID/SEQ; the cursor
# and the stats file say so. The 20 s are the issue's; this test runs in
# parallel with the others and nothing waits on it.
. "$(dirname "$0")/harness.sh"

N=30
make_key desk
start_parleyd "$T/d" --keyring "$T/keyring" --no-fsync
export PARLEY_SERVER=$API
ID=$(daemon_id "$API")
[ ${#ID} -eq 32 ] || fail "parley ping gave no daemon id: '$ID'"

start_hook "$T/hook" fail-for 20
"$PARLEY" sub --cursor "$T/cursor" --stats-file "$T/stats.json" \
    --retry-delay 0.5 --retry-max-delay 4 \
    --webhook "$HOOK_URL/hook" >"$T/sub.out" 2>"$T/sub.err" &
SUB=$!
PH_PIDS="$PH_PIDS $SUB"
PH_LOGS="$PH_LOGS $T/sub.err"
wait_connected "$SUB" "$FEED_PORT" 10 || fail "parley sub did not connect to the feed"
# the cursor of a first start is the head it started from
for _ in $(seq 50); do [ -f "$T/cursor" ] && break; sleep 0.1; done
[ "$(cat "$T/cursor")" = 0 ] || fail "first start: cursor '$(cat "$T/cursor")', expected 0"

publish_n "$T/desk" $N gaza-ceasefire
wait_hook_ok "$T/hook" $N 60 || fail "the hook got $(hook_ok_count "$T/hook") of $N updates within 60 s"

kill -TERM "$SUB"
wait_exit "$SUB" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "parley sub exited $EXIT_STATUS after SIGTERM"
[ "$(cat "$T/cursor")" = $N ] || fail "cursor '$(cat "$T/cursor")', expected $N"

python3 - "$T/hook/hook.log" "$ID" "$N" "$T/stats.json" <<'EOF' || fail "the hook's log is wrong (above)"
import json, sys
log = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
daemon, n = sys.argv[2], int(sys.argv[3])
ok = [r for r in log if r["status"] == 200]
failed = [r for r in log if r["status"] != 200]
def key(r):
    return dict((k.lower(), v) for k, v in r["headers"])["idempotency-key"]
seqs = [json.loads(r["body"])["seq"] for r in ok]
if seqs != list(range(1, n + 1)):
    sys.exit("accepted seqs %r, expected 1..%d in order" % (seqs, n))
keys = [key(r) for r in ok]
if keys != ["%s/%d" % (daemon, s) for s in seqs]:
    sys.exit("Idempotency-Key values %r" % keys[:3])
if len(set(keys)) != len(keys):
    sys.exit("an update was accepted twice without a crash")
if not failed or min(r["t"] for r in ok) < 20:
    sys.exit("the hook did not fail first (or accepted before 20 s)")
# retries of one update carry its key, and nothing overtakes a failing one
order = [json.loads(r["body"])["seq"] for r in log]
if order != sorted(order):
    sys.exit("attempts out of seq order: %r" % order)
st = json.load(open(sys.argv[4]))
if st["handled"] != n or st["dead_lettered"] != 0 or st["cursor"] != n \
        or st["lag"] != 0 or st["retried"] != len(failed):
    sys.exit("stats %r (failed attempts %d)" % (st, len(failed)))
print("accepted %d updates after %.1f s; %d failed attempts before"
      % (n, min(r["t"] for r in ok), len(failed)))
EOF
grep -q "^parley: #1: $HOOK_URL/hook answered HTTP 503: unavailable; trying again in " "$T/sub.err" \
    || fail "no retry line for #1 on stderr"
stop_parleyd
pass "a hook down for 20 s gets every update once, in order"
