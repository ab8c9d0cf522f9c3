#include "loadgen/run/run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/timestamp.h"
#include "loadgen/run/dispatcher.h"
#include "loadgen/run/logits_dump.h"
#include "loadgen/run/logprobs_dump.h"
#include "loadgen/run/prepare.h"
#include "engine/tokenizer.h"
#include "loadgen/run/progress.h"
#include "loadgen/run/timeslices.h"
#include "loadgen/workload/trace.h"
#include "loadgen/clients/http_call.h"
#include "loadgen/scrape/metrics_scraper.h"
#include "results/summary_json.h"

namespace loadgen {
namespace {

std::string format_fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// --reset-prefix-cache, then --scrape-metrics: the scraper (null when there is nothing to scrape). With the
// default (the endpoint's /metrics), a server whose /metrics does not answer now is simply not scraped.
std::unique_ptr<MetricsScraper> start_server_side(const RunConfig& c, std::ostream* log) {
  const ServerSideConfig& side = c.server_side;
  const HttpAccess& access = c.sut.http.access;
  if (side.reset_prefix_cache) reset_prefix_cache(c.sut.http.endpoint, access);
  if (side.scrape == ScrapeMode::kOff) return nullptr;
  if (side.scrape == ScrapeMode::kIfAnswers) {
    const results::ServerScrape probe = scrape_once(side.metrics_url, access, 5.0);
    if (!probe.error.empty()) {
      if (log && !c.output.quiet) *log << "server metrics: not scraped (" << probe.error << ")\n";
      return nullptr;
    }
  }
  auto scraper = std::make_unique<MetricsScraper>(side.metrics_url, access, side.scrape_interval_s);
  scraper->start();
  return scraper;
}

// The summary's description of the run (who, what, with which settings), known before its first request.
void describe_run(const RunConfig& c, const SystemUnderTest& sut, double rate, const nlohmann::json& notes,
                  results::Summary* sm) {
  const LoadConfig& load = c.load;
  sm->date = common::local_timestamp();
  sm->backend = sut.backend;
  sm->label = c.output.label.empty() ? sut.client->describe() : c.output.label;
  sm->model_id = sut.model_id;
  sm->tokenizer_id = sut.tokenizer_id;
  sm->request_rate = rate;
  sm->burstiness = load.arrival == ArrivalKind::kGamma ? load.burstiness : 1.0;
  sm->max_concurrency = load.max_concurrency;
  sm->slo = c.output.slo;
  sm->failures_as_inf = c.output.failures_as_inf;
  sm->engine = sut.engine;
  sm->settings = to_json(c);
  sm->workload = notes;
}

// settings.json: the run as known before its first request (what `loadgen report` rebuilds a summary with).
nlohmann::json settings_file(const results::Summary& meta, int64_t scheduled) {
  nlohmann::json all = results::summary_to_json(meta);
  nlohmann::json j = nlohmann::json::object();
  for (const char* key : {"date", "backend", "label", "model_id", "tokenizer_id", "request_rate", "burstiness",
                          "max_concurrency", "slo", "failures_as_inf", "engine", "workload", "settings"})
    if (all.contains(key)) j[key] = all[key];
  j["num_prompts"] = scheduled;
  return j;
}

}  // namespace

RunResult run_benchmark(const RunConfig& c, SystemUnderTest& sut, std::ostream* log, const Interrupt* interrupt) {
  const LoadConfig& load = c.load;
  std::optional<Trace> trace;
  if (!load.trace.empty()) trace = load_trace(load.trace);
  const int64_t n_asked = trace && load.num_requests == 0 ? static_cast<int64_t>(trace->times.size())
                                                         : requests_to_draw(c);
  Prepared p = c.workload.reference.empty() ? prepare_dataset(c, sut, n_asked) : prepare_reference(c, sut, log);
  Workload& w = p.workload;
  if (log) {
    if (p.notes.value("bad_records_skipped", 0) > 0)
      *log << "dataset: skipped " << p.notes["bad_records_skipped"] << " bad records (first: "
           << p.notes["bad_records"][0]["where"].get<std::string>() << ": "
           << p.notes["bad_records"][0]["reason"].get<std::string>() << ")\n";
    if (!w.too_long.empty() && w.too_long_policy == TooLongPolicy::kSkip)
      *log << "workload: " << w.too_long.size() << " of " << w.requested << " requests are longer than max_model_len "
           << p.notes["max_model_len"] << " and are skipped\n";
    else if (!w.too_long.empty())
      *log << "workload: " << w.too_long.size() << " records longer than max_model_len " << p.notes["max_model_len"]
           << " were excluded before the draw\n";
    if (w.turns_cut > 0)
      *log << "workload: " << w.turns_cut << " later turns left out: their history would exceed max_model_len\n";
  }
  if (w.items.empty())
    throw std::invalid_argument("no requests left to run: all " + std::to_string(w.too_long.size()) +
                                " records are longer than max_model_len " + p.notes.value("max_model_len", nlohmann::json(0)).dump() +
                                " (prompt + output tokens)");
  const int64_t n = static_cast<int64_t>(w.items.size());
  double rate = 0;
  std::vector<double> arrivals;
  if (trace) {
    // Requests over max_model_len were dropped from the workload: the trace's first n times serve the rest.
    arrivals = trace_times(*trace, n, load.rate.value_or(0.0));
    rate = load.rate.value_or(trace_rate(*trace, n));
    p.notes["trace"] = {{"path", trace->path}, {"format", trace->format}, {"arrivals", trace->times.size()},
                        {"used", n}, {"recorded_rate", trace_rate(*trace, n)}, {"span_s", arrivals.back()}};
  } else {
    ArrivalOptions a;
    a.rate = rate = *load.rate;
    a.kind = load.arrival;
    a.burstiness = load.burstiness;
    a.seed = load.arrival_seed;
    a.ramp = load.ramp;
    a.ramp_start_rate = load.ramp_start_rate;
    arrivals = arrival_times(w.sessions.empty() ? n : static_cast<int64_t>(w.sessions.size()), a);
  }
  std::optional<SessionSchedule> sessions;
  if (!w.sessions.empty()) {
    // Sessions arrive at -X sessions/s; a later turn waits for the turn before it, then the think time.
    if (trace) throw std::invalid_argument("--trace: a multi-turn run draws its session arrivals (-X sessions/s)");
    SessionSchedule sch;
    sch.sessions = w.sessions;
    sch.start_s = arrivals;
    sch.think_s = think_times(n, load.think_time, load.arrival_seed ^ 0x7468696e6bULL);  // "think"
    arrivals.assign(static_cast<size_t>(n), 0.0);
    for (size_t s = 0; s < sch.sessions.size(); ++s) arrivals[sch.sessions[s][0]] = sch.start_s[s];
    for (size_t s = 0; s < sch.sessions.size(); ++s) sch.think_s[sch.sessions[s][0]] = 0;
    sessions = std::move(sch);
  }

  std::unique_ptr<LogitsDump> dump;
  if (!c.logits.path.empty() || !c.logits.npy_dir.empty()) {
    if (!sut.in_process) throw std::invalid_argument("--dump-logits needs the in-process engine");
    accuracy::FileInfo info;
    info.model = sut.model_id;
    info.vocab_size = sut.vocab_size;
    info.dtype = c.logits.dtype;
    info.producer = "loadgen (" + sut.client->describe() + ")";
    dump = std::make_unique<LogitsDump>(c.logits.path, info, accuracy::WriterOptions{}, w.items, c.logits.npy_dir);
  }

  std::unique_ptr<LogprobsDump> lp_dump;
  if (!c.logprobs.path.empty()) {
    accuracy::FileInfo info;
    info.model = sut.model_id;
    // With --reference, BASE's vocabulary (the files must agree); else the --tokenizer's.
    info.vocab_size = p.notes.value("reference_vocab_size", sut.vocab_size);
    info.top_k = c.logprobs.top_k;
    info.producer = "loadgen (" + sut.client->describe() + ", top " + std::to_string(c.logprobs.top_k) + " logprobs)";
    if (info.vocab_size <= 0)
      throw std::invalid_argument("--dump-logprobs: the vocabulary size is unknown; give --tokenizer (the server's tokenizer.model)");
    TokenIdMap map;
    if (!c.sut.http.tokenizer.empty()) map = TokenIdMap(*engine::load_tokenizer(c.sut.http.tokenizer));
    lp_dump = std::make_unique<LogprobsDump>(c.logprobs.path, info, w.items, std::move(map), sut.tokenize);
  }

  RunPlan plan;
  plan.max_concurrency = load.max_concurrency;
  plan.closed_loop = load.closed_loop;
  plan.drain_timeout_s = load.drain_timeout_s;
  plan.progress = ProgressLine::wanted(c.output.quiet) && (std::isinf(rate) || w.items.size() / rate > 3.0);
  plan.warmup = load.warmup;
  if (sut.in_process && c.sut.engine.enable_prefix_caching) plan.engine_stats = sut.engine_stats;
  plan.metrics.target_rate = rate;
  plan.metrics.slo = c.output.slo;
  plan.metrics.failures_as_inf = c.output.failures_as_inf;
  results::Summary meta;
  describe_run(c, sut, rate, p.notes, &meta);
  if (!c.output.out.empty()) {
    // Nothing lost: the directory and settings.json exist from the start; records are appended as requests end.
    results::write_run_settings_json(c.output.out, settings_file(meta, n));
    plan.record_log = std::make_shared<results::RecordLog>(c.output.out);
  }
  plan.interrupt = interrupt;
  plan.stop_on_saturation = c.trust.stop_on_saturation;
  plan.log = log;
  plan.sessions = std::move(sessions);
  plan.tokenize = sut.tokenize;
  std::unique_ptr<MetricsScraper> scraper = start_server_side(c, log);
  RequestObserver* observer = dump ? static_cast<RequestObserver*>(dump.get()) : lp_dump.get();
  RunResult r = run_schedule(*sut.client, w.items, w.prompt_lens, arrivals, plan, observer);
  if (scraper) {
    r.server_metrics = scraper->stop(r.t0);
    r.summary.server_metrics = scraper->summary();
    if (log && r.summary.server_metrics->failed())
      *log << "server metrics: scraping failed: " << r.summary.server_metrics->first_error << '\n';
  }
  if (plan.record_log && !plan.record_log->error().empty() && log)
    *log << "warning: " << plan.record_log->error() << " (the records are written again at the end)\n";
  if (lp_dump) {
    lp_dump->close();
    r.logits_written = lp_dump->written();
    p.notes["logprobs_file"] = c.logprobs.path;
    p.notes["logprobs_written"] = r.logits_written;
    p.notes["logprobs_unmapped"] = lp_dump->unmapped();
    if (log && lp_dump->unmapped() > 0)
      *log << "logprobs: " << lp_dump->unmapped() << " token strings mapped to no single id (recorded as unmapped)\n";
    if (lp_dump->malformed() > 0) {
      p.notes["logprobs_malformed"] = lp_dump->malformed();
      p.notes["logprobs_first_malformed"] = lp_dump->first_malformed();
      if (log)
        *log << "warning: logprobs: " << lp_dump->malformed() << " requests not written to " << c.logprobs.path
             << ", their logprobs not JSON (" << lp_dump->first_malformed() << ")\n";
    }
  }
  if (dump && r.summary.interruption) {
    // All or nothing: an interrupted run's logits are not renamed to the final name.
    p.notes["logits_file"] = nullptr;
    p.notes["logits_not_written"] = c.logits.path + ": not written, the run was interrupted (the partial " +
                                    c.logits.path + ".tmp is removed; a killed run leaves it behind)";
    if (log) *log << "--dump-logits: " << p.notes["logits_not_written"].get<std::string>() << '\n';
    dump.reset();
  } else if (dump) {
    dump->close();
    r.logits_written = dump->written();
    p.notes["logits_file"] = c.logits.path;
    p.notes["logits_written"] = r.logits_written;
  }
  results::Summary& sm = r.summary;  // computed from the records; the description goes over it
  sm.date = meta.date;
  sm.backend = meta.backend;
  sm.label = meta.label;
  sm.model_id = meta.model_id;
  sm.tokenizer_id = meta.tokenizer_id;
  sm.burstiness = meta.burstiness;
  sm.max_concurrency = meta.max_concurrency;
  sm.engine = meta.engine;
  sm.settings = meta.settings;
  sm.workload = p.notes;
  r.timeslices = timeslices(r.rows, c.trust.timeslice_s);
  if (c.trust.steady_state) sm.steady_state = steady_state(r.rows);
  sm.validity = judge_validity(sm, r.rows, c.trust.validity);
  if (load.warmup > 0) {
    const WarmupResult& wu = r.warmup;
    sm.workload["warmup"] = {{"requests", wu.requests}, {"ok", wu.ok}, {"seconds", wu.seconds},
                             {"first_failure", wu.first_failure}};
    if (log)
      *log << "warm-up: " << wu.ok << " of " << wu.requests << " requests ok in " << format_fixed(wu.seconds, 2) << " s"
           << (wu.first_failure.empty() ? "" : " (first failure: " + wu.first_failure + ")") << '\n';
  }
  return r;
}

}  // namespace loadgen
