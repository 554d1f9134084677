# test_alerts.sh - the alert recipes in examples/alerts/ work as their
# comments say, run by `parley sub -- RECIPE`.
#
#   append-log      one JSON line per update in $PARLEY_ALERT_LOG, whole
#                   even with several commands at once (--exec-jobs)
#   http-post       the JSON reaches a web hook (a python3 http.server on a
#                   free loopback port); a hook that answers 500 is a
#                   failed command, reported by parley sub
#   mqtt-forward    only with mosquitto and mosquitto_pub installed: the
#                   JSON reaches a broker on a free port, on the topic
#                   parley/<negotiation>/phase/<n>
#   notify-desktop  needs a desktop session: only `sh -n`
#   send-mail       one mail per update through sendmail -t (a stand-in
#                   sendmail that keeps each message, as none is installed
#                   here): a headline with a newline stays one Subject
#                   header, the Message-ID comes from the Idempotency-Key
. "$(dirname "$0")/harness.sh"

A=$PARLEY_SOURCE_DIR/examples/alerts
for r in append-log http-post mqtt-forward notify-desktop send-mail; do
    [ -x "$A/$r" ] || fail "$A/$r is missing or not executable"
    sh -n "$A/$r" || fail "$r: sh -n finds a syntax error"
done

make_key desk
# Every command runs in an empty directory: a file that appears there was
# made by text from an update.
mkdir "$T/run"
cd "$T/run" || fail "cd $T/run"
start_parleyd "$T/d" --keyring "$T/keyring" --no-fsync
export PARLEY_SERVER=$API

# Three updates; the third has quotes, a newline and shell syntax in it.
H3='Talks "resume" in Cairo; $(touch pwned) `id`'$'\n''second line'
for h in "Talks scheduled in Cairo" "US bridging proposal presented" "$H3"; do
    "$PARLEY" pub -q -k "$T/desk" --negotiation gaza-ceasefire --party hamas \
        --party israel --phase 1 --status talks_scheduled --headline "$h" \
        >/dev/null || fail "publish '$h' failed"
done

# check_json FILE N: FILE holds the JSON of seqs 1..N (any order), one
# object per line, with the headlines published.
check_json() {
    H3="$H3" python3 - "$1" "$2" <<'EOF'
import json, os, sys
want = {1: "Talks scheduled in Cairo", 2: "US bridging proposal presented",
        3: os.environ["H3"]}
n = int(sys.argv[2])
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
if lines[-1] != "":
    sys.exit("the last line is not terminated")
objs = [json.loads(l) for l in lines[:-1]]
got = sorted(o["seq"] for o in objs)
if got != list(range(1, n + 1)):
    sys.exit("seqs %r, expected 1..%d" % (got, n))
for o in objs:
    if o["headline"] != want[o["seq"]] or o["negotiation"] != "gaza-ceasefire" \
            or o["parties"] != ["hamas", "israel"] or o["phase"] != 1:
        sys.exit("#%d arrived as %r" % (o["seq"], o))
EOF
}

# --- append-log, three commands at once ------------------------------------
PARLEY_ALERT_LOG=$T/alerts.jsonl timeout 60 "$PARLEY" sub -v \
    --since 1 -C 3 -W 30 --exec-jobs 3 -- "$A/append-log" \
    >"$T/append.out" 2>"$T/append.err"
rc=$?
PH_LOGS="$PH_LOGS $T/append.err"
[ $rc -eq 0 ] || fail "parley sub -- append-log exited $rc"
check_json "$T/alerts.jsonl" 3 || fail "append-log wrote the wrong lines"
grep -q "3 commands run, 0 failed" "$T/append.err" \
    || fail "parley sub -v did not report 3 commands run, 0 failed"

# --- http-post --------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
    # A web hook that stores each POST and answers with $T/hook.status.
    echo 200 >"$T/hook.status"
    python3 - "$T" <<'EOF' >"$T/hook.log" 2>&1 &
import http.server, json, os, sys
d = sys.argv[1]
class Hook(http.server.BaseHTTPRequestHandler):
    n = 0
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.n += 1
        with open(os.path.join(d, "post.%d" % Hook.n), "wb") as f:
            f.write(body)
        with open(os.path.join(d, "post.%d.type" % Hook.n), "w") as f:
            f.write(self.headers.get("Content-Type", ""))
        code = int(open(os.path.join(d, "hook.status")).read())
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
with open(os.path.join(d, "hook.port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(d, "hook.port.tmp"), os.path.join(d, "hook.port"))
srv.serve_forever()
EOF
    PH_PIDS="$PH_PIDS $!"
    PH_LOGS="$PH_LOGS $T/hook.log"
    wait_until 10 [ -f "$T/hook.port" ] || fail "the test web hook did not start"
    URL=http://127.0.0.1:$(cat "$T/hook.port")/hook

    PARLEY_WEBHOOK_URL=$URL timeout 60 "$PARLEY" sub --since 1 -C 3 -W 30 \
        -- "$A/http-post" >"$T/http.out" 2>"$T/http.err"
    rc=$?
    PH_LOGS="$PH_LOGS $T/http.err"
    [ $rc -eq 0 ] || fail "parley sub -- http-post exited $rc"
    [ -s "$T/http.err" ] && fail "http-post reported problems"
    : >"$T/posts.jsonl"
    for i in 1 2 3; do
        [ -f "$T/post.$i" ] || fail "the web hook got no POST $i"
        [ "$(cat "$T/post.$i.type")" = application/json ] \
            || fail "POST $i has Content-Type '$(cat "$T/post.$i.type")'"
        cat "$T/post.$i" >>"$T/posts.jsonl"
    done
    [ ! -f "$T/post.4" ] || fail "the web hook got more than 3 POSTs"
    check_json "$T/posts.jsonl" 3 || fail "the web hook got the wrong JSON"

    # A hook that fails: each command fails, is reported, and sub goes on.
    echo 500 >"$T/hook.status"
    PARLEY_WEBHOOK_URL=$URL timeout 60 "$PARLEY" sub -v --since 1 -C 2 -W 30 \
        -- "$A/http-post" >"$T/http500.out" 2>"$T/http500.err"
    rc=$?
    PH_LOGS="$PH_LOGS $T/http500.err"
    [ $rc -eq 0 ] || fail "parley sub with a failing hook exited $rc"
    for s in 1 2; do
        grep -q "^parley: #$s: $A/http-post exited with status 22$" "$T/http500.err" \
            || fail "no failure line for #$s (curl --fail exits 22)"
    done
    grep -q "2 commands run, 2 failed" "$T/http500.err" \
        || fail "parley sub -v did not count 2 failed commands"
    # -q: failures counted, not reported (curl's own message remains).
    PARLEY_WEBHOOK_URL=$URL timeout 60 "$PARLEY" sub -q --since 1 -C 1 -W 30 \
        -- "$A/http-post" >"$T/httpq.out" 2>"$T/httpq.err"
    ! grep '^parley:' "$T/httpq.err" || fail "parley sub -q reported a failure"
else
    echo "SKIP http-post: curl is not installed"
fi

# --- mqtt-forward ------------------------------------------------------------
if command -v mosquitto >/dev/null 2>&1 && command -v mosquitto_pub >/dev/null 2>&1 \
        && command -v mosquitto_sub >/dev/null 2>&1; then
    MQTT_PORT=$(free_port)
    # Only a listener on loopback, no persistence, no password file.
    # log_type subscribe: the log says when mosquitto_sub's SUBSCRIBE is in.
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type subscribe\n' \
        "$MQTT_PORT" >"$T/mosquitto.conf"
    [ "$(id -u)" -eq 0 ] && echo "user root" >>"$T/mosquitto.conf"
    mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
    PH_PIDS="$PH_PIDS $!"
    PH_LOGS="$PH_LOGS $T/mosquitto.log"
    wait_until 10 eval '! port_free "$MQTT_PORT"' || fail "mosquitto did not listen on $MQTT_PORT"
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t 'parley/#' -v -C 3 -W 30 \
        >"$T/mqtt.out" 2>"$T/mqtt.err" &
    MSUB=$!
    PH_PIDS="$PH_PIDS $MSUB"
    wait_connected "$MSUB" "$MQTT_PORT" 10 || fail "mosquitto_sub did not connect"
    wait_until 10 grep -q 'parley/#' "$T/mosquitto.log" \
        || fail "mosquitto never logged mosquitto_sub's subscription"
    PARLEY_MQTT_PORT=$MQTT_PORT timeout 60 "$PARLEY" sub --since 1 -C 3 -W 30 \
        -- "$A/mqtt-forward" >"$T/mqttfwd.out" 2>"$T/mqttfwd.err"
    rc=$?
    PH_LOGS="$PH_LOGS $T/mqttfwd.err $T/mqtt.err"
    [ $rc -eq 0 ] || fail "parley sub -- mqtt-forward exited $rc"
    wait_exit "$MSUB" 30
    [ "$EXIT_STATUS" -eq 0 ] || fail "mosquitto_sub exited $EXIT_STATUS"
    # "TOPIC PAYLOAD" per message; the payload of #3 spans two lines only
    # if the JSON were not escaped, which it is.
    python3 - "$T/mqtt.out" "$T/mqtt.jsonl" <<'EOF' || fail "mqtt-forward sent the wrong messages"
import sys
out = open(sys.argv[2], "w", encoding="utf-8")
for line in open(sys.argv[1], encoding="utf-8"):
    topic, payload = line.rstrip("\n").split(" ", 1)
    if topic != "parley/gaza-ceasefire/phase/1":
        sys.exit("topic %r" % topic)
    out.write(payload + "\n")
EOF
    check_json "$T/mqtt.jsonl" 3 || fail "the broker got the wrong JSON"
else
    echo "SKIP mqtt-forward: mosquitto, mosquitto_pub and mosquitto_sub are not all installed"
fi

# --- send-mail ---------------------------------------------------------------
mkdir "$T/bin" "$T/mail"
cat >"$T/bin/sendmail" <<EOF
#!/bin/sh
# keeps the arguments and the message; the mail is not sent anywhere
n=\$(ls "$T/mail" | grep -c eml)
printf '%s\\n' "\$*" >"$T/mail/\$n.args"
cat >"$T/mail/\$n.eml"
EOF
chmod 755 "$T/bin/sendmail"
ID=$(daemon_id "$API")
PATH=$T/bin:$PATH PARLEY_MAIL_TO=desk@example.org PARLEY_MAIL_FROM=parley@example.org \
    timeout 60 "$PARLEY" sub --since 1 -C 3 -W 30 -- "$A/send-mail" \
    >"$T/mail.out" 2>"$T/mail.err"
rc=$?
PH_LOGS="$PH_LOGS $T/mail.err"
[ $rc -eq 0 ] || fail "parley sub -- send-mail exited $rc"
H3="$H3" python3 - "$T/mail" "$ID" <<'EOF' || fail "send-mail wrote the wrong mails"
import email, os, sys
d, daemon = sys.argv[1], sys.argv[2]
heads = {1: "Talks scheduled in Cairo", 2: "US bridging proposal presented",
         3: os.environ["H3"]}
for i in range(3):
    args = open(os.path.join(d, "%d.args" % i)).read()
    if args != "-t -oi\n":
        sys.exit("sendmail arguments %r" % args)
    raw = open(os.path.join(d, "%d.eml" % i), "rb").read()
    head, _, body = raw.partition(b"\n\n")
    names = [l.split(b":")[0] for l in head.split(b"\n")]
    want = [b"To", b"From", b"Subject", b"Message-ID", b"MIME-Version",
            b"Content-Type", b"Content-Transfer-Encoding"]
    if names != want:
        sys.exit("mail %d headers %r" % (i, names))
    m = email.message_from_bytes(raw)
    seq = i + 1
    flat = heads[seq].replace("\n", " ")
    if m["Subject"] != "[parley] gaza-ceasefire phase 1: talks_scheduled: " + flat:
        sys.exit("mail %d subject %r" % (i, m["Subject"]))
    if m["Message-ID"] != "<parley.%s.%d@parley.invalid>" % (daemon, seq):
        sys.exit("mail %d Message-ID %r" % (i, m["Message-ID"]))
    if m["To"] != "desk@example.org" or m["From"] != "parley@example.org":
        sys.exit("mail %d To/From %r %r" % (i, m["To"], m["From"]))
    text = body.decode("utf-8")
    if not text.startswith(heads[seq] + "\n\n") or "\nSeq: %d\n" % seq not in text:
        sys.exit("mail %d body %r" % (i, text))
EOF

[ -z "$(ls -A "$T/run")" ] || fail "files appeared where the recipes ran: $(ls -A "$T/run")"
stop_parleyd
pass "alert recipes deliver every update intact"
