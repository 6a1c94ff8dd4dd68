# sr-run with ESRGAN-slim (RDN, cmd/sr-run/rdn.c) and Real-ESRGAN animevideov3 (SRVGGNetCompact,
# cmd/sr-run/srvgg.c): parity with the float64 PyTorch reference (tools/esrgan_torch.py
# fixtures), thread and tile invariance, the package's own results for esrgan-slim, and model
# files with a wrong tensor shape or hyper-parameter.
. tests/cli/lib.sh

SR=$BIN/sr-run
FIX=tests/fixtures/esrgan
IDENTITY=$FIX/identity-x1.safetensors # bicubic at scale 1: reads a PNG as float32 NPY
UPSCALERJS=../shared/data/sr/upscalerjs-fixture

# max and mean |a - b| * 255 (levels) over two equally long float32 NPY files.
npy_levels() {
    npy_floats "$1" >"$TMP/lv_a" && npy_floats "$2" >"$TMP/lv_b" || { echo "unreadable"; return; }
    paste "$TMP/lv_a" "$TMP/lv_b" | awk 'NF != 2 { print "different element counts"; bad = 1; exit }
        { d = ($1 - $2) * 255; if (d < 0) d = -d; if (d > m) m = d; s += d }
        END { if (!bad) printf "%.4f %.3g\n", m, s / NR }'
}

# Parity: the 13x11 16-bit RGB fixture through each shipped model, before clamping.
for name in esrgan-slim-x2 esrgan-slim-x4 realesr-animevideov3-x4; do
    begin "sr-run-esrgan-parity-$name"
    run "$SR" -m "models/$name.safetensors" -f npy -o "$TMP/$name.npy" "$FIX/input.png"
    expect_exit 0
    expect_stderr_empty
    expect_npy_close "$TMP/$name.npy" "$FIX/$name.npy" 1e-4
    end
done

# The same bytes for 1, 2 and 3 threads; tiles with the network's context (the default
# --tile-pad) give the untiled result (one pixel less of context differs by 4e-5 and 2e-4).
# Input: the 52x44 16-bit result of the anime model on the fixture.
run "$SR" -m models/realesr-animevideov3-x4.safetensors -o "$TMP/big.png" "$FIX/input.png"
for name in esrgan-slim-x2 realesr-animevideov3-x4; do
    begin "sr-run-esrgan-threads-tiles-$name"
    [ -s "$TMP/big.png" ] || fail_because "no 52x44 input"
    run "$SR" -j1 --tile 0 -m "models/$name.safetensors" -f npy -o "$TMP/j1.npy" "$TMP/big.png"
    expect_exit 0
    for j in 2 3; do
        run "$SR" -j$j --tile 0 -m "models/$name.safetensors" -f npy -o "$TMP/j$j.npy" "$TMP/big.png"
        cmp -s "$TMP/j1.npy" "$TMP/j$j.npy" || fail_because "-j$j output differs from -j1"
    done
    run "$SR" -j2 --tile 12 -m "models/$name.safetensors" -f npy -o "$TMP/tiled.npy" "$TMP/big.png"
    expect_exit 0
    expect_npy_close "$TMP/tiled.npy" "$TMP/j1.npy" 1e-6
    end
done

# The package's own 2x/4x results for its fixture: within 1 level everywhere (R, G, B, alpha).
if [ -f "$UPSCALERJS/fixture.png" ]; then
    for s in 2 4; do
        begin "sr-run-esrgan-upscalerjs-x$s"
        model=models/esrgan-slim-x$s.safetensors
        grep -qs "esrgan-slim-x$s" cmd/sr-run/models && model=esrgan-slim-x$s # the built-in
        run "$SR" -m "$model" -o "$TMP/ours.png" "$UPSCALERJS/fixture.png"
        expect_exit 0
        run "$SR" -m "$IDENTITY" -f npy -o "$TMP/ours.npy" "$TMP/ours.png"
        expect_exit 0
        run "$SR" -m "$IDENTITY" -f npy -o "$TMP/theirs.npy" "$UPSCALERJS/esrgan-slim-${s}x-result.png"
        expect_exit 0
        set -- $(npy_levels "$TMP/ours.npy" "$TMP/theirs.npy")
        if [ "$#" -ne 2 ]; then
            fail_because "comparison failed: $*"
        else
            awk -v m="$1" 'BEGIN { exit !(m <= 1.0001) }' ||
                fail_because "max difference $1 levels (mean $2) from the package's result"
            note "esrgan-slim-x$s vs upscalerjs result: max $1 levels, mean $2 levels"
        fi
        end
    done
else
    note "$UPSCALERJS is absent: the package's result check is skipped"
fi

# Model files with one thing wrong: a tensor's shape (the byte count kept, so only the shape
# check can notice) or a hyper-parameter; exit 3 with the tensor named, no output written.
# patch FILE OLD NEW: a copy of FILE in $TMP with the first OLD replaced by NEW (same length).
patch_model() {
    at=$(grep -obUa -m1 "$2" "$1" | head -1 | cut -d: -f1)
    [ -n "$at" ] || return 1
    cp "$1" "$TMP/bad.safetensors" && chmod u+w "$TMP/bad.safetensors" &&
        printf '%s' "$3" | dd of="$TMP/bad.safetensors" bs=1 seek="$at" conv=notrunc 2>/dev/null
}

bad_model_test() { # name file old new stderr-pattern
    begin "sr-run-esrgan-bad-model-$1"
    if patch_model "$2" "$3" "$4"; then
        run "$SR" -m "$TMP/bad.safetensors" -o "$TMP/bad-out.png" "$FIX/input.png"
        expect_exit 3
        expect_stderr_match "$5"
        [ ! -e "$TMP/bad-out.png" ] || fail_because "an output was written"
    else
        fail_because "'$3' not found in $2"
    fi
    end
}
bad_model_test rdn-shape models/esrgan-slim-x2.safetensors \
    '"F_0.weight":{"dtype":"F32","shape":\[64,64,3,3\]' \
    '"F_0.weight":{"dtype":"F32","shape":[64,64,9,1]' "F_0\.weight"
bad_model_test rdn-blocks models/esrgan-slim-x4.safetensors '"D":"2"' '"D":"3"' "F_3_1|LFF_3"
bad_model_test srvgg-shape models/realesr-animevideov3-x4.safetensors \
    '"body.2.weight":{"dtype":"F16","shape":\[64,64,3,3\]' \
    '"body.2.weight":{"dtype":"F16","shape":[64,64,9,1]' "body\.2\.weight"
bad_model_test srvgg-convs models/realesr-animevideov3-x4.safetensors '"num_conv":"16"' \
    '"num_conv":"15"' "body\.32|tensors"

finish
