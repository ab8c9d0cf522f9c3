// Saved runs and sweeps as plain data (docs/formats.md): what `loadgen report DIR...` reads back from disk and
// what `loadgen sweep` fills in as it goes. The summary stays the JSON object of summary.json (the file is the
// contract, and the report shows keys it does not know as they are); per-request rows use loadgen's RequestRow.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "loadgen/results.h"

namespace reports {

/// One run directory: summary.json plus requests.jsonl (or requests.csv, without chunk times).
struct RunData {
  std::filesystem::path dir;
  std::string label;  ///< for legends and column heads: summary.label, else the directory's name
  nlohmann::json summary = nlohmann::json::object();
  std::vector<loadgen::RequestRow> requests;
  bool has_chunks = false;  ///< requests came from requests.jsonl (chunk times known)
};

/// A cell of a sweep: one run at one batch size (0: the remote server's own) and one target rate.
struct SweepCell {
  int batch_size = 0;
  double qps = 0;
  std::string status = "ok";  ///< ok | failed
  std::string error;
  std::string dir;            ///< relative to the sweep directory, e.g. "bs16_qps3"
  nlohmann::json summary = nlohmann::json::object();  ///< the cell's summary.json (empty when it failed early)
};

/// One step of the `--qps auto` search.
struct AutoProbe {
  int batch_size = 0;
  double qps = 0;
  bool ok = false;  ///< the run completed and met both SLOs
  double p99_ttft_ms = 0, p99_tpot_ms = 0;
};

struct AutoResult {
  double slo_ttft_ms = 0, slo_tpot_ms = 0;  ///< 0: no limit
  std::vector<AutoProbe> probes;            ///< in the order they ran
  /// Highest passing rate per batch size (same order as SweepData::batch_sizes); 0 when even the lowest
  /// probe failed.
  std::vector<double> max_qps;
};

struct SweepData {
  std::filesystem::path dir;
  nlohmann::json settings = nlohmann::json::object();
  std::vector<int> batch_sizes;
  std::vector<double> qps;
  std::vector<SweepCell> cells;  ///< in the order they ran
  std::optional<AutoResult> autoq;
};

/// A number from a summary object: NaN when absent or null; the strings "inf"/"-inf"/"nan" as such.
double summary_number(const nlohmann::json& summary, const std::string& key);

/// Throws std::runtime_error naming the file (and line / field) when something is missing or malformed.
RunData load_run(const std::filesystem::path& dir);
SweepData load_sweep(const std::filesystem::path& dir);

bool is_run_dir(const std::filesystem::path& dir);    ///< has summary.json
bool is_sweep_dir(const std::filesystem::path& dir);  ///< has sweep.json

/// Per-request rows from the text of requests.jsonl / requests.csv; `name` is used in error messages.
std::vector<loadgen::RequestRow> parse_requests_jsonl(const std::string& text, const std::string& name);
std::vector<loadgen::RequestRow> parse_requests_csv(const std::string& text, const std::string& name);

/// sweep.json <-> SweepData (docs/formats.md). `to_json` is what sweep_writers writes.
nlohmann::json to_json(const SweepData& sweep);
SweepData sweep_from_json(const nlohmann::json& j, const std::filesystem::path& dir, const std::string& name);

/// Reads a whole file; throws std::runtime_error naming it when it cannot.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace reports
