#include "loadgen/cli/settings.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <stdexcept>

#include "common/byte_size.h"

namespace loadgen {

namespace {

// Datasets that need no file, conversations and load shapes (issue 12).
void add_workload_shape_options(CLI::App& app, RunSettings& s, const std::string& w, const std::string& l) {
  app.add_option("--dataset-format", s.dataset_format, "auto | alpaca | sharegpt (auto: from the first record)")
      ->capture_default_str()->group(w);
  app.add_option("--input-len", s.input_len, "--dataset random|prefix: prompt tokens (without bos)")
      ->capture_default_str()->group(w);
  app.add_option("--range-ratio", s.range_ratio,
                 "--dataset random|prefix: lengths uniform within +-ratio of --input-len/--output-len, [0, 1)")
      ->capture_default_str()->group(w);
  app.add_option("--num-prefixes", s.num_prefixes, "--dataset prefix: groups, each sharing one prefix")
      ->capture_default_str()->group(w);
  app.add_option("--prefix-len", s.prefix_len, "--dataset prefix: tokens of each group's prefix (< --input-len)")
      ->capture_default_str()->group(w);
  app.add_option("--turns", s.turns, "--dataset random|prefix: turns per conversation (> 1: --multi-turn)")
      ->capture_default_str()->group(w);
  app.add_flag("--multi-turn", s.multi_turn,
               "send every turn of each conversation as a session (its history + the next message); "
               "-X and -n count sessions")->group(w);
  app.add_option("--think-time", s.think_time,
                 "multi-turn: pause after an answer before the next message: seconds, exp:MEAN, uniform:LO,HI")
      ->capture_default_str()->group(w);
  app.add_option("--too-long", s.too_long,
                 "exclude (records over max_model_len left out before the draw: N still sent) | skip (after it)")
      ->capture_default_str()->group(w);
  app.add_option("--ramp-up", s.ramp_up, "none | linear | exponential: the rate grows from --ramp-start-rate to -X")
      ->capture_default_str()->group(l);
  app.add_option("--ramp-start-rate", s.ramp_start_rate, "requests/s at the start of --ramp-up")
      ->capture_default_str()->group(l);
}

void add_trust_options(CLI::App& app, RunSettings& s) {
  const std::string t = "Validity and trust";
  app.add_option("--min-duration", s.min_duration_s, "seconds a run must last to be VALID [60; 600 with --mlperf-server]")->group(t);
  app.add_option("--min-requests", s.min_requests, "completed requests a run needs to be VALID [100]")->group(t);
  app.add_option("--confidence", s.confidence, "confidence of the p99 upper bounds (binomial order statistics) [0.99]")->group(t);
  app.add_flag("--mlperf-server", s.mlperf_server, "MLPerf's server-scenario minimums: 600 s, 100 requests, 0.99")->group(t);
  app.add_flag("--stop-on-saturation", s.stop_on_saturation,
               "end the run when its backlog and TTFT keep growing (after 30 s; INVALID \"saturated\")")->group(t);
  app.add_option("--timeslice", s.timeslice, "width of the rows of timeslices.csv, e.g. 10s, 500ms")->capture_default_str()->group(t);
  app.add_flag("--steady-state", s.steady_state,
               "percentiles again over the steady window (without the ramp-up and the drain)")->group(t);
}

}  // namespace

void add_run_options(CLI::App& app, RunSettings& s) {
  // Given twice (config file, then command line), the last wins.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto w = "Workload", l = "Load", m = "Measuring and output", e = "In-process engine", r = "Remote server",
       a = "Logits (accuracy)";
  app.add_option("--dataset", s.dataset,
                 "Alpaca or ShareGPT JSON / JSON lines / seed tasks (.gz ok), or random | prefix (drawn, no file) "
                 "[datasets/sample_alpaca.json]")->group(w);
  app.add_option("--on-bad-record", s.on_bad_record, "fail | skip malformed records")->capture_default_str()->group(w);
  app.add_flag("--status-ok-only", s.status_ok_only, "JSON lines: keep only records with status \"ok\"")->group(w);
  app.add_option("--prompt-template", s.prompt_template,
                 "alpaca | raw [alpaca; raw with --api openai-chat: the record is one user message, the server's chat template applies]")
      ->group(w);
  app.add_option("--max-new-tokens", s.max_new_tokens, "clamp of the reference output's token length")->capture_default_str()->group(w);
  app.add_option("--output-len", s.output_len, "generate exactly N tokens per request (0: reference length)")->group(w);
  app.add_flag("--no-ignore-eos", s.no_ignore_eos, "let the model stop at eos")->group(w);
  app.add_option("--reorder", s.reorder, "none | length-asc | length-desc (by prompt + output length)")->capture_default_str()->group(w);
  app.add_option("--temperature", s.temperature, "sampling temperature (0: greedy)")->capture_default_str()->group(w);
  add_workload_shape_options(app, s, w, l);
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
  app.add_option("--kv-memory", s.kv_memory, std::string("KV cache size, e.g. 512MiB (") + common::kByteSizeUnits + ")")
      ->group(e);
  app.add_option("--gpu-memory-utilization", s.gpu_memory_utilization,
                 "cuda: fraction of device memory for weights + KV cache + activations (KV gets the rest)")
      ->capture_default_str()->group(e);
  app.add_option("--block-size", s.block_size, "tokens per KV block")->capture_default_str()->group(e);
  app.add_option("--backend", s.backend, "cpu | cuda")->capture_default_str()->group(e);
  app.add_option("--threads", s.threads, "cpu threads (0: OpenMP default)")->group(e);
  app.add_option("--dtype", s.dtype, "auto | f32 | bf16 (cpu: f32 only)")->capture_default_str()->group(e);
  app.add_option("--kv-cache-dtype", s.kv_cache_dtype, "auto | fp8 (e4m3 with per-token scales; cuda, bf16 mode)")
      ->capture_default_str()->group(e);
  app.add_option("--max-model-len", s.max_model_len, "longest prompt + output (0: model's)")->group(e);
  app.add_flag("--deterministic", s.deterministic, "batch-invariant kernels")->group(e);
  app.add_flag("--enable-prefix-caching", s.enable_prefix_caching,
               "reuse the KV cache of full blocks a prompt shares with earlier ones (hit rate in the summary)")
      ->group(e);
  app.add_option("--dummy-seed", s.dummy_seed, "seed of dummy:<preset> weights")->group(e);
  app.add_option("--tensor-parallel-size", s.tensor_parallel_size,
                 "GPUs the model is split over, Megatron-style (cuda with NCCL; docs/tensor-parallel.md)")
      ->capture_default_str()->group(e);
  app.add_option("--endpoint", s.endpoint, "http://host:port of a server to measure instead")->group(r);
  app.add_option("--api", s.api, "openai | openai-chat | tgi | llm-serving")->capture_default_str()->group(r);
  app.add_option("--model-name", s.model_name,
                 "model name sent to the server [openai, openai-chat: the first of GET /v1/models; llm-serving, tgi: llama2]")
      ->group(r);
  app.add_option("--request-timeout", s.request_timeout_s, "seconds per request")->capture_default_str()->group(r);
  app.add_flag("!--no-preflight", s.preflight,
               "skip the one-token check request sent (and not recorded) before the run")->group(r);
  app.add_option("--header", s.headers, "'Name: value' sent with every request (repeatable); OPENAI_API_KEY in the "
                                        "environment is sent as 'Authorization: Bearer ...' unless a --header gives one")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->group(r);
  app.add_flag("--insecure", s.insecure, "https: do not verify the server's certificate")->group(r);
  app.add_option("--scrape-metrics", s.scrape_metrics,
                 "Prometheus /metrics URL sampled during the run into server_metrics.jsonl [the endpoint's /metrics "
                 "when it answers; off: none]")->group(r);
  app.add_option("--scrape-interval", s.scrape_interval_s, "seconds between two metrics scrapes")
      ->capture_default_str()->group(r);
  app.add_flag("--reset-prefix-cache", s.reset_prefix_cache,
               "POST the server's /reset_prefix_cache (vLLM, llm-serve) before the run and before each sweep cell")
      ->group(r);
  app.add_option("--dump-logits", s.dump_logits, "write per-request logits to FILE.h5")->group(a);
  app.add_option("--logits-steps", s.logits_steps, "steps captured per request")->capture_default_str()->group(a);
  app.add_option("--logits-dtype", s.logits_dtype, "float32 | float16")->capture_default_str()->group(a);
  app.add_option("--reference", s.reference, "BASE.h5: replay its requests, its tokens forced")->group(a);
  app.add_option("--dump-logprobs", s.dump_logprobs,
                 "write each request's top-K logprobs from the server (--endpoint) to FILE.h5")->group(a);
  app.add_option("--dump-logits-npy", s.dump_logits_npy,
                 "also write each request's logits as DIR/<timestamp>_<sample id>_<steps>.npy (the contest's layout)")
      ->group(a);
  app.add_option("--top-logprobs", s.top_logprobs, "K logprobs asked per token with --dump-logprobs")
      ->capture_default_str()->group(a);
  app.add_option("--config", s.config, "YAML or JSON file of options (the command line wins)");
  add_trust_options(app, s);
}

void add_sweep_options(CLI::App& app, SweepSettings& s) {
  const std::string g = "Sweep";
  app.add_option("--batch-sizes", s.batch_sizes, "comma-separated batch sizes (rows; in-process only)")
      ->capture_default_str()->group(g);
  app.add_option("--qps", s.qps, "comma-separated target rates (columns), or auto")->capture_default_str()->group(g);
  app.add_option("--qps-start", s.qps_start, "auto: first rate probed")->capture_default_str()->group(g);
  app.add_option("--qps-max", s.qps_max, "auto: highest rate probed")->capture_default_str()->group(g);
  app.add_option("--qps-resolution", s.qps_resolution, "auto: stop when pass and fail are this close (relative)")
      ->capture_default_str()->group(g);
  app.add_option("--max-probes", s.max_probes, "auto: most runs per batch size")->capture_default_str()->group(g);
  app.add_option("--concurrency", s.concurrency,
                 "closed loop: comma-separated requests in flight (columns), each cell -n requests sent as slots free; "
                 "with --qps as well, both grids")->group(g);
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

}  // namespace loadgen
