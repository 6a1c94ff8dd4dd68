#!/bin/sh
# Runs the whole suite: unit test programs, fuzz-corpus replays, CLI test scripts and the man
# page lint. Every test prints "PASS name" or "FAIL name: why"; the last line is the count.
# BIN and BUILD name the programs under test (make asan points them at the sanitizer build).
BIN=${BIN:-bin}
BUILD=${BUILD:-build}
export BIN BUILD
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() { # name, command...: a program whose own PASS/FAIL lines are counted
    name=$1; shift
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" | tee -a "$log"
    if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL '; then
        echo "FAIL $name: exited with status $rc" | tee -a "$log"
    fi
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] && run "$(basename "$t")" "$t"
done
for t in "$BUILD"/tests/fuzz_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t"); seeds=tests/fuzz/seeds/${name#fuzz_}
    run "$name" "$t" "$seeds"
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] && run "$(basename "$t" .sh)" sh "$t"
done
if command -v mandoc >/dev/null 2>&1; then
    if out=$(mandoc -Tlint -W warning man/man*/*.[0-9] 2>&1) && [ -z "$out" ]; then
        echo "PASS mandoc-lint" | tee -a "$log"
    else
        printf '%s\n' "$out"; echo "FAIL mandoc-lint: see above" | tee -a "$log"
    fi
else
    echo "FAIL mandoc-lint: mandoc is not installed" | tee -a "$log"
fi

pass=$(grep -c '^PASS ' "$log"); fail=$(grep -c '^FAIL ' "$log")
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
