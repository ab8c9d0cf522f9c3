#include "accuracy/npy_dir.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "accuracy/npy.h"
#include "accuracy/text.h"

namespace accuracy {
namespace {

namespace fs = std::filesystem;

bool digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Dense RequestLogits from one .npy: [steps, vocab] or [1, steps, vocab]; tokens are the rows' argmax.
RequestLogits load_request(const std::string& path, const NpyName& name, int& vocab) {
  NpyArray a = read_npy(path);
  if (a.shape.size() == 3 && a.shape[0] == 1) a.shape.erase(a.shape.begin());
  if (a.shape.size() != 2) throw NpyError(cat(path, ": logits must be [steps, vocab], got ", a.shape.size(), " dimensions"));
  if (a.shape[0] != name.steps)
    throw NpyError(cat(path, ": the name says ", name.steps, " steps, the array holds ", a.shape[0]));
  vocab = static_cast<int>(a.shape[1]);
  RequestLogits r;
  r.id = name.request_id;
  r.logits = std::move(a.data);
  for (int s = 0; s < name.steps; ++s) {
    const float* row = r.logits.data() + static_cast<size_t>(s) * vocab;
    r.tokens.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
  }
  return r;
}

}  // namespace

bool parse_npy_name(const std::string& file_name, NpyName& out) {
  static constexpr std::string_view kExt = ".npy";
  if (file_name.size() <= kExt.size() || file_name.compare(file_name.size() - kExt.size(), kExt.size(), kExt) != 0)
    return false;
  const std::string stem = file_name.substr(0, file_name.size() - kExt.size());
  const size_t last = stem.rfind('_');
  if (last == std::string::npos || last == 0) return false;
  const size_t mid = stem.rfind('_', last - 1);
  if (mid == std::string::npos || mid == 0) return false;
  NpyName n;
  n.timestamp = stem.substr(0, mid);
  n.request_id = stem.substr(mid + 1, last - mid - 1);
  const std::string steps = stem.substr(last + 1);
  if (n.request_id.empty() || !digits(steps) || steps.size() > 9) return false;
  n.steps = std::stoi(steps);
  out = n;
  return true;
}

std::string npy_name(const std::string& timestamp, const std::string& request_id, int steps) {
  return cat(timestamp, "_", request_id, "_", steps, ".npy");
}

NpyDir scan_npy_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw LogitsFileError(cat(".npy folder ", dir, ": not a folder"));
  NpyDir d;
  d.path = dir;
  std::map<std::string, std::string> seen;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    NpyName n;
    if (!parse_npy_name(name, n)) {
      d.bad.push_back(cat(dir, ": '", name, "' does not follow <timestamp>_<request id>_<steps>.npy; not compared"));
      continue;
    }
    if (auto it = seen.find(n.request_id); it != seen.end()) {
      d.bad.push_back(cat(dir, ": '", name, "' repeats request id ", n.request_id, " (also in '", it->second, "'); not compared"));
      continue;
    }
    seen[n.request_id] = name;
    d.files.emplace_back(n, e.path().string());
  }
  std::sort(d.files.begin(), d.files.end(), [](const auto& a, const auto& b) {
    const bool na = digits(a.first.request_id), nb = digits(b.first.request_id);
    if (na != nb) return na;
    if (na && a.first.request_id.size() != b.first.request_id.size())
      return a.first.request_id.size() < b.first.request_id.size();
    return a.first.request_id < b.first.request_id;
  });
  return d;
}

ComparisonReport compare_npy_dirs(const std::string& base_dir, const std::string& new_dir, const AllcloseOptions& options) {
  const NpyDir base = scan_npy_dir(base_dir), cand = scan_npy_dir(new_dir);
  ComparisonReport report;
  report.base_path = base_dir;
  report.new_path = new_dir;
  report.options = options;
  for (const auto& b : base.bad) report.errors.push_back(b);
  for (const auto& b : cand.bad) report.errors.push_back(b);
  std::map<std::string, std::string> new_files;
  for (const auto& [n, p] : cand.files) new_files[n.request_id] = p;
  std::map<std::string, bool> in_base;
  std::vector<std::pair<NpyName, std::string>> order = base.files;
  for (const auto& f : base.files) in_base[f.first.request_id] = true;
  for (const auto& f : cand.files)
    if (!in_base.count(f.first.request_id)) order.push_back(f);
  for (const auto& [name, path] : order) {
    RequestComparison rc;
    rc.id = name.request_id;
    const bool have_base = in_base.count(name.request_id) > 0, have_new = new_files.count(name.request_id) > 0;
    try {
      if (!have_new) {
        rc.error = "missing from NEW (" + new_dir + ")";
      } else if (!have_base) {
        rc.error = "missing from BASE (" + base_dir + ")";
      } else {
        NpyName nn;
        parse_npy_name(fs::path(new_files[name.request_id]).filename().string(), nn);
        int vb = 0, vn = 0;
        const RequestLogits b = load_request(path, name, vb), c = load_request(new_files[name.request_id], nn, vn);
        report.vocab_base = vb, report.vocab_new = vn;
        if (vb != vn) rc.error = cat("vocab sizes differ (BASE ", vb, ", NEW ", vn, ")");
        else {
          rc = compare_request(b, c, vb, options);
          const int sb = options.max_steps >= 0 ? std::min(b.n_steps(), options.max_steps) : b.n_steps();
          const int sn = options.max_steps >= 0 ? std::min(c.n_steps(), options.max_steps) : c.n_steps();
          if (sb != sn) rc.passed = false, rc.error = cat("step counts differ (BASE ", sb, ", NEW ", sn, ")");
        }
      }
    } catch (const NpyError& e) {
      rc.error = e.what();
    }
    if (!rc.error.empty()) rc.passed = false;
    if (rc.passed) ++report.passed;
    else report.errors.push_back(rc.failure_message(options));
    report.requests.push_back(std::move(rc));
  }
  return report;
}

void write_npy_request(const std::string& dir, const std::string& timestamp, const std::string& request_id, int steps,
                       int vocab, const std::vector<float>& logits) {
  write_npy((fs::path(dir) / npy_name(timestamp, request_id, steps)).string(), {steps, vocab}, logits);
}

}  // namespace accuracy
