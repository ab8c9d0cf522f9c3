// offline_bound: what an offline run (-X inf) of a recorded workload reaches with a given decode-step table,
// through the engine's own scheduler and a simulated clock (offline_sim.h). Prints the makespan, output tok/s
// and the throughput over each tenth of the run (where the tail shows).
//
//   offline_bound --requests reports/runs/X/requests.csv --table "1:3.743,16:5.011,64:6.759,128:9.700,256:16.142" \
//                 --bandwidth 4.281e12 [--batch-size 256] [--max-batched-tokens 2048] [--scale 0.9] [--reorder length-desc]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "bench/sim/offline_sim.h"

int main(int argc, char** argv) {
  CLI::App app{"offline_bound: an offline run's makespan from a decode-step table (simulated clock)"};
  std::string csv, table;
  bench::StepModel model;
  engine::SchedulerConfig cfg;
  cfg.max_num_seqs = 256;
  cfg.num_kv_blocks = 0;
  app.add_option("--requests", csv, "loadgen requests.csv (prompt_tokens, output_tokens, in send order)")->required();
  app.add_option("--table", table, "cuda_decode_bench step times, rows:ms,...")->required();
  app.add_option("--bandwidth", model.bandwidth, "copy rate, bytes/s (H200 4.281e12, H100 ~3.0e12)");
  app.add_option("--bench-context", model.bench_context, "tokens a sequence in the table's runs");
  app.add_option("--kv-bytes", model.kv_bytes_per_token, "KV cache bytes a token (7B bf16: 524288)");
  app.add_option("--row-us", [&](const CLI::results_t& v) { model.row_seconds = std::stod(v[0]) * 1e-6; return true; },
                 "us a row past the table's last row count (20.6)");
  app.add_option("--scale", model.scale, "every step times this (what-ifs)");
  app.add_option("--batch-size", cfg.max_num_seqs, "max sequences a step");
  app.add_option("--max-batched-tokens", cfg.max_num_batched_tokens, "max tokens a step");
  std::string reorder = "none";
  app.add_option("--reorder", reorder, "none | length-asc | length-desc (by prompt + output, as loadgen's)")
      ->check(CLI::IsMember({"none", "length-asc", "length-desc"}));
  app.add_option("--kv-blocks", cfg.num_kv_blocks, "KV blocks of 16 tokens (0: enough for every request at once)");
  CLI11_PARSE(app, argc, argv);
  try {
    model.points = bench::StepModel::parse_table(table);
    auto reqs = bench::read_requests_csv(csv);
    const auto total = [](const bench::SimRequest& r) { return r.prompt_tokens + r.output_tokens; };
    if (reorder == "length-asc")
      std::stable_sort(reqs.begin(), reqs.end(), [&](const auto& a, const auto& b) { return total(a) < total(b); });
    if (reorder == "length-desc")
      std::stable_sort(reqs.begin(), reqs.end(), [&](const auto& a, const auto& b) { return total(a) > total(b); });
    if (reqs.empty()) throw std::runtime_error(csv + ": no ok request");
    if (cfg.num_kv_blocks == 0) {
      int64_t tokens = 0;
      for (const auto& r : reqs) tokens += total(r);
      cfg.num_kv_blocks = tokens / cfg.block_size + int64_t(reqs.size()) + 1;
    }
    const auto r = bench::simulate_offline(reqs, model, cfg);
    std::printf("%zu requests, %lld output tokens, %lld steps, %lld preemptions: %.3f s = %.0f output tok/s\n",
                reqs.size(), static_cast<long long>(r.output_tokens), static_cast<long long>(r.steps),
                static_cast<long long>(r.preemptions), r.seconds, r.output_tokens_per_second());
    std::printf("tok/s over each tenth of the run:");
    for (double v : r.throughput_by_part(10)) std::printf(" %.1fk", v / 1e3);
    std::printf("\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offline_bound: %s\n", e.what());
    return 1;
  }
  return 0;
}
