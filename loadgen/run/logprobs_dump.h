// --dump-logprobs FILE.h5: each completed request's server log-probabilities (StepLogprobs per step) go to a
// top-K logits file (accuracy/logits_file.h, version 3: batched appends). Ids the server gave are kept; token
// strings are mapped through TokenIdMap (ambiguous or unknown: kUnmapped, counted in the request's `unmapped`).
// Rows with fewer than K alternatives are padded with kNoToken / -inf.
// The client hands over each event's logprobs as the JSON text the server sent (takes_logprobs_json): it is
// appended to the request's pending bytes, and the client's thread pays only for finding where the field ends.
// While the run goes on, a writer thread appends each finished request's bytes to a spool file
// (logprobs_spool.h) and nothing more; close() reads them — checked, parsed, turned into rows, strings mapped —
// and writes the file, after the run's last request. On two cores that reading had cost the client a fifth of
// its requests/s (bench/chat_stream_bench TopLogprobs). A request whose logprobs are not JSON is not written;
// it is counted in malformed(), the first one named.
// Steps the client read itself (on_logprobs: TGI, or an event the client's scanner left to the DOM) go
// straight into the rows as they arrive, in order with the JSON ones; such requests are written by the writer
// thread during the run, since there is nothing left to read.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "accuracy/logits_file.h"
#include "loadgen/run/logprobs_spool.h"
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
  bool takes_logprobs_json(uint64_t) const override { return true; }
  void on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) override;
  void on_done(uint64_t index, const Outcome& outcome) override;

  /// Waits for the writer, reads the spooled requests into the file and closes (renames) it. Rethrows a write
  /// error (LogitsFileError, or the spool's std::runtime_error).
  void close();
  int64_t written() const;
  int64_t unmapped() const;  ///< token strings that mapped to no single id, over all written requests
  int64_t malformed() const;  ///< ok requests not written because their logprobs were not JSON
  std::string first_malformed() const;  ///< "request <sample id>: malformed logprobs: <text>", or ""

 private:
  void writer_loop();
  /// One request's rows so far: what the file will hold, but for the token strings still to map.
  struct Pending {
    std::vector<int32_t> tokens, top_ids;
    std::vector<float> token_logprobs, top_logprobs;
    struct Text { bool top; size_t at; std::string text; };  ///< tokens[at] or top_ids[at], named by text
    std::vector<Text> texts;
    /// Once JSON has come: what is still to read, in arrival order — json[begin, end) in `layout`, or (kRead)
    /// read_steps[begin], a step the client read after the first JSON.
    struct Part { enum Kind : uint8_t { kJson, kRead } kind; LogprobsLayout layout; uint32_t begin, end; };
    std::string json;
    std::vector<Part> parts;
    std::vector<StepLogprobs> read_steps;
    int steps() const { return static_cast<int>(tokens.size()); }
  };
  void append_step(Pending& p, const StepLogprobs& lp, int max_new_tokens) const;
  /// The request's rows with its JSON read and its strings mapped; nullopt (and `error`) when it is malformed.
  /// Takes p's rows (its json and parts stay, to be recycled).
  std::optional<accuracy::RequestLogits> to_request(uint64_t index, Pending& p, std::string& error) const;
  /// to_request and the write, counted (written, unmapped, malformed); on the writer thread, or in close().
  void write_request(uint64_t index, Pending& p);
  /// Hands p's JSON buffers back for the next requests' first chunks.
  void recycle(Pending& p);

  const std::vector<WorkItem>& items_;
  int k_;
  TokenIdMap map_;
  TokenizeFn tokenize_;
  std::unique_ptr<accuracy::LogitsWriter> writer_;
  std::unique_ptr<LogprobsSpool> spool_;  ///< requests whose steps are all JSON, until close()
  std::vector<Pending> pending_;  ///< per request; touched only by its callbacks until on_done
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> ready_;
  /// JSON buffers the writer has read, for the next requests' first chunks (under mu_).
  struct Spare { std::string json; std::vector<Pending::Part> parts; };
  std::vector<Spare> spare_;
  static constexpr size_t kMaxSpare = 256;
  bool stop_ = false;
  int64_t written_ = 0, unmapped_ = 0, malformed_ = 0;
  std::string first_malformed_;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace loadgen
