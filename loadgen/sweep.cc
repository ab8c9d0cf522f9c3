#include "loadgen/sweep.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <set>

#include "loadgen/run.h"
#include "loadgen/run_output.h"
#include "loadgen/system_under_test.h"
#include "reports/svg_chart.h"
#include "reports/sweep_writers.h"

namespace loadgen {
namespace fs = std::filesystem;
using nlohmann::json;

std::string cell_dir_name(int batch_size, double qps) {
  const std::string q = "qps" + reports::qps_label(qps);
  return batch_size > 0 ? "bs" + std::to_string(batch_size) + "_" + q : q;
}

double round_rate(double qps) {
  if (!(qps > 0) || !std::isfinite(qps)) return qps;
  const double mag = std::pow(10.0, std::floor(std::log10(qps)) - 3);
  return std::round(qps / mag) * mag;
}

bool meets_slo(const json& summary, const Slo& slo) {
  const double n = reports::summary_number(summary, "num_prompts");
  const double completed = reports::summary_number(summary, "completed");
  if (!(completed > 0) || completed != n) return false;  // a failed or rejected request fails the probe
  const double ttft = reports::summary_number(summary, "p99_ttft_ms");
  const double tpot = reports::summary_number(summary, "p99_tpot_ms");
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

CellRunner benchmark_cell_runner(const RunSettings& base, std::ostream* log) {
  return [base, log](int batch_size, double qps, const fs::path& cell_dir) {
    RunSettings s = base;
    s.rate = json(qps).dump();  // shortest form that parses back to the same double
    if (batch_size > 0) s.batch_size = batch_size;
    s.out = cell_dir.string();
    s.label = (base.label.empty() ? "" : base.label + " ") + cell_dir.filename().string();
    validate(s);
    SystemUnderTest sut = make_system_under_test(s);
    const RunResult r = run_benchmark(s, sut, log);
    write_run_dir(cell_dir, r);
    CellOutcome out;
    out.summary = json::parse(reports::read_text_file(cell_dir / "summary.json"));
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
  };
}

namespace {

void log_cell(std::ostream* log, size_t i, size_t n, const reports::SweepCell& c) {
  if (!log) return;
  *log << "[sweep " << i;
  if (n) *log << "/" << n;
  *log << "] batch size "
       << reports::batch_size_label(c.batch_size) << ", " << reports::qps_label(c.qps) << " QPS: ";
  if (c.status == "ok")
    *log << "ok, total time " << reports::svg::format_number(reports::summary_number(c.summary, "duration"))
         << " s, p99 TTFT " << reports::svg::format_number(reports::summary_number(c.summary, "p99_ttft_ms"))
         << " ms, p99 TPOT " << reports::svg::format_number(reports::summary_number(c.summary, "p99_tpot_ms"))
         << " ms\n";
  else
    *log << "FAILED: " << c.error << "\n";
  log->flush();
}

// One cell: run it, and turn anything it throws into a failed cell.
reports::SweepCell run_one(const CellRunner& run_cell, int bs, double qps, const fs::path& out_dir) {
  reports::SweepCell c;
  c.batch_size = bs;
  c.qps = qps;
  c.dir = cell_dir_name(bs, qps);
  try {
    fs::create_directories(out_dir / c.dir);
    CellOutcome r = run_cell(bs, qps, out_dir / c.dir);
    c.status = r.ok ? "ok" : "failed";
    c.error = r.error;
    c.summary = std::move(r.summary);
    if (!r.ok && c.error.empty()) c.error = "the run failed without a message";
  } catch (const std::exception& e) {
    c.status = "failed";
    c.error = e.what();
  }
  return c;
}

}  // namespace

reports::SweepData run_sweep(const SweepSpec& spec, const CellRunner& run_cell, std::ostream* log) {
  reports::SweepData sweep;
  sweep.dir = spec.out_dir;
  sweep.settings = spec.settings;
  sweep.batch_sizes = spec.batch_sizes;
  fs::create_directories(spec.out_dir);

  if (!spec.auto_search) {
    sweep.qps = spec.qps;
    const size_t n = spec.batch_sizes.size() * spec.qps.size();
    for (int bs : spec.batch_sizes) {
      for (double q : spec.qps) {
        sweep.cells.push_back(run_one(run_cell, bs, q, spec.out_dir));
        log_cell(log, sweep.cells.size(), n, sweep.cells.back());
        reports::write_sweep_files(sweep, spec.out_dir);
      }
    }
    return sweep;
  }

  const AutoSearch& search = *spec.auto_search;
  reports::AutoResult result;
  result.slo_ttft_ms = search.slo.ttft_ms;
  result.slo_tpot_ms = search.slo.tpot_ms;
  sweep.autoq = result;
  std::set<double> rates;
  for (int bs : spec.batch_sizes) {
    auto probe = [&](double q) {
      sweep.cells.push_back(run_one(run_cell, bs, q, spec.out_dir));
      const reports::SweepCell& c = sweep.cells.back();
      reports::AutoProbe p;
      p.batch_size = bs;
      p.qps = q;
      p.ok = c.status == "ok" && meets_slo(c.summary, search.slo);
      p.p99_ttft_ms = reports::summary_number(c.summary, "p99_ttft_ms");
      p.p99_tpot_ms = reports::summary_number(c.summary, "p99_tpot_ms");
      sweep.autoq->probes.push_back(p);
      rates.insert(q);
      sweep.qps.assign(rates.begin(), rates.end());
      log_cell(log, sweep.cells.size(), 0, c);
      if (log) *log << "  -> " << (p.ok ? "meets" : "misses") << " the SLO\n";
      reports::write_sweep_files(sweep, spec.out_dir);
      return ProbeResult{p.ok, p.p99_ttft_ms, p.p99_tpot_ms};
    };
    sweep.autoq->max_qps.push_back(0);  // filled in when the search ends; 0 while it runs
    sweep.autoq->max_qps.back() = search_max_qps(search, probe, nullptr);
    reports::write_sweep_files(sweep, spec.out_dir);
  }
  return sweep;
}

}  // namespace loadgen
