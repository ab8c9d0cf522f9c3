// The one seam between the engine and the hardware. The model runner hands a backend a flat batch of
// tokens (prefill chunks and decodes mixed); the backend runs the whole Llama forward pass over it, writing
// K/V into the paged cache through each sequence's block table, and returns logits (or argmax ids) for the
// rows asked for. CUDA headers never appear here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"

namespace engine {

/// One sequence's part of a step: tokens[query_start, query_start + query_len) sit at positions
/// context_len - query_len ... context_len - 1 of that sequence.
struct SeqSlice {
  int query_start = 0;
  int query_len = 0;
  int context_len = 0;     ///< tokens in the KV cache after this step (including this step's)
  int block_table_start = 0;  ///< offset into StepBatch::block_tables
  int num_blocks = 0;         ///< blocks covering context_len
  bool want_logits = false;   ///< produce logits for this sequence's last query token
};

struct StepBatch {
  std::vector<int32_t> tokens;        ///< [num_tokens]
  std::vector<int32_t> positions;     ///< [num_tokens]
  std::vector<SeqSlice> seqs;
  std::vector<int32_t> block_tables;  ///< all sequences' block ids, concatenated
  int num_logits() const;             ///< sequences with want_logits
  int num_tokens() const { return static_cast<int>(tokens.size()); }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual std::string dtype() const = 0;
  /// Takes the weights (copying/converting what it needs; `w` may be freed afterwards).
  virtual void load(const ModelWeights& w) = 0;
  /// Bytes one token occupies in the KV cache (all layers, K and V).
  virtual int64_t kv_bytes_per_token() const = 0;
  /// Memory the backend suggests for the KV pool when the user gave no budget.
  virtual int64_t default_kv_budget_bytes() const = 0;
  virtual void allocate_kv_cache(int64_t num_blocks, int block_size) = 0;
  /// Runs the model. `logits` receives [batch.num_logits(), vocab] floats, in the order of the
  /// want_logits sequences in batch.seqs.
  virtual void forward(const StepBatch& batch, float* logits) = 0;
  /// As forward, but only the argmax id of each want_logits row crosses back (GPU backends override).
  virtual void forward_argmax(const StepBatch& batch, int32_t* token_ids);
  /// Columns of forward()'s logits rows (the loaded model's vocabulary); 0 before load(). The default
  /// forward_argmax sizes its host buffer with it. (Addition by the model/CPU-backend work; default keeps
  /// existing backends compiling.)
  virtual int vocab_size() const { return 0; }
};

/// "cpu" or "cuda" (when built with LLM_ENABLE_CUDA). Throws ModelLoadError for an unknown/unbuilt name.
std::unique_ptr<Backend> make_backend(const EngineConfig& config);

}  // namespace engine
