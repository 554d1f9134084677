# test_gateway_http.sh - parley-gateway over HTTP: every endpoint and
# filter, event streams resumed across restarts, publishing, limits and
# timeouts (issue 15, acceptance 2). The checks are in gateway_http.py.
: "${PARLEY_GATEWAY:?PARLEY_GATEWAY must name the parley-gateway binary}"
export PYTHONUTF8=1 PYTHONDONTWRITEBYTECODE=1
exec python3 "$(dirname "$0")/gateway_http.py"
