# attn-bench: the command-line contract, `check` over every kernel, well-formed `bench` tables in
# every format, and `run` against outputs computed independently with numpy
# (tests/fixtures/attn, made by tools/make_attn_fixtures.py).
. tests/cli/lib.sh

ATTN=$BIN/attn-bench
FIX=tests/fixtures/attn

begin attn-bench-help
run "$ATTN" --help
expect_exit 0
expect_stdout_match '^Usage: attn-bench \[bench\|check\|run\] \[OPTIONS\]$'
expect_stdout_match '^      --kernel LIST +kernels to measure, comma-separated: flash, '
expect_stderr_empty
end

begin attn-bench-version
run "$ATTN" --version
expect_exit 0
expect_stdout_match '^attn-bench \(longrange\) [0-9]+\.[0-9]+\.[0-9]+$'
expect_stderr_empty
end

# usage_error NAME MESSAGE-REGEX ARGS...: exit 2, nothing on stdout, the message and the hint.
usage_error() {
    name=$1 message=$2
    shift 2
    begin "attn-bench-usage-$name"
    run "$ATTN" "$@"
    expect_exit 2
    expect_stdout_empty
    expect_stderr_lines 2
    expect_stderr_match "^attn-bench: $message\$"
    expect_stderr_match "^Try 'attn-bench --help'\.\$"
    end
}

usage_error unknown-option "unrecognized option '--bogus'" --bogus
usage_error length-zero "option -L: 0 is out of range 1\.\.4294967296" -L 0
usage_error length-suffix "option -L: invalid count '4x'" -L 4x
usage_error length-list "option --length: invalid list '1k,,2k'" -L 1k,,2k
usage_error kernel "option --kernel: unknown kernel 'fast' \(choose from flash, .*, or all\)" \
    --kernel flash,fast
usage_error pattern "option --pattern: unknown pattern 'diagonal' .*" --pattern diagonal
usage_error dtype "option --dtype: unknown value 'fp16' \(choose from fp32, bf16\)" --dtype fp16
usage_error kv-heads "option --kv-heads: 3 does not divide the 8 heads" --kv-heads 3
usage_error format "option -f: unknown format 'yaml' \(choose from md, tsv, csv, json\)" -f yaml
usage_error reps "option --reps: 0 is out of range 1\.\.1000" --reps 0
usage_error min-time "option --min-time: invalid number 'soon'" --min-time soon
usage_error subcommand "unknown subcommand 'benchmark' \(choose from bench, check, run\)" benchmark
usage_error operand "unexpected argument 'extra'" check extra
usage_error not-for-check "option --length does not apply to 'check'" check -L 1k
usage_error not-for-run "option --reps does not apply to 'run'" run --reps 2 -m "$FIX/cross.safetensors"
usage_error model-for-bench "options -m, --dump-model and --force apply only to 'run'" \
    -m "$FIX/cross.safetensors"
usage_error run-without-model "run needs -m FILE, a safetensors file with tensors q, k and v" run
usage_error run-two-kernels "run takes one kernel and one pattern" run --kernel flash,naive \
    -m "$FIX/cross.safetensors"
usage_error run-pattern-shape \
    "pattern causal needs q and k of the same length \(q has 5, k 7\); use causal-cross" \
    run --pattern causal -m "$FIX/cross.safetensors" -o "$TMP/never.safetensors"

# Every kernel against its reference, the causal prefix property and -j determinism.
begin attn-bench-check
run "$ATTN" check -j 2
expect_exit 0
expect_stderr_empty
[ "$(head -1 "$OUT")" = "$(printf 'result\tkernel\tpattern\tdtype\tcase\tcheck\tmeasured\tlimit')" ] ||
    fail_because "unexpected header: $(head -1 "$OUT")"
failed=$(grep -v '^PASS	' "$OUT" | tail -n +2)
[ -z "$failed" ] || fail_because "$failed"
for kernel in flash naive window; do
    grep -q "^PASS	$kernel	" "$OUT" || fail_because "no checks of $kernel"
done
grep -q '	prefix 149	' "$OUT" || fail_because "no causal prefix check"
for kernel in linear linear-norm linear-decay hyena; do
    grep -q "^PASS	$kernel	causal	fp32	.*	reference	" "$OUT" || fail_because "no checks of $kernel"
done
grep -q "^PASS	autocorr	self	fp32	.*	reference	" "$OUT" || fail_because "no checks of autocorr"
grep -q '	threads 1 vs 2	' "$OUT" || fail_because "no thread-count check"
awk -F '\t' 'NF != 8 { bad = 1 } END { exit bad }' "$OUT" || fail_because "lines without 8 fields"
end

# A small sweep over the softmax kernels and every pattern: 2 lengths x 3 kernels x 4 patterns =
# 24 rows. (The other kernels lack some patterns, and the error columns of the linear ones
# measure their distance from softmax attention; they have sweeps of their own below.)
SWEEP="-L 48,100 --kernel flash,naive,window --pattern all -d 16 -H 2 --kv-heads 1 --reps 1 --min-time 0 --ref-rows 8 -j 2"

begin attn-bench-bench-md
run "$ATTN" $SWEEP
expect_exit 0
expect_stderr_empty
expect_stdout_match '^attn-bench: B=1, heads 2 \(kv 1\), d=16, fp32, 2 threads, CPU [a-z0-9]+; peak [0-9.]+ GFLOP/s'
expect_stdout_match '^\| kernel \| pattern \| Lq \| Lk \| runs \| best ms \| median ms \| GFLOP/s \| % peak \| extra MiB \| max abs err \| max rel err \|$'
expect_stdout_match '^\| window \(w=256, sinks=0\) \| causal-cross \| 50 \| 100 \| 1 \| '
rows=$(grep -c '^| [a-z]' "$OUT")
[ "$rows" -eq 25 ] || fail_because "$rows table lines, expected a header and 24 rows"
awk -F '|' '/^\|/ && NF != 14 { bad = 1 } END { exit bad }' "$OUT" ||
    fail_because "table lines without 12 cells"
end

COLUMNS="kernel pattern dtype batch heads kv_heads lq lk head_dim window sinks threads runs best_ms median_ms gflop gflops peak_gflops pct_peak extra_mib max_abs_err max_rel_err error_rows"

begin attn-bench-bench-tsv
run "$ATTN" $SWEEP -f tsv
expect_exit 0
expect_stderr_empty
[ "$(head -1 "$OUT")" = "$(echo $COLUMNS | tr ' ' '\t')" ] || fail_because "header: $(head -1 "$OUT")"
[ "$(wc -l <"$OUT")" -eq 25 ] || fail_because "$(wc -l <"$OUT") lines, expected 25"
awk -F '\t' 'NF != 23 { bad = 1 } END { exit bad }' "$OUT" || fail_because "lines without 23 fields"
# flash, self, Lq 48: 4 * d * pairs * heads FLOPs = 4 * 16 * 48 * 48 * 2 = 294912.
awk -F '\t' 'function off(x, want) { return x * 1e9 - want > 1e-3 || want - x * 1e9 > 1e-3 }
    $1 == "flash" && $2 == "self" && $7 == 48 && off($16, 294912) { bad = 1 }
    $1 == "flash" && $2 == "causal" && $7 == 48 && off($16, 150528) { bad = 1 }
    $1 == "window" && ($10 != 256 || $11 != 0) { bad = 1 }
    $1 == "flash" && ($10 != "" || $11 != "") { bad = 1 }
    NR > 1 && ($22 > 1e-5 || $23 != 8) { bad = 1 } END { exit bad }' "$OUT" ||
    fail_because "wrong FLOP counts, window columns or errors"
end

begin attn-bench-bench-csv
run "$ATTN" $SWEEP -f csv --pattern causal --ref-rows 0
expect_exit 0
expect_stderr_empty
[ "$(head -1 "$OUT")" = "$(echo $COLUMNS | tr ' ' ',')" ] || fail_because "header: $(head -1 "$OUT")"
[ "$(wc -l <"$OUT")" -eq 7 ] || fail_because "$(wc -l <"$OUT") lines, expected 7"
awk -F ',' 'NF != 23 { bad = 1 } NR > 1 && ($21 != "" || $23 != "") { bad = 1 } END { exit bad }' \
    "$OUT" || fail_because "lines without 23 fields, or errors without --ref-rows"
end

begin attn-bench-bench-json
run "$ATTN" $SWEEP -f json --dtype bf16
expect_exit 0
expect_stderr_empty
[ "$(wc -l <"$OUT")" -eq 24 ] || fail_because "$(wc -l <"$OUT") lines, expected 24"
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c '
import json, sys
columns = sys.argv[2].split()
for line in open(sys.argv[1], encoding="utf-8"):
    row = json.loads(line)
    assert list(row) == columns, list(row)
    assert row["dtype"] == "bf16" and row["gflops"] > 0 and row["runs"] == 1, row
    assert (row["window"] is None) == (row["kernel"] != "window"), row
' "$OUT" "$COLUMNS" 2>"$TMP/python.err" || fail_because "not the JSON expected: $(tail -1 "$TMP/python.err")"
else
    note "attn-bench-bench-json: /usr/bin/python3 is missing, so the JSON was not parsed"
fi
end

# The linear kernels count 2 FLOPs per multiply-add of their own work: non-causal, the state
# and the queries, 2 * (48 + 48) * 16 * 16 * 2 heads = 98304; causal adds 2 d per pair j <= i
# inside a chunk of 64, 48 * 49 / 2 pairs: 98304 + 2 * 32 * 1176 * 2 = 248832. Their errors
# against softmax attention are reported, and are not small.
begin attn-bench-bench-linear
run "$ATTN" -L 48 --kernel linear,linear-norm,linear-decay --pattern causal,self -d 16 -H 2 \
    --reps 1 --min-time 0 --ref-rows 8 -f tsv
expect_exit 0
expect_stderr_match '^attn-bench: warning: kernel linear-decay does not run pattern self: skipped$'
[ "$(wc -l <"$OUT")" -eq 6 ] || fail_because "$(wc -l <"$OUT") lines, expected 6"
awk -F '\t' 'function off(x, want) { return x * 1e9 - want > 1e-3 || want - x * 1e9 > 1e-3 }
    NR > 1 && $2 == "self" && off($16, 98304) { bad = 1 }
    NR > 1 && $2 == "causal" && off($16, 248832) { bad = 1 }
    NR > 1 && !($22 > 1e-3) { bad = 1 } END { exit bad }' "$OUT" ||
    fail_because "wrong FLOP counts or errors: $(cat "$OUT")"
end

# -o: nothing on stdout, the file complete.
begin attn-bench-bench-output-file
run "$ATTN" -L 32 -d 8 -H 1 --reps 1 --min-time 0 -f tsv -o "$TMP/bench.tsv"
expect_exit 0
expect_stdout_empty
[ "$(wc -l <"$TMP/bench.tsv")" -eq 3 ] || fail_because "$(cat "$TMP/bench.tsv")"
end

# A length over a kernel's limit: a warning, the other cases still measured.
begin attn-bench-bench-skip
run "$ATTN" -L 5k --kernel naive -d 8 -H 1 --pattern causal --reps 1 -f tsv
expect_exit 0
expect_stderr_lines 1
expect_stderr_match '^attn-bench: warning: kernel naive runs only up to L=4096, not 5120: skipped$'
[ "$(wc -l <"$OUT")" -eq 1 ] || fail_because "rows for a skipped case"
end

# run: compare with numpy's float64 result; the BF16 inputs allow for probabilities rounded to
# bf16 inside the kernel.
compare_with_expected() { # output, expected tensor name, tolerance
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        PYTHONPATH=tools /usr/bin/python3 -c '
import sys
import numpy as np
from longrange import safetensors as st
out, meta = st.load(sys.argv[1])
expected = st.load(sys.argv[2])[0][sys.argv[3]]
assert out["out"].shape == expected.shape, out["out"].shape
err = np.abs(out["out"] - expected).max() / np.abs(expected).max()
assert err <= float(sys.argv[4]), "max rel err %g" % err
assert meta["producer"] == "attn-bench", meta
' "$1" "$FIX/expected.safetensors" "$2" "$3" 2>"$TMP/python.err" ||
            fail_because "$2: $(tail -1 "$TMP/python.err")"
    else
        note "attn-bench-run: /usr/bin/python3 with numpy is missing, so values were not compared"
    fi
}

for case in "cross cross.safetensors cross 1e-5" \
    "causal-cross cross.safetensors causal_cross 1e-5" \
    "self self_bf16.safetensors self 1e-2" \
    "causal self_bf16.safetensors causal 1e-2"; do
    set -- $case
    for kernel in flash naive; do
        begin "attn-bench-run-$kernel-$1"
        run "$ATTN" run --kernel "$kernel" --pattern "$1" -m "$FIX/$2" -o "$TMP/out.safetensors"
        expect_exit 0
        expect_stdout_empty
        expect_stderr_empty
        compare_with_expected "$TMP/out.safetensors" "$3" "$4"
        end
    done
done

# The result through lr-model, and the same bytes through stdout as through -o.
begin attn-bench-run-listing
run "$ATTN" run -m "$FIX/cross.safetensors" -o "$TMP/cross.safetensors"
expect_exit 0
run "$BIN/lr-model" "$TMP/cross.safetensors"
expect_exit 0
expect_stdout_match '^  kernel: flash$'
expect_stdout_match '^  pattern: cross$'
expect_stdout_match '^  out +F32 +\[1, 2, 5, 8\] +320$'
"$ATTN" run -m "$FIX/cross.safetensors" >"$TMP/stdout.safetensors" 2>"$ERR"
status=$?
expect_exit 0
expect_same_file "$TMP/cross.safetensors" "$TMP/stdout.safetensors"
end

# Binary output to a terminal is refused before anything is computed (script(1) supplies one).
if command -v script >/dev/null 2>&1; then
    begin attn-bench-run-refuses-terminal
    script -qec "$ATTN run -m $FIX/cross.safetensors" /dev/null >"$OUT" 2>&1
    status=$?
    expect_exit 2
    expect_stdout_match '^attn-bench: refusing to write binary output to a terminal'
    end
else
    note "attn-bench-run-refuses-terminal: script(1) is missing, so no terminal to test with"
fi

begin attn-bench-run-window-metadata
run "$ATTN" run --kernel window --window 2 --sinks 1 --pattern causal \
    -m "$FIX/self_bf16.safetensors" -o "$TMP/window.safetensors"
expect_exit 0
run "$BIN/lr-model" "$TMP/window.safetensors"
expect_stdout_match '^  window: 2$'
expect_stdout_match '^  sinks: 1$'
end

begin attn-bench-run-dump-model
run "$ATTN" run --dump-model -m "$FIX/cross.safetensors"
expect_exit 0
expect_stdout_match '^  key_padding +BOOL +\[1, 7\] +7$'
end

# Unusable files: status 3, one line naming the file, no output left behind.
bad_file() { # name, file, message regex
    begin "attn-bench-run-rejects-$1"
    run "$ATTN" run -m "$2" -o "$TMP/bad.safetensors"
    expect_exit 3
    expect_stdout_empty
    expect_stderr_lines 1
    expect_stderr_match "^attn-bench: $3"
    expect_file_absent "$TMP/bad.safetensors"
    end
}
bad_file missing "$TMP/absent.safetensors" "$TMP/absent\.safetensors: No such file or directory\$"
bad_file malformed tests/fixtures/models/bad/empty.safetensors "tests/fixtures/models/bad/empty\.safetensors: "
bad_file no-q tests/fixtures/models/good/with_metadata.safetensors \
    "tests/fixtures/models/good/with_metadata\.safetensors: .*'q'"
bad_file shapes "$FIX/bad_shapes.safetensors" \
    "$FIX/bad_shapes\.safetensors: tensor 'k': expected shape \[1, \*, \*, 8\], found \[1, 1, 7, 7\]\$"

# Every long option in --help is documented in the man page.
begin attn-bench-man-page-options
run "$ATTN" --help
for option in $(grep -Eo -- '--[a-z][a-z-]*' "$OUT" | sort -u); do
    grep -q -- "Fl \\\\-${option#--}" man/man1/attn-bench.1 ||
        fail_because "$option is not in attn-bench.1"
done
end

finish
