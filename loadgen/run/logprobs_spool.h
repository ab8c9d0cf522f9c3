// A private temporary file of requests' logprobs as the server sent them: each record a request's index, the
// spans of its events' choices[0].logprobs values and the JSON text they lie in. LogprobsDump appends to it
// during a run instead of reading that JSON (the reading and the HDF5 writes cost the client ~20 µs a request
// at K = 20, on a core the client and the server need when the machine has two), and reads it back in
// close(), after the run's last request. Writes go through a 1 MiB buffer; memory stays bounded however long
// the run. The file is "<path>.spool.tmp" beside the dump and is removed when the spool is destroyed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/clients/token_logprobs.h"

namespace loadgen {

class LogprobsSpool {
 public:
  /// One event's value: json[begin, end) in `layout`.
  struct Span {
    uint32_t begin = 0, end = 0;
    LogprobsLayout layout = LogprobsLayout::kCompletion;
  };

  /// Creates (or empties) the file; throws std::runtime_error naming it when it cannot.
  explicit LogprobsSpool(std::string path);
  ~LogprobsSpool();
  LogprobsSpool(const LogprobsSpool&) = delete;
  LogprobsSpool& operator=(const LogprobsSpool&) = delete;

  /// Appends one request's record; throws std::runtime_error naming the file on a write error (a full disk).
  void append(uint64_t index, const std::vector<Span>& spans, std::string_view json);
  int64_t records() const { return records_; }
  const std::string& path() const { return path_; }

  /// Every record appended so far, in order: fn(index, spans, json); the views live until fn returns. Throws
  /// std::runtime_error naming the file where it cannot be read back whole.
  void for_each(const std::function<void(uint64_t, const std::vector<Span>&, std::string_view)>& fn);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::vector<char> buffer_;  ///< stdio's buffer for f_
  int64_t records_ = 0;
};

}  // namespace loadgen
