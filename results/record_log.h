// A run's records on disk as they happen (docs/formats.md, "Nothing lost"): settings.json is written when the
// run starts, and every request's row is appended to requests.jsonl and requests.csv the moment it ends, each
// line with one write(2) straight to the file (no user-space buffer), so a run killed with SIGKILL keeps every
// request that had ended, and no half line. At the end the run rewrites both files in index order
// (results/run_dir.h); `loadgen report DIR` rebuilds a summary from a directory the run never finished.
#pragma once

#include <atomic>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "results/request_row.h"

namespace results {

class RecordLog {
 public:
  /// Creates `dir` if needed, truncates requests.jsonl and requests.csv (the CSV gets its header line).
  /// Throws std::runtime_error naming the file that cannot be created.
  explicit RecordLog(const std::filesystem::path& dir);
  ~RecordLog();
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  /// Appends the row to both files (thread-safe). A write error does not throw (this runs on the client's
  /// thread): the first one is kept for error().
  void append(const RequestRow& row);
  int64_t appended() const { return appended_.load(std::memory_order_relaxed); }
  /// The first write error ("<file>: <reason>"), or "".
  std::string error() const;

 private:
  void write_all(int fd, const std::string& text, const std::filesystem::path& path);
  std::filesystem::path jsonl_path_, csv_path_;
  int jsonl_fd_ = -1, csv_fd_ = -1;
  mutable std::mutex mu_;
  std::string error_;
  std::atomic<int64_t> appended_{0};
};

/// settings.json: what the run is, written before its first request (`run` holds the summary's metadata
/// fields and "settings"; "num_prompts" is the number of requests scheduled). Atomic (tmp + rename).
void write_run_settings_json(const std::filesystem::path& dir, const nlohmann::json& run);
/// {} when the directory has no settings.json; throws naming the file when it is malformed.
nlohmann::json read_run_settings_json(const std::filesystem::path& dir);

}  // namespace results
