# sr-run with the OpenCV dnn_superres FSRCNN and ESPCN models (tools/convert_opencv_sr.py):
# parity with the independent PyTorch implementation (tools/opencv_sr_torch.py, which also
# wrote the fixtures), every shipped model loads, a mis-shaped tensor is refused with exit 3,
# and on ../shared/data/images the quality the reference implementation measured.
. tests/cli/lib.sh

SR=$BIN/sr-run
FIX=tests/fixtures/opencv-sr
IN=$FIX/input.png # 23x17 16-bit grey: the luma nets see v/65535 directly

# Every shipped model on the fixture: the float output before clamping, as PyTorch (float64)
# computed it. fsrcnn-x2 is the default for -s 2, so it comes first.
for model in fsrcnn-x2 espcn-x2 fsrcnn-x4 espcn-x4 fsrcnn-small-x2; do
    begin "sr-run-opencv-parity-$model"
    run "$SR" -m "models/$model.safetensors" -f npy -o "$TMP/$model.npy" "$IN"
    expect_exit 0
    expect_stderr_empty
    expect_npy_close "$TMP/$model.npy" "$FIX/$model.npy" 1e-4
    end
done

# Bit-identical for any thread count.
for model in fsrcnn-x2 espcn-x2; do
    begin "sr-run-opencv-threads-$model"
    for j in 1 3; do
        run "$SR" -j "$j" -m "models/$model.safetensors" -f npy -o "$TMP/$model-j$j.npy" "$IN"
        expect_exit 0
    done
    expect_same_file "$TMP/$model-j1.npy" "$TMP/$model-j3.npy"
    expect_same_file "$TMP/$model-j1.npy" "$TMP/$model.npy"
    end
done

# Tiles with the nets' full context (the default --tile-pad) give the untiled result.
for model in fsrcnn-x2 espcn-x4; do
    begin "sr-run-opencv-tiled-$model"
    run "$SR" -m "models/$model.safetensors" -f npy --tile 8 -o "$TMP/$model-tiled.npy" "$IN"
    expect_exit 0
    expect_npy_close "$TMP/$model-tiled.npy" "$FIX/$model.npy" 1e-4
    end
done

# f3 stored in TensorFlow's HWIO order: same bytes, wrong shape.
begin sr-run-opencv-bad-shape
run "$SR" -m "$FIX/bad-shape.safetensors" -o "$TMP/bad.png" "$IN"
expect_exit 3
expect_stderr_match "f3.*\[5, 5, 3, 3\]"
expect_file_absent "$TMP/bad.png"
end

# eval: the gain over bicubic on every image and on average (the reference implementation of
# the same graphs measured +0.68 dB for FSRCNN x2 and +0.54 dB for ESPCN x2).
eval_gain() { # MODEL WANT: every image gains, the mean gain is WANT +- 0.1 dB
    run "$SR" eval -m "models/$1.safetensors" ../shared/data/images/*.png
    expect_exit 0
    verdict=$(awk -F '\t' -v want="$2" '
        $1 ~ /^image$/ { next }
        $1 ~ /^mean/ { mean = $4; next }
        NF >= 6 { n++; if ($4 + 0 <= 0) bad = bad " " $1 " (" $4 " dB)" }
        END { if (n == 0) print "no image rows";
              else if (bad != "") print "no gain on" bad;
              else if (mean == "") print "no mean row";
              else if (mean - want > 0.1 || want - mean > 0.1) print "mean gain " mean " dB, expected " want " +- 0.1" }' "$OUT")
    [ -z "$verdict" ] || fail_because "$1: $verdict"
}
if [ -d ../shared/data/images ]; then
    begin sr-run-opencv-eval-fsrcnn-x2
    eval_gain fsrcnn-x2 0.68
    end
    begin sr-run-opencv-eval-espcn-x2
    eval_gain espcn-x2 0.54
    end
else
    note "../shared/data/images absent: FSRCNN/ESPCN quality not checked"
fi

finish
