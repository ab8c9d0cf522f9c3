// test-deps: results
// requests.jsonl (docs/formats.md): one object per request with requests.csv's keys plus itl_ms, chunk_times_s
// and chunk_tokens; nulls for values that do not exist; exact round trips; errors that name the file and line.
#include "results/requests_jsonl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "results/files.h"
#include "results/requests_csv.h"
#include "results_test_data.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using results::parse_requests_jsonl;
using results::request_from_json;
using results::request_to_json;
using results::RequestRow;
using results::Status;
using results_test::error_of;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string to_jsonl(const std::vector<RequestRow>& rows) {
  std::ostringstream o;
  results::write_requests_jsonl(o, rows);
  return o.str();
}

void expect_same_chunks(const RequestRow& e, const RequestRow& a) {
  EXPECT_EQ(e.itl_ms, a.itl_ms) << "row " << e.index;
  EXPECT_EQ(e.chunk_times_s, a.chunk_times_s) << "row " << e.index;
  EXPECT_EQ(e.chunk_tokens, a.chunk_tokens) << "row " << e.index;
}

// A valid line's object, to break one field of.
json valid_object() { return request_to_json(results_test::sample_rows()[0]); }

}  // namespace

TEST(RequestsJsonl, KeysAreTheCsvColumnsPlusTheChunks) {
  const json j = valid_object();
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  const std::string header = results::requests_csv_header();
  size_t pos = 0;
  std::vector<std::string> expected = results::next_csv_record(header, &pos);
  expected.insert(expected.end(), {"itl_ms", "chunk_times_s", "chunk_tokens"});
  std::sort(keys.begin(), keys.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys, expected);
}

TEST(RequestsJsonl, ValuesOfACompletedRequest) {
  const json j = valid_object();
  EXPECT_EQ(j["index"], 0);
  EXPECT_EQ(j["sample_id"], 17);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["error"], "");
  EXPECT_EQ(j["scheduled_s"], 0.25);
  EXPECT_EQ(j["send_s"], 0.250125);
  EXPECT_EQ(j["first_token_s"], 0.375);
  EXPECT_EQ(j["end_s"], 1.5);
  EXPECT_EQ(j["prompt_tokens"], 42);
  EXPECT_EQ(j["output_tokens"], 6);
  EXPECT_EQ(j["ttft_ms"], 125.0);
  EXPECT_EQ(j["tpot_ms"], 225.0);
  EXPECT_EQ(j["e2el_ms"], 1250.0);
  EXPECT_EQ(j["chunk_times_s"], json({0.375, 0.875, 1.5}));
  EXPECT_EQ(j["chunk_tokens"], json({1, 2, 3}));
  EXPECT_EQ(j["itl_ms"].size(), 5u);
}

TEST(RequestsJsonl, EmptyOptionalsAreNull) {
  const json j = request_to_json(results_test::sample_rows()[2]);  // rejected: nothing but its schedule
  EXPECT_EQ(j["status"], "rejected");
  for (const char* key : {"send_s", "first_token_s", "end_s", "prompt_tokens", "output_tokens", "ttft_ms", "tpot_ms", "e2el_ms"})
    EXPECT_TRUE(j[key].is_null()) << key;
  EXPECT_EQ(j["itl_ms"], json::array());
  EXPECT_EQ(j["chunk_times_s"], json::array());
  EXPECT_EQ(j["chunk_tokens"], json::array());
}

TEST(RequestsJsonl, OneLinePerRequestEvenWithLineBreaksInErrors) {
  const std::vector<RequestRow> rows = results_test::sample_rows();
  const std::string text = to_jsonl(rows);
  std::istringstream in(text);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) EXPECT_NO_THROW(json::parse(line)) << line;
  EXPECT_EQ(lines, static_cast<int>(rows.size()));
  EXPECT_EQ(text.back(), '\n');
}

TEST(RequestsJsonl, RoundTripIsExact) {
  const std::vector<RequestRow> rows = results_test::sample_rows();
  const std::vector<RequestRow> back = parse_requests_jsonl(to_jsonl(rows), "requests.jsonl");
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    results_test::expect_same_row(rows[i], back[i], 0);
    expect_same_chunks(rows[i], back[i]);
  }
}

TEST(RequestsJsonl, RoundTripKeepsFullPrecision) {
  RequestRow r;
  r.index = 123456789;
  r.sample_id = -42;
  r.scheduled_s = 1.0 / 3.0;
  r.send_s = 0.1 + 0.2;
  r.ttft_ms = 1e-9;
  r.e2el_ms = 123456.78901234567;
  r.chunk_times_s = {1.0 / 7.0, 2.0 / 7.0};
  r.chunk_tokens = {1, 1000};
  r.itl_ms = {0.1, 1e300};
  const std::vector<RequestRow> back = parse_requests_jsonl(to_jsonl({r}), "r.jsonl");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].index, 123456789u);
  EXPECT_EQ(back[0].sample_id, -42);
  EXPECT_EQ(back[0].scheduled_s, 1.0 / 3.0);
  EXPECT_EQ(back[0].send_s, 0.1 + 0.2);
  EXPECT_EQ(back[0].ttft_ms, 1e-9);
  EXPECT_EQ(back[0].e2el_ms, 123456.78901234567);
  expect_same_chunks(r, back[0]);
}

TEST(RequestsJsonl, InfiniteLatencyIsTheStringInf) {
  RequestRow r = results_test::sample_rows()[1];
  r.e2el_ms = results_test::kInf;
  const json j = request_to_json(r);
  EXPECT_EQ(j["e2el_ms"], "inf");
  const std::vector<RequestRow> back = parse_requests_jsonl(j.dump() + "\n", "r.jsonl");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].e2el_ms, results_test::kInf);
}

TEST(RequestsJsonl, RoundTripThroughAFile) {
  const fs::path dir = testing_paths::fresh_test_dir("requests_jsonl_");
  const fs::path path = dir / "requests.jsonl";
  const std::vector<RequestRow> rows = results_test::sample_rows();
  results::write_requests_jsonl(path, rows);
  EXPECT_FALSE(fs::exists(dir / "requests.jsonl.tmp"));
  const std::vector<RequestRow> back = parse_requests_jsonl(results::read_text_file(path), path.string());
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    results_test::expect_same_row(rows[i], back[i], 0);
    expect_same_chunks(rows[i], back[i]);
  }
  fs::remove_all(dir);
}

TEST(RequestsJsonl, AbsentOptionalKeysReadAsEmpty) {
  const RequestRow r = request_from_json(json{{"index", 4}, {"status", "failed"}}, "t");
  EXPECT_EQ(r.index, 4u);
  EXPECT_EQ(r.status, Status::kFailed);
  EXPECT_EQ(r.sample_id, 0);
  EXPECT_EQ(r.error, "");
  EXPECT_FALSE(r.send_s.has_value());
  EXPECT_FALSE(r.prompt_tokens.has_value());
  EXPECT_FALSE(r.ttft_ms.has_value());
  EXPECT_TRUE(r.chunk_times_s.empty());
  EXPECT_TRUE(r.chunk_tokens.empty());
  EXPECT_TRUE(r.itl_ms.empty());
}

TEST(RequestsJsonl, BlankLinesAreSkippedButCounted) {
  const std::vector<RequestRow> rows = results_test::sample_rows();
  std::string text = request_to_json(rows[0]).dump() + "\n\n   \n" + request_to_json(rows[1]).dump() + "\r\n";
  const std::vector<RequestRow> back = parse_requests_jsonl(text, "r.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].index, 1u);
  text += "{\"index\": 9}\n";  // line 5
  EXPECT_THAT(error_of([&] { parse_requests_jsonl(text, "r.jsonl"); }), StartsWith("r.jsonl line 5: "));
}

TEST(RequestsJsonl, InvalidJsonNamesTheFileAndLine) {
  const std::string text = valid_object().dump() + "\n{\"index\": 1, \"status\": \n";
  const std::string e = error_of([&] { parse_requests_jsonl(text, "runs/b/requests.jsonl"); });
  EXPECT_THAT(e, StartsWith("runs/b/requests.jsonl line 2: "));
  EXPECT_THAT(e, HasSubstr("invalid JSON"));
}

TEST(RequestsJsonl, NotAnObjectNamesTheLine) {
  const std::string e = error_of([&] { parse_requests_jsonl("[1, 2]\n", "r.jsonl"); });
  EXPECT_THAT(e, StartsWith("r.jsonl line 1: "));
  EXPECT_THAT(e, HasSubstr("not a JSON object"));
}

TEST(RequestsJsonl, MissingIndexNamesTheFileAndLine) {
  json j = valid_object();
  j.erase("index");
  const std::string text = valid_object().dump() + "\n" + j.dump() + "\n";
  const std::string e = error_of([&] { parse_requests_jsonl(text, "r.jsonl"); });
  EXPECT_THAT(e, StartsWith("r.jsonl line 2: "));
  EXPECT_THAT(e, HasSubstr("missing field \"index\""));
  j["index"] = nullptr;
  EXPECT_THAT(error_of([&] { parse_requests_jsonl(j.dump(), "r.jsonl"); }), HasSubstr("missing field \"index\""));
}

TEST(RequestsJsonl, MissingStatusIsAnError) {
  json j = valid_object();
  j.erase("status");
  const std::string e = error_of([&] { parse_requests_jsonl(j.dump(), "r.jsonl"); });
  EXPECT_THAT(e, StartsWith("r.jsonl line 1: "));
  EXPECT_THAT(e, HasSubstr("missing field \"status\""));
}

TEST(RequestsJsonl, BadStatusNamesItAndTheChoices) {
  json j = valid_object();
  j["status"] = "weird";
  const std::string e = error_of([&] { parse_requests_jsonl(j.dump(), "r.jsonl"); });
  EXPECT_THAT(e, StartsWith("r.jsonl line 1: "));
  EXPECT_THAT(e, HasSubstr("\"weird\""));
  EXPECT_THAT(e, HasSubstr("ok, rejected or failed"));
}

TEST(RequestsJsonl, EveryStatusNameReadsBack) {
  for (Status st : {Status::kOk, Status::kRejected, Status::kFailed}) {
    RequestRow r;
    r.status = st;
    EXPECT_EQ(request_from_json(request_to_json(r), "t").status, st);
  }
}

TEST(RequestsJsonl, WrongTypeNamesTheFieldAndLine) {
  struct Case {
    const char* key;
    json value;
    const char* says;
  };
  const Case cases[] = {
      {"ttft_ms", "fast", "field \"ttft_ms\" is not a number"},
      {"scheduled_s", json::array(), "field \"scheduled_s\" is not a number"},
      {"prompt_tokens", true, "field \"prompt_tokens\" is not a number"},
      {"index", "zero", "field \"index\" is not a number"},
      {"status", 1, "field \"status\" is not a string"},
      {"error", 5, "field \"error\" is not a string"},
      {"itl_ms", "x", "field \"itl_ms\" is not an array"},
      {"chunk_times_s", json::array({0.1, "b"}), "field \"chunk_times_s\" holds a non-number"},
      {"chunk_tokens", json::object(), "field \"chunk_tokens\" is not an array"},
  };
  for (const Case& c : cases) {
    json j = valid_object();
    j[c.key] = c.value;
    const std::string text = valid_object().dump() + "\n" + valid_object().dump() + "\n" + j.dump() + "\n";
    const std::string e = error_of([&] { parse_requests_jsonl(text, "r.jsonl"); });
    EXPECT_THAT(e, StartsWith("r.jsonl line 3: ")) << c.key;
    EXPECT_THAT(e, HasSubstr(c.says)) << c.key;
  }
}

TEST(RequestsJsonl, ChunkLengthMismatchIsAnError) {
  json j = valid_object();
  j["chunk_tokens"] = {1, 2};  // three chunk times
  const std::string e = error_of([&] { parse_requests_jsonl(j.dump() + "\n", "r.jsonl"); });
  EXPECT_THAT(e, StartsWith("r.jsonl line 1: "));
  EXPECT_THAT(e, HasSubstr("chunk_tokens"));
  EXPECT_THAT(e, HasSubstr("chunk_times_s"));
  j["chunk_tokens"] = {1, 2, 3, 4};
  EXPECT_THAT(error_of([&] { request_from_json(j, "w"); }), StartsWith("w: "));
  j["chunk_tokens"] = {1, 2, 3};
  EXPECT_NO_THROW(request_from_json(j, "w"));
}

TEST(RequestsJsonl, WriteIntoAMissingDirectoryNamesTheFile) {
  const fs::path dir = testing_paths::fresh_test_dir("requests_jsonl_");
  const fs::path path = dir / "no" / "requests.jsonl";
  EXPECT_THAT(error_of([&] { results::write_requests_jsonl(path, results_test::sample_rows()); }),
              HasSubstr((dir / "no").string()));
  fs::remove_all(dir);
}
