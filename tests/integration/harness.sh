# harness.sh - helpers for the shell integration tests; source it.
#
# Needs PARLEYD, PARLEY and PARLEY_SOURCE_DIR in the environment (ctest
# sets them). Makes a temporary directory $T that is removed on exit, and
# stops by pid every daemon and background process started through these
# helpers. Uses bash and python3 (for free ports and JSON checks).

set -u

: "${PARLEYD:?PARLEYD must name the parleyd binary}"
: "${PARLEY:?PARLEY must name the parley binary}"
: "${PARLEY_SOURCE_DIR:?PARLEY_SOURCE_DIR must name the source tree}"

# Python reads and prints UTF-8 whatever the locale of the test run.
export PYTHONUTF8=1

T=$(mktemp -d "${TMPDIR:-/tmp}/parley-it-XXXXXX") || exit 1
PH_PIDS=""      # background processes to kill at exit
PH_LOGS=""      # files to show when a check fails

ph_cleanup() {
    for pid in $PH_PIDS; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    rm -rf "$T"
}
trap ph_cleanup EXIT

ph_show_logs() {
    for f in $PH_LOGS; do
        echo "----- $f -----" >&2
        cat "$f" >&2 2>/dev/null
        echo "----- end of $f -----" >&2
    done
}

# fail MESSAGE: report, show logs, exit 1.
fail() {
    echo "FAIL: $*" >&2
    ph_show_logs
    exit 1
}

# skip MESSAGE: the test cannot run here (ctest shows it as passed).
skip() {
    echo "SKIP: $*" >&2
    exit 0
}

pass() {
    echo "PASS: $*"
}

[ -x "$PARLEYD" ] || fail "PARLEYD=$PARLEYD is not an executable (build parleyd first)"
[ -x "$PARLEY" ] || fail "PARLEY=$PARLEY is not an executable (build parley first)"

# free_port: print a loopback TCP port that is free right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# port_free PORT: true if 127.0.0.1:PORT can be bound now.
port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
s.close()
EOF
}

# wait_ping API SECONDS: wait until `parley ping` answers on API.
wait_ping() {
    local api=$1 secs=$2 i
    for i in $(seq $((secs * 10))); do
        if timeout 5 "$PARLEY" ping -s "$api" >/dev/null 2>&1; then
            return 0
        fi
        if [ -n "${DAEMON_PID:-}" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# start_parleyd DIR [ARGS...]: start parleyd on free ports with state in
# DIR/state and its log in DIR/parleyd.log; sets API, FEED, FEED_PORT,
# DAEMON_PID, DAEMON_LOG, STATE. Extra ARGS are passed through.
start_parleyd() {
    local dir=$1
    shift
    mkdir -p "$dir"
    STATE=$dir/state
    DAEMON_LOG=$dir/parleyd.log
    PH_LOGS="$PH_LOGS $DAEMON_LOG"
    local api_port feed_port
    api_port=$(free_port)
    feed_port=$(free_port)
    while [ "$feed_port" = "$api_port" ]; do feed_port=$(free_port); done
    API=tcp://127.0.0.1:$api_port
    FEED=tcp://127.0.0.1:$feed_port
    FEED_PORT=$feed_port
    "$PARLEYD" --api "$API" --feed "$FEED" --state-dir "$STATE" "$@" \
        >>"$DAEMON_LOG" 2>&1 </dev/null &
    DAEMON_PID=$!
    PH_PIDS="$PH_PIDS $DAEMON_PID"
    wait_ping "$API" 10 || fail "parleyd did not answer ping on $API"
}

# stop_parleyd: SIGTERM the daemon; it must exit 0 within 10 s.
stop_parleyd() {
    local i status
    kill -TERM "$DAEMON_PID" || fail "parleyd (pid $DAEMON_PID) is not running"
    for i in $(seq 100); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID"
        fail "parleyd ignored SIGTERM for 10 s"
    fi
    wait "$DAEMON_PID"
    status=$?
    [ "$status" -eq 0 ] || fail "parleyd exited with status $status after SIGTERM"
}

# wait_exit PID SECONDS: wait for a background job; sets EXIT_STATUS.
# Fails if it is still running after SECONDS (and kills it).
wait_exit() {
    local pid=$1 secs=$2 i
    for i in $(seq $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        fail "process $pid still running after $secs s"
    fi
    wait "$pid"
    EXIT_STATUS=$?
}

# wait_until SECONDS CMD [ARGS...]: run CMD every 0.1 s until it
# succeeds; false if it has not after SECONDS.
wait_until() {
    local secs=$1 i
    shift
    for i in $(seq $((secs * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

# wait_feed_live TOPICS [SECONDS]: wait until the daemon started by
# start_parleyd has granted at least TOPICS feed topics and a heartbeat
# has gone out after them, so a live subscriber holding them is live
# (ph_wait_feed_live() in harness.c).
wait_feed_live() {
    [ -x "${PH_FEEDWAIT:-}" ] || fail "PH_FEEDWAIT=${PH_FEEDWAIT:-} is not an executable (build ph_feedwait)"
    "$PH_FEEDWAIT" "$API" "$FEED" "$1" "${2:-10}"
}

# wait_connected PID PORT SECONDS: wait until PID holds an established TCP
# connection to 127.0.0.1:PORT (a subscriber's connection to the feed).
wait_connected() {
    python3 - "$1" "$2" "$3" <<'EOF'
import os, sys, time
pid, port, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.time() + secs
while time.time() < deadline:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            pass
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        sys.exit(2)
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
EOF
}

# make_key NAME: `parley keygen -o $T/NAME`, and a keyring line trusting it
# for everything appended to $T/keyring.
make_key() {
    local name=$1 out
    out=$("$PARLEY" keygen -o "$T/$name" 2>&1) || fail "parley keygen -o $T/$name: $out"
    [ -f "$T/$name" ] && [ -f "$T/$name.pub" ] || fail "keygen wrote no $T/$name(.pub)"
    local mode
    mode=$(stat -c %a "$T/$name")
    [ "$mode" = 600 ] || fail "secret key $T/$name has mode $mode, expected 600"
    echo "$name $(cut -d' ' -f1 "$T/$name.pub") negotiations=* parties=* phases=*" >>"$T/keyring"
}

# start_hook DIR MODE [ARG]: start tests/integration/hook_receiver.py (a
# web hook on a free loopback port that logs each request to DIR/hook.log
# and answers as MODE says: ok, fail-for SECONDS, fail-always, slow MS);
# sets HOOK_URL (http://127.0.0.1:PORT) and HOOK_PID.
start_hook() {
    local dir=$1
    shift
    mkdir -p "$dir"
    python3 "$PARLEY_SOURCE_DIR/tests/integration/hook_receiver.py" "$dir" "$@" \
        >"$dir/hook.out" 2>&1 &
    HOOK_PID=$!
    PH_PIDS="$PH_PIDS $HOOK_PID"
    PH_LOGS="$PH_LOGS $dir/hook.out"
    for _ in $(seq 100); do [ -f "$dir/hook.port" ] && break; sleep 0.1; done
    [ -f "$dir/hook.port" ] || fail "the test web hook did not start"
    HOOK_URL=http://127.0.0.1:$(cat "$dir/hook.port")
}

# hook_ok_count DIR: how many requests the hook answered 2xx.
hook_ok_count() {
    python3 - "$1/hook.log" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
except OSError:
    lines = []
print(sum(1 for l in lines if l and 200 <= json.loads(l)["status"] < 300))
PY
}

# wait_hook_ok DIR N SECONDS: wait until the hook answered N requests 2xx.
wait_hook_ok() {
    local i
    for i in $(seq $(($3 * 10))); do
        [ "$(hook_ok_count "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# publish_n KEY N NEGOTIATION: publish N updates (headline "update I") in
# one parley pub --json run; prints nothing, fails the test on an error.
publish_n() {
    python3 - "$2" "$3" <<'PY' >"$T/publish_n.jsonl"
import json, sys
for i in range(1, int(sys.argv[1]) + 1):
    print(json.dumps({"negotiation": sys.argv[2], "parties": ["hamas", "israel"],
                      "phase": 1, "status": "talks_in_progress",
                      "headline": "update %d" % i}))
PY
    "$PARLEY" pub -q -k "$1" --json <"$T/publish_n.jsonl" >/dev/null 2>"$T/publish_n.err" \
        || fail "publishing $2 updates failed: $(cat "$T/publish_n.err")"
}

# daemon_id API: the daemon's id, as Idempotency-Key carries it.
daemon_id() {
    "$PARLEY" ping -s "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon_id"])'
}
