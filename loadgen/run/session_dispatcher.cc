#include "loadgen/run/session_dispatcher.h"

#include <queue>
#include <stdexcept>
#include <thread>

#include "loadgen/workload/conversation.h"

namespace loadgen {
namespace {

Clock::time_point at(Clock::time_point t0, double s) {
  return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

SessionDispatcher::SessionDispatcher(std::vector<WorkItem> items, SessionSchedule schedule, Recorder& recorder,
                                     TokenizeFn tokenize)
    : items_(std::move(items)), schedule_(std::move(schedule)), recorder_(recorder), tokenize_(std::move(tokenize)) {
  session_of_.assign(items_.size(), SIZE_MAX);
  answer_.resize(items_.size());
  if (schedule_.start_s.size() != schedule_.sessions.size() || schedule_.think_s.size() != items_.size())
    throw std::invalid_argument("SessionDispatcher: schedule sizes differ from the sessions and items");
  for (size_t s = 0; s < schedule_.sessions.size(); ++s)
    for (size_t i : schedule_.sessions[s]) {
      if (i >= items_.size() || session_of_[i] != SIZE_MAX)
        throw std::invalid_argument("SessionDispatcher: an item is in no session or in two");
      session_of_[i] = s;
    }
}

void SessionDispatcher::on_sent(uint64_t index, Clock::time_point t) { recorder_.on_sent(index, t); }

void SessionDispatcher::on_chunk(uint64_t index, int n_tokens, std::string_view text, Clock::time_point t) {
  // One request's chunks come from one client thread, before its on_done; the dispatcher reads the text only
  // after that on_done has gone through mu_.
  if (index < answer_.size()) answer_[index].append(text);
  recorder_.on_chunk(index, n_tokens, text, t);
}

void SessionDispatcher::on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) {
  recorder_.on_logits(index, step, token, logits);
}

void SessionDispatcher::on_done(uint64_t index, const Outcome& outcome, Clock::time_point t) {
  recorder_.on_done(index, outcome, t);
  if (index >= items_.size()) return;
  {
    std::lock_guard lk(mu_);
    ended_.push_back({index, outcome.status == Status::kOk,
                      std::string(to_string(outcome.status)) + (outcome.reason.empty() ? "" : ": " + outcome.reason), t});
  }
  cv_.notify_one();
}

int64_t SessionDispatcher::run(Client& client, Clock::time_point t0, const std::atomic<bool>* stop) {
  using Due = std::pair<Clock::time_point, size_t>;  // release time, item
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due;
  std::vector<std::vector<ChatMessage>> history(schedule_.sessions.size());
  size_t left = items_.size();  // neither sent nor ended unsent
  int64_t sent = 0;
  for (size_t s = 0; s < schedule_.sessions.size(); ++s)
    if (!schedule_.sessions[s].empty()) due.push({at(t0, schedule_.start_s[s]), schedule_.sessions[s][0]});
  constexpr auto kSpin = std::chrono::microseconds(200);
  auto secs = [t0](Clock::time_point t) { return std::chrono::duration<double>(t - t0).count(); };

  while (left > 0) {
    if (stop && stop->load(std::memory_order_relaxed)) break;
    std::vector<Ended> ended;
    {
      std::unique_lock lk(mu_);
      // Sleep until the next release (or 100 ms, to look at `stop`) unless a turn ends first.
      auto wake = Clock::now() + std::chrono::milliseconds(100);
      if (!due.empty()) wake = std::min(wake, due.top().first - kSpin);
      cv_.wait_until(lk, wake, [&] { return !ended_.empty(); });
      ended.swap(ended_);
    }
    for (const Ended& e : ended) {
      const size_t s = session_of_[e.index];
      const std::vector<size_t>& turns = schedule_.sessions[s];
      const size_t k = static_cast<size_t>(items_[e.index].turn);
      if (k + 1 >= turns.size()) continue;
      if (e.ok) {
        history[s] = items_[e.index].messages;
        history[s].push_back({"assistant", std::move(answer_[e.index])});
        const size_t next = turns[k + 1];
        due.push({e.t + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(schedule_.think_s[next])), next});
        continue;
      }
      for (size_t j = k + 1; j < turns.size(); ++j) {
        recorder_.schedule(turns[j], secs(e.t), -1);
        recorder_.fail(turns[j], "not sent: turn " + std::to_string(k) + " of its session ended " + e.why, e.t);
        --left;
      }
    }
    while (!due.empty() && Clock::now() >= due.top().first - kSpin) {
      const auto [when, i] = due.top();
      due.pop();
      WorkItem& item = items_[i];
      const size_t s = session_of_[i];
      if (item.turn > 0) {
        std::vector<ChatMessage> messages = history[s];
        messages.insert(messages.end(), item.messages.begin(), item.messages.end());
        item.messages = std::move(messages);
        item.prompt = conversation_prompt(item.messages);
        recorder_.schedule(i, secs(when), static_cast<int>(tokenize_(item.prompt, true).size()));
        history[s].clear();
      }
      while (Clock::now() < when) std::this_thread::yield();
      try {
        client.send(item);
      } catch (const std::exception& e) {
        Outcome failed;  // through on_done, so the session's later turns end too
        failed.status = Status::kFailed;
        failed.reason = std::string("send failed: ") + e.what();
        on_done(i, failed, Clock::now());
      }
      ++sent;
      --left;
    }
  }
  return sent;
}

}  // namespace loadgen
