// test-deps: results
// requests.csv (docs/formats.md): the exact header, RFC 4180 quoting, empty cells for values that do not
// exist, seconds and milliseconds to 6 decimals, write -> parse round trips (errors holding commas, quotes and
// line breaks), and parse errors that name the file and the record.
#include "results/requests_csv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "results/files.h"
#include "results_test_data.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using results::csv_field;
using results::next_csv_record;
using results::parse_requests_csv;
using results::RequestRow;
using results::Status;
using results_test::error_of;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kHeader =
    "index,sample_id,status,error,scheduled_s,send_s,first_token_s,end_s,prompt_tokens,output_tokens,ttft_ms,"
    "tpot_ms,e2el_ms";

std::string to_csv(const std::vector<RequestRow>& rows) {
  std::ostringstream o;
  results::write_requests_csv(o, rows);
  return o.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST(RequestsCsv, HeaderIsExact) {
  EXPECT_STREQ(results::requests_csv_header(), kHeader);
  const std::string text = to_csv({});
  EXPECT_EQ(text, std::string(kHeader) + "\n");
}

TEST(CsvField, PlainTextIsUnquoted) {
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("ok"), "ok");
  EXPECT_EQ(csv_field("HTTP 503: busy"), "HTTP 503: busy");
  EXPECT_EQ(csv_field("semi;colon 'single'"), "semi;colon 'single'");
}

TEST(CsvField, QuotesACommaAQuoteAndALineBreak) {
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("\""), "\"\"\"\"");
  EXPECT_EQ(csv_field("line1\nline2"), "\"line1\nline2\"");
  EXPECT_EQ(csv_field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(csv_field("x,\"y\"\r\n"), "\"x,\"\"y\"\"\r\n\"");
}

TEST(NextCsvRecord, SplitsFieldsAndMovesPastTheLine) {
  const std::string text = "a,b,,c\nd,e\n";
  size_t pos = 0;
  EXPECT_THAT(next_csv_record(text, &pos), ElementsAre("a", "b", "", "c"));
  EXPECT_EQ(pos, 7u);
  EXPECT_THAT(next_csv_record(text, &pos), ElementsAre("d", "e"));
  EXPECT_EQ(pos, text.size());
}

TEST(NextCsvRecord, QuotedFieldsHoldCommasQuotesAndNewlines) {
  const std::string text = "1,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",end\nnext\n";
  size_t pos = 0;
  EXPECT_THAT(next_csv_record(text, &pos), ElementsAre("1", "a,b", "say \"hi\"", "two\nlines", "end"));
  EXPECT_THAT(next_csv_record(text, &pos), ElementsAre("next"));
  EXPECT_EQ(pos, text.size());
}

TEST(NextCsvRecord, CrLfLineEndsAndALastLineWithoutNewline) {
  const std::string text = "a,b\r\nc,\"d\r\ne\"\r\nlast,x";
  size_t pos = 0;
  EXPECT_THAT(next_csv_record(text, &pos), ElementsAre("a", "b"));
  EXPECT_THAT(next_csv_record(text, &pos), ElementsAre("c", "d\r\ne"));
  EXPECT_THAT(next_csv_record(text, &pos), ElementsAre("last", "x"));
  EXPECT_EQ(pos, text.size());
}

TEST(NextCsvRecord, FieldQuotingRoundTrips) {
  const std::vector<std::string> fields = {"", "plain", "a,b", "\"", "q\"q", "x\ny", "\r\n", ",,,", "\"\"\"", "end"};
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    line += csv_field(fields[i]);
  }
  line += "\n";
  size_t pos = 0;
  EXPECT_EQ(next_csv_record(line, &pos), fields);
  EXPECT_EQ(pos, line.size());
}

TEST(RequestsCsv, RowsAsWritten) {
  const std::vector<std::string> lines = lines_of(to_csv({results_test::sample_rows()[0], results_test::sample_rows()[2]}));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], kHeader);
  EXPECT_EQ(lines[1], "0,17,ok,,0.250000,0.250125,0.375000,1.500000,42,6,125.000000,225.000000,1250.000000");
  // A rejected request: no times but its schedule, empty cells for the rest.
  EXPECT_EQ(lines[2], "2,-1,rejected,queue full,0.750000,,,,,,,,");
}

TEST(RequestsCsv, EmptyOptionalsAreEmptyCells) {
  RequestRow r;
  r.index = 9;
  r.sample_id = 4;
  r.status = Status::kFailed;
  r.scheduled_s = 2;
  const std::vector<std::string> lines = lines_of(to_csv({r}));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "9,4,failed,,2.000000,,,,,,,,");
}

TEST(RequestsCsv, PrecisionIsSixDecimals) {
  RequestRow r;
  r.index = 1;
  r.scheduled_s = 1.23456789;
  r.send_s = 1234.5678901234;
  r.first_token_s = 0.0000004;  // below a microsecond: 0
  r.end_s = 0.0000006;          // rounds up to a microsecond
  r.prompt_tokens = 123456;
  r.output_tokens = 0;
  r.ttft_ms = 12.3456789;
  r.tpot_ms = 0.1234564;
  r.e2el_ms = 98765.4321;
  const std::vector<std::string> lines = lines_of(to_csv({r}));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "1,0,ok,,1.234568,1234.567890,0.000000,0.000001,123456,0,12.345679,0.123456,98765.432100");
}

TEST(RequestsCsv, ErrorsThatNeedQuotingAreQuoted) {
  const std::string text = to_csv({results_test::sample_rows()[1]});
  EXPECT_THAT(text, HasSubstr(",failed,\"HTTP 503: {\"\"error\"\": \"\"busy, try later\"\"}\nsecond line\",0.500000,"));
}

TEST(RequestsCsv, RoundTripThroughText) {
  const std::vector<RequestRow> rows = results_test::sample_rows();
  const std::vector<RequestRow> back = parse_requests_csv(to_csv(rows), "requests.csv");
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    results_test::expect_same_row(rows[i], back[i], 5e-7);
    EXPECT_TRUE(back[i].chunk_times_s.empty());
    EXPECT_TRUE(back[i].chunk_tokens.empty());
    EXPECT_TRUE(back[i].itl_ms.empty());
  }
}

TEST(RequestsCsv, RoundTripThroughAFile) {
  const fs::path dir = testing_paths::fresh_test_dir("requests_csv_");
  const fs::path path = dir / "requests.csv";
  const std::vector<RequestRow> rows = results_test::sample_rows();
  results::write_requests_csv(path, rows);
  EXPECT_FALSE(fs::exists(dir / "requests.csv.tmp"));
  const std::vector<RequestRow> back = parse_requests_csv(results::read_text_file(path), path.string());
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) results_test::expect_same_row(rows[i], back[i], 5e-7);
  fs::remove_all(dir);
}

TEST(RequestsCsv, ManyRowsWithNastyErrorsRoundTrip) {
  std::vector<RequestRow> rows;
  const std::vector<std::string> errors = {",", "\"", "\n", "\r\n", "a,\"b\"\nc", "\"\"", "trailing,", ",leading",
                                           "{\"k\": [1, 2]}", "x\n\ny", ""};
  for (size_t i = 0; i < 50; ++i) {
    RequestRow r;
    r.index = i;
    r.sample_id = static_cast<int64_t>(i * 3);
    r.status = i % 3 == 0 ? Status::kOk : i % 3 == 1 ? Status::kFailed : Status::kRejected;
    r.error = errors[i % errors.size()];
    r.scheduled_s = i * 0.125;
    if (i % 2) r.send_s = i * 0.125 + 0.001;
    if (i % 4 == 0) r.ttft_ms = i * 1.5;
    rows.push_back(r);
  }
  const std::vector<RequestRow> back = parse_requests_csv(to_csv(rows), "requests.csv");
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) results_test::expect_same_row(rows[i], back[i], 5e-7);
}

TEST(RequestsCsv, ColumnsAreFoundByTheirNames) {
  const std::string text =
      "status,index,e2el_ms,sample_id,scheduled_s,error,extra\n"
      "ok,5,100.5,7,1.25,,42\n"
      "failed,6,,8,1.5,\"timeout, 30 s\",\n";
  const std::vector<RequestRow> rows = parse_requests_csv(text, "reordered.csv");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].index, 5u);
  EXPECT_EQ(rows[0].sample_id, 7);
  EXPECT_EQ(rows[0].status, Status::kOk);
  EXPECT_EQ(rows[0].e2el_ms, 100.5);
  EXPECT_EQ(rows[0].scheduled_s, 1.25);
  EXPECT_FALSE(rows[0].send_s.has_value());
  EXPECT_EQ(rows[1].status, Status::kFailed);
  EXPECT_EQ(rows[1].error, "timeout, 30 s");
  EXPECT_FALSE(rows[1].e2el_ms.has_value());
}

TEST(RequestsCsv, BlankLinesAndCrLfAreAccepted) {
  const std::string text = std::string(kHeader) + "\r\n" + "0,1,ok,,0.5,,,,,,,,\r\n\r\n" + "1,2,failed,x,0.75,,,,,,,,\r\n";
  const std::vector<RequestRow> rows = parse_requests_csv(text, "crlf.csv");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].index, 0u);
  EXPECT_EQ(rows[1].index, 1u);
  EXPECT_EQ(rows[1].error, "x");
}

TEST(RequestsCsv, OnlyAHeaderIsNoRows) {
  EXPECT_TRUE(parse_requests_csv(std::string(kHeader) + "\n", "empty.csv").empty());
  EXPECT_TRUE(parse_requests_csv(kHeader, "empty.csv").empty());
}

TEST(RequestsCsv, WrongNumberOfFieldsNamesTheFileAndRecord) {
  const std::string text = std::string(kHeader) + "\n0,1,ok,,0.5,,,,,,,,\n1,2,ok\n";
  const std::string e = error_of([&] { parse_requests_csv(text, "runs/a/requests.csv"); });
  EXPECT_THAT(e, StartsWith("runs/a/requests.csv record 3: "));
  EXPECT_THAT(e, HasSubstr("3 fields"));
  EXPECT_THAT(e, HasSubstr("13"));
  const std::string more = std::string(kHeader) + "\n0,1,ok,,0.5,,,,,,,,,\n";
  EXPECT_THAT(error_of([&] { parse_requests_csv(more, "r.csv"); }), StartsWith("r.csv record 2: 14 fields"));
}

TEST(RequestsCsv, RecordNumbersCountRecordsNotLines) {
  // The first row's error spans three lines; the bad row is still record 3.
  const std::string text = std::string(kHeader) + "\n0,1,failed,\"a\nb\nc\",0.5,,,,,,,,\n1,2,ok,,abc,,,,,,,,\n";
  const std::string e = error_of([&] { parse_requests_csv(text, "r.csv"); });
  EXPECT_THAT(e, StartsWith("r.csv record 3: "));
}

TEST(RequestsCsv, NonNumberFieldNamesTheFieldAndRecord) {
  for (const char* bad : {"abc", "1.5s", "1,5", "0x", " "}) {
    const std::string row = std::string("0,1,ok,,0.5,,,,") + csv_field(bad) + ",,,,\n";
    const std::string e = error_of([&] { parse_requests_csv(std::string(kHeader) + "\n" + row, "r.csv"); });
    EXPECT_THAT(e, StartsWith("r.csv record 2: ")) << bad;
    EXPECT_THAT(e, HasSubstr("field \"prompt_tokens\" is not a number")) << bad;
  }
}

TEST(RequestsCsv, BadStatusNamesTheStatusAndTheChoices) {
  const std::string text = std::string(kHeader) + "\n0,1,weird,,0.5,,,,,,,,\n";
  const std::string e = error_of([&] { parse_requests_csv(text, "r.csv"); });
  EXPECT_THAT(e, StartsWith("r.csv record 2: "));
  EXPECT_THAT(e, HasSubstr("\"weird\""));
  EXPECT_THAT(e, HasSubstr("ok, rejected or failed"));
}

TEST(RequestsCsv, StatusNamesAreExact) {
  for (const char* bad : {"OK", "Failed", " ok", "ok "}) {
    const std::string text = std::string(kHeader) + "\n0,1," + bad + ",,0.5,,,,,,,,\n";
    EXPECT_THAT(error_of([&] { parse_requests_csv(text, "r.csv"); }), StartsWith("r.csv record 2: ")) << bad;
  }
}

TEST(RequestsCsv, MissingStatusIsAnError) {
  const std::string text = std::string(kHeader) + "\n0,1,,,0.5,,,,,,,,\n";
  const std::string e = error_of([&] { parse_requests_csv(text, "r.csv"); });
  EXPECT_THAT(e, StartsWith("r.csv record 2: "));
  EXPECT_THAT(e, HasSubstr("status"));
}

TEST(RequestsCsv, MissingIndexNamesTheFileAndRecord) {
  const std::string text = std::string(kHeader) + "\n0,1,ok,,0.5,,,,,,,,\n,2,ok,,0.5,,,,,,,,\n";
  const std::string e = error_of([&] { parse_requests_csv(text, "r.csv"); });
  EXPECT_THAT(e, StartsWith("r.csv record 3: "));
  EXPECT_THAT(e, HasSubstr("\"index\""));
}

TEST(RequestsCsv, WriteIntoAMissingDirectoryNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("requests_csv_");
  const fs::path path = dir / "no" / "requests.csv";
  EXPECT_THAT(error_of([&] { results::write_requests_csv(path, results_test::sample_rows()); }),
              HasSubstr((dir / "no").string()));
  fs::remove_all(dir);
}
