#!/bin/sh
# Where one update's microseconds go: a quick bench_latency run under
# `perf record` (syscall and scheduler tracepoints of the bench, the relay
# and parleyd, nothing else), then bench/latency_trace.py's breakdown of
# each update's path, stage by stage, for the relay and for parleyd.
#
#   sh bench/latency_trace.sh BUILD_DIR [SYSTEMS] [PARLEYD]
#
# SYSTEMS is BENCH_LATENCY_SYSTEMS (default "relay off"); PARLEYD the
# daemon to run (default BUILD_DIR/parleyd), so that two builds can be
# traced in turn. Needs perf and the right to trace (root, or
# perf_event_paranoid <= -1). Tracing costs each traced system call a
# microsecond or two: compare stages with each other and with the
# relay's, traced the same way, not with untraced figures. Keeps its
# files in a temporary directory and prints where.
set -eu

BUILD=${1:-build}
SYSTEMS=${2:-relay off}
PARLEYD=${3:-$BUILD/parleyd}
HERE=$(dirname "$0")
OUT=$(mktemp -d "${TMPDIR:-/var/tmp}/latency-trace.XXXXXX")

command -v perf >/dev/null 2>&1 || { echo "latency_trace: no perf" >&2; exit 2; }
BENCH_LATENCY_SYSTEMS="$SYSTEMS" perf record -q -m 16M -o "$OUT/perf.data" \
    -e syscalls:sys_enter_write -e syscalls:sys_enter_pwrite64 \
    -e syscalls:sys_enter_sendto -e syscalls:sys_exit_sendto \
    -e syscalls:sys_exit_recvfrom -e syscalls:sys_exit_poll \
    -e syscalls:sys_exit_ppoll -e syscalls:sys_exit_epoll_wait \
    -e sched:sched_switch -e sched:sched_wakeup \
    -- "$BUILD/bench/bench_latency" --quick --parleyd "$PARLEYD" \
    > "$OUT/bench.txt" 2>&1
grep -E "relay \(|parley fsync" "$OUT/bench.txt" || true
perf script -i "$OUT/perf.data" -F comm,pid,tid,cpu,time,event,trace \
    > "$OUT/perf.script" 2>/dev/null
python3 "$HERE/latency_trace.py" "$OUT/perf.script"
echo "latency_trace: files in $OUT"
