// test-deps: loadgen_cli llm_server_lib
// Must show 3 (issue 12): multi-turn sessions checked on the server side. A recording test server
// (tests/support/recording_server.h) sees every prompt: turn k's is exactly turn k-1's prompt, the answer the
// server streamed for it, a blank line and turn k's new message; and it arrives no sooner than the think time
// after that answer was written. Lower bounds only: no upper bound on any time. A failed turn ends its
// session, the later turns accounted for as failed.
#include <gtest/gtest.h>

#include <map>

#include "loadgen/cli/resolve.h"
#include "loadgen/clients/system_under_test.h"
#include "loadgen/run/run.h"
#include "support/recording_server.h"
#include "support/test_paths.h"

namespace loadgen {
namespace {

using testing_support::RecordingServer;

RunSettings multi_turn_settings(const std::string& endpoint, const std::string& think) {
  RunSettings s;
  s.dataset = testing_paths::source("datasets/sample_sharegpt.json").string();
  s.multi_turn = true;
  s.think_time = think;
  s.num_requests = 5;  // sessions
  s.rate = "20";       // sessions/s
  s.output_len = 4;
  s.endpoint = endpoint;
  s.api = "openai";
  s.preflight = false;
  s.quiet = true;
  return s;
}

TEST(SessionDispatcher, MustShow3_TurnPromptIsTheHistoryAndThinkTimeIsHonoured) {
  RecordingServer server;
  const RunConfig c = resolve(multi_turn_settings(server.endpoint(), "0.25"));
  SystemUnderTest sut = make_system_under_test(c.sut);
  const RunResult r = run_benchmark(c, sut);
  const Dataset ds = load_dataset(c.workload.dataset);

  std::map<std::string, RecordingServer::Seen> by_prompt;
  const std::vector<RecordingServer::Seen> seen = server.seen();
  for (const auto& s : seen) EXPECT_TRUE(by_prompt.emplace(s.prompt, s).second) << "prompts are unique: " << s.prompt;
  ASSERT_EQ(seen.size(), r.records.size());

  std::map<int64_t, std::vector<const RequestRecord*>> sessions;
  for (const RequestRecord& rec : r.records) {
    EXPECT_EQ(rec.status, Status::kOk) << rec.reason;
    sessions[rec.session_id].push_back(&rec);
  }
  ASSERT_EQ(sessions.size(), 5u);
  size_t later_turns = 0;
  for (auto& [id, turns] : sessions) {
    std::sort(turns.begin(), turns.end(), [](auto* a, auto* b) { return a->turn < b->turn; });
    const Sample& sample = ds.samples[static_cast<size_t>(turns[0]->sample_id)];
    ASSERT_EQ(turns.size(), sample.turns.size()) << "every turn of the conversation was sent";
    // Turn 0: the system message and the first question; turn k: turn k-1's prompt + its answer + "\n\n" + question k.
    std::string expected = (sample.system.empty() ? "" : sample.system + "\n\n") + sample.turns[0].user;
    const RecordingServer::Seen* prev = nullptr;
    for (size_t k = 0; k < turns.size(); ++k) {
      ASSERT_EQ(turns[k]->turn, static_cast<int>(k));
      auto it = by_prompt.find(expected);
      ASSERT_NE(it, by_prompt.end()) << "session " << id << " turn " << k << ": the server never saw\n" << expected;
      const RecordingServer::Seen& now = it->second;
      if (prev) {
        // Think time, on the server's clock: this turn came at least 0.25 s after the last answer was written.
        EXPECT_GE(std::chrono::duration<double>(now.received - prev->answered).count(), 0.25) << "turn " << k;
        // On loadgen's: released (scheduled) at the previous turn's end + think time, and sent after that.
        EXPECT_NEAR(turns[k]->scheduled_s, turns[k - 1]->end_s + 0.25, 1e-6);
        EXPECT_GE(turns[k]->send_s, turns[k]->scheduled_s);
      }
      if (k + 1 < turns.size()) expected += now.answer + "\n\n" + sample.turns[k + 1].user;
      prev = &now;
    }
    later_turns += turns.size() - 1;
  }
  EXPECT_GE(later_turns, 3u);
  EXPECT_EQ(r.summary.completed, static_cast<int64_t>(r.records.size()));
}

// The server fails the third request it gets: if that was a later turn's or a first turn's, the rest of its
// session is not sent, and each of those turns is accounted for as failed, naming the turn that ended it.
TEST(SessionDispatcher, AFailedTurnEndsItsSessionAndEveryTurnIsAccountedFor) {
  RecordingServer server(/*fail_request=*/2);
  RunSettings s = multi_turn_settings(server.endpoint(), "0.01");
  const RunConfig c = resolve(s);
  SystemUnderTest sut = make_system_under_test(c.sut);
  const RunResult r = run_benchmark(c, sut);
  EXPECT_TRUE(r.summary.accounted);
  EXPECT_TRUE(r.summary.drained);
  std::map<int64_t, std::vector<const RequestRecord*>> sessions;
  for (const RequestRecord& rec : r.records) sessions[rec.session_id].push_back(&rec);
  int failed_turns = 0, not_sent = 0;
  for (auto& [id, turns] : sessions) {
    std::sort(turns.begin(), turns.end(), [](auto* a, auto* b) { return a->turn < b->turn; });
    for (size_t k = 0; k < turns.size(); ++k) {
      if (turns[k]->status == Status::kOk) continue;
      ++failed_turns;
      EXPECT_NE(turns[k]->reason.find("HTTP 500"), std::string::npos) << turns[k]->reason;
      for (size_t j = k + 1; j < turns.size(); ++j) {
        EXPECT_EQ(turns[j]->status, Status::kFailed);
        EXPECT_EQ(turns[j]->reason.rfind("not sent: turn " + std::to_string(k) + " of its session ended failed", 0), 0u)
            << turns[j]->reason;
        ++not_sent;
      }
      break;
    }
  }
  EXPECT_EQ(failed_turns, 1);
  EXPECT_EQ(server.seen().size() + static_cast<size_t>(not_sent), r.records.size());
}

}  // namespace
}  // namespace loadgen
