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


PARTIES = ["israel", "hamas", "us", "egypt"]
PHASES = [0, 1, 2]
STATUSES = ["proposed", "talks_scheduled", "talks_in_progress",
            "awaiting_response", "counter_proposal", "agreed_in_principle",
            "signed", "in_effect", "stalled", "collapsed"]


class Sequence:
    """One random sequence of updates, corrections and retractions, for
    the tests that compare a state with the model (state_check.py,
    gateway_http.py): its negotiations ("sI" and "sIx", which some
    records move to) and records. Corrections and retractions name
    earlier records of the sequence, recent ones and other corrections
    and retractions more often, so that chains form. Some updates have
    expired when they arrive ("expiry": "expired"); some expire in a day
    ("later"). world.next_seq() gives each record its seq."""

    def __init__(self, i):
        self.negs = ["s%d" % i, "s%dx" % i]
        self.recs = []
        self.i = i

    def record(self, rng, world):
        """The next record of this sequence, with its seq."""
        kind = "update"
        if self.recs:
            x = rng.random()
            kind = "update" if x < 0.5 else "correction" if x < 0.78 \
                else "retraction"
        refs = []
        if kind != "update":
            for _ in range(rng.choice([1, 1, 1, 1, 1, 1, 1, 2, 2, 3])):
                x = rng.random()
                withdrawals = [r for r in self.recs if r["kind"] != "update"]
                if x < 0.55:
                    t = rng.choice(self.recs[-3:])
                elif x < 0.75 and withdrawals:
                    t = rng.choice(withdrawals[-4:])
                else:
                    t = rng.choice(self.recs)
                refs.append(t["seq"])
        expiry = None
        if kind != "retraction":
            x = rng.random()
            expiry = "expired" if x < 0.08 else "later" if x < 0.13 else None
        r = {"seq": world.next_seq(), "kind": kind,
             "negotiation": self.negs[0] if rng.random() < 0.8
             else self.negs[1],
             "parties": rng.sample(PARTIES, rng.choice([1, 1, 2, 2, 3])),
             "phase": rng.choice(PHASES), "references": refs,
             "status": rng.choice(STATUSES),
             "headline": "s%d r%d" % (self.i, len(self.recs) + 1),
             "expiry": expiry, "expired": expiry == "expired"}
        self.recs.append(r)
        return r


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
