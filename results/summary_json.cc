#include "results/summary_json.h"

#include "results/files.h"
#include "results/json_fields.h"
#include "results/trust_json.h"

namespace results {
namespace {

using namespace json_fields;

// The seven statistics of one metric, as "<stat>_<metric>_ms".
constexpr const char* kStats[] = {"mean", "median", "std", "p90", "p95", "p99", "max"};
double* stat_field(Distribution& d, int i) {
  double* fields[] = {&d.mean, &d.median, &d.std, &d.p90, &d.p95, &d.p99, &d.max};
  return fields[i];
}

void put_distribution(json& j, const char* metric, Distribution d) {
  for (int i = 0; i < 7; ++i) j[std::string(kStats[i]) + "_" + metric + "_ms"] = number(*stat_field(d, i));
}

Distribution get_distribution(const json& j, const char* metric, const std::string& where) {
  Distribution d;
  for (int i = 0; i < 7; ++i) {
    const std::string key = std::string(kStats[i]) + "_" + metric + "_ms";
    *stat_field(d, i) = opt_double(j, key.c_str(), where).value_or(std::numeric_limits<double>::quiet_NaN());
  }
  return d;  // count stays 0: summary.json does not hold it (num_prompts and completed do)
}

}  // namespace

json summary_to_json(const Summary& s) {
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
  j["duration"] = number(s.duration);
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["rejected"] = s.rejected;
  j["total_input_tokens"] = s.total_input_tokens;
  j["total_output_tokens"] = s.total_output_tokens;
  j["request_throughput"] = number(s.request_throughput);
  j["request_goodput"] = opt(s.request_goodput);
  j["good_requests"] = s.slo ? json(s.good_requests) : json(nullptr);
  j["input_throughput"] = number(s.input_throughput);
  j["output_throughput"] = number(s.output_throughput);
  j["total_token_throughput"] = number(s.total_token_throughput);
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
  j["last_arrival_s"] = number(s.last_arrival_s);
  j["drain_s"] = number(s.drain_s);
  j["e2el_trend"] = number(s.e2el_trend);
  j["kept_up"] = s.kept_up;
  j["kept_up_notes"] = s.kept_up_notes;
  j["drained"] = s.drained;
  j["accounted"] = s.accounted;
  j["failures_by_reason"] = json::object();
  for (const auto& [reason, n] : s.failures_by_reason) j["failures_by_reason"][reason] = n;
  j["output_token_source"] = s.output_token_source;
  j["first_token_source"] = s.first_token_source;
  if (s.slo) j["slo"] = {{"ttft_ms", s.slo->ttft_ms}, {"tpot_ms", s.slo->tpot_ms}};
  if (const auto& sm = s.server_metrics)
    j["server_metrics"] = {{"url", sm->url},           {"scrapes", sm->scrapes}, {"failures", sm->failures},
                           {"failed", sm->failed()},   {"first_error", sm->first_error}};
  if (const auto& pc = s.prefix_cache)  // the rates for readers of the file; the reader takes the counts
    j["prefix_cache"] = {{"queries", pc->queries},           {"hits", pc->hits},
                         {"hit_rate", pc->hit_rate()},      {"block_queries", pc->block_queries},
                         {"block_hits", pc->block_hits},    {"block_hit_rate", pc->block_hit_rate()}};
  if (!s.ttft_by_turn.empty()) {  // multi-turn: TTFT per turn index
    j["ttft_by_turn"] = json::array();
    for (const TurnLatency& t : s.ttft_by_turn) {
      json e = {{"turn", t.turn}, {"count", t.ttft.count}};
      put_distribution(e, "ttft", t.ttft);
      j["ttft_by_turn"].push_back(e);
    }
  }
  put_trust_fields(j, s);
  j["engine"] = s.engine;
  j["workload"] = s.workload;
  j["settings"] = s.settings;
  return j;
}

Summary summary_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "not a JSON object");
  auto num = [&](const char* key, double fallback = std::numeric_limits<double>::quiet_NaN()) { return opt_double(j, key, where).value_or(fallback); };
  auto count = [&](const char* key) { return opt_int(j, key, where).value_or(0); };
  auto flag = [&](const char* key) { return opt_bool(j, key, where).value_or(false); };
  Summary s;
  s.date = opt_string(j, "date", where);
  s.backend = opt_string(j, "backend", where);
  s.label = opt_string(j, "label", where);
  s.model_id = opt_string(j, "model_id", where);
  s.tokenizer_id = opt_string(j, "tokenizer_id", where);
  s.num_prompts = count("num_prompts");
  s.request_rate = num("request_rate");
  s.burstiness = num("burstiness", 1.0);
  s.max_concurrency = static_cast<int>(count("max_concurrency"));
  s.duration = num("duration");
  s.completed = count("completed");
  s.failed = count("failed");
  s.rejected = count("rejected");
  s.total_input_tokens = count("total_input_tokens");
  s.total_output_tokens = count("total_output_tokens");
  s.request_throughput = num("request_throughput");
  s.request_goodput = opt_double(j, "request_goodput", where);
  s.good_requests = count("good_requests");
  s.input_throughput = num("input_throughput");
  s.output_throughput = num("output_throughput");
  s.total_token_throughput = num("total_token_throughput");
  s.ttft = get_distribution(j, "ttft", where);
  s.tpot = get_distribution(j, "tpot", where);
  s.itl = get_distribution(j, "itl", where);
  s.e2el = get_distribution(j, "e2el", where);
  s.failures_as_inf = flag("failures_as_inf");
  s.send_lag_p50_ms = num("send_lag_p50_ms");
  s.send_lag_p99_ms = num("send_lag_p99_ms");
  s.send_lag_max_ms = num("send_lag_max_ms");
  s.achieved_request_rate = num("achieved_request_rate");
  s.scheduled_request_rate = num("scheduled_request_rate");
  s.last_arrival_s = num("last_arrival_s");
  s.drain_s = num("drain_s");
  s.e2el_trend = num("e2el_trend");
  // A summary that does not say whether it kept up is not read as a failed one.
  s.kept_up = opt_bool(j, "kept_up", where).value_or(true);
  s.drained = flag("drained");
  s.accounted = flag("accounted");
  if (auto it = j.find("kept_up_notes"); it != j.end() && it->is_array())
    for (const json& n : *it)
      if (n.is_string()) s.kept_up_notes.push_back(n.get<std::string>());
  const json reasons = opt_object(j, "failures_by_reason", where);
  for (auto it = reasons.begin(); it != reasons.end(); ++it)
    s.failures_by_reason[it.key()] = it->is_number() ? it->get<int64_t>() : 0;
  s.output_token_source = opt_string(j, "output_token_source", where);
  s.first_token_source = opt_string(j, "first_token_source", where);
  if (auto it = j.find("server_metrics"); it != j.end() && it->is_object()) {
    const std::string in = where + " server_metrics";
    s.server_metrics = ScrapeSummary{opt_string(*it, "url", in), opt_int(*it, "scrapes", in).value_or(0),
                                     opt_int(*it, "failures", in).value_or(0), opt_string(*it, "first_error", in)};
  }
  if (auto it = j.find("slo"); it != j.end() && it->is_object())
    s.slo = Slo{opt_double(*it, "ttft_ms", where + " slo").value_or(0), opt_double(*it, "tpot_ms", where + " slo").value_or(0)};
  if (auto it = j.find("prefix_cache"); it != j.end() && !it->is_null()) {
    const json pc = opt_object(j, "prefix_cache", where);
    const std::string in = where + " prefix_cache";
    s.prefix_cache = PrefixCacheSummary{opt_int(pc, "queries", in).value_or(0), opt_int(pc, "hits", in).value_or(0),
                                        opt_int(pc, "block_queries", in).value_or(0),
                                        opt_int(pc, "block_hits", in).value_or(0)};
  }
  if (auto it = j.find("ttft_by_turn"); it != j.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string in = where + " ttft_by_turn[" + std::to_string(i) + "]";
      const json& e = (*it)[i];
      if (!e.is_object()) fail(in, "not a JSON object");
      TurnLatency t;
      t.turn = static_cast<int>(opt_int(e, "turn", in).value_or(static_cast<int64_t>(i)));
      t.ttft = get_distribution(e, "ttft", in);
      t.ttft.count = opt_int(e, "count", in).value_or(0);
      s.ttft_by_turn.push_back(t);
    }
  }
  get_trust_fields(j, where, &s);
  s.engine = opt_object(j, "engine", where);
  s.workload = opt_object(j, "workload", where);
  s.settings = opt_object(j, "settings", where);
  return s;
}

void write_summary_json(const std::filesystem::path& path, const Summary& s) {
  write_file_atomically(path, summary_to_json(s).dump(2) + "\n");
}

Summary read_summary_json(const std::filesystem::path& path) {
  const std::string where = path.string();
  json j;
  try {
    j = json::parse(read_text_file(path));
  } catch (const json::parse_error& e) {
    fail(where, std::string("invalid JSON (") + e.what() + ")");
  }
  return summary_from_json(j, where);
}

}  // namespace results
