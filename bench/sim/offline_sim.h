// What an offline run (every request queued at t = 0, as loadgen -X inf) can reach with a given decode step:
// the engine's own Scheduler (FCFS admission, chunked prefill, its KV blocks) replays a recorded run's requests
// (prompt and output lengths from loadgen's requests.csv) against a step-time model built from measured
// cuda_decode_bench figures, with a simulated clock. It answers "how much of this run is the steps and how much
// the workload's shape" (the tail of long answers decoding in a shrinking batch) without a GPU, and "what would
// the run give if the steps were X" (docs/cuda-notes.md, v24 and the offline-bound section).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"

namespace bench {

/// step(rows M, context tokens c) = fixed(M) + c * kv_bytes_per_token / bandwidth:
/// fixed(M) interpolates (linearly) the measured step at M rows less its KV read at the bench's context length at
/// the copy rate; past the table's last M it grows by row_seconds a row (the GEMMs' cost of a row once they are
/// compute-bound), below its first it is the first point's. The KV read at the copy rate is the floor's, so the
/// model is optimistic for the attention.
struct StepModel {
  struct Point {
    int rows = 0;
    double seconds = 0;
  };
  std::vector<Point> points;      ///< cuda_decode_bench steps at bench_context tokens a sequence, rows ascending
  int bench_context = 300;
  double kv_bytes_per_token = 2.0 * 32 * 4096 * 2;  ///< Llama-2-7B, bf16 cache
  double bandwidth = 4.281e12;    ///< bytes/s
  double row_seconds = 20.6e-6;   ///< past the table: 13.4 GFLOP a row at ~650 TFLOP/s
  double scale = 1.0;             ///< every step times this (what-ifs)

  /// "1:3.743,16:5.011,..." (rows:milliseconds). Throws std::invalid_argument naming the entry that is not one.
  static std::vector<Point> parse_table(const std::string& table);
  double step_seconds(int rows, int64_t context_tokens) const;
};

struct SimRequest {
  int prompt_tokens = 0;
  int output_tokens = 0;
};

/// The ok rows of a loadgen requests.csv, in send order (its index column), read by results::parse_requests_csv.
/// Throws std::runtime_error naming the file, and the record and field where a row is malformed.
std::vector<SimRequest> read_requests_csv(const std::string& path);

struct SimResult {
  double seconds = 0;
  int64_t steps = 0;
  int64_t output_tokens = 0;
  int64_t preemptions = 0;
  std::vector<double> step_end;   ///< the clock after each step
  std::vector<int> step_outputs;  ///< tokens each step produced
  double output_tokens_per_second() const { return seconds > 0 ? output_tokens / seconds : 0; }
  /// Output tok/s in each of `parts` equal stretches of the run.
  std::vector<double> throughput_by_part(int parts) const;
};

/// Replays `requests` through an engine Scheduler with `config` (max_num_seqs, max_num_batched_tokens, KV
/// blocks) and the model's step times. Every request generates exactly its output_tokens (ignore_eos).
SimResult simulate_offline(const std::vector<SimRequest>& requests, const StepModel& model,
                           const engine::SchedulerConfig& config);

}  // namespace bench
