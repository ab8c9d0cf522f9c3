// Hand-made run and sweep directories for the report tests (docs/formats.md), so the readers and the page can
// be tested without running an engine: a simulated server with Poisson arrivals, a prefill cost per prompt token
// and a fixed decode step, written through the project's own JSON writers (the same code a real run uses).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>
#include <string>
#include <vector>

#include "results/request_row.h"
#include "results/requests_jsonl.h"
#include "results/summary.h"
#include "results/summary_json.h"

namespace report_fixtures {

namespace fs = std::filesystem;

inline double percentile(std::vector<double> v, double p) {  // numpy's linear interpolation
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100 * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

inline results::Distribution dist(const std::vector<double>& v) {
  results::Distribution d;
  d.count = static_cast<int64_t>(v.size());
  if (v.empty()) return d;
  double sum = 0, sq = 0;
  for (double x : v) sum += x;
  d.mean = sum / v.size();
  for (double x : v) sq += (x - d.mean) * (x - d.mean);
  d.std = std::sqrt(sq / v.size());
  d.median = percentile(v, 50);
  d.p90 = percentile(v, 90);
  d.p95 = percentile(v, 95);
  d.p99 = percentile(v, 99);
  d.max = *std::max_element(v.begin(), v.end());
  return d;
}

struct SimulatedRun {
  std::vector<results::RequestRow> rows;
  results::Summary summary;
};

/// `n` requests at `qps`, a server that decodes one token per `step_s` per request and fails request 3
/// (when n > 3) with an HTTP 503 whose body needs escaping.
inline SimulatedRun simulate(int n, double qps, double step_s, uint64_t seed, const std::string& label) {
  SimulatedRun run;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(qps);
  std::uniform_int_distribution<int> prompt_len(20, 80), out_len(8, 40);
  double t = 0, last_end = 0;
  std::vector<double> ttft, tpot, itl, e2el;
  for (int i = 0; i < n; ++i) {
    results::RequestRow r;
    r.index = i;
    r.sample_id = (i * 7) % 200;
    r.scheduled_s = t;
    r.send_s = t + 0.0002;
    r.prompt_tokens = prompt_len(rng);
    if (i == 3) {
      r.status = results::Status::kFailed;
      r.error = "HTTP 503: {\"error\": \"<busy> & try later\"}";
      r.end_s = *r.send_s + 0.001;
      run.summary.failures_by_reason["HTTP 503"]++;
    } else {
      r.status = results::Status::kOk;
      const int out = out_len(rng);
      double ct = *r.send_s + 0.002 + 0.0001 * *r.prompt_tokens;  // prefill
      for (int k = 0; k < out; ++k, ct += step_s) {
        const int tokens = (k % 5 == 4) ? 2 : 1;  // now and then a 2-token chunk
        r.chunk_times_s.push_back(ct);
        r.chunk_tokens.push_back(tokens);
      }
      int total = 0;
      for (int k : r.chunk_tokens) total += k;
      r.output_tokens = total;
      r.first_token_s = r.chunk_times_s.front();
      r.end_s = r.chunk_times_s.back();
      r.ttft_ms = (*r.first_token_s - r.scheduled_s) * 1e3;
      r.e2el_ms = (*r.end_s - r.scheduled_s) * 1e3;
      r.tpot_ms = (*r.e2el_ms - *r.ttft_ms) / (total - 1);
      for (size_t k = 1; k < r.chunk_times_s.size(); ++k)
        for (int j = 0; j < r.chunk_tokens[k]; ++j)
          r.itl_ms.push_back((r.chunk_times_s[k] - r.chunk_times_s[k - 1]) * 1e3 / r.chunk_tokens[k]);
      ttft.push_back(*r.ttft_ms);
      tpot.push_back(*r.tpot_ms);
      e2el.push_back(*r.e2el_ms);
      itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
      run.summary.completed++;
      run.summary.total_input_tokens += *r.prompt_tokens;
      run.summary.total_output_tokens += total;
    }
    last_end = std::max(last_end, *r.end_s);
    run.rows.push_back(r);
    t += gap(rng);
  }
  results::Summary& s = run.summary;
  s.date = "20261125-120000";
  s.backend = "in-process";
  s.label = label;
  s.model_id = "stories260K";
  s.request_rate = qps;
  s.num_prompts = n;
  s.failed = n - s.completed;
  s.duration = last_end;
  s.request_throughput = s.completed / s.duration;
  s.output_throughput = s.total_output_tokens / s.duration;
  s.input_throughput = s.total_input_tokens / s.duration;
  s.total_token_throughput = s.output_throughput + s.input_throughput;
  s.ttft = dist(ttft);
  s.tpot = dist(tpot);
  s.itl = dist(itl);
  s.e2el = dist(e2el);
  s.send_lag_p50_ms = s.send_lag_p99_ms = s.send_lag_max_ms = 0.2;
  s.achieved_request_rate = qps;
  s.kept_up = true;
  s.drained = true;
  s.accounted = true;
  s.output_token_source = "engine";
  s.engine = {{"model", "stories260K.bin"}, {"backend", "cpu"}, {"batch_size", 16}};
  s.settings = {{"qps", qps}, {"num_prompts", n}, {"seed", seed}, {"label", label}};
  return run;
}

/// Writes summary.json and requests.jsonl of a simulated run into `dir`.
inline SimulatedRun write_run(const fs::path& dir, int n, double qps, double step_s, uint64_t seed,
                              const std::string& label) {
  fs::create_directories(dir);
  SimulatedRun run = simulate(n, qps, step_s, seed, label);
  results::write_summary_json(dir / "summary.json", run.summary);
  results::write_requests_jsonl(dir / "requests.jsonl", run.rows);
  return run;
}

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

/// A number of a summary.json read as raw JSON: NaN when absent or null, the strings "inf"/"-inf" as such.
inline double json_number(const nlohmann::json& summary, const std::string& key) {
  auto it = summary.find(key);
  if (it == summary.end() || it->is_null()) return std::nan("");
  if (it->is_number()) return it->get<double>();
  if (it->is_string() && it->get<std::string>() == "inf") return INFINITY;
  if (it->is_string() && it->get<std::string>() == "-inf") return -INFINITY;
  return std::nan("");
}

/// A fresh, empty directory under the system's temp dir, removed again when the test ends (pass or fail;
/// set LLM_KEEP_TEST_DIRS=1 to keep it for a look).
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("llm_report_test_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    const char* keep = std::getenv("LLM_KEEP_TEST_DIRS");
    std::error_code ec;
    if (!keep || std::string(keep) != "1") fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace report_fixtures
