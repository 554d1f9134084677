"""gateway_harness.py - plumbing for the parley-gateway tests.

Starts the real programs (parleyd, parley-gateway, the parley tool) on
free loopback ports in a temporary directory under $TMPDIR, stops them
by pid, and talks HTTP and Server-Sent Events to the gateway with the
standard library alone: a raw socket client for streams, so that chunked
encoding, partial events and closed connections are seen as they are.

Needs PARLEYD, PARLEY, PARLEY_GATEWAY and PARLEY_SOURCE_DIR in the
environment (ctest sets them).
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PARLEYD = os.environ["PARLEYD"]
PARLEY = os.environ["PARLEY"]
GATEWAY = os.environ["PARLEY_GATEWAY"]
SRC = os.environ["PARLEY_SOURCE_DIR"]
DEMO = os.path.join(SRC, "examples", "ceasefire.jsonl")
EXPECTED = os.path.join(SRC, "examples", "ceasefire.expected")


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, secs, what, step=0.05):
    """Poll pred() until it is true; fail with what after secs."""
    deadline = time.time() + secs
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise Failure("timed out after %ss waiting for %s" % (secs, what))


class World:
    """A temporary directory, processes started in it, logs to show."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="parley-gw-%s-" % name,
                                    dir=os.environ.get("TMPDIR") or "/tmp")
        self.procs = []
        self.logs = []

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def spawn(self, argv, log):
        f = open(log, "ab")
        self.logs.append(log)
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        f.close()
        self.procs.append(p)
        return p

    def show_logs(self):
        for log in self.logs:
            try:
                with open(log, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            sys.stderr.write("----- %s -----\n%s----- end -----\n" % (log, text[-6000:]))

    def end(self, ok):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if not ok:
            self.show_logs()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, argv, stdin=None, timeout=30):
        return subprocess.run(argv, input=stdin, capture_output=True,
                              timeout=timeout)

    def keygen(self, name, trust="negotiations=* parties=* phases=*"):
        """A key NAME in the directory and, with trust, its keyring line."""
        key = self.path(name)
        r = self.run([PARLEY, "keygen", "-o", key])
        check(r.returncode == 0, "keygen: %s" % r.stderr)
        if trust is not None:
            with open(key + ".pub") as f:
                pub = f.read().split()[0]
            with open(self.path("keyring"), "a") as f:
                f.write("%s %s %s\n" % (name, pub, trust))
        return key


class Daemon:
    """parleyd on free ports; restart() keeps ports and state."""

    def __init__(self, world, name="parleyd", conf=None):
        self.world = world
        self.name = name
        self.api_port = free_port()
        self.feed_port = free_port()
        self.api = "tcp://127.0.0.1:%d" % self.api_port
        self.state = world.path(name + "-state")
        self.conf = conf
        self.proc = None

    def start(self):
        argv = [PARLEYD, "--api", self.api,
                "--feed", "tcp://127.0.0.1:%d" % self.feed_port,
                "--state-dir", self.state, "--keyring",
                self.world.path("keyring"), "--no-fsync"]
        if self.conf is not None:
            argv += ["-c", self.conf]
        self.proc = self.world.spawn(argv, self.world.path(self.name + ".log"))
        wait_for(lambda: self.ping(), 10, "parleyd to answer ping")

    def ping(self):
        if self.proc.poll() is not None:
            raise Failure("parleyd exited with %s" % self.proc.returncode)
        return subprocess.run([PARLEY, "ping", "-s", self.api, "--timeout", "1"],
                              capture_output=True).returncode == 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        check(self.proc.wait(10) == 0, "parleyd did not exit 0 on SIGTERM")

    def stats(self):
        r = subprocess.run([PARLEY, "stats", "-s", self.api, "--json"],
                           capture_output=True, timeout=10)
        check(r.returncode == 0, "parley stats: %s" % r.stderr)
        return json.loads(r.stdout)

    def pub(self, key, *args, headline="an update", negotiation="gaza-ceasefire",
            party="hamas", phase=1, status="proposed"):
        argv = [PARLEY, "pub", "-s", self.api, "-k", key,
                "--negotiation", negotiation, "--phase", str(phase),
                "--status", status, "--headline", headline]
        for p in party.split(","):
            argv += ["--party", p]
        r = subprocess.run(argv + list(args), capture_output=True, timeout=20)
        check(r.returncode == 0, "parley pub: %s" % r.stderr.decode())
        return int(r.stdout)

    def pub_demo(self, key):
        with open(DEMO, "rb") as f:
            r = subprocess.run([PARLEY, "pub", "-s", self.api, "-k", key, "--json"],
                               stdin=f, capture_output=True, timeout=30)
        check(r.returncode == 0, "publishing the demo feed: %s" % r.stderr)
        return [int(x) for x in r.stdout.split()]


class Gateway:
    """parley-gateway on a fixed port (kept over restarts)."""

    def __init__(self, world, daemon, *args, name="gateway", port=None):
        self.world = world
        self.daemon = daemon
        self.port = port or free_port()
        self.args = list(args)
        self.name = name
        self.proc = None

    def start(self, wait_ready=True):
        argv = [GATEWAY, "--listen", "127.0.0.1:%d" % self.port,
                "--server", self.daemon.api,
                "--keyring", self.world.path("keyring")] + self.args
        self.proc = self.world.spawn(argv, self.world.path(self.name + ".log"))
        if wait_ready:
            wait_for(lambda: self.healthy(), 15, "the gateway to be ready")

    def healthy(self):
        if self.proc.poll() is not None:
            raise Failure("parley-gateway exited with %s" % self.proc.returncode)
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(15)
        check(rc == 0, "parley-gateway exited %s on SIGTERM" % rc)

    def request(self, method, path, body=None, headers=None, timeout=15):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def json(self, path, want=200):
        status, headers, data = self.get(path)
        check(status == want, "GET %s: %d, expected %d: %s" % (path, status, want, data[:300]))
        check(headers.get("content-type", "").startswith("application/json"),
              "GET %s: Content-Type %s" % (path, headers.get("content-type")))
        return json.loads(data)

    def metrics(self):
        status, _, data = self.get("/metrics")
        check(status == 200, "/metrics: %d" % status)
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stream(self, path="/v1/events", headers=None, timeout=10):
        return Stream(self.port, path, headers, timeout)


class Stream:
    """An event stream read from a raw socket, chunked encoding undone."""

    def __init__(self, port, path, headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        head = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" % path
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        self.sock.sendall((head + "\r\n").encode())
        self.raw = b""
        self.body = b""
        self.eof = False
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.raw:
            self._recv(deadline)
            if self.eof:
                raise Failure("stream closed before its head: %r" % self.raw)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self.length = int(self.headers.get("content-length", "-1"))

    def _recv(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise socket.timeout("stream: nothing within the time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.raw += data

    def _decode(self):
        """Move what has arrived from raw into body."""
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]
            if size == 0:
                self.eof = True
                return

    def event(self, timeout=10):
        """The next event (a dict: id, event, data, comments, retry) or
        None at the end of the stream. An "event" of comments and an id
        without data (a keep-alive) comes back too, with data None."""
        deadline = time.time() + timeout
        while True:
            self._decode()
            if b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                ev = {"id": None, "event": None, "data": None, "comments": [],
                      "retry": None}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        ev["comments"].append(line[1:].strip())
                        continue
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "data":
                        ev["data"] = value if ev["data"] is None else ev["data"] + "\n" + value
                    elif field in ("id", "event", "retry"):
                        ev[field] = value
                return ev
            if self.eof:
                return None
            self._recv(deadline)

    def updates(self, n, timeout=10):
        """The next n update events (other events are kept in .others)."""
        out = []
        self.others = getattr(self, "others", [])
        deadline = time.time() + timeout
        while len(out) < n:
            ev = self.event(max(0.01, deadline - time.time()))
            if ev is None:
                raise Failure("stream ended after %d of %d updates" % (len(out), n))
            if ev["event"] == "update":
                out.append(ev)
            else:
                self.others.append(ev)
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def demo_world(w, *gw_args, window=None):
    """parleyd and a gateway in w, the demo feed published (seqs 1-12)
    and seen by the gateway. Returns (key, daemon, gateway)."""
    key = w.keygen("desk")
    d = Daemon(w)
    d.start()
    args = list(gw_args) + (["--window", str(window)] if window else [])
    g = Gateway(w, d, *args)
    g.start()
    seqs = d.pub_demo(key)
    check(seqs == list(range(1, 13)), "demo seqs %s" % seqs)
    wait_for(lambda: g.json("/healthz")["last_seq"] == 12, 10, "the gateway to see 12")
    return key, d, g


def envelope_bytes(update):
    """The SignedUpdate protobuf of an update's signed_body, signature and
    signer: fields 1, 2 and 3, length-delimited."""
    def field(num, data):
        out = bytes([num << 3 | 2])
        n = len(data)
        while n >= 0x80:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n]) + data
    return (field(1, base64.b64decode(update["signed_body"]))
            + field(2, base64.b64decode(update["signer"]))
            + field(3, base64.b64decode(update["signature"])))


def expected_demo():
    """Line number -> (phase, [parties]) of the demo feed."""
    out = {}
    with open(EXPECTED) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            n, phase, parties = line.split()
            out[int(n)] = (int(phase), parties.split(","))
    return out


def demo_cells():
    """The cells the demo feed leaves: (negotiation, phase, party) -> the
    latest line (= seq) naming that party in that phase."""
    cells = {}
    for line, (phase, parties) in sorted(expected_demo().items()):
        for party in parties:
            cells[("gaza-ceasefire", phase, party)] = line
    return cells


def main(tests, name):
    """Run tests (functions of a World) in order; report and exit."""
    failed = 0
    for t in tests:
        w = World(name)
        ok = False
        t0 = time.time()
        try:
            t(w)
            ok = True
            print("PASS %s (%.1f s)" % (t.__name__, time.time() - t0), flush=True)
        except Exception as e:  # a failure or a crash of the test itself
            failed += 1
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e), flush=True)
            import traceback
            traceback.print_exc()
        finally:
            w.end(ok)
    print("%d of %d passed" % (len(tests) - failed, len(tests)))
    sys.exit(1 if failed else 0)
