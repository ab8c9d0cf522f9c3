#include "loadgen/run/dispatcher.h"

#include <thread>

namespace loadgen {

int64_t dispatch(Client& client, Recorder& recorder, const std::vector<WorkItem>& items,
                 const std::vector<double>& arrival_s, Clock::time_point t0, const DispatchOptions& o,
                 const std::atomic<bool>* stop) {
  int64_t sent = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (stop && stop->load(std::memory_order_relaxed)) break;
    const auto when = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arrival_s[i]));
    if (Clock::now() < when - o.spin) std::this_thread::sleep_until(when - o.spin);
    while (Clock::now() < when) std::this_thread::yield();
    if (o.max_concurrency > 0) {
      // Closed loop: wait for a slot (request i may go once i - C + 1 requests are done).
      const int64_t need = static_cast<int64_t>(i) - o.max_concurrency + 1;
      while (need > 0 && !recorder.wait_done_at_least(need, Clock::now() + std::chrono::milliseconds(100)))
        if (stop && stop->load(std::memory_order_relaxed)) return sent;
      if (o.closed_loop)
        recorder.schedule(i, std::chrono::duration<double>(Clock::now() - t0).count(), -1);
    }
    try {
      client.send(items[i]);
    } catch (const std::exception& e) {
      recorder.fail(i, std::string("send failed: ") + e.what(), Clock::now());
    }
    ++sent;
  }
  return sent;
}

}  // namespace loadgen
