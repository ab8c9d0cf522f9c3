// test-deps: results
// results/json_text.h: the text a requests.jsonl line is written with must parse, as JSON, to what the DOM
// codec gives (nlohmann as the reference), for any string a server may put in an error and any double.
#include "results/json_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "results/requests_csv.h"
#include "results/requests_jsonl.h"
#include "results_test_data.h"

namespace {

using nlohmann::json;

std::string as_json(std::string_view s) {
  std::string out;
  results::json_text::append_string(out, s);
  return out;
}

}  // namespace

TEST(JsonText, StringsEscapeWhatJsonRequires) {
  EXPECT_EQ(as_json(""), "\"\"");
  EXPECT_EQ(as_json("plain text"), "\"plain text\"");
  EXPECT_EQ(as_json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(as_json("l1\nl2\r\t\b\f"), "\"l1\\nl2\\r\\t\\b\\f\"");
  EXPECT_EQ(as_json(std::string("\x01\x1f\0", 3)), "\"\\u0001\\u001f\\u0000\"");
  EXPECT_EQ(as_json("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST(JsonText, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate, past U+10FFFF, 0xFF.
  const std::string bad = "a\x80" "b\xC3" "c\xC0\xAF" "d\xED\xA0\x80" "e\xF4\x90\x80\x80" "f\xFF";
  const std::string text = as_json(bad);
  const json parsed = json::parse(text);  // nlohmann rejects invalid UTF-8: it must parse
  const std::string s = parsed.get<std::string>();
  EXPECT_EQ(s.find('\x80'), std::string::npos);
  EXPECT_NE(s.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(s.substr(0, 1), "a");
  EXPECT_EQ(s.back(), '\xBD');
}

TEST(JsonText, RandomStringsReadBackAsTheirValidUtf8) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(0, 40), pick(0, 9), ascii(0, 127);
  const std::string pieces[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\"", "\\", "\n", "\x07"};
  for (int rep = 0; rep < 2000; ++rep) {
    std::string s;
    for (int i = len(rng); i > 0; --i) {
      const int p = pick(rng);
      if (p < 7) s += pieces[p];
      else s += static_cast<char>(ascii(rng));
    }
    // Valid UTF-8 in, the same text out: exactly what nlohmann's own dump would make of it.
    ASSERT_EQ(json::parse(as_json(s)).get<std::string>(), s);
    ASSERT_EQ(json::parse(as_json(s)), json::parse(json(s).dump()));
  }
}

TEST(JsonText, DoublesReadBackExactlyAndNonFiniteAsJsonFieldsWritesThem) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int i = 0; i < 10000; ++i) {
    const double v = u(rng) * std::pow(10.0, static_cast<int>(rng() % 40) - 20);
    std::string out;
    results::json_text::append_double(out, v);
    ASSERT_EQ(json::parse(out).get<double>(), v) << out;
  }
  std::string out;
  results::json_text::append_double(out, std::numeric_limits<double>::quiet_NaN());
  out += ' ';
  results::json_text::append_double(out, std::numeric_limits<double>::infinity());
  out += ' ';
  results::json_text::append_double(out, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(out, "null \"inf\" \"-inf\"");
}

TEST(JsonText, ARequestLineIsTheObjectRequestToJsonGives) {
  std::vector<results::RequestRow> rows = results_test::sample_rows();
  results::RequestRow odd = rows[0];
  odd.error = "server said: \"no\"\n\x01 caf\xC3\xA9";
  odd.ttft_ms = std::numeric_limits<double>::infinity();
  odd.tpot_ms = std::numeric_limits<double>::quiet_NaN();
  odd.session_id = 12;
  odd.turn = 3;
  odd.itl_ms = {0.1, 1e-9, 12345.678901234};
  rows.push_back(odd);
  for (const auto& r : rows) {
    std::string line;
    results::append_request_jsonl(line, r);
    ASSERT_EQ(line.back(), '\n');
    ASSERT_EQ(line.find('\n'), line.size() - 1) << "one line per request";
    EXPECT_EQ(json::parse(line), results::request_to_json(r)) << line;
  }
}

TEST(JsonText, CsvCellsAreWhatPrintfSixDecimalsGives) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int i = 0; i < 5000; ++i) {
    results::RequestRow r;
    r.index = rng() % 100000;
    r.scheduled_s = u(rng) * 3000;
    r.send_s = u(rng) * 3000;
    r.ttft_ms = u(rng) * std::pow(10.0, static_cast<int>(rng() % 8) - 3);
    r.prompt_tokens = static_cast<int>(rng() % 5000);
    char expected[512];
    std::snprintf(expected, sizeof expected, "%llu,0,ok,,%.6f,%.6f,,,%d,,%.6f,,\n",
                  static_cast<unsigned long long>(r.index), r.scheduled_s, *r.send_s, *r.prompt_tokens, *r.ttft_ms);
    ASSERT_EQ(results::requests_csv_row(r), expected);
  }
}
