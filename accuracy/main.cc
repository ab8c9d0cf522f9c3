// acc_allclose BASE.h5 NEW.h5 | --base_path DIR --new_path DIR (the contest's .npy folders)  [--rtol R] [--atol A] [--steps K] [--json OUT] [--worst N]
//              [--logprob-atol A] [--min-top1-agreement F] [--max-kl K]   (when either file holds top-K logprobs)
// Exit 0: every request passed and nothing is missing or mismatched; 1: some request failed; 2: usage or file error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "accuracy/allclose.h"
#include "accuracy/npy.h"
#include "accuracy/npy_dir.h"

int main(int argc, char** argv) {
  CLI::App app{"Compare two llm-logits HDF5 files with numpy's allclose rule, request by request.\n"
               "Exit status: 0 all passed, 1 some request failed or is missing/mismatched, 2 usage or file error."};
  std::string base_path, new_path, json_path, base_dir, new_dir;
  accuracy::AllcloseOptions options;
  int worst = 10;
  auto* base_opt = app.add_option("BASE", base_path, "baseline logits file (.h5)");
  auto* new_opt = app.add_option("NEW", new_path, "candidate logits file (.h5)");
  auto* base_dir_opt = app.add_option("--base_path", base_dir,
                                      "baseline folder of the contest's <timestamp>_<request id>_<steps>.npy logits files");
  auto* new_dir_opt = app.add_option("--new_path", new_dir, "candidate folder of .npy logits files");
  base_dir_opt->excludes(base_opt)->excludes(new_opt)->needs(new_dir_opt);
  new_dir_opt->needs(base_dir_opt);
  app.add_option("--rtol", options.rtol, "relative tolerance")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--atol", options.atol, "absolute tolerance")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--steps", options.max_steps, "compare only the first K steps of each request (default: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--logprob-atol", options.logprob_atol,
                 "top-K files: largest |diff| of BASE's chosen token's logprob (nats)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--min-top1-agreement", options.min_top1_agreement,
                 "top-K files: least fraction of steps with the same most likely token")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-kl", options.max_kl, "top-K files: largest KL(BASE||NEW) over the union of the top-K sets (nats)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--json", json_path, "also write the full report as JSON to this file");
  app.add_option("--worst", worst, "rows in the table of worst requests")->capture_default_str()->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and the usage hint
    return 2;
  }
  if (base_dir.empty() && (base_path.empty() || new_path.empty())) {
    std::cerr << "acc_allclose: give BASE.h5 NEW.h5, or --base_path DIR --new_path DIR\n";
    return 2;
  }

  accuracy::ComparisonReport report;
  try {
    if (!base_dir.empty()) {
      report = accuracy::compare_npy_dirs(base_dir, new_dir, options);
      base_path = base_dir, new_path = new_dir;
    } else {
      report = accuracy::compare_logits_files(base_path, new_path, options);
    }
  } catch (const accuracy::LogitsFileError& e) {
    std::cerr << "acc_allclose: " << e.what() << "\n";
    return 2;
  }

  std::cout << "BASE " << base_path << "\nNEW  " << new_path << "\n";
  for (const auto& err : report.errors) std::cout << "error: " << err << "\n";
  if (worst > 0) std::cout << accuracy::worst_table(report, worst);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << accuracy::to_json(report) << "\n";
    if (!out.good()) {
      std::cerr << "acc_allclose: cannot write --json file " << json_path << "\n";
      return 2;
    }
  }
  std::cout << report.summary_line() << std::endl;
  return report.all_passed() ? 0 : 1;
}
