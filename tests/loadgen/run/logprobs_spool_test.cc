// test-deps: loadgen_lib
// LogprobsSpool: requests' events appended interleaved (JSON text with any bytes in it, and markers for steps
// kept elsewhere) come back per request, whole and in order — from memory, from the file past it, and across
// the two; appends from several threads at once keep their chains; the file appears only once memory is
// used up and is gone with the spool; a file it cannot write is named when the chains are read.
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loadgen/run/logprobs_spool.h"
#include "support/test_paths.h"

using namespace loadgen;

namespace {

using Event = LogprobsSpool::Event;

/// request r's event e: text of a length that varies, with NUL and high bytes.
std::string text(int r, int e) {
  std::string s(static_cast<size_t>(1 + (r * 7 + e * 13) % 300), '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(r * 31 + e * 17 + static_cast<int>(i));
  return s;
}

/// Appends 6 requests' events round-robin (every third a read marker) and checks every chain.
void round_trip(LogprobsSpool& s) {
  constexpr int kRequests = 6, kEvents = 40;
  std::vector<uint64_t> last(kRequests, LogprobsSpool::kNone);
  for (int e = 0; e < kEvents; ++e)
    for (int r = 0; r < kRequests; ++r)
      last[r] = e % 3 == 2 ? s.append_read(last[r], static_cast<uint32_t>(100 * r + e))
                           : s.append_json(last[r], r % 2 ? LogprobsLayout::kChat : LogprobsLayout::kCompletion,
                                           text(r, e));
  std::vector<Event> events;
  std::string json;
  for (int r = 0; r < kRequests; ++r) {
    s.chain(last[r], events, json);
    ASSERT_EQ(events.size(), static_cast<size_t>(kEvents));
    std::string want;
    for (int e = 0; e < kEvents; ++e) {
      const Event& ev = events[e];
      if (e % 3 == 2) {
        ASSERT_EQ(ev.kind, Event::kRead);
        EXPECT_EQ(ev.begin, static_cast<uint32_t>(100 * r + e));
        continue;
      }
      ASSERT_EQ(ev.kind, Event::kJson);
      EXPECT_EQ(ev.layout, r % 2 ? LogprobsLayout::kChat : LogprobsLayout::kCompletion);
      ASSERT_EQ(json.substr(ev.begin, ev.end - ev.begin), text(r, e)) << "request " << r << " event " << e;
      want += text(r, e);
    }
    EXPECT_EQ(json, want);
  }
  s.chain(LogprobsSpool::kNone, events, json);  // a request with no events
  EXPECT_TRUE(events.empty());
  EXPECT_TRUE(json.empty());
}

TEST(LogprobsSpool, ChainsComeBackWholeAndInOrderFromMemory) {
  const auto dir = testing_paths::fresh_test_dir("logprobs_spool_mem_");
  const std::string path = (dir / "lp.h5.spool.tmp").string();
  {
    LogprobsSpool s(path, size_t{1} << 20);
    round_trip(s);
    EXPECT_FALSE(s.spilled());
    EXPECT_FALSE(std::filesystem::exists(path));
  }
  std::filesystem::remove_all(dir);
}

TEST(LogprobsSpool, PastItsMemoryTheFileTakesTheRestAndGoesWithTheSpool) {
  for (size_t memory : {size_t{0}, size_t{4099}}) {  // all in the file; records across the edge
    const auto dir = testing_paths::fresh_test_dir("logprobs_spool_file_");
    const std::string path = (dir / "lp.h5.spool.tmp").string();
    {
      LogprobsSpool s(path, memory);
      round_trip(s);
      EXPECT_TRUE(s.spilled());
      EXPECT_TRUE(std::filesystem::exists(path));
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    std::filesystem::remove_all(dir);
  }
}

TEST(LogprobsSpool, AppendsFromSeveralThreadsKeepTheirChains) {
  const auto dir = testing_paths::fresh_test_dir("logprobs_spool_threads_");
  LogprobsSpool s((dir / "lp.h5.spool.tmp").string(), 64 << 10);  // a part of them in the file
  constexpr int kThreads = 4, kEvents = 4000;  // ~2.4 MB: the file buffer written out twice
  std::vector<uint64_t> last(kThreads, LogprobsSpool::kNone);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int e = 0; e < kEvents; ++e) last[t] = s.append_json(last[t], LogprobsLayout::kChat, text(t, e));
    });
  for (auto& th : threads) th.join();
  std::vector<Event> events;
  std::string json;
  for (int t = 0; t < kThreads; ++t) {
    s.chain(last[t], events, json);
    ASSERT_EQ(events.size(), static_cast<size_t>(kEvents));
    for (int e = 0; e < kEvents; ++e)
      ASSERT_EQ(json.substr(events[e].begin, events[e].end - events[e].begin), text(t, e));
  }
  std::filesystem::remove_all(dir);
}

TEST(LogprobsSpool, AFileItCannotWriteIsNamedWhenTheChainsAreRead) {
  const std::string path = "/nonexistent-dir/lp.h5.spool.tmp";
  LogprobsSpool s(path, 64);
  uint64_t last = LogprobsSpool::kNone;
  for (int e = 0; e < 10; ++e) last = s.append_json(last, LogprobsLayout::kChat, text(0, e));  // no throw here
  std::vector<Event> events;
  std::string json;
  try {
    s.chain(last, events, json);
    FAIL() << "read back a chain " << path << " never held";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--dump-logprobs"), std::string::npos) << e.what();
  }
}

}  // namespace
