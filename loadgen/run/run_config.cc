#include "loadgen/run/run_config.h"

#include <cmath>
#include <stdexcept>

#include "common/format_number.h"

namespace loadgen {

int64_t requests_to_draw(const RunConfig& c) {
  if (c.load.num_requests > 0) return c.load.num_requests;
  if (!c.workload.reference.empty() || !c.load.trace.empty()) return 0;
  const double x = c.load.rate.value_or(0);
  if (std::isinf(x)) throw std::invalid_argument("-X inf needs -n N (the number of requests)");
  const int64_t n = std::llround(x * c.load.duration_s);
  if (n <= 0) throw std::invalid_argument("-X × -T gives no requests; raise -T or give -n");
  return n;
}

std::string format_slo(const results::Slo& slo) {
  std::string out;
  if (slo.ttft_ms > 0) out += "ttft=" + common::format_number(slo.ttft_ms, 9) + "ms";
  if (slo.tpot_ms > 0) out += (out.empty() ? "" : ",") + std::string("tpot=") + common::format_number(slo.tpot_ms, 9) + "ms";
  return out;
}

nlohmann::json to_json(const RunConfig& c) {
  const WorkloadConfig& w = c.workload;
  const LoadConfig& l = c.load;
  const engine::EngineConfig& e = c.sut.engine;
  const HttpClientOptions& h = c.sut.http;
  nlohmann::json j;
  j["dataset"] = w.dataset;
  j["on_bad_record"] = to_string(w.dataset_options.on_bad);
  j["status_ok_only"] = w.dataset_options.status_ok_only;
  j["prompt_template"] = to_string(w.prompt_template);
  j["max_new_tokens"] = w.max_new_tokens;
  j["output_len"] = w.output_len;
  j["ignore_eos"] = w.ignore_eos;
  j["reorder"] = to_string(w.reorder);
  j["temperature"] = w.temperature;
  j["rate"] = !l.rate ? nlohmann::json("trace") : std::isinf(*l.rate) ? nlohmann::json("inf") : nlohmann::json(*l.rate);
  j["duration_s"] = l.duration_s;
  j["num_requests"] = l.num_requests;
  j["arrival"] = to_string(l.arrival);
  j["burstiness"] = l.burstiness;
  j["trace"] = l.trace;
  j["max_concurrency"] = l.max_concurrency;
  j["seed"] = c.seed;
  j["arrival_seed"] = l.arrival_seed;
  j["sample_seed"] = w.sample_seed;
  j["sampling_seed"] = w.sampling_seed;
  j["drain_timeout_s"] = l.drain_timeout_s;
  j["warmup"] = l.warmup;
  j["slo"] = c.output.slo ? format_slo(*c.output.slo) : "";
  j["failures_as_inf"] = c.output.failures_as_inf;
  j["out"] = c.output.out;
  j["label"] = c.output.label;
  j["model"] = e.model;
  j["tokenizer"] = e.tokenizer;
  j["batch_size"] = e.max_num_seqs;
  j["max_batched_tokens"] = e.max_num_batched_tokens;
  j["kv_blocks"] = e.num_kv_blocks;
  j["kv_memory_bytes"] = e.kv_memory_bytes;
  j["gpu_memory_utilization"] = e.gpu_memory_utilization;
  j["block_size"] = e.block_size;
  j["backend"] = engine::to_string(e.backend);
  j["threads"] = e.num_threads;
  j["dtype"] = engine::to_string(e.dtype);
  j["kv_cache_dtype"] = engine::to_string(e.kv_cache_dtype);
  j["max_model_len"] = c.sut.in_process() ? e.max_model_len : c.sut.remote_max_model_len;
  j["deterministic"] = e.deterministic;
  j["enable_prefix_caching"] = e.enable_prefix_caching;
  j["tensor_parallel_size"] = e.tensor_parallel_size;
  j["dummy_seed"] = e.dummy_seed;
  j["endpoint"] = h.endpoint;
  j["api"] = to_string(h.api);
  j["model_name"] = h.model_name;
  j["request_timeout_s"] = h.request_timeout_s;
  j["preflight"] = c.sut.preflight;
  // Header names only: their values may be credentials.
  nlohmann::json header_names = nlohmann::json::array();
  for (const std::string& hl : h.access.headers) header_names.push_back(hl.substr(0, hl.find(':')));
  j["headers"] = header_names;
  j["insecure"] = h.access.insecure;
  j["scrape_metrics"] = c.server_side.scrape == ScrapeMode::kOff ? "off" : c.server_side.metrics_url;
  j["scrape_interval_s"] = c.server_side.scrape_interval_s;
  j["reset_prefix_cache"] = c.server_side.reset_prefix_cache;
  j["dump_logits"] = c.logits.path;
  j["logits_steps"] = c.logits.steps;
  j["logits_dtype"] = accuracy::to_string(c.logits.dtype);
  j["reference"] = w.reference;
  j["dump_logprobs"] = c.logprobs.path;
  j["dump_logits_npy"] = c.logits.npy_dir;
  j["top_logprobs"] = c.logprobs.top_k;
  j["config"] = c.config_file;
  // datasets, sessions and load shapes
  j["dataset_format"] = to_string(w.dataset_options.format);
  if (w.synthetic) {
    const SyntheticOptions& so = *w.synthetic;
    j["dataset"] = to_string(so.kind);
    j["input_len"] = so.input_len;
    j["output_len"] = so.output_len;
    j["range_ratio"] = so.range_ratio;
    if (so.kind == SyntheticKind::kPrefix) {
      j["num_prefixes"] = so.num_prefixes;
      j["prefix_len"] = so.prefix_len;
    }
    j["turns"] = so.turns;
  }
  j["too_long"] = to_string(w.too_long);
  j["multi_turn"] = w.multi_turn;
  if (w.multi_turn) j["think_time"] = to_string(l.think_time);
  j["ramp_up"] = to_string(l.ramp);
  if (l.ramp != RampUp::kNone) j["ramp_start_rate"] = l.ramp_start_rate;
  if (l.closed_loop) j["closed_loop"] = true;
  // Trust (issue 14).
  const ValidityOptions& v = c.trust.validity;
  j["min_duration_s"] = v.min_duration_s;
  j["min_requests"] = v.min_requests;
  j["confidence"] = v.confidence;
  j["validity_preset"] = v.preset;
  j["stop_on_saturation"] = c.trust.stop_on_saturation;
  j["timeslice_s"] = c.trust.timeslice_s;
  j["steady_state"] = c.trust.steady_state;
  return j;
}

ValidityOptions validity_options_from_json(const nlohmann::json& settings) {
  ValidityOptions o;
  auto num = [&](const char* key, double fallback) {
    auto it = settings.find(key);
    return it != settings.end() && it->is_number() ? it->get<double>() : fallback;
  };
  o.min_duration_s = num("min_duration_s", o.min_duration_s);
  o.min_requests = static_cast<int64_t>(num("min_requests", static_cast<double>(o.min_requests)));
  o.confidence = num("confidence", o.confidence);
  if (auto it = settings.find("validity_preset"); it != settings.end() && it->is_string()) o.preset = it->get<std::string>();
  return o;
}

}  // namespace loadgen
