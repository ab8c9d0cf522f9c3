#include "metrics.h"

#include <cmath>
#include <cstdio>

namespace server {

namespace {
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
void line(std::string& out, const std::string& name, const std::string& labels, double v) {
  out += name;
  if (!labels.empty()) {
    out.push_back('{');
    out += labels;
    out.push_back('}');
  }
  out.push_back(' ');
  out += num(v);
  out.push_back('\n');
}
// Label values escape \\, " and newlines (a model path may hold any of them).
std::string esc(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o.push_back('\\');
    if (c == '\n') { o += "\\n"; continue; }
    o.push_back(c);
  }
  return o;
}
void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}
// One unlabelled sample with its HELP and TYPE lines.
void metric(std::string& out, const std::string& name, const char* type, const char* help, double v) {
  header(out, name, type, help);
  line(out, name, "", v);
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, std::string& out) const {
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    line(out, name + "_bucket", "le=\"" + num(bounds_[i]) + "\"", static_cast<double>(cum));
  }
  cum += counts_.back();
  line(out, name + "_bucket", "le=\"+Inf\"", static_cast<double>(cum));
  line(out, name + "_sum", "", sum_);
  line(out, name + "_count", "", static_cast<double>(count_));
}

ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}),
      e2e_({0.01, 0.05, 0.1, 0.3, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 300}) {}

void ServerMetrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void ServerMetrics::count_generation(engine::FinishReason reason, int prompt_tokens, int output_tokens, double ttft_s,
                                     double tpot_s, double e2e_s) {
  std::lock_guard<std::mutex> lock(mu_);
  ++finished_[engine::to_string(reason)];
  prompt_tokens_ += static_cast<uint64_t>(std::max(0, prompt_tokens));
  generation_tokens_ += static_cast<uint64_t>(std::max(0, output_tokens));
  if (ttft_s >= 0) ttft_.observe(ttft_s);
  if (tpot_s >= 0) tpot_.observe(tpot_s);
  if (e2e_s >= 0) e2e_.observe(e2e_s);
}

std::string ServerMetrics::render(const engine::EngineStats& st, const engine::EngineInfo& info) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  header(out, "llm_requests_total", "counter", "HTTP requests answered, by route and status code (499: client went away).");
  for (const auto& [key, n] : requests_)
    line(out, "llm_requests_total", "route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"",
         static_cast<double>(n));
  header(out, "llm_request_finished_total", "counter", "Generations finished, by finish reason.");
  for (const auto& [reason, n] : finished_) line(out, "llm_request_finished_total", "reason=\"" + reason + "\"", static_cast<double>(n));
  header(out, "llm_prompt_tokens_total", "counter", "Prompt tokens of finished generations.");
  line(out, "llm_prompt_tokens_total", "", static_cast<double>(prompt_tokens_));
  header(out, "llm_generation_tokens_total", "counter", "Generated tokens of finished generations.");
  line(out, "llm_generation_tokens_total", "", static_cast<double>(generation_tokens_));
  header(out, "llm_time_to_first_token_seconds", "histogram", "Request received to first token.");
  ttft_.render("llm_time_to_first_token_seconds", out);
  header(out, "llm_time_per_output_token_seconds", "histogram", "(last token - first token) / (tokens - 1).");
  tpot_.render("llm_time_per_output_token_seconds", out);
  header(out, "llm_e2e_request_latency_seconds", "histogram", "Request received to last event.");
  e2e_.render("llm_e2e_request_latency_seconds", out);
  header(out, "llm_num_requests_running", "gauge", "Sequences in the engine's running batch.");
  line(out, "llm_num_requests_running", "", st.running);
  header(out, "llm_num_requests_waiting", "gauge", "Requests waiting in the engine's queue.");
  line(out, "llm_num_requests_waiting", "", st.waiting);
  header(out, "llm_kv_blocks_total", "gauge", "KV-cache blocks in the pool.");
  line(out, "llm_kv_blocks_total", "", static_cast<double>(st.kv_blocks_total));
  header(out, "llm_kv_blocks_used", "gauge", "KV-cache blocks in use.");
  line(out, "llm_kv_blocks_used", "", static_cast<double>(st.kv_blocks_used));
  header(out, "llm_kv_cache_usage_ratio", "gauge", "KV-cache blocks in use / total.");
  line(out, "llm_kv_cache_usage_ratio", "",
       st.kv_blocks_total > 0 ? static_cast<double>(st.kv_blocks_used) / static_cast<double>(st.kv_blocks_total) : 0.0);
  header(out, "llm_engine_steps_total", "counter", "Engine scheduler steps.");
  line(out, "llm_engine_steps_total", "", static_cast<double>(st.steps));
  header(out, "llm_preemptions_total", "counter", "Sequences preempted (recomputed) for lack of KV blocks.");
  line(out, "llm_preemptions_total", "", static_cast<double>(st.preemptions_total));
  // Named as vLLM's vllm:prefix_cache_queries / vllm:prefix_cache_hits (tokens); 0 with prefix caching off.
  const double queries = static_cast<double>(st.prefix_cache_queries), hits = static_cast<double>(st.prefix_cache_hits);
  metric(out, "llm_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache at admission.", queries);
  metric(out, "llm_prefix_cache_hits_total", "counter", "Of those, tokens found cached (their prefill skipped).", hits);
  metric(out, "llm_prefix_cache_block_queries_total", "counter", "Full KV blocks looked up in the prefix cache.",
         static_cast<double>(st.prefix_cache_block_queries));
  metric(out, "llm_prefix_cache_block_hits_total", "counter", "Of those, blocks found cached.",
         static_cast<double>(st.prefix_cache_block_hits));
  metric(out, "llm_prefix_cache_hit_rate", "gauge", "Prefix cache hits / queries in tokens since start (0 before any query).",
         queries > 0 ? hits / queries : 0.0);
  header(out, "llm_generation_tokens_per_second", "gauge", "Engine's generated tokens/s over the last seconds.");
  line(out, "llm_generation_tokens_per_second", "", st.tokens_per_s);
  header(out, "llm_model_info", "gauge", "The served model (value 1).");
  line(out, "llm_model_info", "model=\"" + esc(info.model) + "\",backend=\"" + esc(info.backend) + "\",dtype=\"" + esc(info.dtype) +
                                  "\",max_model_len=\"" + std::to_string(info.max_model_len) + "\"", 1);
  return out;
}

}  // namespace server
