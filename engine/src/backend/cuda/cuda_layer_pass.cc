// The CUDA backend's layer pass (CudaBackend::run_layers): per layer add+RMSNorm, QKV GEMM, RoPE+KV write,
// paged attention, O GEMM, add+RMSNorm, gate/up GEMM, SwiGLU, down GEMM (at batch 1 the norms and the SwiGLU
// are made inside the GEMVs that read them: kernels.h, gemv_rmsnorm / gemv_swiglu; deterministic:
// ordered_gemv_rmsnorm / _swiglu); then the final norm of the rows that want logits, the lm_head GEMM (f32
// logits) and argmax. GEMMs: gemm.h. Attention: steps with a prompt chunk (a slice of query_len > 1) send those
// slices through the tiled prefill kernel (attention_prefill.cu) and the rest through the paged kernel over a
// token list; other steps (and the deterministic mode) run the paged kernel over all tokens. The pass is one
// template, run_layers_as<E>, over the storage type E (bf16, or float in the f32 mode). Everything it launches
// goes on the backend's stream and only there, so a decode step can be captured as a graph.
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/cuda_profile.h"
#include "backend/cuda/kernels.h"

namespace engine::cuda {

// One step's pass with storage type E. Each stage's shapes are in kernels.h (layouts); what is f32 in both
// modes: the residual x, the QKV GEMM output (RoPE reads it before any rounding) and delta, the O and down
// GEMM outputs (added to x in f32 by add_rmsnorm).
template <typename E>
void CudaBackend::run_layers_as(const Step& st, ProfileMarks* mk) {
  const int T = st.T, dim = mc_.dim, nh = mc_.n_heads, nkv = mc_.n_kv_heads, hd = mc_.head_dim;
  const int qkv_dim = (nh + 2 * nkv) * hd, hid = mc_.hidden_dim;
  const float eps = mc_.norm_eps;
  const InputLayout::Sections<const int32_t> in = input_layout().at<const int32_t>(in_dev_);
  E* h = static_cast<E*>(h_);
  E* q = static_cast<E*>(q_);
  E* attn = static_cast<E*>(attn_);
  E* gu = static_cast<E*>(gu_);
  E* act = static_cast<E*>(act_);
  E* hf = static_cast<E*>(hf_);
  auto mark = [&](const char* n) { if (mk) mk->mark(n); };
  // At M = 1 (the GEMV path) the fused GEMVs replace add+RMSNorm + QKV / gate-up and SwiGLU + down (kernels.h).
  // A fused norm writes the updated residual to the other buffer (its blocks all read the old one), so the
  // residual alternates between x_ and x_alt_: xr is where it is now.
  // The deterministic mode at M = 1 (det_gemv): the ordered GEMVs, fused the same way, whose rows are
  // ordered_gemm's as TunedGemm's are at every other M.
  bool fuse_norm = false, fuse_swiglu = false, ordered = false;
  if constexpr (std::is_same_v<E, bf16>) {
    ordered = opt_.det_gemv && T == 1 && ordered_gemv_supported(qkv_dim, dim, true) &&
              ordered_gemv_supported(2 * hid, dim, true) && ordered_gemv_supported(dim, nh * hd, false) &&
              ordered_gemv_supported(dim, hid, false);
    fuse_norm = ordered || (opt_.fuse_norm && gemm_->uses_gemv(T, dim) && gemv_fused_supported(qkv_dim, dim, true) &&
                            gemv_fused_supported(2 * hid, dim, true));
    fuse_swiglu =
        ordered || (opt_.fuse_swiglu && gemm_->uses_gemv(T, hid) && gemv_fused_supported(dim, hid, false));
  }
  float* xr = x_;
  float* xo = x_alt_;
  // add+RMSNorm of the residual (delta added unless null) into h, then y = h @ w^T: fused or two launches.
  auto norm_gemm = [&](const float* dl, const float* nw, const void* w, void* y, bool y_f32, int N, const char* name) {
    if constexpr (std::is_same_v<E, bf16>) {
      if (fuse_norm) {
        if (ordered) ordered_gemv_rmsnorm(xr, dl, nw, eps, xo, static_cast<const bf16*>(w), y, y_f32, N, dim, stream_);
        else gemv_rmsnorm(xr, dl, nw, eps, xo, static_cast<const bf16*>(w), y, y_f32, N, dim, stream_);
        std::swap(xr, xo);
        mark(name);
        return;
      }
    }
    add_rmsnorm<E>(xr, dl, nw, h, nullptr, T, dim, eps, true, stream_);
    mark("add_rmsnorm");
    gemm_->run(h, w, y, y_f32, T, N, dim);
    mark(name);
  };

  // The attention of a small decode step prefetches its layer's O weights into L2 (CudaOptions::l2_prefetch_rows):
  // decided once for the step, from its shape.
  const size_t wo_bytes = size_t(dim) * nh * hd * opt_.elem_bytes();
  const bool prefetch_wo =
      st.n_tiles == 0 && T <= opt_.l2_prefetch_rows && wo_bytes <= size_t(device_l2_bytes()) / 4 * 3;

  // One-row decode steps (bf16) may take the O projection through gemv_preload (CudaOptions::gemv_preload).
  bool preload_wo = false;
  if constexpr (std::is_same_v<E, bf16>)
    preload_wo = T == 1 && st.n_tiles == 0 && !ordered && opt_.gemv && opt_.gemv_preload > 0 &&
                 gemv_preload_supported(dim, nh * hd, opt_.gemv_preload);

  // Decode steps of up to fuse_rope_attn_rows rows with a bf16 / float cache rotate q and write each row's new
  // K/V inside the attention (AttentionArgs::qkv): one launch fewer a layer.
  const bool fuse_rope =
      T <= opt_.fuse_rope_attn_rows && use_decode_attention_ && !opt_.fp8_kv && st.one_token_rows;

  embedding<E>(in.tokens, static_cast<const E*>(w_.tok_emb), x_, T, dim, stream_);
  mark("embedding");
  for (int l = 0; l < mc_.n_layers; ++l) {
    const DeviceLayer& L = w_.layers[l];
    E* kc = opt_.fp8_kv ? nullptr : static_cast<E*>(k_cache(l));
    E* vc = opt_.fp8_kv ? nullptr : static_cast<E*>(v_cache(l));
    norm_gemm(l == 0 ? nullptr : delta_, L.attn_norm, L.wqkv, qkv_, true, qkv_dim, "qkv_gemm");
    if constexpr (std::is_same_v<E, bf16>) {
      if (opt_.fp8_kv)
        rope_kv_write_fp8(qkv_, in.positions, in.slots, w_.rope, q, static_cast<uint8_t*>(k_cache(l)),
                          static_cast<uint8_t*>(v_cache(l)), k_scale(l), v_scale(l), T, nh, nkv, hd, block_size_,
                          stream_);
    }
    if (!opt_.fp8_kv && !fuse_rope)
      rope_kv_write<E>(qkv_, in.positions, in.slots, w_.rope, q, kc, vc, T, nh, nkv, hd, block_size_, stream_);
    if (!fuse_rope) mark("rope_kv_write");
    AttentionArgs<E> a;
    a.q = q;
    a.q_stride = nh * hd;
    a.k_cache = kc;
    a.v_cache = vc;
    a.positions = in.positions;
    a.bt_start = in.bt_start;
    a.block_tables = in.block_tables;
    a.out = attn;
    a.part = part_;
    if (opt_.merge_in_kernel) a.split_count = split_count_;
    a.T = T;
    a.nh = nh;
    a.nkv = nkv;
    a.hd = hd;
    a.block_size = block_size_;
    a.num_splits = st.num_splits;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    if (opt_.fp8_kv) {
      a.k_fp8 = static_cast<const uint8_t*>(k_cache(l));
      a.v_fp8 = static_cast<const uint8_t*>(v_cache(l));
      a.k_scale = k_scale(l);
      a.v_scale = v_scale(l);
    }
    if (st.n_tiles > 0) {
      // Prefill tiles and decode rows write disjoint rows of attn.
      a.prefill_mma_warps = opt_.prefill_mma;
      paged_attention_prefill(a, in.lists, st.n_tiles, stream_);
      a.tokens = in.lists + st.n_tiles;
      a.T = st.n_dec;
    }
    if (opt_.det_rows > 0) a.warps = opt_.det_attn_warps;
    else if (opt_.attn_warps > 0) a.warps = opt_.attn_warps;
    else a.warps = int64_t(a.T) * nh * st.num_splits <= 4 * int64_t(num_sms_) ? 8 : 4;
    a.tokens_in_flight = opt_.det_rows > 0 ? opt_.det_attn_tokens : opt_.attn_tokens;
    a.fp8_lane_bytes = opt_.fp8_lane_bytes;
    if (decode_attention_has_ring(a)) a.ring_stages = opt_.attn_ring;
    // Decode rows only (the decode list after prefill tiles, or a step of one-token slices; padding rows read
    // block 0 and are discarded either way), in launches of at most attn_early_kv_rows rows.
    a.kv_before_wait = (st.n_tiles > 0 || st.one_token_rows) && a.T <= opt_.attn_early_kv_rows;
    if (fuse_rope) {
      a.qkv = qkv_;
      a.q_stride = qkv_dim;
      a.rope = w_.rope;
      a.slots = in.slots;
    }
    if (prefetch_wo) {
      a.l2_prefetch = L.wo;
      a.l2_prefetch_bytes = wo_bytes;
    }
    if (use_decode_attention_) decode_attention(a, stream_);
    else paged_attention(a, stream_);
    mark("attention");
    if (ordered) ordered_gemv(reinterpret_cast<const bf16*>(attn), static_cast<const bf16*>(L.wo), delta_, true, dim,
                              nh * hd, stream_);
    else if (preload_wo) gemv_preload(reinterpret_cast<const bf16*>(attn), static_cast<const bf16*>(L.wo), delta_, true,
                                      dim, nh * hd, opt_.gemv_preload, stream_);
    else gemm_->run(attn, L.wo, delta_, true, T, dim, nh * hd);
    mark("o_gemm");
    norm_gemm(delta_, L.ffn_norm, L.wgu, gu, false, 2 * hid, "gate_up_gemm");
    bool down_done = false;
    if constexpr (std::is_same_v<E, bf16>) {
      if (fuse_swiglu) {
        if (ordered) ordered_gemv_swiglu(gu, static_cast<const bf16*>(L.wd), delta_, true, dim, hid, stream_);
        else gemv_swiglu(gu, static_cast<const bf16*>(L.wd), delta_, true, dim, hid, stream_);
        down_done = true;
      }
    }
    if (!down_done) {
      swiglu<E>(gu, act, T, hid, stream_);
      mark("swiglu");
      gemm_->run(act, L.wd, delta_, true, T, dim, hid);
    }
    mark("down_gemm");
  }
  add_rmsnorm<E>(xr, mc_.n_layers > 0 ? delta_ : nullptr, w_.final_norm, hf, in.rows, st.n_logits, dim, eps, false,
                 stream_);
  mark("final_norm");
  if (ordered && st.n_logits == 1 && ordered_gemv_supported(mc_.vocab_size, dim, false))
    ordered_gemv(reinterpret_cast<const bf16*>(hf), static_cast<const bf16*>(w_.lm_head), logits_, true,
                 mc_.vocab_size, dim, stream_);
  else
    gemm_->run(hf, w_.lm_head, logits_, true, st.n_logits, mc_.vocab_size, dim);
  mark("lm_head_gemm");
  argmax_rows(logits_, ids_, st.n_logits, mc_.vocab_size, stream_);
  mark("argmax");
}

void CudaBackend::run_layers(const Step& st, ProfileMarks* mk) {
  if (opt_.f32) run_layers_as<float>(st, mk);
  else run_layers_as<bf16>(st, mk);
}

}  // namespace engine::cuda
