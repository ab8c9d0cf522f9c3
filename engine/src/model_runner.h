// Runs one scheduled batch through the backend and chooses each sequence's next token: the forced token
// under teacher forcing, a draw with the sequence's own RNG when it samples (temperature > 0), else the
// argmax. It sees sequences, never the scheduler. Full logits rows [vocab] cross back from the backend only
// when a step needs them (a capture or a sampled choice); otherwise only argmax ids do. Buffers are reused
// across steps.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "scheduler/scheduler.h"

namespace engine {

class ModelRunner {
 public:
  ModelRunner(Backend& backend, int vocab_size, int block_size);

  /// Fills the backend's StepBatch from `batch`: each sequence's tokens [num_computed, num_computed +
  /// num_tokens) at those positions, its block table, want_logits where the chunk reaches its last known token.
  const StepBatch& prepare(const ScheduledBatch& batch);

  /// Runs one step. Returns [batch.seqs.size()] tokens: the chosen token of each want_logits sequence, -1
  /// for a prompt chunk short of its end. Advances the RNG of each sequence that sampled. Valid until the
  /// next run(). Throws what the backend throws.
  std::span<const int32_t> run(const ScheduledBatch& batch);

  /// The raw logits row [vocab] this step computed for batch.seqs[i]; empty when it computed only argmax
  /// ids or batch.seqs[i] wanted no token. Valid until the next run().
  std::span<const float> logits(size_t i) const;

 private:
  /// Whether some want_logits sequence needs its full row: its step is captured, or it samples unforced.
  static bool needs_logits_rows(const ScheduledBatch& batch);

  Backend& backend_;
  int vocab_size_;
  int block_size_;
  StepBatch step_;
  bool have_rows_ = false;     ///< this step ran Backend::forward (logits_ holds rows), not forward_argmax
  std::vector<float> logits_;  ///< [num_logits, vocab] when have_rows_
  std::vector<int32_t> ids_;   ///< [num_logits] argmax ids when !have_rows_
  std::vector<int> row_;       ///< [batch.seqs.size()] row of each sequence in logits_/ids_, -1 if none
  std::vector<int32_t> tokens_;  ///< [batch.seqs.size()] what run() returns
};

}  // namespace engine
