#!/usr/bin/python3
"""The PyTorch peer of attn-bench: the same attention shapes through PyTorch on this CPU.

    /usr/bin/python3 tools/bench_attention_torch.py [-L 1k,4k] [--pattern self,causal]
        [-d 64] [-H 8] [--kv-heads N] [-B 1] [--lq N] [--dtype fp32|bf16] [-j 2]
        [--reps 3] [--min-time 0.5] [--chunk 1024] [--max-scores-gib 4]

Two implementations, as a PyTorch user would write them:
  naive    softmax(q k^T * scale + mask) v, the whole score matrix at once
  chunked  the same for blocks of --chunk query rows, so only [B, H, chunk, Lk] scores exist
The causal mask is aligned to the last key as in attn-bench (query i sees keys j <= i + Lk - Lq).
Grouped key/value heads are expanded to the query heads before timing.

Prints TSV on stdout, one row per case: impl, pattern, dtype, batch, heads, kv_heads, lq, lk,
head_dim, threads, runs, best_ms, median_ms, gflops, extra_mib. FLOPs are counted as attn-bench
counts them, 4 * d per visible (query, key) pair, whatever PyTorch computes; timing and memory
follow attn-bench's rules (a first run shorter than --min-time is a warm-up; extra memory is the
peak RSS growth during the runs, the peak reset through /proc/self/clear_refs). A naive case
whose scores would exceed --max-scores-gib is skipped with a note on stderr.
"""

import argparse
import math
import resource
import sys
import time

try:
    import torch
except ImportError:
    sys.exit("bench_attention_torch.py: PyTorch is not installed")

PATTERNS = ("self", "causal", "cross", "causal-cross")


def count(text):
    """A length with an optional k/M suffix (binary), as attn-bench reads it."""
    scale = {"k": 1 << 10, "K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
    value = int(text[:-1] if scale > 1 else text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1: " + text)
    return value * scale


def visible_pairs(causal, lq, lk):
    if not causal:
        return lq * lk
    # Row i sees keys 0 .. i + lk - lq: between none and all of them.
    seen = torch.clamp(torch.arange(lq, dtype=torch.int64) + (lk - lq + 1), 0, lk)
    return int(seen.sum())


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def causal_mask(lq, lk, rows=None):
    """True where a key is hidden, for query rows `rows` (a range) of an lq x lk problem."""
    rows = rows if rows is not None else range(lq)
    i = torch.arange(rows.start, rows.stop).unsqueeze(1)
    j = torch.arange(lk).unsqueeze(0)
    return j > i + (lk - lq)


def naive(q, k, v, causal, scale):
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if causal:
        scores = scores.masked_fill(causal_mask(q.shape[2], k.shape[2]), float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def chunked(q, k, v, causal, scale, chunk):
    lq, lk = q.shape[2], k.shape[2]
    out = torch.empty(q.shape[:3] + (v.shape[3],), dtype=q.dtype)
    kt = k.transpose(-1, -2)
    for start in range(0, lq, chunk):
        rows = range(start, min(lq, start + chunk))
        scores = torch.matmul(q[:, :, rows.start:rows.stop], kt) * scale
        if causal:
            scores = scores.masked_fill(causal_mask(lq, lk, rows), float("-inf"))
        out[:, :, rows.start:rows.stop] = torch.matmul(torch.softmax(scores, dim=-1), v)
    return out


def time_runs(fn, reps, min_time):
    times, timed, attempt = [], 0.0, 0
    while len(times) < reps or (timed < min_time and len(times) < 1000):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if attempt > 0 or elapsed >= min_time:
            times.append(elapsed)
            timed += elapsed
        attempt += 1
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return n, times[0], median


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-L", "--length", default="1k,4k")
    ap.add_argument("--pattern", default="self,causal")
    ap.add_argument("--lq", type=count, default=0)
    ap.add_argument("-d", "--head-dim", type=count, default=64)
    ap.add_argument("-H", "--heads", type=count, default=8)
    ap.add_argument("--kv-heads", type=count, default=0)
    ap.add_argument("-B", "--batch", type=count, default=1)
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("-j", "--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--chunk", type=count, default=1024)
    ap.add_argument("--max-scores-gib", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    patterns = PATTERNS if args.pattern == "all" else args.pattern.split(",")
    for p in patterns:
        if p not in PATTERNS:
            ap.error("unknown pattern " + p)
    lengths = [count(x) for x in args.length.split(",")]
    kv_heads = args.kv_heads or args.heads
    if args.heads % kv_heads:
        ap.error("--kv-heads must divide --heads")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    scale = 1 / math.sqrt(args.head_dim)
    torch.manual_seed(args.seed)

    columns = ("impl", "pattern", "dtype", "batch", "heads", "kv_heads", "lq", "lk", "head_dim",
               "threads", "runs", "best_ms", "median_ms", "gflops", "extra_mib")
    print("\t".join(columns), flush=True)
    for length in lengths:
        for pattern in patterns:
            causal = pattern.startswith("causal")
            cross = pattern.endswith("cross")
            lq = (args.lq or max(1, length // 2)) if cross else length
            lk = length
            B, H, D = args.batch, args.heads, args.head_dim
            q = torch.rand(B, H, lq, D).mul_(2).sub_(1).to(dtype)
            k = torch.rand(B, kv_heads, lk, D).mul_(2).sub_(1).to(dtype)
            v = torch.rand(B, kv_heads, lk, D).mul_(2).sub_(1).to(dtype)
            k = k.repeat_interleave(H // kv_heads, dim=1)
            v = v.repeat_interleave(H // kv_heads, dim=1)
            flops = 4.0 * D * visible_pairs(causal, lq, lk) * B * H
            impls = [("chunked", lambda: chunked(q, k, v, causal, scale, args.chunk))]
            score_bytes = B * H * lq * lk * q.element_size()
            if score_bytes <= args.max_scores_gib * (1 << 30):
                impls.insert(0, ("naive", lambda: naive(q, k, v, causal, scale)))
            else:
                print("bench_attention_torch.py: naive %s L=%d skipped: its scores take %.1f GiB "
                      "(--max-scores-gib %g)" % (pattern, length, score_bytes / (1 << 30),
                                                 args.max_scores_gib), file=sys.stderr)
            for name, fn in impls:
                reset_peak_rss()
                before = peak_rss_bytes()
                runs, best, median = time_runs(fn, args.reps, args.min_time)
                extra = max(0, peak_rss_bytes() - before) / (1 << 20)
                row = (name, pattern, args.dtype, B, H, kv_heads, lq, lk, D, threads, runs,
                       "%.6g" % (best * 1e3), "%.6g" % (median * 1e3),
                       "%.6g" % (flops / best * 1e-9), "%.6g" % extra)
                print("\t".join(str(x) for x in row), flush=True)


if __name__ == "__main__":
    main()
