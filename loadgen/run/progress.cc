#include "loadgen/run/progress.h"

#include <unistd.h>

#include <cstdio>

#include "common/thread_name.h"

namespace loadgen {

ProgressLine::ProgressLine(const Recorder& recorder, int64_t total, double expected_s, bool enabled)
    : rec_(recorder), total_(total), expected_s_(expected_s) {
  if (enabled)
    thread_ = std::thread([this] {
      common::name_this_thread("lg-progress");
      loop();
    });
}

ProgressLine::~ProgressLine() { stop(); }

bool ProgressLine::wanted(bool quiet) { return !quiet && isatty(STDERR_FILENO); }

void ProgressLine::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

void ProgressLine::loop() {
  const auto start = Clock::now();
  int64_t last_tokens = 0;
  double last_t = 0, rate = 0;
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, std::chrono::milliseconds(500), [&] { return stop_; })) {
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    const int64_t tokens = rec_.tokens();
    rate = (tokens - last_tokens) / std::max(t - last_t, 1e-3);
    last_tokens = tokens;
    last_t = t;
    if (t < 2.0) continue;  // short runs stay silent
    const int64_t sent = rec_.sent(), done = rec_.done();
    // ETA: the rest of the schedule, or, once everything is sent, the remaining requests at the done rate.
    double eta = expected_s_ - t;
    if (sent >= total_ && done > 0) eta = (total_ - done) * t / done;
    std::fprintf(stderr, "\r\033[Ksent %lld/%lld | done %lld | in flight %lld | %.0f tok/s | %.0fs elapsed, ETA %.0fs",
                 static_cast<long long>(sent), static_cast<long long>(total_), static_cast<long long>(done),
                 static_cast<long long>(sent - done), rate, t, eta > 0 ? eta : 0.0);
    std::fflush(stderr);
    drawn_ = true;
  }
}

}  // namespace loadgen
