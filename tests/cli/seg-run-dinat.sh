# seg-run with DiNAT + Semantic FPN (arch "dinat-fpn", cmd/seg-run/dinat.c): logit parity with
# the independent PyTorch implementation (tools/dinat_torch.py, which wrote the fixtures in
# float64 from a reduced random-weight model: zero-padded maps smaller than k * d, a map padded
# on one axis only, dilated sub-grids with clamped border windows), thread-count determinism,
# and unusable model files refused with exit 3.
. tests/cli/lib.sh

SEG=$BIN/seg-run
FIX=tests/fixtures/dinat
MODEL=$FIX/dinat-tiny.safetensors

# The fixtures are the sizes the network sees: the short side must not be resized.
if "$SEG" --help 2>/dev/null | grep -q -- '--size'; then
    for hw in 64x64:64 72x96:72; do
        size=${hw#*:}
        hw=${hw%:*}
        begin "seg-run-dinat-parity-$hw"
        run "$SEG" -m "$MODEL" --size "$size" -f npy --logits -o "$TMP/$hw.npy" "$FIX/in-$hw.png"
        expect_exit 0
        expect_stderr_empty
        expect_npy_close "$TMP/$hw.npy" "$FIX/logits-$hw.npy" 1e-4
        end
    done
else
    note "seg-run has no --size option: dinat parity fixtures (short side 64 and 72) skipped"
fi

# The same bytes for any thread count (at whatever size the program picks).
begin seg-run-dinat-threads
for j in 1 2 3; do
    run "$SEG" -j "$j" -m "$MODEL" -f npy --logits -o "$TMP/j$j.npy" "$FIX/in-72x96.png"
    expect_exit 0
done
expect_same_file "$TMP/j1.npy" "$TMP/j2.npy"
expect_same_file "$TMP/j1.npy" "$TMP/j3.npy"
end

begin seg-run-dinat-bad-shape
run "$SEG" -m "$FIX/bad-shape.safetensors" -o "$TMP/bad.png" "$FIX/in-64x64.png"
expect_exit 3
expect_stderr_match "patch_embed\.proj\.0\.weight.*\[3, 4, 3, 3\]"
expect_file_absent "$TMP/bad.png"
end

begin seg-run-dinat-bad-dilations
run "$SEG" -m "$FIX/bad-dilations.safetensors" -o "$TMP/bad.png" "$FIX/in-64x64.png"
expect_exit 3
expect_stderr_match "dilations"
expect_file_absent "$TMP/bad.png"
end

finish
