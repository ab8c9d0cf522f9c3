// Weight upload for the CUDA backend: every matrix becomes bf16 on the device (or f32 in the f32 mode),
// whatever dtype the loader produced; wq/wk/wv and w_gate/w_up are concatenated so each pair/triple is one
// GEMM, norm weights stay f32, and the RoPE (cos, sin) table is computed in double on the host.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "engine/engine.h"

namespace engine::cuda {
namespace {

uint16_t f32_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);                     // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

void check_shape(const Tensor& t, std::vector<int64_t> want, const std::string& name) {
  if (t.data == nullptr || t.shape != want) {
    auto dims = [](const std::vector<int64_t>& shape) {
      std::string out;
      for (int64_t d : shape) {
        if (!out.empty()) out += 'x';
        out += std::to_string(d);
      }
      return out;
    };
    const std::string got = dims(t.shape), exp = dims(want);
    throw ModelLoadError("cuda backend: weight " + name + " has shape [" + got + "], expected [" + exp + "]" +
                         (t.data ? "" : " (no data)"));
  }
}

/// Appends `t` as bf16 bits: bf16 sources are copied, others go through Tensor::to_f32 (exact) and are
/// rounded to nearest even.
void append_bf16(const Tensor& t, std::vector<uint16_t>& out) {
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(t.numel()));
  uint16_t* dst = out.data() + at;
  if (t.dtype == DType::kBF16) {
    std::memcpy(dst, t.data, static_cast<size_t>(t.numel()) * 2);
    return;
  }
  const std::vector<float> f = t.to_f32();
  for (size_t i = 0; i < f.size(); ++i) dst[i] = f32_to_bf16_bits(f[i]);
}

/// Appends `t` as f32 (exact for every source dtype).
void append_f32(const Tensor& t, std::vector<float>& out) {
  const std::vector<float> f = t.to_f32();
  out.insert(out.end(), f.begin(), f.end());
}

template <typename T>
T* upload(DeviceWeights& dw, const void* src, size_t bytes) {
  void* p = nullptr;
  LLM_CUDA_CHECK(cudaMalloc(&p, bytes));
  dw.allocations.push_back(p);
  LLM_CUDA_CHECK(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice));
  dw.bytes += static_cast<int64_t>(bytes);
  return static_cast<T*>(p);
}

/// Host staging for one matrix (or a concatenation) in the device element type.
struct Staging {
  std::vector<uint16_t> bf16_bits;
  std::vector<float> f32;
};

/// Concatenates `parts` row-wise (they share the column count) in the device element type and uploads them.
void* upload_matrices(DeviceWeights& dw, std::initializer_list<const Tensor*> parts, Staging& staging) {
  if (dw.f32) {
    staging.f32.clear();
    for (const Tensor* t : parts) append_f32(*t, staging.f32);
    return upload<void>(dw, staging.f32.data(), staging.f32.size() * 4);
  }
  staging.bf16_bits.clear();
  for (const Tensor* t : parts) append_bf16(*t, staging.bf16_bits);
  return upload<void>(dw, staging.bf16_bits.data(), staging.bf16_bits.size() * 2);
}

float* upload_norm(DeviceWeights& dw, const Tensor& t) {
  const std::vector<float> f = t.to_f32();
  return upload<float>(dw, f.data(), f.size() * 4);
}

}  // namespace

void DeviceWeights::free_all() {
  for (void* p : allocations) cudaFree(p);
  allocations.clear();
  layers.clear();
  bytes = 0;
}

DeviceWeights upload_weights(const ModelWeights& w, int rope_len, bool f32) {
  const ModelConfig& c = w.config;
  const int64_t dim = c.dim, hd = c.head_dim, q_dim = int64_t{c.n_heads} * hd, kv_dim = int64_t{c.n_kv_heads} * hd;
  if (hd % 2 != 0) throw ModelLoadError("cuda backend: head_dim " + std::to_string(hd) + " must be even (RoPE)");
  if (!attention_supports_head_dim(c.head_dim))
    throw ModelLoadError("cuda backend: no attention kernel for head_dim " + std::to_string(hd));
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0)
    throw ModelLoadError("cuda backend: n_heads must be a multiple of n_kv_heads");
  if (static_cast<int>(w.layers.size()) != c.n_layers)
    throw ModelLoadError("cuda backend: " + std::to_string(w.layers.size()) + " layers, config says " +
                         std::to_string(c.n_layers));

  DeviceWeights dw;
  dw.cfg = c;
  dw.f32 = f32;
  const int64_t elem = f32 ? 4 : 2;
  try {
    Staging staging;
    check_shape(w.tok_embeddings, {c.vocab_size, dim}, "tok_embeddings");
    dw.tok_emb = upload_matrices(dw, {&w.tok_embeddings}, staging);
    if (w.lm_head.data == w.tok_embeddings.data && w.lm_head.dtype == w.tok_embeddings.dtype) {
      dw.lm_head = dw.tok_emb;
    } else {
      check_shape(w.lm_head, {c.vocab_size, dim}, "lm_head");
      dw.lm_head = upload_matrices(dw, {&w.lm_head}, staging);
    }
    check_shape(w.final_norm, {dim}, "final_norm");
    dw.final_norm = upload_norm(dw, w.final_norm);
    int64_t per_step = int64_t{c.vocab_size} * dim * elem;
    for (int l = 0; l < c.n_layers; ++l) {
      const ModelWeights::Layer& L = w.layers[l];
      const std::string p = "layers." + std::to_string(l) + ".";
      check_shape(L.attn_norm, {dim}, p + "attn_norm");
      check_shape(L.wq, {q_dim, dim}, p + "wq");
      check_shape(L.wk, {kv_dim, dim}, p + "wk");
      check_shape(L.wv, {kv_dim, dim}, p + "wv");
      check_shape(L.wo, {dim, q_dim}, p + "wo");
      check_shape(L.ffn_norm, {dim}, p + "ffn_norm");
      check_shape(L.w_gate, {c.hidden_dim, dim}, p + "w_gate");
      check_shape(L.w_up, {c.hidden_dim, dim}, p + "w_up");
      check_shape(L.w_down, {dim, c.hidden_dim}, p + "w_down");
      DeviceLayer d;
      d.attn_norm = upload_norm(dw, L.attn_norm);
      d.ffn_norm = upload_norm(dw, L.ffn_norm);
      d.wqkv = upload_matrices(dw, {&L.wq, &L.wk, &L.wv}, staging);
      d.wo = upload_matrices(dw, {&L.wo}, staging);
      d.wgu = upload_matrices(dw, {&L.w_gate, &L.w_up}, staging);
      d.wd = upload_matrices(dw, {&L.w_down}, staging);
      dw.layers.push_back(d);
      per_step += elem * ((q_dim + 2 * kv_dim) * dim + dim * q_dim + 3 * int64_t{c.hidden_dim} * dim);
    }
    dw.bytes_read_per_token_step = per_step;

    // (cos, sin) of pos * theta^(-2i/hd), in double so that large positions keep their accuracy.
    const int half = c.head_dim / 2;
    std::vector<float2> rope(static_cast<size_t>(rope_len) * half);
    for (int pos = 0; pos < rope_len; ++pos)
      for (int i = 0; i < half; ++i) {
        const double inv_freq = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
        const double ang = pos * inv_freq;
        rope[static_cast<size_t>(pos) * half + i] = make_float2(static_cast<float>(std::cos(ang)),
                                                                static_cast<float>(std::sin(ang)));
      }
    dw.rope = upload<float2>(dw, rope.data(), rope.size() * sizeof(float2));
    dw.rope_len = rope_len;
  } catch (...) {
    dw.free_all();
    throw;
  }
  return dw;
}

}  // namespace engine::cuda
