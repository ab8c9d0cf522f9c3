// The run's requests: N samples drawn from the dataset with a seed, prompts rendered, lengths measured with
// the model's tokenizer, too-long records set aside (counted, never silently: by default excluded before the
// draw, so N requests are still sent), optionally sorted by length. With multi_turn each drawn record is a
// session and every one of its turns a request (the later turns' prompts are completed at run time, from the
// answers: loadgen/run/session_dispatcher.h).
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


/// What happens to a record whose prompt + output exceed max_model_len: excluded before the draw (the draw
/// goes on to the next record, so N requests are sent), or skipped after it (fewer requests than N).
enum class TooLongPolicy { kExclude, kSkip };
inline constexpr auto kTooLongPolicyNames = common::enum_names<TooLongPolicy>(
    {{TooLongPolicy::kExclude, "exclude"}, {TooLongPolicy::kSkip, "skip"}});
inline const char* to_string(TooLongPolicy p) { return kTooLongPolicyNames.name(p); }

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
  TooLongPolicy too_long = TooLongPolicy::kExclude;
  bool multi_turn = false;        ///< every turn of a conversation record is a request of its session
  Reorder reorder = Reorder::kNone;
  bool send_prompt_tokens = false;  ///< fill WorkItem::prompt_tokens (in-process: the engine skips tokenizing)
  uint64_t sampling_seed = 0;     ///< base of the per-request sampling seeds (seed + sample id)
  float temperature = 0.0f;
};

struct TooLong {
  int64_t sample_id;
  int prompt_tokens;                 ///< multi-turn: the turn's estimated whole history
  int output_tokens;
  int turn = 0;                      ///< multi-turn: the first turn that does not fit (later ones are cut too)
};

struct Workload {
  std::vector<WorkItem> items;       ///< in send order, index = position
  std::vector<int> prompt_lens;      ///< tokens of each item's prompt (with bos); a later turn's: an estimate
  std::vector<TooLong> too_long;     ///< set aside: longer than max_model_len (excluded, or skipped)
  TooLongPolicy too_long_policy = TooLongPolicy::kExclude;
  int64_t requested = 0;             ///< N asked for (sessions with multi_turn)
  /// multi_turn: the item indices of each session, in turn order (items are grouped by session); else empty.
  std::vector<std::vector<size_t>> sessions;
  int64_t turns_cut = 0;             ///< multi_turn: later turns left out because their history would not fit
};

/// Indices into the dataset for N requests: a seeded permutation, cycled when N exceeds the dataset.
std::vector<size_t> choose_samples(size_t dataset_size, int64_t n, uint64_t seed);

/// Builds the workload. `tokenize` is called once per distinct record it looks at (under kExclude also the
/// too-long records the draw passes over).
Workload build_workload(const Dataset& ds, const WorkloadOptions& options, const TokenizeFn& tokenize);

/// Stable sort of the items by prompt + output length (indices renumbered 0..N-1 afterwards).
void reorder_workload(Workload* w, Reorder order);

/// Sets each item's logits_id from its sample id, turn and how many times the same (sample, turn) came
/// before it in `items` (build_workload calls it before any reordering, so the ids do not depend on it).
void assign_logits_ids(std::vector<WorkItem>& items);

}  // namespace loadgen
