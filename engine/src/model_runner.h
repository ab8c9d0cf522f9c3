// Turns a scheduled batch of sequences into the backend's flat StepBatch and runs it. It sees sequences,
// never the scheduler. Buffers are reused across steps.
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

  /// Fills step_batch() from `batch`: each sequence's tokens [num_computed, num_computed + num_tokens) at
  /// those positions, its block table, want_logits where the chunk reaches its last known token.
  const StepBatch& prepare(const ScheduledBatch& batch);

  /// Runs one step. need_logits: Backend::forward, and logits_row(r) is the raw row of the r-th
  /// want_logits sequence; otherwise Backend::forward_argmax and only argmax_ids() is filled.
  void run(const ScheduledBatch& batch, bool need_logits);

  int num_rows() const { return step_.num_logits(); }
  std::span<const float> logits_row(int r) const {
    return {logits_.data() + static_cast<size_t>(r) * vocab_size_, static_cast<size_t>(vocab_size_)};
  }
  const std::vector<int32_t>& argmax_ids() const { return ids_; }
  const StepBatch& step_batch() const { return step_; }

 private:
  Backend& backend_;
  int vocab_size_;
  int block_size_;
  StepBatch step_;
  std::vector<float> logits_;  ///< [num_rows, vocab]
  std::vector<int32_t> ids_;   ///< [num_rows] (forward_argmax only)
};

}  // namespace engine
