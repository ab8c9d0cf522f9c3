// llama2.c checkpoints (karpathy/llama2.c run.c format):
//   int32 header {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}
//   (vocab_size < 0: an untied classifier follows the weights), then float32 tensors in this order:
//   token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim], wv [L, kv_dim, dim],
//   wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim],
//   rms_final [dim], freq_cis_real [seq_len, head_dim/2], freq_cis_imag [seq_len, head_dim/2], [wcls [vocab, dim]].
// The file is mmapped and used in place, except wq/wk which are copied with their rows permuted from
// llama2.c's interleaved RoPE pairs (2i, 2i+1) to the half pairing (i, i + head_dim/2) every loader produces.
#include <cstring>
#include <string>
#include <vector>

#include "model/loaders.h"

namespace engine::model_detail {
namespace {

/// Row permutation per head: new row j (< hd/2) takes old row 2j, new row hd/2 + j takes old row 2j + 1.
/// This is the inverse view of HF's convert_llama_weights_to_hf permute(). w: [n_heads * hd, cols].
std::shared_ptr<float[]> permute_rope_rows(const float* w, int n_heads, int hd, int cols) {
  std::shared_ptr<float[]> out(new float[size_t(n_heads) * hd * cols]);
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < hd / 2; ++j)
      for (int r = 0; r < 2; ++r) {
        const float* src = w + (size_t(h) * hd + 2 * j + r) * cols;
        float* dst = out.get() + (size_t(h) * hd + r * (hd / 2) + j) * cols;
        std::memcpy(dst, src, sizeof(float) * cols);
      }
  return out;
}

Tensor f32_tensor(const float* p, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = DType::kF32;
  t.shape = std::move(shape);
  t.data = p;
  return t;
}

}  // namespace

ModelConfig read_llama2c_config(const MappedFile& f) {
  const std::string& path = f.path;
  if (f.size < 28)
    fail(path, "file too short for a llama2.c header: " + std::to_string(f.size) + " bytes, need at least 28");
  int32_t h[7];
  std::memcpy(h, f.data, sizeof h);
  if (h[0] == 0x616b3432)  // "ak42": llama2.c's versioned export (export.py --version 1/2)
    fail(path, "llama2.c versioned export (magic \"ak42\") is not supported; export with --version 0 (legacy)");
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  // Bounds that no real Llama exceeds; they also keep the size arithmetic below far from overflow.
  const int64_t limits[7] = {1 << 16, 1 << 18, 1 << 10, 1 << 10, 1 << 10, 1 << 22, 1 << 22};
  for (int i = 0; i < 7; ++i) {
    const int64_t v = i == 5 ? (h[i] < 0 ? -int64_t(h[i]) : h[i]) : h[i];
    if (v <= 0 || v > limits[i])
      fail(path, "bad llama2.c header: " + std::string(names[i]) + " = " + std::to_string(h[i]) +
                     " (expected 1.." + std::to_string(limits[i]) + "; is this a llama2.c .bin file?)");
  }
  ModelConfig c;
  c.name = path;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.tied_embeddings = h[5] > 0;
  c.vocab_size = h[5] > 0 ? h[5] : -h[5];
  c.max_seq_len = h[6];
  if (c.dim % c.n_heads != 0)
    fail(path, "bad llama2.c header: dim " + std::to_string(c.dim) + " is not a multiple of n_heads " +
                   std::to_string(c.n_heads));
  c.head_dim = c.dim / c.n_heads;
  c.validate(path);

  const int64_t d = c.dim, L = c.n_layers, hid = c.hidden_dim, V = c.vocab_size, hd = c.head_dim;
  const int64_t kv = int64_t(c.n_kv_heads) * hd;
  const int64_t n_floats = V * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d + 3 * L * hid * d + d +
                           int64_t(c.max_seq_len) * hd + (c.tied_embeddings ? 0 : V * d);
  const int64_t expected = 28 + 4 * n_floats;
  if (int64_t(f.size) != expected)
    fail(path, "size mismatch: the header {dim " + std::to_string(d) + ", hidden_dim " + std::to_string(hid) +
                   ", n_layers " + std::to_string(L) + ", n_heads " + std::to_string(c.n_heads) + ", n_kv_heads " +
                   std::to_string(c.n_kv_heads) + ", vocab_size " + std::to_string(h[5]) + ", seq_len " +
                   std::to_string(c.max_seq_len) + "} needs exactly " + std::to_string(expected) +
                   " bytes, the file has " + std::to_string(f.size) +
                   (int64_t(f.size) < expected ? " (truncated?)" : " (trailing data?)"));

  return c;
}

ModelWeights load_llama2c(const std::string& path) {
  MappedFile f = map_file(path);
  const ModelConfig c = read_llama2c_config(f);
  const int64_t d = c.dim, L = c.n_layers, hid = c.hidden_dim, V = c.vocab_size, hd = c.head_dim;
  const int64_t kv = int64_t(c.n_kv_heads) * hd;
  ModelWeights w;
  w.config = c;
  w.storage.push_back(f.keepalive);
  // The header is 28 bytes, so every float sits at a 4-byte aligned offset of the page-aligned mapping.
  const float* p = reinterpret_cast<const float*>(f.data + 28);
  auto take = [&p](int64_t n) {
    const float* q = p;
    p += n;
    return q;
  };
  w.tok_embeddings = f32_tensor(take(V * d), {V, d});
  w.layers.resize(L);
  for (auto& l : w.layers) l.attn_norm = f32_tensor(take(d), {d});
  for (auto& l : w.layers) {
    auto q = permute_rope_rows(take(d * d), c.n_heads, int(hd), int(d));
    l.wq = f32_tensor(q.get(), {d, d});
    w.storage.push_back(q);
  }
  for (auto& l : w.layers) {
    auto k = permute_rope_rows(take(kv * d), c.n_kv_heads, int(hd), int(d));
    l.wk = f32_tensor(k.get(), {kv, d});
    w.storage.push_back(k);
  }
  for (auto& l : w.layers) l.wv = f32_tensor(take(kv * d), {kv, d});
  for (auto& l : w.layers) l.wo = f32_tensor(take(d * d), {d, d});
  for (auto& l : w.layers) l.ffn_norm = f32_tensor(take(d), {d});
  for (auto& l : w.layers) l.w_gate = f32_tensor(take(hid * d), {hid, d});  // w1
  for (auto& l : w.layers) l.w_down = f32_tensor(take(d * hid), {d, hid});  // w2
  for (auto& l : w.layers) l.w_up = f32_tensor(take(hid * d), {hid, d});    // w3
  w.final_norm = f32_tensor(take(d), {d});
  take(int64_t(c.max_seq_len) * hd);  // freq_cis_real + freq_cis_imag: RoPE is computed by the backend
  w.lm_head = c.tied_embeddings ? w.tok_embeddings : f32_tensor(take(V * d), {V, d});
  return w;
}

}  // namespace engine::model_detail
