// The live progress line on stderr (sent, done, in flight, tokens/s, elapsed / ETA), redrawn twice a second
// while the run lasts; only on a terminal, and only once the run has gone on for a couple of seconds.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "loadgen/run/recorder.h"

namespace loadgen {

class ProgressLine {
 public:
  /// `expected_s`: the schedule's length (for the ETA); `enabled`: false → does nothing.
  ProgressLine(const Recorder& recorder, int64_t total, double expected_s, bool enabled);
  ~ProgressLine();  ///< stops and clears the line
  void stop();

  /// stderr is a terminal and --quiet is off.
  static bool wanted(bool quiet);

 private:
  void loop();
  const Recorder& rec_;
  int64_t total_;
  double expected_s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool drawn_ = false;
  std::thread thread_;
};

}  // namespace loadgen
