#include "reports/json_writer.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace reports {
namespace {

using nlohmann::json;

json number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

template <typename T>
json opt(const std::optional<T>& v) {
  if (!v) return nullptr;
  if constexpr (std::is_floating_point_v<T>) return number(*v);
  else return *v;
}

void put_distribution(json& j, const char* m, const loadgen::Distribution& d) {
  const std::string k = std::string("_") + m + "_ms";
  j["mean" + k] = number(d.mean);
  j["median" + k] = number(d.median);
  j["std" + k] = number(d.std);
  j["p90" + k] = number(d.p90);
  j["p95" + k] = number(d.p95);
  j["p99" + k] = number(d.p99);
  j["max" + k] = number(d.max);
}

std::ofstream open(const std::string& path) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open for writing");
  return f;
}

}  // namespace

json summary_to_json(const loadgen::Summary& s) {
  json j;
  j["date"] = s.date;
  j["backend"] = s.backend;
  j["label"] = s.label;
  j["model_id"] = s.model_id;
  j["tokenizer_id"] = s.tokenizer_id;
  j["num_prompts"] = s.num_prompts;
  j["request_rate"] = number(s.request_rate);
  j["burstiness"] = number(s.burstiness);
  j["max_concurrency"] = s.max_concurrency > 0 ? json(s.max_concurrency) : json(nullptr);
  j["duration"] = s.duration;
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["rejected"] = s.rejected;
  j["total_input_tokens"] = s.total_input_tokens;
  j["total_output_tokens"] = s.total_output_tokens;
  j["request_throughput"] = s.request_throughput;
  j["request_goodput"] = opt(s.request_goodput);
  j["good_requests"] = s.slo ? json(s.good_requests) : json(nullptr);
  j["input_throughput"] = s.input_throughput;
  j["output_throughput"] = s.output_throughput;
  j["total_token_throughput"] = s.total_token_throughput;
  put_distribution(j, "ttft", s.ttft);
  put_distribution(j, "tpot", s.tpot);
  put_distribution(j, "itl", s.itl);
  put_distribution(j, "e2el", s.e2el);
  j["failures_as_inf"] = s.failures_as_inf;
  j["send_lag_p50_ms"] = number(s.send_lag_p50_ms);
  j["send_lag_p99_ms"] = number(s.send_lag_p99_ms);
  j["send_lag_max_ms"] = number(s.send_lag_max_ms);
  j["achieved_request_rate"] = number(s.achieved_request_rate);
  j["scheduled_request_rate"] = number(s.scheduled_request_rate);
  j["last_arrival_s"] = s.last_arrival_s;
  j["drain_s"] = s.drain_s;
  j["e2el_trend"] = s.e2el_trend;
  j["kept_up"] = s.kept_up;
  j["kept_up_notes"] = s.kept_up_notes;
  j["drained"] = s.drained;
  j["accounted"] = s.accounted;
  j["failures_by_reason"] = json::object();
  for (const auto& [reason, n] : s.failures_by_reason) j["failures_by_reason"][reason] = n;
  j["output_token_source"] = s.output_token_source;
  if (s.slo) j["slo"] = {{"ttft_ms", s.slo->ttft_ms}, {"tpot_ms", s.slo->tpot_ms}};
  j["engine"] = s.engine;
  j["workload"] = s.workload;
  j["settings"] = s.settings;
  return j;
}

json request_to_json(const loadgen::RequestRow& r) {
  json j;
  j["index"] = r.index;
  j["sample_id"] = r.sample_id;
  j["status"] = r.status;
  j["error"] = r.error;
  j["scheduled_s"] = r.scheduled_s;
  j["send_s"] = opt(r.send_s);
  j["first_token_s"] = opt(r.first_token_s);
  j["end_s"] = opt(r.end_s);
  j["prompt_tokens"] = opt(r.prompt_tokens);
  j["output_tokens"] = opt(r.output_tokens);
  j["ttft_ms"] = opt(r.ttft_ms);
  j["tpot_ms"] = opt(r.tpot_ms);
  j["e2el_ms"] = opt(r.e2el_ms);
  j["itl_ms"] = r.itl_ms;
  j["chunk_times_s"] = r.chunk_times_s;
  j["chunk_tokens"] = r.chunk_tokens;
  return j;
}

void write_requests_jsonl(std::ostream& out, const std::vector<loadgen::RequestRow>& rows) {
  for (const auto& r : rows) out << request_to_json(r).dump() << '\n';
}

void write_summary_json(const std::string& path, const loadgen::Summary& s) {
  auto f = open(path);
  f << summary_to_json(s).dump(2) << '\n';
  if (!f) throw std::runtime_error(path + ": write failed");
}

void write_requests_jsonl(const std::string& path, const std::vector<loadgen::RequestRow>& rows) {
  auto f = open(path);
  write_requests_jsonl(f, rows);
  if (!f) throw std::runtime_error(path + ": write failed");
}

}  // namespace reports
