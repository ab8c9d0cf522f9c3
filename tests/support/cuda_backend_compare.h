// Test helpers for whole-model checks: SeqPlan builds StepBatches for a few sequences over a shuffled
// KV block pool (gaps, any order), and compare_with_cpu runs the same steps through the CPU and CUDA
// backends and counts agreement (acc_allclose's rule: |cuda - cpu| <= atol + rtol * |cpu|; 2e-2 each for
// the bf16 mode, 1e-4 for the f32 mode).
#pragma once

#ifdef LLM_HAVE_CUDA
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace cuda_test {

inline std::vector<int32_t> random_tokens(int n, int vocab, std::mt19937_64& rng) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(3 + rng() % (vocab - 3));
  return t;
}

class SeqPlan {
 public:
  SeqPlan(int num_blocks, int block_size, std::mt19937_64& rng) : bs_(block_size), pool_(num_blocks) {
    std::iota(pool_.begin(), pool_.end(), 0);
    std::shuffle(pool_.begin(), pool_.end(), rng);
  }
  int add(std::vector<int32_t> prompt) {
    seqs_.push_back({std::move(prompt), {}, 0});
    return int(seqs_.size()) - 1;
  }
  /// Logits are wanted when the part reaches the last known token of the sequence.
  bool wants_logits(int s, int n) const { return seqs_[s].done + n == int(seqs_[s].tokens.size()); }
  /// Tokens in the cache once the pending part of `s` ran (what a reference recomputes).
  std::vector<int32_t> context(int s) const {
    const Seq& q = seqs_[s];
    return {q.tokens.begin(), q.tokens.begin() + q.done + pending_[s]};
  }
  /// One step over parts (sequence, new tokens). Allocates blocks; does not advance the sequences.
  engine::StepBatch step(const std::vector<std::pair<int, int>>& parts) {
    engine::StepBatch b;
    pending_.assign(seqs_.size(), 0);
    for (const auto& [s, n] : parts) {
      Seq& q = seqs_[s];
      if (q.done + n > int(q.tokens.size())) throw std::logic_error("SeqPlan: step past the known tokens");
      const int ctx = q.done + n;
      while (int(q.blocks.size()) * bs_ < ctx) {
        if (next_ >= pool_.size()) throw std::logic_error("SeqPlan: block pool exhausted");
        q.blocks.push_back(pool_[next_++]);
      }
      engine::SeqSlice sl;
      sl.query_start = b.num_tokens();
      sl.query_len = n;
      sl.context_len = ctx;
      sl.block_table_start = int(b.block_tables.size());
      sl.num_blocks = int(q.blocks.size());
      sl.want_logits = wants_logits(s, n);
      b.block_tables.insert(b.block_tables.end(), q.blocks.begin(), q.blocks.end());
      for (int j = 0; j < n; ++j) {
        b.tokens.push_back(q.tokens[q.done + j]);
        b.positions.push_back(q.done + j);
      }
      b.seqs.push_back(sl);
      pending_[s] = n;
    }
    return b;
  }
  /// Advances the sequences of `parts`, appending ids (one per part that wanted logits, in order).
  void commit(const std::vector<std::pair<int, int>>& parts, const std::vector<int32_t>& ids) {
    size_t r = 0;
    for (const auto& [s, n] : parts) {
      const bool wanted = wants_logits(s, n);
      seqs_[s].done += n;
      if (wanted) seqs_[s].tokens.push_back(ids.at(r++));
    }
  }

 private:
  struct Seq {
    std::vector<int32_t> tokens;
    std::vector<int32_t> blocks;
    int done = 0;  // tokens already in the cache
  };
  int bs_;
  std::vector<int32_t> pool_;
  size_t next_ = 0;
  std::vector<Seq> seqs_;
  std::vector<int> pending_;
};

struct CompareStats {
  int rows = 0;
  double max_abs = 0;
  double frac_close = 0;   ///< elements with |cuda - cpu| <= tol + tol * |cpu|
  int top1_agree = 0;
  double max_row_rel = 0;  ///< max over rows of ||cuda - cpu|| / ||cpu||
};

/// Prefill of random prompts of the given lengths, then decode steps fed with the CPU's argmax;
/// compares every step's logits. The CPU backend runs in f32; the CUDA one with `cuda_dtype` (auto: bf16,
/// or f32). `tol` is acc_allclose's rtol = atol for frac_close.
inline CompareStats compare_with_cpu(const engine::ModelWeights& w, const std::vector<int>& prompt_lens,
                                     int decode_steps, int block_size, uint64_t seed,
                                     const std::string& cuda_dtype = "auto", double tol = 2e-2) {
  engine::EngineConfig cc, gc;
  cc.backend = engine::BackendKind::kCpu;
  gc.backend = engine::BackendKind::kCuda;
  gc.dtype = engine::parse_compute_dtype(cuda_dtype, "dtype");
  gc.max_num_seqs = cc.max_num_seqs = 8;
  gc.block_size = cc.block_size = block_size;
  auto cpu = engine::make_backend(cc), gpu = engine::make_backend(gc);
  cpu->load(w);
  gpu->load(w);
  int blocks = 4;
  for (int L : prompt_lens) blocks += 2 * ((L + decode_steps + block_size - 1) / block_size);
  cpu->allocate_kv_cache(blocks, block_size);
  gpu->allocate_kv_cache(blocks, block_size);
  std::mt19937_64 rng(seed);
  const int V = w.config.vocab_size;
  SeqPlan plan(blocks, block_size, rng);
  std::vector<std::pair<int, int>> prefill, decode;
  for (int L : prompt_lens) {
    const int s = plan.add(random_tokens(L, V, rng));
    prefill.push_back({s, L});
    decode.push_back({s, 1});
  }
  CompareStats st;
  int64_t close = 0, total = 0;
  for (int step = 0; step <= decode_steps; ++step) {
    const auto& parts = step == 0 ? prefill : decode;
    const engine::StepBatch b = plan.step(parts);
    const int rows = b.num_logits();
    std::vector<float> lc(size_t(rows) * V), lg(size_t(rows) * V);
    cpu->forward(b, lc.data());
    gpu->forward(b, lg.data());
    std::vector<int32_t> ids(rows);
    for (int r = 0; r < rows; ++r) {
      const float* c = lc.data() + size_t(r) * V;
      const float* g = lg.data() + size_t(r) * V;
      double num = 0, den = 0;
      for (int j = 0; j < V; ++j) {
        num += (double(g[j]) - c[j]) * (double(g[j]) - c[j]);
        den += double(c[j]) * c[j];
        const double d = std::fabs(double(g[j]) - c[j]);
        st.max_abs = std::isfinite(d) ? std::max(st.max_abs, d) : INFINITY;
        close += d <= tol + tol * std::fabs(c[j]) ? 1 : 0;
      }
      total += V;
      st.max_row_rel = std::max(st.max_row_rel, std::isfinite(num) ? std::sqrt(num / std::max(den, 1e-300)) : INFINITY);
      ids[r] = int32_t(std::max_element(c, c + V) - c);
      st.top1_agree += ids[r] == int32_t(std::max_element(g, g + V) - g) ? 1 : 0;
      ++st.rows;
    }
    plan.commit(parts, ids);
  }
  st.frac_close = total ? double(close) / double(total) : 0;
  return st;
}

}  // namespace cuda_test
#endif  // LLM_HAVE_CUDA
