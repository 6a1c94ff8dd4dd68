#!/bin/sh
# make bench: the programs' models against their PyTorch references (/usr/bin/python3 with
# Debian's python3-torch), same machine, same run, same thread count. Markdown on stdout.
#   dna-embed: HyenaDNA (d_model 128, 2 layers, random weights) tokens/s at 1k and 32k,
#     many records per run as a genome file has them (the filters of a length are built once),
#     and at 1M (one record, one window) with peak memory.
#   sr-run: output MP/s of the shipped super-resolution models at x2 and x4.
#   seg-run: ms per 512x512 PNG with the built-in selfie model, against numpy; VAN-B0+FPN
#     against PyTorch.
#   timeseries-forecast: Autoformer and Informer windows/s on the first 256 test windows of
#     ETTh1 (when ../shared/data is there).
# Knobs: BIN (default bin), BENCH_THREADS (default 2), BENCH_1M_LIMIT (seconds PyTorch gets
# at 1M, default 300).
set -eu
BIN=${BIN:-bin}
THREADS=${BENCH_THREADS:-2}
PYTHON=/usr/bin/python3
ETTH1=../shared/data/timeseries/ETDataset/ETTh1.csv

tmp=$(mktemp -d "${TMPDIR:-/tmp}/models-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
    echo "models.sh: $PYTHON with torch is missing: no model benchmarks" >&2
    exit 0
fi

now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else printf "-" }'; }

echo "## dna-embed: HyenaDNA forward, tokens/s ($THREADS threads)"
echo
"$PYTHON" tools/hyenadna_torch.py bench-model --d 128 --layers 2 --max-len 32768 "$tmp/hyena" >/dev/null
echo "| L | records | dna-embed tokens/s | PyTorch tokens/s | ours/PyTorch |"
echo "|--:|--:|--:|--:|--:|"
for spec in 1024:32 32768:4; do
    L=${spec%%:*}
    records=${spec##*:}
    awk -v L="$L" -v n="$records" 'BEGIN { srand(7); for (r = 0; r < n; r++) { printf ">r%d\n", r
        for (i = 0; i < L; i++) printf "%s", substr("ACGT", int(rand() * 4) + 1, 1); printf "\n" } }' >"$tmp/in.fa"
    start=$(now)
    "$BIN/dna-embed" -j "$THREADS" -m "$tmp/hyena" -o "$tmp/out.tsv" "$tmp/in.fa"
    end=$(now)
    ours=$(awk -v s="$start" -v e="$end" -v t=$((L * records)) 'BEGIN { printf "%.0f", t / (e - s) }')
    theirs=$("$PYTHON" tools/hyenadna_torch.py bench --d 128 --layers 2 -L "$L" --threads "$THREADS" --reps 2 |
        sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' | tail -1)
    echo "| $L | $records | $ours | ${theirs:--} | $(ratio "$ours" "${theirs:-0}") |"
done

# One record of a million bases in a single window (a model whose filters reach 1M), with the
# peak memory of each side. PyTorch gets a time limit: past it, the ratio is a lower bound.
L=1048576
LIMIT=${BENCH_1M_LIMIT:-300}
"$PYTHON" tools/hyenadna_torch.py bench-model --d 128 --layers 2 --max-len "$L" "$tmp/hyena1m" >/dev/null
awk -v L="$L" 'BEGIN { srand(7); printf ">r\n"; for (i = 0; i < L; i++) printf "%s", substr("ACGT", int(rand() * 4) + 1, 1); printf "\n" }' >"$tmp/in.fa"
if [ -x /usr/bin/time ]; then # Debian's package "time": the peak RSS too
    /usr/bin/time -f "%e %M" -o "$tmp/time" "$BIN/dna-embed" -j "$THREADS" -m "$tmp/hyena1m" -o "$tmp/out.tsv" "$tmp/in.fa"
    read -r secs kib <"$tmp/time"
    ours_mem="$((kib / 1024)) MiB"
else
    start=$(now)
    "$BIN/dna-embed" -j "$THREADS" -m "$tmp/hyena1m" -o "$tmp/out.tsv" "$tmp/in.fa"
    secs=$(awk -v s="$start" -v e="$(now)" 'BEGIN { print e - s }')
    ours_mem="- (no /usr/bin/time)"
fi
ours=$(awk -v s="$secs" -v t="$L" 'BEGIN { printf "%.0f", t / s }')
line=$(timeout "$LIMIT" "$PYTHON" tools/hyenadna_torch.py bench --d 128 --layers 2 -L "$L" --threads "$THREADS" --reps 1 | tail -1) || true
theirs=$(echo "$line" | sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')
if [ -n "$theirs" ]; then
    theirs_mem="$(echo "$line" | sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p') MiB"
    versus=$(ratio "$ours" "$theirs")
else
    theirs="< $(awk -v t="$L" -v s="$LIMIT" 'BEGIN { printf "%.0f", t / s }') (over ${LIMIT} s)"
    theirs_mem=-
    versus="> $(awk -v t="$L" -v s="$LIMIT" -v o="$ours" 'BEGIN { printf "%.1f", o / (t / s) }')"
fi
echo
echo "| L | dna-embed tokens/s | dna-embed peak RSS | PyTorch tokens/s | PyTorch peak RSS | ours/PyTorch |"
echo "|--:|--:|--:|--:|--:|--:|"
echo "| $L | $ours | $ours_mem | $theirs | $theirs_mem | $versus |"

# sr-run: output megapixels per second of whole runs (PNG in, PNG out, model load included)
# against the same networks in PyTorch float32 (tools/opencv_sr_torch.py, tools/esrgan_torch.py:
# the forward pass only), on a synthetic smooth RGB image.
echo
echo "## sr-run: output MP/s ($THREADS threads)"
echo
"$PYTHON" - "$tmp" <<'PY'
import math, struct, sys, zlib
def png(path, n):
    rows = b"".join(b"\0" + bytes(int(127.5 + 127.5 * math.sin(0.11 * x + 0.07 * y + c)) for x in range(n)
                                  for c in range(3)) for y in range(n))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", n, n, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
for n in (256, 512):
    png("%s/sr%d.png" % (sys.argv[1], n), n)
PY
echo "| model | input | sr-run MP/s | PyTorch MP/s | ours/PyTorch |"
echo "|---|--:|--:|--:|--:|"
for spec in fsrcnn-x2:512:2:opencv_sr_torch espcn-x2:512:2:opencv_sr_torch esrgan-slim-x2:512:2:esrgan_torch \
            esrgan-slim-x4:256:4:esrgan_torch realesr-animevideov3-x4:256:4:esrgan_torch; do
    name=${spec%%:*}; rest=${spec#*:}; n=${rest%%:*}; rest=${rest#*:}; scale=${rest%%:*}; tool=${rest#*:}
    start=$(now)
    "$BIN/sr-run" -j "$THREADS" -m "$name" -o "$tmp/sr.png" "$tmp/sr$n.png"
    ours=$(awk -v s="$start" -v e="$(now)" -v p=$((n * n * scale * scale)) 'BEGIN { printf "%.3f", p / 1e6 / (e - s) }')
    case $tool in
    opencv_sr_torch) model_arg="-m models/$name.safetensors" ;;
    *) model_arg="models/$name.safetensors" ;;
    esac
    theirs=$("$PYTHON" "tools/$tool.py" bench $model_arg --size "$n" --threads "$THREADS" --repeat 2 |
        sed -n 's/.*= \([0-9.]*\) MP\/s.*/\1/p' | tail -1)
    echo "| $name | ${n}x$n | $ours | ${theirs:--} | $(ratio "$ours" "${theirs:-0}") |"
done

# seg-run: milliseconds per 512x512 PNG end to end (read, stretch, network, probabilities back
# to the image, threshold, mask PNG written; 8 files per run, process start included) against
# the same pipeline in numpy float32 (tools/selfie_reference.py bench, reading the .tflite).
SELFIE=../shared/data/seg/mediapipe-selfie-tflite/selfie_segmentation.tflite
PHOTO=../shared/data/images/astronaut.png
[ -f "$PHOTO" ] || PHOTO=$tmp/sr512.png
mkdir -p "$tmp/seg"
for i in 1 2 3 4 5 6 7 8; do cp "$PHOTO" "$tmp/seg/in$i.png"; done
start=$(now)
"$BIN/seg-run" -j "$THREADS" -o "$tmp/seg/out/" "$tmp"/seg/in*.png
ours=$(awk -v s="$start" -v e="$(now)" 'BEGIN { printf "%.1f", (e - s) * 1000 / 8 }')
theirs=
if [ -f "$SELFIE" ]; then
    theirs=$("$PYTHON" tools/selfie_reference.py bench "$SELFIE" "$PHOTO" --repeat 2 |
        sed -n 's/.*= \([0-9.]*\) ms per image.*/\1/p')
fi
echo
echo "## seg-run: MediaPipe selfie, ms per 512x512 PNG end to end ($THREADS threads)"
echo
echo "| seg-run ms | numpy float32 ms | ours/numpy (throughput) |"
echo "|--:|--:|--:|"
echo "| $ours | ${theirs:--} | $(ratio "${theirs:-0}" "$ours") |"

# VAN-B0 + Semantic FPN (150 classes, random weights of the real shapes: tools/van_torch.py
# model): seg-run end to end (--stats: no image written) against the PyTorch forward alone.
"$PYTHON" tools/van_torch.py model "$tmp/van.safetensors" >/dev/null
best=
for run in 1 2 3; do
    start=$(now)
    "$BIN/seg-run" -j "$THREADS" -m "$tmp/van.safetensors" --stats "$PHOTO" >/dev/null
    ms=$(awk -v s="$start" -v e="$(now)" 'BEGIN { printf "%.0f", (e - s) * 1000 }')
    [ -z "$best" ] || [ "$ms" -lt "$best" ] && best=$ms
done
theirs=$("$PYTHON" tools/van_torch.py bench --threads "$THREADS" --size 512 --runs 2 |
    sed -n 's/.*: \([0-9.]*\) ms.*/\1/p')
echo
echo "| VAN-B0+FPN seg-run ms (end to end) | PyTorch ms (network) | ratio |"
echo "|--:|--:|--:|"
echo "| $best | ${theirs:--} | $(ratio "${theirs:-0}" "$best") |"

# Autoformer (shipped) and Informer (models/informer-etth1-96.safetensors, rebuilt by
# tools/informer_torch.py train: not shipped) on the first 256 test windows. PyTorch's time is
# its loop over the windows; ours is the run's minus that of a run forecasting one window
# (start-up: reading the CSV and the model file, widening its F16 weights), for 255 windows.
# Model GFLOP/s counts the multiply-adds of the model as written (every projection, the FFN,
# the convolutions; not the FFTs), the work PyTorch does: Autoformer here computes fewer,
# having folded the value into the output projection and the key into the query projection.
# Peak: lr_peak_gflops through attn-bench, this run.
if [ -f "$ETTH1" ]; then
    peak=$("$BIN/attn-bench" -j "$THREADS" -L 1k --reps 1 --min-time 0 --ref-rows 0 2>&1 |
        sed -n 's/.*peak \([0-9.]*\) GFLOP\/s.*/\1/p' | head -1)
    echo
    echo "## timeseries-forecast on ETTh1, windows/s ($THREADS threads, first 256 test windows, batch 32)"
    echo
    echo "| model | GFLOP a window | timeseries-forecast windows/s | model GFLOP/s | % of peak (${peak:-?} GFLOP/s) | peak RSS | PyTorch windows/s | ours/PyTorch |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    for arch in autoformer informer; do
        MODEL=models/$arch-etth1-96.safetensors
        [ -f "$MODEL" ] || { echo "| $arch | (no $MODEL) | | | | | | |"; continue; }
        gflop=$("$PYTHON" - "$MODEL" "$arch" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))["__metadata__"]
g = {k: int(v) for k, v in meta.items() if v.lstrip("-").isdigit()}
D, F, C, O = g["d_model"], g["d_ff"], g["enc_in"], g["c_out"]
Le, Ld = g["seq_len"], g["label_len"] + g["pred_len"]
marks = {"h": 4, "t": 5, "d": 3, "b": 3, "w": 2, "m": 1, "a": 1, "s": 6}[meta.get("freq", "h")]
embed = lambda L: L * (3 * C * D + marks * D)
if sys.argv[2] == "autoformer":
    enc = g["e_layers"] * Le * (4 * D * D + 2 * D * F)
    dec = g["d_layers"] * (Ld * (6 * D * D + 2 * D * F + 3 * D * O) + Le * 2 * D * D)
else:  # Informer: distilling (a kernel-3 conv on L + 2 steps) takes L to (L + 1) // 2 + 1
    enc, L = 0, Le
    for layer in range(g["e_layers"]):
        enc += L * (4 * D * D + 2 * D * F)
        if layer < g["e_layers"] - 1 and g.get("distil"):
            enc += (L + 2) * 3 * D * D
            L = (L + 1) // 2 + 1
    dec = g["d_layers"] * (Ld * (6 * D * D + 2 * D * F) + L * 2 * D * D)
print("%.3f" % (2 * (embed(Le) + enc + embed(Ld) + dec + Ld * D * O) / 1e9))
PY
)
        start=$(now)
        "$BIN/timeseries-forecast" eval -j "$THREADS" -m "$MODEL" -H 96 --train-until '2017-06-26 00:00:00' \
            --from '2017-10-24 00:00:00' --to '2017-10-28 00:00:00' -o "$tmp/eval.csv" "$ETTH1"
        one=$(awk -v s="$start" -v e="$(now)" 'BEGIN { print e - s }')
        start=$(now)
        /usr/bin/time -f "%M" -o "$tmp/time" "$BIN/timeseries-forecast" eval -j "$THREADS" -m "$MODEL" -H 96 \
            --train-until '2017-06-26 00:00:00' --from '2017-10-24 00:00:00' --to '2017-11-07 15:00:00' \
            -o "$tmp/eval.csv" "$ETTH1"
        ours=$(awk -v s="$start" -v e="$(now)" -v one="$one" 'BEGIN { printf "%.1f", 255 / (e - s - one) }')
        rss="$(($(tail -1 "$tmp/time") / 1024)) MiB"
        rate=$(awk -v w="$ours" -v g="$gflop" 'BEGIN { printf "%.0f", w * g }')
        pct=$(awk -v r="$rate" -v p="${peak:-0}" 'BEGIN { if (p > 0) printf "%.0f%%", 100 * r / p; else printf "-" }')
        theirs=$("$PYTHON" tools/${arch}_torch.py bench --threads "$THREADS" --windows 256 "$MODEL" "$ETTH1" |
            sed -n 's/.* = \([0-9.]*\) windows\/s.*/\1/p' | tail -1)
        echo "| $arch | $gflop | $ours | $rate | $pct | $rss | ${theirs:--} | $(ratio "$ours" "${theirs:-0}") |"
    done
fi
