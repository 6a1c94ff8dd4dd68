# sr-run with CATANet on random-weight fixtures (tools/catanet_torch.py fixtures, whose PyTorch
# model is checked against the official architecture): parity within 1e-4 at x2 (two blocks,
# uneven groups and patches; a 5x6 input that the network extends to 9x8) and x4 (two
# upsampling stages), the same bytes for 1, 2 and 3 threads, and mis-shaped or inconsistent
# model files refused with exit 3 before anything is written.
. tests/cli/lib.sh

SR=$BIN/sr-run
FIX=tests/fixtures/catanet

parity_test() { # input model
    begin "sr-run-catanet-$2-$1"
    for j in 1 2 3; do
        run "$SR" -j"$j" -m "$FIX/$2.safetensors" -f npy -o "$TMP/$1-j$j.npy" "$FIX/$1.png"
        expect_exit 0
        expect_stderr_empty
    done
    expect_npy_close "$TMP/$1-j1.npy" "$FIX/$1.$2.npy" 1e-4
    cmp -s "$TMP/$1-j1.npy" "$TMP/$1-j2.npy" || fail_because "-j1 and -j2 differ"
    cmp -s "$TMP/$1-j1.npy" "$TMP/$1-j3.npy" || fail_because "-j1 and -j3 differ"
    end
}
parity_test rgb11x13 x2
parity_test rgb5x6 x2
parity_test rgb9x10 x4

# PNG output: the same network, clamped and quantised to the input's 16 bits.
begin sr-run-catanet-png
run "$SR" -m "$FIX/x2.safetensors" -o "$TMP/out.png" "$FIX/rgb11x13.png"
expect_exit 0
[ "$(od -An -tu1 -j16 -N8 "$TMP/out.png" | tr -s ' ')" = " 0 0 0 26 0 0 0 22" ] ||
    fail_because "not a 26x22 PNG"
[ "$(od -An -tu1 -j24 -N2 "$TMP/out.png" | tr -s ' ')" = " 16 2" ] || fail_because "not 16-bit RGB"
end

# patch FILE OLD NEW: a copy of FILE in $TMP with the first OLD replaced by NEW (same length).
patch_model() {
    at=$(grep -obUa -m1 "$2" "$1" | head -1 | cut -d: -f1)
    [ -n "$at" ] || return 1
    cp "$1" "$TMP/bad.safetensors" && chmod u+w "$TMP/bad.safetensors" &&
        printf '%s' "$3" | dd of="$TMP/bad.safetensors" bs=1 seek="$at" conv=notrunc 2>/dev/null
}

bad_model_test() { # name old new stderr-pattern
    begin "sr-run-catanet-bad-model-$1"
    if patch_model "$FIX/x2.safetensors" "$2" "$3"; then
        run "$SR" -m "$TMP/bad.safetensors" -o "$TMP/bad-out.png" "$FIX/rgb11x13.png"
        expect_exit 3
        expect_stderr_match "$4"
        expect_file_absent "$TMP/bad-out.png"
    else
        fail_because "'$2' not found in the model"
    fi
    end
}
# A tensor transposed (same bytes, wrong shape).
bad_model_test shape '"blocks.1.0.iasa_attn.to_q.weight":{"dtype":"F32","shape":\[12,16\]' \
    '"blocks.1.0.iasa_attn.to_q.weight":{"dtype":"F32","shape":[16,12]' \
    'blocks\.1\.0\.iasa_attn\.to_q\.weight'
# Metadata that promises more than the file holds, or does not fit together.
bad_model_test centres '"num_tokens":"4,6"' '"num_tokens":"4,7"' 'blocks\.1\.0\.means'
bad_model_test heads '"heads":"2"' '"heads":"5"' 'heads'
bad_model_test blocks '"block_num":"2"' '"block_num":"3"' 'block_num|patch_size'

finish
