// Iteration-level continuous batching (FCFS). Each step the scheduler picks which sequences run and how many
// of their tokens: running sequences first (one token each when decoding, the next chunk of a prompt being
// prefilled), then waiting sequences are admitted while the batch has room. It owns the BlockManager: when a
// running sequence cannot get the block it needs, the most recently admitted running sequence is preempted
// (its blocks freed, itself put back at the front of the waiting queue to recompute later).
// With prefix caching a sequence is admitted with the longest run of its full blocks already cached (short
// of its last token, whose logits the step must compute), so its prefill starts after them; blocks it
// computes are offered to the cache after each step. A preempted or finished sequence's cached blocks wait
// in the block manager's LRU, where its readmission (or anyone) can hit them again.
// Not thread-safe: the engine thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kv/block_manager.h"
#include "scheduler/sequence.h"

namespace engine {

struct SchedulerConfig {
  int max_num_seqs = 64;              ///< most running sequences (the decode batch size)
  int max_num_batched_tokens = 2048;  ///< most tokens fed to the model in one step
  bool enable_chunked_prefill = true; ///< false: a prompt is prefilled whole in one step or waits
  int eos_id = 2;
  int64_t num_kv_blocks = 1024;
  int block_size = 16;
  bool enable_prefix_caching = false; ///< share cached full blocks between sequences (BlockManager)
};

/// What the prefix cache found for the sequences admitted so far (vLLM's prefix_cache_queries / _hits).
/// All zero when prefix caching is off.
struct PrefixCacheCounters {
  int64_t queried_tokens = 0;  ///< tokens of the admitted sequences (prompt, plus outputs when readmitted)
  int64_t hit_tokens = 0;      ///< of those, found cached: their prefill was skipped
  int64_t queried_blocks = 0;  ///< full blocks looked up (those before each sequence's last token)
  int64_t hit_blocks = 0;      ///< of those, found cached
};

/// One sequence's share of a step: tokens [num_computed_tokens, num_computed_tokens + num_tokens).
struct ScheduledSeq {
  Sequence* seq = nullptr;
  int num_tokens = 0;
  bool want_logits = false;  ///< the chunk reaches the last known token: this step yields the next token
};

struct ScheduledBatch {
  std::vector<ScheduledSeq> seqs;
  int num_tokens = 0;
  bool empty() const { return seqs.empty(); }
};

/// A token a sequence produced in a step, ready for the engine to deliver to its sink.
struct StepOutput {
  Sequence* seq = nullptr;  ///< valid until take_finished() (it may have finished in this step)
  int batch_index = 0;      ///< its entry in batch.seqs (the runner's logits for it are keyed by it)
  int32_t token = 0;
  int index = 0;            ///< 0 for the first generated token
  std::string text;         ///< text delta (stop strings held back or cut)
};

class Scheduler {
 public:
  /// Throws std::invalid_argument for a non-positive setting.
  explicit Scheduler(const SchedulerConfig& config);

  /// Queues a sequence at the back of the waiting queue. Throws std::invalid_argument if it could never be
  /// scheduled (its prompt + max_new_tokens needs more blocks than the pool has, or, without chunked
  /// prefill, more tokens than max_num_batched_tokens); `seq` then still owns it.
  void add(std::unique_ptr<Sequence>&& seq);

  /// Picks this step's batch and allocates the blocks it needs (preempting if it must).
  ScheduledBatch schedule();
  /// After the model ran: tokens[i] is the token chosen for batch.seqs[i] (read only where want_logits).
  /// Advances num_computed_tokens, appends each token with append_token (text side and finish decision)
  /// and finishes the sequences it ends. Returns the produced tokens in batch order.
  std::vector<StepOutput> postprocess(const ScheduledBatch& batch, std::span<const int32_t> tokens);

  /// Ends a waiting or running sequence: frees its blocks and moves it to the finished list.
  void finish(Sequence* seq, FinishReason reason, std::string message = {});
  /// The unfinished sequence with this id, or nullptr.
  Sequence* find(uint64_t id);
  /// Finished sequences since the last call, in the order they finished (the caller sends on_finish).
  std::vector<std::unique_ptr<Sequence>> take_finished();

  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  const PrefixCacheCounters& prefix_cache_counters() const { return prefix_cache_; }
  const BlockManager& block_manager() const { return blocks_; }
  /// BlockManager::reset_prefix_cache: running sequences keep their blocks; no later admission hits them.
  int64_t reset_prefix_cache() { return blocks_.reset_prefix_cache(); }
  const SchedulerConfig& config() const { return config_; }
  /// All unfinished sequences, running first (for aborting everything at shutdown).
  std::vector<Sequence*> unfinished() const;

 private:
  void preempt_last_running();
  /// seq's full blocks [first, last), their keys computed into seq.block_hashes where missing; the tokens
  /// are a view of token_scratch_ (valid until the next call).
  FullBlocks full_blocks(Sequence& seq, int first, int last);
  /// The cached blocks to admit waiting seq with: the longest cached run of its full blocks before its last
  /// token (empty when prefix caching is off). Changes no block.
  std::vector<int32_t> cached_prefix(Sequence& seq);
  /// Offers seq's newly computed full blocks to the cache.
  void cache_computed_blocks(Sequence& seq);

  SchedulerConfig config_;
  BlockManager blocks_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::deque<std::unique_ptr<Sequence>> running_;  ///< in admission order: back = most recently admitted
  std::vector<std::unique_ptr<Sequence>> finished_;
  int64_t num_preemptions_ = 0;
  PrefixCacheCounters prefix_cache_;
  std::vector<int32_t> token_scratch_;
};

}  // namespace engine
