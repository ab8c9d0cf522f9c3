// test-deps: results
// A run directory (docs/formats.md): write_run_dir writes summary.json, requests.csv and requests.jsonl;
// load_run reads them back — the label from the summary or else the directory's name, the requests from
// requests.jsonl (with chunk times) or else requests.csv (without) — and names the file when one is missing.
#include "results/run_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "results/files.h"
#include "results/requests_csv.h"
#include "results_test_data.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using results::RequestRow;
using results::RunData;
using results_test::error_of;
using ::testing::HasSubstr;
using ::testing::StartsWith;

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

}  // namespace

TEST(RunDir, WriteCreatesTheDirectoryAndTheThreeFiles) {
  const fs::path root = testing_paths::fresh_test_dir("run_dir_");
  const fs::path dir = root / "nested" / "run1";
  results::write_run_dir(dir, results_test::full_summary(), results_test::sample_rows());
  EXPECT_TRUE(fs::is_regular_file(dir / "summary.json"));
  EXPECT_TRUE(fs::is_regular_file(dir / "requests.csv"));
  EXPECT_TRUE(fs::is_regular_file(dir / "requests.jsonl"));
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  EXPECT_TRUE(results::is_run_dir(dir));
  EXPECT_THAT(results::read_text_file(dir / "requests.csv"), StartsWith(std::string(results::requests_csv_header()) + "\n"));
  fs::remove_all(root);
}

TEST(RunDir, WriteIntoAnExistingDirectoryOverwrites) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  std::vector<RequestRow> rows = results_test::sample_rows();
  results::write_run_dir(dir, results_test::full_summary(), rows);
  rows.resize(1);
  results::Summary s = results_test::full_summary();
  s.label = "again";
  results::write_run_dir(dir, s, rows);
  const RunData run = results::load_run(dir);
  EXPECT_EQ(run.label, "again");
  EXPECT_EQ(run.requests.size(), 1u);
  fs::remove_all(dir);
}

TEST(RunDir, LoadReadsBackEverything) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  const results::Summary s = results_test::full_summary();
  const std::vector<RequestRow> rows = results_test::sample_rows();
  results::write_run_dir(dir, s, rows);
  const RunData run = results::load_run(dir);
  EXPECT_EQ(run.dir, dir);
  EXPECT_EQ(run.label, s.label);
  results_test::expect_same_summary(s, run.summary);
  EXPECT_TRUE(run.has_chunks);
  ASSERT_EQ(run.requests.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    results_test::expect_same_row(rows[i], run.requests[i], 0);
    EXPECT_EQ(rows[i].chunk_times_s, run.requests[i].chunk_times_s);
    EXPECT_EQ(rows[i].chunk_tokens, run.requests[i].chunk_tokens);
    EXPECT_EQ(rows[i].itl_ms, run.requests[i].itl_ms);
  }
  fs::remove_all(dir);
}

TEST(RunDir, LabelIsTheDirectoryNameWhenTheSummaryHasNone) {
  const fs::path root = testing_paths::fresh_test_dir("run_dir_");
  const fs::path dir = root / "bs16_qps0.5";
  results::Summary s = results_test::full_summary();
  s.label = "";
  results::write_run_dir(dir, s, results_test::sample_rows());
  EXPECT_EQ(results::load_run(dir).label, "bs16_qps0.5");
  // Given with a trailing slash or a detour: still the directory's own name.
  EXPECT_EQ(results::load_run(dir.string() + "/").label, "bs16_qps0.5");
  EXPECT_EQ(results::load_run(dir / ".").label, "bs16_qps0.5");
  EXPECT_EQ(results::load_run(dir / ".." / "bs16_qps0.5").label, "bs16_qps0.5");
  fs::remove_all(root);
}

TEST(RunDir, WithoutJsonlFallsBackToCsv) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  const std::vector<RequestRow> rows = results_test::sample_rows();
  results::write_run_dir(dir, results_test::full_summary(), rows);
  fs::remove(dir / "requests.jsonl");
  const RunData run = results::load_run(dir);
  EXPECT_FALSE(run.has_chunks);
  ASSERT_EQ(run.requests.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    results_test::expect_same_row(rows[i], run.requests[i], 5e-7);
    EXPECT_TRUE(run.requests[i].chunk_times_s.empty());
  }
  fs::remove_all(dir);
}

TEST(RunDir, JsonlIsPreferredOverCsv) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  results::write_run_dir(dir, results_test::full_summary(), results_test::sample_rows());
  write_text(dir / "requests.csv", "garbage that would not parse\n1,2\n");
  const RunData run = results::load_run(dir);
  EXPECT_TRUE(run.has_chunks);
  EXPECT_EQ(run.requests.size(), results_test::sample_rows().size());
  fs::remove_all(dir);
}

TEST(RunDir, MissingSummaryNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  results::write_run_dir(dir, results_test::full_summary(), results_test::sample_rows());
  fs::remove(dir / "summary.json");
  EXPECT_FALSE(results::is_run_dir(dir));
  const std::string e = error_of([&] { results::load_run(dir); });
  EXPECT_THAT(e, StartsWith((dir / "summary.json").string() + ": "));
  EXPECT_THAT(e, HasSubstr("missing"));
  fs::remove_all(dir);
}

TEST(RunDir, NotADirectoryAtAll) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_") / "nothing_here";
  EXPECT_FALSE(results::is_run_dir(dir));
  EXPECT_THAT(error_of([&] { results::load_run(dir); }), HasSubstr((dir / "summary.json").string()));
}

TEST(RunDir, MalformedSummaryNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  results::write_run_dir(dir, results_test::full_summary(), results_test::sample_rows());
  write_text(dir / "summary.json", "{\"label\": 3}");
  const std::string e = error_of([&] { results::load_run(dir); });
  EXPECT_THAT(e, StartsWith((dir / "summary.json").string() + ": "));
  EXPECT_THAT(e, HasSubstr("\"label\""));
  fs::remove_all(dir);
}

TEST(RunDir, MalformedJsonlNamesTheFileAndLine) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  results::write_run_dir(dir, results_test::full_summary(), results_test::sample_rows());
  std::string text = results::read_text_file(dir / "requests.jsonl");
  text += "{\"index\": 9, \"status\": \"weird\"}\n";
  write_text(dir / "requests.jsonl", text);
  const std::string e = error_of([&] { results::load_run(dir); });
  EXPECT_THAT(e, StartsWith((dir / "requests.jsonl").string() + " line 5: "));
  fs::remove_all(dir);
}

TEST(RunDir, MalformedCsvNamesTheFileAndRecord) {
  const fs::path dir = testing_paths::fresh_test_dir("run_dir_");
  results::write_run_dir(dir, results_test::full_summary(), results_test::sample_rows());
  fs::remove(dir / "requests.jsonl");
  write_text(dir / "requests.csv", std::string(results::requests_csv_header()) + "\n0,1,ok\n");
  const std::string e = error_of([&] { results::load_run(dir); });
  EXPECT_THAT(e, StartsWith((dir / "requests.csv").string() + " record 2: "));
  fs::remove_all(dir);
}

TEST(RunDir, WriteWhereADirectoryCannotBeMadeNamesIt) {
  const fs::path root = testing_paths::fresh_test_dir("run_dir_");
  write_text(root / "file", "x");
  const std::string e = error_of([&] {
    results::write_run_dir(root / "file" / "run", results_test::full_summary(), results_test::sample_rows());
  });
  EXPECT_THAT(e, HasSubstr((root / "file").string()));
  fs::remove_all(root);
}
