// test-deps: nlohmann_json::nlohmann_json
// decode_step_bench's reading of llama.cpp's llama-batched-bench: the JSON lines of --output-format jsonl
// (amid log lines), and clear errors for a bad line or a binary that fails.
#include "bench/llama_batched_bench.h"

#include <gtest/gtest.h>

#include <sstream>

namespace {

// Two result lines as llama-batched-bench c392e50 prints them, with log lines around them.
constexpr const char* kOutput =
    "main: n_kv_max = 9216, n_batch = 2048\n"
    "{\"n_kv_max\": 9216, \"n_batch\": 2048, \"n_ubatch\": 512, \"flash_attn\": 0, \"is_pp_shared\": 0, "
    "\"n_gpu_layers\": 0, \"n_threads\": 2, \"n_threads_batch\": 2, \"pp\": 128, \"tg\": 16, \"pl\": 1, \"n_kv\": 144, "
    "\"t_pp\": 0.250000, \"speed_pp\": 512.000000, \"t_tg\": 0.231884, \"speed_tg\": 69.000000, \"t\": 0.48, "
    "\"speed\": 300.0}\n"
    "{\"pp\": 128, \"tg\": 16, \"pl\": 8, \"n_kv\": 1152, \"t_tg\": 0.397516, \"speed_tg\": 322.000000}\n"
    "\n"
    "llama_perf_context_print: load time = 1.0 ms\n";

TEST(LlamaBatchedBench, ReadsGenerationSpeedByBatchSize) {
  std::istringstream in(kOutput);
  const auto s = bench::parse_batched_bench_jsonl(in, "out");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s.at(1), 69.0);
  EXPECT_DOUBLE_EQ(s.at(8), 322.0);
}

TEST(LlamaBatchedBench, ABadLineIsNamedByNumber) {
  std::istringstream broken("log\n{\"pl\": 1, \"speed_tg\": 5\n");
  try {
    bench::parse_batched_bench_jsonl(broken, "llama's output");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("llama's output: line 2 is not JSON"), std::string::npos) << e.what();
  }
  std::istringstream no_speed("{\"pl\": 8, \"t_tg\": 1.0}\n");
  try {
    bench::parse_batched_bench_jsonl(no_speed, "out");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("line 1 has no integer \"pl\" and numeric \"speed_tg\""), std::string::npos)
        << e.what();
  }
}

TEST(LlamaBatchedBench, CommandCarriesTheShapeOfTheRun) {
  bench::LlamaBatchedBench b;
  b.binary = "/opt/llama's/bin";
  b.model = "m.gguf";
  b.threads = 2;
  b.gen = 16;
  const std::string cmd = b.command({1, 8, 64});
  EXPECT_EQ(cmd.rfind("'/opt/llama'\\''s/bin' -m 'm.gguf' -c 9216 ", 0), 0u) << cmd;  // 64 x (128 + 16) cells
  EXPECT_NE(cmd.find("-npp 128 -ntg 16 -npl 1,8,64 -t 2 -tb 2 --output-format jsonl"), std::string::npos) << cmd;
}

TEST(LlamaBatchedBench, AFailingBinaryIsReportedWithItsCommand) {
  bench::LlamaBatchedBench b;
  b.binary = "/bin/false";
  b.model = "m.gguf";
  try {
    b.run({1});
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/bin/false failed"), std::string::npos) << what;
    EXPECT_NE(what.find("-npl 1 "), std::string::npos) << what;
  }
}

}  // namespace
