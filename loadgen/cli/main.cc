// loadgen: replays an Alpaca-style dataset against the in-process engine (or a server) at a target request
// rate and reports, truthfully, how it held up. `loadgen sweep ...` and `loadgen report DIR...` are
// subcommands (loadgen/subcommands.h).
#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>

#include "loadgen/run/run.h"
#include "loadgen/cli/resolve.h"
#include "loadgen/cli/settings.h"
#include "loadgen/cli/subcommands.h"
#include "loadgen/clients/system_under_test.h"
#include "common/timestamp.h"
#include "reports/table_writer.h"
#include "results/run_dir.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "sweep") == 0) return loadgen::sweep_main(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "report") == 0) return loadgen::report_main(argc - 1, argv + 1);

  CLI::App app{"loadgen: Poisson replay of an Alpaca-style dataset against an LLM engine, with per-request records.\n"
               "Subcommands: loadgen sweep --help, loadgen report DIR...",
               "loadgen"};
  loadgen::RunSettings s;
  loadgen::add_run_options(app, s);
  try {
    loadgen::parse_run_args(app, s, argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "loadgen: " << e.what() << '\n';
    return 2;
  }
  loadgen::RunConfig config;
  try {
    config = loadgen::resolve(s);
  } catch (const std::exception& e) {
    std::cerr << "loadgen: " << e.what() << '\n';
    return 2;
  }
  try {
    loadgen::SystemUnderTest sut = loadgen::make_system_under_test(config.sut);
    if (!config.output.quiet) std::cerr << "loadgen: measuring " << sut.client->describe() << '\n';
    loadgen::RunResult r = loadgen::run_benchmark(config, sut, &std::cerr);
    const std::string dir = config.output.out.empty() ? "reports/runs/" + common::local_timestamp() : config.output.out;
    results::write_run_dir(dir, r.summary, r.rows, r.server_metrics);
    reports::write_summary_table(std::cout, r.summary);
    std::cout << "Results: " << dir << "/{summary.json,requests.csv,requests.jsonl}";
    if (!config.logits.path.empty())
      std::cout << "  logits: " << config.logits.path << " (" << r.logits_written << " requests)";
    std::cout << '\n';
    // Exit status: 1 when a request is unaccounted for or was left unfinished; 3 when every request ended but
    // some failed or were rejected (the table lists them by reason), so scripts cannot mistake such a run for
    // a clean one; 0 otherwise.
    if (!(r.summary.accounted && r.summary.drained)) return 1;
    if (r.summary.failed + r.summary.rejected > 0) {
      std::cerr << "loadgen: " << r.summary.failed << " failed and " << r.summary.rejected << " rejected of "
                << r.summary.num_prompts << " requests\n";
      return 3;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "loadgen: " << e.what() << '\n';
    return 2;
  }
}
