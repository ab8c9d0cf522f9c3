// loadgen: replays an Alpaca-style dataset against the in-process engine (or a server) at a target request
// rate and reports, truthfully, how it held up. `loadgen sweep ...` and `loadgen report DIR...` are
// subcommands (loadgen/subcommands.h).
#include <CLI/CLI.hpp>
#include <csignal>
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
#include "results/timeslices_csv.h"

namespace {

loadgen::Interrupt g_interrupt;

// Async-signal-safe: lock-free atomics only. After the second signal the default action comes back, so a
// third one ends the process at once.
extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  g_interrupt.signal.compare_exchange_strong(expected, sig);
  if (g_interrupt.count.fetch_add(1) + 1 >= 2) {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }
}

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "sweep") == 0) return loadgen::sweep_main(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "report") == 0) return loadgen::report_main(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "compare") == 0) return loadgen::compare_main(argc - 1, argv + 1);

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
    if (config.output.out.empty()) config.output.out = "reports/runs/" + common::local_timestamp();
    const std::string dir = config.output.out;
    install_stop_signals();
    loadgen::RunResult r = loadgen::run_benchmark(config, sut, &std::cerr, &g_interrupt);
    results::write_run_dir(dir, r.summary, r.rows, r.server_metrics);
    results::write_timeslices_csv(std::filesystem::path(dir) / "timeslices.csv", r.timeslices);
    reports::write_summary_table(std::cout, r.summary);
    std::cout << "Results: " << dir << "/{settings.json,summary.json,requests.csv,requests.jsonl,timeslices.csv}";
    if (!config.logits.path.empty() && !r.summary.interruption)
      std::cout << "  logits: " << config.logits.path << " (" << r.logits_written << " requests)";
    std::cout << '\n';
    // Interrupted by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM), as a shell reports it.
    if (r.summary.interruption && g_interrupt.count.load() > 0) return 128 + g_interrupt.signal.load();
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
