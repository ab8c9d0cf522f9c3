// `loadgen compare A B [--metric ...]`: two run directories (or two sweep directories, cell by cell) side by
// side: per metric each run's estimate with its bootstrap interval, the ratio B / A and a verdict; warnings when
// the workloads differ. Prints the table, writes compare.json and compare.html (in --out, default ./).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "loadgen/cli/subcommands.h"
#include "loadgen/compare/compare.h"
#include "reports/compare_html.h"
#include "results/compare_json.h"
#include "results/sweep_json.h"

namespace loadgen {
namespace {

void print_comparison(std::ostream& out, const results::Comparison& c) {
  for (const std::string& w : c.warnings) out << "warning: " << w << '\n';
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %10s %23s %10s %23s %7s %17s  %s\n", "(ms)", "A", "interval", "B", "interval",
                "B/A", "interval", "verdict");
  out << line;
  for (const results::MetricComparison& m : c.metrics) {
    char a_ci[64], b_ci[64], r_ci[64];
    std::snprintf(a_ci, sizeof a_ci, "%.3f-%.3f", m.a_lo, m.a_hi);
    std::snprintf(b_ci, sizeof b_ci, "%.3f-%.3f", m.b_lo, m.b_hi);
    std::snprintf(r_ci, sizeof r_ci, "%.3f-%.3f", m.ratio_lo, m.ratio_hi);
    std::snprintf(line, sizeof line, "%-12s %10.3f %23s %10.3f %23s %7.3f %17s  %s\n", m.metric.c_str(), m.a, a_ci, m.b,
                  b_ci, m.ratio, r_ci, m.verdict.c_str());
    out << line;
  }
  std::snprintf(line, sizeof line, "(bootstrap, %d resamples, seed %llu; intervals at %.2f %% each, %.0f %% for all %zu)\n",
                c.resamples, static_cast<unsigned long long>(c.seed), 100 * c.per_metric_confidence, 100 * c.confidence,
                c.metrics.size());
  out << line;
}

}  // namespace

int compare_main(int argc, char** argv) {
  CLI::App app{"loadgen compare A B: two run directories (or two sweeps, cell by cell) side by side, with bootstrap\n"
               "confidence intervals, the ratio B/A and a verdict per metric (faster / slower / no significant\n"
               "difference). Writes compare.json and compare.html."};
  std::string a, b, out = ".", metrics;
  CompareOptions o;
  app.add_option("a", a, "the baseline run or sweep directory")->required();
  app.add_option("b", b, "the run or sweep directory compared with it")->required();
  app.add_option("--metric", metrics,
                 "comma-separated <ttft|tpot|itl|e2el>_<mean|median|p90|p95|p99> [ttft_median,ttft_p99,tpot_median,"
                 "tpot_p99,e2el_median,e2el_p99]");
  app.add_option("--confidence", o.confidence, "family-wise confidence over the metrics")->capture_default_str();
  app.add_option("--resamples", o.resamples, "bootstrap resamples (>= 1000)")->capture_default_str();
  app.add_option("--seed", o.seed, "bootstrap seed")->capture_default_str();
  app.add_option("-o,--out", out, "directory for compare.json and compare.html")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (!metrics.empty()) {
      o.metrics.clear();
      std::stringstream in(metrics);
      for (std::string m; std::getline(in, m, ',');)
        if (!m.empty()) o.metrics.push_back(m);
      for (const std::string& m : o.metrics) check_metric_name(m);
    }
    std::filesystem::create_directories(out);
    const std::filesystem::path dir(out);
    if (results::is_sweep_dir(a) && results::is_sweep_dir(b)) {
      const results::SweepComparison c = compare_sweeps(a, b, o);
      for (const std::string& w : c.warnings) std::cout << "warning: " << w << '\n';
      for (const results::SweepComparisonCell& cell : c.cells) {
        std::cout << "batch " << results::batch_size_label(cell.batch_size) << ", " << results::qps_label(cell.qps)
                  << " QPS:\n";
        print_comparison(std::cout, cell.comparison);
      }
      results::write_compare_json(dir / "compare.json", results::sweep_comparison_to_json(c));
      reports::write_compare_html(dir / "compare.html", reports::render_sweep_compare_html(c));
    } else {
      const results::RunData ra = results::load_run(a), rb = results::load_run(b);
      const results::Comparison c = compare_runs(ra, rb, o);
      std::cout << "A: " << ra.label << " (" << a << ")\nB: " << rb.label << " (" << b << ")\n";
      print_comparison(std::cout, c);
      results::write_compare_json(dir / "compare.json", results::comparison_to_json(c));
      reports::write_compare_html(dir / "compare.html", reports::render_compare_html(c, ra, rb));
    }
    std::cout << "Results: " << (dir / "compare.json").string() << ", " << (dir / "compare.html").string() << '\n';
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "loadgen compare: " << e.what() << '\n';
    return 2;
  }
}

}  // namespace loadgen
