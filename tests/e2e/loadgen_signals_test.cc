// test-deps: loadgen_lib
// Nothing lost, through the built binary: a dummy:tiny run killed with SIGKILL at a random moment keeps exactly
// the requests that had ended (each checked against the same request of a run that finished), and
// `loadgen report` rebuilds a summary from what it left; SIGINT stops sending, drains and writes an interrupted
// summary whose counts add up (exit 130); a second signal aborts the requests still in flight, each recorded
// as failed "interrupted" (SIGTERM: exit 143).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "support/process_util.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Starts loadgen with `args` (stdout + stderr to `log`), returns its pid.
pid_t spawn_loadgen(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    // The test runner may ignore SIGINT for its children; loadgen must see it as a user's Ctrl-C.
    std::signal(SIGINT, SIG_DFL);
    std::vector<std::string> all = {testing_paths::binary("loadgen/loadgen").string()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

/// Lines of a file that end with a newline (a line still being written is not one).
std::vector<std::string> complete_lines(const fs::path& p) {
  const std::string text = slurp(p);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) lines.push_back(text.substr(start, nl - start));
  EXPECT_EQ(start, text.size()) << p << " ends with half a line";
  return lines;
}

/// Waits (without a time limit that matters: 10 minutes) until requests.jsonl has at least `n` lines.
void wait_for_records(const fs::path& dir, size_t n) {
  for (int i = 0; i < 12000; ++i) {
    if (fs::exists(dir / "requests.jsonl") && complete_lines(dir / "requests.jsonl").size() >= n) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "no " << n << " records in " << dir;
}

int wait_exit(pid_t pid, bool* signalled = nullptr) {
  int status = 0;
  waitpid(pid, &status, 0);
  if (signalled) *signalled = WIFSIGNALED(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> base_args(const fs::path& dir, const std::string& rate, const std::string& n,
                                   const std::string& output_len) {
  return {"--quiet", "--model", "dummy:tiny", "--kv-memory", "64MiB", "--prompt-template", "raw", "-X", rate, "-n", n,
          "--output-len", output_len, "--seed", "7", "--out", dir.string()};
}

TEST(LoadgenSignalsTest, SigkillAtARandomMomentKeepsExactlyTheEndedRequests) {
  const fs::path root = testing_paths::fresh_test_dir("loadgen_signals_");
  const fs::path killed = root / "killed", full = root / "full";
  // A random moment: after a random number of ended requests (and a random extra pause), printed for a rerun.
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  const size_t at_least = 1 + rng() % 12;
  const int pause_ms = static_cast<int>(rng() % 400);
  SCOPED_TRACE("kill after " + std::to_string(at_least) + " records + " + std::to_string(pause_ms) + " ms (seed " +
               std::to_string(seed) + ")");
  const pid_t pid = spawn_loadgen(base_args(killed, "4", "60", "8"), root / "killed.log");
  ASSERT_GT(pid, 0);
  // settings.json is there from the start.
  for (int i = 0; i < 12000 && !fs::exists(killed / "settings.json"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(killed / "settings.json"));
  wait_for_records(killed, at_least);
  std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  ::kill(pid, SIGKILL);
  bool signalled = false;
  wait_exit(pid, &signalled);
  ASSERT_TRUE(signalled);
  EXPECT_FALSE(fs::exists(killed / "summary.json"));

  // What the killed run kept: whole lines only, each a request that ended, once; the CSV holds the same ones.
  std::map<int64_t, json> kept;
  for (const std::string& line : complete_lines(killed / "requests.jsonl")) {
    const json r = json::parse(line);
    EXPECT_TRUE(kept.emplace(r["index"].get<int64_t>(), r).second) << "request " << r["index"] << " twice";
  }
  ASSERT_GE(kept.size(), at_least);
  const std::vector<std::string> csv = complete_lines(killed / "requests.csv");
  ASSERT_FALSE(csv.empty());
  EXPECT_EQ(csv.size() - 1, kept.size()) << "requests.csv and requests.jsonl differ";
  std::set<int64_t> csv_index;
  for (size_t i = 1; i < csv.size(); ++i) csv_index.insert(std::stoll(csv[i].substr(0, csv[i].find(','))));
  for (const auto& [i, r] : kept) EXPECT_TRUE(csv_index.count(i)) << "request " << i << " not in requests.csv";

  // Against what the engine finishes for the same requests: the same configuration run to its end.
  const pid_t pid2 = spawn_loadgen(base_args(full, "4", "60", "8"), root / "full.log");
  ASSERT_EQ(wait_exit(pid2), 0) << slurp(root / "full.log");
  std::map<int64_t, json> finished;
  for (const std::string& line : complete_lines(full / "requests.jsonl")) {
    const json r = json::parse(line);
    finished[r["index"].get<int64_t>()] = r;
  }
  ASSERT_EQ(finished.size(), 60u);
  for (const auto& [i, r] : kept) {
    SCOPED_TRACE("request " + std::to_string(i));
    ASSERT_TRUE(finished.count(i));
    const json& f = finished[i];
    EXPECT_EQ(r["status"], "ok");
    EXPECT_EQ(r["sample_id"], f["sample_id"]);
    EXPECT_EQ(r["prompt_tokens"], f["prompt_tokens"]);
    EXPECT_EQ(r["output_tokens"], f["output_tokens"]);
    EXPECT_EQ(r["scheduled_s"], f["scheduled_s"]);
    EXPECT_EQ(r["chunk_tokens"].size(), f["chunk_tokens"].size());
    EXPECT_FALSE(r["end_s"].is_null());
  }

  // `loadgen report` on what the kill left: a summary rebuilt from the records, marked interrupted.
  const process_util::CommandResult rep =
      process_util::run_shell(testing_paths::binary("loadgen/loadgen").string() + " report " + process_util::shell_quote(killed));
  ASSERT_EQ(rep.rc, 0) << rep.output;
  const json s = json::parse(slurp(killed / "summary.json"));
  EXPECT_TRUE(s["interrupted"].get<bool>());
  EXPECT_EQ(s["interruption"]["cause"], "killed");
  EXPECT_EQ(s["num_prompts"].get<int64_t>(), 60);
  EXPECT_EQ(s["completed"].get<int64_t>(), static_cast<int64_t>(kept.size()));
  EXPECT_EQ(s["completed"].get<int64_t>() + s["failed"].get<int64_t>() + s["rejected"].get<int64_t>(), 60);
  EXPECT_TRUE(s["accounted"].get<bool>());
  EXPECT_EQ(s["validity"]["verdict"], "INVALID");
  EXPECT_TRUE(fs::exists(killed / "report.html"));
}

TEST(LoadgenSignalsTest, SigintDrainsAndWritesAnInterruptedSummaryWhoseCountsAddUp) {
  const fs::path dir = testing_paths::fresh_test_dir("loadgen_signals_") / "run";
  const pid_t pid = spawn_loadgen(base_args(dir, "4", "400", "8"), dir.string() + ".log");
  wait_for_records(dir, 3);
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_exit(pid), 130) << slurp(dir.string() + ".log");
  const json s = json::parse(slurp(dir / "summary.json"));
  ASSERT_TRUE(s["interrupted"].get<bool>());
  const json& in = s["interruption"];
  EXPECT_EQ(in["cause"], "SIGINT");
  EXPECT_EQ(in["scheduled"].get<int64_t>(), 400);
  EXPECT_EQ(in["sent"].get<int64_t>() + in["not_sent"].get<int64_t>(), 400);
  EXPECT_EQ(in["ended"].get<int64_t>() + in["aborted"].get<int64_t>(), in["sent"].get<int64_t>());
  EXPECT_EQ(in["aborted"].get<int64_t>(), 0) << "one signal drains; it aborts nothing";
  EXPECT_GT(in["not_sent"].get<int64_t>(), 0);
  EXPECT_EQ(s["completed"].get<int64_t>() + s["failed"].get<int64_t>() + s["rejected"].get<int64_t>(), 400);
  EXPECT_EQ(s["failures_by_reason"]["not sent (SIGINT)"].get<int64_t>(), in["not_sent"].get<int64_t>());
  EXPECT_EQ(s["validity"]["verdict"], "INVALID");
  // The final files hold every scheduled request, the unsent ones as failed.
  EXPECT_EQ(complete_lines(dir / "requests.jsonl").size(), 400u);
  EXPECT_NE(slurp(dir.string() + ".log").find("Interrupted"), std::string::npos) << slurp(dir.string() + ".log");
}

TEST(LoadgenSignalsTest, SecondSignalAbortsTheRequestsInFlightAsFailedInterrupted) {
  const fs::path dir = testing_paths::fresh_test_dir("loadgen_signals_") / "run";
  // Long generations: requests stay in flight for many seconds.
  const pid_t pid = spawn_loadgen(base_args(dir, "8", "200", "1500"), dir.string() + ".log");
  for (int i = 0; i < 12000 && !fs::exists(dir / "requests.jsonl"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a few requests sent
  ::kill(pid, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 143) << slurp(dir.string() + ".log");
  const json s = json::parse(slurp(dir / "summary.json"));
  const json& in = s["interruption"];
  EXPECT_EQ(in["cause"], "SIGTERM");
  const int64_t aborted = in["aborted"].get<int64_t>();
  EXPECT_GT(aborted, 0);
  EXPECT_EQ(in["ended"].get<int64_t>() + aborted, in["sent"].get<int64_t>());
  EXPECT_EQ(s["failures_by_reason"]["interrupted"].get<int64_t>(), aborted);
  int64_t rows_interrupted = 0;
  for (const std::string& line : complete_lines(dir / "requests.jsonl")) {
    const json r = json::parse(line);
    if (r["error"] == "interrupted") {
      ++rows_interrupted;
      EXPECT_EQ(r["status"], "failed");
      EXPECT_FALSE(r["send_s"].is_null());
      EXPECT_FALSE(r["end_s"].is_null());
    }
  }
  EXPECT_EQ(rows_interrupted, aborted);
}

}  // namespace
