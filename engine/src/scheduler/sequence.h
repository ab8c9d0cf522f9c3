// One request as the engine tracks it: its tokens, how many of them are in the KV cache, its block table and
// where its events go. The scheduler moves it between the waiting and running queues; the block manager
// changes only its block table; the model runner reads its tokens and draws its samples from its rng;
// append_token (scheduler/token_outcome.h) adds each generated token and runs its text side.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "kv/block_manager.h"
#include "scheduler/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace engine {

enum class SeqState { kWaiting, kRunning, kFinished };

struct Sequence {
  uint64_t id = 0;
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> output_tokens;  ///< generated so far (sampled or forced), in order
  std::vector<int32_t> forced_tokens;  ///< teacher forcing: step i emits forced_tokens[i]
  SamplingParams sampling;
  int capture_logits_steps = 0;        ///< deliver raw logits of steps [0, capture_logits_steps)
  std::string tag;

  SeqState state = SeqState::kWaiting;
  int num_computed_tokens = 0;         ///< tokens whose K/V are in the cache (prompt first, then outputs)
  BlockTable block_table;
  // Prefix caching (EngineConfig::enable_prefix_caching): the keys of its full blocks, computed as they are
  // needed and kept across preemption (tokens never change), and how many leading blocks of block_table the
  // cache has seen (found there at admission, or offered to it once computed).
  std::vector<BlockHash> block_hashes;
  int num_cached_blocks = 0;
  uint64_t arrival = 0;                ///< submission order (FCFS tie-break, logs)
  Clock::time_point arrival_time{};
  int num_preemptions = 0;

  FinishReason finish_reason = FinishReason::kLength;
  std::string finish_message;

  std::shared_ptr<RequestSink> sink;
  std::unique_ptr<StreamDecoder> decoder;  ///< token ids -> text deltas (null in scheduler unit tests)
  StopMatcher stop_matcher;                ///< holds back text that may be the start of a stop string
  std::mt19937_64 rng;                     ///< per-request sampling stream, seeded from sampling.seed

  int num_prompt_tokens() const { return static_cast<int>(prompt_tokens.size()); }
  int num_output_tokens() const { return static_cast<int>(output_tokens.size()); }
  /// Tokens known so far: prompt + generated. A preempted sequence recomputes all of them.
  int num_tokens() const { return num_prompt_tokens() + num_output_tokens(); }
  /// Known tokens not yet in the KV cache (1 for a decoding sequence).
  int num_uncomputed_tokens() const { return num_tokens() - num_computed_tokens; }
  int32_t token_at(int i) const {
    return i < num_prompt_tokens() ? prompt_tokens[i] : output_tokens[i - num_prompt_tokens()];
  }
  /// The generation step the next logits row is for (0 for the first generated token).
  int next_step() const { return num_output_tokens(); }
  bool is_finished() const { return state == SeqState::kFinished; }
};

}  // namespace engine
