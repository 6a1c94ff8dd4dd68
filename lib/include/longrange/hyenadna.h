/* HyenaDNA (Nguyen et al., 2023) inference: the causal character-level DNA language model of
 * HazyResearch/hyena-dna, as the Hugging Face `LongSafari/hyenadna-*-hf` checkpoints define it
 * (modeling_hyena.py / configuration_hyena.py; standalone_hyenadna.py has the same forward).
 * tools/hyenadna_torch.py is the independent float64 PyTorch reference the fixtures come from.
 *
 * Model file: an lr_model whose metadata (config.json of an -hf directory, or a safetensors
 * file's __metadata__) carries HyenaConfig's keys, with HyenaConfig's defaults where absent:
 * d_model 256, n_layer 12, d_inner 4 d_model, vocab_size 12, max_seq_len 1024, emb_dim 3,
 * filter_order 64, short_filter_order 3, hyena_order 2 (these two are the only values
 * supported, as in every published checkpoint: HF's short filter has padding 2, causal only
 * with 3 taps), activation_freq 1, num_inner_mlps 2, train_freq true, use_bias true,
 * pad_vocab_size_multiple 8, layer_norm_epsilon 1e-5, tie_word_embeddings true; and one key of
 * ours, modulation_shift (default 0.05, the shift of the standalone and HF
 * ExponentialModulation; the training repository's class defaults to 0.0). Tensors carry
 * the official state_dict names with the prefix "hyena.backbone." (HyenaDNAForCausalLM,
 * ...ForSequenceClassification) or "backbone." (HyenaDNAModel), F32, F16 or BF16 (the last
 * two widened to F32 once at open):
 *   embeddings.word_embeddings.weight            [V, d]  V = vocab_size padded up to a
 *                                                        multiple of pad_vocab_size_multiple
 *   layers.i.norm1.{weight,bias}, norm2.{...}    [d]     LayerNorm, eps 1e-5 (as HF's blocks)
 *   layers.i.mixer.in_proj.{weight,bias}         [3d, d], [3d]
 *   layers.i.mixer.short_filter.{weight,bias}    [3d, 1, 3], [3d]   depthwise
 *   layers.i.mixer.filter_fn.implicit_filter.{0,2,..,2n}.{weight,bias}  Linear(emb_dim -> F),
 *                                                then n x Linear(F -> F)
 *   layers.i.mixer.filter_fn.implicit_filter.{1,3,..,2n+1}.freq  [1, F]  the Sin frequency
 *                                                (one shared module in the official code, so a
 *                                                file may keep only one of these names; any
 *                                                present one serves; absent with train_freq
 *                                                false: the constant activation_freq)
 *   layers.i.mixer.filter_fn.implicit_filter.{2n+2}.weight  [d, F]  (no bias)
 *   layers.i.mixer.filter_fn.bias                [d]     D, read only when use_bias is true
 *   layers.i.mixer.filter_fn.pos_emb.{z,t}       [1, max_seq_len, emb_dim], [1, max_seq_len, 1]
 *   layers.i.mixer.filter_fn.modulation.deltas   [1, 1, d]
 *                                                (buffers: when absent they are computed from
 *                                                their definitions below, in double)
 *   layers.i.mixer.out_proj.{weight,bias}        [d, d], [d]
 *   layers.i.mlp.fc1.{weight,bias}, fc2.{...}    [d_inner, d], [d, d_inner] and biases
 *   ln_f.{weight,bias}                           [d]     LayerNorm, eps layer_norm_epsilon
 *   lm_head.weight (no prefix)                   [V, d]  optional: absent means tied to the
 *                                                        word embeddings
 *
 * Forward, for token ids x[0..L), 1 <= L <= max_seq_len (longer inputs are refused: the
 * official code cannot run them either, its filter stops at max_seq_len):
 *   h = E[x]; per layer:  r = h;  h = r + Hyena(LN1(r));  h = h + MLP(LN2(h));  out = LN_f(h)
 *   MLP(a) = fc2(gelu_tanh(fc1(a)))
 *   Hyena(a): p = in_proj(a) [L, 3d]; q = the depthwise causal convolution of p over t with
 *     zero history, q[t, j] = b[j] + sum_{k<3} w[j, k] p[t - 2 + k, j] (the official Conv1d
 *     with padding 2, first L outputs kept); x0, x1, v = the three d-column thirds of q;
 *     u = x1 * v; y[t, c] = sum_{s<=t} h_c[s] u[t - s, c] + D_c u[t, c]; out_proj(x0 * y).
 *     D is filter_fn.bias when use_bias is true, else 0 (the training code's `0 * bias`;
 *     HF's forward adds it unconditionally, and every HF config has use_bias true).
 *   Implicit filter h_c[s], s < L: z(s) = [tn_s, cos(f_b w_s) (b < B), -sin(f_b w_s) (b < B)]
 *     with tn_s = s / (max_seq_len - 1), w_s = 2 pi s / max_seq_len, B = (emb_dim - 1) / 2,
 *     f_b = linspace(1e-4, B - 1, B); g = Linear_last(S(... S(Linear_0(z)))) with
 *     S(x) = sin(freq * x) after each but the last Linear; h_c[s] = g_c(s) (exp(-tn_s
 *     |delta_c|) + modulation_shift), deltas = linspace(ln(0.01) / 1.5, ln(0.01) / 0.3, d) by default.
 *     It depends on the weights and s only, so each layer's filter spectrum is prepared once
 *     per length bucket (lr_longconv) and cached with the model (see set_cache_limit).
 *
 * Precision: FP32 storage and arithmetic (LayerNorm statistics and the log-likelihood in
 * double). Against the float64 reference, per output element: required 2e-3 max abs and
 * 8e-5 RMS, measured about 5e-5 and 5e-6 at L = 1k and 32k (tests/unit/test_hyenadna.c).
 * Determinism: bit-identical for any thread count (fixed work split; lr_sgemm and
 * lr_longconv are thread-count independent); results depend on the CPU level only.
 * Cost per token and layer: about 2 (3d^2 + d^2 + 2 d d_inner) flops of matrix products plus
 * the FFT convolution, O(d log L). Memory: the caller's [L, d] output, a workspace of
 * 2 L d floats plus O(d_inner) per token of a fixed 2048-token chunk (kept with the model
 * between calls while it is no larger than the cache limit: fresh pages cost a fault each),
 * and the filter spectra (about 8 d L bytes per layer and bucket; see set_cache_limit).
 * A model object is not thread-safe (its cache changes); use one per thread. */
#ifndef LONGRANGE_HYENADNA_H
#define LONGRANGE_HYENADNA_H

#include <stdbool.h>

#include "longrange/core.h"
#include "longrange/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The official CharacterTokenizer's ids: specials 0..6, then the characters A C G T N. */
enum {
    LR_HYENADNA_CLS = 0,
    LR_HYENADNA_SEP = 1,
    LR_HYENADNA_BOS = 2,
    LR_HYENADNA_MASK = 3,
    LR_HYENADNA_PAD = 4,
    LR_HYENADNA_RESERVED = 5,
    LR_HYENADNA_UNK = 6,
    LR_HYENADNA_A = 7,
    LR_HYENADNA_C = 8,
    LR_HYENADNA_G = 9,
    LR_HYENADNA_T = 10,
    LR_HYENADNA_N = 11
};

/* The token id of one sequence byte: A C G T N -> 7..11, anything else [UNK] (6). The
 * official tokenizer is case-sensitive (soft-masked 'a' becomes [UNK]); fold_case maps
 * lowercase a c g t n like their uppercase letters, which is what soft-masking means. */
int32_t lr_hyenadna_token(unsigned char c, bool fold_case);

typedef struct lr_hyenadna lr_hyenadna;

/* Checks every hyper-parameter (LR_ERR_MODEL naming the key) and tensor (LR_ERR_MODEL naming
 * the tensor, with the expected and found shape); model file tensors are used in place, so
 * `file` must outlive the returned model. */
lr_status lr_hyenadna_open(lr_ctx *ctx, const lr_model *file, lr_hyenadna **out);
void lr_hyenadna_close(lr_hyenadna *m);

int64_t lr_hyenadna_d_model(const lr_hyenadna *m);
int64_t lr_hyenadna_n_layer(const lr_hyenadna *m);
int64_t lr_hyenadna_max_seq_len(const lr_hyenadna *m);
/* The padded vocabulary: rows of the embedding and of the logits. */
int64_t lr_hyenadna_vocab(const lr_hyenadna *m);

/* hidden: [L][d_model], the output of ln_f (HyenaDNAModel's last_hidden_state). ids must lie
 * in [0, vocab); LR_ERR_ARG for L < 1 or L > max_seq_len. */
lr_status lr_hyenadna_forward(lr_ctx *ctx, lr_hyenadna *m, const int32_t *ids, int64_t L, float *hidden);

/* logits: [L][vocab] = hidden lm_head^T (HyenaDNAForCausalLM's logits). */
lr_status lr_hyenadna_logits(lr_ctx *ctx, const lr_hyenadna *m, const float *hidden, int64_t L, float *logits);

/* The model's causal objective on a forward pass's output: token_ll[t] = log softmax(
 * logits[t - 1])[ids[t]] for 1 <= t < L over the padded vocabulary (as HF's cross-entropy),
 * token_ll[0] = 0 (nothing predicts the first token); *total = the sum (natural log).
 * token_ll may be NULL. Computed in double from FP32 logits. */
lr_status lr_hyenadna_log_likelihood(lr_ctx *ctx, const lr_hyenadna *m, const float *hidden,
                                     const int32_t *ids, int64_t L, float *token_ll, double *total);

/* Filter spectra are prepared per length bucket: the smallest 2^k or 3 * 2^(k-1) >= max(L, 64),
 * capped at max_seq_len (a shorter input uses the first L taps of its bucket's filter, which
 * gives exactly its own causal result). Up to 4 buckets stay cached while their spectra
 * total at most `bytes` (default 1 GiB; least recently used dropped first); a bucket that
 * alone exceeds it is prepared layer by layer for each call and freed, bounding memory to
 * one layer's spectrum. The forward's workspace is kept between calls under the same limit
 * (separately from the spectra). 0 disables caching and keeps nothing between calls. */
void lr_hyenadna_set_cache_limit(lr_hyenadna *m, size_t bytes);
/* Bytes of spectra cached now. */
size_t lr_hyenadna_cache_bytes(const lr_hyenadna *m);

#ifdef __cplusplus
}
#endif
#endif
