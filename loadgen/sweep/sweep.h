// `loadgen sweep`: one run per (batch size, target QPS) cell, in a fixed order with the same seed, each into its
// own run directory under the sweep's --out; or, with `--qps auto`, a search for the highest rate whose p99 TTFT
// and p99 TPOT meet the SLO. What a cell runs is a CellRunner (sweep_cmd.cc wires it to run_benchmark with a
// fresh engine per cell), so the order, the bookkeeping and the search are independent of how a run is made.
#pragma once

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loadgen/run/run_config.h"
#include "results/summary.h"
#include "results/sweep.h"

namespace loadgen {

/// What one cell's run produced: the summary it wrote into the cell directory, or why it failed.
struct CellOutcome {
  bool ok = false;
  std::string error;
  std::optional<results::Summary> summary;
};

/// Runs one cell: `batch_size` (0: the remote server's own), target rate `qps`, writing its run directory
/// `cell_dir`. May throw; the sweep records the exception's message as the cell's error and goes on.
using CellRunner = std::function<CellOutcome(int batch_size, double qps, const std::filesystem::path& cell_dir)>;

/// The real cell: `base` with the cell's rate and batch size (unless 0), its own output directory and label; a fresh
/// system under test (in-process: a fresh engine, so no cell inherits another's cache or queue), run_benchmark,
/// and the run directory written; the cell keeps the summary it wrote. `log` (may be null) gets
/// run_benchmark's messages.
CellRunner benchmark_cell_runner(const RunConfig& base, std::ostream* log);

/// A closed-loop cell (`--concurrency`): `concurrency` requests in flight at every moment (each sent as soon
/// as one finishes; -X inf with --max-concurrency C), `batch_size` as for CellRunner.
using ClosedCellRunner =
    std::function<CellOutcome(int batch_size, int concurrency, const std::filesystem::path& cell_dir)>;

/// The real closed-loop cell: `base` with rate inf, max_concurrency C and N requests (-n, or base's X·T), as
/// benchmark_cell_runner otherwise.
ClosedCellRunner benchmark_closed_cell_runner(const RunConfig& base, std::ostream* log);

/// The `--qps auto` search: bracket upwards from `start_qps` by doubling until a probe fails or `max_qps`
/// passes, then bisect until the passing and failing rates are within `resolution` (relative) of each other.
/// When the first probe fails, halve downwards (to `start_qps` / 64) to find a passing rate at all.
struct AutoSearch {
  results::Slo slo;         ///< p99 limits; 0 = no limit on that metric
  double start_qps = 0.5;
  double max_qps = 64;
  double resolution = 0.05;
  int max_probes = 16;      ///< a hard stop, whatever the resolution
};

struct SweepSpec {
  std::vector<int> batch_sizes = {0};  ///< {0} for a remote server (one row, "server")
  std::vector<double> qps;             ///< the grid's columns; ignored when `auto_search` is set
  std::vector<int> concurrency;        ///< closed-loop columns, run after the rate cells (`--concurrency`)
  std::optional<AutoSearch> auto_search;
  std::filesystem::path out_dir;
  nlohmann::json settings = nlohmann::json::object();  ///< the sweep's effective settings, for sweep.json
};

/// Does a probe's summary meet the SLO? All requests must have completed, and each p99 be within its limit.
bool meets_slo(const results::Summary& summary, const results::Slo& slo);

/// Runs every cell (batch sizes outer, rates inner, in the order given) or the auto search per batch size,
/// rewriting sweep.json / sweep.csv in `spec.out_dir` after each cell so an interrupted sweep keeps what it
/// measured. Progress lines go to `log` (may be null). Returns the sweep as written.
/// Closed-loop cells (spec.concurrency) run after the rate grid, batch sizes outer, through `run_closed`.
results::SweepData run_sweep(const SweepSpec& spec, const CellRunner& run_cell, std::ostream* log,
                             const ClosedCellRunner& run_closed = {});

/// The search alone, for one batch size: `probe(qps)` runs one rate and says whether it met the SLO.
/// Appends each probe to `probes` and returns the highest passing rate (0 when none passed).
struct ProbeResult {
  bool ok = false;
  double p99_ttft_ms = 0, p99_tpot_ms = 0;
};
double search_max_qps(const AutoSearch& search, const std::function<ProbeResult(double qps)>& probe,
                      std::vector<double>* probed_rates);

/// Rounds a probe rate to 4 significant digits, so directory names and tables stay readable.
double round_rate(double qps);

}  // namespace loadgen
