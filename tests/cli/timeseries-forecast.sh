# timeseries-forecast: the weight-free default against its independent numpy reference
# (tools/seasonal_autocorr.py wrote tests/fixtures/timeseries), the output layouts, eval on
# ETTh1 with the papers' split (when ../shared/data is there), and bad input.
. tests/cli/lib.sh

TSF=$BIN/timeseries-forecast
FIX=tests/fixtures/timeseries
ETTH1=../shared/data/timeseries/ETDataset/ETTh1.csv

begin timeseries-forecast-help
run "$TSF" --help
expect_exit 0
expect_stdout_match '^Usage: timeseries-forecast \[eval\] \[OPTIONS\] \[FILE\|-\]$'
expect_stderr_empty
end

# The default model on the fixture's 300 hourly steps (all within its seq_len of 720), wide
# output: each value within 1e-5 (relative to the series' scale) of the numpy reference.
begin timeseries-forecast-matches-reference
run "$TSF" -H 48 --wide "$FIX/hourly.csv"
expect_exit 0
expect_stderr_empty
[ "$(head -1 "$OUT")" = "ds,a,b,c" ] || fail_because "header: $(head -1 "$OUT")"
[ "$(sed -n 2p "$OUT" | cut -d, -f1)" = "2020-01-13 12:00:00" ] || fail_because "first date: $(sed -n 2p "$OUT")"
[ "$(sed -n 49p "$OUT" | cut -d, -f1)" = "2020-01-15 11:00:00" ] || fail_because "last date: $(sed -n 49p "$OUT")"
[ "$(wc -l <"$OUT")" -eq 49 ] || fail_because "$(wc -l <"$OUT") lines, expected 49"
tail -n +2 "$OUT" | cut -d, -f2- >"$TMP/got"
tail -n +2 "$FIX/hourly.expected.csv" >"$TMP/want"
worst=$(paste -d, "$TMP/got" "$TMP/want" | awk -F, '{ n = NF / 2; for (i = 1; i <= n; i++) {
    d = $i - $(i + n); if (d < 0) d = -d; if (d > w) w = d } } END { printf "%.3g", w }')
awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' || fail_because "largest difference $worst from the reference"
end

# Long output (the default) holds the same numbers, series by series; stdin works.
begin timeseries-forecast-long-layout
run_with_input "$FIX/hourly.csv" "$TSF" -H 48 -
expect_exit 0
[ "$(head -1 "$OUT")" = "unique_id,ds,seasonal-autocorr" ] || fail_because "header: $(head -1 "$OUT")"
[ "$(grep -c '^b,' "$OUT")" -eq 48 ] || fail_because "not 48 rows of series b"
"$TSF" -H 48 --wide "$FIX/hourly.csv" | tail -n +2 | cut -d, -f3 >"$TMP/wide_b"
grep '^b,' "$OUT" | cut -d, -f3 | cmp -s - "$TMP/wide_b" || fail_because "series b differs between layouts"
end

# A long table in, each series alone: two series with their own dates.
begin timeseries-forecast-long-input
{
    echo "unique_id,ds,y"
    for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
        printf 'x,2020-%02d,%d\ny,2021-%02d,%d\n' "$i" $((i % 3)) "$i" $((100 + i))
    done
} >"$TMP/long.csv"
run "$TSF" -H 2 "$TMP/long.csv"
expect_exit 0
expect_stderr_empty
[ "$(sed -n 2p "$OUT" | cut -d, -f1-2)" = "x,2021-01" ] || fail_because "x continues at $(sed -n 2p "$OUT")"
[ "$(sed -n 4p "$OUT" | cut -d, -f1-2)" = "y,2022-01" ] || fail_because "y continues at $(sed -n 4p "$OUT")"
end

# --last 3: three windows with their cutoff, each the forecast of the input cut there.
begin timeseries-forecast-last-windows
run "$TSF" -H 2 --wide --last 3 "$FIX/hourly.csv"
expect_exit 0
[ "$(head -1 "$OUT")" = "ds,cutoff,a,b,c" ] || fail_because "header: $(head -1 "$OUT")"
[ "$(wc -l <"$OUT")" -eq 7 ] || fail_because "$(wc -l <"$OUT") lines, expected 7"
head -299 "$FIX/hourly.csv" | "$TSF" -H 2 --wide | sed -n 2p | cut -d, -f2- >"$TMP/cut"
sed -n 2p "$OUT" | cut -d, -f3- | cmp -s - "$TMP/cut" || fail_because "window 1 differs from a forecast of the first 298 steps"
"$TSF" -H 2 --wide "$FIX/hourly.csv" | tail -n +2 | cut -d, -f2- >"$TMP/full"
tail -n 2 "$OUT" | cut -d, -f3- | cmp -s - "$TMP/full" || fail_because "window 3 differs from the plain forecast"
end

# -f npy: [windows, horizon, channels] float32, and S mode: the target alone.
begin timeseries-forecast-npy
run "$TSF" -H 5 -f npy --features S --target b -o "$TMP/f.npy" "$FIX/hourly.csv"
expect_exit 0
head -c 128 "$TMP/f.npy" | grep -q "'shape': (1, 5, 1)" || fail_because "NPY header: $(head -c 80 "$TMP/f.npy" | tr -d '\000')"
[ "$(wc -c <"$TMP/f.npy")" -eq $((128 + 5 * 4)) ] || fail_because "NPY size $(wc -c <"$TMP/f.npy")"
end

if [ -f "$ETTH1" ]; then
    # The papers' protocol: 12/4/4 months of the first 20, errors standardised by the training
    # months, every window of the test months. numpy reference: MSE 0.4073, MAE 0.4209.
    begin timeseries-forecast-eval-etth1
    run "$TSF" eval -H 96 --train-until '2017-06-26 00:00:00' --from '2017-10-24 00:00:00' \
        --to '2018-02-21 00:00:00' "$ETTH1"
    expect_exit 0
    [ "$(head -1 "$OUT")" = "model,series,windows,horizon,mse,mae,mse_units,mae_units" ] ||
        fail_because "header: $(head -1 "$OUT")"
    sed -n 2p "$OUT" | awk -F, '$2 != "all" || $3 != 2785 || $4 != 96 { exit 1 }
        { mse = $5 - 0.4073; mae = $6 - 0.4209; if (mse < 0) mse = -mse; if (mae < 0) mae = -mae
          exit !(mse < 2e-4 && mae < 2e-4) }' || fail_because "all: $(sed -n 2p "$OUT")"
    [ "$(wc -l <"$OUT")" -eq 9 ] || fail_because "not one row per column plus all"
    end
else
    note "skipped timeseries-forecast-eval-etth1: $ETTH1 is absent"
fi

# Bad input: one line naming the line and column, exit 1; usage errors exit 2.
bad_input() {
    name=$1 pattern=$2
    shift 2
    begin "timeseries-forecast-bad-$name"
    run "$@"
    expect_exit 1
    expect_stdout_empty
    expect_stderr_match "$pattern"
    [ "$(wc -l <"$ERR")" -eq 1 ] || fail_because "$(wc -l <"$ERR") lines on stderr"
    end
}
printf 'date,a\n2020-01-01,1\n2020-01-02,x\n' >"$TMP/nan.csv"
bad_input non-numeric "^timeseries-forecast: $TMP/nan.csv: line 3, column 2 \('a'\): " "$TSF" "$TMP/nan.csv"
printf 'date,a\n2020-01-01,1\n2020-01-02\n' >"$TMP/ragged.csv"
bad_input ragged "^timeseries-forecast: $TMP/ragged.csv: line 3" "$TSF" "$TMP/ragged.csv"
printf 'date,a\n2020-01-01,1\n2020-01-03,2\n2020-01-04,2\n2020-01-06,2\n' >"$TMP/gap.csv"
bad_input irregular "^timeseries-forecast: $TMP/gap.csv: line [0-9]+" "$TSF" "$TMP/gap.csv"
bad_input target "option --target: no value column 'zz'" "$TSF" --features S --target zz "$FIX/hourly.csv"
bad_input missing-file "^timeseries-forecast: $TMP/none.csv: No such file or directory$" "$TSF" "$TMP/none.csv"

begin timeseries-forecast-usage
run "$TSF" --from 2020-01-01 "$FIX/hourly.csv"
expect_exit 2
expect_stderr_match "apply to 'eval'"
run "$TSF" -H 0 "$FIX/hourly.csv"
expect_exit 2
run "$TSF" a.csv b.csv
expect_exit 2
expect_stderr_match 'one input at a time'
end

begin timeseries-forecast-model-error
printf 'not a model' >"$TMP/bad.safetensors"
run "$TSF" -m "$TMP/bad.safetensors" "$FIX/hourly.csv"
expect_exit 3
end

finish
