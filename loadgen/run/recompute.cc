#include "loadgen/run/recompute.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include "loadgen/run/metrics.h"
#include "loadgen/run/run_config.h"
#include "loadgen/run/validity.h"
#include "loadgen/run/timeslices.h"
#include "results/files.h"
#include "results/record_log.h"
#include "results/requests_csv.h"
#include "results/requests_jsonl.h"
#include "results/summary_json.h"

namespace loadgen {
namespace fs = std::filesystem;

bool is_unfinished_run_dir(const fs::path& dir) {
  return fs::is_regular_file(dir / "settings.json") && !fs::is_regular_file(dir / "summary.json");
}

results::Summary recompute_summary(const fs::path& dir, std::vector<results::Timeslice>* slices) {
  const nlohmann::json settings = results::read_run_settings_json(dir);
  if (settings.empty()) throw std::runtime_error((dir / "settings.json").string() + ": missing (not a run directory)");
  // The description, read with summary.json's own reader (settings.json holds the same fields).
  const results::Summary meta = results::summary_from_json(settings, (dir / "settings.json").string());
  std::vector<results::RequestRow> rows;
  if (fs::is_regular_file(dir / "requests.jsonl"))
    rows = results::parse_requests_jsonl(results::read_text_file(dir / "requests.jsonl"), (dir / "requests.jsonl").string());
  else if (fs::is_regular_file(dir / "requests.csv"))
    rows = results::parse_requests_csv(results::read_text_file(dir / "requests.csv"), (dir / "requests.csv").string());
  const int64_t scheduled = std::max<int64_t>(meta.num_prompts, static_cast<int64_t>(rows.size()));
  std::vector<RequestRecord> records;
  std::set<uint64_t> seen;
  double last_end = 0;
  for (const results::RequestRow& row : rows) {
    if (!seen.insert(row.index).second)
      throw std::runtime_error((dir / "requests.jsonl").string() + ": request " + std::to_string(row.index) +
                               " appears twice");
    records.push_back(record_from_row(row));
    if (row.end_s && std::isfinite(*row.end_s)) last_end = std::max(last_end, *row.end_s);
  }
  const int64_t ended = static_cast<int64_t>(records.size());
  for (int64_t i = 0; i < scheduled; ++i) {
    if (seen.count(static_cast<uint64_t>(i))) continue;
    RequestRecord r;
    r.index = static_cast<uint64_t>(i);
    r.scheduled_s = std::numeric_limits<double>::quiet_NaN();
    r.status = Status::kFailed;
    r.reason = "no record (the run stopped before this request ended)";
    records.push_back(r);
  }
  MetricsOptions o;
  o.target_rate = meta.request_rate;
  o.slo = meta.slo;
  o.failures_as_inf = meta.failures_as_inf;
  // Unrecorded requests have no scheduled time: leave them out of the schedule's span.
  std::vector<RequestRecord> timed;
  for (const RequestRecord& r : records)
    if (!std::isnan(r.scheduled_s)) timed.push_back(r);
  results::Summary s = summarize(timed, o);
  // Count the unrecorded ones as the failures they are.
  for (const RequestRecord& r : records)
    if (std::isnan(r.scheduled_s)) {
      ++s.failed;
      ++s.failures_by_reason[r.reason];
    }
  s.num_prompts = scheduled;
  s.accounted = s.completed + s.failed + s.rejected == s.num_prompts;
  s.drained = false;
  if (ended < scheduled)
    s.kept_up_notes.insert(s.kept_up_notes.begin(), std::to_string(scheduled - ended) + " of " +
                                                        std::to_string(scheduled) + " requests left no record");
  s.kept_up = false;
  s.date = meta.date;
  s.backend = meta.backend;
  s.label = meta.label;
  s.model_id = meta.model_id;
  s.tokenizer_id = meta.tokenizer_id;
  s.burstiness = meta.burstiness;
  s.max_concurrency = meta.max_concurrency;
  s.engine = meta.engine;
  s.settings = meta.settings;
  s.workload = meta.workload;
  results::Interruption& in = s.interruption.emplace();
  in.cause = "killed";
  in.at_s = last_end;
  in.scheduled = scheduled;
  in.sent = ended;  // what the records show; requests in flight at the kill left none
  in.ended = ended;
  in.aborted = 0;
  std::vector<results::RequestRow> ok_rows = rows;
  s.validity = judge_validity(s, ok_rows, validity_options_from_json(s.settings));
  if (slices) {
    const auto it = s.settings.find("timeslice_s");
    *slices = timeslices(rows, it != s.settings.end() && it->is_number() ? it->get<double>() : 10.0);
  }
  return s;
}

}  // namespace loadgen
