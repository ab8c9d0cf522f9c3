// SIGINT / SIGTERM as the run sees them: the command line's signal handler counts signals into an Interrupt
// (lock-free atomics, safe in a handler) and the run polls it. First signal: stop sending, give the requests in
// flight --drain-timeout, write an interrupted summary. Second: abort those still in flight (each recorded as
// failed "interrupted").
#pragma once

#include <atomic>
#include <string>

namespace loadgen {

struct Interrupt {
  std::atomic<int> count{0};   ///< signals received
  std::atomic<int> signal{0};  ///< the first one's number
  static_assert(std::atomic<int>::is_always_lock_free);
};

/// "SIGINT", "SIGTERM", else "signal N".
std::string signal_name(int sig);

}  // namespace loadgen
