#!/bin/sh
# make bench: video-animate against its PyTorch reference, same machine, same run, same threads.
# Markdown on stdout.
#   interp: ms per 768x576 interpolated frame of vtest.avi (RIFE v4.6, 37.35 GFLOP a frame), end
#     to end through the program (decoding and Y4M writing included), against
#     tools/rife_torch.py (the ncnn graph run layer by layer with PyTorch ops); GFLOP/s and the
#     share of this machine's peak (measured by attn-bench in this run).
#   memory: peak RSS of an interpolation of a generated endless stream (ffmpeg's testsrc2 at
#     64x64 as Y4M on a pipe) after 1,000 and 10,000 frames: it must not grow.
#   stream: ms per frame and peak RSS of the built-in RAIN-style denoiser on a generated
#     stream of 400 and 2,000 frames (memory must not grow with the length).
# Knobs: BIN (default bin), BENCH_THREADS (default 2; the PyTorch reference always uses 2),
# BENCH_VIDEO_FRAMES (interpolations timed, default 8).
set -eu
BIN=${BIN:-bin}
THREADS=${BENCH_THREADS:-2}
FRAMES=${BENCH_VIDEO_FRAMES:-8}
PYTHON=/usr/bin/python3
VTEST=../shared/data/video/vtest.avi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/video-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }

echo "## video-animate interp: RIFE v4.6, ms per 768x576 frame ($THREADS threads)"
echo
if [ ! -f "$VTEST" ]; then
    echo "($VTEST is absent: skipped)"
else
    peak=$("$BIN/attn-bench" -j "$THREADS" -L 1k --reps 1 --min-time 0 --ref-rows 0 2>&1 |
        sed -n 's/.*peak \([0-9.]*\) GFLOP\/s.*/\1/p' | head -1)
    # FRAMES + 1 input frames give FRAMES interpolations; the time of a run with one
    # interpolation (loading the model, the first call's allocations) is subtracted.
    "$BIN/video-animate" -j "$THREADS" --frames 2 -o "$tmp/warm.y4m" "$VTEST"
    start=$(now)
    "$BIN/video-animate" -j "$THREADS" --frames 2 -o "$tmp/warm.y4m" "$VTEST"
    mid=$(now)
    "$BIN/video-animate" -j "$THREADS" --frames $((FRAMES + 1)) -o "$tmp/out.y4m" "$VTEST"
    end=$(now)
    ours=$(awk -v s="$start" -v m="$mid" -v e="$end" -v n="$FRAMES" \
        'BEGIN { printf "%.0f", ((e - m) - (m - s)) * 1000 / (n - 1) }')
    gflops=$(awk -v ms="$ours" 'BEGIN { printf "%.1f", 37.35 / (ms / 1000) }')
    pct=$(awk -v g="$gflops" -v p="${peak:-0}" 'BEGIN { if (p > 0) printf "%.0f%%", 100 * g / p; else printf "-" }')
    theirs=-
    if "$PYTHON" -c 'import torch' 2>/dev/null; then
        theirs=$("$PYTHON" tools/rife_torch.py bench |
            sed -n 's/^rife_torch_s_per_frame \([0-9.]*\).*/\1/p' | awk '{ printf "%.0f", $1 * 1000 }')
    fi
    ratio=$(awk -v a="$ours" -v b="${theirs:-0}" 'BEGIN { if (b > 0) printf "%.1f", b / a; else printf "-" }')
    echo "| video-animate ms/frame | GFLOP/s | % of peak (${peak:-?} GFLOP/s) | PyTorch ms/frame | speed-up |"
    echo "|--:|--:|--:|--:|--:|"
    echo "| $ours | $gflops | $pct | ${theirs:--} | $ratio |"
fi
echo

echo "## video-animate interp: peak RSS on an endless 64x64 stream"
echo
if ! command -v ffmpeg >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
    echo "(ffmpeg or /usr/bin/time is absent: skipped)"
else
    echo "| input frames | output frames | peak RSS | seconds |"
    echo "|--:|--:|--:|--:|"
    for n in 1000 10000; do
        ffmpeg -v error -f lavfi -i testsrc2=size=64x64:rate=25 -frames:v "$n" -f yuv4mpegpipe - |
            /usr/bin/time -f "%e %M" -o "$tmp/time" "$BIN/video-animate" -j "$THREADS" - |
            wc -c | awk '{ print int($1 / (6 + 64 * 64 * 3 / 2)) }' >"$tmp/count"
        read -r secs kib <"$tmp/time"
        echo "| $n | $(cat "$tmp/count") | $((kib / 1024)) MiB | $secs |"
    done
fi
echo

echo "## video-animate stream: RAIN-style ring (4 levels x 4 frames, 96x72 denoiser), generated stream"
echo
if ! command -v ffmpeg >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
    echo "(ffmpeg or /usr/bin/time is absent: skipped)"
else
    echo "| input frames | output frames | ms per frame | peak RSS |"
    echo "|--:|--:|--:|--:|"
    for n in 400 2000; do
        ffmpeg -v error -f lavfi -i testsrc2=size=192x144:rate=25 -frames:v "$n" -f yuv4mpegpipe - |
            /usr/bin/time -f "%e %M" -o "$tmp/time" "$BIN/video-animate" stream -j "$THREADS" - |
            wc -c | awk '{ print int($1 / (6 + 96 * 72 * 3 / 2)) }' >"$tmp/count"
        read -r secs kib <"$tmp/time"
        ms=$(awk -v s="$secs" -v n="$n" 'BEGIN { printf "%.1f", s * 1000 / n }')
        echo "| $n | $(cat "$tmp/count") | $ms | $((kib / 1024)) MiB |"
    done
fi
