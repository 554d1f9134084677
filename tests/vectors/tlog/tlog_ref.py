#!/usr/bin/env python3
"""RFC 9162 reference for parley's Merkle tree, and the check that ties
three implementations together (README.md):

    tlog_ref.py --print                 print the tree vectors from this file
    tlog_ref.py --check PROGRAM DIGEST  run PROGRAM (tlog_dump, libparley's
                                        tree) and require its output to be
                                        byte for byte this file's, and this
                                        file's to hash to DIGEST (the SHA-256
                                        of what gen_tlog.go printed with Go's
                                        sumdb/tlog)

Everything here follows the text of RFC 9162 section 2.1 directly: MTH,
PATH and PROOF/SUBPROOF by their recursive definitions, and the two
verification procedures of 2.1.3.2 and 2.1.4.2 step by step. Every proof
is also verified, and verification must fail once any hash is damaged.
Uses nothing outside the Python standard library.
"""
import hashlib
import subprocess
import sys

ROOTS_UP_TO = 2000
PAIRS = 10000
MAX_LEAVES = 100000
PRNG_SEED = 0x7061726C6579  # "parley"
MASK = (1 << 64) - 1


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(record):
    return sha256(b"\x00" + record)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def record(i):
    return b"record %d" % i


class Tree:
    """D[0:n] for n up to MAX_LEAVES, with MTH memoised per leaf range."""

    def __init__(self, n):
        self.leaves = [leaf_hash(record(i)) for i in range(n)]
        self.memo = {}

    def mth(self, lo, hi):
        """MTH(D[lo:hi]) (2.1.1): k is the largest power of two below n."""
        n = hi - lo
        if n == 1:
            return self.leaves[lo]
        key = (lo, hi)
        if key not in self.memo:
            k = 1
            while k * 2 < n:
                k *= 2
            self.memo[key] = node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
        return self.memo[key]

    def path(self, m, lo, hi):
        """PATH(m, D[lo:hi]) (2.1.3.1), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m, lo, hi, b):
        """SUBPROOF(m, D[lo:hi], b) (2.1.4.1)."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

    def proof(self, m, n):
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
        return self.subproof(m, 0, n, True)


def verify_inclusion(leaf_index, tree_size, leaf, root, inclusion_path):
    """RFC 9162 2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in inclusion_path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, consistency_path):
    """RFC 9162 2.1.4.2, step by step (for 0 < first < second)."""
    if not consistency_path:
        return False
    path = list(consistency_path)
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_hash and sr == second_hash


class SplitMix64:
    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def fmt(hashes):
    return ",".join(h.hex() for h in hashes) if hashes else "-"


def damaged(path, i):
    """path with one bit of hash i flipped."""
    h = bytearray(path[i])
    h[i % 32] ^= 1 << (i % 8)
    return path[:i] + [bytes(h)] + path[i + 1:]


def vectors():
    """The vector lines, each proof verified (and refused once damaged)."""
    tree = Tree(MAX_LEAVES)
    out = ['# parley tlog vectors v1: records "record <i>", splitmix64 seed %d'
           % PRNG_SEED]
    for n in range(1, ROOTS_UP_TO + 1):
        out.append("root %d %s" % (n, tree.mth(0, n).hex()))
    rng = SplitMix64(PRNG_SEED)
    for _ in range(PAIRS):
        n = 1 + rng.next() % MAX_LEAVES
        i = rng.next() % n
        path = tree.path(i, 0, n)
        root = tree.mth(0, n)
        assert verify_inclusion(i, n, tree.leaves[i], root, path), (i, n)
        for j in range(len(path)):
            assert not verify_inclusion(i, n, tree.leaves[i], root, damaged(path, j))
        assert not verify_inclusion(i, n, tree.leaves[i], root, path + [root])
        out.append("inclusion %d %d %s" % (i, n, fmt(path)))
    for _ in range(PAIRS):
        n = 1 + rng.next() % MAX_LEAVES
        m = 1 + rng.next() % n
        path = tree.proof(m, n)
        old, new = tree.mth(0, m), tree.mth(0, n)
        if m < n:
            assert verify_consistency(m, n, old, new, path), (m, n)
            for j in range(len(path)):
                assert not verify_consistency(m, n, old, new, damaged(path, j))
            assert not verify_consistency(m, n, old, new, path[:-1])
        else:
            assert path == []
        out.append("consistency %d %d %s" % (m, n, fmt(path)))
    return "".join(line + "\n" for line in out).encode()


def main(argv):
    if argv[1:] == ["--print"]:
        sys.stdout.buffer.write(vectors())
        return 0
    if len(argv) != 4 or argv[1] != "--check":
        print(__doc__, file=sys.stderr)
        return 2
    program, digest_file = argv[2], argv[3]
    with open(digest_file) as f:
        want_digest = f.read().split()[0]
    ours = vectors()
    ours_digest = hashlib.sha256(ours).hexdigest()
    if ours_digest != want_digest:
        print("tlog_ref: this reference's vectors hash to %s, Go's to %s"
              % (ours_digest, want_digest), file=sys.stderr)
        return 1
    theirs = subprocess.run([program], stdout=subprocess.PIPE, check=True).stdout
    if theirs != ours:
        a, b = theirs.splitlines(), ours.splitlines()
        for k in range(max(len(a), len(b))):
            x = a[k] if k < len(a) else b"<end>"
            y = b[k] if k < len(b) else b"<end>"
            if x != y:
                print("tlog_ref: line %d differs\n  %s: %s\n  reference: %s"
                      % (k + 1, program, x[:200].decode(), y[:200].decode()),
                      file=sys.stderr)
                break
        return 1
    print("tlog_ref: %d roots, %d inclusion and %d consistency proofs: "
          "libparley == RFC 9162 reference == Go sumdb/tlog (sha256 %s)"
          % (ROOTS_UP_TO, PAIRS, PAIRS, ours_digest))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
