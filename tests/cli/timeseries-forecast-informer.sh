# timeseries-forecast -m with an "informer" model: random-weight models against the float64
# PyTorch reference that wrote them (tools/informer_torch.py fixtures -> tests/fixtures/informer),
# a mis-shaped tensor, and, when the trained model and ETTh1 are here, the papers' test protocol
# reproducing the training script's test MSE/MAE (stored in the model's metadata).
. tests/cli/lib.sh

TSF=$BIN/timeseries-forecast
FIX=tests/fixtures/informer
ETTH1=../shared/data/timeseries/ETDataset/ETTh1.csv
TRAINED=models/informer-etth1-96.safetensors

# Largest absolute difference between the value columns of two CSV files with the same shape.
max_diff() {
    tail -n +2 "$1" | cut -d, -f2- >"$TMP/got"
    tail -n +2 "$2" | cut -d, -f2- >"$TMP/want"
    paste -d, "$TMP/got" "$TMP/want" | awk -F, '{ n = NF / 2; for (i = 1; i <= n; i++) {
        d = $i - $(i + n); if (d < 0) d = -d; if (d > w) w = d } } END { printf "%.3g", w }'
}

# Multivariate (M), three encoder layers with two distilling ConvLayers, gelu: the model's own
# pred_len (24) is the default horizon, its columns and dates come out as the reference's.
begin timeseries-forecast-informer-m-matches-reference
run "$TSF" -m "$FIX/m.safetensors" --wide "$FIX/input.csv"
expect_exit 0
expect_stderr_empty
[ "$(head -1 "$OUT")" = "ds,a,b,c" ] || fail_because "header: $(head -1 "$OUT")"
[ "$(wc -l <"$OUT")" -eq 25 ] || fail_because "$(wc -l <"$OUT") lines, expected 25"
[ "$(sed -n 2p "$OUT" | cut -d, -f1)" = "$(sed -n 2p "$FIX/m.expected.csv" | cut -d, -f1)" ] ||
    fail_because "first date: $(sed -n 2p "$OUT")"
worst=$(max_diff "$OUT" "$FIX/m.expected.csv")
awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' || fail_because "largest difference $worst from the reference"
end

# MS (three inputs, the target c forecast), no distilling, relu, two decoder layers.
begin timeseries-forecast-informer-ms-matches-reference
run "$TSF" -m "$FIX/ms.safetensors" --wide "$FIX/input.csv"
expect_exit 0
expect_stderr_empty
[ "$(head -1 "$OUT")" = "ds,c" ] || fail_because "header: $(head -1 "$OUT")"
[ "$(wc -l <"$OUT")" -eq 31 ] || fail_because "$(wc -l <"$OUT") lines, expected 31"
worst=$(max_diff "$OUT" "$FIX/ms.expected.csv")
awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' || fail_because "largest difference $worst from the reference"
end

# A shorter horizon is the start of the full one; a longer one than pred_len is refused.
begin timeseries-forecast-informer-horizon
run "$TSF" -m "$FIX/m.safetensors" -H 5 --wide "$FIX/input.csv"
expect_exit 0
head -6 "$FIX/m.expected.csv" >"$TMP/want5"
worst=$(max_diff "$OUT" "$TMP/want5")
awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' || fail_because "largest difference $worst at -H 5"
run "$TSF" -m "$FIX/m.safetensors" -H 25 "$FIX/input.csv"
expect_exit 2
expect_stderr_match "horizon 25: the model forecasts 1 to 24 steps"
end

begin timeseries-forecast-informer-bad-shape
run "$TSF" -m "$FIX/bad-shape.safetensors" "$FIX/input.csv"
expect_exit 3
expect_stderr_match "decoder.projection.weight"
expect_stderr_match "expected shape \[3, 16\], found \[6, 16\]"
end

if [ "${LR_SLOW_TESTS:-0}" = 1 ] && [ -f "$TRAINED" ] && [ -f "$ETTH1" ]; then
    # 2785 windows of the test months (about 2-3 minutes on 2 cores, so only with
    # LR_SLOW_TESTS=1; the weights are not committed); the script's numbers are
    # in the file's metadata (test_mse, test_mae).
    begin timeseries-forecast-informer-eval-etth1
    want_mse=$(head -c 65536 "$TRAINED" | tr -d '\000' | sed -n 's/.*"test_mse" *: *"\([0-9.]*\)".*/\1/p')
    want_mae=$(head -c 65536 "$TRAINED" | tr -d '\000' | sed -n 's/.*"test_mae" *: *"\([0-9.]*\)".*/\1/p')
    run "$TSF" eval -m "$TRAINED" -H 96 --train-until '2017-06-26 00:00:00' --from '2017-10-24 00:00:00' \
        --to '2018-02-21 00:00:00' "$ETTH1"
    expect_exit 0
    [ -n "$want_mse" ] && [ -n "$want_mae" ] || fail_because "no test_mse/test_mae in $TRAINED"
    sed -n 2p "$OUT" | awk -F, -v m="$want_mse" -v a="$want_mae" '$2 != "all" || $3 != 2785 || $4 != 96 { exit 1 }
        { mse = $5 - m; mae = $6 - a; if (mse < 0) mse = -mse; if (mae < 0) mae = -mae
          exit !(mse < 1e-3 && mae < 1e-3) }' ||
        fail_because "all: $(sed -n 2p "$OUT"), the training script: mse $want_mse mae $want_mae"
    end
else
    note "skipped timeseries-forecast-informer-eval-etth1: it needs LR_SLOW_TESTS=1, $TRAINED and $ETTH1"
fi

# Batching (--batch, forecast_batch): a window's forecast does not depend on the batch it is
# in nor on the thread count, to the bit: --last and eval one window at a time on one thread
# against batches of awkward sizes on 2 and 3 threads.
begin timeseries-forecast-informer-batch-identical
run "$TSF" -j 1 --batch 1 --last 11 -f npy -o "$TMP/one.npy" -m "$FIX/m.safetensors" "$FIX/input.csv"
expect_exit 0
for spec in "2 4" "3 32" "2 11"; do
    run "$TSF" -j "${spec%% *}" --batch "${spec##* }" --last 11 -f npy -o "$TMP/batch.npy" \
        -m "$FIX/m.safetensors" "$FIX/input.csv"
    expect_exit 0
    expect_same_file "$TMP/batch.npy" "$TMP/one.npy"
done
run "$TSF" eval -j 1 --batch 1 -H 24 --test-fraction 0.35 -o "$TMP/one.csv" -m "$FIX/m.safetensors" "$FIX/input.csv"
expect_exit 0
run "$TSF" eval -j 3 --batch 2 -H 24 --test-fraction 0.35 -o "$TMP/batch.csv" -m "$FIX/m.safetensors" "$FIX/input.csv"
expect_exit 0
expect_same_file "$TMP/batch.csv" "$TMP/one.csv"
run "$TSF" --batch 0 -m "$FIX/m.safetensors" "$FIX/input.csv"
expect_exit 2
end

finish
