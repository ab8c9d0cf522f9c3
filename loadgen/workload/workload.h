// The run's requests: N samples drawn from the dataset with a seed, prompts rendered, lengths measured with
// the model's tokenizer, too-long requests set aside (counted, never silently), optionally sorted by length.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/enum_names.h"
#include "loadgen/clients/client.h"
#include "loadgen/workload/dataset.h"
#include "loadgen/workload/prompt.h"

namespace loadgen {

enum class Reorder { kNone, kLengthAsc, kLengthDesc };
inline constexpr auto kReorderNames = common::enum_names<Reorder>(
    {{Reorder::kNone, "none"}, {Reorder::kLengthAsc, "length-asc"}, {Reorder::kLengthDesc, "length-desc"}});
inline const char* to_string(Reorder r) { return kReorderNames.name(r); }


/// Tokenizes text the way the measured model does (add_bos for prompts).
using TokenizeFn = std::function<std::vector<int32_t>(const std::string& text, bool add_bos)>;

struct WorkloadOptions {
  int64_t num_requests = 0;       ///< N (> 0)
  uint64_t sample_seed = 0;       ///< seed of the sample-choice stream only
  PromptTemplate prompt_template = PromptTemplate::kAlpaca;
  int max_new_tokens = 512;       ///< clamp of the reference output's token length
  int output_len = 0;             ///< > 0: every request generates exactly this many tokens
  bool ignore_eos = true;
  int max_model_len = 0;          ///< prompt + output longer than this is set aside; 0: no limit
  Reorder reorder = Reorder::kNone;
  bool send_prompt_tokens = false;  ///< fill WorkItem::prompt_tokens (in-process: the engine skips tokenizing)
  uint64_t sampling_seed = 0;     ///< base of the per-request sampling seeds (seed + sample id)
  float temperature = 0.0f;
};

struct TooLong {
  int64_t sample_id;
  int prompt_tokens;
  int output_tokens;
};

struct Workload {
  std::vector<WorkItem> items;       ///< in send order, index = position
  std::vector<int> prompt_lens;      ///< tokens of each item's prompt (with bos)
  std::vector<TooLong> too_long;     ///< drawn but set aside: longer than max_model_len
  int64_t requested = 0;             ///< N asked for (items.size() + too_long.size())
};

/// Indices into the dataset for N requests: a seeded permutation, cycled when N exceeds the dataset.
std::vector<size_t> choose_samples(size_t dataset_size, int64_t n, uint64_t seed);

/// Builds the workload. `tokenize` is called once per distinct chosen record.
Workload build_workload(const Dataset& ds, const WorkloadOptions& options, const TokenizeFn& tokenize);

/// Stable sort of the items by prompt + output length (indices renumbered 0..N-1 afterwards).
void reorder_workload(Workload* w, Reorder order);

}  // namespace loadgen
