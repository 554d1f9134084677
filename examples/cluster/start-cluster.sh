#!/bin/sh
# Start a parley cluster on loopback to try: 3 nats-server (JetStream,
# one R3 stream) and 3 parleyd in cluster mode, one per server.
#
# usage: start-cluster.sh [DIR]
#
#   DIR  where the servers and daemons keep their state and logs
#        (default ./parley-cluster; made if missing, reused if there)
#
# Ports: NATS clients 14222-14224, NATS routes 16222-16224, parleyd api
# 17710/17720/17730 and feed 17711/17721/17731 (PORT_BASE=N moves them
# all by N). Everything listens on 127.0.0.1 only.
#
# The tools are $PARLEYD and $PARLEY if set, else build/parleyd and
# build/parley of this source tree, else parleyd and parley from PATH;
# nats-server from PATH or /usr/sbin. The script prints what to try,
# then waits; Ctrl-C or SIGTERM (also in the background, also while it
# starts) stops the six processes it started, by pid: the parleyd first,
# then the servers they use, and SIGKILL for any left after 20 s.
# Exit status: 0 after a clean stop, 1 if something did not start.
set -eu

usage() {
    echo "usage: $0 [DIR]"
    echo "start 3 nats-server and 3 parleyd in cluster mode on loopback"
}

case ${1:-} in
-h|--help) usage; exit 0 ;;
esac
if [ $# -gt 1 ]; then
    usage >&2
    exit 1
fi

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
dir=${1:-./parley-cluster}
base=${PORT_BASE:-0}

find_tool() { # VAR-VALUE NAME
    if [ -n "$1" ]; then
        echo "$1"
    elif [ -x "$here/../../build/$2" ]; then
        echo "$here/../../build/$2"
    else
        command -v "$2" || true
    fi
}
parleyd=$(find_tool "${PARLEYD:-}" parleyd)
parley=$(find_tool "${PARLEY:-}" parley)
nats=$(command -v nats-server || true)
[ -n "$nats" ] || [ ! -x /usr/sbin/nats-server ] || nats=/usr/sbin/nats-server
for t in "$parleyd" "$parley" "$nats"; do
    if [ -z "$t" ]; then
        echo "$0: parleyd, parley or nats-server not found (make build;" \
             "apt-get install nats-server)" >&2
        exit 1
    fi
done

mkdir -p "$dir"
chmod 700 "$dir"
dir=$(CDPATH='' cd -- "$dir" && pwd)
npids="" # the nats-servers started
dpids="" # the parleyd started
# Stop them by pid: each parleyd while its servers still answer (one that
# is still connecting then stops as soon as it can), then the servers. A
# guard sends SIGKILL to whatever is left after 20 s (a daemon stuck
# connecting to a server that went away).
stop() {
    d=$dpids n=$npids
    dpids="" npids=""
    [ -n "$d$n" ] || return 0
    ( sleep 20 & s=$!
      trap 'kill "$s" 2>/dev/null; exit 0' TERM
      wait "$s"
      kill -9 $d $n 2>/dev/null ) &
    guard=$!
    for p in $d; do kill "$p" 2>/dev/null || true; done
    for p in $d; do wait "$p" 2>/dev/null || true; done
    for p in $n; do kill "$p" 2>/dev/null || true; done
    for p in $n; do wait "$p" 2>/dev/null || true; done
    kill "$guard" 2>/dev/null || true
    wait "$guard" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap 'stop' EXIT

# One signing key for the demo, trusted by every node's keyring (the
# nodes of one cluster must share their keyring).
if [ ! -f "$dir/demo.key" ]; then
    "$parley" keygen -o "$dir/demo.key" --comment "cluster demo" \
        | sed -n 's/^\(demo [^ ]* .*\)$/\1/p' > "$dir/keyring.tmp"
    mv "$dir/keyring.tmp" "$dir/keyring"
fi
chmod 600 "$dir/keyring"

servers=""
for i in 1 2 3; do
    port=$((14221 + i + base))
    servers="$servers${servers:+,}nats://127.0.0.1:$port"
done

for i in 1 2 3; do
    mkdir -p "$dir/n$i/jetstream"
    routes=""
    for j in 1 2 3; do
        [ "$j" = "$i" ] || routes="$routes    nats-route://127.0.0.1:$((16221 + j + base))
"
    done
    cat > "$dir/n$i/nats.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$((14221 + i + base))
jetstream { store_dir: "$dir/n$i/jetstream" }
cluster {
  name: parley-demo
  listen: 127.0.0.1:$((16221 + i + base))
  routes: [
$routes  ]
}
EOF
    "$nats" -c "$dir/n$i/nats.conf" >> "$dir/n$i/nats.log" 2>&1 &
    npids="$npids $!"
done

for i in 1 2 3; do
    api=tcp://127.0.0.1:$((17700 + 10 * i + base))
    feed=tcp://127.0.0.1:$((17701 + 10 * i + base))
    mkdir -p "$dir/p$i/state"
    chmod 700 "$dir/p$i" "$dir/p$i/state"
    # Each parleyd lists its own server first.
    list=""
    for k in 0 1 2; do
        j=$(( (i - 1 + k) % 3 + 1 ))
        list="$list${list:+,}nats://127.0.0.1:$((14221 + j + base))"
    done
    cat > "$dir/p$i/parleyd.conf" <<EOF
api       $api
feed      $feed
state_dir $dir/p$i/state
keyring   $dir/keyring
backbone  $list
backbone_stream   PARLEY
backbone_replicas 3
EOF
    chmod 600 "$dir/p$i/parleyd.conf"
    "$parleyd" -c "$dir/p$i/parleyd.conf" >> "$dir/p$i/parleyd.log" 2>&1 &
    dpids="$dpids $!"
done

apis=tcp://127.0.0.1:$((17710 + base)),tcp://127.0.0.1:$((17720 + base))
apis=$apis,tcp://127.0.0.1:$((17730 + base))

# Ready once every node answers a ping (parleyd waits for the stream).
tries=0
for i in 1 2 3; do
    until "$parley" ping -s "tcp://127.0.0.1:$((17700 + 10 * i + base))" \
            --timeout 1 > /dev/null 2>&1; do
        tries=$((tries + 1))
        if [ $tries -gt 60 ]; then
            echo "$0: parleyd p$i did not answer within a minute;" \
                 "see $dir/p$i/parleyd.log and $dir/n*/nats.log" >&2
            exit 1
        fi
        sleep 1
    done
done

cat <<EOF
3 nats-server ($servers)
and 3 parleyd are running; state and logs in $dir.

Try, in another terminal:

  export PARLEY_SERVER=$apis
  $parley ping                       # storage cluster, its log id
  $parley sub --last                 # follows whichever node answers
  $here/../publish-demo.sh $dir/demo.key
  kill -9 <pid of one parleyd>       # the subscriber moves on, no gap

The pids: nats-server$npids, parleyd$dpids
Ctrl-C here (or SIGTERM to $$) stops them all.
EOF
while :; do
    sleep 1
done
