// test-deps: reports
// `loadgen sweep` and `loadgen report` as a user runs them (the built binary, stories260K): the table on stdout,
// the files, the page rebuilt from saved directories, and clear errors for bad arguments. Rendering in a real
// browser is scripts/check_report_render.sh (headless Chromium is not part of CI).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/wait.h>

#include "support/report_fixtures.h"
#include "results/files.h"
#include "support/test_paths.h"
#include "support/xml_wellformed.h"

namespace fs = std::filesystem;
namespace rf = report_fixtures;

namespace {

struct Cli {
  int exit_code = -1;
  std::string out, err;
};

Cli run_loadgen(const std::string& args, const fs::path& tmp) {
  const fs::path out = tmp / "stdout.txt", err = tmp / "stderr.txt";
  const std::string cmd = testing_paths::binary("loadgen/loadgen").string() + " " + args + " > " + out.string() +
                          " 2> " + err.string();
  const int rc = std::system(cmd.c_str());
  Cli r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = results::read_text_file(out);
  r.err = results::read_text_file(err);
  return r;
}

std::string stories_args() {
  return "--model " + testing_paths::shared("models/stories260K/stories260K.bin").string() + " --dataset " +
         testing_paths::shared("datasets/alpaca_200.json").string() + " -n 4 --output-len 4 --quiet";
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(LoadgenSweepCli, GridThenReportFromSavedDirectories) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  REQUIRE_SHARED("datasets/alpaca_200.json");
  const rf::TempDir tmp("cli_grid");
  const fs::path sweep = tmp.path / "sweep";
  const Cli r = run_loadgen("sweep --batch-sizes 1,4 --qps 4,16 " + stories_args() + " --out " + sweep.string(), tmp.path);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("batch size |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 QPS |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16 QPS"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[sweep 4/4]"), std::string::npos) << r.err;
  for (const char* f : {"sweep.csv", "sweep.json", "report.html", "bs1_qps4/summary.json", "bs4_qps16/requests.jsonl"})
    EXPECT_TRUE(fs::exists(sweep / f)) << f;
  const std::string html = results::read_text_file(sweep / "report.html");
  EXPECT_EQ(xml_check::check(html), "");
  EXPECT_EQ(count(html, "<svg "), 12u);  // 5 sweep charts + 5 run charts + 2 timeslice charts
  EXPECT_NE(html.find("Output tokens/s per timeslice"), std::string::npos);

  // The page again from two saved cells, compared side by side, and from the sweep directory.
  const fs::path page = tmp.path / "two.html";
  const Cli rep = run_loadgen("report " + (sweep / "bs1_qps4").string() + " " + (sweep / "bs4_qps16").string() +
                              " --title 'bs1 vs bs4' -o " + page.string(),
                          tmp.path);
  ASSERT_EQ(rep.exit_code, 0) << rep.out << rep.err;
  EXPECT_NE(rep.out.find("0 sweep(s), 2 run(s)"), std::string::npos) << rep.out;
  const std::string two = results::read_text_file(page);
  EXPECT_EQ(xml_check::check(two), "");
  EXPECT_EQ(count(two, "<svg "), 7u);  // 5 run charts + 2 timeslice charts
  EXPECT_NE(two.find("<h1>bs1 vs bs4</h1>"), std::string::npos);
  EXPECT_NE(two.find("bs1_qps4"), std::string::npos);
  EXPECT_NE(two.find("bs4_qps16"), std::string::npos);

  fs::remove(sweep / "report.html");
  const Cli again = run_loadgen("report " + sweep.string(), tmp.path);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(fs::exists(sweep / "report.html"));
  EXPECT_NE(again.out.find("batch size |"), std::string::npos);  // the sweep table, printed again
}

TEST(LoadgenSweepCli, AutoSearchFindsARate) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  REQUIRE_SHARED("datasets/alpaca_200.json");
  const rf::TempDir tmp("cli_auto");
  const fs::path sweep = tmp.path / "auto";
  // A loose SLO and few probes: this checks the plumbing, not the machine's speed.
  const Cli r = run_loadgen("sweep --batch-sizes 4 --qps auto --slo ttft=60s,tpot=10s --qps-start 1 --qps-max 4 " +
                            stories_args() + " --out " + sweep.string(),
                        tmp.path);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Max sustainable QPS"), std::string::npos) << r.out;
  const nlohmann::json j = rf::read_json(sweep / "sweep.json");
  ASSERT_TRUE(j.contains("auto"));
  EXPECT_EQ(j["auto"]["max_qps"].get<double>(), 4);  // every probe passes a 60 s TTFT limit: capped at --qps-max
  EXPECT_EQ(j["auto"]["probes"].size(), 3u);         // 1, 2, 4
  EXPECT_EQ(j["cells"].size(), 3u);
  EXPECT_TRUE(fs::exists(sweep / "bs4_qps2" / "summary.json"));
}

TEST(LoadgenSweepCli, BadArgumentsAreNamed) {
  const rf::TempDir tmp("cli_errors");
  struct Case {
    std::string args, needle;
  };
  for (const Case& c : {Case{"sweep --qps 1,x", "--qps"}, Case{"sweep -X 5", "--qps"},
                        Case{"sweep --batch-sizes 0,4", "--batch-sizes"}, Case{"sweep --qps auto", "--slo"},
                        Case{"sweep --batch-size 8", "--batch-sizes"},
                        Case{"report " + (tmp.path / "nowhere").string(), "nowhere"}}) {
    const Cli r = run_loadgen(c.args, tmp.path);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << "\n" << r.err;
  }
}

// A cell in which no request can complete (a KV pool of one block) is recorded as failed with the reasons, the
// sweep goes on to the next cell, and the exit status says that something failed.
TEST(LoadgenSweepCli, CellsThatMeasureNothingAreFailedCells) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  REQUIRE_SHARED("datasets/alpaca_200.json");
  const rf::TempDir tmp("cli_failed");
  const fs::path sweep = tmp.path / "failed";
  const Cli r = run_loadgen("sweep --batch-sizes 1,2 --qps 50 --kv-blocks 1 " + stories_args() + " --out " +
                                sweep.string(),
                            tmp.path);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("[sweep 2/2]"), std::string::npos) << r.err;  // went on after the first failure
  EXPECT_NE(r.out.find("failed: batch size 2, 50 QPS: no request completed: "), std::string::npos) << r.out;
  const nlohmann::json j = rf::read_json(sweep / "sweep.json");
  ASSERT_EQ(j["cells"].size(), 2u);
  for (const auto& c : j["cells"]) {
    EXPECT_EQ(c["status"], "failed");
    EXPECT_NE(c["error"].get<std::string>().find("KV"), std::string::npos) << c["error"];
    EXPECT_EQ(c["summary"]["completed"], 0);  // the cell's summary is kept for a look
  }
  EXPECT_TRUE(fs::exists(sweep / "report.html"));
}
