# seg-run with the built-in MediaPipe selfie models (the network's own parity tests live with
# it): every format on a real photo (or the committed fixture), every PNG kind gives its 8-bit
# RGB twin's result exactly, -j1 = -j3, pipes, batches, --stats, bad inputs, wrong models, and
# the robustness properties of tools/seg_properties.py when Python and the photos are there.
. tests/cli/lib.sh

SEG=$BIN/seg-run
FIX=tests/fixtures/seg-run
IMAGES=../shared/data/images

# The IHDR of a PNG: "width height bit_depth colour_type".
ihdr() {
    od -An -v -tu1 -j16 -N10 "$1" | awk '{ printf "%d %d %d %d\n", (($1 * 256 + $2) * 256 + $3) * 256 + $4,
        (($5 * 256 + $6) * 256 + $7) * 256 + $8, $9, $10 }'
}

# The NPY header's dictionary text.
npy_dict() {
    head -c 128 "$1" | tr -d '\000-\011\013-\037' | sed -n 's/.*\({.*}\).*/\1/p' | head -1
}

if [ -f "$IMAGES/astronaut.png" ]; then
    PHOTO=$IMAGES/astronaut.png
    SIZE="512 512"
else
    note "seg-run: $IMAGES is absent: the formats are checked on the committed fixture"
    PHOTO=$FIX/kinds.png
    SIZE="72 96"
fi

begin seg-run-help
run "$SEG" --help
expect_exit 0
expect_stdout_match '^Usage: seg-run \[OPTIONS\] \[FILE\|-\]\.\.\.$'
expect_stdout_match 'letterbox'
expect_stderr_empty
end

# Every format: the input's size; the PNG type each format promises.
begin seg-run-formats
for case in "mask 8 0" "prob 8 0" "label 8 3" "cutout 8 6" "overlay 8 2"; do
    set -- $case
    run "$SEG" -f "$1" -o "$TMP/photo-$1.png" "$PHOTO"
    expect_exit 0
    expect_stderr_empty
    got=$(ihdr "$TMP/photo-$1.png")
    [ "$got" = "$SIZE $2 $3" ] || fail_because "$1: IHDR $got, expected $SIZE $2 $3"
done
LC_ALL=C grep -aq 'person' "$TMP/photo-label.png" || fail_because "label: no class names"
run "$SEG" -f npy -o "$TMP/photo.npy" "$PHOTO"
expect_exit 0
set -- $SIZE
case $(npy_dict "$TMP/photo.npy") in *"'shape': ($2, $1)"*) ;; *) fail_because "npy shape: $(npy_dict "$TMP/photo.npy")";; esac
npy_floats "$TMP/photo.npy" | awk '$1 < 0 || $1 > 1 { bad = 1 } $1 > 0.5 { on++ }
    END { if (bad) print "a probability outside 0..1"; if (!on) print "no person found" }' >"$TMP/why"
[ ! -s "$TMP/why" ] || fail_because "$(cat "$TMP/why")"
# The raw logits at the network's size: 256x256, or 256 wide x 144 high for a wide image.
run "$SEG" -f npy --logits -o "$TMP/logits.npy" "$PHOTO"
case $(npy_dict "$TMP/logits.npy") in *"'shape': (256, 256)"*) ;; *) fail_because "logits shape: $(npy_dict "$TMP/logits.npy")";; esac
run "$SEG" --logits "$PHOTO"
expect_exit 2
end

# Depth and colour type follow the input: 16-bit prob and cutout, grey cutout with alpha.
begin seg-run-depths
run "$SEG" -f prob -o "$TMP/p16.png" "$FIX/rgb16.png"
[ "$(ihdr "$TMP/p16.png")" = "72 96 16 0" ] || fail_because "prob of 16-bit: $(ihdr "$TMP/p16.png")"
run "$SEG" -f cutout -o "$TMP/c16.png" "$FIX/rgb16.png"
[ "$(ihdr "$TMP/c16.png")" = "72 96 16 6" ] || fail_because "cutout of 16-bit: $(ihdr "$TMP/c16.png")"
run "$SEG" -f cutout -o "$TMP/cgrey.png" "$FIX/grey8.png"
[ "$(ihdr "$TMP/cgrey.png")" = "72 96 8 4" ] || fail_because "cutout of grey: $(ihdr "$TMP/cgrey.png")"
run "$SEG" -f prob -o "$TMP/p8.png" "$FIX/palette.png"
[ "$(ihdr "$TMP/p8.png")" = "72 96 8 0" ] || fail_because "prob of palette: $(ihdr "$TMP/p8.png")"
# An input alpha is multiplied in: the cutout of the RGBA fixture differs from the RGB one's
# alpha, and a hard cutout (-t) differs from the soft one.
run "$SEG" -f cutout -o "$TMP/c-rgba.png" "$FIX/rgba8.png"
run "$SEG" -f cutout -o "$TMP/c-rgb.png" "$FIX/kinds.png"
cmp -s "$TMP/c-rgba.png" "$TMP/c-rgb.png" && fail_because "the input alpha was ignored"
run "$SEG" -f cutout -t 0.5 -o "$TMP/c-hard.png" "$FIX/kinds.png"
expect_exit 0
cmp -s "$TMP/c-hard.png" "$TMP/c-rgb.png" && fail_because "-t did not make the cutout hard"
end

# Every PNG kind gives exactly its 8-bit RGB twin's probabilities and mask.
begin seg-run-png-kinds
for pair in "grey8 grey8-rgb8" "rgb16 kinds" "rgba8 kinds" "palette palette-rgb8" \
            "rgb8-interlaced kinds"; do
    set -- $pair
    for k in "$1" "$2"; do
        run "$SEG" -f npy -o "$TMP/kind-$k.npy" "$FIX/$k.png"
        expect_exit 0
        run "$SEG" -o "$TMP/kind-$k.png" "$FIX/$k.png"
    done
    expect_same_file "$TMP/kind-$1.npy" "$TMP/kind-$2.npy"
    expect_same_file "$TMP/kind-$1.png" "$TMP/kind-$2.png"
done
end

begin seg-run-threads
run "$SEG" -j1 -f npy -o "$TMP/j1.npy" "$PHOTO"
run "$SEG" -j3 -f npy -o "$TMP/j3.npy" "$PHOTO"
expect_same_file "$TMP/j1.npy" "$TMP/j3.npy"
run "$SEG" -j3 -f npy --logits -o "$TMP/j3-logits.npy" "$PHOTO"
expect_same_file "$TMP/logits.npy" "$TMP/j3-logits.npy"
end

begin seg-run-stdin-stdout
run_with_input "$FIX/kinds.png" "$SEG" -f overlay
expect_exit 0
cp "$OUT" "$TMP/overlay-pipe.png"
run "$SEG" -f overlay -o "$TMP/overlay-file.png" "$FIX/kinds.png"
expect_same_file "$TMP/overlay-pipe.png" "$TMP/overlay-file.png"
run_with_input "$FIX/kinds.png" "$SEG" -f overlay -
expect_same_file "$OUT" "$TMP/overlay-file.png"
end

# A batch into a folder: names from the inputs, a bad input reported in one line and skipped,
# exit 1 at the end, nothing written for it.
begin seg-run-batch
printf 'not a PNG\n' >"$TMP/text.png"
head -c 100 "$FIX/kinds.png" >"$TMP/truncated.png"
run "$SEG" -f cutout -o "$TMP/batch/" "$FIX/kinds.png" "$TMP/text.png" "$FIX/grey8.png" \
    "$TMP/truncated.png" "$FIX/palette.png"
expect_exit 1
expect_stderr_lines 2
for k in kinds grey8 palette; do
    [ -s "$TMP/batch/$k.png" ] || fail_because "$k.png not written"
done
expect_file_absent "$TMP/batch/text.png"
expect_file_absent "$TMP/batch/truncated.png"
run "$SEG" -f npy -o "$TMP/batch" "$FIX/kinds.png"
[ -s "$TMP/batch/kinds.npy" ] || fail_because "kinds.npy not written"
run "$SEG" -o "$TMP/two.png" "$FIX/kinds.png" "$FIX/grey8.png"
expect_exit 2
end

# --stats: a header and one row per file, 7 columns; -m auto picks the landscape model for a
# wide image; with -o DIR the images are written as well.
begin seg-run-stats
run "$SEG" --stats "$FIX/kinds.png" "$FIX/grey8.png" "$TMP/text.png"
expect_exit 1
[ "$(head -1 "$OUT")" = "$(printf 'name\twidth\theight\tmodel\tcoverage\tmean_prob\tms')" ] ||
    fail_because "header: $(head -1 "$OUT")"
[ "$(wc -l <"$OUT")" -eq 3 ] || fail_because "$(wc -l <"$OUT") lines"
awk -F'\t' 'NR > 1 && (NF != 7 || $2 != 72 || $3 != 96 || $4 != "selfie" || $5 < 0 || $5 > 1) { print "row " NR ": " $0 }' \
    "$OUT" >"$TMP/why"
[ ! -s "$TMP/why" ] || fail_because "$(cat "$TMP/why")"
run "$SEG" --stats -o "$TMP/stats.tsv" "$FIX/kinds.png"
expect_exit 0
expect_stdout_empty
[ "$(wc -l <"$TMP/stats.tsv")" -eq 2 ] || fail_because "stats file: $(cat "$TMP/stats.tsv")"
if [ -f "$IMAGES/chelsea.png" ]; then
    run "$SEG" --stats "$IMAGES/chelsea.png"
    awk -F'\t' 'NR == 2 && $4 != "selfie-landscape" { print "451x300 ran " $4 }' "$OUT" >"$TMP/why"
    [ ! -s "$TMP/why" ] || fail_because "$(cat "$TMP/why")"
    run "$SEG" -m selfie --stats "$IMAGES/chelsea.png"
    awk -F'\t' 'NR == 2 && $4 != "selfie" { print "-m selfie ran " $4 }' "$OUT" >"$TMP/why"
    [ ! -s "$TMP/why" ] || fail_because "$(cat "$TMP/why")"
    run "$SEG" -f npy --logits -o "$TMP/wide.npy" "$IMAGES/chelsea.png"
    case $(npy_dict "$TMP/wide.npy") in *"'shape': (144, 256)"*) ;; *) fail_because "landscape logits: $(npy_dict "$TMP/wide.npy")";; esac
fi
run "$SEG" --stats -o "$TMP/statsdir/" "$FIX/kinds.png"
expect_exit 0
[ -s "$TMP/statsdir/kinds.png" ] || fail_because "--stats -o DIR wrote no image"
[ "$(wc -l <"$OUT")" -eq 2 ] || fail_because "--stats -o DIR: no table on stdout"
# A lower threshold covers at least as much.
run "$SEG" --stats -t 0.1 "$PHOTO"
lo=$(awk -F'\t' 'NR == 2 { print $5 }' "$OUT")
run "$SEG" --stats -t 0.9 "$PHOTO"
hi=$(awk -F'\t' 'NR == 2 { print $5 }' "$OUT")
awk -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(lo >= hi && hi > 0) }' ||
    fail_because "coverage at -t 0.1 $lo, at -t 0.9 $hi"
end

# Parallel processes (xargs -P) into one folder, and into one table; a closed pipe is quiet.
begin seg-run-xargs
printf '%s\n' "$FIX/kinds.png" "$FIX/grey8.png" "$FIX/palette.png" "$FIX/rgb16.png" |
    xargs -P2 -n1 "$SEG" -j1 -o "$TMP/par/" >"$OUT" 2>"$ERR"
expect_stderr_empty
for k in kinds grey8 palette rgb16; do
    [ -s "$TMP/par/$k.png" ] || fail_because "xargs: $k.png not written"
done
printf '%s\n' "$FIX/kinds.png" "$FIX/grey8.png" "$FIX/palette.png" "$FIX/rgb16.png" |
    xargs -P2 -n2 "$SEG" -j1 --stats >"$OUT" 2>"$ERR"
[ "$(grep -vc '^name' "$OUT")" -eq 4 ] || fail_because "xargs --stats: $(cat "$OUT")"
"$SEG" --stats "$FIX/kinds.png" "$FIX/grey8.png" "$FIX/palette.png" 2>"$ERR" | head -1 >/dev/null
expect_stderr_empty
end

begin seg-run-letterbox
run "$SEG" --fit letterbox -f npy -o "$TMP/lb.npy" "$FIX/kinds.png"
expect_exit 0
case $(npy_dict "$TMP/lb.npy") in *"'shape': (96, 72)"*) ;; *) fail_because "letterbox shape: $(npy_dict "$TMP/lb.npy")";; esac
cmp -s "$TMP/lb.npy" "$TMP/kind-kinds.npy" && fail_because "letterbox changed nothing"
run "$SEG" --fit square "$FIX/kinds.png"
expect_exit 2
end

# Many classes (cmd/seg-run/pointwise.c on a drawing whose labels are known): softmax, argmax,
# the model's palette and class names, the resize back from a coarser output, letterbox crops.
begin seg-run-classes
for m in 40x30 40x30-s2 40x40; do
    run "$SEG" -m "$FIX/pointwise-$m.safetensors" --stats "$FIX/shapes.png"
    expect_exit 0
    cov=$(awk -F'\t' 'NR == 2 { print $5 }' "$OUT")
    [ "$cov" = "0.32" ] || fail_because "$m: coverage $cov, expected 384/1200"
    run "$SEG" -m "$FIX/pointwise-$m.safetensors" -f label -o "$TMP/shapes-$m.png" "$FIX/shapes.png"
    [ "$(ihdr "$TMP/shapes-$m.png")" = "40 30 8 3" ] || fail_because "$m: label IHDR $(ihdr "$TMP/shapes-$m.png")"
done
expect_same_file "$TMP/shapes-40x30.png" "$TMP/shapes-40x30-s2.png"
LC_ALL=C grep -aq '2 blue' "$TMP/shapes-40x30.png" || fail_because "class names missing"
run "$SEG" -m "$FIX/pointwise-40x40.safetensors" --fit letterbox -f label -o "$TMP/shapes-lb.png" "$FIX/shapes.png"
expect_same_file "$TMP/shapes-40x30.png" "$TMP/shapes-lb.png"
run "$SEG" -m "$FIX/pointwise-40x30.safetensors" -f npy -o "$TMP/shapes.npy" "$FIX/shapes.png"
case $(npy_dict "$TMP/shapes.npy") in *"'shape': (3, 30, 40)"*) ;; *) fail_because "class npy: $(npy_dict "$TMP/shapes.npy")";; esac
run "$SEG" -m "$FIX/pointwise-40x30-s2.safetensors" -f npy --logits -o "$TMP/shapes-logits.npy" "$FIX/shapes.png"
case $(npy_dict "$TMP/shapes-logits.npy") in *"'shape': (3, 15, 20)"*) ;; *) fail_because "class logits: $(npy_dict "$TMP/shapes-logits.npy")";; esac
for f in mask prob cutout overlay; do
    run "$SEG" -m "$FIX/pointwise-40x30.safetensors" -f $f -o "$TMP/shapes-$f.png" "$FIX/shapes.png"
    expect_exit 0
done
end

# Bad inputs: one line, exit 1, no output file.
begin seg-run-bad-inputs
: >"$TMP/empty.png"
cp "$FIX/kinds.png" "$TMP/crc.png"
printf '\377' | dd of="$TMP/crc.png" bs=1 seek=200 conv=notrunc 2>/dev/null
for bad in "$TMP/text.png" "$TMP/truncated.png" "$TMP/empty.png" "$FIX/zero-width.png" \
           "$TMP/missing.png" "$TMP/crc.png"; do
    run "$SEG" -o "$TMP/bad-out.png" "$bad"
    expect_exit 1
    expect_stderr_lines 1
    expect_file_absent "$TMP/bad-out.png"
done
run "$SEG" --max-pixels 1000 -o "$TMP/bad-out.png" "$FIX/kinds.png"
expect_exit 1
expect_stderr_match 'max-pixels'
expect_file_absent "$TMP/bad-out.png"
run_with_input "$TMP/truncated.png" "$SEG"
expect_exit 1
expect_stdout_empty
end

# A model of another kind, or none: exit 3, nothing written.
begin seg-run-wrong-model
run "$SEG" -m models/bicubic-x2.safetensors -o "$TMP/wrong.png" "$FIX/kinds.png"
expect_exit 3
expect_stderr_match 'not a segmentation model'
expect_file_absent "$TMP/wrong.png"
run "$SEG" -m "$TMP/no-such-model.safetensors" -o "$TMP/wrong.png" "$FIX/kinds.png"
expect_exit 3
expect_file_absent "$TMP/wrong.png"
end

# Horizontal flip, brightness x0.7 / x1.3, mild noise and another background keep the person
# mask (IoU against the unmodified photo; the minimums are in tools/seg_properties.py).
if [ -f "$IMAGES/astronaut.png" ] && [ -f "$IMAGES/camera.png" ] &&
   /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    begin seg-run-properties
    run /usr/bin/python3 tools/seg_properties.py check "$SEG" "$IMAGES/astronaut.png" \
        "$IMAGES/camera.png"
    expect_exit 0
    end
    # The input and output resizing against numpy (an identity network shows the input).
    begin seg-run-resize-numpy
    for photo in "$IMAGES/astronaut.png" "$IMAGES/chelsea.png"; do
        run /usr/bin/python3 tools/seg_properties.py resize "$SEG" "$photo"
        expect_exit 0
    done
    end
else
    note "seg-run-properties and seg-run-resize-numpy skipped: needs $IMAGES and /usr/bin/python3 with numpy"
fi

finish
