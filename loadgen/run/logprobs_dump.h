// --dump-logprobs FILE.h5: each completed request's server log-probabilities (StepLogprobs per step) go to a
// top-K logits file (accuracy/logits_file.h, version 3: batched appends) from a writer thread. Ids the
// server gave are kept; token strings are mapped through TokenIdMap (ambiguous or unknown: kUnmapped, counted
// in the request's `unmapped`). Rows with fewer than K alternatives are padded with kNoToken / -inf.
// Each step goes straight into the request's rows as it arrives (ids and floats; the strings to map are kept
// aside and mapped on the writer thread), so the client thread neither copies a StepLogprobs nor frees one.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "accuracy/logits_file.h"
#include "loadgen/run/recorder.h"
#include "loadgen/run/token_id_map.h"
#include "loadgen/workload/workload.h"

namespace loadgen {

class LogprobsDump : public RequestObserver {
 public:
  /// `info.top_k` = K > 0. `items` must outlive the dump (prompt tokens and sample ids are read from it);
  /// `tokenize` gives the prompt tokens of items sent as text.
  LogprobsDump(const std::string& path, const accuracy::FileInfo& info, const std::vector<WorkItem>& items,
               TokenIdMap map, TokenizeFn tokenize);
  ~LogprobsDump() override;  ///< without close(): stops, and leaves nothing under the final name

  void on_logprobs(uint64_t index, int step, const StepLogprobs& lp) override;
  void on_done(uint64_t index, const Outcome& outcome) override;

  /// Waits for the writer, closes (renames) the file. Rethrows a write error (LogitsFileError).
  void close();
  int64_t written() const;
  int64_t unmapped() const;  ///< token strings that mapped to no single id, over all written requests

 private:
  void writer_loop();
  /// One request's rows so far: what the file will hold, but for the token strings still to map.
  struct Pending {
    std::vector<int32_t> tokens, top_ids;
    std::vector<float> token_logprobs, top_logprobs;
    struct Text { bool top; size_t at; std::string text; };  ///< tokens[at] or top_ids[at], named by text
    std::vector<Text> texts;
    int steps() const { return static_cast<int>(tokens.size()); }
  };
  accuracy::RequestLogits to_request(uint64_t index, Pending p) const;

  const std::vector<WorkItem>& items_;
  int k_;
  TokenIdMap map_;
  TokenizeFn tokenize_;
  std::unique_ptr<accuracy::LogitsWriter> writer_;
  std::vector<Pending> pending_;  ///< per request; touched only by its callbacks until on_done
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> ready_;
  bool stop_ = false;
  int64_t written_ = 0, unmapped_ = 0;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace loadgen
