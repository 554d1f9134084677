#!/bin/sh
# Run every parley benchmark in turn and print their results.
#
#   sh bench/run.sh BUILD_DIR          full run (about 15 minutes, 4-5 of them
#                                      the cluster bench)
#   QUICK=1 sh bench/run.sh BUILD_DIR  smoke run (well under a minute each)
#   BENCH_ONLY=soak sh bench/run.sh BUILD_DIR
#                                      the 10-minute soak with faults
#                                      (bench_soak; 60 s with QUICK=1),
#                                      not part of the default list
#   BENCH_ONLY=ingest_callgrind sh bench/run.sh BUILD_DIR
#                                      parleyd's instructions per update
#                                      against one verify, under valgrind
#                                      (bench_ingest --callgrind; in the
#                                      default list, ~10 s)
#   BENCH_ONLY=subscriber_callgrind sh bench/run.sh BUILD_DIR
#                                      a parley_sub_t's instructions per
#                                      delivery against one verify, under
#                                      valgrind (bench_subscriber
#                                      --callgrind; in the default list)
#
# Called by `make bench` after the bench target is built. When run as root
# it installs the peer brokers and client libraries the comparisons need
# (Debian: mosquitto, libmosquitto-dev, nats-server, libnats-dev) if they
# are missing, and rebuilds the bench programs when a client library was
# added. Without them the peer comparisons are reported as skipped.
#
# Environment: QUICK=1 (short runs), BENCH_ONLY="ingest fanout ..." (a
# subset), BENCH_KEEP=1 (keep the temporary directories), TMPDIR (where
# logs and temp state go; default /var/tmp, which must not be tmpfs for
# the fdatasync figures to mean anything).
set -u

BUILD=${1:-build}
QUICK=${QUICK:-0}
ONLY=${BENCH_ONLY:-ingest ingest_callgrind fanout subscriber subscriber_callgrind latency memory recovery hostile gateway tlog cluster_raw cluster}
JOBS=${JOBS:-2}

if [ ! -d "$BUILD" ]; then
    echo "bench/run.sh: no build directory '$BUILD'" >&2
    exit 2
fi

# --- peers -------------------------------------------------------------
missing=""
for pkg in mosquitto libmosquitto-dev nats-server libnats-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bench/run.sh: installing peer packages:$missing"
        # shellcheck disable=SC2086
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing \
                >/dev/null 2>&1; then
            apt-get update -q >/dev/null 2>&1
            # shellcheck disable=SC2086
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing \
                >/dev/null 2>&1 ||
                echo "bench/run.sh: could not install$missing; peers skipped"
        fi
        # A client library that arrived now needs a reconfigure and rebuild.
        case "$missing" in
        *-dev*)
            cmake "$BUILD" >/dev/null &&
                cmake --build "$BUILD" -j"$JOBS" --target bench >/dev/null ||
                echo "bench/run.sh: rebuild with the peer libraries failed"
            ;;
        esac
    else
        echo "bench/run.sh: missing$missing (not root): those peers are skipped"
    fi
fi

# --- conditions ----------------------------------------------------------
flag=""
limit=300
[ "$QUICK" = 1 ] && flag="--quick" && limit=120
tmp=${TMPDIR:-/var/tmp}
echo "parley benchmarks - $(date -u '+%Y-%m-%d %H:%M UTC') - $([ "$QUICK" = 1 ] && echo quick || echo full) run"
echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)),"\
     "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo),"\
     "kernel $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" \
     "(other work on this machine skews every figure below)"
echo "temp dir: $tmp ($(df -T "$tmp" 2>/dev/null | awk 'NR==2 {print $2}'))"
echo "peers: mosquitto $(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null || echo absent)," \
     "nats-server $(dpkg-query -W -f='${Version}' nats-server 2>/dev/null || echo absent)," \
     "libzmq $(pkg-config --modversion libzmq 2>/dev/null || echo '?')," \
     "libsodium $(pkg-config --modversion libsodium 2>/dev/null || echo '?')"

# --- programs ------------------------------------------------------------
failed=""
for name in $ONLY; do
    prog="$BUILD/bench/bench_$name"
    mode=""
    # A mode of another program: bench_<program>_<mode> runs
    # bench_<program> --<mode>.
    case "$name" in
    ingest_callgrind | subscriber_callgrind)
        prog="$BUILD/bench/bench_${name%_callgrind}"
        mode="--callgrind"
        if ! command -v valgrind >/dev/null 2>&1; then
            echo
            echo "== bench_$name: skipped (valgrind is not installed)"
            continue
        fi
        ;;
    esac
    if [ ! -x "$prog" ]; then
        echo
        echo "== bench_$name: not built (cmake --build $BUILD --target bench)"
        failed="$failed $name"
        continue
    fi
    start=$(date +%s)
    lim=$limit
    [ "$name" = soak ] && [ "$QUICK" != 1 ] && lim=900
    # A full cluster run pushes 384,000 updates through JetStream at a few
    # thousand a second before its latency, fan-out and fail-over parts.
    [ "$name" = cluster ] && [ "$QUICK" != 1 ] && lim=900
    # A hung peer client or daemon must not hang `make bench`; the
    # program's children (parleyd, brokers) die with it.
    # shellcheck disable=SC2086
    timeout --kill-after=10 "$lim" "$prog" $flag $mode --parleyd "$BUILD/parleyd"
    rc=$?
    [ $rc -eq 124 ] && echo "   bench_$name: TIMED OUT after $lim s"
    echo "   (bench_$name: exit $rc, $(($(date +%s) - start)) s)"
    [ $rc -eq 0 ] || failed="$failed $name"
done

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$failed" ]; then
    echo "bench/run.sh: did not complete:$failed"
    exit 1
fi
exit 0
