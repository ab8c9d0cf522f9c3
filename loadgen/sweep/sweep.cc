#include "loadgen/sweep/sweep.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <limits>
#include <set>
#include <stdexcept>

#include "loadgen/run/run.h"
#include "results/timeslices_csv.h"
#include "results/run_dir.h"
#include "loadgen/clients/system_under_test.h"
#include "common/format_number.h"
#include "results/sweep_json.h"

namespace loadgen {
namespace fs = std::filesystem;

double round_rate(double qps) {
  if (!(qps > 0) || !std::isfinite(qps)) return qps;
  const double mag = std::pow(10.0, std::floor(std::log10(qps)) - 3);
  return std::round(qps / mag) * mag;
}

bool meets_slo(const results::Summary& summary, const results::Slo& slo) {
  const int64_t n = summary.num_prompts, completed = summary.completed;
  if (!(completed > 0) || completed != n) return false;  // a failed or rejected request fails the probe
  const double ttft = summary.ttft.p99;
  const double tpot = summary.tpot.p99;
  if (slo.ttft_ms > 0 && !(ttft <= slo.ttft_ms)) return false;  // NaN (no data) fails too
  if (slo.tpot_ms > 0 && !(tpot <= slo.tpot_ms)) return false;
  return true;
}

double search_max_qps(const AutoSearch& s, const std::function<ProbeResult(double)>& probe,
                      std::vector<double>* probed) {
  double pass = 0, fail = INFINITY;
  int probes = 0;
  auto run = [&](double q) {
    q = round_rate(q);
    ++probes;
    if (probed) probed->push_back(q);
    const bool ok = probe(q).ok;
    (ok ? pass : fail) = ok ? std::max(pass, q) : std::min(fail, q);
    return ok;
  };
  // Bracket: upwards while passing, or downwards while the first rate fails.
  double q = std::min(s.start_qps, s.max_qps);
  if (run(q)) {
    while (q < s.max_qps && probes < s.max_probes) {
      q = std::min(q * 2, s.max_qps);
      if (!run(q)) break;
    }
  } else {
    const double floor_qps = s.start_qps / 64;
    while (pass == 0 && q / 2 >= floor_qps && probes < s.max_probes) run(q /= 2);
  }
  if (pass == 0 || !std::isfinite(fail)) return pass;  // nothing passes, or even the upper bound passes
  // Bisect between the highest pass and the lowest failure.
  while (fail - pass > s.resolution * pass && probes < s.max_probes) {
    const double mid = round_rate((pass + fail) / 2);
    if (mid <= pass || mid >= fail) break;  // rounding can no longer split the interval
    run(mid);
  }
  return pass;
}

namespace {

// Runs one cell's configuration into `cell_dir`: a fresh system under test, run_benchmark, the run directory.
CellOutcome run_cell_config(RunConfig c, const RunConfig& base, const fs::path& cell_dir, std::ostream* log) {
  c.output.out = cell_dir.string();
  c.output.label = (base.output.label.empty() ? "" : base.output.label + " ") + cell_dir.filename().string();
  SystemUnderTest sut = make_system_under_test(c.sut);
  const RunResult r = run_benchmark(c, sut, log);
  results::write_run_dir(cell_dir, r.summary, r.rows, r.server_metrics);
  results::write_timeslices_csv(cell_dir / "timeslices.csv", r.timeslices);
  CellOutcome out;
  out.summary = r.summary;
  // The run completed; failed requests are results, counted in its summary. A run in which no request
  // completed measured nothing, though: that cell failed, with the reasons.
  out.ok = r.summary.completed > 0;
  if (!out.ok) {
    std::string reasons;
    for (const auto& [reason, n] : r.summary.failures_by_reason) {
      if (reasons.size() > 300) break;
      reasons += (reasons.empty() ? "" : "; ") + reason + " (" + std::to_string(n) + ")";
    }
    out.error = "no request completed" + (reasons.empty() ? std::string() : ": " + reasons);
  }
  return out;
}

}  // namespace

CellRunner benchmark_cell_runner(const RunConfig& base, std::ostream* log) {
  return [base, log](int batch_size, double qps, const fs::path& cell_dir) {
    RunConfig c = base;
    c.load.rate = qps;
    if (batch_size > 0) c.sut.engine.max_num_seqs = batch_size;
    return run_cell_config(std::move(c), base, cell_dir, log);
  };
}

ClosedCellRunner benchmark_closed_cell_runner(const RunConfig& base, std::ostream* log) {
  return [base, log](int batch_size, int concurrency, const fs::path& cell_dir) {
    RunConfig c = base;
    c.load.num_requests = requests_to_draw(base);  // -n, or the base run's X·T: fixed before the rate goes
    c.load.rate = std::numeric_limits<double>::infinity();
    c.load.max_concurrency = concurrency;
    c.load.closed_loop = true;
    if (batch_size > 0) c.sut.engine.max_num_seqs = batch_size;
    return run_cell_config(std::move(c), base, cell_dir, log);
  };
}

namespace {

void log_cell(std::ostream* log, size_t i, size_t n, const results::SweepCell& c) {
  if (!log) return;
  *log << "[sweep " << i;
  if (n) *log << "/" << n;
  *log << "] batch size " << results::batch_size_label(c.batch_size) << ", "
       << (c.concurrency > 0 ? "concurrency " + std::to_string(c.concurrency) : results::qps_label(c.qps) + " QPS")
       << ": ";
  if (c.status == results::Status::kOk && c.summary)
    *log << "ok, total time " << common::format_number(c.summary->duration) << " s, p99 TTFT "
         << common::format_number(c.summary->ttft.p99) << " ms, p99 TPOT "
         << common::format_number(c.summary->tpot.p99) << " ms\n";
  else
    *log << "FAILED: " << c.error << "\n";
  log->flush();
}

// One cell: run it, and turn anything it throws into a failed cell.
// concurrency > 0: a closed-loop cell, run by `run_closed`.
results::SweepCell run_one(const CellRunner& run_cell, int bs, double qps, const fs::path& out_dir,
                           const ClosedCellRunner* run_closed = nullptr, int concurrency = 0) {
  results::SweepCell c;
  c.batch_size = bs;
  c.qps = qps;
  c.concurrency = concurrency;
  c.dir = concurrency > 0 ? results::concurrency_cell_dir_name(bs, concurrency) : results::cell_dir_name(bs, qps);
  try {
    fs::create_directories(out_dir / c.dir);
    CellOutcome r = concurrency > 0 ? (*run_closed)(bs, concurrency, out_dir / c.dir) : run_cell(bs, qps, out_dir / c.dir);
    c.status = r.ok ? results::Status::kOk : results::Status::kFailed;
    c.error = r.error;
    c.summary = std::move(r.summary);
    if (!r.ok && c.error.empty()) c.error = "the run failed without a message";
  } catch (const std::exception& e) {
    c.status = results::Status::kFailed;
    c.error = e.what();
  }
  return c;
}

}  // namespace

results::SweepData run_sweep(const SweepSpec& spec, const CellRunner& run_cell, std::ostream* log,
                             const ClosedCellRunner& run_closed) {
  results::SweepData sweep;
  sweep.dir = spec.out_dir;
  sweep.settings = spec.settings;
  sweep.batch_sizes = spec.batch_sizes;
  sweep.concurrency = spec.concurrency;
  fs::create_directories(spec.out_dir);
  if (!spec.concurrency.empty() && !run_closed)
    throw std::invalid_argument("run_sweep: closed-loop cells (--concurrency) need a ClosedCellRunner");

  if (!spec.auto_search) {
    sweep.qps = spec.qps;
    const size_t n = spec.batch_sizes.size() * (spec.qps.size() + spec.concurrency.size());
    for (int bs : spec.batch_sizes) {
      for (double q : spec.qps) {
        sweep.cells.push_back(run_one(run_cell, bs, q, spec.out_dir));
        log_cell(log, sweep.cells.size(), n, sweep.cells.back());
        results::write_sweep_files(sweep, spec.out_dir);
      }
    }
    for (int bs : spec.batch_sizes) {  // the closed-loop columns, beside the rate grid
      for (int conc : spec.concurrency) {
        sweep.cells.push_back(run_one(run_cell, bs, std::numeric_limits<double>::infinity(), spec.out_dir,
                                      &run_closed, conc));
        log_cell(log, sweep.cells.size(), n, sweep.cells.back());
        results::write_sweep_files(sweep, spec.out_dir);
      }
    }
    return sweep;
  }

  const AutoSearch& search = *spec.auto_search;
  results::AutoResult result;
  result.slo = search.slo;
  sweep.autoq = result;
  std::set<double> rates;
  for (int bs : spec.batch_sizes) {
    auto probe = [&](double q) {
      sweep.cells.push_back(run_one(run_cell, bs, q, spec.out_dir));
      const results::SweepCell& c = sweep.cells.back();
      results::AutoProbe p;
      p.batch_size = bs;
      p.qps = q;
      constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
      p.ok = c.status == results::Status::kOk && c.summary && meets_slo(*c.summary, search.slo);
      p.p99_ttft_ms = c.summary ? c.summary->ttft.p99 : kNaN;
      p.p99_tpot_ms = c.summary ? c.summary->tpot.p99 : kNaN;
      sweep.autoq->probes.push_back(p);
      rates.insert(q);
      sweep.qps.assign(rates.begin(), rates.end());
      log_cell(log, sweep.cells.size(), 0, c);
      if (log) *log << "  -> " << (p.ok ? "meets" : "misses") << " the SLO\n";
      results::write_sweep_files(sweep, spec.out_dir);
      return ProbeResult{p.ok, p.p99_ttft_ms, p.p99_tpot_ms};
    };
    sweep.autoq->max_qps.push_back(0);  // filled in when the search ends; 0 while it runs
    sweep.autoq->max_qps.back() = search_max_qps(search, probe, nullptr);
    results::write_sweep_files(sweep, spec.out_dir);
  }
  return sweep;
}

}  // namespace loadgen
