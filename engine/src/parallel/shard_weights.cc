// shard_weights(): row views and column copies of one rank's slice of every tensor.
#include "parallel/shard_weights.h"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace engine::parallel {
namespace {

/// Rows [r0, r0 + n) of a [rows, cols] tensor: a view, no copy.
Tensor row_slice(const Tensor& t, int64_t r0, int64_t n) {
  if (t.shape.size() != 2 || r0 < 0 || r0 + n > t.shape[0])
    throw std::invalid_argument("shard_weights: row slice outside the tensor");
  Tensor s = t;
  s.shape = {n, t.shape[1]};
  s.data = static_cast<const char*>(t.data) + r0 * t.shape[1] * int64_t(dtype_size(t.dtype));
  return s;
}

/// Columns [c0, c0 + n) of a [rows, cols] tensor, copied into a new buffer held by `storage`.
Tensor col_slice(const Tensor& t, int64_t c0, int64_t n, std::vector<std::shared_ptr<const void>>& storage) {
  if (t.shape.size() != 2 || c0 < 0 || c0 + n > t.shape[1])
    throw std::invalid_argument("shard_weights: column slice outside the tensor");
  const int64_t rows = t.shape[0], cols = t.shape[1], es = int64_t(dtype_size(t.dtype));
  std::shared_ptr<char[]> buf(new char[size_t(rows * n * es)]);
  const char* src = static_cast<const char*>(t.data);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(buf.get() + r * n * es, src + (r * cols + c0) * es, size_t(n * es));
  Tensor s = t;
  s.shape = {rows, n};
  s.data = buf.get();
  storage.push_back(buf);
  return s;
}

}  // namespace

ModelWeights shard_weights(const ModelWeights& w, const TpPlan& plan, int rank) {
  if (rank < 0 || rank >= plan.size)
    throw std::invalid_argument("shard_weights: rank " + std::to_string(rank) + " outside [0, " +
                                std::to_string(plan.size) + ")");
  const ModelConfig& c = w.config;
  const int64_t hd = c.head_dim;
  const int64_t q0 = plan.first_head(rank) * hd, nq = int64_t(plan.n_heads) * hd;
  const int64_t k0 = plan.first_kv_head(rank) * hd, nk = int64_t(plan.n_kv_heads) * hd;
  const int64_t h0 = plan.first_hidden(rank), nh = plan.hidden;
  const int64_t v0 = plan.first_vocab(rank), nv = plan.vocab;

  ModelWeights s;
  s.config = c;
  s.config.n_heads = plan.n_heads;
  s.config.n_kv_heads = plan.n_kv_heads;
  s.config.hidden_dim = plan.hidden;
  s.config.vocab_size = plan.vocab;
  s.config.name = c.name + " (tensor-parallel rank " + std::to_string(rank) + " of " + std::to_string(plan.size) + ")";
  s.storage = w.storage;
  s.tok_embeddings = row_slice(w.tok_embeddings, v0, nv);
  s.lm_head = w.lm_head.data == w.tok_embeddings.data ? s.tok_embeddings : row_slice(w.lm_head, v0, nv);
  s.final_norm = w.final_norm;
  s.layers.reserve(w.layers.size());
  for (const auto& l : w.layers) {
    ModelWeights::Layer o;
    o.attn_norm = l.attn_norm;
    o.wq = row_slice(l.wq, q0, nq);
    o.wk = row_slice(l.wk, k0, nk);
    o.wv = row_slice(l.wv, k0, nk);
    o.wo = col_slice(l.wo, q0, nq, s.storage);
    o.ffn_norm = l.ffn_norm;
    o.w_gate = row_slice(l.w_gate, h0, nh);
    o.w_up = row_slice(l.w_up, h0, nh);
    o.w_down = col_slice(l.w_down, h0, nh, s.storage);
    s.layers.push_back(std::move(o));
  }
  return s;
}

}  // namespace engine::parallel
