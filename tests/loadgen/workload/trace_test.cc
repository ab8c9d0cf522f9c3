// test-deps: loadgen_lib
// Trace replay's arrival times: both file formats, shifted to start at 0; every malformed line named by file
// and line; the first n times, rescaled by -X to a mean rate of exactly X.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "loadgen/workload/trace.h"
#include "support/test_paths.h"

namespace loadgen {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_trace(text, "t.txt");
  } catch (const TraceError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Trace, SecondsPerLineWithCommentsAndBlankLines) {
  const Trace t = parse_trace("# recorded 2026-11-25\n10.5\n\n  10.75 \n10.75\n12\n", "t.txt");
  EXPECT_EQ(t.format, "seconds");
  EXPECT_EQ(t.times, (std::vector<double>{0, 0.25, 0.25, 1.5}));
}

TEST(Trace, MooncakeJsonLinesInMilliseconds) {
  const Trace t = parse_trace(
      "{\"timestamp\": 27482, \"input_length\": 6955, \"output_length\": 52, \"hash_ids\": [46, 47]}\n"
      "{\"timestamp\": 30535, \"input_length\": 6472, \"output_length\": 26}\n"
      "{\"timestamp\": 30535}\n",
      "mooncake.jsonl");
  EXPECT_EQ(t.format, "jsonl-ms");
  ASSERT_EQ(t.times.size(), 3u);
  EXPECT_DOUBLE_EQ(t.times[1], 3.053);
  EXPECT_DOUBLE_EQ(t.times[2], 3.053);
}

TEST(Trace, BadLinesAreNamedByFileAndLine) {
  EXPECT_EQ(error_of("1\n2\n1.5\n"), "t.txt:3: time 1.500000 s is earlier than the line before");
  EXPECT_EQ(error_of("1\n2 s\n"), "t.txt:2: expected a time in seconds, got '2 s'");
  EXPECT_EQ(error_of("{\"timestamp\": 1}\n2\n"), "t.txt:2: a plain time in a file of JSON lines");
  EXPECT_EQ(error_of("1\n{\"timestamp\": 1}\n"), "t.txt:2: a JSON line in a file of plain times");
  EXPECT_EQ(error_of("{\"ts\": 1}\n"), "t.txt:1: no numeric \"timestamp\" (milliseconds)");
  EXPECT_EQ(error_of("{\"timestamp\": 1\n"), "t.txt:1: not valid JSON");
  EXPECT_EQ(error_of("nan\n"), "t.txt:1: the time is not finite");
  EXPECT_EQ(error_of("# only a comment\n\n"), "t.txt: no arrival times");
}

TEST(Trace, MissingFileIsNamed) {
  const std::string path = (testing_paths::fresh_test_dir("trace_missing") / "none.txt").string();
  try {
    load_trace(path);
    FAIL();
  } catch (const TraceError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot open the trace file");
  }
}

TEST(Trace, FirstNTimesAsRecordedOrRescaledToARate) {
  const Trace t = parse_trace("0\n1\n1\n3\n7\n", "t.txt");
  EXPECT_EQ(trace_times(t, 4), (std::vector<double>{0, 1, 1, 3}));
  EXPECT_DOUBLE_EQ(trace_rate(t, 4), 1.0);  // 3 gaps over 3 s
  const std::vector<double> x = trace_times(t, 4, 2.0);
  ASSERT_EQ(x.size(), 4u);
  EXPECT_DOUBLE_EQ(x[3], 1.5);  // 3 gaps at a mean of 2 req/s
  EXPECT_DOUBLE_EQ(x[1], 0.5);  // shape kept: equal times stay equal, ratios stay
  EXPECT_DOUBLE_EQ(x[2], 0.5);
  EXPECT_THROW(trace_times(t, 6), std::invalid_argument);
  const Trace burst = parse_trace("5\n5\n5\n", "b.txt");
  EXPECT_TRUE(std::isinf(trace_rate(burst, 3)));
  EXPECT_EQ(trace_times(burst, 3), (std::vector<double>{0, 0, 0}));
  EXPECT_THROW(trace_times(burst, 3, 4.0), std::invalid_argument);  // nothing to rescale
}

}  // namespace
}  // namespace loadgen
