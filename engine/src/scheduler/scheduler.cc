#include "scheduler/scheduler.h"

#include <algorithm>
#include <stdexcept>

#include "scheduler/token_outcome.h"

namespace engine {

namespace {

void check_positive(const char* name, int64_t v) {
  if (v < 1) throw std::invalid_argument(std::string("SchedulerConfig.") + name + " must be >= 1, got " + std::to_string(v));
}

// Removes the sequence `seq` from `q`, returning its owner (null when absent).
std::unique_ptr<Sequence> take_from(std::deque<std::unique_ptr<Sequence>>& q, const Sequence* seq) {
  auto it = std::find_if(q.begin(), q.end(), [&](const auto& p) { return p.get() == seq; });
  if (it == q.end()) return nullptr;
  std::unique_ptr<Sequence> owned = std::move(*it);
  q.erase(it);
  return owned;
}

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config), blocks_(config.num_kv_blocks, config.block_size, config.enable_prefix_caching) {
  check_positive("max_num_seqs", config.max_num_seqs);
  check_positive("max_num_batched_tokens", config.max_num_batched_tokens);
}

void Scheduler::add(std::unique_ptr<Sequence>&& seq) {
  int64_t longest = static_cast<int64_t>(seq->num_prompt_tokens()) + seq->sampling.max_new_tokens;
  if (blocks_.blocks_for(longest) > blocks_.num_blocks())
    throw std::invalid_argument("sequence " + std::to_string(seq->id) + " needs " + std::to_string(longest) +
                                " tokens of KV cache (" + std::to_string(blocks_.blocks_for(longest)) +
                                " blocks) but the pool has " + std::to_string(blocks_.num_blocks()) + " blocks");
  if (!config_.enable_chunked_prefill && longest > config_.max_num_batched_tokens)
    throw std::invalid_argument("sequence " + std::to_string(seq->id) + " may need to prefill " +
                                std::to_string(longest) + " tokens in one step but max_num_batched_tokens is " +
                                std::to_string(config_.max_num_batched_tokens) + " (enable chunked prefill)");
  seq->state = SeqState::kWaiting;
  waiting_.push_back(std::move(seq));
}

void Scheduler::preempt_last_running() {
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  blocks_.free(victim->block_table);
  victim->num_computed_tokens = 0;  // recompute prompt + generated tokens when re-admitted (or hit the cache)
  victim->num_cached_blocks = 0;
  victim->state = SeqState::kWaiting;
  victim->num_preemptions++;
  num_preemptions_++;
  waiting_.push_front(std::move(victim));
}

ScheduledBatch Scheduler::schedule() {
  ScheduledBatch batch;
  int budget = config_.max_num_batched_tokens;
  bool preempted = false;

  // running: decodes (1 token) and prompts still being prefilled (the next chunk), in admission order
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i].get();
    int n = seq->num_uncomputed_tokens();
    if (n > budget && !config_.enable_chunked_prefill) { ++i; continue; }
    n = std::min(n, budget);
    if (n <= 0) { ++i; continue; }
    int64_t need = static_cast<int64_t>(seq->num_computed_tokens) + n;
    bool self_preempted = false;
    while (!blocks_.can_allocate(seq->block_table, need)) {
      preempted = true;
      if (running_.back().get() == seq) self_preempted = true;
      preempt_last_running();
      if (self_preempted) break;
    }
    if (self_preempted) break;  // it was the last running sequence: nothing after it to schedule
    blocks_.allocate(seq->block_table, need);
    batch.seqs.push_back({seq, n, need == seq->num_tokens()});
    batch.num_tokens += n;
    budget -= n;
    ++i;
  }

  // waiting: admit in FCFS order while there is room (not in a step that had to preempt: no thrashing)
  while (!preempted && !waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front().get();  // a waiting sequence holds no block and has computed nothing
    const std::vector<int32_t> hit = cached_prefix(*seq);
    const int cached = static_cast<int>(hit.size()) * config_.block_size;
    int n = seq->num_tokens() - cached;
    if (n > budget && !config_.enable_chunked_prefill) break;
    n = std::min(n, budget);
    int64_t need = static_cast<int64_t>(cached) + n;
    if (!blocks_.can_allocate_with_prefix(hit, need)) break;
    blocks_.take_cached_prefix(seq->block_table, hit);
    blocks_.allocate(seq->block_table, need);
    seq->num_computed_tokens = cached;
    seq->num_cached_blocks = static_cast<int>(hit.size());
    if (config_.enable_prefix_caching) {
      prefix_cache_.queried_tokens += seq->num_tokens();
      prefix_cache_.hit_tokens += cached;
      prefix_cache_.queried_blocks += (seq->num_tokens() - 1) / config_.block_size;
      prefix_cache_.hit_blocks += static_cast<int64_t>(hit.size());
    }
    seq->state = SeqState::kRunning;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    batch.seqs.push_back({seq, n, need == seq->num_tokens()});
    batch.num_tokens += n;
    budget -= n;
  }
  return batch;
}

std::vector<StepOutput> Scheduler::postprocess(const ScheduledBatch& batch, std::span<const int32_t> tokens) {
  if (tokens.size() != batch.seqs.size())
    throw std::logic_error("Scheduler::postprocess: " + std::to_string(tokens.size()) + " tokens for " +
                           std::to_string(batch.seqs.size()) + " scheduled sequences");
  std::vector<StepOutput> outputs;
  for (size_t i = 0; i < batch.seqs.size(); ++i) {
    const ScheduledSeq& e = batch.seqs[i];
    Sequence* seq = e.seq;
    if (seq->is_finished()) continue;
    seq->num_computed_tokens += e.num_tokens;
    if (config_.enable_prefix_caching) cache_computed_blocks(*seq);
    if (!e.want_logits) continue;  // a prompt chunk short of the end: nothing sampled yet
    TokenOutcome outcome = append_token(*seq, tokens[i], config_.eos_id);
    outputs.push_back({seq, static_cast<int>(i), tokens[i], seq->num_output_tokens() - 1, std::move(outcome.text)});
    if (outcome.finish) finish(seq, *outcome.finish);
  }
  return outputs;
}

FullBlocks Scheduler::full_blocks(Sequence& seq, int first, int last) {
  const int bs = config_.block_size;
  // Tokens from the first block whose key is missing, or from `first` when all keys up to it are known.
  const int from = std::min(first, static_cast<int>(seq.block_hashes.size()));
  token_scratch_.resize(static_cast<size_t>(last - from) * bs);
  for (int p = from * bs; p < last * bs; ++p) token_scratch_[p - from * bs] = seq.token_at(p);
  const std::span<const int32_t> tokens(token_scratch_);
  for (int i = static_cast<int>(seq.block_hashes.size()); i < last; ++i)
    seq.block_hashes.push_back(hash_block(i == 0 ? kRootBlockHash : seq.block_hashes[i - 1],
                                          tokens.subspan(static_cast<size_t>(i - from) * bs, bs)));
  return {static_cast<size_t>(first), std::span<const BlockHash>(seq.block_hashes).subspan(first, last - first),
          tokens.subspan(static_cast<size_t>(first - from) * bs)};
}

std::vector<int32_t> Scheduler::cached_prefix(Sequence& seq) {
  if (!config_.enable_prefix_caching) return {};
  // Full blocks short of the last token: at least that token is computed, so the step yields its logits,
  // and its K/V go into a block of the sequence's own.
  const int max_blocks = (seq.num_tokens() - 1) / config_.block_size;
  return blocks_.find_cached_prefix(full_blocks(seq, 0, max_blocks));
}

void Scheduler::cache_computed_blocks(Sequence& seq) {
  const int full = seq.num_computed_tokens / config_.block_size;
  if (full <= seq.num_cached_blocks) return;
  blocks_.cache_full_blocks(seq.block_table, full_blocks(seq, seq.num_cached_blocks, full));
  seq.num_cached_blocks = full;
}

void Scheduler::finish(Sequence* seq, FinishReason reason, std::string message) {
  std::unique_ptr<Sequence> owned = take_from(running_, seq);
  if (!owned) owned = take_from(waiting_, seq);
  if (!owned) throw std::logic_error("Scheduler::finish: sequence " + std::to_string(seq->id) + " is not queued");
  blocks_.free(owned->block_table);
  owned->state = SeqState::kFinished;
  owned->finish_reason = reason;
  owned->finish_message = std::move(message);
  finished_.push_back(std::move(owned));
}

Sequence* Scheduler::find(uint64_t id) {
  for (auto* q : {&running_, &waiting_})
    for (auto& p : *q)
      if (p->id == id) return p.get();
  return nullptr;
}

std::vector<std::unique_ptr<Sequence>> Scheduler::take_finished() {
  std::vector<std::unique_ptr<Sequence>> out;
  out.swap(finished_);
  return out;
}

std::vector<Sequence*> Scheduler::unfinished() const {
  std::vector<Sequence*> out;
  for (auto& p : running_) out.push_back(p.get());
  for (auto& p : waiting_) out.push_back(p.get());
  return out;
}

}  // namespace engine
