#include "loadgen/run/recorder.h"

#include <cmath>
#include <stdexcept>

#include "loadgen/run/metrics.h"

namespace loadgen {

Recorder::Recorder(Clock::time_point t0, std::vector<int64_t> sample_ids, std::vector<double> scheduled_s,
                   std::vector<int> prompt_lens, std::vector<int> expected_tokens)
    : t0_(t0) {
  const size_t n = scheduled_s.size();
  if (sample_ids.size() != n || prompt_lens.size() != n || expected_tokens.size() != n)
    throw std::invalid_argument("Recorder: per-request vectors differ in length");
  slots_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Slot>();
    s->rec.index = i;
    s->rec.sample_id = sample_ids[i];
    s->rec.scheduled_s = scheduled_s[i];
    s->rec.prompt_tokens = prompt_lens[i];
    s->rec.chunk_times_s.reserve(static_cast<size_t>(std::max(expected_tokens[i], 0)) + 1);
    s->rec.chunk_tokens.reserve(static_cast<size_t>(std::max(expected_tokens[i], 0)) + 1);
    s->rec.chunk_lag_s.reserve(static_cast<size_t>(std::max(expected_tokens[i], 0)) / kChunkTimingStride + 2);
    slots_.push_back(std::move(s));
  }
}

void Recorder::on_sent(uint64_t index, Clock::time_point t) {
  if (index >= slots_.size()) return;
  Slot& s = *slots_[index];
  {
    std::lock_guard lk(s.mu);
    if (!std::isnan(s.rec.send_s)) return;
    s.rec.send_s = secs(t);
  }
  sent_.fetch_add(1, std::memory_order_relaxed);
}

void Recorder::on_chunk(uint64_t index, int n_tokens, std::string_view, Clock::time_point t) {
  if (index >= slots_.size()) return;
  Slot& s = *slots_[index];
  // The client's own cost is sampled: a request's first chunk and every 8th after it get their record lag
  // (arrival -> here) and the callback's duration measured. Two clock reads on every chunk were a fifth of
  // loadgen's cost per streamed token; callback_ns() scales the sample up to every call.
  const bool timed = s.chunks_seen.fetch_add(1, std::memory_order_relaxed) % kChunkTimingStride == 0;
  const Clock::time_point now = timed ? Clock::now() : Clock::time_point();
  {
    std::lock_guard lk(s.mu);
    if (s.rec.done) return;
    if (s.rec.chunk_times_s.empty() && n_tokens > 0) {
      ttft_sum_us_.fetch_add(static_cast<int64_t>((secs(t) - s.rec.scheduled_s) * 1e6), std::memory_order_relaxed);
      first_tokens_.fetch_add(1, std::memory_order_relaxed);
    }
    s.rec.chunk_times_s.push_back(secs(t));
    s.rec.chunk_tokens.push_back(n_tokens);
    if (timed) s.rec.chunk_lag_s.push_back(std::chrono::duration<float>(now - t).count());
  }
  tokens_.fetch_add(n_tokens, std::memory_order_relaxed);
  if (timed) {
    chunk_timed_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - now).count(),
                              std::memory_order_relaxed);
  }
}

int64_t Recorder::callback_ns() const {
  // Calls and timed calls from the per-request counters (read once, at the end of a run).
  int64_t calls = 0, timed = 0;
  for (const auto& s : slots_) {
    const int64_t c = s->chunks_seen.load(std::memory_order_relaxed);
    calls += c;
    timed += (c + static_cast<int64_t>(kChunkTimingStride) - 1) / static_cast<int64_t>(kChunkTimingStride);
  }
  const double chunks = timed > 0 ? static_cast<double>(chunk_timed_ns_.load(std::memory_order_relaxed)) *
                                        static_cast<double>(calls) / static_cast<double>(timed)
                                  : 0.0;
  return callback_ns_.load(std::memory_order_relaxed) + static_cast<int64_t>(chunks);
}

void Recorder::on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) {
  if (RequestObserver* o = observer_.load()) o->on_logits(index, step, token, logits);
}

void Recorder::end_locked(Slot& s) {
  if (log_) log_->append(request_row(s.rec));
}

void Recorder::on_logprobs(uint64_t index, int step, const StepLogprobs& lp) {
  if (RequestObserver* o = observer_.load()) o->on_logprobs(index, step, lp);
}

bool Recorder::takes_logprobs_json(uint64_t index) const {
  const RequestObserver* o = observer_.load();
  return o != nullptr && o->takes_logprobs_json(index);
}

void Recorder::on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) {
  if (RequestObserver* o = observer_.load()) o->on_logprobs_json(index, layout, json);
}

void Recorder::on_done(uint64_t index, const Outcome& o, Clock::time_point t) {
  if (index >= slots_.size()) return;
  const Clock::time_point now = Clock::now();
  Slot& s = *slots_[index];
  {
    std::lock_guard lk(s.mu);
    if (s.rec.aborted) return;  // the run cut it off already; its late end is not a second outcome
    if (s.rec.done) {  // a client bug: keep the first outcome, count the violation
      duplicate_done_.fetch_add(1);
      return;
    }
    RequestRecord& r = s.rec;
    r.done = true;
    r.end_s = secs(t);
    r.status = o.status;
    r.reason = o.reason;
    r.finish_reason = o.finish_reason;
    r.first_token = o.first_token != FirstToken::kNone ? o.first_token
                    : r.chunk_times_s.empty()          ? FirstToken::kNone
                                                       : FirstToken::kContent;
    if (o.prompt_tokens >= 0) r.prompt_tokens = o.prompt_tokens;
    if (o.output_tokens >= 0) {
      r.output_tokens = o.output_tokens;
      r.count_source = o.count_source;
    } else {
      int sum = 0;
      for (int k : r.chunk_tokens) sum += k;
      r.output_tokens = sum;
      r.count_source = TokenCountSource::kChunks;
    }
    end_locked(s);
  }
  if (RequestObserver* ob = observer_.load()) ob->on_done(index, o);
  notify_done(done_.fetch_add(1) + 1);
  callback_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - now).count(),
                         std::memory_order_relaxed);
}

int64_t Recorder::abort_unfinished(const std::string& reason, Clock::time_point t) {
  int64_t n = 0;
  for (auto& sp : slots_) {
    Slot& s = *sp;
    std::lock_guard lk(s.mu);
    if (s.rec.done || std::isnan(s.rec.send_s)) continue;
    RequestRecord& r = s.rec;
    r.done = true;
    r.aborted = true;
    r.end_s = secs(t);
    r.status = Status::kFailed;
    r.reason = reason;
    int sum = 0;
    for (int k : r.chunk_tokens) sum += k;
    r.output_tokens = sum;
    r.count_source = TokenCountSource::kChunks;
    end_locked(s);
    ++n;
  }
  aborted_.fetch_add(n);
  notify_done(done_.fetch_add(n) + n);
  return n;
}

void Recorder::schedule(uint64_t index, double scheduled_s, int prompt_tokens) {
  if (index >= slots_.size()) return;
  Slot& s = *slots_[index];
  std::lock_guard lk(s.mu);
  s.rec.scheduled_s = scheduled_s;
  if (prompt_tokens >= 0) s.rec.prompt_tokens = prompt_tokens;
}

void Recorder::fail(uint64_t index, const std::string& reason, Clock::time_point t) {
  Outcome o;
  o.status = Status::kFailed;
  o.reason = reason;
  on_done(index, o, t);
}

// The waiter is woken only when the count it waits for is reached, not by every request's end: a wake-up per
// request was a context switch per request, a sixth of loadgen's cost against an instant server. (seq_cst:
// the waiter stores its target before it reads done_; an end that it missed reads the target after.)
void Recorder::notify_done(int64_t done_now) {
  if (done_now < wait_target_.load()) return;
  { std::lock_guard lk(done_mu_); }
  done_cv_.notify_all();
}

bool Recorder::wait_done_at_least(int64_t n, Clock::time_point deadline) {
  std::unique_lock lk(done_mu_);
  wait_target_.store(n);
  const bool reached = done_cv_.wait_until(lk, deadline, [&] { return done_.load() >= n; });
  wait_target_.store(std::numeric_limits<int64_t>::max());
  return reached;
}

std::vector<RequestRecord> Recorder::records(const std::string& unfinished_reason) const {
  std::vector<RequestRecord> out;
  out.reserve(slots_.size());
  for (const auto& s : slots_) {
    std::lock_guard lk(s->mu);
    out.push_back(s->rec);
    if (!out.back().done) {
      out.back().status = Status::kFailed;
      out.back().reason = unfinished_reason;
    }
  }
  return out;
}

}  // namespace loadgen
