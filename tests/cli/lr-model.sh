# lr-model: the command-line contract (help, version, usage errors, exit statuses, one-line
# messages, atomic -o, a closed pipe) and its listings of the model fixtures.
. tests/cli/lib.sh

LR_MODEL=$BIN/lr-model
GOOD=tests/fixtures/models/good
BAD=tests/fixtures/models/bad

begin lr-model-help
run "$LR_MODEL" --help
expect_exit 0
expect_stdout_match '^Usage: lr-model \[OPTIONS\] MODEL\.\.\.$'
expect_stdout_match '^      --check ARCH '
expect_stderr_empty
end

begin lr-model-version
run "$LR_MODEL" --version
expect_exit 0
expect_stdout_match '^lr-model \(longrange\) [0-9]+\.[0-9]+\.[0-9]+$'
expect_stderr_empty
end

# --help into a full disk: a write error, not a silent success.
if [ -w /dev/full ]; then
    begin lr-model-help-write-error
    "$LR_MODEL" --help >/dev/full 2>"$ERR"
    status=$?
    expect_exit 1
    expect_stderr_match '^lr-model: write error: '
    end
fi

begin lr-model-unknown-option
run "$LR_MODEL" --bogus "$GOOD/with_metadata.safetensors"
expect_exit 2
expect_stdout_empty
expect_stderr_match "^lr-model: unrecognized option '--bogus'$"
expect_stderr_match "^Try 'lr-model --help'\.$"
end

begin lr-model-bad-format
run "$LR_MODEL" -f yaml "$GOOD/with_metadata.safetensors"
expect_exit 2
expect_stderr_match "^lr-model: option -f: unknown format 'yaml' \(choose from text, json\)$"
end

begin lr-model-no-operand
run "$LR_MODEL"
expect_exit 2
expect_stderr_match '^lr-model: no model given$'
end

begin lr-model-missing-file
run "$LR_MODEL" "$TMP/absent.safetensors"
expect_exit 3
expect_stdout_empty
expect_stderr_lines 1
expect_stderr_match "^lr-model: $TMP/absent\.safetensors: No such file or directory$"
end

# Every malformed file or directory: status 3 and one line that names it. wrong_arch is well
# formed and fails only the architecture check.
for bad in "$BAD"/*; do
    name=$(basename "$bad")
    begin "lr-model-rejects-$name"
    case $name in
    wrong_arch*) run "$LR_MODEL" --check hyenadna "$bad" ;;
    *) run "$LR_MODEL" "$bad" ;;
    esac
    expect_exit 3
    expect_stdout_empty
    expect_stderr_lines 1
    expect_stderr_match "^lr-model: $bad[/:]"
    end
done

for good in "$GOOD"/*; do
    begin "lr-model-lists-$(basename "$good")"
    run "$LR_MODEL" "$good"
    expect_exit 0
    expect_stderr_empty
    expect_stdout_match "^model: $good\$"
    expect_stdout_match '^tensors: [1-9][0-9]*, [0-9]+ bytes$'
    expect_stdout_match '^  name +dtype +shape +bytes$'
    end
done

begin lr-model-tensor-table
run "$LR_MODEL" "$GOOD/with_metadata.safetensors"
expect_stdout_match '^  arch: test-model$'
expect_stdout_match '^  embed\.weight +F32 +\[3, 4\] +48$'
expect_stdout_match '^  scalar +F32 +\[\] +4$'
end

# A bad argument among good ones: the others are still listed, the status is the worst.
begin lr-model-keeps-going
run "$LR_MODEL" "$BAD/empty.safetensors" "$GOOD/with_metadata.safetensors" \
    "$BAD/negative_dim.safetensors"
expect_exit 3
expect_stdout_match "^model: $GOOD/with_metadata\.safetensors\$"
expect_stderr_lines 2
end

begin lr-model-check-arch
run "$LR_MODEL" --check test-model "$GOOD/with_metadata.safetensors"
expect_exit 0
run "$LR_MODEL" --check hyenadna "$GOOD/with_metadata.safetensors"
expect_exit 3
expect_stdout_empty
expect_stderr_match \
    "^lr-model: $GOOD/with_metadata\.safetensors: wrong arch 'test-model', expected 'hyenadna'\$"
end

begin lr-model-output-file
run "$LR_MODEL" "$GOOD/with_metadata.safetensors" "$GOOD/hf_dir"
cp "$OUT" "$TMP/expected.txt"
mkdir "$TMP/out"
run "$LR_MODEL" -o "$TMP/out/list.txt" "$GOOD/with_metadata.safetensors" "$GOOD/hf_dir"
expect_exit 0
expect_stdout_empty
expect_same_file "$TMP/expected.txt" "$TMP/out/list.txt"
end

# A failed run leaves the previous target untouched and no temporary file beside it.
begin lr-model-output-atomic
printf 'previous\n' >"$TMP/out/list.txt"
run "$LR_MODEL" -o "$TMP/out/list.txt" "$GOOD/with_metadata.safetensors" "$BAD/empty.safetensors"
expect_exit 3
[ "$(cat "$TMP/out/list.txt")" = previous ] || fail_because "the target was changed"
[ "$(ls "$TMP/out")" = list.txt ] || fail_because "left behind: $(ls "$TMP/out")"
run "$LR_MODEL" -o "$TMP/out/new.txt" "$BAD/empty.safetensors"
expect_exit 3
expect_file_absent "$TMP/out/new.txt"
[ "$(ls "$TMP/out")" = list.txt ] || fail_because "left behind: $(ls "$TMP/out")"
end

begin lr-model-output-directory-missing
run "$LR_MODEL" -o "$TMP/no/such/dir/list.txt" "$GOOD/with_metadata.safetensors"
expect_exit 1
expect_stderr_lines 1
expect_stderr_match "^lr-model: $TMP/no/such/dir/list\.txt: cannot create: "
end

# More output than a pipe holds, cut short by head: no message, killed by SIGPIPE or done.
begin lr-model-closed-pipe
set --
i=0
while [ $i -lt 400 ]; do
    set -- "$@" "$GOOD/with_metadata.safetensors"
    i=$((i + 1))
done
{ "$LR_MODEL" "$@" 2>"$ERR"; echo $? >"$TMP/status"; } | head -1 >"$OUT"
status=$(cat "$TMP/status")
[ "$status" -eq 0 ] || [ "$status" -eq 141 ] || fail_because "exit status $status"
expect_stderr_empty
expect_stdout_match "^model: $GOOD/with_metadata\.safetensors\$"
end

begin lr-model-json
run "$LR_MODEL" -f json "$GOOD"/*
expect_exit 0
expect_stderr_empty
lines=$(wc -l <"$OUT")
models=$(ls -d "$GOOD"/* | wc -l)
[ "$lines" -eq "$models" ] || fail_because "$lines lines for $models models"
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    m = json.loads(line)
    assert set(m) == {"model", "metadata", "tensors", "total_bytes"}, m.keys()
    assert all(isinstance(v, str) for v in m["metadata"].values())
    assert m["total_bytes"] == sum(t["bytes"] for t in m["tensors"])
    for t in m["tensors"]:
        assert set(t) == {"name", "dtype", "shape", "bytes"}, t
' "$OUT" 2>"$TMP/python.err" || fail_because "not the JSON expected: $(tail -1 "$TMP/python.err")"
    grep -q '"note": "line\\nbreak, \\"quoted\\", café"' "$OUT" ||
        fail_because "metadata strings not escaped as expected"
else
    note "lr-model-json: /usr/bin/python3 is missing, so the JSON was not parsed"
fi
end

# Every long option in --help is documented in the man page.
begin lr-model-man-page-options
run "$LR_MODEL" --help
for option in $(grep -Eo -- '--[a-z][a-z-]*' "$OUT" | sort -u); do
    grep -q -- "Fl \\\\-${option#--}" man/man1/lr-model.1 ||
        fail_because "$option is not in lr-model.1"
done
end

finish
