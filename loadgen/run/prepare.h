// The run's first stage: its workload from the resolved configuration (a dataset file or a synthetic one, or
// a --reference file replayed in-process or scored over HTTP), with the notes the summary keeps about it.
#pragma once

#include <cstdint>
#include <ostream>

#include <nlohmann/json.hpp>

#include "loadgen/clients/system_under_test.h"
#include "loadgen/run/run_config.h"
#include "loadgen/workload/workload.h"

namespace loadgen {

/// A workload built from the settings, plus what the summary should say about it (summary.workload_notes).
struct Prepared {
  Workload workload;
  nlohmann::json notes = nlohmann::json::object();
};

/// --dataset (a file, or random/prefix from the tokenizer): num_requests items drawn as the workload options
/// say, each asking for logits or top-K logprobs when the run dumps them. Throws DatasetError or
/// std::invalid_argument naming the file or option.
Prepared prepare_dataset(const RunConfig& c, const SystemUnderTest& sut, int64_t num_requests);

/// --reference BASE.h5: its prompts and tokens, forced in-process; over HTTP the server scores prompt + tokens,
/// or, where it offers no prompt scoring (probed once; said on `log`), nothing is forced. Throws naming the
/// file when its vocabulary differs from the in-process model's.
Prepared prepare_reference(const RunConfig& c, const SystemUnderTest& sut, std::ostream* log);

}  // namespace loadgen
