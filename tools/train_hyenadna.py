#!/usr/bin/env python3
"""Trains dna-embed's default model: a small HyenaDNA (tools/hyenadna_torch.py) on real genomes,
next-nucleotide cross-entropy, PyTorch on CPU, float32, a fixed seed and a wall-clock budget.

Data (../shared/data/dna), split by position so the held-out part is contiguous:
  * NC_000962.3_Mtb_H37Rv.fna.gz (M. tuberculosis, 4.41 Mbp): train on the first 90%, hold out
    the last 10%;
  * lambda_virus.fa (48.5 kbp): the same split;
  * dm3_upstream2000.first2000.fa.gz (2000 Drosophila upstream regions of 2 kbp): train on the
    first 1800 records, hold out the last 200.
  genes.fasta is not used. Sequences are case-folded (soft-masked lowercase counts as the
  base, as dna-embed does by default) and tokenized with the official CharacterTokenizer ids.

Training: random windows of the training part (Mtb and lambda: lengths 1024, 2048, 4096 or
8192, as many per step as make --tokens-per-step; dm3: whole 2 kbp records), the data set of
each step drawn in proportion to its training bases; AdamW (weight decay 0.1 on matrices and
embeddings, 0 on biases, norms and the implicit filters), linear warm-up then cosine decay
over the wall-clock budget, gradient clipping 1.0, the official-style initialisation (normal
0.02, residual output projections scaled by 1/sqrt(2 n_layer)). The model saved is the last
one: the held-out set is never used to choose anything (the periodic held-out evaluations on
a fixed subset are only logged).

Held-out bits per base are computed exactly as `dna-embed --score` computes them: per record,
windows of max_seq_len tokens starting every max_seq_len - 1 tokens, each token scored by the
first window holding it with context (token 0 of a record is not scored), and the total is
-sum(log-likelihood) / ln 2 / sum(length - 1) over the records of the held-out FASTA that the
script writes (--heldout-fasta). The baseline: order-k Markov models, k = 1..--markov-max-k,
fitted on the same training sequences with add-one smoothing, scoring the same tokens (a
token with fewer than k bases before it in its record uses the order-t model, t its position);
the best k is the one with the lowest held-out bits per base (the only choice made on it).

    /usr/bin/python3 tools/train_hyenadna.py --budget-min 25 \
        --out models/hyenadna-tiny-dna.safetensors --log tools/logs/hyenadna-default.log
    printf 'models/hyenadna-tiny-dna.safetensors\n' > cmd/dna-embed/models && make -j2 bin/dna-embed
    bin/dna-embed --score /tmp/hyenadna-heldout.fa \
        | awk -F'\t' 'NR>1{ll+=$3; n+=$2-1} END{print -ll/log(2)/n}'   # = the script's FINAL model
"""

import argparse
import gzip
import json
import math
import os
import random
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hyenadna_torch as H  # noqa: E402
from longrange import safetensors as st  # noqa: E402

LN2 = math.log(2.0)


def read_fasta(path):
    opener = gzip.open if path.endswith(".gz") else open
    recs, name, parts = [], None, []
    with opener(path, "rt") as f:
        for line in f:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    recs.append((name, "".join(parts)))
                name, parts = line[1:].split()[0], []
            elif line:
                parts.append(line)
    if name is not None:
        recs.append((name, "".join(parts)))
    return recs


LUT = np.full(256, H.TOKENS["[UNK]"], dtype=np.int64)
for _ch in "ACGTN":
    LUT[ord(_ch)] = H.TOKENS[_ch]
    LUT[ord(_ch.lower())] = H.TOKENS[_ch]  # dna-embed's default case folding


def tokens(seq):
    return LUT[np.frombuffer(seq.encode("latin-1"), dtype=np.uint8)]


def load_data(data_dir):
    mtb = read_fasta(os.path.join(data_dir, "NC_000962.3_Mtb_H37Rv.fna.gz"))
    lam = read_fasta(os.path.join(data_dir, "lambda_virus.fa"))
    dm3 = read_fasta(os.path.join(data_dir, "dm3_upstream2000.first2000.fa.gz"))
    assert len(mtb) == 1 and len(lam) == 1 and len(dm3) == 2000
    train, held = {}, []
    for tag, (name, seq) in (("mtb", mtb[0]), ("lambda", lam[0])):
        cut = int(len(seq) * 0.9)
        train[tag] = [tokens(seq[:cut])]
        held.append(("%s_heldout_%d-%d" % (name, cut, len(seq)), seq[cut:]))
    train["dm3"] = [tokens(s) for _, s in dm3[:1800]]
    held += [(n, s) for n, s in dm3[1800:]]
    return train, held


# ---- Markov baseline --------------------------------------------------------------------------

def base4(ids):
    s = ids - H.TOKENS["A"]
    if s.min() < 0 or s.max() > 3:
        raise ValueError("the Markov baseline expects A C G T only")
    return s


def markov_counts(seqs, k):
    """counts [4^k, 4] of (context of k bases, next base) over the sequences."""
    codes = []
    for s in seqs:
        if len(s) <= k:
            continue
        code = np.zeros(len(s) - k, dtype=np.int64)
        for i in range(k + 1):
            code = code * 4 + s[i:len(s) - k + i]
        codes.append(code)
    tab = np.bincount(np.concatenate(codes), minlength=4 ** (k + 1))
    return tab.reshape(4 ** k, 4)


def markov_logp(counts, alpha=1.0):
    return np.log((counts + alpha) / (counts.sum(1, keepdims=True) + 4 * alpha))


def markov_eval(logps, k, seqs):
    """Sum of log p over tokens 1..L-1 of each sequence; token t uses order min(k, t)."""
    total, n = 0.0, 0
    for s in seqs:
        L = len(s)
        for t in range(1, min(k, L)):  # short contexts at a record's start
            ctx = 0
            for b in s[:t]:
                ctx = ctx * 4 + int(b)
            total += logps[t][ctx, s[t]]
        if L > k:
            code = np.zeros(L - k, dtype=np.int64)
            for i in range(k):
                code = code * 4 + s[i:L - k + i]
            total += logps[k][code, s[k:]].sum()
        n += L - 1
    return total, n


# ---- model ------------------------------------------------------------------------------------

def init_weights(model, n_layer):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "filter_fn" in name:
                continue  # the implicit filter keeps its PyTorch default init and bias ~ N(0, 1)
            if "norm" in name or "ln_f" in name:
                continue
            if name.endswith("word_embeddings.weight"):
                p.normal_(0, 0.02)
            elif name.endswith("short_filter.weight") or name.endswith("short_filter.bias"):
                continue
            elif name.endswith(".weight"):
                p.normal_(0, 0.02)
                if name.endswith("out_proj.weight") or name.endswith("fc2.weight"):
                    p.mul_(1 / math.sqrt(2 * n_layer))
            elif name.endswith(".bias"):
                p.zero_()


def score_records(model, held_ids, W, batch_tokens=32768):
    """dna-embed --score: per record, windows start every W - 1 tokens; each window's tokens
    after its first are scored (window 0: all but token 0). Returns (sum ll, count) per record."""
    S = W - 1
    jobs = []  # (record index, start, n)
    for r, ids in enumerate(held_ids):
        L = len(ids)
        k = 0
        while True:
            start = k * S
            n = min(W, L - start)
            jobs.append((r, start, n))
            if start + n >= L:
                break
            k += 1
    ll = np.zeros(len(held_ids))
    jobs.sort(key=lambda j: j[2])
    i = 0
    with torch.no_grad():
        while i < len(jobs):
            n = jobs[i][2]
            group = [jobs[i]]
            i += 1
            while i < len(jobs) and jobs[i][2] == n and (len(group) + 1) * n <= batch_tokens:
                group.append(jobs[i])
                i += 1
            x = torch.from_numpy(np.stack([held_ids[r][s:s + n] for r, s, _ in group]))
            h = model(x)
            tok, _ = model.log_likelihood(h, x)
            sums = tok.double().sum(1).numpy()  # token 0 of each window is 0: not scored
            for (r, _, _), v in zip(group, sums):
                ll[r] += v
    counts = np.array([len(ids) - 1 for ids in held_ids])
    return ll, counts


def write_single_file(model, path):
    """The -hf layout written by hyenadna_torch.save, then one safetensors file with the
    config in its __metadata__ (what dna-embed embeds and lr_model_open reads)."""
    with tempfile.TemporaryDirectory() as d:
        H.save(model, d)
        with open(os.path.join(d, "config.json")) as f:
            conf = json.load(f)
        tensors, _ = st.load(os.path.join(d, "model.safetensors"))
    meta = {"arch": "hyenadna", "format": "pt"}
    for k, v in conf.items():
        if k in ("architectures", "model_type"):
            continue
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    meta["trained_by"] = "tools/train_hyenadna.py"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    st.save(path, tensors, meta)


def load_single_file(path):
    tensors, meta = st.load(path)
    with tempfile.TemporaryDirectory() as d:
        conf = {k: json.loads(v) for k, v in meta.items() if k in H.DEFAULTS}
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(conf, f)
        st.save(os.path.join(d, "model.safetensors"), tensors)
        return H.load(d, dtype=torch.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "..", "shared", "data", "dna"))
    ap.add_argument("--out", default="models/hyenadna-tiny-dna.safetensors")
    ap.add_argument("--log", default="tools/logs/hyenadna-default.log")
    ap.add_argument("--heldout-fasta", default="/tmp/hyenadna-heldout.fa")
    ap.add_argument("--budget-min", type=float, default=25.0, help="training wall-clock budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--max-seq-len", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--tokens-per-step", type=int, default=16384)
    ap.add_argument("--eval-every-min", type=float, default=3.0)
    ap.add_argument("--markov-max-k", type=int, default=12)
    args = ap.parse_args()

    t_start = time.time()
    logf = open(args.log, "w")

    def log(msg):
        line = "[%7.1fs] %s" % (time.time() - t_start, msg)
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    log("command: " + " ".join([sys.executable] + sys.argv))
    log("settings: " + json.dumps(vars(args), sort_keys=True))
    log("torch %s, threads %d" % (torch.__version__, args.threads))
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train, held = load_data(args.data)
    with open(args.heldout_fasta, "w") as f:
        for name, seq in held:
            f.write(">%s\n" % name)
            for i in range(0, len(seq), 80):
                f.write(seq[i:i + 80] + "\n")
    held_ids = [tokens(s) for _, s in held]
    n_train = {k: sum(len(s) for s in v) for k, v in train.items()}
    log("training bases: %s (total %d); held-out: %d records, %d bases, written to %s" % (
        n_train, sum(n_train.values()), len(held), sum(len(s) for s in held_ids), args.heldout_fasta))
    groups = {"mtb": [0], "lambda": [1], "dm3": list(range(2, len(held)))}

    # Markov baselines first (a few seconds).
    t0 = time.time()
    train4 = [base4(s) for v in train.values() for s in v]
    held4 = [base4(s) for s in held_ids]
    logps = {}
    markov = {}
    for k in range(0, args.markov_max_k + 1):
        logps[k] = markov_logp(markov_counts(train4, k))
        if k >= 1:
            tot, n = markov_eval(logps, k, held4)
            per = {g: markov_eval(logps, k, [held4[i] for i in idx]) for g, idx in groups.items()}
            markov[k] = -tot / n / LN2
            log("markov k=%2d (add-one): held-out %.4f bits/base  [%s]" % (
                k, markov[k], ", ".join("%s %.4f" % (g, -a / b / LN2) for g, (a, b) in per.items())))
    best_k = min(markov, key=markov.get)
    log("markov best k=%d: %.4f bits/base (%.1fs)" % (best_k, markov[best_k], time.time() - t0))
    del logps

    cfg = H.Cfg(d_model=args.d_model, n_layer=args.n_layer, max_seq_len=args.max_seq_len, use_bias=True)
    model = H.HyenaDNALM(cfg).float()
    init_weights(model, args.n_layer)
    n_params = sum(p.numel() for p in model.parameters())
    log("model: d_model %d, n_layer %d, d_inner %d, max_seq_len %d, %d parameters" % (
        cfg.d_model, cfg.n_layer, cfg.d_inner, cfg.max_seq_len, n_params))
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.dim() >= 2 and "filter_fn" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))

    # Fixed evaluation subset, logged only: the first 64k held-out Mtb bases and 32 dm3 records.
    sub_ids = [held_ids[0][:65536]] + [held_ids[i] for i in groups["dm3"][:32]]

    def sub_eval():
        model.eval()
        ll, cnt = score_records(model, sub_ids, args.max_seq_len)
        model.train()
        return -ll.sum() / cnt.sum() / LN2, -ll[0] / cnt[0] / LN2, -ll[1:].sum() / cnt[1:].sum() / LN2

    tags = list(train)
    weights = np.array([n_train[t] for t in tags], dtype=np.float64)
    weights /= weights.sum()
    lengths = [1024, 2048, 4096, 8192]
    lengths = [L for L in lengths if L <= args.max_seq_len]
    budget = args.budget_min * 60
    t_train = time.time()
    next_eval = t_train
    step, run_loss, run_n, seen = 0, 0.0, 0, 0
    while True:
        elapsed = time.time() - t_train
        if elapsed >= next_eval - t_train:
            a, m, d = sub_eval()
            log("eval step %d: held-out subset %.4f bits/base (mtb %.4f, dm3 %.4f); train %.4f bits/base"
                % (step, a, m, d, run_loss / max(run_n, 1) / LN2))
            run_loss, run_n = 0.0, 0
            next_eval = time.time() + args.eval_every_min * 60
            elapsed = time.time() - t_train
        if elapsed >= budget:
            break
        frac = elapsed / budget
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        tag = tags[rng.choice(len(tags), p=weights)]
        if tag == "dm3":
            recs = train["dm3"]
            L = min(len(r) for r in recs)
            B = max(1, args.tokens_per_step // L)
            idx = rng.integers(0, len(recs), B)
            x = np.stack([recs[i][:L] if len(recs[i]) == L else
                          recs[i][(o := rng.integers(0, len(recs[i]) - L + 1)):o + L] for i in idx])
        else:
            seq = train[tag][0]
            L = int(rng.choice(lengths))
            B = max(1, args.tokens_per_step // L)
            starts = rng.integers(0, len(seq) - L + 1, B)
            x = np.stack([seq[s:s + L] for s in starts])
        x = torch.from_numpy(x)
        h = model(x)
        logits = model.lm_head(h)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += x.numel()
        run_loss += loss.item()
        run_n += 1
        if step % 50 == 0:
            log("step %d: lr %.2e, loss %.4f bits/base (last batch: %s %dx%d), %.0f tokens/s" % (
                step, lr, loss.item() / LN2, tag, B, L, seen / (time.time() - t_train)))
    train_s = time.time() - t_train
    log("training done: %d steps, %d tokens, %.1f min" % (step, seen, train_s / 60))

    write_single_file(model, args.out)
    log("wrote %s (%d bytes)" % (args.out, os.path.getsize(args.out)))
    # Final evaluation on the model as read back from the file.
    model2 = load_single_file(args.out)
    model2.eval()
    ll, cnt = score_records(model2, held_ids, args.max_seq_len)
    per = {g: -ll[idx].sum() / cnt[idx].sum() / LN2 for g, idx in groups.items()}
    final = -ll.sum() / cnt.sum() / LN2
    log("FINAL held-out (as dna-embed --score, %d records, %d scored bases): model %.4f bits/base [%s]"
        % (len(held_ids), cnt.sum(), final, ", ".join("%s %.4f" % kv for kv in per.items())))
    for k in sorted(markov):
        log("FINAL markov k=%2d: %.4f bits/base%s" % (k, markov[k], "  <- best" if k == best_k else ""))
    log("FINAL model %s the best Markov model (k=%d): %.4f vs %.4f bits/base (difference %.4f)" % (
        "BEATS" if final < markov[best_k] else "does NOT beat", best_k, final, markov[best_k],
        markov[best_k] - final))
    log("check: bin/dna-embed -m %s --score %s | awk -F'\\t' 'NR>1{ll+=$3; n+=$2-1} END{print -ll/log(2)/n}'"
        % (args.out, args.heldout_fasta))


if __name__ == "__main__":
    main()
