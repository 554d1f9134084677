# test_prometheus.sh - `parley stats --prometheus` is valid Prometheus
# text exposition format and its counters match what was sent (issue 5,
# acceptance 5).
#
# Publishes 4 updates that are accepted and 3 that are rejected (2 by a
# signer the keyring does not know, 1 by a signer it does not allow), then
# parses the output with a strict parser of the text format written here,
# and with promtool when it is installed.
. "$(dirname "$0")/harness.sh"

make_key good                    # trusted for everything
"$PARLEY" keygen -o "$T/stranger" >/dev/null 2>&1 || fail "keygen stranger"
"$PARLEY" keygen -o "$T/limited" >/dev/null 2>&1 || fail "keygen limited"
echo "limited $(cut -d' ' -f1 "$T/limited.pub") negotiations=other-talks parties=* phases=*" \
    >>"$T/keyring"
start_parleyd "$T/d" --keyring "$T/keyring" --no-fsync
export PARLEY_SERVER=$API

ACCEPTED=4
for i in $(seq $ACCEPTED); do
    "$PARLEY" pub -q -k "$T/good" --negotiation gaza-ceasefire --party hamas \
        --phase 1 --status proposed --headline "accepted $i" >/dev/null \
        || fail "publish $i by a trusted signer failed"
done
pub_reject() {   # KEY CODE
    local out rc
    out=$("$PARLEY" pub -k "$T/$1" --negotiation gaza-ceasefire --party hamas \
          --phase 1 --status proposed --headline "rejected" 2>&1)
    rc=$?
    [ $rc -eq 2 ] || fail "publish by $1 exited $rc, expected 2: $out"
    case $out in
        *"rejected: $2"*) ;;
        *) fail "publish by $1: expected reject $2, got: $out" ;;
    esac
}
pub_reject stranger unknown_signer
pub_reject stranger unknown_signer
pub_reject limited forbidden

"$PARLEY" stats --prometheus >"$T/metrics.txt" 2>"$T/stats.err" \
    || fail "parley stats --prometheus exited $?: $(cat "$T/stats.err")"
"$PARLEY" stats >"$T/plain.txt" || fail "parley stats failed"
PH_LOGS="$PH_LOGS $T/metrics.txt"

python3 - "$T/metrics.txt" "$T/plain.txt" "$ACCEPTED" <<'EOF' || fail "the exposition format or its values are wrong"
import math, re, sys

path, plain_path, accepted = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = open(path, "rb").read()
errors = []

def err(lineno, msg):
    errors.append("line %d: %s" % (lineno, msg))

# ---- a strict parser of the text format, version 0.0.4 -------------------
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

try:
    text = raw.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("not UTF-8: %s" % e)
if text == "":
    sys.exit("empty output")
if not text.endswith("\n"):
    errors.append("the last line has no newline")
if "\r" in text:
    errors.append("carriage return in the output")

def family_of(sample, types):
    """The family a sample belongs to (histogram/summary suffixes)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix):
            base = sample[: -len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                return base
    return sample

def parse_value(s):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise ValueError(s)
    return float(s)

def parse_labels(s, lineno):
    labels, i = [], 0
    while i < len(s):
        m = re.match(r"(%s)=\"" % LABEL, s[i:])
        if not m:
            err(lineno, "bad label at %r" % s[i:])
            return None
        i += m.end()
        val = []
        while True:
            if i >= len(s):
                err(lineno, "unterminated label value")
                return None
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    err(lineno, "bad escape in label value")
                    return None
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                err(lineno, "newline in label value")
                return None
            else:
                val.append(c)
                i += 1
        labels.append((m.group(1), "".join(val)))
        if i < len(s):
            if s[i] != ",":
                err(lineno, "expected ',' between labels")
                return None
            i += 1
    names = [n for n, _ in labels]
    if len(set(names)) != len(names):
        err(lineno, "repeated label name")
    return tuple(sorted(labels))

helps, types = {}, {}
seen_samples = {}          # (name, labels) -> value
family_order = []          # families in the order their samples appear
samples_of = {}            # family -> list of (name, value)
closed = set()             # families whose run of samples has ended
last_family = None

for lineno, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
    if line == "":
        continue                            # allowed, and ignored
    if line.startswith("#"):
        m = re.fullmatch(r"# (HELP|TYPE) (%s)(?: (.*))?" % NAME, line)
        if not m:
            if re.match(r"#\s*(HELP|TYPE)\b", line):
                err(lineno, "malformed %r" % line)
            continue                        # a plain comment
        kind, name, rest = m.group(1), m.group(2), m.group(3)
        if name in samples_of:
            err(lineno, "%s for %s after its samples" % (kind, name))
        if kind == "HELP":
            if name in helps:
                err(lineno, "second HELP for %s" % name)
            if rest is None:
                err(lineno, "HELP without text")
            elif re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                err(lineno, "bad escape in HELP text")
            helps[name] = rest or ""
        else:
            if name in types:
                err(lineno, "second TYPE for %s" % name)
            if rest not in TYPES:
                err(lineno, "unknown type %r" % rest)
            types[name] = rest
        continue
    m = re.fullmatch(r"(%s)(?:\{(.*)\})? (\S+)(?: (-?\d+))?" % NAME, line)
    if not m:
        err(lineno, "not a sample line: %r" % line)
        continue
    name, labels_s, value_s = m.group(1), m.group(2), m.group(3)
    labels = parse_labels(labels_s, lineno) if labels_s else ()
    try:
        value = parse_value(value_s)
    except ValueError:
        err(lineno, "value %r is not a float" % value_s)
        continue
    fam = family_of(name, types)
    if fam not in types:
        err(lineno, "sample %s without a TYPE line before it" % name)
    if fam not in helps:
        err(lineno, "sample %s without a HELP line before it" % name)
    if fam != last_family:
        if fam in closed:
            err(lineno, "samples of %s are not together" % fam)
        if last_family is not None:
            closed.add(last_family)
        last_family = fam
        family_order.append(fam)
    key = (name, labels)
    if key in seen_samples:
        err(lineno, "duplicate sample %s%s" % (name, labels or ""))
    seen_samples[key] = value
    samples_of.setdefault(fam, []).append((name, value))
    if types.get(fam) == "counter" and (value < 0 or math.isnan(value)):
        err(lineno, "counter %s is %s" % (name, value_s))

for name in set(helps) | set(types):
    if name not in samples_of:
        errors.append("HELP/TYPE for %s, which has no sample" % name)

# ---- parley's conventions --------------------------------------------------
for fam, t in types.items():
    if not fam.startswith("parley_"):
        errors.append("%s lacks the parley_ prefix" % fam)
    if t == "counter" and not fam.endswith("_total"):
        errors.append("counter %s does not end in _total" % fam)
    if t != "counter" and fam.endswith("_total"):
        errors.append("%s ends in _total but is a %s" % (fam, t))
    if t not in ("counter", "gauge"):
        errors.append("%s has type %s" % (fam, t))

def value(name, want_type):
    if types.get(name) != want_type:
        errors.append("%s: type %s, expected %s" % (name, types.get(name), want_type))
    return seen_samples.get((name, ()))

expect = {
    "parley_accepted_total": ("counter", accepted),
    "parley_rejected_unknown_signer_total": ("counter", 2),
    "parley_rejected_forbidden_total": ("counter", 1),
    "parley_rejected_bad_signature_total": ("counter", 0),
    "parley_duplicates_total": ("counter", 0),
    "parley_requests_publish_total": ("counter", accepted + 3),
    "parley_seq": ("gauge", accepted),
    "parley_first_seq": ("gauge", 1),
    "parley_keyring_signers": ("gauge", 2),
}
for name, (t, want) in expect.items():
    got = value(name, t)
    if got != want:
        errors.append("%s is %r, expected %r" % (name, got, want))
rejected = sum(v for (n, _), v in seen_samples.items()
               if n.startswith("parley_rejected_"))
if rejected != 3:
    errors.append("the rejected_* counters add up to %r, expected 3" % rejected)
for name in ("parley_uptime_seconds", "parley_subscriptions",
             "parley_store_bytes", "parley_store_segments"):
    value(name, "gauge")
for name in ("parley_store_syncs_total", "parley_received_total"):
    value(name, "counter")

# Every stat of `parley stats` is there, under its metric name.
for line in open(plain_path, encoding="utf-8"):
    stat, v = line.split()
    names = ["parley_%s_total" % stat, "parley_%s" % stat]
    found = [n for n in names if (n, ()) in seen_samples]
    if len(found) != 1:
        errors.append("stat %s: %d metrics (%s)" % (stat, len(found), names))
    # (what the two `parley stats` runs themselves change is not compared)
    elif stat not in ("uptime_seconds", "received", "requests_stats",
                      "connections") \
            and seen_samples[(found[0], ())] != float(v):
        errors.append("stat %s is %s, metric %s is %r" % (stat, v, found[0],
                                                          seen_samples[(found[0], ())]))

if errors:
    sys.exit("\n".join(errors))
print("%d metric families parsed" % len(family_order))
EOF

if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 \
        || { cat "$T/promtool.out" >&2; fail "promtool check metrics rejects the output"; }
    [ ! -s "$T/promtool.out" ] || { cat "$T/promtool.out" >&2; fail "promtool check metrics has remarks"; }
    echo "promtool check metrics: OK"
else
    echo "promtool is not installed; checked with the parser above only"
fi

# Options that exclude each other, and no answer: nothing on stdout, so
# that a textfile collector never gets a partial file.
"$PARLEY" stats --json --prometheus >/dev/null 2>&1
[ $? -eq 1 ] || fail "stats --json --prometheus must be a usage error"
dead=tcp://127.0.0.1:$(free_port)
out=$("$PARLEY" stats --prometheus -s "$dead" --timeout 0.5 2>/dev/null)
rc=$?
[ $rc -eq 3 ] || fail "stats --prometheus with no daemon exited $rc, expected 3"
[ -z "$out" ] || fail "stats --prometheus with no daemon printed: $out"

stop_parleyd
pass "stats --prometheus is valid exposition format with the counters sent"
