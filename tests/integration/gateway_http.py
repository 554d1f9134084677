"""gateway_http.py - parley-gateway over HTTP (issue 15, acceptance 2):
every endpoint and filter, event streams resumed with Last-Event-ID
across a parleyd restart and a gateway restart (no gap, no repeat), gap
events, POST of valid, forged, oversized and malformed envelopes (the
right codes, parleyd's counters), the limits and the timeouts.

Run by test_gateway_http.sh.
"""
import base64
import json
import os
import random
import socket
import subprocess
import time

import state_model

from gateway_harness import (PARLEY, Daemon, Failure, Gateway, check,
                             demo_cells, demo_world, envelope_bytes, expected_demo, main,
                             wait_for)


def state_cells(doc):
    """(negotiation, phase, party) -> seq of a /v1/state answer."""
    out = {}
    for n in doc["negotiations"]:
        for p in n["phases"]:
            for party, u in p["parties"].items():
                out[(n["negotiation"], p["phase"], party)] = u["seq"]
    return out


def test_state_and_filters(w):
    key, d, g = demo_world(w)
    doc = g.json("/v1/state")
    check(doc["seq"] == 12 and doc["live"] is True and doc["stale"] is False,
          "state head: %s" % {k: doc[k] for k in ("seq", "live", "stale")})
    want = demo_cells()
    check(state_cells(doc) == want, "cells %s, expected %s" % (state_cells(doc), want))
    # Grouped negotiation -> phase (ascending), each update whole.
    phases = [p["phase"] for p in doc["negotiations"][0]["phases"]]
    check(phases == sorted(phases), "phases not in order: %s" % phases)
    # Every filter, alone and together, against the same rule.
    cases = {
        "party=hamas": lambda k: k[2] == "hamas",
        "party=egypt,qatar": lambda k: k[2] in ("egypt", "qatar"),
        "party=egypt&party=qatar": lambda k: k[2] in ("egypt", "qatar"),
        "phase=2": lambda k: k[1] == 2,
        "phase=0,3": lambda k: k[1] in (0, 3),
        "negotiation=gaza-ceasefire": lambda k: True,
        "negotiation=other-talks": lambda k: False,
        "party=israel&phase=1": lambda k: k[2] == "israel" and k[1] == 1,
    }
    for q, pred in cases.items():
        got = state_cells(g.json("/v1/state?" + q))
        exp = {k: v for k, v in want.items() if pred(k)}
        check(got == exp, "state?%s: %s, expected %s" % (q, got, exp))
    for bad in ("party=Hamas", "phase=256", "phase=x", "since=1", "party=",
                "negotiation=a%20b", "colour=red", "party"):
        status, _, body = g.get("/v1/state?" + bad)
        doc = json.loads(body)
        check(status == 400 and doc["error"] == "bad_request",
              "state?%s: %d %s" % (bad, status, body))
    # The daemon agrees (its own snapshot, through the tool), entry by
    # entry: `parley state --json` is one document, negotiation -> phase
    # -> party.
    r = subprocess.run([PARLEY, "state", "-s", d.api, "--json"], capture_output=True)
    doc = json.loads(r.stdout.decode())
    objs = [(n["negotiation"], ph["phase"], p["party"], p["seq"])
            for n in doc["negotiations"] for ph in n["phases"] for p in ph["parties"]]
    daemon = {(n, ph, p): seq for n, ph, p, seq in objs}
    check(len(daemon) == len(objs) and daemon == want,
          "parley state has %s, the gateway %s" % (daemon, want))


def test_updates_pages_and_filters(w):
    key, d, g = demo_world(w)
    exp = expected_demo()
    doc = g.json("/v1/updates")
    check([u["seq"] for u in doc["updates"]] == list(range(1, 13)), "all: %s" % doc)
    check(doc["from"] == "window" and doc["more"] is False and doc["next"] == 13,
          "page fields: %s" % {k: v for k, v in doc.items() if k != "updates"})
    for q, pred in {
        "party=hamas": lambda n: "hamas" in exp[n][1],
        "party=us&phase=0": lambda n: "us" in exp[n][1] and exp[n][0] == 0,
        "phase=2": lambda n: exp[n][0] == 2,
        "party=egypt,qatar": lambda n: set(exp[n][1]) & {"egypt", "qatar"},
    }.items():
        got = [u["seq"] for u in g.json("/v1/updates?" + q)["updates"]]
        want = [n for n in sorted(exp) if pred(n)]
        check(got == want, "updates?%s: %s, expected %s" % (q, got, want))
    # Newest first cut: limit without since gives the newest, in order.
    check([u["seq"] for u in g.json("/v1/updates?limit=3")["updates"]] == [10, 11, 12],
          "limit=3")
    check([u["seq"] for u in g.json("/v1/updates?until=5&limit=2")["updates"]] == [4, 5],
          "until=5&limit=2")
    # Paging with since and next.
    seen, since, pages = [], 1, 0
    while True:
        doc = g.json("/v1/updates?since=%d&limit=5" % since)
        seen += [u["seq"] for u in doc["updates"]]
        pages += 1
        if not doc["more"]:
            break
        since = doc["next"]
    check(seen == list(range(1, 13)) and pages == 3, "pages: %s in %d" % (seen, pages))
    check([u["seq"] for u in g.json("/v1/updates?since=4&until=6")["updates"]] == [4, 5, 6],
          "since=4&until=6")
    for bad in ("limit=0", "limit=1001", "since=0", "since=-1", "until=2&since=5",
                "since=1&since=2", "since=99999999999999999999"):
        status, _, body = g.get("/v1/updates?" + bad)
        check(status == 400, "updates?%s: %d %s" % (bad, status, body))
    # Every update carries its signed bytes: they verify with the keyring
    # and hold the fields shown beside them.
    for u in g.json("/v1/updates")["updates"]:
        path = w.path("u%d.env" % u["seq"])
        with open(path, "wb") as f:
            f.write(envelope_bytes(u))
        r = subprocess.run([PARLEY, "verify", "--keyring", w.path("keyring"), path],
                           capture_output=True)
        out = r.stdout.decode()
        check(r.returncode == 0 and out.rstrip().endswith(u["headline"])
              and "(desk)" in out, "verify of update %d: %s %s" % (u["seq"], out, r.stderr))


def test_updates_beyond_the_window(w):
    """A window of 4: older pages come from parleyd, the same as from the window."""
    key, d, g = demo_world(w, window=4)
    check(g.json("/healthz")["last_seq"] == 12, "last seq")
    doc = g.json("/v1/updates?since=1&limit=5&party=hamas")
    check(doc["from"] == "parleyd", "from: %s" % doc["from"])
    check([u["seq"] for u in doc["updates"]] == [2, 3, 4, 5, 6] and doc["more"],
          "replayed page: %s" % [u["seq"] for u in doc["updates"]])
    doc2 = g.json("/v1/updates?since=%d&party=hamas" % doc["next"])
    check([u["seq"] for u in doc2["updates"]] == [10, 11] and not doc2["more"],
          "second page: %s" % doc2)
    check(g.json("/v1/updates")["window_from"] == 9, "window_from")
    m = g.metrics()
    check(m["parley_gateway_replays_total"] >= 2, "replays counted")


def test_keyring_metrics_health_board(w):
    key, d, g = demo_world(w)
    ring = g.json("/v1/keyring")
    with open(key + ".pub") as f:
        pub = f.read().split()[0]
    check(ring["context"] == "parley/update/v1", "context")
    check(len(ring["signers"]) == 1, "signers: %s" % ring)
    s = ring["signers"][0]
    check(s["name"] == "desk" and s["public_key"] == pub and len(s["key_id"]) == 16
          and s["negotiations"] == "*" and s["parties"] == "*" and s["phases"] == "*",
          "signer: %s" % s)
    h = g.json("/healthz")
    check(h["status"] == "ok" and h["connected"] and h["caught_up"], "healthz %s" % h)
    status, headers, body = g.get("/metrics")
    check(headers["content-type"].startswith("text/plain; version=0.0.4"), "metrics type")
    text = body.decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            check(kind in ("counter", "gauge"), "type %s" % line)
            names.add(name)
        elif line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            check(name in names, "sample before its TYPE: %s" % line)
            float(line.rsplit(" ", 1)[1])
    m = g.metrics()
    check(m["parley_gateway_updates_total"] == 12 and m["parley_gateway_last_seq"] == 12,
          "update counters")
    # The board and its files, with the security headers.
    status, headers, body = g.get("/")
    check(status == 200 and headers["content-type"].startswith("text/html"), "board")
    check("default-src 'none'" in headers["content-security-policy"], "CSP")
    check(headers["x-frame-options"] == "DENY", "frame")
    for f in ("/board.js", "/board.css"):
        status, headers, body = g.get(f)
        check(status == 200 and len(body) > 100, "%s: %d" % (f, status))
        etag = headers["etag"]
        status, _, body = g.get(f, {"If-None-Match": etag})
        check(status == 304 and body == b"", "%s with its ETag: %d" % (f, status))
    for path, want in (("/nope", 404), ("/v1/nope", 404)):
        check(g.get(path)[0] == want, "%s" % path)
    check(g.request("DELETE", "/v1/state")[0] == 405, "DELETE")
    check(g.request("POST", "/v1/state", body=b"x")[0] == 405, "POST state")
    # No CORS unless configured.
    check("access-control-allow-origin" not in g.get("/v1/state")[1], "CORS off")


def test_cors_when_configured(w):
    key = w.keygen("desk")
    d = Daemon(w)
    d.start()
    g = Gateway(w, d, "--cors-origin", "https://desk.example")
    g.start()
    status, headers, _ = g.get("/v1/state")
    check(headers.get("access-control-allow-origin") == "https://desk.example"
          and headers.get("vary") == "Origin", "CORS headers: %s" % headers)
    status, headers, _ = g.request("OPTIONS", "/v1/updates",
                                   headers={"Origin": "https://desk.example",
                                            "Access-Control-Request-Method": "POST"})
    check(status == 204 and "POST" in headers["access-control-allow-methods"],
          "preflight: %d %s" % (status, headers))


def test_events_live_filter_resume_keepalive(w):
    key, d, g = demo_world(w, "--sse-keepalive", "1")
    s = g.stream("/v1/events?party=us")
    check(s.status == 200 and s.headers["content-type"] == "text/event-stream",
          "stream head %d %s" % (s.status, s.headers))
    first = s.event()
    check(first["retry"] == "2000", "retry hint: %s" % first)
    a = d.pub(key, headline="us one", party="us")
    d.pub(key, headline="not for us", party="qatar")
    b = d.pub(key, headline="us two", party="us,egypt")
    evs = s.updates(2)
    check([int(e["id"]) for e in evs] == [a, b], "live ids %s" % [e["id"] for e in evs])
    u = json.loads(evs[0]["data"])
    check(u["seq"] == a and u["headline"] == "us one" and "signed_body" in u
          and "signature" in u, "event data: %s" % u)
    # Keep-alives carry an id past what the filter skipped.
    c = d.pub(key, headline="skipped", party="qatar")
    # (One may come before the gateway has seen c: its id is lower.)
    ka = wait_for(lambda: [e for e in [s.event(3)]
                           if e["data"] is None and e["id"] and int(e["id"]) >= c],
                  5, "a keep-alive with id %d" % c)[0]
    check("keep-alive" in ka["comments"] and int(ka["id"]) == c,
          "keep-alive %s, expected id %d" % (ka, c))
    s.close()
    # Resume: Last-Event-ID a, then since=b: exactly what follows.
    s = g.stream("/v1/events?party=us", {"Last-Event-ID": str(a)})
    check([int(e["id"]) for e in s.updates(1)] == [b], "resume after a")
    s.close()
    s = g.stream("/v1/events?since=3&phase=2")
    check([int(e["id"]) for e in s.updates(3)] == [4, 6, 11], "since=3&phase=2")
    s.close()
    for bad in ("/v1/events?limit=3", "/v1/events?party=X"):
        check(g.get(bad)[0] == 400, bad)
    status, _, _ = g.get("/v1/events", {"Last-Event-ID": "twelve"})
    check(status == 400, "bad Last-Event-ID")
    m = g.metrics()
    check(m["parley_gateway_sse_keepalives_total"] >= 1, "keep-alives counted")


def collect_ids(stream, n, timeout=20):
    return [int(e["id"]) for e in stream.updates(n, timeout)]


def test_events_across_parleyd_restart(w):
    """A stream stays open while parleyd restarts: no gap, no repeat."""
    key, d, g = demo_world(w)
    s = g.stream("/v1/events", {"Last-Event-ID": "10"})
    got = collect_ids(s, 2)
    before = [d.pub(key, headline="before %d" % i) for i in range(3)]
    d.stop()
    wait_for(lambda: g.get("/healthz")[0] == 503, 15, "healthz 503 without parleyd")
    check(g.json("/healthz", 503)["status"] == "disconnected", "healthz status")
    d.start()
    after = [d.pub(key, headline="after %d" % i) for i in range(3)]
    got += collect_ids(s, 6)
    check(got == [11, 12] + before + after, "ids %s" % got)
    wait_for(lambda: g.get("/healthz")[0] == 200, 15, "healthz 200 again")
    s.close()


def test_events_across_gateway_restart(w):
    """Last-Event-ID on a new gateway process, in and beyond its window."""
    key, d, g = demo_world(w)
    hamas = [2, 3, 4, 5, 6, 10, 11]   # the demo's updates naming hamas
    for window in (None, 3):
        if window is not None:
            g.stop()
            g = Gateway(w, d, "--window", str(window), port=g.port, name="gw-small")
            g.start()
        s = g.stream("/v1/events?party=hamas", {"Last-Event-ID": "4"})
        want = [x for x in hamas if x > 4]
        got = collect_ids(s, 2)
        g.stop()                        # the stream ends with the process
        while True:
            ev = s.event(5)
            if ev is None:
                break
            if ev["event"] == "update":
                got.append(int(ev["id"]))
        s.close()
        check(got == want[:len(got)], "before the stop: %s" % got)
        new = [d.pub(key, headline="while away %d" % i, party="hamas,us") for i in range(4)]
        hamas += new
        want += new
        g.start()
        s = g.stream("/v1/events?party=hamas", {"Last-Event-ID": str(got[-1])})
        got += collect_ids(s, len(want) - len(got))
        check(got == want, "window %s: %s, expected %s" % (window, got, want))
        s.close()
    check(g.metrics()["parley_gateway_sse_replays_total"] >= 1,
          "the small window replayed")


def test_gap_events(w):
    """What parleyd no longer holds: a gap event, then the rest."""
    key = w.keygen("desk")
    conf = w.path("parleyd.conf")
    with open(conf, "w") as f:
        f.write("rate_limit 0\nsegment_bytes 64K\nretention_bytes 128K\n")
    d = Daemon(w, conf=conf)
    d.start()
    lines = "".join(json.dumps({"negotiation": "gaza-ceasefire", "parties": ["qatar"],
                                "phase": 3, "status": "proposed",
                                "headline": "fill the segments %d %s" % (i, "x" * 120)})
                    + "\n" for i in range(1100))
    r = subprocess.run([PARLEY, "pub", "-s", d.api, "-k", key, "--json"],
                       input=lines.encode(), capture_output=True, timeout=120)
    check(r.returncode == 0, "bulk publish: %s" % r.stderr[-300:])
    d.stop()
    d.start()  # retention runs at start
    first = int(json.loads(subprocess.run([PARLEY, "stats", "-s", d.api, "--json"],
                                          capture_output=True).stdout)["first_seq"])
    check(first > 1, "retention removed nothing (first_seq %d)" % first)
    g = Gateway(w, d, "--window", "10")
    g.start()
    doc = g.json("/v1/updates?since=1&limit=3")
    check(doc["gaps"] == [{"from": 1, "to": first - 1}] and
          [u["seq"] for u in doc["updates"]] == [first, first + 1],
          "replay across the gap: %s %s" % (doc["gaps"], [u["seq"] for u in doc["updates"]]))
    s = g.stream("/v1/events", {"Last-Event-ID": "0"})
    ev = s.event()
    while ev["event"] != "gap":
        ev = s.event()
    check(json.loads(ev["data"]) == {"from": 1, "to": first - 1} and int(ev["id"]) == first - 1,
          "gap event %s" % ev)
    check(int(s.updates(1)[0]["id"]) == first, "the update after the gap")
    s.close()


def test_publish(w):
    key, d, g = demo_world(w, "--publish", "--max-request-bytes", "4096")
    stranger = w.keygen("stranger", trust=None)

    def envelope(k, headline, form=""):
        r = subprocess.run([PARLEY, "pub", "-k", k, "--print-envelope" + form,
                            "--negotiation", "gaza-ceasefire", "--party", "us",
                            "--status", "signed", "--headline", headline],
                           capture_output=True)
        check(r.returncode == 0, "print-envelope: %s" % r.stderr)
        return r.stdout

    before = d.stats()
    env = envelope(key, "posted as protobuf")
    s = g.stream("/v1/events?party=us")
    status, _, body = g.request("POST", "/v1/updates", env,
                                {"Content-Type": "application/x-protobuf"})
    doc = json.loads(body)
    check(status == 200 and doc["duplicate"] is False and doc["seq"] == 13,
          "valid post: %d %s" % (status, body))
    ev = s.updates(1)[0]
    check(int(ev["id"]) == 13 and json.loads(ev["data"])["headline"] == "posted as protobuf",
          "the posted update on the stream")
    s.close()
    status, _, body = g.request("POST", "/v1/updates", env,
                                {"Content-Type": "application/octet-stream"})
    check(status == 200 and json.loads(body) == {"seq": 13, "duplicate": True},
          "resend: %d %s" % (status, body))
    jenv = envelope(key, "posted as json", "=json")
    status, _, body = g.request("POST", "/v1/updates", jenv,
                                {"Content-Type": "application/json"})
    check(status == 200 and json.loads(body)["seq"] == 14, "json post: %s" % body)
    # An update as the gateway shows it, posted back whole: a duplicate.
    shown = wait_for(lambda: g.json("/v1/updates?since=14")["updates"], 5,
                     "update 14 at the gateway")[0]
    status, _, body = g.request("POST", "/v1/updates", json.dumps(shown).encode(),
                                {"Content-Type": "application/json"})
    check(status == 200 and json.loads(body) == {"seq": 14, "duplicate": True},
          "posting a shown update back: %s" % body)
    # Forged: one bit of the signature flipped.
    forged = bytearray(envelope(key, "forged"))
    forged[-1] ^= 1
    status, _, body = g.request("POST", "/v1/updates", bytes(forged),
                                {"Content-Type": "application/x-protobuf"})
    doc = json.loads(body)
    check(status == 403 and doc["error"] == "bad_signature", "forged: %d %s" % (status, body))
    status, _, body = g.request("POST", "/v1/updates", envelope(stranger, "who?"),
                                {"Content-Type": "application/x-protobuf"})
    check(status == 403 and json.loads(body)["error"] == "unknown_signer",
          "unknown signer: %d %s" % (status, body))
    # JSON with a tampered body: the daemon's signature check catches it.
    t = json.loads(jenv)
    b = bytearray(base64.b64decode(t["signed_body"]))
    b[-3] ^= 1
    t["signed_body"] = base64.b64encode(bytes(b)).decode()
    status, _, body = g.request("POST", "/v1/updates", json.dumps(t).encode(),
                                {"Content-Type": "application/json"})
    check(status == 403 and json.loads(body)["error"] == "bad_signature",
          "tampered json: %d %s" % (status, body))
    after = d.stats()
    for name, delta in (("accepted", 2), ("duplicates", 2), ("rejected_bad_signature", 2),
                        ("rejected_unknown_signer", 1)):
        check(after[name] - before[name] == delta,
              "parleyd %s moved by %d, expected %d" % (name, after[name] - before[name], delta))
    # Refused by the gateway itself: too large, malformed, wrong type.
    status, _, body = g.request("POST", "/v1/updates", b"x" * 5000,
                                {"Content-Type": "application/x-protobuf"})
    check(status == 413 and json.loads(body)["error"] == "too_large", "oversized: %d" % status)
    for body_, ctype, want in ((b"\x0a\x02hi", "application/x-protobuf", 400),
                               (b"{\"signed_body\":1}", "application/json", 400),
                               (b"not json", "application/json", 400),
                               (b"hello", "text/plain", 415)):
        status, _, body = g.request("POST", "/v1/updates", body_, {"Content-Type": ctype})
        check(status == want, "%s %r: %d %s" % (ctype, body_, status, body))
    # Chunked and too long: cut off, nothing forwarded.
    sock = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    sock.sendall(b"POST /v1/updates HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: application/x-protobuf\r\n\r\n")
    try:
        for _ in range(10):
            sock.sendall(b"400\r\n" + b"y" * 1024 + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        reply = sock.recv(1000)
    except (BrokenPipeError, ConnectionResetError):
        reply = b""
    sock.close()
    check(not reply.startswith(b"HTTP/1.1 200"), "a chunked 10 KiB body was taken: %r" % reply)
    m = g.metrics()
    check(m['parley_gateway_publish_refused_total{reason="too_large"}'] == 2
          and m['parley_gateway_publish_refused_total{reason="malformed"}'] == 3
          and m['parley_gateway_publish_refused_total{reason="media_type"}'] == 1
          and m['parley_gateway_publish_total{result="bad_signature"}'] == 2
          and m['parley_gateway_publish_total{result="accepted"}'] == 2
          and m['parley_gateway_publish_total{result="duplicate"}'] == 2,
          "publish metrics: %s" % {k: v for k, v in m.items() if "publish" in k})
    check(d.stats()["accepted"] == after["accepted"], "nothing refused reached parleyd")


def test_publish_off_by_default(w):
    key, d, g = demo_world(w)
    r = subprocess.run([PARLEY, "pub", "-k", key, "--print-envelope", "--negotiation",
                        "gaza-ceasefire", "--party", "us", "--status", "signed",
                        "--headline", "nope"], capture_output=True)
    status, _, body = g.request("POST", "/v1/updates", r.stdout,
                                {"Content-Type": "application/x-protobuf"})
    check(status == 403 and json.loads(body)["error"] == "forbidden",
          "publish off: %d %s" % (status, body))
    check(d.stats()["received"] >= 0 and d.stats()["accepted"] == 12, "not forwarded")


def test_corrections_retractions_expiry(w):
    key, d, g = demo_world(w)
    s = g.stream("/v1/events?party=egypt")
    # Retract 12 (us, egypt phase 0): egypt's cell falls back to what the
    # daemon's snapshot holds for it.
    r = d.pub(key, "--kind", "retraction", "--ref", "12", headline="retracted",
              party="egypt", phase=0)
    ev = s.updates(1)[0]
    check(int(ev["id"]) == r, "the retraction on the stream")
    st = wait_for(lambda: [e for e in [s.event(5)] if e["event"] == "state"], 5,
                  "a state event")[0]
    check(json.loads(st["data"])["seq"] >= r, "state event %s" % st)
    cells = state_cells(g.json("/v1/state"))
    check(cells[("gaza-ceasefire", 0, "egypt")] == 1 and cells[("gaza-ceasefire", 0, "us")] == 10,
          "after the retraction: %s" % cells)
    # A correction of 3 moves phase 1 to agreed_in_principle.
    c = d.pub(key, "--kind", "correction", "--ref", "3", headline="corrected",
              party="israel,hamas", phase=1, status="agreed_in_principle")
    doc = wait_for(lambda: [x for x in [g.json("/v1/state?phase=1")]
                            if x["seq"] >= c and not x["stale"]], 5, "the corrected state")[0]
    cells = state_cells(doc)
    check(cells == {("gaza-ceasefire", 1, "israel"): c, ("gaza-ceasefire", 1, "hamas"): c},
          "after the correction: %s" % cells)
    # An update that expires leaves the state when it does.
    expires = int(time.time() * 1000) + 1500
    e = d.pub(key, "--expires-at", str(expires), headline="soon gone", party="qatar", phase=7)
    wait_for(lambda: ("gaza-ceasefire", 7, "qatar") in state_cells(g.json("/v1/state")), 5,
             "the expiring update in the state")
    wait_for(lambda: ("gaza-ceasefire", 7, "qatar") not in state_cells(g.json("/v1/state")),
             10, "the expired update to leave the state")
    s.close()


def model_cells(records, negs):
    """The reference model's state (state_model.py) of negotiations negs,
    keyed as state_cells() keys a /v1/state answer."""
    want = set(negs)
    st = state_model.state([r for r in records if r["negotiation"] in want])
    return {(k[0], k[2], k[1]): seq for k, seq in st.items()}


class ModelFeed:
    """Records published through `parley pub --json` and the model's view
    of them, compared with the gateway's GET /v1/state entry by entry."""

    def __init__(self, w, d, g, key):
        self.w, self.d, self.g, self.key = w, d, g, key
        self.records = []
        self.head = 0
        self.compared = 0

    def next_seq(self):
        self.head += 1
        return self.head

    def publish(self, recs):
        now = int(time.time() * 1000)
        lines = []
        for r in recs:
            u = {k: r[k] for k in ("negotiation", "parties", "phase", "status",
                                   "kind", "headline")}
            if r["references"]:
                u["references"] = r["references"]
            if r["expiry"] == "expired":
                u["issued_at"], u["expires_at"] = now - 60000, now - 30000
            elif r["expiry"] == "later":
                u["expires_at"] = now + 86400000
            lines.append(json.dumps(u))
        r = subprocess.run([PARLEY, "pub", "-s", self.d.api, "-k", self.key, "--json"],
                           input="\n".join(lines).encode() + b"\n",
                           capture_output=True, timeout=60)
        seqs = [int(x) for x in r.stdout.split()]
        check(r.returncode == 0 and seqs == [x["seq"] for x in recs],
              "published as %s, expected %s: %s"
              % (seqs, [x["seq"] for x in recs], r.stderr.decode()))
        self.records += recs

    def compare(self, negs, what):
        """Wait until the gateway's state holds everything published and
        is not waiting for a snapshot, then compare it with the model."""
        doc = wait_for(lambda: [x for x in [self.g.json("/v1/state")]
                                if x["seq"] >= self.head and not x["stale"]],
                       15, "the gateway's state through seq %d" % self.head)[0]
        got = {k: v for k, v in state_cells(doc).items() if k[0] in set(negs)}
        want = model_cells(self.records, negs)
        if got != want:
            diff = ["  %s/phase %d/%s: gateway %s, model %s"
                    % (k[0], k[1], k[2], got.get(k), want.get(k))
                    for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
            recs = [json.dumps(r) for r in self.records if r["negotiation"] in set(negs)]
            raise Failure("%s: GET /v1/state differs from the model:\n%s\nrecords:\n%s"
                          % (what, "\n".join(diff[:20]), "\n".join(recs[-40:])))
        self.compared += len(want)
        return doc


def test_state_follows_the_model(w):
    """Issue 19: GET /v1/state follows the state model of docs/protocol.md
    section 5 (a retraction or correction falls back to the update before;
    an expired update holds nothing), compared entry by entry with the
    reference model (state_model.py): the U1/U2 example by name, then
    random sequences published while the gateway runs, so that their
    corrections and retractions reach it live."""
    key = w.keygen("desk")
    conf = w.path("parleyd.conf")
    with open(conf, "w") as f:
        f.write("rate_limit 0\n")
    d = Daemon(w, conf=conf)
    d.start()
    g = Gateway(w, d)
    g.start()
    feed = ModelFeed(w, d, g, key)

    def rec(kind, parties, status, refs=(), expiry=None):
        return {"seq": feed.next_seq(), "kind": kind, "negotiation": "u1-u2",
                "parties": parties, "phase": 1, "status": status,
                "references": list(refs), "headline": "U1/U2 " + status,
                "expiry": expiry, "expired": expiry == "expired"}
    u1 = rec("update", ["israel", "hamas"], "proposed")
    u2 = rec("update", ["israel"], "agreed_in_principle")
    feed.publish([u1, u2])
    feed.compare(["u1-u2"], "U1, U2")
    feed.publish([rec("retraction", ["israel"], "agreed_in_principle", [u2["seq"]])])
    doc = feed.compare(["u1-u2"], "U2 retracted")
    cells = doc["negotiations"][0]["phases"][0]["parties"]
    check(cells["israel"]["seq"] == u1["seq"] and cells["israel"]["status"] == "proposed",
          "after U2 is retracted israel is %s" % cells["israel"])
    # An update that has expired when it arrives holds nothing: hamas has
    # no state (nothing falls back past it), israel keeps U1.
    feed.publish([rec("update", ["hamas"], "stalled", expiry="expired")])
    feed.compare(["u1-u2"], "U3 expired")

    # Random sequences (state_model.Sequence), one record of each per
    # chunk, compared after every chunk.
    rng = random.Random(int(os.environ.get("STATE_SEED", "19")))
    seqs = [state_model.Sequence(i) for i in range(24)]
    negs = [n for s in seqs for n in s.negs]
    for chunk in range(10):
        feed.publish([s.record(rng, feed) for s in seqs])
        feed.compare(negs, "chunk %d" % (chunk + 1))
    # A gateway started now loads all of it from one snapshot.
    g2 = Gateway(w, d, name="gateway2")
    g2.start()
    feed.g = g2
    feed.compare(negs + ["u1-u2"], "a new gateway")
    g2.stop()
    g.stop()  # exit 0: also no leak under ASan
    kinds = {}
    for r in feed.records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print("state: %d records (%s), %d entries compared with the model"
          % (feed.head, ", ".join("%d %ss" % kv[::-1] for kv in sorted(kinds.items())),
             feed.compared), flush=True)


def raw_conn(port, src="127.0.0.1"):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(sock, secs=10):
    """True when the server closes (or resets) the connection in time."""
    sock.settimeout(secs)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_limits_and_timeouts(w):
    key = w.keygen("desk")
    d = Daemon(w)
    d.start()
    g = Gateway(w, d, "--max-connections", "5", "--max-connections-per-ip", "3",
                "--max-sse-clients", "2", "--header-timeout", "1",
                "--connection-memory", "8K")
    g.start()
    # Per address: the fourth from 127.0.0.1 is closed at once.
    held = [raw_conn(g.port) for _ in range(3)]
    extra = raw_conn(g.port)
    check(closed_by_server(extra, 5), "a 4th connection from one address was kept")
    # In total: two more from 127.0.0.2 fit, the sixth (127.0.0.3) does not.
    held += [raw_conn(g.port, "127.0.0.2") for _ in range(2)]
    sixth = raw_conn(g.port, "127.0.0.3")
    check(closed_by_server(sixth, 5), "a 6th connection was kept")
    for s in held + [extra, sixth]:
        s.close()

    def settled():
        # Until the gateway has seen the closes, this request may itself
        # be refused by the limits.
        try:
            return g.metrics()["parley_gateway_connections"] <= 1
        except OSError:
            return False
    wait_for(settled, 10, "the held connections to close")
    m = g.metrics()
    check(m['parley_gateway_connections_refused_total{limit="per_ip"}'] >= 1
          and m['parley_gateway_connections_refused_total{limit="total"}'] >= 1,
          "refusals counted: %s" % m)
    # Slowloris: a request head trickled in is cut off after header_timeout.
    slow = raw_conn(g.port)
    slow.sendall(b"GET /v1/state HTTP/1.1\r\n")
    t0 = time.time()
    cut = False
    for _ in range(40):
        try:
            slow.sendall(b"X-Slow: 1\r\n")
        except (BrokenPipeError, ConnectionResetError):
            cut = True
            break
        if closed_by_server(slow, 0.25):
            cut = True
            break
    check(cut, "a trickling request head was never cut off")
    check(g.metrics()["parley_gateway_header_timeouts_total"] >= 1, "header timeout counted")
    # A connection that sends nothing at all is closed the same way.
    idle = raw_conn(g.port)
    check(closed_by_server(idle, 10), "an idle connection was kept")
    # A request head larger than the connection's memory is refused.
    big = raw_conn(g.port)
    big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    reply = b""
    try:
        while True:
            data = big.recv(4096)
            if not data:
                break
            reply += data
    except (ConnectionResetError, socket.timeout):
        pass
    check(not reply.startswith(b"HTTP/1.1 200"), "a 20 KB head was served: %r" % reply[:80])
    big.close()
    # Streams: two fit, the third is refused.
    s1, s2 = g.stream(), g.stream()
    status, _, body = g.get("/v1/events")
    check(status == 503 and json.loads(body)["error"] == "busy", "3rd stream: %d" % status)
    check(g.metrics()["parley_gateway_sse_refused_total"] == 1, "stream refusal counted")
    s1.close()
    s2.close()


def test_jobs_refused_when_workers_are_busy(w):
    """One worker and one place in its queue: with parleyd stopped, a
    third request for old updates is answered 503 at once, and counted."""
    import signal
    import threading
    key, d, g = demo_world(w, "--workers", "1", "--max-jobs", "1",
                           "--timeout-ms", "10000", window=2)
    d.proc.send_signal(signal.SIGSTOP)
    answers = []
    threads = []

    def ask():
        try:
            answers.append(g.get("/v1/updates?since=1")[0])
        except OSError as e:
            answers.append(str(e))

    def gauges():
        m = g.metrics()
        return m["parley_gateway_jobs"], m["parley_gateway_jobs_waiting"]
    try:
        # One at a time, each seen where it should be before the next:
        # the first held by the worker, the second in the queue.
        for want in ((1, 0), (2, 1)):
            threads.append(threading.Thread(target=ask))
            threads[-1].start()
            wait_for(lambda: gauges() == want, 10,
                     "jobs and jobs_waiting %r" % (want,))
        threads.append(threading.Thread(target=ask))
        threads[-1].start()
        # The worker holds one and its queue one: the third cannot wait.
        wait_for(lambda: 503 in answers, 10, "a 503 while the worker is busy")
    finally:
        d.proc.send_signal(signal.SIGCONT)
    for t in threads:
        t.join(30)
    check(answers.count(503) == 1 and answers.count(200) == 2,
          "answers %s" % answers)
    check(g.metrics()["parley_gateway_jobs_refused_total"] == 1, "refusal counted")


def test_bad_configuration(w):
    w.keygen("desk")
    from gateway_harness import GATEWAY
    for args, want in ((["--listen", "127.0.0.1:7780"], 2),          # no keyring
                       (["--keyring", w.path("keyring"), "--window", "0"], 1),
                       (["--keyring", w.path("keyring"), "--listen", "localhost:1"], 1),
                       (["--keyring", w.path("nope")], 2),
                       (["--keyring", w.path("keyring"), "--colour", "red"], 1)):
        r = subprocess.run([GATEWAY] + args, capture_output=True, timeout=10)
        check(r.returncode == want and r.stderr,
              "%s: exit %d (expected %d): %s" % (args, r.returncode, want, r.stderr))
    r = subprocess.run([GATEWAY, "--help"], capture_output=True)
    check(r.returncode == 0 and b"--max-connections-per-ip" in r.stdout, "--help")
    conf = w.path("gw.conf")
    with open(conf, "w") as f:
        f.write("# a config file\nkeyring %s\nlisten 127.0.0.1:1\nwindow 12 apples\n"
                % w.path("keyring"))
    r = subprocess.run([GATEWAY, "-c", conf], capture_output=True, timeout=10)
    check(r.returncode == 2 and b"gw.conf:4" in r.stderr, "config error line: %s" % r.stderr)


if __name__ == "__main__":
    main([test_state_and_filters, test_updates_pages_and_filters,
          test_updates_beyond_the_window, test_keyring_metrics_health_board,
          test_cors_when_configured, test_events_live_filter_resume_keepalive,
          test_events_across_parleyd_restart, test_events_across_gateway_restart,
          test_gap_events, test_publish, test_publish_off_by_default,
          test_corrections_retractions_expiry, test_state_follows_the_model,
          test_limits_and_timeouts,
          test_jobs_refused_when_workers_are_busy, test_bad_configuration], "http")
