"""state_model.py - the current state of docs/protocol.md section 5, as a
reference written apart from parleyd's index (daemon/index.c).

The index keeps counters and settles changes incrementally; this model
computes the state from scratch, straight from the definition, with
withdrawal *sets*:

  * a retraction withdraws the records it names (seqs below its own that
    are still held);
  * a correction withdraws the records it names and everything those
    withdraw: it takes their place, so what they replaced stays replaced;
  * a record is withdrawn when a record after it that is not withdrawn
    has it in its set (decided from the newest record down);
  * the state of an entry (negotiation, party, phase) is its newest
    candidate (an update or correction naming it) that is not withdrawn;
    if that one has expired, the entry has no state (nothing falls back
    past an expired update);
  * only records still held (seq >= first) count: what retention removed
    can neither hold nor withdraw anything.

Records are dicts with "seq", "kind" ("update", "correction",
"retraction"), "negotiation", "parties", "phase", "references" and
"expired" (bool). state(records, first) returns {(neg, party, phase): seq}.
"""


def withdrawal_sets(records, first=1):
    """seq -> set of seqs that record withdraws, for the held records."""
    held = {r["seq"]: r for r in records if r["seq"] >= first}
    sets = {}
    for seq in sorted(held):
        r = held[seq]
        w = set()
        if r["kind"] != "update":
            for t in r["references"]:
                if t >= seq or t not in held:
                    continue
                w.add(t)
                if r["kind"] == "correction":
                    w |= sets[t]
        sets[seq] = w
    return sets


def withdrawn(records, first=1):
    """The set of held seqs that are withdrawn."""
    sets = withdrawal_sets(records, first)
    out = set()
    for seq in sorted(sets, reverse=True):
        if seq not in out:
            out |= sets[seq]
    return out


def state(records, first=1):
    """{(negotiation, party, phase): seq} of the entries with a state."""
    gone = withdrawn(records, first)
    newest = {}
    for r in sorted(records, key=lambda r: r["seq"]):
        if r["seq"] < first or r["kind"] == "retraction" or r["seq"] in gone:
            continue
        for p in r["parties"]:
            newest[(r["negotiation"], p, r["phase"])] = r
    return {k: r["seq"] for k, r in newest.items() if not r.get("expired")}


def _rec(seq, kind, parties, phase=1, refs=(), neg="n", expired=False):
    return {"seq": seq, "kind": kind, "negotiation": neg,
            "parties": list(parties), "phase": phase,
            "references": list(refs), "expired": expired}


def _self_test():
    """The worked examples of docs/protocol.md section 5."""
    u, c, r = "update", "correction", "retraction"
    # U1/U2: the retraction of U2 brings U1 back for israel.
    recs = [_rec(1, u, ["israel", "hamas"]), _rec(2, u, ["israel"]),
            _rec(3, r, ["israel"], refs=[2])]
    assert state(recs) == {("n", "israel", 1): 1, ("n", "hamas", 1): 1}
    # A retraction of a correction brings back what it replaced; a
    # correction of a correction keeps it replaced.
    recs = [_rec(1, u, ["israel"]), _rec(2, c, ["israel"], refs=[1])]
    assert state(recs) == {("n", "israel", 1): 2}
    assert state(recs + [_rec(3, r, ["x"], refs=[2])]) == {("n", "israel", 1): 1}
    assert state(recs + [_rec(3, c, ["israel"], refs=[2]),
                         _rec(4, r, ["x"], refs=[3])]) == {("n", "israel", 1): 2}
    assert state(recs + [_rec(3, c, ["egypt"], refs=[2])]) == {("n", "egypt", 1): 3}
    # Expired: no fall back.
    recs = [_rec(1, u, ["israel"]), _rec(2, u, ["israel"], expired=True)]
    assert state(recs) == {}
    # Retention: what is gone cannot be fallen back to.
    recs = [_rec(1, u, ["israel"]), _rec(2, u, ["israel"]),
            _rec(3, r, ["x"], refs=[2])]
    assert state(recs, first=2) == {}


if __name__ == "__main__":
    _self_test()
    print("state_model: self-test passed")
