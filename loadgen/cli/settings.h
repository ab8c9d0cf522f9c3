// One plain struct of run settings as the user gives them, a default and a one-line doc each (MLPerf LoadGen's
// TestSettings), filled from the command line (CLI11) over an optional --config FILE (YAML or JSON).
// loadgen/cli/resolve.h turns them, once, into the typed RunConfig everything else takes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI { class App; }

namespace loadgen {

struct RunSettings {
  // ---- workload
  std::string dataset;              ///< Alpaca JSON / JSON lines / seed tasks (.gz ok); default: datasets/sample_alpaca.json
  std::string on_bad_record = "fail";  ///< fail | skip
  bool status_ok_only = false;      ///< JSON lines: keep only status == "ok"
  std::string prompt_template;      ///< alpaca | raw; empty: alpaca, raw with --api openai-chat (the server templates)
  int max_new_tokens = 512;         ///< clamp of each request's reference output length
  int output_len = 0;               ///< > 0: every request generates exactly N tokens
  bool no_ignore_eos = false;       ///< let the model stop at eos
  std::string reorder = "none";     ///< none | length-asc | length-desc
  float temperature = 0.0f;         ///< sampling temperature (0: greedy)
  // ---- datasets and sessions (issue 12)
  std::string dataset_format = "auto";  ///< auto | alpaca | sharegpt
  int input_len = 1024;             ///< --dataset random|prefix: prompt tokens (without bos)
  double range_ratio = 0.0;         ///< random lengths within ±ratio of --input-len / --output-len
  int num_prefixes = 10;            ///< --dataset prefix: groups sharing a prefix
  int prefix_len = 256;             ///< --dataset prefix: tokens of each group's prefix
  int turns = 1;                    ///< synthetic conversations: turns each (> 1 implies --multi-turn)
  bool multi_turn = false;          ///< every turn of each conversation, as a session; -X counts sessions/s
  std::string think_time = "0";     ///< multi-turn: seconds, exp:MEAN or uniform:LO,HI
  std::string too_long = "exclude"; ///< exclude (before the draw, N still sent) | skip (after it)
  // ---- load
  std::string rate;                 ///< -X requests/s or "inf"; empty: 5 (inf with --reference)
  double duration_s = 60;           ///< -T seconds of arrivals: N = round(X·T)
  int64_t num_requests = 0;         ///< -n N (overrides X·T); 0: from X·T (all of BASE with --reference)
  std::string arrival = "poisson";  ///< poisson | constant | gamma
  std::string trace;                ///< arrival times from this file instead (loadgen/trace.h); -X rescales
  double burstiness = 1.0;          ///< gamma shape (1 = Poisson)
  int max_concurrency = 0;          ///< cap of requests in flight; 0: none
  uint64_t seed = 0;                ///< base seed of the random streams below
  int64_t arrival_seed = -1;        ///< arrival gaps; -1: seed
  int64_t sample_seed = -1;         ///< which records, in which order; -1: seed + 1
  int64_t sampling_seed = -1;       ///< per-request token sampling; -1: seed + 2
  double drain_timeout_s = 3600;    ///< after the last send, wait this long for completions
  int warmup = 0;                   ///< requests sent at once and finished before the timed run; not recorded
  std::string ramp_up = "none";     ///< none | linear | exponential: rate from --ramp-start-rate up to -X
  double ramp_start_rate = 1.0;     ///< requests/s at the start of a ramp
  // ---- measuring and output
  std::string slo;                  ///< e.g. "ttft=200ms,tpot=50ms" (goodput)
  bool failures_as_inf = false;     ///< count failed requests as +inf latency in the percentiles
  std::string out;                  ///< output dir; default reports/runs/<timestamp>
  std::string label;                ///< free text for reports
  bool quiet = false;               ///< no progress line
  // ---- in-process engine
  std::string model = "dummy:tiny"; ///< llama2.c .bin, HF dir, or dummy:<preset>
  std::string tokenizer;            ///< tokenizer.model (engine's; also for counting with --endpoint)
  int batch_size = 64;              ///< max_num_seqs
  int max_batched_tokens = 2048;    ///< tokens per step
  int64_t kv_blocks = 0;            ///< KV pool blocks; 0: from --kv-memory
  std::string kv_memory;            ///< e.g. 512MiB, 2GB (common/byte_size.h); empty: engine default
  double gpu_memory_utilization = 0.9;  ///< cuda, no --kv-memory/--kv-blocks: device memory fraction for the engine
  int block_size = 16;              ///< tokens per KV block
  std::string backend = "cpu";      ///< cpu | cuda
  int threads = 0;                  ///< cpu threads; 0: OpenMP default
  std::string dtype = "auto";       ///< auto | f32 | bf16
  std::string kv_cache_dtype = "auto";  ///< auto | fp8 (e4m3, cuda bf16 mode)
  int max_model_len = 0;            ///< 0: model's context
  bool deterministic = false;       ///< batch-invariant kernels
  bool enable_prefix_caching = false;  ///< share cached KV blocks of common prompt prefixes (in-process engine)
  uint64_t dummy_seed = 0;          ///< weights of dummy:<preset>
  int tensor_parallel_size = 1;     ///< GPUs the model is split over (cuda + NCCL; docs/tensor-parallel.md)
  // ---- remote
  std::string endpoint;             ///< http://host:port: measure a server instead
  std::string api = "openai";       ///< openai | openai-chat | tgi | llm-serving
  std::string model_name;           ///< model name in the request; empty: the server's first /v1/models entry
                                    ///< (openai, openai-chat), "llama2" (llm-serving, tgi)
  double request_timeout_s = 600;   ///< per request (remote)
  bool preflight = true;            ///< one unrecorded request before the run: fail fast on a wrong endpoint
  // ---- remote: real deployments and the server's side
  std::vector<std::string> headers; ///< --header 'K: V' (repeatable), sent with every request
  bool insecure = false;            ///< https: skip certificate and host name checks
  std::string scrape_metrics;       ///< Prometheus URL sampled every second; "" : the endpoint's /metrics if it
                                    ///< answers; "off": none
  double scrape_interval_s = 1.0;   ///< seconds between two scrapes
  bool reset_prefix_cache = false;  ///< POST <endpoint>/reset_prefix_cache before the run (each sweep cell)
  // ---- logits (accuracy)
  std::string dump_logits;          ///< write per-request logits to this .h5
  int logits_steps = 100;           ///< steps captured per request
  std::string logits_dtype = "float32";  ///< float32 | float16
  std::string reference;            ///< BASE.h5: replay its requests with its tokens forced
  // ---- log-probabilities from a server (--dump-logprobs)
  std::string dump_logprobs;        ///< write each request's top-K logprobs (a server's) to this .h5
  int top_logprobs = 20;            ///< K asked per token
  std::string dump_logits_npy;      ///< the contest's .npy folder of per-request logits (in-process)
  std::string config;               ///< YAML/JSON file of these settings (the command line wins)
  // ---- trust: the validity verdict, saturation, timeslices, steady state
  double min_duration_s = -1;       ///< --min-duration seconds for VALID; -1: 60 (600 with --mlperf-server)
  int64_t min_requests = -1;        ///< --min-requests completed for VALID; -1: 100
  double confidence = -1;           ///< --confidence of the p99 bounds; -1: 0.99
  bool mlperf_server = false;       ///< MLPerf's server-scenario minimums (600 s, 100 requests, 0.99)
  bool stop_on_saturation = false;  ///< end a run whose backlog and TTFT keep growing
  std::string timeslice = "10s";    ///< timeslices.csv width (s or ms)
  bool steady_state = false;        ///< percentiles again without the ramp-up and the drain
};

/// `loadgen sweep`'s own options, as given (the run options above apply to every cell).
struct SweepSettings {
  std::string batch_sizes = "1,16,32,64";  ///< rows: comma-separated batch sizes (in-process only)
  bool batch_sizes_given = false;          ///< --batch-sizes was on the command line
  std::string qps = "0.5,3,4,5";           ///< columns: comma-separated rates, or "auto"
  double qps_start = 0.5;                  ///< auto: first rate probed
  double qps_max = 64;                     ///< auto: highest rate probed
  double qps_resolution = 0.05;            ///< auto: stop when pass and fail are this close (relative)
  int max_probes = 16;                     ///< auto: most runs per batch size
  std::string concurrency;                 ///< closed-loop columns: comma-separated requests in flight ("" none)
  bool qps_given = false;                  ///< --qps was on the command line (with --concurrency: both grids)
};

/// Adds every run option to `app`, bound to `s` (used by `loadgen` and `loadgen sweep`).
void add_run_options(CLI::App& app, RunSettings& s);

/// Adds `loadgen sweep`'s own options to `app`, bound to `s`.
void add_sweep_options(CLI::App& app, SweepSettings& s);

/// Turns a YAML/JSON config file into option tokens ("--batch-size", "16", ...) to parse before the command
/// line (so the command line wins). Throws std::invalid_argument naming the file and the key.
std::vector<std::string> config_file_args(const std::string& path, const CLI::App& app);

/// Parses argv (with --config FILE expanded first) into settings. Throws CLI::ParseError for --help and
/// errors (the caller uses app.exit()).
void parse_run_args(CLI::App& app, RunSettings& s, int argc, char** argv);

}  // namespace loadgen
