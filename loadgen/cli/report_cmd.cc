// `loadgen report DIR...`: rebuilds report.html from saved run and sweep directories, so runs made at
// different times (different engines, batch sizes, machines) can be compared on one page.
#include <CLI/CLI.hpp>
#include <iostream>

#include "loadgen/cli/subcommands.h"
#include "loadgen/run/recompute.h"
#include "reports/html_report.h"
#include "reports/sweep_table.h"
#include "reports/table_writer.h"
#include "results/summary_json.h"
#include "results/timeslices_csv.h"

namespace loadgen {

int report_main(int argc, char** argv) {
  CLI::App app{"loadgen report: one self-contained report.html from run directories (summary.json +\n"
               "requests.jsonl) and sweep directories (sweep.json + cell directories), compared side by side."};
  std::vector<std::string> dirs;
  std::string out, title = "loadgen report";
  app.add_option("dirs", dirs, "run or sweep directories")->required();
  app.add_option("-o,--out", out, "the page to write [DIR/report.html for one directory, else ./report.html]");
  app.add_option("--title", title, "the page's title")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    std::vector<std::filesystem::path> paths(dirs.begin(), dirs.end());
    // A run that never wrote its summary (killed): rebuild it from settings.json and the records it left.
    for (const std::filesystem::path& dir : paths)
      if (is_unfinished_run_dir(dir)) {
        std::vector<results::Timeslice> slices;
        const results::Summary s = recompute_summary(dir, &slices);
        results::write_timeslices_csv(dir / "timeslices.csv", slices);
        results::write_summary_json(dir / "summary.json", s);
        std::cerr << "loadgen report: " << dir.string() << ": the run did not finish; summary.json rebuilt from "
                  << s.interruption->ended << " of " << s.num_prompts << " requests' records\n";
        reports::write_summary_table(std::cout, s);
      }
    std::vector<std::string> warnings;
    reports::ReportInput input = reports::load_report_input(paths, &warnings);
    input.title = title;
    for (const std::string& w : warnings) std::cerr << "loadgen report: " << w << '\n';
    const std::filesystem::path page =
        !out.empty() ? std::filesystem::path(out) : paths.size() == 1 ? paths[0] / "report.html" : "report.html";
    reports::write_html_report(input, page);
    for (const reports::LoadedSweep& s : input.sweeps) {
      std::cout << s.sweep.dir.string() << ":\n";
      if (!s.sweep.autoq) std::cout << reports::sweep_table(s.sweep);
      std::cout << reports::auto_table(s.sweep);
    }
    std::cout << "Report: " << page.string() << " (" << input.sweeps.size() << " sweep(s), " << input.runs.size()
              << " run(s))\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "loadgen report: " << e.what() << '\n';
    return 2;
  }
}

}  // namespace loadgen
