// Datasets that need no file: `--dataset random` (vLLM's random dataset: prompts of --input-len tokens and
// outputs of --output-len tokens, each length drawn uniformly within ±range-ratio of it) and `--dataset
// prefix` (vLLM's prefix repetition: --num-prefixes groups whose prompts share a --prefix-len-token prefix,
// the workload that shows prefix caching). Every record is a conversation of --turns turns (each turn a new
// random user message; for prefix data the first carries the group's prefix), so --multi-turn works on them
// too. Prompt texts tokenize to exactly the drawn length (loadgen/workload/random_prompt.h).
#pragma once

#include <cstdint>

#include "common/enum_names.h"
#include "loadgen/workload/dataset.h"

namespace engine { class Tokenizer; }

namespace loadgen {

enum class SyntheticKind { kRandom, kPrefix };
inline constexpr auto kSyntheticKindNames = common::enum_names<SyntheticKind>(
    {{SyntheticKind::kRandom, "random"}, {SyntheticKind::kPrefix, "prefix"}});
inline const char* to_string(SyntheticKind k) { return kSyntheticKindNames.name(k); }

struct SyntheticOptions {
  SyntheticKind kind = SyntheticKind::kRandom;
  int input_len = 1024;       ///< prompt tokens (without bos); prefix data: prefix + suffix
  int output_len = 128;       ///< generated tokens
  double range_ratio = 0.0;   ///< lengths uniform in [len·(1-r), len·(1+r)], 0 <= r < 1
  int num_prefixes = 1;       ///< prefix data: groups, each with its own prefix
  int prefix_len = 0;         ///< prefix data: tokens of each group's shared prefix (< input_len)
  int turns = 1;              ///< turns per conversation
};

/// Checks the options; throws std::invalid_argument naming the option (--input-len, --output-len,
/// --range-ratio, --num-prefixes, --prefix-len, --turns).
void validate(const SyntheticOptions& options);

/// `records` conversations, seeded by `seed`; record i of prefix data is in group i % num_prefixes. Throws
/// std::invalid_argument for bad options or a tokenizer without ordinary pieces.
Dataset make_synthetic_dataset(const SyntheticOptions& options, int64_t records, uint64_t seed,
                               const engine::Tokenizer& tokenizer);

}  // namespace loadgen
