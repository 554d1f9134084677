#!/bin/sh
# run.sh - what `make run` starts, in the foreground:
#
#   parleyd         on the embedded default: state in STATE_DIR, api on
#                   API (tcp://127.0.0.1:7710), feed on FEED
#                   (tcp://127.0.0.1:7711) (on its first start it makes
#                   a demo key and keyring there)
#   parley-gateway  on LISTEN (127.0.0.1:7780): the status board and the
#                   HTTP API, trusting STATE_DIR/keyring
#
#   sh scripts/run.sh BUILD_DIR STATE_DIR [LISTEN [API [FEED]]]
#
# Ctrl-C (or SIGTERM) stops both; if either stops, so does the other.
set -u
build=$1
state=$2
listen=${3:-127.0.0.1:7780}
api=${4:-tcp://127.0.0.1:7710}
feed=${5:-tcp://127.0.0.1:7711}
mkdir -p -m 700 "$state" || exit 1
# parley ping and parley-gateway below talk to this parleyd
PARLEY_SERVER=$api
export PARLEY_SERVER

"$build/parleyd" --state-dir "$state" --api "$api" --feed "$feed" &
pd=$!
gw=
stop() {
    kill -TERM $pd $gw 2>/dev/null
    wait $pd $gw 2>/dev/null
    exit 0
}
trap stop INT TERM

# The keyring exists once parleyd has started (it makes the demo one).
i=0
while [ ! -f "$state/keyring" ] || ! "$build/parley" ping -q --timeout 1 >/dev/null 2>&1; do
    kill -0 $pd 2>/dev/null || { wait $pd; exit $?; }
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "run.sh: parleyd did not come up" >&2; stop; }
    sleep 0.1
done

"$build/parley-gateway" --keyring "$state/keyring" --listen "$listen" &
gw=$!
echo "parley-gateway: the status board is at http://$listen/ (API under /v1/)"

# Whichever ends first ends the other.
while kill -0 $pd 2>/dev/null && kill -0 $gw 2>/dev/null; do
    sleep 0.5
done
stop
