# timeseries-forecast with Autoformer models: random-weight fixtures against the independent
# PyTorch implementation (tools/autoformer_torch.py fixtures wrote tests/fixtures/autoformer,
# forecasts in float64), a bad model file, and the ETTh1 model's test score against its
# training log (when models/autoformer-etth1-96.safetensors and ../shared/data are there).
. tests/cli/lib.sh

TSF=$BIN/timeseries-forecast
FIX=tests/fixtures/autoformer
ETTH1=../shared/data/timeseries/ETDataset/ETTh1.csv
MODEL=models/autoformer-etth1-96.safetensors
LOG=tools/logs/autoformer-etth1-96.log

# The largest absolute difference between two wide CSVs' values (header and dates skipped).
worst_difference() {
    tail -n +2 "$1" | cut -d, -f2- >"$TMP/got"
    tail -n +2 "$2" | cut -d, -f2- >"$TMP/want"
    paste -d, "$TMP/got" "$TMP/want" | awk -F, '{ n = NF / 2; for (i = 1; i <= n; i++) {
        d = $i - $(i + n); if (d < 0) d = -d; if (d > w) w = d } } END { printf "%.3g", w }'
}

# m: features M, gelu, 2 encoder layers, the window across a year end; ms: MS with the target
# first in the table (last for the model), relu, odd lengths, 2 decoder layers, 3 heads;
# s: S on column b; daily: freq d, the horizon across a year end. Each forecast within 1e-4
# of the float64 reference, dates included.
for f in m ms s daily; do
    begin "timeseries-forecast-autoformer-$f-matches-reference"
    run "$TSF" -m "$FIX/$f.safetensors" --wide "$FIX/$f.csv"
    expect_exit 0
    expect_stderr_empty
    [ "$(head -1 "$OUT")" = "$(head -1 "$FIX/$f.expected.csv")" ] || fail_because "header: $(head -1 "$OUT")"
    cut -d, -f1 "$FIX/$f.expected.csv" >"$TMP/dates"
    cut -d, -f1 "$OUT" | cmp -s - "$TMP/dates" || fail_because "the forecast dates differ"
    worst=$(worst_difference "$OUT" "$FIX/$f.expected.csv")
    awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' || fail_because "largest difference $worst from the reference"
    end
done

# The model takes its own columns from the table, whatever else it holds, and its horizon.
begin timeseries-forecast-autoformer-columns
awk -F, 'BEGIN { OFS = "," } { print $1, $4, "0", $2, $3 }' "$FIX/m.csv" | sed '1s/,0,/,z,/' >"$TMP/shuffled.csv"
run "$TSF" -m "$FIX/m.safetensors" --wide "$TMP/shuffled.csv"
expect_exit 0
[ "$(head -1 "$OUT")" = "ds,a,b,c" ] || fail_because "header: $(head -1 "$OUT")"
worst=$(worst_difference "$OUT" "$FIX/m.expected.csv")
awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' || fail_because "largest difference $worst with the columns reordered"
run "$TSF" -m "$FIX/m.safetensors" -H 30 "$FIX/m.csv"
expect_exit 2
expect_stderr_match 'forecasts up to 24 steps'
head -40 "$FIX/m.csv" >"$TMP/short.csv"
run "$TSF" -m "$FIX/m.safetensors" "$TMP/short.csv"
expect_exit 1
expect_stderr_match 'too few'
end

# A tensor of the wrong shape: exit 3, naming it.
begin timeseries-forecast-autoformer-bad-shape
run "$TSF" -m "$FIX/bad-shape.safetensors" "$FIX/m.csv"
expect_exit 3
expect_stdout_empty
expect_stderr_match "tensor 'encoder.attn_layers.0.conv1.weight': expected shape \[32, 16, 1\], found \[31, 16, 1\]"
end

if [ -f "$MODEL" ] && [ -f "$ETTH1" ]; then
    # The shipped model (F16 weights) on the first 64 test windows of the papers' protocol,
    # against the PyTorch model with the F32 weights it was trained to
    # (tools/autoformer_torch.py bench --windows 64: mse 0.288492).
    begin timeseries-forecast-autoformer-etth1-first-windows
    run "$TSF" eval -m "$MODEL" -H 96 --train-until '2017-06-26 00:00:00' --from '2017-10-24 00:00:00' \
        --to '2017-10-30 15:00:00' "$ETTH1"
    expect_exit 0
    grep '^[^,]*,all,' "$OUT" | awk -F, '$3 != 64 || $4 != 96 { exit 1 }
        { d = $5 - 0.288492; if (d < 0) d = -d; exit !(d < 2e-4) }' ||
        fail_because "all: $(grep '^[^,]*,all,' "$OUT"), PyTorch: mse 0.288492"
    end
else
    note "skipped timeseries-forecast-autoformer-etth1-first-windows: $MODEL or $ETTH1 is absent"
fi

if [ "${LR_SLOW_TESTS:-0}" = 1 ] && [ -f "$MODEL" ] && [ -f "$ETTH1" ] && [ -f "$LOG" ]; then
    # The papers' protocol (12/4/4 months; errors standardised by the training months; all 2785
    # test windows): the test MSE and MAE the training script printed, within 1e-3. About 2.5
    # minutes, so only with LR_SLOW_TESTS=1.
    begin timeseries-forecast-autoformer-eval-etth1
    run "$TSF" eval -m "$MODEL" -H 96 --train-until '2017-06-26 00:00:00' --from '2017-10-24 00:00:00' \
        --to '2018-02-21 00:00:00' "$ETTH1"
    expect_exit 0
    want=$(sed -n 's/^test (all 2785 windows, float32): mse \([0-9.]*\) mae \([0-9.]*\)$/\1,\2/p' "$LOG")
    [ -n "$want" ] || fail_because "no test line in $LOG"
    grep '^[^,]*,all,' "$OUT" | awk -F, -v want="$want" 'BEGIN { split(want, w, ",") }
        $3 != 2785 || $4 != 96 { exit 1 }
        { a = $5 - w[1]; b = $6 - w[2]; if (a < 0) a = -a; if (b < 0) b = -b; exit !(a < 1e-3 && b < 1e-3) }' ||
        fail_because "all: $(grep '^[^,]*,all,' "$OUT"), training log: $want"
    end
fi

# Batching (--batch, forecast_batch): a window's forecast does not depend on the batch it is
# in nor on the thread count, to the bit: --last and eval one window at a time on one thread
# against batches of awkward sizes on 2 and 3 threads.
begin timeseries-forecast-autoformer-batch-identical
run "$TSF" -j 1 --batch 1 --last 11 -f npy -o "$TMP/one.npy" -m "$FIX/m.safetensors" "$FIX/m.csv"
expect_exit 0
for spec in "2 4" "3 32" "2 11"; do
    run "$TSF" -j "${spec%% *}" --batch "${spec##* }" --last 11 -f npy -o "$TMP/batch.npy" \
        -m "$FIX/m.safetensors" "$FIX/m.csv"
    expect_exit 0
    expect_same_file "$TMP/batch.npy" "$TMP/one.npy"
done
run "$TSF" eval -j 1 --batch 1 -H 24 --test-fraction 0.35 -o "$TMP/one.csv" -m "$FIX/m.safetensors" "$FIX/m.csv"
expect_exit 0
run "$TSF" eval -j 3 --batch 2 -H 24 --test-fraction 0.35 -o "$TMP/batch.csv" -m "$FIX/m.safetensors" "$FIX/m.csv"
expect_exit 0
expect_same_file "$TMP/batch.csv" "$TMP/one.csv"
run "$TSF" --batch 0 -m "$FIX/m.safetensors" "$FIX/m.csv"
expect_exit 2
end

finish
