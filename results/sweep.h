// A batch-size x QPS sweep (sweep.json, docs/formats.md): what `loadgen sweep` fills in as it goes and what
// `loadgen report` reads back. Plain data, plus the names a cell's directory and table heads use.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "results/status.h"
#include "results/summary.h"

namespace results {

/// A cell of a sweep: one run at one batch size (0: the remote server's own) and one target rate.
struct SweepCell {
  int batch_size = 0;
  double qps = 0;
  Status status = Status::kOk;  ///< kOk or kFailed
  std::string error;
  std::string dir;              ///< relative to the sweep directory, e.g. "bs16_qps3"
  std::optional<Summary> summary;  ///< the cell's summary.json (none when it failed before running)
  /// > 0: a closed-loop cell (`loadgen sweep --concurrency`): this many requests in flight, all sent as soon as
  /// a slot frees (qps is then inf); 0: an open-loop cell at `qps`.
  int concurrency = 0;
};

/// One step of the `--qps auto` search.
struct AutoProbe {
  int batch_size = 0;
  double qps = 0;
  bool ok = false;  ///< the run completed and met both SLOs
  double p99_ttft_ms = 0, p99_tpot_ms = 0;
};

struct AutoResult {
  Slo slo;                       ///< p99 limits; 0 = no limit on that metric
  std::vector<AutoProbe> probes; ///< in the order they ran
  /// Highest passing rate per batch size (same order as SweepData::batch_sizes); 0 when even the lowest
  /// probe failed.
  std::vector<double> max_qps;
};

struct SweepData {
  std::filesystem::path dir;
  nlohmann::json settings = nlohmann::json::object();
  std::vector<int> batch_sizes;
  std::vector<double> qps;
  std::vector<int> concurrency;  ///< the closed-loop cells' columns (`--concurrency`); empty for none
  std::vector<SweepCell> cells;  ///< in the order they ran
  std::optional<AutoResult> autoq;
};

/// A cell's column head / row head: "0.5", "3"; a batch size of 0 (remote) reads "server".
std::string qps_label(double qps);
std::string batch_size_label(int batch_size);
/// "bs16_qps3" (in-process) or "qps3" (remote): the cell's directory under the sweep's.
std::string cell_dir_name(int batch_size, double qps);
/// "bs16_c8" (in-process) or "c8" (remote): a closed-loop cell's directory; its column head reads "C=8".
std::string concurrency_cell_dir_name(int batch_size, int concurrency);

}  // namespace results
