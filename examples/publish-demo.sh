#!/bin/sh
# Publish the cease-fire demo feed (ceasefire.jsonl beside this script).
#
# usage: publish-demo.sh KEYFILE [SERVER]
#
#   KEYFILE  secret key of a signer the daemon's keyring trusts for
#            negotiation gaza-ceasefire (`make run` creates
#            parley-data/demo.key for this)
#   SERVER   api endpoint of parleyd (default: $PARLEY_SERVER, else
#            tcp://127.0.0.1:7710)
#
# The tool used is $PARLEY if set, else build/parley of this source tree,
# else `parley` from PATH. Standard output is that of `parley pub`: the
# seq of each accepted update, one per line. The exit status is that of
# `parley pub` for its last failed line (0 all accepted, 1 a bad line,
# 2 rejected, 3 no answer, 4 key problem), or 5 if no parley was found.
set -eu

usage() {
    echo "usage: $0 KEYFILE [SERVER]"
    echo "publish examples/ceasefire.jsonl, signed with KEYFILE, to parleyd"
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    usage >&2
    exit 1
fi
case $1 in
-h|--help) usage; exit 0 ;;
esac

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
feed=$here/ceasefire.jsonl

if [ -n "${PARLEY:-}" ]; then
    tool=$PARLEY
elif [ -x "$here/../build/parley" ]; then
    tool=$here/../build/parley
elif tool=$(command -v parley); then
    :
else
    echo "$0: parley not found: run 'make build' or put it on PATH" >&2
    exit 5
fi

if [ $# -eq 2 ]; then
    set -- -s "$2" -k "$1"
else
    set -- -k "$1"
fi

echo "publishing $(grep -c . "$feed") updates from $feed" >&2
exec "$tool" pub "$@" --json < "$feed"
