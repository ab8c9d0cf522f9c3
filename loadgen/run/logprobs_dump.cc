#include "loadgen/run/logprobs_dump.h"

#include <chrono>
#include <cmath>
#include <limits>

namespace loadgen {

namespace {
// The writer drains its queue every kWriterPeriod on its own, or at once when kWakeQueueLength requests wait.
constexpr auto kWriterPeriod = std::chrono::milliseconds(20);
constexpr size_t kWakeQueueLength = 256;
}  // namespace

LogprobsDump::LogprobsDump(const std::string& path, const accuracy::FileInfo& info, const std::vector<WorkItem>& items,
                           TokenIdMap map, TokenizeFn tokenize)
    : items_(items),
      k_(info.top_k),
      map_(std::move(map)),
      tokenize_(std::move(tokenize)),
      writer_(std::make_unique<accuracy::LogitsWriter>(path, info)),
      pending_(items.size()) {
  thread_ = std::thread([this] { writer_loop(); });
}

LogprobsDump::~LogprobsDump() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  writer_.reset();  // not closed: the writer removes its temporary file
}

void LogprobsDump::on_logprobs(uint64_t index, int step, const StepLogprobs& lp) {
  if (index >= pending_.size()) return;
  auto& p = pending_[index];
  if (step != static_cast<int>(p.size())) return;  // steps arrive in order; anything else is ignored
  p.push_back(lp);
}

void LogprobsDump::on_done(uint64_t index, const Outcome& outcome) {
  if (index >= pending_.size()) return;
  std::lock_guard lk(mu_);
  if (outcome.status != Status::kOk || pending_[index].empty()) {
    pending_[index] = {};
    return;
  }
  ready_.push_back(index);
  // The writer wakes every kWriterPeriod on its own; a wake-up per request (a futex call each side) cost more
  // than writing a top-K request. Only a long queue calls it early.
  if (ready_.size() >= kWakeQueueLength) cv_.notify_one();
}

accuracy::RequestLogits LogprobsDump::to_request(uint64_t index, std::vector<StepLogprobs> steps) const {
  const WorkItem& item = items_[index];
  accuracy::RequestLogits r;
  r.id = std::to_string(item.sample_id);
  r.prompt_text = item.prompt;
  if (item.score_steps > 0) {
    // Scored: the sent ids are BASE's prompt followed by its steps' tokens.
    r.prompt_tokens.assign(item.prompt_tokens.begin(), item.prompt_tokens.end() - item.score_steps);
  } else {
    r.prompt_tokens = !item.prompt_tokens.empty() ? item.prompt_tokens : tokenize_ ? tokenize_(item.prompt, true)
                                                                                  : std::vector<int32_t>{};
  }
  auto resolve = [&](const TokenLogprob& t) {
    if (t.id >= 0) return t.id;
    const int32_t id = map_.id(t.text);
    if (id < 0) ++r.unmapped;
    return id;
  };
  const size_t n = steps.size();
  r.tokens.resize(n);
  r.token_logprobs.resize(n);
  r.top_ids.assign(n * k_, accuracy::kNoToken);
  r.top_logprobs.assign(n * k_, -std::numeric_limits<float>::infinity());
  for (size_t s = 0; s < n; ++s) {
    r.tokens[s] = resolve(steps[s].token);
    r.token_logprobs[s] = static_cast<float>(steps[s].token.logprob);
    const size_t m = std::min(steps[s].top.size(), static_cast<size_t>(k_));
    for (size_t i = 0; i < m; ++i) {
      r.top_ids[s * k_ + i] = resolve(steps[s].top[i]);
      r.top_logprobs[s * k_ + i] = static_cast<float>(steps[s].top[i].logprob);
    }
  }
  return r;
}

void LogprobsDump::writer_loop() {
  std::vector<uint64_t> batch;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, kWriterPeriod, [&] { return stop_ || ready_.size() >= kWakeQueueLength; });
      if (ready_.empty()) {
        if (stop_) return;
        continue;
      }
      batch.assign(ready_.begin(), ready_.end());
      ready_.clear();
    }
    for (uint64_t index : batch) {
      std::vector<StepLogprobs> steps;
      {
        std::lock_guard lk(mu_);  // on_done handed this request over; take its steps under the same lock
        steps = std::move(pending_[index]);
        pending_[index] = {};
      }
      if (error_) continue;
      try {
        accuracy::RequestLogits r = to_request(index, std::move(steps));
        writer_->write(r);
        std::lock_guard lk(mu_);
        ++written_;
        unmapped_ += r.unmapped;
      } catch (...) {
        error_ = std::current_exception();
      }
    }
  }
}

void LogprobsDump::close() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(error_);
  writer_->close();
}

int64_t LogprobsDump::written() const {
  std::lock_guard lk(mu_);
  return written_;
}

int64_t LogprobsDump::unmapped() const {
  std::lock_guard lk(mu_);
  return unmapped_;
}

}  // namespace loadgen
