#include "loadgen/run_output.h"

#include <ctime>
#include <stdexcept>

#include "reports/csv_writer.h"
#include "reports/json_writer.h"

namespace loadgen {

std::string default_out_dir() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return std::string("reports/runs/") + buf;
}

void write_run_dir(const std::filesystem::path& dir, const RunResult& r) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir.string() + ": cannot create the output directory: " + ec.message());
  reports::write_requests_csv((dir / "requests.csv").string(), r.rows);
  reports::write_requests_jsonl((dir / "requests.jsonl").string(), r.rows);
  reports::write_summary_json((dir / "summary.json").string(), r.summary);
}

}  // namespace loadgen
