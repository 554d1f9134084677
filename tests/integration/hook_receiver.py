"""hook_receiver.py - a web hook for the alert tests, on 127.0.0.1.

usage: python3 hook_receiver.py DIR MODE [ARG]

Listens on a free loopback port, writes it to DIR/hook.port (atomically)
and logs every request as one JSON line in DIR/hook.log:
    {"t": seconds since start, "method", "path", "headers": {...},
     "body": the body as text, "status": the status answered}
MODE says how it answers:
    ok                 200 to everything
    fail-for SECONDS   503 until SECONDS after its start, then 200
    fail-always        500 to everything
    slow MS            200 after MS milliseconds
Requests are handled one at a time, in the order they arrive.
"""
import http.server
import json
import os
import sys
import time

DIR, MODE = sys.argv[1], sys.argv[2]
ARG = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
START = time.monotonic()
LOG = open(os.path.join(DIR, "hook.log"), "a", encoding="utf-8")


class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        t = time.monotonic() - START
        if MODE == "fail-for" and t < ARG:
            status = 503
        elif MODE == "fail-always":
            status = 500
        else:
            status = 200
        if MODE == "slow":
            time.sleep(ARG / 1000.0)
        LOG.write(json.dumps({
            "t": t, "method": self.command, "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8"), "status": status}) + "\n")
        LOG.flush()
        reply = b"unavailable" if status >= 300 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_POST = _answer
    do_PUT = _answer

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
tmp = os.path.join(DIR, "hook.port.tmp")
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, os.path.join(DIR, "hook.port"))
srv.serve_forever()
