#!/bin/sh
# make bench: Informer's ProbSparse self-attention against exact (flash) softmax attention at
# Informer-scale lengths, with Informer's settings (factor 5, 8 heads of 64, batch 1; attn-bench
# fixes the factor and the sample seed). Exact attention costs L^2 per head, ProbSparse about
# L ln L (5 ceil(ln L) sampled keys per query, then 5 ceil(ln L) full rows), so the speed-up
# should grow like L / ln L: the last column is that prediction relative to the first row,
# next to the measured growth. Markdown on stdout.
#
# Knobs (environment): BIN (programs, default bin), PROBSPARSE_BENCH_LENGTHS (default
# 720,1440,2880), PROBSPARSE_BENCH_THREADS (default 2).
set -eu
BIN=${BIN:-bin}
LENGTHS=${PROBSPARSE_BENCH_LENGTHS:-720,1440,2880}
THREADS=${PROBSPARSE_BENCH_THREADS:-2}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/probsparse-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# best_ms: the fastest of the runs, the least disturbed by other work on the machine.
"$BIN/attn-bench" -f tsv -j "$THREADS" -d 64 -H 8 -B 1 --kernel flash,probsparse --pattern self \
    -L "$LENGTHS" --reps 3 --min-time 0.5 --ref-rows 0 >"$tmp/bench.tsv"

echo "## ProbSparse against exact attention (self, 8 heads of 64, factor 5, $THREADS threads)"
echo
echo "| L | full (flash) ms | ProbSparse ms | speed-up | speed-up growth | L / ln L growth |"
echo "|--:|--:|--:|--:|--:|--:|"
awk -F '\t' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
        L = $col["lk"]
        if (!(L in seen)) { seen[L] = 1; order[++n] = L }
        ms[L, $col["kernel"]] = $col["best_ms"]
    }
    END {
        for (i = 1; i <= n; i++) {
            L = order[i]; full = ms[L, "flash"]; sparse = ms[L, "probsparse"]
            speedup = sparse > 0 ? full / sparse : 0
            if (i == 1) { first = speedup; first_model = L / log(L) }
            growth = first > 0 ? sprintf("%.2f", speedup / first) : "-"
            printf "| %d | %.2f | %.2f | %.2f | %s | %.2f |\n", L, full, sparse, speedup, growth,
                (L / log(L)) / first_model
        }
    }' "$tmp/bench.tsv"
