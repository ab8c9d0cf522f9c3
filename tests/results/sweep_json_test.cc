// test-deps: results
// sweep.json / sweep.csv (docs/formats.md) and the names a sweep gives its cells: an ok cell with its summary, a
// failed cell without one and a --qps auto search survive the round trip; a malformed cell is an error naming
// it; sweep.csv's header and rows; bs<B>_qps<Q> / qps<Q> directories; write_sweep_files + load_sweep.
#include "results/sweep_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "results/files.h"
#include "results/summary_json.h"
#include "results/sweep.h"
#include "results_test_data.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using results::AutoProbe;
using results::Status;
using results::SweepCell;
using results::SweepData;
using results_test::error_of;
using results_test::kInf;
using results_test::kNaN;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kCsvHeader =
    "batch_size,qps,status,duration,completed,failed,request_throughput,output_throughput,p99_ttft_ms,p99_tpot_ms,"
    "mean_e2el_ms";

results::Summary cell_summary() {
  results::Summary s = results_test::full_summary();
  s.label = "bs8_qps0.5";
  s.duration = 12.5;
  s.completed = 10;
  s.failed = 0;
  s.request_throughput = 0.8;
  s.output_throughput = 100.25;
  s.ttft.p99 = 250.5;
  s.tpot.p99 = 30.125;
  s.e2el.mean = 1500.75;
  return s;
}

SweepData sample_sweep() {
  SweepData s;
  s.settings = {{"model", "tiny-llama"}, {"num_prompts", 10}, {"qps", "auto"}};
  s.batch_sizes = {8, 2};
  s.qps = {0.5, 1.5};
  SweepCell ok;
  ok.batch_size = 8;
  ok.qps = 0.5;
  ok.status = Status::kOk;
  ok.dir = "bs8_qps0.5";
  ok.summary = cell_summary();
  SweepCell failed;
  failed.batch_size = 2;
  failed.qps = 1.5;
  failed.status = Status::kFailed;
  failed.error = "engine: out of KV blocks, \"bs2\"";
  failed.dir = "bs2_qps1.5";
  s.cells = {ok, failed};
  results::AutoResult a;
  a.slo = results::Slo{200, 50};
  a.probes = {AutoProbe{8, 1.0, true, 120.5, 30.25}, AutoProbe{8, 2.0, false, kNaN, kNaN},
              AutoProbe{2, 1.0, false, 480.0, kNaN}};
  a.max_qps = {1.0, 0.0};
  s.autoq = a;
  return s;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void expect_same_sweep(const SweepData& e, const SweepData& a) {
  EXPECT_EQ(e.settings, a.settings);
  EXPECT_EQ(e.batch_sizes, a.batch_sizes);
  EXPECT_EQ(e.qps, a.qps);
  ASSERT_EQ(e.cells.size(), a.cells.size());
  for (size_t i = 0; i < e.cells.size(); ++i) {
    const SweepCell& ec = e.cells[i];
    const SweepCell& ac = a.cells[i];
    EXPECT_EQ(ec.batch_size, ac.batch_size) << i;
    EXPECT_EQ(ec.qps, ac.qps) << i;
    EXPECT_EQ(ec.status, ac.status) << i;
    EXPECT_EQ(ec.error, ac.error) << i;
    EXPECT_EQ(ec.dir, ac.dir) << i;
    ASSERT_EQ(ec.summary.has_value(), ac.summary.has_value()) << i;
    if (ec.summary) results_test::expect_same_summary(*ec.summary, *ac.summary);
  }
  ASSERT_EQ(e.autoq.has_value(), a.autoq.has_value());
  if (!e.autoq) return;
  EXPECT_EQ(e.autoq->slo.ttft_ms, a.autoq->slo.ttft_ms);
  EXPECT_EQ(e.autoq->slo.tpot_ms, a.autoq->slo.tpot_ms);
  EXPECT_EQ(e.autoq->max_qps, a.autoq->max_qps);
  ASSERT_EQ(e.autoq->probes.size(), a.autoq->probes.size());
  for (size_t i = 0; i < e.autoq->probes.size(); ++i) {
    const AutoProbe& ep = e.autoq->probes[i];
    const AutoProbe& ap = a.autoq->probes[i];
    EXPECT_EQ(ep.batch_size, ap.batch_size) << i;
    EXPECT_EQ(ep.qps, ap.qps) << i;
    EXPECT_EQ(ep.ok, ap.ok) << i;
    results_test::expect_same_double(ep.p99_ttft_ms, ap.p99_ttft_ms, "probe p99_ttft_ms");
    results_test::expect_same_double(ep.p99_tpot_ms, ap.p99_tpot_ms, "probe p99_tpot_ms");
  }
}

}  // namespace

// ---- names ----

TEST(SweepNames, QpsLabel) {
  EXPECT_EQ(results::qps_label(0.5), "0.5");
  EXPECT_EQ(results::qps_label(3), "3");
  EXPECT_EQ(results::qps_label(2.8125), "2.8125");
  EXPECT_EQ(results::qps_label(12.5), "12.5");
  EXPECT_EQ(results::qps_label(1.0 / 3.0), "0.333333");
  EXPECT_EQ(results::qps_label(100), "100");
  EXPECT_EQ(results::qps_label(kInf), "inf");
}

TEST(SweepNames, BatchSizeLabel) {
  EXPECT_EQ(results::batch_size_label(16), "16");
  EXPECT_EQ(results::batch_size_label(1), "1");
  EXPECT_EQ(results::batch_size_label(0), "server");
}

TEST(SweepNames, CellDirName) {
  EXPECT_EQ(results::cell_dir_name(16, 0.5), "bs16_qps0.5");
  EXPECT_EQ(results::cell_dir_name(16, 3), "bs16_qps3");
  EXPECT_EQ(results::cell_dir_name(1, 2.8125), "bs1_qps2.8125");
  EXPECT_EQ(results::cell_dir_name(0, 2.8125), "qps2.8125");
  EXPECT_EQ(results::cell_dir_name(0, 0.5), "qps0.5");
  EXPECT_EQ(results::cell_dir_name(4, kInf), "bs4_qpsinf");
}

TEST(SweepNames, DistinctRatesGetDistinctDirectories) {
  // The --qps auto search bisects: rates six significant digits apart must not share a directory.
  EXPECT_NE(results::cell_dir_name(8, 2.8125), results::cell_dir_name(8, 2.8126));
  EXPECT_NE(results::cell_dir_name(8, 1.5), results::cell_dir_name(8, 1.50001));
}

// ---- sweep.json ----

TEST(SweepJson, RoundTrip) {
  const SweepData s = sample_sweep();
  const SweepData back = results::sweep_from_json(json::parse(results::sweep_to_json(s).dump()), "/x/sweep", "sweep.json");
  EXPECT_EQ(back.dir, fs::path("/x/sweep"));
  expect_same_sweep(s, back);
}

TEST(SweepJson, LayoutAsDocumented) {
  const json j = results::sweep_to_json(sample_sweep());
  EXPECT_EQ(j["settings"]["model"], "tiny-llama");
  EXPECT_EQ(j["batch_sizes"], json({8, 2}));
  EXPECT_EQ(j["qps"], json({0.5, 1.5}));
  ASSERT_EQ(j["cells"].size(), 2u);
  const json& ok = j["cells"][0];
  EXPECT_EQ(ok["batch_size"], 8);
  EXPECT_EQ(ok["qps"], 0.5);
  EXPECT_EQ(ok["status"], "ok");
  EXPECT_EQ(ok["dir"], "bs8_qps0.5");
  EXPECT_EQ(ok["summary"]["p99_ttft_ms"], 250.5);
  EXPECT_EQ(ok["summary"]["label"], "bs8_qps0.5");
  const json& failed = j["cells"][1];
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["error"], "engine: out of KV blocks, \"bs2\"");
  EXPECT_TRUE(failed["summary"].is_object());
  EXPECT_TRUE(failed["summary"].empty());
}

TEST(SweepJson, AutoSearchLayout) {
  const json a = results::sweep_to_json(sample_sweep())["auto"];
  EXPECT_EQ(a["slo"], (json{{"ttft_ms", 200.0}, {"tpot_ms", 50.0}}));
  EXPECT_EQ(a["max_qps"], 1.0);  // the first batch size's
  EXPECT_EQ(a["max_qps_by_batch_size"],
            json::parse(R"([{"batch_size": 8, "max_qps": 1.0}, {"batch_size": 2, "max_qps": 0.0}])"));
  ASSERT_EQ(a["probes"].size(), 3u);
  EXPECT_EQ(a["probes"][0], json::parse(R"({"batch_size": 8, "qps": 1.0, "ok": true, "p99_ttft_ms": 120.5, "p99_tpot_ms": 30.25})"));
  EXPECT_TRUE(a["probes"][1]["p99_ttft_ms"].is_null());
  EXPECT_TRUE(a["probes"][1]["p99_tpot_ms"].is_null());
  EXPECT_EQ(a["probes"][1]["ok"], false);
  EXPECT_EQ(a["probes"][2]["p99_ttft_ms"], 480.0);
  EXPECT_TRUE(a["probes"][2]["p99_tpot_ms"].is_null());
  // Nothing in the file that a JSON reader cannot parse.
  EXPECT_NO_THROW(json::parse(results::sweep_to_json(sample_sweep()).dump()));
}

TEST(SweepJson, NoAutoSearchNoAutoKey) {
  SweepData s = sample_sweep();
  s.autoq.reset();
  const json j = results::sweep_to_json(s);
  EXPECT_FALSE(j.contains("auto"));
  EXPECT_FALSE(results::sweep_from_json(j, "d", "sweep.json").autoq.has_value());
}

TEST(SweepJson, MaxQpsPerBatchSizeFollowsTheBatchSizes) {
  // max_qps_by_batch_size in a different order than batch_sizes: matched by batch size.
  const json j = json::parse(R"({"batch_sizes": [4, 16, 32], "qps": [], "cells": [],
      "auto": {"slo": {"ttft_ms": 100, "tpot_ms": 0}, "max_qps": 2.5,
               "max_qps_by_batch_size": [{"batch_size": 16, "max_qps": 7.25}, {"batch_size": 4, "max_qps": 2.5}],
               "probes": []}})");
  const SweepData s = results::sweep_from_json(j, "d", "sweep.json");
  ASSERT_TRUE(s.autoq.has_value());
  EXPECT_EQ(s.autoq->max_qps, (std::vector<double>{2.5, 7.25, 0.0}));
  EXPECT_EQ(s.autoq->slo.ttft_ms, 100);
  EXPECT_EQ(s.autoq->slo.tpot_ms, 0);
}

TEST(SweepJson, OlderAutoWithOnlyMaxQps) {
  const json j = json::parse(R"({"batch_sizes": [8], "cells": [], "auto": {"max_qps": 3.5}})");
  const SweepData s = results::sweep_from_json(j, "d", "sweep.json");
  ASSERT_TRUE(s.autoq.has_value());
  EXPECT_EQ(s.autoq->max_qps, (std::vector<double>{3.5}));
  EXPECT_TRUE(s.autoq->probes.empty());
}

TEST(SweepJson, CellStatusOtherThanOkOrFailedNamesTheCell) {
  for (const json& status : {json("rejected"), json("weird"), json(""), json(nullptr)}) {
    json j = results::sweep_to_json(sample_sweep());
    j["cells"][1]["status"] = status;
    const std::string e = error_of([&] { results::sweep_from_json(j, "d", "runs/s/sweep.json"); });
    EXPECT_THAT(e, StartsWith("runs/s/sweep.json cells[1]: ")) << status.dump();
    EXPECT_THAT(e, HasSubstr("status")) << status.dump();
  }
  json j = results::sweep_to_json(sample_sweep());
  j["cells"][0].erase("status");
  EXPECT_THAT(error_of([&] { results::sweep_from_json(j, "d", "s.json"); }), StartsWith("s.json cells[0]: "));
}

TEST(SweepJson, MalformedCellsNameTheCell) {
  {
    json j = results::sweep_to_json(sample_sweep());
    j["cells"][1].erase("qps");
    const std::string e = error_of([&] { results::sweep_from_json(j, "d", "s.json"); });
    EXPECT_THAT(e, StartsWith("s.json cells[1]: "));
    EXPECT_THAT(e, HasSubstr("\"qps\""));
  }
  {
    json j = results::sweep_to_json(sample_sweep());
    j["cells"][0]["batch_size"] = "eight";
    EXPECT_THAT(error_of([&] { results::sweep_from_json(j, "d", "s.json"); }), StartsWith("s.json cells[0]: "));
  }
  {
    json j = results::sweep_to_json(sample_sweep());
    j["cells"][1] = 5;
    EXPECT_THAT(error_of([&] { results::sweep_from_json(j, "d", "s.json"); }), StartsWith("s.json cells[1]: "));
  }
  {
    json j = results::sweep_to_json(sample_sweep());
    j["cells"][0]["summary"]["num_prompts"] = "ten";
    const std::string e = error_of([&] { results::sweep_from_json(j, "d", "s.json"); });
    EXPECT_THAT(e, StartsWith("s.json cells[0] summary: "));
    EXPECT_THAT(e, HasSubstr("\"num_prompts\""));
  }
}

TEST(SweepJson, MissingCellsOrNotAnObjectIsAnError) {
  json j = results::sweep_to_json(sample_sweep());
  j.erase("cells");
  EXPECT_THAT(error_of([&] { results::sweep_from_json(j, "d", "s.json"); }), StartsWith("s.json: "));
  EXPECT_THAT(error_of([&] { results::sweep_from_json(json::array(), "d", "s.json"); }), StartsWith("s.json: "));
  j = results::sweep_to_json(sample_sweep());
  j["batch_sizes"] = "8,16";
  EXPECT_THAT(error_of([&] { results::sweep_from_json(j, "d", "s.json"); }), HasSubstr("\"batch_sizes\""));
}

// ---- sweep.csv ----

TEST(SweepCsv, HeaderAndRows) {
  const std::vector<std::string> lines = lines_of(results::sweep_csv(sample_sweep()));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], kCsvHeader);
  EXPECT_EQ(lines[1], "8,0.5,ok,12.5,10,0,0.8,100.25,250.5,30.125,1500.75");
  EXPECT_EQ(lines[2], "2,1.5,failed,,,,,,,,");
}

TEST(SweepCsv, NoCellsIsTheHeaderAlone) {
  SweepData s;
  EXPECT_EQ(results::sweep_csv(s), std::string(kCsvHeader) + "\n");
}

TEST(SweepCsv, NumbersAsSummaryJsonWritesThem) {
  SweepData s = sample_sweep();
  s.cells.resize(1);
  s.cells[0].summary->request_throughput = 1.0 / 3.0;
  s.cells[0].summary->ttft.p99 = kNaN;  // null in summary.json: an empty cell
  s.cells[0].summary->tpot.p99 = kInf;  // "inf" in summary.json
  const std::vector<std::string> lines = lines_of(results::sweep_csv(s));
  ASSERT_EQ(lines.size(), 2u);
  const json j = results::summary_to_json(*s.cells[0].summary);
  EXPECT_EQ(lines[1], "8,0.5,ok,12.5,10,0," + j["request_throughput"].dump() + ",100.25,,inf,1500.75");
  EXPECT_EQ(j["request_throughput"].dump(), "0.3333333333333333");
}

// A summary read back from a summary.json that lacks a value holds NaN; the CSV must show an empty cell then,
// not JSON's "null" (docs: "empty where the cell has no summary or the summary no value").
TEST(SweepCsv, UnknownValuesAreEmptyNotNull) {
  SweepData s = sample_sweep();
  s.cells.resize(1);
  s.cells[0].summary->duration = kNaN;
  s.cells[0].summary->request_throughput = kNaN;
  s.cells[0].summary->output_throughput = kNaN;
  const std::vector<std::string> lines = lines_of(results::sweep_csv(s));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "8,0.5,ok,,10,0,,,250.5,30.125,1500.75");
}

// ---- files ----

TEST(SweepFiles, WriteAndLoadRoundTrip) {
  const fs::path dir = testing_paths::fresh_test_dir("sweep_json_");
  const SweepData s = sample_sweep();
  EXPECT_FALSE(results::is_sweep_dir(dir));
  results::write_sweep_files(s, dir);
  EXPECT_TRUE(results::is_sweep_dir(dir));
  EXPECT_TRUE(fs::is_regular_file(dir / "sweep.json"));
  EXPECT_TRUE(fs::is_regular_file(dir / "sweep.csv"));
  EXPECT_FALSE(fs::exists(dir / "sweep.json.tmp"));
  EXPECT_FALSE(fs::exists(dir / "sweep.csv.tmp"));
  EXPECT_EQ(results::read_text_file(dir / "sweep.csv"), results::sweep_csv(s));
  const SweepData back = results::load_sweep(dir);
  EXPECT_EQ(back.dir, dir);
  expect_same_sweep(s, back);
  fs::remove_all(dir);
}

TEST(SweepFiles, RewritingKeepsTheLatest) {
  // The sweep rewrites its files after every cell.
  const fs::path dir = testing_paths::fresh_test_dir("sweep_json_");
  SweepData s = sample_sweep();
  s.cells.resize(1);
  results::write_sweep_files(s, dir);
  EXPECT_EQ(results::load_sweep(dir).cells.size(), 1u);
  s = sample_sweep();
  results::write_sweep_files(s, dir);
  expect_same_sweep(s, results::load_sweep(dir));
  fs::remove_all(dir);
}

TEST(SweepFiles, IsSweepDirNeedsSweepJson) {
  const fs::path dir = testing_paths::fresh_test_dir("sweep_json_");
  EXPECT_FALSE(results::is_sweep_dir(dir));
  EXPECT_FALSE(results::is_sweep_dir(dir / "missing"));
  write_text(dir / "sweep.csv", kCsvHeader);
  EXPECT_FALSE(results::is_sweep_dir(dir));
  fs::create_directories(dir / "sweep.json");  // a directory of that name is not the file
  EXPECT_FALSE(results::is_sweep_dir(dir));
  fs::remove(dir / "sweep.json");
  write_text(dir / "sweep.json", "{}");
  EXPECT_TRUE(results::is_sweep_dir(dir));
  fs::remove_all(dir);
}

TEST(SweepFiles, LoadWithoutSweepJsonNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("sweep_json_");
  const std::string e = error_of([&] { results::load_sweep(dir); });
  EXPECT_THAT(e, StartsWith((dir / "sweep.json").string() + ": "));
  EXPECT_THAT(e, HasSubstr("missing"));
  fs::remove_all(dir);
}

TEST(SweepFiles, MalformedSweepJsonNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("sweep_json_");
  write_text(dir / "sweep.json", "{\"cells\": [");
  const std::string e = error_of([&] { results::load_sweep(dir); });
  EXPECT_THAT(e, StartsWith((dir / "sweep.json").string() + ": "));
  EXPECT_THAT(e, HasSubstr("invalid JSON"));
  write_text(dir / "sweep.json", R"({"cells": [{"qps": 1, "status": "weird"}]})");
  EXPECT_THAT(error_of([&] { results::load_sweep(dir); }), StartsWith((dir / "sweep.json").string() + " cells[0]: "));
  fs::remove_all(dir);
}
