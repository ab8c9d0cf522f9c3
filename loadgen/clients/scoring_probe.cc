#include "loadgen/clients/scoring_probe.h"

#include <condition_variable>
#include <mutex>
#include <stdexcept>

namespace loadgen {
namespace {

constexpr std::string_view kNoScores = "the server returned no prompt scores";

class OneRequest : public ClientCallbacks {
 public:
  void on_sent(uint64_t, Clock::time_point) override {}
  void on_chunk(uint64_t, int, std::string_view, Clock::time_point) override {}
  void on_done(uint64_t, const Outcome& o, Clock::time_point) override {
    std::lock_guard l(mu);
    outcome = o;
    done = true;
  }
  std::mutex mu;
  Outcome outcome;
  bool done = false;
};

}  // namespace

ScoringProbe probe_prompt_scoring(const HttpClientOptions& options, const WorkItem& item, double timeout_s) {
  OneRequest cb;
  auto client = make_http_client(options);
  client->start(&cb);
  WorkItem probe = item;
  probe.index = 0;
  client->send(probe);
  if (!client->wait_all(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))))
    throw std::runtime_error("--reference: the prompt-scoring check request did not finish within " +
                             std::to_string(static_cast<int64_t>(timeout_s)) + " s");
  std::lock_guard l(cb.mu);
  ScoringProbe p;
  if (cb.outcome.status == Status::kOk) {
    p.scores_prompts = true;
  } else if (cb.outcome.reason.rfind(kNoScores, 0) == 0 || cb.outcome.reason.find("HTTP 4") == 0) {
    p.why = cb.outcome.reason;  // no scores in the answer, or the server refused the scoring fields
  } else {
    throw std::runtime_error("--reference: the prompt-scoring check request failed: " + cb.outcome.reason);
  }
  return p;
}

WorkItem unforced(const WorkItem& s) {
  WorkItem w = s;
  w.prompt_tokens.resize(s.prompt_tokens.size() - static_cast<size_t>(s.score_steps));
  w.max_new_tokens = s.score_steps;
  w.score_steps = 0;
  w.ignore_eos = true;
  w.temperature = 0.0f;
  w.prompt_as_ids = true;
  return w;
}

}  // namespace loadgen
