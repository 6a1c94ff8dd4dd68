# video-animate with the built-in RIFE v4.6 (the network's parity with the PyTorch reference is
# tests/unit/test_rife.c; the libav reader and writer have tests/unit/test_video.c): frame
# counts and timestamps of -x and --fps, Y4M pipes, containers with their audio copied, eval on
# real video, bad inputs and options, and no output file left behind by a failure.
. tests/cli/lib.sh

VA=$BIN/video-animate
VTEST=../shared/data/video/vtest.avi

# Frames in a 4:2:0 Y4M stream (its size after the header over "FRAME\n" plus the planes), and
# its header line.
y4m_frames() {
    head -1 "$1" | awk -v size="$(wc -c <"$1")" '{
        for (i = 2; i <= NF; i++) { if ($i ~ /^W/) w = substr($i, 2); if ($i ~ /^H/) h = substr($i, 2) }
        frame = 6 + w * h + 2 * int((w + 1) / 2) * int((h + 1) / 2)
        n = (size - length($0) - 1) / frame
        print (n == int(n)) ? n : "not a whole number of frames" }'
}
y4m_header() { head -1 "$1"; }

begin video-animate-help
run "$VA" --help
expect_exit 0
expect_stdout_match '^Usage: video-animate '
expect_stdout_match '--fps'
expect_stderr_empty
end

# A 6-frame 10 fps clip of 96x64 (moving test pattern), as Y4M, and with a sine as audio in
# Matroska when ffmpeg is there.
HAVE_FFMPEG=
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    HAVE_FFMPEG=1
    ffmpeg -v error -f lavfi -i testsrc2=size=96x64:rate=10 -frames:v 6 -pix_fmt yuv420p \
        -f yuv4mpegpipe "$TMP/clip.y4m" &&
    ffmpeg -v error -f lavfi -i testsrc2=size=96x64:rate=10 -f lavfi \
        -i sine=frequency=440:sample_rate=8000 -t 0.6 -c:v ffv1 -c:a pcm_s16le "$TMP/clip.mkv" ||
        HAVE_FFMPEG=
else
    note "video-animate: ffmpeg/ffprobe absent: container tests skipped"
fi
if [ -z "$HAVE_FFMPEG" ]; then
    # The same shape without ffmpeg: a grey ramp that moves one pixel per frame.
    awk 'BEGIN { printf "YUV4MPEG2 W96 H64 F10:1 Ip A1:1 C420jpeg\n"
        for (f = 0; f < 6; f++) { printf "FRAME\n"
            for (y = 0; y < 64; y++) for (x = 0; x < 96; x++) printf "%c", 16 + (x + f) * 2
            for (i = 0; i < 2 * 48 * 32; i++) printf "%c", 128 } }' >"$TMP/clip.y4m"
fi

begin video-animate-x2-y4m
run "$VA" -j2 "$TMP/clip.y4m"
expect_exit 0
expect_stderr_empty
[ "$(y4m_frames "$OUT")" = 11 ] || fail_because "$(y4m_frames "$OUT") frames, expected 2*5+1 = 11"
case $(y4m_header "$OUT") in "YUV4MPEG2 W96 H64 F20:1 "*) ;; *) fail_because "header $(y4m_header "$OUT")" ;; esac
cp "$OUT" "$TMP/x2-j2.y4m"
end

begin video-animate-threads-stdin
run_with_input "$TMP/clip.y4m" "$VA" -j1 -
expect_exit 0
expect_same_file "$OUT" "$TMP/x2-j2.y4m"
run_with_input "$TMP/clip.y4m" "$VA" -j3 interp -x 2 -o - -
expect_same_file "$OUT" "$TMP/x2-j2.y4m"
end

begin video-animate-x4-x1
run "$VA" -x 4 "$TMP/clip.y4m"
expect_exit 0
[ "$(y4m_frames "$OUT")" = 21 ] || fail_because "-x 4: $(y4m_frames "$OUT") frames, expected 21"
run "$VA" -x 1 -o "$TMP/x1.y4m" "$TMP/clip.y4m"
expect_exit 0
[ "$(y4m_frames "$TMP/x1.y4m")" = 6 ] || fail_because "-x 1: $(y4m_frames "$TMP/x1.y4m") frames"
end

# 10 fps over 0.5 s to 25 fps: ticks 0, 0.04 ... 0.48 (13 frames, the last input frame at 0.5 is
# not on the grid); to 20 fps every other output frame is an input frame, as -x 2.
begin video-animate-fps
run "$VA" --fps 25 "$TMP/clip.y4m"
expect_exit 0
[ "$(y4m_frames "$OUT")" = 13 ] || fail_because "--fps 25: $(y4m_frames "$OUT") frames, expected 13"
case $(y4m_header "$OUT") in "YUV4MPEG2 W96 H64 F25:1 "*) ;; *) fail_because "header $(y4m_header "$OUT")" ;; esac
run "$VA" --fps 20/1 "$TMP/clip.y4m"
expect_same_file "$OUT" "$TMP/x2-j2.y4m"
end

if [ -n "$HAVE_FFMPEG" ]; then
    begin video-animate-mkv-audio
    run "$VA" -o "$TMP/out.mkv" "$TMP/clip.mkv"
    expect_exit 0
    expect_stderr_empty
    streams=$(ffprobe -v error -show_entries stream=codec_type,codec_name -of csv=p=0 "$TMP/out.mkv" | tr '\n' ' ')
    [ "$streams" = "h264,video pcm_s16le,audio " ] || fail_because "streams: $streams"
    n=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$TMP/out.mkv")
    [ "$n" = 11 ] || fail_because "$n video frames, expected 11"
    rate=$(ffprobe -v error -select_streams v -show_entries stream=avg_frame_rate -of csv=p=0 "$TMP/out.mkv")
    [ "$rate" = 20/1 ] || fail_because "average rate $rate, expected 20/1"
    end

    # MP4 through libx264: every frame decodes (no last frame lost to an edit list).
    for ext in mp4 avi; do
        begin video-animate-$ext
        run "$VA" -o "$TMP/out.$ext" "$TMP/clip.y4m"
        expect_exit 0
        n=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$TMP/out.$ext")
        [ "$n" = 11 ] || fail_because "$n frames in out.$ext, expected 11"
        end
    done

    begin video-animate-ffv1
    run "$VA" -x 1 -c ffv1 -o "$TMP/ffv1.mkv" "$TMP/clip.mkv"
    expect_exit 0
    codec=$(ffprobe -v error -select_streams v -show_entries stream=codec_name -of csv=p=0 "$TMP/ffv1.mkv")
    [ "$codec" = ffv1 ] || fail_because "codec $codec"
    run "$VA" -x 1 -c nosuchcodec -o "$TMP/bad.mkv" "$TMP/clip.mkv"
    expect_exit 1
    expect_stderr_lines 1
    expect_file_absent "$TMP/bad.mkv"
    end

    # A Matroska stream on stdin (no seeking).
    begin video-animate-mkv-stdin
    run_with_input "$TMP/clip.mkv" "$VA" -x 2 -
    expect_exit 0
    [ "$(y4m_frames "$OUT")" = 11 ] || fail_because "$(y4m_frames "$OUT") frames from a piped mkv"
    end
fi

# eval on the first frames of a real clip: RIFE beats averaging, which beats repetition.
if [ -f "$VTEST" ]; then
    begin video-animate-eval
    run "$VA" --eval --frames 5 "$VTEST"
    expect_exit 0
    expect_stdout_match '^frame	psnr_model	psnr_average	psnr_repeat$'
    [ "$(grep -c '^[0-9]' "$OUT")" = 3 ] || fail_because "$(grep -c '^[0-9]' "$OUT") rows, expected 3"
    awk -F'\t' '$1 == "mean" { exit !($2 > $3 + 1 && $3 > $4) }' "$OUT" ||
        fail_because "means not ordered model > average > repeat: $(tail -1 "$OUT")"
    end
else
    note "video-animate: $VTEST is absent: eval on real video skipped"
fi

# matte with the user-supplied RVM model, converted from ../shared/data when it and numpy are
# there (the network's parity with TF.js is tests/unit/test_rvm.c): every output type, alpha as
# grey, the composite between the frame and the background colour.
RVM=../shared/data/video/rvm-mobilenetv3-tfjs
if [ -f "$RVM/model.json" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null &&
    /usr/bin/python3 tools/convert_rvm_tfjs.py "$RVM/model.json" "$TMP/rvm.safetensors" >/dev/null; then
    begin video-animate-matte
    for type in composite alpha foreground; do
        run "$VA" matte -m "$TMP/rvm.safetensors" --output-type $type --ratio 0.5 -o "$TMP/$type.y4m" "$TMP/clip.y4m"
        expect_exit 0
        expect_stderr_empty
        [ "$(y4m_frames "$TMP/$type.y4m")" = 6 ] || fail_because "$type: $(y4m_frames "$TMP/$type.y4m") frames"
    done
    # Alpha as grey: the chroma planes of every frame are 128 (4:2:0 after the header).
    od -An -v -tu1 -j"$(head -1 "$TMP/alpha.y4m" | wc -c)" "$TMP/alpha.y4m" | awk '
        { for (i = 1; i <= NF; i++) { pos = n++ % (6 + 96 * 64 * 3 / 2); if (pos >= 6 + 96 * 64 && ($i < 127 || $i > 129)) bad++ } }
        END { exit bad > 0 }' || fail_because "alpha frames are not grey"
    run "$VA" matte -m "$TMP/rvm.safetensors" --background '#ff0000' --frames 2 "$TMP/clip.y4m"
    expect_exit 0
    [ "$(y4m_frames "$OUT")" = 2 ] || fail_because "--frames 2: $(y4m_frames "$OUT") frames"
    end
else
    note "video-animate: $RVM or python3-numpy is absent: matte on the real model skipped"
fi

begin video-animate-matte-usage
for args in "matte" "matte -m rife-v4.6 --ratio 0" "matte -m rife-v4.6 --ratio 2" \
    "matte -m rife-v4.6 --output-type mask" "matte -m rife-v4.6 --background red" \
    "matte -m rife-v4.6 --background 1,2,300" "matte -m rife-v4.6 -x 2" "--ratio 0.5"; do
    # shellcheck disable=SC2086
    run "$VA" $args "$TMP/clip.y4m"
    [ "$status" -eq 2 ] || fail_because "'$args': exit $status, expected 2"
done
# The RIFE model is not a matting model.
run "$VA" matte -m rife-v4.6 "$TMP/clip.y4m"
expect_exit 3
expect_stderr_lines 1
end

# stream on a random-weight denoiser (tests/fixtures/stream, 24x16; the network's parity, the
# ring's latency and chunking invariance are tests/unit/test_stream.c): one output frame per
# input frame at the model's size, the input's timing, the same bytes for any -j and from a
# pipe, the seed keys the noise, FreeNoise windows run.
STREAM_FIX=tests/fixtures/stream/model.safetensors
begin video-animate-stream
run "$VA" stream -j1 -m "$STREAM_FIX" "$TMP/clip.y4m"
expect_exit 0
expect_stderr_empty
[ "$(y4m_frames "$OUT")" = 6 ] || fail_because "$(y4m_frames "$OUT") frames, expected 6"
case $(y4m_header "$OUT") in "YUV4MPEG2 W24 H16 F10:1 "*) ;; *) fail_because "header $(y4m_header "$OUT")" ;; esac
cp "$OUT" "$TMP/stream-j1.y4m"
run_with_input "$TMP/clip.y4m" "$VA" stream -j3 -m "$STREAM_FIX" -
expect_same_file "$OUT" "$TMP/stream-j1.y4m"
run "$VA" stream --seed 7 -m "$STREAM_FIX" "$TMP/clip.y4m"
cmp -s "$OUT" "$TMP/stream-j1.y4m" && fail_because "--seed 7 gives the output of seed 0"
run "$VA" stream --window 4 --stride 2 -m "$STREAM_FIX" -o "$TMP/window.y4m" "$TMP/clip.y4m"
expect_exit 0
[ "$(y4m_frames "$TMP/window.y4m")" = 6 ] || fail_because "--window 4: $(y4m_frames "$TMP/window.y4m") frames"
end

begin video-animate-stream-usage
for args in "stream -x 2" "stream --eval" "--window 4" "stream --window 4 --stride 5" \
    "stream --window 33" "stream --ratio 0.5"; do
    # shellcheck disable=SC2086
    run "$VA" $args -m "$STREAM_FIX" "$TMP/clip.y4m"
    [ "$status" -eq 2 ] || fail_because "'$args': exit $status, expected 2"
done
run "$VA" stream -m rife-v4.6 "$TMP/clip.y4m"
expect_exit 3
expect_stderr_lines 1
end

# Bad inputs: one line, exit 1, no output file.
printf 'YUV4MPEG2 W96 H64 F10:1\n' >"$TMP/noframes.y4m"
head -c 20000 "$TMP/clip.y4m" >"$TMP/truncated.y4m"
printf 'not a video at all\n' >"$TMP/text.txt"
: >"$TMP/empty"
for bad in noframes.y4m truncated.y4m text.txt empty missing; do
    begin video-animate-bad-$bad
    run "$VA" -o "$TMP/bad.mkv" "$TMP/$bad"
    expect_exit 1
    expect_stderr_lines 1
    expect_file_absent "$TMP/bad.mkv"
    end
done

begin video-animate-bad-stdin
run_with_input "$TMP/text.txt" "$VA" -
expect_exit 1
expect_stderr_lines 1
expect_stderr_match 'stdin'
end

begin video-animate-usage
for args in "-x 0" "-x 2x" "--fps 0" "--fps 1/0" "--fps abc" "-x 2 --fps 30" "--eval -x 4" \
    "matte" "a b" "--frames 0"; do
    # shellcheck disable=SC2086
    run "$VA" $args "$TMP/clip.y4m"
    [ "$status" -eq 2 ] || fail_because "'$args': exit $status, expected 2"
    [ "$(wc -l <"$ERR")" -le 2 ] || fail_because "'$args': long stderr: $(head -c 200 "$ERR")"
done
end

begin video-animate-bad-model
printf 'not a model' >"$TMP/bad.safetensors"
run "$VA" -m "$TMP/bad.safetensors" "$TMP/clip.y4m"
expect_exit 3
expect_stderr_lines 1
end

finish
