// --dump-logprobs FILE.h5: each completed request's server log-probabilities (StepLogprobs per step) go to a
// top-K logits file (accuracy/logits_file.h, version 3: batched appends). Ids the server gave are kept; token
// strings are mapped through TokenIdMap (ambiguous or unknown: kUnmapped, counted in the request's `unmapped`).
// Rows with fewer than K alternatives are padded with kNoToken / -inf.
// The client hands over each event's logprobs as the JSON text the server sent (takes_logprobs_json), having
// only found where the field ends; the text is copied into the spool (logprobs_spool.h: memory faulted in
// before the run) and nothing more is done with it until close(), after the run's last request, reads it —
// checked, parsed, turned into rows, strings mapped — and writes the file. A request whose logprobs are not
// JSON is not written; it is counted in malformed(), the first one named.
// Steps the client read itself (on_logprobs: TGI, or an event the client's scanner left to the DOM) go
// straight into the rows as they arrive, in order with the JSON ones; a request with no JSON at all is
// written during the run by a writer thread, since there is nothing left to read.
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
    /// Once JSON has come: its last event in the spool (steps the client read after the first JSON are in
    /// read_steps, their places marked in the spool).
    uint64_t last = LogprobsSpool::kNone;
    std::vector<StepLogprobs> read_steps;
    /// In close(): what is still to read, in arrival order, from the spool — json[begin, end) in `layout`, or
    /// (kRead) read_steps[begin].
    using Part = LogprobsSpool::Event;
    std::string json;
    std::vector<Part> parts;
    int steps() const { return static_cast<int>(tokens.size()); }
  };
  void append_step(Pending& p, const StepLogprobs& lp, int max_new_tokens) const;
  /// The request's rows with its JSON read and its strings mapped; nullopt (and `error`) when it is malformed.
  /// Takes p's rows (its json and parts stay, to be recycled).
  std::optional<accuracy::RequestLogits> to_request(uint64_t index, Pending& p, std::string& error) const;
  /// to_request and the write, counted (written, unmapped, malformed); on the writer thread, or in close().
  void write_request(uint64_t index, Pending& p);

  const std::vector<WorkItem>& items_;
  int k_;
  TokenIdMap map_;
  TokenizeFn tokenize_;
  std::unique_ptr<accuracy::LogitsWriter> writer_;
  std::unique_ptr<LogprobsSpool> spool_;  ///< the JSON events, until close()
  std::vector<Pending> pending_;  ///< per request; touched only by its callbacks until on_done
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> ready_;   ///< ended requests without JSON, for the writer thread
  std::vector<uint64_t> spooled_;  ///< ended requests with JSON, in the order they ended, for close()
  bool stop_ = false;
  int64_t written_ = 0, unmapped_ = 0, malformed_ = 0;
  std::string first_malformed_;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace loadgen
