#include "results/run_dir.h"

#include <stdexcept>

#include "results/files.h"
#include "results/requests_csv.h"
#include "results/requests_jsonl.h"
#include "results/summary_json.h"
#include "results/server_metrics_jsonl.h"
#include "results/timeslices_csv.h"

namespace results {
namespace fs = std::filesystem;

void write_run_dir(const fs::path& dir, const Summary& summary, const std::vector<RequestRow>& rows,
                   const std::vector<ServerScrape>& server_metrics) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir.string() + ": cannot create the output directory: " + ec.message());
  write_requests_csv(dir / "requests.csv", rows);
  write_requests_jsonl(dir / "requests.jsonl", rows);
  write_summary_json(dir / "summary.json", summary);
  write_server_metrics_jsonl(dir / "server_metrics.jsonl", server_metrics);
}

bool is_run_dir(const fs::path& dir) { return fs::is_regular_file(dir / "summary.json"); }

RunData load_run(const fs::path& dir) {
  RunData run;
  run.dir = dir;
  const fs::path summary_path = dir / "summary.json";
  if (!fs::is_regular_file(summary_path)) throw std::runtime_error(summary_path.string() + ": missing (not a run directory)");
  run.summary = read_summary_json(summary_path);
  run.label = !run.summary.label.empty() ? run.summary.label : fs::absolute(dir).lexically_normal().filename().string();
  if (run.label.empty()) run.label = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  if (fs::is_regular_file(dir / "server_metrics.jsonl"))
    run.server_metrics = parse_server_metrics_jsonl(read_text_file(dir / "server_metrics.jsonl"),
                                                    (dir / "server_metrics.jsonl").string());
  if (fs::is_regular_file(dir / "requests.jsonl")) {
    run.requests = parse_requests_jsonl(read_text_file(dir / "requests.jsonl"), (dir / "requests.jsonl").string());
    run.has_chunks = true;
  } else if (fs::is_regular_file(dir / "requests.csv")) {
    run.requests = parse_requests_csv(read_text_file(dir / "requests.csv"), (dir / "requests.csv").string());
  }
  if (fs::is_regular_file(dir / "timeslices.csv"))
    run.timeslices = parse_timeslices_csv(read_text_file(dir / "timeslices.csv"), (dir / "timeslices.csv").string());
  return run;
}

}  // namespace results
