// test-deps: loadgen_lib
// LogprobsSpool: what a run appends (a request's index, its events' spans, the JSON bytes as sent, any bytes
// at all) is read back whole and in order, appending goes on after a read, and the file is gone once the
// spool is; a file it cannot create is named.
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "loadgen/run/logprobs_spool.h"
#include "support/test_paths.h"

using namespace loadgen;

namespace {

struct Record {
  uint64_t index;
  std::vector<LogprobsSpool::Span> spans;
  std::string json;
};

std::vector<Record> read_all(LogprobsSpool& s) {
  std::vector<Record> out;
  s.for_each([&](uint64_t index, const std::vector<LogprobsSpool::Span>& spans, std::string_view json) {
    out.push_back({index, spans, std::string(json)});
  });
  return out;
}

TEST(LogprobsSpool, RecordsComeBackWholeAndInOrderAndTheFileGoesWithTheSpool) {
  const auto dir = testing_paths::fresh_test_dir("logprobs_spool_");
  const std::string path = (dir / "lp.h5.spool.tmp").string();
  std::string binary(3000, '\0');  // past stdio's small writes; NUL and high bytes kept as they are
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 37);
  {
    LogprobsSpool s(path);
    EXPECT_TRUE(std::filesystem::exists(path));
    s.append(7, {{0, 5, LogprobsLayout::kCompletion}, {5, 9, LogprobsLayout::kChat}}, "{\"a\":1}[]x");
    s.append(3, {}, "");
    for (int i = 0; i < 2000; ++i) s.append(100 + i, {{0, 3000, LogprobsLayout::kChat}}, binary);  // > 1 MiB
    EXPECT_EQ(s.records(), 2002);
    std::vector<Record> r = read_all(s);
    ASSERT_EQ(r.size(), 2002u);
    EXPECT_EQ(r[0].index, 7u);
    ASSERT_EQ(r[0].spans.size(), 2u);
    EXPECT_EQ(r[0].spans[1].begin, 5u);
    EXPECT_EQ(r[0].spans[1].end, 9u);
    EXPECT_EQ(r[0].spans[1].layout, LogprobsLayout::kChat);
    EXPECT_EQ(r[0].json, "{\"a\":1}[]x");
    EXPECT_EQ(r[1].index, 3u);
    EXPECT_TRUE(r[1].spans.empty());
    EXPECT_EQ(r[1].json, "");
    for (int i = 0; i < 2000; ++i) {
      ASSERT_EQ(r[2 + i].index, static_cast<uint64_t>(100 + i));
      ASSERT_EQ(r[2 + i].json, binary);
    }
    s.append(9, {}, "after");  // after a read, at the end again
    r = read_all(s);
    ASSERT_EQ(r.size(), 2003u);
    EXPECT_EQ(r.back().index, 9u);
    EXPECT_EQ(r.back().json, "after");
    EXPECT_EQ(r[2001].json, binary);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::remove_all(dir);
}

TEST(LogprobsSpool, AFileItCannotCreateIsNamed) {
  const std::string path = "/nonexistent-dir/lp.h5.spool.tmp";
  try {
    LogprobsSpool s(path);
    FAIL() << "created " << path;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--dump-logprobs"), std::string::npos) << e.what();
  }
}

}  // namespace
