# test_exec_jobs.sh - how `parley sub -- COMMAND` runs its commands:
# one at a time in seq order by default, up to N at once with
# --exec-jobs N, killed with what they started at --exec-timeout, and
# every failure reported on stderr and counted.
. "$(dirname "$0")/harness.sh"

make_key desk
start_parleyd "$T/d" --keyring "$T/keyring" --no-fsync
export PARLEY_SERVER=$API
N=6
for i in $(seq $N); do
    "$PARLEY" pub -q -k "$T/desk" --negotiation gaza-ceasefire --party egypt \
        --phase 2 --status talks_in_progress --headline "update $i" >/dev/null \
        || fail "publish $i failed"
done

# A command that logs its start and end (under a lock) and keeps a
# directory entry while it runs. With BARRIER set (to the most that may
# run at once) it waits until that many run beside it, or every one of
# the N commands has started, so that commands that can overlap do; it
# gives up after 5 s (the test then fails on what it saw), and records
# the most it saw running.
cat >"$T/job" <<'EOF'
#!/bin/sh
d=$JOBDIR
log() { flock "$d/lock" sh -c 'echo "$1" >>"$2"' - "$1" "$d/events"; }
log "start $PARLEY_SEQ"
mkdir "$d/running.$PARLEY_SEQ"
n=$(ls -d "$d"/running.* | wc -l)
if [ -n "${BARRIER:-}" ]; then
    i=0
    while [ "$n" -lt "$BARRIER" ] && [ "$(grep -c '^start ' "$d/events")" -lt "$N" ] \
            && [ $i -lt 50 ]; do
        sleep 0.1; i=$((i + 1)); n=$(ls -d "$d"/running.* | wc -l)
    done
    n2=$(ls -d "$d"/running.* | wc -l)
    [ "$n2" -gt "$n" ] && n=$n2
fi
echo "$n" >>"$d/seen.$PARLEY_SEQ"
rmdir "$d/running.$PARLEY_SEQ"
log "end $PARLEY_SEQ"
cat >/dev/null
EOF
chmod +x "$T/job"

# --- default: one at a time, in order -----------------------------------------
export JOBDIR=$T/seq
mkdir "$JOBDIR"
timeout 60 "$PARLEY" sub -v --since 1 -C $N -W 30 -- "$T/job" \
    >"$T/seq.out" 2>"$T/seq.err" || fail "parley sub (sequential) exited $?: $(cat "$T/seq.err")"
want=$(for i in $(seq $N); do echo "start $i"; echo "end $i"; done)
[ "$(cat "$JOBDIR/events")" = "$want" ] \
    || fail "commands did not run one at a time in seq order: $(tr '\n' ' ' <"$JOBDIR/events")"
grep -q "$N commands run, 0 failed" "$T/seq.err" || fail "no summary with -v: $(cat "$T/seq.err")"

# --- --exec-jobs 3: overlapping, never more than 3 -----------------------------
export JOBDIR=$T/par BARRIER=3 N
mkdir "$JOBDIR"
timeout 60 "$PARLEY" sub -v --since 1 -C $N -W 30 --exec-jobs 3 -- "$T/job" \
    >"$T/par.out" 2>"$T/par.err" || fail "parley sub --exec-jobs 3 exited $?: $(cat "$T/par.err")"
unset BARRIER
[ "$(grep -c '^end ' "$JOBDIR/events")" -eq $N ] || fail "not all $N commands ended: $(cat "$JOBDIR/events")"
max=$(cat "$JOBDIR"/seen.* | sort -n | tail -1)
[ "$max" -ge 2 ] || fail "with --exec-jobs 3 no two commands ever ran at once"
[ "$max" -le 3 ] || fail "with --exec-jobs 3, $max commands ran at once"
grep -q "$N commands run, 0 failed" "$T/par.err" || fail "no summary with -v: $(cat "$T/par.err")"

# --- failures: exit status, signal, timeout (with a child of the command) -----
cat >"$T/bad" <<'EOF'
#!/bin/sh
case $PARLEY_SEQ in
    1) exit 3 ;;
    2) kill -TERM $$ ;;
    3) sleep 30 & echo $! >"$BGPID"; wait ;;
esac
exit 0
EOF
chmod +x "$T/bad"
BGPID=$T/bg.pid timeout 60 "$PARLEY" sub -v --since 1 -C 4 -W 30 --exec-timeout 0.5 \
    -- "$T/bad" >"$T/bad.out" 2>"$T/bad.err"
rc=$?
PH_LOGS="$PH_LOGS $T/bad.err"
[ $rc -eq 0 ] || fail "failing commands made parley sub exit $rc"
grep -qx "parley: #1: $T/bad exited with status 3" "$T/bad.err" || fail "no line for #1"
grep -qx "parley: #2: $T/bad killed by signal 15" "$T/bad.err" || fail "no line for #2"
grep -qx "parley: #3: $T/bad killed after 0.500 s" "$T/bad.err" || fail "no line for #3"
! grep -q "#4:" "$T/bad.err" || fail "#4 succeeded but was reported"
grep -q "4 commands run, 3 failed" "$T/bad.err" || fail "failures not counted"
# The timeout killed the command's process group, its child too.
bg=$(cat "$T/bg.pid")
gone() {
    state=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
    [ -z "$state" ] || [ "$state" = Z ]
}
wait_until 5 gone "$bg" || { kill "$bg"; fail "the command's child (pid $bg) outlived the timeout"; }

# -q: counted, not reported.
BGPID=$T/bg2.pid timeout 60 "$PARLEY" sub -q --since 1 -C 2 -W 30 -- "$T/bad" \
    >/dev/null 2>"$T/badq.err"
[ ! -s "$T/badq.err" ] || fail "parley sub -q reported: $(cat "$T/badq.err")"

# --- bad values ------------------------------------------------------------------
for v in 0 65 x -1; do
    "$PARLEY" sub --exec-jobs "$v" -- true >/dev/null 2>&1
    [ $? -eq 1 ] || fail "--exec-jobs $v is not a usage error"
done

stop_parleyd
pass "commands run in order, in parallel up to --exec-jobs, failures reported and counted"
