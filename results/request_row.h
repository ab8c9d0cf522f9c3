// One scheduled request as the files hold it (requests.csv, requests.jsonl), derived from loadgen's raw
// record. Times in seconds from the run start; *_ms latencies measured from the scheduled arrival. Empty
// optionals are empty CSV cells and JSON nulls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "results/status.h"

namespace results {

struct RequestRow {
  uint64_t index = 0;
  int64_t sample_id = 0;
  Status status = Status::kOk;
  std::string error;
  double scheduled_s = 0;
  std::optional<double> send_s, first_token_s, end_s;
  std::optional<int> prompt_tokens, output_tokens;
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
  std::vector<double> itl_ms;           ///< a chunk of k tokens counts as k equal gaps
  std::vector<double> chunk_times_s;
  std::vector<int> chunk_tokens;
  std::optional<int64_t> session_id;    ///< multi-turn: the session (requests.jsonl only)
  std::optional<int> turn;              ///< multi-turn: the turn index within it
};

}  // namespace results
