// The sweep: the max-QPS search, the cell bookkeeping (order, directories, a failed cell recorded and the sweep
// going on), the writers (terminal table, sweep.csv, sweep.json) and, end to end, a real 2 × 2 sweep on
// stories260K whose table, csv, json and html carry exactly the numbers of the cells' own summary.json.
#include "loadgen/sweep/sweep.h"

#include "loadgen/cli/resolve.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "support/report_fixtures.h"
#include "support/test_paths.h"
#include "reports/html_report.h"
#include "reports/svg_chart.h"
#include "reports/sweep_table.h"
#include "results/files.h"
#include "results/run_dir.h"
#include "results/summary_json.h"
#include "results/sweep_json.h"
#include "support/xml_wellformed.h"

namespace fs = std::filesystem;
namespace rf = report_fixtures;
using nlohmann::json;

namespace {

// A system whose p99 TTFT passes exactly up to `capacity` requests/s.
struct Threshold {
  double capacity;
  int calls = 0;
  loadgen::ProbeResult operator()(double q) {
    ++calls;
    return {q <= capacity, q <= capacity ? 10.0 : 1000.0, 5.0};
  }
};

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  for (char c : line) {
    if (c == ',') out.emplace_back();
    else out.back().push_back(c);
  }
  return out;
}

}  // namespace

TEST(SearchMaxQps, BracketsThenBisectsToTheResolution) {
  for (double capacity : {0.7, 3.7, 5.0, 11.3, 40.0}) {
    Threshold sys{capacity};
    loadgen::AutoSearch s;
    s.start_qps = 0.5;
    s.max_qps = 64;
    s.resolution = 0.05;
    s.max_probes = 30;
    std::vector<double> rates;
    const double found = loadgen::search_max_qps(s, std::ref(sys), &rates);
    EXPECT_LE(found, capacity) << capacity;
    EXPECT_GE(found, capacity / 1.05 - 1e-9) << capacity;
    // Bracketing doubles from the start: 0.5, 1, 2, ... up to the first failure.
    EXPECT_DOUBLE_EQ(rates[0], 0.5);
    EXPECT_DOUBLE_EQ(rates[1], 1.0);
    EXPECT_LT(sys.calls, 16) << capacity;  // bisection, not a scan
  }
}

TEST(SearchMaxQps, EdgesAndLimits) {
  loadgen::AutoSearch s;
  s.start_qps = 1;
  s.max_qps = 8;
  Threshold everything{1e9};
  std::vector<double> rates;
  EXPECT_DOUBLE_EQ(loadgen::search_max_qps(s, std::ref(everything), &rates), 8);  // capped at --qps-max
  EXPECT_EQ(rates, (std::vector<double>{1, 2, 4, 8}));

  Threshold slow{0.1};  // the first probe fails: search downwards
  rates.clear();
  const double found = loadgen::search_max_qps(s, std::ref(slow), &rates);
  EXPECT_LE(found, 0.1);
  EXPECT_GE(found, 0.1 / 1.05);
  EXPECT_DOUBLE_EQ(rates[1], 0.5);

  Threshold nothing{0};
  EXPECT_EQ(loadgen::search_max_qps(s, std::ref(nothing), nullptr), 0);
  EXPECT_LE(nothing.calls, s.max_probes);

  s.max_probes = 3;
  Threshold capped{3.3};
  loadgen::search_max_qps(s, std::ref(capped), nullptr);
  EXPECT_EQ(capped.calls, 3);
}

TEST(MeetsSlo, AllRequestsAndBothPercentiles) {
  results::Summary ok;
  ok.num_prompts = ok.completed = 10;
  ok.ttft.p99 = 150.0;
  ok.tpot.p99 = 40.0;
  EXPECT_TRUE(loadgen::meets_slo(ok, {200, 50}));
  EXPECT_FALSE(loadgen::meets_slo(ok, {100, 50}));
  EXPECT_FALSE(loadgen::meets_slo(ok, {200, 30}));
  EXPECT_TRUE(loadgen::meets_slo(ok, {0, 50}));  // no TTFT limit
  results::Summary lost = ok;
  lost.completed = 9;  // one failure fails the probe even with fine percentiles
  EXPECT_FALSE(loadgen::meets_slo(lost, {200, 50}));
  results::Summary inf = ok;
  inf.ttft.p99 = INFINITY;
  EXPECT_FALSE(loadgen::meets_slo(inf, {200, 50}));
}

TEST(CellNames, InProcessAndRemote) {
  EXPECT_EQ(results::cell_dir_name(16, 0.5), "bs16_qps0.5");
  EXPECT_EQ(results::cell_dir_name(1, 3), "bs1_qps3");
  EXPECT_EQ(results::cell_dir_name(0, 2.8125), "qps2.8125");
  EXPECT_DOUBLE_EQ(loadgen::round_rate(2.81254), 2.813);
}

// The sweep's bookkeeping, with cells that write simulated run directories (the engine-backed cells are in
// the end-to-end test below): order, a cell that throws, and the files rewritten after every cell.
TEST(RunSweep, OrderFailuresAndFiles) {
  const rf::TempDir tmp("sweep_bookkeeping");
  const fs::path& dir = tmp.path;
  loadgen::SweepSpec spec;
  spec.batch_sizes = {1, 16};
  spec.qps = {0.5, 3};
  spec.out_dir = dir;
  spec.settings = {{"seed", 0}};
  std::vector<std::string> order;
  auto cell = [&](int bs, double q, const fs::path& cell_dir) {
    order.push_back(cell_dir.filename().string());
    if (bs == 16 && q == 0.5) throw std::runtime_error("out of KV blocks");
    rf::write_run(cell_dir, 12, q, 0.01 * bs, 7, cell_dir.filename().string());
    return loadgen::CellOutcome{true, "", results::read_summary_json(cell_dir / "summary.json")};
  };
  std::ostringstream log;
  const results::SweepData s = loadgen::run_sweep(spec, cell, &log);
  EXPECT_EQ(order, (std::vector<std::string>{"bs1_qps0.5", "bs1_qps3", "bs16_qps0.5", "bs16_qps3"}));
  ASSERT_EQ(s.cells.size(), 4u);
  EXPECT_EQ(s.cells[2].status, results::Status::kFailed);
  EXPECT_EQ(s.cells[2].error, "out of KV blocks");
  EXPECT_EQ(s.cells[3].status, results::Status::kOk);  // the sweep went on
  EXPECT_NE(log.str().find("FAILED: out of KV blocks"), std::string::npos);
  const results::SweepData back = results::load_sweep(dir);
  ASSERT_EQ(back.cells.size(), 4u);
  EXPECT_EQ(back.cells[2].error, "out of KV blocks");
  EXPECT_EQ(results::summary_to_json(*back.cells[3].summary), results::summary_to_json(*s.cells[3].summary));
  const std::string table = reports::sweep_table(s);
  EXPECT_NE(table.find("failed"), std::string::npos);
  EXPECT_NE(table.find("failed: batch size 16, 0.5 QPS: out of KV blocks"), std::string::npos);
}

// --concurrency: closed-loop cells after the rate grid, in their own directories, read back from sweep.json
// with their concurrency (qps inf), in their own table and in report.html.
TEST(RunSweep, ClosedLoopCellsBesideTheRateGrid) {
  const rf::TempDir tmp("sweep_closed");
  const fs::path& dir = tmp.path;
  loadgen::SweepSpec spec;
  spec.batch_sizes = {4};
  spec.qps = {2};
  spec.concurrency = {1, 8};
  spec.out_dir = dir;
  std::vector<std::string> order;
  auto cell = [&](int, double q, const fs::path& cell_dir) {
    order.push_back(cell_dir.filename().string());
    rf::write_run(cell_dir, 12, q, 0.01, 7, cell_dir.filename().string());
    return loadgen::CellOutcome{true, "", results::read_summary_json(cell_dir / "summary.json")};
  };
  std::vector<int> in_flight;
  auto closed = [&](int, int c, const fs::path& cell_dir) {
    order.push_back(cell_dir.filename().string());
    in_flight.push_back(c);
    rf::write_run(cell_dir, 12, 5.0 * c, 0.01 * c, 7, cell_dir.filename().string());
    return loadgen::CellOutcome{true, "", results::read_summary_json(cell_dir / "summary.json")};
  };
  const results::SweepData s = loadgen::run_sweep(spec, cell, nullptr, closed);
  EXPECT_EQ(order, (std::vector<std::string>{"bs4_qps2", "bs4_c1", "bs4_c8"}));
  EXPECT_EQ(in_flight, (std::vector<int>{1, 8}));
  const results::SweepData back = results::load_sweep(dir);
  ASSERT_EQ(back.cells.size(), 3u);
  EXPECT_EQ(back.concurrency, (std::vector<int>{1, 8}));
  EXPECT_EQ(back.cells[0].concurrency, 0);
  EXPECT_EQ(back.cells[2].concurrency, 8);
  EXPECT_TRUE(std::isinf(back.cells[2].qps));
  EXPECT_EQ(back.cells[2].dir, "bs4_c8");
  const std::string table = reports::concurrency_table(back);
  EXPECT_NE(table.find("C=1"), std::string::npos) << table;
  EXPECT_NE(table.find("C=8"), std::string::npos) << table;
  EXPECT_NE(table.find("req/s"), std::string::npos) << table;
  EXPECT_EQ(reports::sweep_table(back).find("C=8"), std::string::npos) << "the rate grid shows rate cells only";
  EXPECT_THROW(loadgen::run_sweep(spec, cell, nullptr), std::invalid_argument) << "closed cells need their runner";
}

TEST(RunSweep, AutoSearchRecordsEveryProbe) {
  const rf::TempDir tmp("sweep_auto");
  const fs::path& dir = tmp.path;
  loadgen::SweepSpec spec;
  spec.batch_sizes = {8};
  spec.out_dir = dir;
  loadgen::AutoSearch a;
  a.slo = {50, 0};
  a.start_qps = 1;
  a.max_qps = 16;
  spec.auto_search = a;
  // Simulated cells whose p99 TTFT grows with the rate past 4.5 QPS.
  auto cell = [&](int bs, double q, const fs::path& cell_dir) {
    rf::write_run(cell_dir, 10, q, 0.01, 3, cell_dir.filename().string());
    results::Summary summary = results::read_summary_json(cell_dir / "summary.json");
    summary.completed = summary.num_prompts;
    summary.ttft.p99 = q <= 4.5 ? 20.0 : 20.0 * q;
    return loadgen::CellOutcome{true, "", summary};
  };
  const results::SweepData s = loadgen::run_sweep(spec, cell, nullptr);
  ASSERT_TRUE(s.autoq.has_value());
  ASSERT_EQ(s.autoq->max_qps.size(), 1u);
  EXPECT_LE(s.autoq->max_qps[0], 4.5);
  EXPECT_GE(s.autoq->max_qps[0], 4.5 / 1.05);
  EXPECT_EQ(s.autoq->probes.size(), s.cells.size());
  const results::SweepData back = results::load_sweep(dir);
  ASSERT_TRUE(back.autoq.has_value());
  EXPECT_DOUBLE_EQ(back.autoq->max_qps[0], s.autoq->max_qps[0]);
  EXPECT_EQ(back.autoq->probes.size(), s.autoq->probes.size());
  const json j = rf::read_json(dir / "sweep.json");
  EXPECT_DOUBLE_EQ(j["auto"]["max_qps"].get<double>(), s.autoq->max_qps[0]);
  EXPECT_DOUBLE_EQ(j["auto"]["slo"]["ttft_ms"].get<double>(), 50);
  const std::string table = reports::auto_table(s);
  EXPECT_NE(table.find("batch size      8: " + results::qps_label(s.autoq->max_qps[0]) + " QPS"), std::string::npos)
      << table;
}

TEST(SweepWriters, CsvQuotesAndEmptyCells) {
  results::SweepData s;
  s.batch_sizes = {2};
  s.qps = {1.5};
  s.cells.push_back({2, 1.5, results::Status::kFailed, "boom, \"bad\"", "bs2_qps1.5", std::nullopt});
  const std::vector<std::string> lines = split_lines(results::sweep_csv(s));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "2,1.5,failed,,,,,,,,");
}

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(' '), b = s.find_last_not_of(' ');
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::vector<std::string> split_cells(const std::string& row) {
  std::vector<std::string> out;
  size_t p = 0;
  for (size_t q; (q = row.find(" | ", p)) != std::string::npos; p = q + 3) out.push_back(trim(row.substr(p, q - p)));
  out.push_back(trim(row.substr(p)));
  return out;
}

}  // namespace

// Must-show 1: a real 2 x 2 sweep on stories260K (in-process engine, a fresh one per cell) produces the table,
// sweep.csv, sweep.json and report.html, and the numbers in each are the cells' own summary.json numbers.
TEST(SweepEndToEnd, Stories260KTwoByTwo) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  REQUIRE_SHARED("datasets/alpaca_200.json");
  const rf::TempDir tmp("sweep_e2e");
  const fs::path& dir = tmp.path;
  loadgen::RunSettings s;
  s.model = testing_paths::shared("models/stories260K/stories260K.bin").string();
  s.dataset = testing_paths::shared("datasets/alpaca_200.json").string();
  s.num_requests = 6;
  s.output_len = 8;
  s.quiet = true;
  s.seed = 3;
  loadgen::SweepSpec spec;
  spec.batch_sizes = {1, 4};
  spec.qps = {4, 16};
  spec.out_dir = dir;
  const loadgen::RunConfig base = loadgen::resolve(s);
  spec.settings = loadgen::to_json(base);
  const results::SweepData sweep = loadgen::run_sweep(spec, loadgen::benchmark_cell_runner(base, nullptr), nullptr);
  ASSERT_EQ(sweep.cells.size(), 4u);

  // Each cell: ok, its run directory complete, and the sweep's copy of the summary equal to the file.
  std::vector<json> summaries;
  std::vector<int64_t> first_samples;
  for (const results::SweepCell& c : sweep.cells) {
    ASSERT_EQ(c.status, results::Status::kOk) << c.dir << ": " << c.error;
    const json on_disk = rf::read_json(dir / c.dir / "summary.json");
    EXPECT_EQ(results::summary_to_json(*c.summary), on_disk) << c.dir;
    // Prompts longer than stories260K's 512-token context are skipped (and counted) by the workload.
    EXPECT_GT(on_disk["completed"].get<int>(), 0) << c.dir;
    EXPECT_EQ(on_disk["completed"], on_disk["num_prompts"]) << c.dir;
    EXPECT_EQ(on_disk["engine"]["batch_size"].get<int>(), c.batch_size) << c.dir;
    EXPECT_DOUBLE_EQ(rf::json_number(on_disk, "request_rate"), c.qps) << c.dir;
    summaries.push_back(on_disk);
    // The same seed in every cell: the same requests in the same order.
    const results::RunData run = results::load_run(dir / c.dir);
    std::vector<int64_t> ids;
    for (const auto& r : run.requests) ids.push_back(r.sample_id);
    if (first_samples.empty()) first_samples = ids;
    EXPECT_EQ(ids, first_samples) << c.dir;
  }

  // The terminal table: rows batch size, columns QPS, "total time / p99 TTFT" from each cell's summary.
  const std::vector<std::string> lines = split_lines(reports::sweep_table(sweep));
  ASSERT_GE(lines.size(), 5u);
  EXPECT_EQ(split_cells(lines[1]), (std::vector<std::string>{"batch size", "4 QPS", "16 QPS"}));
  for (size_t i = 0; i < sweep.cells.size(); ++i) {
    const results::SweepCell& c = sweep.cells[i];
    const std::vector<std::string> row = split_cells(lines[3 + i / 2]);
    ASSERT_EQ(row.size(), 3u);
    EXPECT_EQ(row[0], std::to_string(c.batch_size));
    std::string cell = row[1 + i % 2];
    while (!cell.empty() && (cell.back() == '*' || cell.back() == '!')) cell.pop_back();  // marks, same numbers
    EXPECT_EQ(cell, reports::svg::format_number(rf::json_number(summaries[i], "duration")) + " s / " +
                        reports::svg::format_number(rf::json_number(summaries[i], "p99_ttft_ms")) + " ms");
  }

  // sweep.csv: every number exactly the summary's.
  const std::vector<std::string> csv = split_lines(results::read_text_file(dir / "sweep.csv"));
  ASSERT_EQ(csv.size(), 5u);
  const std::vector<std::string> header = split_csv(csv[0]);
  for (size_t i = 0; i < sweep.cells.size(); ++i) {
    const std::vector<std::string> row = split_csv(csv[1 + i]);
    ASSERT_EQ(row.size(), header.size());
    EXPECT_EQ(std::stoi(row[0]), sweep.cells[i].batch_size);
    EXPECT_EQ(std::stod(row[1]), sweep.cells[i].qps);
    EXPECT_EQ(row[2], "ok");
    for (size_t k = 3; k < header.size(); ++k)
      EXPECT_EQ(std::stod(row[k]), summaries[i][header[k]].get<double>()) << header[k] << " of " << sweep.cells[i].dir;
  }

  // sweep.json: the cells with their summaries, as on disk.
  const json j = rf::read_json(dir / "sweep.json");
  EXPECT_EQ(j["batch_sizes"], json({1, 4}));
  EXPECT_EQ(j["qps"], json({4.0, 16.0}));
  ASSERT_EQ(j["cells"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(j["cells"][i]["summary"], summaries[i]);
    EXPECT_EQ(j["cells"][i]["dir"], sweep.cells[i].dir);
  }

  // report.html: well-formed, and its sweep table and summary table show the summaries' numbers.
  const reports::ReportInput in = reports::load_report_input({dir});
  reports::write_html_report(in, dir / "report.html");
  const std::string html = results::read_text_file(dir / "report.html");
  EXPECT_EQ(xml_check::check(html), "");
  for (const json& sm : summaries) {
    EXPECT_NE(html.find(reports::svg::format_number(rf::json_number(sm, "duration")) + " s / " +
                        reports::svg::format_number(rf::json_number(sm, "p99_ttft_ms")) + " ms</td>"),
              std::string::npos);
    EXPECT_NE(html.find("<td>" + reports::svg::format_number(rf::json_number(sm, "p99_tpot_ms")) + "</td>"),
              std::string::npos);
  }
}
