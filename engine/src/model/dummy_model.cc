// dummy:<preset>: seeded random weights with a real model's shapes, for speed work and the built-in default
// (vLLM's "dummy" load format). Weights are made in bf16 so the CPU (f32) and CUDA (bf16) backends see the
// very same numbers. Each element is a pure function of (seed, tensor index, element index) — a counter-based
// splitmix64 hash turned into an approximately normal value (sum of four 16-bit uniforms, std 0.02) — so the
// weights do not depend on the thread count and the fill parallelizes freely. Norm weights are 1.
#include <cmath>
#include <cstring>

#include "model/loaders.h"

namespace engine {
namespace {

struct Preset {
  const char* name;
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len;
  bool tied;
  float rope_theta;
};

// Shapes of the real models (Llama 2 7B/13B/70B, Llama 3 8B from their config.json); tiny fits the byte tokenizer.
// Only load_dummy() allocates: dummy_config() reads this table, so settings can be checked against a 70B
// shape (tensor parallelism) without 140 GB of weights.
constexpr Preset kPresets[] = {
    {"tiny", 256, 768, 4, 8, 4, 512, 2048, true, 10000.0f},
    {"llama-100m", 768, 2048, 12, 12, 12, 32000, 2048, true, 10000.0f},
    {"llama-2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, false, 10000.0f},
    {"llama-2-13b", 5120, 13824, 40, 40, 40, 32000, 4096, false, 10000.0f},
    {"llama-2-70b", 8192, 28672, 80, 64, 8, 32000, 4096, false, 10000.0f},
    {"llama-3-8b", 4096, 14336, 32, 32, 8, 128256, 8192, false, 500000.0f},
};

constexpr float kStd = 0.02f;

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Irwin-Hall with four 16-bit uniforms: mean 2*65535, std 65536/sqrt(3) (close enough to a normal for weights).
float normalish(uint64_t h) {
  const int64_t s = int64_t(h & 0xffff) + int64_t((h >> 16) & 0xffff) + int64_t((h >> 32) & 0xffff) + int64_t(h >> 48);
  constexpr double kInvStd = 1.7320508075688772 / 65536.0;
  return float(double(s - 2 * 65535) * kInvStd);
}

/// Allocates and fills one bf16 tensor; `tensor_index` separates the random streams of the tensors.
Tensor make_tensor(std::vector<int64_t> shape, uint64_t seed, uint64_t tensor_index, bool ones,
                   std::vector<std::shared_ptr<const void>>& storage) {
  Tensor t;
  t.dtype = DType::kBF16;
  t.shape = std::move(shape);
  const int64_t n = t.numel();
  // new[] without value-initialization: the parallel fill below is the first touch of each page.
  std::shared_ptr<uint16_t[]> buf(new uint16_t[size_t(n)]);
  uint16_t* p = buf.get();
  const uint64_t stream = splitmix64(seed ^ splitmix64(tensor_index + 0x1234567ull));
  const uint16_t one = model_detail::f32_to_bf16(1.0f);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i)
    p[i] = ones ? one : model_detail::f32_to_bf16(kStd * normalish(splitmix64(stream + uint64_t(i))));
  t.data = p;
  storage.push_back(buf);
  return t;
}

}  // namespace

std::vector<std::string> dummy_presets() {
  std::vector<std::string> out;
  for (const auto& p : kPresets) out.push_back(p.name);
  return out;
}

namespace model_detail {

ModelConfig dummy_config(const std::string& preset) {
  const Preset* p = nullptr;
  for (const auto& q : kPresets)
    if (preset == q.name) p = &q;
  if (!p) {
    std::string known;
    for (const auto& n : dummy_presets()) known += (known.empty() ? "" : ", ") + ("dummy:" + n);
    fail("dummy:" + preset, "unknown dummy preset (known: " + known + ")");
  }
  ModelConfig c;
  c.name = "dummy:" + preset;
  c.dim = p->dim;
  c.hidden_dim = p->hidden_dim;
  c.n_layers = p->n_layers;
  c.n_heads = p->n_heads;
  c.n_kv_heads = p->n_kv_heads;
  c.head_dim = p->dim / p->n_heads;
  c.vocab_size = p->vocab_size;
  c.max_seq_len = p->max_seq_len;
  c.rope_theta = p->rope_theta;
  c.norm_eps = 1e-5f;
  c.tied_embeddings = p->tied;
  c.validate(c.name);
  return c;
}

ModelWeights load_dummy(const std::string& preset, uint64_t seed) {
  return make_dummy_weights(dummy_config(preset), seed);
}

}  // namespace model_detail

ModelWeights make_dummy_weights(const ModelConfig& c, uint64_t seed) {
  c.validate(c.name.empty() ? "dummy weights" : c.name);
  const int64_t d = c.dim, q = int64_t(c.n_heads) * c.head_dim, kv = int64_t(c.n_kv_heads) * c.head_dim;
  const int64_t hid = c.hidden_dim, V = c.vocab_size;
  ModelWeights w;
  w.config = c;
  uint64_t idx = 0;
  auto rnd = [&](std::vector<int64_t> shape) { return make_tensor(std::move(shape), seed, idx++, false, w.storage); };
  auto ones = [&](int64_t n) { return make_tensor({n}, seed, idx++, true, w.storage); };
  w.tok_embeddings = rnd({V, d});
  w.layers.resize(c.n_layers);
  for (auto& l : w.layers) {
    l.attn_norm = ones(d);
    l.wq = rnd({q, d});
    l.wk = rnd({kv, d});
    l.wv = rnd({kv, d});
    l.wo = rnd({d, q});
    l.ffn_norm = ones(d);
    l.w_gate = rnd({hid, d});
    l.w_up = rnd({hid, d});
    l.w_down = rnd({d, hid});
  }
  w.final_norm = ones(d);
  w.lm_head = c.tied_embeddings ? w.tok_embeddings : rnd({V, d});
  return w;
}

}  // namespace engine
