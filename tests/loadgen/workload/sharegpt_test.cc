// test-deps: loadgen_lib
// ShareGPT datasets: recognised from their records (or forced), read as vLLM reads them (first human turn the
// prompt, the next gpt turn the reference answer), every exchange kept for --multi-turn; and bad records,
// each named by its position, its own id and the turn at fault.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "loadgen/workload/dataset.h"
#include "loadgen/workload/sharegpt.h"
#include "support/test_paths.h"

namespace loadgen {
namespace {

using nlohmann::json;

std::string conv(const std::string& id, const json& turns) {
  return json({{"id", id}, {"conversations", turns}}).dump();
}

/// The message of the DatasetError parsing `text` throws (under on_bad = fail); "" when it does not throw.
std::string error_of(const std::string& text, DatasetOptions o = {}) {
  try {
    parse_dataset(text, "chats.json", o);
  } catch (const DatasetError& e) {
    return e.what();
  }
  return "";
}

TEST(ShareGptTest, BuiltInSampleIsRecognisedAndKeepsEveryExchange) {
  const Dataset ds = load_dataset(testing_paths::source("datasets/sample_sharegpt.json"));
  EXPECT_EQ(ds.format, "sharegpt");
  ASSERT_GE(ds.samples.size(), 10u);
  size_t multi = 0;
  for (const Sample& s : ds.samples) {
    ASSERT_TRUE(s.is_conversation()) << s.id;
    for (const Turn& t : s.turns) {
      EXPECT_FALSE(t.user.empty()) << s.id;
      EXPECT_FALSE(t.reference.empty()) << s.id;
    }
    multi += s.turns.size() > 1;
  }
  EXPECT_GE(multi, 5u);
  EXPECT_EQ(ds.samples[0].system, "You are a concise assistant for a small bakery.");
  EXPECT_EQ(ds.samples[0].turns[0].user, "How long should I proof a sourdough loaf at room temperature?");
  EXPECT_EQ(ds.samples[0].turns.size(), 2u);
}

TEST(ShareGptTest, FirstHumanThenNextGptAsVllmReadsIt) {
  const std::string text = "[" +
      conv("a", {{{"from", "gpt"}, {"value", "greeting before any question"}},
                 {{"from", "human"}, {"value", "Q1"}},
                 {{"from", "gpt"}, {"value", "A1"}},
                 {{"from", "human"}, {"value", "Q2"}},
                 {{"from", "gpt"}, {"value", "A2"}},
                 {{"from", "human"}, {"value", "a last question, never answered"}}}) + "]";
  const Dataset ds = parse_dataset(text, "chats.json");
  ASSERT_EQ(ds.samples.size(), 1u);
  const Sample& s = ds.samples[0];
  ASSERT_EQ(s.turns.size(), 2u);  // the unanswered question has no reference length
  EXPECT_EQ(s.turns[0].user, "Q1");
  EXPECT_EQ(s.turns[0].reference, "A1");
  EXPECT_EQ(s.turns[1].user, "Q2");
  EXPECT_EQ(s.turns[1].reference, "A2");
}

TEST(ShareGptTest, AlternationBreakEndsTheTurns) {
  const std::string text = "[" +
      conv("b", {{{"from", "user"}, {"value", "Q1"}},
                 {{"from", "assistant"}, {"value", "A1"}},
                 {{"from", "gpt"}, {"value", "A1 again"}},
                 {{"from", "human"}, {"value", "Q2"}},
                 {{"from", "gpt"}, {"value", "A2"}}}) + "]";
  const Dataset ds = parse_dataset(text, "chats.json");
  ASSERT_EQ(ds.samples[0].turns.size(), 1u);
  EXPECT_EQ(ds.samples[0].turns[0].reference, "A1");
}

TEST(ShareGptTest, JsonLinesOfConversations) {
  const std::string text = conv("x", {{{"from", "human"}, {"value", "hi"}}, {{"from", "gpt"}, {"value", "hello"}}}) +
                           "\n\n" +
                           conv("y", {{{"from", "human"}, {"value", "bye"}}, {{"from", "gpt"}, {"value", "ciao"}}}) + "\n";
  const Dataset ds = parse_dataset(text, "chats.jsonl");
  EXPECT_EQ(ds.format, "sharegpt-jsonl");
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[1].id, 2);  // the line's index, as for Alpaca JSON lines
  EXPECT_EQ(ds.samples[1].turns[0].user, "bye");
}

TEST(ShareGptTest, FormatCanBeForced) {
  const std::string alpaca = R"([{"instruction": "Say hi", "input": "", "output": "hi"}])";
  DatasetOptions o;
  o.format = DatasetFormat::kShareGpt;
  const std::string msg = error_of(alpaca, o);
  EXPECT_NE(msg.find("chats.json: record 0: missing \"conversations\""), std::string::npos) << msg;
  o.format = DatasetFormat::kAlpaca;
  const std::string chats = "[" + conv("c", {{{"from", "human"}, {"value", "Q"}}, {{"from", "gpt"}, {"value", "A"}}}) + "]";
  EXPECT_NE(error_of(chats, o).find("record 0: missing \"instruction\""), std::string::npos) << error_of(chats, o);
  EXPECT_EQ(parse_dataset(alpaca, "a.json").format, "alpaca-json");  // auto: recognised from the record
}

// Must show 5 (ShareGPT): each bad record is a clear error naming the file, the record, its id and the turn.
TEST(ShareGptTest, BadRecordsNameRecordIdAndTurn) {
  const json good = {{{"from", "human"}, {"value", "Q"}}, {{"from", "gpt"}, {"value", "A"}}};
  struct Case { std::string record, expect; };
  const Case cases[] = {
      {conv("no-human", {{{"from", "gpt"}, {"value", "only answers"}}}),
       "chats.json: record 1: (id \"no-human\") no \"human\" turn in \"conversations\""},
      {conv("empty", {{{"from", "human"}, {"value", "Q"}}, {{"from", "gpt"}, {"value", "  "}}}),
       "record 1: (id \"empty\") conversations[1] (gpt): \"value\" is empty"},
      {json({{"id", "not-list"}, {"conversations", {{"from", "human"}}}}).dump(),
       "record 1: (id \"not-list\") \"conversations\" is not a list"},
      {conv("who", {{{"from", "narrator"}, {"value", "Once"}}}),
       "record 1: (id \"who\") conversations[0]: unknown \"from\" 'narrator'"},
      {conv("unanswered", {{{"from", "human"}, {"value", "Q"}}}),
       "record 1: (id \"unanswered\") no \"gpt\" turn after the first \"human\" turn"},
      {conv("no-value", {{{"from", "human"}}}), "record 1: (id \"no-value\") conversations[0]: missing a string \"value\""},
      {"42", "record 1: not a JSON object"},
  };
  for (const Case& c : cases) {
    const std::string text = "[" + conv("fine", good) + ",\n" + c.record + "]";
    const std::string msg = error_of(text);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "got: " << msg;
    EXPECT_NE(msg.find("--on-bad-record skip"), std::string::npos) << msg;
    // Skipped instead: counted with the same reason, and the good record kept.
    DatasetOptions skip;
    skip.on_bad = OnBadRecord::kSkip;
    const Dataset ds = parse_dataset(text, "chats.json", skip);
    ASSERT_EQ(ds.samples.size(), 1u);
    ASSERT_EQ(ds.skipped.size(), 1u);
    EXPECT_EQ(ds.skipped[0].where, "record 1");
  }
}

}  // namespace
}  // namespace loadgen
