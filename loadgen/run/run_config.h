// A run's configuration as the code uses it: the user's settings (loadgen/cli/settings.h) resolved once, by
// loadgen/cli/resolve.h, into plain typed values with nothing left to parse or derive (MLPerf LoadGen's
// TestSettings -> TestSettingsInternal). Everything after the command line takes this; a sweep copies it and
// sets the rate and batch size of each cell as numbers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "accuracy/logits_file.h"
#include "loadgen/clients/system_under_test.h"
#include "loadgen/run/validity.h"
#include "loadgen/workload/arrival.h"
#include "loadgen/workload/dataset.h"
#include "loadgen/workload/prompt.h"
#include "loadgen/workload/synthetic.h"
#include "loadgen/workload/think_time.h"
#include "loadgen/workload/workload.h"
#include "results/summary.h"

namespace loadgen {

/// Where the requests come from and what each asks for.
struct WorkloadConfig {
  std::string dataset;            ///< the dataset file (the built-in sample when none was given); "" with a reference
  DatasetOptions dataset_options;
  PromptTemplate prompt_template = PromptTemplate::kAlpaca;
  int max_new_tokens = 512;       ///< clamp of each request's reference output length
  int output_len = 0;             ///< > 0: every request generates exactly this many tokens
  bool ignore_eos = true;
  Reorder reorder = Reorder::kNone;
  float temperature = 0.0f;
  std::string reference;          ///< BASE.h5: replay its requests with its tokens forced; "" for none
  uint64_t sample_seed = 1;       ///< which records, in which order
  uint64_t sampling_seed = 2;     ///< base of the per-request token-sampling seeds
  // ---- datasets and sessions (issue 12)
  std::optional<SyntheticOptions> synthetic;  ///< --dataset random | prefix: drawn from the tokenizer, no file
  TooLongPolicy too_long = TooLongPolicy::kExclude;
  bool multi_turn = false;        ///< every turn of each conversation; N counts sessions
};

/// When requests are sent.
struct LoadConfig {
  /// Target rate in requests/s (+inf: all at t = 0). Empty only when a trace is replayed at its own times.
  std::optional<double> rate = 5.0;
  std::string trace;              ///< arrival times from this file instead of drawn; "" for none
  ArrivalKind arrival = ArrivalKind::kPoisson;
  double burstiness = 1.0;        ///< gamma shape (1 = Poisson)
  uint64_t arrival_seed = 0;
  double duration_s = 60;         ///< -T: with no -n, N = round(rate * T)
  int64_t num_requests = 0;       ///< -n; 0: rate * T, or the whole reference / trace
  int max_concurrency = 0;        ///< cap of requests in flight; 0: none
  double drain_timeout_s = 3600;
  int warmup = 0;                 ///< requests sent and finished before the timed run; not recorded
  // ---- load shapes and sessions (issue 12)
  RampUp ramp = RampUp::kNone;    ///< the rate grows from ramp_start_rate to `rate` over the run
  double ramp_start_rate = 1.0;
  ThinkTime think_time;           ///< multi-turn: pause between an answer and the next message
  bool closed_loop = false;       ///< a `sweep --concurrency` cell: latency from when a slot freed
};

/// What is measured and where it goes.
struct OutputConfig {
  std::optional<results::Slo> slo;  ///< goodput limits
  bool failures_as_inf = false;
  std::string out;                ///< run directory; "" for reports/runs/<timestamp>
  std::string label;              ///< free text for reports; "" for the client's description
  bool quiet = false;             ///< no progress line, no messages
};

/// --dump-logits: per-request logits of the in-process engine to an HDF5 file.
struct LogitsConfig {
  std::string path;               ///< "" for none
  int steps = 100;                ///< steps captured per request
  accuracy::LogitsDType dtype = accuracy::LogitsDType::kFloat32;
  std::string npy_dir;            ///< --dump-logits-npy: the contest's .npy folder as well; "" for none
};

/// --dump-logprobs: per-request top-K logprobs returned by a server, to an HDF5 logits file (version 2).
struct LogprobsConfig {
  std::string path;               ///< "" for none
  int top_k = 20;                 ///< --top-logprobs
};

/// What loadgen does on the server's side of a remote run (--scrape-metrics, --reset-prefix-cache).
enum class ScrapeMode { kOff, kIfAnswers, kUrl };
struct ServerSideConfig {
  ScrapeMode scrape = ScrapeMode::kOff;  ///< kIfAnswers: the endpoint's /metrics, when it answers at the start
  std::string metrics_url;               ///< the Prometheus text to sample
  double scrape_interval_s = 1.0;
  bool reset_prefix_cache = false;       ///< POST <endpoint>/reset_prefix_cache before the run
};

/// Can the run be trusted: the verdict's limits, stopping a saturated run, timeslices, the steady window.
struct TrustConfig {
  ValidityOptions validity;
  bool stop_on_saturation = false;  ///< end a run whose backlog and TTFT keep growing (INVALID "saturated")
  double timeslice_s = 10;          ///< timeslices.csv: one row per this many seconds
  bool steady_state = false;        ///< percentiles again without the ramp-up and the drain
};

struct RunConfig {
  WorkloadConfig workload;
  LoadConfig load;
  OutputConfig output;
  SutConfig sut;
  LogitsConfig logits;
  LogprobsConfig logprobs;
  ServerSideConfig server_side;
  TrustConfig trust;
  uint64_t seed = 0;              ///< the base seed the three seeds above derive from (for the record)
  std::string config_file;        ///< --config, for the record
};

/// N: -n, else round(rate * T); 0 when the reference or the trace decides. Throws std::invalid_argument when
/// the rate is +inf without -n, or rate * T rounds to no request.
int64_t requests_to_draw(const RunConfig& c);

/// The effective settings, as summary.json's "settings" (docs/formats.md).
nlohmann::json to_json(const RunConfig& c);
/// The verdict's limits back from summary.json's / settings.json's "settings" (defaults for what is absent).
ValidityOptions validity_options_from_json(const nlohmann::json& settings);
/// "ttft=200ms,tpot=50ms": a SLO as --slo takes it.
std::string format_slo(const results::Slo& slo);

}  // namespace loadgen
