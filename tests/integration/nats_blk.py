#!/usr/bin/env python3
"""nats_blk.py - read a stream's records from nats-server stores.

For a developer looking at a cluster test that failed (docs/cluster.md,
"Replicas that disagree"): what each JetStream server stored, read from
its files after the servers have stopped, not through any server.

    nats_blk.py STREAM STORE...          every record of the first store
    nats_blk.py --diff STREAM STORE...   the seqs where the stores differ

STORE is a server's JetStream store directory (the harness's
DIR/n1/store). The message block files of nats-server 2.9
(jetstream/$G/streams/STREAM/msgs/N.blk) hold records of

    u32 length (high bit: has headers), u64 seq (high bit: erased),
    i64 store time (ns), u16 subject length, subject,
    [u32 header length, headers], payload, 8-byte checksum.

Each record is printed as: seq, store time (unix ms), subject, payload
bytes, the first 12 hex digits of the payload's SHA-256, and the block
file it is in.
"""
import glob
import hashlib
import os
import struct
import sys

HDR_BIT = 1 << 31
ERASED_BIT = 1 << 63


def records(store, stream):
    """{seq: (time_ms, subject, payload, block name)} of one store."""
    out = {}
    d = os.path.join(store, "jetstream", "$G", "streams", stream, "msgs")
    blocks = sorted(glob.glob(os.path.join(d, "*.blk")),
                    key=lambda p: int(os.path.basename(p).split(".")[0]))
    for path in blocks:
        with open(path, "rb") as f:
            b = f.read()
        off = 0
        while off + 22 <= len(b):
            rl, seq, ts, sl = struct.unpack_from("<IQqH", b, off)
            has_hdr = rl & HDR_BIT
            rl &= ~HDR_BIT
            if rl < 22 + 8 or off + rl > len(b):
                break  # a torn tail or padding
            subject = b[off + 22:off + 22 + sl].decode(errors="replace")
            rest = b[off + 22 + sl:off + rl - 8]
            if has_hdr:
                hl, = struct.unpack_from("<I", rest, 0)
                rest = rest[4 + hl:]
            if not seq & ERASED_BIT and seq != 0:
                out[seq] = (ts // 1000000, subject, rest,
                            os.path.basename(path))
            off += rl
    return out


def line(seq, r):
    if r is None:
        return "%d -" % seq
    ms, subject, payload, block = r
    return "%d %d %s %d %s %s" % (seq, ms, subject, len(payload),
                                  hashlib.sha256(payload).hexdigest()[:12],
                                  block)


def main(argv):
    diff = len(argv) > 1 and argv[1] == "--diff"
    args = argv[2:] if diff else argv[1:]
    if len(args) < 2:
        sys.stderr.write(__doc__)
        return 2
    stream, stores = args[0], args[1:]
    recs = [records(s, stream) for s in stores]
    for s, r in zip(stores, recs):
        print("# %s: %d records" % (s, len(r)))
    if not diff:
        for seq in sorted(recs[0]):
            print(line(seq, recs[0][seq]))
        return 0
    seqs = sorted(set().union(*[set(r) for r in recs]))
    differ = 0
    for seq in seqs:
        got = [r.get(seq) for r in recs]
        keys = [(g[0], g[1], g[2]) if g else None for g in got]
        if any(k != keys[0] for k in keys):
            differ += 1
            print(" | ".join(line(seq, g) for g in got))
    print("# %d seqs differ" % differ)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
