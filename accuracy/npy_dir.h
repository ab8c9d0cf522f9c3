// The competition's logits directories: one .npy per request, named <timestamp>_<request id>_<steps>.npy and
// holding float32 (or float16) logits [steps, vocab] (a leading 1 is allowed). Requests are matched across two
// directories by request id. A name that does not follow the template, or whose steps disagree with its array,
// is reported by name, never dropped silently (the contest lost a request that way).
#pragma once

#include <string>
#include <vector>

#include "accuracy/allclose.h"

namespace accuracy {

struct NpyName {
  std::string timestamp, request_id;
  int steps = 0;
};

/// Parses a file name (no folder) against the template; false when it does not follow it.
bool parse_npy_name(const std::string& file_name, NpyName& out);
/// "<timestamp>_<request id>_<steps>.npy"
std::string npy_name(const std::string& timestamp, const std::string& request_id, int steps);

struct NpyDir {
  std::string path;
  std::vector<std::pair<NpyName, std::string>> files;  ///< parsed name, full path; sorted by request id
  std::vector<std::string> bad;                        ///< sentences naming each file that was not used, and why
};

/// Lists `dir` (throws LogitsFileError when it is not a folder).
NpyDir scan_npy_dir(const std::string& dir);

/// acc_allclose --base_path/--new_path: every request id of either folder compared as dense logits
/// (compare_request; a request's chosen tokens are each row's argmax, as .npy holds logits only).
ComparisonReport compare_npy_dirs(const std::string& base_dir, const std::string& new_dir, const AllcloseOptions& options);

/// loadgen --dump-logits-npy DIR: one request's logits [steps, vocab] under its template name.
void write_npy_request(const std::string& dir, const std::string& timestamp, const std::string& request_id, int steps,
                       int vocab, const std::vector<float>& logits);

}  // namespace accuracy
