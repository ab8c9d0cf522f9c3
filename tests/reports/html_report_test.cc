// test-deps: reports
// Reading saved runs and sweeps back (run_data) and the page built from them (html_report): the numbers in the
// page are the summaries' numbers, the page is self-contained and well-formed, derived series are right, and bad
// directories and files get errors that name them.
#include "reports/html_report.h"

#include <gtest/gtest.h>

#include <cmath>

#include "support/report_fixtures.h"
#include "reports/svg_chart.h"
#include "results/files.h"
#include "results/requests_csv.h"
#include "results/summary_json.h"
#include "results/sweep_json.h"
#include "support/xml_wellformed.h"

namespace fs = std::filesystem;
namespace rf = report_fixtures;
using nlohmann::json;

namespace {

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

// Nothing in the page may make a browser fetch anything: no scripts, no external references. The only URL
// allowed is the SVG namespace name (an identifier, never fetched).
void expect_self_contained(const std::string& html) {
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url(http"), std::string::npos);
  std::string rest = html;
  for (size_t p; (p = rest.find("xmlns=\"http://www.w3.org/2000/svg\"")) != std::string::npos;) rest.erase(p, 34);
  EXPECT_EQ(rest.find("http://"), std::string::npos);
  EXPECT_EQ(rest.find("https://"), std::string::npos);
  EXPECT_EQ(count(rest, "href="), count(rest, "href=\"data:"));
  EXPECT_EQ(rest.find(" src="), std::string::npos);
}

}  // namespace

TEST(RunData, LoadsWhatTheWritersWrote) {
  const rf::TempDir tmp("load");
  const fs::path& dir = tmp.path;
  const rf::SimulatedRun sim = rf::write_run(dir / "a", 40, 5.0, 0.01, 1, "stories bs16");
  const results::RunData run = results::load_run(dir / "a");
  EXPECT_EQ(run.label, "stories bs16");
  EXPECT_TRUE(run.has_chunks);
  ASSERT_EQ(run.requests.size(), sim.rows.size());
  for (size_t i = 0; i < sim.rows.size(); ++i) {
    const results::RequestRow &a = run.requests[i], &b = sim.rows[i];
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.error, b.error);
    EXPECT_EQ(a.ttft_ms, b.ttft_ms);
    EXPECT_EQ(a.first_token_s, b.first_token_s);  // null for the failed one
    EXPECT_EQ(a.chunk_times_s, b.chunk_times_s);
    EXPECT_EQ(a.chunk_tokens, b.chunk_tokens);
  }
  EXPECT_DOUBLE_EQ(run.summary.ttft.p99, sim.summary.ttft.p99);
  EXPECT_TRUE(std::isnan(results::summary_from_json(json::object(), "test").ttft.p99));  // a key the file lacks
  EXPECT_FALSE(run.summary.request_goodput.has_value());  // null without --slo
  EXPECT_TRUE(std::isinf(results::summary_from_json(json{{"request_rate", "inf"}}, "test").request_rate));
}

TEST(RunData, CsvFallbackWithQuotedFields) {
  const std::string csv =
      "index,sample_id,status,error,scheduled_s,send_s,first_token_s,end_s,prompt_tokens,output_tokens,ttft_ms,"
      "tpot_ms,e2el_ms\n"
      "0,5,ok,,0,0.001,0.02,0.5,30,12,20,43.6,500\n"
      "1,6,failed,\"HTTP 400: {\"\"field\"\": \"\"a,b\"\"}\",0.2,0.2,,0.21,30,,,,\n";
  const auto rows = results::parse_requests_csv(csv, "requests.csv");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].error, "HTTP 400: {\"field\": \"a,b\"}");
  EXPECT_FALSE(rows[1].ttft_ms.has_value());
  EXPECT_DOUBLE_EQ(*rows[0].tpot_ms, 43.6);
  EXPECT_THROW(results::parse_requests_csv("index,status\n1,ok,extra\n", "r.csv"), std::runtime_error);
}

TEST(RunData, ErrorsNameTheFileAndLine) {
  const rf::TempDir tmp("errors");
  const fs::path& dir = tmp.path;
  rf::write_run(dir / "run", 10, 5.0, 0.01, 2, "x");
  // A broken third line.
  std::string text = results::read_text_file(dir / "run" / "requests.jsonl");
  size_t p = 0;
  for (int i = 0; i < 2; ++i) p = text.find('\n', p) + 1;
  text.insert(p, "{\"index\": 2, \"status\": \"ok\", \"ttft_ms\": \"fast\"}\n");
  rf::write_text(dir / "run" / "requests.jsonl", text);
  try {
    results::load_run(dir / "run");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("requests.jsonl line 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ttft_ms"), std::string::npos) << e.what();
  }
  rf::write_text(dir / "run" / "summary.json", "{\"label\": ");
  try {
    results::load_run(dir / "run");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("summary.json"), std::string::npos) << e.what();
  }
  fs::create_directories(dir / "empty");
  try {
    reports::load_report_input({dir / "empty"});
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST(InFlight, TokensAndRequestsFromChunkTimes) {
  results::RunData run;
  run.label = "hand";
  run.has_chunks = true;
  results::RequestRow a, b;
  a.status = b.status = results::Status::kOk;
  a.send_s = 0.0, a.prompt_tokens = 10, a.chunk_times_s = {0.1, 0.2}, a.chunk_tokens = {1, 2}, a.end_s = 0.2;
  b.send_s = 0.15, b.prompt_tokens = 5, b.chunk_times_s = {0.3}, b.chunk_tokens = {1}, b.end_s = 0.4;
  run.requests = {a, b};
  const reports::svg::Series t = reports::tokens_in_flight(run);
  // 0: +10 → 10; 0.1: +1 → 11; 0.15: +5 → 16; 0.2: +2 -13 → 5; 0.3: +1 → 6; 0.4: -6 → 0.
  const std::vector<double> x = {0, 0, 0.1, 0.15, 0.2, 0.3, 0.4}, y = {0, 10, 11, 16, 5, 6, 0};
  EXPECT_EQ(t.x, x);
  EXPECT_EQ(t.y, y);
  const reports::svg::Series r = reports::requests_in_flight(run);
  const std::vector<double> rx = {0, 0, 0.15, 0.2, 0.4}, ry = {0, 1, 2, 1, 0};
  EXPECT_EQ(r.x, rx);
  EXPECT_EQ(r.y, ry);
  run.has_chunks = false;  // loaded from requests.csv: no chunk times, no tokens-in-flight series
  EXPECT_TRUE(reports::tokens_in_flight(run).x.empty());
}

TEST(HtmlReport, TwoRunsSideBySide) {
  const rf::TempDir tmp("two_runs");
  const fs::path& dir = tmp.path;
  const rf::SimulatedRun a = rf::write_run(dir / "a", 60, 4.0, 0.012, 3, "batch <16> & co");
  const rf::SimulatedRun b = rf::write_run(dir / "b", 60, 4.0, 0.020, 4, "batch 64");
  const reports::ReportInput in = reports::load_report_input({dir / "a", dir / "b"});
  const std::string html = reports::render_html_report(in);
  EXPECT_EQ(xml_check::check(html), "");
  expect_self_contained(html);
  EXPECT_NE(html.find("batch &lt;16&gt; &amp; co"), std::string::npos);
  EXPECT_EQ(html.find("batch <16>"), std::string::npos);
  // Five charts (3 CDFs, tokens and requests in flight), no sweep charts.
  EXPECT_EQ(count(html, "<svg "), 5u);
  EXPECT_EQ(html.find("against rate"), std::string::npos);
  // The summary table shows each run's own numbers.
  for (const rf::SimulatedRun* r : {&a, &b}) {
    EXPECT_NE(html.find("<td>" + reports::svg::format_number(r->summary.ttft.p99) + "</td>"), std::string::npos);
    EXPECT_NE(html.find("<td>" + reports::svg::format_number(r->summary.duration, 5) + "</td>"), std::string::npos);
  }
  EXPECT_NE(html.find("HTTP 503: 1"), std::string::npos);  // failures by reason
  // Each CDF series has one step per distinct value (59 ok requests) plus its start.
  const auto lat = reports::ok_latencies_ms(in.runs[0], "ttft");
  EXPECT_EQ(lat.size(), 59u);
}

TEST(HtmlReport, SweepWithAFailedCell) {
  const rf::TempDir tmp("sweep");
  const fs::path& dir = tmp.path;
  results::SweepData s;
  s.dir = dir;
  s.batch_sizes = {1, 16};
  s.qps = {0.5, 3};
  s.settings = {{"model", "stories260K.bin"}, {"seed", 0}};
  int seed = 10;
  for (int bs : s.batch_sizes) {
    for (double q : s.qps) {
      results::SweepCell c;
      c.batch_size = bs;
      c.qps = q;
      c.dir = "bs" + std::to_string(bs) + "_qps" + results::qps_label(q);
      if (bs == 16 && q == 3) {
        c.status = results::Status::kFailed;
        c.error = "engine: out of KV blocks <x>";
      } else {
        const rf::SimulatedRun r = rf::write_run(dir / c.dir, 20, q, bs == 1 ? 0.05 : 0.01, seed++, c.dir);
        c.summary = results::read_summary_json(dir / c.dir / "summary.json");
      }
      s.cells.push_back(c);
    }
  }
  results::write_sweep_files(s, dir);
  std::vector<std::string> warnings;
  const reports::ReportInput in = reports::load_report_input({dir}, &warnings);
  EXPECT_TRUE(warnings.empty());
  ASSERT_EQ(in.sweeps.size(), 1u);
  EXPECT_EQ(in.sweeps[0].cells.size(), 3u);
  const std::string html = reports::render_html_report(in);
  EXPECT_EQ(xml_check::check(html), "");
  expect_self_contained(html);
  EXPECT_EQ(count(html, "<svg "), 10u);  // 5 sweep charts + 5 run charts
  EXPECT_NE(html.find("failed: engine: out of KV blocks &lt;x&gt;"), std::string::npos);
  for (const results::SweepCell& c : s.cells) {
    if (c.status != results::Status::kOk) continue;
    const std::string cell = reports::svg::format_number(c.summary->duration) + " s / " +
                             reports::svg::format_number(c.summary->ttft.p99) + " ms";
    EXPECT_NE(html.find(cell), std::string::npos) << cell;
  }
  EXPECT_NE(html.find("bs16 \xC2\xB7 0.5 QPS"), std::string::npos);  // cell labels in the legends
}

TEST(HtmlReport, MissingCellDirectoryIsAWarningNotAFailure) {
  const rf::TempDir tmp("sweep_missing");
  const fs::path& dir = tmp.path;
  results::SweepData s;
  s.dir = dir;
  s.batch_sizes = {4};
  s.qps = {1};
  s.cells.push_back({4, 1, results::Status::kOk, "", "bs4_qps1", results::summary_from_json(json{{"duration", 3.5}}, "test")});
  results::write_sweep_files(s, dir);
  std::vector<std::string> warnings;
  const reports::ReportInput in = reports::load_report_input({dir}, &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("bs4_qps1"), std::string::npos);
  const std::string html = reports::render_html_report(in);
  EXPECT_EQ(xml_check::check(html), "");
  EXPECT_NE(html.find("3.5 s / - ms"), std::string::npos);  // the table still shows what sweep.json knows
}
