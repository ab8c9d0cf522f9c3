// One row of timeslices.csv (--timeslice, default 10 s): what happened in [start_s, end_s) of the run. Requests
// started = sent in the slice; ended = ended in it (any status); output tok/s = tokens streamed in it / its
// width; TTFT / TPOT percentiles over the ok requests that ended in it (NaN, an empty cell, when none did).
#pragma once

#include <cstdint>
#include <limits>

namespace results {

struct Timeslice {
  double start_s = 0, end_s = 0;
  int64_t started = 0, ended = 0;
  double output_tokens_per_s = 0;
  double ttft_p50_ms = std::numeric_limits<double>::quiet_NaN(), ttft_p99_ms = std::numeric_limits<double>::quiet_NaN();
  double tpot_p50_ms = std::numeric_limits<double>::quiet_NaN(), tpot_p99_ms = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace results
