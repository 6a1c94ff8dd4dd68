# seg-run with the MediaPipe selfie models (tools/convert_mediapipe_selfie.py): logit parity
# with the independent numpy interpreter of the .tflite graph (tools/selfie_reference.py,
# which also wrote the fixtures), thread-count determinism, a mis-shaped tensor refused with
# exit 3, and on ../shared/data/images the mask IoU against the reference's masks.
. tests/cli/lib.sh

SEG=$BIN/seg-run
FIX=tests/fixtures/selfie
IN=$FIX/astronaut-256.png # already 256x256: the square model sees its pixels / 255 unresized

# Logits before the final sigmoid, as the reference computed them in float64 (they reach
# about +-800; float32 accumulation differs by ~1e-3).
for model in selfie selfie-landscape; do
    begin "seg-run-selfie-parity-$model"
    run "$SEG" -m "$model" -f npy --logits -o "$TMP/$model.npy" "$IN"
    expect_exit 0
    expect_stderr_empty
    expect_npy_close "$TMP/$model.npy" "$FIX/astronaut-256.$model.logits.npy" 0.02
    end
done

# The same bytes for any thread count.
begin seg-run-selfie-threads
for j in 1 2 3; do
    run "$SEG" -j "$j" -f npy --logits -o "$TMP/j$j.npy" "$IN"
    expect_exit 0
done
expect_same_file "$TMP/j1.npy" "$TMP/j2.npy"
expect_same_file "$TMP/j1.npy" "$TMP/j3.npy"
end

# conv2d_1.weight stored in TFLite's OHWI order: same bytes, wrong shape.
begin seg-run-selfie-bad-shape
run "$SEG" -m "$FIX/bad-shape.safetensors" -o "$TMP/bad.png" "$IN"
expect_exit 3
expect_stderr_match "conv2d_1\.weight.*\[16, 1, 1, 16\]"
expect_file_absent "$TMP/bad.png"
end

# mask_iou LOGITS.npy MASK.rle: IoU of (logit > 0) with the reference mask (one line per row:
# alternating run lengths, background first).
mask_iou() {
    awk '{ v = 0; for (i = 1; i <= NF; i++) { for (k = 0; k < $i; k++) print v; v = 1 - v } }' \
        "$2" >"$TMP/iou_want"
    npy_floats "$1" | paste - "$TMP/iou_want" | awk '
        NF != 2 { bad = 1 }
        { g = ($1 > 0); both += g && $2; either += g || $2 }
        END { if (bad || NR == 0) print "size mismatch"
              else printf "%.6f", either ? both / either : 1 }'
}

if [ -d ../shared/data/images ]; then
    for model in selfie selfie-landscape; do
        for png in ../shared/data/images/*.png; do
            name=$(basename "$png" .png)
            [ -f "$FIX/$name.$model.mask.rle" ] || continue
            begin "seg-run-selfie-iou-$model-$name"
            run "$SEG" -m "$model" -f npy --logits -o "$TMP/iou.npy" "$png"
            expect_exit 0
            iou=$(mask_iou "$TMP/iou.npy" "$FIX/$name.$model.mask.rle")
            awk -v v="$iou" 'BEGIN { exit !(v + 0 >= 0.995) }' ||
                fail_because "mask IoU $iou < 0.995"
            end
        done
    done
else
    note "../shared/data/images is absent: the IoU checks on real photos are skipped"
fi

finish
