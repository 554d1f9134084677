# test_start_cluster.sh - examples/cluster/start-cluster.sh run in the
# background stops everything it started when it gets SIGTERM: once it
# says the cluster is up, and while it is still starting (each parleyd
# then still connecting). Each parleyd must have been stopped by that
# SIGTERM (its log says so) while its servers still ran, and no process
# of the script may be left once it has exited.
. "$(dirname "$0")/harness.sh"

SCRIPT=$PARLEY_SOURCE_DIR/examples/cluster/start-cluster.sh
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] \
    || skip "nats-server is not installed"

# A PORT_BASE whose 12 ports (NATS clients and routes, api, feed) are free,
# all below Linux's ephemeral range (32768 and up): the ports other tests
# running meanwhile get from bind() to port 0, or their outgoing
# connections use, cannot take them between this check and the bind.
base=""
for _ in $(seq 20); do
    b=$(( (RANDOM % 140) * 100 + 1000 ))
    ok=1
    for p in 14222 14223 14224 16222 16223 16224 17710 17711 17720 17721 \
             17730 17731; do
        port_free $((p + b)) || { ok=0; break; }
    done
    [ $ok -eq 1 ] && { base=$b; break; }
done
[ -n "$base" ] || skip "no free set of ports for the cluster"

# The script's nats-server and parleyd children (pids), comma-free list.
children() {
    local pid=$1 c
    for c in $(pgrep -P "$pid"); do
        case $(cat /proc/$c/comm 2>/dev/null) in
        nats-server | parleyd) echo "$c" ;;
        esac
    done
}

# run NAME WHEN: start the script in DIR $T/NAME, SIGTERM it WHEN
# ("starting": as soon as its six processes exist; "ready": once it says
# the cluster is up), then check that everything stopped as it should.
run() {
    local name=$1 when=$2 dir=$T/$1 out=$T/$1.out pid kids n i
    PH_LOGS="$out $dir/p1/parleyd.log $dir/p2/parleyd.log $dir/p3/parleyd.log"
    PARLEYD=$PARLEYD PARLEY=$PARLEY PORT_BASE=$base \
        sh "$SCRIPT" "$dir" >"$out" 2>&1 &
    pid=$!
    PH_PIDS="$PH_PIDS $pid"
    kids=""
    for i in $(seq 600); do
        kids=$(children "$pid")
        n=$(echo "$kids" | grep -c .)
        if [ "$when" = starting ] && [ "$n" -eq 6 ]; then
            break
        fi
        if [ "$when" = ready ] && grep -q 'are running' "$out"; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || fail "$name: the script exited early"
        sleep 0.1
    done
    [ "$(echo "$kids" | grep -c .)" -eq 6 ] \
        || fail "$name: the script has $(echo "$kids" | grep -c .) of its 6 processes"
    if [ "$when" = ready ]; then
        # One log, one log id: each node takes the stream's creation time
        # from the stream leader, not from a replica still making its
        # copy (which reported its own clock in 2.9.10, and the node then
        # stopped as "made again"). A race: before that fix about one
        # start in four showed it.
        local ids="" id
        for i in 0 1 2; do
            id=$("$PARLEY" ping -s "tcp://127.0.0.1:$((17710 + base + 10 * i))" \
                 2>&1 | awk '$1 == "log_id" { print $2 }')
            [ -n "$id" ] || fail "$name: parleyd p$((i + 1)) gave no log id"
            ids="$ids$id
"
        done
        [ "$(printf '%s' "$ids" | sort -u | grep -c .)" -eq 1 ] \
            || fail "$name: the nodes give different log ids: $(echo $ids)"
    fi
    kill -TERM "$pid"
    # The script's guard kills what is left after 20 s.
    wait_exit "$pid" 60
    [ "$EXIT_STATUS" -eq 0 ] || fail "$name: the script exited $EXIT_STATUS"
    for k in $kids; do
        if kill -0 "$k" 2>/dev/null; then
            kill -KILL "$k" 2>/dev/null
            fail "$name: process $k is still running after the script exited"
        fi
    done
    for i in 1 2 3; do
        grep -q 'SIGTERM: stopping' "$dir/p$i/parleyd.log" \
            || fail "$name: parleyd p$i was not stopped by SIGTERM"
        ! grep -q 'did not serve stream' "$dir/p$i/parleyd.log" \
            || fail "$name: parleyd p$i lost its servers before it stopped"
    done
    pass "$name: SIGTERM ($when) stopped the 3 nats-server and 3 parleyd"
}

run starting starting
run ready ready
