# test_webhook_formats.sh - each --webhook-format reaches a local HTTP
# server as the exact request docs/alerts.md describes (issue 14,
# acceptance 1): method, path, every header, and the body byte for byte.
#
# One update (a headline with < > & for Slack's escaping, and a body) is
# published; for each format, parley sub --since 1 -C 1 --webhook posts
# it with an extra --header. The expected requests are written out here
# from the update's fields, independently of the tool; the json format's
# body must equal the update's parley replay --json line.
. "$(dirname "$0")/harness.sh"

make_key desk
start_parleyd "$T/d" --keyring "$T/keyring" --no-fsync
export PARLEY_SERVER=$API
"$PARLEY" pub -q -k "$T/desk" --negotiation gaza-ceasefire --party israel \
    --party hamas --phase 1 --status agreed_in_principle \
    --headline "Phase 1 <agreed> & signed" --body "Details." >/dev/null \
    || fail "publish failed"
"$PARLEY" replay --since 1 --until 1 --json >"$T/replay.json" || fail "replay --json failed"
ID=$(daemon_id "$API")
start_hook "$T/hook" ok

for f in json slack mattermost matrix ntfy teams; do
    timeout 30 "$PARLEY" sub --since 1 -C 1 --webhook "$HOOK_URL/$f" \
        --webhook-format "$f" --header "Authorization: Bearer t0k" \
        >"$T/$f.out" 2>"$T/$f.err"
    rc=$?
    PH_LOGS="$PH_LOGS $T/$f.err"
    [ $rc -eq 0 ] || fail "--webhook-format $f: parley sub exited $rc"
done

VERSION=$("$PARLEY" --version | sed -n 's/^parley //p')
python3 - "$T/hook/hook.log" "$T/replay.json" "$ID" "$VERSION" <<'EOF' || fail "a request differs (above)"
import json, sys
log = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
replay = open(sys.argv[2], encoding="utf-8").read().rstrip("\n")
daemon = sys.argv[3]
version = sys.argv[4]
signer_id = json.loads(replay)["signer_id"]
key = "%s/1" % daemon
line = "#1 gaza-ceasefire phase 1 [israel,hamas] agreed_in_principle: Phase 1 <agreed> & signed"
title = "gaza-ceasefire phase 1 [israel,hamas]: agreed_in_principle"
js = {"Content-Type": "application/json"}
want = {
    "json": ("POST", "/json", js, replay),
    "slack": ("POST", "/slack", js,
              '{"text":"#1 gaza-ceasefire phase 1 [israel,hamas] agreed_in_principle: '
              'Phase 1 &lt;agreed&gt; &amp; signed"}'),
    "mattermost": ("POST", "/mattermost", js, '{"text":"%s"}' % line),
    "matrix": ("PUT", "/matrix/parley-%s-1" % daemon, js,
               '{"msgtype":"m.notice","body":"%s"}' % line),
    "ntfy": ("POST", "/ntfy",
             {"Content-Type": "text/plain; charset=utf-8", "Title": title,
              "Tags": "parley,agreed_in_principle", "Priority": "high"},
             "Phase 1 <agreed> & signed\n\nDetails."),
    "teams": ("POST", "/teams", js,
              '{"type":"message","attachments":[{"contentType":'
              '"application/vnd.microsoft.card.adaptive","content":{"$schema":'
              '"http://adaptivecards.io/schemas/adaptive-card.json","type":'
              '"AdaptiveCard","version":"1.4","body":[{"type":"TextBlock","text":'
              '"%s","weight":"Bolder","wrap":true},{"type":"TextBlock","text":'
              '"Phase 1 <agreed> & signed","wrap":true},{"type":"FactSet","facts":'
              '[{"title":"seq","value":"1"},{"title":"signer","value":"%s"}]}]}}]}'
              % (title, signer_id)),
}
if len(log) != len(want):
    sys.exit("%d requests, expected %d" % (len(log), len(want)))
for r in log:
    fmt = r["path"].split("/")[1]
    method, path, extra, body = want[fmt]
    headers = dict(r["headers"])
    expect = {"Host": r["headers"][0][1], "Accept": "*/*",
              "Content-Length": str(len(body.encode("utf-8"))),
              "Idempotency-Key": key, "User-Agent": "parley/" + version,
              "Authorization": "Bearer t0k"}
    expect.update(extra)
    problems = []
    if r["method"] != method or r["path"] != path:
        problems.append("%s %s, expected %s %s" % (r["method"], r["path"], method, path))
    if headers != expect:
        problems.append("headers %r, expected %r" % (headers, expect))
    if r["body"] != body:
        problems.append("body\n  %r\nexpected\n  %r" % (r["body"], body))
    if problems:
        sys.exit("%s: %s" % (fmt, "; ".join(problems)))
print("6 formats, each request exact")
EOF
stop_parleyd
pass "every --webhook-format sends the documented request"
