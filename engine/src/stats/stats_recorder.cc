#include "stats/stats_recorder.h"

namespace engine {

StatsRecorder::StatsRecorder(int64_t kv_blocks_total, Clock::time_point now) : last_record_(now) {
  stats_.kv_blocks_total = kv_blocks_total;
}

void StatsRecorder::record(const StepRecord& step, Clock::time_point now) {
  if (step.ran_batch) stats_.steps++;
  stats_.prompt_tokens_total += step.prompt_tokens;
  stats_.generated_tokens_total += step.generated_tokens;
  stats_.running = step.running;
  stats_.waiting = step.waiting;
  stats_.kv_blocks_used = step.kv_blocks_used;
  stats_.preemptions_total = step.preemptions_total;
  stats_.prefix_cache_queries = step.prefix_cache.queried_tokens;
  stats_.prefix_cache_hits = step.prefix_cache.hit_tokens;
  stats_.prefix_cache_block_queries = step.prefix_cache.queried_blocks;
  stats_.prefix_cache_block_hits = step.prefix_cache.hit_blocks;

  // The rate is the tokens of the steps after the window's oldest over the time since that step ended: the
  // oldest entry only marks where the window starts (its tokens were produced before that instant).
  window_.emplace_back(now, step.generated_tokens);
  window_tokens_ += step.generated_tokens;
  while (window_.size() > 1 && now - window_.front().first > kWindow) {
    window_tokens_ -= window_.front().second;
    window_.pop_front();
  }
  const double span = std::chrono::duration<double>(now - window_.front().first).count();
  stats_.tokens_per_s = span > 0 ? static_cast<double>(window_tokens_ - window_.front().second) / span : 0.0;
  last_record_ = now;
}

EngineStats StatsRecorder::snapshot(Clock::time_point now) const {
  EngineStats s = stats_;
  if (now - last_record_ > kWindow) s.tokens_per_s = 0;  // idle since
  return s;
}

}  // namespace engine
