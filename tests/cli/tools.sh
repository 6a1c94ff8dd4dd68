# tools/: the PyTorch checkpoint converter writes files libcore reads with the same names,
# values and metadata. Needs /usr/bin/python3 with torch; skipped (with a note) without it.
. tests/cli/lib.sh

PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
    note "tools: /usr/bin/python3 with torch and numpy not found; converter tests skipped"
    exit 0
fi

"$PY" - "$TMP/ckpt.pt" <<'PYEOF'
import sys, torch
torch.manual_seed(0)
sd = {"model.backbone.embeddings.word_embeddings.weight": torch.randn(12, 8),
      "model.backbone.layers.0.mixer.short_filter.bias": torch.randn(24).to(torch.bfloat16),
      "model.head.weight": torch.randn(8, 8).t()}  # a transposed (non-contiguous) tensor
torch.save({"state_dict": sd, "epoch": 3}, sys.argv[1])
PYEOF

begin convert-torch-lightning-checkpoint
run "$PY" tools/convert_torch.py "$TMP/ckpt.pt" "$TMP/m.safetensors" --meta arch=hyenadna \
    --meta d_model=8 --strip-prefix model. --dtype keep
expect_exit 0
run "$BIN/lr-model" --check hyenadna "$TMP/m.safetensors"
expect_exit 0
expect_stdout_match '^  d_model: 8$'
expect_stdout_match 'backbone\.embeddings\.word_embeddings\.weight +F32 +\[12, 8\]'
expect_stdout_match 'backbone\.layers\.0\.mixer\.short_filter\.bias +BF16 +\[24\]'
expect_stdout_match '^  head\.weight +F32 +\[8, 8\]'
end

begin convert-torch-values
run "$PY" - "$TMP/ckpt.pt" "$TMP/m.safetensors" <<'PYEOF'
import sys, torch
sys.path.insert(0, "tools")
from longrange import safetensors as st
sd = torch.load(sys.argv[1])["state_dict"]
tensors, meta = st.load(sys.argv[2], bf16_as_float=True)
for name, t in sd.items():
    got = tensors[name[len("model."):]]
    assert (torch.from_numpy(got.copy()) == t.float()).all(), name
PYEOF
expect_exit 0
end

begin convert-torch-bad-meta
run "$PY" tools/convert_torch.py "$TMP/ckpt.pt" "$TMP/x.safetensors" --meta novalue
expect_exit 1
expect_stderr_match 'KEY=VALUE'
expect_file_absent "$TMP/x.safetensors"
end

finish
