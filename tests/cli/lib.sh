# Helpers for the CLI tests (sourced; POSIX sh). A test runs commands and checks what they did;
# each test prints one line, "PASS name" or "FAIL name: why", which tests/run.sh counts.
#
#   begin lr-model-help
#   run "$BIN/lr-model" --help
#   expect_exit 0
#   expect_stdout_match '^Usage: lr-model '
#   expect_stderr_empty
#   end
#
# run leaves the command's stdout in $OUT, its stderr in $ERR and its exit status in $status.
# Scripts run from the repository root with $BIN naming the programs' folder.

BIN=${BIN:-bin}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lr-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/stdout
ERR=$TMP/stderr
status=0
test_name=
test_failures=
failed_tests=0

begin() {
    test_name=$1
    test_failures=
}

# Records why the current test fails (one line, however long the evidence).
fail_because() {
    why=$(printf '%s' "$1" | tr '\n\t' '  ' | cut -c1-300)
    test_failures="${test_failures:+$test_failures; }$why"
}

end() {
    if [ -z "$test_failures" ]; then
        echo "PASS $test_name"
    else
        echo "FAIL $test_name: $test_failures"
        failed_tests=$((failed_tests + 1))
    fi
}

# Prints a remark that is neither a pass nor a failure (a check skipped, and why).
note() {
    echo "note: $*"
}

run() {
    "$@" >"$OUT" 2>"$ERR"
    status=$?
}

# run_with_input FILE CMD...: as run, with FILE on stdin.
run_with_input() {
    input=$1
    shift
    "$@" <"$input" >"$OUT" 2>"$ERR"
    status=$?
}

expect_exit() {
    [ "$status" -eq "$1" ] || fail_because "exit status $status, expected $1 (stderr: $(cat "$ERR"))"
}

expect_stdout_match() {
    grep -Eq -- "$1" "$OUT" || fail_because "stdout does not match /$1/: $(head -c 200 "$OUT")"
}

expect_stderr_match() {
    grep -Eq -- "$1" "$ERR" || fail_because "stderr does not match /$1/: $(head -c 200 "$ERR")"
}

expect_stdout_empty() {
    [ ! -s "$OUT" ] || fail_because "stdout is not empty: $(head -c 200 "$OUT")"
}

expect_stderr_empty() {
    [ ! -s "$ERR" ] || fail_because "stderr is not empty: $(head -c 200 "$ERR")"
}

# The program said exactly N lines on stderr.
expect_stderr_lines() {
    lines=$(wc -l <"$ERR")
    [ "$lines" -eq "$1" ] || fail_because "$lines lines on stderr, expected $1: $(head -c 200 "$ERR")"
}

expect_file_absent() {
    [ ! -e "$1" ] || fail_because "$1 exists"
}

# expect_same_file A B: identical contents.
expect_same_file() {
    cmp -s "$1" "$2" || fail_because "$1 and $2 differ"
}

# expect_npy_close GOT EXPECTED TOL: two little-endian float32 NPY files (any header length, same
# element count) agree within TOL in every element; says the largest difference otherwise.
expect_npy_close() {
    for f in "$1" "$2"; do
        [ -s "$f" ] || { fail_because "$f is missing or empty"; return; }
    done
    npy_floats "$1" >"$TMP/npy_a" && npy_floats "$2" >"$TMP/npy_b" ||
        { fail_because "$1 or $2 is not an NPY file"; return; }
    verdict=$(paste "$TMP/npy_a" "$TMP/npy_b" | awk -v tol="$3" '
        NF != 2 { bad = "different element counts"; exit }
        { d = $1 - $2; if (d < 0) d = -d; if (d > max || $1 != $1) { max = d; at = NR } }
        END { if (bad) print bad; else if (NR == 0) print "no elements";
              else if (max > tol) printf "max |diff| %g at element %d > %g", max, at, tol }')
    [ -z "$verdict" ] || fail_because "$1 vs $2: $verdict"
}

# The float32 payload of an NPY file, one value per line (the header length is read from it).
npy_floats() {
    header=$(od -An -v -tu1 -j8 -N2 "$1" | awk '{ print $1 + 256 * $2 + 10 }')
    [ -n "$header" ] || return 1
    od -An -v -f -w4 -j"$header" "$1" | awk '{ print $1 }'
}

# The exit status for the whole script: non-zero when a test failed.
finish() {
    [ "$failed_tests" -eq 0 ]
}
