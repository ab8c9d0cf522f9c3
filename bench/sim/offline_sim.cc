#include "bench/sim/offline_sim.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "results/files.h"
#include "results/requests_csv.h"

namespace bench {

std::vector<StepModel::Point> StepModel::parse_table(const std::string& table) {
  std::vector<Point> pts;
  std::stringstream ss(table);
  std::string entry;
  while (std::getline(ss, entry, ',')) {
    const auto colon = entry.find(':');
    Point p;
    size_t used_rows = 0, used_ms = 0;
    try {
      if (colon == std::string::npos) throw std::invalid_argument("no ':'");
      p.rows = std::stoi(entry.substr(0, colon), &used_rows);
      p.seconds = std::stod(entry.substr(colon + 1), &used_ms) / 1e3;
    } catch (const std::exception&) {
      throw std::invalid_argument("step table entry '" + entry + "' is not rows:milliseconds");
    }
    if (used_rows != colon || used_ms != entry.size() - colon - 1 || p.rows < 1 || p.seconds <= 0)
      throw std::invalid_argument("step table entry '" + entry + "' is not rows:milliseconds (rows >= 1, ms > 0)");
    pts.push_back(p);
  }
  if (pts.empty()) throw std::invalid_argument("step table '" + table + "' has no entry");
  std::sort(pts.begin(), pts.end(), [](const Point& a, const Point& b) { return a.rows < b.rows; });
  for (size_t i = 1; i < pts.size(); ++i)
    if (pts[i].rows == pts[i - 1].rows)
      throw std::invalid_argument("step table has rows " + std::to_string(pts[i].rows) + " twice");
  return pts;
}

double StepModel::step_seconds(int rows, int64_t context_tokens) const {
  if (points.empty()) throw std::logic_error("StepModel: no points");
  const auto fixed_at = [&](const Point& p) {
    return p.seconds - double(p.rows) * bench_context * kv_bytes_per_token / bandwidth;
  };
  double fixed;
  if (rows <= points.front().rows) {
    fixed = fixed_at(points.front());
  } else if (rows >= points.back().rows) {
    fixed = fixed_at(points.back()) + (rows - points.back().rows) * row_seconds;
  } else {
    size_t i = 1;
    while (points[i].rows < rows) ++i;
    const Point &a = points[i - 1], &b = points[i];
    fixed = fixed_at(a) + (fixed_at(b) - fixed_at(a)) * double(rows - a.rows) / double(b.rows - a.rows);
  }
  return scale * (fixed + double(context_tokens) * kv_bytes_per_token / bandwidth);
}

std::vector<SimRequest> read_requests_csv(const std::string& path) {
  // results' own reader (RFC 4180 records, every field checked); the columns this needs checked by name first,
  // since the reader takes a file without them as rows without those values.
  const std::string text = results::read_text_file(path);
  size_t pos = 0;
  const std::vector<std::string> header = results::next_csv_record(text, &pos);
  for (const char* name : {"index", "status", "prompt_tokens", "output_tokens"})
    if (std::find(header.begin(), header.end(), name) == header.end())
      throw std::runtime_error(path + ": no column '" + name + "' in the header");
  std::vector<results::RequestRow> rows = results::parse_requests_csv(text, path);
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  std::vector<SimRequest> out;
  out.reserve(rows.size());
  for (const results::RequestRow& r : rows) {
    if (r.status != results::Status::kOk) continue;
    if (r.prompt_tokens.value_or(0) < 1 || r.output_tokens.value_or(0) < 1)
      throw std::runtime_error(path + ": request " + std::to_string(r.index) +
                               ": a request needs >= 1 prompt and output token");
    out.push_back({*r.prompt_tokens, *r.output_tokens});
  }
  return out;
}

std::vector<double> SimResult::throughput_by_part(int parts) const {
  std::vector<double> out(std::max(parts, 0), 0.0);
  if (parts <= 0 || seconds <= 0) return out;
  const double width = seconds / parts;
  for (size_t i = 0; i < step_end.size(); ++i) {
    // a step's tokens land at its end
    const int part = std::min(parts - 1, static_cast<int>(step_end[i] / width * (1 - 1e-12)));
    out[part] += step_outputs[i];
  }
  for (double& v : out) v /= width;
  return out;
}

SimResult simulate_offline(const std::vector<SimRequest>& requests, const StepModel& model,
                           const engine::SchedulerConfig& config) {
  engine::Scheduler sched(config);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto s = std::make_unique<engine::Sequence>();
    s->id = i;
    s->arrival = i;
    s->prompt_tokens.assign(requests[i].prompt_tokens, 5);
    s->sampling.max_new_tokens = requests[i].output_tokens;
    s->sampling.ignore_eos = true;
    sched.add(std::move(s));
  }
  SimResult r;
  std::vector<int32_t> tokens;
  while (sched.has_unfinished()) {
    const engine::ScheduledBatch b = sched.schedule();
    if (b.empty()) throw std::runtime_error("simulate_offline: the scheduler scheduled nothing with work left");
    // Decode rows read their whole context; a prefill chunk its cached prefix once (the tiled kernel).
    int64_t context = 0;
    for (const auto& s : b.seqs) context += s.seq->num_computed_tokens + (s.want_logits && s.num_tokens == 1 ? 1 : 0);
    r.seconds += model.step_seconds(b.num_tokens, context);
    tokens.assign(b.seqs.size(), 7);
    const auto out = sched.postprocess(b, tokens);
    r.steps += 1;
    r.output_tokens += static_cast<int64_t>(out.size());
    r.step_end.push_back(r.seconds);
    r.step_outputs.push_back(static_cast<int>(out.size()));
    sched.take_finished();
  }
  r.preemptions = sched.num_preemptions();
  return r;
}

}  // namespace bench
