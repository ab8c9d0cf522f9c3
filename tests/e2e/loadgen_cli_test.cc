// test-deps: loadgen_lib
// End to end through the built binary: `loadgen -X 5 -T 60 --model stories260K.bin --dataset alpaca_200.json`
// runs to the end and its summary.json agrees with requests.csv / requests.jsonl recomputed here from
// scratch; plus bad datasets, the config file, seeds and reorder as a user sees them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include <csignal>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "accuracy/logits_file.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliRun {
  int exit_code = -1;
  std::string output;  ///< stdout + stderr
  fs::path dir;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CliRun run_loadgen(const std::string& name, const std::string& args) {
  CliRun r;
  r.dir = fs::temp_directory_path() / ("loadgen_cli_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(r.dir);
  fs::create_directories(r.dir.parent_path());
  const fs::path log = r.dir.string() + ".log";
  const std::string cmd = testing_paths::binary("loadgen/loadgen").string() + " --quiet --out " + r.dir.string() + " " +
                          args + " > " + log.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.output = slurp(log);
  return r;
}

/// requests.csv as rows of column -> text (no quoted fields expected in successful runs' numeric columns).
std::vector<std::map<std::string, std::string>> read_csv(const fs::path& p) {
  std::ifstream f(p);
  std::string line;
  std::getline(f, line);
  std::vector<std::string> head;
  std::stringstream hs(line);
  for (std::string c; std::getline(hs, c, ',');) head.push_back(c);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(f, line)) {
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (char ch : line) {
      if (ch == '"') quoted = !quoted;
      else if (ch == ',' && !quoted) { cells.push_back(cell); cell.clear(); }
      else cell += ch;
    }
    cells.push_back(cell);
    EXPECT_EQ(cells.size(), head.size()) << line;
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < head.size() && i < cells.size(); ++i) row[head[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

double pct(std::vector<double> v, double p) {  // numpy.percentile, linear
  std::sort(v.begin(), v.end());
  const double pos = p / 100 * (v.size() - 1);
  const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}

/// Recomputes summary.json's numbers from requests.csv (and ITL from requests.jsonl) and compares.
void check_summary_matches_requests(const fs::path& dir) {
  const json s = json::parse(slurp(dir / "summary.json"));
  const auto rows = read_csv(dir / "requests.csv");
  ASSERT_EQ(static_cast<int64_t>(rows.size()), s["num_prompts"].get<int64_t>());
  int64_t ok = 0, failed = 0, rejected = 0, in_tok = 0, out_tok = 0;
  double first_sched = 1e300, last_end = -1e300;
  std::vector<double> ttft, tpot, e2el;
  for (const auto& r : rows) {
    first_sched = std::min(first_sched, std::stod(r.at("scheduled_s")));
    if (!r.at("end_s").empty()) last_end = std::max(last_end, std::stod(r.at("end_s")));
    const std::string& st = r.at("status");
    if (st == "failed") ++failed;
    else if (st == "rejected") ++rejected;
    ASSERT_TRUE(st == "ok" || st == "failed" || st == "rejected") << st;
    if (st != "ok") continue;
    ++ok;
    in_tok += std::stoll(r.at("prompt_tokens"));
    const int out = std::stoi(r.at("output_tokens"));
    out_tok += out;
    // TTFT and E2E from the time columns, TPOT from them and the token count.
    const double sched = std::stod(r.at("scheduled_s"));
    const double t = (std::stod(r.at("first_token_s")) - sched) * 1000, e = (std::stod(r.at("end_s")) - sched) * 1000;
    EXPECT_NEAR(t, std::stod(r.at("ttft_ms")), 2e-3);
    EXPECT_NEAR(e, std::stod(r.at("e2el_ms")), 2e-3);
    ttft.push_back(std::stod(r.at("ttft_ms")));
    e2el.push_back(std::stod(r.at("e2el_ms")));
    if (out > 1) {
      EXPECT_NEAR((e - t) / (out - 1), std::stod(r.at("tpot_ms")), 2e-3);
      tpot.push_back(std::stod(r.at("tpot_ms")));
    }
  }
  EXPECT_EQ(ok, s["completed"].get<int64_t>());
  EXPECT_EQ(failed, s["failed"].get<int64_t>());
  EXPECT_EQ(rejected, s["rejected"].get<int64_t>());
  EXPECT_EQ(ok + failed + rejected, s["num_prompts"].get<int64_t>());
  EXPECT_TRUE(s["accounted"].get<bool>());
  EXPECT_EQ(in_tok, s["total_input_tokens"].get<int64_t>());
  EXPECT_EQ(out_tok, s["total_output_tokens"].get<int64_t>());
  const double duration = last_end - first_sched;
  EXPECT_NEAR(duration, s["duration"].get<double>(), 2e-6);
  // The CSV's times carry ~1e-6 s, so a rate x/duration recomputed from them is good to x/duration * 2e-6/duration.
  auto rate_tol = [&](double x) { return x / duration * (2e-6 / duration) + 1e-9; };
  EXPECT_NEAR(ok / duration, s["request_throughput"].get<double>(), rate_tol(ok));
  EXPECT_NEAR(out_tok / duration, s["output_throughput"].get<double>(), rate_tol(out_tok));
  EXPECT_NEAR((in_tok + out_tok) / duration, s["total_token_throughput"].get<double>(), rate_tol(in_tok + out_tok));
  ASSERT_FALSE(ttft.empty());
  const double tol = 1e-3;  // ms: the CSV keeps nanoseconds
  for (auto [name, v] : {std::pair{"ttft", &ttft}, {"tpot", &tpot}, {"e2el", &e2el}}) {
    if (v->empty()) continue;
    const std::string k = std::string("_") + name + "_ms";
    EXPECT_NEAR(mean(*v), s["mean" + k].get<double>(), tol) << name;
    EXPECT_NEAR(pct(*v, 50), s["median" + k].get<double>(), tol) << name;
    EXPECT_NEAR(pct(*v, 90), s["p90" + k].get<double>(), tol) << name;
    EXPECT_NEAR(pct(*v, 99), s["p99" + k].get<double>(), tol) << name;
    EXPECT_NEAR(*std::max_element(v->begin(), v->end()), s["max" + k].get<double>(), tol) << name;
  }
  // ITL from the chunk times in requests.jsonl; every ok request's tokens add up to its output count.
  std::ifstream jl(dir / "requests.jsonl");
  std::vector<double> itl;
  int64_t lines = 0;
  for (std::string line; std::getline(jl, line); ++lines) {
    const json r = json::parse(line);
    if (r["status"] != "ok") continue;
    const auto times = r["chunk_times_s"].get<std::vector<double>>();
    const auto toks = r["chunk_tokens"].get<std::vector<int>>();
    int sum = 0;
    for (int k : toks) sum += k;
    EXPECT_EQ(sum, r["output_tokens"].get<int>()) << "request " << r["index"];
    for (size_t i = 1; i < times.size(); ++i)
      for (int j = 0; j < toks[i]; ++j) itl.push_back((times[i] - times[i - 1]) * 1000 / toks[i]);
  }
  EXPECT_EQ(lines, s["num_prompts"].get<int64_t>());
  if (!itl.empty()) {
    EXPECT_NEAR(mean(itl), s["mean_itl_ms"].get<double>(), 1e-3);
    EXPECT_NEAR(pct(itl, 99), s["p99_itl_ms"].get<double>(), 1e-3);
  }
}

std::string stories() { return testing_paths::shared("models/stories260K/stories260K.bin").string(); }
std::string alpaca200() { return testing_paths::shared("datasets/alpaca_200.json").string(); }

TEST(LoadgenCliTest, MustShow1_Poisson5For60sOnStories260K) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  REQUIRE_SHARED("datasets/alpaca_200.json");
  CliRun r = run_loadgen("x5_t60", "-X 5 -T 60 --model " + stories() + " --dataset " + alpaca200());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Exec Time (s):"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("all accounted for"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Kept up:"), std::string::npos) << r.output;
  check_summary_matches_requests(r.dir);
  const json s = json::parse(slurp(r.dir / "summary.json"));
  // N = round(5 * 60) sent: records longer than the model's 512-token context are excluded before the draw,
  // and counted, not dropped silently.
  EXPECT_EQ(s["workload"]["requested"].get<int64_t>(), 300);
  EXPECT_EQ(s["num_prompts"].get<int64_t>(), 300);
  EXPECT_GT(s["workload"]["too_long_excluded"].get<int64_t>(), 0);
  EXPECT_EQ(s["workload"]["too_long_skipped"].get<int64_t>(), 0);
  EXPECT_EQ(s["engine"]["max_model_len"].get<int>(), 512);
  EXPECT_EQ(s["settings"]["rate"].get<double>(), 5.0);
  EXPECT_EQ(s["output_token_source"], "engine");
}

TEST(LoadgenCliTest, ShortRunAndOfflineRunOnDummyTiny) {
  CliRun r = run_loadgen("x10_t3", "-X 10 -T 3 --model dummy:tiny --kv-memory 64MiB --output-len 16 --slo ttft=5s,tpot=1s");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  check_summary_matches_requests(r.dir);
  const json s = json::parse(slurp(r.dir / "summary.json"));
  EXPECT_EQ(s["num_prompts"].get<int64_t>(), 30);
  EXPECT_EQ(s["total_output_tokens"].get<int64_t>(), 16 * s["completed"].get<int64_t>());
  EXPECT_FALSE(s["request_goodput"].is_null());
  // With a warm-up of 5 (more than nothing, fewer than the run): the records and figures are the 24 only.
  CliRun inf = run_loadgen("xinf", "-X inf -n 24 --model dummy:tiny --kv-memory 64MiB --prompt-template raw "
                                   "--output-len 8 --warmup 5");
  ASSERT_EQ(inf.exit_code, 0) << inf.output;
  check_summary_matches_requests(inf.dir);
  const json si = json::parse(slurp(inf.dir / "summary.json"));
  EXPECT_EQ(si["request_rate"], "inf");
  EXPECT_EQ(si["num_prompts"].get<int64_t>(), 24);
  EXPECT_EQ(si["total_output_tokens"].get<int64_t>(), 24 * 8);
  EXPECT_EQ(si["workload"]["warmup"]["requests"].get<int>(), 5);
  EXPECT_EQ(si["workload"]["warmup"]["ok"].get<int>(), 5);
  EXPECT_NE(inf.output.find("warm-up: 5 of 5 requests ok"), std::string::npos) << inf.output;
  for (const auto& row : read_csv(inf.dir / "requests.csv")) EXPECT_EQ(row.at("scheduled_s"), "0.000000");
}

// --enable-prefix-caching: requests over 3 shared 96-token prefixes (bos + 95 bytes: 6 blocks of 16), one at
// a time after a one-request warm-up. Each request after the first of its prefix hits exactly those 6 blocks,
// and the first request, the very prompt the warm-up ran, all 7 of its blocks before its last token;
// summary.json's prefix_cache counts the timed run only, and the table says so.
TEST(LoadgenCliTest, PrefixCachingHitRateInTheSummary) {
  const fs::path dir = fs::temp_directory_path() / ("loadgen_cli_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path data = dir / "shared_prefixes.json";
  json records = json::array();
  for (int r = 0; r < 12; ++r)
    records.push_back({{"instruction", std::string(95, char('a' + r % 3)) + "suffix " + std::string(13, char('k' + r))},
                       {"input", ""},
                       {"output", "x"}});
  std::ofstream(data) << records.dump();
  const std::string args = "-X inf -n 12 --max-concurrency 1 --warmup 1 --model dummy:tiny --kv-memory 64MiB "
                           "--prompt-template raw --output-len 4 --dataset " + data.string();
  CliRun on = run_loadgen("prefix_on", args + " --enable-prefix-caching");
  ASSERT_EQ(on.exit_code, 0) << on.output;
  const json s = json::parse(slurp(on.dir / "summary.json"));
  ASSERT_TRUE(s.contains("prefix_cache")) << s.dump(2);
  const json& pc = s["prefix_cache"];
  EXPECT_EQ(pc["queries"].get<int64_t>(), s["total_input_tokens"].get<int64_t>());  // the warm-up's are not in it
  EXPECT_EQ(pc["queries"].get<int64_t>(), 12 * 116);
  EXPECT_EQ(pc["block_queries"].get<int64_t>(), 12 * 7);  // the blocks before each prompt's last token
  std::set<int> seen;
  int64_t want_blocks = 0;
  const auto rows = read_csv(on.dir / "requests.csv");
  ASSERT_EQ(rows.size(), 12u);
  seen.insert(std::stoi(rows[0].at("sample_id")) % 3);  // the warm-up: a copy of the first request
  for (const auto& row : rows) want_blocks += seen.insert(std::stoi(row.at("sample_id")) % 3).second ? 0 : 6;
  want_blocks += 1;  // the first request's own 7th block
  EXPECT_EQ(pc["block_hits"].get<int64_t>(), want_blocks);
  EXPECT_EQ(pc["hits"].get<int64_t>(), want_blocks * 16);
  EXPECT_DOUBLE_EQ(pc["hit_rate"].get<double>(), double(want_blocks * 16) / (12 * 116));
  EXPECT_EQ(s["engine"]["enable_prefix_caching"], true);
  EXPECT_NE(on.output.find("Prefix cache hit rate:"), std::string::npos) << on.output;

  CliRun off = run_loadgen("prefix_off", args);
  ASSERT_EQ(off.exit_code, 0) << off.output;
  EXPECT_FALSE(json::parse(slurp(off.dir / "summary.json")).contains("prefix_cache"));
  EXPECT_EQ(off.output.find("Prefix cache"), std::string::npos);
}

TEST(LoadgenCliTest, SeededRunsChooseTheSameRequestsInTheSameOrder) {
  const std::string args = "-X inf -n 12 --model dummy:tiny --kv-memory 64MiB --prompt-template raw --output-len 4 --seed 9";
  CliRun a = run_loadgen("seed_a", args), b = run_loadgen("seed_b", args), c = run_loadgen("seed_c", args + "0");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  ASSERT_EQ(c.exit_code, 0) << c.output;
  auto ids = [](const CliRun& r) {
    std::vector<std::string> v;
    for (const auto& row : read_csv(r.dir / "requests.csv")) v.push_back(row.at("sample_id"));
    return v;
  };
  EXPECT_EQ(ids(a), ids(b));
  EXPECT_NE(ids(a), ids(c)) << "seed 90 should choose differently from seed 9";
}

TEST(LoadgenCliTest, ReorderLengthDescSortsTheSchedule) {
  CliRun r = run_loadgen("desc", "-X inf -n 16 --model dummy:tiny --kv-memory 64MiB --prompt-template raw --max-new-tokens 24 --reorder length-desc");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<int> len;
  for (const auto& row : read_csv(r.dir / "requests.csv"))
    len.push_back(std::stoi(row.at("prompt_tokens")) + std::stoi(row.at("output_tokens")));
  EXPECT_TRUE(std::is_sorted(len.rbegin(), len.rend()));
}

// Trace replay: the schedule is the trace's times from 0, its rate the trace's own; with -X the same shape
// rescaled to that mean rate; and the combinations that cannot work are named.
TEST(LoadgenCliTest, TraceReplaySendsOnTheTracesTimes) {
  const fs::path trace = testing_paths::fresh_test_dir("loadgen_cli_") / "trace.txt";
  std::ofstream(trace) << "# seconds\n100.0\n100.2\n100.2\n100.9\n101.0\n";
  const std::string common = "--model dummy:tiny --kv-memory 64MiB --prompt-template raw --output-len 2 --trace " + trace.string();
  CliRun r = run_loadgen("trace", common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  check_summary_matches_requests(r.dir);
  std::vector<std::string> sched;
  for (const auto& row : read_csv(r.dir / "requests.csv")) sched.push_back(row.at("scheduled_s"));
  EXPECT_EQ(sched, (std::vector<std::string>{"0.000000", "0.200000", "0.200000", "0.900000", "1.000000"}));
  const json s = json::parse(slurp(r.dir / "summary.json"));
  EXPECT_DOUBLE_EQ(s["request_rate"].get<double>(), 4.0);  // 4 gaps over 1 s
  EXPECT_EQ(s["workload"]["trace"]["used"].get<int>(), 5);

  CliRun x = run_loadgen("trace_x", common + " -X 8 -n 3");
  ASSERT_EQ(x.exit_code, 0) << x.output;
  sched.clear();
  for (const auto& row : read_csv(x.dir / "requests.csv")) sched.push_back(row.at("scheduled_s"));
  EXPECT_EQ(sched, (std::vector<std::string>{"0.000000", "0.250000", "0.250000"}));  // 2 gaps at 8 req/s

  CliRun too_many = run_loadgen("trace_n", common + " -n 9");
  EXPECT_EQ(too_many.exit_code, 2);
  EXPECT_NE(too_many.output.find("holds 5 arrivals, fewer than the 9 requests asked for"), std::string::npos)
      << too_many.output;
  CliRun inf = run_loadgen("trace_inf", common + " -X inf");
  EXPECT_EQ(inf.exit_code, 2);
  EXPECT_NE(inf.output.find("--trace with -X inf"), std::string::npos) << inf.output;
  CliRun missing = run_loadgen("trace_missing", "--model dummy:tiny --trace /nonexistent/trace.txt");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("/nonexistent/trace.txt: cannot open the trace file"), std::string::npos)
      << missing.output;
  fs::remove_all(trace.parent_path());
}

TEST(LoadgenCliTest, BadDatasetLinesAreReported) {
  REQUIRE_SHARED("datasets/alpaca_libre_tasks_v2.jsonl");
  const std::string ds = testing_paths::shared("datasets/alpaca_libre_tasks_v2.jsonl").string();
  CliRun fail = run_loadgen("bad_fail", "-n 4 -X inf --model dummy:tiny --kv-memory 64MiB --output-len 2 --dataset " + ds);
  EXPECT_EQ(fail.exit_code, 2);
  EXPECT_NE(fail.output.find("line 2279: not valid JSON"), std::string::npos) << fail.output;
  CliRun skip = run_loadgen("bad_skip", "-n 4 -X inf --model dummy:tiny --kv-memory 64MiB --output-len 2 --on-bad-record skip --dataset " + ds);
  ASSERT_EQ(skip.exit_code, 0) << skip.output;
  EXPECT_NE(skip.output.find("skipped 14 bad records"), std::string::npos) << skip.output;
  const json s = json::parse(slurp(skip.dir / "summary.json"));
  EXPECT_EQ(s["workload"]["bad_records_skipped"].get<int>(), 14);
  EXPECT_EQ(s["workload"]["bad_records"][0]["where"], "line 2279");
}

TEST(LoadgenCliTest, ConfigFileWithCommandLineWinning) {
  const fs::path cfg = fs::temp_directory_path() / ("loadgen_cli_cfg_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(cfg) << "batch_size: 8\nrate: 20\nnum-requests: 6\noutput_len: 3\nmodel: dummy:tiny\nkv_memory: 64MiB\n";
  CliRun r = run_loadgen("cfg", "--config " + cfg.string() + " -X 40");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json s = json::parse(slurp(r.dir / "summary.json"));
  EXPECT_EQ(s["settings"]["batch_size"].get<int>(), 8);
  EXPECT_EQ(s["engine"]["batch_size"].get<int>(), 8);
  EXPECT_EQ(s["settings"]["rate"].get<double>(), 40.0);
  EXPECT_EQ(s["num_prompts"].get<int>(), 6);
  std::ofstream(cfg) << "batch_sise: 8\n";
  CliRun bad = run_loadgen("cfg_bad", "--config " + cfg.string());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("unknown setting 'batch_sise'"), std::string::npos) << bad.output;
  fs::remove(cfg);
}

TEST(LoadgenCliTest, BadArgumentsAreNamed) {
  CliRun r = run_loadgen("badx", "-X fast");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("-X/--rate"), std::string::npos) << r.output;
  CliRun inf = run_loadgen("badinf", "-X inf");
  EXPECT_EQ(inf.exit_code, 2);
  EXPECT_NE(inf.output.find("-X inf needs -n"), std::string::npos) << inf.output;
  CliRun kv = run_loadgen("badkv", "--kv-memory 12parsecs");
  EXPECT_EQ(kv.exit_code, 2);
  EXPECT_NE(kv.output.find("--kv-memory"), std::string::npos) << kv.output;
  CliRun gpu = run_loadgen("badgpu", "--gpu-memory-utilization 1.5");
  EXPECT_EQ(gpu.exit_code, 2);
  EXPECT_NE(gpu.output.find("--gpu-memory-utilization: expected a fraction in (0, 1]"), std::string::npos) << gpu.output;
  CliRun tiny_kv = run_loadgen("tinykv", "-n 2 --model dummy:tiny --kv-memory 1KiB");
  EXPECT_EQ(tiny_kv.exit_code, 2);
  EXPECT_NE(tiny_kv.output.find("KV cache: --kv-memory gives 1024 bytes, which hold no block of 16 tokens"),
            std::string::npos) << tiny_kv.output;
  // The CPU backend computes in f32 only: bf16 is refused, not silently run as f32 (it was, before the resolver).
  CliRun bf16 = run_loadgen("cpubf16", "-n 2 --model dummy:tiny --backend cpu --dtype bf16");
  EXPECT_EQ(bf16.exit_code, 2);
  EXPECT_NE(bf16.output.find("--dtype bf16: the cpu backend computes in f32 only"), std::string::npos) << bf16.output;
  CliRun warm = run_loadgen("badwarm", "--warmup -2");
  EXPECT_EQ(warm.exit_code, 2);
  EXPECT_NE(warm.output.find("--warmup must be >= 0"), std::string::npos) << warm.output;
}

// ---------------------------------------------------------------- logits (#4)

TEST(LoadgenCliTest, TeacherForcedReplayOfAReferenceMatchesIt) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  const std::string base = testing_paths::shared("references/stories260K_visible.h5").string();
  const fs::path out = fs::temp_directory_path() / ("loadgen_cli_ref_" + std::to_string(::getpid()) + ".h5");
  fs::remove(out);
  // Batch size 3 and a Poisson schedule: the forced replay must not depend on how requests are batched.
  CliRun r = run_loadgen("ref260", "--model " + stories() + " --kv-memory 64MiB --batch-size 3 -X 20 --reference " +
                                    base + " --dump-logits " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(out)) << r.output;
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  accuracy::LogitsReader ref(base), got(out.string());
  EXPECT_EQ(got.ids(), ref.ids());
  for (const auto& id : ref.ids()) {
    auto a = ref.read(id), b = got.read(id);
    EXPECT_EQ(a.prompt_tokens, b.prompt_tokens) << id;
    EXPECT_EQ(a.tokens, b.tokens) << id;
    ASSERT_EQ(a.logits.size(), b.logits.size()) << id;
    double worst = 0;
    for (size_t i = 0; i < a.logits.size(); ++i)
      worst = std::max(worst, std::abs(double(a.logits[i]) - b.logits[i]) / (1e-4 + 1e-4 * std::abs(a.logits[i])));
    EXPECT_LE(worst, 1.0) << "request " << id << ": not allclose(rtol 1e-4, atol 1e-4)";
  }
  const fs::path acc = testing_paths::binary("accuracy/acc_allclose");
  if (fs::exists(acc)) {
    const std::string cmd = acc.string() + " " + base + " " + out.string() + " --rtol 1e-4 --atol 1e-4 > " +
                            r.dir.string() + ".acc 2>&1";
    const int rc = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(rc), 0) << slurp(r.dir.string() + ".acc");
    EXPECT_NE(slurp(r.dir.string() + ".acc").find("passed 8/8"), std::string::npos) << slurp(r.dir.string() + ".acc");
  }
  fs::remove(out);
}

TEST(LoadgenCliTest, DumpLogitsWritesEveryCompletedRequestBySampleId) {
  const fs::path out = fs::temp_directory_path() / ("loadgen_cli_dump_" + std::to_string(::getpid()) + ".h5");
  fs::remove(out);
  CliRun r = run_loadgen("dump", "-X inf -n 6 --model dummy:tiny --kv-memory 64MiB --prompt-template raw --output-len 5 "
                                 "--logits-steps 3 --logits-dtype float16 --dump-logits " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  accuracy::LogitsReader f(out.string());
  EXPECT_EQ(f.info().dtype, accuracy::LogitsDType::kFloat16);
  const auto rows = read_csv(r.dir / "requests.csv");
  std::set<std::string> ids;
  for (const auto& row : rows) ids.insert(row.at("sample_id"));
  const auto got = f.ids();
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), ids);
  for (const auto& id : got) {
    auto q = f.read(id);
    EXPECT_EQ(q.n_steps(), 3);
    EXPECT_EQ(q.logits.size(), static_cast<size_t>(3 * f.info().vocab_size));
    EXPECT_EQ(q.prompt_sha256, accuracy::prompt_sha256(q.prompt_tokens));
  }
  fs::remove(out);
}

TEST(LoadgenCliTest, KilledRunLeavesNoLogitsFileUnderTheFinalName) {
  const fs::path out = fs::temp_directory_path() / ("loadgen_cli_kill_" + std::to_string(::getpid()) + ".h5");
  fs::remove(out);
  const fs::path dir = fs::temp_directory_path() / ("loadgen_cli_kill_" + std::to_string(::getpid()));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string bin = testing_paths::binary("loadgen/loadgen").string();
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(bin.c_str(), bin.c_str(), "--quiet", "-X", "2", "-n", "200", "--model", "dummy:tiny", "--kv-memory", "64MiB",
          "--output-len", "8", "--dump-logits", out.c_str(), "--out", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the run has written something to its temporary file, then kill it hard.
  for (int i = 0; i < 600 && !fs::exists(out.string() + ".tmp"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(out)) << "a killed run must not leave a file under the final name";
  fs::remove(out.string() + ".tmp");
  fs::remove_all(dir);
}

// --tensor-parallel-size: a split the 70B shape cannot take is refused at once (exit 2, the option and the
// dimension named) from the preset's table, before any weights exist; a run records N in summary.json.
TEST(LoadgenCliTest, TensorParallelSizeIsRefusedBeforeLoadingAndRecorded) {
  CliRun bad = run_loadgen("tp_bad", "-n 1 --model dummy:llama-2-70b --backend cuda --tensor-parallel-size 3");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--tensor-parallel-size 3: dummy:llama-2-70b's attention heads (n_heads, "
                            "num_attention_heads) 64 does not split into 3 equal parts"),
            std::string::npos) << bad.output;
  CliRun cpu = run_loadgen("tp_cpu", "-n 1 --model dummy:tiny --tensor-parallel-size 2");
  EXPECT_EQ(cpu.exit_code, 2) << cpu.output;
  EXPECT_NE(cpu.output.find("the cpu backend runs on one device"), std::string::npos) << cpu.output;
  CliRun ok = run_loadgen("tp_one", "-X inf -n 2 --model dummy:tiny --output-len 2");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  const json s = json::parse(slurp(ok.dir / "summary.json"));
  EXPECT_EQ(s["engine"]["tensor_parallel_size"], 1);
  EXPECT_EQ(s["settings"]["tensor_parallel_size"], 1);
}

}  // namespace
