# test_pub_concurrent.sh - concurrent `parley pub` runs with one key from
# one machine never collide (docs/protocol.md section 3), and a publish
# refused as `future` does not use up a signer_seq.
#
# 20 workers run `parley pub` 10 times each at once (200 runs, one key):
# every run must exit 0 with its own seq, and the daemon must hold 200
# updates. (0.1 lost about a third of them as `replay`: the .seq lock
# handed out unique values, but arrival order is not seq order.)
. "$(dirname "$0")/harness.sh"

make_key desk
# No rate limit: 200 publishes in a burst is the point here.
printf 'rate_limit 0\n' >"$T/parleyd.conf"
start_parleyd "$T/d" --keyring "$T/keyring" -c "$T/parleyd.conf"
export PARLEY_SERVER=$API

WORKERS=20
RUNS=10
worker() {
    local w=$1 i rc
    for i in $(seq $RUNS); do
        "$PARLEY" pub -k "$T/desk" --negotiation gaza-ceasefire --party egypt \
            --phase 1 --status talks_in_progress \
            --headline "worker $w run $i" >>"$T/w$w.out" 2>>"$T/w$w.err"
        rc=$?
        [ $rc -eq 0 ] || echo "worker $w run $i: exit $rc" >>"$T/w$w.fail"
    done
}
for w in $(seq $WORKERS); do
    worker "$w" &
    pids="${pids:-} $!"
done
for p in $pids; do wait "$p"; done

failures=$(cat "$T"/w*.fail 2>/dev/null | wc -l)
if [ "$failures" -ne 0 ]; then
    cat "$T"/w*.fail "$T"/w*.err >&2
    fail "$failures of $((WORKERS * RUNS)) concurrent runs failed"
fi
total=$(cat "$T"/w*.out | grep -c '^[0-9][0-9]*$')
distinct=$(cat "$T"/w*.out | sort -u | grep -c .)
[ "$total" -eq $((WORKERS * RUNS)) ] || fail "$total seqs printed, expected $((WORKERS * RUNS))"
[ "$distinct" -eq "$total" ] || fail "only $distinct distinct seqs among $total"
accepted=$("$PARLEY" stats | awk '$1 == "accepted" { print $2 }')
[ "$accepted" = $((WORKERS * RUNS)) ] || fail "the daemon accepted $accepted, expected $((WORKERS * RUNS))"
again=$("$PARLEY" stats | awk '$1 == "rejected_replay" { print $2 }')
pass "$((WORKERS * RUNS)) concurrent runs with one key: all accepted ($again arrived late and were signed again)"

# A publish refused as `future` leaves KEYFILE.seq as it was.
before=$(cat "$T/desk.seq")
future=$(( $(date +%s) * 1000 + 3600 * 1000 ))
printf '{"negotiation":"gaza-ceasefire","parties":["egypt"],"status":"proposed","headline":"from the future","issued_at":%s}\n' "$future" \
    | "$PARLEY" pub -k "$T/desk" --json >"$T/future.out" 2>"$T/future.err"
rc=$?
PH_LOGS="$PH_LOGS $T/future.err"
[ $rc -eq 2 ] || fail "a future issued_at: exit $rc, expected 2"
grep -q 'rejected: future' "$T/future.err" || fail "no 'rejected: future' message"
after=$(cat "$T/desk.seq")
[ "$after" = "$before" ] || fail "KEYFILE.seq moved from $before to $after on a future reject"
# ... and the next publish still goes through.
"$PARLEY" pub -k "$T/desk" --negotiation gaza-ceasefire --party egypt \
    --status proposed --headline "after the future one" >/dev/null 2>"$T/next.err" \
    || fail "publish after the future reject failed: $(cat "$T/next.err")"
pass "a future reject gives its signer_seq back"
stop_parleyd
