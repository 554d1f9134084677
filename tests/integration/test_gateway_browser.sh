# test_gateway_browser.sh - the status board in headless Chromium driven
# by Selenium (issue 15, acceptance 1); the checks are in
# gateway_browser.py. Needs the Debian packages chromium, chromium-driver
# and python3-selenium (the Makefile's PACKAGES); the machine's network
# is not used: everything runs on loopback.
: "${PARLEY_GATEWAY:?PARLEY_GATEWAY must name the parley-gateway binary}"
export PYTHONUTF8=1 PYTHONDONTWRITEBYTECODE=1
py=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import selenium' 2>/dev/null; then
        py=$p
        break
    fi
done
if [ -z "$py" ]; then
    echo "FAIL: no python3 with selenium (Debian: python3-selenium)" >&2
    exit 1
fi
for b in "${CHROMIUM:-/usr/bin/chromium}" "${CHROMEDRIVER:-/usr/bin/chromedriver}"; do
    [ -x "$b" ] || { echo "FAIL: $b missing (Debian: chromium, chromium-driver)" >&2; exit 1; }
done
exec "$py" "$(dirname "$0")/gateway_browser.py"
