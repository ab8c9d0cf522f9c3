#include "loadgen/run/logprobs_dump.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <unistd.h>

#include "common/thread_name.h"
#include "loadgen/clients/logprobs_deferred.h"

namespace loadgen {

namespace {
// The writer drains its queue every kWriterPeriod on its own, or at once when kWakeQueueLength requests wait.
constexpr auto kWriterPeriod = std::chrono::milliseconds(20);
constexpr size_t kWakeQueueLength = 256;

/// The steps a request is expected to bring (a server may send more or fewer), for sizing its buffers.
size_t expected_steps(int max_new_tokens) { return static_cast<size_t>(std::clamp(max_new_tokens, 1, 4096)); }

/// The spool's memory for a run: its steps at a generous size each (~48 bytes an alternative: a token string
/// or "token_id:N" and a float of up to 17 digits; 128 for the chosen token, the keys and the spool's own 16),
/// in 2 MiB pages, at most 2 GiB or an eighth of the machine's memory.
size_t spool_memory(const std::vector<WorkItem>& items, int k) {
  const double per_step = 128.0 + 48.0 * (k + 1);
  double steps = 0;
  for (const WorkItem& item : items) steps += static_cast<double>(expected_steps(item.max_new_tokens));
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  double cap = 2.0 * (1 << 30);
  if (pages > 0 && page > 0) cap = std::min(cap, static_cast<double>(pages) * static_cast<double>(page) / 8);
  constexpr size_t kHuge = size_t{2} << 20;
  const auto want = static_cast<size_t>(std::min(steps * per_step, cap));
  return (want + kHuge - 1) / kHuge * kHuge;
}
}  // namespace

LogprobsDump::LogprobsDump(const std::string& path, const accuracy::FileInfo& info, const std::vector<WorkItem>& items,
                           TokenIdMap map, TokenizeFn tokenize)
    : items_(items),
      k_(info.top_k),
      map_(std::move(map)),
      tokenize_(std::move(tokenize)),
      writer_(std::make_unique<accuracy::LogitsWriter>(path, info)),
      spool_(std::make_unique<LogprobsSpool>(path + ".spool.tmp", spool_memory(items, info.top_k))),
      pending_(items.size()) {
  thread_ = std::thread([this] {
    common::name_this_thread("lg-logprobs");
    writer_loop();
  });
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
  Pending& p = pending_[index];
  if (p.last != LogprobsSpool::kNone) {  // after JSON: in line behind it, read in close()
    p.last = spool_->append_read(p.last, static_cast<uint32_t>(p.read_steps.size()));
    p.read_steps.push_back(lp);
    return;
  }
  if (step != p.steps()) return;  // steps arrive in order; anything else is ignored
  append_step(p, lp, items_[index].max_new_tokens);
}

void LogprobsDump::on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) {
  if (index >= pending_.size()) return;
  Pending& p = pending_[index];
  p.last = spool_->append_json(p.last, layout, json);
}

void LogprobsDump::append_step(Pending& p, const StepLogprobs& lp, int max_new_tokens) const {
  const auto k = static_cast<size_t>(k_);
  if (p.tokens.empty()) {  // room for the steps asked for (bounded: a server may send more or fewer)
    const size_t expect = expected_steps(max_new_tokens);
    p.tokens.reserve(expect);
    p.token_logprobs.reserve(expect);
    p.top_ids.reserve(expect * k);
    p.top_logprobs.reserve(expect * k);
  }
  auto id_of = [&](const TokenLogprob& t, bool top, size_t at) {
    if (t.id < 0) p.texts.push_back({top, at, t.text});  // mapped on the writer thread
    return t.id;
  };
  p.tokens.push_back(id_of(lp.token, false, p.tokens.size()));
  p.token_logprobs.push_back(static_cast<float>(lp.token.logprob));
  const size_t m = std::min(lp.top.size(), k);
  for (size_t i = 0; i < m; ++i) {
    p.top_ids.push_back(id_of(lp.top[i], true, p.top_ids.size()));
    p.top_logprobs.push_back(static_cast<float>(lp.top[i].logprob));
  }
  p.top_ids.resize(p.top_ids.size() + (k - m), accuracy::kNoToken);
  p.top_logprobs.resize(p.top_logprobs.size() + (k - m), -std::numeric_limits<float>::infinity());
}

void LogprobsDump::on_done(uint64_t index, const Outcome& outcome) {
  if (index >= pending_.size()) return;
  std::lock_guard lk(mu_);
  Pending& p = pending_[index];
  if (outcome.status != Status::kOk || (p.tokens.empty() && p.last == LogprobsSpool::kNone)) {
    p = {};
    return;
  }
  if (p.last != LogprobsSpool::kNone) {
    spooled_.push_back(index);
    return;
  }
  ready_.push_back(index);
  // The writer wakes every kWriterPeriod on its own; a wake-up per request (a futex call each side) cost more
  // than writing a top-K request. Only a long queue calls it early.
  if (ready_.size() >= kWakeQueueLength) cv_.notify_one();
}

std::optional<accuracy::RequestLogits> LogprobsDump::to_request(uint64_t index, Pending& p, std::string& error) const {
  const WorkItem& item = items_[index];
  for (const Pending::Part& part : p.parts) {
    if (part.kind == Pending::Part::kRead) {
      append_step(p, p.read_steps[part.begin], item.max_new_tokens);
      continue;
    }
    const std::string_view json = std::string_view(p.json).substr(part.begin, part.end - part.begin);
    const auto steps = read_logprobs_json(part.layout, json, error);
    if (!steps) {
      error = "request " + logits_id_of(item) + ": " + error;
      return std::nullopt;
    }
    for (const StepLogprobs& step : *steps) append_step(p, step, item.max_new_tokens);
  }
  if (p.tokens.empty()) return std::nullopt;  // the server sent logprobs without a step in them
  accuracy::RequestLogits r;
  r.id = logits_id_of(item);
  r.prompt_text = item.prompt;
  if (item.score_steps > 0) {
    // Scored: the sent ids are BASE's prompt followed by its steps' tokens.
    r.prompt_tokens.assign(item.prompt_tokens.begin(), item.prompt_tokens.end() - item.score_steps);
  } else {
    r.prompt_tokens = !item.prompt_tokens.empty() ? item.prompt_tokens : tokenize_ ? tokenize_(item.prompt, true)
                                                                                  : std::vector<int32_t>{};
  }
  for (const Pending::Text& t : p.texts) {
    const int32_t id = map_.id(t.text);
    if (id < 0) ++r.unmapped;
    (t.top ? p.top_ids : p.tokens)[t.at] = id;
  }
  r.tokens = std::move(p.tokens);
  r.token_logprobs = std::move(p.token_logprobs);
  r.top_ids = std::move(p.top_ids);
  r.top_logprobs = std::move(p.top_logprobs);
  return r;
}

void LogprobsDump::write_request(uint64_t index, Pending& p) {
  std::string malformed;
  std::optional<accuracy::RequestLogits> r = to_request(index, p, malformed);
  if (!r) {
    if (malformed.empty()) return;
    std::lock_guard lk(mu_);
    if (malformed_++ == 0) first_malformed_ = std::move(malformed);
    return;
  }
  writer_->write(*r);
  std::lock_guard lk(mu_);
  ++written_;
  unmapped_ += r->unmapped;
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
      Pending steps;
      {
        std::lock_guard lk(mu_);  // on_done handed this request over; take its steps under the same lock
        steps = std::move(pending_[index]);
        pending_[index] = {};
      }
      if (error_) continue;
      try {
        write_request(index, steps);
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
  for (uint64_t index : spooled_) {
    Pending p = std::move(pending_[index]);
    pending_[index] = {};
    spool_->chain(p.last, p.parts, p.json);
    write_request(index, p);
  }
  spool_.reset();
  writer_->close();
}

int64_t LogprobsDump::written() const {
  std::lock_guard lk(mu_);
  return written_;
}

int64_t LogprobsDump::malformed() const {
  std::lock_guard lk(mu_);
  return malformed_;
}

std::string LogprobsDump::first_malformed() const {
  std::lock_guard lk(mu_);
  return first_malformed_;
}

int64_t LogprobsDump::unmapped() const {
  std::lock_guard lk(mu_);
  return unmapped_;
}

}  // namespace loadgen
