#include "loadgen/cli/resolve.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "common/byte_size.h"
#include "common/parse_number.h"
#include "common/timestamp.h"

namespace loadgen {
namespace {

void need(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

/// An explicit seed (>= 0), else the base seed plus the stream's offset.
uint64_t seed_or_derived(int64_t explicit_seed, uint64_t base, uint64_t offset) {
  return explicit_seed >= 0 ? static_cast<uint64_t>(explicit_seed) : base + offset;
}

std::string builtin_dataset() { return std::string(LLM_SOURCE_DIR) + "/datasets/sample_alpaca.json"; }

WorkloadConfig resolve_workload(const RunSettings& s) {
  WorkloadConfig w;
  w.reference = s.reference;
  if (!s.reference.empty()) {
    need(std::filesystem::exists(s.reference), "--reference: no such file: " + s.reference);
  } else if (s.dataset == "random" || s.dataset == "prefix") {
    w.dataset = s.dataset;  // drawn: resolve_synthetic_and_sessions fills w.synthetic
  } else if (s.dataset.empty()) {
    w.dataset = builtin_dataset();
    need(std::filesystem::exists(w.dataset), "--dataset: the built-in sample is missing: " + w.dataset);
  } else {
    w.dataset = s.dataset;
    need(std::filesystem::exists(s.dataset), "--dataset: no such file: " + s.dataset);
  }
  w.dataset_options.on_bad = kOnBadRecordNames.parse(s.on_bad_record, "--on-bad-record");
  w.dataset_options.status_ok_only = s.status_ok_only;
  // A chat server applies its own template to the messages: an Alpaca record is then one user message
  // holding the instruction and input as they are.
  if (s.prompt_template.empty())
    w.prompt_template = s.api == "openai-chat" ? PromptTemplate::kRaw : PromptTemplate::kAlpaca;
  else
    w.prompt_template = kPromptTemplateNames.parse(s.prompt_template, "--prompt-template");
  need(s.max_new_tokens > 0, "--max-new-tokens must be > 0");
  w.max_new_tokens = s.max_new_tokens;
  need(s.output_len >= 0, "--output-len must be >= 0");
  w.output_len = s.output_len;
  w.ignore_eos = !s.no_ignore_eos;
  w.reorder = kReorderNames.parse(s.reorder, "--reorder");
  need(s.temperature >= 0, "--temperature must be >= 0");
  w.temperature = s.temperature;
  w.sample_seed = seed_or_derived(s.sample_seed, s.seed, 1);
  w.sampling_seed = seed_or_derived(s.sampling_seed, s.seed, 2);
  return w;
}

LoadConfig resolve_load(const RunSettings& s) {
  LoadConfig l;
  // No -X: 5 req/s; with --reference all at once (a precision run has no schedule to keep); with --trace the
  // trace's own times.
  if (!s.rate.empty()) l.rate = parse_rate(s.rate);
  else if (!s.trace.empty()) l.rate.reset();
  else l.rate = s.reference.empty() ? 5.0 : std::numeric_limits<double>::infinity();
  l.trace = s.trace;
  need(s.trace.empty() || s.reference.empty(), "--trace and --reference are exclusive (a reference replays its own requests)");
  need(s.trace.empty() || !l.rate || !std::isinf(*l.rate),
       "--trace with -X inf: give a rate to rescale the trace to, or no -X for its own times");
  l.arrival = kArrivalKindNames.parse(s.arrival, "--arrival");
  need(s.burstiness > 0, "--burstiness must be > 0");
  l.burstiness = s.burstiness;
  l.arrival_seed = seed_or_derived(s.arrival_seed, s.seed, 0);
  need(s.duration_s > 0, "-T/--duration must be > 0");
  l.duration_s = s.duration_s;
  need(s.num_requests >= 0, "-n must be >= 0");
  l.num_requests = s.num_requests;
  need(s.max_concurrency >= 0, "--max-concurrency must be >= 0");
  l.max_concurrency = s.max_concurrency;
  need(s.drain_timeout_s > 0, "--drain-timeout must be > 0");
  l.drain_timeout_s = s.drain_timeout_s;
  need(s.warmup >= 0, "--warmup must be >= 0");
  l.warmup = s.warmup;
  return l;
}

// Datasets that need no file, conversations as sessions and load shapes (issue 12), over the workload and
// load already resolved.
void resolve_synthetic_and_sessions(const RunSettings& s, WorkloadConfig* w, LoadConfig* l) {
  w->dataset_options.format = kDatasetFormatNames.parse(s.dataset_format, "--dataset-format");
  w->too_long = kTooLongPolicyNames.parse(s.too_long, "--too-long");
  const bool synthetic = s.reference.empty() && (s.dataset == "random" || s.dataset == "prefix");
  need(synthetic || s.turns == 1, "--turns: only for --dataset random|prefix (a file's conversations have their own)");
  if (synthetic) {
    need(s.dataset_format == "auto", "--dataset-format: --dataset " + s.dataset + " has no file to read");
    SyntheticOptions o;
    o.kind = kSyntheticKindNames.parse(s.dataset, "--dataset");
    o.input_len = s.input_len;
    o.output_len = s.output_len > 0 ? s.output_len : 128;  // vLLM's random default
    o.range_ratio = s.range_ratio;
    o.num_prefixes = s.num_prefixes;
    o.prefix_len = s.prefix_len;
    o.turns = s.turns;
    validate(o);
    w->synthetic = o;
    w->output_len = 0;  // each turn carries its own drawn length
  }
  w->multi_turn = s.multi_turn || s.turns > 1;
  l->think_time = parse_think_time(s.think_time);
  if (w->multi_turn) {
    need(s.reference.empty() && s.dump_logits.empty() && s.dump_logprobs.empty() && s.dump_logits_npy.empty(),
         "--multi-turn: not with --reference, --dump-logits, --dump-logprobs or --dump-logits-npy");
    need(s.trace.empty(), "--multi-turn: sessions arrive at -X sessions/s, not from --trace");
    need(s.reorder == "none", "--multi-turn: --reorder would break the sessions' order");
    need(s.max_concurrency == 0, "--multi-turn: --max-concurrency is not supported with sessions");
  } else {
    need(s.think_time == "0", "--think-time: only with --multi-turn (or --turns > 1)");
  }
  l->ramp = kRampUpNames.parse(s.ramp_up, "--ramp-up");
  if (l->ramp != RampUp::kNone) {
    need(s.trace.empty(), "--ramp-up: not with --trace (a trace has its own times)");
    need(l->rate && std::isfinite(*l->rate), "--ramp-up: needs a finite -X (the rate it ramps up to)");
    need(s.ramp_start_rate > 0 && std::isfinite(s.ramp_start_rate),
         "--ramp-start-rate must be > 0, got " + std::to_string(s.ramp_start_rate));
    l->ramp_start_rate = s.ramp_start_rate;
  }
}

engine::EngineConfig resolve_engine(const RunSettings& s) {
  engine::EngineConfig e;
  e.model = s.model;
  e.dummy_seed = s.dummy_seed;
  e.tokenizer = s.tokenizer;
  e.backend = engine::parse_backend_kind(s.backend, "--backend");
  e.dtype = engine::parse_compute_dtype(s.dtype, "--dtype");
  need(!(e.backend == engine::BackendKind::kCpu && e.dtype == engine::ComputeDType::kBf16),
       "--dtype bf16: the cpu backend computes in f32 only (use --dtype auto or f32, or --backend cuda)");
  e.kv_cache_dtype = engine::parse_kv_cache_dtype(s.kv_cache_dtype, "--kv-cache-dtype");
  need(e.kv_cache_dtype != engine::KvCacheDType::kFp8 ||
           (e.backend == engine::BackendKind::kCuda && e.dtype != engine::ComputeDType::kF32),
       "--kv-cache-dtype fp8: needs --backend cuda in the bf16 mode (--dtype auto or bf16)");
  need(s.batch_size > 0, "--batch-size must be > 0");
  e.max_num_seqs = s.batch_size;
  need(s.max_batched_tokens > 0, "--max-batched-tokens must be > 0");
  e.max_num_batched_tokens = s.max_batched_tokens;
  need(s.kv_blocks >= 0, "--kv-blocks must be >= 0");
  e.num_kv_blocks = s.kv_blocks;
  if (!s.kv_memory.empty()) e.kv_memory_bytes = common::parse_byte_size(s.kv_memory, "--kv-memory");
  need(s.gpu_memory_utilization > 0 && s.gpu_memory_utilization <= 1,
       "--gpu-memory-utilization: expected a fraction in (0, 1], got " + std::to_string(s.gpu_memory_utilization));
  e.gpu_memory_utilization = s.gpu_memory_utilization;
  need(s.block_size > 0, "--block-size must be > 0");
  e.block_size = s.block_size;
  need(s.threads >= 0, "--threads must be >= 0");
  e.num_threads = s.threads;
  need(s.max_model_len >= 0, "--max-model-len must be >= 0");
  e.max_model_len = s.max_model_len;
  e.deterministic = s.deterministic;
  e.enable_prefix_caching = s.enable_prefix_caching;
  e.tensor_parallel_size = s.tensor_parallel_size;
  return e;
}

/// "1,16,32": numbers > 0 (whole numbers for an integral T); throws naming `option`.
template <typename T>
std::vector<T> parse_list(const std::string& text, const std::string& option) {
  std::vector<T> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const double v = common::parse_double(item).value_or(0.0);
    if (!(v > 0) || !std::isfinite(v))
      throw std::invalid_argument(option + ": expected a comma-separated list of numbers > 0, got '" + text + "'");
    if (std::is_integral_v<T> && v != std::floor(v))
      throw std::invalid_argument(option + ": '" + item + "' is not a whole number");
    out.push_back(static_cast<T>(v));
  }
  if (out.empty()) throw std::invalid_argument(option + ": empty list");
  return out;
}

/// --model-name's default, --header / OPENAI_API_KEY / --insecure, --scrape-metrics, --reset-prefix-cache.
void resolve_server_access(const RunSettings& s, RunConfig& c) {
  HttpClientOptions& h = c.sut.http;
  // openai and openai-chat servers check the name: left empty, it is the first of GET /v1/models when the
  // server is reached. TGI ignores it; the competition's route has it in its path.
  h.model_name = s.model_name;
  if (h.model_name.empty() && (h.api == HttpApi::kLlmServing || h.api == HttpApi::kTgi)) h.model_name = kDefaultModelName;
  const char* key = std::getenv("OPENAI_API_KEY");
  h.access.headers = request_headers(s.headers, key ? key : "");
  h.access.insecure = s.insecure;
  ServerSideConfig& side = c.server_side;
  need(s.scrape_interval_s > 0, "--scrape-interval must be > 0");
  side.scrape_interval_s = s.scrape_interval_s;
  if (s.scrape_metrics == "off") {
    side.scrape = ScrapeMode::kOff;
  } else if (!s.scrape_metrics.empty()) {
    need(s.scrape_metrics.rfind("http://", 0) == 0 || s.scrape_metrics.rfind("https://", 0) == 0,
         "--scrape-metrics: '" + s.scrape_metrics + "' must be an http:// or https:// URL (or off)");
    side.scrape = ScrapeMode::kUrl;
    side.metrics_url = s.scrape_metrics;
  } else if (!h.endpoint.empty()) {
    side.scrape = ScrapeMode::kIfAnswers;
    side.metrics_url = h.endpoint + "/metrics";
  }
  need(!s.reset_prefix_cache || !s.endpoint.empty(),
       "--reset-prefix-cache: posts a server's /reset_prefix_cache; needs --endpoint");
  side.reset_prefix_cache = s.reset_prefix_cache;
}

/// "10s", "500ms", "10" (seconds) > 0; throws naming `option`.
double parse_seconds(const std::string& text, const std::string& option) {
  std::string v = text;
  double scale = 1;
  if (v.size() > 2 && v.substr(v.size() - 2) == "ms") v.resize(v.size() - 2), scale = 1e-3;
  else if (!v.empty() && v.back() == 's') v.pop_back();
  const std::optional<double> x = common::parse_double(v);
  if (!x || !(*x > 0) || !std::isfinite(*x))
    throw std::invalid_argument(option + ": expected a duration > 0 such as 10s or 500ms, got '" + text + "'");
  return *x * scale;
}

TrustConfig resolve_trust(const RunSettings& s) {
  TrustConfig t;
  t.validity = s.mlperf_server ? mlperf_server_validity() : ValidityOptions{};
  if (s.min_duration_s >= 0) t.validity.min_duration_s = s.min_duration_s;
  need(s.min_duration_s >= 0 || s.min_duration_s == -1, "--min-duration must be >= 0");
  if (s.min_requests >= 0) t.validity.min_requests = s.min_requests;
  need(s.min_requests >= 0 || s.min_requests == -1, "--min-requests must be >= 0");
  if (s.confidence != -1) {
    need(s.confidence > 0 && s.confidence < 1, "--confidence: expected a fraction in (0, 1), got " + std::to_string(s.confidence));
    t.validity.confidence = s.confidence;
  }
  t.stop_on_saturation = s.stop_on_saturation;
  t.timeslice_s = parse_seconds(s.timeslice, "--timeslice");
  t.steady_state = s.steady_state;
  return t;
}

}  // namespace

double parse_rate(const std::string& text) {
  if (text == "inf" || text == "Inf" || text == "INF") return std::numeric_limits<double>::infinity();
  const std::optional<double> v = common::parse_double(text);
  if (!v || !(*v > 0) || !std::isfinite(*v))
    throw std::invalid_argument("-X/--rate: expected a number > 0 or inf, got '" + text + "'");
  return *v;
}

results::Slo parse_slo(const std::string& text) {
  results::Slo slo;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    auto eq = part.find_first_of("=:");
    if (eq == std::string::npos) throw std::invalid_argument("--slo: expected key=value, got '" + part + "'");
    std::string key = part.substr(0, eq), val = part.substr(eq + 1);
    double scale = 1.0;
    if (val.size() > 2 && val.substr(val.size() - 2) == "ms") val.resize(val.size() - 2);
    else if (!val.empty() && val.back() == 's') { val.pop_back(); scale = 1000.0; }
    const std::optional<double> number = common::parse_double(val);
    if (!number) throw std::invalid_argument("--slo: '" + part + "' is not a number with ms or s");
    const double v = *number * scale;
    if (!(v > 0)) throw std::invalid_argument("--slo: '" + part + "' must be > 0");
    if (key == "ttft") slo.ttft_ms = v;
    else if (key == "tpot") slo.tpot_ms = v;
    else throw std::invalid_argument("--slo: unknown key '" + key + "' (ttft, tpot)");
  }
  if (slo.ttft_ms == 0 && slo.tpot_ms == 0) throw std::invalid_argument("--slo: give ttft=…ms and/or tpot=…ms");
  return slo;
}

SweepSpec resolve_sweep(const SweepSettings& sw, const RunSettings& s, const RunConfig& base) {
  SweepSpec spec;
  need(s.dump_logits.empty() && s.reference.empty() && s.dump_logprobs.empty() && s.dump_logits_npy.empty(),
       "--dump-logits/--dump-logprobs/--reference: not supported in a sweep (one file per run)");
  if (!s.endpoint.empty()) {
    need(!sw.batch_sizes_given, "--batch-sizes: a remote server (--endpoint) has its own batch size");
    spec.batch_sizes = {0};
  } else {
    spec.batch_sizes = parse_list<int>(sw.batch_sizes, "--batch-sizes");
  }
  if (sw.qps == "auto") {
    AutoSearch search;
    need(base.output.slo.has_value(), "--qps auto needs --slo, e.g. --slo ttft=200ms,tpot=50ms");
    search.slo = *base.output.slo;
    need(sw.qps_start > 0 && sw.qps_max >= sw.qps_start, "--qps-start/--qps-max: need 0 < start <= max");
    need(sw.qps_resolution > 0, "--qps-resolution must be > 0");
    need(sw.max_probes >= 1, "--max-probes must be >= 1");
    search.start_qps = sw.qps_start;
    search.max_qps = sw.qps_max;
    search.resolution = sw.qps_resolution;
    search.max_probes = sw.max_probes;
    spec.auto_search = search;
  } else {
    spec.qps = parse_list<double>(sw.qps, "--qps");
  }
  if (!sw.concurrency.empty()) {  // closed-loop columns; the rate grid too only when --qps was given
    spec.concurrency = parse_list<int>(sw.concurrency, "--concurrency");
    need(base.load.trace.empty() && !base.workload.multi_turn,
         "--concurrency: not with --trace or --multi-turn (a closed loop sends as slots free)");
    if (!sw.qps_given) spec.qps.clear(), spec.auto_search.reset();
  }
  spec.out_dir = base.output.out.empty() ? "reports/runs/sweep-" + common::local_timestamp()  // git ignores it
                                         : base.output.out;
  spec.settings = to_json(base);
  spec.settings.erase("rate");
  spec.settings.erase("out");
  spec.settings.erase("batch_size");  // set per cell from --batch-sizes
  spec.settings["batch_sizes"] = sw.batch_sizes;
  spec.settings["qps"] = sw.qps;
  if (!spec.concurrency.empty()) spec.settings["concurrency"] = sw.concurrency;
  if (spec.auto_search)
    spec.settings["auto"] = {{"qps_start", sw.qps_start},
                             {"qps_max", sw.qps_max},
                             {"qps_resolution", sw.qps_resolution},
                             {"max_probes", sw.max_probes}};
  return spec;
}

// --dump-logprobs / --top-logprobs, and --reference over HTTP (teacher forcing by prompt scoring).
static void resolve_logprobs(const RunSettings& s, RunConfig& c) {
  need(s.dump_logprobs.empty() || !s.endpoint.empty(),
       "--dump-logprobs: asks a server (--endpoint) for logprobs; the in-process engine writes --dump-logits");
  need(s.top_logprobs >= 1 && s.top_logprobs <= 1000, "--top-logprobs must be between 1 and 1000");
  need(s.endpoint.empty() || s.reference.empty() || !s.dump_logprobs.empty(),
       "--reference with --endpoint scores BASE's requests on the server: give --dump-logprobs NEW.h5 for the scores");
  c.logprobs.path = s.dump_logprobs;
  need(s.dump_logits_npy.empty() || s.endpoint.empty(), "--dump-logits-npy needs the in-process engine (not --endpoint)");
  c.logits.npy_dir = s.dump_logits_npy;
  c.logprobs.top_k = s.top_logprobs;
}

RunConfig resolve(const RunSettings& s) {
  RunConfig c;
  c.seed = s.seed;
  c.config_file = s.config;
  c.workload = resolve_workload(s);
  c.load = resolve_load(s);
  resolve_synthetic_and_sessions(s, &c.workload, &c.load);
  requests_to_draw(c);  // -X inf without -n, or -X x -T < 0.5: say so now, not after loading the model

  if (!s.slo.empty()) c.output.slo = parse_slo(s.slo);
  c.output.failures_as_inf = s.failures_as_inf;
  c.output.out = s.out;
  c.output.label = s.label;
  c.output.quiet = s.quiet;

  c.sut.engine = resolve_engine(s);
  c.sut.http.endpoint = s.endpoint.empty() ? "" : normalize_endpoint(s.endpoint);
  c.sut.http.api = kHttpApiNames.parse(s.api, "--api");
  need(s.endpoint.empty() || !s.enable_prefix_caching,
       "--enable-prefix-caching: sets the in-process engine; a server (--endpoint) is started with its own");
  // Tensor parallelism: checked now against the model's shape (its config or header only, no weights), the
  // backend and the GPUs, so a split that cannot work is refused before a long load.
  need(s.endpoint.empty() || s.tensor_parallel_size == 1,
       "--tensor-parallel-size: sets the in-process engine; a server (--endpoint) is started with its own");
  if (s.endpoint.empty()) engine::check_tensor_parallel(c.sut.engine, "--tensor-parallel-size");
  resolve_server_access(s, c);
  need(s.request_timeout_s >= 0, "--request-timeout must be >= 0");
  c.sut.http.request_timeout_s = s.request_timeout_s;
  c.sut.http.tokenizer = s.tokenizer;
  c.sut.remote_max_model_len = s.max_model_len;
  c.sut.preflight = s.preflight;

  need(s.logits_steps > 0, "--logits-steps must be > 0");
  c.logits.path = s.dump_logits;
  c.logits.steps = s.logits_steps;
  c.logits.dtype = accuracy::parse_logits_dtype(s.logits_dtype, "--logits-dtype");
  need(s.endpoint.empty() || s.dump_logits.empty(), "--dump-logits needs the in-process engine (not --endpoint)");
  resolve_logprobs(s, c);
  c.trust = resolve_trust(s);
  return c;
}

}  // namespace loadgen
