#!/bin/sh
# Writes an assembly file that embeds model files into a program.
# Usage: embed.sh [LISTFILE]  — LISTFILE names one model file per line (paths relative to the
# repository root; the first is the default). The table it defines:
#   struct { const char *name; const unsigned char *data; size_t size; } lr_embedded_models[];
# ends with a zero entry; `name` is the file's base name without .safetensors.
set -eu
list=${1:-}
i=0
printf '\t.section .rodata\n'
if [ -n "$list" ]; then
  while IFS= read -r f; do
    case "$f" in ''|'#'*) continue;; esac
    [ -f "$f" ] || { echo "embed.sh: $list: no such model file: $f" >&2; exit 1; }
    printf '\t.balign 64\nlr_model_%d:\n\t.incbin "%s"\nlr_model_%d_end:\n' "$i" "$f" "$i"
    printf 'lr_model_name_%d:\n\t.asciz "%s"\n' "$i" "$(basename "$f" .safetensors)"
    i=$((i + 1))
  done < "$list"
fi
printf '\t.section .data.rel.ro,"aw"\n\t.balign 8\n\t.globl lr_embedded_models\nlr_embedded_models:\n'
j=0
while [ $j -lt $i ]; do
  printf '\t.quad lr_model_name_%d, lr_model_%d, lr_model_%d_end - lr_model_%d\n' $j $j $j $j
  j=$((j + 1))
done
printf '\t.quad 0, 0, 0\n\t.section .note.GNU-stack,"",@progbits\n'
