// `loadgen sweep`: the command line of a batch-size × QPS sweep (or `--qps auto`), over every run option.
// Prints the competition's table (and the auto search), writes sweep.csv, sweep.json and report.html.
#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>
#include <sstream>

#include "loadgen/run/metrics.h"
#include "common/parse_number.h"
#include "common/timestamp.h"
#include "loadgen/cli/subcommands.h"
#include "loadgen/sweep/sweep.h"
#include "reports/html_report.h"
#include "reports/sweep_table.h"

namespace loadgen {
namespace {

namespace fs = std::filesystem;

template <typename T>
std::vector<T> parse_list(const std::string& text, const std::string& option) {
  std::vector<T> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const double v = common::parse_double(item).value_or(0.0);
    if (!(v > 0) || !std::isfinite(v))
      throw std::invalid_argument(option + ": expected a comma-separated list of numbers > 0, got '" + text + "'");
    if (std::is_integral_v<T> && v != std::floor(v))
      throw std::invalid_argument(option + ": '" + item + "' is not a whole number");
    out.push_back(static_cast<T>(v));
  }
  if (out.empty()) throw std::invalid_argument(option + ": empty list");
  return out;
}

std::string default_sweep_dir() {
  return "reports/runs/sweep-" + common::local_timestamp();  // under reports/runs/, which git ignores
}

}  // namespace

int sweep_main(int argc, char** argv) {
  CLI::App app{"loadgen sweep: one run per batch size x target QPS cell (the competition's Table 1), or the\n"
               "highest QPS meeting --slo with --qps auto. Every run option applies to each cell; -X and\n"
               "--batch-size are set per cell. Writes one run directory per cell under --out, then sweep.csv,\n"
               "sweep.json and report.html (default --out: reports/runs/sweep-<timestamp>)."};
  RunSettings s;
  add_run_options(app, s);
  std::string batch_sizes_arg = "1,16,32,64", qps_arg = "0.5,3,4,5";
  AutoSearch search;
  const std::string g = "Sweep";
  app.add_option("--batch-sizes", batch_sizes_arg, "comma-separated batch sizes (rows; in-process only)")
      ->capture_default_str()->group(g);
  app.add_option("--qps", qps_arg, "comma-separated target rates (columns), or auto")->capture_default_str()->group(g);
  app.add_option("--qps-start", search.start_qps, "auto: first rate probed")->capture_default_str()->group(g);
  app.add_option("--qps-max", search.max_qps, "auto: highest rate probed")->capture_default_str()->group(g);
  app.add_option("--qps-resolution", search.resolution, "auto: stop when pass and fail are this close (relative)")
      ->capture_default_str()->group(g);
  app.add_option("--max-probes", search.max_probes, "auto: most runs per batch size")->capture_default_str()->group(g);
  try {
    parse_run_args(app, s, argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "loadgen sweep: " << e.what() << '\n';
    return 2;
  }

  SweepSpec spec;
  try {
    if (app.count("--rate")) throw std::invalid_argument("-X/--rate: a sweep sets the rate per cell; use --qps");
    if (app.count("--batch-size"))
      throw std::invalid_argument("--batch-size: a sweep sets it per cell; use --batch-sizes");
    if (!s.dump_logits.empty() || !s.reference.empty())
      throw std::invalid_argument("--dump-logits/--reference: not supported in a sweep (one file per run)");
    if (!s.endpoint.empty()) {
      if (app.count("--batch-sizes"))
        throw std::invalid_argument("--batch-sizes: a remote server (--endpoint) has its own batch size");
      spec.batch_sizes = {0};
    } else {
      spec.batch_sizes = parse_list<int>(batch_sizes_arg, "--batch-sizes");
    }
    if (qps_arg == "auto") {
      search.slo = parse_slo(s.slo);
      if (search.slo.ttft_ms <= 0 && search.slo.tpot_ms <= 0)
        throw std::invalid_argument("--qps auto needs --slo, e.g. --slo ttft=200ms,tpot=50ms");
      if (!(search.start_qps > 0) || !(search.max_qps >= search.start_qps))
        throw std::invalid_argument("--qps-start/--qps-max: need 0 < start <= max");
      if (!(search.resolution > 0)) throw std::invalid_argument("--qps-resolution must be > 0");
      if (search.max_probes < 1) throw std::invalid_argument("--max-probes must be >= 1");
      spec.auto_search = search;
    } else {
      spec.qps = parse_list<double>(qps_arg, "--qps");
    }
    validate(s);  // the base settings; each cell's are validated again with its rate and batch size
  } catch (const std::exception& e) {
    std::cerr << "loadgen sweep: " << e.what() << '\n';
    return 2;
  }

  spec.out_dir = s.out.empty() ? default_sweep_dir() : s.out;
  spec.settings = to_json(s);
  spec.settings.erase("rate");
  spec.settings.erase("out");
  spec.settings.erase("batch_size");  // set per cell from --batch-sizes
  spec.settings["batch_sizes"] = batch_sizes_arg;
  spec.settings["qps"] = qps_arg;
  if (spec.auto_search)
    spec.settings["auto"] = {{"qps_start", search.start_qps},
                             {"qps_max", search.max_qps},
                             {"qps_resolution", search.resolution},
                             {"max_probes", search.max_probes}};
  try {
    const results::SweepData sweep =
        run_sweep(spec, benchmark_cell_runner(s, s.quiet ? nullptr : &std::cerr), &std::cerr);
    std::vector<std::string> warnings;
    const reports::ReportInput report = reports::load_report_input({spec.out_dir}, &warnings);
    for (const std::string& w : warnings) std::cerr << "loadgen sweep: " << w << '\n';
    reports::write_html_report(report, spec.out_dir / "report.html");
    if (!spec.auto_search) std::cout << reports::sweep_table(sweep);
    std::cout << reports::auto_table(sweep);
    std::cout << "Results: " << spec.out_dir.string() << "/{sweep.csv,sweep.json,report.html}\n";
    for (const results::SweepCell& c : sweep.cells)
      if (c.status != results::Status::kOk) return 1;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "loadgen sweep: " << e.what() << '\n';
    return 2;
  }
}

}  // namespace loadgen
