#!/bin/sh
# Run each libFuzzer target for a while and report what it did.
#
#   scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
#
# BUILD_DIR was configured with clang, -DPARLEY_FUZZ=ON and sanitizers
# (`make fuzz` does all of it). Each target starts from its committed seed
# corpus (tests/fuzz/corpus/TARGET) and keeps what it learns in
# BUILD_DIR/fuzz-corpus/TARGET. A crashing input is copied into the seed
# corpus, so `make test` replays it from then on, and the run fails.
set -u
build=$1
seconds=$2
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
# By default every target tests/fuzz/CMakeLists.txt built.
targets=${*:-$(cd "$build/tests/fuzz" 2>/dev/null && ls fuzz_* 2>/dev/null \
    | sed -n 's/^fuzz_\([a-z0-9_]*\)$/\1/p' | grep -vx gen_seeds)}
[ -n "$targets" ] || { echo "fuzz: no fuzz targets in $build/tests/fuzz" >&2; exit 2; }
failed=0
for t in $targets; do
    bin="$build/tests/fuzz/fuzz_$t"
    [ -x "$bin" ] || { echo "fuzz: $bin missing" >&2; exit 2; }
    work="$build/fuzz-corpus/$t"
    art="$build/fuzz-artifacts/$t"
    mkdir -p "$work" "$art"
    dict=""
    [ -f "$src/tests/fuzz/dict/$t.dict" ] && dict="-dict=$src/tests/fuzz/dict/$t.dict"
    log="$build/fuzz-$t.log"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$art/" $dict "$work" "$src/tests/fuzz/corpus/$t" \
        >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(ls "$art" | wc -l)
    echo "fuzz_$t: ${seconds}s, ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}, exit $rc, $crashes crash inputs"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        for f in "$art"/*; do
            [ -f "$f" ] && cp "$f" "$src/tests/fuzz/corpus/$t/regress-$(basename "$f")"
        done
        tail -40 "$log" >&2
    fi
done
exit $failed
