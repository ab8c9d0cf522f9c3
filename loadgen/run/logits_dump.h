// --dump-logits: each completed request's captured logits go to the HDF5 logits file (accuracy/logits_file.h)
// as soon as it finishes, from a writer thread, so the run never holds all of them; the file appears under
// its final name only at close() (the writer renames its temporary file).
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

namespace loadgen {

class LogitsDump : public RequestObserver {
 public:
  /// `items` must outlive the dump (prompt tokens and sample ids are read from it). `path` "" writes no HDF5
  /// file; a non-empty `npy_dir` (--dump-logits-npy) also gets one <timestamp>_<sample id>_<steps>.npy per request.
  LogitsDump(const std::string& path, const accuracy::FileInfo& info, const accuracy::WriterOptions& options,
             const std::vector<WorkItem>& items, const std::string& npy_dir = "");
  ~LogitsDump() override;  ///< without close(): stops, and leaves nothing under the final name

  /// Engine thread: one step's logits [vocab] and the token chosen at it.
  void on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) override;
  /// Engine thread: hands a completed request to the writer thread (failed ones are dropped).
  void on_done(uint64_t index, const Outcome& outcome) override;

  /// Waits for the writer, closes (renames) the file. Rethrows a write error (LogitsFileError).
  void close();
  int64_t written() const;
  int64_t dropped() const { return dropped_; }

 private:
  void writer_loop();

  struct Pending {
    std::vector<int32_t> tokens;
    std::vector<float> logits;  ///< [steps, vocab]
  };
  const std::vector<WorkItem>& items_;
  std::unique_ptr<accuracy::LogitsWriter> writer_;
  std::string npy_dir_, npy_timestamp_;
  int vocab_ = 0;
  std::vector<Pending> pending_;  ///< per request; touched only by that request's callbacks until on_done
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> ready_;
  bool stop_ = false;
  int64_t written_ = 0;
  int64_t dropped_ = 0;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace loadgen
