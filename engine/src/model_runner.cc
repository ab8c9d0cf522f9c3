#include "model_runner.h"

#include <stdexcept>
#include <string>

#include "kv/block_manager.h"
#include "sampling/sampler.h"

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
    s.num_blocks = static_cast<int>(blocks_for(s.context_len, block_size_));
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

bool ModelRunner::needs_logits_rows(const ScheduledBatch& batch) {
  for (const ScheduledSeq& e : batch.seqs) {
    if (!e.want_logits) continue;
    const Sequence& s = *e.seq;
    const int step = s.next_step();
    const bool forced = step < static_cast<int>(s.forced_tokens.size());
    if (step < s.capture_logits_steps || (!forced && s.sampling.temperature > 0.0f)) return true;
  }
  return false;
}

std::span<const int32_t> ModelRunner::run(const ScheduledBatch& batch) {
  // Cleared first: after a backend failure logits() has nothing stale to give.
  have_rows_ = false;
  row_.assign(batch.seqs.size(), -1);
  tokens_.assign(batch.seqs.size(), -1);
  prepare(batch);
  const int rows = step_.num_logits();
  const bool full_rows = needs_logits_rows(batch);
  if (full_rows) {
    logits_.resize(static_cast<size_t>(rows) * vocab_size_);
    backend_.forward(step_, logits_.data());
  } else {
    ids_.resize(rows);
    backend_.forward_argmax(step_, ids_.data());
  }
  have_rows_ = full_rows;

  int r = 0;
  for (size_t i = 0; i < batch.seqs.size(); ++i) {
    if (!batch.seqs[i].want_logits) continue;
    row_[i] = r;
    Sequence& s = *batch.seqs[i].seq;
    const int step = s.next_step();
    if (step < static_cast<int>(s.forced_tokens.size())) tokens_[i] = s.forced_tokens[step];
    else if (have_rows_) tokens_[i] = Sampler::sample(logits(i), s.sampling, s.rng);  // argmax when temperature is 0
    else tokens_[i] = ids_[r];
    ++r;
  }
  return tokens_;
}

std::span<const float> ModelRunner::logits(size_t i) const {
  if (!have_rows_ || i >= row_.size() || row_[i] < 0) return {};
  return {logits_.data() + static_cast<size_t>(row_[i]) * vocab_size_, static_cast<size_t>(vocab_size_)};
}

}  // namespace engine
