// `loadgen sweep`: the command line of a batch-size × QPS sweep (or `--qps auto`), over every run option.
// Prints the competition's table (and the auto search), writes sweep.csv, sweep.json and report.html.
#include <CLI/CLI.hpp>
#include <iostream>

#include "loadgen/cli/resolve.h"
#include "loadgen/cli/settings.h"
#include "loadgen/cli/subcommands.h"
#include "loadgen/sweep/sweep.h"
#include "reports/html_report.h"
#include "reports/sweep_table.h"

namespace loadgen {

int sweep_main(int argc, char** argv) {
  CLI::App app{"loadgen sweep: one run per batch size x target QPS cell (the competition's Table 1), or the\n"
               "highest QPS meeting --slo with --qps auto. Every run option applies to each cell; -X and\n"
               "--batch-size are set per cell. Writes one run directory per cell under --out, then sweep.csv,\n"
               "sweep.json and report.html (default --out: reports/runs/sweep-<timestamp>)."};
  RunSettings s;
  add_run_options(app, s);
  SweepSettings sw;
  add_sweep_options(app, sw);
  try {
    parse_run_args(app, s, argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "loadgen sweep: " << e.what() << '\n';
    return 2;
  }

  RunConfig base;
  SweepSpec spec;
  try {
    if (app.count("--rate")) throw std::invalid_argument("-X/--rate: a sweep sets the rate per cell; use --qps");
    if (app.count("--batch-size"))
      throw std::invalid_argument("--batch-size: a sweep sets it per cell; use --batch-sizes");
    sw.batch_sizes_given = app.count("--batch-sizes") > 0;
    sw.qps_given = app.count("--qps") > 0;
    base = resolve(s);  // the base run; each cell sets its rate and batch size as numbers
    spec = resolve_sweep(sw, s, base);
  } catch (const std::exception& e) {
    std::cerr << "loadgen sweep: " << e.what() << '\n';
    return 2;
  }

  try {
    const results::SweepData sweep =
        run_sweep(spec, benchmark_cell_runner(base, base.output.quiet ? nullptr : &std::cerr), &std::cerr,
                  benchmark_closed_cell_runner(base, base.output.quiet ? nullptr : &std::cerr));
    std::vector<std::string> warnings;
    const reports::ReportInput report = reports::load_report_input({spec.out_dir}, &warnings);
    for (const std::string& w : warnings) std::cerr << "loadgen sweep: " << w << '\n';
    reports::write_html_report(report, spec.out_dir / "report.html");
    if (!spec.auto_search && !spec.qps.empty()) std::cout << reports::sweep_table(sweep);
    if (!spec.concurrency.empty()) std::cout << reports::concurrency_table(sweep);
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
