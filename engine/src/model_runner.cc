#include "model_runner.h"

#include <stdexcept>
#include <string>

namespace engine {

ModelRunner::ModelRunner(Backend& backend, int vocab_size, int block_size)
    : backend_(backend), vocab_size_(vocab_size), block_size_(block_size) {}

const StepBatch& ModelRunner::prepare(const ScheduledBatch& batch) {
  step_.tokens.clear();
  step_.positions.clear();
  step_.seqs.clear();
  step_.block_tables.clear();
  for (const ScheduledSeq& e : batch.seqs) {
    const Sequence& seq = *e.seq;
    SeqSlice s;
    s.query_start = step_.num_tokens();
    s.query_len = e.num_tokens;
    s.context_len = seq.num_computed_tokens + e.num_tokens;
    s.block_table_start = static_cast<int>(step_.block_tables.size());
    s.num_blocks = (s.context_len + block_size_ - 1) / block_size_;
    s.want_logits = e.want_logits;
    if (s.num_blocks > static_cast<int>(seq.block_table.size()))
      throw std::logic_error("ModelRunner: sequence " + std::to_string(seq.id) + " has " +
                             std::to_string(seq.block_table.size()) + " blocks for " +
                             std::to_string(s.context_len) + " tokens");
    for (int p = seq.num_computed_tokens; p < s.context_len; ++p) {
      step_.tokens.push_back(seq.token_at(p));
      step_.positions.push_back(p);
    }
    step_.block_tables.insert(step_.block_tables.end(), seq.block_table.begin(),
                              seq.block_table.begin() + s.num_blocks);
    step_.seqs.push_back(s);
  }
  return step_;
}

void ModelRunner::run(const ScheduledBatch& batch, bool need_logits) {
  prepare(batch);
  const int rows = step_.num_logits();
  if (need_logits) {
    logits_.resize(static_cast<size_t>(rows) * vocab_size_);
    ids_.clear();
    backend_.forward(step_, logits_.data());
  } else {
    ids_.resize(rows);
    backend_.forward_argmax(step_, ids_.data());
  }
}

}  // namespace engine
