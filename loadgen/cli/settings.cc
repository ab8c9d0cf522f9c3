#include "loadgen/cli/settings.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "loadgen/workload/arrival.h"
#include "loadgen/workload/dataset.h"
#include "loadgen/run/metrics.h"
#include "common/parse_number.h"
#include "loadgen/workload/prompt.h"
#include "loadgen/workload/workload.h"

namespace loadgen {

void add_run_options(CLI::App& app, RunSettings& s) {
  // Given twice (config file, then command line), the last wins.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto w = "Workload", l = "Load", m = "Measuring and output", e = "In-process engine", r = "Remote server",
       a = "Logits (accuracy)";
  app.add_option("--dataset", s.dataset, "Alpaca JSON / JSON lines / seed tasks (.gz ok) [datasets/sample_alpaca.json]")->group(w);
  app.add_option("--on-bad-record", s.on_bad_record, "fail | skip malformed records")->capture_default_str()->group(w);
  app.add_flag("--status-ok-only", s.status_ok_only, "JSON lines: keep only records with status \"ok\"")->group(w);
  app.add_option("--prompt-template", s.prompt_template, "alpaca | raw")->capture_default_str()->group(w);
  app.add_option("--max-new-tokens", s.max_new_tokens, "clamp of the reference output's token length")->capture_default_str()->group(w);
  app.add_option("--output-len", s.output_len, "generate exactly N tokens per request (0: reference length)")->group(w);
  app.add_flag("--no-ignore-eos", s.no_ignore_eos, "let the model stop at eos")->group(w);
  app.add_option("--reorder", s.reorder, "none | length-asc | length-desc (by prompt + output length)")->capture_default_str()->group(w);
  app.add_option("--temperature", s.temperature, "sampling temperature (0: greedy)")->capture_default_str()->group(w);
  app.add_option("-X,--rate", s.rate, "requests/s or inf [5; inf with --reference]")->group(l);
  app.add_option("-T,--duration", s.duration_s, "seconds of arrivals: N = round(X*T)")->capture_default_str()->group(l);
  app.add_option("-n,--num-requests", s.num_requests, "number of requests (overrides X*T)")->group(l);
  app.add_option("--arrival", s.arrival, "poisson | constant | gamma")->capture_default_str()->group(l);
  app.add_option("--burstiness", s.burstiness, "gamma shape (1 = Poisson, < 1 burstier)")->capture_default_str()->group(l);
  app.add_option("--trace", s.trace,
                 "arrival times from FILE (seconds per line, or JSON lines with \"timestamp\" in ms) instead of "
                 "--arrival; -X rescales them to that mean rate; N = -n or the trace's length")->group(l);
  app.add_option("--max-concurrency", s.max_concurrency, "cap of requests in flight (0: none)")->group(l);
  app.add_option("--seed", s.seed, "base seed of the random streams")->capture_default_str()->group(l);
  app.add_option("--arrival-seed", s.arrival_seed, "seed of the arrival gaps [seed]")->group(l);
  app.add_option("--sample-seed", s.sample_seed, "seed of the record choice [seed + 1]")->group(l);
  app.add_option("--sampling-seed", s.sampling_seed, "seed of token sampling [seed + 2]")->group(l);
  app.add_option("--drain-timeout", s.drain_timeout_s, "seconds to wait for completions after the last send")->capture_default_str()->group(l);
  app.add_option("--warmup", s.warmup, "requests (the workload's first) sent at once and finished before the timed run; not recorded")
      ->capture_default_str()->group(l);
  app.add_option("--slo", s.slo, "goodput SLO, e.g. ttft=200ms,tpot=50ms")->group(m);
  app.add_flag("--failures-as-inf", s.failures_as_inf, "count failures as +inf latency in the percentiles")->group(m);
  app.add_option("--out", s.out, "output directory [reports/runs/<timestamp>]")->group(m);
  app.add_option("--label", s.label, "free text for reports")->group(m);
  app.add_flag("-q,--quiet", s.quiet, "no progress line")->group(m);
  app.add_option("--model", s.model, "llama2.c .bin, HF directory, or dummy:<preset>")->capture_default_str()->group(e);
  app.add_option("--tokenizer", s.tokenizer, "tokenizer.model (engine; token counting with --endpoint)")->group(e);
  app.add_option("--batch-size", s.batch_size, "max sequences per step (max_num_seqs)")->capture_default_str()->group(e);
  app.add_option("--max-batched-tokens", s.max_batched_tokens, "max tokens per step")->capture_default_str()->group(e);
  app.add_option("--kv-blocks", s.kv_blocks, "KV cache blocks (0: from --kv-memory)")->group(e);
  app.add_option("--kv-memory", s.kv_memory, "KV cache size, e.g. 512MiB")->group(e);
  app.add_option("--gpu-memory-utilization", s.gpu_memory_utilization,
                 "cuda: fraction of device memory for weights + KV cache + activations (KV gets the rest)")
      ->capture_default_str()->group(e);
  app.add_option("--block-size", s.block_size, "tokens per KV block")->capture_default_str()->group(e);
  app.add_option("--backend", s.backend, "cpu | cuda")->capture_default_str()->group(e);
  app.add_option("--threads", s.threads, "cpu threads (0: OpenMP default)")->group(e);
  app.add_option("--dtype", s.dtype, "auto | f32 | bf16")->capture_default_str()->group(e);
  app.add_option("--max-model-len", s.max_model_len, "longest prompt + output (0: model's)")->group(e);
  app.add_flag("--deterministic", s.deterministic, "batch-invariant kernels")->group(e);
  app.add_option("--dummy-seed", s.dummy_seed, "seed of dummy:<preset> weights")->group(e);
  app.add_option("--endpoint", s.endpoint, "http://host:port of a server to measure instead")->group(r);
  app.add_option("--api", s.api, "openai | tgi | llm-serving")->capture_default_str()->group(r);
  app.add_option("--model-name", s.model_name, "model name sent to the server")->capture_default_str()->group(r);
  app.add_option("--request-timeout", s.request_timeout_s, "seconds per request")->capture_default_str()->group(r);
  app.add_flag("!--no-preflight", s.preflight,
               "skip the one-token check request sent (and not recorded) before the run")->group(r);
  app.add_option("--dump-logits", s.dump_logits, "write per-request logits to FILE.h5")->group(a);
  app.add_option("--logits-steps", s.logits_steps, "steps captured per request")->capture_default_str()->group(a);
  app.add_option("--logits-dtype", s.logits_dtype, "float32 | float16")->capture_default_str()->group(a);
  app.add_option("--reference", s.reference, "BASE.h5: replay its requests, its tokens forced")->group(a);
  app.add_option("--config", s.config, "YAML or JSON file of options (the command line wins)");
}

std::vector<std::string> config_file_args(const std::string& path, const CLI::App& app) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::invalid_argument("--config " + path + ": cannot open the file");
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument("--config " + path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) throw std::invalid_argument("--config " + path + ": expected a mapping of option: value");
  std::vector<std::string> args;
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    for (char& c : key) c = c == '_' ? '-' : c;
    const CLI::Option* opt = app.get_option_no_throw("--" + key);
    if (!opt || key == "config")
      throw std::invalid_argument("--config " + path + ": unknown setting '" + kv.first.as<std::string>() + "'");
    const YAML::Node& v = kv.second;
    if (opt->get_type_size() == 0) {  // a flag
      bool on = false;
      if (!v.IsScalar() || !YAML::convert<bool>::decode(v, on))
        throw std::invalid_argument("--config " + path + ": '" + key + "' must be true or false");
      if (on) args.push_back("--" + key);
      continue;
    }
    std::string value;
    if (v.IsScalar()) {
      value = v.as<std::string>();
    } else if (v.IsSequence()) {
      for (const auto& item : v) value += (value.empty() ? "" : ",") + item.as<std::string>();
    } else {
      throw std::invalid_argument("--config " + path + ": '" + key + "' must be a value or a list");
    }
    args.push_back("--" + key);
    args.push_back(value);
  }
  return args;
}

void parse_run_args(CLI::App& app, RunSettings& s, int argc, char** argv) {
  // --config is looked for first so its values go in before the command line's.
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) args = config_file_args(argv[i + 1], app);
    else if (a.rfind("--config=", 0) == 0) args = config_file_args(a.substr(9), app);
  }
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector reversed
  app.parse(args);
}

double effective_rate(const RunSettings& s) {
  std::string r = s.rate;
  if (r.empty()) return s.reference.empty() ? 5.0 : std::numeric_limits<double>::infinity();
  if (r == "inf" || r == "Inf" || r == "INF") return std::numeric_limits<double>::infinity();
  const std::optional<double> v = common::parse_double(r);
  if (!v || !(*v > 0)) throw std::invalid_argument("-X/--rate: expected a number > 0 or inf, got '" + r + "'");
  return *v;
}

int64_t effective_num_requests(const RunSettings& s) {
  if (s.num_requests > 0) return s.num_requests;
  if (!s.reference.empty() || !s.trace.empty()) return 0;
  const double x = effective_rate(s);
  if (std::isinf(x)) throw std::invalid_argument("-X inf needs -n N (the number of requests)");
  const int64_t n = std::llround(x * s.duration_s);
  if (n <= 0) throw std::invalid_argument("-X × -T gives no requests; raise -T or give -n");
  return n;
}

uint64_t effective_seed(int64_t explicit_seed, uint64_t base, uint64_t offset) {
  return explicit_seed >= 0 ? static_cast<uint64_t>(explicit_seed) : base + offset;
}

std::string effective_dataset(const RunSettings& s) {
  if (!s.dataset.empty()) return s.dataset;
  return std::string(LLM_SOURCE_DIR) + "/datasets/sample_alpaca.json";
}

int64_t parse_bytes(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw std::invalid_argument("--kv-memory: expected a size like 512MiB, got '" + s + "'");
  }
  std::string unit = s.substr(used);
  double mult = 1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB" || unit == "K") mult = 1024.0;
  else if (unit == "MiB" || unit == "M") mult = 1024.0 * 1024;
  else if (unit == "GiB" || unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (unit == "KB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  else throw std::invalid_argument("--kv-memory: unknown unit '" + unit + "' in '" + s + "' (KiB, MiB, GiB, KB, MB, GB)");
  if (!(v > 0)) throw std::invalid_argument("--kv-memory: must be > 0, got '" + s + "'");
  return static_cast<int64_t>(v * mult);
}

void validate(const RunSettings& s) {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
  };
  parse_on_bad_record(s.on_bad_record);
  parse_prompt_template(s.prompt_template);
  parse_reorder(s.reorder);
  parse_arrival_kind(s.arrival);
  const double rate = effective_rate(s);
  effective_num_requests(s);
  need(s.trace.empty() || s.reference.empty(), "--trace and --reference are exclusive (a reference replays its own requests)");
  need(s.trace.empty() || s.rate.empty() || !std::isinf(rate),
       "--trace with -X inf: give a rate to rescale the trace to, or no -X for its own times");
  if (!s.slo.empty()) parse_slo(s.slo);
  if (!s.kv_memory.empty()) parse_bytes(s.kv_memory);
  need(s.max_new_tokens > 0, "--max-new-tokens must be > 0");
  need(s.output_len >= 0, "--output-len must be >= 0");
  need(s.duration_s > 0, "-T/--duration must be > 0");
  need(s.num_requests >= 0, "-n must be >= 0");
  need(s.burstiness > 0, "--burstiness must be > 0");
  need(s.max_concurrency >= 0, "--max-concurrency must be >= 0");
  need(s.drain_timeout_s > 0, "--drain-timeout must be > 0");
  need(s.warmup >= 0, "--warmup must be >= 0");
  need(s.batch_size > 0, "--batch-size must be > 0");
  need(s.max_batched_tokens > 0, "--max-batched-tokens must be > 0");
  need(s.kv_blocks >= 0, "--kv-blocks must be >= 0");
  need(s.gpu_memory_utilization > 0 && s.gpu_memory_utilization <= 1,
       "--gpu-memory-utilization: expected a fraction in (0, 1], got " + std::to_string(s.gpu_memory_utilization));
  need(s.block_size > 0, "--block-size must be > 0");
  need(s.backend == "cpu" || s.backend == "cuda", "--backend: expected cpu or cuda, got '" + s.backend + "'");
  need(s.threads >= 0, "--threads must be >= 0");
  need(s.dtype == "auto" || s.dtype == "f32" || s.dtype == "bf16", "--dtype: expected auto, f32 or bf16, got '" + s.dtype + "'");
  need(s.max_model_len >= 0, "--max-model-len must be >= 0");
  need(s.api == "openai" || s.api == "tgi" || s.api == "llm-serving",
       "--api: expected openai, tgi or llm-serving, got '" + s.api + "'");
  need(s.request_timeout_s >= 0, "--request-timeout must be >= 0");
  need(s.logits_steps > 0, "--logits-steps must be > 0");
  need(s.logits_dtype == "float32" || s.logits_dtype == "float16",
       "--logits-dtype: expected float32 or float16, got '" + s.logits_dtype + "'");
  need(s.temperature >= 0, "--temperature must be >= 0");
  need(s.endpoint.empty() || (s.dump_logits.empty() && s.reference.empty()),
       "--dump-logits and --reference need the in-process engine (not --endpoint)");
  if (!s.reference.empty()) need(std::filesystem::exists(s.reference), "--reference: no such file: " + s.reference);
  if (s.dataset.empty() && s.reference.empty())
    need(std::filesystem::exists(effective_dataset(s)), "--dataset: the built-in sample is missing: " + effective_dataset(s));
  else if (s.reference.empty())
    need(std::filesystem::exists(s.dataset), "--dataset: no such file: " + s.dataset);
}

nlohmann::json to_json(const RunSettings& s) {
  nlohmann::json j;
  j["dataset"] = s.reference.empty() ? effective_dataset(s) : "";
  j["on_bad_record"] = s.on_bad_record;
  j["status_ok_only"] = s.status_ok_only;
  j["prompt_template"] = s.prompt_template;
  j["max_new_tokens"] = s.max_new_tokens;
  j["output_len"] = s.output_len;
  j["ignore_eos"] = !s.no_ignore_eos;
  j["reorder"] = s.reorder;
  j["temperature"] = s.temperature;
  const double x = effective_rate(s);
  j["rate"] = !s.trace.empty() && s.rate.empty() ? nlohmann::json("trace")
              : std::isinf(x)                    ? nlohmann::json("inf")
                                                 : nlohmann::json(x);
  j["duration_s"] = s.duration_s;
  j["num_requests"] = s.num_requests;
  j["arrival"] = s.arrival;
  j["burstiness"] = s.burstiness;
  j["trace"] = s.trace;
  j["max_concurrency"] = s.max_concurrency;
  j["seed"] = s.seed;
  j["arrival_seed"] = effective_seed(s.arrival_seed, s.seed, 0);
  j["sample_seed"] = effective_seed(s.sample_seed, s.seed, 1);
  j["sampling_seed"] = effective_seed(s.sampling_seed, s.seed, 2);
  j["drain_timeout_s"] = s.drain_timeout_s;
  j["warmup"] = s.warmup;
  j["slo"] = s.slo;
  j["failures_as_inf"] = s.failures_as_inf;
  j["out"] = s.out;
  j["label"] = s.label;
  j["model"] = s.model;
  j["tokenizer"] = s.tokenizer;
  j["batch_size"] = s.batch_size;
  j["max_batched_tokens"] = s.max_batched_tokens;
  j["kv_blocks"] = s.kv_blocks;
  j["kv_memory"] = s.kv_memory;
  j["gpu_memory_utilization"] = s.gpu_memory_utilization;
  j["block_size"] = s.block_size;
  j["backend"] = s.backend;
  j["threads"] = s.threads;
  j["dtype"] = s.dtype;
  j["max_model_len"] = s.max_model_len;
  j["deterministic"] = s.deterministic;
  j["dummy_seed"] = s.dummy_seed;
  j["endpoint"] = s.endpoint;
  j["api"] = s.api;
  j["model_name"] = s.model_name;
  j["request_timeout_s"] = s.request_timeout_s;
  j["preflight"] = s.preflight;
  j["dump_logits"] = s.dump_logits;
  j["logits_steps"] = s.logits_steps;
  j["logits_dtype"] = s.logits_dtype;
  j["reference"] = s.reference;
  j["config"] = s.config;
  return j;
}

}  // namespace loadgen
