#include "results/record_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "results/files.h"
#include "results/requests_csv.h"
#include "results/requests_jsonl.h"

namespace results {
namespace fs = std::filesystem;

namespace {

int open_truncated(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path.string() + ": cannot open for writing: " + std::strerror(errno));
  return fd;
}

}  // namespace

RecordLog::RecordLog(const fs::path& dir) : jsonl_path_(dir / "requests.jsonl"), csv_path_(dir / "requests.csv") {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir.string() + ": cannot create the output directory: " + ec.message());
  jsonl_fd_ = open_truncated(jsonl_path_);
  try {
    csv_fd_ = open_truncated(csv_path_);
  } catch (...) {
    ::close(jsonl_fd_);
    throw;
  }
  write_all(csv_fd_, std::string(requests_csv_header()) + "\n", csv_path_);
  if (!error_.empty()) throw std::runtime_error(error_);
}

RecordLog::~RecordLog() {
  if (jsonl_fd_ >= 0) ::close(jsonl_fd_);
  if (csv_fd_ >= 0) ::close(csv_fd_);
}

void RecordLog::write_all(int fd, const std::string& text, const fs::path& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (error_.empty()) error_ = path.string() + ": write failed: " + std::strerror(errno);
      return;
    }
    done += static_cast<size_t>(n);
  }
}

void RecordLog::append(const RequestRow& row) {
  // Formatted on the caller's thread into buffers it keeps (no allocation once they have grown), then written
  // under the lock so lines from different threads never interleave.
  thread_local std::string line, csv;
  line.clear();
  csv.clear();
  append_request_jsonl(line, row);
  append_requests_csv_row(csv, row);
  std::lock_guard lk(mu_);
  write_all(jsonl_fd_, line, jsonl_path_);
  write_all(csv_fd_, csv, csv_path_);
  appended_.fetch_add(1, std::memory_order_relaxed);
}

std::string RecordLog::error() const {
  std::lock_guard lk(mu_);
  return error_;
}

void write_run_settings_json(const fs::path& dir, const nlohmann::json& run) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir.string() + ": cannot create the output directory: " + ec.message());
  write_file_atomically(dir / "settings.json", run.dump(2) + "\n");
}

nlohmann::json read_run_settings_json(const fs::path& dir) {
  const fs::path p = dir / "settings.json";
  if (!fs::is_regular_file(p)) return nlohmann::json::object();
  try {
    nlohmann::json j = nlohmann::json::parse(read_text_file(p));
    if (!j.is_object()) throw std::runtime_error(p.string() + ": not a JSON object");
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(p.string() + ": invalid JSON (" + e.what() + ")");
  }
}

}  // namespace results
