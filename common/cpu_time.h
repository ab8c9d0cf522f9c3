// CPU time (user + system) of a thread or of the whole process, in seconds, read from any thread: what the
// client's cost figures (client_cost.cpu_per_request_us) and the benches' CPU counters are made of.
#pragma once

#include <pthread.h>
#include <time.h>

namespace common {

/// The clock's time in seconds; -1 when it cannot be read.
inline double clock_seconds(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// CPU seconds thread `t` has used; -1 when its clock cannot be read (the thread has ended).
inline double thread_cpu_seconds(pthread_t t) {
  clockid_t clock;
  if (pthread_getcpuclockid(t, &clock) != 0) return -1;
  return clock_seconds(clock);
}

inline double this_thread_cpu_seconds() { return clock_seconds(CLOCK_THREAD_CPUTIME_ID); }
inline double process_cpu_seconds() { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

}  // namespace common
