# seg-run with VAN + Semantic FPN (arch "van-fpn", cmd/seg-run/van.c and fpn.c): logit parity
# with the independent PyTorch implementation (tools/van_torch.py, which wrote the fixtures in
# float64 from a random-weight model with reduced widths and depths), --size, sliding-window
# inference (--tile/--overlap) against mmseg's slide inference, determinism, bad options and a
# mis-shaped model.
. tests/cli/lib.sh

SEG=$BIN/seg-run
FIX=tests/fixtures/van
MODEL=$FIX/van-tiny.safetensors

# --size equal to the short side: the network sees the PNG's pixels / 255 unresized; the
# logits are the FPN head's, at stride 4 (the first stage's map size). 64x48
# (multiples of 16), 70x45 (odd maps at every stage), 23x19 (stage 4 is 1x1).
for case in 64x48:48 70x45:45 23x19:19; do
    img=${case%%:*}
    size=${case##*:}
    begin "seg-run-van-parity-$img"
    run "$SEG" -m "$MODEL" --size "$size" -f npy --logits -o "$TMP/$img.npy" "$FIX/rgb$img.png"
    expect_exit 0
    expect_stderr_empty
    expect_npy_close "$TMP/$img.npy" "$FIX/rgb$img.logits.npy" 1e-4
    end
done

# The reference kernels (libcore's plain loops, GELU with libm's erff) agree as closely.
begin seg-run-van-parity-ref
saved_cpu=${LR_CPU-unset}
export LR_CPU=ref
run "$SEG" -m "$MODEL" --size 45 -f npy --logits -o "$TMP/ref.npy" "$FIX/rgb70x45.png"
expect_exit 0
if [ "$saved_cpu" = unset ]; then unset LR_CPU; else LR_CPU=$saved_cpu; fi
expect_npy_close "$TMP/ref.npy" "$FIX/rgb70x45.logits.npy" 1e-4
end

# mmseg's slide inference: 12x12 windows every 8 pixels over 23x19 (3 x 2 windows).
begin seg-run-van-tile-parity
run "$SEG" -m "$MODEL" --size 19 --tile 12 --overlap 4 -f npy --logits -o "$TMP/tile.npy" \
    "$FIX/rgb23x19.png"
expect_exit 0
expect_npy_close "$TMP/tile.npy" "$FIX/rgb23x19.tile12-4.logits.npy" 1e-4
end

# One window covering the map is mmseg's whole inference: the untiled stride-4 logits (checked
# above) resized to the input, which the reference computed too. Twice the same bytes.
begin seg-run-van-one-tile
run "$SEG" -m "$MODEL" --size 19 --tile 23 -f npy --logits -o "$TMP/one.npy" "$FIX/rgb23x19.png"
expect_exit 0
expect_npy_close "$TMP/one.npy" "$FIX/rgb23x19.full.logits.npy" 1e-4
run "$SEG" -m "$MODEL" --size 19 --tile 64 -f npy --logits -o "$TMP/one2.npy" "$FIX/rgb23x19.png"
expect_exit 0
expect_same_file "$TMP/one.npy" "$TMP/one2.npy"
end

# The same bytes for any thread count, whole and tiled.
begin seg-run-van-threads
for j in 1 2 3; do
    run "$SEG" -j "$j" -m "$MODEL" --size 45 -f npy --logits -o "$TMP/j$j.npy" "$FIX/rgb70x45.png"
    expect_exit 0
    run "$SEG" -j "$j" -m "$MODEL" --size 45 --tile 32 --overlap 10 -f npy --logits \
        -o "$TMP/t$j.npy" "$FIX/rgb70x45.png"
    expect_exit 0
done
expect_same_file "$TMP/j1.npy" "$TMP/j2.npy"
expect_same_file "$TMP/j1.npy" "$TMP/j3.npy"
expect_same_file "$TMP/t1.npy" "$TMP/t2.npy"
expect_same_file "$TMP/t1.npy" "$TMP/t3.npy"
end

# --size resizes the short side (64x48 -> 32x24: stride-4 logits 8 x 6), and the
# probabilities come back at the image's size.
begin seg-run-van-size
run "$SEG" -m "$MODEL" --size 24 -f npy --logits -o "$TMP/s24.npy" "$FIX/rgb64x48.png"
expect_exit 0
[ "$(npy_floats "$TMP/s24.npy" | wc -l)" -eq $((5 * 6 * 8)) ] ||
    fail_because "--size 24 logits: not 5 x 6 x 8 values"
run "$SEG" -m "$MODEL" --size 24 -f npy -o "$TMP/p24.npy" "$FIX/rgb64x48.png"
expect_exit 0
[ "$(npy_floats "$TMP/p24.npy" | wc -l)" -eq $((5 * 48 * 64)) ] ||
    fail_because "--size 24 probabilities: not 5 x 48 x 64 values"
run "$SEG" -m "$MODEL" --size 24 -f label -o "$TMP/label.png" "$FIX/rgb64x48.png"
expect_exit 0
end

begin seg-run-van-bad-options
run "$SEG" -m "$MODEL" --overlap 4 "$FIX/rgb23x19.png"
expect_exit 2
expect_stderr_match "overlap.*only with --tile"
run "$SEG" -m "$MODEL" --tile 8 --overlap 8 "$FIX/rgb23x19.png"
expect_exit 2
run "$SEG" -m "$MODEL" --size 0 "$FIX/rgb23x19.png"
expect_exit 2
run "$SEG" -m "$MODEL" --tile x "$FIX/rgb23x19.png"
expect_exit 2
end

# The first patch embedding made for 4 channels: exit 3 naming the tensor, nothing written.
begin seg-run-van-bad-shape
run "$SEG" -m "$FIX/bad-shape.safetensors" -o "$TMP/bad.png" "$FIX/rgb23x19.png"
expect_exit 3
expect_stderr_match "patch_embed1\.proj\.weight.*\[8, 4, 7, 7\]"
expect_file_absent "$TMP/bad.png"
end

finish
