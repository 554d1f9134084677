"""state_check.py - issue 19, acceptance 1: the current state of parleyd,
of libparley's state table and of `parley state` against a reference
model (state_model.py), over thousands of random sequences of updates,
corrections and retractions, compared entry by entry.

Run by test_state_model.sh. It starts its own parleyd (and stops it by
pid), and talks to it through ph_state_probe (state_probe.c) and the
parley tool:

  (a) the daemon's snapshot: the entries of parley_snapshot(), as the
      library checked them;
  (b) a state table (parley_state_t) fed by a live subscription that
      started with the snapshot (PARLEY_START_LAST);
  (c) `parley state --json`.

Each random sequence has a negotiation of its own (and a second one that
some of its corrections move to), so that many fit in one daemon run; 32
sequences form a batch, whose 64 negotiations one filter covers. A batch
publishes one record per sequence at a time; after each such chunk the
table (b) is compared with the model, and after the batch the snapshot
(a) and `parley state` (c). Corrections and retractions name earlier
records of their sequence, recent ones and other corrections and
retractions more often, so that chains form. Some updates have expired
when they arrive; some expire in a day.

First the example of the issue (U1, U2, U2 retracted) as a named case.
Halfway through, the daemon is restarted: every negotiation so far must
read the same before and after, through (a), (b) and (c); then the
first batches go on, their new records naming records from before the
restart.

Environment: STATE_SEED (random seed, default 19), STATE_SEQUENCES
(default 2048).
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from state_model import Sequence, state as model_state, withdrawn  # noqa: E402

PARLEYD = os.environ["PARLEYD"]
PARLEY = os.environ["PARLEY"]
PROBE = os.environ["PH_STATE_PROBE"]

BATCH = 32


class Failure(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """A parleyd on free loopback ports, stopped by pid."""

    def __init__(self, tmp, keyring):
        self.tmp, self.keyring = tmp, keyring
        self.state_dir = os.path.join(tmp, "state")
        self.config = os.path.join(tmp, "parleyd.conf")
        with open(self.config, "w") as f:
            # Subscribers start at the first heartbeat: a short interval
            # keeps the many subscriptions of this test quick.
            f.write("rate_limit 0\nheartbeat_interval 50\n")
        self.log = os.path.join(tmp, "parleyd.log")
        self.proc = None
        self.api = None

    def start(self):
        api_port = free_port()
        feed_port = free_port()
        while feed_port == api_port:
            feed_port = free_port()
        self.api = "tcp://127.0.0.1:%d" % api_port
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [PARLEYD, "-c", self.config, "--api", self.api,
                 "--feed", "tcp://127.0.0.1:%d" % feed_port,
                 "--state-dir", self.state_dir, "--keyring", self.keyring],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure("parleyd exited with %d" % self.proc.returncode)
            r = subprocess.run([PARLEY, "ping", "-s", self.api, "--timeout",
                                "1"], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise Failure("parleyd did not answer ping on %s" % self.api)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("parleyd ignored SIGTERM for 10 s")
        if rc != 0:
            raise Failure("parleyd exited %d after SIGTERM" % rc)


class Probe:
    """ph_state_probe, driven line by line."""

    def __init__(self, key):
        self.proc = subprocess.Popen([PROBE, key], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def ask(self, command, lines=()):
        self.proc.stdin.write(command + "\n")
        for line in lines:
            self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise Failure("state_probe exited (asked: %s)" % command)
            line = line.rstrip("\n")
            if line.startswith("ERR"):
                raise Failure("state_probe: %s (asked: %s)" % (line, command))
            if line.startswith("E "):
                out.append(line)
                continue
            if line == "END":
                return entries_of(out)
            return line

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def entries_of(lines):
    """{(neg, party, phase): seq} from "E NEG PARTY PHASE SEQ" lines."""
    out = {}
    for line in lines:
        _, neg, party, phase, seq = line.split()
        key = (neg, party, int(phase))
        if key in out:
            raise Failure("entry %s twice" % (key,))
        out[key] = int(seq)
    return out


class World:
    """Everything published, and the model's view of it."""

    def __init__(self, daemon, probe, rng):
        self.daemon, self.probe, self.rng = daemon, probe, rng
        self.records = []        # model records, by seq - 1
        self.head = 0
        self.compared = {"table": 0, "snapshot": 0, "parley state": 0}

    def publish(self, recs):
        """Publish records (dicts with the update's fields and "seq")."""
        now = int(time.time() * 1000)
        lines = []
        for r in recs:
            u = {"negotiation": r["negotiation"], "parties": r["parties"],
                 "phase": r["phase"], "status": r["status"],
                 "kind": r["kind"], "headline": r["headline"]}
            if r["references"]:
                u["references"] = r["references"]
            if r["expiry"] == "expired":
                u["issued_at"] = now - 60000
                u["expires_at"] = now - 30000
            elif r["expiry"] == "later":
                u["expires_at"] = now + 86400000
            lines.append(json.dumps(u))
        answer = self.probe.ask("pub %d" % len(recs), lines)
        want = "SEQS " + " ".join(str(r["seq"]) for r in recs)
        if answer != want:
            raise Failure("published as %s, expected %s" % (answer, want))
        for r in recs:
            self.records.append(r)

    def next_seq(self):
        self.head += 1
        return self.head

    def model(self, negs, records=None):
        """The model's state of these negotiations."""
        recs = records if records is not None else self.records
        want = set(negs)
        st = model_state([r for r in recs if r["negotiation"] in want])
        return {k: v for k, v in st.items() if k[0] in want}

    def compare(self, what, negs, got, want=None):
        if want is None:
            want = self.model(negs)
        if got != want:
            lines = []
            for k in sorted(set(got) | set(want)):
                if got.get(k) != want.get(k):
                    lines.append("  %s/%s/phase %d: %s %s, model %s"
                                 % (k[0], k[1], k[2], what, got.get(k),
                                    want.get(k)))
            detail = "\n".join(lines[:20])
            seqs = sorted({s for s in list(got.values()) + list(want.values())
                           if s})
            dump = [r for r in self.records
                    if r["negotiation"] in set(negs)
                    and (not seqs or r["seq"] <= max(seqs))]
            raise Failure("%s differs from the model:\n%s\nrecords:\n%s"
                          % (what, detail,
                             "\n".join(json.dumps(r) for r in dump[-40:])))
        self.compared[what] += len(want)

    def snapshot(self, negs):
        return self.probe.ask("snap %d %s" % (len(negs), " ".join(negs)))

    def parley_state(self, negs):
        argv = [PARLEY, "-s", self.daemon.api, "state", "--json"]
        for n in negs:
            argv += ["--negotiation", n]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Failure("parley state exited %d: %s"
                          % (r.returncode, r.stderr))
        # one document: negotiation -> phase -> party, each with the seq
        # of the update holding it
        out = {}
        doc = json.loads(r.stdout)
        for n in doc["negotiations"]:
            for ph in n["phases"]:
                for p in ph["parties"]:
                    key = (n["negotiation"], p["party"], ph["phase"])
                    if key in out or p["seq"] > doc["seq"]:
                        raise Failure("parley state: bad entry %s: %s" % (key, p))
                    out[key] = p["seq"]
        return out

    def check_all(self, negs, table=True):
        """(a), (c) and, with table, (b) from a subscriber's snapshot."""
        self.compare("snapshot", negs, self.snapshot(negs))
        self.compare("parley state", negs, self.parley_state(negs))
        if table:
            self.probe.ask("open %d %s" % (len(negs), " ".join(negs)))
            self.compare("table", negs, self.probe.ask("table 0"))
            self.probe.ask("close")


def batch_negs(seqs):
    return [n for s in seqs for n in s.negs]


def run_batch(world, seqs, rng, lengths):
    """One round of a batch: lengths[i] more records for sequence i, one
    per sequence and chunk, the table compared after every chunk, the
    snapshot and `parley state` at the end."""
    negs = batch_negs(seqs)
    world.probe.ask("open %d %s" % (len(negs), " ".join(negs)))
    left = list(lengths)
    while any(left):
        chunk = []
        for k, s in enumerate(seqs):
            if left[k] > 0:
                left[k] -= 1
                chunk.append(s.record(rng, world))
        world.publish(chunk)
        world.compare("table", negs,
                      world.probe.ask("table %d" % chunk[-1]["seq"]))
    world.probe.ask("close")
    world.compare("snapshot", negs, world.snapshot(negs))
    world.compare("parley state", negs, world.parley_state(negs))


def named_u1_u2(world):
    """The example of the issue, by name."""
    neg = ["u1-u2"]
    world.probe.ask("open 1 u1-u2")

    def rec(kind, parties, status, refs=()):
        return {"seq": world.next_seq(), "kind": kind, "negotiation": "u1-u2",
                "parties": parties, "phase": 1, "status": status,
                "references": list(refs), "headline": "U1/U2 " + status,
                "expiry": None, "expired": False}
    u1 = rec("update", ["israel", "hamas"], "proposed")
    u2 = rec("update", ["israel"], "agreed_in_principle")
    world.publish([u1, u2])
    want = {("u1-u2", "israel", 1): u2["seq"], ("u1-u2", "hamas", 1): u1["seq"]}
    world.compare("table", neg, world.probe.ask("table %d" % u2["seq"]), want)
    r = rec("retraction", ["israel"], "agreed_in_principle", [u2["seq"]])
    world.publish([r])
    # israel goes back to what was true before U2: U1, proposed.
    want = {("u1-u2", "israel", 1): u1["seq"], ("u1-u2", "hamas", 1): u1["seq"]}
    world.compare("table", neg, world.probe.ask("table %d" % r["seq"]), want)
    world.probe.ask("close")
    world.compare("snapshot", neg, world.snapshot(neg), want)
    world.compare("parley state", neg, world.parley_state(neg), want)
    argv = [PARLEY, "-s", world.daemon.api, "state", "--negotiation", "u1-u2"]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    # the table: the negotiation, "  phase 1", then "    israel  proposed ..."
    lines = out.splitlines()
    line = [x for x in lines if x.split()[:1] == ["israel"]]
    if (lines[:2] != ["u1-u2", "  phase 1"] or len(line) != 1
            or line[0].split()[:3] != ["israel", "proposed", "#%d" % u1["seq"]]):
        raise Failure("parley state shows israel as %r" % line)
    print("PASS: U1/U2: after U2 is retracted, israel is U1 (proposed) "
          "again, in the snapshot, the table and parley state")


def main():
    tmp = sys.argv[1]
    key, keyring = sys.argv[2], sys.argv[3]
    seed = int(os.environ.get("STATE_SEED", "19"))
    n_seq = int(os.environ.get("STATE_SEQUENCES", "2048"))
    rng = random.Random(seed)
    daemon = Daemon(tmp, keyring)
    probe = None
    t0 = time.time()
    try:
        daemon.start()
        probe = Probe(key)
        probe.ask("server " + daemon.api)
        world = World(daemon, probe, rng)
        named_u1_u2(world)

        seqs = [Sequence(i) for i in range(n_seq)]
        batches = [seqs[i:i + BATCH] for i in range(0, n_seq, BATCH)]
        half = len(batches) // 2
        for b in batches[:half]:
            run_batch(world, b, rng, [rng.randint(1, 12) for _ in b])
        print("phase 1: %d sequences, %d records, %.1f s"
              % (half * BATCH, world.head, time.time() - t0))

        # A restart: the state rebuilt from the log must be the same.
        groups = [["u1-u2"]] + [batch_negs(b) for b in batches[:half]]
        before = [world.snapshot(g) for g in groups]
        probe.ask("close")
        daemon.stop()
        daemon.start()
        probe.ask("server " + daemon.api)
        for g, was in zip(groups, before):
            world.compare("snapshot", g, world.snapshot(g), was)
            world.check_all(g, table=(groups.index(g) % 4 == 1))
        print("restart: the state of %d negotiations is the same after it"
              % sum(len(g) for g in groups))

        for b in batches[half:]:
            run_batch(world, b, rng, [rng.randint(1, 12) for _ in b])
        # The first batches again: chains across the restart.
        for b in batches[:half // 2]:
            run_batch(world, b, rng, [rng.randint(1, 6) for _ in b])
        for g in [batch_negs(b) for b in batches]:
            world.check_all(g, table=False)

        kinds = {}
        for r in world.records:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        n_withdrawn = len(withdrawn(world.records))
        print("PASS: %d sequences, %d records (%s; %d withdrawn), entries "
              "compared: %s; %.1f s"
              % (n_seq, world.head,
                 ", ".join("%d %ss" % (v, k) for k, v in sorted(kinds.items())),
                 n_withdrawn,
                 ", ".join("%s %d" % kv for kv in world.compared.items()),
                 time.time() - t0))
        return 0
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        try:
            with open(daemon.log) as f:
                print("----- parleyd log (last lines) -----\n"
                      + "".join(f.readlines()[-30:]), file=sys.stderr)
        except OSError:
            pass
        return 1
    finally:
        if probe is not None:
            probe.close()
        try:
            daemon.stop()
        except Failure as e:
            print("FAIL: %s" % e, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
