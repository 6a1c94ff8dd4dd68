#!/bin/sh
# make bench: attn-bench's exact attention against PyTorch (tools/bench_attention_torch.py, run
# with /usr/bin/python3) on the same shapes in the same run, with our/their ratio per row; then
# the sliding window over growing lengths, whose cost should grow linearly. Markdown on stdout.
#
# Knobs (environment): BIN (programs, default bin), ATTN_BENCH_LENGTHS (default 1k,4k,16k),
# ATTN_BENCH_PATTERNS (default all), ATTN_BENCH_THREADS (default 2), ATTN_BENCH_BF16 (1: also
# time bf16 inputs, the default; 0: not), ATTN_BENCH_1M (1: also the million-token causal
# case on one head, for its memory; it takes tens of minutes on two cores).
set -eu
BIN=${BIN:-bin}
LENGTHS=${ATTN_BENCH_LENGTHS:-1k,4k,16k}
PATTERNS=${ATTN_BENCH_PATTERNS:-all}
THREADS=${ATTN_BENCH_THREADS:-2}
SHAPE="-d 64 -H 8 -B 1"
PYTHON=/usr/bin/python3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/attn-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$BIN/attn-bench" -f tsv -j "$THREADS" $SHAPE --kernel flash --pattern "$PATTERNS" \
    -L "$LENGTHS" --reps 3 --min-time 1 >"$tmp/fp32.tsv"
if [ "${ATTN_BENCH_BF16:-1}" = 1 ]; then
    "$BIN/attn-bench" -f tsv -j "$THREADS" $SHAPE --kernel flash --pattern "$PATTERNS" \
        -L "$LENGTHS" --reps 3 --min-time 1 --dtype bf16 >"$tmp/bf16.tsv"
else
    : >"$tmp/bf16.tsv"
fi
peer="PyTorch (naive and chunked softmax attention)"
if [ -x "$PYTHON" ] && "$PYTHON" -c 'import torch' 2>/dev/null; then
    peer="PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)') (naive and chunked softmax attention)"
    "$PYTHON" tools/bench_attention_torch.py -j "$THREADS" $SHAPE --pattern "$PATTERNS" \
        -L "$LENGTHS" --reps 2 --min-time 0 >"$tmp/torch.tsv"
else
    echo "attention.sh: $PYTHON with torch is missing: the PyTorch columns stay empty" >&2
    : >"$tmp/torch.tsv"
fi

echo "## Exact attention: attn-bench flash against $peer"
echo
# Files are told apart by their first header column; columns are found by name.
awk -F '\t' -v threads="$THREADS" '
    FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; source = $1 == "impl" ? "torch" : ++ours_files; next }
    source == "torch" {
        key = $col["pattern"] SUBSEP $col["lq"] SUBSEP $col["lk"]
        torch[key, $col["impl"]] = $col["gflops"]; torch_mib[key, $col["impl"]] = $col["extra_mib"]
        next
    }
    {
        key = $col["pattern"] SUBSEP $col["lq"] SUBSEP $col["lk"]
        if (source == 1) {
            order[++n] = key; peak = $col["peak_gflops"]; cpu_threads = $col["threads"]
            gflops[key] = $col["gflops"]; pct[key] = $col["pct_peak"]
            mib[key] = $col["extra_mib"]; err[key] = $col["max_rel_err"]
        } else {
            bf16[key] = $col["gflops"]
        }
    }
    function cell(x, fmt) { return x == "" ? "-" : sprintf(fmt, x) }
    function ratio(a, b) { return a == "" || b == "" || b == 0 ? "-" : sprintf("%.2f", a / b) }
    END {
        printf "d=64, 8 heads, batch 1, %s threads; peak %.1f GFLOP/s (lr_peak_gflops, this run). ", cpu_threads, peak
        printf "FLOPs = 4 * d * visible pairs for both; extra = peak RSS growth; err = max rel err of fp32 against exact.\n\n"
        print "| pattern | Lq | Lk | fp32 GFLOP/s | % peak | extra MiB | err | bf16 GFLOP/s | bf16/fp32 | torch naive GFLOP/s | torch naive MiB | torch chunked GFLOP/s | torch chunked MiB | ours/naive | ours/chunked |"
        print "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        for (i = 1; i <= n; i++) {
            k = order[i]; split(k, part, SUBSEP)
            printf "| %s | %s | %s | %.1f | %.1f | %.1f | %.1e | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                part[1], part[2], part[3], gflops[k], pct[k], mib[k], err[k],
                cell(bf16[k], "%.1f"), ratio(bf16[k], gflops[k]),
                cell(torch[k, "naive"], "%.1f"), cell(torch_mib[k, "naive"], "%.0f"),
                cell(torch[k, "chunked"], "%.1f"), cell(torch_mib[k, "chunked"], "%.0f"),
                ratio(gflops[k], torch[k, "naive"]), ratio(gflops[k], torch[k, "chunked"])
        }
    }' "$tmp/torch.tsv" "$tmp/fp32.tsv" "$tmp/bf16.tsv"

echo
echo "## Sliding window (256 keys each side, 4 sinks): cost linear in L"
echo
"$BIN/attn-bench" -j "$THREADS" $SHAPE --kernel window --window 256 --sinks 4 \
    --pattern causal,self -L 4k,8k,16k,32k --reps 3 --min-time 1

echo
echo "## Every kernel at 4k and 16k (causal where it runs, else self), against flash"
echo
# The sparse and approximate kernels stand for exact attention at a fraction of its work: the
# error column says how far each lands from it, the last column how much sooner.
"$BIN/attn-bench" -f tsv -j "$THREADS" $SHAPE --kernel all --pattern causal,self -L 4k,16k \
    --window 128 --reps 2 --min-time 0.5 2>/dev/null >"$tmp/all.tsv" || true
awk -F '\t' '
    FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { kernel = $col["kernel"]; sub(/ .*/, "", kernel); pattern = $col["pattern"]; lk = $col["lk"]
      key = kernel SUBSEP lk
      if (kernel == "flash") flash[pattern, lk] = $col["best_ms"]
      # one row per kernel and length: causal when the kernel runs it, else self
      if ((key in seen) && pattern != "causal") next
      if (!(key in seen)) order[++n] = key
      seen[key] = 1; pat[key] = pattern; ms[key] = $col["best_ms"]; gf[key] = $col["gflops"]
      pct[key] = $col["pct_peak"]; mib[key] = $col["extra_mib"]; err[key] = $col["max_rel_err"] }
    END {
        print "| kernel | pattern | L | best ms | GFLOP/s | % peak | extra MiB | rel err vs exact | flash ms / ms |"
        print "|:--|:--|--:|--:|--:|--:|--:|--:|--:|"
        for (i = 1; i <= n; i++) {
            k = order[i]; split(k, part, SUBSEP); f = flash[pat[k], part[2]]
            printf "| %s | %s | %s | %.2f | %.1f | %.1f | %.1f | %s | %s |\n", part[1], pat[k], part[2],
                ms[k], gf[k], pct[k], mib[k], err[k] == "" ? "-" : sprintf("%.1e", err[k]),
                f == "" || ms[k] == 0 ? "-" : sprintf("%.2f", f / ms[k])
        }
    }' "$tmp/all.tsv"

if [ "${ATTN_BENCH_1M:-0}" = 1 ]; then
    echo
    echo "## A million tokens, exact causal, one head: extra memory"
    echo
    "$BIN/attn-bench" -j "$THREADS" -d 64 -H 1 --kernel flash --pattern causal -L 1M \
        --reps 1 --ref-rows 16
fi
