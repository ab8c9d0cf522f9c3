// --reference BASE.h5: the workload becomes BASE's requests, for teacher forcing. Each request sends BASE's
// prompt tokens, forces BASE's tokens, generates exactly n_steps and captures n_steps of logits, so the
// new file holds logits for exactly BASE's contexts.
#pragma once

#include <string>

#include "loadgen/workload/workload.h"

namespace loadgen {

struct ReferenceWorkload {
  Workload workload;
  std::string model;   ///< BASE's model attribute
  int vocab_size = 0;
};

/// `n` = 0: all requests in id order; else n of them chosen with `sample_seed` (n must not exceed BASE's
/// count: a logits file holds each id once). Throws accuracy::LogitsFileError / std::invalid_argument.
ReferenceWorkload load_reference_workload(const std::string& path, int64_t n, uint64_t sample_seed, Reorder order);

}  // namespace loadgen
