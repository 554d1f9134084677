# test_state_model.sh - issue 19, acceptance 1: the current state after
# thousands of random sequences of updates, corrections and retractions,
# compared entry by entry with a reference model written apart from the
# daemon (state_model.py): through the daemon's snapshot, libparley's
# state table fed by a live subscription, and `parley state --json`; the
# example of the issue (U1, U2, U2 retracted) as a named case; and a
# restart of the daemon halfway, after which the rebuilt state must read
# the same. state_check.py drives it (and starts and stops its parleyd
# by pid); ph_state_probe is its libparley client.
. "$(dirname "$0")/harness.sh"

[ -x "${PH_STATE_PROBE:-}" ] || fail "PH_STATE_PROBE=${PH_STATE_PROBE:-} is not an executable (build ph_state_probe)"
python3 "$PARLEY_SOURCE_DIR/tests/integration/state_model.py" \
    || fail "the reference model fails its own examples"
make_key model
python3 "$PARLEY_SOURCE_DIR/tests/integration/state_check.py" \
    "$T" "$T/model" "$T/keyring" || fail "state_check.py (above)"
pass "the state of parleyd, the state table and parley state follow the model"
